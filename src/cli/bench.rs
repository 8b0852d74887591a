//! `stratbox bench`: what isolation costs, side by side with native Python.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

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
    summary: &'a [bench::Cell],
    samples: &'a [bench::Sample],
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let modes = match args.backend {
        BenchBackend::Wasm => vec![Mode::Wasm, Mode::WasmEpoch, Mode::WasmCli],
        BenchBackend::Container => vec![Mode::Container, Mode::ContainerPool],
        BenchBackend::ContainerPool => vec![Mode::ContainerPool],
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
    let report = match report {
        None => {
            eprintln!("stratbox: interrupted");
            return Ok(EXIT_INTERRUPTED);
        }
        Some(Err(err @ (BenchError::Failed { .. } | BenchError::Spawn { .. }))) => {
            eprintln!("stratbox: bench failed: {:#}", anyhow::Error::from(err));
            return Ok(EXIT_BENCH_FAILED);
        }
        Some(Err(err @ (BenchError::TempFiles(_) | BenchError::Policy(_)))) => {
            return Err(err.into());
        }
        Some(Ok(report)) => report,
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(report.table().as_bytes())?;
    stdout.flush()?;
    drop(stdout);
    write_outputs(&report, &args)?;
    Ok(0)
}

fn write_outputs(report: &Report, args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        let json = JsonReport {
            runs: report.runs,
            policy: &report.policy,
            native_python: report.native_python.as_deref(),
            summary: &report.cells,
            samples: &report.samples,
        };
        let text = serde_json::to_string_pretty(&json)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!(
            "stratbox: samples and summary written to {}",
            path.display()
        );
    }
    if let Some(path) = &args.chart {
        bench::chart::write_svg(report, path)?;
        eprintln!("stratbox: chart written to {}", path.display());
    }
    Ok(())
}
