//! Strings: literals that spell internal names, and `str.format` templates.

use ruff_python_ast as ast;
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
        let parts: Vec<&str> = s.split('.').collect();
        if !parts.iter().all(|p| is_identifier(p)) {
            return;
        }
        for part in parts {
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
            None => self.push(
                RuleId::FormatEscape,
                start(x.attr.range),
                end(x.attr.range),
                format!("`.{name}` on a format string that is not a literal; its fields could walk attributes"),
                FORMAT_HINT,
            ),
        }
    }
}
