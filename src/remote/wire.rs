//! The shipped applications and the closure as they go on the wire, and how the remote
//! recognises a module it already has.
//!
//! The MD5 is the one the remote loader reports for a loaded module (`Mod:module_info(md5)`,
//! the same as `beam_lib:md5/1`): over the data of the chunks Atom/AtU8, Code, StrT, ImpT, ExpT,
//! FunT, LitT and Meta, in that order, with the "old unique" field of every FunT entry zeroed.
//! Debug info, docs and compile details are not part of it, so a module the remote already runs
//! is recognised whatever else differs in its file.
//!
//! A module is sent without the chunks the loader never reads (debug info, docs, Elixir's
//! compile-time checker data: about half of an Elixir `.beam`; on the remote they would be
//! unreachable anyway, since tools read them from the file, not from loaded code), and with its
//! halts made the relay's, which wait for the output printed before ([`beam::halts`]; its MD5 is
//! then that of what it is sent as, which the loader computes alike). Every module
//! and `priv/` file of the shipped applications travels in one batch of a few parts, each a term
//! compressed as one zlib stream, which shares what modules have in common (module, function and
//! atom names) and which `binary_to_term/1` expands: the node loads the closure's first modules
//! while the last part is still on its way. Each item of the batch gets a digest before anything
//! is compressed ([`items`]), which tells a warm session's spare node what of it has changed
//! ([`Digests`], [`subset`]); the parts are compressed on every core. All of it is computed while
//! SSH connects.

mod etf;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::build::apps::PrivKind;
use crate::build::beam::{self, Beam, BeamError, BeamErrorKind, RawChunk};
use crate::build::parallel;

/// Chunks whose data the MD5 covers, in the order it covers them.
const MD5_CHUNKS: [&[u8; 4]; 9] = [
    b"Atom", b"AtU8", b"Code", b"StrT", b"ImpT", b"ExpT", b"FunT", b"LitT", b"Meta",
];
/// Chunks the loader never reads: Erlang and Elixir debug info, docs, Elixir's checker data.
const UNREAD_CHUNKS: [&[u8; 4]; 4] = [b"Dbgi", b"Abst", b"Docs", b"ExCk"];
/// Size of one FunT entry, and where its old-unique field starts within it.
const FUNT_ENTRY: usize = 24;
const FUNT_OLD_UNIQ: usize = 20;
/// zlib level of the batch: as small as level 6 within 1-4 %, in half the time (see the README).
const BATCH_LEVEL: u32 = 4;
/// The external term format's version byte, and its tag for a zlib-compressed term.
const ETF_VERSION: u8 = 131;
const ETF_COMPRESSED: u8 = 80;
/// The compressed batch's header: version, tag, the uncompressed size (32 bits).
const BATCH_HEADER: usize = 6;

/// A module ready to push: what the remote needs to know of its wire form once the batch holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    /// The MD5 the remote loader computes for this module.
    pub md5: [u8; 16],
    /// How many bytes the loader receives: the file without unread chunks.
    pub size: usize,
}

/// An application as it goes to the server: its lib dir's `ebin/` and `priv/`.
#[derive(Debug, Clone)]
pub struct ShippedApp {
    /// Its name.
    pub name: String,
    /// The bytes of its `.app` file, if it has one.
    pub spec: Option<Vec<u8>>,
    /// Every module of its `ebin/`, shared with the project's graph.
    pub modules: Vec<Arc<Beam>>,
    /// What of its `priv/` travels: files, and directories that hold none.
    pub priv_files: Vec<PrivEntry>,
}

/// What a batch is made of, and what a warm session's spare is compared by, before anything is
/// compressed ([`items`]): the closure's wire forms, the shipped applications, every item's
/// digest.
pub struct Items {
    /// The closure's modules with their wire form, in load order.
    pub modules: Vec<(Arc<Beam>, Wire)>,
    /// The shipped applications, which the batch is written from ([`prepare_all`], [`subset`]).
    pub apps: Arc<[ShippedApp]>,
    /// The digest of every item of the batch, as
    /// [`digests`](crate::remote::agent::preload::digests) reads them from its bytes.
    pub digests: Digests,
}

/// The shipped applications and the closure, ready to push.
pub struct Prepared {
    /// The closure's modules with their wire form, in load order.
    pub modules: Vec<(Arc<Beam>, Wire)>,
    /// The [`batch`](prepare_all) of the applications (and of closure modules that belong to
    /// none), encoded once for every host: the list of its parts in the external term format,
    /// shared as it is.
    pub batch: Arc<[u8]>,
    /// Where each part of the batch lies in it (see [`batch_of`]).
    pub parts: Vec<Range<usize>>,
    /// How many modules the batch holds.
    pub shipped_modules: usize,
}

/// The digest of every item of a batch, by item: `spec APP`, `module APP MOD`, `priv APP PATH` (a
/// file of `priv/`), `privdir APP PATH` (a directory of `priv/` that holds nothing that travels,
/// `PATH` empty for `priv/` itself), `loose MOD`. A file and a directory of one path are two
/// items, so that a node given one is never taken to have the other. A digest is the MD5, in hex,
/// of the bytes that travel ([`digest`]): a warm session's spare node given a batch ahead is sent
/// only the items whose digest differs.
pub type Digests = BTreeMap<String, String>;

/// The keys of the items of a batch (see [`Digests`]).
pub mod item {
    /// An application's `.app` text.
    pub fn spec(app: &str) -> String {
        format!("spec {app}")
    }

    /// A module of an application.
    pub fn module(app: &str, module: &str) -> String {
        format!("module {app} {module}")
    }

    /// A file of an application's `priv/`.
    pub fn priv_file(app: &str, path: &str) -> String {
        format!("priv {app} {path}")
    }

    /// A directory of an application's `priv/` that holds nothing that travels.
    pub fn priv_dir(app: &str, path: &str) -> String {
        format!("privdir {app} {path}")
    }

    /// A closure module of no shipped application.
    pub fn loose(module: &str) -> String {
        format!("loose {module}")
    }
}

/// The digest of an item whose bytes that travel are `parts`, one after the other: their MD5 in
/// hex. A `priv/` entry's parts are its mode (four bytes, big-endian) and its contents.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut context = md5::Context::new();
    for part in parts {
        context.consume(part);
    }
    format!("{:x}", context.finalize())
}

/// How many closure modules a part of the batch holds: about eight parts, of at least 50. The
/// node prepares each part's modules for loading as soon as the part is in, while the next ones
/// are on their way, and loads them as one chunk (each load blocks its schedulers a moment: on
/// two cores, 2000 modules prepared and loaded in 440-500 ms by chunks of 250, 540-550 at once,
/// 630-670 by chunks of 100).
fn part_size(closure: usize) -> usize {
    closure.div_ceil(8).max(50)
}

/// What one part of the batch holds: modules of applications, and modules of none.
struct Part<'a> {
    apps: Vec<PartApp<'a>>,
    loose: Vec<&'a Beam>,
}

/// An application's share of a part: some of its modules, and in the last part its `.app` text
/// (`None`: written empty, which the node takes as "keep the one you have") and `priv/` entries.
struct PartApp<'a> {
    app: &'a ShippedApp,
    modules: Vec<&'a Beam>,
    spec: Option<&'a [u8]>,
    files: Vec<&'a PrivEntry>,
}

/// An entry of an application's `priv/` that travels: its path relative to `priv/`, its
/// permission bits, a file's contents or a directory.
pub type PrivEntry = (String, u32, PrivKind);

/// How many modules make a thread's worth of [`items`]: each is stripped and hashed twice.
const ITEMS_GRAIN: usize = 128;

/// The items of the batch of `apps` and `closure` (in load order): each closure module's wire form
/// and every item's digest, the modules on every core. Nothing is compressed yet: a warm rerun
/// sends only what its spare lacks ([`subset`]) and needs no more before it does.
pub fn items(closure: &[Arc<Beam>], apps: Arc<[ShippedApp]>) -> Result<Items, BeamError> {
    let in_apps = modules_of(&apps);
    let mut keyed: Vec<(String, &Beam)> = Vec::new();
    for app in apps.iter() {
        keyed.extend((app.modules.iter()).map(|b| (item::module(&app.name, &b.name), &**b)));
    }
    keyed.extend(
        (closure.iter())
            .filter(|b| !in_apps.contains(b.name.as_str()))
            .map(|b| (item::loose(&b.name), &**b)),
    );
    let forms = parallel::map(&keyed, ITEMS_GRAIN, |(_, beam)| module_form(beam));
    let mut wires: HashMap<&str, Wire> = HashMap::with_capacity(keyed.len());
    let mut digests = Digests::new();
    for ((key, beam), form) in keyed.iter().zip(forms) {
        let (wire, module_digest) = form?;
        wires.insert(&beam.name, wire);
        digests.insert(key.clone(), module_digest);
    }
    for app in apps.iter() {
        digests.insert(item::spec(&app.name), digest(&[app_spec(app)]));
        for entry in &app.priv_files {
            digests.insert(priv_key(&app.name, entry), priv_digest(entry));
        }
    }
    let modules = closure
        .iter()
        .map(|beam| (Arc::clone(beam), wires[beam.name.as_str()]))
        .collect();
    Ok(Items {
        modules,
        apps,
        digests,
    })
}

/// The names of the modules of `apps`: a closure module not among them travels on its own.
fn modules_of(apps: &[ShippedApp]) -> HashSet<&str> {
    (apps.iter())
        .flat_map(|app| app.modules.iter().map(|b| b.name.as_str()))
        .collect()
}

/// An application's `.app` text as it travels: empty if it has none.
fn app_spec(app: &ShippedApp) -> &[u8] {
    app.spec.as_deref().unwrap_or_default()
}

/// The digest of a `priv/` entry: its mode (as the term carries it), then its contents.
fn priv_digest((_, mode, kind): &PrivEntry) -> String {
    let contents = match kind {
        PrivKind::File(bytes) => bytes.as_slice(),
        PrivKind::Dir => &[],
    };
    digest(&[&(*mode as i32).to_be_bytes(), contents])
}

/// The key of a `priv/` entry of `app` (see [`Digests`]).
fn priv_key(app: &str, (path, _, kind): &PrivEntry) -> String {
    match kind {
        PrivKind::File(_) => item::priv_file(app, path),
        PrivKind::Dir => item::priv_dir(app, path),
    }
}

/// The batch of `items`: a list of parts, each `{Apps, Loose}` in the external term format,
/// compressed, which the boot program's `load` expands with `binary_to_term/1` and writes as lib
/// dirs as they come. `Apps` is `[{App, Spec, [{Module, Beam}], Priv}]` (`Spec` empty but in the
/// last part, and `Priv` empty but there), `Priv` holding `{Path, Mode, Bytes}` for a file and
/// `{Path, Mode}` for a directory that holds nothing that travels (templates/boot.exs's
/// `write_apps` makes it); `Loose` is `[{Module, File, Beam}]` for closure modules of no shipped
/// application, `File` being the local path, which the remote loader records for the module.
/// The closure's modules come first, a `part_size` of them a part, in load order; the last
/// part holds every application with its other modules (loaded on demand), `.app` and `priv/`.
/// Each part is one zlib stream, which shares what modules have in common (module, function and
/// atom names); each module is stripped and encoded straight into the compressor, and the parts
/// are compressed on every core.
pub fn prepare_all(items: &Items) -> Result<Prepared, BeamError> {
    let apps = &items.apps[..];
    let closure = &items.modules;
    let app_of: HashMap<&str, usize> = apps
        .iter()
        .enumerate()
        .flat_map(|(i, app)| app.modules.iter().map(move |b| (b.name.as_str(), i)))
        .collect();
    let in_closure: HashSet<&str> = closure.iter().map(|(b, _)| b.name.as_str()).collect();
    let mut plan = Vec::new();
    for chunk in closure.chunks(part_size(closure.len())) {
        let mut part = Part {
            apps: Vec::new(),
            loose: Vec::new(),
        };
        for (beam, _) in chunk {
            let Some(&i) = app_of.get(beam.name.as_str()) else {
                part.loose.push(beam);
                continue;
            };
            match part.apps.iter_mut().find(|a| std::ptr::eq(a.app, &apps[i])) {
                Some(share) => share.modules.push(beam),
                None => part.apps.push(PartApp {
                    app: &apps[i],
                    modules: vec![beam],
                    spec: None,
                    files: Vec::new(),
                }),
            }
        }
        plan.push(part);
    }
    plan.push(Part {
        apps: apps
            .iter()
            .map(|app| PartApp {
                app,
                modules: (app.modules.iter())
                    .filter(|b| !in_closure.contains(b.name.as_str()))
                    .map(|b| &**b)
                    .collect(),
                spec: Some(app_spec(app)),
                files: app.priv_files.iter().collect(),
            })
            .collect(),
        loose: Vec::new(),
    });
    written(items, &plan)
}

/// `items` with a batch of one part holding only the items `keep` takes, given an item's key
/// (see [`Digests`]) and, for a module, its name: what a node that has the rest lacks. Every
/// application stays named in it, so that the node's list of shipped applications is complete;
/// the closure and its load order are `items`'.
pub fn subset(
    items: &Items,
    keep: impl Fn(&str, Option<&str>) -> bool,
) -> Result<Prepared, BeamError> {
    let apps = &items.apps[..];
    let in_apps = modules_of(apps);
    let kept_module = |key: String, beam: &Beam| keep(&key, Some(&beam.name));
    let part = Part {
        apps: apps
            .iter()
            .map(|app| PartApp {
                app,
                modules: (app.modules.iter())
                    .filter(|b| kept_module(item::module(&app.name, &b.name), b))
                    .map(|b| &**b)
                    .collect(),
                spec: Some(app_spec(app)).filter(|_| keep(&item::spec(&app.name), None)),
                files: (app.priv_files.iter())
                    .filter(|entry| keep(&priv_key(&app.name, entry), None))
                    .collect(),
            })
            .collect(),
        loose: (items.modules.iter())
            .filter(|(b, _)| !in_apps.contains(b.name.as_str()))
            .filter(|(b, _)| kept_module(item::loose(&b.name), b))
            .map(|(b, _)| &**b)
            .collect(),
    };
    written(items, std::slice::from_ref(&part))
}

/// The batch of the parts of `plan`, written on every core (the parts are independent zlib
/// streams: on two cores the 2000-module batch takes about half the time of one thread).
fn written(items: &Items, plan: &[Part]) -> Result<Prepared, BeamError> {
    let mut parts = Vec::with_capacity(plan.len());
    for part in parallel::map(plan, 1, write_part) {
        parts.push(part?);
    }
    let (batch, ranges) = batch_of(&parts);
    let shipped_modules = (plan.iter())
        .map(|p| p.loose.len() + p.apps.iter().map(|a| a.modules.len()).sum::<usize>())
        .sum();
    Ok(Prepared {
        modules: items.modules.clone(),
        batch,
        parts: ranges,
        shipped_modules,
    })
}

/// The batch of `parts` (each a compressed term): the list of them as binaries, in the external
/// term format, and where each part's bytes lie in it.
pub fn batch_of(parts: &[Vec<u8>]) -> (Arc<[u8]>, Vec<Range<usize>>) {
    let size = parts.iter().map(|p| 5 + p.len()).sum::<usize>() + 6;
    let mut batch = Vec::with_capacity(size + 1);
    batch.push(ETF_VERSION);
    let mut list = etf::Writer::new(&mut batch);
    let mut ranges = Vec::with_capacity(parts.len());
    list.list(parts.len())
        .and_then(|()| {
            for part in parts {
                list.binary_header(part.len())?;
                let start = 1 + list.written() as usize;
                list.raw(part)?;
                ranges.push(start..start + part.len());
            }
            list.end_list(parts.len())
        })
        .expect("writing into memory: a part is a compressed term under 4 GiB");
    (batch.into(), ranges)
}

/// `part` as a term `{Apps, Loose}` (see [`prepare_all`]), compressed.
fn write_part(part: &Part) -> Result<Vec<u8>, BeamError> {
    let mut header = Vec::with_capacity(1 << 16);
    header.extend_from_slice(&[ETF_VERSION, ETF_COMPRESSED, 0, 0, 0, 0]);
    let zlib = flate2::write::ZlibEncoder::new(header, flate2::Compression::new(BATCH_LEVEL));
    let mut out = etf::Writer::new(zlib);
    let whole = Path::new("the shipped applications");
    out.tuple(2).map_err(too_large(whole))?;
    out.list(part.apps.len()).map_err(too_large(whole))?;
    for share in &part.apps {
        let app = share.app;
        let spec = share.spec.unwrap_or_default();
        let files = &share.files;
        let header = |out: &mut etf::Writer<_>| -> std::io::Result<()> {
            out.tuple(4)?;
            out.atom(&app.name)?;
            out.binary(spec)?;
            out.list(share.modules.len())
        };
        header(&mut out).map_err(too_large(Path::new(&app.name)))?;
        for beam in &share.modules {
            out.tuple(2).map_err(too_large(&beam.path))?;
            out.atom(&beam.name).map_err(too_large(&beam.path))?;
            write_module(&mut out, beam)?;
        }
        let files = |out: &mut etf::Writer<_>| -> std::io::Result<()> {
            out.end_list(share.modules.len())?;
            out.list(files.len())?;
            for (path, mode, kind) in files.iter().copied() {
                // A file is `{Path, Mode, Bytes}`, a directory `{Path, Mode}`.
                match kind {
                    PrivKind::File(bytes) => {
                        out.tuple(3)?;
                        out.binary(path.as_bytes())?;
                        out.integer(*mode as i32)?;
                        out.binary(bytes)?;
                    }
                    PrivKind::Dir => {
                        out.tuple(2)?;
                        out.binary(path.as_bytes())?;
                        out.integer(*mode as i32)?;
                    }
                }
            }
            out.end_list(files.len())
        };
        files(&mut out).map_err(too_large(Path::new(&app.name)))?;
    }
    out.end_list(part.apps.len()).map_err(too_large(whole))?;
    out.list(part.loose.len()).map_err(too_large(whole))?;
    for beam in &part.loose {
        out.tuple(3).map_err(too_large(&beam.path))?;
        out.atom(&beam.name).map_err(too_large(&beam.path))?;
        out.charlist(&beam.path.to_string_lossy())
            .map_err(too_large(&beam.path))?;
        write_module(&mut out, beam)?;
    }
    out.end_list(part.loose.len()).map_err(too_large(whole))?;
    let plain = u32::try_from(out.written()).map_err(|_| BeamError {
        path: whole.to_owned(),
        kind: BeamErrorKind::TooLarge,
    })?;
    let mut compressed = out
        .into_inner()
        .finish()
        .expect("compressing into memory cannot fail");
    compressed[2..BATCH_HEADER].copy_from_slice(&plain.to_be_bytes());
    Ok(compressed)
}

/// The error for a term of `path` the external term format cannot hold.
fn too_large(path: &Path) -> impl FnOnce(std::io::Error) -> BeamError + '_ {
    move |_| BeamError {
        path: path.to_owned(),
        kind: BeamErrorKind::TooLarge,
    }
}

/// The wire form of `beam` (the loader's MD5 and the size of what it receives, see
/// [`shipped_chunks`]) and the digest of those bytes (see [`Digests`]).
fn module_form(beam: &Beam) -> Result<(Wire, String), BeamError> {
    with_shipped(beam, |shipped| {
        let mut context = md5::Context::new();
        each_piece(shipped, |piece| {
            context.consume(piece);
            Ok(())
        })
        .map_err(|_| BeamErrorKind::TooLarge)?;
        let wire = Wire {
            md5: md5(shipped),
            size: wire_size(shipped),
        };
        Ok((wire, format!("{:x}", context.finalize())))
    })
}

/// Writes `beam` as the loader receives it (see [`shipped_chunks`]), as a binary.
fn write_module<W: Write>(out: &mut etf::Writer<W>, beam: &Beam) -> Result<(), BeamError> {
    with_shipped(beam, |shipped| {
        out.binary_header(wire_size(shipped))
            .and_then(|()| each_piece(shipped, |piece| out.raw(piece)))
            .map_err(|_| BeamErrorKind::TooLarge)
    })
}

/// `f` of the chunks `beam` is sent with; its error names the file.
fn with_shipped<R>(
    beam: &Beam,
    f: impl FnOnce(&[Shipped]) -> Result<R, BeamErrorKind>,
) -> Result<R, BeamError> {
    beam::with_raw_chunks(&beam.bytes, |chunks| f(&shipped_chunks(chunks)?))
        .and_then(|made| made)
        .map_err(|kind| BeamError {
            path: beam.path.clone(),
            kind,
        })
}

/// Hands `each` the bytes of the module sent with `shipped`, piece by piece: `FOR1`, its length,
/// `BEAM`, then each chunk's id, length, data and padding.
fn each_piece(
    shipped: &[Shipped],
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let body = u32::try_from(wire_size(shipped) - 8)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidData))?;
    each(b"FOR1")?;
    each(&body.to_be_bytes())?;
    each(b"BEAM")?;
    for (id, data) in shipped {
        each(id)?;
        each(&(data.len() as u32).to_be_bytes())?;
        each(data)?;
        each(&[0; 3][..data.len().next_multiple_of(4) - data.len()])?;
    }
    Ok(())
}

/// `beam` as the loader receives it, without its unread chunks: for a module that travels
/// outside the batch.
pub fn stripped(beam: &Beam) -> Result<Vec<u8>, BeamError> {
    let mut out = etf::Writer::new(Vec::new());
    write_module(&mut out, beam)?;
    let mut bytes = out.into_inner();
    // The external term format's binary header: its tag and 32-bit length.
    bytes.drain(..5);
    Ok(bytes)
}

/// A chunk as a module is sent with it: as in its file, or made anew ([`beam::halts`]).
type Shipped<'b> = ([u8; 4], Cow<'b, [u8]>);

/// The chunks of a module as the loader receives them: without those it never reads, and with
/// its halts redirected to the relay's, which wait for the output printed before
/// ([`beam::halts`]).
fn shipped_chunks<'b>(chunks: &[RawChunk<'b>]) -> Result<Vec<Shipped<'b>>, BeamErrorKind> {
    let data = |wanted: &[u8; 4]| chunks.iter().find(|(id, _)| id == wanted).map(|c| c.1);
    let atoms = data(b"AtU8").or_else(|| data(b"Atom"));
    let redirected = match (atoms, data(b"ImpT")) {
        (Some(atoms), Some(imports)) => beam::halts::redirect(atoms, imports)?,
        _ => None,
    };
    Ok(chunks
        .iter()
        .filter(|(id, _)| !UNREAD_CHUNKS.contains(&id))
        .map(|&(id, data)| {
            let made = redirected.as_ref().and_then(|r| match &id {
                b"AtU8" | b"Atom" => Some(r.atoms.clone()),
                b"ImpT" => Some(r.imports.clone()),
                _ => None,
            });
            (id, made.map_or(Cow::Borrowed(data), Cow::Owned))
        })
        .collect())
}

/// The size of a module's wire form: `FOR1`, its length, `BEAM` and the chunks it is sent with.
fn wire_size(shipped: &[Shipped]) -> usize {
    12 + shipped
        .iter()
        .map(|(_, data)| 8 + data.len().next_multiple_of(4))
        .sum::<usize>()
}

/// How many bytes of `beam` the loader receives: its wire form's, as a run sends it
/// (`module_pushed`'s `bytes`); the file's size if it is not a beam.
pub fn sent_size(beam: &Beam) -> usize {
    beam::with_raw_chunks(&beam.bytes, |chunks| {
        shipped_chunks(chunks).map(|shipped| wire_size(&shipped))
    })
    .and_then(|size| size)
    .unwrap_or(beam.bytes.len())
}

/// The MD5 the loader reports for the module of the beam `bytes` once loaded (see the module
/// docs); `None` if `bytes` is not a beam.
pub fn loader_md5(bytes: &[u8]) -> Option<[u8; 16]> {
    beam::with_raw_chunks(bytes, |chunks| {
        let as_they_are: Vec<Shipped> = chunks
            .iter()
            .map(|&(id, d)| (id, Cow::Borrowed(d)))
            .collect();
        md5(&as_they_are)
    })
    .ok()
}

/// The loader's MD5 over `chunks` (see the module docs).
fn md5(chunks: &[Shipped]) -> [u8; 16] {
    let mut ctx = md5::Context::new();
    for wanted in MD5_CHUNKS {
        let Some((_, data)) = chunks.iter().find(|(id, _)| id == wanted) else {
            continue;
        };
        if wanted == b"FunT" && data.len() >= 4 {
            let (count, entries) = data.split_at(4);
            ctx.consume(count);
            for entry in entries.chunks(FUNT_ENTRY) {
                if entry.len() == FUNT_ENTRY {
                    ctx.consume(&entry[..FUNT_OLD_UNIQ]);
                    ctx.consume([0u8; FUNT_ENTRY - FUNT_OLD_UNIQ]);
                } else {
                    ctx.consume(entry);
                }
            }
        } else {
            ctx.consume(data);
        }
    }
    ctx.finalize().0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::node::tuple;
    use erl_dist::term::{Binary, FixInteger, Term};

    /// Real files and what `beam_lib:md5/1` said of each (and `module_info(md5)` once loaded):
    /// an Elixir module compiled by `elixirc` (1.14, OTP 25; a closure gives it a FunT chunk) and
    /// an Erlang one compiled by `erlc +compressed`, so gzip-compressed by the compiler itself.
    /// Sources beside them in tests/vectors/md5/.
    const VECTORS: [(&str, &[u8], &str); 2] = [
        (
            "Elixir.MixRemote.Md5Vector",
            include_bytes!("../../tests/vectors/md5/Elixir.MixRemote.Md5Vector.beam"),
            include_str!("../../tests/vectors/md5/Elixir.MixRemote.Md5Vector.md5"),
        ),
        (
            "md5_vector_erl",
            include_bytes!("../../tests/vectors/md5/md5_vector_erl.beam"),
            include_str!("../../tests/vectors/md5/md5_vector_erl.md5"),
        ),
    ];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn vector(bytes: &[u8]) -> Beam {
        beam::parse(Path::new("v.beam"), bytes.to_vec()).unwrap()
    }

    /// `beam`'s wire form and the bytes the loader receives.
    fn prepare(beam: &Beam) -> (Wire, Vec<u8>) {
        let (wire, digest) = module_form(beam).unwrap();
        let sent = stripped(beam).unwrap();
        assert_eq!(sent.len(), wire.size);
        assert_eq!(super::digest(&[&sent]), digest);
        (wire, sent)
    }

    #[test]
    fn md5_is_the_one_beam_lib_computes() {
        for (name, bytes, md5) in VECTORS {
            let beam = vector(bytes);
            assert_eq!(beam.name, name);
            assert_eq!(hex(&prepare(&beam).0.md5), md5.trim(), "{name}");
        }
    }

    #[test]
    fn sends_less_and_the_same_md5() {
        let (_, bytes, md5) = VECTORS[0];
        let (_, sent) = prepare(&vector(bytes));
        assert!(
            sent.len() < bytes.len() * 2 / 3,
            "{} bytes sent",
            sent.len()
        );
        assert_eq!(hex(&prepare(&vector(&sent)).0.md5), md5.trim());
        let ids: Vec<[u8; 4]> =
            beam::with_raw_chunks(&sent, |chunks| chunks.iter().map(|(id, _)| *id).collect())
                .unwrap();
        assert!(ids.contains(b"Code") && ids.contains(b"Line") && ids.contains(b"Attr"));
        for unread in UNREAD_CHUNKS {
            assert!(
                !ids.contains(unread),
                "{} was sent",
                String::from_utf8_lossy(unread)
            );
        }
    }

    /// The terms of each part of `prepared`'s batch: `{apps, loose}`, after checking that the
    /// batch is the list of them and each part declares its expanded size.
    fn parts_of(prepared: &Prepared) -> Vec<(Vec<Term>, Vec<Term>)> {
        let Term::List(list) = Term::decode(&prepared.batch[..]).unwrap() else {
            panic!("not a list");
        };
        assert_eq!(list.elements.len(), prepared.parts.len());
        list.elements
            .iter()
            .zip(&prepared.parts)
            .map(|(part, range)| {
                let Term::Binary(part) = part else {
                    panic!("not a binary: {part}")
                };
                assert_eq!(part.bytes, prepared.batch[range.clone()]);
                assert_eq!(&part.bytes[..2], &[ETF_VERSION, ETF_COMPRESSED]);
                let mut expanded = Vec::new();
                std::io::Read::read_to_end(
                    &mut flate2::read::ZlibDecoder::new(&part.bytes[BATCH_HEADER..]),
                    &mut expanded,
                )
                .unwrap();
                let declared = u32::from_be_bytes(part.bytes[2..BATCH_HEADER].try_into().unwrap());
                assert_eq!(declared as usize, expanded.len());
                let Term::Tuple(decoded) = Term::decode(&part.bytes[..]).unwrap() else {
                    panic!("not a tuple");
                };
                let [Term::List(apps), Term::List(loose)] = decoded.elements.as_slice() else {
                    panic!("not {{apps, loose}}: {decoded}");
                };
                (apps.elements.clone(), loose.elements.clone())
            })
            .collect()
    }

    /// An application's entry in a part: name, `.app` text, module names, files.
    fn app_entry(term: &Term) -> (String, Vec<u8>, Vec<String>, Vec<Term>) {
        let Term::Tuple(t) = term else {
            panic!("not a tuple: {term}")
        };
        match t.elements.as_slice() {
            [
                Term::Atom(name),
                Term::Binary(spec),
                Term::List(modules),
                Term::List(files),
            ] => {
                let names = modules
                    .elements
                    .iter()
                    .map(|m| match m {
                        Term::Tuple(m) => match &m.elements[0] {
                            Term::Atom(name) => name.name.clone(),
                            other => panic!("not a module name: {other}"),
                        },
                        other => panic!("not a module: {other}"),
                    })
                    .collect();
                (
                    name.name.clone(),
                    spec.bytes.clone(),
                    names,
                    files.elements.clone(),
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn batch_is_a_list_of_compressed_parts_of_the_applications() {
        let beams: Vec<Arc<Beam>> = VECTORS
            .iter()
            .map(|(_, bytes, _)| Arc::new(vector(bytes)))
            .collect();
        let app = ShippedApp {
            name: "shop".into(),
            spec: Some(b"{application,shop,[]}.".to_vec()),
            modules: vec![Arc::clone(&beams[0])],
            priv_files: vec![
                ("native/x.so".into(), 0o755, PrivKind::File(b"ELF".to_vec())),
                ("uploads".into(), 0o700, PrivKind::Dir),
            ],
        };
        let prepared = prepare_all(&items(&beams, Arc::from([app.clone()])).unwrap()).unwrap();
        assert_eq!(prepared.shipped_modules, 2);
        let parts = parts_of(&prepared);
        // The closure's part, then the last one: the application's `.app` and `priv/`.
        let [(apps, loose), (last_apps, last_loose)] = parts.as_slice() else {
            panic!("{} parts", parts.len());
        };
        let (name, spec, modules, files) = app_entry(&apps[0]);
        assert_eq!((name.as_str(), spec.as_slice()), ("shop", &b""[..]));
        assert_eq!(modules, [beams[0].name.as_str()]);
        assert!(files.is_empty());
        let (name, spec, modules, files) = app_entry(&last_apps[0]);
        assert_eq!(name, "shop");
        assert_eq!(spec, b"{application,shop,[]}.");
        assert!(modules.is_empty() && last_loose.is_empty());
        assert_eq!(
            files[0].to_string(),
            tuple(vec![
                Binary::from(&b"native/x.so"[..]).into(),
                FixInteger::from(0o755).into(),
                Binary::from(&b"ELF"[..]).into()
            ])
            .to_string()
        );
        // A directory holding nothing that travels: its path and mode, no contents.
        assert_eq!(
            files[1].to_string(),
            tuple(vec![
                Binary::from(&b"uploads"[..]).into(),
                FixInteger::from(0o700).into()
            ])
            .to_string()
        );
        assert_eq!(files.len(), 2);
        // The second module belongs to no shipped application: it travels on its own.
        let Term::Tuple(entry) = &loose[0] else {
            panic!("not a tuple")
        };
        match entry.elements.as_slice() {
            [Term::Atom(m), Term::ByteList(file), Term::Binary(bytes)] => {
                assert_eq!(m.name, beams[1].name);
                assert_eq!(file.bytes, b"v.beam");
                let (wire, sent) = prepare(&beams[1]);
                assert_eq!(bytes.bytes, sent);
                assert_eq!(prepared.modules[1].1, wire);
            }
            other => panic!("unexpected {other:?}"),
        }
        let plain: usize = prepared.modules.iter().map(|(_, w)| w.size).sum();
        assert!(
            prepared.batch.len() < plain,
            "{} of {plain}",
            prepared.batch.len()
        );
    }

    #[test]
    fn the_closure_comes_first_a_part_at_a_time_in_load_order() {
        let named = |i: usize| {
            let mut beam = vector(VECTORS[0].1);
            beam.name = format!("Elixir.M{i}");
            Arc::new(beam)
        };
        let all: Vec<Arc<Beam>> = (0..130).map(named).collect();
        let app = ShippedApp {
            name: "shop".into(),
            spec: Some(b"{application,shop,[]}.".to_vec()),
            modules: all.clone(),
            priv_files: Vec::new(),
        };
        // Modules 0..120 are the closure, in this load order; 120..130 load on demand.
        let closure: Vec<Arc<Beam>> = all[..120].iter().rev().cloned().collect();
        let prepared = prepare_all(&items(&closure, Arc::from([app])).unwrap()).unwrap();
        assert_eq!(prepared.shipped_modules, 130);
        let names: Vec<Vec<String>> = parts_of(&prepared)
            .iter()
            .map(|(apps, _)| app_entry(&apps[0]).2)
            .collect();
        let expected = |range: std::ops::Range<usize>| -> Vec<String> {
            range.map(|i| format!("Elixir.M{i}")).collect()
        };
        let closure_order = |range: std::ops::Range<usize>| -> Vec<String> {
            range.rev().map(|i| format!("Elixir.M{i}")).collect()
        };
        assert_eq!(
            names,
            [
                closure_order(70..120),
                closure_order(20..70),
                closure_order(0..20),
                expected(120..130)
            ]
        );
    }
}
