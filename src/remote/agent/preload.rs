//! What a warm session's spare node holds before a run claims it: the batch the previous run
//! shipped, loaded ahead (its applications written, its closure loaded), so that the next run
//! sends only what changed. A batch (see `remote/wire.rs`) is cut into items, each application's
//! `.app` text, modules and `priv/` files and each loose module, and each item has a digest of
//! the bytes that travel: [`Digests`]. A run then sends a batch holding only the items whose
//! digest differs from what the spare was given, and the closure modules the spare has not
//! loaded; every application stays named in it, so that the node's list of shipped applications
//! is complete. The run takes its own items' digests before it compresses its batch
//! (`wire::items`); the agent reads those of the batch it is handed from its bytes ([`digests`]),
//! alike.

use std::collections::HashSet;

use erl_dist::term::{Binary, List, Term};

use crate::build::beam::BeamError;
use crate::build::entry::display_module;
use crate::remote::boot;
use crate::remote::node::{atom, is_atom, tuple};
use crate::remote::push::Remote;
pub use crate::remote::wire::Digests;
use crate::remote::wire::{self, Items, Prepared, digest, item};

/// The items of `batch` (a list of compressed terms as `remote/wire.rs` makes it) and their
/// digests; `None` if it is not that.
pub fn digests(batch: &[u8]) -> Option<Digests> {
    let mut digests = Digests::new();
    items(batch, |key, bytes| {
        digests.insert(key, digest(bytes));
    })?;
    Some(digests)
}

/// Hands `each` the key of every item of `batch` and the bytes its digest covers; `None` if the
/// batch is not as `remote/wire.rs` makes it.
fn items(batch: &[u8], mut each: impl FnMut(String, &[&[u8]])) -> Option<()> {
    let (apps, loose) = parts(batch)?;
    for app in &apps {
        let App {
            name: app,
            spec,
            modules,
            files,
        } = app_of(app)?;
        each(item::spec(app), &[spec]);
        for module in modules {
            let (name, bytes) = module_of(module)?;
            each(item::module(app, name), &[bytes]);
        }
        for file in files {
            let (key, mode, bytes) = priv_of(app, file)?;
            each(key, &[&mode, bytes]);
        }
    }
    for module in &loose {
        let (name, bytes) = loose_of(module)?;
        each(item::loose(name), &[bytes]);
    }
    Some(())
}

/// An item a node given `had` holds that a batch of the items `now` no longer has (a module, a
/// `priv/` file, an empty `priv/` directory, or an application the build dropped; a directory
/// that holds files now is one it no longer has empty), as a person would name it; `None` if
/// there is none. What a batch leaves out stays on a node given an earlier one: such a node
/// cannot serve a run of that batch as a fresh node would.
pub fn removed(had: &Digests, now: &Digests) -> Option<String> {
    had.keys()
        .find(|key| !now.contains_key(*key))
        .map(|key| shown(key))
}

/// An item's key (see [`Digests`]) as a person would name it.
fn shown(key: &str) -> String {
    let words: Vec<&str> = key.splitn(3, ' ').collect();
    match words.as_slice() {
        ["spec", app] => format!("application {app}"),
        ["module", _, module] | ["loose", module] => format!("module {}", display_module(module)),
        ["priv", app, path] => format!("{app}'s priv/{path}"),
        ["privdir", app, ""] => format!("{app}'s empty priv/"),
        ["privdir", app, path] => format!("{app}'s empty priv/{path}/"),
        _ => key.to_owned(),
    }
}

/// A batch of only what a node given `had`, which says of itself `remote`, lacks of `items`: the
/// items whose digest differs, and the closure modules it has not loaded as they are now.
pub fn trimmed(items: &Items, had: &Digests, remote: &Remote) -> Result<Prepared, BeamError> {
    let load: HashSet<&str> = items
        .modules
        .iter()
        .filter(|(beam, wire)| remote.loaded.get(&beam.name) != Some(&wire.md5))
        .map(|(beam, _)| beam.name.as_str())
        .collect();
    wire::subset(items, |key, module| {
        had.get(key) != items.digests.get(key) || module.is_some_and(|m| load.contains(m))
    })
}

/// What a run hands the agent for the next spare: `[batch, eager, on_load]` as the boot
/// program's `load` request takes them, in the external term format. Closure modules with an
/// `-on_load` are not loaded ahead (only written): their `-on_load` (a NIF's loading, say) runs
/// in the run that needs them, after its environment is set, as in a cold run.
pub fn encode(prepared: &Prepared) -> Vec<u8> {
    let eager: Vec<Term> = prepared
        .modules
        .iter()
        .filter(|(beam, _)| !beam.on_load)
        .map(|(beam, _)| atom(&beam.name))
        .collect();
    let term: Term = List::from(vec![
        Binary::from(prepared.batch.to_vec()).into(),
        List::from(eager).into(),
        // No `-on_load` module is loaded ahead.
        List::from(Vec::<Term>::new()).into(),
    ])
    .into();
    let mut bytes = Vec::new();
    term.encode(&mut bytes).expect("encoding into memory");
    bytes
}

/// A run's batch ready for spare nodes: the frame that preloads it (see templates/boot.exs) and
/// the digests of its items.
#[derive(Debug)]
pub struct Preload {
    /// `preload:` and what [`encode`] made, as a stdin frame, written to a spare's stdin before
    /// the run's identities.
    pub frame: Vec<u8>,
    /// What the batch holds.
    pub digests: Digests,
}

impl Preload {
    /// Whether this batch has every item of `earlier` (nothing given before it would be left
    /// over on a node given both).
    pub fn covers(&self, earlier: &Preload) -> bool {
        earlier
            .digests
            .keys()
            .all(|key| self.digests.contains_key(key))
    }

    /// The preload of what [`encode`] made; `None` if it is not that.
    pub fn new(encoded: &[u8]) -> Option<Preload> {
        let Ok(Term::List(list)) = Term::decode(encoded) else {
            return None;
        };
        let Some(Term::Binary(batch)) = list.elements.first() else {
            return None;
        };
        Some(Preload {
            digests: digests(&batch.bytes)?,
            frame: boot::frame(&[b"preload:", encoded].concat()),
        })
    }
}

/// What a spare node said of itself once ready (`mix-remote:info:HEX`, see templates/boot.exs):
/// whether the last batch it was given ahead loaded, and what `info` would answer (no
/// application asked about). `None` if it is not that.
pub fn known(hex: &str) -> Option<(bool, Remote)> {
    let Some(Term::Tuple(t)) = boot::term_of_hex(hex) else {
        return None;
    };
    match t.elements.as_slice() {
        [worked, info] => Some((
            is_atom(worked, "true"),
            crate::remote::push::parse_remote(info)?,
        )),
        _ => None,
    }
}

/// The applications and loose modules of every part of `batch`, an application that comes in
/// several parts as one (its modules and files together, its `.app` text from the part that has
/// one).
fn parts(batch: &[u8]) -> Option<(Vec<Term>, Vec<Term>)> {
    let Ok(Term::List(parts)) = Term::decode(batch) else {
        return None;
    };
    // Each application's name, `.app` text, modules and files, in the order they first come.
    let mut apps: Vec<(Term, Term, Vec<Term>, Vec<Term>)> = Vec::new();
    let mut loose = Vec::new();
    for part in parts.elements {
        let Term::Binary(part) = part else {
            return None;
        };
        let Ok(Term::Tuple(t)) = Term::decode(&part.bytes[..]) else {
            return None;
        };
        let [Term::List(part_apps), Term::List(part_loose)] =
            <[Term; 2]>::try_from(t.elements).ok()?
        else {
            return None;
        };
        for app in part_apps.elements {
            let Term::Tuple(app) = app else { return None };
            let [name, spec, Term::List(modules), Term::List(files)] =
                <[Term; 4]>::try_from(app.elements).ok()?
            else {
                return None;
            };
            match apps.iter_mut().find(|(known, ..)| *known == name) {
                Some((_, known_spec, known_modules, known_files)) => {
                    if !matches!(&spec, Term::Binary(b) if b.bytes.is_empty()) {
                        *known_spec = spec;
                    }
                    known_modules.extend(modules.elements);
                    known_files.extend(files.elements);
                }
                None => apps.push((name, spec, modules.elements, files.elements)),
            }
        }
        loose.extend(part_loose.elements);
    }
    let apps = apps
        .into_iter()
        .map(|(name, spec, modules, files)| {
            tuple(vec![
                name,
                spec,
                List::from(modules).into(),
                List::from(files).into(),
            ])
        })
        .collect();
    Some((apps, loose))
}

/// An application of the batch, as `remote/wire.rs` writes it: `{name, spec, modules, files}`.
struct App<'a> {
    name: &'a str,
    spec: &'a [u8],
    modules: &'a [Term],
    files: &'a [Term],
}

fn app_of(term: &Term) -> Option<App<'_>> {
    let Term::Tuple(t) = term else { return None };
    match t.elements.as_slice() {
        [
            Term::Atom(name),
            Term::Binary(spec),
            Term::List(modules),
            Term::List(files),
        ] => Some(App {
            name: &name.name,
            spec: &spec.bytes,
            modules: &modules.elements,
            files: &files.elements,
        }),
        _ => None,
    }
}

/// A module outside the shipped applications: `{name, file, bytes}`.
fn loose_of(term: &Term) -> Option<(&str, &[u8])> {
    let Term::Tuple(t) = term else { return None };
    match t.elements.as_slice() {
        [Term::Atom(name), _, Term::Binary(bytes)] => Some((&name.name, &bytes.bytes)),
        _ => None,
    }
}

fn module_of(term: &Term) -> Option<(&str, &[u8])> {
    let Term::Tuple(t) = term else { return None };
    match t.elements.as_slice() {
        [Term::Atom(name), Term::Binary(bytes)] => Some((&name.name, &bytes.bytes)),
        _ => None,
    }
}

/// An entry of the `priv/` of `app`: `{path, mode, bytes}` for a file, `{path, mode}` for a
/// directory (see `remote/wire.rs`). Its key (see [`Digests`]), its mode's bytes and its
/// contents (none for a directory), which its digest covers.
fn priv_of<'a>(app: &str, term: &'a Term) -> Option<(String, [u8; 4], &'a [u8])> {
    let Term::Tuple(t) = term else { return None };
    let path = |path: &Binary| String::from_utf8_lossy(&path.bytes).into_owned();
    match t.elements.as_slice() {
        [
            Term::Binary(file),
            Term::FixInteger(mode),
            Term::Binary(bytes),
        ] => Some((
            item::priv_file(app, &path(file)),
            mode.value.to_be_bytes(),
            &bytes.bytes,
        )),
        [Term::Binary(dir), Term::FixInteger(mode)] => Some((
            item::priv_dir(app, &path(dir)),
            mode.value.to_be_bytes(),
            &[],
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;
    use std::sync::Arc;

    use erl_dist::term::FixInteger;

    use crate::build::apps::PrivKind;
    use crate::build::beam::{self, Beam};
    use crate::remote::wire::{PrivEntry, ShippedApp};

    /// `term` in the external term format, zlib-compressed as `binary_to_term/1` reads it (as
    /// `remote/wire.rs` makes batches).
    fn compressed(term: &Term) -> Vec<u8> {
        let mut plain = Vec::new();
        term.encode(&mut plain).expect("encoding into memory");
        let body = &plain[1..];
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(4));
        zlib.write_all(body).expect("compressing into memory");
        let zipped = zlib.finish().expect("compressing into memory");
        let mut out = Vec::with_capacity(zipped.len() + 6);
        out.push(131);
        out.push(80);
        out.extend_from_slice(
            &u32::try_from(body.len())
                .expect("a batch under 4 GiB")
                .to_be_bytes(),
        );
        out.extend_from_slice(&zipped);
        out
    }

    /// A batch of one part: the application `demo`.
    fn batch(worker: &[u8], spec: &str) -> Vec<u8> {
        wire::batch_of(&[part(worker, spec)]).0.to_vec()
    }

    fn part(worker: &[u8], spec: &str) -> Vec<u8> {
        let binary = |b: &[u8]| -> Term { Binary::from(b.to_vec()).into() };
        let module = |name: &str, bytes: &[u8]| tuple(vec![atom(name), binary(bytes)]);
        let app = tuple(vec![
            atom("demo"),
            binary(spec.as_bytes()),
            List::from(vec![
                module("Elixir.Demo.Money", b"money"),
                module("Elixir.Demo.Worker", worker),
            ])
            .into(),
            List::from(vec![tuple(vec![
                binary(b"data.txt"),
                FixInteger::from(0o644).into(),
                binary(b"data"),
            ])])
            .into(),
        ]);
        compressed(&tuple(vec![
            List::from(vec![app]).into(),
            List::from(Vec::<Term>::new()).into(),
        ]))
    }

    /// The module of tests/vectors/md5 that Elixir compiled, a chunk of `extra`'s bytes added:
    /// another version of it, whose digest differs where its loader MD5 does not.
    fn worker(extra: &[u8]) -> Arc<Beam> {
        let mut bytes =
            include_bytes!("../../../tests/vectors/md5/Elixir.MixRemote.Md5Vector.beam").to_vec();
        if !extra.is_empty() {
            let padded = extra.len().next_multiple_of(4);
            bytes.extend_from_slice(b"XTra");
            bytes.extend_from_slice(&(extra.len() as u32).to_be_bytes());
            bytes.extend_from_slice(extra);
            bytes.resize(bytes.len() + padded - extra.len(), 0);
            let size = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) + 8 + padded as u32;
            bytes[4..8].copy_from_slice(&size.to_be_bytes());
        }
        Arc::new(beam::parse(Path::new("w.beam"), bytes).unwrap())
    }

    /// The module of tests/vectors/md5 that erlc compiled: in no shipped application.
    fn loose_module() -> Arc<Beam> {
        let bytes = include_bytes!("../../../tests/vectors/md5/md5_vector_erl.beam").to_vec();
        Arc::new(beam::parse(Path::new("l.beam"), bytes).unwrap())
    }

    /// The items of the application `demo` with `modules` and `priv`, and `closure`.
    fn made(closure: &[Arc<Beam>], modules: Vec<Arc<Beam>>, priv_files: Vec<PrivEntry>) -> Items {
        let app = ShippedApp {
            name: "demo".into(),
            spec: Some(b"{application,demo,[]}.".to_vec()),
            modules,
            priv_files,
        };
        wire::items(closure, Arc::from([app])).unwrap()
    }

    fn data(contents: &[u8]) -> Vec<PrivEntry> {
        vec![("data.txt".into(), 0o644, PrivKind::File(contents.to_vec()))]
    }

    #[test]
    fn a_batch_has_the_digests_it_was_made_with() {
        let closure = [worker(b""), loose_module()];
        let mut files = data(b"data");
        files.push(("cache".into(), 0o755, PrivKind::Dir));
        let made = made(&closure, vec![worker(b"")], files);
        let batch = wire::prepare_all(&made).unwrap().batch;
        assert_eq!(Some(&made.digests), digests(&batch).as_ref());
        assert_eq!(
            made.digests.keys().collect::<Vec<_>>(),
            [
                "loose md5_vector_erl",
                "module demo Elixir.MixRemote.Md5Vector",
                "priv demo data.txt",
                "privdir demo cache",
                "spec demo"
            ]
        );
    }

    #[test]
    fn only_what_changed_is_sent_again() {
        let remote = crate::remote::push::tests::bare_remote();
        let had = made(&[], vec![worker(b"v1")], data(b"data")).digests;
        assert_eq!(had.len(), 3, "{had:?}");
        let same = trimmed(
            &made(&[], vec![worker(b"v1")], data(b"data")),
            &had,
            &remote,
        );
        let same = same.unwrap();
        assert_eq!(same.shipped_modules, 0);
        // The application stays named, its `.app` text empty: the node keeps the one it has.
        assert_eq!(
            digests(&same.batch).unwrap().keys().collect::<Vec<_>>(),
            ["spec demo"]
        );
        let now = made(&[], vec![worker(b"v2")], data(b"data"));
        let changed = trimmed(&now, &had, &remote).unwrap();
        assert_eq!(changed.shipped_modules, 1);
        let sent = digests(&changed.batch).unwrap();
        let key = "module demo Elixir.MixRemote.Md5Vector";
        assert_eq!(sent.get(key), now.digests.get(key));
        assert!(!sent.contains_key("priv demo data.txt"));
        assert!(changed.batch.len() < wire::prepare_all(&now).unwrap().batch.len());
        // A closure module goes again, unchanged, where the node has not loaded it as it is.
        let closure = [worker(b"v1")];
        let now = made(&closure, vec![worker(b"v1")], data(b"data"));
        assert_eq!(trimmed(&now, &had, &remote).unwrap().shipped_modules, 1);
        let mut loaded = crate::remote::push::tests::bare_remote();
        loaded
            .loaded
            .insert(closure[0].name.clone(), now.modules[0].1.md5);
        assert_eq!(trimmed(&now, &had, &loaded).unwrap().shipped_modules, 0);
        let names = |modules: &[(Arc<Beam>, wire::Wire)]| {
            (modules.iter())
                .map(|(b, w)| (b.name.clone(), *w))
                .collect::<Vec<_>>()
        };
        let sent = trimmed(&now, &had, &loaded).unwrap();
        assert_eq!(names(&now.modules), names(&sent.modules));
    }

    #[test]
    fn what_a_batch_no_longer_has_is_named_and_a_change_is_no_removal() {
        let now = digests(&batch(b"v2", "{application,demo,[]}.")).unwrap();
        let mut had = digests(&batch(b"v1", "{application,demo,[x]}.")).unwrap();
        assert_eq!(removed(&had, &now), None);
        // Named in the order of the keys: the first one missing.
        had.insert("spec ancient".into(), "0".into());
        assert_eq!(removed(&had, &now).as_deref(), Some("application ancient"));
        had.insert("priv demo migrations/1_old.exs".into(), "0".into());
        assert_eq!(
            removed(&had, &now).as_deref(),
            Some("demo's priv/migrations/1_old.exs")
        );
        had.insert("module demo Elixir.Demo.Gone".into(), "0".into());
        assert_eq!(removed(&had, &now).as_deref(), Some("module Demo.Gone"));
        had.insert("loose gone_erl".into(), "0".into());
        assert_eq!(removed(&had, &now).as_deref(), Some("module :gone_erl"));

        let preload = |digests: Digests| Preload {
            frame: Vec::new(),
            digests,
        };
        let (later, earlier) = (preload(now), preload(had));
        assert!(later.covers(&later));
        assert!(!later.covers(&earlier));
        assert!(earlier.covers(&later));
    }

    #[test]
    fn an_application_in_several_parts_is_one() {
        let binary = |b: &[u8]| -> Term { Binary::from(b.to_vec()).into() };
        let share = |spec: &[u8], module: &str, files: Vec<Term>| {
            compressed(&tuple(vec![
                List::from(vec![tuple(vec![
                    atom("demo"),
                    binary(spec),
                    List::from(vec![tuple(vec![atom(module), binary(module.as_bytes())])]).into(),
                    List::from(files).into(),
                ])])
                .into(),
                List::from(Vec::<Term>::new()).into(),
            ]))
        };
        let file = tuple(vec![
            binary(b"data.txt"),
            FixInteger::from(0o644).into(),
            binary(b"data"),
        ]);
        let (batch, _) = wire::batch_of(&[
            share(b"", "Elixir.Demo.Money", Vec::new()),
            share(b"{application,demo,[]}.", "Elixir.Demo.Worker", vec![file]),
        ]);
        let digests = digests(&batch).unwrap();
        assert_eq!(
            digests.keys().collect::<Vec<_>>(),
            [
                "module demo Elixir.Demo.Money",
                "module demo Elixir.Demo.Worker",
                "priv demo data.txt",
                "spec demo"
            ]
        );
        assert_eq!(digests["spec demo"], digest(&[b"{application,demo,[]}."]));
    }

    #[test]
    fn an_empty_priv_directory_is_an_item_of_its_own() {
        let dir = |path: &str, mode: u32| (path.to_owned(), mode, PrivKind::Dir);
        let file = |path: &str| (path.to_owned(), 0o755, PrivKind::File(Vec::new()));
        let had = made(&[], Vec::new(), vec![dir("cache", 0o755)]).digests;
        assert_eq!(
            had.keys().collect::<Vec<_>>(),
            ["privdir demo cache", "spec demo"]
        );
        // A directory added since is sent, and one whose mode changed; one the node has is not.
        let sent = |files| {
            let remote = crate::remote::push::tests::bare_remote();
            let trimmed = trimmed(&made(&[], Vec::new(), files), &had, &remote).unwrap();
            let keys = digests(&trimmed.batch).unwrap().into_keys();
            keys.filter(|k| k != "spec demo").collect::<Vec<_>>()
        };
        assert_eq!(
            sent(vec![dir("cache", 0o755), dir("uploads", 0o755)]),
            ["privdir demo uploads"]
        );
        assert_eq!(sent(vec![dir("cache", 0o700)]), ["privdir demo cache"]);
        // An empty file where the directory was is another item: the node's directory is named.
        let now = made(&[], Vec::new(), vec![file("cache")]).digests;
        assert_eq!(
            now.keys().collect::<Vec<_>>(),
            ["priv demo cache", "spec demo"]
        );
        assert_eq!(
            removed(&had, &now).as_deref(),
            Some("demo's empty priv/cache/")
        );
        assert_eq!(shown("privdir demo "), "demo's empty priv/");
    }

    #[test]
    fn reads_what_a_spare_says_of_itself() {
        let info = crate::remote::push::tests::info_term("x86_64-pc-linux-gnu", &[]);
        let hex = |worked: &str| {
            let mut bytes = Vec::new();
            tuple(vec![atom(worked), info.clone()])
                .encode(&mut bytes)
                .unwrap();
            boot::hex_of(&bytes)
        };
        let (worked, remote) = known(&hex("true")).unwrap();
        assert!(worked);
        assert_eq!(remote.loaded.len(), 1);
        assert!(!known(&hex("false")).unwrap().0);
        assert!(known("null").is_none());
        assert!(known(&hex("true")[1..]).is_none());
    }

    #[test]
    fn a_preload_carries_the_batch_and_its_digests() {
        let made = made(&[worker(b"")], vec![worker(b"")], data(b"data"));
        let preload = Preload::new(&encode(&wire::prepare_all(&made).unwrap())).unwrap();
        assert_eq!(preload.digests, made.digests);
        let len = u32::from_be_bytes(preload.frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, preload.frame.len() - 4);
        assert!(preload.frame[4..].starts_with(b"preload:"));
        assert!(Preload::new(b"junk").is_none());
    }
}
