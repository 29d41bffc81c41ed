//! Pulling images from a registry (OCI Distribution Spec), synchronously:
//! resolve the reference to a manifest (through an index, for the host's
//! platform or `--platform`), then download the config and the layers,
//! several at a time on threads, each verified against its digest and
//! size while it streams into the blob store, resumed with `Range` if an
//! earlier pull was interrupted, and unpacked into its snapshot as soon as
//! it is complete. The name is recorded last, so an image that has a name
//! is always whole.

pub mod auth;
pub mod client;
pub mod limits;
pub mod progress;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use client::Client;
use limits::{CONFIG_LIMIT, Limits, MANIFEST_LIMIT, MAX_LAYERS, Meter, Stop};
use progress::Progress;

use crate::cas::{self, Digest, Expected};
use crate::image::config::{
    self, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Kind, MediaType, Platform,
};
use crate::image::reference::Reference;
use crate::image::{self, Images, short};
use crate::step;

/// Errors of talking to registries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] image::reference::Error),
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error("cannot reach registry {host}: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("{what}: not found in registry {host}{detail}")]
    NotFound {
        what: String,
        host: String,
        detail: String,
    },
    #[error("registry {host}: {what}: HTTP {status}{detail}")]
    Status {
        host: String,
        what: String,
        status: u16,
        detail: String,
    },
    #[error("registry {host}: unauthorized: {detail}")]
    Unauthorized { host: String, detail: String },
    #[error("registry {host}: {reason}")]
    Protocol { host: String, reason: String },
    #[error("{what}: {reason}")]
    BadManifest { what: String, reason: String },
    #[error("{reference}: no image for platform {want} (the index has: {available})")]
    NoPlatform {
        reference: String,
        want: String,
        available: String,
    },
    #[error("{what} {digest}: {source}")]
    Blob {
        what: &'static str,
        digest: Digest,
        source: cas::Error,
    },
    #[error("downloading {digest}: {reason} (run the pull again to resume)")]
    Download { digest: Digest, reason: String },
    /// `size`: what it declares; none when it streams on past the limit.
    #[error("{what} {}", limits::too_large(*.size, *.limit))]
    TooLarge {
        what: String,
        size: Option<u64>,
        limit: u64,
    },
    #[error("downloading {what}: {stop}")]
    Stopped { what: String, stop: Stop },
    #[error(
        "{what}: {} to download do not fit: the data root has {} free and keeps {} of it in reserve (--disk-reserve)",
        limits::bytes(*.size), limits::bytes(*.free), limits::bytes(*.reserve)
    )]
    NoRoom {
        what: String,
        size: u64,
        free: u64,
        reserve: u64,
    },
    #[error("downloading {digest}: the registry sent more than its declared {size} bytes")]
    Oversized { digest: Digest, size: u64 },
    #[error(
        "{what}: {layers} layers, more than the {MAX_LAYERS} an image may have (docker's limit)"
    )]
    TooManyLayers { what: String, layers: usize },
    #[error("credentials file {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("invalid --platform {0:?}: expected os/arch[/variant]")]
    BadPlatform(String),
    #[error(
        "image {name} was found but does not match the specified platform: wanted {want}, actual: {actual}"
    )]
    WrongPlatform {
        name: String,
        want: String,
        actual: String,
    },
}

impl From<cas::Error> for Error {
    fn from(e: cas::Error) -> Error {
        Error::Image(e.into())
    }
}

/// How to pull.
#[derive(Clone)]
pub struct PullOptions {
    /// `os/arch[/variant]`; the host's when `None`.
    pub platform: Option<String>,
    /// Registries (domains as in references) reached over plain http.
    pub insecure: Vec<String>,
    /// Where the pull's events go (the front end renders them).
    pub progress: Arc<dyn Progress>,
    /// Where credentials are read (`~/.docker/config.json`).
    pub auth_file: PathBuf,
    /// Layers downloaded at once.
    pub jobs: usize,
    pub limits: Limits,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            platform: None,
            insecure: Vec::new(),
            progress: Arc::new(progress::Quiet),
            auth_file: auth::config_path(),
            jobs: 3,
            limits: Limits::default(),
        }
    }
}

/// What a pull stored.
pub struct Pulled {
    /// The name recorded in the index.
    pub name: String,
    pub manifest: Digest,
    pub id: Digest,
}

/// `containr pull NAME`.
pub fn pull(data_root: &Path, name: &str, opts: &PullOptions) -> Result<Pulled, Error> {
    let reference = Reference::parse(name)?;
    let want = match &opts.platform {
        Some(p) => config::parse_platform(p).ok_or_else(|| Error::BadPlatform(p.clone()))?,
        None => config::host_platform(),
    };
    let images = Images::open(data_root)?;
    // gc must not sweep what this pull stores before it is named.
    let _guard = images.gc_guard(false)?;
    let stored = Stored::default();
    let result = pull_into(&images, &reference, &want, opts, &stored);
    if result.is_err() {
        stored.undo(&images);
    }
    result
}

/// What one pull added to the store, to take back if it fails.
#[derive(Default)]
struct Stored {
    blobs: Mutex<Vec<Digest>>,
    snapshots: Mutex<Vec<Digest>>,
}

impl Stored {
    /// Remove what this pull stored that no image names: a failed pull
    /// leaves nothing but partial downloads (kept to resume).
    fn undo(&self, images: &Images) {
        images.take_back(
            &self.blobs.lock().expect("not poisoned"),
            &self.snapshots.lock().expect("not poisoned"),
        );
    }
}

fn pull_into(
    images: &Images,
    reference: &Reference,
    want: &Platform,
    opts: &PullOptions,
    stored: &Stored,
) -> Result<Pulled, Error> {
    let creds = auth::lookup(&opts.auth_file, &reference.domain)?;
    let client = Client::new(reference, &opts.insecure, creds, &opts.limits);
    let limits = &opts.limits;
    let progress = &*opts.progress;
    step!(
        "GET {}/v2/{}/manifests/{}",
        client.host(),
        reference.path,
        reference.manifest_ref()
    );
    let what = reference.to_string();
    let (bytes, ctype) = client.manifest(&reference.manifest_ref())?;
    if let Some(d) = &reference.digest {
        check_digest(&what, d, &bytes)?;
    }
    let manifest_bytes = match classify(&what, &bytes, ctype.as_deref())? {
        Kind::Manifest => bytes,
        Kind::Index => {
            let index: ImageIndex = parse(&what, &bytes)?;
            let desc = config::select_platform(&index, want).ok_or_else(|| Error::NoPlatform {
                reference: what.clone(),
                want: platform_string(want),
                available: index
                    .manifests()
                    .iter()
                    .filter_map(|d| d.platform().as_ref().map(platform_string))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
            let desc = Blob::of(desc)?;
            step!(
                "index: {} -> manifest {}",
                platform_string(want),
                desc.digest
            );
            if desc.size > MANIFEST_LIMIT {
                return Err(Error::TooLarge {
                    what: format!("manifest {}", desc.digest),
                    size: Some(desc.size),
                    limit: MANIFEST_LIMIT,
                });
            }
            let (b, ctype) = client.manifest(&desc.digest.to_string())?;
            let what = format!("{what} ({})", platform_string(want));
            check_digest(&what, &desc.digest, &b)?;
            if classify(&what, &b, ctype.as_deref())? != Kind::Manifest {
                return Err(Error::BadManifest {
                    what,
                    reason: "an index inside an index".into(),
                });
            }
            b
        }
    };
    let manifest: ImageManifest = parse(&what, &manifest_bytes)?;
    if let Some(bad) = manifest
        .layers()
        .iter()
        .find(|l| !config::is_layer(l.media_type()))
    {
        return Err(Error::BadManifest {
            what,
            reason: format!(
                "layer {} has unsupported media type {:?}",
                bad.digest(),
                bad.media_type().to_string()
            ),
        });
    }
    // What the manifest declares is judged before anything is fetched.
    if manifest.layers().len() > MAX_LAYERS {
        return Err(Error::TooManyLayers {
            what,
            layers: manifest.layers().len(),
        });
    }
    let config_blob = Blob::of(manifest.config())?;
    if config_blob.size > CONFIG_LIMIT {
        return Err(Error::TooLarge {
            what: format!("image config {}", config_blob.digest),
            size: Some(config_blob.size),
            limit: CONFIG_LIMIT,
        });
    }
    let layers = manifest
        .layers()
        .iter()
        .map(Blob::of)
        .collect::<Result<Vec<_>, _>>()?;
    let missing: u64 = std::iter::once(&config_blob)
        .chain(&layers)
        .filter(|d| !images.cas.contains(&d.digest))
        .fold(0u64, |sum, d| sum.saturating_add(d.size));
    check_room(images, limits, &what, missing)?;
    progress.message(&format!(
        "{}: Pulling from {}",
        reference.manifest_ref(),
        reference.repository()
    ));
    download(&client, images, &config_blob, None, stored, limits)?;
    let what_config = format!("image config {}", config_blob.digest);
    let config_bytes = images.cas.read(&config_blob.digest)?;
    let image_config: ImageConfiguration = parse(&what_config, &config_bytes)?;
    // Its docker fields are read when it runs: refused now, as a load does.
    config::docker_config(&config_bytes).map_err(|e| Error::BadManifest {
        what: what_config,
        reason: format!("invalid: {e}"),
    })?;
    let diff_ids = &config::diff_ids(&image_config)?;
    if diff_ids.len() != layers.len() {
        return Err(image::Error::LayerCount {
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        }
        .into());
    }
    fetch_layers(&client, images, &layers, diff_ids, progress, opts, stored)?;
    let manifest_digest = images.cas.put(&manifest_bytes)?;
    stored
        .blobs
        .lock()
        .expect("not poisoned")
        .push(manifest_digest.clone());
    let key = reference.to_string();
    images.update(|index| {
        index.insert(key.clone(), manifest_digest.clone());
        Ok(())
    })?;
    progress.message(&format!("Digest: {manifest_digest}"));
    progress.message(&format!("Status: Downloaded image for {reference}"));
    Ok(Pulled {
        name: key,
        manifest: manifest_digest,
        id: config_blob.digest,
    })
}

/// A blob a manifest or index names, in the store's terms.
struct Blob {
    digest: Digest,
    size: u64,
}

impl Blob {
    fn of(d: &Descriptor) -> Result<Blob, Error> {
        Ok(Blob {
            digest: config::digest_of(d)?,
            size: d.size(),
        })
    }
}

fn platform_string(p: &Platform) -> String {
    config::platform_string(p)
}

fn check_digest(what: &str, want: &Digest, bytes: &[u8]) -> Result<(), Error> {
    let actual = Digest::of(bytes);
    if actual == *want {
        Ok(())
    } else {
        Err(Error::BadManifest {
            what: what.to_string(),
            reason: format!("digest mismatch: expected {want}, got {actual}"),
        })
    }
}

fn parse<T: serde::de::DeserializeOwned + config::Digests>(
    what: &str,
    bytes: &[u8],
) -> Result<T, Error> {
    config::parse(bytes).map_err(|e| Error::BadManifest {
        what: what.to_string(),
        reason: format!("invalid: {e}"),
    })
}

/// An index or a manifest? Its own `mediaType` field decides, else the
/// `Content-Type` the registry sent, else its shape (OCI allows neither).
fn classify(what: &str, bytes: &[u8], content_type: Option<&str>) -> Result<Kind, Error> {
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| Error::BadManifest {
        what: what.to_string(),
        reason: "the manifest is not JSON".into(),
    })?;
    let declared = v
        .get("mediaType")
        .and_then(|m| m.as_str())
        .or(content_type.filter(|c| *c != "application/json" && !c.is_empty()));
    match declared {
        Some(mt) => config::kind_of(&MediaType::from(mt)).ok_or_else(|| Error::BadManifest {
            what: what.to_string(),
            reason: format!("unsupported manifest media type {mt:?}"),
        }),
        None if v.get("manifests").is_some() => Ok(Kind::Index),
        None if v.get("layers").is_some() && v.get("config").is_some() => Ok(Kind::Manifest),
        None => Err(Error::BadManifest {
            what: what.to_string(),
            reason: "neither an image index nor a manifest".into(),
        }),
    }
}

/// Download the layers `jobs` at a time and unpack each into its snapshot
/// as soon as it is stored, on threads of their own (also `jobs`): a layer
/// being unpacked never holds back the download of the next one.
fn fetch_layers(
    client: &Client,
    images: &Images,
    layers: &[Blob],
    diff_ids: &[Digest],
    progress: &dyn Progress,
    opts: &PullOptions,
    stored: &Stored,
) -> Result<(), Error> {
    let (jobs, limits) = (opts.jobs, &opts.limits);
    let queue = Mutex::new(layers.iter().zip(diff_ids));
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let fail = |e| {
        failed.store(true, Ordering::Relaxed);
        first_error.lock().expect("not poisoned").get_or_insert(e);
    };
    let (to_unpack, downloaded) = mpsc::channel();
    let downloaded = Mutex::new(downloaded);
    let workers = jobs.clamp(1, layers.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            let to_unpack = to_unpack.clone();
            let fail = &fail;
            let (queue, failed) = (&queue, &failed);
            s.spawn(move || {
                while !failed.load(Ordering::Relaxed) {
                    let Some((layer, diff_id)) = queue.lock().expect("not poisoned").next() else {
                        return;
                    };
                    match download_layer(client, images, layer, diff_id, progress, stored, limits) {
                        Ok(Some(bar)) => {
                            // Only fails once every unpacker has quit on
                            // an error, which is reported already.
                            let _ = to_unpack.send((layer, diff_id, bar));
                        }
                        Ok(None) => {}
                        Err(e) => return fail(e),
                    }
                }
            });
        }
        // The unpackers stop when the last downloader hangs up.
        drop(to_unpack);
        for _ in 0..workers {
            s.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let next = downloaded.lock().expect("not poisoned").recv();
                    let Ok((layer, diff_id, bar)) = next else {
                        return;
                    };
                    if let Err(e) = unpack_layer(images, layer, diff_id, &bar, stored, limits) {
                        return fail(e);
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("not poisoned") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Download one layer; its progress bar if it still has to be unpacked.
fn download_layer<'p>(
    client: &Client,
    images: &Images,
    layer: &Blob,
    diff_id: &Digest,
    progress: &'p dyn Progress,
    stored: &Stored,
    limits: &Limits,
) -> Result<Option<progress::Layer<'p>>, Error> {
    let id = short(&layer.digest);
    if images.snapshot_path(diff_id).is_dir() && images.cas.contains(&layer.digest) {
        progress.message(&format!("{id}: Already exists"));
        return Ok(None);
    }
    let bar = progress::Layer::start(progress, &id, layer.size);
    download(client, images, layer, Some(&bar), stored, limits)?;
    bar.state("Download complete");
    Ok(Some(bar))
}

fn unpack_layer(
    images: &Images,
    layer: &Blob,
    diff_id: &Digest,
    bar: &progress::Layer<'_>,
    stored: &Stored,
    limits: &Limits,
) -> Result<(), Error> {
    bar.state("Extracting");
    if !images.snapshot_path(diff_id).is_dir() {
        images.ensure_snapshot(&layer.digest, diff_id, limits.disk_reserve)?;
        stored
            .snapshots
            .lock()
            .expect("not poisoned")
            .push(diff_id.clone());
    }
    bar.finish("Pull complete");
    Ok(())
}

/// Refuse `size` more bytes if the data root's filesystem does not have
/// them above the reserve.
fn check_room(images: &Images, limits: &Limits, what: &str, size: u64) -> Result<(), Error> {
    let dir = images.cas.partial_dir();
    let (room, free) = limits::room(&dir, limits.disk_reserve)
        .map_err(|e| image::Error::from(crate::util::io_err(&dir)(e)))?;
    if size > room {
        return Err(Error::NoRoom {
            what: what.to_string(),
            size,
            free,
            reserve: limits.disk_reserve,
        });
    }
    Ok(())
}

/// Download blob `desc` into the store, verified, resuming a partial
/// download if there is one. A resumed download that does not verify (the
/// partial came from another registry, or was garbage) is done again
/// once, from the start.
fn download(
    client: &Client,
    images: &Images,
    desc: &Blob,
    bar: Option<&progress::Layer<'_>>,
    stored: &Stored,
    limits: &Limits,
) -> Result<(), Error> {
    let digest = &desc.digest;
    for retry in [false, true] {
        if images.cas.contains(digest) {
            return Ok(());
        }
        let blob_err = |source| Error::Blob {
            what: "blob",
            digest: digest.clone(),
            source,
        };
        let Some(mut w) = images
            .cas
            .resumable(Expected {
                digest: digest.clone(),
                size: desc.size,
            })
            .map_err(blob_err)?
        else {
            // Another pull stored it while we waited for its lock.
            return Ok(());
        };
        check_room(
            images,
            limits,
            &format!("blob {digest}"),
            desc.size - w.written(),
        )?;
        let resumed = fetch(client, images, desc, &mut w, bar, limits)?;
        match w.commit() {
            Ok(_) => {
                stored
                    .blobs
                    .lock()
                    .expect("not poisoned")
                    .push(digest.clone());
                return Ok(());
            }
            // The partial that was resumed is gone with the mismatch.
            Err(cas::Error::DigestMismatch { .. } | cas::Error::SizeMismatch { .. })
                if resumed && !retry =>
            {
                step!("{digest}: the resumed download does not verify: again, from byte 0");
                if let Some(b) = bar {
                    b.set_position(0);
                }
            }
            Err(e) => return Err(blob_err(e)),
        }
    }
    unreachable!("the second try returns")
}

/// Stream the rest of `desc` into `w`; true if it resumed a partial
/// download. On an error, the partial is kept only if what it holds may
/// still be the blob's start (a dropped connection), not if it is known
/// wrong (more bytes than declared) or the disk is short.
fn fetch(
    client: &Client,
    images: &Images,
    desc: &Blob,
    w: &mut cas::BlobWriter,
    bar: Option<&progress::Layer>,
    limits: &Limits,
) -> Result<bool, Error> {
    let digest = &desc.digest;
    if w.written() >= desc.size {
        return Ok(w.written() > 0);
    }
    let offset = w.written();
    step!(
        "GET {}/v2/.../blobs/{digest}{}",
        client.host(),
        if offset > 0 {
            format!(" (Range: bytes={offset}-)")
        } else {
            String::new()
        }
    );
    let (body, ranged) = client.blob(&digest.to_string(), offset)?;
    if !ranged && offset > 0 {
        w.restart().map_err(|source| Error::Blob {
            what: "blob",
            digest: digest.clone(),
            source,
        })?;
    }
    let oversized = || Error::Oversized {
        digest: digest.clone(),
        size: desc.size,
    };
    if body
        .content_length()
        .is_some_and(|n| n > desc.size - w.written())
    {
        w.discard();
        return Err(oversized());
    }
    if let Some(b) = bar {
        b.set_position(w.written());
    }
    let dir = images.cas.partial_dir();
    let mut meter = Meter::new(limits, Some(&dir));
    let stopped = |stop| Error::Stopped {
        what: digest.to_string(),
        stop,
    };
    let mut reader = body.into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // What arrived is kept for the next pull to resume.
            Err(e) if client::is_timeout(&e) => return Err(stopped(meter.stalled())),
            Err(e) => {
                return Err(Error::Download {
                    digest: digest.clone(),
                    reason: e.to_string(),
                });
            }
        };
        if w.written() + n as u64 > desc.size {
            w.discard();
            return Err(oversized());
        }
        if let Err(e) = w.write_all(&buf[..n]) {
            w.discard();
            return Err(Error::Download {
                digest: digest.clone(),
                reason: e.to_string(),
            });
        }
        if let Some(b) = bar {
            b.advance(n as u64);
        }
        if let Err(stop) = meter.add(n) {
            if matches!(stop, Stop::DiskFull { .. }) {
                w.discard();
            }
            return Err(stopped(stop));
        }
    }
    Ok(offset > 0 && ranged)
}

/// `containr login`: check the credentials against the registry (the
/// token flow of a `/v2/` request), then store them.
pub fn login(domain: &str, creds: &auth::Credentials, insecure: &[String]) -> Result<(), Error> {
    let reference = Reference::parse(&format!("{domain}/x"))?;
    let client = Client::new(
        &reference,
        insecure,
        Some(creds.clone()),
        &Limits::default(),
    );
    client.check_login()?;
    auth::store(&auth::config_path(), domain, Some(creds))?;
    Ok(())
}

/// `--pull`: when `run` pulls its image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Only if it is not in the store (docker's default).
    #[default]
    Missing,
    /// Never: an image not in the store is an error.
    Never,
    /// Always, even if it is in the store.
    Always,
}

/// `containr run IMAGE`: the image from the store, pulled first if it is
/// not there (`--pull missing`, as docker does), never, or always.
pub fn for_run(
    data_root: &Path,
    name: &str,
    policy: PullPolicy,
    opts: &PullOptions,
) -> Result<image::RunImage, Error> {
    // A bad --platform is refused before anything is looked up.
    let want = match &opts.platform {
        Some(p) => Some(config::parse_platform(p).ok_or_else(|| Error::BadPlatform(p.clone()))?),
        None => None,
    };
    if policy == PullPolicy::Always {
        pull(data_root, name, opts)?;
    }
    let wrong = |img: &image::RunImage| {
        want.as_ref()
            .filter(|w| !config::matches(&img.platform, w))
            .map(|w| Error::WrongPlatform {
                name: name.to_string(),
                want: platform_string(w),
                actual: platform_string(&img.platform),
            })
    };
    let img = match image::for_run(data_root, name, opts.limits.disk_reserve) {
        Err(image::Error::NotFound(_)) if policy == PullPolicy::Missing => {
            opts.progress
                .message(&format!("Unable to find image '{name}' locally"));
            pull(data_root, name, opts)?;
            image::for_run(data_root, name, opts.limits.disk_reserve)?
        }
        // As docker: a stored image of another platform than asked is
        // pulled again for the one asked, never silently used.
        Ok(img) if policy == PullPolicy::Missing && wrong(&img).is_some() => {
            drop(img);
            pull(data_root, name, opts)?;
            image::for_run(data_root, name, opts.limits.disk_reserve)?
        }
        other => other?,
    };
    match wrong(&img) {
        Some(e) => Err(e),
        None => Ok(img),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_classified_by_field_header_or_shape() {
        let m = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(classify("x", m, None).unwrap(), Kind::Manifest);
        assert_eq!(
            classify("x", m, Some(config::DOCKER_MANIFEST)).unwrap(),
            Kind::Manifest
        );
        let i = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            classify("x", i, Some("application/json")).unwrap(),
            Kind::Index
        );
        let typed = format!(
            r#"{{"mediaType":"{}","manifests":[]}}"#,
            config::DOCKER_LIST
        );
        assert_eq!(classify("x", typed.as_bytes(), None).unwrap(), Kind::Index);
        let err = classify("x", b"<html>", None).unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
        let err = classify(
            "x",
            m,
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unsupported manifest media type"), "{err}");
        assert!(classify("x", b"{}", None).is_err());
    }
}
