//! `mix-remote init`: a commented `mix-remote.yaml` for the project and a Makefile target that
//! runs the pre-deploy smoke test, both from `templates/`. Nothing is overwritten without
//! `--force`, and nothing is written unless everything can be: each new content is written to a
//! temporary file beside its file first, and the files are replaced only once all of them are.

use std::fs::Permissions;
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::build::fresh;
use crate::build::mix_exs::Layout;
use crate::cli::InitArgs;
use crate::config::{Config, ConfigError, FILE_NAME};
use crate::exit::{self, CliError};
use crate::screen::{stdout_failed, write_stderr, write_stdout};

/// The commented configuration (`templates/mix-remote.yaml`).
const CONFIG_TEMPLATE: &str = include_str!("../../templates/mix-remote.yaml");
/// The Makefile target (`templates/Makefile.mk`), between its two marker lines.
const MAKEFILE_TEMPLATE: &str = include_str!("../../templates/Makefile.mk");
/// The first line of the Makefile block.
const BEGIN: &str = "# >>> mix-remote";
/// The last line of the Makefile block.
const END: &str = "# <<< mix-remote";
/// The target of the Makefile block.
const TARGET: &str = "smoke";

/// Why `init` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `--project` names no directory.
    #[error("--project {}: the project directory {why}", .path.display())]
    NoProject {
        /// The directory named.
        path: PathBuf,
        /// "does not exist", "is not a directory".
        why: &'static str,
    },
    /// The directory has no `mix.exs`: a `mix-remote.yaml` there would make it the project of
    /// every directory below it.
    #[error(
        "{} has no mix.exs: init writes {FILE_NAME} beside a Mix project's mix.exs (run it in the \
         project, or pass --project DIR)",
        .0.display()
    )]
    NotMix(PathBuf),
    /// The configuration exists already.
    #[error("{0} already exists: pass --force to overwrite it")]
    Exists(PathBuf),
    /// The Makefile has the target already.
    #[error("{0} already has the mix-remote target: pass --force to replace it")]
    HasTarget(PathBuf),
    /// The Makefile has a `smoke` target of its own, which the block's would override.
    #[error(
        "{path}:{line}: the Makefile has a `{TARGET}` target of its own, which mix-remote's would \
         override: rename it, or run init without --makefile and add the target it prints under \
         another name"
    )]
    OwnTarget {
        /// The Makefile.
        path: PathBuf,
        /// The line of its rule, from 1.
        line: usize,
    },
    /// The Makefile has a start marker without its end marker: what to replace is unknown.
    #[error(
        "{path}:{line}: `{BEGIN}` has no `{END}` line after it: end the mix-remote block with \
         that line (or remove the block), then run init again"
    )]
    Unterminated {
        /// The Makefile.
        path: PathBuf,
        /// The line of the start marker, from 1.
        line: usize,
    },
    /// A file could not be read or written.
    #[error("cannot {what} {path}: {error}")]
    Io {
        /// "read" or "write".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file we would write does not parse: a bad `--host` or `--entry` value.
    #[error("the configuration would not be valid: {0}")]
    Invalid(#[from] ConfigError),
}

/// What `init` did, for the user.
#[derive(Debug, PartialEq, Eq)]
pub struct Written {
    /// The configuration file written.
    pub config: PathBuf,
    /// The Makefile appended to, if any.
    pub makefile: Option<PathBuf>,
    /// The target, for stdout, when it was not appended.
    pub target: Option<String>,
}

/// The environments of the builds in `<project>/_build` (or where `build_path:` puts them), most
/// recently compiled first; a `test` build is for `mix test`, not for servers, and is left out.
/// None when one build serves every environment (see [`Layout::built_envs`]).
pub fn builds(project: &Path) -> Vec<String> {
    let mut found: Vec<(std::time::SystemTime, String)> = Layout::of(project)
        .built_envs()
        .into_iter()
        .filter(|env| env != "test")
        .filter_map(|env| Some((fresh::built_at(project, &env)?, env)))
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found.into_iter().map(|(_, env)| env).collect()
}

/// `text` as a YAML double-quoted scalar: a JSON string is one, so any host, entry or build
/// name stays data (`null`, `~`, `#x` or `a: b` too), on one line.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

/// The `mix_env` line for the builds found (see [`builds`]): the most recent one, or a comment
/// when there is none.
fn mix_env_line(builds: &[String]) -> String {
    match builds {
        [] => "  # mix_env: prod      # no build of an environment found: $MIX_ENV, else dev"
            .to_owned(),
        [only] => format!("  mix_env: {}      # the environment built", quoted(only)),
        [last, others @ ..] => {
            let others: Vec<String> = others.iter().map(|o| quoted(o)).collect();
            format!(
                "  mix_env: {}      # compiled last; also built: {}",
                quoted(last),
                others.join(", ")
            )
        }
    }
}

/// The configuration `init` writes for `hosts` (the `servers` group, each host once, where first
/// given), `entry`, and the builds of the project (see [`builds`]).
pub fn config_text(hosts: &[String], entry: Option<&str>, builds: &[String]) -> String {
    let hosts = if hosts.is_empty() {
        "[]    # e.g. [deploy@web-1, deploy@web-2]".to_owned()
    } else {
        let mut once: Vec<&String> = Vec::new();
        for host in hosts {
            if !once.contains(&host) {
                once.push(host);
            }
        }
        let list: Vec<String> = once.iter().map(|h| quoted(h)).collect();
        format!("[{}]", list.join(", "))
    };
    let entry = match entry {
        Some(entry) => format!("  entry: {}", quoted(entry)),
        None => "  # entry: MyApp.Smoke.check".to_owned(),
    };
    CONFIG_TEMPLATE
        .replace("@HOSTS@", &hosts)
        .replace("@ENTRY@", &entry)
        .replace("@MIX_ENV@", &mix_env_line(builds))
}

/// Prints the target (unless appended), writes the files, and says what it wrote on stderr
/// (unless `quiet`: `-q` before or after `init`). The target is printed before the files are
/// replaced: when it cannot be (`> /dev/full`), nothing is written and the exit is 3, said by
/// `main` (a reader that has gone, `| head -1`, has what it wants: the files are written).
pub fn exec(args: &InitArgs, quiet: bool) -> Result<u8, CliError> {
    let staged = init(args).map_err(CliError::usage)?;
    if let Some(target) = &staged.written.target {
        write_stdout(target);
        if stdout_failed().is_some() {
            return Ok(exit::CANNOT_RUN);
        }
    }
    let written = staged.commit().map_err(CliError::usage)?;
    if !quiet {
        write_stderr(&format!("mix-remote: wrote {}\n", written.config.display()));
        if let Some(makefile) = &written.makefile {
            write_stderr(&format!(
                "mix-remote: added the `smoke` target to {}\n",
                makefile.display()
            ));
        }
    }
    Ok(exit::OK)
}

/// What `init` would write, written beside the files: nothing is replaced until
/// [`Init::commit`], and dropped uncommitted, it leaves nothing behind.
pub struct Init {
    /// The new contents, beside their files.
    staged: Vec<Staged>,
    /// What committing writes.
    pub written: Written,
}

impl Init {
    /// Replaces the files with their new contents.
    pub fn commit(self) -> Result<Written, InitError> {
        for file in self.staged {
            file.commit()?;
        }
        Ok(self.written)
    }
}

/// Runs `init` in `args.project` up to writing the new contents beside their files: see [`Init`].
pub fn init(args: &InitArgs) -> Result<Init, InitError> {
    let no_project = |why| InitError::NoProject {
        path: args.project.clone(),
        why,
    };
    match std::fs::metadata(&args.project) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(no_project("is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(no_project("does not exist"));
        }
        Err(error) => {
            return Err(InitError::Io {
                what: "read",
                path: args.project.clone(),
                error,
            });
        }
    }
    if !args.project.join("mix.exs").is_file() {
        // `.` (the default) is named as the directory it is.
        let dir = if args.project.as_os_str() == "." {
            std::env::current_dir().unwrap_or_else(|_| args.project.clone())
        } else {
            args.project.clone()
        };
        return Err(InitError::NotMix(dir));
    }
    let config = args.project.join(FILE_NAME);
    // A link counts, even one to nothing: --force replaces it.
    let exists = match std::fs::symlink_metadata(&config) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => {
            return Err(InitError::Io {
                what: "read",
                path: config,
                error,
            });
        }
    };
    if exists && !args.force {
        return Err(InitError::Exists(config));
    }
    let text = config_text(&args.hosts, args.entry.as_deref(), &builds(&args.project));
    Config::parse(&text, &config)?;
    let makefile = makefile_of(&args.project);
    let new_makefile = if args.makefile {
        let old = match std::fs::read_to_string(&makefile) {
            Ok(old) => old,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(error) => {
                return Err(InitError::Io {
                    what: "read",
                    path: makefile,
                    error,
                });
            }
        };
        let block = block(&old, &makefile)?;
        if block.is_some() && !args.force {
            return Err(InitError::HasTarget(makefile));
        }
        if let Some(line) = own_target(&old, block.clone()) {
            return Err(InitError::OwnTarget {
                path: makefile,
                line,
            });
        }
        Some(with_target(&old, block))
    } else {
        None
    };
    let mut staged = vec![Staged::new(&config, &text)?];
    if let Some(content) = &new_makefile {
        staged.push(Staged::new(&makefile, content)?);
    }
    let written = Written {
        config,
        makefile: new_makefile.map(|_| makefile.clone()),
        target: (!args.makefile).then(|| MAKEFILE_TEMPLATE.to_owned()),
    };
    Ok(Init { staged, written })
}

/// The makefile `make` reads in `project`: the first of `GNUmakefile`, `makefile` and
/// `Makefile` there is, as GNU make looks for them; `Makefile` when there is none.
fn makefile_of(project: &Path) -> PathBuf {
    ["GNUmakefile", "makefile"]
        .iter()
        .map(|name| project.join(name))
        .find(|path| path.exists())
        .unwrap_or_else(|| project.join("Makefile"))
}

/// Where the mix-remote block of `makefile` (the file `path`) is: from its start marker's line
/// to the end of its end marker's line. A start marker whose next marker line is not an end
/// marker is an error: replacing up to a later end marker would take the lines between.
fn block(makefile: &str, path: &Path) -> Result<Option<Range<usize>>, InitError> {
    // The start marker's offset and line number.
    let mut start: Option<(usize, usize)> = None;
    let mut at = 0;
    for (index, line) in makefile.split_inclusive('\n').enumerate() {
        match start {
            None if line.starts_with(BEGIN) => start = Some((at, index + 1)),
            Some((from, _)) if line.starts_with(END) => return Ok(Some(from..at + line.len())),
            Some(_) if line.starts_with(BEGIN) => break,
            _ => {}
        }
        at += line.len();
    }
    match start {
        Some((_, line)) => Err(InitError::Unterminated {
            path: path.to_owned(),
            line,
        }),
        None => Ok(None),
    }
}

/// The line (from 1) of a rule of `makefile`, outside its mix-remote `block`, that makes the
/// block's target (`smoke: deps`, `lint smoke:`, `smoke::`): not a recipe line, a comment, nor a
/// variable set with `:=` or `::=`.
fn own_target(makefile: &str, block: Option<Range<usize>>) -> Option<usize> {
    let mut at = 0;
    for (index, line) in makefile.split_inclusive('\n').enumerate() {
        let inside = block.as_ref().is_some_and(|b| b.contains(&at));
        at += line.len();
        if inside || line.starts_with(['\t', '#']) {
            continue;
        }
        let Some((targets, rest)) = line.split_once(':') else {
            continue;
        };
        let assignment = rest.trim_start_matches(':').starts_with('=');
        if !assignment && targets.split_whitespace().any(|t| t == TARGET) {
            return Some(index + 1);
        }
    }
    None
}

/// `makefile` with `block` (see [`block`]) replaced, or the target appended after a blank line.
fn with_target(makefile: &str, block: Option<Range<usize>>) -> String {
    if let Some(block) = block {
        return format!(
            "{}{MAKEFILE_TEMPLATE}{}",
            &makefile[..block.start],
            &makefile[block.end..]
        );
    }
    let separator = match makefile {
        "" => "",
        m if m.ends_with("\n\n") => "",
        m if m.ends_with('\n') => "\n",
        _ => "\n\n",
    };
    format!("{makefile}{separator}{MAKEFILE_TEMPLATE}")
}

/// A file's new content, written to a temporary file beside it (beside the file a link points
/// to), which replaces the file only when committed.
struct Staged {
    /// The file as the user named it, for messages.
    path: PathBuf,
    /// The file the content replaces (the link's target when `path` is a link).
    target: PathBuf,
    /// The new content, beside `target`; removed if dropped uncommitted.
    temp: tempfile::NamedTempFile,
}

impl Staged {
    /// Writes `text` beside `path`. An existing file keeps its permissions, and one that cannot
    /// be opened for writing is not replaced (an error now, as writing it in place would be).
    fn new(path: &Path, text: &str) -> Result<Staged, InitError> {
        let io = |error| InitError::Io {
            what: "write",
            path: path.to_owned(),
            error,
        };
        let (target, permissions) = match std::fs::canonicalize(path) {
            Ok(target) => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(io)?;
                let permissions = std::fs::metadata(&target).map_err(io)?.permissions();
                (target, Some(permissions))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (path.to_owned(), None),
            Err(error) => return Err(io(error)),
        };
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let mut temp = tempfile::Builder::new()
            .prefix(".mix-remote-init-")
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(io)?;
        temp.write_all(text.as_bytes()).map_err(io)?;
        temp.flush().map_err(io)?;
        if let Some(permissions) = permissions {
            temp.as_file().set_permissions(permissions).map_err(io)?;
        }
        Ok(Staged {
            path: path.to_owned(),
            target,
            temp,
        })
    }

    /// Replaces the file with the content written beside it.
    fn commit(self) -> Result<(), InitError> {
        self.temp
            .persist(&self.target)
            .map(drop)
            .map_err(|e| InitError::Io {
                what: "write",
                path: self.path,
                error: e.error,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Section, Selected, build, resolve, select};

    #[test]
    fn the_written_configs_examples_parse_once_uncommented() {
        let path = Path::new("/p/mix-remote.yaml");
        for builds in [&[][..], &["prod".to_owned()]] {
            let text = config_text(&["deploy@web-1".to_owned()], None, builds);
            // `  #   address: ...` is `    address: ...`: the comment's mark and one blank out.
            let uncommented: String = text
                .lines()
                .map(|line| {
                    let (indent, rest) = line.split_at(line.len() - line.trim_start().len());
                    let setting = rest.strip_prefix("# ").filter(|rest| {
                        let key = rest.trim_start().split(':').next().unwrap_or_default();
                        rest.contains(':')
                            && !key.is_empty()
                            && key
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
                    });
                    format!("{indent}{}\n", setting.unwrap_or(rest))
                })
                .collect();
            assert!(uncommented.contains("\n  web-1:\n    address: deploy@10.0.0.5"));
            let config =
                Config::parse(&uncommented, path).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
            assert_eq!(config.groups().collect::<Vec<_>>(), ["db", "servers"]);
            assert_eq!(config.hosts()[0], "web-1");
            // Every setting of `defaults` is there to find, those of `defaults` only too.
            assert_eq!(config.warnings(), Some(false));
            let built = build(Some(&config), None, &Section::default(), &[]).unwrap();
            assert!(!built.compile && !built.start, "{uncommented}");
        }
    }

    #[test]
    fn the_written_config_parses_and_says_what_was_asked() {
        let path = Path::new("/p/mix-remote.yaml");
        let hosts = ["deploy@web-1".to_owned(), "ops@[::1]".to_owned()];
        let builds = ["prod".to_owned(), "dev".to_owned()];
        let text = config_text(&hosts, Some("MyApp.Smoke.check"), &builds);
        assert!(text.contains("  mix_env: \"prod\"      # compiled last; also built: \"dev\"\n"));
        let config = Config::parse(&text, path).unwrap();
        let chosen = select(Some(&config), &[], &["servers".into()]).unwrap();
        assert_eq!(chosen.len(), 2);
        let first = resolve(Some(&config), &chosen[0], &Section::default());
        assert_eq!(first.address, "deploy@web-1");
        let shared = build(Some(&config), None, &Section::default(), &chosen).unwrap();
        assert_eq!(shared.entry.as_deref(), Some("MyApp.Smoke.check"));
        assert_eq!(shared.mix_env, "prod");

        let bare = Config::parse(&config_text(&[], None, &[]), path).unwrap();
        let host = Selected {
            name: "h".into(),
            groups: Vec::new(),
        };
        let bare_build = build(
            Some(&bare),
            None,
            &Section::default(),
            std::slice::from_ref(&host),
        )
        .unwrap();
        assert_eq!(bare_build.entry, None);
        assert_eq!(
            bare_build.mix_env, "dev",
            "no build: mix_env is left to $MIX_ENV or dev"
        );
        let dev = Config::parse(&config_text(&[], None, &["dev".into()]), path).unwrap();
        let dev_build = build(Some(&dev), None, &Section::default(), &[host]).unwrap();
        assert_eq!(dev_build.mix_env, "dev");
        assert!(
            select(Some(&bare), &[], &["servers".into()]).is_err(),
            "an empty group"
        );
        for env in ["null", "~", "#x", "a: b", "1", "true", "x\ny"] {
            let builds = [env.to_owned(), "#other\n".to_owned()];
            let text = config_text(&[], None, &builds);
            let config = Config::parse(&text, path).unwrap_or_else(|e| panic!("{env:?}: {e}"));
            let built = build(Some(&config), None, &Section::default(), &[]).unwrap();
            assert_eq!(built.mix_env, env);
        }
    }

    #[test]
    fn a_host_given_twice_is_written_once_where_first_given() {
        let hosts = ["web", "db", "web", "db", "cache"].map(String::from);
        let text = config_text(&hosts, None, &[]);
        assert!(
            text.contains("\n  servers: [\"web\", \"db\", \"cache\"]\n"),
            "{text}"
        );
    }

    #[test]
    fn the_builds_found_are_the_compiled_ones_but_test_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        assert!(builds(dir.path()).is_empty());
        let beam = |env: &str, secs: u64| {
            let ebin = dir.path().join(format!("_build/{env}/lib/app/ebin"));
            std::fs::create_dir_all(&ebin).unwrap();
            let file = std::fs::File::create(ebin.join("Elixir.A.beam")).unwrap();
            let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            file.set_modified(time).unwrap();
        };
        beam("dev", 100);
        beam("prod", 200);
        beam("test", 300);
        std::fs::create_dir_all(dir.path().join("_build/empty/lib")).unwrap();
        assert_eq!(builds(dir.path()), ["prod", "dev"]);
    }

    #[test]
    fn the_target_is_appended_once_and_replaced_in_place() {
        let path = Path::new("Makefile");
        let replaced = |makefile: &str| with_target(makefile, block(makefile, path).unwrap());
        let once = replaced("all:\n\techo hi\n");
        assert!(once.starts_with("all:\n\techo hi\n\n# >>> mix-remote"));
        assert!(once.contains("\n\t$(MIX_REMOTE) run --group servers"));
        let edited = once.replace("SMOKE_ENV ?= prod", "SMOKE_ENV ?= old") + "after:\n";
        let again = replaced(&edited);
        assert_eq!(again.matches(BEGIN).count(), 1);
        assert!(again.contains("SMOKE_ENV ?= prod") && again.ends_with("after:\n"));
        assert_eq!(replaced(""), MAKEFILE_TEMPLATE);
    }

    #[test]
    fn a_smoke_target_of_the_makefiles_own_is_found_outside_the_block() {
        let own = |makefile: &str| own_target(makefile, block(makefile, Path::new("M")).unwrap());
        assert_eq!(own("all:\n\techo\nsmoke:\n\t./check.sh\n"), Some(3));
        assert_eq!(own("lint smoke: deps\n"), Some(1));
        assert_eq!(own("smoke::\n"), Some(1));
        assert_eq!(
            own(".PHONY: smoke\nall:\n\tmake smoke\n# smoke: old\n"),
            None
        );
        assert_eq!(own("SMOKE := smoke: x\nX ::= smoke\nsmoker:\n"), None);
        // The block's own target, appended by init before, is not the Makefile's.
        let appended = with_target("all:\n", None);
        assert_eq!(own(&appended), None);
        assert_eq!(
            own(&format!("{appended}smoke:\n")),
            Some(appended.lines().count() + 1)
        );
    }

    #[test]
    fn a_start_marker_without_its_end_marker_is_an_error_naming_its_line() {
        let path = Path::new("p/Makefile");
        let unterminated = |makefile: &str| match block(makefile, path) {
            Err(InitError::Unterminated { line, .. }) => line,
            other => panic!("{other:?}: {makefile}"),
        };
        let start = format!("{BEGIN} (written by `mix-remote init`)\n");
        assert_eq!(unterminated(&format!("all:\n\techo\n{start}mine:\n")), 3);
        assert_eq!(unterminated(&format!("{start}mine:\n{start}x\n{END}\n")), 1);
        let message = block(&start, path).unwrap_err().to_string();
        assert_eq!(
            message,
            "p/Makefile:1: `# >>> mix-remote` has no `# <<< mix-remote` line after it: end the \
             mix-remote block with that line (or remove the block), then run init again"
        );
        // An end marker before any start marker is a line like any other.
        let stray = format!("{END}\nall:\n{start}x\n{END}");
        let from = stray.find(BEGIN).unwrap();
        assert_eq!(block(&stray, path).unwrap(), Some(from..stray.len()));
    }
}
