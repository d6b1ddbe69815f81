//! What the end-to-end tests of `run` (tests/run.rs, tests/faults.rs, tests/deploy.rs) share: runs
//! of the demo fixture against a testkit sshd, through testkit's launcher, and `check` of one.

use std::ffi::OsStr;

use testkit::{MixRemote, Output, Running, Sshd};

/// mix-remote in the demo fixture, with `args` after `run --host <sshd> -F <its config>`.
pub fn demo(sshd: &Sshd, args: &[&str]) -> MixRemote {
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.run_on(sshd).args(args);
    tool
}

/// Runs the tool with `args` on the demo fixture and checks that it left nothing on either side.
pub fn run(sshd: &Sshd, args: &[&str]) -> Output {
    let out = demo(sshd, args).run();
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    out
}

/// Starts `Demo.Worker.sleep_forever` (with `extra` flags) and returns once the call is running on
/// the remote.
pub fn start_sleeper_with(sshd: &Sshd, extra: &[&str]) -> Running {
    let args = [extra, &["Demo.Worker.sleep_forever"]].concat();
    let mut run = demo(sshd, &args).spawn();
    run.stdout_until("sleeping\n");
    assert!(
        sshd.session_processes()
            .iter()
            .any(|p| p.cmdline.contains("beam")),
        "no remote node while the call runs: {:?}",
        sshd.session_processes()
    );
    run
}

/// Starts `Demo.Worker.sleep_forever` and returns once the call is running on the remote.
pub fn start_sleeper(sshd: &Sshd) -> Running {
    start_sleeper_with(sshd, &[])
}

/// The row `check --json` gives of `sshd` (from the demo fixture, with `before` ahead of `check`:
/// `--config FILE` and the like), after checking that it left nothing behind locally.
// Each test binary compiles this module; tests/run.rs checks no host.
#[allow(dead_code)]
pub fn check_row(sshd: &Sshd, before: &[&OsStr]) -> serde_json::Value {
    let mut check = testkit::mix_remote(testkit::compiled_fixture("demo"));
    check
        .args(before)
        .args(["check", "--json", "--host", &sshd.host(), "-F"])
        .arg(sshd.ssh_config());
    let out = check.run();
    out.assert_local_clean();
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "check")
        .unwrap_or_else(|| panic!("no check event: {}{}", out.stdout, out.stderr))
}
