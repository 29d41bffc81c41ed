//! A detached container's logs, in docker's `json-file` format: one JSON
//! object per line, `{"log":"…\n","stream":"stdout","time":"RFC3339Nano"}`,
//! in `containers/<id>/<id>-json.log` (rotated to `….1`, `….2`, … with
//! `--log-opt max-size=… max-file=…`).
//!
//! The monitor is the only writer ([`LogWriter`]); `containr logs` reads
//! the files as they are ([`read`], [`Follower`]), so a slow reader never
//! holds the container back. Only whole lines are read: the writer may be
//! half-way through one.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown log driver {0:?}: containr has json-file and none")]
    Driver(String),
    #[error("invalid log option {0:?}: json-file takes max-size=SIZE and max-file=N")]
    Option(String),
    #[error("configured logging driver does not support reading")]
    NotReadable,
    #[error("container {0} has no logs: it ran attached (its output went to its containr run)")]
    Attached(String),
    #[error(
        "invalid value for {flag} {value:?}: expected an RFC 3339 time, a unix timestamp or a duration (10m, 1h30m)"
    )]
    Time { flag: &'static str, value: String },
    #[error(transparent)]
    Io(#[from] crate::util::PathIo),
}

/// `--log-driver`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Driver {
    #[default]
    JsonFile,
    None,
}

/// `--log-driver` and `--log-opt`, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogConfig {
    pub driver: Driver,
    /// Rotate past this many bytes (none: never).
    pub max_size: Option<u64>,
    /// Files kept, the current one included (at least 1).
    pub max_file: u32,
}

impl LogConfig {
    pub fn parse(driver: Option<&str>, opts: &[String]) -> Result<LogConfig, Error> {
        let driver = match driver.unwrap_or("json-file") {
            "json-file" => Driver::JsonFile,
            "none" => Driver::None,
            other => return Err(Error::Driver(other.to_string())),
        };
        let mut config = LogConfig {
            driver,
            max_size: None,
            max_file: 1,
        };
        for opt in opts {
            let bad = || Error::Option(opt.clone());
            let (key, value) = opt.split_once('=').ok_or_else(bad)?;
            match key {
                "max-size" if value == "-1" => config.max_size = None,
                "max-size" => {
                    let size = crate::cgroup::parse_size(value).map_err(|_| bad())?;
                    config.max_size = Some(size).filter(|s| *s > 0);
                    if config.max_size.is_none() {
                        return Err(bad());
                    }
                }
                "max-file" => {
                    config.max_file = value.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?
                }
                // docker's json-file options that change nothing here.
                "compress" | "labels" | "env" | "tag" | "mode" => {}
                _ => return Err(bad()),
            }
        }
        if config.max_file > 1 && config.max_size.is_none() {
            return Err(Error::Option("max-file needs max-size".into()));
        }
        Ok(config)
    }
}

/// The container's log file in its directory `dir`.
pub fn path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}-json.log"))
}

/// Which of the container's outputs a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

/// Longest line kept whole; longer ones are cut into entries of this size,
/// all but the last without a newline (docker's 16 KiB).
const MAX_LINE: usize = 16 * 1024;

/// The monitor's side: lines in, JSON lines out, rotated.
pub struct LogWriter {
    path: PathBuf,
    file: fs::File,
    size: u64,
    config: LogConfig,
    /// What each stream wrote since its last newline.
    partial: [Vec<u8>; 2],
    out: Vec<u8>,
}

impl LogWriter {
    /// Open (appending: a restarted container goes on) the log at `path`.
    pub fn open(path: PathBuf, config: LogConfig) -> Result<LogWriter, Error> {
        let file = open_append(&path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path,
            file,
            size,
            config,
            partial: [Vec::new(), Vec::new()],
            out: Vec::new(),
        })
    }

    /// Log what `stream` wrote: every whole line now, the rest when its
    /// line ends (or at [`LogWriter::finish`]). A container that writes
    /// fast makes this the monitor's hot loop: no allocation per line
    /// (a whole line is written from `bytes` as it is, a partial one's
    /// buffer is kept and reused), one `write` per call.
    pub fn write(&mut self, stream: Stream, bytes: &[u8]) {
        let time = rfc3339_nano(super::state::now_ns());
        let i = stream as usize;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = MAX_LINE - self.partial[i].len();
            let window = &rest[..rest.len().min(room)];
            let end = match window.iter().position(|&b| b == b'\n') {
                Some(n) => n + 1,
                None if rest.len() >= room => room,
                None => {
                    self.partial[i].extend_from_slice(rest);
                    break;
                }
            };
            let (line, tail) = rest.split_at(end);
            rest = tail;
            if self.partial[i].is_empty() {
                self.entry(stream, line, &time);
            } else {
                let mut whole = std::mem::take(&mut self.partial[i]);
                whole.extend_from_slice(line);
                self.entry(stream, &whole, &time);
                whole.clear();
                self.partial[i] = whole;
            }
        }
        self.flush();
    }

    /// The container is gone: what it left without a newline is logged.
    pub fn finish(&mut self) {
        let time = rfc3339_nano(super::state::now_ns());
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.entry(stream, &line, &time);
            }
        }
        self.flush();
    }

    /// One JSON line, as `Entry` serialises (`log`, `stream`, `time`),
    /// written straight into the output buffer.
    fn entry(&mut self, stream: Stream, line: &[u8], time: &str) {
        let start = self.out.len();
        self.out.extend_from_slice(b"{\"log\":");
        // Invalid UTF-8 becomes U+FFFD, as docker's; valid text is not
        // copied first.
        serde_json::to_writer(&mut self.out, &*String::from_utf8_lossy(line))
            .expect("writing to a Vec cannot fail");
        self.out.extend_from_slice(match stream {
            Stream::Stdout => b",\"stream\":\"stdout\",\"time\":\"",
            Stream::Stderr => b",\"stream\":\"stderr\",\"time\":\"",
        });
        self.out.extend_from_slice(time.as_bytes());
        self.out.extend_from_slice(b"\"}\n");
        if let Some(max) = self.config.max_size
            && self.size + self.out.len() as u64 > max
            && self.size + start as u64 > 0
        {
            // This entry starts the next file: what came before it ends
            // this one.
            let entry = self.out.split_off(start);
            self.flush();
            self.rotate();
            self.out = entry;
        }
    }

    fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        // A full disk loses lines; it must not stop the monitor.
        if self.file.write_all(&self.out).is_ok() {
            self.size += self.out.len() as u64;
        }
        self.out.clear();
    }

    /// `<log>` becomes `<log>.1`, `.1` becomes `.2`, …, the oldest beyond
    /// `max-file` goes; a new `<log>` is started.
    fn rotate(&mut self) {
        let n = self.config.max_file;
        if n > 1 {
            for k in (1..n - 1).rev() {
                let _ = fs::rename(rotated(&self.path, k), rotated(&self.path, k + 1));
            }
            let _ = fs::rename(&self.path, rotated(&self.path, 1));
            if let Ok(f) = open_append(&self.path) {
                self.file = f;
            }
        } else {
            let _ = self.file.set_len(0);
        }
        self.size = 0;
    }
}

fn open_append(path: &Path) -> Result<fs::File, Error> {
    Ok(fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(crate::util::io_err(path))?)
}

/// The `k`th rotated file of `path`.
fn rotated(path: &Path, k: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{k}"));
    PathBuf::from(s)
}

/// `2024-05-01T12:00:00.123456789Z`: docker's RFC3339Nano, in UTC, with
/// all nine digits so that times compare as strings.
pub fn rfc3339_nano(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let whole = crate::util::rfc3339(secs);
    format!("{}.{frac:09}Z", whole.trim_end_matches('Z'))
}

/// `--since`/`--until`: an RFC 3339 time, a unix timestamp (fractions
/// allowed) or a duration before `now_ns` (`10m`, `1h30m`, `90s`), as the
/// nanoseconds since the epoch.
pub fn parse_time(flag: &'static str, value: &str, now_ns: i64) -> Result<i64, Error> {
    let bad = || Error::Time {
        flag,
        value: value.to_string(),
    };
    if let Some(d) = parse_duration(value) {
        return Ok(now_ns - d);
    }
    if let Ok(f) = value.parse::<f64>() {
        return Ok((f * 1e9) as i64);
    }
    let secs = crate::util::parse_rfc3339(value).ok_or_else(bad)?;
    // The fraction, which parse_rfc3339 drops.
    let frac = value
        .split_once('.')
        .map(|(_, f)| {
            let digits: String = f.chars().take_while(char::is_ascii_digit).collect();
            format!("{digits:0<9}")[..9].parse::<i64>().unwrap_or(0)
        })
        .unwrap_or(0);
    Ok(secs * 1_000_000_000 + frac)
}

/// Go's durations as docker takes them: `1h30m`, `10m`, `2.5s`, `300ms`.
fn parse_duration(s: &str) -> Option<i64> {
    if s.is_empty() || !s.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "h" => 3600e9,
            "m" => 60e9,
            "s" => 1e9,
            "ms" => 1e6,
            "us" | "µs" => 1e3,
            "ns" => 1.0,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(total as i64)
}

/// What `containr logs` asked for.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The last this many lines (of what `since`/`until` let through).
    pub tail: Option<usize>,
    /// Nanoseconds since the epoch.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl Query {
    /// The entries it lets through, times compared as strings (all nine
    /// fraction digits, UTC).
    pub fn filter(&self) -> impl Fn(&Entry) -> bool + use<> {
        let since = self.since.map(rfc3339_nano);
        let until = self.until.map(rfc3339_nano);
        move |e| {
            since.as_ref().is_none_or(|s| e.time >= *s)
                && until.as_ref().is_none_or(|u| e.time <= *u)
        }
    }
}

/// The log files of a container, oldest first.
fn files(log: &Path) -> Vec<PathBuf> {
    let mut rotated_files: Vec<PathBuf> = (1..)
        .map(|k| rotated(log, k))
        .take_while(|p| p.exists())
        .collect();
    rotated_files.reverse();
    rotated_files.push(log.to_path_buf());
    rotated_files
}

/// Every whole line of the log at `log` (and its rotated files) that
/// `query` admits, and where the reading of the current file ended (to
/// follow from).
pub fn read(log: &Path, query: &Query) -> Result<(Vec<Entry>, Follower), Error> {
    let mut entries = std::collections::VecDeque::new();
    let mut follower = Follower {
        path: log.to_path_buf(),
        file: None,
        inode: 0,
        pending: Vec::new(),
    };
    let admits = query.filter();
    for path in files(log) {
        let current = path == log;
        let Ok(mut file) = fs::File::open(&path) else {
            continue;
        };
        let inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
        let mut reader = Follower {
            path: path.clone(),
            file: None,
            inode,
            pending: Vec::new(),
        };
        let mut buf = Vec::new();
        file.read_to_end(&mut buf)
            .map_err(crate::util::io_err(&path))?;
        for e in reader.lines(&buf) {
            if admits(&e) {
                entries.push_back(e);
                if query.tail.is_some_and(|t| entries.len() > t) {
                    entries.pop_front();
                }
            }
        }
        if current {
            follower.file = Some(file);
            follower.inode = inode;
            follower.pending = reader.pending;
        }
    }
    if query.tail == Some(0) {
        entries.clear();
    }
    Ok((entries.into(), follower))
}

/// Reads what is appended to a log after [`read`], across rotations.
pub struct Follower {
    path: PathBuf,
    file: Option<fs::File>,
    inode: u64,
    /// The start of a line not yet written whole.
    pending: Vec<u8>,
}

impl Follower {
    /// The entries appended since the last call.
    pub fn poll(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        loop {
            if let Some(file) = &mut self.file {
                let mut buf = Vec::new();
                let _ = file.read_to_end(&mut buf);
                out.extend(self.lines(&buf));
            }
            // Rotated (or first made) since: the old file is read to its
            // end above, then the new one from its start.
            let inode = fs::metadata(&self.path).map(|m| m.ino()).ok();
            match inode {
                Some(i) if i != self.inode || self.file.is_none() => {
                    let Ok(f) = fs::File::open(&self.path) else {
                        return out;
                    };
                    self.file = Some(f);
                    self.inode = i;
                    self.pending.clear();
                }
                _ => {
                    // Truncated in place (max-file=1): start over.
                    if let Some(file) = &mut self.file
                        && let (Ok(pos), Ok(m)) = (file.stream_position(), file.metadata())
                        && m.len() < pos
                    {
                        let _ = file.seek(SeekFrom::Start(0));
                        self.pending.clear();
                        continue;
                    }
                    return out;
                }
            }
        }
    }

    /// The whole lines of `pending` + `buf`; the rest stays pending.
    fn lines(&mut self, buf: &[u8]) -> Vec<Entry> {
        self.pending.extend_from_slice(buf);
        let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let whole: Vec<u8> = self.pending.drain(..=end).collect();
        whole
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!("containr-logs-{}", crate::util::random_hex(16)));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn options_are_checked() {
        let c = LogConfig::parse(None, &["max-size=1k".into(), "max-file=3".into()]).unwrap();
        assert_eq!((c.max_size, c.max_file), (Some(1024), 3));
        assert_eq!(
            LogConfig::parse(Some("none"), &[]).unwrap().driver,
            Driver::None
        );
        assert!(LogConfig::parse(Some("syslog"), &[]).is_err());
        assert!(LogConfig::parse(None, &["max-size=x".into()]).is_err());
        assert!(LogConfig::parse(None, &["max-file=3".into()]).is_err());
        assert!(LogConfig::parse(None, &["nope=1".into()]).is_err());
    }

    #[test]
    fn times_are_docker_s() {
        assert_eq!(
            rfc3339_nano(1_500_000_000),
            "1970-01-01T00:00:01.500000000Z"
        );
        let now = 100 * 1_000_000_000;
        assert_eq!(parse_time("--since", "10s", now).unwrap(), 90_000_000_000);
        assert_eq!(parse_time("--since", "1m30s", now).unwrap(), 10_000_000_000);
        assert_eq!(parse_time("--since", "1.5", now).unwrap(), 1_500_000_000);
        assert_eq!(
            parse_time("--since", "1970-01-01T00:00:02.25Z", now).unwrap(),
            2_250_000_000
        );
        assert!(parse_time("--since", "soon", now).is_err());
    }

    #[test]
    fn lines_are_split_kept_in_order_and_rotated() {
        let dir = tmp();
        let log = path(&dir, "x");
        let config = LogConfig::parse(None, &["max-size=400".into(), "max-file=3".into()]).unwrap();
        let mut w = LogWriter::open(log.clone(), config).unwrap();
        w.write(Stream::Stdout, b"one\ntw");
        w.write(Stream::Stderr, b"err\n");
        w.write(Stream::Stdout, b"o\n");
        w.write(Stream::Stdout, b"tail");
        w.finish();
        let (e, _) = read(&log, &Query::default()).unwrap();
        let got: Vec<(&str, Stream)> = e.iter().map(|e| (e.log.as_str(), e.stream)).collect();
        assert_eq!(
            got,
            [
                ("one\n", Stream::Stdout),
                ("err\n", Stream::Stderr),
                ("two\n", Stream::Stdout),
                ("tail", Stream::Stdout)
            ]
        );
        // 100 lines of ~80 bytes of JSON: only the last three files' worth
        // is kept, in order, the newest last.
        for i in 0..100 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        assert!(rotated(&log, 2).exists() && !rotated(&log, 3).exists());
        let (e, _) = read(&log, &Query::default()).unwrap();
        assert_eq!(e.last().unwrap().log, "line 99\n");
        let n: Vec<usize> = e
            .iter()
            .map(|e| e.log.trim()[5..].parse().unwrap())
            .collect();
        assert!(n.windows(2).all(|w| w[1] == w[0] + 1), "{n:?}");
        assert!(n.len() < 20);
        let (e, _) = read(
            &log,
            &Query {
                tail: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lines_are_written_as_docker_s_json_with_partial_lines_joined() {
        let dir = tmp();
        let log = path(&dir, "j");
        let mut w = LogWriter::open(log.clone(), LogConfig::default()).unwrap();
        w.write(Stream::Stdout, b"a \"quoted\"\tline\nhalf ");
        w.write(Stream::Stderr, b"bad \xff utf-8\n");
        w.write(Stream::Stdout, b"and half\n");
        let text = fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Byte for byte what serde writes for an Entry: docker's key order.
        for (line, (log, stream)) in lines.iter().zip([
            ("a \"quoted\"\tline\n", Stream::Stdout),
            ("bad \u{fffd} utf-8\n", Stream::Stderr),
            ("half and half\n", Stream::Stdout),
        ]) {
            let e: Entry = serde_json::from_str(line).unwrap();
            assert_eq!((e.log.as_str(), e.stream), (log, stream));
            assert_eq!(*line, serde_json::to_string(&e).unwrap());
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn long_lines_are_cut_and_followers_see_appends() {
        let dir = tmp();
        let log = path(&dir, "y");
        let mut w = LogWriter::open(log.clone(), LogConfig::default()).unwrap();
        let (e, mut f) = read(&log, &Query::default()).unwrap();
        assert!(e.is_empty());
        w.write(Stream::Stdout, &vec![b'a'; MAX_LINE + 10]);
        w.write(Stream::Stdout, b"\n");
        let e = f.poll();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].log.len(), MAX_LINE);
        assert_eq!(e[1].log, format!("{}\n", "a".repeat(10)));
        assert!(f.poll().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
