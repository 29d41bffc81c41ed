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
    Ps {
        /// Select one of: table or json
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
        /// Options passed to ps(1) for the table
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PS_OPTIONS"
        )]
        ps_options: Vec<String>,
    },
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
    /// Update container resource constraints (--resources FILE, or - for stdin)
    Update {
        /// Path to a file with linux.resources (JSON), or - for stdin
        #[arg(short, long, value_name = "FILE")]
        resources: Option<PathBuf>,
        #[arg(value_name = "CONTAINER_ID")]
        id: String,
        /// runc's single-resource flags (--memory, --cpu-shares, ...): not supported, use --resources
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        other: Vec<String>,
    },
    /// Display container events such as OOM notifications and stats (not implemented yet)
    Events(NotYet),
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

/// Where errors are reported: stderr, and the `--log` file in its format.
struct Log {
    file: Option<PathBuf>,
    json: bool,
}

impl Log {
    fn error(&self, msg: &str) {
        eprintln!("containr-oci: {msg}");
        let Some(path) = &self.file else { return };
        let time = containr::util::rfc3339(containr::util::now());
        let line = if self.json {
            serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level=error msg={msg:?}")
        };
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// `containr-oci ...`: parse runc's command line and run it.
pub fn main() -> ExitCode {
    let cli = match OciCli::command()
        .try_get_matches()
        .and_then(|m| OciCli::from_arg_matches(&m))
    {
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
        Some(OciCommand::Init { fd }) => return super::exit(oci::init::main(fd)),
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
                Error::Io(containr::util::PathIo {
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
        OciCommand::Ps {
            format,
            id,
            ps_options,
        } => {
            let pids = oci::lifecycle::pids(root, &id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids).expect("JSON"));
                return Ok(0);
            }
            let list: Vec<String> = pids.iter().map(i32::to_string).collect();
            let opts = if ps_options.is_empty() {
                vec!["-f".to_string()]
            } else {
                ps_options
            };
            let status = std::process::Command::new("ps")
                .args(&opts)
                .arg("-p")
                .arg(list.join(","))
                .status()
                .map_err(|e| Error::Sys {
                    what: "running ps",
                    source: e,
                })?;
            Ok(status.code().unwrap_or(1))
        }
        OciCommand::Pause { id } => oci::lifecycle::pause(root, &id).map(|()| 0),
        OciCommand::Resume { id } => oci::lifecycle::resume(root, &id).map(|()| 0),
        OciCommand::Update {
            resources,
            id,
            other,
        } => {
            if !other.is_empty() || resources.is_none() {
                return Err(Error::Unsupported {
                    field: "update's single-resource flags".into(),
                    why: "give the whole linux.resources with --resources FILE (or -)".into(),
                });
            }
            let path = resources.expect("checked");
            let text = if path.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(
                    &mut std::io::Read::take(std::io::stdin(), 16 << 20),
                    &mut s,
                )
                .map(|_| s)
            } else {
                std::fs::read_to_string(&path)
            }
            .map_err(|e| Error::Bundle {
                path: path.clone(),
                why: e.to_string(),
            })?;
            let res = serde_json::from_str(&text).map_err(|e| Error::Bundle {
                path: path.clone(),
                why: e.to_string(),
            })?;
            oci::lifecycle::update(root, &id, &res).map(|()| 0)
        }
        OciCommand::Events(_) => Err(not_yet("events")),
        OciCommand::Checkpoint(_) | OciCommand::Restore(_) => Err(Error::Unsupported {
            field: "checkpoint/restore".into(),
            why: "containr-oci has no CRIU support".into(),
        }),
        OciCommand::Init { .. } | OciCommand::ExecInit { .. } => {
            unreachable!("handled before dispatch")
        }
    }
}

fn not_yet(command: &str) -> Error {
    Error::Unsupported {
        field: format!("the {command} command"),
        why: "not implemented yet".into(),
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
