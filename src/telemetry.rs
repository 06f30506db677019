//! Logs (tracing) and metrics (Prometheus text via the `metrics` crate).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Starts logging to stderr (stdout stays for command output). Safe to call twice.
pub fn init_logs(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed write is otherwise reported with eprintln!, which panics
        // when stderr is a closed pipe (a log shipper gone): every later log
        // line would then panic the task writing it, an ack among them.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use (tests build many apps in one process).
pub fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); then ours only renders zeros.
        let _ = metrics::set_global_recorder(recorder);
        // Histograms collect raw samples until upkeep folds them into buckets:
        // without it every request's latency stays in memory for good.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("waops-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                upkeep.run_upkeep();
            });
        handle
    })
}

/// Registers the series that have no labels to wait for, so `/metrics` shows
/// them (at 0) from the start and alerts on them have something to read. The
/// values are left as they are (tests run several servers in one process).
pub fn register_series() {
    metrics::counter!("waops_busy_refusals_total").increment(0);
    metrics::gauge!("waops_followups_in_flight").increment(0.0);
    metrics::gauge!("waops_audit_queue_depth").increment(0.0);
    metrics::gauge!("waops_digest_lag_seconds").increment(0.0);
    metrics::counter!("waops_audit_rows_lost_total").increment(0);
    for outcome in ["posted", "empty", "failed"] {
        metrics::counter!("waops_digests_total", "outcome" => outcome).increment(0);
    }
}

/// Counts one finished command.
pub fn command_finished(command: &str, outcome: &str, seconds: f64) {
    let outcome = outcome.split(':').next().unwrap_or(outcome).to_string();
    metrics::counter!("waops_commands_total", "command" => command.to_string(), "outcome" => outcome).increment(1);
    metrics::histogram!("waops_command_duration_seconds", "command" => command.to_string()).record(seconds);
}
