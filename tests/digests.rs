//! The digest scheduler against a real store (a SQLite file; PostgreSQL where
//! WAOPS_TEST_POSTGRES_URL is set) and one wiremock server playing Slack's Web
//! API, Discord's REST API and the WUTS provider. Ticks are driven with explicit
//! instants, so windows close without waiting for the wall clock.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration as Duration, Timestamp};
use serde_json::{json, Value};
use waops::core::Context;
use waops::digests::Scheduler;
use waops::store::{JournalEntry, Platforms, Subscription};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SALES: &str = "120363041234567890@g.us";
const SUPPORT: &str = "120363039000000001@g.us";

fn t0() -> Timestamp {
    common::NOW.parse().unwrap()
}

/// Settings for a replica posting to `fake` with the WUTS provider (journal history).
fn toml(fake: &str, provider: &str, extra: &str) -> String {
    let provider = match provider {
        "sandbox" => "[provider]\nkind = \"sandbox\"\n".to_string(),
        kind => common::provider_toml(kind, fake, ""),
    };
    format!(
        "{provider}\n[slack]\nbot_token = \"xoxb-digest-token\"\napi_url = \"{fake}\"\n\n\
         [discord]\nbot_token = \"discord-digest-token\"\napplication_id = \"42\"\napi_url = \"{fake}\"\n\n\
         [digests]\nmin_every = \"1s\"\nlease_s = 60\nconcurrency = 4\n{extra}\n"
    )
}

async fn replica(store_url: &str, toml: &str, owner: &str) -> (Context, Arc<Scheduler>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(dir.path(), toml, store_url);
    let ctx = waops::app::build_context(settings, common::clock()).await.unwrap();
    let scheduler = Scheduler::new(ctx.clone(), owner, waops::app::chat_posters(&ctx.settings).unwrap());
    (ctx, scheduler)
}

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("waops.db").display())
}

/// A fake answering Slack, Discord and the WUTS group list, after `delay_ms`.
async fn fake(delay_ms: u64) -> MockServer {
    let server = MockServer::start().await;
    let delay = std::time::Duration::from_millis(delay_ms);
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::slack::posted("C1", "1764000000.000100"))
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/api/v10/channels/\d+/messages$"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::discord::message("1300000000000000001", "555"))
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/groups"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "groups": [
                {"jid": SALES, "name": "Clientes VIP"},
                {"jid": SUPPORT, "name": "Suporte"}
            ]})),
        )
        .mount(&server)
        .await;
    server
}

fn subscription(
    id: &str,
    platform: &str,
    channel: &str,
    group: &str,
    every_s: i64,
    created: Timestamp,
) -> Subscription {
    Subscription {
        id: id.into(),
        platform: platform.into(),
        channel: format!("{platform}:{channel}"),
        group_ref: group.into(),
        group_name: if group == "*" {
            "all groups".into()
        } else {
            format!("Group {}", &group[..6])
        },
        every_s,
        at_time: None,
        tz: "UTC".into(),
        created_by: format!("{platform}:user:U1"),
        created_at: created,
        live: false,
    }
}

fn event(id: &str, group: &str, kind: &str, subject: &str, at: Timestamp) -> JournalEntry {
    JournalEntry {
        provider: "wuts".into(),
        event_id: id.into(),
        group_id: group.into(),
        kind: kind.into(),
        actor: None,
        subjects: vec![subject.into()],
        detail: None,
        at,
        received_at: at,
    }
}

async fn subscribe(ctx: &Context, subscription: Subscription) {
    ctx.store.upsert_subscription(&subscription).await.unwrap();
}

async fn journal(ctx: &Context, entry: JournalEntry) {
    ctx.store.record_event(&entry).await.unwrap();
}

/// Digest posts the fake received: (subscription, window start ms) → request bodies.
async fn posts(server: &MockServer) -> BTreeMap<(String, i64), Vec<Value>> {
    let mut out: BTreeMap<(String, i64), Vec<Value>> = BTreeMap::new();
    for r in server.received_requests().await.unwrap_or_default() {
        if r.method != wiremock::http::Method::POST {
            continue;
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let key = if r.url.path() == "/chat.postMessage" {
            let p = &body["metadata"]["event_payload"];
            (
                p["subscription"].as_str().unwrap().to_string(),
                p["window_start"].as_str().unwrap().parse::<i64>().unwrap(),
            )
        } else if r.url.path().starts_with("/api/v10/channels/") {
            // The nonce names the window; the test maps it back through `nonces`.
            (format!("nonce:{}", body["nonce"].as_str().unwrap()), 0)
        } else {
            continue;
        };
        out.entry(key).or_default().push(body);
    }
    out
}

fn requests_to(requests: &[Request], p: &str) -> usize {
    requests.iter().filter(|r| r.url.path() == p).count()
}

fn slack_text(body: &Value) -> String {
    body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"]["text"].as_str().or_else(|| b["elements"][0]["text"].as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_digest_lists_the_windows_changes_per_kind_with_masked_numbers() {
    let server = fake(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (ctx, scheduler) = replica(&sqlite_url(&dir), &toml(&server.uri(), "wuts", ""), "r1").await;
    let start = t0() - Duration::from_hours(2);
    subscribe(&ctx, subscription("s-sales", "slack", "C1", SALES, 3600, start)).await;
    subscribe(&ctx, subscription("s-all", "discord", "555", "*", 7200, start)).await;
    // Windows: [10:00, 11:00) and [11:00, 12:00) for the hourly one, [10:00, 12:00) for `*`.
    for e in [
        event(
            "e1",
            SALES,
            "joined",
            "4915112345678@c.us",
            start + Duration::from_mins(5),
        ),
        event(
            "e2",
            SALES,
            "joined",
            "4915112345679@c.us",
            start + Duration::from_mins(6),
        ),
        event(
            "e3",
            SALES,
            "left",
            "4915112345670@c.us",
            start + Duration::from_mins(70),
        ),
        event(
            "e4",
            SUPPORT,
            "added",
            "4915112349999@c.us",
            start + Duration::from_mins(80),
        ),
        // Outside every closed window: at 12:00 exactly, the next window's start.
        event("e5", SALES, "removed", "4915112340001@c.us", t0()),
    ] {
        ctx.store.record_event(&e).await.unwrap();
    }

    let report = scheduler.tick(t0()).await.unwrap();
    assert_eq!((report.posted, report.empty, report.failed), (3, 0, 0), "{report:?}");
    // The oldest window claimed, the hourly one's [10:00, 11:00), was an hour behind.
    assert_eq!(report.lag, jiff::SignedDuration::from_hours(1));

    let received = server.received_requests().await.unwrap();
    let slack: Vec<Value> = received
        .iter()
        .filter(|r| r.url.path() == "/chat.postMessage")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(slack.len(), 2);
    let auth = received
        .iter()
        .find(|r| r.url.path() == "/chat.postMessage")
        .unwrap()
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(auth, "Bearer xoxb-digest-token");
    assert_eq!(slack[0]["channel"], "C1");
    assert_eq!(slack[0]["metadata"]["event_type"], "waops_digest");
    assert!(slack[0].get("response_type").is_none());
    let first = slack_text(&slack[0]);
    assert!(first.starts_with("*Digest: Group 120363*"), "{first}");
    assert!(
        first.contains("2026-11-24 10:00 to 2026-11-24 11:00 UTC · 2 changes"),
        "{first}"
    );
    assert!(
        first.contains("joined (2): +49 151 •••• 5678, +49 151 •••• 5679"),
        "{first}"
    );
    assert!(!first.contains("left"), "{first}");
    let second = slack_text(&slack[1]);
    assert!(second.contains("left (1): +49 151 •••• 5670"), "{second}");
    assert!(
        !second.contains("removed"),
        "the 12:00 event belongs to the next window: {second}"
    );

    let discord: Vec<&Request> = received
        .iter()
        .filter(|r| r.url.path() == "/api/v10/channels/555/messages")
        .collect();
    assert_eq!(discord.len(), 1);
    assert_eq!(
        discord[0].headers.get("authorization").unwrap().to_str().unwrap(),
        "Bot discord-digest-token"
    );
    let body: Value = serde_json::from_slice(&discord[0].body).unwrap();
    assert_eq!(body["enforce_nonce"], true);
    assert_eq!(body["nonce"].as_str().unwrap().len(), 25);
    assert_eq!(body["allowed_mentions"]["parse"], json!([]), "nobody is pinged");
    assert!(body.get("flags").is_none(), "channel messages are not ephemeral");
    let description = body["embeds"][0]["description"].as_str().unwrap();
    assert!(description.contains("**Clientes VIP** · 3 changes"), "{description}");
    assert!(description.contains("**Suporte** · 1 change"), "{description}");
    // Discord's renderer escapes markdown-like punctuation in provider text.
    assert!(
        description.contains(r"added \(1\)\: +49 151 •••• 9999"),
        "{description}"
    );

    // Both cursors moved past `now`, and the posted windows are recorded.
    let (ws, we, error) = ctx.store.digest_cursor("s-sales").await.unwrap().unwrap();
    assert_eq!((ws, we, error), (t0(), t0() + Duration::from_hours(1), None));
    assert_eq!(ctx.store.posted_digests("s-sales").await.unwrap().len(), 2);
    assert_eq!(
        ctx.store.posted_digests("s-all").await.unwrap()[0].2,
        "1300000000000000001"
    );
    // Nothing is due any more at the same instant: no lag.
    let idle = scheduler.tick(t0()).await.unwrap();
    assert_eq!((idle.claimed, idle.lag), (0, jiff::SignedDuration::ZERO));
}

#[tokio::test]
async fn digests_from_the_providers_own_history() {
    let server = fake(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (ctx, scheduler) = replica(&sqlite_url(&dir), &toml(&server.uri(), "sandbox", ""), "r1").await;
    let start = t0() - Duration::from_hours(24 * 3);
    subscribe(&ctx, subscription("s1", "slack", "C1", SALES, 86_400, start)).await;
    let gid = waops::group_ref::GroupId::parse(SALES).unwrap();
    let seeded = ctx
        .accounts
        .first()
        .provider
        .history(&gid, &waops::providers::HistoryQuery::all_since(start))
        .await
        .unwrap();
    let last_end: Timestamp = "2026-11-24T00:00:00Z".parse().unwrap();
    let expected = seeded.iter().filter(|e| e.at < last_end).count();
    assert!(expected > 0, "the sandbox seeds events in these windows");

    let report = scheduler.tick(t0()).await.unwrap();
    assert_eq!(report.failed, 0);
    let mut changes = 0;
    for body in posts(&server).await.values().flatten() {
        let text = slack_text(body);
        let line = text
            .lines()
            .find(|l| l.contains(" changes") || l.contains(" change"))
            .unwrap();
        changes += line
            .rsplit("· ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
    }
    assert_eq!(changes, expected);
    assert_eq!(
        report.posted + report.empty,
        3,
        "windows ending 22, 23 and 24 Nov 00:00"
    );
}

#[tokio::test]
async fn empty_windows_post_nothing_unless_post_empty() {
    for (post_empty, expected_posts) in [(false, 0), (true, 3)] {
        let server = fake(0).await;
        let dir = tempfile::tempdir().unwrap();
        let extra = format!("post_empty = {post_empty}");
        let (ctx, scheduler) = replica(&sqlite_url(&dir), &toml(&server.uri(), "wuts", &extra), "r1").await;
        subscribe(
            &ctx,
            subscription("s1", "slack", "C1", SALES, 60, t0() - Duration::from_mins(3)),
        )
        .await;
        let report = scheduler.tick(t0()).await.unwrap();
        assert_eq!(report.posted, expected_posts);
        let received = server.received_requests().await.unwrap();
        assert_eq!(requests_to(&received, "/chat.postMessage"), expected_posts);
        if post_empty {
            let body: Value = serde_json::from_slice(&received[0].body).unwrap();
            assert!(slack_text(&body).contains("No membership changes in this window."));
        }
        // Empty or not, the cursor moved on.
        assert_eq!(ctx.store.digest_cursor("s1").await.unwrap().unwrap().0, t0());
    }
}

#[tokio::test]
async fn a_restart_does_not_post_again() {
    let server = fake(0).await;
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let config = toml(&server.uri(), "wuts", "post_empty = true");
    {
        let (ctx, scheduler) = replica(&url, &config, "before").await;
        subscribe(
            &ctx,
            subscription("s1", "slack", "C1", SALES, 60, t0() - Duration::from_mins(5)),
        )
        .await;
        assert_eq!(scheduler.tick(t0()).await.unwrap().posted, 5);
        ctx.store.close().await;
    }
    let (_ctx, scheduler) = replica(&url, &config, "after").await;
    assert_eq!(
        scheduler.tick(t0()).await.unwrap(),
        waops::digests::TickReport::default()
    );
    assert_eq!(scheduler.tick(t0() + Duration::from_secs(59)).await.unwrap().posted, 0);
    assert_eq!(scheduler.tick(t0() + Duration::from_mins(1)).await.unwrap().posted, 1);
    let posted = posts(&server).await;
    assert_eq!(posted.len(), 6);
    assert!(posted.values().all(|bodies| bodies.len() == 1), "every window once");
}

#[tokio::test]
async fn a_failed_post_is_retried_next_tick_and_never_skipped() {
    let server = MockServer::start().await;
    // Slack fails three times (every retry of the first attempt), then works.
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(ResponseTemplate::new(200).set_body_json(common::slack::posted("C1", "1764000000.000200")))
        .mount(&server)
        .await;
    // A 500 may have posted: the retry first looks for the window's message.
    Mock::given(method("GET"))
        .and(path("/conversations.history"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "messages": [
            {"ts": "1764000000.000001", "text": "unrelated", "metadata": {"event_type": "waops_digest", "event_payload": {"subscription": "other", "window_start": "0"}}}
        ]})))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let (ctx, scheduler) = replica(&sqlite_url(&dir), &toml(&server.uri(), "wuts", ""), "r1").await;
    let start = t0() - Duration::from_mins(2);
    subscribe(&ctx, subscription("s1", "slack", "C1", SALES, 60, start)).await;
    journal(&ctx, event("e1", SALES, "joined", "4915112345678@c.us", start)).await;
    journal(
        &ctx,
        event(
            "e2",
            SALES,
            "left",
            "4915112345678@c.us",
            start + Duration::from_secs(61),
        ),
    )
    .await;

    let first = scheduler.tick(t0()).await.unwrap();
    assert_eq!((first.posted, first.failed), (0, 1));
    let (ws, _, error) = ctx.store.digest_cursor("s1").await.unwrap().unwrap();
    assert_eq!(ws, start, "the cursor did not move");
    assert_eq!(error.as_deref(), Some("Slack answered HTTP 500"));
    // The same tick instant does not retry at once.
    assert_eq!(scheduler.tick(t0()).await.unwrap().claimed, 0);

    let second = scheduler.tick(t0() + Duration::from_secs(1)).await.unwrap();
    assert_eq!((second.posted, second.failed), (2, 0));
    let received = server.received_requests().await.unwrap();
    assert_eq!(requests_to(&received, "/conversations.history"), 1);
    let bodies: Vec<Value> = received
        .iter()
        .filter(|r| r.url.path() == "/chat.postMessage")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 5, "three failures, then the two windows in order");
    assert_eq!(bodies[2], bodies[0], "the retry posts the same digest");
    assert!(slack_text(&bodies[3]).contains("joined (1)"));
    assert!(slack_text(&bodies[4]).contains("left (1)"));
    let posted = ctx.store.posted_digests("s1").await.unwrap();
    assert_eq!(
        posted.iter().map(|p| p.0).collect::<Vec<_>>(),
        [start, start + Duration::from_mins(1)]
    );
}

#[tokio::test]
async fn a_post_recorded_by_nobody_is_found_in_slack_instead_of_posted_twice() {
    let server = fake(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (ctx, scheduler) = replica(&sqlite_url(&dir), &toml(&server.uri(), "wuts", ""), "r2").await;
    let start = t0() - Duration::from_mins(1);
    subscribe(&ctx, subscription("s1", "slack", "C1", SALES, 60, start)).await;
    journal(&ctx, event("e1", SALES, "joined", "4915112345678@c.us", start)).await;
    // Replica r1 claimed the window, began its post and died before recording it.
    let lease = std::time::Duration::from_secs(60);
    let platforms = Platforms {
        slack: true,
        discord: true,
    };
    let claimed = ctx
        .store
        .claim_due_digests("r1", t0(), lease, 10, platforms)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    ctx.store.begin_digest_post(&claimed[0], 1).await.unwrap();
    Mock::given(method("GET"))
        .and(path("/conversations.history"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": true, "messages": [
                {"ts": "1764000000.000777", "metadata": {"event_type": "waops_digest",
                  "event_payload": {"subscription": "s1", "window_start": start.as_millisecond().to_string()}}}
            ]})),
        )
        .mount(&server)
        .await;

    // While r1's lease runs, nobody else touches the window.
    assert_eq!(scheduler.tick(t0() + Duration::from_secs(59)).await.unwrap().claimed, 0);
    // After it expires, r2 takes over, finds r1's message and records it.
    let report = scheduler.tick(t0() + Duration::from_secs(60)).await.unwrap();
    assert_eq!((report.claimed, report.posted), (1, 1));
    let received = server.received_requests().await.unwrap();
    assert_eq!(requests_to(&received, "/chat.postMessage"), 0);
    let history = received
        .iter()
        .find(|r| r.url.path() == "/conversations.history")
        .unwrap();
    let query: BTreeMap<String, String> = history.url.query_pairs().into_owned().collect();
    assert_eq!(query["channel"], "C1");
    assert_eq!(query["include_all_metadata"], "true");
    assert_eq!(query["oldest"], format!("{}.000000", t0().as_second()));
    assert_eq!(ctx.store.posted_digests("s1").await.unwrap()[0].2, "1764000000.000777");
}

#[tokio::test]
async fn a_crashed_replicas_lease_expires_and_another_takes_over() {
    let server = fake(0).await;
    let dir = tempfile::tempdir().unwrap();
    let (ctx, scheduler) = replica(
        &sqlite_url(&dir),
        &toml(&server.uri(), "wuts", "post_empty = true"),
        "r2",
    )
    .await;
    subscribe(
        &ctx,
        subscription("s1", "discord", "555", SALES, 60, t0() - Duration::from_mins(1)),
    )
    .await;
    let platforms = Platforms {
        slack: true,
        discord: true,
    };
    let taken = ctx
        .store
        .claim_due_digests("r1", t0(), std::time::Duration::from_secs(60), 10, platforms)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(scheduler.tick(t0() + Duration::from_secs(30)).await.unwrap().claimed, 0);
    let report = scheduler.tick(t0() + Duration::from_secs(61)).await.unwrap();
    assert_eq!(
        (report.claimed, report.posted),
        (1, 2),
        "the window r1 held and the one after it"
    );
    // r1 comes back and tries to move the cursor it no longer owns: refused.
    let next = t0() + Duration::from_mins(1);
    assert!(!ctx
        .store
        .close_digest_window(&taken[0], None, "r1", next, next, None)
        .await
        .unwrap());
    let posted = posts(&server).await;
    assert_eq!(posted.len(), 2);
}

/// Two replicas on one store tick at the same instants, concurrently, over
/// windows of 12 subscriptions (Slack and Discord): every window posted once.
async fn race(store_url: &str, windows_per_subscription: i64) {
    let server = fake(2).await;
    let config = toml(&server.uri(), "wuts", "post_empty = true");
    let (ctx_a, a) = replica(store_url, &config, "replica-a").await;
    let (_ctx_b, b) = replica(store_url, &config, "replica-b").await;
    let start = t0() - Duration::from_secs(windows_per_subscription);
    let mut nonces = BTreeMap::new();
    for i in 0..12 {
        let platform = if i % 2 == 0 { "slack" } else { "discord" };
        let s = subscription(&format!("s{i:02}"), platform, &format!("{}", 1000 + i), SALES, 1, start);
        ctx_a.store.upsert_subscription(&s).await.unwrap();
        if platform == "discord" {
            for w in 0..windows_per_subscription {
                let claimed = waops::store::Claimed {
                    subscription: s.clone(),
                    window_start: start + Duration::from_secs(w),
                    window_end: start + Duration::from_secs(w + 1),
                };
                nonces.insert(
                    waops::adapters::discord::outbound::nonce(&waops::digests::key(&claimed)),
                    (s.id.clone(), claimed.window_start.as_millisecond()),
                );
            }
        }
    }
    // Catch-up and steady state: a few windows at a time, both replicas at once.
    let mut total = waops::digests::TickReport::default();
    for step in (0..=windows_per_subscription)
        .step_by(7)
        .chain([windows_per_subscription])
    {
        let now = start + Duration::from_secs(step);
        let (ra, rb) = tokio::join!(a.tick(now), b.tick(now));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.failed + rb.failed + ra.lost + rb.lost, 0, "{ra:?} {rb:?}");
        total.posted += ra.posted + rb.posted;
        total.claimed += usize::from(ra.claimed > 0) + usize::from(rb.claimed > 0);
    }
    let expected = 12 * windows_per_subscription as usize;
    assert_eq!(total.posted, expected);
    assert!(total.claimed >= 2, "both replicas did work");

    let mut seen: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for ((key, window), bodies) in posts(&server).await {
        let key = match key.strip_prefix("nonce:") {
            Some(n) => nonces[n].clone(),
            None => (key, window),
        };
        *seen.entry(key).or_default() += bodies.len();
    }
    assert_eq!(seen.len(), expected, "every window posted");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "posted more than once: {twice:?}");
}

#[tokio::test]
async fn two_replicas_post_every_window_exactly_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    race(&sqlite_url(&dir), 10).await;
}

#[tokio::test]
async fn two_replicas_post_every_window_exactly_once_on_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        eprintln!("WAOPS_TEST_POSTGRES_URL not set; skipped");
        return;
    };
    race(&url, 10).await;
}

/// Answers like Slack's chat.postMessage and tells the test each time.
struct Notify(tokio::sync::mpsc::UnboundedSender<Value>);

impl wiremock::Respond for Notify {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let _ = self
            .0
            .send(serde_json::from_slice(&request.body).unwrap_or(Value::Null));
        ResponseTemplate::new(200).set_body_json(common::slack::posted("C1", "1764000000.000300"))
    }
}

#[tokio::test]
async fn serve_runs_the_scheduler_and_stops_with_the_server() {
    let server = MockServer::start().await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    Mock::given(method("POST"))
        .and(path("/chat.postMessage"))
        .respond_with(Notify(tx))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = toml(&server.uri(), "wuts", "post_empty = true\ntick_s = 1");
    let (ctx, _) = replica(&sqlite_url(&dir), &config, "unused").await;
    subscribe(
        &ctx,
        subscription("s1", "slack", "C9", SALES, 60, t0() - Duration::from_mins(2)),
    )
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(waops::app::serve(ctx.clone(), listener, async move {
        let _ = stopped.await;
    }));
    // The clock is fixed at t0: both closed windows are posted by the first tick.
    let wait = std::time::Duration::from_secs(10);
    for _ in 0..2 {
        let body = tokio::time::timeout(wait, rx.recv())
            .await
            .expect("a digest is posted")
            .unwrap();
        assert_eq!(body["channel"], "C9");
    }
    stop.send(()).unwrap();
    tokio::time::timeout(wait, served)
        .await
        .expect("serve stops")
        .unwrap()
        .unwrap();
    // serve closed its store on the way out; the file has what the tick recorded.
    let store = waops::store::Store::connect(&sqlite_url(&dir)).await.unwrap();
    assert_eq!(store.posted_digests("s1").await.unwrap().len(), 2);
    assert!(rx.try_recv().is_err(), "nothing posted twice");
}
