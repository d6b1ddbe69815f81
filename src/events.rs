//! `--json`: what a run, a plan or a check does, as newline-delimited JSON events on stdout, for
//! CI jobs and scripts. The contract is `schema/events.schema.json` (described in the README);
//! every event is one object on one line, its kind in `"event"`.

use serde::Serialize;

/// The stages a command goes through, as named in `phase_started` / `phase_finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Compiling the project with `mix compile` (once per command, no host).
    Compile,
    /// Reading `_build` and computing the closure (once per command, no host).
    Scan,
    /// Opening the SSH connection.
    Connect,
    /// Booting the remote node until it connects back.
    Boot,
    /// Loading the closure.
    Push,
    /// Calling the entry.
    Call,
    /// Stopping the remote node and closing the connection.
    Stop,
    /// `check`: asking the server for the run's reverse forward.
    Forward,
    /// `check`: finding `elixir` and reading its versions.
    Elixir,
}

/// An application a run ships, as `plan --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShippedApp {
    /// Its name.
    pub app: String,
    /// The modules of its `ebin/` (each loaded, or loadable on demand, on the server).
    pub modules: usize,
    /// Their size.
    pub bytes: usize,
    /// The regular files of its `priv/` (the directories that travel with them, those that
    /// hold no file, are not counted).
    pub priv_files: usize,
    /// Their size.
    pub priv_bytes: usize,
}

/// Elixir's own protocols a run sends with the call, consolidated, as `plan --json` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedProtocols {
    /// The Elixir release that made them: only a server running it loads them.
    pub elixir: String,
    /// The protocols, as users write them.
    pub modules: Vec<String>,
    /// Their size as the call carries them.
    pub bytes: usize,
}

impl PlannedProtocols {
    /// As `plan` and `-v` say them: `where the server runs Elixir 1.14.0: Elixir's protocols
    /// consolidated (Enumerable, ...)`.
    pub fn said(&self) -> String {
        format!(
            "where the server runs Elixir {}: Elixir's protocols consolidated ({})",
            self.elixir,
            self.modules.join(", ")
        )
    }
}

/// The stream of an `output` line that is not the function's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    /// What the function wrote to its standard error (`IO.puts(:stderr, ...)`, `IO.warn/1`).
    Stderr,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The function returned; `value` is its result as `inspect/2` shows it.
    Returned,
    /// It raised an exception; `value` is the formatted exception and stacktrace.
    Raised,
    /// It threw (`throw/1`); `value` is the formatted throw and stacktrace.
    Threw,
    /// It exited (`exit/1`, or a linked process took it down); `value` is the formatted reason.
    Exited,
    /// It ended itself with a status (`exit(:normal)`, `exit(:shutdown)`: 0, or
    /// `exit({:shutdown, n})`), as a script ends under `mix run`; `value` is the status.
    Stopped,
}

impl Status {
    /// How the call ended, in a word: `returned`, `raised`, `threw`, `exited`.
    pub fn word(self) -> &'static str {
        match self {
            Status::Returned => "returned",
            Status::Raised => "raised",
            Status::Threw => "threw",
            Status::Exited => "exited",
            Status::Stopped => "stopped",
        }
    }
}

/// The outcome of one preflight probe of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// It passed.
    Ok,
    /// It failed; `problem` says why.
    Failed,
    /// Not tried, because an earlier probe failed.
    Skipped,
}

/// One host's row of `check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRow {
    /// The host's name.
    pub host: String,
    /// The SSH connection and login (failed too when ssh refused the host key).
    pub ssh: Probe,
    /// The server's host key, as OpenSSH verified it with your configuration.
    pub host_key: Probe,
    /// The run's reverse forward.
    pub forwarding: Probe,
    /// The remote `elixir`.
    pub elixir: Probe,
    /// `System.otp_release()` on the server, e.g. "25".
    pub otp_release: Option<String>,
    /// The full OTP version, e.g. "25.3.2.8", when the server's OTP records it.
    pub otp_version: Option<String>,
    /// `System.version()` on the server, e.g. "1.14.0".
    pub elixir_version: Option<String>,
    /// Whether the server's OTP loads every module of the local build (the version preflight
    /// `run` does before pushing); skipped without a compiled build.
    pub compat: Probe,
    /// Whether the server has a directory a run can write its files in (`TMPDIR` or the others
    /// runs look at); skipped when elixir could not be asked.
    pub temp_dir: Probe,
    /// Directories that runs killed on the server left where runs put theirs (the next run
    /// removes them); unknown when elixir could not be asked or there is no such directory.
    pub stale_runs: Option<u64>,
    /// Whether `run` can work on this host.
    pub ready: bool,
    /// The first problem found, as one line.
    pub problem: Option<String>,
}

/// Everything `--json` reports. Each variant is one line: `{"event": "<snake_case name>", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A stage began.
    PhaseStarted {
        /// The host, or null for work done once (the scan).
        host: Option<String>,
        /// Which stage.
        phase: Stage,
        /// What a person would read.
        message: String,
    },
    /// A stage completed (a stage that failed has an `error` event instead).
    PhaseFinished {
        /// The host, or null.
        host: Option<String>,
        /// Which stage.
        phase: Stage,
        /// What a person would read.
        message: String,
        /// How long it took.
        ms: u64,
    },
    /// A module of the closure was loaded on a host.
    ModulePushed {
        /// The host.
        host: String,
        /// As users write it: `MyApp.Worker`, `:my_mod`.
        module: String,
        /// Bytes of its code as sent, before the batch is compressed.
        bytes: usize,
    },
    /// A line the remote function printed (IO.puts, :io.format...), without its newline.
    Output {
        /// The host.
        host: String,
        /// The line.
        text: String,
        /// `stderr` for a line of its standard error; absent for its standard output.
        #[serde(skip_serializing_if = "Option::is_none")]
        stream: Option<OutputStream>,
    },
    /// A line the remote node printed outside the function's IO (logger, boot messages).
    Log {
        /// The host.
        host: String,
        /// The line.
        text: String,
    },
    /// The call on a host ended.
    Result {
        /// The host.
        host: String,
        /// Returned or raised.
        status: Status,
        /// The result, or the formatted exception.
        value: String,
        /// Whether `--expect` accepted it (true without `--expect` when it returned).
        ok: bool,
    },
    /// Something went wrong: on a host, or before any host (then `host` is null).
    Error {
        /// The host, or null.
        host: Option<String>,
        /// One line.
        message: String,
    },
    /// Something that usually works but deserves a look (e.g. the remote's OTP or Elixir differs
    /// from the build's).
    Warning {
        /// The host.
        host: Option<String>,
        /// One line.
        message: String,
    },
    /// `check`: one host's preflight.
    Check(CheckRow),
    /// `plan`: one module of the closure, in push order.
    Module {
        /// 1-based position in the push order (leaves first).
        order: usize,
        /// As users write it: `MyApp.Worker`, `:my_mod`.
        module: String,
        /// Its application, or `consolidated` for a consolidated protocol.
        app: String,
        /// Size of its `.beam`.
        bytes: usize,
        /// Its `.beam` file.
        path: String,
        /// Why it is pushed: `entry`, `include`, or the kind of edge from `from` (`calls`,
        /// `names`, `literal`, `behaviour`, `protocol_implementation`, `struct_implementation`).
        reason: String,
        /// The first module found that needs it; null for the entry and included modules.
        from: Option<String>,
        /// It has an `-on_load` hook: loaded on its own after the batch, dependencies first.
        on_load: bool,
    },
    /// `plan`: the totals, after the modules (its last event).
    Plan {
        /// The entry function.
        entry: String,
        /// Modules in the closure.
        modules: usize,
        /// Their total size.
        bytes: usize,
        /// Modules in the project's build.
        project_modules: usize,
        /// The applications that ship with the closure (by name).
        shipped: Vec<ShippedApp>,
        /// The applications the shipped ones need that the server must have.
        from_server: Vec<String>,
        /// Elixir's protocols sent with the call, consolidated; null when the build has none.
        protocols: Option<PlannedProtocols>,
    },
    /// The last event of `run` and `check`, and of a `plan` that fails.
    Summary {
        /// Hosts the command was for.
        hosts: usize,
        /// Hosts that did not succeed: failed, cancelled, or (for `check`) not ready.
        failed: usize,
        /// The process exit status.
        exit_code: u8,
    },
}

/// Writes `event` to stdout as one line, flushed, so a consumer sees it at once.
pub fn emit(event: &Event) {
    let line = serde_json::to_string(event).expect("events serialize to JSON");
    crate::screen::write_stdout(&(line + "\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flat_objects_tagged_by_kind() {
        let json = |e: &Event| serde_json::to_string(e).unwrap();
        assert_eq!(
            json(&Event::PhaseFinished {
                host: None,
                phase: Stage::Scan,
                message: "closure".into(),
                ms: 4
            }),
            r#"{"event":"phase_finished","host":null,"phase":"scan","message":"closure","ms":4}"#
        );
        let row = CheckRow {
            host: "web-1".into(),
            ssh: Probe::Ok,
            host_key: Probe::Ok,
            forwarding: Probe::Failed,
            elixir: Probe::Skipped,
            otp_release: None,
            otp_version: None,
            elixir_version: None,
            compat: Probe::Skipped,
            temp_dir: Probe::Skipped,
            stale_runs: None,
            ready: false,
            problem: Some("refused".into()),
        };
        let text = json(&Event::Check(row));
        assert!(
            text.starts_with(r#"{"event":"check","host":"web-1","ssh":"ok","#),
            "{text}"
        );
        assert!(text.contains(r#""forwarding":"failed","elixir":"skipped""#));
    }
}
