//! The examples of docstrings, which `doctest.testmod()` runs as code.
//!
//! When a strategy imports `doctest`, every `>>> ` example (with its `... ` continuation
//! lines) of every docstring in the file (module, classes, functions, at any depth) is
//! validated as code, with the module's imports in scope as `doctest` runs it in the
//! module's globals. A violation inside an example is reported at the docstring.

use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
use ruff_python_ast::visitor::Visitor;
use ruff_python_ast::{Expr, Stmt};
use ruff_text_size::TextRange;

use super::super::source::Lines;
use super::{Checker, Import, Violation, end, parse, start};

/// The docstrings of a body and of every function and class below it.
#[derive(Default)]
struct Docstrings<'a> {
    found: Vec<(&'a str, TextRange)>,
}

fn docstring(body: &[Stmt]) -> Option<(&str, TextRange)> {
    match body.first() {
        Some(Stmt::Expr(s)) => match &*s.value {
            Expr::StringLiteral(literal) => Some((literal.value.to_str(), literal.range)),
            _ => None,
        },
        _ => None,
    }
}

impl<'a> StatementVisitor<'a> for Docstrings<'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        let body = match stmt {
            Stmt::FunctionDef(f) => Some(&f.body),
            Stmt::ClassDef(c) => Some(&c.body),
            _ => None,
        };
        if let Some(found) = body.and_then(|body| docstring(body)) {
            self.found.push(found);
        }
        walk_stmt(self, stmt);
    }
}

/// The source of each example of a docstring: a `>>>` line and its `...` continuation
/// lines, with the prompts and the indentation before them removed.
pub fn examples(docstring: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for line in docstring.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = &line[indent..];
        if let Some((at, source)) = &mut current
            && *at == indent
            && let Some(rest) = prompt(body, "...")
        {
            source.push_str(rest);
            source.push('\n');
            continue;
        }
        if let Some((_, source)) = current.take() {
            out.push(source);
        }
        if let Some(rest) = prompt(body, ">>>") {
            current = Some((indent, format!("{rest}\n")));
        }
    }
    if let Some((_, source)) = current {
        out.push(source);
    }
    out
}

/// The text after a doctest prompt: `>>>` alone, or followed by one space.
fn prompt<'t>(line: &'t str, prompt: &str) -> Option<&'t str> {
    let rest = line.strip_prefix(prompt)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(' ')
    }
}

impl Checker<'_> {
    pub(super) fn doctest_examples(&mut self, body: &[Stmt]) {
        let mut docstrings = Docstrings::default();
        docstrings.found.extend(docstring(body));
        docstrings.visit_body(body);
        for (text, range) in docstrings.found {
            for example in examples(text) {
                self.example(&example, range);
            }
        }
    }

    /// Validates one example with the module's names in scope; reports at `at`.
    fn example(&mut self, source: &str, at: TextRange) {
        // Declared first, dropped last: the checker borrows from the tree.
        let module;
        let lines = Lines::new(source);
        let mut sub = Checker::new(&lines, self.rules, self.config);
        sub.imported = self.imported.clone();
        sub.dispatchers = self.dispatchers.clone();
        match parse::module(source) {
            Err(fail) => sub.parse_failure(fail),
            Ok(parsed) => {
                module = parsed;
                sub.bind_imports(&module.body);
                sub.visit_body(&module.body);
            }
        }
        let (line, col) = self.lines.position(start(at));
        let text = self.lines.excerpt(start(at), end(at));
        for v in sub.violations {
            self.violations.push(Violation {
                line,
                col,
                text: text.clone(),
                message: format!("in a doctest example, `{}`: {}", v.text, v.message),
                ..v
            });
        }
        for import in sub.imports {
            self.imports.push(Import {
                line,
                col,
                ..import
            });
        }
    }
}
