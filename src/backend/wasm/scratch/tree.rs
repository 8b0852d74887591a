//! The in-memory tree behind the guest's `/tmp`: files, directories and what they cost.
//!
//! Plain data, no WASI types: `host.rs` maps each [`Fault`] to a WASI error code. Every
//! operation either completes or changes nothing.
//!
//! Accounting: each file or directory costs [`NODE_BYTES`], and a file also costs the
//! bytes reserved for its contents. The total never passes the tree's limit (the policy's
//! `tmp-size`; past it an operation fails with [`Fault::NoSpace`]) and, added to the
//! guest's linear memory, never passes the run's memory limit (past it an operation fails
//! with [`Fault::Memory`], which stops the run). At most [`MAX_NODES`] entries exist at
//! once. A node's cost is returned when it is neither linked into a directory nor held
//! open by a descriptor.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use crate::backend::wasm::limiter::MemoryBudget;

/// A node's identity. Identities are never reused within a run, so a stale stream can
/// never reach a newer file.
pub type NodeId = u64;

/// The directory that the guest sees as `/tmp`.
pub const ROOT: NodeId = 0;

/// What one file or directory costs beside its contents: the node, its directory entry
/// and a name of up to [`MAX_NAME_BYTES`].
pub const NODE_BYTES: u64 = 512;

/// Most files and directories at once (a tmpfs's inode limit has the same role).
pub const MAX_NODES: usize = 1 << 16;

/// Longest name of one entry, as on Linux (`NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// Growth of a file's reservation beyond what a write needs, at most: appends then
/// reserve geometrically without doubling a large file's footprint.
const MAX_SLACK_BYTES: usize = 1 << 20;

/// Why an operation on the tree failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// ENOENT.
    NoEntry,
    /// EEXIST.
    Exist,
    /// ENOTDIR.
    NotDirectory,
    /// EISDIR.
    IsDirectory,
    /// ENOTEMPTY.
    NotEmpty,
    /// ENOSPC: `tmp-size` or the entry limit is reached.
    NoSpace,
    /// The run's memory limit is reached (linear memory plus `/tmp`): the run stops.
    Memory,
    /// EPERM: the path leaves `/tmp` (absolute, or `..` above it), or the operation is not
    /// supported here (links).
    NotPermitted,
    /// EINVAL.
    Invalid,
    /// ENAMETOOLONG.
    NameTooLong,
    /// EFBIG: an offset or size beyond what the host can address.
    TooLarge,
}

/// Timestamps of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Times {
    pub accessed: SystemTime,
    pub modified: SystemTime,
    pub changed: SystemTime,
}

impl Times {
    fn now() -> Self {
        let now = SystemTime::now();
        Self {
            accessed: now,
            modified: now,
            changed: now,
        }
    }
}

#[derive(Debug)]
enum Kind {
    File(Vec<u8>),
    Dir(BTreeMap<String, NodeId>),
}

#[derive(Debug)]
struct Node {
    kind: Kind,
    /// The directory holding it (the root holds itself).
    parent: NodeId,
    /// Whether a directory entry names it.
    linked: bool,
    /// Open descriptors.
    handles: u32,
    times: Times,
}

impl Node {
    fn entries(&self) -> Result<&BTreeMap<String, NodeId>, Fault> {
        match &self.kind {
            Kind::Dir(entries) => Ok(entries),
            Kind::File(_) => Err(Fault::NotDirectory),
        }
    }

    fn cost(&self) -> u64 {
        NODE_BYTES
            + match &self.kind {
                Kind::File(data) => data.capacity() as u64,
                Kind::Dir(_) => 0,
            }
    }
}

/// What a path names: an entry `name` of directory `dir` (which may not exist yet), or,
/// for paths such as `.` and `a/..`, the directory `dir` itself.
#[derive(Debug)]
struct Lookup {
    dir: NodeId,
    name: Option<String>,
    found: Option<NodeId>,
}

/// How to open a path, from the WASI open and descriptor flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenMode {
    pub create: bool,
    pub exclusive: bool,
    pub directory: bool,
    pub truncate: bool,
    pub write: bool,
}

/// What `stat` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub is_dir: bool,
    pub size: u64,
    pub links: u64,
    pub times: Times,
}

/// The whole `/tmp` of one run.
#[derive(Debug)]
pub struct Tree {
    nodes: HashMap<NodeId, Node>,
    next_id: NodeId,
    used_bytes: u64,
    limit_bytes: u64,
    budget: Arc<MemoryBudget>,
    /// Whether an operation failed for want of space.
    ran_out: bool,
}

impl Tree {
    /// An empty `/tmp` that may hold `limit_bytes`, within the run's memory `budget`.
    pub fn new(limit_bytes: u64, budget: Arc<MemoryBudget>) -> Self {
        let root = Node {
            kind: Kind::Dir(BTreeMap::new()),
            parent: ROOT,
            linked: true,
            handles: 0,
            times: Times::now(),
        };
        Self {
            nodes: HashMap::from([(ROOT, root)]),
            next_id: ROOT + 1,
            used_bytes: 0,
            limit_bytes,
            budget,
            ran_out: false,
        }
    }

    /// Bytes counted against `tmp-size` now.
    #[cfg(test)]
    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    fn node(&self, id: NodeId) -> Result<&Node, Fault> {
        self.nodes.get(&id).ok_or(Fault::NoEntry)
    }

    fn node_mut(&mut self, id: NodeId) -> Result<&mut Node, Fault> {
        self.nodes.get_mut(&id).ok_or(Fault::NoEntry)
    }

    fn entries_mut(&mut self, dir: NodeId) -> Result<&mut BTreeMap<String, NodeId>, Fault> {
        match &mut self.node_mut(dir)?.kind {
            Kind::Dir(entries) => Ok(entries),
            Kind::File(_) => Err(Fault::NotDirectory),
        }
    }

    /// Whether an operation failed because `/tmp` was full (`tmp-size` or the entry
    /// limit).
    pub fn ran_out(&self) -> bool {
        self.ran_out
    }

    fn charge(&mut self, bytes: u64) -> Result<(), Fault> {
        let used = self.used_bytes.saturating_add(bytes);
        if used > self.limit_bytes {
            self.ran_out = true;
            return Err(Fault::NoSpace);
        }
        if !self.budget.try_set_scratch(used) {
            return Err(Fault::Memory);
        }
        self.used_bytes = used;
        Ok(())
    }

    fn refund(&mut self, bytes: u64) {
        self.used_bytes = self.used_bytes.saturating_sub(bytes);
        self.budget.set_scratch(self.used_bytes);
    }

    /// Resolves `path` relative to directory `start`.
    fn lookup(&self, start: NodeId, path: &str) -> Result<Lookup, Fault> {
        if path.is_empty() {
            return Err(Fault::NoEntry);
        }
        if path.starts_with('/') {
            return Err(Fault::NotPermitted);
        }
        let must_be_dir = path.ends_with('/');
        let parts: Vec<&str> = path
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".")
            .collect();
        self.node(start)?.entries()?;
        let Some((last, init)) = parts.split_last() else {
            return Ok(Lookup {
                dir: start,
                name: None,
                found: Some(start),
            });
        };
        let mut dir = start;
        for part in init {
            dir = self.step(dir, part)?;
        }
        if *last == ".." {
            let up = self.parent(dir)?;
            return Ok(Lookup {
                dir: up,
                name: None,
                found: Some(up),
            });
        }
        if last.len() > MAX_NAME_BYTES {
            return Err(Fault::NameTooLong);
        }
        let found = self.node(dir)?.entries()?.get(*last).copied();
        if must_be_dir
            && let Some(id) = found
            && !matches!(self.node(id)?.kind, Kind::Dir(_))
        {
            return Err(Fault::NotDirectory);
        }
        Ok(Lookup {
            dir,
            name: Some((*last).to_owned()),
            found,
        })
    }

    fn parent(&self, dir: NodeId) -> Result<NodeId, Fault> {
        if dir == ROOT {
            // `..` above /tmp would leave the scratch space.
            return Err(Fault::NotPermitted);
        }
        Ok(self.node(dir)?.parent)
    }

    fn step(&self, dir: NodeId, part: &str) -> Result<NodeId, Fault> {
        if part == ".." {
            return self.parent(dir);
        }
        let next = *self.node(dir)?.entries()?.get(part).ok_or(Fault::NoEntry)?;
        self.node(next)?.entries()?;
        Ok(next)
    }

    /// A directory that can receive a new entry (not removed while open).
    fn check_live_dir(&self, dir: NodeId) -> Result<(), Fault> {
        let node = self.node(dir)?;
        node.entries()?;
        if !node.linked {
            return Err(Fault::NoEntry);
        }
        Ok(())
    }

    fn add(&mut self, dir: NodeId, name: String, kind: Kind) -> Result<NodeId, Fault> {
        self.check_live_dir(dir)?;
        if self.nodes.len() >= MAX_NODES {
            self.ran_out = true;
            return Err(Fault::NoSpace);
        }
        self.charge(NODE_BYTES)?;
        let id = self.next_id;
        self.next_id += 1;
        self.nodes.insert(
            id,
            Node {
                kind,
                parent: dir,
                linked: true,
                handles: 0,
                times: Times::now(),
            },
        );
        let entries = self.entries_mut(dir)?;
        entries.insert(name, id);
        self.touch_dir(dir);
        Ok(id)
    }

    fn touch_dir(&mut self, dir: NodeId) {
        if let Ok(node) = self.node_mut(dir) {
            let now = SystemTime::now();
            node.times.modified = now;
            node.times.changed = now;
        }
    }

    /// Drops a node that nothing names or holds any more, and returns its cost.
    fn release(&mut self, id: NodeId) {
        let unused = self
            .nodes
            .get(&id)
            .is_some_and(|node| !node.linked && node.handles == 0 && id != ROOT);
        if unused && let Some(node) = self.nodes.remove(&id) {
            self.refund(node.cost());
        }
    }

    /// Takes entry `name` out of `dir` and releases it if nothing holds it.
    fn detach(&mut self, dir: NodeId, name: &str) -> Result<(), Fault> {
        let id = self.entries_mut(dir)?.remove(name).ok_or(Fault::NoEntry)?;
        self.touch_dir(dir);
        let node = self.node_mut(id)?;
        node.linked = false;
        node.times.changed = SystemTime::now();
        self.release(id);
        Ok(())
    }

    /// Opens `path` relative to `start` and counts the new descriptor.
    pub fn open(&mut self, start: NodeId, path: &str, mode: OpenMode) -> Result<NodeId, Fault> {
        let lookup = self.lookup(start, path)?;
        let id = match (lookup.found, lookup.name) {
            (Some(_), _) if mode.create && mode.exclusive => return Err(Fault::Exist),
            (Some(id), _) => {
                match self.node(id)?.kind {
                    Kind::Dir(_) if mode.write || mode.truncate => {
                        return Err(Fault::IsDirectory);
                    }
                    Kind::File(_) if mode.directory => return Err(Fault::NotDirectory),
                    Kind::Dir(_) | Kind::File(_) => {}
                }
                if mode.truncate {
                    self.set_size(id, 0)?;
                }
                id
            }
            (None, Some(_)) if !mode.create => return Err(Fault::NoEntry),
            (None, Some(_)) if mode.directory || path.ends_with('/') => {
                return Err(Fault::IsDirectory);
            }
            (None, Some(name)) => self.add(lookup.dir, name, Kind::File(Vec::new()))?,
            (None, None) => return Err(Fault::NoEntry),
        };
        self.node_mut(id)?.handles += 1;
        Ok(id)
    }

    /// Forgets one descriptor of `id`.
    pub fn close(&mut self, id: NodeId) {
        if let Some(node) = self.nodes.get_mut(&id) {
            node.handles = node.handles.saturating_sub(1);
        }
        self.release(id);
    }

    pub fn create_dir(&mut self, start: NodeId, path: &str) -> Result<(), Fault> {
        let lookup = self.lookup(start, path)?;
        match (lookup.found, lookup.name) {
            (Some(_), _) | (None, None) => Err(Fault::Exist),
            (None, Some(name)) => self
                .add(lookup.dir, name, Kind::Dir(BTreeMap::new()))
                .map(drop),
        }
    }

    pub fn unlink_file(&mut self, start: NodeId, path: &str) -> Result<(), Fault> {
        let lookup = self.lookup(start, path)?;
        let (Some(id), Some(name)) = (lookup.found, lookup.name) else {
            return Err(match lookup.found {
                Some(_) => Fault::IsDirectory,
                None => Fault::NoEntry,
            });
        };
        if path.ends_with('/') {
            return Err(Fault::IsDirectory);
        }
        if let Kind::Dir(_) = self.node(id)?.kind {
            return Err(Fault::IsDirectory);
        }
        self.detach(lookup.dir, &name)
    }

    pub fn remove_dir(&mut self, start: NodeId, path: &str) -> Result<(), Fault> {
        let lookup = self.lookup(start, path)?;
        let Some(id) = lookup.found else {
            return Err(Fault::NoEntry);
        };
        let Some(name) = lookup.name else {
            // `rmdir(".")` and the root of /tmp itself.
            return Err(if id == ROOT {
                Fault::NotPermitted
            } else {
                Fault::Invalid
            });
        };
        if !self.node(id)?.entries()?.is_empty() {
            return Err(Fault::NotEmpty);
        }
        self.detach(lookup.dir, &name)
    }

    /// Renames `from` (relative to `from_dir`) to `to` (relative to `to_dir`), replacing a
    /// file by a file or an empty directory by a directory, as `rename(2)` does.
    pub fn rename(
        &mut self,
        from_dir: NodeId,
        from: &str,
        to_dir: NodeId,
        to: &str,
    ) -> Result<(), Fault> {
        let source = self.lookup(from_dir, from)?;
        let Some(moving) = source.found else {
            return Err(Fault::NoEntry);
        };
        let Some(source_name) = source.name else {
            return Err(if moving == ROOT {
                Fault::NotPermitted
            } else {
                Fault::Invalid
            });
        };
        let target = self.lookup(to_dir, to)?;
        let Some(target_name) = target.name else {
            return Err(Fault::Exist);
        };
        self.check_live_dir(target.dir)?;
        let moving_dir = matches!(self.node(moving)?.kind, Kind::Dir(_));
        if target.found == Some(moving) {
            return Ok(());
        }
        if moving_dir {
            // A directory cannot move below itself.
            let mut up = target.dir;
            loop {
                if up == moving {
                    return Err(Fault::Invalid);
                }
                if up == ROOT {
                    break;
                }
                up = self.node(up)?.parent;
            }
        }
        if let Some(replaced) = target.found {
            match (&self.node(replaced)?.kind, moving_dir) {
                (Kind::Dir(entries), true) if !entries.is_empty() => return Err(Fault::NotEmpty),
                (Kind::Dir(_), false) => return Err(Fault::IsDirectory),
                (Kind::File(_), true) => return Err(Fault::NotDirectory),
                (Kind::Dir(_) | Kind::File(_), _) => {}
            }
            self.detach(target.dir, &target_name)?;
        }
        self.entries_mut(source.dir)?.remove(&source_name);
        self.touch_dir(source.dir);
        self.entries_mut(target.dir)?.insert(target_name, moving);
        self.touch_dir(target.dir);
        let node = self.node_mut(moving)?;
        node.parent = target.dir;
        node.times.changed = SystemTime::now();
        Ok(())
    }

    /// Whether `id` is a directory.
    pub fn is_dir(&self, id: NodeId) -> Result<bool, Fault> {
        Ok(matches!(self.node(id)?.kind, Kind::Dir(_)))
    }

    pub fn stat(&self, id: NodeId) -> Result<Stat, Fault> {
        let node = self.node(id)?;
        let (is_dir, size, links) = match &node.kind {
            Kind::File(data) => (false, data.len() as u64, u64::from(node.linked)),
            Kind::Dir(entries) => {
                let subdirs = entries
                    .values()
                    .filter(|child| {
                        self.nodes
                            .get(child)
                            .is_some_and(|c| matches!(c.kind, Kind::Dir(_)))
                    })
                    .count() as u64;
                let own = if node.linked { 2 } else { 0 };
                // Linux tmpfs reports a directory's size as 20 bytes per entry plus two.
                (true, 40 + 20 * entries.len() as u64, own + subdirs)
            }
        };
        Ok(Stat {
            is_dir,
            size,
            links,
            times: node.times,
        })
    }

    /// The node `path` names, relative to `start`.
    pub fn find(&self, start: NodeId, path: &str) -> Result<NodeId, Fault> {
        self.lookup(start, path)?.found.ok_or(Fault::NoEntry)
    }

    pub fn set_times(
        &mut self,
        id: NodeId,
        accessed: Option<SystemTime>,
        modified: Option<SystemTime>,
    ) -> Result<(), Fault> {
        let node = self.node_mut(id)?;
        if let Some(at) = accessed {
            node.times.accessed = at;
        }
        if let Some(at) = modified {
            node.times.modified = at;
        }
        node.times.changed = SystemTime::now();
        Ok(())
    }

    /// The entries of directory `id`, by name, with whether each is a directory.
    pub fn list(&self, id: NodeId) -> Result<Vec<(String, bool)>, Fault> {
        let entries = self.node(id)?.entries()?;
        Ok(entries
            .iter()
            .map(|(name, child)| {
                let is_dir = self
                    .nodes
                    .get(child)
                    .is_some_and(|c| matches!(c.kind, Kind::Dir(_)));
                (name.clone(), is_dir)
            })
            .collect())
    }

    /// Up to `len` bytes of file `id` from `offset`; empty at or past the end.
    pub fn read(&mut self, id: NodeId, offset: u64, len: usize) -> Result<Vec<u8>, Fault> {
        let node = self.node_mut(id)?;
        let Kind::File(data) = &node.kind else {
            return Err(Fault::IsDirectory);
        };
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        let bytes = data[start..end].to_vec();
        node.times.accessed = SystemTime::now();
        Ok(bytes)
    }

    /// Writes `bytes` into file `id` at `offset`, or at its end when `offset` is `None`,
    /// filling any gap with zeros. Returns the offset after the written bytes.
    pub fn write(&mut self, id: NodeId, offset: Option<u64>, bytes: &[u8]) -> Result<u64, Fault> {
        let len = self.file(id)?.len();
        let start = match offset {
            Some(offset) => usize::try_from(offset).map_err(|_| Fault::TooLarge)?,
            None => len,
        };
        let end = start.checked_add(bytes.len()).ok_or(Fault::TooLarge)?;
        self.reserve(id, end)?;
        let data = self.file_mut(id)?;
        if data.len() < end {
            data.resize(end, 0);
        }
        data[start..end].copy_from_slice(bytes);
        self.modified(id);
        Ok(end as u64)
    }

    /// Sets the length of file `id`, cutting or extending it with zeros.
    pub fn set_size(&mut self, id: NodeId, size: u64) -> Result<(), Fault> {
        let size = usize::try_from(size).map_err(|_| Fault::TooLarge)?;
        self.reserve(id, size)?;
        let data = self.file_mut(id)?;
        data.resize(size, 0);
        if data.capacity() > size.saturating_mul(2) {
            let before = data.capacity() as u64;
            data.shrink_to(size);
            let after = data.capacity() as u64;
            self.refund(before.saturating_sub(after));
        }
        self.modified(id);
        Ok(())
    }

    /// Bytes of data a file holds.
    pub fn file_len(&self, id: NodeId) -> Result<u64, Fault> {
        Ok(self.file(id)?.len() as u64)
    }

    fn file(&self, id: NodeId) -> Result<&Vec<u8>, Fault> {
        match &self.node(id)?.kind {
            Kind::File(data) => Ok(data),
            Kind::Dir(_) => Err(Fault::IsDirectory),
        }
    }

    fn file_mut(&mut self, id: NodeId) -> Result<&mut Vec<u8>, Fault> {
        match &mut self.node_mut(id)?.kind {
            Kind::File(data) => Ok(data),
            Kind::Dir(_) => Err(Fault::IsDirectory),
        }
    }

    fn modified(&mut self, id: NodeId) {
        if let Ok(node) = self.node_mut(id) {
            let now = SystemTime::now();
            node.times.modified = now;
            node.times.changed = now;
        }
    }

    /// Makes room for `len` bytes in file `id`, charging what the reservation grows by:
    /// geometrically (by at most [`MAX_SLACK_BYTES`]) when that fits, exactly otherwise.
    fn reserve(&mut self, id: NodeId, len: usize) -> Result<(), Fault> {
        let capacity = self.file(id)?.capacity();
        if len <= capacity {
            return Ok(());
        }
        let generous = len
            .max(capacity.saturating_mul(2))
            .min(len.saturating_add(MAX_SLACK_BYTES));
        let mut outcome = Err(Fault::NoSpace);
        for wanted in [generous, len] {
            outcome = self.charge((wanted - capacity) as u64);
            if outcome.is_ok() {
                let data = self.file_mut(id)?;
                let additional = wanted - data.len();
                if data.try_reserve_exact(additional).is_err() {
                    self.refund((wanted - capacity) as u64);
                    return Err(Fault::NoSpace);
                }
                // The allocator may round up; count what is really held.
                let held = data.capacity();
                if held > wanted {
                    self.used_bytes += (held - wanted) as u64;
                    self.budget.set_scratch(self.used_bytes);
                }
                return Ok(());
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(limit: u64) -> Tree {
        Tree::new(limit, Arc::new(MemoryBudget::new(1 << 30)))
    }

    const CREATE: OpenMode = OpenMode {
        create: true,
        exclusive: false,
        directory: false,
        truncate: false,
        write: true,
    };
    const READ: OpenMode = OpenMode {
        create: false,
        exclusive: false,
        directory: false,
        truncate: false,
        write: false,
    };

    #[test]
    fn files_round_trip_and_cost_their_contents() {
        let mut t = tree(1 << 20);
        let f = t.open(ROOT, "a.csv", CREATE).unwrap();
        assert_eq!(t.write(f, None, b"x,y\n").unwrap(), 4);
        assert_eq!(t.write(f, None, b"1,2\n").unwrap(), 8);
        assert_eq!(t.read(f, 0, 100).unwrap(), b"x,y\n1,2\n");
        assert_eq!(t.read(f, 8, 100).unwrap(), b"");
        assert_eq!(t.stat(f).unwrap().size, 8);
        assert!(t.used_bytes() >= NODE_BYTES + 8);
        t.close(f);
        t.unlink_file(ROOT, "a.csv").unwrap();
        assert_eq!(t.used_bytes(), 0, "everything is returned");
    }

    #[test]
    fn error_codes_match_posix() {
        let mut t = tree(1 << 20);
        t.create_dir(ROOT, "d").unwrap();
        let f = t.open(ROOT, "d/f", CREATE).unwrap();
        t.close(f);
        assert_eq!(t.create_dir(ROOT, "d"), Err(Fault::Exist));
        assert_eq!(t.open(ROOT, "nope", READ), Err(Fault::NoEntry));
        assert_eq!(t.open(ROOT, "d/f/g", CREATE), Err(Fault::NotDirectory));
        assert_eq!(t.unlink_file(ROOT, "d"), Err(Fault::IsDirectory));
        assert_eq!(t.remove_dir(ROOT, "d"), Err(Fault::NotEmpty));
        assert_eq!(t.remove_dir(ROOT, "d/f"), Err(Fault::NotDirectory));
        assert_eq!(
            t.open(
                ROOT,
                "d/f",
                OpenMode {
                    exclusive: true,
                    ..CREATE
                }
            ),
            Err(Fault::Exist)
        );
        assert_eq!(t.open(ROOT, "d", CREATE), Err(Fault::IsDirectory));
        assert_eq!(t.open(ROOT, "../etc", READ), Err(Fault::NotPermitted));
        assert_eq!(t.open(ROOT, "d/../../x", CREATE), Err(Fault::NotPermitted));
        assert_eq!(t.open(ROOT, "/etc", READ), Err(Fault::NotPermitted));
        assert_eq!(
            t.open(ROOT, &"n".repeat(256), CREATE),
            Err(Fault::NameTooLong)
        );
        assert_eq!(t.remove_dir(ROOT, "."), Err(Fault::NotPermitted));
        t.unlink_file(ROOT, "d/f").unwrap();
        t.remove_dir(ROOT, "d").unwrap();
        assert_eq!(t.used_bytes(), 0);
    }

    #[test]
    fn rename_moves_and_replaces() {
        let mut t = tree(1 << 20);
        t.create_dir(ROOT, "a").unwrap();
        t.create_dir(ROOT, "b").unwrap();
        let f = t.open(ROOT, "a/f", CREATE).unwrap();
        t.write(f, None, b"one").unwrap();
        t.close(f);
        let g = t.open(ROOT, "b/g", CREATE).unwrap();
        t.write(g, None, b"two").unwrap();
        t.close(g);
        t.rename(ROOT, "a/f", ROOT, "b/g").unwrap();
        assert_eq!(t.list(ROOT).unwrap().len(), 2);
        let moved = t.find(ROOT, "b/g").unwrap();
        assert_eq!(t.read(moved, 0, 10).unwrap(), b"one");
        assert_eq!(t.find(ROOT, "a/f"), Err(Fault::NoEntry));
        assert_eq!(t.rename(ROOT, "a", ROOT, "a/sub"), Err(Fault::Invalid));
        assert_eq!(t.rename(ROOT, "b", ROOT, "a"), Ok(()), "onto an empty dir");
        assert_eq!(t.rename(ROOT, "a/g", ROOT, "."), Err(Fault::Exist));
    }

    #[test]
    fn an_unlinked_open_file_lives_until_closed() {
        let mut t = tree(1 << 20);
        let f = t.open(ROOT, "tmpf", CREATE).unwrap();
        t.write(f, Some(0), b"kept").unwrap();
        t.unlink_file(ROOT, "tmpf").unwrap();
        assert_eq!(t.read(f, 0, 10).unwrap(), b"kept");
        assert!(t.used_bytes() > 0);
        t.close(f);
        assert_eq!(t.used_bytes(), 0);
    }

    #[test]
    fn the_cap_stops_writes_and_entries() {
        let mut t = tree(64 << 10);
        let f = t.open(ROOT, "big", CREATE).unwrap();
        let chunk = vec![7u8; 16 << 10];
        let mut written = 0;
        let fault = loop {
            match t.write(f, None, &chunk) {
                Ok(end) => written = end,
                Err(fault) => break fault,
            }
        };
        assert_eq!(fault, Fault::NoSpace);
        assert!(t.ran_out());
        assert!(written >= 32 << 10, "{written}");
        assert!(t.used_bytes() <= 64 << 10);
        t.set_size(f, 0).unwrap();
        assert!(t.used_bytes() < 4 << 10, "{}", t.used_bytes());
        let mut made = 0;
        while t.create_dir(ROOT, &format!("d{made}")).is_ok() {
            made += 1;
        }
        assert!(made > 0 && made as u64 * NODE_BYTES <= 64 << 10, "{made}");
    }

    #[test]
    fn the_run_memory_limit_covers_the_tree() {
        let budget = Arc::new(MemoryBudget::new(1 << 20));
        assert!(budget.try_grow_linear(1 << 19));
        assert!(!budget.refused());
        let mut t = Tree::new(4 << 20, Arc::clone(&budget));
        let f = t.open(ROOT, "f", CREATE).unwrap();
        let fault = t.write(f, None, &vec![0u8; 600 << 10]).unwrap_err();
        assert_eq!(fault, Fault::Memory);
        assert!(budget.refused());
    }

    #[test]
    fn sparse_writes_count_the_gap() {
        let mut t = tree(1 << 20);
        let f = t.open(ROOT, "s", CREATE).unwrap();
        assert_eq!(t.write(f, Some(1 << 30), b"x"), Err(Fault::NoSpace));
        assert_eq!(t.write(f, Some(10), b"x").unwrap(), 11);
        assert_eq!(t.read(f, 0, 11).unwrap(), [&[0u8; 10][..], b"x"].concat());
    }
}
