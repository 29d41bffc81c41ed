//! The host side of `containr run`, in the steps a container goes
//! through, each a function a front end may call on its own:
//!
//! 1. [`prepare`]: check the request and resolve it (the image, pulled if
//!    need be, the command, user, environment, network plan, limits and
//!    confinement): nothing is created until all of it is valid;
//! 2. [`create`]: the container's record, cgroup, writable layer and
//!    network, and its init, cloned into new namespaces, where it waits for
//!    its configuration;
//! 3. [`start`]: send the init its configuration (it builds the
//!    container's world and execs the command) and wait until the command
//!    runs;
//! 4. [`wait`]: supervise it to its end (signals, the terminal);
//! 5. [`delete`]: release what only a live container needs and keep or
//!    remove the rest.
//!
//! [`run`] is the five in a row. A failure at any step drops what the
//! earlier ones made (each part undoes itself when dropped).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::channel::{Channel, Message};
use super::init::status_code;
use super::state::{ContainerRecord, DataRoot, NewContainer};
use super::user::UserSpec;
use super::{Config, Error, env, mounts, resources, selfexe, tty};
use crate::cgroup::{self, Cgroup, LimitFlags, Limits};
use crate::explain::{self, Reporting};
use crate::image::{RunImage, layers::RwLayer};
use crate::namespace::userns::IdMap;
use crate::namespace::{self, ChildExec, Namespaces};
use crate::network::{self, Mode};
use crate::registry::{PullOptions, PullPolicy};
use crate::security::Confinement;
use crate::step;

/// What the user asked `containr run` for, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub rootfs: Option<PathBuf>,
    /// The image to run, when not `--rootfs`.
    pub image: Option<String>,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd).
    pub entrypoint: Option<String>,
    /// `--pull`: when the image is pulled.
    pub pull: PullPolicy,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub name: Option<String>,
    pub hostname: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    pub read_only: bool,
    /// `--rm`: remove the container when it exits instead of keeping it.
    pub rm: bool,
    pub network: network::Options,
    pub limits: LimitFlags,
    pub security: crate::security::Flags,
    pub userns_remap: Option<String>,
    /// `-v`, `--mount`, `--tmpfs`, `--volumes-from`, as given.
    pub storage: StorageFlags,
    /// `--ulimit`, `--sysctl`, `--shm-size`, `--oom-score-adj`, `--label`,
    /// `--label-file`, `--cidfile`, as given.
    pub resources: ResourceFlags,
    /// `-d`: run in the background under a monitor of its own.
    pub detach: bool,
    /// `--restart`, `--log-driver`, `--log-opt`, `--stop-signal`,
    /// `--stop-timeout`, as given.
    pub life: LifeFlags,
}

/// The options of `containr run` for a container's life after it starts.
#[derive(Debug, Clone, Default)]
pub struct LifeFlags {
    pub restart: Option<String>,
    pub log_driver: Option<String>,
    pub log_opts: Vec<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    pub health: super::health::HealthFlags,
}

/// The resource options of `containr run` that are not cgroup limits.
#[derive(Debug, Clone, Default)]
pub struct ResourceFlags {
    pub ulimits: Vec<String>,
    pub sysctls: Vec<String>,
    pub shm_size: Option<String>,
    pub oom_score_adj: Option<i32>,
    pub labels: Vec<String>,
    pub label_files: Vec<PathBuf>,
    pub cidfile: Option<PathBuf>,
    pub devices: Vec<String>,
    pub device_cgroup_rules: Vec<String>,
    /// `--init`: containr's minimal init stays as PID 1, the command is
    /// its child; without it the command is PID 1 itself.
    pub init: bool,
    /// `--cgroup-parent`: the cgroup the container's is made under.
    pub cgroup_parent: Option<String>,
}

/// The storage options of `containr run`, as given.
#[derive(Debug, Clone, Default)]
pub struct StorageFlags {
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub volumes_from: Vec<String>,
}

impl StorageFlags {
    /// Parse every option (docker's order: `-v`, then `--mount`, then
    /// `--tmpfs`); nothing made yet.
    fn parse(&self) -> Result<Vec<mounts::Request>, mounts::Error> {
        let v = self.volumes.iter().map(|s| mounts::parse_volume(s));
        let m = self.mounts.iter().map(|s| mounts::parse_mount(s));
        let t = self.tmpfs.iter().map(|s| mounts::parse_tmpfs(s));
        v.chain(m).chain(t).collect()
    }
}

/// How a container ended.
#[derive(Debug)]
pub struct Exit {
    /// containr's own exit status: the command's, or 128+N.
    pub status: i32,
    /// Set when the kernel's OOM killer ended it.
    pub oom_killed: Option<OomKilled>,
}

/// A container the kernel's OOM killer ended.
#[derive(Debug)]
pub struct OomKilled {
    pub name: String,
    /// Its memory limit, bytes.
    pub limit: Option<u64>,
}

/// Signals the parent handles: passed on to the container, except
/// `SIGWINCH`, which becomes a window-size change on the pty (and `SIGCHLD`,
/// added separately, which tells us the init ended).
const HANDLED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGCONT,
    Signal::SIGWINCH,
];

/// Run a container to completion: [`prepare`], [`create`], [`start`],
/// [`wait`], [`delete`].
pub fn run(
    opts: &RunOptions,
    root: &Path,
    reporting: &Reporting,
    pull: &PullOptions,
) -> Result<Exit, Error> {
    let prepared = prepare(opts, root, pull)?;
    if prepared.needs_monitor() {
        let status = super::monitor::run_attached(prepared, root, reporting)?;
        return Ok(Exit {
            status,
            oom_killed: None,
        });
    }
    let mut created = create(prepared, root, reporting)?;
    let started = start(&mut created)?;
    let status = wait(&mut created, started)?;
    delete(created, status)
}

/// A run request checked and resolved; nothing made yet but the image (if
/// it had to be pulled).
pub struct Prepared {
    image: Option<RunImage>,
    /// The image's name, or none with `--rootfs`.
    image_name: Option<String>,
    /// `--rootfs`, canonical; empty for an image (its overlay is the root).
    rootfs: PathBuf,
    args: Vec<String>,
    net: network::Plan,
    user: Option<UserSpec>,
    workdir: String,
    /// `-e` and `--env-file`.
    user_env: Vec<String>,
    limits: Limits,
    confinement: Confinement,
    /// The seccomp profile `confinement` compiled, in OCI's form (JSON
    /// text, written into the spec as it is).
    seccomp: Option<Box<serde_json::value::RawValue>>,
    userns: Option<IdMap>,
    name: Option<String>,
    hostname: Option<String>,
    tty: bool,
    interactive: bool,
    read_only: bool,
    rm: bool,
    storage: Vec<mounts::Request>,
    volumes_from: Vec<String>,
    rlimits: Vec<oci_spec::runtime::PosixRlimit>,
    sysctl: std::collections::HashMap<String, String>,
    shm_size: Option<u64>,
    oom_score_adj: Option<i32>,
    labels: std::collections::BTreeMap<String, String>,
    cidfile: Option<PathBuf>,
    devices: Vec<oci_spec::runtime::LinuxDevice>,
    init: bool,
    cgroup_parent: Option<cgroup::Parent>,
    detach: bool,
    /// What the record keeps of `--restart`, `--log-driver`, `--stop-*`.
    life: super::state::Life,
    /// `--log-driver` and `--log-opt`, checked.
    pub(crate) log: super::logs::LogConfig,
}

/// Check and resolve everything `opts` asks for: the image (pulled as
/// `opts.pull` says, with `pull`'s options), the command, user, working
/// directory, environment, network plan, limits and confinement.
pub fn prepare(opts: &RunOptions, root: &Path, pull: &PullOptions) -> Result<Prepared, Error> {
    // Checked before any pull: a refused run must not download first.
    let userns = opts.userns_remap.as_deref().map(IdMap::parse).transpose()?;
    let storage = opts.storage.parse()?;
    let image = match &opts.image {
        Some(name) => Some(crate::registry::for_run(root, name, opts.pull, pull)?),
        None => None,
    };
    let (rootfs, args) = match &image {
        Some(img) => (
            PathBuf::new(),
            img.args(opts.entrypoint.as_deref(), &opts.command)?,
        ),
        None => (check_rootfs(opts.rootfs.as_deref())?, opts.command.clone()),
    };
    if args.is_empty() {
        return Err(Error::NoCommand);
    }
    let net = opts.network.plan()?;
    let r = &opts.resources;
    let nr_open = resources::nr_open();
    let rlimits = (r.ulimits.iter())
        .map(|u| resources::parse_ulimit(u, nr_open))
        .collect::<Result<Vec<_>, _>>()?;
    let sysctl = resources::parse_sysctls(
        &r.sysctls,
        net.mode != Mode::Bridge && net.mode != Mode::None,
    )?;
    let shm_size = r
        .shm_size
        .as_deref()
        .map(resources::parse_shm_size)
        .transpose()?;
    let oom_score_adj = r
        .oom_score_adj
        .map(resources::check_oom_score_adj)
        .transpose()?;
    let labels = resources::labels(&r.labels, &r.label_files)?;
    let cgroup_parent = match &r.cgroup_parent {
        Some(raw) => cgroup::Parent::parse(raw)?,
        None => None,
    };
    if let Some(path) = &r.cidfile
        && path.exists()
    {
        return Err(Error::CidFileExists(path.clone()));
    }
    // -u and -w win over the image's User and WorkingDir.
    let user = (opts.user.as_deref())
        .or(image.as_ref().and_then(|i| i.user()))
        .map(UserSpec::parse)
        .transpose()?;
    let workdir = (opts.workdir.as_deref())
        .or(image.as_ref().and_then(|i| i.workdir()))
        .unwrap_or("/")
        .to_string();
    if !workdir.starts_with('/') {
        return Err(Error::RelativeWorkdir(workdir));
    }
    let stdin = std::io::stdin();
    if opts.tty && opts.interactive && !opts.detach && !tty::is_terminal(stdin.as_fd()) {
        return Err(Error::NotATty);
    }
    let user_env = user_env(opts)?;
    let mut limits = opts.limits.parse()?;
    limits.all_devices = opts.security.privileged;
    let mut devices = Vec::new();
    for spec in &r.devices {
        let (device, rule) = resources::parse_device(spec)?;
        devices.push(device);
        limits.devices.push(rule);
    }
    if !devices.is_empty() && userns.is_some() {
        return Err(resources::Error::Device {
            spec: r.devices[0].clone(),
            what: "not supported with --userns-remap (no mknod in a user namespace)".into(),
        }
        .into());
    }
    for spec in &r.device_cgroup_rules {
        limits.devices.push(resources::parse_device_rule(spec)?);
    }
    let cache = root.join("cache");
    let confinement = opts.security.resolve(&cache)?;
    let seccomp = opts.security.oci_seccomp(&confinement.caps, &cache)?;
    let (mut life, log) = super::monitor::life(
        &opts.life,
        opts.detach,
        opts.rm,
        image.as_ref().and_then(|i| i.stop_signal()),
    )?;
    life.healthcheck = super::health::resolve(
        &opts.life.health,
        image.as_ref().and_then(|i| i.healthcheck()),
    )?;
    // What `start` needs to make it again.
    life.limits = Some(limits.clone());
    life.cgroup_parent = cgroup_parent
        .is_some()
        .then(|| r.cgroup_parent.clone())
        .flatten();
    life.network = Some(opts.network.clone());
    Ok(Prepared {
        image,
        image_name: opts.image.clone(),
        rootfs,
        args,
        net,
        user,
        workdir,
        user_env,
        limits,
        confinement,
        seccomp,
        userns,
        name: opts.name.clone(),
        hostname: opts.hostname.clone(),
        tty: opts.tty,
        interactive: opts.interactive,
        read_only: opts.read_only,
        rm: opts.rm,
        storage,
        volumes_from: opts.storage.volumes_from.clone(),
        rlimits,
        sysctl,
        shm_size,
        oom_score_adj,
        labels,
        cidfile: r.cidfile.clone(),
        devices,
        init: r.init,
        cgroup_parent,
        detach: opts.detach,
        life,
        log,
    })
}

impl Prepared {
    /// A restart policy or a health check is in effect: only a monitor
    /// applies them, so even an attached `run` starts under one.
    pub(crate) fn needs_monitor(&self) -> bool {
        self.life.restart != super::state::RestartPolicy::No || self.life.healthcheck.is_some()
    }

    /// Made as `run -d` makes it (logged, restartable), for a monitor.
    pub(crate) fn hand_to_monitor(&mut self) {
        self.detach = true;
        self.life.log_driver = Some(super::monitor::driver_name(self.log.driver).to_string());
    }

    pub(crate) fn tty(&self) -> bool {
        self.tty
    }

    pub(crate) fn interactive(&self) -> bool {
        self.interactive
    }
}

/// A created container: its parts, and its init waiting for its
/// configuration. Dropped before [`delete`] (a failed start), each part
/// undoes itself: the network and writable layer go, then the record, then
/// the cgroup.
pub struct Created {
    /// Restores the terminal when dropped.
    raw_mode: Option<tty::RawMode>,
    signals: SignalFd,
    channel: Channel,
    /// The idmapped root (with `--userns-remap`), sent with the config.
    idmapped: Option<OwnedFd>,
    /// The idmapped binds (with `--userns-remap`), sent after it.
    mount_trees: Vec<(usize, OwnedFd, bool)>,
    init: Pid,
    config: Config,
    /// What the init is sent by [`start`].
    run: Option<Box<super::init::RunInit>>,
    rm: bool,
    attachment: Option<network::Attachment>,
    rw: Option<RwLayer>,
    record: ContainerRecord,
    cgroup: Cgroup,
    /// The data root (its volumes: `--rm` removes the anonymous ones).
    root: PathBuf,
    detach: bool,
    /// What a restart needs to make the container again (with the config
    /// its record keeps): its limits and network plan.
    limits: Limits,
    net: network::Plan,
}

impl Created {
    pub fn id(&self) -> &str {
        &self.record.id
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The init's host pid.
    /// The data root it lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn init_pid(&self) -> Pid {
        self.init
    }

    /// SIGCHLD and the signals passed on to the container, blocked.
    pub fn signals(&self) -> &SignalFd {
        &self.signals
    }

    /// The container's record, which its creator owns.
    pub fn record_mut(&mut self) -> &mut ContainerRecord {
        &mut self.record
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

/// Create the container `prepared` describes, under the data root `root`:
/// its record, cgroup, writable layer and network, and its init in new
/// namespaces, placed in the cgroup and on the network, waiting for its
/// configuration.
pub fn create(prepared: Prepared, root: &Path, reporting: &Reporting) -> Result<Created, Error> {
    let p = prepared;
    let data = DataRoot::open(root)?;
    let hierarchy = cgroup::detect()?;
    settle_killed_runs(&data, hierarchy.as_ref());
    // 256 random bits in hex, as docker's container ids.
    let id = crate::util::random_hex(32);
    let (cgroup, resources) = hierarchy.create(&id, &p.limits, p.cgroup_parent.as_ref())?;
    let joined = find_joined(&data, &p.net)?;
    let storage = mounts::resolve(root, &p.storage, &p.volumes_from)?;
    let record = data.create(NewContainer {
        id: &id,
        name: p.name.as_deref(),
        rootfs: &p.rootfs,
        command: &p.args,
        cgroup: Some(cgroup.location().clone()),
        image: p.image_name.as_deref(),
        image_id: p.image.as_ref().map(|i| i.id.to_string()),
        auto_remove: p.rm,
        userns: p.userns,
        mounts: storage.points.clone(),
        labels: p.labels.clone(),
        life: p.life.clone(),
        ports: p.net.ports.clone(),
    });
    let mut record = match record {
        Ok(r) => r,
        Err(e) => {
            storage.discard(root);
            return Err(e.into());
        }
    };
    if let Some(path) = &p.cidfile {
        // O_EXCL: two runs given the same file cannot both write it.
        std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .and_then(|mut f| f.write_all(record.id.as_bytes()))
            .map_err(|source| Error::CidFile {
                path: path.clone(),
                source,
            })?;
    }
    let rw = match &p.image {
        Some(img) => Some(img.rw_layer(&record.id)?),
        None => None,
    };
    let rootfs = rw.as_ref().map_or(p.rootfs, |rw| rw.mount_point());
    let hostname = p
        .hostname
        .unwrap_or_else(|| default_hostname(p.net.mode, joined.as_ref(), &record.id));
    step!(
        "container {} ({}): state in {}",
        &record.id[..12],
        record.name,
        record.path.display()
    );
    let attachment = p.net.attach(&record.id, &record.name)?;
    let interface = attachment.as_ref().map(|a| a.interface());
    let mut etc_files = vec![("/etc/hostname".to_string(), format!("{hostname}\n"))];
    etc_files.extend(
        p.net
            .etc_files(&hostname, &record.name, interface.as_ref(), joined.as_ref()),
    );

    // Docker's order: its defaults, the image's Env, then -e.
    let image_env = p.image.as_ref().map(|i| i.env()).unwrap_or_default();
    let config = Config {
        id: record.id.clone(),
        env: env::merge(
            env::merge(env::defaults(&hostname, p.tty), image_env),
            p.user_env,
        ),
        hostname,
        rootfs,
        overlay: rw.as_ref().map(|rw| crate::rootfs::overlay::Overlay {
            base: rw.layers.base.clone(),
            lower: rw.layers.lower.clone(),
            upper: rw.layers.upper.clone(),
            work: rw.layers.work.clone(),
        }),
        args: p.args,
        workdir: p.workdir,
        user: p.user,
        tty: p.tty,
        interactive: p.interactive,
        readonly: p.read_only,
        network: p.net.mode,
        interface,
        join_netns: joined.map(|j| j.pid),
        etc_files,
        mounts: storage.mounts,
        copy_up: storage.copy_up,
        rlimits: p.rlimits,
        sysctl: p.sysctl,
        shm_size: p.shm_size,
        oom_score_adj: p.oom_score_adj,
        devices: p.devices,
        init: p.init,
        cgroupfs: cgroupfs(cgroup.location()),
        confinement: p.confinement,
        userns: p.userns,
        reporting: reporting.clone(),
        next_step: 0,
    };
    // Before the init may change it (an idmapped overlay is taken out).
    record.set_config(&config)?;
    // The container as an OCI bundle, written once: its spec, beside the
    // /etc files it binds.
    let dir = record.dir()?;
    let (mut spec, extras) = build_spec(&config, resources, &cgroup, &dir);
    super::spec::write(&dir, &mut spec, p.seccomp.as_deref(), &config.etc_files)
        .map_err(crate::util::io_err(&dir))?;
    let init = clone_init(config, spec, extras, &cgroup, attachment.as_ref(), p.detach)?;
    Ok(Created {
        detach: p.detach,
        limits: p.limits,
        net: p.net,
        rw,
        attachment,
        record,
        cgroup,
        root: root.to_path_buf(),
        config: init.config,
        run: Some(init.run),
        rm: p.rm,
        init: init.pid,
        channel: init.channel,
        idmapped: init.idmapped,
        mount_trees: init.mount_trees,
        signals: init.signals,
        raw_mode: init.raw_mode,
    })
}

/// The container's spec and extras, for its init (and, on `create`, its
/// bundle): from its config, the resources its cgroup got and where it is.
fn build_spec(
    config: &Config,
    resources: oci_spec::runtime::LinuxResources,
    cgroup: &Cgroup,
    dir: &Path,
) -> (oci_spec::runtime::Spec, super::spec::RunExtras) {
    super::spec::build(super::spec::Inputs {
        config,
        resources,
        cgroups_path: cgroup::oci::cgroups_path(cgroup.location()),
        dir,
    })
}

/// With `--network container:NAME`: NAME's network, as NAME is now (by
/// the pid of its running init).
fn find_joined(data: &DataRoot, net: &network::Plan) -> Result<Option<network::Joined>, Error> {
    let find = |name| network::Joined::find(name, data.find(name).and_then(|s| s.init_pid()));
    Ok(net.join.as_deref().map(find).transpose()?)
}

/// Killed runs leave empty cgroups. Only then are the records read (all of
/// them, kept containers included: too slow for every run): those of runs
/// that are gone are settled, their cgroups removed. An empty cgroup with
/// no record (a run killed before it wrote one) goes after a minute.
fn settle_killed_runs(data: &DataRoot, hierarchy: &dyn cgroup::Hierarchy) {
    let empty = hierarchy.empty();
    if !empty.is_empty() {
        data.reclaim_stale();
        for (location, age) in empty {
            if age > std::time::Duration::from_secs(60) {
                cgroup::Cgroup::remove_stale(location);
            }
        }
    }
}

/// The container's hostname when `-h` does not give one: the short id, or
/// as docker, the host's with `--network host` and the joined container's
/// with `--network container:NAME`.
fn default_hostname(mode: Mode, joined: Option<&network::Joined>, id: &str) -> String {
    match mode {
        Mode::Host => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Mode::Container => joined.map(|j| j.hostname.clone()).unwrap_or_default(),
        _ => id[..12].to_string(),
    }
}

/// The hierarchies the container has a cgroup of its own in: those it
/// sees at `/sys/fs/cgroup`. (A v1 hierarchy it is not placed in would
/// show containr's own cgroup there, and its other containers.)
fn cgroupfs(location: &cgroup::Location) -> crate::rootfs::CgroupFs {
    match location {
        cgroup::Location::V2(_) => crate::rootfs::CgroupFs::V2,
        cgroup::Location::V1(dirs) => {
            crate::rootfs::CgroupFs::V1(dirs.iter().map(|(c, _)| c.clone()).collect())
        }
    }
}

/// The init, cloned and waiting for its configuration.
struct Init {
    pid: Pid,
    config: Config,
    run: Box<super::init::RunInit>,
    channel: Channel,
    idmapped: Option<OwnedFd>,
    mount_trees: Vec<(usize, OwnedFd, bool)>,
    signals: SignalFd,
    raw_mode: Option<tty::RawMode>,
}

/// Clone the init into its namespaces, inside `cgroup`, plugged into the
/// network; with a user namespace, write its id maps and make its
/// idmapped root.
fn clone_init(
    config: Config,
    spec: oci_spec::runtime::Spec,
    mut extras: super::spec::RunExtras,
    cgroup: &Cgroup,
    attachment: Option<&network::Attachment>,
    detach: bool,
) -> Result<Init, Error> {
    let exe = selfexe::prepare().map_err(Error::sys("preparing containr's binary for the init"))?;
    let (ours, theirs) = Channel::pair().map_err(Error::sys("socketpair"))?;

    let signals = supervision_signals()?;

    let stdin = std::io::stdin();
    // Detached, the terminal is the monitor's pty, not the user's.
    let raw_mode = if config.tty && config.interactive && !detach {
        Some(
            tty::RawMode::enable(stdin.as_fd())
                .map_err(Error::sys_nix("setting the terminal to raw mode"))?,
        )
    } else {
        None
    };

    let namespaces = Namespaces {
        flags: super::oci::parts::clone_flags(&spec),
    };
    let argv = vec![
        c"containr".to_owned(),
        c"init".to_owned(),
        std::ffi::CString::new(theirs.as_fd().as_raw_fd().to_string()).expect("digits"),
    ];
    let entry = cgroup.location().entry()?;
    let ready = match config.userns {
        Some(_) => {
            Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys_nix("pipe"))?)
        }
        None => None,
    };
    let (init, placed) = namespace::clone_and_exec(
        namespaces,
        &ChildExec {
            exe: exe.as_exe(),
            keep_fd: theirs.as_fd(),
            preserve_fds: 0,
            argv,
            cgroup: entry.target.as_ref().map(|f| f.as_fd()),
            join: &entry.tasks,
            userns_ready: ready.as_ref().map(|(r, _)| r.as_fd()),
        },
    )?;
    drop(theirs);
    drop(exe);
    step!("the init (host pid {init}) re-execs containr as `containr init`");
    // Placed before it gets its config, so nothing it does escapes the limits.
    let placed = if placed {
        if entry.target.is_some() {
            step!("clone3(CLONE_INTO_CGROUP) started the init inside its cgroup");
        } else {
            step!(
                "echo 0 > tasks of each v1 hierarchy, by the init itself before its exec: it and all it forks are inside the limits"
            );
        }
        Ok(())
    } else {
        cgroup.add(init.as_raw()).map_err(Error::from)
    };
    let plugged = placed.and_then(|()| match attachment {
        Some(a) => a.plug(init.as_raw() as u32).map_err(Error::from),
        None => Ok(()),
    });
    if let Err(e) = plugged {
        // The init may be waiting on the user namespace's pipe as well as
        // for its config: only a kill ends it for sure.
        let _ = kill(init, Signal::SIGKILL);
        let _ = waitpid(init, None);
        return Err(e);
    }

    // A user namespace needs its id maps before the init can be anyone,
    // and the rootfs an idmapped view only the host side can make.
    let idmapped = match config.userns {
        Some(map) => {
            let (_, wake) = ready.as_ref().expect("made with the user namespace");
            match map_user_namespace(&config, &mut extras, init, map, wake.as_fd()) {
                Ok(tree) => Some(tree),
                Err(e) => {
                    let _ = kill(init, Signal::SIGKILL);
                    let _ = waitpid(init, None);
                    return Err(e.into());
                }
            }
        }
        None => None,
    };
    // Its binds and volumes, idmapped the same way (here: the init may
    // not idmap what the host owns).
    let mount_trees = match config.userns {
        Some(_) => match namespace::userns::idmapped_binds(
            spec.mounts().as_deref().unwrap_or_default(),
            init,
        ) {
            Ok(trees) => trees,
            Err(e) => {
                let _ = kill(init, Signal::SIGKILL);
                let _ = waitpid(init, None);
                return Err(e.into());
            }
        },
        None => Vec::new(),
    };
    let run = Box::new(super::init::RunInit {
        spec,
        extras,
        confinement: config.confinement.clone(),
        reporting: config.reporting.clone(),
        next_step: 0,
        mount_trees: mount_trees.len(),
    });
    Ok(Init {
        pid: init,
        config,
        run,
        channel: ours,
        idmapped,
        mount_trees,
        signals,
        raw_mode,
    })
}

/// The signals [`supervise`] handles, blocked (before the child is made,
/// so none is lost in between; the child unblocks them before it execs)
/// and read from a signalfd.
pub(super) fn supervision_signals() -> Result<SignalFd, Error> {
    let mut handled = SigSet::empty();
    handled.add(Signal::SIGCHLD);
    for sig in HANDLED {
        handled.add(sig);
    }
    handled
        .thread_block()
        .map_err(Error::sys_nix("sigprocmask"))?;
    SignalFd::with_flags(&handled, SfdFlags::SFD_CLOEXEC).map_err(Error::sys_nix("signalfd"))
}

/// Give the init's user namespace its id maps, wake the init (it waits for
/// a byte on `wake` before it execs), and make the idmapped root it will
/// attach: the whole overlay for an image (taken out of `extras`: the init
/// no longer mounts it), the rootfs directory otherwise.
fn map_user_namespace(
    config: &Config,
    extras: &mut super::spec::RunExtras,
    init: Pid,
    map: IdMap,
    wake: BorrowedFd<'_>,
) -> Result<OwnedFd, namespace::Error> {
    namespace::userns::write_maps(init, map)?;
    nix::unistd::write(wake, b"1").map_err(|e| namespace::Error::UserNs {
        what: "waking the init",
        source: e.into(),
    })?;
    match extras.overlay.take() {
        Some(overlay) => namespace::userns::idmapped_overlay(&overlay, init, map),
        None => namespace::userns::idmapped_rootfs(&config.rootfs, init),
    }
}

/// How [`start`] left the container.
pub enum Started {
    /// Its command runs (or its init reported why it could not: `failure`,
    /// returned once the init has exited).
    Running {
        /// The pty master, with `-t`.
        master: Option<OwnedFd>,
        failure: Option<Error>,
    },
    /// The init died before it read its configuration, with this status.
    Exited(i32),
}

/// Release the init: send it its configuration, then wait until its
/// command has exec'd (or it says why not).
pub fn start(created: &mut Created) -> Result<Started, Error> {
    let Some(mut run) = created.run.take() else {
        return Err(Error::InContainer {
            code: 125,
            message: "the container's init has had its configuration".into(),
        });
    };
    run.next_step = explain::next_step();
    if created
        .channel
        .send_with_fd(
            &Message::Run(run),
            created.idmapped.take().as_ref().map(|t| t.as_fd()),
        )
        .is_err()
    {
        // The init died before reading: its status says why.
        return Ok(Started::Exited(status_code(
            waitpid(created.init, None).ok(),
        )));
    }
    for (index, tree, dir) in std::mem::take(&mut created.mount_trees) {
        let tree_sent = created
            .channel
            .send_with_fd(&Message::MountTree { index, dir }, Some(tree.as_fd()));
        if tree_sent.is_err() {
            return Ok(Started::Exited(status_code(
                waitpid(created.init, None).ok(),
            )));
        }
    }
    let mut master: Option<OwnedFd> = None;
    let mut failure = None;
    loop {
        match created.channel.recv() {
            Ok(Some((Message::Pty, fd))) => {
                if let Some(fd) = &fd
                    && !created.detach
                    && let Some(ws) = host_window_size()
                {
                    tty::set_window_size(fd.as_fd(), &ws);
                }
                master = fd;
            }
            Ok(Some((Message::Started { next_step }, _))) => {
                explain::continue_from(next_step);
                break;
            }
            // Without --init, PID 1 itself is about to exec the command.
            Ok(Some((Message::Steps { next_step }, _))) => explain::continue_from(next_step),
            Ok(Some((Message::Failed { code, message }, _))) => {
                failure = Some(Error::InContainer { code, message });
                break;
            }
            // End of file: without --init, the command exec'd (the
            // channel closes on exec); or the init died without a word
            // (killed, or crashed), which its status tells.
            Ok(Some(_)) | Ok(None) | Err(_) => break,
        }
    }
    Ok(Started::Running { master, failure })
}

/// Supervise the started container until its init exits; its status.
/// The terminal is restored then.
pub fn wait(created: &mut Created, started: Started) -> Result<i32, Error> {
    let (master, failure) = match started {
        Started::Exited(status) => {
            drop(created.raw_mode.take());
            return Ok(status);
        }
        Started::Running { master, failure } => (master, failure),
    };
    let status = supervise(
        created.init,
        &created.signals,
        master,
        created.config.interactive,
    );
    drop(created.raw_mode.take());
    let status = status?;
    step!(
        "waitpid(init) -> {status}: PID 1 exited, the kernel tore down its namespaces and mounts"
    );
    match failure {
        Some(e) => Err(e),
        None => Ok(status),
    }
}

/// The container exited with `status`: release what only a live container
/// needs (network, cgroup), and with `--rm` the rest; otherwise keep its
/// writable layer and record, marked exited.
pub fn delete(created: Created, status: i32) -> Result<Exit, Error> {
    let Created {
        rw,
        attachment,
        record,
        cgroup,
        rm,
        root,
        ..
    } = created;
    // 137 is SIGKILL's status; the cgroup's counter tells whether the
    // kernel's OOM killer sent it.
    let oom_killed = (status == 137 && cgroup.oom_killed()).then(|| OomKilled {
        name: record.name.clone(),
        limit: cgroup.memory_limit(),
    });
    drop(attachment);
    step!("rmdir the cgroup");
    super::pause::remove_freezer(&record.id, cgroup.location());
    drop(cgroup);
    match rw {
        Some(rw) if !rm => rw.keep(),
        rw => drop(rw),
    }
    if rm {
        step!("remove {} (the container's state)", record.path.display());
    } else {
        step!(
            "mark {} exited ({status}): kept until `containr rm`",
            record.path.display()
        );
    }
    let all_mounts = record.mounts().to_vec();
    let mounts = rm.then(|| all_mounts.clone());
    let mut record = record;
    if oom_killed.is_some() {
        record.note_oom_killed();
    }
    record.finish(status)?;
    // A tmpfs volume's mount goes with its last live user.
    let volumes: Vec<&str> = all_mounts
        .iter()
        .filter_map(|m| m.name.as_deref())
        .collect();
    if !volumes.is_empty() {
        let data = DataRoot::open(&root)?;
        super::volume::Store::open(&root)?.release_tmpfs(&data, Some(&volumes))?;
    }
    if let Some(mounts) = mounts {
        let data = DataRoot::open(&root)?;
        super::volume::remove_anonymous(&data, &mounts)?;
    }
    Ok(Exit { status, oom_killed })
}

/// The container exited with `status` and its restart policy brings it
/// back: release what only a live container needed (its network, cgroup,
/// init), keep its record and writable layer, and make it again, with a
/// new init waiting for its configuration. If that fails, the container is
/// left as [`delete`] leaves it (kept, exited with `status`).
pub fn recreate(created: Created, status: i32) -> Result<Created, Error> {
    let Created {
        raw_mode,
        signals,
        channel,
        idmapped,
        mount_trees,
        init: _,
        config: _,
        run: _,
        rm,
        attachment,
        rw,
        record,
        cgroup,
        root,
        detach,
        limits,
        net,
    } = created;
    drop((raw_mode, signals, channel, idmapped, mount_trees));
    drop(attachment);
    drop(cgroup);
    make_again(record, rw, limits, net, rm, root, detach, status)
}

/// `containr create`: the container made, then parked: its init, cgroup
/// and network released, its record (marked created) and writable layer
/// kept until `start`.
pub fn park(created: Created) -> Result<String, Error> {
    let Created {
        init,
        attachment,
        rw,
        record,
        cgroup,
        ..
    } = created;
    let _ = kill(init, Signal::SIGKILL);
    let _ = waitpid(init, None);
    drop(attachment);
    drop(cgroup);
    if let Some(rw) = rw {
        rw.keep();
    }
    let id = record.id.clone();
    record.park()?;
    Ok(id)
}

/// `containr start` of a created or exited container whose record this
/// process has adopted: made again from its record, with a new init
/// waiting for its configuration. If that fails, it is left exited.
pub fn revive(record: ContainerRecord, root: &Path) -> Result<Created, Error> {
    let state = record.state().clone();
    let prior = state.exit_code.unwrap_or(125);
    let plan = state.life.network.as_ref().map(|n| n.plan()).transpose();
    let (limits, net) = match (state.life.limits.clone(), plan) {
        (Some(l), Ok(Some(n))) => (l, n),
        (_, Err(e)) => {
            record.finish(prior)?;
            return Err(e.into());
        }
        _ => {
            record.finish(prior)?;
            return Err(super::state::Error::NoConfig(state.name).into());
        }
    };
    let rw = state
        .config
        .as_ref()
        .and_then(|c| c.overlay.as_ref())
        .map(|o| RwLayer {
            dir: root.join("rw").join(&state.id),
            layers: crate::image::layers::Layers {
                base: o.base.clone(),
                lower: o.lower.clone(),
                upper: o.upper.clone(),
                work: o.work.clone(),
            },
        });
    // Started again, it runs under a monitor, whatever it ran under.
    let detach = true;
    make_again(
        record,
        rw,
        limits,
        net,
        state.auto_remove,
        root.to_path_buf(),
        detach,
        prior,
    )
}

/// A tmpfs volume is unmounted when its last user exits: a container made
/// again mounts it at its `_data` again (or shares the mount its live
/// users hold), or it would get the plain directory under it.
fn remount_tmpfs_volumes(root: &Path, points: &[mounts::MountPoint]) -> Result<(), Error> {
    let names: Vec<&str> = (points.iter())
        .filter(|p| p.kind == "volume")
        .filter_map(|p| p.name.as_deref())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let store = super::volume::Store::open(root)?;
    let data = DataRoot::open(root)?;
    for name in names {
        let volume = store.get(name)?;
        if let Some(options) = volume.tmpfs_options() {
            let lock = store.lock_tmpfs()?;
            store.mount_tmpfs(&lock, &data, &volume, &options)?;
        }
    }
    Ok(())
}

/// Make a container again from its record: cgroup, network, init. On
/// failure it is kept, exited with `status`.
#[allow(clippy::too_many_arguments)]
fn make_again(
    record: ContainerRecord,
    rw: Option<RwLayer>,
    limits: Limits,
    net: network::Plan,
    rm: bool,
    root: PathBuf,
    detach: bool,
    status: i32,
) -> Result<Created, Error> {
    if let Some(rw) = &rw {
        // A `volatile` overlay refuses to mount on a work directory it
        // marked: the last mount is gone, its writes are in the page cache.
        let _ = std::fs::remove_dir_all(rw.layers.work.join("work"));
    }
    let made = (|| {
        let hierarchy = cgroup::detect()?;
        // Checked when the container was first made; checked again, as
        // anything read back from the disk.
        let parent = (record.state().life.cgroup_parent.as_deref())
            .map(cgroup::Parent::parse)
            .transpose()?
            .flatten();
        let (cgroup, resources) = hierarchy.create(&record.id, &limits, parent.as_ref())?;
        remount_tmpfs_volumes(&root, record.mounts())?;
        let attachment = net.attach(&record.id, &record.name)?;
        let mut config = *(record.state().config.clone())
            .ok_or_else(|| super::state::Error::NoConfig(record.name.clone()))?;
        if let Some(a) = &attachment {
            let interface = a.interface();
            config.etc_files = vec![("/etc/hostname".into(), format!("{}\n", config.hostname))];
            config.etc_files.extend(net.etc_files(
                &config.hostname,
                &record.name,
                Some(&interface),
                None,
            ));
            config.interface = Some(interface);
        }
        if net.join.is_some() {
            // Found again, as on the first start: the pid its init had
            // then is gone once that one was made again, and could be any
            // process's by now.
            let joined = find_joined(&DataRoot::open(&root)?, &net)?;
            config.join_netns = joined.map(|j| j.pid);
        }
        config.cgroupfs = cgroupfs(cgroup.location());
        // The bundle's spec binds them: a new address makes new ones.
        let dir = record.dir()?;
        super::spec::write_etc_files(&dir, &config.etc_files).map_err(crate::util::io_err(&dir))?;
        // The volumes have the image's content since the first start.
        config.copy_up.clear();
        let (spec, extras) = build_spec(&config, resources, &cgroup, &dir);
        let init = clone_init(config, spec, extras, &cgroup, attachment.as_ref(), detach)?;
        Ok::<_, Error>((cgroup, attachment, init))
    })();
    match made {
        Ok((cgroup, attachment, init)) => Ok(Created {
            raw_mode: init.raw_mode,
            signals: init.signals,
            channel: init.channel,
            idmapped: init.idmapped,
            mount_trees: init.mount_trees,
            init: init.pid,
            config: init.config,
            run: Some(init.run),
            rm,
            attachment,
            rw,
            record,
            cgroup,
            root,
            detach,
            limits,
            net,
        }),
        Err(e) => {
            if let Some(rw) = rw {
                rw.keep();
            }
            record.finish(status)?;
            Err(e)
        }
    }
}

fn check_rootfs(rootfs: Option<&Path>) -> Result<PathBuf, Error> {
    let Some(rootfs) = rootfs else {
        return Err(Error::NoImage);
    };
    match std::fs::metadata(rootfs) {
        Ok(m) if m.is_dir() => {
            std::fs::canonicalize(rootfs).map_err(|source| Error::RootfsAccess {
                path: rootfs.to_path_buf(),
                source,
            })
        }
        Ok(_) => Err(Error::RootfsNotDir(rootfs.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::RootfsMissing(rootfs.to_path_buf()))
        }
        Err(source) => Err(Error::RootfsAccess {
            path: rootfs.to_path_buf(),
            source,
        }),
    }
}

fn user_env(opts: &RunOptions) -> Result<Vec<String>, Error> {
    env_flags(&opts.env, &opts.env_files)
}

/// `--env-file`s first, then `-e`, so `-e` wins, as with docker.
pub(super) fn env_flags(env: &[String], env_files: &[PathBuf]) -> Result<Vec<String>, Error> {
    let host = |k: &str| std::env::var(k).ok();
    let mut out = Vec::new();
    for path in env_files {
        let text = std::fs::read_to_string(path).map_err(|source| Error::EnvFileRead {
            path: path.clone(),
            source,
        })?;
        out.extend(env::parse_file(&path.display().to_string(), &text, &host)?);
    }
    for arg in env {
        out.push(env::parse_entry(arg, &host)?);
    }
    Ok(out)
}

pub(super) fn host_window_size() -> Option<libc::winsize> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    tty::window_size(stdin.as_fd()).or_else(|| tty::window_size(stdout.as_fd()))
}

/// Wait for the init (or `exec`'s process: any child) to exit: forward
/// signals, and with a terminal, copy bytes between the host's stdio and
/// the pty master.
pub(super) fn supervise(
    init: Pid,
    signals: &SignalFd,
    master: Option<OwnedFd>,
    interactive: bool,
) -> Result<i32, Error> {
    if let Some(m) = &master {
        nix::fcntl::fcntl(
            m.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .map_err(Error::sys_nix("fcntl"))?;
    }
    let stdin = std::io::stdin();
    let mut stdin_open = interactive && master.is_some();
    let mut master_open = master.is_some();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let (Some(m), true) = (&master, master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(Error::sys_nix("poll")(e)),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        let mut idx = 1;
        if let (Some(m), true) = (&master, master_open) {
            if ready[idx] {
                master_open = copy_out(m.as_fd(), &mut buf) != Copied::Closed;
            }
            idx += 1;
        }
        if stdin_open && ready[idx] {
            let m = master.as_ref().expect("stdin is read only with a terminal");
            stdin_open = copy_in(m.as_fd(), &mut buf);
        }
        if ready[0]
            && let Some(status) = handle_signal(init, signals, master.as_ref())?
        {
            // The container is gone; what it wrote last is still in
            // the pty's buffer.
            if let (Some(m), true) = (&master, master_open) {
                while copy_out(m.as_fd(), &mut buf) == Copied::Some {}
            }
            return Ok(status);
        }
    }
}

/// What one read from the pty master gave.
#[derive(Debug, PartialEq, Eq)]
enum Copied {
    Some,
    /// Nothing to read right now (a spurious wake-up, or drained).
    Nothing,
    /// Every slave side is closed: the container's terminal is gone.
    Closed,
}

/// Copy what the container wrote to our stdout.
fn copy_out(master: BorrowedFd<'_>, buf: &mut [u8]) -> Copied {
    match nix::unistd::read(master.as_raw_fd(), buf) {
        Ok(0) | Err(nix::Error::EIO) => Copied::Closed,
        Ok(n) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf[..n]).and_then(|_| out.flush());
            Copied::Some
        }
        Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => Copied::Nothing,
        Err(_) => Copied::Closed,
    }
}

/// Copy keystrokes to the container; false at end of input.
fn copy_in(master: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    let n = match nix::unistd::read(libc::STDIN_FILENO, buf) {
        Ok(0) | Err(_) => return false,
        Ok(n) => n,
    };
    let mut rest = &buf[..n];
    while !rest.is_empty() {
        match nix::unistd::write(master, rest) {
            Ok(w) => rest = &rest[w..],
            // The master is non-blocking: wait until the container reads.
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {
                let _ = poll(
                    &mut [PollFd::new(master, PollFlags::POLLOUT)],
                    PollTimeout::from(100u8),
                );
            }
            Err(_) => break,
        }
    }
    true
}

/// Handle one pending signal; the init's exit status once it has exited.
fn handle_signal(
    init: Pid,
    signals: &SignalFd,
    master: Option<&OwnedFd>,
) -> Result<Option<i32>, Error> {
    let Ok(Some(info)) = signals.read_signal() else {
        return Ok(None);
    };
    match Signal::try_from(info.ssi_signo as i32) {
        Ok(Signal::SIGCHLD) => match waitpid(init, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(status) => Ok(Some(status_code(Some(status)))),
            Err(e) => Err(Error::sys_nix("waitpid")(e)),
        },
        Ok(Signal::SIGWINCH) => {
            if let (Some(m), Some(ws)) = (master, host_window_size()) {
                tty::set_window_size(m.as_fd(), &ws);
            }
            Ok(None)
        }
        Ok(sig) => {
            step!("forward {sig} to the container");
            let _ = kill(init, sig);
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}
