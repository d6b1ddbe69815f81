//! The external term format written straight into a stream (the batch's zlib encoder), term by
//! term: the batch of the shipped applications never exists as a term tree, nor uncompressed.
//! Only what the batch uses is here: tuples, proper lists, atoms, binaries, small integers and
//! charlists.

use std::io::{self, Write};

const SMALL_INTEGER_EXT: u8 = 97;
const INTEGER_EXT: u8 = 98;
const SMALL_TUPLE_EXT: u8 = 104;
const NIL_EXT: u8 = 106;
const STRING_EXT: u8 = 107;
const LIST_EXT: u8 = 108;
const BINARY_EXT: u8 = 109;
const ATOM_UTF8_EXT: u8 = 118;
const SMALL_ATOM_UTF8_EXT: u8 = 119;

/// Writes terms (without the version byte) to `out`, counting the bytes written.
pub struct Writer<W> {
    out: W,
    written: u64,
}

impl<W: Write> Writer<W> {
    /// A writer into `out`.
    pub fn new(out: W) -> Self {
        Writer { out, written: 0 }
    }

    /// How many bytes were written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The stream, once every term is written.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Bytes as they are: a term's contents after its header.
    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// The start of a tuple of `arity` elements, which follow.
    pub fn tuple(&mut self, arity: u8) -> io::Result<()> {
        self.raw(&[SMALL_TUPLE_EXT, arity])
    }

    /// The start of a proper list of `len` elements (`[]` itself when there are none), which
    /// follow, then [`Writer::end_list`] with the same `len`.
    pub fn list(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return self.raw(&[NIL_EXT]);
        }
        self.raw(&[LIST_EXT])?;
        self.raw(&length(len)?.to_be_bytes())
    }

    /// The end of a list of `len` elements started with [`Writer::list`]: the tail `[]` of a
    /// list that has elements (an empty one is complete already).
    pub fn end_list(&mut self, len: usize) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        self.raw(&[NIL_EXT])
    }

    /// An atom.
    pub fn atom(&mut self, name: &str) -> io::Result<()> {
        match u8::try_from(name.len()) {
            Ok(len) => self.raw(&[SMALL_ATOM_UTF8_EXT, len])?,
            Err(_) => {
                let len = u16::try_from(name.len()).map_err(|_| too_long("an atom"))?;
                self.raw(&[ATOM_UTF8_EXT])?;
                self.raw(&len.to_be_bytes())?;
            }
        }
        self.raw(name.as_bytes())
    }

    /// A binary.
    pub fn binary(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.binary_header(bytes.len())?;
        self.raw(bytes)
    }

    /// The start of a binary of `len` bytes, which follow as [`Writer::raw`] writes.
    pub fn binary_header(&mut self, len: usize) -> io::Result<()> {
        self.raw(&[BINARY_EXT])?;
        self.raw(&length(len)?.to_be_bytes())
    }

    /// An integer.
    pub fn integer(&mut self, value: i32) -> io::Result<()> {
        match u8::try_from(value) {
            Ok(small) => self.raw(&[SMALL_INTEGER_EXT, small]),
            Err(_) => {
                self.raw(&[INTEGER_EXT])?;
                self.raw(&value.to_be_bytes())
            }
        }
    }

    /// `text` as a charlist (a list of code points), as Erlang writes one: a string of bytes
    /// when every code point is below 256 (and there are fewer than 65,536), else a list.
    pub fn charlist(&mut self, text: &str) -> io::Result<()> {
        let count = text.chars().count();
        if let Ok(len) = u16::try_from(count)
            && text.chars().all(|c| u32::from(c) < 256)
        {
            self.raw(&[STRING_EXT])?;
            self.raw(&len.to_be_bytes())?;
            let bytes: Vec<u8> = text.chars().map(|c| u32::from(c) as u8).collect();
            return self.raw(&bytes);
        }
        self.list(count)?;
        for c in text.chars() {
            self.integer(u32::from(c) as i32)?;
        }
        self.end_list(count)
    }
}

/// `len` as the format's 32-bit length.
fn length(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| too_long("a binary or list"))
}

fn too_long(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what} longer than the external term format allows"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use erl_dist::term::{Atom, Binary, FixInteger, List, Term, Tuple};

    fn decoded(write: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>) -> Term {
        let mut writer = Writer::new(vec![131]);
        write(&mut writer).unwrap();
        let written = writer.written();
        let bytes = writer.into_inner();
        assert_eq!(written as usize, bytes.len() - 1);
        Term::decode(bytes.as_slice()).unwrap()
    }

    #[test]
    fn terms_read_back_as_written() {
        let term = decoded(|w| {
            w.tuple(3)?;
            w.atom("Elixir.Shop")?;
            w.list(3)?;
            w.binary(b"beam")?;
            w.integer(0o755)?;
            w.integer(7)?;
            w.end_list(3)?;
            w.list(0)
        });
        let expected: Term = Tuple::from(vec![
            Atom::from("Elixir.Shop").into(),
            List::from(vec![
                Binary::from(&b"beam"[..]).into(),
                FixInteger::from(0o755).into(),
                FixInteger::from(7).into(),
            ])
            .into(),
            List::nil().into(),
        ])
        .into();
        assert_eq!(term.to_string(), expected.to_string());
    }

    #[test]
    fn charlists_of_any_code_point() {
        let latin = decoded(|w| w.charlist("/b/é.beam"));
        let Term::ByteList(bytes) = latin else {
            panic!("{latin}")
        };
        assert_eq!(bytes.bytes, b"/b/\xe9.beam");
        let wide = decoded(|w| w.charlist("/b/ĳ"));
        let codes: Vec<String> = match wide {
            Term::List(list) => list.elements.iter().map(|t| t.to_string()).collect(),
            other => panic!("{other}"),
        };
        assert_eq!(codes, ["47", "98", "47", "307"]);
    }

    #[test]
    fn long_atoms_and_binary_headers() {
        let name = "a".repeat(300);
        let Term::Atom(atom) = decoded(|w| w.atom(&name)) else {
            panic!("not an atom")
        };
        assert_eq!(atom.name, name);
        let Term::Binary(binary) = decoded(|w| {
            w.binary_header(5)?;
            w.raw(b"ab")?;
            w.raw(b"cde")
        }) else {
            panic!("not a binary")
        };
        assert_eq!(binary.bytes, b"abcde");
    }
}
