//! Several WhatsApp accounts in one waops (SPEC section 11): a sandbox
//! account and a Periskope account on a fake, both holding a "Sales Team".

mod common;

use common::TestApp;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The Periskope account's own "Sales Team" (the sandbox's is 120363041234567890@g.us).
const US_SALES: &str = "120363099999999991@g.us";
const DE_SALES: &str = "120363041234567890@g.us";

/// `[accounts.<name>]` of a Periskope fake at `server`, with `extra` lines.
fn periskope_account(name: &str, server: &MockServer, extra: &str) -> String {
    format!(
        "[accounts.{name}]\nkind = \"periskope\"\nbase_url = \"{}/v1\"\ntoken = \"{}\"\nphone = \"15550001111\"\n\
         max_retries = 1\nrate_per_second = 1000\nburst = 1000\n{extra}\n",
        server.uri(),
        common::TOKEN
    )
}

/// A Periskope fake listing "Sales Team" and "US Only", with its invite link.
async fn periskope() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/chats"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "chats": [
                {"chat_id": US_SALES, "chat_name": "Sales Team"},
                {"chat_id": "120363099999999992@g.us", "chat_name": "US Only"}
            ],
            "count": 2
        })))
        .mount(&server)
        .await;
    server
}

async fn mount_invite(server: &MockServer, expect: u64) {
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{US_SALES}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "chat_id": US_SALES,
            "chat_name": "Sales Team",
            "invite_link": "https://chat.whatsapp.com/UsSalesInvite0000000001"
        })))
        .expect(expect)
        .mount(server)
        .await;
}

/// Two accounts: `de` (sandbox) and `us` (Periskope at `server`), plus `extra`.
async fn app(server: &MockServer, extra: &str) -> TestApp {
    let toml = format!(
        "[accounts.de]\nkind = \"sandbox\"\n{}{extra}",
        periskope_account("us", server, "")
    );
    TestApp::with_config(&toml).await
}

#[tokio::test]
async fn a_group_in_two_accounts_is_ambiguous_until_an_account_is_named() {
    let server = periskope().await;
    mount_invite(&server, 1).await;
    let app = app(&server, "").await;

    let reply = app.text("invite \"Sales Team\"").await;
    assert!(reply.contains("2 groups match"), "{reply}");
    assert!(
        reply.contains("Sales Team (de)") && reply.contains("Sales Team (us)"),
        "{reply}"
    );
    assert!(reply.contains("--account"), "{reply}");

    let (reply, request) = app
        .text_as(&["console"], "local", "invite \"Sales Team\" --account us")
        .await;
    assert!(reply.contains("Invite link for Sales Team (us)"), "{reply}");
    let row = app.audit(&request).await;
    assert_eq!(
        (row.account.as_deref(), row.group_id.as_deref()),
        (Some("us"), Some(US_SALES))
    );
    assert!(reply.contains("UsSalesInvite0000000001"), "{reply}");
    let reply = app.text("invite \"Sales Team\" --account de").await;
    assert!(reply.contains("Invite link for Sales Team (de)"), "{reply}");
    assert!(!reply.contains("UsSalesInvite"), "{reply}");

    // A name only one account holds needs no --account; the id of one is enough too.
    let reply = app.text("members \"US Only\" --account nowhere").await;
    assert!(reply.contains("No account is named nowhere"), "{reply}");
    assert!(reply.contains("Accounts: de, us."), "{reply}");

    // Both lists, with an Account column.
    let reply = app.text("groups sales").await;
    assert!(reply.contains("Account"), "{reply}");
    assert!(reply.contains(US_SALES) && reply.contains(DE_SALES), "{reply}");
    let reply = app.text("groups --account us").await;
    assert!(reply.contains(US_SALES) && !reply.contains(DE_SALES), "{reply}");

    // An id no account lists needs one too: which number should ask the provider?
    let reply = app.text("invite 120363000000000000@g.us").await;
    assert!(reply.contains("No account lists 120363000000000000@g.us"), "{reply}");
    let reply = app.text("invite 120363000000000000@g.us --account de").await;
    assert!(!reply.contains("No account lists"), "{reply}");

    // join acts on a number, so it needs one.
    let reply = app.text("join https://chat.whatsapp.com/EUKdz8Sdy9T2UWPnOKGkx").await;
    assert!(reply.contains("Which account should join?"), "{reply}");
    assert!(reply.contains("accounts: de, us"), "{reply}");

    // Digests name the group with its account; `subscribe *` spans every account.
    let reply = app.text("subscribe \"Sales Team\" --account de").await;
    assert!(reply.contains("Sales Team (de)"), "{reply}");
    assert!(app.text("subscriptions").await.contains("Sales Team (de)"));
    let reply = app.text("subscribe * --account de").await;
    assert!(reply.contains("covers the groups of every account"), "{reply}");

    // help and whoami name the accounts.
    let help = app.text("help").await;
    assert!(help.contains("Accounts: de (sandbox), us (periskope)"), "{help}");
    let whoami = app.text("whoami").await;
    assert!(whoami.contains("Accounts") && whoami.contains("de, us"), "{whoami}");
}

#[tokio::test]
async fn a_channels_default_account() {
    let server = periskope().await;
    mount_invite(&server, 1).await;
    let app = app(&server, "[channels.\"console:us-team\"]\naccount = \"us\"\n").await;

    let (reply, _) = app.text_as(&["console"], "us-team", "invite \"Sales Team\"").await;
    assert!(reply.contains("UsSalesInvite0000000001"), "{reply}");
    // --account wins over the channel's default.
    let (reply, _) = app
        .text_as(&["console"], "us-team", "invite \"Sales Team\" --account de")
        .await;
    assert!(
        reply.contains("Sales Team (de)") && !reply.contains("UsSales"),
        "{reply}"
    );
    // Elsewhere the name is still ambiguous.
    let reply = app.text("invite \"Sales Team\"").await;
    assert!(reply.contains("2 groups match"), "{reply}");
    let (whoami, _) = app.text_as(&["console"], "us-team", "whoami").await;
    assert!(whoami.contains("this channel uses us"), "{whoami}");
}

#[tokio::test]
async fn a_grant_limited_to_one_account() {
    let server = periskope().await;
    // The us account's Sales Team is never read for this caller.
    mount_invite(&server, 0).await;
    let roles = "[permissions.roles.de-team]\ncommands = [\"invite\", \"groups\", \"join\"]\ngroups = [\"*\"]\n\
                 accounts = [\"de\"]\n[permissions.bindings]\nde-team = [\"slack:user:UDE\"]\n";
    let app = app(&server, roles).await;
    let de = |text: &'static str| app.text_as(&["slack:user:UDE"], "C1", text);
    // Within its scope the name is no longer ambiguous.
    let (reply, _) = de("invite \"Sales Team\"").await;
    assert!(reply.contains("Invite link for Sales Team (de)"), "{reply}");
    let (reply, request) = de("invite \"Sales Team\" --account us").await;
    assert!(reply.contains("no role grants it on this group"), "{reply}");
    assert!(reply.contains("Sales Team") && !reply.contains(US_SALES), "{reply}");
    assert_eq!(app.audit(&request).await.decision, "refused");
    let (reply, _) = de("invite \"US Only\"").await;
    assert!(
        reply.contains("No group matches") || reply.contains("no role grants"),
        "{reply}"
    );
    assert!(!reply.contains("120363099999999992"), "{reply}");
    let (reply, _) = de("groups").await;
    assert!(reply.contains(DE_SALES) && !reply.contains(US_SALES), "{reply}");
    let (reply, _) = de("join https://chat.whatsapp.com/EUKdz8Sdy9T2UWPnOKGkx --account us").await;
    assert!(reply.contains("may not run `join`"), "{reply}");
}

/// A misspelt key in an account's table is refused like one in `[provider]`
/// (the other account checks are in settings' `semantic_errors`).
#[test]
fn an_unknown_key_in_an_account_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[accounts.de]\nkind = \"sandbox\"\ntokn = \"x\"\n").unwrap();
    let err = waops::settings::Settings::load(&waops::settings::LoadOptions {
        config_file: Some(path),
        base_dir: Some("/nonexistent".into()),
        env: Some(Default::default()),
    })
    .unwrap_err();
    assert_eq!(
        (err.key.as_str(), err.reason.as_str()),
        ("accounts.de.tokn", "unknown key")
    );
}

#[tokio::test]
async fn provider_alone_is_the_default_account_and_is_one_beside_others_only_when_set() {
    // No [accounts.*]: the built-in sandbox is `default`, nothing names it.
    let alone = TestApp::new().await;
    let names: Vec<String> = alone.ctx.accounts.all().iter().map(|a| a.name.to_string()).collect();
    assert_eq!(names, ["default"]);
    assert!(!alone.text("groups").await.contains("Account"));
    // [accounts.*] only: the built-in [provider] is not an account.
    let server = periskope().await;
    let app = app(&server, "").await;
    let names: Vec<String> = app.ctx.accounts.all().iter().map(|a| a.name.to_string()).collect();
    assert_eq!(names, ["de", "us"]);
    // [provider] set explicitly beside them: it is `default`.
    let toml = format!(
        "[provider]\nkind = \"sandbox\"\n{}",
        periskope_account("us", &server, "")
    );
    let app = TestApp::with_config(&toml).await;
    let names: Vec<String> = app.ctx.accounts.all().iter().map(|a| a.name.to_string()).collect();
    assert_eq!(names, ["default", "us"]);
}

/// Two Periskope accounts may share a token and differ only in the phone:
/// each request carries its account's `x-phone`.
#[tokio::test]
async fn periskope_accounts_sharing_a_token_differ_by_phone() {
    let server = MockServer::start().await;
    for (phone, id, name) in [
        ("4915100000001", "120363011111111111@g.us", "Berlin"),
        ("4915100000002", "120363022222222222@g.us", "Hamburg"),
    ] {
        Mock::given(method("GET"))
            .and(path("/v1/chats"))
            .and(wiremock::matchers::header("x-phone", phone))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"chats": [{"chat_id": id, "chat_name": name}], "count": 1})),
            )
            .mount(&server)
            .await;
    }
    let toml = format!(
        "{}{}",
        periskope_account("berlin", &server, "").replace("15550001111", "4915100000001"),
        periskope_account("hamburg", &server, "").replace("15550001111", "4915100000002")
    );
    let app = TestApp::with_config(&toml).await;
    let reply = app.text("groups").await;
    assert!(reply.contains("Berlin") && reply.contains("Hamburg"), "{reply}");
    let lines: Vec<&str> = reply.lines().collect();
    assert!(
        lines.iter().any(|l| l.contains("Berlin") && l.contains("berlin")),
        "{reply}"
    );
    assert!(
        lines.iter().any(|l| l.contains("Hamburg") && l.contains("hamburg")),
        "{reply}"
    );
}

/// Each account has its own limiter and connections: while one account's
/// command waits out a 429's Retry-After, another account's command runs.
#[tokio::test]
async fn a_429_on_one_account_does_not_slow_another() {
    let slow = periskope().await;
    let (told, mut limited) = tokio::sync::mpsc::unbounded_channel();
    Mock::given(method("GET"))
        .and(path(format!("/v1/chats/{US_SALES}")))
        .respond_with(move |_: &Request| {
            let _ = told.send(());
            ResponseTemplate::new(429).insert_header("retry-after", "25")
        })
        .mount(&slow)
        .await;
    let fast = periskope().await;
    mount_invite(&fast, 1).await;
    // Both paced at one request a second, one at a time: a shared limiter or
    // pool would hold the second account behind the first.
    let pacing = "rate_per_second = 1\nburst = 1\nmax_connections = 1\n";
    let toml = format!(
        "{}{}",
        periskope_account("slow", &slow, pacing).replace("rate_per_second = 1000\nburst = 1000\n", ""),
        periskope_account("fast", &fast, pacing).replace("rate_per_second = 1000\nburst = 1000\n", "")
    );
    let app = std::sync::Arc::new(TestApp::with_config(&toml).await);
    // Both group lists are read first (each account's one quota token for now).
    assert!(app.text("groups").await.contains("US Only"));

    let waiting = tokio::spawn({
        let app = app.clone();
        async move { app.text("invite \"Sales Team\" --account slow").await }
    });
    limited.recv().await.expect("the slow account was asked");
    let reply = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.text("invite \"Sales Team\" --account fast"),
    )
    .await
    .expect("the fast account is not held up");
    assert!(reply.contains("UsSalesInvite0000000001"), "{reply}");
    assert!(!waiting.is_finished(), "the slow account is still waiting out its 429");
    waiting.abort();
}

/// Each account's webhooks arrive at `/webhooks/<name>`, verified with its own
/// secret, and land in its own journal: two WUTS numbers in one group each
/// see only what their own webhooks said.
#[tokio::test]
async fn webhooks_and_history_per_account() {
    const GROUP: &str = "120363041234567777@g.us";
    let provider = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/groups"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"success": true, "groups": [{"jid": GROUP, "name": "Vendas"}]})),
        )
        .mount(&provider)
        .await;
    let account = |name: &str, secret: &str| {
        format!(
            "[accounts.{name}]\nkind = \"wuts\"\nbase_url = \"{}\"\ntoken = \"{}\"\nwebhook_secret = \"{secret}\"\n",
            provider.uri(),
            common::TOKEN
        )
    };
    let app = TestApp::with_config(&format!("{}{}", account("sp", "sp-secret"), account("rj", "rj-secret"))).await;
    let (base, _stop) = app.serve().await;
    let event = json!({"id": "evt-1", "event": "group.info", "data": {
        "jid": GROUP, "sender": "5511999999999@s.whatsapp.net", "timestamp": "2026-11-24T11:00:00Z",
        "join": ["5511988888888@s.whatsapp.net"]
    }})
    .to_string();
    let post = |url: String, secret: &'static str| {
        let event = event.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("x-waops-token", secret)
                .body(event)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // Another account's secret does not open this account's path.
    assert_eq!(post(format!("{base}/webhooks/sp"), "rj-secret").await, 401);
    assert_eq!(post(format!("{base}/webhooks/sp"), "sp-secret").await, 200);
    assert_eq!(post(format!("{base}/webhooks/wuts"), "sp-secret").await, 404);

    let sp = app.text("history Vendas --account sp").await;
    assert!(sp.starts_with("Membership history of Vendas (sp)\n"), "{sp}");
    assert!(sp.contains("· joined · +55 119 •••• 8888"), "{sp}");
    let rj = app.text("history Vendas --account rj").await;
    assert!(rj.starts_with("Membership history of Vendas (rj)\n"), "{rj}");
    assert!(!rj.contains("joined"), "{rj}");
    // Both numbers are in the group: without --account it is ambiguous.
    assert!(app.text("history Vendas").await.contains("2 groups match"));
}

/// Under the two-person rule, only someone whose grants cover the group's
/// account may approve (SPEC section 11: "on that group (and account)").
#[tokio::test]
async fn approvers_are_limited_to_their_accounts() {
    use waops::commands::approval::{self, Decided, Requested};
    use waops::core::reply::ButtonAction;
    use waops::core::{ChannelRef, Invocation, Platform, Principal};

    let server = periskope().await;
    let roles = "[permissions.roles.requester]\ncommands = [\"add\"]\ngroups = [\"*\"]\napproval = \"two-person\"\n\
                 [permissions.roles.lead-us]\ncommands = [\"approve\"]\ngroups = [\"*\"]\naccounts = [\"us\"]\n\
                 [permissions.roles.lead-de]\ncommands = [\"approve\"]\ngroups = [\"*\"]\naccounts = [\"de\"]\n\
                 [permissions.bindings]\nrequester = [\"slack:user:UREQ\"]\nlead-us = [\"slack:user:UUS\"]\n\
                 lead-de = [\"slack:user:UDE\"]\n";
    let app = app(&server, roles).await;
    let principals = |p: &str| vec![Principal::parse(p).unwrap()];
    let inv = Invocation {
        platform: Platform::Slack,
        principals: principals("slack:user:UREQ"),
        channel: ChannelRef::from_text("slack:C1"),
        text: "add \"Sales Team\" --account de +4915112345670".into(),
        request_id: "r1".into(),
        applied: false,
        approved_by: None,
    };
    let preview = waops::commands::dispatch(&app.ctx, &inv).await;
    let asked = preview
        .buttons
        .iter()
        .find(|b| b.action == ButtonAction::RequestApproval)
        .unwrap_or_else(|| panic!("{}", preview.plain()));
    let request = match approval::request(&app.ctx, &asked.value, &inv.principals, "r2").await {
        Requested::Posted { request, .. } => request,
        Requested::Gone(reply) => panic!("{}", reply.plain()),
    };
    let id = &request
        .buttons
        .iter()
        .find(|b| b.action == ButtonAction::Approve)
        .unwrap()
        .value;
    let (us, de) = (principals("slack:user:UUS"), principals("slack:user:UDE"));
    let decide = |who| approval::decide(&app.ctx, id, who, true, Platform::Slack, "r3");
    match decide(&us).await {
        Decided::Refused(reply) => assert!(reply.plain().contains("approve"), "{}", reply.plain()),
        _ => panic!("an approver of another account approved"),
    }
    match decide(&de).await {
        Decided::Approved(inv) => assert!(inv.text.contains("--account de"), "{}", inv.text),
        _ => panic!("the de approver was refused"),
    }
}

/// `/readyz` checks every account and names the one that fails, by name and
/// error kind only.
#[tokio::test]
async fn readiness_names_the_failing_account() {
    let refusing = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_string(format!("bad token {}", common::TOKEN)))
        .mount(&refusing)
        .await;
    let app = app(&refusing, "").await;
    let (base, _stop) = app.serve().await;
    let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().await.unwrap()),
        (503, "not ready: provider us: auth\n".to_string())
    );
}
