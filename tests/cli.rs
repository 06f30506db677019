//! The `waops` binary as a user runs it: exec exit codes, check-config
//! messages, migrate, and serve with SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

fn waops(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_waops"));
    cmd.current_dir(dir).env_remove("WAOPS_CONFIG").env(
        "WAOPS__STORE__URL",
        format!("sqlite://{}", dir.join("cli.db").display()),
    );
    cmd
}

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    waops_env(dir, &[], args)
}

#[test]
fn exec_prints_the_reply_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(
        dir.path(),
        &["exec", "add sales +49 151 1234 5678, 0151-1234-5679 --dry-run"],
    );
    assert_eq!(code, 0);
    assert!(out.contains("`+4915112345678`\n  `+4915112345679`"), "{out}");
    assert!(dir.path().join("cli.db").exists(), "the SQLite store is created");

    // Unquoted words are joined, as a shell user would expect.
    let (code, out, _) = run(dir.path(), &["exec", "invite", "sales"]);
    assert_eq!((code, out.lines().next().unwrap()), (0, "Invite link for Sales Team"));

    let (code, out, _) = run(dir.path(), &["exec", "add sales abc"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("1 number is not valid; nothing was sent"), "{out}");

    let (code, out, _) = run(
        dir.path(),
        &["exec", "--as", "slack:user:U9", "--channel", "slack:C1", "groups"],
    );
    assert_eq!(
        (code, out.as_str()),
        (1, "You may not run `groups` (no role is bound to you; ask an admin)\n")
    );

    let (code, _, err) = run(dir.path(), &["exec", "--as", "slack:U9", "whoami"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("waops: --as: malformed principal `slack:U9`"), "{err}");
}

#[test]
fn check_config_names_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[permissions.bindings]\nops = [\"console\"]\n").unwrap();
    let (code, _, err) = run(dir.path(), &["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "waops: configuration error: {}: permissions.bindings.ops: unknown role `ops` (roles: admin)\n",
            bad.display()
        )
    );

    std::fs::write(&bad, "[server]\nshutdown_grace = 5\n").unwrap();
    let (code, _, err) = run(dir.path(), &["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(
        (code, err),
        (
            2,
            format!(
                "waops: configuration error: {}: server.shutdown_grace: unknown key\n",
                bad.display()
            )
        )
    );

    let (code, _, err) = waops_env(
        dir.path(),
        &[("WAOPS__DIGESTS__MIN_EVERY", "5 minutes")],
        &["check-config"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("environment: digests.min_every: `5 minutes` is not a duration"),
        "{err}"
    );

    let (code, out, _) = run(dir.path(), &["check-config"]);
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "config ok: provider sandbox, store sqlite, 1 roles, slack off, discord off\n"
        )
    );

    // A bad config stops exec too, with exit code 2.
    let (code, _, _) = waops_env(dir.path(), &[("WAOPS_CONFIG", "/nonexistent.toml")], &["exec", "help"]);
    assert_eq!(code, 2);
}

fn waops_env(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = waops(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output { status, stdout, stderr } = cmd.args(args).output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn migrate_creates_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = run(dir.path(), &["migrate"]);
    let known = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!((code, out), (0, format!("store migrated ({known} migrations known)\n")));
    assert!(dir.path().join("cli.db").exists());
}

#[test]
fn serve_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port, lines, seen) = serve(dir.path(), &[]);
    let serving = seen.last().expect("serving line");
    let log: serde_json::Value = serde_json::from_str(serving).expect("JSON logs");
    assert_eq!(log["accounts"], "default (sandbox)");

    let body = http_get(port, "/healthz");
    assert!(body.starts_with("HTTP/1.1 200") && body.ends_with("ok\n"), "{body}");
    assert!(body.to_lowercase().contains("x-request-id:"), "{body}");

    let (code, _, _) = waops_env(
        dir.path(),
        &[("WAOPS__SERVER__BIND", &format!("0.0.0.0:{port}"))],
        &["healthcheck"],
    );
    assert_eq!(code, 0, "the container HEALTHCHECK command sees a healthy server");

    stop(child);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");

    let (code, _, err) = waops_env(
        dir.path(),
        &[("WAOPS__SERVER__BIND", &format!("0.0.0.0:{port}"))],
        &["healthcheck"],
    );
    assert_eq!(code, 1, "nothing listens any more");
    assert!(err.starts_with("waops: unhealthy: 127.0.0.1:"), "{err}");
}

type LogLines = std::io::Lines<BufReader<std::process::ChildStderr>>;

/// Starts `waops serve` on a free port with JSON logs and waits for its
/// "serving" line (rather than sleeping); returns the lines logged so far
/// (the last is that one) and the rest to come.
fn serve(dir: &std::path::Path, env: &[(&str, &str)]) -> (Running, u16, LogLines, Vec<String>) {
    serve_command(waops(dir), env)
}

/// `serve` under this open-file limit (soft, hard).
fn serve_limited(
    dir: &std::path::Path,
    soft: u64,
    hard: u64,
    env: &[(&str, &str)],
) -> (Running, u16, LogLines, Vec<String>) {
    let mut cmd = waops(dir);
    open_files(&mut cmd, soft, hard);
    serve_command(cmd, env)
}

/// `serve`, from a command already set up.
fn serve_command(mut cmd: Command, env: &[(&str, &str)]) -> (Running, u16, LogLines, Vec<String>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cmd.args(["serve"])
        .env("WAOPS__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("WAOPS__LOG__FORMAT", "json")
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Running(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        let serving = line.contains("waops serving");
        seen.push(line);
        if serving {
            return (child, port, lines, seen);
        }
    }
    let status = child.0.wait();
    panic!("waops serve ended ({status:?}) before serving: {seen:#?}");
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A collector gets one JSON object per line, and every line written while a
/// request is handled carries that request's id (the caller's, when it sent
/// one); the signing secret appears on none of them.
#[test]
fn json_logs_carry_the_request_id_and_no_secret() {
    const SECRET: &str = "log-test-signing-secret";
    let dir = tempfile::tempdir().unwrap();
    let (child, port, lines, mut seen) = serve(dir.path(), &[("WAOPS__SLACK__SIGNING_SECRET", SECRET)]);

    let body = "team_id=T1&user_id=UNOBODY&channel_id=C1&command=%2Fwa&text=whoami&trigger_id=trig-log-1&response_url=https%3A%2F%2Fhooks.slack.com%2Fr";
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let signature = waops::adapters::slack::verify::sign(&waops::settings::Secret::new(SECRET), &ts, body.as_bytes());
    let response = http_post(
        port,
        "/slack/commands",
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-slack-request-timestamp", &ts),
            ("x-slack-signature", &signature),
            ("x-request-id", "trace-me-42"),
        ],
        body,
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("UNOBODY"), "whoami answered: {response}");

    stop(child);
    seen.extend(lines.map_while(Result::ok));

    let logs: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished = logs
        .iter()
        .find(|l| l["message"] == "command finished")
        .unwrap_or_else(|| panic!("no 'command finished' line: {seen:#?}"));
    assert_eq!(finished["span"]["request_id"], "trace-me-42", "{finished}");
    assert_eq!(finished["outcome"], "ok", "{finished}");
    assert!(seen.iter().all(|l| !l.contains(SECRET)), "{seen:#?}");
}

/// A Periskope account at an address nobody listens on: /readyz answers 503.
const UNREACHABLE_PROVIDER: [(&str, &str); 4] = [
    ("WAOPS__PROVIDER__KIND", "periskope"),
    ("WAOPS__PROVIDER__BASE_URL", "http://127.0.0.1:9"),
    ("WAOPS__PROVIDER__TOKEN", "t"),
    ("WAOPS__PROVIDER__PHONE", "1"),
];

/// A 5xx answer is logged at error, inside the request's span (its id is the
/// one the response carries).
#[test]
fn a_server_error_is_logged_with_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port, lines, mut seen) = serve(dir.path(), &UNREACHABLE_PROVIDER);
    let response = http_get(port, "/readyz");
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    let id = response
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .unwrap_or_else(|| panic!("no request id: {response}"))
        .trim()
        .to_string();
    stop(child);
    seen.extend(lines.map_while(Result::ok));
    let failed = logged(&seen, "response failed");
    assert_eq!(failed["level"], "ERROR", "{failed}");
    assert_eq!(failed["status"], 503, "{failed}");
    assert_eq!(failed["span"]["request_id"], id, "{failed}");
    assert_eq!(failed["span"]["route"], "/readyz", "{failed}");
}

/// Log lines name a request's route, not its path: a webhook's path holds
/// its secret, and a refused one is logged.
#[test]
fn a_webhook_path_secret_is_not_logged() {
    const PATH_SECRET: &str = "whsec-near-miss-4711";
    let dir = tempfile::tempdir().unwrap();
    let env = [
        &UNREACHABLE_PROVIDER[..],
        &[("WAOPS__PROVIDER__WEBHOOK_SECRET", "whsec-configured")],
    ]
    .concat();
    let (child, port, lines, mut seen) = serve(dir.path(), &env);
    let response = http_post(
        port,
        &format!("/webhooks/periskope/{PATH_SECRET}"),
        &[("content-type", "application/json")],
        "{}",
    );
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    stop(child);
    seen.extend(lines.map_while(Result::ok));
    let refused = logged(&seen, "webhook refused: bad signature or secret");
    assert_eq!(refused["span"]["route"], "/webhooks/{provider}/{secret}", "{refused}");
    assert!(seen.iter().all(|l| !l.contains(PATH_SECRET)), "{seen:#?}");
}

fn http_post(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n").unwrap();
    for (name, value) in headers {
        write!(s, "{name}: {value}\r\n").unwrap();
    }
    write!(s, "content-length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Starts the child with this open-file limit (soft, hard).
fn open_files(cmd: &mut Command, soft: u64, hard: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs between fork and exec, and only calls setrlimit, which is
    // async-signal-safe and touches no memory of the parent's.
    unsafe {
        cmd.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard));
    }
    cmd
}

/// The JSON log line whose message is `message`.
fn logged(seen: &[String], message: &str) -> serde_json::Value {
    seen.iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no '{message}' line: {seen:#?}"))
}

/// A server child that a failing test does not leave running (it would hold
/// the test's output open, and the test run would never end).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGTERM, and a graceful exit (code 0).
fn stop(running: Running) {
    let killed = Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut running = running;
    assert_eq!(running.0.wait().unwrap().code(), Some(0), "graceful exit on SIGTERM");
}

/// More clients than `server.max_connections` at once, under a low open-file
/// limit: the extra ones wait in the backlog, and the store still gets the
/// files it opens for them (without the cap, SQLite's new connections fail and
/// /readyz answers 503).
#[test]
fn a_flood_of_connections_leaves_the_store_its_files() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (child, port, _, _) = serve_limited(dir.path(), 256, 256, &[("WAOPS__SERVER__MAX_CONNECTIONS", "100")]);
    let mut clients: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    for client in &mut clients {
        client
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        write!(
            client,
            "GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
    }
    // Read in order: each answered connection closes and lets a waiting one in.
    let answers: Vec<String> = clients
        .into_iter()
        .map(|mut client| {
            let mut out = String::new();
            client.read_to_string(&mut out).unwrap();
            out
        })
        .collect();
    let not_ready: Vec<&String> = answers.iter().filter(|a| !a.ends_with("\r\n\r\nready\n")).collect();
    assert!(
        not_ready.is_empty(),
        "{} of 300 not ready: {:?}",
        not_ready.len(),
        not_ready.first()
    );
    stop(child);
}

/// The log reader going away (stderr a closed pipe) costs the logs, not the
/// service: requests are still answered and SIGTERM still stops it cleanly.
#[test]
fn serve_keeps_serving_when_its_log_pipe_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (child, port, lines, _) = serve(dir.path(), &[]);
    drop(lines);
    for _ in 0..3 {
        let body = http_get(port, "/readyz");
        assert!(body.starts_with("HTTP/1.1 200") && body.ends_with("ready\n"), "{body}");
    }
    stop(child);
}

/// Short connection deadlines for the slow-client tests: 1 s for a head or a
/// body, 3 s idle between requests.
const SHORT_DEADLINES: [(&str, &str); 3] = [
    ("WAOPS__SERVER__HEADER_TIMEOUT_S", "1"),
    ("WAOPS__SERVER__BODY_TIMEOUT_S", "1"),
    ("WAOPS__SERVER__IDLE_TIMEOUT_S", "3"),
];

/// Reads until the server closes the connection (or 10 s pass); returns what
/// it sent and how long that took.
fn read_until_closed(s: &mut std::net::TcpStream) -> (String, std::time::Duration) {
    use std::io::Read;
    let started = std::time::Instant::now();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "still open after {:?} ({e}): {}",
                started.elapsed(),
                String::from_utf8_lossy(&out)
            ),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), started.elapsed())
}

/// Clients that connect and send nothing, or trickle a head a byte at a time,
/// are closed after the header timeout, so more of them than
/// `server.max_connections` cannot keep /healthz from being answered.
#[test]
fn silent_and_trickling_clients_are_closed_after_the_header_timeout() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let env = [&SHORT_DEADLINES[..], &[("WAOPS__SERVER__MAX_CONNECTIONS", "20")]].concat();
    let (child, port, _, _) = serve(dir.path(), &env);
    let mut silent: Vec<std::net::TcpStream> = (0..30)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let mut trickling = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let trickler = std::thread::spawn(move || {
        let started = std::time::Instant::now();
        write!(trickling, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
        // One byte every 100 ms: each arrives well within any per-read timer.
        while trickling.write_all(b"x").is_ok() && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        started.elapsed()
    });
    // Behind 30 silent clients and a trickling one, with 20 slots.
    let answer = http_get(port, "/healthz");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "{answer}"
    );
    for client in &mut silent[..20] {
        let (sent, _) = read_until_closed(client);
        assert!(!sent.contains("200 OK"), "a silent client was answered: {sent}");
    }
    let trickled_for = trickler.join().unwrap();
    assert!(
        trickled_for < std::time::Duration::from_secs(10),
        "a head trickled for {trickled_for:?} was not cut off"
    );
    stop(child);
}

/// A body that has not all arrived within the body timeout gets 408 and the
/// connection closes; the command it would have carried never runs.
#[test]
fn a_slow_body_gets_408() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let env = [&SHORT_DEADLINES[..], &[("WAOPS__SLACK__SIGNING_SECRET", "s")]].concat();
    let (child, port, _, _) = serve(dir.path(), &env);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /slack/commands HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nteam_id=T1"
    )
    .unwrap();
    let (answer, _) = read_until_closed(&mut s);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    stop(child);
}

/// A kept-alive connection may sit idle longer than the header timeout (the
/// next request is answered), and is closed after the idle timeout.
#[test]
fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (child, port, _, _) = serve(dir.path(), &SHORT_DEADLINES);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let ask = |s: &mut std::net::TcpStream| {
        write!(s, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok\n") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&answer));
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    };
    ask(&mut s);
    // Idle for 1.5 header timeouts: still open.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    ask(&mut s);
    let (sent, idle) = read_until_closed(&mut s);
    assert_eq!(sent, "", "nothing more is sent");
    assert!(
        idle >= std::time::Duration::from_millis(2500),
        "closed after {idle:?} idle, before the 3 s idle timeout"
    );
    stop(child);
}
