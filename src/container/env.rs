//! The container's environment: `-e`, `--env-file` and the defaults docker
//! gives every container. Pure logic; the host environment comes in as a
//! lookup function so tests do not depend on it.

/// Errors of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid environment variable {0:?}: expected KEY=VALUE")]
    Syntax(String),
    #[error("invalid environment variable {0:?}: the name contains whitespace")]
    Whitespace(String),
    #[error("environment variable {0:?} has no '=' and is not set on the host: use -e {0}=VALUE")]
    Unset(String),
    #[error("--env-file {file}, line {line}: {source}")]
    File {
        file: String,
        line: usize,
        source: Box<Error>,
    },
}

/// `PATH` for a container whose image says nothing (docker's value).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One `-e` argument. `KEY=VALUE` is taken as it is; a bare `KEY` takes the
/// host's value, as docker does, except that docker silently drops a `KEY`
/// the host lacks, and containr says so instead (a typo should not vanish).
pub fn parse_entry(arg: &str, host: &dyn Fn(&str) -> Option<String>) -> Result<String, Error> {
    let (key, value) = match arg.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (arg, None),
    };
    if key.is_empty() {
        return Err(Error::Syntax(arg.to_string()));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(Error::Whitespace(key.to_string()));
    }
    match value {
        Some(v) => Ok(format!("{key}={v}")),
        None => host(key)
            .map(|v| format!("{key}={v}"))
            .ok_or_else(|| Error::Unset(key.to_string())),
    }
}

/// The entries of an env file: one `KEY=VALUE` (or bare `KEY`) a line;
/// blank lines and lines starting with `#` are skipped.
pub fn parse_file(
    file: &str,
    text: &str,
    host: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(parse_entry(line, host).map_err(|e| Error::File {
            file: file.to_string(),
            line: i + 1,
            source: Box::new(e),
        })?);
    }
    Ok(out)
}

/// The key of a `KEY=VALUE` entry.
pub fn key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// Overlay `entries` on `base`: a later entry replaces an earlier one with
/// the same key, keeping the earlier one's position.
pub fn merge(base: Vec<String>, entries: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut env = base;
    for e in entries {
        match env.iter_mut().find(|old| key(old) == key(&e)) {
            Some(slot) => *slot = e,
            None => env.push(e),
        }
    }
    env
}

/// Docker's defaults: `PATH`, `HOSTNAME`, and `TERM` when there is a terminal.
pub fn defaults(hostname: &str, tty: bool) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".to_string());
    }
    env
}

/// The value of `name` in `env`.
pub fn get<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .find(|e| key(e) == name)
        .and_then(|e| e.split_once('=').map(|(_, v)| v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(k: &str) -> Option<String> {
        (k == "FROM_HOST").then(|| "hv".to_string())
    }

    #[test]
    fn entries() {
        assert_eq!(parse_entry("A=1", &host).unwrap(), "A=1");
        assert_eq!(parse_entry("A=", &host).unwrap(), "A=");
        assert_eq!(parse_entry("A=b=c", &host).unwrap(), "A=b=c");
        assert_eq!(parse_entry("FROM_HOST", &host).unwrap(), "FROM_HOST=hv");
        assert_eq!(parse_entry("NOPE", &host), Err(Error::Unset("NOPE".into())));
        assert_eq!(parse_entry("=x", &host), Err(Error::Syntax("=x".into())));
        assert_eq!(parse_entry("", &host), Err(Error::Syntax("".into())));
        assert_eq!(
            parse_entry("A B=1", &host),
            Err(Error::Whitespace("A B".into()))
        );
    }

    #[test]
    fn env_file() {
        let text = "# comment\n\nA=1\n  B=two words \nFROM_HOST\n";
        assert_eq!(
            parse_file("f", text, &host).unwrap(),
            vec!["A=1", "B=two words ", "FROM_HOST=hv"]
        );
        let err = parse_file("f", "A=1\n=bad\n", &host).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--env-file f, line 2: invalid environment variable \"=bad\": expected KEY=VALUE"
        );
    }

    #[test]
    fn later_entries_win_in_place() {
        let env = merge(
            defaults("h", false),
            [
                "X=1".to_string(),
                "PATH=/bin".to_string(),
                "X=2".to_string(),
            ],
        );
        assert_eq!(env, vec!["PATH=/bin", "HOSTNAME=h", "X=2"]);
        assert_eq!(get(&env, "X"), Some("2"));
        assert_eq!(get(&env, "Y"), None);
    }

    #[test]
    fn tty_sets_term() {
        assert!(defaults("h", true).contains(&"TERM=xterm".to_string()));
        assert!(!defaults("h", false).iter().any(|e| key(e) == "TERM"));
    }
}
