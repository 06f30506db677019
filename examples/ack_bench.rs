//! The chat ack path under load, against a floor: signed Slack slash commands and
//! Discord interactions (`/wa add sales <number>`) at fixed concurrency, sent to
//! `waops serve` (the release binary, its own process) and to a minimal
//! signed-ack server (this example's `floor` mode, its own process: the same
//! signature checks, a fixed answer, nothing else). The provider fake takes
//! 300 ms per call; the follow-up fakes count every result waops posts back.
//!
//! Reported per platform and concurrency: throughput, client-side and
//! server-side (the `Server-Timing` header) p50/p99, "busy" answers, follow-ups
//! delivered, each server's HTTP-thread CPU per ack; and for waops: start-up to
//! the first `/healthz`, idle and loaded RSS, binary size.
//!
//! Run: `bash bench/ack.sh` (builds the release binaries, then runs
//! `target/release/examples/ack_bench [requests] [max_in_flight]`, defaults 4000
//! and 4096). Loopback only; bounded in count and time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{json, Value};
use waops::adapters::slack::verify::sign;
use waops::settings::Secret;

const SECRET: &str = "bench-signing-secret";
const APP: &str = "4242";
const GROUP: &str = "120363041234567890@g.us";
const PROVIDER_DELAY: Duration = Duration::from_millis(300);
/// `provider.max_connections` for waops: 1,024 requests in flight at 300 ms
/// carry about 3,400 provider calls a second, more than two cores finish
/// follow-ups at (8,000 took 1.8 to 2.8 s without a cap), so the cap saves the
/// connections without holding the follow-ups back.
const PROVIDER_CONNECTIONS: u32 = 1024;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

// ---------------------------------------------------------------- floor server

/// The floor: verify exactly as waops does, answer at once with a fixed body.
async fn floor(bind: SocketAddr) -> anyhow::Result<()> {
    #[derive(Clone)]
    struct Floor {
        secret: Secret,
        key: ed25519_dalek::VerifyingKey,
    }
    async fn slack(State(f): State<Floor>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        let now = chrono::Utc::now().timestamp();
        if waops::adapters::slack::verify::verify(&f.secret, &headers, &body, now).is_err() {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Json(json!({"response_type": "ephemeral", "text": "Working on it…"})).into_response()
    }
    async fn discord(State(f): State<Floor>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        if waops::adapters::discord::verify::verify(&f.key, &headers, &body).is_err() {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        Json(json!({"type": 5})).into_response()
    }
    async fn timing(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
        let started = Instant::now();
        let mut response = next.run(req).await;
        let value = format!("app;dur={:.3}", started.elapsed().as_secs_f64() * 1000.0);
        response.headers_mut().insert("server-timing", value.parse().unwrap());
        response
    }
    let state = Floor {
        secret: Secret::new(SECRET),
        key: key().verifying_key(),
    };
    let app = Router::new()
        .route("/slack/commands", post(slack))
        .route("/discord/interactions", post(discord))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
        .layer(axum::middleware::from_fn(timing));
    let listener = tokio::net::TcpListener::bind(bind).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

// ---------------------------------------------------------------- fakes

#[derive(Default)]
struct Counts {
    slack: AtomicUsize,
    discord: AtomicUsize,
    provider: AtomicUsize,
}

async fn fakes(counts: Arc<Counts>) -> anyhow::Result<String> {
    async fn chats(State(c): State<Arc<Counts>>) -> Json<Value> {
        c.provider.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(PROVIDER_DELAY).await;
        Json(json!({"chats": [{"chat_id": GROUP, "chat_name": "Sales Team"}], "count": 1}))
    }
    async fn add(State(c): State<Arc<Counts>>, body: Bytes) -> Json<Value> {
        c.provider.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(PROVIDER_DELAY).await;
        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
        let statuses: serde_json::Map<String, Value> = body["participants"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str())
            .map(|d| (format!("{d}@c.us"), json!({"is_success": true, "message": "added"})))
            .collect();
        Json(Value::Object(statuses))
    }
    async fn hook(State(c): State<Arc<Counts>>, Path(_): Path<String>) -> &'static str {
        c.slack.fetch_add(1, Ordering::Relaxed);
        "ok"
    }
    async fn edit(State(c): State<Arc<Counts>>, Path(_): Path<(String, String)>) -> Json<Value> {
        c.discord.fetch_add(1, Ordering::Relaxed);
        Json(json!({"id": "1"}))
    }
    let app = Router::new()
        .route("/v1/chats", get(chats))
        .route("/v1/chats/{group}/add", post(add))
        .route("/hook/{i}", post(hook))
        .route("/api/webhooks/{app}/{token}/messages/@original", patch(edit))
        .with_state(counts);
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
        if let Ok(cpus) = std::env::var("BENCH_SERVER_CPUS") {
            use std::os::unix::process::CommandExt;
            let set = cpu_set(&cpus)?;
            // SAFETY: the closure only calls `pin`, which is async-signal-safe.
            unsafe {
                command.pre_exec(move || pin(&set));
            }
        }
        let started = Instant::now();
        let child = command.stdout(Stdio::null()).spawn()?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            // 60 s: under callgrind (bench/ack_instructions.sh) start-up takes 5 to 20 s.
            anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "server did not start");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(Server {
            started_in: started.elapsed(),
            child,
            base,
        })
    }

    /// CPU time the process has used (user + system), from /proc/<pid>/stat.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let ticks: u64 = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|v| v.parse::<u64>().ok())
            .sum();
        // SAFETY: sysconf only reads a system constant.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_micros(ticks * 1_000_000 / per_second)
    }

    /// Time on CPU of the process's HTTP runtime threads (Tokio's default
    /// name; waops' follow-up and store threads have names of their own), from
    /// each thread's /proc schedstat, in nanoseconds: clock ticks (10 ms) are
    /// too coarse for a burst of half a second.
    fn http_cpu(&self) -> Duration {
        let dir = format!("/proc/{}/task", self.child.id());
        let nanos: u64 = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.starts_with("tokio-r")))
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum();
        Duration::from_nanos(nanos)
    }

    fn status(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        text.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------- load

#[derive(Clone, Copy, PartialEq, Eq)]
enum Platform {
    Slack,
    Discord,
}

struct Run {
    elapsed: Duration,
    client: Vec<Duration>,
    server: Vec<f64>,
    accepted: usize,
    busy: usize,
}

fn request(http: &reqwest::Client, base: &str, hooks: &str, platform: Platform, i: usize) -> reqwest::RequestBuilder {
    let number = format!("+491513{:07}", i % 10_000_000);
    match platform {
        Platform::Slack => {
            let body = serde_urlencoded::to_string([
                ("user_id", "ULOAD"),
                ("channel_id", "CLOAD"),
                ("text", &format!("add sales {number}")),
                ("response_url", &format!("{hooks}/hook/{i}")),
                ("trigger_id", &format!("trigger-{i}")),
            ])
            .unwrap();
            let ts = chrono::Utc::now().timestamp().to_string();
            let signature = sign(&Secret::new(SECRET), &ts, body.as_bytes());
            http.post(format!("{base}/slack/commands"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-slack-request-timestamp", ts)
                .header("x-slack-signature", signature)
                .body(body)
        }
        Platform::Discord => {
            let body = json!({
                "type": 2, "id": format!("{}", 1_000_000_000 + i), "application_id": APP,
                "token": format!("tok{i}"), "guild_id": "g1", "channel_id": "c1",
                "member": {"user": {"id": "77"}, "roles": []},
                "data": {"name": "wa", "options": [{"name": "add", "type": 1, "options": [
                    {"name": "group", "type": 3, "value": "sales"},
                    {"name": "numbers", "type": 3, "value": number}
                ]}]}
            })
            .to_string();
            let ts = chrono::Utc::now().timestamp().to_string();
            let signature = key().sign(&[ts.as_bytes(), body.as_bytes()].concat());
            http.post(format!("{base}/discord/interactions"))
                .header("content-type", "application/json")
                .header("x-signature-timestamp", ts)
                .header("x-signature-ed25519", hex::encode(signature.to_bytes()))
                .body(body)
        }
    }
}

async fn load(
    base: &str,
    hooks: &str,
    platform: Platform,
    first: usize,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<Run> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    // Built and signed before the clock starts: signing (Ed25519 for Discord) is
    // the load client's own CPU, and in the shared layout it would compete with
    // the server under test for the same cores inside the measured window.
    let prepared = (0..requests)
        .map(|i| request(&http, base, hooks, platform, first + i).build())
        .collect::<Result<Vec<_>, _>>()?;
    let queue = Arc::new(std::sync::Mutex::new(prepared.into_iter()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, queue) = (http.clone(), queue.clone());
        tasks.spawn(async move {
            let mut out = (Vec::new(), Vec::new(), 0usize, 0usize);
            loop {
                let Some(prepared) = queue.lock().expect("queue").next() else {
                    return Ok::<_, anyhow::Error>(out);
                };
                let sent = Instant::now();
                let response = http.execute(prepared).await?;
                let server = response
                    .headers()
                    .get("server-timing")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.split("dur=").nth(1))
                    .and_then(|v| v.parse::<f64>().ok());
                let ok = response.status().is_success();
                let text = response.text().await.unwrap_or_default();
                out.0.push(sent.elapsed());
                out.1.extend(server);
                anyhow::ensure!(ok, "HTTP error: {text}");
                if text.contains("busy") {
                    out.3 += 1;
                } else {
                    out.2 += 1;
                }
            }
        });
    }
    let mut run = Run {
        elapsed: Duration::ZERO,
        client: Vec::with_capacity(requests),
        server: Vec::with_capacity(requests),
        accepted: 0,
        busy: 0,
    };
    while let Some(done) = tasks.join_next().await {
        let (client, server, accepted, busy) = done??;
        run.client.extend(client);
        run.server.extend(server);
        run.accepted += accepted;
        run.busy += busy;
    }
    run.elapsed = started.elapsed();
    run.client.sort();
    run.server.sort_by(f64::total_cmp);
    Ok(run)
}

/// One cell's rounds, for the summary.
#[derive(Default)]
struct Cell {
    /// "Discord 64", say.
    name: String,
    /// Each round's throughput ratio, waops over the floor.
    ratios: Vec<f64>,
    /// Each round's waops server p99, in ms.
    p99s: Vec<f64>,
    /// Each round's HTTP-thread CPU per ack, the floor's over waops'.
    cpu_ratios: Vec<f64>,
}

fn pct<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn wait_for(count: &AtomicUsize, expected: usize, limit: Duration) -> (usize, Duration) {
    let started = Instant::now();
    while count.load(Ordering::Relaxed) < expected && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (count.load(Ordering::Relaxed), started.elapsed())
}

async fn orchestrate(requests: usize, max_in_flight: usize) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let waops_bin = std::env::var("WAOPS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/release/waops"));
    let counts = Arc::new(Counts::default());
    let hooks = fakes(counts.clone()).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[provider]\nkind = \"periskope\"\nbase_url = \"{hooks}/v1\"\ntoken = \"t\"\nphone = \"1\"\nrate_per_second = 100000\nburst = 100000\nmax_connections = {PROVIDER_CONNECTIONS}\n\
             [server]\nmax_in_flight = {max_in_flight}\n\
             [slack]\nsigning_secret = \"{SECRET}\"\napi_url = \"{hooks}/api\"\n\
             [discord]\npublic_key = \"{}\"\napplication_id = \"{APP}\"\nbot_token = \"b\"\napi_url = \"{hooks}/api\"\n\
             [log]\nlevel = \"warn\"\n[permissions.bindings]\nadmin = [\"slack:user:ULOAD\", \"discord:user:77\"]\n",
            hex::encode(key().verifying_key().to_bytes())
        ),
    )?;
    let port = free_port()?;
    let mut command = Command::new(&waops_bin);
    command
        .arg("serve")
        .env("WAOPS_CONFIG", &config)
        .env("WAOPS__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env(
            "WAOPS__STORE__URL",
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        )
        .current_dir(dir.path());
    let waops = Server::spawn(command, port).await?;
    tokio::time::sleep(Duration::from_secs(1)).await; // let the phone metadata warm-up finish
    let idle_rss = waops.status("VmRSS:");
    let floor_port = free_port()?;
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("floor").arg(format!("127.0.0.1:{floor_port}"));
    let floor = Server::spawn(command, floor_port).await?;

    // Warm the group cache (one 300 ms list call) and both connection paths.
    let http = reqwest::Client::new();
    let mut next_id = 10_000_000;
    for platform in [Platform::Slack, Platform::Discord] {
        request(&http, &waops.base, &hooks, platform, next_id).send().await?;
        next_id += 1;
    }
    wait_for(&counts.slack, 1, Duration::from_secs(10)).await;
    wait_for(&counts.discord, 1, Duration::from_secs(10)).await;

    println!("| platform | concurrency | server | throughput | ratio to floor | client p50 / p99 | server p50 / p99 | server CPU per request | accepted / busy | follow-ups | HTTP threads' CPU per ack |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    // `BENCH_ONLY=slack:64` (say) runs one cell, e.g. to profile it.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default().to_lowercase();
    // `BENCH_ROUNDS=3` runs every cell three times in the same processes: one
    // round's floor and waops runs last well under a second each, so their ratio
    // is noisy, and the summary below gives each cell's median.
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1);
    let mut cells: Vec<Cell> = Vec::new();
    for round in 1..=rounds {
        if rounds > 1 {
            println!("| round {round} | | | | | | | | | | |");
        }
        for platform in [Platform::Slack, Platform::Discord] {
            let name = if platform == Platform::Slack {
                "Slack"
            } else {
                "Discord"
            };
            for concurrency in [64, 256] {
                if !only.is_empty() && only != format!("{}:{concurrency}", name.to_lowercase()) {
                    continue;
                }
                let (floor_cpu, floor_http) = (floor.cpu(), floor.http_cpu());
                let floor_run = load(&floor.base, &hooks, platform, next_id, requests, concurrency).await?;
                let (floor_cpu, floor_http) = (floor.cpu() - floor_cpu, floor.http_cpu() - floor_http);
                next_id += requests;
                let counter = if platform == Platform::Slack {
                    &counts.slack
                } else {
                    &counts.discord
                };
                let before = counter.load(Ordering::Relaxed);
                let (waops_cpu, waops_http) = (waops.cpu(), waops.http_cpu());
                let run = load(&waops.base, &hooks, platform, next_id, requests, concurrency).await?;
                // The burst only: what the acks cost, without the follow-ups after it.
                let waops_http = waops.http_cpu() - waops_http;
                next_id += requests;
                let (arrived, took) = wait_for(counter, before + run.accepted, Duration::from_secs(120)).await;
                // Counted to the last follow-up: the provider call and the post back are part of a command.
                let waops_cpu = waops.cpu() - waops_cpu;
                let per_request =
                    |cpu: Duration, digits: usize| format!("{:.digits$} µs", cpu.as_secs_f64() * 1e6 / requests as f64);
                let floor_rate = requests as f64 / floor_run.elapsed.as_secs_f64();
                let rate = requests as f64 / run.elapsed.as_secs_f64();
                let cell = format!("{name} {concurrency}");
                let at = cells.iter().position(|c| c.name == cell).unwrap_or_else(|| {
                    cells.push(Cell {
                        name: cell,
                        ..Cell::default()
                    });
                    cells.len() - 1
                });
                cells[at].ratios.push(rate / floor_rate);
                cells[at].p99s.push(pct(&run.server, 0.99));
                cells[at]
                    .cpu_ratios
                    .push(floor_http.as_secs_f64() / waops_http.as_secs_f64().max(1e-9));
                for (label, r, rate, ratio, cpu, followups, http) in [
                    (
                        "floor",
                        &floor_run,
                        floor_rate,
                        String::from("1"),
                        per_request(floor_cpu, 0),
                        String::from("–"),
                        per_request(floor_http, 1),
                    ),
                    (
                        "waops",
                        &run,
                        rate,
                        format!("{:.2}", rate / floor_rate),
                        per_request(waops_cpu, 0),
                        format!("{}/{} in {:.2} s", arrived - before, run.accepted, took.as_secs_f64()),
                        per_request(waops_http, 1),
                    ),
                ] {
                    println!(
                    "| {name} | {concurrency} | {label} | {rate:.0} req/s | {ratio} | {:.2} / {:.2} ms | {:.3} / {:.3} ms | {cpu} | {} / {} | {followups} | {http} |",
                    ms(pct(&r.client, 0.5)),
                    ms(pct(&r.client, 0.99)),
                    pct(&r.server, 0.5),
                    pct(&r.server, 0.99),
                    r.accepted,
                    r.busy,
                );
                }
            }
        }
    }
    if rounds > 1 {
        // The floor's rate moves by up to 1.5x between rounds on this shared
        // machine, so one round's ratio is noisy; the median of the rounds is the
        // figure to read. The CPU ratio (the floor's HTTP-thread CPU per ack over
        // waops') says how much of a throughput ratio is waops' own cost per ack,
        // and how much is the machine: it does not count time spent waiting.
        println!();
        println!("| cell | ratio per round | median ratio | HTTP CPU ratio per round | median CPU ratio | waops server p99 per round (ms) | median p99 |");
        println!("|---|---|---|---|---|---|---|");
        for cell in &cells {
            let list =
                |v: &[f64], digits: usize| v.iter().map(|x| format!("{x:.digits$}")).collect::<Vec<_>>().join(", ");
            println!(
                "| {} | {} | {:.2} | {} | {:.2} | {} | {:.3} |",
                cell.name,
                list(&cell.ratios, 2),
                median(&cell.ratios),
                list(&cell.cpu_ratios, 2),
                median(&cell.cpu_ratios),
                list(&cell.p99s, 3),
                median(&cell.p99s)
            );
        }
    }
    let loaded_rss = waops.status("VmHWM:");
    let size = std::fs::metadata(&waops_bin)?.len();
    println!();
    println!("| waops serve | figure |");
    println!("|---|---|");
    println!(
        "| start-up: process spawn → first `/healthz` 200 | {:.1} ms |",
        ms(waops.started_in)
    );
    println!(
        "| idle RSS (1 s after start, metadata warmed) | {:.1} MB |",
        idle_rss as f64 / 1024.0
    );
    println!(
        "| peak RSS (VmHWM) after all runs | {:.1} MB |",
        loaded_rss as f64 / 1024.0
    );
    println!(
        "| RSS after all runs | {:.1} MB |",
        waops.status("VmRSS:") as f64 / 1024.0
    );
    println!("| release binary size | {:.1} MB |", size as f64 / 1e6);
    println!("| provider calls | {} |", counts.provider.load(Ordering::Relaxed));
    drop(floor);
    drop(waops);
    Ok(())
}

/// A CPU set from a list like `0` or `0,1`.
fn cpu_set(list: &str) -> anyhow::Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in list.split(',') {
        let cpu: usize = cpu.trim().parse()?;
        anyhow::ensure!(cpu < libc::CPU_SETSIZE as usize, "no CPU {cpu}");
        // SAFETY: `cpu` is within the set, checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

/// Pins the calling thread (and the threads it starts later) to `set`.
fn pin(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: sched_setaffinity reads `set` only; it is async-signal-safe, so
    // `pre_exec` may call it between fork and exec.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    // `BENCH_CLIENT_CPUS` / `BENCH_SERVER_CPUS` (e.g. 0 and 1): load client and
    // fakes on some cores, the server under test on others, so the load does not
    // compete with the server it measures. Unset: everything shares every core.
    let floor_mode = std::env::args().nth(1).as_deref() == Some("floor");
    if let (Ok(cpus), false) = (std::env::var("BENCH_CLIENT_CPUS"), floor_mode) {
        // This is the only thread yet: the runtime's threads, started below, inherit it.
        pin(&cpu_set(&cpus)?).map_err(|e| anyhow::anyhow!("cannot pin the load client: {e}"))?;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("floor") {
        let bind: SocketAddr = args.get(2).map_or("127.0.0.1:8099", String::as_str).parse()?;
        return floor(bind).await;
    }
    let requests: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(4000);
    let max_in_flight: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4096);
    orchestrate(requests, max_in_flight).await
}
