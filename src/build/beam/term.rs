//! A small, bounded decoder for the Erlang external term format, as the compiler writes it into
//! the literal table (LitT), the attributes chunk (Attr), CInf and Meta, and as Mix writes
//! `compile.elixir_scm`. (Terms a peer sends over distribution are checked by `remote/node/bounds.rs`
//! and decoded by erl_dist: different input, full terms kept.)
//!
//! Only the shape the tool needs survives decoding: atoms, tuples, lists, maps and strings;
//! numbers, binaries (unless asked for) and the rest are skipped. Nothing is allocated from a
//! count in the input (every element costs at least one input byte), nesting is limited, and so
//! is the number of terms decoded as a tree (a byte of input can become a 32-byte [`Term`]); the
//! literal table, which may be large, is walked for its distinct atoms without a tree
//! ([`atoms_into`]). So hostile bytes yield an error, never a memory many times their size.

use std::collections::BTreeSet;

/// A decoded term, reduced to what names modules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// An atom, as UTF-8.
    Atom(String),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A proper or improper list (the tail is kept as the last element when not `[]`).
    List(Vec<Term>),
    /// A map, as key/value pairs.
    Map(Vec<(Term, Term)>),
    /// A string of bytes (STRING_EXT, a short charlist), or a binary (BINARY_EXT) when asked
    /// for: how the compiler and Mix write versions.
    Bytes(Vec<u8>),
    /// A number, binary, fun or anything else that cannot name a module.
    Other,
}

impl Term {
    /// The atom's text, if this is an atom.
    pub fn as_atom(&self) -> Option<&str> {
        match self {
            Term::Atom(a) => Some(a),
            _ => None,
        }
    }
}

/// Why bytes are not a term we can decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtfError {
    /// The input ends inside a term.
    #[error("term truncated")]
    Truncated,
    /// The term does not start with the version byte 131.
    #[error("term does not start with version byte 131")]
    BadVersion,
    /// A tag this decoder does not know (or that cannot appear in compiled code).
    #[error("unexpected term tag {0}")]
    BadTag(u8),
    /// An atom's bytes are not valid UTF-8.
    #[error("atom is not valid UTF-8")]
    BadAtom,
    /// Terms nested deeper than any compiler writes.
    #[error("term nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A compressed term whose zlib data is corrupt or whose size is wrong.
    #[error("corrupt compressed term")]
    BadCompression,
    /// Bytes follow the term.
    #[error("trailing bytes after term")]
    Trailing,
    /// More terms than `MAX_TERMS`.
    #[error("more than {MAX_TERMS} terms")]
    TooMany,
    /// More distinct atoms than `MAX_ATOMS`.
    #[error("more than {MAX_ATOMS} distinct atoms, more than the VM's atom table holds")]
    TooManyAtoms,
}

/// Deeper than anything real code produces, shallow enough for the thread's stack.
const MAX_DEPTH: usize = 200;

/// The most terms decoded as a tree from one input (the attributes, compile info or metadata of
/// a module: small terms): a million (32 MiB of [`Term`]s, within the fuzzer's 64 MiB allocation
/// limit) is far beyond real code.
pub const MAX_TERMS: usize = 1 << 20;

/// The most distinct atoms [`atoms_into`] collects: the VM's own atom table holds no more (its
/// default size), so no module that can be loaded has more.
pub const MAX_ATOMS: usize = 1 << 20;

/// Decodes one complete term (with its version byte) that fills `bytes` exactly; binaries are
/// skipped (they are most of a literal table and never name a module).
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    decode_term(bytes, false, &mut { MAX_TERMS }, None)
}

/// Adds every atom of the term `bytes` (with its version byte, filling it exactly) to `atoms`,
/// without building the term: for the literal table, whose data may be large. Memory grows only
/// with the distinct atoms, at most [`MAX_ATOMS`] of them.
pub fn atoms_into(bytes: &[u8], atoms: &mut BTreeSet<String>) -> Result<(), EtfError> {
    decode_term(bytes, false, &mut { usize::MAX }, Some(atoms)).map(drop)
}

/// Like [`decode`], but binaries are kept as [`Term::Bytes`]: for the small terms whose binaries
/// are wanted, such as the Elixir version in Mix's `compile.elixir_scm`.
pub fn decode_with_binaries(bytes: &[u8]) -> Result<Term, EtfError> {
    decode_term(bytes, true, &mut { MAX_TERMS }, None)
}

fn decode_term(
    bytes: &[u8],
    binaries: bool,
    left: &mut usize,
    atoms: Option<&mut BTreeSet<String>>,
) -> Result<Term, EtfError> {
    let (&version, rest) = bytes.split_first().ok_or(EtfError::Truncated)?;
    if version != 131 {
        return Err(EtfError::BadVersion);
    }
    let mut decoder = Decoder {
        binaries,
        left,
        atoms,
    };
    if rest.first() == Some(&80) {
        return decoder.compressed(&rest[1..]);
    }
    let mut input = rest;
    let term = decoder.term(&mut input, 0)?;
    if !input.is_empty() {
        return Err(EtfError::Trailing);
    }
    Ok(term)
}

/// The largest inflated literal accepted: far beyond real code, small enough to never exhaust memory.
const MAX_INFLATED: usize = 64 << 20;

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], EtfError> {
    if n > input.len() {
        return Err(EtfError::Truncated);
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn u8_(input: &mut &[u8]) -> Result<u8, EtfError> {
    Ok(take(input, 1)?[0])
}

fn u16_(input: &mut &[u8]) -> Result<usize, EtfError> {
    let b = take(input, 2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
}

fn u32_(input: &mut &[u8]) -> Result<usize, EtfError> {
    let b = take(input, 4)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// One input's decoding: whether binaries are kept, how many more terms may be decoded, and,
/// when only its atoms are wanted, where they go (the term is then not built: every container
/// decodes to [`Term::Other`]).
struct Decoder<'l> {
    binaries: bool,
    left: &'l mut usize,
    atoms: Option<&'l mut BTreeSet<String>>,
}

impl Decoder<'_> {
    /// A `term_to_binary(T, [compressed])` body: the uncompressed size, then zlib data.
    fn compressed(&mut self, mut rest: &[u8]) -> Result<Term, EtfError> {
        let size = u32_(&mut rest)?;
        if size > MAX_INFLATED {
            return Err(EtfError::BadCompression);
        }
        let plain = super::inflate::exact(rest, size).ok_or(EtfError::BadCompression)?;
        let mut input = plain.as_slice();
        let term = self.term(&mut input, 0)?;
        if !input.is_empty() {
            return Err(EtfError::Trailing);
        }
        Ok(term)
    }

    /// Reads `count` terms; each costs at least one byte, so a lying count runs out of input first.
    fn terms(
        &mut self,
        input: &mut &[u8],
        count: usize,
        depth: usize,
    ) -> Result<Vec<Term>, EtfError> {
        let mut out = Vec::new();
        for _ in 0..count {
            let term = self.term(input, depth + 1)?;
            if self.atoms.is_none() {
                out.push(term);
            }
        }
        Ok(out)
    }

    /// The atom `name`: collected, when only atoms are wanted, else a term.
    fn atom(&mut self, name: std::borrow::Cow<'_, str>) -> Result<Term, EtfError> {
        let Some(atoms) = self.atoms.as_deref_mut() else {
            return Ok(Term::Atom(name.into_owned()));
        };
        if !atoms.contains(name.as_ref()) {
            if atoms.len() >= MAX_ATOMS {
                return Err(EtfError::TooManyAtoms);
            }
            atoms.insert(name.into_owned());
        }
        Ok(Term::Other)
    }

    /// Reads one term (a container with everything in it).
    fn term(&mut self, input: &mut &[u8], depth: usize) -> Result<Term, EtfError> {
        if depth > MAX_DEPTH {
            return Err(EtfError::TooDeep);
        }
        *self.left = self.left.checked_sub(1).ok_or(EtfError::TooMany)?;
        let binaries = self.binaries;
        let tree = self.atoms.is_none();
        let tag = u8_(input)?;
        let skip = |input: &mut &[u8], n: usize| take(input, n).map(|_| Term::Other);
        match tag {
            // ATOM_EXT and SMALL_ATOM_EXT are Latin-1; every byte is the code point of its char.
            100 => {
                let n = u16_(input)?;
                self.atom(latin1(take(input, n)?).into())
            }
            115 => {
                let n = u8_(input)? as usize;
                self.atom(latin1(take(input, n)?).into())
            }
            118 => {
                let n = u16_(input)?;
                self.atom(utf8(take(input, n)?)?.into())
            }
            119 => {
                let n = u8_(input)? as usize;
                self.atom(utf8(take(input, n)?)?.into())
            }
            104 => {
                let n = u8_(input)? as usize;
                self.terms(input, n, depth).map(Term::Tuple)
            }
            105 => {
                let n = u32_(input)?;
                self.terms(input, n, depth).map(Term::Tuple)
            }
            106 => Ok(Term::List(Vec::new())),
            108 => {
                let n = u32_(input)?;
                let mut items = self.terms(input, n, depth)?;
                match self.term(input, depth + 1)? {
                    Term::List(tail) if tail.is_empty() => {}
                    tail => items.push(tail),
                }
                Ok(Term::List(items))
            }
            116 => {
                let n = u32_(input)?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    let key = self.term(input, depth + 1)?;
                    let value = self.term(input, depth + 1)?;
                    if tree {
                        pairs.push((key, value));
                    }
                }
                Ok(Term::Map(pairs))
            }
            // EXPORT_EXT: `&Mod.fun/arity` as a literal; the module is what matters.
            113 => {
                let parts = self.terms(input, 3, depth)?;
                Ok(Term::Tuple(parts))
            }
            97 => skip(input, 1),
            98 => skip(input, 4),
            70 => skip(input, 8),
            99 => skip(input, 31),
            107 if !tree => {
                let n = u16_(input)?;
                skip(input, n)
            }
            107 => {
                let n = u16_(input)?;
                Ok(Term::Bytes(take(input, n)?.to_vec()))
            }
            109 if binaries => {
                let n = u32_(input)?;
                Ok(Term::Bytes(take(input, n)?.to_vec()))
            }
            109 => {
                let n = u32_(input)?;
                skip(input, n)
            }
            77 => {
                let n = u32_(input)?;
                skip(input, n.saturating_add(1))
            }
            110 => {
                let n = u8_(input)? as usize;
                skip(input, n + 1)
            }
            111 => {
                let n = u32_(input)?;
                skip(input, n.saturating_add(1))
            }
            other => Err(EtfError::BadTag(other)),
        }
    }
}

/// An atom's text in UTF-8 (ATOM_UTF8_EXT).
fn utf8(bytes: &[u8]) -> Result<&str, EtfError> {
    std::str::from_utf8(bytes).map_err(|_| EtfError::BadAtom)
}

/// An atom's text in Latin-1 (ATOM_EXT, SMALL_ATOM_EXT): every byte is the code point of its
/// char.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(s: &str) -> Term {
        Term::Atom(s.to_owned())
    }

    #[test]
    fn decodes_nested_containers_and_skips_scalars() {
        // term_to_binary({[a, 'Elixir.B'], #{k => <<"v">>}, 1, 3.0, "str"}) written by hand.
        let mut b = vec![131, 104, 5];
        b.extend([108, 0, 0, 0, 2, 119, 1, b'a', 119, 8]);
        b.extend(b"Elixir.B");
        b.extend([106, 116, 0, 0, 0, 1, 119, 1, b'k', 109, 0, 0, 0, 1, b'v']);
        b.extend([97, 1, 70, 0, 0, 0, 0, 0, 0, 0, 0, 107, 0, 3]);
        b.extend(b"str");
        let t = decode(&b).unwrap();
        let list = Term::List(vec![atom("a"), atom("Elixir.B")]);
        let map = Term::Map(vec![(atom("k"), Term::Other)]);
        let str = Term::Bytes(b"str".to_vec());
        assert_eq!(
            t,
            Term::Tuple(vec![list, map, Term::Other, Term::Other, str])
        );
    }

    #[test]
    fn export_literal_names_its_module() {
        let mut b = vec![131, 113, 119, 5];
        b.extend(b"Mod.X");
        b.extend([119, 3]);
        b.extend(b"fun");
        b.extend([97, 2]);
        let t = decode(&b).unwrap();
        assert_eq!(
            t,
            Term::Tuple(vec![atom("Mod.X"), atom("fun"), Term::Other])
        );
    }

    #[test]
    fn binaries_are_kept_only_when_asked_for() {
        // term_to_binary({<<"1.18.3">>, "27"}), as in Mix's compile.elixir_scm.
        let mut b = vec![131, 104, 2, 109, 0, 0, 0, 6];
        b.extend(b"1.18.3");
        b.extend([107, 0, 2, b'2', b'7']);
        let version = Term::Bytes(b"1.18.3".to_vec());
        let otp = Term::Bytes(b"27".to_vec());
        assert_eq!(
            decode_with_binaries(&b).unwrap(),
            Term::Tuple(vec![version, otp.clone()])
        );
        assert_eq!(decode(&b).unwrap(), Term::Tuple(vec![Term::Other, otp]));
        assert_eq!(
            decode_with_binaries(&b[..b.len() - 8]),
            Err(EtfError::Truncated)
        );
    }

    #[test]
    fn latin1_atoms_become_utf8() {
        let t = decode(&[131, 100, 0, 2, b'a', 0xE9]).unwrap();
        assert_eq!(t, atom("aé"));
    }

    #[test]
    fn hostile_input_is_an_error() {
        assert_eq!(decode(&[]), Err(EtfError::Truncated));
        assert_eq!(decode(&[130, 106]), Err(EtfError::BadVersion));
        assert_eq!(
            decode(&[131, 108, 255, 255, 255, 255]),
            Err(EtfError::Truncated)
        );
        assert_eq!(
            decode(&[131, 116, 255, 255, 255, 255, 106]),
            Err(EtfError::Truncated)
        );
        assert_eq!(decode(&[131, 119, 2, 0xff, 0xfe]), Err(EtfError::BadAtom));
        assert_eq!(decode(&[131, 106, 106]), Err(EtfError::Trailing));
        assert_eq!(decode(&[131, 88]), Err(EtfError::BadTag(88)));
        assert_eq!(
            decode(&[131, 80, 0, 0, 0, 9, 1, 2, 3]),
            Err(EtfError::BadCompression)
        );
        let mut deep = vec![131];
        deep.extend(std::iter::repeat_n([104u8, 1], 1000).flatten());
        deep.push(106);
        assert_eq!(decode(&deep), Err(EtfError::TooDeep));
    }

    #[test]
    fn the_terms_decoded_are_counted_against_a_limit() {
        // [[], [], ...]: the list, its elements and its tail are a term each.
        let nils = |n: usize| {
            let mut b = vec![131, 108];
            b.extend(u32::try_from(n).unwrap().to_be_bytes());
            b.resize(b.len() + n + 1, 106);
            b
        };
        assert!(decode(&nils(MAX_TERMS - 2)).is_ok());
        assert_eq!(decode(&nils(MAX_TERMS - 1)), Err(EtfError::TooMany));
    }

    #[test]
    fn only_the_distinct_atoms_of_a_literal_are_kept() {
        // [a, 'Elixir.B', {a, "str", #{a => [a]}}] and [b]: nothing but the atoms is built.
        let mut b = vec![131, 108, 0, 0, 0, 3, 119, 1, b'a', 119, 8];
        b.extend(b"Elixir.B");
        b.extend([104, 3, 100, 0, 1, b'a', 107, 0, 3, b's', b't', b'r']);
        b.extend([
            116, 0, 0, 0, 1, 115, 1, b'a', 108, 0, 0, 0, 1, 119, 1, b'a', 106, 106,
        ]);
        let mut atoms = BTreeSet::new();
        atoms_into(&b, &mut atoms).unwrap();
        atoms_into(&[131, 108, 0, 0, 0, 1, 119, 1, b'b', 106], &mut atoms).unwrap();
        assert_eq!(Vec::from_iter(atoms), ["Elixir.B", "a", "b"]);
        // However many terms (more than MAX_TERMS here), memory grows only with distinct atoms.
        let mut many = vec![131, 108];
        many.extend(u32::try_from(MAX_TERMS).unwrap().to_be_bytes());
        many.extend(std::iter::repeat_n([119u8, 1, b'z'], MAX_TERMS).flatten());
        many.push(106);
        let mut atoms = BTreeSet::new();
        atoms_into(&many, &mut atoms).unwrap();
        assert_eq!(atoms.len(), 1);
        let mut full: BTreeSet<String> = (0..MAX_ATOMS).map(|i| i.to_string()).collect();
        assert_eq!(
            atoms_into(&[131, 119, 1, b'y'], &mut full),
            Err(EtfError::TooManyAtoms)
        );
    }

    #[test]
    fn compressed_terms_are_inflated() {
        use std::io::Write;
        let plain = [119u8, 1, b'z'];
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&plain).unwrap();
        let mut b = vec![131, 80, 0, 0, 0, 3];
        b.extend(z.finish().unwrap());
        assert_eq!(decode(&b).unwrap(), atom("z"));
    }
}
