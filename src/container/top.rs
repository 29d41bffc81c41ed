//! `containr top`: a container's processes, seen from the host. As
//! docker's, it runs the host's `ps` (with the options given, `-ef` by
//! default) and keeps the lines whose PID is in the container's cgroup.

use std::path::Path;
use std::time::Duration;

use super::Error;
use super::state::DataRoot;
use crate::cgroup::oci::OciCgroup;

/// `ps`'s output, cut to the container's processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processes {
    pub titles: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// How long `ps` may take.
const PS_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of its output is read.
const PS_MAX_OUTPUT: u64 = 16 << 20;

/// The processes of the running container `name`, as `ps ps_args` shows them.
pub fn top(root: &Path, name: &str, ps_args: &[String]) -> Result<Processes, Error> {
    let state = DataRoot::open(root)?.lookup(name)?;
    if !state.is_running() {
        return Err(Error::NotRunning(state.id));
    }
    let location = state
        .cgroup
        .clone()
        .ok_or_else(|| Error::NotRunning(state.id.clone()))?;
    let pids = OciCgroup::at(location).pids();
    let args: Vec<String> = match ps_args.is_empty() {
        true => vec!["-ef".into()],
        false => ps_args.to_vec(),
    };
    let output = run_ps(&args)?;
    parse(&output, &pids).map_err(|why| Error::Top(why.to_string()))
}

/// Run the host's `ps`, bounded in time and output; its stdout.
fn run_ps(args: &[String]) -> Result<String, Error> {
    use std::io::Read;
    let failed = |why: String| Error::Top(format!("ps {}: {why}", args.join(" ")));
    let mut child = std::process::Command::new("ps")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.take(PS_MAX_OUTPUT).read_to_string(&mut out);
        let mut err = String::new();
        let _ = stderr.take(64 << 10).read_to_string(&mut err);
        (out, err)
    });
    let deadline = std::time::Instant::now() + PS_TIMEOUT;
    let status = loop {
        match child.try_wait().map_err(|e| failed(e.to_string()))? {
            Some(status) => break status,
            None if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed("timed out".into()));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let (out, err) = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(failed(format!("{status}: {}", err.trim())));
    }
    Ok(out)
}

/// Keep the lines of `ps` output whose PID column is one of `pids`; the
/// last column (the command) keeps its spaces.
pub fn parse(output: &str, pids: &[i32]) -> Result<Processes, &'static str> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or("couldn't find PID field in ps output")?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let pid: i32 = fields[pid_col]
            .parse()
            .map_err(|_| "unexpected pid in ps output")?;
        if !pids.contains(&pid) {
            continue;
        }
        let last = titles.len() - 1;
        let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
        row.push(fields[last..].join(" "));
        rows.push(row);
    }
    Ok(Processes { titles, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_container_s_lines_with_whole_commands() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n\
                   root        4242    4241  0 10:01 ?        00:00:00 sleep 1000\n\
                   root        4243    4242  0 10:01 pts/0    00:00:00 sh -c echo a  b\n";
        let p = parse(out, &[4242, 4243]).unwrap();
        assert_eq!(p.titles.len(), 8);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0][1], "4242");
        assert_eq!(p.rows[0][7], "sleep 1000");
        assert_eq!(p.rows[1][7], "sh -c echo a b");
        assert!(parse("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
