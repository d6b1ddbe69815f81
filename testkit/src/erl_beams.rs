//! The beams of the Erlang sources in `templates/` (the output relay, the distribution carrier) as
//! this machine's `erlc` builds them: what `cargo xtask erl-beams` commits, and what the test that
//! guards the committed bytes rebuilds.

use std::path::PathBuf;
use std::process::Command;

/// The OTP release the committed beam is built with: its loader-level output loads on OTP 24 to
/// 29 when compiled with `+r24`.
pub const RELAY_OTP: &str = "25";

/// The modules whose Erlang source and committed beam are in `templates/`: the output relay and
/// the distribution carrier.
pub const ERL_BEAMS: [&str; 2] = ["mix_remote_relay", "mix_remote_dist"];

/// The source of `module` (one of [`ERL_BEAMS`]), in the workspace.
pub fn erl_source(module: &str) -> PathBuf {
    crate::fixture::repo_root().join(format!("templates/{module}.erl"))
}

/// The committed beam of `module` (one of [`ERL_BEAMS`]), in the workspace.
pub fn erl_beam_path(module: &str) -> PathBuf {
    crate::fixture::repo_root().join(format!("templates/{module}.beam"))
}

/// The OTP release of the `erl` on the PATH; None if there is none.
pub fn host_otp_release() -> Option<String> {
    let out = Command::new("erl")
        .args(["-noshell", "-eval"])
        .arg("io:put_chars(erlang:system_info(otp_release)), halt().")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether this machine builds the committed beams (`what`, e.g. "the relay beam") as they are
/// committed: its `erl` must be OTP [`RELAY_OTP`]'s; otherwise why not.
pub fn builds_committed_beams(what: &str) -> Result<(), String> {
    let otp = host_otp_release().ok_or("no `erl` on the PATH")?;
    if otp != RELAY_OTP {
        return Err(format!(
            "{what}: built with OTP {RELAY_OTP}, this machine has OTP {otp}"
        ));
    }
    Ok(())
}

/// For the tests that rebuild a committed beam: whether this machine can (see
/// [`builds_committed_beams`]); if not, it says it skips, and CI, which must, panics.
pub fn checks_committed_beams(what: &str) -> bool {
    match builds_committed_beams(what) {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty()),
                "CI must check {what}: {why}"
            );
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// Compiles the source of `module` (one of [`ERL_BEAMS`]) with the host's `erlc +r24
/// +deterministic` in a temporary directory; returns the beam's bytes, or what went wrong.
pub fn build_erl_beam(module: &str) -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let out = Command::new("erlc")
        .args(["+r24", "+deterministic", "-o"])
        .arg(dir.path())
        .arg(erl_source(module))
        .output()
        .map_err(|e| format!("cannot run erlc: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "erlc failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let beam = dir.path().join(format!("{module}.beam"));
    std::fs::read(&beam).map_err(|e| format!("{}: {e}", beam.display()))
}

/// The highest opcode OTP 24's loader knows (`recv_marker_use`); OTP 25 added `bs_create_bin`
/// (177) to `badrecord` (180). A beam whose Code chunk says it uses no higher opcode loads there.
pub const OTP24_MAX_OPCODE: u32 = 176;

/// The highest opcode a `.beam` says it uses: its `Code` chunk's header (sub-header size,
/// instruction set, then the highest opcode). `FOR1`, the length, `BEAM`; then chunks: id,
/// length, data padded to 4 bytes.
pub fn max_opcode(beam: &[u8]) -> u32 {
    let word = |at: usize| u32::from_be_bytes(beam[at..at + 4].try_into().unwrap());
    assert_eq!((&beam[..4], &beam[8..12]), (&b"FOR1"[..], &b"BEAM"[..]));
    let mut at = 12;
    while at + 8 <= beam.len() {
        let size = word(at + 4) as usize;
        if &beam[at..at + 4] == b"Code" {
            return word(at + 16);
        }
        at += 8 + size.div_ceil(4) * 4;
    }
    panic!("no Code chunk");
}
