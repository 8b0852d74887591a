//! The container backend: a hardened Docker container per run, driven through bollard.
//!
//! For native-extension workloads (numpy, pandas) the wasm guest cannot carry. Each run
//! gets a new container from the runtime image that `stratbox image build` makes (see
//! [`crate::image`]); the shared runner inside it reads the strategy and its input from
//! stdin, checks its own confinement, runs the strategy and reports how it ended.
//!
//! What the container gets, by construction ([`config::ContainerSpec`]):
//! - no network (`network_mode = none`); no host files except the job's data directory,
//!   read-only and non-recursive, at `/data`; no environment from the host;
//! - a read-only root file system; `/tmp` is a tmpfs capped at `limits.tmp-size`,
//!   mounted `noexec,nosuid,nodev`; no `/dev/shm` (`ipc = none`);
//! - memory limit `limits.memory` with swap equal to it (no swap), CPU quota
//!   `container.cpus`, pids limit `container.max-pids`;
//! - rlimits: `nofile` and `fsize` from the policy, `core` 0, `cpu` from `limits.cpu-time`
//!   (SIGXCPU, then SIGKILL one second later);
//! - user 10001 (never root), every capability dropped, no-new-privileges, the engine's
//!   default seccomp profile (or a pinned one the policy names; never unconfined), tini as
//!   PID 1 reaping children, its own cgroup namespace, engine logging off.
//!
//! Swap equal to memory means no swap at all. On cgroup v1 that needs swap accounting
//! (`memory.memsw.*` files; `docker info` reports `SwapLimit: true`); without it the engine
//! drops the swap limit with a warning and a container may page out beyond its memory limit
//! into the host's swap, if the host has any. The memory limit itself holds either way.
//!
//! Before the strategy starts, the runner makes its process non-dumpable (so that
//! `/proc/self/mem` and `/proc/self/environ` belong to root and the strategy cannot open
//! them) and confirms that it is, and from `/proc/self/status` that `Seccomp` is 2,
//! `NoNewPrivs` is 1, `CapEff` is zero and the uid is not 0; otherwise the strategy never
//! runs and the run is `unavailable` ([`ContainerError::Preflight`]). The image holds no
//! program but python3 and tini for a strategy to start (see [`crate::image`]).
//!
//! How a run ends, and the outcome it gets (the same `status`/`reason` as the wasm backend
//! for the same limit):
//!
//! | what happened                                       | status / reason     |
//! |-----------------------------------------------------|---------------------|
//! | the wall deadline passed (the container is killed)  | killed / deadline   |
//! | RLIMIT_CPU: SIGXCPU (exit 152), or SIGKILL after it | killed / cpu        |
//! | OOM kill (`State.OOMKilled`), or Python MemoryError | killed / memory     |
//! | output past a cap under `output-overflow = "kill"`  | killed / output     |
//! | SIGXFSZ (exit 153; CPython ignores it, so rare)     | killed / disk       |
//! | fork bomb: the pids limit makes `fork` fail (EAGAIN)| error, exit 1, `BlockingIOError` in stderr |
//! | `/tmp` full, file past `max-file-size`              | error (`OSError` ENOSPC / EFBIG in stderr) |
//! | the engine cannot be reached                        | unavailable (names the socket) |
//! | the image is missing                                | unavailable (names `stratbox image build`) |
//!
//! A fork bomb is contained, not reported as `killed`/`pids`: the pids cgroup refuses new
//! processes, which Python raises as `BlockingIOError: [Errno 11] Resource temporarily
//! unavailable`, and the engine offers no record of the refusal after the container is gone.
//!
//! The container is removed on every path: explicitly after each run, and by a drop guard
//! ([`guard::ContainerGuard`]) when the run's future is dropped (Ctrl-C in the CLI) or
//! unwinds (panic). Every container is named `stratbox-<random>` and labelled
//! `org.stratbox.run=1`, so leftovers can be listed with
//! `docker ps -a --filter label=org.stratbox.run`.
//!
//! With a warm pool ([`ContainerBackend::with_pool`], [`crate::SandboxBuilder::container_pool`])
//! the containers are started ahead of time with the same configuration and each still
//! serves one run; see [`pool`] for what differs (the start-up, and when the clocks start).

pub mod capture;
pub mod config;
pub mod engine;
pub mod guard;
pub mod leftovers;
pub mod pool;
pub mod probe;
mod run;
pub mod seccomp;
pub mod seccomp_report;

use std::path::PathBuf;
use std::sync::OnceLock;

use bollard::ClientVersion;

use super::{Backend, BackendError, Execution, Job};
use crate::image::{ImageFacts, ImageSpec};
use crate::outcome::Cause;
use crate::policy::Policy;
use crate::route::BackendKind;

pub use config::{ContainerSpec, RUN_LABEL};
pub use engine::{Engine, EngineError};
pub use pool::{ContainerPool, PoolKey, PoolStatus};
pub use seccomp::SeccompProfile;

/// The command that builds the runtime image.
pub const IMAGE_BUILD_COMMAND: &str = "stratbox image build";

/// The container backend could not run a strategy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The engine is not reachable (the message names the address tried).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The runtime image is not in the engine.
    #[error("the container image {image} is missing; build it with `{IMAGE_BUILD_COMMAND}`")]
    ImageMissing {
        /// The tag looked for.
        image: String,
    },
    /// The runtime image is not in the engine, but images built from other inputs (by
    /// another version of stratbox) are.
    #[error(
        "the container image {image} is missing (found images of another stratbox version: {}); build it with `{IMAGE_BUILD_COMMAND}`",
        found.join(", ")
    )]
    ImageStale {
        /// The tag looked for.
        image: String,
        /// The `stratbox-runtime` tags the engine has.
        found: Vec<String>,
    },
    /// An engine request failed.
    #[error("container engine error while {action}")]
    Api {
        /// What was being done (`starting container stratbox-…`).
        action: String,
        /// The client error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The data directory cannot be granted.
    #[error("cannot grant {} as /data", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The policy's seccomp profile cannot be used.
    #[error("seccomp profile `{name}`: {message}")]
    Seccomp {
        /// The name or path the policy gave.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The runner found no seccomp filter in force (the engine applies none); the strategy
    /// was not started.
    #[error(
        "no seccomp filter is in force in the container ({detail}); the strategy was not started"
    )]
    SeccompUnsupported {
        /// Which checks failed.
        detail: String,
    },
    /// A container of the warm pool did not become ready (it never carries a strategy:
    /// runs then start cold containers).
    #[error("warm container {name} did not start: {detail}")]
    WarmUp {
        /// The container.
        name: String,
        /// What went wrong.
        detail: String,
    },
    /// The runner found the confinement not in force; the strategy was not started.
    #[error("the container's confinement is not in force ({detail}); the strategy was not started")]
    Preflight {
        /// Which checks failed.
        detail: String,
    },
}

impl ContainerError {
    /// Which part failed, as the outcome reports it.
    pub fn cause(&self) -> Cause {
        match self {
            ContainerError::Engine(_) => Cause::EngineUnreachable,
            ContainerError::ImageMissing { .. } => Cause::ImageMissing,
            ContainerError::ImageStale { .. } => Cause::ImageStale,
            ContainerError::Api { .. } => Cause::EngineError,
            ContainerError::DataDir { .. } => Cause::DataDir,
            ContainerError::Seccomp { .. } => Cause::SeccompProfile,
            ContainerError::SeccompUnsupported { .. } => Cause::SeccompUnsupported,
            ContainerError::Preflight { .. } => Cause::ConfinementFailed,
            ContainerError::WarmUp { .. } => Cause::EngineError,
        }
    }
}

/// Runs strategies in hardened containers.
///
/// `ContainerBackend::default()` uses the image of this build of stratbox
/// ([`ImageSpec::current`]) and the engine at [`engine::DEFAULT_DOCKER_HOST`] (no
/// environment variable is read), and no warm pool. It connects lazily, on the first run,
/// and negotiates the API version once; each run then uses a fresh client, so a backend may
/// be shared across runtimes (a warm pool, though, lives on the runtime that started it:
/// see [`pool`]).
#[derive(Debug, Default)]
pub struct ContainerBackend {
    image: Option<String>,
    docker_host: Option<String>,
    api_version: OnceLock<ClientVersion>,
    /// The image's language level (from its labels), looked up on the first run.
    python: tokio::sync::OnceCell<Option<String>>,
    /// The image's id (`sha256:…`), looked up with its language level.
    image_id: OnceLock<String>,
    /// Warm containers to keep; 0: every run starts a cold container.
    pool_size: usize,
    /// The warm pool, started by the first run or [`ContainerBackend::prewarm`].
    pool: OnceLock<ContainerPool>,
}

impl ContainerBackend {
    /// The default backend (see the type's docs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs strategies in `image` instead of the current runtime image.
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Uses the engine at `host` (`unix:///path` or `tcp://host:port`) instead of the
    /// default socket.
    pub fn with_docker_host(mut self, host: impl Into<String>) -> Self {
        self.docker_host = Some(host.into());
        self
    }

    /// Keeps `size` warm containers ready (see [`pool`]); 0, the default, starts a cold
    /// container for every run. Clamped to [`pool::MAX_POOL_SIZE`].
    pub fn with_pool(mut self, size: usize) -> Self {
        self.pool_size = size.min(pool::MAX_POOL_SIZE);
        self
    }

    /// The warm pool, once started.
    pub fn pool(&self) -> Option<&ContainerPool> {
        self.pool.get()
    }

    /// Starts the warm pool for runs of `policy` (without a data directory), if pooling is
    /// on and no pool was started yet. Returns whether the pool serves `policy`'s runs.
    pub async fn prewarm(&self, policy: &Policy) -> Result<bool, ContainerError> {
        if self.pool_size == 0 {
            return Ok(false);
        }
        let spec = ContainerSpec::new(policy, &self.image(), "", None)?;
        let engine = self.engine().await?;
        Ok(self.pool_for(&spec, policy, &engine).is_some())
    }

    /// Stops the warm pool's filler and removes every pooled container; later runs start
    /// cold containers. Nothing to do without a pool.
    pub async fn shutdown(&self) {
        if let Some(pool) = self.pool.get() {
            pool.shutdown().await;
        }
    }

    /// The pool, started for this key if there is none yet, when it serves `spec`'s key.
    fn pool_for(
        &self,
        spec: &ContainerSpec,
        policy: &Policy,
        engine: &Engine,
    ) -> Option<&ContainerPool> {
        if self.pool_size == 0 {
            return None;
        }
        let key = PoolKey::new(spec, policy);
        let pool = self
            .pool
            .get_or_init(|| ContainerPool::start(key.clone(), self.pool_size, engine.clone()));
        if *pool.key() == key {
            Some(pool)
        } else {
            pool.note_cold();
            None
        }
    }

    /// The image runs use.
    pub fn image(&self) -> String {
        self.image
            .clone()
            .unwrap_or_else(|| ImageSpec::current().tag())
    }

    /// The id (`sha256:…`) of the image the runs use, once a run has looked it up; `None`
    /// before the first run.
    pub fn image_id(&self) -> Option<&str> {
        self.image_id.get().map(String::as_str)
    }

    /// Connects to the engine (negotiating the API version on first use).
    pub async fn engine(&self) -> Result<Engine, EngineError> {
        let host = self.docker_host.as_deref();
        if let Some(version) = self.api_version.get() {
            return Engine::with_version(host, version);
        }
        let engine = Engine::connect(host).await?;
        tracing::debug!(
            host = engine.host(),
            api = %engine.api_version(),
            "connected to the container engine"
        );
        if self.api_version.set(*engine.api_version()).is_ok() {
            // Once per backend: what killed or cut-off processes left behind.
            leftovers::sweep(engine.docker()).await;
        }
        Ok(engine)
    }

    /// Runs one job (the [`Backend`] entry point, with the concrete error type).
    pub async fn run(&self, job: &Job<'_>, policy: &Policy) -> Result<Execution, ContainerError> {
        let image = self.image();
        let name = format!("stratbox-{}", random_hex());
        let spec = ContainerSpec::new(policy, &image, &name, job.data_dir)?;
        let engine = self.engine().await?;
        let python = self.python(&engine, &image).await?;
        let warm = match self.pool_for(&spec, policy, &engine) {
            Some(pool) => pool.take(&engine).await,
            None => None,
        };
        let mut execution = match warm {
            Some(warm) => warm.run(&engine, job, policy).await?,
            None => run::run(&engine, &spec, job, policy).await?,
        };
        execution.python = python;
        Ok(execution)
    }

    /// The image's CPython language level (`3.13`), from the labels the image build
    /// stores ([`crate::image::ImageFacts`]); `None` for an image without them. Looked up
    /// once per backend; a missing image is [`ContainerError::ImageMissing`].
    async fn python(&self, engine: &Engine, image: &str) -> Result<Option<String>, ContainerError> {
        self.python
            .get_or_try_init(|| async {
                let found = engine.docker().inspect_image(image).await;
                tracing::debug!(image, present = found.is_ok(), "image checked");
                match found {
                    Ok(found) => Ok({
                        if let Some(id) = found.id {
                            let _ = self.image_id.set(id);
                        }
                        found
                            .config
                            .and_then(|config| config.labels)
                            .and_then(|labels| ImageFacts::from_labels(&labels))
                            .map(|facts| facts.python_level())
                    }),
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => Err(ContainerError::ImageMissing {
                        image: image.to_owned(),
                    }),
                    Err(source) => Err(ContainerError::Api {
                        action: format!("inspecting image {image}"),
                        source,
                    }),
                }
            })
            .await
            .cloned()
    }
}

impl Backend for ContainerBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Container
    }

    async fn execute(&self, job: &Job<'_>, policy: &Policy) -> Result<Execution, BackendError> {
        Ok(self.run(job, policy).await?)
    }
}

/// 16 random hex digits (64 bits from the kernel's random pool), for container names and
/// result nonces.
pub(crate) fn random_hex() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 8];
    let from_kernel =
        std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_kernel.is_err() {
        // The standard library's hasher keys are seeded from the OS's randomness.
        use std::hash::{BuildHasher as _, Hasher as _};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        bytes = hasher.finish().to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
