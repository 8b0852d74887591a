//! Layer 1 of defence in depth: the AST validator.
//!
//! [`validate`] parses a strategy with Ruff's parser (`ruff_python_parser`) at Python
//! [`PYTHON`] (3.13, the language both backends run) and checks it against the import
//! allowlist and a set of rules that close the well-known CPython jail-escape families. A
//! violation stops the run before any code executes. The validator is never the only
//! layer: every backend must hold when it is switched off (`enabled = false`). Besides the
//! verdict, the [`Report`] carries the [`Inventory`] of the names the tree holds, for the
//! runner's parser cross-check.
//!
//! This module tree uses only `std` and external crates, never other `crate::` paths, so a
//! fuzz target can mount it with `#[path]`.
//!
//! # Rules
//!
//! | id | what it refuses |
//! | --- | --- |
//! | `syntax` | source CPython 3.13 would not compile (also NUL bytes, and syntax newer than 3.13) |
//! | `encoding-declaration` | a PEP 263 `coding:` line naming anything but UTF-8 |
//! | `nesting-limit` | a syntax tree deeper than [`MAX_NESTING`] |
//! | `forbidden-import` | a module outside the allowlist, relative imports, `__import__` |
//! | `star-import` | `from m import *` (the names it binds cannot be checked) |
//! | `module-attribute` | private (`random._os`) attributes of modules, and any attribute chain from an allowed module that the generated attribute map ([`resolve`]) shows reaching a module that is not allowed, a forbidden builtin or a callable of a refused module (`re.enum.sys`, `pathlib.os`, `types.CodeType`), under any import alias |
//! | `module-value` | a module used as a value (`m = io`), which would hide later attribute reads |
//! | `forbidden-call` | builtins that reach outside the language, named or called; unchecked `getattr` and friends; `vars()` and `vars` of a class or module; `type` with 3 arguments; `open` with an opener; string-evaluating typing helpers |
//! | `dunder-access` | reading or binding `__x__` attributes and names, frame/generator/traceback/code internals |
//! | `dunder-string` | string literals spelling such names (`"__class__"`, `"a.gi_frame"`), which only serve reflective access |
//! | `format-escape` | `str.format`/`format_map` on a template that is neither a literal nor a name bound only to literals, or fields that walk attributes or items; `string.Formatter` |
//! | `class-keyword` | a `metaclass=` that is not a plain (dotted) name |
//! | `string-annotation` | string annotations that are not plain type expressions (typing evaluates them) |
//! | `match-args` | `__match_args__` that is not a tuple of string literals |
//!
//! The router adds `backend-mismatch`; the sandbox, before parsing, `source-size` (larger
//! than `limits.source`) and `encoding` (not UTF-8); the runner, on either backend,
//! `parser-mismatch`: CPython's own syntax tree names an import, a name, an attribute or a
//! call target that is not in the [`Inventory`] the host's parser saw, so the tree that
//! was checked is not the tree that would run (see [`inventory`]).
//!
//! # Decisions
//!
//! * **`open`.** Files are confined by the backends (the guest sees only `/data`
//!   read-only and its own `/tmp`; the container has a read-only root and a capped `/tmp`),
//!   so `open` and `io.open` take any path and mode. `opener=` (and unpacked arguments,
//!   which could carry one) is refused: the opener is strategy code that receives each
//!   open's flags and picks the file descriptor behind the file object, out of the
//!   validator's sight. `io.FileIO` and `io.open_code` stay refused.
//! * **Syntax newer than 3.13** is a `syntax` violation whose message names the Python
//!   version it needs. A UTF-8 byte order mark at the top is skipped (positions count from
//!   after it), as CPython skips it in a file.
//! * **`from __future__ import ...`** is a compiler directive: allowed, and not an import
//!   the router sees.
//! * **`exit()` and `quit()`** raise `SystemExit` like `sys.exit()`; the runner provides
//!   them where `site` did not.
//! * **Computed attribute names.** `getattr`/`hasattr`/`setattr`/`delattr` with a name that
//!   is not a literal is allowed when the name starts with a literal prefix that no dunder,
//!   internal attribute or format method begins with (`f"_get_{name}"`, `"on_" + event`),
//!   and the object is not a module.
//! * **`@f.register`** without a type is allowed when `f` is a `functools.singledispatch`
//!   function of the file: its annotations are checked as code, string annotations as plain
//!   type expressions. On a module (`@atexit.register`) it is that module's function.
//! * **`vars(obj)`** of an instance is allowed: it holds what reading the instance's
//!   attributes reaches anyway. `vars()` (`locals()`) and `vars` of anything the validator
//!   can tell is a class or a module are refused; classes flow anywhere as values
//!   (`type(x)`), so the runner's `vars` refuses every class and module at run time too.
//! * **Format templates held in names.** `ROW.format_map(d)` is checked as on the literal
//!   when the file binds `ROW` nowhere but at module level, to string literals (every
//!   read then yields one of them, or fails); any other binding makes it unknown.
//! * **`memoryview`** is allowed: a bounds-checked view of bytes the strategy already holds.
//! * **`doctest`.** `doctest.testmod()` runs the `>>>` examples of the file's docstrings,
//!   so when the file imports `doctest` each example is validated as code (with the
//!   module's imports in scope) and a violation is reported at its docstring. The other
//!   entry points (`testfile`, `run_docstring_examples`, ...) run text the validator never
//!   sees and are refused.
//! * **`input`** is allowed: stdin holds the input document on both backends and `sys` is
//!   not importable, so `input()` is how a strategy reads it. A profile can forbid it with
//!   `forbid-builtins = ["input"]`.
//! * **Harmless dunders** are in tables with a reason each: see [`rules`]. Defining dunder
//!   methods is always allowed; reading them is allowed only for the data attributes
//!   `__name__`, `__qualname__`, `__doc__`, `__module__` and `__version__`, and for
//!   delegation through `super()`. Module metadata (`__author__`, `__version__`, `__all__`,
//!   ...) may be bound at module level to literal data and read back.
//! * **Names are compared after NFKC normalisation**, as CPython does (`ｅｘｅｃ` is `exec`);
//!   Ruff keeps identifiers as written, so the checker normalises them.
//! * **Columns** are 1-based and count characters, not bytes.

mod check;
mod format;
mod hash;
pub mod inventory;
mod render;
pub mod resolve;
pub mod rules;
mod source;

use std::collections::BTreeSet;

pub use check::PYTHON;
pub use inventory::Inventory;
pub use render::render_human;
pub use source::MAX_NESTING;

/// What may be imported; filled in by the policy layer from the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportRules {
    /// Modules the wasm guest carries, matched exactly: `json` does not allow `json.tool`.
    pub wasm: BTreeSet<String>,
    /// Native-extension packages, matched by package prefix: `numpy` allows `numpy.linalg`
    /// (but never the entries of [`rules::NATIVE_DENIED`]).
    pub native: BTreeSet<String>,
}

/// Where an imported module can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleClass {
    /// Carried by the wasm guest (and by the container image).
    Wasm,
    /// A native-extension package: only the container has it.
    Native,
    /// No backend may provide it.
    Forbidden,
}

impl ImportRules {
    /// Classifies a dotted module name. Every prefix of the name is imported too, so each
    /// must be allowed.
    pub fn classify(&self, module: &str) -> ModuleClass {
        if module.is_empty() || module.starts_with('.') || rules::native_denied(module).is_some() {
            return ModuleClass::Forbidden;
        }
        let prefixes = module
            .match_indices('.')
            .map(|(i, _)| &module[..i])
            .chain(std::iter::once(module));
        let mut class = ModuleClass::Wasm;
        for prefix in prefixes {
            if self.wasm.contains(prefix) {
                continue;
            }
            if self.is_native(prefix) {
                class = ModuleClass::Native;
                continue;
            }
            return ModuleClass::Forbidden;
        }
        class
    }

    fn is_native(&self, module: &str) -> bool {
        self.native.iter().any(|package| {
            module == package
                || module
                    .strip_prefix(package.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

/// The `[validator]` table of a TOML profile. `ValidatorConfig::default()` is the secure
/// default: every rule on, nothing extra forbidden or allowed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValidatorConfig {
    /// Run the validator at all. Default `true`. `false` turns it into an import collector:
    /// no violation is reported and the router no longer rejects unknown imports, so tests
    /// and experiments can show that each backend holds on its own. Never for production.
    pub enabled: bool,
    /// Rule ids to switch off, e.g. `["format-escape"]`. Default: none.
    pub disabled_rules: BTreeSet<RuleId>,
    /// Builtins to forbid in addition to [`rules::FORBIDDEN_BUILTINS`], e.g. `["input"]`.
    /// Default: none.
    pub forbid_builtins: BTreeSet<String>,
    /// Attribute names to forbid in addition to [`rules::BLOCKED_ATTRS`]. Default: none.
    pub forbid_attributes: BTreeSet<String>,
    /// Builtins to allow although [`rules::FORBIDDEN_BUILTINS`] lists them, e.g. `["dir"]`.
    /// Allowing `eval`, `exec` or `compile` lets code past the validator. Default: none.
    pub allow_builtins: BTreeSet<String>,
}

impl Default for ValidatorConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            disabled_rules: BTreeSet::new(),
            forbid_builtins: BTreeSet::new(),
            forbid_attributes: BTreeSet::new(),
            allow_builtins: BTreeSet::new(),
        }
    }
}

/// A rule's stable id; serialises as the kebab-case id (`forbidden-import`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    /// The source does not parse as Python.
    Syntax,
    /// A coding declaration names an encoding other than UTF-8.
    EncodingDeclaration,
    /// Expressions or blocks nested deeper than the validator's limit.
    NestingLimit,
    /// An import the policy does not allow.
    ForbiddenImport,
    /// `from module import *`.
    StarImport,
    /// An attribute of a module that is not allowed (`os.system`).
    ModuleAttribute,
    /// A module used as a value (passed, stored or aliased).
    ModuleValue,
    /// A call of a forbidden builtin (`eval`, `exec`, `open` outside `/data`, …).
    ForbiddenCall,
    /// An attribute access to a dunder name outside the allowed list.
    DunderAccess,
    /// A string spelling an internal (dunder) name.
    DunderString,
    /// A format string that reaches attributes or items (`{0.__class__}`).
    FormatEscape,
    /// A metaclass that is not a plain class name.
    ClassKeyword,
    /// A string annotation that is not a plain type expression.
    StringAnnotation,
    /// A `__match_args__` that is not a tuple of string literals.
    MatchArgs,
    /// The forced backend cannot run the strategy's imports.
    BackendMismatch,
    /// CPython's syntax tree names something the host's inventory lacks (the runner
    /// refuses to start the strategy).
    ParserMismatch,
    /// The source is larger than the policy's `limits.source` (checked before parsing).
    SourceSize,
    /// The source is not valid UTF-8 (checked before parsing).
    Encoding,
}

impl RuleId {
    /// Every rule, in the order of the table in the module docs.
    pub const ALL: [RuleId; 18] = [
        RuleId::Syntax,
        RuleId::EncodingDeclaration,
        RuleId::NestingLimit,
        RuleId::ForbiddenImport,
        RuleId::StarImport,
        RuleId::ModuleAttribute,
        RuleId::ModuleValue,
        RuleId::ForbiddenCall,
        RuleId::DunderAccess,
        RuleId::DunderString,
        RuleId::FormatEscape,
        RuleId::ClassKeyword,
        RuleId::StringAnnotation,
        RuleId::MatchArgs,
        RuleId::BackendMismatch,
        RuleId::ParserMismatch,
        RuleId::SourceSize,
        RuleId::Encoding,
    ];

    /// The kebab-case id.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::Syntax => "syntax",
            RuleId::EncodingDeclaration => "encoding-declaration",
            RuleId::NestingLimit => "nesting-limit",
            RuleId::ForbiddenImport => "forbidden-import",
            RuleId::StarImport => "star-import",
            RuleId::ModuleAttribute => "module-attribute",
            RuleId::ModuleValue => "module-value",
            RuleId::ForbiddenCall => "forbidden-call",
            RuleId::DunderAccess => "dunder-access",
            RuleId::DunderString => "dunder-string",
            RuleId::FormatEscape => "format-escape",
            RuleId::ClassKeyword => "class-keyword",
            RuleId::StringAnnotation => "string-annotation",
            RuleId::MatchArgs => "match-args",
            RuleId::BackendMismatch => "backend-mismatch",
            RuleId::ParserMismatch => "parser-mismatch",
            RuleId::SourceSize => "source-size",
            RuleId::Encoding => "encoding",
        }
    }

    /// Parses a kebab-case id.
    pub fn from_id(id: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.as_str() == id)
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refusal, pointing at the offending source.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Violation {
    /// The rule that refused it.
    pub rule: RuleId,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// A short excerpt of the offending source, starting at `line:col`.
    pub text: String,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub hint: String,
}

/// One imported module.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Import {
    /// The dotted module name; relative imports keep their leading dots (`.helpers`).
    pub module: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

/// The result of [`validate`].
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Report {
    /// Every violation, in source order. Empty means the strategy may run.
    pub violations: Vec<Violation>,
    /// Every module imported by an `import` statement, in source order.
    pub imports: Vec<Import>,
    /// `false` when the validator was switched off (`enabled = false`); the router then
    /// does not reject unknown imports.
    pub checked: bool,
    /// What the syntax tree names, for the runner's parser cross-check (see
    /// [`inventory`]). Computed also when the validator is switched off; empty when the
    /// source does not parse.
    pub inventory: Inventory,
}

impl Report {
    /// No violations.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What the syntax tree of `source` names (the [`Report::inventory`] of a run), without
/// checking it; `None` when it does not parse. For tests and benchmarks that build a job by
/// hand.
pub fn inventory_of(source: &str) -> Option<Inventory> {
    check::inventory_of(source)
}

/// Parses and checks `source`. Never panics; a file that does not parse is one `syntax`
/// violation.
pub fn validate(source: &str, imports: &ImportRules, config: &ValidatorConfig) -> Report {
    let mut report = check::run(source, imports, config);
    report
        .violations
        .retain(|v| !config.disabled_rules.contains(&v.rule));
    report.violations.sort_by_key(|v| (v.line, v.col));
    report.violations.dedup();
    report.checked = config.enabled;
    if !config.enabled {
        report.violations.clear();
    }
    report
}

/// The violation for an import no backend provides; shared with the router so that both
/// report it identically.
pub fn import_violation(import: &Import, rules: &ImportRules) -> Violation {
    let module = import.module.as_str();
    let (message, hint) = if module.starts_with('.') {
        (
            format!("relative import `{module}`: a strategy is a single file"),
            "put the code in this file, or import an allowed module by its absolute name"
                .to_owned(),
        )
    } else if let Some(why) = rules::native_denied(module) {
        (
            format!("`{module}` is never allowed: {why}"),
            "use the package's computational API instead".to_owned(),
        )
    } else {
        let mut allowed = String::new();
        for name in ["math", "statistics", "json", "collections"] {
            if rules.wasm.contains(name) {
                allowed.push_str(name);
                allowed.push_str(", ");
            }
        }
        for name in &rules.native {
            allowed.push_str(name);
            allowed.push_str(", ");
        }
        (
            format!("import of `{module}` is not allowed"),
            format!(
                "use only modules this policy allows ({} standard-library modules, e.g. {}...); strategies compute and print, they do not reach the system",
                rules.wasm.len(),
                allowed
            ),
        )
    };
    Violation {
        rule: RuleId::ForbiddenImport,
        line: import.line,
        col: import.col,
        text: module.to_owned(),
        message,
        hint,
    }
}
