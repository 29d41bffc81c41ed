//! `import --change`: Dockerfile instructions applied to an image's config,
//! as docker's `import -c`/`commit -c` apply them. Only the instructions
//! that set config (no `RUN`, `COPY`, `FROM`...) are accepted, with
//! docker's message for the others.
//!
//! The words of an instruction are split as the Dockerfile parser splits
//! them: quotes group, a backslash escapes, `$VAR` and `${VAR}` take the
//! value an earlier `ENV` gave (not in single quotes).

use std::collections::BTreeMap;

use super::config::{Config, Healthcheck, RunConfig};

/// A change that is not one docker accepts, or is malformed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    #[error("{instruction} requires {what}")]
    Arguments {
        instruction: &'static str,
        what: &'static str,
    },
    #[error("{0}: unterminated quote")]
    Quote(String),
    #[error("invalid {instruction} {value:?}: {why}")]
    Value {
        instruction: &'static str,
        value: String,
        why: &'static str,
    },
}

/// `config` with `changes` applied in order.
pub fn apply(mut run: RunConfig, changes: &[String]) -> Result<RunConfig, Error> {
    let config = &mut run.oci;
    for line in changes {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(w, r)| (w, r.trim()));
        let instruction = word.to_ascii_lowercase();
        match instruction.as_str() {
            "cmd" => _ = config.set_cmd(Some(command(rest)?)),
            "entrypoint" => _ = config.set_entrypoint(Some(command(rest)?)),
            "env" => {
                let pairs = pairs("ENV", rest, &env_map(config))?;
                let mut env = config.env().clone().unwrap_or_default();
                for (k, v) in pairs {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                    env.push(format!("{k}={v}"));
                }
                config.set_env(Some(env));
            }
            "label" => {
                let pairs = pairs("LABEL", rest, &env_map(config))?;
                config.labels_mut().get_or_insert_default().extend(pairs);
            }
            "workdir" => {
                let dir = one("WORKDIR", rest, &env_map(config))?;
                // A relative one is relative to the one before, as docker.
                let base = config.working_dir().clone().unwrap_or_else(|| "/".into());
                config.set_working_dir(Some(if dir.starts_with('/') {
                    dir
                } else {
                    format!("{}/{dir}", base.trim_end_matches('/'))
                }));
            }
            "user" => _ = config.set_user(Some(one("USER", rest, &env_map(config))?)),
            "stopsignal" => {
                let signal = one("STOPSIGNAL", rest, &env_map(config))?;
                config.set_stop_signal(Some(signal));
            }
            "expose" => {
                let list = words(rest, &env_map(config))?;
                if list.is_empty() {
                    return Err(at_least_one("EXPOSE"));
                }
                let mut ports = config.exposed_ports().clone().unwrap_or_default();
                for p in list {
                    add(&mut ports, port(&p)?);
                }
                config.set_exposed_ports(Some(ports));
            }
            "volume" => {
                let list = match json_array(rest) {
                    Some(list) => list,
                    None => words(rest, &env_map(config))?,
                };
                if list.is_empty() || list.iter().any(|v| v.trim().is_empty()) {
                    return Err(Error::Arguments {
                        instruction: "VOLUME",
                        what: "at least one non-empty path",
                    });
                }
                let mut volumes = config.volumes().clone().unwrap_or_default();
                for v in list {
                    add(&mut volumes, v);
                }
                config.set_volumes(Some(volumes));
            }
            "healthcheck" => run.docker.healthcheck = Some(healthcheck(rest)?),
            "onbuild" => {
                let inner = rest.split_whitespace().next().unwrap_or("");
                match inner.to_ascii_lowercase().as_str() {
                    "" => return Err(at_least_one("ONBUILD")),
                    "onbuild" | "from" | "maintainer" => {
                        return Err(Error::Value {
                            instruction: "ONBUILD",
                            value: rest.into(),
                            why: "chaining ONBUILD, FROM or MAINTAINER is not allowed",
                        });
                    }
                    _ => run
                        .docker
                        .on_build
                        .get_or_insert_with(Vec::new)
                        .push(rest.into()),
                }
            }
            _ => return Err(Error::NotAllowed(instruction)),
        }
    }
    Ok(run)
}

/// `HEALTHCHECK NONE`, or `HEALTHCHECK [--interval=D] [--timeout=D]
/// [--start-period=D] [--start-interval=D] [--retries=N] CMD command`
/// (the shell form, or a JSON array), as docker's builder records it.
fn healthcheck(rest: &str) -> Result<Healthcheck, Error> {
    let bad = |value: &str, why| Error::Value {
        instruction: "HEALTHCHECK",
        value: value.into(),
        why,
    };
    let mut check = Healthcheck::default();
    let mut rest = rest.trim();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, tail) = flag
            .split_once(char::is_whitespace)
            .map_or((flag, ""), |(w, t)| (w, t.trim_start()));
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| bad(word, "flags take a value: --NAME=VALUE"))?;
        let ns = || {
            crate::util::parse_go_duration(value)
                .map(|n| n as i64)
                .ok_or_else(|| bad(value, "not a duration (30s, 1m30s, 500ms)"))
        };
        match name {
            "interval" => check.interval = Some(ns()?),
            "timeout" => check.timeout = Some(ns()?),
            "start-period" => check.start_period = Some(ns()?),
            "start-interval" => check.start_interval = Some(ns()?),
            "retries" => {
                check.retries = Some(value.parse().map_err(|_| bad(value, "not a number"))?)
            }
            _ => return Err(bad(word, "unknown flag")),
        }
        rest = tail;
    }
    let (word, command) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(w, c)| (w, c.trim()));
    check.test = Some(match word.to_ascii_uppercase().as_str() {
        "NONE" if command.is_empty() => vec!["NONE".into()],
        "CMD" if !command.is_empty() => match json_array(command) {
            Some(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
            None => vec!["CMD-SHELL".into(), command.into()],
        },
        _ => {
            return Err(Error::Arguments {
                instruction: "HEALTHCHECK",
                what: "NONE, or CMD and a command",
            });
        }
    });
    Ok(check)
}

/// `ExposedPorts` and `Volumes` are sets (JSON objects' keys, which
/// oci-spec reads in no order): each key once, sorted.
fn add(set: &mut Vec<String>, key: String) {
    if !set.contains(&key) {
        set.push(key);
    }
    set.sort();
}

fn at_least_one(instruction: &'static str) -> Error {
    Error::Arguments {
        instruction,
        what: "at least one argument",
    }
}

/// `CMD`/`ENTRYPOINT`: a JSON array as is (exec form), anything else run by
/// `/bin/sh -c` (shell form).
fn command(rest: &str) -> Result<Vec<String>, Error> {
    if let Some(list) = json_array(rest) {
        return Ok(list);
    }
    if rest.is_empty() {
        // docker: `CMD` alone clears it to the empty shell form.
        return Ok(vec!["/bin/sh".into(), "-c".into(), String::new()]);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// A JSON array of strings, or `None` when `s` is not one (docker then
/// takes the shell form).
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str(s).ok()
}

/// `ENV`/`LABEL`: `k=v k2="v 2"`, or the old `k v w` form (the value is
/// the rest of the line).
fn pairs(
    instruction: &'static str,
    rest: &str,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, Error> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if first.is_empty() {
        return Err(at_least_one(instruction));
    }
    if !first.contains('=') {
        let (key, value) = rest
            .split_once(char::is_whitespace)
            .ok_or(Error::Arguments {
                instruction,
                what: "a value: KEY VALUE or KEY=VALUE",
            })?;
        let value = words(value.trim(), env)?.join(" ");
        return Ok(vec![(key.to_string(), value)]);
    }
    words(rest, env)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(Error::Value {
                instruction,
                value: w.clone(),
                why: "expected KEY=VALUE",
            }),
        })
        .collect()
}

/// Exactly one word.
fn one(
    instruction: &'static str,
    rest: &str,
    env: &BTreeMap<String, String>,
) -> Result<String, Error> {
    let mut w = words(rest, env)?;
    if w.len() != 1 {
        return Err(Error::Arguments {
            instruction,
            what: "exactly one argument",
        });
    }
    Ok(w.remove(0))
}

/// `80`, `53/udp`, `8000-8002/tcp` as docker keys them: `80/tcp`.
fn port(p: &str) -> Result<String, Error> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let valid_num = |n: &str| n.parse::<u16>().is_ok_and(|n| n > 0);
    let ok = match num.split_once('-') {
        Some((a, b)) => valid_num(a) && valid_num(b),
        None => valid_num(num),
    };
    if !ok || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::Value {
            instruction: "EXPOSE",
            value: p.into(),
            why: "expected PORT[-PORT][/tcp|udp|sctp]",
        });
    }
    Ok(format!("{num}/{proto}"))
}

/// The config's `Env` as a map, for `$VAR` in later instructions.
fn env_map(config: &Config) -> BTreeMap<String, String> {
    config
        .env()
        .iter()
        .flatten()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Split into words as the Dockerfile parser does: whitespace separates,
/// quotes group (and are removed), a backslash escapes the next character
/// (outside single quotes), `$VAR`/`${VAR}` expand (outside single quotes;
/// unset is empty).
fn words(s: &str, env: &BTreeMap<String, String>) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, '$') => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced && chars.next() != Some('}') {
                    return Err(Error::Value {
                        instruction: "variable",
                        value: s.into(),
                        why: "missing } after ${",
                    });
                }
                if name.is_empty() && !braced {
                    cur.push('$');
                } else {
                    cur.push_str(env.get(&name).map_or("", String::as_str));
                }
                in_word = true;
            }
            (Some(_), _) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Error::Quote(s.into()));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(lines: &[&str]) -> Result<RunConfig, Error> {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        apply(RunConfig::default(), &lines)
    }

    fn v(words: &[&str]) -> Option<Vec<String>> {
        Some(words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn healthcheck_takes_docker_s_flags_and_forms() {
        let c = changed(&["HEALTHCHECK --interval=200ms --retries=2 CMD test -e /ok"]).unwrap();
        let h = c.docker.healthcheck.unwrap();
        assert_eq!(h.test, v(&["CMD-SHELL", "test -e /ok"]));
        assert_eq!(
            (h.interval, h.retries, h.timeout),
            (Some(200_000_000), Some(2), None)
        );
        let c = changed(&[r#"HEALTHCHECK CMD ["true", "x"]"#]).unwrap();
        assert_eq!(c.docker.healthcheck.unwrap().test, v(&["CMD", "true", "x"]));
        let c = changed(&["healthcheck none"]).unwrap();
        assert_eq!(c.docker.healthcheck.unwrap().test, v(&["NONE"]));
        for bad in [
            "HEALTHCHECK",
            "HEALTHCHECK CMD",
            "HEALTHCHECK --interval=5 CMD true",
        ] {
            assert!(changed(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn cmd_and_entrypoint_take_both_forms() {
        let c = changed(&[r#"CMD ["echo", "a b"]"#, "entrypoint /bin/env -i"]).unwrap();
        assert_eq!(*c.oci.cmd(), v(&["echo", "a b"]));
        assert_eq!(*c.oci.entrypoint(), v(&["/bin/sh", "-c", "/bin/env -i"]));
        // Not valid JSON: the shell form, as docker.
        let c = changed(&["CMD [oops"]).unwrap();
        assert_eq!(*c.oci.cmd(), v(&["/bin/sh", "-c", "[oops"]));
    }

    #[test]
    fn env_in_both_forms_replaces_and_expands() {
        let c = changed(&[
            "ENV A=1 B=\"two words\" C=x\\ y",
            "ENV D the rest of it",
            "ENV A=$A$A E=${B}!",
            "ENV F='$A'",
        ])
        .unwrap();
        assert_eq!(
            *c.oci.env(),
            v(&[
                "B=two words",
                "C=x y",
                "D=the rest of it",
                "A=11",
                "E=two words!",
                "F=$A"
            ])
        );
        assert!(matches!(changed(&["ENV"]), Err(Error::Arguments { .. })));
        assert!(matches!(changed(&["ENV A"]), Err(Error::Arguments { .. })));
        assert!(matches!(changed(&["ENV A=\"x"]), Err(Error::Quote(_))));
        assert!(matches!(changed(&["ENV A=1 =2"]), Err(Error::Value { .. })));
    }

    #[test]
    fn workdir_user_expose_label_stopsignal_volume_onbuild() {
        let c = changed(&[
            "WORKDIR /srv",
            "WORKDIR app",
            "USER nobody:nogroup",
            "EXPOSE 80 53/udp 8000-8001",
            "LABEL a=b \"c d\"=e",
            "STOPSIGNAL SIGQUIT",
            "VOLUME [\"/data\", \"/logs\"]",
            "VOLUME /cache",
            "ONBUILD RUN make",
        ])
        .unwrap();
        assert_eq!(c.oci.working_dir().as_deref(), Some("/srv/app"));
        assert_eq!(c.oci.user().as_deref(), Some("nobody:nogroup"));
        assert_eq!(
            *c.oci.exposed_ports(),
            v(&["53/udp", "80/tcp", "8000-8001/tcp"])
        );
        let labels = c.oci.labels().clone().unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["c d"], "e");
        assert_eq!(c.oci.stop_signal().as_deref(), Some("SIGQUIT"));
        assert_eq!(*c.oci.volumes(), v(&["/cache", "/data", "/logs"]));
        assert_eq!(c.docker.on_build, v(&["RUN make"]));
    }

    #[test]
    fn others_are_refused_as_docker_words_it() {
        assert_eq!(
            changed(&["RUN make"]).unwrap_err().to_string(),
            "run is not a valid change command"
        );
        assert_eq!(
            changed(&["FROM scratch"]).unwrap_err().to_string(),
            "from is not a valid change command"
        );
        assert!(changed(&["EXPOSE 0"]).is_err());
        assert!(changed(&["EXPOSE 80/icmp"]).is_err());
        assert!(changed(&["USER a b"]).is_err());
        assert!(changed(&["ONBUILD ONBUILD RUN x"]).is_err());
        // Blank lines and comments are no instruction.
        assert_eq!(changed(&["", "# x"]).unwrap(), RunConfig::default());
    }
}
