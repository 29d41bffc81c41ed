//! `-u USER[:GROUP]`: parsing the flag, and resolving it against the
//! container's own `/etc/passwd` and `/etc/group` (never the host's).

/// Errors of this module.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid user {0:?}: expected USER[:GROUP], each a name or a number")]
    Syntax(String),
    #[error("unable to find user {0}: no matching entries in the container's /etc/passwd")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in the container's /etc/group")]
    NoGroup(String),
}

/// The `-u` flag as given: names or numbers, not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSpec {
    pub user: String,
    pub group: Option<String>,
}

/// Who the command runs as, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, as initgroups(3) makes them: the primary group,
    /// then every group of /etc/group that lists the user.
    pub groups: Vec<u32>,
    pub home: String,
}

fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'))
}

impl UserSpec {
    /// Parse `USER`, `UID`, `USER:GROUP`, `UID:GID`.
    pub fn parse(spec: &str) -> Result<UserSpec, Error> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if !valid_part(user) || group.is_some_and(|g| !valid_part(g)) {
            return Err(Error::Syntax(spec.to_string()));
        }
        // A number is a number only if it fits a uid; `99999999999` is not
        // a name either.
        for part in std::iter::once(user).chain(group) {
            if part.bytes().all(|b| b.is_ascii_digit()) && part.parse::<u32>().is_err() {
                return Err(Error::Syntax(spec.to_string()));
            }
        }
        Ok(UserSpec {
            user: user.to_string(),
            group: group.map(str::to_string),
        })
    }

    /// Resolve against the contents of the container's `/etc/passwd` and
    /// `/etc/group` (empty when the file is missing). Numeric ids need no
    /// entry, as with docker: `-u 1234` works in an image without passwd.
    pub fn resolve(&self, passwd: &str, group: &str) -> Result<Identity, Error> {
        let numeric_uid = self.user.parse::<u32>().ok();
        let entry = passwd_entries(passwd).find(|e| match numeric_uid {
            Some(uid) => e.uid == uid,
            None => e.name == self.user,
        });
        let (uid, mut gid, home, name) = match (entry, numeric_uid) {
            (Some(e), _) => (e.uid, e.gid, e.home.to_string(), Some(e.name)),
            // Docker's HOME for an id without an entry: /root for root.
            (None, Some(0)) => (0, 0, "/root".to_string(), None),
            (None, Some(uid)) => (uid, 0, "/".to_string(), None),
            (None, None) => return Err(Error::NoUser(self.user.clone())),
        };
        if let Some(g) = &self.group {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => group_entries(group)
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| Error::NoGroup(g.clone()))?,
            };
        }
        let mut groups = vec![gid];
        if let Some(name) = name {
            for e in group_entries(group) {
                if e.members.split(',').any(|m| m == name) && !groups.contains(&e.gid) {
                    groups.push(e.gid);
                }
            }
        }
        Ok(Identity {
            uid,
            gid,
            groups,
            home,
        })
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

/// Well-formed lines of a passwd file; malformed ones are skipped, as libc does.
fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[0].is_empty() {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || f[0].is_empty() {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3],
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          broken line\n\
                          user:x:1000:1000:user:/home/user:/bin/sh\n\
                          svc:x:1001:1001::/srv:/bin/false\n";
    const GROUP: &str =
        "root:x:0:\nwheel:x:10:user,svc\nusers:x:100:user\nuser:x:1000:\nsvc:x:1001:\n";

    fn resolve(spec: &str) -> Result<Identity, Error> {
        UserSpec::parse(spec)?.resolve(PASSWD, GROUP)
    }

    #[test]
    fn parses_forms() {
        assert_eq!(
            UserSpec::parse("1000:100").unwrap(),
            UserSpec {
                user: "1000".into(),
                group: Some("100".into())
            }
        );
        assert_eq!(UserSpec::parse("user").unwrap().group, None);
        for bad in ["", ":", "user:", ":0", "a b", "1:2:3", "99999999999", "u/x"] {
            assert!(UserSpec::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn name_resolves_with_primary_and_supplementary_groups() {
        let id = resolve("user").unwrap();
        assert_eq!((id.uid, id.gid), (1000, 1000));
        assert_eq!(id.groups, vec![1000, 10, 100]);
        assert_eq!(id.home, "/home/user");
    }

    #[test]
    fn numeric_uid_uses_its_entry_when_present() {
        let id = resolve("1001").unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (1001, 1001, "/srv"));
    }

    #[test]
    fn numeric_uid_without_entry_gets_gid_0() {
        let id = resolve("4242").unwrap();
        assert_eq!((id.uid, id.gid, id.home.as_str()), (4242, 0, "/"));
        assert_eq!(id.groups, vec![0]);
    }

    #[test]
    fn group_by_name_or_number() {
        assert_eq!(resolve("user:wheel").unwrap().gid, 10);
        assert_eq!(resolve("user:77").unwrap().gid, 77);
        // The primary group leads the supplementary ones, never twice.
        assert_eq!(resolve("user:wheel").unwrap().groups, vec![10, 100]);
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(resolve("nobody"), Err(Error::NoUser("nobody".into())));
        assert_eq!(resolve("user:staff"), Err(Error::NoGroup("staff".into())));
    }
}
