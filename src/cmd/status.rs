//! `mix-remote status`: the warm sessions of this user, as their agents describe themselves;
//! what dead agents left is removed on the way.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cli::StatusArgs;
use crate::cmd::up::{humane, session_dir_error};
use crate::config::DEFAULT_ELIXIR;
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
            live.push(*status);
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
                settings(s),
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
        &[
            "host",
            "address",
            "settings",
            "up",
            "idle left",
            "runs",
            "spare",
        ],
        &rows,
    ));
    Ok(exit::OK)
}

/// What the session was made with besides its address, as the flags that make it (`--elixir`
/// unless the default, `-F`, `-o`), which tell two sessions of one host apart; `-` for none.
fn settings(status: &Status) -> String {
    let elixir = status
        .elixir
        .as_deref()
        .filter(|e| *e != DEFAULT_ELIXIR)
        .map(|e| ("--elixir", e.to_owned()));
    let config = status
        .ssh_config
        .as_ref()
        .map(|c| ("-F", c.display().to_string()));
    let options = status.ssh_options.iter().map(|o| ("-o", o.clone()));
    let flags: Vec<String> = elixir
        .into_iter()
        .chain(config)
        .chain(options)
        .map(|(flag, value)| format!("{flag} {}", shell_word(&value)))
        .collect();
    match flags.is_empty() {
        true => "-".to_owned(),
        false => flags.join(" "),
    }
}

/// `text` as one word of a POSIX shell: as it is when it needs no quotes, else in single quotes.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    match !text.is_empty() && text.chars().all(plain) {
        true => text.to_owned(),
        false => format!("'{}'", text.replace('\'', "'\\''")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_settings_are_the_flags_that_made_the_session() {
        let status = |elixir: &str, config: Option<&str>, options: &[&str]| Status {
            host: "h".into(),
            address: "h".into(),
            since: 0,
            idle_left: 0,
            runs: 0,
            active: 0,
            spare: "ready".into(),
            pid: 1,
            elixir: Some(elixir.into()),
            ssh_config: config.map(PathBuf::from),
            ssh_options: options.iter().map(|o| (*o).to_owned()).collect(),
            build: None,
        };
        assert_eq!(settings(&status("elixir", None, &[])), "-");
        assert_eq!(
            settings(&status("/opt/elixir", Some("/k/cfg"), &["Port=2222"])),
            "--elixir /opt/elixir -F /k/cfg -o Port=2222"
        );
        assert_eq!(
            settings(&status("elixir", None, &["ProxyCommand=ssh -W %h:%p it's"])),
            "-o 'ProxyCommand=ssh -W %h:%p it'\\''s'"
        );
    }
}
