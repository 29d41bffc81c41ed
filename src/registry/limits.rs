//! What a registry may make a pull spend: time (a minimum download rate
//! over a window, as curl's `--speed-limit`/`--speed-time`), disk (a
//! reserve of the data root's filesystem that downloads never eat into),
//! memory (manifests, indexes and configs are read whole, so their size is
//! capped) and layers (an overlay stacks only so many).

use std::path::Path;
use std::time::{Duration, Instant};

pub use crate::image::limits::{CONFIG_LIMIT, MANIFEST_LIMIT, MAX_LAYERS, bytes};

/// The numbers a user may set.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Bytes per second under which a download fails once `rate_window`
    /// has passed; 0 turns the check off.
    pub min_rate: u64,
    pub rate_window: Duration,
    /// Bytes of the data root's filesystem a pull leaves free.
    pub disk_reserve: u64,
}

pub const DEFAULT_MIN_RATE: u64 = 1024;
pub const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);
pub const DEFAULT_DISK_RESERVE: u64 = 512 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            min_rate: DEFAULT_MIN_RATE,
            rate_window: DEFAULT_RATE_WINDOW,
            disk_reserve: DEFAULT_DISK_RESERVE,
        }
    }
}

impl Limits {
    /// How long one read may wait for a byte: a read that waits the whole
    /// window is under any minimum rate.
    pub fn read_timeout(&self) -> Duration {
        if self.min_rate > 0 {
            self.rate_window
        } else {
            DEFAULT_RATE_WINDOW
        }
    }
}

/// Why a download was stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// `rate` bytes/s over the last `window`.
    TooSlow {
        rate: u64,
        min: u64,
        window: Duration,
    },
    /// The filesystem's free space fell under the reserve.
    DiskFull { free: u64, reserve: u64 },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::TooSlow { rate, min, window } => write!(
                f,
                "{}/s over the last {}s, under the minimum of {}/s (--min-rate, --rate-window)",
                bytes(*rate),
                window.as_secs(),
                bytes(*min)
            ),
            Stop::DiskFull { free, reserve } => {
                f.write_str(&crate::image::limits::under_reserve(*free, *reserve))
            }
        }
    }
}

/// Bytes past the reserve that `path`'s filesystem has.
pub fn room(path: &Path, reserve: u64) -> std::io::Result<(u64, u64)> {
    let free = crate::cas::free_space(path)?;
    Ok((free.saturating_sub(reserve), free))
}

/// Watches one download as its bytes arrive.
pub struct Meter<'a> {
    limits: &'a Limits,
    /// Where the bytes go, to watch its free space (none: memory).
    dir: Option<&'a Path>,
    window_start: Instant,
    in_window: u64,
    unchecked: u64,
}

/// Free space is looked at after this many bytes.
const SPACE_CHECK_EVERY: u64 = 1 << 20;

impl<'a> Meter<'a> {
    pub fn new(limits: &'a Limits, dir: Option<&'a Path>) -> Meter<'a> {
        Meter {
            limits,
            dir,
            window_start: Instant::now(),
            in_window: 0,
            unchecked: 0,
        }
    }

    /// `n` more bytes arrived (0: a read timed out).
    pub fn add(&mut self, n: usize) -> Result<(), Stop> {
        self.in_window += n as u64;
        self.unchecked += n as u64;
        if self.unchecked >= SPACE_CHECK_EVERY
            && let Some(dir) = self.dir
        {
            self.unchecked = 0;
            if let Ok(free) = crate::cas::free_space(dir)
                && free < self.limits.disk_reserve
            {
                return Err(Stop::DiskFull {
                    free,
                    reserve: self.limits.disk_reserve,
                });
            }
        }
        let elapsed = self.window_start.elapsed();
        if self.limits.min_rate > 0 && elapsed >= self.limits.rate_window {
            let rate = (self.in_window as f64 / elapsed.as_secs_f64()) as u64;
            if rate < self.limits.min_rate {
                return Err(self.too_slow(rate));
            }
            self.window_start = Instant::now();
            self.in_window = 0;
        }
        Ok(())
    }

    /// A read waited the whole window for nothing.
    pub fn stalled(&self) -> Stop {
        let elapsed = self.window_start.elapsed().as_secs_f64().max(1e-3);
        self.too_slow((self.in_window as f64 / elapsed) as u64)
    }

    fn too_slow(&self, rate: u64) -> Stop {
        Stop::TooSlow {
            rate,
            min: self.limits.min_rate,
            window: self.limits.rate_window,
        }
    }
}

/// What is wrong with a body of `size` bytes (none: it went on past the
/// limit without saying how long it is) over `limit`.
pub fn too_large(size: Option<u64>, limit: u64) -> String {
    match size {
        Some(n) => format!(
            "is {}, more than the {} a pull accepts",
            bytes(n),
            bytes(limit)
        ),
        None => format!("goes on past the {} a pull accepts", bytes(limit)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_window_stops_and_a_fast_one_starts_the_next() {
        let dir = std::env::temp_dir();
        let limits = Limits {
            min_rate: 1000,
            rate_window: Duration::from_millis(50),
            disk_reserve: 0,
        };
        let mut m = Meter::new(&limits, Some(&dir));
        assert_eq!(m.add(10), Ok(()));
        std::thread::sleep(Duration::from_millis(60));
        // 10 bytes in 60 ms: 166 B/s.
        match m.add(0) {
            Err(Stop::TooSlow {
                rate, min: 1000, ..
            }) => assert!(rate < 1000, "{rate}"),
            other => panic!("{other:?}"),
        }
        let mut m = Meter::new(&limits, Some(&dir));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(m.add(1000), Ok(()));
        // The window started again: not judged before it is full.
        assert_eq!(m.add(0), Ok(()));
        let off = Limits {
            min_rate: 0,
            ..limits.clone()
        };
        let mut m = Meter::new(&off, None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(m.add(0), Ok(()));
    }

    #[test]
    fn the_reserve_is_checked_as_bytes_arrive() {
        let dir = std::env::temp_dir();
        let limits = Limits {
            min_rate: 0,
            rate_window: Duration::from_secs(60),
            disk_reserve: u64::MAX,
        };
        let mut m = Meter::new(&limits, Some(&dir));
        assert_eq!(m.add(1000), Ok(()));
        assert!(matches!(
            m.add(SPACE_CHECK_EVERY as usize),
            Err(Stop::DiskFull { .. })
        ));
    }
}
