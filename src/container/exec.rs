//! Finding the command inside the container, and docker's exit codes for
//! when it cannot be run: 127 when it does not exist, 126 when it exists
//! but cannot be executed.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Docker's exit code: the command was not found.
pub const NOT_FOUND: i32 = 127;
/// Docker's exit code: the command exists but cannot be executed.
pub const CANNOT_EXECUTE: i32 = 126;

/// Why the command cannot be run, with the exit code it maps to.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotInPath(String),
    #[error("exec: {0:?}: no such file or directory")]
    NoSuchFile(String),
    #[error("exec: {0:?}: permission denied")]
    PermissionDenied(String),
    #[error("exec: {0:?}: is a directory")]
    IsDirectory(String),
    #[error("exec: {path:?}: {reason}")]
    Other { path: String, reason: String },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotInPath(_) | Error::NoSuchFile(_) => NOT_FOUND,
            _ => CANNOT_EXECUTE,
        }
    }

    /// Classify a failed `execve(path)`.
    pub fn from_errno(path: &str, errno: i32) -> Error {
        match errno {
            libc::ENOENT | libc::ENOTDIR => Error::NoSuchFile(path.to_string()),
            libc::EACCES | libc::EPERM => Error::PermissionDenied(path.to_string()),
            libc::EISDIR => Error::IsDirectory(path.to_string()),
            _ => Error::Other {
                path: path.to_string(),
                reason: nix::errno::Errno::from_raw(errno).desc().to_lowercase(),
            },
        }
    }
}

/// What `stat` says about a candidate path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate {
    Missing,
    Directory,
    /// A file with no execute bit for anyone.
    NotExecutable,
    Executable,
}

fn inspect(path: &Path) -> Candidate {
    match std::fs::metadata(path) {
        Err(_) => Candidate::Missing,
        Ok(m) if m.is_dir() => Candidate::Directory,
        Ok(m) if m.permissions().mode() & 0o111 == 0 => Candidate::NotExecutable,
        Ok(_) => Candidate::Executable,
    }
}

/// Resolve `cmd` as `execvp` would, with the container's `PATH` and files.
pub fn resolve(cmd: &str, path_var: &str) -> Result<PathBuf, Error> {
    resolve_with(cmd, path_var, &inspect)
}

/// [`resolve`] over any view of the filesystem (tests use a table).
pub fn resolve_with(
    cmd: &str,
    path_var: &str,
    inspect: &dyn Fn(&Path) -> Candidate,
) -> Result<PathBuf, Error> {
    if cmd.is_empty() {
        return Err(Error::NoSuchFile(String::new()));
    }
    if cmd.contains('/') {
        return match inspect(Path::new(cmd)) {
            Candidate::Missing => Err(Error::NoSuchFile(cmd.to_string())),
            Candidate::Directory => Err(Error::IsDirectory(cmd.to_string())),
            Candidate::NotExecutable => Err(Error::PermissionDenied(cmd.to_string())),
            Candidate::Executable => Ok(PathBuf::from(cmd)),
        };
    }
    // Like execvp: the first executable match wins; a non-executable match
    // is remembered so the error says "permission denied", not "not found".
    let mut denied = false;
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(cmd);
        match inspect(&candidate) {
            Candidate::Executable => return Ok(candidate),
            Candidate::NotExecutable => denied = true,
            Candidate::Missing | Candidate::Directory => {}
        }
    }
    if denied {
        Err(Error::PermissionDenied(cmd.to_string()))
    } else {
        Err(Error::NotInPath(cmd.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(path: &Path) -> Candidate {
        match path.to_str().unwrap() {
            "/bin/sh" | "/usr/bin/tool" => Candidate::Executable,
            "/bin/tool" | "/etc/passwd" => Candidate::NotExecutable,
            "/bin" | "/etc" => Candidate::Directory,
            _ => Candidate::Missing,
        }
    }

    #[test]
    fn searches_path_in_order() {
        assert_eq!(
            resolve_with("sh", "/usr/bin:/bin", &fs).unwrap(),
            PathBuf::from("/bin/sh")
        );
        // A non-executable earlier match does not hide a later executable one.
        assert_eq!(
            resolve_with("tool", "/bin:/usr/bin", &fs).unwrap(),
            PathBuf::from("/usr/bin/tool")
        );
    }

    #[test]
    fn errors_carry_docker_exit_codes() {
        let nf = resolve_with("nope", "/bin", &fs).unwrap_err();
        assert_eq!(
            (nf.exit_code(), nf.to_string().as_str()),
            (127, "exec: \"nope\": executable file not found in $PATH")
        );
        assert_eq!(
            resolve_with("/bin/nope", "", &fs).unwrap_err().exit_code(),
            127
        );
        assert_eq!(
            resolve_with("tool", "/bin", &fs).unwrap_err().exit_code(),
            126
        );
        assert_eq!(
            resolve_with("/etc/passwd", "", &fs)
                .unwrap_err()
                .exit_code(),
            126
        );
        assert_eq!(
            resolve_with("/etc", "", &fs).unwrap_err(),
            Error::IsDirectory("/etc".into())
        );
    }

    #[test]
    fn errno_mapping() {
        assert_eq!(Error::from_errno("x", libc::ENOENT).exit_code(), 127);
        assert_eq!(Error::from_errno("x", libc::EACCES).exit_code(), 126);
        assert_eq!(Error::from_errno("x", libc::ENOEXEC).exit_code(), 126);
    }
}
