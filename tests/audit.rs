//! The batch audit writer on a real SQLite file (and PostgreSQL when set):
//! rows from many concurrent commands all arrive, and `flush` waits for them.

mod common;

use std::collections::BTreeSet;

use waops::store::AuditRecord;

fn row(i: usize) -> AuditRecord {
    AuditRecord {
        at: common::NOW.parse().unwrap(),
        request_id: format!("req-{i:04}"),
        platform: "slack".into(),
        principal: "slack:user:U1".into(),
        channel: "slack:C1".into(),
        command: "add".into(),
        // Both NULL and set optional columns go through the multi-row insert.
        group_id: i.is_multiple_of(2).then(|| "120363041234567890@g.us".into()),
        numbers_count: i as i64,
        decision: "allowed".into(),
        rule: "role admin".into(),
        outcome: "ok".into(),
        provider_trace_id: i.is_multiple_of(3).then(|| format!("trace-{i}")),
        approver: None,
        account: None,
    }
}

async fn every_row_arrives(app: common::TestApp) {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..50 {
        let audit = app.ctx.audit.clone();
        tasks.spawn(async move {
            for i in 0..100 {
                audit.record(row(t * 100 + i)).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    app.ctx.audit.flush().await;
    let rows = app.ctx.store.recent_audit(10_000).await.unwrap();
    let ids: BTreeSet<String> = rows.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!((rows.len(), ids.len()), (5000, 5000));
    for stored in &rows {
        let i: usize = stored.request_id["req-".len()..].parse().unwrap();
        assert_eq!(stored, &row(i), "every column as written");
    }
}

#[tokio::test]
async fn five_thousand_concurrent_rows_all_arrive_on_sqlite() {
    every_row_arrives(common::TestApp::new().await).await;
}

#[tokio::test]
async fn five_thousand_concurrent_rows_all_arrive_on_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    every_row_arrives(common::TestApp::with_store("", &url, dir).await).await;
}

#[tokio::test]
async fn closing_the_context_writes_what_is_waiting() {
    let app = common::TestApp::new().await;
    let url = format!("sqlite://{}", app.dir.path().join("waops.db").display());
    for i in 0..300 {
        app.ctx.audit.record(row(i)).await;
    }
    app.ctx.close().await;
    let store = waops::store::Store::connect(&url).await.unwrap();
    assert_eq!(store.recent_audit(1000).await.unwrap().len(), 300);
}

/// The ack path's `record_now` never waits: with the store locked by another
/// writer, rows beyond what the channel holds go to the log, counted; after the
/// lock goes, every row is either stored or logged, none dropped.
#[tokio::test]
async fn a_full_writer_logs_ack_path_rows_instead_of_waiting() {
    use sqlx::Connection;
    let metrics = waops::telemetry::metrics();
    let logged_before = logged(metrics);
    let app = common::TestApp::new().await;
    let url = format!("sqlite://{}", app.dir.path().join("waops.db").display());
    let mut locker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut locker).await.unwrap();

    let total = waops::audit::CAPACITY + 1000;
    for i in 0..total {
        app.ctx.audit.record_now(row(i));
    }
    let logged_now = logged(metrics) - logged_before;
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    app.ctx.audit.flush().await;

    let stored = app.ctx.store.recent_audit(100_000).await.unwrap().len();
    assert!(
        logged_now >= 1000 - 256,
        "one batch may be out of the channel: {logged_now} logged"
    );
    assert_eq!(stored + logged_now, total, "{stored} stored, {logged_now} logged");
}

fn logged(metrics: &metrics_exporter_prometheus::PrometheusHandle) -> usize {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("waops_audit_rows_logged_total "))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as usize)
}
