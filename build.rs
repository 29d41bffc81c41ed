//! Link the `containr` binary as a position-dependent executable
//! (`-no-pie`) on Linux: every command is a process of its own (an OCI
//! engine runs four per container), and a PIE of this size makes the
//! dynamic loader apply some 13,000 relative relocations at each exec,
//! dirtying ~60 pages of `.data.rel.ro` (about 70 page faults and 0.3 ms
//! per exec on the benchmark VM; docs/BENCHMARKS.md). The code stays
//! position-independent; only the final link fixes its address. The cost:
//! the binary's own code and data are not randomized (ASLR of the stack,
//! heap, mmaps and shared libraries stays), as with Debian's runc.
//! `CONTAINR_PIE=1` links a PIE as before.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CONTAINR_PIE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    // A static build (+crt-static) links a static PIE of its own: leave it.
    let static_crt = features.split(',').any(|f| f == "crt-static");
    let pie = std::env::var("CONTAINR_PIE").is_ok_and(|v| v == "1");
    if os == "linux" && !static_crt && !pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
