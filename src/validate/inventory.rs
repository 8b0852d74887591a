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
