//! The commands that reach into a running container: `exec`, `top`,
//! `pause`, `unpause`.

use std::path::Path;

use containr::container::{enter, pause, top};

use super::{Global, require_root};
use crate::error::Error;

/// `containr exec`: the process's status (0 at once with `-d`).
pub fn exec(global: &Global, name: &str, opts: &enter::ExecOptions) -> Result<i32, Error> {
    require_root("exec")?;
    Ok(enter::exec(&global.root, name, opts, &global.reporting)?)
}

/// `containr top CONTAINER [ps OPTIONS]`: docker's table (columns at least
/// 20 wide, 3 spaces apart).
pub fn top(root: &Path, name: &str, ps_args: &[String]) -> Result<i32, Error> {
    let p = top::top(root, name, ps_args)?;
    let last = p.titles.len().saturating_sub(1);
    let widths: Vec<usize> = (0..p.titles.len())
        .map(|i| {
            let widest = std::iter::once(&p.titles[i])
                .chain(p.rows.iter().map(|r| &r[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0);
            (widest + 3).max(20)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            }
        }
        out
    };
    println!("{}", line(&p.titles));
    for row in &p.rows {
        println!("{}", line(row));
    }
    Ok(0)
}

/// `containr pause CONTAINER...`: each one paused, by the name given.
pub fn pause(root: &Path, names: &[String]) -> Result<i32, Error> {
    each(names, |n| pause::pause(root, n).map(drop))
}

/// `containr unpause CONTAINER...`.
pub fn unpause(root: &Path, names: &[String]) -> Result<i32, Error> {
    each(names, |n| pause::unpause(root, n).map(drop))
}

/// Do `f` to each container: its name as given on stdout, or its failure
/// on stderr; status 1 if any failed, as docker's.
fn each(
    names: &[String],
    f: impl Fn(&str) -> Result<(), containr::container::Error>,
) -> Result<i32, Error> {
    require_root("pause")?;
    let mut status = 0;
    for name in names {
        match f(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{}", Error::from(e).user_message());
                status = 1;
            }
        }
    }
    Ok(status)
}
