//! Images: names, metadata, layer snapshots, and what `run`, `import`,
//! `images`, `tag`, `rmi` and `image inspect` do with them.
//!
//! - [`reference`](mod@reference): image names, normalized as docker does;
//! - [`config`]: the OCI/Docker formats and Entrypoint/Cmd rules;
//! - [`unpack`]: safe layer extraction with whiteouts;
//! - [`store`]: the name index and the diff-id snapshots;
//! - [`treesum`]: the sum of a snapshot's tree, for `verify`;
//! - [`layers`]: the layers of a container's overlay over an image's
//!   snapshots, and its writable layer;
//! - [`input`]: archives read from a file or stdin;
//! - [`change`]: `import --change`'s Dockerfile instructions.

pub mod archive;
pub mod change;
pub mod config;
pub mod gc;
pub mod input;
pub mod layers;
pub mod limits;
pub mod reference;
pub mod store;
mod sys;
pub mod treesum;
pub mod unpack;

use std::io;
use std::path::{Path, PathBuf};

use config::{ImageConfiguration, MediaType, RunConfig};
use reference::Reference;
pub use store::{Image, Images, short};

use crate::cas::{self, Digest};

/// Errors of the image store and of running from images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Reference(#[from] reference::Error),
    #[error(transparent)]
    Cas(#[from] cas::Error),
    #[error(transparent)]
    Unpack(#[from] unpack::Error),
    #[error("layer {layer}: summing its snapshot: {source}")]
    Sum {
        layer: String,
        source: treesum::Error,
    },
    #[error(transparent)]
    Io(#[from] crate::util::PathIo),
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("{file}: {reason}")]
    Archive { file: PathBuf, reason: String },
    #[error(transparent)]
    Change(#[from] change::Error),
    #[error("interrupted by signal {0}: nothing was stored")]
    Interrupted(i32),
    #[error("No such image: {0}")]
    NotFound(String),
    #[error(
        "conflict: unable to remove repository reference \"{name}\" (must force) - container {container} is using its referenced image {image}"
    )]
    InUse {
        name: String,
        container: String,
        image: String,
    },
    #[error("image id {0:?} is ambiguous: it matches several images")]
    Ambiguous(String),
    #[error("layer {layer}: its content's diff-id is {actual}, the image config says {expected}")]
    DiffIdMismatch {
        layer: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("the image has {layers} layers but its config lists {diff_ids} diff_ids")]
    LayerCount { layers: usize, diff_ids: usize },
    #[error(
        "no command specified: image {0} has no Entrypoint or Cmd (containr run IMAGE COMMAND)"
    )]
    NoCommand(String),
}

use crate::util::{io_err, now, rfc3339};

/// An image found by a name or an id.
pub struct Found {
    /// The index key, when found by name.
    pub name: Option<String>,
    pub image: Image,
}

/// Find an image by reference (`alpine`, `host:5000/a:b`) or by id (a
/// prefix of the config digest, with or without `sha256:`).
pub fn find(images: &Images, name: &str) -> Result<Found, Error> {
    let index = images.index()?;
    if let Ok(r) = Reference::parse(name)
        && let Some(d) = index.get(&r.to_string())
    {
        return Ok(Found {
            name: Some(r.to_string()),
            image: images.load(d)?,
        });
    }
    let id = name.strip_prefix("sha256:").unwrap_or(name);
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut hits: Vec<Image> = Vec::new();
        for d in index.values() {
            let img = images.load(d)?;
            if img.config_digest.hex().starts_with(id)
                && !hits.iter().any(|h| h.config_digest == img.config_digest)
            {
                hits.push(img);
            }
        }
        match hits.len() {
            0 => {}
            1 => {
                return Ok(Found {
                    name: None,
                    image: hits.pop().expect("one"),
                });
            }
            _ => return Err(Error::Ambiguous(name.to_string())),
        }
    }
    // A bad reference that is no id either: say what is wrong with it.
    Reference::parse(name)?;
    Err(Error::NotFound(name.to_string()))
}

/// What `containr run IMAGE` needs from the image.
pub struct RunImage {
    pub name: String,
    /// The image's id (its config's digest).
    pub id: Digest,
    /// Layer snapshots, bottom first.
    pub snapshots: Vec<PathBuf>,
    pub snapshot_base: PathBuf,
    data_root: PathBuf,
    pub config: RunConfig,
    /// The platform its config declares.
    pub platform: config::Platform,
    /// Keeps gc away until the container's writable layer records which
    /// snapshots it uses.
    guard: std::cell::Cell<Option<store::IndexLock>>,
}

/// Find `name` in the store and make sure its layers are unpacked.
/// Layers not yet unpacked leave `reserve` bytes free on the data root.
pub fn for_run(data_root: &Path, name: &str, reserve: u64) -> Result<RunImage, Error> {
    let images = Images::open(data_root)?;
    let guard = images.gc_guard(false)?;
    let found = find(&images, name)?;
    let snapshots = images.snapshots(&found.image, reserve)?;
    Ok(RunImage {
        name: name.to_string(),
        id: found.image.config_digest.clone(),
        snapshots,
        snapshot_base: images.snapshot_dir(),
        data_root: images.data_root().to_path_buf(),
        config: RunConfig {
            oci: found.image.config.config().clone().unwrap_or_default(),
            docker: found.image.docker.clone(),
        },
        platform: config::config_platform(&found.image.config),
        guard: std::cell::Cell::new(Some(guard)),
    })
}

impl RunImage {
    /// The container's argv (docker's Entrypoint/Cmd rules).
    pub fn args(&self, entrypoint: Option<&str>, command: &[String]) -> Result<Vec<String>, Error> {
        config::process_args(&self.config.oci, entrypoint, command)
            .ok_or_else(|| Error::NoCommand(self.name.clone()))
    }

    /// The image's `Env`.
    pub fn env(&self) -> Vec<String> {
        self.config.oci.env().clone().unwrap_or_default()
    }

    /// The image's `User`, if it sets one.
    pub fn user(&self) -> Option<&str> {
        self.config.oci.user().as_deref().filter(|u| !u.is_empty())
    }

    /// The image's `WorkingDir`, if it sets one.
    pub fn workdir(&self) -> Option<&str> {
        self.config
            .oci
            .working_dir()
            .as_deref()
            .filter(|w| !w.is_empty())
    }

    /// The image's `StopSignal`, if it sets one.
    pub fn stop_signal(&self) -> Option<&str> {
        self.config
            .oci
            .stop_signal()
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// The image's `HEALTHCHECK` (docker's), if it has one.
    pub fn healthcheck(&self) -> Option<&config::Healthcheck> {
        self.config.docker.healthcheck.as_ref()
    }

    /// The container's writable layer over this image.
    pub fn rw_layer(&self, id: &str) -> Result<layers::RwLayer, Error> {
        let dir = self.data_root.join("rw").join(id);
        let rw = layers::RwLayer::create(&self.data_root, &self.snapshot_base, id, &self.snapshots)
            .map_err(io_err(&dir))?;
        drop(self.guard.take());
        Ok(rw)
    }
}

/// What `containr import` makes of a root filesystem tarball.
pub struct ImportOptions<'a> {
    pub source: &'a input::Source,
    pub name: &'a str,
    /// The image's config (`--change`).
    pub config: Option<RunConfig>,
    /// The history's comment (`--message`).
    pub message: Option<String>,
    /// Bytes of the data root's filesystem the unpack leaves free.
    pub reserve: u64,
}

/// `containr import FILE|- NAME`: a root filesystem tarball (plain, gzip or
/// zstd) becomes a one-layer image. Returns the image id.
pub fn import(data_root: &Path, opts: ImportOptions<'_>) -> Result<Digest, Error> {
    let reference = Reference::parse(opts.name)?;
    let images = Images::open(data_root)?;
    // Like a pull or a load: a gc must not sweep the blob or the snapshot
    // before the image that names them is in the index.
    let _guard = images.gc_guard(false)?;
    let label = opts.source.label();
    let mut src = opts.source.open().map_err(io_err(label))?;
    let mut w = images.cas.writer(None)?;
    let copied = io::copy(&mut src, &mut w);
    // The default signal actions are back from here on.
    drop(src);
    if let Some(sig) = input::interrupted() {
        return Err(Error::Interrupted(sig));
    }
    copied.map_err(io_err(label))?;
    let blob = w.commit()?;
    let diff_id = match images.unpack_layer(&blob, None, opts.reserve) {
        Ok((diff_id, _)) => diff_id,
        Err(e) => {
            // Leave nothing behind, unless an image already had this layer.
            if !images.referenced().is_ok_and(|(b, _)| b.contains(&blob)) {
                let _ = images.cas.remove(&blob);
            }
            return Err(e);
        }
    };
    let mut head = [0u8; 4];
    let n = io::Read::read(&mut images.cas.open_blob(&blob)?, &mut head).unwrap_or(0);
    let media_type = if head[..n].starts_with(&[0x1f, 0x8b]) {
        MediaType::ImageLayerGzip
    } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        MediaType::ImageLayerZstd
    } else {
        MediaType::ImageLayer
    };
    let platform = config::host_platform();
    let created = rfc3339(now());
    let (run, docker) = match opts.config {
        Some(c) => (Some(c.oci), c.docker),
        None => (None, Default::default()),
    };
    let mut rootfs = config::RootFs::default();
    rootfs.set_diff_ids(vec![diff_id.to_string()]);
    // As docker: the message, or where the tarball came from.
    let mut history = config::History::default();
    history
        .set_created(Some(created.clone()))
        .set_comment(Some(opts.message.unwrap_or_else(|| match opts.source {
            input::Source::Stdin => "Imported from -".into(),
            input::Source::File(p) => format!("Imported from {}", p.display()),
        })));
    let mut image_config = ImageConfiguration::default();
    image_config
        .set_architecture(platform.architecture().clone())
        .set_os(platform.os().clone())
        .set_variant(platform.variant().clone())
        .set_created(Some(created))
        .set_config(run)
        .set_rootfs(rootfs)
        .set_history(Some(vec![history]));
    let layer = config::descriptor(media_type, &blob, images.cas.size(&blob)?);
    store_image(
        &images,
        None,
        (&image_config, &docker),
        vec![layer],
        Some(&reference),
    )
}

/// Store an image's config (over the fields of `base`'s, see
/// [`config::config_bytes`]) and manifest (over `layers`, already stored)
/// and name it `name`, or list it unnamed (`<none>`): what `import` and
/// `commit` end with. Returns the image id.
fn store_image(
    images: &Images,
    base: Option<&[u8]>,
    (image_config, docker): (&ImageConfiguration, &config::DockerConfig),
    layers: Vec<config::Descriptor>,
    name: Option<&Reference>,
) -> Result<Digest, Error> {
    let config_bytes = config::config_bytes(base, image_config, docker);
    let config_digest = images.cas.put(&config_bytes)?;
    let manifest = config::manifest(
        config::descriptor(
            MediaType::ImageConfig,
            &config_digest,
            config_bytes.len() as u64,
        ),
        layers,
    );
    // Through a `Value`: its keys sorted (oci-spec's annotations are a
    // HashMap), so the same manifest is the same bytes.
    let manifest = serde_json::to_value(&manifest).expect("plain data");
    let manifest_digest = images
        .cas
        .put(&serde_json::to_vec(&manifest).expect("plain data"))?;
    images.update(|index| {
        let key = match name {
            Some(r) => r.to_string(),
            None => store::unnamed_key(&config_digest),
        };
        index.insert(key, manifest_digest);
        Ok(())
    })?;
    Ok(config_digest)
}

/// What `containr commit` makes an image of: a container's writable layer
/// over the image it runs.
pub struct CommitOptions<'a> {
    /// The id of the container's image.
    pub base: &'a str,
    /// The new image's name; unnamed (`<none>`) if none.
    pub name: Option<&'a str>,
    /// The container's process, as the new image's defaults (before
    /// `changes`), as docker's commit takes the container's config.
    pub config: RunConfig,
    pub changes: &'a [String],
    pub message: Option<String>,
    pub author: Option<String>,
    /// The history's `created_by`: the container's command.
    pub created_by: String,
    /// Bytes of the data root's filesystem the layer's snapshot leaves
    /// free.
    pub reserve: u64,
}

/// `containr commit`: the base image plus one layer, the tar `write_layer`
/// writes (the writable layer, its whiteouts as `.wh.` entries); its
/// snapshot is made so the image runs at once. Returns the image id.
pub fn commit(
    data_root: &Path,
    opts: CommitOptions<'_>,
    write_layer: impl FnOnce(&mut dyn io::Write) -> Result<(), Error>,
) -> Result<Digest, Error> {
    let reference = opts.name.map(Reference::parse).transpose()?;
    let config = change::apply(opts.config, opts.changes)?;
    let images = Images::open(data_root)?;
    let _guard = images.gc_guard(false)?;
    let base = find(&images, opts.base)?.image;
    let mut w = images.cas.writer(None)?;
    write_layer(&mut w)?;
    let blob = w.commit()?;
    let diff_id = match images.unpack_layer(&blob, None, opts.reserve) {
        Ok((diff_id, _)) => diff_id,
        Err(e) => {
            if !images.referenced().is_ok_and(|(b, _)| b.contains(&blob)) {
                let _ = images.cas.remove(&blob);
            }
            return Err(e);
        }
    };
    let created = rfc3339(now());
    let mut image_config = base.config.clone();
    let mut diff_ids = base.diff_ids.clone();
    diff_ids.push(diff_id);
    let mut rootfs = config::RootFs::default();
    rootfs.set_diff_ids(diff_ids.iter().map(Digest::to_string).collect());
    let mut step = config::History::default();
    step.set_created(Some(created.clone()))
        .set_created_by(Some(opts.created_by))
        .set_comment(opts.message);
    let mut history = image_config.history().clone().unwrap_or_default();
    history.push(step);
    image_config
        .set_created(Some(created))
        .set_author(opts.author)
        .set_config(Some(config.oci))
        .set_rootfs(rootfs)
        .set_history(Some(history));
    let mut layers = base.manifest.layers().clone();
    layers.push(config::descriptor(
        MediaType::ImageLayer,
        &blob,
        images.cas.size(&blob)?,
    ));
    store_image(
        &images,
        Some(&base.raw_config),
        (&image_config, &config.docker),
        layers,
        reference.as_ref(),
    )
}

/// `containr tag SOURCE TARGET`.
pub fn tag(data_root: &Path, source: &str, target: &str) -> Result<(), Error> {
    let images = Images::open(data_root)?;
    let target = Reference::parse(target)?;
    let found = find(&images, source)?;
    let manifest = found.image.manifest_digest;
    images.update(|index| {
        index.insert(target.to_string(), manifest);
        // Named now: no longer `<none>`, as in docker.
        index.remove(&store::unnamed_key(&found.image.config_digest));
        Ok(())
    })
}

/// `containr rmi NAME...`: remove names (an id removes every name of that
/// image). Blobs and snapshots stay until `containr gc`. Returns the names
/// removed.
///
/// `used_by(image id)` names a container using the image, if one does:
/// removing the image's last name is then refused, as docker refuses it
/// unless forced (pass `|_| None`). Its layers would stay anyway (gc keeps
/// what containers use); the refusal keeps `containr images` honest.
pub fn remove(
    data_root: &Path,
    name: &str,
    used_by: impl Fn(&Digest) -> Option<String>,
) -> Result<Vec<String>, Error> {
    let images = Images::open(data_root)?;
    let _lock = images.lock()?;
    let found = find(&images, name)?;
    let id = &found.image.config_digest;
    images.update_locked(|index| {
        let gone: Vec<String> = match found.name {
            Some(n) => vec![n],
            None => {
                let mut names = Vec::new();
                for (k, d) in index.iter() {
                    if images
                        .load(d)
                        .is_ok_and(|i| i.config_digest == found.image.config_digest)
                    {
                        names.push(k.clone());
                    }
                }
                names
            }
        };
        let last = index
            .iter()
            .all(|(k, d)| gone.contains(k) || images.load(d).is_ok_and(|i| &i.config_digest != id));
        if last && let Some(container) = used_by(id) {
            return Err(Error::InUse {
                name: name.to_string(),
                container,
                image: store::short(id),
            });
        }
        for n in &gone {
            index.remove(n);
        }
        Ok(gone)
    })
}

/// One row of `containr images`.
pub struct Row {
    pub repository: String,
    pub tag: String,
    pub id: Digest,
    pub created: Option<String>,
    /// Sum of the layers' (compressed) sizes.
    pub size: u64,
}

pub fn list(data_root: &Path) -> Result<Vec<Row>, Error> {
    let images = Images::open(data_root)?;
    let mut rows = Vec::new();
    for (name, digest) in images.index()? {
        let img = images.load(&digest)?;
        let (repository, tag) = match Reference::parse(&name) {
            Ok(r) => (
                r.familiar_repository(),
                r.tag.clone().unwrap_or_else(|| "<none>".into()),
            ),
            Err(_) if store::is_unnamed(&name) => ("<none>".into(), "<none>".into()),
            Err(_) => (name.clone(), "<none>".into()),
        };
        rows.push(Row {
            repository,
            tag,
            id: img.config_digest.clone(),
            created: img.config.created().clone(),
            size: img.manifest.layers().iter().map(|l| l.size()).sum(),
        });
    }
    Ok(rows)
}

/// `containr image inspect NAME`: docker's main fields, as JSON.
pub fn inspect(data_root: &Path, name: &str) -> Result<serde_json::Value, Error> {
    let images = Images::open(data_root)?;
    let found = find(&images, name)?;
    let img = found.image;
    let tags: Vec<String> = images
        .index()?
        .iter()
        .filter(|(k, d)| {
            !store::is_unnamed(k)
                && images
                    .load(d)
                    .is_ok_and(|i| i.config_digest == img.config_digest)
        })
        .map(|(k, _)| k.clone())
        .collect();
    // `Config` as stored: docker's fields (Healthcheck, Shell, ...) too.
    let run = serde_json::from_slice::<serde_json::Value>(&img.raw_config)
        .ok()
        .and_then(|mut v| v.get_mut("config").map(serde_json::Value::take))
        .filter(|c| !c.is_null())
        .unwrap_or_else(|| serde_json::json!({}));
    Ok(serde_json::json!({
        "Id": img.config_digest.to_string(),
        "RepoTags": tags,
        "ManifestDigest": img.manifest_digest.to_string(),
        "Created": img.config.created(),
        "Comment": img.config.history().iter().flatten().last().and_then(|h| h.comment().clone()).unwrap_or_default(),
        "Architecture": img.config.architecture(),
        "Os": img.config.os(),
        "Variant": img.config.variant(),
        "Config": run,
        "RootFS": {
            "Type": img.config.rootfs().typ(),
            "Layers": img.diff_ids,
        },
        "Size": img.manifest.layers().iter().map(|l| l.size()).sum::<u64>(),
        "Layers": img.manifest.layers(),
    }))
}
