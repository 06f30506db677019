//! Property tests on the HTTP decoders: correctly signed but hostile Slack forms,
//! Discord interactions and provider webhooks (random JSON trees with the field
//! names the decoders look for, and raw text) go through the real router. Every
//! answer is a 2xx or 4xx: no panic, no 5xx for bad input.
//!
//! Short by default (a few hundred cases each) so CI runs it on every build;
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz_http` runs longer.

mod common;

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use ed25519_dalek::{Signer, SigningKey};
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{json, Value};
use sha2::Sha256;
use tower::ServiceExt;

const SLACK_SECRET: &str = "fuzz-signing-secret";
const HOOK_SECRET: &str = "fuzz-hook-secret";

struct Apps {
    runtime: tokio::runtime::Runtime,
    /// Slack + Discord on the sandbox.
    chat: axum::Router,
    /// Webhook routers per provider kind.
    hooks: Vec<(&'static str, axum::Router)>,
    _apps: Vec<common::TestApp>,
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[9u8; 32])
}

async fn router(config: &str) -> (common::TestApp, axum::Router) {
    let app = common::TestApp::with_config(config).await;
    let workers = waops::workers::Workers::new(64);
    let discord = waops::adapters::discord::Discord::new(app.ctx.clone(), workers.clone()).unwrap();
    let router = waops::http::router(app.ctx.clone(), workers, discord).unwrap();
    (app, router)
}

fn apps() -> &'static Apps {
    static APPS: OnceLock<Apps> = OnceLock::new();
    APPS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (chat_app, chat, hooks, apps) = runtime.block_on(async {
            let config = format!(
                "[slack]\nsigning_secret = \"{SLACK_SECRET}\"\napi_url = \"http://127.0.0.1:9\"\n\
                 [discord]\npublic_key = \"{}\"\napplication_id = \"1\"\napi_url = \"http://127.0.0.1:9\"\n\
                 [permissions.bindings]\nadmin = [\"*\"]\n",
                hex::encode(key().verifying_key().to_bytes())
            );
            let (chat_app, chat) = router(&config).await;
            let mut hooks = Vec::new();
            let mut apps = Vec::new();
            for kind in ["periskope", "wuts", "wawp"] {
                let extra = format!("webhook_secret = \"{HOOK_SECRET}\"");
                let (app, r) = router(&common::provider_toml(kind, "http://127.0.0.1:9", &extra)).await;
                hooks.push((kind, r));
                apps.push(app);
            }
            (chat_app, chat, hooks, apps)
        });
        let mut apps = apps;
        apps.push(chat_app);
        Apps {
            runtime,
            chat,
            hooks,
            _apps: apps,
        }
    })
}

/// Sends a request through the router and returns its status.
fn status(router: &axum::Router, request: Request<Body>) -> u16 {
    let a = apps();
    a.runtime
        .block_on(async { router.clone().oneshot(request).await.unwrap().status().as_u16() })
}

fn slack_request(route: &str, body: String) -> Request<Body> {
    // The apps run on the tests' fixed clock; Slack timestamps must be near it.
    let ts = common::clock().now().as_second().to_string();
    let signature =
        waops::adapters::slack::verify::sign(&waops::settings::Secret::new(SLACK_SECRET), &ts, body.as_bytes());
    Request::post(route)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(Body::from(body))
        .unwrap()
}

fn discord_request(body: String) -> Request<Body> {
    let ts = common::clock().now().as_second().to_string();
    let ts = ts.as_str();
    let signature = key().sign(&[ts.as_bytes(), body.as_bytes()].concat());
    Request::post("/discord/interactions")
        .header("x-signature-timestamp", ts)
        .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
        .body(Body::from(body))
        .unwrap()
}

fn hook_request(kind: &str, body: String) -> Request<Body> {
    let mut mac = Hmac::<Sha256>::new_from_slice(HOOK_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    Request::post(format!("/webhooks/{kind}"))
        .header("content-type", "application/json")
        .header("x-periskope-signature", hex::encode(mac.finalize().into_bytes()))
        .header("x-waops-token", HOOK_SECRET)
        .body(Body::from(body))
        .unwrap()
}

/// JSON trees that use the names the decoders read, so they get deep.
fn arb_json() -> impl Strategy<Value = Value> {
    let names = prop::sample::select(vec![
        "type",
        "id",
        "token",
        "data",
        "options",
        "name",
        "value",
        "member",
        "user",
        "roles",
        "custom_id",
        "channel_id",
        "guild_id",
        "event",
        "group",
        "participants",
        "jid",
        "chat_id",
        "org_id",
        "timestamp",
        "notification_type",
        "author",
        "recipients",
        "payload",
        "session",
        "action",
        "by",
        "subject",
        "message_id",
        "notification_id",
        "group_id",
        "participant",
        "join",
        "leave",
        "promote",
        "demote",
        "created_at",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![0u64, 1, 2, 3, 4, 5, 6, 64]).prop_map(|n| json!(n)),
        "\\PC{0,40}".prop_map(Value::String),
        prop::sample::select(vec![
            "wa",
            "add",
            "join",
            "invite",
            "history",
            "sales",
            "*",
            "120363041234567890@g.us",
            "4915112345678@c.us",
            "apply:abc",
            "cancel:",
            "chat.notification.created",
            "group.info",
            "group.joined",
            "group.v2.join",
            "group.v2.leave",
            "group.v2.participants",
            "group.v2.update",
            "2025-01-11T11:52:27Z",
            "",
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(5, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((names.clone(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// 300 cases, or `PROPTEST_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300)
}

fn assert_handled(code: u16, what: &str) -> Result<(), TestCaseError> {
    prop_assert!((200..500).contains(&code), "{what}: HTTP {code}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn slack_commands_with_hostile_fields(
        fields in prop::collection::vec((
            prop::sample::select(vec!["user_id", "channel_id", "text", "response_url", "trigger_id", "team_id", "command", "x"]),
            "\\PC{0,80}",
        ), 0..8),
        text in "\\PC{0,200}",
    ) {
        let mut pairs: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(k, _)| *k != "response_url")
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        pairs.push(("text".into(), text));
        // Results post to a closed local port: never to an address from the input.
        pairs.push(("response_url".into(), "http://127.0.0.1:9/respond".into()));
        let body = serde_urlencoded::to_string(&pairs).unwrap();
        assert_handled(status(&apps().chat, slack_request("/slack/commands", body)), "slash command")?;
    }

    #[test]
    fn slack_raw_bodies(body in "\\PC{0,300}") {
        assert_handled(status(&apps().chat, slack_request("/slack/commands", body.clone())), "raw command")?;
        assert_handled(status(&apps().chat, slack_request("/slack/interactions", body)), "raw interaction")?;
    }

    #[test]
    fn slack_interaction_payloads(payload in arb_json()) {
        let body = serde_urlencoded::to_string([("payload", payload.to_string())]).unwrap();
        assert_handled(status(&apps().chat, slack_request("/slack/interactions", body)), "interaction")?;
    }

    #[test]
    fn discord_interactions(mut body in arb_json(), kind in prop::sample::select(vec![1u64, 2, 3, 4, 9])) {
        if let Some(o) = body.as_object_mut() {
            o.insert("type".into(), json!(kind));
        }
        assert_handled(status(&apps().chat, discord_request(body.to_string())), "interaction")?;
    }

    #[test]
    fn discord_raw_bodies(body in "\\PC{0,300}") {
        assert_handled(status(&apps().chat, discord_request(body)), "raw interaction")?;
    }

    #[test]
    fn provider_webhooks(body in arb_json(), raw in "\\PC{0,200}") {
        for (kind, router) in &apps().hooks {
            assert_handled(status(router, hook_request(kind, body.to_string())), kind)?;
            assert_handled(status(router, hook_request(kind, raw.clone())), kind)?;
        }
    }
}

#[test]
fn a_correct_signature_is_what_lets_the_fuzz_reach_the_decoders() {
    // Guards the property tests above: unsigned requests stop at 401, signed ones do not.
    let apps = apps();
    let unsigned = Request::post("/slack/commands").body(Body::from("text=help")).unwrap();
    assert_eq!(status(&apps.chat, unsigned), 401);
    let signed = slack_request(
        "/slack/commands",
        "team_id=T1&user_id=U1&channel_id=C1&command=%2Fwa&text=help&response_url=https%3A%2F%2Fhooks.slack.com%2Fx&trigger_id=1.2.3".into(),
    );
    assert_eq!(status(&apps.chat, signed), 200);
    assert_eq!(
        status(&apps.chat, discord_request(common::discord::ping("1").to_string())),
        200
    );
    let hook = hook_request("periskope", json!({"event": "chat.created"}).to_string());
    assert_eq!(status(&apps.hooks[0].1, hook), 200);
}
