//! The call on the remote: an entry's arguments (the boot program's `run` request) or the code
//! to evaluate (its `eval` request) go with the configuration and which applications to start,
//! and the reply says how the function or code ended (or that an application did not start).
//! `iex`'s session (`remote/iex.rs`) takes the same setup and reply.

use erl_dist::term::{Binary, List, Map, Term};
use tokio::sync::watch;

use crate::build::app_config::AppConfig;
use crate::config::HostSettings;
use crate::events::Status;
use crate::remote::boot::{AFTER_LOAD, Request, SERVER};
use crate::remote::job::{Call, Code, Job, Protocols};
use crate::remote::node::{CallError, Node, atom, boolean, is_atom, tuple};

/// How the remote call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The function returned; its value as `inspect/2` shows it.
    Returned(String),
    /// It raised, threw or exited.
    Failed {
        /// Which of the three: [`Status::Raised`], [`Status::Threw`] or [`Status::Exited`].
        how: Status,
        /// Formatted as Elixir formats exceptions, with the stacktrace.
        text: String,
        /// For an `undef` of a module the remote does not have: that module's atom.
        missing_module: Option<String>,
        /// The status `mix run` would exit with: 1, or a Mix exception's (`Mix.raise/2`'s
        /// `exit_status:`, 0..255), as Mix's command line ends with it.
        status: u8,
    },
    /// It ended itself with a status, as Elixir's command line reads the exits `:normal` and
    /// `:shutdown` (0) and `{:shutdown, status}`, or halted the node with status 0 (see
    /// `session::run_host`): what `mix run` would exit with.
    Stopped(u8),
    /// An application failed to start, so the function was not called.
    NotStarted {
        /// The application that failed.
        app: String,
        /// Why, as `Application.format_error/1` says it (what `mix run` prints).
        reason: String,
    },
    /// A config file raised, threw or exited as it was evaluated, so the function was not
    /// called.
    ConfigFailed {
        /// The file: `config/config.exs` (or a file it imports) or `config/runtime.exs`.
        file: String,
        /// The failure as Elixir formats it, the stacktrace naming the project's files; empty
        /// for an exit that ends the run with a status (`exit(:normal)`, `exit({:shutdown,
        /// n})`), of which `mix run` says nothing.
        text: String,
        /// The status `mix run` would exit with: 1, a Mix exception's (`Mix.raise/2`'s
        /// `exit_status:`, 0..255), or an exit's, as Mix's command line ends with it.
        status: u8,
    },
    /// An application's compile-time config differs from what the config gives it on the
    /// server (Elixir said how, among the function's output), so the function was not called.
    CompileEnvDiffers {
        /// The application.
        app: String,
    },
}

/// How the boot program's own frames name their file (`boot.exs:LINE`): never a config file.
const BOOT_SOURCE: &str = "boot.exs:";

impl Outcome {
    /// Why the code was not called, as one line (`on_host`: " on HOST", or empty): an
    /// application that did not start (Mix's own words), a config file that failed (where, and
    /// the failure's first line), a compile-time config that differs; none if it was called.
    pub fn not_called(&self, on_host: &str) -> Option<String> {
        match self {
            Outcome::NotStarted { app, reason } => Some(format!(
                "could not start application {app}{on_host}: {reason}"
            )),
            Outcome::ConfigFailed { file, text, status } => {
                let mut lines = text.lines();
                let first = lines.next().unwrap_or_default();
                // The failure's place in the project's config: its first frame in a config file
                // (not the boot program's own, through which the file was evaluated).
                let at = lines
                    .filter_map(|l| l.trim().split(": ").next())
                    .find(|frame| {
                        !frame.starts_with('(')
                            && !frame.starts_with(BOOT_SOURCE)
                            && frame.contains(".exs:")
                    });
                let at = match at {
                    Some(frame) => frame.to_owned(),
                    // config.exs may have imported the file that failed.
                    None if file.ends_with("/config.exs") => {
                        format!("{file} (or a file it imports)")
                    }
                    None => file.clone(),
                };
                // An exit that ends the run with a status (`exit({:shutdown, 3})`), of which
                // `mix run` says nothing, has no text.
                Some(match text.is_empty() {
                    true => format!("{at} stopped the run with status {status}{on_host}"),
                    false => format!("{at} failed{on_host}: {first}"),
                })
            }
            Outcome::CompileEnvDiffers { app } => Some(format!(
                "application {app} was compiled with another config than it has{on_host} \
                 (Elixir's message says what differs): recompile with that config, or pass \
                 --no-validate-compile-env"
            )),
            Outcome::Returned(_) | Outcome::Failed { .. } | Outcome::Stopped(_) => None,
        }
    }

    /// What follows [`Outcome::not_called`]'s line, as `mix run` prints it below the same first
    /// line: the rest of a config file's failure (the message's further lines, Elixir's hints,
    /// the stack trace); empty otherwise.
    pub fn not_called_more(&self) -> &str {
        match self {
            Outcome::ConfigFailed { text, .. } => text.split_once('\n').map_or("", |(_, r)| r),
            _ => "",
        }
    }
}

/// What the remote does before the call.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// The configuration files and the Mix environment.
    pub config: &'a AppConfig,
    /// The project's applications, in the order to start them.
    pub apps: &'a [String],
    /// Start them (and their dependencies) as `mix run` does; false: only load them.
    pub start: bool,
    /// Whether an exit of one of them ends the call ([`Job::permanent`]).
    pub permanent: bool,
    /// MIX_ENV on the node: the Mix environment (mix-remote.yaml refuses it in `remote_env`).
    pub mix_env: &'a str,
    /// MIX_TARGET on the node: the Mix target, unless the host's `remote_env` sets it.
    pub mix_target: &'a str,
    /// Start Mix (set to the Mix environment) before the call: the code asks it.
    pub mix: bool,
    /// Elixir's ANSI colours on for the call ([`Job::ansi`]).
    pub ansi: bool,
    /// Send the value ahead of the `System.at_exit/1` hooks ([`Job::value_ahead`]).
    pub value_ahead: bool,
    /// The call is a script, which the node compiles: it loads Elixir's and Erlang's compilers
    /// ahead, beside the rest.
    pub script: bool,
    /// The applications whose compile-time config is checked (none: no check).
    pub compile_env_apps: &'a [String],
    /// Every application of the project's build, shipped or not ([`crate::build::apps::Apps::built`]).
    pub built_apps: &'a [String],
    /// Elixir's protocols consolidated for the project ([`Job::protocols`]): only the call's
    /// setup carries them, not the one a cold node is given as it boots.
    pub protocols: Option<&'a Protocols>,
}

impl<'a> Setup<'a> {
    /// What `job` does on `host` before the call: its configuration, its project's
    /// applications, started unless `--no-start`.
    pub fn of(job: &'a Job, host: &'a HostSettings) -> Setup<'a> {
        Setup {
            config: &job.setup,
            apps: &job.apps.project,
            start: job.start,
            permanent: job.permanent,
            mix_env: &job.setup.env,
            mix_target: host
                .remote_env
                .get("MIX_TARGET")
                .map_or(job.setup.target.as_str(), String::as_str),
            mix: job.uses_mix,
            ansi: job.ansi,
            value_ahead: job.value_ahead,
            script: job.call.is_script(),
            compile_env_apps: &job.compile_env_apps,
            built_apps: &job.apps.built,
            protocols: job.protocols.as_ref(),
        }
    }
}

/// Whether the job's code is on the node as the work on it starts: already, or once the load
/// under way is done (the batch sent on the node's stdin, or a `load` request sent ahead), which
/// the tool has not heard yet. Then the work's request goes at once and the node holds it until
/// that load is done: a round trip sooner than after hearing the node's `mix-remote:loaded` or
/// the load's reply.
#[derive(Debug, Clone)]
pub struct Ready(Option<watch::Receiver<bool>>);

impl Ready {
    /// The code is loaded.
    pub fn now() -> Ready {
        Ready(None)
    }

    /// The code is loading; the push says it is done (with `true`) on the returned sender.
    pub fn after_load() -> (watch::Sender<bool>, Ready) {
        let (pushed, ready) = watch::channel(false);
        (pushed, Ready(Some(ready)))
    }

    /// Returns once the push is done; never, if it failed (the run then ends with its error).
    pub async fn pushed(&self) {
        if let Some(ready) = &self.0
            && ready.clone().wait_for(|&pushed| pushed).await.is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

/// Makes the boot program's `request` with `args`; held by the node until its load is done if
/// `ready` says the code is loading still.
pub async fn request(
    node: &Node,
    request: Request,
    args: Vec<Term>,
    ready: &Ready,
) -> Result<Term, CallError> {
    let (op, args) = match ready.0 {
        None => (request.name(), args),
        Some(_) => (
            AFTER_LOAD,
            vec![atom(request.name()), List::from(args).into()],
        ),
    };
    node.request(SERVER, op, args, None).await
}

/// Makes `call` on the remote after applying `setup`, once the code is `ready`; what it prints
/// reaches the console meanwhile, all of it before the reply. A session is not made here but by
/// `remote::iex`.
pub async fn invoke(
    node: &Node,
    call: &Call,
    setup: Setup<'_>,
    ready: &Ready,
) -> Result<Outcome, CallError> {
    // The boot program runs it and formats the result (templates/boot.exs).
    let (request, args) = match call {
        Call::Function { entry, args } => (
            Request::Run,
            vec![
                atom(&entry.module),
                atom(&entry.function),
                List::from(args.clone()).into(),
                setup_term(setup),
            ],
        ),
        Call::Code(code) => (Request::Eval, code_terms(code, setup)),
        Call::Session => unreachable!("a session is run by remote::iex::session"),
    };
    let reply = self::request(node, request, args, ready).await?;
    outcome(request.name(), &reply)
}

/// How the boot program's `request` (`run`, `eval`, `iex`) ended, from its reply: `{ok, Text}`,
/// `{failed, Kind, Text, MissingModule}` (a Mix exception's with the status Mix exits with after
/// it: `{failed, Kind, Text, nil, Status}`), `{stopped, Status}`, or why the code was not called:
/// `{not_started, App, Reason}`, `{config_failed, File, Text}` (a Mix exception's with its
/// status, when not 1: `{config_failed, File, Text, Status}`), `{compile_env_differs, App}`
/// (`not_loaded`: the batch it waited for did not load).
pub fn outcome(request: &str, reply: &Term) -> Result<Outcome, CallError> {
    let unexpected = || CallError::BadRpc {
        mfa: request.into(),
        reason: format!("unexpected reply {reply}"),
    };
    if is_atom(reply, "not_loaded") {
        return Err(CallError::BadRpc {
            mfa: request.into(),
            reason: "the batch sent on the node's stdin did not load".into(),
        });
    }
    let Term::Tuple(t) = reply else {
        return Err(unexpected());
    };
    match t.elements.as_slice() {
        [tag, Term::Binary(text)] if is_atom(tag, "ok") => Ok(Outcome::Returned(
            String::from_utf8_lossy(&text.bytes).into_owned(),
        )),
        [
            tag,
            Term::Atom(kind),
            Term::Binary(text),
            missing,
            rest @ ..,
        ] if is_atom(tag, "failed") && rest.len() <= 1 => {
            let status = match rest {
                [] => 1,
                [Term::FixInteger(status)] => {
                    u8::try_from(status.value).map_err(|_| unexpected())?
                }
                _ => return Err(unexpected()),
            };
            Ok(Outcome::Failed {
                how: match kind.name.as_str() {
                    "throw" => Status::Threw,
                    "exit" => Status::Exited,
                    _ => Status::Raised,
                },
                text: String::from_utf8_lossy(&text.bytes).into_owned(),
                missing_module: match missing {
                    Term::Atom(a) if a.name != "nil" => Some(a.name.clone()),
                    _ => None,
                },
                status,
            })
        }
        [tag, Term::FixInteger(status)] if is_atom(tag, "stopped") => u8::try_from(status.value)
            .map(Outcome::Stopped)
            .map_err(|_| unexpected()),
        [tag, Term::Atom(app), Term::Binary(reason)] if is_atom(tag, "not_started") => {
            Ok(Outcome::NotStarted {
                app: app.name.clone(),
                reason: String::from_utf8_lossy(&reason.bytes).into_owned(),
            })
        }
        [tag, Term::Binary(file), Term::Binary(text), rest @ ..]
            if is_atom(tag, "config_failed") && rest.len() <= 1 =>
        {
            let status = match rest {
                [] => 1,
                [Term::FixInteger(status)] => {
                    u8::try_from(status.value).map_err(|_| unexpected())?
                }
                _ => return Err(unexpected()),
            };
            Ok(Outcome::ConfigFailed {
                file: String::from_utf8_lossy(&file.bytes).into_owned(),
                text: String::from_utf8_lossy(&text.bytes).into_owned(),
                status,
            })
        }
        [tag, Term::Atom(app)] if is_atom(tag, "compile_env_differs") => {
            Ok(Outcome::CompileEnvDiffers {
                app: app.name.clone(),
            })
        }
        _ => Err(unexpected()),
    }
}

/// The arguments of the boot program's `eval`: `code, file, argv, setup`, the texts as
/// binaries.
fn code_terms(code: &Code, setup: Setup<'_>) -> Vec<Term> {
    let binary = |s: &str| Term::from(Binary::from(s.as_bytes()));
    let argv: Vec<Term> = code.argv.iter().map(|a| binary(a)).collect();
    vec![
        binary(&code.text),
        binary(&code.file),
        List::from(argv).into(),
        setup_term(setup),
    ]
}

/// `setup` as the boot program's `run`, `eval` and `iex` take it:
/// `%{config: [{path, binary}], env: binary, apps: [atom], start: boolean, permanent: boolean,
/// mix_env: binary, mix_target: binary, mix: boolean, ansi: boolean, value_ahead: boolean,
/// script: boolean, compile_env_apps: [atom], built_apps: [atom], check_configured: boolean}`, and `protocols:
/// {elixir, [{module, path, beam}]}` when it has them.
pub fn setup_term(setup: Setup<'_>) -> Term {
    let binary = |b: &[u8]| Term::from(Binary::from(b.to_vec()));
    let files: Vec<Term> = setup
        .config
        .config_files
        .iter()
        .map(|(path, bytes)| tuple(vec![binary(path.as_bytes()), binary(bytes)]))
        .collect();
    let apps: Vec<Term> = setup.apps.iter().map(|a| atom(a)).collect();
    let compile_env_apps: Vec<Term> = setup.compile_env_apps.iter().map(|a| atom(a)).collect();
    let built_apps: Vec<Term> = setup.built_apps.iter().map(|a| atom(a)).collect();
    let mut setup_map = Map::from([
        (atom("config"), List::from(files).into()),
        (atom("env"), binary(setup.config.env.as_bytes())),
        (atom("apps"), List::from(apps).into()),
        (atom("start"), boolean(setup.start)),
        (atom("permanent"), boolean(setup.permanent)),
        (atom("mix_env"), binary(setup.mix_env.as_bytes())),
        (atom("mix_target"), binary(setup.mix_target.as_bytes())),
        (atom("mix"), boolean(setup.mix)),
        (atom("ansi"), boolean(setup.ansi)),
        (atom("value_ahead"), boolean(setup.value_ahead)),
        (atom("script"), boolean(setup.script)),
        (
            atom("compile_env_apps"),
            List::from(compile_env_apps).into(),
        ),
        (atom("built_apps"), List::from(built_apps).into()),
        (
            atom("check_configured"),
            boolean(setup.config.check_configured),
        ),
    ]);
    if let Some(protocols) = setup.protocols {
        let beams: Vec<Term> = protocols
            .beams
            .iter()
            .map(|(module, path, beam)| {
                let path = path.as_os_str().as_encoded_bytes();
                tuple(vec![atom(module), binary(path), binary(beam)])
            })
            .collect();
        let both = tuple(vec![
            binary(protocols.elixir.as_bytes()),
            List::from(beams).into(),
        ]);
        setup_map.map.insert(atom("protocols"), both);
    }
    setup_map.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::term::FixInteger;

    fn binary(text: &str) -> Term {
        Binary::from(text.as_bytes()).into()
    }

    #[test]
    fn a_config_that_failed_is_named_where_it_failed_and_not_as_the_call() {
        let reply = tuple(vec![
            atom("config_failed"),
            binary("config/runtime.exs"),
            binary(
                "** (RuntimeError) boom\n    (elixir 1.15.0) lib/config/reader.ex:92: Config.Reader.read!/2\n    config/prod.exs:4: (file)\n",
            ),
        ]);
        let ended = outcome("run", &reply).unwrap();
        assert_eq!(
            ended.not_called(" on db-1").as_deref(),
            Some("config/prod.exs:4 failed on db-1: ** (RuntimeError) boom")
        );
        // Without a frame in a config file (Elixir 1.14 gives none), the file evaluated.
        let reply = tuple(vec![
            atom("config_failed"),
            binary("config/config.exs"),
            binary(
                "** (RuntimeError) boom\n    (stdlib 4.2) erl_eval.erl:744: :erl_eval.do_apply/7\n",
            ),
        ]);
        let ended = outcome("run", &reply).unwrap();
        assert_eq!(
            ended.not_called("").as_deref(),
            Some("config/config.exs (or a file it imports) failed: ** (RuntimeError) boom")
        );
        // Nor is the boot program's own frame, through which the file was evaluated.
        let reply = tuple(vec![
            atom("config_failed"),
            binary("config/runtime.exs"),
            binary(
                "** (RuntimeError) boom\n    boot.exs:760: :mix_remote_boot.config_file_read/5\n",
            ),
        ]);
        let ended = outcome("run", &reply).unwrap();
        assert_eq!(
            ended.not_called("").as_deref(),
            Some("config/runtime.exs failed: ** (RuntimeError) boom")
        );
        // A Mix exception's with the status Mix exits with after it.
        let reply = tuple(vec![
            atom("config_failed"),
            binary("config/runtime.exs"),
            binary("** (Mix) boom"),
            FixInteger::from(0).into(),
        ]);
        assert!(matches!(
            outcome("run", &reply).unwrap(),
            Outcome::ConfigFailed { status: 0, .. }
        ));
        let reply = tuple(vec![atom("compile_env_differs"), atom("shop")]);
        let why = outcome("run", &reply).unwrap().not_called("").unwrap();
        assert!(
            why.starts_with("application shop was compiled with another config than it has (")
                && why.ends_with("--no-validate-compile-env"),
            "{why}"
        );
        let returned = outcome("run", &tuple(vec![atom("ok"), binary(":ok")])).unwrap();
        assert_eq!(returned.not_called(""), None);
    }

    #[test]
    fn a_failure_ends_with_1_or_the_status_a_mix_exception_gives() {
        let status = |reply: Vec<Term>| match outcome("run", &tuple(reply)) {
            Ok(Outcome::Failed { status, .. }) => Ok(status),
            other => Err(format!("{other:?}")),
        };
        let failed = || vec![atom("error"), binary("** (Mix) boom"), atom("nil")];
        assert_eq!(status([vec![atom("failed")], failed()].concat()), Ok(1));
        for n in [0, 3, 255] {
            let reply = [
                vec![atom("failed")],
                failed(),
                vec![FixInteger::from(n).into()],
            ];
            assert_eq!(status(reply.concat()), Ok(n as u8));
        }
        let reply = [
            vec![atom("failed")],
            failed(),
            vec![FixInteger::from(256).into()],
        ];
        assert!(status(reply.concat()).is_err());
    }
}
