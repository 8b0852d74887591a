//! The guest's file system: a read-only root that holds `/data` and `/tmp`, and nothing
//! else.
//!
//! - `/` is a synthetic directory listing `data` (when the job grants one) and `tmp`;
//!   creating, removing or renaming anything in it fails with `EROFS`, as on the
//!   container's read-only root.
//! - `/data` is the job's data directory, served read-only by wasmtime-wasi itself.
//! - `/tmp` is the run's scratch space: an in-memory [`tree::Tree`] capped at the
//!   policy's `tmp-size` and counted against its memory limit. No host file backs it and
//!   it is dropped with the run's store, so nothing reaches the host or the next run.
//!
//! How it is linked: wasmtime-wasi's own bindings of `wasi:filesystem/types` and
//! `wasi:filesystem/preopens` are linked again over the default ones (linker shadowing),
//! with [`GuestFiles`] as the host. Every descriptor lives in the store's one resource
//! table: wasmtime-wasi's descriptors (the real `/data` and what is opened below it) are
//! passed through to its implementation untouched, while the root and `/tmp` descriptors
//! are [`Handle`] values in the same table under the same resource type. Which one a
//! descriptor is, is decided by the type of its table entry, so the two can never be
//! confused: a lookup of the wrong type is an error, not a reinterpretation.

mod host;
mod tree;

pub use host::{GuestFiles, add_to_linker};

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::wasm::limiter::MemoryBudget;

/// One run's `/tmp` and the bookkeeping of its root directory.
#[derive(Debug)]
pub struct Scratch {
    tree: Arc<Mutex<tree::Tree>>,
    /// The resource-table index of a private `/data` descriptor, through which paths
    /// under `/data` given relative to `/` are served; taken on the guest's first request
    /// for its directories.
    data: Option<u32>,
    data_granted: bool,
}

impl Scratch {
    /// An empty `/tmp` holding at most `limit_bytes`, within the run's memory `budget`.
    /// `data_granted` says whether the root lists `/data`.
    pub fn new(limit_bytes: u64, budget: Arc<MemoryBudget>, data_granted: bool) -> Self {
        Self {
            tree: Arc::new(Mutex::new(tree::Tree::new(limit_bytes, budget))),
            data: None,
            data_granted,
        }
    }

    /// Whether a write or a new entry failed because `/tmp` was full.
    pub fn ran_out(&self) -> bool {
        lock(&self.tree).ran_out()
    }
}

fn lock(tree: &Mutex<tree::Tree>) -> MutexGuard<'_, tree::Tree> {
    // Every tree operation completes or changes nothing, so the tree stays consistent
    // even if a panic elsewhere poisoned the lock.
    tree.lock().unwrap_or_else(PoisonError::into_inner)
}
