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

#[test]
fn the_committed_erlang_beams_load_on_otp_24() {
    // OTP 24's loader knows opcodes up to 176; OTP 25's compiler, `+r24` or not, uses 180
    // (`badrecord`) for a record it cannot prove, which is why the relay keeps its state in a map.
    for module in testkit::ERL_BEAMS {
        let beam = std::fs::read(testkit::erl_beam_path(module)).unwrap();
        assert!(
            testkit::max_opcode(&beam) <= testkit::OTP24_MAX_OPCODE,
            "templates/{module}.beam uses opcode {}, which OTP 24 cannot load",
            testkit::max_opcode(&beam)
        );
    }
}
