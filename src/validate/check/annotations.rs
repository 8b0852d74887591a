//! Annotations, type parameters, class keywords, `__match_args__` and class patterns.

use ruff_python_ast::visitor::Visitor;
use ruff_python_ast::{self as ast, Expr, Operator, Pattern};
use ruff_text_size::{Ranged, TextRange};

use super::parse::{self, ParseFail};
use super::{Checker, RuleId, as_str, is_dotted_name, norm, rules};

impl<'a> Checker<'a> {
    /// An annotation is code like any other; in addition its string parts are evaluated by
    /// `typing.get_type_hints` (and so by `functools.singledispatch`), so each must be a
    /// plain type expression.
    pub(super) fn annotation(&mut self, e: &'a Expr) {
        self.visit_expr(e);
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

    /// Bounds and defaults of type parameters are evaluated like annotations.
    pub(super) fn type_param(&mut self, param: &'a ast::TypeParam) {
        let (bound, default) = match param {
            ast::TypeParam::TypeVar(t) => (t.bound.as_deref(), t.default.as_deref()),
            ast::TypeParam::TypeVarTuple(t) => (None, t.default.as_deref()),
            ast::TypeParam::ParamSpec(p) => (None, p.default.as_deref()),
        };
        for e in bound.into_iter().chain(default) {
            self.annotation(e);
        }
    }

    /// A `metaclass=` must be a plain (dotted) name.
    pub(super) fn class_keyword(&mut self, keyword: &ast::Keyword) {
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

    /// `__match_args__ = (...)` must be a tuple (or list) of string literals: positional
    /// class patterns read the attributes it names.
    pub(super) fn match_args(&mut self, target: &Expr, value: &Expr) {
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

    /// The names a pattern binds (its sub-patterns are walked by the visitor).
    pub(super) fn pattern(&mut self, p: &Pattern) {
        match p {
            Pattern::MatchMapping(m) => {
                if let Some(rest) = &m.rest {
                    self.binding(rest, m.range);
                }
            }
            Pattern::MatchStar(s) => {
                if let Some(name) = &s.name {
                    self.binding(name, s.range);
                }
            }
            Pattern::MatchAs(a) => {
                if let Some(name) = &a.name {
                    self.binding(name, a.range);
                }
            }
            Pattern::MatchValue(_)
            | Pattern::MatchSingleton(_)
            | Pattern::MatchSequence(_)
            | Pattern::MatchClass(_)
            | Pattern::MatchOr(_) => {}
        }
    }

    /// `case C(attr=...)` reads `attr` from the subject.
    pub(super) fn pattern_keyword(&mut self, keyword: &ast::PatternKeyword) {
        let name = norm(&keyword.attr);
        if let Some(message) = self.attr_refusal(&name) {
            self.push_range(
                RuleId::DunderAccess,
                keyword.attr.range,
                format!("class pattern reads `{name}`: {message}"),
                "match on public attributes of your own classes",
            );
        }
    }
}

/// Every string literal inside an annotation expression.
fn collect_strings<'e>(e: &'e Expr, out: &mut Vec<(&'e str, TextRange)>) {
    match e {
        Expr::StringLiteral(s) => out.push((s.value.to_str(), s.range)),
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
            c.arguments
                .args
                .iter()
                .for_each(|e| collect_strings(e, out));
            c.arguments
                .keywords
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
    match parse::expression(s.trim()) {
        Ok(e) => is_type_expr(&e.body, depth),
        // Text that does not parse cannot be evaluated either.
        Err(ParseFail::Syntax { .. }) => true,
        Err(ParseFail::Nesting { .. }) => false,
    }
}

fn is_type_expr(e: &Expr, depth: usize) -> bool {
    match e {
        Expr::Name(_)
        | Expr::NumberLiteral(_)
        | Expr::BytesLiteral(_)
        | Expr::BooleanLiteral(_)
        | Expr::NoneLiteral(_)
        | Expr::EllipsisLiteral(_) => true,
        Expr::Attribute(a) => {
            let name = norm(&a.attr);
            !rules::is_dunder(&name)
                && !rules::is_blocked_attr(&name)
                && is_type_expr(&a.value, depth)
        }
        Expr::Subscript(s) => is_type_expr(&s.value, depth) && is_type_expr(&s.slice, depth),
        Expr::Tuple(t) => t.elts.iter().all(|e| is_type_expr(e, depth)),
        Expr::List(l) => l.elts.iter().all(|e| is_type_expr(e, depth)),
        Expr::StringLiteral(s) => is_type_string(s.value.to_str(), depth + 1),
        Expr::BinOp(b) => {
            b.op == Operator::BitOr && is_type_expr(&b.left, depth) && is_type_expr(&b.right, depth)
        }
        Expr::UnaryOp(u) => u.operand.is_literal_expr(),
        Expr::Starred(s) => is_type_expr(&s.value, depth),
        _ => false,
    }
}
