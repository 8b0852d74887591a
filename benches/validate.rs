//! Measures `validate` + `route` on a 1,000-line strategy built from the honest fixtures
//! (target: under 1 ms), beside the floor under it: Ruff's parser alone on the same text,
//! and its lexer alone. Run with `cargo bench --bench validate`.
//!
//! For instruction counts, which stay comparable on a loaded machine, set
//! `VALIDATE_ITERATIONS=N`: the binary then validates the text N times outside criterion
//! and exits, e.g. under `valgrind --tool=callgrind` (see docs/BENCHMARKS.md).

use std::collections::BTreeSet;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group};
use ruff_python_ast::token::TokenKind;
use ruff_python_parser::lexer::lex;
use ruff_python_parser::{Mode, ParseOptions, parse_unchecked};
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

/// The honest standard-library fixtures the benchmark is built from: the corpus as it was
/// when the benchmark was first recorded. Pinned by name so that the measured text stays the
/// same while the corpus grows (newer fixtures use idioms that the validator of the time
/// refused, and a grown corpus would change what is measured between two recordings).
const FIXTURES: [&str; 28] = [
    "abc_numbers",
    "bollinger_class",
    "collections_abc",
    "comprehensions_generators",
    "copy_enum_typing",
    "csv_io",
    "dataclasses_portfolio",
    "datetime_calendar",
    "decimal_fractions",
    "dunder_classes",
    "exceptions_closures",
    "fstring_specs",
    "functools_operator",
    "generators_pipeline",
    "getattr_literal",
    "heapq_bisect_array",
    "main_guard",
    "match_values",
    "math_cmath",
    "momentum",
    "open_data_file",
    "random_montecarlo",
    "regex_parse",
    "rsi",
    "sma_crossover",
    "statistics_zscore",
    "string_textwrap",
    "volume_weighted",
];

/// Those fixtures, concatenated until the text has `LINES` lines.
fn strategy() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/honest");
    let sources: Vec<String> = FIXTURES
        .iter()
        .map(|name| std::fs::read_to_string(dir.join(format!("{name}.py"))).expect("fixture"))
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
    // The floor: what the parser alone costs on the same text, at the validator's options.
    let options = ParseOptions::from(Mode::Module).with_target_version(stratbox::validate::PYTHON);
    c.bench_function("parse_1000_lines", |b| {
        b.iter(|| black_box(parse_unchecked(black_box(&source), options.clone())))
    });
    c.bench_function("lex_1000_lines", |b| {
        b.iter(|| {
            let mut lexer = lex(black_box(&source), Mode::Module);
            let mut tokens = 0usize;
            while lexer.next_token() != TokenKind::EndOfFile {
                tokens += 1;
            }
            black_box(tokens)
        })
    });
}

criterion_group!(benches, bench);

fn main() {
    if let Some(iterations) = std::env::var_os("VALIDATE_ITERATIONS") {
        let iterations: usize = iterations
            .to_str()
            .and_then(|n| n.parse().ok())
            .expect("VALIDATE_ITERATIONS is a number");
        let (rules, config, source) = (rules(), ValidatorConfig::default(), strategy());
        // The attribute map is loaded once per process, before the first run: not counted.
        std::sync::LazyLock::force(&stratbox::validate::resolve::MAP);
        for _ in 0..iterations {
            let report = validate(black_box(&source), &rules, &config);
            black_box(route(&report, &rules, None).is_ok());
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
