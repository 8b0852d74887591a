//! Ready wasm instances (`SandboxBuilder::ready_instances`): a run that takes an instance
//! made ahead of it ends exactly as a run that makes its own, and nothing of one strategy
//! reaches the next.

use std::sync::OnceLock;
use std::time::Duration;

use stratbox::policy::Metering;
use stratbox::{BackendKind, Outcome, Policy, Request, Sandbox, Status};

use crate::common::{assert_ended, sandbox, unvalidated};

/// Instances kept ready by the sandbox of these tests.
const READY: u32 = 2;

/// A sandbox that keeps [`READY`] instances ready.
fn ready_sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::builder().ready_instances(READY).build())
}

/// Runs `source` in `sandbox` on the wasm backend. With `ready`, first waits until the
/// pool is full, so that the run takes an instance made before it.
async fn run(
    sandbox: &Sandbox,
    ready: bool,
    source: &str,
    input: &[u8],
    data: Option<&std::path::Path>,
    policy: &Policy,
) -> Outcome {
    if ready {
        let wasm = sandbox.wasm().expect("the guest loads");
        let full = wasm
            .wait_ready(policy.limits.metering, Duration::from_secs(60))
            .expect("the guest compiles");
        assert!(full, "the pool filled up to {READY} instances");
    }
    let request = Request {
        input,
        data_dir: data,
        backend: Some(BackendKind::Wasm),
        ..Request::new(source, "strategy.py")
    };
    sandbox.run(&request, policy).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_instances_end_every_run_as_new_instances_do() {
    let data = tempfile::tempdir().expect("dir");
    std::fs::write(data.path().join("prices.csv"), "day,close\n1,101.5\n").expect("write");
    let tight = unvalidated(
        "[limits]\nwall-time = \"1s\"\nfuel = 200_000_000\nmemory = \"64MiB\"\nstdout = \"2KiB\"\ntmp-size = \"1MiB\"",
    );
    let seeded = unvalidated("[run]\ndeterministic = true\nseed = 7");
    let epoch = unvalidated("[limits]\nmetering = \"epoch\"\nwall-time = \"500ms\"");
    let cases: [(&str, &str, &Policy); 13] = [
        (
            "ok",
            "import json, sys\nprint(json.load(sys.stdin)['n'] * 2)",
            &tight,
        ),
        (
            "stderr",
            "import sys\nprint('to stderr', file=sys.stderr)",
            &tight,
        ),
        ("raises", "raise ValueError('no')", &tight),
        ("exits", "raise SystemExit(3)", &tight),
        ("fuel", "while True:\n    pass", &tight),
        ("deadline", "import time\ntime.sleep(30)", &tight),
        ("epoch", "while True:\n    pass", &epoch),
        (
            "memory",
            "blocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20))",
            &tight,
        ),
        ("output", "for i in range(2_000):\n    print(i)", &tight),
        (
            "scratch",
            "with open('/tmp/x', 'w') as f:\n    f.write('kept')\nprint(open('/tmp/x').read())",
            &tight,
        ),
        (
            "scratch-full",
            "open('/tmp/big', 'wb').write(b'x' * (2 << 20))",
            &tight,
        ),
        ("data", "print(open('/data/prices.csv').read())", &tight),
        (
            "seeded",
            "import random, time\nprint(random.random(), time.time())",
            &seeded,
        ),
    ];
    for (name, source, policy) in cases {
        let input = br#"{"n": 21}"#;
        let new = run(sandbox(), false, source, input, Some(data.path()), policy).await;
        let ready = run(
            ready_sandbox(),
            true,
            source,
            input,
            Some(data.path()),
            policy,
        )
        .await;
        let ending = |o: &Outcome| {
            (
                o.status,
                o.reason,
                o.exit_code,
                o.stdout.clone(),
                o.truncated.stdout,
                o.message.is_some(),
            )
        };
        assert_eq!(
            ending(&ready),
            ending(&new),
            "{name}: ready instance\n{ready:#?}\nnew instance\n{new:#?}"
        );
        // The traceback names the same line; only the guest's paths could differ.
        assert_eq!(ready.stderr, new.stderr, "{name}");
        if policy.limits.metering == Metering::Fuel && ready.status == Status::Ok {
            // Instantiation runs no guest code: the same program burns the same fuel.
            assert_eq!(ready.usage.fuel, new.usage.fuel, "{name}: fuel");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_carries_from_one_run_to_the_next_through_ready_instances() {
    let policy = unvalidated("");
    let leaves = r#"
import builtins, json, sys
COUNTER = 41
builtins.len = lambda _: 42
builtins.LEAKED = 'builtin'
json.CACHED = 'module attribute'
sys.modules['leaked'] = sys
with open('/tmp/leak.txt', 'w') as f:
    f.write('file')
print('left', builtins.len([]))
"#;
    let looks = r#"
import builtins, json, os, sys
print('COUNTER' in globals(), builtins.len([]), hasattr(builtins, 'LEAKED'),
      hasattr(json, 'CACHED'), 'leaked' in sys.modules, os.listdir('/tmp'))
"#;
    // More runs than ready instances: every instance of the pool, and slots reused by
    // later instances, are each seen by a run that looks.
    for round in 0..(READY as usize * 3) {
        let left = run(ready_sandbox(), true, leaves, b"", None, &policy).await;
        assert_ended(&left, Status::Ok, None);
        assert_eq!(left.stdout, "left 42\n", "round {round}");
        let seen = run(ready_sandbox(), true, looks, b"", None, &policy).await;
        assert_ended(&seen, Status::Ok, None);
        assert_eq!(
            seen.stdout, "False 0 False False False []\n",
            "round {round}: a global, a patched builtin, a module attribute, a module or \
             a file under /tmp reached the next run"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_that_find_no_ready_instance_make_their_own() {
    // More runs at once than instances ready: the rest instantiate their own, none waits
    // for the pool, and each is still alone.
    let policy = unvalidated("");
    let runs = (0..8).map(|i| {
        let source = format!("import time\nX = {i}\ntime.sleep(0.05)\nprint(X)");
        let policy = &policy;
        async move { run(ready_sandbox(), false, &source, b"", None, policy).await }
    });
    let outcomes = futures_util::future::join_all(runs).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_ended(outcome, Status::Ok, None);
        assert_eq!(outcome.stdout, format!("{i}\n"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_pool_never_hangs_with_instances_ready_for_two_metering_modes() {
    // Two slots: the ready instance of each mode, the runs of both modes and the
    // deterministic runs (which never take a ready instance) all compete for them, and the
    // slot a finished run held comes back only when its store has been dropped.
    let small = Sandbox::builder().pool_size(2).ready_instances(8).build();
    assert_eq!(small.wasm().expect("guest").ready_target(), 1, "clamped");
    let fuel = unvalidated("");
    let epoch = unvalidated("[limits]\nmetering = \"epoch\"");
    let seeded = unvalidated("[run]\ndeterministic = true\nseed = 3");
    for round in 0..20 {
        let runs = (0..6).map(|i| {
            let policy = [&fuel, &epoch, &seeded][i % 3];
            let source = format!("print({round} * 10 + {i})");
            let small = &small;
            async move {
                let request = Request {
                    backend: Some(BackendKind::Wasm),
                    ..Request::new(&source, "strategy.py")
                };
                tokio::time::timeout(Duration::from_secs(60), small.run(&request, policy))
                    .await
                    .expect("a run waited a minute for a slot")
            }
        });
        let outcomes = futures_util::future::join_all(runs).await;
        for (i, outcome) in outcomes.iter().enumerate() {
            assert_ended(outcome, Status::Ok, None);
            assert_eq!(outcome.stdout, format!("{}\n", round * 10 + i));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_run_leaves_its_reset_to_the_backend_and_the_next_run_in_its_slot_starts_clean() {
    // One slot and no instance kept ready: every run is alone, so each leaves its store to
    // the backend's thread and returns; the next run waits for that slot, which comes
    // back only once the store is dropped and the memory reset from the snapshot.
    let one = Sandbox::builder().pool_size(1).build();
    let policy = unvalidated("");
    for round in 0..6 {
        let source = format!(
            "import json, sys\n\
             seen = (hasattr(json, 'LEAK'), 'leak' in sys.modules, 'COUNTER' in globals())\n\
             json.LEAK = sys.modules['leak'] = COUNTER = {round}\n\
             print(seen)"
        );
        let outcome = tokio::time::timeout(
            Duration::from_secs(60),
            run(&one, false, &source, b"", None, &policy),
        )
        .await
        .expect("a run waited a minute for the one slot");
        assert_ended(&outcome, Status::Ok, None);
        assert_eq!(outcome.stdout, "(False, False, False)\n", "round {round}");
    }
    let wasm = one.wasm().expect("guest");
    assert!(
        wasm.wait_ready(policy.limits.metering, Duration::from_secs(60))
            .expect("compiled"),
        "the last run's store was dropped"
    );
    assert_eq!(
        wasm.ready_taken(policy.limits.metering).expect("compiled"),
        0
    );
}
