//! Which applications a run ships, as a deployment of the project would have them: the project's
//! own (the `app:` of `mix.exs`, or every child of an umbrella) and every application of
//! `_build/<env>/lib` they need, through `applications`, `included_applications` and
//! `optional_applications` of the `.app` files, transitively; plus the application of every module
//! of the entry's closure. Applications named there that are not in `_build` (OTP's and Elixir's
//! own: kernel, logger, ssl...) are never shipped: the server must have them.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::build::app_config::leads_nowhere_or_above;
use crate::build::app_spec::{self, AppSpec, SpecError};
use crate::build::mix_exs::{self, Layout, keyword_atom};

/// More than this in the `priv/` directories of the shipped applications is surely not meant to
/// travel with a job: refuse rather than send it.
pub const MAX_PRIV_BYTES: u64 = 256 << 20;

/// Why the applications to ship could not be worked out.
#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// A `.app` file cannot be read as `application:load` reads it.
    #[error("{path}: {why}")]
    BadSpec {
        /// The `.app` file.
        path: PathBuf,
        /// What is wrong.
        why: SpecError,
    },
    /// The `priv/` directories hold more than any job should send.
    #[error("the priv/ directories of {apps} hold more than 256 MiB: too much to send with a job")]
    PrivTooLarge {
        /// The applications shipped.
        apps: String,
    },
    /// A file of a `priv/` is named in bytes that are not UTF-8: it would reach the server under
    /// another name.
    #[error(
        "{0}: a priv/ file whose name is not UTF-8 cannot be shipped under the same name: rename it"
    )]
    PrivName(PathBuf),
}

/// One application of `_build/<env>/lib` that ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDir {
    /// Its name.
    pub name: String,
    /// `_build/<env>/lib/<name>`.
    pub dir: PathBuf,
    /// The bytes of `ebin/<name>.app`, if Mix wrote one (shipped as they are).
    pub spec: Option<Vec<u8>>,
    /// The modules of its `ebin/` (as atoms), sorted.
    pub modules: Vec<String>,
}

/// What a run ships and what it expects of the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Apps {
    /// The project's own applications, in the order `mix run` starts them.
    pub project: Vec<String>,
    /// The applications shipped, by name.
    pub shipped: Vec<AppDir>,
    /// Applications the shipped ones need that the server must have, each with the first shipped
    /// application found that names it: (needed, by).
    pub from_server: Vec<(String, String)>,
    /// Every application of the project's build, shipped or not, by name: `mix run` has each on
    /// its code path.
    pub built: Vec<String>,
}

impl Apps {
    /// Works out the applications of the project's build for `env` (`<project>/_build/<env>`,
    /// or where `build_path:` puts it): the project's own ones (falling back to `entry_app`, the
    /// application of the entry's module, when `mix.exs` does not name one that was built), what
    /// they need, and the applications of `closure` (module atoms).
    pub fn resolve(
        project: &Path,
        env: &str,
        entry_app: Option<&str>,
        closure: &[&str],
    ) -> Result<Apps, AppsError> {
        let layout = Layout::of(project);
        let lib = layout.build(env).join("lib");
        let mut built = built_apps(&lib)?;
        // What an earlier build left in `_build` is not the project's (see `project::scan`).
        if let Some(live) = of_project(project, &layout, &lib) {
            built.retain(|app, _| live.contains(app));
        }
        let mut project_apps: Vec<String> = project_apps(project, &layout)
            .into_iter()
            .filter(|app| built.contains_key(app))
            .collect();
        if let Some(app) =
            entry_app.filter(|app| project_apps.is_empty() && built.contains_key(*app))
        {
            project_apps.push(app.to_owned());
        }
        let owner: HashMap<&str, &str> = built
            .iter()
            .flat_map(|(app, dir)| dir.modules.iter().map(move |m| (m.as_str(), app.as_str())))
            .collect();
        // Before Elixir 1.15, a `.app` leaves optional dependencies out (1.15 lists them as
        // `optional_applications`): those mix.exs names that are built ship, as `mix run` has
        // them on its code path.
        let optional: Vec<String> = mix_exs::all_deps(project, &layout)
            .into_iter()
            .map(|found| found.dep)
            .filter(|dep| dep.optional && built.contains_key(&dep.name))
            .map(|dep| dep.name)
            .collect();
        let mut roots: Vec<&str> = project_apps.iter().map(String::as_str).collect();
        roots.extend(closure.iter().filter_map(|m| owner.get(m).copied()));
        roots.extend(optional.iter().map(String::as_str));
        let specs = read_specs(&built)?;
        let (shipped, from_server) = reachable(&roots, &specs);
        let order = start_order(&project_apps, &specs);
        Ok(Apps {
            project: order,
            shipped: shipped
                .iter()
                .filter_map(|name| built.get(name).cloned())
                .collect(),
            from_server,
            built: built.keys().cloned().collect(),
        })
    }

    /// The names of the shipped applications.
    pub fn names(&self) -> Vec<&str> {
        self.shipped.iter().map(|a| a.name.as_str()).collect()
    }
}

/// Every application directory of `lib` (`<lib>/<app>/ebin`), with its `.app` text and modules.
fn built_apps(lib: &Path) -> Result<BTreeMap<String, AppDir>, AppsError> {
    let read_dir = |path: &Path| {
        std::fs::read_dir(path).map_err(|error| AppsError::Read {
            path: path.to_owned(),
            error,
        })
    };
    let mut apps = BTreeMap::new();
    for entry in read_dir(lib)?.filter_map(Result::ok) {
        let dir = entry.path();
        let ebin = dir.join("ebin");
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if !ebin.is_dir() {
            continue;
        }
        let mut modules: Vec<String> = read_dir(&ebin)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let file = e.file_name().to_str()?.to_owned();
                file.strip_suffix(".beam").map(str::to_owned)
            })
            .collect();
        modules.sort();
        let spec_path = ebin.join(format!("{name}.app"));
        let spec = match std::fs::read(&spec_path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(error) => {
                return Err(AppsError::Read {
                    path: spec_path,
                    error,
                });
            }
        };
        apps.insert(
            name.clone(),
            AppDir {
                name,
                dir,
                spec,
                modules,
            },
        );
    }
    Ok(apps)
}

/// The text of a `.app` file: UTF-8, or else Latin-1 (which a `%% coding: latin-1` line asks
/// for, and which `application:load` reads too): each byte one character.
fn spec_text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().copied().map(char::from).collect(),
    }
}

/// The parsed `.app` of each built application that has one.
fn read_specs(built: &BTreeMap<String, AppDir>) -> Result<HashMap<String, AppSpec>, AppsError> {
    let mut specs = HashMap::new();
    for (name, dir) in built {
        if let Some(bytes) = &dir.spec {
            let spec = app_spec::parse(&spec_text(bytes)).map_err(|why| AppsError::BadSpec {
                path: dir.dir.join("ebin").join(format!("{name}.app")),
                why,
            })?;
            specs.insert(name.clone(), spec);
        }
    }
    Ok(specs)
}

/// The applications of `specs` reachable from `roots` (sorted), and the ones named on the way
/// that are not built, except optional ones: (needed, by), in the order found.
fn reachable(
    roots: &[&str],
    specs: &HashMap<String, AppSpec>,
) -> (BTreeSet<String>, Vec<(String, String)>) {
    let mut shipped = BTreeSet::new();
    let mut from_server: Vec<(String, String)> = Vec::new();
    let mut todo: VecDeque<String> = roots.iter().map(|r| (*r).to_owned()).collect();
    while let Some(app) = todo.pop_front() {
        if !shipped.insert(app.clone()) {
            continue;
        }
        let Some(spec) = specs.get(&app) else {
            continue;
        };
        for (needed, optional) in spec.needs() {
            if specs.contains_key(needed) {
                todo.push_back(needed.to_owned());
            } else if !optional && !from_server.iter().any(|(n, _)| n == needed) {
                from_server.push((needed.to_owned(), app.clone()));
            }
        }
    }
    // A root without a spec (an ebin without .app) ships all the same; nothing else can.
    (shipped, from_server)
}

/// `apps` in the order `mix run` starts an umbrella's children: each after those of them it needs
/// (directly or through other applications), otherwise by name.
fn start_order(apps: &[String], specs: &HashMap<String, AppSpec>) -> Vec<String> {
    let needs: HashMap<&str, BTreeSet<String>> = apps
        .iter()
        .map(|app| {
            let (reached, _) = reachable(&[app.as_str()], specs);
            let others = reached
                .into_iter()
                .filter(|a| a != app && apps.contains(a))
                .collect();
            (app.as_str(), others)
        })
        .collect();
    let mut left: BTreeSet<&str> = apps.iter().map(String::as_str).collect();
    let mut order: Vec<String> = Vec::new();
    while !left.is_empty() {
        let next = left
            .iter()
            .find(|app| needs[*app].iter().all(|n| order.contains(n)))
            .or_else(|| left.iter().next())
            .copied()
            .expect("left is not empty");
        left.remove(next);
        order.push(next.to_owned());
    }
    order
}

/// The applications of the build in `lib` that are the project's: its own (as `mix.exs` names
/// them), the dependencies its `mix.exs` files name (`{:name, ...}`, runtime or not) and those
/// theirs name (`mix_exs::all_deps`), and what their `.app` files need, transitively. What `mix run` puts on the code path, less what a
/// removed dependency or a renamed application left in `_build` (Mix never removes those).
/// `None` when `mix.exs` does not plainly name the project's applications, or a `.app` cannot be
/// read: then every application of the build counts.
pub fn of_project(project: &Path, layout: &Layout, lib: &Path) -> Option<BTreeSet<String>> {
    let own = project_apps(project, layout);
    if own.is_empty() {
        return None;
    }
    let built = built_apps(lib).ok()?;
    let specs = read_specs(&built).ok()?;
    let named = mix_exs::all_deps(project, layout);
    let roots: Vec<&str> = own
        .iter()
        .chain(named.iter().map(|found| &found.dep.name))
        .map(String::as_str)
        .filter(|app| built.contains_key(*app))
        .collect();
    Some(reachable(&roots, &specs).0)
}

/// The applications of the build for `env` that are not the project's (see [`of_project`]),
/// left out of every run and plan: what an earlier build left there.
pub fn left_out(project: &Path, env: &str) -> Vec<String> {
    let layout = Layout::of(project);
    let lib = layout.build(env).join("lib");
    match (of_project(project, &layout, &lib), built_apps(&lib)) {
        (Some(live), Ok(built)) => built
            .into_keys()
            .filter(|app| !live.contains(app))
            .collect(),
        _ => Vec::new(),
    }
}

/// The project's own applications as `mix.exs` names them: every child of an umbrella
/// ([`Layout::children`]), else the `app:`. None when `mix.exs` cannot be read or names none
/// plainly.
pub(crate) fn project_apps(project: &Path, layout: &Layout) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(project.join("mix.exs")) else {
        return Vec::new();
    };
    if layout.apps.is_none() {
        return keyword_atom(&text, "app").into_iter().collect();
    }
    let mut apps: Vec<String> = layout
        .children()
        .into_iter()
        .filter_map(|child| {
            let text = std::fs::read_to_string(child.join("mix.exs")).ok()?;
            keyword_atom(&text, "app").or_else(|| child.file_name()?.to_str().map(str::to_owned))
        })
        .collect();
    apps.sort();
    apps
}

/// An entry of a shipped application's `priv/` that travels: a regular file, or a directory
/// that holds nothing that travels (those that do are made by what they hold). `C` is what was
/// read of a file: its contents, unless another reader took less ([`priv_entries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivFile<C = Vec<u8>> {
    /// The application.
    pub app: String,
    /// Its path relative to `priv/`, with `/` separators; empty for `priv/` itself (an empty
    /// `priv/`).
    pub path: String,
    /// Its permission bits.
    pub mode: u32,
    /// A file and what was read of it, or a directory.
    pub kind: PrivKind<C>,
    /// Where it was read from (symlinks resolved).
    pub source: PathBuf,
}

/// What a [`PrivFile`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivKind<C = Vec<u8>> {
    /// A regular file, with what was read of it (its contents).
    File(C),
    /// A directory holding nothing that travels (empty, or holding only what is passed over):
    /// the server makes it, as a deployment has it (an upload or cache directory kept empty).
    Dir,
}

impl PrivFile {
    /// The contents of a file; `None` for a directory.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.kind {
            PrivKind::File(bytes) => Some(bytes),
            PrivKind::Dir => None,
        }
    }
}

/// Every regular file under the `priv/` of each application of `apps`, with its contents, and
/// every directory there that holds none of them nor another such directory (`priv/` itself when
/// it is empty), following symlinks (Mix's `priv` in `_build` is one, into the project), sorted
/// by path. A link to nothing (a `priv` link left by a deleted `priv/`, an upload directory that
/// exists only on the servers) or back to a directory above it holds nothing to send, and is
/// passed over; so are other special files (sockets, FIFOs).
pub fn priv_files(apps: &[AppDir]) -> Result<Vec<PrivFile>, AppsError> {
    priv_entries(apps, |path| std::fs::read(path))
}

/// The size of the file at `path`, for what only counts the files of `priv/` (`plan`): opened as
/// [`priv_files`] reads it (one it could not read is the same error here), its contents unread.
pub fn file_size(path: &Path) -> std::io::Result<usize> {
    let size = std::fs::File::open(path)?.metadata()?.len();
    Ok(usize::try_from(size).unwrap_or(usize::MAX))
}

/// The entries [`priv_files`] gives, each file with what `read` takes of it (given its path)
/// instead of its contents: for what needs only some of them.
pub fn priv_entries<C>(
    apps: &[AppDir],
    mut read: impl FnMut(&Path) -> std::io::Result<C>,
) -> Result<Vec<PrivFile<C>>, AppsError> {
    let mut files = Vec::new();
    let mut total = 0;
    for app in apps {
        let priv_dir = app.dir.join("priv");
        if !priv_dir.exists() {
            continue;
        }
        // This application's entries, directories included, in walk order: a directory's
        // entries come right after it.
        let mut entries: Vec<PrivFile<C>> = Vec::new();
        for entry in walkdir::WalkDir::new(&priv_dir)
            .follow_links(true)
            .sort_by_file_name()
        {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if leads_nowhere_or_above(&e) => continue,
                Err(e) => {
                    return Err(AppsError::Read {
                        path: e.path().unwrap_or(&priv_dir).to_owned(),
                        error: e.into(),
                    });
                }
            };
            let file_type = entry.file_type();
            if !file_type.is_file() && !file_type.is_dir() {
                continue;
            }
            let path = entry.path();
            let read_error = |error| AppsError::Read {
                path: path.to_owned(),
                error,
            };
            let metadata = entry.metadata().map_err(|e| read_error(e.into()))?;
            let kind = if file_type.is_dir() {
                PrivKind::Dir
            } else {
                total += metadata.len();
                if total > MAX_PRIV_BYTES {
                    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
                    return Err(AppsError::PrivTooLarge {
                        apps: names.join(", "),
                    });
                }
                PrivKind::File(read(path).map_err(read_error)?)
            };
            let relative = path.strip_prefix(&priv_dir).unwrap_or(path);
            let names: Option<Vec<&str>> = relative
                .components()
                .map(|c| c.as_os_str().to_str())
                .collect();
            let names = names.ok_or_else(|| AppsError::PrivName(path.to_owned()))?;
            entries.push(PrivFile {
                app: app.name.clone(),
                path: names.join("/"),
                mode: metadata.permissions().mode() & 0o777,
                kind,
                source: path.canonicalize().unwrap_or_else(|_| path.to_owned()),
            });
        }
        // A directory followed by one of its own entries is made by that entry.
        let kept: Vec<bool> = (0..entries.len())
            .map(|i| match entries[i].kind {
                PrivKind::File(_) => true,
                PrivKind::Dir => entries
                    .get(i + 1)
                    .is_none_or(|next| !beneath(&next.path, &entries[i].path)),
            })
            .collect();
        files.extend(
            entries
                .into_iter()
                .zip(kept)
                .filter_map(|(entry, kept)| kept.then_some(entry)),
        );
    }
    Ok(files)
}

/// Whether the `priv/` path `path` lies beneath the directory `dir` (`""` being `priv/` itself).
fn beneath(path: &str, dir: &str) -> bool {
    dir.is_empty() && !path.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `_build/dev/lib` under `root` with an application per `(name, applications, modules)`.
    fn build(root: &Path, apps: &[(&str, &str, &[&str])]) {
        for (name, needs, modules) in apps {
            let ebin = root.join("_build/dev/lib").join(name).join("ebin");
            std::fs::create_dir_all(&ebin).unwrap();
            std::fs::write(
                ebin.join(format!("{name}.app")),
                format!("{{application,{name},[{{applications,[{needs}]}},{{vsn,\"0.1.0\"}}]}}.\n"),
            )
            .unwrap();
            for m in *modules {
                std::fs::write(ebin.join(format!("{m}.beam")), b"").unwrap();
            }
        }
    }

    #[test]
    fn the_projects_applications_are_its_own_what_mix_exs_names_and_what_they_need() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mix.exs"),
            "def project, do: [app: :shop, deps: deps()]\n\
             defp deps, do: [{:tool, path: \"t\", runtime: false}, { :db , \"~> 1.0\"}]",
        )
        .unwrap();
        build(
            dir.path(),
            &[
                ("shop", "kernel,json", &[]),
                ("json", "kernel", &[]),
                ("tool", "kernel", &[]),
                ("db", "kernel,pool", &[]),
                ("pool", "kernel", &[]),
                // A dependency removed from mix.exs, the application's old name.
                ("jason", "kernel", &[]),
                ("old_shop", "kernel", &[]),
            ],
        );
        let layout = Layout::of(dir.path());
        let lib = dir.path().join("_build/dev/lib");
        let live = of_project(dir.path(), &layout, &lib).unwrap();
        let live: Vec<&str> = live.iter().map(String::as_str).collect();
        assert_eq!(live, ["db", "json", "pool", "shop", "tool"]);
        assert_eq!(left_out(dir.path(), "dev"), ["jason", "old_shop"]);
        // The old name's copy of a closure module does not bring its directory along.
        std::fs::write(lib.join("old_shop/ebin/Elixir.Shop.beam"), b"").unwrap();
        std::fs::write(lib.join("shop/ebin/Elixir.Shop.beam"), b"").unwrap();
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &["Elixir.Shop"]).unwrap();
        assert!(!apps.names().contains(&"old_shop"), "{:?}", apps.names());
        // A mix.exs that names no application plainly leaves every one in.
        std::fs::write(dir.path().join("mix.exs"), "def project, do: [app: @app]").unwrap();
        assert_eq!(of_project(dir.path(), &Layout::of(dir.path()), &lib), None);
        assert!(left_out(dir.path(), "dev").is_empty());
    }

    #[test]
    fn what_the_dependencies_mix_exs_files_name_is_the_projects_too() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("app");
        std::fs::create_dir_all(project.join("deps/hexdep")).unwrap();
        std::fs::create_dir_all(dir.path().join("liba")).unwrap();
        std::fs::write(
            project.join("mix.exs"),
            "[app: :app, deps: [{:liba, path: \"../liba\"}, {:hexdep, \"~> 1.0\"}]]",
        )
        .unwrap();
        // Neither dependency's .app names what it needs at build time only.
        std::fs::write(
            dir.path().join("liba/mix.exs"),
            "[app: :liba, deps: [{:libb, path: \"../libb\", runtime: false}]]",
        )
        .unwrap();
        std::fs::write(
            project.join("deps/hexdep/mix.exs"),
            "[app: :hexdep, deps: [{:codegen, \"~> 0.1\", runtime: false}]]",
        )
        .unwrap();
        build(
            &project,
            &[
                ("app", "kernel,liba,hexdep", &[]),
                ("liba", "kernel", &[]),
                ("libb", "kernel", &[]),
                ("hexdep", "kernel", &[]),
                ("codegen", "kernel", &[]),
                ("removed", "kernel", &[]),
            ],
        );
        assert_eq!(left_out(&project, "dev"), ["removed"]);
    }

    #[test]
    fn an_optional_dependency_a_pre_1_15_app_leaves_out_ships_when_it_is_built() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mix.exs"),
            "[app: :shop, deps: [{:jason, path: \"j\", optional: true}, {:gone, \"1.0\", optional: true}]]",
        )
        .unwrap();
        // Elixir 1.14 lists neither in shop.app.
        build(
            dir.path(),
            &[("shop", "kernel", &[]), ("jason", "kernel", &[])],
        );
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        assert_eq!(apps.names(), ["jason", "shop"]);
        assert_eq!(apps.from_server, [("kernel".to_owned(), "shop".to_owned())]);
    }

    #[test]
    fn ships_what_the_project_app_needs_and_leaves_otp_to_the_server() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mix.exs"),
            "def project, do: [app: :shop, deps: [{:tool, path: \"t\", app: false}]]",
        )
        .unwrap();
        build(
            dir.path(),
            &[
                ("shop", "kernel,stdlib,elixir,logger,db", &["Elixir.Shop"]),
                ("db", "kernel,stdlib,ssl,telemetry", &["Elixir.Db"]),
                ("telemetry", "kernel,stdlib", &["telemetry"]),
                ("tool", "kernel,stdlib", &["Elixir.Tool"]),
                ("other", "kernel", &["Elixir.Other"]),
            ],
        );
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &["Elixir.Shop"]).unwrap();
        assert_eq!(apps.project, ["shop"]);
        assert_eq!(apps.names(), ["db", "shop", "telemetry"]);
        let needed: Vec<(&str, &str)> = apps
            .from_server
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            needed,
            [
                ("kernel", "shop"),
                ("stdlib", "shop"),
                ("elixir", "shop"),
                ("logger", "shop"),
                ("ssl", "db")
            ]
        );
        let shop = &apps.shipped[1];
        assert_eq!(shop.modules, ["Elixir.Shop"]);
        assert!(
            shop.spec
                .as_deref()
                .unwrap()
                .starts_with(b"{application,shop")
        );
        // A closure module of an application nothing needs brings it along.
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &["Elixir.Tool"]).unwrap();
        assert_eq!(apps.names(), ["db", "shop", "telemetry", "tool"]);
    }

    #[test]
    fn an_umbrella_starts_every_child_after_those_it_needs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mix.exs"),
            "  # apps_path: \"nope\"\n  def project, do: [apps_path: \"apps\", version: \"0.1.0\"]",
        )
        .unwrap();
        for (child, app) in [("store", "store"), ("api", "api"), ("audit", "audit")] {
            let path = dir.path().join("apps").join(child);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(
                path.join("mix.exs"),
                format!("[otp_app: :no, app: :{app}, version: \"0.1.0\"]"),
            )
            .unwrap();
        }
        build(
            dir.path(),
            &[
                ("store", "kernel", &[]),
                ("bridge", "kernel,store", &[]),
                ("api", "kernel,bridge", &[]),
                ("audit", "kernel", &[]),
            ],
        );
        let apps = Apps::resolve(dir.path(), "dev", Some("api"), &[]).unwrap();
        assert_eq!(apps.project, ["audit", "store", "api"]);
        assert_eq!(apps.names(), ["api", "audit", "bridge", "store"]);
    }

    #[test]
    fn an_umbrella_s_apps_list_leaves_the_other_children_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mix.exs"),
            "def project, do: [apps_path: \"apps\", apps: [:store, :api]]",
        )
        .unwrap();
        for child in ["store", "api", "audit"] {
            let path = dir.path().join("apps").join(child);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::write(path.join("mix.exs"), format!("[app: :{child}]")).unwrap();
        }
        // A directory without mix.exs is no child, as Mix has it.
        std::fs::create_dir_all(dir.path().join("apps/notes")).unwrap();
        // `audit`, compiled once from its own directory, left in the shared build.
        build(
            dir.path(),
            &[
                ("store", "kernel", &[]),
                ("api", "kernel,store", &[]),
                ("audit", "kernel", &[]),
            ],
        );
        let layout = Layout::of(dir.path());
        assert_eq!(project_apps(dir.path(), &layout), ["api", "store"]);
        let apps = Apps::resolve(dir.path(), "dev", Some("api"), &[]).unwrap();
        assert_eq!(apps.project, ["store", "api"]);
        assert_eq!(apps.names(), ["api", "store"]);
        assert_eq!(left_out(dir.path(), "dev"), ["audit"]);
    }

    #[test]
    fn without_a_plain_app_name_the_entry_app_is_the_project() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("mix.exs"), "[app: @app]").unwrap();
        build(dir.path(), &[("shop", "kernel", &["Elixir.Shop"])]);
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        assert_eq!(apps.project, ["shop"]);
    }

    #[test]
    fn a_broken_app_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[("shop", "kernel", &[])]);
        let spec = dir.path().join("_build/dev/lib/shop/ebin/shop.app");
        std::fs::write(&spec, "{application,shop,[{applications,[kernel}]}.").unwrap();
        let err = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap_err();
        assert!(err.to_string().contains("shop.app"), "{err}");
    }

    #[test]
    fn priv_files_follow_the_symlink_and_keep_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[("shop", "kernel", &[])]);
        let source = dir.path().join("priv");
        std::fs::create_dir_all(source.join("native")).unwrap();
        std::fs::write(source.join("data.csv"), "a,1\n").unwrap();
        std::fs::write(source.join("native/port"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            source.join("native/port"),
            std::fs::Permissions::from_mode(0o750),
        )
        .unwrap();
        let app_dir = dir.path().join("_build/dev/lib/shop");
        std::os::unix::fs::symlink("../../../../priv", app_dir.join("priv")).unwrap();
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        let files = priv_files(&apps.shipped).unwrap();
        let listed: Vec<(&str, u32)> = files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(listed[0].0, "data.csv");
        assert_eq!(listed[1], ("native/port", 0o750));
        assert_eq!(files[0].bytes(), Some(&b"a,1\n"[..]));
        assert_eq!(
            files[1].source,
            source.join("native/port").canonicalize().unwrap()
        );
    }

    /// The bytes this thread has read so far (`rchar` of its I/O accounting).
    fn read_by_this_thread() -> u64 {
        let io = std::fs::read_to_string("/proc/thread-self/io").unwrap();
        let rchar = io.lines().find_map(|l| l.strip_prefix("rchar: ")).unwrap();
        rchar.trim().parse().unwrap()
    }

    #[test]
    fn the_sizes_plan_counts_are_those_of_the_files_a_run_reads_and_none_is_read() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[("shop", "kernel", &[])]);
        let source = dir.path().join("_build/dev/lib/shop/priv");
        std::fs::create_dir_all(source.join("static/empty")).unwrap();
        std::fs::write(source.join("big.csv"), vec![b'x'; 16 << 20]).unwrap();
        std::fs::write(source.join("static/app.css"), "a{}").unwrap();
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        let before = read_by_this_thread();
        let sizes = priv_entries(&apps.shipped, file_size).unwrap();
        let read = read_by_this_thread() - before;
        assert!(read < 64 << 10, "{read} bytes read");
        let files = priv_files(&apps.shipped).unwrap();
        let size = |kind: &PrivKind<usize>| match kind {
            PrivKind::File(size) => Some(*size),
            PrivKind::Dir => None,
        };
        let counted: Vec<(&str, Option<usize>)> = sizes
            .iter()
            .map(|f| (f.path.as_str(), size(&f.kind)))
            .collect();
        let shipped: Vec<(&str, Option<usize>)> = files
            .iter()
            .map(|f| (f.path.as_str(), f.bytes().map(<[u8]>::len)))
            .collect();
        assert_eq!(counted, shipped);
        assert_eq!(counted[0], ("big.csv", Some(16 << 20)));
    }

    #[test]
    fn the_native_objects_check_reads_are_those_a_run_finds_in_the_files_it_ships() {
        use crate::build::native;
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[("shop", "kernel", &[])]);
        let source = dir.path().join("_build/dev/lib/shop/priv");
        std::fs::create_dir_all(source.join("native")).unwrap();
        std::fs::write(
            source.join("native/shop_nif.so"),
            native::tests::small_elf(4096),
        )
        .unwrap();
        std::fs::write(source.join("big.csv"), vec![b'x'; 4 << 20]).unwrap();
        std::fs::write(source.join("short"), "M").unwrap();
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        let shipped = native::objects(dir.path(), &priv_files(&apps.shipped).unwrap());
        let entries = priv_entries(&apps.shipped, native::target_at).unwrap();
        assert_eq!(native::objects_found(dir.path(), &entries), shipped);
        let shown: Vec<&str> = shipped.iter().map(|o| o.shown.as_str()).collect();
        assert_eq!(shown, ["_build/dev/lib/shop/priv/native/shop_nif.so"]);
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["big.csv", "native/shop_nif.so", "short"]);
    }

    #[test]
    fn priv_directories_that_hold_nothing_that_travels_travel_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        build(
            dir.path(),
            &[("shop", "kernel", &[]), ("bare", "kernel", &[])],
        );
        let source = dir.path().join("priv");
        for empty in ["uploads", "cache/empty", "static/css", "a", "links"] {
            std::fs::create_dir_all(source.join(empty)).unwrap();
        }
        std::fs::write(source.join("static/css/app.css"), "a{}").unwrap();
        std::fs::write(source.join("a-b"), "x").unwrap();
        std::os::unix::fs::symlink("/nonexistent/x", source.join("links/x")).unwrap();
        std::fs::set_permissions(
            source.join("uploads"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let app_dir = dir.path().join("_build/dev/lib/shop");
        std::os::unix::fs::symlink("../../../../priv", app_dir.join("priv")).unwrap();
        // An empty `priv/`: the directory itself travels.
        let bare_priv = dir.path().join("_build/dev/lib/bare/priv");
        std::fs::create_dir(&bare_priv).unwrap();
        std::fs::set_permissions(&bare_priv, std::fs::Permissions::from_mode(0o750)).unwrap();
        let app = |name: &str| AppDir {
            name: name.into(),
            dir: dir.path().join("_build/dev/lib").join(name),
            spec: None,
            modules: Vec::new(),
        };
        let files = priv_files(&[app("shop"), app("bare")]).unwrap();
        let listed: Vec<(&str, &str, Option<&[u8]>)> = files
            .iter()
            .map(|f| (f.app.as_str(), f.path.as_str(), f.bytes()))
            .collect();
        assert_eq!(
            listed,
            [
                ("shop", "a", None),
                ("shop", "a-b", Some(&b"x"[..])),
                ("shop", "cache/empty", None),
                // A link to nothing is passed over: its directory holds nothing that travels.
                ("shop", "links", None),
                ("shop", "static/css/app.css", Some(&b"a{}"[..])),
                ("shop", "uploads", None),
                ("bare", "", None),
            ]
        );
        let mode = |path: &str| files.iter().find(|f| f.path == path).unwrap().mode;
        assert_eq!((mode("uploads"), mode("")), (0o700, 0o750));
        assert_eq!(
            files[5].source,
            source.join("uploads").canonicalize().unwrap()
        );
    }

    #[test]
    fn a_latin_1_app_file_is_read_as_application_load_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[("shop", "kernel", &[])]);
        let spec = dir.path().join("_build/dev/lib/shop/ebin/shop.app");
        let mut text = b"%% coding: latin-1\n{application,shop,[{description,\"caf".to_vec();
        text.extend_from_slice(b"\xe9\"},{applications,[kernel,stdlib]}]}.\n");
        std::fs::write(&spec, text).unwrap();
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        assert_eq!(apps.names(), ["shop"]);
    }

    #[test]
    fn a_priv_file_whose_name_is_not_utf8_is_refused_by_its_path() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[("shop", "kernel", &[])]);
        let priv_dir = dir.path().join("_build/dev/lib/shop/priv");
        std::fs::create_dir_all(&priv_dir).unwrap();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        std::fs::write(priv_dir.join(name), "x").unwrap();
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        let err = priv_files(&apps.shipped).unwrap_err().to_string();
        assert!(
            err.contains("shop/priv/caf") && err.ends_with("rename it"),
            "{err}"
        );
    }

    #[test]
    fn priv_links_to_nothing_or_above_are_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        build(dir.path(), &[("shop", "kernel", &[])]);
        let priv_dir = dir.path().join("_build/dev/lib/shop/priv");
        std::fs::create_dir_all(priv_dir.join("static")).unwrap();
        std::fs::write(priv_dir.join("static/app.css"), "a{}").unwrap();
        std::os::unix::fs::symlink("/nonexistent/uploads", priv_dir.join("uploads")).unwrap();
        std::os::unix::fs::symlink("..", priv_dir.join("static/up")).unwrap();
        let apps = Apps::resolve(dir.path(), "dev", Some("shop"), &[]).unwrap();
        let files = priv_files(&apps.shipped).unwrap();
        let listed: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(listed, ["static/app.css"]);
    }
}
