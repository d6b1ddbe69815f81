//! Module and function names as users write them: parsing `MyApp.Worker.process` /
//! `:erlang_mod.fun` and `MyApp.Worker` / `:erlang_mod`, showing a module atom the same way, and
//! checking an entry against the compiled exports before anything is booted.

use crate::build::beam::Beam;

/// An entry function as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Module atom (`Elixir.MyApp.Worker` or `erlang_mod`).
    pub module: String,
    /// Function name.
    pub function: String,
}

/// Why the entry is not callable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    /// Not of the form `Module.function` or `:module.function`.
    #[error("entry `{0}` is not of the form MyApp.Module.function or :erlang_module.function")]
    Syntax(String),
    /// The module is not in the project's build.
    #[error(
        "module {0} is not in this project's _build (is the project compiled, and the name right?)"
    )]
    UnknownModule(String),
    /// No exported function of that name, whatever the arity.
    #[error("{shown} is not exported by {module}")]
    NoSuchFunction {
        /// `MyApp.Worker.process`.
        shown: String,
        /// The module, as users write it.
        module: String,
    },
    /// A module given to `--include` is malformed or not in the build.
    #[error("--include {0}: {1}")]
    Include(String, &'static str),
    /// No exported function of that name and arity.
    #[error("{shown}/{arity} is not exported by {module}{hint}")]
    UnknownFunction {
        /// `MyApp.Worker.process`.
        shown: String,
        /// Number of arguments given.
        arity: usize,
        /// The module, as users write it.
        module: String,
        /// Arities that do exist, if any.
        hint: String,
    },
}

/// Parses a module as users write it, `MyApp.Worker` (Elixir alias) or `:erlang_mod`, into its
/// atom (`Elixir.MyApp.Worker`, `erlang_mod`); `None` if it is neither.
pub fn parse_module(text: &str) -> Option<String> {
    if let Some(erl) = text.strip_prefix(':') {
        let ok = !erl.is_empty()
            && erl
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.');
        return ok.then(|| erl.to_owned());
    }
    let alias_ok = !text.is_empty()
        && text.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_uppercase())
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
    alias_ok.then(|| format!("Elixir.{text}"))
}

impl Entry {
    /// Parses `MyApp.Worker.process` (Elixir) or `:my_mod.run` (Erlang).
    pub fn parse(text: &str) -> Result<Entry, EntryError> {
        let syntax = || EntryError::Syntax(text.to_owned());
        let (module, function) = text.rsplit_once('.').ok_or_else(syntax)?;
        let fn_ok = function
            .strip_suffix(['?', '!'])
            .unwrap_or(function)
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_');
        if function.is_empty() || !fn_ok || function.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(syntax());
        }
        let module = parse_module(module).ok_or_else(syntax)?;
        Ok(Entry {
            module,
            function: function.to_owned(),
        })
    }

    /// `MyApp.Worker.process` / `:mod.fun`, as users write it.
    pub fn shown(&self) -> String {
        format!("{}.{}", display_module(&self.module), self.function)
    }

    /// Checks that `beam` (the entry's module, if the project has it) exports the function with
    /// `arity` arguments.
    pub fn check(&self, beam: Option<&Beam>, arity: usize) -> Result<(), EntryError> {
        let beam = beam.ok_or_else(|| EntryError::UnknownModule(display_module(&self.module)))?;
        let mut arities: Vec<u32> = beam
            .exports
            .iter()
            .filter(|(name, _)| *name == self.function)
            .map(|&(_, a)| a)
            .collect();
        if arities.contains(&(arity as u32)) {
            return Ok(());
        }
        arities.sort_unstable();
        let hint = match arities.as_slice() {
            [] => " (check the name, and that it is public: def, not defp)".to_owned(),
            some => format!(
                " (it exports {}: pass that many arguments after --)",
                some.iter()
                    .map(|a| format!("{}/{a}", self.function))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        Err(EntryError::UnknownFunction {
            shown: self.shown(),
            arity,
            module: display_module(&self.module),
            hint,
        })
    }
}

/// `Elixir.MyApp.Worker` as users write it: `MyApp.Worker`; Erlang modules as `:name`.
pub fn display_module(name: &str) -> String {
    match name.strip_prefix("Elixir.") {
        Some(alias) => alias.to_owned(),
        None => format!(":{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(module: &str, function: &str) -> Entry {
        Entry {
            module: module.into(),
            function: function.into(),
        }
    }

    #[test]
    fn parses_elixir_and_erlang_entries() {
        assert_eq!(
            Entry::parse("MyApp.Worker.process"),
            Ok(entry("Elixir.MyApp.Worker", "process"))
        );
        assert_eq!(Entry::parse(":demo_erl.add"), Ok(entry("demo_erl", "add")));
        assert_eq!(Entry::parse("A.valid?"), Ok(entry("Elixir.A", "valid?")));
        for bad in [
            "process",
            "myapp.Worker.run",
            "MyApp.",
            ".run",
            ":.run",
            "A.b c",
            "A.1x",
        ] {
            assert!(Entry::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn checks_arity_against_exports() {
        let beam = Beam {
            name: "Elixir.A".into(),
            atoms: vec![],
            exports: vec![("run".into(), 1), ("run".into(), 2)],
            ..Beam::default()
        };
        let e = entry("Elixir.A", "run");
        assert!(e.check(Some(&beam), 2).is_ok());
        let err = e.check(Some(&beam), 3).unwrap_err().to_string();
        assert_eq!(
            err,
            "A.run/3 is not exported by A (it exports run/1, run/2: pass that many arguments after --)"
        );
        assert!(matches!(e.check(None, 1), Err(EntryError::UnknownModule(m)) if m == "A"));
    }

    #[test]
    fn shows_modules_as_users_write_them() {
        assert_eq!(display_module("Elixir.MyApp.Worker"), "MyApp.Worker");
        assert_eq!(display_module("demo_erl"), ":demo_erl");
    }
}
