//! The closure of real Mix projects: what the reader and the graph see in compiled code, what
//! `plan` and `graph` print, and each closure case run remotely giving what `mix run` gives locally.

use std::path::Path;
use std::process::Command;

use mix_remote::build::beam;
use testkit::{MixRemote, Output, Sshd};

/// mix-remote in `project` with `args`.
fn tool(project: &Path, args: &[&str]) -> MixRemote {
    let mut tool = testkit::mix_remote(project);
    tool.args(args);
    tool
}

/// `mix-remote -q run ENTRY EXTRA -- ARGS` in `project` against `sshd`.
fn run_remote(sshd: &Sshd, project: &Path, entry: &str, extra: &[&str], args: &[&str]) -> Output {
    testkit::mix_remote(project)
        .arg("-q")
        .run_on(sshd)
        .arg(entry)
        .args(extra)
        .arg("--")
        .args(args)
        .run()
}

/// What `mix run` prints for the same call, inspected the way mix-remote prints results.
fn run_locally(project: &Path, entry: &str, args: &[&str]) -> String {
    let (module, function) = entry.rsplit_once('.').expect("entry");
    let code = format!(
        "IO.puts(inspect(apply({module}, :{function}, [{}]), limit: :infinity, printable_limit: :infinity))",
        args.join(", ")
    );
    let mut cmd = Command::new("mix");
    cmd.args(["run", "--no-compile", "-e", &code])
        .current_dir(project)
        .env("MIX_ENV", "dev");
    let out = testkit::run_within(cmd, testkit::RUN_LIMIT);
    assert_eq!(out.code, Some(0), "mix run {entry}: {}", out.stderr);
    out.stdout
}

#[test]
fn reader_sees_literals_behaviours_impls_and_protocols() {
    let project = testkit::compiled_fixture("closure");
    let ebin = project.join("_build/dev/lib/closure/ebin");
    let read = |m: &str| beam::read(&ebin.join(format!("{m}.beam"))).unwrap();

    let pipeline = read("Elixir.Closure.Pipeline");
    assert!(
        pipeline
            .literal_atoms
            .contains(&"Elixir.Closure.Plugins.Exclaim".to_owned())
    );
    assert!(pipeline.imports.contains(&"Elixir.Enum".to_owned()));

    let upcase = read("Elixir.Closure.Plugins.Upcase");
    assert_eq!(upcase.behaviours, ["Elixir.Closure.Plugin"]);

    let circle_impl = read("Elixir.Closure.Shape.Closure.Circle");
    let implements = circle_impl.implements.unwrap();
    assert_eq!(implements.protocol, "Elixir.Closure.Shape");
    assert_eq!(implements.for_type, "Elixir.Closure.Circle");

    assert!(read("Elixir.Closure.Shape").is_protocol);
    assert!(!read("Elixir.Closure.Circle").is_protocol);
    let version = read("Elixir.Closure.Jobs").compiler_version.unwrap();
    assert!(
        version.starts_with(|c: char| c.is_ascii_digit()),
        "{version}"
    );
}

/// The modules `plan --json` lists for an entry, with the reason of each.
fn planned(project: &Path, entry: &str, extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["plan", entry, "--json"];
    args.extend(extra);
    let out = tool(project, &args).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let events: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let last = events.last().expect("a plan event");
    assert_eq!(last["event"], "plan");
    let modules: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "module")
        .map(|e| {
            (
                e["module"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(last["modules"], modules.len());
    modules
}

fn names(list: &[(String, String)]) -> Vec<&str> {
    list.iter().map(|(m, _)| m.as_str()).collect()
}

fn reason(list: &[(String, String)], module: &str) -> String {
    let found = list.iter().find(|(m, _)| m == module);
    found
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| panic!("{module} not planned: {list:?}"))
}

#[test]
fn plan_pulls_in_exactly_what_each_entry_needs_and_says_why() {
    let project = testkit::compiled_fixture("closure");

    // Plugins named only in literal data, and the behaviour they declare; leaves first.
    let pipeline = planned(&project, "Closure.Pipeline.run", &[]);
    assert_eq!(
        names(&pipeline),
        [
            "Closure.Plugin",
            "Closure.Plugins.Reverse",
            "Closure.Plugins.Upcase",
            "Closure.Plugins.Exclaim",
            "Closure.Pipeline"
        ]
    );
    assert_eq!(reason(&pipeline, "Closure.Plugins.Exclaim"), "literal");
    assert_eq!(reason(&pipeline, "Closure.Plugin"), "behaviour");
    assert_eq!(reason(&pipeline, "Closure.Pipeline"), "entry");

    // A struct brings its implementations of Elixir's protocols (derived and written).
    let money = planned(&project, "Closure.Money.new", &[]);
    assert_eq!(
        names(&money),
        [
            "Closure.Money",
            "Inspect.Closure.Money",
            "String.Chars.Closure.Money"
        ]
    );
    assert_eq!(
        reason(&money, "String.Chars.Closure.Money"),
        "struct_implementation"
    );

    // A project protocol (consolidated) brings all its implementations and their structs.
    let shapes = planned(&project, "Closure.Shape.area", &[]);
    let mut shape_names = names(&shapes);
    shape_names.sort_unstable();
    assert_eq!(
        shape_names,
        [
            "Closure.Circle",
            "Closure.Shape",
            "Closure.Shape.Closure.Circle",
            "Closure.Shape.Closure.Square",
            "Closure.Shape.Integer",
            "Closure.Square"
        ]
    );
    // The consolidated protocol's own code names every implementation it dispatches to.
    assert_eq!(reason(&shapes, "Closure.Shape.Integer"), "names");

    // Mutual recursion: one component, both modules.
    let parity = planned(&project, "Closure.Even.even?", &[]);
    assert_eq!(names(&parity), ["Closure.Even", "Closure.Odd"]);

    // Erlang calling Elixir, the path dependency, the on_load module: all from the entry module.
    let jobs = planned(&project, "Closure.Jobs.parity", &[]);
    for m in [
        ":closure_erl",
        ":closure_onload",
        "Pathdep.Greeter",
        "Closure.Even",
    ] {
        assert!(names(&jobs).contains(&m), "{m} missing from {jobs:?}");
    }
    assert!(!names(&jobs).contains(&"Closure.Notifiers.Log"), "{jobs:?}");
    let position = |m: &str| names(&jobs).iter().position(|n| *n == m).unwrap();
    let on_load = tool(&project, &["plan", "Closure.Jobs.parity"]).run();
    let marked: Vec<&str> = on_load
        .stdout
        .lines()
        .filter(|l| l.contains("[-on_load"))
        .collect();
    assert_eq!(marked.len(), 1, "{}", on_load.stdout);
    assert!(marked[0].contains(":closure_onload"), "{}", on_load.stdout);
    assert!(position("Closure.Odd") < position(":closure_erl"));
    assert!(position(":closure_erl") < position("Closure.Jobs"));

    let included = planned(
        &project,
        "Closure.Jobs.notify",
        &["--include", "Closure.Notifiers.Log"],
    );
    assert_eq!(reason(&included, "Closure.Notifiers.Log"), "include");
}

#[test]
fn plan_and_graph_of_a_script_show_what_run_pushes_for_it() {
    let project = testkit::compiled_fixture("closure");
    let dir = tempfile::tempdir().expect("temporary directory");
    let script = dir.path().join("pipeline.exs");
    std::fs::write(&script, "IO.puts(Closure.Pipeline.run(\"hi\"))\n").expect("write a script");
    let script = script.to_str().expect("a UTF-8 path");

    // The modules the script names, and their closure: those of the function it calls.
    let planned_script = planned(&project, script, &["--no-compile"]);
    let planned_entry = planned(&project, "Closure.Pipeline.run", &["--no-compile"]);
    assert_eq!(names(&planned_script), names(&planned_entry));
    assert_eq!(reason(&planned_script, "Closure.Pipeline"), "code");
    let out = tool(&project, &["plan", script, "--no-compile"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with(&format!("Push order for {script} (leaves first"))
            && out
                .stdout
                .lines()
                .any(|l| l.contains("Closure.Pipeline") && l.ends_with("named by the script")),
        "{}",
        out.stdout
    );

    let out = tool(&project, &["graph", script, "--format", "json"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let graph: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON object");
    let mut nodes: Vec<&str> = graph["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["module"].as_str().expect("a module"))
        .collect();
    nodes.sort();
    let mut expected = names(&planned_script);
    expected.sort();
    assert_eq!(nodes, expected);

    // A script that names none of the project's modules pushes none.
    let none = dir.path().join("none.exs");
    std::fs::write(&none, "IO.puts(:hi)\n").expect("write a script");
    let out = tool(&project, &["plan", none.to_str().unwrap(), "--no-compile"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("Total: 0 of the project's ") && l.ends_with(" 0.0 KiB")),
        "{}",
        out.stdout
    );

    // A script that is not there is bad input, for both, as for `run`.
    for command in ["plan", "graph"] {
        let out = tool(&project, &[command, "missing.exs"]).run();
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (
                Some(2),
                "mix-remote: error: cannot read script missing.exs: No such file or directory\n"
            ),
            "{command}"
        );
    }
}

#[test]
fn plan_and_graph_reject_bad_input_in_one_line() {
    let project = testkit::compiled_fixture("closure");
    for (args, needle) in [
        (
            vec!["plan", "Closure.Jobs.nope"],
            "Closure.Jobs.nope is not exported by Closure.Jobs",
        ),
        (
            vec!["plan", "Closure.Nope.run"],
            "module Closure.Nope is not in this project",
        ),
        (
            vec!["plan", "Closure.Jobs.shapes", "--include", "Closure.Ghost"],
            "--include Closure.Ghost",
        ),
        (
            vec!["plan", "Closure.Jobs.shapes", "--include", "lower.case"],
            "--include lower.case",
        ),
        (vec!["graph", "--env", "nosuchenv"], "no compiled build"),
    ] {
        let out = tool(&project, &args).run();
        assert_eq!(out.code, Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn graph_renders_with_graphviz_and_as_json() {
    let project = testkit::compiled_fixture("umbrella");
    let out = tool(&project, &["graph", "--format", "json"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let graph: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let edge = |from: &str, to: &str| {
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == from && e["to"] == to)
    };
    assert!(edge("Core.Describe", "Core.Describe.Jobs.Task"), "{graph}");
    assert!(edge("Jobs.Task", "Core.Describe.Jobs.Task"), "{graph}");

    let dot = tool(&project, &["graph", "Jobs.Runner.describe_all"]).run();
    assert_eq!(dot.code, Some(0), "{}", dot.stderr);
    assert!(dot.stdout.starts_with("// mix-remote module graph"));
    let has_graphviz = Command::new("dot").arg("-V").output().is_ok();
    if !has_graphviz {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install graphviz for this test"
        );
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &dot.stdout).unwrap();
    let mut render = Command::new("dot");
    render.arg("-Tsvg").arg(file.path());
    let svg = testkit::run_within(render, testkit::RUN_LIMIT);
    assert_eq!(svg.code, Some(0), "{}", svg.stderr);
    assert_eq!(svg.stderr, "", "dot warned");
    assert!(svg.stdout.contains("Jobs.Runner"));
}

#[test]
fn every_closure_case_runs_remotely_as_under_mix_run() {
    let sshd = Sshd::start();
    let closure = testkit::compiled_fixture("closure");
    let umbrella = testkit::compiled_fixture("umbrella");
    let cases: [(&Path, &str, &[&str], &[&str]); 9] = [
        (&closure, "Closure.Jobs.shapes", &[], &[]),
        (&closure, "Closure.Jobs.money", &[], &["1234"]),
        (&closure, "Closure.Jobs.pipeline", &[], &["\"abc\""]),
        // Named only in config: loaded on demand from the shipped lib dir, or pushed at once.
        (&closure, "Closure.Jobs.notify", &[], &["\"hi\""]),
        (
            &closure,
            "Closure.Jobs.notify",
            &["--include", "Closure.Notifiers.Log"],
            &["\"hi\""],
        ),
        (
            &closure,
            "Closure.Jobs.notify_build",
            &["--include", "Builddep.Notifier"],
            &["\"hi\""],
        ),
        (&closure, "Closure.Jobs.parity", &[], &["11"]),
        (&closure, "Closure.Jobs.loaded_state", &[], &[]),
        (&umbrella, "Jobs.Runner.describe_all", &[], &["3"]),
    ];
    for (project, entry, extra, args) in cases {
        let remote = run_remote(&sshd, project, entry, extra, args);
        assert_eq!(remote.code, Some(0), "{entry}: {}", remote.stderr);
        assert_eq!(remote.stdout, run_locally(project, entry, args), "{entry}");
    }
    sshd.assert_no_session_processes();
}

#[test]
fn a_module_of_a_build_only_dependency_named_only_in_config_needs_include_and_the_error_says_so() {
    let sshd = Sshd::start();
    let project = testkit::compiled_fixture("closure");
    let out = run_remote(
        &sshd,
        &project,
        "Closure.Jobs.notify_build",
        &[],
        &["\"hi\""],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("UndefinedFunctionError"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "hint: Builddep.Notifier is in this project's _build but was not pushed: its \
             application builddep is not one the project's applications need"
        ) && out.stderr.contains("add --include Builddep.Notifier"),
        "{}",
        out.stderr
    );
    // Without the project's config/ files nothing names the notifier any more.
    let out = run_remote(
        &sshd,
        &project,
        "Closure.Jobs.notify",
        &["--no-app-config"],
        &["\"hi\""],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("could not fetch application environment :notifier"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hint:"), "{}", out.stderr);
    sshd.assert_no_session_processes();
}

#[test]
fn what_an_earlier_build_left_in_build_is_not_the_projects() {
    // The application's directory under its old name stays in `_build` with the same modules
    // (Mix removes neither it nor a removed dependency's): `mix run` does not see it.
    let staged = testkit::staged_fixture("demo", "dev");
    let lib = staged.path().join("_build/dev/lib");
    let old = lib.join("old_demo/ebin");
    std::fs::create_dir_all(&old).unwrap();
    for file in std::fs::read_dir(lib.join("demo/ebin")).unwrap() {
        let file = file.unwrap();
        let name = file
            .file_name()
            .to_string_lossy()
            .replace("demo.app", "old_demo.app");
        std::fs::copy(file.path(), old.join(name)).unwrap();
    }
    let spec = std::fs::read_to_string(old.join("old_demo.app")).unwrap();
    std::fs::write(
        old.join("old_demo.app"),
        spec.replace("{application,demo,", "{application,old_demo,"),
    )
    .unwrap();
    let out = tool(
        staged.path(),
        &["plan", "Demo.Worker.process", "--no-compile", "-v"],
    )
    .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("left out _build/dev/lib/old_demo: not on the project's code path"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("old_demo"), "{}", out.stdout);
}

#[test]
fn plan_says_which_applications_ship_and_which_the_server_must_have() {
    let project = testkit::compiled_fixture("closure");
    let out = tool(&project, &["plan", "Closure.Jobs.shapes", "--no-compile"]).run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().rev().take(3).collect();
    assert!(
        lines[2].starts_with("Ships 2 applications: closure (")
            && lines[2].contains("pathdep (1 module, "),
        "{}",
        out.stdout
    );
    assert_eq!(lines[1], "The server must have: kernel, stdlib, elixir");
    // Elixir's own protocols, consolidated by Mix with the project's, travel with the call: not
    // the project's Closure.Shape, which is pushed in the closure.
    let protocols = "Collectable, Enumerable, IEx.Info, Inspect, List.Chars, String.Chars";
    let (elixir, rest) = lines[0]
        .strip_prefix("With the call, where the server runs Elixir ")
        .and_then(|rest| rest.split_once(": "))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        rest.starts_with(&format!("Elixir's protocols consolidated ({protocols}), ")),
        "{}",
        out.stdout
    );
    let out = tool(
        &project,
        &["plan", "Closure.Jobs.shapes", "--no-compile", "--json"],
    )
    .run();
    let last: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().expect("a plan event")).unwrap();
    let shipped: Vec<&str> = last["shipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["app"].as_str().unwrap())
        .collect();
    assert_eq!(shipped, ["closure", "pathdep"]);
    assert_eq!(
        last["from_server"],
        serde_json::json!(["kernel", "stdlib", "elixir"])
    );
    assert_eq!(last["protocols"]["elixir"], elixir);
    assert_eq!(
        last["protocols"]["modules"],
        serde_json::json!(protocols.split(", ").collect::<Vec<_>>())
    );
}
