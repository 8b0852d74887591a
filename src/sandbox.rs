//! The whole flow for one strategy: validate, route, run, report.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::backend::wasm::workers::{WasmWorkers, WorkerCommand};
use crate::backend::wasm::{CacheSetting, GuestSource, WasmConfig};
use crate::backend::{Backend, ContainerBackend, Execution, Job, WasmBackend, WasmError};
use crate::outcome::{Outcome, Unreproducible};
use crate::policy::{Policy, units};
use crate::route::{BackendKind, Route, route};
use crate::validate::{Report, RuleId, Violation, validate};

/// One strategy and what it is given.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The source code, as bytes: it is checked to be UTF-8 and within `limits.source`.
    pub source: &'a [u8],
    /// The name tracebacks and diagnostics show for it.
    pub filename: &'a str,
    /// The input document, on the strategy's stdin. Default: empty.
    pub input: &'a [u8],
    /// A host directory granted read-only at `/data`. Default: none.
    pub data_dir: Option<&'a Path>,
    /// Run on this backend instead of the one the router picks. Default: none.
    pub backend: Option<BackendKind>,
}

impl<'a> Request<'a> {
    /// A request with no input, no data directory and automatic routing.
    pub fn new(source: &'a (impl AsRef<[u8]> + ?Sized), filename: &'a str) -> Self {
        Self {
            source: source.as_ref(),
            filename,
            input: b"",
            data_dir: None,
            backend: None,
        }
    }
}

/// Runs strategies. Backends are set up on first use and reused for every run: the wasm
/// engine and compiled guest are loaded once per `Sandbox`. A set-up that fails (the guest
/// not built yet) is tried again on the next run.
///
/// Build one with [`Sandbox::builder`]; [`Sandbox::new`] is the builder's defaults.
#[derive(Debug)]
pub struct Sandbox {
    settings: SandboxBuilder,
    wasm: OnceLock<WasmBackend>,
    /// Worker processes for wasm runs, when [`SandboxBuilder::wasm_workers`] asked for them.
    wasm_workers: Option<WasmWorkers>,
    container: OnceLock<ContainerBackend>,
    /// One permit per container run at once ([`SandboxBuilder::max_containers`]).
    container_slots: tokio::sync::Semaphore,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A sandbox with every default of [`SandboxBuilder`]; reads no environment variable.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder, to set the guest, cache, engine address, image and pool size.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// A sandbox that uses an already-built wasm backend (and the default container
    /// backend).
    pub fn with_wasm(wasm: WasmBackend) -> Self {
        let sandbox = Self::new();
        let _ = sandbox.wasm.set(wasm);
        sandbox
    }

    /// The wasm backend, set up on first use. An `Err` is not remembered: the next call
    /// tries again (a guest built in the meantime is then found).
    pub fn wasm(&self) -> Result<&WasmBackend, WasmError> {
        if let Some(wasm) = self.wasm.get() {
            return Ok(wasm);
        }
        // Two callers racing here both set up a backend; one is kept, the other dropped.
        // Setting up is cheap: the guest is compiled on its first run, not here.
        let wasm = WasmBackend::with_config(self.settings.wasm.clone())?;
        Ok(self.wasm.get_or_init(|| wasm))
    }

    /// The container backend (it connects to the engine on its first run).
    pub fn container(&self) -> &ContainerBackend {
        self.container.get_or_init(|| {
            let mut backend = ContainerBackend::new();
            if let Some(image) = &self.settings.image {
                backend = backend.with_image(image.clone());
            }
            if let Some(host) = &self.settings.docker_host {
                backend = backend.with_docker_host(host.clone());
            }
            backend.with_pool(self.settings.container_pool)
        })
    }

    /// The wasm backend if a run (or [`Sandbox::wasm`]) has set it up; never sets it up.
    pub fn wasm_loaded(&self) -> Option<&WasmBackend> {
        self.wasm.get()
    }

    /// The container backend if a run (or [`Sandbox::container`]) has set it up; never
    /// sets it up.
    pub fn container_loaded(&self) -> Option<&ContainerBackend> {
        self.container.get()
    }

    /// Starts the warm container pool for runs of `policy` now, instead of at the first
    /// container run, so that the first runs find warm containers. Returns whether the pool
    /// serves `policy` (false when pooling is off, or the pool already serves another
    /// policy). `Err` when `policy`'s container cannot be configured or the engine cannot
    /// be reached. Call it inside the tokio runtime that will run the strategies.
    pub async fn prewarm_containers(
        &self,
        policy: &Policy,
    ) -> Result<bool, crate::backend::ContainerError> {
        self.container().prewarm(policy).await
    }

    /// The warm container pool's counts, once it has started.
    pub fn container_pool_status(&self) -> Option<crate::backend::container::PoolStatus> {
        self.container.get()?.pool().map(|pool| pool.status())
    }

    /// Removes every warm container and stops refilling the pool; runs after it start
    /// cold containers. Dropping the sandbox does the same, best effort and blocking; call
    /// this for an orderly exit (a server's shutdown). Nothing to do without a pool.
    pub async fn shutdown(&self) {
        if let Some(container) = self.container.get() {
            container.shutdown().await;
        }
    }

    /// Validates and routes a strategy without running it: the `check` subcommand.
    /// `Err` carries the violations that refuse it.
    pub fn check(&self, request: &Request<'_>, policy: &Policy) -> Result<Route, Vec<Violation>> {
        plan(request, policy).map(|(_, route, _)| route)
    }

    /// Validates, routes and runs one strategy. Every ending, including "the sandbox could
    /// not run it", is an [`Outcome`].
    ///
    /// Emits one `info` event per run (target `stratbox::sandbox`, message `run finished`)
    /// with the backend, status, reason or cause, the run's own wall time (`wall_ms`) and
    /// the time from request to outcome (`total_ms`).
    pub async fn run(&self, request: &Request<'_>, policy: &Policy) -> Outcome {
        let started = std::time::Instant::now();
        let outcome = Outcome {
            seed: policy.determinism().map(|d| d.seed),
            ..self.run_unseeded(request, policy).await
        };
        tracing::info!(
            file = request.filename,
            backend = outcome.backend.map_or("none", BackendKind::as_str),
            status = outcome.status.as_str(),
            reason = outcome.reason.map(crate::outcome::Reason::as_str),
            cause = outcome.cause.map(crate::outcome::Cause::as_str),
            wall_ms = outcome.usage.wall_ms,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "run finished"
        );
        outcome
    }

    async fn run_unseeded(&self, request: &Request<'_>, policy: &Policy) -> Outcome {
        let (source, route, report) = match plan(request, policy) {
            Ok(planned) => planned,
            Err(violations) => return Outcome::rejected(&policy.name, violations),
        };
        // The runner compares CPython's tree with what the validator saw; with the
        // validator switched off there is nothing to compare, and the backends stand alone.
        let inventory = policy.validator.enabled.then_some(&report.inventory);
        let job = Job {
            source,
            filename: request.filename,
            input: request.input,
            data_dir: request.data_dir,
            inventory,
        };
        let executed = match route.backend {
            BackendKind::Wasm => match &self.wasm_workers {
                Some(workers) => workers.execute(&job, policy).await,
                None => match self.wasm() {
                    Ok(wasm) => wasm.execute(&job, policy).await,
                    Err(err) => Err(err.into()),
                },
            },
            BackendKind::Container => {
                // The semaphore is never closed, so acquiring only waits.
                let _slot = self.container_slots.acquire().await;
                self.container().execute(&job, policy).await
            }
        };
        match executed {
            Ok(execution) => finish(execution, route, policy),
            Err(err) => Outcome {
                route: Some(route),
                ..Outcome::unavailable(&policy.name, err.cause(), chain(&err))
            },
        }
    }
}

/// Layer 1: the source checks before parsing, the validator's verdict, then the router's.
/// The source the backends run (without a byte order mark), its route, and the validator's
/// report (whose inventory travels with the job).
fn plan<'a>(
    request: &Request<'a>,
    policy: &Policy,
) -> Result<(&'a str, Route, Report), Vec<Violation>> {
    let source = check_source(request.source, policy).map_err(|v| vec![v])?;
    // CPython skips a UTF-8 byte order mark in a file, but `compile()` of a str refuses
    // one: both backends get the source without it (the validator skips it too).
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let rules = policy.import_rules();
    let report = validate(source, &rules, &policy.validator);
    if !report.is_clean() {
        return Err(report.violations);
    }
    let route = route(&report, &rules, request.backend)?;
    Ok((source, route, report))
}

/// An error and its sources, `outer: inner: innermost`.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Checks what must hold before the source is even parsed: its size and its encoding.
fn check_source<'a>(source: &'a [u8], policy: &Policy) -> Result<&'a str, Violation> {
    let limit = policy.limits.source_bytes;
    if source.len() as u64 > limit {
        return Err(Violation {
            rule: RuleId::SourceSize,
            line: 1,
            col: 1,
            text: String::new(),
            message: format!(
                "the source is larger than the {} that limits.source allows",
                units::format_size(limit)
            ),
            hint: "a strategy is a script: pass data through --input or --data instead of \
                   embedding it in the source"
                .into(),
        });
    }
    std::str::from_utf8(source).map_err(|err| {
        let valid = &source[..err.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        Violation {
            rule: RuleId::Encoding,
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
            text: format!("\\x{:02x}", source[err.valid_up_to()]),
            message: "the source is not valid UTF-8".into(),
            hint: "save the file as UTF-8 (Python 3's default source encoding)".into(),
        }
    })
}

fn finish(execution: Execution, route: Route, policy: &Policy) -> Outcome {
    if let Some(violation) = execution.mismatch {
        return Outcome {
            backend: Some(route.backend),
            route: Some(route),
            ..Outcome::rejected(&policy.name, vec![violation])
        };
    }
    let backend = route.backend;
    let Execution {
        status,
        reason,
        message,
        python,
        exit_code,
        stdout,
        stderr,
        truncated,
        usage,
        mismatch: _,
    } = execution;
    Outcome {
        id: None,
        status,
        reason,
        message,
        backend: Some(route.backend),
        python,
        route: Some(route),
        exit_code,
        stdout,
        stderr,
        truncated,
        violations: Vec::new(),
        usage,
        policy: policy.name.clone(),
        schema_version: crate::outcome::SCHEMA_VERSION,
        cause: None,
        seed: None,
        deterministic: policy.determinism().is_some() && backend == BackendKind::Wasm,
        not_reproducible: match (policy.determinism(), backend) {
            (None, _) | (Some(_), BackendKind::Wasm) => Vec::new(),
            // The container's seed fixes `random` and `hash`; the kernel's clocks, random
            // pool and address layout are the host's.
            (Some(_), BackendKind::Container) => vec![
                Unreproducible::Clock,
                Unreproducible::OsRandom,
                Unreproducible::Addresses,
            ],
        },
    }
}

/// How a [`Sandbox`] is set up. A builder with no calls is valid and safe, and reads no
/// environment variable; these are its defaults:
///
/// | setting | default |
/// |---|---|
/// | guest ([`guest_path`], [`guest_bytes`]) | `stratbox-guest.wasm` beside the running executable if it is there, else the source checkout's `wasm/build/stratbox-guest.wasm` ([`default_guest_path`]) |
/// | cache ([`cache_dir`], [`no_cache`]) | the per-user cache directory, `~/.cache/stratbox` ([`default_cache_dir`]); without one (no home directory) the guest is compiled in memory on every start, never cached in a shared folder |
/// | engine address ([`docker_host`]) | `unix:///var/run/docker.sock` ([`DEFAULT_DOCKER_HOST`]) |
/// | image ([`image`]) | the runtime image of this stratbox, `stratbox-runtime:<hash of its inputs>` ([`ImageSpec::current`]) |
/// | pool size ([`pool_size`]) | 32 wasm runs at once ([`MAX_CONCURRENT_RUNS`]); further runs wait |
/// | warm containers ([`container_pool`]) | 0: every container run starts a cold container (a warm container holds a process and its numpy/pandas imports in memory while it waits, which a one-shot run never gets back) |
/// | containers at once ([`max_containers`]) | [`DEFAULT_MAX_CONTAINERS`]; further container runs wait |
///
/// The cache directory is used only if it, and every folder above it, is owned by the
/// current user (or root, above it) and not writable by group or others; otherwise the
/// guest is compiled in memory ([`WasmBackend::cache_refusal`] says why).
///
/// The environment is read only when asked, by [`from_env`]: the command line calls it,
/// the library never does.
///
/// ```no_run
/// # fn demo() {
/// use stratbox::Sandbox;
///
/// let sandbox = Sandbox::builder()
///     .guest_path("/opt/stratbox/stratbox-guest.wasm")
///     .cache_dir("/var/cache/my-service/stratbox")
///     .docker_host("unix:///run/user/1000/docker.sock")
///     .pool_size(8)
///     .build();
/// # }
/// ```
///
/// [`guest_path`]: SandboxBuilder::guest_path
/// [`guest_bytes`]: SandboxBuilder::guest_bytes
/// [`cache_dir`]: SandboxBuilder::cache_dir
/// [`no_cache`]: SandboxBuilder::no_cache
/// [`docker_host`]: SandboxBuilder::docker_host
/// [`image`]: SandboxBuilder::image
/// [`pool_size`]: SandboxBuilder::pool_size
/// [`container_pool`]: SandboxBuilder::container_pool
/// [`max_containers`]: SandboxBuilder::max_containers
/// [`DEFAULT_MAX_CONTAINERS`]: SandboxBuilder::DEFAULT_MAX_CONTAINERS
/// [`from_env`]: SandboxBuilder::from_env
/// [`default_guest_path`]: crate::backend::wasm::default_guest_path
/// [`default_cache_dir`]: crate::backend::wasm::default_cache_dir
/// [`DEFAULT_DOCKER_HOST`]: crate::backend::container::engine::DEFAULT_DOCKER_HOST
/// [`ImageSpec::current`]: crate::image::ImageSpec::current
/// [`MAX_CONCURRENT_RUNS`]: crate::backend::wasm::MAX_CONCURRENT_RUNS
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SandboxBuilder {
    wasm: WasmConfig,
    docker_host: Option<String>,
    image: Option<String>,
    container_pool: usize,
    max_containers: Option<u32>,
    wasm_workers: Option<(WorkerCommand, usize)>,
}

impl SandboxBuilder {
    /// The environment variable [`from_env`](Self::from_env) reads the guest path from.
    pub const GUEST_ENV: &str = "STRATBOX_GUEST";
    /// The environment variable [`from_env`](Self::from_env) reads the cache directory from.
    pub const CACHE_DIR_ENV: &str = "STRATBOX_CACHE_DIR";
    /// The environment variable [`from_env`](Self::from_env) reads the engine address from.
    pub const DOCKER_HOST_ENV: &str = "DOCKER_HOST";
    /// Container runs at once by default: each container takes a CPU (`cpus`) and up to
    /// its memory limit, so a burst of them must not start all at once.
    pub const DEFAULT_MAX_CONTAINERS: u32 = 4;

    /// Takes settings from the environment where they are set (and not empty):
    /// `STRATBOX_GUEST` (guest path), `STRATBOX_CACHE_DIR` (cache directory) and
    /// `DOCKER_HOST` (engine address). Settings made after this call override them.
    pub fn from_env(mut self) -> Self {
        let var = |name| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(path) = var(Self::GUEST_ENV) {
            self = self.guest_path(path);
        }
        if let Some(dir) = var(Self::CACHE_DIR_ENV) {
            self = self.cache_dir(dir);
        }
        if let Some(host) = var(Self::DOCKER_HOST_ENV) {
            self = self.docker_host(host.to_string_lossy());
        }
        self
    }

    /// Loads the guest component from this file.
    pub fn guest_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.wasm.guest = GuestSource::Path(path.into());
        self
    }

    /// Uses this guest component, already in memory (e.g. `include_bytes!`).
    pub fn guest_bytes(mut self, bytes: impl Into<Arc<[u8]>>) -> Self {
        self.wasm.guest = GuestSource::Bytes(bytes.into());
        self
    }

    /// Caches compiled guests in this directory (created with mode 0700 if missing; its
    /// compiled code is in `wasm/` under it).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wasm.cache = CacheSetting::Dir(dir.into());
        self
    }

    /// Keeps no compiled code on disk: the guest is compiled in memory when the sandbox
    /// first runs it (seconds to a minute for the CPython guest).
    pub fn no_cache(mut self) -> Self {
        self.wasm.cache = CacheSetting::Disabled;
        self
    }

    /// Uses the container engine at `host`: `unix:///path/to/docker.sock` or
    /// `tcp://host:port`.
    pub fn docker_host(mut self, host: impl Into<String>) -> Self {
        self.docker_host = Some(host.into());
        self
    }

    /// Runs container strategies in this image instead of the runtime image of this
    /// stratbox.
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Runs at most `runs` wasm strategies at once (clamped to 1 to
    /// [`MAX_POOL_SIZE`](crate::backend::wasm::MAX_POOL_SIZE)); each is a slot of
    /// wasmtime's pooling allocator, reserved when the guest is first compiled.
    pub fn pool_size(mut self, runs: u32) -> Self {
        self.wasm.pool_size = runs;
        self
    }

    /// What a wasm slot keeps of a run's memory for the next instance
    /// ([`SlotReset`](crate::backend::wasm::SlotReset)): all of it by default (no page
    /// faults for the next run, best for runs that share this process and for latency),
    /// only what the run wrote (`Written`, for a process that runs one strategy at a time
    /// beside others), or nothing with a single slot (`OneShot`, for a sandbox dropped
    /// after one run, as `stratbox run` is).
    pub fn slot_reset(mut self, reset: crate::backend::wasm::SlotReset) -> Self {
        self.wasm.reset = reset;
        self
    }

    /// Keeps `n` wasm instances instantiated ahead of the runs that will take them (clamped
    /// to [`MAX_READY`](crate::backend::wasm::MAX_READY) and to one less than the
    /// [`pool_size`](Self::pool_size), so that a run that finds none ready always has a
    /// slot for its own): a thread of the sandbox instantiates the snapshot
    /// and drops finished runs' stores, so a run that finds an instance ready skips both.
    /// A run that finds none instantiates its own; it never waits for the pool. Each ready
    /// instance is used by one run and dropped; deterministic runs (`--seed`) always
    /// instantiate their own. 0 (the default) keeps none, as a one-shot run should.
    pub fn ready_instances(mut self, n: u32) -> Self {
        self.wasm.ready = n;
        self
    }

    /// Keeps `n` containers started ahead of time, each waiting for one strategy with the
    /// interpreter started, the confinement checked and the policy's native packages
    /// (numpy, pandas) imported; a run takes one and it is removed after the run, and the
    /// pool refills in the background. 0 (the default) starts a cold container per run.
    /// Clamped to [`MAX_POOL_SIZE`](crate::backend::container::pool::MAX_POOL_SIZE).
    ///
    /// The pool serves one policy: the one given to [`Sandbox::prewarm_containers`], else
    /// that of the first container run; runs under another policy (other limits, another
    /// data directory) start cold containers. Profiles carry a size as `[container] pool`
    /// for `batch` and `serve` to pass here. See
    /// [`backend::container::pool`](crate::backend::container::pool) for what a warm
    /// container shares with a cold one and what it does not.
    pub fn container_pool(mut self, n: usize) -> Self {
        self.container_pool = n;
        self
    }

    /// Runs wasm strategies in up to `processes` worker processes started with `command`,
    /// one run at a time in each, instead of in this process. Runs that execute at once in
    /// one process slow each other down (every copy-on-write fault on the guest's snapshot
    /// interrupts the other cores), so a sandbox that runs many at once on several cores
    /// does better with one process per core; see
    /// [`backend::wasm::workers`](crate::backend::wasm::workers), which also says what a
    /// worker is given. `command` starts a program that calls
    /// [`workers::serve`](crate::backend::wasm::workers::serve) (the `stratbox` command's
    /// hidden `wasm-worker` sub-command does). Default: none, every run in this process.
    pub fn wasm_workers(mut self, command: WorkerCommand, processes: usize) -> Self {
        self.wasm_workers = Some((command, processes));
        self
    }

    /// Runs at most `runs` container strategies at once (at least 1); further container
    /// runs wait for one to end. Wasm runs are bounded apart, by [`pool_size`](Self::pool_size).
    pub fn max_containers(mut self, runs: u32) -> Self {
        self.max_containers = Some(runs.max(1));
        self
    }

    /// The sandbox. Nothing is loaded or connected yet: backends are set up on first use.
    pub fn build(self) -> Sandbox {
        let containers = self.max_containers.unwrap_or(Self::DEFAULT_MAX_CONTAINERS);
        Sandbox {
            wasm_workers: self
                .wasm_workers
                .clone()
                .map(|(command, processes)| WasmWorkers::new(command, processes)),
            settings: self,
            wasm: OnceLock::new(),
            container: OnceLock::new(),
            container_slots: tokio::sync::Semaphore::new(containers as usize),
        }
    }
}
