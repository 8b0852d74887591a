//! Bare names: builtins, dunder names, modules used as values; and the names a strategy
//! binds.

use ruff_python_ast::visitor::Visitor;
use ruff_python_ast::{self as ast, Expr};
use ruff_text_size::TextRange;

use super::imports::Binding;
use super::{Checker, GETATTR_HINT, OPEN_HINT, RuleId, Use, VARS_HINT, norm, rules, start};

impl<'a> Checker<'a> {
    /// A name bound by assignment, `for`, `as`, `import ... as`, patterns or `except`.
    pub(super) fn binding(&mut self, raw: &str, range: TextRange) {
        let name = norm(raw);
        let refused = if rules::is_dunder(&name) {
            !rules::is_allowed_dunder_store(&name)
        } else {
            self.is_internal(&name)
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

    /// `__author__ = "..."` and the like: module metadata, bound at module level to literal
    /// data (a string, a number, or a tuple or list of them).
    pub(super) fn is_module_metadata(&self, target: &Expr, value: &Expr) -> bool {
        self.depth == 0
            && matches!(target, Expr::Name(n) if rules::is_module_metadata(&norm(&n.id)))
            && is_literal_data(value, 0)
    }

    fn is_forbidden_builtin(&self, name: &str) -> bool {
        self.config.forbid_builtins.contains(name)
            || rules::is_forbidden_builtin(name) && !self.config.allow_builtins.contains(name)
    }

    pub(super) fn keyword(&mut self, keyword: &'a ast::Keyword) {
        if let Some(arg) = &keyword.arg {
            let name = norm(arg);
            if let Some(message) = self.attr_refusal(&name) {
                self.push(
                    RuleId::DunderAccess,
                    start(arg.range),
                    start(arg.range) + arg.len(),
                    format!("keyword argument `{name}`: {message}"),
                    "use ordinary parameter names",
                );
            }
        }
        self.visit_expr(&keyword.value);
    }

    pub(super) fn name(&mut self, x: &ast::ExprName, usage: Use) {
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
                "globals" | "locals" | "dir" => "keep your own dict of the values you need",
                _ => "remove it; strategies compute and print, nothing else",
            };
            self.push_range(RuleId::ForbiddenCall, range, message, hint);
            return;
        }
        if rules::is_dunder(&name) {
            if !rules::is_allowed_dunder_name(&name) && !rules::is_module_metadata(&name) {
                self.push_range(
                    RuleId::DunderAccess,
                    range,
                    format!("the dunder name `{name}` leads to the interpreter's internals"),
                    "only `__name__`, `__doc__` and module metadata such as `__version__` may be read, e.g. if __name__ == \"__main__\":",
                );
            }
            return;
        }
        match self.imported.get(&name) {
            Some(Binding::Module(_)) => {
                self.push_range(
                    RuleId::ModuleValue,
                    range,
                    format!("the module `{name}` is used as a value"),
                    "use the module only through its attributes: json.loads(...), not m = json",
                );
                return;
            }
            Some(Binding::Object(qualified)) => {
                let qualified = qualified.clone();
                self.sink_reference(&qualified, range, usage);
                return;
            }
            None => {}
        }
        if rules::is_checked_builtin(&name) && usage != Use::Callee {
            self.push_range(
                RuleId::ForbiddenCall,
                range,
                format!(
                    "`{name}` is referenced without a call, so its arguments cannot be checked"
                ),
                match &*name {
                    "open" => OPEN_HINT,
                    "vars" => VARS_HINT,
                    _ => GETATTR_HINT,
                },
            );
        }
    }
}

/// A string, a number, or a (nested) tuple or list of them.
fn is_literal_data(e: &Expr, depth: usize) -> bool {
    match e {
        Expr::StringLiteral(_) | Expr::NumberLiteral(_) => true,
        Expr::Tuple(t) => depth < 4 && t.elts.iter().all(|e| is_literal_data(e, depth + 1)),
        Expr::List(l) => depth < 4 && l.elts.iter().all(|e| is_literal_data(e, depth + 1)),
        _ => false,
    }
}
