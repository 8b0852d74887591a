//! The wasm backend: the pre-initialised CPython guest, run in-process under wasmtime.
//!
//! One [`WasmBackend`] holds one wasmtime `Engine` per metering mode and the guest compiled
//! for it (loaded from the on-disk cache after the first compilation), with an
//! `InstancePre` reused for every run. Each run gets a new `Store` and a new instance of
//! the snapshot, so nothing carries over between runs.
//!
//! What the guest can reach, by construction:
//! - stdin: the job's input document; stdout and stderr: capped pipes;
//! - files: a read-only root holding only the job's data directory, read-only, at `/data`,
//!   and the run's own scratch space at `/tmp`: in memory, capped at the policy's
//!   `tmp-size`, counted against its memory limit and dropped with the run (see
//!   [`scratch`]);
//! - no environment variables, no arguments, no sockets, no name lookup, no processes;
//! - clocks and random numbers from the host (read-only).

mod cache;
mod limiter;
mod output;
mod scratch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::{Backend, BackendError, Execution, Job};
use crate::outcome::{Reason, Status, Truncated, Usage};
use crate::policy::{Metering, OutputOverflow, Policy, units};
use crate::route::BackendKind;

use cache::Guest;
pub use cache::{CacheUse, WASMTIME_VERSION, default_cache_dir, guest_hash};
use limiter::{MemoryBudget, MemoryCap};
use output::CappedPipe;
use scratch::{GuestFiles, Scratch};

wasmtime::component::bindgen!({
    path: "wasm/wit",
    world: "runner",
    exports: { default: async },
});

/// How often the epoch advances. The wall deadline is checked on every tick, so a
/// CPU-bound guest stops within about one tick of it.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How many runs one backend executes at once; further runs wait for a free slot. Each
/// slot is a pre-reserved instance in wasmtime's pooling allocator.
pub const MAX_CONCURRENT_RUNS: u32 = 32;

/// Bytes of each linear-memory slot kept resident between runs and reset with `memset`
/// rather than returned to the kernel. Keeping more saves page faults during the next run
/// but costs a larger reset after each one; measured on a trivial run (instantiate + call +
/// reset), 32 MiB was slower than 2 MiB, and 0 to 8 MiB were within the machine's noise.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;

/// The name of the guest file produced by `wasm/build.sh`.
pub const GUEST_FILE_NAME: &str = "stratbox-guest.wasm";

/// The wasm backend could not run a strategy.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error(
        "the wasm guest is missing: {} does not exist (build it with `make guest`, or set STRATBOX_GUEST to its path)",
        path.display()
    )]
    GuestMissing { path: PathBuf },
    #[error("cannot read the wasm guest {}", path.display())]
    GuestRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the wasm guest {} changed while it was being loaded; run again", path.display())]
    GuestChanged { path: PathBuf },
    #[error("cannot compile the wasm guest")]
    Compile {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot prepare the wasm guest for instantiation")]
    Link {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot grant {} as /data", path.display())]
    DataDir {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the wasm runtime failed outside the guest")]
    Runtime {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

fn boxed(err: wasmtime::Error) -> Box<dyn std::error::Error + Send + Sync> {
    err.into()
}

/// Where the guest component is found, in order: `$STRATBOX_GUEST`; `stratbox-guest.wasm`
/// beside the running executable; the crate's own `wasm/build/` folder (a source checkout).
pub fn default_guest_path() -> PathBuf {
    if let Some(path) = std::env::var_os("STRATBOX_GUEST") {
        return PathBuf::from(path);
    }
    if let Some(beside) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(GUEST_FILE_NAME)))
        .filter(|path| path.is_file())
    {
        return beside;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wasm/build")
        .join(GUEST_FILE_NAME)
}

/// The per-run host state: the WASI context, the scratch space and the memory cap.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    scratch: Scratch,
    memory: MemoryCap,
}

impl HostState {
    fn files(&mut self) -> GuestFiles<'_> {
        GuestFiles {
            scratch: &mut self.scratch,
            real: wasmtime_wasi::filesystem::WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The guest compiled for one engine configuration, ready to instantiate.
struct Compiled {
    engine: Engine,
    pre: RunnerPre<HostState>,
    cache_use: CacheUse,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// The raised error that marks a run stopped by the epoch deadline check.
#[derive(Debug, thiserror::Error)]
#[error("the wall-clock deadline passed")]
struct DeadlineReached;

/// Runs strategies in the pre-initialised CPython guest.
pub struct WasmBackend {
    guest: Guest,
    cache_dir: PathBuf,
    /// Compiled guests by metering mode, built on first use.
    compiled: Mutex<Vec<(Metering, Arc<Compiled>)>>,
    /// One permit per pooling-allocator slot.
    slots: tokio::sync::Semaphore,
}

impl std::fmt::Debug for WasmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmBackend")
            .field("guest", &self.guest.path)
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl WasmBackend {
    /// The guest at [`default_guest_path`], cached in [`default_cache_dir`].
    pub fn new() -> Result<Self, WasmError> {
        Self::with_paths(&default_guest_path(), &default_cache_dir())
    }

    /// A guest at `guest_path`, with compiled code cached under `cache_dir`.
    pub fn with_paths(guest_path: &Path, cache_dir: &Path) -> Result<Self, WasmError> {
        let guest = Guest::identify(guest_path, cache_dir).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                WasmError::GuestMissing {
                    path: guest_path.to_owned(),
                }
            } else {
                WasmError::GuestRead {
                    path: guest_path.to_owned(),
                    source,
                }
            }
        })?;
        Ok(Self {
            guest,
            cache_dir: cache_dir.to_owned(),
            compiled: Mutex::new(Vec::new()),
            slots: tokio::sync::Semaphore::new(MAX_CONCURRENT_RUNS as usize),
        })
    }

    /// Where the guest was loaded from.
    pub fn guest_path(&self) -> &Path {
        &self.guest.path
    }

    /// The guest's content hash (the cache key's first part).
    pub fn guest_hash(&self) -> &str {
        &self.guest.hash
    }

    /// The language level of the guest's CPython (`3.14`), read from the name of its
    /// interpreter library; `None` if the guest names none.
    pub fn python(&self) -> Option<&str> {
        self.guest.python.as_deref()
    }

    /// Compiles (or loads from the cache) the guest for `metering` now, rather than on
    /// the first run, and says how it was obtained.
    pub fn prepare(&self, metering: Metering) -> Result<CacheUse, WasmError> {
        Ok(self.compiled(metering)?.cache_use)
    }

    fn compiled(&self, metering: Metering) -> Result<Arc<Compiled>, WasmError> {
        let mut compiled = self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, ready)) = compiled.iter().find(|(mode, _)| *mode == metering) {
            return Ok(Arc::clone(ready));
        }
        let ready = Arc::new(self.compile(metering)?);
        compiled.push((metering, Arc::clone(&ready)));
        Ok(ready)
    }

    fn compile(&self, metering: Metering) -> Result<Compiled, WasmError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(metering == Metering::Fuel)
            .epoch_interruption(true)
            // CPython recurses on the wasm stack; its own recursion limit (1000 frames)
            // needs more than wasmtime's 512 KiB default.
            .max_wasm_stack(8 << 20)
            .async_stack_size(10 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling()));
        let engine = Engine::new(&config).map_err(|source| WasmError::Compile {
            source: boxed(source),
        })?;
        let (component, cache_use) = cache::load_or_compile(&engine, &self.guest, &self.cache_dir)?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| scratch::add_to_linker(&mut linker, HostState::files))
            .map_err(|source| WasmError::Link {
                source: boxed(source),
            })?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(RunnerPre::new)
            .map_err(|source| WasmError::Link {
                source: boxed(source),
            })?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), Arc::clone(&ticker_stop)).map_err(|source| {
            WasmError::Runtime {
                source: source.into(),
            }
        })?;
        Ok(Compiled {
            engine,
            pre,
            cache_use,
            ticker_stop,
        })
    }

    async fn run(&self, job: &Job<'_>, policy: &Policy) -> Result<Execution, WasmError> {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|source| WasmError::Runtime {
                source: source.into(),
            })?;
        let limits = &policy.limits;
        let compiled = self.compiled(limits.metering)?;
        let kill = limits.output_overflow == OutputOverflow::Kill;
        let stdout = CappedPipe::new("stdout", cap(limits.stdout_bytes), kill);
        let stderr = CappedPipe::new("stderr", cap(limits.stderr_bytes), kill);

        // Everything not granted here is denied: no environment, no arguments, no
        // files but /data and the run's own /tmp (`scratch`), no sockets and no name
        // lookup.
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdin(MemoryInputPipe::new(Bytes::copy_from_slice(job.input)))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(dir) = job.data_dir {
            wasi.preopened_dir(dir, "/data", FsPerms::ReadOnly)
                .map_err(|source| WasmError::DataDir {
                    path: dir.to_owned(),
                    source: boxed(source),
                })?;
        }
        let budget = Arc::new(MemoryBudget::new(limits.memory_bytes));
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            scratch: Scratch::new(
                limits.tmp_bytes,
                Arc::clone(&budget),
                job.data_dir.is_some(),
            ),
            memory: MemoryCap::new(budget),
        };

        let inventory = job
            .inventory
            .map(serde_json::to_string)
            .transpose()
            .map_err(|source| WasmError::Runtime {
                source: source.into(),
            })?;

        let mut store = Store::new(&compiled.engine, state);
        store.limiter(|state| &mut state.memory);
        if limits.metering == Metering::Fuel {
            store
                .set_fuel(limits.fuel)
                .map_err(|source| WasmError::Runtime {
                    source: boxed(source),
                })?;
        }
        let started = Instant::now();
        let deadline = started + limits.wall_time;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineReached))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        // The timer ends runs blocked in a host call (sleeping, reading stdin) that the
        // epoch check alone cannot reach.
        let result = tokio::time::timeout_at(deadline.into(), async {
            let runner = compiled.pre.instantiate_async(&mut store).await?;
            runner
                .call_run(&mut store, job.source, job.filename, inventory.as_deref())
                .await
        })
        .await;
        let wall = started.elapsed();

        let fuel = match limits.metering {
            Metering::Fuel => limits.fuel - store.get_fuel().unwrap_or(0),
            Metering::Epoch => 0,
        };
        let memory = &store.data().memory;
        let usage = Usage {
            wall_ms: wall.as_secs_f64() * 1e3,
            fuel,
            memory_peak_bytes: memory.peak_bytes(),
        };
        let memory_refused = memory.refused();
        let scratch_full = store.data().scratch.ran_out();
        let overflowed = stdout.overflowed() || stderr.overflowed();
        drop(store);

        let (out, out_cut) = stdout.take();
        let (err, err_cut) = stderr.take();
        let mut execution = Execution {
            status: Status::Ok,
            reason: None,
            message: None,
            python: self.guest.python.clone(),
            exit_code: None,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
            truncated: Truncated {
                stdout: out_cut,
                stderr: err_cut,
            },
            usage,
            mismatch: None,
        };
        let killed = |reason| (Status::Killed, Some(reason), None, None);
        let (status, reason, exit_code, message) = match result {
            Err(_elapsed) => killed(Reason::Deadline),
            Ok(Ok(finished)) => match finished.ending {
                Ending::Ok => (Status::Ok, None, Some(finished.exit_code), None),
                Ending::Exception | Ending::Exit => {
                    (Status::Error, None, Some(finished.exit_code), None)
                }
                Ending::Memory => killed(Reason::Memory),
                Ending::Mismatch => {
                    execution.mismatch =
                        Some(super::mismatch_violation(finished.detail.as_deref()));
                    (Status::Error, None, Some(finished.exit_code), None)
                }
            },
            Ok(Err(error)) => {
                if kill && overflowed {
                    killed(Reason::Output)
                } else if error.is::<DeadlineReached>() {
                    killed(Reason::Deadline)
                } else if matches!(error.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
                    killed(Reason::Fuel)
                } else if let Some(exit) = error.downcast_ref::<I32Exit>() {
                    // `os._exit(n)` ends the guest through WASI's exit.
                    let status = if exit.0 == 0 {
                        Status::Ok
                    } else {
                        Status::Error
                    };
                    (status, None, Some(exit.0), None)
                } else if memory_refused {
                    killed(Reason::Memory)
                } else {
                    (
                        Status::Error,
                        None,
                        None,
                        Some(format!("the guest trapped: {error:#}")),
                    )
                }
            }
        };
        let message = match (status, message) {
            (Status::Error, None) if scratch_full => Some(format!(
                "/tmp reached its tmp-size of {}: writing past it fails with OSError \
                 (errno EIO in the wasm guest, whose WASI adapter cannot report ENOSPC)",
                units::format_size(limits.tmp_bytes)
            )),
            (_, message) => message,
        };
        execution.status = status;
        execution.reason = reason;
        execution.exit_code = exit_code;
        execution.message = message;
        Ok(execution)
    }
}

impl Backend for WasmBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wasm
    }

    async fn execute(&self, job: &Job<'_>, policy: &Policy) -> Result<Execution, BackendError> {
        Ok(self.run(job, policy).await?)
    }
}

fn cap(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// The pooling allocator's slots: memories and instances are reserved once and reused, so
/// instantiating the snapshot is a few `madvise`/`memset` calls instead of fresh mappings.
fn pooling() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(MAX_CONCURRENT_RUNS)
        .total_core_instances(MAX_CONCURRENT_RUNS * 16)
        .total_memories(MAX_CONCURRENT_RUNS * 2)
        .total_tables(MAX_CONCURRENT_RUNS * 16)
        .total_stacks(MAX_CONCURRENT_RUNS)
        // The guest is wasm32: 4 GiB is its whole address space. The policy's memory
        // limit is enforced below that by the store's limiter.
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
    pool
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until `stop` is set. Without it a
/// CPU-bound guest would never reach its deadline check, so failing to start it is an error.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("stratbox-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .map(drop)
}
