//! One test body, both backends: the same script hitting the same limit must end with the
//! same status and reason on wasm and in the container (validator off, so each backend is
//! tested on its own).

use stratbox::{BackendKind, Outcome, Policy, Reason, Status};

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

#[tokio::test]
async fn tmp_behaves_alike_on_both_backends() {
    // The same scratch-file strategy prints the same lines on both backends.
    let source = r#"
import csv, os, pathlib, tempfile
with tempfile.TemporaryDirectory() as d:
    path = pathlib.Path(d) / "bars.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["day", "close"], [1, 101.5], [2, 99.25]])
    print(list(csv.reader(open(path, newline=""))), path.stat().st_size)
pathlib.Path("/tmp/x.txt").write_text("scratch")
open("relative.txt", "w").write("in the working directory")
print(sorted(os.listdir("/tmp")), open("/tmp/relative.txt").read())
try:
    open("/outside.txt", "w")
except OSError as e:
    print("outside refused", type(e).__name__)
"#;
    let outcomes = on_both(source, "").await;
    assert_all(&outcomes, Status::Ok, None);
    for (backend, outcome) in &outcomes {
        assert_eq!(
            outcome.stdout,
            "[['day', 'close'], ['1', '101.5'], ['2', '99.25']] 29\n\
             ['relative.txt', 'x.txt'] in the working directory\n\
             outside refused OSError\n",
            "{backend}: {}",
            outcome.stderr
        );
    }
    // A later run finds nothing the first left.
    let later = on_both("import os\nprint(os.listdir('/tmp'))", "").await;
    for (backend, outcome) in &later {
        assert_eq!(outcome.stdout, "[]\n", "{backend}");
    }
}

#[tokio::test]
async fn writing_past_tmp_size_is_stopped_alike() {
    // Past `tmp-size` a write raises OSError on both backends (ENOSPC in the container,
    // EIO in the wasm guest, whose WASI adapter cannot report ENOSPC); caught, the
    // strategy goes on; uncaught, the run is an error.
    let fill =
        "f = open('/tmp/big', 'wb')\nwhile True:\n    f.write(b'y' * 65536)\n    f.flush()\n";
    let caught = format!(
        "import os\ntry:\n    {}\nexcept OSError as e:\n    print('refused', type(e).__name__)\nprint(os.path.getsize('/tmp/big') <= 2 << 20)",
        fill.replace('\n', "\n    ")
    );
    let outcomes = on_both(&caught, "tmp-size = \"2MiB\"").await;
    assert_all(&outcomes, Status::Ok, None);
    for (backend, outcome) in &outcomes {
        assert_eq!(outcome.stdout, "refused OSError\nTrue\n", "{backend}");
    }
    let outcomes = on_both(fill, "tmp-size = \"2MiB\"").await;
    assert_all(&outcomes, Status::Error, None);
    for (backend, outcome) in &outcomes {
        assert!(
            outcome.stderr.contains("OSError"),
            "{backend}: {}",
            outcome.stderr
        );
    }
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

/// `vars` of a class that the validator cannot see (it arrives as a function's argument) is
/// refused by the runner's `vars` on both backends, with the validator on; so is a module
/// (with the validator off, which refuses modules as values); `vars` of an instance works.
#[tokio::test]
async fn runner_vars_refuses_classes_and_modules_it_is_handed() {
    let validated = Policy::default_profile();
    let unvalidated = unvalidated("");
    let cases: &[(&str, &str, Status, &str)] = &[
        (
            "instance",
            "from types import SimpleNamespace\ndef table(o):\n    return vars(o)\nprint(table(SimpleNamespace(a=1)))\n",
            Status::Ok,
            "{'a': 1}",
        ),
        (
            "class",
            "def table(o):\n    return vars(o)\nprint(sorted(table(type(table))))\n",
            Status::Error,
            "vars() of a class is not allowed",
        ),
        (
            "metaclass walk",
            "def table(o):\n    return vars(o)\nk = type(0)\nfor name, d in table(type(k)).items():\n    print(name)\n",
            Status::Error,
            "vars() of a class is not allowed",
        ),
        (
            "module",
            "import re\ndef table(o):\n    return vars(o)\nprint(table(re.enum))\n",
            Status::Error,
            "vars() of a module is not allowed",
        ),
    ];
    for (what, source, status, text) in cases {
        let policy = if *what == "module" {
            &unvalidated
        } else {
            &validated
        };
        for backend in BACKENDS {
            let outcome = run_on(backend, source, b"", None, policy).await;
            let seen = format!("{}{}", outcome.stdout, outcome.stderr);
            assert!(
                outcome.status == *status && seen.contains(text),
                "{what} on {backend}: {}\nviolations: {:?}\nstdout: {}\nstderr: {}",
                outcome.summary(),
                outcome.violations,
                outcome.stdout,
                outcome.stderr
            );
        }
    }
}
