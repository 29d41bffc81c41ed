//! The one place where errors become what the user reads, and the exit code
//! containr ends with.
//!
//! Each library module has its own error type, wrapping those of the
//! modules below it; this enum gathers the ones the commands meet, and adds
//! what only the command line can get wrong. Docker's conventions for the
//! exit code: 125 when containr itself fails, 126 when the command cannot be
//! executed, 127 when it cannot be found; otherwise a container exits with
//! its command's status.

use containr::{cas, container, image, network, registry};

/// Docker's exit code for a failure of the runtime itself.
pub const RUNTIME_ERROR: i32 = 125;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line itself is wrong.
    #[error("{0}")]
    Usage(String),
    #[error("No such object: {0}")]
    NoSuchObject(String),
    #[error("containr {0} must be run as root (try sudo)")]
    NotRoot(&'static str),
    #[error(transparent)]
    Container(#[from] container::Error),
    #[error(transparent)]
    Network(#[from] network::Error),
    #[error(transparent)]
    Image(#[from] image::Error),
    #[error(transparent)]
    Registry(#[from] registry::Error),
    /// A failure of a command on an existing container (`exec`, `stop`,
    /// `logs`, `cp`, `commit`, ...): docker's command line exits 1 for
    /// those (the daemon answered; no runtime failed to run a container),
    /// not 125; a command that cannot run keeps 126 or 127.
    #[error(transparent)]
    OnContainer(Box<Error>),
}

impl From<cas::Error> for Error {
    fn from(e: cas::Error) -> Error {
        Error::Image(e.into())
    }
}

impl From<container::state::Error> for Error {
    fn from(e: container::state::Error) -> Error {
        Error::Container(e.into())
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            // docker's 1 where the runtime would say 125; a command that
            // cannot run keeps 126/127, one a signal ended 128+N.
            Error::OnContainer(e) => match e.exit_code() {
                RUNTIME_ERROR => 1,
                other => other,
            },
            Error::Container(e) => e.status(),
            // As a shell reports a command a signal ended.
            Error::Image(image::Error::Interrupted(sig)) => 128 + sig,
            _ => RUNTIME_ERROR,
        }
    }

    /// `self` as a failure of a command on an existing container: exit 1.
    pub fn on_container(self) -> Error {
        match self {
            Error::OnContainer(_) => self,
            e => Error::OnContainer(Box::new(e)),
        }
    }

    /// The line printed to stderr: `containr: ` and the message, on one line
    /// whatever the underlying errors put in it.
    pub fn user_message(&self) -> String {
        let text = self.to_string();
        let one_line: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        format!("containr: {}", one_line.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_docker() {
        let not_found = container::Error::Exec(container::exec::Error::NotInPath("x".into()));
        assert_eq!(Error::from(not_found).exit_code(), 127);
        let denied = container::Error::Exec(container::exec::Error::PermissionDenied("x".into()));
        assert_eq!(Error::from(denied).exit_code(), 126);
        let inside = container::Error::InContainer {
            code: 127,
            message: "x".into(),
        };
        assert_eq!(Error::from(inside).exit_code(), 127);
        assert_eq!(Error::NotRoot("run").exit_code(), 125);
        assert_eq!(Error::Usage("x".into()).exit_code(), 125);
        // exec, stop, logs... on a container: docker's 1, but for a
        // command that cannot run.
        let unknown = container::state::Error::NoSuchContainer("x".into());
        assert_eq!(Error::from(unknown).on_container().exit_code(), 1);
        let not_found = container::Error::Exec(container::exec::Error::NotInPath("x".into()));
        assert_eq!(Error::from(not_found).on_container().exit_code(), 127);
        assert_eq!(Error::Usage("x".into()).on_container().exit_code(), 1);
        let signalled = Error::Image(image::Error::Interrupted(2));
        assert_eq!(signalled.on_container().exit_code(), 130);
    }

    #[test]
    fn messages_are_one_line() {
        let e = Error::Usage("first\n  second\n".into());
        assert_eq!(e.user_message(), "containr: first second");
    }
}
