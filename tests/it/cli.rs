//! The `stratbox` command line: exit codes, bad input, human and JSON output.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{json, root};

fn stratbox(args: &[&str]) -> Output {
    stratbox_with_stdin(args, b"")
}

fn stratbox_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    crate::common::stratbox_fed(args, stdin.to_vec())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("fixture");
    path.to_string_lossy().into_owned()
}

#[test]
fn example_runs_for_people() {
    let out = stratbox(&[
        "run",
        "examples/strategies/sma_crossover.py",
        "--input",
        "examples/data/prices.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"symbol\": \"SYNTH\""), "{stdout}");
    let err = stderr(&out);
    let summary = err.lines().last().expect("a summary line");
    assert!(summary.starts_with("stratbox: ok · wasm · "), "{summary}");
    assert!(summary.contains("profile default"), "{summary}");
}

#[test]
fn json_outcome_has_the_documented_shape() {
    let out = stratbox(&[
        "run",
        "examples/strategies/sma_crossover.py",
        "--input",
        "examples/data/prices.json",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value = json(&out);
    for key in [
        "status",
        "reason",
        "backend",
        "route",
        "exit_code",
        "stdout",
        "stderr",
        "truncated",
        "violations",
        "usage",
        "policy",
        "schema_version",
        "cause",
    ] {
        assert!(value.get(key).is_some(), "missing {key}: {value}");
    }
    assert_eq!(value["status"], "ok");
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["cause"], serde_json::Value::Null);
    assert_eq!(value["reason"], serde_json::Value::Null);
    assert_eq!(value["backend"], "wasm");
    assert_eq!(value["route"]["backend"], "wasm");
    assert_eq!(value["exit_code"], 0);
    assert_eq!(value["truncated"]["stdout"], false);
    assert!(value["usage"]["fuel"].as_u64().expect("fuel") > 0);
    assert!(value["usage"]["wall_ms"].as_f64().expect("wall_ms") > 0.0);
    assert_eq!(value["policy"], "default");
    assert!(
        out.stderr.is_empty(),
        "--json keeps stderr quiet: {}",
        stderr(&out)
    );
}

#[test]
fn exit_codes_follow_the_status() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: [(&str, &str, &[&str], i32, &str); 4] = [
        ("ok.py", "print(1)", &[], 0, "ok"),
        ("raise.py", "raise ValueError('no')", &[], 1, "error"),
        (
            "spin.py",
            "while True:\n    pass",
            &["--fuel", "50000000"],
            4,
            "killed",
        ),
        (
            "sleep.py",
            "import time\ntime.sleep(100)",
            &["--timeout", "300ms"],
            4,
            "killed",
        ),
    ];
    for (name, source, extra, code, status) in cases {
        let file = write(dir.path(), name, source.as_bytes());
        let mut args = vec!["run", file.as_str(), "--json"];
        args.extend_from_slice(extra);
        let out = stratbox(&args);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", stderr(&out));
        assert_eq!(json(&out)["status"], status, "{name}");
    }
}

#[test]
fn strategy_from_stdin() {
    let out = stratbox_with_stdin(&["run", "-", "--json"], b"print('from stdin')");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["stdout"], "from stdin\n");
}

#[test]
fn empty_file_runs_and_prints_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "empty.py", b"");
    let out = stratbox(&["run", &file, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["stdout"], "");
}

#[test]
fn non_utf8_source_is_rejected_with_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(dir.path(), "latin1.py", b"x = 1\nname = 'caf\xe9'\n");
    let out = stratbox(&["run", &file, "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let value = json(&out);
    assert_eq!(value["status"], "rejected");
    assert_eq!(value["violations"][0]["rule"], "encoding");
    assert_eq!(value["violations"][0]["line"], 2);
    assert_eq!(value["violations"][0]["col"], 12);
    // And for people:
    let out = stratbox(&["run", &file]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("not valid UTF-8"), "{}", stderr(&out));
}

#[test]
fn oversized_source_is_rejected_without_reading_it_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = "# padding\n".repeat(5_000_000); // 50 MB
    let file = write(dir.path(), "big.py", big.as_bytes());
    let out = stratbox(&["run", &file, "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let value = json(&out);
    assert_eq!(value["violations"][0]["rule"], "source-size");
    assert!(
        value["violations"][0]["message"]
            .as_str()
            .expect("message")
            .contains("1MiB"),
        "{value}"
    );
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = stratbox(&["run", "no/such/strategy.py"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("cannot read the strategy no/such/strategy.py"),
        "{err}"
    );
    assert!(err.contains("No such file"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn directory_as_file_is_a_usage_error() {
    let out = stratbox(&["run", "examples"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
}

#[test]
fn bad_flags_and_values_are_usage_errors() {
    for (args, needle) in [
        (&["run", "x.py", "--frobnicate"][..], "--frobnicate"),
        (&["run", "x.py", "--timeout", "soon"][..], "soon"),
        (&["run", "x.py", "--memory", "lots"][..], "lots"),
        (&["run", "x.py", "--backend", "vm"][..], "vm"),
        (&["run", "x.py", "--profile", "nope"][..], "nope"),
        (&["run", "x.py", "--memory", "1MiB"][..], "below"),
        (&["launch"][..], "launch"),
    ] {
        let out = stratbox(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn bad_profile_file_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile = write(dir.path(), "mine.toml", b"[limits]\nwall_time = \"1s\"\n");
    let out = stratbox(&[
        "run",
        "examples/strategies/sma_crossover.py",
        "--profile",
        &profile,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("wall_time") && err.contains("mine.toml"),
        "{err}"
    );
}

#[test]
fn missing_input_and_bad_data_dir_are_usage_errors() {
    let out = stratbox(&[
        "run",
        "examples/strategies/sma_crossover.py",
        "--input",
        "nope.json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nope.json"), "{}", stderr(&out));
    let out = stratbox(&[
        "run",
        "examples/strategies/sma_crossover.py",
        "--data",
        "README.md",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
}

#[test]
fn missing_guest_is_unavailable() {
    let out = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["run", "examples/strategies/sma_crossover.py", "--json"])
        .current_dir(root())
        .env("STRATBOX_GUEST", "/nonexistent/guest.wasm")
        .output()
        .expect("stratbox runs");
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let value = json(&out);
    assert_eq!(value["status"], "unavailable");
    assert_eq!(value["cause"], "guest-missing");
    assert_eq!(value["schema_version"], 1);
    let message = value["message"].as_str().expect("message");
    assert!(
        message.contains("/nonexistent/guest.wasm") && message.contains("make guest"),
        "{message}"
    );
}

#[test]
fn doctor_names_why_a_world_writable_cache_is_not_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let shared = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["doctor", "--json"])
        .current_dir(root())
        .env("STRATBOX_CACHE_DIR", shared.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .expect("stratbox runs");
    let checks = json(&out);
    let cache = checks
        .as_array()
        .expect("a list of checks")
        .iter()
        .find(|check| check["name"] == "cache")
        .unwrap_or_else(|| panic!("no cache check: {checks}"));
    assert_eq!(cache["ok"], false, "{cache}");
    let detail = cache["detail"].as_str().expect("detail");
    assert!(
        detail.contains("compiles in memory") && detail.contains("written by group or others"),
        "{detail}"
    );
    // Nothing was written into the shared folder.
    let written: Vec<_> = walk(shared.path());
    assert!(written.iter().all(|p| !p.ends_with("cwasm")), "{written:?}");
}

#[test]
fn forged_entry_in_a_world_writable_cache_is_never_loaded() {
    use std::os::unix::fs::PermissionsExt as _;
    // The name the real entry has: the default cache's, as the log reports it.
    let run = |cache: Option<&Path>, source: &[u8]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stratbox"));
        command
            .args(["run", "-", "--json", "-vv"])
            .current_dir(root())
            .env_remove("RUST_LOG");
        if let Some(cache) = cache {
            command.env("STRATBOX_CACHE_DIR", cache);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("stratbox starts");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), source)
            .expect("source written");
        child.wait_with_output().expect("stratbox exits")
    };
    let out = run(None, b"pass\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = stderr(&out);
    let name = log
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("entry="))
        .filter_map(|path| Path::new(path).file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .next()
        .unwrap_or_else(|| panic!("the log names no cache entry:\n{log}"));
    assert!(
        name.starts_with("guest-") && name.ends_with(".cwasm"),
        "{name}"
    );

    // A shared folder anyone may write, holding an entry of that name: garbage code
    // (int3 instructions) behind a valid checksum.
    let shared = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(shared.path().join("wasm")).expect("wasm dir");
    let entry = shared.path().join("wasm").join(&name);
    let mut forged = vec![0xcc_u8; 1 << 16];
    let trailer = xxhash_rust::xxh3::xxh3_128(&forged).to_le_bytes();
    forged.extend_from_slice(&trailer);
    std::fs::write(&entry, &forged).expect("forged entry");
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");

    let out = run(Some(shared.path()), b"print(6 * 7)\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json(&out)["stdout"], "42\n");
    let log = stderr(&out);
    assert!(
        log.contains("WARN")
            && log.contains("compiled-guest cache not used")
            && log.contains("may be written by group or others (mode 777)"),
        "{log}"
    );
    assert!(!log.contains("cache hit"), "{log}");
    assert_eq!(
        std::fs::read(&entry).expect("entry"),
        forged,
        "left as it was"
    );
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        found.push(path.display().to_string());
        if path.is_dir() {
            found.extend(walk(&path));
        }
    }
    found
}

#[test]
fn corrupt_cache_entries_are_rebuilt() {
    let cache = tempfile::tempdir().expect("temp dir");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_stratbox"))
            .args(["run", "-", "--json"])
            .current_dir(root())
            .env("STRATBOX_CACHE_DIR", cache.path())
            .stdin(Stdio::null())
            .output()
            .expect("stratbox runs")
    };
    assert_eq!(run().status.code(), Some(0));
    let entries: Vec<_> = std::fs::read_dir(cache.path().join("wasm"))
        .expect("cache written")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let mut bytes = std::fs::read(&entries[0]).expect("entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entries[0], &bytes).expect("corrupt it");
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(
        std::fs::read(&entries[0]).expect("entry"),
        bytes,
        "the entry was rebuilt"
    );
}

#[test]
fn check_validates_and_routes_without_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = write(dir.path(), "bad.py", b"import os\nx = eval('1')\n");
    let out = stratbox(&["check", &bad, "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let value = json(&out);
    assert_eq!(value["status"], "rejected");
    let rules: Vec<_> = value["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap_or_default().to_owned(),
                v["line"].clone(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("forbidden-import".to_owned(), serde_json::json!(1)),
            ("forbidden-call".to_owned(), serde_json::json!(2))
        ]
    );
    let out = stratbox(&["check", &bad]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("error[forbidden-call]"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(" --> bad.py:2:5"), "{}", stderr(&out));

    let out = stratbox(&["check", "examples/strategies/sma_pandas.py", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let value = json(&out);
    assert_eq!(value["route"]["backend"], "container");
    assert!(
        value["route"]["why"]
            .as_str()
            .expect("why")
            .contains("numpy"),
        "{value}"
    );

    let out = stratbox(&[
        "check",
        "examples/strategies/sma_pandas.py",
        "--backend",
        "wasm",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["violations"][0]["rule"], "backend-mismatch");

    // A marker the strategy would print proves nothing ran.
    let marker = write(dir.path(), "ok.py", b"print('RAN')\n");
    let out = stratbox(&["check", &marker]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("RAN"));
    assert!(
        stderr(&out).contains("would run on wasm"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn rejected_run_prints_diagnostics_and_runs_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "walk.py",
        b"print('RAN')\n().__class__.__bases__[0].__subclasses__()\n",
    );
    let out = stratbox(&["run", &file]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty(), "nothing ran");
    let err = stderr(&out);
    assert!(err.contains("error[dunder-access]"), "{err}");
    assert!(err.contains("stratbox: rejected"), "{err}");
}

#[test]
fn doctor_reports_every_part() {
    let out = stratbox(&["doctor", "--json"]);
    let checks = json(&out);
    let checks = checks.as_array().expect("a list of checks");
    let ok = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {checks:?}"))["ok"]
            .as_bool()
            .expect("ok is a bool")
    };
    assert!(ok("guest") && ok("wasmtime"), "{checks:?}");
    if cfg!(feature = "test-docker") {
        assert!(ok("engine") && ok("seccomp") && ok("image"), "{checks:?}");
    }
    let all_ok = checks.iter().all(|c| c["ok"] == true);
    assert_eq!(out.status.code(), Some(if all_ok { 0 } else { 5 }));
}

#[test]
fn bench_measures_every_workload_and_writes_json_and_chart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("bench.json");
    let svg_path = dir.path().join("bench.svg");
    let out = stratbox(&[
        "bench",
        "--runs",
        "2",
        "--backend",
        "wasm",
        "--json",
        &json_path.to_string_lossy(),
        "--chart",
        &svg_path.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    for name in ["trivial", "stdlib", "compute", "numeric"] {
        assert!(table.contains(&format!("\n{name} — ")), "{name}:\n{table}");
    }
    for mode in ["native", "native-nearest", "wasm", "wasm-epoch", "wasm-cli"] {
        assert!(table.contains(&format!("\n  {mode} ")), "{mode}:\n{table}");
    }
    // Native interpreters are named by their real files, never a launcher's shim.
    assert!(table.contains("\nnative-nearest: /"), "{table}");
    assert!(!table.contains("/shims/"), "{table}");
    assert!(!table.contains("\n  container "), "not asked for:\n{table}");
    assert!(stderr(&out).contains("[1/"), "progress on stderr");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    let samples = report["samples"].as_array().expect("samples");
    let summary = report["summary"].as_array().expect("summary");
    for cell in summary {
        let (workload, mode) = (&cell["workload"], &cell["mode"]);
        let count = samples
            .iter()
            .filter(|s| &s["workload"] == workload && &s["mode"] == mode)
            .inspect(|s| assert!(s["ms"].as_f64().expect("ms") > 0.0, "{s}"))
            .count();
        let available = cell["availability"]["state"] == "available";
        assert_eq!(count, if available { 2 } else { 0 }, "{cell}");
    }
    // The wasm modes run every pure-Python workload (the guest is there, or this fails).
    for mode in ["wasm", "wasm-epoch", "wasm-cli"] {
        for workload in ["trivial", "stdlib", "compute"] {
            assert!(
                summary.iter().any(|c| c["workload"] == workload
                    && c["mode"] == mode
                    && c["availability"]["state"] == "available"),
                "{workload}/{mode} measured"
            );
        }
    }
    let svg = std::fs::read_to_string(&svg_path).expect("the chart");
    assert!(svg.contains("<svg"), "{svg}");
}

#[test]
fn bench_throughput_counts_every_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("throughput.json");
    let out = stratbox(&[
        "bench",
        "--throughput",
        "1",
        "--json",
        &json_path.to_string_lossy(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("the JSON file")).expect("JSON");
    let rows = report["rows"].as_array().expect("rows");
    let modes: Vec<&str> = rows.iter().filter_map(|row| row["mode"].as_str()).collect();
    assert_eq!(
        modes,
        ["native-isolated", "wasm", "batch", "cli"],
        "{table}"
    );
    for row in rows {
        assert_eq!(row["availability"]["state"], "available", "{row}\n{table}");
        // Every worker runs at least once.
        assert!(row["runs"].as_u64().is_some_and(|runs| runs >= 1), "{row}");
        assert!(
            row["runs_per_second"].as_f64().is_some_and(|r| r > 0.0),
            "{row}"
        );
        assert!(table.contains(&format!("\n  {} ", row["mode"].as_str().unwrap_or("?"))));
    }
    assert!(
        report["native_python"]
            .as_str()
            .is_some_and(|p| p.starts_with('/') && !p.contains("/shims/")),
        "{report}"
    );

    // The throughput count is a bench of its own: the table's flags do not go with it.
    let both = stratbox(&["bench", "--throughput", "1", "--runs", "2"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    // A real pipe whose reader takes one byte and goes away, as `| head -c 1` does; the
    // outcome (200 kB of output) is larger than the pipe's buffer, so the write fails.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' run - --json <<< \"print('x' * 200000)\" | head -c 1 >/dev/null",
            env!("CARGO_BIN_EXE_stratbox")
        ))
        .current_dir(root())
        .output()
        .expect("bash runs");
    assert_eq!(stderr(&out), "", "no error is printed");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_closed_stdout_exits_zero() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["run", "-", "--json"])
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stratbox starts");
    // Close the read end before anything is written: every write to stdout fails.
    drop(child.stdout.take());
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"print('x' * 100000)\n")
            .expect("source written");
    }
    let out = child.wait_with_output().expect("stratbox exits");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "no error is printed");
}

#[test]
fn verbose_logs_go_to_stderr_and_stdout_stays_the_json() {
    let args = [
        "run",
        "examples/strategies/sma_crossover.py",
        "--input",
        "examples/data/prices.json",
        "--json",
    ];
    let quiet = stratbox(&args);
    assert_eq!(quiet.status.code(), Some(0), "{}", stderr(&quiet));
    assert_eq!(stderr(&quiet), "", "no log by default on a normal run");
    let plain = json(&quiet);

    let verbose = stratbox(&[&args[..], &["-v"]].concat());
    assert_eq!(verbose.status.code(), Some(0), "{}", stderr(&verbose));
    let value = json(&verbose);
    assert_eq!(value["status"], "ok");
    assert_eq!(value["stdout"], plain["stdout"]);
    let log = stderr(&verbose);
    let summary = log
        .lines()
        .find(|line| line.contains("run finished"))
        .unwrap_or_else(|| panic!("no per-run summary in the log:\n{log}"));
    for field in [
        "INFO",
        "backend=\"wasm\"",
        "status=\"ok\"",
        "wall_ms=",
        "total_ms=",
    ] {
        assert!(summary.contains(field), "{field} missing: {summary}");
    }
    assert!(log.contains("wasm engine ready"), "{log}");
    // -v shows stratbox's steps, not debug detail; -vv adds the cache's.
    assert!(!log.contains("DEBUG"), "{log}");
    let debug = stderr(&stratbox(&[&args[..], &["-vv"]].concat()));
    assert!(debug.contains("cache hit"), "{debug}");
}

#[test]
fn quiet_and_rust_log_set_the_level_and_a_bad_filter_is_a_usage_error() {
    let run = |flags: &[&str], rust_log: &str| {
        Command::new(env!("CARGO_BIN_EXE_stratbox"))
            .args(["run", "-", "--json"])
            .args(flags)
            .current_dir(root())
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .output()
            .expect("stratbox runs")
    };
    let out = run(&[], "stratbox=info");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("run finished"), "{}", stderr(&out));
    assert_eq!(json(&out)["status"], "ok");
    let out = run(&["-q"], "");
    assert_eq!(stderr(&out), "");
    let out = run(&["-q", "-v"], "");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = run(&[], "stratbox=loud");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("RUST_LOG=\"stratbox=loud\" is not a valid log filter"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn completions_name_every_subcommand() {
    let help = String::from_utf8_lossy(&stratbox(&["--help"]).stdout).into_owned();
    let subcommands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("Options:").next())
        .unwrap_or_else(|| panic!("no command list in --help:\n{help}"))
        .lines()
        // `  name  what it does`; wrapped descriptions are indented further.
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|word| *word != "help")
        .collect();
    assert!(subcommands.len() >= 7, "{subcommands:?}");
    assert!(subcommands.contains(&"completions"), "{subcommands:?}");
    let out = stratbox(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("complete -F _stratbox"), "{script}");
    for subcommand in &subcommands {
        assert!(
            script.contains(&format!("stratbox,{subcommand})")),
            "{subcommand} missing from the bash completions"
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = stratbox(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("schema"),
            "{shell}"
        );
    }
    let out = stratbox(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tcsh"), "{}", stderr(&out));
}
