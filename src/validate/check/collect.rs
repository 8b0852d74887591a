//! The [`Inventory`] of a tree, by the definition in `inventory.rs`.
//!
//! [`Recorder`] notes what one node adds. The checker calls it on every node of its own
//! walk, so that a validation walks the tree once; [`inventory`] walks a tree with nothing
//! but the recorder, for [`super::inventory_of`] and for the test that holds the checker's
//! walk to the same result.

use std::borrow::Cow;
use std::collections::BTreeSet;

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{Expr, Stmt};

use super::super::hash;
use super::super::inventory::Inventory;
use super::norm;

/// The imports, names, attributes and call targets of `body`, NFKC-normalised.
pub fn inventory(body: &[Stmt]) -> Inventory {
    let mut collector = Collector::default();
    collector.visit_body(body);
    collector.0.finish()
}

/// A walk of the whole tree that only records.
#[derive(Default)]
struct Collector<'a>(Recorder<'a>);

impl<'a> Visitor<'a> for Collector<'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        self.0.stmt(stmt);
        visitor::walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        self.0.expr(expr);
        visitor::walk_expr(self, expr);
    }
}

/// What the nodes seen so far add to the inventory, borrowed from the tree until
/// [`Recorder::finish`].
#[derive(Default)]
pub struct Recorder<'a> {
    imports: BTreeSet<String>,
    names: Seen<'a>,
    attributes: Seen<'a>,
    calls: Seen<'a>,
    /// Where a dotted callee is spelled out.
    scratch: String,
}

impl<'a> Recorder<'a> {
    /// An import statement's modules (any other statement adds nothing by itself).
    pub fn stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(s) => {
                for alias in &s.names {
                    self.imports.insert(norm(&alias.name).into_owned());
                }
            }
            Stmt::ImportFrom(s) => {
                let level = usize::try_from(s.level).unwrap_or(0);
                let module = s.module.as_ref().map_or("", |m| m.as_str());
                self.imports
                    .insert(format!("{}{}", ".".repeat(level), norm(module)));
            }
            _ => {}
        }
    }

    /// A name, an attribute or a call (its children are recorded when they are visited).
    pub fn expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Name(n) => self.names.insert(&n.id),
            Expr::Attribute(a) => self.attributes.insert(&a.attr),
            Expr::Call(c) => match &*c.func {
                Expr::Name(n) => self.calls.insert(&n.id),
                func => {
                    self.scratch.clear();
                    if dotted(func, &mut self.scratch) {
                        self.calls.insert_owned(&self.scratch);
                    }
                }
            },
            _ => {}
        }
    }

    /// A chain of names and attributes (`a.b.c`) and every node in it.
    pub fn chain(&mut self, expr: &'a Expr) {
        self.expr(expr);
        if let Expr::Attribute(a) = expr {
            self.chain(&a.value);
        }
    }

    pub fn finish(self) -> Inventory {
        Inventory {
            imports: self.imports,
            names: self.names.finish(),
            attributes: self.attributes.finish(),
            calls: self.calls.finish(),
        }
    }
}

/// Slots of the cache in front of each list (a power of two).
const CACHE_SLOTS: usize = 256;

/// The spellings seen, as written (normalised at the end). Most names repeat (`self`,
/// `print`, `append`): a small cache of the spellings seen last answers most of them, and
/// the others are listed, to be sorted and deduplicated once at the end; no input makes
/// that quadratic.
///
/// The caches live on the heap, allocated on first use, so that the checker that holds
/// the recorder stays small to move.
#[derive(Default)]
struct Seen<'a> {
    recent: Vec<Option<&'a str>>,
    /// For spellings built by the recorder: where in `listed` the last one of each slot is.
    recent_built: Vec<Option<usize>>,
    listed: Vec<Cow<'a, str>>,
}

impl<'a> Seen<'a> {
    fn insert(&mut self, name: &'a str) {
        if self.recent.is_empty() {
            self.recent = vec![None; CACHE_SLOTS];
        }
        let slot = &mut self.recent[cache_slot(name)];
        if *slot != Some(name) {
            *slot = Some(name);
            self.listed.push(Cow::Borrowed(name));
        }
    }

    /// A spelling built by the recorder (already normalised).
    fn insert_owned(&mut self, name: &str) {
        if self.recent_built.is_empty() {
            self.recent_built = vec![None; CACHE_SLOTS];
        }
        let slot = &mut self.recent_built[cache_slot(name)];
        if slot.is_some_and(|at| self.listed.get(at).is_some_and(|seen| seen == name)) {
            return;
        }
        *slot = Some(self.listed.len());
        self.listed.push(Cow::Owned(name.to_owned()));
    }

    /// The normalised names, each once.
    fn finish(self) -> BTreeSet<String> {
        // Sorted here by a prefix read as a number, which settles most comparisons without
        // a call to `memcmp`: the set then finds its input in order and only deduplicates.
        let mut names: Vec<(u64, String)> = self
            .listed
            .into_iter()
            .map(|name| {
                let name = match name {
                    Cow::Borrowed(name) => norm(name).into_owned(),
                    Cow::Owned(name) => name,
                };
                (prefix(&name), name)
            })
            .collect();
        names.sort_unstable();
        names.into_iter().map(|(_, name)| name).collect()
    }
}

/// The first eight bytes of `name` as a number, in an order that agrees with the order of
/// strings.
fn prefix(name: &str) -> u64 {
    let mut word = 0u64;
    for (i, byte) in name.bytes().take(8).enumerate() {
        word |= u64::from(byte) << (56 - 8 * i);
    }
    word
}

/// The cache slot of a spelling. A collision only costs a listed duplicate.
fn cache_slot(name: &str) -> usize {
    (hash::of_str(name) >> (64 - CACHE_SLOTS.trailing_zeros())) as usize
}

/// Writes `a.b.c` for a name or a chain of attributes on a name; `false` for any other
/// expression.
fn dotted(e: &Expr, out: &mut String) -> bool {
    match e {
        Expr::Name(n) => {
            out.push_str(&norm(&n.id));
            true
        }
        Expr::Attribute(a) => {
            if !dotted(&a.value, out) {
                return false;
            }
            out.push('.');
            out.push_str(&norm(&a.attr));
            true
        }
        _ => false,
    }
}
