//! Calls: the builtins checked at each call (`open`, `getattr` and friends, `type`), the
//! module sinks (`operator.attrgetter`, `namedtuple`, ...), and decorators.

use ruff_python_ast::visitor::Visitor;
use ruff_python_ast::{self as ast, Expr, Operator};
use ruff_text_size::{Ranged, TextRange};

use super::{
    Checker, FORMAT_HINT, GETATTR_HINT, OPEN_HINT, RuleId, Use, VARS_HINT, as_str, end, norm,
    rules, start,
};
use rules::Sink;

impl<'a> Checker<'a> {
    pub(super) fn call(&mut self, call: &'a ast::ExprCall) {
        let arguments = &call.arguments;
        let unpacked = arguments.args.iter().any(Expr::is_starred_expr)
            || arguments.keywords.iter().any(|k| k.arg.is_none());
        if let Some(qualified) = self.qualify(&call.func) {
            match rules::sink(&qualified) {
                Some(Sink::Open) => self.check_open(call, unpacked),
                Some(Sink::AttrGetter) => {
                    let literal = !unpacked
                        && arguments.keywords.is_empty()
                        && !arguments.args.is_empty()
                        && arguments.args.iter().all(|a| as_str(a).is_some());
                    if !literal {
                        self.push_range(
                            RuleId::ForbiddenCall,
                            call.range(),
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
                    self.check_named_method(call, unpacked, "getattr");
                }
                "vars" => self.check_vars(call, unpacked),
                "type"
                    if unpacked || arguments.args.len() > 1 || !arguments.keywords.is_empty() =>
                {
                    self.push_range(
                        RuleId::ForbiddenCall,
                        call.range(),
                        "`type` with more than one argument builds classes at run time".to_owned(),
                        "write a class statement",
                    );
                }
                _ => {}
            }
        }
        self.expr_as(&call.func, Use::Callee);
        self.visit_arguments(&call.arguments);
    }

    /// getattr-like calls (name in the 2nd argument) and methodcaller (name in the 1st).
    ///
    /// A computed name is allowed on an object that is not a module when it starts with a
    /// literal prefix that no dunder, internal attribute or format method begins with
    /// (`getattr(self, f"_get_{name}")`, `"on_" + event`): whatever follows, the name
    /// cannot reach what the literal rules keep out.
    fn check_named_method(&mut self, call: &ast::ExprCall, unpacked: bool, kind: &str) {
        let index = usize::from(kind == "getattr");
        let args = &call.arguments.args;
        let name = args.get(index);
        if unpacked {
            return self.push_named_refusal(call.range(), kind);
        }
        match name.and_then(as_str) {
            Some(name) => {
                if name == "format" || name == "format_map" {
                    self.push_range(
                        RuleId::FormatEscape,
                        call.range(),
                        format!(
                            "`{name}` fetched by name; its format fields could walk attributes"
                        ),
                        FORMAT_HINT,
                    );
                }
            }
            None => {
                let prefix = name.and_then(leading_literal);
                let on_module =
                    kind == "getattr" && args.first().is_some_and(|o| self.module_of(o).is_some());
                let safe = prefix.is_some_and(|p| self.is_safe_prefix(&p));
                if !safe || on_module {
                    self.push_named_refusal(call.range(), kind);
                }
            }
        }
    }

    /// `vars(obj)`: the instance dict of an object, which holds what reading its attributes
    /// reaches anyway. Refused here: no argument (`vars()` is `locals()`), unpacked or
    /// extra arguments, and an argument the validator can tell is a class or a module: the
    /// namespace of a module holds `__builtins__` and its private imports, and the raw dict
    /// of a class hands out descriptors of the interpreter's internals without naming them
    /// (`vars(type)`). Classes flow anywhere as values (`type(x)`), so the runner's `vars`
    /// refuses every class and module at run time too.
    fn check_vars(&mut self, call: &ast::ExprCall, unpacked: bool) {
        let arguments = &call.arguments;
        let message = match &*arguments.args {
            [arg] if !unpacked && arguments.keywords.is_empty() => {
                self.class_or_module(arg).map(|what| {
                    format!("`vars` of {what}: its namespace reaches the interpreter's internals")
                })
            }
            _ => Some("`vars` without exactly one argument (`vars()` is `locals()`)".to_owned()),
        };
        if let Some(message) = message {
            self.push_range(RuleId::ForbiddenCall, call.range(), message, VARS_HINT);
        }
    }

    /// What `e` is when the validator can tell it is a class or a module.
    fn class_or_module(&self, e: &Expr) -> Option<String> {
        if let Some(module) = self.module_of(e) {
            return Some(format!("the module `{module}`"));
        }
        if let Some(qualified) = self.qualify(e) {
            return Some(format!(
                "`{qualified}`, an object of a module (a class or a module it holds)"
            ));
        }
        match e {
            Expr::Call(c) if matches!(&*c.func, Expr::Name(n) if norm(&n.id) == "type") => {
                Some("a class (`type(...)`)".to_owned())
            }
            Expr::Name(n) => {
                let name = norm(&n.id);
                if self.classes.contains(&*name) {
                    Some(format!("the class `{name}` of this file"))
                } else if rules::is_builtin_class(&name) {
                    Some(format!("the builtin class `{name}`"))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn push_named_refusal(&mut self, range: TextRange, kind: &str) {
        self.push_range(
            RuleId::ForbiddenCall,
            range,
            format!("`{kind}` with an attribute name that is not a string literal or a name with a safe literal prefix"),
            GETATTR_HINT,
        );
    }

    /// A literal prefix that no refused attribute name begins with.
    fn is_safe_prefix(&self, prefix: &str) -> bool {
        let prefix = norm(prefix);
        if prefix.is_empty() || prefix.starts_with("__") || "__".starts_with(&*prefix) {
            return false;
        }
        let begins = |name: &str| name.starts_with(&*prefix);
        !rules::BLOCKED_ATTRS.iter().any(|(name, _)| begins(name))
            && !self
                .config
                .forbid_attributes
                .iter()
                .any(|name| begins(name))
            && !["format", "format_map"].into_iter().any(begins)
    }

    fn check_field_names(&mut self, call: &ast::ExprCall, unpacked: bool, qualified: &str) {
        let keyword = if qualified.ends_with("namedtuple") {
            "field_names"
        } else {
            "fields"
        };
        let fields = call.arguments.args.get(1).or_else(|| {
            call.arguments
                .keywords
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
                call.range(),
                format!("`{qualified}` with field names that are not literals; field names become attributes read by class patterns"),
                "write the field names as string literals, or use a class statement",
            );
        }
    }

    /// `open` and `io.open` take any path and mode: the backends confine files (the guest
    /// sees `/data` read-only and its own `/tmp`, the container a read-only root and a
    /// capped `/tmp`). An `opener=` is refused: it hands each open's flags to strategy code
    /// that picks the file descriptor behind the file object, out of the validator's sight;
    /// unpacked arguments are refused because they could carry one.
    fn check_open(&mut self, call: &ast::ExprCall, unpacked: bool) {
        let refusal = if unpacked {
            Some("open() with unpacked arguments, which could carry an opener")
        } else if call.arguments.args.len() > 7
            || call
                .arguments
                .keywords
                .iter()
                .any(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "opener"))
        {
            Some("open() with an opener")
        } else {
            None
        };
        if let Some(message) = refusal {
            self.push_range(
                RuleId::ForbiddenCall,
                call.range(),
                message.to_owned(),
                OPEN_HINT,
            );
        }
    }

    /// A reference to an imported object or module attribute that needs a decision.
    pub(super) fn sink_at(&mut self, qualified: &str, from: usize, to: usize, usage: Use) {
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
                format!("`{qualified}` opens files by descriptor or for code, outside open()"),
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

    pub(super) fn sink_reference(&mut self, qualified: &str, range: TextRange, usage: Use) {
        self.sink_at(qualified, start(range), end(range), usage);
    }

    /// A function decorator. `@f.register` without a type reads the type from the
    /// annotations, which typing evaluates: allowed on the `singledispatch` functions of
    /// this file, whose annotations are checked as code (and string annotations as plain
    /// type expressions) like everything else. `@m.register` on a module is the module's
    /// own function (`@atexit.register`), judged by the module-attribute rules.
    pub(super) fn decorator(&mut self, d: &'a ast::Decorator) {
        if let Expr::Attribute(a) = &d.expression
            && norm(&a.attr) == "register"
            && !self.is_dispatcher(&a.value)
            && self.module_of(&a.value).is_none()
        {
            self.push_range(
                RuleId::ForbiddenCall,
                d.expression.range(),
                "`@x.register` without a type on something that is not a `functools.singledispatch` function of this file; registration reads the type from annotations, which typing evaluates as code".to_owned(),
                "name the type: @dispatcher.register(float), or decorate the dispatcher with @functools.singledispatch",
            );
        }
        self.visit_expr(&d.expression);
    }
}

/// The literal text a computed name starts with: the first literal parts of an f-string,
/// or the leftmost operand of a `+` chain.
fn leading_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::StringLiteral(s) => Some(s.value.to_str().to_owned()),
        Expr::FString(f) => {
            let mut prefix = String::new();
            for part in &f.value {
                match part {
                    ast::FStringPart::Literal(literal) => prefix.push_str(&literal.value),
                    ast::FStringPart::FString(fstring) => {
                        for element in &fstring.elements {
                            match element {
                                ast::InterpolatedStringElement::Literal(literal) => {
                                    prefix.push_str(&literal.value);
                                }
                                ast::InterpolatedStringElement::Interpolation(_) => {
                                    return Some(prefix);
                                }
                            }
                        }
                    }
                }
            }
            Some(prefix)
        }
        Expr::BinOp(b) if b.op == Operator::Add => leading_literal(&b.left),
        _ => None,
    }
}
