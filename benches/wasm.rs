//! What one sandboxed run costs on the wasm path, measured beside native Python in the same
//! run: a fresh-instance in-process run (`wasm`), the same with its instance made ahead
//! (`wasm-ready`: timed from the request to the outcome, after the backend's ready thread
//! has made the instance and dropped the last run's store), the whole `stratbox run`
//! process with a warm cache (`wasm-cli`), and the machine's `python3` as a subprocess
//! (`native`), for a trivial strategy and a standard-library-heavy one.
//!
//! Run with `cargo bench --bench wasm` (needs the guest: `make guest`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use stratbox::Status;
use stratbox::backend::wasm::WasmConfig;
use stratbox::backend::{Backend, Job, WasmBackend};
use stratbox::policy::Policy;

fn workload(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("benches/workloads/{name}.py"))
}

fn prices() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/prices.json")
}

/// The interpreter `python3` resolves to, asked once: launcher shims (pyenv, asdf) would
/// otherwise add their own start-up to every native sample.
fn python3() -> &'static Path {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn native(script: &Path, input: &[u8]) {
    let mut child = Command::new(python3())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input)
        .expect("input written");
    assert!(child.wait().expect("python3 exits").success());
}

fn cli(script: &Path, input: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_stratbox"))
        .arg("run")
        .arg(script)
        .arg("--input")
        .arg(input)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("stratbox runs");
    assert!(status.success());
}

fn runs(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let backend = WasmBackend::new().expect("the guest is built (make guest)");
    let policy = Policy::default_profile();
    backend
        .prepare(policy.limits.metering)
        .expect("the guest compiles");
    let mut config = WasmConfig::default();
    config.ready = 1;
    let ready = WasmBackend::with_config(config).expect("the guest is built (make guest)");
    let input = std::fs::read(prices()).expect("example prices");
    // Warm the on-disk cache for the CLI rows.
    cli(&workload("trivial"), &prices());

    for name in ["trivial", "stdlib"] {
        let path = workload(name);
        let source = std::fs::read_to_string(&path).expect("workload");
        // As in a real run: the runner compares CPython's tree with the host's inventory.
        let inventory = stratbox::validate::inventory_of(&source);
        let job = Job {
            source: &source,
            filename: "strategy.py",
            input: &input,
            data_dir: None,
            inventory: inventory.as_ref(),
        };
        let mut group = c.benchmark_group(name);
        group.measurement_time(Duration::from_secs(5));
        group.bench_function("wasm", |b| {
            b.iter(|| {
                let run = runtime
                    .block_on(backend.execute(&job, &policy))
                    .expect("sandbox works");
                assert_eq!(run.status, Status::Ok, "{}", run.stderr);
            })
        });
        group.bench_function("wasm-ready", |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let full = ready
                        .wait_ready(policy.limits.metering, Duration::from_secs(60))
                        .expect("the guest compiles");
                    assert!(full, "the instance was made");
                    let started = Instant::now();
                    let run = runtime
                        .block_on(ready.execute(&job, &policy))
                        .expect("sandbox works");
                    timed += started.elapsed();
                    assert_eq!(run.status, Status::Ok, "{}", run.stderr);
                }
                timed
            })
        });
        group.bench_function("wasm-cli", |b| b.iter(|| cli(&path, &prices())));
        group.bench_function("native", |b| b.iter(|| native(&path, &input)));
        group.finish();
    }
}

criterion_group!(benches, runs);
criterion_main!(benches);
