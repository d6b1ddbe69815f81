//! A module as it goes on the wire, and how the remote recognises it.
//!
//! The MD5 is the one the remote loader reports for a loaded module (`Mod:module_info(md5)`,
//! the same as `beam_lib:md5/1`): over the data of the chunks Atom/AtU8, Code, StrT, ImpT, ExpT,
//! FunT, LitT and Meta, in that order, with the "old unique" field of every FunT entry zeroed.
//! Debug info, docs and compile details are not part of it, so a module the remote already runs
//! is recognised whatever else differs in its file.
//!
//! The bytes sent are the file without the chunks the loader never reads (debug info, docs,
//! Elixir's compile-time checker data: about half of an Elixir `.beam`; on the remote they would
//! be unreachable anyway, since tools read them from the file, not from loaded code), gzip
//! compressed, which the loader accepts as is. Both are computed while SSH connects.

use std::io::Write;

use crate::beam::{self, Beam, BeamErrorKind, RawChunk};

/// Chunks whose data the MD5 covers, in the order it covers them.
const MD5_CHUNKS: [&[u8; 4]; 9] = [
    b"Atom", b"AtU8", b"Code", b"StrT", b"ImpT", b"ExpT", b"FunT", b"LitT", b"Meta",
];
/// Chunks the loader never reads: Erlang and Elixir debug info, docs, Elixir's checker data.
const UNREAD_CHUNKS: [&[u8; 4]; 4] = [b"Dbgi", b"Abst", b"Docs", b"ExCk"];
/// Size of one FunT entry, and where its old-unique field starts within it.
const FUNT_ENTRY: usize = 24;
const FUNT_OLD_UNIQ: usize = 20;
/// gzip level of the bytes sent: see the README's measurements.
const GZIP_LEVEL: u32 = 6;

/// A module ready to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wire {
    /// The MD5 the remote loader computes for this module.
    pub md5: [u8; 16],
    /// What the loader receives: the file without unread chunks, gzip-compressed.
    pub bytes: Vec<u8>,
}

/// Prepares `beam` for the wire.
pub fn prepare(beam: &Beam) -> Result<Wire, BeamErrorKind> {
    let chunks = beam::raw_chunks(&beam.bytes)?;
    let md5 = md5(&chunks);
    let kept: Vec<_> = chunks
        .iter()
        .filter(|(id, _)| !UNREAD_CHUNKS.contains(&id))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(GZIP_LEVEL));
    let body_len: usize = 4 + kept
        .iter()
        .map(|(_, data)| 8 + data.len().next_multiple_of(4))
        .sum::<usize>();
    let mut container = Vec::with_capacity(8 + body_len);
    container.extend_from_slice(b"FOR1");
    container.extend_from_slice(&(body_len as u32).to_be_bytes());
    container.extend_from_slice(b"BEAM");
    for (id, data) in kept {
        container.extend_from_slice(id);
        container.extend_from_slice(&(data.len() as u32).to_be_bytes());
        container.extend_from_slice(data);
        container.resize(container.len().next_multiple_of(4), 0);
    }
    gz.write_all(&container).map_err(BeamErrorKind::Gzip)?;
    let bytes = gz.finish().map_err(BeamErrorKind::Gzip)?;
    Ok(Wire { md5, bytes })
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
            include_bytes!("../tests/vectors/md5/Elixir.MixRemote.Md5Vector.beam"),
            include_str!("../tests/vectors/md5/Elixir.MixRemote.Md5Vector.md5"),
        ),
        (
            "md5_vector_erl",
            include_bytes!("../tests/vectors/md5/md5_vector_erl.beam"),
            include_str!("../tests/vectors/md5/md5_vector_erl.md5"),
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
        assert!(wire.bytes.starts_with(&[0x1f, 0x8b]), "not gzip-compressed");
        assert!(
            wire.bytes.len() < bytes.len() / 2,
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
}
