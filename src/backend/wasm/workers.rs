//! Wasm runs in worker processes: how `batch` and `serve` use every core.
//!
//! A run writes to pages of the guest's snapshot, and each first write to such a page is a
//! copy-on-write fault. When two runs execute at once in one process, they share one
//! address space, and every such fault makes the kernel interrupt the other core to flush
//! its TLB. Measured on 1,000 trivial runs on 2 cores: 2.6 s of CPU for one run at a time
//! in one process, 6.0 s for two at a time in one process (43 % of it in those
//! interrupts), and 2.4 s for two processes running one at a time each
//! (`docs/BENCHMARKS.md`). So a sandbox that runs many wasm strategies at once hands each
//! to a worker process that runs one at a time.
//!
//! A worker is the same program started with a hidden sub-command ([`WorkerCommand`]): it
//! loads the guest once, then serves runs one after another over its stdin and stdout
//! ([`serve`]). Each run still gets a fresh instance of the snapshot in the worker, under
//! the same limits; nothing but the job goes in and nothing but the ending comes out. A
//! worker that dies, misbehaves, or outlives the run's deadline by [`GRACE`] is killed,
//! the run is reported `unavailable` (cause `wasm-runtime`), and the next run starts a
//! new worker. A worker whose parent is gone reads the end of its stdin and exits.
//!
//! The frame, parent to worker: one JSON line ([`Header`]), then the source and the input
//! document, raw, of the lengths the header gives. Worker to parent: one JSON line
//! ([`Reply`]).

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::{WasmBackend, WasmError};
use crate::backend::{Backend as _, BackendError, Execution, Job};
use crate::outcome::Cause;
use crate::policy::{Limits, Policy, RunConfig};
use crate::validate::Inventory;

/// How long past the run's own deadline a worker may take to answer before it is killed.
pub const GRACE: Duration = Duration::from_secs(5);

/// The longest reply line read from a worker: the output caps' worst case, escaped, with
/// room for the rest of the reply.
fn max_reply_bytes(limits: &Limits) -> usize {
    let streams = limits.stdout_bytes.saturating_add(limits.stderr_bytes);
    usize::try_from(streams.saturating_mul(6).saturating_add(1 << 20)).unwrap_or(usize::MAX)
}

/// How to start a worker: a program and its arguments (for the command line, its own
/// executable and the hidden `wasm-worker` sub-command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

/// What the parent sends before the source and the input: borrowed from the job when it
/// is sent, owned when it is read.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header<'a> {
    filename: Cow<'a, str>,
    data_dir: Option<Cow<'a, Path>>,
    inventory: Option<Cow<'a, Inventory>>,
    limits: Cow<'a, Limits>,
    run: Cow<'a, RunConfig>,
    source_bytes: usize,
    input_bytes: usize,
}

/// What the worker answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reply {
    /// The run ended (however the strategy ended).
    Executed(Execution),
    /// The sandbox could not run it.
    Failed {
        /// Which part failed.
        cause: Cause,
        /// Why, with its causes.
        message: String,
    },
}

/// Serves runs on `input`/`output` with `backend` until `input` ends: the worker's side.
/// Returns `Err` only when the pipes fail; every run's failure is a [`Reply`].
pub fn serve(
    backend: &WasmBackend,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let header: Header<'static> = serde_json::from_str(&line)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))?;
        let mut source = vec![0; header.source_bytes];
        input.read_exact(&mut source)?;
        let mut document = vec![0; header.input_bytes];
        input.read_exact(&mut document)?;
        let reply = match String::from_utf8(source) {
            Ok(source) => {
                let policy = Policy {
                    limits: header.limits.into_owned(),
                    run: header.run.into_owned(),
                    ..Policy::default_profile()
                };
                let job = Job {
                    source: &source,
                    filename: &header.filename,
                    input: &document,
                    data_dir: header.data_dir.as_deref(),
                    inventory: header.inventory.as_deref(),
                };
                match runtime.block_on(backend.execute(&job, &policy)) {
                    Ok(execution) => Reply::Executed(execution),
                    Err(err) => Reply::Failed {
                        cause: err.cause(),
                        message: crate::sandbox::chain(&err),
                    },
                }
            }
            Err(_) => Reply::Failed {
                cause: Cause::WasmRuntime,
                message: "the worker was sent a source that is not UTF-8".to_owned(),
            },
        };
        serde_json::to_writer(&mut *output, &reply)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
}

/// One worker process, idle or running one job.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(command: &WorkerCommand) -> std::io::Result<Self> {
        let mut child = tokio::process::Command::new(&command.program)
            .args(&command.args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("the worker's pipes were not opened"));
        };
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// Sends one job and reads its reply.
    async fn call(&mut self, job: &Job<'_>, policy: &Policy) -> std::io::Result<Reply> {
        let header = Header {
            filename: Cow::Borrowed(job.filename),
            data_dir: job.data_dir.map(Cow::Borrowed),
            inventory: job.inventory.map(Cow::Borrowed),
            limits: Cow::Borrowed(&policy.limits),
            run: Cow::Borrowed(&policy.run),
            source_bytes: job.source.len(),
            input_bytes: job.input.len(),
        };
        let mut frame = serde_json::to_vec(&header)?;
        frame.push(b'\n');
        frame.extend_from_slice(job.source.as_bytes());
        frame.extend_from_slice(job.input);
        self.stdin.write_all(&frame).await?;
        self.stdin.flush().await?;
        let limit = max_reply_bytes(&policy.limits);
        let mut line = Vec::new();
        let read = (&mut self.stdout)
            .take(limit as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the worker ended without answering",
            ));
        }
        if line.last() != Some(&b'\n') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the worker's answer is longer than {limit} bytes"),
            ));
        }
        serde_json::from_slice(&line).map_err(std::io::Error::from)
    }
}

/// A set of worker processes running wasm jobs, at most `size` at once.
#[derive(Debug)]
pub struct WasmWorkers {
    command: WorkerCommand,
    idle: Mutex<Vec<IdleWorker>>,
    slots: tokio::sync::Semaphore,
}

/// A worker waiting for a job (a wrapper so that the set can be `Debug`).
struct IdleWorker(Worker);

impl std::fmt::Debug for IdleWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("pid", &self.0.child.id())
            .finish()
    }
}

impl WasmWorkers {
    /// Up to `size` workers (at least 1) started with `command` when first needed.
    pub fn new(command: WorkerCommand, size: usize) -> Self {
        Self {
            command,
            idle: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(size.max(1)),
        }
    }

    /// Runs `job` in a worker. A worker is given back only after a complete answer; one
    /// that failed, or whose run was dropped half-way, is killed.
    pub async fn execute(&self, job: &Job<'_>, policy: &Policy) -> Result<Execution, BackendError> {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.slots.acquire().await;
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut worker = match idle {
            Some(IdleWorker(worker)) => worker,
            None => Worker::spawn(&self.command).map_err(|err| {
                runtime_failure(format!("cannot start a wasm worker process: {err}"))
            })?,
        };
        let answer = tokio::time::timeout(
            policy.limits.wall_time.saturating_add(GRACE),
            worker.call(job, policy),
        )
        .await;
        let reply = match answer {
            Ok(Ok(reply)) => reply,
            Ok(Err(err)) => return Err(dead(worker, &err.to_string()).await),
            Err(_elapsed) => {
                let message = format!(
                    "it did not answer within the deadline plus {} s",
                    GRACE.as_secs()
                );
                return Err(dead(worker, &message).await);
            }
        };
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(IdleWorker(worker));
        match reply {
            Reply::Executed(execution) => Ok(execution),
            Reply::Failed { cause, message } => {
                Err(BackendError::Wasm(WasmError::Worker { cause, message }))
            }
        }
    }
}

/// Kills a worker that failed and says how it ended.
async fn dead(mut worker: Worker, what: &str) -> BackendError {
    let _ = worker.child.start_kill();
    let status = worker.child.wait().await;
    let ended = match status {
        Ok(status) => format!(" ({status})"),
        Err(_) => String::new(),
    };
    runtime_failure(format!("the wasm worker process failed: {what}{ended}"))
}

/// A worker that could not do its part: the run is `unavailable`, cause `wasm-runtime`.
fn runtime_failure(message: String) -> BackendError {
    BackendError::Wasm(WasmError::Worker {
        cause: Cause::WasmRuntime,
        message,
    })
}
