//! The preflight's rules against the real loaders: every `.beam` that OTP 25 (the host), OTP 27
//! (trixie chroot) and OTP 29 (sid chroot) ship, with their Elixir, is offered to each of the
//! three runtimes the way the push offers it, and the preflight must predict every verdict.
//! The loader's own `-on_load` flag must also match what the Code chunk walk found.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mix_remote::build::beam;
use mix_remote::build::compat::{self, Built, RemoteVersions};
use testkit::Chroot;

/// What each runtime does with every listed file: `erlang:prepare_loading/2` (the check of
/// `code:atomic_load/1`); for prepared code with `-on_load`, which the push loads with
/// `code:load_binary/3`, also that function's feature check where the release exports it.
/// Prints one line per file: `ok true|false` (the loader's own on_load flag) or `refused`.
const ORACLE: &str = r#"
logger:set_primary_config(level, none),
[List] = init:get_plain_arguments(),
{ok, Data} = file:read_file(List),
code:ensure_loaded(erl_features),
Features = erlang:function_exported(erl_features, load_allowed, 1),
Verdict = fun(Path) ->
    {ok, Bin} = file:read_file(Path),
    Module = binary_to_atom(filename:basename(Path, <<".beam">>)),
    case erlang:prepare_loading(Module, Bin) of
        {error, _} -> "refused";
        Prepared ->
            OnLoad = erlang:has_prepared_code_on_load(Prepared),
            case OnLoad andalso Features andalso erl_features:load_allowed(Bin) =/= ok of
                true -> "refused";
                false -> io_lib:format("ok ~p", [OnLoad])
            end
    end
end,
[io:format("~s~n", [Verdict(P)]) || P <- binary:split(Data, <<"\n">>, [global, trim])],
halt().
"#;

/// A release's beams: OTP's and Elixir's ebin directories under `root`.
fn corpus(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for lib in ["usr/lib/erlang/lib", "usr/lib/elixir/lib"] {
        for app in fs::read_dir(root.join(lib)).expect("lib dir").flatten() {
            let Ok(ebin) = fs::read_dir(app.path().join("ebin")) else {
                continue;
            };
            files.extend(
                ebin.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "beam")),
            );
        }
    }
    files.sort();
    files
}

/// A runtime to ask: where its filesystem starts and how to run its `erl`.
struct Runtime<'a> {
    root: &'a Path,
    otp_release: String,
    erl: Box<dyn Fn() -> Command + 'a>,
}

/// Asks `runtime` about `files` (host paths); copies into its /tmp what it cannot see.
fn verdicts(runtime: &Runtime, files: &[PathBuf]) -> Vec<String> {
    let staging = tempfile::Builder::new()
        .prefix("mix-remote-loader-")
        .tempdir_in(runtime.root.join("tmp"))
        .expect("staging dir");
    let mut list = String::new();
    for (i, file) in files.iter().enumerate() {
        let inside = match file.strip_prefix(runtime.root) {
            Ok(inside) if runtime.root != Path::new("/") => Path::new("/").join(inside),
            Ok(_) => file.clone(),
            Err(_) => {
                let dir = staging.path().join(i.to_string());
                fs::create_dir(&dir).expect("staging");
                let copy = dir.join(file.file_name().expect("file name"));
                fs::copy(file, &copy).expect("copy a beam");
                Path::new("/").join(copy.strip_prefix(runtime.root).expect("in root"))
            }
        };
        list.push_str(&inside.to_string_lossy());
        list.push('\n');
    }
    let list_file = staging.path().join("list");
    fs::write(&list_file, list).expect("list");
    let list_inside = Path::new("/").join(list_file.strip_prefix(runtime.root).expect("in root"));
    let out = (runtime.erl)()
        .args(["-noshell", "-eval", ORACLE, "-extra"])
        .arg(&list_inside)
        .env("ERL_CRASH_DUMP_BYTES", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run erl");
    assert!(
        out.status.success(),
        "erl of OTP {} failed: {}",
        runtime.otp_release,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_preflight_predicts_every_verdict_of_the_otp_25_27_and_29_loaders() {
    let (Some(trixie), Some(sid)) = (Chroot::open("trixie"), Chroot::open("sid")) else {
        return;
    };
    let host_otp = String::from_utf8(
        Command::new("erl")
            .args(["-noshell", "-eval"])
            .arg("io:put_chars(erlang:system_info(otp_release)), halt().")
            .output()
            .expect("run erl")
            .stdout,
    )
    .expect("utf-8");
    let runtimes = [
        Runtime {
            root: Path::new("/"),
            otp_release: host_otp,
            erl: Box::new(|| Command::new("erl")),
        },
        Runtime {
            root: trixie.root(),
            otp_release: trixie.otp_release().to_owned(),
            erl: Box::new(|| trixie.command("erl")),
        },
        Runtime {
            root: sid.root(),
            otp_release: sid.otp_release().to_owned(),
            erl: Box::new(|| sid.command("erl")),
        },
    ];
    let files: Vec<PathBuf> = runtimes.iter().flat_map(|r| corpus(r.root)).collect();
    let beams: Vec<beam::Beam> = files
        .iter()
        .map(|f| beam::read(f).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let mut wrong = Vec::new();
    let mut refused = 0;
    for runtime in &runtimes {
        let remote = RemoteVersions {
            otp_release: runtime.otp_release.clone(),
            erts: String::new(),
            elixir: "unused".into(),
        };
        let verdicts = verdicts(runtime, &files);
        assert_eq!(verdicts.len(), files.len(), "OTP {}", runtime.otp_release);
        for ((file, beam), verdict) in files.iter().zip(&beams).zip(&verdicts) {
            let predicted = compat::preflight(&[beam], &Built::default(), &remote);
            let agrees = match verdict.as_str() {
                "refused" => predicted.is_err(),
                "ok true" => predicted.is_ok() && beam.on_load,
                "ok false" => predicted.is_ok() && !beam.on_load,
                other => panic!("unexpected oracle line {other:?}"),
            };
            refused += usize::from(verdict == "refused");
            if !agrees {
                wrong.push(format!(
                    "OTP {}: {} said {verdict}, predicted {predicted:?} (on_load {})",
                    runtime.otp_release,
                    file.display(),
                    beam.on_load
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} verdicts mispredicted:\n{}",
        wrong.len(),
        files.len() * runtimes.len(),
        wrong.join("\n")
    );
    // The comparison means something only if both verdicts occur.
    assert!(refused > 0 && refused < files.len() * runtimes.len());
}
