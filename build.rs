//! How the `containr` binary is linked. By default as a PIE, so its own
//! code and data are randomized like everything else in its address
//! space: containr runs as root and reads what registries, images and
//! bundles send it, and an exploit of a memory bug would otherwise find its
//! gadgets at fixed addresses.
//!
//! `CONTAINR_PIE=0` links it position-dependent (`-no-pie`) instead, for
//! hosts where exec cost matters more (an OCI engine runs four commands per
//! container): a PIE this size has the dynamic loader apply some 13,000
//! relative relocations at each exec, dirtying ~60 pages of `.data.rel.ro`
//! (about 65 page faults per exec on the benchmark VM; docs/BENCHMARKS.md).
//! The code stays position-independent either way; only the final link
//! differs.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CONTAINR_PIE");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    // A static build (+crt-static) links a static PIE of its own: leave it.
    let static_crt = features.split(',').any(|f| f == "crt-static");
    let no_pie = std::env::var("CONTAINR_PIE").is_ok_and(|v| v == "0");
    if os == "linux" && !static_crt && no_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
