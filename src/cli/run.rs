//! `stratbox run`: validate, route and run one strategy.

use std::io::Write;

use anyhow::{Context, bail};

use stratbox::audit::{AuditLog, AuditRecord, RunFacts};
use stratbox::backend::wasm::SlotReset;
use stratbox::policy::{Overrides, Policy};
use stratbox::{Outcome, Request, Sandbox, Status};

use super::RunArgs;
use super::source::{display_name, read_limited};

/// Everything `run` needs, resolved once from the flags and the profile.
struct RunSettings {
    policy: Policy,
    source: Vec<u8>,
    filename: String,
    input: Vec<u8>,
    /// Opened before the run, so that an unusable log stops the command before anything
    /// runs.
    audit: Option<AuditLog>,
    args: RunArgs,
}

impl RunSettings {
    fn resolve(args: RunArgs) -> anyhow::Result<Self> {
        let policy = Policy::load(&args.policy.profile)?.with_overrides(&Overrides {
            wall_time: args.timeout,
            memory_bytes: args.memory,
            fuel: args.fuel,
            output_bytes: args.output,
            seed: args.seed,
            clock: args.clock,
        })?;
        if args.file == "-" && args.input.as_deref().is_some_and(|p| p.as_os_str() == "-") {
            bail!("the strategy and its input cannot both come from stdin");
        }
        // One byte past the limit is read so that the policy check can see it is too big.
        let source = read_limited(&args.file, policy.limits.source_bytes, "strategy")?;
        let input = match &args.input {
            Some(path) => {
                let path = path.to_string_lossy();
                let input = read_limited(&path, policy.limits.input_bytes, "input")?;
                if input.len() as u64 > policy.limits.input_bytes {
                    bail!(
                        "the input {path} is larger than the {} that limits.input allows",
                        stratbox::policy::units::format_size(policy.limits.input_bytes)
                    );
                }
                input
            }
            None => Vec::new(),
        };
        if let Some(dir) = &args.data {
            let meta = std::fs::metadata(dir)
                .with_context(|| format!("cannot use {} as /data", dir.display()))?;
            if !meta.is_dir() {
                bail!("--data {} is not a directory", dir.display());
            }
        }
        let audit = args.audit.open()?;
        Ok(Self {
            policy,
            source,
            filename: display_name(&args.file),
            input,
            audit,
            args,
        })
    }
}

/// Exit code after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

pub fn run(args: RunArgs) -> anyhow::Result<u8> {
    let settings = RunSettings::resolve(args)?;
    let request = Request {
        source: &settings.source,
        filename: &settings.filename,
        input: &settings.input,
        data_dir: settings.args.data.as_deref(),
        backend: settings.args.backend.forced(),
    };
    let sandbox = Sandbox::builder()
        .from_env()
        .slot_reset(SlotReset::OneShot)
        .build();
    // Ctrl-C drops the run; dropping it removes any container it had started (the
    // container backend's drop guard), so an interrupted run leaves nothing behind.
    let outcome = super::runtime()?.block_on(async {
        tokio::select! {
            outcome = sandbox.run(&request, &settings.policy) => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let Some(outcome) = outcome else {
        eprintln!("stratbox: interrupted");
        return Ok(EXIT_INTERRUPTED);
    };
    // The record is written before the outcome is shown; a failed write is still reported
    // after the outcome, as a usage error (exit code 2).
    let audited = settings.audit.as_ref().map(|log| {
        let facts = RunFacts::new(&sandbox, &request, &settings.policy);
        log.write(&AuditRecord::new(&facts, &outcome))
    });
    report(&outcome, &settings)?;
    if let Some(written) = audited {
        written.context("the run's audit record was not written")?;
    }
    // The process ends here: a wasm run's engine, compiled code and slot need no
    // orderly teardown, and unmapping them cost a trivial `stratbox run` about 2 ms of
    // its 13 (`docs/BENCHMARKS.md`). A container run's sandbox is dropped as usual (its
    // engine connection, its guards).
    if outcome.backend == Some(stratbox::BackendKind::Wasm) {
        std::mem::forget(sandbox);
    }
    Ok(outcome.exit_code())
}

fn report(outcome: &Outcome, settings: &RunSettings) -> anyhow::Result<()> {
    if settings.args.json {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, outcome)?;
        writeln!(stdout)?;
        return Ok(());
    }
    // For people: the strategy's own output passes through, then one summary line.
    std::io::stdout()
        .lock()
        .write_all(outcome.stdout.as_bytes())?;
    let mut stderr = std::io::stderr().lock();
    stderr.write_all(outcome.stderr.as_bytes())?;
    if outcome.status == Status::Rejected {
        stderr.write_all(
            super::check::human(&outcome.violations, &settings.source, &settings.filename)
                .as_bytes(),
        )?;
    }
    writeln!(stderr, "{}", outcome.summary())?;
    Ok(())
}
