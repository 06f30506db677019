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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(waops::app::serve(app.ctx.clone(), listener, async move {
        let _ = rx.await;
    }));
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
