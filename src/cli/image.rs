//! The image commands: `pull`, `login`, `logout`, `load`, `save`, `gc`,
//! `verify`, `import`, `images`, `rmi`, `tag`, `image inspect`.

use std::path::{Path, PathBuf};

use containr::container::lifecycle;
use containr::util::{ago, human_size};
use containr::{image, registry};

use super::{Global, print_table, prompt, require_root, write_tar};
use crate::error::Error;

/// `containr pull NAME`: progress, then the name pulled.
pub fn pull(
    global: &Global,
    name: &str,
    platform: Option<String>,
    quiet: bool,
) -> Result<i32, Error> {
    require_root("pull")?;
    // As run and ps do: what killed runs left is settled first.
    lifecycle::settle_killed_runs(&global.root);
    let opts = global.pull_options(platform, super::progress::new(quiet, true));
    let pulled = registry::pull(&global.root, name, &opts)?;
    println!("{}", pulled.name);
    Ok(0)
}

/// `containr login`: check the credentials, then store them.
pub fn login(
    global: &Global,
    server: Option<String>,
    username: Option<String>,
    password: Option<String>,
    password_stdin: bool,
) -> Result<i32, Error> {
    // As docker: what the flags do not give is asked for, the password
    // without echo on a terminal.
    let username = match (username, password_stdin) {
        (Some(u), _) => u,
        (None, true) => {
            return Err(Error::Usage(
                "containr login --password-stdin needs --username".into(),
            ));
        }
        (None, false) => prompt("Username: ", true)?,
    };
    if username.is_empty() {
        return Err(Error::Usage(
            "containr login: the user name is empty".into(),
        ));
    }
    let password = match (password, password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut p = String::new();
            std::io::stdin()
                .read_line(&mut p)
                .map_err(|e| Error::Usage(format!("reading the password: {e}")))?;
            p.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password: ", false)?,
        (Some(_), true) => {
            return Err(Error::Usage(
                "containr login takes one of --password and --password-stdin".into(),
            ));
        }
    };
    if password.is_empty() {
        return Err(Error::Usage("containr login: the password is empty".into()));
    }
    let server = registry_domain(server)?;
    let creds = registry::auth::Credentials { username, password };
    registry::login(&server, &creds, &global.insecure_registries)?;
    println!("Login Succeeded");
    Ok(0)
}

/// `containr logout`.
pub fn logout(server: Option<String>) -> Result<i32, Error> {
    let server = registry_domain(server)?;
    if registry::auth::store(&registry::auth::config_path(), &server, None)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

/// A registry as `login`/`logout` name it: a domain, Docker Hub by default.
fn registry_domain(server: Option<String>) -> Result<String, Error> {
    let Some(s) = server else {
        return Ok(image::reference::DOCKER_HUB.to_string());
    };
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    // Parsed as the domain of a reference, with docker's normalization.
    let r = image::reference::Reference::parse(&format!("{s}/x")).map_err(image::Error::from)?;
    Ok(r.domain)
}

/// `containr load -i FILE`.
pub fn load(root: &Path, input: Option<PathBuf>, reserve: u64) -> Result<i32, Error> {
    require_root("load")?;
    let source = image::input::Source::from_arg(input);
    for loaded in image::archive::load(root, &source, reserve)? {
        match loaded {
            image::archive::Loaded::Name(name) => println!("Loaded image: {name}"),
            image::archive::Loaded::Id(id) => println!("Loaded image ID: {id}"),
        }
    }
    Ok(0)
}

/// `containr save [-o FILE] IMAGE...`.
pub fn save(root: &Path, output: Option<PathBuf>, images: &[String]) -> Result<i32, Error> {
    write_tar(output, |out| image::archive::save(root, images, out))?;
    Ok(0)
}

/// `containr gc`: what was removed, and the space reclaimed.
pub fn gc(root: &Path) -> Result<i32, Error> {
    require_root("gc")?;
    let swept = image::gc::gc(root, &lifecycle::ids(root))?;
    for b in &swept.blobs {
        println!("Deleted blob: {b}");
    }
    for s in &swept.snapshots {
        println!("Deleted snapshot: sha256:{s}");
    }
    for p in &swept.other {
        println!("Deleted leftover: {}", p.display());
    }
    println!("Total reclaimed space: {}", human_size(swept.bytes));
    Ok(0)
}

/// `containr verify [--repair]`: status 1 if problems remain.
pub fn verify(root: &Path, repair: bool, reserve: u64) -> Result<i32, Error> {
    if repair {
        require_root("verify --repair")?;
    }
    // Read only: the next run, ps or pull reclaims what killed runs left.
    let running = lifecycle::running_ids(root);
    let report = image::gc::verify(
        root,
        &lifecycle::ids_as_they_are(root),
        &running,
        repair,
        reserve,
    )?;
    for p in &report.leftovers {
        println!(
            "leftover: {} (left by an interrupted command, not corruption; containr gc removes it)",
            p.display()
        );
    }
    for line in report
        .notes
        .iter()
        .chain(&report.repaired)
        .chain(&report.problems)
    {
        println!("{line}");
    }
    if report.problems.is_empty() {
        println!(
            "{} blobs and {} snapshots verified, no problems",
            report.blobs, report.snapshots
        );
        Ok(0)
    } else {
        eprintln!(
            "containr: {} problem(s) found in the image store",
            report.problems.len()
        );
        Ok(1)
    }
}

/// `containr import [-c INSTRUCTION] [-m MESSAGE] FILE|- NAME`: the new
/// image's id.
pub fn import(
    root: &Path,
    change: &[String],
    message: Option<String>,
    file: PathBuf,
    name: &str,
    reserve: u64,
) -> Result<i32, Error> {
    require_root("import")?;
    // Checked before anything is read.
    let config = (!change.is_empty())
        .then(|| image::change::apply(Default::default(), change))
        .transpose()
        .map_err(image::Error::from)?;
    let id = image::import(
        root,
        image::ImportOptions {
            source: &image::input::Source::from_arg(Some(file)),
            name,
            config,
            message,
            reserve,
        },
    )?;
    println!("{id}");
    Ok(0)
}

/// `containr images`: the table, or ids only with `quiet`.
pub fn images(root: &Path, quiet: bool) -> Result<i32, Error> {
    let rows = image::list(root)?;
    if quiet {
        for r in &rows {
            println!("{}", image::short(&r.id));
        }
        return Ok(0);
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.repository.clone(),
                r.tag.clone(),
                image::short(&r.id),
                ago(r.created.as_deref()),
                human_size(r.size),
            ]
        })
        .collect();
    print_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &table);
    Ok(0)
}

/// `containr rmi [-f] IMAGE...`: each name removed; as docker, what can be
/// is removed, each failure reported, and the status is then 1.
pub fn rmi(root: &Path, images: &[String], force: bool) -> Result<i32, Error> {
    // The last name of an image a container (running or kept) uses is
    // refused unless forced, as docker refuses it.
    let used_by = |id: &containr::cas::Digest| {
        (!force)
            .then(|| lifecycle::user_of_image(root, id))
            .flatten()
    };
    let mut status = 0;
    for name in images {
        match image::remove(root, name, used_by) {
            Ok(gone) => {
                for g in gone {
                    match image::store::unnamed_id(&g) {
                        Some(id) => println!("Deleted: {id}"),
                        None => println!("Untagged: {g}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("{}", Error::from(e).user_message());
                status = 1;
            }
        }
    }
    Ok(status)
}

/// `containr tag SOURCE TARGET`.
pub fn tag(root: &Path, source: &str, target: &str) -> Result<i32, Error> {
    image::tag(root, source, target)?;
    Ok(0)
}

/// `containr image inspect IMAGE...`: a JSON array.
pub fn inspect(root: &Path, images: &[String]) -> Result<i32, Error> {
    let all = images
        .iter()
        .map(|n| image::inspect(root, n))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "{}",
        serde_json::to_string_pretty(&all).expect("plain data")
    );
    Ok(0)
}
