//! containr's command line: parse and dispatch. What each command prints
//! is in `cli/`, one file per command group; how errors read and which
//! status containr exits with, in `error.rs`.

mod cli;
mod error;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use cli::Global;
use cli::container::Objects;
use containr::cgroup::LimitFlags;
use containr::container::{self, RunOptions};
use containr::explain::{self, Reporting};
use containr::network;
use containr::registry::{self, PullPolicy};
use error::Error;

#[derive(Parser)]
#[command(
    name = "containr",
    version,
    about = "A container runtime built from Linux primitives: one binary, no daemon",
    after_help = "Run 'containr COMMAND --help' for more information on a command."
)]
struct Cli {
    /// Root directory of containr's state
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "CONTAINR_ROOT",
        default_value = "/var/lib/containr"
    )]
    root: PathBuf,

    /// Log level or tracing filter (error, warn, info, debug, trace)
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,

    /// Print a numbered walkthrough of every primitive as it happens, on
    /// stdout (stderr when stdout carries a tar): text, each step with its
    /// man page and lab, or json, one object per step
    #[arg(
        long,
        global = true,
        value_name = "FORMAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "text",
        value_parser = ["text", "json"]
    )]
    explain: Option<String>,

    /// A registry (host[:port]) to reach over plain http (loopback ones always are)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    insecure_registry: Vec<String>,

    /// Fail a download slower than this (bytes/s, k/m/g units) over the
    /// rate window; 0: never
    #[arg(long, global = true, value_name = "SIZE", env = "CONTAINR_MIN_RATE",
          default_value = "1k", value_parser = parse_size)]
    min_rate: u64,

    /// The window (seconds) a download's rate is judged over
    #[arg(long, global = true, value_name = "SECONDS", env = "CONTAINR_RATE_WINDOW",
          default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    rate_window: u64,

    /// Free space (k/m/g units) a pull, load, import, commit or cp leaves on the filesystem it writes to
    #[arg(long, global = true, value_name = "SIZE", env = "CONTAINR_DISK_RESERVE",
          default_value = "512m", value_parser = parse_size)]
    disk_reserve: u64,

    #[command(subcommand)]
    command: Command,
}

/// A size in docker's syntax (`512m`, `1k`, `100`).
fn parse_size(s: &str) -> Result<u64, String> {
    containr::cgroup::parse_size(s).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum Command {
    /// Create and run a new container
    Run(Box<RunArgs>),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// Fetch the logs of a container (run with -d)
    Logs {
        /// Follow log output
        #[arg(short, long)]
        follow: bool,
        /// Number of lines to show from the end of the logs (or all)
        #[arg(short = 'n', long, value_name = "string")]
        tail: Option<String>,
        /// Show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)
        #[arg(long, value_name = "string")]
        since: Option<String>,
        /// Show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m)
        #[arg(long, value_name = "string")]
        until: Option<String>,
        /// Show timestamps
        #[arg(short, long)]
        timestamps: bool,
        container: String,
    },
    /// Stop one or more running containers
    Stop {
        /// Seconds to wait before killing the container
        #[arg(short = 't', long = "time", alias = "timeout", value_name = "int")]
        time: Option<u32>,
        /// Signal to send to the container
        #[arg(short, long, value_name = "string")]
        signal: Option<String>,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Kill one or more running containers
    Kill {
        /// Signal to send to the container
        #[arg(short, long, value_name = "string")]
        signal: Option<String>,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Create a new container (made, not started)
    Create(Box<RunArgs>),
    /// Start one or more created or stopped containers
    Start {
        /// Attach STDOUT/STDERR and forward signals
        #[arg(short, long)]
        attach: bool,
        /// Attach container's STDIN
        #[arg(short, long)]
        interactive: bool,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Start the containers a reboot stopped: restart policy always, or
    /// unless-stopped and not stopped with `containr stop` (the boot step:
    /// contrib/ has a systemd unit and an init script that run it)
    Boot {
        /// Stop every running container instead, as `stop` does but not
        /// remembered as the user's stop, so the next boot starts
        /// unless-stopped ones again (the units' stop step)
        #[arg(long)]
        shutdown: bool,
    },
    /// Restart one or more containers
    Restart {
        /// Seconds to wait before killing the container
        #[arg(short = 't', long = "time", alias = "timeout", value_name = "int")]
        time: Option<u32>,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Attach local standard input, output, and error streams to a running container
    Attach {
        /// Override the key sequence for detaching a container (ctrl-p,ctrl-q)
        #[arg(long = "detach-keys", value_name = "string")]
        detach_keys: Option<String>,
        /// Do not attach STDIN
        #[arg(long = "no-stdin")]
        no_stdin: bool,
        container: String,
    },
    /// Block until one or more containers stop, then print their exit codes
    Wait {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// List containers
    Ps {
        /// Show all containers (default shows just running)
        #[arg(short, long)]
        all: bool,
        /// Only display container IDs
        #[arg(short, long)]
        quiet: bool,
        /// Filter output (label=KEY[=VALUE], name=, status=running|exited)
        #[arg(short, long, value_name = "filter")]
        filter: Vec<String>,
    },
    /// Remove one or more containers
    Rm {
        /// Force the removal of a running container (uses SIGKILL)
        #[arg(short, long)]
        force: bool,
        /// Remove anonymous volumes associated with the container
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Return low-level information on containers or images, as JSON
    Inspect {
        #[arg(required = true, value_name = "NAME|ID")]
        names: Vec<String>,
    },
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage containr's bridge network
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Download an image from a registry
    Pull {
        /// Image name: alpine, alpine:3.20, host:port/ns/repo:tag, repo@sha256:...
        name: String,
        /// Platform of a multi-platform image (os/arch[/variant]; default: this host's)
        #[arg(long, value_name = "string")]
        platform: Option<String>,
        /// Suppress progress output
        #[arg(short, long)]
        quiet: bool,
    },
    /// Log in to a registry (credentials go to ~/.docker/config.json)
    Login {
        /// Registry (host[:port]); Docker Hub if omitted
        server: Option<String>,
        /// User name (asked on stdin if omitted)
        #[arg(short, long)]
        username: Option<String>,
        /// Password (or use --password-stdin; asked without echo if neither)
        #[arg(short, long)]
        password: Option<String>,
        /// Read the password from stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// Log out from a registry
    Logout {
        /// Registry (host[:port]); Docker Hub if omitted
        server: Option<String>,
    },
    /// Load images from a tar archive (docker save's format or an OCI layout)
    Load {
        /// Read from this archive (tar, tar.gz, tar.zst) instead of stdin
        #[arg(short, long, value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Save images to a tar archive (an OCI layout with docker's manifest.json)
    Save {
        /// Write to this file instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Export a container's filesystem as a tar archive
    Export {
        /// Write to this file instead of stdout
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Container name or id
        container: String,
    },
    /// Copy files between a container and the host (CONTAINER:PATH, a
    /// local path, or - for a tar stream)
    Cp {
        /// Archive mode: keep the files' uid and gid
        #[arg(short, long)]
        archive: bool,
        /// Always follow a symlink in SRC
        #[arg(short = 'L', long)]
        follow_link: bool,
        /// CONTAINER:SRC_PATH, or a local path, or -
        src: String,
        /// CONTAINER:DEST_PATH, or a local path, or -
        dest: String,
    },
    /// Inspect changes to files or directories on a container's filesystem
    Diff {
        /// Container name or id
        container: String,
    },
    /// Create a new image from a container's changes
    Commit {
        /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
        #[arg(short, long, value_name = "string")]
        author: Option<String>,
        /// Apply a Dockerfile instruction to the image's config (CMD,
        /// ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME,
        /// ONBUILD)
        #[arg(short, long = "change", value_name = "list")]
        change: Vec<String>,
        /// Commit message
        #[arg(short, long, value_name = "string")]
        message: Option<String>,
        /// Pause a running container while its layer is read (--pause=false: do not)
        #[arg(short, long, value_name = "bool", num_args = 0..=1, require_equals = true, default_value_t = true, default_missing_value = "true", action = ArgAction::Set)]
        pause: bool,
        /// Container name or id
        container: String,
        /// The image's name, REPOSITORY[:TAG]
        name: Option<String>,
    },
    /// List port mappings or a specific mapping for the container
    Port {
        /// Container name or id
        container: String,
        /// PRIVATE_PORT[/PROTO]
        private: Option<String>,
    },
    /// Rename a container
    Rename {
        /// The container's name or id
        container: String,
        new_name: String,
    },
    /// Remove blobs and snapshots that no image uses
    Gc,
    /// Re-hash the image store and report corruption
    Verify {
        /// Unpack corrupt snapshots again from their (intact) layer blobs
        #[arg(long)]
        repair: bool,
    },
    /// Import a root filesystem tarball (tar, tar.gz, tar.zst) as an image
    Import {
        /// Apply a Dockerfile instruction to the image's config (CMD,
        /// ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME,
        /// ONBUILD)
        #[arg(short, long = "change", value_name = "list")]
        change: Vec<String>,
        /// Set a commit message for the imported image
        #[arg(short, long, value_name = "string")]
        message: Option<String>,
        /// The tarball, or - for stdin
        file: PathBuf,
        /// The image's name, e.g. myimage:1.0
        name: String,
    },
    /// List images
    Images {
        /// Only show image ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Remove one or more images (their layers stay until `containr gc`)
    Rmi {
        /// Remove the image's last name even if a container uses it
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
    /// Create a tag TARGET that refers to SOURCE
    Tag { source: String, target: String },
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Execute a command in a running container
    Exec(Box<ExecArgs>),
    /// Display the running processes of a container
    Top {
        container: String,
        /// ps options (default: -ef)
        #[arg(
            value_name = "ps OPTIONS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        ps_args: Vec<String>,
    },
    /// Pause all processes within one or more containers
    Pause {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers
    Unpause {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// (internal) the container's init, re-exec'd by `run`
    #[command(hide = true)]
    Init { fd: i32 },
    /// (internal) `exec`'s helper, which joins the container
    #[command(hide = true, name = "exec-init")]
    ExecInit { fd: i32 },
    /// (internal) man pages and shell completions, made by scripts/install
    #[command(hide = true, name = "__generate", subcommand)]
    Generate(GenerateCommand),
}

#[derive(Subcommand)]
enum GenerateCommand {
    /// Write containr.1 and one containr-COMMAND.1 per command into DIR
    Man { dir: PathBuf },
    /// Print the completion script for SHELL
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// Remove the bridge, its nftables table and its lease file, if no
    /// container uses them
    Prune {
        /// The bridge to remove
        #[arg(long, value_name = "name", default_value = network::DEFAULT_BRIDGE)]
        bridge: String,
    },
}

#[derive(Subcommand)]
enum VolumeCommand {
    /// Create a volume
    Create {
        /// Specify volume name
        #[arg(long = "name", value_name = "string")]
        name_flag: Option<String>,
        /// Set metadata for a volume (KEY[=VALUE])
        #[arg(long = "label", value_name = "list")]
        label: Vec<String>,
        /// Set driver specific options (type=tmpfs, device=tmpfs, o=size=64m)
        #[arg(short = 'o', long = "opt", value_name = "map")]
        opt: Vec<String>,
        /// The volume's name (default: a random id)
        name: Option<String>,
    },
    /// List volumes
    #[command(alias = "list")]
    Ls {
        /// Only display volume names
        #[arg(short, long)]
        quiet: bool,
        /// Filter output (name=, label=KEY[=VALUE], dangling=true|false)
        #[arg(short, long, value_name = "filter")]
        filter: Vec<String>,
    },
    /// Display detailed information on one or more volumes
    Inspect {
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove one or more volumes (refused while a container uses one)
    #[command(alias = "remove")]
    Rm {
        /// Do not fail on a volume that does not exist
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, value_name = "VOLUME")]
        names: Vec<String>,
    },
    /// Remove unused volumes (anonymous ones; all unused with -a)
    Prune {
        /// Remove all unused volumes, not just anonymous ones
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation (containr never prompts)
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Args)]
#[command(override_usage = "containr stats [OPTIONS] [CONTAINER...]")]
struct StatsArgs {
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    no_stream: bool,

    /// Containers, by name or id (default: all running)
    #[arg(value_name = "CONTAINER")]
    containers: Vec<String>,
}

#[derive(Subcommand)]
enum ContainerCommand {
    /// Display detailed information on one or more containers, as JSON
    Inspect {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Display detailed information on one or more images, as JSON
    Inspect {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
    },
}

#[derive(Args)]
#[command(
    disable_help_flag = true,
    override_usage = "containr run [OPTIONS] IMAGE [COMMAND] [ARG...]\n       containr run [OPTIONS] --rootfs DIR COMMAND [ARG...]"
)]
struct RunArgs {
    /// Root filesystem directory to run the container in (instead of an image)
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,

    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    entrypoint: Option<String>,

    /// Platform if the image is pulled (os/arch[/variant])
    #[arg(long, value_name = "string")]
    platform: Option<String>,

    /// Suppress the pull output
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Pull the image before running
    #[arg(long, value_name = "string", value_enum, default_value_t = PullPolicy::Missing)]
    pull: PullPolicy,

    /// Set environment variables (KEY=VALUE, or KEY to take the host's value)
    #[arg(short = 'e', long = "env", value_name = "list")]
    env: Vec<String>,

    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    env_file: Vec<PathBuf>,

    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    workdir: Option<String>,

    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    user: Option<String>,

    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    name: Option<String>,

    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    hostname: Option<String>,

    /// Keep STDIN open
    #[arg(short = 'i', long)]
    interactive: bool,

    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,

    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    read_only: bool,

    /// Memory limit (e.g. 32m, 1g)
    #[arg(short = 'm', long, value_name = "bytes")]
    memory: Option<String>,

    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    memory_swap: Option<String>,

    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    cpus: Option<String>,

    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    cpu_shares: Option<u64>,

    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    cpuset_cpus: Option<String>,

    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pids_limit: Option<i64>,

    /// Limit read rate (bytes per second) from a device (DEVICE:RATE)
    #[arg(long = "device-read-bps", value_name = "list")]
    device_read_bps: Vec<String>,

    /// Limit write rate (bytes per second) to a device (DEVICE:RATE)
    #[arg(long = "device-write-bps", value_name = "list")]
    device_write_bps: Vec<String>,

    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    cap_add: Vec<String>,

    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    cap_drop: Vec<String>,

    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,

    /// Security options (seccomp=PROFILE.json|unconfined, no-new-privileges=false)
    #[arg(long = "security-opt", value_name = "list")]
    security_opt: Vec<String>,

    /// Map container root to an unprivileged host id range (default, or START[:COUNT])
    #[arg(long = "userns-remap", alias = "user-remap", value_name = "range", num_args = 0..=1, require_equals = true, default_missing_value = "default")]
    userns_remap: Option<String>,

    /// Connect a container to a network (bridge, none, host, container:NAME)
    #[arg(long, value_name = "network")]
    network: Option<String>,

    /// Publish a container's port to the host ([IP:]HOSTPORT:CTRPORT[/tcp|udp])
    #[arg(short = 'p', long = "publish", value_name = "list")]
    publish: Vec<String>,

    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    dns: Vec<String>,

    /// Add a custom host-to-IP mapping (host:ip, ip may be host-gateway)
    #[arg(long = "add-host", value_name = "list")]
    add_host: Vec<String>,

    /// Bridge to attach to, created on first use (name starting with containr)
    #[arg(long, value_name = "name")]
    bridge: Option<String>,

    /// Subnet of the bridge when it is created (default: 10.88.0.0/16, or the
    /// first of 10.89-10.99.0.0/16 that no host route overlaps)
    #[arg(long, value_name = "cidr")]
    subnet: Option<String>,

    /// Automatically remove the container when it exits (and its anonymous volumes)
    #[arg(long)]
    rm: bool,

    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,

    /// Restart policy to apply when a container exits (no, on-failure[:N], always, unless-stopped)
    #[arg(long, value_name = "string")]
    restart: Option<String>,

    /// Logging driver for the container (json-file, none)
    #[arg(long = "log-driver", value_name = "string")]
    log_driver: Option<String>,

    /// Log driver options (max-size=SIZE, max-file=N)
    #[arg(long = "log-opt", value_name = "list")]
    log_opt: Vec<String>,

    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    stop_signal: Option<String>,

    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "int")]
    stop_timeout: Option<u32>,

    /// Command to run to check health (run with the container's /bin/sh -c)
    #[arg(long = "health-cmd", value_name = "string")]
    health_cmd: Option<String>,

    /// Time between running the check (ms|s|m|h) (default 30s)
    #[arg(long = "health-interval", value_name = "duration")]
    health_interval: Option<String>,

    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s)
    #[arg(long = "health-timeout", value_name = "duration")]
    health_timeout: Option<String>,

    /// Consecutive failures needed to report unhealthy (default 3)
    #[arg(long = "health-retries", value_name = "int")]
    health_retries: Option<u32>,

    /// Start period for the container to initialize before failures count (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    health_start_period: Option<String>,

    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,

    /// Action when the container becomes unhealthy (none, kill, restart)
    #[arg(long = "health-on-failure", value_name = "string")]
    health_on_failure: Option<String>,

    /// Bind mount a volume (HOST:CTR[:ro|rw][,PROPAGATION], NAME:CTR[:ro], or CTR)
    #[arg(short = 'v', long = "volume", value_name = "list")]
    volume: Vec<String>,

    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=,target=,readonly,...)
    #[arg(long = "mount", value_name = "mount")]
    mount: Vec<String>,

    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long = "tmpfs", value_name = "list")]
    tmpfs: Vec<String>,

    /// Mount volumes from the specified container(s) (CONTAINER[:ro|rw])
    #[arg(long = "volumes-from", value_name = "list")]
    volumes_from: Vec<String>,

    /// Ulimit options (NAME=SOFT[:HARD], e.g. nofile=1024:2048)
    #[arg(long = "ulimit", value_name = "ulimit")]
    ulimit: Vec<String>,

    /// Sysctl options (namespaced only: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)
    #[arg(long = "sysctl", value_name = "map")]
    sysctl: Vec<String>,

    /// Size of /dev/shm (default 64m)
    #[arg(long = "shm-size", value_name = "bytes")]
    shm_size: Option<String>,

    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    oom_score_adj: Option<i32>,

    /// Set meta data on a container (KEY[=VALUE])
    #[arg(short = 'l', long = "label", value_name = "list")]
    label: Vec<String>,

    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    label_file: Vec<PathBuf>,

    /// Add a host device to the container (HOST[:CTR][:PERMS])
    #[arg(long = "device", value_name = "list")]
    device: Vec<String>,

    /// Add a rule to the cgroup allowed devices list ('c 42:* rmw')
    #[arg(long = "device-cgroup-rule", value_name = "list")]
    device_cgroup_rule: Vec<String>,

    /// Write the container ID to the file
    #[arg(long = "cidfile", value_name = "string")]
    cidfile: Option<PathBuf>,

    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,

    /// Optional parent cgroup for the container
    #[arg(long = "cgroup-parent", value_name = "string")]
    cgroup_parent: Option<String>,

    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,

    /// The command to run and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    command: Vec<String>,
}

#[derive(Args)]
#[command(override_usage = "containr exec [OPTIONS] CONTAINER COMMAND [ARG...]")]
struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to take the host's value)
    #[arg(short = 'e', long = "env", value_name = "list")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    env_file: Vec<PathBuf>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    container: String,
    /// The command to run and its arguments
    #[arg(value_name = "COMMAND", required = true, trailing_var_arg = true)]
    command: Vec<String>,
}

impl From<ExecArgs> for container::enter::ExecOptions {
    fn from(a: ExecArgs) -> Self {
        container::enter::ExecOptions {
            args: a.command,
            detach: a.detach,
            interactive: a.interactive,
            tty: a.tty,
            env: a.env,
            env_files: a.env_file,
            user: a.user,
            workdir: a.workdir,
            privileged: a.privileged,
        }
    }
}

impl From<RunArgs> for RunOptions {
    fn from(a: RunArgs) -> RunOptions {
        // Without --rootfs, the first word is the image.
        let mut command = a.command;
        let image = (a.rootfs.is_none() && !command.is_empty()).then(|| command.remove(0));
        RunOptions {
            rootfs: a.rootfs,
            image,
            entrypoint: a.entrypoint,
            pull: a.pull,
            command,
            env: a.env,
            env_files: a.env_file,
            workdir: a.workdir,
            user: a.user,
            name: a.name,
            hostname: a.hostname,
            interactive: a.interactive,
            tty: a.tty,
            read_only: a.read_only,
            rm: a.rm,
            network: network::Options {
                mode: a.network,
                publish: a.publish,
                dns: a.dns,
                add_hosts: a.add_host,
                bridge: a.bridge,
                subnet: a.subnet,
            },
            limits: LimitFlags {
                memory: a.memory,
                memory_swap: a.memory_swap,
                cpus: a.cpus,
                cpu_shares: a.cpu_shares,
                cpuset_cpus: a.cpuset_cpus,
                pids_limit: a.pids_limit,
                device_read_bps: a.device_read_bps,
                device_write_bps: a.device_write_bps,
            },
            userns_remap: a.userns_remap,
            storage: containr::container::run::StorageFlags {
                volumes: a.volume,
                mounts: a.mount,
                tmpfs: a.tmpfs,
                volumes_from: a.volumes_from,
            },
            resources: containr::container::run::ResourceFlags {
                ulimits: a.ulimit,
                sysctls: a.sysctl,
                shm_size: a.shm_size,
                oom_score_adj: a.oom_score_adj,
                labels: a.label,
                label_files: a.label_file,
                cidfile: a.cidfile,
                devices: a.device,
                device_cgroup_rules: a.device_cgroup_rule,
                init: a.init,
                cgroup_parent: a.cgroup_parent,
            },
            detach: a.detach,
            life: containr::container::run::LifeFlags {
                restart: a.restart,
                log_driver: a.log_driver,
                log_opts: a.log_opt,
                stop_signal: a.stop_signal,
                stop_timeout: a.stop_timeout,
                health: containr::container::health::HealthFlags {
                    cmd: a.health_cmd,
                    interval: a.health_interval,
                    timeout: a.health_timeout,
                    retries: a.health_retries,
                    start_period: a.health_start_period,
                    no_healthcheck: a.no_healthcheck,
                    on_failure: a.health_on_failure,
                },
            },
            security: containr::security::Flags {
                cap_add: a.cap_add,
                cap_drop: a.cap_drop,
                privileged: a.privileged,
                security_opt: a.security_opt,
            },
        }
    }
}

/// Whether containr was invoked as `containr-oci` (a symlink or hard link
/// to it): then it speaks runc's command line.
fn invoked_as_oci() -> bool {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n == "containr-oci"))
        .unwrap_or(false)
}

fn main() -> ExitCode {
    if invoked_as_oci() {
        return cli::oci::main();
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match cli::internal_command(&args) {
        Some(("init", fd)) => return cli::exit(container::init::main(fd)),
        Some((_, fd)) => return cli::exit(container::enter::main(fd)),
        None => {}
    }
    let t0_ns = explain::monotonic_ns();
    let cli = match Cli::command()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return cli::usage_error(e),
    };
    // A tar on stdout must stay a tar.
    let tar_on_stdout = matches!(
        cli.command,
        Command::Export { output: None, .. } | Command::Save { output: None, .. }
    ) || matches!(&cli.command, Command::Cp { dest, .. } if dest == "-"
    );
    let reporting = Reporting {
        explain: cli.explain.is_some(),
        explain_format: if cli.explain.as_deref() == Some("json") {
            explain::Format::Json
        } else {
            explain::Format::Text
        },
        explain_to: if tar_on_stdout {
            explain::Sink::Stderr
        } else {
            explain::Sink::Stdout
        },
        log_level: cli.log_level,
        t0_ns,
    };
    match cli.command {
        Command::Init { fd } => return cli::exit(container::init::main(fd)),
        Command::ExecInit { fd } => return cli::exit(container::enter::main(fd)),
        Command::Generate(what) => {
            let result = match what {
                GenerateCommand::Man { dir } => cli::generate::man_pages(Cli::command(), &dir),
                GenerateCommand::Completions { shell } => {
                    cli::generate::completions(Cli::command(), shell)
                }
            };
            return cli::generate::finish(result);
        }
        _ => {}
    }
    let global = Global {
        root: cli.root,
        reporting,
        insecure_registries: cli.insecure_registry,
        pull_limits: registry::limits::Limits {
            min_rate: cli.min_rate,
            rate_window: std::time::Duration::from_secs(cli.rate_window),
            disk_reserve: cli.disk_reserve,
        },
    };
    cli::finish(
        explain::install(&global.reporting)
            .map_err(Error::Usage)
            .and_then(|()| dispatch(cli.command, &global)),
    )
}

/// Every command but `init`, once the command line is parsed: its status.
/// The commands on an existing container fail with docker's status 1.
fn dispatch(command: Command, global: &Global) -> Result<i32, Error> {
    let on_container = matches!(
        command,
        Command::Exec(_)
            | Command::Top { .. }
            | Command::Pause { .. }
            | Command::Unpause { .. }
            | Command::Kill { .. }
            | Command::Stop { .. }
            | Command::Restart { .. }
            | Command::Start { .. }
            | Command::Wait { .. }
            | Command::Logs { .. }
            | Command::Attach { .. }
            | Command::Port { .. }
            | Command::Rename { .. }
            | Command::Cp { .. }
            | Command::Diff { .. }
            | Command::Commit { .. }
    );
    let result = run_command(command, global);
    match on_container {
        true => result.map_err(Error::on_container),
        false => result,
    }
}

fn run_command(command: Command, global: &Global) -> Result<i32, Error> {
    let root = &global.root;
    match command {
        Command::Run(args) => {
            let (platform, quiet) = (args.platform.clone(), args.quiet);
            if args.detach {
                cli::lifecycle::run_detached(global, &(*args).into(), platform, quiet)
            } else {
                cli::container::run(global, &(*args).into(), platform, quiet)
            }
        }
        Command::Logs {
            follow,
            tail,
            since,
            until,
            timestamps,
            container,
        } => cli::lifecycle::logs(
            root,
            &container,
            &cli::lifecycle::LogsArgs {
                follow,
                tail,
                since,
                until,
                timestamps,
            },
        ),
        Command::Stop {
            time,
            signal,
            containers,
        } => cli::lifecycle::stop(root, &containers, time, signal.as_deref()),
        Command::Kill { signal, containers } => {
            cli::lifecycle::kill(root, &containers, signal.as_deref())
        }
        Command::Wait { containers } => cli::lifecycle::wait(root, &containers),
        Command::Attach {
            detach_keys,
            no_stdin,
            container,
        } => cli::lifecycle::attach(root, &container, detach_keys.as_deref(), no_stdin),
        Command::Create(args) => {
            let (platform, quiet) = (args.platform.clone(), args.quiet);
            cli::lifecycle::create(global, &(*args).into(), platform, quiet)
        }
        Command::Start {
            attach,
            interactive,
            containers,
        } => cli::lifecycle::start(root, &containers, attach, interactive),
        Command::Restart { time, containers } => cli::lifecycle::restart(root, &containers, time),
        Command::Boot { shutdown } => cli::lifecycle::boot(root, shutdown),
        Command::Stats(args) => cli::container::stats(root, &args.containers, args.no_stream),
        Command::Ps { all, quiet, filter } => cli::container::ps(root, all, quiet, &filter),
        Command::Rm {
            force,
            volumes,
            containers,
        } => cli::container::rm(root, &containers, force, volumes),
        Command::Volume(v) => match v {
            VolumeCommand::Create {
                name_flag,
                label,
                opt,
                name,
            } => cli::volume::create(root, name_flag.or(name), &label, &opt),
            VolumeCommand::Ls { quiet, filter } => cli::volume::ls(root, quiet, &filter),
            VolumeCommand::Inspect { names } => cli::volume::inspect(root, &names),
            VolumeCommand::Rm { force, names } => cli::volume::rm(root, &names, force),
            VolumeCommand::Prune { all, .. } => cli::volume::prune(root, all),
        },
        Command::Inspect { names } => cli::container::inspect(root, &names, Objects::Any),
        Command::Container(ContainerCommand::Inspect { containers }) => {
            cli::container::inspect(root, &containers, Objects::Containers)
        }
        Command::Export { output, container } => cli::container::export(root, output, &container),
        Command::Network(NetworkCommand::Prune { bridge }) => cli::network::prune(&bridge),
        Command::Pull {
            name,
            platform,
            quiet,
        } => cli::image::pull(global, &name, platform, quiet),
        Command::Login {
            server,
            username,
            password,
            password_stdin,
        } => cli::image::login(global, server, username, password, password_stdin),
        Command::Logout { server } => cli::image::logout(server),
        Command::Load { input } => cli::image::load(root, input, global.pull_limits.disk_reserve),
        Command::Save { output, images } => cli::image::save(root, output, &images),
        Command::Cp {
            archive,
            follow_link,
            src,
            dest,
        } => cli::fsops::cp(
            root,
            &src,
            &dest,
            archive,
            follow_link,
            global.pull_limits.disk_reserve,
        ),
        Command::Diff { container } => cli::fsops::diff(root, &container),
        Command::Commit {
            author,
            change,
            message,
            pause,
            container,
            name,
        } => cli::fsops::commit(
            root,
            &container,
            containr::container::commit::Options {
                name: name.as_deref(),
                changes: &change,
                message,
                author,
                pause,
                reserve: global.pull_limits.disk_reserve,
            },
        ),
        Command::Port { container, private } => {
            cli::fsops::port(root, &container, private.as_deref())
        }
        Command::Rename {
            container,
            new_name,
        } => cli::fsops::rename(root, &container, &new_name),
        Command::Gc => cli::image::gc(root),
        Command::Verify { repair } => {
            cli::image::verify(root, repair, global.pull_limits.disk_reserve)
        }
        Command::Import {
            change,
            message,
            file,
            name,
        } => cli::image::import(
            root,
            &change,
            message,
            file,
            &name,
            global.pull_limits.disk_reserve,
        ),
        Command::Images { quiet } => cli::image::images(root, quiet),
        Command::Rmi { force, images } => cli::image::rmi(root, &images, force),
        Command::Tag { source, target } => cli::image::tag(root, &source, &target),
        Command::Image(ImageCommand::Inspect { images }) => cli::image::inspect(root, &images),
        Command::Exec(args) => {
            let name = args.container.clone();
            cli::enter::exec(global, &name, &(*args).into())
        }
        Command::Top { container, ps_args } => cli::enter::top(root, &container, &ps_args),
        Command::Pause { containers } => cli::enter::pause(root, &containers),
        Command::Unpause { containers } => cli::enter::unpause(root, &containers),
        Command::Init { .. } | Command::ExecInit { .. } | Command::Generate(_) => {
            unreachable!("run before dispatch")
        }
    }
}
