//! The content-addressed blob store under the data root:
//!
//! ```text
//! blobs/sha256/<hex>     a blob whose sha256 is <hex>; nothing else ever is
//! blobs/tmp/<random>     a blob being written (removed if it fails)
//! blobs/partial/<hex>    an interrupted download of <hex>, kept to resume
//! ```
//!
//! The one invariant: a file under `blobs/sha256/` always holds exactly the
//! content its name says. Writes go to a temporary file on the same
//! filesystem while being hashed, are checked against the expected digest
//! and size, `fsync`ed, and only then `rename`d into place (and the directory
//! `fsync`ed), so neither a bad download nor a crash can ever leave a blob
//! whose content does not match its name. Renames are atomic, so concurrent
//! writers of the same blob need no lock: the last rename wins with the same
//! bytes.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// SHA-256 through ring's assembly, which on CPUs without the SHA
/// extensions hashes about 1.6x as fast as sha2's portable code (measured
/// on this project's VM); every byte of every layer goes through it, twice
/// when unpacked (diff-id and file sums).
#[derive(Clone)]
pub struct Sha256(ring::digest::Context);

impl Sha256 {
    pub fn new() -> Sha256 {
        Sha256(ring::digest::Context::new(&ring::digest::SHA256))
    }

    pub fn new_with_prefix(bytes: &[u8]) -> Sha256 {
        let mut h = Sha256::new();
        h.update(bytes);
        h
    }

    pub fn update(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.update(bytes.as_ref());
    }

    pub fn finalize(self) -> [u8; 32] {
        self.0
            .finish()
            .as_ref()
            .try_into()
            .expect("a SHA-256 is 32 bytes")
    }
}

impl Default for Sha256 {
    fn default() -> Sha256 {
        Sha256::new()
    }
}

use crate::util::{PathIo, io_err, random_name};

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob store {0}")]
    Io(#[from] PathIo),
    #[error("invalid digest {0:?}: expected sha256: and 64 lowercase hex digits")]
    BadDigest(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the store")]
    NotFound(Digest),
}

/// A sha256 content digest, `sha256:<64 lowercase hex>`. The only algorithm
/// OCI registries use in practice; others are refused when parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    pub(crate) fn from_hasher(h: Sha256) -> Digest {
        let out = h.finalize();
        let mut hex = String::with_capacity(64);
        for b in out.iter() {
            use std::fmt::Write as _;
            let _ = write!(hex, "{b:02x}");
        }
        Digest { hex }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// Parse 64 lowercase hex digits without the `sha256:` prefix.
    pub fn from_hex(hex: &str) -> Result<Digest, Error> {
        if hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Digest {
                hex: hex.to_string(),
            })
        } else {
            Err(Error::BadDigest(hex.to_string()))
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest, Error> {
        match s.strip_prefix("sha256:") {
            Some(hex) => Digest::from_hex(hex).map_err(|_| Error::BadDigest(s.to_string())),
            None => Err(Error::BadDigest(s.to_string())),
        }
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A reader that hashes what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The digest and size of everything read so far.
    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// What a written blob must turn out to be.
#[derive(Debug, Clone)]
pub struct Expected {
    pub digest: Digest,
    pub size: u64,
}

/// The blob store of one data root.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Open (creating as needed) the blob store under `data_root`.
    pub fn open(data_root: &Path) -> Result<Store, Error> {
        let root = data_root.join("blobs");
        for sub in ["sha256", "tmp", "partial"] {
            let d = root.join(sub);
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        Ok(Store { root })
    }

    /// Where interrupted downloads are kept (on the blobs' filesystem).
    pub fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }

    /// Where the blob `d` lives (whether or not it is there).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root.join("sha256").join(d.hex())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File, Error> {
        let p = self.path(d);
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(d.clone()),
            _ => io_err(&p)(e).into(),
        })
    }

    /// The size of blob `d`.
    pub fn size(&self, d: &Digest) -> Result<u64, Error> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(d.clone())),
            Err(e) => Err(io_err(&p)(e).into()),
        }
    }

    /// Read a small blob (a manifest or a config), checking its content
    /// against its name: such blobs are parsed and trusted right away.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        let p = self.path(d);
        self.open_blob(d)?
            .read_to_end(&mut bytes)
            .map_err(io_err(&p))?;
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(Error::DigestMismatch {
                expected: d.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Store `bytes`; returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, Error> {
        let mut w = self.writer(None)?;
        w.write_all(bytes).map_err(io_err(&w.path))?;
        w.commit()
    }

    /// A new blob, written to a temporary file until [`BlobWriter::commit`];
    /// dropped uncommitted, it leaves nothing.
    pub fn writer(&self, expected: Option<Expected>) -> Result<BlobWriter, Error> {
        let path = self.root.join("tmp").join(random_name());
        let file = File::options()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
            path,
            store: self.clone(),
            expected,
            keep_on_drop: false,
        })
    }

    /// A download of `expected` that picks up where an interrupted one
    /// stopped: the bytes already there are re-hashed (a hash state cannot
    /// be saved), and [`BlobWriter::written`] says where to resume. Unlike
    /// [`Store::writer`], dropping it uncommitted keeps what was written, for
    /// the next try; [`BlobWriter::discard`] removes it.
    ///
    /// The partial file is `flock`ed for as long as the writer lives, so a
    /// concurrent download of the same blob (another pull, or another
    /// thread) waits for this one instead of writing into the same file;
    /// `None` when, once the lock is had, the blob turns out to be stored.
    pub fn resumable(&self, expected: Expected) -> Result<Option<BlobWriter>, Error> {
        let path = self.root.join("partial").join(expected.digest.hex());
        let mut file = loop {
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
                .map_err(io_err(&path))?;
            // SAFETY: flock on a descriptor we own; blocks until granted.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(io_err(&path)(io::Error::last_os_error()).into());
            }
            if self.contains(&expected.digest) {
                return Ok(None);
            }
            // The holder before us may have committed (renamed) the file we
            // opened, or discarded it: lock the file the path names now.
            let same = fs::metadata(&path)
                .ok()
                .zip(file.metadata().ok())
                .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
            if same {
                break file;
            }
        };
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            written += n as u64;
        }
        let mut w = BlobWriter {
            file,
            hasher,
            written,
            path,
            store: self.clone(),
            expected: Some(expected.clone()),
            keep_on_drop: true,
        };
        if written > expected.size {
            // Cannot be the blob's prefix: start over.
            w.restart()?;
        }
        Ok(Some(w))
    }

    /// Remove blob `d` (no error if it is not there).
    pub fn remove(&self, d: &Digest) -> Result<(), Error> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&p)(e).into()),
            _ => Ok(()),
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>, Error> {
        let dir = self.root.join("sha256");
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            if let Some(d) = entry
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Files that are not blobs: temporary and partial downloads, and
    /// anything under `sha256/` whose name is not a digest.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for sub in ["tmp", "partial", "sha256"] {
            let Ok(entries) = fs::read_dir(self.root.join(sub)) else {
                continue;
            };
            for e in entries.flatten() {
                let is_blob = sub == "sha256"
                    && e.file_name()
                        .to_str()
                        .is_some_and(|n| Digest::from_hex(n).is_ok());
                if !is_blob {
                    out.push(e.path());
                }
            }
        }
        out
    }

    /// Re-hash blob `d`; its actual digest.
    pub fn rehash(&self, d: &Digest) -> Result<Digest, Error> {
        let p = self.path(d);
        let mut r = HashingReader::new(self.open_blob(d)?);
        io::copy(&mut r, &mut io::sink()).map_err(io_err(&p))?;
        Ok(r.finish().0)
    }
}

/// A blob being written; see [`Store::writer`] and [`Store::resumable`].
pub struct BlobWriter {
    file: File,
    hasher: Sha256,
    written: u64,
    path: PathBuf,
    store: Store,
    expected: Option<Expected>,
    keep_on_drop: bool,
}

impl BlobWriter {
    /// Bytes written so far (including those a resumed download found).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Throw away what was written and start from byte 0 (a registry that
    /// ignored a Range request sends the whole blob again).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.file.set_len(0).map_err(io_err(&self.path))?;
        self.file.rewind().map_err(io_err(&self.path))?;
        self.hasher = Sha256::new();
        self.written = 0;
        Ok(())
    }

    /// What was written is known bad: it goes when the writer is dropped,
    /// even that of a resumable download.
    pub fn discard(&mut self) {
        self.keep_on_drop = false;
    }

    /// Check the content, make it durable and give it its name. On a
    /// mismatch, the written bytes are removed and never stored.
    pub fn commit(mut self) -> Result<Digest, Error> {
        // Whatever happens now, the temporary file goes: stored or wrong.
        self.keep_on_drop = false;
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(exp) = &self.expected {
            if self.written != exp.size {
                return Err(Error::SizeMismatch {
                    digest: exp.digest.clone(),
                    expected: exp.size,
                    actual: self.written,
                });
            }
            if actual != exp.digest {
                return Err(Error::DigestMismatch {
                    expected: exp.digest.clone(),
                    actual,
                });
            }
        }
        self.file.sync_all().map_err(io_err(&self.path))?;
        let dest = self.store.path(&actual);
        fs::rename(&self.path, &dest).map_err(io_err(&dest))?;
        let dir = self.store.root.join("sha256");
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&dir))?;
        Ok(actual)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(exp) = &self.expected
            && self.written + buf.len() as u64 > exp.size
        {
            // Refuse at once: a server that sends more than announced may
            // never stop.
            return Err(io::Error::other(format!(
                "{} is larger than its {} bytes",
                exp.digest, exp.size
            )));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // An empty partial (a request that failed before any byte came)
        // is nothing to resume.
        if !self.keep_on_drop || self.written == 0 {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Free bytes (for an unprivileged user: root's reserved blocks are
/// counted out, as df does) of the filesystem holding `path`: what a pull
/// or an unpack watches so that it leaves the data root its reserve.
pub fn free_space(path: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn digests_parse_strictly() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        for bad in [
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha512:e3b0",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:../../etc/passwd",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn verified_writes_store_or_leave_nothing() {
        let (_dir, s) = store();
        let good = Digest::of(b"hello");
        let mut w = s
            .writer(Some(Expected {
                digest: good.clone(),
                size: 5,
            }))
            .unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(w.commit().unwrap(), good);
        assert_eq!(s.read(&good).unwrap(), b"hello");

        let other = Digest::of(b"world");
        let mut w = s
            .writer(Some(Expected {
                digest: other.clone(),
                size: 5,
            }))
            .unwrap();
        w.write_all(b"WORLD").unwrap();
        assert!(matches!(w.commit(), Err(Error::DigestMismatch { .. })));
        let mut w = s
            .writer(Some(Expected {
                digest: other.clone(),
                size: 5,
            }))
            .unwrap();
        assert!(w.write_all(b"world!").is_err());
        drop(w);
        let mut w = s
            .writer(Some(Expected {
                digest: other.clone(),
                size: 5,
            }))
            .unwrap();
        w.write_all(b"wor").unwrap();
        assert!(matches!(w.commit(), Err(Error::SizeMismatch { .. })));
        assert!(!s.contains(&other));
        assert_eq!(s.list().unwrap(), vec![good]);
        assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
    }

    #[test]
    fn resumable_downloads_continue_and_check_the_whole() {
        let (_dir, s) = store();
        let data = b"0123456789".repeat(100);
        let exp = Expected {
            digest: Digest::of(&data),
            size: data.len() as u64,
        };
        let mut w = s.resumable(exp.clone()).unwrap().unwrap();
        w.write_all(&data[..300]).unwrap();
        drop(w); // interrupted
        let mut w = s.resumable(exp.clone()).unwrap().unwrap();
        assert_eq!(w.written(), 300);
        w.write_all(&data[300..]).unwrap();
        assert_eq!(w.commit().unwrap(), exp.digest);
        assert!(s.leftovers().is_empty());
        // Stored meanwhile: nothing to download.
        assert!(s.resumable(exp.clone()).unwrap().is_none());
        assert_eq!(s.rehash(&exp.digest).unwrap(), exp.digest);
    }

    #[test]
    fn empty_or_discarded_partials_do_not_stay() {
        let (_dir, s) = store();
        let data = b"0123456789".repeat(10);
        let exp = Expected {
            digest: Digest::of(&data),
            size: data.len() as u64,
        };
        // A request that failed before any byte came.
        drop(s.resumable(exp.clone()).unwrap().unwrap());
        assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
        // Bytes known to be wrong.
        let mut w = s.resumable(exp.clone()).unwrap().unwrap();
        w.write_all(b"garbage").unwrap();
        w.discard();
        drop(w);
        assert!(s.leftovers().is_empty(), "{:?}", s.leftovers());
        // Bytes that may be the start: kept.
        let mut w = s.resumable(exp.clone()).unwrap().unwrap();
        w.write_all(&data[..10]).unwrap();
        drop(w);
        assert_eq!(s.leftovers().len(), 1);
    }
}
