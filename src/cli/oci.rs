//! `containr-oci`: runc's command line, for engines (podman, containerd)
//! that drive a runtime through it. `containr` answers to it when invoked
//! under that name (a symlink); see `container::oci` for the lifecycle.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, FromArgMatches, Parser, Subcommand};
use containr::container::oci::{self, CreateOptions, Error, Root};

#[derive(Parser)]
#[command(
    name = "containr-oci",
    about = "containr-oci: an OCI runtime (runc's command line) built from Linux primitives",
    long_about = "containr-oci is a command line client for running applications packaged according to\n\
the Open Container Initiative (OCI) format: a bundle, a directory holding config.json\n\
and the container's root filesystem. It answers to runc's commands and flags.",
    disable_version_flag = true,
    after_help = "Run 'containr-oci COMMAND --help' for more information on a command."
)]
struct OciCli {
    /// Root directory for storage of container state (this should be located in tmpfs)
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "CONTAINR_OCI_ROOT",
        default_value = "/run/containr-oci"
    )]
    root: PathBuf,
    /// Set the log file to write runtime logs to (default is '/dev/stderr')
    #[arg(long, global = true, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Set the log format ('text' (default), or 'json')
    #[arg(long = "log-format", global = true, value_name = "FORMAT",
          default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    /// Enable debug logging
    #[arg(long, global = true)]
    debug: bool,
    /// Enable systemd cgroup support: cgroupsPath is slice:prefix:name
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Ignore cgroup permission errors ('true', 'false', or 'auto')
    #[arg(long, value_name = "VALUE", num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    rootless: Option<String>,
    /// Path to the criu binary (accepted for runc's command line; checkpoint is not supported)
    #[arg(long, value_name = "PATH", hide = true)]
    criu: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long, action = ArgAction::SetTrue)]
    version: bool,
    #[command(subcommand)]
    command: Option<OciCommand>,
}

#[derive(clap::Args, Debug, Clone)]
struct CreateArgs {
    /// Path to the root of the bundle directory, defaults to the current directory
    #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
    bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Do not use pivot root to jail process inside rootfs
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring for the container
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Path to an AF_UNIX socket which will receive a pidfd of the container's process (not supported yet)
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pidfd_socket: Option<PathBuf>,
    /// Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    /// The container's id
    #[arg(value_name = "CONTAINER_ID")]
    id: String,
}

impl CreateArgs {
    fn options(self, systemd_cgroup: bool) -> Result<CreateOptions, Error> {
        if self.pidfd_socket.is_some() {
            return Err(Error::Unsupported {
                field: "--pidfd-socket".into(),
                why: "not implemented yet".into(),
            });
        }
        Ok(CreateOptions {
            id: self.id,
            bundle: self.bundle,
            console_socket: self.console_socket,
            pid_file: self.pid_file,
            preserve_fds: self.preserve_fds,
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            systemd_cgroup,
        })
    }
}

#[derive(Subcommand)]
enum OciCommand {
    /// Create a container: its process waits for `start`
    Create(CreateArgs),
    /// Execute the user-defined process in a created container
    Start {
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
    },
    /// Output the state of a container
    State {
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
    },
    /// Kill sends the specified signal (default: SIGTERM) to the container's init process
    Kill {
        /// Send the signal to all processes in the container
        #[arg(short, long)]
        all: bool,
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
        #[arg(value_name = "SIGNAL", default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete any resources held by the container
    Delete {
        /// Forcibly delete the container if it is still running (uses SIGKILL)
        #[arg(short, long)]
        force: bool,
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
    },
    /// Create and run a container
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process
        #[arg(short, long)]
        detach: bool,
        /// Do not delete the container after it exits
        #[arg(long)]
        keep: bool,
        /// Accepted for runc's command line (deprecated there): containr-oci run never becomes a subreaper
        #[arg(long = "no-subreaper", hide = true)]
        no_subreaper: bool,
    },
    /// Lists containers started by containr-oci with the given root
    List {
        /// Select one of: table or json
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Display only container IDs
        #[arg(short, long)]
        quiet: bool,
    },
    /// Create a new specification file (config.json)
    Spec {
        /// Path to the root of the bundle directory
        #[arg(short = 'b', long, value_name = "DIR", default_value = ".")]
        bundle: PathBuf,
        /// Generate a configuration for a rootless container
        #[arg(long)]
        rootless: bool,
    },
    /// Show the enabled features (the runtime-spec features document)
    Features,
    /// Execute a new process inside a container
    Exec(Box<ExecArgs>),
    /// Display the processes running inside a container
    Ps(PsArgs),
    /// Pause all processes inside the container
    Pause {
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
    },
    /// Resume all processes previously paused
    Resume {
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
    },
    /// Update container resource constraints
    Update(UpdateArgs),
    /// Display container events such as OOM notifications and stats
    Events(EventsArgs),
    /// Checkpoint a running container (not supported: no CRIU)
    Checkpoint(NotYet),
    /// Restore a container from a previous checkpoint (not supported: no CRIU)
    Restore(NotYet),
    /// (internal) the container's init, cloned by create
    #[command(hide = true)]
    Init { fd: i32 },
    /// (internal) the process exec clones to join a container
    #[command(hide = true, name = "exec-init")]
    ExecInit { fd: i32 },
}

#[derive(clap::Args)]
struct ExecArgs {
    /// Path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal
    #[arg(long = "console-socket", value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// Path to an AF_UNIX socket which will receive a pidfd of the process (not supported yet)
    #[arg(long = "pidfd-socket", value_name = "PATH")]
    pidfd_socket: Option<PathBuf>,
    /// Current working directory in the container
    #[arg(long, value_name = "DIR")]
    cwd: Option<String>,
    /// Set environment variables (KEY=VALUE)
    #[arg(short, long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    tty: bool,
    /// UID (format: <uid>[:<gid>])
    #[arg(short, long, value_name = "UID[:GID]")]
    user: Option<String>,
    /// Additional gids
    #[arg(short = 'g', long = "additional-gids", value_name = "GID")]
    additional_gids: Vec<u32>,
    /// Path to the process.json
    #[arg(short, long, value_name = "FILE")]
    process: Option<PathBuf>,
    /// Detach from the container's process
    #[arg(short, long)]
    detach: bool,
    /// Specify the file to write the process id to
    #[arg(long = "pid-file", value_name = "FILE")]
    pid_file: Option<PathBuf>,
    /// Set the asm process label for the process commonly used with selinux (not supported)
    #[arg(long = "process-label", value_name = "LABEL")]
    process_label: Option<String>,
    /// Set the apparmor profile for the process (not supported)
    #[arg(long, value_name = "PROFILE")]
    apparmor: Option<String>,
    /// Set the no new privileges value for the process
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Add a capability to the bounding set for the process
    #[arg(short, long, value_name = "CAP")]
    cap: Vec<String>,
    /// Pass N additional file descriptors to the process
    #[arg(long = "preserve-fds", value_name = "N", default_value_t = 0)]
    preserve_fds: u32,
    /// Execute a process in a sub-cgroup (not supported)
    #[arg(long, value_name = "PATH")]
    cgroup: Vec<String>,
    /// Allow exec in a paused container
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    #[arg(value_name = "CONTAINER_ID")]
    id: String,
    /// The command and its arguments (unless --process)
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
}

impl ExecArgs {
    fn options(self) -> Result<(String, oci::exec::ExecOptions), Error> {
        let refuse = |flag: &str, why: &str| Error::Unsupported {
            field: flag.into(),
            why: why.into(),
        };
        if self.pidfd_socket.is_some() {
            return Err(refuse("--pidfd-socket", "not implemented yet"));
        }
        if self.process_label.is_some() {
            return Err(refuse(
                "--process-label",
                "containr-oci has no SELinux support",
            ));
        }
        if self.apparmor.is_some() {
            return Err(refuse("--apparmor", "containr-oci has no AppArmor support"));
        }
        if !self.cgroup.is_empty() {
            return Err(refuse("--cgroup", "not implemented yet"));
        }
        Ok((
            self.id,
            oci::exec::ExecOptions {
                process: self.process,
                args: self.command,
                tty: self.tty,
                console_socket: self.console_socket,
                pid_file: self.pid_file,
                detach: self.detach,
                cwd: self.cwd,
                env: self.env,
                user: self.user,
                additional_gids: self.additional_gids,
                caps: self.cap,
                no_new_privs: self.no_new_privs,
                preserve_fds: self.preserve_fds,
                ignore_paused: self.ignore_paused,
            },
        ))
    }
}

/// Any arguments of a command that is not there yet.
#[derive(clap::Args)]
struct NotYet {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    args: Vec<String>,
}

/// Where errors and warnings are reported: stderr, and the `--log` file in
/// its format.
#[derive(Clone)]
struct Log {
    file: Option<PathBuf>,
    json: bool,
}

impl Log {
    fn error(&self, msg: &str) {
        self.write("error", msg);
    }

    fn write(&self, level: &str, msg: &str) {
        match level {
            "error" => eprintln!("containr-oci: {msg}"),
            _ => eprintln!("containr-oci: {level}: {msg}"),
        }
        let Some(path) = &self.file else { return };
        let time = containr::util::rfc3339(containr::util::now());
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Route the library's warnings (`tracing::warn!`: a failed poststart
    /// hook, a capability this kernel does not know) here, as runc logs
    /// its warnings; nothing below warn, so the common path formats
    /// nothing.
    fn install(&self) {
        use tracing_subscriber::prelude::*;
        let layer = self
            .clone()
            .with_filter(tracing_subscriber::filter::LevelFilter::WARN);
        let _ = tracing_subscriber::registry().with(layer).try_init();
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Log {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut text = containr::explain::MessageText(String::new());
        event.record(&mut text);
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            _ => "warning",
        };
        self.write(level, &text.0);
    }
}

/// The commands an engine runs on every container, several times (`state`
/// polled, `start`, `delete`), in the plain form engines write them:
/// `[--root DIR] [--log FILE] [--log-format FORMAT] [--debug]
/// [--systemd-cgroup] state|start|delete [-f|--force] ID`. Read without
/// clap, whose command tree (every command's every flag) costs about 0.6 M
/// instructions to build: half of what such a command does in user space.
/// Anything else (another flag or form, `CONTAINR_OCI_ROOT` set, an id that
/// looks like a flag) is `None`, for clap to parse, and to report.
fn quick(args: &[std::ffi::OsString]) -> Option<OciCli> {
    if std::env::var_os("CONTAINR_OCI_ROOT").is_some() {
        return None;
    }
    let mut cli = OciCli {
        root: PathBuf::from("/run/containr-oci"),
        log: None,
        log_format: "text".into(),
        debug: false,
        systemd_cgroup: false,
        rootless: None,
        criu: None,
        version: false,
        command: None,
    };
    let mut words = args.iter().skip(1).map(|a| a.to_str());
    // clap refuses a flag given twice: so does this, by leaving it to clap.
    let mut seen = Vec::new();
    let command = loop {
        let word = words.next()??;
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (word, None),
        };
        if seen.contains(&flag) {
            return None;
        }
        seen.push(flag);
        let mut value = || {
            match inline {
                Some(v) => Some(v),
                None => words.next()?,
            }
            .filter(|v| !v.is_empty() && !v.starts_with('-'))
        };
        match flag {
            "--root" => cli.root = PathBuf::from(value()?),
            "--log" => cli.log = Some(PathBuf::from(value()?)),
            "--log-format" => {
                cli.log_format = value().filter(|f| ["text", "json"].contains(f))?.into()
            }
            "--debug" if inline.is_none() => cli.debug = true,
            "--systemd-cgroup" if inline.is_none() => cli.systemd_cgroup = true,
            "state" | "start" | "delete" => break flag,
            _ => return None,
        }
    };
    let mut force = false;
    let mut id = words.next()??;
    if command == "delete" && (id == "-f" || id == "--force") {
        force = true;
        id = words.next()??;
    }
    if id.is_empty() || id.starts_with('-') || words.next().is_some() {
        return None;
    }
    let id = id.to_string();
    cli.command = Some(match command {
        "state" => OciCommand::State { id },
        "start" => OciCommand::Start { id },
        _ => OciCommand::Delete { force, id },
    });
    Some(cli)
}

/// The container's init, cloned by create: `containr-oci init FD`.
fn init(fd: i32) -> ExitCode {
    let (status, error) = oci::init::main(fd);
    if let Some(e) = error {
        eprintln!("containr-oci: {e}");
    }
    super::exit(status)
}

/// `containr-oci ...`: parse runc's command line and run it.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match super::internal_command(&args) {
        Some(("init", fd)) => return init(fd),
        Some((_, fd)) => return super::exit(oci::exec::main(fd)),
        None => {}
    }
    let parsed = match quick(&args) {
        Some(cli) => Ok(cli),
        None => OciCli::command()
            .try_get_matches_from(&args)
            .and_then(|m| OciCli::from_arg_matches(&m)),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(1),
            };
        }
    };
    match cli.command {
        Some(OciCommand::Init { fd }) => return init(fd),
        Some(OciCommand::ExecInit { fd }) => return super::exit(oci::exec::main(fd)),
        _ => {}
    }
    if cli.version {
        println!("containr-oci version {}", env!("CARGO_PKG_VERSION"));
        println!("spec: {}", oci::SPEC_VERSION);
        return ExitCode::SUCCESS;
    }
    let log = Log {
        file: cli.log.clone(),
        json: cli.log_format == "json",
    };
    log.install();
    let Some(command) = cli.command else {
        let _ = OciCli::command().print_help();
        return ExitCode::SUCCESS;
    };
    let root = Root::new(cli.root);
    match dispatch(&root, cli.systemd_cgroup, command) {
        Ok(status) => super::exit(status),
        Err(e) => {
            let text = e.to_string();
            let one: Vec<&str> = text.lines().map(str::trim).collect();
            log.error(&one.join(" "));
            super::exit(e.status())
        }
    }
}

fn dispatch(root: &Root, systemd: bool, command: OciCommand) -> Result<i32, Error> {
    match command {
        OciCommand::Create(args) => oci::create(root, &args.options(systemd)?).map(|()| 0),
        OciCommand::Start { id } => oci::start(root, &id).map(|()| 0),
        OciCommand::State { id } => {
            let record = root.load(&id)?;
            let status = root.status(&record);
            print_json(&oci::state::document(&record, status));
            Ok(0)
        }
        OciCommand::Kill { all, id, signal } => {
            let sig = oci::lifecycle::parse_signal(&signal)?;
            oci::kill(root, &id, sig, all).map(|()| 0)
        }
        OciCommand::Delete { force, id } => oci::delete(root, &id, force).map(|()| 0),
        OciCommand::Run {
            create,
            detach,
            keep,
            no_subreaper: _,
        } => oci::run(root, &create.options(systemd)?, detach, keep),
        OciCommand::List { format, quiet } => {
            list(root, &format, quiet);
            Ok(0)
        }
        OciCommand::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                return Err(Error::SpecExists(path));
            }
            let spec = oci::spec::default_spec(rootless);
            let text = serde_json::to_string_pretty(&spec).expect("a spec serialises");
            std::fs::write(&path, text + "\n").map_err(|e| {
                Error::from(containr::util::PathIo {
                    path: path.clone(),
                    source: e,
                })
            })?;
            Ok(0)
        }
        OciCommand::Features => {
            print_json(&oci::spec::features());
            Ok(0)
        }
        OciCommand::Exec(args) => {
            let (id, opts) = args.options()?;
            oci::exec::exec(root, &id, &opts)
        }
        OciCommand::Ps(args) => ps(root, &args),
        OciCommand::Pause { id } => oci::ops::pause(root, &id).map(|()| 0),
        OciCommand::Resume { id } => oci::ops::resume(root, &id).map(|()| 0),
        OciCommand::Update(args) => {
            let resources = oci::ops::resources(args.resources.as_deref(), &args.flags())?;
            oci::ops::update(root, &args.id, &resources).map(|()| 0)
        }
        OciCommand::Events(args) => events(root, &args),
        OciCommand::Checkpoint(_) | OciCommand::Restore(_) => Err(Error::Unsupported {
            field: "checkpoint/restore".into(),
            why: "containr-oci has no CRIU support".into(),
        }),
        OciCommand::Init { .. } | OciCommand::ExecInit { .. } => {
            unreachable!("handled before dispatch")
        }
    }
}

fn print_json(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{}",
        serde_json::to_string_pretty(v).expect("JSON serialises")
    );
}

/// runc's `list`: a table (ID, PID, STATUS, BUNDLE, CREATED, OWNER), the
/// ids alone, or JSON.
fn list(root: &Root, format: &str, quiet: bool) {
    let mut rows = Vec::new();
    for id in root.ids() {
        let Ok(record) = root.load(&id) else { continue };
        let status = root.status(&record);
        rows.push(oci::state::document(&record, status));
    }
    if quiet {
        for r in &rows {
            println!("{}", r["id"].as_str().unwrap_or_default());
        }
    } else if format == "json" {
        println!(
            "{}",
            serde_json::to_string(&serde_json::Value::Array(rows)).expect("JSON")
        );
    } else {
        let cells: Vec<[String; 6]> = rows
            .iter()
            .map(|r| {
                let s = |k: &str| match &r[k] {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                [
                    s("id"),
                    s("pid"),
                    s("status"),
                    s("bundle"),
                    s("created"),
                    s("owner"),
                ]
            })
            .collect();
        super::print_table(
            ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
            &cells,
        );
    }
}

#[derive(clap::Args)]
struct PsArgs {
    /// Select one of: table or json
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    #[arg(value_name = "CONTAINER_ID")]
    id: String,
    /// Options for the host's ps (default -ef)
    #[arg(
        value_name = "PS_OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    ps_options: Vec<String>,
}

/// runc's `ps`: the container's host pids as JSON, or host `ps` (with the
/// options given, `-ef` by default) cut down to them.
fn ps(root: &Root, args: &PsArgs) -> Result<i32, Error> {
    let pids = oci::ops::pids(root, &args.id)?;
    if args.format == "json" {
        println!("{}", serde_json::to_string(&pids).expect("JSON"));
        return Ok(0);
    }
    let table = oci::ops::ps_table(&pids, &args.ps_options)?;
    print!("{table}");
    Ok(0)
}

#[derive(clap::Args)]
struct UpdateArgs {
    /// Path to a file with the resources to update (linux.resources of config.json), or - for stdin
    #[arg(short, long, value_name = "FILE")]
    resources: Option<PathBuf>,
    /// Memory limit (in bytes, or with a unit: 512m, 1g; -1 for none)
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    memory: Option<String>,
    /// Total memory usage (memory + swap); -1 for unlimited swap
    #[arg(long = "memory-swap", value_name = "SIZE", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory reservation or soft limit
    #[arg(
        long = "memory-reservation",
        value_name = "SIZE",
        allow_hyphen_values = true
    )]
    memory_reservation: Option<String>,
    /// Kernel memory limit (refused: deprecated by the kernel)
    #[arg(long = "kernel-memory", value_name = "SIZE", hide = true)]
    kernel_memory: Option<String>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(long = "cpu-shares", value_name = "N")]
    cpu_shares: Option<u64>,
    /// CPU CFS period to be used for hardcapping (in usecs)
    #[arg(long = "cpu-period", value_name = "USECS")]
    cpu_period: Option<u64>,
    /// CPU CFS hardcap limit (in usecs); -1 for none
    #[arg(long = "cpu-quota", value_name = "USECS", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU realtime period to be used for hardcapping (in usecs)
    #[arg(long = "cpu-rt-period", value_name = "USECS")]
    cpu_rt_period: Option<u64>,
    /// CPU realtime hardcap limit (in usecs)
    #[arg(
        long = "cpu-rt-runtime",
        value_name = "USECS",
        allow_hyphen_values = true
    )]
    cpu_rt_runtime: Option<i64>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus", value_name = "LIST")]
    cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems", value_name = "LIST")]
    cpuset_mems: Option<String>,
    /// Maximum number of pids allowed in the container; -1 for none
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Specifies per cgroup weight, range is from 10 to 1000
    #[arg(long = "blkio-weight", value_name = "N")]
    blkio_weight: Option<u16>,
    #[arg(value_name = "CONTAINER_ID")]
    id: String,
}

impl UpdateArgs {
    fn flags(&self) -> oci::ops::UpdateFlags {
        oci::ops::UpdateFlags {
            memory: self.memory.clone(),
            memory_swap: self.memory_swap.clone(),
            memory_reservation: self.memory_reservation.clone(),
            kernel_memory: self.kernel_memory.clone(),
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpu_rt_period: self.cpu_rt_period,
            cpu_rt_runtime: self.cpu_rt_runtime,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight,
        }
    }
}

#[derive(clap::Args)]
struct EventsArgs {
    /// Display the container's stats then exit
    #[arg(long)]
    stats: bool,
    /// Set the stats collection interval
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    interval: String,
    #[arg(value_name = "CONTAINER_ID")]
    id: String,
}

/// runc's `events`: JSON lines on stdout.
fn events(root: &Root, args: &EventsArgs) -> Result<i32, Error> {
    if args.stats {
        println!("{}", oci::ops::stats(root, &args.id)?);
        return Ok(0);
    }
    let interval = oci::ops::parse_interval(&args.interval)?;
    oci::ops::events(root, &args.id, interval, |line| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()
    })?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `main` goes on with, to compare the two parsers.
    fn summary(cli: &OciCli) -> String {
        let command = match &cli.command {
            Some(OciCommand::State { id }) => format!("state {id}"),
            Some(OciCommand::Start { id }) => format!("start {id}"),
            Some(OciCommand::Delete { force, id }) => format!("delete {force} {id}"),
            _ => "other".into(),
        };
        format!(
            "{:?} {:?} {} {} {} {:?} {:?} {} {command}",
            cli.root,
            cli.log,
            cli.log_format,
            cli.debug,
            cli.systemd_cgroup,
            cli.rootless,
            cli.criu,
            cli.version
        )
    }

    fn argv(line: &str) -> Vec<std::ffi::OsString> {
        std::iter::once("containr-oci")
            .chain(line.split(' ').filter(|w| !w.is_empty()))
            .map(Into::into)
            .collect()
    }

    #[test]
    fn quick_reads_what_clap_reads() {
        for line in [
            "state c1",
            "start c1",
            "delete c1",
            "delete -f c1",
            "delete --force c1",
            "--root /run/x state c1",
            "--root=/run/x start c.1_+-",
            "--log /tmp/l --log-format json --systemd-cgroup --debug state c1",
            "--log=/tmp/l --log-format=text delete --force c1",
        ] {
            let args = argv(line);
            let quick = quick(&args).unwrap_or_else(|| panic!("{line}: not quick"));
            let clap = OciCli::try_parse_from(&args).unwrap();
            assert_eq!(summary(&quick), summary(&clap), "{line}");
        }
    }

    #[test]
    fn anything_else_goes_to_clap() {
        for line in [
            "",
            "state",
            "state c1 c2",
            "state -h",
            "state --help",
            "delete c1 -f",
            "delete -f",
            "delete --force=true c1",
            "state --root /x c1",
            "--root state c1",
            "--root= state c1",
            "--root /a --root /b delete c1",
            "--debug --debug state c1",
            "--log-format xml state c1",
            "--debug=true state c1",
            "--rootless state c1",
            "kill c1",
            "create --bundle b c1",
            "list",
            "--version",
            "help",
            "state -c1",
        ] {
            assert!(quick(&argv(line)).is_none(), "{line}");
        }
    }

    #[test]
    fn internal_commands_are_exact() {
        assert_eq!(
            super::super::internal_command(&argv("init 5")),
            Some(("init", 5))
        );
        assert_eq!(
            super::super::internal_command(&argv("exec-init 12")),
            Some(("exec-init", 12))
        );
        for line in [
            "init",
            "init x",
            "init -1",
            "init 5 6",
            "state 5",
            "--root /r init 5",
        ] {
            assert_eq!(super::super::internal_command(&argv(line)), None, "{line}");
        }
    }
}
