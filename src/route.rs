//! Backend choice from a strategy's imports.
//!
//! Imports decide: only modules the wasm guest carries → wasm; any native-extension
//! package (the policy's `native` list, sub-modules included) → container, whose image
//! carries the standard library too; anything else → rejected with `forbidden-import`.
//! `--backend` overrides the choice where the chosen backend can run the strategy.

use crate::validate::{self, Import, ImportRules, ModuleClass, RuleId, Violation};

/// The backend a strategy runs on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// CPython on WASI, in-process.
    Wasm,
    /// The hardened container.
    Container,
}

impl BackendKind {
    /// The lowercase name used on the command line and in the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Wasm => "wasm",
            BackendKind::Container => "container",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The routing decision and its reason.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Route {
    /// Where it runs.
    pub backend: BackendKind,
    /// For people: "only standard-library imports", "imports numpy (line 1), a
    /// native-extension package", "forced by --backend container".
    pub why: String,
    /// The import that decided the backend, if one did.
    pub decided_by: Option<String>,
}

/// Chooses the backend for a validated strategy.
///
/// `Err` carries the violations that refuse the strategy:
/// * `forbidden-import` for imports no backend provides. When the report already holds
///   `forbidden-import` violations, those (and only those) are returned, so a caller that
///   already rejects on `report.violations` never sees a second copy.
/// * `backend-mismatch` when `forced` is wasm but a native package is imported.
///
/// When the validator was switched off (`report.checked == false`) unknown imports are not
/// refused: the backends are then meant to show that they hold on their own.
pub fn route(
    report: &validate::Report,
    rules: &ImportRules,
    forced: Option<BackendKind>,
) -> Result<Route, Vec<Violation>> {
    let mut native: Option<&Import> = None;
    let mut refused = Vec::new();
    for import in &report.imports {
        match rules.classify(&import.module) {
            ModuleClass::Wasm => {}
            ModuleClass::Native => {
                native = native.or(Some(import));
            }
            ModuleClass::Forbidden => {
                if report.checked {
                    refused.push(validate::import_violation(import, rules));
                }
            }
        }
    }
    if !refused.is_empty() {
        let already: Vec<Violation> = report
            .violations
            .iter()
            .filter(|v| v.rule == RuleId::ForbiddenImport)
            .cloned()
            .collect();
        return Err(if already.is_empty() { refused } else { already });
    }
    let native_why = |import: &Import| {
        format!(
            "imports {} (line {}), a native-extension package",
            import.module, import.line
        )
    };
    match (forced, native) {
        (None, None) => Ok(Route {
            backend: BackendKind::Wasm,
            why: "only standard-library imports".to_owned(),
            decided_by: None,
        }),
        (None, Some(import)) => Ok(Route {
            backend: BackendKind::Container,
            why: native_why(import),
            decided_by: Some(import.module.clone()),
        }),
        (Some(BackendKind::Wasm), Some(import)) if report.checked => Err(vec![Violation {
            rule: RuleId::BackendMismatch,
            line: import.line,
            col: import.col,
            text: import.module.clone(),
            message: format!(
                "`--backend wasm` was requested, but the wasm guest has no {}: it carries only the standard library",
                import.module
            ),
            hint: "use `--backend container`, or `--backend auto` to let the imports decide"
                .to_owned(),
        }]),
        (Some(BackendKind::Wasm), _) => Ok(Route {
            backend: BackendKind::Wasm,
            why: "forced by --backend wasm".to_owned(),
            decided_by: None,
        }),
        (Some(BackendKind::Container), native) => Ok(Route {
            backend: BackendKind::Container,
            why: "forced by --backend container".to_owned(),
            decided_by: native.map(|i| i.module.clone()),
        }),
    }
}
