//! The real router over real TCP: health, readiness with reasons, metrics,
//! request ids, graceful shutdown.

mod common;

use common::{provider_toml, TestApp};
use tokio::net::TcpListener;
use wiremock::MockServer;

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(app: &TestApp) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let done = tokio::spawn(waops::app::serve(app.ctx.clone(), listener, async move {
        let _ = rx.await;
    }));
    Server {
        base,
        stop: Some(tx),
        done,
    }
}

#[tokio::test]
async fn health_ready_and_request_ids() {
    let app = TestApp::new().await;
    let server = start(&app).await;
    let client = reqwest::Client::new();

    let r = client.get(format!("{}/healthz", server.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(r.text().await.unwrap(), "ok\n");

    let r = client
        .get(format!("{}/readyz", server.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123", "a caller's request id is kept");
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (200, "ready\n".to_string())
    );

    let r = client.get(format!("{}/nope", server.base)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));

    app.ctx.store.close().await;
    let r = client.get(format!("{}/readyz", server.base)).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert_eq!(
        body, "not ready: store: unavailable\n",
        "which dependency, never its error text"
    );
}

#[tokio::test]
async fn metrics_count_requests_commands_and_provider_calls() {
    let provider = MockServer::start().await;
    common::mount_periskope_groups(&provider, "120363041234567890@g.us").await;
    let app = TestApp::with_config(&provider_toml("periskope", &format!("{}/v1", provider.uri()), "")).await;
    let server = start(&app).await;
    app.run("whoami").await;
    let groups = app.run("groups").await;
    assert!(groups.plain().contains("Sales Team"), "{}", groups.plain());
    let client = reqwest::Client::new();
    client.get(format!("{}/healthz", server.base)).send().await.unwrap();
    let r = client.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains(r#"waops_http_requests_total{route="/healthz",status="200"}"#),
        "{body}"
    );
    assert!(
        body.contains(r#"waops_commands_total{command="whoami",outcome="ok"}"#),
        "{body}"
    );
    assert!(body.contains("waops_command_duration_seconds_bucket"), "{body}");
    assert!(
        body.contains(r#"waops_provider_calls_total{account="default",provider="periskope",outcome="ok"}"#),
        "{body}"
    );
    assert!(
        body.contains(r#"waops_provider_call_seconds_bucket{account="default",provider="periskope""#),
        "{body}"
    );
}

#[tokio::test]
async fn graceful_shutdown_returns_cleanly() {
    let app = TestApp::new().await;
    let mut server = start(&app).await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop.take().unwrap().send(()).unwrap();
    server.done.await.unwrap().unwrap();
    assert!(
        client.get(format!("{}/healthz", server.base)).send().await.is_err(),
        "no longer accepting"
    );
}
