//! Load on the Slack ack path: signed `/wa add` slash commands at a fixed
//! concurrency against `waops serve` in this process, with a provider fake that
//! takes 300 ms per call and a `response_url` fake that counts follow-ups.
//!
//! Run: `cargo run --release --example slack_load -- [requests] [concurrency] [max_in_flight]`
//! (defaults 2000, 64 and 4096). With the default pool every request is accepted;
//! a smaller pool shows the "busy, try again" answers once it is full.
//! Loopback only; bounded in count and time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use waops::adapters::slack::verify::sign;
use waops::settings::{LoadOptions, Secret, Settings};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const SECRET: &str = "load-signing-secret";
const GROUP: &str = "120363041234567890@g.us";

struct Count(Arc<AtomicUsize>);

impl Respond for Count {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200).set_body_string("ok")
    }
}

struct Added;

impl Respond for Added {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let statuses: serde_json::Map<String, serde_json::Value> = body["participants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
            .map(|d| (format!("{d}@c.us"), json!({"is_success": true, "message": "added"})))
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(statuses)
            .set_delay(Duration::from_millis(300))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let requests: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(64);
    let max_in_flight: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(4096);

    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"chats": [{"chat_id": GROUP, "chat_name": "Sales Team"}], "count": 1}))
                .set_delay(Duration::from_millis(300)),
        )
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(Added)
        .mount(&provider)
        .await;
    let hooks = MockServer::start().await;
    let followups = Arc::new(AtomicUsize::new(0));
    Mock::given(method("POST"))
        .respond_with(Count(followups.clone()))
        .mount(&hooks)
        .await;

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("load.toml");
    std::fs::write(
        &config,
        format!(
            "[provider]\nkind = \"periskope\"\nbase_url = \"{}/v1\"\ntoken = \"t\"\nphone = \"1\"\nrate_per_second = 100000\nburst = 100000\n\
             [server]\nmax_in_flight = {max_in_flight}\n[slack]\nsigning_secret = \"{SECRET}\"\napi_url = \"{}/api\"\n[log]\nlevel = \"warn\"\n[permissions.bindings]\nadmin = [\"slack:user:ULOAD\"]\n",
            provider.uri(),
            hooks.uri()
        ),
    )?;
    let env = [(
        "WAOPS__STORE__URL".to_string(),
        format!("sqlite://{}", dir.path().join("load.db").display()),
    )]
    .into();
    let settings = Settings::load(&LoadOptions {
        config_file: Some(config),
        base_dir: Some(dir.path().into()),
        env: Some(env),
    })?;
    waops::telemetry::init_logs(settings.log.format, &settings.log.level);
    let ctx = waops::app::build_context(settings, waops::core::Clock::System).await?;
    waops::phone::warm_up();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/slack/commands", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(waops::app::serve(ctx, listener, async move {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let secret = Secret::new(SECRET);
    let hooks_uri = hooks.uri();
    let send = move |i: usize| {
        let body = serde_urlencoded::to_string([
            ("user_id", "ULOAD"),
            ("channel_id", "CLOAD"),
            ("text", &format!("add sales +491513{i:07}")),
            ("response_url", &format!("{hooks_uri}/hook/{i}")),
        ])
        .unwrap();
        let ts = chrono::Utc::now().timestamp().to_string();
        let signature = sign(&secret, &ts, body.as_bytes());
        let request = http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(body);
        async move {
            let started = Instant::now();
            let response = request.send().await.expect("ack");
            let text = if response.status().is_success() {
                response.text().await.unwrap_or_default()
            } else {
                String::new()
            };
            let elapsed = started.elapsed();
            (elapsed, text.contains("Working on it"), text.contains("busy"))
        }
    };
    // Warm-up: fills the group cache (one 300 ms list call) and the connection pool.
    for i in 0..concurrency {
        send(1_000_000 + i).await;
    }
    let warm_followups = concurrency;
    let warm_deadline = Instant::now() + Duration::from_secs(30);
    while followups.load(Ordering::SeqCst) < warm_followups {
        anyhow::ensure!(Instant::now() < warm_deadline, "warm-up follow-ups did not arrive");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let next = next.clone();
        let send = send.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let (mut working, mut busy) = (0, 0);
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= requests {
                    return (latencies, working, busy);
                }
                let (latency, accepted, refused) = send(i).await;
                latencies.push(latency);
                working += usize::from(accepted);
                busy += usize::from(refused);
            }
        });
    }
    let mut latencies = Vec::with_capacity(requests);
    let (mut working, mut busy) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (l, w, b) = done?;
        latencies.extend(l);
        working += w;
        busy += b;
    }
    let ack_elapsed = started.elapsed();
    let expected = warm_followups + working;
    let deadline = Instant::now() + Duration::from_secs(120);
    while followups.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all_done = started.elapsed();
    latencies.sort();
    println!("requests {requests}, concurrency {concurrency}, max_in_flight {max_in_flight}, provider latency 300 ms");
    println!(
        "ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (client-side, loopback)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "ack throughput {:.0} req/s; \"Working on it\" {working}, \"busy\" {busy}, other {}",
        requests as f64 / ack_elapsed.as_secs_f64(),
        requests - working - busy
    );
    println!(
        "follow-ups delivered {}/{working} in {:.2} s",
        followups.load(Ordering::SeqCst) - warm_followups,
        all_done.as_secs_f64()
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}
