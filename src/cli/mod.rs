//! The command line: clap definitions here, one file per subcommand.

mod audit;
mod batch;
mod bench;
mod check;
mod completions;
mod doctor;
mod image;
mod log;
mod probe;
mod run;
mod schema;
mod serve;
mod source;
mod worker;

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use stratbox::BackendKind;

/// Run untrusted Python strategies in a sandbox and report what happened.
#[derive(Debug, Parser)]
#[command(name = "stratbox", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log more to stderr: -v each step, -vv details, -vvv everything (RUST_LOG, when set,
    /// replaces the level the flags choose).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Log only errors to stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate, route and run a strategy.
    Run(RunArgs),
    /// Validate and route a strategy without running it.
    Check(CheckArgs),
    /// Run many strategies at once: JSON Lines requests in, one JSON outcome per line out.
    Batch(BatchArgs),
    /// Serve runs over HTTP/JSON until SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Report what works on this machine: guest, cache, engine, image, seccomp.
    Doctor(DoctorArgs),
    /// Manage the container backend's runtime image.
    Image(ImageArgs),
    /// Measure what isolation costs: fixed workloads through every mode, beside native
    /// python3.
    Bench(BenchArgs),
    /// Print the JSON Schema of what stratbox writes (`outcome`) or reads (`request`).
    Schema(SchemaArgs),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Check audit logs written with `--audit`.
    Audit(AuditArgs),
    /// Serve wasm runs for a parent `stratbox` over stdin and stdout (internal: `batch`
    /// starts these).
    #[command(name = "wasm-worker", hide = true)]
    WasmWorker,
}

/// Which backend runs the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// Let the router decide from the imports.
    Auto,
    /// CPython on WASI, in-process.
    Wasm,
    /// The hardened container.
    Container,
}

impl BackendChoice {
    fn forced(self) -> Option<BackendKind> {
        match self {
            BackendChoice::Auto => None,
            BackendChoice::Wasm => Some(BackendKind::Wasm),
            BackendChoice::Container => Some(BackendKind::Container),
        }
    }
}

/// The profile and limit overrides shared by the subcommands that take a policy.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// Policy profile: a built-in name (default, strict, numeric) or a path to a TOML file.
    #[arg(long, short = 'p', value_name = "P", default_value = stratbox::policy::DEFAULT_PROFILE)]
    profile: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The strategy's source file, or `-` for stdin.
    #[arg(value_name = "FILE")]
    file: String,
    /// A file whose contents the strategy reads on stdin (default: empty stdin).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// A directory granted read-only to the strategy at /data.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Which backend runs the strategy.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Wall-clock deadline, e.g. 5s or 250ms (overrides limits.wall-time).
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Memory cap, e.g. 256MiB (overrides limits.memory).
    #[arg(long, value_name = "S", value_parser = parse_size)]
    memory: Option<u64>,
    /// wasm instruction budget (overrides limits.fuel).
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Cap for stdout and stderr each, e.g. 64KiB (overrides limits.stdout and limits.stderr).
    #[arg(long, value_name = "S", value_parser = parse_size)]
    output: Option<u64>,
    /// Run deterministically with this seed: on wasm, clocks that advance with fuel and
    /// seeded random sources (sets run.deterministic and run.seed).
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// The wall clock a deterministic run starts at, RFC 3339 (default
    /// 2024-01-01T00:00:00Z; overrides run.clock).
    #[arg(long, value_name = "T", value_parser = parse_instant)]
    clock: Option<std::time::Duration>,
    #[command(flatten)]
    audit: AuditArgsFlags,
    /// Print the outcome as one JSON object on stdout instead of passing output through.
    #[arg(long)]
    json: bool,
}

/// The audit log flags of `run`, `batch` and `serve`.
#[derive(Debug, Args)]
pub struct AuditArgsFlags {
    /// Append one JSON line describing each run to FILE (created if missing).
    #[arg(long, value_name = "F")]
    audit: Option<PathBuf>,
    /// When the audit log is flushed to disk.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = AuditFsync::Always, requires = "audit")]
    audit_fsync: AuditFsync,
}

impl AuditArgsFlags {
    /// Opens the log the flags name, before anything runs.
    fn open(&self) -> anyhow::Result<Option<stratbox::audit::AuditLog>> {
        Ok(self
            .audit
            .as_ref()
            .map(|path| {
                stratbox::audit::AuditLog::open(path)
                    .map(|log| log.with_fsync(self.audit_fsync.resolve()))
            })
            .transpose()?)
    }
}

/// When an audit log is flushed to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFsync {
    /// After every record (fdatasync), before the command goes on.
    Always,
    /// When the kernel writes it back; a host crash may lose the last records.
    Never,
}

impl AuditFsync {
    fn resolve(self) -> stratbox::audit::Fsync {
        match self {
            AuditFsync::Always => stratbox::audit::Fsync::EveryRecord,
            AuditFsync::Never => stratbox::audit::Fsync::Never,
        }
    }
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check that every line of an audit log is a record and that the log ends with a
    /// whole line. Exit code 0 when sound, 1 when not, 2 when it cannot be read.
    Verify {
        /// The audit log.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// JSON Lines requests, one per line (see `stratbox schema request`); `-` or nothing
    /// for stdin.
    #[arg(value_name = "FILE", conflicts_with = "dir")]
    file: Option<String>,
    /// Run every `*.py` file directly in DIR instead (each outcome's id is the file name).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// With --dir: a file every strategy reads on stdin (default: empty stdin).
    #[arg(long, value_name = "FILE", requires = "dir")]
    input: Option<PathBuf>,
    /// The profile of requests that name none.
    #[command(flatten)]
    policy: PolicyArgs,
    /// wasm runs at once (default: the number of CPU cores). With more than one, each
    /// runs in one of N worker processes, one run at a time per process: concurrent runs
    /// in one process slow each other down.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    /// Container runs at once, apart from --jobs.
    #[arg(long, value_name = "N", default_value_t = stratbox::SandboxBuilder::DEFAULT_MAX_CONTAINERS,
          value_parser = clap::value_parser!(u32).range(1..=256))]
    container_jobs: u32,
    /// Write the outcomes in input order (default: as the runs finish).
    #[arg(long)]
    ordered: bool,
    /// Warm containers to keep ready (default: the profile's `[container] pool`).
    #[arg(long, value_name = "N")]
    pool: Option<usize>,
    #[command(flatten)]
    audit: AuditArgsFlags,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on; port 0 picks a free one (printed on stderr).
    #[arg(long, value_name = "ADDR", default_value = stratbox::serve::DEFAULT_LISTEN,
          value_parser = serve::parse_listen)]
    listen: std::net::SocketAddr,
    /// A file holding the bearer token every request must carry (`Authorization: Bearer
    /// ...`); required unless listening on a loopback address.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Let requests name files (`path`, `input_path`) that resolve, symbolic links
    /// included, inside DIR; without it, source and input must be inline.
    #[arg(long, value_name = "DIR")]
    files_root: Option<PathBuf>,
    /// The server's profile: the one requests run under, and the ceiling of any they name.
    #[command(flatten)]
    policy: PolicyArgs,
    /// Runs at once (default: the number of CPU cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    max_in_flight: Option<u32>,
    /// Requests waiting for a run slot; past this the server answers 429.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_queue: u32,
    /// After SIGTERM/SIGINT: how long in-flight runs may finish before they are cancelled.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    grace: std::time::Duration,
    /// Write the bound address to FILE once listening (for scripts and tests).
    #[arg(long, value_name = "FILE")]
    ready_file: Option<PathBuf>,
    /// Warm containers to keep ready (default: the profile's `[container] pool`).
    #[arg(long, value_name = "N")]
    pool: Option<usize>,
    /// Wasm instances to keep instantiated ahead of requests (at most --max-in-flight
    /// minus one), made and dropped by a thread of their own: a quarter less latency for a
    /// request that finds one, at the price of that thread's CPU under load.
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(stratbox::backend::wasm::MAX_READY)))]
    wasm_ready: u32,
    #[command(flatten)]
    audit: AuditArgsFlags,
}

#[derive(Debug, Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// Build the runtime image offline from Debian packages (mmdebstrap) and import it
    /// into the engine. Does nothing when the image of this stratbox is already there.
    Build {
        /// Rebuild even if the image is current.
        #[arg(long)]
        force: bool,
        /// Keep the older `stratbox-runtime` images (by default they are removed after a
        /// successful build, except any a container still uses); for engines shared by
        /// several versions of stratbox.
        #[arg(long)]
        keep_old: bool,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The strategy's source file, or `-` for stdin.
    #[arg(value_name = "FILE")]
    file: String,
    #[command(flatten)]
    policy: PolicyArgs,
    /// Check against this backend instead of the one the router picks.
    #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
    backend: BackendChoice,
    /// Print the verdict as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Which sandboxed modes `bench` measures (native python3 is always the baseline).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchBackend {
    /// wasm, wasm-epoch and wasm-cli.
    Wasm,
    /// The container: cold (`container`) and through a warm pool (`container-pool`).
    Container,
    /// The container through a warm pool only.
    ContainerPool,
    /// Through a real `stratbox serve` on loopback (warm pool of one): routed as the server
    /// routes it (`serve`), and every workload in a warm container (`serve-container`).
    Serve,
    /// Every mode.
    All,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measured runs per workload and mode (after one warm-up run).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// Which sandboxed modes to measure.
    #[arg(long, value_enum, default_value_t = BenchBackend::All)]
    backend: BenchBackend,
    /// Count trivial runs per second on all cores instead, SECONDS per mode: python3 -I -S
    /// processes, the in-process library, one `stratbox batch`, `stratbox run` processes.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["runs", "backend", "chart"],
          value_parser = clap::value_parser!(u16).range(1..=3600))]
    throughput: Option<u16>,
    /// Write every sample and the summary to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw each mode's p50 per workload to FILE as an SVG chart.
    #[arg(long, value_name = "FILE.svg")]
    chart: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which document's schema to print.
    #[arg(value_enum)]
    document: SchemaDocument,
}

/// A document whose JSON Schema `stratbox schema` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaDocument {
    /// The outcome of a run (`run --json`, batch and serve responses).
    Outcome,
    /// A batch/serve request.
    Request,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Prove the isolation instead: start one container with the policy's hardening and
    /// run the wasm guest, try what a strategy must not be able to do in each, and report
    /// every probe as held or not (exit 0 only when all hold).
    #[arg(long)]
    probe: bool,
    /// Summarise a seccomp profile instead: the policy's (the engine's default unless it
    /// pins one), or PROFILE (a file name from profiles/seccomp/ or a path), with what a
    /// pinned profile allows that the engine's default does not.
    #[arg(long, value_name = "PROFILE", num_args = 0..=1, default_missing_value = "")]
    seccomp: Option<String>,
    #[command(flatten)]
    policy: PolicyArgs,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    stratbox::policy::units::parse_duration(text).map_err(|err| err.to_string())
}

fn parse_instant(text: &str) -> Result<std::time::Duration, String> {
    stratbox::policy::determinism::parse_instant(text).map_err(|err| err.to_string())
}

fn parse_size(text: &str) -> Result<u64, String> {
    stratbox::policy::units::parse_size(text).map_err(|err| err.to_string())
}

/// Runs the parsed command line; returns the process exit code. An `Err` is a usage or
/// configuration error (exit code 2).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    // A server's one line per run is its access log: shown unless asked to be quiet.
    let verbose = match cli.command {
        Command::Serve(_) => cli.verbose.max(1),
        _ => cli.verbose,
    };
    log::init(verbose, cli.quiet)?;
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Batch(args) => batch::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Image(args) => image::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Audit(args) => audit::run(args),
        Command::WasmWorker => worker::run(),
    }
}

/// A runtime for one command. The current-thread flavour starts fastest.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}
