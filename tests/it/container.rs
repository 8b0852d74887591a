//! The container backend against the real engine: results, confinement, limits, cleanup.
//!
//! Needs a reachable Docker engine and the runtime image (`stratbox image build`); a
//! missing engine or image fails the tests, it never skips them. Each test runs under a
//! policy of its own name, and every container carries that name as the
//! `org.stratbox.policy` label, so a test can prove that none of *its* containers is left
//! while other tests run in parallel.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use stratbox::backend::Job;
use stratbox::backend::container::{ContainerBackend, ContainerError};
use stratbox::outcome::Outcome;
use stratbox::{BackendKind, Policy, Reason, Request, Sandbox, Status};

use crate::common::ensure_image;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// A policy named `name` (unique per test), validator off so that the backend alone is
/// tested, with `extra` TOML appended (which may add `[limits]` or `[container]` keys).
fn policy(name: &str, limits: &str, container: &str) -> Policy {
    let text = format!(
        "description = \"container test {name}\"\n\
         [limits]\n{limits}\n\
         [validator]\nenabled = false\n\
         [container]\n{container}\n"
    );
    Policy::from_toml(name, &format!("{name} (test)"), &text)
        .unwrap_or_else(|err| panic!("test policy {name}: {err}"))
}

/// Runs `source` in the container backend through the whole sandbox flow.
async fn run_in(source: &str, input: &[u8], data: Option<&Path>, policy: &Policy) -> Outcome {
    ensure_image().await;
    let sandbox = Sandbox::new();
    let request = Request {
        source: source.as_bytes(),
        filename: "strategy.py",
        input,
        data_dir: data,
        backend: Some(BackendKind::Container),
    };
    sandbox.run(&request, policy).await
}

async fn run(source: &str, policy: &Policy) -> Outcome {
    run_in(source, b"", None, policy).await
}

/// Names of the containers (running or not) labelled with this policy name.
async fn containers_of(policy: &Policy) -> Vec<String> {
    crate::common::containers_of(&policy.name).await
}

fn assert_status(outcome: &Outcome, status: Status, reason: Option<Reason>) {
    assert_eq!(
        (outcome.status, outcome.reason),
        (status, reason),
        "outcome: {}\nstdout: {}\nstderr: {}",
        outcome.summary(),
        outcome.stdout,
        outcome.stderr
    );
    assert_eq!(outcome.backend, Some(BackendKind::Container));
}

/// Lines `key=value` printed by a probe script.
fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {stdout}"))
}

/// A unique name for this test's resources.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{:012x}", rand_u64() & 0xffff_ffff_ffff)
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

// --- results ---------------------------------------------------------------------------

/// SMA crossover and Sharpe ratio computed here, in Rust, from the same prices: the
/// reference the pandas example must match.
fn reference_sma(prices: &serde_json::Value) -> (usize, f64, f64, f64) {
    const FAST: usize = 10;
    const SLOW: usize = 30;
    let closes: Vec<f64> = prices["bars"]
        .as_array()
        .expect("bars")
        .iter()
        .map(|b| b["close"].as_f64().expect("close"))
        .collect();
    let sma = |w: usize| -> Vec<Option<f64>> {
        (0..closes.len())
            .map(|i| (i + 1 >= w).then(|| closes[i + 1 - w..=i].iter().sum::<f64>() / w as f64))
            .collect()
    };
    let (fast, slow) = (sma(FAST), sma(SLOW));
    let (mut position, mut trades, mut daily) = (false, 0, Vec::new());
    for i in 1..closes.len() {
        daily.push(if position {
            closes[i] / closes[i - 1] - 1.0
        } else {
            0.0
        });
        let (Some(f0), Some(s0), Some(f1), Some(s1)) = (fast[i - 1], slow[i - 1], fast[i], slow[i])
        else {
            continue;
        };
        if f0 <= s0 && f1 > s1 && !position {
            position = true;
            trades += 1;
        } else if f0 >= s0 && f1 < s1 && position {
            position = false;
            trades += 1;
        }
    }
    let (mut equity, mut peak, mut drawdown) = (1.0f64, 1.0f64, 0.0f64);
    for r in &daily {
        equity *= 1.0 + r;
        peak = peak.max(equity);
        drawdown = drawdown.max(1.0 - equity / peak);
    }
    let n = daily.len() as f64;
    let mean = daily.iter().sum::<f64>() / n;
    let sd = (daily.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    (trades, equity - 1.0, mean / sd * 252f64.sqrt(), drawdown)
}

#[tokio::test(flavor = "multi_thread")]
async fn pandas_example_matches_an_independent_computation() {
    let source =
        std::fs::read_to_string(format!("{MANIFEST_DIR}/examples/strategies/sma_pandas.py"))
            .expect("example");
    let input = std::fs::read(format!("{MANIFEST_DIR}/examples/data/prices.json")).expect("prices");
    let prices: serde_json::Value = serde_json::from_slice(&input).expect("prices json");
    let mut numeric = Policy::load("numeric").expect("numeric profile");
    numeric.name = unique("ct-pandas");
    let outcome = run_in(&source, &input, None, &numeric).await;
    assert_status(&outcome, Status::Ok, None);
    let last = outcome.stdout.lines().last().expect("summary line");
    let got: serde_json::Value = serde_json::from_str(last).expect("summary json");
    let (trades, total_return, sharpe, drawdown) = reference_sma(&prices);
    assert_eq!(got["bars"], 500);
    assert_eq!(got["trades"].as_u64(), Some(trades as u64), "{last}");
    let close = |key: &str, want: f64, tol: f64| {
        let value = got[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {last}"));
        assert!((value - want).abs() <= tol, "{key}: {value} vs {want}");
    };
    close("total_return", total_return, 1e-6);
    close("sharpe", sharpe, 1e-4);
    close("max_drawdown", drawdown, 1e-6);
}

// --- confinement -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn confinement_is_in_force_inside() {
    let policy = policy(&unique("ct-status"), "", "");
    let probe = r#"
import os
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
for key in ("Seccomp", "NoNewPrivs", "CapEff", "CapPrm", "CapBnd"):
    print(f"{key}={status[key].strip()}")
print(f"uid={os.getuid()}")
print(f"euid={os.geteuid()}")
print(f"groups={os.getgroups()}")
print(f"pid1={open('/proc/1/cmdline').read().split(chr(0))[0]}")
print(f"ifaces={sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:])}")
print(f"env={sorted(os.environ)}")
"#;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    let out = &outcome.stdout;
    assert_eq!(field(out, "Seccomp"), "2");
    assert_eq!(field(out, "NoNewPrivs"), "1");
    for caps in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(field(out, caps), "0000000000000000", "{caps}");
    }
    assert_eq!(field(out, "uid"), "10001");
    assert_eq!(field(out, "euid"), "10001");
    assert_eq!(field(out, "pid1"), "/usr/bin/tini", "tini reaps children");
    assert_eq!(
        field(out, "ifaces"),
        "['lo']",
        "no network interface but loopback"
    );
    assert!(
        !field(out, "env").contains("DOCKER"),
        "nothing from the host environment"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn network_is_unreachable() {
    // A listener on the host's loopback: the container's 127.0.0.1 is its own.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let port = listener.local_addr().expect("addr").port();
    let policy = policy(&unique("ct-net"), "", "");
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): an address outside this machine. With no
    // interface but loopback nothing is sent anywhere; connect fails at once.
    let probe = format!(
        r#"
import socket
for host, port in (("127.0.0.1", {port}), ("192.0.2.1", 80), ("192.0.2.1", 443)):
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect((host, port))
        print(f"connected {{host}}:{{port}}")
    except OSError as e:
        print(f"refused {{host}}:{{port}} {{type(e).__name__}}")
try:
    socket.getaddrinfo("example.com", 443)
    print("resolved")
except OSError as e:
    print("no-dns", type(e).__name__)
"#
    );
    let outcome = run(&probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    assert!(!outcome.stdout.contains("connected"), "{}", outcome.stdout);
    assert!(!outcome.stdout.contains("resolved"), "{}", outcome.stdout);
    assert_eq!(
        outcome.stdout.matches("refused").count(),
        3,
        "{}",
        outcome.stdout
    );
    drop(listener);
}

#[tokio::test(flavor = "multi_thread")]
async fn root_file_system_is_read_only() {
    let policy = policy(&unique("ct-rofs"), "", "");
    let probe = r#"
import os
for path in ("/x", "/usr/x", "/etc/x", "/opt/stratbox/runner.py", "/etc/passwd"):
    try:
        with open(path, "a") as f:
            f.write("x")
        print(f"wrote {path}")
    except OSError as e:
        print(f"denied {path} {e.errno}")
for path in ("/y", "/usr/lib/y"):
    try:
        os.mkdir(path)
        print(f"wrote {path}")
    except OSError as e:
        print(f"denied {path} {e.errno}")
"#;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    assert!(!outcome.stdout.contains("wrote"), "{}", outcome.stdout);
    assert_eq!(
        outcome.stdout.matches("denied").count(),
        7,
        "{}",
        outcome.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tmp_is_capped_and_not_executable() {
    let policy = policy(
        &unique("ct-tmp"),
        "tmp-size = \"16MiB\"",
        "max-file-size = \"64MiB\"",
    );
    // The image has no program to copy but python3 itself (see
    // `no_shells_and_no_programs_but_python_and_tini`), which is as good an ELF as any.
    let probe = r##"
import os, shutil, subprocess, sys
with open("/tmp/small", "wb") as f:
    f.write(b"x" * (4 << 20))
print("small=ok")
try:
    with open("/tmp/big", "wb") as f:
        for _ in range(32):
            f.write(b"y" * (1 << 20))
    print("big=ok")
except OSError as e:
    print(f"big={e.errno}")
os.remove("/tmp/big")
os.remove("/tmp/small")
shutil.copy(os.path.realpath(sys.executable), "/tmp/python")
os.chmod("/tmp/python", 0o755)
with open("/tmp/run.py", "w") as f:
    f.write("#!/usr/bin/python3\nprint('ran')\n")
os.chmod("/tmp/run.py", 0o755)
for prog in ("/tmp/python", "/tmp/run.py"):
    try:
        subprocess.run([prog, "-c", "print('ran')"], check=True)
        print(f"exec={prog} ran")
    except OSError as e:
        print(f"exec={prog} {e.errno}")
"##;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    let out = &outcome.stdout;
    assert_eq!(field(out, "small"), "ok");
    assert_eq!(field(out, "big"), "28", "ENOSPC past the tmpfs cap: {out}");
    assert!(!out.contains("ran"), "noexec: {out}");
    assert!(out.contains("exec=/tmp/python 13"), "EACCES: {out}");
    assert!(out.contains("exec=/tmp/run.py 13"), "EACCES: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_shells_and_no_programs_but_python_and_tini() {
    let policy = policy(&unique("ct-noshell"), "", "");
    let probe = r#"
import os, shutil, stat, subprocess
for name in ("sh", "bash", "dash", "perl", "apt", "apt-get", "dpkg", "ls", "cat", "env", "busybox"):
    print(f"which-{name}={shutil.which(name)}")
try:
    subprocess.run(["sh", "-c", "echo ran"])
    print("subprocess=ran")
except OSError as e:
    print(f"subprocess={e.errno}")
print(f"system={os.system('echo ran')}")
for prog in ("/bin/sh", "/usr/bin/perl", "/usr/bin/env"):
    try:
        os.execv(prog, [prog, "-c", "echo ran"])
    except OSError as e:
        print(f"execv-{prog}={e.errno}")
executable = []
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev")]
    for name in files:
        path = os.path.join(root, name)
        mode = os.lstat(path).st_mode
        if stat.S_ISREG(mode) and mode & 0o7111:
            executable.append(path)
print("executable=" + " ".join(sorted(executable)))
for path in sorted(executable):
    if path.startswith("/usr/"):
        continue
    try:
        os.execv(path, [path])
    except OSError as e:
        print(f"exec-{path}={e.errno}")
"#;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    let out = &outcome.stdout;
    for name in [
        "sh", "bash", "dash", "perl", "apt", "apt-get", "dpkg", "ls", "cat", "env", "busybox",
    ] {
        assert_eq!(
            field(out, &format!("which-{name}")),
            "None",
            "{name}: {out}"
        );
    }
    assert_eq!(field(out, "subprocess"), "2", "ENOENT: {out}");
    assert_ne!(field(out, "system"), "0", "os.system has no shell: {out}");
    for prog in ["/bin/sh", "/usr/bin/perl", "/usr/bin/env"] {
        assert_eq!(field(out, &format!("execv-{prog}")), "2", "ENOENT: {out}");
    }
    assert!(!out.contains("ran"), "{out}");
    let executable: Vec<&str> = field(out, "executable").split(' ').collect();
    let (image, engine): (Vec<&str>, Vec<&str>) = executable
        .iter()
        .partition(|path| path.starts_with("/usr/"));
    let allowed = |path: &&str| {
        *path == "/usr/bin/tini"
            || path
                .strip_prefix("/usr/bin/python3.")
                .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit()))
            || (path.starts_with("/usr/lib") && path.contains("/ld-linux"))
    };
    assert!(
        image.iter().all(allowed),
        "only python3, tini and the program interpreter may be executable: {executable:?}"
    );
    assert_eq!(image.len(), 3, "{executable:?}");
    // The engine adds files of its own with execute bits (/.dockerenv, and the /etc/hosts
    // and /etc/resolv.conf it mounts); they are data, and with no shell nothing runs them.
    for path in engine {
        assert!(
            [
                "/.dockerenv",
                "/etc/hosts",
                "/etc/resolv.conf",
                "/etc/hostname"
            ]
            .contains(&path),
            "an executable file the image should not have: {path}"
        );
        assert_eq!(
            field(out, &format!("exec-{path}")),
            "8",
            "ENOEXEC for {path}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proc_self_mem_is_out_of_reach() {
    let policy = policy(&unique("ct-procmem"), "", "");
    let probe = r#"
import os
def attempt(name, path, flags):
    try:
        os.close(os.open(path, flags))
        print(f"{name}=opened")
    except OSError as e:
        print(f"{name}={e.errno}")
attempt("mem-rw", "/proc/self/mem", os.O_RDWR)
attempt("mem-w", "/proc/self/mem", os.O_WRONLY)
attempt("mem-r", "/proc/self/mem", os.O_RDONLY)
attempt("task-mem-rw", f"/proc/self/task/{os.getpid()}/mem", os.O_RDWR)
attempt("environ", "/proc/self/environ", os.O_RDONLY)
try:
    with open("/proc/self/mem", "r+b") as f:
        print("open=opened")
except OSError as e:
    print(f"open={e.errno}")
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines() if ":" in l)
print(f"status-readable={bool(status)}")
child = os.fork()
if child == 0:
    attempt("child-parent-mem-rw", f"/proc/{os.getppid()}/mem", os.O_RDWR)
    attempt("child-mem-rw", "/proc/self/mem", os.O_RDWR)
    os._exit(0)
os.waitpid(child, 0)
"#;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    let out = &outcome.stdout;
    for key in [
        "mem-rw",
        "mem-w",
        "mem-r",
        "task-mem-rw",
        "environ",
        "open",
        "child-parent-mem-rw",
        "child-mem-rw",
    ] {
        assert_eq!(field(out, key), "13", "{key}: EACCES expected: {out}");
    }
    assert_eq!(field(out, "status-readable"), "True", "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_are_current_and_match_the_image_labels() {
    let policy = policy(&unique("ct-versions"), "", "");
    let probe = r#"
import sys, numpy, pandas
print("python=%d.%d.%d" % sys.version_info[:3])
print("level=%d.%d" % sys.version_info[:2])
print("numpy=" + numpy.__version__)
print("pandas=" + pandas.__version__)
print("me=" + pandas.Series([1.0, 2.0], index=pandas.to_datetime(["2024-01-31", "2024-02-29"])).resample("ME").last().index.strftime("%Y-%m-%d").str.cat(sep=","))
"#;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    let out = &outcome.stdout;
    let major_minor = |v: &str| -> (u32, u32) {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    };
    assert!(major_minor(field(out, "python")) >= (3, 13), "{out}");
    assert!(major_minor(field(out, "numpy")) >= (2, 0), "{out}");
    assert!(major_minor(field(out, "pandas")) >= (2, 0), "{out}");
    assert_eq!(
        field(out, "me"),
        "2024-01-31,2024-02-29",
        "pandas 2 spelling: {out}"
    );
    assert_eq!(outcome.python.as_deref(), Some(field(out, "level")));

    let engine = ContainerBackend::new().engine().await.expect("engine");
    let facts = stratbox::image::facts(
        engine.docker(),
        &stratbox::image::ImageSpec::current().tag(),
    )
    .await
    .expect("inspect image")
    .expect("the image carries version labels");
    assert_eq!(facts.python, field(out, "python"));
    assert_eq!(facts.numpy, field(out, "numpy"));
    assert_eq!(facts.pandas, field(out, "pandas"));
    assert_eq!(facts.suite, stratbox::image::recipe::SUITE);
}

#[tokio::test(flavor = "multi_thread")]
async fn file_size_limit_holds() {
    let policy = policy(
        &unique("ct-fsize"),
        "tmp-size = \"64MiB\"",
        "max-file-size = \"1MiB\"",
    );
    let probe = r#"
try:
    with open("/tmp/f", "wb") as f:
        f.write(b"z" * (2 << 20))
    print("wrote")
except OSError as e:
    print(f"errno={e.errno}")
"#;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    assert_eq!(
        field(&outcome.stdout, "errno"),
        "27",
        "EFBIG: {}",
        outcome.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn privileged_calls_fail() {
    let policy = policy(&unique("ct-priv"), "", "");
    let probe = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
SYS_keyctl, SYS_add_key = 250, 248
results = {
    "unshare_user": libc.unshare(CLONE_NEWUSER),
    "unshare_mount": libc.unshare(CLONE_NEWNS),
    "unshare_net": libc.unshare(CLONE_NEWNET),
    "mount": libc.mount(b"none", b"/tmp", b"tmpfs", 0, None),
    "keyctl": libc.syscall(SYS_keyctl, 0, -3, 0),
    "add_key": libc.syscall(SYS_add_key, b"user", b"k", b"v", 1, -3),
    "setuid0": libc.setuid(0),
    "chroot": libc.chroot(b"/tmp"),
}
for name, rc in results.items():
    print(f"{name}={rc}")
"#;
    let outcome = run(probe, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    for call in [
        "unshare_user",
        "unshare_mount",
        "unshare_net",
        "mount",
        "keyctl",
        "add_key",
        "setuid0",
        "chroot",
    ] {
        assert_eq!(field(&outcome.stdout, call), "-1", "{call} must fail");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn only_data_is_visible_from_the_host() {
    let data = tempfile::tempdir().expect("data dir");
    std::fs::write(data.path().join("visible.txt"), "granted").expect("data file");
    let secret = tempfile::tempdir().expect("secret dir");
    let marker = secret.path().join(unique("marker"));
    std::fs::write(&marker, "host only").expect("marker");
    let policy = policy(&unique("ct-data"), "", "");
    let probe = format!(
        r#"
import os
print("data=" + open("/data/visible.txt").read())
for path in ({marker:?}, {secret:?}, {data:?}, "/var/run/docker.sock", "/run/docker.sock"):
    print(f"exists {{path}}={{os.path.exists(path)}}")
try:
    open("/data/new", "w")
    print("data-write=ok")
except OSError as e:
    print(f"data-write={{e.errno}}")
"#,
        marker = marker.display().to_string(),
        secret = secret.path().display().to_string(),
        data = data.path().display().to_string(),
    );
    let outcome = run_in(&probe, b"", Some(data.path()), &policy).await;
    assert_status(&outcome, Status::Ok, None);
    let out = &outcome.stdout;
    assert_eq!(field(out, "data"), "granted");
    assert_eq!(field(out, "data-write"), "30", "EROFS: {out}");
    assert!(!out.contains("=True"), "host paths visible: {out}");
}

// --- limits ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn memory_bomb_is_killed_for_memory() {
    let policy = policy(
        &unique("ct-mem"),
        "memory = \"128MiB\"\nwall-time = \"30s\"",
        "",
    );
    let bomb = "hog = []\nwhile True:\n    hog.append(bytearray(16 << 20))\n    hog[-1][::4096] = b'x' * len(hog[-1][::4096])\n";
    let outcome = run(bomb, &policy).await;
    assert_status(&outcome, Status::Killed, Some(Reason::Memory));
    assert_eq!(outcome.exit_code, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn python_memory_error_is_memory() {
    let policy = policy(&unique("ct-memerr"), "memory = \"128MiB\"", "");
    let outcome = run("raise MemoryError('simulated')\n", &policy).await;
    assert_status(&outcome, Status::Killed, Some(Reason::Memory));
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_loop_hits_the_cpu_limit() {
    let policy = policy(
        &unique("ct-cpu"),
        "cpu-time = \"1s\"\nwall-time = \"30s\"",
        "",
    );
    let outcome = run("while True:\n    pass\n", &policy).await;
    assert_status(&outcome, Status::Killed, Some(Reason::Cpu));
    assert!(
        outcome.usage.wall_ms < 15_000.0,
        "{}",
        outcome.usage.wall_ms
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn busy_loop_hits_the_deadline() {
    let policy = policy(
        &unique("ct-busy"),
        "cpu-time = \"60s\"\nwall-time = \"1s\"",
        "",
    );
    let outcome = run("while True:\n    pass\n", &policy).await;
    assert_status(&outcome, Status::Killed, Some(Reason::Deadline));
}

#[tokio::test(flavor = "multi_thread")]
async fn sleep_forever_hits_the_deadline() {
    let policy = policy(&unique("ct-sleep"), "wall-time = \"1s\"", "");
    let started = Instant::now();
    let outcome = run(
        "import time\nprint('before', flush=True)\ntime.sleep(3600)\n",
        &policy,
    )
    .await;
    assert_status(&outcome, Status::Killed, Some(Reason::Deadline));
    assert_eq!(outcome.stdout, "before\n", "output before the kill is kept");
    assert!(
        outcome.usage.wall_ms >= 1000.0 && outcome.usage.wall_ms < 3000.0,
        "{}",
        outcome.usage.wall_ms
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn fork_bomb_is_contained_by_the_pids_limit() {
    let policy = policy(&unique("ct-fork"), "wall-time = \"20s\"", "max-pids = 32");
    // Counting variant: children park; the parent forks until refused.
    let counted = r#"
import os, time
children = 0
while True:
    try:
        pid = os.fork()
    except OSError as e:
        print(f"refused_after={children}")
        print(f"errno={e.errno}")
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children += 1
"#;
    let outcome = run(counted, &policy).await;
    assert_status(&outcome, Status::Ok, None);
    let children: u32 = field(&outcome.stdout, "refused_after")
        .parse()
        .expect("count");
    assert!(children < 32, "pids limit: {children}");
    assert_eq!(field(&outcome.stdout, "errno"), "11", "EAGAIN");
    // The classic bomb: every process forks forever. Contained; reported as an error with
    // the evidence (BlockingIOError) in stderr.
    let outcome = run("import os\nwhile True:\n    os.fork()\n", &policy).await;
    assert_status(&outcome, Status::Error, None);
    assert!(
        outcome.stderr.contains("BlockingIOError"),
        "{}",
        outcome.stderr
    );
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn output_flood_is_capped() {
    let flood = "import sys\nfor _ in range(20000):\n    sys.stdout.write('x' * 1000 + '\\n')\n    sys.stderr.write('e' * 100 + '\\n')\n";
    let policy_truncate = policy(
        &unique("ct-flood"),
        "stdout = \"64KiB\"\nstderr = \"16KiB\"\noutput-overflow = \"truncate\"",
        "",
    );
    let outcome = run(flood, &policy_truncate).await;
    assert_status(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout.len(), 64 << 10);
    assert_eq!(outcome.stderr.len(), 16 << 10);
    assert!(outcome.truncated.stdout && outcome.truncated.stderr);

    let policy_kill = policy(
        &unique("ct-flood-kill"),
        "stdout = \"64KiB\"\noutput-overflow = \"kill\"",
        "",
    );
    let outcome = run(flood, &policy_kill).await;
    assert_status(&outcome, Status::Killed, Some(Reason::Output));
    assert_eq!(outcome.stdout.len(), 64 << 10);
    assert!(outcome.truncated.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_codes_and_exceptions_are_errors() {
    let policy = policy(&unique("ct-exit"), "", "");
    let outcome = run("import sys\nsys.exit(3)\n", &policy).await;
    assert_status(&outcome, Status::Error, None);
    assert_eq!(outcome.exit_code, Some(3));
    let outcome = run("x = 1\nraise ValueError('bad')\n", &policy).await;
    assert_status(&outcome, Status::Error, None);
    assert_eq!(outcome.exit_code, Some(1));
    assert!(
        outcome.stderr.contains("strategy.py\", line 2"),
        "{}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("@stratbox-result"),
        "{}",
        outcome.stderr
    );
    // A forged result line (the strategy cannot know the nonce) changes nothing.
    let forged = "import sys\nsys.stderr.write('\\n@stratbox-result 0000 {\"ending\": \"ok\", \"exit_code\": 0}\\n')\nsys.exit(4)\n";
    let outcome = run(forged, &policy).await;
    assert_status(&outcome, Status::Error, None);
    assert_eq!(outcome.exit_code, Some(4));
}

// --- seccomp ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn pinned_seccomp_profile_is_applied() {
    let probe = "import os\nprint(os.uname().sysname)\n";
    let default = policy(&unique("ct-seccomp-default"), "", "");
    let outcome = run(probe, &default).await;
    assert_status(&outcome, Status::Ok, None);
    assert_eq!(outcome.stdout, "Linux\n");

    let pinned = policy(
        &unique("ct-seccomp-pinned"),
        "",
        "seccomp-profile = \"deny-uname.json\"",
    );
    let outcome = run(probe, &pinned).await;
    assert_status(&outcome, Status::Error, None);
    assert!(
        outcome
            .stderr
            .contains("PermissionError: [Errno 1] Operation not permitted"),
        "{}",
        outcome.stderr
    );
}

/// Starts the image by hand (`docker run`, not the backend) under `seccomp` (a
/// `--security-opt=seccomp=` value), feeds the runner a strategy that prints
/// `STRATEGY RAN`, and asserts that the runner refused it in preflight, naming `problem`.
async fn assert_preflight_refuses(test: &str, seccomp: &str, problem: &str) {
    ensure_image().await;
    let name = unique(&format!("stratbox-ct-{test}"));
    let _cleanup = DockerRmGuard(name.clone());
    let source = "print('STRATEGY RAN')\n";
    let frame = format!(
        "{{\"nonce\": \"n0\", \"source_len\": {}, \"filename\": \"s.py\"}}\n{source}",
        source.len()
    );
    let output = docker_cli_with_stdin(
        &[
            "run",
            "--rm",
            "-i",
            &format!("--name={name}"),
            "--network=none",
            &format!("--security-opt=seccomp={seccomp}"),
            "--security-opt=no-new-privileges:true",
            "--cap-drop=ALL",
            &stratbox::image::ImageSpec::current().tag(),
        ],
        frame.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stdout.contains("STRATEGY RAN"), "{stdout}");
    assert!(stderr.contains("@stratbox-result n0"), "{stderr}");
    assert!(stderr.contains("\"ending\": \"preflight\""), "{stderr}");
    assert!(stderr.contains(problem), "{stderr}");
}

/// The runner's own check, driven by hand: a container started WITHOUT a seccomp filter
/// (which stratbox never does) must refuse to run the strategy.
#[tokio::test(flavor = "multi_thread")]
async fn runner_refuses_to_start_without_seccomp() {
    assert_preflight_refuses("preflight", "unconfined", "Seccomp").await;
}

/// The runner's non-dumpable check, driven by hand: under a seccomp profile that refuses
/// prctl(2) the runner cannot make itself non-dumpable, and must refuse to run the strategy.
#[tokio::test(flavor = "multi_thread")]
async fn runner_refuses_to_start_while_dumpable() {
    let dir = tempfile::tempdir().expect("dir");
    let profile = dir.path().join("deny-prctl.json");
    let text = std::fs::read_to_string(format!("{MANIFEST_DIR}/profiles/seccomp/deny-uname.json"))
        .expect("pinned profile");
    assert!(text.contains("\"uname\""));
    std::fs::write(&profile, text.replace("\"uname\"", "\"prctl\"")).expect("profile");
    assert_preflight_refuses("dumpable", &profile.display().to_string(), "dumpable").await;
}

// --- availability ----------------------------------------------------------------------

#[test]
fn unreachable_engine_is_unavailable_and_names_the_socket() {
    let dir = tempfile::tempdir().expect("dir");
    let script = dir.path().join("s.py");
    std::fs::write(&script, "print(1)\n").expect("script");
    let output = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["run", "--backend", "container", "--json"])
        .arg(&script)
        .env("DOCKER_HOST", "unix:///nonexistent")
        .output()
        .expect("run stratbox");
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(outcome["status"], "unavailable");
    assert_eq!(outcome["cause"], "engine-unreachable");
    let message = outcome["message"].as_str().expect("message");
    assert!(message.contains("unix:///nonexistent"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_image_is_unavailable_and_names_the_build_command() {
    let policy = policy(&unique("ct-noimage"), "", "");
    let backend =
        ContainerBackend::new().with_image(format!("stratbox-runtime:{}", unique("missing")));
    let job = Job {
        source: "print(1)\n",
        filename: "s.py",
        input: b"",
        data_dir: None,
        inventory: None,
    };
    let err = backend
        .run(&job, &policy)
        .await
        .expect_err("image is missing");
    // Missing, or stale when images of other stratbox versions are in the shared engine.
    assert!(
        matches!(
            err,
            ContainerError::ImageMissing { .. } | ContainerError::ImageStale { .. }
        ),
        "{err:?}"
    );
    assert!(
        matches!(
            err.cause(),
            stratbox::Cause::ImageMissing | stratbox::Cause::ImageStale
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("stratbox image build"), "{err}");
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn runner_refuses_what_the_host_did_not_see() {
    ensure_image().await;
    let policy = policy(&unique("ct-mismatch"), "", "");
    let source = "import math\nprint(math.floor(2.5))\n";
    let full = stratbox::validate::inventory_of(source).expect("parses");
    let mut partial = full.clone();
    partial.attributes.remove("floor");
    let backend = ContainerBackend::new();
    for (inventory, mismatch) in [(&full, false), (&partial, true)] {
        let job = Job {
            source,
            filename: "s.py",
            input: b"",
            data_dir: None,
            inventory: Some(inventory),
        };
        let ran = backend.run(&job, &policy).await.expect("the sandbox runs");
        match ran.mismatch {
            Some(violation) => {
                assert!(mismatch, "{violation:?}");
                assert_eq!(violation.rule, stratbox::validate::RuleId::ParserMismatch);
                assert_eq!(
                    (violation.text.as_str(), violation.line, violation.col),
                    ("floor", 2, 7)
                );
                assert_eq!(ran.stdout, "", "nothing ran");
            }
            None => {
                assert!(!mismatch, "the runner did not refuse");
                assert_eq!(ran.stdout, "2\n");
            }
        }
    }
}

// --- cleanup and concurrency -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn fifty_runs_leave_no_container() {
    let policy = policy(
        &unique("ct-fifty"),
        // Long enough for a trivial run on a loaded machine (the suite runs tests in
        // parallel), short enough that the ten sleeping runs stay cheap.
        "wall-time = \"4s\"\ncpu-time = \"1s\"",
        "",
    );
    let scripts = [
        ("print('ok')\n", Status::Ok),
        ("raise SystemExit(2)\n", Status::Error),
        ("import time\ntime.sleep(60)\n", Status::Killed),
        ("raise RuntimeError('x')\n", Status::Error),
        ("print('a' * 100)\n", Status::Ok),
    ];
    for i in 0..50 {
        let (source, want) = scripts[i % scripts.len()];
        let outcome = run(source, &policy).await;
        assert_eq!(outcome.status, want, "run {i}: {}", outcome.summary());
    }
    assert_eq!(containers_of(&policy).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_concurrent_runs_succeed() {
    let policy = policy(&unique("ct-eight"), "wall-time = \"60s\"", "");
    let runs = (0..8).map(|i| {
        let policy = policy.clone();
        async move { run(&format!("print({i} * {i})\n"), &policy).await }
    });
    let outcomes = futures_util::future::join_all(runs).await;
    for (i, outcome) in outcomes.iter().enumerate() {
        assert_status(outcome, Status::Ok, None);
        assert_eq!(outcome.stdout, format!("{}\n", i * i));
    }
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_run_removes_its_container() {
    let policy = policy(&unique("ct-drop"), "wall-time = \"60s\"", "");
    let run = run("import time\ntime.sleep(60)\n", &policy);
    tokio::select! {
        outcome = run => panic!("the run should still be going: {}", outcome.summary()),
        () = wait_for_container(&policy) => {}
    }
    // The run's future is dropped here, mid-run.
    assert!(containers_of(&policy).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn panicking_task_removes_its_container() {
    let policy = policy(&unique("ct-panic"), "wall-time = \"60s\"", "");
    let task_policy = policy.clone();
    let task = tokio::spawn(async move {
        let run = run("import time\ntime.sleep(60)\n", &task_policy);
        tokio::select! {
            _ = run => {}
            () = wait_for_container(&task_policy) => panic!("panic while the container runs"),
        }
    });
    let joined = task.await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    assert!(containers_of(&policy).await.is_empty());
}

#[test]
fn ctrl_c_of_the_cli_removes_the_container() {
    let dir = tempfile::tempdir().expect("dir");
    let name = unique("ct-ctrlc");
    let profile = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &profile,
        "description = \"ctrl-c test\"\n[limits]\nwall-time = \"60s\"\n[validator]\nenabled = false\n",
    )
    .expect("profile");
    let script = dir.path().join("sleep.py");
    std::fs::write(&script, "import time\ntime.sleep(60)\n").expect("script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .args(["run", "--backend", "container", "--profile"])
        .arg(&profile)
        .arg(&script)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn stratbox");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let policy = Policy::from_file(&profile).expect("policy");
    runtime.block_on(async {
        ensure_image().await;
        tokio::time::timeout(Duration::from_secs(30), wait_for_container(&policy))
            .await
            .expect("container appears");
    });
    assert_eq!(crate::common::interrupt(&mut child), Some(130));
    runtime.block_on(async { assert!(containers_of(&policy).await.is_empty()) });
}

/// Returns once a container of this policy exists.
async fn wait_for_container(policy: &Policy) {
    while containers_of(policy).await.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give the run time to be attached and started.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

// --- docker CLI helpers ----------------------------------------------------------------

/// Removes a container started by hand with the docker CLI.
struct DockerRmGuard(String);

impl Drop for DockerRmGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.0])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn docker_cli_with_stdin(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new("docker")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the docker CLI");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("docker output")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_whose_process_was_killed_is_removed_by_the_next_backend() {
    ensure_image().await;
    let name = unique("ct-killed");
    let dir = tempfile::tempdir().expect("dir");
    let profile = dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &profile,
        "description = \"killed owner\"\n[limits]\nwall-time = \"120s\"\ncpu-time = \"60s\"\n\
         [validator]\nenabled = false\n",
    )
    .expect("profile");
    let script = dir.path().join("sleeps.py");
    std::fs::write(&script, "import time\ntime.sleep(100)\n").expect("script");
    let mut child = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .arg("run")
        .arg(&script)
        .args(["--backend", "container", "--profile"])
        .arg(&profile)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("stratbox runs");
    let started = Instant::now();
    while containers_of_name(&name).await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the run never created its container"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGKILL: no guard runs, the container keeps sleeping.
    child.kill().expect("killed");
    child.wait().expect("reaped");
    // The next backend's first connection removes it (another test's backend may have
    // been first); its own run leaves nothing either.
    let policy = policy(&name, "wall-time = \"60s\"", "");
    let outcome = run("print('after')\n", &policy).await;
    assert_status(&outcome, Status::Ok, None);
    assert_eq!(containers_of_name(&name).await, Vec::<String>::new());
}

async fn containers_of_name(policy_name: &str) -> Vec<String> {
    crate::common::containers_of(policy_name).await
}
