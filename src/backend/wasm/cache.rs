//! The compiled guest, cached on disk so that only the first run on a machine compiles.
//!
//! A `.cwasm` entry is machine code that runs with the host's rights, outside every
//! sandbox, so the cache trusts no one but the current user:
//!
//! - there is no fallback to a shared folder: without a per-user cache directory (or when
//!   the embedder asks for none) the guest is compiled in memory on every start;
//! - the cache directory, its `wasm/` folder and every ancestor must be owned by the
//!   current user (ancestors may also be owned by root) and not writable by group or others
//!   (an ancestor may be, with the sticky bit set, as `/tmp` is); otherwise the cache is not
//!   read at all and the guest is compiled in memory ([`CacheRefusal`] says why, and
//!   `stratbox doctor` prints it);
//! - each entry and stamp is opened once, without following symbolic links, and is read
//!   only if that open file is a regular file owned by the current user and writable by
//!   nobody else;
//! - the entry carries its own checksum (a trailer), and the bytes that are checksummed
//!   are the very bytes handed to wasmtime: the one open file is mapped, checked through
//!   that mapping, and handed to wasmtime as that open file, never re-opened by name (see
//!   `load_entry` for who could still change it, and why that is no weakness).
//!
//! An entry is named after everything that could make it stale: the guest's content hash,
//! the wasmtime version and a hash of the engine's settings (fuel, epochs, target). An
//! entry that is missing, truncated, corrupt or refused is compiled again and replaced
//! atomically (written to a new file, mode 0600, and renamed over the old one).
//!
//! Start-up cost matters (`stratbox run` is one process per strategy), so neither the whole
//! guest nor the whole entry is read on the warm path:
//! - the guest's content hash is remembered in a stamp file against its size, inode and
//!   modification and change times, and recomputed when any of them changes;
//! - an entry whose checksum was verified is remembered as verified (`<entry>.verified`)
//!   against its size, inode and modification and change times, once it has not changed for
//!   two seconds; while they are unchanged, the next start hands the entry to wasmtime
//!   without reading it through. The change time is the kernel's: any write, rename or
//!   `utimes` moves it, and no one but root can set it back. The checksum guards against a
//!   damaged entry, not against its owner (who can run any code as themselves anyway), so
//!   remembering it is no weaker against anyone the cache trusts. Reading the 44 MB entry
//!   through was 40 % of a warm `stratbox run`'s CPU (`docs/BENCHMARKS.md`).

use std::hash::{Hash, Hasher};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wasmtime::Engine;
use wasmtime::component::Component;
use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use super::WasmError;

/// The wasmtime version the crate is built against, part of every cache key.
pub const WASMTIME_VERSION: &str = "48.0.8";

/// Bytes of the checksum trailer at the end of every entry (an XXH3-128, little-endian).
const TRAILER_BYTES: usize = 16;

/// Mode bits that let group or others write.
const GROUP_OTHER_WRITE: u32 = 0o022;

/// The sticky bit: only an entry's owner may rename or remove it.
const STICKY: u32 = 0o1000;

/// The per-user cache directory for compiled guests: `~/.cache/stratbox` on Linux
/// (`$XDG_CACHE_HOME/stratbox` when that is set), or `None` when the user has no home
/// directory. There is no fallback to a shared folder.
pub fn default_cache_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|dir| dir.join("stratbox"))
}

/// Why the on-disk cache was not used (the guest was then compiled in memory), or why an
/// entry was refused and replaced.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CacheRefusal {
    /// The sandbox was built without a cache directory.
    #[error("no cache directory was configured")]
    Disabled,
    /// No per-user cache directory is known (no home directory).
    #[error("no per-user cache directory (no home directory)")]
    NoCacheDir,
    /// The path is owned by another user.
    #[error("{} is owned by uid {owner}, not by the current user (uid {user})", path.display())]
    NotOwned {
        /// The directory or file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The current (effective) user.
        user: u32,
    },
    /// Group or others may write the path.
    #[error("{} may be written by group or others (mode {mode:o})", path.display())]
    Writable {
        /// The directory or file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path is not a directory (for the cache directory) or not a regular file (for an
    /// entry); symbolic links are not followed.
    #[error("{} is not a {expected}", path.display())]
    FileType {
        /// The path.
        path: PathBuf,
        /// What it should have been (`directory`, `regular file`).
        expected: &'static str,
    },
    /// The path could not be created, inspected, read or written.
    #[error("cannot use {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The entry's checksum does not match its contents (truncated or corrupt).
    #[error("{} is corrupt (checksum mismatch)", path.display())]
    Corrupt {
        /// The entry.
        path: PathBuf,
    },
    /// wasmtime rejected the entry (another version or engine configuration).
    #[error("{} was not accepted by wasmtime: {message}", path.display())]
    Incompatible {
        /// The entry.
        path: PathBuf,
        /// wasmtime's reason.
        message: String,
    },
}

impl CacheRefusal {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source: Arc::new(source),
        }
    }
}

/// How the compiled guest was obtained, for `doctor` and benchmarks.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CacheUse {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled and stored. `replaced` says why an existing entry was not used, if there
    /// was one (absent entries are the normal first run).
    Compiled {
        /// Why an existing entry was refused.
        replaced: Option<CacheRefusal>,
    },
    /// Compiled in memory and not stored: there is no usable cache directory, or it could
    /// not be written. The next start compiles again.
    Uncached(CacheRefusal),
}

/// Where compiled guests are kept, as configured on the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheSetting {
    /// The per-user cache directory ([`default_cache_dir`]).
    Default,
    /// This directory.
    Dir(PathBuf),
    /// No on-disk cache: compile in memory on every start.
    Disabled,
}

/// The cache after its directory was checked: usable, or refused with the reason.
#[derive(Debug, Clone)]
pub enum Cache {
    /// A directory that passed the ownership and permission checks (its `wasm/` folder).
    Trusted(PathBuf),
    /// Not used; everything is compiled in memory.
    Refused(CacheRefusal),
}

impl Cache {
    /// Resolves `setting` and checks the directory, creating it (mode 0700) if missing.
    pub fn open(setting: &CacheSetting) -> Self {
        let root = match setting {
            CacheSetting::Default => match default_cache_dir() {
                Some(dir) => dir,
                None => return Self::Refused(CacheRefusal::NoCacheDir),
            },
            CacheSetting::Dir(dir) => dir.clone(),
            CacheSetting::Disabled => return Self::Refused(CacheRefusal::Disabled),
        };
        match trusted_dir(&root) {
            Ok(dir) => Self::Trusted(dir),
            Err(refusal) => Self::Refused(refusal),
        }
    }

    /// The refusal, when the cache is not used.
    pub fn refusal(&self) -> Option<&CacheRefusal> {
        match self {
            Cache::Trusted(_) => None,
            Cache::Refused(refusal) => Some(refusal),
        }
    }
}

/// Creates `root/wasm` if needed and checks it and every ancestor.
fn trusted_dir(root: &Path) -> Result<PathBuf, CacheRefusal> {
    let dir = root.join("wasm");
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|err| CacheRefusal::io(&dir, err))?;
    }
    let canonical = dir
        .canonicalize()
        .map_err(|err| CacheRefusal::io(&dir, err))?;
    let user = rustix::process::geteuid().as_raw();
    let mut own: u8 = 2; // `wasm/` and the cache directory itself must be the user's own.
    for path in canonical.ancestors() {
        let meta = std::fs::symlink_metadata(path).map_err(|err| CacheRefusal::io(path, err))?;
        if !meta.is_dir() {
            return Err(CacheRefusal::FileType {
                path: path.to_owned(),
                expected: "directory",
            });
        }
        let owner_ok = meta.uid() == user || (own == 0 && meta.uid() == 0);
        if !owner_ok {
            return Err(CacheRefusal::NotOwned {
                path: path.to_owned(),
                owner: meta.uid(),
                user,
            });
        }
        let mode = meta.mode() & 0o7777;
        let shared_sticky = own == 0 && mode & STICKY != 0;
        if mode & GROUP_OTHER_WRITE != 0 && !shared_sticky {
            return Err(CacheRefusal::Writable {
                path: path.to_owned(),
                mode,
            });
        }
        own = own.saturating_sub(1);
    }
    Ok(canonical)
}

/// Checks what an open cache file may be: a regular file of the current user that nobody
/// else may write.
fn check_owned_file(path: &Path, meta: &std::fs::Metadata, user: u32) -> Result<(), CacheRefusal> {
    if !meta.is_file() {
        return Err(CacheRefusal::FileType {
            path: path.to_owned(),
            expected: "regular file",
        });
    }
    if meta.uid() != user {
        return Err(CacheRefusal::NotOwned {
            path: path.to_owned(),
            owner: meta.uid(),
            user,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OTHER_WRITE != 0 {
        return Err(CacheRefusal::Writable {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// Opens a cache file once, without following links, and checks the open descriptor.
/// `Ok(None)` when it does not exist.
fn open_owned(path: &Path) -> Result<Option<std::fs::File>, CacheRefusal> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(CacheRefusal::io(path, err)),
    };
    let meta = file.metadata().map_err(|err| CacheRefusal::io(path, err))?;
    check_owned_file(path, &meta, rustix::process::geteuid().as_raw())?;
    Ok(Some(file))
}

/// Reads a small cache file (a stamp) through [`open_owned`].
fn read_owned(path: &Path) -> Result<Option<Vec<u8>>, CacheRefusal> {
    let Some(mut file) = open_owned(path)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|err| CacheRefusal::io(path, err))?;
    Ok(Some(bytes))
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

/// The guest component, its content hash and its interpreter's language level; its bytes
/// are read lazily when it is a file.
#[derive(Debug)]
pub struct Guest {
    /// The file it came from; `None` when it was given as bytes.
    pub path: Option<PathBuf>,
    /// [`guest_hash`] of its bytes.
    pub hash: String,
    /// The CPython language level the guest carries (`3.14`), from the name of its
    /// interpreter library (`libpython3.14.so`); `None` if the guest names none.
    pub python: Option<String>,
    /// The guest's bytes, when they had to be read to hash them (or were given).
    bytes: Option<Arc<[u8]>>,
}

impl Guest {
    /// A guest given as bytes.
    pub fn from_bytes(bytes: Arc<[u8]>) -> Self {
        Self {
            path: None,
            hash: guest_hash(&bytes),
            python: python_level(&bytes),
            bytes: Some(bytes),
        }
    }

    /// Identifies the guest at `path`: by a remembered hash and language level when its
    /// size, modification time and inode are unchanged since it was last hashed (and the
    /// cache is trusted), else by reading it.
    pub fn identify(path: &Path, cache: &Cache) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        let stamp_file = match cache {
            Cache::Trusted(dir) => Some(dir.join(format!("stamp-{}", stamp(path, &meta)))),
            Cache::Refused(_) => None,
        };
        if let Some(Ok(Some(text))) = stamp_file.as_deref().map(read_owned) {
            let text = String::from_utf8_lossy(&text).into_owned();
            // `<hash> <python or ->`; a stamp without the second word predates it.
            let mut words = text.split_whitespace();
            if let (Some(hash), Some(python)) = (words.next(), words.next())
                && hash.len() == 32
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Ok(Self {
                    path: Some(path.to_owned()),
                    hash: hash.to_owned(),
                    python: (python != "-").then(|| python.to_owned()),
                    bytes: None,
                });
            }
        }
        let bytes: Arc<[u8]> = std::fs::read(path)?.into();
        let hash = guest_hash(&bytes);
        tracing::debug!(guest = %path.display(), %hash, "guest read and hashed (no stamp)");
        let python = python_level(&bytes);
        if let (Cache::Trusted(dir), Some(stamp_file)) = (cache, &stamp_file) {
            let line = format!("{hash} {}\n", python.as_deref().unwrap_or("-"));
            // Best effort: without the stamp the next start only reads the guest again.
            let _ = write_atomically(dir, stamp_file, line.as_bytes());
        }
        Ok(Self {
            path: Some(path.to_owned()),
            hash,
            python,
            bytes: Some(bytes),
        })
    }

    fn bytes(&self) -> Result<Arc<[u8]>, WasmError> {
        match (&self.bytes, &self.path) {
            (Some(bytes), _) => Ok(Arc::clone(bytes)),
            (None, Some(path)) => {
                std::fs::read(path)
                    .map(Into::into)
                    .map_err(|source| WasmError::GuestRead {
                        path: path.clone(),
                        source,
                    })
            }
            (None, None) => unreachable!("a guest without a path always holds its bytes"),
        }
    }

    /// The guest's path for messages (`<bytes>` when it was given as bytes).
    pub fn display(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from("<guest bytes>"))
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

/// A short hash of what identifies a file's version without reading it: its path, size,
/// inode, device, and modification and change times. The change time is the kernel's: a
/// write, rename or `utimes` moves it, and only root can set it back.
fn stamp(path: &Path, meta: &std::fs::Metadata) -> String {
    let mut hasher = Xxh3::new();
    path.hash(&mut hasher);
    (
        meta.len(),
        meta.ino(),
        meta.dev(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec(),
    )
        .hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Loads the compiled guest from the cache, or compiles it (and stores it when the cache
/// is trusted).
pub fn load_or_compile(
    engine: &Engine,
    guest: &Guest,
    cache: &Cache,
) -> Result<(Component, CacheUse), WasmError> {
    let dir = match cache {
        Cache::Trusted(dir) => dir,
        Cache::Refused(refusal) => {
            match refusal {
                CacheRefusal::Disabled => tracing::debug!("no cache: compiling the guest"),
                _ => tracing::warn!(
                    %refusal,
                    "compiled-guest cache not used: compiling the guest in memory"
                ),
            }
            let component = compile(engine, guest)?;
            return Ok((component, CacheUse::Uncached(refusal.clone())));
        }
    };
    let entry = dir.join(format!(
        "guest-{}-{}.cwasm",
        &guest.hash[..16],
        engine_hash(engine)
    ));
    let started = Instant::now();
    let replaced = match load_entry(engine, &entry, SystemTime::now()) {
        Ok(Some(component)) => {
            tracing::debug!(
                entry = %entry.display(),
                ms = started.elapsed().as_secs_f64() * 1e3,
                "cache hit: compiled guest loaded"
            );
            return Ok((component, CacheUse::Hit));
        }
        Ok(None) => {
            tracing::info!(entry = %entry.display(), "cache miss: compiling the guest");
            None
        }
        Err(refusal) => {
            tracing::warn!(%refusal, "cache entry refused: compiling the guest again");
            Some(refusal)
        }
    };
    let component = compile(engine, guest)?;
    let cache_use = match store_entry(&component, dir, &entry) {
        Ok(()) => {
            tracing::debug!(entry = %entry.display(), "cache entry written");
            CacheUse::Compiled { replaced }
        }
        Err(refusal) => {
            tracing::warn!(%refusal, "cache entry not written: the next start compiles again");
            CacheUse::Uncached(refusal)
        }
    };
    Ok((component, cache_use))
}

fn compile(engine: &Engine, guest: &Guest) -> Result<Component, WasmError> {
    let bytes = guest.bytes()?;
    if guest_hash(&bytes) != guest.hash {
        // The guest changed between identification and now: never cache it under the
        // old name.
        return Err(WasmError::GuestChanged {
            path: guest.display(),
        });
    }
    let started = Instant::now();
    let component = Component::new(engine, &bytes).map_err(|source| WasmError::Compile {
        path: guest.display(),
        source: source.into(),
    })?;
    tracing::info!(
        guest = %guest.display().display(),
        ms = started.elapsed().as_secs_f64() * 1e3,
        "guest compiled"
    );
    Ok(component)
}

/// The entry at `path`: `Ok(None)` when there is none, `Err` when one exists but is
/// refused (then it is replaced).
///
/// The entry is opened once ([`open_owned`]: no links followed, a regular file of the
/// current user that nobody else may write), mapped read-only through that descriptor,
/// and its checksum trailer is checked over the mapping; wasmtime then maps the same open
/// file (through `/proc/self/fd`, which names the open file, not a path in the cache
/// directory), so a rename or a planted file after the checks changes nothing. Nothing is
/// copied: a warm start reads the entry once to hash it (XXH3, a few milliseconds for the
/// 44 MB guest) and wasmtime faults in only the pages a run touches.
///
/// Who could change the file between the check and the load, or while it is mapped? Only
/// the current user and root: the descriptor is of a file the user owns, that group and
/// others may not write, in a directory chain only the user (or root) controls, and
/// stratbox itself never writes into an existing entry (it writes a new file and renames
/// it over the old one, which leaves an open file untouched). Anyone who can act as the
/// user can already plant an entry with a valid checksum, or change the stratbox binary
/// itself, so the checksum guards against damage (a truncated or corrupted file), not
/// against them; guarding the bytes against the user (a sealed copy) cost 0.1 s per start.
fn load_entry(
    engine: &Engine,
    path: &Path,
    now: SystemTime,
) -> Result<Option<Component>, CacheRefusal> {
    let Some(file) = open_owned(path)? else {
        return Ok(None);
    };
    let io = |err: std::io::Error| CacheRefusal::io(path, err);
    let fd_path = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ));
    let by_fd = Path::new("/proc/self/fd").is_dir();
    let meta = file.metadata().map_err(io)?;
    let stamp = verified_stamp(path, &meta, now);
    let sidecar = verified_path(path);
    if by_fd
        && let Some(stamp) = &stamp
        && read_owned(&sidecar).ok().flatten().as_deref() == Some(stamp.as_bytes())
    {
        #[allow(unsafe_code)]
        // SAFETY: as below; the bytes were checksummed by an earlier start and the file
        // has not changed since (`verified_stamp`).
        let loaded = unsafe { Component::deserialize_file(engine, &fd_path) };
        drop(file);
        return loaded.map(Some).map_err(|err| CacheRefusal::Incompatible {
            path: path.to_owned(),
            message: format!("{err:#}"),
        });
    }
    #[allow(unsafe_code)]
    // SAFETY: a mapped file that changes or shrinks while mapped is undefined behaviour
    // for the slice below. The file is the current user's own, not writable by group or
    // others, and stratbox never modifies an entry in place (see above); only the user or
    // root could change it, and both can already run any code as the user.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
    let payload = map
        .len()
        .checked_sub(TRAILER_BYTES)
        .ok_or_else(|| CacheRefusal::Corrupt {
            path: path.to_owned(),
        })?;
    let (object, trailer) = map.split_at(payload);
    if xxh3_128(object).to_le_bytes() != trailer {
        return Err(CacheRefusal::Corrupt {
            path: path.to_owned(),
        });
    }
    #[allow(unsafe_code)]
    // SAFETY: both functions require bytes produced by `Component::serialize` of a
    // compatible engine (wasmtime rejects other versions and settings with an error), and
    // `deserialize_file` a file that stays unchanged while the component lives. The bytes
    // are those just checksummed, of a file that passed the ownership and permission
    // checks above; the file stays unchanged for the reasons given above. Without `/proc`
    // the checked mapping itself is copied into wasmtime's memory (slower, same bytes).
    // wasmtime ignores the trailer after the serialised object: the object's own headers
    // give every section's extent.
    let loaded = if by_fd {
        unsafe { Component::deserialize_file(engine, &fd_path) }
    } else {
        unsafe { Component::deserialize(engine, object) }
    };
    drop(map);
    drop(file);
    let component = loaded.map_err(|err| CacheRefusal::Incompatible {
        path: path.to_owned(),
        message: format!("{err:#}"),
    })?;
    // Remembered so that the next start need not read the whole entry; a failure to
    // write it only means the next start checks again.
    if let (Some(stamp), Some(dir)) = (stamp, path.parent())
        && let Err(err) = write_atomically(dir, &sidecar, stamp.as_bytes())
    {
        tracing::debug!(%err, "the entry's verification was not remembered");
    }
    Ok(Some(component))
}

/// How long ago an entry must have last changed for its verification to be remembered:
/// a file changed twice within the file system's timestamp granularity could keep the
/// same change time (the rule git applies to its index).
const SETTLED: Duration = Duration::from_secs(2);

/// Where an entry's verification is remembered: `<entry>.verified`.
fn verified_path(entry: &Path) -> PathBuf {
    let mut name = entry.as_os_str().to_owned();
    name.push(".verified");
    PathBuf::from(name)
}

/// What identifies the version of an entry whose checksum was verified ([`stamp`]): an
/// entry with the same stamp has not been changed since. `None` when the entry changed
/// less than [`SETTLED`] before `now`.
fn verified_stamp(path: &Path, meta: &std::fs::Metadata, now: SystemTime) -> Option<String> {
    let changed = SystemTime::UNIX_EPOCH
        + Duration::new(
            u64::try_from(meta.ctime()).ok()?,
            u32::try_from(meta.ctime_nsec()).ok()?,
        );
    if now.duration_since(changed).ok()? < SETTLED {
        return None;
    }
    Some(format!("verified {}\n", stamp(path, meta)))
}

fn store_entry(component: &Component, dir: &Path, entry: &Path) -> Result<(), CacheRefusal> {
    let mut bytes = component
        .serialize()
        .map_err(|err| CacheRefusal::io(entry, std::io::Error::other(format!("{err:#}"))))?;
    let trailer = xxh3_128(&bytes).to_le_bytes();
    bytes.extend_from_slice(&trailer);
    write_atomically(dir, entry, &bytes).map_err(|err| CacheRefusal::io(entry, err))
}

/// Writes a new file (mode 0600) in `dir` and renames it over `path`.
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
    use std::os::unix::fs::PermissionsExt as _;

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

    /// The smallest valid component: the preamble and no sections.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).expect("engine")
    }

    fn guest() -> Guest {
        Guest::from_bytes(EMPTY_COMPONENT.into())
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    /// Fills an existing entry with garbage behind a valid checksum.
    fn forge(entry: &Path) {
        let mut forged = vec![0xcc; 4096];
        let trailer = xxh3_128(&forged).to_le_bytes();
        forged.extend_from_slice(&trailer);
        std::fs::write(entry, &forged).expect("forged entry written");
    }

    fn only_entry(dir: &Path) -> PathBuf {
        let entries: Vec<_> = std::fs::read_dir(dir.join("wasm"))
            .expect("wasm dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }

    #[test]
    fn second_load_is_a_hit() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(&CacheSetting::Dir(tmp.path().join("c")));
        assert!(cache.refusal().is_none(), "{cache:?}");
        let (_, first) = load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        assert!(
            matches!(first, CacheUse::Compiled { replaced: None }),
            "{first:?}"
        );
        let (_, second) = load_or_compile(&engine(), &guest(), &cache).expect("loaded");
        assert!(matches!(second, CacheUse::Hit), "{second:?}");
        let mode = std::fs::metadata(tmp.path().join("c/wasm"))
            .expect("dir")
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn forged_entry_in_a_world_writable_directory_is_never_loaded() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("shared");
        let cache = Cache::open(&CacheSetting::Dir(root.clone()));
        load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        let entry = only_entry(&root);
        forge(&entry);
        chmod(&root, 0o777);
        let cache = Cache::open(&CacheSetting::Dir(root.clone()));
        assert!(
            matches!(cache.refusal(), Some(CacheRefusal::Writable { path, mode: 0o777 }) if path.ends_with("shared")),
            "{cache:?}"
        );
        let (component, cache_use) =
            load_or_compile(&engine(), &guest(), &cache).expect("compiled in memory");
        assert!(
            matches!(cache_use, CacheUse::Uncached(CacheRefusal::Writable { .. })),
            "{cache_use:?}"
        );
        // The component came from the guest, not from the forged file, which is untouched.
        assert_eq!(component.component_type().imports(&engine()).count(), 0);
        let forged = std::fs::read(&entry).expect("entry");
        assert_eq!(&forged[..4096], &[0xcc; 4096][..]);
    }

    #[test]
    fn forged_entry_with_a_valid_checksum_in_a_private_directory_is_refused_and_replaced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(&CacheSetting::Dir(tmp.path().join("c")));
        load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        let entry = only_entry(&tmp.path().join("c"));
        forge(&entry);
        // Group-writable: refused before it is even read.
        chmod(&entry, 0o660);
        let (_, cache_use) = load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        assert!(
            matches!(
                &cache_use,
                CacheUse::Compiled {
                    replaced: Some(CacheRefusal::Writable { mode: 0o660, .. })
                }
            ),
            "{cache_use:?}"
        );
        // Replaced by a good entry, which is then a hit.
        let (_, cache_use) = load_or_compile(&engine(), &guest(), &cache).expect("loaded");
        assert!(matches!(cache_use, CacheUse::Hit), "{cache_use:?}");
    }

    #[test]
    fn corrupt_and_symlinked_entries_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(&CacheSetting::Dir(tmp.path().join("c")));
        load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        let entry = only_entry(&tmp.path().join("c"));
        let mut bytes = std::fs::read(&entry).expect("entry");
        bytes[0] ^= 1;
        std::fs::write(&entry, &bytes).expect("corrupted");
        let (_, cache_use) = load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        assert!(
            matches!(
                &cache_use,
                CacheUse::Compiled {
                    replaced: Some(CacheRefusal::Corrupt { .. })
                }
            ),
            "{cache_use:?}"
        );
        let elsewhere = tmp.path().join("elsewhere.cwasm");
        std::fs::rename(&entry, &elsewhere).expect("moved");
        std::os::unix::fs::symlink(&elsewhere, &entry).expect("symlink");
        let (_, cache_use) = load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        assert!(
            matches!(
                &cache_use,
                CacheUse::Compiled {
                    replaced: Some(CacheRefusal::Io { .. })
                }
            ),
            "{cache_use:?}"
        );
    }

    #[test]
    fn a_verified_entry_is_not_read_again_until_it_changes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(&CacheSetting::Dir(tmp.path().join("c")));
        load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        let entry = only_entry(&tmp.path().join("c"));
        let sidecar = verified_path(&entry);
        // Just written: too recent to remember (an in-place change within the same clock
        // tick could keep its change time).
        assert!(
            load_entry(&engine(), &entry, SystemTime::now())
                .expect("loads")
                .is_some()
        );
        assert!(
            !sidecar.exists(),
            "a fresh entry's verification is not remembered"
        );
        let later = SystemTime::now() + SETTLED + Duration::from_secs(1);
        assert!(
            load_entry(&engine(), &entry, later)
                .expect("loads")
                .is_some()
        );
        let stamp = std::fs::read_to_string(&sidecar).expect("remembered once settled");
        assert!(stamp.starts_with("verified "), "{stamp}");
        // Loaded on the stamp's word while the entry is unchanged.
        assert!(
            load_entry(&engine(), &entry, later)
                .expect("loads")
                .is_some()
        );
        // A damaged copy put in its place is another file: read through and refused.
        let mut bytes = std::fs::read(&entry).expect("entry");
        let last = bytes.len() - TRAILER_BYTES - 1;
        bytes[last] ^= 1;
        let damaged = tmp.path().join("damaged");
        std::fs::write(&damaged, &bytes).expect("copy");
        std::fs::rename(&damaged, &entry).expect("replaced");
        assert!(matches!(
            load_entry(&engine(), &entry, later),
            Err(CacheRefusal::Corrupt { .. })
        ));
        // A stamp written by someone else's hand for the damaged file does not match it.
        std::fs::write(&sidecar, &stamp).expect("old stamp");
        assert!(matches!(
            load_entry(&engine(), &entry, later),
            Err(CacheRefusal::Corrupt { .. })
        ));
    }

    #[test]
    fn entries_of_another_user_are_refused() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"x").expect("file");
        let meta = std::fs::metadata(&path).expect("meta");
        let other = meta.uid() + 1;
        assert!(matches!(
            check_owned_file(&path, &meta, other),
            Err(CacheRefusal::NotOwned { owner, user, .. }) if owner == meta.uid() && user == other
        ));
        assert!(check_owned_file(&path, &meta, meta.uid()).is_ok());
    }

    #[test]
    fn disabled_and_missing_caches_compile_in_memory() {
        let cache = Cache::open(&CacheSetting::Disabled);
        let (_, cache_use) = load_or_compile(&engine(), &guest(), &cache).expect("compiled");
        assert!(matches!(
            cache_use,
            CacheUse::Uncached(CacheRefusal::Disabled)
        ));
    }
}
