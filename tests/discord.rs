//! Discord end to end: Ed25519-signed interactions (key made here) through the
//! real router, a wiremock Discord API, and the sandbox or a slow provider fake.

mod common;

use std::time::{Duration, Instant};

use common::{provider_toml, TestApp};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const APP: &str = "1100";
const GROUP: &str = "120363041234567890@g.us";

/// Forwards (method, path, body) of each call to the test.
struct Capture(mpsc::UnboundedSender<(String, String, Value)>);

impl Respond for Capture {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let _ = self.0.send((r.method.to_string(), r.url.path().to_string(), body));
        ResponseTemplate::new(200).set_body_json(common::discord::message(
            "1200000000000000009",
            common::discord::CHANNEL,
        ))
    }
}

struct Harness {
    app: TestApp,
    base: String,
    key: SigningKey,
    calls: mpsc::UnboundedReceiver<(String, String, Value)>,
    http: reqwest::Client,
    _discord: MockServer,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Harness {
    async fn new(extra: &str) -> Self {
        Harness::with_application_id(Some(APP), extra).await
    }

    /// With `discord.application_id` set to `app`, or left unset.
    async fn with_application_id(app: Option<&str>, extra: &str) -> Self {
        Harness::build(app, extra, None).await
    }

    /// On the store at `url` (another harness's, for a restart or a replica).
    async fn on_store(url: &str) -> Self {
        Harness::build(Some(APP), "", Some(url)).await
    }

    async fn build(app: Option<&str>, extra: &str, store: Option<&str>) -> Self {
        let key = SigningKey::from_bytes(&[42u8; 32]);
        let discord = MockServer::start().await;
        let (tx, calls) = mpsc::unbounded_channel();
        Mock::given(path_regex(format!("^/api/v10/webhooks/{APP}/.*")))
            .respond_with(Capture(tx))
            .mount(&discord)
            .await;
        let bindings = if extra.contains("[permissions.bindings]") {
            ""
        } else {
            "[permissions.bindings]\nadmin = [\"discord:user:81234567890\"]\n"
        };
        let app_line = app.map(|a| format!("application_id = \"{a}\"\n")).unwrap_or_default();
        let config = format!(
            "[discord]\npublic_key = \"{}\"\n{app_line}bot_token = \"bot-token\"\napi_url = \"{}\"\n\n{extra}\n{bindings}",
            hex::encode(key.verifying_key().to_bytes()),
            discord.uri()
        );
        let app = match store {
            Some(url) => TestApp::with_store(&config, url, tempfile::tempdir().unwrap()).await,
            None => TestApp::with_config(&config).await,
        };
        let (base, stop) = app.serve().await;
        Harness {
            app,
            base,
            key,
            calls,
            http: reqwest::Client::new(),
            _discord: discord,
            _stop: stop,
        }
    }

    async fn send(&self, body: &Value) -> (u16, Value, Duration) {
        let raw = body.to_string();
        let ts = self.app.ctx.clock.now().as_second().to_string();
        let ts = ts.as_str();
        let signature = self.key.sign(&[ts.as_bytes(), raw.as_bytes()].concat());
        let started = Instant::now();
        let r = self
            .http
            .post(format!("{}/discord/interactions", self.base))
            .header("x-signature-timestamp", ts)
            .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
            .body(raw)
            .send()
            .await
            .unwrap();
        let elapsed = started.elapsed();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null), elapsed)
    }

    async fn command(&self, user: &str, roles: &[&str], sub: &str, options: Value) -> (u16, Value, Duration) {
        let member = common::discord::member(user, roles);
        self.send(&common::discord::command(
            &next_id(),
            APP,
            "tok-1",
            member,
            sub,
            options,
        ))
        .await
    }

    /// `/wa invite group:sales` from the admin.
    async fn invite_sales(&self) -> (u16, Value, Duration) {
        let options = json!([{"name": "group", "type": 3, "value": "sales"}]);
        self.command(ADMIN, &[], "invite", options).await
    }

    async fn next_call(&mut self) -> (String, String, Value) {
        tokio::time::timeout(Duration::from_secs(15), self.calls.recv())
            .await
            .expect("a Discord API call")
            .unwrap()
    }
}

const ADMIN: &str = "81234567890";

/// A fresh interaction id (Discord gives every interaction its own).
fn next_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1_300_000_000_000_000_100);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

fn description(body: &Value) -> String {
    let e = &body["embeds"][0];
    format!(
        "{}\n{}",
        e["title"].as_str().unwrap_or_default(),
        e["description"].as_str().unwrap_or_default()
    )
}

#[tokio::test]
async fn ping_and_bad_signatures() {
    let h = Harness::new("").await;
    let (status, body, _) = h.send(&common::discord::ping(APP)).await;
    assert_eq!((status, body["type"].as_u64()), (200, Some(1)));
    let forged = h
        .http
        .post(format!("{}/discord/interactions", h.base))
        .header("x-signature-timestamp", h.app.ctx.clock.now().as_second().to_string())
        .header("x-signature-ed25519", "00".repeat(64))
        .body(json!({"type": 1}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    h.app.ctx.audit.flush().await;
    assert!(h.app.ctx.store.recent_audit(5).await.unwrap().is_empty());
}

#[tokio::test]
async fn help_is_inline_and_ephemeral() {
    let h = Harness::new("").await;
    let (status, body, _) = h.command(ADMIN, &[], "help", json!([])).await;
    assert_eq!((status, body["type"].as_u64()), (200, Some(4)));
    assert_eq!(body["data"]["flags"], 64);
    assert!(description(&body["data"]).contains("waops commands you can run here"));
    assert_eq!(body["data"]["allowed_mentions"]["parse"], json!([]));
}

#[tokio::test]
async fn provider_commands_defer_then_edit() {
    let mut h = Harness::new("").await;
    let (status, body, elapsed) = h.invite_sales().await;
    assert_eq!((status, body["type"].as_u64()), (200, Some(5)));
    assert!(body["data"].get("flags").is_none(), "deferred, public: {body}");
    assert!(elapsed < Duration::from_secs(3));
    let (m, p, body) = h.next_call().await;
    assert_eq!(
        (m.as_str(), p.as_str()),
        (
            "PATCH",
            format!("/api/v10/webhooks/{APP}/tok-1/messages/@original").as_str()
        )
    );
    assert!(
        description(&body).contains("https://chat.whatsapp.com/Kx7Pq2Lm9Zt4Rw8Yb3Nc"),
        "{body}"
    );
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
}

#[tokio::test]
async fn refusal_by_role_is_inline() {
    let h = Harness::new(
        "[permissions.roles.viewers]\ncommands = [\"history\"]\ngroups = [\"*\"]\n\n[permissions.bindings]\nviewers = [\"discord:role:998877\"]\n",
    )
    .await;
    let (_, body, _) = h
        .command(
            "555",
            &["998877"],
            "add",
            json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "numbers", "type": 3, "value": "+4915112345678"}]),
        )
        .await;
    assert_eq!(body["type"], 4);
    assert_eq!(
        body["data"]["embeds"][0]["title"],
        "You may not run add (no role grants it; ask an admin)"
    );
    h.app.ctx.audit.flush().await;
    let row = &h.app.ctx.store.recent_audit(1).await.unwrap()[0];
    assert_eq!(
        (row.principal.as_str(), row.channel.as_str(), row.decision.as_ref()),
        (
            "discord:user:555",
            format!("discord:{}", common::discord::CHANNEL).as_str(),
            "refused"
        )
    );
}

#[tokio::test]
async fn a_slow_provider_still_defers_fast() {
    let provider = MockServer::start().await;
    common::mount_periskope_groups(&provider, GROUP).await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(
                    json!({"chat_id": GROUP, "invite_link": "https://chat.whatsapp.com/EUKdz8Sdy9T2UWPnOKGkx"}),
                )
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&provider)
        .await;
    let mut h = Harness::new(&provider_toml(
        "periskope",
        &format!("{}/v1", provider.uri()),
        "timeout_ms = 10000\n",
    ))
    .await;
    let (_, body, elapsed) = h.invite_sales().await;
    assert_eq!(body["type"], 5);
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    let (_, _, body) = h.next_call().await;
    assert!(description(&body).contains("EUKdz8Sdy9T2UWPnOKGkx"), "{body}");
}

#[tokio::test]
async fn preview_button_applies_once() {
    let mut h = Harness::new("").await;
    let numbers: Vec<String> = (1..=21).map(|i| format!("+49151600{i:05}")).collect();
    let (_, body, _) = h
        .command(
            ADMIN,
            &[],
            "add",
            json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "numbers", "type": 3, "value": numbers.join(" ")}]),
        )
        .await;
    assert_eq!(body["type"], 5);
    // The deferral was public (results go to the channel); the preview is only for
    // the caller, so the deferred message is deleted and an ephemeral follow-up sent.
    let (m, _, _) = h.next_call().await;
    assert_eq!(m, "DELETE");
    let (m, p, preview) = h.next_call().await;
    assert_eq!(
        (m.as_str(), p.as_str()),
        ("POST", format!("/api/v10/webhooks/{APP}/tok-1").as_str())
    );
    assert_eq!(preview["flags"], 64);
    assert!(
        description(&preview).starts_with("This adds 21 numbers to Sales Team"),
        "{preview}"
    );
    let custom_id = preview["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(custom_id.starts_with("apply:"));
    let click =
        |user: &str| common::discord::button(&next_id(), APP, "tok-2", common::discord::member(user, &[]), &custom_id);
    let (_, body, _) = h.send(&click(ADMIN)).await;
    assert_eq!(body["type"], 6);
    let (_, _, working) = h.next_call().await;
    assert_eq!(working["embeds"][0]["title"], "Working on it…");
    let (m, _, result) = h.next_call().await;
    assert_eq!(m, "PATCH");
    assert!(
        description(&result).contains("21 added")
            || result["embeds"][0]["footer"]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("21 added"),
        "{result}"
    );
    h.send(&click(ADMIN)).await;
    let (m, p, again) = h.next_call().await;
    assert_eq!(
        (m.as_str(), p.as_str()),
        ("POST", format!("/api/v10/webhooks/{APP}/tok-2").as_str())
    );
    assert!(description(&again).contains("already applied"), "{again}");
    assert_eq!(again["flags"], 64);
}

#[tokio::test]
async fn registration_payload_reaches_the_api() {
    let discord = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!("/api/v10/applications/{APP}/guilds/777/commands")))
        .and(wiremock::matchers::header("authorization", "Bot bot-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{
            "id": "1400000000000000001", "type": 1, "application_id": APP, "guild_id": "777", "name": "wa",
            "description": "WhatsApp groups from Discord", "version": "1400000000000000002",
            "default_member_permissions": null
        }])))
        .expect(1)
        .mount(&discord)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let api = discord.uri();
    let dir_path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_waops"))
            .current_dir(&dir_path)
            .env_remove("WAOPS_CONFIG")
            .env(
                "WAOPS__STORE__URL",
                format!("sqlite://{}", dir_path.join("r.db").display()),
            )
            .env("WAOPS__DISCORD__APPLICATION_ID", APP)
            .env("WAOPS__DISCORD__BOT_TOKEN", "bot-token")
            .env("WAOPS__DISCORD__API_URL", api)
            .args(["discord", "register-commands", "--guild", "777"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "registered /wa (1 command) in guild 777\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = &discord.received_requests().await.unwrap()[0];
    let payload: Value = serde_json::from_slice(&sent.body).unwrap();
    let subs: Vec<&str> = payload[0]["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        subs,
        [
            "join",
            "add",
            "remove",
            "promote",
            "demote",
            "members",
            "invite",
            "history",
            "groups",
            "subscribe",
            "unsubscribe",
            "subscriptions",
            "audit",
            "help",
            "whoami"
        ]
    );
    drop(dir);
}

#[tokio::test]
async fn direct_messages_are_refused_unless_configured() {
    let h = Harness::new("").await;
    let mut dm = common::discord::command(&next_id(), APP, "tok-1", Value::Null, "whoami", json!([]));
    let dm_object = dm.as_object_mut().unwrap();
    dm_object.remove("guild_id");
    dm_object.remove("member");
    dm_object.insert("user".into(), common::discord::member(ADMIN, &[])["user"].clone());
    let (_, body, _) = h.send(&dm).await;
    assert_eq!(body["type"], 4);
    assert_eq!(
        body["data"]["embeds"][0]["title"],
        "waops answers in server channels only"
    );
}

#[tokio::test]
async fn long_results_continue_in_follow_up_messages() {
    let provider = MockServer::start().await;
    let chats: Vec<Value> = (0..1500)
        .map(|i| json!({"chat_id": format!("1203630{i:011}@g.us"), "chat_name": format!("Group @everyone {i}")}))
        .collect();
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"chats": chats, "count": 1500})))
        .mount(&provider)
        .await;
    let mut h = Harness::new(&provider_toml("periskope", &format!("{}/v1", provider.uri()), "")).await;
    h.command(ADMIN, &[], "groups", json!([])).await;
    let (m, _, first) = h.next_call().await;
    assert_eq!(m, "PATCH");
    let mut pages = vec![first];
    for _ in 1..5 {
        let (m, p, page) = h.next_call().await;
        assert_eq!(
            (m.as_str(), p.as_str()),
            ("POST", format!("/api/v10/webhooks/{APP}/tok-1").as_str())
        );
        pages.push(page);
    }
    for page in &pages {
        let d = page["embeds"][0]["description"].as_str().unwrap();
        assert!(d.chars().count() <= 4096);
        assert!(embed_chars(page) <= 6000);
        assert!(!d.contains("@everyone"), "mentions are defused");
        assert_eq!(page["allowed_mentions"]["parse"], json!([]));
    }
    assert!(
        pages[4]["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .contains("… and "),
        "what did not fit is counted"
    );
}

/// Characters Discord counts toward the 6000 limit in a message's embeds.
fn embed_chars(body: &Value) -> usize {
    let count = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    let mut n = 0;
    for e in body["embeds"].as_array().into_iter().flatten() {
        n += count(&e["title"]) + count(&e["description"]) + count(&e["footer"]["text"]);
        for f in e["fields"].as_array().into_iter().flatten() {
            n += count(&f["name"]) + count(&f["value"]);
        }
    }
    n
}

/// Discord's REST client, with a bot token, against `discord`.
fn discord_client(discord: &MockServer) -> waops::adapters::discord::outbound::DiscordClient {
    let dir = tempfile::tempdir().unwrap();
    let settings = common::settings(
        dir.path(),
        &format!(
            "[discord]\napplication_id = \"{APP}\"\nbot_token = \"bot-token\"\napi_url = \"{}\"\n",
            discord.uri()
        ),
        "sqlite::memory:",
    );
    waops::adapters::discord::outbound::DiscordClient::new(&settings.discord).unwrap()
}

#[tokio::test]
async fn channel_messages_wait_out_rate_limits() {
    let discord = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/1000000000000000009/messages"))
        .respond_with(
            // As Discord answers it: the wait in the body and in Retry-After.
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0.5")
                .set_body_json(json!({"message": "You are being rate limited.", "retry_after": 0.5, "global": false})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&discord)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v10/channels/1000000000000000009/messages"))
        .and(wiremock::matchers::header("authorization", "Bot bot-token"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(common::discord::message("1200000000000000077", "1000000000000000009")),
        )
        .expect(1)
        .mount(&discord)
        .await;
    let client = discord_client(&discord);
    let message = waops::adapters::discord::render::message(&waops::core::Reply::info("Digest")).channel();
    let started = Instant::now();
    assert_eq!(
        client.channel_message("1000000000000000009", &message).await.unwrap(),
        "1200000000000000077"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    let sent: Value = serde_json::from_slice(&discord.received_requests().await.unwrap()[1].body).unwrap();
    assert!(sent.get("flags").is_none(), "channel messages are never ephemeral");
}

#[tokio::test]
async fn gateway_interactions_are_answered_through_the_callback() {
    let discord = MockServer::start().await;
    let (tx, mut calls) = mpsc::unbounded_channel();
    Mock::given(wiremock::matchers::any())
        .respond_with(Capture(tx))
        .mount(&discord)
        .await;
    let config = format!(
        "[discord]\nmode = \"gateway\"\napplication_id = \"{APP}\"\nbot_token = \"bot-token\"\napi_url = \"{}\"\n\n[permissions.bindings]\nadmin = [\"discord:user:{ADMIN}\"]\n",
        discord.uri()
    );
    let app = TestApp::with_config(&config).await;
    let state = waops::adapters::discord::Discord::new(app.ctx.clone(), waops::workers::Workers::new(4))
        .unwrap()
        .expect("gateway mode");
    // The shape Discord sends over the gateway, read by serenity's model and written back,
    // exactly as the gateway handler does.
    let wire = json!({
        "id": "1234567890123", "application_id": APP, "type": 2, "token": "gw-token", "version": 1,
        "guild_id": "222", "channel_id": "333", "locale": "en-US", "guild_locale": "en-US",
        "app_permissions": "0", "entitlements": [], "attachment_size_limit": 8388608, "authorizing_integration_owners": {},
        "member": {"user": {"id": ADMIN, "username": "admin", "discriminator": "0", "global_name": null, "avatar": null},
                   "roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": false, "mute": false, "flags": 0, "permissions": "0"},
        "data": {"id": "999", "name": "wa", "type": 1, "options": [{"name": "whoami", "type": 1, "options": []}]}
    });
    let model: serenity::all::Interaction = serde_json::from_value(wire).expect("serenity reads the wire shape");
    waops::adapters::discord::gateway::answer(state, model).await;
    let (m, p, body) = tokio::time::timeout(Duration::from_secs(5), calls.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.as_str(), p.as_str()),
        ("POST", "/api/v10/interactions/1234567890123/gw-token/callback")
    );
    assert_eq!(body["type"], 4);
    assert!(
        body["data"]["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains(&format!("discord:user:{ADMIN}")),
        "{body}"
    );
}

#[tokio::test]
async fn every_subcommand_gets_an_answer() {
    let mut h = Harness::new("").await;
    let o = |pairs: &[(&str, Value)]| {
        let kind = |v: &Value| match v {
            Value::Bool(_) => 5,
            Value::Number(_) => 4,
            _ => 3,
        };
        Value::Array(
            pairs
                .iter()
                .map(|(n, v)| json!({"name": n, "type": kind(v), "value": v}))
                .collect(),
        )
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "join",
            o(&[("invite", json!("https://chat.whatsapp.com/OpenDayVisitors2026"))]),
            "Joined Open Day Visitors",
        ),
        (
            "add",
            o(&[
                ("group", json!("sales")),
                ("numbers", json!("+4915112345678")),
                ("dry_run", json!(true)),
            ]),
            "Dry run: would add 1 number to Sales Team",
        ),
        (
            "add",
            o(&[("group", json!("sales")), ("numbers", json!("+4915112345678"))]),
            "Add to Sales Team",
        ),
        ("invite", o(&[("group", json!("sales"))]), "Invite link for Sales Team"),
        (
            "history",
            o(&[
                ("group", json!("sales")),
                ("limit", json!(2)),
                ("type", json!("joined,left")),
            ]),
            "Membership history of Sales Team",
        ),
        (
            "groups",
            o(&[("filter", json!("community"))]),
            "2 groups matching \"community\"",
        ),
        (
            "subscribe",
            o(&[("group", json!("*")), ("every", json!("1d"))]),
            "Subscribed this channel to digests of all groups",
        ),
        ("subscriptions", json!([]), "This channel has 1 digest subscription"),
        (
            "unsubscribe",
            o(&[("group", json!("*"))]),
            "Stopped 1 digest subscription for all groups",
        ),
        (
            "help",
            o(&[("command", json!("add"))]),
            "/wa add <group> <numbers…> [--dry-run] [--yes]",
        ),
        ("whoami", json!([]), "You are discord:user:81234567890"),
        (
            "members",
            o(&[("group", json!("sales")), ("filter", json!("2222"))]),
            "1 member of Sales Team",
        ),
        (
            "demote",
            o(&[("group", json!("sales")), ("numbers", json!("+4915122222222"))]),
            "Demote in Sales Team",
        ),
        (
            "audit",
            o(&[("command", json!("add")), ("limit", json!(1))]),
            "Audit log: 1 row, newest first",
        ),
    ];
    for (sub, options, title) in cases {
        let (status, body, _) = h.command(ADMIN, &[], sub, options).await;
        assert_eq!(status, 200, "{sub}");
        let answer = match body["type"].as_u64() {
            Some(4) => body["data"].clone(),
            Some(5) => loop {
                // A private result after a public deferral: the deferral is deleted first.
                let (m, _, body) = h.next_call().await;
                if m != "DELETE" {
                    break body;
                }
            },
            other => panic!("{sub}: {other:?}"),
        };
        let got = answer["embeds"][0]["title"].as_str().unwrap_or_default().to_string();
        assert!(got.contains(title), "{sub}: {got}");
    }
}

#[tokio::test]
async fn a_repeated_interaction_id_runs_once() {
    let mut h = Harness::new("").await;
    let interaction = common::discord::command(
        "1300000000000000077",
        APP,
        "tok-1",
        common::discord::member(ADMIN, &[]),
        "invite",
        json!([{"name": "group", "type": 3, "value": "sales"}]),
    );
    let (status, first, _) = h.send(&interaction).await;
    assert_eq!((status, first["type"].as_u64()), (200, Some(5)));
    let (status, again, _) = h.send(&interaction).await;
    assert_eq!((status, again["type"].as_u64()), (200, Some(5)));
    let (m, _, result) = h.next_call().await;
    assert_eq!(m, "PATCH");
    assert!(result.to_string().contains("chat.whatsapp.com"), "{result}");
    assert_eq!(h.app.audited("invite").await, 1, "the command ran once");
    assert!(h.calls.try_recv().is_err(), "one answer");
}

/// Without `discord.application_id`, the deferred result still arrives: the
/// application id is taken from the interaction (before, the edit went to
/// `/webhooks//<token>` and the user heard nothing).
#[tokio::test]
async fn the_application_id_comes_from_the_interaction_when_not_configured() {
    let mut h = Harness::with_application_id(None, "").await;
    let (_, body, _) = h.invite_sales().await;
    assert_eq!(body["type"], 5);
    let (m, p, result) = h.next_call().await;
    assert_eq!(
        (m.as_str(), p.as_str()),
        (
            "PATCH",
            format!("/api/v10/webhooks/{APP}/tok-1/messages/@original").as_str()
        )
    );
    assert!(description(&result).contains("chat.whatsapp.com"), "{result}");
}

/// SPEC section 3: a chunked add shows its progress by editing the deferred
/// response while it runs, then the result replaces it.
#[tokio::test]
async fn long_adds_edit_the_response_with_progress() {
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
    let numbers = "+4915112345671 +4915112345672 +4915112345673 +4915112345674";
    let (_, body, _) = h
        .command(
            ADMIN,
            &[],
            "add",
            json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "numbers", "type": 3, "value": numbers}]),
        )
        .await;
    assert_eq!(body["type"], 5);
    let original = format!("/api/v10/webhooks/{APP}/tok-1/messages/@original");
    let mut edits = Vec::new();
    for _ in 0..3 {
        let (m, p, body) = h.next_call().await;
        assert_eq!((m.as_str(), p.as_str()), ("PATCH", original.as_str()));
        edits.push(body["embeds"][0]["title"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(&edits[..2], ["Adding… 1/4", "Adding… 3/4"]);
    assert!(edits[2].contains("Add to Sales Team"), "{edits:?}");
}

/// A signed interaction replayed after the 5-minute window is refused before
/// anything runs: its timestamp is part of what was signed.
#[tokio::test]
async fn an_old_signed_interaction_is_refused() {
    let h = Harness::new("").await;
    let body = common::discord::command(
        &next_id(),
        APP,
        "tok-old",
        common::discord::member(ADMIN, &[]),
        "invite",
        json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "reset", "type": 5, "value": true}]),
    )
    .to_string();
    let old = (h.app.ctx.clock.now().as_second() - 301).to_string();
    let signature = h.key.sign(&[old.as_bytes(), body.as_bytes()].concat());
    let r = h
        .http
        .post(format!("{}/discord/interactions", h.base))
        .header("x-signature-timestamp", &old)
        .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    h.app.ctx.audit.flush().await;
    assert!(h.app.ctx.store.recent_audit(5).await.unwrap().is_empty(), "nothing ran");
}

/// With `discord.guild_ids` set, interactions from another server (or a
/// direct message) are answered "not served" and nothing runs; pings still
/// answer, and the listed server is served.
#[tokio::test]
async fn servers_outside_guild_ids_are_not_served() {
    // The harness's extra lines continue its [discord] table.
    let mut h = Harness::new(&format!(
        "guild_ids = [\"{}\"]\nallow_dms = true\n",
        common::discord::GUILD
    ))
    .await;
    let (status, body, _) = h.send(&common::discord::ping(APP)).await;
    assert_eq!((status, body["type"].as_u64()), (200, Some(1)));
    let options = json!([{"name": "group", "type": 3, "value": "sales"}]);
    let member = common::discord::member(ADMIN, &[]);
    let mut other = common::discord::command(&next_id(), APP, "tok-1", member.clone(), "invite", options.clone());
    other["guild_id"] = json!("1000000000000000999");
    let mut dm = common::discord::command(&next_id(), APP, "tok-1", member, "invite", options);
    dm.as_object_mut().unwrap().remove("guild_id");
    dm["user"] = dm["member"]["user"].clone();
    dm.as_object_mut().unwrap().remove("member");
    for refused in [other, dm] {
        let (status, body, _) = h.send(&refused).await;
        assert_eq!(status, 200);
        assert_eq!(body["type"], 4, "{body}");
        assert!(
            description(&body["data"]).contains("This waops does not serve this server"),
            "{body}"
        );
    }
    h.app.ctx.audit.flush().await;
    assert!(h.app.ctx.store.recent_audit(5).await.unwrap().is_empty(), "nothing ran");
    let (_, body, _) = h.invite_sales().await;
    assert_eq!(body["type"], 5, "the listed server is served: {body}");
    assert!(description(&h.next_call().await.2).contains("chat.whatsapp.com"));
}

/// The same signed interaction, sent again (re-signed, inside the 300 s
/// window) to a restarted server on the same SQLite file, runs nothing.
#[tokio::test]
async fn a_replay_after_a_restart_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("waops.db").display());
    let interaction = invite_interaction("1300000000000000501", "tok-first");
    let mut before = Harness::on_store(&url).await;
    assert_eq!(before.send(&interaction).await.1["type"], 5);
    assert!(before.next_call().await.1.contains("tok-first"));
    assert_eq!(before.app.audited("invite").await, 1);
    drop(before);
    let after = Harness::on_store(&url).await;
    replayed_once(after, interaction).await;
}

/// Two replicas on one PostgreSQL store: a replay sent to the other replica
/// runs nothing.
#[tokio::test]
async fn a_replay_to_another_replica_runs_nothing() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let interaction = invite_interaction("1300000000000000502", "tok-first");
    let mut one = Harness::on_store(&url).await;
    let other = Harness::on_store(&url).await;
    assert_eq!(one.send(&interaction).await.1["type"], 5);
    assert!(one.next_call().await.1.contains("tok-first"));
    assert_eq!(one.app.audited("invite").await, 1);
    replayed_once(other, interaction).await;
}

fn invite_interaction(id: &str, token: &str) -> Value {
    common::discord::command(
        id,
        APP,
        token,
        common::discord::member(ADMIN, &[]),
        "invite",
        json!([{"name": "group", "type": 3, "value": "sales"}]),
    )
}

/// Sends `interaction` again (acknowledged like any), then a fresh one: the
/// fresh one's result is the only call Discord gets, and the store holds one
/// audit row for each command, none for the replay.
async fn replayed_once(mut h: Harness, interaction: Value) {
    let (status, ack, _) = h.send(&interaction).await;
    assert_eq!((status, ack["type"].as_u64()), (200, Some(5)));
    assert_eq!(h.send(&invite_interaction(&next_id(), "tok-fresh")).await.1["type"], 5);
    let (_, path, _) = h.next_call().await;
    assert!(path.contains("tok-fresh"), "{path}");
    assert_eq!(h.app.audited("invite").await, 2, "the first run and the fresh one");
    assert!(h.calls.try_recv().is_err(), "no answer to the replay");
}

/// A typed option value cannot become an option: `--yes` inside the numbers is
/// read as a (bad) number, so nothing is added and nothing skips a preview.
#[tokio::test]
async fn typed_numbers_cannot_carry_options() {
    let mut h = Harness::new("").await;
    let options = json!([
        {"name": "group", "type": 3, "value": "sales"},
        {"name": "numbers", "type": 3, "value": "+4915112345678 --yes"}
    ]);
    let (_, ack, _) = h.command(ADMIN, &[], "add", options).await;
    assert_eq!(ack["type"], 5, "{ack}");
    // A user error: the public "thinking" goes, an ephemeral follow-up says why.
    let (method, _, _) = h.next_call().await;
    assert_eq!(method, "DELETE");
    let answer = description(&h.next_call().await.2);
    assert!(answer.contains("--yes"), "named as a bad number: {answer}");
    assert!(!answer.contains("added"), "{answer}");
    h.app.ctx.audit.flush().await;
    let rows = h.app.ctx.store.recent_audit(5).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.outcome.as_ref()).collect::<Vec<_>>(),
        ["user_error"]
    );
}

/// The new subcommands with typed options: remove, promote and members.
#[tokio::test]
async fn member_commands_with_typed_options() {
    let mut h = Harness::new("").await;
    let (_, ack, _) = h
        .command(
            ADMIN,
            &[],
            "remove",
            json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "numbers", "type": 3, "value": "+4915133333333"}]),
        )
        .await;
    assert_eq!(ack["type"], 5);
    let (method, _, body) = h.next_call().await;
    assert_eq!(method, "PATCH");
    let text = description(&body);
    assert!(text.starts_with("Remove from Sales Team"), "{text}");
    assert!(text.contains("`+4915133333333` — removed"), "{text}");
    h.command(
        ADMIN,
        &[],
        "promote",
        json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "numbers", "type": 3, "value": "+4915178787878"}, {"name": "dry_run", "type": 5, "value": true}]),
    )
    .await;
    let text = description(&h.next_call().await.2);
    assert!(text.contains("Dry run: would promote 1 number in Sales Team"), "{text}");
    h.command(
        ADMIN,
        &[],
        "members",
        json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "filter", "type": 3, "value": "1111"}]),
    )
    .await;
    let text = description(&h.next_call().await.2);
    assert!(text.contains("1 member of Sales Team matching \"1111\""), "{text}");
    assert!(text.contains("+49 151 •••• 1111 — admin"), "{text}");
}

/// The two-person rule from Discord: Request approval, the request as a
/// channel message with Approve/Reject, the requester refused, a lead approves.
#[tokio::test]
async fn two_person_approval_from_discord() {
    const REQUESTER: &str = "81234567891";
    const LEAD: &str = "81234567892";
    let mut h = Harness::new(&format!(
        "[permissions.roles.sales]\ncommands = [\"add\"]\ngroups = [\"sales\"]\napproval = \"two-person\"\n\n\
         [permissions.roles.lead]\ncommands = [\"approve\"]\ngroups = [\"sales\"]\n\n\
         [permissions.bindings]\nsales = [\"discord:user:{REQUESTER}\"]\nlead = [\"discord:user:{LEAD}\"]\n"
    ))
    .await;
    let options = json!([{"name": "group", "type": 3, "value": "sales"}, {"name": "numbers", "type": 3, "value": "+4915112345678"}]);
    assert_eq!(h.command(REQUESTER, &[], "add", options).await.1["type"], 5);
    assert_eq!(h.next_call().await.0, "DELETE");
    let (_, _, preview) = h.next_call().await;
    let custom_id = preview["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(custom_id.starts_with("request_approval:"), "{preview}");
    let click = |user: &str, custom_id: &str| {
        common::discord::button(&next_id(), APP, "tok-2", common::discord::member(user, &[]), custom_id)
    };
    assert_eq!(h.send(&click(REQUESTER, &custom_id)).await.1["type"], 6);
    let (m, _, edited) = h.next_call().await;
    assert_eq!(m, "PATCH");
    assert!(description(&edited).contains("Approval requested"), "{edited}");
    let (m, _, request) = h.next_call().await;
    assert_eq!(m, "POST");
    assert!(
        request["flags"].is_null() || request["flags"] == 0,
        "in the channel: {request}"
    );
    assert!(description(&request).contains(&format!("discord:user:{REQUESTER} asks for approval")));
    let approve = request["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(approve.starts_with("approve:"), "{request}");

    h.send(&click(REQUESTER, &approve)).await;
    assert!(description(&h.next_call().await.2).contains("You cannot approve your own request"));
    h.send(&click(LEAD, &approve)).await;
    let (_, _, working) = h.next_call().await;
    assert_eq!(working["embeds"][0]["title"], "Working on it…");
    let (_, _, result) = h.next_call().await;
    let text = result.to_string();
    assert!(text.contains("added"), "{text}");
    assert!(
        text.contains(&format!(
            "Requested by discord:user:{REQUESTER}, approved by discord:user:{LEAD}."
        )),
        "{text}"
    );
}
