//! The committed boot program beams (`templates/mix_remote_boot*.beam`, sent to every remote node)
//! are what the host's Elixir on OTP 25 makes of `templates/boot.exs` (regenerate them with `cargo
//! xtask boot-beam` after changing it), and each loads on the releases it is sent for, where every
//! function it calls exists: OTP 24 (by the opcodes it uses), OTP 25 with Elixir 1.14 (the host),
//! OTP 27 with Elixir 1.18 and OTP 29 with Elixir 1.20 (the chroots, when present). The modules
//! the program loads ahead are named as the host's Elixir names them.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use testkit::Chroot;

/// What the remote's `elixir` runs on the beam given in base64 on stdin: loads it and names
/// every function it calls that its OTP and Elixir lack (but the relay's, which comes with it).
const CHECK: &str = r#"
beam = Base.decode64!(String.trim(IO.read(:stdio, :eof)))
{:ok, {_, [imports: imports]}} = :beam_lib.chunks(beam, [:imports])

missing =
  for {m, f, a} <- imports,
      m != :mix_remote_relay,
      not (Code.ensure_loaded?(m) and {f, a} in m.module_info(:exports)),
      do: {m, f, a}

IO.inspect({:code.load_binary(:mix_remote_boot, ~c"mix_remote_boot", beam), missing})
"#;

#[test]
fn the_committed_boot_beams_are_built_from_their_source() {
    if !testkit::checks_committed_beams("the boot beams") {
        return;
    }
    let built = testkit::build_boot_beams().unwrap();
    for (path, built) in testkit::boot_beam_paths().iter().zip(built) {
        let committed = std::fs::read(path).unwrap();
        assert!(
            built == committed,
            "{} is not what templates/boot.exs compiles to: run `cargo xtask boot-beam`",
            path.display()
        );
    }
}

#[test]
fn the_otp24_beam_uses_no_opcode_newer_than_otp24() {
    let [_, otp24] = testkit::boot_beam_paths();
    let beam = std::fs::read(otp24).unwrap();
    assert!(max_opcode(&beam) <= testkit::OTP24_MAX_OPCODE);
}

#[test]
fn each_beam_loads_and_finds_what_it_calls_on_the_releases_it_is_sent_to() {
    let [current, otp24] = testkit::boot_beam_paths().map(|p| std::fs::read(p).unwrap());
    let loads = "{{:module, :mix_remote_boot}, []}";
    for beam in [&current, &otp24] {
        assert_eq!(check(Command::new("elixir"), beam), loads, "on the host");
    }
    for release in ["trixie", "sid"] {
        let Some(chroot) = Chroot::open(release) else {
            continue;
        };
        assert_eq!(
            check(chroot.command("elixir"), &current),
            loads,
            "{release}"
        );
    }
}

/// [`CHECK`]'s verdict on `beam`, run by `elixir`.
fn check(mut elixir: Command, beam: &[u8]) -> String {
    let mut child = elixir
        .args(["-e", CHECK])
        .env("ERL_CRASH_DUMP_BYTES", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("elixir runs");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(base64(beam).as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// [`testkit::max_opcode`] of a gzipped beam.
fn max_opcode(gzipped: &[u8]) -> u32 {
    let mut beam = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut beam)
        .unwrap();
    testkit::max_opcode(&beam)
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= chunk.len() {
                char::from(ALPHABET[(n >> shift) as usize & 63])
            } else {
                '='
            });
        }
    }
    out
}

#[test]
fn the_modules_a_node_loads_ahead_are_the_hosts_elixir_s() {
    // Names the host's Elixir (1.14, whose names the lists are) lacks would load nothing: a typo
    // or a rename would put those modules back on the call's path unnoticed.
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/boot.exs"),
    )
    .unwrap();
    for list in ["started_modules", "evaluator_modules"] {
        let start = source
            .find(&format!("\n  @{list} ["))
            .unwrap_or_else(|| panic!("@{list} in templates/boot.exs"));
        let literal = &source[start + list.len() + 5..];
        let literal = &literal[..literal.find("\n  ]").unwrap() + 4];
        let out = Command::new("elixir")
            .args([
                "-e",
                &format!("for m <- {literal}, not Code.ensure_loaded?(m), do: IO.inspect(m)"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "",
            "{list}: not in the host's Elixir"
        );
    }
}
