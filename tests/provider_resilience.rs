//! The same failure modes against every provider client: 429 with Retry-After
//! then success, a timeout, and malformed JSON.

mod common;

use std::time::{Duration, Instant};

use common::provider;
use serde_json::json;
use waops::providers::ProviderErrorKind;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// (kind, base path, an empty group list in that provider's shape)
fn kinds() -> [(&'static str, &'static str, serde_json::Value); 3] {
    [
        ("periskope", "/v1", json!({"chats": [], "count": 0})),
        ("wuts", "", json!({"success": true, "groups": []})),
        ("wawp", "/v2", json!([])),
    ]
}

#[tokio::test]
async fn rate_limited_then_success() {
    for (kind, prefix, empty) in kinds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(empty))
            .expect(1)
            .mount(&server)
            .await;
        let p = provider(kind, &format!("{}{prefix}", server.uri()), "");
        let started = Instant::now();
        assert!(p.list_groups().await.unwrap().is_empty(), "{kind}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{kind} waited for Retry-After"
        );
    }
}

#[tokio::test]
async fn timeouts_end_in_a_clear_error() {
    for (kind, prefix, empty) in kinds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(empty)
                    .set_delay(Duration::from_secs(3)),
            )
            .mount(&server)
            .await;
        let p = provider(
            kind,
            &format!("{}{prefix}", server.uri()),
            "timeout_ms = 150\nmax_retries = 1\n",
        );
        let started = Instant::now();
        let err = p.list_groups().await.unwrap_err();
        assert_eq!(err.kind, ProviderErrorKind::Timeout(false), "{kind}");
        // One retry of a read: two timeouts, never a hang.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{kind}: {:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn malformed_json_is_reported() {
    for (kind, prefix, _) in kinds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
            .mount(&server)
            .await;
        let p = provider(kind, &format!("{}{prefix}", server.uri()), "");
        assert_eq!(
            p.list_groups().await.unwrap_err().kind,
            ProviderErrorKind::Malformed,
            "{kind}"
        );
    }
}
