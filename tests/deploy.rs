//! End-to-end tests of runs as `mix run` runs them on a server the project is deployed to: the
//! applications shipped as lib dirs and started (or only loaded with `--no-start`), `priv/` and a
//! NIF, config and the logger, an umbrella, a real Ecto data fix against PostgreSQL, native code
//! built for another machine, and the run's directory on the server gone however a run ends.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use testkit::{Output, Postgres, Sshd};

mod common;
use common::*;

/// The code `mix run -e` evaluates to print what mix-remote prints for `entry` called with `args`.
fn call_code(entry: &str, args: &[&str]) -> String {
    let (module, function) = entry.rsplit_once('.').expect("entry");
    format!(
        "IO.puts(inspect(apply({module}, :{function}, [{}]), limit: :infinity, printable_limit: :infinity))",
        args.join(", ")
    )
}

/// A run of `entry` with `args` in `project` (`--env env`, `--no-start` unless `start`), with
/// `vars` as its `remote_env` (through a mix-remote.yaml of its own). The build is read as testkit
/// made it (`--no-compile`): some tests patch it by hand, which `mix compile` would undo.
fn remote(
    sshd: &Sshd,
    project: &Path,
    env: &str,
    start: bool,
    entry: &str,
    args: &[&str],
    vars: &[(&str, String)],
) -> Output {
    let config = remote_env_config(vars);
    let mut tool = testkit::mix_remote(project);
    tool.arg("--config")
        .arg(config.path().join("mix-remote.yaml"))
        .run_on(sshd)
        .args(["--project", &project.display().to_string(), "--env", env])
        .arg("--no-compile")
        .args((!start).then_some("--no-start"))
        .arg(entry)
        .arg("--")
        .args(args);
    let out = tool.run();
    out.assert_local_clean();
    out
}

/// The Ecto fixture compiled for prod, with its servers.
struct EctoFix {
    project: PathBuf,
    sshd: Sshd,
    pg: Postgres,
    /// What names the database for the fixture's config, for `remote_env`.
    vars: Vec<(&'static str, String)>,
}

/// The Ecto fixture compiled for prod, an sshd and a PostgreSQL server; none without the
/// vendored libraries.
fn ecto_fix_servers() -> Option<EctoFix> {
    if !testkit::vendor_available() {
        return None;
    }
    let project = testkit::compiled_fixture_in("ecto_fix", "prod");
    let sshd = Sshd::start();
    let pg = Postgres::start();
    let vars = pg.env().into_iter().collect();
    Some(EctoFix {
        project,
        sshd,
        pg,
        vars,
    })
}

/// A directory with a `mix-remote.yaml` whose defaults give `vars` as `remote_env`.
fn remote_env_config(vars: &[(&str, String)]) -> tempfile::TempDir {
    let config = tempfile::tempdir().unwrap();
    let mut yaml = String::from("defaults:\n  remote_env:\n");
    for (name, value) in vars {
        yaml += &format!("    {name}: {}\n", serde_json::to_string(value).unwrap());
    }
    if vars.is_empty() {
        yaml = "defaults: {}\n".into();
    }
    std::fs::write(config.path().join("mix-remote.yaml"), yaml).unwrap();
    config
}

/// Logger's lines in `text` from their level on (`[info] text`): without the timestamp Logger
/// puts first, nor the `[HOST]` prefix of lines the remote node printed.
fn log_lines(text: &str) -> Vec<String> {
    let levels = [
        "[debug]",
        "[info]",
        "[notice]",
        "[warning]",
        "[warn]",
        "[error]",
    ];
    text.lines()
        .filter_map(|line| {
            let at = levels.iter().filter_map(|l| line.find(l)).min()?;
            Some(line[at..].to_owned())
        })
        .collect()
}

/// Panics unless the server holds no directory of a run where its runs put them.
fn assert_no_run_dirs(sshd: &Sshd, after: &str) {
    assert_eq!(sshd.run_dirs(), Vec::<PathBuf>::new(), "after {after}");
}

#[test]
fn otp_app_runs_remotely_as_under_mix_run_started_or_not() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture_in("otp_app", "prod");
    let vars = [("OTP_APP_RUNTIME", "here".to_owned())];
    let cases: [(&str, &[&str]); 7] = [
        ("OtpApp.Jobs.tree", &["\"ann\"", "2"]),
        // What the GenServer prints comes out on stdout, in order, as under mix run.
        ("OtpApp.Jobs.announce", &["\"hi\""]),
        ("OtpApp.Jobs.env", &[]),
        ("OtpApp.Jobs.nif", &["2", "3"]),
        ("OtpApp.Jobs.priv_data", &[]),
        ("OtpApp.Jobs.standalone", &["10"]),
        ("OtpApp.Jobs.app_info", &[]),
    ];
    for start in [true, false] {
        for (entry, args) in cases {
            if !start && ["OtpApp.Jobs.tree", "OtpApp.Jobs.announce"].contains(&entry) {
                continue; // they need the supervision tree
            }
            let local = testkit::mix_run(&project, "prod", start, &call_code(entry, args), &vars);
            assert_eq!(local.code, Some(0), "mix run {entry}: {}", local.stderr);
            let out = remote(&sshd, &project, "prod", start, entry, args, &vars);
            assert_eq!(
                out.code,
                Some(0),
                "{entry} (start: {start}): {}",
                out.stderr
            );
            assert_eq!(out.stdout, local.stdout, "{entry} (start: {start})");
        }
    }
    // The prod logger level applies: started, as under mix run, and with --no-start too (where
    // `mix run --no-start` keeps Mix's own Logger at :debug).
    let log = ("OtpApp.Jobs.log", ["\"x\""]);
    let local = testkit::mix_run(&project, "prod", true, &call_code(log.0, &log.1), &vars);
    assert_eq!(
        log_lines(&local.stdout),
        ["[info] info x"],
        "{}",
        local.stdout
    );
    for start in [true, false] {
        let out = remote(&sshd, &project, "prod", start, log.0, &log.1, &vars);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout, ":ok\n");
        assert_eq!(log_lines(&out.stderr), ["[info] info x"], "{}", out.stderr);
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the otp_app runs");
}

#[test]
fn eval_and_scripts_ship_and_start_the_applications_as_run_does() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture_in("otp_app", "prod");
    let vars = [("OTP_APP_RUNTIME", "here".to_owned())];
    // Code that names no module of the project still gets its applications, started or only
    // loaded, as `mix run -e` and `mix run FILE` give them.
    let code = "{Process.whereis(OtpApp.Registry) != nil, \
                Application.app_dir(:otp_app, \"priv/data.csv\") |> File.exists?(), \
                Application.get_env(:otp_app, :from_runtime)}";
    let script = tempfile::tempdir().unwrap();
    let file = script.path().join("check.exs");
    std::fs::write(&file, format!("IO.inspect({code})\n")).unwrap();
    let file = file.display().to_string();
    for start in [true, false] {
        let local = testkit::mix_run(
            &project,
            "prod",
            start,
            &format!("IO.inspect({code})"),
            &vars,
        );
        assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
        let expected = if start {
            "{true, true, "
        } else {
            "{false, true, "
        };
        assert!(local.stdout.starts_with(expected), "{}", local.stdout);

        let mut tool = testkit::mix_remote(&project);
        tool.eval_on(&sshd, code)
            .args(["--env", "prod", "--no-compile"])
            .args((!start).then_some("--no-start"));
        let config = tempfile::tempdir().unwrap();
        let yaml = config.path().join("mix-remote.yaml");
        std::fs::write(
            &yaml,
            "defaults:\n  remote_env:\n    OTP_APP_RUNTIME: here\n",
        )
        .unwrap();
        let evaluated = tool.arg("--config").arg(&yaml).run();
        evaluated.assert_local_clean();
        let scripted = remote(&sshd, &project, "prod", start, &file, &[], &vars);
        for (what, out) in [("eval", evaluated), ("script", scripted)] {
            assert_eq!(out.code, Some(0), "{what} (start: {start}): {}", out.stderr);
            assert_eq!(out.stdout, local.stdout, "{what} (start: {start})");
        }
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "eval and scripts");
}

#[test]
fn empty_priv_directories_are_made_on_the_server_with_their_modes_as_under_mix_run() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "dev");
    let project = staged.path();
    // Directories kept empty (a nested one too) for the job to write into, as a deployment has
    // them; `cache` holds only a directory.
    let (uploads, nested) = (
        project.join("priv/uploads"),
        project.join("priv/cache/empty"),
    );
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::set_permissions(&uploads, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o750)).unwrap();
    let code = "priv = :code.priv_dir(:otp_app)\n\
                for d <- [\"uploads\", \"cache/empty\"] do\n\
                  path = Path.join(priv, d)\n\
                  mode = with {:ok, stat} <- File.stat(path), do: Bitwise.band(stat.mode, 0o777)\n\
                  IO.inspect({d, File.dir?(path), mode, File.write(Path.join(path, \"new.txt\"), \"x\")})\n\
                end\n\
                IO.inspect(Enum.sort(File.ls!(priv)))\n";
    let script = tempfile::tempdir().unwrap();
    let file = script.path().join("empty_dirs.exs");
    std::fs::write(&file, code).unwrap();
    // On the server first: `mix run` writes its files into the project's own priv/.
    let out = remote(
        &sshd,
        project,
        "dev",
        false,
        &file.display().to_string(),
        &[],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let local = testkit::mix_run(project, "dev", false, code, &[]);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    assert!(
        local
            .stdout
            .starts_with("{\"uploads\", true, 448, :ok}\n{\"cache/empty\", true, 488, :ok}\n"),
        "{}",
        local.stdout
    );
    assert_eq!(out.stdout, local.stdout);
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the empty priv/ directories");
}

#[test]
fn config_evaluated_ahead_prints_once_in_order_fails_as_it_would_and_sets_logger() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "prod");
    let project = staged.path();
    let vars = [("OTP_APP_RUNTIME", "here".to_owned())];
    let config = project.join("config/config.exs");
    let runtime = project.join("config/runtime.exs");
    let original = std::fs::read_to_string(&config).unwrap();
    // A cold run evaluates config.exs as the batch comes, before the modules load; what it prints
    // still reaches the run's stdout once, before runtime.exs's and the job's, as under mix run.
    std::fs::write(&config, format!("IO.puts(\"config.exs\")\n{original}")).unwrap();
    let runtime_text = std::fs::read_to_string(&runtime).unwrap();
    std::fs::write(
        &runtime,
        format!("{runtime_text}IO.puts(\"runtime.exs\")\n"),
    )
    .unwrap();
    let entry = "OtpApp.Jobs.env";
    let local = testkit::mix_run(project, "prod", true, &call_code(entry, &[]), &vars);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    assert!(
        local.stdout.starts_with("config.exs\nruntime.exs\n"),
        "{}",
        local.stdout
    );
    let out = remote(&sshd, project, "prod", true, entry, &[], &vars);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, local.stdout);

    // A Logger setting beyond the level (the node restarts Logger for it) shows in the job's log
    // lines as under mix run.
    let prod = project.join("config/prod.exs");
    let prod_text = std::fs::read_to_string(&prod).unwrap();
    let format = "config :logger, :console, format: \"[$level] console: $message\\n\"\n";
    std::fs::write(&prod, format!("{prod_text}{format}")).unwrap();
    let log = ("OtpApp.Jobs.log", ["\"x\""]);
    let local = testkit::mix_run(project, "prod", true, &call_code(log.0, &log.1), &vars);
    let expected = ["[info] console: info x"];
    assert_eq!(log_lines(&local.stdout), expected, "{}", local.stdout);
    let out = remote(&sshd, project, "prod", true, log.0, &log.1, &vars);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(log_lines(&out.stderr), expected, "{}", out.stderr);
    std::fs::write(&prod, prod_text).unwrap();

    // A config.exs or runtime.exs that raises fails the run (exit 1, as under mix run) with its
    // exception, named as the config file's failure (file and line), not the function's.
    let raising = [
        (
            &runtime,
            &runtime_text,
            "no runtime here",
            "config/runtime.exs",
        ),
        (
            &config,
            &original,
            "no config here",
            "config/config.exs (or a file it imports)",
        ),
    ];
    for (file, text, message, at) in raising {
        // First in the file, and last (after `import Config` and the file's config, as
        // Phoenix's `System.get_env("DATABASE_URL") || raise ...` does).
        for raising in [
            format!("raise \"{message}\"\n{text}"),
            format!("{text}\nraise \"{message}\"\n"),
        ] {
            std::fs::write(file, raising).unwrap();
            let out = remote(&sshd, project, "prod", true, entry, &[], &vars);
            assert_eq!(out.code, Some(1), "{}", out.stderr);
            let host = sshd.host();
            assert!(
                out.stderr.contains(&format!(
                    "mix-remote: error: {at} failed on {host}: ** (RuntimeError) {message}\n"
                )) && !out.stderr.contains("raised"),
                "{}",
                out.stderr
            );
        }
        std::fs::write(file, text).unwrap();
    }
    // The whole failure follows, as mix run prints it below the same first line: the message's
    // further lines, Elixir's hints, the stack down to the reading of the file (mix run's goes
    // on into Mix).
    let raising = "Map.fetch!(%{runtime: 1}, String.to_atom(\"run\" <> \"time\" <> \"s\"))";
    std::fs::write(&runtime, format!("{runtime_text}\n{raising}\n")).unwrap();
    let local = testkit::mix_run(project, "prod", true, &call_code(entry, &[]), &vars);
    let out = remote(&sshd, project, "prod", true, entry, &[], &vars);
    assert_eq!((local.code, out.code), (Some(1), Some(1)), "{}", out.stderr);
    let prefix = format!(
        "mix-remote: error: config/runtime.exs failed on {}: ",
        sshd.host()
    );
    let shown = out
        .stderr
        .split_once(&prefix)
        .map(|(_, s)| s)
        .unwrap_or_default();
    let expected: String = local
        .stderr
        .lines()
        .take_while(|l| !l.trim_start().starts_with("(mix "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(expected.contains("Did you mean"), "{}", local.stderr);
    assert_eq!(shown, expected, "{}", out.stderr);
    // Mix's own exception as Mix words it, without a stack.
    let raising = "Mix.raise(\"set DATABASE_URL\")";
    std::fs::write(&runtime, format!("{runtime_text}\n{raising}\n")).unwrap();
    let local = testkit::mix_run(project, "prod", true, &call_code(entry, &[]), &vars);
    assert_eq!(local.stderr, "** (Mix) set DATABASE_URL\n");
    let out = remote(&sshd, project, "prod", true, entry, &[], &vars);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.ends_with(&format!("{prefix}{}", local.stderr)),
        "{}",
        out.stderr
    );
    std::fs::write(&runtime, &runtime_text).unwrap();

    // An older config that asks Mix for the environment (`Mix.env()`, `use Mix.Config`), and code
    // that reads MIX_ENV, work as under `mix run`.
    let mix_style = original.replace("import Config", "use Mix.Config").replace(
        "import_config \"#{config_env()}.exs\"",
        "IO.puts(\"Mix.env: #{Mix.env()}, MIX_ENV: #{System.get_env(\"MIX_ENV\")}\")\n\
         import_config \"#{Mix.env()}.exs\"",
    );
    assert_ne!(mix_style, original);
    std::fs::write(&config, mix_style).unwrap();
    let local = testkit::mix_run(project, "prod", true, &call_code(entry, &[]), &vars);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    assert!(
        local.stdout.starts_with("Mix.env: prod, MIX_ENV: prod\n"),
        "{}",
        local.stdout
    );
    let out = remote(&sshd, project, "prod", true, entry, &[], &vars);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, local.stdout);
    // Through an `elixir` that exports MIX_ENV=staging, as a login's profile may.
    let login = testkit::ElixirWrapper::new("export MIX_ENV=staging\nexec elixir \"$@\"");
    let through_login = |vars: &[(&str, String)]| {
        let env_config = remote_env_config(vars);
        let mut tool = testkit::mix_remote(project);
        tool.arg("--config")
            .arg(env_config.path().join("mix-remote.yaml"))
            .run_on(&sshd)
            .args(["--env", "prod", "--no-compile", "--elixir"])
            .arg(login.path())
            .arg(entry);
        let out = tool.run();
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        out
    };
    // The login's MIX_ENV gives way to the run's...
    assert_eq!(through_login(&vars).stdout, local.stdout);
    // `remote_env` cannot set it: the run's environment is `mix_env`'s, for the build, the
    // config files and Mix alike (MIX_ENV would have been staging where Mix.env() was prod).
    let staging = [&vars[..], &[("MIX_ENV", "staging".to_owned())]].concat();
    let out = remote(&sshd, project, "prod", true, entry, &[], &staging);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stdout.is_empty()
            && out.stderr.lines().count() == 1
            && out
                .stderr
                .contains("`defaults.remote_env`: MIX_ENV is the run's Mix environment")
            && out.stderr.contains("set `mix_env: staging` instead"),
        "{}",
        out.stderr
    );
    std::fs::write(&config, &original).unwrap();

    // runtime.exs sees what config.exs set, as Mix evaluates it once that is applied.
    std::fs::write(
        &runtime,
        format!("{runtime_text}config :otp_app, seen: Application.get_env(:otp_app, :greeting)\n"),
    )
    .unwrap();
    let local = testkit::mix_run(project, "prod", true, &call_code(entry, &[]), &vars);
    assert!(local.stdout.contains("seen: \"hi\""), "{}", local.stdout);
    let out = remote(&sshd, project, "prod", true, entry, &[], &vars);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, local.stdout);
    std::fs::write(&runtime, &runtime_text).unwrap();

    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the config runs");
}

/// Appends each `(file, text)` to that file of `project` (a config file given more lines).
fn append_lines(project: &Path, lines: &[(&str, &str)]) {
    for (file, line) in lines {
        let path = project.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{line}")).unwrap();
    }
}

/// Writes `config/config.exs` and `config/runtime.exs` of `project` (each "import Config" and
/// its line of `lines`), as a test's config files.
fn config_files(project: &Path, lines: [&str; 2]) {
    std::fs::create_dir_all(project.join("config")).unwrap();
    for (file, line) in ["config.exs", "runtime.exs"].into_iter().zip(lines) {
        let text = format!("import Config\n{line}\n");
        std::fs::write(project.join("config").join(file), text).unwrap();
    }
}

/// A `System.at_exit/1` hook that prints the status it is given.
const HOOK: &str = "System.at_exit(fn s -> IO.puts(\"hook #{s}\") end)";

#[test]
fn a_failing_config_exs_runs_the_hooks_it_registered_once_as_under_mix_run() {
    // A cold run evaluates config.exs as the batch comes, and again if that failed (to report
    // the failure as it would be): the hooks the first evaluation registered are not run twice.
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    let code = "IO.puts(:called)";
    for (raising, status) in [("raise \"no config here\"", 1), ("", 0)] {
        config_files(project, [&format!("{HOOK}\n{raising}"), ""]);
        let shown = format!("IO.inspect({code})");
        let local = testkit::mix_run(project, "dev", true, &shown, &[]);
        let hooked = match status {
            0 => "called\n:ok\nhook 0\n".to_owned(),
            _ => format!("hook {status}\n"),
        };
        assert_eq!(
            (local.code, local.stdout.as_str()),
            (Some(status), hooked.as_str()),
            "mix run: {}",
            local.stderr
        );
        let mut tool = testkit::mix_remote(project);
        let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
        out.assert_local_clean();
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(status), hooked.as_str()),
            "{}",
            out.stderr
        );
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the config.exs hooks");
}

#[test]
fn mix_raise_exit_status_in_a_config_file_ends_the_run_as_under_mix_run() {
    // A config file that raises a Mix exception ends `mix run` with its `exit_status` (the
    // hooks it registered get it), the code not run: 0 is a success there and here, Mix's words
    // alone; another status ends the tool with 1 (its 2-4 mean other things), as in the code.
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    let code = "IO.puts(:called)";
    for (i, name) in ["config.exs", "runtime.exs"].into_iter().enumerate() {
        for (status, tool_code) in [(0, 0), (3, 1)] {
            let raising = format!("{HOOK}\nMix.raise(\"boom\", exit_status: {status})");
            let mut lines = ["", ""];
            lines[i] = &raising;
            config_files(project, lines);
            let local = testkit::mix_run(project, "dev", true, code, &[]);
            let hooked = format!("hook {status}\n");
            assert_eq!(
                (local.code, local.stdout.as_str(), local.stderr.as_str()),
                (Some(status), hooked.as_str(), "** (Mix) boom\n"),
                "mix run, {name}"
            );
            for json in [false, true] {
                let mut tool = testkit::mix_remote(project);
                tool.eval_on(&sshd, code).arg("--no-compile");
                if json {
                    tool.arg("--json");
                }
                let out = tool.run();
                out.assert_local_clean();
                let errors = out
                    .stderr
                    .lines()
                    .filter(|l| l.contains("mix-remote: error:"));
                assert_eq!(
                    (out.code, errors.count()),
                    (Some(tool_code), usize::from(status != 0)),
                    "{name}: {}",
                    out.stderr
                );
                if json {
                    continue;
                }
                assert_eq!(out.stdout, hooked, "{name}: {}", out.stderr);
                let file = match name {
                    "config.exs" => "config/config.exs (or a file it imports)",
                    _ => "config/runtime.exs",
                };
                let error = format!(
                    "mix-remote: error: {file} failed on {}: ** (Mix) boom\n",
                    sshd.host()
                );
                // Mix's words alone for a success, as mix run prints them.
                let expected = if status == 0 {
                    "** (Mix) boom\n"
                } else {
                    &error
                };
                assert!(out.stderr.ends_with(expected), "{name}: {}", out.stderr);
            }
        }
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the config files' Mix exceptions");
}

#[test]
fn only_runtime_exs_may_call_the_projects_modules_as_under_mix_run() {
    // Mix evaluates config.exs before the project's code is on its code path: a call of one of
    // its modules there fails `mix run` (exit 1), whereas runtime.exs, evaluated after the
    // compile, may call them. A run of the tool does as mix run does with both.
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    let code = "IO.inspect(Application.get_env(:demo, :currency))";
    let calling = "IO.puts(:before)\nconfig :demo, currency: Demo.Money.new(1, :eur).currency";
    for (i, name) in ["config.exs", "runtime.exs"].into_iter().enumerate() {
        let mut lines = ["", ""];
        lines[i] = calling;
        config_files(project, lines);
        let local = testkit::mix_run(project, "dev", true, code, &[]);
        let mut tool = testkit::mix_remote(project);
        let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
        out.assert_local_clean();
        if name == "runtime.exs" {
            assert_eq!(
                (local.code, local.stdout.as_str()),
                (Some(0), "before\n:eur\n"),
                "mix run: {}",
                local.stderr
            );
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (Some(0), "before\n:eur\n:eur\n"),
                "{}",
                out.stderr
            );
            continue;
        }
        let undefined = "** (UndefinedFunctionError) function Demo.Money.new/2 is undefined \
            (module Demo.Money is not available)\n";
        assert_eq!(
            (local.code, local.stdout.as_str()),
            (Some(1), "before\n"),
            "mix run: {}",
            local.stderr
        );
        assert!(local.stderr.starts_with(undefined), "{}", local.stderr);
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(1), "before\n"),
            "{}",
            out.stderr
        );
        let error = format!(
            "mix-remote: error: config/config.exs (or a file it imports) failed on {}: {undefined}",
            sshd.host()
        );
        assert!(out.stderr.contains(&error), "{}", out.stderr);
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the config files calling the project's modules");
}

#[test]
fn an_exit_with_a_status_in_a_config_file_ends_the_run_as_under_mix_run() {
    // Elixir's command line takes `exit(:normal)` and `exit({:shutdown, n})` for an end with a
    // status: in a config file they end `mix run` so, without a word (the hooks get the status),
    // the code not run: 0 is a success there and here; another status ends the tool with 1.
    let endings = [("exit(:normal)", 0), ("exit({:shutdown, 3})", 3)].map(|(exit, status)| {
        (
            format!("{HOOK}\n{exit}"),
            status,
            format!("hook {status}\n"),
        )
    });
    config_file_endings_end_the_run_as_under_mix_run(&endings, "the config files' exits");
}

#[test]
fn a_halt_in_a_config_file_ends_the_run_as_under_mix_run() {
    // `System.halt(n)` in a config file ends `mix run` with n at once, without a word and without
    // the hooks; here it ends the run as a halt in the code does: 0 a success, another status
    // the tool's 1, naming the file (the tool's own 2-4 mean other things).
    let endings = [0, 3].map(|status| {
        // The halt a moment after the output, which a halt in runtime.exs (evaluated in the run)
        // could otherwise lose (README, Limits).
        let ending = format!("{HOOK}\nIO.puts(:before)\nProcess.sleep(100)\nSystem.halt({status})");
        (ending, status, "before\n".to_owned())
    });
    config_file_endings_end_the_run_as_under_mix_run(&endings, "the config files' halts");
}

#[test]
fn a_halt_the_config_file_does_not_name_ends_the_run_as_under_mix_run() {
    // A halt reached without the word in the file (through `apply/3`, or a function elsewhere):
    // what the file printed before it shows all the same, as under mix run.
    let endings = [0, 3].map(|status| {
        let halt = "apply(System, String.to_atom(\"ha\" <> \"lt\"), [STATUS])";
        let ending = format!(
            "IO.puts(:before)\nProcess.sleep(100)\n{}",
            halt.replace("STATUS", &status.to_string())
        );
        (ending, status, "before\n".to_owned())
    });
    config_file_endings_end_the_run_as_under_mix_run(&endings, "the config files' hidden halts");
}

/// Each of `endings` (the end of a config file, the status `mix run` exits with after it, what
/// it prints), in config.exs and then in runtime.exs, ends `mix run` and a run of the tool alike:
/// the same output, 0 a success, another status the tool's 1 naming the file; nothing left on
/// the server (`what` says what ended the runs).
fn config_file_endings_end_the_run_as_under_mix_run(endings: &[(String, i32, String)], what: &str) {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("demo", "dev");
    let project = staged.path();
    let code = "IO.puts(:called)";
    for (i, name) in ["config.exs", "runtime.exs"].into_iter().enumerate() {
        for (ending, status, printed) in endings {
            let mut lines = ["", ""];
            lines[i] = ending;
            config_files(project, lines);
            let local = testkit::mix_run(project, "dev", true, code, &[]);
            assert_eq!(
                (local.code, local.stdout.as_str(), local.stderr.as_str()),
                (Some(*status), printed.as_str(), ""),
                "mix run, {name}: {ending}"
            );
            let mut tool = testkit::mix_remote(project);
            let out = tool.eval_on(&sshd, code).arg("--no-compile").run();
            out.assert_local_clean();
            assert_eq!(
                (out.code, out.stdout.as_str()),
                (Some(i32::from(*status != 0)), printed.as_str()),
                "{name}: {ending}: {}",
                out.stderr
            );
            let said: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| !l.contains("warning: _build/dev is older than"))
                .collect();
            let file = match name {
                "config.exs" => "config/config.exs (or a file it imports)",
                _ => "config/runtime.exs",
            };
            let error = format!(
                "mix-remote: error: {file} stopped the run with status {status} on {}",
                sshd.host()
            );
            let expected: &[&str] = if *status == 0 { &[] } else { &[&error] };
            assert_eq!(said, expected, "{name}: {ending}: {}", out.stderr);
        }
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, what);
}

#[test]
fn what_elixir_says_of_a_config_file_names_it_as_the_projects() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "dev");
    let project = staged.path();
    // Compiler warnings in dev.exs (imported by config.exs, which a cold run evaluates as the
    // batch comes) and in runtime.exs (evaluated before the start): mix run names the files
    // from the project's directory (`config/dev.exs:4`), and so does the run, not by their paths
    // in the run's directory on the server.
    append_lines(
        project,
        &[
            (
                "config/dev.exs",
                "config :otp_app, stripped: String.strip(\" x \")\n",
            ),
            (
                "config/runtime.exs",
                "defmodule RuntimeCfg do\n  def f(unused), do: :ok\nend\n\
             config :otp_app, ca: File.read!(\"config/ca.pem\")\n",
            ),
        ],
    );
    std::fs::write(project.join("config/ca.pem"), "pem").unwrap();
    let entry = "OtpApp.Jobs.env";
    let local = testkit::mix_run(project, "dev", true, &call_code(entry, &[]), &[]);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    let named: Vec<&str> = local
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("config/"))
        .collect();
    assert!(
        named.iter().any(|l| l.starts_with("config/dev.exs:"))
            && named.iter().any(|l| l.starts_with("config/runtime.exs:")),
        "{}",
        local.stderr
    );
    // What they read by a relative path is the project's (config/ travels), as under mix run.
    assert!(local.stdout.contains("ca: \"pem\""), "{}", local.stdout);
    let out = remote(&sshd, project, "dev", true, entry, &[], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, local.stdout);
    for line in named {
        assert!(out.stderr.contains(line), "{line} not in {}", out.stderr);
    }
    assert!(!out.stderr.contains("mix-remote-run-"), "{}", out.stderr);
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the warning runs");
}

#[test]
fn a_config_of_kernel_or_stdlib_gets_mix_s_words_as_under_mix_run() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "dev");
    let project = staged.path();
    // kernel and stdlib run before any config applies: Mix says so of config.exs (here through
    // dev.exs, which it imports) and of runtime.exs, on stderr, and the run goes on.
    append_lines(
        project,
        &[
            ("config/dev.exs", "config :kernel, otp_app_test: :dev\n"),
            (
                "config/runtime.exs",
                "config :stdlib, otp_app_test: :runtime\n",
            ),
        ],
    );
    let entry = "OtpApp.Jobs.env";
    let local = testkit::mix_run(project, "dev", true, &call_code(entry, &[]), &[]);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    let said = |stderr: &str| -> Vec<String> {
        stderr
            .split("Cannot configure base applications: ")
            .skip(1)
            .map(|block| {
                block
                    .split("one of its imports.")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let expected = said(&local.stderr);
    assert_eq!(expected.len(), 2, "{}", local.stderr);
    assert!(
        expected[0].starts_with("[:kernel]")
            && expected[0].contains("config/config.exs")
            && expected[1].starts_with("[:stdlib]")
            && expected[1].contains("config/runtime.exs"),
        "{}",
        local.stderr
    );
    let out = remote(&sshd, project, "dev", true, entry, &[], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, local.stdout);
    assert_eq!(said(&out.stderr), expected, "{}", out.stderr);
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the base application runs");
}

#[test]
fn a_config_of_an_application_not_there_gets_mix_s_words_as_under_mix_run() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "prod");
    let project = staged.path();
    // An application configured in prod.exs (through config.exs) and in runtime.exs that is
    // nowhere: Mix says so once per mention, runtime.exs's first, on stderr; not of ssl, which
    // is not loaded but is on the code path.
    append_lines(
        project,
        &[
            (
                "config/prod.exs",
                "config :otp_app_gone, x: 1\nconfig :ssl, x: 1\n",
            ),
            ("config/runtime.exs", "config :otp_app_gone, y: 2\n"),
        ],
    );
    let entry = "OtpApp.Jobs.env";
    let said = |stderr: &str| -> Vec<String> {
        stderr
            .split("You have configured application ")
            .skip(1)
            .map(|block| {
                block
                    .split("remove the configuration.")
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    for start in [true, false] {
        let local = testkit::mix_run(project, "prod", start, &call_code(entry, &[]), &[]);
        assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
        let expected = said(&local.stderr);
        assert_eq!(expected.len(), 2, "{}", local.stderr);
        assert!(expected[0].starts_with(":otp_app_gone"), "{}", local.stderr);
        let out = remote(&sshd, project, "prod", start, entry, &[], &[]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout, local.stdout);
        assert_eq!(said(&out.stderr), expected, "{}", out.stderr);
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the runs configuring what is not there");
}

/// The applications Mix's "You have configured application ..., but the application is not
/// available" names in `stderr`, one per time it says so.
fn said_unavailable(stderr: &str) -> Vec<&str> {
    stderr
        .split("You have configured application ")
        .skip(1)
        .map(|block| block.split(' ').next().unwrap())
        .collect()
}

#[test]
fn an_umbrella_child_with_its_own_build_path_is_not_told_of_applications_not_there() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("umbrella_start", "dev");
    let root = staged.path();
    append_lines(
        root,
        &[("config/config.exs", "config :umbrella_gone, x: 1\n")],
    );
    // Mix leaves the check to the project that owns the build: the umbrella's root says it, a
    // child whose mix.exs sets `build_path:` (apps/api) does not.
    let entry = "Api.Jobs.status";
    for (project, expected) in [
        (root.to_owned(), vec![":umbrella_gone"]),
        (root.join("apps/api"), vec![]),
    ] {
        let local = testkit::mix_run(&project, "dev", true, &call_code(entry, &[]), &[]);
        assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
        assert_eq!(
            said_unavailable(&local.stderr),
            expected,
            "{}",
            local.stderr
        );
        let out = remote(&sshd, &project, "dev", true, entry, &[], &[]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout, local.stdout);
        assert_eq!(said_unavailable(&out.stderr), expected, "{}", out.stderr);
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the umbrella's runs");
}

#[test]
fn a_config_of_a_dependency_built_but_not_shipped_is_not_told_it_is_not_there() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("closure", "dev");
    let project = staged.path();
    // builddep (`runtime: false`) is in _build, on mix run's code path, but the closure of
    // Closure.Jobs.shapes does not reach it: it does not ship, and the server has it nowhere.
    // Mix says nothing of its config, nor does the run; of an application that is nowhere, both.
    append_lines(
        project,
        &[(
            "config/config.exs",
            "config :builddep, x: 1\nconfig :closure_gone, x: 1\n",
        )],
    );
    let entry = "Closure.Jobs.shapes";
    let local = testkit::mix_run(project, "dev", true, &call_code(entry, &[]), &[]);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    assert_eq!(
        said_unavailable(&local.stderr),
        [":closure_gone"],
        "{}",
        local.stderr
    );
    let out = remote(&sshd, project, "dev", true, entry, &[], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, local.stdout);
    assert_eq!(
        said_unavailable(&out.stderr),
        [":closure_gone"],
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the run configuring a dependency it does not ship");
}

#[test]
fn config_exs_is_checked_against_the_compiled_config_and_mix_runs_for_code_that_asks_it() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "prod");
    let project = staged.path();
    let entry = "OtpApp.Modes.now";
    // Code that asks Mix gets it, set to the run's environment, as under mix run.
    let local = testkit::mix_run(project, "prod", true, &call_code(entry, &[]), &[]);
    assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
    assert_eq!(
        local.stdout,
        "%{compiled: :prod, mix_env: :prod, mode: :prod}\n"
    );
    let out = remote(&sshd, project, "prod", true, entry, &[], &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, local.stdout);
    // The tasks mix run ran before the code are done for it: a job's own
    // `Mix.Task.run("app.start")` is :noop, not a failure for want of a Mix project.
    let code = "IO.inspect({Mix.Task.run(\"app.start\"), Mix.Task.run(\"app.config\")})";
    let local = testkit::mix_run(project, "prod", true, code, &[]);
    assert_eq!(local.stdout, "{:noop, :noop}\n", "{}", local.stderr);
    let mut tool = testkit::mix_remote(project);
    tool.eval_on(&sshd, code)
        .args(["--env", "prod", "--no-compile"]);
    let out = tool.run();
    out.assert_local_clean();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "{:noop, :noop}\n{:noop, :noop}\n"),
        "{}",
        out.stderr
    );

    // A config.exs that reads the server's environment gives the module another value than it
    // was compiled with: mix run refuses to run it (Elixir's ERROR on stderr, exit 1), and so
    // does mix-remote, before any application starts, unless told not to check.
    let prod = project.join("config/prod.exs");
    let prod_text = std::fs::read_to_string(&prod).unwrap();
    let reads_env = "if mode = System.get_env(\"OTP_APP_MODE\"), do: config(:otp_app, mode: String.to_atom(mode))\n";
    std::fs::write(&prod, format!("{prod_text}{reads_env}")).unwrap();
    let vars = [("OTP_APP_MODE", "elsewhere".to_owned())];
    let out = remote(&sshd, project, "prod", true, entry, &[], &vars);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    // Elixir says what differs on stdout, as under mix run.
    assert!(
        out.stdout.starts_with(
            "ERROR! the application :otp_app has a different value set for key :mode during \
             runtime compared to compile time"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "mix-remote: error: application otp_app was compiled with another config than it has"
        ) && out.stderr.contains("--no-validate-compile-env"),
        "{}",
        out.stderr
    );
    let config = remote_env_config(&vars);
    let mut tool = testkit::mix_remote(project);
    tool.arg("--config")
        .arg(config.path().join("mix-remote.yaml"))
        .run_on(&sshd)
        .args([
            "--env",
            "prod",
            "--no-compile",
            "--no-validate-compile-env",
            entry,
        ]);
    let out = tool.run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "%{compiled: :prod, mix_env: :prod, mode: :elsewhere}\n"
    );
    std::fs::write(&prod, prod_text).unwrap();
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the compile-env runs");
}

#[test]
fn mix_target_is_the_configs_target_and_mix_s_as_under_mix_run() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "dev");
    let project = staged.path();
    let config = project.join("config/config.exs");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{original}config :otp_app, target: config_target()\n"),
    )
    .unwrap();
    let code =
        "{Application.get_env(:otp_app, :target), Mix.target(), System.get_env(\"MIX_TARGET\")}";
    for (target, said) in [
        (Some("rpi"), "{:rpi, :rpi, \"rpi\"}\n"),
        (None, "{:host, :host, nil}\n"),
    ] {
        // The tool compiles the target's build (`_build/rpi_dev`), which mix run then reads.
        let mut tool = testkit::mix_remote(project);
        tool.eval_on(&sshd, code);
        let mut vars = Vec::new();
        if let Some(target) = target {
            tool.env("MIX_TARGET", target);
            vars.push(("MIX_TARGET", target.to_owned()));
        }
        let out = tool.run();
        assert_eq!(out.code, Some(0), "{target:?}: {}", out.stderr);
        let local = testkit::mix_run(project, "dev", true, &format!("IO.inspect({code})"), &vars);
        assert_eq!(local.code, Some(0), "mix run: {}", local.stderr);
        assert_eq!(local.stdout, said);
        assert_eq!(out.stdout, local.stdout, "{target:?}");
        out.assert_local_clean();
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the target runs");
}

#[test]
fn a_file_the_config_imports_from_beside_its_directory_travels_with_it() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "dev");
    let project = staged.path();
    let dev = project.join("config/dev.exs");
    let text = std::fs::read_to_string(&dev).unwrap();
    std::fs::write(
        &dev,
        format!("{text}import_config \"../shared/common.exs\"\n"),
    )
    .unwrap();
    std::fs::create_dir_all(project.join("shared")).unwrap();
    std::fs::write(
        project.join("shared/common.exs"),
        "import Config\nconfig :otp_app, shared: true\n",
    )
    .unwrap();
    let code = "Application.get_env(:otp_app, :shared)";
    let local = testkit::mix_run(project, "dev", true, &format!("IO.inspect({code})"), &[]);
    assert_eq!(
        (local.code, local.stdout.as_str()),
        (Some(0), "true\n"),
        "{}",
        local.stderr
    );
    let mut tool = testkit::mix_remote(project);
    let out = tool.eval_on(&sshd, code).run();
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "true\n"),
        "{}",
        out.stderr
    );
    out.assert_local_clean();
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the import run");
}

#[test]
fn an_application_that_fails_to_start_has_logger_say_so_as_under_mix_run() {
    let sshd = Sshd::start();
    // A child of the application's supervisor whose `init/1` returns `{:stop, :bad_init}`.
    let project = testkit::compiled_fixture("bad_start");
    let local = testkit::mix_run(&project, "dev", true, "IO.puts(:unreachable)", &[]);
    assert_eq!(local.code, Some(1), "{}", local.stderr);
    let notice = "[notice] Application bad_start exited: BadStart.Application.start(:normal, []) \
                  returned an error: shutdown: failed to start child: BadStart.Worker";
    assert_eq!(log_lines(&local.stdout), [notice], "{}", local.stdout);
    // Logger's notice comes from the application controller after its answer: the run waits
    // for it rather than end first (which it did in most runs, hence several).
    for _ in 0..4 {
        let out = remote(
            &sshd,
            &project,
            "dev",
            true,
            "BadStart.Worker.job",
            &[],
            &[],
        );
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(1), ""),
            "{}",
            out.stderr
        );
        assert_eq!(log_lines(&out.stderr), [notice], "{}", out.stderr);
        assert!(
            out.stderr.contains("could not start application bad_start"),
            "{}",
            out.stderr
        );
    }
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the failed starts");
}

#[test]
fn start_permanent_applications_end_the_run_when_they_exit_as_under_mix_run() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "prod");
    let project = staged.path();
    // The supervisor gives up after its fourth restart in 5 s: the application exits.
    // (A hook the node of `mix run` does not run once a permanent application took it down.)
    let code = "System.at_exit(fn _ -> IO.puts(\"hook\") end)\nfor _ <- 1..5 do\n  \
                if pid = Process.whereis(OtpApp.Counter), do: Process.exit(pid, :kill)\n  \
                Process.sleep(50)\nend\nProcess.sleep(500)\nIO.puts(\"survived\")";
    let eval_code = |code: &str| {
        let mut tool = testkit::mix_remote(project);
        tool.eval_on(&sshd, code)
            .args(["--env", "prod", "--no-compile"]);
        let out = tool.run();
        out.assert_local_clean();
        out
    };
    let eval = || eval_code(code);
    // Temporary, Mix's default: the call goes on without the application.
    let local = testkit::mix_run(project, "prod", true, code, &[]);
    assert_eq!(local.code, Some(0), "{}", local.stderr);
    // Logger's notice of the exit is among mix run's output; mix-remote shows it on stderr.
    assert!(
        local
            .stdout
            .contains("Application otp_app exited: shutdown")
            && local.stdout.ends_with("survived\nhook\n"),
        "{}",
        local.stdout
    );
    let out = eval();
    // (eval prints the value, `IO.puts/1`'s, before the hook runs.)
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "survived\n:ok\nhook\n"),
        "{}",
        out.stderr
    );

    // Permanent, as `mix new --sup` writes it for prod: the node of `mix run` goes down (exit
    // 1, its applications stopping under the code, which may still print a line or two).
    let mix_exs = project.join("mix.exs");
    let text = std::fs::read_to_string(&mix_exs).unwrap();
    let permanent = text.replace(
        "      app: :otp_app,\n",
        "      app: :otp_app,\n      start_permanent: Mix.env() == :prod,\n",
    );
    assert_ne!(permanent, text, "the fixture's mix.exs changed");
    std::fs::write(&mix_exs, permanent).unwrap();
    let local = testkit::mix_run(project, "prod", true, code, &[]);
    assert_eq!(local.code, Some(1), "{}", local.stderr);
    let out = eval();
    // Neither the rest of the code nor the hook.
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(1), ""),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("** (exit) application otp_app exited: :shutdown (start_permanent: in"),
        "{}",
        out.stderr
    );
    // An IEx session goes on (IEx's server is linked to the relay: it is not killed).
    let mut tool = testkit::mix_remote(project);
    tool.args(["iex", "--host", &sshd.host(), "-F"])
        .arg(sshd.ssh_config())
        .args(["--env", "prod", "--no-compile"])
        .stdin(format!("{code}\n"));
    let out = tool.run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("survived"), "{}", out.stdout);
    out.assert_local_clean();
    // The job's own stop of a permanent application is no exit of it, under mix run neither.
    let stops = "Application.stop(:otp_app)\nProcess.sleep(200)\nIO.puts(\"stopped\")";
    let local = testkit::mix_run(project, "prod", true, stops, &[]);
    assert_eq!(local.code, Some(0), "{}", local.stderr);
    let out = eval_code(stops);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "stopped\n:ok\n"),
        "{}",
        out.stderr
    );
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the permanent runs");
}

#[test]
fn an_umbrella_starts_every_child_as_under_mix_run() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("umbrella_start");
    for (start, entry) in [(true, "Api.Jobs.status"), (false, "Api.Jobs.loaded")] {
        let local = testkit::mix_run(&project, "dev", start, &call_code(entry, &[]), &[]);
        assert_eq!(local.code, Some(0), "{}", local.stderr);
        let out = remote(&sshd, &project, "dev", start, entry, &[], &[]);
        assert_eq!(out.code, Some(0), "{entry}: {}", out.stderr);
        assert_eq!(out.stdout, local.stdout, "{entry}");
    }
    sshd.assert_no_session_processes();
}

#[test]
fn an_umbrella_child_as_the_project_uses_the_build_and_config_its_mix_exs_names() {
    // apps/api of the umbrella, as `--project apps/api`: its mix.exs puts the build in
    // ../../_build and reads ../../config/config.exs, as `mix run` in that directory does.
    let sshd = Sshd::start();
    let child = testkit::compiled_fixture("umbrella_start").join("apps/api");
    let expected = [
        (
            true,
            "Api.Jobs.status",
            "%{running: [:store, :api], store: %{api: \"api from config\", apples: 3}}\n",
        ),
        (
            false,
            "Api.Jobs.loaded",
            "%{label: \"api from config\", loaded: [:store, :api], running: []}\n",
        ),
    ];
    for (start, entry, result) in expected {
        let local = testkit::mix_run(&child, "dev", start, &call_code(entry, &[]), &[]);
        assert_eq!(
            (local.code, local.stdout.as_str()),
            (Some(0), result),
            "{}",
            local.stderr
        );
        let out = remote(&sshd, &child, "dev", start, entry, &[], &[]);
        assert_eq!(out.code, Some(0), "{entry}: {}", out.stderr);
        assert_eq!(out.stdout, result, "{entry}");
    }
    sshd.assert_no_session_processes();
}

#[test]
fn an_umbrella_roots_config_brings_the_childrens_config_files_it_imports() {
    // The root's config/config.exs imports apps/*/config/config.exs (a wildcard from its own
    // directory): audit's sets `from_child_config`, from the root and from apps/api alike, whose
    // config_path is the root's.
    let sshd = Sshd::start();
    let root = testkit::compiled_fixture("umbrella_start");
    let entry = "Api.Jobs.child_config";
    for project in [root.clone(), root.join("apps/api")] {
        let local = testkit::mix_run(&project, "dev", true, &call_code(entry, &[]), &[]);
        assert_eq!(
            (local.code, local.stdout.as_str()),
            (Some(0), "%{audit: true}\n"),
            "{}",
            local.stderr
        );
        let out = remote(&sshd, &project, "dev", true, entry, &[], &[]);
        assert_eq!(out.code, Some(0), "{}: {}", project.display(), out.stderr);
        assert_eq!(out.stdout, local.stdout, "{}", project.display());
    }
    sshd.assert_no_session_processes();
}

#[test]
fn an_ecto_data_fix_changes_the_rows_in_postgres_without_debug_logs() {
    let Some(EctoFix {
        project,
        sshd,
        pg,
        vars,
    }) = ecto_fix_servers()
    else {
        return;
    };
    // Each run's output, and what Logger printed at a level other than info (none: the prod
    // level is :info, so Ecto's query logs do not show).
    let logged = std::cell::RefCell::new(Vec::new());
    let run = |start, entry: &str, args: &[&str]| {
        let out = remote(&sshd, &project, "prod", start, entry, args, &vars);
        assert_eq!(out.code, Some(0), "{entry}: {}", out.stderr);
        let lines = log_lines(&out.stderr);
        assert!(
            lines.iter().all(|l| l.starts_with("[info] ")),
            "{}",
            out.stderr
        );
        logged.borrow_mut().extend(lines);
        out.stdout
    };
    // Release-style tasks start the Repo themselves (Ecto.Migrator.with_repo/2): --no-start.
    assert_eq!(
        run(false, "EctoFix.Release.migrate", &[]),
        "[20240101000000]\n"
    );
    let migrated = logged.take();
    assert_eq!(
        migrated[..2],
        [
            "[info] == Running 20240101000000 EctoFix.Repo.Migrations.CreateAccounts.change/0 forward",
            "[info] create table accounts"
        ]
    );
    assert!(
        migrated[2].starts_with("[info] == Migrated 20240101000000 in "),
        "{migrated:?}"
    );
    assert_eq!(run(false, "EctoFix.Release.seed", &["250"]), "250\n");
    assert_eq!(
        pg.rows("SELECT count(*) FROM accounts WHERE email_normalized IS NULL"),
        [["250"]]
    );
    // The data fix itself, the application started.
    assert_eq!(
        run(true, "EctoFix.Jobs.Backfill.run", &["100"]),
        "batch 1: 100 rows (100 so far)\nbatch 2: 100 rows (200 so far)\nbatch 3: 50 rows (250 so far)\n\
         done: 250 rows in 3 batches, 0 left\n%{batches: 3, remaining: 0, updated: 250}\n"
    );
    assert_eq!(
        pg.rows(
            "SELECT count(*), count(DISTINCT email_normalized), min(email_normalized), \
             max(email_normalized) FROM accounts"
        ),
        [["250", "250", "user100@example.com", "user9@example.com"]]
    );
    assert_eq!(
        run(true, "EctoFix.Jobs.Backfill.run", &["100"]),
        "done: 0 rows in 0 batches, 0 left\n%{batches: 0, remaining: 0, updated: 0}\n"
    );
    assert_eq!(logged.take(), Vec::<String>::new());
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the data fix");
}

#[test]
fn a_ctrl_c_during_a_query_cancels_it_on_the_database_as_mix_run_stops() {
    // The node stops the call's processes and the applications before it halts, as `mix run`
    // stops on SIGTERM: the connection's end cancels the statement, which a bare halt left
    // running on the database server (holding its locks).
    let Some(EctoFix {
        project,
        sshd,
        pg,
        vars,
    }) = ecto_fix_servers()
    else {
        return;
    };
    let config = remote_env_config(&vars);
    let sleeping = "SELECT pg_sleep(60)";
    let mut tool = testkit::mix_remote(&project);
    tool.arg("--config")
        .arg(config.path().join("mix-remote.yaml"))
        .eval_on(
            &sshd,
            &format!(
                "IO.puts(:sleeping); EctoFix.Repo.query!(\"{sleeping}\", [], timeout: :infinity)"
            ),
        )
        .args(["--project", &project.display().to_string(), "--env", "prod"])
        .arg("--no-compile");
    let mut run = tool.spawn();
    run.stdout_until("sleeping\n");
    let active = || {
        pg.rows(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE query = '{sleeping}' AND state = 'active'"
        ))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while active() != [["1"]] {
        assert!(std::time::Instant::now() < deadline, "the query never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    run.signal("INT");
    let out = run.finish();
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while active() != [["0"]] {
        assert!(
            std::time::Instant::now() < deadline,
            "the query still runs on the database"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    out.assert_local_clean();
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "the interrupted query");
}

#[test]
fn native_code_the_server_cannot_load_and_missing_or_failing_apps_are_named() {
    let sshd = Sshd::start();
    let staged = testkit::staged_fixture("otp_app", "dev");
    let project = staged.path();
    let so = project.join("priv/otp_app_nif.so");
    let app = project.join("_build/dev/lib/otp_app/ebin/otp_app.app");
    let (nif, spec) = (
        std::fs::read(&so).unwrap(),
        std::fs::read_to_string(&app).unwrap(),
    );
    let host = sshd.host();
    let run = |entry: &str, args: &[&str], start| {
        let out = remote(&sshd, project, "dev", start, entry, args, &[]);
        sshd.assert_no_session_processes();
        out
    };
    // `check` refuses such a server as `run` does, naming the same culprit.
    let check = |said: &str| {
        let mut tool = testkit::mix_remote(project);
        tool.args(["check", "--host", &host, "-F"])
            .arg(sshd.ssh_config())
            .args(["--env", "dev"]);
        let out = tool.run();
        assert_eq!(out.code, Some(3), "{}", out.stdout);
        assert!(
            out.stdout.contains(&format!("{host}: {said}")) && out.stdout.contains("0 of 1"),
            "{}",
            out.stdout
        );
        sshd.assert_no_session_processes();
    };

    // Built for another machine: refused before anything is loaded; nothing runs.
    let mut patched = nif.clone();
    patched[18..20].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(&so, &patched).unwrap();
    let out = run("OtpApp.Jobs.standalone", &["1"], true);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    let line = format!(
        "mix-remote: error: priv/otp_app_nif.so is built for aarch64, {host} runs {}: build it for \
         the server or run from a machine of the same kind\n",
        std::env::consts::ARCH
    );
    assert_eq!(out.stderr, line);
    assert_eq!(out.stdout, "");
    assert_no_run_dirs(&sshd, "a refused NIF");
    check(line.trim_end().trim_start_matches("mix-remote: error: "));

    // A library that passes the check but fails to load all the same: the loader's reason.
    std::fs::write(&so, &nif[..64]).unwrap();
    let out = run("OtpApp.Jobs.nif", &["1", "2"], true);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "the remote refused to load OtpApp.Nif (its -on_load function returned {:error, {:load_failed,"
        ),
        "{}",
        out.stderr
    );
    std::fs::write(&so, &nif).unwrap();

    // Files that only start as objects do: a Java class (CAFEBABE, then its version where a fat
    // Mach-O has its count) and data starting with "MZ" (no PE header behind): shipped as data.
    let (java, data) = (project.join("priv/java"), project.join("priv/regions.csv"));
    std::fs::create_dir_all(&java).unwrap();
    std::fs::write(
        java.join("Foo.class"),
        [0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52, 0, 16],
    )
    .unwrap();
    std::fs::write(&data, "MZ,Mazowieckie\nPL-12,Malopolskie\n").unwrap();
    let out = run("OtpApp.Jobs.standalone", &["1"], true);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    std::fs::remove_dir_all(&java).unwrap();
    std::fs::remove_file(&data).unwrap();

    // An application callback that fails: Mix's message, naming the application; exit 1.
    std::fs::write(
        &app,
        spec.replace("'Elixir.OtpApp.Application'", "'Elixir.OtpApp.Nope'"),
    )
    .unwrap();
    let local = testkit::mix_run(project, "dev", true, "IO.puts(:unreachable)", &[]);
    let mix_says = local
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("** (Mix) Could not start application otp_app: "))
        .unwrap_or_else(|| panic!("{}", local.stderr))
        .to_owned();
    let out = run("OtpApp.Jobs.standalone", &["1"], true);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "mix-remote: error: could not start application otp_app on {host}: {mix_says}"
        )),
        "{}\nmix run: {mix_says}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
    let out = run("OtpApp.Jobs.standalone", &["1"], false);
    assert_eq!(out.code, Some(0), "{}", out.stderr);

    // An application the server does not have.
    std::fs::write(
        &app,
        spec.replace("{applications,[", "{applications,[nosuch_app,"),
    )
    .unwrap();
    let out = run("OtpApp.Jobs.standalone", &["1"], true);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "otp_app needs the application nosuch_app, which {host} does not have"
        )),
        "{}",
        out.stderr
    );
    check(&format!(
        "otp_app needs the application nosuch_app, which {host} does not have"
    ));
    std::fs::write(&app, &spec).unwrap();
    assert_no_run_dirs(&sshd, "the refusals");
}

/// The run's directory on the server while `run` sleeps: `mix-remote-run-<pid>-<host tag>-<random>`,
/// 0700, with the demo application's lib dir.
fn the_live_run_dir(sshd: &Sshd) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dirs = sshd.run_dirs();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let dir = dirs[0].clone();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let tag = format!("-{}-", host_tag());
    assert!(name.contains(&tag), "{name}: no {tag}");
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", dir.display());
    let ebin = dir.join("lib/demo/ebin");
    assert!(ebin.join("demo.app").is_file() && ebin.join("Elixir.Demo.Worker.beam").is_file());
    dir
}

#[test]
fn no_directory_of_a_run_remains_on_the_server_however_the_run_ends() {
    let sshd = Sshd::start();
    let out = run(&sshd, &["Demo.Worker.process", "--", "42", "\"batch-7\""]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_no_run_dirs(&sshd, "a success");
    let out = run(&sshd, &["Demo.Worker.fail", "--", "\"bad input\""]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_no_run_dirs(&sshd, "a raise");
    let out = run(&sshd, &["--call-timeout", "1", "Demo.Worker.sleep_forever"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert_no_run_dirs(&sshd, "a timeout");

    for (how, code) in [("INT", Some(130)), ("KILL", None)] {
        let child = start_sleeper(&sshd);
        the_live_run_dir(&sshd);
        child.signal(how);
        assert_eq!(child.finish().code, code);
        sshd.assert_no_session_processes();
        assert_no_run_dirs(&sshd, &format!("SIG{how} to the tool"));
    }

    let child = start_sleeper(&sshd);
    let connections: Vec<u32> = sshd.connection_processes().iter().map(|p| p.pid).collect();
    testkit::signal("KILL", &connections);
    assert_eq!(child.finish().code, Some(3));
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "a dropped connection");

    // A node killed outright: the shell it started as it made its directory removes it.
    let child = start_sleeper(&sshd);
    the_live_run_dir(&sshd);
    testkit::signal("KILL", &remote_nodes(&sshd));
    assert_eq!(child.finish().code, Some(3));
    sshd.assert_no_session_processes();
    assert_no_run_dirs(&sshd, "SIGKILL to the node");

    // Killed together with that shell, it cannot clean up: `check` counts what it left, the next
    // run removes it.
    let child = start_sleeper(&sshd);
    let left = the_live_run_dir(&sshd);
    kill_with_its_shell(&sshd);
    assert_eq!(child.finish().code, Some(3));
    sshd.assert_no_session_processes();
    assert_eq!(sshd.run_dirs(), [left]);
    assert_eq!(stale_runs_counted_then_swept(&sshd), 1);
}

/// With the directory a killed node left on the server: how many such `check` counts; the next
/// run, which it checks, removes them.
fn stale_runs_counted_then_swept(sshd: &Sshd) -> u64 {
    let count = stale_runs_checked(sshd, &[]);
    let out = run(sshd, &["Demo.Worker.process", "--", "1", "\"again\""]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_no_run_dirs(sshd, "the run after a killed node");
    count
}

/// How many directories of killed runs `check` (with `args` before its own) counts on `sshd`.
fn stale_runs_checked(sshd: &Sshd, args: &[&OsStr]) -> u64 {
    let row = check_row(sshd, args);
    assert_eq!(row["ready"], true, "{row}");
    row["stale_runs"].as_u64().expect("a count of stale runs")
}

/// This machine's tag in the names of its runs' directories (templates/run_dirs.exs): its host
/// name hashed, as the server's Erlang hashes it.
fn host_tag() -> String {
    let code = "io:format(\"~8.16.0b\", [erlang:phash2(inet_db:gethostname(), 1 bsl 32)]), halt().";
    let out = Command::new("erl")
        .args(["-noshell", "-eval", code])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn check_counts_stale_runs_where_remote_env_puts_runs() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    // Left by a run on this machine, by one from before runs tagged their directories with
    // their machine's, and by a run on another machine sharing the directory (whose pid means
    // nothing here): only the first two are stale.
    let ours = host_tag();
    let theirs = if ours == "00000000" {
        "00000001"
    } else {
        "00000000"
    };
    for tagged in [format!("-{ours}"), String::new(), format!("-{theirs}")] {
        let name = format!("mix-remote-run-{}{tagged}-0abc", gone.id());
        std::fs::create_dir(tmp.path().join(name)).unwrap();
    }
    let config = remote_env_config(&[("TMPDIR", tmp.path().display().to_string())]);
    let file = config.path().join("mix-remote.yaml");
    let args = [OsStr::new("--config"), file.as_os_str()];
    assert_eq!(stale_runs_checked(&sshd, &args), 2);
    assert_eq!(stale_runs_checked(&sshd, &[]), 0);
    sshd.assert_no_session_processes();
}

/// Kills (SIGKILL) the remote nodes of `sshd`'s sessions and, first, the shells each started to
/// remove its run's directory once it is gone (templates/boot.exs, `sweeper`): nothing is
/// left to clean up after them.
fn kill_with_its_shell(sshd: &Sshd) {
    let shells = || -> Vec<u32> {
        sshd.session_processes()
            .iter()
            .filter(|p| p.cmdline.contains("while IFS= read -r p; do rm -rf"))
            .map(|p| p.pid)
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while shells().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let shells = shells();
    assert!(
        !shells.is_empty(),
        "no sweeping shell among {:?}",
        sshd.session_processes()
    );
    testkit::signal("KILL", &shells);
    testkit::signal("KILL", &remote_nodes(sshd));
}

/// The OS processes of the remote nodes of `sshd`'s sessions.
fn remote_nodes(sshd: &Sshd) -> Vec<u32> {
    sshd.session_processes()
        .iter()
        .filter(|p| p.cmdline.contains("beam"))
        .map(|p| p.pid)
        .collect()
}

#[test]
fn without_a_tmpdir_runs_keep_their_directories_in_the_login_runtime_dir() {
    let sshd = Sshd::builder().login_runtime_dir().start();
    let runtime = sshd.runtime_dir().expect("a runtime dir").to_owned();
    let child = start_sleeper(&sshd);
    let left = the_live_run_dir(&sshd);
    assert_eq!(left.parent(), Some(runtime.as_path()));
    kill_with_its_shell(&sshd);
    assert_eq!(child.finish().code, Some(3));
    sshd.assert_no_session_processes();
    assert_eq!(sshd.run_dirs(), [left]);
    // Releases before the runtime directory put theirs in /tmp: a killed one's is counted and
    // removed too (beside any other stale ones there). Runs of this test at once would sweep
    // each other's: they take turns.
    let turn = std::env::temp_dir().join("mix-remote-test-old-runs.lock");
    let turn = std::fs::File::create(turn).unwrap();
    turn.lock().unwrap();
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let old = PathBuf::from(format!("/tmp/mix-remote-run-{}-01d0ff", gone.id()));
    std::fs::create_dir(&old).unwrap();
    let checked = std::panic::catch_unwind(|| stale_runs_counted_then_swept(&sshd));
    let swept = !old.exists();
    let _ = std::fs::remove_dir(&old);
    let counted = checked.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert!(
        counted >= 2 && swept,
        "{counted} counted; {} swept: {swept}",
        old.display()
    );
}

/// What `templates/run_dirs.exs` makes of `expr`, evaluated by this machine's `elixir` with
/// `env` as the only temporary-directory variables and `mountinfo` read in place of
/// /proc/self/mountinfo: the value, inspected.
fn run_dirs_say(expr: &str, env: &[(&str, &Path)], mountinfo: &Path) -> String {
    let program = include_str!("../templates/run_dirs.exs")
        .replace("/proc/self/mountinfo", &mountinfo.display().to_string());
    let mut elixir = Command::new("elixir");
    elixir.arg("-e").arg(format!(
        "{program}\n_ = {{stale_runs, run_places}}\nIO.inspect({expr})"
    ));
    for var in ["TMPDIR", "TEMP", "TMP", "XDG_RUNTIME_DIR"] {
        elixir.env_remove(var);
    }
    let out = elixir.envs(env.iter().copied()).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `text` as an Elixir string literal.
fn elixir_string(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}

/// The `major:minor` mountinfo gives the device of `st_dev`.
fn device_numbers(st_dev: u64) -> String {
    format!("{}:{}", libc::major(st_dev), libc::minor(st_dev))
}

#[test]
fn runs_put_their_directories_in_tmpdir_else_an_exec_mountable_runtime_dir_else_tmp() {
    use std::os::unix::fs::MetadataExt;
    let (set, runtime) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let missing = set.path().join("missing");
    let mountinfo = set.path().join("mountinfo");
    let device = device_numbers(std::fs::metadata(runtime.path()).unwrap().dev());
    let mounted = |numbers: &str, options: &str| {
        let line = format!("27 1 {numbers} / / {options} - ext4 /dev/vda rw\n");
        std::fs::write(&mountinfo, line).unwrap();
    };
    let said = |dir: &Path| format!("{:?}", dir.display().to_string());
    let tmp_dir = |env: &[(&str, &Path)]| run_dirs_say("tmp_dir.()", env, &mountinfo);
    mounted(&device, "rw,relatime");
    let both = [("TMPDIR", set.path()), ("XDG_RUNTIME_DIR", runtime.path())];
    assert_eq!(tmp_dir(&both), said(set.path()));
    assert_eq!(tmp_dir(&both[1..]), said(runtime.path()));
    let gone = [("TMPDIR", &*missing), ("XDG_RUNTIME_DIR", runtime.path())];
    assert_eq!(tmp_dir(&gone), said(runtime.path()));
    assert_eq!(tmp_dir(&[("XDG_RUNTIME_DIR", &missing)]), "\"/tmp\"");
    // A runtime directory a NIF could not be mapped from, or whose mount cannot be told.
    mounted(&device, "rw,noexec,relatime");
    assert_eq!(tmp_dir(&both[1..]), "\"/tmp\"");
    mounted("1:2345", "rw,relatime");
    assert_eq!(tmp_dir(&both[1..]), "\"/tmp\"");

    // Mount points as mountinfo lists them, escaped; the upper of two on one point listed first.
    let table = r"27 1 8:1 / / rw,relatime - ext4 /dev/vda rw
30 27 0:25 / /run/user/1000 rw,nosuid,nodev,relatime shared:5 - tmpfs tmpfs rw,mode=700
31 27 0:26 / /run/user/10 rw,nosuid,nodev,noexec - tmpfs tmpfs rw
33 32 0:28 / /dev/shm rw,nosuid,nodev shared:7 - tmpfs tmpfs rw
32 24 0:27 / /dev/shm rw,nosuid,nodev,noexec shared:6 - tmpfs tmpfs rw
34 27 0:29 / /mnt/a\040b rw,noexec - tmpfs tmpfs rw";
    let dev = libc::makedev;
    let cases = [
        ("/run/user/1000", dev(0, 25), false),
        ("/run/user/10", dev(0, 26), true),
        ("/run/user/10/mix-remote-run-1-a", dev(0, 26), true),
        ("/run/user/100", dev(8, 1), false),
        ("/dev/shm/x", dev(0, 28), false),
        ("/mnt/a b", dev(0, 29), true),
        ("/var/run/user/1000", dev(0, 25), true),
        ("/home/deploy", dev(8, 1), false),
    ];
    for (dir, st_dev, noexec) in cases {
        let text = elixir_string(table);
        let expr = format!("noexec.(~c{}, {st_dev}, {text})", elixir_string(dir));
        assert_eq!(
            run_dirs_say(&expr, &[], &mountinfo),
            noexec.to_string(),
            "{dir}"
        );
    }
    let unknown = "noexec.(~c\"/run/user/10\", 26, \"\")";
    assert_eq!(run_dirs_say(unknown, &[], &mountinfo), "false");
}
