//! `stratbox serve`: the HTTP/JSON service, until SIGTERM or SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use stratbox::batch::{FileAccess, ProfileChoice, Resolver};
use stratbox::serve::{self, ServeSettings, State};
use stratbox::{Policy, Sandbox};

use super::ServeArgs;

pub fn run(args: ServeArgs) -> anyhow::Result<u8> {
    let policy = Policy::load(&args.policy.profile)?;
    let files = match &args.files_root {
        Some(root) => FileAccess::within(root)
            .with_context(|| format!("cannot use --files-root {}", root.display()))?,
        None => FileAccess::Refused,
    };
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let settings = ServeSettings {
        token,
        max_in_flight: args.max_in_flight.map_or(cores, |n| n as usize),
        max_queued: args.max_queue as usize,
        grace: args.grace,
    };
    settings.check(&args.listen)?;
    let sandbox = Arc::new(
        Sandbox::builder()
            .from_env()
            .pool_size(u32::try_from(settings.max_in_flight).unwrap_or(u32::MAX))
            .container_pool(args.pool.unwrap_or(policy.container.pool))
            .ready_instances(args.wasm_ready)
            .build(),
    );
    let warm = args.pool.unwrap_or(policy.container.pool) > 0;
    let pooled_policy = warm.then(|| policy.clone());
    let resolver = Resolver::new(policy, files, ProfileChoice::Ceiling);
    let resolver = match args.audit.open()? {
        Some(log) => resolver.with_audit(log),
        None => resolver,
    };
    let state = Arc::new(State::new(Arc::clone(&sandbox), resolver, &settings));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        // The pool serves the server's own profile, filled before the first request.
        // Without an engine the server still serves wasm runs; container runs then end
        // `unavailable`, each saying why.
        if let Some(policy) = &pooled_policy
            && let Err(err) = sandbox.prewarm_containers(policy).await
        {
            tracing::warn!(error = %err, "the warm container pool did not start");
        }
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let bound: SocketAddr = listener.local_addr()?;
        eprintln!("stratbox: listening on http://{bound}");
        if let Some(path) = &args.ready_file {
            std::fs::write(path, format!("{bound}\n"))
                .with_context(|| format!("cannot write --ready-file {}", path.display()))?;
        }
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        let served = serve::serve(listener, state, settings.grace, shutdown)
            .await
            .context("the server failed");
        sandbox.shutdown().await;
        served
    });
    // Dropping the runtime cancels what is still running; each run removes its container.
    runtime.shutdown_timeout(std::time::Duration::from_secs(30));
    served?;
    eprintln!("stratbox: stopped");
    Ok(0)
}

/// Checks `--listen` before anything else: the port must parse.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|err| format!("{err}: expected an address such as 127.0.0.1:8750"))
}
