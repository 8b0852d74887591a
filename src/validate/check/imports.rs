//! Import statements, the names they bind, and the functions that dispatch on types.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::rc::Rc;

use ruff_python_ast::statement_visitor::{StatementVisitor, walk_stmt};
use ruff_python_ast::{self as ast, Expr, Stmt};

use super::super::hash;
use super::super::resolve::{MAP, Step};
use super::{Checker, Import, ModuleClass, RuleId, end, is_private, norm, qualified, rules, start};

/// Bits of [`Imported`]'s filter (a power of two).
const FILTER_BITS: usize = 2048;

/// What an imported local name denotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Binding {
    /// A module (`import numpy as np`, `from os import path`): its dotted name.
    Module(Rc<str>),
    /// An object of a module (`from math import sqrt`): its qualified name, `math.sqrt`.
    Object(Rc<str>),
}

impl Binding {
    /// The module's name or the object's qualified name (shared: every use of an imported
    /// name hands it out).
    pub(super) fn name(&self) -> &Rc<str> {
        match self {
            Binding::Module(name) | Binding::Object(name) => name,
        }
    }
}

/// The local names that imports bind (NFKC-normalised). A name bound to a module stays a
/// module: a later import of an object under the same name does not hide it from the
/// module rules.
///
/// Every bare name of the strategy is looked up here, and nearly all are not imported. A
/// bit per bound name, at a slot picked by the fast hash, answers those without the map's
/// keyed hash; a name whose bit is set (a bound name, or one that collides with it) is
/// looked up in the map, so the map's answer is the one given either way.
#[derive(Clone)]
pub(super) struct Imported {
    bound: HashMap<String, Binding>,
    filter: [u64; FILTER_BITS / 64],
}

impl Default for Imported {
    fn default() -> Self {
        Self {
            bound: HashMap::new(),
            filter: [0; FILTER_BITS / 64],
        }
    }
}

impl Imported {
    /// The word and bit of `name` in the filter.
    fn slot(name: &str) -> (usize, u64) {
        let bit = (hash::of_str(name) >> (64 - FILTER_BITS.trailing_zeros())) as usize;
        (bit / 64, 1 << (bit % 64))
    }

    /// Binds `local`, unless it names a module already and `binding` is an object.
    pub(super) fn bind(&mut self, local: String, binding: Binding) {
        let (word, bit) = Self::slot(&local);
        self.filter[word] |= bit;
        match self.bound.entry(local) {
            Entry::Vacant(entry) => {
                entry.insert(binding);
            }
            Entry::Occupied(mut entry) => {
                if matches!(binding, Binding::Module(_))
                    || matches!(entry.get(), Binding::Object(_))
                {
                    entry.insert(binding);
                }
            }
        }
    }

    /// What `name` denotes, if an import binds it.
    pub(super) fn get(&self, name: &str) -> Option<&Binding> {
        let (word, bit) = Self::slot(name);
        if self.filter[word] & bit == 0 {
            return None;
        }
        self.bound.get(name)
    }

    /// The module `name` denotes.
    pub(super) fn module(&self, name: &str) -> Option<&Rc<str>> {
        match self.get(name) {
            Some(Binding::Module(module)) => Some(module),
            Some(Binding::Object(_)) | None => None,
        }
    }
}

/// Every import statement, function definition and class definition, at any depth.
#[derive(Default)]
struct Statements<'a> {
    imports: Vec<&'a Stmt>,
    functions: Vec<&'a ast::StmtFunctionDef>,
    classes: Vec<&'a ast::StmtClassDef>,
}

impl<'a> StatementVisitor<'a> for Statements<'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(_) | Stmt::ImportFrom(_) => self.imports.push(stmt),
            Stmt::FunctionDef(f) => self.functions.push(f),
            Stmt::ClassDef(c) => self.classes.push(c),
            _ => {}
        }
        walk_stmt(self, stmt);
    }
}

impl Checker<'_> {
    /// Records which local names are modules and which are imported objects, before the
    /// walk, so that uses above a (function-local or later) import are resolved too; then
    /// which functions are `singledispatch` functions and which names are classes.
    pub(super) fn bind_imports(&mut self, body: &[Stmt]) {
        let mut statements = Statements::default();
        statements.visit_body(body);
        for stmt in &statements.imports {
            match stmt {
                Stmt::Import(s) => {
                    for alias in &s.names {
                        let name = norm(&alias.name).into_owned();
                        match &alias.asname {
                            Some(local) => {
                                let local = norm(local).into_owned();
                                self.imported.bind(local, Binding::Module(name.into()));
                            }
                            None => {
                                let top = name.split('.').next().unwrap_or("").to_owned();
                                self.imported.bind(top.clone(), Binding::Module(top.into()));
                            }
                        }
                    }
                }
                Stmt::ImportFrom(s) => {
                    if s.level > 0 {
                        continue;
                    }
                    let Some(module) = &s.module else { continue };
                    let module = norm(module);
                    if module == "__future__" {
                        continue;
                    }
                    for alias in &s.names {
                        let name = norm(&alias.name);
                        let qualified = qualified(&module, &name);
                        let local = norm(alias.asname.as_ref().unwrap_or(&alias.name)).into_owned();
                        if self.is_known_module(&qualified) {
                            self.imported.bind(local, Binding::Module(qualified.into()));
                        } else if let Step::Module(m) = MAP.module_attribute(&module, &name) {
                            // `from re import enum as e`: `e` is the module `enum`.
                            self.imported.bind(local, Binding::Module(m.into()));
                        } else {
                            self.imported.bind(local, Binding::Object(qualified.into()));
                        }
                    }
                }
                _ => {}
            }
        }
        for function in &statements.functions {
            let dispatches = function.decorator_list.iter().any(|d| {
                self.qualify(&d.expression).is_some_and(|q| {
                    &*q == "functools.singledispatch" || &*q == "functools.singledispatchmethod"
                })
            });
            if dispatches {
                self.dispatchers.insert(norm(&function.name).into_owned());
            }
        }
        for class in &statements.classes {
            self.classes.insert(norm(&class.name).into_owned());
        }
    }

    /// Whether `@decorator.register` registers an implementation on a `singledispatch`
    /// function of this file.
    pub(super) fn is_dispatcher(&self, e: &Expr) -> bool {
        matches!(e, Expr::Name(n) if self.dispatchers.contains(&*norm(&n.id)))
    }

    /// A dotted name that is a module (rather than an attribute of one).
    pub(super) fn is_known_module(&self, qualified: &str) -> bool {
        self.rules.wasm.contains(qualified) || rules::is_stdlib_submodule(qualified)
    }

    fn record_import(&mut self, module: String, from: usize, to: usize) {
        let (line, col) = self.lines.position(from);
        let import = Import { module, line, col };
        if self.rules.classify(&import.module) == ModuleClass::Forbidden {
            let mut violation = super::super::import_violation(&import, self.rules);
            violation.text = self.lines.excerpt(from, to);
            self.violations.push(violation);
        }
        self.imports.push(import);
    }

    pub(super) fn import(&mut self, s: &ast::StmtImport) {
        for alias in &s.names {
            let name = norm(&alias.name).into_owned();
            self.record_import(name, start(alias.range), end(alias.range));
            if let Some(local) = &alias.asname {
                self.binding(local, alias.range);
            }
        }
    }

    pub(super) fn import_from(&mut self, s: &ast::StmtImportFrom) {
        let level = usize::try_from(s.level).unwrap_or(usize::MAX);
        let raw = s.module.as_ref().map_or("", |m| m.as_str());
        let module_at = if level > 0 {
            let statement = self
                .lines
                .text
                .get(start(s.range)..end(s.range))
                .unwrap_or("");
            statement
                .get(4..)
                .and_then(|after_from| after_from.find('.'))
                .map_or(start(s.range), |at| start(s.range) + 4 + at)
        } else {
            s.module.as_ref().map_or(start(s.range), |m| start(m.range))
        };
        let module_len = level.saturating_add(raw.len());
        let module = norm(raw);
        if level > 0 {
            self.record_import(
                format!("{}{module}", ".".repeat(level.min(64))),
                module_at,
                module_at.saturating_add(module_len),
            );
            return;
        }
        if module == "__future__" {
            // A compiler directive (`from __future__ import annotations`), not a module the
            // strategy uses: nothing to route, nothing bound but the names below.
            for alias in &s.names {
                if let Some(local) = &alias.asname {
                    self.binding(local, alias.range);
                }
            }
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
            let qualified = qualified(&module, &name);
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
                if !rules::is_allowed_dunder_attr(&name) {
                    self.push(
                        RuleId::DunderAccess,
                        from,
                        to,
                        format!("importing the dunder `{name}` from `{module}`"),
                        "import only public names",
                    );
                }
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
    pub(super) fn is_leaked_module(&self, name: &str) -> bool {
        MAP.is_stdlib_module(name)
            && (self.rules.classify(name) == ModuleClass::Forbidden
                || rules::module_attribute_allowed(name, "").is_some())
    }
}
