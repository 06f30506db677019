//! `waops exec` against each provider kind, configured only through the
//! environment and pointed at a fake server.

mod common;

use common::TOKEN;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GROUP: &str = "120363041234567890@g.us";

async fn exec(kind: &str, base_url: String, text: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("exec.db").display());
    let kind = kind.to_string();
    let text = text.to_string();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_waops"))
            .current_dir(dir.path())
            .env_remove("WAOPS_CONFIG")
            .env("WAOPS__STORE__URL", store)
            .env("WAOPS__PROVIDER__KIND", &kind)
            .env("WAOPS__PROVIDER__BASE_URL", base_url)
            .env("WAOPS__PROVIDER__TOKEN", TOKEN)
            .env("WAOPS__PROVIDER__PHONE", "919876543210")
            .env("WAOPS__PROVIDER__INSTANCE_ID", "inst-1")
            .env("WAOPS__PROVIDER__ACCESS_TOKEN", TOKEN)
            .env("WAOPS__PROVIDER__MAX_RETRIES", "0")
            .args(["exec", &text])
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn periskope_invite() {
    let server = MockServer::start().await;
    common::mount_periskope_groups(&server, GROUP).await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"chat_id": GROUP, "chat_name": "Sales Team", "invite_link": "https://chat.whatsapp.com/invite/EUKdz8Sdy9T2UWPnOKGkx"})))
        .mount(&server)
        .await;
    let (code, out, err) = exec("periskope", format!("{}/v1", server.uri()), "invite sales").await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "Invite link for Sales Team\n  https://chat.whatsapp.com/EUKdz8Sdy9T2UWPnOKGkx\n"
        ),
        "{err}"
    );
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/invite")))
        .respond_with(ResponseTemplate::new(200).set_body_json(common::fixture("periskope/invite_link.json")))
        .expect(1)
        .mount(&server)
        .await;
    let (code, out, _) = exec("periskope", format!("{}/v1", server.uri()), "invite sales --reset").await;
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "New invite link for Sales Team\n  https://chat.whatsapp.com/Hn4Qe7Rt2Yu8Io3Pa6Sd\nThe old link no longer works.\n"
        )
    );
}

#[tokio::test]
async fn wuts_groups_and_history() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/groups"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "groups": [{"jid": GROUP, "name": "Sales Team"}]})),
        )
        .mount(&server)
        .await;
    let (code, out, err) = exec("wuts", server.uri(), "groups").await;
    assert_eq!(
        (code, out.as_str()),
        (0, "1 group\n  Name        Id\n  Sales Team  120363041234567890@g.us\n"),
        "{err}"
    );
    let (code, out, _) = exec("wuts", server.uri(), "history sales").await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "Membership history of Sales Team\n  No membership changes in this period.\nHistory on wuts comes from events waops receives; none yet.\n"
    );
    let (code, out, _) = exec("wuts", server.uri(), "help history").await;
    assert_eq!(code, 0);
    assert!(
        out.contains("history on wuts comes from events waops has received, not from wuts itself."),
        "{out}"
    );
}

#[tokio::test]
async fn wawp_join_and_auth_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/groups/join"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": GROUP})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/groups/{GROUP}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": GROUP, "subject": "Sales Team"})))
        .mount(&server)
        .await;
    let (code, out, err) = exec(
        "wawp",
        format!("{}/v2", server.uri()),
        "join https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv",
    )
    .await;
    assert_eq!(
        (code, out.as_str()),
        (0, "Joined Sales Team\n  Group id  `120363041234567890@g.us`\n"),
        "{err}"
    );

    let denied = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string("Invalid or Missing Access Token"))
        .mount(&denied)
        .await;
    let (code, out, err) = exec("wawp", format!("{}/v2", denied.uri()), "groups").await;
    assert_eq!(code, 1);
    assert_eq!(out, "The wawp provider rejected waops' credentials\nAsk an admin to check provider.instance_id and provider.access_token.\n");
    assert!(!err.contains(TOKEN) && !out.contains(TOKEN), "{err}");
}
