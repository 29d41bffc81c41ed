//! containr's command line: parse, dispatch, report. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use containr::container::{self, Global, LimitFlags, RunOptions};
use containr::error::{Error, RUNTIME_ERROR};
use containr::explain::{self, Reporting};

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

    /// Print a numbered walkthrough of every primitive as it happens
    #[arg(long, global = true)]
    explain: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and run a new container
    Run(Box<RunArgs>),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// (internal) the container's init, re-exec'd by `run`
    #[command(hide = true)]
    Init { fd: i32 },
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

#[derive(Args)]
#[command(
    disable_help_flag = true,
    override_usage = "containr run [OPTIONS] --rootfs DIR COMMAND [ARG...]"
)]
struct RunArgs {
    /// Root filesystem directory to run the container in
    #[arg(long, value_name = "DIR")]
    rootfs: Option<PathBuf>,

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
    #[arg(long = "userns-remap", value_name = "range", num_args = 0..=1, default_missing_value = "default")]
    userns_remap: Option<String>,

    /// Connect a container to a network (none)
    #[arg(long, value_name = "network")]
    network: Option<String>,

    /// Automatically remove the container when it exits (always done for now)
    #[arg(long)]
    rm: bool,

    /// Print usage
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,

    /// The command to run and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    command: Vec<String>,
}

impl From<RunArgs> for RunOptions {
    fn from(a: RunArgs) -> RunOptions {
        RunOptions {
            rootfs: a.rootfs,
            command: a.command,
            env: a.env,
            env_files: a.env_file,
            workdir: a.workdir,
            user: a.user,
            name: a.name,
            hostname: a.hostname,
            interactive: a.interactive,
            tty: a.tty,
            read_only: a.read_only,
            network: a.network,
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
            security: containr::security::Flags {
                cap_add: a.cap_add,
                cap_drop: a.cap_drop,
                privileged: a.privileged,
                security_opt: a.security_opt,
            },
        }
    }
}

fn main() -> ExitCode {
    let t0_ns = explain::monotonic_ns();
    let cli = match Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let reporting = Reporting {
        explain: cli.explain,
        log_level: cli.log_level,
        t0_ns,
    };
    let result = match cli.command {
        Command::Init { fd } => return exit(container::init::main(fd)),
        Command::Stats(args) => containr::container::state::DataRoot::open(&cli.root)
            .map_err(|e| Error::from(container::Error::from(e)))
            .and_then(|data| container::stats::stats(&data, &args.containers, args.no_stream))
            .map(|()| container::Exit {
                status: 0,
                notice: None,
            }),
        Command::Run(args) => explain::install(&reporting)
            .map_err(Error::Usage)
            .and_then(|()| {
                let global = Global {
                    root: cli.root,
                    reporting,
                };
                container::run(&(*args).into(), &global)
            }),
    };
    match result {
        Ok(done) => {
            if let Some(notice) = done.notice {
                eprintln!("{notice}");
            }
            exit(done.status)
        }
        Err(e) => {
            eprintln!("{}", e.user_message());
            exit(e.exit_code())
        }
    }
}

/// Help and version go to stdout with status 0; anything else is a one-line
/// error with docker's status for a bad command line, 125.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = e.print();
        return exit(RUNTIME_ERROR);
    }
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ");
    eprintln!("containr: {first} (see 'containr --help')");
    exit(RUNTIME_ERROR)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}
