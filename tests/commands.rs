//! Every command through `dispatch` — the path all frontends share — on the
//! sandbox provider and a real SQLite file, asserting on the rendered replies,
//! on what the sandbox did, and on the audit rows.

mod common;

use common::TestApp;
use waops::core::{Status, Visibility};

const SALES_CONFIG: &str = r#"
[permissions.roles.sales]
commands = ["add", "invite", "history", "groups", "subscribe"]
groups = ["sales", "name:Support *"]
channels = ["slack:C0SALES"]
max_numbers = 3

[permissions.bindings]
sales = ["slack:usergroup:S0SALES"]
"#;

const SALES: &[&str] = &["slack:user:U1", "slack:usergroup:S0SALES"];

#[tokio::test]
async fn dry_run_normalises_and_sends_nothing() {
    let app = TestApp::new().await;
    let out = app.text("add sales +49 151 1234 5678, 0151-1234-5679 --dry-run").await;
    assert_eq!(
        out,
        "Dry run: would add 2 numbers to Sales Team\n  `+4915112345678`\n  `+4915112345679`\n  Group id  `120363041234567890@g.us`\nNothing was sent.\n"
    );
    // Had the dry run reached the provider, these would now be "already a member".
    let out = app.text("add sales +4915112345678 +4915112345679").await;
    assert!(
        out.contains("`+4915112345678` — added\n  `+4915112345679` — added"),
        "{out}"
    );
}

#[tokio::test]
async fn add_reports_every_outcome() {
    let app = TestApp::new().await;
    let (reply, id) = app
        .run_as(
            &["console"],
            "local",
            "add \"Sales Team\" +4915111111111, +4915112340000; +4915112349999 +4915112345678",
        )
        .await;
    assert_eq!(reply.status, Status::Ok);
    assert_eq!(reply.visibility, Visibility::Channel);
    assert_eq!(
        reply.plain(),
        "Add to Sales Team\n  `+4915111111111` — already a member\n  `+4915112340000` — not on WhatsApp\n  `+4915112349999` — invite sent (privacy settings)\n  `+4915112345678` — added\n1 added, 1 invite sent, 1 already a member, 1 not on WhatsApp, 0 failed\n"
    );
    let row = app.audit(&id).await;
    assert_eq!(
        (
            row.command.as_ref(),
            row.decision.as_ref(),
            row.outcome.as_ref(),
            row.numbers_count
        ),
        ("add", "allowed", "ok", 4)
    );
    assert_eq!(row.group_id.as_deref(), Some("120363041234567890@g.us"));
    assert_eq!(row.rule, "role admin, group *");
    assert_eq!(
        (row.request_id.as_str(), row.principal.as_str(), row.channel.as_str()),
        (id.as_str(), "console", "console:local")
    );
    let (reply, _) = app.run_as(&["console"], "local", "whoami").await;
    assert!(
        reply.plain().contains("\n  Groups    all groups\n"),
        "{}",
        reply.plain()
    );
}

#[tokio::test]
async fn invalid_numbers_send_nothing_and_list_reasons() {
    let app = TestApp::new().await;
    let reply = app.run("add sales +4915112345678, hello, 12").await;
    assert_eq!(reply.status, Status::UserError);
    assert_eq!(
        reply.plain(),
        "2 numbers are not valid; nothing was sent\n  `hello`: contains letters\n  `12`: too short\nNumbers without a country code use the configured default region.\n"
    );
    let out = app.text("add sales +4915112345678").await;
    assert!(out.contains("— added"), "the valid number was not sent before: {out}");
}

#[tokio::test]
async fn duplicates_are_dropped_and_reported() {
    let app = TestApp::new().await;
    let out = app
        .text("add sales +4915112345678 015112345678 4915112345678@c.us")
        .await;
    assert!(out.contains("1 added, 0 invite sent"), "{out}");
    assert!(
        out.ends_with("Dropped 2 duplicate(s): 015112345678, 4915112345678@c.us\n"),
        "{out}"
    );
}

fn numbers(n: usize) -> String {
    (1..=n)
        .map(|i| format!("+49151200{i:05}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn size_rules() {
    let app = TestApp::with_config("[limits]\nmax_numbers_per_add = 30\nconfirm_over = 20\n").await;
    let reply = app.run(&format!("add sales {}", numbers(31))).await;
    assert_eq!(reply.status, Status::UserError);
    assert_eq!(
        reply.title.plain(),
        "Too many numbers: 31; waops allows at most 30 per add"
    );

    let (reply, id) = app
        .run_as(&["console"], "local", &format!("add sales {}", numbers(21)))
        .await;
    assert_eq!(reply.status, Status::Preview);
    assert_eq!(reply.visibility, Visibility::Ephemeral);
    assert_eq!(reply.title.plain(), "This adds 21 numbers to Sales Team");
    assert!(reply
        .plain()
        .ends_with("More than 20 numbers: run it again with --yes to apply. Nothing was sent.\n"));
    assert_eq!(app.audit(&id).await.outcome, "preview");

    let out = app.text(&format!("add sales {} --yes", numbers(21))).await;
    assert!(
        out.contains("21 added"),
        "the preview sent nothing, so all 21 are new: {out}"
    );
    let out = app.text(&format!("add sales {}", numbers(20))).await;
    assert!(out.contains("20 already a member"), "20 is not over the limit: {out}");
}

#[tokio::test]
async fn role_number_limit() {
    let app = TestApp::with_config(SALES_CONFIG).await;
    let (reply, _) = app
        .run_as(SALES, "slack:C0SALES", &format!("add sales {}", numbers(4)))
        .await;
    assert_eq!(
        reply.title.plain(),
        "Too many numbers: 4; your role allows at most 3 per add"
    );
    let (reply, _) = app
        .run_as(SALES, "slack:C0SALES", &format!("add sales {}", numbers(3)))
        .await;
    assert_eq!(reply.status, Status::Ok);
}

#[tokio::test]
async fn join_outcomes() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("join https://chat.whatsapp.com/OpenDayVisitors2026").await,
        "Joined Open Day Visitors\n  Group id  `120363041234567895@g.us`\n"
    );
    assert_eq!(
        app.text("join PartnersLoungeApproval1").await,
        "Request sent, waiting for an admin to approve\n  Group id  `120363041234567896@g.us`\n"
    );
    let revoked = app.run("join chat.whatsapp.com/invite/OldSalesLinkRevoked01/").await;
    assert_eq!(revoked.status, Status::UserError);
    assert_eq!(
        revoked.plain(),
        "That invite link is invalid or has been revoked\nAsk a group admin for a current link.\n"
    );
    let (limited, id) = app.run_as(&["console"], "local", "join RateLimitedSandbox001").await;
    assert_eq!(
        limited.title.plain(),
        "The sandbox provider is rate limiting waops; try again in 30s"
    );
    assert_eq!(app.audit(&id).await.outcome, "provider_error:rate_limited");
    let bad = app
        .run("join https://chat.whatsapp.com.evil.example/OpenDayVisitors2026")
        .await;
    assert_eq!(
        bad.plain(),
        "`chat.whatsapp.com.evil.example` is not a WhatsApp invite host (expected chat.whatsapp.com)\nUsage: `/wa join <invite> [--account NAME]`\n"
    );
}

#[tokio::test]
async fn invite_and_reset() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("invite sales").await,
        "Invite link for Sales Team\n  https://chat.whatsapp.com/Kx7Pq2Lm9Zt4Rw8Yb3Nc\n"
    );
    let out = app.text("invite sales --reset").await;
    assert!(
        out.starts_with("New invite link for Sales Team\n  https://chat.whatsapp.com/SandboxReset"),
        "{out}"
    );
    assert!(out.ends_with("The old link no longer works.\n"));
    assert!(app
        .text("join Kx7Pq2Lm9Zt4Rw8Yb3Nc")
        .await
        .starts_with("That invite link is invalid or has been revoked"));
    let not_admin = app.run("invite Announcements --reset").await;
    assert_eq!(
        not_admin.title.plain(),
        "The connected WhatsApp number is not an admin of that group"
    );
    let not_admin = app.run("add announcements +4915112345678").await;
    assert_eq!(not_admin.status, Status::UserError);
}

#[tokio::test]
async fn history_limits_filters_and_masks() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("history sales --limit 3").await,
        "Membership history of Sales Team\n\
         \x20 2026-11-24 10:00 UTC (2h ago) · added · +49 151 •••• 3333 by +49 151 •••• 1111\n\
         \x20 2026-11-24 07:00 UTC (5h ago) · joined · +49 151 •••• 2222\n\
         \x20 2026-11-23 10:00 UTC (1d ago) · left · +49 151 •••• 5555\n\
         5 more — use --limit/--since\n\
         Source: the sandbox provider's history.\n"
    );
    let out = app.text("history sales --since 4d --type settings,promoted").await;
    assert!(
        out.contains("· promoted ·")
            && out.contains("· settings by +49 151 •••• 1111 (only admins can edit group info)"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 4, "{out}");
    let out = app.text("history sales --since 1h").await;
    assert!(out.contains("No membership changes in this period."), "{out}");

    let unmasked = TestApp::with_config("[display]\nmask_numbers = false\nresults = \"ephemeral\"\n").await;
    let reply = unmasked.run("history sales --limit 1").await;
    assert!(
        reply.plain().contains("+4915133333333 by +4915111111111"),
        "{}",
        reply.plain()
    );
    assert_eq!(reply.visibility, Visibility::Ephemeral);
}

#[tokio::test]
async fn groups_and_resolution() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("groups community").await,
        "2 groups matching \"community\"\n  Name               Id                       Admin\n  Community Berlin   120363041234567892@g.us  yes\n  Community Hamburg  120363041234567893@g.us  yes\n"
    );
    assert_eq!(
        app.text("invite community").await,
        "2 groups match community; retry with an id:\n  Community Berlin `120363041234567892@g.us`\n  Community Hamburg `120363041234567893@g.us`\n"
    );
    assert_eq!(
        app.text("invite marketing").await,
        "No group matches marketing\nTry `/wa groups` to see the groups and their ids.\n"
    );
    assert!(app
        .text("invite 120363041234567893@g.us")
        .await
        .starts_with("Invite link for Community Hamburg"));
    assert!(app
        .text("invite hamb")
        .await
        .starts_with("Invite link for Community Hamburg"));
}

#[tokio::test]
async fn subscriptions_lifecycle() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("subscriptions").await,
        "This channel has no digest subscriptions\nStart one with `/wa subscribe <group|*>`.\n"
    );
    assert_eq!(
        app.text("subscribe sales").await,
        "Subscribed this channel to digests of Sales Team\n  every 1d (UTC)\n"
    );
    assert_eq!(
        app.text("subscribe sales --every 2d --at 9:30 --tz Europe/Berlin")
            .await,
        "Updated this channel's digests of Sales Team\n  every 2d at 09:30 Europe/Berlin\n"
    );
    app.run("subscribe * --every 6h").await;
    let list = app.text("subscriptions").await;
    // Both were created at the same (fixed) instant, so their order is not part of the contract.
    let mut lines: Vec<&str> = list.lines().collect();
    lines[2..].sort();
    assert_eq!(
        lines,
        [
            "This channel has 2 digest subscriptions",
            "  Group       Schedule                         Since",
            "  Sales Team  every 2d at 09:30 Europe/Berlin  2026-11-24",
            "  all groups  every 6h (UTC)                   2026-11-24",
        ]
    );
    let other_channel = app.run_as(&["console"], "other", "subscriptions").await.0;
    assert_eq!(other_channel.title.plain(), "This channel has no digest subscriptions");
    assert_eq!(
        app.text("subscribe sales --every 1m").await,
        "--every must be at least 5m here\n"
    );
    assert_eq!(
        app.text("unsubscribe sales").await,
        "Stopped 1 digest subscription for Sales Team\n"
    );
    assert!(app
        .text("unsubscribe sales")
        .await
        .starts_with("This channel has no digest subscription for Sales Team"));
    app.run("subscribe support").await;
    assert_eq!(
        app.text("unsubscribe *").await,
        "Stopped 2 digest subscriptions for all groups\n"
    );
}

#[tokio::test]
async fn permissions_refuse_with_the_reason_and_audit_it() {
    let app = TestApp::with_config(SALES_CONFIG).await;
    let (reply, id) = app
        .run_as(SALES, "slack:C0SALES", "add \"Community Berlin\" +4915112345678")
        .await;
    assert_eq!(reply.status, Status::UserError);
    assert_eq!(
        reply.plain(),
        "You may not run `add` on Community Berlin (no role grants it on this group; ask an admin)\n"
    );
    let row = app.audit(&id).await;
    assert_eq!(
        (row.decision.as_ref(), row.rule.as_str()),
        ("refused", "no role grants it on this group; ask an admin")
    );
    assert_eq!(row.principal, "slack:user:U1");
    assert_eq!(row.channel, "slack:C0SALES");

    let (reply, _) = app.run_as(SALES, "slack:C0SALES", "join OpenDayVisitors2026").await;
    assert_eq!(
        reply.plain(),
        "You may not run `join` (no role grants it; ask an admin)\n"
    );
    let (reply, _) = app.run_as(SALES, "slack:COTHER", "invite sales").await;
    assert_eq!(
        reply.plain(),
        "You may not run `invite` (not in this channel; your roles allow it elsewhere)\n"
    );
    let (reply, id) = app.run_as(&["slack:user:USTRANGER"], "slack:C0SALES", "groups").await;
    assert_eq!(
        reply.plain(),
        "You may not run `groups` (no role is bound to you; ask an admin)\n"
    );
    assert_eq!(app.audit(&id).await.decision, "refused");
    // subscribe * needs a role covering every group.
    let (reply, _) = app.run_as(SALES, "slack:C0SALES", "subscribe *").await;
    assert_eq!(
        reply.title.plain(),
        "You may not run subscribe on all groups (no role grants it on this group; ask an admin)"
    );

    let (reply, id) = app.run_as(SALES, "slack:C0SALES", "invite \"Support Crew\"").await;
    assert_eq!(reply.status, Status::Ok, "{}", reply.plain());
    assert_eq!(app.audit(&id).await.rule, "role sales, group name:Support *");
}

#[tokio::test]
async fn groups_help_and_whoami_are_filtered_by_role() {
    let app = TestApp::with_config(SALES_CONFIG).await;
    let (reply, _) = app.run_as(SALES, "slack:C0SALES", "groups").await;
    assert_eq!(
        reply.plain(),
        "2 groups\n  Name          Id                       Admin\n  Sales Team    120363041234567890@g.us  yes\n  Support Crew  120363041234567891@g.us  yes\n3 more your roles do not cover are not shown.\n"
    );
    let (reply, _) = app.run_as(SALES, "slack:C0SALES", "help").await;
    let usages: Vec<_> = reply
        .lines
        .iter()
        .map(|l| l.plain().split(' ').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        usages,
        ["add", "invite", "history", "groups", "subscribe", "help", "whoami"]
    );
    let (reply, _) = app.run_as(SALES, "slack:COTHER", "help").await;
    assert_eq!(reply.lines.len(), 2, "only help and whoami outside the sales channel");
    assert!(reply
        .plain()
        .contains("You may not run any WhatsApp command here (not in this channel; your roles allow it elsewhere)."));
    let (reply, _) = app.run_as(SALES, "slack:C0SALES", "help join").await;
    assert_eq!(reply.plain(), "`/wa join <invite> [--account NAME]`\n  join the group behind an invite link or code\n  `--account NAME` — the account (connected number) to use, when several are configured\nYou may not run `join` here (no role grants it; ask an admin).\n");
    let (reply, _) = app.run_as(SALES, "slack:C0SALES", "whoami").await;
    assert_eq!(
        reply.plain(),
        "You are `slack:user:U1`\n  Channel   `slack:C0SALES`\n  Also      slack:usergroup:S0SALES\n  Roles     sales (only in slack:C0SALES; at most 3 numbers per add)\n  Commands  add, invite, history, groups, subscribe, help, whoami\n  Groups    sales (120363041234567890@g.us), name:Support *\n"
    );
    let (reply, _) = app.run_as(&["slack:user:USTRANGER"], "slack:C0SALES", "whoami").await;
    assert!(reply.plain().contains("Roles     none"), "{}", reply.plain());
}

#[tokio::test]
async fn help_for_one_command_lists_options() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("help history").await,
        "`/wa history <group> [--limit N] [--since DURATION] [--type KINDS] [--account NAME]`\n  membership changes, newest first\n  `--limit N` — show at most N events (default 20, at most 200)\n  `--since DURATION` — only events within this long ago (30m, 6h, 7d, 2w)\n  `--type KINDS` — comma list of joined,left,added,removed,promoted,demoted,settings,other\n  `--account NAME` — the account (connected number) to use, when several are configured\n"
    );
    assert_eq!(app.run("").await.title.plain(), "waops commands you can run here");
}

#[tokio::test]
async fn bad_text_gets_did_you_mean_and_an_invalid_audit_row() {
    let app = TestApp::new().await;
    let (reply, id) = app.run_as(&["console"], "local", "hisotry sales").await;
    assert_eq!(
        reply.plain(),
        "unknown command `hisotry`; did you mean `history`?\nUsage: `/wa <join|add|remove|promote|demote|members|invite|history|groups|subscribe|unsubscribe|subscriptions|audit|approve|help|whoami> ... (try /wa help)`\n"
    );
    let row = app.audit(&id).await;
    assert_eq!(
        (row.command.as_ref(), row.decision.as_ref(), row.outcome.as_ref()),
        ("invalid", "invalid", "user_error")
    );
    let (reply, id) = app.run_as(&["console"], "local", "add sales 1 --dryrun").await;
    assert_eq!(reply.plain(), "unknown option `--dryrun`; did you mean `--dry-run`?\nUsage: `/wa add <group> <numbers…> [--dry-run] [--yes] [--account NAME]`\n");
    assert_eq!(app.audit(&id).await.command, "add");
}

#[tokio::test]
async fn internal_errors_show_only_a_ref() {
    let app = TestApp::new().await;
    app.ctx.store.close().await;
    let (reply, id) = app.run_as(&["console"], "local", "subscriptions").await;
    assert_eq!(reply.status, Status::Internal);
    assert_eq!(reply.plain(), format!("Something went wrong (ref {id})\n"));
}

#[tokio::test]
async fn members_are_listed_admins_first_and_masked() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("members sales").await,
        "5 members of Sales Team\n\
         \x20 +49 151 •••• 1111 — admin\n\
         \x20 +49 151 •••• 2222 — admin\n\
         \x20 +49 309 •••• 1820 (waops (sandbox)) — admin\n\
         \x20 +49 151 •••• 3333\n\
         \x20 +49 151 •••• 7878\n"
    );
    assert_eq!(
        app.text("members sales 3333").await,
        "1 member of Sales Team matching \"3333\"\n  +49 151 •••• 3333\n"
    );
}

#[tokio::test]
async fn remove_promote_and_demote_report_each_number() {
    let app = TestApp::new().await;
    assert_eq!(
        app.text("remove sales +4915133333333 +4915199999991 --dry-run").await,
        "Dry run: would remove 1 number from Sales Team\n\
         \x20 `+4915133333333` — will be removed\n\
         \x20 `+4915199999991` — not a member\n\
         \x20 Group id  `120363041234567890@g.us`\n\
         Nothing was sent.\n"
    );
    assert_eq!(
        app.text("remove sales +4915133333333 +4915199999991").await,
        "Remove from Sales Team\n\
         \x20 `+4915133333333` — removed\n\
         \x20 `+4915199999991` — not a member\n\
         1 removed, 1 not a member, 0 failed\n"
    );
    // Removed for real: a second remove finds no member, and history shows it.
    assert!(app
        .text("remove sales +4915133333333")
        .await
        .contains("`+4915133333333` — not a member"));
    assert!(app
        .text("history sales --limit 1")
        .await
        .contains("· removed · +49 151 •••• 3333 by +49 309 •••• 1820"));
    assert_eq!(
        app.text("promote sales +4915178787878 +4915122222222").await,
        "Promote in Sales Team\n\
         \x20 `+4915178787878` — promoted\n\
         \x20 `+4915122222222` — already an admin\n\
         1 promoted, 0 not a member, 1 already an admin, 0 failed\n"
    );
    assert!(app.text("members sales 7878").await.contains("7878 — admin"));
    assert!(app
        .text("demote sales +4915178787878")
        .await
        .contains("`+4915178787878` — demoted"));
    assert!(app
        .text("demote sales +4915178787878")
        .await
        .contains("`+4915178787878` — not an admin"));
    assert!(app
        .text("remove support +4915188888888")
        .await
        .contains("failed (WhatsApp refused the change (the sandbox's 8888 numbers))"));
    let (reply, id) = app
        .run_as(&["console"], "local", "remove announcements +4915178787878")
        .await;
    assert_eq!(
        reply.title.plain(),
        "The connected WhatsApp number is not an admin of that group"
    );
    assert_eq!(app.audit(&id).await.outcome, "provider_error:not_admin");
    assert_eq!(
        app.text("promote * +4915178787878").await,
        "`promote` takes one group; `*` is for `remove` only\nUsage: `/wa promote <group> <numbers…> [--dry-run] [--yes] [--account NAME]`\n"
    );
}

#[tokio::test]
async fn member_changes_obey_the_number_limits_and_preview() {
    let app = TestApp::with_config(
        "[permissions.roles.cleanup]\ncommands = [\"remove\"]\ngroups = [\"sales\"]\nmax_numbers = 3\n\n[permissions.bindings]\ncleanup = [\"slack:user:U1\"]\n",
    )
    .await;
    let numbers = |n: usize| {
        (1..=n)
            .map(|i| format!("+49151600{i:05}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (reply, _) = app
        .run_as(&["slack:user:U1"], "slack:C1", &format!("remove sales {}", numbers(4)))
        .await;
    assert_eq!(
        reply.title.plain(),
        "Too many numbers: 4; your role allows at most 3 per add"
    );
    let app = TestApp::new().await;
    let many = (1..=21).map(|i| format!("+49151600{i:05}")).collect::<Vec<_>>();
    // Not members: nothing to change, so no preview either.
    assert!(app
        .text(&format!("remove sales {}", many.join(" ")))
        .await
        .contains("0 removed, 21 not a member, 0 failed"));
}

/// Offboarding: a number in three groups, one outside the caller's scope and
/// one where the connected number is not an admin. The preview lists the one
/// group it can act on, never names the out-of-scope one, and says where the
/// number stays; `--yes` (the console's Apply) removes it, with one audit row
/// per group.
#[tokio::test]
async fn offboarding_acts_only_where_it_may_and_can() {
    const OFFBOARDING: &str = r#"
[permissions.roles.hr]
commands = ["remove"]
groups = ["sales", "name:Announce*"]

[permissions.bindings]
hr = ["slack:user:UHR"]
"#;
    let app = TestApp::with_config(OFFBOARDING).await;
    let hr = &["slack:user:UHR"];
    let (preview, id) = app.run_as(hr, "slack:C1", "remove * +4915178787878").await;
    assert_eq!(preview.status, Status::Preview);
    let text = preview.plain();
    assert_eq!(
        text,
        "This will remove 1 membership from 1 group\n\
         \x20 Sales Team: `+4915178787878`\n\
         \x20 Stays in Announcements (the connected number is not an admin there): `+4915178787878`\n\
         Offboarding: run it again with --yes to apply. Nothing was sent.\n"
    );
    assert!(!text.contains("Support"), "out of scope: {text}");
    assert_eq!(app.audit(&id).await.outcome, "preview");
    // The console applies with --yes.
    let app = TestApp::with_config(OFFBOARDING).await;
    let (done, id) = app
        .run_as(hr, "console:local", "remove * +4915178787878 +4915199999991 --yes")
        .await;
    assert_eq!(
        done.plain(),
        "Removed 1 membership from 1 group\n\
         \x20 Sales Team: `+4915178787878` — removed\n\
         \x20 Stays in Announcements (the connected number is not an admin there): `+4915178787878`\n\
         1 removed, 0 failed\n"
    );
    app.ctx.audit.flush().await;
    let rows = app.ctx.store.audit_for_request(&id).await.unwrap();
    let groups: Vec<_> = rows
        .iter()
        .map(|r| (r.group_id.as_deref(), r.numbers_count, r.outcome.as_ref()))
        .collect();
    assert_eq!(groups, [(Some("120363041234567890@g.us"), 1, "ok")]);
    // Still a member of Support Crew, which the caller may not touch.
    assert!(app.text("members support 7878").await.contains("7878"));
    let (again, _) = app.run_as(hr, "console:local", "remove * +4915178787878 --yes").await;
    assert!(
        again
            .plain()
            .starts_with("This will remove 0 memberships from 0 groups"),
        "{}",
        again.plain()
    );
}

/// With several groups to act on, each gets its own audit row.
#[tokio::test]
async fn offboarding_audits_each_group() {
    let app = TestApp::new().await;
    let (done, id) = app
        .run_as(&["console"], "local", "remove * +4915178787878 +4915188888888 --yes")
        .await;
    assert!(
        done.plain()
            .contains("Support Crew: `+4915178787878` — removed, `+4915188888888` — failed"),
        "{}",
        done.plain()
    );
    app.ctx.audit.flush().await;
    let mut rows: Vec<_> = app
        .ctx
        .store
        .audit_for_request(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.group_id.unwrap_or_default(), r.numbers_count, r.outcome.to_string()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("120363041234567890@g.us".to_string(), 1, "ok".to_string()),
            ("120363041234567891@g.us".to_string(), 2, "ok".to_string()),
        ]
    );
}

/// `audit` filters by user, command, group, time and count, newest first; a
/// role without `audit` is refused.
#[tokio::test]
async fn audit_filters_the_log() {
    let app = TestApp::with_config(
        "[permissions.roles.auditor]\ncommands = [\"audit\"]\ngroups = [\"*\"]\n\n\
         [permissions.roles.sales]\ncommands = [\"invite\", \"history\"]\ngroups = [\"sales\"]\n\n\
         [permissions.bindings]\nauditor = [\"slack:user:UAUD\"]\nsales = [\"slack:user:U1\"]\n",
    )
    .await;
    let u1 = &["slack:user:U1"];
    // One at a time into the log: rows of the same instant keep their order.
    for text in ["invite sales", "history sales --limit 1", "invite \"Support Crew\""] {
        app.run_as(u1, "slack:C1", text).await;
        app.ctx.audit.flush().await;
    }
    app.run("invite support").await;
    app.ctx.audit.flush().await;
    let audit = |text: &str| {
        let text = text.to_string();
        let app = &app;
        async move {
            let (reply, _) = app.run_as(&["slack:user:UAUD"], "slack:CAUDIT", &text).await;
            assert_eq!(reply.status, Status::Ok, "{}", reply.plain());
            reply.lines.iter().map(|l| l.plain()).collect::<Vec<_>>()
        }
    };
    let all = audit("audit").await;
    assert_eq!(all.len(), 4, "{all:#?}");
    assert!(
        all[0].contains("console in console:local · invite · Support Crew"),
        "newest first: {all:#?}"
    );
    assert!(
        all[1].contains("slack:user:U1 in slack:C1 · invite · refused"),
        "{all:#?}"
    );
    assert!(
        all[3].contains("slack:user:U1 in slack:C1 · invite · Sales Team"),
        "oldest last: {all:#?}"
    );
    let by_user = audit("audit --user slack:user:U1").await;
    assert_eq!(by_user.len(), 3, "{by_user:#?}");
    assert!(by_user.iter().all(|l| l.contains("slack:user:U1 in slack:C1")));
    let invites = audit("audit --user slack:user:U1 --command invite").await;
    assert_eq!(invites.len(), 2);
    assert!(invites[0].contains("· invite · refused · user_error"), "{invites:#?}");
    assert!(
        invites[1].contains("· invite · Sales Team · allowed · ok"),
        "{invites:#?}"
    );
    let sales = audit("audit --group sales").await;
    assert_eq!(sales.len(), 2, "{sales:#?}");
    assert!(sales.iter().all(|l| l.contains("· Sales Team ·")));
    assert_eq!(audit("audit --limit 1").await.len(), 1);
    assert_eq!(audit("audit --since 1m").await.len(), 4, "the test clock stands still");
    let (reply, _) = app.run_as(u1, "slack:C1", "audit").await;
    assert_eq!(
        reply.title.plain(),
        "You may not run audit (no role grants it; ask an admin)"
    );
}

/// `subscribe --live`: besides a digest of the same group, listed as live,
/// stopped with the rest by `unsubscribe`; it takes no schedule.
#[tokio::test]
async fn live_alerts_are_a_subscription_of_their_own() {
    let app = TestApp::new().await;
    app.run("subscribe sales").await;
    assert_eq!(
        app.text("subscribe sales --live").await,
        "Subscribed this channel to live alerts of Sales Team\n  live: each change within seconds\n"
    );
    assert_eq!(
        app.text("subscribe sales --live").await,
        "This channel already has live alerts of Sales Team\n  live: each change within seconds\n"
    );
    let list = app.text("subscriptions").await;
    assert!(list.starts_with("This channel has 2 digest subscriptions"), "{list}");
    assert!(list.contains("Sales Team  live: each change within seconds"), "{list}");
    assert!(list.contains("Sales Team  every 1d (UTC)"), "{list}");
    assert_eq!(
        app.text("subscribe sales --live --every 1d").await,
        "--live posts as changes arrive; it takes no --every, --at or --tz\nUsage: `/wa subscribe <group|*> [--live] [--every DURATION] [--at HH:MM] [--tz ZONE] [--account NAME]`\n"
    );
    assert_eq!(
        app.text("unsubscribe sales").await,
        "Stopped 2 digest subscriptions for Sales Team\n"
    );
}

/// The two-person rule cannot be met from the console (no second person's
/// button); `approval_over` lets small changes through.
#[tokio::test]
async fn two_person_rule_in_the_console_and_under_its_threshold() {
    let app = TestApp::with_config(
        "[permissions.roles.sales]\ncommands = [\"add\", \"remove\"]\ngroups = [\"sales\"]\napproval = \"two-person\"\napproval_over = 1\n\n\
         [permissions.bindings]\nsales = [\"slack:user:U1\"]\n",
    )
    .await;
    let run = |text: &'static str| {
        let app = &app;
        async move { app.run_as(&["slack:user:U1"], "local", text).await.0.plain() }
    };
    assert!(
        run("add sales +4915112345678")
            .await
            .contains("`+4915112345678` — added"),
        "one number: under approval_over"
    );
    assert_eq!(
        run("add sales +4915112345671 +4915112345672 --yes").await,
        "Your role needs a second person's approval for this\nRun it from Slack or Discord and press Request approval. Nothing was sent.\n"
    );
    assert!(run("remove sales +4915111111111 +4915122222222")
        .await
        .starts_with("Your role needs a second person's approval"));
}

/// Approving an offboarding (`remove *`, no one group) needs `approve` on every
/// group: a lead limited to one group may not.
#[tokio::test]
async fn approving_an_offboarding_needs_approve_on_every_group() {
    use waops::commands::approval::{decide, Decided};
    use waops::core::{Platform, Principal};
    let app = TestApp::with_config(
        "[permissions.roles.lead]\ncommands = [\"approve\"]\ngroups = [\"sales\"]\n\n\
         [permissions.roles.boss]\ncommands = [\"approve\"]\ngroups = [\"*\"]\n\n\
         [permissions.bindings]\nlead = [\"slack:user:ULEAD\"]\nboss = [\"slack:user:UBOSS\"]\n",
    )
    .await;
    let now = app.ctx.clock.now();
    app.ctx
        .store
        .create_approval(
            &waops::store::approvals::Approval {
                id: "offboard-1".into(),
                platform: "slack".into(),
                channel: "slack:C1".into(),
                requester: "slack:user:UHR".into(),
                requester_principals: vec!["slack:user:UHR".into()],
                command_text: "remove * +4915178787878 --yes".into(),
                command: "remove".into(),
                group_id: None,
                expires_at: now + jiff::SignedDuration::from_hours(1),
            },
            now,
        )
        .await
        .unwrap();
    let who = |p: &str| vec![Principal::parse(p).unwrap()];
    match decide(
        &app.ctx,
        "offboard-1",
        &who("slack:user:ULEAD"),
        true,
        Platform::Slack,
        "r1",
    )
    .await
    {
        Decided::Refused(reply) => assert!(
            reply.title.plain().starts_with("You may not approve"),
            "{}",
            reply.plain()
        ),
        _ => panic!("a lead on one group approved an offboarding"),
    }
    match decide(
        &app.ctx,
        "offboard-1",
        &who("slack:user:UBOSS"),
        true,
        Platform::Slack,
        "r2",
    )
    .await
    {
        Decided::Approved(inv) => {
            assert_eq!(inv.caller().as_str(), "slack:user:UHR");
            assert_eq!(inv.approved_by.unwrap().as_str(), "slack:user:UBOSS");
        }
        _ => panic!("approve on every group may approve it"),
    }
}
