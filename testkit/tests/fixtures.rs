//! The fixtures of issue 11 under `mix run`, as the end-to-end tests use them for reference: an
//! OTP application with a NIF, an umbrella whose apps start each other, and an Ecto data fix
//! against the harness's PostgreSQL.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use testkit::Postgres;

const LIMIT: Duration = Duration::from_secs(300);

/// [`testkit::mix_run`], which must succeed: its stdout.
fn mix_run(project: &Path, env: &str, start: bool, code: &str, vars: &[(&str, String)]) -> String {
    let out = testkit::mix_run(project, env, start, code, vars);
    assert_eq!(
        out.code,
        Some(0),
        "mix run {code}: {}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

#[test]
fn otp_app_starts_its_tree_reads_priv_loads_its_nif_and_logs_at_the_prod_level() {
    let project = testkit::compiled_fixture_in("otp_app", "prod");
    assert!(
        project
            .join("_build/prod/lib/otp_app/priv/otp_app_nif.so")
            .is_file()
    );
    let run = |start, code: &str| {
        mix_run(
            &project,
            "prod",
            start,
            code,
            &[("OTP_APP_RUNTIME", "here".into())],
        )
    };
    assert_eq!(
        run(true, r#"IO.inspect(OtpApp.Jobs.tree("ann", 2))"#),
        "%{count: 42, greeting: \"hi, ann\"}\n"
    );
    assert_eq!(
        run(true, "IO.inspect(OtpApp.Jobs.env())"),
        "[\n  from_runtime: \"here\",\n  greeting: \"hi\",\n  initial_count: 40,\n  limit: 10,\n  mode: :prod\n]\n"
    );
    assert_eq!(
        run(false, "IO.inspect(OtpApp.Jobs.nif(2, 3))"),
        "\"5 from C\"\n"
    );
    assert_eq!(
        run(false, "IO.inspect(OtpApp.Jobs.priv_data())"),
        "{[{\"apple\", 3}, {\"pear\", 5}, {\"plum\", 7}], 15}\n"
    );
    assert_eq!(
        run(false, "IO.inspect(OtpApp.Jobs.standalone(10))"),
        "%{registry: false, started: false, sum: 55}\n"
    );
    let logged = run(true, r#"OtpApp.Jobs.log("x")"#);
    assert!(
        logged.contains("[info] info x") && !logged.contains("[debug]"),
        "{logged}"
    );
}

#[test]
fn umbrella_start_starts_every_app_in_dependency_order() {
    let project = testkit::compiled_fixture("umbrella_start");
    assert_eq!(
        mix_run(&project, "dev", true, "IO.inspect(Api.Jobs.status())", &[]),
        "%{running: [:store, :api, :audit], store: %{api: \"api from config\", apples: 3}}\n"
    );
    assert_eq!(
        mix_run(&project, "dev", false, "IO.inspect(Api.Jobs.loaded())", &[]),
        "%{label: \"api from config\", loaded: [:store, :api, :audit], running: []}\n"
    );
}

#[test]
fn ecto_fix_backfills_rows_in_postgres_without_debug_logs() {
    if !testkit::vendor_available() {
        return;
    }
    let project = testkit::compiled_fixture_in("ecto_fix", "prod");
    let pg = Postgres::start();
    let vars = pg.env();
    let run = |start, code: &str| mix_run(&project, "prod", start, code, &vars);

    let migrated = run(false, "IO.inspect(EctoFix.Release.migrate())");
    assert!(migrated.ends_with("[20240101000000]\n"), "{migrated}");
    // `mix run --no-start` leaves Mix's own Logger running at :debug: Ecto's query log shows.
    let seeded = run(false, "IO.inspect(EctoFix.Release.seed(250))");
    assert!(
        seeded.contains("[debug] QUERY OK") && seeded.ends_with("\n250\n"),
        "{seeded}"
    );

    let fixed = run(true, "IO.inspect(EctoFix.Jobs.Backfill.run(100))");
    assert_eq!(
        fixed,
        "batch 1: 100 rows (100 so far)\nbatch 2: 100 rows (200 so far)\nbatch 3: 50 rows (250 so far)\n\
         done: 250 rows in 3 batches, 0 left\n%{batches: 3, remaining: 0, updated: 250}\n"
    );
    assert_eq!(
        pg.rows(
            "SELECT count(*), count(DISTINCT email_normalized), min(email_normalized) FROM accounts"
        ),
        [["250", "250", "user100@example.com"]]
    );
}

#[test]
fn a_staged_copy_has_its_own_nif_which_a_test_may_patch() {
    let staged = testkit::staged_fixture("otp_app", "dev");
    let so = staged
        .path()
        .join("_build/dev/lib/otp_app/priv/otp_app_nif.so");
    let original = testkit::compiled_fixture("otp_app").join("priv/otp_app_nif.so");
    assert_eq!(
        so.canonicalize().unwrap(),
        staged
            .path()
            .join("priv/otp_app_nif.so")
            .canonicalize()
            .unwrap()
    );
    // e_machine (offset 18, little-endian) of the copy says aarch64: the loader refuses it.
    let mut elf = std::fs::read(&so).unwrap();
    elf[18..20].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(&so, elf).unwrap();
    let mut cmd = Command::new("mix");
    cmd.args([
        "run",
        "--no-compile",
        "--no-start",
        "-e",
        "OtpApp.Jobs.nif(1, 2)",
    ])
    .current_dir(staged.path())
    .env("MIX_ENV", "dev");
    let out = testkit::run_within(cmd, LIMIT);
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains("on_load"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(
        std::fs::read(&original).unwrap()[18..20],
        62u16.to_le_bytes()
    );
}
