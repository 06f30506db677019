//! Faults end to end, through signed Slack commands and Discord interactions on
//! the real router: the provider down, slow, flapping or sending garbage; Slack
//! and Discord answering 429 and 5xx to waops' follow-ups; the store's
//! PostgreSQL connection cut mid-run and restored; shutdown with commands in
//! flight. Each accepted command ends in a message to the user and an audit row.

mod common;

use std::time::Duration;

use common::{provider_toml, TestApp};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SECRET: &str = "fault-signing-secret";
const GROUP: &str = "120363041234567890@g.us";
const WAIT: Duration = Duration::from_secs(20);

/// Forwards each request body it answers to the test.
struct Capture(mpsc::UnboundedSender<Value>, Value);

impl Respond for Capture {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let _ = self.0.send(serde_json::from_slice(&r.body).unwrap_or(Value::Null));
        ResponseTemplate::new(200).set_body_json(self.1.clone())
    }
}

struct Chat {
    app: TestApp,
    base: String,
    hooks: MockServer,
    posts: mpsc::UnboundedReceiver<Value>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Chat {
    /// waops with Slack and Discord routes; `extra` is more configuration.
    async fn start(extra: &str) -> Chat {
        Self::start_with_store(extra, None).await
    }

    async fn start_with_store(extra: &str, store_url: Option<&str>) -> Chat {
        let hooks = MockServer::start().await;
        let (tx, posts) = mpsc::unbounded_channel();
        Mock::given(method("POST"))
            .and(path("/respond"))
            .respond_with(Capture(tx.clone(), json!("ok")))
            .mount(&hooks)
            .await;
        // Edits and follow-ups are what the user sees; a delete only clears a deferral.
        Mock::given(method("DELETE"))
            .respond_with(ResponseTemplate::new(204))
            .mount(&hooks)
            .await;
        Mock::given(path_regex(r"^/api/v10/webhooks/1/.*"))
            .respond_with(Capture(
                tx,
                common::discord::message("1200000000000000001", common::discord::CHANNEL),
            ))
            .mount(&hooks)
            .await;
        let config = format!(
            "[slack]\nsigning_secret = \"{SECRET}\"\napi_url = \"{0}/api\"\nresponse_url_prefixes = [\"{0}/\"]\n\
             [discord]\npublic_key = \"{1}\"\napplication_id = \"1\"\napi_url = \"{0}\"\n\
             {extra}\n[permissions.bindings]\nadmin = [\"slack:user:U1\", \"discord:user:77\"]\n",
            hooks.uri(),
            hex::encode(key().verifying_key().to_bytes())
        );
        let dir = tempfile::tempdir().unwrap();
        let url = match store_url {
            Some(u) => u.to_string(),
            None => format!("sqlite://{}", dir.path().join("waops.db").display()),
        };
        let app = TestApp::with_store(&config, &url, dir).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(waops::app::serve(app.ctx.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Chat {
            app,
            base,
            hooks,
            posts,
            stop: Some(stop),
            served,
        }
    }

    async fn slack(&self, text: &str) -> (String, String) {
        let body = common::slack::command_body("U1", "C1", text, &format!("{}/respond", self.hooks.uri()));
        let url = format!("{}/slack/commands", self.base);
        let r = common::slack::signed(&url, SECRET, self.app.ctx.clock.now().as_second(), body).await;
        assert_eq!(r.status(), 200);
        let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        (text_of(&r.json().await.unwrap()), request_id)
    }

    async fn discord(&self, sub: &str, options: Value) -> Value {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1_300_000_000_000_000_001);
        let id = NEXT.fetch_add(1, Ordering::Relaxed).to_string();
        let member = common::discord::member("77", &[]);
        let body = common::discord::command(&id, "1", "tok", member, sub, options).to_string();
        let ts = self.app.ctx.clock.now().as_second().to_string();
        let signature = key().sign(&[ts.as_bytes(), body.as_bytes()].concat());
        reqwest::Client::new()
            .post(format!("{}/discord/interactions", self.base))
            .header("x-signature-timestamp", &ts)
            .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The first line (the title) of the next follow-up, or all of it with `all`.
    async fn next_post(&mut self) -> String {
        let post = tokio::time::timeout(WAIT, self.posts.recv())
            .await
            .expect("a follow-up arrives")
            .unwrap();
        text_of(&post)
    }

    async fn next_title(&mut self) -> String {
        self.next_post().await.lines().next().unwrap_or_default().to_string()
    }

    async fn outcome(&self, request_id: &str) -> String {
        self.app.audit(request_id).await.outcome.into_owned()
    }

    async fn shutdown(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(60), &mut self.served)
            .await
            .expect("serve stops")
            .unwrap()
            .unwrap();
    }
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[5u8; 32])
}

/// The visible text of a Slack message or a Discord message body.
fn text_of(m: &Value) -> String {
    let mut out = vec![m["text"].as_str().unwrap_or_default().to_string()];
    for b in m["blocks"].as_array().into_iter().flatten() {
        out.push(b["text"]["text"].as_str().unwrap_or_default().to_string());
        for e in b["elements"].as_array().into_iter().flatten() {
            out.push(e["text"].as_str().unwrap_or_default().to_string());
        }
    }
    for e in m["embeds"].as_array().into_iter().flatten() {
        out.push(e["title"].as_str().unwrap_or_default().to_string());
        out.push(e["description"].as_str().unwrap_or_default().to_string());
    }
    out.retain(|s| !s.is_empty());
    out.join("\n")
}

fn periskope(base: &str, extra: &str) -> String {
    let timeout = if extra.contains("timeout_ms") {
        ""
    } else {
        "timeout_ms = 500\n"
    };
    provider_toml(
        "periskope",
        &format!("{base}/v1"),
        &format!("max_retries = 2\n{timeout}{extra}"),
    )
}

fn chats() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"chats": [{"chat_id": GROUP, "chat_name": "Sales Team"}], "count": 1}))
}

/// A Periskope fake whose group list answers after `delay`, and whose chat
/// (with its invite link) answers at once.
async fn slow_list(delay: Duration) -> MockServer {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(chats().set_delay(delay))
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"chat_id": GROUP, "chat_name": "Sales Team", "invite_link": "https://chat.whatsapp.com/invite/EUKdz8Sdy9T2UWPnOKGkx"})))
        .mount(&provider)
        .await;
    provider
}

#[tokio::test]
async fn provider_down_slow_or_sending_garbage_is_told_to_the_user() {
    // Down: nothing listens on the port.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut chat = Chat::start(&periskope(&closed, "")).await;
    let (ack, id) = chat.slack("invite sales").await;
    assert!(ack.starts_with("Working on it"), "{ack}");
    assert_eq!(
        chat.next_title().await,
        "Could not reach the periskope provider; try again later"
    );
    assert_eq!(chat.outcome(&id).await, "provider_error:transport");

    // Slow: answers after the 500 ms timeout.
    let slow = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(chats().set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let mut chat = Chat::start(&periskope(&slow.uri(), "")).await;
    let (_, id) = chat.slack("invite sales").await;
    assert_eq!(
        chat.next_title().await,
        "The periskope provider did not answer in time; try again later"
    );
    assert_eq!(chat.outcome(&id).await, "provider_error:timeout");

    // Garbage: a 200 that is not JSON.
    let garbage = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .mount(&garbage)
        .await;
    let mut chat = Chat::start(&periskope(&garbage.uri(), "")).await;
    let (_, id) = chat.slack("invite sales").await;
    assert_eq!(
        chat.next_title().await,
        "The periskope provider sent an answer waops cannot read; try again later"
    );
    assert_eq!(chat.outcome(&id).await, "provider_error:malformed");
}

#[tokio::test]
async fn a_flapping_provider_is_retried_where_safe() {
    let flap = MockServer::start().await;
    for p in ["/v1/chats".to_string(), format!("/v1/chats/{GROUP}/add")] {
        Mock::given(path(p))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&flap)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(chats())
        .mount(&flap)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"4915112345678@c.us": {"is_success": true, "message": "added"}})),
        )
        .mount(&flap)
        .await;
    let mut chat = Chat::start(&periskope(&flap.uri(), "")).await;
    let (_, id) = chat.slack("add sales +4915112345678").await;
    let result = chat.next_post().await;
    assert!(result.contains("1 added"), "{result}");
    assert_eq!(chat.outcome(&id).await, "ok");
    let requests = flap.received_requests().await.unwrap();
    let adds = requests.iter().filter(|r| r.url.path().ends_with("/add")).count();
    assert_eq!(adds, 2, "a 503 write surely did not happen: retried once");
}

#[tokio::test]
async fn slack_429_and_5xx_on_follow_ups_are_retried_until_delivered() {
    let mut chat = Chat::start("").await;
    Mock::given(method("POST"))
        .and(path("/respond"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&chat.hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/respond"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&chat.hooks)
        .await;
    let (_, id) = chat.slack("invite sales").await;
    assert!(chat.next_post().await.contains("chat.whatsapp.com"));
    let attempts = chat
        .hooks
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/respond")
        .count();
    assert_eq!(attempts, 3, "429, then 502, then delivered");
    assert_eq!(chat.outcome(&id).await, "ok");
}

#[tokio::test]
async fn discord_429_and_5xx_on_the_edit_are_retried_until_delivered() {
    let mut chat = Chat::start("").await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"retry_after": 0.2, "global": false})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&chat.hooks)
        .await;
    Mock::given(method("PATCH"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&chat.hooks)
        .await;
    let deferred = chat
        .discord("invite", json!([{"name": "group", "type": 3, "value": "sales"}]))
        .await;
    assert_eq!(deferred["type"], 5);
    assert!(chat.next_post().await.contains("chat.whatsapp.com"));
    let patches = chat
        .hooks
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method == wiremock::http::Method::PATCH)
        .count();
    assert_eq!(patches, 3);
}

#[tokio::test]
async fn shutdown_finishes_commands_in_flight_within_the_grace() {
    let provider = slow_list(Duration::from_millis(1500)).await;
    let mut chat = Chat::start(&format!(
        "{}\n[server]\nshutdown_grace_s = 20",
        periskope(&provider.uri(), "timeout_ms = 5000")
    ))
    .await;
    let (ack, id) = chat.slack("invite sales").await;
    assert!(ack.starts_with("Working on it"));
    chat.shutdown().await;
    assert!(
        chat.next_post().await.contains("chat.whatsapp.com"),
        "delivered before exit"
    );
    let store = waops::store::Store::connect(&format!("sqlite://{}", chat.app.dir.path().join("waops.db").display()))
        .await
        .unwrap();
    assert_eq!(store.audit_for_request(&id).await.unwrap()[0].outcome, "ok");
}

#[tokio::test]
async fn commands_cut_short_by_shutdown_are_told_so_and_audited() {
    let provider = slow_list(Duration::from_secs(10)).await;
    let mut chat = Chat::start(&format!(
        "{}\n[server]\nshutdown_grace_s = 1",
        periskope(&provider.uri(), "timeout_ms = 20000")
    ))
    .await;
    let (_, slack_id) = chat.slack("invite sales").await;
    let deferred = chat
        .discord("invite", json!([{"name": "group", "type": 3, "value": "sales"}]))
        .await;
    assert_eq!(deferred["type"], 5);
    // Both run (acked, spawned) and wait on the provider's slow group list
    // (one call: the second waits for the first's) when shutdown begins.
    while provider.received_requests().await.unwrap().is_empty() {
        tokio::task::yield_now().await;
    }
    chat.shutdown().await;
    let mut told = vec![chat.next_post().await, chat.next_post().await];
    told.sort();
    for message in &told {
        assert!(
            message.starts_with("Interrupted: waops was restarting before this finished"),
            "{message}"
        );
    }
    let store = waops::store::Store::connect(&format!("sqlite://{}", chat.app.dir.path().join("waops.db").display()))
        .await
        .unwrap();
    assert_eq!(
        store.audit_for_request(&slack_id).await.unwrap()[0].outcome,
        "interrupted"
    );
    let interrupted = store
        .recent_audit(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.outcome == "interrupted")
        .count();
    assert_eq!(interrupted, 2, "one row for each");
}

/// A TCP proxy in front of PostgreSQL that can drop every connection and
/// refuse new ones, as a restarting server does.
struct Proxy {
    addr: std::net::SocketAddr,
    up: tokio::sync::watch::Sender<bool>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*watch.borrow() {
                    drop(client);
                    continue;
                }
                let mut down = watch.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Proxy { addr, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

#[tokio::test]
async fn postgres_restarting_mid_run_loses_no_audit_row() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let mut direct = url::Url::parse(&url).unwrap();
    let target = format!("{}:{}", direct.host_str().unwrap(), direct.port().unwrap());
    let proxy = Proxy::start(target).await;
    direct.set_port(Some(proxy.addr.port())).unwrap();
    let mut chat = Chat::start_with_store("", Some(direct.as_str())).await;
    let (_, before) = chat.slack("invite sales").await;
    assert!(chat.next_post().await.contains("chat.whatsapp.com"));
    assert_eq!(chat.outcome(&before).await, "ok");

    // The server goes away: connections drop, new ones are refused.
    proxy.set(false);
    let during = commands_while_the_store_is_down(&mut chat).await;
    // It comes back within the audit writer's patience.
    proxy.set(true);
    all_written_after_it_is_back(&chat, &during).await;

    // Then the server itself restarts: scripts/postgres.sh's cluster is stopped
    // (closing every connection from its side) and started again. Only this test
    // uses PostgreSQL in this binary, and test binaries run one at a time.
    let Some(ctl) = std::env::var("WAOPS_TEST_POSTGRES_CTL").ok().filter(|c| !c.is_empty()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but WAOPS_TEST_POSTGRES_CTL is not set"
        );
        return;
    };
    let server = Cluster::stop(ctl).await;
    let during = commands_while_the_store_is_down(&mut chat).await;
    server.start().await;
    all_written_after_it_is_back(&chat, &during).await;
}

/// Three commands answered while the store is away, and /readyz saying why;
/// their request ids.
async fn commands_while_the_store_is_down(chat: &mut Chat) -> Vec<String> {
    let mut during = Vec::new();
    for _ in 0..3 {
        let (_, id) = chat.slack("invite sales").await;
        assert!(chat.next_post().await.contains("chat.whatsapp.com"), "commands go on");
        during.push(id);
    }
    let ready = reqwest::get(format!("{}/readyz", chat.base)).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert!(ready.text().await.unwrap().starts_with("not ready: store"));
    during
}

/// Each of those commands' audit rows written once the store is back, and /readyz ready.
async fn all_written_after_it_is_back(chat: &Chat, during: &[String]) {
    for id in during {
        assert_eq!(chat.outcome(id).await, "ok", "written after the store came back");
    }
    let ready = reqwest::get(format!("{}/readyz", chat.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// scripts/postgres.sh's cluster, stopped; started again when dropped, so a
/// failed assertion does not leave the later test binaries without a server.
struct Cluster {
    ctl: Option<String>,
}

impl Cluster {
    async fn stop(ctl: String) -> Cluster {
        run_ctl(ctl.clone(), "stop").await;
        Cluster { ctl: Some(ctl) }
    }

    async fn start(mut self) {
        run_ctl(self.ctl.take().unwrap(), "start").await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(ctl) = self.ctl.take() {
            let _ = std::process::Command::new(ctl).arg("start").status();
        }
    }
}

async fn run_ctl(ctl: String, op: &'static str) {
    let status = tokio::task::spawn_blocking(move || std::process::Command::new(ctl).arg(op).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.status.success(),
        "ctl {op}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// Rate-limit answers with hostile wait values (negative, not a number, huge)
/// neither panic the follow-up nor stall it: the result is still delivered
/// after the usual bounded retries.
#[tokio::test]
async fn hostile_retry_after_values_neither_panic_nor_stall() {
    let mut chat = Chat::start("").await;
    let discord_429s = [
        ResponseTemplate::new(429).set_body_json(json!({"retry_after": -1, "global": false})),
        ResponseTemplate::new(429)
            .insert_header("retry-after", "1e300")
            .set_body_json(json!({"retry_after": 1e300, "global": true})),
    ];
    let slack_429s = [
        ResponseTemplate::new(429).insert_header("retry-after", "-1"),
        ResponseTemplate::new(429).insert_header("retry-after", "NaN"),
    ];
    for (priority, (discord, slack)) in discord_429s.into_iter().zip(slack_429s).enumerate() {
        let priority = priority as u8 + 1;
        Mock::given(method("PATCH"))
            .respond_with(discord)
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(&chat.hooks)
            .await;
        Mock::given(method("POST"))
            .and(path("/respond"))
            .respond_with(slack)
            .up_to_n_times(1)
            .with_priority(priority)
            .mount(&chat.hooks)
            .await;
    }
    let started = std::time::Instant::now();
    chat.discord("invite", json!([{"name": "group", "type": 3, "value": "sales"}]))
        .await;
    assert!(chat.next_post().await.contains("chat.whatsapp.com"));
    chat.slack("invite sales").await;
    assert!(chat.next_post().await.contains("chat.whatsapp.com"));
    let requests = chat.hooks.received_requests().await.unwrap();
    let patches = requests
        .iter()
        .filter(|r| r.method == wiremock::http::Method::PATCH)
        .count();
    let posts = requests.iter().filter(|r| r.url.path() == "/respond").count();
    assert_eq!((patches, posts), (3, 3), "two 429s each, then delivered");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
}
