//! What a project's `mix.exs` says plainly, read as text (it is never evaluated): the `app:`
//! name, where Mix puts the build (`build_path:`, `build_per_environment:`), reads the
//! configuration (`config_path:`) and finds an umbrella's children (`apps_path:`), and the
//! dependencies it names (`{:name, ...}` or `name: ...` in its deps list, and those their own
//! `mix.exs` files name). A module attribute set to a plain value (`@app :my_app`, then `app:
//! @app`) counts as that value; an option set to anything else (`Path.expand(...)`, an
//! interpolation) is taken as Mix's default, and the [`Layout`] says so. The variables Mix
//! reads for the build's place (`MIX_BUILD_PATH`, `MIX_BUILD_ROOT`, `MIX_TARGET`) count as they
//! do for the `mix compile` the tool runs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where a Mix project keeps its build and its configuration, from its `mix.exs`; paths as the
/// project's joined with the option (`apps/api/../../_build`), not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Where the builds are, one directory each (see [`Layout::build`]): `MIX_BUILD_ROOT`, else
    /// `build_path:`, else `<project>/_build`.
    pub build_root: PathBuf,
    /// `MIX_BUILD_PATH`: the build itself, for every environment.
    build_path: Option<PathBuf>,
    /// The start of each build directory's name: `<target>_` for a `MIX_TARGET` other than
    /// `host`, else empty.
    target: String,
    /// `build_per_environment:` is not `false`: a build directory per environment, else one
    /// (`shared`) for all.
    per_environment: bool,
    /// The main config file: `config_path:`, else `<project>/config/config.exs`; `runtime.exs`
    /// is beside it, as Mix has it.
    pub config_file: PathBuf,
    /// An umbrella's children: `apps_path:`; none for a project that is no umbrella.
    pub apps: Option<PathBuf>,
    /// The children an umbrella's `apps:` list keeps (by directory name), when it is a plain list
    /// of atoms; none: all of them, Mix's default.
    listed: Option<Vec<String>>,
    /// The dependencies' lock: `lockfile:` (an umbrella child's is its umbrella's), else
    /// `<project>/mix.lock`.
    pub lockfile: PathBuf,
    /// `mix.exs` sets `build_path:` (to anything but `nil` or `false`), plain or not: Mix then
    /// takes the build for one shared with an umbrella and leaves its owner to check the
    /// configured applications.
    pub build_path_set: bool,
    /// The options `mix.exs` sets to something other than a plain value, taken as their
    /// defaults (`build_path`, `build_per_environment`, `config_path`, `apps_path`, `lockfile`,
    /// an umbrella's `apps`).
    pub unread: Vec<&'static str>,
}

impl Layout {
    /// The layout of `project`, from its `mix.exs` and this process's environment; Mix's
    /// defaults when `mix.exs` cannot be read.
    pub fn of(project: &Path) -> Layout {
        let text = std::fs::read_to_string(project.join("mix.exs")).unwrap_or_default();
        Layout::read(project, &text, |name| std::env::var_os(name))
    }

    /// The layout of `project` whose `mix.exs` is `text`, with the environment variable `var`.
    fn read(project: &Path, text: &str, var: impl Fn(&str) -> Option<OsString>) -> Layout {
        let var = |name| var(name).filter(|value| !value.is_empty());
        let mut unread = Vec::new();
        let mut option = |key: &'static str| match keyword_string(text, key) {
            Some(value) => Some(project.join(value)),
            None => {
                if keyword_values(text, key).next().is_some() {
                    unread.push(key);
                }
                None
            }
        };
        let build_path_set = keyword_values(text, "build_path")
            .next()
            .is_some_and(|value| !is_word(value, "nil") && !is_word(value, "false"));
        // Mix reads `build_path:` only without MIX_BUILD_ROOT.
        let build_root = match var("MIX_BUILD_ROOT") {
            Some(root) => project.join(root),
            None => option("build_path").unwrap_or_else(|| project.join("_build")),
        };
        let config_file =
            option("config_path").unwrap_or_else(|| project.join("config").join("config.exs"));
        let apps = option("apps_path");
        let lockfile = option("lockfile").unwrap_or_else(|| project.join("mix.lock"));
        let listed = keyword_atom_list(text, "apps");
        if apps.is_some() && listed.is_none() && keyword_values(text, "apps").next().is_some() {
            unread.push("apps");
        }
        let per_environment = match keyword_values(text, "build_per_environment").next() {
            Some(value) if is_word(value, "false") => false,
            Some(value) if !is_word(value, "true") => {
                unread.push("build_per_environment");
                true
            }
            _ => true,
        };
        let target = var("MIX_TARGET")
            .map(|target| target.to_string_lossy().into_owned())
            .filter(|target| target != "host")
            .map_or_else(String::new, |target| format!("{target}_"));
        Layout {
            build_root,
            build_path: var("MIX_BUILD_PATH").map(|path| project.join(path)),
            target,
            per_environment,
            config_file,
            apps,
            listed,
            lockfile,
            build_path_set,
            unread,
        }
    }

    /// An umbrella's children, as Mix's `apps_paths` finds them: each directory of `apps_path:`
    /// with a `mix.exs`, only those the `apps:` list names when it has one (a child left out of
    /// it is no part of the umbrella, though an earlier build may hold it). Sorted; none for a
    /// project that is no umbrella.
    pub fn children(&self) -> Vec<PathBuf> {
        let Some(Ok(dirs)) = self.apps.as_ref().map(std::fs::read_dir) else {
            return Vec::new();
        };
        let mut children: Vec<PathBuf> = dirs
            .filter_map(Result::ok)
            .map(|dir| dir.path())
            .filter(|dir| dir.join("mix.exs").is_file())
            .filter(
                |dir| match (&self.listed, dir.file_name().and_then(|n| n.to_str())) {
                    (None, _) => true,
                    (Some(listed), Some(name)) => listed.iter().any(|app| app == name),
                    (Some(_), None) => false,
                },
            )
            .collect();
        children.sort();
        children
    }

    /// The build for Mix environment `env`, where `mix compile` puts it:
    /// `<build root>/[<target>_]<env>` (`shared` for every environment when mix.exs says
    /// `build_per_environment: false`), or `MIX_BUILD_PATH`.
    pub fn build(&self, env: &str) -> PathBuf {
        if let Some(path) = &self.build_path {
            return path.clone();
        }
        let env = if self.per_environment { env } else { "shared" };
        self.build_root.join(format!("{}{env}", self.target))
    }

    /// The environments built under the build root, read from its directories' names; none
    /// when one build serves them all (`MIX_BUILD_PATH`, `build_per_environment: false`).
    pub fn built_envs(&self) -> Vec<String> {
        if self.build_path.is_some() || !self.per_environment {
            return Vec::new();
        }
        let Ok(dirs) = std::fs::read_dir(&self.build_root) else {
            return Vec::new();
        };
        dirs.flatten()
            .filter_map(|dir| dir.file_name().into_string().ok())
            .filter_map(|name| Some(name.strip_prefix(&self.target)?.to_owned()))
            .filter(|env| !env.is_empty())
            .collect()
    }

    /// The Mix target (`MIX_TARGET`, `config_target()` in the config files): `host` unless the
    /// variable names another.
    pub fn target(&self) -> &str {
        self.target.strip_suffix('_').unwrap_or("host")
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
    /// option of `mix.exs` was not read and taken as its default, or which variable of Mix's
    /// chose the build; empty when none did.
    pub fn note(&self, key: &str) -> String {
        if key == "build_path" && self.build_path.is_some() {
            return " (where MIX_BUILD_PATH puts it)".to_owned();
        }
        let unread: Vec<&str> = self
            .unread
            .iter()
            .copied()
            .filter(|k| *k == key || (key == "build_path" && *k == "build_per_environment"))
            .collect();
        match unread.as_slice() {
            [] => String::new(),
            keys => format!(
                " (mix.exs sets {}: to something other than a plain value, which mix-remote \
                 does not evaluate: it read Mix's default)",
                keys.join(":, ")
            ),
        }
    }
}

/// The atom after the first `key: :atom` of `text` (`app: :my_app`).
pub fn keyword_atom(text: &str, key: &str) -> Option<String> {
    keyword_values(text, key).find_map(|rest| leading_atom(rest).map(str::to_owned))
}

/// The name of the plain atom `rest` starts with (`:my_app,` gives `my_app`): a lowercase letter
/// or `_`, then letters, digits and `_`.
fn leading_atom(rest: &str) -> Option<&str> {
    let name = rest.strip_prefix(':')?;
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    let name = &name[..end];
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        .then_some(name)
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

/// The atoms of the first `key: [:a, :b]` of `text` (`apps: [:api, :store]`), over as many
/// lines as the list takes, when the list holds plain atoms alone.
fn keyword_atom_list(text: &str, key: &str) -> Option<Vec<String>> {
    let text: String = text.lines().map(uncommented).collect::<Vec<_>>().join("\n");
    let rest = keyword_values(&text, key).next()?;
    // `rest` lies within `text`: the list goes on past its line.
    let at = rest.as_ptr() as usize - text.as_ptr() as usize;
    let list = text[at..].strip_prefix('[')?;
    let list = &list[..list.find(']')?];
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let name = leading_atom(item).filter(|name| name.len() + 1 == item.len())?;
            Some(name.to_owned())
        })
        .collect()
}

/// A dependency as a `mix.exs` names it: `{:name, ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// Its application.
    pub name: String,
    /// `optional: true`.
    pub optional: bool,
    /// Where its sources are, relative to the project, when plainly said: `path: "..."`, or
    /// `../name` for `in_umbrella: true`.
    pub path: Option<String>,
}

/// Every tuple of `text` that begins with an atom, read as a dependency (`{:jason, "~> 1.4",
/// optional: true}`): mix.exs's deps, and perhaps another tuple or two of that shape, which only
/// name more applications of the build; then the dependencies its deps lists give in keyword
/// form (`deps: [liba: [path: "../liba"], jason: "~> 1.4"]`, the same tuples written as a
/// keyword list).
pub fn deps(text: &str) -> Vec<Dep> {
    let text: String = text.lines().map(uncommented).collect::<Vec<_>>().join("\n");
    let tuples = text.split('{').skip(1).filter_map(|rest| {
        let rest = rest.trim_start().strip_prefix(':')?;
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, after) = rest.split_at(end);
        let body = after.trim_start().strip_prefix(',')?;
        let body = &body[..body.find('}').unwrap_or(body.len())];
        (!name.is_empty()).then(|| dep(name, body))
    });
    let keywords = dep_lists(&text)
        .into_iter()
        .filter_map(list_items)
        .flatten()
        .filter_map(|item| {
            let end = item.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            let (name, value) = item.split_at(end);
            let value = value.strip_prefix(':')?;
            // `name: value`, whose name is an atom's: not `Mod: ...`, not `:a`, not `a::b`.
            let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && value.starts_with(char::is_whitespace);
            let value = value.trim_start();
            // Options in a list (`[path: "../liba"]`), or a requirement alone (`"~> 1.4"`).
            let body = value.strip_prefix('[').unwrap_or("");
            plain.then(|| dep(name, body))
        });
    tuples.chain(keywords).collect()
}

/// The dependency `name` with the options `body` gives it (`path: "../util", optional: true`).
fn dep(name: &str, body: &str) -> Dep {
    let path = keyword_string(body, "path").map(str::to_owned).or_else(|| {
        keyword_values(body, "in_umbrella")
            .next()
            .filter(|v| is_word(v, "true"))
            .map(|_| format!("../{name}"))
    });
    Dep {
        name: name.to_owned(),
        optional: keyword_values(body, "optional")
            .next()
            .is_some_and(|v| is_word(v, "true")),
        path,
    }
}

/// The lists `text` (a `mix.exs`, uncommented) gives its dependencies in, each from its `[`:
/// that of `deps:` (in `project/0`), and the one a `deps` function returns (`defp deps do [...]
/// end`, `defp deps, do: [...]`, `defp deps()` too).
fn dep_lists(text: &str) -> Vec<&str> {
    // `rest` lies within `text`: a list goes on past its line.
    let from = |rest: &str| &text[rest.as_ptr() as usize - text.as_ptr() as usize..];
    let mut lists: Vec<&str> = keyword_values(text, "deps").map(from).collect();
    for (at, _) in text.match_indices("deps") {
        let defined = ["def", "defp"].iter().any(|def| {
            let before = text[..at].trim_end();
            before.len() < at
                && before
                    .strip_suffix(def)
                    .is_some_and(|b| !b.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        });
        let rest = &text[at + "deps".len()..];
        if !defined || rest.starts_with(|c: char| c.is_ascii_alphanumeric() || "_?!".contains(c)) {
            continue;
        }
        let rest = rest.trim_start();
        let rest = rest.strip_prefix("()").unwrap_or(rest).trim_start();
        let body = match rest.strip_prefix(',') {
            Some(rest) => rest.trim_start().strip_prefix("do:"),
            None => rest
                .strip_prefix("do")
                .filter(|r| r.starts_with(char::is_whitespace)),
        };
        lists.extend(body.map(str::trim_start));
    }
    lists.retain(|list| list.starts_with('['));
    lists
}

/// The items of the list `text` starts with (`[a: 1, b: [c: 2]]` gives `a: 1` and `b: [c: 2]`),
/// each trimmed: split at the list's own commas, not at those of the lists, tuples, calls or
/// strings it holds. None when the list does not end.
fn list_items(text: &str) -> Option<Vec<&str>> {
    let inner = text.strip_prefix('[')?;
    let (mut depth, mut quoted, mut escaped, mut start) = (0usize, false, false, 0);
    let mut items = Vec::new();
    for (at, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ if quoted => {}
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' if depth > 0 => depth -= 1,
            ']' => {
                items.push(&inner[start..at]);
                let items = items.into_iter().map(str::trim);
                return Some(items.filter(|item| !item.is_empty()).collect());
            }
            ',' if depth == 0 => {
                items.push(&inner[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    None
}

/// A dependency found by [`all_deps`], with where its sources are when they are found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDep {
    /// The dependency as the `mix.exs` that names it has it.
    pub dep: Dep,
    /// The directory of its `mix.exs`: its `path:` (an umbrella sibling), or its place under
    /// the project's `deps_path:` (`deps/` by default), when that holds a `mix.exs`.
    pub dir: Option<PathBuf>,
}

/// Every dependency of `project` (and of each umbrella child), and of theirs, transitively, as
/// far as their `mix.exs` files are found: what Mix compiles into the build and puts on `mix
/// run`'s code path, `runtime: false` ones included. Each once, by name, in the order found.
pub fn all_deps(project: &Path, layout: &Layout) -> Vec<FoundDep> {
    let text = std::fs::read_to_string(project.join("mix.exs")).unwrap_or_default();
    let deps_dir = project.join(keyword_string(&text, "deps_path").unwrap_or("deps"));
    let mut todo: Vec<PathBuf> = vec![project.to_owned()];
    todo.extend(layout.children());
    let mut found: Vec<FoundDep> = Vec::new();
    while let Some(base) = todo.pop() {
        let Ok(text) = std::fs::read_to_string(base.join("mix.exs")) else {
            continue;
        };
        for dep in deps(&text) {
            if found.iter().any(|f| f.dep.name == dep.name) {
                continue;
            }
            let dir = match &dep.path {
                Some(path) => base.join(path),
                None => deps_dir.join(&dep.name),
            };
            let dir = dir.join("mix.exs").is_file().then_some(dir);
            todo.extend(dir.clone());
            found.push(FoundDep { dep, dir });
        }
    }
    found
}

/// Whether `mix run` starts the applications permanent in Mix environment `env`, from the first
/// `start_permanent:` of `text` (see [`keyword_bool`]); anything else, or none, is Mix's default,
/// temporary.
pub fn start_permanent(text: &str, env: &str) -> bool {
    keyword_bool(text, "start_permanent", env).unwrap_or(false)
}

/// The value the first `key:` of `text` has in Mix environment `env`, when it is a plain `true`
/// or `false` or a test of the environment alone, as `mix new` and projects write them:
/// `Mix.env() == :prod`, `!=`, `in [:prod, ...]`, `not in [...]`, `Mix.env` without parentheses
/// (`consolidate_protocols: Mix.env() != :test`); none for anything else (`Mix.env() == :prod or
/// ...`, a function call) or no such key.
pub fn keyword_bool(text: &str, key: &str, env: &str) -> Option<bool> {
    let value = keyword_values(text, key).next()?;
    for (word, plain) in [("true", true), ("false", false)] {
        if is_word(value, word) {
            return ended(&value[word.len()..]).then_some(plain);
        }
    }
    let test = value
        .strip_prefix("Mix.env()")
        .or_else(|| value.strip_prefix("Mix.env"))?
        .trim_start();
    // The atom after an operator, when the value ends there: (atom, what follows).
    let atom = |rest: &str| -> Option<String> {
        let rest = rest.trim_start();
        let name = leading_atom(rest)?;
        ended(&rest[name.len() + 1..]).then(|| name.to_owned())
    };
    // The atoms of the list after `in`, when the value ends there.
    let list = |rest: &str| -> Option<Vec<String>> {
        let rest = rest.trim_start().strip_prefix('[')?;
        let (items, after) = rest.split_once(']')?;
        let items = items
            .split(',')
            .map(str::trim)
            .map(|item| {
                let name = leading_atom(item).filter(|name| name.len() + 1 == item.len())?;
                Some(name.to_owned())
            })
            .collect::<Option<Vec<String>>>()?;
        ended(after).then_some(items)
    };
    let listed = |rest: &str| Some(list(rest)?.iter().any(|item| item == env));
    if let Some(rest) = test.strip_prefix("==") {
        Some(atom(rest)? == env)
    } else if let Some(rest) = test.strip_prefix("!=") {
        Some(atom(rest)? != env)
    } else if let Some(rest) = test
        .strip_prefix("not in")
        .filter(|r| r.starts_with([' ', '[']))
    {
        listed(rest).map(|found| !found)
    } else if let Some(rest) = test
        .strip_prefix("in")
        .filter(|r| r.starts_with([' ', '[']))
    {
        listed(rest)
    } else {
        None
    }
}

/// Whether a value ends where `rest` begins: nothing but blanks before the end of its line, a
/// `,` or a closing bracket.
fn ended(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with([',', ']', '}'])
}

/// Whether `rest` starts with the word `word` (`false,` but not `false_or_not`).
fn is_word(rest: &str, word: &str) -> bool {
    rest.strip_prefix(word)
        .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || "_?!".contains(c)))
}

/// What follows each `key:` of `text` that is a keyword of its own (not the end of a longer
/// name, not in a comment), its leading blanks skipped; for a value that is a module attribute
/// alone (`app: @app,`), what follows the attribute where `text` sets it (`@app :my_app`).
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
                let value = line[at + pattern.len()..].trim_start();
                found.push(attribute_value(text, value).unwrap_or(value));
            }
        }
    }
    found.into_iter()
}

/// When `value` is a module attribute alone (`@app,`, `@app]`, `@app` ending its line), what
/// follows it on the first line of `text` that sets it (`@app :my_app` gives `:my_app`); none
/// otherwise (`@root <> "/_build"` is no attribute alone), or when `text` does not set it.
fn attribute_value<'t>(text: &'t str, value: &str) -> Option<&'t str> {
    let name = value.strip_prefix('@')?;
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(name.len());
    let (name, after) = name.split_at(end);
    let alone = after.trim_start().is_empty() || after.trim_start().starts_with([',', ']', '}']);
    if name.is_empty() || !alone {
        return None;
    }
    text.lines().find_map(|line| {
        let set = uncommented(line).trim_start().strip_prefix('@')?;
        let rest = set.strip_prefix(name)?;
        rest.starts_with([' ', '\t']).then(|| rest.trim_start())
    })
}

/// `line` up to its comment: a `#` outside double quotes (`"...#readme"` is no comment).
pub(crate) fn uncommented(line: &str) -> &str {
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
    fn deps_are_read_from_the_tuples_that_begin_with_an_atom() {
        let text = "defp deps do\n  [\n    {:jason, \"~> 1.4\", optional: true},\n    \
                    { :core , in_umbrella: true},\n    # {:old, \"~> 1.0\"},\n    \
                    {:util, path: \"../util\",\n     runtime: false},\n    \
                    {MyApp.Mod, []}, {:\"quoted\", \"1\"}\n  ]\nend";
        let deps = deps(text);
        let read: Vec<(&str, bool, Option<&str>)> = deps
            .iter()
            .map(|d| (d.name.as_str(), d.optional, d.path.as_deref()))
            .collect();
        assert_eq!(
            read,
            [
                ("jason", true, None),
                ("core", false, Some("../core")),
                ("util", false, Some("../util")),
            ]
        );
    }

    #[test]
    fn deps_in_keyword_form_are_read_from_the_deps_lists() {
        let read = |text: &str| -> Vec<(String, bool, Option<String>)> {
            deps(text)
                .into_iter()
                .map(|d| (d.name, d.optional, d.path))
                .collect()
        };
        let expected = vec![
            ("liba".to_owned(), true, Some("../liba".to_owned())),
            ("core".to_owned(), false, Some("../core".to_owned())),
            ("jason".to_owned(), false, None),
        ];
        let list = "[liba: [path: \"../liba\", optional: true], core: [in_umbrella: true],\n     \
                    jason: \"~> 1.4\"]";
        for text in [
            format!("def project, do: [app: :a, deps: {list}, docs: [main: \"A\"]]"),
            format!("def project do\n  [\n    app: :a,\n    deps: {list}\n  ]\nend"),
            format!("def project, do: [app: :a, deps: deps()]\ndefp deps do\n  {list}\nend"),
            format!("defp deps, do: {list}"),
            format!("defp deps(), do: {list} # more: [x: 1]"),
        ] {
            assert_eq!(read(&text), expected, "{text}");
        }
        // Keywords elsewhere name no dependency.
        let other = "def project, do: [app: :a, docs: [main: \"A\"], deps: deps()]\n\
                     defp deps_of(x), do: [b: [path: \"../b\"]]\ndefp aliases, do: [c: \"x\"]";
        assert!(read(other).is_empty(), "{:?}", read(other));
        // Both forms in one list.
        assert_eq!(
            read("defp deps, do: [{:a, \"~> 1.0\"}, b: [path: \"../b\"]]"),
            [
                ("a".to_owned(), false, None),
                ("b".to_owned(), false, Some("../b".to_owned()))
            ]
        );
    }

    #[test]
    fn a_module_attribute_counts_as_the_plain_value_mix_exs_sets_it_to() {
        let text = "defmodule A.MixProject do\n  use Mix.Project\n  @app :my_app # the app\n  \
                    @build \"../../_build\"\n  @root \"..\"\n  @apps [\n    :api\n  ]\n\n  \
                    def project do\n    [\n      app: @app,\n      build_path: @build,\n      \
                    apps_path: \"apps\", apps: @apps,\n      \
                    config_path: @root <> \"/config.exs\",\n      deps: @deps\n    ]\n  \
                    end\nend\n";
        assert_eq!(keyword_atom(text, "app"), Some("my_app".to_owned()));
        assert_eq!(keyword_string(text, "build_path"), Some("../../_build"));
        assert_eq!(
            keyword_atom_list(text, "apps"),
            Some(vec!["api".to_owned()])
        );
        let layout = Layout::read(Path::new("/p"), text, |_: &str| None);
        assert_eq!(layout.build("dev"), Path::new("/p/../../_build/dev"));
        // Not an attribute alone, or one mix.exs does not set: Mix's default.
        assert_eq!(layout.unread, ["config_path"]);
        assert_eq!(keyword_atom("[app: @app]", "app"), None);
        assert_eq!(
            deps("@deps [liba: [path: \"../liba\"]]\ndef project, do: [deps: @deps]")[0].path,
            Some("../liba".to_owned())
        );
    }

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
    fn start_permanent_is_read_as_mix_new_writes_it() {
        let permanent = |value: &str, env: &str| {
            start_permanent(
                &format!("[app: :a,\n start_permanent: {value},\n deps: []]"),
                env,
            )
        };
        assert!(permanent("Mix.env() == :prod", "prod"));
        assert!(!permanent("Mix.env() == :prod", "dev"));
        assert!(permanent("Mix.env == :prod", "prod"));
        assert!(permanent("Mix.env() != :test", "dev"));
        assert!(!permanent("Mix.env() != :test", "test"));
        assert!(permanent("Mix.env() in [:prod, :staging]", "staging"));
        assert!(!permanent("Mix.env() in [:prod, :staging]", "dev"));
        assert!(permanent("true", "dev"));
        assert!(!permanent("false", "prod"));
        assert!(!permanent("@permanent", "prod"));
        assert!(!permanent("Mix.env() == :production", "prod"));
        assert!(permanent("Mix.env() not in [:dev, :test]", "prod"));
        assert!(!permanent("Mix.env() not in [:dev, :test]", "test"));
        // Only a test alone: what goes on is not evaluated, and Mix's default holds.
        assert!(!permanent(
            "Mix.env() == :prod or System.get_env(\"P\") != nil",
            "prod"
        ));
        assert!(!permanent("Mix.env() in [:prod, Foo]", "prod"));
        assert!(!permanent("true and permanent?()", "prod"));
        assert!(!start_permanent("[app: :a]", "prod"));
        assert!(!start_permanent(
            "# start_permanent: true\n[app: :a]",
            "prod"
        ));
    }

    #[test]
    fn a_boolean_option_is_read_for_the_run_s_environment_when_it_is_plain() {
        let text = "def project do\n  [\n    app: :a,\n    consolidate_protocols: Mix.env() != :test,\n    \
                    build_embedded: Mix.env == :prod\n  ]\nend";
        assert_eq!(
            keyword_bool(text, "consolidate_protocols", "dev"),
            Some(true)
        );
        assert_eq!(
            keyword_bool(text, "consolidate_protocols", "test"),
            Some(false)
        );
        assert_eq!(keyword_bool(text, "build_embedded", "prod"), Some(true));
        assert_eq!(keyword_bool(text, "start_permanent", "prod"), None);
        assert_eq!(keyword_bool("[x: false]", "x", "dev"), Some(false));
        assert_eq!(keyword_bool("[x: false_or_not()]", "x", "dev"), None);
        assert_eq!(keyword_bool("[x: should?()]", "x", "dev"), None);
    }

    #[test]
    fn an_umbrella_s_apps_list_is_read_when_it_is_plain_atoms() {
        let listed = |text| keyword_atom_list(text, "apps");
        assert_eq!(
            listed("[apps_path: \"apps\", apps: [:api, :store_2]]"),
            Some(vec!["api".to_owned(), "store_2".to_owned()])
        );
        assert_eq!(
            listed("apps: [\n  :api, # the web\n  :store,\n],\nversion: \"1\""),
            Some(vec!["api".to_owned(), "store".to_owned()])
        );
        assert_eq!(listed("[apps_path: \"apps\"]"), None);
        assert_eq!(listed("apps: @apps"), None);
        assert_eq!(listed("apps: [:api, Store]"), None);
        assert_eq!(listed("deployed_apps: [:api]"), None);
        // Not plain: every child counts, and the layout says it could not read it.
        let unread = |text| Layout::read(Path::new("/p"), text, |_: &str| None).unread;
        assert_eq!(unread("[apps_path: \"apps\", apps: @apps]"), ["apps"]);
        assert!(unread("[apps_path: \"apps\", apps: [:api]]").is_empty());
        assert!(unread("[app: :a, apps: @apps]").is_empty());
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
        assert!(!layout.build_path_set);

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
        assert_eq!(layout.lockfile, project.join("mix.lock"));
        assert!(layout.unread.is_empty());
        assert!(layout.build_path_set);

        std::fs::write(
            project.join("mix.exs"),
            "[apps_path: \"services\", build_path: Path.expand(\"../_build\", __DIR__)]",
        )
        .unwrap();
        let layout = Layout::of(project);
        assert_eq!(layout.build_root, project.join("_build"));
        assert_eq!(layout.apps, Some(project.join("services")));
        assert_eq!(layout.unread, ["build_path"]);
        // Not read, but set all the same: Mix leaves the configured applications to its owner.
        assert!(layout.build_path_set);
        let set = |text| Layout::read(project, text, |_: &str| None).build_path_set;
        assert!(!set("[app: :a, build_path: nil]") && !set("[app: :a, build_path: false]"));
        assert!(
            layout
                .note("build_path")
                .contains("mix.exs sets build_path: to something other than a plain value")
        );
        assert_eq!(layout.note("config_path"), "");
    }

    #[test]
    fn the_build_is_where_mix_compile_puts_it_for_mix_s_variables() {
        let project = Path::new("/p");
        let none = |_: &str| None;
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                let found = pairs.iter().find(|(n, _)| *n == name);
                found.map(|(_, value)| OsString::from(value))
            }
        };
        let shared = "[app: :a, build_per_environment: false]";
        assert_eq!(
            Layout::read(project, shared, none).build("prod"),
            project.join("_build/shared")
        );
        let layout = Layout::read(project, shared, none);
        assert_eq!(layout.built_envs(), Vec::<String>::new());
        let root = vars(&[("MIX_BUILD_ROOT", "/b"), ("MIX_TARGET", "rpi")]);
        assert_eq!(
            Layout::read(project, "[build_path: \"out\"]", root).build("prod"),
            Path::new("/b/rpi_prod")
        );
        let host = vars(&[("MIX_TARGET", "host"), ("MIX_BUILD_ROOT", "")]);
        assert_eq!(
            Layout::read(project, "[build_path: \"out\"]", host).build("dev"),
            project.join("out/dev")
        );
        let computed = "[build_path: Path.expand(\"out\")]";
        let root = vars(&[("MIX_BUILD_ROOT", "/b")]);
        assert_eq!(Layout::read(project, computed, root).note("build_path"), "");
        let path = vars(&[("MIX_BUILD_PATH", "tmp/x"), ("MIX_BUILD_ROOT", "/b")]);
        let layout = Layout::read(project, shared, path);
        assert_eq!(layout.build("prod"), project.join("tmp/x"));
        assert_eq!(layout.note("build_path"), " (where MIX_BUILD_PATH puts it)");

        let named = "[build_per_environment: false_unless_ci()]";
        assert_eq!(
            Layout::read(project, named, none).build("dev"),
            project.join("_build/dev")
        );
        let computed = "[build_per_environment: Mix.env() != :test]";
        let layout = Layout::read(project, computed, none);
        assert_eq!(layout.build("dev"), project.join("_build/dev"));
        assert!(
            layout
                .note("build_path")
                .contains("sets build_per_environment: to")
        );
        assert_eq!(layout.note("config_path"), "");
    }

    #[test]
    fn the_environments_built_are_read_from_the_build_root() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["dev", "prod", "rpi_prod"] {
            std::fs::create_dir_all(dir.path().join("_build").join(name)).unwrap();
        }
        let mut envs = Layout::read(dir.path(), "", |_| None).built_envs();
        envs.sort();
        assert_eq!(envs, ["dev", "prod", "rpi_prod"]);
        let rpi = |name: &str| (name == "MIX_TARGET").then(|| OsString::from("rpi"));
        assert_eq!(Layout::read(dir.path(), "", rpi).built_envs(), ["prod"]);
    }
}
