//! What every host of a run shares, computed once before any connection: what to call (an entry
//! and its arguments, Elixir code (an `eval` expression, a script), or nothing for an `iex`
//! session), the plan, the applications to ship and their native code, the application
//! environment, the versions Mix recorded, and the wire form of it all, prepared on a thread of
//! its own while the hosts connect.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use erl_dist::term::Term;

use crate::build::app_config::{AppConfig, AppConfigError, ConfigUse};
use crate::build::apps::{self, Apps, AppsError, PrivFile};
use crate::build::beam::{Beam, BeamError};
use crate::build::compat::{self, Refusal, RemoteVersions};
use crate::build::entry::{Entry, EntryError, display_module};
use crate::build::literal::{self, LiteralError};
use crate::build::mix_exs::{self, Layout};
use crate::build::native;
use crate::build::plan::{self, Plan, PlanError};
use crate::build::project;
use crate::config::Build;
use crate::events::{PlannedProtocols, Stage};
use crate::remote::wire::{self, Items, Prepared, ShippedApp};
use crate::report::{Phase, Reporter};

/// Why a run cannot start: everything here is found locally, before any connection.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The project's build could not be read, or the entry or an included module is not in it.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The entry function is not callable.
    #[error(transparent)]
    Entry(#[from] EntryError),
    /// No entry function was named, neither on the command line nor in the config.
    #[error(
        "no entry function: name one (mix-remote run MyApp.Module.function) or set `entry` in mix-remote.yaml"
    )]
    NoEntry,
    /// An argument is not a valid Elixir literal.
    #[error(
        "argument {index} `{text}`: {error} (arguments after -- are Elixir literals, one per shell word, e.g. 42 '\"text\"' :atom '[1, 2]')"
    )]
    Argument {
        /// 1-based position after `--`.
        index: usize,
        /// The argument as given.
        text: String,
        /// What is wrong.
        error: LiteralError,
    },
    /// The project's config files could not be read.
    #[error(transparent)]
    AppConfig(#[from] AppConfigError),
    /// The applications to ship could not be worked out or read.
    #[error(transparent)]
    Apps(#[from] AppsError),
    /// The script of `run FILE.exs` could not be read.
    #[error("cannot read script {path}: {error}")]
    Script {
        /// The file as given.
        path: String,
        /// Why, as the OS says it.
        error: String,
    },
    /// The script installs dependencies of its own, which `mix run` refuses in a project.
    #[error(
        "{path}:{line}: Mix.install/2 cannot be used inside a Mix project, as under `mix run`: \
         a script run by mix-remote runs in the project, with the project's dependencies"
    )]
    MixInstall {
        /// The file as given.
        path: String,
        /// The line that calls it, from 1.
        line: usize,
    },
}

/// What a run does on each host.
pub enum Call {
    /// Calls an entry function.
    Function {
        /// The function.
        entry: Entry,
        /// Its arguments.
        args: Vec<Term>,
    },
    /// Evaluates Elixir code.
    Code(Code),
    /// Calls nothing: an interactive session (`iex`) drives the node.
    Session,
}

impl Call {
    /// How messages name it: `MyApp.Worker.process`, `the expression`, `priv/repo/seeds.exs`,
    /// `IEx`.
    pub fn shown(&self) -> String {
        match self {
            Call::Function { entry, .. } => entry.shown(),
            Call::Code(code) => code.shown.clone(),
            Call::Session => "IEx".to_owned(),
        }
    }

    /// What the run is doing while it runs: `calling MyApp.Worker.process`.
    pub fn doing(&self) -> String {
        match self {
            Call::Function { entry, .. } => format!("calling {}", entry.shown()),
            Call::Code(code) if code.prints_value => format!("evaluating {}", code.shown),
            Call::Code(code) => format!("running {}", code.shown),
            Call::Session => "running IEx".to_owned(),
        }
    }

    /// Whether it is a script (`run FILE.exs`), which the node compiles as `mix run FILE` does.
    pub fn is_script(&self) -> bool {
        matches!(self, Call::Code(code) if code.file != Code::NO_FILE)
    }

    /// Whether the value it ends with is printed: a function's and an expression's are, a
    /// script's is not (as `mix run FILE` prints none), nor a session's.
    pub fn prints_value(&self) -> bool {
        match self {
            Call::Function { .. } => true,
            Call::Code(code) => code.prints_value,
            Call::Session => false,
        }
    }
}

/// Elixir code evaluated on the server, as `mix run -e EXPR` or `mix run FILE ARGS` would.
pub struct Code {
    /// The code.
    pub text: String,
    /// The file its stack traces, `__ENV__.file` and `__DIR__` name: a script's absolute local
    /// path, `nofile` for an expression.
    pub file: String,
    /// `System.argv()` while it runs.
    pub argv: Vec<String>,
    /// How messages name it.
    pub shown: String,
    /// Whether its value is printed.
    pub prints_value: bool,
}

impl Code {
    /// The file of an expression: none, as Elixir names it.
    pub const NO_FILE: &'static str = "nofile";

    /// An expression, as `mix run -e CODE ARGS` evaluates it: `argv` is its `System.argv/0`.
    pub fn expression(text: &str, argv: Vec<String>) -> Code {
        Code {
            text: text.to_owned(),
            file: Code::NO_FILE.to_owned(),
            argv,
            shown: "the expression".to_owned(),
            prints_value: true,
        }
    }

    /// The script `entry` names when it ends in `.exs`, read now (see [`Code::script`]); none
    /// for a function. How `run`, `plan` and `graph` tell a script from an entry.
    pub fn script_of(entry: Option<&str>, argv: Vec<String>) -> Result<Option<Code>, JobError> {
        entry
            .filter(|e| e.ends_with(".exs"))
            .map(|path| Code::script(Path::new(path), argv))
            .transpose()
    }

    /// The script at `path` (read now), run with `argv` as `mix run FILE ARGS` runs it.
    pub fn script(path: &Path, argv: Vec<String>) -> Result<Code, JobError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| JobError::Script {
            path: shown.clone(),
            error: os_reason(&e),
        })?;
        // Refused before anything runs: on the server it would ask to install Hex, then fetch
        // and compile into the login's cache.
        if let Some(line) = calls_mix_install(&text) {
            return Err(JobError::MixInstall { path: shown, line });
        }
        let file = absolute(path).display().to_string();
        Ok(Code {
            text,
            file,
            argv,
            shown,
            prints_value: false,
        })
    }

    /// What a run of the code pushes, from the build of `build`: the closure of the project's
    /// modules its text names and of the included ones (see [`Plan::for_code`]).
    pub fn plan(&self, build: &Build) -> Result<Plan, PlanError> {
        Plan::for_code(&build.project, &build.mix_env, &self.text, &build.include)
            .map_err(|e| build.include_error(e))
    }
}

/// The first line (from 1) of `script` that starts with a call of `Mix.install` (what such a
/// script begins with); one in a condition or a string is the script's business.
fn calls_mix_install(script: &str) -> Option<usize> {
    script
        .lines()
        .position(|line| {
            line.trim_start()
                .strip_prefix("Mix.install")
                .is_some_and(|rest| rest.trim_start().starts_with(['(', '[']))
        })
        .map(|index| index + 1)
}

/// What the OS says of `error`, without Rust's ` (os error N)`.
fn os_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rsplit_once(" (os error ") {
        Some((reason, _)) => reason.to_owned(),
        None => text,
    }
}

/// `path` from the current directory, with `.` and `..` resolved by name, as Elixir's
/// `Path.expand/1` gives it to `mix run FILE`.
fn absolute(path: &Path) -> PathBuf {
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for part in full.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Elixir's own protocols (`Enumerable`, `Inspect`...) as Mix consolidated them for the project,
/// as `mix run` loads them from `_build`: the node loads them before the call when it runs the
/// Elixir release that made them (another release's protocols need not have the same functions
/// nor the same implementations of its own types).
#[derive(Debug, Clone)]
pub struct Protocols {
    /// The Elixir version that consolidated them (`System.version()`'s form).
    pub elixir: String,
    /// Each protocol's module name, local path (which the node's loader records, as for the
    /// closure's modules) and bytes as the loader receives them.
    pub beams: Vec<(String, PathBuf, Vec<u8>)>,
}

impl Protocols {
    /// Their names as users write them, and their size as the call carries them.
    pub fn planned(&self) -> PlannedProtocols {
        PlannedProtocols {
            elixir: self.elixir.clone(),
            modules: self
                .beams
                .iter()
                .map(|(name, _, _)| display_module(name))
                .collect(),
            bytes: self.beams.iter().map(|(_, _, beam)| beam.len()).sum(),
        }
    }

    /// Those of the build of `project` for `env` (see [`project::elixir_protocols`]), made by
    /// the Elixir `built` records; `None` without a recorded version or any such protocol.
    pub fn of(
        project: &Path,
        env: &str,
        plan: &Plan,
        built: &compat::Built,
    ) -> Result<Option<Protocols>, PlanError> {
        let Some(elixir) = built.elixir() else {
            return Ok(None);
        };
        let modules = plan
            .graph()
            .modules()
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        let beams = project::elixir_protocols(project, env, &modules)?
            .iter()
            .map(|beam| Ok((beam.name.clone(), beam.path.clone(), wire::stripped(beam)?)))
            .collect::<Result<Vec<_>, BeamError>>()
            .map_err(project::ProjectError::from)?;
        Ok((!beams.is_empty()).then(|| Protocols {
            elixir: elixir.to_owned(),
            beams,
        }))
    }
}

/// What every host of a run shares.
pub struct Job {
    /// What to call.
    pub call: Call,
    /// The project's graph with what the call needs and the included modules resolved: what to
    /// push.
    pub plan: Plan,
    /// The application environment applied on the remote before the call.
    pub setup: AppConfig,
    /// The applications shipped, and those the server must have.
    pub apps: Apps,
    /// Whether the project's applications are started before the call.
    pub start: bool,
    /// Whether mix.exs makes them permanent (`start_permanent:`, for the run's Mix environment):
    /// one that exits then ends the call, as it ends `mix run`'s node.
    pub permanent: bool,
    /// Whether the code asks Mix (`Mix.env()`): Mix then runs on the node, as under `mix run`.
    pub uses_mix: bool,
    /// Whether Elixir's ANSI colours are on for the call (`IO.ANSI.enabled?/0`), as `mix run`
    /// has them when its stdout and stderr are terminals; off until the command says.
    pub ansi: bool,
    /// Whether the value the call returns is shown before the `System.at_exit/1` hooks it
    /// registered run, as `mix run -e 'IO.inspect(...)'` shows it: when the command prints it
    /// ([`Reporter::value_ahead`](crate::report::Reporter::value_ahead)); off until the command
    /// says.
    pub value_ahead: bool,
    /// The shipped applications whose `.app` records a compile-time config to check (none
    /// when it is not checked): only they cost the node a look.
    pub compile_env_apps: Vec<String>,
    /// The native objects among the shipped `priv/` files, checked against each server.
    pub natives: Vec<native::Object>,
    /// The closure's wire form, prepared in the background while the hosts connect.
    pub wire: WireForm,
    /// The OTP and Elixir versions Mix recorded for the shipped applications, read once for
    /// every host's version preflight.
    pub built: compat::Built,
    /// Elixir's own protocols as Mix consolidated them for the project, for a server running
    /// the Elixir that made them; `None` when Mix recorded no Elixir version or consolidated none.
    pub protocols: Option<Protocols>,
    /// Every shipped module, for the version preflight.
    shipped: Vec<Arc<Beam>>,
    /// The version preflight's verdicts, one per set of remote versions met so far.
    preflights: Mutex<Vec<(RemoteVersions, Arc<Preflight>)>>,
    /// How long reading `_build` and planning took, before any connection.
    pub planned_in: Duration,
}

impl Job {
    /// Checks everything that can be checked locally and computes the plan: the entry's syntax,
    /// the arguments, the project's build for `<env>` (`_build/<env>`, or where `build_path:`
    /// puts it), the entry's arity, the included modules; then the applications to ship with
    /// their `priv/` files, and the project's config files (as `config_use` says).
    pub fn prepare(
        build: &Build,
        arg_texts: &[String],
        config_use: ConfigUse,
        report: &Reporter,
    ) -> Result<Job, JobError> {
        let text = build.entry.as_deref().ok_or(JobError::NoEntry)?;
        let entry = plan::parse_entry(text, &build.project, &build.mix_env)
            .map_err(|e| build.entry_error(e))?;
        let args = parse_arguments(arg_texts)?;
        let phase = report.phase(Stage::Scan, "scanning _build");
        let started = Instant::now();
        let plan = Plan::build(
            &build.project,
            &build.mix_env,
            &entry,
            Some(args.len()),
            &build.include,
        )
        .map_err(|e| build.entry_error(build.include_error(e)))?;
        let call = Call::Function { entry, args };
        Job::assemble(call, plan, build, config_use, report, phase, started)
    }

    /// Whether [`Job::prepare`] will likely succeed, from the entry's and the included modules'
    /// own files: if so, the login to a host may start while it reads the whole build.
    pub fn looks_preparable(build: &Build, arg_texts: &[String]) -> bool {
        let entry = build
            .entry
            .as_deref()
            .and_then(|text| Entry::parse(text).ok());
        match (entry, parse_arguments(arg_texts)) {
            (Some(entry), Ok(args)) => Plan::looks_buildable(
                &build.project,
                &build.mix_env,
                &entry,
                Some(args.len()),
                &build.include,
            ),
            _ => false,
        }
    }

    /// Like [`Job::looks_preparable`] for [`Job::prepare_code`]: the included modules are there.
    pub fn code_looks_preparable(build: &Build) -> bool {
        Plan::includes_exist(&build.project, &build.mix_env, &build.include)
    }

    /// Like [`Job::prepare`] for Elixir `code`: what is pushed is the closure of the project's
    /// modules its text names (and of the included ones).
    pub fn prepare_code(
        build: &Build,
        code: Code,
        config_use: ConfigUse,
        report: &Reporter,
    ) -> Result<Job, JobError> {
        let phase = report.phase(Stage::Scan, "scanning _build");
        let started = Instant::now();
        let plan = code.plan(build)?;
        Job::assemble(
            Call::Code(code),
            plan,
            build,
            config_use,
            report,
            phase,
            started,
        )
    }

    /// Like [`Job::prepare`] for a session (`iex`), which calls nothing: what ships is the
    /// project's applications with what they need; only the included modules are loaded up front
    /// (a session names no code yet), everything else loads on demand.
    pub fn prepare_session(
        build: &Build,
        config_use: ConfigUse,
        report: &Reporter,
    ) -> Result<Job, JobError> {
        let phase = report.phase(Stage::Scan, "scanning _build");
        let started = Instant::now();
        let plan = Plan::for_code(&build.project, &build.mix_env, "", &build.include)
            .map_err(|e| build.include_error(e))?;
        Job::assemble(
            Call::Session,
            plan,
            build,
            config_use,
            report,
            phase,
            started,
        )
    }

    /// The rest of the preparation, once the plan is known.
    fn assemble(
        call: Call,
        plan: Plan,
        build: &Build,
        config_use: ConfigUse,
        report: &Reporter,
        phase: Phase,
        started: Instant,
    ) -> Result<Job, JobError> {
        let closure = plan.beams();
        let names: Vec<&str> = closure.iter().map(|b| b.name.as_str()).collect();
        // The application of the entry's module (for code, of the first module it names): the
        // project's own when mix.exs does not name it plainly.
        let root_app = plan
            .first_root()
            .and_then(|module| plan.graph().module(module))
            .map(|beam| project::app_of(&beam.path));
        let apps = Apps::resolve(&build.project, &build.mix_env, root_app.as_deref(), &names)?;
        let priv_files = apps::priv_files(&apps.shipped)?;
        let natives = native::objects(&build.project, &priv_files);
        let shipped = shipped_apps(&plan, &apps, priv_files);
        let shipped_beams: Vec<Arc<Beam>> = shipped
            .iter()
            .flat_map(|a| a.modules.iter().cloned())
            .collect();
        let built = compat::Built::read(&shipped_beams.iter().map(|b| &**b).collect::<Vec<_>>());
        let protocols = Protocols::of(&build.project, &build.mix_env, &plan, &built)?;
        let setup = AppConfig::collect(&build.project, &build.mix_env, config_use)?;
        let layout = Layout::of(&build.project);
        let permanent = std::fs::read_to_string(build.project.join("mix.exs"))
            .is_ok_and(|text| mix_exs::start_permanent(&text, &build.mix_env));
        for why in &setup.left_out {
            report.warning(why);
        }
        if layout.unread.contains(&"apps") {
            report.warning(&format!(
                "{}: apps: is set to something other than a plain list of atoms, which mix-remote does not evaluate: every child of the umbrella counts",
                build.project.join("mix.exs").display()
            ));
        }
        if config_use.files && layout.unread.contains(&"config_path") {
            report.warning(&format!(
                "{}: config_path is set to something other than a plain string, which mix-remote does not evaluate: it ships {} instead (--no-app-config ships none)",
                build.project.join("mix.exs").display(),
                layout.config_dir().display()
            ));
        }
        let bytes: usize = closure.iter().map(|b| wire::sent_size(b)).sum();
        let shipping = counted(apps.shipped.len(), "application");
        phase.done(match call {
            Call::Session if closure.is_empty() => format!("{shipping} to ship"),
            _ => format!(
                "closure of {}: {} modules, {} KiB; {shipping} to ship",
                call.shown(),
                closure.len(),
                bytes.div_ceil(1024),
            ),
        });
        for beam in &closure {
            report.verbose(&format!("closure: {}", display_module(&beam.name)));
        }
        report.verbose(&describe(&apps, build.start));
        if let Some(protocols) = &protocols {
            report.verbose(&format!("with the call, {}", protocols.planned().said()));
        }
        let closure: Vec<Arc<Beam>> = closure
            .iter()
            .filter_map(|beam| plan.graph().shared(&beam.name))
            .collect();
        let compile_env_apps = if setup.validate_compile_env {
            compile_env_apps(&apps)
        } else {
            Vec::new()
        };
        let callers = || mix_callers(&call, &closure, &shipped, &apps.project);
        let uses_mix = asks_mix(&call, callers());
        if let Some(who) = asks_mix_project(&call, callers(), &setup) {
            report.warning(&format!(
                "{who} calls Mix.Project, which has no project on the server: \
                 Mix.Project.config() gives Mix's defaults there (no :app, no :version)"
            ));
        }
        let wire = WireForm::start(closure, shipped);
        Ok(Job {
            call,
            plan,
            setup,
            apps,
            start: build.start,
            permanent,
            uses_mix,
            ansi: false,
            value_ahead: false,
            compile_env_apps,
            natives,
            wire,
            built,
            protocols,
            shipped: shipped_beams,
            preflights: Mutex::new(Vec::new()),
            planned_in: started.elapsed(),
        })
    }
}

/// What the version preflight says of one remote's versions.
pub struct Preflight {
    /// Of the closure: the warnings to show, or why the remote cannot load it.
    pub closure: Result<Vec<String>, Refusal>,
    /// Of the other shipped modules (they load only if called): why one of them would fail.
    pub others: Option<Refusal>,
}

impl Job {
    /// The version preflight for a remote running `versions`: computed for the first host that
    /// reports them, then shared by every other one.
    pub fn preflight(&self, versions: &RemoteVersions) -> Arc<Preflight> {
        let mut known = self.preflights.lock().expect("no preflight panics");
        if let Some((_, verdict)) = known.iter().find(|(v, _)| v == versions) {
            return Arc::clone(verdict);
        }
        let closure = self.plan.beams();
        let in_closure: HashSet<&str> = closure.iter().map(|b| b.name.as_str()).collect();
        let others: Vec<&Beam> = self
            .shipped
            .iter()
            .map(|b| &**b)
            .filter(|b| !in_closure.contains(b.name.as_str()))
            .collect();
        let verdict = Arc::new(Preflight {
            closure: compat::preflight(&closure, &self.built, versions),
            others: compat::preflight(&others, &self.built, versions).err(),
        });
        known.push((versions.clone(), Arc::clone(&verdict)));
        verdict
    }
}

/// Every shipped application with its modules (as the plan has them: consolidated protocols
/// included, shared with it) and its `priv/` files (moved there), for the wire.
fn shipped_apps(plan: &Plan, apps: &Apps, priv_files: Vec<PrivFile>) -> Vec<ShippedApp> {
    let mut shipped: Vec<ShippedApp> = apps
        .shipped
        .iter()
        .map(|app| ShippedApp {
            name: app.name.clone(),
            spec: app.spec.clone(),
            modules: app
                .modules
                .iter()
                .filter_map(|m| plan.graph().shared(m))
                .collect(),
            priv_files: Vec::new(),
        })
        .collect();
    for file in priv_files {
        if let Some(app) = shipped.iter_mut().find(|a| a.name == file.app) {
            app.priv_files.push((file.path, file.mode, file.kind));
        }
    }
    shipped
}

/// The shipped applications whose `.app` records a compile-time config (`{compile_env, ...}`,
/// as Mix writes it for `Application.compile_env/3`).
fn compile_env_apps(apps: &Apps) -> Vec<String> {
    apps.shipped
        .iter()
        .filter(|app| {
            app.spec
                .as_deref()
                .is_some_and(|spec| spec.windows(13).any(|w| w == b"{compile_env,"))
        })
        .map(|app| app.name.clone())
        .collect()
}

/// The modules whose calls of Mix count (see [`asks_mix`]): the closure's, and those of the
/// project's own applications (an application callback's `Mix.env()` runs before the call),
/// Mix tasks aside (the project's own build tools) unless one is the entry.
fn mix_callers<'a>(
    call: &Call,
    closure: &'a [Arc<Beam>],
    shipped: &'a [ShippedApp],
    project_apps: &[String],
) -> impl Iterator<Item = &'a Beam> {
    let entry = match call {
        Call::Function { entry, .. } => Some(entry.module.clone()),
        _ => None,
    };
    let own = shipped
        .iter()
        .filter(|app| project_apps.contains(&app.name))
        .flat_map(|app| app.modules.iter());
    closure
        .iter()
        .chain(own)
        .map(|beam| &**beam)
        .filter(move |beam| {
            !beam.name.starts_with("Elixir.Mix.Tasks.") || entry.as_deref() == Some(&beam.name)
        })
}

/// Whether `call` asks Mix anything (`Mix.env()`): one of its [`mix_callers`] calls one of Mix's
/// modules, or its code names one; a session always may, as under `iex -S mix`.
fn asks_mix<'a>(call: &Call, mut callers: impl Iterator<Item = &'a Beam>) -> bool {
    match call {
        Call::Session => true,
        Call::Code(code) if code.text.contains("Mix.") => true,
        _ => callers.any(|beam| beam.imports.iter().any(|m| is_mix(m))),
    }
}

/// Whether `module` is one of Mix's own (`Elixir.Mix`, `Elixir.Mix.Project`, ...).
fn is_mix(module: &str) -> bool {
    module == "Elixir.Mix" || module.starts_with("Elixir.Mix.")
}

/// What of the run calls `Mix.Project`, which has no project on the server: a config file, the
/// code, or one of its [`mix_callers`]; none if nothing does.
fn asks_mix_project<'a>(
    call: &Call,
    mut callers: impl Iterator<Item = &'a Beam>,
    setup: &AppConfig,
) -> Option<String> {
    if let Some((path, _)) = setup
        .config_files
        .iter()
        .find(|(_, bytes)| bytes.windows(12).any(|w| w == b"Mix.Project."))
    {
        return Some(path.clone());
    }
    if let Call::Code(code) = call
        && code.text.contains("Mix.Project.")
    {
        return Some(code.shown.clone());
    }
    callers
        .find(|beam| beam.imports.iter().any(|m| m == "Elixir.Mix.Project"))
        .map(|beam| display_module(&beam.name))
}

/// What `-v` says of the applications: shipped, started, expected of the server.
fn describe(apps: &Apps, start: bool) -> String {
    let from_server: Vec<&str> = apps.from_server.iter().map(|(a, _)| a.as_str()).collect();
    format!(
        "applications: shipped {}; started {}; from the server {}",
        apps.names().join(", "),
        if start {
            apps.project.join(", ")
        } else {
            "none (--no-start)".to_owned()
        },
        from_server.join(", ")
    )
}

/// `n` and `thing`, plural when `n` is not 1.
pub fn counted(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// What [`WireForm`] computes first, the items of the batch, and how long they took.
type ItemsResult = Result<(Arc<Items>, Duration), Arc<BeamError>>;
/// What [`WireForm`] computes then: the prepared closure and how long it took in all.
type WireResult = Result<(Arc<Prepared>, Duration), Arc<BeamError>>;

/// The closure's MD5s, the items' digests and the compressed batch of the shipped applications
/// (`remote/wire.rs`), computed on a thread of its own from the moment the plan is known, so
/// that the work runs while SSH connects; every host waits on the same result. The items come
/// first: a warm rerun needs no more before it sends what its spare lacks.
#[derive(Clone)]
pub struct WireForm {
    items: tokio::sync::watch::Receiver<Option<ItemsResult>>,
    prepared: tokio::sync::watch::Receiver<Option<WireResult>>,
}

impl WireForm {
    /// Starts preparing `closure` (in load order) and the shipped `apps`.
    fn start(closure: Vec<Arc<Beam>>, apps: Vec<ShippedApp>) -> WireForm {
        let (items_tx, items) = tokio::sync::watch::channel(None);
        let (prepared_tx, prepared) = tokio::sync::watch::channel(None);
        std::thread::spawn(move || {
            let started = Instant::now();
            match wire::items(&closure, Arc::from(apps)) {
                Ok(items) => {
                    let items = Arc::new(items);
                    let _ = items_tx.send(Some(Ok((Arc::clone(&items), started.elapsed()))));
                    let result = wire::prepare_all(&items)
                        .map(|prepared| (Arc::new(prepared), started.elapsed()))
                        .map_err(Arc::new);
                    let _ = prepared_tx.send(Some(result));
                }
                Err(e) => {
                    let e = Arc::new(e);
                    let _ = items_tx.send(Some(Err(Arc::clone(&e))));
                    let _ = prepared_tx.send(Some(Err(e)));
                }
            }
        });
        WireForm { items, prepared }
    }

    /// The items of the batch, once ready, and how long they took.
    pub async fn items(&self) -> ItemsResult {
        ready(self.items.clone()).await
    }

    /// The prepared closure, once ready, and how long the preparation took.
    pub async fn get(&self) -> WireResult {
        ready(self.prepared.clone()).await
    }
}

/// The value `rx` is given, once it is.
async fn ready<T: Clone>(mut rx: tokio::sync::watch::Receiver<Option<T>>) -> T {
    let ready = rx
        .wait_for(Option::is_some)
        .await
        .expect("the preparing thread sends before it ends");
    ready.as_ref().expect("waited for Some").clone()
}

fn parse_arguments(texts: &[String]) -> Result<Vec<Term>, JobError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            literal::parse(text).map_err(|error| JobError::Argument {
                index: i + 1,
                text: text.clone(),
                error,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_that_begins_by_installing_is_told_apart_from_one_that_mentions_it() {
        let script = "# Mix.install([:jason]) would fetch\nIO.puts(\"see Mix.install docs\")\n\
                      Mix.installed?()\n  Mix.install [:jason]\n";
        assert_eq!(calls_mix_install(script), Some(4));
        assert_eq!(
            calls_mix_install("Mix.install([{:req, \"~> 0.4\"}])\n"),
            Some(1)
        );
        let guarded = "unless Code.ensure_loaded?(Jason), do: Mix.install([:jason])\n";
        assert_eq!(calls_mix_install(guarded), None);
        assert_eq!(calls_mix_install("IO.inspect(Mix.installed?())\n"), None);
    }
}
