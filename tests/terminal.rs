//! End-to-end tests of the terminal side of a run (a real sshd, a real remote BEAM, the demo
//! fixture): output at link speed and in order, stdin read only as the function asks, `eval` and
//! scripts, and what a person sees on a terminal (through a pseudo-terminal).

use testkit::{MixRemote, Output, Sshd, has_spinner};

/// mix-remote in the demo fixture, with `args` after `run --host <sshd> -F <its config>`.
fn demo(sshd: &Sshd, args: &[&str]) -> MixRemote {
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.run_on(sshd).args(args);
    tool
}

/// Runs the tool with `args` on the demo fixture and checks that it left nothing on either side.
fn run(sshd: &Sshd, args: &[&str]) -> Output {
    let out = demo(sshd, args).run();
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    out
}

/// Evaluates `code` with the demo fixture on `sshd`, given `input` on stdin, with `-v` (its
/// `stats:` line counts the reads that reached the tool), and checks that it left nothing.
fn eval_reading(sshd: &Sshd, code: &str, input: String) -> Output {
    let out = testkit::mix_remote(testkit::compiled_fixture("demo"))
        .eval_on(sshd, code)
        .arg("-v")
        .stdin(input)
        .run();
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    out
}

/// A mix-remote.yaml naming `sshd` twice, as hosts `a` and `b` of group `both`; its directory
/// and path.
fn two_hosts(sshd: &Sshd) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("mix-remote.yaml");
    let host = |name: &str| {
        format!(
            "  {name}:\n    address: \"{}\"\n    ssh_config: \"{}\"\n",
            sshd.host(),
            sshd.ssh_config().display()
        )
    };
    let text = format!(
        "hosts:\n{}{}groups:\n  both: [a, b]\n",
        host("a"),
        host("b")
    );
    std::fs::write(&path, text).expect("write mix-remote.yaml");
    (dir, path.display().to_string())
}

/// mix-remote in the demo fixture with `args` after `--config CONFIG`, `command` and the flags
/// that choose the group `both` of [`two_hosts`].
fn on_both(config: &str, command: &str, args: &[&str]) -> MixRemote {
    let project = testkit::compiled_fixture("demo");
    let mut tool = testkit::mix_remote(&project);
    tool.args(["--config", config, command, "--group", "both", "--project"])
        .arg(&project)
        .args(args);
    tool
}

/// mix-remote eval `expr` on `sshd`, in the demo fixture, with `extra` flags.
fn eval(sshd: &Sshd, expr: &str, extra: &[&str]) -> Output {
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.eval_on(sshd, expr).args(extra);
    let out = tool.run();
    sshd.assert_no_session_processes();
    out.assert_local_clean();
    out
}

/// The numbered lines `Demo.Ux.lines(n)` prints, each with its newline.
fn numbered_lines(n: usize, prefix: &str) -> String {
    (1..=n)
        .map(|i| format!("{prefix}line {i} of {n} ...........................\n"))
        .collect()
}

#[test]
fn a_hundred_thousand_lines_arrive_complete_and_in_order() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Ux.lines", "--", "100000"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout == numbered_lines(100_000, "") + ":ok\n",
        "{} bytes of output, not the 100,000 lines in order and the result",
        out.stdout.len()
    );

    let (_dir, config) = two_hosts(&sshd);
    let out = on_both(&config, "run", &["Demo.Ux.lines", "--", "100000"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for host in ["a", "b"] {
        let prefix = format!("[{host}] ");
        let own: String = out
            .stdout
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            own == numbered_lines(100_000, &prefix) + &format!("{prefix}:ok\n"),
            "host {host}: its lines are not all there in order"
        );
    }
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn output_to_a_reader_that_has_gone_fails_the_functions_writes_as_under_mix_run() {
    // `| head -n 2`: once head has exited, the function's next writes fail as on a closed device
    // (`:terminated`, as `mix run`'s own stdout gives them), so it stops instead of running on
    // with its output dropped; the run fails with what it raised.
    let sshd = Sshd::start();
    let code = "Enum.each(1..3_000_000, &IO.puts/1); IO.puts(:stderr, \"ran to the end\")";
    let out = testkit::mix_remote(testkit::compiled_fixture("demo"))
        .eval_on(&sshd, code)
        .wrapper(&["bash", "-c", "set -o pipefail; \"$0\" \"$@\" | head -n 2"])
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(1), "1\n2\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Erlang error: :terminated") && !out.stderr.contains("ran to the end"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn output_that_cannot_be_written_fails_the_run_that_returned() {
    // `> /dev/full`: the function runs to its end (as under `mix run`, whose writes there do not
    // fail), and the run, whose output and result are lost, fails saying so.
    let sshd = Sshd::start();
    let out = testkit::mix_remote(testkit::compiled_fixture("demo"))
        .eval_on(&sshd, "IO.puts(:lost); IO.puts(:stderr, :ran); :done")
        .wrapper(&["sh", "-c", "exec \"$@\" > /dev/full", "sh"])
        .run();
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            Some(3),
            "ran\nmix-remote: error: cannot write to stdout: No space left on device (os error \
             28)\n"
        ),
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn dots_and_a_prompt_show_as_written_and_keystrokes_answer_it() {
    let sshd = Sshd::start();
    let term = demo(&sshd, &["Demo.Ux.dots_then_ask", "--", "20", "50"]).spawn_in_pty();
    let row = term.wait_for_row("apply? [y/n]");
    assert_eq!(row, "....................apply? [y/n]", "{}", term.screen());
    assert!(
        !has_spinner(&term.screen()),
        "a spinner over a prompt:\n{}",
        term.screen()
    );
    term.send("y\r");
    let out = term.finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains("....................apply? [y/n] y\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("\"y\\n\""), "{}", out.stdout);
    assert!(out.stdout.contains("✓ Demo.Ux.dots_then_ask finished"));
    assert!(!has_spinner(&out.stdout), "{}", out.stdout);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn colours_are_on_when_output_goes_to_a_terminal_as_under_mix_run() {
    let sshd = Sshd::start();
    let code = "IO.puts(IO.ANSI.format([:green, \"ok\"])); IO.ANSI.enabled?()";
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    let term = tool.eval_on(&sshd, code).spawn_in_pty();
    term.wait_until("a green ok", |screen| {
        let row = screen
            .rows(0, testkit::PTY_COLS)
            .position(|row| row == "ok");
        row.is_some_and(|row| {
            let cell = screen.cell(row as u16, 0).expect("a cell");
            cell.fgcolor() == vt100::Color::Idx(2)
        })
    });
    let out = term.finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.ends_with("true"), "{}", out.stdout);
    // Piped, as `mix run | cat` has it: none.
    let out = eval(&sshd, code, &[]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "ok\nfalse\n"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
}

#[test]
fn a_prompt_piped_on_to_the_terminal_is_not_drawn_over() {
    // `run ... | tee log`: the prompt reaches the terminal through the pipe, the bars on stderr
    // are drawn on the same terminal, and what is typed echoes there.
    let sshd = Sshd::start();
    let mut run = demo(&sshd, &["Demo.Ux.dots_then_ask", "--", "20", "50"]);
    run.wrapper(&["bash", "-c", "set -o pipefail; \"$@\" | cat", "bash"]);
    let term = run.spawn_in_pty();
    term.wait_for_row("apply? [y/n]");
    term.send("y");
    term.wait_for_row("apply? [y/n] y");
    // The bars would be back within a few ticks of 100 ms. (The dots before the prompt, a line
    // without its newline yet, go into the pipe, and whether that ends on the terminal the
    // tool cannot know: only the prompt is sure to.)
    std::thread::sleep(std::time::Duration::from_millis(600));
    let row = term.wait_for_row("apply? [y/n]");
    assert!(row.ends_with("apply? [y/n] y"), "{}", term.screen());
    assert!(!has_spinner(&term.screen()), "{}", term.screen());
    term.send("\r");
    let out = term.finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.ends_with("\"y\\n\""), "{}", out.stdout);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_pipe_answers_prompts_and_the_rest_of_stdin_is_left_for_the_next_reader() {
    let sshd = Sshd::start();
    let out = demo(&sshd, &["Demo.Ux.dots_then_ask", "--", "3", "1"])
        .stdin("y\n")
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "...apply? [y/n] \"y\\n\"\n"),
        "{}",
        out.stderr
    );

    // IO.gets, IO.read and :io.get_line each take one line; `cat` gets the fourth.
    let out = demo(&sshd, &["Demo.Ux.read_three"])
        .wrapper(&["sh", "-c", "\"$0\" \"$@\"; cat"])
        .stdin("a\nb\nc\nd\n")
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "first? third? {\"a\\n\", \"b\\n\", \"c\\n\"}\nd\n"),
        "{}",
        out.stderr
    );

    // From a regular file: the offset is left just after the line read.
    let input = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(input.path(), "one\ntwo\n").expect("write the input");
    let out = demo(&sshd, &["Demo.Worker.ask"])
        .wrapper(&["sh", "-c", "exec < \"$INPUT\"; \"$0\" \"$@\"; cat"])
        .env("INPUT", input.path())
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "name? \"one\\n\"\ntwo\n"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn data_piped_in_comes_by_the_block_once_the_function_reads_on_and_each_prompt_shows() {
    // 20,000 lines, each read with its own prompt: the first few a read each (what a later
    // reader should get stays on stdin), then as much as the pipe holds at a time, the relay
    // serving the lines (and showing the prompts, as OTP's own stdin does) without asking.
    let sshd = Sshd::start();
    let lines = 20_000;
    let input: String = (1..=lines).map(|i| format!("{i}\n")).collect();
    let sum = "Stream.iterate(1, &(&1 + 1)) |> Enum.reduce_while(0, fn i, sum -> \
               case IO.gets(\"#{i}? \") do :eof -> {:halt, sum}; line -> \
               {:cont, sum + String.to_integer(String.trim(line))} end end)";
    let out = eval_reading(&sshd, sum, input);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let prompts: String = (1..=lines + 1).map(|i| format!("{i}? ")).collect();
    assert_eq!(
        out.stdout,
        format!("{prompts}{}\n", lines * (lines + 1) / 2)
    );
    let reads = out.stat("reads");
    assert!(reads < 1000, "{reads} reads for {lines} lines");
}

#[test]
fn a_term_read_across_lines_of_a_block_asks_for_no_more_input() {
    // Past the first 8 reads, the 9th takes the rest of the pipe: :io.read/2 then finds the
    // two lines of its term, and IO.gets the next, in that block, and neither asks again.
    let sshd = Sshd::start();
    let input = format!("{}x\n{{1,\n2}}.\nmore\n", "x\n".repeat(8));
    let read =
        "for _ <- 1..9, do: IO.gets(\"\"); {:io.read(:standard_io, ~c\"t> \"), IO.gets(\"\")}";
    let out = eval_reading(&sshd, read, input);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "t> {{:ok, {1, 2}}, \"more\\n\"}\n"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stat("reads"), 9, "{}", out.stderr);
}

#[test]
fn a_large_read_of_data_piped_in_takes_its_characters_and_leaves_the_rest() {
    // 3 MB of two-byte characters, one line: IO.read takes its count in characters, however
    // many blocks they came in, and IO.gets the rest of the line.
    let sshd = Sshd::start();
    let input = format!("{}\nnext\n", "é".repeat(1_500_000));
    let read = "a = IO.read(:stdio, 1_000_000); b = IO.gets(\"\"); \
                {String.length(a), byte_size(a), String.length(b), IO.gets(\"\")}";
    let out = eval_reading(&sshd, read, input);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{1000000, 2000000, 500001, \"next\\n\"}\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn closed_stdin_is_end_of_file_and_several_hosts_do_not_share_it() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Ux.read_three"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "first? third? {:eof, :eof, :eof}\n"),
        "{}",
        out.stderr
    );

    let (_dir, config) = two_hosts(&sshd);
    let out = on_both(&config, "run", &["Demo.Worker.ask"])
        .stdin("y\n")
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for host in ["a", "b"] {
        let prefix = format!("[{host}] ");
        let own: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .collect();
        assert_eq!(own, [format!("{prefix}name? "), format!("{prefix}:eof")]);
    }
    let warning = "stdin is not read with several hosts: reads get end of file";
    assert_eq!(out.stderr.matches(warning).count(), 1, "{}", out.stderr);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

/// The bytes `entry` of the demo fixture, called with `args` and given `input` on stdin, writes on
/// stdout (value included): under mix-remote on `sshd`, and under `mix run` locally, which prints
/// the value as mix-remote does. Bytes, not text: each stdout goes to a file.
fn stdout_as_under_mix_run(
    sshd: &Sshd,
    entry: &str,
    args: &[&str],
    input: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (stdin, remote_out, local_out) = (
        dir.path().join("stdin"),
        dir.path().join("remote"),
        dir.path().join("local"),
    );
    std::fs::write(&stdin, input).expect("write the input");

    let mut tool_args = vec![entry];
    if !args.is_empty() {
        tool_args.push("--");
        tool_args.extend(args);
    }
    let out = demo(sshd, &tool_args)
        .wrapper(&["sh", "-c", "exec <\"$IN\" >\"$OUT\"; exec \"$0\" \"$@\""])
        .env("IN", &stdin)
        .env("OUT", &remote_out)
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    sshd.assert_no_session_processes();
    out.assert_local_clean();

    let code = format!("IO.puts(inspect({entry}({})))", args.join(", "));
    let mut mix = std::process::Command::new("sh");
    mix.args([
        "-c",
        "exec <\"$IN\" >\"$OUT\"; exec mix run --no-compile -e \"$0\"",
        &code,
    ])
    .current_dir(testkit::compiled_fixture("demo"))
    .env("IN", &stdin)
    .env("OUT", &local_out)
    .env(testkit::VENDOR_VAR, testkit::vendor_dir());
    let local = testkit::run_within(mix, testkit::RUN_LIMIT);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);

    let read = |path| std::fs::read(path).expect("read a stdout");
    (read(&remote_out), read(&local_out))
}

#[test]
fn characters_read_keep_their_bytes_when_input_is_not_all_utf8() {
    let sshd = Sshd::start();
    // `é` and a byte that is not UTF-8 are two characters: IO.read gets the bytes as they came,
    // as under `mix run` (the relay read `é` as two latin1 characters, "Ã©").
    let input = b"\xc3\xa9\xff\n";
    let (remote, local) = stdout_as_under_mix_run(&sshd, "Demo.Ux.read_chars", &["3"], input);
    assert_eq!(
        String::from_utf8_lossy(&remote),
        String::from_utf8_lossy(&local)
    );
    assert_eq!(local, b"{<<195, 169, 255, 10>>, :eof}\n");
    // Fewer characters than the line holds: the rest is left for the next read (OTP 25's `user`
    // gives the rest of the bytes it read at once after such a byte; OTP 26 and newer read it as
    // the latin1 character, "éÿ").
    let out = demo(&sshd, &["Demo.Ux.read_chars", "--", "2"])
        .stdin(&input[..])
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{<<195, 169, 255>>, \"\\n\"}\n"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_line_that_ends_with_a_carriage_return_is_read_as_under_mix_run() {
    let sshd = Sshd::start();
    // OTP's io servers read a line ending "\r\n" as one ending "\n" (io_lib:collect_line/4),
    // for IO.gets, IO.read(:line) and :io.get_line alike; the relay kept the carriage return.
    let input = b"a\r\nb\r\nc\r\n";
    let (remote, local) = stdout_as_under_mix_run(&sshd, "Demo.Ux.read_three", &[], input);
    assert_eq!(
        String::from_utf8_lossy(&remote),
        String::from_utf8_lossy(&local)
    );
    assert_eq!(local, b"first? third? {\"a\\n\", \"b\\n\", \"c\\n\"}\n");
}

#[test]
fn reads_from_a_latin1_standard_io_take_each_byte_as_a_character() {
    let sshd = Sshd::start();
    // After `:io.setopts(encoding: :latin1)`: IO.gets and IO.read get each byte as a character
    // (in UTF-8), IO.binread the bytes as they came, as each of these reads alone gets them under
    // `mix run` (OTP 25's `user` keeps what a read leaves converted for its reads in unicode,
    // which would give the last two "Ã" and "¼\n" here). The relay read UTF-8 instead.
    let out = demo(&sshd, &["Demo.Ux.read_latin1"])
        .stdin("é\néü\nü\n")
        .run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{\"Ã©\\n\", \"Ã©\", \"ü\", \"\\n\"}\n"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_password_read_is_the_line_without_its_end_as_otp_gives_it() {
    let sshd = Sshd::start();
    // OTP's `group` (IEx's standard input, and `mix run`'s on a terminal from OTP 26 on) answers
    // get_password with the characters typed, as a list, without the newline, whatever the
    // device's mode: the relay gave the line as IO.gets does ("s3cré t\n").
    let out = eval_reading(
        &sshd,
        "{:io.get_password(), IO.gets(\"next? \"), :io.get_password()}",
        "s3cré t\nrest\n".to_owned(),
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (
            Some(0),
            "next? {[115, 51, 99, 114, 233, 32, 116], \"rest\\n\", :eof}\n"
        ),
        "{}",
        out.stderr
    );
}

/// A module whose `line/2` takes a line as `get_until` calls it (a list of its characters), and
/// whose `boom/2` raises, for the reads of the test below.
const UNTIL_MODULE: &str = "defmodule Until do
  def line(_cont, :eof), do: {:done, :eof, :eof}

  def line(cont, chars) do
    case Enum.split_while(cont ++ chars, &(&1 != ?\\n)) do
      {line, [?\\n | rest]} -> {:done, line, rest}
      _ -> {:more, cont ++ chars}
    end
  end

  def boom(_cont, _chars), do: raise(\"boom\")
end
";

#[test]
fn get_until_reads_answer_as_under_mix_run() {
    // Raw get_until requests: a list the function returns comes as a binary (standard_io is in
    // binary mode), in either encoding; a function that raises is `{:error, :boom}`; at the end
    // of input, with nothing read, :io.scan_erl_exprs/1 gets :eof on OTP 25 (its `user` asks no
    // function then). The relay gave the charlists, `{:error, :get_until}` and `{:eof, 1}`.
    let sshd = Sshd::start();
    let reads = "{:io.request(:standard_io, {:get_until, :unicode, ~c\"\", Until, :line, []}), \
                 :io.request(:standard_io, {:get_until, :latin1, ~c\"\", Until, :line, []}), \
                 :io.request(:standard_io, {:get_until, :unicode, ~c\"\", Until, :boom, []}), \
                 :io.scan_erl_exprs(~c\"\")}";
    let input = "héllo\nwörld\nx\n";
    let out = testkit::mix_remote(testkit::compiled_fixture("demo"))
        .eval_on(&sshd, &format!("{UNTIL_MODULE}{reads}"))
        .stdin(input)
        .run();
    sshd.assert_no_session_processes();
    out.assert_local_clean();

    let dir = tempfile::tempdir().expect("temporary directory");
    let stdin = dir.path().join("stdin");
    std::fs::write(&stdin, input).expect("write the input");
    let mut mix = std::process::Command::new("sh");
    mix.args([
        "-c",
        "exec <\"$IN\"; exec mix run --no-compile -e \"$0\"",
        &format!("{UNTIL_MODULE}IO.puts(inspect({reads}))"),
    ])
    .current_dir(testkit::compiled_fixture("demo"))
    .env("IN", &stdin)
    .env(testkit::VENDOR_VAR, testkit::vendor_dir());
    let local = testkit::run_within(mix, testkit::RUN_LIMIT);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    assert_eq!(
        local.stdout,
        "{\"héllo\", <<119, 246, 114, 108, 100>>, {:error, :boom}, :eof}\n"
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), local.stdout.as_str()),
        "{}",
        out.stderr
    );
}

#[test]
fn output_bytes_are_mix_runs_in_either_encoding_of_standard_io() {
    let sshd = Sshd::start();
    // Binary output, text past 127 and 255, a format, invalid UTF-8 and a prompt, on a unicode
    // device then on a latin1 one (`:io.setopts(encoding: :latin1)`, where IO.binwrite's bytes go
    // out as they are).
    let (remote, local) = stdout_as_under_mix_run(&sshd, "Demo.Ux.encodings", &[], b"");
    assert_eq!(
        String::from_utf8_lossy(&remote),
        String::from_utf8_lossy(&local)
    );
    assert_eq!(remote, local);
    let png_line = b"\x89PNG\xff\x00\xc3\n";
    assert!(
        local.windows(png_line.len()).any(|w| w == png_line),
        "mix run wrote no raw bytes: {local:?}"
    );

    // --json keeps its lines JSON: output that is not UTF-8 is shown with replacement characters.
    let out = demo(&sshd, &["Demo.Ux.encodings", "--json"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let texts: Vec<String> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|e| e["event"] == "output")
        .map(|e| e["text"].as_str().expect("an output's text").to_owned())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t == "\u{fffd}PNG\u{fffd}\u{0}\u{fffd}")
            && texts.iter().any(|t| t == "h\u{fffd}llo \u{fffd} \\x{20AC}"),
        "{texts:?}"
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn eval_prints_the_value_with_the_modules_it_names_pushed() {
    let sshd = Sshd::start();
    let out = eval(
        &sshd,
        "Demo.Money.add(Demo.Money.new(1, :eur), Demo.Money.new(2, :eur))",
        &["-v"],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "%Demo.Money{amount: 3, currency: :eur}\n");
    assert!(
        out.stderr.contains("mix-remote: closure: Demo.Money\n")
            && !out.stderr.contains("closure: Demo.Worker"),
        "{}",
        out.stderr
    );

    let out = eval(&sshd, "1 +", &[]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the expression raised on") && out.stderr.contains("TokenMissingError"),
        "{}",
        out.stderr
    );

    let (_dir, config) = two_hosts(&sshd);
    let out = on_both(&config, "eval", &[]).arg("node() != nil").run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["[a] true", "[b] true"]);
}

#[test]
fn a_script_runs_with_its_arguments_and_its_own_path() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let script = dir.path().join("seed.exs");
    std::fs::write(
        &script,
        "IO.puts(\"argv: #{inspect(System.argv())}\")\n\
         IO.puts(\"dir: #{__DIR__}\")\n\
         IO.puts(\"file: #{__ENV__.file}\")\n\
         alias Demo.Money\n\
         IO.inspect(Money.new(5, :usd))\n",
    )
    .expect("write the script");
    let path = script.display().to_string();
    let out = run(&sshd, &[&path, "--", "--dry-run", "2"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        format!(
            "argv: [\"--dry-run\", \"2\"]\ndir: {}\nfile: {path}\n\
             %Demo.Money{{amount: 5, currency: :usd}}\n",
            dir.path().display()
        )
    );

    let logins = sshd.log().matches("Accepted").count();
    let out = run(&sshd, &["no/such/seeds.exs"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        "mix-remote: error: cannot read script no/such/seeds.exs: No such file or directory\n"
    );
    // A script that installs dependencies of its own is refused, as `mix run` refuses it in a
    // project, before it could install Hex and fetch them on the server.
    let install = dir.path().join("install.exs");
    std::fs::write(
        &install,
        "# Mix.install is refused in a project\nMix.install([:jason])\n",
    )
    .expect("write the script");
    let out = run(&sshd, &[&install.display().to_string()]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "mix-remote: error: {}:2: Mix.install/2 cannot be used inside a Mix project, as \
             under `mix run`: a script run by mix-remote runs in the project, with the project's \
             dependencies\n",
            install.display()
        )
    );
    assert_eq!(
        sshd.log().matches("Accepted").count(),
        logins,
        "it connected"
    );
}

#[test]
fn an_unknown_host_key_is_asked_on_a_terminal_and_one_line_without_one() {
    let sshd = Sshd::start();
    sshd.forget_host_key();
    // The harness's ssh_config says BatchMode yes and StrictHostKeyChecking yes; a person's
    // usually asks.
    let asks = ["-o", "BatchMode=no", "-o", "StrictHostKeyChecking=ask"];
    let out = run(
        &sshd,
        &[&asks[..], &["--connect-timeout", "60", "Demo.Worker.ask"]].concat(),
    );
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains("Host key verification failed") && out.stderr.contains("accept-new"),
        "{}",
        out.stderr
    );

    let term = demo(
        &sshd,
        &[&asks[..], &["Demo.Worker.process", "--", "1", "\"x\""]].concat(),
    )
    .spawn_in_pty();
    term.wait_for_row("Are you sure you want to continue connecting");
    assert!(!has_spinner(&term.screen()), "{}", term.screen());
    term.send("yes\r");
    let out = term.finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("✓ connected to"), "{}", out.stdout);
    assert!(out.stdout.contains("processing x"), "{}", out.stdout);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_raise_ends_its_phase_with_a_cross_and_ctrl_c_leaves_a_clean_summary() {
    let sshd = Sshd::start();
    let out = demo(&sshd, &["Demo.Worker.fail", "--", "\"no\""])
        .spawn_in_pty()
        .finish();
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains("✗ Demo.Worker.fail raised"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("finished"), "{}", out.stdout);

    let (_dir, config) = two_hosts(&sshd);
    let term = on_both(&config, "run", &["Demo.Worker.sleep_forever"]).spawn_in_pty();
    term.wait_for_row("[a] sleeping");
    term.wait_for_row("[b] sleeping");
    term.send("\x03");
    let out = term.finish();
    assert_eq!(out.code, Some(130), "{}", out.stdout);
    assert!(!has_spinner(&out.stdout), "{}", out.stdout);
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    for host in ["a", "b"] {
        assert!(
            rows.contains(&vec![host, "interrupted", "-"]),
            "no row for {host} in:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("interrupted: remote nodes stopped"),
        "{}",
        out.stdout
    );
    sshd.assert_no_session_processes();
    out.assert_local_clean();

    // Quiet, nothing drawn: the error starts the row after the terminal's echo of ^C.
    let term = demo(&sshd, &["-q", "Demo.Worker.sleep_forever"]).spawn_in_pty();
    term.wait_for_row("sleeping");
    term.send("\x03");
    term.wait_for_row("interrupted: remote node");
    let rows = term.rows();
    let out = term.finish();
    assert_eq!(out.code, Some(130), "{}", out.stdout);
    let at = rows
        .iter()
        .position(|r| r.starts_with("mix-remote: error: interrupted: remote node"))
        .unwrap_or_else(|| panic!("no error row: {rows:#?}"));
    assert_eq!(rows[at - 2..at], ["sleeping", "^C"], "{rows:#?}");
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn the_function_sees_the_size_of_the_terminal() {
    let sshd = Sshd::start();
    let mut tool = testkit::mix_remote(testkit::compiled_fixture("demo"));
    tool.args([
        "eval",
        "{:io.columns(), :io.rows()}",
        "--host",
        &sshd.host(),
        "-F",
    ])
    .arg(sshd.ssh_config());
    let out = tool.spawn_in_pty().finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    let size = format!(
        "{{{{:ok, {}}}, {{:ok, {}}}}}",
        testkit::PTY_COLS,
        testkit::PTY_ROWS
    );
    assert!(out.stdout.ends_with(&size), "{}", out.stdout);
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}

#[test]
fn a_terminal_that_does_not_keep_up_holds_up_no_host() {
    // The terminal is full and reads nothing from (nearly) the start, as a display over a slow
    // link: the bars and the phases' lines wait for it, the work on the hosts does not.
    let sshd = Sshd::start();
    let (_dir, config) = two_hosts(&sshd);
    let marks = tempfile::tempdir().expect("temporary directory");
    let expr = format!(
        "File.write!(Path.join({:?}, Atom.to_string(node())), \"\")",
        marks.path()
    );
    let term = on_both(&config, "eval", &[&expr]).spawn_in_pty();
    term.stall();
    let waiting = std::time::Instant::now();
    while testkit::entries(marks.path()).len() < 2 {
        assert!(
            waiting.elapsed() < testkit::RUN_LIMIT,
            "the hosts waited for the terminal: {:?}",
            testkit::entries(marks.path())
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = term.finish();
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    for host in ["a", "b"] {
        assert!(
            out.stdout.contains(&format!("[{host}] :ok")),
            "{}",
            out.stdout
        );
    }
    sshd.assert_no_session_processes();
    out.assert_local_clean();
}
