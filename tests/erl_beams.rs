//! The committed beams of the Erlang sources in `templates/` (the output relay and the
//! distribution carrier, sent to every remote node) are exactly what OTP 25's `erlc +r24
//! +deterministic` makes of their sources: regenerate them with `cargo xtask erl-beams` after
//! changing a source.

#[test]
fn the_committed_erlang_beams_are_built_from_their_sources() {
    if !testkit::checks_committed_beams("the Erlang beams") {
        return;
    }
    for module in testkit::ERL_BEAMS {
        let built = testkit::build_erl_beam(module).unwrap();
        let committed = std::fs::read(testkit::erl_beam_path(module)).unwrap();
        assert!(
            built == committed,
            "templates/{module}.beam is not what its source compiles to: run `cargo xtask erl-beams`"
        );
    }
}
