//! Cost of one digest scheduler tick with 1,000 subscriptions, on SQLite (a
//! file in a temporary directory) and, when WAOPS_BENCH_POSTGRES_URL is set, on
//! PostgreSQL (a fresh database on that server).
//!
//! Three ticks are measured, each `runs` times:
//! - idle: nothing due (every window still open) — the common tick;
//! - due, empty: all 1,000 windows closed with nothing in them (store work only);
//! - due, posting: all 1,000 windows closed with one journal event each, posted
//!   to a local Slack/Discord fake that answers at once (half each).
//!
//! Run: `cargo run --release --example digest_tick -- [subscriptions] [runs] [concurrency]`
//! (defaults 1000, 5 and 8 = `digests.concurrency`). Loopback only; bounded in count.

use std::time::{Duration, Instant};

use axum::routing::post;
use jiff::Timestamp;
use serde_json::json;
use waops::settings::{LoadOptions, Settings};
use waops::store::{JournalEntry, Subscription};

const GROUP: &str = "120363041234567890@g.us";

async fn fake_chat() -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route(
            "/chat.postMessage",
            post(|| async { axum::Json(json!({"ok": true, "ts": "1764000000.000100"})) }),
        )
        .route(
            "/channels/{id}/messages",
            post(|| async { axum::Json(json!({"id": "1300000000000000001"})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn settings(store_url: &str, fake: &str, concurrency: usize) -> anyhow::Result<Settings> {
    let env = [
        ("WAOPS__STORE__URL", store_url.to_string()),
        ("WAOPS__PROVIDER__KIND", "wuts".into()),
        ("WAOPS__PROVIDER__TOKEN", "bench-token".into()),
        ("WAOPS__PROVIDER__BASE_URL", fake.into()),
        ("WAOPS__SLACK__BOT_TOKEN", "xoxb-bench".into()),
        ("WAOPS__SLACK__API_URL", fake.into()),
        ("WAOPS__DISCORD__BOT_TOKEN", "bench-bot".into()),
        ("WAOPS__DISCORD__API_URL", fake.into()),
        ("WAOPS__DIGESTS__MIN_EVERY", "1s".into()),
        ("WAOPS__LOG__LEVEL", "warn".into()),
        ("WAOPS__DIGESTS__CONCURRENCY", concurrency.to_string()),
    ];
    Ok(Settings::load(&LoadOptions {
        config_file: None,
        base_dir: Some("/nonexistent".into()),
        env: Some(env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()),
    })?)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn bench(
    label: &str,
    store_url: &str,
    subscriptions: usize,
    runs: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let fake = fake_chat().await?;
    let start: Timestamp = "2026-11-24T12:00:00Z".parse()?;
    let ctx = waops::app::build_context(
        settings(store_url, &fake, concurrency)?,
        waops::core::Clock::Fixed(start),
    )
    .await?;
    let scheduler = waops::digests::Scheduler::new(ctx.clone(), "bench", waops::app::chat_posters(&ctx.settings)?);
    let every = 60i64;
    for i in 0..subscriptions {
        let platform = if i % 2 == 0 { "slack" } else { "discord" };
        ctx.store
            .upsert_subscription(&Subscription {
                id: format!("bench-{i:05}"),
                platform: platform.into(),
                channel: format!("{platform}:{}", 100_000 + i),
                group_ref: GROUP.into(),
                group_name: "Sales Team".into(),
                every_s: every,
                at_time: None,
                tz: "UTC".into(),
                created_by: "bench".into(),
                created_at: start,
                live: false,
            })
            .await?;
    }
    // Window k is [start + k·60 s, start + (k+1)·60 s); odd windows get an event.
    let mut idle = Vec::new();
    let mut empty = Vec::new();
    let mut posting = Vec::new();
    for run in 0..runs as i64 {
        let window = start + jiff::SignedDuration::from_secs(2 * run * every);
        let t = Instant::now();
        let r = scheduler.tick(window + jiff::SignedDuration::from_secs(30)).await?;
        idle.push(t.elapsed());
        assert_eq!(r.claimed, 0);

        let t = Instant::now();
        let r = scheduler.tick(window + jiff::SignedDuration::from_secs(every)).await?;
        empty.push(t.elapsed());
        assert_eq!((r.empty, r.failed), (subscriptions, 0), "{r:?}");

        let at = window + jiff::SignedDuration::from_secs(every + 1);
        ctx.store
            .record_event(&JournalEntry {
                provider: "wuts".into(),
                event_id: format!("bench-{run}"),
                group_id: GROUP.into(),
                kind: "joined".into(),
                actor: None,
                subjects: vec!["4915112345678@c.us".into()],
                detail: None,
                at,
                received_at: at,
            })
            .await?;
        let t = Instant::now();
        let r = scheduler
            .tick(window + jiff::SignedDuration::from_secs(2 * every))
            .await?;
        posting.push(t.elapsed());
        assert_eq!((r.posted, r.failed), (subscriptions, 0), "{r:?}");
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (i, e, p) = (median(&mut idle), median(&mut empty), median(&mut posting));
    println!(
        "| {label} | {subscriptions} | {concurrency} | {runs} | {} | {} ({:.0} µs/window) | {} ({:.0} µs/post) |",
        ms(i),
        ms(e),
        e.as_secs_f64() * 1e6 / subscriptions as f64,
        ms(p),
        p.as_secs_f64() * 1e6 / subscriptions as f64,
    );
    ctx.store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let subscriptions: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let concurrency: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(8).max(1);
    println!("| store | subscriptions | concurrency | runs | idle tick (median) | all due, empty | all due, posting |");
    println!("|---|---|---|---|---|---|---|");
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    bench("SQLite (file, WAL)", &sqlite, subscriptions, runs, concurrency).await?;
    if let Some(base) = std::env::var("WAOPS_BENCH_POSTGRES_URL").ok().filter(|u| !u.is_empty()) {
        use sqlx::Connection;
        let name = format!("waops_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&base).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let mut url = url::Url::parse(&base)?;
        url.set_path(&format!("/{name}"));
        bench(
            "PostgreSQL 15 (loopback)",
            url.as_str(),
            subscriptions,
            runs,
            concurrency,
        )
        .await?;
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}
