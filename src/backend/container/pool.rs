//! The warm container pool: containers started ahead of time, each used for one run.
//!
//! A cold container run pays for creating and starting the container, starting the
//! interpreter, the runner's confinement checks and, for a numeric strategy, importing numpy
//! and pandas: about 300 ms before the strategy's first line, and as much again for the
//! imports. A pool of `n` ([`crate::SandboxBuilder::container_pool`]) keeps `n` containers
//! that have done all of that and wait, blocked on stdin, for one strategy:
//!
//! - **Same confinement.** A warm container is created from the same
//!   [`ContainerSpec`] as a cold one, with two differences that are part of the start-up,
//!   not of the confinement: the runner's `--warm` argument (import the policy's
//!   `imports.native` packages, then wait), and RLIMIT_CPU raised by
//!   [`WARM_UP_CPU_SECONDS`](super::config::WARM_UP_CPU_SECONDS) for the imports, which the
//!   runner lowers again to what it used (rounded up to the whole seconds the rlimit counts)
//!   plus `limits.cpu-time` before it reads the strategy. The runner's preflight (seccomp,
//!   no-new-privileges, capabilities, uid, non-dumpable) runs at start-up, as in a cold
//!   container, and a failed check is reported to the run that takes the container.
//! - **Used once.** A run takes a container out of the pool and the container is removed
//!   when the run ends, on every path (after a completed run in the background, off the
//!   run's path); a container is never given back. The filler starts a replacement once
//!   the run's container is removed.
//! - **Keyed.** A pool serves one [`PoolKey`]: the whole container configuration (image,
//!   limits, hardening, data directory, the modules imported ahead). It is set by
//!   [`ContainerPool`]'s first user ([`crate::Sandbox::prewarm_containers`], else the first
//!   container run); a run whose key differs runs cold.
//! - **Never a dead container.** Taking checks that the container's output is still open
//!   and that the engine reports it running; a dead one (killed from outside, the engine
//!   restarted) is discarded and the next is tried, and when none is left the run starts a
//!   cold container. Start-up failures are retried with a growing pause (up to
//!   [`MAX_BACKOFF`]), the last one kept in [`PoolStatus::last_failure`].
//! - **Clocks.** A run's wall time and deadline start when its strategy is handed over, not
//!   when the container started; the CPU budget is restarted as above. What the imports
//!   allocated stays in the container's memory and counts against `limits.memory`, as it
//!   does when a strategy imports pandas in a cold container.
//! - **Cleanup.** [`ContainerPool::shutdown`] (through [`crate::Sandbox::shutdown`]) stops
//!   the filler and removes every container of the pool; dropping the pool does the same,
//!   best effort, blocking the dropping thread for the removals. Every pooled container
//!   carries [`POOL_LABEL`] (the pool's random id) and [`OWNER_LABEL`] (the host process
//!   id) besides [`RUN_LABEL`], so leftovers of a process that crashed
//!   can be listed with `docker ps -a --filter label=org.stratbox.pool`.
//!
//! The filler runs on the tokio runtime that started the pool: keep that runtime alive as
//! long as the pool.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::config::ContainerSpec;
use super::engine::Engine;
use super::guard::{ContainerGuard, remove_now};
use super::run::{self, Attached};
use super::{ContainerError, RUN_LABEL, random_hex};
use crate::backend::{Execution, Job};
use crate::policy::Policy;

/// The label naming the pool a warm container belongs to (a random id per pool).
pub const POOL_LABEL: &str = "org.stratbox.pool";
/// The label naming the host process that owns a warm container (its process id).
pub const OWNER_LABEL: &str = "org.stratbox.pool.owner";
/// The largest pool: each warm container holds a process and its imports in memory.
pub const MAX_POOL_SIZE: usize = 64;
/// How long a container may take from creation to ready (imports included) before it is
/// discarded as failed.
pub const WARM_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// The first pause after a failed start-up; it doubles on each further failure.
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between failed start-ups (an engine that is down).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long `shutdown` waits for the filler to finish the start-up it is in.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// The runner's line on stderr once it waits for a strategy (`wasm/runner.py`).
const READY_LINE: &[u8] = b"@stratbox-ready\n";
/// How much of a failed start-up's stderr is kept for the error.
const START_UP_STDERR_BYTES: usize = 4 << 10;

/// Everything that shapes a warm container: a run may use one only if its own container
/// would be configured exactly so.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolKey {
    /// The configuration, without a name, with the modules imported ahead.
    spec: ContainerSpec,
}

impl PoolKey {
    /// The key of the container `spec` describes for a run of `policy`: the policy's
    /// native packages (`imports.native`) are imported ahead.
    pub fn new(spec: &ContainerSpec, policy: &Policy) -> Self {
        Self {
            spec: ContainerSpec {
                name: String::new(),
                warm_modules: Some(policy.imports.native.keys().cloned().collect()),
                ..spec.clone()
            },
        }
    }

    /// The modules a warm container imports before it waits.
    pub fn modules(&self) -> &[String] {
        self.spec.warm_modules.as_deref().unwrap_or_default()
    }

    fn spec_named(&self, name: String) -> ContainerSpec {
        ContainerSpec {
            name,
            ..self.spec.clone()
        }
    }
}

/// What a pool holds and has done, for metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStatus {
    /// Warm containers the pool keeps.
    pub size: usize,
    /// Containers ready now.
    pub ready: usize,
    /// Containers starting now.
    pub warming: usize,
    /// Runs that used a warm container.
    pub taken: u64,
    /// Runs that found no warm container for their key (the pool was empty, or serves
    /// another policy) and started a cold one.
    pub cold: u64,
    /// Warm containers found dead when taken, and discarded.
    pub discarded: u64,
    /// Start-ups that failed.
    pub failed: u64,
    /// Why the last start-up failed.
    pub last_failure: Option<String>,
    /// The pool was shut down: runs start cold containers.
    pub closed: bool,
}

/// A container ready for one strategy.
pub(super) struct Warm {
    guard: ContainerGuard,
    spec: ContainerSpec,
    attached: Attached,
    /// The pool's room for this container: freed when the container is removed, so that
    /// the filler starts its replacement then.
    permit: OwnedSemaphorePermit,
}

impl Warm {
    /// Whether the container still waits for its strategy: its output is open and silent
    /// (the runner writes nothing while it waits), and the engine reports it running.
    async fn alive(&mut self, engine: &Engine) -> bool {
        if self.attached.output.next().now_or_never().is_some() {
            return false;
        }
        match engine
            .docker()
            .inspect_container(
                &self.spec.name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
        {
            Ok(found) => found
                .state
                .is_some_and(|state| state.running == Some(true) && state.oom_killed != Some(true)),
            Err(_) => false,
        }
    }

    /// Runs `job` in this container and removes it.
    pub(super) async fn run(
        self,
        engine: &Engine,
        job: &Job<'_>,
        policy: &Policy,
    ) -> Result<Execution, ContainerError> {
        let Warm {
            guard,
            spec,
            attached,
            permit,
        } = self;
        let guard = guard.rebind(engine.clone());
        let result = run::drive(engine, &spec, job, policy, attached).await;
        // The container has stopped: it is removed in the background, off the run's path
        // (removal takes the engine a good part of a trivial run). A removal cut short by
        // the runtime's end is finished by the guard's drop, and `shutdown` removes
        // whatever carries the pool's label. Its room in the pool is freed after it.
        tokio::spawn(async move {
            let _ = guard.remove().await;
            drop(permit);
        });
        result?.into_execution()
    }
}

/// The ready containers, and whether the pool still takes new ones.
///
/// The queue and the status's `ready` count change together, under this one lock: a
/// waiter told that `ready >= n` finds `n` containers to take (were the count published
/// before the container was queued, a run woken by it would find the queue empty and
/// start a cold container).
#[derive(Default)]
struct Queue {
    warms: VecDeque<Warm>,
    closed: bool,
}

/// The shared queue; a poisoned lock (a panic while it was held) still holds a valid queue.
#[derive(Default, Clone)]
struct SharedQueue(Arc<Mutex<Queue>>);

impl SharedQueue {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Warm containers for one [`PoolKey`], refilled in the background (see the module docs).
pub struct ContainerPool {
    key: PoolKey,
    id: String,
    engine: Engine,
    ready: SharedQueue,
    status: Arc<watch::Sender<PoolStatus>>,
    /// The filler's room: a permit is held by every container of the pool until it has
    /// been removed, so holding them all means none is left.
    room: Arc<Semaphore>,
    filler: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set once the containers were removed (by `shutdown`, or by `Drop`).
    closed: OnceLock<()>,
}

impl std::fmt::Debug for ContainerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerPool")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl ContainerPool {
    /// Starts a pool of `size` (clamped to 1..=[`MAX_POOL_SIZE`]) warm containers for
    /// `key` on `engine`; the filler is a task of the current tokio runtime.
    pub(super) fn start(key: PoolKey, size: usize, engine: Engine) -> Self {
        let size = size.clamp(1, MAX_POOL_SIZE);
        let id = random_hex();
        let ready = SharedQueue::default();
        let status = Arc::new(watch::Sender::new(PoolStatus {
            size,
            ..PoolStatus::default()
        }));
        let room = Arc::new(Semaphore::new(size));
        let filler = Filler {
            key: key.clone(),
            pool_id: id.clone(),
            engine: engine.clone(),
            ready: ready.clone(),
            status: Arc::clone(&status),
            room: Arc::clone(&room),
        };
        let filler = tokio::spawn(filler.run());
        Self {
            key,
            id,
            engine,
            ready,
            status,
            room,
            filler: Mutex::new(Some(filler)),
            closed: OnceLock::new(),
        }
    }

    /// The key this pool serves.
    pub fn key(&self) -> &PoolKey {
        &self.key
    }

    /// The pool's id (the value of its containers' [`POOL_LABEL`]).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the pool holds and has done.
    pub fn status(&self) -> PoolStatus {
        self.status.borrow().clone()
    }

    /// Waits until at least `count` containers are ready (at most the pool's size), or
    /// the pool is shut down. Returns the status then.
    pub async fn wait_ready(&self, count: usize) -> PoolStatus {
        let mut watching = self.status.subscribe();
        let count = count.min(self.status.borrow().size);
        let status = watching
            .wait_for(|status| status.ready >= count || status.closed)
            .await
            .map(|status| status.clone());
        // The sender lives as long as `self`: the wait cannot lose it.
        status.unwrap_or_else(|_| self.status())
    }

    /// Counts a run that started a cold container although pooling is on.
    pub(super) fn note_cold(&self) {
        self.status.send_modify(|status| status.cold += 1);
    }

    /// A live warm container, or `None` (the run starts a cold one). Dead containers met
    /// on the way are discarded in the background.
    pub(super) async fn take(&self, engine: &Engine) -> Option<Warm> {
        loop {
            let next = {
                let mut queue = self.ready.lock();
                let next = queue.warms.pop_front();
                if next.is_some() {
                    self.status
                        .send_modify(|status| status.ready = status.ready.saturating_sub(1));
                }
                next
            };
            let Some(mut warm) = next else {
                self.note_cold();
                return None;
            };
            if warm.alive(engine).await {
                self.status.send_modify(|status| status.taken += 1);
                return Some(warm);
            }
            self.status.send_modify(|status| status.discarded += 1);
            let guard = warm.guard.rebind(engine.clone());
            let permit = warm.permit;
            tokio::spawn(async move {
                let _ = guard.remove().await;
                drop(permit);
            });
        }
    }

    /// Stops the filler and removes every container of the pool (ready, starting, or left
    /// by a start-up that was cut short), waiting up to a grace period for runs that hold
    /// one to end and for the removals in flight to finish; what is still there then is
    /// removed by force. Later runs start cold containers.
    pub async fn shutdown(&self) {
        let warms = self.drain();
        let filler = self.filler.lock().ok().and_then(|mut filler| filler.take());
        if let Some(mut filler) = filler {
            // The filler sees the pool closed, removes the container it was starting, and
            // ends; one stuck on the engine is cut short (the sweep below catches what it
            // created).
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut filler)
                .await
                .is_err()
            {
                filler.abort();
            }
        }
        let engine = Engine::with_version(Some(self.engine.host()), self.engine.api_version())
            .unwrap_or_else(|_| self.engine.clone());
        let removals = warms.into_iter().map(|warm| {
            let name = warm.guard.disarm();
            let docker = engine.docker().clone();
            async move { remove_now(&docker, &name).await }
        });
        futures_util::future::join_all(removals).await;
        // Every container's room comes back once it is removed: after a run's removal in
        // the background, or after a run that holds a container ends.
        let size = u32::try_from(self.status.borrow().size).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.room.acquire_many(size)).await;
        let _ = sweep(engine.docker(), &self.id).await;
        let _ = self.closed.set(());
    }

    /// Closes the queue and takes every ready container out of it.
    fn drain(&self) -> Vec<Warm> {
        let mut queue = self.ready.lock();
        queue.closed = true;
        self.status.send_modify(|status| {
            status.closed = true;
            status.ready = 0;
        });
        queue.warms.drain(..).collect()
    }
}

impl Drop for ContainerPool {
    fn drop(&mut self) {
        if self.closed.get().is_some() {
            return;
        }
        // The filler, if its runtime still runs, sees the pool closed and removes the
        // container it was starting; the sweep below removes what is already there.
        let names: Vec<String> = self
            .drain()
            .into_iter()
            .map(|warm| warm.guard.disarm())
            .collect();
        // As in the guard's drop: a thread with its own runtime and connection, since the
        // current runtime may be the one shutting down.
        let engine = self.engine.clone();
        let id = self.id.clone();
        let removal = std::thread::Builder::new()
            .name("stratbox-pool-cleanup".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| format!("cannot start a runtime: {err}"))?;
                let docker = engine.reconnect().map_err(|err| err.to_string())?;
                runtime.block_on(async {
                    let removals = names.iter().map(|name| remove_now(&docker, name));
                    futures_util::future::join_all(removals).await;
                    sweep(&docker, &id)
                        .await
                        .map_err(|err| format!("cannot remove the pool's containers: {err}"))
                })
            });
        match removal.map(std::thread::JoinHandle::join) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(message))) => eprintln!("stratbox: {message}"),
            Ok(Err(_panic)) => eprintln!("stratbox: pool cleanup thread panicked"),
            Err(err) => eprintln!("stratbox: cannot start the pool cleanup thread: {err}"),
        }
    }
}

/// Removes every container labelled as belonging to pool `id`.
async fn sweep(docker: &bollard::Docker, id: &str) -> Result<(), bollard::errors::Error> {
    for name in pool_containers(docker, Some(id)).await? {
        remove_now(docker, &name).await?;
    }
    Ok(())
}

/// The names of the pooled containers in the engine: of pool `id`, or of every pool (of
/// every process: leftovers of a process that crashed are among them).
pub async fn pool_containers(
    docker: &bollard::Docker,
    id: Option<&str>,
) -> Result<Vec<String>, bollard::errors::Error> {
    let pool = match id {
        Some(id) => format!("{POOL_LABEL}={id}"),
        None => POOL_LABEL.to_owned(),
    };
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{RUN_LABEL}=1"), pool],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    Ok(docker
        .list_containers(Some(options))
        .await?
        .into_iter()
        .filter_map(|c| c.names?.into_iter().next())
        .map(|name| name.trim_start_matches('/').to_owned())
        .collect())
}

/// The background task that keeps the pool full.
struct Filler {
    key: PoolKey,
    pool_id: String,
    engine: Engine,
    ready: SharedQueue,
    status: Arc<watch::Sender<PoolStatus>>,
    /// One permit per container the pool may hold (ready, starting, or running a strategy).
    room: Arc<Semaphore>,
}

impl Filler {
    async fn run(self) {
        let mut closed = self.status.subscribe();
        let mut backoff = MIN_BACKOFF;
        loop {
            let permit = tokio::select! {
                permit = Arc::clone(&self.room).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_closed) => return,
                },
                _ = closed.wait_for(|status| status.closed) => return,
            };
            self.status.send_modify(|status| status.warming += 1);
            let started = self.start_one(permit).await;
            self.status
                .send_modify(|status| status.warming = status.warming.saturating_sub(1));
            match started {
                Ok(Some(warm)) => {
                    backoff = MIN_BACKOFF;
                    if let Some(warm) = self.queue(warm) {
                        // The pool closed meanwhile.
                        let _ = warm.guard.remove().await;
                        return;
                    }
                }
                // The pool closed during the start-up; the container is removed.
                Ok(None) => return,
                Err(err) => {
                    let message = crate::sandbox::chain(&err);
                    self.status.send_modify(|status| {
                        status.failed += 1;
                        status.last_failure = Some(message);
                    });
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = closed.wait_for(|status| status.closed) => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Queues a ready container and counts it, together; gives it back if the pool closed.
    fn queue(&self, warm: Warm) -> Option<Warm> {
        let mut queue = self.ready.lock();
        if queue.closed {
            return Some(warm);
        }
        queue.warms.push_back(warm);
        self.status.send_modify(|status| status.ready += 1);
        None
    }

    /// Creates, attaches to and starts one container, and waits for its runner to be
    /// ready, in the room `permit` holds; `None` when the pool closed meanwhile. A container
    /// that fails on the way, or is not wanted any more, is removed (and its room freed).
    /// The filler is never cancelled in the middle of this (the pool's close is watched
    /// instead), so a container it created is always either handed over or removed.
    async fn start_one(
        &self,
        permit: OwnedSemaphorePermit,
    ) -> Result<Option<Warm>, ContainerError> {
        let spec = self.key.spec_named(format!("stratbox-{}", random_hex()));
        let owner = std::process::id().to_string();
        let guard = run::create(
            &self.engine,
            &spec,
            &[(POOL_LABEL, &self.pool_id), (OWNER_LABEL, &owner)],
        )
        .await?;
        let mut closed = self.status.subscribe();
        let ready = async {
            let mut attached = run::attach_and_start(&self.engine, &spec.name).await?;
            let waited = tokio::select! {
                waited = tokio::time::timeout(WARM_UP_TIMEOUT, until_ready(&mut attached)) => waited,
                _ = closed.wait_for(|status| status.closed) => return Ok(None),
            };
            match waited {
                Ok(Ok(())) => Ok(Some(attached)),
                Ok(Err(stderr)) => Err(ContainerError::WarmUp {
                    name: spec.name.clone(),
                    detail: format!("the runner ended before it was ready: {stderr}"),
                }),
                Err(_elapsed) => Err(ContainerError::WarmUp {
                    name: spec.name.clone(),
                    detail: format!("not ready after {} s", WARM_UP_TIMEOUT.as_secs()),
                }),
            }
        }
        .await;
        match ready {
            Ok(Some(attached)) if !self.status.borrow().closed => Ok(Some(Warm {
                guard,
                spec,
                attached,
                permit,
            })),
            Ok(_) => {
                let _ = guard.remove().await;
                Ok(None)
            }
            Err(err) => {
                let _ = guard.remove().await;
                Err(err)
            }
        }
    }
}

/// Reads the container's output until the runner's ready line. `Err` carries the end of
/// what it wrote on stderr when its output ended first.
async fn until_ready(attached: &mut Attached) -> Result<(), String> {
    use bollard::container::LogOutput;
    let mut stderr: Vec<u8> = Vec::new();
    while let Some(frame) = attached.output.next().await {
        let message = match frame {
            Ok(LogOutput::StdErr { message }) => message,
            Ok(_) => continue,
            Err(_) => break,
        };
        stderr.extend_from_slice(&message);
        if stderr.windows(READY_LINE.len()).any(|w| w == READY_LINE) {
            return Ok(());
        }
        if stderr.len() > 2 * START_UP_STDERR_BYTES {
            stderr.drain(..stderr.len() - START_UP_STDERR_BYTES);
        }
    }
    let text = String::from_utf8_lossy(&stderr);
    let text = text.trim();
    Err(if text.is_empty() {
        "no output".to_owned()
    } else {
        text.to_owned()
    })
}
