//! The linear-memory cap: refuses growth past the policy's limit and remembers that it did,
//! so that a `MemoryError` or trap that follows is reported as `killed`/`memory`.

use wasmtime::ResourceLimiter;

/// Caps linear memory and tracks the peak.
#[derive(Debug)]
pub struct MemoryCap {
    limit_bytes: usize,
    peak_bytes: usize,
    refused: bool,
}

impl MemoryCap {
    /// Tables are small and bounded by the guest; this only stops runaway growth.
    const MAX_TABLE_ELEMENTS: usize = 1 << 20;

    pub fn new(limit_bytes: u64) -> Self {
        Self {
            limit_bytes: usize::try_from(limit_bytes).unwrap_or(usize::MAX),
            peak_bytes: 0,
            refused: false,
        }
    }

    /// The largest linear memory the guest reached, in bytes.
    pub fn peak_bytes(&self) -> u64 {
        self.peak_bytes as u64
    }

    /// Whether a growth was refused because of the cap.
    pub fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.limit_bytes && maximum.is_none_or(|max| desired <= max);
        if allowed {
            self.peak_bytes = self.peak_bytes.max(desired);
        } else {
            self.peak_bytes = self.peak_bytes.max(current);
            self.refused = true;
        }
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
