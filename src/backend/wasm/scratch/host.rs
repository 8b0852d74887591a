//! The `wasi:filesystem` host over the synthetic root, `/tmp` and the real `/data`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use wasmtime::component::{HasData, Linker, Resource, ResourceTableError};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, Advice, Descriptor, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry,
    DirectoryEntryStream, ErrorCode, HostDescriptor, HostDirectoryEntryStream, MetadataHashValue,
    NewTimestamp, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, FsError, FsResult, InputStream, OutputStream, Pollable,
    StreamError, StreamResult,
};

use super::tree::{self, Fault, NodeId, OpenMode, Tree};
use super::{Scratch, lock};

/// Largest single write permit handed to the guest.
const WRITE_PERMIT_BYTES: usize = 64 << 10;

/// Largest single read served at once.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// The `upper` half of every metadata hash of the root and `/tmp`: their "device".
const SCRATCH_DEVICE: u64 = 0x7374_7261_7462_6f78; // "stratbox"

/// The metadata-hash identity of the synthetic root (tree nodes count up from 0).
const ROOT_IDENTITY: u64 = u64::MAX;

/// A root or `/tmp` descriptor, as stored in the resource table.
#[derive(Debug, Clone, Copy)]
struct Handle {
    place: Place,
    flags: DescriptorFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The synthetic `/`.
    Root,
    /// A file or directory of `/tmp`.
    Tmp(NodeId),
}

/// A directory listing of the root or of `/tmp`, as stored in the resource table.
struct Listing(std::vec::IntoIter<DirectoryEntry>);

/// The trap raised when `/tmp` would push the run past its memory limit.
#[derive(Debug, thiserror::Error)]
#[error("/tmp and linear memory together passed the run's memory limit")]
struct ScratchOverMemory;

/// A failed stream operation on a `/tmp` file, with the code `filesystem-error-code` gives.
#[derive(Debug, thiserror::Error)]
#[error("/tmp: {0:?}")]
struct StreamFault(ErrorCode);

fn code(fault: Fault) -> Result<ErrorCode, wasmtime::Error> {
    Ok(match fault {
        Fault::NoEntry => ErrorCode::NoEntry,
        Fault::Exist => ErrorCode::Exist,
        Fault::NotDirectory => ErrorCode::NotDirectory,
        Fault::IsDirectory => ErrorCode::IsDirectory,
        Fault::NotEmpty => ErrorCode::NotEmpty,
        Fault::NoSpace => ErrorCode::InsufficientSpace,
        Fault::NotPermitted => ErrorCode::NotPermitted,
        Fault::Invalid => ErrorCode::Invalid,
        Fault::NameTooLong => ErrorCode::NameTooLong,
        Fault::TooLarge => ErrorCode::FileTooLarge,
        Fault::Memory => return Err(wasmtime::Error::new(ScratchOverMemory)),
    })
}

fn fs_error(fault: Fault) -> FsError {
    match code(fault) {
        Ok(code) => code.into(),
        Err(trap) => FsError::trap(trap),
    }
}

fn stream_error(fault: Fault) -> StreamError {
    match code(fault) {
        Ok(code) => StreamError::LastOperationFailed(wasmtime::Error::new(StreamFault(code))),
        Err(trap) => StreamError::Trap(trap),
    }
}

fn datetime(at: SystemTime) -> Option<Datetime> {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some(Datetime {
        seconds: since.as_secs(),
        nanoseconds: since.subsec_nanos(),
    })
}

fn new_time(stamp: NewTimestamp) -> FsResult<Option<SystemTime>> {
    match stamp {
        NewTimestamp::NoChange => Ok(None),
        NewTimestamp::Now => Ok(Some(SystemTime::now())),
        NewTimestamp::Timestamp(at) => {
            let offset = Duration::from_secs(at.seconds)
                .checked_add(Duration::from_nanos(u64::from(at.nanoseconds)))
                .ok_or(ErrorCode::Overflow)?;
            SystemTime::UNIX_EPOCH
                .checked_add(offset)
                .map(Some)
                .ok_or_else(|| ErrorCode::Overflow.into())
        }
    }
}

fn descriptor_stat(stat: tree::Stat) -> DescriptorStat {
    DescriptorStat {
        type_: if stat.is_dir {
            DescriptorType::Directory
        } else {
            DescriptorType::RegularFile
        },
        link_count: stat.links,
        size: stat.size,
        data_access_timestamp: datetime(stat.times.accessed),
        data_modification_timestamp: datetime(stat.times.modified),
        status_change_timestamp: datetime(stat.times.changed),
    }
}

fn hash(identity: u64) -> MetadataHashValue {
    MetadataHashValue {
        lower: identity,
        upper: SCRATCH_DEVICE,
    }
}

/// Where a descriptor and a path lead.
enum At {
    /// The synthetic root itself.
    Root,
    /// A name at the root that does not exist.
    RootMissing,
    /// A path below a `/tmp` directory.
    Tmp(NodeId, String),
    /// A wasmtime-wasi descriptor and a path below it.
    Real(Resource<Descriptor>, String),
}

/// The host of `wasi:filesystem` for one run: the scratch space and wasmtime-wasi's own
/// file-system context (for `/data`).
pub struct GuestFiles<'a> {
    pub scratch: &'a mut Scratch,
    pub real: WasiFilesystemCtxView<'a>,
}

struct GuestFilesData;

impl HasData for GuestFilesData {
    type Data<'a> = GuestFiles<'a>;
}

/// Links `wasi:filesystem/types` and `wasi:filesystem/preopens` to [`GuestFiles`], over
/// the definitions `wasmtime_wasi::p2::add_to_linker_async` made.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> GuestFiles<'_>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    types::add_to_linker::<T, GuestFilesData>(linker, get)?;
    preopens::add_to_linker::<T, GuestFilesData>(linker, get)?;
    linker.allow_shadowing(false);
    Ok(())
}

impl GuestFiles<'_> {
    fn tree(&self) -> Arc<Mutex<Tree>> {
        Arc::clone(&self.scratch.tree)
    }

    /// The root or `/tmp` handle behind `fd`, or `None` for a wasmtime-wasi descriptor.
    fn ours(&mut self, fd: &Resource<Descriptor>) -> Result<Option<Handle>, ResourceTableError> {
        let entry = self.real.table.get_any_mut(fd.rep())?;
        Ok((*entry).downcast_ref::<Handle>().copied())
    }

    fn push(
        &mut self,
        place: Place,
        flags: DescriptorFlags,
    ) -> Result<Resource<Descriptor>, ResourceTableError> {
        let handle = self.real.table.push(Handle { place, flags })?;
        // The entry is a `Handle`; `ours` tells it apart from wasmtime-wasi's descriptors
        // by that type on every use.
        Ok(Resource::new_own(handle.rep()))
    }

    fn data_dir(&self) -> Option<Resource<Descriptor>> {
        self.scratch.data.map(Resource::new_borrow)
    }

    /// Resolves a descriptor and a path to where they lead.
    fn at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<At> {
        let Some(handle) = self.ours(&fd)? else {
            return Ok(At::Real(fd, path));
        };
        match handle.place {
            Place::Tmp(dir) => Ok(At::Tmp(dir, path)),
            Place::Root => self.from_root(path),
        }
    }

    fn from_root(&self, path: String) -> FsResult<At> {
        if path.is_empty() {
            return Err(ErrorCode::NoEntry.into());
        }
        if path.starts_with('/') {
            return Err(ErrorCode::NotPermitted.into());
        }
        // `..` at the root is the root, as in any POSIX file system; below the first
        // name, `.` and `..` are resolved by the directory that name leads to.
        let mut parts = path
            .split('/')
            .skip_while(|part| part.is_empty() || *part == "." || *part == "..");
        let Some(first) = parts.next() else {
            return Ok(At::Root);
        };
        let rest: Vec<&str> = parts.filter(|part| !part.is_empty()).collect();
        let rest = if rest.is_empty() {
            ".".to_owned()
        } else {
            rest.join("/")
        };
        Ok(match (first, self.data_dir()) {
            ("tmp", _) => At::Tmp(tree::ROOT, rest),
            ("data", Some(data)) => At::Real(data, rest),
            _ if rest == "." => At::RootMissing,
            _ => return Err(ErrorCode::NoEntry.into()),
        })
    }

    fn root_listing(&self) -> Vec<DirectoryEntry> {
        let mut entries = Vec::new();
        if self.scratch.data_granted {
            entries.push(DirectoryEntry {
                type_: DescriptorType::Directory,
                name: "data".to_owned(),
            });
        }
        entries.push(DirectoryEntry {
            type_: DescriptorType::Directory,
            name: "tmp".to_owned(),
        });
        entries
    }

    fn root_stat(&self) -> DescriptorStat {
        DescriptorStat {
            type_: DescriptorType::Directory,
            link_count: 2 + self.root_listing().len() as u64,
            size: 0,
            data_access_timestamp: None,
            data_modification_timestamp: None,
            status_change_timestamp: None,
        }
    }

    /// A `/tmp` file descriptor for reading or writing, by its flags.
    fn tmp_file(&mut self, fd: &Resource<Descriptor>, need: DescriptorFlags) -> FsResult<NodeId> {
        match self.ours(fd)? {
            Some(Handle {
                place: Place::Tmp(id),
                flags,
            }) => {
                if lock(&self.scratch.tree).is_dir(id).map_err(fs_error)? {
                    return Err(ErrorCode::IsDirectory.into());
                }
                if !flags.contains(need) {
                    return Err(ErrorCode::BadDescriptor.into());
                }
                Ok(id)
            }
            Some(Handle {
                place: Place::Root, ..
            }) => Err(ErrorCode::IsDirectory.into()),
            None => Err(ErrorCode::BadDescriptor.into()),
        }
    }

    fn open_tmp(
        &mut self,
        dir: NodeId,
        path: &str,
        open: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let mode = OpenMode {
            create: open.contains(OpenFlags::CREATE),
            exclusive: open.contains(OpenFlags::EXCLUSIVE),
            directory: open.contains(OpenFlags::DIRECTORY),
            truncate: open.contains(OpenFlags::TRUNCATE),
            write: flags.contains(DescriptorFlags::WRITE),
        };
        let id = lock(&self.scratch.tree)
            .open(dir, path, mode)
            .map_err(fs_error)?;
        self.push(Place::Tmp(id), flags).map_err(|err| {
            lock(&self.scratch.tree).close(id);
            err.into()
        })
    }
}

impl preopens::Host for GuestFiles<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let mut dirs = vec![(
            self.push(Place::Root, DescriptorFlags::READ)?,
            "/".to_owned(),
        )];
        if self.scratch.data.is_none() {
            // A private descriptor of /data, which the guest never holds and so cannot
            // close, for paths under /data given relative to the root.
            let mut private = preopens::Host::get_directories(&mut self.real)?;
            if let Some(index) = private.iter().position(|(_, name)| name == "/data") {
                let (fd, _) = private.swap_remove(index);
                self.scratch.data = Some(fd.rep());
            }
            for (fd, _) in private {
                HostDescriptor::drop(&mut self.real, fd)?;
            }
        }
        dirs.extend(preopens::Host::get_directories(&mut self.real)?);
        let flags =
            DescriptorFlags::READ | DescriptorFlags::WRITE | DescriptorFlags::MUTATE_DIRECTORY;
        let tmp = self.push(Place::Tmp(tree::ROOT), flags)?;
        dirs.push((tmp, "/tmp".to_owned()));
        Ok(dirs)
    }
}

impl types::Host for GuestFiles<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        err.downcast()
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        if let Some(StreamFault(code)) = self.real.table.get(&err)?.downcast_ref::<StreamFault>() {
            return Ok(Some(*code));
        }
        types::Host::filesystem_error_code(&mut self.real, err)
    }
}

impl HostDescriptor for GuestFiles<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: u64,
        len: u64,
        advice: Advice,
    ) -> FsResult<()> {
        match self.ours(&fd)? {
            None => HostDescriptor::advise(&mut self.real, fd, offset, len, advice).await,
            Some(_) => self.tmp_file(&fd, DescriptorFlags::empty()).map(drop),
        }
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        match self.ours(&fd)? {
            None => HostDescriptor::sync_data(&mut self.real, fd).await,
            Some(_) => Ok(()),
        }
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        match self.ours(&fd)? {
            None => HostDescriptor::get_flags(&mut self.real, fd).await,
            Some(handle) => Ok(handle.flags),
        }
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType> {
        match self.ours(&fd)? {
            None => HostDescriptor::get_type(&mut self.real, fd).await,
            Some(Handle {
                place: Place::Root, ..
            }) => Ok(DescriptorType::Directory),
            Some(Handle {
                place: Place::Tmp(id),
                ..
            }) => Ok(if lock(&self.scratch.tree).is_dir(id).map_err(fs_error)? {
                DescriptorType::Directory
            } else {
                DescriptorType::RegularFile
            }),
        }
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: u64) -> FsResult<()> {
        if self.ours(&fd)?.is_none() {
            return HostDescriptor::set_size(&mut self.real, fd, size).await;
        }
        let id = self.tmp_file(&fd, DescriptorFlags::WRITE)?;
        lock(&self.scratch.tree)
            .set_size(id, size)
            .map_err(fs_error)
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        accessed: NewTimestamp,
        modified: NewTimestamp,
    ) -> FsResult<()> {
        match self.ours(&fd)? {
            None => HostDescriptor::set_times(&mut self.real, fd, accessed, modified).await,
            Some(Handle {
                place: Place::Root, ..
            }) => Err(ErrorCode::ReadOnly.into()),
            Some(Handle {
                place: Place::Tmp(id),
                ..
            }) => {
                let (accessed, modified) = (new_time(accessed)?, new_time(modified)?);
                lock(&self.scratch.tree)
                    .set_times(id, accessed, modified)
                    .map_err(fs_error)
            }
        }
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: u64,
        offset: u64,
    ) -> FsResult<(Vec<u8>, bool)> {
        if self.ours(&fd)?.is_none() {
            return HostDescriptor::read(&mut self.real, fd, len, offset).await;
        }
        let id = self.tmp_file(&fd, DescriptorFlags::READ)?;
        let len = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(READ_CHUNK_BYTES);
        let bytes = lock(&self.scratch.tree)
            .read(id, offset, len)
            .map_err(fs_error)?;
        let end = bytes.is_empty();
        Ok((bytes, end))
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buffer: Vec<u8>,
        offset: u64,
    ) -> FsResult<u64> {
        if self.ours(&fd)?.is_none() {
            return HostDescriptor::write(&mut self.real, fd, buffer, offset).await;
        }
        let id = self.tmp_file(&fd, DescriptorFlags::WRITE)?;
        lock(&self.scratch.tree)
            .write(id, Some(offset), &buffer)
            .map_err(fs_error)?;
        Ok(buffer.len() as u64)
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DirectoryEntryStream>> {
        let entries = match self.ours(&fd)? {
            None => return HostDescriptor::read_directory(&mut self.real, fd).await,
            Some(Handle {
                place: Place::Root, ..
            }) => self.root_listing(),
            Some(Handle {
                place: Place::Tmp(id),
                ..
            }) => lock(&self.scratch.tree)
                .list(id)
                .map_err(fs_error)?
                .into_iter()
                .map(|(name, is_dir)| DirectoryEntry {
                    type_: if is_dir {
                        DescriptorType::Directory
                    } else {
                        DescriptorType::RegularFile
                    },
                    name,
                })
                .collect(),
        };
        let listing = self
            .real
            .table
            .push(Listing(entries.into_iter()))
            .map_err(FsError::from)?;
        // Told apart from wasmtime-wasi's listings by its type, like `Handle`.
        Ok(Resource::new_own(listing.rep()))
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        match self.ours(&fd)? {
            None => HostDescriptor::sync(&mut self.real, fd).await,
            Some(_) => Ok(()),
        }
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        match self.at(fd, path)? {
            At::Real(fd, path) => {
                HostDescriptor::create_directory_at(&mut self.real, fd, path).await
            }
            At::Tmp(dir, path) => lock(&self.scratch.tree)
                .create_dir(dir, &path)
                .map_err(fs_error),
            At::Root => Err(ErrorCode::Exist.into()),
            At::RootMissing => Err(ErrorCode::ReadOnly.into()),
        }
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        match self.ours(&fd)? {
            None => HostDescriptor::stat(&mut self.real, fd).await,
            Some(Handle {
                place: Place::Root, ..
            }) => Ok(self.root_stat()),
            Some(Handle {
                place: Place::Tmp(id),
                ..
            }) => Ok(descriptor_stat(
                lock(&self.scratch.tree).stat(id).map_err(fs_error)?,
            )),
        }
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        match self.at(fd, path)? {
            At::Real(fd, path) => {
                HostDescriptor::stat_at(&mut self.real, fd, path_flags, path).await
            }
            At::Tmp(dir, path) => {
                let tree = lock(&self.scratch.tree);
                let id = tree.find(dir, &path).map_err(fs_error)?;
                Ok(descriptor_stat(tree.stat(id).map_err(fs_error)?))
            }
            At::Root => Ok(self.root_stat()),
            At::RootMissing => Err(ErrorCode::NoEntry.into()),
        }
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        accessed: NewTimestamp,
        modified: NewTimestamp,
    ) -> FsResult<()> {
        match self.at(fd, path)? {
            At::Real(fd, path) => {
                HostDescriptor::set_times_at(
                    &mut self.real,
                    fd,
                    path_flags,
                    path,
                    accessed,
                    modified,
                )
                .await
            }
            At::Tmp(dir, path) => {
                let (accessed, modified) = (new_time(accessed)?, new_time(modified)?);
                let mut tree = lock(&self.scratch.tree);
                let id = tree.find(dir, &path).map_err(fs_error)?;
                tree.set_times(id, accessed, modified).map_err(fs_error)
            }
            At::Root => Err(ErrorCode::ReadOnly.into()),
            At::RootMissing => Err(ErrorCode::NoEntry.into()),
        }
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: PathFlags,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        match (self.at(fd, old_path)?, self.at(new_fd, new_path)?) {
            (At::Real(fd, old), At::Real(new_fd, new)) => {
                HostDescriptor::link_at(&mut self.real, fd, old_path_flags, old, new_fd, new).await
            }
            // Hard links are not supported in /tmp.
            (At::Tmp(..), At::Tmp(..)) => Err(ErrorCode::NotPermitted.into()),
            (_, At::Root | At::RootMissing) => Err(ErrorCode::ReadOnly.into()),
            _ => Err(ErrorCode::CrossDevice.into()),
        }
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
        open: OpenFlags,
        flags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let writes = flags.contains(DescriptorFlags::WRITE)
            || open.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE);
        match self.at(fd, path)? {
            At::Real(fd, path) => {
                HostDescriptor::open_at(&mut self.real, fd, path_flags, path, open, flags).await
            }
            At::Tmp(dir, path) => self.open_tmp(dir, &path, open, flags),
            At::Root if open.contains(OpenFlags::CREATE | OpenFlags::EXCLUSIVE) => {
                Err(ErrorCode::Exist.into())
            }
            At::Root if writes => Err(ErrorCode::IsDirectory.into()),
            At::Root => Ok(self.push(Place::Root, flags)?),
            At::RootMissing if open.contains(OpenFlags::CREATE) => Err(ErrorCode::ReadOnly.into()),
            At::RootMissing => Err(ErrorCode::NoEntry.into()),
        }
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        let rep = fd.rep();
        let Some(handle) = self.ours(&fd)? else {
            return HostDescriptor::drop(&mut self.real, fd);
        };
        self.real.table.delete(Resource::<Handle>::new_own(rep))?;
        if let Place::Tmp(id) = handle.place {
            lock(&self.scratch.tree).close(id);
        }
        Ok(())
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        match self.at(fd, path)? {
            At::Real(fd, path) => HostDescriptor::readlink_at(&mut self.real, fd, path).await,
            // No symbolic links: whatever exists is not one.
            At::Tmp(dir, path) => {
                lock(&self.scratch.tree)
                    .find(dir, &path)
                    .map_err(fs_error)?;
                Err(ErrorCode::Invalid.into())
            }
            At::Root => Err(ErrorCode::Invalid.into()),
            At::RootMissing => Err(ErrorCode::NoEntry.into()),
        }
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        match self.at(fd, path)? {
            At::Real(fd, path) => {
                HostDescriptor::remove_directory_at(&mut self.real, fd, path).await
            }
            At::Tmp(tree::ROOT, path) if path == "." => Err(ErrorCode::ReadOnly.into()),
            At::Tmp(dir, path) => lock(&self.scratch.tree)
                .remove_dir(dir, &path)
                .map_err(fs_error),
            At::Root => Err(ErrorCode::ReadOnly.into()),
            At::RootMissing => Err(ErrorCode::NoEntry.into()),
        }
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        match (self.at(fd, old_path)?, self.at(new_fd, new_path)?) {
            (At::Real(fd, old), At::Real(new_fd, new)) => {
                HostDescriptor::rename_at(&mut self.real, fd, old, new_fd, new).await
            }
            (At::Tmp(from_dir, from), At::Tmp(to_dir, to)) => lock(&self.scratch.tree)
                .rename(from_dir, &from, to_dir, &to)
                .map_err(fs_error),
            (At::RootMissing, _) => Err(ErrorCode::NoEntry.into()),
            (At::Root, _) | (_, At::Root | At::RootMissing) => Err(ErrorCode::ReadOnly.into()),
            (At::Tmp(..), At::Real(..)) | (At::Real(..), At::Tmp(..)) => {
                Err(ErrorCode::CrossDevice.into())
            }
        }
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_path: String,
    ) -> FsResult<()> {
        match self.at(fd, new_path)? {
            At::Real(fd, new_path) => {
                HostDescriptor::symlink_at(&mut self.real, fd, old_path, new_path).await
            }
            // Symbolic links are not supported in /tmp.
            At::Tmp(..) => Err(ErrorCode::NotPermitted.into()),
            At::Root | At::RootMissing => Err(ErrorCode::ReadOnly.into()),
        }
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        match self.at(fd, path)? {
            At::Real(fd, path) => HostDescriptor::unlink_file_at(&mut self.real, fd, path).await,
            At::Tmp(tree::ROOT, path) if path == "." => Err(ErrorCode::ReadOnly.into()),
            At::Tmp(dir, path) => lock(&self.scratch.tree)
                .unlink_file(dir, &path)
                .map_err(fs_error),
            At::Root => Err(ErrorCode::IsDirectory.into()),
            At::RootMissing => Err(ErrorCode::NoEntry.into()),
        }
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynInputStream>> {
        if self.ours(&fd)?.is_none() {
            return HostDescriptor::read_via_stream(&mut self.real, fd, offset);
        }
        let node = self.tmp_file(&fd, DescriptorFlags::READ)?;
        let stream: DynInputStream = Box::new(TmpInput {
            tree: self.tree(),
            node,
            offset,
        });
        self.real.table.push(stream).map_err(FsError::from)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: u64,
    ) -> FsResult<Resource<DynOutputStream>> {
        if self.ours(&fd)?.is_none() {
            return HostDescriptor::write_via_stream(&mut self.real, fd, offset);
        }
        let node = self.tmp_file(&fd, DescriptorFlags::WRITE)?;
        let stream: DynOutputStream = Box::new(TmpOutput {
            tree: self.tree(),
            node,
            offset: Some(offset),
        });
        self.real.table.push(stream).map_err(FsError::from)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        if self.ours(&fd)?.is_none() {
            return HostDescriptor::append_via_stream(&mut self.real, fd);
        }
        let node = self.tmp_file(&fd, DescriptorFlags::WRITE)?;
        let stream: DynOutputStream = Box::new(TmpOutput {
            tree: self.tree(),
            node,
            offset: None,
        });
        self.real.table.push(stream).map_err(FsError::from)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        match (self.ours(&a)?, self.ours(&b)?) {
            (None, None) => HostDescriptor::is_same_object(&mut self.real, a, b).await,
            (Some(a), Some(b)) => Ok(a.place == b.place),
            (Some(_), None) | (None, Some(_)) => Ok(false),
        }
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        match self.ours(&fd)? {
            None => HostDescriptor::metadata_hash(&mut self.real, fd).await,
            Some(Handle {
                place: Place::Root, ..
            }) => Ok(hash(ROOT_IDENTITY)),
            Some(Handle {
                place: Place::Tmp(id),
                ..
            }) => Ok(hash(id)),
        }
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        match self.at(fd, path)? {
            At::Real(fd, path) => {
                HostDescriptor::metadata_hash_at(&mut self.real, fd, path_flags, path).await
            }
            At::Tmp(dir, path) => Ok(hash(
                lock(&self.scratch.tree)
                    .find(dir, &path)
                    .map_err(fs_error)?,
            )),
            At::Root => Ok(hash(ROOT_IDENTITY)),
            At::RootMissing => Err(ErrorCode::NoEntry.into()),
        }
    }
}

impl HostDirectoryEntryStream for GuestFiles<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<DirectoryEntryStream>,
    ) -> FsResult<Option<DirectoryEntry>> {
        let entry = self.real.table.get_any_mut(stream.rep())?;
        match entry.downcast_mut::<Listing>() {
            Some(Listing(entries)) => Ok(entries.next()),
            None => HostDirectoryEntryStream::read_directory_entry(&mut self.real, stream).await,
        }
    }

    fn drop(&mut self, stream: Resource<DirectoryEntryStream>) -> wasmtime::Result<()> {
        let rep = stream.rep();
        if (*self.real.table.get_any_mut(rep)?).is::<Listing>() {
            self.real.table.delete(Resource::<Listing>::new_own(rep))?;
            return Ok(());
        }
        HostDirectoryEntryStream::drop(&mut self.real, stream)
    }
}

/// A reading stream over a `/tmp` file.
struct TmpInput {
    tree: Arc<Mutex<Tree>>,
    node: NodeId,
    offset: u64,
}

#[wasmtime_wasi::async_trait]
impl Pollable for TmpInput {
    async fn ready(&mut self) {}
}

impl InputStream for TmpInput {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        let bytes = lock(&self.tree)
            .read(self.node, self.offset, size.min(READ_CHUNK_BYTES))
            .map_err(stream_error)?;
        if bytes.is_empty() && size > 0 {
            return Err(StreamError::Closed);
        }
        self.offset += bytes.len() as u64;
        Ok(Bytes::from(bytes))
    }
}

/// A writing stream into a `/tmp` file, at an offset or appending.
struct TmpOutput {
    tree: Arc<Mutex<Tree>>,
    node: NodeId,
    /// `None` appends.
    offset: Option<u64>,
}

#[wasmtime_wasi::async_trait]
impl Pollable for TmpOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for TmpOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let end = lock(&self.tree)
            .write(self.node, self.offset, &bytes)
            .map_err(stream_error)?;
        if let Some(offset) = &mut self.offset {
            *offset = end;
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // The file must still exist; whether the bytes fit is decided by the write.
        lock(&self.tree).file_len(self.node).map_err(stream_error)?;
        Ok(WRITE_PERMIT_BYTES)
    }
}
