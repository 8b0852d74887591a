//! What one cold container run costs through stratbox (bollard: create, attach, start,
//! stream, wait, inspect, remove) beside `docker run --rm -i` of the same image with the same
//! flags through the Docker CLI, in the same run, for a trivial strategy. Target: stratbox
//! at most 1.15 times the CLI.
//!
//! Run with `cargo bench --bench container` (needs the engine and the runtime image:
//! `stratbox image build`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use stratbox::Status;
use stratbox::backend::Job;
use stratbox::backend::container::{ContainerBackend, ContainerSpec};
use stratbox::policy::Policy;

const TRIVIAL: &str = "print('signal: hold')\n";

fn cold_run(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let policy = Policy::default_profile();
    let backend = ContainerBackend::new();
    let image = backend.image();
    let job = Job {
        source: TRIVIAL,
        filename: "trivial.py",
        input: b"",
        data_dir: None,
        inventory: None,
    };
    // One run first: it fails loudly if the engine or the image is missing.
    let first = runtime
        .block_on(backend.run(&job, &policy))
        .unwrap_or_else(|err| panic!("the benchmark needs the engine and {image}: {err}"));
    assert_eq!(first.status, Status::Ok, "{first:?}");

    let mut group = c.benchmark_group("container-cold-run");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("stratbox", |b| {
        b.iter(|| {
            let execution = runtime.block_on(backend.run(&job, &policy)).expect("run");
            assert_eq!(execution.stdout, "signal: hold\n");
        });
    });
    group.bench_function("docker-cli", |b| {
        b.iter(|| {
            let name = format!("stratbox-bench-{}", std::process::id());
            let spec = ContainerSpec::new(&policy, &image, &name, None).expect("spec");
            docker_run(&spec.docker_run_args(), TRIVIAL);
        });
    });
    group.finish();
}

/// `docker run <args>` with the runner's stdin frame; checks the strategy's output.
fn docker_run(args: &[String], source: &str) {
    let mut child = Command::new("docker")
        .arg("run")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI");
    let frame = format!(
        "{{\"nonce\": \"bench\", \"source_len\": {}, \"filename\": \"trivial.py\"}}\n{source}",
        source.len()
    );
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(frame.as_bytes()).expect("write stdin");
    drop(stdin);
    let output = child.wait_with_output().expect("docker run");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.stdout, b"signal: hold\n");
}

criterion_group!(benches, cold_run);
criterion_main!(benches);
