//! `containr export CONTAINER`: a running container's filesystem as one
//! tar. Containers are removed when they exit, so this works while one
//! runs. For a container from an image, the overlay is merged here, in
//! userland, from its layers on the host (the overlay itself is mounted
//! only in the container's mount namespace): the upper layer first, then
//! each snapshot, a path taken from the highest layer that has it, hidden
//! below a whiteout (a 0/0 character device) or an opaque directory, as
//! overlayfs does. For a `--rootfs` container, the directory is the tar.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::Error;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The layers of container `name` (or id prefix), top first.
fn layers_of(data_root: &Path, name: &str) -> Result<Vec<PathBuf>, Error> {
    let dir = data_root.join("containers");
    let entries = fs::read_dir(&dir).map_err(|_| Error::NoContainer(name.to_string()))?;
    for e in entries.flatten() {
        let Ok(state) = fs::read(e.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&state) else {
            continue;
        };
        let id = v["id"].as_str().unwrap_or_default();
        if v["name"].as_str() != Some(name) && !(name.len() >= 4 && id.starts_with(name)) {
            continue;
        }
        let rw = data_root.join("rw").join(id);
        if !rw.is_dir() {
            // A --rootfs container: its directory as it is.
            let rootfs = v["rootfs"].as_str().unwrap_or_default();
            return Ok(vec![PathBuf::from(rootfs)]);
        }
        let lower = fs::read_to_string(rw.join("layers")).map_err(io_err(&rw))?;
        let snapshots = data_root.join("snapshots");
        let mut layers = vec![rw.join("upper")];
        layers.extend(lower.lines().map(|l| snapshots.join(l)));
        return Ok(layers);
    }
    Err(Error::NoContainer(name.to_string()))
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut v = [0u8; 2];
    // SAFETY: NUL-terminated strings and a buffer of the length passed.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

/// What higher layers decided about paths, as the merge goes down.
#[derive(Default)]
struct Seen {
    /// Paths already written, with whether each was a directory.
    taken: std::collections::HashMap<PathBuf, bool>,
    /// Paths (and everything below) no lower layer may provide.
    hidden: HashSet<PathBuf>,
}

impl Seen {
    fn hidden(&self, rel: &Path) -> bool {
        rel.ancestors().any(|a| self.hidden.contains(a))
    }
}

/// Write the container's merged filesystem as a tar to `out`.
pub fn export(data_root: &Path, name: &str, out: &mut dyn Write) -> Result<(), Error> {
    let layers = layers_of(data_root, name)?;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut seen = Seen::default();
    for layer in &layers {
        // Hides found in this layer apply to the layers below only.
        let mut hides = BTreeSet::new();
        walk(&mut b, layer, Path::new(""), &mut seen, &mut hides)?;
        seen.hidden.extend(hides);
    }
    b.into_inner()
        .and_then(|w| w.flush())
        .map_err(io_err(Path::new("export")))?;
    Ok(())
}

fn walk(
    b: &mut tar::Builder<&mut dyn Write>,
    layer: &Path,
    rel: &Path,
    seen: &mut Seen,
    hides: &mut BTreeSet<PathBuf>,
) -> Result<(), Error> {
    let dir = layer.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        let rel = rel.join(&n);
        let full = layer.join(&rel);
        let m = fs::symlink_metadata(&full).map_err(io_err(&full))?;
        if seen.hidden(&rel) {
            continue;
        }
        if is_whiteout(&m) {
            hides.insert(rel);
            continue;
        }
        match seen.taken.get(&rel) {
            // A higher layer's non-directory hides this whole path.
            Some(false) => continue,
            Some(true) if !m.is_dir() => continue,
            Some(true) => {}
            None => {
                b.append_path_with_name(&full, &rel)
                    .map_err(io_err(&full))?;
                seen.taken.insert(rel.clone(), m.is_dir());
            }
        }
        if m.is_dir() {
            walk(b, layer, &rel, seen, hides)?;
            if is_opaque(&full) {
                hides.insert(rel);
            }
        }
    }
    Ok(())
}
