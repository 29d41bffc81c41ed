//! `containr commit CONTAINER [REPO[:TAG]]`: a new image from a
//! container's writable layer over its image.
//!
//! The layer is the overlay's upper directory written as a tar by the
//! shared tar writer (`export`), its whiteouts and opaque directories as
//! the OCI layer's `.wh.` entries; the image store adds it over the base
//! image's layers (`image::commit`). The config is the base image's, with
//! the container's command as its default (docker's commit takes the
//! container's config), then the `--change` instructions.
//!
//! A running container is frozen (`pause`'s freezer) while its layer is
//! read, as docker's `commit --pause` does, so that the layer is one moment
//! of it, not files caught halfway through being written; only while it is
//! read, not while the image store's locks are waited for or the layer is
//! unpacked. A container paused already is left paused.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;

use super::Error;
use super::export::{TarOptions, append_children, open_path};
use super::state::State;
use crate::cas::Digest;
use crate::image::{self, config::RunConfig};
use crate::util::io_err;

/// What `commit` takes besides the container.
pub struct Options<'a> {
    pub name: Option<&'a str>,
    pub changes: &'a [String],
    pub message: Option<String>,
    pub author: Option<String>,
    /// Freeze a running container while its layer is read.
    pub pause: bool,
    pub reserve: u64,
}

/// Commit container `s`; the new image's id.
pub fn commit(data_root: &Path, s: &State, opts: Options<'_>) -> Result<Digest, Error> {
    let base = s
        .image_id
        .as_deref()
        .ok_or_else(|| Error::NoWritableLayer(s.name.clone()))?;
    let rw = data_root.join("rw").join(&s.id);
    let layers = image::layers::view(data_root, &s.id)
        .map_err(io_err(&rw))?
        .ok_or_else(|| Error::NoWritableLayer(s.name.clone()))?;
    let base_config = {
        let images = image::Images::open(data_root)?;
        let image = image::find(&images, base)?.image;
        RunConfig {
            oci: image.config.config().clone().unwrap_or_default(),
            docker: image.docker,
        }
    };
    let upper = open_path(&layers[0]).map_err(io_err(&layers[0]))?;
    let lower = super::diff::Lower::open(&layers[1..]).map_err(io_err(&rw))?;
    let skip = |rel: &Path, meta: &std::fs::Metadata| lower.is_mount_point(rel, meta);
    let userns = s.userns;
    let ids = move |id: u64| userns.map_or(id, |m| m.to_container(id));
    // Why the freeze failed, if it did: the image store only passes its
    // own errors back.
    let mut not_frozen = None;
    let write_layer = |out: &mut dyn Write| -> Result<(), image::Error> {
        let frozen = match opts.pause.then(|| super::pause::freeze_while(s)) {
            Some(Err(e)) => {
                not_frozen = Some(e);
                let why = std::io::Error::other("the container could not be frozen");
                return Err(image::Error::Io(io_err(&layers[0])(why)));
            }
            Some(Ok(frozen)) => frozen,
            None => None,
        };
        let mut b = tar::Builder::new(out);
        let opts = TarOptions {
            ids: &ids,
            whiteouts: true,
            skip: Some(&skip),
            links: Default::default(),
        };
        append_children(&mut b, upper.as_fd(), Path::new(""), &opts).map_err(|e| match e {
            Error::Io(e) => image::Error::Io(e),
            other => image::Error::Io(io_err(&layers[0])(std::io::Error::other(other.to_string()))),
        })?;
        // Read whole (or failed): the container runs again.
        drop(frozen);
        b.into_inner()
            .and_then(|w| w.flush())
            .map_err(io_err(&layers[0]))?;
        Ok(())
    };
    let id = image::commit(
        data_root,
        image::CommitOptions {
            base,
            name: opts.name,
            config: with_command(base_config, &s.command),
            changes: opts.changes,
            message: opts.message,
            author: opts.author,
            created_by: s.command.join(" "),
            reserve: opts.reserve,
        },
        write_layer,
    );
    match (id, not_frozen) {
        (Err(_), Some(e)) => Err(e),
        (id, _) => Ok(id?),
    }
}

/// The image's config with the container's command as its default: the
/// image's entrypoint kept when the command starts with it, the command
/// the rest; otherwise the whole command is the `Cmd`.
fn with_command(mut config: RunConfig, command: &[String]) -> RunConfig {
    if command.is_empty() {
        return config;
    }
    let c = &mut config.oci;
    let ep = c.entrypoint().clone().unwrap_or_default();
    if !ep.is_empty() && command.starts_with(&ep) {
        c.set_cmd(Some(command[ep.len()..].to_vec()));
    } else {
        c.set_entrypoint(None).set_cmd(Some(command.to_vec()));
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn the_command_becomes_the_default() {
        let mut c = RunConfig::default();
        c.oci
            .set_entrypoint(Some(v(&["/init"])))
            .set_cmd(Some(v(&["serve"])));
        c.docker.shell = Some(v(&["/bin/bash", "-c"]));
        let kept = with_command(c.clone(), &v(&["/init", "debug"]));
        assert_eq!(*kept.oci.entrypoint(), Some(v(&["/init"])));
        assert_eq!(*kept.oci.cmd(), Some(v(&["debug"])));
        assert_eq!(kept.docker, c.docker, "docker's fields are kept");
        let other = with_command(c.clone(), &v(&["sh", "-c", "x"]));
        assert_eq!(*other.oci.entrypoint(), None);
        assert_eq!(*other.oci.cmd(), Some(v(&["sh", "-c", "x"])));
        assert_eq!(with_command(c.clone(), &[]).oci.cmd(), c.oci.cmd());
    }
}
