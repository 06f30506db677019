//! Periskope client against a wiremock fake: exact requests, every documented
//! response, errors, retries and timeouts.

mod common;

use std::time::Duration;

use common::{fixture, provider, TOKEN};
use serde_json::json;
use waops::group_ref::GroupId;
use waops::invite_link;
use waops::phone::E164;
use waops::providers::{AddOutcome, JoinOutcome, Party, ProviderErrorKind};
use wiremock::matchers::{body_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GROUP: &str = "120363371308389685@g.us";

async fn fake() -> (MockServer, std::sync::Arc<dyn waops::providers::Provider>) {
    let server = MockServer::start().await;
    let p = provider("periskope", &format!("{}/v1", server.uri()), "");
    (server, p)
}

fn authed(m: wiremock::MockBuilder) -> wiremock::MockBuilder {
    m.and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("x-phone", "919876543210"))
}

fn gid(s: &str) -> GroupId {
    GroupId::parse(s).unwrap()
}

#[tokio::test]
async fn join_accepts_the_invite_code() {
    let (server, p) = fake().await;
    authed(Mock::given(method("POST")).and(path("/v1/chats/accept-invite")))
        .and(body_json(json!({"invite_code": "EUKdz8Sdy9T2UWPnOKGkx"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/accept_invite.json")))
        .expect(1)
        .mount(&server)
        .await;
    let outcome = p
        .join(&invite_link::parse("https://chat.whatsapp.com/EUKdz8Sdy9T2UWPnOKGkx").unwrap())
        .await
        .unwrap();
    match outcome {
        JoinOutcome::Joined(g) => assert_eq!(
            (g.id.as_str(), g.name.as_str()),
            ("120363420492168352@g.us", "Test South Donald")
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn add_sends_digits_and_maps_each_number() {
    let server = MockServer::start().await;
    let p = provider("periskope", &format!("{}/v1", server.uri()), "force_add = true\n");
    authed(Mock::given(method("POST")).and(path(format!("/v1/chats/{GROUP}/add"))))
        .and(body_json(
            json!({"participants": ["919537851844", "4915112345678"], "force_add_participants": true}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "919537851844@c.us": {"is_success": true, "message": "Invite sent to participant"},
            "4915112345678@c.us": {"is_success": true, "message": "Participant added"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let numbers = [
        E164::from_trusted("+919537851844").unwrap(),
        E164::from_trusted("+4915112345678").unwrap(),
    ];
    let results = p.add(&gid(GROUP), &numbers).await.unwrap();
    let outcomes: Vec<_> = results.into_iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [AddOutcome::InviteSent, AddOutcome::Added]);
}

#[tokio::test]
async fn add_uses_the_seed_fixture() {
    let (server, p) = fake().await;
    authed(Mock::given(method("POST")).and(path(format!("/v1/chats/{GROUP}/add"))))
        .and(body_json(
            json!({"participants": ["919537851844"], "force_add_participants": false}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/add_participant.json")))
        .mount(&server)
        .await;
    let results = p
        .add(&gid(GROUP), &[E164::from_trusted("+919537851844").unwrap()])
        .await
        .unwrap();
    assert_eq!(results[0].outcome, AddOutcome::InviteSent);
}

#[tokio::test]
async fn groups_are_paged_to_the_end() {
    let (server, p) = fake().await;
    let chat = |id: &str, name: &str| json!({"chat_id": id, "chat_name": name, "chat_type": "group"});
    authed(Mock::given(method("GET")).and(path("/v1/chats")))
        .and(query_param("chat_type", "group"))
        .and(query_param("offset", "0"))
        .and(query_param("limit", "1000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "chats": [chat("120363000000000001@g.us", "One"), chat("919876543210@c.us", "A person")],
            "count": 3, "from": 1, "to": 2
        })))
        .expect(1)
        .mount(&server)
        .await;
    authed(Mock::given(method("GET")).and(path("/v1/chats")))
        .and(query_param("offset", "2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"chats": [chat("120363000000000003@g.us", "Three")], "count": 3, "from": 3, "to": 3}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let names: Vec<_> = p.list_groups().await.unwrap().into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["One", "Three"]);
}

#[tokio::test]
async fn invite_link_comes_from_the_chat_object() {
    let (server, p) = fake().await;
    authed(Mock::given(method("GET")).and(path(format!("/v1/chats/{GROUP}"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"chat_id": GROUP, "chat_name": "G", "invite_link": "https://chat.whatsapp.com/invite/EUKdz8Sdy9T2UWPnOKGkx"})))
        .mount(&server)
        .await;
    assert_eq!(
        p.invite_code(&gid(GROUP)).await.unwrap().as_str(),
        "EUKdz8Sdy9T2UWPnOKGkx"
    );

    let other = "120363000000000009@g.us";
    authed(Mock::given(method("GET")).and(path(format!("/v1/chats/{other}"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/accept_invite.json")))
        .mount(&server)
        .await;
    assert_eq!(
        p.invite_code(&gid(other)).await.unwrap_err().kind,
        ProviderErrorKind::NotAdmin,
        "invite_link null"
    );
}

#[tokio::test]
async fn history_reads_notifications_newest_first() {
    let (server, p) = fake().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}/notifications")))
        .and(query_param("offset", "0"))
        .and(query_param("limit", "200"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/notifications.json")))
        .expect(2)
        .mount(&server)
        .await;
    let events = p
        .history(
            &gid(GROUP),
            &waops::providers::HistoryQuery::all_since("2025-01-01T00:00:00Z".parse().unwrap()),
        )
        .await
        .unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["removed", "removed", "added", "settings", "settings"]);
    assert_eq!(
        events[0].subjects,
        [Party::Number(E164::from_trusted("+919537851844").unwrap())]
    );
    assert_eq!(
        events[0].actor,
        Some(Party::Number(E164::from_trusted("+918527184400").unwrap()))
    );
    assert_eq!(events[3].detail.as_deref(), Some("all members may add members"));

    let recent = p
        .history(
            &gid(GROUP),
            &waops::providers::HistoryQuery::all_since("2025-01-11T11:52:20Z".parse().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(recent.len(), 2, "events before --since are left out");
}

#[tokio::test]
async fn history_pages_and_drops_repeats() {
    let (server, p) = fake().await;
    let note = |id: &str, ts: &str| json!({"notification_id": id, "author": "918527184400@c.us", "recipientids": ["919537851844@c.us"], "type": "add", "timestamp": ts, "chat_id": GROUP});
    let first: Vec<_> = (0..200)
        .map(|i| note(&format!("n{i}"), "2025-01-11T11:00:00Z"))
        .collect();
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}/notifications")))
        .and(query_param("offset", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"notifications": first, "count": 202})))
        .mount(&server)
        .await;
    // A new notification shifted the offsets: n199 comes again.
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{GROUP}/notifications")))
        .and(query_param("offset", "200"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"notifications": [note("n199", "2025-01-11T11:00:00Z"), note("n200", "2025-01-10T11:00:00Z")], "count": 202})))
        .mount(&server)
        .await;
    let events = p
        .history(
            &gid(GROUP),
            &waops::providers::HistoryQuery::all_since("2025-01-01T00:00:00Z".parse().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 201);
}

#[tokio::test]
async fn status_errors_map_with_trace_ids() {
    let cases = [
        (401, ProviderErrorKind::Auth),
        (403, ProviderErrorKind::Forbidden("not allowed".into())),
        (404, ProviderErrorKind::NotFound),
        (500, ProviderErrorKind::Upstream(500)),
    ];
    for (status, kind) in cases {
        let (server, p) = fake().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_string("not allowed")
                    .insert_header("x-periskope-trace-id", "trace-77"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let err = p.invite_code(&gid(GROUP)).await.unwrap_err();
        assert_eq!(err.kind, kind, "{status}");
        assert_eq!(err.trace_id.as_deref(), Some("trace-77"));
        assert!(!format!("{err:?} {err}").contains(TOKEN));
    }
}

#[tokio::test]
async fn rate_limited_then_success_honours_retry_after() {
    let (server, p) = fake().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/chats/{GROUP}/add")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/add_participant.json")))
        .expect(1)
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let results = p
        .add(&gid(GROUP), &[E164::from_trusted("+919537851844").unwrap()])
        .await
        .unwrap();
    assert_eq!(results[0].outcome, AddOutcome::InviteSent);
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for Retry-After");
}

#[tokio::test]
async fn long_rate_limit_goes_back_to_the_user() {
    let (server, p) = fake().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("x-ratelimit-reset", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let err = p.list_groups().await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::RateLimited(Some(Duration::from_secs(120))));
}

#[tokio::test]
async fn writes_are_retried_only_when_surely_not_done() {
    // 502 on a write might have been done: not repeated.
    let (server, p) = fake().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let err = p
        .add(&gid(GROUP), &[E164::from_trusted("+919537851844").unwrap()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Upstream(502));
    drop(server);

    // 503 means it was not done: repeated up to max_retries (2), then reported.
    let (server, p) = fake().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .expect(3)
        .mount(&server)
        .await;
    let err = p
        .add(&gid(GROUP), &[E164::from_trusted("+919537851844").unwrap()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Upstream(503));
    drop(server);

    // Reads are repeated on 502.
    let (server, p) = fake().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"chats": [], "count": 0})))
        .expect(1)
        .mount(&server)
        .await;
    assert!(p.list_groups().await.unwrap().is_empty());
}

#[tokio::test]
async fn timeouts_are_clear_and_writes_are_not_repeated() {
    let server = MockServer::start().await;
    let p = provider("periskope", &format!("{}/v1", server.uri()), "timeout_ms = 200\n");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(2)))
        .expect(1)
        .mount(&server)
        .await;
    let err = p
        .add(&gid(GROUP), &[E164::from_trusted("+919537851844").unwrap()])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Timeout(true));
}

#[tokio::test]
async fn malformed_json_is_an_error_not_a_panic() {
    let (server, p) = fake().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&server)
        .await;
    assert_eq!(p.list_groups().await.unwrap_err().kind, ProviderErrorKind::Malformed);
}

#[tokio::test]
async fn a_spent_quota_holds_the_next_request_until_reset() {
    let (server, p) = fake().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"chats": [], "count": 0}))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", "1"),
        )
        .expect(2)
        .mount(&server)
        .await;
    p.list_groups().await.unwrap();
    let started = std::time::Instant::now();
    p.list_groups().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited for the reset: {:?}",
        started.elapsed()
    );
}

/// Add outcomes come from whatsapp-web.js's `code` and `isInviteV4Sent` (the
/// SDK's `ChatOperationReturn`), not from the message's wording.
#[tokio::test]
async fn add_outcomes_come_from_codes() {
    let (server, p) = fake().await;
    authed(Mock::given(method("POST")).and(path(format!("/v1/chats/{GROUP}/add"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/add_codes.json")))
        .expect(1)
        .mount(&server)
        .await;
    let numbers: Vec<E164> = (4..=9)
        .map(|i| E164::from_trusted(&format!("+91953785184{i}")).unwrap())
        .collect();
    let outcomes: Vec<_> = p
        .add(&gid(GROUP), &numbers)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            AddOutcome::Added,
            AddOutcome::InviteSent,
            AddOutcome::Failed("The participant can be added by sending private invitation only.".into()),
            AddOutcome::NotOnWhatsApp,
            AddOutcome::AlreadyMember,
            AddOutcome::Failed("The participant can't be added to the group because they recently left it".into()),
        ]
    );
}

/// Invite reset is `POST /chats/{id}/invite` ("generate a new invite link").
#[tokio::test]
async fn invite_reset_generates_a_new_link() {
    let (server, p) = fake().await;
    authed(Mock::given(method("POST")).and(path(format!("/v1/chats/{GROUP}/invite"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/invite_link.json")))
        .expect(1)
        .mount(&server)
        .await;
    assert!(p.capabilities().invite_reset);
    let code = p.reset_invite(&gid(GROUP)).await.unwrap();
    assert_eq!(code.as_str(), "Hn4Qe7Rt2Yu8Io3Pa6Sd");
}

/// The SDK's `notifictions` key, its type names, and null fields: a
/// notification without a type or time is skipped, the rest of the page read.
#[tokio::test]
async fn notifications_in_the_sdk_shape_with_nulls() {
    let (server, p) = fake().await;
    authed(Mock::given(method("GET")).and(path(format!("/v1/chats/{GROUP}/notifications"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/notifications_sdk.json")))
        .mount(&server)
        .await;
    let events = p
        .history(
            &gid(GROUP),
            &waops::providers::HistoryQuery::all_since(jiff::Timestamp::MIN),
        )
        .await
        .unwrap();
    let read: Vec<_> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.detail.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        read,
        [
            ("settings", "changed the description"),
            ("settings", "only admins may send messages"),
            ("settings", "all members may edit group info"),
            ("other", "a group call"),
            ("left", ""),
        ]
    );
}

/// Members come from the chat object (the documented example): roles from
/// `is_admin`/`is_super_admin`, names from `contact_name`, and whether the
/// connected phone (`org_phone`) is an admin.
#[tokio::test]
async fn members_come_from_the_chat_object() {
    let (server, p) = fake().await;
    authed(Mock::given(method("GET")).and(path(format!("/v1/chats/{GROUP}"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("periskope/accept_invite.json")))
        .mount(&server)
        .await;
    let members = p.members(&gid(GROUP)).await.unwrap();
    assert_eq!(
        members.connected_admin,
        Some(false),
        "org_phone 918824248940 is not an admin"
    );
    let roles: Vec<_> = members
        .members
        .iter()
        .map(|m| (m.party.clone(), m.role, m.name.as_deref()))
        .collect();
    assert_eq!(
        roles,
        [
            (
                Party::Number(E164::from_trusted("+918527184400").unwrap()),
                waops::providers::Role::SuperAdmin,
                Some("Support")
            ),
            (
                Party::Number(E164::from_trusted("+918824248940").unwrap()),
                waops::providers::Role::Member,
                Some("Hansal")
            ),
        ]
    );
}

/// Remove, promote and demote: `POST /chats/{id}/<action>` with digits, each
/// number's `ChatOperationReturn` read.
#[tokio::test]
async fn member_changes_post_each_action() {
    use waops::providers::{ChangeOutcome, MemberChange};
    for (change, action) in [
        (MemberChange::Remove, "remove"),
        (MemberChange::Promote, "promote"),
        (MemberChange::Demote, "demote"),
    ] {
        let (server, p) = fake().await;
        authed(Mock::given(method("POST")).and(path(format!("/v1/chats/{GROUP}/{action}"))))
            .and(body_json(json!({"participants": ["919537851844", "919537851845"]})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "919537851844@c.us": {"is_success": true, "code": 200},
                "919537851845@c.us": {"is_success": false, "code": 403, "message": "not allowed"}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let numbers = [
            E164::from_trusted("+919537851844").unwrap(),
            E164::from_trusted("+919537851845").unwrap(),
        ];
        let outcomes: Vec<_> = p
            .change_members(&gid(GROUP), change, &numbers)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(
            outcomes,
            [ChangeOutcome::Done, ChangeOutcome::Failed("not allowed".into())],
            "{action}"
        );
    }
}

/// The documented 422 body reads as its message and the fields it names.
#[tokio::test]
async fn validation_errors_read_the_documented_body() {
    let (server, p) = fake().await;
    authed(Mock::given(method("POST")).and(path(format!("/v1/chats/{GROUP}/remove"))))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({
            "code": "VALIDATION_ERROR",
            "fields": {"participants": "must be an array of phone numbers"},
            "message": "Invalid request body",
            "name": "ValidationError",
            "status": 422
        })))
        .mount(&server)
        .await;
    let err = p
        .change_members(
            &gid(GROUP),
            waops::providers::MemberChange::Remove,
            &[E164::from_trusted("+919537851844").unwrap()],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ProviderErrorKind::Validation("Invalid request body (participants)".into())
    );
}
