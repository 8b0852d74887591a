//! Attribute chains: attributes of modules (and the sinks among them), dunder and internal
//! attributes of objects.

use std::borrow::Cow;
use std::rc::Rc;

use ruff_python_ast::{self as ast, Expr, ExprContext};

use super::super::resolve::{MAP, Step};

use super::imports::Binding;
use super::{Checker, ModuleClass, RuleId, Use, end, is_private, norm, qualified, rules, start};

impl<'a> Checker<'a> {
    pub(super) fn attribute(&mut self, x: &'a ast::ExprAttribute, usage: Use) {
        let name = norm(&x.attr);
        let (attr_start, attr_end) = (start(x.attr.range), end(x.attr.range));
        if let Some(module) = self.module_of(&x.value) {
            // The chain names a module: decided here as a whole, not walked.
            self.inventory.chain(&x.value);
            self.module_attribute(&module, &name, x, usage);
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
        if let Some(message) = self.attr_refusal(&name) {
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
            self.format_method(x, &name);
        }
    }

    fn module_attribute(&mut self, module: &str, name: &str, x: &ast::ExprAttribute, usage: Use) {
        let (attr_start, attr_end) = (start(x.attr.range), end(x.attr.range));
        let qualified = qualified(module, name);
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
        if refusal.is_none()
            && usage != Use::Receiver
            && let Step::Module(held) = MAP.module_attribute(module, name)
        {
            // A module held by an allowed module is as much a module as one imported by
            // name: bound or passed as a value, its attributes escape the checks of
            // chains (`m = re.enum; m.sys.modules`).
            self.push(
                RuleId::ModuleValue,
                attr_start,
                attr_end,
                format!("`{qualified}` is the module `{held}`, used as a value"),
                "use the module only through its attributes: re.enum.Enum, not m = re.enum",
            );
            return;
        }
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

    /// Why reading (or binding, as a keyword or pattern attribute) `name` is refused.
    pub(super) fn attr_refusal(&self, name: &str) -> Option<&'static str> {
        if rules::is_dunder(name) {
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

    /// A name that is not a dunder but leads to internals, or that the policy forbids.
    pub(super) fn is_internal(&self, name: &str) -> bool {
        rules::is_blocked_attr(name) || self.config.forbid_attributes.contains(name)
    }

    /// The module an expression denotes, if it is a module name or an allowed sub-module.
    pub(super) fn module_of(&self, e: &Expr) -> Option<Rc<str>> {
        match e {
            Expr::Name(n) => self.imported.module(&norm(&n.id)).cloned(),
            Expr::Attribute(a) => {
                let base = self.module_of(&a.value)?;
                let attr = norm(&a.attr);
                let qualified = qualified(&base, &attr);
                if self.is_known_module(&qualified) {
                    return Some(qualified.into());
                }
                // A module another module holds (`re.enum`) is that module, so every rule
                // on modules applies to it; a module that is not allowed is refused by
                // `module_attribute` and not followed.
                match MAP.module_attribute(&base, &attr) {
                    Step::Module(m) if self.rules.classify(m) != ModuleClass::Forbidden => {
                        Some(m.into())
                    }
                    Step::Module(_) | Step::Ordinary | Step::Object(_) | Step::Refused(_) => None,
                }
            }
            _ => None,
        }
    }

    /// What the attribute map says of `module.name` when it is refused: a module that is
    /// not allowed (also one this policy narrows away), or a callable with escape power.
    pub(super) fn resolved_refusal(&self, module: &str, name: &str) -> Option<String> {
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
    fn chain_of<'e>(&self, e: &'e Expr, attrs: &mut Vec<Cow<'e, str>>) -> Option<Rc<str>> {
        match e {
            Expr::Name(n) => {
                let name = norm(&n.id);
                match self.imported.get(&name)? {
                    Binding::Module(module) => Some(module.clone()),
                    Binding::Object(qualified) => {
                        let (module, object) = qualified.rsplit_once('.')?;
                        attrs.push(Cow::Owned(object.to_owned()));
                        Some(module.into())
                    }
                }
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
    pub(super) fn qualify(&self, e: &Expr) -> Option<Rc<str>> {
        match e {
            Expr::Name(n) => {
                let name = norm(&n.id);
                self.imported
                    .get(&name)
                    .map(|binding| binding.name().clone())
            }
            Expr::Attribute(a) => {
                let base = self.module_of(&a.value)?;
                Some(qualified(&base, &norm(&a.attr)).into())
            }
            _ => None,
        }
    }
}
