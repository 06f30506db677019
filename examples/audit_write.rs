//! How fast the audit writer's store call is: `rows` audit rows written with
//! `Store::record_audits_by` in batches of 256 (the writer's batch), for each
//! rows-per-INSERT choice, on a SQLite file and (with WAOPS_BENCH_POSTGRES_URL)
//! on PostgreSQL. Prints rows per second; the median of `runs`.
//!
//! Run: `cargo run --release --example audit_write -- [rows] [runs]` (defaults 20000 5).

use std::time::Instant;

use waops::store::{AuditRecord, Store};

fn row(i: usize) -> AuditRecord {
    AuditRecord {
        at: jiff::Timestamp::now(),
        request_id: format!("bench-{i}"),
        platform: "slack".into(),
        principal: "slack:user:U1".into(),
        channel: "slack:C1".into(),
        command: "add".into(),
        group_id: Some("120363041234567890@g.us".into()),
        numbers_count: 1,
        decision: "not_run".into(),
        rule: String::new(),
        outcome: "busy".into(),
        provider_trace_id: None,
        approver: None,
        account: None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let mut stores = vec![(
        "SQLite (file, WAL)",
        Store::connect(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?,
    )];
    if let Ok(url) = std::env::var("WAOPS_BENCH_POSTGRES_URL") {
        stores.push(("PostgreSQL", Store::connect(&url).await?));
    }
    for (_, store) in &stores {
        store.migrate().await?;
    }
    let batch: Vec<AuditRecord> = (0..256).map(row).collect();
    println!("| store | rows per INSERT | rows/s (median of {runs}) |");
    println!("|---|---|---|");
    for (name, store) in &stores {
        for per_insert in [1, 8, 16, 32, 64, 256] {
            let mut rates = Vec::new();
            for _ in 0..runs {
                let started = Instant::now();
                for _ in 0..rows.div_ceil(batch.len()) {
                    store.record_audits_by(&batch, per_insert).await?;
                }
                rates.push(rows as f64 / started.elapsed().as_secs_f64());
            }
            rates.sort_by(f64::total_cmp);
            println!("| {name} | {per_insert} | {:.0} |", rates[rates.len() / 2]);
        }
    }
    Ok(())
}
