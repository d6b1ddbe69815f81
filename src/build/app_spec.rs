//! The `.app` file of an application, as far as a run needs it: which applications it needs.
//! The file is one Erlang term in text, `{application, Name, [{Key, Value}, ...]}.`, read as
//! `file:consult/1` reads it. Only `applications`, `included_applications` and
//! `optional_applications` are read; any other value (`env` may hold any term: `fun M:F/A`, maps,
//! binaries, atoms in Latin-1 letters) is skipped by its brackets, so that what OTP's
//! `application:load` accepts is not refused here.

/// How deeply terms may nest in a `.app` file; deeper ones are refused (`SpecError::TooDeep`).
pub const MAX_DEPTH: usize = 1000;

/// What an application needs, from its `.app` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSpec {
    /// `applications`: started before it.
    pub applications: Vec<String>,
    /// `included_applications`: loaded with it, started by its own supervision tree.
    pub included: Vec<String>,
    /// `optional_applications` (Elixir 1.15+): started before it when present.
    pub optional: Vec<String>,
}

impl AppSpec {
    /// Every application named, with whether it is optional.
    pub fn needs(&self) -> impl Iterator<Item = (&str, bool)> {
        let optional = |name: &String| self.optional.contains(name);
        self.applications
            .iter()
            .chain(&self.included)
            .map(move |a| (a.as_str(), optional(a)))
            .chain(self.optional.iter().map(|a| (a.as_str(), true)))
    }
}

/// Why the text of a `.app` file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// It is not an `{application, Name, Properties}.` term (a truncated or hand-broken file).
    #[error("{0} (rebuild it with `mix compile --force`)")]
    Malformed(String),
    /// Its terms nest deeper than [`MAX_DEPTH`].
    #[error("its terms nest more than {MAX_DEPTH} deep, more than mix-remote reads")]
    TooDeep,
}

/// Reads the text of a `.app` file.
pub fn parse(text: &str) -> Result<AppSpec, SpecError> {
    let mut lexer = Lexer {
        text,
        at: 0,
        start: 0,
        peeked: None,
        read: Vec::new(),
    };
    let not_app = || SpecError::Malformed("not an {application, Name, Properties} term".into());
    let head = [
        lexer.next()?,
        lexer.next()?,
        lexer.next()?,
        lexer.next()?,
        lexer.next()?,
        lexer.next()?,
    ];
    let [
        Token::Open(b'}'),
        Token::Atom(tag),
        Token::Comma,
        Token::Atom(_),
        Token::Comma,
        Token::Open(b']'),
    ] = head
    else {
        return Err(not_app());
    };
    if tag != "application" {
        return Err(not_app());
    }
    let mut spec = AppSpec::default();
    if lexer.peek()? == Token::Close(b']') {
        lexer.next()?;
    } else {
        loop {
            lexer.property(&mut spec)?;
            match lexer.next()? {
                Token::Comma => {}
                Token::Close(b']') => break,
                _ => return Err(lexer.unexpected("`,` or `]`")),
            }
        }
    }
    if lexer.next()? != Token::Close(b'}') {
        return Err(not_app());
    }
    if lexer.next()? != Token::End {
        return Err(lexer.unexpected("`.`"));
    }
    if lexer.next()? != Token::Eof {
        return Err(lexer.unexpected("the end of the file after the term"));
    }
    Ok(spec)
}

/// A token of Erlang's term syntax, as far as skipping a term by its brackets needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// `{` (of a tuple, or of a map after `#`), `[` or `<<`, with the byte that closes it.
    Open(u8),
    /// `}`, `]`, or `>>` (as `>`).
    Close(u8),
    /// `,`.
    Comma,
    /// An atom, unquoted or quoted (escapes kept as written).
    Atom(String),
    /// The `.` that ends the term.
    End,
    /// Anything else: numbers, strings, characters, `fun`, `:`, `/`, `|`, `=>`, `#`...
    Other,
    /// The end of the text.
    Eof,
}

struct Lexer<'t> {
    text: &'t str,
    /// Where scanning goes on.
    at: usize,
    /// Where the last token scanned starts.
    start: usize,
    /// A token scanned ahead by [`Lexer::peek`].
    peeked: Option<Token>,
    /// The keys read so far: of two of a key, `application:get_key/2` gives the first.
    read: Vec<String>,
}

/// A first character of an unquoted atom, as Erlang's scanner has it: a lowercase ASCII or
/// Latin-1 letter.
fn atom_start(c: char) -> bool {
    c.is_ascii_lowercase() || (('ß'..='ÿ').contains(&c) && c != '÷')
}

/// A further character of an unquoted atom (or of a variable, or of a number): an ASCII or
/// Latin-1 letter, a digit, `_` or `@`.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || c == '@'
        || (('À'..='ÿ').contains(&c) && c != '×' && c != '÷')
}

/// A blank to Erlang's scanner: a control character, the space, or one of `\u{80}`-`\u{a0}`.
fn blank(c: char) -> bool {
    c <= ' ' || ('\u{80}'..='\u{a0}').contains(&c)
}

impl Lexer<'_> {
    /// The next token, left to be taken.
    fn peek(&mut self) -> Result<Token, SpecError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.scan()?);
        }
        Ok(self.peeked.clone().unwrap_or(Token::Eof))
    }

    /// The next token, taken.
    fn next(&mut self) -> Result<Token, SpecError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.scan(),
        }
    }

    /// One property of the list: the names of `applications`, `included_applications` and
    /// `optional_applications` go into `spec`; anything else is skipped.
    fn property(&mut self, spec: &mut AppSpec) -> Result<(), SpecError> {
        if self.peek()? != Token::Open(b'}') {
            return self.skip_value();
        }
        self.next()?;
        let key = match self.peek()? {
            Token::Atom(key) => key,
            _ => return self.skip_rest(b'}'),
        };
        let slot = match key.as_str() {
            "applications" => &mut spec.applications,
            "included_applications" => &mut spec.included,
            "optional_applications" => &mut spec.optional,
            _ => return self.skip_rest(b'}'),
        };
        self.next()?;
        match self.next()? {
            Token::Comma => {}
            // `{applications}` is no {Key, Value} pair: nothing to read.
            Token::Close(b'}') => return Ok(()),
            _ => return Err(self.unexpected("`,` or `}`")),
        }
        let names = self.atoms(&key)?;
        match self.next()? {
            Token::Close(b'}') => {
                if !self.read.contains(&key) {
                    *slot = names;
                    self.read.push(key);
                }
                Ok(())
            }
            // Not a {Key, Value} pair: not what `application:load` reads either.
            Token::Comma => self.skip_rest(b'}'),
            _ => Err(self.unexpected("`,` or `}`")),
        }
    }

    /// A list of atoms, the value of `key`.
    fn atoms(&mut self, key: &str) -> Result<Vec<String>, SpecError> {
        let malformed = |why: &str| SpecError::Malformed(format!("`{key}` {why}"));
        if self.next()? != Token::Open(b']') {
            return Err(malformed("is not a list"));
        }
        let mut names = Vec::new();
        if self.peek()? == Token::Close(b']') {
            self.next()?;
            return Ok(names);
        }
        loop {
            match self.next()? {
                Token::Atom(name) => names.push(name),
                _ => return Err(malformed("holds something other than atoms")),
            }
            match self.next()? {
                Token::Comma => {}
                Token::Close(b']') => return Ok(names),
                _ => return Err(malformed("is not a proper list of atoms")),
            }
        }
    }

    /// Skips one term: the tokens up to the `,` or closing bracket that follows it (not taken),
    /// brackets matched.
    fn skip_value(&mut self) -> Result<(), SpecError> {
        let mut open: Vec<u8> = Vec::new();
        let mut empty = true;
        loop {
            match self.peek()? {
                Token::Comma | Token::Close(_) if open.is_empty() => {
                    return match empty {
                        true => Err(self.unexpected("a term")),
                        false => Ok(()),
                    };
                }
                Token::Open(close) => {
                    if open.len() >= MAX_DEPTH {
                        return Err(SpecError::TooDeep);
                    }
                    open.push(close);
                }
                Token::Close(close) => {
                    if open.pop() != Some(close) {
                        return Err(self.unexpected("a matching bracket"));
                    }
                }
                Token::End | Token::Eof => return Err(self.unexpected("a term")),
                Token::Comma | Token::Atom(_) | Token::Other => {}
            }
            self.next()?;
            empty = false;
        }
    }

    /// Skips the rest of a tuple or list whose opening bracket was taken, up to and with its
    /// `close`.
    fn skip_rest(&mut self, close: u8) -> Result<(), SpecError> {
        loop {
            self.skip_value()?;
            match self.next()? {
                Token::Comma => {}
                Token::Close(c) if c == close => return Ok(()),
                _ => return Err(self.unexpected(&format!("`,` or `{}`", close as char))),
            }
        }
    }

    /// `wanted` was not found: the last token scanned was there instead.
    fn unexpected(&self, wanted: &str) -> SpecError {
        let line = self.text[..self.start].matches('\n').count() + 1;
        let found: String = self.text[self.start..self.at].chars().take(20).collect();
        SpecError::Malformed(match found.as_str() {
            "" => format!("expected {wanted}, found the end of the file"),
            found => format!("expected {wanted} on line {line}, found `{found}`"),
        })
    }

    /// The character at `at`, if any.
    fn char_at(&self, at: usize) -> Option<char> {
        self.text.get(at..)?.chars().next()
    }

    /// Takes characters from `at` while `keep` accepts them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.char_at(self.at).filter(|c| keep(*c)) {
            self.at += c.len_utf8();
        }
    }

    /// Scans the next token, after blanks and `%` comments.
    fn scan(&mut self) -> Result<Token, SpecError> {
        loop {
            self.take_while(blank);
            if self.char_at(self.at) != Some('%') {
                break;
            }
            self.take_while(|c| c != '\n');
        }
        self.start = self.at;
        let Some(c) = self.char_at(self.at) else {
            return Ok(Token::Eof);
        };
        let next = self.char_at(self.at + c.len_utf8());
        self.at += c.len_utf8();
        let token = match (c, next) {
            ('{', _) => Token::Open(b'}'),
            ('[', _) => Token::Open(b']'),
            ('<', Some('<')) => {
                self.at += 1;
                Token::Open(b'>')
            }
            ('}', _) => Token::Close(b'}'),
            (']', _) => Token::Close(b']'),
            ('>', Some('>')) => {
                self.at += 1;
                Token::Close(b'>')
            }
            ('=', Some('>')) | (':', Some('=')) => {
                self.at += 1;
                Token::Other
            }
            (',', _) => Token::Comma,
            ('.', next) if next.is_none_or(|n| blank(n) || n == '%') => Token::End,
            ('\'', _) => Token::Atom(self.quoted('\'')?),
            ('"', _) => {
                self.quoted('"')?;
                Token::Other
            }
            ('$', _) => {
                self.character()?;
                Token::Other
            }
            (c, _) if c.is_ascii_digit() => {
                self.number();
                Token::Other
            }
            (c, _) if atom_start(c) => {
                self.take_while(name_char);
                Token::Atom(self.text[self.start..self.at].to_owned())
            }
            (c, _) if name_char(c) => {
                // A variable: no term, but the server's reader has the last word.
                self.take_while(name_char);
                Token::Other
            }
            _ => Token::Other,
        };
        Ok(token)
    }

    /// The rest of a quoted atom or string after its opening `quote`; its text with escapes as
    /// written.
    fn quoted(&mut self, quote: char) -> Result<String, SpecError> {
        let start = self.at;
        while let Some(c) = self.char_at(self.at) {
            self.at += c.len_utf8();
            if c == quote {
                return Ok(self.text[start..self.at - 1].to_owned());
            }
            if c == '\\'
                && let Some(escaped) = self.char_at(self.at)
            {
                self.at += escaped.len_utf8();
            }
        }
        Err(SpecError::Malformed(format!(
            "a {} opened on line {} is never closed",
            if quote == '"' {
                "string"
            } else {
                "quoted atom"
            },
            self.text[..self.start].matches('\n').count() + 1
        )))
    }

    /// The rest of a character literal after its `$`: one character, or an escape (`$\n`,
    /// `$\x{E9}`, `$\101`, `$\^A`).
    fn character(&mut self) -> Result<(), SpecError> {
        let Some(c) = self.char_at(self.at) else {
            return Err(self.unexpected("a character after `$`"));
        };
        self.at += c.len_utf8();
        if c != '\\' {
            return Ok(());
        }
        let Some(escaped) = self.char_at(self.at) else {
            return Err(self.unexpected("a character after `$\\`"));
        };
        self.at += escaped.len_utf8();
        match escaped {
            'x' if self.char_at(self.at) == Some('{') => self.take_while(|c| c != '}'),
            'x' => {
                for _ in 0..2 {
                    if self.char_at(self.at).is_some_and(|c| c.is_ascii_hexdigit()) {
                        self.at += 1;
                    }
                }
                return Ok(());
            }
            '0'..='7' => {
                for _ in 0..2 {
                    if self
                        .char_at(self.at)
                        .is_some_and(|c| ('0'..='7').contains(&c))
                    {
                        self.at += 1;
                    }
                }
                return Ok(());
            }
            '^' => {}
            _ => return Ok(()),
        }
        // The `}` of `\x{...}`, or the control character's letter of `\^A`.
        match self.char_at(self.at) {
            Some(c) => {
                self.at += c.len_utf8();
                Ok(())
            }
            None => Err(self.unexpected("the end of a character literal")),
        }
    }

    /// The rest of a number: digits and letters (`16#1F`, `1_000`, `2.5e-3`), a `.` before a
    /// digit, an exponent's sign.
    fn number(&mut self) {
        loop {
            self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '#');
            let after = self.char_at(self.at + 1);
            let exponent = matches!(self.text.as_bytes().get(self.at - 1), Some(b'e' | b'E'));
            match self.char_at(self.at) {
                Some('.') if after.is_some_and(|c| c.is_ascii_digit()) => self.at += 1,
                Some('-' | '+') if exponent && after.is_some_and(|c| c.is_ascii_digit()) => {
                    self.at += 1
                }
                _ => return,
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_mix_writes() {
        // As Mix 1.14 writes ecto_sql's, env shortened; strings, maps, binaries, floats, charlists
        // and comments in env are skipped.
        let text = "{application,ecto_sql,\n  [{optional_applications,[myxql]},\n   \
            {applications,[kernel,stdlib,elixir,logger,eex,ecto,telemetry,db_connection,myxql]},\n   \
            {description,\"ecto_sql: \\\"SQL\\\" {adapters}\"},\n   \
            {modules,['Elixir.Ecto.Adapters.SQL','Elixir.Mix.Tasks.Ecto.Migrate']},\n   \
            {registered,[]},\n   {vsn,\"3.10.1\"},\n   \
            {env,[{postgres_map_type,<<\"jsonb>>\">>},{m,#{a => [1,2.5e-3|x], <<1,2>> => $}}},\
            % a comment ]\n    {n,-16#1F},{c,$\\n},{o,'quoted atom'}]},\n   \
            {mod,{'Elixir.Ecto.Adapters.SQL.Application',[]}}]}.\n";
        let spec = parse(text).unwrap();
        assert_eq!(
            spec.applications,
            [
                "kernel",
                "stdlib",
                "elixir",
                "logger",
                "eex",
                "ecto",
                "telemetry",
                "db_connection",
                "myxql"
            ]
        );
        assert_eq!(spec.optional, ["myxql"]);
        let needs: Vec<(&str, bool)> = spec.needs().collect();
        assert!(needs.contains(&("myxql", true)) && needs.contains(&("ecto", false)));
    }

    #[test]
    fn of_a_key_given_twice_the_first_counts_as_for_application_get_key() {
        let text = "{application,a,[{applications,[kernel,stdlib]},\
            {applications,[kernel,stdlib,crypto]}]}.";
        assert_eq!(parse(text).unwrap().applications, ["kernel", "stdlib"]);
    }

    #[test]
    fn included_applications_count_and_broken_files_are_refused() {
        let spec =
            parse("{application, a, [{included_applications, [b]}, {applications, []}]}.").unwrap();
        assert_eq!(spec.included, ["b"]);
        for bad in [
            "",
            "{application,a,[]}",
            "{app,a,[]}.",
            "{application,a,[{applications,[kernel}]}.",
            "{application,a,[{applications,kernel}]}.",
            "{application,a,[{applications,[\"kernel\"]}]}.",
            "{application,a,[{description,\"open}]}.",
            "{application,a,[{env,[1}]}.",
            "{application,a,[{env,{a,b]}]}.",
            "{application,a,[{env,}]}.",
            "{application,a,[{applications,[kernel|x]}]}.",
            "{application,a,[]}. {trailing}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn reads_any_env_elixir_writes() {
        // Written by Mix 1.14 (OTP 25) for `env: [mode: :café, h: &String.upcase/1, e: :élan,
        // ...]`, as it is: atoms in Latin-1 letters unquoted in UTF-8, an external fun, a struct,
        // a charlist, a binary, a big integer; `application:load` takes it.
        let text = "{application,apptest,\n             [{applications,[kernel,stdlib,elixir]},\n\
            \x20             {description,\"apptest\"},\n\
            \x20             {modules,['Elixir.Apptest']},\n\
            \x20             {registered,[]},\n\
            \x20             {vsn,\"0.1.0\"},\n\
            \x20             {env,[{mode,café},\n\
            \x20                   {h,fun 'Elixir.String':upcase/1},\n\
            \x20                   {q,'with space'},\n\
            \x20                   {e,élan},\n\
            \x20                   {u,'Ünter'},\n\
            \x20                   {l,\"abc\"},\n\
            \x20                   {s,<<195,159>>},\n\
            \x20                   {big,12345678901234567890},\n\
            \x20                   {fl,1.5e10},\n\
            \x20                   {r,résumé@host},\n\
            \x20                   {jp,'\\x{65E5}\\x{672C}'},\n\
            \x20                   {rng,#{'__struct__' => 'Elixir.Range',first => 1,\n\
            \x20                          last => 3,step => 1}},\n\
            \x20                   {ch,233}]}]}.\n";
        let spec = parse(text).unwrap();
        assert_eq!(spec.applications, ["kernel", "stdlib", "elixir"]);
        // Written by hand in an .app.src: characters that look like brackets, in every form.
        let spec = parse(
            "{application,a,[{env,[$}, $\\x{7D}, $\\}, $\\^], \"]}\", '}', <<\">>\">>, 16#FF, \
             2#1010, 1_000, -3.0e-2, fun m:f/0, #{k := v}, [a|b], {}, []]}, \
             {applications,[kernel,'quoted app',ünïcode_app]}]}.",
        )
        .unwrap();
        assert_eq!(spec.applications, ["kernel", "quoted app", "ünïcode_app"]);
    }

    #[test]
    fn nesting_is_bounded_and_refused_in_a_line() {
        let nested = |depth: usize| {
            format!(
                "{{application,a,[{{env,{}{}}},{{applications,[kernel]}}]}}.",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        assert_eq!(parse(&nested(MAX_DEPTH)).unwrap().applications, ["kernel"]);
        let deep = parse(&nested(1_000_000)).unwrap_err();
        assert_eq!(deep, SpecError::TooDeep);
        assert_eq!(
            deep.to_string(),
            "its terms nest more than 1000 deep, more than mix-remote reads"
        );
        let unclosed = format!("{{application,a,[{{env,{}", "{".repeat(1_000_000));
        assert_eq!(parse(&unclosed), Err(SpecError::TooDeep));
    }
}
