//! The chat path under load: signed Slack `/wa add <group> <number>` sent to
//! `waops serve` (the release binary, its own process) against a fake
//! Periskope that answers after 300 ms, and the same requests sent to a floor
//! (this example in `floor` mode, its own process: the same signature check,
//! a fixed answer, nothing else).
//!
//! Two workloads (issue 31):
//! - flood: 64 connections, closed loop, 15 s. Far beyond what the provider
//!   can take, so most commands are answered "busy". Reports acks per second
//!   against the floor's, ack latency, and for the commands that were
//!   accepted, the time until their result reached the `response_url`.
//! - steady: open loop at 50 commands a second for 30 s, below the
//!   provider's capacity. Reports ack latency, end-to-end latency and
//!   follow-ups delivered.
//!
//! Run: `bash bench/load.sh` (builds the release binaries, then runs
//! `target/release/examples/load`). Loopback only; bounded in count and time.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use waops::adapters::slack::verify::sign;
use waops::settings::Secret;

const SECRET: &str = "bench-signing-secret";
const GROUP: &str = "120363041234567890@g.us";
const PROVIDER_DELAY: Duration = Duration::from_millis(300);
const FLOOD_CONNECTIONS: usize = 64;
const FLOOD_FOR: Duration = Duration::from_secs(15);
const STEADY_RATE: u64 = 50;
const STEADY_FOR: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Runtime::new()?;
    if args.get(1).map(String::as_str) == Some("floor") {
        let port: u16 = args.get(2).and_then(|p| p.parse().ok()).expect("floor PORT");
        return runtime.block_on(floor(port));
    }
    let waops = args.get(1).map_or("target/release/waops", String::as_str);
    // Absolute: the server runs in a directory of its own.
    let waops = std::fs::canonicalize(waops)?;
    runtime.block_on(bench(&waops.to_string_lossy()))
}

// ---------------------------------------------------------------- floor

/// Verify exactly as waops does, answer at once with a fixed body.
async fn floor(port: u16) -> anyhow::Result<()> {
    async fn slack(State(secret): State<Arc<Secret>>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        let now = jiff::Timestamp::now().as_second();
        if waops::adapters::slack::verify::verify(&secret, &headers, &body, now).is_err() {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Json(json!({"response_type": "ephemeral", "text": "Working on it…"})).into_response()
    }
    let app = Router::new()
        .route("/slack/commands", post(slack))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(Arc::new(Secret::new(SECRET)));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

// ---------------------------------------------------------------- fakes

/// When each command's result reached the fake `response_url`, by command number.
#[derive(Default)]
struct Fakes {
    delivered: Mutex<HashMap<usize, Instant>>,
    provider_calls: AtomicUsize,
}

async fn start_fakes(fakes: Arc<Fakes>) -> anyhow::Result<String> {
    async fn chats(State(f): State<Arc<Fakes>>) -> Json<Value> {
        f.provider_calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(PROVIDER_DELAY).await;
        Json(json!({"chats": [{"chat_id": GROUP, "chat_name": "Sales Team"}], "count": 1}))
    }
    async fn add(State(f): State<Arc<Fakes>>, body: Bytes) -> Json<Value> {
        f.provider_calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(PROVIDER_DELAY).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
        let statuses: serde_json::Map<String, Value> = body["participants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|d| {
                (
                    format!("{d}@c.us"),
                    json!({"is_success": true, "message": "Participant added"}),
                )
            })
            .collect();
        Json(Value::Object(statuses))
    }
    async fn hook(State(f): State<Arc<Fakes>>, Path(i): Path<usize>) -> &'static str {
        f.delivered.lock().unwrap().entry(i).or_insert_with(Instant::now);
        "ok"
    }
    let app = Router::new()
        .route("/v1/chats", get(chats))
        .route("/v1/chats/{group}/add", post(add))
        .route("/hook/{i}", post(hook))
        .with_state(fakes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

// ---------------------------------------------------------------- processes

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Server {
    child: Child,
    base: String,
    started_in: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn spawn(mut command: Command, port: u16) -> anyhow::Result<Server> {
        let started = Instant::now();
        let child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        while !http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            anyhow::ensure!(started.elapsed() < Duration::from_secs(30), "server did not start");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(Server {
            started_in: started.elapsed(),
            child,
            base,
        })
    }

    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        kb / 1024.0
    }
}

async fn start_waops(binary: &str, fakes: &str, work: &std::path::Path) -> anyhow::Result<Server> {
    let port = free_port()?;
    let config = work.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n\n[log]\nlevel = \"warn\"\n\n\
             [store]\nurl = \"sqlite://{db}\"\n\n\
             [provider]\nkind = \"periskope\"\nbase_url = \"{fakes}/v1\"\ntoken = \"bench\"\nphone = \"+4915100000000\"\n\
             rate_per_second = 10000\nburst = 10000\nmax_connections = 512\n\n\
             [slack]\nsigning_secret = \"{SECRET}\"\nbot_token = \"xoxb-bench\"\napi_url = \"{fakes}/api\"\n\
             response_url_prefixes = [\"{fakes}/\"]\n\
             \n\
             [permissions.bindings]\nadmin = [\"slack:user:ULOAD\"]\n",
            db = work.join("bench.db").display(),
        ),
    )?;
    let mut command = Command::new(binary);
    command.arg("--config").arg(&config).arg("serve").current_dir(work);
    Server::spawn(command, port).await
}

async fn start_floor(work: &std::path::Path) -> anyhow::Result<Server> {
    let port = free_port()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["floor", &port.to_string()]).current_dir(work);
    Server::spawn(command, port).await
}

// ---------------------------------------------------------------- load

/// One signed slash command; `i` numbers it (its number, trigger id and `response_url`).
fn command(http: &reqwest::Client, base: &str, hooks: &str, i: usize) -> reqwest::RequestBuilder {
    let number = format!("+491513{:07}", i % 10_000_000);
    let body = serde_urlencoded::to_string([
        ("team_id", "TLOAD"),
        ("user_id", "ULOAD"),
        ("channel_id", "CLOAD"),
        ("command", "/wa"),
        ("text", &format!("add {GROUP} {number}")),
        ("response_url", &format!("{hooks}/hook/{i}")),
        ("trigger_id", &format!("trigger-{i}")),
    ])
    .expect("a form");
    let ts = jiff::Timestamp::now().as_second().to_string();
    let signature = sign(&Secret::new(SECRET), &ts, body.as_bytes());
    http.post(format!("{base}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
}

/// One sent command: its number, when it went, how long its ack took, and
/// whether it was accepted ("Working on it…") rather than refused as busy.
struct Sent {
    i: usize,
    at: Instant,
    ack: Duration,
    /// The server's own time for it (its `Server-Timing` header).
    server: Duration,
    accepted: bool,
}

async fn send(http: &reqwest::Client, base: &str, hooks: &str, i: usize) -> anyhow::Result<Sent> {
    let at = Instant::now();
    let response = command(http, base, hooks, i).send().await?;
    let ok = response.status().is_success();
    let server = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(Duration::ZERO, |ms| Duration::from_secs_f64(ms / 1000.0));
    let text = response.text().await?;
    let ack = at.elapsed();
    anyhow::ensure!(ok, "HTTP error: {text}");
    Ok(Sent {
        i,
        at,
        ack,
        server,
        accepted: text.contains("Working on it"),
    })
}

/// `connections` closed loops for `duration`; command numbers from `first`.
async fn flood(base: &str, hooks: &str, first: usize, duration: Duration) -> anyhow::Result<(Vec<Sent>, Duration)> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(FLOOD_CONNECTIONS)
        .build()?;
    let next = Arc::new(AtomicUsize::new(first));
    let started = Instant::now();
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..FLOOD_CONNECTIONS {
        let (http, base, hooks, next) = (http.clone(), base.to_string(), hooks.to_string(), next.clone());
        loops.spawn(async move {
            let mut sent = Vec::new();
            while started.elapsed() < duration {
                let i = next.fetch_add(1, Ordering::Relaxed);
                sent.push(send(&http, &base, &hooks, i).await?);
            }
            Ok::<_, anyhow::Error>(sent)
        });
    }
    let mut all = Vec::new();
    while let Some(sent) = loops.join_next().await {
        all.extend(sent??);
    }
    Ok((all, started.elapsed()))
}

/// An open loop: one command every `1 / rate` s for `duration`, each on its own task.
async fn steady(base: &str, hooks: &str, first: usize, rate: u64, duration: Duration) -> anyhow::Result<Vec<Sent>> {
    let http = reqwest::Client::new();
    let mut every = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut i = first;
    while started.elapsed() < duration {
        every.tick().await;
        let (http, base, hooks) = (http.clone(), base.to_string(), hooks.to_string());
        tasks.spawn(async move { send(&http, &base, &hooks, i).await });
        i += 1;
    }
    let mut all = Vec::new();
    while let Some(sent) = tasks.join_next().await {
        all.push(sent??);
    }
    Ok(all)
}

// ---------------------------------------------------------------- figures

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn latencies(mut values: Vec<Duration>) -> String {
    values.sort();
    format!(
        "p50 {} ms, p99 {} ms, max {} ms (n = {})",
        ms(percentile(&values, 0.5)),
        ms(percentile(&values, 0.99)),
        ms(values.last().copied().unwrap_or_default()),
        values.len()
    )
}

/// Waits (bounded) until every accepted command's result arrived; returns
/// end-to-end times and how many never arrived.
async fn end_to_end(fakes: &Fakes, sent: &[Sent], wait: Duration) -> (Vec<Duration>, usize) {
    let accepted: Vec<&Sent> = sent.iter().filter(|s| s.accepted).collect();
    let deadline = Instant::now() + wait;
    loop {
        let all_in = {
            let delivered = fakes.delivered.lock().unwrap();
            accepted.iter().all(|s| delivered.contains_key(&s.i))
        };
        if all_in || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = fakes.delivered.lock().unwrap();
    let mut times = Vec::new();
    let mut missing = 0;
    for s in accepted {
        match delivered.get(&s.i) {
            Some(at) => times.push(at.duration_since(s.at)),
            None => missing += 1,
        }
    }
    (times, missing)
}

async fn bench(binary: &str) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let fakes = Arc::new(Fakes::default());
    let hooks = start_fakes(fakes.clone()).await?;
    let waops = start_waops(binary, &hooks, work.path()).await?;
    let idle_rss = {
        tokio::time::sleep(Duration::from_secs(1)).await;
        waops.rss_mb()
    };
    println!(
        "machine: {} cores; waops: start to /healthz {} ms, idle RSS {:.1} MB, binary {:.1} MB",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        ms(waops.started_in),
        idle_rss,
        std::fs::metadata(binary)?.len() as f64 / 1e6
    );
    // Warm-up: the group list cached, connections open.
    let http = reqwest::Client::new();
    send(&http, &waops.base, &hooks, 0).await?;
    let (_, missing) = end_to_end(
        &fakes,
        &[send(&http, &waops.base, &hooks, 1).await?],
        Duration::from_secs(10),
    )
    .await;
    anyhow::ensure!(missing == 0, "the warm-up command's result never arrived");

    let floor = start_floor(work.path()).await?;
    let (floor_sent, floor_took) = flood(&floor.base, &hooks, 1_000_000, FLOOD_FOR).await?;
    drop(floor);
    let floor_rate = floor_sent.len() as f64 / floor_took.as_secs_f64();

    let (sent, took) = flood(&waops.base, &hooks, 10, FLOOD_FOR).await?;
    let rate = sent.len() as f64 / took.as_secs_f64();
    let accepted = sent.iter().filter(|s| s.accepted).count();
    let over_3s = sent.iter().filter(|s| s.ack > Duration::from_secs(3)).count();
    let (e2e, missing) = end_to_end(&fakes, &sent, Duration::from_secs(30)).await;
    println!(
        "\n## flood: {FLOOD_CONNECTIONS} connections, closed loop, {} s",
        FLOOD_FOR.as_secs()
    );
    println!(
        "floor: {floor_rate:.0} acks/s; ack {}",
        latencies(floor_sent.iter().map(|s| s.ack).collect())
    );
    println!(
        "waops: {rate:.0} acks/s, ratio {:.2}; {} commands, {accepted} accepted, {} busy; loaded RSS {:.1} MB",
        rate / floor_rate,
        sent.len(),
        sent.len() - accepted,
        waops.rss_mb()
    );
    println!(
        "ack: {}; over 3 s: {over_3s}",
        latencies(sent.iter().map(|s| s.ack).collect())
    );
    println!(
        "ack, server side: {}",
        latencies(sent.iter().map(|s| s.server).collect())
    );
    println!(
        "ack of accepted commands: {}",
        latencies(sent.iter().filter(|s| s.accepted).map(|s| s.ack).collect())
    );
    println!("accepted, end to end: {}; never delivered: {missing}", latencies(e2e));

    let first = 10 + sent.len() + 10;
    let sent = steady(&waops.base, &hooks, first, STEADY_RATE, STEADY_FOR).await?;
    let accepted = sent.iter().filter(|s| s.accepted).count();
    let (e2e, missing) = end_to_end(&fakes, &sent, Duration::from_secs(30)).await;
    println!(
        "\n## steady: open loop, {STEADY_RATE} commands/s for {} s (provider answers in {} ms)",
        STEADY_FOR.as_secs(),
        PROVIDER_DELAY.as_millis()
    );
    println!(
        "{} commands, {accepted} accepted, {} busy; follow-ups delivered {}/{accepted}",
        sent.len(),
        sent.len() - accepted,
        accepted - missing
    );
    println!("ack: {}", latencies(sent.iter().map(|s| s.ack).collect()));
    println!(
        "ack, server side: {}",
        latencies(sent.iter().map(|s| s.server).collect())
    );
    println!("end to end: {}", latencies(e2e));
    println!("provider calls: {}", fakes.provider_calls.load(Ordering::Relaxed));
    Ok(())
}
