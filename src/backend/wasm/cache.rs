//! The compiled guest, cached on disk so that only the first run on a machine compiles.
//!
//! An entry is named after everything that could make it stale: the guest's content hash,
//! the wasmtime version and a hash of the engine's settings (fuel, epochs, target). Each
//! entry carries a checksum in a side file; an entry that is missing, truncated, corrupt or
//! unreadable is compiled again and replaced atomically, never trusted.
//!
//! Start-up cost matters (`stratbox run` is one process per strategy), so two things are
//! never done on the warm path: reading the whole guest (its content hash is remembered
//! against its size, modification time and inode, and recomputed when any of them
//! changes), and copying the compiled code (the entry is memory-mapped, checksummed in
//! place and handed to wasmtime as a file, which also maps the guest's initial memory
//! straight from it).

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

/// The guest file, its content hash and its interpreter's language level, read lazily.
#[derive(Debug)]
pub struct Guest {
    pub path: PathBuf,
    pub hash: String,
    /// The CPython language level the guest carries (`3.14`), from the name of its
    /// interpreter library (`libpython3.14.so`); `None` if the guest names none.
    pub python: Option<String>,
    /// The guest's bytes, when they had to be read to hash them.
    bytes: Option<Vec<u8>>,
}

impl Guest {
    /// Identifies the guest at `path`: by a remembered hash and language level when its
    /// size, modification time and inode are unchanged since it was last read, else by
    /// reading it.
    pub fn identify(path: &Path, cache_dir: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let stamp_file = cache_dir
            .join("wasm")
            .join(format!("stamp-{}", stamp(path, &meta)));
        if let Ok(text) = std::fs::read_to_string(&stamp_file) {
            // `<hash> <python or ->`; a stamp without the second word predates it.
            let mut words = text.split_whitespace();
            if let (Some(hash), Some(python)) = (words.next(), words.next())
                && hash.len() == 32
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Ok(Self {
                    path: path.to_owned(),
                    hash: hash.to_owned(),
                    python: (python != "-").then(|| python.to_owned()),
                    bytes: None,
                });
            }
        }
        let bytes = std::fs::read(path)?;
        let hash = guest_hash(&bytes);
        let python = python_level(&bytes);
        let line = format!("{hash} {}\n", python.as_deref().unwrap_or("-"));
        // Best effort: without the stamp the next start only reads the guest again.
        let _ = std::fs::create_dir_all(cache_dir.join("wasm"))
            .and_then(|()| write_atomically(&cache_dir.join("wasm"), &stamp_file, line.as_bytes()));
        Ok(Self {
            path: path.to_owned(),
            hash,
            python,
            bytes: Some(bytes),
        })
    }

    fn bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>, WasmError> {
        match &self.bytes {
            Some(bytes) => Ok(bytes.into()),
            None => {
                std::fs::read(&self.path)
                    .map(Into::into)
                    .map_err(|source| WasmError::GuestRead {
                        path: self.path.clone(),
                        source,
                    })
            }
        }
    }
}

/// The language level of the CPython a guest carries, from the name of the interpreter
/// library componentize-py links into it (`libpython3.14.so` → `3.14`).
pub fn python_level(guest: &[u8]) -> Option<String> {
    const NAME: &[u8] = b"libpython3.";
    let at = guest.windows(NAME.len()).position(|w| w == NAME)? + NAME.len();
    let minor: String = guest[at..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .map(|b| char::from(*b))
        .collect();
    (!minor.is_empty() && guest[at + minor.len()..].starts_with(b".so"))
        .then(|| format!("3.{minor}"))
}

/// A short hash of what identifies a file's version without reading it.
fn stamp(path: &Path, meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut hasher = Xxh3::new();
    path.hash(&mut hasher);
    (
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ino(),
        meta.dev(),
    )
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Loads the compiled guest from `cache_dir`, or compiles it and stores it there.
pub fn load_or_compile(
    engine: &Engine,
    guest: &Guest,
    cache_dir: &Path,
) -> Result<(Component, CacheUse), WasmError> {
    let dir = cache_dir.join("wasm");
    let entry = dir.join(format!(
        "guest-{}-{}.cwasm",
        &guest.hash[..16],
        engine_hash(engine)
    ));
    let checksum = entry.with_extension("xxh3");
    if let Some(component) = load_entry(engine, &entry, &checksum) {
        return Ok((component, CacheUse::Hit));
    }
    let bytes = guest.bytes()?;
    if guest_hash(&bytes) != guest.hash {
        // The guest changed between identification and now: never cache it under the
        // old name.
        return Err(WasmError::GuestChanged {
            path: guest.path.clone(),
        });
    }
    let component = Component::new(engine, &bytes).map_err(|source| WasmError::Compile {
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
    let file = std::fs::File::open(entry).ok()?;
    // SAFETY: the map is read-only and lives only for the checksum below. Entries are
    // never written in place: `store_entry` writes a new file and renames it over the old
    // one, so the mapped inode's contents cannot change under us.
    let mapped = unsafe { memmap2::Mmap::map(&file) }.ok()?;
    if format!("{:032x}", xxh3_128(&mapped)) != expected.trim() {
        return None;
    }
    drop(mapped);
    // SAFETY: `deserialize_file` requires a file produced by `Component::serialize` of a
    // compatible engine that stays unchanged while the component lives. The entry was
    // written by `store_entry` below (atomically, never modified in place), its name
    // carries the engine's compatibility hash and the wasmtime version, and its checksum
    // was verified just above, so a truncated or altered file is never loaded.
    unsafe { Component::deserialize_file(engine, entry) }.ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_level_is_read_from_the_interpreter_library_name() {
        assert_eq!(
            python_level(b"\0\x05libpython3.14.so:PyObject_Call\0").as_deref(),
            Some("3.14")
        );
        assert_eq!(python_level(b"libpython3.so"), None);
        assert_eq!(python_level(b"libpython3.14"), None);
        assert_eq!(python_level(b"no interpreter here"), None);
    }
}
