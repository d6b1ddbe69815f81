//! The remote side of `mix-remote iex`: the boot program's `iex` request (IEx on the node, after
//! the setup `run` makes, the relay its terminal), and the requests made while it runs: IEx's own
//! completion of a line (`expand`) and the interruption of an evaluation (`interrupt`).

use std::time::Duration;

use erl_dist::term::{Binary, Term};

use crate::events::Status;
use crate::remote::boot::{Request, SERVER};
use crate::remote::invoke::{self, Outcome, Ready, Setup};
use crate::remote::node::{CallError, Node, boolean, is_atom};

/// How long a completion may take before the line editor goes on without one.
const EXPAND_LIMIT: Duration = Duration::from_secs(2);
/// How long an interruption may take to be delivered.
const INTERRUPT_LIMIT: Duration = Duration::from_secs(5);

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Its input ended (Ctrl-D, the end of piped input) and IEx stopped. (A node that goes
    /// away, `System.halt()` typed in it or lost, is the session's error: how its session ended
    /// tells which.)
    Stopped,
    /// The session did not start: an application did not, a config file failed, or the
    /// compile-time config differs (see [`Outcome::not_called`]).
    NotCalled(Outcome),
    /// Applying the configuration raised, threw or exited (or IEx itself failed).
    Failed {
        /// Which of the three.
        how: Status,
        /// Formatted as Elixir formats it.
        text: String,
    },
}

/// Runs an IEx session on `node` after `setup`, with the prompt `iex(NAME)N>` and, with `ansi`,
/// IEx's colours, once the code is `ready`; returns when it ends. Its prompts reach the console
/// as reads, its output as output.
pub async fn session(
    node: &Node,
    name: &str,
    ansi: bool,
    setup: Setup<'_>,
    ready: &Ready,
) -> Result<End, CallError> {
    let args = vec![binary(name), boolean(ansi), invoke::setup_term(setup)];
    match invoke::request(node, Request::Iex, args, ready).await {
        Ok(reply) => Ok(match invoke::outcome(Request::Iex.name(), &reply)? {
            Outcome::Returned(_) | Outcome::Stopped(_) => End::Stopped,
            Outcome::Failed { how, text, .. } => End::Failed { how, text },
            not_called => End::NotCalled(not_called),
        }),
        Err(e) => Err(e),
    }
}

/// What IEx would complete a line with.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// Text to insert at the cursor (empty when there is nothing certain to add).
    pub hint: String,
    /// The choices to show when there are several, as IEx names them (`map/2`, `Registry`).
    pub entries: Vec<String>,
}

/// IEx's completion of `line` (the text before the cursor) in the session, with its variables,
/// aliases and imports; `None` when there is none or no answer came in time.
pub async fn expand(node: &Node, line: &str) -> Option<Expansion> {
    let reply = node
        .request(
            SERVER,
            Request::Expand.name(),
            vec![binary(line)],
            Some(EXPAND_LIMIT),
        )
        .await
        .ok()?;
    expansion(&reply)
}

/// `{yes | no, Hint, [Entry]}`, the texts as binaries.
fn expansion(reply: &Term) -> Option<Expansion> {
    let text = |t: &Term| match t {
        Term::Binary(b) => String::from_utf8(b.bytes.clone()).ok(),
        _ => None,
    };
    let Term::Tuple(t) = reply else { return None };
    let [kind, hint, entries] = t.elements.as_slice() else {
        return None;
    };
    let entries: Vec<String> = match entries {
        Term::List(list) => list.elements.iter().map(text).collect::<Option<_>>()?,
        _ => return None,
    };
    let found = Expansion {
        hint: text(hint)?,
        entries,
    };
    let nothing = found.hint.is_empty() && found.entries.is_empty();
    (is_atom(kind, "yes") || !found.entries.is_empty())
        .then_some(found)
        .filter(|_| !nothing)
}

/// Interrupts the session's evaluation, as IEx's break does: IEx ends it, prints
/// `** (EXIT) interrupted` and prompts again; with `newline` (the terminal echoed `^C` after the
/// evaluation's output), the node writes a newline first, in order with the session's output.
/// False when there is no session to interrupt yet (the push, the configuration or the
/// applications' start is under way).
pub async fn interrupt(node: &Node, newline: bool) -> Result<bool, CallError> {
    node.request(
        SERVER,
        Request::Interrupt.name(),
        vec![boolean(newline)],
        Some(INTERRUPT_LIMIT),
    )
    .await
    .and_then(|reply| match () {
        () if is_atom(&reply, "true") => Ok(true),
        () if is_atom(&reply, "false") => Ok(false),
        () => Err(CallError::BadRpc {
            mfa: Request::Interrupt.name().to_owned(),
            reason: format!("unexpected reply {reply}"),
        }),
    })
}

fn binary(text: &str) -> Term {
    Binary::from(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::node::{atom, tuple};
    use erl_dist::term::List;

    fn binaries(texts: &[&str]) -> Term {
        List::from(texts.iter().map(|t| binary(t)).collect::<Vec<_>>()).into()
    }

    #[test]
    fn completions_are_a_hint_or_entries() {
        let reply = |kind: &str, hint: &str, entries: &[&str]| {
            tuple(vec![atom(kind), binary(hint), binaries(entries)])
        };
        assert_eq!(
            expansion(&reply("yes", "t_map", &[])),
            Some(Expansion {
                hint: "t_map".into(),
                entries: vec![]
            })
        );
        assert_eq!(
            expansion(&reply("yes", "", &["map/2", "max/1"])),
            Some(Expansion {
                hint: String::new(),
                entries: vec!["map/2".into(), "max/1".into()]
            })
        );
        assert_eq!(expansion(&reply("no", "", &[])), None);
        assert_eq!(expansion(&reply("yes", "", &[])), None);
        assert_eq!(expansion(&atom("badrpc")), None);
    }
}
