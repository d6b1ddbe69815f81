//! The committed relay beam (`templates/mix_remote_relay.beam`, sent to every remote node) is
//! exactly what OTP 25's `erlc +r24 +deterministic` makes of its source: regenerate it with
//! `cargo xtask relay-beam` after changing the source.

#[test]
fn the_committed_relay_beam_is_built_from_its_source() {
    let otp = testkit::host_otp_release().expect("erl on the PATH");
    if otp != testkit::RELAY_OTP {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "CI must run OTP {} to check the relay beam, it has OTP {otp}",
            testkit::RELAY_OTP
        );
        eprintln!(
            "skipped: the relay beam is built with OTP {}, this machine has OTP {otp}",
            testkit::RELAY_OTP
        );
        return;
    }
    let built = testkit::build_relay_beam().unwrap();
    let committed = std::fs::read(testkit::relay_beam_path()).unwrap();
    assert!(
        built == committed,
        "templates/mix_remote_relay.beam is not what its source compiles to: run `cargo xtask relay-beam`"
    );
}
