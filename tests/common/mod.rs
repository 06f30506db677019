//! TestApp: the same context `waops serve`/`exec` build, on a fresh SQLite file
//! (or a fresh PostgreSQL database), the sandbox provider and a fixed clock.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use waops::adapters::console;
use waops::core::{new_request_id, ChannelRef, Clock, Context, Invocation, Platform, Principal, Reply};
use waops::settings::{LoadOptions, Settings};
use waops::store::AuditRecord;

/// The instant every test runs at.
pub const NOW: &str = "2026-11-24T12:00:00Z";

pub fn clock() -> Clock {
    Clock::Fixed(NOW.parse().unwrap())
}

pub struct TestApp {
    pub ctx: Context,
    pub dir: tempfile::TempDir,
}

/// Loads settings from `toml` layered over the defaults, with `env`, and a store URL.
pub fn settings(dir: &std::path::Path, toml: &str, store_url: &str) -> Settings {
    let path = dir.join("test.toml");
    std::fs::write(&path, toml).unwrap();
    let env = HashMap::from([("WAOPS__STORE__URL".to_string(), store_url.to_string())]);
    Settings::load(&LoadOptions {
        config_file: Some(path),
        base_dir: Some(PathBuf::from("/nonexistent")),
        env: Some(env),
    })
    .expect("test settings are valid")
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config("").await
    }

    pub async fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("waops.db").display());
        Self::with_store(toml, &url, dir).await
    }

    pub async fn with_store(toml: &str, url: &str, dir: tempfile::TempDir) -> Self {
        let settings = settings(dir.path(), toml, url);
        let ctx = waops::app::build_context(settings, clock())
            .await
            .expect("context builds");
        TestApp { ctx, dir }
    }

    /// Serves the real router on a free loopback port: its base URL, and the
    /// sender whose drop (or send) shuts the server down.
    pub async fn serve(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(waops::app::serve(self.ctx.clone(), listener, async move {
            let _ = stopped.await;
        }));
        (base, stop)
    }

    /// Runs text as the console user.
    pub async fn run(&self, text: &str) -> Reply {
        self.run_as(&["console"], "local", text).await.0
    }

    /// Runs text as the console user and renders it as `waops exec` prints it.
    pub async fn text(&self, text: &str) -> String {
        console::render(&self.run(text).await, false)
    }

    /// Runs text as these principals in this channel; returns the rendered
    /// reply (as `waops exec` prints it) and the request id.
    pub async fn text_as(&self, principals: &[&str], channel: &str, text: &str) -> (String, String) {
        let (reply, request_id) = self.run_as(principals, channel, text).await;
        (console::render(&reply, false), request_id)
    }

    /// Runs text as these principals in this channel; returns the reply and request id.
    pub async fn run_as(&self, principals: &[&str], channel: &str, text: &str) -> (Reply, String) {
        let inv = Invocation {
            platform: Platform::Console,
            principals: principals.iter().map(|p| Principal::parse(p).unwrap()).collect(),
            channel: ChannelRef::from_text(channel),
            text: text.to_string(),
            request_id: new_request_id(),
            applied: false,
            approved_by: None,
        };
        let reply = waops::commands::dispatch(&self.ctx, &inv).await;
        (reply, inv.request_id)
    }

    /// The one audit row of a request.
    pub async fn audit(&self, request_id: &str) -> AuditRecord {
        self.ctx.audit.flush().await;
        let rows = self.ctx.store.audit_for_request(request_id).await.unwrap();
        assert_eq!(rows.len(), 1, "exactly one audit row per command");
        rows.into_iter().next().unwrap()
    }

    /// How many of the latest 100 audit rows are for `command`.
    pub async fn audited(&self, command: &str) -> usize {
        self.ctx.audit.flush().await;
        let rows = self.ctx.store.recent_audit(100).await.unwrap();
        rows.iter().filter(|r| r.command == command).count()
    }
}

/// A fresh database on the PostgreSQL server named by WAOPS_TEST_POSTGRES_URL, if set.
pub async fn fresh_postgres() -> Option<String> {
    use sqlx::Connection;
    let Some(base) = std::env::var("WAOPS_TEST_POSTGRES_URL").ok().filter(|u| !u.is_empty()) else {
        // CI must exercise PostgreSQL; a missing server there is a failure, not a skip.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but WAOPS_TEST_POSTGRES_URL is not set"
        );
        return None;
    };
    let name = format!("waops_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("WAOPS_TEST_POSTGRES_URL must be reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// A provider of `kind` pointed at a fake server, with test-friendly pacing.
pub fn provider(kind: &str, base_url: &str, extra: &str) -> std::sync::Arc<dyn waops::providers::Provider> {
    let dir = tempfile::tempdir().unwrap();
    let toml = provider_toml(kind, base_url, extra);
    let settings = settings(dir.path(), &toml, "sqlite::memory:");
    waops::providers::build(&settings.provider, clock()).expect("provider builds")
}

/// The secret used by provider fakes; tests assert it never leaks.
pub const TOKEN: &str = "tok-SECRET-123";

/// A fixture file from tests/fixtures.
pub fn fixture(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// `[provider]` settings for a fake at `base_url`; lines in `extra` replace the defaults here.
pub fn provider_toml(kind: &str, base_url: &str, extra: &str) -> String {
    let defaults = [
        format!("kind = \"{kind}\""),
        format!("base_url = \"{base_url}\""),
        format!("token = \"{TOKEN}\""),
        "phone = \"919876543210\"".to_string(),
        "instance_id = \"inst-1\"".to_string(),
        format!("access_token = \"{TOKEN}\""),
        "max_retries = 2".to_string(),
        "timeout_ms = 2000".to_string(),
        "rate_per_second = 1000".to_string(),
        "burst = 1000".to_string(),
        "add_pause_ms = 0".to_string(),
    ];
    let key = |line: &str| line.split('=').next().unwrap_or("").trim().to_string();
    let overridden: Vec<String> = extra.lines().map(key).collect();
    let mut lines: Vec<String> = defaults.into_iter().filter(|l| !overridden.contains(&key(l))).collect();
    lines.extend(extra.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
    format!("[provider]\n{}\n", lines.join("\n"))
}

/// A Periskope fake's group list with the one group `group`, named "Sales Team".
pub async fn mount_periskope_groups(server: &wiremock::MockServer, group: &str) {
    use wiremock::matchers::{method, path};
    wiremock::Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"chats": [{"chat_id": group, "chat_name": "Sales Team"}], "count": 1}),
            ),
        )
        .mount(server)
        .await;
}

/// Periskope's answer to an add of the request's `participants`: every one added.
pub fn periskope_added(request_body: &[u8]) -> serde_json::Value {
    let body: serde_json::Value = serde_json::from_slice(request_body).unwrap_or_default();
    let statuses: serde_json::Map<String, serde_json::Value> = body["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str())
        .map(|d| {
            (
                format!("{d}@c.us"),
                serde_json::json!({"is_success": true, "message": "Participant added"}),
            )
        })
        .collect();
    serde_json::Value::Object(statuses)
}

/// A fake that records when each request arrives and answers `body` `delay`
/// after it: from the arrivals, how many requests a client had in flight.
#[derive(Clone)]
pub struct Slow {
    arrivals: std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    delay: std::time::Duration,
    body: serde_json::Value,
}

impl Slow {
    pub fn new(delay: std::time::Duration, body: serde_json::Value) -> Slow {
        Slow {
            arrivals: Default::default(),
            delay,
            body,
        }
    }

    /// `expected` requests arrived, never more than `cap` in flight at once:
    /// each is answered `delay` after it arrived, so with a cap the
    /// (k + cap)th cannot arrive within `delay` of the kth.
    pub fn assert_at_most_in_flight(&self, cap: usize, expected: usize) {
        let arrivals = self.arrivals.lock().unwrap().clone();
        assert_eq!(arrivals.len(), expected, "one request per call");
        for window in arrivals.windows(cap + 1) {
            let spread = window[cap].duration_since(window[0]);
            assert!(
                spread >= self.delay,
                "{} requests in flight at once: arrivals {spread:?} apart, each answered after {:?}",
                cap + 1,
                self.delay
            );
        }
    }
}

impl wiremock::Respond for Slow {
    fn respond(&self, _: &wiremock::Request) -> wiremock::ResponseTemplate {
        self.arrivals.lock().unwrap().push(std::time::Instant::now());
        wiremock::ResponseTemplate::new(200)
            .set_body_json(self.body.clone())
            .set_delay(self.delay)
    }
}

/// Discord's wire shapes as Discord sends them (every field serenity's models
/// require), for the interaction tests.
#[allow(dead_code)]
pub mod discord {
    use serde_json::{json, Value};

    /// The guild the test interactions come from.
    pub const GUILD: &str = "1000000000000000001";
    /// Their channel.
    pub const CHANNEL: &str = "1000000000000000002";

    /// A guild member (the caller) with `roles`.
    pub fn member(user: &str, roles: &[&str]) -> Value {
        json!({
            "user": {"id": user, "username": format!("user{user}"), "discriminator": "0", "global_name": null, "avatar": null},
            "roles": roles, "joined_at": "2026-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0,
        })
    }

    fn envelope(kind: u8, id: &str, app: &str, token: &str) -> Value {
        json!({
            "type": kind, "id": id, "application_id": app, "token": token, "version": 1,
            "guild_id": GUILD, "channel_id": CHANNEL, "app_permissions": "0", "locale": "en-US",
            "guild_locale": "en-US", "entitlements": [], "attachment_size_limit": 10485760,
        })
    }

    /// A `/wa <sub>` application command with typed `options`.
    pub fn command(id: &str, app: &str, token: &str, member_: Value, sub: &str, options: Value) -> Value {
        let mut v = envelope(2, id, app, token);
        v["member"] = member_;
        v["data"] = json!({
            "id": "1100000000000000001", "name": "wa", "type": 1,
            "options": [{"name": sub, "type": 1, "options": options}],
        });
        v
    }

    /// A button click (`custom_id`) on one of the app's messages.
    pub fn button(id: &str, app: &str, token: &str, member_: Value, custom_id: &str) -> Value {
        let mut v = envelope(3, id, app, token);
        v["member"] = member_;
        v["data"] = json!({"custom_id": custom_id, "component_type": 2});
        v["message"] = message("1200000000000000001", CHANNEL);
        v
    }

    /// Discord's ping.
    pub fn ping(app: &str) -> Value {
        json!({"type": 1, "id": "1300000000000000001", "application_id": app, "token": "ping-token", "version": 1})
    }

    /// A message object as Discord returns it for a post or an edit.
    pub fn message(id: &str, channel: &str) -> Value {
        json!({
            "id": id, "channel_id": channel, "type": 0, "content": "", "tts": false, "pinned": false,
            "author": {"id": "1100", "username": "waops", "discriminator": "0", "avatar": null, "bot": true},
            "timestamp": "2026-11-24T10:00:00+00:00", "edited_timestamp": null, "mention_everyone": false,
            "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "components": [],
        })
    }
}

/// Slack's Web API answers as Slack gives them (every field slack-morphism's
/// models require).
#[allow(dead_code)]
pub mod slack {
    use serde_json::{json, Value};

    /// `chat.postMessage`'s answer for a message posted in `channel` as `ts`.
    pub fn posted(channel: &str, ts: &str) -> Value {
        json!({
            "ok": true, "channel": channel, "ts": ts,
            "message": {"type": "message", "ts": ts, "text": "", "bot_id": "B1"},
        })
    }

    /// A `/wa` slash command's form body, as Slack posts it (a fresh trigger id each).
    pub fn command_body(user: &str, channel: &str, text: &str, response_url: &str) -> String {
        serde_urlencoded::to_string([
            ("token", "ignored"),
            ("team_id", "T1"),
            ("channel_id", channel),
            ("user_id", user),
            ("command", "/wa"),
            ("text", text),
            ("response_url", response_url),
            ("trigger_id", &format!("trigger-{}", uuid::Uuid::new_v4())),
        ])
        .unwrap()
    }

    /// POSTs `body` to `url` signed with `secret` at `timestamp`, as Slack does.
    pub async fn signed(url: &str, secret: &str, timestamp: i64, body: String) -> reqwest::Response {
        let ts = timestamp.to_string();
        let signature =
            waops::adapters::slack::verify::sign(&waops::settings::Secret::new(secret), &ts, body.as_bytes());
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// A click on one of waops' buttons (`block_actions`), as Slack posts it.
    pub fn click(user: &str, action: &str, value: &str, response_url: &str) -> Value {
        json!({
            "type": "block_actions",
            "team": {"id": "T1", "domain": "acme"},
            "user": {"id": user, "username": format!("user{user}"), "team_id": "T1"},
            "api_app_id": "A1",
            "token": "unused",
            "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C1", "is_ephemeral": true},
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
            "channel": {"id": "C1", "name": "general"},
            "response_url": response_url,
            "actions": [{
                "type": "button", "action_id": action, "block_id": "b1", "value": value,
                "text": {"type": "plain_text", "text": action}, "action_ts": "1700000000.000200"
            }]
        })
    }
}
