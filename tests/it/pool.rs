//! The warm container pool against the real engine: pooled runs end as cold runs do, a
//! container serves one run, dead containers are passed over, the pool refills, limits
//! hold and count from the run's start, and nothing is left after shutdown or drop.
//!
//! Each test has a sandbox and a policy of its own (the policy's unique name is the
//! `org.stratbox.policy` label of its containers), so tests running in parallel never see
//! each other's containers.

use std::time::Duration;

use stratbox::backend::container::{ContainerBackend, PoolStatus};
use stratbox::outcome::Outcome;
use stratbox::{BackendKind, Policy, Reason, Request, Sandbox, Status};

use crate::common::{KNOWN_REFUSALS, ensure_image, root};

/// How long a test waits for its pool to fill before it fails.
const FILL_TIMEOUT: Duration = Duration::from_secs(180);

/// A policy named `name` (unique per test) with numpy and pandas as its native packages
/// (so warm containers import them) and `limits` as its `[limits]` table.
fn policy(name: &str, limits: &str) -> Policy {
    let text = format!(
        "description = \"pool test {name}\"\n\
         [limits]\n{limits}\n\
         [imports.native]\n\
         numpy = \"test\"\n\
         pandas = \"test\"\n\
         [validator]\n\
         enabled = false\n"
    );
    Policy::from_toml(name, &format!("{name} (test)"), &text)
        .unwrap_or_else(|err| panic!("test policy {name}: {err}"))
}

fn unique(prefix: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    format!("{prefix}-{:012x}", random & 0xffff_ffff_ffff)
}

/// A sandbox keeping `size` warm containers for `policy`, filled up.
async fn pooled(size: usize, policy: &Policy) -> Sandbox {
    ensure_image().await;
    let sandbox = Sandbox::builder().container_pool(size).build();
    assert!(
        sandbox.prewarm_containers(policy).await.expect("prewarm"),
        "the pool serves the policy it was started for"
    );
    fill(&sandbox, size).await;
    sandbox
}

/// Waits until `count` containers are ready.
async fn fill(sandbox: &Sandbox, count: usize) -> PoolStatus {
    let pool = sandbox.container().pool().expect("a pool");
    match tokio::time::timeout(FILL_TIMEOUT, pool.wait_ready(count)).await {
        Ok(status) => status,
        Err(_) => panic!("the pool did not fill: {:?}", pool.status()),
    }
}

async fn run(sandbox: &Sandbox, source: &str, input: &[u8], policy: &Policy) -> Outcome {
    let request = Request {
        input,
        backend: Some(BackendKind::Container),
        ..Request::new(source, "strategy.py")
    };
    sandbox.run(&request, policy).await
}

fn status(sandbox: &Sandbox) -> PoolStatus {
    sandbox.container_pool_status().expect("a pool")
}

#[track_caller]
fn assert_ended(outcome: &Outcome, status: Status, reason: Option<Reason>) {
    assert_eq!(
        (outcome.status, outcome.reason),
        (status, reason),
        "{}\nstdout: {}\nstderr: {}",
        outcome.summary(),
        outcome.stdout,
        outcome.stderr
    );
    assert_eq!(outcome.backend, Some(BackendKind::Container));
}

/// Names of the containers (running or not) labelled with this policy's name.
async fn containers_of(policy: &Policy) -> Vec<String> {
    crate::common::containers_of(&policy.name).await
}

// --- same outcomes ---------------------------------------------------------------------

/// Every honest numpy/pandas fixture, run through warm containers one after another,
/// prints what native CPython printed (as the cold runs of `honest` do), and a sample of
/// them ends exactly as a cold run of the same sandbox flow.
#[tokio::test(flavor = "multi_thread")]
async fn pooled_runs_end_as_cold_runs_on_the_honest_fixtures() {
    let dir = root().join("tests/fixtures/honest");
    let mut policy = Policy::default_profile();
    policy.name = unique("pool-honest");
    // Room for a loaded machine, as in `honest`; the CPU limits stay the profile's.
    policy.limits.wall_time = Duration::from_secs(60);
    let shared_input = std::fs::read(dir.join("input.json")).expect("input.json");
    let mut fixtures: Vec<(String, String, Vec<u8>, String)> = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".py") || KNOWN_REFUSALS.iter().any(|(refused, _)| *refused == name) {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("fixture");
        let native = source.lines().any(|line| {
            ["import numpy", "import pandas", "from numpy", "from pandas"]
                .iter()
                .any(|p| line.starts_with(p))
        });
        if !native {
            continue;
        }
        let stem = name.trim_end_matches(".py");
        let input = std::fs::read(dir.join(format!("{stem}.json"))).unwrap_or(shared_input.clone());
        let expected = std::fs::read_to_string(dir.join(format!("expected/{stem}.stdout")))
            .unwrap_or_else(|err| panic!("expected/{stem}.stdout: {err}"));
        fixtures.push((name.to_owned(), source, input, expected));
    }
    fixtures.sort();
    assert!(
        fixtures.len() >= 20,
        "{} numpy/pandas fixtures",
        fixtures.len()
    );

    let sandbox = pooled(2, &policy).await;
    let cold = Sandbox::new();
    let mut failures = Vec::new();
    for (i, (name, source, input, expected)) in fixtures.iter().enumerate() {
        fill(&sandbox, 1).await;
        let request = Request {
            input,
            ..Request::new(source, name)
        };
        let outcome = sandbox.run(&request, &policy).await;
        if outcome.status != Status::Ok || &outcome.stdout != expected {
            failures.push(format!(
                "{name}: {}\n{}\n{}",
                outcome.summary(),
                outcome.stdout,
                outcome.stderr
            ));
            continue;
        }
        if i % 8 == 0 {
            let cold_outcome = cold.run(&request, &policy).await;
            let strip = |o: &Outcome| {
                let mut value = serde_json::to_value(o).expect("json");
                value["usage"]["wall_ms"] = serde_json::Value::Null;
                value
            };
            assert_eq!(
                strip(&outcome),
                strip(&cold_outcome),
                "{name}: pooled vs cold"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // A run that finds the pool empty while it refills starts a cold container, by design.
    let status = status(&sandbox);
    assert_eq!(
        status.taken + status.cold,
        fixtures.len() as u64,
        "{status:?}"
    );
    assert!(status.taken > 0, "{status:?}");
    sandbox.shutdown().await;
    assert!(containers_of(&policy).await.is_empty());
}

// --- one run per container -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_container_serves_one_run() {
    let policy = policy(&unique("pool-once"), "wall-time = \"60s\"");
    let sandbox = pooled(2, &policy).await;
    // What a run could leave behind: a file in /tmp, a module attribute, a builtin, and
    // the process itself (the runner's pid and start time).
    let probe = r#"
import builtins, os, sys
import numpy
print("file", os.path.exists("/tmp/left-behind"))
print("builtin", hasattr(builtins, "left_behind"))
print("module", hasattr(numpy, "left_behind"))
print("pandas-imported", "pandas" in sys.modules)
open("/tmp/left-behind", "w").write("x")
builtins.left_behind = True
numpy.left_behind = True
print("process", open("/proc/self/stat").read().split()[21])
"#;
    let first = run(&sandbox, probe, b"", &policy).await;
    assert_ended(&first, Status::Ok, None);
    fill(&sandbox, 1).await;
    let second = run(&sandbox, probe, b"", &policy).await;
    assert_ended(&second, Status::Ok, None);
    for outcome in [&first, &second] {
        for clean in [
            "file False",
            "builtin False",
            "module False",
            "pandas-imported True",
        ] {
            assert!(
                outcome.stdout.contains(clean),
                "{clean}: {}",
                outcome.stdout
            );
        }
    }
    let process = |o: &Outcome| {
        o.stdout
            .lines()
            .find_map(|l| l.strip_prefix("process "))
            .map(str::to_owned)
            .expect("process line")
    };
    assert_ne!(process(&first), process(&second), "one process per run");
    assert_eq!(status(&sandbox).taken, 2);
    sandbox.shutdown().await;
    assert!(containers_of(&policy).await.is_empty());
}

// --- dead containers and refills -------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_container_killed_in_the_pool_is_passed_over_and_replaced() {
    let policy = policy(&unique("pool-kill"), "wall-time = \"60s\"");
    let sandbox = pooled(1, &policy).await;
    let engine = ContainerBackend::new().engine().await.expect("engine");
    let warm = containers_of(&policy).await;
    assert_eq!(warm.len(), 1, "{warm:?}");
    for name in &warm {
        let kill = bollard::query_parameters::KillContainerOptionsBuilder::new()
            .signal("KILL")
            .build();
        engine
            .docker()
            .kill_container(name.trim_start_matches('/'), Some(kill))
            .await
            .expect("kill");
    }
    let outcome = run(&sandbox, "print('after the kill')\n", b"", &policy).await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "after the kill\n");
    let after = status(&sandbox);
    assert_eq!((after.discarded, after.cold), (1, 1), "{after:?}");
    // The pool notices and refills: a new warm container serves the next run.
    let refilled = fill(&sandbox, 1).await;
    assert_eq!(refilled.ready, 1, "{refilled:?}");
    let outcome = run(&sandbox, "print('warm again')\n", b"", &policy).await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(status(&sandbox).taken, 1);
    sandbox.shutdown().await;
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_under_another_policy_starts_a_cold_container() {
    let policy = policy(&unique("pool-key"), "wall-time = \"60s\"");
    let sandbox = pooled(1, &policy).await;
    let mut other = policy.clone();
    other.limits.memory_bytes /= 2;
    let outcome = run(&sandbox, "print('other limits')\n", b"", &other).await;
    assert_ended(&outcome, Status::Ok, None);
    let status = status(&sandbox);
    assert_eq!(
        (status.taken, status.cold, status.ready),
        (0, 1, 1),
        "{status:?}"
    );
    sandbox.shutdown().await;
    assert!(containers_of(&policy).await.is_empty());
}

// --- limits ----------------------------------------------------------------------------

/// The deadline counts from the run's start: a container that waited in the pool longer
/// than the wall time still gives its strategy the whole of it, and a strategy that
/// sleeps past it is stopped.
#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_counts_from_the_run_not_from_the_container() {
    let policy = policy(&unique("pool-deadline"), "wall-time = \"3s\"");
    let sandbox = pooled(1, &policy).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let outcome = run(
        &sandbox,
        "import time\ntime.sleep(1)\nprint('slept')\n",
        b"",
        &policy,
    )
    .await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(outcome.usage.wall_ms < 3000.0, "{}", outcome.usage.wall_ms);
    fill(&sandbox, 1).await;
    let outcome = run(&sandbox, "import time\ntime.sleep(60)\n", b"", &policy).await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Deadline));
    let status = status(&sandbox);
    assert_eq!((status.taken, status.cold), (2, 0), "{status:?}");
    sandbox.shutdown().await;
    assert!(containers_of(&policy).await.is_empty());
}

/// The CPU the imports used is not the strategy's: with `cpu-time = 1s` a strategy that
/// needs half a second of CPU finishes (the imports alone take about that long), and a
/// busy loop is still stopped by the CPU limit, not by the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn the_cpu_limit_counts_the_strategy_only_and_still_holds() {
    let policy = policy(
        &unique("pool-cpu"),
        "wall-time = \"30s\"\ncpu-time = \"1s\"",
    );
    let sandbox = pooled(1, &policy).await;
    let half_second = r#"
import resource, time
start = resource.getrusage(resource.RUSAGE_SELF)
used = lambda: (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_SELF)) - (start.ru_utime + start.ru_stime)
while used() < 0.5:
    pass
soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
print("limit", soft, hard)
"#;
    let outcome = run(&sandbox, half_second, b"", &policy).await;
    assert_ended(&outcome, Status::Ok, None);
    fill(&sandbox, 1).await;
    let outcome = run(&sandbox, "while True:\n    pass\n", b"", &policy).await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Cpu));
    assert!(
        outcome.usage.wall_ms < 10_000.0,
        "{}",
        outcome.usage.wall_ms
    );
    // The strategy cannot raise its limit back to what the start-up had.
    fill(&sandbox, 1).await;
    let raise = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (120, 120))\n";
    let outcome = run(&sandbox, raise, b"", &policy).await;
    assert_ended(&outcome, Status::Error, None);
    assert!(outcome.stderr.contains("ValueError"), "{}", outcome.stderr);
    let status = status(&sandbox);
    assert_eq!((status.taken, status.cold), (3, 0), "{status:?}");
    sandbox.shutdown().await;
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_limit_holds() {
    let policy = policy(
        &unique("pool-memory"),
        "wall-time = \"60s\"\nmemory = \"256MiB\"",
    );
    let sandbox = pooled(1, &policy).await;
    let bomb = "import numpy\nchunks = []\nwhile True:\n    chunks.append(numpy.ones(1 << 24))\n";
    let outcome = run(&sandbox, bomb, b"", &policy).await;
    assert_ended(&outcome, Status::Killed, Some(Reason::Memory));
    assert_eq!(status(&sandbox).taken, 1);
    sandbox.shutdown().await;
    assert!(containers_of(&policy).await.is_empty());
}

// --- cleanup ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_removes_every_warm_container() {
    let policy = policy(&unique("pool-shutdown"), "");
    let sandbox = pooled(3, &policy).await;
    assert_eq!(containers_of(&policy).await.len(), 3);
    sandbox.shutdown().await;
    assert_eq!(containers_of(&policy).await, Vec::<String>::new());
    // Later runs start cold containers and leave nothing either.
    let outcome = run(&sandbox, "print('cold')\n", b"", &policy).await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(status(&sandbox).closed);
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_sandbox_removes_every_warm_container() {
    let policy = policy(&unique("pool-drop"), "");
    let sandbox = pooled(2, &policy).await;
    // One more starting while the sandbox is dropped: it must not be left behind either.
    let outcome = run(&sandbox, "print(1)\n", b"", &policy).await;
    assert_ended(&outcome, Status::Ok, None);
    assert!(!containers_of(&policy).await.is_empty());
    drop(sandbox);
    // A start-up cut short removes its container from its own task: give it a moment.
    let mut left = containers_of(&policy).await;
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = containers_of(&policy).await;
    }
    assert_eq!(left, Vec::<String>::new());
}

// --- bench -----------------------------------------------------------------------------

/// `stratbox bench --backend container-pool` measures every workload through warm
/// containers, beside both native baselines, and leaves no warm container behind.
#[test]
fn bench_measures_the_container_pool_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("bench.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args([
            "bench",
            "--runs",
            "1",
            "--backend",
            "container-pool",
            "--json",
        ])
        .arg(&json_path)
        .output()
        .expect("stratbox bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let table = String::from_utf8_lossy(&out.stdout);
    for mode in ["native", "native-isolated", "container-pool"] {
        assert!(table.contains(&format!("\n  {mode} ")), "{mode}:\n{table}");
    }
    assert!(table.contains("× -I -S"), "{table}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    let summary = report["summary"].as_array().expect("summary");
    for workload in ["trivial", "stdlib", "compute", "numeric"] {
        assert!(
            summary.iter().any(|c| c["workload"] == workload
                && c["mode"] == "container-pool"
                && c["availability"]["state"] == "available"
                && c["p50_ms"].as_f64().is_some_and(|ms| ms > 0.0)),
            "{workload}/container-pool measured: {summary:?}"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let left = runtime.block_on(async {
        let engine = ContainerBackend::new().engine().await.expect("engine");
        let all = stratbox::backend::container::pool::pool_containers(engine.docker(), None)
            .await
            .expect("list");
        // Other tests' pools run in this process or in servers it started, all still
        // running; the bench's ran in its own process, gone now.
        owned_by_no_live_process(&engine, &all).await
    });
    assert!(
        left.is_empty(),
        "the bench's warm containers are left: {left:?}"
    );
}

/// The containers among `names` whose owner label names no running process (the bench
/// ran in a child process, now gone; pools of this process and of the servers other tests
/// run are alive).
async fn owned_by_no_live_process(
    engine: &stratbox::backend::container::Engine,
    names: &[String],
) -> Vec<String> {
    let mut orphans = Vec::new();
    for name in names {
        let Ok(found) = engine
            .docker()
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        else {
            continue;
        };
        let owner = found.config.and_then(|c| c.labels).and_then(|l| {
            l.get(stratbox::backend::container::pool::OWNER_LABEL)
                .cloned()
        });
        let alive = owner.is_some_and(|pid| std::path::Path::new("/proc").join(pid).exists());
        if !alive {
            orphans.push(name.clone());
        }
    }
    orphans
}
