//! `stratbox bench`: what isolation costs, side by side with native Python.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use stratbox::bench::throughput::{self, ThroughputConfig};
use stratbox::bench::{self, BenchConfig, BenchError, Mode, Progress, Report};

use super::{BenchArgs, BenchBackend};

/// Exit code when the bench cannot produce its numbers: a sample failed or a subprocess
/// could not start (the sandbox could not do its job).
const EXIT_BENCH_FAILED: u8 = 5;
/// Exit code after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

/// The JSON file: the summary per cell and every sample.
#[derive(Serialize)]
struct JsonReport<'a> {
    runs: usize,
    policy: &'a str,
    native_python: Option<&'a str>,
    native_nearest: &'a str,
    summary: &'a [bench::Cell],
    samples: &'a [bench::Sample],
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    if let Some(seconds) = args.throughput {
        return run_throughput(seconds, &args);
    }
    let modes = match args.backend {
        BenchBackend::Wasm => vec![Mode::Wasm, Mode::WasmEpoch, Mode::WasmReady, Mode::WasmCli],
        BenchBackend::Container => vec![Mode::Container, Mode::ContainerPool],
        BenchBackend::ContainerPool => vec![Mode::ContainerPool],
        BenchBackend::Serve => vec![Mode::Serve, Mode::ServeContainer],
        BenchBackend::All => Mode::ALL.to_vec(),
    };
    let config = BenchConfig {
        runs: usize::from(args.runs),
        modes,
        sandbox: stratbox::Sandbox::builder().from_env(),
        ..BenchConfig::new(bench::bench_policy()?)
    };
    let progress = |event: Progress<'_>| match event {
        Progress::WarmUp { workload, mode } => eprintln!("[warm-up] {workload}/{mode}"),
        Progress::Sample {
            index,
            total,
            sample,
        } => eprintln!(
            "[{index}/{total}] {}/{} {:.1} ms",
            sample.workload, sample.mode, sample.ms
        ),
    };
    let report = super::runtime()?.block_on(async {
        tokio::select! {
            report = bench::run(&config, progress) => Some(report),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let report = match finished(report)? {
        Ok(report) => report,
        Err(code) => return Ok(code),
    };
    print(&report.table())?;
    write_outputs(&report, &args)?;
    Ok(0)
}

/// The report of a bench that ran to its end, or the exit code of one that did not
/// (interrupted, or a run that failed); `Err` for what is not the sandbox's failure.
fn finished<T>(ended: Option<Result<T, BenchError>>) -> anyhow::Result<Result<T, u8>> {
    match ended {
        None => {
            eprintln!("stratbox: interrupted");
            Ok(Err(EXIT_INTERRUPTED))
        }
        Some(Err(
            err @ (BenchError::Failed { .. }
            | BenchError::ThroughputFailed { .. }
            | BenchError::Spawn { .. }
            | BenchError::Server(_)),
        )) => {
            eprintln!("stratbox: bench failed: {:#}", anyhow::Error::from(err));
            Ok(Err(EXIT_BENCH_FAILED))
        }
        Some(Err(err @ (BenchError::TempFiles(_) | BenchError::Policy(_)))) => Err(err.into()),
        Some(Ok(report)) => Ok(Ok(report)),
    }
}

/// `--throughput SECONDS`: on a runtime with a worker per core, so that the in-process
/// runs use them all.
fn run_throughput(seconds: u16, args: &BenchArgs) -> anyhow::Result<u8> {
    let config = ThroughputConfig {
        sandbox: stratbox::Sandbox::builder().from_env(),
        ..ThroughputConfig::new(
            std::time::Duration::from_secs(u64::from(seconds)),
            bench::bench_policy()?,
        )
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.jobs.max(1))
        .enable_all()
        .build()?;
    let progress = |mode: throughput::ThroughputMode| {
        eprintln!(
            "[throughput] {mode}: {} for {seconds} s, {} at once",
            mode.describe(),
            config.jobs
        );
    };
    let report = runtime.block_on(async {
        tokio::select! {
            report = throughput::run(&config, progress) => Some(report),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let report = match finished(report)? {
        Ok(report) => report,
        Err(code) => return Ok(code),
    };
    print(&report.table())?;
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    Ok(0)
}

/// Writes a table to stdout, flushed.
fn print(table: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(table.as_bytes())?;
    stdout.flush()
}

fn write_json(path: &std::path::Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("stratbox: results written to {}", path.display());
    Ok(())
}

fn write_outputs(report: &Report, args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        let json = JsonReport {
            runs: report.runs,
            policy: &report.policy,
            native_python: report.native_python.as_deref(),
            native_nearest: &report.native_nearest,
            summary: &report.cells,
            samples: &report.samples,
        };
        write_json(path, &json)?;
    }
    if let Some(path) = &args.chart {
        bench::chart::write_svg(report, path)?;
        eprintln!("stratbox: chart written to {}", path.display());
    }
    Ok(())
}
