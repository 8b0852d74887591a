//! The AST validator and the router: attack and honest fixtures, rule-by-rule cases, NFKC,
//! configuration, routing, and snapshots of the diagnostics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use stratbox::route::{BackendKind, route};
use stratbox::validate::{
    ImportRules, Report, RuleId, ValidatorConfig, Violation, inventory_of, render_human, validate,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The wasm allowlist is read from `wasm/modules.txt`, the list the guest build imports
/// (`-name` lines are guest-internal and not importable); the native list is the one the
/// numeric profile allows.
fn rules() -> ImportRules {
    let wasm: BTreeSet<String> = stratbox::policy::GUEST_MODULES
        .iter()
        .filter(|m| m.importable)
        .map(|m| m.name.to_owned())
        .collect();
    for required in [
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
        "collections.abc",
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
        assert!(wasm.contains(required), "wasm/modules.txt lacks {required}");
    }
    ImportRules {
        wasm,
        native: ["numpy", "pandas", "scipy"]
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

fn check(source: &str) -> Report {
    validate(source, &rules(), &ValidatorConfig::default())
}

fn rule_ids(report: &Report) -> Vec<&'static str> {
    report.violations.iter().map(|v| v.rule.as_str()).collect()
}

/// `source` yields exactly one violation, of `rule`, at `line:col`.
#[track_caller]
fn assert_one(source: &str, rule: &str, line: u32, col: u32) {
    let report = check(source);
    let found: Vec<(&str, u32, u32)> = report
        .violations
        .iter()
        .map(|v| (v.rule.as_str(), v.line, v.col))
        .collect();
    assert_eq!(found, vec![(rule, line, col)], "source:\n{source}");
}

#[track_caller]
fn assert_clean(source: &str) {
    let report = check(source);
    assert!(
        report.violations.is_empty(),
        "expected no violations for:\n{source}\ngot: {:#?}",
        report.violations
    );
}

fn python_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(FIXTURES).join(dir))
        .expect("fixture directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    files.sort();
    files
}

/// The `# expect: <rule> <line>:<col>` headers of an attack fixture.
fn expectations(source: &str) -> Vec<(String, u32, u32)> {
    source
        .lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|rest| {
            let (rule, position) = rest.trim().split_once(' ').expect("`rule line:col`");
            let (line, col) = position.split_once(':').expect("`line:col`");
            (
                rule.to_owned(),
                line.parse().expect("line number"),
                col.parse().expect("column number"),
            )
        })
        .collect()
}

// ----- fixtures ------------------------------------------------------------------------

#[test]
fn every_attack_is_refused_where_expected() {
    let files = python_files("attacks");
    assert!(files.len() >= 45, "only {} attack fixtures", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).expect("fixture is UTF-8");
        let expected = expectations(&source);
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` header",
            path.display()
        );
        let report = check(&source);
        if report.violations.is_empty() {
            failures.push(format!("{}: no violation at all", path.display()));
        }
        for (rule, line, col) in expected {
            let hit = report
                .violations
                .iter()
                .any(|v| v.rule.as_str() == rule && v.line == line && v.col == col);
            if !hit {
                failures.push(format!(
                    "{}: expected {rule} at {line}:{col}, got {:?}",
                    path.display(),
                    report
                        .violations
                        .iter()
                        .map(|v| format!("{} {}:{}", v.rule, v.line, v.col))
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_attack_family_is_covered() {
    let mut seen = BTreeSet::new();
    for path in python_files("attacks") {
        let source = std::fs::read_to_string(&path).expect("fixture is UTF-8");
        for (rule, _, _) in expectations(&source) {
            seen.insert(rule);
        }
    }
    for rule in RuleId::ALL {
        if matches!(
            rule,
            RuleId::BackendMismatch
                | RuleId::SourceSize
                | RuleId::Encoding
                | RuleId::ParserMismatch
        ) {
            // A router refusal (tested below), the sandbox's checks before parsing
            // (tests/it/cli.rs) and the runner's cross-check (tests/it/generated.rs).
            continue;
        }
        assert!(
            seen.contains(rule.as_str()),
            "no attack fixture expects {rule}"
        );
    }
}

/// Every chain the attribute map knows to reach a refused module or an escape callable,
/// from every allowed module (stdlib on the guest's CPython, numpy and pandas), is refused
/// when written as code; every public function and class the map calls ordinary is not
/// refused by the attribute rule.
#[test]
fn every_allowed_modules_exports_walk_through_the_resolver() {
    use stratbox::validate::resolve::MAP;
    let rules = rules();
    let chains = MAP.refused_chains();
    assert!(chains.len() >= 100, "only {} refused chains", chains.len());
    let mut walked = 0;
    for (chain, what) in &chains {
        let parts: Vec<&str> = chain.split('.').collect();
        if !parts.iter().all(|p| is_identifier(p)) {
            continue; // a dict key that is not an identifier: no attribute syntax reaches it
        }
        // The longest prefix that is an importable module is the root.
        let root = (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("."))
            .find(|m| rules.classify(m) != stratbox::validate::ModuleClass::Forbidden)
            .expect("chains start at an allowed module");
        let source = format!(
            "import {root}
_ = {chain}
"
        );
        let report = validate(&source, &rules, &ValidatorConfig::default());
        assert!(
            !report.violations.is_empty(),
            "`{chain}` ({what}) is not refused"
        );
        walked += 1;
    }
    assert!(walked >= 100, "only {walked} chains walked");
    assert!(
        MAP.public.len() >= 500,
        "only {} public names",
        MAP.public.len()
    );
    for (module, name) in &MAP.public {
        if stratbox::validate::rules::native_denied(&format!("{module}.{name}")).is_some() {
            continue; // never allowed, whatever it is (pandas.read_pickle)
        }
        if stratbox::validate::rules::module_attribute_allowed(module, name) == Some(false) {
            continue; // outside the module's attribute allowlist (doctest: testmod only)
        }
        let source = format!(
            "import {module}
_ = {module}.{name}
"
        );
        let report = validate(&source, &rules, &ValidatorConfig::default());
        let refused: Vec<&Violation> = report
            .violations
            .iter()
            .filter(|v| v.rule == RuleId::ModuleAttribute)
            .collect();
        assert!(
            refused.is_empty(),
            "`{module}.{name}` is refused: {refused:#?}"
        );
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
        && !matches!(
            s,
            "None"
                | "True"
                | "False"
                | "class"
                | "def"
                | "import"
                | "from"
                | "lambda"
                | "global"
                | "in"
                | "is"
                | "not"
                | "and"
                | "or"
                | "if"
                | "else"
                | "return"
                | "pass"
                | "with"
                | "as"
                | "yield"
                | "del"
                | "try"
                | "except"
                | "finally"
                | "raise"
                | "while"
                | "for"
                | "break"
                | "continue"
                | "assert"
                | "async"
                | "await"
                | "nonlocal"
                | "elif"
        )
}

#[test]
fn every_honest_strategy_passes_and_routes() {
    let files = python_files("honest");
    assert!(files.len() >= 28, "only {} honest fixtures", files.len());
    let rules = rules();
    let mut containers = 0;
    for path in &files {
        let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
        if crate::common::KNOWN_REFUSALS
            .iter()
            .any(|(known, _)| *known == file)
        {
            continue; // `known_refusals_are_exactly_these`
        }
        let source = std::fs::read_to_string(path).expect("fixture is UTF-8");
        let report = validate(&source, &rules, &ValidatorConfig::default());
        assert!(
            report.violations.is_empty(),
            "{} was refused:\n{}",
            path.display(),
            render_human(&report, &source, &path.display().to_string())
        );
        let routed = route(&report, &rules, None).expect("honest strategies route");
        let native = source.contains("import numpy") || source.contains("import pandas");
        let expected = if native {
            BackendKind::Container
        } else {
            BackendKind::Wasm
        };
        assert_eq!(routed.backend, expected, "{}", path.display());
        containers += usize::from(native);
    }
    assert!(containers >= 3, "want at least 3 container strategies");
}

#[test]
fn known_refusals_are_exactly_these() {
    let rules = rules();
    for (file, rule) in crate::common::KNOWN_REFUSALS {
        let path = crate::common::root()
            .join("tests/fixtures/honest")
            .join(file);
        let source = std::fs::read_to_string(&path).expect("fixture is UTF-8");
        let report = validate(&source, &rules, &ValidatorConfig::default());
        assert!(
            !report.violations.is_empty(),
            "{file} is no longer refused: drop it from KNOWN_REFUSALS"
        );
        for v in &report.violations {
            assert_eq!(v.rule.as_str(), *rule, "{file}: {}", v.message);
        }
    }
}

/// The checker records the inventory during its own walk, which decides some subtrees at
/// their root (a chain of module attributes, a module-metadata target); it must still see
/// every name, attribute, call and import that a plain walk of the tree sees.
#[test]
fn inventory_matches_a_full_walk() {
    let mut sources: Vec<(String, String)> = ["honest", "attacks"]
        .into_iter()
        .flat_map(python_files)
        .map(|path| {
            let source = std::fs::read_to_string(&path).expect("fixture is UTF-8");
            (path.display().to_string(), source)
        })
        .collect();
    sources.push((
        "inline".to_owned(),
        "import re, os.path as p\nfrom re import enum as e\n__version__ = \"1\"\n\
         __all__: list = [\"f\"]\nx = re.enum.Enum.name\ny = p.join(e.auto(), re.I)\n\
         print(re.compile(\"a\").match(x).group(0))\n"
            .to_owned(),
    ));
    assert!(sources.len() > 150, "only {} sources", sources.len());
    for (name, source) in &sources {
        let Some(full) = inventory_of(source) else {
            continue;
        };
        assert_eq!(check(source).inventory, full, "{name}");
    }
}

// ----- parsing -------------------------------------------------------------------------

#[test]
fn syntax_error_is_one_violation_with_position() {
    assert_one("x = 1\nx = = 2\n", "syntax", 2, 5);
    assert_one("def f(:\n    pass\n", "syntax", 1, 7);
    assert_one("x = (1,\n", "syntax", 2, 1);
}

#[test]
fn nul_bytes_are_refused() {
    assert_one("x = 1\0\n", "syntax", 1, 6);
}

#[test]
fn deep_nesting_is_refused_without_overflowing() {
    for source in [
        format!("x = {}a\n", "a+".repeat(100_000)),
        format!("x = {}a\n", "-".repeat(100_000)),
        format!("x = a{}\n", ".b".repeat(100_000)),
        format!("x = {}1{}\n", "(".repeat(50_000), ")".repeat(50_000)),
        format!("x = {}1{}\n", "[".repeat(50_000), "]".repeat(50_000)),
        format!("x = {}0\n", "lambda a, b: ".repeat(10_000)),
        format!("x = f\"{{{}1}}\"\n", "-".repeat(100_000)),
        format!("def f(x: \"{}int\"): pass\n", "-".repeat(100_000)),
        format!("if x:\n    pass\n{}", "elif x:\n    pass\n".repeat(50_000)),
        format!(
            "{}pass\n",
            (0..300)
                .map(|i| format!("{}if x:\n", "    ".repeat(i)))
                .collect::<String>()
        ),
    ] {
        let report = check(&source);
        assert!(
            rule_ids(&report).contains(&"nesting-limit")
                || rule_ids(&report).contains(&"syntax")
                || rule_ids(&report).contains(&"string-annotation"),
            "{:?}",
            report.violations
        );
    }
    // Just under the limit, every shape of deep tree is walked without overflowing the
    // 2 MiB stack of a test thread.
    for source in [
        format!("x = {}a\n", "not ".repeat(190)),
        format!("x = a{}\n", ".b".repeat(190)),
        format!("x = a{}\n", "()".repeat(95)),
        format!("x = {}0\n", "lambda: ".repeat(190)),
        format!("x = {}1{}\n", "[".repeat(95), "]".repeat(95)),
        format!("x = {}a\n", "a ** ".repeat(190)),
        format!(
            "def f(x: {}int): pass\n",
            "list[".repeat(60) + &"]".repeat(60)
        ),
    ] {
        let _ = check(&source);
    }
    // Honest depth passes: long formulas, long elif chains, wide f-strings.
    assert_clean(&format!("x = {}1\n", "1 + ".repeat(60)));
    assert_clean(&format!(
        "if x:\n    pass\n{}",
        "elif x:\n    pass\n".repeat(60)
    ));
    assert_clean(&format!("s = f\"{}\"\n", "{x:>10.2f} ".repeat(80)));
    assert_clean(&format!("s = ({})\n", "f\"{x:.2f}\" ".repeat(150)));
}

#[test]
fn encoding_declarations_other_than_utf8_are_refused() {
    assert_one(
        "# -*- coding: utf-7 -*-\nx = 1\n",
        "encoding-declaration",
        1,
        1,
    );
    assert_clean("# -*- coding: utf-8 -*-\nx = 1\n");
}

#[test]
fn violations_come_in_source_order_and_all_are_reported() {
    let report = check("import os\nimport subprocess\nx = eval\ny = ().__class__\n");
    let positions: Vec<(u32, u32)> = report.violations.iter().map(|v| (v.line, v.col)).collect();
    assert_eq!(positions, vec![(1, 8), (2, 8), (3, 5), (4, 8)]);
    assert_eq!(
        rule_ids(&report),
        vec![
            "forbidden-import",
            "forbidden-import",
            "forbidden-call",
            "dunder-access"
        ]
    );
}

#[test]
fn violation_carries_text_message_and_hint() {
    let report = check("import os\n");
    let v = &report.violations[0];
    assert_eq!(v.text, "os");
    assert!(v.message.contains("`os`"), "{}", v.message);
    assert!(!v.hint.is_empty());
    let json = serde_json::to_value(v).expect("serialises");
    assert_eq!(json["rule"], "forbidden-import");
}

// ----- imports -------------------------------------------------------------------------

#[test]
fn imports_are_collected_with_positions() {
    let report =
        check("import math\nfrom collections import abc, deque\nimport numpy.linalg as la\n");
    let imports: Vec<(&str, u32, u32)> = report
        .imports
        .iter()
        .map(|i| (i.module.as_str(), i.line, i.col))
        .collect();
    assert_eq!(
        imports,
        vec![
            ("math", 1, 8),
            ("collections", 2, 6),
            ("collections.abc", 2, 25),
            ("numpy.linalg", 3, 8)
        ]
    );
    assert!(report.violations.is_empty());
}

#[test]
fn wasm_list_is_exact_and_native_list_is_prefix() {
    assert_one("import json.tool\n", "forbidden-import", 1, 8);
    assert_one("from json import tool\n", "forbidden-import", 1, 18);
    assert_clean(
        "import json\nimport collections.abc\nimport numpy.linalg\nfrom pandas import DataFrame\n",
    );
    assert_one("import numpy.ctypeslib\n", "forbidden-import", 1, 8);
    assert_one("import numpyx\n", "forbidden-import", 1, 8);
}

#[test]
fn imports_anywhere_are_checked() {
    assert_one("def f():\n    import os\n", "forbidden-import", 2, 12);
    assert_one(
        "class A:\n    if True:\n        import os\n",
        "forbidden-import",
        3,
        16,
    );
    assert_one(
        "try:\n    import os\nexcept ImportError:\n    pass\n",
        "forbidden-import",
        2,
        12,
    );
    assert_one("from .sibling import x\n", "forbidden-import", 1, 6);
    assert_one("from .. import x\n", "forbidden-import", 1, 6);
    assert_one("__import__('math')\n", "forbidden-import", 1, 1);
    assert_one("f = __import__\n", "forbidden-import", 1, 5);
}

#[test]
fn module_internals_and_module_values() {
    assert_one("import random\nrandom._os\n", "module-attribute", 2, 8);
    assert_one(
        "import collections\ncollections._sys\n",
        "module-attribute",
        2,
        13,
    );
    assert_one(
        "import dataclasses\ndataclasses.inspect\n",
        "module-attribute",
        2,
        13,
    );
    assert_one("from typing import sys\n", "module-attribute", 1, 20);
    assert_one("import json\nj = json\n", "module-value", 2, 5);
    assert_one("import json\nprint(json)\n", "module-value", 2, 7);
    assert_clean("import datetime\nd = datetime.time(9, 30)\nimport json\njson.loads('1')\n");
}

// ----- builtins ------------------------------------------------------------------------

#[test]
fn forbidden_builtins_called_or_referenced() {
    for name in [
        "eval",
        "exec",
        "compile",
        "breakpoint",
        "help",
        "globals",
        "locals",
        "dir",
    ] {
        assert_one(&format!("{name}()\n"), "forbidden-call", 1, 1);
        assert_one(&format!("x = [{name}]\n"), "forbidden-call", 1, 6);
        assert_one(&format!("f({name})\n"), "forbidden-call", 1, 3);
    }
    assert_one("x = map(eval, ['1'])\n", "forbidden-call", 1, 9);
    assert_one("@exec\ndef f(): pass\n", "forbidden-call", 1, 2);
    assert_one("def f(x=eval): pass\n", "forbidden-call", 1, 9);
    assert_one("__build_class__(f, 'X')\n", "forbidden-call", 1, 1);
}

#[test]
fn memoryview_is_allowed() {
    assert_clean(
        "raw = bytes(range(8))\nview = memoryview(raw)\nprint(view[2], bytes(view[4:6]), view.nbytes)\nbuf = bytearray(4)\nmemoryview(buf)[0] = 7\n",
    );
}

#[test]
fn vars_of_an_instance_is_allowed() {
    assert_clean(
        "import argparse\nargs = argparse.ArgumentParser().parse_args([])\nprint(vars(args))\n",
    );
    assert_clean(
        "from types import SimpleNamespace\ncfg = SimpleNamespace(a=1)\nprint(vars(cfg), vars(cfg.params))\nclass P:\n    def d(self):\n        return vars(self)\n",
    );
}

#[test]
fn vars_of_a_class_or_module_is_refused() {
    for source in [
        "vars()\n",
        "vars(a, b)\n",
        "vars(*xs)\n",
        "vars(obj=x)\n",
        "vars(type)\n",
        "vars(object)[k]\n",
        "vars(int)\n",
        "vars(type(x))\n",
        "vars(type(type(x)))\n",
        "class A: pass\nvars(A)\n",
        "from types import SimpleNamespace\nvars(SimpleNamespace)\n",
        "from logging import Logger as L\nvars(L)\n",
        "import logging\nvars(logging.root)\n",
        "import logging\nvars(logging.Logger)\n",
    ] {
        let line = u32::try_from(source.lines().count()).expect("few lines");
        assert_one(source, "forbidden-call", line, 1);
    }
    // Modules: named as values they are refused twice, by `vars` and as a module value.
    for source in [
        "import json as j\nvars(j)\n",
        "import re\nvars(re.enum)\n",
        "from re import enum\nvars(enum)\n",
        "import collections.abc\nvars(collections.abc)\n",
    ] {
        let report = check(source);
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.rule.as_str() == "forbidden-call" && v.line == 2 && v.col == 1),
            "{source}: {:?}",
            report.violations
        );
    }
    let report = check("import os\nvars(os)['system']('id')\n");
    let rules: BTreeSet<&str> = report.violations.iter().map(|v| v.rule.as_str()).collect();
    assert!(
        rules.contains("forbidden-import") && rules.contains("forbidden-call"),
        "{:?}",
        report.violations
    );
    // Named without a call, its argument could not be checked.
    assert_one("f = vars\n", "forbidden-call", 1, 5);
    assert_one("list(map(vars, xs))\n", "forbidden-call", 1, 10);
}

#[test]
fn atexit_register_decorates() {
    assert_clean("import atexit\n@atexit.register\ndef summary():\n    print('done')\n");
    assert_clean("import atexit as ax\n@ax.register\ndef summary():\n    print('done')\n");
    // Not a module and not a dispatcher of this file: still refused.
    assert_one(
        "import atexit\nreg = object()\n@reg.register\ndef f(x: int): pass\n",
        "forbidden-call",
        3,
        2,
    );
}

#[test]
fn format_on_names_bound_only_to_literals() {
    assert_clean(
        "row = '{symbol:<6}|{last:>8.2f}'\nprint(row.format_map({'symbol': 'X', 'last': 1.0}))\n",
    );
    assert_clean("ROW: str = '{} {}'\ndef show(a, b):\n    return ROW.format(a, b)\n");
    assert_clean("T = '{0}'\nT = '{0:>4}'\nprint(T.format(1))\n");
    // A walking field in any literal the name is bound to.
    assert_one(
        "t = '{0.__class__.__mro__}'\nprint(t.format_map(d))\n",
        "format-escape",
        2,
        9,
    );
    assert_one(
        "t = '{}'\nt = '{0[k]}'\nt.format(d)\n",
        "format-escape",
        3,
        3,
    );
    // Any other binding of the name anywhere makes it unknown.
    for source in [
        "t = '{}'\nt = input()\nt.format(x)\n",
        "t = '{}'\nt += input()\nt.format(x)\n",
        "t = '{}'\nfor t in xs: pass\nt.format(x)\n",
        "t = '{}'\ndel t\nt.format(x)\n",
        "t = '{}'\ndef f(t): pass\nt.format(x)\n",
        "t = '{}'\nf = lambda t: 0\nt.format(x)\n",
        "t = '{}'\ndef g():\n    global t\nt.format(x)\n",
        "t = '{}'\nclass C:\n    t = '{0.x}'\nt.format(x)\n",
        "t = '{}'\n[t for t in xs]\nt.format(x)\n",
        "t = '{}'\nif (t := input()): pass\nt.format(x)\n",
        "t = '{}'\ntry: pass\nexcept E as t: pass\nt.format(x)\n",
        "t = '{}'\nmatch x:\n    case t: pass\nt.format(x)\n",
        "t = '{}'\nwith x as t: pass\nt.format(x)\n",
        "t = u = '{}'\nt.format(x)\n",
        "t.format(x)\n",
        "def f():\n    t = '{}'\n    return t.format(x)\n",
    ] {
        let report = check(source);
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.rule.as_str() == "format-escape"),
            "{source}: {:?}",
            report.violations
        );
    }
    // `str` is the builtin whose `.format` takes the template as its argument.
    assert_one(
        "str = '{}'\nstr.format('{0.x}', o)\n",
        "format-escape",
        2,
        5,
    );
}

#[test]
fn getattr_family() {
    assert_clean(
        "class A: pass\na = A()\ngetattr(a, 'x', 1)\nsetattr(a, 'x', 2)\nhasattr(a, 'x')\ndelattr(a, 'x')\n",
    );
    assert_one("getattr(1, name)\n", "forbidden-call", 1, 1);
    assert_one("getattr(1, *args)\n", "forbidden-call", 1, 1);
    assert_one("getattr(1, '__class__')\n", "dunder-string", 1, 12);
    assert_one("getattr(1, 'gi_frame')\n", "dunder-string", 1, 12);
    assert_one("setattr(1, '__class__', 2)\n", "dunder-string", 1, 12);
    assert_one("getattr(1, 'format')\n", "format-escape", 1, 1);
    assert_one("g = getattr\n", "forbidden-call", 1, 5);
}

#[test]
fn type_with_three_arguments() {
    assert_clean("t = type(1)\nprint(type(t).__name__)\nisinstance(t, type)\n");
    assert_one("X = type('X', (), {})\n", "forbidden-call", 1, 5);
}

#[test]
fn input_is_allowed_by_default_and_can_be_forbidden() {
    assert_clean("line = input()\n");
    let config = ValidatorConfig {
        forbid_builtins: ["input".to_owned()].into(),
        ..ValidatorConfig::default()
    };
    let report = validate("line = input()\n", &rules(), &config);
    assert_eq!(rule_ids(&report), vec!["forbidden-call"]);
}

#[test]
fn open_takes_any_path_and_mode_but_no_opener() {
    // The backends confine files (the guest sees /data read-only and its own /tmp, the
    // container a read-only root and a capped /tmp), so the path is not judged.
    assert_clean("open('/data/x.csv')\nopen('/data/x.csv', 'rb')\nopen('/data/x', mode='rt')\n");
    assert_clean("name = 'x'\nopen(f'/data/{name}.csv')\nopen('/data/' + name)\n");
    assert_clean("open('/etc/passwd')\nopen('/tmp/out.csv', 'w')\nopen(path, mode)\n");
    assert_clean("open('/data/../etc/passwd', 'r+', encoding='utf-8', closefd=True)\n");
    assert_clean("import io\nio.open('/tmp/x', 'w')\nio.StringIO('a')\n");
    assert_clean("from io import open as o\no('/tmp/x', 'a')\n");
    // An opener picks the descriptor behind the file object out of the validator's sight.
    assert_one("open('/data/x', opener=o)\n", "forbidden-call", 1, 1);
    assert_one(
        "open('/data/x', 'r', -1, None, None, None, True, o)\n",
        "forbidden-call",
        1,
        1,
    );
    assert_one("open(*args)\n", "forbidden-call", 1, 1);
    assert_one("open('/data/x', **kw)\n", "forbidden-call", 1, 1);
    assert_one("o = open\n", "forbidden-call", 1, 5);
    assert_one(
        "import io\nio.open('/x', opener=o)\n",
        "forbidden-call",
        2,
        1,
    );
    assert_one("import io\nf = io.FileIO('/x')\n", "forbidden-call", 2, 8);
}

// ----- dunders -------------------------------------------------------------------------

#[test]
fn dunder_reads_are_refused() {
    for attr in [
        "__class__",
        "__subclasses__",
        "__globals__",
        "__builtins__",
        "__dict__",
        "__code__",
        "__mro__",
        "__bases__",
        "__init_subclass__",
        "__closure__",
        "__self__",
        "__func__",
        "__traceback__",
        "__getattribute__",
        "__reduce_ex__",
        "__init__",
    ] {
        assert_one(&format!("x = y.{attr}\n"), "dunder-access", 1, 7);
    }
    for attr in [
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_await",
        "ag_frame",
        "f_back",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "func_globals",
        "mro",
    ] {
        assert_one(&format!("x = y.{attr}\n"), "dunder-access", 1, 7);
    }
    for name in [
        "__builtins__",
        "__loader__",
        "__spec__",
        "__class__",
        "__file__",
    ] {
        assert_one(&format!("x = {name}\n"), "dunder-access", 1, 5);
    }
}

#[test]
fn ordinary_dunder_use_passes() {
    assert_clean(
        "class A:\n    def __init__(self):\n        super().__init__()\n    def __repr__(self):\n        return f'{type(self).__name__}()'\n    def __eq__(self, o):\n        return super().__eq__(o)\n    def __lt__(self, o):\n        return True\n    def __post_init__(self):\n        pass\n\nif __name__ == '__main__':\n    print(A().__doc__, A.__qualname__)\n",
    );
    assert_clean(
        "class B(dict):\n    def __init__(self, *a):\n        super(B, self).__init__(*a)\n    __slots__ = ()\n    __hash__ = None\n",
    );
}

#[test]
fn dunder_writes_and_bindings_are_refused() {
    assert_one("__builtins__ = {}\n", "dunder-access", 1, 1);
    assert_one("x.__class__ = int\n", "dunder-access", 1, 3);
    assert_one("del x.__dict__\n", "dunder-access", 1, 7);
    assert_one("import math as __builtins__\n", "dunder-access", 1, 8);
    assert_one("for __class__ in []: pass\n", "dunder-access", 1, 5);
    assert_one("x.__doc__ = 'x'\n", "dunder-access", 1, 3);
    assert_one("f(__class__=1)\n", "dunder-access", 1, 3);
    assert_one("class A:\n    gi_frame: int\n", "dunder-access", 2, 5);
    assert_one(
        "@dataclass\nclass __builtins__: pass\n",
        "dunder-access",
        2,
        7,
    );
    assert_one(
        "try: pass\nexcept E as __builtins__: pass\n",
        "dunder-access",
        2,
        1,
    );
}

#[test]
fn dunder_strings_are_refused() {
    assert_one("x = '__class__'\n", "dunder-string", 1, 5);
    assert_one("x = 'a.__globals__'\n", "dunder-string", 1, 5);
    assert_one("x = 'f_back'\n", "dunder-string", 1, 5);
    assert_clean("x = '__main__'\ny = 'see __init__ docs'\nz = 'price.close'\n");
}

#[test]
fn nfkc_normalised_names_are_caught() {
    assert_one("ｅｖａｌ('1')\n", "forbidden-call", 1, 1);
    assert_one("x = ().__ｃｌａｓｓ__\n", "dunder-access", 1, 8);
    assert_one("import ｏｓ\n", "forbidden-import", 1, 8);
    assert_one("x = y.ｇｉ_ｆｒａｍｅ\n", "dunder-access", 1, 7);
    assert_one("getattr(1, 'ｇｉ_ｆｒａｍｅ')\n", "dunder-string", 1, 12);
    assert_one("x = __ｂｕｉｌｔｉｎｓ__\n", "dunder-access", 1, 5);
}

// ----- format strings ------------------------------------------------------------------

#[test]
fn format_strings() {
    assert_clean(
        "'{} {:.2f} {name!r} {0:>{1}}'.format(1, 2, name=3)\nf'{x:.2f} {y!r} {z:>{w}}'\n'%s %(a)s' % (1,)\n",
    );
    assert_one("'{0.__class__}'.format(1)\n", "format-escape", 1, 1);
    assert_one("'{0.real}'.format(1)\n", "format-escape", 1, 1);
    assert_one("'{0[__globals__]}'.format(f)\n", "format-escape", 1, 1);
    assert_one("'{0:{1.real}}'.format(1, 2)\n", "format-escape", 1, 1);
    assert_one("'{x.y}'.format_map(d)\n", "format-escape", 1, 1);
    assert_one("t.format(1)\n", "format-escape", 1, 3);
    assert_one("str.format('{}', 1)\n", "format-escape", 1, 5);
    assert_one("f = t.format_map\n", "format-escape", 1, 7);
    assert_one("import string\nstring.Formatter()\n", "format-escape", 2, 8);
    assert_one(
        "from string import Formatter\nFormatter()\n",
        "format-escape",
        2,
        1,
    );
    assert_one("f'{x.__class__}'\n", "dunder-access", 1, 6);
}

// ----- other families ------------------------------------------------------------------

#[test]
fn class_keywords_and_match_args() {
    assert_clean(
        "import abc\nclass A(metaclass=abc.ABCMeta): pass\nclass B(A, metaclass=abc.ABCMeta): pass\n",
    );
    assert_one("class A(metaclass=f()): pass\n", "class-keyword", 1, 9);
    assert_clean("class P:\n    __match_args__ = ('x', 'y')\n");
    assert_one(
        "class P:\n    __match_args__ = names\n",
        "match-args",
        2,
        22,
    );
    assert_one(
        "class P:\n    __match_args__ = ('__class__',)\n",
        "dunder-string",
        2,
        23,
    );
}

#[test]
fn match_patterns() {
    assert_clean(
        "match p:\n    case Point(x=0, y=y):\n        pass\n    case [1, *rest]:\n        pass\n    case {'k': v, **others}:\n        pass\n",
    );
    assert_one(
        "match p:\n    case object(__class__=c):\n        pass\n",
        "dunder-access",
        2,
        17,
    );
    assert_one(
        "match p:\n    case C(a=1, tb_frame=f):\n        pass\n",
        "dunder-access",
        2,
        17,
    );
    assert_one(
        "match p:\n    case C() as __builtins__:\n        pass\n",
        "dunder-access",
        2,
        10,
    );
}

#[test]
fn typing_evaluation() {
    assert_clean(
        "from typing import List\ndef f(x: 'List[int]', y: 'Portfolio | None' = None) -> 'dict[str, float]':\n    pass\n",
    );
    assert_one(
        "def f(x: \"eval('1')\"): pass\n",
        "string-annotation",
        1,
        10,
    );
    let report = check("x: 'a.__class__' = 1\n");
    assert_eq!(
        rule_ids(&report),
        vec!["dunder-string", "string-annotation"]
    );
    assert_one(
        "import typing\ntyping.get_type_hints(f)\n",
        "forbidden-call",
        2,
        8,
    );
    assert_one(
        "from typing import ForwardRef\nForwardRef('x')\n",
        "forbidden-call",
        2,
        1,
    );
    assert_clean(
        "from functools import singledispatch\n@singledispatch\ndef f(x): pass\n@f.register(int)\ndef _(x): pass\n",
    );
}

#[test]
fn reflective_helpers_need_literals() {
    assert_clean(
        "from operator import attrgetter, methodcaller\nattrgetter('price', 'qty.value')\nmethodcaller('strip')\n",
    );
    assert_one(
        "import operator\noperator.attrgetter(name)\n",
        "forbidden-call",
        2,
        1,
    );
    assert_one(
        "import operator\nf = operator.attrgetter\n",
        "forbidden-call",
        2,
        14,
    );
    assert_one(
        "import operator\noperator.attrgetter('a.__class__')\n",
        "dunder-string",
        2,
        21,
    );
    assert_one(
        "import operator\noperator.methodcaller(n)\n",
        "forbidden-call",
        2,
        1,
    );
    assert_clean(
        "from collections import namedtuple\nP = namedtuple('P', ['x', 'y'])\nQ = namedtuple('Q', 'x y')\n",
    );
    assert_one(
        "from collections import namedtuple\nP = namedtuple('P', fields)\n",
        "forbidden-call",
        2,
        5,
    );
    assert_one(
        "from typing import NamedTuple\nP = NamedTuple('P', [(n, int)])\n",
        "forbidden-call",
        2,
        5,
    );
}

#[test]
fn star_imports_are_refused() {
    assert_one("from math import *\n", "star-import", 1, 18);
}

// ----- configuration -------------------------------------------------------------------

#[test]
fn config_defaults_and_toml() {
    let config: ValidatorConfig = toml::from_str("").expect("empty table");
    assert_eq!(config, ValidatorConfig::default());
    assert!(config.enabled);
    let config: ValidatorConfig = toml::from_str(
        "enabled = true\ndisabled-rules = [\"format-escape\"]\nforbid-builtins = [\"input\"]\nforbid-attributes = [\"price\"]\nallow-builtins = [\"dir\"]\n",
    )
    .expect("all keys");
    assert!(config.disabled_rules.contains(&RuleId::FormatEscape));
    assert!(toml::from_str::<ValidatorConfig>("enable = false\n").is_err());
    assert!(toml::from_str::<ValidatorConfig>("disabled-rules = [\"no-such-rule\"]\n").is_err());
}

#[test]
fn config_switches_rules_and_names() {
    let rules = rules();
    let config = ValidatorConfig {
        disabled_rules: [RuleId::FormatEscape].into(),
        allow_builtins: ["dir".to_owned()].into(),
        forbid_attributes: ["secret".to_owned()].into(),
        ..ValidatorConfig::default()
    };
    let report = validate("'{0.a}'.format(1)\ndir()\nx.secret\n", &rules, &config);
    assert_eq!(
        report
            .violations
            .iter()
            .map(|v| (v.rule.as_str(), v.line))
            .collect::<Vec<_>>(),
        vec![("dunder-access", 3)]
    );
}

#[test]
fn disabled_validator_reports_nothing_but_still_collects_imports() {
    let rules = rules();
    let config = ValidatorConfig {
        enabled: false,
        ..ValidatorConfig::default()
    };
    let report = validate("import os\nimport numpy\neval('1')\n", &rules, &config);
    assert!(report.violations.is_empty());
    assert!(!report.checked);
    assert_eq!(report.imports.len(), 2);
    let routed = route(&report, &rules, None).expect("unchecked reports are not refused");
    assert_eq!(routed.backend, BackendKind::Container);
}

// ----- router --------------------------------------------------------------------------

#[test]
fn router_picks_wasm_for_the_standard_library() {
    let rules = rules();
    let report = check("import math\nimport json\n");
    let routed = route(&report, &rules, None).expect("routes");
    assert_eq!(routed.backend, BackendKind::Wasm);
    assert_eq!(routed.why, "only standard-library imports");
    assert_eq!(routed.decided_by, None);
}

#[test]
fn router_picks_container_for_native_packages() {
    let rules = rules();
    let report = check("import json\nimport numpy as np\nimport pandas\n");
    let routed = route(&report, &rules, None).expect("routes");
    assert_eq!(routed.backend, BackendKind::Container);
    assert_eq!(
        routed.why,
        "imports numpy (line 2), a native-extension package"
    );
    assert_eq!(routed.decided_by.as_deref(), Some("numpy"));
    let report = check("from scipy.stats import norm\n");
    let routed = route(&report, &rules, None).expect("routes");
    assert_eq!(routed.decided_by.as_deref(), Some("scipy.stats"));
}

#[test]
fn router_refuses_unknown_imports_without_double_reporting() {
    let rules = rules();
    let report = check("import os\nimport math\n");
    assert_eq!(report.violations.len(), 1);
    let refused = route(&report, &rules, None).expect_err("os is refused");
    assert_eq!(refused, report.violations);
    // A report built by hand, without the validator's violation: the router makes one.
    let bare = Report {
        violations: Vec::new(),
        ..report.clone()
    };
    let refused = route(&bare, &rules, Some(BackendKind::Container)).expect_err("still refused");
    assert_eq!(
        refused,
        vec![Violation {
            text: "os".to_owned(),
            ..report.violations[0].clone()
        }]
    );
}

#[test]
fn router_honours_forced_backends() {
    let rules = rules();
    let numeric = check("import numpy\n");
    let refused = route(&numeric, &rules, Some(BackendKind::Wasm)).expect_err("no numpy in wasm");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].rule, RuleId::BackendMismatch);
    assert_eq!((refused[0].line, refused[0].col), (1, 8));
    assert!(
        refused[0].message.contains("no numpy"),
        "{}",
        refused[0].message
    );
    assert!(
        refused[0].hint.contains("--backend container"),
        "{}",
        refused[0].hint
    );
    let routed = route(&numeric, &rules, Some(BackendKind::Container)).expect("allowed");
    assert_eq!(routed.backend, BackendKind::Container);
    let plain = check("import math\n");
    let routed = route(&plain, &rules, Some(BackendKind::Container)).expect("allowed");
    assert_eq!(routed.backend, BackendKind::Container);
    assert!(routed.why.contains("forced"));
    let routed = route(&plain, &rules, Some(BackendKind::Wasm)).expect("allowed");
    assert_eq!(routed.backend, BackendKind::Wasm);
}

#[test]
fn backend_kind_serialises_lowercase() {
    assert_eq!(
        serde_json::to_string(&BackendKind::Wasm).expect("json"),
        "\"wasm\""
    );
    assert_eq!(
        serde_json::from_str::<BackendKind>("\"container\"").expect("json"),
        BackendKind::Container
    );
}

// ----- never panics --------------------------------------------------------------------

#[test]
fn odd_inputs_do_not_panic() {
    for source in [
        "",
        "\n",
        "\r",
        "\r\n",
        "\u{feff}x = 1\n",
        "\t\tx",
        "(",
        ")",
        "'''",
        "f'{",
        "f'{x!'",
        "\\",
        "x = 1 \\\n",
        "ｅ",
        "é = 1\n",
        "@\n",
        "lambda",
        "match",
        "case",
        "class",
        "\x0c",
        "x = '\\N{",
        "if x:\nelse:\n",
        "  x = 1\n",
        "def f(*, **k): pass\n",
        "async def f():\n    async with a as b: await c\n",
    ] {
        let report = check(source);
        let _ = render_human(&report, source, "odd.py");
        let _ = route(&report, &rules(), None);
    }
}

// ----- snapshots -----------------------------------------------------------------------

fn snapshot_source(name: &str) -> String {
    std::fs::read_to_string(Path::new(FIXTURES).join("attacks").join(name)).expect("fixture")
}

#[test]
fn snapshot_human_diagnostics() {
    for name in [
        "subclass_walk.py",
        "format_class.py",
        "import_os.py",
        "open_opener.py",
    ] {
        let source = snapshot_source(name);
        let report = check(&source);
        insta::assert_snapshot!(
            format!("human_{}", name.trim_end_matches(".py")),
            render_human(&report, &source, name)
        );
    }
}

#[test]
fn snapshot_json_diagnostics() {
    for name in ["generator_frame.py", "nfkc_exec.py", "traceback_frame.py"] {
        let source = snapshot_source(name);
        let report = check(&source);
        insta::assert_json_snapshot!(format!("json_{}", name.trim_end_matches(".py")), report);
    }
}

#[test]
fn sys_allows_only_its_stdio_exit_and_constants() {
    assert_clean(
        "import sys, json\ndoc = json.load(sys.stdin)\nprint(doc, file=sys.stderr)\nsys.exit(0)\n",
    );
    assert_clean("from sys import stdin, argv\nprint(stdin.read(), argv)\n");
    assert_clean(
        "import sys\nprint(sys.maxsize, sys.float_info.max, sys.version_info >= (3, 11))\n",
    );
    assert_one("import sys\nsys.modules['os']\n", "module-attribute", 2, 5);
    assert_one(
        "import sys\nf = sys._getframe()\n",
        "module-attribute",
        2,
        9,
    );
    assert_one(
        "import sys\nsys.setrecursionlimit(10**6)\n",
        "module-attribute",
        2,
        5,
    );
    assert_one(
        "import sys\nsys.settrace(print)\n",
        "module-attribute",
        2,
        5,
    );
    assert_one("from sys import modules\n", "module-attribute", 1, 17);
    assert_one(
        "import sys as s\ns.modules['os']\n",
        "module-attribute",
        2,
        3,
    );
    assert_one(
        "import typing\ntyping.sys.stdin\n",
        "module-attribute",
        2,
        8,
    );
}

// ----- Ruff's parser: modern syntax, BOM, newer-than-3.13 syntax ------------------------

#[test]
fn modern_syntax_passes() {
    assert_clean("row = {'close': 1.5}\nprint(f\"{row[\"close\"]:.2f}\")\n");
    assert_clean(
        "def first[T](xs: list[T]) -> T:\n    return xs[0]\n\ntype Prices = list[float]\n",
    );
    assert_clean(
        "class Box[T: (int, float)]:\n    def __init__(self, v: T) -> None:\n        self.v = v\n",
    );
    assert_clean(
        "def f(cmd):\n    match cmd:\n        case {'buy': qty} if qty > 0:\n            return qty\n        case [x, *rest]:\n            return x\n        case _:\n            return 0\n",
    );
    assert_clean("try:\n    pass\nexcept* ValueError as group:\n    print(group)\n");
}

#[test]
fn syntax_newer_than_python_313_names_the_version_it_needs() {
    let report = check("name = 'x'\ngreeting = t\"hello {name}\"\n");
    assert_eq!(rule_ids(&report), vec!["syntax"], "{:?}", report.violations);
    let v = &report.violations[0];
    assert_eq!((v.line, v.col), (2, 12));
    assert!(v.message.contains("requires Python 3.14"), "{}", v.message);
    assert!(!v.message.contains("invalid syntax"), "{}", v.message);
}

#[test]
fn a_byte_order_mark_is_skipped_and_columns_stay_right() {
    assert_clean("\u{feff}import math\nprint(math.pi)\n");
    assert_one("\u{feff}import os\n", "forbidden-import", 1, 8);
    assert_one("\u{feff}x = eval\n", "forbidden-call", 1, 5);
    let report = check("\u{feff}x = eval\n");
    let human = render_human(&report, "\u{feff}x = eval\n", "s.py");
    assert!(human.contains("1 | x = eval\n  |     ^^^^\n"), "{human}");
}

// ----- fewer false alarms ---------------------------------------------------------------

#[test]
fn future_imports_are_directives_not_routed_imports() {
    let report = check("from __future__ import annotations\nimport math\nx: list[int] = []\n");
    assert!(report.is_clean(), "{:?}", report.violations);
    let modules: Vec<&str> = report.imports.iter().map(|i| i.module.as_str()).collect();
    assert_eq!(modules, vec!["math"]);
    assert!(report.inventory.imports.contains("__future__"));
    assert_one(
        "from __future__ import annotations as __builtins__\n",
        "dunder-access",
        1,
        24,
    );
}

#[test]
fn harmless_dunder_data_reads_are_allowed() {
    assert_clean(
        "import numpy as np\nprint(np.__version__)\nclass A: pass\nprint(A.__name__, A.__qualname__, A.__doc__, A.__module__)\nprint(__doc__)\n",
    );
    assert_clean("from numpy import __version__\nprint(__version__)\n");
    assert_one(
        "import numpy as np\nnp.__version__ = '0'\n",
        "dunder-access",
        2,
        4,
    );
    assert_one(
        "import numpy as np\nprint(np.__file__)\n",
        "dunder-access",
        2,
        10,
    );
    assert_one("class A: pass\nprint(A.__dict__)\n", "dunder-access", 2, 9);
}

#[test]
fn module_metadata_may_be_assigned_at_module_level() {
    assert_clean(
        "__author__ = \"A. Trader\"\n__version__ = \"1.2\"\n__all__ = [\"main\"]\n__license__: str = \"MIT\"\n__version_info__ = (1, 2)\nprint(__author__)\n",
    );
    // Only literal data, only at module level, only metadata names.
    assert_one("__author__ = make()\n", "dunder-access", 1, 1);
    assert_one("def f():\n    __author__ = 'x'\n", "dunder-access", 2, 5);
    assert_one("__builtins__ = 'x'\n", "dunder-access", 1, 1);
}

#[test]
fn exit_and_quit_behave_as_sys_exit() {
    assert_clean("exit()\nquit(1)\nexit('done')\nstop = exit\n");
}

#[test]
fn computed_getattr_with_a_safe_literal_prefix() {
    assert_clean(
        "class H:\n    def _get_a(self): return 1\n    def run(self, name, event):\n        getattr(self, f\"_get_{name}\")()\n        getattr(self, \"on_\" + event, None)\n        hasattr(self, 'on_' + event + '_x')\n        setattr(self, f'cache_{name}', 1)\n",
    );
    // No prefix, a prefix that could begin a dunder or an internal name, or a module.
    assert_one("getattr(obj, name)\n", "forbidden-call", 1, 1);
    assert_one("getattr(obj, '__' + name)\n", "forbidden-call", 1, 1);
    assert_one("getattr(obj, '_' + name)\n", "forbidden-call", 1, 1);
    assert_one("getattr(obj, f'__{name}')\n", "forbidden-call", 1, 1);
    assert_one("getattr(obj, f'{name}_x')\n", "forbidden-call", 1, 1);
    assert_one("getattr(gen, 'gi_' + name)\n", "forbidden-call", 1, 1);
    assert_one("getattr(frame, 'f_' + name)\n", "forbidden-call", 1, 1);
    assert_one("getattr(s, 'form' + name)\n", "forbidden-call", 1, 1);
    let report = check("import math\ngetattr(math, 'on_' + name)\n");
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.rule == RuleId::ForbiddenCall && (v.line, v.col) == (2, 1)),
        "{:?}",
        report.violations
    );
}

#[test]
fn singledispatch_register_is_allowed_on_dispatchers() {
    assert_clean(
        "from functools import singledispatch\n@singledispatch\ndef show(x):\n    print(x)\n@show.register\ndef _(x: int):\n    print(x)\n",
    );
    assert_clean(
        "import functools\n@functools.singledispatch\ndef show(x):\n    print(x)\n@show.register\ndef _(x: 'list[int]'):\n    print(x)\n",
    );
    // Not a dispatcher of this file: still refused.
    assert_one(
        "@other.register\ndef _(x: int):\n    pass\n",
        "forbidden-call",
        1,
        2,
    );
    // Its annotations are still checked as code and plain types.
    let report = check(
        "from functools import singledispatch\n@singledispatch\ndef show(x): pass\n@show.register\ndef _(x: 'int.__class__'): pass\n",
    );
    assert_eq!(
        rule_ids(&report),
        vec!["dunder-string", "string-annotation"]
    );
}

/// The module list with `doctest` in it: whether the guest carries `doctest` is the
/// module list's decision; the rule on its examples is the validator's.
fn check_with_doctest(source: &str) -> Report {
    let mut rules = rules();
    rules.wasm.insert("doctest".to_owned());
    validate(source, &rules, &ValidatorConfig::default())
}

#[test]
fn doctest_examples_are_validated_as_code() {
    let honest = "\"\"\"Moving averages.\n\n>>> sma([1, 2, 3], 3)\n2.0\n\"\"\"\nimport doctest\nimport math\n\ndef sma(xs, n):\n    \"\"\"\n    >>> sma([2, 4], 2)\n    3.0\n    >>> for x in [1]:\n    ...     print(math.sqrt(x))\n    1.0\n    \"\"\"\n    return sum(xs[-n:]) / n\n\nif __name__ == \"__main__\":\n    doctest.testmod()\n";
    let report = check_with_doctest(honest);
    assert!(report.is_clean(), "{:?}", report.violations);
    // A forbidden example is reported at its docstring.
    let hostile = "import doctest\n\ndef f():\n    \"\"\"\n    >>> import os\n    >>> ().__class__\n    \"\"\"\n\ndoctest.testmod()\n";
    let report = check_with_doctest(hostile);
    let found: Vec<(&str, u32, u32)> = report
        .violations
        .iter()
        .map(|v| (v.rule.as_str(), v.line, v.col))
        .collect();
    assert_eq!(
        found,
        vec![("forbidden-import", 4, 5), ("dunder-access", 4, 5)]
    );
    assert!(report.violations[0].message.contains("doctest example"));
    // The module's imports are in scope in the examples.
    let report = check_with_doctest(
        "\"\"\"\n>>> random._os\n\"\"\"\nimport doctest, random\ndoctest.testmod()\n",
    );
    assert_eq!(rule_ids(&report), vec!["module-attribute"]);
    assert_eq!(
        (report.violations[0].line, report.violations[0].col),
        (1, 1)
    );
    // The entry points that run text the validator never sees stay refused.
    for source in [
        "import doctest\ndoctest.run_docstring_examples(s, {})\n",
        "import doctest\ndoctest.testfile('/tmp/x')\n",
    ] {
        let report = check_with_doctest(source);
        assert_eq!(rule_ids(&report), vec!["module-attribute"], "{source}");
        assert_eq!(
            (report.violations[0].line, report.violations[0].col),
            (2, 9)
        );
    }
    // Without doctest, docstrings are text.
    assert_clean("def f():\n    \"\"\"\n    >>> import os\n    \"\"\"\n");
}

// ----- the inventory --------------------------------------------------------------------

#[test]
fn inventory_is_computed_also_when_the_validator_is_off() {
    let config = ValidatorConfig {
        enabled: false,
        ..ValidatorConfig::default()
    };
    let report = validate("import os\nos.getcwd()\n", &rules(), &config);
    assert!(report.violations.is_empty());
    assert!(report.inventory.imports.contains("os"));
    assert!(report.inventory.calls.contains("os.getcwd"));
}
