//! What an image from outside (a registry, an archive, a tarball) may make
//! containr spend, whichever way it comes in: memory (manifests, indexes
//! and configs are read whole, so their size is capped), layers (an
//! overlay stacks only so many) and disk (unpacking stops before the data
//! root's filesystem falls under a reserve). `registry::limits` adds what
//! only a download has (a minimum rate).

/// Manifests and indexes: containerd's limit (`MaxManifestSize`, 4 MiB,
/// written `4 * 1048 * 1048` there); a real one is a few KiB.
pub const MANIFEST_LIMIT: u64 = 4 << 20;

/// Image configs: the history of a very long Dockerfile fits in far less.
pub const CONFIG_LIMIT: u64 = 8 << 20;

/// Layers an image may have: docker's limit (its layer store refuses a
/// chain deeper than 125), which overlayfs's 500 is well above.
pub const MAX_LAYERS: usize = 125;

/// What is wrong when the data root has `free` bytes, under `reserve`.
pub fn under_reserve(free: u64, reserve: u64) -> String {
    format!(
        "the data root has {} free, under the reserve of {} (--disk-reserve)",
        bytes(free),
        bytes(reserve)
    )
}

/// `1.5 KiB`, `3 B`: binary units, as the limits are given.
pub fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let (v, i) = crate::util::scale(n, 1024.0, units.len());
    if i == 0 {
        format!("{n} B")
    } else {
        let s = format!("{v:.1}");
        format!("{} {}", s.trim_end_matches(".0"), units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(3), "3 B");
        assert_eq!(bytes(1024), "1 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1_000_000_000_000), "931.3 GiB");
    }
}
