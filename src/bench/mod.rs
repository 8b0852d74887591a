//! `stratbox bench`: what isolation costs, measured side by side with native Python.
//!
//! A fixed set of [`WORKLOADS`] runs through every [`Mode`] in the same run, interleaved:
//! for run `i`, every mode runs each workload once, in the order of row `i` of a
//! carry-over balanced design (each mode follows every other equally often), so that
//! machine drift (other work, thermal limits, page cache) and what one mode leaves behind
//! for the next affect all modes alike. Each cell then reports p50, p95 and min, and the
//! ratio of its p50 to native's p50.
//!
//! Every measured run must end `ok`: a failed sample is a [`BenchError::Failed`] carrying
//! the strategy's stderr, never a number. A mode that cannot run here (no engine, image or
//! guest missing, no `python3`) is listed as unavailable with its reason.
//!
//! Native interpreters are called by their real paths ([`python`]), never through a
//! launcher. The `serve` modes post each workload to a real `stratbox serve` ([`http`]).
//! [`throughput`] counts runs per second on all cores; [`load`] drives a server with many
//! clients at once.

pub mod chart;
pub mod http;
pub mod load;
pub mod python;
pub mod throughput;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

use crate::outcome::Status;
use crate::policy::{Metering, Policy, PolicyError, units};
use crate::route::BackendKind;
use crate::sandbox::{Request, Sandbox, SandboxBuilder};

use self::http::ServeProcess;
use self::python::Interpreter;

/// One strategy the bench runs, compiled into the binary so the bench works from any
/// directory.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Short name, used in the table, the JSON and the chart.
    pub name: &'static str,
    /// What it exercises.
    pub description: &'static str,
    /// The Python source.
    pub source: &'static str,
    /// The document on its stdin.
    pub input: &'static [u8],
    /// Imports native extensions (numpy, pandas): the wasm guest cannot run it.
    pub native_extensions: bool,
}

/// The price series `stdlib` reads on stdin.
const PRICES: &[u8] = include_bytes!("../../examples/data/prices.json");

/// The bench's workloads, cheapest first.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "trivial",
        description: "one print: start-up cost alone",
        source: include_str!("../../benches/workloads/trivial.py"),
        input: b"",
        native_extensions: false,
    },
    Workload {
        name: "stdlib",
        description: "json, statistics, datetime, decimal, re over a 56 KB price document",
        source: include_str!("../../benches/workloads/stdlib.py"),
        input: PRICES,
        native_extensions: false,
    },
    Workload {
        name: "compute",
        description: "pure-Python SMA crossover over 200,000 synthetic bars",
        source: include_str!("../../benches/workloads/compute.py"),
        input: b"",
        native_extensions: false,
    },
    Workload {
        name: "numeric",
        description: "numpy/pandas SMA crossover and Sharpe ratio over 200,000 synthetic bars",
        source: include_str!("../../benches/workloads/numeric.py"),
        input: b"",
        native_extensions: true,
    },
];

/// How a workload is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The machine's `python3` as a subprocess, unsandboxed: the baseline.
    Native,
    /// `python3 -I -S` as a subprocess: the baseline without `site` (whose import is most
    /// of a plain interpreter's start-up), unavailable for workloads whose packages live
    /// in site-packages.
    NativeIsolated,
    /// The installed CPython nearest to the guest's version and not above it
    /// ([`python::nearest_cpython`]), as `-I -S`: the same interpreter generation as the
    /// guest, without `site` as the guest has none.
    NativeNearest,
    /// The wasm backend in-process through the library, a fresh instance per run, fuel
    /// metering.
    Wasm,
    /// As `Wasm`, with `limits.metering = "epoch"`: the difference is the price of fuel.
    WasmEpoch,
    /// As `Wasm`, from a sandbox that keeps one instance ready
    /// ([`SandboxBuilder::ready_instances`]): each run takes the instance made before it,
    /// and the bench waits, untimed, until the next one is made and the last run's store
    /// dropped, as a request that does not follow the previous one at once finds it.
    WasmReady,
    /// The current executable running `stratbox run` on a file, compiled-guest cache warm.
    WasmCli,
    /// The workload posted to a real `stratbox serve` (the current executable, on a free
    /// loopback port, with a warm pool of one container), timed from the request to the
    /// whole response: routed as the server routes it, pure Python to wasm and
    /// numpy/pandas to a warm container (the bench waits, untimed, for the pool to refill
    /// before such a run).
    Serve,
    /// The container backend through the library: a cold container per run.
    Container,
    /// The container backend through the library with a warm pool of one container: each
    /// run takes a warm container (numpy and pandas imported), and the bench waits, untimed,
    /// for the pool to refill before anything else runs.
    ContainerPool,
    /// As `Serve`, with `"backend": "container"` in every request: each workload in a warm
    /// container of the server's pool, over HTTP.
    ServeContainer,
}

impl Mode {
    /// Every mode, in table order.
    pub const ALL: [Mode; 11] = [
        Mode::Native,
        Mode::NativeIsolated,
        Mode::NativeNearest,
        Mode::Wasm,
        Mode::WasmEpoch,
        Mode::WasmReady,
        Mode::WasmCli,
        Mode::Serve,
        Mode::Container,
        Mode::ContainerPool,
        Mode::ServeContainer,
    ];

    /// The name used in the table, the JSON and the chart.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::NativeIsolated => "native-isolated",
            Mode::NativeNearest => "native-nearest",
            Mode::Wasm => "wasm",
            Mode::WasmEpoch => "wasm-epoch",
            Mode::WasmReady => "wasm-ready",
            Mode::WasmCli => "wasm-cli",
            Mode::Serve => "serve",
            Mode::Container => "container",
            Mode::ContainerPool => "container-pool",
            Mode::ServeContainer => "serve-container",
        }
    }

    /// Where the mode runs `workload`: natively, on the wasm guest or in a container.
    fn runs_on(self, workload: &Workload) -> RunsOn {
        match self {
            Mode::Native | Mode::NativeIsolated | Mode::NativeNearest => RunsOn::Native,
            Mode::Wasm | Mode::WasmEpoch | Mode::WasmReady | Mode::WasmCli => RunsOn::Wasm,
            Mode::Container | Mode::ContainerPool | Mode::ServeContainer => RunsOn::Container,
            Mode::Serve if workload.native_extensions => RunsOn::Container,
            Mode::Serve => RunsOn::Wasm,
        }
    }

    /// Whether the mode is an unsandboxed baseline (always measured).
    fn is_native(self) -> bool {
        match self {
            Mode::Native | Mode::NativeIsolated | Mode::NativeNearest => true,
            Mode::Wasm
            | Mode::WasmEpoch
            | Mode::WasmReady
            | Mode::WasmCli
            | Mode::Serve
            | Mode::Container
            | Mode::ContainerPool
            | Mode::ServeContainer => false,
        }
    }

    /// Whether the mode posts to the bench's `stratbox serve`.
    fn is_serve(self) -> bool {
        matches!(self, Mode::Serve | Mode::ServeContainer)
    }
}

/// Where a mode runs a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunsOn {
    Native,
    Wasm,
    Container,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bench could not produce its numbers.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A run did not end `ok`.
    #[error("{workload}/{mode} run {run} ended {status}{}:\n{stderr}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Failed {
        /// The workload.
        workload: &'static str,
        /// The mode.
        mode: Mode,
        /// The run index (`warm-up` runs are reported as run 0).
        run: usize,
        /// How it ended (`error`, `killed`, `rejected`, exit code for subprocesses).
        status: String,
        /// The reason, message or violation, when there is one.
        detail: Option<String>,
        /// The strategy's stderr.
        stderr: String,
    },
    /// A subprocess (native `python3` or `stratbox run`) could not be started.
    #[error("cannot run {program}")]
    Spawn {
        /// The program.
        program: String,
        #[source]
        /// Why.
        source: std::io::Error,
    },
    /// The workloads could not be written to a temporary directory for `wasm-cli`.
    #[error("cannot write the workloads to a temporary directory")]
    TempFiles(#[source] std::io::Error),
    /// A `--throughput` run did not end `ok`.
    #[error("throughput, {mode}: a run ended {status}{}:\n{stderr}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    ThroughputFailed {
        /// The mode.
        mode: throughput::ThroughputMode,
        /// How it ended (an outcome's status, a process's exit status).
        status: String,
        /// The reason or message, when there is one.
        detail: String,
        /// Its stderr.
        stderr: String,
    },
    /// The bench's `stratbox serve` did not stop cleanly (a non-zero exit, or no exit
    /// after SIGTERM).
    #[error("the bench's stratbox serve: {0}")]
    Server(String),
    /// The bench's policy could not be built.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// What the bench is asked to do. `BenchConfig::new(policy)` runs every mode three times.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Measured runs per cell (after one warm-up run that is not recorded). Default 3.
    pub runs: usize,
    /// The sandboxed modes to measure; `native` and `native-isolated` are always measured
    /// as the baselines.
    /// Default: all of [`Mode::ALL`].
    pub modes: Vec<Mode>,
    /// The policy every sandboxed run uses (see [`bench_policy`]).
    pub policy: Policy,
    /// The `--profile` argument of the `wasm-cli` runs: the name or path `policy` was
    /// loaded from (its limits are passed as flags too). Default `default`.
    pub profile: String,
    /// The `stratbox` executable for `wasm-cli` and `serve`. Default: the current
    /// executable.
    pub exe: Option<PathBuf>,
    /// How the in-process modes' sandbox is set up. Default: [`Sandbox::builder`].
    pub sandbox: SandboxBuilder,
}

impl BenchConfig {
    /// Runs per cell when not told.
    pub const DEFAULT_RUNS: usize = 3;

    /// Every mode, [`Self::DEFAULT_RUNS`] runs, under `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            runs: Self::DEFAULT_RUNS,
            modes: Mode::ALL.to_vec(),
            policy,
            profile: crate::policy::DEFAULT_PROFILE.to_owned(),
            exe: None,
            sandbox: Sandbox::builder(),
        }
    }
}

/// The flags of the `native-isolated` baseline: isolated mode, no `site`.
const ISOLATED_FLAGS: [&str; 2] = ["-I", "-S"];
/// Warm containers of the `container-pool` mode and of the `serve` modes' server.
const BENCH_POOL_SIZE: usize = 1;

/// Ready instances of `wasm-ready`: one, made while no run is measured.
const BENCH_READY: u32 = 1;
/// How long a `serve` request may take before the sample fails.
const SERVE_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `container-pool` waits for its pool to fill before the mode is unavailable.
const POOL_FILL_TIMEOUT: Duration = Duration::from_secs(180);

/// The wall-time deadline of bench runs: room for a loaded machine.
pub const BENCH_WALL_TIME: Duration = Duration::from_secs(60);
/// The fuel budget of bench runs: `compute` takes about 2.3e9.
pub const BENCH_FUEL: u64 = 200_000_000_000;

/// The policy bench runs use: the default profile, with wall time, CPU time and fuel
/// raised to [`BENCH_WALL_TIME`] and [`BENCH_FUEL`] so that a loaded machine does not turn
/// a sample into a limit hit.
pub fn bench_policy() -> Result<Policy, PolicyError> {
    let mut policy = Policy::load(crate::policy::DEFAULT_PROFILE)?;
    policy.limits.wall_time = BENCH_WALL_TIME;
    policy.limits.cpu_time = BENCH_WALL_TIME;
    policy.limits.fuel = BENCH_FUEL;
    Ok(policy)
}

/// Whether a (workload, mode) cell was measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "kebab-case")]
pub enum Availability {
    /// The mode ran here.
    Available,
    /// The mode cannot run here; the reason says why.
    Unavailable(String),
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// The workload's name.
    pub workload: &'static str,
    /// The mode.
    pub mode: Mode,
    /// 1-based run index.
    pub run: usize,
    /// Wall time of the run as the host saw it, in milliseconds.
    pub ms: f64,
}

/// The statistics of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The workload's name.
    pub workload: &'static str,
    /// The mode.
    pub mode: Mode,
    /// Whether it was measured.
    pub availability: Availability,
    /// Median wall time in milliseconds; `None` when not measured.
    pub p50_ms: Option<f64>,
    /// 95th percentile wall time in milliseconds.
    pub p95_ms: Option<f64>,
    /// Fastest run in milliseconds.
    pub min_ms: Option<f64>,
    /// This cell's p50 over native's p50 for the same workload.
    pub ratio_to_native: Option<f64>,
    /// This cell's p50 over `native-isolated`'s p50 for the same workload.
    pub ratio_to_isolated: Option<f64>,
    /// This cell's p50 over `native-nearest`'s p50 for the same workload.
    pub ratio_to_nearest: Option<f64>,
}

/// Everything one bench run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Measured runs per cell.
    pub runs: usize,
    /// The profile and the limits the sandboxed runs used, for people.
    pub policy: String,
    /// The interpreter the native modes ran (`python3`, by its real path), when there is
    /// one.
    pub native_python: Option<String>,
    /// The interpreter of `native-nearest` and the guest's version, or why there is none.
    pub native_nearest: String,
    /// Every (workload, mode) cell, workloads in [`WORKLOADS`] order, modes in
    /// [`Mode::ALL`] order.
    pub cells: Vec<Cell>,
    /// Every measured run, in the order they ran.
    pub samples: Vec<Sample>,
}

/// What the bench is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// An unrecorded first run of a cell (it also checks the mode works here): `workload` in `mode`.
    #[allow(missing_docs, reason = "the variant's doc names both fields")]
    WarmUp { workload: &'a str, mode: Mode },
    /// A measured run finished.
    Sample {
        /// 1-based index over all measured runs.
        index: usize,
        /// How many measured runs there are in all.
        total: usize,
        /// The run.
        sample: &'a Sample,
    },
}

/// Runs the bench. `progress` is called before each warm-up and after each sample.
pub async fn run(
    config: &BenchConfig,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Report, BenchError> {
    let mut modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|mode| mode.is_native() || config.modes.contains(mode))
        .collect();
    modes.dedup();
    let mut runner = Runner::new(config)?;
    if modes.iter().any(|mode| mode.is_serve()) {
        runner.start_server().await;
    }

    // Availability per cell, decided before anything is measured.
    let mut cells: Vec<(&'static Workload, Mode, Availability)> = Vec::new();
    for workload in WORKLOADS {
        for &mode in &modes {
            let availability = runner.availability(workload, mode).await;
            cells.push((workload, mode, availability));
        }
    }
    // The warm-up round: fills caches and finds the modes that cannot run here.
    for index in 0..cells.len() {
        let (workload, mode, Availability::Available) = cells[index] else {
            continue;
        };
        progress(Progress::WarmUp {
            workload: workload.name,
            mode,
        });
        if let Err(reason) = runner.sample(workload, mode, 0).await? {
            // The mode turned out unavailable where it runs this workload: mark every cell
            // of it that runs there (`serve` runs pure Python on wasm even without an
            // engine).
            let on = mode.runs_on(workload);
            for cell in cells
                .iter_mut()
                .filter(|cell| cell.1 == mode && mode.runs_on(cell.0) == on)
            {
                cell.2 = Availability::Unavailable(reason.clone());
            }
        }
    }

    let live: Vec<(&'static Workload, Mode)> = cells
        .iter()
        .filter(|cell| cell.2 == Availability::Available)
        .map(|cell| (cell.0, cell.1))
        .collect();
    let total = live.len() * config.runs;
    let mut samples = Vec::with_capacity(total);
    for run in 1..=config.runs {
        for (workload, mode) in run_order(&live, run) {
            let ms = match runner.sample(workload, mode, run).await? {
                Ok(ms) => ms,
                Err(reason) => {
                    return Err(BenchError::Failed {
                        workload: workload.name,
                        mode,
                        run,
                        status: "unavailable".into(),
                        detail: Some(reason),
                        stderr: String::new(),
                    });
                }
            };
            samples.push(Sample {
                workload: workload.name,
                mode,
                run,
                ms,
            });
            progress(Progress::Sample {
                index: samples.len(),
                total,
                sample: samples.last().expect("just pushed"),
            });
        }
    }

    let cells = summarise(&cells, &samples);
    runner.pooled.shutdown().await;
    if let Some(Ok(server)) = runner.server.take() {
        match server.stop().await {
            Ok(Some(0)) => {}
            Ok(code) => {
                return Err(BenchError::Server(format!(
                    "exited with {} after SIGTERM",
                    code.map_or_else(|| "a signal".to_owned(), |c| format!("code {c}"))
                )));
            }
            Err(reason) => return Err(BenchError::Server(reason)),
        }
    }
    Ok(Report {
        runs: config.runs,
        policy: describe_policy(&config.policy),
        native_python: runner.python.as_ref().ok().map(Interpreter::describe),
        native_nearest: match (&runner.nearest, &runner.guest_level) {
            (Ok(nearest), Ok((major, minor))) => format!(
                "{} -I -S, the nearest not above the guest's {major}.{minor}",
                nearest.describe()
            ),
            (Err(reason), _) => format!("unavailable: {reason}"),
            (Ok(_), Err(reason)) => format!("unavailable: {reason}"),
        },
        cells,
        samples,
    })
}

/// The order of run `run`: the workloads, and within each workload its modes, in row
/// `run` of a [`williams`] design. A mode is measured right after every other mode equally
/// often, so that what one mode leaves behind (a process just exited, caches and TLB cold,
/// a store still being dropped) weighs on all modes alike. A plain rotation would not do:
/// it keeps the cyclic order, so a mode would always follow the same neighbour.
fn run_order<T: Copy>(cells: &[(&'static Workload, T)], run: usize) -> Vec<(&'static Workload, T)> {
    let mut groups: Vec<Vec<(&'static Workload, T)>> = Vec::new();
    for &cell in cells {
        match groups.last_mut() {
            Some(group) if std::ptr::eq(group[0].0, cell.0) => group.push(cell),
            _ => groups.push(vec![cell]),
        }
    }
    williams(groups.len(), run)
        .into_iter()
        .flat_map(|g| {
            let group = &groups[g];
            williams(group.len(), run).into_iter().map(|m| group[m])
        })
        .collect()
}

/// Row `row` of a Williams design for `n` treatments (a carry-over balanced Latin square):
/// a permutation of `0..n` in which, over `n` consecutive rows (`2n` when `n` is odd, the
/// rows then also reversed), every treatment comes first equally often and follows every
/// other treatment equally often: once for even `n`, twice for odd `n`.
fn williams(n: usize, row: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let rows = if n.is_multiple_of(2) { n } else { 2 * n };
    let row = row % rows;
    // The first row is 0, 1, n-1, 2, n-2, ...; the others shift it by the row's index.
    let mut order: Vec<usize> = (0..n)
        .map(|k| match k {
            0 => 0,
            k if k % 2 == 1 => k.div_ceil(2),
            k => n - k / 2,
        })
        .map(|first| (first + row) % n)
        .collect();
    if row >= n {
        order.reverse();
    }
    order
}

fn describe_policy(policy: &Policy) -> String {
    let limits = &policy.limits;
    format!(
        "profile {} with wall-time {}, fuel {:.0e}, cpu-time {}, memory {}",
        policy.name,
        units::format_duration(limits.wall_time),
        limits.fuel as f64,
        units::format_duration(limits.cpu_time),
        units::format_size(limits.memory_bytes),
    )
}

/// The value at quantile `q` (0..=1) of sorted `values`, interpolated linearly.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = q * last as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    Some(sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64))
}

fn summarise(cells: &[(&'static Workload, Mode, Availability)], samples: &[Sample]) -> Vec<Cell> {
    let mut out: Vec<Cell> = cells
        .iter()
        .map(|(workload, mode, availability)| {
            let mut times: Vec<f64> = samples
                .iter()
                .filter(|s| s.workload == workload.name && s.mode == *mode)
                .map(|s| s.ms)
                .collect();
            times.sort_by(f64::total_cmp);
            Cell {
                workload: workload.name,
                mode: *mode,
                availability: availability.clone(),
                p50_ms: quantile(&times, 0.5),
                p95_ms: quantile(&times, 0.95),
                min_ms: times.first().copied(),
                ratio_to_native: None,
                ratio_to_isolated: None,
                ratio_to_nearest: None,
            }
        })
        .collect();
    let baseline = |out: &[Cell], mode: Mode| -> Vec<(&'static str, Option<f64>)> {
        out.iter()
            .filter(|cell| cell.mode == mode)
            .map(|cell| (cell.workload, cell.p50_ms))
            .collect()
    };
    let natives = baseline(&out, Mode::Native);
    let isolated = baseline(&out, Mode::NativeIsolated);
    let nearest = baseline(&out, Mode::NativeNearest);
    let ratio = |p50: Option<f64>, base: &[(&str, Option<f64>)], workload: &str| {
        let base = base
            .iter()
            .find(|(name, _)| *name == workload)
            .and_then(|(_, p50)| *p50);
        match (p50, base) {
            (Some(p50), Some(base)) if base > 0.0 => Some(p50 / base),
            _ => None,
        }
    };
    for cell in &mut out {
        cell.ratio_to_native = ratio(cell.p50_ms, &natives, cell.workload);
        cell.ratio_to_isolated = ratio(cell.p50_ms, &isolated, cell.workload);
        cell.ratio_to_nearest = ratio(cell.p50_ms, &nearest, cell.workload);
    }
    out
}

impl Report {
    /// The statistics of one cell.
    pub fn cell(&self, workload: &str, mode: Mode) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|cell| cell.workload == workload && cell.mode == mode)
    }

    /// The modes present in the report, in [`Mode::ALL`] order.
    pub fn modes(&self) -> Vec<Mode> {
        Mode::ALL
            .into_iter()
            .filter(|mode| self.cells.iter().any(|cell| cell.mode == *mode))
            .collect()
    }

    /// The report as text tables, one per workload.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "stratbox bench: {} measured runs per cell (after one warm-up), interleaved",
            self.runs
        );
        let _ = writeln!(out, "sandboxed runs: {}", self.policy);
        let _ = writeln!(
            out,
            "native: {} (unsandboxed subprocess, the baseline; native-isolated: with -I -S)",
            self.native_python.as_deref().unwrap_or("unavailable")
        );
        let _ = writeln!(out, "native-nearest: {}", self.native_nearest);
        for workload in WORKLOADS {
            let _ = writeln!(out, "\n{} — {}", workload.name, workload.description);
            let _ = writeln!(
                out,
                "  {:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                "mode", "p50 ms", "p95 ms", "min ms", "× native", "× -I -S", "× nearest"
            );
            for mode in self.modes() {
                let Some(cell) = self.cell(workload.name, mode) else {
                    continue;
                };
                match (&cell.availability, cell.p50_ms, cell.p95_ms, cell.min_ms) {
                    (Availability::Available, Some(p50), Some(p95), Some(min)) => {
                        let ratio = |r: Option<f64>| {
                            r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"))
                        };
                        let _ = writeln!(
                            out,
                            "  {:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
                            mode.as_str(),
                            ms(p50),
                            ms(p95),
                            ms(min),
                            ratio(cell.ratio_to_native),
                            ratio(cell.ratio_to_isolated),
                            ratio(cell.ratio_to_nearest)
                        );
                    }
                    (Availability::Unavailable(reason), ..) => {
                        let _ = writeln!(out, "  {:<15} unavailable: {reason}", mode.as_str());
                    }
                    (Availability::Available, ..) => {
                        let _ = writeln!(out, "  {:<15} no samples", mode.as_str());
                    }
                }
            }
        }
        out
    }
}

/// Milliseconds with three significant figures or so.
fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

/// Runs single samples of every mode.
struct Runner<'a> {
    config: &'a BenchConfig,
    sandbox: Sandbox,
    /// The sandbox of `container-pool`: one warm container.
    pooled: Sandbox,
    /// The sandbox of `wasm-ready`: one ready instance.
    ready: Sandbox,
    epoch_policy: Policy,
    /// The interpreter `python3` resolves to (asked once: launcher shims such as pyenv
    /// would otherwise add their own start-up to every native sample), or why there is none.
    python: Result<Interpreter, String>,
    /// Whether `python3` can import numpy and pandas, or why not.
    python_numeric: Result<(), String>,
    /// Whether `python3 -I -S` can import numpy and pandas, or why not.
    isolated_numeric: Result<(), String>,
    /// The guest's Python version, or why it is unknown.
    guest_level: Result<(u32, u32), String>,
    /// The interpreter of `native-nearest`, or why there is none.
    nearest: Result<Interpreter, String>,
    /// Whether it can import numpy and pandas with `-I -S`, or why not.
    nearest_numeric: Result<(), String>,
    /// The executable and the workloads written out for `wasm-cli`; the bench's policy as
    /// a profile file for `serve`.
    exe: Result<PathBuf, String>,
    files: tempfile::TempDir,
    /// The `stratbox serve` of the `serve` modes, once started, or why it did not start.
    server: Option<Result<ServeProcess, String>>,
}

impl<'a> Runner<'a> {
    fn new(config: &'a BenchConfig) -> Result<Self, BenchError> {
        let mut epoch_policy = config.policy.clone();
        epoch_policy.limits.metering = Metering::Epoch;
        let python = Interpreter::resolve(Path::new("python3"));
        let numeric = |python: &Result<Interpreter, String>, flags: &[&str]| match python {
            Ok(python) => python.can_import(flags, "numpy, pandas"),
            Err(reason) => Err(reason.clone()),
        };
        let python_numeric = numeric(&python, &[]);
        let isolated_numeric = numeric(&python, &ISOLATED_FLAGS);
        let sandbox = config.sandbox.clone().build();
        let guest_level = match sandbox.wasm() {
            Ok(wasm) => wasm
                .python()
                .and_then(python::parse_level)
                .ok_or_else(|| "the guest names no Python version".to_owned()),
            Err(err) => Err(format!(
                "the guest's Python version is unknown: {}",
                crate::sandbox::chain(&err)
            )),
        };
        let nearest = guest_level.clone().and_then(python::nearest_cpython);
        let nearest_numeric = numeric(&nearest, &ISOLATED_FLAGS);
        let exe = match &config.exe {
            Some(exe) => Ok(exe.clone()),
            None => std::env::current_exe()
                .map_err(|err| format!("cannot find the current executable: {err}")),
        };
        let files = tempfile::Builder::new()
            .prefix("stratbox-bench-")
            .tempdir()
            .map_err(BenchError::TempFiles)?;
        for workload in WORKLOADS {
            std::fs::write(
                files.path().join(format!("{}.py", workload.name)),
                workload.source,
            )
            .map_err(BenchError::TempFiles)?;
            std::fs::write(
                files.path().join(format!("{}.input", workload.name)),
                workload.input,
            )
            .map_err(BenchError::TempFiles)?;
        }
        Ok(Self {
            config,
            sandbox,
            pooled: config
                .sandbox
                .clone()
                .container_pool(BENCH_POOL_SIZE)
                .build(),
            ready: config.sandbox.clone().ready_instances(BENCH_READY).build(),
            epoch_policy,
            python,
            python_numeric,
            isolated_numeric,
            guest_level,
            nearest,
            nearest_numeric,
            exe,
            files,
            server: None,
        })
    }

    /// Starts the `stratbox serve` of the `serve` modes: the bench's policy as its profile
    /// (so that the server's limits are the other modes'), a warm pool of
    /// [`BENCH_POOL_SIZE`]. A server that does not start leaves the modes unavailable.
    async fn start_server(&mut self) {
        let started = async {
            let exe = self.exe.clone()?;
            let profile = self.files.path().join("bench.toml");
            let text = self
                .config
                .policy
                .to_toml()
                .map_err(|err| crate::sandbox::chain(&err))?;
            std::fs::write(&profile, text)
                .map_err(|err| format!("cannot write {}: {err}", profile.display()))?;
            let pool = BENCH_POOL_SIZE.to_string();
            let profile = profile.to_string_lossy().into_owned();
            ServeProcess::start(&exe, &["--profile", &profile, "--pool", &pool]).await
        };
        self.server = Some(started.await);
    }

    /// Whether `mode` can run `workload` here, as far as can be told without running it.
    async fn availability(&self, workload: &Workload, mode: Mode) -> Availability {
        let unavailable = |reason: &str| Availability::Unavailable(reason.to_owned());
        if workload.native_extensions && mode.runs_on(workload) == RunsOn::Wasm {
            return unavailable(
                "imports native extensions (numpy, pandas), which only the container provides",
            );
        }
        let checked = match mode {
            Mode::Native if workload.native_extensions => self.python_numeric.clone(),
            Mode::NativeIsolated if workload.native_extensions => self.isolated_numeric.clone(),
            Mode::NativeNearest if workload.native_extensions => self.nearest_numeric.clone(),
            Mode::Native | Mode::NativeIsolated => self.python.clone().map(|_| ()),
            Mode::NativeNearest => self.nearest.clone().map(|_| ()),
            Mode::Serve | Mode::ServeContainer => match &self.server {
                Some(Ok(_)) => Ok(()),
                Some(Err(reason)) => Err(reason.clone()),
                None => Err("the bench's server was not started".to_owned()),
            },
            Mode::Wasm | Mode::WasmEpoch | Mode::WasmReady | Mode::WasmCli => {
                let (sandbox, metering) = self.wasm_sandbox(mode);
                let wasm = sandbox
                    .wasm()
                    .and_then(|wasm| wasm.prepare(metering))
                    .map_err(|e| crate::sandbox::chain(&e))
                    .map(|_| ());
                match (mode, wasm) {
                    (Mode::WasmCli, Ok(())) => self.exe.clone().map(|_| ()),
                    (_, wasm) => wasm,
                }
            }
            // The container's engine and image are checked by the warm-up run.
            Mode::Container | Mode::ContainerPool => Ok(()),
        };
        match checked {
            Ok(()) => Availability::Available,
            Err(reason) => Availability::Unavailable(reason),
        }
    }

    /// One run of `workload` in `mode`: its wall time in ms, or `Ok(Err(reason))` when
    /// the sandbox reports itself unavailable. Returns once what the run left to do in
    /// this process is done too ([`Runner::settle`]).
    async fn sample(
        &self,
        workload: &'static Workload,
        mode: Mode,
        run: usize,
    ) -> Result<Result<f64, String>, BenchError> {
        let sample = self.measure(workload, mode, run).await;
        self.settle(mode);
        sample
    }

    /// Waits, untimed, until the in-process wasm backend `mode` ran on has done what it
    /// does after a run, off the request path: dropping the run's store (the slot's
    /// reset) and making the next ready instance. Otherwise that work would overlap the
    /// next sample, of whatever mode, on this machine's other core and in this process's
    /// address space. A request that does not follow the last one at once finds it done.
    fn settle(&self, mode: Mode) {
        if matches!(mode, Mode::Wasm | Mode::WasmEpoch | Mode::WasmReady) {
            let (sandbox, metering) = self.wasm_sandbox(mode);
            // Blocks this thread, as `ready_sample` does; a backend that cannot be had ran
            // nothing to wait for.
            if let Ok(wasm) = sandbox.wasm() {
                let _settled = wasm.wait_ready(metering, POOL_FILL_TIMEOUT);
            }
        }
    }

    /// The sandbox and metering a wasm mode uses in this process (for `wasm-cli`, the
    /// sandbox whose compiled guest its processes load from the cache); the configured
    /// metering for the modes that have no sandbox here.
    fn wasm_sandbox(&self, mode: Mode) -> (&Sandbox, Metering) {
        match mode {
            Mode::WasmEpoch => (&self.sandbox, Metering::Epoch),
            Mode::WasmReady => (&self.ready, self.config.policy.limits.metering),
            Mode::Wasm
            | Mode::WasmCli
            | Mode::Native
            | Mode::NativeIsolated
            | Mode::NativeNearest
            | Mode::Serve
            | Mode::Container
            | Mode::ContainerPool
            | Mode::ServeContainer => (&self.sandbox, self.config.policy.limits.metering),
        }
    }

    /// One run of `workload` in `mode`, timed (see [`Runner::sample`]).
    async fn measure(
        &self,
        workload: &'static Workload,
        mode: Mode,
        run: usize,
    ) -> Result<Result<f64, String>, BenchError> {
        match mode {
            Mode::Native | Mode::NativeIsolated | Mode::NativeNearest => {
                let python = match mode {
                    Mode::NativeNearest => &self.nearest,
                    _ => &self.python,
                };
                let python = python.as_ref().map_err(|reason| BenchError::Spawn {
                    program: "python3".into(),
                    source: std::io::Error::other(reason.clone()),
                })?;
                let python = &python.path;
                let script = self.files.path().join(format!("{}.py", workload.name));
                let flags: &[&str] = match mode {
                    Mode::NativeIsolated | Mode::NativeNearest => &ISOLATED_FLAGS,
                    _ => &[],
                };
                let args: Vec<&std::ffi::OsStr> = flags
                    .iter()
                    .map(std::ffi::OsStr::new)
                    .chain([script.as_os_str()])
                    .collect();
                self.subprocess(python, &args, workload, mode, run).await
            }
            Mode::ContainerPool => self.pooled_sample(workload, run).await,
            Mode::WasmReady => self.ready_sample(workload, run).await,
            Mode::Serve | Mode::ServeContainer => self.serve_sample(workload, mode, run).await,
            Mode::WasmCli => {
                let exe = self.exe.as_ref().map_err(|reason| BenchError::Spawn {
                    program: "stratbox".into(),
                    source: std::io::Error::other(reason.clone()),
                })?;
                let script = self.files.path().join(format!("{}.py", workload.name));
                let input = self.files.path().join(format!("{}.input", workload.name));
                let limits = &self.config.policy.limits;
                let timeout = units::format_duration(limits.wall_time);
                let fuel = limits.fuel.to_string();
                let args = [
                    "run".as_ref(),
                    script.as_os_str(),
                    "--input".as_ref(),
                    input.as_os_str(),
                    "--backend".as_ref(),
                    "wasm".as_ref(),
                    "--profile".as_ref(),
                    self.config.profile.as_ref(),
                    "--timeout".as_ref(),
                    timeout.as_ref(),
                    "--fuel".as_ref(),
                    fuel.as_ref(),
                ];
                self.subprocess(exe, &args, workload, mode, run).await
            }
            Mode::Wasm | Mode::WasmEpoch | Mode::Container => {
                let (policy, backend) = match mode {
                    Mode::WasmEpoch => (&self.epoch_policy, BackendKind::Wasm),
                    Mode::Container => (&self.config.policy, BackendKind::Container),
                    Mode::Wasm
                    | Mode::Native
                    | Mode::NativeIsolated
                    | Mode::NativeNearest
                    | Mode::WasmReady
                    | Mode::WasmCli
                    | Mode::Serve
                    | Mode::ContainerPool
                    | Mode::ServeContainer => (&self.config.policy, BackendKind::Wasm),
                };
                self.timed(&self.sandbox, workload, mode, run, policy, backend)
                    .await
            }
        }
    }

    /// One run of `workload` through `sandbox`, timed.
    async fn timed(
        &self,
        sandbox: &Sandbox,
        workload: &'static Workload,
        mode: Mode,
        run: usize,
        policy: &Policy,
        backend: BackendKind,
    ) -> Result<Result<f64, String>, BenchError> {
        let request = Request {
            backend: Some(backend),
            input: workload.input,
            ..Request::new(workload.source, workload.name)
        };
        let started = Instant::now();
        let outcome = sandbox.run(&request, policy).await;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        match outcome.status {
            Status::Ok => Ok(Ok(ms)),
            Status::Unavailable => Ok(Err(outcome
                .message
                .unwrap_or_else(|| "the sandbox could not run".into()))),
            Status::Error | Status::Killed | Status::Rejected | Status::Invalid => {
                let detail = outcome
                    .reason
                    .map(|reason| reason.as_str().to_owned())
                    .or(outcome.message)
                    .or_else(|| outcome.violations.first().map(|v| v.message.clone()));
                Err(BenchError::Failed {
                    workload: workload.name,
                    mode,
                    run,
                    status: status_name(outcome.status).to_owned(),
                    detail,
                    stderr: outcome.stderr,
                })
            }
        }
    }

    /// One `wasm-ready` run: the clock starts once the ready instance is made and the
    /// previous run's store dropped, and the run must have taken that instance.
    async fn ready_sample(
        &self,
        workload: &'static Workload,
        run: usize,
    ) -> Result<Result<f64, String>, BenchError> {
        let policy = &self.config.policy;
        let metering = policy.limits.metering;
        let wasm = match self.ready.wasm() {
            Ok(wasm) => wasm,
            Err(err) => return Ok(Err(crate::sandbox::chain(&err))),
        };
        // Blocks this thread (the bench measures nothing meanwhile); the filler is a
        // thread of its own.
        let ready = wasm
            .wait_ready(metering, POOL_FILL_TIMEOUT)
            .and_then(|_| wasm.ready_taken(metering));
        let taken = match ready {
            Ok(taken) => taken,
            Err(err) => return Ok(Err(crate::sandbox::chain(&err))),
        };
        let sample = self
            .timed(
                &self.ready,
                workload,
                Mode::WasmReady,
                run,
                policy,
                BackendKind::Wasm,
            )
            .await?;
        if wasm.ready_taken(metering).ok() != Some(taken + 1) {
            return Err(BenchError::Failed {
                workload: workload.name,
                mode: Mode::WasmReady,
                run,
                status: "cold".into(),
                detail: Some("the run found no ready instance".into()),
                stderr: String::new(),
            });
        }
        Ok(sample)
    }

    /// One `container-pool` run: the pool is started and filled before the clock starts,
    /// and refilled after it stops, so that no start-up overlaps a measured run.
    async fn pooled_sample(
        &self,
        workload: &'static Workload,
        run: usize,
    ) -> Result<Result<f64, String>, BenchError> {
        let policy = &self.config.policy;
        match self.pooled.prewarm_containers(policy).await {
            Ok(true) => {}
            Ok(false) => return Ok(Err("the pool serves another policy".into())),
            Err(err) => return Ok(Err(crate::sandbox::chain(&err))),
        }
        let Some(pool) = self.pooled.container().pool() else {
            return Ok(Err("no pool was started".into()));
        };
        let full = |status: &crate::backend::container::PoolStatus| status.ready >= BENCH_POOL_SIZE;
        let filled =
            tokio::time::timeout(POOL_FILL_TIMEOUT, pool.wait_ready(BENCH_POOL_SIZE)).await;
        match filled {
            Ok(status) if full(&status) => {}
            _ => {
                let status = pool.status();
                return Ok(Err(format!(
                    "the pool did not fill in {} s: {}",
                    POOL_FILL_TIMEOUT.as_secs(),
                    status
                        .last_failure
                        .unwrap_or_else(|| "no start-up failed".into())
                )));
            }
        }
        let taken = pool.status().taken;
        let sample = self
            .timed(
                &self.pooled,
                workload,
                Mode::ContainerPool,
                run,
                policy,
                BackendKind::Container,
            )
            .await?;
        if pool.status().taken != taken + 1 {
            return Err(BenchError::Failed {
                workload: workload.name,
                mode: Mode::ContainerPool,
                run,
                status: "cold".into(),
                detail: Some("the run found no warm container".into()),
                stderr: String::new(),
            });
        }
        let _ = tokio::time::timeout(POOL_FILL_TIMEOUT, pool.wait_ready(BENCH_POOL_SIZE)).await;
        Ok(sample)
    }

    /// One `serve` or `serve-container` run: the workload posted to the bench's server,
    /// timed from connecting to the whole response. A run that goes to a container first
    /// waits, untimed, for the server's pool to be full, and must then have taken a warm
    /// container (the server's `stratbox_container_pool_runs_total{start="warm"}`).
    async fn serve_sample(
        &self,
        workload: &'static Workload,
        mode: Mode,
        run: usize,
    ) -> Result<Result<f64, String>, BenchError> {
        let Some(Ok(server)) = &self.server else {
            return Ok(Err("the bench's server is not running".into()));
        };
        let failed = |status: String, detail: String| BenchError::Failed {
            workload: workload.name,
            mode,
            run,
            status,
            detail: Some(detail),
            stderr: server.stderr_tail(),
        };
        let on = mode.runs_on(workload);
        let backend = match on {
            RunsOn::Container => BackendKind::Container,
            RunsOn::Wasm | RunsOn::Native => BackendKind::Wasm,
        };
        const WARM: &str = r#"stratbox_container_pool_runs_total{start="warm"}"#;
        const READY: &str = r#"stratbox_container_pool{state="ready"}"#;
        let metrics_failed = |e: String| failed("metrics".into(), e);
        // The pool started before the server listened, or never will (no engine: the
        // container run then ends `unavailable`, saying why).
        let mut warm_before = None;
        if on == RunsOn::Container
            && server
                .metric(READY)
                .await
                .map_err(&metrics_failed)?
                .is_some()
        {
            let started = Instant::now();
            while server
                .metric(READY)
                .await
                .map_err(&metrics_failed)?
                .unwrap_or(0.0)
                < BENCH_POOL_SIZE as f64
            {
                if started.elapsed() > POOL_FILL_TIMEOUT {
                    return Ok(Err(format!(
                        "the server's pool did not fill in {} s",
                        POOL_FILL_TIMEOUT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            warm_before = Some(
                server
                    .metric(WARM)
                    .await
                    .map_err(&metrics_failed)?
                    .unwrap_or(0.0),
            );
        }
        let mut body = serde_json::json!({
            "id": format!("{}-{run}", workload.name),
            "source": workload.source,
            "input": String::from_utf8_lossy(workload.input),
            "filename": format!("{}.py", workload.name),
        });
        if mode == Mode::ServeContainer {
            body["backend"] = "container".into();
        }
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let started = Instant::now();
        let reply = http::request(
            server.addr(),
            "POST",
            "/v1/run",
            &body,
            SERVE_REQUEST_TIMEOUT,
        )
        .await
        .map_err(|e| failed("no response".into(), e))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let outcome = reply
            .json()
            .map_err(|e| failed(reply.status.to_string(), e))?;
        let field = |name: &str| outcome[name].as_str().unwrap_or_default().to_owned();
        match (reply.status, field("status").as_str()) {
            (200, "ok") => {}
            (200, "unavailable") => {
                return Ok(Err(outcome["message"]
                    .as_str()
                    .unwrap_or("the server could not run it")
                    .to_owned()));
            }
            (status, ending) => {
                return Err(BenchError::Failed {
                    workload: workload.name,
                    mode,
                    run,
                    status: format!("{status} {ending}"),
                    detail: outcome["message"]
                        .as_str()
                        .or(outcome["reason"].as_str())
                        .map(str::to_owned),
                    stderr: field("stderr"),
                });
            }
        }
        if field("backend") != backend.as_str() {
            return Err(failed(
                "misrouted".into(),
                format!("ran on {}, not {backend}", field("backend")),
            ));
        }
        if on == RunsOn::Container {
            let Some(before) = warm_before else {
                return Err(failed(
                    "cold".into(),
                    "the server has no warm pool (see its log below)".into(),
                ));
            };
            if server
                .metric(WARM)
                .await
                .map_err(&metrics_failed)?
                .unwrap_or(0.0)
                < before + 1.0
            {
                return Err(failed(
                    "cold".into(),
                    "the run found no warm container".into(),
                ));
            }
        }
        Ok(Ok(ms))
    }

    /// Times `program args` with the workload's input on stdin; it must exit 0.
    async fn subprocess(
        &self,
        program: &Path,
        args: &[&std::ffi::OsStr],
        workload: &'static Workload,
        mode: Mode,
        run: usize,
    ) -> Result<Result<f64, String>, BenchError> {
        let started = Instant::now();
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A child that exits without reading its stdin closes the pipe: not a failure
            // here (its exit status says whether the run was ok).
            let _ = stdin.write_all(workload.input).await;
        }
        let output = child
            .wait_with_output()
            .await
            .map_err(|source| BenchError::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if output.status.success() {
            return Ok(Ok(ms));
        }
        Err(BenchError::Failed {
            workload: workload.name,
            mode,
            run,
            status: output.status.to_string(),
            detail: None,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Ok => "ok",
        Status::Error => "error",
        Status::Rejected => "rejected",
        Status::Killed => "killed",
        Status::Unavailable => "unavailable",
        Status::Invalid => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let values = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&values, 0.5), Some(2.5));
        assert_eq!(quantile(&values, 0.0), Some(1.0));
        assert_eq!(quantile(&values, 1.0), Some(4.0));
        assert_eq!(quantile(&[7.0], 0.95), Some(7.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn every_row_of_the_design_is_an_order_of_all_the_modes() {
        for n in 0..=9 {
            for row in 0..40 {
                let mut order = williams(n, row);
                order.sort_unstable();
                assert_eq!(order, (0..n).collect::<Vec<_>>(), "n {n}, row {row}");
            }
        }
    }

    #[test]
    fn over_a_cycle_every_mode_comes_first_and_follows_every_other_equally_often() {
        for n in 2..=9_usize {
            let rows = if n.is_multiple_of(2) { n } else { 2 * n };
            let mut firsts = vec![0; n];
            let mut follows = vec![vec![0; n]; n];
            for row in 0..rows {
                let order = williams(n, row);
                firsts[order[0]] += 1;
                for pair in order.windows(2) {
                    follows[pair[0]][pair[1]] += 1;
                }
            }
            let each = rows / n;
            assert_eq!(firsts, vec![each; n], "n {n}");
            for (a, row) in follows.iter().enumerate() {
                for (b, &count) in row.iter().enumerate() {
                    let want = if a == b { 0 } else { each };
                    assert_eq!(count, want, "n {n}: {b} after {a}");
                }
            }
        }
    }

    #[test]
    fn run_order_keeps_workloads_together_and_varies_what_runs_before_a_mode() {
        let modes = [
            Mode::Native,
            Mode::NativeIsolated,
            Mode::Wasm,
            Mode::WasmEpoch,
        ];
        let cells: Vec<(&'static Workload, Mode)> = WORKLOADS[..2]
            .iter()
            .flat_map(|workload| modes.map(|mode| (workload, mode)))
            .collect();
        let mut before_wasm = Vec::new();
        for run in 0..modes.len() {
            let order = run_order(&cells, run);
            assert_eq!(order.len(), cells.len());
            // Each workload's modes run one after the other.
            for half in order.chunks(modes.len()) {
                assert!(half.iter().all(|cell| std::ptr::eq(cell.0, half[0].0)));
            }
            let at = order[..modes.len()]
                .iter()
                .position(|cell| cell.1 == Mode::Wasm)
                .expect("wasm runs");
            before_wasm.push(at.checked_sub(1).map(|i| order[i].1));
        }
        // The rotation this replaces always put the same mode right before `wasm`.
        let mut distinct = before_wasm.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), modes.len(), "{before_wasm:?}");
    }
}
