//! Group names resolve through the provider's list endpoint, cached for
//! `provider.group_cache_s` and refreshed when a reference misses.

mod common;

use common::{provider_toml, TestApp};
use serde_json::json;
use waops::core::Status;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SALES: &str = "120363041234567890@g.us";
const NEW: &str = "120363041234567899@g.us";

fn chats(list: &[(&str, &str)]) -> ResponseTemplate {
    let chats: Vec<_> = list
        .iter()
        .map(|(id, name)| json!({"chat_id": id, "chat_name": name}))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"chats": chats, "count": list.len()}))
}

#[tokio::test]
async fn names_use_the_cache_and_a_miss_refreshes_it() {
    let server = MockServer::start().await;
    // The first list knows only Sales Team; later lists know the new group too.
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(chats(&[(SALES, "Sales Team")]))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(chats(&[(SALES, "Sales Team"), (NEW, "Launch Crew")]))
        .expect(2)
        .mount(&server)
        .await;
    for id in [SALES, NEW] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/chats/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"chat_id": id, "invite_link": "https://chat.whatsapp.com/EUKdz8Sdy9T2UWPnOKGkx"}),
            ))
            .mount(&server)
            .await;
    }
    let app = TestApp::with_config(&provider_toml("periskope", &format!("{}/v1", server.uri()), "")).await;

    for _ in 0..3 {
        assert_eq!(app.run("invite sales").await.status, Status::Ok);
    }
    // "launch" is not in the cached list: one refresh finds it.
    let reply = app.run("invite launch").await;
    assert_eq!(reply.title.plain(), "Invite link for Launch Crew");
    // A miss on the cached list refreshes it once more before saying so.
    let reply = app.run("invite marketing").await;
    assert_eq!(reply.title.plain(), "No group matches marketing");
    // wiremock checks on drop: one call to the first list, two to the second;
    // the three `invite sales` used the cache.
}
