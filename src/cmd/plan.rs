//! `mix-remote plan`: what `run` would push for an entry or a script, in push order, with sizes
//! and why each module is needed, then the applications that ship with it and those the server
//! must have, as a table or as JSON events. Reads the build only: no SSH, no server.

use std::sync::Arc;

use crate::build::apps::{self, Apps, PrivKind};
use crate::build::beam::Beam;
use crate::build::compat::Built;
use crate::build::entry::display_module;
use crate::build::graph::{Member, Reason, Why};
use crate::build::plan::{self, Plan};
use crate::build::project::app_of;
use crate::cli::PlanArgs;
use crate::cmd::{fanout, fresh};
use crate::config::{self, Build, Config};
use crate::events::{Event, PlannedProtocols, ShippedApp};
use crate::exit::{self, CliError};
use crate::remote::job::{Code, Protocols, counted};
use crate::remote::wire;
use crate::report::Reporter;

/// Prints the plan; the build is resolved as for `run`: flags over the `defaults` of
/// mix-remote.yaml. SIGINT and SIGTERM end it as they end `run` (exit 130), while Mix compiles
/// (stopping it) as while the build is read.
pub async fn exec(
    args: PlanArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    // A script is read first, as `run` reads it: an unreadable one is bad input.
    let script = Code::script_of(args.entry.as_deref(), Vec::new())?;
    let build = config::build(config, args.build.project(), &args.layer(), &[])?;
    let mut interrupted = Box::pin(fanout::interrupted());
    fresh::ensure(&build, &report, &mut interrupted).await?;
    // Read aside: the signals are this command's to handle now.
    let shown = {
        let report = Arc::clone(&report);
        tokio::task::spawn_blocking(move || show(&args, script, &build, &report))
    };
    tokio::select! {
        shown = shown => shown.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic())),
        ctrl_c = interrupted => {
            report.interrupted(ctrl_c);
            Err(CliError::new("interrupted", exit::INTERRUPTED))
        }
    }
}

/// The plan of `args`'s entry (or of its `script`) in `build`, printed.
fn show(
    args: &PlanArgs,
    script: Option<Code>,
    build: &Build,
    report: &Reporter,
) -> Result<u8, CliError> {
    // Without ENTRY, the `entry` of mix-remote.yaml, as `run` takes it (and names its key when
    // the build lacks it).
    let (plan, named) = match (script, build.entry.as_deref()) {
        (Some(script), _) => (script.plan(build)?, script.shown),
        (None, Some(text)) => {
            let entry = plan::parse_entry(text, &build.project, &build.mix_env)
                .map_err(|e| build.entry_error(e))?;
            let plan = Plan::build(&build.project, &build.mix_env, &entry, None, &build.include)
                .map_err(|e| build.entry_error(build.include_error(e)))?;
            (plan, entry.named())
        }
        (None, None) => {
            return Err(CliError::usage(
                "no entry function: name one (mix-remote plan MyApp.Module.function) or set \
                 `entry` in mix-remote.yaml",
            ));
        }
    };
    let (shipped, from_server) = shipped(&plan, &build.project, &build.mix_env)?;
    let beams: Vec<&Beam> = plan.graph().modules().iter().map(|b| &**b).collect();
    let protocols = Protocols::of(&build.project, &build.mix_env, &plan, &Built::read(&beams))?
        .map(|p| p.planned());
    if args.json {
        events(&plan, &named, shipped, from_server, protocols)
            .into_iter()
            .for_each(|e| report.event(e));
    } else {
        let mut out = text(&plan, &named);
        out.push_str(&shipped_text(&shipped, &from_server));
        if let Some(protocols) = &protocols {
            let said = protocols.said();
            out.push_str(&format!(
                "With the call, {said}, {}\n",
                kib(protocols.bytes)
            ));
        }
        report.output(out.as_bytes());
    }
    Ok(0)
}

/// What a run of `entry` pushes, with how to name it: for its `script` (read from `entry`, see
/// [`Code::script_of`]), the script's plan as `run` makes it; else the entry function's.
pub fn planned(
    entry: &str,
    script: Option<Code>,
    build: &Build,
) -> Result<(Plan, String), CliError> {
    if let Some(script) = script {
        return Ok((script.plan(build)?, script.shown));
    }
    let entry = plan::parse_entry(entry, &build.project, &build.mix_env)?;
    let plan = Plan::build(&build.project, &build.mix_env, &entry, None, &build.include)
        .map_err(|e| build.include_error(e))?;
    Ok((plan, entry.named()))
}

/// The applications a run of `plan` ships, as `run` works them out, with their sizes; and those
/// the server must have.
fn shipped(
    plan: &Plan,
    project: &std::path::Path,
    env: &str,
) -> Result<(Vec<ShippedApp>, Vec<String>), CliError> {
    let names: Vec<&str> = plan.beams().iter().map(|b| b.name.as_str()).collect();
    let root_app = plan
        .first_root()
        .and_then(|module| plan.graph().module(module))
        .map(|beam| app_of(&beam.path));
    let resolved = Apps::resolve(project, env, root_app.as_deref(), &names)?;
    // Their sizes only: the files are not read (a run reads them to send them).
    let priv_files = apps::priv_entries(&resolved.shipped, apps::file_size)?;
    let shipped = resolved
        .shipped
        .iter()
        .map(|app| {
            // The files: a directory that travels is not one.
            let files: Vec<usize> = priv_files
                .iter()
                .filter(|f| f.app == app.name)
                .filter_map(|f| match f.kind {
                    PrivKind::File(size) => Some(size),
                    PrivKind::Dir => None,
                })
                .collect();
            ShippedApp {
                app: app.name.clone(),
                modules: app.modules.len(),
                bytes: app
                    .modules
                    .iter()
                    .filter_map(|m| plan.graph().module(m))
                    .map(wire::sent_size)
                    .sum(),
                priv_files: files.len(),
                priv_bytes: files.iter().sum(),
            }
        })
        .collect();
    let from_server = resolved
        .from_server
        .into_iter()
        .map(|(app, _)| app)
        .collect();
    Ok((shipped, from_server))
}

/// The lines after the push order: what ships, what the server must have.
fn shipped_text(shipped: &[ShippedApp], from_server: &[String]) -> String {
    let apps: Vec<String> = shipped
        .iter()
        .map(|a| {
            let priv_files = match a.priv_files {
                0 => String::new(),
                n => format!(", priv/ {} {}", counted(n, "file"), kib(a.priv_bytes)),
            };
            let modules = counted(a.modules, "module");
            format!("{} ({modules}, {}{priv_files})", a.app, kib(a.bytes))
        })
        .collect();
    let needed = match from_server {
        [] => "nothing more".to_owned(),
        apps => apps.join(", "),
    };
    format!(
        "Ships {}: {}\nThe server must have: {needed}\n",
        counted(shipped.len(), "application"),
        apps.join(", ")
    )
}

/// The plan as `mix-remote plan` prints it: one line per module in push order, then totals.
fn text(plan: &Plan, named: &str) -> String {
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
        "Push order for {named} (leaves first; `why` is the first module found that needs it):\n"
    );
    for (i, member) in closure.iter().enumerate() {
        out.push_str(&format!(
            "{:>4}  {:<width$}  {:>9}  {:<app_width$}  {}{}\n",
            i + 1,
            display_module(&member.beam.name),
            kib(wire::sent_size(member.beam)),
            app_of(&member.beam.path),
            why_text(member),
            if member.beam.on_load {
                " [-on_load: loaded alone, after the batch]"
            } else {
                ""
            },
        ));
    }
    let bytes: usize = closure.iter().map(|m| wire::sent_size(m.beam)).sum();
    let mut apps: Vec<String> = closure.iter().map(|m| app_of(&m.beam.path)).collect();
    apps.sort();
    apps.dedup();
    // A script may name none of the project's modules: then they come from no application.
    let from = match apps.as_slice() {
        [] => String::new(),
        apps => format!(", from {}", apps.join(", ")),
    };
    out.push_str(&format!(
        "Total: {} of the project's {} modules, {}{from}\n",
        closure.len(),
        plan.graph().modules().len(),
        kib(bytes),
    ));
    out
}

/// The plan as `plan --json` prints it: one `module` event per module in push order, then
/// one `plan` event with the totals (see `events.rs`).
fn events(
    plan: &Plan,
    named: &str,
    shipped: Vec<ShippedApp>,
    from_server: Vec<String>,
    protocols: Option<PlannedProtocols>,
) -> Vec<Event> {
    let closure = plan.closure();
    let mut events: Vec<Event> = closure
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let (reason, from) = match member.reason {
                Reason::Entry => ("entry", None),
                Reason::Included => ("include", None),
                Reason::Code => ("code", None),
                Reason::Edge { from, why } => (why.key(), Some(display_module(from))),
            };
            Event::Module {
                order: i + 1,
                module: display_module(&member.beam.name),
                app: app_of(&member.beam.path),
                bytes: wire::sent_size(member.beam),
                path: member.beam.path.display().to_string(),
                reason: reason.to_owned(),
                from,
                on_load: member.beam.on_load,
            }
        })
        .collect();
    events.push(Event::Plan {
        entry: named.to_owned(),
        modules: closure.len(),
        bytes: closure.iter().map(|m| wire::sent_size(m.beam)).sum(),
        project_modules: plan.graph().modules().len(),
        shipped,
        from_server,
        protocols,
    });
    events
}

fn why_text(member: &Member) -> String {
    match member.reason {
        Reason::Entry => "entry module".to_owned(),
        Reason::Included => "--include".to_owned(),
        Reason::Code => "named by the script".to_owned(),
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
