//! sqlx runs each SQLite connection on a thread of its own; waops gives those
//! threads the follow-up threads' nice value (store/mod.rs, `lower_sqlite_threads`).
//! Its own test binary: the check reads every thread of the process.

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_connection_threads_run_at_the_background_nice_value() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = waops::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    // Enough at once that the pool opens more than its first connection.
    let pings: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ping().await.unwrap() })
        })
        .collect();
    for p in pings {
        p.await.unwrap();
    }
    let mut niced = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let name = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !name.starts_with("sqlx-sqlite-wor") {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
        // Field 19 is the nice value; count after the parenthesised name.
        let after = stat.rsplit_once(')').unwrap().1;
        let nice: i32 = after.split_whitespace().nth(16).unwrap().parse().unwrap();
        niced.push(nice);
    }
    assert!(!niced.is_empty(), "no SQLite connection thread found");
    assert!(
        niced.iter().all(|&n| n == waops::workers::BACKGROUND_NICE),
        "nice values {niced:?}"
    );
    store.close().await;
}
