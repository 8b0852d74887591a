//! The whole flow for one strategy: validate, route, run, report.

use std::path::Path;
use std::sync::OnceLock;

use crate::backend::{Backend, ContainerBackend, Execution, Job, WasmBackend};
use crate::outcome::Outcome;
use crate::policy::{Policy, units};
use crate::route::{BackendKind, Route, route};
use crate::validate::{Report, RuleId, Violation, validate};

/// One strategy and what it is given.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The source code, as bytes: it is checked to be UTF-8 and within `limits.source`.
    pub source: &'a [u8],
    /// The name tracebacks and diagnostics show for it.
    pub filename: &'a str,
    /// The input document, on the strategy's stdin. Default: empty.
    pub input: &'a [u8],
    /// A host directory granted read-only at `/data`. Default: none.
    pub data_dir: Option<&'a Path>,
    /// Run on this backend instead of the one the router picks. Default: none.
    pub backend: Option<BackendKind>,
}

impl<'a> Request<'a> {
    /// A request with no input, no data directory and automatic routing.
    pub fn new(source: &'a (impl AsRef<[u8]> + ?Sized), filename: &'a str) -> Self {
        Self {
            source: source.as_ref(),
            filename,
            input: b"",
            data_dir: None,
            backend: None,
        }
    }
}

/// Runs strategies. Backends are set up on first use and reused for every run: the wasm
/// engine and compiled guest are loaded once per `Sandbox`.
#[derive(Debug, Default)]
pub struct Sandbox {
    wasm: OnceLock<Result<WasmBackend, String>>,
    container: OnceLock<ContainerBackend>,
}

impl Sandbox {
    /// A sandbox with the default guest location and cache directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sandbox that uses an already-built wasm backend.
    pub fn with_wasm(wasm: WasmBackend) -> Self {
        let sandbox = Self::default();
        let _ = sandbox.wasm.set(Ok(wasm));
        sandbox
    }

    /// The wasm backend, set up on first use.
    pub fn wasm(&self) -> Result<&WasmBackend, String> {
        self.wasm
            .get_or_init(|| WasmBackend::new().map_err(|err| chain(&err)))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn container(&self) -> &ContainerBackend {
        self.container.get_or_init(ContainerBackend::default)
    }

    /// Validates and routes a strategy without running it: the `check` subcommand.
    /// `Err` carries the violations that refuse it.
    pub fn check(&self, request: &Request<'_>, policy: &Policy) -> Result<Route, Vec<Violation>> {
        plan(request, policy).map(|(_, route, _)| route)
    }

    /// Validates, routes and runs one strategy. Every ending, including "the sandbox could
    /// not run it", is an [`Outcome`].
    pub async fn run(&self, request: &Request<'_>, policy: &Policy) -> Outcome {
        let (source, route, report) = match plan(request, policy) {
            Ok(planned) => planned,
            Err(violations) => return Outcome::rejected(&policy.name, violations),
        };
        // The runner compares CPython's tree with what the validator saw; with the
        // validator switched off there is nothing to compare, and the backends stand alone.
        let inventory = policy.validator.enabled.then_some(&report.inventory);
        let job = Job {
            source,
            filename: request.filename,
            input: request.input,
            data_dir: request.data_dir,
            inventory,
        };
        let executed = match route.backend {
            BackendKind::Wasm => match self.wasm() {
                Ok(wasm) => wasm.execute(&job, policy).await.map_err(|e| chain(&e)),
                Err(message) => Err(message),
            },
            BackendKind::Container => self
                .container()
                .execute(&job, policy)
                .await
                .map_err(|e| chain(&e)),
        };
        match executed {
            Ok(execution) => finish(execution, route, policy),
            Err(message) => Outcome {
                route: Some(route),
                ..Outcome::unavailable(&policy.name, message)
            },
        }
    }
}

/// Layer 1: the source checks before parsing, the validator's verdict, then the router's.
/// The source the backends run (without a byte order mark), its route, and the validator's
/// report (whose inventory travels with the job).
fn plan<'a>(
    request: &Request<'a>,
    policy: &Policy,
) -> Result<(&'a str, Route, Report), Vec<Violation>> {
    let source = check_source(request.source, policy).map_err(|v| vec![v])?;
    // CPython skips a UTF-8 byte order mark in a file, but `compile()` of a str refuses
    // one: both backends get the source without it (the validator skips it too).
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let rules = policy.import_rules();
    let report = validate(source, &rules, &policy.validator);
    if !report.is_clean() {
        return Err(report.violations);
    }
    let route = route(&report, &rules, request.backend)?;
    Ok((source, route, report))
}

/// An error and its sources, `outer: inner: innermost`.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Checks what must hold before the source is even parsed: its size and its encoding.
fn check_source<'a>(source: &'a [u8], policy: &Policy) -> Result<&'a str, Violation> {
    let limit = policy.limits.source_bytes;
    if source.len() as u64 > limit {
        return Err(Violation {
            rule: RuleId::SourceSize,
            line: 1,
            col: 1,
            text: String::new(),
            message: format!(
                "the source is larger than the {} that limits.source allows",
                units::format_size(limit)
            ),
            hint: "a strategy is a script: pass data through --input or --data instead of \
                   embedding it in the source"
                .into(),
        });
    }
    std::str::from_utf8(source).map_err(|err| {
        let valid = &source[..err.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        Violation {
            rule: RuleId::Encoding,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            text: format!("\\x{:02x}", source[err.valid_up_to()]),
            message: "the source is not valid UTF-8".into(),
            hint: "save the file as UTF-8 (Python 3's default source encoding)".into(),
        }
    })
}

fn finish(execution: Execution, route: Route, policy: &Policy) -> Outcome {
    if let Some(violation) = execution.mismatch {
        return Outcome {
            backend: Some(route.backend),
            route: Some(route),
            ..Outcome::rejected(&policy.name, vec![violation])
        };
    }
    let Execution {
        status,
        reason,
        message,
        python,
        exit_code,
        stdout,
        stderr,
        truncated,
        usage,
        mismatch: _,
    } = execution;
    Outcome {
        status,
        reason,
        message,
        backend: Some(route.backend),
        python,
        route: Some(route),
        exit_code,
        stdout,
        stderr,
        truncated,
        violations: Vec::new(),
        usage,
        policy: policy.name.clone(),
    }
}
