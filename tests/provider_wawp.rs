//! Wawp client against a wiremock fake: credentials in the query, WAHA shapes.

mod common;

use common::{fixture, provider, TOKEN};
use serde_json::json;
use waops::group_ref::GroupId;
use waops::invite_link;
use waops::phone::E164;
use waops::providers::{AddOutcome, JoinOutcome, ProviderErrorKind};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GROUP: &str = "1234567890@g.us";

async fn fake() -> (MockServer, std::sync::Arc<dyn waops::providers::Provider>) {
    let server = MockServer::start().await;
    let p = provider("wawp", &format!("{}/v2", server.uri()), "");
    (server, p)
}

fn creds(m: wiremock::MockBuilder) -> wiremock::MockBuilder {
    m.and(query_param("instance_id", "inst-1"))
        .and(query_param("access_token", TOKEN))
}

fn gid(s: &str) -> GroupId {
    GroupId::parse(s).unwrap()
}

#[tokio::test]
async fn invite_code_and_revoke() {
    let (server, p) = fake().await;
    creds(Mock::given(method("GET")).and(path(format!("/v2/groups/{GROUP}/invite-code"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("wawp/invite_code.json")))
        .expect(1)
        .mount(&server)
        .await;
    creds(Mock::given(method("POST")).and(path(format!("/v2/groups/{GROUP}/invite-code/revoke"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!("NEWCODE123")))
        .expect(1)
        .mount(&server)
        .await;
    let code = p.invite_code(&gid(GROUP)).await.unwrap();
    assert_eq!(code.link(), "https://chat.whatsapp.com/ABC123XYZ");
    assert_eq!(p.reset_invite(&gid(GROUP)).await.unwrap().as_str(), "NEWCODE123");
}

#[tokio::test]
async fn join_and_name_lookup() {
    let (server, p) = fake().await;
    creds(Mock::given(method("POST")).and(path("/v2/groups/join")))
        .and(body_json(json!({"code": "AbCdEfGhIjKlMnOpQrStUv"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": GROUP})))
        .expect(1)
        .mount(&server)
        .await;
    creds(Mock::given(method("GET")).and(path(format!("/v2/groups/{GROUP}"))))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": {"_serialized": GROUP}, "subject": "Community"})),
        )
        .mount(&server)
        .await;
    match p
        .join(&invite_link::parse("AbCdEfGhIjKlMnOpQrStUv").unwrap())
        .await
        .unwrap()
    {
        JoinOutcome::Joined(g) => assert_eq!(g.name, "Community"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn add_checks_members_then_adds_the_rest() {
    let (server, p) = fake().await;
    creds(Mock::given(method("GET")).and(path(format!("/v2/groups/{GROUP}/participants"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "4915111111111@c.us", "isAdmin": false}])))
        .expect(1)
        .mount(&server)
        .await;
    creds(Mock::given(method("POST")).and(path(format!("/v2/groups/{GROUP}/participants/add"))))
        .and(body_json(json!({"participants": [{"id": "4915112345678@c.us"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&server)
        .await;
    let numbers = [
        E164::from_trusted("+4915111111111").unwrap(),
        E164::from_trusted("+4915112345678").unwrap(),
    ];
    let outcomes: Vec<_> = p
        .add(&gid(GROUP), &numbers)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(outcomes, [AddOutcome::AlreadyMember, AddOutcome::Requested]);
}

#[tokio::test]
async fn groups_are_paged() {
    let (server, p) = fake().await;
    let page: Vec<_> = (0..100)
        .map(|i| json!({"id": format!("1203630000000{i:05}@g.us"), "subject": format!("G{i}")}))
        .collect();
    creds(Mock::given(method("GET")).and(path("/v2/groups")))
        .and(query_param("offset", "0"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!(page)))
        .expect(1)
        .mount(&server)
        .await;
    creds(Mock::given(method("GET")).and(path("/v2/groups")))
        .and(query_param("offset", "100"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": {"_serialized": "120363999999999999@g.us"}, "name": "Last"}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let groups = p.list_groups().await.unwrap();
    assert_eq!(groups.len(), 101);
    assert_eq!(groups[100].name, "Last");
}

#[tokio::test]
async fn status_errors() {
    let cases = [
        (400, "Bad Request - Missing Token", ProviderErrorKind::Auth),
        (401, "Invalid or Missing Access Token", ProviderErrorKind::Auth),
        (
            403,
            "Quota or Limit Reached",
            ProviderErrorKind::Forbidden("Quota or Limit Reached".into()),
        ),
        (404, "not found", ProviderErrorKind::NotFound),
        (500, "oops", ProviderErrorKind::Upstream(500)),
    ];
    for (status, body, kind) in cases {
        let (server, p) = fake().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .mount(&server)
            .await;
        let err = p.invite_code(&gid(GROUP)).await.unwrap_err();
        assert_eq!(err.kind, kind, "{status}");
    }
}

#[tokio::test]
async fn the_query_token_never_reaches_an_error_text() {
    // Nothing listens on port 1: a connect error whose URL would hold the token.
    let p = provider("wawp", "http://127.0.0.1:1/v2", "max_retries = 0\n");
    let err = p.invite_code(&gid(GROUP)).await.unwrap_err();
    assert!(matches!(err.kind, ProviderErrorKind::Transport(_)), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(TOKEN) && !shown.contains("access_token"), "{shown}");
}

/// Add answers in both engines' documented shapes: WEBJS's map keyed by
/// participant (codes, `isInviteV4Sent`), NOWEB's array of `{status, jid}`.
#[tokio::test]
async fn add_reads_the_webjs_map_and_the_noweb_array() {
    for (fixture_path, expected) in [
        (
            "wawp/add_webjs.json",
            vec![AddOutcome::Added, AddOutcome::InviteSent, AddOutcome::NotOnWhatsApp],
        ),
        (
            "wawp/add_noweb.json",
            vec![AddOutcome::Added, AddOutcome::AlreadyMember, AddOutcome::Requested],
        ),
    ] {
        let (server, p) = fake().await;
        creds(Mock::given(method("GET")).and(path(format!("/v2/groups/{GROUP}/participants"))))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
            .mount(&server)
            .await;
        creds(Mock::given(method("POST")).and(path(format!("/v2/groups/{GROUP}/participants/add"))))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture(fixture_path)))
            .expect(1)
            .mount(&server)
            .await;
        let numbers: Vec<E164> = ["+4915112345678", "+4915112345679", "+4915112345670"]
            .iter()
            .map(|n| E164::from_trusted(n).unwrap())
            .collect();
        let outcomes: Vec<_> = p
            .add(&gid(GROUP), &numbers)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(outcomes, expected, "{fixture_path}");
    }
}

/// Members in both engines' shapes: WEBJS's `isAdmin`/`isSuperAdmin`, WAHA's
/// `role` with an `@lid` id carrying the phone in `pn`.
#[tokio::test]
async fn members_in_both_shapes() {
    use waops::providers::{Party, Role};
    let (server, p) = fake().await;
    creds(Mock::given(method("GET")).and(path(format!("/v2/groups/{GROUP}/participants"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "4915111111111@c.us", "isAdmin": true, "isSuperAdmin": true},
            {"id": {"_serialized": "4915122222222@c.us"}, "isAdmin": false},
            {"id": "123456789012345@lid", "pn": "4915133333333@c.us", "role": "admin"}
        ])))
        .mount(&server)
        .await;
    let members = p.members(&gid(GROUP)).await.unwrap();
    assert_eq!(members.connected_admin, None);
    let read: Vec<_> = members.members.iter().map(|m| (m.party.clone(), m.role)).collect();
    let n = |s: &str| Party::Number(E164::from_trusted(s).unwrap());
    assert_eq!(
        read,
        [
            (n("+4915111111111"), Role::SuperAdmin),
            (n("+4915122222222"), Role::Member),
            (n("+4915133333333"), Role::Admin),
        ]
    );
}

/// Remove, promote and demote on their WAHA paths with `{participants: [{id}]}`.
#[tokio::test]
async fn member_changes_use_their_paths() {
    use waops::providers::{ChangeOutcome, MemberChange};
    for (change, route) in [
        (MemberChange::Remove, "participants/remove"),
        (MemberChange::Promote, "admin/promote"),
        (MemberChange::Demote, "admin/demote"),
    ] {
        let (server, p) = fake().await;
        creds(Mock::given(method("POST")).and(path(format!("/v2/groups/{GROUP}/{route}"))))
            .and(body_json(json!({"participants": [{"id": "4915112345678@c.us"}]})))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
            .expect(1)
            .mount(&server)
            .await;
        let results = p
            .change_members(&gid(GROUP), change, &[E164::from_trusted("+4915112345678").unwrap()])
            .await
            .unwrap();
        assert_eq!(results[0].outcome, ChangeOutcome::Done, "{route}");
    }
}
