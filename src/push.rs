//! Loads the closure into the remote node: one `code:atomic_load/1` call for the whole batch
//! (all or nothing), then the `-on_load` modules, which atomic_load refuses, one by one in
//! dependency order.

use std::time::Duration;

use erl_dist::term::{Binary, FixInteger, List, Term};

use crate::beam::Beam;
use crate::node::{CallError, Node, atom, is_atom, tuple};

/// Why the closure could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The call itself failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The remote loader refused modules; nothing of the batch was loaded.
    #[error("the remote refused to load {0}")]
    Refused(String),
}

/// What was pushed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Modules loaded.
    pub modules: usize,
    /// Bytes of BEAM code sent.
    pub bytes: usize,
}

/// Loads `modules` (dependencies first) on the remote node.
pub async fn push(node: &Node, modules: &[&Beam], timeout: Duration) -> Result<Pushed, PushError> {
    let pushed = Pushed {
        modules: modules.len(),
        bytes: modules.iter().map(|b| b.bytes.len()).sum(),
    };
    let reply = atomic_load(node, modules, timeout).await?;
    let mut refused = match refusals(&reply) {
        None => return Ok(pushed),
        Some(refused) => refused,
    };
    let on_load: Vec<String> = refused
        .iter()
        .filter(|(_, why)| why == "on_load_not_allowed")
        .map(|(m, _)| m.clone())
        .collect();
    if on_load.len() != refused.len() {
        refused.retain(|(_, why)| why != "on_load_not_allowed");
        return Err(refused_error(&refused));
    }
    let (later, first): (Vec<&Beam>, Vec<&Beam>) =
        modules.iter().partition(|b| on_load.contains(&b.name));
    if let Some(refused) = refusals(&atomic_load(node, &first, timeout).await?) {
        return Err(refused_error(&refused));
    }
    for beam in later {
        let args = vec![atom(&beam.name), charlist(beam), binary(beam)];
        let reply = node
            .call("code", "load_binary", args, Some(timeout))
            .await?;
        if !matches!(&reply, Term::Tuple(t) if t.elements.first().is_some_and(|e| is_atom(e, "module")))
        {
            return Err(PushError::Refused(format!(
                "{} ({reply})",
                display_module(&beam.name)
            )));
        }
    }
    Ok(pushed)
}

/// The error for modules the loader refused, named as users write them.
fn refused_error(refused: &[(String, String)]) -> PushError {
    let list: Vec<String> = refused
        .iter()
        .map(|(m, why)| format!("{} ({why})", display_module(m)))
        .collect();
    PushError::Refused(list.join(", "))
}

async fn atomic_load(node: &Node, modules: &[&Beam], timeout: Duration) -> Result<Term, CallError> {
    let batch: Vec<Term> = modules
        .iter()
        .map(|b| tuple(vec![atom(&b.name), charlist(b), binary(b)]))
        .collect();
    node.call(
        "code",
        "atomic_load",
        vec![List::from(batch).into()],
        Some(timeout),
    )
    .await
}

/// `None` for `ok`; the refused modules and reasons for `{error, [{Module, What}]}`.
fn refusals(reply: &Term) -> Option<Vec<(String, String)>> {
    if is_atom(reply, "ok") {
        return None;
    }
    let list = match reply {
        Term::Tuple(t) => match t.elements.as_slice() {
            [tag, Term::List(list)] if is_atom(tag, "error") => list,
            _ => return Some(vec![("?".into(), reply.to_string())]),
        },
        _ => return Some(vec![("?".into(), reply.to_string())]),
    };
    Some(
        list.elements
            .iter()
            .map(|entry| match entry {
                Term::Tuple(t) => match t.elements.as_slice() {
                    [Term::Atom(m), Term::Atom(why)] => (m.name.clone(), why.name.clone()),
                    [Term::Atom(m), other] => (m.name.clone(), other.to_string()),
                    _ => ("?".into(), entry.to_string()),
                },
                _ => ("?".into(), entry.to_string()),
            })
            .collect(),
    )
}

/// `Elixir.MyApp.Worker` as users write it: `MyApp.Worker`; Erlang modules as `:name`.
pub fn display_module(name: &str) -> String {
    match name.strip_prefix("Elixir.") {
        Some(alias) => alias.to_owned(),
        None => format!(":{name}"),
    }
}

/// The local path, as the file name the remote loader records for the module.
fn charlist(beam: &Beam) -> Term {
    let path = beam.path.to_string_lossy();
    List::from(
        path.chars()
            .map(|c| FixInteger::from(c as i32).into())
            .collect::<Vec<Term>>(),
    )
    .into()
}

fn binary(beam: &Beam) -> Term {
    Binary::from(beam.bytes.clone()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_atomic_load_replies() {
        assert_eq!(refusals(&atom("ok")), None);
        let reply = tuple(vec![
            atom("error"),
            List::from(vec![tuple(vec![atom("m"), atom("on_load_not_allowed")])]).into(),
        ]);
        assert_eq!(
            refusals(&reply),
            Some(vec![("m".into(), "on_load_not_allowed".into())])
        );
    }

    #[test]
    fn shows_modules_as_users_write_them() {
        assert_eq!(display_module("Elixir.MyApp.Worker"), "MyApp.Worker");
        assert_eq!(display_module("demo_erl"), ":demo_erl");
    }
}
