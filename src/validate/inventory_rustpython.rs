//! The host's [`Inventory`] from the validator's current parser (rustpython-parser), by the
//! definition in [`super::inventory`].
//!
//! Interim: the validator moves to Ruff's parser (issue 8, item 1), which computes the
//! inventory from its own tree as it validates; this file goes away with rustpython-parser.

use rustpython_parser::Mode;
use rustpython_parser::ast::{self, Expr, Visitor};
use unicode_normalization::UnicodeNormalization;

use super::Inventory;

/// The inventory of `source`, or `None` when it does not parse or nests too deeply (the
/// validator has then already refused it).
pub fn of(source: &str) -> Option<Inventory> {
    let ast::Mod::Module(module) = super::check::parse_guarded(source, Mode::Module).ok()? else {
        return None;
    };
    let mut walker = Walker::default();
    for stmt in module.body {
        walker.visit_stmt(stmt);
    }
    Some(walker.inventory)
}

fn norm(name: &str) -> String {
    if name.is_ascii() {
        name.to_owned()
    } else {
        name.nfkc().collect()
    }
}

/// `a.b.c` for a name or a chain of attributes on a name.
fn dotted(e: &Expr) -> Option<String> {
    match e {
        Expr::Name(n) => Some(norm(&n.id)),
        Expr::Attribute(a) => Some(format!("{}.{}", dotted(&a.value)?, norm(&a.attr))),
        _ => None,
    }
}

#[derive(Default)]
struct Walker {
    inventory: Inventory,
}

impl Visitor for Walker {
    fn visit_stmt_import(&mut self, node: ast::StmtImport) {
        for alias in &node.names {
            self.inventory.imports.insert(norm(&alias.name));
        }
    }

    fn visit_stmt_import_from(&mut self, node: ast::StmtImportFrom) {
        let level = node.level.map_or(0, |l| l.to_usize());
        let module = node.module.as_deref().map(norm).unwrap_or_default();
        self.inventory
            .imports
            .insert(format!("{}{module}", ".".repeat(level)));
    }

    fn visit_expr_name(&mut self, node: ast::ExprName) {
        self.inventory.names.insert(norm(&node.id));
    }

    fn visit_expr_attribute(&mut self, node: ast::ExprAttribute) {
        self.inventory.attributes.insert(norm(&node.attr));
        self.generic_visit_expr_attribute(node);
    }

    fn visit_expr_call(&mut self, node: ast::ExprCall) {
        if let Some(callee) = dotted(&node.func) {
            self.inventory.calls.insert(callee);
        }
        self.generic_visit_expr_call(node);
    }

    // rustpython-ast's generated visitor does not descend into the nodes below (their
    // generic visits are empty); each is walked here.

    fn visit_comprehension(&mut self, node: ast::Comprehension) {
        self.visit_expr(node.target);
        self.visit_expr(node.iter);
        for e in node.ifs {
            self.visit_expr(e);
        }
    }

    fn visit_arguments(&mut self, node: ast::Arguments) {
        for arg in node
            .posonlyargs
            .into_iter()
            .chain(node.args)
            .chain(node.kwonlyargs)
        {
            self.visit_arg(arg.def);
            if let Some(default) = arg.default {
                self.visit_expr(*default);
            }
        }
        for arg in node.vararg.into_iter().chain(node.kwarg) {
            self.visit_arg(*arg);
        }
    }

    fn visit_arg(&mut self, node: ast::Arg) {
        if let Some(annotation) = node.annotation {
            self.visit_expr(*annotation);
        }
    }

    fn visit_keyword(&mut self, node: ast::Keyword) {
        self.visit_expr(node.value);
    }

    fn visit_withitem(&mut self, node: ast::WithItem) {
        self.visit_expr(node.context_expr);
        if let Some(vars) = node.optional_vars {
            self.visit_expr(*vars);
        }
    }

    fn visit_match_case(&mut self, node: ast::MatchCase) {
        self.visit_pattern(node.pattern);
        if let Some(guard) = node.guard {
            self.visit_expr(*guard);
        }
        for stmt in node.body {
            self.visit_stmt(stmt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_definition() {
        let inventory =
            of("import a.b as c\nfrom ..m import n\nx = np.random.default_rng(1).f(y)\n")
                .expect("parses");
        assert_eq!(inventory.imports.iter().collect::<Vec<_>>(), ["..m", "a.b"]);
        assert_eq!(inventory.names.iter().collect::<Vec<_>>(), ["np", "x", "y"]);
        assert_eq!(
            inventory.attributes.iter().collect::<Vec<_>>(),
            ["default_rng", "f", "random"]
        );
        assert_eq!(
            inventory.calls.iter().collect::<Vec<_>>(),
            ["np.random.default_rng"]
        );
    }
}
