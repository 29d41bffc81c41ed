//! The sum of a snapshot: one sha256 over a canonical walk of its tree,
//! recorded when the snapshot is made and recomputed by `containr verify`
//! to find a snapshot that no longer holds what its layer unpacked to.
//!
//! The walk is depth first, names in byte order, and never follows a
//! symlink. Each entry adds its path, file type, permission bits, owner and
//! xattrs (overlayfs's opaque marker among them), and by type: a regular
//! file's size and the hash of its content, a symlink's target, a device's
//! numbers (a whiteout is the char device 0/0). Every field is length- or
//! width-prefixed, so two different trees never encode alike.
//!
//! Left out: times (a directory the layer did not list gets the time of the
//! unpack, so two unpacks of one layer would differ), inode numbers and link
//! counts, and `security.selinux`, a label the host gives, not the layer.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::sys::{fstatat, lgetxattr, llistxattr, open_dir, openat, proc_path, readlinkat};
use crate::cas::{Digest, Sha256};

/// Names the encoding above; a recorded sum of another format is not
/// comparable (and not a sign of corruption). v2 hashes file content with
/// BLAKE3: the unpacker hashes every byte it writes, and sha256 (v1) made
/// that a second sha256 pass as long as the diff-id's, the largest CPU cost
/// of an unpack on a CPU without SHA instructions. v1 sums, recorded by
/// earlier versions, are still checked.
pub const FORMAT: &str = "containr-tree-v2";
const FORMAT_V1: &str = "containr-tree-v1";

/// How a format hashes a file's content.
#[derive(Clone, Copy)]
enum Content {
    Sha256,
    Blake3,
}

/// A file's content hash in the current format, fed as it is written.
#[derive(Default)]
pub struct FileHash(blake3::Hasher);

impl FileHash {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(&self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// An entry that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct Error {
    pub path: String,
    pub source: io::Error,
}

/// The [`FileHash`] of regular files' content, hashed by the unpacker as it wrote
/// them, by inode: summing a fresh snapshot then reads no file again. A
/// file is looked up by inode and size; every regular file of a snapshot
/// is created by the unpacker, so the last content recorded for an inode
/// is its content.
#[derive(Debug, Default)]
pub struct Hashed(HashMap<u64, (u64, [u8; 32])>);

impl Hashed {
    pub fn insert(&mut self, ino: u64, size: u64, sha256: [u8; 32]) {
        self.0.insert(ino, (size, sha256));
    }
}

/// The sum of the tree at `dir`; `hashed` may be empty, then every file is
/// read.
pub fn sum(dir: &Path, hashed: &Hashed) -> Result<Digest, Error> {
    sum_with(dir, hashed, Content::Blake3)
}

/// The sum of the tree at `dir` in `format`, as recorded with a sum;
/// `None` for a format this version does not know.
pub fn sum_in(format: &str, dir: &Path) -> Option<Result<Digest, Error>> {
    let content = match format {
        FORMAT => Content::Blake3,
        FORMAT_V1 => Content::Sha256,
        _ => return None,
    };
    Some(sum_with(dir, &Hashed::default(), content))
}

fn sum_with(dir: &Path, hashed: &Hashed, content: Content) -> Result<Digest, Error> {
    let err = |path: &[u8]| {
        let path = String::from_utf8_lossy(path).into_owned();
        move |source| Error { path, source }
    };
    let root = open_dir(dir).map_err(err(b"."))?;
    let mut w = Walk {
        out: Sha256::new(),
        hashed,
        content,
        path: b".".to_vec(),
        buf: vec![0u8; 256 * 1024],
    };
    let dot = c".".to_owned();
    w.entry(root.as_raw_fd(), &dot).map_err(err(&w.path))?;
    w.dir(&root).map_err(err(&w.path))?;
    Ok(Digest::from_hasher(w.out))
}

struct Walk<'a> {
    out: Sha256,
    hashed: &'a Hashed,
    content: Content,
    /// The current entry's path, `./` and its names.
    path: Vec<u8>,
    buf: Vec<u8>,
}

impl Walk<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.num(b.len() as u64);
        self.out.update(b);
    }

    fn num(&mut self, n: u64) {
        self.out.update(n.to_le_bytes());
    }

    /// The entries of the directory `dir`, below it first.
    fn dir(&mut self, dir: &OwnedFd) -> io::Result<()> {
        let mut names = list(dir.as_raw_fd())?;
        names.sort();
        for name in names {
            let len = self.path.len();
            self.path.push(b'/');
            self.path.extend_from_slice(name.as_bytes());
            if self.entry(dir.as_raw_fd(), &name)? == libc::S_IFDIR {
                let sub = openat(
                    dir.as_raw_fd(),
                    &name,
                    libc::O_RDONLY | libc::O_DIRECTORY,
                    0,
                )?;
                self.dir(&sub)?;
            }
            self.path.truncate(len);
        }
        Ok(())
    }

    /// Add the entry `name` of `dir`; its file type.
    fn entry(&mut self, dir: RawFd, name: &CString) -> io::Result<u32> {
        let st = fstatat(dir, name)?;
        let kind = st.st_mode & libc::S_IFMT;
        let path = std::mem::take(&mut self.path);
        self.bytes(&path);
        self.path = path;
        self.num(kind.into());
        self.num((st.st_mode & 0o7777).into());
        self.num(st.st_uid.into());
        self.num(st.st_gid.into());
        match kind {
            libc::S_IFREG => {
                let size = st.st_size as u64;
                let sha = match self.hashed.0.get(&st.st_ino) {
                    Some((s, sha)) if *s == size => *sha,
                    _ => self.content(dir, name)?,
                };
                self.num(size);
                self.out.update(sha);
            }
            libc::S_IFLNK => {
                let target = readlinkat(dir, name)?;
                self.bytes(&target);
            }
            libc::S_IFCHR | libc::S_IFBLK => {
                self.num(libc::major(st.st_rdev).into());
                self.num(libc::minor(st.st_rdev).into());
            }
            _ => {}
        }
        let at = proc_path(dir, name);
        let mut xattrs = llistxattr(&at)?;
        xattrs.retain(|n| n != b"security.selinux");
        xattrs.sort();
        self.num(xattrs.len() as u64);
        for x in xattrs {
            let value = lgetxattr(&at, &CString::new(x.clone()).expect("no NUL in a name"))?;
            self.bytes(&x);
            self.bytes(&value);
        }
        Ok(kind)
    }

    fn content(&mut self, dir: RawFd, name: &CString) -> io::Result<[u8; 32]> {
        // O_NOATIME: verifying changes nothing, not even access times; but
        // only the owner (or root) may ask for it.
        let file = match openat(dir, name, libc::O_RDONLY | libc::O_NOATIME, 0) {
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => openat(dir, name, libc::O_RDONLY, 0),
            other => other,
        }?;
        let mut file = std::fs::File::from(file);
        let (mut sha, mut blake) = (Sha256::new(), FileHash::default());
        loop {
            let n = io::Read::read(&mut file, &mut self.buf)?;
            if n == 0 {
                return Ok(match self.content {
                    Content::Sha256 => sha.finalize(),
                    Content::Blake3 => blake.finish(),
                });
            }
            match self.content {
                Content::Sha256 => sha.update(&self.buf[..n]),
                Content::Blake3 => blake.update(&self.buf[..n]),
            }
        }
    }
}

/// The names in the directory `dir`, without `.` and `..`.
fn list(dir: RawFd) -> io::Result<Vec<CString>> {
    // Its own descriptor: reading a directory moves the offset.
    let mut d = nix::dir::Dir::openat(
        Some(dir),
        ".",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let mut names = Vec::new();
    for e in d.iter() {
        let name = e?.file_name().to_owned();
        if name.as_bytes() != b"." && name.as_bytes() != b".." {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("a")).unwrap();
        std::fs::write(d.path().join("a/f"), b"content").unwrap();
        std::fs::write(d.path().join("a.b"), b"").unwrap();
        symlink("a/f", d.path().join("l")).unwrap();
        d
    }

    #[test]
    fn any_change_to_the_tree_changes_its_sum() {
        let d = tree();
        let base = sum(d.path(), &Hashed::default()).unwrap();
        assert_eq!(sum(d.path(), &Hashed::default()).unwrap(), base);
        // Times are not part of it.
        std::fs::File::open(d.path().join("a/f"))
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH)
            .unwrap();
        assert_eq!(sum(d.path(), &Hashed::default()).unwrap(), base);
        type Change = fn(&dyn Fn(&str) -> std::path::PathBuf);
        let changes: [Change; 8] = [
            |p| std::fs::write(p("a/f"), b"contenT").unwrap(),
            |p| std::fs::write(p("a/f"), b"content!").unwrap(),
            |p| {
                std::fs::set_permissions(p("a/f"), std::fs::Permissions::from_mode(0o4644)).unwrap()
            },
            |p| std::os::unix::fs::lchown(p("l"), Some(1), None).unwrap(),
            |p| {
                std::fs::remove_file(p("l")).unwrap();
                symlink("a/g", p("l")).unwrap();
            },
            |p| std::fs::write(p("a/new"), b"").unwrap(),
            |p| std::fs::rename(p("a.b"), p("a.c")).unwrap(),
            |p| {
                let path = CString::new(p("a").into_os_string().into_encoded_bytes()).unwrap();
                // SAFETY: NUL-terminated strings and a one-byte value.
                let rc = unsafe {
                    libc::lsetxattr(
                        path.as_ptr(),
                        c"user.x".as_ptr(),
                        b"y".as_ptr().cast(),
                        1,
                        0,
                    )
                };
                assert_eq!(rc, 0, "{}", io::Error::last_os_error());
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let d2 = tree();
            // Where the tree is does not matter.
            assert_eq!(sum(d2.path(), &Hashed::default()).unwrap(), base);
            change(&|s| d2.path().join(s));
            assert_ne!(
                sum(d2.path(), &Hashed::default()).unwrap(),
                base,
                "change {i}"
            );
        }
    }

    #[test]
    fn recorded_formats_are_recomputed_as_they_were_made() {
        let d = tree();
        let current = sum_in(FORMAT, d.path()).unwrap().unwrap();
        assert_eq!(current, sum(d.path(), &Hashed::default()).unwrap());
        // v1 hashed file content with sha256: another sum of the same tree.
        let v1 = sum_in(FORMAT_V1, d.path()).unwrap().unwrap();
        assert_ne!(v1, current);
        std::fs::write(d.path().join("a/f"), b"contenT").unwrap();
        assert_ne!(sum_in(FORMAT_V1, d.path()).unwrap().unwrap(), v1);
        assert!(sum_in("containr-tree-v0", d.path()).is_none());
    }

    #[test]
    fn hashes_known_by_inode_are_trusted_only_at_the_same_size() {
        use std::os::unix::fs::MetadataExt;
        let d = tree();
        let base = sum(d.path(), &Hashed::default()).unwrap();
        let m = std::fs::metadata(d.path().join("a/f")).unwrap();
        let mut wrong = Hashed::default();
        wrong.insert(m.ino(), m.size(), [0; 32]);
        assert_ne!(
            sum(d.path(), &wrong).unwrap(),
            base,
            "the recorded hash is used"
        );
        let mut stale = Hashed::default();
        stale.insert(m.ino(), m.size() + 1, [0; 32]);
        assert_eq!(sum(d.path(), &stale).unwrap(), base);
    }
}
