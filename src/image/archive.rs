//! Images as tar files, for boxes without a registry: `containr load`
//! reads what `docker save` writes (a docker-archive, `manifest.json`) and
//! OCI image layouts (`index.json`); `containr save` writes a tar that is
//! both, so docker, podman, skopeo and containr all load it.
//!
//! Loading streams the tar once: every file is hashed into the blob store
//! as it is read (blobs named by digest are checked against it), so a tar
//! whose blobs do not match their names stores nothing; the small JSON
//! files are kept in memory. Names are recorded only once every image in
//! the tar is whole.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use super::config::{self, ImageIndex, ImageManifest, Kind, MediaType};
use super::input::Source;
use super::reference::Reference;
use super::{Error, Images, find, io_err, limits, store};
use crate::cas::{Digest, Expected};

/// JSON files larger than this are not metadata: the largest a pull
/// accepts, an image config.
const JSON_LIMIT: u64 = limits::CONFIG_LIMIT;

/// What a tar held, by path.
#[derive(Default)]
struct Contents {
    /// Small metadata files (JSON and the like), by path.
    json: BTreeMap<String, Vec<u8>>,
    /// Every other file, stored as a blob, by path.
    blobs: BTreeMap<String, (Digest, u64)>,
}

fn bad(file: &Path, reason: impl Into<String>) -> Error {
    Error::Archive {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_contents(
    images: &Images,
    source: &Source,
    stored: &mut Vec<Digest>,
) -> Result<Contents, Error> {
    let file = source.label();
    let f = source.open().map_err(io_err(file))?;
    let reader = super::unpack::decompress(f).map_err(io_err(file))?;
    let mut archive = tar::Archive::new(reader);
    let mut c = Contents::default();
    for entry in archive.entries().map_err(io_err(file))? {
        let mut entry = entry.map_err(io_err(file))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes())
            .trim_start_matches("./")
            .to_string();
        let size = entry.size();
        // Blobs are under blobs/ (OCI, docker 25+) or layer tars (older
        // docker-archives); the rest is small metadata (`index.json`,
        // `oci-layout`, `repositories`...), kept in memory, never stored.
        let is_blob = path.starts_with("blobs/") || path.ends_with(".tar");
        if !is_blob {
            if size > JSON_LIMIT {
                return Err(bad(file, format!("{path}: unexpected {size}-byte file")));
            }
            let mut b = Vec::new();
            entry.read_to_end(&mut b).map_err(io_err(file))?;
            c.json.insert(path, b);
            continue;
        }
        // `blobs/sha256/<hex>` is named by its digest: check it.
        let expected = path
            .strip_prefix("blobs/sha256/")
            .and_then(|h| Digest::from_hex(h).ok())
            .map(|digest| Expected { digest, size });
        let mut w = images.cas.writer(expected)?;
        io::copy(&mut entry, &mut w).map_err(|e| bad(file, format!("{path}: {e}")))?;
        let digest = w.commit().map_err(|e| bad(file, format!("{path}: {e}")))?;
        stored.push(digest.clone());
        c.blobs.insert(path, (digest, size));
    }
    Ok(c)
}

impl Contents {
    /// Make a small JSON file a blob too (docker-archive configs are
    /// `<hex>.json`; OCI ones are under `blobs/`); returns its digest.
    fn store_json(&self, images: &Images, path: &str) -> Result<Option<Digest>, Error> {
        match (self.json.get(path), self.blobs.get(path)) {
            (Some(b), _) => Ok(Some(images.cas.put(b)?)),
            (None, Some((d, _))) => Ok(Some(d.clone())),
            _ => Ok(None),
        }
    }
}

/// An image `load` stored: by name, or by id when the archive gave it
/// none (`skopeo copy … docker-archive:FILE` writes `"RepoTags": []`).
#[derive(Debug, PartialEq)]
pub enum Loaded {
    Name(String),
    Id(Digest),
}

/// `containr load [-i FILE|-]`: the images loaded; their layers are
/// unpacked leaving `reserve` bytes of the data root's filesystem free.
pub fn load(data_root: &Path, source: &Source, reserve: u64) -> Result<Vec<Loaded>, Error> {
    let images = Images::open(data_root)?;
    let _guard = images.gc_guard(false)?;
    let mut stored = Vec::new();
    let before: std::collections::BTreeSet<String> = std::fs::read_dir(images.snapshot_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let result = load_stored(&images, source, &mut stored, reserve);
    if result.is_err() {
        // Snapshots this load unpacked: those that were not there before.
        let new_snapshots: Vec<Digest> = std::fs::read_dir(images.snapshot_dir())
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str().map(str::to_string))
                    .filter(|n| !before.contains(n))
                    .filter_map(|n| Digest::from_hex(&n).ok())
                    .collect()
            })
            .unwrap_or_default();
        images.take_back(&stored, &new_snapshots);
    }
    result
}

fn load_stored(
    images: &Images,
    source: &Source,
    stored: &mut Vec<Digest>,
    reserve: u64,
) -> Result<Vec<Loaded>, Error> {
    let file = source.label();
    let contents = read_contents(images, source, stored);
    if let Some(sig) = super::input::interrupted() {
        return Err(Error::Interrupted(sig));
    }
    let contents = contents?;
    let mut named: Vec<(Option<String>, Digest)> = Vec::new();
    if let Some(manifest_json) = contents.json.get("manifest.json") {
        named.extend(load_docker(images, file, &contents, manifest_json, stored)?);
    } else if let Some(index) = contents.json.get("index.json") {
        named.extend(load_oci(images, file, index)?);
    } else {
        return Err(bad(
            file,
            "neither manifest.json (docker save) nor index.json (OCI layout)",
        ));
    }
    if named.is_empty() {
        return Err(bad(file, "no image in it"));
    }
    let mut ids = Vec::new();
    for (_, manifest) in &named {
        within_limits(images, file, manifest)?;
        let img = images.load(manifest)?;
        images.snapshots(&img, reserve)?;
        ids.push(img.config_digest);
    }
    images.update(|index| {
        let mut out = Vec::new();
        for ((name, manifest), id) in named.iter().zip(&ids) {
            let unnamed = store::unnamed_key(id);
            match name {
                Some(name) => {
                    index.insert(name.clone(), manifest.clone());
                    index.remove(&unnamed);
                    out.push(Loaded::Name(name.clone()));
                }
                None => {
                    // As docker: an image that has a name keeps it and
                    // gets no `<none>` entry.
                    let has_name = index.iter().any(|(k, d)| {
                        !store::is_unnamed(k)
                            && images.load(d).is_ok_and(|i| &i.config_digest == id)
                    });
                    if !has_name && !index.contains_key(&unnamed) {
                        index.insert(unnamed, manifest.clone());
                    }
                    if !out.contains(&Loaded::Id(id.clone())) {
                        out.push(Loaded::Id(id.clone()));
                    }
                }
            }
        }
        Ok(out)
    })
}

/// Refuse the blob `digest` if it is over `limit` bytes, before it is
/// read whole into memory.
fn not_over(
    images: &Images,
    file: &Path,
    digest: &Digest,
    what: &str,
    limit: u64,
) -> Result<(), Error> {
    let size = images.cas.size(digest)?;
    if size > limit {
        return Err(bad(
            file,
            format!(
                "{what} {digest} is {}, more than the {} a pull or load accepts",
                limits::bytes(size),
                limits::bytes(limit)
            ),
        ));
    }
    Ok(())
}

/// The limits a pull applies, applied to an image from an archive before
/// anything of it is unpacked: its manifest's and config's sizes and its
/// number of layers.
fn within_limits(images: &Images, file: &Path, manifest: &Digest) -> Result<(), Error> {
    not_over(images, file, manifest, "manifest", limits::MANIFEST_LIMIT)?;
    let m: ImageManifest = store::parse_json(&images.cas.read(manifest)?, "manifest")?;
    let config = config::digest_of(m.config())?;
    not_over(images, file, &config, "config", limits::CONFIG_LIMIT)?;
    if m.layers().len() > limits::MAX_LAYERS {
        return Err(bad(
            file,
            format!(
                "manifest {manifest}: {} layers, more than the {} an image may have (docker's limit)",
                m.layers().len(),
                limits::MAX_LAYERS
            ),
        ));
    }
    Ok(())
}

/// docker-archive: `manifest.json` lists each image's config file, layer
/// files (uncompressed tars) and names.
fn load_docker(
    images: &Images,
    file: &Path,
    contents: &Contents,
    manifest_json: &[u8],
    stored: &mut Vec<Digest>,
) -> Result<Vec<(Option<String>, Digest)>, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        #[serde(default)]
        repo_tags: Option<Vec<String>>,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(manifest_json)
        .map_err(|e| bad(file, format!("manifest.json: {e}")))?;
    let mut out = Vec::new();
    for e in entries {
        let config_digest = contents
            .store_json(images, &e.config)?
            .ok_or_else(|| bad(file, format!("{} is missing", e.config)))?;
        stored.push(config_digest.clone());
        let config_size = images.cas.size(&config_digest)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let (digest, size) = contents
                .blobs
                .get(l)
                .cloned()
                .ok_or_else(|| bad(file, format!("layer {l} is missing")))?;
            layers.push(config::descriptor(MediaType::ImageLayer, &digest, size));
        }
        let manifest = config::manifest(
            config::descriptor(MediaType::ImageConfig, &config_digest, config_size),
            layers,
        );
        let digest = images
            .cas
            .put(&serde_json::to_vec(&manifest).expect("plain data"))?;
        stored.push(digest.clone());
        let tags = e.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            out.push((None, digest.clone()));
        }
        for tag in tags {
            out.push((Some(Reference::parse(&tag)?.to_string()), digest.clone()));
        }
    }
    Ok(out)
}

/// OCI layout: `index.json` names manifests (or indexes) by annotation;
/// one without a name is loaded unnamed.
fn load_oci(
    images: &Images,
    file: &Path,
    index: &[u8],
) -> Result<Vec<(Option<String>, Digest)>, Error> {
    let index: ImageIndex =
        config::parse(index).map_err(|e| bad(file, format!("index.json: {e}")))?;
    let mut out = Vec::new();
    for desc in index.manifests() {
        let annotation = |key| desc.annotations().as_ref().and_then(|a| a.get(key));
        let name = annotation("io.containerd.image.name")
            .or_else(|| annotation("org.opencontainers.image.ref.name"));
        let mut manifest = config::digest_of(desc)?;
        not_over(images, file, &manifest, "manifest", limits::MANIFEST_LIMIT)?;
        let bytes = images.cas.read(&manifest)?;
        let v: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| bad(file, format!("{manifest}: {e}")))?;
        let kind = match v.get("mediaType").and_then(|m| m.as_str()) {
            Some(m) => config::kind_of(&MediaType::from(m)),
            None => config::kind_of(desc.media_type()),
        };
        if kind == Some(Kind::Index) {
            let inner: ImageIndex =
                config::parse(&bytes).map_err(|e| bad(file, format!("{manifest}: {e}")))?;
            let d = config::select_platform(&inner, &config::host_platform()).ok_or_else(|| {
                let what = name.map_or(desc.digest().to_string(), String::clone);
                bad(file, format!("{what}: no image for this platform"))
            })?;
            manifest = config::digest_of(d)?;
        }
        let name = name.map(|n| Reference::parse(n)).transpose()?;
        out.push((name.map(|r| r.to_string()), manifest));
    }
    Ok(out)
}

/// `containr save -o FILE IMAGE...`: an OCI layout with docker's
/// `manifest.json` beside it.
pub fn save(data_root: &Path, names: &[String], out: &mut dyn Write) -> Result<(), Error> {
    let images = Images::open(data_root)?;
    let mut builder = tar::Builder::new(out);
    let mut index = Vec::new();
    let mut docker = Vec::new();
    let mut written = std::collections::BTreeSet::new();
    let io = |e: io::Error| Error::from(crate::util::io_err(Path::new("save"))(e));
    for name in names {
        let found = find(&images, name)?;
        let img = found.image;
        let full = found
            .name
            .clone()
            .unwrap_or_else(|| img.config_digest.to_string());
        let mut blobs = vec![img.manifest_digest.clone(), img.config_digest.clone()];
        blobs.extend(img.layers.iter().cloned());
        for b in blobs {
            if written.insert(b.clone()) {
                let mut h = tar::Header::new_gnu();
                h.set_size(images.cas.size(&b)?);
                h.set_mode(0o644);
                h.set_mtime(0);
                h.set_entry_type(tar::EntryType::Regular);
                builder
                    .append_data(
                        &mut h,
                        format!("blobs/sha256/{}", b.hex()),
                        images.cas.open_blob(&b)?,
                    )
                    .map_err(io)?;
            }
        }
        let mut annotations = BTreeMap::new();
        if found.name.is_some() {
            annotations.insert("io.containerd.image.name".to_string(), full.clone());
            if let Ok(r) = Reference::parse(&full)
                && let Some(t) = r.tag
            {
                annotations.insert("org.opencontainers.image.ref.name".to_string(), t);
            }
        }
        index.push(serde_json::json!({
            "mediaType": MediaType::ImageManifest,
            "digest": img.manifest_digest,
            "size": images.cas.size(&img.manifest_digest)?,
            "annotations": annotations,
        }));
        docker.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", img.config_digest.hex()),
            "RepoTags": found.name.map(|n| vec![n]).unwrap_or_default(),
            "Layers": img.layers.iter().map(|l| format!("blobs/sha256/{}", l.hex())).collect::<Vec<_>>(),
        }));
    }
    let files = [
        ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        (
            "index.json",
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": index}))
                .expect("plain data"),
        ),
        (
            "manifest.json",
            serde_json::to_vec(&docker).expect("plain data"),
        ),
    ];
    for (path, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut h, path, &bytes[..]).map_err(io)?;
    }
    builder.into_inner().and_then(|w| w.flush()).map_err(io)?;
    Ok(())
}
