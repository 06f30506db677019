//! Provider webhooks over HTTP: verification before parsing, parsing of each
//! provider's events into the journal, deduplication, and history from it.

mod common;

use common::{fixture, provider_toml, TestApp};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const SECRET: &str = "hook-secret";
const GROUP: &str = "120363041234567890@g.us";

async fn start(kind: &str, base: &str) -> (TestApp, String, tokio::sync::oneshot::Sender<()>) {
    let app = TestApp::with_config(&provider_toml(kind, base, &format!("webhook_secret = \"{SECRET}\"\n"))).await;
    let (url, stop) = app.serve().await;
    (app, url, stop)
}

fn signature(body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn post(url: &str, body: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut r = reqwest::Client::new().post(url).body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn periskope_notifications_are_verified_parsed_and_deduplicated() {
    let (app, base, _stop) = start("periskope", "http://127.0.0.1:1/v1").await;
    let notification = fixture("periskope/notifications.json")["messages"][0].clone();
    let body = json!({"event": "chat.notification.created", "org_id": "o", "data": notification, "timestamp": "2025-01-11T11:52:27Z"}).to_string();
    let url = format!("{base}/webhooks/periskope");
    assert_eq!(
        post(&url, &body, &[("x-periskope-signature", &signature(&body))]).await,
        (200, json!({"accepted": 1, "duplicates": 0}))
    );
    assert_eq!(
        post(&url, &body, &[("x-periskope-signature", &signature(&body))]).await,
        (200, json!({"accepted": 0, "duplicates": 1}))
    );
    assert_eq!(
        post(&url, &body, &[("x-periskope-signature", &signature("other"))])
            .await
            .0,
        401
    );
    assert_eq!(post(&url, &body, &[]).await.0, 401);
    assert_eq!(
        post(&url, "{not json", &[("x-periskope-signature", &signature("{not json"))])
            .await
            .0,
        400
    );
    let unknown = json!({"event": "message.created", "data": {}}).to_string();
    assert_eq!(
        post(&url, &unknown, &[("x-periskope-signature", &signature(&unknown))]).await,
        (200, json!({"accepted": 0, "duplicates": 0}))
    );
    assert_eq!(post(&format!("{base}/webhooks/wuts"), &body, &[]).await.0, 404);
    let events = app
        .ctx
        .store
        .group_events("periskope", "120363371308389685@g.us", jiff::Timestamp::MIN)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind.as_str(), events[0].subjects.as_slice()),
        ("removed", ["919537851844@c.us".to_string()].as_slice())
    );
}

#[tokio::test]
async fn wuts_group_info_feeds_history() {
    let provider = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/groups"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "groups": [{"jid": GROUP, "name": "Vendas"}]})),
        )
        .mount(&provider)
        .await;
    let (app, base, _stop) = start("wuts", &provider.uri()).await;
    let event = json!({"id": "evt-1", "event": "group.info", "data": {
        "jid": GROUP, "sender": "5511999999999@s.whatsapp.net", "timestamp": "2026-11-24T11:00:00Z",
        "join": ["5511988888888@s.whatsapp.net"], "leave": ["5511977777777@s.whatsapp.net"], "name": {"name": "Vendas"}
    }})
    .to_string();
    let url = format!("{base}/webhooks/wuts");
    assert_eq!(
        post(&url, &event, &[("x-waops-token", SECRET)]).await,
        (200, json!({"accepted": 3, "duplicates": 0}))
    );
    assert_eq!(post(&url, &event, &[("x-waops-token", "wrong")]).await.0, 401);
    let out = app.text("history vendas").await;
    assert!(out.starts_with("Membership history of Vendas\n"), "{out}");
    assert!(
        out.contains("· joined · +55 119 •••• 8888 by +55 119 •••• 9999"),
        "{out}"
    );
    assert!(out.contains("· left · +55 119 •••• 7777"), "{out}");
    assert!(
        out.contains("· settings by +55 119 •••• 9999 (changed the name)"),
        "{out}"
    );
    assert!(
        out.ends_with("History on wuts comes from events waops has received since 2026-11-24 12:00 UTC.\n"),
        "{out}"
    );
}

#[tokio::test]
async fn wawp_events_with_the_secret_in_the_path() {
    let (app, base, _stop) = start("wawp", "http://127.0.0.1:1/v2").await;
    let event =
        json!({"id": "evt_01", "timestamp": 1764000000000i64, "event": "group.v2.participants", "session": "default",
                       "payload": {"chatId": GROUP, "action": "promote", "participants": ["4915112345678@c.us"]}})
        .to_string();
    assert_eq!(
        post(&format!("{base}/webhooks/wawp/{SECRET}"), &event, &[]).await.0,
        200
    );
    assert_eq!(post(&format!("{base}/webhooks/wawp/wrong"), &event, &[]).await.0, 401);
    let leave = json!({"id": "evt_02", "event": "group.v2.leave", "payload": {"group": {"id": GROUP}, "participants": [{"id": "4915112345679@c.us", "role": "left"}]}}).to_string();
    assert_eq!(
        post(&format!("{base}/webhooks/wawp/{SECRET}"), &leave, &[]).await.1,
        json!({"accepted": 1, "duplicates": 0})
    );
    let events = app
        .ctx
        .store
        .group_events("wawp", GROUP, jiff::Timestamp::MIN)
        .await
        .unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.len(), 2);
    assert!(kinds.contains(&"promoted") && kinds.contains(&"left"), "{kinds:?}");

    // `participants` as Wawp's examples send it (an object keyed by position)
    // and as WAHA's (`{id, pn, role}`, an `@lid` id with the phone in `pn`);
    // `group.v2.join` is a member joining.
    let object = json!({"id": "evt_03", "event": "group.v2.join", "payload": {"chatId": GROUP, "participants": {"0": "4915112340001@c.us"}}});
    let waha = json!({"id": "evt_04", "event": "group.v2.join", "payload": {"group": {"id": GROUP}, "participants": [{"id": "123456789012345@lid", "pn": "4915112340002@c.us", "role": "participant"}]}});
    for event in [object, waha] {
        let response = post(&format!("{base}/webhooks/wawp/{SECRET}"), &event.to_string(), &[]).await;
        assert_eq!(response.1, json!({"accepted": 1, "duplicates": 0}));
    }
    let joined: Vec<Vec<String>> = app
        .ctx
        .store
        .group_events("wawp", GROUP, jiff::Timestamp::MIN)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "joined")
        .map(|e| e.subjects)
        .collect();
    assert_eq!(joined.len(), 2);
    assert!(joined.contains(&vec!["4915112340001@c.us".to_string()]), "{joined:?}");
    assert!(joined.contains(&vec!["4915112340002@c.us".to_string()]), "{joined:?}");
}

/// Live alerts from each provider kind's webhooks: the changes that arrive
/// within one 10-second window go to the channel in one message, posted once
/// though two replicas on one store tick at the same moment.
#[tokio::test]
async fn live_alerts_from_each_providers_webhooks() {
    live_alerts(false).await;
}

/// The same on PostgreSQL, where replicas really are separate processes' pools.
#[tokio::test]
async fn live_alerts_once_across_replicas_on_postgres() {
    if common::fresh_postgres().await.is_some() {
        live_alerts(true).await;
    }
}

async fn live_alerts(on_postgres: bool) {
    use waops::digests::Scheduler;
    let t0: jiff::Timestamp = common::NOW.parse().unwrap();
    let periskope_group = "120363371308389685@g.us";
    for kind in ["periskope", "wuts", "wawp"] {
        let slack = wiremock::MockServer::start().await;
        wiremock::Mock::given(wiremock::matchers::path("/chat.postMessage"))
            .respond_with(
                wiremock::ResponseTemplate::new(200).set_body_json(common::slack::posted("C1", "1764000000.000100")),
            )
            .mount(&slack)
            .await;
        let config = format!(
            "{}\n[slack]\nbot_token = \"xoxb-live\"\napi_url = \"{}\"\n",
            provider_toml(
                kind,
                "http://127.0.0.1:1/v1",
                &format!("webhook_secret = \"{SECRET}\"\n")
            ),
            slack.uri()
        );
        let app = if on_postgres {
            // A database per provider kind: each starts with no journal.
            let url = common::fresh_postgres().await.unwrap();
            TestApp::with_store(&config, &url, tempfile::tempdir().unwrap()).await
        } else {
            TestApp::with_config(&config).await
        };
        let group = if kind == "periskope" { periskope_group } else { GROUP };
        app.ctx
            .store
            .upsert_subscription(&waops::store::Subscription {
                id: format!("live-{kind}"),
                platform: "slack".into(),
                channel: "slack:C1".into(),
                group_ref: group.into(),
                group_name: "Sales Team".into(),
                every_s: 10,
                at_time: None,
                tz: "UTC".into(),
                created_by: "slack:user:U1".into(),
                created_at: t0 - jiff::SignedDuration::from_secs(5),
                live: true,
            })
            .await
            .unwrap();
        let (base, _stop) = app.serve().await;
        // Two changes of the group, as each provider sends them.
        let (url, bodies, headers): (String, Vec<String>, Vec<(&str, String)>) = match kind {
            "periskope" => {
                let n = |i: usize| fixture("periskope/notifications.json")["messages"][i].clone();
                let bodies: Vec<String> = (0..2)
                    .map(|i| json!({"event": "chat.notification.created", "data": n(i)}).to_string())
                    .collect();
                (format!("{base}/webhooks/periskope"), bodies, vec![])
            }
            "wuts" => (
                format!("{base}/webhooks/wuts"),
                vec![json!({"id": "evt-1", "event": "group.info", "data": {"jid": GROUP, "join": ["5511988888888@s.whatsapp.net"], "leave": ["5511977777777@s.whatsapp.net"]}}).to_string()],
                vec![("x-waops-token", SECRET.to_string())],
            ),
            _ => (
                format!("{base}/webhooks/wawp/{SECRET}"),
                vec![
                    json!({"id": "evt_1", "event": "group.v2.join", "payload": {"chatId": GROUP, "participants": {"0": "4915112340001@c.us"}}}).to_string(),
                    json!({"id": "evt_2", "event": "group.v2.leave", "payload": {"chatId": GROUP, "participants": ["4915112340002@c.us"]}}).to_string(),
                ],
                vec![],
            ),
        };
        for body in &bodies {
            let mut headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let signed = signature(body);
            if kind == "periskope" {
                headers.push(("x-periskope-signature", &signed));
            }
            assert_eq!(post(&url, body, &headers).await.0, 200, "{kind}");
        }
        // Two replicas tick at once, after the window (and its grace) closed.
        let replica = |owner: &str| {
            Scheduler::new(
                app.ctx.clone(),
                owner,
                waops::app::chat_posters(&app.ctx.settings).unwrap(),
            )
        };
        let (a, b) = (replica("replica-a"), replica("replica-b"));
        let later = t0 + jiff::SignedDuration::from_secs(30);
        let (ra, rb) = tokio::join!(a.tick(later), b.tick(later));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            ra.posted + rb.posted,
            1,
            "{kind}: one message for both changes: {ra:?} {rb:?}"
        );
        let posts = slack.received_requests().await.unwrap();
        assert_eq!(posts.len(), 1, "{kind}");
        let message: Value = serde_json::from_slice(&posts[0].body).unwrap();
        let text = message.to_string();
        assert!(text.contains("Just now: "), "{kind}: {text}");
        let both = match kind {
            "periskope" => vec!["removed (2): +91 953 •••• 9383, +91 953 •••• 1844"],
            "wuts" => vec!["joined (1): +55 119 •••• 8888", "left (1): +55 119 •••• 7777"],
            _ => vec!["joined (1): +49 151 •••• 0001", "left (1): +49 151 •••• 0002"],
        };
        for change in both {
            assert!(text.contains(change), "{kind}: both changes in one message: {text}");
        }
        assert!(text.contains("Sales Team"), "{kind}: {text}");
        assert_eq!(message["channel"], "C1");
        // Nothing new: later ticks post nothing more.
        let (ra, _) = tokio::join!(a.tick(later + jiff::SignedDuration::from_secs(20)), b.tick(later));
        assert_eq!(ra.unwrap().posted, 0, "{kind}");
        assert_eq!(slack.received_requests().await.unwrap().len(), 1, "{kind}");
    }
}
