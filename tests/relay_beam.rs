//! The committed relay beam (`templates/mix_remote_relay.beam`, sent to every remote node) is
//! exactly what OTP 25's `erlc +r24 +deterministic` makes of its source: regenerate it with
//! `cargo xtask relay-beam` after changing the source.

#[test]
fn the_committed_relay_beam_is_built_from_its_source() {
    if !testkit::checks_committed_beams("the relay beam") {
        return;
    }
    let built = testkit::build_relay_beam().unwrap();
    let committed = std::fs::read(testkit::relay_beam_path()).unwrap();
    assert!(
        built == committed,
        "templates/mix_remote_relay.beam is not what its source compiles to: run `cargo xtask relay-beam`"
    );
}
