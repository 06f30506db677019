//! Bulk adds through the whole core against a fake that enforces a request
//! rate: paced to the floor, never a 429; and an add interrupted part-way keeps
//! what was done.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{provider_toml, TestApp};
use waops::core::Status;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const GROUP: &str = "120363041234567890@g.us";

/// Allows `limit` requests in any sliding second (5 ms of clock tolerance),
/// answers 429 beyond that, and otherwise reports every participant as added.
#[derive(Clone)]
struct RateLimitedFake {
    limit: usize,
    accepted: Arc<Mutex<Vec<Instant>>>,
    rejected: Arc<Mutex<usize>>,
}

impl RateLimitedFake {
    fn new(limit: usize) -> Self {
        RateLimitedFake {
            limit,
            accepted: Default::default(),
            rejected: Default::default(),
        }
    }

    /// Whether a request now is within the rate (counted either way).
    fn admit(&self) -> bool {
        let now = Instant::now();
        let mut accepted = self.accepted.lock().unwrap();
        let window = Duration::from_millis(995);
        let recent = accepted.iter().filter(|t| now.duration_since(**t) < window).count();
        if recent >= self.limit {
            *self.rejected.lock().unwrap() += 1;
            return false;
        }
        accepted.push(now);
        true
    }

    /// `answer` for requests within the rate, 429 beyond it.
    fn answering(&self, answer: fn(&Request) -> ResponseTemplate) -> Limited {
        Limited {
            fake: self.clone(),
            answer,
        }
    }
}

impl Respond for RateLimitedFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.answering(|r| ResponseTemplate::new(200).set_body_json(common::periskope_added(&r.body)))
            .respond(request)
    }
}

/// One endpoint behind the fake's shared rate.
struct Limited {
    fake: RateLimitedFake,
    answer: fn(&Request) -> ResponseTemplate,
}

impl Respond for Limited {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.fake.admit() {
            (self.answer)(request)
        } else {
            ResponseTemplate::new(429).insert_header("retry-after", "1")
        }
    }
}

fn numbers(n: usize) -> String {
    (1..=n)
        .map(|i| format!("+49151300{i:05}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// 200 numbers by default; bench/pacing.sh sets `WAOPS_PACING_NUMBERS=1000`.
fn pacing_numbers() -> usize {
    std::env::var("WAOPS_PACING_NUMBERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// Runs `text` against the Periskope fake at `server`, paced at `rate` requests
/// a second in chunks of `chunk`; returns the reply and how long it took.
async fn timed(
    server: &MockServer,
    n: usize,
    rate: usize,
    chunk: usize,
    text: &str,
) -> (waops::core::reply::Reply, Duration) {
    let config = format!(
        "{}\n[limits]\nmax_numbers_per_add = {n}\n",
        provider_toml(
            "periskope",
            &format!("{}/v1", server.uri()),
            &format!("rate_per_second = {rate}\nburst = 1\nadd_chunk_size = {chunk}\nadd_pause_ms = 0\n"),
        )
    );
    let app = TestApp::with_config(&config).await;
    // `waops serve` loads the phone metadata at start; do the same here so the
    // clock measures the command, not a one-off load.
    waops::phone::warm_up();
    let started = Instant::now();
    let reply = app.run(text).await;
    (reply, started.elapsed())
}

#[tokio::test]
async fn bulk_add_paced_to_the_floor_without_a_429() {
    let n = pacing_numbers();
    let chunk = 10;
    let server = MockServer::start().await;
    let fake = RateLimitedFake::new(10);
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    common::mount_periskope_groups(&server, GROUP).await;
    let rate = 10;
    let (reply, elapsed) = timed(&server, n, rate, chunk, &format!("add {GROUP} {} --yes", numbers(n))).await;
    let adds = n.div_ceil(chunk);
    // One list call and the adds, one every 1/rate seconds after the first.
    let floor = Duration::from_secs_f64(adds as f64 / rate as f64);
    let ratio = elapsed.as_secs_f64() / floor.as_secs_f64();
    let rejected = *fake.rejected.lock().unwrap();
    // The ratio is reported, not asserted: bench/pacing.sh judges it against
    // the 1.1 target. What the test holds is that nothing went over the rate
    // (no 429) and that the adds could not have beaten their floor.
    eprintln!("pacing: {n} numbers in {elapsed:?}; floor {floor:?}; ratio {ratio:.3}; 429s {rejected}");
    assert_eq!(reply.status, Status::Ok, "{}", reply.plain());
    assert!(
        reply.plain().contains(&format!("{n} added, 0 invite sent")),
        "{}",
        reply.plain()
    );
    assert_eq!(rejected, 0, "no request was over the fake's rate");
    assert_eq!(
        fake.accepted.lock().unwrap().len(),
        adds,
        "numbers in chunks of {chunk}"
    );
    assert!(
        elapsed >= floor.mul_f64(0.95),
        "finished in {elapsed:?}, before the floor {floor:?}"
    );
}

#[tokio::test]
async fn an_add_stopped_part_way_keeps_what_was_done() {
    let server = MockServer::start().await;
    common::mount_periskope_groups(&server, GROUP).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(RateLimitedFake::new(1000))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(ResponseTemplate::new(401).insert_header("x-periskope-trace-id", "trace-9"))
        .mount(&server)
        .await;
    let config = provider_toml("periskope", &format!("{}/v1", server.uri()), "add_chunk_size = 2\n");
    let app = TestApp::with_config(&config).await;
    let (reply, id) = app
        .run_as(&["console"], "local", &format!("add {GROUP} {}", numbers(5)))
        .await;
    let text = reply.plain();
    assert!(text.contains("`+4915130000001` — added\n  `+4915130000002` — added\n  `+4915130000003` — failed (not sent: stopped after an earlier error)"), "{text}");
    assert!(
        text.contains("Stopped after 2 of 5 numbers: The periskope provider rejected waops' credentials"),
        "{text}"
    );
    let row = app.audit(&id).await;
    assert_eq!(
        (row.outcome.as_ref(), row.provider_trace_id.as_deref()),
        ("partial:auth", Some("trace-9"))
    );
}

/// A burst of calls holds at most `provider.max_connections` requests in
/// flight. Every answer takes `delay` after its request arrived, so with a cap
/// of 2 the (k+2)th request cannot arrive before the kth was answered: no three
/// arrivals fall within `delay` of each other. Without the cap all 8 arrive at
/// once.
#[tokio::test]
async fn a_burst_of_calls_holds_at_most_max_connections() {
    let server = MockServer::start().await;
    let delay = Duration::from_millis(150);
    let fake = common::Slow::new(
        delay,
        serde_json::json!({"chats": [{"chat_id": GROUP, "chat_name": "Sales Team"}], "count": 1}),
    );
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let provider = common::provider("periskope", &format!("{}/v1", server.uri()), "max_connections = 2\n");
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let provider = provider.clone();
        burst.spawn(async move { provider.list_groups().await });
    }
    while let Some(answer) = burst.join_next().await {
        let groups = answer.unwrap().expect("every call is answered");
        assert_eq!(groups.len(), 1);
    }
    fake.assert_at_most_in_flight(2, 8);
}

/// SPEC section 8: an audit row carries the provider's trace id on success too.
#[tokio::test]
async fn a_successful_add_is_audited_with_the_providers_trace_id() {
    let server = MockServer::start().await;
    common::mount_periskope_groups(&server, GROUP).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-periskope-trace-id", "trace-ok-1")
                .set_body_json(serde_json::json!({
                    "4915130000001@c.us": {"is_success": true, "message": "Participant added"}
                })),
        )
        .mount(&server)
        .await;
    let config = provider_toml("periskope", &format!("{}/v1", server.uri()), "");
    let app = TestApp::with_config(&config).await;
    let (reply, id) = app
        .run_as(&["console"], "local", &format!("add {GROUP} {}", numbers(1)))
        .await;
    assert!(reply.plain().contains("added"), "{}", reply.plain());
    let row = app.audit(&id).await;
    assert_eq!(
        (row.outcome.as_ref(), row.provider_trace_id.as_deref()),
        ("ok", Some("trace-ok-1"))
    );
}

/// Offboarding 200 numbers spread over 5 groups (40 members each) through the
/// whole core: the list, 5 member reads and 20 removes of 10 all share the
/// provider's rate, paced to the floor without a 429. bench/pacing.sh judges
/// the ratio.
#[tokio::test]
async fn offboarding_paced_to_the_floor_without_a_429() {
    const GROUPS: usize = 5;
    const PER_GROUP: usize = 40;
    let (rate, chunk) = (10, 10);
    let server = MockServer::start().await;
    let fake = RateLimitedFake::new(rate);
    let group = |i: usize| format!("1203630412345678{i:02}@g.us");
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(fake.answering(|_| {
            let chats: Vec<_> = (0..GROUPS)
                .map(|i| serde_json::json!({"chat_id": format!("1203630412345678{i:02}@g.us"), "chat_name": format!("Customer {i}")}))
                .collect();
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"chats": chats, "count": GROUPS}))
        }))
        .mount(&server)
        .await;
    for i in 0..GROUPS {
        Mock::given(method("GET"))
            .and(path(format!("/v1/chats/{}", group(i))))
            .respond_with(fake.answering(|r| {
                // Group i holds numbers i*40+1 ..= i*40+40, and the connected phone as an admin.
                let id = r.url.path().trim_start_matches("/v1/chats/");
                let i: usize = id[16..18].parse().unwrap();
                let mut members = serde_json::Map::new();
                members.insert("919876543210@c.us".into(), serde_json::json!({"is_admin": true}));
                for n in i * PER_GROUP + 1..=(i + 1) * PER_GROUP {
                    members.insert(format!("49151300{n:05}@c.us"), serde_json::json!({"is_admin": false}));
                }
                ResponseTemplate::new(200).set_body_json(
                    serde_json::json!({"chat_id": "x", "org_phone": "919876543210@c.us", "members": members}),
                )
            }))
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/chats/{}/remove", group(i))))
            .respond_with(
                fake.answering(|r| ResponseTemplate::new(200).set_body_json(common::periskope_added(&r.body))),
            )
            .mount(&server)
            .await;
    }
    let n = GROUPS * PER_GROUP;
    let (reply, elapsed) = timed(&server, n, rate, chunk, &format!("remove * {} --yes", numbers(n))).await;
    let requests = 1 + GROUPS + n.div_ceil(chunk);
    // The first request goes at once, the rest one every 1/rate seconds.
    let floor = Duration::from_secs_f64((requests - 1) as f64 / rate as f64);
    let ratio = elapsed.as_secs_f64() / floor.as_secs_f64();
    let rejected = *fake.rejected.lock().unwrap();
    eprintln!("pacing: offboarding {n} numbers from {GROUPS} groups in {elapsed:?}; floor {floor:?}; ratio {ratio:.3}; 429s {rejected}");
    assert_eq!(reply.status, Status::Ok, "{}", reply.plain());
    assert!(
        reply
            .plain()
            .contains(&format!("Removed {n} memberships from {GROUPS} groups")),
        "{}",
        reply.plain()
    );
    assert_eq!(rejected, 0, "no request was over the fake's rate");
    assert_eq!(fake.accepted.lock().unwrap().len(), requests);
    assert!(
        elapsed >= floor.mul_f64(0.95),
        "finished in {elapsed:?}, before the floor {floor:?}"
    );
}
