//! The backends that run a strategy, behind one small trait. [`crate::Sandbox`] picks one
//! by the route's [`BackendKind`] and keeps each backend alive across runs.

pub mod container;
pub mod wasm;

use std::future::Future;
use std::path::Path;

use crate::outcome::{Cause, Reason, Status, Truncated, Usage};
use crate::policy::Policy;
use crate::route::BackendKind;
use crate::validate::{Inventory, RuleId, Violation};

pub use container::{ContainerBackend, ContainerError};
pub use wasm::{WasmBackend, WasmError};

/// One strategy to run.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The strategy's source code.
    pub source: &'a str,
    /// The name tracebacks show for it (e.g. `sma_crossover.py`).
    pub filename: &'a str,
    /// The input document, given to the strategy on stdin.
    pub input: &'a [u8],
    /// A host directory granted read-only at `/data`, if any.
    pub data_dir: Option<&'a Path>,
    /// What the host's validator saw in the source. The runner parses the source with
    /// CPython's own `ast` and refuses to run it when CPython's tree names anything outside
    /// this inventory (`parser-mismatch`). `None` (validator switched off) compares nothing.
    pub inventory: Option<&'a Inventory>,
}

/// How a backend saw a run end: the backend-specific part of an [`Outcome`].
///
/// [`Outcome`]: crate::outcome::Outcome
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Execution {
    /// `Ok`, `Error` or `Killed` (never `Rejected` or `Unavailable`: those are `Err`s or
    /// decided before a backend is called).
    pub status: Status,
    /// Which limit stopped it, when `status` is `Killed`.
    pub reason: Option<Reason>,
    /// Detail for an `Error` that did not come from the strategy itself (a guest trap).
    pub message: Option<String>,
    /// The interpreter's language level (`3.14`), when the backend knows it.
    pub python: Option<String>,
    /// The strategy's exit code; `None` when it was killed.
    pub exit_code: Option<i32>,
    /// What it printed on stdout (up to the cap).
    pub stdout: String,
    /// What it printed on stderr (up to the cap).
    pub stderr: String,
    /// Whether a stream was cut at its cap.
    pub truncated: Truncated,
    /// What the run consumed.
    pub usage: Usage,
    /// The runner refused to start the strategy: CPython's tree names what the host's
    /// inventory lacks. The sandbox reports the run as `rejected` with this violation.
    pub mismatch: Option<Violation>,
}

/// What the runner reports for a `mismatch` ending: `{"line", "col", "kind", "value"}`.
#[derive(Debug, serde::Deserialize)]
struct MismatchDetail {
    line: u32,
    col: u32,
    kind: String,
    value: String,
}

/// The `parser-mismatch` violation for the runner's detail (JSON, see `wasm/runner.py`).
/// A detail that does not parse still refuses the run, with the raw text.
pub(crate) fn mismatch_violation(detail: Option<&str>) -> Violation {
    let parsed = detail.and_then(|d| serde_json::from_str::<MismatchDetail>(d).ok());
    let hint = "the validator and CPython read this source differently; rewrite the \
                construct in plain syntax";
    match parsed {
        Some(d) => Violation {
            rule: RuleId::ParserMismatch,
            line: d.line,
            col: d.col,
            message: format!(
                "CPython's parser sees the {} `{}`, which the validator's parser did not see",
                match d.kind.as_str() {
                    "imports" => "import of",
                    "names" => "name",
                    "attributes" => "attribute",
                    "calls" => "call of",
                    _ => "item",
                },
                d.value
            ),
            text: d.value,
            hint: hint.to_owned(),
        },
        None => Violation {
            rule: RuleId::ParserMismatch,
            line: 1,
            col: 1,
            text: String::new(),
            message: format!(
                "CPython's parser sees what the validator's parser did not see ({})",
                detail.unwrap_or("no detail")
            ),
            hint: hint.to_owned(),
        },
    }
}

/// Something that can run a strategy under a policy.
pub trait Backend {
    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Runs one strategy in a fresh, isolated instance. A strategy that fails or hits a
    /// limit is an `Ok(Execution)`; `Err` means the sandbox could not do its job.
    fn execute(
        &self,
        job: &Job<'_>,
        policy: &Policy,
    ) -> impl Future<Output = Result<Execution, BackendError>> + Send;
}

/// The sandbox could not run a strategy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The wasm backend failed.
    #[error(transparent)]
    Wasm(#[from] WasmError),
    /// The container backend failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
}

impl BackendError {
    /// Which part of the sandbox failed, as the outcome reports it.
    pub fn cause(&self) -> Cause {
        match self {
            BackendError::Wasm(err) => err.cause(),
            BackendError::Container(err) => err.cause(),
        }
    }
}
