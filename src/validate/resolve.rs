//! What an attribute chain rooted at a module refers to, from the attribute map generated
//! by the interpreters themselves.
//!
//! `wasm/exports.py`, run by the wasm guest's CPython (`data/exports-wasm.tsv`) and by a
//! CPython with numpy and pandas (`data/exports-native.tsv`), walks every allowed module's
//! object graph (modules, classes and the instances they hold, at any depth) and records
//! every edge on a path that reaches something with escape power: a module that is not
//! allowed (`re.enum.sys`, `tempfile._os`), a forbidden builtin under another name, or a
//! callable of a refused module. An attribute that is not on such a path leads only to
//! ordinary functions and data (`numpy.select`, `logging.getLogger`).
//!
//! The files also carry each interpreter's `sys.stdlib_module_names`, which is how the
//! validator knows the standard library (no hand copy). `tests/it/generated.rs` checks
//! that the wasm file is what the current guest generates (`STRATBOX_BLESS=1` rewrites it).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::LazyLock;

use super::hash::FxBuild;

/// The map's tables are keyed by its own names, which no strategy chooses.
type Table<V> = HashMap<&'static str, V, FxBuild>;

/// The generated map of the wasm guest's CPython (standard library).
const WASM_MAP: &str = include_str!("data/exports-wasm.tsv");
/// The generated map of numpy and pandas (and the standard library of that interpreter).
const NATIVE_MAP: &str = include_str!("data/exports-native.tsv");

/// What one step of a chain reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'m> {
    /// Ordinary functions and data, or an object the map does not need to follow.
    Ordinary,
    /// An allowed module (`re.enum` is the module `enum`).
    Module(&'m str),
    /// An object (a class, an instance) through which something refused is reachable.
    Object(&'m str),
    /// Something with escape power; the text says what (e.g. "the module `os`, which is
    /// not allowed").
    Refused(&'m str),
}

/// The parsed map: node → attribute → node, and the refused nodes.
#[derive(Debug, Default)]
pub struct Map {
    edges: Table<Table<&'static str>>,
    /// Module name → its node (`re` → `m:re`), so that lookups by module allocate nothing.
    module_nodes: Table<&'static str>,
    refused: Table<&'static str>,
    roots: BTreeSet<&'static str>,
    /// The module names of `roots`, for lookups.
    covered: HashSet<&'static str, FxBuild>,
    stdlib: HashSet<&'static str, FxBuild>,
    /// `(module, name)` of every public function and class of an allowed module that
    /// reaches nothing refused: what the tests walk to show ordinary code is accepted.
    pub public: Vec<(&'static str, &'static str)>,
    /// `(source, CPython version)` of each file.
    pub interpreters: Vec<(&'static str, &'static str)>,
}

/// The map from both generated files.
pub static MAP: LazyLock<Map> = LazyLock::new(|| {
    let mut map = Map::default();
    map.load("wasm guest", WASM_MAP);
    map.load("native packages", NATIVE_MAP);
    map
});

impl Map {
    fn load(&mut self, source: &'static str, text: &'static str) {
        for line in text.lines() {
            let mut fields = line.split('\t');
            match (fields.next(), fields.next(), fields.next(), fields.next()) {
                (Some("python"), Some(version), None, None) => {
                    self.interpreters.push((source, version));
                }
                (Some("stdlib"), Some(name), None, None) => {
                    self.stdlib.insert(name);
                }
                (Some("root"), Some(node), None, None) => {
                    self.roots.insert(node);
                    self.covered.extend(node.strip_prefix("m:"));
                    self.module_node(node);
                }
                (Some("edge"), Some(from), Some(attr), Some(to)) => {
                    self.edges.entry(from).or_default().insert(attr, to);
                    self.module_node(from);
                    self.module_node(to);
                }
                (Some("bad"), Some(node), Some(what), None) => {
                    self.refused.insert(node, what);
                }
                (Some("public"), Some(module), Some(name), None) => {
                    self.public.push((module, name));
                }
                // A malformed line is a generator bug; the freshness test shows it.
                _ => {}
            }
        }
    }

    fn module_node(&mut self, node: &'static str) {
        if let Some(module) = node.strip_prefix("m:") {
            self.module_nodes.insert(module, node);
        }
    }

    /// Whether the map was generated with `module` as an allowed root.
    pub fn covers(&self, module: &str) -> bool {
        self.covered.contains(module)
    }

    /// Top-level standard-library module names of every generating interpreter.
    pub fn is_stdlib_module(&self, name: &str) -> bool {
        self.stdlib.contains(name)
    }

    /// What `attr` of the node reaches.
    fn step(&self, node: &str, attr: &str) -> Step<'static> {
        let Some(target) = self.edges.get(node).and_then(|e| e.get(attr)) else {
            return Step::Ordinary;
        };
        if let Some(what) = self.refused.get(target) {
            Step::Refused(what)
        } else if let Some(module) = target.strip_prefix("m:") {
            Step::Module(module)
        } else {
            Step::Object(target)
        }
    }

    /// What `module.attr` is.
    pub fn module_attribute(&self, module: &str, attr: &str) -> Step<'static> {
        match self.module_nodes.get(module) {
            Some(node) => self.step(node, attr),
            None => Step::Ordinary,
        }
    }

    /// Walks `module.a.b.c`. Returns the index into `attrs` of the first step that is
    /// refused, with what it reaches, or `None` when the chain stays harmless.
    pub fn chain(&self, module: &str, attrs: &[&str]) -> Option<(usize, &'static str)> {
        let mut node: &'static str = self.module_nodes.get(module)?;
        for (i, attr) in attrs.iter().enumerate() {
            match self.step(node, attr) {
                Step::Ordinary => return None,
                Step::Refused(what) => return Some((i, what)),
                Step::Module(m) => node = self.module_nodes.get(m)?,
                Step::Object(o) => node = o,
            }
        }
        None
    }

    /// Every `(chain, what)` of the map: each path from an allowed module to a refused
    /// object, shortest first, each refused node reported once per root.
    pub fn refused_chains(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for root in &self.roots {
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            let mut queue = std::collections::VecDeque::from([(*root, root[2..].to_owned())]);
            seen.insert(root);
            while let Some((node, path)) = queue.pop_front() {
                let Some(edges) = self.edges.get(node) else {
                    continue;
                };
                for (attr, target) in edges {
                    if !seen.insert(target) {
                        continue;
                    }
                    let chain = format!("{path}.{attr}");
                    match self.refused.get(target) {
                        Some(what) => out.push((chain, *what)),
                        None => queue.push_back((target, chain)),
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_interpreters_are_loaded() {
        assert_eq!(MAP.interpreters.len(), 2, "{:?}", MAP.interpreters);
        for (_, version) in &MAP.interpreters {
            assert!(version.starts_with("3."), "{version}");
        }
        assert!(MAP.is_stdlib_module("os"));
        assert!(MAP.is_stdlib_module("tomllib"));
        assert!(!MAP.is_stdlib_module("numpy"));
    }

    #[test]
    fn escape_chains_are_refused() {
        for chain in [
            "re.enum.sys",
            "re.enum.sys.modules",
            "tempfile._os",
            "logging.sys",
            "typing.sys",
            "logging.os",
            "tempfile._os.system",
            "statistics.random._os",
        ] {
            let mut parts = chain.split('.');
            let root = parts.next().expect("a root");
            let attrs: Vec<&str> = parts.collect();
            assert!(MAP.chain(root, &attrs).is_some(), "{chain} is not refused");
        }
    }

    #[test]
    fn ordinary_chains_are_accepted() {
        for chain in [
            "logging.getLogger",
            "logging.warning",
            "logging.INFO",
            "contextlib.suppress",
            "re.compile",
            "re.enum.Enum",
            "json.loads",
            "numpy.select",
            "numpy.random.default_rng",
            "numpy.linalg.inv",
            "pandas.DataFrame",
            "pandas.Series.rolling",
        ] {
            let mut parts = chain.split('.');
            let root = parts.next().expect("a root");
            let attrs: Vec<&str> = parts.collect();
            assert_eq!(MAP.chain(root, &attrs), None, "{chain} is refused");
        }
    }
}
