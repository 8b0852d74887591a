//! `/metrics`: runs by status, reason and backend, a wall-time histogram, queue depth,
//! in-flight runs and refusals, in Prometheus' text format. Labels take bounded values
//! only (never a request id).

use std::sync::Mutex;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::outcome::Outcome;

/// The labels of a finished run.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    status: String,
    reason: String,
    backend: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    wall: Histogram,
    queued: Gauge<i64, AtomicI64>,
    in_flight: Gauge<i64, AtomicI64>,
    refused: Counter,
    pool: Family<PoolLabels, Gauge<i64, AtomicI64>>,
    pool_runs: Family<PoolRunLabels, Counter>,
    /// Serialises [`Metrics::set_pool`]: its counters follow the pool's by differences.
    pool_update: Mutex<()>,
}

/// How a container run started.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolRunLabels {
    /// `warm` (took a container of the pool) or `cold` (found none for its configuration).
    start: &'static str,
}

/// Which count of the warm container pool a gauge holds.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    /// `size` (containers the pool keeps), `ready` or `warming`.
    state: &'static str,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Self {
        let runs = Family::<RunLabels, Counter>::default();
        // 1 ms to about 33 s.
        let wall = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let queued = Gauge::<i64, AtomicI64>::default();
        let in_flight = Gauge::<i64, AtomicI64>::default();
        let refused = Counter::default();
        let mut registry = Registry::with_prefix("stratbox");
        registry.register(
            "runs",
            "Requests answered, by status, reason (killed) and backend",
            runs.clone(),
        );
        registry.register(
            "run_wall_seconds",
            "Wall time of the runs that ran",
            wall.clone(),
        );
        registry.register(
            "queue_depth",
            "Requests waiting for a run slot",
            queued.clone(),
        );
        registry.register("runs_in_flight", "Runs going on now", in_flight.clone());
        registry.register(
            "refused_busy",
            "Requests refused with 429 because the queue was full",
            refused.clone(),
        );
        let pool = Family::<PoolLabels, Gauge<i64, AtomicI64>>::default();
        registry.register(
            "container_pool",
            "Warm containers: the pool's size, and those ready or starting now",
            pool.clone(),
        );
        let pool_runs = Family::<PoolRunLabels, Counter>::default();
        registry.register(
            "container_pool_runs",
            "Container runs since the pool started: warm (a pooled container) or cold",
            pool_runs.clone(),
        );
        Self {
            registry,
            runs,
            wall,
            queued,
            in_flight,
            refused,
            pool,
            pool_runs,
            pool_update: Mutex::new(()),
        }
    }

    /// Sets the warm container pool's gauges, and its run counters to the pool's counts.
    pub fn set_pool(&self, status: &crate::backend::container::PoolStatus) {
        let _serial = self.pool_update.lock().unwrap_or_else(|e| e.into_inner());
        for (start, count) in [("warm", status.taken), ("cold", status.cold)] {
            let counter = self.pool_runs.get_or_create(&PoolRunLabels { start });
            counter.inc_by(count.saturating_sub(counter.get()));
        }
        for (state, count) in [
            ("size", status.size),
            ("ready", status.ready),
            ("warming", status.warming),
        ] {
            self.pool
                .get_or_create(&PoolLabels { state })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, outcome: &Outcome) {
        self.runs
            .get_or_create(&RunLabels {
                status: outcome.status.as_str().to_owned(),
                reason: outcome
                    .reason
                    .map_or("", |reason| reason.as_str())
                    .to_owned(),
                backend: outcome
                    .backend
                    .map_or("", |backend| backend.as_str())
                    .to_owned(),
            })
            .inc();
        if outcome.backend.is_some() {
            self.wall.observe(outcome.usage.wall_ms / 1e3);
        }
    }

    /// Counts a `429`.
    pub fn refused(&self) {
        self.refused.inc();
    }

    /// Sets the queue depth.
    pub fn set_queue(&self, depth: usize) {
        self.queued.set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    /// Counts a run as in flight until the returned guard drops.
    pub fn running(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One run in flight; dropping it ends the count.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Gauge<i64, AtomicI64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
