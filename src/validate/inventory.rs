//! What a strategy's syntax tree names, as the host's parser saw it.
//!
//! The validator checks the tree its own parser built; the interpreter runs the tree
//! CPython builds. Whenever the two parsers disagree about what a source means, the
//! validator would have checked one program while another runs. To close that gap by
//! construction, the host sends this inventory with every job, and the runner (on both
//! backends) compiles the strategy with CPython's own `ast` and refuses to run it
//! (`parser-mismatch`) when CPython's tree holds an import, a name, an attribute or a call
//! target that is not in here.
//!
//! Both sides compute the four sets by the same definition (`wasm/runner.py`,
//! `inventory()`, is the CPython side):
//!
//! * `imports`: every `import a.b` (`"a.b"`) and every `from m import n` (`"m"`; a
//!   relative import keeps its leading dots, `".m"`, `".."`);
//! * `names`: the identifier of every name expression (`ast.Name`), whatever its context;
//! * `attributes`: the attribute of every attribute expression (`ast.Attribute.attr`);
//! * `calls`: for every call whose callee is a name or a chain of attributes on a name,
//!   the dotted callee (`"print"`, `"np.random.default_rng"`).
//!
//! Identifiers are compared after NFKC normalisation, as CPython stores them.

use std::collections::BTreeSet;

/// The names a strategy's syntax tree holds; see the module docs for the definition.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    /// Imported modules.
    pub imports: BTreeSet<String>,
    /// Identifiers of name expressions.
    pub names: BTreeSet<String>,
    /// Attribute names of attribute expressions.
    pub attributes: BTreeSet<String>,
    /// Dotted callees of calls on names and attribute chains.
    pub calls: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::{ImportRules, ValidatorConfig, validate};
    use super::Inventory;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn inventory_of_a_small_program_is_exactly_the_definition() {
        let source = "import a.b as c\nfrom .m import n\nfrom .. import p\nfrom x import y\n\
                      ｐrint(c.d.e(1), k.z)\nf()()\nv = w[0].u(q=r)\ndef g(arg): return arg\n";
        let report = validate(source, &ImportRules::default(), &ValidatorConfig::default());
        assert_eq!(
            report.inventory,
            Inventory {
                imports: set(&["a.b", ".m", "..", "x"]),
                names: set(&["print", "c", "k", "f", "v", "w", "r", "arg"]),
                attributes: set(&["d", "e", "z", "u"]),
                calls: set(&["print", "c.d.e", "f"]),
            }
        );
    }
}
