//! What a run will push, in which order and why: the closure of the entry function and of the
//! modules the user includes, resolved from the build without touching any server. `run` uses it
//! to push; `mix-remote plan` prints it.

use std::path::{Component, Path};

use crate::beam::Beam;
use crate::cli::PlanArgs;
use crate::config::{self, Config};
use crate::events::Event;
use crate::fleet::fail_early;
use crate::graph::{Graph, Member, Reason, Why};
use crate::invoke::{self, Entry, EntryError};
use crate::project::{self, ProjectError};
use crate::push::display_module;
use crate::report::Reporter;

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

/// The project's graph with the entry and the included modules resolved against it.
pub struct Plan {
    graph: Graph,
    entry: Entry,
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
        let included = include
            .iter()
            .map(|text| {
                let name = invoke::parse_module(text).ok_or_else(|| {
                    EntryError::Include(
                        text.clone(),
                        "not a module name (MyApp.Mod or :erlang_mod)",
                    )
                })?;
                match graph.module(&name) {
                    Some(_) => Ok(name),
                    None => Err(EntryError::Include(
                        text.clone(),
                        "no such module in this project's _build",
                    )),
                }
            })
            .collect::<Result<Vec<String>, EntryError>>()?;
        Ok(Plan {
            graph,
            entry: entry.clone(),
            included,
        })
    }

    /// The project's dependency graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The modules to push, leaves first, each with the reason it is there.
    pub fn closure(&self) -> Vec<Member<'_>> {
        self.graph.closure(&self.entry.module, &self.included)
    }

    /// The modules to push, leaves first, without the reasons.
    pub fn beams(&self) -> Vec<&Beam> {
        self.closure().iter().map(|m| m.beam).collect()
    }

    /// The plan as `mix-remote plan` prints it: one line per module in push order, then totals.
    pub fn render_text(&self) -> String {
        let closure = self.closure();
        let width = closure
            .iter()
            .map(|m| display_module(&m.beam.name).len())
            .max()
            .unwrap_or(0);
        let app_width = closure
            .iter()
            .map(|m| app_of(&m.beam.path).len())
            .max()
            .unwrap_or(0);
        let mut out = format!(
            "Push order for {} (leaves first; `why` is the first module found that needs it):\n",
            self.entry.shown()
        );
        for (i, member) in closure.iter().enumerate() {
            out.push_str(&format!(
                "{:>4}  {:<width$}  {:>9}  {:<app_width$}  {}{}\n",
                i + 1,
                display_module(&member.beam.name),
                kib(member.beam.bytes.len()),
                app_of(&member.beam.path),
                why_text(member),
                if member.beam.on_load {
                    " [-on_load: loaded alone, after the batch]"
                } else {
                    ""
                },
            ));
        }
        let bytes: usize = closure.iter().map(|m| m.beam.bytes.len()).sum();
        let mut apps: Vec<String> = closure.iter().map(|m| app_of(&m.beam.path)).collect();
        apps.sort();
        apps.dedup();
        out.push_str(&format!(
            "Total: {} of the project's {} modules, {}, from {}\n",
            closure.len(),
            self.graph.modules().len(),
            kib(bytes),
            apps.join(", ")
        ));
        out
    }

    /// The plan as `plan --json` prints it: one `module` event per module in push order, then
    /// one `plan` event with the totals (see `events.rs`).
    pub fn events(&self) -> Vec<Event> {
        let closure = self.closure();
        let mut events: Vec<Event> = closure
            .iter()
            .enumerate()
            .map(|(i, member)| {
                let (reason, from) = match member.reason {
                    Reason::Entry => ("entry", None),
                    Reason::Included => ("include", None),
                    Reason::Edge { from, why } => (why_key(why), Some(display_module(from))),
                };
                Event::Module {
                    order: i + 1,
                    module: display_module(&member.beam.name),
                    app: app_of(&member.beam.path),
                    bytes: member.beam.bytes.len(),
                    path: member.beam.path.display().to_string(),
                    reason: reason.to_owned(),
                    from,
                    on_load: member.beam.on_load,
                }
            })
            .collect();
        events.push(Event::Plan {
            entry: self.entry.shown(),
            modules: closure.len(),
            bytes: closure.iter().map(|m| m.beam.bytes.len()).sum(),
            project_modules: self.graph.modules().len(),
        });
        events
    }
}

/// `mix-remote plan`: prints the plan; returns the exit code (2 when the build or entry is bad).
/// The build is resolved as for `run`: flags over the `defaults` of mix-remote.yaml.
pub fn command(args: &PlanArgs, config: Option<&Config>, report: &Reporter) -> u8 {
    let build = config::build(config, args.build.project.as_deref(), &args.build.layer());
    let plan = Entry::parse(&args.entry)
        .map_err(PlanError::from)
        .and_then(|entry| {
            Plan::build(&build.project, &build.mix_env, &entry, None, &build.include)
        });
    match plan {
        Ok(plan) if args.json => plan.events().into_iter().for_each(|e| report.event(e)),
        Ok(plan) => report.output(plan.render_text().as_bytes()),
        Err(e) => return fail_early(report, &e.to_string(), crate::run::EXIT_USAGE),
    }
    0
}

/// A stable machine-readable name for each kind of edge.
pub fn why_key(why: Why) -> &'static str {
    match why {
        Why::Calls => "calls",
        Why::Names => "names",
        Why::Literal => "literal",
        Why::Behaviour => "behaviour",
        Why::Implementation => "protocol_implementation",
        Why::StructImpl => "struct_implementation",
    }
}

fn why_text(member: &Member) -> String {
    match member.reason {
        Reason::Entry => "entry module".to_owned(),
        Reason::Included => "--include".to_owned(),
        Reason::Edge { from, why } => {
            let from = display_module(from);
            match why {
                Why::Calls => format!("called by {from}"),
                Why::Names => format!("named by {from}"),
                Why::Literal => format!("in literal data of {from}"),
                Why::Behaviour => format!("behaviour of {from}"),
                Why::Implementation => format!("implements protocol {from}"),
                Why::StructImpl => format!("protocol implementation for struct {from}"),
            }
        }
    }
}

/// The application a module belongs to, from its path: `_build/<env>/lib/<app>/ebin/M.beam`, or
/// `consolidated` for a consolidated protocol.
pub fn app_of(path: &Path) -> String {
    let parts: Vec<&str> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect();
    match parts.as_slice() {
        [.., app, "ebin", _] => (*app).to_owned(),
        [.., "consolidated", _] => "consolidated".to_owned(),
        _ => "?".to_owned(),
    }
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_comes_from_the_build_path() {
        assert_eq!(
            app_of(Path::new("/p/_build/dev/lib/core/ebin/Elixir.A.beam")),
            "core"
        );
        assert_eq!(
            app_of(Path::new(
                "/p/_build/dev/lib/core/consolidated/Elixir.P.beam"
            )),
            "consolidated"
        );
        assert_eq!(app_of(Path::new("x.beam")), "?");
    }
}
