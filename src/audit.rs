//! The audit log: one JSON line per run, saying exactly what ran, under which policy, and
//! how it ended.
//!
//! An [`AuditLog`] is an append-only file shared by every run of a process (`Send + Sync`):
//! [`AuditLog::write`] serialises one [`AuditRecord`] to a single line and appends it with
//! one `write` on a file opened `O_APPEND`, under a mutex, so that concurrent runs never
//! interleave their lines; by default the line is flushed to disk (`fsync`) before `write`
//! returns ([`Fsync`]). A failed write is an `Err` for the caller to report, never dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stratbox::audit::{AuditLog, AuditRecord, RunFacts};
//! use stratbox::{Policy, Request, Sandbox};
//!
//! let log = AuditLog::open("runs.jsonl")?;
//! let sandbox = Sandbox::new();
//! let policy = Policy::load("default")?;
//! let request = Request::new("print('hello')", "hello.py");
//! let outcome = sandbox.run(&request, &policy).await;
//! let facts = RunFacts::new(&sandbox, &request, &policy).request_id("job-17");
//! log.write(&AuditRecord::new(&facts, &outcome))?;
//! # Ok(()) }
//! ```
//!
//! [`verify`] checks a log afterwards: every line parses as a record and the file ends
//! with a whole line (`stratbox audit verify FILE`).

use std::fs::{File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::outcome::{Cause, Outcome, Reason, Status, Usage};
use crate::policy::Policy;
use crate::policy::determinism::format_instant;
use crate::route::BackendKind;
use crate::sandbox::{Request, Sandbox};
use crate::validate::RuleId;

/// The audit log could not be opened, written or verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The log file cannot be opened for appending.
    #[error("cannot open the audit log {} for appending", path.display())]
    Open {
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be appended (or flushed to disk).
    #[error("cannot write a record to the audit log {}", path.display())]
    Write {
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The log file cannot be read.
    #[error("cannot read the audit log {}", path.display())]
    Read {
        /// The log file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line of the log is not a record.
    #[error("{}:{line}: not an audit record: {message}", path.display())]
    Invalid {
        /// The log file.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The log ends in the middle of a line: the last write was cut short.
    #[error("{}:{line}: the log ends mid-line (the last record was cut short)", path.display())]
    Truncated {
        /// The log file.
        path: PathBuf,
        /// The number of the unfinished line.
        line: usize,
    },
}

/// When the log is flushed to disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fsync {
    /// After every record, before [`AuditLog::write`] returns (`fdatasync`). The default:
    /// a record that was reported written survives a crash of the host.
    #[default]
    EveryRecord,
    /// Never explicitly: the kernel writes the file back in its own time. Faster for
    /// many runs a second; a host crash may lose the last records (never half of one
    /// that `verify` would accept).
    Never,
}

/// An append-only JSON Lines audit log. See the [module docs](self).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<File>,
    fsync: Fsync,
}

impl AuditLog {
    /// Opens (creating with mode 0600 if missing) `path` for appending, with
    /// [`Fsync::EveryRecord`].
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, AuditError> {
        let path = path.into();
        let mut options = OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&path).map_err(|source| AuditError::Open {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            path,
            file: Mutex::new(file),
            fsync: Fsync::default(),
        })
    }

    /// Sets when the log is flushed to disk.
    #[must_use]
    pub fn with_fsync(mut self, fsync: Fsync) -> Self {
        self.fsync = fsync;
        self
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line. The line is built first and written with one `write`
    /// under the log's lock, so lines of concurrent callers never interleave.
    pub fn write(&self, record: &AuditRecord) -> Result<(), AuditError> {
        let write_error = |source| AuditError::Write {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(record).map_err(|err| write_error(err.into()))?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        // O_APPEND: each write lands at the end, whatever other processes appended. A
        // regular file takes the whole buffer in one call; `write_all` only loops if the
        // kernel ever returns short (then still under the lock).
        file.write_all(&line).map_err(write_error)?;
        match self.fsync {
            Fsync::EveryRecord => file.sync_data().map_err(write_error),
            Fsync::Never => Ok(()),
        }
    }
}

/// The facts of one run that its outcome does not carry: who asked, what was given, under
/// which resolved policy, and which guest or image ran it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// The caller's id for the run (a batch/serve request's `id`). Default none.
    pub request_id: Option<String>,
    /// The name the strategy ran as.
    pub filename: String,
    /// SHA-256 (hex) of the source bytes as given (as `sha256sum` prints it).
    pub source_sha256: String,
    /// SHA-256 (hex) of the input document as given.
    pub input_sha256: String,
    /// SHA-256 (hex) of the resolved policy ([`Policy::sha256`]).
    pub policy_sha256: String,
    /// The wasm guest's content hash (xxh3-128, hex), if the sandbox has loaded it.
    pub guest_hash: Option<String>,
    /// The container image's id (`sha256:…`), if a run has looked it up.
    pub image_id: Option<String>,
}

impl RunFacts {
    /// The facts of `request` under `policy`, run by `sandbox` (call it after the run, so
    /// that the guest or image it used is known).
    pub fn new(sandbox: &Sandbox, request: &Request<'_>, policy: &Policy) -> Self {
        Self {
            request_id: None,
            filename: request.filename.to_owned(),
            source_sha256: sha256_hex(request.source),
            input_sha256: sha256_hex(request.input),
            policy_sha256: policy.sha256(),
            guest_hash: sandbox
                .wasm_loaded()
                .map(|wasm| wasm.guest_hash().to_owned()),
            image_id: sandbox
                .container_loaded()
                .and_then(|container| container.image_id())
                .map(str::to_owned),
        }
    }

    /// Sets the caller's id for the run.
    #[must_use]
    pub fn request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the record was made (after the run), RFC 3339 in UTC, milliseconds.
    pub time: String,
    /// The caller's id for the run; `null` for `stratbox run`.
    pub request_id: Option<String>,
    /// The name the strategy ran as.
    pub filename: String,
    /// SHA-256 (hex) of the source bytes.
    pub source_sha256: String,
    /// SHA-256 (hex) of the input document (of the empty string when there was none).
    pub input_sha256: String,
    /// The policy's name.
    pub policy: String,
    /// SHA-256 (hex) of the resolved policy.
    pub policy_sha256: String,
    /// The backend that ran it; `null` when nothing ran.
    pub backend: Option<BackendKind>,
    /// The guest or image that ran it: `wasm-guest:<xxh3-128>` or `image:<id>`.
    pub runtime: Option<String>,
    /// The seed of a deterministic run.
    pub seed: Option<u64>,
    /// Whether the run was deterministic.
    pub deterministic: bool,
    /// How it ended.
    pub status: Status,
    /// Which limit stopped it.
    pub reason: Option<Reason>,
    /// Which part of the sandbox could not run it.
    pub cause: Option<Cause>,
    /// The strategy's exit code.
    pub exit_code: Option<i32>,
    /// What it consumed.
    pub usage: Usage,
    /// The rule ids of the validator's violations (empty unless rejected).
    pub rules: Vec<RuleId>,
}

impl AuditRecord {
    /// The record of a run: `facts` from the caller, the rest from `outcome`; the time is
    /// now.
    pub fn new(facts: &RunFacts, outcome: &Outcome) -> Self {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let runtime = match outcome.backend {
            Some(BackendKind::Wasm) => facts.guest_hash.as_ref().map(|h| format!("wasm-guest:{h}")),
            Some(BackendKind::Container) => facts.image_id.as_ref().map(|id| format!("image:{id}")),
            None => None,
        };
        Self {
            time: format_instant(now),
            request_id: facts.request_id.clone(),
            filename: facts.filename.clone(),
            source_sha256: facts.source_sha256.clone(),
            input_sha256: facts.input_sha256.clone(),
            policy: outcome.policy.clone(),
            policy_sha256: facts.policy_sha256.clone(),
            backend: outcome.backend,
            runtime,
            seed: outcome.seed,
            deterministic: outcome.deterministic,
            status: outcome.status,
            reason: outcome.reason,
            cause: outcome.cause,
            exit_code: outcome.exit_code,
            usage: outcome.usage,
            rules: outcome.violations.iter().map(|v| v.rule).collect(),
        }
    }
}

/// What [`verify`] found in a sound log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// How many records (lines) the log holds.
    pub records: usize,
}

/// Checks that every line of the log at `path` parses as an [`AuditRecord`] and that the
/// file ends with a whole line. An empty file is a sound, empty log.
pub fn verify(path: &Path) -> Result<Verified, AuditError> {
    let read_error = |source| AuditError::Read {
        path: path.to_owned(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(read_error)?);
    let mut line = Vec::new();
    let mut records = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(read_error)? == 0 {
            return Ok(Verified { records });
        }
        let number = records + 1;
        let Some(text) = line.strip_suffix(b"\n") else {
            return Err(AuditError::Truncated {
                path: path.to_owned(),
                line: number,
            });
        };
        serde_json::from_slice::<AuditRecord>(text).map_err(|err| AuditError::Invalid {
            path: path.to_owned(),
            line: number,
            message: err.to_string(),
        })?;
        records = number;
    }
}

/// SHA-256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> AuditRecord {
        let facts = RunFacts {
            request_id: Some(id.to_owned()),
            filename: "s.py".into(),
            source_sha256: sha256_hex(b"print(1)"),
            input_sha256: sha256_hex(b""),
            policy_sha256: "0".repeat(64),
            guest_hash: None,
            image_id: None,
        };
        AuditRecord::new(&facts, &Outcome::not_run(Status::Rejected, "default"))
    }

    #[test]
    fn records_round_trip_and_verify() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("opens");
        log.write(&record("a")).expect("writes");
        log.write(&record("b")).expect("writes");
        assert_eq!(verify(&path).expect("sound"), Verified { records: 2 });
        let text = std::fs::read_to_string(&path).expect("reads");
        let first: AuditRecord =
            serde_json::from_str(text.lines().next().expect("a line")).expect("a record");
        assert_eq!(first.request_id.as_deref(), Some("a"));
        assert_eq!(
            first.source_sha256,
            "d287bb7f9d15abdc5b6e98536263815744b6ef21c8f3c839fc434ca70d8efe99"
        );
    }

    #[test]
    fn a_failed_write_is_returned() {
        let log = AuditLog::open("/dev/full")
            .expect("opens")
            .with_fsync(Fsync::Never);
        let err = log.write(&record("a")).expect_err("the device is full");
        assert!(matches!(err, AuditError::Write { .. }), "{err:?}");
    }

    #[test]
    fn verify_names_the_bad_line_and_a_cut_record() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.jsonl");
        let line = serde_json::to_string(&record("a")).expect("json");
        std::fs::write(&path, format!("{line}\n{{\"time\": 1}}\n")).expect("writes");
        match verify(&path) {
            Err(AuditError::Invalid { line: 2, .. }) => {}
            other => panic!("expected line 2 invalid, got {other:?}"),
        }
        std::fs::write(&path, format!("{line}\n{}", &line[..line.len() / 2])).expect("writes");
        match verify(&path) {
            Err(AuditError::Truncated { line: 2, .. }) => {}
            other => panic!("expected line 2 cut short, got {other:?}"),
        }
        std::fs::write(&path, "").expect("writes");
        assert_eq!(verify(&path).expect("empty is sound").records, 0);
    }

    #[test]
    fn an_unwritable_log_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = AuditLog::open(dir.path()).expect_err("a directory is not a log");
        assert!(matches!(err, AuditError::Open { .. }), "{err:?}");
    }
}
