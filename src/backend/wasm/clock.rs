//! Virtual time for deterministic runs: the guest's clocks advance with the fuel it
//! consumes, never with the host's time, and sleeping moves the clock instead of waiting.
//!
//! The rule, in nanoseconds of guest time:
//!
//! ```text
//! monotonic now = fuel consumed so far + time slept so far
//! wall now      = start instant + monotonic now      (start: 2024-01-01T00:00:00Z or run.clock)
//! ```
//!
//! One unit of fuel is one nanosecond: a strategy that burns a billion units of fuel sees a
//! second pass. A sleep (`time.sleep`, any `wasi:clocks/monotonic-clock` subscription the
//! guest polls) is ready at once and moves "time slept" forward so that the clock reads at
//! least the instant asked for; the clocks never go backwards. Fuel is read from the store
//! at each clock call, so the readings are a function of the guest's own instructions only.
//!
//! These functions are linked over the ones `wasmtime_wasi::p2::add_to_linker_async` made
//! (linker shadowing), into a second linker used only for deterministic runs: other runs
//! keep the host's clocks, untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::HostState;

/// The `wasi:clocks` interfaces as `wasmtime_wasi` 48 links them (imports of older 0.2
/// versions resolve to these by semver).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";
const WALL_CLOCK: &str = "wasi:clocks/wall-clock@0.2.12";

/// The virtual clock of one deterministic run.
#[derive(Debug)]
pub(super) struct VirtualClock {
    /// The store's fuel at the start: consumed = this minus what remains.
    fuel_limit: u64,
    /// The wall clock at the start, since the Unix epoch.
    start: Duration,
    /// Nanoseconds the guest has slept, shared with its pending sleeps.
    slept: Arc<AtomicU64>,
}

impl VirtualClock {
    pub(super) fn new(fuel_limit: u64, start: Duration) -> Self {
        Self {
            fuel_limit,
            start,
            slept: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Guest nanoseconds since the start, for `remaining` fuel left in the store.
    fn now(&self, remaining: u64) -> u64 {
        self.fuel_limit
            .saturating_sub(remaining)
            .saturating_add(self.slept.load(Ordering::SeqCst))
    }

    fn wall(&self, remaining: u64) -> Datetime {
        let now = self
            .start
            .saturating_add(Duration::from_nanos(self.now(remaining)));
        Datetime {
            seconds: now.as_secs(),
            nanoseconds: now.subsec_nanos(),
        }
    }
}

/// A sleep that is over as soon as it is polled: polling it moves the clock to its end.
struct VirtualSleep {
    slept: Arc<AtomicU64>,
    /// The value of `slept` at which the sleep is over.
    until: u64,
}

#[wasmtime_wasi::async_trait]
impl Pollable for VirtualSleep {
    async fn ready(&mut self) {
        self.slept.fetch_max(self.until, Ordering::SeqCst);
    }
}

/// The run's virtual clock and the store's remaining fuel.
fn clock<'a>(
    store: &'a StoreContextMut<'_, HostState>,
) -> wasmtime::Result<(&'a VirtualClock, u64)> {
    let clock = store
        .data()
        .clock
        .as_ref()
        .ok_or_else(|| wasmtime::Error::msg("a deterministic run has no virtual clock"))?;
    Ok((clock, store.get_fuel()?))
}

/// A pollable that is over once `slept` has grown by `delay` nanoseconds.
fn sleep(
    mut store: StoreContextMut<'_, HostState>,
    delay: u64,
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let (clock, _) = clock(&store)?;
    let slept = Arc::clone(&clock.slept);
    let until = slept.load(Ordering::SeqCst).saturating_add(delay);
    let table = &mut store.data_mut().table;
    let resource = table.push(VirtualSleep { slept, until })?;
    Ok((subscribe(table, resource)?,))
}

/// Links the virtual clocks over the host's in `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut monotonic = linker.instance(MONOTONIC_CLOCK)?;
    monotonic.func_wrap("now", |store: StoreContextMut<'_, HostState>, (): ()| {
        let (clock, remaining) = clock(&store)?;
        Ok((clock.now(remaining),))
    })?;
    monotonic.func_wrap("resolution", |_: StoreContextMut<'_, HostState>, (): ()| {
        Ok((1u64,))
    })?;
    monotonic.func_wrap(
        "subscribe-instant",
        |store: StoreContextMut<'_, HostState>, (when,): (u64,)| {
            let (clock, remaining) = clock(&store)?;
            let delay = when.saturating_sub(clock.now(remaining));
            sleep(store, delay)
        },
    )?;
    monotonic.func_wrap(
        "subscribe-duration",
        |store: StoreContextMut<'_, HostState>, (delay,): (u64,)| sleep(store, delay),
    )?;
    let mut wall = linker.instance(WALL_CLOCK)?;
    wall.func_wrap("now", |store: StoreContextMut<'_, HostState>, (): ()| {
        let (clock, remaining) = clock(&store)?;
        Ok((clock.wall(remaining),))
    })?;
    wall.func_wrap("resolution", |_: StoreContextMut<'_, HostState>, (): ()| {
        Ok((Datetime {
            seconds: 0,
            nanoseconds: 1,
        },))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_fuel_plus_sleep_from_the_start() {
        let clock = VirtualClock::new(1_000, Duration::from_secs(1_704_067_200));
        assert_eq!(clock.now(1_000), 0);
        assert_eq!(clock.now(400), 600);
        clock.slept.fetch_max(2_000_000_000, Ordering::SeqCst);
        assert_eq!(clock.now(400), 2_000_000_600);
        let wall = clock.wall(400);
        assert_eq!((wall.seconds, wall.nanoseconds), (1_704_067_202, 600));
        // More fuel left than the limit (never happens) does not wrap.
        assert_eq!(clock.now(5_000), 2_000_000_000);
    }
}
