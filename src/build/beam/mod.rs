//! Reads compiled `.beam` files: the IFF container and the chunks the graph needs.
//!
//! Only what the rest of the tool uses is decoded: the atom table (both the OTP <= 27 layout and the
//! OTP 28+ compact one), the export table (to check the entry function), the import table, the
//! atoms inside literal data (the literal table), the attributes that tie modules together
//! (behaviours, protocol implementations) and the compiler version. Every count and size is checked
//! against the bytes actually present, so hostile input yields an error, never a panic or an
//! allocation driven by an unchecked number.

pub mod code;
pub mod halts;
mod inflate;
pub(crate) mod term;

pub use term::EtfError;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// A parsed module: its name, the atoms and functions the graph needs, and the bytes to push.
#[derive(Debug, Clone, Default)]
pub struct Beam {
    /// Module name as an atom (`Elixir.MyApp.Worker`, `my_erlang_mod`).
    pub name: String,
    /// Every atom of the atom table, the module's own name first.
    pub atoms: Vec<String>,
    /// Exported functions as (name, arity).
    pub exports: Vec<(String, u32)>,
    /// Modules whose functions this module calls by name (the import table), sorted.
    pub imports: Vec<String>,
    /// Atoms inside literal data (module attributes, constant lists and maps): the compiler keeps
    /// them out of the atom table, yet they can name modules called through `apply/3`. Sorted.
    pub literal_atoms: Vec<String>,
    /// Behaviours the module declares (`@behaviour`, `-behaviour`).
    pub behaviours: Vec<String>,
    /// For an Elixir protocol implementation (`defimpl`): the protocol and the type it is for.
    pub implements: Option<Impl>,
    /// Whether the module defines an Elixir protocol (`defprotocol`).
    pub is_protocol: bool,
    /// Version of the OTP `compiler` application that built the module (CInf), if recorded.
    pub compiler_version: Option<String>,
    /// Where the file was read from.
    pub path: PathBuf,
    /// The file exactly as read (possibly gzip-compressed): what the remote loader receives.
    pub bytes: Vec<u8>,
    /// The module has `-on_load`: the loader runs it, and `code:atomic_load` refuses it.
    pub on_load: bool,
    /// What the remote's loader must support: opcodes, atom table layout, features.
    pub needs: code::Needs,
}

/// What a `defimpl` module implements: `defimpl Proto, for: Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impl {
    /// The protocol module.
    pub protocol: String,
    /// The struct module or built-in type alias (`Elixir.Integer`, `Elixir.Any`) it is for.
    pub for_type: String,
}

/// Why a `.beam` file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct BeamError {
    /// The file at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub kind: BeamErrorKind,
}

/// The ways a `.beam` file can be malformed.
#[derive(Debug, thiserror::Error)]
pub enum BeamErrorKind {
    /// Reading the file failed.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// Not a FOR1/BEAM container.
    #[error("not a BEAM file (bad magic)")]
    BadMagic,
    /// A chunk or table claims more bytes than there are.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A chunk's contents break its format.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A required chunk is absent.
    #[error("missing {0} chunk")]
    MissingChunk(&'static str),
    /// An atom is not valid UTF-8.
    #[error("atom {0} is not valid UTF-8")]
    BadAtom(usize),
    /// A table refers to an atom index that does not exist.
    #[error("{0} refers to atom {1}, which does not exist")]
    BadAtomIndex(&'static str, u32),
    /// The gzip stream is corrupt.
    #[error("corrupt gzip compression: {0}")]
    Gzip(std::io::Error),
    /// A chunk's zlib-compressed data is corrupt or does not have its declared size.
    #[error("corrupt compressed {0}")]
    Zlib(&'static str),
    /// A term inside a chunk cannot be decoded.
    #[error("{0}: {1}")]
    Term(&'static str, EtfError),
    /// The shipped applications, up to this module, come to more than one term can carry.
    #[error("too much to ship: more than 4 GiB uncompressed, or a name too long for an atom")]
    TooLarge,
}

/// Reads and parses the `.beam` file at `path`.
pub fn read(path: &Path) -> Result<Beam, BeamError> {
    let fail = |kind| BeamError {
        path: path.to_owned(),
        kind,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(BeamErrorKind::Io(e)))?;
    parse(path, bytes).map_err(fail)
}

/// Parses `.beam` bytes (plain or gzip-compressed); `path` is kept for messages and the loader.
pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Beam, BeamErrorKind> {
    let plain = if bytes.starts_with(&[0x1f, 0x8b]) {
        Some(gunzip(&bytes).map_err(BeamErrorKind::Gzip)?)
    } else {
        None
    };
    let container = plain.as_deref().unwrap_or(&bytes);
    let chunks = chunks(container)?;
    let find = |id: &[u8; 4]| chunks.iter().find(|(cid, _)| cid == id).map(|(_, d)| *d);

    let atoms = match (find(b"AtU8"), find(b"Atom")) {
        (Some(data), _) | (None, Some(data)) => atom_table(data)?,
        (None, None) => return Err(BeamErrorKind::MissingChunk("AtU8")),
    };
    let name = atoms
        .first()
        .cloned()
        .ok_or(BeamErrorKind::Truncated("atom table (no module name)"))?;
    let exports = match find(b"ExpT") {
        Some(data) => export_table(data, &atoms)?,
        None => return Err(BeamErrorKind::MissingChunk("ExpT")),
    };
    let imports = find(b"ImpT")
        .map(|data| import_table(data, &atoms))
        .transpose()?
        .unwrap_or_default();
    let literal_atoms = find(b"LitT")
        .map(literal_atoms)
        .transpose()?
        .unwrap_or_default();
    let attributes = find(b"Attr")
        .map(|data| term::decode(data).map_err(|e| BeamErrorKind::Term("attributes", e)))
        .transpose()?;
    let compile_info = find(b"CInf")
        .map(|data| term::decode(data).map_err(|e| BeamErrorKind::Term("compile info", e)))
        .transpose()?;
    let attribute = |key: &str| attributes.as_ref().and_then(|a| keyword(a, key));
    // Attr holds one entry per `-behaviour`/`@behaviour` line, so every entry counts.
    let behaviours = attributes
        .iter()
        .flat_map(|a| ["behaviour", "behavior"].map(|key| keywords(a, key)))
        .flatten()
        .flat_map(atoms_of)
        .collect();
    let implements = attribute("__impl__").and_then(|kw| {
        Some(Impl {
            protocol: keyword(kw, "protocol")?.as_atom()?.to_owned(),
            for_type: keyword(kw, "for")?.as_atom()?.to_owned(),
        })
    });
    let compiler_version = compile_info
        .as_ref()
        .and_then(|info| keyword(info, "version"))
        .and_then(|v| match v {
            term::Term::Bytes(b) => String::from_utf8(b.clone()).ok(),
            _ => None,
        });
    let (on_load, needs) = code::read(find, &atoms)?;
    Ok(Beam {
        name,
        is_protocol: attribute("__protocol__").is_some(),
        atoms,
        exports,
        imports,
        literal_atoms,
        behaviours,
        implements,
        compiler_version,
        path: path.to_owned(),
        bytes,
        on_load,
        needs,
    })
}

/// A chunk's four-letter id and its data.
pub type RawChunk<'a> = ([u8; 4], &'a [u8]);

/// Calls `each` with the chunks of `.beam` bytes (plain or gzip-compressed) as (id, data), in
/// file order: what `wire` needs to compute the loader's MD5 and to leave out chunks the loader
/// ignores, without copying them (only a compressed file is expanded, for the call's duration).
pub fn with_raw_chunks<R>(
    bytes: &[u8],
    each: impl FnOnce(&[RawChunk<'_>]) -> R,
) -> Result<R, BeamErrorKind> {
    let plain;
    let container = if bytes.starts_with(&[0x1f, 0x8b]) {
        plain = gunzip(bytes).map_err(BeamErrorKind::Gzip)?;
        plain.as_slice()
    } else {
        bytes
    };
    Ok(each(&chunks(container)?))
}

/// The most a compressed `.beam` may expand to; real modules are far smaller.
const MAX_UNCOMPRESSED: u32 = 256 << 20;

/// Decompresses a gzip-compressed `.beam`. The size the gzip trailer declares is checked against
/// [`MAX_UNCOMPRESSED`] before anything is inflated, and inflating stops one byte past that size, so a
/// small hostile file cannot make the reader allocate gigabytes.
fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
    let Some(trailer) = bytes.last_chunk::<4>() else {
        return Err(invalid("no gzip trailer".to_owned()));
    };
    let declared = u32::from_le_bytes(*trailer);
    if declared > MAX_UNCOMPRESSED {
        return Err(invalid(format!(
            "declares {declared} bytes uncompressed, over the limit of {MAX_UNCOMPRESSED}"
        )));
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(u64::from(declared) + 1)
        .read_to_end(&mut out)?;
    if out.len() != declared as usize {
        return Err(invalid(format!(
            "does not expand to the {declared} bytes its trailer declares"
        )));
    }
    Ok(out)
}

/// Splits the IFF container into chunks, checking every size.
fn chunks(data: &[u8]) -> Result<Vec<RawChunk<'_>>, BeamErrorKind> {
    if data.len() < 12 || &data[0..4] != b"FOR1" || &data[8..12] != b"BEAM" {
        return Err(BeamErrorKind::BadMagic);
    }
    let declared = u32::from_be_bytes([data[4], data[5], data[6], data[7]]) as usize;
    let body = data
        .get(8..8usize.saturating_add(declared))
        .ok_or(BeamErrorKind::Truncated("container"))?;
    let mut rest = body.get(4..).ok_or(BeamErrorKind::Truncated("container"))?;
    let mut out = Vec::new();
    while rest.len() >= 8 {
        let id = [rest[0], rest[1], rest[2], rest[3]];
        let size = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let chunk = rest
            .get(8..8usize.saturating_add(size))
            .ok_or(BeamErrorKind::Truncated("chunk"))?;
        out.push((id, chunk));
        let padded = size.saturating_add(3) & !3;
        rest = rest.get(8usize.saturating_add(padded)..).unwrap_or(&[]);
    }
    Ok(out)
}

/// A cursor over a chunk that reports truncation instead of panicking.
struct Cursor<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BeamErrorKind> {
        if n > self.data.len() {
            return Err(BeamErrorKind::Truncated(self.what));
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, BeamErrorKind> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, BeamErrorKind> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Decodes an atom table: OTP <= 27 stores a positive count and one length byte per atom; OTP 28+
/// stores the count negated and compact-encoded lengths.
fn atom_table(data: &[u8]) -> Result<Vec<String>, BeamErrorKind> {
    let mut cur = Cursor {
        data,
        what: "atom table",
    };
    let raw = cur.u32()? as i32;
    let compact = raw < 0;
    let count = raw.unsigned_abs() as usize;
    // Each atom needs at least one length byte: a count larger than the chunk is a lie.
    if count > data.len() {
        return Err(BeamErrorKind::Truncated("atom table"));
    }
    let mut atoms = Vec::with_capacity(count);
    for index in 1..=count {
        let len = if compact {
            compact_length(&mut cur)?
        } else {
            cur.u8()? as usize
        };
        let bytes = cur.take(len)?;
        let atom = std::str::from_utf8(bytes).map_err(|_| BeamErrorKind::BadAtom(index))?;
        atoms.push(atom.to_owned());
    }
    Ok(atoms)
}

/// Reads one compact-term-encoded atom length (tag bits 0b010 for literals, as the OTP 28 compiler
/// writes them): `N < 16` in one byte, `N < 2048` in two.
fn compact_length(cur: &mut Cursor) -> Result<usize, BeamErrorKind> {
    let first = cur.u8()?;
    if first & 0x08 == 0 {
        Ok((first >> 4) as usize)
    } else if first & 0x10 == 0 {
        let second = cur.u8()?;
        Ok((((first & 0xE0) as usize) << 3) | second as usize)
    } else {
        Err(BeamErrorKind::Truncated(
            "atom table (atom longer than 2047 bytes)",
        ))
    }
}

/// Decodes ExpT: a count, then (function atom, arity, label) triples.
fn export_table(data: &[u8], atoms: &[String]) -> Result<Vec<(String, u32)>, BeamErrorKind> {
    let mut cur = Cursor {
        data,
        what: "export table",
    };
    let count = cur.u32()? as usize;
    if count > data.len() / 12 {
        return Err(BeamErrorKind::Truncated("export table"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let fun = cur.u32()?;
        let arity = cur.u32()?;
        let _label = cur.u32()?;
        let name = atoms
            .get((fun as usize).wrapping_sub(1))
            .ok_or(BeamErrorKind::BadAtomIndex("export table", fun))?;
        out.push((name.clone(), arity));
    }
    Ok(out)
}

/// Decodes ImpT: a count, then (module atom, function atom, arity) triples; keeps the modules.
fn import_table(data: &[u8], atoms: &[String]) -> Result<Vec<String>, BeamErrorKind> {
    let mut out = import_entries(data)?
        .into_iter()
        .map(|[module, _function, _arity]| {
            atoms
                .get((module as usize).wrapping_sub(1))
                .cloned()
                .ok_or(BeamErrorKind::BadAtomIndex("import table", module))
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// ImpT's (module atom, function atom, arity) triples, the atoms as one-based indices.
fn import_entries(data: &[u8]) -> Result<Vec<[u32; 3]>, BeamErrorKind> {
    let mut cur = Cursor {
        data,
        what: "import table",
    };
    let count = cur.u32()? as usize;
    if count > data.len() / 12 {
        return Err(BeamErrorKind::Truncated("import table"));
    }
    (0..count)
        .map(|_| Ok([cur.u32()?, cur.u32()?, cur.u32()?]))
        .collect()
}

/// The largest inflated literal table accepted: far beyond real modules, never exhausting memory.
const MAX_LITERALS: usize = 256 << 20;

/// Decodes LitT and returns every atom inside its literals. The chunk starts with the size of the
/// literal data once inflated; zlib data follows, or (size 0) the data itself uncompressed.
fn literal_atoms(data: &[u8]) -> Result<Vec<String>, BeamErrorKind> {
    let mut cur = Cursor {
        data,
        what: "literal table",
    };
    let inflated_size = cur.u32()? as usize;
    let inflated;
    let body = if inflated_size == 0 {
        cur.data
    } else {
        if inflated_size > MAX_LITERALS {
            return Err(BeamErrorKind::Zlib("literal table"));
        }
        inflated =
            inflate::exact(cur.data, inflated_size).ok_or(BeamErrorKind::Zlib("literal table"))?;
        &inflated
    };
    let mut cur = Cursor {
        data: body,
        what: "literal table",
    };
    let count = cur.u32()? as usize;
    let mut atoms = BTreeSet::new();
    for _ in 0..count {
        let size = cur.u32()? as usize;
        term::atoms_into(cur.take(size)?, &mut atoms)
            .map_err(|e| BeamErrorKind::Term("literal table", e))?;
    }
    Ok(atoms.into_iter().collect())
}

/// The value under `key` in a keyword list (`[{key, value}, ...]`), as the Attr and CInf chunks hold.
fn keyword<'t>(list: &'t term::Term, key: &str) -> Option<&'t term::Term> {
    keywords(list, key).next()
}

/// Every value under `key` in a keyword list, in order.
fn keywords<'t>(list: &'t term::Term, key: &str) -> impl Iterator<Item = &'t term::Term> {
    let items: &[term::Term] = match list {
        term::Term::List(items) => items,
        _ => &[],
    };
    items.iter().filter_map(move |item| match item {
        term::Term::Tuple(pair) if pair.len() == 2 && pair[0].as_atom() == Some(key) => {
            Some(&pair[1])
        }
        _ => None,
    })
}

/// The atoms of a list of atoms, as attributes such as `behaviour` hold them.
fn atoms_of(term: &term::Term) -> Vec<String> {
    match term {
        term::Term::List(items) => items
            .iter()
            .filter_map(|t| t.as_atom().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a minimal BEAM container from chunks, padding each to 4 bytes; a Code chunk holding
    /// only `int_code_end` is added unless one is given.
    pub(crate) fn container(chunks: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
        let mut body = b"BEAM".to_vec();
        let empty_code = [16, 0, 3, 0, 0].iter().flat_map(|v: &u32| v.to_be_bytes());
        let empty_code = (b"Code", empty_code.chain([3]).collect());
        let given_code = chunks.iter().any(|(id, _)| *id == b"Code");
        let extra = (!given_code).then_some(&empty_code);
        for (id, data) in chunks.iter().chain(extra) {
            body.extend_from_slice(*id);
            body.extend_from_slice(&(data.len() as u32).to_be_bytes());
            body.extend_from_slice(data);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut out = b"FOR1".to_vec();
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    pub(crate) fn old_atoms(atoms: &[&str]) -> Vec<u8> {
        let mut out = (atoms.len() as u32).to_be_bytes().to_vec();
        for a in atoms {
            out.push(a.len() as u8);
            out.extend_from_slice(a.as_bytes());
        }
        out
    }

    /// An OTP 28 atom table: lengths compact-encoded, tagged as that compiler tags them (0b010).
    pub(crate) fn compact_atoms(atoms: &[&str]) -> Vec<u8> {
        let mut out = (-(atoms.len() as i32)).to_be_bytes().to_vec();
        for a in atoms {
            let n = a.len();
            if n < 16 {
                out.push(((n << 4) | 0b010) as u8);
            } else {
                out.push((((n >> 3) & 0xE0) | 0x08 | 0b010) as u8);
                out.push((n & 0xFF) as u8);
            }
            out.extend_from_slice(a.as_bytes());
        }
        out
    }

    pub(crate) fn exports(list: &[(u32, u32)]) -> Vec<u8> {
        let mut out = (list.len() as u32).to_be_bytes().to_vec();
        for (i, (f, a)) in list.iter().enumerate() {
            for v in [*f, *a, i as u32 + 1] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        out
    }

    #[test]
    fn reads_old_atom_table_and_exports() {
        let bytes = container(&[
            (b"AtU8", old_atoms(&["Elixir.A", "run", "Elixir.B"])),
            (b"ExpT", exports(&[(2, 1)])),
        ]);
        let beam = parse(Path::new("a.beam"), bytes).unwrap();
        assert_eq!(beam.name, "Elixir.A");
        assert_eq!(beam.atoms, ["Elixir.A", "run", "Elixir.B"]);
        assert_eq!(beam.exports, [("run".to_owned(), 1)]);
    }

    #[test]
    fn reads_otp28_compact_atom_table() {
        let long = "Elixir.A.Very.Long.Module.Name.That.Needs.Two.Length.Bytes";
        let bytes = container(&[
            (b"AtU8", compact_atoms(&["m", long, "f"])),
            (b"ExpT", exports(&[(3, 0)])),
        ]);
        let beam = parse(Path::new("m.beam"), bytes).unwrap();
        assert_eq!(beam.atoms, ["m", long, "f"]);
    }

    #[test]
    fn reads_gzip_compressed_file() {
        use std::io::Write;
        let plain = container(&[(b"AtU8", old_atoms(&["z"])), (b"ExpT", exports(&[]))]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let beam = parse(Path::new("z.beam"), gz.finish().unwrap()).unwrap();
        assert_eq!(beam.name, "z");
    }

    /// A literal table holding `['Elixir.P', {x}]`, zlib-compressed as OTP <= 27 writes it, or
    /// stored plain behind a zero size.
    fn literal_table(compressed: bool) -> Vec<u8> {
        use std::io::Write;
        let mut lit = vec![131, 108, 0, 0, 0, 2, 119, 8];
        lit.extend(b"Elixir.P");
        lit.extend([104, 1, 119, 1, b'x', 106]);
        let mut body = 1u32.to_be_bytes().to_vec();
        body.extend((lit.len() as u32).to_be_bytes());
        body.extend(lit);
        if !compressed {
            let mut out = 0u32.to_be_bytes().to_vec();
            out.extend(body);
            return out;
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&body).unwrap();
        let mut out = (body.len() as u32).to_be_bytes().to_vec();
        out.extend(z.finish().unwrap());
        out
    }

    #[test]
    fn reads_atoms_inside_literals_compressed_or_not() {
        for compressed in [true, false] {
            let bytes = container(&[
                (b"AtU8", old_atoms(&["m"])),
                (b"ExpT", exports(&[])),
                (b"LitT", literal_table(compressed)),
            ]);
            let beam = parse(Path::new("m.beam"), bytes).unwrap();
            assert_eq!(beam.literal_atoms, ["Elixir.P", "x"]);
        }
    }

    #[test]
    fn corrupt_literal_table_is_an_error() {
        let mut lit = literal_table(true);
        let last = lit.len() - 3;
        lit[last] ^= 0xff;
        let bytes = container(&[
            (b"AtU8", old_atoms(&["m"])),
            (b"ExpT", exports(&[])),
            (b"LitT", lit),
        ]);
        assert!(matches!(
            parse(Path::new("m.beam"), bytes),
            Err(BeamErrorKind::Zlib("literal table"))
        ));
        let mut lying = literal_table(false);
        lying[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let bytes = container(&[
            (b"AtU8", old_atoms(&["m"])),
            (b"ExpT", exports(&[])),
            (b"LitT", lying),
        ]);
        assert!(parse(Path::new("m.beam"), bytes).is_err());
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        let good = container(&[
            (b"AtU8", old_atoms(&["Elixir.A", "run"])),
            (b"ExpT", exports(&[(2, 0)])),
        ]);
        for cut in 0..good.len() {
            let _ = parse(Path::new("x"), good[..cut].to_vec());
        }
        let empty_form = b"FOR1\0\0\0\0BEAM".to_vec();
        assert!(matches!(
            parse(Path::new("x"), empty_form),
            Err(BeamErrorKind::Truncated(_))
        ));
        let huge_count = container(&[(b"AtU8", u32::MAX.to_be_bytes().to_vec())]);
        assert!(parse(Path::new("x"), huge_count).is_err());
        let bad_index = container(&[(b"AtU8", old_atoms(&["a"])), (b"ExpT", exports(&[(9, 0)]))]);
        assert!(matches!(
            parse(Path::new("x"), bad_index),
            Err(BeamErrorKind::BadAtomIndex(_, 9))
        ));
        assert!(matches!(
            parse(Path::new("x"), b"not a beam at all".to_vec()),
            Err(BeamErrorKind::BadMagic)
        ));
    }
}
