//! Time from a provider webhook's arrival to the live alert that carries it.
//!
//! `waops serve`'s app in process (WUTS provider, webhook journal, SQLite file,
//! the real scheduler at `digests.tick_s`), 10 groups with a live subscription
//! each, and a local Slack fake that records when each alert arrives and which
//! window it posts. A burst of 1,000 webhook events (100 per group, 16 clients
//! at once) is sent; each event's latency is the alert's arrival minus the
//! moment its webhook was answered (the event was in the journal by then).
//!
//! Run: `cargo run --release --example live_alerts -- [events]` (default 1000).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::{json, Value};
use waops::settings::{LoadOptions, Settings};
use waops::store::Subscription;

const GROUPS: usize = 10;
const SECRET: &str = "bench-secret";

/// Alerts the fake received: (subscription, window start ms) → when.
type Alerts = Arc<Mutex<Vec<(String, i64, Instant)>>>;

async fn fake_slack(alerts: Alerts) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/chat.postMessage",
        post(move |body: axum::Json<Value>| {
            let alerts = alerts.clone();
            async move {
                let p = &body["metadata"]["event_payload"];
                let subscription = p["subscription"].as_str().unwrap_or_default().to_string();
                let window: i64 = p["window_start"]
                    .as_str()
                    .and_then(|w| w.parse().ok())
                    .unwrap_or_default();
                alerts.lock().unwrap().push((subscription, window, Instant::now()));
                axum::Json(json!({"ok": true, "channel": "C1", "ts": "1764000000.000100"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn settings(store_url: &str, fake: &str) -> anyhow::Result<Settings> {
    let env = [
        ("WAOPS__STORE__URL", store_url.to_string()),
        ("WAOPS__PROVIDER__KIND", "wuts".into()),
        ("WAOPS__PROVIDER__TOKEN", "bench-token".into()),
        ("WAOPS__PROVIDER__BASE_URL", "http://127.0.0.1:9".into()),
        ("WAOPS__PROVIDER__WEBHOOK_SECRET", SECRET.into()),
        ("WAOPS__SLACK__BOT_TOKEN", "xoxb-bench".into()),
        ("WAOPS__SLACK__API_URL", fake.into()),
        ("WAOPS__LOG__LEVEL", "warn".into()),
    ];
    Ok(Settings::load(&LoadOptions {
        config_file: None,
        base_dir: Some("/nonexistent".into()),
        env: Some(env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
    })?)
}

fn group(i: usize) -> String {
    format!("1203630412345678{i:02}@g.us")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: usize = std::env::args().nth(1).map_or(Ok(1000), |n| n.parse())?;
    let dir = tempfile::tempdir()?;
    let store_url = format!("sqlite://{}", dir.path().join("waops.db").display());
    let alerts: Alerts = Arc::default();
    let fake = fake_slack(alerts.clone()).await?;
    let ctx = waops::app::build_context(settings(&store_url, &fake)?, waops::core::Clock::System).await?;
    let now = ctx.clock.now();
    for i in 0..GROUPS {
        ctx.store
            .upsert_subscription(&Subscription {
                id: format!("live-{i}"),
                platform: "slack".into(),
                channel: "slack:C1".into(),
                group_ref: group(i),
                group_name: format!("Group {i}"),
                every_s: waops::core::subscription::LIVE_BATCH_S,
                at_time: None,
                tz: "UTC".into(),
                created_by: "bench".into(),
                created_at: now,
                live: true,
            })
            .await?;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/webhooks/wuts", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(waops::app::serve(ctx.clone(), listener, async move {
        let _ = stopped.await;
    }));

    // The burst: 16 clients, each event a join of its own number.
    let client = reqwest::Client::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let answered: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
    let started = Instant::now();
    let mut senders = Vec::new();
    for _ in 0..16 {
        let (client, base, next, answered) = (client.clone(), base.clone(), next.clone(), answered.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= events {
                    return;
                }
                let body = json!({"id": format!("evt-{n}"), "event": "group.info", "data": {
                    "jid": group(n % GROUPS), "join": [format!("55119{n:08}@s.whatsapp.net")]
                }});
                let r = client
                    .post(&base)
                    .header("x-waops-token", SECRET)
                    .json(&body)
                    .send()
                    .await
                    .expect("webhook answered");
                assert!(r.status().is_success(), "webhook {n}: {}", r.status());
                answered.lock().unwrap().push((n, Instant::now()));
            }
        }));
    }
    for s in senders {
        s.await?;
    }
    let burst = started.elapsed();

    // Each event's window, from the journal's own arrival time.
    let received: BTreeMap<String, i64> = ctx
        .store
        .events_received_between("wuts", None, jiff::Timestamp::MIN, jiff::Timestamp::MAX)
        .await?
        .into_iter()
        .map(|e| (e.subjects[0].clone(), e.received_at.as_millisecond()))
        .collect();
    // Windows end at multiples of 10 s; the first starts when subscribed.
    let subscribed = now.as_millisecond();
    let windows = |n: usize| {
        let at = received[&format!("55119{n:08}@s.whatsapp.net")];
        let batch = waops::core::subscription::LIVE_BATCH_S * 1000;
        (
            format!("live-{}", n % GROUPS),
            (at - at.rem_euclid(batch)).max(subscribed),
        )
    };
    // Wait for every window to be posted (bounded: 60 s after the burst).
    let expected: std::collections::BTreeSet<(String, i64)> = (0..events).map(windows).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let posted: std::collections::BTreeSet<(String, i64)> =
            alerts.lock().unwrap().iter().map(|(s, w, _)| (s.clone(), *w)).collect();
        if expected.is_subset(&posted) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    let _ = server.await;

    let posts = alerts.lock().unwrap().clone();
    let when: BTreeMap<(String, i64), Instant> = posts.iter().map(|(s, w, t)| ((s.clone(), *w), *t)).collect();
    let mut latencies: Vec<Duration> = answered
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(n, sent)| {
            when.get(&windows(*n))
                .map(|posted| posted.saturating_duration_since(*sent))
        })
        .collect();
    latencies.sort();
    let per_window = posts.len() as f64 / expected.len().max(1) as f64;
    println!(
        "live alerts: {events} events in a {:.2} s burst to {GROUPS} groups; {} of {events} alerted, {} posts for {} windows ({per_window:.2} per window)",
        burst.as_secs_f64(),
        latencies.len(),
        posts.len(),
        expected.len()
    );
    if !latencies.is_empty() {
        let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        println!(
            "webhook answered → alert posted: p50 {}, p99 {}, max {}, min {}",
            s(percentile(&latencies, 0.50)),
            s(percentile(&latencies, 0.99)),
            s(*latencies.last().unwrap()),
            s(latencies[0])
        );
    }
    Ok(())
}
