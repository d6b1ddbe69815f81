//! The hosts `--host` and `--group` choose, each once, with the groups each was chosen through:
//! apart from their settings, which follow from these.

use super::{Config, ConfigError, FILE_NAME};

/// A host chosen by `--host` or through `--group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The name shown in output: a `hosts` key, or the destination as given.
    pub name: String,
    /// The groups it was chosen through, whose settings then apply: in the order the file
    /// defines them, the first one's setting winning, whatever the order of the flags.
    pub groups: Vec<String>,
}

/// The hosts chosen by `--host` and `--group`, each once: those of `--host` first, then each
/// group's members, in the order given; a host is given the settings of every group given that
/// lists it, whether or not `--host` names it too (see [`Selected::groups`]).
pub fn select(
    config: Option<&Config>,
    hosts: &[String],
    groups: &[String],
) -> Result<Vec<Selected>, ConfigError> {
    if let Some((config, group)) =
        config.and_then(|c| Some((c, hosts.iter().find(|h| c.only_a_group(h))?)))
    {
        return Err(ConfigError::GroupAsHost {
            named: "--host",
            group: group.clone(),
            path: config.path.clone(),
        });
    }
    let mut chosen: Vec<Selected> = hosts
        .iter()
        .map(|h| Selected {
            name: h.clone(),
            groups: Vec::new(),
        })
        .collect();
    for group in groups {
        let Some(config) = config else {
            return Err(ConfigError::UnknownGroup {
                named: "--group",
                group: group.clone(),
                why: format!(
                    "no {FILE_NAME} found (looked in the current directory and its parents; --config names one)"
                ),
            });
        };
        let Some(spanned) = config.file.groups.get(group) else {
            if config.hosts().contains(&group.as_str()) {
                return Err(ConfigError::UnknownGroup {
                    named: "--group",
                    group: group.clone(),
                    why: format!(
                        "{group} is a host of {}, not a group: pass --host {group}",
                        config.path.display()
                    ),
                });
            }
            let known: Vec<&str> = config.groups().collect();
            return Err(ConfigError::UnknownGroup {
                named: "--group",
                group: group.clone(),
                why: format!(
                    "not defined in {}{} (groups there: {})",
                    config.path.display(),
                    crate::suggest::nearest(group, known.iter().copied())
                        .map_or_else(String::new, |g| format!(": did you mean {g}?")),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ),
            });
        };
        let members = spanned.value.0.hosts.as_ref().map(|h| &h.value);
        match members {
            Some(members) if !members.is_empty() => {
                chosen.extend(members.iter().map(|m| Selected {
                    name: m.value.clone(),
                    groups: vec![group.clone()],
                }));
            }
            _ => {
                return Err(ConfigError::EmptyGroup {
                    path: config.path.clone(),
                    line: spanned.referenced.line(),
                    group: group.clone(),
                });
            }
        }
    }
    // Each host once, where first chosen, with the groups of all its choices in the file's order.
    let mut once: Vec<Selected> = Vec::new();
    for host in chosen {
        match once.iter_mut().find(|s| s.name == host.name) {
            Some(first) => first.groups.extend(host.groups),
            None => once.push(host),
        }
    }
    let defined = |group: &String| {
        let at = config?.file.groups.get(group)?.referenced;
        Some((at.line(), at.column()))
    };
    for host in &mut once {
        host.groups.sort_by_key(defined);
        host.groups.dedup();
    }
    let chosen = once;
    if chosen.is_empty() {
        return Err(ConfigError::NoHost);
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{FLEET, host, parse};
    use crate::config::{DEFAULT_ELIXIR, Section, resolve};

    #[test]
    fn a_host_chosen_through_groups_gets_their_settings_whatever_the_order_of_the_flags() {
        // `zz` comes first in the file, `aa` after it: the file's order, not the names', decides.
        let text = "groups:\n  zz:\n    hosts: [h, z]\n    elixir: /zz/elixir\n    \
                    ssh_options: [Port=1]\n  aa:\n    hosts: [h]\n    elixir: /aa/elixir\n    \
                    ssh_options: [Port=2]\n";
        let config = parse(text).unwrap();
        let settings = |hosts: &[&str], groups: &[&str]| {
            let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
            let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            let chosen = select(Some(&config), &hosts, &groups).unwrap();
            let h = resolve(Some(&config), &chosen[0], &Section::default());
            let names: Vec<String> = chosen.into_iter().map(|s| s.name).collect();
            (names, h.elixir, h.ssh_options)
        };
        let both = |names: &[&str]| {
            let names = names.iter().map(|n| n.to_string()).collect();
            (
                names,
                "/zz/elixir".to_owned(),
                vec!["Port=1".to_owned(), "Port=2".to_owned()],
            )
        };
        assert_eq!(settings(&[], &["zz", "aa"]), both(&["h", "z"]));
        assert_eq!(settings(&[], &["aa", "zz"]), both(&["h", "z"]));
        assert_eq!(settings(&[], &["aa", "zz", "aa"]), both(&["h", "z"]));
        // Named by --host too, it runs once, and still gets its group's settings.
        let zz = (
            vec!["h".to_owned(), "z".to_owned()],
            "/zz/elixir".to_owned(),
            vec!["Port=1".to_owned()],
        );
        assert_eq!(settings(&["h"], &["zz"]), zz);
        let alone = settings(&["h"], &[]);
        assert_eq!((alone.1.as_str(), alone.2.len()), (DEFAULT_ELIXIR, 0));
    }

    #[test]
    fn a_group_without_a_file_says_where_the_file_was_looked_for() {
        let error = select(None, &[], &["web".into()]).unwrap_err().to_string();
        assert_eq!(
            error,
            "--group web: no mix-remote.yaml found (looked in the current directory and its \
             parents; --config names one)"
        );
    }

    #[test]
    fn selection_keeps_order_drops_repeats_and_names_bad_groups() {
        let config = parse(FLEET).unwrap();
        let chosen = select(
            Some(&config),
            &["web-1".into()],
            &["web".into(), "db".into()],
        )
        .unwrap();
        assert_eq!(
            chosen,
            [
                host("web-1", Some("web")),
                host("deploy@web-2", Some("web")),
                host("db-1", Some("db"))
            ]
        );
        let err = select(Some(&config), &[], &["api".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--group api: not defined in /p/mix-remote.yaml (groups there: db, web)"
        );
        let err = select(Some(&config), &[], &["wbe".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--group wbe: not defined in /p/mix-remote.yaml: did you mean web? (groups there: db, web)"
        );
        assert_eq!(config.hosts(), ["db-1", "web-1", "deploy@web-2"]);
        assert!(matches!(
            select(None, &[], &["web".into()]),
            Err(ConfigError::UnknownGroup { .. })
        ));
        assert_eq!(select(Some(&config), &[], &[]), Err(ConfigError::NoHost));
        let empty = parse("groups:\n  web: []\n").unwrap();
        assert_eq!(
            select(Some(&empty), &[], &["web".into()])
                .unwrap_err()
                .to_string(),
            "/p/mix-remote.yaml:2: group `web` lists no host"
        );
    }

    #[test]
    fn a_group_named_as_a_host_is_refused_with_its_flag() {
        let config = parse(FLEET).unwrap();
        let err = select(Some(&config), &["web-1".into(), "web".into()], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--host web: web is a group of /p/mix-remote.yaml, not a host: pass --group web (to \
             reach an SSH destination of that name, give it a section under `hosts`)"
        );
        // A host of that name has the last word; without a file, any name is a destination.
        let both = parse("groups:\n  web: [a]\nhosts:\n  web: {}\n").unwrap();
        let chosen = select(Some(&both), &["web".into()], &[]).unwrap();
        assert_eq!(chosen, [host("web", None)]);
        assert!(select(None, &["web".into()], &[]).is_ok());
    }

    #[test]
    fn a_host_named_as_a_group_is_refused_saying_so() {
        let config = parse("groups:\n  web: [web-1]\nhosts:\n  db: {}\n").unwrap();
        for (name, kind) in [
            ("db", "a host with a section"),
            ("web-1", "a member of a group"),
        ] {
            let err = select(Some(&config), &[], &[name.into()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "--group {name}: {name} is a host of /p/mix-remote.yaml, not a group: pass \
                     --host {name}"
                ),
                "{kind}"
            );
        }
    }
}
