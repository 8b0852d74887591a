//! The one result schema both backends report: what ran, how it ended, what it printed.
//!
//! A limit hit or a failing strategy is an [`Outcome`]; an `Err` anywhere in the library
//! means the sandbox itself could not do its job (and the CLI reports that as an
//! `unavailable` outcome).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::route::{BackendKind, Route};
use crate::validate::Violation;

/// The version of the outcome's JSON shape, in every outcome as `schema_version`. It goes
/// up when a field is removed or changes meaning; new fields do not change it.
pub const SCHEMA_VERSION: u32 = 1;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// The strategy ran and exited 0.
    Ok,
    /// The strategy raised or exited non-zero.
    Error,
    /// Refused before running; `violations` say why.
    Rejected,
    /// A limit stopped it; `reason` says which.
    Killed,
    /// The sandbox could not run it; `message` says why.
    Unavailable,
    /// A `batch` line or `serve` request that could not be read as a request (bad JSON,
    /// an unknown field, no source, a file it may not name); `message` says why. Nothing
    /// ran; the other requests of a batch go on.
    Invalid,
}

impl Status {
    /// The lowercase name used in the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Rejected => "rejected",
            Status::Killed => "killed",
            Status::Unavailable => "unavailable",
            Status::Invalid => "invalid",
        }
    }

    /// The process exit code `stratbox run` uses for this status (see DESIGN.md); an
    /// invalid request is a usage error (2). `batch` exits with the largest code of its
    /// outcomes, so the most severe ending wins.
    pub fn exit_code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Error => 1,
            Status::Rejected => 3,
            Status::Killed => 4,
            Status::Unavailable => 5,
            Status::Invalid => 2,
        }
    }
}

/// Which limit stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Reason {
    /// The wasm instruction budget ran out.
    Fuel,
    /// The container's CPU-seconds limit was reached.
    Cpu,
    /// The wall-clock deadline passed.
    Deadline,
    /// The memory cap was reached (growth refused, `MemoryError`, or an OOM kill).
    Memory,
    /// An output cap was passed and the policy says overflow kills.
    Output,
    /// The process limit stopped the strategy.
    Pids,
    /// A file-size or tmpfs limit stopped the strategy.
    Disk,
}

impl Reason {
    /// The lowercase name used in the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Fuel => "fuel",
            Reason::Cpu => "cpu",
            Reason::Deadline => "deadline",
            Reason::Memory => "memory",
            Reason::Output => "output",
            Reason::Pids => "pids",
            Reason::Disk => "disk",
        }
    }
}

/// Which part of the sandbox could not run a strategy: the `cause` of an `unavailable`
/// outcome, serialised as a stable kebab-case string (`"engine-unreachable"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Cause {
    /// The wasm guest file does not exist.
    GuestMissing,
    /// The wasm guest cannot be read.
    GuestUnreadable,
    /// The wasm guest is not a component this host can compile or link (or it changed
    /// while it was loaded).
    GuestInvalid,
    /// The wasm runtime failed outside the guest.
    WasmRuntime,
    /// The data directory cannot be granted to the strategy.
    DataDir,
    /// The container engine cannot be reached.
    EngineUnreachable,
    /// The container engine refused or failed a request.
    EngineError,
    /// The runtime image is not in the engine, and no other stratbox image is.
    ImageMissing,
    /// The runtime image of this stratbox is not in the engine, but images built by
    /// another version are: rebuild it.
    ImageStale,
    /// The policy's seccomp profile cannot be used.
    SeccompProfile,
    /// No seccomp filter was in force inside the container (the engine does not apply
    /// one); the strategy was not started.
    SeccompUnsupported,
    /// Another part of the container's confinement was not in force (capabilities,
    /// no-new-privileges, a non-root user); the strategy was not started.
    ConfinementFailed,
}

impl Cause {
    /// The kebab-case name used in the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::GuestMissing => "guest-missing",
            Cause::GuestUnreadable => "guest-unreadable",
            Cause::GuestInvalid => "guest-invalid",
            Cause::WasmRuntime => "wasm-runtime",
            Cause::DataDir => "data-dir",
            Cause::EngineUnreachable => "engine-unreachable",
            Cause::EngineError => "engine-error",
            Cause::ImageMissing => "image-missing",
            Cause::ImageStale => "image-stale",
            Cause::SeccompProfile => "seccomp-profile",
            Cause::SeccompUnsupported => "seccomp-unsupported",
            Cause::ConfinementFailed => "confinement-failed",
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A part of a seeded run that the backend could not fix, so that two runs with the same
/// seed may differ in it (the outcome's `not_reproducible`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Unreproducible {
    /// The clocks are the host's: `time.time()`, `time.monotonic()`, `datetime.now()`,
    /// and `time.sleep` waits for real.
    Clock,
    /// The kernel's random source: `os.urandom`, `secrets`, `uuid.uuid4()`, unseeded
    /// `random.Random()` instances and `numpy.random.default_rng()` without a seed.
    OsRandom,
    /// Memory addresses (address-space layout randomisation): `id()` and default `repr`s
    /// such as `<object at 0x7f…>`.
    Addresses,
}

impl Unreproducible {
    /// The kebab-case name used in the outcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Unreproducible::Clock => "clock",
            Unreproducible::OsRandom => "os-random",
            Unreproducible::Addresses => "addresses",
        }
    }
}

/// Whether each stream was cut at its cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Truncated {
    /// stdout was cut.
    pub stdout: bool,
    /// stderr was cut.
    pub stderr: bool,
}

/// What a run consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// Wall time of the run itself, in milliseconds (validation excluded).
    pub wall_ms: f64,
    /// wasm: fuel consumed; container: not measured (0).
    pub fuel: u64,
    /// wasm: the guest's largest linear memory; container: the cgroup's peak when the
    /// engine reports it, else 0.
    pub memory_peak_bytes: u64,
}

/// The account of one run. Serialised as the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// The request's `id` in `batch` and `serve` responses (in `batch`, the request's line
    /// number when it names none); absent from `run --json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// How the run ended.
    pub status: Status,
    /// Set when `status` is `killed`.
    pub reason: Option<Reason>,
    /// Set when `status` is `unavailable` (why the sandbox could not run) or `error` from
    /// the sandbox side; `null` otherwise.
    pub message: Option<String>,
    /// The backend that ran the strategy; `null` when nothing ran.
    pub backend: Option<BackendKind>,
    /// The language level of the interpreter that ran the strategy (`"3.14"` in the wasm
    /// guest, `"3.13"` in the container image); `null` when nothing ran. Taken from the
    /// guest's interpreter library and from the image's labels, which the image build
    /// records from the image's own `sys.version_info`.
    pub python: Option<String>,
    /// The routing decision; `null` when the strategy was rejected before routing.
    pub route: Option<Route>,
    /// The strategy's exit code (0 ok, 1 uncaught exception, else its `sys.exit` code);
    /// `null` when it never ran or was killed.
    pub exit_code: Option<i32>,
    /// What the strategy printed on stdout (up to the cap).
    pub stdout: String,
    /// What the strategy printed on stderr (up to the cap).
    pub stderr: String,
    /// Whether stdout or stderr was cut at its cap.
    pub truncated: Truncated,
    /// Why the strategy was rejected; empty otherwise.
    pub violations: Vec<Violation>,
    /// What the run consumed.
    pub usage: Usage,
    /// The profile's name.
    pub policy: String,
    /// The version of this shape: [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Which part of the sandbox could not run it, when `status` is `unavailable`;
    /// `null` otherwise.
    pub cause: Option<Cause>,
    /// The seed of a deterministic run (`--seed`, or `run.seed` in the profile); `null`
    /// otherwise.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Whether the same source, input, policy, seed and guest give byte-identical
    /// `stdout`, `stderr`, `exit_code` and `usage.fuel`: true for seeded runs on the wasm
    /// backend, false otherwise (and whenever nothing ran).
    #[serde(default)]
    pub deterministic: bool,
    /// For a seeded run that is not deterministic, the parts the backend could not fix
    /// (the container: `clock`, `os-random`, `addresses`); empty otherwise.
    #[serde(default)]
    pub not_reproducible: Vec<Unreproducible>,
}

impl Outcome {
    /// An outcome for a run that never started.
    pub fn not_run(status: Status, policy: &str) -> Self {
        Self {
            id: None,
            status,
            reason: None,
            message: None,
            backend: None,
            python: None,
            route: None,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            truncated: Truncated::default(),
            violations: Vec::new(),
            usage: Usage::default(),
            policy: policy.to_owned(),
            schema_version: SCHEMA_VERSION,
            cause: None,
            seed: None,
            deterministic: false,
            not_reproducible: Vec::new(),
        }
    }

    /// The sandbox could not run the strategy: `cause` says which part failed, `message`
    /// how.
    pub fn unavailable(policy: &str, cause: Cause, message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            cause: Some(cause),
            ..Self::not_run(Status::Unavailable, policy)
        }
    }

    /// A request that could not be read or resolved: nothing ran, `message` says why.
    pub fn invalid(policy: &str, message: impl Into<String>) -> Self {
        Self {
            message: Some(message.into()),
            ..Self::not_run(Status::Invalid, policy)
        }
    }

    /// The same outcome carrying a request's `id`.
    pub fn with_id(self, id: Option<String>) -> Self {
        Self { id, ..self }
    }

    /// The validator or router refused the strategy.
    pub fn rejected(policy: &str, violations: Vec<Violation>) -> Self {
        Self {
            violations,
            ..Self::not_run(Status::Rejected, policy)
        }
    }

    /// The exit code `stratbox run` returns for this outcome.
    pub fn exit_code(&self) -> u8 {
        self.status.exit_code()
    }

    /// A one-line summary for people, e.g. `ok · wasm · 1.3 ms · fuel 725451`.
    pub fn summary(&self) -> String {
        let mut parts = vec![match (self.status, self.reason) {
            (Status::Killed, Some(reason)) => format!("killed ({})", reason.as_str()),
            (Status::Error, _) => match self.exit_code {
                Some(code) => format!("error (exit code {code})"),
                None => "error".to_owned(),
            },
            (Status::Rejected, _) => format!(
                "rejected ({} violation{})",
                self.violations.len(),
                if self.violations.len() == 1 { "" } else { "s" }
            ),
            (status, _) => status.as_str().to_owned(),
        }];
        if let Some(backend) = self.backend {
            parts.push(backend.as_str().to_owned());
        }
        if self.backend.is_some() {
            parts.push(format!("{:.1} ms", self.usage.wall_ms));
        }
        if self.usage.fuel > 0 {
            parts.push(format!("fuel {}", self.usage.fuel));
        }
        if self.usage.memory_peak_bytes > 0 {
            parts.push(format!(
                "memory {:.1} MiB",
                self.usage.memory_peak_bytes as f64 / f64::from(1u32 << 20)
            ));
        }
        if self.truncated.stdout || self.truncated.stderr {
            parts.push("output truncated".to_owned());
        }
        parts.push(format!("profile {}", self.policy));
        if let Some(seed) = self.seed {
            parts.push(if self.deterministic {
                format!("seed {seed}, deterministic")
            } else {
                let parts: Vec<_> = self.not_reproducible.iter().map(|p| p.as_str()).collect();
                format!("seed {seed}, not reproducible: {}", parts.join(", "))
            });
        }
        if let Some(message) = &self.message {
            parts.push(message.clone());
        }
        format!("stratbox: {}", parts.join(" · "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_match_their_serialisation() {
        for status in [
            Status::Ok,
            Status::Error,
            Status::Rejected,
            Status::Killed,
            Status::Unavailable,
            Status::Invalid,
        ] {
            assert_eq!(
                serde_json::to_value(status).ok(),
                Some(serde_json::Value::from(status.as_str()))
            );
        }
    }
}
