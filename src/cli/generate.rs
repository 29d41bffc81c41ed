//! `containr __generate`: man pages and completions from the command
//! line's own definitions, so they never drift from it.

use std::path::Path;
use std::process::ExitCode;

use crate::error::RUNTIME_ERROR;

/// Print the completion script for `shell`.
pub fn completions(mut cli: clap::Command, shell: clap_complete::Shell) -> std::io::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, "containr", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)
}

/// `containr.1`, and a page per command as docker has (`containr-run.1`,
/// `containr-image-inspect.1`), each listing the global options too.
pub fn man_pages(mut cli: clap::Command, dir: &Path) -> std::io::Result<()> {
    fn write(dir: &Path, name: &str, cmd: clap::Command) -> std::io::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        std::fs::write(&path, out)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
    fn pages(dir: &Path, prefix: &str, cmd: &clap::Command) -> std::io::Result<()> {
        for sub in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let name = format!("{prefix}-{}", sub.get_name());
            write(dir, &name, sub.clone().name(name.clone()))?;
            pages(dir, &name, sub)?;
        }
        Ok(())
    }
    // Globals propagate into the subcommands' definitions only once built.
    cli.build();
    write(dir, "containr", cli.clone())?;
    pages(dir, "containr", &cli)
}

pub fn finish(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("containr: {e}");
            super::exit(RUNTIME_ERROR)
        }
    }
}
