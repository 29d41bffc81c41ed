//! Unpacking one layer (a tar stream, gzip- or zstd-compressed or not) into
//! a directory that becomes an overlay lower layer, safely.
//!
//! # How nothing is written outside the directory
//!
//! Every entry is created relative to a directory file descriptor, never by
//! a host path:
//!
//! 1. The entry's name is split into components; a `..` component is
//!    refused outright. A leading `/` is dropped: as containerd and GNU tar
//!    do, `/etc/x` is the layer's `etc/x`, and the entry `/` (which
//!    `umoci insert IMAGE DIR /` writes first) is the layer's root, like
//!    `./`. Hard-link targets are read the same way.
//! 2. The directory that will hold the entry is opened with `openat2(2)`
//!    relative to the layer's root with `RESOLVE_BENEATH`: the kernel
//!    resolves it, following symlinks the layer made *inside* the tree, but
//!    fails with `EXDEV` the moment resolution would leave the root (an
//!    absolute symlink, or `..` climbing above it). A symlink entry followed
//!    by a file entry through it is caught there.
//! 3. The last component is created with `*at` calls on that descriptor
//!    that never follow it (`O_CREAT|O_EXCL|O_NOFOLLOW`, `mkdirat`,
//!    `symlinkat`, `mknodat`, `linkat` without `AT_SYMLINK_FOLLOW`), and
//!    metadata is set through the same descriptor with
//!    `AT_SYMLINK_NOFOLLOW`.
//! 4. A hard link's target is resolved the same way (step 1 and 2), so it
//!    can only name a file already inside the tree.
//!
//! A path the kernel resolved is never re-resolved by a string: the
//! directory descriptor is reused for the entries of the same directory, and
//! dropped whenever an entry removes something (which could have been one
//! of its components).
//!
//! # Whiteouts
//!
//! `.wh.NAME` becomes overlayfs's whiteout, a character device 0/0 named
//! `NAME`; `.wh..wh..opq` marks its directory opaque
//! (`trusted.overlay.opaque=y`). Other `.wh..wh.` names are aufs bookkeeping
//! and are skipped.

use std::ffi::CString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};

use std::os::unix::fs::MetadataExt;

use super::sys::*;
use super::treesum::{FileHash, Hashed};
use crate::cas::{Digest, Sha256};

/// Errors of unpacking; each names the layer, and the entry when one is
/// at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("layer {layer}: refusing entry {entry:?}: {reason}")]
    Unsafe {
        layer: String,
        entry: String,
        reason: &'static str,
    },
    #[error("layer {layer}: entry {entry:?}: {what}: {source}")]
    Entry {
        layer: String,
        entry: String,
        what: &'static str,
        source: io::Error,
    },
    #[error("layer {layer}: entry {entry:?}: bad header: {reason}")]
    Header {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: reading the archive: {source}")]
    Read { layer: String, source: io::Error },
    #[error("layer {layer}: unpacking stopped: {}", super::limits::under_reserve(*.free, *.reserve))]
    DiskFull {
        layer: String,
        free: u64,
        reserve: u64,
    },
}

const OPAQUE_XATTR: &std::ffi::CStr = c"trusted.overlay.opaque";

/// Detect the compression from the first bytes and decompress.
pub fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let head = buf.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(buf))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::Decoder::with_buffer(buf)?)
    } else {
        Box::new(buf)
    })
}

/// What unpacking a layer found.
#[derive(Debug)]
pub struct Unpacked {
    /// The sha256 of the uncompressed tar stream.
    pub diff_id: Digest,
    /// The content hash of every regular file, taken as it was written.
    pub hashed: Hashed,
}

/// Bytes of the tar stream between the threads of an unpack: chunks of
/// `CHUNK`, at most `DEPTH` queued on each channel, so an unpack holds a
/// few MiB whatever the layer's size.
const CHUNK: usize = 1 << 20;
const DEPTH: usize = 8;
/// A file's content as handed to the hashing thread.
const FILE_BUF: usize = 256 * 1024;
/// A big file's writeback is started every this many bytes, not only once
/// it is complete.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// Files written whose writeback the flushing thread has yet to start: each
/// holds a descriptor open.
const WRITEBACK_DEPTH: usize = 64;

/// A range of a file just written, to start writing back (`len` 0: to the
/// end). The flushing thread closes the file once it holds the last `Arc`.
struct Writeback {
    file: Arc<std::fs::File>,
    offset: u64,
    len: u64,
}

type Chunk = Arc<Vec<u8>>;

/// Unpack the layer `reader` into `dest` (an existing, empty directory),
/// stopping when its filesystem's free space falls under `reserve` bytes
/// (0: never): a few KiB of compressed zeros can expand to fill any disk.
///
/// Five threads, as `tar xzf` runs gzip and tar in two processes, so that
/// on a machine with more than one CPU decompression, hashing and file
/// writes overlap: one decompresses, one hashes the tar stream (the
/// diff-id), this one parses it and writes the files, one hashes the
/// files' content for the snapshot's sum, and one starts each file's
/// writeback as soon as it is written, so that the disk works while the
/// layer is still being decompressed and the caller's final `syncfs` finds
/// little left to write. Bounded channels link them.
pub fn unpack(
    reader: impl Read + Send,
    dest: &Path,
    layer: &str,
    reserve: u64,
) -> Result<Unpacked, Error> {
    let read_err = |source| Error::Read {
        layer: layer.to_string(),
        source,
    };
    let root = open_dir(dest).map_err(read_err)?;
    std::thread::scope(|s| {
        let (tar_tx, tar_rx) = mpsc::sync_channel(DEPTH);
        let (sum_tx, sum_rx) = mpsc::sync_channel::<Chunk>(DEPTH);
        let (file_tx, file_rx) = mpsc::sync_channel(DEPTH);
        let (spare_tx, spare_rx) = mpsc::channel();
        let inflater = s.spawn(move || inflate(reader, &tar_tx, &sum_tx));
        let diff = s.spawn(move || {
            let mut h = Sha256::new();
            for chunk in sum_rx {
                h.update(chunk.as_slice());
            }
            Digest::from_hasher(h)
        });
        let files = s.spawn(move || hash_files(file_rx, &spare_tx));
        let (flush_tx, flush_rx) = mpsc::sync_channel(WRITEBACK_DEPTH);
        let flusher = s.spawn(move || start_writebacks(flush_rx));
        let mut u = Unpacker {
            root,
            layer,
            cache: None,
            dirs: Vec::new(),
            files: file_tx,
            spare: spare_rx,
            flush: flush_tx,
            space: Space::new(dest, reserve),
        };
        let written = u.entries(ChunkReader {
            rx: tar_rx,
            chunk: Arc::default(),
            pos: 0,
        });
        // Hang up first: a thread still sending then stops.
        drop(u);
        joined(inflater);
        joined(flusher);
        let hashed = joined(files);
        let diff_id = joined(diff);
        written?;
        Ok(Unpacked { diff_id, hashed })
    })
}

/// A thread's result; its panic goes on in the caller.
fn joined<T>(t: std::thread::ScopedJoinHandle<'_, T>) -> T {
    t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Decompress `reader` into chunks for the tar reader and the diff-id's
/// hasher; a read error goes to the tar reader, which reports it.
fn inflate(reader: impl Read, tar: &SyncSender<io::Result<Chunk>>, sum: &SyncSender<Chunk>) {
    let mut stream = match decompress(reader) {
        Ok(s) => s,
        Err(e) => {
            let _ = tar.send(Err(e));
            return;
        }
    };
    loop {
        let mut buf = vec![0u8; CHUNK];
        let mut len = 0;
        while len < CHUNK {
            match stream.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tar.send(Err(e));
                    return;
                }
            }
        }
        if len == 0 {
            return;
        }
        buf.truncate(len);
        let chunk = Arc::new(buf);
        // Either receiver gone means the unpack is over (failed).
        if sum.send(Arc::clone(&chunk)).is_err() || tar.send(Ok(chunk)).is_err() {
            return;
        }
    }
}

/// The tar stream as the decompressing thread sends it.
struct ChunkReader {
    rx: Receiver<io::Result<Chunk>>,
    chunk: Chunk,
    pos: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.pos = 0;
                }
                // The sender is done: the end of the stream.
                Err(mpsc::RecvError) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// What the writing thread tells the files' hasher.
enum FileMsg {
    /// The next `len` bytes of the current file, in a buffer to hand back.
    Data(Vec<u8>, usize),
    /// The current file is complete; it is inode `ino`.
    End(u64),
}

fn hash_files(rx: Receiver<FileMsg>, spare: &mpsc::Sender<Vec<u8>>) -> Hashed {
    let mut hashed = Hashed::default();
    let mut content = FileHash::default();
    let mut size = 0u64;
    for msg in rx {
        match msg {
            FileMsg::Data(buf, len) => {
                content.update(&buf[..len]);
                size += len as u64;
                let _ = spare.send(buf);
            }
            FileMsg::End(ino) => {
                hashed.insert(ino, size, std::mem::take(&mut content).finish());
                size = 0;
            }
        }
    }
    hashed
}

/// Start the writeback of each range sent, then close its file (dropping
/// the last `Arc`). Only a head start: a failure here is ignored, as the
/// caller's `syncfs` writes whatever is left and reports write errors.
fn start_writebacks(rx: Receiver<Writeback>) {
    for w in rx {
        let _ = start_writeback(w.file.as_raw_fd(), w.offset, w.len);
    }
}

struct Unpacker<'a> {
    root: OwnedFd,
    layer: &'a str,
    /// The directory of the previous entry: (its components, its fd).
    cache: Option<(Vec<Vec<u8>>, OwnedFd)>,
    /// Directories whose mtime is set at the end, once nothing more is
    /// created in them (the root's path is empty).
    dirs: Vec<(Vec<Vec<u8>>, Time)>,
    /// To the files' hasher, and the buffers it hands back.
    files: SyncSender<FileMsg>,
    spare: Receiver<Vec<u8>>,
    /// To the thread that starts files' writeback.
    flush: SyncSender<Writeback>,
    space: Space<'a>,
}

/// Watches the free space of the filesystem an unpack writes to (also
/// `containr cp`'s, which unpacks a tar too).
pub struct Space<'a> {
    dest: &'a Path,
    reserve: u64,
    /// Bytes written between two looks at the free space: at most half
    /// the reserve, so that however fast a layer expands the disk never
    /// fills between two looks; at most 64 MiB, so that a statvfs is rare
    /// next to the writes.
    every: u64,
    unchecked: u64,
}

/// What an entry costs besides its data (an inode, a directory entry).
pub const ENTRY_COST: u64 = 4096;

impl<'a> Space<'a> {
    pub fn new(dest: &'a Path, reserve: u64) -> Space<'a> {
        Space {
            dest,
            reserve,
            every: (reserve / 2).clamp(ENTRY_COST, 64 << 20),
            unchecked: 0,
        }
    }

    /// `n` more bytes are about to be written; `Err((free, reserve))` when
    /// the reserve is reached.
    pub fn spend(&mut self, n: u64) -> Result<(), (u64, u64)> {
        if self.reserve == 0 {
            return Ok(());
        }
        self.unchecked += n;
        if self.unchecked < self.every {
            return Ok(());
        }
        self.unchecked = 0;
        match crate::cas::free_space(self.dest) {
            Ok(free) if free < self.reserve => Err((free, self.reserve)),
            _ => Ok(()),
        }
    }
}

/// The components of an entry's name, relative to the layer's root even
/// when it starts with `/`; refuses what could leave the tree.
fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("'..' in the path"),
            c if c.contains(&0) => return Err("NUL byte in the path"),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn cstr(b: &[u8]) -> CString {
    CString::new(b).expect("components() refuses NUL bytes")
}

impl Unpacker<'_> {
    /// Every entry of the archive, then the directories' times; the stream
    /// is read to its end, as the diff-id covers the padding after the
    /// last entry too.
    fn entries(&mut self, stream: ChunkReader) -> Result<(), Error> {
        let read_err = |source| Error::Read {
            layer: self.layer.to_string(),
            source,
        };
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            self.entry(&mut entry)?;
        }
        self.finish_dirs();
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(read_err)?;
        Ok(())
    }

    fn refuse(&self, entry: &str, reason: &'static str) -> Error {
        Error::Unsafe {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            reason,
        }
    }

    fn fail(&self, entry: &str, what: &'static str) -> impl FnOnce(io::Error) -> Error {
        let layer = self.layer.to_string();
        let entry = entry.to_string();
        move |source| Error::Entry {
            layer,
            entry,
            what,
            source,
        }
    }

    fn spend(&mut self, n: u64) -> Result<(), Error> {
        self.space
            .spend(n)
            .map_err(|(free, reserve)| Error::DiskFull {
                layer: self.layer.to_string(),
                free,
                reserve,
            })
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), Error> {
        self.spend(ENTRY_COST)?;
        let raw = e.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let comps = components(&raw).map_err(|r| self.refuse(&shown, r))?;
        let kind = e.header().entry_type();
        let hdr = e.header().clone();
        let pax = pax_of(e).map_err(self.fail(&shown, "reading its PAX records"))?;
        let meta = meta_of(&hdr, &pax).map_err(|reason| Error::Header {
            layer: self.layer.to_string(),
            entry: shown.clone(),
            reason,
        })?;
        let xattrs = pax.xattrs;
        let Some((name, parents)) = comps.split_last() else {
            // `./`: the layer's root itself.
            if kind.is_dir() {
                let fd = self.root.as_raw_fd();
                fchown(fd, meta.uid, meta.gid)
                    .and_then(|()| fchmod(fd, meta.mode))
                    .map_err(self.fail(&shown, "setting the root's owner and mode"))?;
                self.dirs.push((Vec::new(), meta.mtime));
            }
            return Ok(());
        };
        let name = name.clone();
        if let Some(target) = name.strip_prefix(b".wh.") {
            return self.whiteout(parents, target, &shown);
        }
        let parent = self.parent(parents, &shown)?;
        let cname = cstr(&name);
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                if let Err(err) = mkdirat(parent, &cname, 0o700) {
                    let existing = fstatat_mode(parent, &cname)
                        .map_err(self.fail(&shown, "creating the directory"))?;
                    if existing & libc::S_IFMT != libc::S_IFDIR {
                        self.remove_existing(parent, &name, &shown)?;
                        mkdirat(parent, &cname, 0o700)
                            .map_err(self.fail(&shown, "creating the directory"))?;
                    } else if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(self.fail(&shown, "creating the directory")(err));
                    }
                }
                self.set_meta(parent, &cname, &meta, &xattrs, true, &shown)?;
                let mut path = parents.to_vec();
                path.push(name);
                self.dirs.push((path, meta.mtime));
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let file = self.create_file(parent, &name, meta.mode & 0o777, &shown)?;
                let fd = file.as_raw_fd();
                let file = Arc::new(std::fs::File::from(file));
                let (mut written, mut flushed) = (0u64, 0u64);
                loop {
                    // For the snapshot's sum, hashed on another thread
                    // now, while in cache, not read back later.
                    let mut buf = self
                        .spare
                        .try_recv()
                        .unwrap_or_else(|_| vec![0u8; FILE_BUF]);
                    let n = e.read(&mut buf).map_err(|source| Error::Read {
                        layer: self.layer.to_string(),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    self.spend(n as u64)?;
                    (&*file)
                        .write_all(&buf[..n])
                        .map_err(self.fail(&shown, "writing"))?;
                    self.hashed(FileMsg::Data(buf, n));
                    written += n as u64;
                    if written - flushed >= WRITEBACK_EVERY {
                        self.write_back(Arc::clone(&file), flushed, written - flushed);
                        flushed = written;
                    }
                }
                let st = file.metadata().map_err(self.fail(&shown, "writing"))?;
                self.hashed(FileMsg::End(st.ino()));
                // Created by root with the mode less its special bits: most
                // files need neither call. chown first, as it clears setuid.
                if (st.uid(), st.gid()) != (meta.uid, meta.gid) {
                    fchown(fd, meta.uid, meta.gid)
                        .map_err(self.fail(&shown, "setting the owner"))?;
                }
                if st.mode() & 0o7777 != meta.mode {
                    fchmod(fd, meta.mode).map_err(self.fail(&shown, "setting the mode"))?;
                }
                for (k, v) in &xattrs {
                    fsetxattr(fd, k, v).map_err(self.fail(&shown, "setting an xattr"))?;
                }
                futimens(fd, meta.mtime.timespec()).map_err(self.fail(&shown, "setting mtime"))?;
                if written > flushed {
                    self.write_back(file, flushed, 0);
                }
            }
            T::Symlink => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| self.refuse(&shown, "symlink without a target"))?;
                if target.contains(&0) {
                    return Err(self.refuse(&shown, "NUL byte in the symlink target"));
                }
                let target = cstr(&target);
                self.create_with(parent, &name, &shown, "creating the symlink", |p, n| {
                    symlinkat(&target, p, n)
                })?;
                self.set_meta(parent, &cname, &meta, &xattrs, false, &shown)?;
            }
            T::Link => {
                let target = e
                    .link_name_bytes()
                    .ok_or_else(|| self.refuse(&shown, "hard link without a target"))?
                    .into_owned();
                let tcomps = components(&target)
                    .map_err(|_| self.refuse(&shown, "hard link to a target outside the layer"))?;
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(self.refuse(&shown, "hard link to the layer's root"));
                };
                if tcomps == comps {
                    return Ok(());
                }
                let tparent = self.resolve(tparents).map_err(|e| match e {
                    Resolve::Escapes => {
                        self.refuse(&shown, "hard link to a target outside the layer")
                    }
                    Resolve::Io(err) => self.fail(&shown, "finding the hard link's target")(err),
                })?;
                let tname = cstr(tname);
                // The parent may have been dropped from the cache by
                // `resolve`; open it again.
                let parent = self.parent(parents, &shown)?;
                self.create_with(parent, &name, &shown, "creating the hard link", |p, n| {
                    linkat(tparent.as_raw_fd(), &tname, p, n)
                })?;
                // As docker does, the link's header applies to the inode it
                // shares; never chmod through a link to a symlink, which
                // fchmodat would follow.
                let is_symlink = fstatat_mode(parent, &cname)
                    .map_err(self.fail(&shown, "creating the hard link"))?
                    & libc::S_IFMT
                    == libc::S_IFLNK;
                self.set_meta(parent, &cname, &meta, &xattrs, !is_symlink, &shown)?;
            }
            T::Char | T::Block | T::Fifo => {
                let dev = match (hdr.device_major(), hdr.device_minor()) {
                    (Ok(Some(ma)), Ok(Some(mi))) => libc::makedev(ma, mi),
                    _ => 0,
                };
                let fmt = match kind {
                    T::Char => libc::S_IFCHR,
                    T::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                self.create_with(parent, &name, &shown, "creating the device node", |p, n| {
                    mknodat(p, n, fmt | 0o600, dev)
                })?;
                self.set_meta(parent, &cname, &meta, &xattrs, true, &shown)?;
            }
            // Global PAX headers and types with nothing to create.
            _ => {}
        }
        Ok(())
    }

    fn whiteout(&mut self, parents: &[Vec<u8>], target: &[u8], shown: &str) -> Result<(), Error> {
        let parent = self.parent(parents, shown)?;
        if target == b".wh..opq" {
            return fsetxattr(parent, OPAQUE_XATTR, b"y")
                .map_err(self.fail(shown, "marking the directory opaque"));
        }
        if target.starts_with(b".wh.") {
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(self.refuse(shown, "whiteout of nothing"));
        }
        self.create_with(parent, target, shown, "creating the whiteout", |p, n| {
            mknodat(p, n, libc::S_IFCHR, 0)
        })
    }

    /// Run `create` (an `*at` call that fails with EEXIST if the name is
    /// taken); if the name is taken, remove what is there and try again,
    /// as tar does.
    fn create_with(
        &mut self,
        parent: RawFd,
        name: &[u8],
        shown: &str,
        what: &'static str,
        create: impl Fn(RawFd, &CString) -> io::Result<()>,
    ) -> Result<(), Error> {
        let cname = cstr(name);
        match create(parent, &cname) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.remove_existing(parent, name, shown)?;
                create(parent, &cname).map_err(self.fail(shown, what))
            }
            other => other.map_err(self.fail(shown, what)),
        }
    }

    /// Hand a message to the files' hasher, which only stops once this
    /// thread hangs up.
    fn hashed(&self, msg: FileMsg) {
        self.files
            .send(msg)
            .expect("the hasher outlives the writer");
    }

    /// Hand a range of a file just written to the flushing thread, which
    /// only stops once this thread hangs up.
    fn write_back(&self, file: Arc<std::fs::File>, offset: u64, len: u64) {
        self.flush
            .send(Writeback { file, offset, len })
            .expect("the flusher outlives the writer");
    }

    fn create_file(
        &mut self,
        parent: RawFd,
        name: &[u8],
        mode: u32,
        shown: &str,
    ) -> Result<OwnedFd, Error> {
        let cname = cstr(name);
        let open = || {
            openat(
                parent,
                &cname,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                mode,
            )
        };
        match open() {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.remove_existing(parent, name, shown)?;
                open().map_err(self.fail(shown, "creating the file"))
            }
            other => other.map_err(self.fail(shown, "creating the file")),
        }
    }

    /// Remove whatever is at `parent/name`, a whole tree if a directory.
    fn remove_existing(&mut self, parent: RawFd, name: &[u8], shown: &str) -> Result<(), Error> {
        // What is removed may be a component of the cached directory.
        self.cache = None;
        let cname = cstr(name);
        let mode = fstatat_mode(parent, &cname).map_err(self.fail(shown, "replacing"))?;
        if mode & libc::S_IFMT == libc::S_IFDIR {
            // Through the descriptor's magic link: `parent` was resolved
            // safely, and remove_dir_all never follows symlinks below it.
            let path = Path::new(&format!("/proc/self/fd/{parent}"))
                .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name));
            std::fs::remove_dir_all(path).map_err(self.fail(shown, "replacing a directory"))
        } else {
            unlinkat(parent, &cname).map_err(self.fail(shown, "replacing"))
        }
    }

    fn set_meta(
        &self,
        parent: RawFd,
        name: &CString,
        meta: &Meta,
        xattrs: &[(CString, Vec<u8>)],
        chmod: bool,
        shown: &str,
    ) -> Result<(), Error> {
        fchownat(parent, name, meta.uid, meta.gid)
            .map_err(self.fail(shown, "setting the owner"))?;
        if chmod {
            fchmodat(parent, name, meta.mode).map_err(self.fail(shown, "setting the mode"))?;
        }
        if !xattrs.is_empty() {
            let path = proc_path(parent, name);
            for (k, v) in xattrs {
                lsetxattr(&path, k, v).map_err(self.fail(shown, "setting an xattr"))?;
            }
        }
        utimensat(parent, name, meta.mtime.timespec()).map_err(self.fail(shown, "setting mtime"))
    }

    /// The directory that holds an entry, created (like `mkdir -p`) if the
    /// archive did not list it.
    fn parent(&mut self, parents: &[Vec<u8>], shown: &str) -> Result<RawFd, Error> {
        if parents.is_empty() {
            return Ok(self.root.as_raw_fd());
        }
        if let Some((key, fd)) = &self.cache
            && key.as_slice() == parents
        {
            return Ok(fd.as_raw_fd());
        }
        let fd = match self.resolve(parents) {
            Ok(fd) => fd,
            Err(Resolve::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.mkdir_p(parents, shown)?
            }
            Err(Resolve::Escapes) => {
                return Err(self.refuse(shown, "its path goes through a symlink out of the layer"));
            }
            Err(Resolve::Io(e)) => return Err(self.fail(shown, "opening its directory")(e)),
        };
        let raw = fd.as_raw_fd();
        self.cache = Some((parents.to_vec(), fd));
        Ok(raw)
    }

    fn mkdir_p(&mut self, parents: &[Vec<u8>], shown: &str) -> Result<OwnedFd, Error> {
        let mut dir: Option<OwnedFd> = None;
        for i in 1..=parents.len() {
            let fd = match self.resolve(&parents[..i]) {
                Ok(fd) => fd,
                Err(Resolve::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => {
                    let at = dir
                        .as_ref()
                        .map_or(self.root.as_raw_fd(), |d| d.as_raw_fd());
                    match mkdirat(at, &cstr(&parents[i - 1]), 0o755) {
                        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                            return Err(self.fail(shown, "creating its directory")(e));
                        }
                        _ => {}
                    }
                    self.resolve(&parents[..i]).map_err(|e| match e {
                        Resolve::Escapes => {
                            self.refuse(shown, "its path goes through a symlink out of the layer")
                        }
                        Resolve::Io(e) => self.fail(shown, "creating its directory")(e),
                    })?
                }
                Err(Resolve::Escapes) => {
                    return Err(
                        self.refuse(shown, "its path goes through a symlink out of the layer")
                    );
                }
                Err(Resolve::Io(e)) => return Err(self.fail(shown, "opening its directory")(e)),
            };
            dir = Some(fd);
        }
        Ok(dir.expect("parents is not empty"))
    }

    /// Open the directory `comps` beneath the root; the kernel refuses any
    /// resolution that leaves it.
    fn resolve(&self, comps: &[Vec<u8>]) -> Result<OwnedFd, Resolve> {
        if comps.is_empty() {
            return dup(self.root.as_raw_fd()).map_err(Resolve::Io);
        }
        let path = cstr(&comps.join(&b'/'));
        match openat2_beneath(self.root.as_raw_fd(), &path) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::ELOOP)) => {
                Err(Resolve::Escapes)
            }
            other => other.map_err(Resolve::Io),
        }
    }

    /// Directory mtimes, last: creating entries in a directory changes it.
    fn finish_dirs(&mut self) {
        let dirs = std::mem::take(&mut self.dirs);
        for (path, mtime) in dirs.iter().rev() {
            let Some((name, parents)) = path.split_last() else {
                let _ = futimens(self.root.as_raw_fd(), mtime.timespec());
                continue;
            };
            if let Ok(p) = self.resolve(parents) {
                let _ = utimensat(p.as_raw_fd(), &cstr(name), mtime.timespec());
            }
        }
    }
}

enum Resolve {
    Escapes,
    Io(io::Error),
}

#[derive(Debug, PartialEq)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: Time,
}

/// A time as tar carries it: PAX times may be negative and have a
/// fraction.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Time {
    sec: i64,
    nsec: u32,
}

impl Time {
    fn timespec(self) -> libc::timespec {
        libc::timespec {
            tv_sec: self.sec as libc::time_t,
            tv_nsec: self.nsec.into(),
        }
    }
}

/// The PAX records unpacking applies itself; the tar crate applies `path`,
/// `linkpath` and `size`.
#[derive(Debug, Default)]
struct Pax {
    uid: Option<Vec<u8>>,
    gid: Option<Vec<u8>>,
    mtime: Option<Vec<u8>>,
    /// `SCHILY.xattr.NAME` records: the xattrs docker and GNU tar write.
    xattrs: Vec<(CString, Vec<u8>)>,
}

fn pax_of<R: Read>(e: &mut tar::Entry<'_, R>) -> io::Result<Pax> {
    let mut pax = Pax::default();
    if let Some(exts) = e.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let value = ext.value_bytes().to_vec();
            match ext.key_bytes() {
                b"uid" => pax.uid = Some(value),
                b"gid" => pax.gid = Some(value),
                b"mtime" => pax.mtime = Some(value),
                key => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.")
                        && let Ok(name) = CString::new(name)
                    {
                        pax.xattrs.push((name, value));
                    }
                }
            }
        }
    }
    Ok(pax)
}

/// An entry's mode, owner and mtime: the ustar fields, each overridden by
/// its PAX record, the only place for ids above 2097151 (images built in a
/// user namespace) and for sub-second or far-off times. Owners stay
/// numeric, as docker's do: `uname`/`gname` name users of the machine that
/// built the layer, not of this one.
fn meta_of(hdr: &tar::Header, pax: &Pax) -> Result<Meta, String> {
    let id = |record: &Option<Vec<u8>>, ustar: io::Result<u64>, what: &str| match record {
        Some(v) => pax_number(v)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("PAX {what} {:?} is not a 32-bit id", lossy(v))),
        // A silent truncation could turn a large id into root's.
        None => {
            let n = ustar.map_err(|e| e.to_string())?;
            u32::try_from(n).map_err(|_| format!("{what} {n} is not a 32-bit id"))
        }
    };
    let mtime = match &pax.mtime {
        Some(v) => pax_time(v).ok_or_else(|| format!("PAX mtime {:?} is not a time", lossy(v)))?,
        None => {
            let sec = hdr.mtime().map_err(|e| e.to_string())?;
            Time {
                sec: i64::try_from(sec).map_err(|_| format!("mtime {sec} is out of range"))?,
                nsec: 0,
            }
        }
    };
    Ok(Meta {
        mode: hdr.mode().map_err(|e| e.to_string())? & 0o7777,
        uid: id(&pax.uid, hdr.uid(), "uid")?,
        gid: id(&pax.gid, hdr.gid(), "gid")?,
        mtime,
    })
}

fn lossy(v: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(v)
}

/// A PAX decimal: digits only.
fn pax_number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// A PAX time, `[-]SECONDS[.FRACTION]`; digits of the fraction past
/// nanoseconds are dropped.
fn pax_time(v: &[u8]) -> Option<Time> {
    let (negative, v) = match v.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let (int, frac) = match v.iter().position(|b| *b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &v[v.len()..]),
    };
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sec = i64::try_from(pax_number(int)?).ok()?;
    let mut nsec = 0u32;
    for i in 0..9 {
        nsec = nsec * 10 + frac.get(i).map_or(0, |d| u32::from(d - b'0'));
    }
    Some(match (negative, nsec) {
        (false, _) => Time { sec, nsec },
        (true, 0) => Time { sec: -sec, nsec: 0 },
        // -1.25 s is -2 s plus 0.75 s.
        (true, _) => Time {
            sec: -sec - 1,
            nsec: 1_000_000_000 - nsec,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_tree_are_refused() {
        assert_eq!(
            components(b"./a//b/./c").unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert!(components(b"./").unwrap().is_empty());
        // A leading `/` names the layer's root, as in containerd.
        assert_eq!(
            components(b"/etc/passwd").unwrap(),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
        assert!(components(b"/").unwrap().is_empty());
        assert!(components(b"//./").unwrap().is_empty());
        assert_eq!(components(b"/../x"), Err("'..' in the path"));
        assert_eq!(components(b"/a/../../x"), Err("'..' in the path"));
        assert_eq!(components(b"a/../../b"), Err("'..' in the path"));
        assert_eq!(components(b".."), Err("'..' in the path"));
        // `..` inside a name is just a name.
        assert_eq!(components(b"a..b").unwrap(), vec![b"a..b".to_vec()]);
    }

    fn ustar(uid: u64, gid: u64, mtime: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o104755);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mtime(mtime);
        h
    }

    fn pax(uid: &str, gid: &str, mtime: &str) -> Pax {
        let some = |v: &str| (!v.is_empty()).then(|| v.as_bytes().to_vec());
        Pax {
            uid: some(uid),
            gid: some(gid),
            mtime: some(mtime),
            xattrs: Vec::new(),
        }
    }

    #[test]
    fn pax_records_win_over_the_ustar_fields() {
        let t = |sec, nsec| Time { sec, nsec };
        let h = ustar(1000, 2000, 1_600_000_000);
        assert_eq!(
            meta_of(&h, &Pax::default()).unwrap(),
            Meta {
                mode: 0o4755,
                uid: 1000,
                gid: 2000,
                mtime: t(1_600_000_000, 0)
            }
        );
        // Ids past ustar's 7 octal digits, as a user namespace's.
        let m = meta_of(&h, &pax("3000000", "4294967295", "1700000000.123456789")).unwrap();
        assert_eq!((m.uid, m.gid), (3_000_000, u32::MAX));
        assert_eq!(m.mtime, t(1_700_000_000, 123_456_789));
        // One record alone overrides only its own field.
        let m = meta_of(&h, &pax("", "5", "")).unwrap();
        assert_eq!((m.uid, m.gid, m.mtime), (1000, 5, t(1_600_000_000, 0)));
        for (v, want) in [
            ("1", t(1, 0)),
            ("1.5", t(1, 500_000_000)),
            ("1.0000000019", t(1, 1)),
            ("-1", t(-1, 0)),
            ("-1.25", t(-2, 750_000_000)),
            ("99999999999", t(99_999_999_999, 0)),
        ] {
            assert_eq!(pax_time(v.as_bytes()), Some(want), "{v}");
        }
        for bad in ["", ".5", "1.2.3", "1e9", " 1", "-", "0x10"] {
            assert_eq!(pax_time(bad.as_bytes()), None, "{bad:?}");
        }
        // Too large or malformed ids are refused, never truncated.
        for (uid, gid) in [("4294967296", ""), ("-1", ""), ("", "12a"), ("", "")] {
            let r = meta_of(&h, &pax(uid, gid, ""));
            assert_eq!(
                r.is_err(),
                !(uid.is_empty() && gid.is_empty()),
                "{uid} {gid}"
            );
        }
        let mut big = ustar(0, 0, 0);
        big.set_uid(1 << 32);
        assert!(
            meta_of(&big, &Pax::default())
                .unwrap_err()
                .contains("32-bit")
        );
    }
}

/// Unpacking real archives; needs root (owners, device nodes, trusted.*
/// xattrs), as the whole test suite does.
#[cfg(test)]
mod archive_tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    use super::*;

    /// One tar entry, with its name written raw so that bad names can be
    /// built (tar::Builder's own path setters refuse them).
    enum E<'a> {
        Dir(&'a str, u32),
        File(&'a str, &'a [u8], u32),
        Link(&'a str, &'a str),
        Sym(&'a str, &'a str),
        Fifo(&'a str),
        Char(&'a str, u32, u32),
    }

    fn tar(entries: &[E<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            let (name, data): (&str, &[u8]) = match e {
                E::Dir(n, m) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*m);
                    (n, b"")
                }
                E::File(n, d, m) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*m);
                    (n, d)
                }
                E::Link(n, t) | E::Sym(n, t) => {
                    h.set_entry_type(if matches!(e, E::Link(..)) {
                        tar::EntryType::Link
                    } else {
                        tar::EntryType::Symlink
                    });
                    // Tar gives a hard link its target's mode; the one
                    // target below is setuid.
                    h.set_mode(if matches!(e, E::Link(..)) {
                        0o4755
                    } else {
                        0o777
                    });
                    h.as_gnu_mut().unwrap().linkname[..t.len()].copy_from_slice(t.as_bytes());
                    (n, b"")
                }
                E::Fifo(n) => {
                    h.set_entry_type(tar::EntryType::Fifo);
                    h.set_mode(0o640);
                    (n, b"")
                }
                E::Char(n, ma, mi) => {
                    h.set_entry_type(tar::EntryType::Char);
                    h.set_mode(0o620);
                    h.set_device_major(*ma).unwrap();
                    h.set_device_minor(*mi).unwrap();
                    (n, b"")
                }
            };
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(data.len() as u64);
            h.set_uid(1000);
            h.set_gid(2000);
            h.set_mtime(1_600_000_000);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn unpack_err(entries: &[E<'_>]) -> (tempfile::TempDir, String) {
        let outer = tempfile::tempdir().unwrap();
        let dest = outer.path().join("layer");
        std::fs::create_dir(&dest).unwrap();
        let err = unpack(&tar(entries)[..], &dest, "L1", 0)
            .expect_err("must be refused")
            .to_string();
        (outer, err)
    }

    #[test]
    fn preserves_metadata_and_file_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tar(&[
            E::Dir("./", 0o755),
            E::Dir("etc/", 0o750),
            E::File("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o4755),
            E::Link("etc/passwd2", "etc/passwd"),
            E::Sym("etc/link", "passwd"),
            E::Sym("abs", "/etc/passwd"),
            E::Fifo("fifo"),
            E::Char("null", 1, 3),
            E::File("deep/er/file", b"x", 0o600),
        ]);
        let diff_id = unpack(&bytes[..], dir.path(), "L", 0).unwrap().diff_id;
        assert_eq!(diff_id, Digest::of(&bytes));
        let p = |s: &str| dir.path().join(s);
        let m = std::fs::metadata(p("etc/passwd")).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
        assert_eq!((m.uid(), m.gid(), m.mtime()), (1000, 2000, 1_600_000_000));
        assert_eq!(m.nlink(), 2);
        assert_eq!(std::fs::metadata(p("etc/passwd2")).unwrap().ino(), m.ino());
        let d = std::fs::metadata(p("etc")).unwrap();
        assert_eq!(d.permissions().mode() & 0o7777, 0o750);
        assert_eq!(d.mtime(), 1_600_000_000, "dir mtime is set after its files");
        assert_eq!(
            std::fs::read_link(p("etc/link")).unwrap(),
            Path::new("passwd")
        );
        assert_eq!(
            std::fs::read_link(p("abs")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(
            std::fs::symlink_metadata(p("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        let n = std::fs::symlink_metadata(p("null")).unwrap();
        assert!(n.file_type().is_char_device());
        assert_eq!(n.rdev(), libc::makedev(1, 3));
        assert_eq!(std::fs::read(p("deep/er/file")).unwrap(), b"x");
        // Gzip and zstd streams unpack to the same diff-id.
        for compressed in [
            {
                let mut g = flate2::write::GzEncoder::new(Vec::new(), Default::default());
                g.write_all(&bytes).unwrap();
                g.finish().unwrap()
            },
            zstd::encode_all(&bytes[..], 3).unwrap(),
        ] {
            let d2 = tempfile::tempdir().unwrap();
            assert_eq!(
                unpack(&compressed[..], d2.path(), "L", 0).unwrap().diff_id,
                diff_id
            );
            assert_eq!(std::fs::read(d2.path().join("deep/er/file")).unwrap(), b"x");
        }
    }

    #[test]
    fn a_leading_slash_names_the_layers_root() {
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("layer");
        std::fs::create_dir(&dir).unwrap();
        // What `umoci insert IMAGE DIR /` writes: the root as `/`, then
        // names under it with a leading `/`; `./` names mixed in.
        let bytes = tar(&[
            E::Dir("/", 0o711),
            E::Dir("/etc/", 0o750),
            E::File("/etc/x", b"x", 0o644),
            E::Link("/etc/x2", "/etc/x"),
            E::File("./y", b"y", 0o600),
        ]);
        unpack(&bytes[..], &dir, "L", 0).unwrap();
        let root = std::fs::metadata(&dir).unwrap();
        assert_eq!(root.permissions().mode() & 0o7777, 0o711);
        assert_eq!(
            (root.uid(), root.gid(), root.mtime()),
            (1000, 2000, 1_600_000_000)
        );
        assert_eq!(std::fs::read(dir.join("etc/x")).unwrap(), b"x");
        assert_eq!(
            std::fs::metadata(dir.join("etc/x2")).unwrap().ino(),
            std::fs::metadata(dir.join("etc/x")).unwrap().ino()
        );
        assert_eq!(std::fs::read(dir.join("y")).unwrap(), b"y");
        let beside: Vec<_> = std::fs::read_dir(outer.path()).unwrap().flatten().collect();
        assert_eq!(beside.len(), 1, "{beside:?}");
        // A hard link to `/etc/passwd` names the layer's own, not the
        // host's: absent here, so the layer is refused.
        let (_outer, err) = unpack_err(&[E::Link("hard", "/etc/passwd")]);
        assert!(err.contains("hard link"), "{err}");
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tar(&[
            E::Dir("opq/", 0o755),
            E::File("opq/.wh..wh..opq", b"", 0o644),
            E::File("opq/new", b"n", 0o644),
            E::File("gone/.wh.old", b"", 0o644),
            E::File(".wh..wh.plnk", b"", 0o644),
        ]);
        unpack(&bytes[..], dir.path(), "L", 0).unwrap();
        let wh = std::fs::symlink_metadata(dir.path().join("gone/old")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        let mut v = [0u8; 4];
        let path = CString::new(dir.path().join("opq").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: NUL-terminated strings and a buffer of the length passed.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                OPAQUE_XATTR.as_ptr(),
                v.as_mut_ptr().cast(),
                4,
            )
        };
        assert_eq!(&v[..n as usize], b"y");
        assert!(!dir.path().join("opq/.wh..wh..opq").exists());
        assert!(!dir.path().join(".wh..wh.plnk").exists());
    }

    #[test]
    fn later_entries_replace_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tar(&[
            E::File("a", b"first", 0o644),
            E::File("a", b"second", 0o644),
            E::Dir("d/", 0o755),
            E::File("d/x", b"", 0o644),
            E::File("d", b"now a file", 0o644),
        ]);
        unpack(&bytes[..], dir.path(), "L", 0).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"second");
        assert_eq!(std::fs::read(dir.path().join("d")).unwrap(), b"now a file");
    }

    #[test]
    fn a_hard_links_metadata_never_goes_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::set_permissions(outside.path(), PermissionsExt::from_mode(0o600)).unwrap();
        let target = outside.path().to_str().unwrap();
        let bytes = tar(&[E::Sym("s", target), E::Link("h", "s")]);
        unpack(&bytes[..], dir.path(), "L", 0).unwrap();
        let m = std::fs::metadata(outside.path()).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o600);
        assert_eq!((m.uid(), m.mtime() == 1_600_000_000), (0, false));
        let h = std::fs::symlink_metadata(dir.path().join("h")).unwrap();
        assert!(h.file_type().is_symlink());
        assert_eq!((h.uid(), h.gid()), (1000, 2000));
    }

    #[test]
    fn symlinks_inside_the_tree_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tar(&[
            E::Dir("real/", 0o755),
            E::Sym("alias", "real"),
            E::File("alias/f", b"ok", 0o644),
        ]);
        unpack(&bytes[..], dir.path(), "L", 0).unwrap();
        assert_eq!(std::fs::read(dir.path().join("real/f")).unwrap(), b"ok");
    }

    #[test]
    fn every_way_out_is_refused() {
        let cases: Vec<(Vec<E<'_>>, &str)> = vec![
            (vec![E::File("../escape", b"x", 0o644)], "'..'"),
            (vec![E::File("a/../../escape", b"x", 0o644)], "'..'"),
            (vec![E::File("/../escape", b"x", 0o644)], "'..'"),
            (
                vec![E::Sym("evil", "/"), E::File("evil/escape", b"x", 0o644)],
                "symlink out of the layer",
            ),
            (
                vec![E::Sym("evil", "../.."), E::File("evil/escape", b"x", 0o644)],
                "symlink out of the layer",
            ),
            (
                vec![
                    E::Dir("d/", 0o755),
                    E::Sym("d/up", "../.."),
                    E::File("d/up/escape", b"x", 0o644),
                ],
                "symlink out of the layer",
            ),
            (vec![E::Link("hard", "../outside")], "outside the layer"),
            (vec![E::Link("hard", "/../etc/passwd")], "outside the layer"),
            (
                vec![E::Sym("evil", "/etc"), E::Link("hard", "evil/passwd")],
                "outside the layer",
            ),
        ];
        for (i, (entries, needle)) in cases.iter().enumerate() {
            let (outer, err) = unpack_err(entries);
            let needle = *needle;
            eprintln!("case {i}: {err}");
            assert!(err.contains(needle), "{err:?} should say {needle:?}");
            assert!(err.starts_with("layer L1: refusing entry"), "{err}");
            // Nothing was written next to the layer's directory.
            let beside: Vec<_> = std::fs::read_dir(outer.path()).unwrap().flatten().collect();
            assert_eq!(beside.len(), 1, "{beside:?}");
            assert!(!Path::new("/escape").exists() && !Path::new("/outside").exists());
        }
    }
}
