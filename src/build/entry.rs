//! Module and function names as users write them: parsing `MyApp.Worker.process` /
//! `:erlang_mod.fun` (with an arity, `/2`, if they like) and `MyApp.Worker` / `:erlang_mod`,
//! showing a module atom the same way, and checking an entry against the compiled exports before
//! anything is booted, with the nearest name when it is misspelt.

use crate::build::beam::Beam;
use crate::suggest;

/// An entry function as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Module atom (`Elixir.MyApp.Worker` or `erlang_mod`).
    pub module: String,
    /// Function name.
    pub function: String,
    /// The arity, when named (`MyApp.Worker.process/2`).
    pub arity: Option<usize>,
}

/// The top-level names of the modules of Elixir's own applications (elixir, eex, ex_unit, iex,
/// logger, mix): an entry in one of them is not the project's.
const ELIXIR_STDLIB: [&str; 65] = [
    "Access",
    "Agent",
    "Application",
    "Atom",
    "Base",
    "Behaviour",
    "Bitwise",
    "Calendar",
    "Code",
    "Collectable",
    "Config",
    "Date",
    "DateTime",
    "Dict",
    "Duration",
    "DynamicSupervisor",
    "EEx",
    "Enum",
    "Enumerable",
    "ExUnit",
    "Exception",
    "File",
    "Float",
    "Function",
    "GenEvent",
    "GenServer",
    "HashDict",
    "HashSet",
    "IEx",
    "IO",
    "Inspect",
    "Integer",
    "JSON",
    "Kernel",
    "Keyword",
    "List",
    "Logger",
    "Macro",
    "Map",
    "MapSet",
    "Mix",
    "Module",
    "NaiveDateTime",
    "Node",
    "OptionParser",
    "PartitionSupervisor",
    "Path",
    "Port",
    "Process",
    "Protocol",
    "Range",
    "Record",
    "Regex",
    "Registry",
    "Set",
    "Stream",
    "String",
    "StringIO",
    "Supervisor",
    "System",
    "Task",
    "Time",
    "Tuple",
    "URI",
    "Version",
];

/// Erlang/OTP modules people reach for first: an entry in one of them is not the project's.
const OTP_STDLIB: [&str; 52] = [
    "application",
    "atomics",
    "base64",
    "binary",
    "calendar",
    "code",
    "counters",
    "crypto",
    "dets",
    "dict",
    "erl_eval",
    "erlang",
    "erpc",
    "ets",
    "file",
    "filelib",
    "filename",
    "gb_sets",
    "gb_trees",
    "gen_event",
    "gen_server",
    "gen_statem",
    "gen_tcp",
    "gen_udp",
    "global",
    "inet",
    "io",
    "io_lib",
    "json",
    "lists",
    "logger",
    "maps",
    "math",
    "net_kernel",
    "orddict",
    "ordsets",
    "os",
    "persistent_term",
    "proplists",
    "queue",
    "rand",
    "re",
    "rpc",
    "sets",
    "ssl",
    "string",
    "supervisor",
    "sys",
    "timer",
    "unicode",
    "uri_string",
    "zlib",
];

/// The module of `known` (the build's module atoms) nearest to `module` (an atom), as users
/// write it: a likely misspelling.
fn nearest_module<'a>(module: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let shown: Vec<String> = known.into_iter().map(display_module).collect();
    suggest::nearest(&display_module(module), shown.iter().map(String::as_str)).map(str::to_owned)
}

/// ` (did you mean M?)` for `module` (an atom) that the build whose module atoms are `known`
/// lacks, when one of them is near; nothing otherwise.
pub fn did_you_mean_module<'a>(module: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    nearest_module(module, known)
        .map_or_else(String::new, |near| format!(" (did you mean {near}?)"))
}

/// Why `module` (an atom) is not in the build whose module atoms are `known`: the nearest of
/// them, or what to check.
pub fn missing_module<'a>(module: &str, known: impl IntoIterator<Item = &'a str>) -> EntryError {
    EntryError::UnknownModule {
        hint: nearest_module(module, known).map_or_else(
            || "(is the project compiled, and the name right?)".to_owned(),
            |near| format!("(did you mean {near}?)"),
        ),
        module: display_module(module),
    }
}

/// For a module alone that the build lacks, `MyApp.Worker.Run`: `MyApp.Worker.run` when a module
/// of `beams` is `MyApp.Worker` and exports `run` (a function written capitalised).
pub fn capitalised_function(module: &str, beams: &[Beam]) -> Option<String> {
    let (parent, last) = module.rsplit_once('.')?;
    let beam = beams.iter().find(|b| b.name == parent)?;
    let (function, _) = callable(beam).find(|(f, _)| f.eq_ignore_ascii_case(last))?;
    Some(format!("{}.{function}", display_module(parent)))
}

/// Whether the module atom `module` belongs to Elixir's or Erlang/OTP's standard library rather
/// than to a project.
pub fn is_stdlib(module: &str) -> bool {
    match module.strip_prefix("Elixir.") {
        Some(alias) => {
            let top = alias.split('.').next().unwrap_or_default();
            ELIXIR_STDLIB.contains(&top) || (top.ends_with("Error") && !alias.contains('.'))
        }
        None => OTP_STDLIB.contains(&module),
    }
}

/// Why the entry is not callable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    /// Not of the form `Module.function` or `:module.function`.
    #[error("entry `{0}` is not of the form MyApp.Module.function or :erlang_module.function")]
    Syntax(String),
    /// The entry names an arity no function has.
    #[error("entry `{0}`: no function takes more than 255 arguments")]
    Arity(String),
    /// The module is not in the project's build.
    #[error("module {module} is not in this project's _build {hint}")]
    UnknownModule {
        /// The module, as users write it.
        module: String,
        /// `(did you mean M?)`, or what to check.
        hint: String,
    },
    /// The entry is a function of Elixir's or Erlang's own library.
    #[error(
        "{shown} is in the standard library of {whose}, not in this project: mix-remote calls the \
         project's own functions (write one that calls it)"
    )]
    Stdlib {
        /// The entry, as users write it.
        shown: String,
        /// "Elixir" or "Erlang/OTP".
        whose: &'static str,
    },
    /// Only a module was named.
    #[error(
        "{module} is a module, and a function of it is missing: name one, e.g. {module}.{example}{listed}"
    )]
    ModuleOnly {
        /// The module, as users write it.
        module: String,
        /// One of its functions, or `function` when none is known.
        example: String,
        /// ` (it exports f/1, g/0)`, or nothing.
        listed: String,
    },
    /// The arity named does not match the arguments given.
    #[error("{shown}/{named} takes {named} argument{s}, but {given} {were} given after --", s = plural(*.named), were = if *.given == 1 { "was" } else { "were" })]
    ArityMismatch {
        /// The entry, as users write it.
        shown: String,
        /// The arity after `/`.
        named: usize,
        /// The arguments after `--`.
        given: usize,
    },
    /// No exported function of that name, whatever the arity.
    #[error("{shown} is not exported by {module}{hint}")]
    NoSuchFunction {
        /// `MyApp.Worker.process`.
        shown: String,
        /// The module, as users write it.
        module: String,
        /// ` (did you mean f/1?)`, or nothing.
        hint: String,
    },
    /// A module given to `--include` is malformed or not in the build.
    #[error("--include {0}: {1}")]
    Include(String, String),
    /// A module of `include` in mix-remote.yaml is malformed or not in the build.
    #[error("{}: `{key}`: {module}: {why}", .path.display())]
    IncludeSetting {
        /// The file.
        path: std::path::PathBuf,
        /// The dotted path of the `include` key (`defaults.include`).
        key: String,
        /// The module, as written.
        module: String,
        /// What is wrong with it.
        why: String,
    },
    /// The entry `entry` of mix-remote.yaml gave is not in the build (or not callable so).
    #[error("{}: `{key}`: {error}", .path.display())]
    EntrySetting {
        /// The file.
        path: std::path::PathBuf,
        /// The dotted path of the `entry` key (`defaults.entry`).
        key: String,
        /// What is wrong with it.
        error: Box<EntryError>,
    },
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

impl EntryError {
    /// Whether it is about a module to include rather than the entry.
    pub fn is_include(&self) -> bool {
        matches!(
            self,
            EntryError::Include(..) | EntryError::IncludeSetting { .. }
        )
    }
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
    // `Elixir.MyApp.Worker` is the alias `MyApp.Worker` written in full, as Elixir reads it.
    alias_ok.then(|| match text == "Elixir" || text.starts_with("Elixir.") {
        true => text.to_owned(),
        false => format!("Elixir.{text}"),
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The functions of `beam` a user could name: its exports but those the compiler adds.
pub fn callable(beam: &Beam) -> impl Iterator<Item = &(String, u32)> {
    beam.exports.iter().filter(|(name, _)| {
        !(name.starts_with("__") || name.starts_with("MACRO-") || name == "module_info")
    })
}

/// ` (it exports f/1, g/0, ...)` for the first few functions of `beam` in alphabetical order,
/// or nothing.
fn exported(beam: &Beam) -> String {
    const SHOWN: usize = 6;
    let mut all: Vec<String> = callable(beam).map(|(f, a)| format!("{f}/{a}")).collect();
    all.sort();
    match all.len() {
        0 => String::new(),
        n if n <= SHOWN => format!(" (it exports {})", all.join(", ")),
        n => format!(
            " (it exports {}, and {} more)",
            all[..SHOWN].join(", "),
            n - SHOWN
        ),
    }
}

/// The most arguments an Erlang function takes.
const MAX_ARITY: usize = 255;

impl Entry {
    /// Parses `MyApp.Worker.process` (Elixir) or `:my_mod.run` (Erlang), with an arity
    /// (`/2`) or without.
    pub fn parse(text: &str) -> Result<Entry, EntryError> {
        let syntax = || EntryError::Syntax(text.to_owned());
        let (named, arity) = match text.rsplit_once('/') {
            Some((named, arity))
                if !arity.is_empty() && arity.bytes().all(|b| b.is_ascii_digit()) =>
            {
                // No Erlang function takes more than 255 arguments.
                match arity.parse::<usize>() {
                    Ok(arity) if arity <= MAX_ARITY => (named, Some(arity)),
                    _ => return Err(EntryError::Arity(text.to_owned())),
                }
            }
            Some(_) => return Err(syntax()),
            None => (text, None),
        };
        let module_only = |module: String| EntryError::ModuleOnly {
            module: display_module(&module),
            example: "function".into(),
            listed: String::new(),
        };
        let Some((module, function)) = named.rsplit_once('.') else {
            return Err(parse_module(named).map_or_else(syntax, module_only));
        };
        if !named.starts_with(':') && function.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(parse_module(named).map_or_else(syntax, module_only));
        }
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
            arity,
        })
    }

    /// Completes a [`EntryError::ModuleOnly`] with the functions of the module, once the build
    /// is known (`beam`: the module's, if the build has it).
    pub fn module_only(error: EntryError, beam: Option<&Beam>) -> EntryError {
        match (error, beam) {
            (EntryError::ModuleOnly { module, .. }, Some(beam)) => EntryError::ModuleOnly {
                example: callable(beam)
                    .map(|(f, _)| f)
                    .min()
                    .map_or_else(|| "function".to_owned(), Clone::clone),
                listed: exported(beam),
                module,
            },
            (error, _) => error,
        }
    }

    /// Why the module of this entry is not in the build: a misspelling of one of `known` (the
    /// build's module atoms), the standard library, or neither.
    pub fn unknown_module<'a>(&self, known: impl IntoIterator<Item = &'a str>) -> EntryError {
        if let Some(near) = nearest_module(&self.module, known) {
            return EntryError::UnknownModule {
                hint: format!("(did you mean {near}?)"),
                module: display_module(&self.module),
            };
        }
        if is_stdlib(&self.module) {
            return EntryError::Stdlib {
                shown: self.shown(),
                whose: if self.module.starts_with("Elixir.") {
                    "Elixir"
                } else {
                    "Erlang/OTP"
                },
            };
        }
        missing_module(&self.module, [])
    }

    /// ` (did you mean f/1?)` for the function of `beam` nearest to this entry's, or nothing.
    fn nearest_function(&self, beam: &Beam) -> String {
        let names: Vec<&str> = callable(beam).map(|(f, _)| f.as_str()).collect();
        let Some(near) = suggest::nearest(&self.function, names.iter().copied()) else {
            return String::new();
        };
        let arities: Vec<String> = callable(beam)
            .filter(|(f, _)| f == near)
            .map(|(f, a)| format!("{f}/{a}"))
            .collect();
        format!(" (did you mean {}?)", arities.join(" or "))
    }

    /// `MyApp.Worker.process` / `:mod.fun`, as users write it.
    pub fn shown(&self) -> String {
        format!("{}.{}", display_module(&self.module), self.function)
    }

    /// [`Entry::shown`] with the arity, when the entry names one (`MyApp.Worker.process/2`).
    pub fn named(&self) -> String {
        match self.arity {
            Some(arity) => format!("{}/{arity}", self.shown()),
            None => self.shown(),
        }
    }

    /// Checks that `beam` (the entry's module) exports the function with `arity` arguments, or
    /// with any arity when `None`.
    pub fn check(&self, beam: &Beam, arity: Option<usize>) -> Result<(), EntryError> {
        let Some(arity) = arity else {
            return match beam.exports.iter().any(|(f, _)| *f == self.function) {
                true => Ok(()),
                false => Err(EntryError::NoSuchFunction {
                    shown: self.shown(),
                    module: display_module(&self.module),
                    hint: self.nearest_function(beam),
                }),
            };
        };
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
            [] => match self.nearest_function(beam) {
                near if near.is_empty() => {
                    " (check the name, and that it is public: def, not defp)".to_owned()
                }
                near => near,
            },
            some => {
                let exported: Vec<String> = some
                    .iter()
                    .map(|a| format!("{}/{a}", self.function))
                    .collect();
                // An arity named after `/` (all `plan` and `graph` take) is fixed by naming
                // another; one counted from the arguments, by passing as many.
                let how = match self.arity {
                    Some(_) => "",
                    None => ": pass that many arguments after --",
                };
                format!(" (it exports {}{how})", exported.join(", "))
            }
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
            arity: None,
        }
    }

    #[test]
    fn parses_elixir_and_erlang_entries() {
        assert_eq!(
            Entry::parse("MyApp.Worker.process"),
            Ok(entry("Elixir.MyApp.Worker", "process"))
        );
        assert_eq!(Entry::parse(":demo_erl.add"), Ok(entry("demo_erl", "add")));
        assert_eq!(
            Entry::parse("Elixir.MyApp.Worker.process"),
            Ok(entry("Elixir.MyApp.Worker", "process"))
        );
        assert_eq!(Entry::parse("A.valid?"), Ok(entry("Elixir.A", "valid?")));
        assert_eq!(
            Entry::parse("A.run/2"),
            Ok(Entry {
                arity: Some(2),
                ..entry("Elixir.A", "run")
            })
        );
        assert_eq!(Entry::parse(":m.f/0").map(|e| e.arity), Ok(Some(0)));
        // `plan` names the entry as it was given, arity included.
        assert_eq!(
            Entry::parse("A.run/2").map(|e| e.named()),
            Ok("A.run/2".into())
        );
        assert_eq!(Entry::parse(":m.f").map(|e| e.named()), Ok(":m.f".into()));
        assert_eq!(Entry::parse(":m.f/255").map(|e| e.arity), Ok(Some(255)));
        for too_many in [
            ":m.f/256",
            "M.f/4294967296",
            "A.run/99999999999999999999999",
        ] {
            assert_eq!(
                Entry::parse(too_many).map(|e| e.arity),
                Err(EntryError::Arity(too_many.into()))
            );
        }
        for bad in [
            "process",
            "myapp.Worker.run",
            "MyApp.",
            ".run",
            ":.run",
            "A.b c",
            "A.1x",
            "A.run/",
            "A.run/x",
        ] {
            assert!(
                matches!(Entry::parse(bad), Err(EntryError::Syntax(_))),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn a_module_alone_says_that_a_function_is_missing() {
        for (text, module) in [("Demo.Worker", "Demo.Worker"), (":demo_erl", ":demo_erl")] {
            let err = Entry::parse(text).unwrap_err();
            assert!(matches!(&err, EntryError::ModuleOnly { module: m, .. } if m == module));
            let beam = Beam {
                exports: vec![
                    ("__info__".into(), 1),
                    ("process".into(), 2),
                    ("module_info".into(), 0),
                ],
                ..Beam::default()
            };
            assert_eq!(
                Entry::module_only(err, Some(&beam)).to_string(),
                format!(
                    "{module} is a module, and a function of it is missing: name one, e.g. \
                     {module}.process (it exports process/2)"
                )
            );
        }
    }

    #[test]
    fn checks_arity_against_exports_and_suggests_the_nearest_function() {
        let beam = Beam {
            name: "Elixir.A".into(),
            atoms: vec![],
            exports: vec![("run".into(), 1), ("run".into(), 2), ("stop".into(), 0)],
            ..Beam::default()
        };
        let e = entry("Elixir.A", "run");
        assert!(e.check(&beam, Some(2)).is_ok());
        assert!(e.check(&beam, None).is_ok());
        let err = e.check(&beam, Some(3)).unwrap_err().to_string();
        assert_eq!(
            err,
            "A.run/3 is not exported by A (it exports run/1, run/2: pass that many arguments after --)"
        );
        // Named after `/` (as `plan` and `graph` take it), there are no arguments to pass.
        let named = Entry {
            arity: Some(3),
            ..entry("Elixir.A", "run")
        };
        assert_eq!(
            named.check(&beam, Some(3)).unwrap_err().to_string(),
            "A.run/3 is not exported by A (it exports run/1, run/2)"
        );
        let typo = entry("Elixir.A", "rnu");
        assert_eq!(
            typo.check(&beam, Some(1)).unwrap_err().to_string(),
            "A.rnu/1 is not exported by A (did you mean run/1 or run/2?)"
        );
        assert_eq!(
            typo.check(&beam, None).unwrap_err().to_string(),
            "A.rnu is not exported by A (did you mean run/1 or run/2?)"
        );
        assert!(
            entry("Elixir.A", "zzzzzz")
                .check(&beam, Some(0))
                .unwrap_err()
                .to_string()
                .ends_with("(check the name, and that it is public: def, not defp)")
        );
    }

    #[test]
    fn an_unknown_module_is_a_misspelling_the_standard_library_or_neither() {
        let known = ["Elixir.Demo.Worker", "Elixir.Demo.Money", "demo_erl"];
        let err = |text: &str| {
            Entry::parse(text)
                .unwrap()
                .unknown_module(known)
                .to_string()
        };
        assert_eq!(
            err("Demo.Wroker.process"),
            "module Demo.Wroker is not in this project's _build (did you mean Demo.Worker?)"
        );
        assert_eq!(
            err(":demo_elr.add"),
            "module :demo_elr is not in this project's _build (did you mean :demo_erl?)"
        );
        assert_eq!(
            err("Enum.sum"),
            "Enum.sum is in the standard library of Elixir, not in this project: mix-remote \
             calls the project's own functions (write one that calls it)"
        );
        assert!(err(":lists.sum").contains("standard library of Erlang/OTP"));
        assert!(err("String.Chars.to_string").contains("standard library of Elixir"));
        assert_eq!(
            err("Other.run"),
            "module Other is not in this project's _build (is the project compiled, and the name right?)"
        );
    }

    #[test]
    fn shows_modules_as_users_write_them() {
        assert_eq!(display_module("Elixir.MyApp.Worker"), "MyApp.Worker");
        assert_eq!(display_module("demo_erl"), ":demo_erl");
    }
}
