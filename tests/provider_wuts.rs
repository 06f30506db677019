//! WUTS client against a wiremock fake.

mod common;

use common::{fixture, provider, TOKEN};
use serde_json::json;
use waops::group_ref::GroupId;
use waops::invite_link;
use waops::phone::E164;
use waops::providers::{AddOutcome, JoinOutcome, ProviderErrorKind};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GROUP: &str = "120363039000000000@g.us";

async fn fake() -> (MockServer, std::sync::Arc<dyn waops::providers::Provider>) {
    let server = MockServer::start().await;
    let p = provider("wuts", &server.uri(), "");
    (server, p)
}

fn bearer() -> wiremock::matchers::HeaderExactMatcher {
    header("authorization", format!("Bearer {TOKEN}").as_str())
}

fn gid(s: &str) -> GroupId {
    GroupId::parse(s).unwrap()
}

#[tokio::test]
async fn join_sends_the_link_and_names_the_group() {
    let (server, p) = fake().await;
    Mock::given(method("POST"))
        .and(path("/groups/join"))
        .and(bearer())
        .and(body_json(
            json!({"link": "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("wuts/join.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/groups/{GROUP}")))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"success": true, "group": {"jid": GROUP, "name": "Clientes VIP", "participants": []}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let code = invite_link::parse("https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv").unwrap();
    match p.join(&code).await.unwrap() {
        JoinOutcome::Joined(g) => assert_eq!((g.id.as_str(), g.name.as_str()), (GROUP, "Clientes VIP")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn pending_approval_is_reported() {
    let (server, p) = fake().await;
    Mock::given(method("POST"))
        .and(path("/groups/join"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "pending_approval": true, "group_jid": GROUP})),
        )
        .mount(&server)
        .await;
    let code = invite_link::parse("AbCdEfGhIjKlMnOpQrStUv").unwrap();
    assert_eq!(
        p.join(&code).await.unwrap(),
        JoinOutcome::PendingApproval(Some(gid(GROUP)))
    );
    assert!(p.capabilities().pending_approval);
}

#[tokio::test]
async fn groups_invites_and_reset() {
    let (server, p) = fake().await;
    Mock::given(method("GET"))
        .and(path("/groups"))
        .and(bearer())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"success": true, "groups": [
                {"jid": GROUP, "name": "Clientes VIP", "topic": "", "members_count": 12},
                {"jid": "120363039000000001@g.us", "name": "Suporte"}
            ]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/groups/{GROUP}/invite")))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true, "group_jid": GROUP, "invite_link": "https://chat.whatsapp.com/AbCdEfGhIjKlMnOpQrStUv"})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/groups/{GROUP}/invite/reset")))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true, "group_jid": GROUP, "invite_link": "https://chat.whatsapp.com/NewCodeNewCode123456", "reset_at": "2026-06-15T12:00:00Z"})))
        .expect(1)
        .mount(&server)
        .await;
    let names: Vec<_> = p.list_groups().await.unwrap().into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["Clientes VIP", "Suporte"]);
    assert_eq!(
        p.invite_code(&gid(GROUP)).await.unwrap().as_str(),
        "AbCdEfGhIjKlMnOpQrStUv"
    );
    assert_eq!(
        p.reset_invite(&gid(GROUP)).await.unwrap().as_str(),
        "NewCodeNewCode123456"
    );
}

#[tokio::test]
async fn add_reports_confirmed_numbers() {
    let (server, p) = fake().await;
    Mock::given(method("POST"))
        .and(path(format!("/groups/{GROUP}/participants")))
        .and(bearer())
        .and(body_json(json!({"participants": ["5511999999999", "5511988888888"], "action": "add"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true, "participants": [
            {"jid": "5511999999999@s.whatsapp.net", "phone_number": "5511999999999", "is_admin": false, "is_super_admin": false}
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    let numbers = [
        E164::from_trusted("+5511999999999").unwrap(),
        E164::from_trusted("+5511988888888").unwrap(),
    ];
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
            AddOutcome::Failed("not confirmed by the provider".into())
        ]
    );
}

#[tokio::test]
async fn error_envelope_maps_by_code() {
    let cases = [
        (
            400,
            fixture("wuts/error_validation.json"),
            ProviderErrorKind::Validation("validation failed".into()),
        ),
        (
            409,
            json!({"success": false, "error": "WhatsApp session is not connected", "error_code": "DEVICE_NOT_READY", "timestamp": "2026-06-15T12:00:00Z"}),
            ProviderErrorKind::DeviceNotConnected,
        ),
        (
            401,
            json!({"success": false, "error": "invalid token", "error_code": "UNAUTHORIZED", "timestamp": "2026-06-15T12:00:00Z"}),
            ProviderErrorKind::Auth,
        ),
        (
            403,
            json!({"success": false, "error": "not admin", "error_code": "NOT_ADMIN", "timestamp": "2026-06-15T12:00:00Z"}),
            ProviderErrorKind::NotAdmin,
        ),
        (
            404,
            json!({"success": false, "error": "no such group", "error_code": "GROUP_NOT_FOUND", "timestamp": "2026-06-15T12:00:00Z"}),
            ProviderErrorKind::NotFound,
        ),
        (
            500,
            json!({"success": false, "error": "boom", "error_code": "INTERNAL", "timestamp": "2026-06-15T12:00:00Z"}),
            ProviderErrorKind::Upstream(500),
        ),
    ];
    for (status, body, kind) in cases {
        let (server, p) = fake().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .expect(1)
            .mount(&server)
            .await;
        let err = p
            .join(&invite_link::parse("AbCdEfGhIjKlMnOpQrStUv").unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind, kind, "{status}");
    }
}

#[tokio::test]
async fn history_says_where_it_will_come_from() {
    let (_server, p) = fake().await;
    let err = p
        .history(
            &gid(GROUP),
            &waops::providers::HistoryQuery::all_since(jiff::Timestamp::MIN),
        )
        .await
        .unwrap_err();
    assert!(matches!(err.kind, ProviderErrorKind::Unsupported(_)));
}

/// The documented add answer: `phone_number` is a JID, not digits.
#[tokio::test]
async fn add_reads_phone_numbers_given_as_jids() {
    let (server, p) = fake().await;
    Mock::given(method("POST"))
        .and(path(format!("/groups/{GROUP}/participants")))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("wuts/add_participants.json")))
        .expect(1)
        .mount(&server)
        .await;
    let results = p
        .add(&gid(GROUP), &[E164::from_trusted("+5511888888888").unwrap()])
        .await
        .unwrap();
    assert_eq!(results[0].outcome, AddOutcome::Added);
}

/// Members from `GET /groups/{jid}` (the documented shape); WUTS does not say
/// which participant is the connected number.
#[tokio::test]
async fn members_come_from_the_group() {
    use waops::providers::Role;
    let (server, p) = fake().await;
    Mock::given(method("GET"))
        .and(path(format!("/groups/{GROUP}")))
        .and(bearer())
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("wuts/group.json")))
        .mount(&server)
        .await;
    let members = p.members(&gid(GROUP)).await.unwrap();
    assert_eq!(members.connected_admin, None);
    let roles: Vec<_> = members.members.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::SuperAdmin, Role::Admin, Role::Member]);
    assert!(members.find(&E164::from_trusted("+5511888888888").unwrap()).is_some());
}

/// Remove, promote and demote: `POST /groups/{jid}/participants` with the
/// action; the participants it lists are done.
#[tokio::test]
async fn member_changes_send_the_action() {
    use waops::providers::{ChangeOutcome, MemberChange};
    for (change, action) in [
        (MemberChange::Remove, "remove"),
        (MemberChange::Promote, "promote"),
        (MemberChange::Demote, "demote"),
    ] {
        let (server, p) = fake().await;
        Mock::given(method("POST"))
            .and(path(format!("/groups/{GROUP}/participants")))
            .and(bearer())
            .and(body_json(
                json!({"participants": ["5511888888888", "5511966666666"], "action": action}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture("wuts/add_participants.json")))
            .expect(1)
            .mount(&server)
            .await;
        let numbers = [
            E164::from_trusted("+5511888888888").unwrap(),
            E164::from_trusted("+5511966666666").unwrap(),
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
            [
                ChangeOutcome::Done,
                ChangeOutcome::Failed("not confirmed by the provider".into())
            ],
            "{action}"
        );
    }
}
