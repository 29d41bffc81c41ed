//! Small helpers every module may use, kept here once: random names,
//! whether a process is still the one a record names, durable file
//! replacement, the error of an I/O call on a path, and time in the formats
//! containr stores and shows, and sizes as docker shows them. This module reaches no other module of containr, so
//! anything may depend on it (`cas` included, which stays a leaf of the
//! rest).

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An I/O call that failed on `path`; each module's `Error` wraps it with
/// the words that say what the path was (`blob store`, `cgroup`, ...).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct PathIo {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// `map_err(io_err(path))?`: an I/O error on `path`, which `?` turns into
/// the caller's error.
pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PathIo + '_ {
    move |source| PathIo {
        path: path.to_path_buf(),
        source,
    }
}

/// `n` random bytes in hex, from getrandom(2).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled tail of bytes.
        let got = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if got > 0 {
            filled += got as usize;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A name no other process or thread will pick: pid, thread and 64 random
/// bits.
pub fn random_name() -> String {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    format!("{}-{tid}-{}", std::process::id(), random_hex(8))
}

/// Replace `path` whole and durably with `bytes`, created with `mode`: a
/// temporary file beside it, fsynced, renamed over it, and the directory
/// fsynced: after a crash, the old content or the new, never a part.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace(path, bytes, mode, true)
}

/// Replace `path` whole with `bytes`, atomically for readers but not
/// durably: for state that means nothing after a reboot (an OCI runtime's
/// state and pid files, kept in `/run` by convention: its containers do
/// not survive the reboot either), where two fsyncs would be most of the
/// write's cost on a disk.
pub fn replace_file_volatile(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    replace(path, bytes, mode, false)
}

fn replace(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> std::io::Result<()> {
    let dir = path.parent().expect("a file in a directory");
    let tmp = dir.join(format!(".tmp-{}", random_name()));
    let write = || -> std::io::Result<()> {
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Open (creating it) the lock file at `path` and hold `how` (an
/// exclusive or shared `flock`) on it until the returned value is dropped.
pub fn lock_file(
    path: &Path,
    how: nix::fcntl::FlockArg,
) -> Result<nix::fcntl::Flock<File>, PathIo> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    nix::fcntl::Flock::lock(f, how).map_err(|(_, e)| io_err(path)(e.into()))
}

/// Read the file at `path` whole, refusing it (`FileTooLarge`) once more
/// than `max` bytes arrive: the size is checked as it is read, not from
/// `stat`, so a FIFO or a file that grows meanwhile is bounded too.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {}", human_bytes(max)),
        ));
    }
    Ok(bytes)
}

/// Field 22 of `/proc/PID/stat`: when the process started (clock ticks
/// after boot). With the pid, it names one process for good: a recycled
/// pid has another start time.
pub fn process_start_time(pid: u32) -> Option<u64> {
    stat_field(pid, 19)
}

/// Whether the process `pid` that started at `start` is still alive.
pub fn process_alive(pid: u32, start: u64) -> bool {
    process_start_time(pid) == Some(start)
}

/// Whether `pid` has exited and waits to be reaped (a zombie): gone, for
/// anyone asking whether it runs.
pub fn process_is_zombie(pid: u32) -> bool {
    matches!(stat_field::<char>(pid, 0), Some('Z' | 'X'))
}

/// The parent pid of `pid` (field 4 of `/proc/PID/stat`).
pub fn parent_of(pid: u32) -> Option<u32> {
    stat_field(pid, 1)
}

/// Field `n + 3` of `/proc/PID/stat`.
fn stat_field<T: std::str::FromStr>(pid: u32, n: usize) -> Option<T> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields
    // after it are counted from its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(n)?.parse().ok()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `2024-05-01T12:00:00Z` (UTC), without a time crate: the days-to-civil
/// conversion of Howard Hinnant's date algorithms.
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Seconds since the epoch of an RFC 3339 time (fractions and offsets
/// allowed); `None` if it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from civil (the inverse of `rfc3339`).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - offset)
}

/// `3 days ago`, as docker's CREATED column.
pub fn ago(created: Option<&str>) -> String {
    let Some(t) = created.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    let s = (now() - t).max(0);
    let (n, unit) = match s {
        0..60 => return "Less than a minute ago".into(),
        60..3600 => (s / 60, "minute"),
        3600..86400 => (s / 3600, "hour"),
        86400..1209600 => (s / 86400, "day"),
        1209600..5184000 => (s / 604800, "week"),
        5184000..63072000 => (s / 2592000, "month"),
        _ => (s / 31536000, "year"),
    };
    if n == 1 {
        format!("{} {unit} ago", if unit == "hour" { "An" } else { "1" })
    } else {
        format!("{n} {unit}s ago")
    }
}

/// `n` in the largest of `units` (each `base` times the one before) that
/// keeps it at 1 or more: the value and the unit's index.
pub fn scale(n: u64, base: f64, units: usize) -> (f64, usize) {
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i + 1 < units {
        v /= base;
        i += 1;
    }
    (v, i)
}

/// `7.8MB`, as docker's SIZE column of `images` (decimal units).
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let (v, i) = scale(n, 1000.0, units.len());
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

/// `1.50MiB`, as docker's `stats` prints memory (binary units).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (v, unit) = scale(bytes, 1024.0, UNITS.len());
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
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

/// `bytes` as a C string, interior NULs dropped: arguments and environment
/// from JSON may hold NULs, which a C string cannot (from a command line or
/// an env file they cannot occur).
pub fn cstring_lossy(bytes: &[u8]) -> std::ffi::CString {
    let kept: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
    std::ffi::CString::new(kept).expect("NULs were filtered out")
}

#[cfg(test)]
mod tests {

    #[test]
    fn read_bounded_takes_up_to_the_bound_and_refuses_more() {
        let dir = std::env::temp_dir().join(format!("containr-rb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        std::fs::write(&path, [7u8; 10]).unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), vec![7u8; 10]);
        let e = read_bounded(&path, 9).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1714564800), "2024-05-01T12:00:00Z");
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00Z"), Some(1714564800));
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00.123456789+02:00"),
            Some(1714564800)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951782400));
        assert_eq!(parse_rfc3339("yesterday"), None);
        for t in [0, 951782400, 1714564800, 4102444800] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t));
        }
    }

    #[test]
    fn sizes_and_ages_read_like_docker() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(7_800_000), "7.8MB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(32 << 20), "32.00MiB");
        assert_eq!(human_bytes(1536), "1.50KiB");
        assert_eq!(ago(None), "N/A");
        assert_eq!(ago(Some(&rfc3339(now()))), "Less than a minute ago");
        assert_eq!(ago(Some(&rfc3339(now() - 3 * 86400))), "3 days ago");
        assert_eq!(ago(Some(&rfc3339(now() - 3600))), "An hour ago");
    }

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

    #[test]
    fn random_names_are_distinct_hex() {
        let (a, b) = (random_hex(32), random_hex(32));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_ne!(random_name(), random_name());
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id();
        let start = process_start_time(me).expect("readable");
        assert!(process_alive(me, start));
        assert!(!process_alive(me, start + 1));
        assert_eq!(parent_of(me), Some(std::os::unix::process::parent_id()));
    }

    #[test]
    fn replaced_files_are_whole_and_have_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        replace_file(&path, b"one", 0o600).unwrap();
        replace_file(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

/// Serde for an optional byte string as hex: a compiled seccomp program is
/// a few thousand bytes, which JSON would otherwise write as a number per
/// byte (one per line, pretty), in the control channel and in each
/// container's record.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => {
                const DIGITS: &[u8; 16] = b"0123456789abcdef";
                let hex: String = b
                    .iter()
                    .flat_map(|x| [DIGITS[(x >> 4) as usize], DIGITS[(x & 15) as usize]])
                    .map(char::from)
                    .collect();
                s.serialize_some(&hex)
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(hex) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bad = || serde::de::Error::custom("expected an even number of hex digits");
        if hex.len() % 2 != 0 {
            return Err(bad());
        }
        (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .map(Some)
            .ok_or_else(bad)
    }

    #[cfg(test)]
    mod tests {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T(#[serde(with = "super")] Option<Vec<u8>>);

        #[test]
        fn round_trips() {
            for v in [None, Some(vec![]), Some(vec![0, 1, 0xab, 0xff])] {
                let json = serde_json::to_string(&T(v.clone())).unwrap();
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), T(v));
            }
            assert_eq!(
                serde_json::to_string(&T(Some(vec![0x0f, 0xa0]))).unwrap(),
                "\"0fa0\""
            );
            assert!(serde_json::from_str::<T>("\"abc\"").is_err());
            assert!(serde_json::from_str::<T>("\"zz\"").is_err());
        }
    }
}

/// A duration as Go's `time.ParseDuration` reads it (`1s`, `500ms`,
/// `1m30s`, `1.5h`), in nanoseconds; none if malformed or negative.
pub fn parse_go_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    (total < u64::MAX as f64).then_some(total as u64)
}
