//! Instances ready before they are needed: the guest instantiated off the request path.
//!
//! Instantiating the snapshot (linking the component's core instances, mapping the
//! memory image into a slot) and, after the run, dropping the store (resetting the slot)
//! cost a trivial run about a fifth of its time. With a [`ReadyPool`] a thread of the
//! backend does both: it keeps up to `target` stores instantiated and never called, and
//! it drops the stores of finished runs. It makes a new instance when a run that took one
//! has ended, not while it runs ([`Lease`]), so that the two never compete. A run takes
//! one ready instance (or instantiates
//! its own when none is ready: the pool never makes a run wait), gives it the run's own
//! host state, calls the strategy once, and hands the store back to be dropped.
//!
//! A `Resident` backend that keeps no instance ready still has the thread, with a target
//! of none: it only drops the stores of runs that ended while no other was in flight, so
//! that a lone request's outcome does not wait for its slot's reset (see
//! `WasmBackend::run`).
//!
//! What a ready instance holds, and why nothing carries from one strategy to the next:
//! - it was instantiated from the snapshot and never called: no strategy, and no code of
//!   the runner, has run in it (only the component's start functions, as in every
//!   instantiation; the fuel they burn is charged to the run that takes the instance);
//! - the run's host state (WASI context with its stdin, stdout and stderr, `/data`, the
//!   `/tmp` tree, the memory budget) is made for the run and put into the store when the
//!   run takes it; the state the instance was instantiated with has no streams, no files
//!   and no limit, and no guest code ever saw it;
//! - every store is used for one run and dropped; its slot's memory is reset from the
//!   snapshot before any other instance gets it (wasmtime's pooling allocator);
//! - deterministic runs never use the pool (their clocks are linked at instantiation).
//!
//! Memory: each ready instance holds a slot of the pooling allocator (its permit counts
//! against the backend's concurrent runs) and the pages its instantiation mapped, which
//! are copy-on-write views of the snapshot until a run writes them: a few hundred KiB of
//! the process's resident memory each.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::{Engine, Store};

use super::bindings::{Runner, RunnerPre};
use super::limiter::{MemoryBudget, MemoryCap};
use super::{HostState, scratch::Scratch};

/// Ready instances a backend keeps at most.
pub const MAX_READY: u32 = 64;

/// Epoch ticks a ready instance may wait before its run sets the real deadline: its
/// instantiation runs no guest code, so this only keeps the deadline out of its way.
const IDLE_EPOCH_TICKS: u64 = 1 << 40;

/// How long the filler waits before trying again after an instantiation failed (the run
/// that finds the pool empty instantiates its own instance and reports the failure).
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// How long the filler waits for a free slot before looking again (slots are freed by
/// runs of every metering mode, not all of which it hears of).
const SLOT_POLL: Duration = Duration::from_millis(5);

/// A store instantiated from the snapshot and never called, with the slot it holds.
pub struct Ready {
    pub store: Store<HostState>,
    pub runner: Runner,
    pub permit: OwnedSemaphorePermit,
    /// Fuel the instantiation burnt (the component's start functions run guest code):
    /// the run is charged for it, as a run that instantiates is.
    pub fuel: u64,
    /// Held while the instance is in use, from [`ReadyPool::take`]; see [`Lease`].
    pub lease: Option<Lease>,
}

/// An instance taken from the pool and not yet done with. The pool refills only while
/// its ready instances and those in use are fewer than its target, so that making the
/// next instance never competes with the run that took the last one (two threads of one
/// process changing its mappings at once interrupt each other's core); dropping the
/// lease, after the run's store was handed back or dropped, lets it refill.
pub struct Lease {
    shared: Arc<Shared>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.shared.lock().in_use -= 1;
        self.shared.wake.notify_all();
    }
}

/// A finished run's store, to be dropped (its slot reset) off the request path, and then
/// its slot's permit.
pub type Retired = (Store<HostState>, OwnedSemaphorePermit);

/// The ready instances of one compiled guest and the thread that keeps them.
pub struct ReadyPool {
    shared: Arc<Shared>,
}

struct Shared {
    target: usize,
    state: Mutex<State>,
    wake: Condvar,
    /// Slots held by ready instances, of every pool of the backend.
    held: Arc<HeldSlots>,
}

/// How many of a backend's slots its ready instances hold, shared by its pools (one per
/// metering mode). They may hold all but one: a run that found no instance ready and
/// waits for a slot must get one, and only runs and dropped stores give slots back.
#[derive(Debug)]
pub struct HeldSlots {
    held: std::sync::atomic::AtomicUsize,
    most: usize,
}

impl HeldSlots {
    /// For a backend of `slots` slots.
    pub fn new(slots: usize) -> Self {
        Self {
            held: std::sync::atomic::AtomicUsize::new(0),
            most: slots.saturating_sub(1),
        }
    }

    /// Counts one more held slot if the cap allows it.
    fn try_hold(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.held
            .fetch_update(Relaxed, Relaxed, |held| {
                (held < self.most).then_some(held + 1)
            })
            .is_ok()
    }

    /// A held slot went to a run, or its instance was never made.
    fn release(&self) {
        self.held.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[derive(Default)]
struct State {
    ready: VecDeque<Ready>,
    retired: Vec<Retired>,
    /// Runs that took a ready instance.
    taken: u64,
    /// Instances taken whose [`Lease`] is not dropped yet.
    in_use: usize,
    /// Whether the filler is dropping stores or making an instance right now.
    busy: bool,
    stopped: bool,
}

/// What the filler does next.
enum Work {
    Drop(Vec<Retired>),
    Prepare(OwnedSemaphorePermit),
}

/// What the filler needs to instantiate the guest.
pub struct Filler {
    pub engine: Engine,
    pub pre: RunnerPre<HostState>,
    pub slots: Arc<Semaphore>,
    pub fuel: bool,
}

impl ReadyPool {
    /// Starts the thread that keeps `target` instances ready.
    pub fn start(target: usize, held: Arc<HeldSlots>, filler: Filler) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            target,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            held,
        });
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("stratbox-ready".into())
            .spawn(move || fill(&thread_shared, &filler))?;
        Ok(Self { shared })
    }

    /// A ready instance, or `None` when none is ready (the caller instantiates its own).
    pub fn take(&self) -> Option<Ready> {
        let mut state = self.shared.lock();
        let mut taken = state.ready.pop_front()?;
        self.shared.held.release();
        state.taken += 1;
        state.in_use += 1;
        taken.lease = Some(Lease {
            shared: Arc::clone(&self.shared),
        });
        Some(taken)
    }

    /// Hands a finished run's store to the filler to drop.
    pub fn retire(&self, retired: Retired) {
        self.shared.lock().retired.push(retired);
        self.shared.wake.notify_one();
    }

    /// How many runs took a ready instance.
    pub fn taken(&self) -> u64 {
        self.shared.lock().taken
    }

    /// Blocks until `target` instances are ready and the filler is idle (no store waits
    /// to be dropped or is being dropped), or `timeout` passed; says whether it is.
    pub fn wait_full(&self, timeout: Duration) -> bool {
        let settled = |state: &State| {
            state.ready.len() >= self.shared.target && state.retired.is_empty() && !state.busy
        };
        let state = self.shared.lock();
        let (state, _) = self
            .shared
            .wake
            .wait_timeout_while(state, timeout, |state| !state.stopped && !settled(state))
            .unwrap_or_else(PoisonError::into_inner);
        settled(&state)
    }
}

impl Drop for ReadyPool {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for work: stores to drop first (they free slots), then an instance to
    /// prepare once a slot is free. The filler never waits for a slot while a store waits
    /// to be dropped: that store may hold the slot it waits for.
    fn next(&self, slots: &Arc<Semaphore>) -> Option<Work> {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return None;
            }
            if !state.retired.is_empty() {
                state.busy = true;
                return Some(Work::Drop(std::mem::take(&mut state.retired)));
            }
            let mut timeout = None;
            if state.ready.len() + state.in_use < self.target {
                if self.held.try_hold() {
                    match Arc::clone(slots).try_acquire_owned() {
                        Ok(permit) => {
                            state.busy = true;
                            return Some(Work::Prepare(permit));
                        }
                        Err(_) => self.held.release(),
                    }
                }
                timeout = Some(SLOT_POLL);
            }
            state = match timeout {
                Some(timeout) => {
                    self.wake
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .wake
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

/// The filler's loop: drops retired stores and instantiates until the pool is stopped.
fn fill(shared: &Shared, filler: &Filler) {
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::warn!(%err, "no ready wasm instances: cannot start the filler's runtime");
            return;
        }
    };
    while let Some(work) = shared.next(&filler.slots) {
        let made = match work {
            // A store before its permit: the slot is reset before it is offered again.
            Work::Drop(retired) => {
                drop(retired);
                None
            }
            Work::Prepare(permit) => match runtime.block_on(prepare(filler, permit)) {
                Ok(ready) => Some(ready),
                Err(err) => {
                    shared.held.release();
                    tracing::warn!(error = %format!("{err:#}"), "cannot prepare a wasm instance");
                    std::thread::sleep(RETRY_AFTER);
                    None
                }
            },
        };
        let mut state = shared.lock();
        state.ready.extend(made);
        state.busy = false;
        drop(state);
        shared.wake.notify_all();
    }
    // Stopped: what is still held is dropped here, stores before their permits.
    let mut state = shared.lock();
    for _ in state.ready.drain(..) {
        shared.held.release();
    }
    state.retired.clear();
}

/// One instance of the snapshot in a store with the idle host state.
async fn prepare(filler: &Filler, permit: OwnedSemaphorePermit) -> wasmtime::Result<Ready> {
    let mut store = Store::new(&filler.engine, idle_state());
    store.limiter(|state| &mut state.memory);
    if filler.fuel {
        // Measured here, charged to the run that takes the instance.
        store.set_fuel(u64::MAX)?;
    } else {
        store.set_epoch_deadline(IDLE_EPOCH_TICKS);
    }
    let runner = filler.pre.instantiate_async(&mut store).await?;
    let fuel = match filler.fuel {
        true => u64::MAX - store.get_fuel()?,
        false => 0,
    };
    Ok(Ready {
        store,
        runner,
        permit,
        fuel,
        lease: None,
    })
}

/// The host state a ready instance is made with: no streams, no files, no limit. No guest
/// code runs with it; a run replaces it ([`HostState::adopt`]).
fn idle_state() -> HostState {
    let budget = Arc::new(MemoryBudget::new(u64::MAX));
    HostState {
        wasi: wasmtime_wasi::WasiCtx::builder().build(),
        table: wasmtime::component::ResourceTable::new(),
        scratch: Scratch::new(0, Arc::clone(&budget), false),
        memory: MemoryCap::new(budget),
        clock: None,
    }
}

impl HostState {
    /// Takes over a ready instance's store: `self`'s WASI context, `/tmp`, memory cap and
    /// clock replace the idle ones, and the memory the instantiation allocated is charged
    /// to this run's budget. `false` when that memory alone exceeds the budget (the run is
    /// then stopped for memory, as a cold instantiation would be).
    pub fn adopt(self, store: &mut Store<HostState>) -> bool {
        let idle = std::mem::replace(store.data_mut(), self);
        let state = store.data_mut();
        // The instantiation's resources, if it made any, stay with the instance.
        state.table = idle.table;
        state.memory.adopt(&idle.memory)
    }
}
