//! The [`Inventory`] of a tree, by the definition in `inventory.rs`.

use std::collections::BTreeSet;

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{Expr, Stmt};

use super::super::inventory::Inventory;
use super::norm;

/// The imports, names, attributes and call targets of `body`, NFKC-normalised.
pub fn inventory(body: &[Stmt]) -> Inventory {
    let mut collector = Collector::default();
    collector.visit_body(body);
    collector.inventory
}

#[derive(Default)]
struct Collector {
    inventory: Inventory,
}

/// `a.b.c` for a name or a chain of attributes on a name.
fn dotted(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(norm(&n.id).into_owned()),
        Expr::Attribute(a) => {
            let mut base = dotted(&a.value)?;
            base.push('.');
            base.push_str(&norm(&a.attr));
            Some(base)
        }
        _ => None,
    }
}

/// Adds the normalised `name`, allocating only when it is new (most names repeat).
fn insert(set: &mut BTreeSet<String>, name: &str) {
    let name = norm(name);
    if !set.contains(&*name) {
        set.insert(name.into_owned());
    }
}

impl<'a> Visitor<'a> for Collector {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(s) => {
                for alias in &s.names {
                    self.inventory
                        .imports
                        .insert(norm(&alias.name).into_owned());
                }
            }
            Stmt::ImportFrom(s) => {
                let level = usize::try_from(s.level).unwrap_or(0);
                let module = s.module.as_ref().map_or("", |m| m.as_str());
                self.inventory
                    .imports
                    .insert(format!("{}{}", ".".repeat(level), norm(module)));
            }
            _ => {}
        }
        visitor::walk_stmt(self, stmt);
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Name(n) => insert(&mut self.inventory.names, &n.id),
            Expr::Attribute(a) => insert(&mut self.inventory.attributes, &a.attr),
            Expr::Call(c) => {
                if let Some(callee) = dotted(&c.func) {
                    self.inventory.calls.insert(callee);
                }
            }
            _ => {}
        }
        visitor::walk_expr(self, expr);
    }
}
