//! The call on the remote: an entry's arguments (the boot program's `run` request) or the code
//! to evaluate (its `eval` request) go with the application environment, and the reply says how
//! the function or code ended.

use erl_dist::term::{Binary, List, Map, Term};

use crate::build::app_config::AppConfig;
use crate::remote::boot::{Request, SERVER};
use crate::remote::job::{Call, Code};
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
}

/// Makes `call` on the remote after applying `setup`; what it prints reaches the console
/// meanwhile, all of it before the reply.
pub async fn invoke(node: &Node, call: &Call, setup: &AppConfig) -> Result<Outcome, CallError> {
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
    };
    let name = request.name();
    let reply = node.request(SERVER, name, args, None).await?;
    let unexpected = || CallError::BadRpc {
        mfa: name.into(),
        reason: format!("unexpected reply {reply}"),
    };
    let Term::Tuple(t) = &reply else {
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
        _ => Err(unexpected()),
    }
}

/// The arguments of the boot program's `eval`: `code, file, argv, setup`, the texts as
/// binaries.
fn code_terms(code: &Code, setup: &AppConfig) -> Vec<Term> {
    let binary = |s: &str| Term::from(Binary::from(s.as_bytes()));
    let argv: Vec<Term> = code.argv.iter().map(|a| binary(a)).collect();
    vec![
        binary(&code.text),
        binary(&code.file),
        List::from(argv).into(),
        setup_term(setup),
    ]
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
