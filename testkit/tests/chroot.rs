//! Tests of the chroot support, against the real chroots (skipped when absent, except in CI).

use std::process::{Command, Stdio};

use testkit::Chroot;

#[test]
fn the_wrapper_runs_the_chroots_elixir_which_resolves_localhost() {
    let Some(trixie) = Chroot::open("trixie") else {
        return;
    };
    let program = "{:ok, _} = :inet.getaddr(~c\"localhost\", :inet); \
                   IO.write(System.otp_release() <> \" \" <> System.version())";
    let out = Command::new(trixie.elixir())
        .args(["-e", program])
        .stdin(Stdio::null())
        .output()
        .expect("run the wrapper");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let here = String::from_utf8(out.stdout).unwrap();
    assert!(
        here.starts_with(&format!("{} ", trixie.otp_release())),
        "{here}"
    );
}

#[test]
fn a_fixture_compiled_in_a_chroot_and_the_wrapper_are_removed_on_drop() {
    let Some(sid) = Chroot::open("sid") else {
        return;
    };
    let project = sid.compiled_fixture("demo");
    let beam = project
        .path()
        .join("_build/dev/lib/demo/ebin/Elixir.Demo.Worker.beam");
    assert!(beam.is_file(), "{} missing", beam.display());
    let (path, wrapper) = (project.path().to_owned(), sid.elixir());
    assert!(
        path.starts_with(sid.root().join("tmp")),
        "{}",
        path.display()
    );
    drop(project);
    assert!(!path.exists(), "{} left behind", path.display());
    assert!(wrapper.is_file());
    drop(sid);
    assert!(!wrapper.exists(), "{} left behind", wrapper.display());
}
