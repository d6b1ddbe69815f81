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
            max_opcode(&beam) <= 176,
            "templates/{module}.beam uses opcode {}, which OTP 24 cannot load",
            max_opcode(&beam)
        );
    }
}

/// The highest opcode a `.beam` says it uses: its `Code` chunk's header (sub-header size,
/// instruction set, then the highest opcode).
fn max_opcode(beam: &[u8]) -> u32 {
    let word = |at: usize| u32::from_be_bytes(beam[at..at + 4].try_into().unwrap());
    // `FOR1`, the length, `BEAM`; then chunks: id, length, data padded to 4 bytes.
    let mut at = 12;
    while at + 8 <= beam.len() {
        let len = word(at + 4) as usize;
        if &beam[at..at + 4] == b"Code" {
            return word(at + 16);
        }
        at += 8 + len.div_ceil(4) * 4;
    }
    panic!("no Code chunk");
}
