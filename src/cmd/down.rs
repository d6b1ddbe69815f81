//! `mix-remote down`: ends the warm sessions of the chosen hosts (or all of them) and waits until
//! nothing of them is left: remote nodes stopped, connections closed, directories removed.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::DownArgs;
use crate::cmd::fanout;
use crate::cmd::up::session_dir_error;
use crate::config::Config;
use crate::events::Stage;
use crate::exit::{self, CliError};
use crate::remote::agent::client::{self, Found};
use crate::remote::agent::{self, dirs};
use crate::report::Reporter;

/// Ends the sessions; returns the exit code.
pub async fn exec(
    args: DownArgs,
    config: Option<&Config>,
    report: Arc<Reporter>,
) -> Result<u8, CliError> {
    let root = dirs::root().map_err(|e| session_dir_error(&e))?;
    let chosen: Vec<(String, PathBuf)> = if args.all {
        dirs::sessions(&root)
            .into_iter()
            .map(|d| (String::new(), d))
            .collect()
    } else {
        let (_, hosts) = fanout::choose(config, &args.hosts, &args.connection.layer())?;
        hosts
            .iter()
            .map(|h| (h.name.clone(), dirs::session(&root, &agent::key(h))))
            .collect()
    };
    let mut code = exit::OK;
    for (name, dir) in chosen {
        let (name, ended) = match client::probe(&dir).await {
            Found::Live(status) => (status.host, client::down(&dir).await),
            Found::Starting | Found::Stale => {
                if !args.all {
                    report
                        .phase(Stage::Stop, "")
                        .done(format!("no session for {name}"));
                }
                continue;
            }
        };
        match ended {
            Ok(()) => report
                .phase(Stage::Stop, "")
                .done(format!("session for {name} ended")),
            Err(e) => {
                report.error(&format!("the session for {name} did not end cleanly: {e}"));
                code = exit::CANNOT_RUN;
            }
        }
    }
    Ok(code)
}
