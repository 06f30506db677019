//! Repeats are handled once: an identical add by the same person within
//! `limits.dedupe_window` gets the first result without a provider call, on a
//! real SQLite file (and PostgreSQL when set) against a Periskope fake.

mod common;

use common::{provider_toml, TestApp};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const GROUP: &str = "120363041234567890@g.us";

struct Added(std::time::Duration);

impl Respond for Added {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(200)
            .set_body_json(common::periskope_added(&request.body))
            .set_delay(self.0)
    }
}

async fn fake(delay_ms: u64) -> MockServer {
    let server = MockServer::start().await;
    common::mount_periskope_groups(&server, GROUP).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(Added(std::time::Duration::from_millis(delay_ms)))
        .mount(&server)
        .await;
    server
}

async fn adds(server: &MockServer) -> usize {
    let requests = server.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path().ends_with("/add")).count()
}

const BINDINGS: &str = "[permissions.bindings]\nadmin = [\"console\", \"slack:user:U2\"]\n";

async fn app(server: &MockServer, extra: &str) -> TestApp {
    let config = format!(
        "{}\n{extra}\n{BINDINGS}",
        provider_toml("periskope", &format!("{}/v1", server.uri()), "")
    );
    TestApp::with_config(&config).await
}

#[tokio::test]
async fn an_identical_add_gets_the_first_result_without_a_second_provider_call() {
    let server = fake(0).await;
    let app = app(&server, "").await;
    let (first, first_id) = app
        .run_as(&["console"], "local", "add sales +4915112345678 +4915112345679")
        .await;
    assert!(first.plain().contains("2 added"), "{}", first.plain());
    // The same numbers in another order and spelling: the same add.
    let (again, again_id) = app
        .run_as(&["console"], "local", "add sales 0151 1234 5679, +49 151 12345678")
        .await;
    assert_eq!(adds(&server).await, 1, "one provider call");
    assert_eq!(again.lines, first.lines);
    let footer = again.footer.last().unwrap().plain();
    assert!(
        footer.starts_with("Same as your add at 2026-11-24 12:00 UTC"),
        "{footer}"
    );
    assert!(footer.ends_with("nothing was sent again."), "{footer}");
    assert_eq!(app.audit(&first_id).await.outcome, "ok");
    assert_eq!(app.audit(&again_id).await.outcome, "deduplicated");

    // Someone else, or other numbers, is a new add.
    app.run_as(&["slack:user:U2"], "local", "add sales +4915112345678 +4915112345679")
        .await;
    app.run("add sales +4915112345678").await;
    assert_eq!(adds(&server).await, 3);
    // A dry run is never deduplicated and never calls the provider.
    app.run("add sales +4915112345678 --dry-run").await;
    assert_eq!(adds(&server).await, 3);
}

#[tokio::test]
async fn a_failed_add_can_be_repeated_for_real() {
    let server = MockServer::start().await;
    common::mount_periskope_groups(&server, GROUP).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(Added(std::time::Duration::ZERO))
        .mount(&server)
        .await;
    let app = app(&server, "").await;
    let failed = app.run("add sales +4915112345678").await;
    assert_eq!(
        failed.status,
        waops::core::reply::Status::UserError,
        "{}",
        failed.plain()
    );
    let retried = app.run("add sales +4915112345678").await;
    assert!(retried.plain().contains("1 added"), "{}", retried.plain());
    assert_eq!(adds(&server).await, 2);
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_is_told_so() {
    let server = fake(1500).await;
    let app = app(&server, "").await;
    let text = "add sales +4915112345678";
    let (first, second) = tokio::join!(app.run(text), async {
        // Sent once the first add is at the provider (its request was received).
        while adds(&server).await == 0 {
            tokio::task::yield_now().await;
        }
        app.run(text).await
    });
    assert!(first.plain().contains("1 added"), "{}", first.plain());
    assert!(
        second
            .plain()
            .starts_with("The same add, sent 2026-11-24 12:00 UTC (just now), is still running"),
        "{}",
        second.plain()
    );
    assert_eq!(adds(&server).await, 1);
}

// Multi-threaded like the background runtime follow-ups run on, where the key
// is forgotten before the drop returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_dropped_mid_way_leaves_no_running_key_behind() {
    let server = fake(1500).await;
    let app = app(&server, "").await;
    let text = "add sales +4915112345678";
    // Shutdown drops an interrupted command's task; a timeout drops it the same way.
    let cut = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        tokio::select! {
            _ = app.run(text) => unreachable!("the add is cut short first"),
            () = async {
                while adds(&server).await == 0 {
                    tokio::task::yield_now().await;
                }
            } => {}
        }
    });
    cut.await.unwrap();
    let again = app.run(text).await;
    assert!(again.plain().contains("1 added"), "{}", again.plain());
    assert_eq!(
        adds(&server).await,
        2,
        "the repeat was sent, not told \"still running\""
    );
}

#[tokio::test]
async fn the_window_can_be_turned_off() {
    let server = fake(0).await;
    let app = app(&server, "[limits]\ndedupe_window = \"0s\"").await;
    app.run("add sales +4915112345678").await;
    app.run("add sales +4915112345678").await;
    assert_eq!(adds(&server).await, 2);
}

#[tokio::test]
async fn claims_are_decided_once_across_store_handles_on_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let a = waops::store::Store::connect(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = waops::store::Store::connect(&url).await.unwrap();
    let now: jiff::Timestamp = common::NOW.parse().unwrap();
    let ttl = std::time::Duration::from_secs(120);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(
            async move { store.claim_key("k1", now, ttl).await.unwrap() },
        ));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap() == waops::store::KeyClaim::New {
            new += 1;
        }
    }
    assert_eq!(new, 1, "exactly one claimer");
    a.finish_key("k1", "{\"r\":1}").await.unwrap();
    assert_eq!(
        b.claim_key("k1", now, ttl).await.unwrap(),
        waops::store::KeyClaim::Seen {
            at: now,
            result: Some("{\"r\":1}".into())
        }
    );
    // Expired: the next claim is new again, and purging removes what is left.
    let later = now + jiff::SignedDuration::from_secs(121);
    assert_eq!(
        b.claim_key("k1", later, ttl).await.unwrap(),
        waops::store::KeyClaim::New
    );
    assert_eq!(
        a.purge_keys(later + jiff::SignedDuration::from_secs(121))
            .await
            .unwrap(),
        1
    );
}

// ---- SQLite: keys decided in memory, results written behind (store/idempotency.rs)

async fn sqlite_store(dir: &tempfile::TempDir) -> waops::store::Store {
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let store = waops::store::Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn seen(at: jiff::Timestamp, result: Option<&str>) -> waops::store::KeyClaim {
    waops::store::KeyClaim::Seen {
        at,
        result: result.map(str::to_string),
    }
}

const TTL: std::time::Duration = std::time::Duration::from_secs(120);

#[tokio::test]
async fn on_sqlite_a_finished_result_outlives_a_restart_and_an_unfinished_claim_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let now: jiff::Timestamp = common::NOW.parse().unwrap();
    let store = sqlite_store(&dir).await;
    assert_eq!(
        store.claim_key("done", now, TTL).await.unwrap(),
        waops::store::KeyClaim::New
    );
    assert_eq!(
        store.claim_key("running", now, TTL).await.unwrap(),
        waops::store::KeyClaim::New
    );
    store.finish_key("done", "{\"r\":1}").await.unwrap();
    assert_eq!(
        store.claim_key("done", now, TTL).await.unwrap(),
        seen(now, Some("{\"r\":1}"))
    );
    assert_eq!(store.claim_key("running", now, TTL).await.unwrap(), seen(now, None));
    // close() writes what is still behind.
    store.close().await;

    let store = sqlite_store(&dir).await;
    let later = now + jiff::SignedDuration::from_secs(5);
    assert_eq!(
        store.claim_key("done", later, TTL).await.unwrap(),
        seen(now, Some("{\"r\":1}")),
        "the result is read back from the file"
    );
    assert_eq!(
        store.claim_key("running", later, TTL).await.unwrap(),
        waops::store::KeyClaim::New,
        "the process that claimed it is gone: nothing is running it"
    );
    let expired = now + jiff::SignedDuration::from_secs(121);
    assert_eq!(
        store.claim_key("done", expired, TTL).await.unwrap(),
        waops::store::KeyClaim::New
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_racing_claims_give_one_new_and_a_forgotten_key_runs_again() {
    let dir = tempfile::tempdir().unwrap();
    let now: jiff::Timestamp = common::NOW.parse().unwrap();
    let store = sqlite_store(&dir).await;
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_key("k", now, TTL).await.unwrap() })
        })
        .collect();
    let mut new = 0;
    for t in tasks {
        match t.await.unwrap() {
            waops::store::KeyClaim::New => new += 1,
            other => assert_eq!(other, seen(now, None)),
        }
    }
    assert_eq!(new, 1, "exactly one claimer");
    store.forget_key("k").await.unwrap();
    assert_eq!(
        store.claim_key("k", now, TTL).await.unwrap(),
        waops::store::KeyClaim::New
    );
}

#[tokio::test]
async fn on_sqlite_a_delivery_id_outlives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let now: jiff::Timestamp = common::NOW.parse().unwrap();
    let hour = std::time::Duration::from_secs(3600);
    let store = sqlite_store(&dir).await;
    assert!(store.claim_delivery("discord:interaction:1", now, hour).await.unwrap());
    assert!(!store.claim_delivery("discord:interaction:1", now, hour).await.unwrap());
    store.close().await;
    let store = sqlite_store(&dir).await;
    let later = now + jiff::SignedDuration::from_secs(60);
    assert!(
        !store
            .claim_delivery("discord:interaction:1", later, hour)
            .await
            .unwrap(),
        "a replay after a restart is still a replay"
    );
    assert!(store
        .claim_delivery("discord:interaction:2", later, hour)
        .await
        .unwrap());
    let expired = now + jiff::SignedDuration::from_secs(3601);
    assert!(store
        .claim_delivery("discord:interaction:1", expired, hour)
        .await
        .unwrap());
}
