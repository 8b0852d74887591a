//! The walk over the syntax tree: Ruff's visitor, with the rules split by concern.
//!
//! [`Checker`] implements [`Visitor`]; each submodule adds the methods of one concern:
//! `imports` (import statements and the names they bind), `attributes` (attribute chains,
//! module attributes and their sinks), `calls` (checked builtins and sinks), `names` (bare
//! names and bindings), `annotations` (annotations, type parameters, class keywords,
//! `__match_args__`), `strings` (dunder strings and format strings), `doctest` (the examples
//! of docstrings), `collect` (the [`Inventory`], recorded during the same walk), and `parse`
//! (text to tree).
//!
//! The walk visits every node of the tree once, except where a rule decides a whole
//! subtree at its root (a chain of module attributes, a module-metadata target): there it
//! hands the subtree to the inventory's recorder, which must see every name, attribute and
//! call (`inventory_matches_a_full_walk` in `tests/it/validator.rs` holds it to that).

mod annotations;
mod attributes;
mod calls;
mod collect;
mod doctest;
mod imports;
mod names;
mod parse;
mod strings;

use std::borrow::Cow;
use std::collections::HashSet;

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, ExprContext, Stmt};
use ruff_text_size::TextRange;
use unicode_normalization::UnicodeNormalization;

use super::inventory::Inventory;
use super::rules;
use super::source::{Lines, foreign_encoding};
use super::{Import, ImportRules, ModuleClass, Report, RuleId, ValidatorConfig, Violation};
use collect::Recorder;
use imports::Imported;
use parse::ParseFail;

pub use parse::PYTHON;

/// Names as CPython compares them: NFKC-normalised. Ruff keeps identifiers as written.
fn norm(name: &str) -> Cow<'_, str> {
    if name.is_ascii() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(name.nfkc().collect())
    }
}

fn start(range: TextRange) -> usize {
    usize::from(range.start())
}

fn end(range: TextRange) -> usize {
    usize::from(range.end())
}

/// The value of a string literal (implicitly concatenated parts joined).
fn as_str(e: &Expr) -> Option<&str> {
    match e {
        Expr::StringLiteral(s) => Some(s.value.to_str()),
        _ => None,
    }
}

/// `module.name`, built without the formatting machinery (this runs for every attribute
/// of a module).
fn qualified(module: &str, name: &str) -> String {
    let mut out = String::with_capacity(module.len() + 1 + name.len());
    out.push_str(module);
    out.push('.');
    out.push_str(name);
    out
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn is_private(name: &str) -> bool {
    name.starts_with('_') && !rules::is_dunder(name)
}

fn is_dotted_name(e: &Expr) -> bool {
    match e {
        Expr::Name(_) => true,
        Expr::Attribute(a) => is_dotted_name(&a.value),
        _ => false,
    }
}

/// How an expression is used by its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Value,
    Callee,
    Receiver,
}

const OPEN_HINT: &str = "call open() directly with the path and mode: the backends confine \
                         files (/data read-only, /tmp scratch), so any path and mode may be \
                         given, but not an opener";
const GETATTR_HINT: &str = "use plain attribute access (obj.name), pass the name as a string \
                            literal that is not a dunder: getattr(obj, \"price\", None), or \
                            build it from a literal prefix: getattr(self, f\"_get_{name}\")";
const VARS_HINT: &str = "call vars() with one instance (vars(args), vars(namespace)); for a \
                         class or a module, read the attributes you need by name";
const FORMAT_HINT: &str = "use an f-string with plain names, e.g. f\"{value:.2f}\", or call \
                           .format on a literal whose fields are plain ({} or {0} or {name})";

pub fn run(source: &str, imports: &ImportRules, config: &ValidatorConfig) -> Report {
    // CPython skips a UTF-8 byte order mark at the top of a file; so does every position.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines = Lines::new(source);
    let mut checker = Checker::new(&lines, imports, config);
    if let Some(at) = source.find('\0') {
        checker.push(
            RuleId::Syntax,
            at,
            at + 1,
            "source code contains a NUL byte".to_owned(),
            "remove the NUL byte; CPython refuses such files",
        );
        return checker.finish();
    }
    if let Some((at, name)) = foreign_encoding(source) {
        let line_end = source[at..]
            .find(['\n', '\r'])
            .map_or(source.len(), |n| at + n);
        checker.push(
            RuleId::EncodingDeclaration,
            at,
            line_end,
            format!("encoding declaration `{name}`: CPython would decode this file differently from the text that was checked"),
            "remove the coding line or declare utf-8; strategies are UTF-8",
        );
    }
    match parse::module(source) {
        Err(fail) => {
            checker.parse_failure(fail);
            checker.finish()
        }
        Ok(module) => {
            checker.bind_imports(&module.body);
            checker.visit_body(&module.body);
            checker.resolve_templates(&module.body);
            if checker.imports.iter().any(|i| i.module == "doctest") {
                checker.doctest_examples(&module.body);
            }
            checker.finish()
        }
    }
}

/// The inventory of `source` alone (no checks), `None` when it does not parse.
pub(super) fn inventory_of(source: &str) -> Option<Inventory> {
    if source.contains('\0') {
        return None;
    }
    parse::module(source)
        .ok()
        .map(|module| collect::inventory(&module.body))
}

struct Checker<'a> {
    lines: &'a Lines<'a>,
    rules: &'a ImportRules,
    config: &'a ValidatorConfig,
    violations: Vec<Violation>,
    imports: Vec<Import>,
    /// The names imports bind, to modules and to objects of modules.
    imported: Imported,
    /// Names of functions decorated with `functools.singledispatch` (or the method form).
    dispatchers: HashSet<String>,
    /// Names of the classes this file defines, at any depth.
    classes: HashSet<String>,
    /// `.format`/`.format_map` on a name, decided after the walk (`resolve_templates`).
    templates: Vec<(String, strings::Template)>,
    /// How many function and class bodies enclose the statement being checked.
    depth: usize,
    /// The inventory of the nodes walked so far.
    inventory: Recorder<'a>,
}

impl<'a> Checker<'a> {
    fn new(lines: &'a Lines<'a>, rules: &'a ImportRules, config: &'a ValidatorConfig) -> Self {
        Self {
            lines,
            rules,
            config,
            violations: Vec::new(),
            imports: Vec::new(),
            imported: Imported::default(),
            dispatchers: HashSet::new(),
            classes: HashSet::new(),
            templates: Vec::new(),
            depth: 0,
            inventory: Recorder::default(),
        }
    }

    /// The report, with the inventory of the walked tree (empty when there was none).
    fn finish(self) -> Report {
        Report {
            violations: self.violations,
            imports: self.imports,
            checked: true,
            inventory: self.inventory.finish(),
        }
    }

    fn push(&mut self, rule: RuleId, from: usize, to: usize, message: String, hint: &str) {
        let (line, col) = self.lines.position(from);
        self.violations.push(Violation {
            rule,
            line,
            col,
            text: self.lines.excerpt(from, to),
            message,
            hint: hint.to_owned(),
        });
    }

    fn push_range(&mut self, rule: RuleId, range: TextRange, message: String, hint: &str) {
        self.push(rule, start(range), end(range), message, hint);
    }

    fn parse_failure(&mut self, fail: ParseFail) {
        match fail {
            ParseFail::Syntax { offset, message } => self.push(
                RuleId::Syntax,
                offset,
                offset + 1,
                message,
                "fix the syntax; the file must compile under CPython 3.13",
            ),
            ParseFail::Nesting { offset } => self.push(
                RuleId::NestingLimit,
                offset,
                offset + 1,
                format!(
                    "expression or block nested deeper than {} levels",
                    super::MAX_NESTING
                ),
                "split the expression into named intermediate values",
            ),
        }
    }

    /// Statements that need more than the default walk.
    fn stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::FunctionDef(s) => {
                for d in &s.decorator_list {
                    self.decorator(d);
                }
                if let Some(params) = &s.type_params {
                    self.visit_type_params(params);
                }
                self.visit_parameters(&s.parameters);
                if let Some(r) = &s.returns {
                    self.annotation(r);
                }
                self.depth += 1;
                self.visit_body(&s.body);
                self.depth -= 1;
            }
            Stmt::ClassDef(s) => {
                for d in &s.decorator_list {
                    self.visit_expr(&d.expression);
                }
                // A class statement binds its name like an assignment does.
                self.binding(&s.name.id, s.name.range);
                if let Some(arguments) = &s.arguments {
                    for base in &arguments.args {
                        self.visit_expr(base);
                    }
                    for keyword in &arguments.keywords {
                        self.class_keyword(keyword);
                        self.visit_keyword(keyword);
                    }
                }
                if let Some(params) = &s.type_params {
                    self.visit_type_params(params);
                }
                self.depth += 1;
                self.visit_body(&s.body);
                self.depth -= 1;
            }
            Stmt::Assign(s) => {
                for target in &s.targets {
                    self.match_args(target, &s.value);
                    if self.is_module_metadata(target, &s.value) {
                        self.inventory.expr(target);
                    } else {
                        self.visit_expr(target);
                    }
                }
                self.visit_expr(&s.value);
            }
            Stmt::AnnAssign(s) => {
                let metadata = s
                    .value
                    .as_deref()
                    .is_some_and(|value| self.is_module_metadata(&s.target, value));
                if let Some(value) = &s.value {
                    self.match_args(&s.target, value);
                }
                if metadata {
                    self.inventory.expr(&s.target);
                } else {
                    self.visit_expr(&s.target);
                }
                self.annotation(&s.annotation);
                if let Some(value) = &s.value {
                    self.visit_expr(value);
                }
            }
            Stmt::TypeAlias(s) => {
                self.visit_expr(&s.name);
                if let Some(params) = &s.type_params {
                    self.visit_type_params(params);
                }
                self.annotation(&s.value);
            }
            Stmt::Import(s) => {
                self.inventory.stmt(stmt);
                self.import(s);
            }
            Stmt::ImportFrom(s) => {
                self.inventory.stmt(stmt);
                self.import_from(s);
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn expr_as(&mut self, e: &'a Expr, usage: Use) {
        self.inventory.expr(e);
        match e {
            Expr::Call(x) => self.call(x),
            Expr::Attribute(x) => self.attribute(x, usage),
            Expr::Name(x) => match x.ctx {
                ExprContext::Load => self.name(x, usage),
                ExprContext::Store | ExprContext::Del | ExprContext::Invalid => {
                    self.binding(&x.id, x.range);
                }
            },
            Expr::StringLiteral(x) => self.string(x.value.to_str(), x.range),
            _ => visitor::walk_expr(self, e),
        }
    }
}

impl<'a> Visitor<'a> for Checker<'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        self.stmt(stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        self.expr_as(expr, Use::Value);
    }

    fn visit_annotation(&mut self, expr: &'a Expr) {
        self.annotation(expr);
    }

    fn visit_decorator(&mut self, decorator: &'a ast::Decorator) {
        self.decorator(decorator);
    }

    fn visit_keyword(&mut self, keyword: &'a ast::Keyword) {
        self.keyword(keyword);
    }

    fn visit_type_param(&mut self, param: &'a ast::TypeParam) {
        self.type_param(param);
    }

    fn visit_except_handler(&mut self, handler: &'a ast::ExceptHandler) {
        let ast::ExceptHandler::ExceptHandler(h) = handler;
        if let Some(name) = &h.name {
            self.binding(&name.id, h.range);
        }
        visitor::walk_except_handler(self, handler);
    }

    fn visit_pattern(&mut self, pattern: &'a ast::Pattern) {
        self.pattern(pattern);
        visitor::walk_pattern(self, pattern);
    }

    fn visit_pattern_keyword(&mut self, keyword: &'a ast::PatternKeyword) {
        self.pattern_keyword(keyword);
        visitor::walk_pattern_keyword(self, keyword);
    }

    /// The literal parts of f-strings (plain string literals are checked whole, above).
    fn visit_string_literal(&mut self, literal: &'a ast::StringLiteral) {
        self.string(&literal.value, literal.range);
    }

    fn visit_interpolated_string_element(&mut self, element: &'a ast::InterpolatedStringElement) {
        if let ast::InterpolatedStringElement::Literal(literal) = element {
            self.string(&literal.value, literal.range);
        }
        visitor::walk_interpolated_string_element(self, element);
    }
}
