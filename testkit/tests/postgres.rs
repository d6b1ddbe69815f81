//! Tests of the PostgreSQL harness, against the real server.

use testkit::Postgres;

/// True if `pid` is alive (not a zombie).
fn is_living(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// The pids whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(child) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .nth(1);
        if ppid == Some(pid.to_string().as_str()) {
            found.push(child);
        }
    }
    found
}

/// The effective uid of `pid`.
fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn runs_sql_as_a_non_root_user_and_leaves_nothing_behind() {
    let pg = Postgres::start();
    let pid = pg.pid();
    assert_ne!(uid_of(pid), 0, "postgres runs as root");
    let dir = pg.dir().to_path_buf();
    let workers = children_of(pid);
    assert!(!workers.is_empty(), "no server processes under {pid}");

    pg.psql(
        "CREATE TABLE t (id int PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a'), (2, NULL);",
    );
    assert_eq!(
        pg.rows("SELECT id, name, current_user, current_database() FROM t ORDER BY id"),
        [
            ["1", "a", pg.user(), pg.database()],
            ["2", "", pg.user(), pg.database()]
        ]
    );

    // libpq reaches the same database through the variables the fixtures read.
    let out = pg
        .psql_command()
        .arg("-c")
        .arg("SELECT count(*) FROM t")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "2\n", "{out:?}");

    let error = std::panic::catch_unwind(|| pg.psql("SELECT * FROM no_such_table")).unwrap_err();
    let message = error.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("no_such_table"), "{message}");

    drop(pg);
    assert!(!dir.exists(), "{} remains", dir.display());
    let left: Vec<u32> = workers
        .into_iter()
        .chain([pid])
        .filter(|&p| is_living(p))
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
}

#[test]
fn two_servers_at_once_are_separate() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Postgres::start);
        let b = s.spawn(Postgres::start);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_ne!(a.port(), b.port());
    a.psql("CREATE TABLE only_in_a (x int)");
    assert_eq!(b.rows("SELECT to_regclass('only_in_a') IS NULL"), [["t"]]);
}

#[test]
fn a_panicking_test_with_a_busy_session_still_cleans_up() {
    let mut seen = (0, Vec::new(), std::path::PathBuf::new());
    let mut client = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pg = Postgres::start();
        client = Some(
            pg.psql_command()
                .args(["-c", "SELECT pg_sleep(60)"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        let busy = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%'";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pg.rows(busy) != [["1"]] {
            assert!(
                std::time::Instant::now() < deadline,
                "the session never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        seen = (pg.pid(), children_of(pg.pid()), pg.dir().to_path_buf());
        panic!("test failure");
    }));
    assert!(result.is_err());
    let (pid, workers, dir) = seen;
    assert!(!dir.exists(), "{} remains", dir.display());
    let left: Vec<u32> = workers
        .into_iter()
        .chain([pid])
        .filter(|&p| is_living(p))
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");
    // The server went away under the client: it ends on its own.
    let status = client.unwrap().wait().unwrap();
    assert!(!status.success());
}
