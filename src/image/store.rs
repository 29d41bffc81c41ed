//! Image names and layer snapshots under the data root:
//!
//! ```text
//! images/index.json      {"docker.io/library/alpine:latest": "sha256:<manifest>", ...}
//!                        an image without a name (docker's `<none>:<none>`) is
//!                        kept as "<none>@sha256:<id>", which no reference parses as
//! images/lock            flock(2)ed around every read-modify-write of the index
//! snapshots/<hex>        a layer unpacked, named by its diff-id; shared by images
//! snapshots/<hex>.sum    the sum of its tree when it was made (treesum)
//! snapshots/.tmp-*       a layer being unpacked, or a snapshot being removed
//! ```
//!
//! The index is rewritten whole (temp file, fsync, rename) under an
//! exclusive lock, so concurrent pulls, tags and removals never lose each
//! other's updates and a reader never sees half a file. A snapshot is
//! unpacked into a temporary directory, flushed to disk, and renamed into
//! place (the directory then fsynced), so a snapshot that exists is
//! complete, even after a crash; two processes unpacking the same layer
//! both finish and one rename wins. A snapshot is removed the same way
//! round: renamed away whole, then deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::config::{self, DockerConfig, ImageConfiguration, ImageManifest};
use super::{Error, treesum, unpack};
use crate::cas::{self, Digest};
use crate::step;

/// The image side of a data root: its blobs, names and snapshots.
pub struct Images {
    pub cas: cas::Store,
    root: PathBuf,
}

/// An image: its manifest and config, as stored.
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    /// The config's docker-only fields.
    pub docker: DockerConfig,
    /// The config's bytes, as stored (what a commit derives from).
    pub raw_config: Vec<u8>,
    /// The layers' blobs, bottom first.
    pub layers: Vec<Digest>,
    /// The layers' diff-ids (their snapshots), bottom first.
    pub diff_ids: Vec<Digest>,
}

/// The exclusive lock on the index, released when dropped.
pub struct IndexLock {
    _lock: nix::fcntl::Flock<File>,
}

use crate::util::io_err;

impl Images {
    pub fn open(data_root: &Path) -> Result<Images, Error> {
        let cas = cas::Store::open(data_root)?;
        for sub in ["images", "snapshots"] {
            let d = data_root.join(sub);
            fs::create_dir_all(&d).map_err(io_err(&d))?;
        }
        // Absolute: the overlay's directories are handed to the init,
        // which changes directory before it mounts.
        let root = fs::canonicalize(data_root).map_err(io_err(data_root))?;
        Ok(Images { cas, root })
    }

    pub fn data_root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images/index.json")
    }

    /// Take the index lock; every change to names holds it, and so does
    /// `gc`, which must not remove what a pull is about to name.
    pub fn lock(&self) -> Result<IndexLock, Error> {
        flock(
            &self.root.join("images/lock"),
            nix::fcntl::FlockArg::LockExclusive,
        )
    }

    /// Held shared by a pull (from its first blob until the image is
    /// named) and exclusively by `gc`, so gc never sweeps a blob or
    /// snapshot a pull is about to name.
    pub fn gc_guard(&self, exclusive: bool) -> Result<IndexLock, Error> {
        let how = if exclusive {
            nix::fcntl::FlockArg::LockExclusive
        } else {
            nix::fcntl::FlockArg::LockShared
        };
        flock(&self.root.join("images/gc.lock"), how)
    }

    /// Every name and the manifest it points to.
    pub fn index(&self) -> Result<BTreeMap<String, Digest>, Error> {
        let path = self.index_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Json {
                what: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io_err(&path)(e).into()),
        }
    }

    /// Change the index under its lock; `f`'s result is returned once the
    /// new index is durable.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Digest>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _lock = self.lock()?;
        self.update_locked(f)
    }

    /// As [`Images::update`], for a caller that holds the lock already.
    pub fn update_locked<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, Digest>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut index = self.index()?;
        let out = f(&mut index)?;
        let path = self.index_path();
        let bytes = serde_json::to_vec_pretty(&index).expect("plain data");
        crate::util::replace_file(&path, &bytes, 0o644).map_err(io_err(&path))?;
        Ok(out)
    }

    /// The image a manifest digest names.
    pub fn load(&self, manifest_digest: &Digest) -> Result<Image, Error> {
        let manifest: ImageManifest = parse_json(
            &self.cas.read(manifest_digest)?,
            &format!("manifest {manifest_digest}"),
        )?;
        let config_digest = config::digest_of(manifest.config())?;
        let what = format!("image config {config_digest}");
        let raw_config = self.cas.read(&config_digest)?;
        let config: ImageConfiguration = parse_json(&raw_config, &what)?;
        let docker =
            config::docker_config(&raw_config).map_err(|source| Error::Json { what, source })?;
        let layers = manifest
            .layers()
            .iter()
            .map(config::digest_of)
            .collect::<Result<Vec<_>, _>>()?;
        let diff_ids = config::diff_ids(&config)?;
        if diff_ids.len() != layers.len() {
            return Err(Error::LayerCount {
                layers: layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        Ok(Image {
            manifest_digest: manifest_digest.clone(),
            manifest,
            config_digest,
            config,
            docker,
            raw_config,
            layers,
            diff_ids,
        })
    }

    /// Every blob and snapshot (by diff-id) an image in the index uses.
    pub fn referenced(&self) -> Result<(BTreeSet<Digest>, BTreeSet<Digest>), Error> {
        let mut blobs = BTreeSet::new();
        let mut snapshots = BTreeSet::new();
        for d in self.index()?.values() {
            let img = self.load(d)?;
            blobs.insert(img.manifest_digest.clone());
            blobs.insert(img.config_digest.clone());
            blobs.extend(img.layers.iter().cloned());
            snapshots.extend(img.diff_ids.iter().cloned());
        }
        Ok((blobs, snapshots))
    }

    /// Remove `blobs` and `snapshots` (diff-ids) that a failed pull or
    /// load stored, unless an image uses them: a failure leaves nothing.
    pub fn take_back(&self, blobs: &[Digest], snapshots: &[Digest]) {
        let Ok((used_blobs, used_snapshots)) = self.referenced() else {
            return;
        };
        for b in blobs.iter().filter(|b| !used_blobs.contains(b)) {
            let _ = self.cas.remove(b);
        }
        for s in snapshots.iter().filter(|s| !used_snapshots.contains(s)) {
            let _ = self.remove_snapshot(s.hex());
        }
    }

    /// Remove the snapshot `name` (a diff-id's hex) and its sum. It is
    /// renamed away first: a crash halfway through the deletion leaves a
    /// temporary directory for gc, never a partial snapshot under its name.
    pub fn remove_snapshot(&self, name: &str) -> Result<(), Error> {
        let path = self.snapshot_dir().join(name);
        let away = self
            .snapshot_dir()
            .join(format!(".tmp-{}", crate::util::random_name()));
        match fs::rename(&path, &away) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(&path)(e).into());
            }
            _ => {}
        }
        let sum = self.snapshot_dir().join(format!("{name}.sum"));
        match fs::remove_file(&sum) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(&sum)(e).into());
            }
            _ => {}
        }
        match fs::remove_dir_all(&away) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&away)(e).into()),
            _ => Ok(()),
        }
    }

    pub fn snapshot_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.snapshot_dir().join(diff_id.hex())
    }

    /// Make sure the layer `blob`, whose uncompressed digest must be
    /// `diff_id`, is unpacked, leaving `reserve` bytes free on the data
    /// root; returns its snapshot directory.
    pub fn ensure_snapshot(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        reserve: u64,
    ) -> Result<PathBuf, Error> {
        let dest = self.snapshot_path(diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        self.unpack_layer(blob, Some(diff_id), reserve)
            .map(|(_, p)| p)
    }

    /// Unpack the layer `blob` into its snapshot, checking its diff-id
    /// against `expected` if given and leaving `reserve` bytes free on the
    /// data root; returns the diff-id and the snapshot. Whatever fails, the
    /// half-made tree is removed.
    pub fn unpack_layer(
        &self,
        blob: &Digest,
        expected: Option<&Digest>,
        reserve: u64,
    ) -> Result<(Digest, PathBuf), Error> {
        let tmp = self
            .snapshot_dir()
            .join(format!(".tmp-{}", crate::util::random_name()));
        fs::create_dir(&tmp).map_err(io_err(&tmp))?;
        let result = self.unpack_into(blob, expected, &tmp, reserve);
        if tmp.exists() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    fn unpack_into(
        &self,
        blob: &Digest,
        expected: Option<&Digest>,
        tmp: &Path,
        reserve: u64,
    ) -> Result<(Digest, PathBuf), Error> {
        step!(
            "unpack layer {} into a snapshot (openat2 RESOLVE_BENEATH: nothing lands outside it)",
            short(blob),
        );
        let file = self.cas.open_blob(blob)?;
        let made = make_snapshot(file, tmp, &short(blob), reserve)?;
        let actual = made.diff_id;
        if let Some(expected) = expected
            && actual != *expected
        {
            return Err(Error::DiffIdMismatch {
                layer: blob.clone(),
                expected: expected.clone(),
                actual,
            });
        }
        let dest = self.snapshot_path(&actual);
        match fs::rename(tmp, &dest) {
            Ok(()) => {}
            // Another process unpacked the same layer first: same content,
            // and that process records the sum.
            Err(_) if dest.is_dir() => return Ok((actual, dest)),
            Err(e) => return Err(io_err(&dest)(e).into()),
        }
        // After the rename: a crash in between leaves a snapshot without a
        // sum (which verify reports as unverifiable), never a sum that
        // does not describe its snapshot. Writing it fsyncs the directory,
        // which makes the rename durable too.
        let sum_path = self.sum_path(&actual);
        crate::util::replace_file(
            &sum_path,
            format!("{} {}\n", treesum::FORMAT, made.sum).as_bytes(),
            0o644,
        )
        .map_err(io_err(&sum_path))?;
        Ok((actual, dest))
    }

    fn sum_path(&self, diff_id: &Digest) -> PathBuf {
        self.snapshot_dir().join(format!("{}.sum", diff_id.hex()))
    }

    /// Recompute the sum of snapshot `diff_id` and compare it with the one
    /// recorded when it was made.
    pub fn check_snapshot(&self, diff_id: &Digest) -> Check {
        let recorded = fs::read_to_string(self.sum_path(diff_id))
            .ok()
            .and_then(|s| {
                let (format, digest) = s.trim_end().split_once(' ')?;
                Some((format.to_string(), digest.parse::<Digest>().ok()?))
            });
        let Some((format, recorded)) = recorded else {
            return Check::Unrecorded;
        };
        let Some(actual) = treesum::sum_in(&format, &self.snapshot_path(diff_id)) else {
            return Check::Unrecorded;
        };
        match actual {
            Ok(actual) if actual == recorded => Check::Intact,
            Ok(actual) => Check::Corrupt { recorded, actual },
            Err(e) => Check::Unreadable(e),
        }
    }

    /// Unpack every layer of `image` that is not yet (leaving `reserve`
    /// bytes free); the snapshot directories, bottom layer first.
    pub fn snapshots(&self, image: &Image, reserve: u64) -> Result<Vec<PathBuf>, Error> {
        image
            .layers
            .iter()
            .zip(&image.diff_ids)
            .map(|(layer, diff_id)| self.ensure_snapshot(layer, diff_id, reserve))
            .collect()
    }
}

/// What [`Images::check_snapshot`] found.
pub enum Check {
    Intact,
    Corrupt {
        recorded: Digest,
        actual: Digest,
    },
    /// Made by a containr that recorded no sum (or another format of it).
    Unrecorded,
    Unreadable(treesum::Error),
}

/// A layer unpacked into a directory as a snapshot is made.
pub struct Made {
    pub diff_id: Digest,
    /// Its tree's sum (see [`treesum`]).
    pub sum: Digest,
}

/// Unpack a layer into `dir`, sum its tree and flush it to disk: all a
/// snapshot is before it is renamed into place. Public for the unpack
/// benchmark, which measures what a pull does.
pub fn make_snapshot(
    reader: impl std::io::Read + Send,
    dir: &Path,
    layer: &str,
    reserve: u64,
) -> Result<Made, Error> {
    let unpacked = unpack::unpack(reader, dir, layer, reserve)?;
    let sum = treesum::sum(dir, &unpacked.hashed).map_err(|source| Error::Sum {
        layer: layer.to_string(),
        source,
    })?;
    // Before the snapshot gets its name, its content must be on disk, or a
    // crash could leave empty or partial files under it. syncfs is one
    // call for the whole tree, where an fsync per file would force a
    // journal commit each (see docs/BENCHMARKS.md).
    let f = File::open(dir).map_err(io_err(dir))?;
    nix::unistd::syncfs(f.as_raw_fd()).map_err(|e| io_err(dir)(e.into()))?;
    Ok(Made {
        diff_id: unpacked.diff_id,
        sum,
    })
}

/// The first 12 hex digits, as docker shows ids.
/// The index key of an image that has no name, by its id: docker's
/// dangling `<none>:<none>`, kept (and kept from gc) until it is named or
/// removed.
pub fn unnamed_key(id: &Digest) -> String {
    format!("{UNNAMED}{id}")
}

/// Whether an index key is an unnamed image's.
pub fn is_unnamed(key: &str) -> bool {
    unnamed_id(key).is_some()
}

/// The id (`sha256:…`) of an unnamed image's index key.
pub fn unnamed_id(key: &str) -> Option<&str> {
    key.strip_prefix(UNNAMED)
}

const UNNAMED: &str = "<none>@";

pub fn short(d: &Digest) -> String {
    d.hex()[..12].to_string()
}

/// An index, manifest or config (see [`config::parse`]).
pub fn parse_json<T: serde::de::DeserializeOwned + config::Digests>(
    bytes: &[u8],
    what: &str,
) -> Result<T, Error> {
    config::parse(bytes).map_err(|source| Error::Json {
        what: what.to_string(),
        source,
    })
}

/// Open (creating) the lock file `path` and take `how` on it; released
/// when the guard is dropped.
fn flock(path: &Path, how: nix::fcntl::FlockArg) -> Result<IndexLock, Error> {
    Ok(IndexLock {
        _lock: crate::util::lock_file(path, how)?,
    })
}
