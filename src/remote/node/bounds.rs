//! A bounds check of the external term format the peer sends over distribution, before erl_dist
//! decodes it. (Terms inside `.beam` files and Mix's build metadata are decoded by a separate,
//! smaller decoder, `build/beam/term.rs`: different input, different shapes kept.)
//!
//! The decoder trusts the lengths and counts a term declares (it reserves memory for them up
//! front) and recurses once per nesting level, so a few hostile bytes could make it reserve
//! gigabytes or overflow the stack (the `dist` fuzz target found the first). This walk reads the
//! same structure without building anything: a term that claims more than the bytes present, nests
//! deeper than [`MAX_DEPTH`], holds more than [`MAX_TERMS`] terms (each a byte on the wire but
//! some 50 once decoded), or uses an encoding distribution never sends us (compression, atom
//! cache references, `LOCAL_EXT`) is refused, and its frame skipped.

/// How deeply terms may nest: beyond what a run exchanges (the boot program flattens output to
/// binaries), and well below what overflows a 2 MiB stack while a term is decoded, cloned,
/// printed and dropped (about 2 KiB a level in a debug build).
pub const MAX_DEPTH: usize = 256;

/// How many terms a message may hold, nested ones counted: far beyond what the boot program
/// sends (output and results travel as binaries; a spare's description of a few thousand
/// modules is some ten thousand terms), and at most some 50 MB once decoded.
pub const MAX_TERMS: usize = 1 << 20;

const VERSION: u8 = 131;

/// Why bytes are not a term we will decode.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TermCheckError {
    /// A length or count reaches past the end of the bytes.
    #[error("term truncated at byte {0}")]
    Truncated(usize),
    /// A tag we do not accept.
    #[error("unsupported term tag {tag} at byte {at}")]
    Tag {
        /// The tag byte.
        tag: u8,
        /// Where it is.
        at: usize,
    },
    /// Nested deeper than [`MAX_DEPTH`].
    #[error("term nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A bit binary whose last byte claims an impossible number of bits.
    #[error("bit binary with {0} bits in its last byte")]
    Bits(usize),
    /// Bytes after the last term.
    #[error("{0} stray bytes after the terms")]
    Trailing(usize),
    /// More than [`MAX_TERMS`] terms.
    #[error("more than {MAX_TERMS} terms")]
    TooMany,
}

/// Checks one term with its version byte, and nothing after it: what the boot program prints,
/// hex-encoded, on its marker lines (`remote/boot.rs`).
pub fn check_term(bytes: &[u8]) -> Result<(), TermCheckError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        terms: 0,
    };
    reader.term()?;
    match bytes.len() - reader.pos {
        0 => Ok(()),
        n => Err(TermCheckError::Trailing(n)),
    }
}

/// Checks the body of a pass-through frame (after its type byte): a control term, optionally
/// followed by a message term, each with its version byte, and nothing else.
pub fn check_message(body: &[u8]) -> Result<(), TermCheckError> {
    let mut reader = Reader {
        bytes: body,
        pos: 0,
        terms: 0,
    };
    for _ in 0..2 {
        if reader.pos == body.len() {
            break;
        }
        reader.term()?;
    }
    match body.len() - reader.pos {
        0 => Ok(()),
        n => Err(TermCheckError::Trailing(n)),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Terms read so far.
    terms: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], TermCheckError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(TermCheckError::Truncated(self.pos))?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<usize, TermCheckError> {
        Ok(self.take(1)?[0] as usize)
    }

    fn u16(&mut self) -> Result<usize, TermCheckError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<usize, TermCheckError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// `n` more terms, each at least one byte: refuses counts the bytes cannot hold.
    fn count(&self, n: usize) -> Result<usize, TermCheckError> {
        if n > self.left() {
            Err(TermCheckError::Truncated(self.pos))
        } else {
            Ok(n)
        }
    }

    /// An atom, as the node of a pid, port or reference carries it.
    fn atom(&mut self) -> Result<(), TermCheckError> {
        let at = self.pos;
        let len = match self.u8()? as u8 {
            ATOM | ATOM_UTF8 => self.u16()?,
            SMALL_ATOM | SMALL_ATOM_UTF8 => self.u8()?,
            tag => return Err(TermCheckError::Tag { tag, at }),
        };
        self.take(len).map(drop)
    }

    /// One whole term with its version byte; iterative, so depth costs no stack.
    fn term(&mut self) -> Result<(), TermCheckError> {
        let at = self.pos;
        if self.u8()? as u8 != VERSION {
            return Err(TermCheckError::Tag {
                tag: self.bytes[at],
                at,
            });
        }
        // Terms still to read at each open nesting level.
        let mut open: Vec<usize> = vec![1];
        while let Some(top) = open.last_mut() {
            if *top == 0 {
                open.pop();
                continue;
            }
            *top -= 1;
            self.terms += 1;
            if self.terms > MAX_TERMS {
                return Err(TermCheckError::TooMany);
            }
            let children = self.one()?;
            if children > 0 {
                if open.len() >= MAX_DEPTH {
                    return Err(TermCheckError::TooDeep);
                }
                open.push(children);
            }
        }
        Ok(())
    }

    /// Reads one term's own bytes; returns how many terms it contains, to be read next.
    fn one(&mut self) -> Result<usize, TermCheckError> {
        let at = self.pos;
        let tag = self.u8()? as u8;
        let skip = |r: &mut Self, n: usize| r.take(n).map(|_| 0);
        match tag {
            SMALL_INTEGER => skip(self, 1),
            INTEGER => skip(self, 4),
            FLOAT => skip(self, 31),
            NEW_FLOAT => skip(self, 8),
            ATOM | ATOM_UTF8 | STRING => {
                let n = self.u16()?;
                skip(self, n)
            }
            SMALL_ATOM | SMALL_ATOM_UTF8 => {
                let n = self.u8()?;
                skip(self, n)
            }
            BINARY => {
                let n = self.u32()?;
                skip(self, n)
            }
            BIT_BINARY => {
                let n = self.u32()?;
                let bits = self.u8()?;
                // The decoder shifts the last byte by 8 - bits: 1 to 8 bits, or nothing at all.
                if n > 0 && !(1..=8).contains(&bits) {
                    return Err(TermCheckError::Bits(bits));
                }
                skip(self, n)
            }
            SMALL_BIG => {
                let n = self.u8()?;
                skip(self, n + 1)
            }
            LARGE_BIG => {
                let n = self.u32()?;
                skip(self, n.saturating_add(1))
            }
            NIL => Ok(0),
            SMALL_TUPLE => {
                let n = self.u8()?;
                self.count(n)
            }
            LARGE_TUPLE => {
                let n = self.u32()?;
                self.count(n)
            }
            LIST => {
                let n = self.u32()?;
                self.count(n.saturating_add(1))
            }
            MAP => {
                let n = self.u32()?;
                self.count(n.saturating_mul(2))
            }
            PID | NEW_PID => {
                self.atom()?;
                skip(self, if tag == PID { 9 } else { 12 })
            }
            PORT | NEW_PORT | V4_PORT => {
                self.atom()?;
                skip(
                    self,
                    match tag {
                        PORT => 5,
                        NEW_PORT => 8,
                        _ => 12,
                    },
                )
            }
            REFERENCE => {
                self.atom()?;
                skip(self, 5)
            }
            NEW_REFERENCE | NEWER_REFERENCE => {
                let words = self.u16()?;
                self.atom()?;
                let creation = if tag == NEW_REFERENCE { 1 } else { 4 };
                skip(self, creation + words * 4)
            }
            EXPORT => self.count(3),
            NEW_FUN => {
                // Size, arity, uniq, index, then the count of free variables; then module,
                // old index, old uniq and pid, then the free variables.
                self.take(4 + 1 + 16 + 4)?;
                let free = self.u32()?;
                self.count(free.saturating_add(4))
            }
            FUN => {
                // Free variable count, then pid, module, index, uniq and the free variables.
                let free = self.u32()?;
                self.count(free.saturating_add(4))
            }
            tag => Err(TermCheckError::Tag { tag, at }),
        }
    }
}

const NEW_FLOAT: u8 = 70;
const BIT_BINARY: u8 = 77;
const NEW_PID: u8 = 88;
const NEW_PORT: u8 = 89;
const NEWER_REFERENCE: u8 = 90;
const SMALL_INTEGER: u8 = 97;
const INTEGER: u8 = 98;
const FLOAT: u8 = 99;
const ATOM: u8 = 100;
const REFERENCE: u8 = 101;
const PORT: u8 = 102;
const PID: u8 = 103;
const SMALL_TUPLE: u8 = 104;
const LARGE_TUPLE: u8 = 105;
const NIL: u8 = 106;
const STRING: u8 = 107;
const LIST: u8 = 108;
const BINARY: u8 = 109;
const SMALL_BIG: u8 = 110;
const LARGE_BIG: u8 = 111;
const NEW_FUN: u8 = 112;
const EXPORT: u8 = 113;
const NEW_REFERENCE: u8 = 114;
const SMALL_ATOM: u8 = 115;
const MAP: u8 = 116;
const FUN: u8 = 117;
const ATOM_UTF8: u8 = 118;
const SMALL_ATOM_UTF8: u8 = 119;
const V4_PORT: u8 = 120;

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::term::{Atom, Binary, List, Map, Pid, Reference, Term, Tuple};

    fn encoded(term: &Term) -> Vec<u8> {
        let mut buf = Vec::new();
        term.encode(&mut buf).unwrap();
        buf
    }

    #[test]
    fn accepts_what_the_encoder_writes() {
        let pid = Pid::new("r@localhost".to_owned(), 1, 2, 3);
        let reference = Reference {
            node: Atom::from("r@localhost"),
            id: vec![1, 2, 3],
            creation: 9,
        };
        let term: Term = Tuple::from(vec![
            Atom::from("io_request").into(),
            pid.into(),
            reference.into(),
            List::from(vec![
                Binary::from(b"hi".to_vec()).into(),
                Term::from(Atom::from("x")),
            ])
            .into(),
            Map::from([(
                Term::from(Atom::from("k")),
                Term::from(Binary::from(vec![0; 300])),
            )])
            .into(),
        ])
        .into();
        let mut two = encoded(&term);
        assert_eq!(check_message(&two), Ok(()));
        two.extend(encoded(&Atom::from("second").into()));
        assert_eq!(check_message(&two), Ok(()));
    }

    #[test]
    fn a_term_of_more_terms_than_the_bound_is_refused() {
        // A list of empty lists: one byte each on the wire.
        let list = |n: usize| {
            let count = u32::try_from(n).unwrap().to_be_bytes();
            [&[VERSION, LIST][..], &count, &vec![NIL; n + 1]].concat()
        };
        // The list, its elements and its tail.
        assert_eq!(check_term(&list(MAX_TERMS - 2)), Ok(()));
        assert_eq!(
            check_term(&list(MAX_TERMS - 1)),
            Err(TermCheckError::TooMany)
        );
    }

    #[test]
    fn the_deepest_accepted_term_is_handled_on_a_small_stack() {
        // Tokio's worker threads have 2 MiB stacks; decoding, cloning, printing and dropping a
        // term each recurse once per level.
        let mut deep = vec![VERSION];
        for _ in 0..MAX_DEPTH - 1 {
            deep.extend([LIST, 0, 0, 0, 1]);
        }
        deep.push(NIL);
        deep.extend(std::iter::repeat_n(NIL, MAX_DEPTH - 1));
        assert_eq!(check_message(&deep), Ok(()));
        let mut deeper = deep.clone();
        deeper.insert(1, SMALL_TUPLE);
        deeper.insert(2, 1);
        assert_eq!(check_message(&deeper), Err(TermCheckError::TooDeep));
        let handled = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let term = Term::decode(deep.as_slice()).unwrap();
                let copy = term.clone();
                let shown = copy.to_string();
                drop((term, copy));
                shown.len()
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(handled > MAX_DEPTH);
    }

    #[test]
    fn refuses_claims_beyond_the_bytes_present() {
        // A tuple, a list, a map and a binary each claiming 4 billion entries or bytes.
        for tag in [LARGE_TUPLE, LIST, MAP, BINARY, LARGE_BIG] {
            let bytes = [VERSION, tag, 0xff, 0xff, 0xff, 0xff, NIL];
            assert!(
                matches!(check_message(&bytes), Err(TermCheckError::Truncated(_))),
                "tag {tag}"
            );
        }
        // A reference claiming 65535 id words.
        let bytes = [VERSION, NEWER_REFERENCE, 0xff, 0xff, SMALL_ATOM, 1, b'a'];
        assert!(check_message(&bytes).is_err());
        assert_eq!(check_message(&[VERSION]), Err(TermCheckError::Truncated(1)));
    }

    #[test]
    fn refuses_deep_nesting_unknown_tags_and_stray_bytes() {
        let mut deep = vec![VERSION];
        for _ in 0..100_000 {
            deep.extend([SMALL_TUPLE, 1]);
        }
        deep.push(NIL);
        assert_eq!(check_message(&deep), Err(TermCheckError::TooDeep));
        // A bit binary whose last byte has 0 or 9 bits (the decoder would shift by 8 or -1).
        for bits in [0, 9] {
            let bytes = [VERSION, BIT_BINARY, 0, 0, 0, 1, bits, 0xff];
            assert_eq!(
                check_message(&bytes),
                Err(TermCheckError::Bits(bits as usize))
            );
        }
        assert_eq!(
            check_message(&[VERSION, BIT_BINARY, 0, 0, 0, 1, 3, 0xff]),
            Ok(())
        );
        // Compressed, atom cache reference, LOCAL_EXT.
        for tag in [80, 82, 121] {
            assert!(matches!(
                check_message(&[VERSION, tag, 0, 0, 0, 0]),
                Err(TermCheckError::Tag { .. })
            ));
        }
        assert_eq!(
            check_message(&[0, NIL]),
            Err(TermCheckError::Tag { tag: 0, at: 0 })
        );
        let three = [VERSION, NIL, VERSION, NIL, VERSION, NIL];
        assert_eq!(check_message(&three), Err(TermCheckError::Trailing(2)));
    }
}
