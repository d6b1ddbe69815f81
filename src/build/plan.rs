//! What a run will push, in which order and why: the closure of the entry function (or of the
//! modules a piece of code names) and of the modules the user includes, resolved from the build
//! without touching any server. `run` pushes it; `mix-remote plan` prints it.

use std::path::Path;

use crate::build::beam::Beam;
use crate::build::entry::{self, Entry, EntryError, display_module};
use crate::build::graph::{Graph, Member};
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

/// The project's graph with the entry (or the modules some code names) and the included modules
/// resolved against it.
pub struct Plan {
    graph: Graph,
    /// The entry's module; none for code and for a session.
    entry: Option<String>,
    /// The included modules, then those the code names.
    included: Vec<String>,
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
        let graph = Graph::new(project::scan(project, env)?);
        let module = graph
            .module(&entry.module)
            .ok_or_else(|| EntryError::UnknownModule(display_module(&entry.module)))?;
        if let Some(arity) = arity {
            entry.check(Some(module), arity)?;
        } else if !module.exports.iter().any(|(f, _)| *f == entry.function) {
            return Err(EntryError::NoSuchFunction {
                shown: entry.shown(),
                module: display_module(&entry.module),
            }
            .into());
        }
        let included = included(&graph, include)?;
        Ok(Plan {
            graph,
            entry: Some(entry.module.clone()),
            included,
        })
    }

    /// The project's dependency graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The modules to push, leaves first, each with the reason it is there.
    pub fn closure(&self) -> Vec<Member<'_>> {
        let entry = self.entry.as_deref().unwrap_or_default();
        self.graph.closure(entry, &self.included)
    }

    /// The modules to push, leaves first, without the reasons.
    pub fn beams(&self) -> Vec<&Beam> {
        self.closure().iter().map(|m| m.beam).collect()
    }

    /// Reads `<project>/_build/<env>` for a session (`iex`), which calls no entry: the roots are
    /// the included modules alone; everything else loads on demand from the shipped applications.
    pub fn without_entry(project: &Path, env: &str, include: &[String]) -> Result<Plan, PlanError> {
        let graph = Graph::new(project::scan(project, env)?);
        let included = included(&graph, include)?;
        Ok(Plan {
            graph,
            entry: None,
            included,
        })
    }
}

/// The modules `include` names, each checked against the build.
fn included(graph: &Graph, include: &[String]) -> Result<Vec<String>, EntryError> {
    include
        .iter()
        .map(|text| {
            let name = entry::parse_module(text).ok_or_else(|| {
                EntryError::Include(text.clone(), "not a module name (MyApp.Mod or :erlang_mod)")
            })?;
            match graph.module(&name) {
                Some(_) => Ok(name),
                None => Err(EntryError::Include(
                    text.clone(),
                    "no such module in this project's _build",
                )),
            }
        })
        .collect()
}
