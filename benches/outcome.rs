//! What reporting one run costs: `serde_json` serialisation of an [`Outcome`] as `--json`
//! prints it, for a small outcome and for one carrying a full 1 MiB stdout.
//!
//! Run with `cargo bench --bench outcome`.

use criterion::{Criterion, criterion_group, criterion_main};
use stratbox::outcome::{Truncated, Usage};
use stratbox::route::Route;
use stratbox::{BackendKind, Outcome, Status};

fn outcome(stdout: String) -> Outcome {
    Outcome {
        status: Status::Ok,
        reason: None,
        message: None,
        backend: Some(BackendKind::Wasm),
        python: Some("3.14".into()),
        route: Some(Route {
            backend: BackendKind::Wasm,
            why: "only standard-library imports".into(),
            decided_by: None,
        }),
        exit_code: Some(0),
        stdout,
        stderr: String::new(),
        truncated: Truncated::default(),
        violations: Vec::new(),
        usage: Usage {
            wall_ms: 1.4,
            fuel: 725_451,
            memory_peak_bytes: 18 << 20,
        },
        policy: "default".into(),
        schema_version: stratbox::outcome::SCHEMA_VERSION,
        cause: None,
        seed: None,
        deterministic: false,
        not_reproducible: Vec::new(),
        id: None,
    }
}

fn serialise(c: &mut Criterion) {
    let mut group = c.benchmark_group("outcome-to-json");
    let small = outcome("{\"signal\": \"buy\", \"sharpe\": 1.21}\n".into());
    group.bench_function("small", |b| {
        b.iter(|| serde_json::to_string(std::hint::black_box(&small)).expect("serialises"))
    });
    // A strategy at the default stdout cap, with characters that need escaping.
    let line = "2024-01-02,101.5,\"buy\"\t\u{e9}\n";
    let large = outcome(line.repeat((1 << 20) / line.len()));
    group.bench_function("stdout-1MiB", |b| {
        b.iter(|| serde_json::to_string(std::hint::black_box(&large)).expect("serialises"))
    });
    group.finish();
}

criterion_group!(benches, serialise);
criterion_main!(benches);
