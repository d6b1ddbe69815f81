//! The call of the entry on the remote: its arguments, the configuration and which applications
//! to start go with the boot program's `run` request, and the reply says how the function ended
//! (or that an application did not start).

use erl_dist::term::{Binary, List, Map, Term};

use crate::build::app_config::AppConfig;
use crate::build::entry::Entry;
use crate::remote::boot::{Request, SERVER};
use crate::remote::job::Job;
use crate::remote::node::{CallError, Node, atom, is_atom, tuple};

/// How the remote call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The function returned; its value as `inspect/2` shows it.
    Returned(String),
    /// It raised, threw or exited.
    Raised {
        /// Formatted as Elixir formats exceptions, with the stacktrace.
        text: String,
        /// For an `undef` of a module the remote does not have: that module's atom.
        missing_module: Option<String>,
    },
    /// An application failed to start, so the function was not called.
    NotStarted {
        /// The application that failed.
        app: String,
        /// Why, as `Application.format_error/1` says it (what `mix run` prints).
        reason: String,
    },
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
}

impl Setup<'_> {
    /// What `job` does before the call: its configuration, its project's applications, started
    /// unless `--no-start`.
    pub fn of(job: &Job) -> Setup<'_> {
        Setup {
            config: &job.setup,
            apps: &job.apps.project,
            start: job.start,
        }
    }
}

/// Calls the entry on the remote with `args`; output it prints reaches our IO server meanwhile.
pub async fn invoke(
    node: &Node,
    entry: &Entry,
    args: Vec<Term>,
    setup: Setup<'_>,
) -> Result<Outcome, CallError> {
    let call_args = vec![
        atom(&entry.module),
        atom(&entry.function),
        List::from(args).into(),
        setup_term(setup),
    ];
    // The boot program runs it and formats the result (templates/boot.exs).
    let run = Request::Run.name();
    let reply = node.request(SERVER, run, call_args, None).await?;
    outcome(run, &reply)
}

/// How the boot program's `request` (`run`, or another made the same way) ended, from its reply:
/// `{ok, Text}`, `{raised, Text, MissingModule}` or `{not_started, App, Reason}`.
pub fn outcome(request: &str, reply: &Term) -> Result<Outcome, CallError> {
    let unexpected = || CallError::BadRpc {
        mfa: request.into(),
        reason: format!("unexpected reply {reply}"),
    };
    let Term::Tuple(t) = reply else {
        return Err(unexpected());
    };
    match t.elements.as_slice() {
        [tag, Term::Binary(text)] if is_atom(tag, "ok") => Ok(Outcome::Returned(
            String::from_utf8_lossy(&text.bytes).into_owned(),
        )),
        [tag, Term::Binary(text), missing] if is_atom(tag, "raised") => Ok(Outcome::Raised {
            text: String::from_utf8_lossy(&text.bytes).into_owned(),
            missing_module: match missing {
                Term::Atom(a) if a.name != "nil" => Some(a.name.clone()),
                _ => None,
            },
        }),
        [tag, Term::Atom(app), Term::Binary(reason)] if is_atom(tag, "not_started") => {
            Ok(Outcome::NotStarted {
                app: app.name.clone(),
                reason: String::from_utf8_lossy(&reason.bytes).into_owned(),
            })
        }
        _ => Err(unexpected()),
    }
}

/// `setup` as the boot program's `run` (and `iex`) takes it:
/// `%{config: [{path, binary}], env: binary, apps: [atom], start: boolean}`.
pub fn setup_term(setup: Setup<'_>) -> Term {
    let binary = |b: &[u8]| Term::from(Binary::from(b.to_vec()));
    let files: Vec<Term> = setup
        .config
        .config_files
        .iter()
        .map(|(path, bytes)| tuple(vec![binary(path.as_bytes()), binary(bytes)]))
        .collect();
    let apps: Vec<Term> = setup.apps.iter().map(|a| atom(a)).collect();
    Map::from([
        (atom("config"), List::from(files).into()),
        (atom("env"), binary(setup.config.env.as_bytes())),
        (atom("apps"), List::from(apps).into()),
        (
            atom("start"),
            atom(if setup.start { "true" } else { "false" }),
        ),
    ])
    .into()
}
