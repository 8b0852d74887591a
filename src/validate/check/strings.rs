//! Strings: literals that spell internal names, and `str.format` templates.

use std::collections::HashMap;

use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, ExprContext, Stmt};
use ruff_text_size::{Ranged, TextRange};

use super::super::format::walking_field;
use super::{Checker, FORMAT_HINT, RuleId, as_str, end, is_identifier, norm, rules, start};

impl Checker<'_> {
    /// A string literal that spells a dunder or internal attribute name (alone or as a
    /// dotted path) only serves reflective access: getattr, attrgetter, `__match_args__`.
    pub(super) fn string(&mut self, s: &str, range: TextRange) {
        if s.is_empty() || s.len() > 200 {
            return;
        }
        if !s.split('.').all(is_identifier) {
            return;
        }
        for part in s.split('.') {
            let name = norm(part);
            let refused = if rules::is_dunder(&name) {
                !rules::is_allowed_dunder_string(&name) && !rules::is_allowed_dunder_attr(&name)
            } else {
                self.is_internal(&name)
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

    /// `.format` / `.format_map` on an object: the template must be a literal whose fields
    /// do not walk attributes or items.
    pub(super) fn format_method(&mut self, x: &ast::ExprAttribute, name: &str) {
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
            None => {
                let template = (start(x.attr.range), end(x.attr.range), name.to_owned());
                match &*x.value {
                    // `str` is the one builtin whose `.format` takes the template as an
                    // argument (`str.format("{0.x}", o)`): never a constant.
                    Expr::Name(n) if norm(&n.id) != "str" => {
                        self.templates.push((norm(&n.id).into_owned(), template));
                    }
                    _ => self.push_template_refusal(template),
                }
            }
        }
    }

    fn push_template_refusal(&mut self, (from, to, name): Template) {
        self.push(
            RuleId::FormatEscape,
            from,
            to,
            format!("`.{name}` on a format string that is not a literal or a name bound only to literals; its fields could walk attributes"),
            FORMAT_HINT,
        );
    }

    /// Decides the `.format`/`.format_map` calls on names deferred by the walk: a name that
    /// the whole file binds only at module level, only as `name = "literal"`, and never in
    /// any other way (parameter, loop, import, `global`, `del`, ...) holds one of those
    /// literals wherever it is read (or is unbound); the call is checked as if on them.
    pub(super) fn resolve_templates(&mut self, body: &[Stmt]) {
        if self.templates.is_empty() {
            return;
        }
        let mut scan = Bindings {
            found: self
                .templates
                .iter()
                .map(|(name, _)| (name.clone(), Some(Vec::new())))
                .collect(),
            depth: 0,
        };
        scan.visit_body(body);
        for (name, template) in std::mem::take(&mut self.templates) {
            let literals = scan.found.get(&name).and_then(Option::as_ref);
            match literals {
                Some(literals) if !literals.is_empty() => {
                    if let Some(field) = literals.iter().find_map(|l| walking_field(l)) {
                        self.push(
                            RuleId::FormatEscape,
                            template.0,
                            template.1,
                            format!("format field `{{{field}}}` of the string bound to `{name}` reaches into attributes or items of its argument"),
                            FORMAT_HINT,
                        );
                    }
                }
                _ => self.push_template_refusal(template),
            }
        }
    }
}

/// Where a deferred `.format` call is, and the method's name.
pub(super) type Template = (usize, usize, String);

/// For each wanted name, the string literals bound to it by `name = "..."` statements at
/// module level, or `None` once any other binding of the name is seen.
struct Bindings<'a> {
    found: HashMap<String, Option<Vec<&'a str>>>,
    depth: usize,
}

impl<'a> Bindings<'a> {
    fn poison(&mut self, name: &str) {
        if let Some(entry) = self.found.get_mut(&*norm(name)) {
            *entry = None;
        }
    }

    /// `name = "literal"` (or `name: str = "literal"`) at module level.
    fn literal(&mut self, target: &Expr, value: Option<&'a Expr>) -> bool {
        let (Expr::Name(n), Some(Expr::StringLiteral(s))) = (target, value) else {
            return false;
        };
        if self.depth > 0 {
            return false;
        }
        if let Some(Some(literals)) = self.found.get_mut(&*norm(&n.id)) {
            literals.push(s.value.to_str());
        }
        true
    }
}

impl<'a> Visitor<'a> for Bindings<'a> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Assign(a)
                if a.targets.len() == 1 && self.literal(&a.targets[0], Some(&a.value)) => {}
            Stmt::AnnAssign(a) if self.literal(&a.target, a.value.as_deref()) => {
                self.visit_annotation(&a.annotation);
            }
            Stmt::FunctionDef(f) => {
                self.poison(&f.name);
                self.depth += 1;
                visitor::walk_stmt(self, stmt);
                self.depth -= 1;
            }
            Stmt::ClassDef(c) => {
                self.poison(&c.name);
                self.depth += 1;
                visitor::walk_stmt(self, stmt);
                self.depth -= 1;
            }
            Stmt::Global(ast::StmtGlobal { names, .. })
            | Stmt::Nonlocal(ast::StmtNonlocal { names, .. }) => {
                for name in names {
                    self.poison(name);
                }
            }
            _ => visitor::walk_stmt(self, stmt),
        }
    }

    fn visit_expr(&mut self, expr: &'a Expr) {
        match expr {
            Expr::Name(n) if n.ctx != ExprContext::Load => self.poison(&n.id),
            Expr::Lambda(_) => {
                self.depth += 1;
                visitor::walk_expr(self, expr);
                self.depth -= 1;
            }
            _ => visitor::walk_expr(self, expr),
        }
    }

    fn visit_parameter(&mut self, parameter: &'a ast::Parameter) {
        self.poison(&parameter.name);
        visitor::walk_parameter(self, parameter);
    }

    fn visit_alias(&mut self, alias: &'a ast::Alias) {
        match &alias.asname {
            Some(local) => self.poison(local),
            None => self.poison(alias.name.split('.').next().unwrap_or("")),
        }
    }

    fn visit_except_handler(&mut self, handler: &'a ast::ExceptHandler) {
        let ast::ExceptHandler::ExceptHandler(h) = handler;
        if let Some(name) = &h.name {
            self.poison(name);
        }
        visitor::walk_except_handler(self, handler);
    }

    fn visit_pattern(&mut self, pattern: &'a ast::Pattern) {
        let bound = match pattern {
            ast::Pattern::MatchAs(p) => p.name.as_ref(),
            ast::Pattern::MatchStar(p) => p.name.as_ref(),
            ast::Pattern::MatchMapping(p) => p.rest.as_ref(),
            _ => None,
        };
        if let Some(name) = bound {
            self.poison(name);
        }
        visitor::walk_pattern(self, pattern);
    }

    fn visit_type_param(&mut self, param: &'a ast::TypeParam) {
        let name = match param {
            ast::TypeParam::TypeVar(t) => &t.name,
            ast::TypeParam::TypeVarTuple(t) => &t.name,
            ast::TypeParam::ParamSpec(p) => &p.name,
        };
        self.poison(name);
        visitor::walk_type_param(self, param);
    }
}
