//! `stratbox batch`: one outcome per request line, bad lines `invalid`, the exit code rule.

use std::collections::BTreeMap;
use std::process::Output;

/// Runs `stratbox batch` with `args`, feeding it `stdin`.
fn batch(args: &[&str], stdin: Vec<u8>) -> Output {
    let mut all = vec!["batch"];
    all.extend_from_slice(args);
    crate::common::stratbox_fed(&all, stdin)
}

/// Every stdout line as a JSON outcome.
fn outcomes(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| {
                panic!(
                    "not a JSON line ({e}): {line}\nstderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                )
            })
        })
        .collect()
}

/// The outcomes by id.
fn by_id(output: &Output) -> BTreeMap<String, serde_json::Value> {
    outcomes(output)
        .into_iter()
        .map(|outcome| {
            let id = outcome["id"]
                .as_str()
                .expect("every outcome has an id")
                .to_owned();
            (id, outcome)
        })
        .collect()
}

#[test]
fn every_line_gets_one_outcome_and_bad_lines_say_why() {
    let mut input = Vec::new();
    for line in [
        r#"{"id": "ok", "source": "import json, sys\nprint(json.load(sys.stdin)['n'] * 2)", "input": {"n": 21}}"#,
        r#"{"id": "file", "path": "tests/fixtures/honest/abc_numbers.py", "input_path": "tests/fixtures/honest/input.json", "backend": "wasm"}"#,
        r#"{"id": "fails", "source": "raise SystemExit(3)"}"#,
        r#"{"id": "refused", "source": "import os"}"#,
        r#"{"id": "unknown", "source": "print(1)", "sorce": "x"}"#,
        r#"{"id": "both", "source": "print(1)", "path": "x.py"}"#,
        r#"{"id": "neither"}"#,
        r#"{"id": "missing", "path": "no/such/file.py"}"#,
        r#"{"id": "profile", "source": "print(1)", "profile": "no-such-profile"}"#,
        r#"{"source": "print('no id')"}"#,
        "this is not json",
        "",
    ] {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    input.extend_from_slice(b"{\"id\": \"utf8\", \"source\": \"print('\xff')\"}\n");
    let out = batch(&["-"], input);
    let outcomes = by_id(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 12 lines with content (the empty line is skipped), each with one outcome.
    assert_eq!(outcomes.len(), 12, "{outcomes:#?}\n{stderr}");
    let status = |id: &str| {
        outcomes[id]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let message = |id: &str| {
        outcomes[id]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(status("ok"), "ok");
    assert_eq!(outcomes["ok"]["stdout"], "42\n");
    assert_eq!(status("file"), "ok", "{:#}", outcomes["file"]);
    assert_eq!(status("fails"), "error");
    assert_eq!(outcomes["fails"]["exit_code"], 3);
    assert_eq!(status("refused"), "rejected");
    // A request without an id gets its line number.
    assert_eq!(status("10"), "ok");
    assert_eq!(outcomes["10"]["stdout"], "no id\n");
    for (id, says) in [
        ("unknown", "unknown field `sorce`"),
        ("both", "a request takes `source` or `path`, not both"),
        ("neither", "a request needs `source` or `path`"),
        ("missing", "cannot read `path` no/such/file.py"),
        ("profile", "no built-in profile named `no-such-profile`"),
        (
            "11",
            "not a valid request: expected ident at line 1 column 2",
        ),
        ("13", "not valid UTF-8 (byte 34 of the line)"),
    ] {
        assert_eq!(status(id), "invalid", "{id}: {:#}", outcomes[id]);
        assert!(message(id).contains(says), "{id}: {}", message(id));
        assert!(outcomes[id]["backend"].is_null(), "{id}: nothing ran");
    }
    // The most severe ending decides the exit code: rejected (3) over invalid (2) and
    // error (1).
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stratbox: 12 requests · 1 error, 7 invalid, 3 ok, 1 rejected · wall p50"),
        "{stderr}"
    );
}

#[test]
fn a_100_mb_line_is_invalid_and_the_next_one_runs() {
    let mut input = br#"{"id": "huge", "source": "print(1)", "input": ""#.to_vec();
    input.resize(input.len() + 100_000_000, b'x');
    input.extend_from_slice(b"\"}\n{\"id\": \"after\", \"source\": \"print('after')\"}\n");
    let out = batch(&[], input);
    let outcomes = by_id(&out);
    assert_eq!(outcomes.len(), 2, "{outcomes:#?}");
    assert_eq!(outcomes["after"]["status"], "ok");
    // The id of an overlong line is never parsed: it gets its line number.
    let huge = &outcomes["1"];
    assert_eq!(huge["status"], "invalid");
    let message = huge["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the line is 100000")
            && message.contains("longer than the 66624KiB a request may take"),
        "{message}"
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn request_limits_apply_and_batch_has_no_ceiling() {
    // Under strict (64 KiB of stdout, overflow kills) 100 KB of output is stopped; a
    // request may raise the cap (batch's requests may name any profile, so there is no
    // ceiling), lower another, or fail to parse its limits. (Printed in 5 KB lines: a
    // single write over 64 KiB loses its tail on the wasm backend, a defect of its own.)
    let print = "for _ in range(20):\n    print('x' * 4999)";
    let lines = [
        serde_json::json!({"id": "plain", "source": print}),
        serde_json::json!({"id": "raised", "source": print, "limits": {"stdout": "128KiB"}}),
        serde_json::json!({"id": "lowered", "source": "print('hello')", "limits": {"stdout": "2B"}}),
        serde_json::json!({"id": "unknown", "source": "print(1)", "limits": {"walltime": "1s"}}),
        serde_json::json!({"id": "too-small", "source": "print(1)", "limits": {"memory": "1MiB"}}),
    ];
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let out = batch(&["--profile", "strict"], input.into_bytes());
    let outcomes = by_id(&out);
    let ending = |id: &str| {
        let outcome = &outcomes[id];
        (
            outcome["status"].as_str().unwrap_or_default().to_owned(),
            outcome["reason"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(ending("plain"), ("killed".into(), "output".into()));
    assert_eq!(ending("raised"), ("ok".into(), String::new()));
    assert_eq!(
        outcomes["raised"]["stdout"].as_str().map(str::len),
        Some(100_000)
    );
    assert_eq!(ending("lowered"), ("killed".into(), "output".into()));
    assert_eq!(outcomes["lowered"]["stdout"], "he");
    for (id, needle) in [
        ("unknown", "unknown field `walltime`"),
        ("too-small", "limits.memory is 1MiB, below"),
    ] {
        assert_eq!(ending(id).0, "invalid");
        let message = outcomes[id]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{id}: {message}");
    }
}

#[test]
fn all_ok_exits_zero_and_ordered_keeps_input_order() {
    let mut input = String::new();
    for n in 0..40 {
        // Later lines finish sooner: without --ordered they would come out shuffled.
        let spin = (40 - n) * 20_000;
        input.push_str(&format!(
            "{{\"id\": \"r{n}\", \"source\": \"for _ in range({spin}): pass\\nprint({n})\"}}\n"
        ));
    }
    let out = batch(&["--ordered", "--jobs", "4"], input.into_bytes());
    let ids: Vec<String> = outcomes(&out)
        .iter()
        .map(|outcome| {
            assert_eq!(outcome["status"], "ok", "{outcome:#}");
            outcome["id"].as_str().unwrap_or_default().to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..40).map(|n| format!("r{n}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn dir_runs_every_strategy_with_the_shared_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let strategies = dir.path().join("strategies");
    std::fs::create_dir(&strategies).expect("dir");
    for (name, source) in [
        ("a.py", "import json, sys\nprint(sum(json.load(sys.stdin)))"),
        ("b.py", "import json, sys\nprint(max(json.load(sys.stdin)))"),
        ("c.py", "import socket"),
    ] {
        std::fs::write(strategies.join(name), source).expect("strategy");
    }
    std::fs::write(strategies.join("notes.txt"), "not a strategy").expect("notes");
    let input = dir.path().join("input.json");
    std::fs::write(&input, "[1, 5, 3]").expect("input");
    let out = batch(
        &[
            "--dir",
            &strategies.to_string_lossy(),
            "--input",
            &input.to_string_lossy(),
        ],
        Vec::new(),
    );
    let outcomes = by_id(&out);
    assert_eq!(
        outcomes.keys().collect::<Vec<_>>(),
        ["a.py", "b.py", "c.py"],
        "{outcomes:#?}"
    );
    assert_eq!(outcomes["a.py"]["stdout"], "9\n");
    assert_eq!(outcomes["b.py"]["stdout"], "5\n");
    assert_eq!(outcomes["c.py"]["status"], "rejected");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn usage_errors_exit_two() {
    let out = batch(&["no/such/requests.jsonl"], Vec::new());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read the requests no/such/requests.jsonl"),
        "{out:?}"
    );
    let out = batch(&["--dir", "examples", "requests.jsonl"], Vec::new());
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = batch(&["--input", "x.json"], Vec::new());
    assert_eq!(out.status.code(), Some(2), "--input needs --dir: {out:?}");
}

// --- wasm worker processes ---------------------------------------------------------------

/// A profile with tight limits, so that each limit is reached quickly.
fn tight_profile(dir: &std::path::Path) -> String {
    let path = dir.join("tight.toml");
    std::fs::write(
        &path,
        "[limits]\nwall-time = \"3s\"\nfuel = 400_000_000\nmemory = \"96MiB\"\n\
         stdout = \"4KiB\"\ntmp-size = \"1MiB\"\n",
    )
    .expect("profile");
    path.to_string_lossy().into_owned()
}

/// With several jobs, wasm runs go to worker processes; every limit and every ending is
/// the same as when the batch runs them in its own process (`--jobs 1`).
#[test]
fn worker_processes_end_every_request_as_the_batch_process_does() {
    let dir = tempfile::tempdir().expect("dir");
    let profile = tight_profile(dir.path());
    let requests = [
        (
            "ok",
            "import json, sys\nprint(json.load(sys.stdin)['n'] * 2)",
        ),
        ("raises", "raise ValueError('no')"),
        ("exits", "raise SystemExit(3)"),
        ("fuel", "while True:\n    pass"),
        ("deadline", "import time\ntime.sleep(30)"),
        (
            "memory",
            "blocks = []\nwhile True:\n    blocks.append(bytearray(8 << 20))",
        ),
        ("output", "for i in range(2_000):\n    print(i)"),
        (
            "scratch",
            "with open('/tmp/x', 'w') as f:\n    f.write('kept')\nprint(open('/tmp/x').read())",
        ),
        (
            "scratch-full",
            "open('/tmp/big', 'wb').write(b'x' * (2 << 20))",
        ),
    ];
    let mut input = String::new();
    for (id, source) in requests {
        let line = serde_json::json!({"id": id, "source": source, "input": {"n": 21}});
        input.push_str(&format!("{line}\n"));
    }
    let in_process = by_id(&batch(
        &["--jobs", "1", "--profile", &profile],
        input.clone().into_bytes(),
    ));
    let workers = by_id(&batch(
        &["--jobs", "2", "--profile", &profile],
        input.into_bytes(),
    ));
    let expected = [
        ("ok", "ok", None),
        ("raises", "error", None),
        ("exits", "error", None),
        ("fuel", "killed", Some("fuel")),
        ("deadline", "killed", Some("deadline")),
        ("memory", "killed", Some("memory")),
        ("output", "ok", None),
        ("scratch", "ok", None),
        ("scratch-full", "error", None),
    ];
    for (id, status, reason) in expected {
        for (how, outcomes) in [("in process", &in_process), ("workers", &workers)] {
            let outcome = &outcomes[id];
            assert_eq!(outcome["status"], status, "{id} ({how}): {outcome:#}");
            assert_eq!(
                outcome["reason"].as_str(),
                reason,
                "{id} ({how}): {outcome:#}"
            );
            assert_eq!(outcome["backend"], "wasm", "{id} ({how})");
        }
        let (a, b) = (&in_process[id], &workers[id]);
        for field in ["exit_code", "stdout", "truncated", "message"] {
            assert_eq!(a[field], b[field], "{id}: {field} differs");
        }
        if status != "killed" {
            assert_eq!(a["usage"]["fuel"], b["usage"]["fuel"], "{id}: fuel differs");
        }
    }
    assert_eq!(workers["ok"]["stdout"], "42\n");
    assert_eq!(workers["scratch"]["stdout"], "kept\n");
    assert_eq!(workers["output"]["truncated"]["stdout"], true);
}

/// The processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(entry) = entry else { continue };
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent's pid is the second field after the command name in parentheses.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        if after_name.split_whitespace().nth(1) == Some(&pid.to_string()) {
            children.push(child);
        }
    }
    children
}

/// A worker killed in the middle of a run: that run is `unavailable` and says why, and
/// the batch goes on with a new worker.
#[test]
fn a_worker_killed_mid_run_fails_that_run_only() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["batch", "--jobs", "2"])
        .current_dir(crate::common::root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stratbox starts");
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(
        stdin,
        r#"{{"id": "slow", "source": "import time\ntime.sleep(8)\nprint('late')"}}"#
    )
    .expect("first request");
    stdin.flush().expect("flush");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let worker = loop {
        if let Some(worker) = children_of(child.id()).first().copied() {
            break worker;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no worker process started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // Let the worker take the job, then kill it.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    writeln!(stdin, r#"{{"id": "after", "source": "print('after')"}}"#).expect("request");
    drop(stdin);
    let out = child.wait_with_output().expect("batch ends");
    let outcomes = by_id(&out);
    let slow = &outcomes["slow"];
    assert_eq!(slow["status"], "unavailable", "{slow:#}");
    assert_eq!(slow["cause"], "wasm-runtime", "{slow:#}");
    assert!(
        slow["message"]
            .as_str()
            .is_some_and(|m| m.contains("worker process failed")),
        "{slow:#}"
    );
    assert_eq!(outcomes["after"]["status"], "ok", "{outcomes:#?}");
    assert_eq!(outcomes["after"]["stdout"], "after\n");
    assert_ne!(out.status.code(), Some(0));
}

#[test]
fn nothing_carries_between_runs_in_a_worker_process() {
    // Two workers, each keeping only the pages a run wrote for the next instance in its
    // slot: every run that looks follows runs that left a global, a module attribute and a
    // file under /tmp in the same worker, and finds none of them.
    let leaves = "import json\nCOUNTER = 41\njson.CACHED = 'x'\n\
                  open('/tmp/leak.txt', 'w').write('x')\nprint('left')";
    let looks = "import json\n\
                 try:\n    print(COUNTER)\nexcept NameError:\n    print('no global')\n\
                 try:\n    print(json.CACHED)\nexcept AttributeError:\n    print('no attribute')\n\
                 try:\n    open('/tmp/leak.txt')\nexcept FileNotFoundError:\n    print('no file')";
    let mut input = String::new();
    for i in 0..12 {
        for (kind, source) in [("leaves", leaves), ("looks", looks)] {
            let line = serde_json::json!({"id": format!("{kind}-{i}"), "source": source});
            input.push_str(&format!("{line}\n"));
        }
    }
    let output = batch(&["--jobs", "2", "--ordered"], input.into_bytes());
    let outcomes = by_id(&output);
    assert_eq!(
        outcomes.len(),
        24,
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (id, outcome) in &outcomes {
        assert_eq!(outcome["status"], "ok", "{id}: {outcome:#}");
        let expected = match id.starts_with("leaves") {
            true => "left\n",
            false => "no global\nno attribute\nno file\n",
        };
        assert_eq!(outcome["stdout"], expected, "{id}: {outcome:#}");
    }
}
