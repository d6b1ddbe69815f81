//! Ships the applications and loads the closure in a constant number of round trips, whatever
//! their size: one request learns what the remote is and already has ([`remote`]), one sends
//! every shipped application, which the boot program's `load` writes as lib dirs in the run's
//! private directory on the server and puts on the code path, then loads the closure's modules
//! the remote lacks (a fresh node: in about eight chunks, each as soon as it is prepared; one that
//! already has some: one `code:atomic_load/1`, all or nothing; then the modules with `-on_load`,
//! which neither takes, one by one, leaves first). A closure module the remote already runs
//! with the same MD5 is not loaded again; one with another MD5 is replaced. The other modules of
//! the shipped applications load on demand from their lib dirs, as on a deployment.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use erl_dist::term::{Binary, List, Term};

use crate::build::beam::Beam;
use crate::build::compat::RemoteVersions;
use crate::build::entry::display_module;
use crate::build::native;
use crate::remote::boot::{self, CANNOT_CREATE, NO_TEMP_DIR, RUN_DIR_PREFIX, Request, SERVER};
use crate::remote::node::dist::ATTACHED;
use crate::remote::node::{CallError, Node, atom, failure_text, is_atom, tuple};
use crate::remote::wire::{Prepared, Wire};

/// Why the closure could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The call itself failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The remote loader refused modules; nothing of the batch was loaded.
    #[error("the remote refused to load {0}")]
    Refused(String),
    /// The node raised, threw or exited while it staged or loaded the batch: what it said.
    #[error("the remote node failed to load the code: {0}")]
    Failed(String),
    /// The node found no directory to write the run's files in, or could not create the run's
    /// own there: what it said.
    #[error("the remote node has no directory to write the run's files in: {0}")]
    NoRunDir(String),
    /// The remote's description of itself is not what the boot program sends.
    #[error("unexpected reply from the remote node: {0}")]
    Unexpected(String),
    /// Checked against what the run took for granted: the node lacks this application.
    #[error("the remote node lacks the application {0}")]
    Missing(String),
    /// Checked against what the run took for granted: these closure modules are not loaded as
    /// assumed; nothing was written or loaded.
    #[error("the remote node does not have {0} loaded as assumed")]
    Stale(String),
}

/// What the remote node is and already has, learned with the run's first request: its versions
/// (to check that it can run the project's code), its machine (for native code), the
/// applications it lacks of those the shipped ones need, and the MD5 of every module it has
/// loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Its OTP, ERTS and Elixir versions.
    pub versions: RemoteVersions,
    /// Its ERTS's architecture and word size.
    pub server: native::Server,
    /// Of the applications asked about, those it does not have (`code:lib_dir/1` fails).
    pub missing_apps: Vec<String>,
    /// Every loaded module (as an atom: `Elixir.MyApp.Worker`) and its MD5.
    pub loaded: HashMap<String, [u8; 16]>,
}

/// Asks the remote node what it is and has, and which of `apps` it lacks: one request.
pub async fn remote(node: &Node, apps: &[&str], timeout: Duration) -> Result<Remote, PushError> {
    let apps: Vec<Term> = apps.iter().map(|a| atom(a)).collect();
    let args = vec![List::from(apps).into()];
    let reply = node
        .request_before_output(SERVER, Request::Info.name(), args, None, Some(timeout))
        .await?;
    parse_remote(&reply).ok_or_else(|| PushError::Unexpected(reply.to_string()))
}

/// `{OtpRelease, Erts, Elixir, [{Module, Md5}], Architecture, Wordsize, [MissingApp]}` as the
/// boot program's `info` answers.
pub(crate) fn parse_remote(reply: &Term) -> Option<Remote> {
    let text = |t: &Term| match t {
        Term::Binary(b) => String::from_utf8(b.bytes.clone()).ok(),
        _ => None,
    };
    let Term::Tuple(t) = reply else { return None };
    let [
        otp,
        erts,
        elixir,
        Term::List(loaded),
        arch,
        Term::FixInteger(wordsize),
        Term::List(missing),
    ] = t.elements.as_slice()
    else {
        return None;
    };
    let missing_apps = missing
        .elements
        .iter()
        .map(|a| match a {
            Term::Atom(a) => Some(a.name.clone()),
            _ => None,
        })
        .collect::<Option<_>>()?;
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
        server: native::Server {
            triple: text(arch)?,
            wordsize: u8::try_from(wordsize.value).ok()?,
        },
        missing_apps,
        loaded,
    })
}

/// What was pushed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// Closure modules loaded at once (as atoms), in load order.
    pub modules: Vec<String>,
    /// Bytes sent (the compressed batch, as on the wire).
    pub bytes: usize,
    /// Closure modules the remote already had with the same MD5.
    pub skipped: usize,
    /// Applications shipped as lib dirs.
    pub apps: usize,
    /// Modules in those lib dirs (they load on demand).
    pub shipped_modules: usize,
    /// Directories of earlier runs that did not end cleanly, removed from the server.
    pub stale_removed: u64,
}

/// Ships the applications and loads the closure modules `remote` does not already have: one
/// request. With `assumed`, `remote` was not asked but told ahead (a warm session's spare): the
/// node first checks that it has those applications and every closure module not sent loaded
/// with its MD5, and refuses ([`PushError::Missing`], [`PushError::Stale`]) before writing
/// anything.
pub async fn push(
    node: &Node,
    prepared: &Prepared,
    apps: usize,
    remote: &Remote,
    assumed: Option<&[&str]>,
    timeout: Duration,
) -> Result<Pushed, PushError> {
    let load = Load::plan(
        prepared,
        remote,
        assumed.unwrap_or_default(),
        assumed.is_some(),
    );
    let mut args = vec![Binary::from(&ATTACHED[..]).into()];
    args.extend(load.args.iter().cloned());
    let batch = Arc::clone(&prepared.batch);
    let reply = node
        .request_before_output(
            SERVER,
            Request::Load.name(),
            args,
            Some(batch),
            Some(timeout),
        )
        .await;
    match reply {
        Err(CallError::BadRpc { reason, .. }) => Err(load_failed(reason)),
        reply => load.pushed(&reply?, prepared, apps),
    }
}

/// What the boot program's `load` is given besides the batch, and what the reply is read
/// against: the same whether it goes as a request or on a cold node's stdin ([`batch_head`],
/// [`Load::frame`]).
#[derive(Debug)]
pub struct Load {
    /// `eager, on_load, apps, expected` (see templates/boot.exs, `load_request`).
    args: Vec<Term>,
    /// The closure modules sent to be loaded, in load order.
    missing: Vec<String>,
    /// Closure modules the remote already had with the same MD5.
    skipped: usize,
}

impl Load {
    /// Loads the closure modules `remote` lacks. The node first checks that it has the
    /// applications `needed` and, with `expected`, every closure module not sent loaded with its
    /// MD5 (`remote` was told ahead, not asked: a warm session's spare).
    pub fn plan(prepared: &Prepared, remote: &Remote, needed: &[&str], expected: bool) -> Load {
        let modules: Vec<(&Beam, &Wire)> =
            prepared.modules.iter().map(|(b, w)| (&**b, w)).collect();
        let missing = missing(&modules, remote);
        let atoms = |keep: &dyn Fn(&Beam) -> bool| -> Term {
            let names: Vec<Term> = missing
                .iter()
                .filter(|(beam, _)| keep(beam))
                .map(|(beam, _)| atom(&beam.name))
                .collect();
            List::from(names).into()
        };
        let needed: Vec<Term> = needed.iter().map(|app| atom(app)).collect();
        let expected: Vec<Term> = match expected {
            true => modules
                .iter()
                .map(|(beam, wire)| {
                    tuple(vec![atom(&beam.name), Binary::from(&wire.md5[..]).into()])
                })
                .collect(),
            false => Vec::new(),
        };
        Load {
            args: vec![
                atoms(&|_| true),
                atoms(&|beam| beam.on_load),
                List::from(needed).into(),
                List::from(expected).into(),
            ],
            missing: missing.iter().map(|(beam, _)| beam.name.clone()).collect(),
            skipped: modules.len() - missing.len(),
        }
    }

    /// The stdin frame of a cold node (see templates/boot.exs, `read_stdin`) that loads the
    /// batch [`batch_head`] began: `load:` and the arguments in the external term format.
    pub fn frame(&self) -> Vec<u8> {
        let mut load = b"load:".to_vec();
        Term::from(List::from(self.args.clone()))
            .encode(&mut load)
            .expect("encoding into memory");
        boot::frame(&load)
    }

    /// What was pushed, from the node's `reply` to the load of `prepared` with `apps`
    /// applications.
    pub fn pushed(
        &self,
        reply: &Term,
        prepared: &Prepared,
        apps: usize,
    ) -> Result<Pushed, PushError> {
        if let Some(refusal) = refusal(reply) {
            return Err(refusal);
        }
        if let Term::Tuple(t) = reply
            && let [tag, reason] = t.elements.as_slice()
            && is_atom(tag, "badrpc")
        {
            return Err(load_failed(failure_text(reason)));
        }
        let stale_removed = match loaded(reply) {
            Ok(stale) => stale,
            Err(refused) => return Err(refused_error(&refused)),
        };
        Ok(Pushed {
            modules: self.missing.clone(),
            bytes: prepared.batch.len(),
            skipped: self.skipped,
            apps,
            shipped_modules: prepared.shipped_modules,
            stale_removed,
        })
    }
}

/// What goes on a cold node's stdin (see templates/boot.exs, `read_stdin`) before the tool knows
/// what the node has: the frame `batch:<count>:<[closure, on_load, env, setup] in the external
/// term format>`, which the batch's `count` parts follow, a frame each ([`Prepared::parts`]). The
/// node puts `env`, evaluates the config.exs of `setup` (the call's, see `invoke::setup_term`),
/// and as each part comes writes its applications and prepares its closure modules for loading;
/// [`Load::frame`] then says which to load.
pub fn batch_head(prepared: &Prepared, env: Term, setup: Term) -> Vec<u8> {
    let names = |keep: &dyn Fn(&Beam) -> bool| -> Term {
        let names: Vec<Term> = prepared
            .modules
            .iter()
            .filter(|(beam, _)| keep(beam))
            .map(|(beam, _)| atom(&beam.name))
            .collect();
        List::from(names).into()
    };
    let args = vec![names(&|_| true), names(&|beam| beam.on_load), env, setup];
    let mut head = format!("batch:{}:", prepared.parts.len()).into_bytes();
    Term::from(List::from(args))
        .encode(&mut head)
        .expect("encoding into memory");
    boot::frame(&head)
}

/// The modules of `closure` the remote lacks, or has with another MD5 (they are replaced).
fn missing<'m>(closure: &[(&'m Beam, &'m Wire)], remote: &Remote) -> Vec<(&'m Beam, &'m Wire)> {
    closure
        .iter()
        .filter(|(beam, wire)| remote.loaded.get(&beam.name) != Some(&wire.md5))
        .copied()
        .collect()
}

/// `{missing, [App]}` or `{stale, [Module]}`: what the node found other than assumed.
fn refusal(reply: &Term) -> Option<PushError> {
    let Term::Tuple(t) = reply else { return None };
    let [tag, Term::List(list)] = t.elements.as_slice() else {
        return None;
    };
    let names: Vec<&str> = list
        .elements
        .iter()
        .filter_map(|t| match t {
            Term::Atom(a) => Some(a.name.as_str()),
            _ => None,
        })
        .collect();
    if is_atom(tag, "missing") {
        Some(PushError::Missing(names.first()?.to_string()))
    } else if is_atom(tag, "stale") {
        let modules: Vec<String> = names.iter().map(|m| display_module(m)).collect();
        Some(PushError::Stale(modules.join(", ")))
    } else {
        None
    }
}

/// The error for a load the node failed with `said` (see [`failure_text`]): for want of a
/// directory to write the run's files in (templates/run_dirs.exs, `tmp_dir`; templates/boot.exs,
/// `run_dir`), or for another reason.
fn load_failed(said: String) -> PushError {
    match said.strip_prefix("(RuntimeError) ") {
        Some(message)
            if message == NO_TEMP_DIR
                || message.starts_with(CANNOT_CREATE) && message.contains(RUN_DIR_PREFIX) =>
        {
            PushError::NoRunDir(message.to_owned())
        }
        _ => PushError::Failed(said),
    }
}

/// The error for modules the loader refused, named as users write them.
fn refused_error(refused: &[(String, String)]) -> PushError {
    let list: Vec<String> = refused
        .iter()
        .map(|(m, why)| format!("{} ({why})", display_module(m)))
        .collect();
    PushError::Refused(list.join(", "))
}

/// `{ok, StaleRemoved}`: the number; `{error, [{Module, What}]}`: the refused modules and why
/// (`What` an atom, or the formatted reason of a failed `-on_load`).
fn loaded(reply: &Term) -> Result<u64, Vec<(String, String)>> {
    let odd = || vec![("?".to_owned(), reply.to_string())];
    let Term::Tuple(t) = reply else {
        return Err(odd());
    };
    let list = match t.elements.as_slice() {
        [tag, Term::FixInteger(n)] if is_atom(tag, "ok") => {
            return u64::try_from(n.value).map_err(|_| odd());
        }
        [tag, Term::List(list)] if is_atom(tag, "error") => list,
        _ => return Err(odd()),
    };
    Err(list
        .elements
        .iter()
        .map(|entry| match entry {
            Term::Tuple(t) => match t.elements.as_slice() {
                [Term::Atom(m), Term::Atom(why)] => (m.name.clone(), why.name.clone()),
                [Term::Atom(m), Term::Binary(why)] => (
                    m.name.clone(),
                    String::from_utf8_lossy(&why.bytes).into_owned(),
                ),
                [Term::Atom(m), other] => (m.name.clone(), other.to_string()),
                _ => ("?".into(), entry.to_string()),
            },
            _ => ("?".into(), entry.to_string()),
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use erl_dist::term::FixInteger;

    #[test]
    fn reads_load_replies() {
        let ok = tuple(vec![atom("ok"), FixInteger::from(2).into()]);
        assert_eq!(loaded(&ok), Ok(2));
        let reply = tuple(vec![
            atom("error"),
            List::from(vec![
                tuple(vec![atom("m"), atom("on_load_not_allowed")]),
                tuple(vec![
                    atom("n"),
                    Binary::from(&b"its -on_load function returned :error"[..]).into(),
                ]),
            ])
            .into(),
        ]);
        assert_eq!(
            loaded(&reply),
            Err(vec![
                ("m".into(), "on_load_not_allowed".into()),
                ("n".into(), "its -on_load function returned :error".into())
            ])
        );
        assert!(loaded(&atom("ok")).is_err());
    }

    /// What the boot program's `catch` gives for `raise message` (a `RuntimeError`).
    pub(crate) fn raised(message: &str) -> Term {
        let exception = erl_dist::term::Map::from([
            (atom("__struct__"), atom("Elixir.RuntimeError")),
            (atom("message"), Binary::from(message.as_bytes()).into()),
            (atom("__exception__"), atom("true")),
        ]);
        tuple(vec![atom("error"), exception.into()])
    }

    #[test]
    fn a_failed_load_says_what_the_node_raised_and_tells_a_missing_run_directory() {
        let load = Load {
            args: Vec::new(),
            missing: Vec::new(),
            skipped: 0,
        };
        let (batch, parts) = crate::remote::wire::batch_of(&[]);
        let prepared = Prepared {
            modules: Vec::new(),
            batch,
            parts,
            shipped_modules: 0,
        };
        let failed = |reason: Term| {
            let reply = tuple(vec![atom("badrpc"), reason]);
            load.pushed(&reply, &prepared, 0).unwrap_err().to_string()
        };
        assert_eq!(
            failed(raised("no writable temporary directory")),
            "the remote node has no directory to write the run's files in: no writable temporary \
             directory"
        );
        let cannot = "cannot create /srv/tmp/mix-remote-run-7-0badcafe-1f: no space left on device";
        assert_eq!(
            failed(raised(cannot)),
            format!("the remote node has no directory to write the run's files in: {cannot}")
        );
        assert_eq!(
            failed(raised("cannot create /srv/app.db: eacces")),
            "the remote node failed to load the code: (RuntimeError) cannot create /srv/app.db: \
             eacces"
        );
        assert_eq!(
            failed(tuple(vec![atom("exit"), atom("killed")])),
            "the remote node failed to load the code: {'exit','killed'}"
        );
    }

    /// An OTP 25 x86_64 server that has loaded nothing and lacks nothing.
    pub(crate) fn bare_remote() -> Remote {
        Remote {
            versions: RemoteVersions {
                otp_release: "25".into(),
                erts: "13.1.5".into(),
                elixir: "1.14.0".into(),
            },
            server: native::Server {
                triple: "x86_64-pc-linux-gnu".into(),
                wordsize: 8,
            },
            missing_apps: Vec::new(),
            loaded: HashMap::new(),
        }
    }

    fn module(name: &str, md5: u8) -> (Beam, Wire) {
        let beam = Beam {
            name: name.into(),
            path: format!("/b/{name}.beam").into(),
            ..Beam::default()
        };
        let wire = Wire {
            md5: [md5; 16],
            size: 1,
        };
        (beam, wire)
    }

    #[test]
    fn the_stdin_batch_names_the_closure_and_its_parts_and_the_load_frame_what_to_load() {
        let (mut a, a_wire) = module("a", 1);
        a.on_load = true;
        let (b, b_wire) = module("b", 2);
        let (batch, parts) = crate::remote::wire::batch_of(&[b"xyz".to_vec(), b"z".to_vec()]);
        let prepared = Prepared {
            modules: vec![(Arc::new(a), a_wire), (Arc::new(b), b_wire)],
            batch,
            parts,
            shipped_modules: 2,
        };
        let framed = |tag: &str, terms: Vec<Term>| {
            let mut bytes = tag.as_bytes().to_vec();
            Term::from(List::from(terms)).encode(&mut bytes).unwrap();
            let mut frame = u32::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
            frame.extend(bytes);
            frame
        };
        let names = |n: &[&str]| -> Term {
            List::from(n.iter().map(|m| atom(m)).collect::<Vec<_>>()).into()
        };
        let head = batch_head(&prepared, atom("env"), atom("setup"));
        let args = vec![
            names(&["a", "b"]),
            names(&["a"]),
            atom("env"),
            atom("setup"),
        ];
        // Two parts follow the head.
        assert_eq!(head, framed("batch:2:", args));

        let remote = Remote {
            loaded: HashMap::from([("b".into(), [2; 16])]),
            ..bare_remote()
        };
        let frame = Load::plan(&prepared, &remote, &["ssl"], false).frame();
        let args = vec![names(&["a"]), names(&["a"]), names(&["ssl"]), names(&[])];
        assert_eq!(frame, framed("load:", args));
    }

    #[test]
    fn sends_only_what_the_remote_lacks_or_has_otherwise() {
        let modules = [module("same", 1), module("changed", 2), module("new", 3)];
        let closure: Vec<(&Beam, &Wire)> = modules.iter().map(|(b, w)| (b, w)).collect();
        let remote = Remote {
            loaded: HashMap::from([("same".into(), [1; 16]), ("changed".into(), [9; 16])]),
            ..bare_remote()
        };
        let names: Vec<&str> = missing(&closure, &remote)
            .iter()
            .map(|(b, _)| b.name.as_str())
            .collect();
        assert_eq!(names, ["changed", "new"]);
    }

    #[test]
    fn reads_what_the_node_found_other_than_assumed() {
        let list = |names: &[&str]| -> Term {
            List::from(names.iter().map(|n| atom(n)).collect::<Vec<_>>()).into()
        };
        assert!(matches!(
            refusal(&tuple(vec![atom("missing"), list(&["ssl", "crypto"])])),
            Some(PushError::Missing(app)) if app == "ssl"
        ));
        assert!(matches!(
            refusal(&tuple(vec![atom("stale"), list(&["Elixir.Demo.Worker", "m"])])),
            Some(PushError::Stale(modules)) if modules == "Demo.Worker, :m"
        ));
        assert!(refusal(&tuple(vec![atom("ok"), FixInteger::from(0).into()])).is_none());
        assert!(refusal(&tuple(vec![atom("error"), list(&[])])).is_none());
    }

    /// What the boot program's `info` answers (and a node says of itself as it boots): OTP 26,
    /// ERTS 14.2.5, Elixir 1.16.2, `lists` loaded with MD5 [7; 16], `arch`, 64-bit, `missing`.
    pub(crate) fn info_term(arch: &str, missing: &[&str]) -> Term {
        let text = |s: &str| -> Term { Binary::from(s.as_bytes()).into() };
        tuple(vec![
            text("26"),
            text("14.2.5"),
            text("1.16.2"),
            List::from(vec![tuple(vec![
                atom("lists"),
                Binary::from(&[7u8; 16][..]).into(),
            ])])
            .into(),
            text(arch),
            FixInteger::from(8).into(),
            List::from(missing.iter().map(|app| atom(app)).collect::<Vec<_>>()).into(),
        ])
    }

    #[test]
    fn reads_what_the_remote_says_of_itself() {
        let text = |s: &str| -> Term { Binary::from(s.as_bytes()).into() };
        let reply = info_term("aarch64-unknown-linux-musl", &["ssl"]);
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
        assert_eq!(remote.server.triple, "aarch64-unknown-linux-musl");
        assert_eq!(remote.server.wordsize, 8);
        assert_eq!(remote.missing_apps, ["ssl"]);
        let short_md5 = tuple(vec![
            text("26"),
            text("14"),
            text("1.16"),
            List::from(vec![tuple(vec![
                atom("m"),
                Binary::from(&[1u8][..]).into(),
            ])])
            .into(),
            text("x86_64-pc-linux-gnu"),
            FixInteger::from(8).into(),
            List::from(Vec::<Term>::new()).into(),
        ]);
        assert_eq!(parse_remote(&short_md5), None);
        assert_eq!(parse_remote(&atom("ok")), None);
    }
}
