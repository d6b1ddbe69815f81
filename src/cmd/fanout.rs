//! The fan-out over hosts that `run` and `check` share: the hosts chosen and their settings
//! resolved, at most `--parallel` of them worked on at once, each with its own view of the
//! reporter (a progress bar of its own with several hosts), SIGINT and SIGTERM turned into a
//! clean stop of every host, and the summary event. One slow or unreachable host never holds up
//! the others.

use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::Hosts;
use crate::config::{self, Config, ConfigError, HostSettings, Section, Selected};
use crate::events::Event;
use crate::exit::{self, CliError};
use crate::remote::boot;
use crate::remote::session::SessionError;
use crate::report::Reporter;

/// Hosts worked on at once when `--parallel` is not given: "all of them", within reason for
/// the local machine (two processes and a few sockets per host).
pub const MAX_PARALLEL: usize = 64;

/// The hosts `--host` and `--group` choose, and the settings of each: `flags` over
/// mix-remote.yaml over the built-in defaults. A destination that starts with `-` is refused.
pub fn choose(
    config: Option<&Config>,
    chosen: &Hosts,
    flags: &Section,
) -> Result<(Vec<Selected>, Vec<HostSettings>), ConfigError> {
    let selected = config::select(config, &chosen.hosts, &chosen.groups)
        .map_err(|e| e.from_variables(chosen.from_variables))?;
    let settings: Vec<HostSettings> = selected
        .iter()
        .map(|s| HostSettings {
            origin: config::origin(config, s, chosen.from_variables),
            ..config::resolve(config, s, flags)
        })
        .collect();
    // ssh refuses it at connect ("hostname contains invalid characters"): bad input, before.
    if let Some(host) = settings.iter().find(|h| h.address.starts_with('-')) {
        return Err(ConfigError::DashedAddress {
            host: host.name.clone(),
            address: host.address.clone(),
        });
    }
    Ok((selected, settings))
}

/// Refuses, as bad input, an ssh config of `hosts` that is not there or is a directory (`-F none`
/// is no file, and `/dev/null` no regular one): ssh would only say it cannot read it, for every
/// host, as a failed connection. For the commands that connect (`down` does not: it ends a
/// session whose config has gone as well).
pub fn check_ssh_configs(hosts: &[HostSettings]) -> Result<(), ConfigError> {
    let refused = hosts.iter().find_map(|host| {
        let file = host
            .ssh_config
            .as_ref()
            .filter(|f| f.as_os_str() != "none")?;
        let why = match file.metadata() {
            Ok(meta) if meta.is_dir() => "is a directory, not a file",
            Ok(_) => return None,
            Err(_) => "is not there",
        };
        Some((file.clone(), host.name.clone(), why))
    });
    match refused {
        Some((path, host, why)) => Err(ConfigError::NoSshConfig { path, host, why }),
        None => Ok(()),
    }
}

/// Refuses, as bad input, an `elixir` of `hosts` that cannot be passed to a server's shell: for
/// the commands that check every host before they contact any.
pub fn check_elixirs(hosts: &[HostSettings]) -> Result<(), CliError> {
    for host in hosts {
        boot::check_elixir(&host.elixir).map_err(|e| CliError::from(SessionError::Boot(e)))?;
    }
    Ok(())
}

/// The host of mix-remote.yaml whose name is nearest to `name`, when `name` is not one of them:
/// a host that fails to connect may be a misspelt one, taken for an SSH destination. A group
/// nearer than any host comes as `--group NAME` (one named exactly is refused before anything
/// connects: see `config::select`).
pub fn near_host(config: Option<&Config>, name: &str) -> Option<String> {
    let config = config?;
    let hosts = config.hosts();
    if hosts.contains(&name) {
        return None;
    }
    let near = crate::suggest::nearest(name, hosts.iter().copied().chain(config.groups()))?;
    Some(match hosts.contains(&near) {
        true => near.to_owned(),
        false => format!("--group {near}"),
    })
}

/// The hint for a host that failed to connect, when it may be a misspelling of `near`.
pub fn near_host_hint(name: &str, near: &str) -> String {
    format!(
        "{name} is not a host of mix-remote.yaml (so ssh was given it as it is): did you mean {near}?"
    )
}

/// How many hosts at once: `--parallel`, else all of them up to [`MAX_PARALLEL`]; never more
/// than there are hosts.
pub fn parallelism(flag: Option<NonZeroUsize>, hosts: usize) -> usize {
    flag.map_or(MAX_PARALLEL, NonZeroUsize::get)
        .min(hosts)
        .max(1)
}

/// The command was interrupted: every host was stopped and the display cleared; the results of
/// the hosts that had finished, in the order of the hosts.
#[derive(Debug)]
pub struct Interrupted<T>(pub Vec<Option<T>>);

/// A fan-out whose signal handlers are installed: create it before anything is started, so
/// that no signal can end a command without its teardown.
pub struct Fanout {
    /// Resolves on the signal; true for SIGINT (Ctrl-C, which the terminal may have echoed).
    interrupted: Pin<Box<dyn Future<Output = bool> + Send>>,
}

impl Fanout {
    /// Installs the SIGINT and SIGTERM handlers.
    pub fn begin() -> Fanout {
        Fanout {
            interrupted: Box::pin(interrupted()),
        }
    }

    /// Resolves on the signal (true for SIGINT), for the work done before the hosts' (the
    /// compile): once it has, the command ends as interrupted, and this fan-out is not run.
    pub fn interrupted(&mut self) -> impl Future<Output = bool> + '_ {
        &mut self.interrupted
    }

    /// Runs `work` on every host of `hosts`, at most `parallel` at once, each with its view of
    /// `report` (a bar of `steps` phases with several hosts); returns what each host's work gave,
    /// in the order of `hosts`. Once `stop` says so of a host's result, the hosts still working
    /// are stopped and left without one. On a signal every host is stopped, the display is
    /// cleared, and the result is [`Interrupted`] (see [`interrupted_end`]) with what had finished.
    pub async fn run<T, F, Fut>(
        mut self,
        report: &Reporter,
        hosts: &[HostSettings],
        parallel: Option<NonZeroUsize>,
        steps: u64,
        stop: impl Fn(&T) -> bool,
        work: F,
    ) -> Result<Vec<Option<T>>, Interrupted<T>>
    where
        T: Send + 'static,
        F: Fn(HostSettings, Arc<Reporter>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let prefixed = hosts.len() > 1;
        let limit = Arc::new(Semaphore::new(parallelism(parallel, hosts.len())));
        let views: Vec<Arc<Reporter>> = hosts
            .iter()
            .map(|h| Arc::new(report.for_host(&h.name, prefixed, steps)))
            .collect();
        let mut tasks = JoinSet::new();
        for (index, host) in hosts.iter().enumerate() {
            let (view, limit) = (Arc::clone(&views[index]), Arc::clone(&limit));
            let job = work(host.clone(), Arc::clone(&view));
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let result = job.await;
                view.end_host();
                (index, result)
            });
        }
        let mut results: Vec<Option<T>> = (0..hosts.len()).map(|_| None).collect();
        loop {
            tokio::select! {
                next = tasks.join_next() => match next {
                    None => break,
                    Some(Ok((index, result))) => {
                        let stopping = stop(&result);
                        results[index] = Some(result);
                        if stopping {
                            // Dropping a host's work kills its ssh master: its remote node halts.
                            tasks.shutdown().await;
                            break;
                        }
                    }
                    // A host's work panicked: a bug of the tool's, whose message is out. The other
                    // hosts are stopped (their nodes halt) and the panic goes on to the exit code
                    // of one, rather than a result without that host. (Nothing else cancels a
                    // task but the shutdowns here.)
                    Some(Err(e)) => {
                        if let Ok(panic) = e.try_into_panic() {
                            tasks.shutdown().await;
                            views.iter().for_each(|v| v.end_host());
                            std::panic::resume_unwind(panic);
                        }
                    }
                },
                ctrl_c = &mut self.interrupted => {
                    // The display first: stopping the hosts removes their bars.
                    report.interrupted(ctrl_c);
                    tasks.shutdown().await;
                    views.iter().for_each(|v| v.end_host());
                    return Err(Interrupted(results));
                }
            }
        }
        for (view, result) in views.iter().zip(&results) {
            if result.is_none() {
                view.end_host();
            }
        }
        Ok(results)
    }
}

/// How an interrupted command ends, after any table of its hosts: the error line and the
/// summary event; returns the exit code.
pub fn interrupted_end(report: &Reporter, hosts: usize) -> u8 {
    report.error("interrupted: remote nodes stopped, connections closed");
    summary(report, hosts, hosts, exit::INTERRUPTED);
    exit::INTERRUPTED
}

/// The summary event that ends a command on hosts (with `--json`; nothing otherwise).
pub fn summary(report: &Reporter, hosts: usize, failed: usize, exit_code: u8) {
    report.event(Event::Summary {
        hosts,
        failed,
        exit_code,
    });
}

/// Resolves on SIGINT (true), SIGTERM or SIGHUP (false: the terminal closed, which signals the
/// foreground group alone, where a compile's Mix is not). The handlers are installed when this
/// is called, not when it is first polled; and they stay: from then on, these signals end the
/// command only through what awaits this.
pub fn interrupted() -> impl Future<Output = bool> + Send {
    use tokio::signal::unix::{SignalKind, signal};
    let int = signal(SignalKind::interrupt()).ok();
    let term = signal(SignalKind::terminate()).ok();
    let hangup = signal(SignalKind::hangup()).ok();
    async move {
        tokio::select! {
            () = received(int) => true,
            () = received(term) => false,
            () = received(hangup) => false,
        }
    }
}

/// Resolves when `signal` arrives; never, if its handler could not be installed.
async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => drop(s.recv().await),
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_hosts_at_once_within_a_bound() {
        assert_eq!(parallelism(None, 3), 3);
        assert_eq!(parallelism(None, 500), MAX_PARALLEL);
        assert_eq!(parallelism(NonZeroUsize::new(2), 10), 2);
        assert_eq!(parallelism(NonZeroUsize::new(usize::MAX), 10), 10);
        assert_eq!(parallelism(NonZeroUsize::new(3), 0), 1);
    }
}
