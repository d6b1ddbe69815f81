//! The call of the entry on the remote: its arguments and the application environment go with
//! the boot program's `run` request, and the reply says how the function ended.

use erl_dist::term::{Binary, List, Map, Term};

use crate::build::app_config::AppConfig;
use crate::build::entry::Entry;
use crate::events::Status;
use crate::remote::boot::{Request, SERVER};
use crate::remote::node::{CallError, Node, atom, is_atom, tuple};

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
    },
}

/// Calls the entry on the remote with `args`; output it prints reaches our IO server meanwhile.
pub async fn invoke(
    node: &Node,
    entry: &Entry,
    args: Vec<Term>,
    setup: &AppConfig,
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
    let unexpected = || CallError::BadRpc {
        mfa: run.into(),
        reason: format!("unexpected reply {reply}"),
    };
    let Term::Tuple(t) = &reply else {
        return Err(unexpected());
    };
    match t.elements.as_slice() {
        [tag, Term::Binary(text)] if is_atom(tag, "ok") => Ok(Outcome::Returned(
            String::from_utf8_lossy(&text.bytes).into_owned(),
        )),
        [tag, Term::Atom(kind), Term::Binary(text), missing] if is_atom(tag, "failed") => {
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
            })
        }
        _ => Err(unexpected()),
    }
}

/// `setup` as the boot program's `run` takes it:
/// `%{apps: [binary], config: [{path, binary}], env: binary}`.
fn setup_term(setup: &AppConfig) -> Term {
    let binary = |b: &[u8]| Term::from(Binary::from(b.to_vec()));
    let apps: Vec<Term> = setup
        .app_specs
        .iter()
        .map(|s| binary(s.as_bytes()))
        .collect();
    let files: Vec<Term> = setup
        .config_files
        .iter()
        .map(|(path, bytes)| tuple(vec![binary(path.as_bytes()), binary(bytes)]))
        .collect();
    Map::from([
        (atom("apps"), List::from(apps).into()),
        (atom("config"), List::from(files).into()),
        (atom("env"), binary(setup.env.as_bytes())),
    ])
    .into()
}
