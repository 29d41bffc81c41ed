//! What the listing and archive commands write to stdout, in docker's
//! formats: tables padded as docker pads them, ages as docker words them,
//! tars written whole or not at all; and `login`'s prompts.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::image;

/// Columns padded to their widest cell, three spaces apart, as docker's.
pub fn print_table<const N: usize>(head: [&str; N], rows: &[[String; N]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = width[i]));
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// `containr images`: the table, or ids only with `quiet`.
pub fn images(rows: &[image::Row], quiet: bool) {
    if quiet {
        for r in rows {
            println!("{}", image::short(&r.id));
        }
        return;
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.repository.clone(),
                r.tag.clone(),
                image::short(&r.id),
                image::ago(r.created.as_deref()),
                image::human_size(r.size),
            ]
        })
        .collect();
    print_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &table);
}

/// Write a tar made by `write` to `output` (through a temporary file
/// renamed at the end: never half a file) or to stdout (not a terminal).
pub fn write_tar<E: Into<Error>>(
    output: Option<PathBuf>,
    write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), Error> {
    let Some(path) = output else {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            return Err(Error::Usage(
                "refusing to write a tar to a terminal: use -o FILE or a redirect".into(),
            ));
        }
        return write(&mut std::io::stdout().lock()).map_err(Into::into);
    };
    let tmp = path.with_extension("containr-tmp");
    let io = |p: &Path, e: std::io::Error| Error::Usage(format!("{}: {e}", p.display()));
    let result = std::fs::File::create(&tmp)
        .map_err(|e| io(&tmp, e))
        .and_then(|mut f| {
            write(&mut f).map_err(Into::into)?;
            f.sync_all().map_err(|e| io(&tmp, e))
        })
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| io(&path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A duration as docker words it (`units.HumanDuration`): `Less than a
/// second`, `3 seconds`, `About a minute`, `5 hours`, `2 weeks`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, (s + 1800) / 3600);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

/// Ask `label` on stdout and read one line from stdin, as `docker login`
/// asks for what its flags did not give. With `echo` false and a terminal
/// on stdin, what is typed is not shown (the terminal's ECHO is off until
/// the line is read); from a pipe or a file, the line is just read.
pub fn prompt(label: &str, echo: bool) -> Result<String, Error> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    use std::io::BufRead;
    use std::os::fd::AsFd;
    let what = label.trim_end_matches([':', ' ']).to_lowercase();
    let fail = |e: std::io::Error| Error::Usage(format!("reading the {what}: {e}"));
    let mut out = std::io::stdout();
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let saved = if echo {
        None
    } else {
        termios::tcgetattr(fd).ok()
    };
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        // Before the prompt shows, so that nothing typed after it is
        // echoed; TCSANOW, not TCSAFLUSH, which would drop what is typed
        // ahead.
        termios::tcsetattr(fd, SetArg::TCSANOW, &quiet).map_err(|e| fail(e.into()))?;
    }
    write!(out, "{label}")
        .and_then(|()| out.flush())
        .map_err(fail)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        // The Enter that ended the line was not echoed either.
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, saved);
        let _ = writeln!(out);
    }
    if read.map_err(fail)? == 0 {
        return Err(Error::Usage(format!("no {what} given (end of input)")));
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(21 * 86400), "3 weeks");
        assert_eq!(human_duration(400 * 86400), "13 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }
}
