//! Function arguments given on the command line as Elixir literals.
//!
//! `mix-remote run MyApp.Worker.process -- 42 '"batch-7"'` has to send real Erlang terms over
//! distribution, and nothing on the remote node evaluates Elixir code for us, so this module parses
//! the literal syntax itself. Only data is accepted: no variables, calls, interpolation or structs.

use std::collections::HashMap;

use erl_dist::term::{
    Atom, BigInteger, Binary, FixInteger, Float, ImproperList, List, Map, Term, Tuple,
};

/// How deeply lists, tuples and maps may nest, so hostile input cannot overflow the stack.
const MAX_DEPTH: usize = 128;

/// Erlang refuses atoms longer than this many characters.
const MAX_ATOM_CHARS: usize = 255;

/// The operators Elixir reads as an atom's name after `:` (`:+`, `:<>`, `:|>`), longest first so
/// that `:===` is not taken for `:==` and a stray `=`. `::` is left out: Elixir wants it quoted.
const OPERATOR_ATOMS: [&str; 51] = [
    "..//", "<<>>", "===", "!==", "<<<", ">>>", "<<~", "~>>", "<~>", "<|>", "^^^", "~~~", "&&&",
    "|||", "+++", "---", "...", "%{}", "**", "==", "!=", "<=", ">=", "&&", "||", "<>", "++", "--",
    "..", "|>", "<~", "~>", "=~", "->", "<-", "\\\\", "{}", "+", "-", "*", "/", "<", ">", "!", "|",
    "&", "@", ".", "%", "^", "=",
];

/// Why an argument is not a supported Elixir literal, and where.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("column {column}: {message}")]
pub struct LiteralError {
    /// 1-based position of the offending character, counted in chars.
    pub column: usize,
    /// What was expected or found there.
    pub message: String,
}

/// Parses one Elixir literal (number, string, charlist, atom, alias, list, tuple or map) into a term.
pub fn parse(src: &str) -> Result<Term, LiteralError> {
    let mut parser = Parser {
        chars: src.chars().collect(),
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    if parser.peek().is_none() {
        return Err(parser.error("empty argument: expected an Elixir literal"));
    }
    let term = parser.value()?;
    parser.skip_ws();
    match parser.peek() {
        None => Ok(term),
        Some(c) => Err(parser.error(format!("unexpected {} after the literal", show(c)))),
    }
}

type Parsed<T> = Result<T, LiteralError>;

/// One unit of quoted text: a character, or a raw byte written as `\xHH`.
#[derive(Clone, Copy)]
enum Piece {
    Char(char),
    Byte(u8),
}

/// Recursive-descent parser over the chars of one argument.
struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos.saturating_add(ahead)).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, expected: char) -> bool {
        let found = self.peek() == Some(expected);
        if found {
            self.pos += 1;
        }
        found
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn error(&self, message: impl Into<String>) -> LiteralError {
        error_at(self.pos, message)
    }

    fn value(&mut self) -> Parsed<Term> {
        let Some(c) = self.peek() else {
            return Err(self.error("expected a literal, found end of input"));
        };
        match c {
            '[' => self.nested(Self::list),
            '{' => self.nested(Self::tuple),
            '%' => self.nested(Self::map),
            '"' => Ok(binary(&self.quoted('"')?)),
            '\'' => Ok(charlist(&self.quoted('\'')?)),
            '~' => self.sigil(),
            ':' => self.atom(),
            '?' => self.char_literal(),
            '-' | '0'..='9' => self.number(),
            c if c.is_ascii_uppercase() => self.alias(),
            c if is_ident_start(c) => self.identifier(),
            c => Err(self.error(format!(
                "unexpected {}: expected a number, string, charlist, atom, list, tuple or map",
                show(c)
            ))),
        }
    }

    /// Runs a container parser one nesting level deeper, refusing to go past [`MAX_DEPTH`].
    fn nested(&mut self, parse: fn(&mut Self) -> Parsed<Term>) -> Parsed<Term> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!(
                "nesting too deep (at most {MAX_DEPTH} levels of lists, tuples and maps)"
            )));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// After an item of a container: consumes `,` (and a trailing `close`) or `close`.
    /// Returns whether the container is finished.
    fn separator(&mut self, close: char) -> Parsed<bool> {
        self.skip_ws();
        if self.eat(',') {
            self.skip_ws();
            return Ok(self.eat(close));
        }
        if self.eat(close) {
            return Ok(true);
        }
        Err(self.error(format!(
            "expected `,` or `{close}`, found {}",
            describe(self.peek())
        )))
    }

    fn list(&mut self) -> Parsed<Term> {
        self.pos += 1; // `[`
        self.skip_ws();
        if self.eat(']') {
            return Ok(List::nil().into());
        }
        let mut elements = Vec::new();
        let mut in_keywords = false;
        loop {
            self.skip_ws();
            let item = self.pos;
            if let Some(key) = self.keyword_key()? {
                self.skip_ws();
                elements.push(Tuple::from(vec![key, self.value()?]).into());
                in_keywords = true;
            } else if in_keywords {
                return Err(error_at(
                    item,
                    "expected `key: value`: keywords must come last in a list",
                ));
            } else {
                elements.push(self.value()?);
                self.skip_ws();
                if self.eat('|') {
                    self.skip_ws();
                    let tail = self.value()?;
                    self.skip_ws();
                    if !self.eat(']') {
                        return Err(self.error(format!(
                            "expected `]` after the tail of the list, found {}",
                            describe(self.peek())
                        )));
                    }
                    return Ok(cons(elements, tail));
                }
            }
            if self.separator(']')? {
                return Ok(List::from(elements).into());
            }
        }
    }

    fn tuple(&mut self) -> Parsed<Term> {
        self.pos += 1; // `{`
        self.skip_ws();
        if self.eat('}') {
            return Ok(Tuple::nil().into());
        }
        let mut elements = Vec::new();
        loop {
            self.skip_ws();
            elements.push(self.value()?);
            if self.separator('}')? {
                return Ok(Tuple::from(elements).into());
            }
        }
    }

    fn map(&mut self) -> Parsed<Term> {
        let percent = self.pos;
        self.pos += 1; // `%`
        if self.peek().is_some_and(|c| c.is_ascii_uppercase()) {
            return Err(error_at(
                percent,
                "structs are not supported as arguments; pass a map",
            ));
        }
        if !self.eat('{') {
            return Err(self.error(format!(
                "expected `{{` after `%`, found {}",
                describe(self.peek())
            )));
        }
        self.skip_ws();
        let mut map = HashMap::new();
        if self.eat('}') {
            return Ok(Map::from(map).into());
        }
        let mut in_keywords = false;
        loop {
            self.skip_ws();
            let item = self.pos;
            let (key, value) = if let Some(key) = self.keyword_key()? {
                in_keywords = true;
                self.skip_ws();
                (key, self.value()?)
            } else if in_keywords {
                return Err(error_at(
                    item,
                    "expected `key: value`: keywords must come last in a map",
                ));
            } else {
                let key = self.value()?;
                self.skip_ws();
                if !(self.peek() == Some('=') && self.peek_at(1) == Some('>')) {
                    return Err(self.error(format!(
                        "expected `=>` after the map key, found {}",
                        describe(self.peek())
                    )));
                }
                self.pos += 2;
                self.skip_ws();
                (key, self.value()?)
            };
            // A repeated key keeps the last value, as in Elixir.
            map.insert(key, value);
            if self.separator('}')? {
                return Ok(Map::from(map).into());
            }
        }
    }

    /// Reads a keyword key (`name: ` or `"quoted": `) if one comes next, leaving the position
    /// unchanged otherwise.
    fn keyword_key(&mut self) -> Parsed<Option<Term>> {
        let start = self.pos;
        let name = match self.peek() {
            Some('"') => {
                let pieces = self.quoted('"')?;
                if self.peek() != Some(':') {
                    self.pos = start;
                    return Ok(None);
                }
                atom_name(&pieces, start)?
            }
            Some(c) if is_ident_start(c) => self.ident(),
            _ => return Ok(None),
        };
        if self.peek() != Some(':') {
            self.pos = start;
            return Ok(None);
        }
        self.pos += 1;
        if !self.peek().is_some_and(is_ws) {
            return Err(self.error(format!(
                "expected a space after the keyword key `{name}:`, found {}",
                describe(self.peek())
            )));
        }
        atom_term(name, start).map(Some)
    }

    /// Reads text between the delimiter at the current position and `close`, decoding escapes.
    fn quoted(&mut self, close: char) -> Parsed<Vec<Piece>> {
        let open = self.pos;
        self.pos += 1;
        let unterminated = || {
            error_at(
                open,
                format!(
                    "missing closing {} for the text that starts here",
                    show(close)
                ),
            )
        };
        let mut pieces = Vec::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err(unterminated()),
                Some(c) if c == close => return Ok(pieces),
                Some('\\') => match self.bump() {
                    None => return Err(unterminated()),
                    Some(escaped) => pieces.extend(self.escape(escaped, at)?),
                },
                Some('#') if self.peek() == Some('{') => {
                    return Err(error_at(
                        at,
                        "string interpolation is not allowed in arguments",
                    ));
                }
                Some(c) => pieces.push(Piece::Char(c)),
            }
        }
    }

    /// Decodes the escape whose backslash is at `backslash` and whose letter was just consumed;
    /// `None` for a backslash-newline line continuation.
    fn escape(&mut self, letter: char, backslash: usize) -> Parsed<Option<Piece>> {
        let code = match letter {
            '0' => '\0',
            'a' => '\u{7}',
            'b' => '\u{8}',
            't' => '\t',
            'n' => '\n',
            'v' => '\u{b}',
            'f' => '\u{c}',
            'r' => '\r',
            'e' => '\u{1b}',
            's' => ' ',
            '\n' => return Ok(None),
            '\r' if self.eat('\n') => return Ok(None),
            'x' => {
                let (byte, count) = self.hex_digits(2);
                return match u8::try_from(byte) {
                    Ok(byte) if count == 2 => Ok(Some(Piece::Byte(byte))),
                    _ => Err(error_at(
                        backslash,
                        "invalid `\\x` escape: expected two hexadecimal digits, as in `\\x41`",
                    )),
                };
            }
            'u' => return self.unicode_escape(backslash).map(|c| Some(Piece::Char(c))),
            // Any other escaped character, delimiters and `#` included, stands for itself.
            other => other,
        };
        Ok(Some(Piece::Char(code)))
    }

    /// Decodes `\uHHHH` or `\u{H...}` (1 to 6 digits) after the `u` was consumed.
    fn unicode_escape(&mut self, backslash: usize) -> Parsed<char> {
        let code = if self.eat('{') {
            let (code, count) = self.hex_digits(6);
            if count == 0 || !self.eat('}') {
                return Err(error_at(
                    backslash,
                    "invalid `\\u{...}` escape: expected 1 to 6 hexadecimal digits and `}`",
                ));
            }
            code
        } else {
            let (code, count) = self.hex_digits(4);
            if count != 4 {
                return Err(error_at(
                    backslash,
                    "invalid `\\u` escape: expected four hexadecimal digits or `\\u{...}`",
                ));
            }
            code
        };
        char::from_u32(code)
            .ok_or_else(|| error_at(backslash, format!("invalid Unicode code point U+{code:X}")))
    }

    /// Reads up to `max` (at most 6, so the value fits easily) hexadecimal digits; returns the
    /// value and how many digits were read.
    fn hex_digits(&mut self, max: usize) -> (u32, usize) {
        let mut value = 0;
        let mut count = 0;
        while count < max {
            let Some(digit) = self.peek().and_then(|c| c.to_digit(16)) else {
                break;
            };
            value = value * 16 + digit;
            count += 1;
            self.pos += 1;
        }
        (value, count)
    }

    /// `~c"..."` with any of Elixir's sigil delimiters.
    fn sigil(&mut self) -> Parsed<Term> {
        let tilde = self.pos;
        self.pos += 1;
        match self.peek() {
            Some('c') => {}
            Some(c) if c.is_ascii_alphabetic() => {
                return Err(error_at(
                    tilde,
                    format!("unsupported sigil `~{c}`: only `~c` charlists are allowed"),
                ));
            }
            found => {
                return Err(self.error(format!(
                    "expected a sigil letter after `~`, found {}",
                    describe(found)
                )));
            }
        }
        self.pos += 1;
        let close = match self.peek() {
            Some('(') => ')',
            Some('[') => ']',
            Some('{') => '}',
            Some('<') => '>',
            Some(c @ ('"' | '\'' | '/' | '|')) => c,
            found => {
                return Err(self.error(format!(
                    "expected a sigil delimiter after `~c`, found {}",
                    describe(found)
                )));
            }
        };
        Ok(charlist(&self.quoted(close)?))
    }

    /// `:name`, `:"quoted name"` or `:'quoted name'`.
    fn atom(&mut self) -> Parsed<Term> {
        let start = self.pos;
        self.pos += 1;
        let name = match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                let pieces = self.quoted(quote)?;
                atom_name(&pieces, start)?
            }
            Some(c) if is_ident_start(c) => self.ident(),
            found => match self.operator() {
                Some(name) => name,
                None => {
                    return Err(self.error(format!(
                        "expected an atom name after `:`, found {}",
                        describe(found)
                    )));
                }
            },
        };
        atom_term(name, start)
    }

    /// The operator at the current position, consumed, if one of [`OPERATOR_ATOMS`] is there.
    fn operator(&mut self) -> Option<String> {
        let rest = self.chars.get(self.pos..)?;
        let op = OPERATOR_ATOMS.iter().find(|op| {
            let len = op.chars().count();
            rest.len() >= len && rest[..len].iter().copied().eq(op.chars())
        })?;
        self.pos += op.chars().count();
        Some((*op).to_owned())
    }

    /// `?a` or `?\n`: the code point of one character.
    fn char_literal(&mut self) -> Parsed<Term> {
        let start = self.pos;
        self.pos += 1;
        let piece = match self.bump() {
            Some('\\') => match self.bump() {
                Some(letter) => self.escape(letter, start.saturating_add(1))?,
                None => None,
            },
            other => other.map(Piece::Char),
        };
        match piece {
            Some(piece) => Ok(FixInteger::from(code_point(piece)).into()),
            None => Err(error_at(start, "expected a character after `?`")),
        }
    }

    fn number(&mut self) -> Parsed<Term> {
        let start = self.pos;
        let negative = self.eat('-');
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.error(format!(
                "expected a digit after `-`, found {}",
                describe(self.peek())
            )));
        }
        let radix = match (self.peek(), self.peek_at(1)) {
            (Some('0'), Some('x')) => 16,
            (Some('0'), Some('o')) => 8,
            (Some('0'), Some('b')) => 2,
            _ => 10,
        };
        if radix != 10 {
            self.pos += 2;
        }
        let digits = self.digits(radix)?;
        if radix == 10 && self.peek() == Some('.') {
            if !self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error(
                    "expected a digit after `.`: floats need digits on both sides, as in `1.0`",
                ));
            }
            return self.float(start);
        }
        self.end_of_number()?;
        Ok(integer(&digits, radix, negative))
    }

    /// The rest of a float whose integer part was read; `start` is where its text begins.
    fn float(&mut self, start: usize) -> Parsed<Term> {
        self.pos += 1; // `.`
        self.digits(10)?;
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if !self.eat('-') {
                self.eat('+');
            }
            self.digits(10)?;
        }
        self.end_of_number()?;
        let text: String = self
            .chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .filter(|&&c| c != '_')
            .collect();
        text.parse::<f64>()
            .ok()
            .and_then(|value| Float::try_from(value).ok())
            .map(Term::from)
            .ok_or_else(|| error_at(start, "float literal out of range"))
    }

    /// Reads at least one digit of `radix`, allowing single `_` separators between digits.
    fn digits(&mut self, radix: u32) -> Parsed<Vec<u32>> {
        let mut digits = Vec::new();
        loop {
            if let Some(digit) = self.peek().and_then(|c| c.to_digit(radix)) {
                digits.push(digit);
                self.pos += 1;
            } else if self.peek() == Some('_')
                && !digits.is_empty()
                && self.peek_at(1).and_then(|c| c.to_digit(radix)).is_some()
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        if digits.is_empty() {
            let kind = match radix {
                16 => "a hexadecimal",
                8 => "an octal",
                2 => "a binary",
                _ => "a decimal",
            };
            return Err(self.error(format!(
                "expected {kind} digit, found {}",
                describe(self.peek())
            )));
        }
        Ok(digits)
    }

    /// Refuses letters, digits or `_` glued to the end of a number (`0b102`, `1e5`, `1_`).
    fn end_of_number(&self) -> Parsed<()> {
        match self.peek() {
            Some(c) if c.is_alphanumeric() || c == '_' => {
                Err(self.error(format!("unexpected {} in a number", show(c))))
            }
            _ => Ok(()),
        }
    }

    /// `MyApp.Worker`, which is the atom `Elixir.MyApp.Worker`.
    fn alias(&mut self) -> Parsed<Term> {
        let start = self.pos;
        let mut name = String::new();
        loop {
            while let Some(c) = self
                .peek()
                .filter(|&c| c.is_ascii_alphanumeric() || c == '_')
            {
                name.push(c);
                self.pos += 1;
            }
            if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_uppercase()) {
                name.push('.');
                self.pos += 1;
            } else {
                break;
            }
        }
        if name != "Elixir" && !name.starts_with("Elixir.") {
            name.insert_str(0, "Elixir.");
        }
        atom_term(name, start)
    }

    /// A bare identifier: only `true`, `false` and `nil` are literals.
    fn identifier(&mut self) -> Parsed<Term> {
        let start = self.pos;
        let name = self.ident();
        match name.as_str() {
            "true" | "false" | "nil" => atom_term(name, start),
            _ => Err(error_at(
                start,
                format!(
                    "unexpected identifier `{name}`: variables and calls are not allowed (an atom is written `:{name}`)"
                ),
            )),
        }
    }

    /// Reads an atom-like name: a letter or `_`, then letters, digits, `_` or `@`, then an
    /// optional `?` or `!`. The caller has checked the first character.
    fn ident(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|&c| c.is_alphanumeric() || c == '_' || c == '@')
        {
            name.push(c);
            self.pos += 1;
        }
        if let Some(c) = self.peek().filter(|&c| c == '?' || c == '!') {
            name.push(c);
            self.pos += 1;
        }
        name
    }
}

/// The name of a quoted atom, which must be valid UTF-8 (`\xHH` may break it).
fn atom_name(pieces: &[Piece], start: usize) -> Parsed<String> {
    String::from_utf8(bytes(pieces)).map_err(|_| error_at(start, "atom name is not valid UTF-8"))
}

/// The atom `name` written at `start`, within Erlang's length limit.
fn atom_term(name: String, start: usize) -> Parsed<Term> {
    if name.chars().count() > MAX_ATOM_CHARS {
        return Err(error_at(
            start,
            format!("atom is too long (at most {MAX_ATOM_CHARS} characters)"),
        ));
    }
    Ok(Atom::from(name).into())
}

/// An error at the 0-based char position `pos`.
fn error_at(pos: usize, message: impl Into<String>) -> LiteralError {
    LiteralError {
        column: pos.saturating_add(1),
        message: message.into(),
    }
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

/// A character as quoted in messages, with control characters escaped.
fn show(c: char) -> String {
    if c.is_control() {
        format!("`{}`", c.escape_default())
    } else {
        format!("`{c}`")
    }
}

/// What was found at a position: a character or the end of input.
fn describe(found: Option<char>) -> String {
    found.map_or_else(|| "end of input".to_owned(), show)
}

fn code_point(piece: Piece) -> i32 {
    match piece {
        // Code points stop at 0x10FFFF, far below i32::MAX.
        Piece::Char(c) => u32::from(c).cast_signed(),
        Piece::Byte(b) => i32::from(b),
    }
}

fn bytes(pieces: &[Piece]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for &piece in pieces {
        match piece {
            Piece::Char(c) => bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            Piece::Byte(b) => bytes.push(b),
        }
    }
    bytes
}

fn binary(pieces: &[Piece]) -> Term {
    Binary::from(bytes(pieces)).into()
}

fn charlist(pieces: &[Piece]) -> Term {
    let codes = pieces
        .iter()
        .map(|&piece| FixInteger::from(code_point(piece)).into());
    List::from(codes.collect::<Vec<Term>>()).into()
}

/// Builds `[elements | tail]`, flattening a list tail the way Erlang does.
fn cons(mut elements: Vec<Term>, tail: Term) -> Term {
    match tail {
        Term::List(list) => {
            elements.extend(list.elements);
            List::from(elements).into()
        }
        Term::ImproperList(list) => {
            elements.extend(list.elements);
            ImproperList::from((elements, *list.last)).into()
        }
        tail => ImproperList::from((elements, tail)).into(),
    }
}

/// The integer with these digits, as a `FixInteger` when it is not negative and fits in 32 bits.
///
/// eetf does not re-export num-bigint, but its `BigInteger::value` supports arithmetic with
/// `u64`, so digits are gathered into `u64` chunks and folded into it without a new dependency.
fn integer(digits: &[u32], radix: u32, negative: bool) -> Term {
    let radix = u64::from(radix);
    let mut big = BigInteger::from(0u8);
    // Invariant: chunk < scale, so `chunk * radix + digit` stays below `scale * radix`.
    let mut chunk: u64 = 0;
    let mut scale: u64 = 1;
    for &digit in digits {
        if scale > u64::MAX / radix {
            big.value = big.value * scale + chunk;
            (chunk, scale) = (0, 1);
        }
        chunk = chunk * radix + u64::from(digit);
        scale *= radix;
    }
    big.value = big.value * scale + chunk;
    if negative {
        big.value = -big.value;
    }
    // A negative integer stays a big one, which Erlang decodes as the integer itself: eetf (0.11)
    // writes a list of small integers as a byte string without checking their sign, so the
    // arguments `-1 2` would arrive as `[255, 2]`.
    match i32::try_from(&big.value) {
        Ok(value) if value >= 0 => FixInteger::from(value).into(),
        _ => big.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(value: i32) -> Term {
        FixInteger::from(value).into()
    }

    fn big(value: i64) -> Term {
        BigInteger::from(value).into()
    }

    fn float(value: f64) -> Term {
        Float::try_from(value).expect("finite").into()
    }

    fn atom(name: &str) -> Term {
        Atom::from(name).into()
    }

    fn bin(bytes: &[u8]) -> Term {
        Binary::from(bytes).into()
    }

    fn list(elements: Vec<Term>) -> Term {
        List::from(elements).into()
    }

    fn tuple(elements: Vec<Term>) -> Term {
        Tuple::from(elements).into()
    }

    fn map<const N: usize>(entries: [(Term, Term); N]) -> Term {
        Map::from(entries).into()
    }

    fn chars(text: &str) -> Term {
        list(text.chars().map(|c| int(c as i32)).collect())
    }

    fn ok(src: &str) -> Term {
        parse(src).unwrap_or_else(|e| panic!("{src:?} failed: {e}"))
    }

    fn err(src: &str) -> (usize, String) {
        match parse(src) {
            Ok(term) => panic!("{src:?} parsed as {term:?}"),
            Err(e) => (e.column, e.message),
        }
    }

    /// Asserts the error column and that the message contains `part`.
    fn assert_err(src: &str, column: usize, part: &str) {
        let (col, message) = err(src);
        assert!(
            message.contains(part),
            "{src:?}: {message:?} lacks {part:?}"
        );
        assert_eq!(col, column, "{src:?}: {message}");
    }

    #[test]
    fn negative_integers_in_lists_keep_their_sign_on_the_wire() {
        // The arguments `-1 2` and the literal `[-7, 255]`, as the node decodes them: eetf writes
        // a list of small non-negative integers as a byte string, which is fine for those alone.
        for (args, values) in [
            (vec!["-1", "2"], vec![-1, 2]),
            (vec!["[-7, 255]"], vec![-7, 255]),
        ] {
            let terms: Vec<Term> = args.iter().map(|a| ok(a)).collect();
            let list = match terms.as_slice() {
                [Term::List(list)] => list.clone(),
                _ => List::from(terms),
            };
            let mut bytes = Vec::new();
            Term::from(list).encode(&mut bytes).unwrap();
            let decoded: Vec<i64> = match Term::decode(bytes.as_slice()).unwrap() {
                Term::List(list) => list
                    .elements
                    .iter()
                    .map(|e| match e {
                        Term::FixInteger(i) => i64::from(i.value),
                        Term::BigInteger(b) => i64::try_from(&b.value).unwrap(),
                        other => panic!("{other:?}"),
                    })
                    .collect(),
                Term::ByteList(bytes) => bytes.bytes.iter().map(|&b| i64::from(b)).collect(),
                other => panic!("{other:?}"),
            };
            assert_eq!(decoded, values, "{args:?}");
        }
    }

    #[test]
    fn decimal_integers() {
        assert_eq!(ok("42"), int(42));
        assert_eq!(ok("0"), int(0));
        assert_eq!(ok("-5"), big(-5));
        assert_eq!(ok("1_000"), int(1000));
        assert_eq!(ok("2147483647"), int(i32::MAX));
        assert_eq!(ok("-2147483648"), big(i32::MIN.into()));
        assert_eq!(ok("2147483648"), big(2_147_483_648));
        assert_eq!(ok("-2147483649"), big(-2_147_483_649));
        assert_eq!(ok("9_223_372_036_854_775_807"), big(i64::MAX));
        assert_eq!(ok("-9223372036854775808"), big(i64::MIN));
    }

    #[test]
    fn integers_beyond_64_bits() {
        let expected = BigInteger::from(u64::MAX).value * 1000u64 + 123u64;
        let Term::BigInteger(parsed) = ok("18446744073709551615123") else {
            panic!("not a big integer");
        };
        assert_eq!(parsed.value, expected);

        let Term::BigInteger(negative) = ok("-0x1_0000_0000_0000_0000_0000_0000") else {
            panic!("not a big integer");
        };
        let two_to_96 = BigInteger::from(1u64 << 48).value * (1u64 << 48);
        assert_eq!(negative.value, -two_to_96);

        let Term::BigInteger(binary) = ok(&format!("0b1{}", "0".repeat(200))) else {
            panic!("not a big integer");
        };
        assert_eq!(binary.value.bits(), 201);
    }

    #[test]
    fn radix_integers() {
        assert_eq!(ok("0x1F"), int(31));
        assert_eq!(ok("0xff_ff"), int(65535));
        assert_eq!(ok("0o17"), int(15));
        assert_eq!(ok("0b101"), int(5));
        assert_eq!(ok("-0x10"), big(-16));
        assert_eq!(ok("0xFFFFFFFF"), big(0xFFFF_FFFF));
    }

    #[test]
    fn char_literals() {
        assert_eq!(ok("?a"), int(97));
        assert_eq!(ok("?é"), int(0xE9));
        assert_eq!(ok("?\\n"), int(10));
        assert_eq!(ok("?\\s"), int(32));
        assert_eq!(ok("?\\\\"), int(92));
        assert_eq!(ok("? "), int(32));
        assert_eq!(ok("?\\x41"), int(65));
        assert_eq!(ok("?\\u{1F600}"), int(0x1F600));
    }

    #[test]
    fn floats() {
        assert_eq!(ok("1.0"), float(1.0));
        assert_eq!(ok("-2.5"), float(-2.5));
        assert_eq!(ok("1.0e10"), float(1.0e10));
        assert_eq!(ok("1.5e-3"), float(1.5e-3));
        assert_eq!(ok("1.5E+3"), float(1500.0));
        assert_eq!(ok("1_000.5"), float(1000.5));
        assert_eq!(ok("0.1"), float(0.1));
    }

    #[test]
    fn strings() {
        assert_eq!(ok(r#""batch-7""#), bin(b"batch-7"));
        assert_eq!(ok(r#""""#), bin(b""));
        assert_eq!(ok(r#""héllo""#), bin("héllo".as_bytes()));
        assert_eq!(
            ok(r#""\"\\\n\t\r\e\0\a\b\f\v\s""#),
            bin(b"\"\\\n\t\r\x1b\0\x07\x08\x0c\x0b ")
        );
        assert_eq!(ok(r#""\x41\xff""#), bin(b"A\xff"));
        assert_eq!(ok(r#""\u00e9\u{1F600}""#), bin("é😀".as_bytes()));
        assert_eq!(ok(r#""\#{x}""#), bin(b"#{x}"));
        assert_eq!(ok(r##""# {x} #""##), bin(b"# {x} #"));
        assert_eq!(ok("\"a\\\nb\""), bin(b"ab"));
        assert_eq!(ok(r#""\q\'""#), bin(b"q'"));
        assert_eq!(ok("\"two\nlines\""), bin(b"two\nlines"));
    }

    #[test]
    fn charlists() {
        assert_eq!(ok("'abc'"), chars("abc"));
        assert_eq!(ok("''"), list(vec![]));
        assert_eq!(ok(r"'a\'b\n'"), chars("a'b\n"));
        assert_eq!(ok(r"'\xff'"), list(vec![int(255)]));
        assert_eq!(ok("'é'"), list(vec![int(0xE9)]));
        assert_eq!(ok(r#"~c"abc""#), chars("abc"));
        assert_eq!(ok("~c'a\"b'"), chars("a\"b"));
        assert_eq!(ok(r"~c(a\)b)"), chars("a)b"));
        assert_eq!(ok("~c[x]"), chars("x"));
        assert_eq!(ok("~c{x}"), chars("x"));
        assert_eq!(ok("~c<x>"), chars("x"));
        assert_eq!(ok("~c/x/"), chars("x"));
        assert_eq!(ok("~c|x|"), chars("x"));
        assert_eq!(ok(r#"~c"""#), list(vec![]));
    }

    #[test]
    fn atoms() {
        assert_eq!(ok(":foo"), atom("foo"));
        assert_eq!(ok(":foo?"), atom("foo?"));
        assert_eq!(ok(":foo!"), atom("foo!"));
        assert_eq!(ok(":_x"), atom("_x"));
        assert_eq!(ok(":_"), atom("_"));
        assert_eq!(ok(":Foo"), atom("Foo"));
        assert_eq!(ok(":a1_b2"), atom("a1_b2"));
        assert_eq!(ok(":node@host"), atom("node@host"));
        assert_eq!(ok(":héllo"), atom("héllo"));
        assert_eq!(ok(r#":"quoted atom""#), atom("quoted atom"));
        assert_eq!(ok(r#":"a\"b\n""#), atom("a\"b\n"));
        assert_eq!(ok(":'single quoted'"), atom("single quoted"));
        assert_eq!(ok(r#":"""#), atom(""));
        assert_eq!(ok("true"), atom("true"));
        assert_eq!(ok("false"), atom("false"));
        assert_eq!(ok("nil"), atom("nil"));
        assert_eq!(ok(&format!(":{}", "a".repeat(255))), atom(&"a".repeat(255)));
    }

    #[test]
    fn operator_atoms() {
        // As Elixir reads them: the longest operator, whatever follows.
        for op in OPERATOR_ATOMS {
            assert_eq!(ok(&format!(":{op}")), atom(op), ":{op}");
        }
        assert_eq!(ok(":==="), atom("==="));
        assert_eq!(ok(":\\\\"), atom("\\\\"));
        assert_eq!(
            ok("[:+, :-, :<>]"),
            list(vec![atom("+"), atom("-"), atom("<>")])
        );
        assert_eq!(ok("%{:| => 1}"), map([(atom("|"), int(1))]));
        assert!(parse(":::").is_err());
        assert!(parse(":+1").is_err());
        assert!(parse(":").is_err());
    }

    #[test]
    fn aliases() {
        assert_eq!(ok("MyApp"), atom("Elixir.MyApp"));
        assert_eq!(ok("MyApp.Worker"), atom("Elixir.MyApp.Worker"));
        assert_eq!(ok("My_App2.V1"), atom("Elixir.My_App2.V1"));
        assert_eq!(ok("Elixir"), atom("Elixir"));
        assert_eq!(ok("Elixir.Enum"), atom("Elixir.Enum"));
    }

    #[test]
    fn lists() {
        assert_eq!(ok("[]"), list(vec![]));
        assert_eq!(ok("[ ]"), list(vec![]));
        assert_eq!(ok("[1, 2, 3]"), list(vec![int(1), int(2), int(3)]));
        assert_eq!(ok("[1, :a]"), list(vec![int(1), atom("a")]));
        assert_eq!(ok("[1,2,]"), list(vec![int(1), int(2)]));
        assert_eq!(
            ok("[[], [[1]]]"),
            list(vec![list(vec![]), list(vec![list(vec![int(1)])])])
        );
        assert_eq!(
            ok("[a: 1, \"b c\": 2, d?: 3, Foo: 4, true: 5]"),
            list(vec![
                tuple(vec![atom("a"), int(1)]),
                tuple(vec![atom("b c"), int(2)]),
                tuple(vec![atom("d?"), int(3)]),
                tuple(vec![atom("Foo"), int(4)]),
                tuple(vec![atom("true"), int(5)]),
            ])
        );
        assert_eq!(
            ok("[1, 2, a: 3]"),
            list(vec![int(1), int(2), tuple(vec![atom("a"), int(3)])])
        );
        assert_eq!(ok("[\"a\", \"b\"]"), list(vec![bin(b"a"), bin(b"b")]));
    }

    #[test]
    fn improper_lists() {
        assert_eq!(
            ok("[1 | 2]"),
            ImproperList::from((vec![int(1)], int(2))).into()
        );
        assert_eq!(
            ok("[1, 2 | :t]"),
            ImproperList::from((vec![int(1), int(2)], atom("t"))).into()
        );
        assert_eq!(ok("[1 | [2, 3]]"), list(vec![int(1), int(2), int(3)]));
        assert_eq!(ok("[1 | []]"), list(vec![int(1)]));
        assert_eq!(
            ok("[1 | [2 | 3]]"),
            ImproperList::from((vec![int(1), int(2)], int(3))).into()
        );
    }

    #[test]
    fn tuples() {
        assert_eq!(ok("{}"), tuple(vec![]));
        assert_eq!(ok("{1, :a}"), tuple(vec![int(1), atom("a")]));
        assert_eq!(ok("{ 1 , }"), tuple(vec![int(1)]));
        assert_eq!(
            ok("{{}, {[]}}"),
            tuple(vec![tuple(vec![]), tuple(vec![list(vec![])])])
        );
    }

    #[test]
    fn maps() {
        assert_eq!(ok("%{}"), map([]));
        assert_eq!(
            ok(r#"%{"a" => 1, :b => 2}"#),
            map([(bin(b"a"), int(1)), (atom("b"), int(2))])
        );
        assert_eq!(
            ok("%{a: 1, b: 2}"),
            map([(atom("a"), int(1)), (atom("b"), int(2))])
        );
        assert_eq!(
            ok(r#"%{"a" => 1, b: 2}"#),
            map([(bin(b"a"), int(1)), (atom("b"), int(2))])
        );
        assert_eq!(ok("%{1=>2,}"), map([(int(1), int(2))]));
        assert_eq!(ok("%{[1] => %{}}"), map([(list(vec![int(1)]), map([]))]));
        assert_eq!(ok("%{a: 1, a: 2}"), map([(atom("a"), int(2))]));
    }

    #[test]
    fn whitespace_between_tokens() {
        assert_eq!(
            ok(" \t[\n1 ,\r\n%{ a: { 2 } } |\t3 ]\n"),
            ImproperList::from((
                vec![int(1), map([(atom("a"), tuple(vec![int(2)]))])],
                int(3)
            ))
            .into()
        );
    }

    #[test]
    fn error_display() {
        let e = parse("[1,").expect_err("incomplete");
        assert_eq!(
            e.to_string(),
            "column 4: expected a literal, found end of input"
        );
    }

    #[test]
    fn errors_with_columns() {
        assert_err("", 1, "empty argument");
        assert_err("   ", 4, "empty argument");
        assert_err("1 2", 3, "unexpected `2` after the literal");
        assert_err("[1] x", 5, "unexpected `x` after the literal");
        assert_err(
            "\"a #{b}\"",
            4,
            "string interpolation is not allowed in arguments",
        );
        assert_err("'#{b}'", 2, "string interpolation is not allowed");
        assert_err(
            "%Foo{a: 1}",
            1,
            "structs are not supported as arguments; pass a map",
        );
        assert_err("%Foo.Bar{}", 1, "structs are not supported");
        assert_err("%[]", 2, "expected `{` after `%`, found `[`");
        assert_err("foo", 1, "unexpected identifier `foo`");
        assert_err("[1, bar]", 5, "unexpected identifier `bar`");
        assert_err("@x", 1, "unexpected `@`");
        assert_err("\"abc", 1, "missing closing `\"`");
        assert_err("[\"abc\\", 2, "missing closing `\"`");
        assert_err("'abc", 1, "missing closing `'`");
        assert_err("~c(abc", 3, "missing closing `)`");
        assert_err("~s\"x\"", 1, "unsupported sigil `~s`");
        assert_err(
            "~c",
            3,
            "expected a sigil delimiter after `~c`, found end of input",
        );
        assert_err("~1", 2, "expected a sigil letter");
        assert_err("[1, 2", 6, "expected `,` or `]`, found end of input");
        assert_err("[1 2]", 4, "expected `,` or `]`, found `2`");
        assert_err("{1 2}", 4, "expected `,` or `}`, found `2`");
        assert_err("[1 | 2, 3]", 7, "expected `]` after the tail");
        assert_err("[| 2]", 2, "unexpected `|`");
        assert_err("[,]", 2, "unexpected `,`");
        assert_err("[a: 1, 2]", 8, "keywords must come last in a list");
        assert_err("%{a: 1, \"b\" => 2}", 9, "keywords must come last in a map");
        assert_err("%{1 2}", 5, "expected `=>` after the map key, found `2`");
        assert_err("%{1 = 2}", 5, "expected `=>`");
        assert_err("[a:1]", 4, "expected a space after the keyword key `a:`");
        assert_err("{a: 1}", 2, "unexpected identifier `a`");
        assert_err(
            ":",
            2,
            "expected an atom name after `:`, found end of input",
        );
        assert_err(":1", 2, "expected an atom name after `:`, found `1`");
        assert_err("?", 1, "expected a character after `?`");
        assert_err("-", 2, "expected a digit after `-`, found end of input");
        assert_err("-x", 2, "expected a digit after `-`, found `x`");
        assert_err("1.", 2, "floats need digits on both sides");
        assert_err("1.e5", 2, "floats need digits on both sides");
        assert_err(".5", 1, "unexpected `.`");
        assert_err("1e10", 2, "unexpected `e` in a number");
        assert_err("1.0e", 5, "expected a decimal digit, found end of input");
        assert_err("0x", 3, "expected a hexadecimal digit, found end of input");
        assert_err("0b102", 5, "unexpected `2` in a number");
        assert_err("0o8", 3, "expected an octal digit");
        assert_err("1__0", 2, "unexpected `_` in a number");
        assert_err("1_", 2, "unexpected `_` in a number");
        assert_err("12abc", 3, "unexpected `a` in a number");
        assert_err("1.0e999", 1, "float literal out of range");
        assert_err(
            "-1.0e99999999999999999999999999",
            1,
            "float literal out of range",
        );
        assert_err("\"\\x4\"", 2, "invalid `\\x` escape");
        assert_err("\"\\xZZ\"", 2, "invalid `\\x` escape");
        assert_err("\"\\u12\"", 2, "invalid `\\u` escape");
        assert_err("\"\\u{}\"", 2, "invalid `\\u{...}` escape");
        assert_err("\"\\u{1234567}\"", 2, "invalid `\\u{...}` escape");
        assert_err("\"\\u{110000}\"", 2, "invalid Unicode code point U+110000");
        assert_err("'\\uD800'", 2, "invalid Unicode code point U+D800");
        assert_err(":\"\\xff\"", 1, "atom name is not valid UTF-8");
        assert_err(&format!(":{}", "a".repeat(256)), 1, "atom is too long");
        assert_err("MyApp.Worker.run", 13, "unexpected `.` after the literal");
        assert_err("[1]\n\tx", 6, "unexpected `x` after the literal");
        assert_err("[1]\u{0}", 4, "unexpected `\\u{0}` after the literal");
    }

    #[test]
    fn nesting_limit() {
        let deepest = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&deepest).is_ok());
        assert_err(&"[".repeat(100_000), MAX_DEPTH + 1, "nesting too deep");
        assert_err(&"{".repeat(100_000), MAX_DEPTH + 1, "nesting too deep");
        assert_err(
            &"%{a: ".repeat(100_000),
            5 * MAX_DEPTH + 1,
            "nesting too deep",
        );
        assert_err(
            &"[1 | ".repeat(100_000),
            5 * MAX_DEPTH + 1,
            "nesting too deep",
        );
        assert_err(
            &"%{[".repeat(100_000),
            3 * MAX_DEPTH / 2 + 1,
            "nesting too deep",
        );
    }

    #[test]
    fn never_panics_on_random_input() {
        // Every grammar character, then a denser mix that builds deeper and longer literals.
        let alphabets = [
            "[]{}%:\"'\\#,|=>-.0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_ ?~",
            "[[]]{{}}%%::\"\"'\\#,,||=>-.01x_ ?~caeF",
        ];
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for alphabet in alphabets {
            let alphabet: Vec<char> = alphabet.chars().collect();
            for _ in 0..10_000 {
                let len = next() % 32;
                let src: String = (0..len)
                    .map(|_| alphabet[next() as usize % alphabet.len()])
                    .collect();
                if let Err(e) = parse(&src) {
                    let columns = 1..=src.chars().count() + 1;
                    assert!(columns.contains(&e.column), "{src:?}: {e}");
                }
            }
        }
    }
}
