//! The `.app` file of an application, as far as a run needs it: which applications it needs.
//! The file is one Erlang term in text, `{application, Name, [{Key, Value}, ...]}.`; the values
//! of other keys (`env` may hold any term) are read only to be skipped.

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

/// Reads the text of a `.app` file.
pub fn parse(text: &str) -> Result<AppSpec, String> {
    let mut parser = Parser {
        text: text.as_bytes(),
        at: 0,
    };
    let term = parser.value()?;
    parser.expect(b'.')?;
    let Term::Tuple(items) = term else {
        return Err("not an {application, Name, Properties} term".into());
    };
    let [Term::Atom(tag), Term::Atom(_), Term::List(properties)] = items.as_slice() else {
        return Err("not an {application, Name, Properties} term".into());
    };
    if tag != "application" {
        return Err("not an {application, Name, Properties} term".into());
    }
    let mut spec = AppSpec::default();
    for property in properties {
        let Term::Tuple(pair) = property else {
            continue;
        };
        let [Term::Atom(key), value] = pair.as_slice() else {
            continue;
        };
        let slot = match key.as_str() {
            "applications" => &mut spec.applications,
            "included_applications" => &mut spec.included,
            "optional_applications" => &mut spec.optional,
            _ => continue,
        };
        let Term::List(names) = value else {
            return Err(format!("`{key}` is not a list"));
        };
        for name in names {
            match name {
                Term::Atom(a) => slot.push(a.clone()),
                _ => return Err(format!("`{key}` holds something other than atoms")),
            }
        }
    }
    Ok(spec)
}

/// The shape of a term, with what is not an atom, list or tuple left out.
#[derive(Debug, PartialEq)]
enum Term {
    Atom(String),
    List(Vec<Term>),
    Tuple(Vec<Term>),
    Other,
}

struct Parser<'t> {
    text: &'t [u8],
    at: usize,
}

impl Parser<'_> {
    /// Skips blanks and `%` comments; the next byte, if any.
    fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.text.get(self.at) {
            if c.is_ascii_whitespace() {
                self.at += 1;
            } else if c == b'%' {
                while self.text.get(self.at).is_some_and(|&c| c != b'\n') {
                    self.at += 1;
                }
            } else {
                return Some(c);
            }
        }
        None
    }

    fn expect(&mut self, wanted: u8) -> Result<(), String> {
        match self.peek() {
            Some(c) if c == wanted => {
                self.at += 1;
                Ok(())
            }
            other => Err(self.unexpected(other, &format!("`{}`", wanted as char))),
        }
    }

    fn unexpected(&self, found: Option<u8>, wanted: &str) -> String {
        match found {
            Some(c) => format!(
                "expected {wanted} at byte {}, found `{}`",
                self.at, c as char
            ),
            None => format!("expected {wanted}, found the end of the file"),
        }
    }

    fn value(&mut self) -> Result<Term, String> {
        let Some(c) = self.peek() else {
            return Err(self.unexpected(None, "a term"));
        };
        match c {
            b'{' => {
                self.at += 1;
                Ok(Term::Tuple(self.sequence(b'}')?))
            }
            b'[' => {
                self.at += 1;
                Ok(Term::List(self.sequence(b']')?))
            }
            b'#' => {
                self.at += 1;
                self.expect(b'{')?;
                self.sequence(b'}')?;
                Ok(Term::Other)
            }
            b'<' if self.text.get(self.at + 1) == Some(&b'<') => {
                self.at += 2;
                self.binary()?;
                Ok(Term::Other)
            }
            b'\'' => self.quoted(b'\'').map(Term::Atom),
            b'"' => self.quoted(b'"').map(|_| Term::Other),
            b'$' => {
                self.at += 1;
                if self.text.get(self.at) == Some(&b'\\') {
                    self.at += 1;
                }
                self.at += 1;
                Ok(Term::Other)
            }
            c if c.is_ascii_lowercase() => Ok(Term::Atom(self.word())),
            c if c.is_ascii_digit() || c == b'-' || c == b'+' => {
                self.at += 1;
                self.word();
                Ok(Term::Other)
            }
            other => Err(self.unexpected(Some(other), "a term")),
        }
    }

    /// Terms separated by `,` (or `|`, `=>`, `:=` inside lists and maps) up to `close`.
    fn sequence(&mut self, close: u8) -> Result<Vec<Term>, String> {
        let mut items = Vec::new();
        if self.peek() == Some(close) {
            self.at += 1;
            return Ok(items);
        }
        loop {
            items.push(self.value()?);
            match self.peek() {
                Some(c) if c == close => {
                    self.at += 1;
                    return Ok(items);
                }
                Some(b',' | b'|') => self.at += 1,
                Some(b'=' | b':') if self.text.get(self.at + 1) == Some(&b'>') => self.at += 2,
                Some(b':') if self.text.get(self.at + 1) == Some(&b'=') => self.at += 2,
                other => return Err(self.unexpected(other, &format!("`,` or `{}`", close as char))),
            }
        }
    }

    /// Skips the inside of `<<...>>` (strings in it may hold `>`).
    fn binary(&mut self) -> Result<(), String> {
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.quoted(b'"')?;
                }
                Some(b'>') if self.text.get(self.at + 1) == Some(&b'>') => {
                    self.at += 2;
                    return Ok(());
                }
                Some(_) => self.at += 1,
                None => return Err(self.unexpected(None, "`>>`")),
            }
        }
    }

    /// A quoted atom or string starting at the opening `quote`, escapes kept as written.
    fn quoted(&mut self, quote: u8) -> Result<String, String> {
        self.at += 1;
        let start = self.at;
        while let Some(&c) = self.text.get(self.at) {
            if c == b'\\' {
                self.at += 2;
            } else if c == quote {
                let text = String::from_utf8_lossy(&self.text[start..self.at]).into_owned();
                self.at += 1;
                return Ok(text);
            } else {
                self.at += 1;
            }
        }
        Err(self.unexpected(None, &format!("a closing {}", quote as char)))
    }

    /// An unquoted atom or the rest of a number: letters, digits, `_`, `@`, `.` followed by a
    /// digit, `#` (based integers), and an exponent's sign.
    fn word(&mut self) -> String {
        let start = self.at;
        while let Some(&c) = self.text.get(self.at) {
            let previous = if self.at > 0 {
                self.text[self.at - 1]
            } else {
                0
            };
            let exponent_sign = (c == b'-' || c == b'+') && matches!(previous, b'e' | b'E');
            let decimal_point = c == b'.'
                && previous.is_ascii_digit()
                && self.text.get(self.at + 1).is_some_and(u8::is_ascii_digit);
            if c.is_ascii_alphanumeric()
                || c == b'_'
                || c == b'@'
                || c == b'#'
                || exponent_sign
                || decimal_point
            {
                self.at += 1;
            } else {
                break;
            }
        }
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
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
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
