//! What the end-to-end tests of `run` (tests/run.rs, tests/faults.rs) share: runs of the demo
//! fixture against a testkit sshd, through testkit's launcher.

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
