//! One test body, both backends: the same script hitting the same limit must end with the
//! same status and reason on wasm and in the container (validator off, so each backend is
//! tested on its own).

use stratbox::{BackendKind, Outcome, Policy, Reason, Status};

use crate::common::{root, run_on, unvalidated};

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

#[tokio::test]
async fn honest_strategies_print_the_same_on_both_backends() {
    // Every honest fixture the wasm guest can run (standard library only), under the
    // default profile (validator on), on both backends: same status, same stdout, and the
    // interpreter each backend names. One Python language level behind one policy.
    let dir = root().join("tests/fixtures/honest");
    let input = std::fs::read(dir.join("input.json")).expect("input.json");
    let policy = Policy::load("default").expect("default profile");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("honest fixtures")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    let mut compared = 0;
    for path in &files {
        let source = std::fs::read_to_string(path).expect("fixture is UTF-8");
        if source.contains("import numpy") || source.contains("import pandas") {
            continue; // the guest cannot carry native extensions
        }
        let mut stdouts = Vec::new();
        for backend in BACKENDS {
            let outcome = run_on(backend, &source, &input, None, &policy).await;
            assert_eq!(
                outcome.status,
                Status::Ok,
                "{} on {backend}: {}\n{}",
                path.display(),
                outcome.summary(),
                outcome.stderr
            );
            let expected_python = match backend {
                BackendKind::Wasm => "3.14",
                BackendKind::Container => "3.13",
            };
            assert_eq!(
                outcome.python.as_deref(),
                Some(expected_python),
                "{backend}"
            );
            stdouts.push(without_addresses(&outcome.stdout));
        }
        assert_eq!(
            stdouts[0],
            stdouts[1],
            "{}: wasm and container print differently",
            path.display()
        );
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} fixtures compared");
}

/// `text` with every `0x<hex digits>` (an object's address in a default `repr`, which
/// differs between any two processes) written as `0x…`.
fn without_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("0x") {
        out.push_str(&rest[..at + 2]);
        let digits = rest[at + 2..]
            .find(|c: char| !c.is_ascii_hexdigit())
            .unwrap_or(rest.len() - at - 2);
        if digits > 0 {
            out.push('…');
        }
        rest = &rest[at + 2 + digits..];
    }
    out.push_str(rest);
    out
}

#[test]
fn addresses_are_masked_and_nothing_else() {
    assert_eq!(
        without_addresses("<A object at 0x7f04047d2e40> 0x 10 0xZ"),
        "<A object at 0x…> 0x 10 0xZ"
    );
}

#[tokio::test]
async fn outcome_names_the_interpreter_that_ran() {
    let probe = "import sys\nprint('%d.%d' % sys.version_info[:2])";
    for (backend, outcome) in on_both(probe, "").await {
        assert_eq!(outcome.status, Status::Ok, "{backend}: {}", outcome.stderr);
        assert_eq!(
            outcome.python.as_deref(),
            Some(outcome.stdout.trim()),
            "{backend}: the outcome names the interpreter sys.version_info reports"
        );
    }
    // Nothing ran: no interpreter to name.
    let rejected = run_on(
        BackendKind::Wasm,
        "import socket\n",
        b"",
        None,
        &Policy::load("default").expect("default profile"),
    )
    .await;
    assert_eq!(rejected.status, Status::Rejected);
    assert_eq!(rejected.python, None);
}
