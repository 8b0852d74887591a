//! The compiled guest, cached on disk so that only the first run on a machine compiles.
//!
//! An entry is named after everything that could make it stale: the guest's content hash,
//! the wasmtime version and a hash of the engine's settings (fuel, epochs, target). Each
//! entry carries a checksum in a side file; an entry that is missing, truncated, corrupt or
//! unreadable is compiled again and replaced atomically, never trusted.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::WasmError;

/// The wasmtime version the crate is built against, part of every cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Where compiled guests are kept: `$STRATBOX_CACHE_DIR`, else the user's cache directory
/// (`~/.cache/stratbox` on Linux), else a folder in the system temp directory.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STRATBOX_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("stratbox")
}

/// How the compiled guest was obtained, for `doctor` and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled (no entry, or the entry was stale or corrupt) and stored.
    Compiled,
    /// Compiled, but the cache could not be written (read-only home, full disk).
    CompiledUncached,
}

/// Content hash of the guest, as 32 hex digits.
pub fn guest_hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxh3_128(bytes))
}

fn engine_hash(engine: &Engine) -> String {
    let mut hasher = Xxh3::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    WASMTIME_VERSION.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Loads the compiled guest from `cache_dir`, or compiles it and stores it there.
pub fn load_or_compile(
    engine: &Engine,
    guest: &[u8],
    cache_dir: &Path,
) -> Result<(Component, CacheUse), WasmError> {
    let dir = cache_dir.join("wasm");
    let entry = dir.join(format!(
        "guest-{}-{}.cwasm",
        &guest_hash(guest)[..16],
        engine_hash(engine)
    ));
    let checksum = entry.with_extension("xxh3");
    if let Some(component) = load_entry(engine, &entry, &checksum) {
        return Ok((component, CacheUse::Hit));
    }
    let component = Component::new(engine, guest).map_err(|source| WasmError::Compile {
        source: source.into(),
    })?;
    let cache_use = match store_entry(&component, &dir, &entry, &checksum) {
        Ok(()) => CacheUse::Compiled,
        Err(_) => CacheUse::CompiledUncached,
    };
    Ok((component, cache_use))
}

fn load_entry(engine: &Engine, entry: &Path, checksum: &Path) -> Option<Component> {
    let expected = std::fs::read_to_string(checksum).ok()?;
    let bytes = std::fs::read(entry).ok()?;
    if format!("{:032x}", xxh3_128(&bytes)) != expected.trim() {
        return None;
    }
    // SAFETY: `deserialize` requires bytes produced by `Component::serialize` of a
    // compatible engine. The entry was written by `store_entry` below (atomically), its
    // name carries the engine's compatibility hash and the wasmtime version, and its
    // checksum was verified just above, so a truncated or altered file is never loaded.
    unsafe { Component::deserialize(engine, &bytes) }.ok()
}

fn store_entry(
    component: &Component,
    dir: &Path,
    entry: &Path,
    checksum: &Path,
) -> std::io::Result<()> {
    let bytes = component.serialize().map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    write_atomically(dir, entry, &bytes)?;
    write_atomically(
        dir,
        checksum,
        format!("{:032x}\n", xxh3_128(&bytes)).as_bytes(),
    )
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|err| err.error)?;
    Ok(())
}
