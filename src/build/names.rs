//! The modules a piece of Elixir code (an `eval` expression, a script) names, found by a scan of
//! its text without parsing it: aliases (`MyApp.Accounts.User`, and `MyApp.{A, B}` as `MyApp.A`
//! and `MyApp.B`) and Erlang module atoms (`:my_mod`, `:"my mod"`), resolved against the project's
//! graph. Strings and comments are scanned too: an interpolation names modules as well, and a name
//! that resolves to nothing costs nothing. A module reached only through a name built at run time
//! (`Module.concat`) is the user's to `--include`.

use crate::build::graph::Graph;

/// What the text of some code names: module names as written (`MyApp.User`, `:my_mod`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Named {
    /// Aliases, with `Prefix.{A, B}` expanded.
    pub aliases: Vec<String>,
    /// Erlang atoms, without their colon or quotes.
    pub atoms: Vec<String>,
}

/// Scans `code` for aliases and Erlang atoms.
pub fn scan(code: &str) -> Named {
    let chars: Vec<char> = code.chars().collect();
    let mut named = Named::default();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let before = i.checked_sub(1).map(|j| chars[j]);
        let starts_name = before.is_none_or(|b| !(is_word(b) || matches!(b, '.' | ':' | '@')));
        if c.is_ascii_uppercase() && starts_name {
            let (alias, end) = alias_at(&chars, i);
            i = end;
            if let Some(rest) = group_at(&chars, i) {
                named
                    .aliases
                    .extend(rest.0.iter().map(|part| format!("{alias}.{part}")));
                i = rest.1;
            } else {
                named.aliases.push(alias);
            }
        } else if c == ':' && before != Some(':') {
            let (atom, end) = atom_at(&chars, i + 1);
            named.atoms.extend(atom);
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    named
}

/// The module atoms of the project that `named` resolves to, each once, in the order named: an
/// alias is the module of that exact name, else the one project module whose name ends with it
/// (`Accounts.User` after `alias MyApp.Accounts`); an atom is the module of that name.
pub fn resolve(named: &Named, graph: &Graph) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !found.contains(&name) {
            found.push(name);
        }
    };
    for alias in &named.aliases {
        let exact = format!("Elixir.{alias}");
        if graph.module(&exact).is_some() {
            add(exact);
            continue;
        }
        let suffix = format!(".{alias}");
        let mut ending = graph
            .modules()
            .iter()
            .filter(|b| b.name.starts_with("Elixir.") && b.name.ends_with(&suffix));
        if let (Some(only), None) = (ending.next(), ending.next()) {
            add(only.name.clone());
        }
    }
    for atom in &named.atoms {
        if graph.module(atom).is_some() {
            add(atom.clone());
        }
    }
    found
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The alias starting at `start` (`A.B.C`, each part capitalised): it and where it ends.
fn alias_at(chars: &[char], start: usize) -> (String, usize) {
    let mut end = start;
    loop {
        while end < chars.len() && is_word(chars[end]) {
            end += 1;
        }
        let next_part = chars.get(end) == Some(&'.')
            && chars.get(end + 1).is_some_and(|c| c.is_ascii_uppercase());
        if !next_part {
            break;
        }
        end += 1;
    }
    (chars[start..end].iter().collect(), end)
}

/// `.{A, B.C}` right after an alias: the aliases inside and where the group ends.
fn group_at(chars: &[char], at: usize) -> Option<(Vec<String>, usize)> {
    if chars.get(at) != Some(&'.') || chars.get(at + 1) != Some(&'{') {
        return None;
    }
    let close = at + 2 + chars[at + 2..].iter().position(|&c| c == '}')?;
    let inside: String = chars[at + 2..close].iter().collect();
    let parts: Vec<String> = inside.split(',').map(|p| p.trim().to_owned()).collect();
    let valid = parts.iter().all(|p| {
        !p.is_empty()
            && p.split('.').all(|part| {
                part.starts_with(|c: char| c.is_ascii_uppercase()) && part.chars().all(is_word)
            })
    });
    valid.then_some((parts, close + 1))
}

/// The Erlang atom after a colon at `start`: `name` or `"quoted"`; its text and where it ends.
fn atom_at(chars: &[char], start: usize) -> (Option<String>, usize) {
    match chars.get(start) {
        Some('"') => {
            let Some(len) = chars[start + 1..].iter().position(|&c| c == '"') else {
                return (None, start);
            };
            let text: String = chars[start + 1..start + 1 + len].iter().collect();
            (Some(text), start + len + 2)
        }
        Some(c) if c.is_ascii_lowercase() => {
            let mut end = start;
            while end < chars.len() && (is_word(chars[end]) || chars[end] == '@') {
                end += 1;
            }
            (Some(chars[start..end].iter().collect()), end)
        }
        _ => (None, start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases(code: &str) -> Vec<String> {
        scan(code).aliases
    }

    #[test]
    fn finds_aliases_groups_and_atoms() {
        let named = scan(
            "alias MyApp.{Repo, Accounts.User}\nRepo.aggregate(User, :count) |> :my_mod.f(:\"a b\", x::y)",
        );
        assert_eq!(
            named.aliases,
            ["MyApp.Repo", "MyApp.Accounts.User", "Repo", "User"]
        );
        assert_eq!(named.atoms, ["count", "my_mod", "a b"]);
    }

    #[test]
    fn names_inside_words_calls_and_sigils_are_not_aliases() {
        assert_eq!(aliases("x.Foo fooBar @Attr :Atom"), Vec::<String>::new());
        assert_eq!(aliases("Enum.map(list, &Mod.f/1)"), ["Enum", "Mod"]);
        assert_eq!(aliases("\"#{Demo.Money.new(1, :eur)}\""), ["Demo.Money"]);
        assert_eq!(aliases("A.{b}"), ["A"]);
    }

    #[test]
    fn an_unterminated_atom_or_group_ends_the_scan_cleanly() {
        assert_eq!(scan(":\"open").atoms, Vec::<String>::new());
        assert_eq!(aliases("A.{B"), ["A", "B"]);
        assert_eq!(scan(":").atoms, Vec::<String>::new());
    }
}
