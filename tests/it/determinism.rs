//! Deterministic runs: with a seed, the wasm guest's clocks advance with fuel, its random
//! sources are seeded and sleeping does not wait; two runs give the same bytes.

use stratbox::{BackendKind, Status};

use crate::common::{assert_ended, json, policy, run_on, stratbox};

/// Reads every clock and random source a strategy has, and sleeps.
const PROBE: &str = r#"
import datetime, random, secrets, time, uuid
t0, m0 = time.time(), time.monotonic()
print("time", repr(t0))
print("monotonic", repr(m0))
print("now", datetime.datetime.now(datetime.timezone.utc).isoformat())
print("random", repr(random.random()))
print("instance", repr(random.Random().random()))
print("hash", hash("abc"), hash(b"abc"))
print("urandom", secrets.token_hex(8), uuid.uuid4())
print("set", list({"alpha", "beta", "gamma", "delta"}))
time.sleep(2)
print("slept", repr(time.monotonic() - m0), repr(time.time() - t0))
"#;

/// The probe's lines by their first word.
fn field<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"))
}

/// `stratbox run PROBE --json` with `args`, as JSON, checked to have ended ok.
fn probe(dir: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let path = dir.join("probe.py");
    std::fs::write(&path, PROBE).expect("probe written");
    let path = path.to_str().expect("UTF-8 path");
    let out = stratbox(&[&["run", path, "--json", "--backend", "wasm"], args].concat());
    let value = json(&out);
    assert_eq!(out.status.code(), Some(0), "{value:#}");
    value
}

fn without_wall_time(mut value: serde_json::Value) -> serde_json::Value {
    value["usage"]
        .as_object_mut()
        .expect("usage")
        .remove("wall_ms");
    value
}

#[test]
fn seeded_runs_are_byte_identical_and_do_not_wait() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = probe(dir.path(), &["--seed", "7"]);
    let second = probe(dir.path(), &["--seed", "7"]);
    // A real `time.sleep(2)` would take two seconds of the run's wall time.
    for run in [&first, &second] {
        let wall_ms = run["usage"]["wall_ms"].as_f64().expect("wall_ms");
        assert!(wall_ms < 2000.0, "the sleep waited: {wall_ms} ms");
    }
    assert_eq!(
        without_wall_time(first.clone()),
        without_wall_time(second),
        "two runs with --seed 7 differ"
    );
    assert_eq!(first["seed"], 7);
    assert_eq!(first["deterministic"], true);
    assert_eq!(first["not_reproducible"], serde_json::json!([]));

    let stdout = first["stdout"].as_str().expect("stdout");
    // The clock starts at 2024-01-01T00:00:00Z and has advanced by the fuel burnt so far.
    let t0: f64 = field(stdout, "time").parse().expect("a float");
    assert!((1_704_067_200.0..1_704_067_260.0).contains(&t0), "{stdout}");
    assert!(
        field(stdout, "now").starts_with("2024-01-01T00:"),
        "{stdout}"
    );
    // `random` is seeded exactly as `random.seed(7)` seeds it in any CPython.
    assert_eq!(field(stdout, "random"), "0.32383276483316237", "{stdout}");
    // The sleep moved both clocks by (at least) its two seconds.
    let slept: Vec<f64> = field(stdout, "slept")
        .split(' ')
        .map(|x| x.parse().expect("a float"))
        .collect();
    assert!(
        slept.iter().all(|s| (2.0..2.5).contains(s)),
        "the clocks did not advance by the sleep: {stdout}"
    );
}

#[test]
fn another_seed_gives_other_values() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seven = probe(dir.path(), &["--seed", "7"]);
    let eight = probe(dir.path(), &["--seed", "8"]);
    let (seven, eight) = (
        seven["stdout"].as_str().expect("stdout"),
        eight["stdout"].as_str().expect("stdout"),
    );
    for name in ["random", "instance", "urandom"] {
        assert_ne!(
            field(seven, name),
            field(eight, name),
            "{name} ignores the seed"
        );
    }
}

#[test]
fn without_a_seed_the_host_clock_and_fresh_randomness_are_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = probe(dir.path(), &[]);
    let second = probe(dir.path(), &[]);
    assert_eq!(first["seed"], serde_json::Value::Null);
    assert_eq!(first["deterministic"], false);
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let stdout = first["stdout"].as_str().expect("stdout");
    let t0: f64 = field(stdout, "time").parse().expect("a float");
    assert!((host - t0).abs() < 60.0, "guest {t0}, host {host}");
    // The guest imported `random` while it was pre-initialised; runs still differ.
    let other = second["stdout"].as_str().expect("stdout");
    for name in ["random", "instance", "urandom"] {
        assert_ne!(field(stdout, name), field(other, name), "{name} repeats");
    }
}

#[test]
fn the_clock_can_start_elsewhere() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = probe(
        dir.path(),
        &["--seed", "1", "--clock", "2030-06-15T12:00:00+02:00"],
    );
    let stdout = run["stdout"].as_str().expect("stdout");
    assert!(
        field(stdout, "now").starts_with("2030-06-15T10:00:"),
        "{stdout}"
    );
}

#[test]
fn bad_determinism_settings_are_usage_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let epoch = dir.path().join("epoch.toml");
    std::fs::write(&epoch, "[limits]\nmetering = \"epoch\"\n").expect("profile");
    let epoch = epoch.to_str().expect("UTF-8 path");
    for (args, needle) in [
        (&["--seed", "-1"][..], "-1"),
        (&["--seed", "18446744073709551616"][..], "--seed"),
        (&["--seed", "1", "--clock", "yesterday"][..], "RFC 3339"),
        (
            &["--seed", "1", "--clock", "1960-01-01T00:00:00Z"][..],
            "1970",
        ),
        (&["--clock", "2024-01-02T00:00:00Z"][..], "run.clock"),
        (&["--seed", "1", "--profile", epoch][..], "fuel"),
    ] {
        let out = stratbox(&[&["run", "examples/strategies/sma_crossover.py"], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} ran something");
    }
}

/// A strategy that waits for time to pass by watching the clock, or sleeps without end,
/// still ends: the clock moves with its own work, and sleeping burns no less fuel.
#[tokio::test]
async fn hostile_waits_end() {
    let seeded = policy("[run]\ndeterministic = true\nseed = 3\n[limits]\nfuel = 5_000_000_000\n");
    let busy = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.0:\n    pass\nprint('waited')";
    let outcome = run_on(BackendKind::Wasm, busy, b"", None, &seeded).await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "waited\n");

    let forever = "import time\nwhile True:\n    time.sleep(3600)";
    let small = policy("[run]\ndeterministic = true\nseed = 3\n[limits]\nfuel = 300_000_000\n");
    let outcome = run_on(BackendKind::Wasm, forever, b"", None, &small).await;
    assert_ended(&outcome, Status::Killed, Some(stratbox::Reason::Fuel));

    // A sleep of 30 years ends at once, and the clocks say so.
    let far = "import time, datetime\ntime.sleep(30 * 365 * 86400)\nprint(datetime.datetime.now(datetime.timezone.utc).year)";
    let outcome = run_on(BackendKind::Wasm, far, b"", None, &seeded).await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "2053\n");
}

/// A profile's `[run]` table is the library's way in; rejected runs carry the seed too.
#[tokio::test]
async fn the_outcome_records_the_seed() {
    let seeded = policy("[run]\ndeterministic = true\nseed = 42\n");
    let outcome = run_on(BackendKind::Wasm, "print(1)", b"", None, &seeded).await;
    assert_ended(&outcome, Status::Ok, None);
    assert_eq!((outcome.seed, outcome.deterministic), (Some(42), true));
    assert!(
        outcome.summary().contains("seed 42, deterministic"),
        "{}",
        outcome.summary()
    );
    let rejected = run_on(BackendKind::Wasm, "import socket", b"", None, &seeded).await;
    assert_ended(&rejected, Status::Rejected, None);
    assert_eq!((rejected.seed, rejected.deterministic), (Some(42), false));
}

/// In the container, the seed fixes `random` and `hash()`, and the outcome names what it
/// cannot fix.
#[cfg(feature = "test-docker")]
#[tokio::test]
async fn the_container_seeds_what_it_can_and_says_what_it_cannot() {
    use stratbox::Unreproducible;
    crate::common::ensure_image().await;
    let source = "import random\nprint(random.random(), hash('abc'), hash(b'abc'))";
    let seeded = policy("[run]\ndeterministic = true\nseed = 7\n");
    let first = run_on(BackendKind::Container, source, b"", None, &seeded).await;
    let second = run_on(BackendKind::Container, source, b"", None, &seeded).await;
    assert_ended(&first, Status::Ok, None);
    assert_eq!(
        first.stdout, second.stdout,
        "hash or random differ with one seed"
    );
    assert!(
        first.stdout.starts_with("0.32383276483316237 "),
        "{}",
        first.stdout
    );
    assert_eq!((first.seed, first.deterministic), (Some(7), false));
    assert_eq!(
        first.not_reproducible,
        [
            Unreproducible::Clock,
            Unreproducible::OsRandom,
            Unreproducible::Addresses
        ]
    );
    // numpy's global generator is seeded as `numpy.random.seed(7)` seeds it.
    let numpy = "import numpy as np\nprint(np.random.rand())";
    let with_numpy =
        policy("[run]\ndeterministic = true\nseed = 7\n[imports.native]\nnumpy = \"test\"\n");
    let seeded_numpy = run_on(BackendKind::Container, numpy, b"", None, &with_numpy).await;
    assert_ended(&seeded_numpy, Status::Ok, None);
    assert_eq!(seeded_numpy.stdout, "0.07630828937395717\n");

    let other = policy("[run]\ndeterministic = true\nseed = 8\n");
    let eight = run_on(BackendKind::Container, source, b"", None, &other).await;
    assert_ended(&eight, Status::Ok, None);
    assert_ne!(first.stdout, eight.stdout);

    // Without a seed, hash randomisation is on: two runs hash differently.
    let plain = policy("");
    let a = run_on(BackendKind::Container, source, b"", None, &plain).await;
    let b = run_on(BackendKind::Container, source, b"", None, &plain).await;
    assert_ended(&a, Status::Ok, None);
    assert_ne!(a.stdout, b.stdout);
    assert!(a.not_reproducible.is_empty() && a.seed.is_none());
}
