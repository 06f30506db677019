//! The store on a real SQLite file and, when WAOPS_TEST_POSTGRES_URL is set
//! (scripts/test sets it), on a real PostgreSQL server: the same checks on both.

mod common;

use jiff::Timestamp;
use waops::store::{AuditRecord, Backend, Store, Subscription};

fn audit(request_id: &str, decision: &str, at: Timestamp) -> AuditRecord {
    AuditRecord {
        at,
        request_id: request_id.into(),
        platform: "slack".into(),
        principal: "slack:user:U1".into(),
        channel: "slack:C1".into(),
        command: "add".into(),
        group_id: Some("120363041234567890@g.us".into()),
        numbers_count: 3,
        decision: decision.to_string().into(),
        rule: "role sales, group sales".into(),
        outcome: "ok".into(),
        provider_trace_id: None,
        approver: None,
        account: Some("de".into()),
    }
}

fn subscription(id: &str, group: &str, every_s: i64) -> Subscription {
    Subscription {
        id: id.into(),
        platform: "slack".into(),
        channel: "slack:C1".into(),
        group_ref: group.into(),
        group_name: format!("name of {group}"),
        every_s,
        at_time: Some("09:00".into()),
        tz: "Europe/Berlin".into(),
        created_by: "slack:user:U1".into(),
        created_at: common::NOW.parse().unwrap(),
        live: false,
    }
}

async fn exercise(store: Store) {
    // Migrations are idempotent: running them again changes nothing.
    store.migrate().await.unwrap();
    store.ping().await.unwrap();

    let now: Timestamp = common::NOW.parse().unwrap();
    let mut refused = audit("r2", "refused", now + jiff::SignedDuration::from_secs(1));
    refused.group_id = None;
    refused.provider_trace_id = Some("trace-1".into());
    // Two transactions, as two writer batches would be.
    store.record_audits(&[audit("r1", "allowed", now)]).await.unwrap();
    store.record_audits(std::slice::from_ref(&refused)).await.unwrap();
    let rows = store.recent_audit(10).await.unwrap();
    assert_eq!(rows, [refused.clone(), audit("r1", "allowed", now)]);
    assert_eq!(store.audit_for_request("r2").await.unwrap(), [refused]);

    assert!(store
        .upsert_subscription(&subscription("s1", "120363041234567890@g.us", 86_400))
        .await
        .unwrap());
    // The first window runs from the subscription to 09:00 Berlin (08:00 UTC in winter).
    let cursor = store.digest_cursor("s1").await.unwrap().unwrap();
    assert_eq!(cursor, (now, "2026-11-25T08:00:00Z".parse().unwrap(), None));
    assert!(store
        .upsert_subscription(&subscription("s2", "*", 3_600))
        .await
        .unwrap());
    // Same channel and group: updated in place, keeps its id and its unposted
    // window's start; the window now ends at the new schedule's next boundary.
    let mut changed = subscription("s3", "120363041234567890@g.us", 7_200);
    changed.at_time = None;
    changed.created_at = now + jiff::SignedDuration::from_mins(30);
    assert!(!store.upsert_subscription(&changed).await.unwrap());
    let cursor = store.digest_cursor("s1").await.unwrap().unwrap();
    assert_eq!(cursor, (now, "2026-11-24T14:00:00Z".parse().unwrap(), None));
    let list = store.channel_subscriptions("slack", "slack:C1").await.unwrap();
    assert_eq!(list.len(), 2);
    let first = list.iter().find(|s| s.group_ref != "*").unwrap();
    assert_eq!((first.id.as_str(), first.every_s), ("s1", 7_200));
    assert_eq!(
        first,
        &Subscription {
            every_s: 7_200,
            at_time: None,
            ..subscription("s1", "120363041234567890@g.us", 0)
        }
    );
    assert!(store
        .channel_subscriptions("slack", "slack:C2")
        .await
        .unwrap()
        .is_empty());

    assert_eq!(
        store
            .delete_subscriptions("slack", "slack:C1", Some("*"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .delete_subscriptions("slack", "slack:C1", Some("*"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.delete_subscriptions("slack", "slack:C1", None).await.unwrap(), 1);

    // Confirmations: taken once, only by their principal, only before they expire.
    let confirmation = waops::store::Confirmation {
        id: "c1".into(),
        platform: "slack".into(),
        principal: "slack:user:U1".into(),
        channel: "slack:C1".into(),
        command_text: "add sales +4915112345678 --yes".into(),
        expires_at: now + jiff::SignedDuration::from_mins(15),
    };
    store.create_confirmation(&confirmation, now).await.unwrap();
    let late = waops::store::Confirmation {
        id: "c2".into(),
        ..confirmation.clone()
    };
    store.create_confirmation(&late, now).await.unwrap();
    assert_eq!(
        store.consume_confirmation("c1", "slack:user:U2", now).await.unwrap(),
        None,
        "another user"
    );
    assert_eq!(
        store.consume_confirmation("c1", "slack:user:U1", now).await.unwrap(),
        Some(confirmation.clone())
    );
    assert_eq!(
        store.consume_confirmation("c1", "slack:user:U1", now).await.unwrap(),
        None,
        "a second click"
    );
    let after = now + jiff::SignedDuration::from_mins(15);
    assert_eq!(
        store.consume_confirmation("c2", "slack:user:U1", after).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.consume_confirmation("nope", "slack:user:U1", now).await.unwrap(),
        None
    );
    store.close().await;
}

#[tokio::test]
async fn sqlite_file_is_created_and_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested-name.db");
    let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    assert!(path.exists(), "the SQLite file is created when missing");
    assert_eq!(store.backend(), Backend::Sqlite);
    let known = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .count();
    assert_eq!(store.migrate().await.unwrap(), known);
    exercise(store).await;
    // Data survives reopening.
    let store = Store::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    assert_eq!(store.recent_audit(10).await.unwrap().len(), 2);
}

#[tokio::test]
async fn sqlite_memory_works() {
    let store = Store::connect("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    exercise(store).await;
}

#[tokio::test]
async fn postgres_works() {
    let Some(url) = common::fresh_postgres().await else {
        eprintln!("WAOPS_TEST_POSTGRES_URL is not set: PostgreSQL store test skipped (scripts/test sets it)");
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    store.migrate().await.unwrap();
    exercise(store).await;
}

#[tokio::test]
async fn commands_audit_to_postgres() {
    let Some(url) = common::fresh_postgres().await else {
        return;
    };
    let app = common::TestApp::with_store("", &url, tempfile::tempdir().unwrap()).await;
    let (reply, id) = app.run_as(&["console"], "local", "subscribe sales --every 1d").await;
    assert_eq!(reply.status, waops::core::Status::Ok, "{}", reply.plain());
    assert_eq!(app.audit(&id).await.outcome, "ok");
    assert!(app.text("subscriptions").await.contains("Sales Team  every 1d (UTC)"));
}

#[tokio::test]
async fn unreachable_store_is_a_clear_error() {
    let err = Store::connect("postgres://nobody@127.0.0.1:1/none").await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.starts_with("cannot open the Postgres store"), "{text}");
}

/// Rows older than `store.retention` are deleted by whichever replica takes the
/// purge's lease; the other finds it taken, and nobody purges again within
/// the lease.
async fn retention_purges_once_across_replicas(a: Store, b: Store) {
    use std::time::Duration;
    use waops::store::retention::Purged;
    let now: Timestamp = common::NOW.parse().unwrap();
    let days = |n: i64| jiff::SignedDuration::from_hours(24 * n);
    a.record_audits(&[
        audit("old", "allowed", now - days(400)),
        audit("new", "allowed", now - days(1)),
    ])
    .await
    .unwrap();
    // Kept by arrival: an old event that arrived lately stays.
    for (id, at, received_at) in [
        ("e-old", now - days(100), now - days(100)),
        ("e-late", now - days(100), now - days(1)),
        ("e-new", now - days(1), now - days(1)),
    ] {
        a.record_event(&waops::store::JournalEntry {
            provider: "wuts".into(),
            event_id: id.into(),
            group_id: "120363041234567890@g.us".into(),
            kind: "joined".into(),
            actor: None,
            subjects: vec!["4915112345678@c.us".into()],
            detail: None,
            at,
            received_at,
        })
        .await
        .unwrap();
    }
    for (id, expires_at) in [
        ("c-old", now - days(2)),
        ("c-new", now + jiff::SignedDuration::from_mins(10)),
    ] {
        let c = waops::store::Confirmation {
            id: id.into(),
            platform: "slack".into(),
            principal: "slack:user:U1".into(),
            channel: "slack:C1".into(),
            command_text: "add sales +4915112345678 --yes".into(),
            expires_at,
        };
        a.create_confirmation(&c, expires_at - jiff::SignedDuration::from_mins(15))
            .await
            .unwrap();
    }
    let retention = waops::settings::RetentionSettings {
        audit: Duration::from_secs(365 * 86_400),
        journal: Duration::from_secs(90 * 86_400),
        confirmations: Duration::from_secs(86_400),
    };
    let hour = Duration::from_secs(3600);
    let (first, second) = tokio::join!(
        a.purge_old("replica-a", now, hour, &retention),
        b.purge_old("replica-b", now, hour, &retention)
    );
    let mut runs: Vec<Purged> = [first.unwrap(), second.unwrap()].into_iter().flatten().collect();
    assert_eq!(
        runs.pop(),
        Some(Purged {
            audit: 1,
            journal: 1,
            confirmations: 1
        })
    );
    assert!(runs.is_empty(), "one replica purged, the other found the lease taken");
    let audit_left: Vec<String> = b
        .recent_audit(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(audit_left, ["new"]);
    let events = b
        .group_events("wuts", "120363041234567890@g.us", Timestamp::MIN)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
        ["e-new", "e-late"]
    );
    assert!(b
        .consume_confirmation("c-new", "slack:user:U1", now)
        .await
        .unwrap()
        .is_some());
    // Within the hour nobody purges again; after it, the next run finds nothing old.
    let later = now + jiff::SignedDuration::from_mins(59);
    assert_eq!(b.purge_old("replica-b", later, hour, &retention).await.unwrap(), None);
    let after = now + jiff::SignedDuration::from_mins(61);
    assert_eq!(
        b.purge_old("replica-b", after, hour, &retention).await.unwrap(),
        Some(Purged::default())
    );
}

#[tokio::test]
async fn retention_on_a_shared_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_stores(&format!("sqlite://{}", dir.path().join("shared.db").display())).await;
    retention_purges_once_across_replicas(a, b).await;
}

#[tokio::test]
async fn retention_on_a_shared_postgres() {
    if let Some(url) = common::fresh_postgres().await {
        let (a, b) = two_stores(&url).await;
        retention_purges_once_across_replicas(a, b).await;
    }
}

/// Approval requests: never by the requester, once, and not after they expire;
/// two replicas deciding at the same moment: exactly one succeeds.
async fn approvals_are_decided_once(a: Store, b: Store) {
    use waops::store::approvals::Approval;
    let now: Timestamp = common::NOW.parse().unwrap();
    let request = |id: &str| Approval {
        id: id.into(),
        platform: "slack".into(),
        channel: "slack:C1".into(),
        requester: "slack:user:U1".into(),
        requester_principals: vec!["slack:user:U1".into(), "slack:usergroup:S1".into()],
        command_text: "add sales +4915112345678 --yes".into(),
        command: "add".into(),
        group_id: Some("120363041234567890@g.us".into()),
        expires_at: now + jiff::SignedDuration::from_hours(1),
    };
    a.create_approval(&request("r1"), now).await.unwrap();
    assert_eq!(b.approval("r1").await.unwrap(), Some(request("r1")));
    assert!(
        !b.decide_approval("r1", "slack:user:U1", "approved", now).await.unwrap(),
        "not the requester"
    );
    let (x, y) = tokio::join!(
        a.decide_approval("r1", "slack:user:U2", "approved", now),
        b.decide_approval("r1", "slack:user:U3", "approved", now)
    );
    assert_eq!(
        [x.unwrap(), y.unwrap()].iter().filter(|d| **d).count(),
        1,
        "decided once"
    );
    assert!(!a.decide_approval("r1", "slack:user:U4", "rejected", now).await.unwrap());
    a.create_approval(&request("r2"), now).await.unwrap();
    let late = now + jiff::SignedDuration::from_mins(61);
    assert!(
        !b.decide_approval("r2", "slack:user:U2", "approved", late)
            .await
            .unwrap(),
        "expired"
    );
}

#[tokio::test]
async fn approvals_on_a_shared_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_stores(&format!("sqlite://{}", dir.path().join("shared.db").display())).await;
    approvals_are_decided_once(a, b).await;
}

#[tokio::test]
async fn approvals_on_a_shared_postgres() {
    if let Some(url) = common::fresh_postgres().await {
        let (a, b) = two_stores(&url).await;
        approvals_are_decided_once(a, b).await;
    }
}

/// Two stores on one database, as two replicas have (migrated once).
async fn two_stores(url: &str) -> (Store, Store) {
    let a = Store::connect(url).await.unwrap();
    a.migrate().await.unwrap();
    (a, Store::connect(url).await.unwrap())
}
