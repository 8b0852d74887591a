//! The audit log: whole lines under concurrency, the facts of each run, and `audit verify`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use stratbox::audit::{AuditLog, AuditRecord, Fsync, RunFacts};
use stratbox::{BackendKind, Request, Status};

use crate::common::{policy, sandbox, stratbox};

/// What `sha256sum FILE` prints for the file.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .expect("a hash")
        .to_owned()
}

fn records(path: &Path) -> Vec<AuditRecord> {
    std::fs::read_to_string(path)
        .expect("the log reads")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// 200 real runs on many threads, one shared log: 200 whole lines, each naming the source
/// that ran by the hash `sha256sum` gives its file.
#[test]
fn concurrent_runs_write_whole_lines() {
    const RUNS: usize = 200;
    let dir = tempfile::tempdir().expect("temp dir");
    let log_path = dir.path().join("audit.jsonl");
    let log = Arc::new(
        AuditLog::open(&log_path)
            .expect("the log opens")
            .with_fsync(Fsync::Never),
    );
    let mut files = BTreeMap::new();
    for i in 0..RUNS {
        let path = dir.path().join(format!("s{i:03}.py"));
        // Sources of different lengths, some long, so that lines differ in size.
        let padding = "# pad\n".repeat(i * 7);
        std::fs::write(&path, format!("{padding}print({i})\n")).expect("source written");
        files.insert(format!("s{i:03}.py"), path);
    }
    let policy = Arc::new(policy(""));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let tasks: Vec<_> = files
            .iter()
            .map(|(name, path)| {
                let (name, source) = (name.clone(), std::fs::read(path).expect("source"));
                let (log, policy) = (Arc::clone(&log), Arc::clone(&policy));
                tokio::spawn(async move {
                    let request = Request::new(&source, &name);
                    let outcome = sandbox().run(&request, &policy).await;
                    assert_eq!(outcome.status, Status::Ok, "{}", outcome.summary());
                    let facts = RunFacts::new(sandbox(), &request, &policy).request_id(&name);
                    // The write itself happens on a blocking thread, many at once.
                    tokio::task::spawn_blocking(move || {
                        log.write(&AuditRecord::new(&facts, &outcome))
                    })
                    .await
                    .expect("the writer did not panic")
                    .expect("the record is written");
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("the run task did not panic");
        }
    });
    let text = std::fs::read_to_string(&log_path).expect("the log reads");
    assert!(text.ends_with('\n'));
    let found = records(&log_path);
    assert_eq!(found.len(), RUNS);
    let mut seen = std::collections::BTreeSet::new();
    for record in &found {
        let id = record.request_id.clone().expect("an id");
        assert_eq!(record.filename, id);
        assert_eq!(record.source_sha256, sha256sum(&files[&id]), "{id}");
        assert_eq!(record.backend, Some(BackendKind::Wasm));
        let runtime = record.runtime.as_deref().expect("the guest is named");
        assert!(runtime.starts_with("wasm-guest:"), "{runtime}");
        assert!(seen.insert(id), "a run was recorded twice");
    }
    assert_eq!(
        stratbox::audit::verify(&log_path).expect("sound").records,
        RUNS
    );
}

#[test]
fn run_appends_a_record_and_verify_checks_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("runs.jsonl");
    let log_arg = log.to_str().expect("UTF-8 path");
    let strategy = dir.path().join("s.py");
    std::fs::write(&strategy, "import random\nprint(random.random())\n").expect("written");
    let input = dir.path().join("in.json");
    std::fs::write(&input, "{\"prices\": [1, 2]}").expect("written");
    let strategy_arg = strategy.to_str().expect("UTF-8 path");
    let input_arg = input.to_str().expect("UTF-8 path");
    let out = stratbox(&[
        "run",
        strategy_arg,
        "--input",
        input_arg,
        "--seed",
        "5",
        "--audit",
        log_arg,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let rejected = dir.path().join("bad.py");
    std::fs::write(&rejected, "import socket\neval('1')\n").expect("written");
    let out = stratbox(&[
        "run",
        rejected.to_str().expect("UTF-8 path"),
        "--audit",
        log_arg,
        "--audit-fsync",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(3));

    let found = records(&log);
    assert_eq!(found.len(), 2);
    let ok = &found[0];
    assert_eq!(ok.source_sha256, sha256sum(&strategy));
    assert_eq!(ok.input_sha256, sha256sum(&input));
    assert_eq!(
        (ok.status, ok.exit_code, ok.seed),
        (Status::Ok, Some(0), Some(5))
    );
    assert!(ok.deterministic);
    assert_eq!(ok.policy, "default");
    assert_eq!(ok.policy_sha256.len(), 64);
    assert!(ok.usage.fuel > 0);
    assert!(ok.time.ends_with('Z') && ok.time.len() == 24, "{}", ok.time);
    let bad = &found[1];
    assert_eq!(
        (bad.status, bad.backend, bad.seed),
        (Status::Rejected, None, None)
    );
    let rules: Vec<String> = bad.rules.iter().map(|r| r.to_string()).collect();
    assert!(
        rules.contains(&"forbidden-import".to_owned())
            && rules.contains(&"forbidden-call".to_owned()),
        "{rules:?}"
    );
    assert_ne!(
        bad.policy_sha256, ok.policy_sha256,
        "the seed is part of the policy"
    );

    let out = stratbox(&["audit", "verify", log_arg]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 records"));

    // A record cut short by a crash, then a line that is no record.
    let text = std::fs::read_to_string(&log).expect("reads");
    let first_line = text.lines().next().expect("a line");
    std::fs::write(&log, format!("{text}{}", &first_line[..40])).expect("written");
    let out = stratbox(&["audit", "verify", log_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":3: the log ends mid-line"));
    std::fs::write(&log, format!("{text}{{\"status\": \"ok\"}}\n")).expect("written");
    let out = stratbox(&["audit", "verify", log_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":3: not an audit record"));
    let missing = dir.path().join("missing.jsonl");
    let out = stratbox(&["audit", "verify", missing.to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(2));
}

/// A log that cannot be opened stops the command before anything runs; one that cannot
/// be written is reported after the run, not dropped.
#[test]
fn an_unusable_log_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let strategy = dir.path().join("s.py");
    std::fs::write(&strategy, "print('ran')\n").expect("written");
    let strategy = strategy.to_str().expect("UTF-8 path");
    let nowhere = dir.path().join("no/such/dir/log.jsonl");
    let out = stratbox(&["run", strategy, "--audit", nowhere.to_str().expect("UTF-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "the strategy ran");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open the audit log"));

    let out = stratbox(&[
        "run",
        strategy,
        "--audit",
        "/dev/full",
        "--audit-fsync",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ran\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audit record was not written"), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
}
