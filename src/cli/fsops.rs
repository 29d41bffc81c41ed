//! The commands on a container's filesystem and record: `cp`, `diff`,
//! `commit`, `port`, `rename`. Their errors end with status 1, as docker's
//! client ends these commands (125 is for a runtime that failed to run a
//! container).

use std::path::{Path, PathBuf};

use containr::container::state::DataRoot;
use containr::container::{commit as commits, copy, diff as diffs, lifecycle};
use containr::network::ports::PortSpec;

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
pub fn cp(
    root: &Path,
    src: &str,
    dest: &str,
    archive: bool,
    follow: bool,
    reserve: u64,
) -> Result<i32, Error> {
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
            copy::copy_out(root, &s, &path, follow, archive, &to, reserve).map_err(from)?;
        }
        (End::Stream, End::Container(name, path)) => {
            let s = lifecycle::lookup(root, &name)?;
            let mut input = std::io::stdin().lock();
            copy::copy_in_tar(root, &s, &mut input, &path, archive, reserve).map_err(from)?;
        }
        (End::Host(from_path), End::Container(name, path)) => {
            let s = lifecycle::lookup(root, &name)?;
            copy::copy_in(root, &s, &from_path, follow, archive, &path, reserve).map_err(from)?;
        }
        _ => return Err(usage()),
    }
    Ok(0)
}

fn from(e: copy::Error) -> Error {
    Error::Container(e.into())
}

/// `containr diff CONTAINER`: `A`/`C`/`D` and the path, one a line.
pub fn diff(root: &Path, name: &str) -> Result<i32, Error> {
    require_root("diff")?;
    let s = lifecycle::lookup(root, name)?;
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for c in diffs::diff(root, &s)? {
        let _ = writeln!(out, "{} {}", c.kind.letter(), c.path);
    }
    Ok(0)
}

/// `containr commit`: prints the new image's id.
pub fn commit(root: &Path, container: &str, opts: commits::Options<'_>) -> Result<i32, Error> {
    require_root("commit")?;
    let s = lifecycle::lookup(root, container)?;
    let id = commits::commit(root, &s, opts)?;
    println!("{id}");
    Ok(0)
}

/// `containr port CONTAINER [PRIVATE[/PROTO]]`: docker's lines,
/// `80/tcp -> 0.0.0.0:8080`, or the public addresses of one port. A
/// container that is not running publishes nothing.
pub fn port(root: &Path, name: &str, private: Option<&str>) -> Result<i32, Error> {
    let s = lifecycle::lookup(root, name)?;
    let ports: &[PortSpec] = if s.is_running() { &s.ports } else { &[] };
    let lines = port_lines(ports, private).ok_or_else(|| {
        Error::Usage(format!(
            "No public port '{}' published for {name}",
            with_proto(private.unwrap_or_default())
        ))
    })?;
    for l in lines {
        println!("{l}");
    }
    Ok(0)
}

/// `80` is `80/tcp`, as docker reads it.
fn with_proto(p: &str) -> String {
    if p.contains('/') {
        p.to_string()
    } else {
        format!("{p}/tcp")
    }
}

/// The lines `port` prints; `None` when the one port asked for is not
/// published.
fn port_lines(ports: &[PortSpec], private: Option<&str>) -> Option<Vec<String>> {
    let public = |p: &PortSpec| format!("{}:{}", p.host_ip, p.host_port);
    let private_of = |p: &PortSpec| format!("{}/{}", p.ctr_port, p.proto);
    let mut sorted = ports.to_vec();
    sorted.sort_by_key(|p| (p.ctr_port, p.proto.to_string(), p.host_port));
    match private {
        None => Some(
            sorted
                .iter()
                .map(|p| format!("{} -> {}", private_of(p), public(p)))
                .collect(),
        ),
        Some(want) => {
            let want = with_proto(want);
            let lines: Vec<String> = sorted
                .iter()
                .filter(|p| private_of(p) == want)
                .map(public)
                .collect();
            (!lines.is_empty()).then_some(lines)
        }
    }
}

/// `containr rename OLD NEW`.
pub fn rename(root: &Path, old: &str, new: &str) -> Result<i32, Error> {
    DataRoot::open(root)?.rename(old, new)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_print_as_docker() {
        let p: Vec<PortSpec> = ["8080:80", "127.0.0.1:5353:53/udp", "8443:443"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(
            port_lines(&p, None).unwrap(),
            [
                "53/udp -> 127.0.0.1:5353",
                "80/tcp -> 0.0.0.0:8080",
                "443/tcp -> 0.0.0.0:8443"
            ]
        );
        assert_eq!(port_lines(&p, Some("80")).unwrap(), ["0.0.0.0:8080"]);
        assert_eq!(port_lines(&p, Some("53/udp")).unwrap(), ["127.0.0.1:5353"]);
        assert_eq!(port_lines(&p, Some("53")), None);
    }

    #[test]
    fn container_paths_are_name_colon_path() {
        assert_eq!(end("c1:/etc"), End::Container("c1".into(), "/etc".into()));
        assert_eq!(end("./a:b"), End::Host("./a:b".into()));
        assert_eq!(end("/x:y"), End::Host("/x:y".into()));
        assert_eq!(end("-"), End::Stream);
        assert_eq!(end("plain"), End::Host("plain".into()));
    }
}
