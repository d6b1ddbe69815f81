//! What starts the throw-away node on the server, and the words of the boot protocol: the
//! launcher command line, the bytes fed to its stdin, the lines the launcher prints for us and the
//! requests the boot program serves. The programs come from `templates/`, so what is shipped is
//! easy to read and review; every word they share with the tool is a constant here.

use std::collections::{BTreeMap, HashMap};

use crate::build::compat::MIN_REMOTE_OTP;
use crate::remote::node::bounds;
use crate::remote::node::dist::NET_TICKTIME;
use crate::remote::wire;

/// The shell launcher (`templates/boot.sh`); `@ELIXIR@` is replaced by the elixir to run.
const LAUNCHER: &str = include_str!("../../templates/boot.sh");
/// What the launcher's node evaluates first (`templates/boot_start.erl`, Erlang, sent as the
/// first [`frame`] on stdin): it refuses an OTP older than `@MIN_OTP@` ([`MIN_REMOTE_OTP`]), then
/// loads the boot program's beam for its release and calls it with `@TICK_MS@`, a quarter of
/// [`NET_TICKTIME`] in milliseconds, the tick interval `:net_kernel.start/1` takes.
const START: &str = include_str!("../../templates/boot_start.erl");
/// The boot program (`templates/boot.exs`) as `cargo xtask boot-beam` compiles it on OTP 25,
/// the module `mix_remote_boot`: for OTP 25 to 29, and (`r24`) for OTP 24, whose loader lacks
/// OTP 25's instructions while OTP 29's has dropped some that `r24` makes. Both are sent on stdin;
/// the node loads the one for its release as it is, so the server neither parses nor evaluates
/// Elixir to boot.
const BOOT_BEAMS: [&[u8]; 2] = [
    include_bytes!("../../templates/mix_remote_boot.beam"),
    include_bytes!("../../templates/mix_remote_boot_otp24.beam"),
];
/// The boot program's module, as [`BOOT_BEAMS`] name it.
const BOOT_MODULE: &str = "mix_remote_boot";
/// The output relay (`templates/mix_remote_relay.erl`) as OTP 25 `erlc +r24 +deterministic`
/// builds it (`cargo xtask erl-beams`): it loads on OTP 24 to 29, and the server needs no
/// compiler. Sent on the boot session's stdin, loaded before the node connects back.
pub const RELAY_BEAM: &[u8] = include_bytes!("../../templates/mix_remote_relay.beam");
/// The distribution carrier (`templates/mix_remote_dist.erl`), built like the relay: OTP's TCP
/// distribution, with the connection back opened as the node starts (the start line's first
/// act, for a cold run), so that the forward's channel is open by the time the handshake goes.
const DIST_BEAM: &[u8] = include_bytes!("../../templates/mix_remote_dist.beam");
/// Where runs put their directories on the server, and which of them earlier runs left
/// (`templates/run_dirs.exs`): shared by the boot program (compiled in, which removes those) and
/// the check program (which counts them).
const RUN_DIRS: &str = include_str!("../../templates/run_dirs.exs");
/// The host part of the node names of a run, ours and the remote's: the booted node starts with
/// the dynamic name `undefined@localhost` (templates/boot_start.erl, templates/boot.exs) and asks
/// our node, which it connects to, to name it on that host.
pub const NODE_HOST: &str = "localhost";
/// How the directory of a run on the server is named: `<prefix><OS pid>-<host tag>-<random>`.
pub const RUN_DIR_PREFIX: &str = "mix-remote-run-";
/// The launcher of a warm session's own SSH session (`templates/session.sh`): elixir looked for,
/// then nothing but waiting for stdin to close.
const SESSION_LAUNCHER: &str = include_str!("../../templates/session.sh");
/// The launcher of `mix-remote check` (`templates/check.sh`).
const CHECK_LAUNCHER: &str = include_str!("../../templates/check.sh");
/// The program `check` runs with the remote elixir (`templates/check.exs`), sent over stdin.
const CHECK_PROGRAM: &str = include_str!("../../templates/check.exs");
/// Lines the launchers print for the tool start with this; everything else is the node's output.
pub const MARKER: &str = "mix-remote:";
/// `mix-remote:connected`: the SSH session runs and the launcher waits for its input.
pub const CONNECTED: &str = "connected";
/// `mix-remote:no-elixir PATH`: the launcher found no such elixir; the session ends.
pub const NO_ELIXIR: &str = "no-elixir ";
/// `mix-remote:old-otp RELEASE`: the node runs an OTP older than
/// [`MIN_REMOTE_OTP`]; it halts.
pub const OLD_OTP: &str = "old-otp ";
/// `mix-remote:info:HEX`: the node has started distribution and says what it is and has, as the
/// `info` request would answer (see `agent::preload::known`); a run then need not ask.
pub const INFO: &str = "info:";
/// `mix-remote:loaded:HEX`: the node has loaded the batch it was given on stdin; HEX is the
/// external term format of what the `load` request would have answered.
pub const LOADED: &str = "loaded:";
/// `mix-remote:config:config/NAME`: the node evaluates that config file (of the project's);
/// `mix-remote:config:` alone, it is done with it. A node that halts in between was halted by
/// the file (`System.halt/1` in it).
pub const CONFIG: &str = "config:";
/// `mix-remote:held:HEX`: bytes the config file under way ([`CONFIG`]) printed as config.exs is
/// evaluated ahead, which the node holds until the run prints them: should the file halt the node,
/// they are what it printed before.
pub const HELD: &str = "held:";
/// `mix-remote:done`: the node has answered the run's work (`run`, `eval`, `iex`) and its own
/// output (Logger's) is all out before this line: nothing is left to wait for but the reply.
pub const DONE: &str = "done";
/// `mix-remote:checked`: the check program has printed the versions.
pub const CHECKED: &str = "checked";
/// How the check program's line of versions starts.
pub const VERSIONS: &str = "mix-remote-versions ";
/// How the check program's line about directories of earlier runs starts: the count, then where
/// it looked (`templates/run_dirs.exs`).
pub const STALE: &str = "mix-remote-stale ";
/// How the check program's line starts when the server has no directory a run could put its
/// own in (`templates/run_dirs.exs`, `tmp_dir`): then what it tried.
pub const NO_RUN_DIR: &str = "mix-remote-no-run-dir ";
/// How the check program's line naming the applications asked about that the server lacks
/// starts (none: nothing after it).
pub const MISSING: &str = "mix-remote-missing";
/// How the check program's line saying what the server's ERTS runs on starts: its system
/// architecture, then its word size.
pub const MACHINE: &str = "mix-remote-machine ";
/// What a node that finds no directory to put its run's files in raises (`tmp_dir`).
pub const NO_TEMP_DIR: &str = "no writable temporary directory";
/// How the message a node raises when it cannot create its run's directory starts (`run_dir`
/// of templates/boot.exs).
pub const CANNOT_CREATE: &str = "cannot create ";
/// The name the boot program's request server registers on the remote node.
pub const SERVER: &str = "mix_remote";
/// The boot program's request `{after_load, [Op, Args]}`: request `Op` once the batch sent on
/// the node's stdin is loaded (`not_loaded` if that load failed).
pub const AFTER_LOAD: &str = "after_load";

/// The requests the boot program's server answers, in the order a run makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// What the node is and has: versions and the MD5 of every loaded module.
    Info,
    /// Load a compressed batch of modules.
    Load,
    /// Apply the application environment and call the entry.
    Run,
    /// Apply the application environment and evaluate Elixir code.
    Eval,
    /// Apply it as `Run` does, then run an IEx session until its input ends.
    Iex,
    /// IEx's completion of a line in the session.
    Expand,
    /// Interrupt the session's evaluation.
    Interrupt,
}

impl Request {
    /// The request's name, as the boot program's `requests/0` map keys it.
    pub fn name(self) -> &'static str {
        match self {
            Request::Info => "info",
            Request::Load => "load",
            Request::Run => "run",
            Request::Eval => "eval",
            Request::Iex => "iex",
            Request::Expand => "expand",
            Request::Interrupt => "interrupt",
        }
    }
}

/// Why the boot command could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The `--elixir` path holds characters we will not pass through a remote shell.
    #[error("--elixir `{0}`: {ELIXIR_PATH_RULE}")]
    BadElixirPath(String),
}

/// What an `elixir` path may hold, as the error for one that breaks it says.
pub const ELIXIR_PATH_RULE: &str = "only letters, digits and / . _ - + ~ @ % : , = are allowed \
     (and ~ only at the start)";

/// The command the remote login shell runs: `exec sh -c '<launcher>'`. The launcher is a fixed
/// template with no single quotes and one line per statement, joined by `; `, so it reaches `sh`
/// unchanged from bash, zsh, fish or csh alike. It holds no secret. `forward_port` is the port of
/// the run's reverse forward if the tool chose it (the launcher then opens the connection back
/// before the VM starts), 0 if the server allocates it.
pub fn remote_command(elixir: &str, forward_port: u16) -> Result<String, BootError> {
    launcher(
        &LAUNCHER.replace("@PORT@", &forward_port.to_string()),
        elixir,
    )
}

/// The command a warm session's master runs as its own session: it says [`NO_ELIXIR`] or
/// [`CONNECTED`] as [`remote_command`]'s launcher does, then starts no node and ends when its
/// stdin closes. Quoted like [`remote_command`].
pub fn session_command(elixir: &str) -> Result<String, BootError> {
    launcher(SESSION_LAUNCHER, elixir)
}

/// The command `mix-remote check` runs: `templates/check.sh`, quoted like [`remote_command`].
pub fn check_command(elixir: &str) -> Result<String, BootError> {
    launcher(CHECK_LAUNCHER, elixir)
}

/// Refuses an `--elixir` path with characters we will not pass through a remote shell.
pub fn check_elixir(elixir: &str) -> Result<(), BootError> {
    if !elixir_path_ok(elixir) {
        return Err(BootError::BadElixirPath(elixir.to_owned()));
    }
    Ok(())
}

/// Whether `elixir` keeps [`ELIXIR_PATH_RULE`], so that it passes through a remote shell as it is.
pub fn elixir_path_ok(elixir: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "/._-+~@%:,=".contains(c);
    !elixir.is_empty() && elixir.chars().all(allowed) && !elixir[1..].contains('~')
}

fn launcher(template: &str, elixir: &str) -> Result<String, BootError> {
    check_elixir(elixir)?;
    let script = template
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace("@ELIXIR@", elixir);
    Ok(format!("exec sh -c '{script}'"))
}

/// Everything the boot session reads from stdin, in order, a [`frame`] each:
/// [`start_frames`], then [`identity_frames`]. The stream then stays open: its end halts the
/// node.
pub fn stdin_input(node_port: u16, ahead: bool, cookie: &str, our_node: &str) -> Vec<u8> {
    let mut input = start_frames(node_port, ahead, "");
    input.extend(identity_frames(cookie, our_node));
    input
}

/// What the boot session reads from stdin before the identities, a [`frame`] each: the start
/// line (see `start_line`, with the Erlang expressions `first`, each ending in a comma, before
/// it), the server port of the forward to our node, the carrier's, the boot program's and the
/// relay's beams. With `ahead` (a cold run's node, which connects back as soon as it can) the
/// start line opens the connection back first of all; a spare node, which waits for its run,
/// leaves that to distribution.
pub fn start_frames(node_port: u16, ahead: bool, first: &str) -> Vec<u8> {
    let start = format!("{first}{}", start_line(ahead));
    let port = node_port.to_string();
    let items = [
        start.as_bytes(),
        port.as_bytes(),
        DIST_BEAM,
        BOOT_BEAMS[0],
        BOOT_BEAMS[1],
        RELAY_BEAM,
    ];
    items.into_iter().flat_map(frame).collect()
}

/// The identities the boot program reads once it has said what it is, a [`frame`] each: the
/// cookie and our node's full name.
pub fn identity_frames(cookie: &str, our_node: &str) -> Vec<u8> {
    [cookie, our_node]
        .into_iter()
        .flat_map(|s| frame(s.as_bytes()))
        .collect()
}

/// What goes before `len` bytes that make one frame of a node's stdin: their count in four bytes,
/// big-endian, as the port `templates/boot.sh` opens (`{packet,4}`) reads it. Every frame is
/// far under 4 GiB: a batch's part holds compressed modules and at most
/// [`MAX_PRIV_BYTES`](crate::build::apps::MAX_PRIV_BYTES) of `priv/` files, and the rest is a
/// few lines and beams.
pub fn frame_header(len: usize) -> [u8; 4] {
    u32::try_from(len)
        .expect("a stdin frame is under 4 GiB")
        .to_be_bytes()
}

/// `bytes` as one frame of a node's stdin: [`frame_header`], then `bytes`.
pub fn frame(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + bytes.len());
    out.extend_from_slice(&frame_header(bytes.len()));
    out.extend_from_slice(bytes);
    out
}

/// [`START`] as the Erlang expressions the launcher's `-eval` reads: its comment lines left out,
/// the others joined with spaces, the placeholders filled in.
fn start_line(ahead: bool) -> String {
    START
        .lines()
        .filter(|line| !line.trim_start().starts_with('%'))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
        .replace("@MIN_OTP@", &MIN_REMOTE_OTP.to_string())
        .replace("@TICK_MS@", &(NET_TICKTIME * 250).to_string())
        .replace("@HOST@", NODE_HOST)
        .replace(
            "@AHEAD@",
            if ahead {
                "mix_remote_dist:ahead(Port),"
            } else {
                ""
            },
        )
}

/// The term whose external format `hex` spells (lower- or upper-case hex), as the boot program
/// prints terms on its markers; `None` if it is not that. The bytes come from the server: they
/// pass the same bounds check as distribution's before they are decoded.
pub fn term_of_hex(hex: &str) -> Option<erl_dist::term::Term> {
    let bytes = bytes_of_hex(hex)?;
    bounds::check_term(&bytes).ok()?;
    erl_dist::term::Term::decode(&bytes[..]).ok()
}

/// `bytes` in lower-case hex, two digits each: what [`bytes_of_hex`] reads back.
pub fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes `hex` spells, two digits each (lower- or upper-case); `None` if it is not that.
pub fn bytes_of_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
        .collect()
}

/// Whether a node whose loaded modules and their MD5s are `loaded` runs this tool's boot program
/// (either build of it): a node another build of the tool booted may serve requests otherwise.
pub fn is_ours(loaded: &HashMap<String, [u8; 16]>) -> bool {
    loaded.get(BOOT_MODULE).is_some_and(|md5| {
        BOOT_BEAMS
            .iter()
            .any(|beam| wire::loader_md5(beam) == Some(*md5))
    })
}

/// What `check` feeds its launcher once the forward is tested: the go-ahead line, then the
/// check program as one line of Elixir, after the host's `remote_env` is put, as a run puts it
/// before it makes its directory (a `TMPDIR` there places the directories `check` counts), with
/// the applications the build needs of the server (`apps`, which it looks for).
pub fn check_input(remote_env: &BTreeMap<String, String>, apps: &[&str]) -> Vec<u8> {
    let env: Vec<String> = remote_env
        .iter()
        .map(|(name, value)| {
            let [name, value] = [name, value].map(|s| elixir_string_body(s));
            format!("\"{name}\" => \"{value}\"")
        })
        .collect();
    let apps: Vec<String> = apps
        .iter()
        .map(|app| format!("\"{}\"", elixir_string_body(app)))
        .collect();
    format!(
        "go\nSystem.put_env(%{{{}}}); Code.eval_string(\"{}\", apps: [{}])\n",
        env.join(", "),
        elixir_string_body(&CHECK_PROGRAM.replace("@RUN_DIRS@", RUN_DIRS)),
        apps.join(", ")
    )
    .into_bytes()
}

/// Escapes `text` for the inside of an Elixir double-quoted string, on one line.
fn elixir_string_body(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '#' if chars.peek() == Some(&'{') => out.push_str("\\#"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_terms_are_bounded_before_they_are_decoded() {
        let list = |n: u32| [&[131, 108][..], &n.to_be_bytes(), &[106, 106]].concat();
        // `[[]]`, as the boot program would print it.
        assert!(term_of_hex(&hex_of(&list(1))).is_some());
        // A list that claims 4 billion elements (the decoder would reserve 200 GB for them).
        assert_eq!(term_of_hex(&hex_of(&list(u32::MAX))), None);
        // Nested deeper than distribution's bound (the decoder recurses once a level).
        let deep: Vec<u8> = std::iter::once(131)
            .chain((0..100_000).flat_map(|_| [108, 0, 0, 0, 1]))
            .chain(std::iter::once(106))
            .collect();
        assert_eq!(term_of_hex(&hex_of(&deep)), None);
        // Bytes after the term.
        assert_eq!(term_of_hex("836a6a"), None);
    }

    #[test]
    fn a_node_runs_our_boot_program_only_with_its_md5() {
        let mut loaded = HashMap::new();
        assert!(!is_ours(&loaded));
        loaded.insert(BOOT_MODULE.to_owned(), [0; 16]);
        assert!(!is_ours(&loaded));
        for beam in BOOT_BEAMS {
            let md5 = wire::loader_md5(beam).expect("the boot beams are beams");
            loaded.insert(BOOT_MODULE.to_owned(), md5);
            assert!(is_ours(&loaded));
        }
    }

    /// The boot program's source, which [`BOOT_BEAMS`] are compiled from.
    const PROGRAM: &str = include_str!("../../templates/boot.exs");

    #[test]
    fn check_puts_the_remote_env_as_elixir_strings_before_its_program() {
        let env = BTreeMap::from([("A".to_owned(), "x\"#{y}\\".to_owned())]);
        let input = String::from_utf8(check_input(&env, &["ssl", "eex"])).unwrap();
        let put = "go\nSystem.put_env(%{\"A\" => \"x\\\"\\#{y}\\\\\"}); Code.eval_string(\"";
        assert!(input.starts_with(put), "{input}");
        assert_eq!(input.lines().count(), 2);
        assert!(
            input.ends_with("\", apps: [\"ssl\", \"eex\"])\n"),
            "{input}"
        );
        let none = String::from_utf8(check_input(&BTreeMap::new(), &[])).unwrap();
        assert!(none.starts_with("go\nSystem.put_env(%{}); Code.eval_string(\""));
    }

    #[test]
    fn the_templates_speak_the_same_words() {
        for launcher in [LAUNCHER, SESSION_LAUNCHER, CHECK_LAUNCHER] {
            assert!(launcher.contains(&format!("echo {MARKER}{CONNECTED}")));
            assert!(launcher.contains(&format!("echo \"{MARKER}{NO_ELIXIR}$E\"")));
        }
        assert!(CHECK_PROGRAM.contains(&format!("IO.puts(\"{MARKER}{CHECKED}\")")));
        assert!(CHECK_PROGRAM.contains(&format!("IO.puts(\"{VERSIONS}")));
        assert!(CHECK_PROGRAM.contains(&format!("IO.puts(\"{STALE}")));
        assert!(CHECK_PROGRAM.contains(&format!("IO.puts(\"{NO_RUN_DIR}tried ")));
        assert!(CHECK_PROGRAM.contains(&format!("IO.puts(\"{MISSING}")));
        assert!(CHECK_PROGRAM.contains(&format!("IO.puts(\"{MACHINE}")));
        assert!(RUN_DIRS.contains(&format!("raise \"{NO_TEMP_DIR}\"")));
        assert!(PROGRAM.contains(&format!("raise \"{CANNOT_CREATE}#{{dir}}: ")));
        for program in [PROGRAM, CHECK_PROGRAM] {
            assert!(program.contains("\n@RUN_DIRS@\n"));
        }
        assert!(RUN_DIRS.contains(&format!("\"^{RUN_DIR_PREFIX}(")));
        assert!(PROGRAM.contains(&format!("[\"{RUN_DIR_PREFIX}\", :os.getpid(), ?-,")));
        assert!(PROGRAM.contains(&format!("Process.register(server, :{SERVER})")));
        assert!(PROGRAM.contains(&format!("[\"\\n{MARKER}{INFO}\", info, ?\\n]")));
        assert!(PROGRAM.contains(&format!("\"\\n{MARKER}{CONFIG}config/#{{name}}\\n\"")));
        assert!(PROGRAM.contains(&format!("\"\\n{MARKER}{CONFIG}\\n\"")));
        assert!(PROGRAM.contains(&format!("[\"\\n{MARKER}{HELD}\", :binary.encode_hex(")));
        assert!(START.contains(&format!("io:format(\"{MARKER}{OLD_OTP}~b~n\"")));
        assert!(START.contains("mix_remote_boot:main(@TICK_MS@)\n"));
        assert!(PROGRAM.contains(&format!(
            ":net_kernel.start([:undefined@{NODE_HOST}, :shortnames, tick_ms])"
        )));
        assert!(PROGRAM.contains(&format!("op != :{AFTER_LOAD} ->")));
        for request in [
            Request::Info,
            Request::Load,
            Request::Run,
            Request::Eval,
            Request::Iex,
            Request::Expand,
            Request::Interrupt,
        ] {
            assert!(PROGRAM.contains(&format!("\n      {}: &", request.name())));
        }
    }

    #[test]
    fn launcher_is_one_quoted_word_for_any_shell() {
        for port in [0, 43210] {
            let cmd = remote_command("~/.asdf/shims/elixir", port).unwrap();
            let inner = cmd
                .strip_prefix("exec sh -c '")
                .unwrap()
                .strip_suffix('\'')
                .unwrap();
            assert!(!inner.contains('\''), "single quote inside the launcher");
            assert!(!inner.contains('\n'));
            assert!(!inner.contains('!'));
            assert!(!inner.contains('@'), "a placeholder left: {inner}");
            assert!(inner.starts_with("E=~/.asdf/shims/elixir; "));
            assert!(inner.contains(&format!("; P={port}; ")), "{inner}");
        }
    }

    #[test]
    fn the_session_launcher_is_quoted_the_same_way_and_starts_no_node() {
        let cmd = session_command("/usr/bin/elixir").unwrap();
        let inner = cmd
            .strip_prefix("exec sh -c '")
            .unwrap()
            .strip_suffix('\'')
            .unwrap();
        assert!(!inner.contains('\'') && !inner.contains('!') && !inner.contains('@'));
        assert!(
            inner.starts_with("E=/usr/bin/elixir; command -v "),
            "{inner}"
        );
        assert!(inner.ends_with("; echo mix-remote:connected; exec cat >/dev/null"));
        assert!(session_command("$(id)").is_err());
    }

    #[test]
    fn the_check_launcher_is_quoted_the_same_way() {
        let cmd = check_command("/usr/bin/elixir").unwrap();
        let inner = cmd
            .strip_prefix("exec sh -c '")
            .unwrap()
            .strip_suffix('\'')
            .unwrap();
        assert!(!inner.contains('\''));
        assert!(inner.starts_with("E=/usr/bin/elixir; echo mix-remote:connected; "));
        assert!(check_command("$(id)").is_err());
    }

    #[test]
    fn refuses_elixir_paths_that_would_reach_the_shell() {
        for bad in ["", "elixir; rm -rf /", "$(id)", "a'b", "a b", "/x/~/elixir"] {
            assert!(remote_command(bad, 0).is_err(), "{bad:?} accepted");
            assert!(check_elixir(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_start_travels_as_the_first_frame_before_the_beams() {
        assert_eq!(elixir_string_body("a\"#{b}\\\n"), "a\\\"\\#{b}\\\\\\n");
        let frames = |mut input: &[u8]| {
            let mut frames = Vec::new();
            while let [a, b, c, d, rest @ ..] = input {
                let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
                frames.push(rest[..len].to_vec());
                input = &rest[len..];
            }
            frames
        };
        let lines = frames(&stdin_input(4000, true, "c", "t@localhost"));
        assert_eq!(lines.len(), 8);
        let start = std::str::from_utf8(&lines[0]).unwrap();
        assert!(start.starts_with("Otp = list_to_integer("), "{start}");
        assert!(start.contains(" if Otp < 24 -> "));
        // The carrier and the port mapper (the boot program's module) are loaded before
        // distribution starts; the connection back is opened first of all.
        let at = |text: &str| {
            start
                .find(text)
                .unwrap_or_else(|| panic!("{text} in {start}"))
        };
        let ahead = at(" mix_remote_dist:ahead(Port), ");
        assert!(at(" code:load_binary(mix_remote_dist, ") < ahead);
        assert!(ahead < at(" code:load_binary(mix_remote_boot, "));
        let started =
            " spawn(fun() -> net_kernel:start([undefined@localhost, shortnames, 3750]) end), ";
        assert!(at(" code:load_binary(mix_remote_boot, ") < at(started));
        assert!(start.contains(" mix_remote_boot:main(3750) catch "));
        assert!(start.ends_with(" halt(1) end."));
        assert!(!start.contains('%'));
        assert_eq!(lines[1], b"4000");
        assert_eq!(lines[2], DIST_BEAM);
        assert_eq!(lines[3], BOOT_BEAMS[0]);
        assert_eq!(lines[4], BOOT_BEAMS[1]);
        assert_eq!(lines[5], RELAY_BEAM);
        assert_eq!(
            (&lines[6][..], &lines[7][..]),
            (&b"c"[..], &b"t@localhost"[..])
        );
        assert_eq!(frame(b"ab"), [0, 0, 0, 2, b'a', b'b']);
        // A spare node waits for its run before it connects: it opens nothing ahead.
        let later = frames(&stdin_input(4000, false, "c", "t@localhost"));
        assert!(!String::from_utf8_lossy(&later[0]).contains("mix_remote_dist:ahead("));
    }

    #[test]
    fn hex_reads_back_what_it_spells() {
        assert_eq!(hex_of(&[0, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(bytes_of_hex("000FabfF"), Some(vec![0, 0x0f, 0xab, 0xff]));
        assert_eq!(bytes_of_hex(&hex_of(b"")), Some(Vec::new()));
        assert_eq!(bytes_of_hex("abc"), None);
        assert_eq!(bytes_of_hex("zz"), None);
    }
}
