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
        group_id: None,
        numbers_count: i as i64,
        decision: "allowed".into(),
        rule: "role admin".into(),
        outcome: "ok".into(),
        provider_trace_id: None,
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
    assert_eq!(rows.iter().find(|r| r.request_id == "req-4321").unwrap(), &row(4321));
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
