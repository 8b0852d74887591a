//! Many requests: JSON Lines read with a bounded line length, each request resolved into a
//! run (its files read, its profile chosen), run, and summed up. `stratbox batch` and
//! `stratbox serve` share all of it.
//!
//! A line that cannot be read as a request is not an error of the whole batch: it gets an
//! outcome of its own with status [`Status::Invalid`] and a message, and the others go on.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::audit::{AuditError, AuditLog, AuditRecord, RunFacts};
use crate::outcome::{Outcome, Status};
use crate::policy::{LooserLimit, Policy, PolicyError, units};
use crate::request::{BatchRequest, RequestError};
use crate::route::BackendKind;
use crate::sandbox::{Request, Sandbox};

/// Room for a request's JSON beyond its source and input: field names, quotes, an id, a
/// file name, and the escapes of an ordinary script.
pub const LINE_OVERHEAD_BYTES: u64 = 64 << 10;

/// The longest request line `policy` can ever accept: its source and input limits plus
/// [`LINE_OVERHEAD_BYTES`]. A longer line is `invalid` without being held in memory.
pub fn max_line_bytes(policy: &Policy) -> usize {
    let limits = &policy.limits;
    let bytes = limits
        .source_bytes
        .saturating_add(limits.input_bytes)
        .saturating_add(LINE_OVERHEAD_BYTES);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// One line of a JSON Lines stream, numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line within the bound, without its line ending.
    Text {
        /// The line number.
        number: u64,
        /// Its bytes (not yet checked to be UTF-8).
        bytes: Vec<u8>,
    },
    /// A line longer than the bound; only its length was kept.
    TooLong {
        /// The line number.
        number: u64,
        /// How long it was (at least this many bytes).
        bytes: u64,
    },
}

impl Line {
    /// The line number, from 1.
    pub fn number(&self) -> u64 {
        match self {
            Line::Text { number, .. } | Line::TooLong { number, .. } => *number,
        }
    }
}

/// Splits a byte stream into [`Line`]s, holding at most `max` bytes of one line: the rest
/// of a longer line is counted and dropped. Blank lines are skipped (their numbers still
/// count). Fed chunk by chunk, so the same splitter serves a file, stdin and an HTTP body.
#[derive(Debug)]
pub struct LineSplitter {
    max: usize,
    held: Vec<u8>,
    number: u64,
    /// Bytes of the current line when it is already past `max`.
    overlong: Option<u64>,
}

impl LineSplitter {
    /// A splitter that holds at most `max_line_bytes` of a line.
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max: max_line_bytes,
            held: Vec::new(),
            number: 0,
            overlong: None,
        }
    }

    /// Feeds the next chunk; complete lines are appended to `lines`.
    pub fn push(&mut self, mut chunk: &[u8], lines: &mut Vec<Line>) {
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            self.take(&chunk[..end]);
            self.end_line(lines);
            chunk = &chunk[end + 1..];
        }
        self.take(chunk);
    }

    /// Ends the stream: the last line, if it had no line ending.
    pub fn finish(mut self) -> Option<Line> {
        let mut lines = Vec::new();
        self.end_line(&mut lines);
        lines.pop()
    }

    fn take(&mut self, piece: &[u8]) {
        if let Some(seen) = &mut self.overlong {
            *seen += piece.len() as u64;
        } else if self.held.len() + piece.len() > self.max {
            self.overlong = Some((self.held.len() + piece.len()) as u64);
            self.held = Vec::new();
        } else {
            self.held.extend_from_slice(piece);
        }
    }

    fn end_line(&mut self, lines: &mut Vec<Line>) {
        self.number += 1;
        let number = self.number;
        if let Some(bytes) = self.overlong.take() {
            lines.push(Line::TooLong { number, bytes });
            return;
        }
        let mut bytes = std::mem::take(&mut self.held);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            lines.push(Line::Text { number, bytes });
        }
    }
}

/// A request as read, or why it could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A request whose fields are consistent (files not read yet).
    Request(BatchRequest),
    /// Not a request: the outcome is `invalid` with this message.
    Invalid {
        /// The request's `id` when it could still be read.
        id: Option<String>,
        /// What is wrong.
        message: String,
    },
}

impl Parsed {
    /// Reads one line: UTF-8, JSON, the request's fields and their rules.
    pub fn from_line(line: &Line, max_line_bytes: usize) -> Self {
        match line {
            Line::TooLong { bytes, .. } => Parsed::Invalid {
                id: None,
                message: format!(
                    "the line is {bytes} bytes or more, longer than the {} a request may take \
                     (the profile's source and input limits plus {}); give large inputs as \
                     `input_path`",
                    units::format_size(max_line_bytes as u64),
                    units::format_size(LINE_OVERHEAD_BYTES)
                ),
            },
            Line::Text { bytes, .. } => Self::from_bytes(bytes),
        }
    }

    /// Reads one request from its JSON bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                return Parsed::Invalid {
                    id: None,
                    message: format!(
                        "the request is not valid UTF-8 (byte {} of the line)",
                        err.valid_up_to() + 1
                    ),
                };
            }
        };
        match serde_json::from_str::<BatchRequest>(text) {
            Ok(request) => match request.check() {
                Ok(()) => Parsed::Request(request),
                Err(err) => Parsed::Invalid {
                    id: request.id,
                    message: err.to_string(),
                },
            },
            Err(err) => Parsed::Invalid {
                // An id is echoed even when another field is wrong, so the caller can tell
                // which request failed.
                id: serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|value| value.get("id")?.as_str().map(str::to_owned)),
                message: format!("not a valid request: {err}"),
            },
        }
    }
}

/// Which host files a request may name in `path` and `input_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileAccess {
    /// Any file the process can read; relative paths from the working directory
    /// (`stratbox batch`: the caller owns the machine).
    Host,
    /// Only files that resolve, symbolic links included, inside this directory (already
    /// canonical: build it with [`FileAccess::within`]); relative paths from it.
    Within(PathBuf),
    /// None: source and input must be inline (`stratbox serve` without `--files-root`).
    Refused,
}

impl FileAccess {
    /// Confines requests to `root`, which is resolved now (it must exist).
    pub fn within(root: &Path) -> std::io::Result<Self> {
        let root = root.canonicalize()?;
        if !root.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(FileAccess::Within(root))
    }
}

/// Which profiles a request may name in `profile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileChoice {
    /// Any built-in name or profile file (`stratbox batch`).
    Any,
    /// Built-in names only, and only a profile no looser than the default one, which is
    /// the ceiling ([`Policy::within`]; `stratbox serve`); a request's `limits` may only
    /// tighten the ceiling's ([`crate::policy::RequestLimits::within`]).
    Ceiling,
}

/// Why a well-formed request cannot be run as it stands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The request's own fields are inconsistent.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The request names a host file and files are refused.
    #[error(
        "`{field}` names a host file, and this server reads none: send the {what} inline \
         (start the server with --files-root DIR to allow files under DIR)"
    )]
    FilesRefused {
        /// `path` or `input_path`.
        field: &'static str,
        /// `source` or `input`.
        what: &'static str,
    },
    /// The file resolves outside the files root.
    #[error("`{field}` {} is outside the files root", path.display())]
    OutsideRoot {
        /// `path` or `input_path`.
        field: &'static str,
        /// The path as given.
        path: PathBuf,
    },
    /// The file cannot be read.
    #[error("cannot read `{field}` {}", path.display())]
    Read {
        /// `path` or `input_path`.
        field: &'static str,
        /// The path as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input is larger than the profile's input limit.
    #[error("the input is larger than the {} that limits.input allows", units::format_size(*limit))]
    InputTooLarge {
        /// `limits.input` in bytes.
        limit: u64,
    },
    /// The named profile cannot be loaded.
    #[error(transparent)]
    Profile(#[from] PolicyError),
    /// The named profile is a path, and only built-in names are accepted.
    #[error("`profile` must name a built-in profile here, not a file: {0}")]
    ProfilePath(String),
    /// The named profile is looser than the ceiling.
    #[error("{0}")]
    AboveCeiling(String),
    /// A key of the request's `limits` is looser than the ceiling.
    #[error(transparent)]
    LimitAboveCeiling(#[from] LooserLimit),
}

/// A request with its files read and its policy chosen: ready to run.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The request's `id`.
    pub id: Option<String>,
    /// The source bytes (at most one byte past `limits.source`, so the run rejects it).
    pub source: Vec<u8>,
    /// The name diagnostics show.
    pub filename: String,
    /// The strategy's stdin.
    pub input: Vec<u8>,
    /// A forced backend, if any.
    pub backend: Option<BackendKind>,
    /// The policy it runs under.
    pub policy: Arc<Policy>,
}

impl Resolved {
    /// The request the [`Sandbox`] runs.
    pub fn request(&self) -> Request<'_> {
        Request {
            input: &self.input,
            backend: self.backend,
            ..Request::new(&self.source, &self.filename)
        }
    }
}

/// Turns requests into runs: reads the files they name (as [`FileAccess`] allows) and
/// picks their policy (as [`ProfileChoice`] allows). Loaded profiles are kept.
#[derive(Debug)]
pub struct Resolver {
    default: Arc<Policy>,
    files: FileAccess,
    profiles: ProfileChoice,
    loaded: Mutex<HashMap<String, Arc<Policy>>>,
    /// Where every run is recorded, if anywhere.
    audit: Option<AuditLog>,
    /// Records that could not be written, and the first error.
    audit_failures: Mutex<(u64, Option<AuditError>)>,
}

impl Resolver {
    /// A resolver whose requests run under `default` unless they name a profile.
    pub fn new(default: Policy, files: FileAccess, profiles: ProfileChoice) -> Self {
        Self {
            default: Arc::new(default),
            files,
            profiles,
            loaded: Mutex::new(HashMap::new()),
            audit: None,
            audit_failures: Mutex::new((0, None)),
        }
    }

    /// Records every run this resolver starts in `log` (an `invalid` request runs nothing
    /// and leaves no record). A record that cannot be written is logged as an error and
    /// counted ([`Resolver::audit_failures`]); the run's outcome is still returned.
    #[must_use]
    pub fn with_audit(mut self, log: AuditLog) -> Self {
        self.audit = Some(log);
        self
    }

    /// How many audit records could not be written, and the first error.
    pub fn audit_failures(&self) -> (u64, Option<String>) {
        let failures = self
            .audit_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        (
            failures.0,
            failures.1.as_ref().map(|err| crate::sandbox::chain(err)),
        )
    }

    /// Runs a resolved request and records it in the audit log, if there is one.
    pub async fn run_resolved(&self, sandbox: &Sandbox, resolved: &Resolved) -> Outcome {
        let request = resolved.request();
        let outcome = sandbox
            .run(&request, &resolved.policy)
            .await
            .with_id(resolved.id.clone());
        if let Some(log) = &self.audit {
            let mut facts = RunFacts::new(sandbox, &request, &resolved.policy);
            facts.request_id.clone_from(&outcome.id);
            if let Err(err) = log.write(&AuditRecord::new(&facts, &outcome)) {
                tracing::error!(
                    log = %log.path().display(),
                    error = %crate::sandbox::chain(&err),
                    "an audit record was not written"
                );
                let mut failures = self
                    .audit_failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                failures.0 += 1;
                failures.1.get_or_insert(err);
            }
        }
        outcome
    }

    /// The policy of requests that name none.
    pub fn default_policy(&self) -> &Policy {
        &self.default
    }

    /// The policy a request names, or the default one.
    pub fn policy(&self, profile: Option<&str>) -> Result<Arc<Policy>, ResolveError> {
        let Some(name) = profile else {
            return Ok(Arc::clone(&self.default));
        };
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(policy) = loaded.get(name) {
            return Ok(Arc::clone(policy));
        }
        let policy = match self.profiles {
            ProfileChoice::Any => Policy::load(name)?,
            ProfileChoice::Ceiling => {
                if name.contains('/') || name.ends_with(".toml") {
                    return Err(ResolveError::ProfilePath(name.to_owned()));
                }
                let policy = Policy::load(name)?;
                policy
                    .within(&self.default)
                    .map_err(ResolveError::AboveCeiling)?;
                policy
            }
        };
        let policy = Arc::new(policy);
        loaded.insert(name.to_owned(), Arc::clone(&policy));
        Ok(policy)
    }

    /// Resolves a request: its policy (the profile it names with its `limits` set over it),
    /// then its source and input.
    pub fn resolve(&self, request: BatchRequest) -> Result<Resolved, ResolveError> {
        request.check()?;
        let mut policy = self.policy(request.profile.as_deref())?;
        if let Some(limits) = request.limits.as_ref().filter(|limits| !limits.is_empty()) {
            match self.profiles {
                ProfileChoice::Any => {}
                ProfileChoice::Ceiling => limits.within(&self.default)?,
            }
            policy = Arc::new(Policy::clone(&policy).with_request_limits(limits)?);
        }
        let limits = &policy.limits;
        let (source, default_name) = match (request.source, &request.path) {
            (Some(source), _) => (source.into_bytes(), "<request>".to_owned()),
            (None, Some(path)) => {
                // One byte past the limit, so that the run rejects it as too large.
                let bytes = self.read("path", "source", path, limits.source_bytes)?;
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string());
                (bytes, name)
            }
            (None, None) => return Err(RequestError::NoSource.into()),
        };
        let input = match (&request.input, &request.input_path) {
            (Some(input), _) => input.to_bytes(),
            (None, Some(path)) => self.read("input_path", "input", path, limits.input_bytes)?,
            (None, None) => Vec::new(),
        };
        if input.len() as u64 > limits.input_bytes {
            return Err(ResolveError::InputTooLarge {
                limit: limits.input_bytes,
            });
        }
        Ok(Resolved {
            id: request.id,
            source,
            filename: request.filename.unwrap_or(default_name),
            input,
            backend: request.backend.forced(),
            policy,
        })
    }

    /// Reads at most `limit + 1` bytes of a regular file the request names.
    fn read(
        &self,
        field: &'static str,
        what: &'static str,
        path: &Path,
        limit: u64,
    ) -> Result<Vec<u8>, ResolveError> {
        let failed = |source| ResolveError::Read {
            field,
            path: path.to_owned(),
            source,
        };
        let file = match &self.files {
            FileAccess::Refused => return Err(ResolveError::FilesRefused { field, what }),
            FileAccess::Host => File::open(path).map_err(failed)?,
            FileAccess::Within(root) => {
                // Resolved with every symbolic link followed, then opened without following
                // one more: a link swapped in after the check is refused, not followed.
                let resolved = root.join(path).canonicalize().map_err(failed)?;
                if !resolved.starts_with(root) {
                    return Err(ResolveError::OutsideRoot {
                        field,
                        path: path.to_owned(),
                    });
                }
                open_no_follow(&resolved).map_err(failed)?
            }
        };
        // Only regular files: a FIFO or a device could block or never end.
        let meta = file.metadata().map_err(failed)?;
        if !meta.is_file() {
            return Err(failed(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        let mut bytes = Vec::new();
        file.take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(failed)?;
        Ok(bytes)
    }

    /// Runs one parsed request. `line` is its line number in a batch: a request without
    /// an `id` gets it as its id.
    pub async fn run(&self, sandbox: &Sandbox, parsed: Parsed, line: Option<u64>) -> Outcome {
        let line_id = || line.map(|number| number.to_string());
        let (id, resolved) = match parsed {
            Parsed::Invalid { id, message } => {
                return Outcome::invalid(&self.default.name, message).with_id(id.or_else(line_id));
            }
            Parsed::Request(request) => {
                let id = request.id.clone().or_else(line_id);
                (id, self.resolve(request))
            }
        };
        match resolved {
            Ok(resolved) => {
                let resolved = Resolved { id, ..resolved };
                self.run_resolved(sandbox, &resolved).await
            }
            Err(err) => {
                Outcome::invalid(&self.default.name, crate::sandbox::chain(&err)).with_id(id)
            }
        }
    }
}

/// Opens a file for reading without following a symbolic link in its last component and
/// without blocking on a FIFO.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Counts of outcomes by status and reason, and their wall times: the end-of-batch summary.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    counts: BTreeMap<String, u64>,
    walls_ms: Vec<f64>,
    exit_code: u8,
}

impl Summary {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        let key = match (outcome.status, outcome.reason, outcome.cause) {
            (Status::Killed, Some(reason), _) => format!("killed ({})", reason.as_str()),
            (Status::Unavailable, _, Some(cause)) => format!("unavailable ({cause})"),
            (status, _, _) => status.as_str().to_owned(),
        };
        *self.counts.entry(key).or_default() += 1;
        if outcome.backend.is_some() {
            self.walls_ms.push(outcome.usage.wall_ms);
        }
        self.exit_code = self.exit_code.max(outcome.exit_code());
    }

    /// How many outcomes were counted.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The exit code of the batch: 0 when every request ran and was `ok`, else the largest
    /// code of its outcomes (see [`Status::exit_code`]).
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }

    /// The `p`-th percentile (0–100, nearest rank) of the wall times of runs that ran.
    pub fn wall_percentile_ms(&self, p: f64) -> Option<f64> {
        let mut walls = self.walls_ms.clone();
        walls.sort_by(f64::total_cmp);
        let last = walls.len().checked_sub(1)?;
        let rank = ((p / 100.0) * walls.len() as f64).ceil() as usize;
        walls.get(rank.saturating_sub(1).min(last)).copied()
    }

    /// One line for people, e.g. `stratbox: 1000 requests · 998 ok, 2 invalid · wall p50
    /// 2.1 ms, p95 4.0 ms`.
    pub fn render(&self) -> String {
        let counts = self
            .counts
            .iter()
            .map(|(key, count)| format!("{count} {key}"))
            .collect::<Vec<_>>()
            .join(", ");
        let total = self.total();
        let mut line = format!(
            "stratbox: {total} request{} · {}",
            if total == 1 { "" } else { "s" },
            if counts.is_empty() { "none" } else { &counts }
        );
        if let (Some(p50), Some(p95)) =
            (self.wall_percentile_ms(50.0), self.wall_percentile_ms(95.0))
        {
            line.push_str(&format!(" · wall p50 {p50:.1} ms, p95 {p95:.1} ms"));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<Line> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut lines);
        }
        lines.extend(splitter.finish());
        lines
    }

    fn text(number: u64, bytes: &[u8]) -> Line {
        Line::Text {
            number,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn lines_are_split_across_chunks_and_blank_ones_skipped() {
        assert_eq!(
            split(100, &[b"{\"a\"", b":1}\r\n\n  \n{}", b"\n{\"b\":2}"]),
            vec![text(1, b"{\"a\":1}"), text(4, b"{}"), text(5, b"{\"b\":2}")]
        );
    }

    #[test]
    fn an_overlong_line_is_counted_not_held() {
        let long = vec![b'x'; 50];
        let lines = split(10, &[b"{}\n", &long, &long, b"\n{}\n"]);
        assert_eq!(
            lines,
            vec![
                text(1, b"{}"),
                Line::TooLong {
                    number: 2,
                    bytes: 100
                },
                text(3, b"{}")
            ]
        );
    }

    #[test]
    fn bad_lines_say_why_and_keep_their_id() {
        let invalid = |bytes: &[u8]| match Parsed::from_bytes(bytes) {
            Parsed::Invalid { id, message } => (id, message),
            Parsed::Request(request) => panic!("parsed: {request:?}"),
        };
        let (id, message) = invalid(br#"{"id": "a", "source": "x", "sorce": 1}"#);
        assert_eq!(id.as_deref(), Some("a"));
        assert!(message.contains("unknown field `sorce`"), "{message}");
        let (_, message) = invalid(b"{\"source\": \"\xff\"}");
        assert!(message.contains("not valid UTF-8 (byte 13"), "{message}");
        let (id, message) = invalid(br#"{"id": "b"}"#);
        assert_eq!(id.as_deref(), Some("b"));
        assert_eq!(message, "a request needs `source` or `path`");
        let (_, message) = invalid(b"not json");
        assert!(
            message.starts_with("not a valid request: expected"),
            "{message}"
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut summary = Summary::default();
        for wall in 1..=100 {
            let mut outcome = Outcome::not_run(Status::Ok, "default");
            outcome.backend = Some(BackendKind::Wasm);
            outcome.usage.wall_ms = f64::from(wall);
            summary.add(&outcome);
        }
        summary.add(&Outcome::invalid("default", "bad"));
        assert_eq!(summary.wall_percentile_ms(50.0), Some(50.0));
        assert_eq!(summary.wall_percentile_ms(95.0), Some(95.0));
        assert_eq!(summary.exit_code(), 2);
        assert_eq!(
            summary.render(),
            "stratbox: 101 requests · 1 invalid, 100 ok · wall p50 50.0 ms, p95 95.0 ms"
        );
    }
}
