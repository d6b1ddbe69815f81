//! What a run will push, in which order and why: the closure of the entry function (or of the
//! modules a piece of code names) and of the modules the user includes, resolved from the build
//! without touching any server. `run` pushes it; `mix-remote plan` prints it.

use std::path::Path;

use crate::build::beam::Beam;
use crate::build::entry::{self, Entry, EntryError};
use crate::build::graph::{Graph, Member};
use crate::build::names;
use crate::build::project::{self, ProjectError};

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The project's build could not be read.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The entry or an included module is not in the build.
    #[error(transparent)]
    Entry(#[from] EntryError),
}

/// Parses `text` as an entry; when it names only a module, the error lists that module's
/// functions, read from the build of `project` for `env`, or, when the build lacks that module
/// (a misspelling, a function written capitalised), says so as for any entry.
pub fn parse_entry(text: &str, project: &Path, env: &str) -> Result<Entry, PlanError> {
    match Entry::parse(text) {
        Err(error @ EntryError::ModuleOnly { .. }) => {
            let atom = match &error {
                EntryError::ModuleOnly { module, .. } => entry::parse_module(module),
                _ => None,
            };
            let beams = project::scan(project, env).unwrap_or_default();
            let beam = beams.iter().find(|b| Some(&b.name) == atom.as_ref());
            match atom {
                Some(atom) if beam.is_none() && !beams.is_empty() && !entry::is_stdlib(&atom) => {
                    let known = beams.iter().map(|b| b.name.as_str());
                    Err(match entry::capitalised_function(&atom, &beams) {
                        Some(function) => EntryError::UnknownModule {
                            module: entry::display_module(&atom),
                            hint: format!("(did you mean the function {function}?)"),
                        },
                        None => entry::missing_module(&atom, known),
                    }
                    .into())
                }
                _ => Err(Entry::module_only(error, beam).into()),
            }
        }
        parsed => Ok(parsed?),
    }
}

/// The project's graph with the entry (or the modules some code names) and the included modules
/// resolved against it.
pub struct Plan {
    graph: Graph,
    /// The entry's module; none for code.
    entry: Option<String>,
    /// The included modules.
    included: Vec<String>,
    /// The modules the code names, those included left out; none for an entry.
    named: Vec<String>,
}

impl Plan {
    /// Reads `<project>/_build/<env>`, checks that the entry's module exports its function (with
    /// `arity` arguments, or any arity when `None`) and that every `include` names a module of
    /// the build.
    pub fn build(
        project: &Path,
        env: &str,
        entry: &Entry,
        arity: Option<usize>,
        include: &[String],
    ) -> Result<Plan, PlanError> {
        if let Some(mismatch) = arity_mismatch(entry, arity) {
            return Err(mismatch.into());
        }
        let graph = Graph::new(project::scan(project, env)?);
        let module = graph
            .module(&entry.module)
            .ok_or_else(|| entry.unknown_module(graph.modules().iter().map(|b| b.name.as_str())))?;
        entry.check(module, arity.or(entry.arity))?;
        let included = included(&graph, include)?;
        Ok(Plan {
            graph,
            entry: Some(entry.module.clone()),
            included,
            named: Vec::new(),
        })
    }

    /// Whether the entry's module exports its function (with `arity` arguments, or any arity
    /// when `None`) and every `include` names a module, from those modules' own files alone: a
    /// quick look before [`Plan::build`] reads the whole build (which decides, and words any
    /// error).
    pub fn looks_buildable(
        project: &Path,
        env: &str,
        entry: &Entry,
        arity: Option<usize>,
        include: &[String],
    ) -> bool {
        if arity_mismatch(entry, arity).is_some() {
            return false;
        }
        let exports = project::find(project, env, &entry.module)
            .is_some_and(|beam| entry.check(&beam, arity.or(entry.arity)).is_ok());
        exports && Plan::includes_exist(project, env, include)
    }

    /// Whether every `include` names a module in the build, from its file alone (see
    /// [`Plan::looks_buildable`]).
    pub fn includes_exist(project: &Path, env: &str, include: &[String]) -> bool {
        include.iter().all(|text| {
            entry::parse_module(text)
                .is_some_and(|name| project::find(project, env, &name).is_some())
        })
    }

    /// Reads `<project>/_build/<env>` for a piece of Elixir `code` (an expression, a script): the
    /// roots are the project's modules its text names (see `names.rs`) and every `include`.
    pub fn for_code(
        project: &Path,
        env: &str,
        code: &str,
        include: &[String],
    ) -> Result<Plan, PlanError> {
        let graph = Graph::new(project::scan(project, env)?);
        let included = included(&graph, include)?;
        let mut named: Vec<String> = Vec::new();
        for name in names::resolve(&names::scan(code), &graph) {
            if !included.contains(&name) && !named.contains(&name) {
                named.push(name);
            }
        }
        Ok(Plan {
            graph,
            entry: None,
            included,
            named,
        })
    }

    /// The project's dependency graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The module the closure starts from: the entry's, or for code the first module it includes
    /// or names; none when the code names no module of the project.
    pub fn first_root(&self) -> Option<&str> {
        self.entry
            .as_deref()
            .or(self.included.first().map(String::as_str))
            .or(self.named.first().map(String::as_str))
    }

    /// The modules to push, leaves first, each with the reason it is there.
    pub fn closure(&self) -> Vec<Member<'_>> {
        let entry = self.entry.as_deref().unwrap_or_default();
        self.graph.closure(entry, &self.included, &self.named)
    }

    /// The modules to push, leaves first, without the reasons.
    pub fn beams(&self) -> Vec<&Beam> {
        self.closure().iter().map(|m| m.beam).collect()
    }
}

/// The error of an entry naming its arity (`M.f/2`) called with another number of arguments.
fn arity_mismatch(entry: &Entry, arity: Option<usize>) -> Option<EntryError> {
    match (arity, entry.arity) {
        (Some(given), Some(named)) if given != named => Some(EntryError::ArityMismatch {
            shown: entry.shown(),
            named,
            given,
        }),
        _ => None,
    }
}

/// The modules `include` names, each checked against the build.
fn included(graph: &Graph, include: &[String]) -> Result<Vec<String>, EntryError> {
    include
        .iter()
        .map(|text| {
            let name = entry::parse_module(text).ok_or_else(|| {
                EntryError::Include(
                    text.clone(),
                    "not a module name (MyApp.Mod or :erlang_mod)".to_owned(),
                )
            })?;
            match graph.module(&name) {
                Some(_) => Ok(name),
                None => {
                    let known = graph.modules().iter().map(|b| b.name.as_str());
                    let hint = entry::did_you_mean_module(&name, known);
                    Err(EntryError::Include(
                        text.clone(),
                        format!("no such module in this project's _build{hint}"),
                    ))
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        let beam = |name: &str| Beam {
            name: name.to_owned(),
            atoms: vec![name.to_owned()],
            ..Beam::default()
        };
        Graph::new(vec![beam("Elixir.Demo.Worker"), beam("Elixir.Demo.Money")])
    }

    #[test]
    fn a_misspelt_module_to_include_gets_the_nearest_one_as_the_entry_does() {
        let error = included(&graph(), &["Demo.Wroker".to_owned()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--include Demo.Wroker: no such module in this project's _build (did you mean \
             Demo.Worker?)"
        );
        let error = included(&graph(), &["Demo.Ghost".to_owned()]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "--include Demo.Ghost: no such module in this project's _build"
        );
        let found = included(&graph(), &["Demo.Money".to_owned()]).unwrap();
        assert_eq!(found, ["Elixir.Demo.Money"]);
    }
}
