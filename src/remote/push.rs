//! Loads the closure into the remote node in a constant number of round trips, whatever its size:
//! one request learns what the remote is and already has ([`remote`]), one loads every module it
//! lacks (the boot program's `load`: one `code:atomic_load/1`, all or nothing, then the modules
//! with `-on_load`, which atomic_load refuses, one by one, leaves first). Modules the remote
//! already runs with the same MD5 are not sent; one with another MD5 is replaced.

use std::collections::HashMap;
use std::time::Duration;

use erl_dist::term::{Binary, List, Term};

use crate::build::beam::Beam;
use crate::build::compat::RemoteVersions;
use crate::build::entry::display_module;
use crate::remote::boot::{Request, SERVER};
use crate::remote::node::{CallError, Node, atom, is_atom};
use crate::remote::wire::{self, Prepared, Wire};

/// Why the closure could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The call itself failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The remote loader refused modules; nothing of the batch was loaded.
    #[error("the remote refused to load {0}")]
    Refused(String),
    /// The remote's description of itself is not what the boot program sends.
    #[error("unexpected reply from the remote node: {0}")]
    Unexpected(String),
}

/// What the remote node is and already has, learned with the run's first request: its versions
/// (to check that it can run the project's code) and the MD5 of every module it has loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Its OTP, ERTS and Elixir versions.
    pub versions: RemoteVersions,
    /// Every loaded module (as an atom: `Elixir.MyApp.Worker`) and its MD5.
    pub loaded: HashMap<String, [u8; 16]>,
}

/// Asks the remote node what it is and has: one request.
pub async fn remote(node: &Node, timeout: Duration) -> Result<Remote, PushError> {
    let reply = node
        .request(SERVER, Request::Info.name(), Vec::new(), Some(timeout))
        .await?;
    parse_remote(&reply).ok_or_else(|| PushError::Unexpected(reply.to_string()))
}

/// `{OtpRelease, Erts, Elixir, [{Module, Md5}]}` as the boot program's `info` answers.
fn parse_remote(reply: &Term) -> Option<Remote> {
    let text = |t: &Term| match t {
        Term::Binary(b) => String::from_utf8(b.bytes.clone()).ok(),
        _ => None,
    };
    let Term::Tuple(t) = reply else { return None };
    let [otp, erts, elixir, Term::List(loaded)] = t.elements.as_slice() else {
        return None;
    };
    let loaded = loaded
        .elements
        .iter()
        .map(|entry| match entry {
            Term::Tuple(t) => match t.elements.as_slice() {
                [Term::Atom(m), Term::Binary(md5)] => {
                    Some((m.name.clone(), md5.bytes.as_slice().try_into().ok()?))
                }
                _ => None,
            },
            _ => None,
        })
        .collect::<Option<_>>()?;
    Some(Remote {
        versions: RemoteVersions {
            otp_release: text(otp)?,
            erts: text(erts)?,
            elixir: text(elixir)?,
        },
        loaded,
    })
}

/// What was pushed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Modules sent and loaded (as atoms), in load order.
    pub modules: Vec<String>,
    /// Bytes of code sent (compressed, as on the wire).
    pub bytes: usize,
    /// Modules of the closure the remote already had with the same MD5.
    pub skipped: usize,
}

/// Loads the modules of the closure that `remote` does not already have: one request, or none
/// if it has them all.
pub async fn push(
    node: &Node,
    closure: &Prepared,
    remote: &Remote,
    timeout: Duration,
) -> Result<Pushed, PushError> {
    let modules: Vec<(&Beam, &Wire)> = closure.modules.iter().map(|(b, w)| (b, w)).collect();
    let missing = missing(&modules, remote);
    if missing.is_empty() {
        return Ok(Pushed {
            modules: Vec::new(),
            bytes: 0,
            skipped: modules.len(),
        });
    }
    let subset;
    let batch = if missing.len() == modules.len() {
        &closure.batch
    } else {
        subset = wire::batch(&missing);
        &subset
    };
    let pushed = Pushed {
        modules: missing.iter().map(|(beam, _)| beam.name.clone()).collect(),
        bytes: batch.len(),
        skipped: modules.len() - missing.len(),
    };
    let on_load: Vec<Term> = missing
        .iter()
        .filter(|(beam, _)| beam.on_load)
        .map(|(beam, _)| atom(&beam.name))
        .collect();
    let args = vec![
        Binary::from(batch.clone()).into(),
        List::from(on_load).into(),
    ];
    let reply = node
        .request(SERVER, Request::Load.name(), args, Some(timeout))
        .await?;
    match refusals(&reply) {
        None => Ok(pushed),
        Some(refused) => Err(refused_error(&refused)),
    }
}

/// The modules of `closure` the remote lacks, or has with another MD5 (they are replaced).
fn missing<'m>(closure: &[(&'m Beam, &'m Wire)], remote: &Remote) -> Vec<(&'m Beam, &'m Wire)> {
    closure
        .iter()
        .filter(|(beam, wire)| remote.loaded.get(&beam.name) != Some(&wire.md5))
        .copied()
        .collect()
}

/// The error for modules the loader refused, named as users write them.
fn refused_error(refused: &[(String, String)]) -> PushError {
    let list: Vec<String> = refused
        .iter()
        .map(|(m, why)| format!("{} ({why})", display_module(m)))
        .collect();
    PushError::Refused(list.join(", "))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::node::tuple;

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

    fn module(name: &str, md5: u8) -> (Beam, Wire) {
        let beam = Beam {
            name: name.into(),
            path: format!("/b/{name}.beam").into(),
            ..Beam::default()
        };
        let wire = Wire {
            md5: [md5; 16],
            bytes: vec![md5],
        };
        (beam, wire)
    }

    #[test]
    fn sends_only_what_the_remote_lacks_or_has_otherwise() {
        let modules = [module("same", 1), module("changed", 2), module("new", 3)];
        let closure: Vec<(&Beam, &Wire)> = modules.iter().map(|(b, w)| (b, w)).collect();
        let remote = Remote {
            versions: RemoteVersions {
                otp_release: "25".into(),
                erts: "13.1.5".into(),
                elixir: "1.14.0".into(),
            },
            loaded: HashMap::from([("same".into(), [1; 16]), ("changed".into(), [9; 16])]),
        };
        let names: Vec<&str> = missing(&closure, &remote)
            .iter()
            .map(|(b, _)| b.name.as_str())
            .collect();
        assert_eq!(names, ["changed", "new"]);
    }

    #[test]
    fn reads_what_the_remote_says_of_itself() {
        let text = |s: &str| -> Term { Binary::from(s.as_bytes()).into() };
        let reply = tuple(vec![
            text("26"),
            text("14.2.5"),
            text("1.16.2"),
            List::from(vec![tuple(vec![
                atom("lists"),
                Binary::from(&[7u8; 16][..]).into(),
            ])])
            .into(),
        ]);
        let remote = parse_remote(&reply).unwrap();
        let versions = &remote.versions;
        assert_eq!(
            (
                versions.otp_release.as_str(),
                versions.erts.as_str(),
                versions.elixir.as_str()
            ),
            ("26", "14.2.5", "1.16.2")
        );
        assert_eq!(remote.loaded, HashMap::from([("lists".into(), [7; 16])]));
        let short_md5 = tuple(vec![
            text("26"),
            text("14"),
            text("1.16"),
            List::from(vec![tuple(vec![
                atom("m"),
                Binary::from(&[1u8][..]).into(),
            ])])
            .into(),
        ]);
        assert_eq!(parse_remote(&short_md5), None);
        assert_eq!(parse_remote(&atom("ok")), None);
    }
}
