//! `mix-remote down`: ends the warm sessions of the chosen hosts (or all of them) and waits until
//! nothing of them is left: remote nodes stopped, connections closed, directories removed.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::DownArgs;
use crate::cmd::fanout;
use crate::cmd::up::session_dir_error;
use crate::config::{Config, ConfigError};
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
    let chosen: Vec<(String, String, PathBuf)> = if args.all {
        dirs::sessions(&root)
            .into_iter()
            .map(|d| (String::new(), String::new(), d))
            .collect()
    } else {
        let (_, hosts) =
            fanout::choose(config, &args.hosts, &args.reach.layer()).map_err(|e| match e {
                // The other way to name what to end.
                ConfigError::NoHost => CliError::usage(format!("{e}, or --all for every session")),
                e => CliError::from(e),
            })?;
        hosts
            .iter()
            .map(|h| {
                let dir = dirs::session(&root, &agent::key(h));
                (h.name.clone(), h.address.clone(), dir)
            })
            .collect()
    };
    let mut code = exit::OK;
    for (name, address, dir) in chosen {
        let mut ended: Vec<(String, io::Result<()>)> = end(&dir, &name).await.into_iter().collect();
        if !args.all {
            // Sessions of that host's made with other settings (ssh options, elixir): its name
            // and address find them.
            for other in dirs::sessions(&root)
                .into_iter()
                .filter(|other| *other != dir)
            {
                if let Found::Live(status) = client::probe(&other).await
                    && status.host == name
                    && status.address == address
                {
                    ended.extend(end(&other, &name).await);
                }
            }
        }
        if ended.is_empty() && !args.all {
            // Nothing to end is no failure (`down` in a cleanup), but a host named wrong should
            // not pass unseen: a line on stderr, on a terminal or not.
            report.note(&format!("no session for {name}"));
        }
        for (name, outcome) in ended {
            match outcome {
                Ok(()) => report
                    .phase(Stage::Stop, "")
                    .done(format!("session for {name} ended")),
                Err(e) => {
                    report.error(&format!("the session for {name} did not end cleanly: {e}"));
                    code = exit::CANNOT_RUN;
                }
            }
        }
    }
    Ok(code)
}

/// Ends the session of `dir` (of the host `name`, if known), or waits for it to end if it is
/// ending: its host's name and how that went; `None` if there is no session there (or one still
/// starting), or one that was ending of a host not named.
async fn end(dir: &Path, name: &str) -> Option<(String, io::Result<()>)> {
    match client::probe(dir).await {
        Found::Live(status) => Some((status.host, client::down(dir).await)),
        // Connecting still (it ends once it serves, or by itself if its login fails), or
        // stopped (then the wait runs out).
        Found::Silent => {
            let name = match name {
                "" => dir.display().to_string(),
                name => name.to_owned(),
            };
            let ended = client::down(dir).await.or_else(|e| match dir.exists() {
                true => Err(e),
                false => Ok(()),
            });
            Some((name, ended))
        }
        Found::Ending => {
            let ended = client::ended(dir).await;
            (!name.is_empty()).then(|| {
                let outcome = ended
                    .then_some(())
                    .ok_or_else(|| io::Error::other("its agent is still ending"));
                (name.to_owned(), outcome)
            })
        }
        Found::Starting | Found::Stale => None,
    }
}
