//! The standard-library policy, read from `wasm/modules.txt`: the same file the guest build
//! imports at pre-initialisation, so the allowlist and the snapshot cannot drift apart. Each
//! entry is allowed (a strategy may import it), internal (the guest carries it, a strategy
//! may not import it) or refused (not carried), with its reason.

use std::sync::LazyLock;

/// One line of `wasm/modules.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestModule {
    /// The module's dotted name.
    pub name: &'static str,
    /// Why a strategy may have it (or why the guest needs it).
    pub reason: &'static str,
    /// `false` for modules the guest needs internally but a strategy may not import, and
    /// for refused modules.
    pub importable: bool,
    /// `false` for refused modules (`!name`): the guest does not carry them.
    pub carried: bool,
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
            let (name, importable, carried) = if let Some(name) = entry.strip_prefix('-') {
                (name, false, true)
            } else if let Some(name) = entry.strip_prefix('!') {
                (name, false, false)
            } else {
                (entry, true, true)
            };
            Some(GuestModule {
                name,
                reason: reason.trim(),
                importable,
                carried,
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
    fn every_module_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for module in GUEST_MODULES.iter() {
            assert!(seen.insert(module.name), "{} is listed twice", module.name);
        }
    }

    #[test]
    fn escape_modules_are_refused() {
        for name in [
            "os",
            "subprocess",
            "socket",
            "ctypes",
            "importlib",
            "inspect",
            "gc",
            "pickle",
            "marshal",
            "code",
            "codeop",
            "multiprocessing",
            "threading",
            "signal",
            "shutil",
            "pdb",
            "unittest",
            "logging.config",
        ] {
            let module = GUEST_MODULES.iter().find(|m| m.name == name);
            assert!(
                module.is_some_and(|m| !m.importable),
                "{name} must be listed as refused or internal, with its reason"
            );
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
            "logging",
            "warnings",
            "contextlib",
            "base64",
            "binascii",
            "hashlib",
            "hmac",
            "pprint",
            "reprlib",
            "difflib",
            "atexit",
            "types",
            "weakref",
            "argparse",
            "uuid",
            "tempfile",
            "pathlib",
            "zoneinfo",
            "graphlib",
            "secrets",
        ] {
            assert!(
                GUEST_MODULES.iter().any(|m| m.name == name && m.importable),
                "{name} missing"
            );
        }
    }
}
