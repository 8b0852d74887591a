//! `stratbox doctor --probe` and `--seccomp` against the real engine and guest: every probe
//! holds under the shipped policy, a weakened seccomp profile is caught and named, and no
//! container is left behind, also after Ctrl-C.
//!
//! Needs the runtime image and the engine's default seccomp profile (`make host-packages`);
//! either missing fails the tests, it never skips them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use stratbox::Policy;
use stratbox::backend::container::probe::PROBES;

use crate::common::{containers_of, ensure_image, json, root};

/// The fixture that allows unshare(2).
fn allow_unshare() -> PathBuf {
    root().join("tests/fixtures/seccomp/allow-unshare.json")
}

/// The wasm probes, in their order.
const WASM_PROBES: &[&str] = &[
    "wasm-preopens",
    "wasm-sockets",
    "wasm-environment",
    "wasm-fuel",
    "wasm-deadline",
];

/// A policy file named uniquely for this test (so its containers can be counted), with
/// `container` TOML in its `[container]` table.
fn policy_file(dir: &Path, test: &str, container: &str) -> (PathBuf, Policy) {
    let path = dir.join(format!(
        "{test}-{:012x}.toml",
        std::process::id() as u64 * 7919 + rand()
    ));
    std::fs::write(
        &path,
        format!("description = \"doctor test {test}\"\n[container]\n{container}\n"),
    )
    .expect("policy file");
    let policy = Policy::from_file(&path).expect("policy");
    (path, policy)
}

fn rand() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        & 0xffff_ffff
}

fn doctor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("run stratbox doctor")
}

/// The probes of a `--probe --json` report, as (backend, name) → (held, seen).
fn probes(report: &serde_json::Value) -> Vec<(String, String, bool, String)> {
    report["probe"]["probes"]
        .as_array()
        .expect("probes")
        .iter()
        .map(|p| {
            (
                p["backend"].as_str().expect("backend").to_owned(),
                p["name"].as_str().expect("name").to_owned(),
                p["held"].as_bool().expect("held"),
                p["seen"].as_str().expect("seen").to_owned(),
            )
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn every_probe_holds_under_the_default_policy() {
    runtime().block_on(ensure_image());
    let dir = tempfile::tempdir().expect("dir");
    let (path, policy) = policy_file(dir.path(), "probe-default", "");
    let output = doctor(&[
        "--probe",
        "--json",
        "--profile",
        path.to_str().expect("utf-8"),
    ]);
    let report = json(&output);
    let found = probes(&report);
    let names: Vec<(&str, &str)> = found
        .iter()
        .map(|(b, n, _, _)| (b.as_str(), n.as_str()))
        .collect();
    let expected: Vec<(&str, &str)> = PROBES
        .iter()
        .map(|n| ("container", *n))
        .chain(WASM_PROBES.iter().map(|n| ("wasm", *n)))
        .collect();
    assert_eq!(names, expected);
    let failed: Vec<_> = found.iter().filter(|p| !p.2).collect();
    assert!(failed.is_empty(), "probes that did not hold: {failed:#?}");
    assert_eq!(report["probe"]["held"], true);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(report["probe"]["seccomp_profile"], "engine default");
    let seen = |name: &str| {
        found
            .iter()
            .find(|p| p.1 == name)
            .map(|p| p.3.as_str())
            .expect(name)
    };
    assert!(
        seen("seccomp").starts_with("Seccomp: 2"),
        "{}",
        seen("seccomp")
    );
    assert!(
        seen("syscall-unshare").contains("EPERM"),
        "{}",
        seen("syscall-unshare")
    );
    assert!(seen("wasm-preopens").contains("['data', 'tmp']"));
    runtime().block_on(async { assert!(containers_of(&policy.name).await.is_empty()) });
}

#[test]
fn a_profile_that_allows_unshare_fails_the_unshare_probe() {
    runtime().block_on(ensure_image());
    let dir = tempfile::tempdir().expect("dir");
    let fixture = allow_unshare();
    let (path, policy) = policy_file(
        dir.path(),
        "probe-unshare",
        &format!("seccomp-profile = {:?}", fixture.display().to_string()),
    );
    let output = doctor(&[
        "--probe",
        "--json",
        "--profile",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    let report = json(&output);
    assert_eq!(report["probe"]["held"], false);
    let failed: Vec<(String, String)> = probes(&report)
        .into_iter()
        .filter(|p| !p.2)
        .map(|p| (p.1, p.3))
        .collect();
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["syscall-unshare"], "{failed:#?}");
    let seen = &failed[0].1;
    assert!(seen.starts_with("succeeded"), "{seen}");
    assert!(
        seen.contains("allow-unshare.json") && seen.contains("allows unshare"),
        "{seen}"
    );

    // The human report names it too.
    let output = doctor(&["--probe", "--profile", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(5));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("NOT HELD container") && l.contains("syscall-unshare")),
        "{text}"
    );
    assert!(text.contains("NOT fully in force"), "{text}");
    runtime().block_on(async { assert!(containers_of(&policy.name).await.is_empty()) });
}

#[test]
fn seccomp_report_of_the_engine_default() {
    let output = doctor(&["--seccomp", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    let seccomp = &report["seccomp"];
    assert!(report.get("probe").is_none());
    let summary = &seccomp["summary"];
    assert_eq!(summary["origin"]["name"], "engine default");
    assert!(
        summary["origin"]["moby_version"].is_string(),
        "the moby version is known: {summary}"
    );
    assert_eq!(summary["default_action"], "SCMP_ACT_ERRNO");
    let count = |key: &str| summary[key].as_array().map_or(0, Vec::len);
    assert!(count("allowed") > 250, "{}", count("allowed"));
    assert!(count("denied") > 0);
    assert!(
        summary["architectures"]
            .as_array()
            .expect("arches")
            .iter()
            .any(|a| a == "SCMP_ARCH_X86_64")
    );
    // unshare and mount need CAP_SYS_ADMIN, which no stratbox container holds.
    for call in ["unshare", "mount", "setns", "bpf"] {
        assert!(
            summary["capability_only"][call]
                .as_array()
                .is_some_and(|caps| caps.iter().any(|c| c == "CAP_SYS_ADMIN")),
            "{call}: {}",
            summary["capability_only"]
        );
    }
    assert!(
        seccomp["against_default"].is_null(),
        "the default is not compared with itself"
    );

    let output = doctor(&["--seccomp"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "seccomp profile: engine default",
        "from moby ",
        "allowed ",
        "denied ",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}

#[test]
fn seccomp_report_names_what_a_pinned_profile_adds() {
    let fixture = allow_unshare();
    let output = doctor(&["--seccomp", fixture.to_str().expect("utf-8"), "--json"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let report = json(&output);
    let diff = &report["seccomp"]["against_default"];
    let adds = diff["adds"].as_array().expect("adds");
    let unshare = adds
        .iter()
        .find(|s| s["name"] == "unshare")
        .unwrap_or_else(|| panic!("unshare is added: {diff}"));
    assert!(
        unshare["risk"]
            .as_str()
            .is_some_and(|r| r.contains("namespace"))
    );
    for refused in ["mount", "setns", "bpf", "keyctl", "ptrace"] {
        assert!(
            !adds.iter().any(|s| s["name"] == refused),
            "{refused}: {diff}"
        );
    }
    assert_eq!(
        report["seccomp"]["summary"]["default_action"],
        "SCMP_ACT_ALLOW"
    );

    let output = doctor(&["--seccomp", fixture.to_str().expect("utf-8")]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("against the engine's default profile"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("unshare ")),
        "unshare is named with its risk: {text}"
    );
}

#[test]
fn seccomp_report_refuses_a_bad_profile() {
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"syscalls\": []}").expect("bad profile");
    let output = doctor(&["--seccomp", bad.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.json") && stderr.contains("defaultAction"),
        "{stderr}"
    );
    let output = doctor(&["--seccomp", "unconfined"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[test]
fn ctrl_c_mid_probe_removes_the_container() {
    let runtime = runtime();
    runtime.block_on(ensure_image());
    let dir = tempfile::tempdir().expect("dir");
    let (path, policy) = policy_file(dir.path(), "probe-ctrlc", "");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["doctor", "--probe", "--profile"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn stratbox");
    // The probe container lives for a second or two; interrupt as soon as it exists.
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            while containers_of(&policy.name).await.is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the probe container appears");
    });
    assert_eq!(crate::common::interrupt(&mut child), Some(130));
    // The engine may list a container for a moment after its removal was asked for.
    runtime.block_on(async {
        let removed = tokio::time::timeout(Duration::from_secs(10), async {
            while !containers_of(&policy.name).await.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(removed.is_ok(), "the probe container was left behind");
    });
}

/// Ctrl-C at any moment of a probe (before the create request, while the engine creates,
/// between create and start, while it runs, while it is removed) leaves no container.
#[test]
fn ctrl_c_at_any_moment_leaves_no_probe_container() {
    let runtime = runtime();
    runtime.block_on(ensure_image());
    let dir = tempfile::tempdir().expect("dir");
    let (path, policy) = policy_file(dir.path(), "probe-ctrlc-any", "");
    for delay_ms in [0, 40, 80, 120, 160, 200, 260, 330, 420, 550, 700, 900] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
            .args(["doctor", "--probe", "--profile"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn stratbox");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let code = crate::common::interrupt(&mut child);
        // Before its handler is installed the signal ends the process (no code); after,
        // stratbox reports the interruption (130) or, when the probe had already ended,
        // its own code.
        assert!(
            matches!(code, None | Some(0 | 130)),
            "after {delay_ms} ms: exit {code:?}"
        );
        runtime.block_on(async {
            let removed = tokio::time::timeout(Duration::from_secs(10), async {
                while !containers_of(&policy.name).await.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
            .await;
            assert!(
                removed.is_ok(),
                "Ctrl-C {delay_ms} ms after start left a probe container behind"
            );
        });
    }
}
