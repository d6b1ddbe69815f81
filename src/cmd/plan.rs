//! `mix-remote plan`: what `run` would push for an entry, in push order, with sizes and why each
//! module is needed, as a table or as JSON events. Reads the build only: no SSH, no server.

use crate::build::entry::{Entry, display_module};
use crate::build::graph::{Member, Reason, Why};
use crate::build::plan::{Plan, PlanError};
use crate::build::project::app_of;
use crate::cli::PlanArgs;
use crate::config::{self, Config};
use crate::events::Event;
use crate::exit::CliError;
use crate::report::Reporter;

/// Prints the plan; the build is resolved as for `run`: flags over the `defaults` of
/// mix-remote.yaml.
pub fn exec(args: &PlanArgs, config: Option<&Config>, report: &Reporter) -> Result<u8, CliError> {
    let build = config::build(
        config,
        args.build.project.as_deref(),
        &args.build.layer(),
        &[],
    )?;
    let entry = Entry::parse(&args.entry).map_err(PlanError::from)?;
    let plan = Plan::build(&build.project, &build.mix_env, &entry, None, &build.include)?;
    if args.json {
        events(&plan, &entry)
            .into_iter()
            .for_each(|e| report.event(e));
    } else {
        report.output(text(&plan, &entry).as_bytes());
    }
    Ok(0)
}

/// The plan as `mix-remote plan` prints it: one line per module in push order, then totals.
fn text(plan: &Plan, entry: &Entry) -> String {
    let closure = plan.closure();
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
        entry.shown()
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
        plan.graph().modules().len(),
        kib(bytes),
        apps.join(", ")
    ));
    out
}

/// The plan as `plan --json` prints it: one `module` event per module in push order, then
/// one `plan` event with the totals (see `events.rs`).
fn events(plan: &Plan, entry: &Entry) -> Vec<Event> {
    let closure = plan.closure();
    let mut events: Vec<Event> = closure
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let (reason, from) = match member.reason {
                Reason::Entry => ("entry", None),
                Reason::Included => ("include", None),
                Reason::Edge { from, why } => (why.key(), Some(display_module(from))),
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
        entry: entry.shown(),
        modules: closure.len(),
        bytes: closure.iter().map(|m| m.beam.bytes.len()).sum(),
        project_modules: plan.graph().modules().len(),
    });
    events
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

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
