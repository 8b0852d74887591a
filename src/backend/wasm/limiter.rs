//! The run's memory limit: linear memory and the contents of `/tmp` together.
//!
//! The [`MemoryCap`] refuses linear-memory growth past what the limit leaves beside
//! `/tmp`, and the scratch file system refuses to grow `/tmp` past what it leaves beside
//! linear memory; both go through one [`MemoryBudget`], which remembers a refusal so that
//! a `MemoryError` or trap that follows is reported as `killed`/`memory`. (In the
//! container the tmpfs pages count against the cgroup memory limit the same way.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use wasmtime::ResourceLimiter;

/// The run's memory limit, shared by linear memory and `/tmp`.
///
/// A store is driven by one task at a time, so the atomics only make the budget `Sync`;
/// no two updates race.
#[derive(Debug)]
pub struct MemoryBudget {
    limit_bytes: u64,
    linear_bytes: AtomicU64,
    scratch_bytes: AtomicU64,
    refused: AtomicBool,
}

impl MemoryBudget {
    pub fn new(limit_bytes: u64) -> Self {
        Self {
            limit_bytes,
            linear_bytes: AtomicU64::new(0),
            scratch_bytes: AtomicU64::new(0),
            refused: AtomicBool::new(false),
        }
    }

    /// Whether one linear memory may grow by `bytes` beside the others and `/tmp`;
    /// records it if so. (A new memory grows from zero to its initial size.)
    pub fn try_grow_linear(&self, bytes: u64) -> bool {
        let scratch = self.scratch_bytes.load(Ordering::Relaxed);
        let linear = self
            .linear_bytes
            .load(Ordering::Relaxed)
            .saturating_add(bytes);
        if linear.saturating_add(scratch) > self.limit_bytes {
            self.refused.store(true, Ordering::Relaxed);
            return false;
        }
        self.linear_bytes.store(linear, Ordering::Relaxed);
        true
    }

    /// Whether `/tmp` may hold `bytes` beside linear memory; records it if so.
    pub fn try_set_scratch(&self, bytes: u64) -> bool {
        let linear = self.linear_bytes.load(Ordering::Relaxed);
        if bytes > self.scratch_bytes.load(Ordering::Relaxed)
            && bytes.saturating_add(linear) > self.limit_bytes
        {
            self.refused.store(true, Ordering::Relaxed);
            return false;
        }
        self.scratch_bytes.store(bytes, Ordering::Relaxed);
        true
    }

    /// Records that `/tmp` holds `bytes` (after a release).
    pub fn set_scratch(&self, bytes: u64) {
        self.scratch_bytes.store(bytes, Ordering::Relaxed);
    }

    /// Whether a growth of either part was refused because of the limit.
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// Bytes of linear memory recorded.
    pub fn linear_bytes(&self) -> u64 {
        self.linear_bytes.load(Ordering::Relaxed)
    }
}

/// Caps linear memory and tracks the peak.
#[derive(Debug)]
pub struct MemoryCap {
    budget: Arc<MemoryBudget>,
    peak_bytes: usize,
}

impl MemoryCap {
    /// Tables are small and bounded by the guest; this only stops runaway growth.
    const MAX_TABLE_ELEMENTS: usize = 1 << 20;

    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Self {
            budget,
            peak_bytes: 0,
        }
    }

    /// Charges the linear memory `previous` recorded (an instance made before this run, see
    /// `pool`) to this cap's budget and takes over its peak; `false` if it does not fit.
    pub fn adopt(&mut self, previous: &MemoryCap) -> bool {
        self.peak_bytes = self.peak_bytes.max(previous.peak_bytes);
        self.budget.try_grow_linear(previous.budget.linear_bytes())
    }

    /// The largest linear memory the guest reached, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.peak_bytes as u64
    }

    /// Whether a growth of linear memory or of `/tmp` was refused because of the limit.
    pub fn refused(&self) -> bool {
        self.budget.refused()
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = maximum.is_none_or(|max| desired <= max)
            && self
                .budget
                .try_grow_linear(desired.saturating_sub(current) as u64);
        self.peak_bytes = self.peak_bytes.max(if allowed { desired } else { current });
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= Self::MAX_TABLE_ELEMENTS && maximum.is_none_or(|max| desired <= max))
    }
}
