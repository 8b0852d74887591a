//! Compares the host's inventory of a source (what the validator's parser saw) with the one
//! CPython's own `ast` computes through the runner's function (`wasm/runner.py`,
//! `inventory()`): whenever both parse the source, the two must be equal, or the runner
//! would refuse an honest strategy (or, with a bug on the runner's side, miss a
//! differential).
//!
//! CPython runs as one long-lived `python3` child (override with `STRATBOX_FUZZ_PYTHON`).
//! Run from `fuzz/`, seeded with the fixtures:
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run inventory corpus/inventory ../tests/fixtures/attacks
//! ../tests/fixtures/honest -- -max_total_time=600 -max_len=4096`
#![no_main]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;

#[path = "../../src/validate/mod.rs"]
#[allow(dead_code)]
mod validate;

/// Reads `<length>\n<source>` frames and answers each with one line: the inventory as
/// JSON, or `null` when CPython does not parse the source.
const SERVER: &str = r#"
import ast, json, sys
sys.path.insert(0, sys.argv[1])
import runner
stdin = sys.stdin.buffer
while True:
    header = stdin.readline()
    if not header:
        break
    source = stdin.read(int(header)).decode("utf-8")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        print("null", flush=True)
    else:
        print(json.dumps(runner.inventory(tree)), flush=True)
"#;

struct Python {
    _child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

fn python() -> &'static Mutex<Python> {
    static PYTHON: OnceLock<Mutex<Python>> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let program = std::env::var("STRATBOX_FUZZ_PYTHON").unwrap_or_else(|_| "python3".into());
        let wasm = concat!(env!("CARGO_MANIFEST_DIR"), "/../wasm");
        let mut child = Command::new(program)
            .args(["-I", "-c", SERVER, wasm])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Mutex::new(Python {
            _child: child,
            input,
            output,
        })
    })
}

fn cpython_inventory(source: &str) -> Option<validate::Inventory> {
    let mut python = python().lock().expect("not poisoned");
    write!(python.input, "{}\n", source.len()).expect("python3 reads");
    python.input.write_all(source.as_bytes()).expect("python3 reads");
    python.input.flush().expect("python3 reads");
    let mut line = String::new();
    python.output.read_line(&mut line).expect("python3 answers");
    serde_json::from_str(&line).expect("the runner's inventory is JSON")
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let rules = validate::ImportRules::default();
    let config = validate::ValidatorConfig::default();
    let report = validate::validate(source, &rules, &config);
    // A source the validator's parser refuses never runs: nothing to compare.
    if report.violations.iter().any(|v| v.rule == validate::RuleId::Syntax) {
        return;
    }
    if let Some(cpython) = cpython_inventory(source) {
        assert_eq!(report.inventory, cpython, "inventories differ for {source:?}");
    }
});
