//! The walk over the syntax tree.

use std::borrow::Cow;
use std::collections::HashMap;

use rustpython_parser::ast::{self, Constant, Expr, ExprContext, Pattern, Ranged, Stmt};
use rustpython_parser::text_size::TextRange;
use rustpython_parser::{Mode, lexer, parse_tokens};
use unicode_normalization::UnicodeNormalization;

use super::format::walking_field;
use super::resolve::{MAP, Step};
use super::rules::{self, Sink};
use super::source::{Lines, foreign_encoding, nesting_exceeded};
use super::{Import, ImportRules, ModuleClass, Report, RuleId, ValidatorConfig, Violation};

/// Why a text could not be turned into a tree.
pub(super) enum ParseFail {
    Syntax { offset: usize, message: String },
    Nesting { offset: usize },
}

/// Lexes, bounds the nesting, then parses.
pub(super) fn parse_guarded(source: &str, mode: Mode) -> Result<ast::Mod, ParseFail> {
    // The lexer keeps yielding errors after the first one (at an unclosed bracket it never
    // stops), so stop at the first error or at the end of the file. The parser still sees
    // the tokens before the error, so a syntax error earlier in the file is reported first.
    let mut tokens: Vec<lexer::LexResult> = Vec::new();
    for token in lexer::lex(source, mode) {
        let last = match &token {
            Err(_) => true,
            Ok((tok, _)) => matches!(tok, rustpython_parser::Tok::EndOfFile),
        };
        tokens.push(token);
        if last {
            break;
        }
    }
    let lexical = tokens
        .iter()
        .find_map(|t| t.as_ref().err())
        .map(|e| ParseFail::Syntax {
            offset: usize::from(e.location),
            message: e.error.to_string(),
        });
    if let Some(offset) = nesting_exceeded(&tokens) {
        return Err(ParseFail::Nesting { offset });
    }
    match parse_tokens(tokens, mode, "<strategy>") {
        Ok(module) => match lexical {
            Some(fail) => Err(fail),
            None => Ok(module),
        },
        Err(e) => Err(ParseFail::Syntax {
            offset: usize::from(e.offset),
            message: e.error.to_string(),
        }),
    }
}

/// Names as CPython compares them: NFKC-normalised.
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

fn as_str(e: &Expr) -> Option<&str> {
    match e {
        Expr::Constant(ast::ExprConstant {
            value: Constant::Str(s),
            ..
        }) => Some(s),
        _ => None,
    }
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

const OPEN_HINT: &str = "open only data files, read-only, by a literal path: \
                         open(\"/data/prices.csv\") or open(\"/data/prices.csv\", \"rb\")";
const GETATTR_HINT: &str = "use plain attribute access (obj.name), or pass the name as a string \
                            literal that is not a dunder: getattr(obj, \"price\", None)";
const FORMAT_HINT: &str = "use an f-string with plain names, e.g. f\"{value:.2f}\", or call \
                           .format on a literal whose fields are plain ({} or {0} or {name})";

pub fn run(source: &str, imports: &ImportRules, config: &ValidatorConfig) -> Report {
    let lines = Lines::new(source);
    let mut checker = Checker {
        lines: &lines,
        rules: imports,
        config,
        violations: Vec::new(),
        imports: Vec::new(),
        modules: HashMap::new(),
        objects: HashMap::new(),
    };
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
    match parse_guarded(source, Mode::Module) {
        Err(ParseFail::Syntax { offset, message }) => {
            checker.push(
                RuleId::Syntax,
                offset,
                offset + 1,
                format!("invalid syntax: {message}"),
                "fix the syntax; the file must compile under CPython 3.11",
            );
        }
        Err(ParseFail::Nesting { offset }) => {
            checker.push(
                RuleId::NestingLimit,
                offset,
                offset + 1,
                format!(
                    "expression or block nested deeper than {} levels",
                    super::MAX_NESTING
                ),
                "split the expression into named intermediate values",
            );
        }
        Ok(ast::Mod::Module(module)) => {
            checker.bind_imports(&module.body);
            checker.stmts(&module.body);
        }
        Ok(_) => {}
    }
    checker.finish()
}

struct Checker<'a> {
    lines: &'a Lines<'a>,
    rules: &'a ImportRules,
    config: &'a ValidatorConfig,
    violations: Vec<Violation>,
    imports: Vec<Import>,
    /// Local name → module bound to it by `import` (or `from pkg import submodule`).
    modules: HashMap<String, String>,
    /// Local name → qualified name of an object bound by `from m import name`.
    objects: HashMap<String, String>,
}

impl Checker<'_> {
    fn finish(self) -> Report {
        Report {
            violations: self.violations,
            imports: self.imports,
            checked: true,
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

    // ----- imports -------------------------------------------------------------------

    /// Records which local names are modules and which are imported objects, before the
    /// walk, so that uses above a (function-local or later) import are resolved too.
    fn bind_imports(&mut self, body: &[Stmt]) {
        for stmt in body {
            match stmt {
                Stmt::Import(s) => {
                    for alias in &s.names {
                        let name = norm(&alias.name).into_owned();
                        match &alias.asname {
                            Some(local) => {
                                self.modules.insert(norm(local).into_owned(), name);
                            }
                            None => {
                                let top = name.split('.').next().unwrap_or("").to_owned();
                                self.modules.insert(top.clone(), top);
                            }
                        }
                    }
                }
                Stmt::ImportFrom(s) => {
                    if s.level.as_ref().is_some_and(|l| l.to_u32() > 0) {
                        continue;
                    }
                    let Some(module) = &s.module else { continue };
                    let module = norm(module);
                    for alias in &s.names {
                        let name = norm(&alias.name);
                        let qualified = format!("{module}.{name}");
                        let local = norm(alias.asname.as_ref().unwrap_or(&alias.name)).into_owned();
                        if self.is_known_module(&qualified) {
                            self.modules.insert(local, qualified);
                        } else if let Step::Module(m) = MAP.module_attribute(&module, &name) {
                            // `from re import enum as e`: `e` is the module `enum`.
                            self.modules.insert(local, m.to_owned());
                        } else {
                            self.objects.insert(local, qualified);
                        }
                    }
                }
                Stmt::FunctionDef(s) => self.bind_imports(&s.body),
                Stmt::AsyncFunctionDef(s) => self.bind_imports(&s.body),
                Stmt::ClassDef(s) => self.bind_imports(&s.body),
                Stmt::For(s) => {
                    self.bind_imports(&s.body);
                    self.bind_imports(&s.orelse);
                }
                Stmt::AsyncFor(s) => {
                    self.bind_imports(&s.body);
                    self.bind_imports(&s.orelse);
                }
                Stmt::While(s) => {
                    self.bind_imports(&s.body);
                    self.bind_imports(&s.orelse);
                }
                Stmt::If(s) => {
                    self.bind_imports(&s.body);
                    self.bind_imports(&s.orelse);
                }
                Stmt::With(s) => self.bind_imports(&s.body),
                Stmt::AsyncWith(s) => self.bind_imports(&s.body),
                Stmt::Match(s) => {
                    for case in &s.cases {
                        self.bind_imports(&case.body);
                    }
                }
                Stmt::Try(s) => {
                    self.bind_imports(&s.body);
                    for ast::ExceptHandler::ExceptHandler(h) in &s.handlers {
                        self.bind_imports(&h.body);
                    }
                    self.bind_imports(&s.orelse);
                    self.bind_imports(&s.finalbody);
                }
                Stmt::TryStar(s) => {
                    self.bind_imports(&s.body);
                    for ast::ExceptHandler::ExceptHandler(h) in &s.handlers {
                        self.bind_imports(&h.body);
                    }
                    self.bind_imports(&s.orelse);
                    self.bind_imports(&s.finalbody);
                }
                Stmt::Return(_)
                | Stmt::Delete(_)
                | Stmt::Assign(_)
                | Stmt::TypeAlias(_)
                | Stmt::AugAssign(_)
                | Stmt::AnnAssign(_)
                | Stmt::Raise(_)
                | Stmt::Assert(_)
                | Stmt::Global(_)
                | Stmt::Nonlocal(_)
                | Stmt::Expr(_)
                | Stmt::Pass(_)
                | Stmt::Break(_)
                | Stmt::Continue(_) => {}
            }
        }
    }

    /// A dotted name that is a module (rather than an attribute of one).
    fn is_known_module(&self, qualified: &str) -> bool {
        self.rules.wasm.contains(qualified) || rules::is_stdlib_submodule(qualified)
    }

    fn record_import(&mut self, module: String, from: usize, to: usize) {
        let (line, col) = self.lines.position(from);
        let import = Import { module, line, col };
        if self.rules.classify(&import.module) == ModuleClass::Forbidden {
            let mut violation = super::import_violation(&import, self.rules);
            violation.text = self.lines.excerpt(from, to);
            self.violations.push(violation);
        }
        self.imports.push(import);
    }

    fn import(&mut self, s: &ast::StmtImport) {
        for alias in &s.names {
            let name = norm(&alias.name).into_owned();
            self.record_import(name, start(alias.range), end(alias.range));
            if let Some(local) = &alias.asname {
                self.binding(local, alias.range);
            }
        }
    }

    fn import_from(&mut self, s: &ast::StmtImportFrom) {
        let level = s.level.as_ref().map_or(0, |l| l.to_usize());
        let statement = self
            .lines
            .text
            .get(start(s.range)..end(s.range))
            .unwrap_or("");
        let after_from = statement.get(4..).unwrap_or("");
        let raw = s.module.as_deref().unwrap_or("");
        let module_at = if level > 0 {
            after_from.find('.')
        } else {
            after_from.find(raw)
        }
        .map_or(start(s.range), |at| start(s.range) + 4 + at);
        let module_len = level + raw.len();
        let module = norm(raw);
        if level > 0 {
            self.record_import(
                format!("{}{module}", ".".repeat(level)),
                module_at,
                module_at + module_len,
            );
            return;
        }
        self.record_import(
            module.clone().into_owned(),
            module_at,
            module_at + module_len,
        );
        let module_allowed = self.rules.classify(&module) != ModuleClass::Forbidden;
        for alias in &s.names {
            let name = norm(&alias.name);
            let (from, to) = (start(alias.range), end(alias.range));
            if name == "*" {
                self.push(
                    RuleId::StarImport,
                    from,
                    to,
                    format!("`from {module} import *` binds names that cannot be checked"),
                    "import the names you use: from math import sqrt, log",
                );
                continue;
            }
            let qualified = format!("{module}.{name}");
            if let Some(why) = rules::native_denied(&qualified) {
                self.push(
                    RuleId::ForbiddenImport,
                    from,
                    to,
                    format!("`{qualified}` is never allowed: {why}"),
                    "use the package's computational API instead",
                );
            } else if rules::module_attribute_allowed(&module, &name) == Some(false) {
                self.push(
                    RuleId::ModuleAttribute,
                    from,
                    to,
                    format!(
                        "`{qualified}` is not among the attributes of `{module}` a strategy may use"
                    ),
                    "use only the public functions and classes of allowed modules",
                );
            } else if self.is_known_module(&qualified) {
                if module_allowed {
                    self.record_import(qualified, from, to);
                }
            } else if rules::is_dunder(&name) {
                self.push(
                    RuleId::DunderAccess,
                    from,
                    to,
                    format!("importing the dunder `{name}` from `{module}`"),
                    "import only public names",
                );
            } else if is_private(&name) {
                self.push(
                    RuleId::ModuleAttribute,
                    from,
                    to,
                    format!("`{qualified}` is private to `{module}` (private names of modules can be other modules, like random._os)"),
                    "import only public names",
                );
            } else if let Some(what) = rules::sink(&qualified)
                .is_none()
                .then(|| self.resolved_refusal(&module, &name))
                .flatten()
            {
                self.push(
                    RuleId::ModuleAttribute,
                    from,
                    to,
                    format!("`{qualified}` is {what}"),
                    "import only the functions and classes of allowed modules",
                );
            } else if self.is_leaked_module(&name) {
                self.push(
                    RuleId::ModuleAttribute,
                    from,
                    to,
                    format!("`{qualified}` is the `{name}` module, which is not allowed"),
                    "import only the functions and classes of allowed modules",
                );
            }
            if let Some(local) = &alias.asname {
                self.binding(local, alias.range);
            }
        }
    }

    /// A standard-library module reached as an attribute of another module (`typing.sys`):
    /// refused when the module itself is not allowed, and when only some of its attributes
    /// are (the checks on `sys.x` do not follow an alias such as `typing.sys`).
    fn is_leaked_module(&self, name: &str) -> bool {
        MAP.is_stdlib_module(name)
            && (self.rules.classify(name) == ModuleClass::Forbidden
                || rules::module_attribute_allowed(name, "").is_some())
    }

    // ----- statements ----------------------------------------------------------------

    fn stmts(&mut self, body: &[Stmt]) {
        for stmt in body {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::FunctionDef(s) => {
                self.decorators(&s.decorator_list);
                self.arguments(&s.args);
                if let Some(r) = &s.returns {
                    self.annotation(r);
                }
                self.type_params(&s.type_params);
                self.stmts(&s.body);
            }
            Stmt::AsyncFunctionDef(s) => {
                self.decorators(&s.decorator_list);
                self.arguments(&s.args);
                if let Some(r) = &s.returns {
                    self.annotation(r);
                }
                self.type_params(&s.type_params);
                self.stmts(&s.body);
            }
            Stmt::ClassDef(s) => {
                for d in &s.decorator_list {
                    self.expr(d);
                }
                self.class_name(&s.name, s.range);
                self.exprs(&s.bases);
                for keyword in &s.keywords {
                    let is_meta = keyword.arg.as_ref().is_some_and(|a| norm(a) == "metaclass");
                    if is_meta && !is_dotted_name(&keyword.value) {
                        self.push_range(
                            RuleId::ClassKeyword,
                            keyword.range,
                            "a metaclass must be a plain class name; other expressions smuggle calls into class creation".to_owned(),
                            "use metaclass=ABCMeta or another named class, or no metaclass",
                        );
                    }
                }
                self.keywords(&s.keywords);
                self.type_params(&s.type_params);
                self.stmts(&s.body);
            }
            Stmt::Return(s) => self.opt_expr(s.value.as_deref()),
            Stmt::Delete(s) => self.exprs(&s.targets),
            Stmt::Assign(s) => {
                for target in &s.targets {
                    self.match_args(target, &s.value);
                }
                self.exprs(&s.targets);
                self.expr(&s.value);
            }
            Stmt::TypeAlias(s) => {
                self.expr(&s.name);
                self.type_params(&s.type_params);
                self.annotation(&s.value);
            }
            Stmt::AugAssign(s) => {
                self.expr(&s.target);
                self.expr(&s.value);
            }
            Stmt::AnnAssign(s) => {
                if let Some(value) = &s.value {
                    self.match_args(&s.target, value);
                }
                self.expr(&s.target);
                self.annotation(&s.annotation);
                self.opt_expr(s.value.as_deref());
            }
            Stmt::For(s) => {
                self.expr(&s.target);
                self.expr(&s.iter);
                self.stmts(&s.body);
                self.stmts(&s.orelse);
            }
            Stmt::AsyncFor(s) => {
                self.expr(&s.target);
                self.expr(&s.iter);
                self.stmts(&s.body);
                self.stmts(&s.orelse);
            }
            Stmt::While(s) => {
                self.expr(&s.test);
                self.stmts(&s.body);
                self.stmts(&s.orelse);
            }
            Stmt::If(s) => {
                self.expr(&s.test);
                self.stmts(&s.body);
                self.stmts(&s.orelse);
            }
            Stmt::With(s) => {
                self.with_items(&s.items);
                self.stmts(&s.body);
            }
            Stmt::AsyncWith(s) => {
                self.with_items(&s.items);
                self.stmts(&s.body);
            }
            Stmt::Match(s) => {
                self.expr(&s.subject);
                for case in &s.cases {
                    self.pattern(&case.pattern);
                    self.opt_expr(case.guard.as_deref());
                    self.stmts(&case.body);
                }
            }
            Stmt::Raise(s) => {
                self.opt_expr(s.exc.as_deref());
                self.opt_expr(s.cause.as_deref());
            }
            Stmt::Try(s) => {
                self.stmts(&s.body);
                self.handlers(&s.handlers);
                self.stmts(&s.orelse);
                self.stmts(&s.finalbody);
            }
            Stmt::TryStar(s) => {
                self.stmts(&s.body);
                self.handlers(&s.handlers);
                self.stmts(&s.orelse);
                self.stmts(&s.finalbody);
            }
            Stmt::Assert(s) => {
                self.expr(&s.test);
                self.opt_expr(s.msg.as_deref());
            }
            Stmt::Import(s) => self.import(s),
            Stmt::ImportFrom(s) => self.import_from(s),
            Stmt::Expr(s) => self.expr(&s.value),
            Stmt::Global(_)
            | Stmt::Nonlocal(_)
            | Stmt::Pass(_)
            | Stmt::Break(_)
            | Stmt::Continue(_) => {}
        }
    }

    /// A class statement binds its name like an assignment does (`class __builtins__:`).
    fn class_name(&mut self, name: &str, range: TextRange) {
        let from = start(range);
        let text = self.lines.text.get(from..end(range)).unwrap_or("");
        let at = text
            .find("class")
            .and_then(|k| text.get(k + 5..)?.find(name).map(|n| from + k + 5 + n))
            .unwrap_or(from);
        let span = TextRange::new(
            rustpython_parser::text_size::TextSize::try_from(at).unwrap_or(range.start()),
            rustpython_parser::text_size::TextSize::try_from(at + name.len())
                .unwrap_or(range.end()),
        );
        self.binding(name, span);
    }

    fn handlers(&mut self, handlers: &[ast::ExceptHandler]) {
        for ast::ExceptHandler::ExceptHandler(h) in handlers {
            self.opt_expr(h.type_.as_deref());
            if let Some(name) = &h.name {
                self.binding(name, h.range);
            }
            self.stmts(&h.body);
        }
    }

    fn with_items(&mut self, items: &[ast::WithItem]) {
        for item in items {
            self.expr(&item.context_expr);
            self.opt_expr(item.optional_vars.as_deref());
        }
    }

    fn decorators(&mut self, decorators: &[Expr]) {
        for d in decorators {
            if let Expr::Attribute(a) = d
                && norm(&a.attr) == "register"
            {
                self.push_range(
                        RuleId::ForbiddenCall,
                        d.range(),
                        "`@dispatcher.register` without a type reads the type from annotations, which typing evaluates as code".to_owned(),
                        "name the type: @dispatcher.register(float)",
                    );
            }
            self.expr(d);
        }
    }

    fn arguments(&mut self, args: &ast::Arguments) {
        let all = args
            .posonlyargs
            .iter()
            .chain(&args.args)
            .chain(&args.kwonlyargs);
        for arg in all {
            if let Some(default) = &arg.default {
                self.expr(default);
            }
            if let Some(a) = &arg.def.annotation {
                self.annotation(a);
            }
        }
        for arg in args.vararg.iter().chain(&args.kwarg) {
            if let Some(a) = &arg.annotation {
                self.annotation(a);
            }
        }
    }

    fn type_params(&mut self, params: &[ast::TypeParam]) {
        for p in params {
            if let ast::TypeParam::TypeVar(t) = p
                && let Some(bound) = &t.bound
            {
                self.annotation(bound);
            }
        }
    }

    /// `__match_args__ = (...)` must be a tuple (or list) of string literals: positional
    /// class patterns read the attributes it names.
    fn match_args(&mut self, target: &Expr, value: &Expr) {
        let Expr::Name(name) = target else { return };
        if norm(&name.id) != "__match_args__" {
            return;
        }
        let literal = match value {
            Expr::Tuple(t) => t.elts.iter().all(|e| as_str(e).is_some()),
            Expr::List(l) => l.elts.iter().all(|e| as_str(e).is_some()),
            _ => false,
        };
        if !literal {
            self.push_range(
                RuleId::MatchArgs,
                value.range(),
                "`__match_args__` must be a tuple of string literals: class patterns read the attributes it names".to_owned(),
                "write the field names out: __match_args__ = (\"price\", \"size\")",
            );
        }
    }

    // ----- annotations ---------------------------------------------------------------

    /// An annotation is code like any other; in addition its string parts are evaluated by
    /// `typing.get_type_hints` (and so by `functools.singledispatch`), so each must be a
    /// plain type expression.
    fn annotation(&mut self, e: &Expr) {
        self.expr(e);
        let mut strings = Vec::new();
        collect_strings(e, &mut strings);
        for (s, range) in strings {
            if !is_type_string(s, 0) {
                self.push_range(
                    RuleId::StringAnnotation,
                    range,
                    "string annotation is not a plain type expression; typing evaluates it as code".to_owned(),
                    "write the type itself, or a quoted plain name such as \"Portfolio\" or \"list[Trade]\"",
                );
            }
        }
    }

    // ----- patterns ------------------------------------------------------------------

    fn pattern(&mut self, p: &Pattern) {
        match p {
            Pattern::MatchValue(v) => self.expr(&v.value),
            Pattern::MatchSingleton(_) => {}
            Pattern::MatchSequence(s) => {
                for p in &s.patterns {
                    self.pattern(p);
                }
            }
            Pattern::MatchMapping(m) => {
                self.exprs(&m.keys);
                for p in &m.patterns {
                    self.pattern(p);
                }
                if let Some(rest) = &m.rest {
                    self.binding(rest, m.range);
                }
            }
            Pattern::MatchClass(c) => {
                self.expr(&c.cls);
                for p in &c.patterns {
                    self.pattern(p);
                }
                let mut search_from = end(c.cls.range());
                for attr in &c.kwd_attrs {
                    let name = norm(attr);
                    let at = self
                        .lines
                        .text
                        .get(search_from..end(c.range))
                        .and_then(|text| text.find(attr.as_str()))
                        .map_or(start(c.range), |at| search_from + at);
                    search_from = at + attr.len();
                    if let Some(message) = self.attr_refusal(&name, false) {
                        self.push(
                            RuleId::DunderAccess,
                            at,
                            at + attr.len(),
                            format!("class pattern reads `{name}`: {message}"),
                            "match on public attributes of your own classes",
                        );
                    }
                }
                for p in &c.kwd_patterns {
                    self.pattern(p);
                }
            }
            Pattern::MatchStar(s) => {
                if let Some(name) = &s.name {
                    self.binding(name, s.range);
                }
            }
            Pattern::MatchAs(a) => {
                if let Some(p) = &a.pattern {
                    self.pattern(p);
                }
                if let Some(name) = &a.name {
                    self.binding(name, a.range);
                }
            }
            Pattern::MatchOr(o) => {
                for p in &o.patterns {
                    self.pattern(p);
                }
            }
        }
    }

    // ----- expressions ---------------------------------------------------------------

    fn exprs(&mut self, exprs: &[Expr]) {
        for e in exprs {
            self.expr(e);
        }
    }

    fn opt_expr(&mut self, e: Option<&Expr>) {
        if let Some(e) = e {
            self.expr(e);
        }
    }

    fn keywords(&mut self, keywords: &[ast::Keyword]) {
        for keyword in keywords {
            if let Some(arg) = &keyword.arg {
                let name = norm(arg);
                if let Some(message) = self.attr_refusal(&name, false) {
                    self.push(
                        RuleId::DunderAccess,
                        start(keyword.range),
                        start(keyword.range) + arg.len(),
                        format!("keyword argument `{name}`: {message}"),
                        "use ordinary parameter names",
                    );
                }
            }
            self.expr(&keyword.value);
        }
    }

    fn expr(&mut self, e: &Expr) {
        self.expr_as(e, Use::Value);
    }

    fn expr_as(&mut self, e: &Expr, usage: Use) {
        match e {
            Expr::BoolOp(x) => self.exprs(&x.values),
            Expr::NamedExpr(x) => {
                self.expr(&x.target);
                self.expr(&x.value);
            }
            Expr::BinOp(x) => {
                self.expr(&x.left);
                self.expr(&x.right);
            }
            Expr::UnaryOp(x) => self.expr(&x.operand),
            Expr::Lambda(x) => {
                self.arguments(&x.args);
                self.expr(&x.body);
            }
            Expr::IfExp(x) => {
                self.expr(&x.test);
                self.expr(&x.body);
                self.expr(&x.orelse);
            }
            Expr::Dict(x) => {
                for key in x.keys.iter().flatten() {
                    self.expr(key);
                }
                self.exprs(&x.values);
            }
            Expr::Set(x) => self.exprs(&x.elts),
            Expr::ListComp(x) => {
                self.expr(&x.elt);
                self.comprehensions(&x.generators);
            }
            Expr::SetComp(x) => {
                self.expr(&x.elt);
                self.comprehensions(&x.generators);
            }
            Expr::DictComp(x) => {
                self.expr(&x.key);
                self.expr(&x.value);
                self.comprehensions(&x.generators);
            }
            Expr::GeneratorExp(x) => {
                self.expr(&x.elt);
                self.comprehensions(&x.generators);
            }
            Expr::Await(x) => self.expr(&x.value),
            Expr::Yield(x) => self.opt_expr(x.value.as_deref()),
            Expr::YieldFrom(x) => self.expr(&x.value),
            Expr::Compare(x) => {
                self.expr(&x.left);
                self.exprs(&x.comparators);
            }
            Expr::Call(x) => self.call(x),
            Expr::FormattedValue(x) => {
                self.expr(&x.value);
                self.opt_expr(x.format_spec.as_deref());
            }
            Expr::JoinedStr(x) => self.exprs(&x.values),
            Expr::Constant(x) => {
                if let Constant::Str(s) = &x.value {
                    self.string(s, x.range);
                }
            }
            Expr::Attribute(x) => self.attribute(x, usage),
            Expr::Subscript(x) => {
                self.expr(&x.value);
                self.expr(&x.slice);
            }
            Expr::Starred(x) => self.expr(&x.value),
            Expr::Name(x) => match x.ctx {
                ExprContext::Load => self.name(x, usage),
                ExprContext::Store | ExprContext::Del => self.binding(&x.id, x.range),
            },
            Expr::List(x) => self.exprs(&x.elts),
            Expr::Tuple(x) => self.exprs(&x.elts),
            Expr::Slice(x) => {
                self.opt_expr(x.lower.as_deref());
                self.opt_expr(x.upper.as_deref());
                self.opt_expr(x.step.as_deref());
            }
        }
    }

    fn comprehensions(&mut self, generators: &[ast::Comprehension]) {
        for g in generators {
            self.expr(&g.target);
            self.expr(&g.iter);
            self.exprs(&g.ifs);
        }
    }

    /// A string literal that spells a dunder or internal attribute name (alone or as a
    /// dotted path) only serves reflective access: getattr, attrgetter, `__match_args__`.
    fn string(&mut self, s: &str, range: TextRange) {
        if s.is_empty() || s.len() > 200 {
            return;
        }
        let parts: Vec<&str> = s.split('.').collect();
        if !parts.iter().all(|p| is_identifier(p)) {
            return;
        }
        for part in parts {
            let name = norm(part);
            let refused = if rules::is_dunder(&name) {
                !rules::is_allowed_dunder_string(&name) && !rules::is_allowed_dunder_attr(&name)
            } else {
                rules::is_blocked_attr(&name) || self.config.forbid_attributes.contains(&*name)
            };
            if refused {
                self.push_range(
                    RuleId::DunderString,
                    range,
                    format!("string spells the internal name `{name}`, which only serves reflective access"),
                    "use plain attribute access on your own objects; internal names are off limits",
                );
                return;
            }
        }
    }

    /// Why reading (or binding, as a keyword or pattern attribute) `name` is refused.
    fn attr_refusal(&self, name: &str, allow_plain_dunders: bool) -> Option<&'static str> {
        if rules::is_dunder(name) {
            if allow_plain_dunders && rules::is_allowed_dunder_attr(name) {
                return None;
            }
            return Some("dunder attributes lead to the interpreter's internals");
        }
        if rules::is_blocked_attr(name) {
            return Some("frame, generator, traceback and code internals walk out of the strategy");
        }
        if self.config.forbid_attributes.contains(name) {
            return Some("the policy forbids this attribute");
        }
        None
    }

    /// A name bound by assignment, `for`, `as`, `import ... as`, patterns or `except`.
    fn binding(&mut self, raw: &str, range: TextRange) {
        let name = norm(raw);
        let refused = if rules::is_dunder(&name) {
            !rules::is_allowed_dunder_store(&name)
        } else {
            rules::is_blocked_attr(&name) || self.config.forbid_attributes.contains(&*name)
        };
        if refused {
            self.push_range(
                RuleId::DunderAccess,
                range,
                format!("binding the internal name `{name}`"),
                "use an ordinary name; internal names are off limits",
            );
        }
    }

    fn is_forbidden_builtin(&self, name: &str) -> bool {
        self.config.forbid_builtins.contains(name)
            || rules::is_forbidden_builtin(name) && !self.config.allow_builtins.contains(name)
    }

    fn name(&mut self, x: &ast::ExprName, usage: Use) {
        let name = norm(&x.id);
        let range = x.range;
        if name == "__import__" {
            self.push_range(
                RuleId::ForbiddenImport,
                range,
                "`__import__` imports modules the validator cannot see".to_owned(),
                "use a plain `import` statement of an allowed module",
            );
            return;
        }
        if self.is_forbidden_builtin(&name) {
            let message = match usage {
                Use::Callee => format!("call of the forbidden builtin `{name}`"),
                Use::Value | Use::Receiver => {
                    format!(
                        "the forbidden builtin `{name}` is referenced (it could be called later)"
                    )
                }
            };
            let hint = match &*name {
                "exit" | "quit" => "raise SystemExit(code) to stop with an exit code",
                "eval" | "exec" | "compile" => {
                    "write the code directly; for data use json.loads or float()/int()"
                }
                "globals" | "locals" | "vars" | "dir" => {
                    "keep your own dict of the values you need"
                }
                _ => "remove it; strategies compute and print, nothing else",
            };
            self.push_range(RuleId::ForbiddenCall, range, message, hint);
            return;
        }
        if rules::is_dunder(&name) {
            if !rules::is_allowed_dunder_name(&name) {
                self.push_range(
                    RuleId::DunderAccess,
                    range,
                    format!("the dunder name `{name}` leads to the interpreter's internals"),
                    "only `__name__` may be read, e.g. if __name__ == \"__main__\":",
                );
            }
            return;
        }
        if self.modules.contains_key(&*name) {
            self.push_range(
                RuleId::ModuleValue,
                range,
                format!("the module `{name}` is used as a value"),
                "use the module only through its attributes: json.loads(...), not m = json",
            );
            return;
        }
        if let Some(qualified) = self.objects.get(&*name).cloned() {
            self.sink_reference(&qualified, range, usage);
            return;
        }
        if rules::is_checked_builtin(&name) && usage != Use::Callee {
            self.push_range(
                RuleId::ForbiddenCall,
                range,
                format!(
                    "`{name}` is referenced without a call, so its arguments cannot be checked"
                ),
                if name == "open" {
                    OPEN_HINT
                } else {
                    GETATTR_HINT
                },
            );
        }
    }

    /// A reference to an imported object or module attribute that needs a decision.
    fn sink_reference(&mut self, qualified: &str, range: TextRange, usage: Use) {
        self.sink_at(qualified, start(range), end(range), usage);
    }

    fn sink_at(&mut self, qualified: &str, from: usize, to: usize, usage: Use) {
        let Some(sink) = rules::sink(qualified) else {
            return;
        };
        match sink {
            Sink::Formatter => self.push(
                RuleId::FormatEscape,
                from,
                to,
                format!("`{qualified}` walks attributes named in format strings"),
                FORMAT_HINT,
            ),
            Sink::Evaluates => self.push(
                RuleId::ForbiddenCall,
                from,
                to,
                format!("`{qualified}` evaluates strings as code"),
                "use the annotations as written; do not evaluate them",
            ),
            Sink::FileAccess => self.push(
                RuleId::ForbiddenCall,
                from,
                to,
                format!("`{qualified}` opens files outside the open() rule"),
                OPEN_HINT,
            ),
            Sink::AttrGetter | Sink::MethodCaller | Sink::Open | Sink::FieldNames => {
                if usage != Use::Callee && sink != Sink::FieldNames {
                    self.push(
                        RuleId::ForbiddenCall,
                        from,
                to,
                        format!("`{qualified}` is referenced without a call, so its arguments cannot be checked"),
                        if sink == Sink::Open { OPEN_HINT } else { GETATTR_HINT },
                    );
                }
            }
        }
    }

    /// The module an expression denotes, if it is a module name or an allowed sub-module.
    fn module_of(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Name(n) => self.modules.get(&*norm(&n.id)).cloned(),
            Expr::Attribute(a) => {
                let base = self.module_of(&a.value)?;
                let attr = norm(&a.attr);
                let qualified = format!("{base}.{attr}");
                if self.is_known_module(&qualified) {
                    return Some(qualified);
                }
                // A module another module holds (`re.enum`) is that module, so every rule
                // on modules applies to it; a module that is not allowed is refused by
                // `module_attribute` and not followed.
                match MAP.module_attribute(&base, &attr) {
                    Step::Module(m) if self.rules.classify(m) != ModuleClass::Forbidden => {
                        Some(m.to_owned())
                    }
                    Step::Module(_) | Step::Ordinary | Step::Object(_) | Step::Refused(_) => None,
                }
            }
            _ => None,
        }
    }

    /// What the attribute map says of `module.name` when it is refused: a module that is
    /// not allowed (also one this policy narrows away), or a callable with escape power.
    fn resolved_refusal(&self, module: &str, name: &str) -> Option<String> {
        match MAP.module_attribute(module, name) {
            Step::Refused(what) => Some(what.to_owned()),
            Step::Module(m) if self.rules.classify(m) == ModuleClass::Forbidden => {
                Some(format!("the module `{m}`, which is not allowed"))
            }
            Step::Module(_) | Step::Object(_) | Step::Ordinary => None,
        }
    }

    /// The root module and attribute names of a chain `m.a.b` whose root is a module name
    /// or an object imported from a module (`from logging import root as r`: `r.a` is
    /// `logging.root.a`).
    fn chain_of<'e>(&self, e: &'e Expr, attrs: &mut Vec<Cow<'e, str>>) -> Option<String> {
        match e {
            Expr::Name(n) => {
                let name = norm(&n.id);
                if let Some(module) = self.modules.get(&*name) {
                    return Some(module.clone());
                }
                let qualified = self.objects.get(&*name)?;
                let (module, object) = qualified.rsplit_once('.')?;
                attrs.push(Cow::Owned(object.to_owned()));
                Some(module.to_owned())
            }
            Expr::Attribute(a) => {
                let root = self.chain_of(&a.value, attrs)?;
                attrs.push(norm(&a.attr));
                Some(root)
            }
            _ => None,
        }
    }

    /// The qualified name of a callee: `json.loads`, or `operator.attrgetter` for a name
    /// bound by `from operator import attrgetter`.
    fn qualify(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Name(n) => {
                let name = norm(&n.id);
                self.modules
                    .get(&*name)
                    .or_else(|| self.objects.get(&*name))
                    .cloned()
            }
            Expr::Attribute(a) => {
                let base = self.module_of(&a.value)?;
                Some(format!("{base}.{}", norm(&a.attr)))
            }
            _ => None,
        }
    }

    fn attribute(&mut self, x: &ast::ExprAttribute, usage: Use) {
        let name = norm(&x.attr);
        let attr_end = end(x.range);
        let attr_start = attr_end
            .checked_sub(x.attr.len())
            .filter(|&s| self.lines.text.get(s..attr_end) == Some(x.attr.as_str()))
            .unwrap_or(start(x.range));
        if let Some(module) = self.module_of(&x.value) {
            self.module_attribute(&module, &name, x, attr_start, usage);
            return;
        }
        self.expr_as(&x.value, Use::Receiver);
        // A chain through objects a module holds (`logging.root.manager`): refused at the
        // step where the attribute map first reaches something refused (earlier steps are
        // reported on the inner expression).
        let mut attrs = Vec::new();
        if let Some(root) = self.chain_of(&x.value, &mut attrs) {
            attrs.push(name.clone());
            let steps: Vec<&str> = attrs.iter().map(|a| &**a).collect();
            if let Some((at, what)) = MAP.chain(&root, &steps)
                && at + 1 == steps.len()
            {
                self.push(
                    RuleId::ModuleAttribute,
                    attr_start,
                    attr_end,
                    format!("`{root}.{}` is {what}", steps.join(".")),
                    "use only the public functions and classes of allowed modules",
                );
                return;
            }
        }
        if rules::is_dunder(&name) {
            let via_super = matches!(&*x.value, Expr::Call(c)
                if matches!(&*c.func, Expr::Name(n) if norm(&n.id) == "super"));
            let allowed = x.ctx == ExprContext::Load
                && (rules::is_allowed_dunder_attr(&name)
                    || via_super && rules::is_super_dunder(&name));
            if !allowed {
                let hint = match &*name {
                    "__class__" => "use type(obj) to get the type of an object",
                    "__dict__" => "use dataclasses.asdict(obj) or read the attributes you need",
                    "__init__" | "__new__" | "__setattr__" => {
                        "delegate to the base class with super().__init__(...)"
                    }
                    _ => "use the public API of the object instead of its internals",
                };
                self.push(
                    RuleId::DunderAccess,
                    attr_start,
                    attr_end,
                    format!("access to the dunder attribute `{name}`"),
                    hint,
                );
            }
            return;
        }
        if let Some(message) = self.attr_refusal(&name, false) {
            self.push(
                RuleId::DunderAccess,
                attr_start,
                attr_end,
                format!("access to `{name}`: {message}"),
                "use the public API of the object instead of its internals",
            );
            return;
        }
        if name == "format" || name == "format_map" {
            match as_str(&x.value) {
                Some(template) => {
                    if let Some(field) = walking_field(template) {
                        self.push_range(
                            RuleId::FormatEscape,
                            x.value.range(),
                            format!("format field `{{{field}}}` reaches into attributes or items of its argument"),
                            FORMAT_HINT,
                        );
                    }
                }
                None => self.push(
                    RuleId::FormatEscape,
                    attr_start,
                    attr_end,
                    format!("`.{name}` on a format string that is not a literal; its fields could walk attributes"),
                    FORMAT_HINT,
                ),
            }
        }
    }

    fn module_attribute(
        &mut self,
        module: &str,
        name: &str,
        x: &ast::ExprAttribute,
        attr_start: usize,
        usage: Use,
    ) {
        let attr_end = end(x.range);
        let qualified = format!("{module}.{name}");
        if rules::sink(&qualified).is_some() {
            self.sink_at(&qualified, attr_start, attr_end, usage);
            return;
        }
        if rules::is_dunder(name) {
            if !(x.ctx == ExprContext::Load && rules::is_allowed_dunder_attr(name)) {
                self.push(
                    RuleId::DunderAccess,
                    attr_start,
                    attr_end,
                    format!("access to the dunder attribute `{name}` of the module `{module}`"),
                    "use the module's public functions",
                );
            }
            return;
        }
        let refusal = if let Some(why) = rules::native_denied(&qualified) {
            Some(format!("`{qualified}` is never allowed: {why}"))
        } else if rules::module_attribute_allowed(module, name) == Some(false) {
            Some(format!(
                "`{qualified}` is not among the attributes of `{module}` a strategy may use"
            ))
        } else if is_private(name) {
            Some(format!(
                "`{qualified}` is private to `{module}` (private module names can be other modules, like random._os)"
            ))
        } else if let Some(what) = self.resolved_refusal(module, name) {
            Some(format!("`{qualified}` is {what}"))
        } else if !MAP.covers(module) && self.is_leaked_module(name)
            || rules::is_stdlib_submodule(&qualified)
                && self.rules.classify(&qualified) == ModuleClass::Forbidden
        {
            Some(format!("`{qualified}` is a module that is not allowed"))
        } else if rules::is_blocked_attr(name) || self.config.forbid_attributes.contains(name) {
            Some(format!("access to `{qualified}` is not allowed"))
        } else {
            None
        };
        if let Some(message) = refusal {
            self.push(
                RuleId::ModuleAttribute,
                attr_start,
                attr_end,
                message,
                "use only the public functions and classes of allowed modules",
            );
        }
    }

    fn call(&mut self, call: &ast::ExprCall) {
        let unpacked = call.args.iter().any(|a| matches!(a, Expr::Starred(_)))
            || call.keywords.iter().any(|k| k.arg.is_none());
        if let Some(qualified) = self.qualify(&call.func) {
            match rules::sink(&qualified) {
                Some(Sink::Open) => self.check_open(call, unpacked),
                Some(Sink::AttrGetter) => {
                    let literal = !unpacked
                        && call.keywords.is_empty()
                        && !call.args.is_empty()
                        && call.args.iter().all(|a| as_str(a).is_some());
                    if !literal {
                        self.push_range(
                            RuleId::ForbiddenCall,
                            call.range,
                            "attrgetter needs string-literal attribute names".to_owned(),
                            "name the attributes literally: attrgetter(\"price\")",
                        );
                    }
                }
                Some(Sink::MethodCaller) => self.check_named_method(call, unpacked, "methodcaller"),
                Some(Sink::FieldNames) => self.check_field_names(call, unpacked, &qualified),
                Some(Sink::Formatter | Sink::Evaluates | Sink::FileAccess) | None => {}
            }
        } else if let Expr::Name(n) = &*call.func {
            match &*norm(&n.id) {
                "open" => self.check_open(call, unpacked),
                "getattr" | "setattr" | "delattr" | "hasattr" => {
                    self.check_named_method(call, unpacked, "getattr")
                }
                "type" if unpacked || call.args.len() > 1 || !call.keywords.is_empty() => self
                    .push_range(
                        RuleId::ForbiddenCall,
                        call.range,
                        "`type` with more than one argument builds classes at run time".to_owned(),
                        "write a class statement",
                    ),
                _ => {}
            }
        }
        self.expr_as(&call.func, Use::Callee);
        self.exprs(&call.args);
        self.keywords(&call.keywords);
    }

    /// getattr-like calls (name in the 2nd argument) and methodcaller (name in the 1st).
    fn check_named_method(&mut self, call: &ast::ExprCall, unpacked: bool, kind: &str) {
        let index = usize::from(kind == "getattr");
        let name = call.args.get(index).and_then(as_str);
        match name {
            Some(name) if !unpacked => {
                if name == "format" || name == "format_map" {
                    self.push_range(
                        RuleId::FormatEscape,
                        call.range,
                        format!(
                            "`{name}` fetched by name; its format fields could walk attributes"
                        ),
                        FORMAT_HINT,
                    );
                }
            }
            _ => self.push_range(
                RuleId::ForbiddenCall,
                call.range,
                format!("`{kind}` with an attribute name that is not a string literal"),
                GETATTR_HINT,
            ),
        }
    }

    fn check_field_names(&mut self, call: &ast::ExprCall, unpacked: bool, qualified: &str) {
        let keyword = if qualified.ends_with("namedtuple") {
            "field_names"
        } else {
            "fields"
        };
        let fields = call.args.get(1).or_else(|| {
            call.keywords
                .iter()
                .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == keyword))
                .map(|k| &k.value)
        });
        let literal_field = |e: &Expr| match e {
            Expr::Tuple(t) => t.elts.first().and_then(as_str).is_some(),
            Expr::List(l) => l.elts.first().and_then(as_str).is_some(),
            e => as_str(e).is_some(),
        };
        let literal = match fields {
            None => true,
            Some(Expr::List(l)) => l.elts.iter().all(literal_field),
            Some(Expr::Tuple(t)) => t.elts.iter().all(literal_field),
            Some(e) => as_str(e).is_some(),
        };
        if unpacked || !literal {
            self.push_range(
                RuleId::ForbiddenCall,
                call.range,
                format!("`{qualified}` with field names that are not literals; field names become attributes read by class patterns"),
                "write the field names as string literals, or use a class statement",
            );
        }
    }

    fn check_open(&mut self, call: &ast::ExprCall, unpacked: bool) {
        let arg = |index: usize, keyword: &str| {
            call.args.get(index).or_else(|| {
                call.keywords
                    .iter()
                    .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == keyword))
                    .map(|k| &k.value)
            })
        };
        let refusal = if unpacked {
            Some("open() with unpacked arguments".to_owned())
        } else if call.args.len() > 6
            || call.keywords.iter().any(|k| {
                k.arg
                    .as_ref()
                    .is_some_and(|a| a.as_str() == "opener" || a.as_str() == "closefd")
            })
        {
            Some("open() with an opener or closefd".to_owned())
        } else {
            match arg(0, "file").map(leading_literal) {
                None | Some(None) => {
                    Some("open() of a path that is not a literal under /data/".to_owned())
                }
                Some(Some(path)) => {
                    if !path.starts_with("/data/") || path.split('/').any(|c| c == "..") {
                        Some(format!("open() of `{path}`, which is not under /data/"))
                    } else {
                        match arg(1, "mode") {
                            None => None,
                            Some(mode) => match as_str(mode) {
                                Some(m) if m.chars().all(|c| matches!(c, 'r' | 'b' | 't')) => None,
                                Some(m) => {
                                    Some(format!("open() with mode `{m}`; files are read-only"))
                                }
                                None => Some("open() with a mode that is not a literal".to_owned()),
                            },
                        }
                    }
                }
            }
        };
        if let Some(message) = refusal {
            self.push_range(RuleId::ForbiddenCall, call.range, message, OPEN_HINT);
        }
    }
}

/// The literal text a path expression starts with: a string literal, the first literal
/// part of an f-string, or the leftmost operand of a `+` chain.
fn leading_literal(e: &Expr) -> Option<&str> {
    match e {
        Expr::Constant(_) => as_str(e),
        Expr::JoinedStr(j) => j.values.first().and_then(as_str),
        Expr::BinOp(b) if b.op == ast::Operator::Add => leading_literal(&b.left),
        _ => None,
    }
}

/// Every string literal inside an annotation expression.
fn collect_strings<'e>(e: &'e Expr, out: &mut Vec<(&'e str, TextRange)>) {
    match e {
        Expr::Constant(c) => {
            if let Constant::Str(s) = &c.value {
                out.push((s, c.range));
            }
        }
        Expr::Subscript(s) => {
            collect_strings(&s.value, out);
            collect_strings(&s.slice, out);
        }
        Expr::Tuple(t) => t.elts.iter().for_each(|e| collect_strings(e, out)),
        Expr::List(l) => l.elts.iter().for_each(|e| collect_strings(e, out)),
        Expr::BinOp(b) => {
            collect_strings(&b.left, out);
            collect_strings(&b.right, out);
        }
        Expr::Call(c) => {
            c.args.iter().for_each(|e| collect_strings(e, out));
            c.keywords
                .iter()
                .for_each(|k| collect_strings(&k.value, out));
        }
        Expr::Attribute(a) => collect_strings(&a.value, out),
        _ => {}
    }
}

/// Whether a string evaluated as an annotation is a plain type expression: names, dotted
/// public attributes, subscripts, `|` unions, literals.
fn is_type_string(s: &str, depth: usize) -> bool {
    if depth > 4 {
        return false;
    }
    match parse_guarded(s.trim(), Mode::Expression) {
        Ok(ast::Mod::Expression(e)) => is_type_expr(&e.body, depth),
        // Text that does not parse cannot be evaluated either.
        Ok(_) | Err(ParseFail::Syntax { .. }) => true,
        Err(ParseFail::Nesting { .. }) => false,
    }
}

fn is_type_expr(e: &Expr, depth: usize) -> bool {
    match e {
        Expr::Name(_) => true,
        Expr::Attribute(a) => {
            let name = norm(&a.attr);
            !rules::is_dunder(&name)
                && !rules::is_blocked_attr(&name)
                && is_type_expr(&a.value, depth)
        }
        Expr::Subscript(s) => is_type_expr(&s.value, depth) && is_type_expr(&s.slice, depth),
        Expr::Tuple(t) => t.elts.iter().all(|e| is_type_expr(e, depth)),
        Expr::List(l) => l.elts.iter().all(|e| is_type_expr(e, depth)),
        Expr::Constant(c) => match &c.value {
            Constant::Str(s) => is_type_string(s, depth + 1),
            _ => true,
        },
        Expr::BinOp(b) => {
            b.op == ast::Operator::BitOr
                && is_type_expr(&b.left, depth)
                && is_type_expr(&b.right, depth)
        }
        Expr::UnaryOp(u) => matches!(&*u.operand, Expr::Constant(_)),
        Expr::Starred(s) => is_type_expr(&s.value, depth),
        _ => false,
    }
}
