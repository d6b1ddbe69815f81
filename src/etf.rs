//! A small, bounded reader of Erlang's external term format, for the few terms the tool reads
//! from files it did not write (a beam's `Meta` chunk, Mix's `compile.elixir_scm`).
//!
//! Only integers, atoms, binaries, tuples and proper lists are accepted; every length is checked
//! against the bytes present and nesting is limited, so a hostile file yields an error, never a
//! panic or an allocation driven by an unchecked number.

/// A decoded term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A small or 32-bit integer.
    Int(i64),
    /// An atom.
    Atom(String),
    /// A binary.
    Binary(Vec<u8>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A proper list (a `STRING_EXT` is read as a list of integers, `[]` as an empty list).
    List(Vec<Term>),
}

impl Term {
    /// The text of a binary or of a charlist, as Mix and OTP write version strings.
    pub fn text(&self) -> Option<String> {
        match self {
            Term::Binary(bytes) => String::from_utf8(bytes.clone()).ok(),
            Term::List(items) => items
                .iter()
                .map(|t| match t {
                    Term::Int(c) => u32::try_from(*c).ok().and_then(char::from_u32),
                    _ => None,
                })
                .collect(),
            _ => None,
        }
    }
}

/// Why bytes are not a term this reader accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed external term: {0}")]
pub struct EtfError(pub &'static str);

/// Deepest nesting accepted: the terms read here are two or three levels deep.
const MAX_DEPTH: usize = 16;

/// Decodes one term (with its leading version byte 131) that must fill `bytes` exactly.
pub fn decode(bytes: &[u8]) -> Result<Term, EtfError> {
    let mut reader = Reader { rest: bytes };
    if reader.u8()? != 131 {
        return Err(EtfError("no version byte"));
    }
    let term = reader.term(0)?;
    if !reader.rest.is_empty() {
        return Err(EtfError("bytes after the term"));
    }
    Ok(term)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EtfError> {
        if n > self.rest.len() {
            return Err(EtfError("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, EtfError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, EtfError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<usize, EtfError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// A count of items that each take at least one byte: more than remain is a lie.
    fn count(&self, n: usize) -> Result<usize, EtfError> {
        if n > self.rest.len() {
            return Err(EtfError("count larger than the data"));
        }
        Ok(n)
    }

    fn atom(&mut self, len: usize) -> Result<Term, EtfError> {
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| EtfError("atom not UTF-8"))?;
        Ok(Term::Atom(text.to_owned()))
    }

    fn items(&mut self, n: usize, depth: usize) -> Result<Vec<Term>, EtfError> {
        let n = self.count(n)?;
        let mut items = Vec::with_capacity(n);
        for _ in 0..n {
            items.push(self.term(depth + 1)?);
        }
        Ok(items)
    }

    fn term(&mut self, depth: usize) -> Result<Term, EtfError> {
        if depth > MAX_DEPTH {
            return Err(EtfError("nested too deeply"));
        }
        match self.u8()? {
            97 => Ok(Term::Int(i64::from(self.u8()?))),
            98 => {
                let b = self.take(4)?;
                Ok(Term::Int(i64::from(i32::from_be_bytes([
                    b[0], b[1], b[2], b[3],
                ]))))
            }
            100 | 118 => {
                let len = self.u16()?;
                self.atom(len)
            }
            115 | 119 => {
                let len = self.u8()? as usize;
                self.atom(len)
            }
            104 => {
                let n = self.u8()? as usize;
                Ok(Term::Tuple(self.items(n, depth)?))
            }
            105 => {
                let n = self.u32()?;
                Ok(Term::Tuple(self.items(n, depth)?))
            }
            106 => Ok(Term::List(Vec::new())),
            107 => {
                let len = self.u16()?;
                let bytes = self.take(len)?;
                Ok(Term::List(
                    bytes.iter().map(|&b| Term::Int(i64::from(b))).collect(),
                ))
            }
            108 => {
                let n = self.u32()?;
                let items = self.items(n, depth)?;
                if self.u8()? != 106 {
                    return Err(EtfError("improper list"));
                }
                Ok(Term::List(items))
            }
            109 => {
                let len = self.u32()?;
                Ok(Term::Binary(self.take(len)?.to_vec()))
            }
            _ => Err(EtfError("unsupported tag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `term_to_binary({1, {<<"1.14.0">>, ~c"25"}, 'Elixir.Mix.SCM.Path'})`, as Elixir 1.14 writes
    /// `compile.elixir_scm`.
    const SCM: &[u8] =
        b"\x83h\x03a\x01h\x02m\x00\x00\x00\x061.14.0k\x00\x0225d\x00\x13Elixir.Mix.SCM.Path";

    #[test]
    fn reads_the_terms_mix_and_the_compiler_write() {
        let term = decode(SCM).unwrap();
        let Term::Tuple(items) = &term else {
            panic!("{term:?}")
        };
        assert_eq!(items[0], Term::Int(1));
        let Term::Tuple(versions) = &items[1] else {
            panic!("{term:?}")
        };
        assert_eq!(versions[0], Term::Binary(b"1.14.0".to_vec()));
        assert_eq!(versions[1], Term::List(vec![Term::Int(50), Term::Int(53)]));
        assert_eq!(items[2], Term::Atom("Elixir.Mix.SCM.Path".into()));
        // [{enabled_features, [maybe_expr]}], as OTP 27's compiler writes the Meta chunk.
        let meta =
            b"\x83l\x00\x00\x00\x01h\x02w\x10enabled_featuresl\x00\x00\x00\x01w\x0amaybe_exprjj";
        assert_eq!(
            decode(meta).unwrap(),
            Term::List(vec![Term::Tuple(vec![
                Term::Atom("enabled_features".into()),
                Term::List(vec![Term::Atom("maybe_expr".into())]),
            ])])
        );
    }

    #[test]
    fn rejects_hostile_input_without_panicking() {
        for cut in 0..SCM.len() {
            assert!(
                decode(&SCM[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
        assert!(decode(b"\x83l\xff\xff\xff\xffj").is_err());
        assert!(decode(b"\x83m\xff\xff\xff\xff").is_err());
        assert!(decode(b"\x83i\xff\xff\xff\xff").is_err());
        assert!(decode(b"\x83l\x00\x00\x00\x01a\x01a\x02").is_err());
        assert!(decode(b"\x83a\x01\x00").is_err());
        assert!(decode(b"\x83F\x00\x00\x00\x00\x00\x00\x00\x00").is_err());
        let mut deep = vec![131u8];
        for _ in 0..1000 {
            deep.extend_from_slice(&[104, 1]);
        }
        deep.push(106);
        assert_eq!(decode(&deep), Err(EtfError("nested too deeply")));
    }
}
