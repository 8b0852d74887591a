//! `stratbox bench --throughput SECONDS`: how many trivial runs per second fit on all cores,
//! each way of running them given the same time and the same number at once.
//!
//! - `native-isolated`: `python3 -I -S trivial.py` processes (by the interpreter's real
//!   path), `jobs` at once: the baseline.
//! - `wasm`: the library's [`Sandbox`] in this process, `jobs` runs at once on a runtime
//!   with a worker per core (call [`run`] from one).
//! - `batch`: one `stratbox batch -` process fed trivial requests on stdin for the whole
//!   time, at most [`BATCH_WINDOW_PER_JOB`] × `jobs` requests ahead of its outcomes; its
//!   start and the last runs after the deadline count in its time.
//! - `cli`: `stratbox run trivial.py` processes, `jobs` at once.
//!
//! Every run must end `ok` (exit code 0, or an `ok` outcome line): anything else is a
//! [`BenchError::Failed`]. A mode's window starts after one unmeasured run, and a mode's
//! rate is its runs over the time from its first start to its last end.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::Semaphore;

use super::python::Interpreter;
use super::{Availability, BenchError, ISOLATED_FLAGS, WORKLOADS, Workload};
use crate::outcome::Status;
use crate::policy::Policy;
use crate::route::BackendKind;
use crate::sandbox::{Request, Sandbox, SandboxBuilder};

/// Requests `batch` may have in hand (read, running or written) per job: enough to keep
/// every job busy, few enough that the runs after the deadline stay few.
pub const BATCH_WINDOW_PER_JOB: usize = 4;

/// One way of running the trivial workload many times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThroughputMode {
    /// `python3 -I -S` processes: the baseline.
    NativeIsolated,
    /// The library's `Sandbox`, in-process.
    Wasm,
    /// One `stratbox batch` process.
    Batch,
    /// One `stratbox run` process per run.
    Cli,
}

impl ThroughputMode {
    /// Every mode, in table (and measuring) order.
    pub const ALL: [ThroughputMode; 4] = [
        ThroughputMode::NativeIsolated,
        ThroughputMode::Wasm,
        ThroughputMode::Batch,
        ThroughputMode::Cli,
    ];

    /// The name in the table and the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ThroughputMode::NativeIsolated => "native-isolated",
            ThroughputMode::Wasm => "wasm",
            ThroughputMode::Batch => "batch",
            ThroughputMode::Cli => "cli",
        }
    }

    /// What one run is, for people.
    pub fn describe(self) -> &'static str {
        match self {
            ThroughputMode::NativeIsolated => "a python3 -I -S process per run",
            ThroughputMode::Wasm => "the library's Sandbox, in-process",
            ThroughputMode::Batch => "one stratbox batch process, requests on stdin",
            ThroughputMode::Cli => "a stratbox run process per run",
        }
    }
}

impl std::fmt::Display for ThroughputMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `--throughput` is asked to do.
#[derive(Debug, Clone)]
pub struct ThroughputConfig {
    /// How long each mode keeps starting runs.
    pub duration: Duration,
    /// Runs at once in every mode. Default: the number of cores.
    pub jobs: usize,
    /// The policy of the sandboxed runs (written as a profile file for the processes).
    pub policy: Policy,
    /// The `stratbox` executable of `batch` and `cli`. Default: the current executable.
    pub exe: Option<PathBuf>,
    /// How the in-process sandbox is set up (its pool size is set to `jobs`).
    pub sandbox: SandboxBuilder,
}

impl ThroughputConfig {
    /// `duration` per mode, as many runs at once as there are cores, under `policy`.
    pub fn new(duration: Duration, policy: Policy) -> Self {
        Self {
            duration,
            jobs: std::thread::available_parallelism().map_or(1, usize::from),
            policy,
            exe: None,
            sandbox: Sandbox::builder(),
        }
    }
}

/// One mode's count.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    /// The mode.
    pub mode: ThroughputMode,
    /// Whether it was measured.
    pub availability: Availability,
    /// Runs that ended `ok`.
    pub runs: u64,
    /// From the first run's start to the last one's end.
    pub seconds: f64,
    /// `runs / seconds`.
    pub runs_per_second: Option<f64>,
    /// This mode's rate over `native-isolated`'s.
    pub ratio_to_native: Option<f64>,
}

/// Everything one `--throughput` run counted.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputReport {
    /// Seconds each mode kept starting runs.
    pub duration_seconds: f64,
    /// Runs at once.
    pub jobs: usize,
    /// The baseline's interpreter.
    pub native_python: Option<String>,
    /// One row per mode, in [`ThroughputMode::ALL`] order.
    pub rows: Vec<ThroughputRow>,
}

/// Counts runs per second of the trivial workload in every [`ThroughputMode`].
/// `progress` is called as each mode starts. Call it on a multi-threaded runtime with a
/// worker per core, or `wasm` measures one core.
pub async fn run(
    config: &ThroughputConfig,
    mut progress: impl FnMut(ThroughputMode),
) -> Result<ThroughputReport, BenchError> {
    let workload = &WORKLOADS[0];
    let jobs = config.jobs.max(1);
    let files = tempfile::Builder::new()
        .prefix("stratbox-throughput-")
        .tempdir()
        .map_err(BenchError::TempFiles)?;
    let script = files.path().join("trivial.py");
    std::fs::write(&script, workload.source).map_err(BenchError::TempFiles)?;
    let profile = files.path().join("bench.toml");
    std::fs::write(&profile, config.policy.to_toml()?).map_err(BenchError::TempFiles)?;
    let python = Interpreter::resolve(Path::new("python3"));
    let exe = match &config.exe {
        Some(exe) => Ok(exe.clone()),
        None => std::env::current_exe()
            .map_err(|err| format!("cannot find the current executable: {err}")),
    };

    let mut rows = Vec::new();
    for mode in ThroughputMode::ALL {
        progress(mode);
        let counted = match mode {
            ThroughputMode::NativeIsolated => match &python {
                Ok(python) => {
                    let mut args: Vec<&std::ffi::OsStr> =
                        ISOLATED_FLAGS.iter().map(std::ffi::OsStr::new).collect();
                    args.push(script.as_os_str());
                    Ok(processes(mode, &python.path, &args, jobs, config.duration).await?)
                }
                Err(reason) => Err(reason.clone()),
            },
            ThroughputMode::Wasm => in_process(config, workload, jobs).await?,
            ThroughputMode::Batch => match &exe {
                Ok(exe) => batch(exe, &profile, &script, jobs, config.duration).await?,
                Err(reason) => Err(reason.clone()),
            },
            ThroughputMode::Cli => match &exe {
                Ok(exe) => {
                    let args = [
                        "run".as_ref(),
                        script.as_os_str(),
                        "--backend".as_ref(),
                        "wasm".as_ref(),
                        "--profile".as_ref(),
                        profile.as_os_str(),
                    ];
                    Ok(processes(mode, exe, &args, jobs, config.duration).await?)
                }
                Err(reason) => Err(reason.clone()),
            },
        };
        rows.push(match counted {
            Ok((runs, elapsed)) => ThroughputRow {
                mode,
                availability: Availability::Available,
                runs,
                seconds: elapsed.as_secs_f64(),
                runs_per_second: Some(runs as f64 / elapsed.as_secs_f64().max(1e-9)),
                ratio_to_native: None,
            },
            Err(reason) => ThroughputRow {
                mode,
                availability: Availability::Unavailable(reason),
                runs: 0,
                seconds: 0.0,
                runs_per_second: None,
                ratio_to_native: None,
            },
        });
    }
    let native = rows
        .iter()
        .find(|row| row.mode == ThroughputMode::NativeIsolated)
        .and_then(|row| row.runs_per_second);
    for row in &mut rows {
        row.ratio_to_native = match (row.runs_per_second, native) {
            (Some(rate), Some(native)) if native > 0.0 => Some(rate / native),
            _ => None,
        };
    }
    Ok(ThroughputReport {
        duration_seconds: config.duration.as_secs_f64(),
        jobs,
        native_python: python.ok().map(|p| format!("{} -I -S", p.describe())),
        rows,
    })
}

/// Runs and time of a mode, or why it cannot run here.
type Counted = Result<(u64, Duration), String>;

/// `jobs` tasks running `workload` through one in-process sandbox until `duration` has
/// passed after one unmeasured run.
async fn in_process(
    config: &ThroughputConfig,
    workload: &'static Workload,
    jobs: usize,
) -> Result<Counted, BenchError> {
    let sandbox = Arc::new(
        config
            .sandbox
            .clone()
            .pool_size(u32::try_from(jobs).unwrap_or(u32::MAX))
            .build(),
    );
    let policy = Arc::new(config.policy.clone());
    if let Err(reason) = run_in_process(&sandbox, &policy, workload).await? {
        return Ok(Err(reason));
    }
    let counted = for_a_while(jobs, config.duration, move || {
        let (sandbox, policy) = (Arc::clone(&sandbox), Arc::clone(&policy));
        async move {
            run_in_process(&sandbox, &policy, workload)
                .await?
                .map_err(|reason| {
                    failed(ThroughputMode::Wasm, "unavailable", reason, String::new())
                })
        }
    })
    .await?;
    Ok(Ok(counted))
}

/// `jobs` workers each calling `once` again as soon as it returned, until `duration` has
/// passed (each calls it at least once); the calls and the time from the first start to
/// the last end. The first error ends the count.
async fn for_a_while<F, Run>(
    jobs: usize,
    duration: Duration,
    once: F,
) -> Result<(u64, Duration), BenchError>
where
    F: Fn() -> Run + Clone + Send + 'static,
    Run: std::future::Future<Output = Result<(), BenchError>> + Send,
{
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..jobs)
        .map(|_| {
            let once = once.clone();
            tokio::spawn(async move {
                let mut runs = 0u64;
                loop {
                    once().await?;
                    runs += 1;
                    if Instant::now() >= deadline {
                        return Ok::<_, BenchError>(runs);
                    }
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker
            .await
            .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))?;
    }
    Ok((total, started.elapsed()))
}

/// One in-process run: `Ok(Err(reason))` when the sandbox is unavailable.
async fn run_in_process(
    sandbox: &Sandbox,
    policy: &Policy,
    workload: &'static Workload,
) -> Result<Result<(), String>, BenchError> {
    let request = Request {
        backend: Some(BackendKind::Wasm),
        input: workload.input,
        ..Request::new(workload.source, workload.name)
    };
    let outcome = sandbox.run(&request, policy).await;
    match outcome.status {
        Status::Ok => Ok(Ok(())),
        Status::Unavailable => Ok(Err(outcome
            .message
            .unwrap_or_else(|| "the sandbox could not run".into()))),
        Status::Error | Status::Killed | Status::Rejected | Status::Invalid => Err(failed(
            ThroughputMode::Wasm,
            outcome.status.as_str(),
            outcome
                .reason
                .map(|reason| reason.as_str().to_owned())
                .or(outcome.message)
                .unwrap_or_default(),
            outcome.stderr,
        )),
    }
}

/// A run of `mode` that did not end `ok`.
fn failed(mode: ThroughputMode, status: &str, detail: String, stderr: String) -> BenchError {
    BenchError::ThroughputFailed {
        mode,
        status: status.to_owned(),
        detail,
        stderr,
    }
}

/// `jobs` loops each starting `program args` (stdin empty) as soon as the last one exited,
/// until `duration` has passed after one unmeasured run; every run must exit 0.
async fn processes(
    mode: ThroughputMode,
    program: &Path,
    args: &[&std::ffi::OsStr],
    jobs: usize,
    duration: Duration,
) -> Result<(u64, Duration), BenchError> {
    let args: Arc<Vec<std::ffi::OsString>> =
        Arc::new(args.iter().map(|arg| (*arg).to_owned()).collect());
    let program = Arc::new(program.to_owned());
    run_process(mode, &program, &args).await?;
    for_a_while(jobs, duration, move || {
        let (program, args) = (Arc::clone(&program), Arc::clone(&args));
        async move { run_process(mode, &program, &args).await }
    })
    .await
}

/// One process run, which must exit 0.
async fn run_process(
    mode: ThroughputMode,
    program: &Path,
    args: &[std::ffi::OsString],
) -> Result<(), BenchError> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| BenchError::Spawn {
            program: program.display().to_string(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(failed(
        mode,
        &output.status.to_string(),
        String::new(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    ))
}

/// One `stratbox batch - --jobs J` fed `script` as requests until `duration` has passed,
/// at most `BATCH_WINDOW_PER_JOB × jobs` ahead of the outcomes read back; every outcome
/// must be `ok` and the process must exit 0. Its time runs from its start to its exit.
async fn batch(
    exe: &Path,
    profile: &Path,
    script: &Path,
    jobs: usize,
    duration: Duration,
) -> Result<Counted, BenchError> {
    let batch_failed = |status: String, detail: String, stderr: String| {
        failed(ThroughputMode::Batch, &status, detail, stderr)
    };
    // One unmeasured run, which also fills the compiled-guest cache.
    let warm_up: [std::ffi::OsString; 6] = [
        "run".into(),
        script.into(),
        "--backend".into(),
        "wasm".into(),
        "--profile".into(),
        profile.into(),
    ];
    run_process(ThroughputMode::Batch, exe, &warm_up).await?;
    let source = std::fs::read_to_string(script).map_err(BenchError::TempFiles)?;

    let mut line = serde_json::to_vec(&serde_json::json!({
        "source": source,
        "backend": "wasm",
    }))
    .unwrap_or_default();
    line.push(b'\n');
    let started = Instant::now();
    let deadline = started + duration;
    let mut child = tokio::process::Command::new(exe)
        .args(["batch", "-", "--jobs", &jobs.to_string(), "--profile"])
        .arg(profile)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| BenchError::Spawn {
            program: exe.display().to_string(),
            source,
        })?;
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(batch_failed(
            "no pipes".into(),
            "spawned without pipes".into(),
            String::new(),
        ));
    };
    let window = Arc::new(Semaphore::new(BATCH_WINDOW_PER_JOB * jobs));
    let writer = {
        let window = Arc::clone(&window);
        tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let permit = if sent < jobs as u64 {
                    window.acquire().await.ok()
                } else {
                    tokio::time::timeout_at(
                        tokio::time::Instant::from_std(deadline),
                        window.acquire(),
                    )
                    .await
                    .ok()
                    .and_then(Result::ok)
                };
                let Some(permit) = permit else { break };
                permit.forget();
                if stdin.write_all(&line).await.is_err() {
                    break;
                }
                sent += 1;
            }
            // Closing stdin ends the batch once it has run what it read.
            drop(stdin);
            sent
        })
    };
    let errors = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text).await;
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut lines = BufReader::new(stdout).lines();
    let mut runs = 0u64;
    let mut bad = None;
    while let Ok(Some(text)) = lines.next_line().await {
        window.add_permits(1);
        let ok = serde_json::from_str::<serde_json::Value>(&text)
            .is_ok_and(|outcome| outcome["status"] == "ok");
        if ok {
            runs += 1;
        } else if bad.is_none() {
            bad = Some(text);
        }
    }
    let status = child.wait().await.map_err(|source| BenchError::Spawn {
        program: exe.display().to_string(),
        source,
    })?;
    let elapsed = started.elapsed();
    let sent = writer
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
    let stderr = errors.await.unwrap_or_default();
    if let Some(outcome) = bad {
        return Err(batch_failed("not ok".into(), outcome, stderr));
    }
    if !status.success() || runs != sent {
        return Err(batch_failed(
            status.to_string(),
            format!("{runs} ok outcomes for {sent} requests"),
            stderr,
        ));
    }
    Ok(Ok((runs, elapsed)))
}

impl ThroughputReport {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "stratbox bench --throughput: trivial runs per second, {} at once, {} s per mode",
            self.jobs, self.duration_seconds
        );
        let _ = writeln!(
            out,
            "native-isolated: {}",
            self.native_python.as_deref().unwrap_or("unavailable")
        );
        let _ = writeln!(
            out,
            "  {:<16} {:>8} {:>9} {:>9} {:>9}  how",
            "mode", "runs", "seconds", "runs/s", "× native"
        );
        for row in &self.rows {
            match (&row.availability, row.runs_per_second) {
                (Availability::Available, Some(rate)) => {
                    let _ = writeln!(
                        out,
                        "  {:<16} {:>8} {:>9.2} {:>9.1} {:>9}  {}",
                        row.mode.as_str(),
                        row.runs,
                        row.seconds,
                        rate,
                        row.ratio_to_native
                            .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}")),
                        row.mode.describe()
                    );
                }
                (Availability::Unavailable(reason), _) => {
                    let _ = writeln!(out, "  {:<16} unavailable: {reason}", row.mode.as_str());
                }
                (Availability::Available, None) => {
                    let _ = writeln!(out, "  {:<16} no runs", row.mode.as_str());
                }
            }
        }
        out
    }
}
