//! `stratbox batch`: JSON Lines requests in, one JSON Lines outcome per request out, many
//! runs at once.

use std::io::{IsTerminal as _, Read, Write as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, bail};
use futures_util::stream::{self, Stream, StreamExt as _};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinError;

use stratbox::batch::{
    FileAccess, LineSplitter, Parsed, ProfileChoice, Resolver, Summary, max_line_bytes,
};
use stratbox::request::BatchRequest;
use stratbox::{Outcome, Policy, Sandbox};

use super::BatchArgs;

/// Bytes read from the request stream at a time.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Requests read ahead of the runs, per job: enough to keep every job busy, few enough
/// that memory stays flat whatever the length of the batch.
const READ_AHEAD_PER_JOB: usize = 4;

/// Everything `batch` needs, resolved once from the flags and the profile.
struct BatchSettings {
    jobs: u32,
    container_jobs: u32,
    ordered: bool,
    max_line: usize,
    resolver: Resolver,
    requests: RequestSource,
    pool: usize,
}

/// Where the requests come from.
enum RequestSource {
    /// JSON Lines from stdin.
    Stdin,
    /// JSON Lines from a file (opened already, so a missing file is a usage error).
    File(std::fs::File),
    /// Every `*.py` file of a directory, sorted, each with the shared input file.
    Dir {
        files: Vec<PathBuf>,
        input: Option<PathBuf>,
    },
}

impl BatchSettings {
    fn resolve(args: BatchArgs) -> anyhow::Result<Self> {
        let policy = Policy::load(&args.policy.profile)?;
        let requests = match (&args.dir, args.file.as_deref()) {
            (Some(dir), _) => RequestSource::Dir {
                files: strategies_in(dir)?,
                input: match args.input {
                    Some(input) => {
                        if !std::fs::metadata(&input)
                            .with_context(|| format!("cannot read the input {}", input.display()))?
                            .is_file()
                        {
                            bail!("the input {} is not a file", input.display());
                        }
                        Some(input)
                    }
                    None => None,
                },
            },
            (None, None | Some("-")) => RequestSource::Stdin,
            (None, Some(file)) => RequestSource::File(
                std::fs::File::open(file)
                    .with_context(|| format!("cannot read the requests {file}"))?,
            ),
        };
        let jobs = args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
        });
        Ok(Self {
            jobs,
            container_jobs: args.container_jobs,
            ordered: args.ordered,
            max_line: max_line_bytes(&policy),
            pool: args.pool.unwrap_or(policy.container.pool),
            resolver: {
                let resolver = Resolver::new(policy, FileAccess::Host, ProfileChoice::Any);
                match args.audit.open()? {
                    Some(log) => resolver.with_audit(log),
                    None => resolver,
                }
            },
            requests,
        })
    }
}

/// The `*.py` files directly in `dir`, sorted by name.
fn strategies_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("cannot list --dir {}", dir.display()))?
    {
        let path = entry
            .with_context(|| format!("cannot list --dir {}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "py") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Exit code when an audit record was lost (the usage-error code, as for `run --audit`).
const EXIT_AUDIT_LOST: u8 = 2;

/// Exit code after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;

pub fn run(args: BatchArgs) -> anyhow::Result<u8> {
    let settings = BatchSettings::resolve(args)?;
    let mut builder = Sandbox::builder()
        .from_env()
        .pool_size(settings.jobs)
        .max_containers(settings.container_jobs)
        .container_pool(settings.pool);
    // Several wasm runs at once go to worker processes, one run at a time each: in one
    // process they would slow each other down (see `backend::wasm::workers`).
    if settings.jobs > 1 {
        builder = builder.wasm_workers(super::worker::command()?, settings.jobs as usize);
    }
    let sandbox = Arc::new(builder.build());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.jobs as usize)
        .enable_all()
        .build()?;
    let (sender, receiver) = mpsc::channel(settings.jobs as usize * READ_AHEAD_PER_JOB);
    let length = match &settings.requests {
        RequestSource::Dir { files, .. } => Some(files.len() as u64),
        RequestSource::Stdin | RequestSource::File(_) => None,
    };
    let (max_line, jobs, container_jobs, ordered) = (
        settings.max_line,
        settings.jobs,
        settings.container_jobs,
        settings.ordered,
    );
    let reader = match settings.requests {
        RequestSource::Dir { files, input } => {
            std::thread::spawn(move || send_files(files, input, &sender))
        }
        RequestSource::Stdin => {
            std::thread::spawn(move || send_lines(std::io::stdin().lock(), max_line, &sender))
        }
        RequestSource::File(file) => {
            std::thread::spawn(move || send_lines(file, max_line, &sender))
        }
    };
    let progress = progress_bar(length);
    let resolver = Arc::new(settings.resolver);
    let mut summary = Summary::default();
    let finished = runtime.block_on(async {
        let runs = stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
        .map(|(line, parsed)| {
            let (sandbox, resolver) = (Arc::clone(&sandbox), Arc::clone(&resolver));
            // A task each, so that runs use every worker thread.
            tokio::spawn(async move { resolver.run(&sandbox, parsed, Some(line)).await })
        });
        // wasm runs and container runs each have their own bound inside the sandbox;
        // this many in flight keeps both busy.
        let in_flight = (jobs + container_jobs) as usize;
        let mut outcomes: Pin<Box<dyn Stream<Item = Result<Outcome, JoinError>>>> = if ordered {
            Box::pin(runs.buffered(in_flight))
        } else {
            Box::pin(runs.buffer_unordered(in_flight))
        };
        let write_all = async {
            let mut stdout = std::io::stdout().lock();
            while let Some(joined) = outcomes.next().await {
                let outcome: Outcome =
                    joined.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
                summary.add(&outcome);
                serde_json::to_writer(&mut stdout, &outcome)?;
                stdout.write_all(b"\n")?;
                progress.inc(1);
            }
            stdout.flush()?;
            anyhow::Ok(())
        };
        let finished = tokio::select! {
            written = write_all => written.map(|()| true),
            _ = tokio::signal::ctrl_c() => Ok(false),
        };
        // Warm containers are not left behind, whatever the ending.
        sandbox.shutdown().await;
        finished
    });
    progress.finish_and_clear();
    // Dropping the runtime cancels the runs still in flight; each removes its container.
    drop(runtime);
    if !finished? {
        eprintln!("stratbox: interrupted");
        eprintln!("{}", summary.render());
        return Ok(EXIT_INTERRUPTED);
    }
    reader
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .context("cannot read the requests")?;
    eprintln!("{}", summary.render());
    let (lost, first) = resolver.audit_failures();
    if lost > 0 {
        eprintln!(
            "stratbox: {lost} audit record(s) were not written: {}",
            first.unwrap_or_default()
        );
        return Ok(summary.exit_code().max(EXIT_AUDIT_LOST));
    }
    Ok(summary.exit_code())
}

/// A progress bar on stderr when it is a terminal; hidden otherwise.
fn progress_bar(length: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
    let template = match length {
        Some(_) => "{bar:40} {pos}/{len} runs · {per_sec} · {elapsed}",
        None => "{spinner} {pos} runs · {per_sec} · {elapsed}",
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// Reads JSON Lines from `reader` and sends each line, parsed, to the runs. Stops early
/// when the runs have gone (interrupted).
fn send_lines(
    mut reader: impl Read,
    max_line: usize,
    sender: &mpsc::Sender<(u64, Parsed)>,
) -> std::io::Result<()> {
    let mut splitter = LineSplitter::new(max_line);
    let mut chunk = vec![0; READ_CHUNK_BYTES];
    let mut lines = Vec::new();
    loop {
        let read = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        splitter.push(&chunk[..read], &mut lines);
        for line in lines.drain(..) {
            let parsed = Parsed::from_line(&line, max_line);
            if sender.blocking_send((line.number(), parsed)).is_err() {
                return Ok(());
            }
        }
    }
    if let Some(line) = splitter.finish() {
        let _ = sender.blocking_send((line.number(), Parsed::from_line(&line, max_line)));
    }
    Ok(())
}

/// Sends one request per strategy file, named by its file name.
fn send_files(
    files: Vec<PathBuf>,
    input: Option<PathBuf>,
    sender: &mpsc::Sender<(u64, Parsed)>,
) -> std::io::Result<()> {
    for (number, path) in (1..).zip(files) {
        let request = BatchRequest {
            id: path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned()),
            source: None,
            path: Some(path),
            input: None,
            input_path: input.clone(),
            filename: None,
            backend: Default::default(),
            profile: None,
            limits: None,
        };
        if sender
            .blocking_send((number, Parsed::Request(request)))
            .is_err()
        {
            break;
        }
    }
    Ok(())
}
