//! What the listing and archive commands write to stdout, in docker's
//! formats: tables padded as docker pads them, ages as docker words them,
//! tars written whole or not at all.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::image;

/// Columns padded to their widest cell, three spaces apart, as docker's.
pub fn print_table<const N: usize>(head: [&str; N], rows: &[[String; N]]) {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let mut line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = width[i]));
            }
        }
        let _ = writeln!(out, "{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// `containr images`: the table, or ids only with `quiet`.
pub fn images(rows: &[image::Row], quiet: bool) {
    if quiet {
        for r in rows {
            println!("{}", image::short(&r.id));
        }
        return;
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.repository.clone(),
                r.tag.clone(),
                image::short(&r.id),
                crate::util::ago(r.created.as_deref()),
                crate::util::human_size(r.size),
            ]
        })
        .collect();
    print_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &table);
}

/// Write a tar made by `write` to `output` (through a temporary file
/// renamed at the end: never half a file) or to stdout (not a terminal).
pub fn write_tar<E: Into<Error>>(
    output: Option<PathBuf>,
    write: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), Error> {
    let Some(path) = output else {
        use std::io::IsTerminal;
        if std::io::stdout().is_terminal() {
            return Err(Error::Usage(
                "refusing to write a tar to a terminal: use -o FILE or a redirect".into(),
            ));
        }
        return write(&mut std::io::stdout().lock()).map_err(Into::into);
    };
    let tmp = path.with_extension("containr-tmp");
    let io = |p: &Path, e: std::io::Error| Error::Usage(format!("{}: {e}", p.display()));
    let result = std::fs::File::create(&tmp)
        .map_err(|e| io(&tmp, e))
        .and_then(|mut f| {
            write(&mut f).map_err(Into::into)?;
            f.sync_all().map_err(|e| io(&tmp, e))
        })
        .and_then(|()| std::fs::rename(&tmp, &path).map_err(|e| io(&path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
