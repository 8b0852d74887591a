//! The standard-library modules the wasm guest carries, read from `wasm/modules.txt`: the
//! same file the guest build imports at pre-initialisation, so the allowlist and the
//! snapshot cannot drift apart.

use std::sync::LazyLock;

/// One line of `wasm/modules.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestModule {
    /// The module's dotted name.
    pub name: &'static str,
    /// Why a strategy may have it (or why the guest needs it).
    pub reason: &'static str,
    /// `false` for modules the guest needs internally but a strategy may not import.
    pub importable: bool,
}

/// The text of `wasm/modules.txt`, compiled in.
pub const MODULES_TXT: &str = include_str!("../../wasm/modules.txt");

/// Every module the guest carries, in file order.
pub static GUEST_MODULES: LazyLock<Vec<GuestModule>> = LazyLock::new(|| parse(MODULES_TXT));

fn parse(text: &'static str) -> Vec<GuestModule> {
    text.lines()
        .filter_map(|line| {
            let (entry, reason) = line.split_once('#').unwrap_or((line, ""));
            let entry = entry.trim();
            if entry.is_empty() {
                return None;
            }
            let (name, importable) = match entry.strip_prefix('-') {
                Some(name) => (name, false),
                None => (entry, true),
            };
            Some(GuestModule {
                name,
                reason: reason.trim(),
                importable,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_has_a_reason() {
        for module in GUEST_MODULES.iter() {
            assert!(!module.reason.is_empty(), "{} has no reason", module.name);
        }
    }

    #[test]
    fn carries_the_required_modules() {
        for name in [
            "math",
            "cmath",
            "statistics",
            "json",
            "csv",
            "re",
            "datetime",
            "time",
            "calendar",
            "decimal",
            "fractions",
            "random",
            "collections",
            "itertools",
            "functools",
            "operator",
            "heapq",
            "bisect",
            "array",
            "copy",
            "dataclasses",
            "enum",
            "typing",
            "abc",
            "numbers",
            "string",
            "textwrap",
            "io",
        ] {
            assert!(
                GUEST_MODULES.iter().any(|m| m.name == name && m.importable),
                "{name} missing"
            );
        }
    }
}
