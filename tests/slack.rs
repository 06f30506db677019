//! Slack end to end: the real router over HTTP, signed requests, and wiremock
//! fakes for `response_url`, the Slack Web API and (where it matters) the provider.

mod common;

use std::time::{Duration, Instant};

use common::{provider_toml, TestApp};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SECRET: &str = "test-signing-secret";
const GROUP: &str = "120363041234567890@g.us";

/// Forwards every request body it receives to the test.
struct Capture(mpsc::UnboundedSender<Value>);

impl Respond for Capture {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let _ = self
            .0
            .send(serde_json::from_slice(&request.body).unwrap_or(Value::Null));
        ResponseTemplate::new(200).set_body_string("ok")
    }
}

struct Harness {
    app: TestApp,
    base: String,
    slack: MockServer,
    posts: mpsc::UnboundedReceiver<Value>,
    http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    async fn new(extra: &str) -> Self {
        let slack = MockServer::start().await;
        let (tx, posts) = mpsc::unbounded_channel();
        Mock::given(method("POST"))
            .and(path("/respond"))
            .respond_with(Capture(tx))
            .mount(&slack)
            .await;
        let bindings = if extra.contains("[permissions.bindings]") {
            ""
        } else {
            "[permissions.bindings]\nadmin = [\"slack:user:UADMIN\"]\n"
        };
        let config = format!(
            "[slack]\nsigning_secret = \"{SECRET}\"\nbot_token = \"xoxb-test\"\napi_url = \"{0}/api\"\nresponse_url_prefixes = [\"{0}/\"]\n\n{extra}\n{bindings}",
            slack.uri()
        );
        let app = TestApp::with_config(&config).await;
        let (base, stop) = app.serve().await;
        Harness {
            app,
            base,
            slack,
            posts,
            http: reqwest::Client::new(),
            _stop: stop,
        }
    }

    fn response_url(&self) -> String {
        format!("{}/respond", self.slack.uri())
    }

    async fn signed(&self, route: &str, body: String, timestamp: i64) -> reqwest::Response {
        common::slack::signed(&format!("{}{route}", self.base), SECRET, timestamp, body).await
    }

    fn now(&self) -> i64 {
        self.app.ctx.clock.now().as_second()
    }

    async fn command(&self, user: &str, channel: &str, text: &str) -> (u16, Value, Duration) {
        let body = common::slack::command_body(user, channel, text, &self.response_url());
        let started = Instant::now();
        let r = self.signed("/slack/commands", body, self.now()).await;
        let elapsed = started.elapsed();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null), elapsed)
    }

    async fn click(&self, user: &str, action: &str, value: &str) -> u16 {
        let payload = common::slack::click(user, action, value, &self.response_url());
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        self.signed("/slack/interactions", body, self.now())
            .await
            .status()
            .as_u16()
    }

    async fn next_post(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(15), self.posts.recv())
            .await
            .expect("a follow-up arrives")
            .unwrap()
    }
}

fn text_of(message: &Value) -> String {
    let mut out = vec![message["text"].as_str().unwrap_or_default().to_string()];
    for block in message["blocks"].as_array().into_iter().flatten() {
        if let Some(t) = block["text"]["text"].as_str() {
            out.push(t.to_string());
        }
        for e in block["elements"].as_array().into_iter().flatten() {
            if let Some(t) = e["text"].as_str() {
                out.push(t.to_string());
            }
        }
    }
    out.join("\n")
}

#[tokio::test]
async fn help_and_whoami_answer_inline() {
    let h = Harness::new("").await;
    let (status, body, elapsed) = h.command("UADMIN", "C1", "help").await;
    assert_eq!(status, 200);
    assert_eq!(body["response_type"], "ephemeral");
    assert!(text_of(&body).contains("waops commands you can run here"), "{body}");
    assert!(elapsed < Duration::from_secs(3));
    let (_, body, _) = h.command("UADMIN", "C1", "whoami").await;
    assert!(text_of(&body).contains("You are `slack:user:UADMIN`"), "{body}");
    assert!(text_of(&body).contains("`slack:C1`"));
}

#[tokio::test]
async fn bad_and_stale_signatures_run_nothing() {
    let h = Harness::new("").await;
    let body = serde_urlencoded::to_string([
        ("user_id", "UADMIN"),
        ("channel_id", "C1"),
        ("text", "invite sales"),
        ("response_url", &h.response_url()),
    ])
    .unwrap();
    let forged = h
        .http
        .post(format!("{}/slack/commands", h.base))
        .header("x-slack-request-timestamp", h.now().to_string())
        .header(
            "x-slack-signature",
            "v0=0000000000000000000000000000000000000000000000000000000000000000",
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let stale = h.signed("/slack/commands", body.clone(), h.now() - 301).await;
    assert_eq!(stale.status(), 401);
    // Timestamps at the ends of the range: refused, not an overflow.
    for extreme in [i64::MIN, i64::MAX, -1] {
        assert_eq!(h.signed("/slack/commands", body.clone(), extreme).await.status(), 401);
    }
    let unsigned = h
        .http
        .post(format!("{}/slack/commands", h.base))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    h.app.ctx.audit.flush().await;
    assert!(
        h.app.ctx.store.recent_audit(10).await.unwrap().is_empty(),
        "nothing ran"
    );
    assert!(
        h.slack.received_requests().await.unwrap().is_empty(),
        "nothing was posted"
    );
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let h = Harness::new("").await;
    let r = h.signed("/slack/commands", "text=help".into(), h.now()).await;
    assert_eq!(r.status(), 400, "missing user_id and channel_id");
    let big = format!("text={}", "x".repeat(70_000));
    let r = h.signed("/slack/commands", big.clone(), h.now()).await;
    assert_eq!(r.status(), 413);
    // Without a declared length (chunked), the limit applies as the body is read.
    assert!(
        chunked_post(&h.base, "/slack/commands", &big)
            .await
            .starts_with("HTTP/1.1 413"),
        "a streamed oversized body is refused"
    );
    let small = chunked_post(&h.base, "/slack/commands", "text=help").await;
    assert!(
        small.starts_with("HTTP/1.1 401"),
        "a small streamed body reaches the signature check: {small}"
    );
    let r = h
        .signed("/slack/interactions", "payload=%7Bnot-json".into(), h.now())
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn refusals_answer_inline_and_audit_slack_ids() {
    let h = Harness::new("").await;
    let (status, body, _) = h.command("USTRANGER", "C9", "groups").await;
    assert_eq!(status, 200);
    assert_eq!(
        text_of(&body).lines().nth(1).unwrap(),
        "*You may not run `groups` (no role is bound to you; ask an admin)*"
    );
    h.app.ctx.audit.flush().await;
    let row = &h.app.ctx.store.recent_audit(1).await.unwrap()[0];
    assert_eq!(
        (row.platform.as_ref(), row.principal.as_str(), row.channel.as_str()),
        ("slack", "slack:user:USTRANGER", "slack:C9")
    );
    assert_eq!(row.decision, "refused");
}

#[tokio::test]
async fn provider_commands_ack_then_follow_up() {
    let mut h = Harness::new("").await;
    let (status, body, elapsed) = h.command("UADMIN", "C1", "invite sales").await;
    assert_eq!(status, 200);
    assert_eq!(text_of(&body).lines().next().unwrap(), "Working on it…");
    assert_eq!(body["response_type"], "ephemeral");
    assert!(elapsed < Duration::from_secs(3));
    let post = h.next_post().await;
    assert_eq!(post["response_type"], "in_channel");
    assert_eq!(post["replace_original"], false);
    assert!(
        text_of(&post).contains("<https://chat.whatsapp.com/Kx7Pq2Lm9Zt4Rw8Yb3Nc>"),
        "{post}"
    );
}

#[tokio::test]
async fn a_slow_provider_still_acks_fast_and_follows_up() {
    let provider = MockServer::start().await;
    common::mount_periskope_groups(&provider, GROUP).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"4915112345678@c.us": {"is_success": true, "message": "added"}}))
                .set_delay(Duration::from_secs(5)),
        )
        .expect(1)
        .mount(&provider)
        .await;
    let mut h = Harness::new(&provider_toml(
        "periskope",
        &format!("{}/v1", provider.uri()),
        "timeout_ms = 10000\n",
    ))
    .await;
    let (status, body, elapsed) = h.command("UADMIN", "C1", "add sales +4915112345678").await;
    assert_eq!(
        (status, text_of(&body).lines().next().unwrap()),
        (200, "Working on it…")
    );
    assert!(elapsed < Duration::from_secs(3), "ack took {elapsed:?}");
    let post = h.next_post().await;
    assert!(text_of(&post).contains("`+4915112345678` — added"), "{post}");
}

#[tokio::test]
async fn provider_errors_reach_the_user() {
    let provider = MockServer::start().await;
    common::mount_periskope_groups(&provider, GROUP).await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}")))
        .respond_with(ResponseTemplate::new(500))
        .mount(&provider)
        .await;
    let mut h = Harness::new(&provider_toml(
        "periskope",
        &format!("{}/v1", provider.uri()),
        "max_retries = 0\n",
    ))
    .await;
    h.command("UADMIN", "C1", "invite sales").await;
    let post = h.next_post().await;
    assert_eq!(post["response_type"], "ephemeral");
    assert!(
        text_of(&post).contains("The periskope provider failed (HTTP 500); try again later"),
        "{post}"
    );
}

#[tokio::test]
async fn preview_apply_once_and_only_by_its_user() {
    let mut h = Harness::new("").await;
    let numbers: Vec<String> = (1..=21).map(|i| format!("+49151400{i:05}")).collect();
    h.command("UADMIN", "C1", &format!("add sales {}", numbers.join(" ")))
        .await;
    let preview = h.next_post().await;
    assert_eq!(preview["response_type"], "ephemeral");
    assert!(
        text_of(&preview).contains("This adds 21 numbers to Sales Team"),
        "{preview}"
    );
    let actions = preview["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("buttons")
        .clone();
    let id = actions["elements"][0]["value"].as_str().unwrap().to_string();

    // Somebody else's click changes nothing.
    assert_eq!(h.click("UOTHER", "apply", &id).await, 200);
    assert!(text_of(&h.next_post().await)
        .contains("already applied or cancelled, has expired (15 minutes), or is not yours"));

    assert_eq!(h.click("UADMIN", "apply", &id).await, 200);
    assert_eq!(text_of(&h.next_post().await).lines().next().unwrap(), "Working on it…");
    let result = h.next_post().await;
    assert!(text_of(&result).contains("21 added"), "{result}");

    assert_eq!(h.click("UADMIN", "apply", &id).await, 200);
    assert!(
        text_of(&h.next_post().await).contains("already applied"),
        "a second Apply runs nothing"
    );
    h.app.ctx.audit.flush().await;
    let adds = h
        .app
        .ctx
        .store
        .recent_audit(20)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "add" && r.outcome == "ok")
        .count();
    assert_eq!(adds, 1, "the add ran once");
}

#[tokio::test]
async fn cancel_drops_the_preview() {
    let mut h = Harness::new("").await;
    let numbers: Vec<String> = (1..=21).map(|i| format!("+49151500{i:05}")).collect();
    h.command("UADMIN", "C1", &format!("add sales {}", numbers.join(",")))
        .await;
    let preview = h.next_post().await;
    let id = preview["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap()["elements"][1]["value"]
        .as_str()
        .unwrap()
        .to_string();
    h.click("UADMIN", "cancel", &id).await;
    let post = h.next_post().await;
    assert_eq!(post["replace_original"], true);
    assert!(text_of(&post).contains("Cancelled; nothing was sent"));
    h.click("UADMIN", "apply", &id).await;
    assert!(text_of(&h.next_post().await).contains("already applied or cancelled"));
}

#[tokio::test]
async fn long_results_fit_and_names_are_escaped() {
    let provider = MockServer::start().await;
    let mut chats: Vec<Value> = (0..3000)
        .map(|i| json!({"chat_id": format!("1203630{i:011}@g.us"), "chat_name": format!("Group {i}")}))
        .collect();
    chats.push(json!({"chat_id": "120363099999999999@g.us", "chat_name": "<!channel> *boom* <@U123> <https://evil.example|x>"}));
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"chats": chats, "count": 3001})))
        .mount(&provider)
        .await;
    let mut h = Harness::new(&provider_toml("periskope", &format!("{}/v1", provider.uri()), "")).await;
    h.command("UADMIN", "C1", "groups").await;
    let post = h.next_post().await;
    let blocks = post["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50, "{}", blocks.len());
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000);
        }
    }
    let all = serde_json::to_string(&post).unwrap();
    assert!(all.contains("… and ") && all.contains(" more"), "the cut is said");
    for bad in ["<!channel>", "<@U123>", "<https://evil"] {
        assert!(!all.contains(bad), "{bad}");
    }
    h.command("UADMIN", "C1", "groups boom").await;
    let post = h.next_post().await;
    // Table cells sit in a code block: entities escaped, and Slack applies no formatting there.
    let table = text_of(&post);
    assert!(table.contains("```\nName"), "{post}");
    assert!(
        table.contains("&lt;!channel&gt; *boom* &lt;@U123&gt; &lt;https://evil.example|x&gt;"),
        "{post}"
    );
}

const USERGROUP_ROLES: &str = "[permissions.roles.sales]\ncommands = [\"invite\", \"groups\"]\ngroups = [\"sales\"]\n\n[permissions.bindings]\nadmin = [\"slack:user:UADMIN\"]\nsales = [\"slack:usergroup:S0SALES\"]\n";

#[tokio::test]
async fn usergroup_members_are_fetched_and_cached() {
    let h = Harness::new(USERGROUP_ROLES).await;
    Mock::given(method("GET"))
        .and(path("/api/usergroups.users.list"))
        .and(query_param("usergroup", "S0SALES"))
        .and(wiremock::matchers::header("authorization", "Bearer xoxb-test"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true, "users": ["U1", "U2"]})))
        .expect(1)
        .mount(&h.slack)
        .await;
    // Cold cache, Slack answers at once: still answered inline.
    let (_, body, _) = h.command("U1", "C1", "whoami").await;
    assert!(text_of(&body).contains("*Roles:* sales"), "{body}");
    assert!(text_of(&body).contains("*Also:* slack:usergroup:S0SALES"), "{body}");
    // Warm cache: inline, and Slack is not asked again (expect(1) above).
    let (_, body, _) = h.command("U1", "C1", "whoami").await;
    assert!(text_of(&body).contains("*Roles:* sales"), "{body}");
    let (_, body, _) = h.command("U3", "C1", "groups").await;
    assert!(
        text_of(&body).contains("You may not run `groups` (no role is bound to you; ask an admin)"),
        "{body}"
    );
}

/// A slow user-group list: a usage error is still answered inline at once,
/// a command that needs the caller's roles is deferred and decided in the
/// follow-up, and only one fetch is made for both.
#[tokio::test]
async fn with_slow_usergroups_parse_errors_are_inline_and_commands_deferred() {
    let mut h = Harness::new(USERGROUP_ROLES).await;
    Mock::given(method("GET"))
        .and(path("/api/usergroups.users.list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"ok": true, "users": ["U1"]}))
                .set_delay(Duration::from_millis(2500)),
        )
        .expect(1)
        .mount(&h.slack)
        .await;
    let (_, body, elapsed) = h.command("U1", "C1", "frobnicate").await;
    assert!(text_of(&body).contains("frobnicate"), "{body}");
    assert!(elapsed < Duration::from_millis(900), "not held for Slack: {elapsed:?}");
    let (_, body, elapsed) = h.command("U1", "C1", "whoami").await;
    assert_eq!(text_of(&body).lines().next().unwrap(), "Working on it…");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    let post = h.next_post().await;
    assert!(text_of(&post).contains("*Roles:* sales"), "{post}");
}

/// Fail closed: when Slack cannot list a user group, its members get nothing
/// from it, and are told to try again.
#[tokio::test]
async fn usergroups_slack_cannot_list_grant_nothing() {
    let h = Harness::new(USERGROUP_ROLES).await;
    Mock::given(method("GET"))
        .and(path("/api/usergroups.users.list"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "missing_scope"})))
        .mount(&h.slack)
        .await;
    let (_, body, _) = h.command("U1", "C1", "groups").await;
    assert!(
        text_of(&body).contains("waops could not check your Slack user groups; try again in a moment"),
        "{body}"
    );
    h.app.ctx.audit.flush().await;
    let rows = h.app.ctx.store.recent_audit(10).await.unwrap();
    assert!(
        rows.iter()
            .any(|r| r.command == "groups" && r.outcome == "usergroups_unavailable"),
        "{rows:?}"
    );
}

/// Slack's client, with a bot token, whose Web API is `slack`.
fn slack_client(slack: &MockServer) -> waops::adapters::slack::outbound::SlackClient {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(
        dir.path(),
        &format!(
            "[slack]\nsigning_secret = \"s\"\nbot_token = \"xoxb-test\"\napi_url = \"{}/api\"\n",
            slack.uri()
        ),
        "sqlite::memory:",
    );
    waops::adapters::slack::outbound::SlackClient::new(&settings.slack).unwrap()
}

#[tokio::test]
async fn post_message_client_retries_429_and_reports_api_errors() {
    use waops::adapters::slack::outbound::SlackError;
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&slack)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/chat.postMessage"))
        .and(wiremock::matchers::header("authorization", "Bearer xoxb-test"))
        .and(wiremock::matchers::body_partial_json(
            json!({"channel": "C0DIGEST", "text": "Digest"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(common::slack::posted("C0DIGEST", "1700000000.000100")))
        .expect(1)
        .mount(&slack)
        .await;
    let client = slack_client(&slack);
    let message = waops::adapters::slack::render::content(&waops::core::Reply::info("Digest"));
    let started = Instant::now();
    assert_eq!(
        client.post_message("C0DIGEST", message.clone()).await.unwrap(),
        "1700000000.000100"
    );
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After");

    let failing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "channel_not_found"})))
        .mount(&failing)
        .await;
    let client = slack_client(&failing);
    match client.post_message("C404", message).await {
        Err(SlackError::Api(e)) => assert_eq!(e, "channel_not_found"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn long_adds_post_progress_before_the_result() {
    let provider = MockServer::start().await;
    common::mount_periskope_groups(&provider, GROUP).await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(4)
        .mount(&provider)
        .await;
    // Four chunks 1.1 s apart: progress after chunk 1 and after chunk 3 (2 s later), then the result.
    let extra = provider_toml(
        "periskope",
        &format!("{}/v1", provider.uri()),
        "add_chunk_size = 1\nadd_pause_ms = 1100\n",
    );
    let mut h = Harness::new(&extra).await;
    h.command(
        "UADMIN",
        "C1",
        "add sales +4915112345671 +4915112345672 +4915112345673 +4915112345674",
    )
    .await;
    let first = h.next_post().await;
    assert_eq!(
        (text_of(&first).lines().next().unwrap(), &first["replace_original"]),
        ("Adding… 1/4", &json!(true))
    );
    let second = h.next_post().await;
    assert_eq!(text_of(&second).lines().next().unwrap(), "Adding… 3/4");
    let result = h.next_post().await;
    assert!(text_of(&result).contains("Add to Sales Team"), "{result}");
}

#[tokio::test]
async fn a_repeated_delivery_is_answered_once() {
    let mut h = Harness::new("").await;
    let body = serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("user_id", "UADMIN"),
        ("command", "/wa"),
        ("text", "invite sales"),
        ("response_url", &h.response_url()),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ])
    .unwrap();
    let first: Value = h
        .signed("/slack/commands", body.clone(), h.now())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(text_of(&first).lines().next().unwrap(), "Working on it…");
    // The repeat is acknowledged like any command; its follow-up finds the
    // trigger id claimed and stops before running anything.
    let again: Value = h.signed("/slack/commands", body, h.now()).await.json().await.unwrap();
    assert_eq!(text_of(&again).lines().next().unwrap(), "Working on it…");
    assert!(text_of(&h.next_post().await).contains("chat.whatsapp.com"));
    assert_eq!(h.app.audited("invite").await, 1, "the command ran once");
    assert!(h.posts.try_recv().is_err(), "one follow-up");
}

/// POSTs `body` in 1,000-byte chunks with no Content-Length; returns the raw response.
async fn chunked_post(base: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(1000) {
        request.push_str(&format!(
            "{:x}\r\n{}\r\n",
            chunk.len(),
            std::str::from_utf8(chunk).unwrap()
        ));
    }
    request.push_str("0\r\n\r\n");
    // The server may answer and close before the whole body is written.
    let _ = s.write_all(request.as_bytes()).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// `--yes` is the console's: from Slack a large add still shows its preview,
/// and nothing is added until its Apply button is clicked.
#[tokio::test]
async fn yes_from_chat_does_not_skip_the_preview() {
    let mut h = Harness::new("").await;
    let numbers: Vec<String> = (1..=21).map(|i| format!("+49151500{i:05}")).collect();
    h.command("UADMIN", "C1", &format!("add sales {} --yes", numbers.join(" ")))
        .await;
    let answer = h.next_post().await;
    assert!(
        text_of(&answer).contains("This adds 21 numbers to Sales Team"),
        "{answer}"
    );
    h.app.ctx.audit.flush().await;
    let rows = h.app.ctx.store.recent_audit(5).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.outcome.as_ref()).collect::<Vec<_>>(), ["preview"]);
}

/// Results go only to `response_url`s under `slack.response_url_prefixes`: a
/// signed request naming another is refused before anything runs, and a
/// button click naming one is too.
#[tokio::test]
async fn a_response_url_outside_the_allowed_prefixes_is_refused() {
    let h = Harness::new("").await;
    let body = serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("user_id", "UADMIN"),
        ("command", "/wa"),
        ("text", "invite sales --reset"),
        ("response_url", "http://169.254.169.254/latest/meta-data"),
        ("trigger_id", "1.2.3"),
    ])
    .unwrap();
    let r = h.signed("/slack/commands", body, h.now()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "response_url not allowed\n");
    let click = common::slack::click("UADMIN", "apply", "x", "https://evil.example/hook");
    let body = serde_urlencoded::to_string([("payload", click.to_string())]).unwrap();
    assert_eq!(h.signed("/slack/interactions", body, h.now()).await.status(), 400);
    h.app.ctx.audit.flush().await;
    assert!(h.app.ctx.store.recent_audit(5).await.unwrap().is_empty(), "nothing ran");
}

/// A role limited to some groups never learns the others' names or ids:
/// candidates list only groups in scope, and a refusal names the group only as
/// the caller typed it (sandbox groups; the role covers the two Community
/// groups and Sales Team).
#[tokio::test]
async fn a_limited_role_never_learns_other_groups() {
    let mut h = Harness::new(
        "[permissions.roles.community]\ncommands = [\"history\", \"invite\"]\ngroups = [\"name:Community *\", \"sales\"]\n\n\
         [permissions.bindings]\ncommunity = [\"slack:user:UCOMM\"]\n",
    )
    .await;
    let outside = [
        ("Support Crew", "120363041234567891@g.us"),
        ("Announcements", "120363041234567894@g.us"),
        ("Open Day Visitors", "120363041234567895@g.us"),
        ("Partners Lounge", "120363041234567896@g.us"),
    ];
    let cases = [
        // Every group but Sales Team holds an "o": only the two in scope are listed.
        (
            "history o",
            "*2 groups match o; retry with an id:*\n*Community Berlin* `120363041234567892@g.us`\n*Community Hamburg* `120363041234567893@g.us`",
        ),
        ("invite Supp", "You may not run `invite` on Supp (no role grants it on this group; ask an admin)*"),
        ("invite support", "You may not run `invite` on support (no role grants it on this group; ask an admin)*"),
        (
            "history 120363041234567894@g.us",
            "You may not run `history` on 120363041234567894@g.us (no role grants it on this group; ask an admin)*",
        ),
        ("history Nowhere", "*No group matches Nowhere*"),
    ];
    for (text, expected) in cases {
        let (_, ack, _) = h.command("UCOMM", "C1", text).await;
        let answer = if text_of(&ack).starts_with("Working on it") {
            text_of(&h.next_post().await)
        } else {
            text_of(&ack)
        };
        assert!(answer.contains(expected), "{text}: {answer}");
        for (name, id) in outside {
            // The one id the caller typed may come back; nothing else may.
            let typed = text.contains(id);
            assert!(
                !answer.contains(name) && (typed || !answer.contains(id)),
                "{text} leaked {name}: {answer}"
            );
        }
    }
    h.app.ctx.audit.flush().await;
    let rows = h.app.ctx.store.recent_audit(10).await.unwrap();
    let refused = rows.iter().filter(|r| r.decision == "refused").count();
    assert_eq!(
        refused, 3,
        "invite Supp, invite support and the id are refused: {rows:?}"
    );
}

/// `history --limit N` on Periskope reads notifications only until it has N+1:
/// one page here of a history of 400, and the reply says there are more
/// without counting them.
#[tokio::test]
async fn history_stops_paging_once_it_has_enough() {
    let provider = MockServer::start().await;
    common::mount_periskope_groups(&provider, GROUP).await;
    let note = |i: usize| json!({"notification_id": format!("n{i}"), "author": "918527184400@c.us", "recipientids": [format!("9195378{i:05}@c.us")], "type": "add", "timestamp": format!("2026-11-20T{:02}:{:02}:00Z", 23 - i / 60 % 24, 59 - i % 60), "chat_id": GROUP});
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}/notifications")))
        .and(query_param("offset", "0"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"notifications": (0..200).map(note).collect::<Vec<_>>(), "count": 400})),
        )
        .expect(1)
        .mount(&provider)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}/notifications")))
        .and(query_param("offset", "200"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"notifications": (200..400).map(note).collect::<Vec<_>>(), "count": 400})),
        )
        .expect(0)
        .mount(&provider)
        .await;
    let mut h = Harness::new(&provider_toml("periskope", &format!("{}/v1", provider.uri()), "")).await;
    h.command("UADMIN", "C1", "history sales --limit 5").await;
    let answer = text_of(&h.next_post().await);
    assert_eq!(answer.matches("· added ·").count(), 5, "{answer}");
    assert!(answer.contains("More — use --limit/--since"), "{answer}");
    provider.verify().await;
}

/// Provider error text never carries the account's secrets to chat, and the
/// unauthenticated /readyz names the failing dependency and the error's kind,
/// not its text.
#[tokio::test]
async fn provider_error_text_is_kept_out_of_chat_and_readyz() {
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_string(format!("token {} may not read chats of 919876543210", common::TOKEN)),
        )
        .mount(&provider)
        .await;
    let mut h = Harness::new(&provider_toml("periskope", &format!("{}/v1", provider.uri()), "")).await;
    let ready = h.http.get(format!("{}/readyz", h.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "not ready: provider: forbidden\n");
    h.command("UADMIN", "C1", "groups").await;
    let answer = text_of(&h.next_post().await);
    assert!(
        answer.contains("The periskope provider refused this request: token [redacted] may not read chats"),
        "{answer}"
    );
    assert!(!answer.contains(common::TOKEN), "{answer}");
}

/// With `slack.team_ids` set, commands and clicks from another workspace are
/// answered "not served" and nothing runs; the listed workspace is served.
#[tokio::test]
async fn workspaces_outside_team_ids_are_not_served() {
    // The harness's extra lines continue its [slack] table.
    let h = Harness::new("team_ids = [\"T1\"]\n").await;
    let body = serde_urlencoded::to_string([
        ("team_id", "T2OTHER"),
        ("channel_id", "C1"),
        ("user_id", "UADMIN"),
        ("command", "/wa"),
        ("text", "invite sales --reset"),
        ("response_url", &h.response_url()),
        ("trigger_id", "t-other"),
    ])
    .unwrap();
    let r = h.signed("/slack/commands", body, h.now()).await;
    assert_eq!(r.status(), 200);
    let answer = text_of(&r.json().await.unwrap());
    assert!(answer.contains("This waops does not serve this workspace"), "{answer}");
    let mut click = common::slack::click("UADMIN", "apply", "x", &h.response_url());
    click["team"]["id"] = json!("T2OTHER");
    let body = serde_urlencoded::to_string([("payload", click.to_string())]).unwrap();
    let r = h.signed("/slack/interactions", body, h.now()).await;
    assert!(text_of(&r.json().await.unwrap()).contains("does not serve this workspace"));
    h.app.ctx.audit.flush().await;
    assert!(h.app.ctx.store.recent_audit(5).await.unwrap().is_empty(), "nothing ran");
    let (_, ack, _) = h.command("UADMIN", "C1", "whoami").await;
    assert!(
        text_of(&ack).contains("You are `slack:user:UADMIN`"),
        "T1 is served: {ack}"
    );
}

/// Offboarding from Slack: the preview (never naming the group outside the
/// caller's scope) carries Apply; Apply removes once, a second Apply runs
/// nothing, and each group acted on has its audit row.
#[tokio::test]
async fn offboarding_previews_then_applies_once() {
    let mut h = Harness::new(
        "[permissions.roles.hr]\ncommands = [\"remove\", \"members\"]\ngroups = [\"sales\", \"name:Announce*\"]\n\n\
         [permissions.bindings]\nhr = [\"slack:user:UHR\"]\n",
    )
    .await;
    h.command("UHR", "C1", "remove * +4915178787878").await;
    let preview = h.next_post().await;
    let text = text_of(&preview);
    assert!(text.contains("This will remove 1 membership from 1 group"), "{text}");
    assert!(text.contains("*Sales Team*: `+4915178787878`"), "{text}");
    assert!(
        text.contains("Stays in *Announcements* (the connected number is not an admin there)"),
        "{text}"
    );
    assert!(!text.contains("Support"), "{text}");
    let id = preview["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("Apply and Cancel")["elements"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(h.click("UHR", "apply", &id).await, 200);
    assert_eq!(text_of(&h.next_post().await).lines().next().unwrap(), "Working on it…");
    let result = text_of(&h.next_post().await);
    assert!(result.contains("*Sales Team*: `+4915178787878` — removed"), "{result}");
    assert_eq!(h.click("UHR", "apply", &id).await, 200);
    assert!(text_of(&h.next_post().await).contains("already applied"));
    h.app.ctx.audit.flush().await;
    let removes: Vec<_> = h
        .app
        .ctx
        .store
        .recent_audit(20)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "remove" && r.outcome == "ok")
        .map(|r| r.group_id)
        .collect();
    assert_eq!(removes, [Some(GROUP.to_string())], "one row, for Sales Team");
    h.command("UHR", "C1", "members sales 7878").await;
    assert!(
        text_of(&h.next_post().await).contains("0 members of"),
        "removed for real"
    );
}

/// The two-person rule from Slack: the requester's preview offers "Request
/// approval"; the request goes to the channel; the requester and a person
/// without `approve` cannot approve it; a second person can, once; the
/// command runs with both people named and in its audit row.
#[tokio::test]
async fn two_person_approval_from_slack() {
    let mut h = Harness::new(
        "[permissions.roles.sales]\ncommands = [\"add\"]\ngroups = [\"sales\"]\napproval = \"two-person\"\n\n\
         [permissions.roles.lead]\ncommands = [\"approve\"]\ngroups = [\"sales\"]\n\n\
         [permissions.roles.viewer]\ncommands = [\"history\"]\ngroups = [\"*\"]\n\n\
         [permissions.bindings]\nsales = [\"slack:user:U1\"]\nlead = [\"slack:user:U2\"]\nviewer = [\"slack:user:U3\"]\n",
    )
    .await;
    let button = |message: &Value, action: &str| -> String {
        message["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .flat_map(|b| b["elements"].as_array().unwrap().clone())
            .find(|e| e["action_id"] == action)
            .unwrap_or_else(|| panic!("no {action} button: {message}"))["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    h.command("U1", "C1", "add sales +4915112345678").await;
    let preview = h.next_post().await;
    assert!(
        text_of(&preview).contains("needs a second person's approval"),
        "{preview}"
    );
    let confirmation = button(&preview, "request_approval");
    assert!(
        !preview.to_string().contains("\"apply\""),
        "no Apply for this role: {preview}"
    );

    assert_eq!(h.click("U1", "request_approval", &confirmation).await, 200);
    let to_requester = h.next_post().await;
    assert!(text_of(&to_requester).contains("Approval requested"), "{to_requester}");
    let request = h.next_post().await;
    assert_eq!(request["response_type"], "in_channel");
    assert!(
        text_of(&request).contains("slack:user:U1 asks for approval"),
        "{request}"
    );
    assert!(text_of(&request).contains("/wa add sales +4915112345678"), "{request}");
    let id = button(&request, "approve");

    assert_eq!(h.click("U1", "approve", &id).await, 200);
    assert!(text_of(&h.next_post().await).contains("You cannot approve your own request"));
    assert_eq!(h.click("U3", "approve", &id).await, 200);
    assert!(text_of(&h.next_post().await).contains("You may not approve"));

    assert_eq!(h.click("U2", "approve", &id).await, 200);
    assert_eq!(text_of(&h.next_post().await).lines().next().unwrap(), "Working on it…");
    let result = text_of(&h.next_post().await);
    assert!(result.contains("`+4915112345678` — added"), "{result}");
    assert!(
        result.contains("Requested by slack:user:U1, approved by slack:user:U2."),
        "{result}"
    );
    assert_eq!(h.click("U2", "approve", &id).await, 200);
    assert!(text_of(&h.next_post().await).contains("already decided or has expired"));

    h.app.ctx.audit.flush().await;
    let rows = h.app.ctx.store.recent_audit(20).await.unwrap();
    let ran: Vec<_> = rows
        .iter()
        .filter(|r| r.command == "add" && r.outcome == "ok")
        .map(|r| (r.principal.as_str(), r.approver.as_deref()))
        .collect();
    assert_eq!(ran, [("slack:user:U1", Some("slack:user:U2"))], "ran once, both named");
}
