//! End-to-end tests of how teams use mix-remote: mix-remote.yaml, several hosts at once, `check`,
//! `init` with its Makefile target, `--json` against its schema, `--expect ok`, completions. Real
//! sshd instances from the harness, a real remote BEAM, the fixture compiled by a real `mix`.

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testkit::{MixRemote, Output, Sshd};

/// mix-remote in `dir` with `args`.
fn tool(dir: &Path, args: &[&str]) -> MixRemote {
    let mut tool = testkit::mix_remote(dir);
    tool.args(args);
    tool
}

/// Panics unless nothing of the runs is left on the remote nor in local ssh clients of `sshd`.
fn assert_remote_clean(sshd: &Sshd) {
    sshd.assert_no_session_processes();
    sshd.assert_no_client_processes();
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn quoted(text: impl AsRef<str>) -> String {
    serde_json::to_string(text.as_ref()).expect("strings serialize")
}

/// A `hosts:` entry reaching `sshd`, with `extra` lines (indented by four spaces).
fn host_entry(name: &str, sshd: &Sshd, extra: &[&str]) -> String {
    let mut entry = format!(
        "  {name}:\n    address: {}\n    ssh_config: {}\n",
        quoted(sshd.host()),
        quoted(sshd.ssh_config().display().to_string())
    );
    for line in extra {
        entry += &format!("    {line}\n");
    }
    entry
}

/// A temporary directory holding mix-remote.yaml with `text`.
fn config_dir(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("mix-remote.yaml");
    std::fs::write(&path, text).expect("write mix-remote.yaml");
    (dir, path.display().to_string())
}

fn fixture() -> String {
    testkit::compiled_fixture("demo").display().to_string()
}

/// Parses every line of `stdout` as an event and validates it against the schema.
fn events(stdout: &str) -> Vec<Value> {
    let schema = schema();
    stdout.lines().map(|line| event(&schema, line)).collect()
}

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/events.schema.json");
    let text = std::fs::read_to_string(path).expect("read the schema");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn event(schema: &jsonschema::Validator, line: &str) -> Value {
    let value: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    if let Err(e) = schema.validate(&value) {
        panic!("event does not match the schema ({e}): {line}");
    }
    value
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

const PROCESS_RESULT: &str = "%{items: [1, :two, \"three\"], label: \"batch-7\", total: %Demo.Money{amount: 126, currency: :eur}}";

#[test]
fn two_hosts_run_in_parallel_and_one_failing_fails_the_run() {
    let (a, b) = (Sshd::start(), Sshd::start());
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}groups:\n  both: [good, broken]\n",
        host_entry("good", &a, &[]),
        host_entry("broken", &b, &["elixir: /nonexistent/bin/elixir"]),
    ));
    let project = fixture();
    let out = tool(
        dir.path(),
        &[
            "--config",
            &config,
            "run",
            "Demo.Worker.process",
            "--group",
            "both",
            "--project",
            &project,
            "--",
            "42",
            "\"batch-7\"",
        ],
    )
    .run();
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    // Every line of streamed output and the result carry their host.
    assert_eq!(
        out.stdout,
        format!("[good] processing batch-7\n[good] erlang says batch-7\n[good] {PROCESS_RESULT}\n")
    );
    assert!(
        out.stderr
            .contains("mix-remote: error: [broken] elixir not found on"),
        "{}",
        out.stderr
    );
    let table: Vec<&str> = out
        .stderr
        .lines()
        .skip_while(|l| !l.starts_with("HOST"))
        .collect();
    assert_eq!(table.len(), 3, "{}", out.stderr);
    assert!(table[0].contains("RESULT") && table[0].ends_with("TIME"));
    assert!(
        table[1].starts_with("good ") && table[1].contains("returned %{items:"),
        "{}",
        table[1]
    );
    assert!(
        table[2].starts_with("broken ") && table[2].contains("error: elixir not found"),
        "{}",
        table[2]
    );
    assert!(table[1].ends_with(" s") && table[2].ends_with(" s"));
    assert_remote_clean(&a);
    assert_remote_clean(&b);
}

#[test]
fn the_functions_stderr_carries_its_host_and_is_marked_in_events() {
    let (a, b) = (Sshd::start(), Sshd::start());
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}groups:\n  both: [one, two]\n",
        host_entry("one", &a, &[]),
        host_entry("two", &b, &[]),
    ));
    let project = fixture();
    let code = "IO.puts(\"out\"); IO.puts(:stderr, \"err\"); IO.write(:stderr, \"unended\"); :ok";
    let eval = |flags: &[&str]| {
        let args = [
            &[
                "--config",
                &config,
                "eval",
                code,
                "--group",
                "both",
                "--project",
                &project,
            ],
            flags,
        ]
        .concat();
        tool(dir.path(), &args).run()
    };
    // Several hosts: each line of stderr carries its host, as the output's do, an unended one too.
    let out = eval(&["-q"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    for host in ["one", "two"] {
        assert!(
            out.stdout.contains(&format!("[{host}] out\n")),
            "{}",
            out.stdout
        );
        for line in ["err", "unended"] {
            assert!(
                out.stderr.contains(&format!("[{host}] {line}\n")),
                "{}",
                out.stderr
            );
        }
    }
    // `--json`: `output` events, those of stderr with `"stream": "stderr"`.
    let out = eval(&["--json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let events = events(&out.stdout);
    for host in ["one", "two"] {
        let lines: Vec<(&str, Option<&str>)> = of_kind(&events, "output")
            .into_iter()
            .filter(|e| e["host"] == host)
            .map(|e| (e["text"].as_str().unwrap(), e["stream"].as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                ("out", None),
                ("err", Some("stderr")),
                ("unended", Some("stderr"))
            ],
            "{}",
            out.stdout
        );
    }
    assert_remote_clean(&a);
    assert_remote_clean(&b);
}

#[test]
fn an_unreachable_host_does_not_stall_the_others_and_every_event_matches_the_schema() {
    // "silent" accepts TCP connections and never speaks: ssh waits for its banner. It is let go
    // only once the other host's result has arrived, which proves that host did not wait for it.
    let a = Sshd::start();
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind a silent port");
    let port = silent.local_addr().expect("local address").port();
    let held = std::thread::spawn(move || silent.accept().map(|(stream, _)| stream));
    let (dir, config) = config_dir(&format!(
        "defaults:\n  connect_timeout: 120\nhosts:\n{}{}groups:\n  both: [silent, good]\n",
        host_entry("good", &a, &[]),
        host_entry(
            "silent",
            &a,
            &[&format!("ssh_options: [Port={port}, ConnectTimeout=120]")]
        ),
    ));
    let project = fixture();
    let mut child = tool(
        dir.path(),
        &[
            "--config",
            &config,
            "run",
            "Demo.Worker.process",
            "--group",
            "both",
            "--project",
            &project,
            "--json",
            "--",
            "42",
            "\"batch-7\"",
        ],
    )
    .spawn();
    let schema = schema();
    let mut seen = Vec::new();
    let mut held = Some(held);
    while let Some(line) = child.stdout_line() {
        let event = event(&schema, &line);
        if event["event"] == "result" && event["host"] == "good" {
            let stream = held
                .take()
                .expect("one result")
                .join()
                .expect("accept thread");
            drop(stream.expect("ssh connected to the silent port"));
        }
        seen.push(event);
    }
    let out = child.finish();
    assert!(
        held.is_none(),
        "no result from the good host: {seen:?}\n{}",
        out.stderr
    );
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);

    let result = of_kind(&seen, "result");
    assert_eq!(result.len(), 1);
    assert_eq!(
        (&result[0]["status"], &result[0]["value"], &result[0]["ok"]),
        (
            &Value::from("returned"),
            &Value::from(PROCESS_RESULT),
            &Value::from(true)
        )
    );
    let output: Vec<&Value> = of_kind(&seen, "output")
        .into_iter()
        .map(|e| &e["text"])
        .collect();
    assert_eq!(output, ["processing batch-7", "erlang says batch-7"]);
    // The function's output comes within its call's phase, which starts once the push is over
    // (`stop` ends with the run).
    let steps: Vec<String> = seen
        .iter()
        .filter(|e| e["host"] == "good")
        .filter_map(|e| match e["event"].as_str()? {
            kind @ ("phase_started" | "phase_finished") => {
                Some(format!("{kind} {}", e["phase"].as_str()?))
            }
            kind @ ("output" | "result") => Some(kind.to_owned()),
            _ => None,
        })
        .skip_while(|step| step != "phase_finished push")
        .collect();
    assert_eq!(
        steps,
        [
            "phase_finished push",
            "phase_started call",
            "output",
            "output",
            "phase_finished call",
            "phase_started stop",
            "result"
        ],
        "{seen:?}"
    );
    let pushed: Vec<&Value> = of_kind(&seen, "module_pushed")
        .into_iter()
        .map(|e| &e["module"])
        .collect();
    assert!(pushed.contains(&&Value::from("Demo.Worker")), "{pushed:?}");
    // `plan` says what the run sent: the same modules, each of the same size (as sent, without
    // debug info and docs).
    let sizes = |events: &[Value], kind: &str| -> Vec<(String, u64)> {
        let mut sizes: Vec<(String, u64)> = of_kind(events, kind)
            .into_iter()
            .map(|e| {
                (
                    e["module"].as_str().unwrap().to_owned(),
                    e["bytes"].as_u64().unwrap(),
                )
            })
            .collect();
        sizes.sort();
        sizes
    };
    let plan = tool(
        dir.path(),
        &[
            "plan",
            "Demo.Worker.process",
            "--project",
            &project,
            "--json",
        ],
    )
    .run();
    assert_eq!(plan.code, Some(0), "{}", plan.stderr);
    let planned: Vec<Value> = plan.stdout.lines().map(|l| event(&schema, l)).collect();
    let good: Vec<Value> = seen
        .iter()
        .filter(|e| e["host"] == "good")
        .cloned()
        .collect();
    assert_eq!(sizes(&planned, "module"), sizes(&good, "module_pushed"));
    let errors = of_kind(&seen, "error");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["host"], "silent");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ssh to"),
        "{errors:?}"
    );
    // The work done once for every host comes first: compiling, then reading the build.
    let once: Vec<(&Value, &Value)> = seen
        .iter()
        .filter(|e| e["event"] == "phase_finished")
        .map(|e| (&e["phase"], &e["host"]))
        .take(2)
        .collect();
    assert_eq!(
        once,
        [
            (&Value::from("compile"), &Value::Null),
            (&Value::from("scan"), &Value::Null)
        ]
    );
    assert_eq!(
        seen.last(),
        Some(&serde_json::json!({"event": "summary", "hosts": 2, "failed": 1, "exit_code": 3}))
    );
    assert_remote_clean(&a);
}

#[test]
fn fail_fast_stops_the_other_hosts() {
    let (a, b) = (Sshd::start(), Sshd::start());
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}groups:\n  both: [sleeper, broken]\n",
        host_entry("sleeper", &a, &[]),
        host_entry("broken", &b, &["elixir: /nonexistent/bin/elixir"]),
    ));
    let project = fixture();
    let out = tool(
        dir.path(),
        &[
            "--config",
            &config,
            "run",
            "Demo.Worker.sleep_forever",
            "--group",
            "both",
            "--project",
            &project,
            "--fail-fast",
        ],
    )
    .run();
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    let sleeper = out.stderr.lines().find(|l| l.starts_with("sleeper "));
    assert!(
        sleeper.is_some_and(|l| l.contains("cancelled (--fail-fast)")),
        "{}",
        out.stderr
    );
    assert_remote_clean(&a);
    assert_remote_clean(&b);
}

/// `elixir` of this machine, which is also the test servers': (OTP release, Elixir version).
fn local_versions() -> (String, String) {
    let out = Command::new("elixir")
        .args([
            "-e",
            "IO.write([System.otp_release(), \" \", System.version()])",
        ])
        .output()
        .expect("run elixir");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let (otp, elixir) = text.split_once(' ').expect("two versions");
    (otp.to_owned(), elixir.to_owned())
}

#[test]
fn check_tells_a_good_host_from_one_without_elixir_forwarding_or_a_known_host_key() {
    let good = Sshd::start();
    let closed = Sshd::builder().tcp_forwarding(false).start();
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}{}{}groups:\n  all: [good, no-elixir, no-forwarding, unknown-key]\n",
        host_entry("good", &good, &[]),
        host_entry("no-elixir", &good, &["elixir: /nonexistent/bin/elixir"]),
        host_entry("no-forwarding", &closed, &[]),
        host_entry(
            "unknown-key",
            &good,
            &["ssh_options: [UserKnownHostsFile=/dev/null]"]
        ),
    ));
    let (otp, elixir) = local_versions();
    let project = fixture();

    let out = tool(
        dir.path(),
        &[
            "--config",
            &config,
            "check",
            "--group",
            "all",
            "--project",
            &project,
        ],
    )
    .run();
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    let row = |host: &str| -> Vec<String> {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{host} ")))
            .unwrap_or_else(|| panic!("no row for {host}: {}", out.stdout));
        line.split_whitespace().map(str::to_owned).collect()
    };
    let good_row = row("good");
    assert_eq!(&good_row[1..5], ["ok", "ok", "ok", "ok"], "{}", out.stdout);
    assert!(good_row[5].starts_with(&otp), "{good_row:?}");
    // The build was compiled by this machine's OTP, which the good host runs: it loads; a run
    // has a directory to write in, where no run left one behind.
    assert_eq!(
        (
            good_row[6].as_str(),
            good_row[7].as_str(),
            good_row[8].as_str(),
            good_row[9].as_str(),
            good_row[10].as_str()
        ),
        (elixir.as_str(), "ok", "ok", "0", "ready")
    );
    assert_eq!(&row("no-elixir")[1..5], ["ok", "ok", "ok", "FAILED"]);
    assert_eq!(row("no-elixir")[7], "-", "no versions, nothing to compare");
    assert_eq!(&row("no-forwarding")[1..5], ["ok", "ok", "FAILED", "ok"]);
    assert_eq!(
        &row("unknown-key")[1..5],
        ["FAILED", "FAILED", "-", "-"],
        "no SSH ok when the host key failed: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("no-elixir: elixir not found on"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("no-forwarding: ")
            && out
                .stdout
                .contains("refused the run's reverse port forward"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("unknown-key: the host key of"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("1 of 4 hosts ready\n"),
        "{}",
        out.stdout
    );

    let out = tool(
        dir.path(),
        &["--config", &config, "check", "--group", "all", "--json"],
    )
    .run();
    assert_eq!(out.code, Some(3), "stderr: {}", out.stderr);
    let seen = events(&out.stdout);
    let checks = of_kind(&seen, "check");
    let probes = |host: &str| -> (Value, Value, Value, Value, Value) {
        let c = checks
            .iter()
            .find(|c| c["host"] == host)
            .expect("a check event per host");
        (
            c["ssh"].clone(),
            c["host_key"].clone(),
            c["forwarding"].clone(),
            c["elixir"].clone(),
            c["ready"].clone(),
        )
    };
    let v = |s: &str| Value::from(s);
    assert_eq!(
        probes("good"),
        (v("ok"), v("ok"), v("ok"), v("ok"), Value::from(true))
    );
    assert_eq!(
        probes("no-elixir"),
        (v("ok"), v("ok"), v("ok"), v("failed"), Value::from(false))
    );
    assert_eq!(
        probes("no-forwarding"),
        (v("ok"), v("ok"), v("failed"), v("ok"), Value::from(false))
    );
    assert_eq!(
        probes("unknown-key"),
        (
            v("failed"),
            v("failed"),
            v("skipped"),
            v("skipped"),
            Value::from(false)
        )
    );
    let good_check = checks.iter().find(|c| c["host"] == "good").expect("good");
    assert_eq!(
        (&good_check["otp_release"], &good_check["elixir_version"]),
        (&v(&otp), &v(&elixir))
    );
    // No --project here, and no build beside the config file: nothing to compare.
    assert_eq!(good_check["compat"], v("skipped"));
    assert_eq!(
        seen.last(),
        Some(&serde_json::json!({"event": "summary", "hosts": 4, "failed": 3, "exit_code": 3}))
    );
    assert_remote_clean(&good);
    assert_remote_clean(&closed);
}

#[test]
fn check_compares_each_host_with_the_build_of_its_own_mix_env() {
    let sshd = Sshd::start();
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}",
        host_entry("dev-host", &sshd, &[]),
        host_entry("other-host", &sshd, &["mix_env: unbuilt"]),
    ));
    let project = fixture();
    let out = tool(
        dir.path(),
        &[
            "--config",
            &config,
            "check",
            "-v",
            "--json",
            "--host",
            "dev-host,other-host",
            "--project",
            &project,
        ],
    )
    .run();
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let seen = events(&out.stdout);
    let compat = |host: &str| {
        of_kind(&seen, "check")
            .into_iter()
            .find(|c| c["host"] == host)
            .map(|c| c["compat"].clone())
    };
    // The fixture is built for dev only: the other host's build, for `run`, is not there.
    assert_eq!(compat("dev-host"), Some(Value::from("ok")));
    assert_eq!(compat("other-host"), Some(Value::from("skipped")));
    assert!(
        out.stderr
            .contains("for MIX_ENV=unbuilt: the compatibility column is skipped"),
        "{}",
        out.stderr
    );
    assert_remote_clean(&sshd);
}

#[test]
fn eval_is_not_held_up_by_hosts_whose_entries_differ() {
    let sshd = Sshd::start();
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}",
        host_entry("a", &sshd, &["entry: Demo.Worker.ask"]),
        host_entry("b", &sshd, &["entry: Demo.Worker.echo"]),
    ));
    let project = fixture();
    let args = ["--host", "a,b", "--project", &project, "--no-compile"];
    let out = tool(
        dir.path(),
        &[&["--config", &config, "eval", "40 + 2"][..], &args].concat(),
    )
    .run();
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stdout.matches("42").count(), 2, "{}", out.stdout);
    // `run` without an entry of its own must be told which.
    let out = tool(
        dir.path(),
        &[&["--config", &config, "run"][..], &args].concat(),
    )
    .run();
    assert_eq!(out.code, Some(2), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("name the entry on the command line"),
        "{}",
        out.stderr
    );
    assert_remote_clean(&sshd);
}

#[test]
fn flags_beat_environment_beat_config_beat_defaults() {
    let sshd = Sshd::start();
    let (dir, config) = config_dir(&format!(
        "defaults:\n  elixir: /nonexistent/config/elixir\nhosts:\n{}",
        host_entry("a", &sshd, &[])
    ));
    let check = |env: Option<&str>, flag: Option<&str>| -> Output {
        let mut args = vec!["--config", config.as_str(), "check", "--host", "a"];
        args.extend(flag.map(|f| ["--elixir", f]).into_iter().flatten());
        let mut cmd = tool(dir.path(), &args);
        if let Some(env) = env {
            cmd.env("MIX_REMOTE_ELIXIR", env);
        }
        cmd.run()
    };
    let out = check(None, None);
    assert_eq!(out.code, Some(3));
    assert!(
        out.stdout.contains("`/nonexistent/config/elixir`"),
        "config over default: {}",
        out.stdout
    );
    let out = check(Some("elixir"), None);
    assert_eq!(
        out.code,
        Some(0),
        "environment over config: {}{}",
        out.stdout,
        out.stderr
    );
    let out = check(Some("elixir"), Some("/nonexistent/flag/elixir"));
    assert_eq!(out.code, Some(3));
    assert!(
        out.stdout.contains("`/nonexistent/flag/elixir`"),
        "flag over environment: {}",
        out.stdout
    );
    assert_remote_clean(&sshd);
}

#[test]
fn push_and_call_limits_come_from_the_config_under_the_environment() {
    let sshd = Sshd::start();
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}",
        host_entry("short-call", &sshd, &["call_timeout: 1"]),
        host_entry("short-push", &sshd, &["push_timeout: 1"]),
    ));
    let project = fixture();
    let attempt = |host: &str, entry: &str, env: &[(&str, &str)]| -> Output {
        let args = [
            "--config",
            &config,
            "run",
            entry,
            "--host",
            host,
            "--project",
            &project,
        ];
        let mut cmd = tool(dir.path(), &args);
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd.run()
    };
    let out = attempt("short-call", "Demo.Worker.sleep_forever", &[]);
    assert_eq!(out.code, Some(4), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "timed out calling Demo.Worker.sleep_forever on {} after 1 s (raise it with --call-timeout)",
            "short-call"
        )),
        "{}",
        out.stderr
    );
    // Demo.SlowLoad's on_load takes 3 s.
    let out = attempt("short-push", "Demo.SlowLoad.hello", &[]);
    assert_eq!(out.code, Some(4), "stderr: {}", out.stderr);
    assert!(
        out.stderr
            .contains("after 1 s (raise it with --push-timeout)"),
        "{}",
        out.stderr
    );
    let out = attempt(
        "short-push",
        "Demo.SlowLoad.hello",
        &[("MIX_REMOTE_PUSH_TIMEOUT", "60")],
    );
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), ":loaded\n"),
        "environment over config: {}",
        out.stderr
    );
    assert_remote_clean(&sshd);
}

#[test]
fn a_host_of_the_file_is_named_as_given_in_every_error_of_its_run() {
    // A raise names the host as the user gave it (its key in mix-remote.yaml), and so do a node
    // that halted, a call that timed out, a node lost: not the address ssh was given.
    let sshd = Sshd::start();
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}",
        host_entry("db-1", &sshd, &["call_timeout: 1"])
    ));
    let project = fixture();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "Demo.Worker.fail", "--", "\"no\""],
            "Demo.Worker.fail raised on db-1:",
        ),
        (
            &["eval", "System.halt(3)"],
            "the remote node on db-1 halted with status 3 while evaluating",
        ),
        (
            &["run", "Demo.Worker.crash_node"],
            "the remote node on db-1 halted with status 1 while calling Demo.Worker.crash_node",
        ),
        (
            &["run", "Demo.Worker.sleep_forever"],
            "timed out calling Demo.Worker.sleep_forever on db-1 after 1 s",
        ),
        (
            &["eval", "Process.sleep(:infinity)"],
            "timed out evaluating the expression on db-1 after 1 s",
        ),
    ];
    for (args, expected) in cases {
        let (command, rest) = args.split_first().expect("a command");
        let given = [
            &[
                "--config",
                &config,
                command,
                "--host",
                "db-1",
                "--project",
                &project,
            ][..],
            rest,
        ]
        .concat();
        let out = tool(dir.path(), &given).run();
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("mix-remote: error:"))
            .collect();
        assert!(
            errors.len() == 1 && errors[0].contains(expected),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !errors[0].contains(&sshd.host()),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_remote_clean(&sshd);
}

#[test]
fn config_errors_name_the_file_line_and_key_and_nothing_connects() {
    let sshd = Sshd::start();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "hosts:\n  a:\n    elixr: /x\n",
            &["check", "--host", "a"],
            "mix-remote.yaml:3:5: `hosts.a.elixr`: unknown field `elixr` (did you mean \
             `elixir`?), expected one of `address`, `mix_env`, `entry`, `include`, `start`, `elixir`,",
        ),
        (
            "defaults:\n  boot_timeout: soon\n",
            &["run", "Demo.Worker.process", "--host", "a"],
            "mix-remote.yaml:2:17: `defaults.boot_timeout`: ",
        ),
        (
            "hosts:\n  a:\n    call_timeout: 0\n",
            &["run", "Demo.Worker.process", "--host", "a"],
            "mix-remote.yaml:3:19: `hosts.a.call_timeout`: a limit of 0 s could never be met",
        ),
        (
            "groups:\n  web: [a]\n",
            &["check", "--group", "api"],
            "--group api: not defined in",
        ),
    ];
    for (text, args, expected) in cases {
        let (dir, _) = config_dir(text);
        let out = tool(dir.path(), args)
            .env("MIX_REMOTE_SSH_CONFIG", sshd.ssh_config())
            .run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    assert!(
        !sshd.log().contains("Accepted"),
        "a connection was made: {}",
        sshd.log()
    );
}

#[test]
fn expect_ok_fails_a_smoke_test_that_returns_an_error_and_passes_with_remote_env() {
    let sshd = Sshd::start();
    let project = fixture();
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}{}",
        host_entry("bare", &sshd, &[]),
        host_entry("ready", &sshd, &["remote_env: {DEMO_REGION: eu-west-1}"]),
    ));
    let smoke = |host: &str| {
        tool(
            dir.path(),
            &[
                "--config",
                &config,
                "run",
                "Demo.Smoke.check",
                "--host",
                host,
                "--project",
                &project,
                "--expect",
                "ok",
                "--json",
            ],
        )
        .run()
    };
    let out = smoke("bare");
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    let seen = events(&out.stdout);
    let result = of_kind(&seen, "result");
    assert_eq!(
        result[0]["value"],
        "{:error, {:missing_env, \"DEMO_REGION\"}}"
    );
    assert_eq!(result[0]["ok"], false);
    assert!(
        out.stderr.contains("Demo.Smoke.check returned {:error, {:missing_env, \"DEMO_REGION\"}} on bare, expected :ok"),
        "{}",
        out.stderr
    );
    let out = smoke("ready");
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let seen = events(&out.stdout);
    assert_eq!(of_kind(&seen, "result")[0]["value"], ":ok");
    assert_remote_clean(&sshd);
}

#[test]
fn include_from_the_config_or_a_flag_pushes_more_modules() {
    let sshd = Sshd::start();
    let (dir, config) = config_dir(&format!(
        "defaults:\n  include: [Demo.Unused]\nhosts:\n{}",
        host_entry("a", &sshd, &[])
    ));
    let project = fixture();
    let loaded = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            &config,
            "run",
            "Demo.Probe.loaded",
            "--host",
            "a",
            "--project",
            &project,
        ];
        args.extend(extra);
        args.extend(["--", "[Demo.Probe, Demo.Worker, Demo.Unused, :demo_erl]"]);
        tool(dir.path(), &args).run()
    };
    let out = loaded(&[]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "[Demo.Probe, Demo.Unused]\n"),
        "{}",
        out.stderr
    );
    let out = loaded(&["--include", ":demo_erl"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "[Demo.Probe, :demo_erl]\n"),
        "the flag replaces the config's list: {}",
        out.stderr
    );
    let out = loaded(&["--include", "Demo.Nope"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("include Demo.Nope: no such module in this project's _build"),
        "{}",
        out.stderr
    );
    assert_remote_clean(&sshd);
}

#[test]
fn plan_and_graph_read_the_config_and_plan_events_match_the_schema() {
    let (dir, config) = config_dir("defaults:\n  mix_env: dev\n  include: [Demo.Unused]\n");
    let project = fixture();
    let plan = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            &config,
            "plan",
            "Demo.Probe.loaded",
            "--project",
            &project,
            "--json",
        ];
        args.extend(extra);
        tool(dir.path(), &args).run()
    };
    let modules = |seen: &[Value]| -> Vec<(String, String)> {
        of_kind(seen, "module")
            .iter()
            .map(|e| {
                (
                    e["module"].as_str().unwrap().into(),
                    e["reason"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let out = plan(&[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let seen = events(&out.stdout);
    let pair = |m: &str, r: &str| (m.to_owned(), r.to_owned());
    assert_eq!(
        modules(&seen),
        [pair("Demo.Probe", "entry"), pair("Demo.Unused", "include")]
    );
    let last = seen.last().expect("events");
    assert_eq!(
        (&last["event"], &last["modules"], &last["entry"]),
        (&"plan".into(), &2.into(), &"Demo.Probe.loaded".into())
    );
    // An entry given with its arity is named with it.
    let out = tool(
        dir.path(),
        &[
            "--config",
            &config,
            "plan",
            "Demo.Probe.loaded/1",
            "--project",
            &project,
            "--json",
        ],
    )
    .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let last = events(&out.stdout).pop().expect("events");
    assert_eq!(last["entry"], "Demo.Probe.loaded/1");

    let out = plan(&["--include", ":demo_erl"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        modules(&events(&out.stdout)),
        [pair("Demo.Probe", "entry"), pair(":demo_erl", "include")],
        "the flag replaces the config's list"
    );

    // The config's mix_env is read: a build that does not exist fails plan and graph alike
    // (uncompiled: the fixture is not to gain a build of that environment).
    let (bad_dir, bad) = config_dir("defaults:\n  mix_env: nosuchenv\n  compile: false\n");
    let out = tool(
        bad_dir.path(),
        &[
            "--config",
            &bad,
            "plan",
            "Demo.Probe.loaded",
            "--project",
            &project,
            "--json",
        ],
    )
    .run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("no compiled build"), "{}", out.stderr);
    let seen = events(&out.stdout);
    let kinds: Vec<&Value> = seen.iter().map(|e| &e["event"]).collect();
    assert_eq!(kinds, ["error", "summary"]);
    let graph = |extra: &[&str]| {
        let mut args = vec![
            "--config",
            &bad,
            "graph",
            "--project",
            &project,
            "--format",
            "json",
        ];
        args.extend(extra);
        tool(bad_dir.path(), &args).run()
    };
    assert_eq!(graph(&[]).code, Some(2));
    let out = graph(&["--env", "dev"]);
    assert_eq!(
        out.code,
        Some(0),
        "the flag beats the config: {}",
        out.stderr
    );
    let graph: Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    assert!(
        graph["nodes"].as_array().is_some_and(|n| !n.is_empty()),
        "{graph}"
    );
}

/// A copy of the demo fixture's sources (not its build) in a temporary directory.
fn fresh_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let copied = Command::new("cp")
        .args(["-r"])
        .arg(source.join("mix.exs"))
        .arg(source.join("lib"))
        .arg(source.join("src"))
        .arg(dir.path())
        .status()
        .expect("run cp");
    assert!(copied.success());
    dir
}

#[test]
fn init_writes_a_config_and_a_makefile_target_that_runs_the_smoke_test() {
    let sshd = Sshd::start();
    let project = fresh_project();
    let host = sshd.host();
    let init = |extra: &[&str]| {
        let mut args = vec![
            "init",
            "--host",
            host.as_str(),
            "--entry",
            "Demo.Smoke.check",
            "--makefile",
        ];
        args.extend(extra);
        tool(project.path(), &args).run()
    };
    let out = init(&[]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let path = project.path().join("mix-remote.yaml");
    let config = mix_remote::config::Config::load(&path).expect("init writes a valid config");
    let servers =
        mix_remote::config::select(Some(&config), &[], &["servers".into()]).expect("servers");
    let settings = mix_remote::config::resolve(Some(&config), &servers[0], &Default::default());
    assert_eq!(settings.address, host);
    let build = mix_remote::config::build(Some(&config), None, &Default::default(), &servers)
        .expect("one build");
    assert_eq!(build.entry.as_deref(), Some("Demo.Smoke.check"));

    let written = std::fs::read_to_string(&path).expect("read the config");
    let out = init(&[]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("already exists: pass --force"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        written,
        "overwritten without --force"
    );

    // make runs the binary as $(MIX_REMOTE): sh hands it the launcher's binary, its $0.
    let make = || {
        testkit::mix_remote(project.path())
            .wrapper(&[
                "sh",
                "-c",
                "exec make smoke SMOKE_ENV=dev MIX_REMOTE=\"$0\"",
            ])
            .env("MIX_REMOTE_SSH_CONFIG", sshd.ssh_config())
            .run()
    };
    let out = make();
    assert_ne!(
        out.code,
        Some(0),
        "the smoke test passed without DEMO_REGION"
    );
    assert!(
        out.stdout
            .contains("{:error, {:missing_env, \"DEMO_REGION\"}}"),
        "{}{}",
        out.stdout,
        out.stderr
    );

    // What a team does next: give the servers what the smoke test asks for.
    std::fs::write(
        &path,
        written.replace(
            "  boot_timeout: 60\n",
            "  boot_timeout: 60\n  remote_env: {DEMO_REGION: eu}\n",
        ),
    )
    .expect("edit the config");
    let out = make();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.lines().any(|l| l == ":ok"), "{}", out.stdout);

    let out = init(&["--force"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let makefile = std::fs::read_to_string(project.path().join("Makefile")).expect("Makefile");
    assert_eq!(
        makefile.matches("# >>> mix-remote").count(),
        1,
        "{makefile}"
    );
    assert_remote_clean(&sshd);
}

#[test]
fn init_writes_nothing_unless_it_can_write_everything() {
    let project = testkit::empty_mix_project();
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(project.path())
            .expect("list the project")
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .into_string()
                    .expect("UTF-8")
            })
            .collect();
        names.sort();
        names
    };
    // A Makefile that can be read but not written, even by root (who writes through any mode).
    let makefile = project.path().join("Makefile");
    std::os::unix::fs::symlink("/proc/version", &makefile).expect("link the Makefile");
    let out = tool(project.path(), &["init", "--makefile"]).run();
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .starts_with("mix-remote: error: cannot write ./Makefile: ")
            && out.stderr.lines().count() == 1,
        "{}",
        out.stderr
    );
    assert_eq!(
        files(),
        ["Makefile", "mix.exs"],
        "written although the Makefile cannot be"
    );

    // Refused, with or without --force, and nothing written: a start marker without its end
    // marker (replacing up to a later end would take `mine`), and a `smoke` target of the
    // Makefile's own (the appended one would override it).
    std::fs::remove_file(&makefile).expect("remove the link");
    let unterminated = "all:\n\techo all\n# >>> mix-remote\nmine:\n\techo mine\n";
    let own = "all:\n\techo all\n\nsmoke: all\n\t./smoke.sh\n";
    for (makefile_text, said) in [
        (
            unterminated,
            "mix-remote: error: ./Makefile:3: `# >>> mix-remote` has no `# <<< mix-remote` line \
             after it: end the mix-remote block with that line (or remove the block), then run \
             init again\n",
        ),
        (
            own,
            "mix-remote: error: ./Makefile:4: the Makefile has a `smoke` target of its own, which \
             mix-remote's would override: rename it, or run init without --makefile and add the \
             target it prints under another name\n",
        ),
    ] {
        std::fs::write(&makefile, makefile_text).expect("write the Makefile");
        for extra in [&[][..], &["--force"]] {
            let out = tool(project.path(), &["init", "--makefile"])
                .args(extra)
                .run();
            assert_eq!(out.code, Some(2), "{extra:?}: {}", out.stderr);
            assert_eq!(out.stderr, said, "{extra:?}");
            assert_eq!(files(), ["Makefile", "mix.exs"], "{extra:?}");
            assert_eq!(
                std::fs::read_to_string(&makefile).expect("read the Makefile"),
                makefile_text
            );
        }
    }

    // Ended, the block is replaced in place; the Makefile keeps its mode and nothing is left.
    let ended = unterminated.replace("mine:\n", "# <<< mix-remote\nmine:\n");
    std::fs::write(&makefile, &ended).expect("write the Makefile");
    let mode = std::fs::Permissions::from_mode(0o640);
    std::fs::set_permissions(&makefile, mode).expect("chmod the Makefile");
    let out = tool(project.path(), &["init", "--makefile", "--force"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(files(), ["Makefile", "mix-remote.yaml", "mix.exs"]);
    let written = std::fs::read_to_string(&makefile).expect("read the Makefile");
    assert!(
        written.starts_with("all:\n\techo all\n# >>> mix-remote (written by")
            && written.ends_with("# <<< mix-remote\nmine:\n\techo mine\n"),
        "{written}"
    );
    let meta = std::fs::metadata(&makefile).expect("the Makefile's metadata");
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
}

#[test]
fn init_appends_to_the_makefile_make_reads_and_checks_the_entry() {
    let project = testkit::empty_mix_project();
    let names = || {
        let mut names: Vec<String> = testkit::entries(project.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // GNU make reads the first of GNUmakefile, makefile and Makefile it finds.
    let lower = project.path().join("makefile");
    std::fs::write(&lower, "all:\n\techo all\n").expect("write the makefile");
    let out = tool(project.path(), &["init", "--makefile"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("target to ./makefile"),
        "{}",
        out.stderr
    );
    assert_eq!(names(), ["makefile", "mix-remote.yaml", "mix.exs"]);
    let written = std::fs::read_to_string(&lower).expect("read the makefile");
    assert!(
        written.starts_with("all:\n") && written.contains("\nsmoke:\n"),
        "{written}"
    );
    let gnu = project.path().join("GNUmakefile");
    std::fs::write(&gnu, "include makefile\n").expect("write the GNUmakefile");
    let out = tool(project.path(), &["init", "--makefile", "--force"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("target to ./GNUmakefile"),
        "{}",
        out.stderr
    );
    let written = std::fs::read_to_string(&gnu).expect("read the GNUmakefile");
    assert!(written.contains("\nsmoke:\n"), "{written}");

    // An entry `run` could not take is refused before anything is written.
    std::fs::remove_file(project.path().join("mix-remote.yaml")).expect("remove the config");
    for (entry, why) in [
        ("foo bar", "is not of the form"),
        (
            "MyApp.Smoke",
            "is a module, and a function of it is missing",
        ),
        ("MyApp.Smoke.check/300", "more than 255 arguments"),
    ] {
        let out = tool(project.path(), &["init", "--entry", entry]).run();
        assert_eq!(out.code, Some(2), "{entry}: {}", out.stderr);
        assert!(
            out.stderr.contains("'--entry <ENTRY>'") && out.stderr.contains(why),
            "{entry}: {}",
            out.stderr
        );
        assert!(!project.path().join("mix-remote.yaml").exists(), "{entry}");
    }
    let out = tool(project.path(), &["init", "--entry", ":smoke.run/0"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn init_without_makefile_prints_the_target() {
    let project = testkit::empty_mix_project();
    let out = tool(project.path(), &["init"]).run();
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("\nsmoke:\n\t"), "{}", out.stdout);
    assert!(!project.path().join("Makefile").exists());
    assert!(mix_remote::config::Config::load(&project.path().join("mix-remote.yaml")).is_ok());
}

#[test]
fn init_quiet_before_or_after_it_says_nothing_of_what_it_wrote() {
    for (args, makefile) in [
        (&["-q", "init"][..], false),
        (&["init", "--quiet"], false),
        (&["-q", "init", "--makefile"], true),
        (&["init", "--makefile", "-q"], true),
    ] {
        let project = testkit::empty_mix_project();
        let out = tool(project.path(), args).run();
        assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{args:?}");
        assert!(project.path().join("mix-remote.yaml").is_file(), "{args:?}");
        assert_eq!(
            project.path().join("Makefile").is_file(),
            makefile,
            "{args:?}"
        );
        // The target is output: printed unless appended.
        assert_eq!(out.stdout.contains("\nsmoke:\n\t"), !makefile, "{args:?}");
    }
}

#[test]
fn init_writes_into_the_project_named_splits_hosts_and_counts_a_dangling_link_as_a_file() {
    let here = tempfile::tempdir().expect("temporary directory");
    let project = testkit::empty_mix_project();
    let dir = project.path().display().to_string();
    let init = |args: &[&str]| {
        tool(
            here.path(),
            &[&["init", "--project", dir.as_str()], args].concat(),
        )
        .run()
    };
    let out = init(&[
        "--host",
        "deploy@a,deploy@b",
        "--makefile",
        "--host",
        "deploy@a",
    ]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("added the `smoke` target to {dir}/Makefile")),
        "{}",
        out.stderr
    );
    assert!(project.path().join("Makefile").is_file());
    assert!(testkit::entries(here.path()).is_empty());
    let path = project.path().join("mix-remote.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("servers: [\"deploy@a\", \"deploy@b\"]\n"),
        "each host once: {text}"
    );
    let config = mix_remote::config::Config::load(&path).expect("init writes a valid config");
    let servers =
        mix_remote::config::select(Some(&config), &[], &["servers".into()]).expect("servers");
    let names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["deploy@a", "deploy@b"]);
    let help = tool(here.path(), &["init", "--help"]).run();
    assert!(
        help.stdout.contains("the project's makefile") && !help.stdout.contains("./Makefile"),
        "{}",
        help.stdout
    );

    let out = init(&["--host", "a,", "--force"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("'--host <HOST>'"), "{}", out.stderr);

    // A link to nothing is a file there all the same: replaced only with --force.
    std::fs::remove_file(&path).expect("remove the config");
    std::os::unix::fs::symlink("nowhere.yaml", &path).expect("link the config");
    let out = init(&[]);
    assert_eq!(
        out.stderr,
        format!(
            "mix-remote: error: {dir}/mix-remote.yaml already exists: pass --force to overwrite it\n"
        )
    );
    assert!(path.is_symlink(), "the link was replaced");
    let out = init(&["--force"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(!path.is_symlink() && path.is_file());

    // A project directory that is not there is named as such.
    let missing = project.path().join("missing");
    let file = project.path().join("Makefile");
    for (project, why) in [(&missing, "does not exist"), (&file, "is not a directory")] {
        let project = project.display().to_string();
        let out = tool(here.path(), &["init", "--project", &project]).run();
        assert_eq!(
            (out.code, out.stderr),
            (
                Some(2),
                format!("mix-remote: error: --project {project}: the project directory {why}\n")
            )
        );
    }
    assert!(testkit::entries(here.path()).is_empty());
}

#[test]
fn init_refuses_a_directory_without_mix_exs() {
    // A mix-remote.yaml in `home` would make it the project of every directory below it.
    let home = tempfile::tempdir().expect("temporary directory");
    let inner = home.path().join("x");
    std::fs::create_dir(&inner).expect("make a directory");
    let said = |dir: &Path| {
        format!(
            "mix-remote: error: {} has no mix.exs: init writes mix-remote.yaml beside a Mix \
             project's mix.exs (run it in the project, or pass --project DIR)\n",
            dir.display()
        )
    };
    let here = home.path().canonicalize().expect("canonical path");
    for (args, dir) in [
        (&["init", "--host", "db-1"][..], here.clone()),
        (
            &["init", "--makefile", "--project", "x"],
            PathBuf::from("x"),
        ),
    ] {
        let out = tool(home.path(), args).run();
        assert_eq!((out.code, out.stderr), (Some(2), said(&dir)), "{args:?}");
        assert_eq!(testkit::entries(home.path()), [inner.as_path()], "{args:?}");
    }
}

#[test]
fn every_event_kind_matches_the_schema() {
    use mix_remote::events::{
        CheckRow, Event, OutputStream, PlannedProtocols, Probe, ShippedApp, Stage, Status,
    };
    let schema = schema();
    let host = || "web-1".to_owned();
    let row = CheckRow {
        host: host(),
        ssh: Probe::Ok,
        host_key: Probe::Ok,
        forwarding: Probe::Failed,
        elixir: Probe::Skipped,
        otp_release: Some("25".into()),
        otp_version: None,
        elixir_version: Some("1.14.0".into()),
        compat: Probe::Skipped,
        temp_dir: Probe::Ok,
        stale_runs: Some(0),
        ready: false,
        problem: Some("refused".into()),
    };
    let all = [
        Event::PhaseStarted {
            host: None,
            phase: Stage::Scan,
            message: "m".into(),
        },
        Event::PhaseFinished {
            host: Some(host()),
            phase: Stage::Forward,
            message: "m".into(),
            ms: 3,
        },
        Event::ModulePushed {
            host: host(),
            module: "Demo.Worker".into(),
            bytes: 10,
        },
        Event::Output {
            host: host(),
            text: "line".into(),
            stream: None,
        },
        Event::Output {
            host: host(),
            text: "line".into(),
            stream: Some(OutputStream::Stderr),
        },
        Event::Log {
            host: host(),
            text: "line".into(),
        },
        Event::Result {
            host: host(),
            status: Status::Raised,
            value: "** (x)".into(),
            ok: false,
        },
        Event::Result {
            host: host(),
            status: Status::Threw,
            value: "** (throw) x".into(),
            ok: false,
        },
        Event::Result {
            host: host(),
            status: Status::Exited,
            value: "** (exit) x".into(),
            ok: false,
        },
        Event::Error {
            host: None,
            message: "bad".into(),
        },
        Event::Check(row),
        Event::Module {
            order: 1,
            module: "Demo.Worker".into(),
            app: "demo".into(),
            bytes: 10,
            path: "/p/_build/dev/lib/demo/ebin/Elixir.Demo.Worker.beam".into(),
            reason: "calls".into(),
            from: Some("Demo.Smoke".into()),
            on_load: false,
        },
        Event::Plan {
            entry: "Demo.Smoke.check".into(),
            modules: 1,
            bytes: 10,
            project_modules: 5,
            shipped: vec![ShippedApp {
                app: "demo".into(),
                modules: 5,
                bytes: 50,
                priv_files: 1,
                priv_bytes: 3,
            }],
            from_server: vec!["kernel".into()],
            protocols: Some(PlannedProtocols {
                elixir: "1.14.0".into(),
                modules: vec!["Enumerable".into()],
                bytes: 4000,
            }),
        },
        Event::Summary {
            hosts: 1,
            failed: 0,
            exit_code: 0,
        },
    ];
    for kind in &all {
        let line = serde_json::to_string(kind).expect("serialize");
        event(&schema, &line);
    }
    for stage in [
        Stage::Scan,
        Stage::Connect,
        Stage::Boot,
        Stage::Push,
        Stage::Call,
        Stage::Stop,
        Stage::Forward,
        Stage::Elixir,
    ] {
        let line = serde_json::to_string(&Event::PhaseStarted {
            host: None,
            phase: stage,
            message: String::new(),
        })
        .expect("serialize");
        event(&schema, &line);
    }
    // The schema is strict: an unknown field or kind is refused.
    let extra = r#"{"event":"summary","hosts":1,"failed":0,"exit_code":0,"extra":1}"#;
    assert!(!schema.is_valid(&serde_json::from_str(extra).expect("json")));
    assert!(!schema.is_valid(&serde_json::json!({"event": "nope"})));
}

#[test]
fn completion_scripts_parse_in_their_shells() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (shell, check) in [
        ("bash", &["bash", "-n"][..]),
        ("zsh", &["zsh", "-n"]),
        ("fish", &["fish", "--no-execute"]),
    ] {
        let out = tool(dir.path(), &["completions", shell]).run();
        assert_eq!(out.code, Some(0), "{shell}: {}", out.stderr);
        // The script asks the binary for candidates (tests/cli.rs has bash do it).
        assert!(
            out.stdout.contains("COMPLETE") && out.stdout.contains("mix-remote"),
            "{shell}: {}",
            out.stdout
        );
        let script: PathBuf = dir.path().join(format!("completion.{shell}"));
        std::fs::write(&script, &out.stdout).expect("write the script");
        let parsed = Command::new(check[0])
            .args(&check[1..])
            .arg(&script)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {shell} (install it: apt-get install {shell}): {e}")
            });
        assert!(
            parsed.status.success(),
            "{shell} rejects its completion script: {}",
            String::from_utf8_lossy(&parsed.stderr)
        );
    }
}

#[test]
fn a_host_chosen_by_host_and_groups_gets_every_such_groups_settings_whatever_the_order() {
    let sshd = Sshd::start();
    let (dir, config) = config_dir(&format!(
        "hosts:\n{}groups:\n  first:\n    hosts: [h]\n    elixir: /nonexistent/first/elixir\n  \
         second:\n    hosts: [h]\n    elixir: /nonexistent/second/elixir\n",
        host_entry("h", &sshd, &[]),
    ));
    let project = fixture();
    // The elixir `check` looked for on h, as its problem says (none when it was found).
    let elixir_of = |chosen: &[&str]| -> Option<String> {
        let out = tool(dir.path(), &["--config", &config, "check", "--json"])
            .args(["--project", &project])
            .args(chosen)
            .run();
        out.assert_local_clean();
        let events = events(&out.stdout);
        let checks = of_kind(&events, "check");
        assert_eq!(checks.len(), 1, "{chosen:?}: chosen once: {}", out.stdout);
        let problem = checks[0]["problem"].as_str()?;
        let looked = problem.split("(looked for `").nth(1)?;
        Some(looked.split('`').next()?.to_owned())
    };
    let first = Some("/nonexistent/first/elixir".to_owned());
    let second = Some("/nonexistent/second/elixir".to_owned());
    let cases: [(&[&str], &Option<String>); 7] = [
        (&["--host", "h"], &None),
        (&["--host", "h", "--group", "second"], &second),
        (&["--group", "second", "--host", "h"], &second),
        (&["--group", "first", "--group", "second"], &first),
        (&["--group", "second", "--group", "first"], &first),
        (
            &["--group", "second", "--host", "h", "--group", "first"],
            &first,
        ),
        (&["--host", "h,h", "--group", "second,second"], &second),
    ];
    for (chosen, elixir) in cases {
        assert_eq!(&elixir_of(chosen), elixir, "{chosen:?}");
    }
    assert_remote_clean(&sshd);
}

#[test]
fn init_refuses_a_host_ssh_would_take_for_an_option_and_writes_nothing() {
    let project = testkit::empty_mix_project();
    for hosts in ["--host=-oProxyCommand=x", "--host=web-1,-x"] {
        let out = tool(project.path(), &["init", hosts]).run();
        assert_eq!(out.code, Some(2), "{hosts}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: invalid value '-")
                && out.stderr.contains(
                    "starts with `-`, which ssh takes for an option: a host is an ssh \
                     destination, [USER@]HOST"
                ),
            "{hosts}: {}",
            out.stderr
        );
        assert!(!project.path().join("mix-remote.yaml").exists(), "{hosts}");
    }
}
