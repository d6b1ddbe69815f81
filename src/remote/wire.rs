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

use std::io::Write;

use erl_dist::term::{Binary, FixInteger, List, Term};

use crate::build::beam::{self, Beam, BeamError, BeamErrorKind, RawChunk};
use crate::remote::node::{atom, tuple};

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

/// A module ready to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    /// The MD5 the remote loader computes for this module.
    pub md5: [u8; 16],
    /// What the loader receives: the file without unread chunks.
    pub bytes: Vec<u8>,
}

/// An application as it goes to the server: its lib dir's `ebin/` and `priv/`.
#[derive(Debug, Clone)]
pub struct ShippedApp {
    /// Its name.
    pub name: String,
    /// The text of its `.app` file, if it has one.
    pub spec: Option<String>,
    /// Every module of its `ebin/`.
    pub modules: Vec<Beam>,
    /// Every file of its `priv/`: path relative to `priv/`, permission bits, contents.
    pub priv_files: Vec<(String, u32, Vec<u8>)>,
}

/// The shipped applications and the closure, ready to push.
pub struct Prepared {
    /// The closure's modules with their wire form, in load order.
    pub modules: Vec<(Beam, Wire)>,
    /// The [`batch`] of the applications (and of closure modules that belong to none).
    pub batch: Vec<u8>,
    /// How many modules the batch holds.
    pub shipped_modules: usize,
}

/// Prepares the modules of `apps` and `closure`, and their batch.
pub fn prepare_all(closure: &[&Beam], apps: &[ShippedApp]) -> Result<Prepared, BeamError> {
    let wire_of = |beam: &Beam| {
        prepare(beam).map_err(|kind| BeamError {
            path: beam.path.clone(),
            kind,
        })
    };
    let wired: Vec<Vec<Wire>> = apps
        .iter()
        .map(|app| app.modules.iter().map(wire_of).collect())
        .collect::<Result<_, _>>()?;
    let by_name: std::collections::HashMap<&str, &Wire> = apps
        .iter()
        .zip(&wired)
        .flat_map(|(app, wires)| app.modules.iter().map(|b| b.name.as_str()).zip(wires))
        .collect();
    let mut loose = Vec::new();
    let mut modules = Vec::with_capacity(closure.len());
    for &beam in closure {
        let wire = match by_name.get(beam.name.as_str()) {
            Some(&wire) => wire.clone(),
            None => {
                let wire = wire_of(beam)?;
                loose.push((beam.clone(), wire.clone()));
                wire
            }
        };
        modules.push((beam.clone(), wire));
    }
    let shipped_modules = by_name.len() + loose.len();
    let batch = batch(apps, &wired, &loose);
    Ok(Prepared {
        modules,
        batch,
        shipped_modules,
    })
}

/// Prepares `beam` for the wire.
pub fn prepare(beam: &Beam) -> Result<Wire, BeamErrorKind> {
    let chunks = beam::raw_chunks(&beam.bytes)?;
    let md5 = md5(&chunks);
    let kept: Vec<_> = chunks
        .iter()
        .filter(|(id, _)| !UNREAD_CHUNKS.contains(&id))
        .collect();
    let body_len: usize = 4 + kept
        .iter()
        .map(|(_, data)| 8 + data.len().next_multiple_of(4))
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(8 + body_len);
    bytes.extend_from_slice(b"FOR1");
    bytes.extend_from_slice(&(body_len as u32).to_be_bytes());
    bytes.extend_from_slice(b"BEAM");
    for (id, data) in kept {
        bytes.extend_from_slice(id);
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().next_multiple_of(4), 0);
    }
    Ok(Wire { md5, bytes })
}

/// `{Apps, Loose}` in the external term format, compressed: what the boot program's `load`
/// expands with `binary_to_term/1` and writes as lib dirs. `Apps` is `[{App, Spec, [{Module,
/// Beam}], [{Path, Mode, Bytes}]}]` (`Spec` empty when the application has no `.app` file);
/// `Loose` is `[{Module, File, Beam}]` for closure modules of no shipped application, `File`
/// being the local path, which the remote loader records for the module.
fn batch(apps: &[ShippedApp], wired: &[Vec<Wire>], loose: &[(Beam, Wire)]) -> Vec<u8> {
    let binary = |bytes: &[u8]| -> Term { Binary::from(bytes.to_vec()).into() };
    let apps: Vec<Term> = apps
        .iter()
        .zip(wired)
        .map(|(app, wires)| {
            let modules: Vec<Term> = app
                .modules
                .iter()
                .zip(wires)
                .map(|(beam, wire)| tuple(vec![atom(&beam.name), binary(&wire.bytes)]))
                .collect();
            let files: Vec<Term> = app
                .priv_files
                .iter()
                .map(|(path, mode, bytes)| {
                    tuple(vec![
                        binary(path.as_bytes()),
                        FixInteger::from(*mode as i32).into(),
                        binary(bytes),
                    ])
                })
                .collect();
            tuple(vec![
                atom(&app.name),
                binary(app.spec.as_deref().unwrap_or_default().as_bytes()),
                List::from(modules).into(),
                List::from(files).into(),
            ])
        })
        .collect();
    let loose: Vec<Term> = loose
        .iter()
        .map(|(beam, wire)| {
            let path = beam.path.to_string_lossy();
            let file: Vec<Term> = path
                .chars()
                .map(|c| FixInteger::from(c as i32).into())
                .collect();
            tuple(vec![
                atom(&beam.name),
                List::from(file).into(),
                binary(&wire.bytes),
            ])
        })
        .collect();
    compressed(&tuple(vec![
        List::from(apps).into(),
        List::from(loose).into(),
    ]))
}

/// `term` in the external term format, zlib-compressed as `binary_to_term/1` reads it.
fn compressed(term: &Term) -> Vec<u8> {
    let mut plain = Vec::new();
    term.encode(&mut plain).expect("encoding into memory");
    // The compressed form covers the term without its version byte.
    let term = &plain[1..];
    let mut zlib = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(term.len() / 3),
        flate2::Compression::new(BATCH_LEVEL),
    );
    zlib.write_all(term).expect("compressing into memory");
    let compressed = zlib.finish().expect("compressing into memory");
    let mut out = Vec::with_capacity(6 + compressed.len());
    out.extend_from_slice(&[ETF_VERSION, ETF_COMPRESSED]);
    out.extend_from_slice(&(term.len() as u32).to_be_bytes());
    out.extend_from_slice(&compressed);
    out
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
    use std::path::Path;

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

    #[test]
    fn md5_is_the_one_beam_lib_computes() {
        for (name, bytes, md5) in VECTORS {
            let beam = vector(bytes);
            assert_eq!(beam.name, name);
            assert_eq!(hex(&prepare(&beam).unwrap().md5), md5.trim(), "{name}");
        }
    }

    #[test]
    fn sends_less_and_the_same_md5() {
        let (_, bytes, md5) = VECTORS[0];
        let wire = prepare(&vector(bytes)).unwrap();
        assert!(
            wire.bytes.len() < bytes.len() * 2 / 3,
            "{} bytes sent",
            wire.bytes.len()
        );
        let sent = vector(&wire.bytes);
        assert_eq!(hex(&prepare(&sent).unwrap().md5), md5.trim());
        let ids: Vec<[u8; 4]> = beam::raw_chunks(&wire.bytes)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
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
        let beams: Vec<Beam> = VECTORS.iter().map(|(_, bytes, _)| vector(bytes)).collect();
        let app = ShippedApp {
            name: "shop".into(),
            spec: Some("{application,shop,[]}.".into()),
            modules: vec![beams[0].clone()],
            priv_files: vec![("native/x.so".into(), 0o755, b"ELF".to_vec())],
        };
        let refs: Vec<&Beam> = beams.iter().collect();
        let prepared = prepare_all(&refs, std::slice::from_ref(&app)).unwrap();
        assert_eq!(prepared.shipped_modules, 2);
        assert_eq!(&prepared.batch[..2], &[ETF_VERSION, ETF_COMPRESSED]);
        let Term::Tuple(decoded) = Term::decode(prepared.batch.as_slice()).unwrap() else {
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
                assert_eq!(bytes.bytes, prepared.modules[1].1.bytes);
            }
            other => panic!("unexpected {other:?}"),
        }
        let plain: usize = prepared.modules.iter().map(|(_, w)| w.bytes.len()).sum();
        assert!(
            prepared.batch.len() < plain,
            "{} of {plain}",
            prepared.batch.len()
        );
    }
}
