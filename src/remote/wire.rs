//! The closure as it goes on the wire, and how the remote recognises a module it already has.
//!
//! The MD5 is the one the remote loader reports for a loaded module (`Mod:module_info(md5)`,
//! the same as `beam_lib:md5/1`): over the data of the chunks Atom/AtU8, Code, StrT, ImpT, ExpT,
//! FunT, LitT and Meta, in that order, with the "old unique" field of every FunT entry zeroed.
//! Debug info, docs and compile details are not part of it, so a module the remote already runs
//! is recognised whatever else differs in its file.
//!
//! A module is sent without the chunks the loader never reads (debug info, docs, Elixir's
//! compile-time checker data: about half of an Elixir `.beam`; on the remote they would be
//! unreachable anyway, since tools read them from the file, not from loaded code). The modules
//! to load travel as one batch, a term compressed as one zlib stream, which shares what modules
//! have in common (module, function and atom names) and which `binary_to_term/1` expands. All
//! of it is computed while SSH connects, the batch too: a fresh remote node lacks every module.

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

/// The closure ready to push, in load order.
pub struct Prepared {
    /// Each module with its wire form.
    pub modules: Vec<(Beam, Wire)>,
    /// The [`batch`] of all of them.
    pub batch: Vec<u8>,
}

/// Prepares the modules of `closure` and their batch.
pub fn prepare_all(closure: &[&Beam]) -> Result<Prepared, BeamError> {
    let modules = closure
        .iter()
        .map(|&beam| match prepare(beam) {
            Ok(wire) => Ok((beam.clone(), wire)),
            Err(kind) => Err(BeamError {
                path: beam.path.clone(),
                kind,
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let all: Vec<(&Beam, &Wire)> = modules.iter().map(|(b, w)| (b, w)).collect();
    let batch = batch(&all);
    Ok(Prepared { modules, batch })
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

/// `[{Module, File, Beam}]` for `modules`, in the external term format, compressed: what the
/// boot program's `load` expands with `binary_to_term/1`. File is the local path, which the
/// remote loader records for the module.
pub fn batch(modules: &[(&Beam, &Wire)]) -> Vec<u8> {
    let list: Term = List::from(
        modules
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
                    Binary::from(wire.bytes.clone()).into(),
                ])
            })
            .collect::<Vec<_>>(),
    )
    .into();
    let mut plain = Vec::new();
    list.encode(&mut plain).expect("encoding into memory");
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
    fn batch_is_a_compressed_term_of_the_modules() {
        let beams: Vec<Beam> = VECTORS.iter().map(|(_, bytes, _)| vector(bytes)).collect();
        let refs: Vec<&Beam> = beams.iter().collect();
        let prepared = prepare_all(&refs).unwrap();
        assert_eq!(&prepared.batch[..2], &[ETF_VERSION, ETF_COMPRESSED]);
        let Term::List(decoded) = Term::decode(prepared.batch.as_slice()).unwrap() else {
            panic!("not a list");
        };
        assert_eq!(decoded.elements.len(), 2);
        for (entry, (beam, wire)) in decoded.elements.iter().zip(&prepared.modules) {
            let Term::Tuple(t) = entry else {
                panic!("not a tuple: {entry}")
            };
            match t.elements.as_slice() {
                [Term::Atom(m), Term::ByteList(file), Term::Binary(bytes)] => {
                    assert_eq!(m.name, beam.name);
                    assert_eq!(file.bytes, b"v.beam");
                    assert_eq!(bytes.bytes, wire.bytes);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let plain: usize = prepared.modules.iter().map(|(_, w)| w.bytes.len()).sum();
        assert!(
            prepared.batch.len() < plain,
            "{} of {plain}",
            prepared.batch.len()
        );
    }
}
