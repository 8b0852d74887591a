//! Measures `validate` + `route` on a 1,000-line strategy built from the honest fixtures
//! (target: under 1 ms). Run with `cargo bench --bench validate`.

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use stratbox::route::route;
use stratbox::validate::{ImportRules, ValidatorConfig, validate};

const LINES: usize = 1_000;

fn rules() -> ImportRules {
    let wasm: BTreeSet<String> = stratbox::policy::GUEST_MODULES
        .iter()
        .filter(|m| m.importable)
        .map(|m| m.name.to_owned())
        .collect();
    ImportRules {
        wasm,
        native: ["numpy", "pandas", "scipy"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// Whole honest standard-library fixtures, concatenated until the text has `LINES` lines.
fn strategy() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/honest");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    let sources: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("fixture"))
        .filter(|s| !s.contains("import numpy") && !s.contains("import pandas"))
        .collect();
    let mut out: Vec<String> = Vec::new();
    'fill: loop {
        for source in &sources {
            for line in source.lines() {
                out.push(line.to_owned());
                if out.len() == LINES {
                    break 'fill;
                }
            }
        }
    }
    // Cut at the last top-level line so that the text still parses.
    while out
        .last()
        .is_some_and(|l| l.starts_with([' ', '\t']) || l.ends_with(':'))
    {
        out.pop();
    }
    out.push(String::new());
    out.join("\n")
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let config = ValidatorConfig::default();
    let source = strategy();
    let report = validate(&source, &rules, &config);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    c.bench_function("validate_1000_lines", |b| {
        b.iter(|| {
            let report = validate(black_box(&source), &rules, &config);
            black_box(route(&report, &rules, None).is_ok())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
