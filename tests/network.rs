//! `--network bridge` and friends against the real kernel: veths, leases,
//! nftables rules and real traffic, which only ever goes to 127.0.0.0/8,
//! to containers, to bridges, or into a namespace a test made itself.
//!
//! Tests that need a pristine bridge (counting leases, pruning, crashing)
//! get their own ([`TestBridge`], `containr-<tag>` on 10.231.N.0/24), so
//! that they never collide with containers other tests run at the same time
//! on the default `containr0`.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Sandbox, assert_fails};

const LEASE_DIR: &str = "/run/containr/network";

/// The leases of `bridge`, from its lease file (none if there is no file).
fn leases(bridge: &str) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read(format!("{LEASE_DIR}/{bridge}.json")) else {
        return vec![];
    };
    let first = serde_json::Deserializer::from_slice(&text)
        .into_iter::<serde_json::Value>()
        .next();
    match first {
        Some(Ok(v)) => v["leases"].as_array().cloned().unwrap_or_default(),
        _ => vec![],
    }
}

fn lease_ip(bridge: &str, id: &str) -> Option<Ipv4Addr> {
    leases(bridge)
        .iter()
        .find(|l| l["id"] == id)
        .map(|l| l["ip"].as_str().unwrap().parse().unwrap())
}

fn sh(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Names of the links enslaved to `bridge`.
fn ports_of(bridge: &str) -> Vec<String> {
    let out = sh("ip", &["-o", "link", "show", "master", bridge]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap().to_string())
        .collect()
}

fn link_exists(name: &str) -> bool {
    sh("ip", &["link", "show", "dev", name]).status.success()
}

fn nft_table_exists(bridge: &str) -> bool {
    sh("nft", &["list", "table", "ip", bridge]).status.success()
}

fn nft_map(bridge: &str, map: &str) -> String {
    String::from_utf8(sh("nft", &["list", "map", "ip", bridge, map]).stdout).unwrap()
}

/// A port nothing on the host uses right now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// GET until it answers (the server is starting), within 15 s.
fn wait_http(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match http_get(addr) {
            Ok(body) if !body.is_empty() => return body,
            other => assert!(
                Instant::now() < deadline,
                "{addr} never answered: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The id of the running container `name` of `sb`, once it is recorded.
fn container_id(sb: &Sandbox, name: &str) -> String {
    let path = sb.data.join(format!("containers/{name}.json"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(id) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| v["id"].as_str().map(str::to_string))
        {
            return id;
        }
        assert!(Instant::now() < deadline, "{name} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until `check` holds, within 10 s.
fn wait_until(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait for a child within 15 s, killing it if it hangs.
fn wait_child(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("container did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sigterm(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

fn veth_of(id: &str) -> String {
    format!("ctr{}", &id[..12])
}

/// A bridge of one test's own; pruned (and checked gone) when dropped.
struct TestBridge {
    name: String,
    subnet: String,
}

impl TestBridge {
    fn new(tag: &str, octet: u8) -> TestBridge {
        let b = TestBridge {
            name: format!("containr-{tag}"),
            subnet: format!("10.231.{octet}.0/24"),
        };
        // Left over by an earlier, interrupted run of this test.
        b.prune();
        b
    }

    /// One on a smaller subnet, 10.231.N.0/PREFIX.
    fn sized(tag: &str, octet: u8, prefix: u8) -> TestBridge {
        let b = TestBridge {
            name: format!("containr-{tag}"),
            subnet: format!("10.231.{octet}.0/{prefix}"),
        };
        b.prune();
        b
    }

    fn prune(&self) -> Output {
        Command::new(BIN)
            .args(["network", "prune", "--bridge", &self.name])
            .output()
            .unwrap()
    }

    fn args(&self) -> [&str; 4] {
        ["--bridge", &self.name, "--subnet", &self.subnet]
    }

    fn gateway(&self) -> Ipv4Addr {
        let net: Ipv4Addr = self.subnet.split('/').next().unwrap().parse().unwrap();
        Ipv4Addr::from(u32::from(net) + 1)
    }
}

impl Drop for TestBridge {
    fn drop(&mut self) {
        let out = self.prune();
        if !std::thread::panicking() {
            assert!(
                out.status.success(),
                "network prune: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!link_exists(&self.name), "bridge {} left", self.name);
            assert!(!nft_table_exists(&self.name), "table {} left", self.name);
            assert!(!std::path::Path::new(&format!("{LEASE_DIR}/{}.json", self.name)).exists());
        }
    }
}

fn with(base: &[&str], rest: &[&str]) -> Vec<String> {
    base.iter().chain(rest).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn containers_reach_each_other_and_published_ports_reach_them() {
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.rootfs.join("www")).unwrap();
    std::fs::write(
        sb.rootfs.join("www/index.html"),
        "served from a container\n",
    )
    .unwrap();
    let (any_port, lo_port) = (free_port(), free_port());
    let name = format!("web-{}", std::process::id());
    let mut server = KillOnDrop(
        sb.cmd(&[
            "run",
            "--rm",
            "--rootfs",
            sb.rootfs.to_str().unwrap(),
            // SIGTERM ends the server through containr's init: as PID 1,
            // httpd would be shielded from it (docker's --init too).
            "--init",
            "--name",
            &name,
            "-p",
            &format!("{any_port}:80"),
            "-p",
            &format!("127.0.0.1:{lo_port}:80/tcp"),
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ])
        .spawn()
        .unwrap(),
    );
    let id = container_id(&sb, &name);
    wait_until("the server's lease", || {
        lease_ip("containr0", &id).is_some()
    });
    let ip = lease_ip("containr0", &id).unwrap();
    let veth = veth_of(&id);
    // The lease comes first, the veth once the container's netns exists.
    wait_until("the server's veth on containr0", || {
        ports_of("containr0").contains(&veth)
    });

    // From the host: 127.0.0.1 and the bridge's address, both published.
    let body = wait_http(SocketAddr::from(([127, 0, 0, 1], any_port)));
    assert!(body.contains("served from a container"), "{body}");
    let body = wait_http(SocketAddr::from(([127, 0, 0, 1], lo_port)));
    assert!(body.contains("served from a container"), "{body}");
    let gw = sh("ip", &["-4", "-o", "addr", "show", "dev", "containr0"]);
    let gw = String::from_utf8_lossy(&gw.stdout);
    let gw: Ipv4Addr = gw
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let body = wait_http(SocketAddr::from((gw, any_port)));
    assert!(body.contains("served from a container"), "{body}");
    // -p 127.0.0.1:... is bound to that address only.
    assert!(http_get(SocketAddr::from((gw, lo_port))).is_err());

    // From a second container, by the server's address.
    let out = sb.ok(&["wget", "-q", "-O-", &format!("http://{ip}/")]);
    assert_eq!(out, "served from a container\n");
    // In the server's own network namespace: its loopback, its address.
    let out = sb.ok(&[
        "--network",
        &format!("container:{name}"),
        "sh",
        "-c",
        "wget -q -O- http://127.0.0.1/; ip -4 -o addr show eth0",
    ]);
    assert!(out.starts_with("served from a container\n"), "{out}");
    assert!(out.contains(&format!("inet {ip}/")), "{out}");

    let rules = nft_map("containr0", "ports_any");
    assert!(
        rules.contains(&format!("tcp . {any_port} : {ip} . 80")),
        "{rules}"
    );
    sigterm(&server.0);
    wait_child(&mut server.0);
    // Gone with the container: its veth (deleted by the kernel with the
    // netns, just after), its lease, its rules; the ports are free again.
    wait_until("the veth to go", || !link_exists(&veth));
    assert_eq!(lease_ip("containr0", &id), None);
    assert!(!nft_map("containr0", "ports_any").contains(&format!("tcp . {any_port} ")));
    assert!(!nft_map("containr0", "ports_ip").contains(&format!("tcp . {lo_port} ")));
    TcpListener::bind(("0.0.0.0", any_port)).unwrap();
    // The bridge and the table stay for the next container.
    assert!(link_exists("containr0"));
    assert!(nft_table_exists("containr0"));
}

#[test]
fn twenty_concurrent_containers_get_distinct_addresses_and_reach_the_host() {
    const N: usize = 20;
    let sb = Sandbox::new();
    let br = TestBridge::new("t20", 20);
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    // The host side: answer N connections, within 60 s.
    let server = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut served = 0;
        while served < N && Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.write_all(b"pong from the host\n");
                    served += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        served
    });
    let script = format!(
        "ip -4 -o addr show eth0 | awk '{{print $4}}'; nc -w 5 {} {port} </dev/null",
        br.gateway()
    );
    let args = with(&br.args(), &["sh", "-c", &script]);
    let children: Vec<Child> = (0..N)
        .map(|_| {
            let mut full = vec!["run", "--rm", "--rootfs", sb.rootfs.to_str().unwrap()];
            full.extend(strs(&args));
            sb.cmd(&full)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut addrs = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = text.lines();
        addrs.push(lines.next().unwrap().to_string());
        assert_eq!(lines.next(), Some("pong from the host"), "{text}");
    }
    assert_eq!(server.join().unwrap(), N);
    let mut distinct = addrs.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), N, "duplicate addresses: {addrs:?}");
    for a in &addrs {
        assert!(a.starts_with("10.231.20.") && a.ends_with("/24"), "{a}");
    }
    assert_eq!(leases(&br.name), Vec::<serde_json::Value>::new());
    wait_until("every veth to leave the bridge", || {
        ports_of(&br.name).is_empty()
    });
    let links = String::from_utf8(sh("ip", &["-o", "link"]).stdout).unwrap();
    for l in links.lines() {
        assert!(!l.contains(&format!("master {}", br.name)), "{l}");
    }
}

#[test]
fn a_killed_run_is_reclaimed_and_prune_removes_the_bridge() {
    let sb = Sandbox::new();
    let br = TestBridge::new("crash", 21);
    let port = free_port();
    let mut full = vec![
        "run",
        "--rm",
        "--rootfs",
        sb.rootfs.to_str().unwrap(),
        "--name",
        "doomed",
    ];
    let pub_arg = format!("{port}:80");
    full.extend(br.args());
    full.extend(["-p", &pub_arg, "sleep", "30"]);
    let mut victim = KillOnDrop(sb.cmd(&full).spawn().unwrap());
    let id = container_id(&sb, "doomed");
    let veth = veth_of(&id);
    wait_until("the veth", || link_exists(&veth));
    // In use: prune refuses, and leaves everything in place.
    let out = br.prune();
    assert_fails(&out, 125, "in use by 1 running container");
    assert!(link_exists(&br.name));

    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    // Killed outright, containr cleaned nothing up: the lease and the rule
    // are still there...
    let ip = lease_ip(&br.name, &id).expect("the lease outlives a SIGKILL");
    assert!(nft_map(&br.name, "ports_any").contains(&format!("tcp . {port} : {ip} . 80")));
    // ...until the next run on the bridge reclaims them.
    let mut next = br.args().to_vec();
    next.push("true");
    sb.ok(&next);
    assert_eq!(lease_ip(&br.name, &id), None);
    assert!(!nft_map(&br.name, "ports_any").contains(&format!("{port}")));
    wait_until("the killed container's veth to go", || !link_exists(&veth));
    assert_eq!(leases(&br.name), Vec::<serde_json::Value>::new());
    // Nothing runs: prune removes the bridge, the table and the lease file
    // (checked by TestBridge's drop).
    let out = br.prune();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!("removed bridge {}", br.name)),
        "{said}"
    );
    assert!(!link_exists(&br.name));
    assert!(!nft_table_exists(&br.name));
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let sb = Sandbox::new();
    let br = TestBridge::new("bad", 22);
    let run = |extra: &[&str]| {
        let mut args = br.args().to_vec();
        args.extend_from_slice(extra);
        sb.run(&args)
    };
    let nothing_left = |what: &str| {
        assert_eq!(leases(&br.name), Vec::<serde_json::Value>::new(), "{what}");
        wait_until(what, || ports_of(&br.name).is_empty());
    };

    // No nft and no table yet: refused before the bridge is made.
    let mut cmd = sb.cmd(&["run", "--rm", "--rootfs", sb.rootfs.to_str().unwrap()]);
    cmd.args(br.args()).arg("true").env("PATH", "/usr/bin:/bin");
    assert_fails(&cmd.output().unwrap(), 125, "nft not found");
    assert!(!link_exists(&br.name));
    assert!(!nft_table_exists(&br.name));
    nothing_left("missing nft");

    // A subnet that clashes with one of the host's routes.
    let routes = String::from_utf8(sh("ip", &["-4", "-o", "route", "show"]).stdout).unwrap();
    let clashing = routes.lines().find_map(|l| {
        let dst = l.split_whitespace().next()?;
        let (_, len) = dst.split_once('/')?;
        let len: u8 = len.parse().ok()?;
        ((8..=30).contains(&len) && !l.contains("containr")).then(|| dst.to_string())
    });
    if let Some(dst) = clashing {
        let out = sb.run(&["--bridge", &br.name, "--subnet", &dst, "true"]);
        assert_fails(&out, 125, "clashes with the host's route");
        assert!(!link_exists(&br.name));
    }
    assert_fails(
        &sb.run(&["--bridge", &br.name, "--subnet", "10.231.22.1/24", "true"]),
        125,
        "host bits",
    );

    // The bridge now exists; asking it for another subnet is an error.
    sb.ok(&strs(&with(&br.args(), &["true"])));
    assert!(link_exists(&br.name));
    let out = sb.run(&["--bridge", &br.name, "--subnet", "10.231.23.0/24", "true"]);
    assert_fails(&out, 125, "exists with subnet 10.231.22.0/24");

    // A host port in use, on its own or twice in one run.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = taken.local_addr().unwrap().port();
    assert_fails(
        &run(&["-p", &format!("127.0.0.1:{p}:80"), "true"]),
        125,
        "already in use",
    );
    let q = free_port();
    assert_fails(
        &run(&["-p", &format!("{q}:80"), "-p", &format!("{q}:81"), "true"]),
        125,
        "already in use",
    );
    // Not an address of this host (nothing is sent to it).
    assert_fails(
        &run(&["-p", &format!("10.231.99.99:{q}:80"), "true"]),
        125,
        "cannot publish",
    );
    for bad in ["80", "8080:80/sctp", "1.2.3:8080:80", "0:80", "70000:80"] {
        assert_fails(&run(&["-p", bad, "true"]), 125, "invalid port spec");
    }
    assert_fails(&run(&["--dns", "resolver", "true"]), 125, "--dns");
    assert_fails(
        &sb.run(&["--network", "container:nosuch", "true"]),
        125,
        "no such running container",
    );
    assert_fails(&run(&["--add-host", "nocolon", "true"]), 125, "--add-host");
    assert_fails(&sb.run(&["--bridge", "br0", "true"]), 125, "bridge name");
    assert_fails(
        &run(&["--network", "none", "-p", "80:80", "true"]),
        125,
        "needs --network bridge",
    );
    nothing_left("bad flags");
    assert!(!nft_map(&br.name, "ports_any").contains(&format!("{q}")));

    // A name that is taken: the second run makes nothing.
    let mut full = vec![
        "run",
        "--rm",
        "--rootfs",
        sb.rootfs.to_str().unwrap(),
        "--init",
        "--name",
        "taken",
    ];
    full.extend(br.args());
    full.extend(["sleep", "30"]);
    let mut first = KillOnDrop(sb.cmd(&full).spawn().unwrap());
    let id = container_id(&sb, "taken");
    wait_until("the first container's veth", || link_exists(&veth_of(&id)));
    assert_fails(
        &run(&["--name", "taken", "-p", &format!("{q}:80"), "true"]),
        125,
        "already in use",
    );
    assert_eq!(leases(&br.name).len(), 1);
    assert_eq!(ports_of(&br.name).len(), 1);
    assert!(!nft_map(&br.name, "ports_any").contains(&format!("{q}")));
    TcpListener::bind(("0.0.0.0", q)).unwrap();
    sigterm(&first.0);
    wait_child(&mut first.0);
    nothing_left("after the first ended");
}

#[test]
fn etc_files_dns_and_add_host() {
    let sb = Sandbox::new();
    let name = format!("named-{}", std::process::id());
    let out = sb.ok(&[
        "--name",
        &name,
        "--hostname",
        "box",
        "--add-host",
        "db:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "10.0.0.53",
        "sh",
        "-c",
        "cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; \
         ip -4 -o addr show eth0 | awk '{print $4}'; ip route | awk '/^default/{print $3}'",
    ]);
    let parts: Vec<&str> = out.split("---\n").collect();
    let (hosts, resolv, addrs) = (parts[0], parts[1], parts[2]);
    let mut a = addrs.lines();
    let ip = a.next().unwrap().split('/').next().unwrap();
    let gw = a.next().unwrap();
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
    assert!(hosts.contains("10.1.2.3\tdb\n"), "{hosts}");
    assert!(hosts.contains(&format!("{gw}\tgw\n")), "{hosts}");
    assert!(hosts.ends_with(&format!("{ip}\tbox {name}\n")), "{hosts}");
    let ns: Vec<&str> = resolv
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .collect();
    assert_eq!(ns, ["nameserver 10.0.0.53"], "{resolv}");
}

#[test]
fn host_network_is_the_hosts() {
    let sb = Sandbox::new();
    let out = sb.ok(&[
        "--network",
        "host",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; hostname; cat /etc/hosts",
    ]);
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap(), host_ns.to_str().unwrap());
    assert_eq!(
        lines.next().unwrap(),
        nix::unistd::gethostname().unwrap().to_str().unwrap()
    );
    let hosts: String = lines.map(|l| format!("{l}\n")).collect();
    assert_eq!(
        hosts.trim_end(),
        std::fs::read_to_string("/etc/hosts").unwrap().trim_end()
    );
}

/// A child process killed (SIGKILL; a `containr run`'s init follows it)
/// if a failing test leaves it running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A network namespace standing for "the outside": a veth to the host and
/// no route back to the containers, so a container can reach it only if
/// the host masquerades its traffic. Deleted (with its veth) when dropped.
struct Outside {
    ns: String,
    host_addr: Ipv4Addr,
    addr: Ipv4Addr,
}

impl Outside {
    fn new() -> Outside {
        let pid = std::process::id();
        let ns = format!("ctrt-out-{pid}");
        let (host_if, peer) = (format!("nsout{}", pid % 100_000), "eth0");
        let octet = (pid % 200) as u8;
        let o = Outside {
            ns: ns.clone(),
            host_addr: Ipv4Addr::new(10, 232, octet, 1),
            addr: Ipv4Addr::new(10, 232, octet, 2),
        };
        let run = |args: &[&str]| {
            let out = sh("ip", args);
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["netns", "add", &ns]);
        run(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", peer, "netns", &ns,
        ]);
        run(&[
            "addr",
            "add",
            &format!("{}/30", o.host_addr),
            "dev",
            &host_if,
        ]);
        run(&["link", "set", &host_if, "up"]);
        let addr = format!("{}/30", o.addr);
        run(&["-n", &ns, "addr", "add", &addr, "dev", peer]);
        run(&["-n", &ns, "link", "set", peer, "up"]);
        run(&["-n", &ns, "link", "set", "lo", "up"]);
        o
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = sh("ip", &["netns", "del", &self.ns]);
    }
}

#[test]
fn outbound_traffic_is_masqueraded() {
    let sb = Sandbox::new();
    let outside = Outside::new();
    let port = free_port().to_string();
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &outside.ns,
            "busybox",
            "nc",
            "-l",
            "-p",
            &port,
            "-e",
            "echo",
            "hello from outside",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed if the test fails before anyone connects.
    let mut server = KillOnDrop(server);
    let script = format!(
        "i=0; while [ $i -lt 20 ]; do nc -w 1 {} {port} </dev/null && exit 0; i=$((i+1)); sleep 0.1; done; exit 1",
        outside.addr
    );
    let out = sb.ok(&["sh", "-c", &script]);
    assert_eq!(out, "hello from outside\n");
    wait_child(&mut server.0);
    // The container's own address never reached the outside: it has no
    // route back to 10.88.0.0/16, only to the host's end of its veth.
    let routes = sh("ip", &["-n", &outside.ns, "-4", "route"]);
    assert!(!String::from_utf8_lossy(&routes.stdout).contains("default"));
}

#[test]
fn a_new_bridge_picks_a_subnet_no_route_overlaps() {
    let sb = Sandbox::new();
    // containr0 exists (made here if no test made it yet), with its route.
    sb.ok(&["true"]);
    let br = TestBridge::new("pick", 0);
    sb.ok(&["--bridge", &br.name, "true"]);
    let routes = String::from_utf8(sh("ip", &["-4", "-o", "route", "show"]).stdout).unwrap();
    let ours = routes
        .lines()
        .find(|l| l.contains(&format!("dev {} ", br.name)))
        .unwrap_or_else(|| panic!("no route for {}: {routes}", br.name));
    let subnet = ours.split_whitespace().next().unwrap();
    let parse = |s: &str| -> (u32, u32) {
        let (a, l) = s.split_once('/').unwrap();
        let len: u32 = l.parse().unwrap();
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        (u32::from(a.parse::<Ipv4Addr>().unwrap()) & mask, mask)
    };
    let (net, mask) = parse(subnet);
    assert!(
        subnet.starts_with("10.") && subnet.ends_with(".0.0/16"),
        "{subnet}"
    );
    for l in routes.lines().filter(|l| *l != ours) {
        let dst = l.split_whitespace().next().unwrap();
        if !dst.contains('/') {
            continue; // default, or a host route
        }
        let (other, omask) = parse(dst);
        let common = mask & omask;
        assert_ne!(net & common, other & common, "{subnet} overlaps {l}");
    }
}

#[test]
fn a_container_made_again_replaces_its_previous_veth() {
    let sb = Sandbox::new();
    let rootfs = sb.rootfs.to_str().unwrap();
    sb.containr_ok(&[
        "run", "-d", "--name", "again", "--rootfs", rootfs, "sleep", "100",
    ]);
    let id = container_id(&sb, "again");
    let inspect: serde_json::Value =
        serde_json::from_str(&sb.containr_ok(&["inspect", "again"])).unwrap();
    let pid = inspect[0]["State"]["Pid"].as_u64().unwrap();
    // Held open, the old network namespace (and the old veth in it, named
    // from the id) outlives the old init: what the kernel's deferred
    // teardown does for a while after every exit, made certain here.
    let old_netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    assert!(link_exists(&veth_of(&id)));
    sb.containr_ok(&["restart", "-t", "0", "again"]);
    let ip = sb.containr_ok(&["exec", "again", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(ip.contains("inet "), "{ip}");
    assert!(link_exists(&veth_of(&id)));
    drop(old_netns);
    sb.containr_ok(&["rm", "-f", "again"]);
}

#[test]
fn a_container_made_again_keeps_its_address_while_it_is_free() {
    let sb = Sandbox::new();
    // Five addresses, .2 to .6: another container takes .2 after four.
    let br = TestBridge::sized("keep", 24, 29);
    let rootfs = sb.rootfs.to_str().unwrap();
    let mut args = vec!["run", "-d", "--name", "keep", "--rootfs", rootfs];
    args.extend(br.args());
    args.extend(["sleep", "100"]);
    sb.containr_ok(&args);
    let id = container_id(&sb, "keep");
    let ip = lease_ip(&br.name, &id).expect("leased");
    // What the container itself has: the address, and docker's MAC made
    // from it (so that ARP caches holding it stay right).
    let eth0 = |name: &str| -> (String, String) {
        let addr = sb.containr_ok(&["exec", name, "ip", "-4", "-o", "addr", "show", "eth0"]);
        let link = sb.containr_ok(&["exec", name, "ip", "-o", "link", "show", "eth0"]);
        (addr, link)
    };
    let [a, b, c, d] = ip.octets();
    let mac = format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}");
    let (addr, link) = eth0("keep");
    assert!(addr.contains(&format!("inet {ip}/29 ")), "{addr}");
    assert!(link.contains(&format!("link/ether {mac} ")), "{link}");
    // inspect shows them, as docker's NetworkSettings.
    let settings = |name: &str| -> serde_json::Value {
        let out = sb.containr_ok(&["inspect", name]);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]["NetworkSettings"].clone()
    };
    assert_eq!(
        settings("keep"),
        serde_json::json!({
            "IPAddress": ip.to_string(), "IPPrefixLen": 29,
            "Gateway": br.gateway().to_string(), "MacAddress": mac,
        })
    );

    // restart, and stop then start: the same address.
    sb.containr_ok(&["restart", "-t", "0", "keep"]);
    assert_eq!(lease_ip(&br.name, &id), Some(ip));
    assert!(eth0("keep").0.contains(&format!("inet {ip}/")));
    assert_eq!(settings("keep")["IPAddress"], ip.to_string());
    sb.containr_ok(&["stop", "-t", "0", "keep"]);
    wait_until("the lease to be released", || {
        lease_ip(&br.name, &id).is_none()
    });
    assert_eq!(settings("keep")["IPAddress"], "", "not running: no address");
    sb.containr_ok(&["start", "keep"]);
    assert_eq!(lease_ip(&br.name, &id), Some(ip));
    let (addr, link) = eth0("keep");
    assert!(addr.contains(&format!("inet {ip}/29 ")), "{addr}");
    assert!(link.contains(&format!("link/ether {mac} ")), "{link}");

    // Taken by another container meanwhile: a new one, and the other's
    // address stays the other's.
    sb.containr_ok(&["stop", "-t", "0", "keep"]);
    wait_until("the lease to be released", || {
        lease_ip(&br.name, &id).is_none()
    });
    let mut once = br.args().to_vec();
    once.push("true");
    for _ in 0..4 {
        sb.ok(&once); // .3 to .6: the next free address is .2 again
    }
    let mut other = vec!["run", "-d", "--name", "other", "--rootfs", rootfs];
    other.extend(br.args());
    other.extend(["sleep", "100"]);
    sb.containr_ok(&other);
    let other_id = container_id(&sb, "other");
    assert_eq!(lease_ip(&br.name, &other_id), Some(ip));
    sb.containr_ok(&["start", "keep"]);
    let moved = lease_ip(&br.name, &id).expect("leased");
    assert_ne!(moved, ip);
    assert!(eth0("keep").0.contains(&format!("inet {moved}/")));
    assert_eq!(settings("keep")["IPAddress"], moved.to_string());
    assert_eq!(lease_ip(&br.name, &other_id), Some(ip));
    sb.containr_ok(&["rm", "-f", "keep", "other"]);
    wait_until("the leases to go", || leases(&br.name).is_empty());
}

#[test]
fn a_restart_policy_brings_a_container_back_on_its_address() {
    let sb = Sandbox::new();
    let br = TestBridge::new("policy", 25);
    let rootfs = sb.rootfs.to_str().unwrap();
    // Each run appends its address to a file of the --rootfs directory.
    let mut args = vec![
        "run",
        "-d",
        "--name",
        "again",
        "--restart",
        "always",
        "--rootfs",
        rootfs,
    ];
    args.extend(br.args());
    args.extend([
        "sh",
        "-c",
        "ip -4 -o addr show eth0 >> /addresses; sleep 0.2; exit 3",
    ]);
    sb.containr_ok(&args);
    let log = sb.rootfs.join("addresses");
    let addresses = || -> Vec<String> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
            .map(str::to_string)
            .collect()
    };
    wait_until("three runs", || addresses().len() >= 3);
    let seen = addresses();
    assert!(seen[0].starts_with("10.231.25."), "{seen:?}");
    assert!(seen.iter().all(|a| *a == seen[0]), "{seen:?}");
    sb.containr_ok(&["rm", "-f", "again"]);
    wait_until("the lease to go", || leases(&br.name).is_empty());
}
