//! `mix-remote status`: the warm sessions of this user, as their agents describe themselves;
//! what dead agents left is removed on the way.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cli::StatusArgs;
use crate::cmd::up::{humane, session_dir_error};
use crate::exit::{self, CliError};
use crate::remote::agent::client::{self, Found};
use crate::remote::agent::{self, Status, dirs};
use crate::report::Reporter;
use crate::screen::write_stdout;

/// Lists the sessions on stdout; returns the exit code.
pub async fn exec(args: StatusArgs, report: Arc<Reporter>) -> Result<u8, CliError> {
    let root = dirs::root().map_err(|e| session_dir_error(&e))?;
    let mut live: Vec<Status> = Vec::new();
    for dir in dirs::sessions(&root) {
        if let Found::Live(status) = client::probe(&dir).await {
            live.push(status);
        }
    }
    if args.json {
        let lines: String = live
            .iter()
            .map(|status| serde_json::to_string(status).unwrap_or_default() + "\n")
            .collect();
        write_stdout(&lines);
        return Ok(exit::OK);
    }
    if live.is_empty() {
        report.hint("no warm sessions (`mix-remote up --host HOST` starts one)");
        return Ok(exit::OK);
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rows: Vec<Vec<String>> = live
        .iter()
        .map(|s| {
            vec![
                s.host.clone(),
                s.address.clone(),
                humane(Duration::from_secs(now.saturating_sub(s.since))),
                if s.active > 0 {
                    "in use".into()
                } else {
                    humane(Duration::from_secs(s.idle_left))
                },
                s.runs.to_string(),
                // Runs of this build connect as usual; `up` renews it.
                match s.build.as_deref() == Some(agent::build()) {
                    true => s.spare.clone(),
                    false => format!("{} (another build's: unused)", s.spare),
                },
            ]
        })
        .collect();
    write_stdout(&crate::report::table(
        &["host", "address", "up", "idle left", "runs", "spare"],
        &rows,
    ));
    Ok(exit::OK)
}
