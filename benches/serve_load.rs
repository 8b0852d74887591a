//! Load test of `stratbox serve`: 200 clients for 30 s against a server started with
//! `--max-in-flight 8` (and a warm pool of one); every request must be answered (`200`, or
//! `429` with `Retry-After`), none may hang, the server's resident memory must stay flat
//! after the first 10 s, and no container may be left after SIGTERM. Exit code 0 when all
//! of that held, 1 when a check failed, 2 when the test could not run.
//!
//! ```sh
//! cargo bench --bench serve_load                                # the issue's test
//! cargo bench --bench serve_load -- --clients 40 --seconds 3 --json load.json
//! cargo bench --bench serve_load -- --help
//! ```
//!
//! It needs the wasm guest, a Docker engine and the runtime image (as `stratbox serve`
//! does for container runs), and drives the `stratbox` binary cargo builds beside it. The
//! logic is the library's `stratbox::bench::load`, which `tests/it/serve.rs` runs scaled
//! down.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stratbox::bench::load::{self, LoadConfig};

/// Load test of `stratbox serve`.
#[derive(Debug, Parser)]
struct Args {
    /// Clients at once.
    #[arg(long, default_value_t = LoadConfig::DEFAULT_CLIENTS)]
    clients: usize,
    /// How long the clients keep sending, in seconds.
    #[arg(long, default_value_t = LoadConfig::DEFAULT_DURATION.as_secs())]
    seconds: u64,
    /// The server's --max-in-flight.
    #[arg(long, default_value_t = LoadConfig::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: u32,
    /// The server's --max-queue.
    #[arg(long, default_value_t = LoadConfig::DEFAULT_MAX_QUEUE)]
    max_queue: u32,
    /// The server's --pool (warm containers).
    #[arg(long, default_value_t = 1)]
    pool: usize,
    /// Every Nth request of a client imports numpy (a container run); 0 for none.
    #[arg(long, default_value_t = 10)]
    container_every: u64,
    /// Seconds a client waits for an answer before the request counts as hung.
    #[arg(long, default_value_t = LoadConfig::DEFAULT_CLIENT_TIMEOUT.as_secs())]
    client_timeout: u64,
    /// Send the next request at once after a 429 instead of waiting as Retry-After says.
    #[arg(long)]
    hammer: bool,
    /// The stratbox binary to serve with (default: the one cargo built for this bench).
    #[arg(long)]
    stratbox: Option<PathBuf>,
    /// Also write the report (every memory sample included) as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = LoadConfig {
        clients: args.clients.max(1),
        duration: Duration::from_secs(args.seconds.max(1)),
        max_in_flight: args.max_in_flight.max(1),
        max_queue: args.max_queue,
        pool: args.pool,
        container_every: args.container_every,
        client_timeout: Duration::from_secs(args.client_timeout.max(1)),
        honour_retry_after: !args.hammer,
        ..LoadConfig::new(
            args.stratbox
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_stratbox"))),
        )
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("serve_load: cannot start a runtime: {err}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "serve_load: {} clients for {} s against {} serve --max-in-flight {} --max-queue {} --pool {}",
        config.clients,
        config.duration.as_secs(),
        config.exe.display(),
        config.max_in_flight,
        config.max_queue,
        config.pool
    );
    let report = match runtime.block_on(load::run(&config)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("serve_load: {err}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.render());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|err| err.to_string())
            .and_then(|text| std::fs::write(path, text + "\n").map_err(|err| err.to_string()));
        if let Err(err) = written {
            eprintln!("serve_load: cannot write {}: {err}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
