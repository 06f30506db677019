//! Every sentence a user sees, one function per message. Commands decide; this
//! module words. User- and provider-controlled text goes in `Span::Text` so the
//! frontends escape it.

use jiff::Timestamp;

use super::parser::{CommandSpec, UsageError};
use super::permissions::Refusal;
use super::reply::{Button, ButtonAction, Reply, Rich, Status, Table, Visibility};
use super::values::{format_duration, wall_clock, zone_name};
use super::CommandId;
use crate::group_ref::GroupInfo;
use crate::invite_link::InviteCode;
use crate::phone::{Accepted, InvalidNumber};
use crate::provider::{
    AddOutcome, AddResult, ChangeOutcome, ChangeResult, HistorySource, Member, MemberChange, MemberEvent, Party,
    ProviderError, ProviderErrorKind, ProviderKind, Role,
};
use crate::subscription::Subscription;

/// Bad command text, with the usage line.
pub fn usage_error(e: &UsageError) -> Reply {
    let mut reply = Reply::user_error(e.message.clone());
    if let Some(usage) = &e.usage {
        reply = reply.footer(Rich::new().text("Usage: ").code(usage.clone()));
    }
    reply
}

/// "You may not run `add` on *Sales Team* (no role grants it; ask an admin)"
pub fn refused(command: CommandId, group: Option<&str>, refusal: Refusal) -> Reply {
    let mut title = Rich::new().text("You may not run ").code(command.as_str());
    if let Some(name) = group {
        title = title.text(" on ").strong(name);
    }
    Reply::user_error(title.text(format!(" ({})", refusal.reason())))
}

/// The fixed sentence for internal errors; details are only in the log.
pub fn internal(request_id: &str) -> Reply {
    Reply::new(
        Status::Internal,
        Visibility::Ephemeral,
        format!("Something went wrong (ref {request_id})"),
    )
}

/// No group matched a reference.
pub fn no_group_match(reference: &str) -> Reply {
    Reply::user_error(Rich::new().text("No group matches ").strong(reference)).footer(
        Rich::new()
            .text("Try ")
            .code("/wa groups")
            .text(" to see the groups and their ids."),
    )
}

/// `--account` (or a channel's default) names no configured account.
pub fn unknown_account(name: &str, accounts: &str) -> Reply {
    Reply::user_error(Rich::new().text("No account is named ").strong(name)).line(format!("Accounts: {accounts}."))
}

/// A command on a number, not a group, with several numbers and none chosen.
pub fn which_account(command: CommandId, accounts: &str) -> Reply {
    Reply::user_error(format!("Which account should {command}? Several are configured.")).line(
        Rich::new()
            .text("Add ")
            .code("--account NAME")
            .text(format!(" (accounts: {accounts}).")),
    )
}

/// A group id that no account lists, with several accounts and none chosen.
pub fn group_needs_account(reference: &str, accounts: &str) -> Reply {
    Reply::user_error(
        Rich::new()
            .text("No account lists ")
            .strong(reference)
            .text("; to use it anyway, add ")
            .code("--account NAME"),
    )
    .line(format!("Accounts: {accounts}."))
}

/// `subscribe * --account`: subscriptions to every group cover every account.
pub fn subscriptions_span_accounts(command: CommandId) -> Reply {
    Reply::user_error(format!(
        "`{command} *` covers the groups of every account; --account goes with one group."
    ))
}

/// Several groups matched; list candidates and ask for an id.
pub fn ambiguous_group(reference: &str, candidates: &[GroupInfo], total: usize) -> Reply {
    let mut reply = Reply::user_error(
        Rich::new()
            .text(format!("{total} groups match "))
            .strong(reference)
            .text(if candidates.iter().any(|g| g.account.is_some()) {
                "; retry with an id or --account:"
            } else {
                "; retry with an id:"
            }),
    );
    for g in candidates {
        reply = reply.line(Rich::new().strong(g.label()).text(" ").code(g.id.as_str()));
    }
    if total > candidates.len() {
        reply = reply.line(format!("… and {} more", total - candidates.len()));
    }
    reply
}

/// A provider error, as a sentence the user can act on.
pub fn provider_error(error: &ProviderError, provider: ProviderKind) -> Reply {
    use ProviderErrorKind::*;
    let p = provider.as_str();
    let (title, hint): (String, Option<&str>) = match &error.kind {
        Auth => (
            format!("The {p} provider rejected waops' credentials"),
            Some(match provider {
                ProviderKind::Periskope => "Ask an admin to check provider.token and provider.phone.",
                ProviderKind::Wawp => "Ask an admin to check provider.instance_id and provider.access_token.",
                _ => "Ask an admin to check provider.token.",
            }),
        ),
        NotAdmin => (
            "The connected WhatsApp number is not an admin of that group".into(),
            Some("Make it an admin in WhatsApp, then retry."),
        ),
        Forbidden(detail) => (format!("The {p} provider refused this request: {detail}"), None),
        NotFound => (
            "The connected WhatsApp number is not in that group".into(),
            Some("Check the id with /wa groups."),
        ),
        InvalidInvite => (
            "That invite link is invalid or has been revoked".into(),
            Some("Ask a group admin for a current link."),
        ),
        Validation(detail) => (format!("The {p} provider rejected the request: {detail}"), None),
        RateLimited(Some(wait)) => (
            format!(
                "The {p} provider is rate limiting waops; try again in {}",
                format_duration(*wait)
            ),
            None,
        ),
        RateLimited(None) => (
            format!("The {p} provider is rate limiting waops; try again in a minute"),
            None,
        ),
        DeviceNotConnected => (
            "The WhatsApp session is not connected".into(),
            Some("Reconnect the phone in the provider's console."),
        ),
        Upstream(status) => (
            format!("The {p} provider failed (HTTP {status}); try again later"),
            None,
        ),
        Transport(_) => (format!("Could not reach the {p} provider; try again later"), None),
        Timeout(true) => (
            format!("The {p} provider did not answer in time; it may still have done it"),
            Some("Check with /wa groups or /wa history before you retry."),
        ),
        Timeout(false) => (
            format!("The {p} provider did not answer in time; try again later"),
            None,
        ),
        Malformed => (
            format!("The {p} provider sent an answer waops cannot read; try again later"),
            None,
        ),
        Unsupported(what) => (format!("The {p} provider cannot {what}"), None),
    };
    let mut reply = Reply::user_error(title);
    if let Some(hint) = hint {
        reply = reply.footer(hint);
    }
    reply
}

/// Joined a group.
pub fn joined(group: &GroupInfo, visibility: Visibility) -> Reply {
    Reply::new(
        Status::Ok,
        visibility,
        Rich::new().text("Joined ").strong(group.label()),
    )
    .field("Group id", Rich::new().code(group.id.as_str()))
}

/// A join request waits for approval.
pub fn join_pending(group: Option<&GroupInfo>, visibility: Visibility) -> Reply {
    let mut reply = Reply::new(Status::Ok, visibility, "Request sent, waiting for an admin to approve");
    if let Some(g) = group {
        reply = reply.field("Group id", Rich::new().code(g.id.as_str()));
    }
    reply
}

/// Some numbers were invalid; nothing was sent.
pub fn invalid_numbers(invalid: &[InvalidNumber]) -> Reply {
    let n = invalid.len();
    let mut reply = Reply::user_error(format!(
        "{n} {} not valid; nothing was sent",
        if n == 1 { "number is" } else { "numbers are" }
    ));
    for i in invalid {
        reply = reply.line(Rich::new().code(i.input.clone()).text(format!(": {}", i.reason)));
    }
    reply.footer("Numbers without a country code use the configured default region.")
}

/// An add with no numbers at all.
pub fn no_numbers(usage: String) -> Reply {
    Reply::user_error("No numbers given").footer(Rich::new().text("Usage: ").code(usage))
}

/// More numbers than the limit.
pub fn too_many_numbers(count: usize, limit: usize, by_role: bool) -> Reply {
    let whose = if by_role { "your role allows" } else { "waops allows" };
    Reply::user_error(format!("Too many numbers: {count}; {whose} at most {limit} per add"))
        .footer("Split the list into smaller adds.")
}

fn number_lines(reply: Reply, numbers: &[Accepted]) -> Reply {
    numbers
        .iter()
        .fold(reply, |r, a| r.line(Rich::new().code(a.number.as_str())))
}

fn duplicates_footer(reply: Reply, duplicates: &[Accepted]) -> Reply {
    if duplicates.is_empty() {
        return reply;
    }
    let inputs: Vec<_> = duplicates.iter().map(|d| d.input.as_str()).collect();
    reply.footer(format!(
        "Dropped {} duplicate(s): {}",
        duplicates.len(),
        inputs.join(", ")
    ))
}

/// `--dry-run`: what would be sent.
pub fn add_dry_run(group: &GroupInfo, numbers: &[Accepted], duplicates: &[Accepted]) -> Reply {
    let title = Rich::new()
        .text(format!("Dry run: would add {} to ", count(numbers.len(), "number")))
        .strong(group.label());
    let reply = Reply::info(title).field("Group id", Rich::new().code(group.id.as_str()));
    duplicates_footer(number_lines(reply, numbers), duplicates).footer("Nothing was sent.")
}

/// A large add waiting for `--yes` (console) or Apply (chat).
pub fn add_needs_confirmation(
    group: &GroupInfo,
    numbers: &[Accepted],
    duplicates: &[Accepted],
    confirm_over: usize,
    confirmation: Option<&str>,
) -> Reply {
    let title = Rich::new()
        .text(format!("This adds {} to ", count(numbers.len(), "number")))
        .strong(group.label());
    let reply = Reply::new(Status::Preview, Visibility::Ephemeral, title)
        .field("Group id", Rich::new().code(group.id.as_str()));
    let reply = duplicates_footer(number_lines(reply, numbers), duplicates);
    awaiting_confirmation(reply, &format!("More than {confirm_over} numbers"), confirmation)
}

/// A preview's Apply/Cancel buttons (chat) or the `--yes` hint (console),
/// after `why` it needs one.
fn awaiting_confirmation(mut reply: Reply, why: &str, confirmation: Option<&str>) -> Reply {
    match confirmation {
        Some(id) => {
            reply.buttons = vec![
                Button {
                    action: ButtonAction::Apply,
                    label: "Apply".into(),
                    value: id.to_string(),
                },
                Button {
                    action: ButtonAction::Cancel,
                    label: "Cancel".into(),
                    value: id.to_string(),
                },
            ];
            reply.footer(format!(
                "{why}: Apply within 15 minutes (only you can). Nothing was sent yet."
            ))
        }
        None => reply.footer(format!("{why}: run it again with --yes to apply. Nothing was sent.")),
    }
}

/// A preview under the two-person rule: its Apply becomes "Request approval".
pub fn for_approval(mut reply: Reply) -> Reply {
    for b in &mut reply.buttons {
        if b.action == ButtonAction::Apply {
            b.action = ButtonAction::RequestApproval;
            b.label = "Request approval".into();
        }
    }
    reply.footer.pop();
    reply.footer("Your role needs a second person's approval: request it within 15 minutes (only you can). Nothing was sent yet.")
}

/// The two-person rule from the console, which has no second person's button.
pub fn approval_needs_chat() -> Reply {
    Reply::user_error("Your role needs a second person's approval for this")
        .footer("Run it from Slack or Discord and press Request approval. Nothing was sent.")
}

/// The request, posted in the channel with Approve and Reject.
pub fn approval_request(requester: &str, command_text: &str, id: &str, ttl: std::time::Duration) -> Reply {
    let shown = command_text.trim_end().trim_end_matches("--yes").trim_end();
    let mut reply = Reply::new(
        Status::Preview,
        Visibility::Channel,
        Rich::new().text(format!("{requester} asks for approval")),
    )
    .line(Rich::new().code(format!("/wa {shown}")));
    reply.buttons = vec![
        Button {
            action: ButtonAction::Approve,
            label: "Approve".into(),
            value: id.to_string(),
        },
        Button {
            action: ButtonAction::Reject,
            label: "Reject".into(),
            value: id.to_string(),
        },
    ];
    reply.footer(format!(
        "Someone else whose roles grant approve may decide within {}. Nothing was sent yet.",
        format_duration(ttl)
    ))
}

/// To the requester: the request is in the channel.
pub fn approval_requested() -> Reply {
    Reply::info("Approval requested: the request is in this channel for a second person")
}

/// The requester pressed Approve on their own request.
pub fn approval_own() -> Reply {
    Reply::user_error("You cannot approve your own request").footer("A second person must. Nothing was sent.")
}

/// The approver's roles do not grant `approve` for it.
pub fn approval_not_allowed(command: &str) -> Reply {
    Reply::user_error(
        Rich::new()
            .text("You may not approve ")
            .code(command)
            .text(" here (no role grants approve on it; ask an admin)"),
    )
}

/// Decided already, or expired.
pub fn approval_gone() -> Reply {
    Reply::user_error("This request was already decided or has expired").footer("Nothing was sent again.")
}

/// A rejected request, in the channel.
pub fn approval_rejected(requester: &str, by: &str) -> Reply {
    Reply::new(
        Status::Ok,
        Visibility::Channel,
        format!("Rejected by {by}: {requester}'s request was not run"),
    )
}

/// An approved command's result, naming both people.
pub fn approved(reply: Reply, requester: &str, by: &str) -> Reply {
    reply.footer(format!("Requested by {requester}, approved by {by}."))
}

/// A button click on a preview that cannot be applied.
pub fn confirmation_gone() -> Reply {
    Reply::user_error("This preview was already applied or cancelled, has expired (15 minutes), or is not yours")
        .footer("Nothing was sent again. Run the command once more for a new preview.")
}

/// A cancelled preview.
pub fn cancelled() -> Reply {
    Reply::info("Cancelled; nothing was sent")
}

/// The immediate answer while a command runs off the request path.
pub fn working() -> Reply {
    Reply::info("Working on it…")
}

/// Slack could not say which user groups the caller is in; nothing ran.
pub fn usergroups_unavailable() -> Reply {
    Reply::user_error("waops could not check your Slack user groups; try again in a moment").footer("Nothing was run.")
}

/// A workspace or server outside `slack.team_ids` / `discord.guild_ids`.
pub fn place_not_served(place: &str) -> Reply {
    Reply::user_error(format!("This waops does not serve this {place}"))
        .footer("Nothing was run. Ask the people who run waops to add it.")
}

/// The answer when every worker is busy.
pub fn busy() -> Reply {
    Reply::user_error("waops is busy; try again in a moment").footer("Nothing was run.")
}

/// A progress update of a bulk add.
pub fn progress(done: usize, total: usize) -> Reply {
    Reply::info(format!("Adding… {done}/{total}"))
}

/// The result of an add, one line per number and a summary.
pub fn add_result(group: &GroupInfo, results: &[AddResult], duplicates: &[Accepted], visibility: Visibility) -> Reply {
    let mut tally = [0usize; 6];
    let mut reply = Reply::new(
        Status::Ok,
        visibility,
        Rich::new().text("Add to ").strong(group.label()),
    );
    for r in results {
        let (slot, text) = match &r.outcome {
            AddOutcome::Added => (0, "added".to_string()),
            AddOutcome::InviteSent => (1, "invite sent (privacy settings)".to_string()),
            AddOutcome::AlreadyMember => (2, "already a member".to_string()),
            AddOutcome::NotOnWhatsApp => (3, "not on WhatsApp".to_string()),
            AddOutcome::Failed(reason) => (4, format!("failed ({reason})")),
            AddOutcome::Requested => (5, "requested (the provider does not confirm each number)".to_string()),
        };
        tally[slot] += 1;
        reply = reply.line(Rich::new().code(r.number.as_str()).text(format!(" — {text}")));
    }
    let mut summary = format!(
        "{} added, {} invite sent, {} already a member, {} not on WhatsApp, {} failed",
        tally[0], tally[1], tally[2], tally[3], tally[4]
    );
    if tally[5] > 0 {
        summary.push_str(&format!(", {} requested", tally[5]));
    }
    duplicates_footer(reply.footer(summary), duplicates)
}

/// The reason shown for numbers an interrupted add never sent.
pub const NOT_SENT: &str = "not sent: stopped after an earlier error";

/// An add that stopped part-way: what was done stays in the reply, with why it stopped.
pub fn add_stopped(reply: Reply, done: usize, total: usize, error: &ProviderError, provider: ProviderKind) -> Reply {
    let why = provider_error(error, provider).title.plain();
    reply.footer(format!("Stopped after {done} of {total} numbers: {why}"))
}

/// The group's invite link.
pub fn invite_link(group: &GroupInfo, code: &InviteCode, visibility: Visibility) -> Reply {
    Reply::new(
        Status::Ok,
        visibility,
        Rich::new().text("Invite link for ").strong(group.label()),
    )
    .line(Rich::new().link(code.link()))
}

/// A reset invite link.
pub fn invite_reset(group: &GroupInfo, code: &InviteCode, visibility: Visibility) -> Reply {
    Reply::new(
        Status::Ok,
        visibility,
        Rich::new().text("New invite link for ").strong(group.label()),
    )
    .line(Rich::new().link(code.link()))
    .footer("The old link no longer works.")
}

/// The provider cannot reset links.
pub fn reset_unsupported(provider: ProviderKind) -> Reply {
    Reply::user_error(format!("The {} provider cannot reset invite links", provider.as_str()))
        .footer("Reset it in WhatsApp, then run /wa invite <group> to show the new link.")
}

/// A time as "2026-11-24 10:00 UTC (2h ago)".
pub fn when(at: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(at).as_secs();
    let relative = match secs {
        s if s < 60 => "just now".to_string(),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s if s < 14 * 86_400 => format!("{}d ago", s / 86_400),
        s => format!("{}w ago", s / 604_800),
    };
    format!("{} UTC ({relative})", at.strftime("%Y-%m-%d %H:%M"))
}

/// A party as shown: masked numbers unless configured otherwise.
pub fn party(p: &Party, mask: bool) -> String {
    match p {
        Party::Number(n) if mask => n.masked(),
        Party::Number(n) => n.to_string(),
        Party::Other(s) => s.clone(),
    }
}

/// Where history comes from, in words.
pub fn history_source(source: HistorySource, provider: ProviderKind, journal_since: Option<Timestamp>) -> String {
    match (source, journal_since) {
        (HistorySource::Provider, _) => format!("Source: the {} provider's history.", provider.as_str()),
        (HistorySource::Journal, Some(since)) => format!(
            "History on {} comes from events waops has received since {}.",
            provider.as_str(),
            since.strftime("%Y-%m-%d %H:%M UTC")
        ),
        (HistorySource::Journal, None) => format!(
            "History on {} comes from events waops receives; none yet.",
            provider.as_str()
        ),
    }
}

/// Events beyond those a history reply shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum More {
    /// None.
    None,
    /// At least one; reading stopped before counting them.
    Some,
    /// This many.
    Count(usize),
}

/// Membership history, newest first.
#[allow(clippy::too_many_arguments)]
pub fn history(
    group: &GroupInfo,
    events: &[MemberEvent],
    more: More,
    now: Timestamp,
    mask: bool,
    source_line: String,
    visibility: Visibility,
) -> Reply {
    let mut reply = Reply::new(
        Status::Ok,
        visibility,
        Rich::new().text("Membership history of ").strong(group.label()),
    );
    if events.is_empty() {
        reply = reply.line("No membership changes in this period.");
    }
    for e in events {
        let mut line = format!("{} · {}", when(e.at, now), e.kind);
        let subjects: Vec<_> = e.subjects.iter().map(|p| party(p, mask)).collect();
        if !subjects.is_empty() {
            line.push_str(&format!(" · {}", subjects.join(", ")));
        }
        if let Some(actor) = &e.actor {
            line.push_str(&format!(" by {}", party(actor, mask)));
        }
        if let Some(detail) = &e.detail {
            line.push_str(&format!(" ({detail})"));
        }
        reply = reply.line(line);
    }
    match more {
        More::None => {}
        More::Some => reply = reply.footer("More — use --limit/--since"),
        More::Count(n) => reply = reply.footer(format!("{n} more — use --limit/--since")),
    }
    reply.footer(source_line)
}

/// The groups list.
pub fn groups(groups: &[GroupInfo], filter: Option<&str>, hidden: usize) -> Reply {
    let title = match filter {
        Some(f) => format!("{} matching \"{f}\"", count(groups.len(), "group")),
        None => count(groups.len(), "group"),
    };
    let mut reply = Reply::info(title);
    // An Account column when several numbers are configured; an Admin column
    // when the provider's list says (add, remove and invite need it).
    let accounts = groups.iter().any(|g| g.account.is_some());
    let admins = groups.iter().any(|g| g.admin.is_some());
    if !groups.is_empty() {
        let mut headers = vec!["Name".to_string()];
        if accounts {
            headers.push("Account".into());
        }
        headers.push("Id".into());
        if admins {
            headers.push("Admin".into());
        }
        let row = |g: &GroupInfo| {
            let mut row = vec![g.name.clone()];
            if accounts {
                row.push(g.account.as_deref().unwrap_or_default().to_string());
            }
            row.push(g.id.to_string());
            if admins {
                let admin = match g.admin {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                };
                row.push(admin.into());
            }
            row
        };
        reply.table = Some(Table {
            headers,
            rows: groups.iter().map(row).collect(),
        });
    }
    if groups.iter().any(|g| g.admin == Some(false)) {
        reply = reply.footer("Admin: whether the connected number is a group admin; add, remove and invite need it.");
    }
    if hidden > 0 {
        reply = reply.footer(format!("{hidden} more your roles do not cover are not shown."));
    }
    reply
}

/// A subscription was created or changed.
pub fn subscribed(s: &Subscription, created: bool) -> Reply {
    let verb = match (s.live, created) {
        (true, true) => "Subscribed this channel to live alerts of ",
        (true, false) => "This channel already has live alerts of ",
        (false, true) => "Subscribed this channel to digests of ",
        (false, false) => "Updated this channel's digests of ",
    };
    Reply::info(Rich::new().text(verb).strong(s.group_name.clone())).line(schedule(s))
}

/// Subscriptions removed.
pub fn unsubscribed(removed: u64, what: &str) -> Reply {
    if removed == 0 {
        return Reply::user_error(
            Rich::new()
                .text("This channel has no digest subscription for ")
                .strong(what),
        )
        .footer(Rich::new().text("See ").code("/wa subscriptions").text("."));
    }
    Reply::info(
        Rich::new()
            .text(format!(
                "Stopped {} for ",
                count(removed as usize, "digest subscription")
            ))
            .strong(what),
    )
}

/// A channel's subscriptions.
pub fn subscriptions(list: &[Subscription]) -> Reply {
    if list.is_empty() {
        return Reply::info("This channel has no digest subscriptions").footer(
            Rich::new()
                .text("Start one with ")
                .code("/wa subscribe <group|*>")
                .text("."),
        );
    }
    let mut reply = Reply::info(format!("This channel has {}", count(list.len(), "digest subscription")));
    reply.table = Some(Table {
        headers: vec!["Group".into(), "Schedule".into(), "Since".into()],
        rows: list
            .iter()
            .map(|s| {
                vec![
                    s.group_name.clone(),
                    schedule(s),
                    s.created_at.strftime("%Y-%m-%d").to_string(),
                ]
            })
            .collect(),
    });
    reply
}

fn schedule(s: &Subscription) -> String {
    if s.live {
        return "live: each change within seconds".into();
    }
    let every = format_duration(std::time::Duration::from_secs(s.every_s as u64));
    match &s.at_time {
        Some(at) => format!("every {every} at {at} {}", s.tz),
        None => format!("every {every} ({})", s.tz),
    }
}

/// A command cut short by a shutdown.
pub fn interrupted(request_id: &str) -> Reply {
    Reply::user_error("Interrupted: waops was restarting before this finished")
        .line("It may have partly happened. Check before you retry (for an add, /wa history <group>).")
        .footer(Rich::new().text("ref ").code(request_id))
}

/// An identical add within the dedupe window: the first one's result, marked.
pub fn add_repeated(earlier: Reply, at: Timestamp, now: Timestamp) -> Reply {
    earlier.footer(format!(
        "Same as your add at {}: this is its result; nothing was sent again.",
        when(at, now)
    ))
}

/// An identical add is still running.
pub fn add_still_running(at: Timestamp, now: Timestamp) -> Reply {
    Reply::user_error(format!(
        "The same add, sent {}, is still running; its result will be posted",
        when(at, now)
    ))
    .footer("Nothing was sent again.")
}

/// People listed per kind in a digest before "and N more".
const DIGEST_PARTIES: usize = 25;

/// A channel's digest of one window: per group, each kind of change with whom
/// it affected. `groups` are (name, events oldest first); empty ones are skipped.
pub fn digest(
    s: &Subscription,
    window: (Timestamp, Timestamp),
    groups: &[(String, Vec<MemberEvent>)],
    mask: bool,
) -> Reply {
    let tz = s.schedule().tz;
    let local = |t| wall_clock(&tz, t).strftime("%Y-%m-%d %H:%M").to_string();
    let total: usize = groups.iter().map(|(_, e)| e.len()).sum();
    let mut reply = if s.live {
        // A live alert: what just happened, no window to name.
        Reply::new(
            Status::Ok,
            Visibility::Channel,
            Rich::new().text("Just now: ").strong(s.group_name.clone()),
        )
    } else {
        Reply::new(
            Status::Ok,
            Visibility::Channel,
            Rich::new().text("Digest: ").strong(s.group_name.clone()),
        )
        .line(format!(
            "{} to {} {} · {}",
            local(window.0),
            local(window.1),
            zone_name(&tz),
            count(total, "change")
        ))
    };
    if total == 0 {
        reply = reply.line("No membership changes in this window.");
    }
    let several = s.group_ref == "*";
    for (name, events) in groups.iter().filter(|(_, e)| !e.is_empty()) {
        if several {
            reply = reply.line(
                Rich::new()
                    .strong(name.clone())
                    .text(format!(" · {}", count(events.len(), "change"))),
            );
        }
        for kind in crate::values::EventKind::ALL {
            let of_kind: Vec<&MemberEvent> = events.iter().filter(|e| e.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let mut shown: Vec<String> = Vec::new();
            for e in &of_kind {
                let mut who: Vec<String> = e.subjects.iter().map(|p| party(p, mask)).collect();
                if let Some(detail) = &e.detail {
                    who.push(detail.clone());
                }
                if who.is_empty() {
                    who.push(
                        e.actor
                            .as_ref()
                            .map_or_else(|| "someone".to_string(), |a| party(a, mask)),
                    );
                }
                shown.extend(who);
            }
            let more = shown.len().saturating_sub(DIGEST_PARTIES);
            shown.truncate(DIGEST_PARTIES);
            let mut line = format!("{} ({}): {}", kind, of_kind.len(), shown.join(", "));
            if more > 0 {
                line.push_str(&format!(" … and {more} more"));
            }
            reply = reply.line(line);
        }
    }
    reply.footer(Rich::new().text("Full list: ").code("/wa history <group> --since …"))
}

/// Help: the commands the caller may run here.
pub fn help_overview(runnable: &[&CommandSpec], notes: &[String], blocked: Option<Refusal>) -> Reply {
    let mut reply = Reply::info("waops commands you can run here");
    for spec in runnable {
        reply = reply.line(Rich::new().code(spec.usage()).text(format!(" — {}", spec.summary)));
    }
    if let Some(refusal) = blocked {
        reply = reply.footer(format!(
            "You may not run any WhatsApp command here ({}).",
            refusal.reason()
        ));
        reply = reply.footer(
            Rich::new()
                .code("/wa whoami")
                .text(" shows the id an admin needs to grant you a role."),
        );
    }
    for note in notes {
        reply = reply.footer(note.clone());
    }
    reply.footer(
        Rich::new()
            .code("/wa help <command>")
            .text(" shows one command's options."),
    )
}

/// Help for one command.
pub fn help_command(spec: &CommandSpec, refusal: Option<Refusal>, notes: &[String]) -> Reply {
    let mut reply = Reply::info(Rich::new().code(spec.usage())).line(spec.summary);
    for o in spec.options {
        let name = match o.value {
            Some(v) => format!("--{} {v}", o.name),
            None => format!("--{}", o.name),
        };
        reply = reply.line(Rich::new().code(name).text(format!(" — {}", o.help)));
    }
    if let Some(r) = refusal {
        reply = reply.footer(
            Rich::new()
                .text("You may not run ")
                .code(spec.id.as_str())
                .text(format!(" here ({}).", r.reason())),
        );
    }
    for note in notes {
        reply = reply.footer(note.clone());
    }
    reply
}

/// whoami.
pub fn whoami(
    caller: &str,
    other_principals: &[String],
    channel: &str,
    roles: &[String],
    commands: &[&str],
    groups: &[String],
    accounts: Option<&str>,
) -> Reply {
    let none = || Rich::from("none");
    let list = |items: &[String]| {
        if items.is_empty() {
            none()
        } else {
            Rich::from(items.join(", "))
        }
    };
    let mut reply = Reply::info(Rich::new().text("You are ").code(caller)).field("Channel", Rich::new().code(channel));
    if !other_principals.is_empty() {
        reply = reply.field("Also", list(other_principals));
    }
    reply = reply.field("Roles", list(roles));
    let commands: Vec<String> = commands.iter().map(|c| c.to_string()).collect();
    reply = reply.field("Commands", list(&commands)).field("Groups", list(groups));
    match accounts {
        Some(accounts) => reply.field("Accounts", accounts),
        None => reply,
    }
}

/// How a member change reads: the verb, its preposition and what is already so.
fn change_words(change: MemberChange) -> (&'static str, &'static str, &'static str) {
    match change {
        MemberChange::Remove => ("remove", "from", "not a member"),
        MemberChange::Promote => ("promote", "in", "already an admin"),
        MemberChange::Demote => ("demote", "in", "not an admin"),
    }
}

/// One number's line in a member change's plan or result.
fn change_line(number: &crate::phone::E164, outcome: &ChangeOutcome, change: MemberChange) -> Rich {
    let (_, _, already) = change_words(change);
    let text = match outcome {
        ChangeOutcome::Done => change.done().to_string(),
        ChangeOutcome::NotAMember => "not a member".to_string(),
        ChangeOutcome::AlreadySo => already.to_string(),
        ChangeOutcome::Failed(reason) => format!("failed ({reason})"),
    };
    Rich::new().code(number.as_str()).text(format!(" — {text}"))
}

/// A member change's plan: the numbers it would change and those it leaves.
fn change_plan(
    mut reply: Reply,
    to_change: &[crate::phone::E164],
    left: &[ChangeResult],
    change: MemberChange,
) -> Reply {
    for n in to_change {
        reply = reply.line(
            Rich::new()
                .code(n.as_str())
                .text(format!(" — will be {}", change.done())),
        );
    }
    for r in left {
        reply = reply.line(change_line(&r.number, &r.outcome, change));
    }
    reply
}

/// `remove|promote|demote --dry-run`: what would be sent.
pub fn change_dry_run(
    group: &GroupInfo,
    change: MemberChange,
    to_change: &[crate::phone::E164],
    left: &[ChangeResult],
) -> Reply {
    let (verb, prep, _) = change_words(change);
    let title = Rich::new()
        .text(format!(
            "Dry run: would {verb} {} {prep} ",
            count(to_change.len(), "number")
        ))
        .strong(group.label());
    let reply = Reply::info(title).field("Group id", Rich::new().code(group.id.as_str()));
    change_plan(reply, to_change, left, change).footer("Nothing was sent.")
}

/// A large member change waiting for `--yes` (console) or Apply (chat).
pub fn change_needs_confirmation(
    group: &GroupInfo,
    change: MemberChange,
    to_change: &[crate::phone::E164],
    left: &[ChangeResult],
    confirm_over: usize,
    confirmation: Option<&str>,
) -> Reply {
    let (verb, prep, _) = change_words(change);
    let title = Rich::new()
        .text(format!("This will {verb} {} {prep} ", count(to_change.len(), "number")))
        .strong(group.label());
    let reply = Reply::new(Status::Preview, Visibility::Ephemeral, title)
        .field("Group id", Rich::new().code(group.id.as_str()));
    let reply = change_plan(reply, to_change, left, change);
    awaiting_confirmation(reply, &format!("More than {confirm_over} numbers"), confirmation)
}

/// A member change's per-number result with a tally.
pub fn change_result(
    group: &GroupInfo,
    change: MemberChange,
    results: &[ChangeResult],
    visibility: Visibility,
) -> Reply {
    let (verb, prep, already) = change_words(change);
    let mut verb = verb.to_string();
    verb[..1].make_ascii_uppercase();
    let mut reply = Reply::new(
        Status::Ok,
        visibility,
        Rich::new().text(format!("{verb} {prep} ")).strong(group.label()),
    );
    for r in results {
        reply = reply.line(change_line(&r.number, &r.outcome, change));
    }
    reply.footer(change_tally(change, results.iter().map(|r| &r.outcome), already))
}

/// "2 removed, 1 not a member, 0 failed".
fn change_tally<'a>(change: MemberChange, outcomes: impl Iterator<Item = &'a ChangeOutcome>, already: &str) -> String {
    let mut tally = [0usize; 4];
    for o in outcomes {
        tally[match o {
            ChangeOutcome::Done => 0,
            ChangeOutcome::NotAMember => 1,
            ChangeOutcome::AlreadySo => 2,
            ChangeOutcome::Failed(_) => 3,
        }] += 1;
    }
    let mut parts = vec![format!("{} {}", tally[0], change.done())];
    if change != MemberChange::Remove || tally[1] > 0 {
        parts.push(format!("{} not a member", tally[1]));
    }
    if change != MemberChange::Remove {
        parts.push(format!("{} {already}", tally[2]));
    }
    parts.push(format!("{} failed", tally[3]));
    parts.join(", ")
}

/// One group of an offboarding: who goes from it.
pub struct OffboardGroup<'a> {
    /// The group.
    pub group: &'a GroupInfo,
    /// Its members among the numbers.
    pub numbers: Vec<crate::phone::E164>,
}

/// `remove *`'s preview: per group who would go, and where they stay.
pub fn offboard_preview(
    plan: &[OffboardGroup<'_>],
    not_admin: &[OffboardGroup<'_>],
    unreadable: &[(&GroupInfo, String)],
    dry_run: bool,
    confirmation: Option<&str>,
) -> Reply {
    let numbers: usize = plan.iter().map(|g| g.numbers.len()).sum();
    let title = format!(
        "{}emove {} from {}",
        if dry_run { "Dry run: would r" } else { "This will r" },
        count(numbers, "membership"),
        count(plan.len(), "group")
    );
    let mut reply = if dry_run {
        Reply::info(title)
    } else {
        Reply::new(Status::Preview, Visibility::Ephemeral, title)
    };
    for g in plan {
        reply = reply.line(offboard_line(
            Rich::new().strong(g.group.label()).text(": "),
            &g.numbers,
        ));
    }
    reply = offboard_left(reply, not_admin, unreadable);
    if dry_run {
        reply.footer("Nothing was sent.")
    } else if plan.is_empty() {
        reply.footer("Nothing to remove.")
    } else {
        awaiting_confirmation(reply, "Offboarding", confirmation)
    }
}

/// The groups an offboarding cannot act on, named (they are in the caller's scope).
fn offboard_left(mut reply: Reply, not_admin: &[OffboardGroup<'_>], unreadable: &[(&GroupInfo, String)]) -> Reply {
    for g in not_admin {
        reply = reply.line(offboard_line(
            Rich::new()
                .text("Stays in ")
                .strong(g.group.label())
                .text(" (the connected number is not an admin there): "),
            &g.numbers,
        ));
    }
    for (group, why) in unreadable {
        reply = reply.line(
            Rich::new()
                .text("Not checked: ")
                .strong(group.label())
                .text(format!(" ({why})")),
        );
    }
    reply
}

fn offboard_line(mut line: Rich, numbers: &[crate::phone::E164]) -> Rich {
    for (i, n) in numbers.iter().enumerate() {
        if i > 0 {
            line = line.text(", ");
        }
        line = line.code(n.as_str());
    }
    line
}

/// No number of an offboarding is in a group the caller may use.
pub fn offboard_nothing() -> Reply {
    Reply::info("None of these numbers is a member of a group you may use").footer("Nothing was sent.")
}

/// One group's part of an offboarding's result.
pub struct OffboardDone<'a> {
    /// The group.
    pub group: &'a GroupInfo,
    /// Per number.
    pub results: Vec<ChangeResult>,
    /// Why the group stopped part-way, if it did.
    pub stopped: Option<String>,
}

/// `remove *`'s result: per group, per number.
pub fn offboard_result(
    done: &[OffboardDone<'_>],
    not_admin: &[OffboardGroup<'_>],
    unreadable: &[(&GroupInfo, String)],
    visibility: Visibility,
) -> Reply {
    let removed = done
        .iter()
        .flat_map(|g| &g.results)
        .filter(|r| r.outcome == ChangeOutcome::Done)
        .count();
    let mut reply = Reply::new(
        Status::Ok,
        visibility,
        format!(
            "Removed {} from {}",
            count(removed, "membership"),
            count(done.len(), "group")
        ),
    );
    for g in done {
        let mut line = Rich::new().strong(g.group.label()).text(": ");
        for (i, r) in g.results.iter().enumerate() {
            if i > 0 {
                line = line.text(", ");
            }
            line = line.append(change_line(&r.number, &r.outcome, MemberChange::Remove));
        }
        if let Some(why) = &g.stopped {
            line = line.text(format!(" (stopped: {why})"));
        }
        reply = reply.line(line);
    }
    let reply = offboard_left(reply, not_admin, unreadable);
    reply.footer(change_tally(
        MemberChange::Remove,
        done.iter().flat_map(|g| &g.results).map(|r| &r.outcome),
        "",
    ))
}

/// A group's members, admins first.
pub fn members(group: &GroupInfo, list: &[Member], filter: Option<&str>, mask: bool, visibility: Visibility) -> Reply {
    let mut title = Rich::new()
        .text(format!("{} of ", count(list.len(), "member")))
        .strong(group.label());
    if let Some(f) = filter {
        title = title.text(format!(" matching \"{f}\""));
    }
    let mut reply = Reply::new(Status::Ok, visibility, title);
    for m in list {
        let mut line = party(&m.party, mask);
        if let Some(name) = &m.name {
            line.push_str(&format!(" ({name})"));
        }
        match m.role {
            Role::SuperAdmin => line.push_str(" — admin (creator)"),
            Role::Admin => line.push_str(" — admin"),
            Role::Member => {}
        }
        reply = reply.line(line);
    }
    reply
}

/// One audit row as `audit` shows it.
pub struct AuditLine<'a> {
    /// When.
    pub at: Timestamp,
    /// Who.
    pub principal: &'a str,
    /// Where.
    pub channel: &'a str,
    /// Which command.
    pub command: &'a str,
    /// The group, by name where known.
    pub group: Option<String>,
    /// Numbers it carried.
    pub numbers: i64,
    /// allowed, refused, invalid, ...
    pub decision: &'a str,
    /// How it ended.
    pub outcome: &'a str,
    /// Its request id.
    pub request_id: &'a str,
    /// Who approved it (two-person rule).
    pub approver: Option<&'a str>,
}

/// The audit log, newest first.
pub fn audit(lines: &[AuditLine<'_>], limit: usize, now: Timestamp, visibility: Visibility) -> Reply {
    let mut reply = Reply::new(
        Status::Ok,
        visibility,
        format!("Audit log: {}, newest first", count(lines.len(), "row")),
    );
    if lines.is_empty() {
        reply = reply.line("No rows match.");
    }
    for l in lines {
        let mut line = Rich::new()
            .text(format!("{} · {} in {} · ", when(l.at, now), l.principal, l.channel))
            .code(l.command);
        if let Some(group) = &l.group {
            line = line.text(" · ").strong(group.clone());
        }
        if l.numbers > 0 {
            line = line.text(format!(" · {}", count(l.numbers as usize, "number")));
        }
        line = line.text(format!(" · {} · {}", l.decision, l.outcome));
        if let Some(approver) = l.approver {
            line = line.text(format!(" · approved by {approver}"));
        }
        line = line.text(" · ref ").code(l.request_id);
        reply = reply.line(line);
    }
    if lines.len() == limit {
        reply = reply.footer("There may be more: narrow with --since/--user/--command/--group or raise --limit.");
    }
    reply
}

fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_sentence_matches_the_spec() {
        let r = refused(CommandId::Add, Some("Sales Team"), Refusal::Command);
        assert_eq!(
            r.title.plain(),
            "You may not run add on Sales Team (no role grants it; ask an admin)"
        );
        assert_eq!(
            crate::reply::plain(&r, false),
            "You may not run `add` on Sales Team (no role grants it; ask an admin)\n"
        );
        assert_eq!(r.status, Status::UserError);
        assert_eq!(r.visibility, Visibility::Ephemeral);
    }

    #[test]
    fn internal_error_shows_only_the_ref() {
        assert_eq!(internal("abc123").plain(), "Something went wrong (ref abc123)\n");
    }

    #[test]
    fn relative_times() {
        let now: Timestamp = "2026-11-24T12:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(when(at("2026-11-24T11:59:30Z"), now), "2026-11-24 11:59 UTC (just now)");
        assert_eq!(when(at("2026-11-24T11:15:00Z"), now), "2026-11-24 11:15 UTC (45m ago)");
        assert_eq!(when(at("2026-11-24T10:00:00Z"), now), "2026-11-24 10:00 UTC (2h ago)");
        assert_eq!(when(at("2026-11-21T12:00:00Z"), now), "2026-11-21 12:00 UTC (3d ago)");
        assert_eq!(when(at("2026-10-24T12:00:00Z"), now), "2026-10-24 12:00 UTC (4w ago)");
    }

    #[test]
    fn provider_errors_have_sentences() {
        let e = |kind| {
            provider_error(
                &ProviderError {
                    kind,
                    trace_id: Some("t-1".into()),
                },
                ProviderKind::Periskope,
            )
            .plain()
        };
        assert_eq!(
            e(ProviderErrorKind::RateLimited(Some(std::time::Duration::from_secs(30)))),
            "The periskope provider is rate limiting waops; try again in 30s\n"
        );
        assert!(
            e(ProviderErrorKind::NotAdmin).starts_with("The connected WhatsApp number is not an admin of that group\n")
        );
        assert!(
            !e(ProviderErrorKind::Upstream(502)).contains("t-1"),
            "trace ids stay in logs"
        );
    }
}
