//! One test body, both backends: the same script hitting the same limit must end with the
//! same status and reason on wasm and in the container (validator off, so each backend is
//! tested on its own).

use stratbox::{BackendKind, Outcome, Reason, Status};

use crate::common::{run_on, unvalidated};

const BACKENDS: [BackendKind; 2] = [BackendKind::Wasm, BackendKind::Container];

/// Runs `source` under `limits` on both backends.
async fn on_both(source: &str, limits: &str) -> Vec<(BackendKind, Outcome)> {
    let policy = unvalidated(&format!("[limits]\n{limits}"));
    let mut outcomes = Vec::new();
    for backend in BACKENDS {
        outcomes.push((backend, run_on(backend, source, b"", None, &policy).await));
    }
    outcomes
}

#[track_caller]
fn assert_all(outcomes: &[(BackendKind, Outcome)], status: Status, reason: Option<Reason>) {
    for (backend, outcome) in outcomes {
        assert_eq!(
            (outcome.status, outcome.reason),
            (status, reason),
            "{backend}: {}\nstdout: {}\nstderr: {}",
            outcome.summary(),
            outcome.stdout,
            outcome.stderr
        );
        assert_eq!(outcome.backend, Some(*backend));
    }
}

#[tokio::test]
async fn same_endings_on_both_backends() {
    // (what, source, limits, status, reason)
    let cases: &[(&str, &str, &str, Status, Option<Reason>)] = &[
        ("ok", "print('hi')", "", Status::Ok, None),
        (
            "exception",
            "raise ValueError('x')",
            "",
            Status::Error,
            None,
        ),
        (
            "exit code",
            "import sys\nsys.exit(3)",
            "",
            Status::Error,
            None,
        ),
        (
            "busy loop past the deadline",
            "while True:\n    pass",
            "wall-time = \"1500ms\"\nfuel = 1_000_000_000_000\ncpu-time = \"60s\"",
            Status::Killed,
            Some(Reason::Deadline),
        ),
        (
            "sleep past the deadline",
            "import time\ntime.sleep(600)",
            "wall-time = \"1500ms\"",
            Status::Killed,
            Some(Reason::Deadline),
        ),
        (
            "memory bomb",
            "s = 'x' * (400 * 2**20)\nprint(len(s))",
            "memory = \"128MiB\"",
            Status::Killed,
            Some(Reason::Memory),
        ),
        (
            "output flood, truncated",
            "for i in range(50_000):\n    print('line', i)",
            "stdout = \"4KiB\"",
            Status::Ok,
            None,
        ),
        (
            "output flood, killed",
            "for i in range(50_000):\n    print('line', i)",
            "stdout = \"4KiB\"\noutput-overflow = \"kill\"",
            Status::Killed,
            Some(Reason::Output),
        ),
    ];
    for (what, source, limits, status, reason) in cases {
        let outcomes = on_both(source, limits).await;
        assert_all(&outcomes, *status, *reason);
        if *what == "exit code" {
            for (_, outcome) in &outcomes {
                assert_eq!(outcome.exit_code, Some(3), "{what}");
            }
        }
        if what.starts_with("output flood") {
            for (backend, outcome) in &outcomes {
                assert!(outcome.truncated.stdout, "{what} on {backend}");
                assert_eq!(outcome.stdout.len(), 4096, "{what} on {backend}");
                assert!(
                    outcome.stdout.starts_with("line 0\nline 1\n"),
                    "{what} on {backend}"
                );
            }
        }
    }
}

#[tokio::test]
async fn cpu_bound_code_stops_at_each_backends_compute_limit() {
    // The compute limit has a name per backend (fuel on wasm, CPU seconds in the
    // container: the documented counterparts), and both stop a busy loop before the
    // deadline does.
    let outcomes = on_both(
        "while True:\n    pass",
        "wall-time = \"60s\"\nfuel = 2_000_000_000\ncpu-time = \"1s\"",
    )
    .await;
    for (backend, outcome) in &outcomes {
        let expected = match backend {
            BackendKind::Wasm => Reason::Fuel,
            BackendKind::Container => Reason::Cpu,
        };
        assert_eq!(
            (outcome.status, outcome.reason),
            (Status::Killed, Some(expected)),
            "{backend}: {}\n{}",
            outcome.summary(),
            outcome.stderr
        );
    }
}
