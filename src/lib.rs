//! containr: a container runtime built from Linux primitives.
//!
//! The runtime is this library; `src/main.rs` only parses the command line
//! and calls into it. Each module owns one concern:
//!
//! - [`container`]: the lifecycle of one container: the host-side parent that
//!   prepares and supervises it, and the re-exec'd init that becomes it.
//! - [`namespace`]: which namespaces a container gets and how they are made.
//! - [`rootfs`]: the mount table inside the container and `pivot_root`.
//! - [`network`]: the container's network (bridge, none or host: veths,
//!   leases, NAT, published ports) and the `/etc/hosts` and
//!   `/etc/resolv.conf` it sees.
//! - [`explain`]: the numbered walkthrough of `--explain`, built on tracing.
//! - [`error`]: the one place where errors become user messages and exit codes.
//! - [`output`]: docker's tables and tar output for the listing and archive
//!   commands.

//! - [`cas`]: the content-addressed blob store.
//! - [`image`]: image names, layer snapshots and the overlay a container
//!   runs on.
//! - [`registry`]: pulling images from OCI registries.

pub mod cas;
pub mod cgroup;
pub mod container;
pub mod error;
pub mod explain;
pub mod image;
pub mod namespace;
pub mod network;
pub mod output;
pub mod registry;
pub mod rootfs;
pub mod security;
pub mod util;

pub use error::Error;
