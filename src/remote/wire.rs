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
//! unreachable anyway, since tools read them from the file, not from loaded code). Every module
//! and `priv/` file of the shipped applications travels in one batch, a term compressed as one
//! zlib stream, which shares what modules have in common (module, function and atom names) and
//! which `binary_to_term/1` expands. All of it is computed while SSH connects, the batch too.

mod etf;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::build::beam::{self, Beam, BeamError, BeamErrorKind, RawChunk};

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
    /// The text of its `.app` file, if it has one.
    pub spec: Option<String>,
    /// Every module of its `ebin/`, shared with the project's graph.
    pub modules: Vec<Arc<Beam>>,
    /// Every file of its `priv/`: path relative to `priv/`, permission bits, contents.
    pub priv_files: Vec<(String, u32, Vec<u8>)>,
}

/// The shipped applications and the closure, ready to push.
pub struct Prepared {
    /// The closure's modules with their wire form, in load order.
    pub modules: Vec<(Arc<Beam>, Wire)>,
    /// The [`batch`](prepare_all) of the applications (and of closure modules that belong to
    /// none), encoded once for every host: an external-term-format binary, shared as it is.
    pub batch: Arc<[u8]>,
    /// How many modules the batch holds.
    pub shipped_modules: usize,
    /// The batch in base64, made once for every host that sends it on a cold node's stdin.
    pub base64: std::sync::OnceLock<Arc<str>>,
}

impl Prepared {
    /// The batch in base64 (standard, padded), as a cold node's stdin line carries it: made by
    /// the first host that asks, shared by all.
    pub fn base64(&self) -> Arc<str> {
        Arc::clone(
            self.base64
                .get_or_init(|| crate::remote::boot::base64(&self.batch).into()),
        )
    }
}

/// Prepares the modules of `apps` and `closure` (in load order), and their batch: `{Apps,
/// Loose}` in the external term format, compressed, what the boot program's `load` expands with
/// `binary_to_term/1` and writes as lib dirs. `Apps` is `[{App, Spec, [{Module, Beam}], [{Path,
/// Mode, Bytes}]}]` (`Spec` empty when the application has no `.app` file); `Loose` is
/// `[{Module, File, Beam}]` for closure modules of no shipped application, `File` being the
/// local path, which the remote loader records for the module. Each module is stripped and
/// encoded straight into the compressor, one at a time.
pub fn prepare_all(closure: &[Arc<Beam>], apps: &[ShippedApp]) -> Result<Prepared, BeamError> {
    let in_apps: HashSet<&str> = apps
        .iter()
        .flat_map(|app| app.modules.iter().map(|b| b.name.as_str()))
        .collect();
    let loose: Vec<&Beam> = closure
        .iter()
        .map(|b| &**b)
        .filter(|b| !in_apps.contains(b.name.as_str()))
        .collect();
    let mut header = Vec::with_capacity(1 << 20);
    header.extend_from_slice(&[ETF_VERSION, ETF_COMPRESSED, 0, 0, 0, 0]);
    let zlib = flate2::write::ZlibEncoder::new(header, flate2::Compression::new(BATCH_LEVEL));
    let mut out = etf::Writer::new(zlib);
    let mut wires: HashMap<&str, Wire> = HashMap::with_capacity(in_apps.len() + loose.len());
    let whole = Path::new("the shipped applications");
    out.tuple(2).map_err(too_large(whole))?;
    out.list(apps.len()).map_err(too_large(whole))?;
    for app in apps {
        let header = |out: &mut etf::Writer<_>| -> std::io::Result<()> {
            out.tuple(4)?;
            out.atom(&app.name)?;
            out.binary(app.spec.as_deref().unwrap_or_default().as_bytes())?;
            out.list(app.modules.len())
        };
        header(&mut out).map_err(too_large(Path::new(&app.name)))?;
        for beam in &app.modules {
            out.tuple(2).map_err(too_large(&beam.path))?;
            out.atom(&beam.name).map_err(too_large(&beam.path))?;
            wires.insert(&beam.name, write_module(&mut out, beam)?);
        }
        let files = |out: &mut etf::Writer<_>| -> std::io::Result<()> {
            out.end_list(app.modules.len())?;
            out.list(app.priv_files.len())?;
            for (path, mode, bytes) in &app.priv_files {
                out.tuple(3)?;
                out.binary(path.as_bytes())?;
                out.integer(*mode as i32)?;
                out.binary(bytes)?;
            }
            out.end_list(app.priv_files.len())
        };
        files(&mut out).map_err(too_large(Path::new(&app.name)))?;
    }
    out.end_list(apps.len()).map_err(too_large(whole))?;
    out.list(loose.len()).map_err(too_large(whole))?;
    for beam in &loose {
        out.tuple(3).map_err(too_large(&beam.path))?;
        out.atom(&beam.name).map_err(too_large(&beam.path))?;
        out.charlist(&beam.path.to_string_lossy())
            .map_err(too_large(&beam.path))?;
        wires.insert(&beam.name, write_module(&mut out, beam)?);
    }
    out.end_list(loose.len()).map_err(too_large(whole))?;
    let plain = u32::try_from(out.written()).map_err(|_| BeamError {
        path: whole.to_owned(),
        kind: BeamErrorKind::TooLarge,
    })?;
    let mut batch = out
        .into_inner()
        .finish()
        .expect("compressing into memory cannot fail");
    batch[2..BATCH_HEADER].copy_from_slice(&plain.to_be_bytes());
    let modules = closure
        .iter()
        .map(|beam| (Arc::clone(beam), wires[beam.name.as_str()]))
        .collect();
    Ok(Prepared {
        modules,
        batch: batch.into(),
        shipped_modules: wires.len(),
        base64: Default::default(),
    })
}

/// The error for a term of `path` the external term format cannot hold.
fn too_large(path: &Path) -> impl FnOnce(std::io::Error) -> BeamError + '_ {
    move |_| BeamError {
        path: path.to_owned(),
        kind: BeamErrorKind::TooLarge,
    }
}

/// Writes `beam` as the loader receives it, without its unread chunks, as a binary: its wire form.
fn write_module<W: Write>(out: &mut etf::Writer<W>, beam: &Beam) -> Result<Wire, BeamError> {
    let fail = |kind| BeamError {
        path: beam.path.clone(),
        kind,
    };
    beam::with_raw_chunks(&beam.bytes, |chunks| {
        let md5 = md5(chunks);
        let kept = || chunks.iter().filter(|(id, _)| !UNREAD_CHUNKS.contains(&id));
        let body_len: usize = 4 + kept()
            .map(|(_, data)| 8 + data.len().next_multiple_of(4))
            .sum::<usize>();
        let size = 8 + body_len;
        let body = u32::try_from(body_len).map_err(|_| BeamErrorKind::TooLarge)?;
        let write = |out: &mut etf::Writer<W>| -> std::io::Result<()> {
            out.binary_header(size)?;
            out.raw(b"FOR1")?;
            out.raw(&body.to_be_bytes())?;
            out.raw(b"BEAM")?;
            for (id, data) in kept() {
                out.raw(id)?;
                out.raw(&(data.len() as u32).to_be_bytes())?;
                out.raw(data)?;
                out.raw(&[0; 3][..data.len().next_multiple_of(4) - data.len()])?;
            }
            Ok(())
        };
        write(out).map_err(|_| BeamErrorKind::TooLarge)?;
        Ok(Wire { md5, size })
    })
    .and_then(|written| written)
    .map_err(fail)
}

/// The loader's MD5 over `chunks` (see the module docs).
fn md5(chunks: &[RawChunk]) -> [u8; 16] {
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
        let mut out = etf::Writer::new(Vec::new());
        let wire = write_module(&mut out, beam).unwrap();
        let written = out.into_inner();
        // A binary's header: its tag and 32-bit length.
        assert_eq!(written.len(), 5 + wire.size);
        (wire, written[5..].to_vec())
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

    #[test]
    fn batch_is_a_compressed_term_of_the_applications() {
        let beams: Vec<Arc<Beam>> = VECTORS
            .iter()
            .map(|(_, bytes, _)| Arc::new(vector(bytes)))
            .collect();
        let app = ShippedApp {
            name: "shop".into(),
            spec: Some("{application,shop,[]}.".into()),
            modules: vec![Arc::clone(&beams[0])],
            priv_files: vec![("native/x.so".into(), 0o755, b"ELF".to_vec())],
        };
        let prepared = prepare_all(&beams, std::slice::from_ref(&app)).unwrap();
        assert_eq!(prepared.shipped_modules, 2);
        assert_eq!(&prepared.batch[..2], &[ETF_VERSION, ETF_COMPRESSED]);
        let Term::Tuple(decoded) = Term::decode(&prepared.batch[..]).unwrap() else {
            panic!("not a tuple");
        };
        let [Term::List(apps), Term::List(loose)] = decoded.elements.as_slice() else {
            panic!("not {{apps, loose}}: {decoded}");
        };
        let Term::Tuple(shop) = &apps.elements[0] else {
            panic!("not a tuple")
        };
        match shop.elements.as_slice() {
            [
                Term::Atom(name),
                Term::Binary(spec),
                Term::List(modules),
                Term::List(files),
            ] => {
                assert_eq!(name.name, "shop");
                assert_eq!(spec.bytes, b"{application,shop,[]}.");
                assert_eq!(modules.elements.len(), 1);
                assert_eq!(
                    files.elements[0].to_string(),
                    tuple(vec![
                        Binary::from(&b"native/x.so"[..]).into(),
                        FixInteger::from(0o755).into(),
                        Binary::from(&b"ELF"[..]).into()
                    ])
                    .to_string()
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // The second module belongs to no shipped application: it travels on its own.
        let Term::Tuple(entry) = &loose.elements[0] else {
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
        let mut expanded = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&prepared.batch[BATCH_HEADER..]),
            &mut expanded,
        )
        .unwrap();
        let declared = u32::from_be_bytes(prepared.batch[2..BATCH_HEADER].try_into().unwrap());
        assert_eq!(declared as usize, expanded.len());
        assert!(
            prepared.batch.len() < plain,
            "{} of {plain}",
            prepared.batch.len()
        );
    }
}
