//! `containr volume ...`: named volumes under the data root.

use std::path::Path;

use containr::container::state::DataRoot;
use containr::container::volume::{self, Store, Volume};

use super::print_table;
use crate::error::Error;

/// `containr volume create [--name] [--label] [--opt] [NAME]`: its name.
pub fn create(
    root: &Path,
    name: Option<String>,
    labels: &[String],
    opts: &[String],
) -> Result<i32, Error> {
    let store = Store::open(root).map_err(from)?;
    let options = volume::parse_opts(opts).map_err(from)?;
    let name = name.unwrap_or_else(|| containr::util::random_hex(32));
    let v = store
        .create(Volume {
            name,
            labels: volume::parse_labels(labels),
            options,
            ..Volume::default()
        })
        .map_err(from)?;
    println!("{}", v.name);
    Ok(0)
}

/// `containr volume ls [-q] [--filter KEY=VALUE]`.
pub fn ls(root: &Path, quiet: bool, filters: &[String]) -> Result<i32, Error> {
    let store = Store::open(root).map_err(from)?;
    let states = DataRoot::open(root)?.all();
    let mut shown = Vec::new();
    for v in store.list() {
        let mut keep = true;
        for f in filters {
            keep &= volume::matches(&v, f, &states).map_err(from)?;
        }
        if keep {
            shown.push(v);
        }
    }
    if quiet {
        for v in &shown {
            println!("{}", v.name);
        }
    } else {
        let rows: Vec<[String; 2]> = shown
            .iter()
            .map(|v| ["local".to_string(), v.name.clone()])
            .collect();
        print_table(["DRIVER", "VOLUME NAME"], &rows);
    }
    Ok(0)
}

/// `containr volume inspect NAME...`: docker's fields, as JSON; status 1
/// if any is missing.
pub fn inspect(root: &Path, names: &[String]) -> Result<i32, Error> {
    let store = Store::open(root).map_err(from)?;
    let mut found = Vec::new();
    let mut status = 0;
    for name in names {
        match store.get(name) {
            Ok(v) => found.push(serde_json::json!({
                "CreatedAt": v.created_at,
                "Driver": "local",
                "Labels": v.labels,
                "Mountpoint": store.data_dir(&v.name),
                "Name": v.name,
                "Options": v.options,
                "Scope": "local",
            })),
            Err(e) => {
                eprintln!("{}", from(e).user_message());
                status = 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&found).expect("plain data")
    );
    Ok(status)
}

/// `containr volume rm [-f] NAME...`: each removed name on stdout, each
/// failure on stderr; status 1 if any failed.
pub fn rm(root: &Path, names: &[String], force: bool) -> Result<i32, Error> {
    let store = Store::open(root).map_err(from)?;
    let data = DataRoot::open(root)?;
    let mut status = 0;
    for name in names {
        match store.remove(&data, name, force) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("{}", from(e).user_message());
                status = 1;
            }
        }
    }
    Ok(status)
}

/// `containr volume prune [-a]`: the volumes no container uses (the
/// anonymous ones, or all with `-a`), removed.
pub fn prune(root: &Path, all: bool) -> Result<i32, Error> {
    let store = Store::open(root).map_err(from)?;
    let data = DataRoot::open(root)?;
    let removed = store.prune(&data, all);
    if !removed.is_empty() {
        println!("Deleted Volumes:");
        for name in &removed {
            println!("{name}");
        }
        println!();
    }
    println!("Total reclaimed volumes: {}", removed.len());
    Ok(0)
}

fn from(e: volume::Error) -> Error {
    Error::Container(e.into())
}
