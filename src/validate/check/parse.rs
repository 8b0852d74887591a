//! Text to tree: Ruff's parser at the language level both interpreters share.

use ruff_python_ast::{Mod, ModExpression, ModModule, PythonVersion};
use ruff_python_parser::{Mode, ParseOptions, Parsed, parse_unchecked};
use ruff_text_size::Ranged;

use super::super::source::nesting_exceeded;

/// The newest syntax a strategy may use: the container runs CPython 3.13, the wasm guest
/// 3.14, so 3.13 is what both compile.
pub const PYTHON: PythonVersion = PythonVersion::PY313;

/// Why a text could not be turned into a tree.
pub enum ParseFail {
    Syntax { offset: usize, message: String },
    Nesting { offset: usize },
}

/// Parses a module: the nesting bound first (on the lexer, before a deep tree exists),
/// then the parser, then the syntax newer than [`PYTHON`].
pub fn module(source: &str) -> Result<ModModule, ParseFail> {
    match parse(source, Mode::Module)?.into_syntax() {
        Mod::Module(module) => Ok(module),
        Mod::Expression(_) => Err(ParseFail::Syntax {
            offset: 0,
            message: "invalid syntax: not a module".to_owned(),
        }),
    }
}

/// Parses one expression (the text of a string annotation).
pub fn expression(source: &str) -> Result<ModExpression, ParseFail> {
    match parse(source, Mode::Expression)?.into_syntax() {
        Mod::Expression(expression) => Ok(expression),
        Mod::Module(_) => Err(ParseFail::Syntax {
            offset: 0,
            message: "invalid syntax: not an expression".to_owned(),
        }),
    }
}

fn parse(source: &str, mode: Mode) -> Result<Parsed<Mod>, ParseFail> {
    if let Some(offset) = nesting_exceeded(source, mode) {
        return Err(ParseFail::Nesting { offset });
    }
    let parsed = parse_unchecked(source, ParseOptions::from(mode).with_target_version(PYTHON));
    // The parser recovers and goes on; the first error in the text is the one CPython
    // would report.
    if let Some(error) = parsed.errors().iter().min_by_key(|e| e.location.start()) {
        return Err(ParseFail::Syntax {
            offset: usize::from(error.location.start()),
            message: format!("invalid syntax: {}", lower_first(&error.error.to_string())),
        });
    }
    if let Some(error) = parsed
        .unsupported_syntax_errors()
        .iter()
        .min_by_key(|e| e.range().start())
    {
        return Err(ParseFail::Syntax {
            offset: usize::from(error.range().start()),
            message: newer_syntax(&error.to_string()),
        });
    }
    Ok(parsed)
}

/// Ruff says "Cannot use t-strings on Python 3.13 (syntax was added in Python 3.14)"; the
/// strategy's author needs to hear which Python the construct needs.
fn newer_syntax(text: &str) -> String {
    let (what, rest) = text.split_once(" on Python ").unwrap_or((text, ""));
    match rest.split_once("(syntax was added in Python ") {
        Some((_, version)) => format!(
            "{what}: requires Python {}; strategies may use Python {PYTHON} syntax, which both backends run",
            version.trim_end_matches(')')
        ),
        None => format!("{text}; strategies may use Python {PYTHON} syntax"),
    }
}

fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => text.to_owned(),
    }
}
