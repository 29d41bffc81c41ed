//! The commands on a container's filesystem and record: `cp`, `diff`,
//! `commit`, `port`, `rename`.

use std::path::{Path, PathBuf};

use containr::container::{copy, lifecycle};

use super::require_root;
use crate::error::Error;

/// One side of `cp`: a path in a container, a host path, or `-` (a tar
/// stream).
#[derive(Debug, PartialEq, Eq)]
enum End {
    Container(String, String),
    Host(PathBuf),
    Stream,
}

/// docker's rule: `NAME:PATH` is in a container when the colon comes
/// before any slash; a host path with a colon is written `./a:b`.
fn end(arg: &str) -> End {
    if arg == "-" {
        return End::Stream;
    }
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() && !name.contains('/') => {
            End::Container(name.to_string(), path.to_string())
        }
        _ => End::Host(PathBuf::from(arg)),
    }
}

/// `containr cp [-a] [-L] SRC DEST`.
pub fn cp(root: &Path, src: &str, dest: &str, archive: bool, follow: bool) -> Result<i32, Error> {
    require_root("cp")?;
    let usage = || {
        Error::Usage(
            "cp: one of SRC and DEST must be CONTAINER:PATH, the other a local path or -".into(),
        )
    };
    match (end(src), end(dest)) {
        (End::Container(name, path), End::Stream) => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                return Err(Error::Usage(
                    "refusing to write a tar to a terminal: use a redirect".into(),
                ));
            }
            let s = lifecycle::lookup(root, &name)?;
            let mut out = std::io::stdout().lock();
            copy::copy_out_tar(root, &s, &path, follow, &mut out).map_err(from)?;
        }
        (End::Container(name, path), End::Host(to)) => {
            let s = lifecycle::lookup(root, &name)?;
            copy::copy_out(root, &s, &path, follow, archive, &to).map_err(from)?;
        }
        (End::Stream, End::Container(name, path)) => {
            let s = lifecycle::lookup(root, &name)?;
            let mut input = std::io::stdin().lock();
            copy::copy_in_tar(root, &s, &mut input, &path, archive).map_err(from)?;
        }
        (End::Host(from_path), End::Container(name, path)) => {
            let s = lifecycle::lookup(root, &name)?;
            copy::copy_in(root, &s, &from_path, follow, archive, &path).map_err(from)?;
        }
        _ => return Err(usage()),
    }
    Ok(0)
}

fn from(e: copy::Error) -> Error {
    Error::Container(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_name_colon_path() {
        assert_eq!(end("c1:/etc"), End::Container("c1".into(), "/etc".into()));
        assert_eq!(end("./a:b"), End::Host("./a:b".into()));
        assert_eq!(end("/x:y"), End::Host("/x:y".into()));
        assert_eq!(end("-"), End::Stream);
        assert_eq!(end("plain"), End::Host("plain".into()));
    }
}
