//! containr: a container runtime built from Linux primitives.
//!
//! The runtime is this library; the binary (`src/main.rs`, `src/cli/`,
//! `src/error.rs`) parses the command line, calls into it and prints what
//! it returns. No module here prints: they return data, errors and events
//! (pull progress, the `--explain` steps), and the front end renders them.
//! docs/ARCHITECTURE.md maps who may call whom. Each module owns one
//! concern:
//!
//! - [`container`]: the lifecycle of one container: the host-side parent that
//!   prepares and supervises it, and the re-exec'd init that becomes it.
//! - [`namespace`]: which namespaces a container gets and how they are made.
//! - [`cgroup`]: its resource limits and usage.
//! - [`rootfs`]: the mount table inside the container, the image's overlay
//!   and `pivot_root`.
//! - [`network`]: the container's network (bridge, none or host: veths,
//!   leases, NAT, published ports) and the `/etc/hosts` and
//!   `/etc/resolv.conf` it sees.
//! - [`security`]: capabilities, seccomp, no-new-privileges.
//! - [`image`]: image names, layer snapshots and the layers a container
//!   runs on.
//! - [`registry`]: pulling images from OCI registries.
//! - [`cas`]: the content-addressed blob store.
//! - [`explain`]: the numbered walkthrough of `--explain`, built on tracing.
//! - [`util`]: small helpers any module may use.

pub mod cas;
pub mod cgroup;
pub mod container;
pub mod explain;
pub mod image;
pub mod namespace;
pub mod network;
pub mod registry;
pub mod rootfs;
pub mod security;
pub mod util;
