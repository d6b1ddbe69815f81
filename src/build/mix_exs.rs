//! What a project's `mix.exs` says plainly, read as text (it is never evaluated): the `app:`
//! name, and where Mix puts the build (`build_path:`), reads the configuration (`config_path:`)
//! and finds an umbrella's children (`apps_path:`). An option set to anything but a plain string
//! (`Path.expand(...)`, a module attribute, an interpolation) is taken as Mix's default, and the
//! [`Layout`] says so.

use std::path::{Path, PathBuf};

/// Where a Mix project keeps its build and its configuration, from its `mix.exs`; paths as the
/// project's joined with the option (`apps/api/../../_build`), not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Where the builds are, one `<env>` directory each: `build_path:`, else `<project>/_build`.
    pub build_root: PathBuf,
    /// The main config file: `config_path:`, else `<project>/config/config.exs`; `runtime.exs`
    /// is beside it, as Mix has it.
    pub config_file: PathBuf,
    /// An umbrella's children: `apps_path:`; none for a project that is no umbrella.
    pub apps: Option<PathBuf>,
    /// The options `mix.exs` sets to something other than a plain string, taken as their
    /// defaults (`build_path`, `config_path`, `apps_path`).
    pub unread: Vec<&'static str>,
}

impl Layout {
    /// The layout of `project`, from its `mix.exs`; Mix's defaults when it cannot be read.
    pub fn of(project: &Path) -> Layout {
        let text = std::fs::read_to_string(project.join("mix.exs")).unwrap_or_default();
        let mut unread = Vec::new();
        let mut option = |key: &'static str| match keyword_string(&text, key) {
            Some(value) => Some(project.join(value)),
            None => {
                if keyword_values(&text, key).next().is_some() {
                    unread.push(key);
                }
                None
            }
        };
        let build_root = option("build_path").unwrap_or_else(|| project.join("_build"));
        let config_file =
            option("config_path").unwrap_or_else(|| project.join("config").join("config.exs"));
        let apps = option("apps_path");
        Layout {
            build_root,
            config_file,
            apps,
            unread,
        }
    }

    /// The build for Mix environment `env`: `<build root>/<env>`.
    pub fn build(&self, env: &str) -> PathBuf {
        self.build_root.join(env)
    }

    /// The directory of the config files: that of [`Layout::config_file`].
    pub fn config_dir(&self) -> PathBuf {
        self.config_file
            .parent()
            .map_or_else(PathBuf::new, Path::to_owned)
    }

    /// Whether the config directory is `project`'s own (a `config_path:` of a file beside
    /// `mix.exs`): its other files, the sources and the build, are no config then, and only the
    /// main file and the `runtime.exs` beside it count.
    pub fn config_in_project_dir(&self, project: &Path) -> bool {
        self.config_dir().components().eq(project.components())
    }

    /// What to add to an error about a build or config not found where the layout says: which
    /// option of `mix.exs` was not read and taken as its default; empty when none was.
    pub fn note(&self, key: &str) -> String {
        match self.unread.contains(&key) {
            true => format!(
                " (mix.exs sets {key}: to something other than a plain string, which mix-remote \
                 does not evaluate: it read Mix's default)"
            ),
            false => String::new(),
        }
    }
}

/// The atom after the first `key: :atom` of `text` (`app: :my_app`).
pub fn keyword_atom(text: &str, key: &str) -> Option<String> {
    keyword_values(text, key).find_map(|rest| {
        let name: String = rest
            .strip_prefix(':')?
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let first = name.chars().next()?;
        (first.is_ascii_lowercase() || first == '_').then_some(name)
    })
}

/// The string after the first `key: "text"` of `text` (`apps_path: "apps"`), when it is plain:
/// not empty, without escapes or interpolations.
pub fn keyword_string<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    keyword_values(text, key).find_map(|rest| {
        let rest = rest.strip_prefix('"')?;
        let value = &rest[..rest.find('"')?];
        (!value.is_empty() && !value.contains('\\') && !value.contains("#{")).then_some(value)
    })
}

/// What follows each `key:` of `text` that is a keyword of its own (not the end of a longer
/// name, not in a comment), its leading blanks skipped.
fn keyword_values<'t>(text: &'t str, key: &str) -> impl Iterator<Item = &'t str> {
    let pattern = format!("{key}:");
    let mut found = Vec::new();
    for line in text.lines() {
        let line = uncommented(line);
        for (at, _) in line.match_indices(&pattern) {
            let glued = line[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            if !glued {
                found.push(line[at + pattern.len()..].trim_start());
            }
        }
    }
    found.into_iter()
}

/// `line` up to its comment: a `#` outside double quotes (`"...#readme"` is no comment).
fn uncommented(line: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (at, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..at],
            _ => {}
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_in_a_string_is_no_comment() {
        let text =
            "[source_url: \"https://x.org/a#readme\", build_path: \"out\"] # build_path: \"no\"";
        assert_eq!(keyword_string(text, "build_path"), Some("out"));
        assert_eq!(uncommented("a: \"q\\\"#\" # c"), "a: \"q\\\"#\" ");
    }

    #[test]
    fn keywords_are_read_where_plain() {
        assert_eq!(
            keyword_atom("x: [otp_app: :a, app: :b_2]", "app"),
            Some("b_2".into())
        );
        assert_eq!(keyword_atom("app: false", "app"), None);
        assert_eq!(
            keyword_string("apps_path:  \"apps\"", "apps_path"),
            Some("apps")
        );
        assert_eq!(
            keyword_string("build_path: \"#{root}/_build\"", "build_path"),
            None
        );
        assert_eq!(keyword_string("build_path: \"\"", "build_path"), None);
    }

    #[test]
    fn the_layout_follows_plain_options_and_says_which_it_could_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path();
        let layout = Layout::of(project);
        assert_eq!(layout.build("dev"), project.join("_build/dev"));
        assert_eq!(layout.config_dir(), project.join("config"));
        assert_eq!(layout.apps, None);
        assert_eq!(layout.note("build_path"), "");

        std::fs::write(
            project.join("mix.exs"),
            "def project do\n  [\n    app: :api,\n    # build_path: \"nope\"\n    \
             build_path: \"../../_build\",\n    config_path: \"../../config/config.exs\",\n  ]\nend\n",
        )
        .unwrap();
        let layout = Layout::of(project);
        assert_eq!(layout.build("prod"), project.join("../../_build/prod"));
        assert_eq!(layout.config_file, project.join("../../config/config.exs"));
        assert_eq!(layout.config_dir(), project.join("../../config"));
        assert!(layout.unread.is_empty());

        std::fs::write(
            project.join("mix.exs"),
            "[apps_path: \"services\", build_path: Path.expand(\"../_build\", __DIR__)]",
        )
        .unwrap();
        let layout = Layout::of(project);
        assert_eq!(layout.build_root, project.join("_build"));
        assert_eq!(layout.apps, Some(project.join("services")));
        assert_eq!(layout.unread, ["build_path"]);
        assert!(
            layout
                .note("build_path")
                .contains("mix.exs sets build_path: to something other than a plain string")
        );
        assert_eq!(layout.note("config_path"), "");
    }
}
