//! The build made fresh before a command reads it, shared by every command that runs or plans
//! the project's code: `mix compile` first (`build/fresh.rs`), unless `--no-compile` (or
//! `compile: false`) or there is no `mix` here, and then a warning if a source changed after the
//! build; with `-v`, the applications of the build that are not the project's (left out).

use crate::build::apps;
use crate::build::fresh::{self, Compiled};
use crate::build::mix_exs::Layout;
use crate::config::Build;
use crate::events::Stage;
use crate::exit::{self, CliError};
use crate::report::Reporter;

/// Compiles `build.project` for `build.mix_env` when it should be and can be; otherwise warns
/// about a source newer than the build. A failed compile is bad input (exit 2), with Mix's
/// output. When `interrupted` resolves first (on SIGINT, true, or SIGTERM: the command's
/// handlers are installed before), Mix is stopped with all it started, the display cleared, and
/// the command ends as an interrupted one (exit 130).
pub async fn ensure(
    build: &Build,
    report: &Reporter,
    interrupted: impl Future<Output = bool>,
) -> Result<(), CliError> {
    if !fresh::is_mix_project(&build.project) {
        return Ok(());
    }
    compiled_or_stale(build, report, interrupted).await?;
    let layout = Layout::of(&build.project);
    for app in apps::left_out(&build.project, &build.mix_env) {
        let dir = layout.build(&build.mix_env).join("lib").join(&app);
        let shown = dir.strip_prefix(&build.project).unwrap_or(&dir);
        report.verbose(&format!(
            "left out {}: not on the project's code path, as nothing of the project names it \
             (a dependency removed from mix.exs, a renamed application, another umbrella child)",
            shown.display()
        ));
    }
    Ok(())
}

/// Set by the `mix remote.*` tasks (`mix_remote/`) when Mix has just compiled the project: the
/// build is fresh, and a file of `lib/` that is no source (notes, a README) must not make it
/// look stale.
const COMPILED_BY_MIX: &str = "MIX_REMOTE_COMPILED_BY_MIX";

/// `mix compile` when it should be and can be; otherwise a warning about a source newer than
/// the build (unless Mix has just compiled it).
async fn compiled_or_stale(
    build: &Build,
    report: &Reporter,
    interrupted: impl Future<Output = bool>,
) -> Result<(), CliError> {
    if !build.compile && std::env::var_os(COMPILED_BY_MIX).is_some_and(|v| v == "true") {
        return Ok(());
    }
    let env = &build.mix_env;
    let why_not = if build.compile {
        let phase = report.phase(
            Stage::Compile,
            format!("compiling (mix compile, MIX_ENV={env})"),
        );
        let mut ctrl_c = false;
        let stop = async { ctrl_c = interrupted.await };
        let compiled = fresh::compile(&build.project, env, stop).await;
        match compiled.map_err(CliError::usage)? {
            Compiled::Ran { files, said } => {
                said.lines()
                    .for_each(|line| report.verbose(&format!("mix: {line}")));
                phase.done(match files {
                    0 => format!("build up to date (mix compile, MIX_ENV={env})"),
                    1 => format!("compiled 1 file (mix compile, MIX_ENV={env})"),
                    n => format!("compiled {n} files (mix compile, MIX_ENV={env})"),
                });
                return Ok(());
            }
            Compiled::NoMix => "there is no `mix` on this machine to compile it".to_owned(),
            Compiled::Stopped => {
                // The display first, with the compile's spinner on it (a Ctrl-C's echo too).
                report.interrupted(ctrl_c);
                drop(phase);
                return Err(CliError::new(
                    "interrupted: `mix compile` stopped",
                    exit::INTERRUPTED,
                ));
            }
        }
    } else {
        format!("compile it with `MIX_ENV={env} mix compile`")
    };
    warn_if_stale(build, report, "the old code will run", &why_not);
    Ok(())
}

/// Warns when a source of `build.project` changed after its build (for a command that reads the
/// build as it is, `graph`, without compiling): what it shows is the old code's.
pub fn warn_stale(build: &Build, report: &Reporter) {
    let compiled_by_mix = std::env::var_os(COMPILED_BY_MIX).is_some_and(|v| v == "true");
    if fresh::is_mix_project(&build.project) && !compiled_by_mix {
        let why_not = format!("compile it with `MIX_ENV={} mix compile`", build.mix_env);
        warn_if_stale(build, report, "the graph is the old code's", &why_not);
    }
}

/// The warning of a source newer than the build: `then`, what follows, and `why_not`, why it
/// was not compiled.
fn warn_if_stale(build: &Build, report: &Reporter, then: &str, why_not: &str) {
    let env = &build.mix_env;
    if let Some(stale) = fresh::stale(&build.project, env) {
        let dir = Layout::of(&build.project).build(env);
        let shown = dir.strip_prefix(&build.project).unwrap_or(&dir);
        report.warning(&format!(
            "{} is older than {stale}: {then} ({why_not})",
            shown.display()
        ));
    }
}
