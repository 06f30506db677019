//! The ten commands. Each file holds its spec row, typed arguments, a pure
//! `parse` and `run`; `dispatch` is the one path every frontend calls:
//! parse → permit → resolve → permit on the group → run → audit.

pub mod add;
pub mod approval;
pub mod audit;
pub mod change;
pub mod groups;
pub mod help;
pub mod history;
pub mod invite;
pub mod join;
pub mod members;
pub mod subscribe;
pub mod whoami;

use tracing::Instrument;

use crate::core::messages;
use crate::core::parser;
use crate::core::permissions::{Decision, Grant, Refusal, Target};
use crate::core::reply::{Reply, Status, Visibility};
use crate::core::{Account, CommandId, Context, Invocation, Progress};
use crate::group_ref::{self, GroupInfo, Resolve};
use crate::providers::ProviderError;
use crate::store::AuditRecord;

pub use waops_core::command::{spec, Command, Parsed, TargetRef};

/// How a command failed.
#[derive(Debug)]
pub enum CommandError {
    /// Shown as written (bad input the parser could not see, a limit, ...).
    User(Reply),
    /// The provider failed or said no.
    Provider(ProviderError),
    /// Our fault: logged with context, shown as "Something went wrong (ref ...)".
    Internal(anyhow::Error),
}

impl From<ProviderError> for CommandError {
    fn from(e: ProviderError) -> Self {
        CommandError::Provider(e)
    }
}

impl From<anyhow::Error> for CommandError {
    fn from(e: anyhow::Error) -> Self {
        CommandError::Internal(e)
    }
}

/// One running command: what it may use and what it reports to the audit log.
pub struct Call<'a> {
    /// Shared state.
    pub ctx: &'a Context,
    /// The request.
    pub inv: &'a Invocation,
    /// Why it was allowed.
    pub grant: Grant,
    /// Where long commands report progress, if the frontend shows it.
    pub progress: Option<&'a dyn Progress>,
    /// The account `--account` or the channel's default chose, if any.
    pub account: Option<&'a Account>,
}

impl<'a> Call<'a> {
    /// The account of a command without a group (`join`): the chosen one, or
    /// the only one (prepare refuses the command when neither exists).
    pub fn account(&self) -> &'a Account {
        self.account.unwrap_or_else(|| self.ctx.accounts.first())
    }

    /// Every group of the chosen account (or of all), freshly listed: for
    /// commands over every group (`groups`, offboarding), which must not
    /// leave an account out, so any account's failure is the answer.
    pub async fn every_group(&self) -> Result<Vec<GroupInfo>, ProviderError> {
        let mut groups = Vec::new();
        for account in self.ctx.accounts.chosen_or_all(self.account) {
            groups.extend(account.groups(true).await?.0.iter().cloned());
        }
        Ok(groups)
    }

    /// Whether the caller may run `command` on `group` here.
    pub fn may(&self, command: CommandId, group: &GroupInfo) -> bool {
        in_scope(self.ctx, self.inv, command, group)
    }

    /// Where results go, per `display.results`.
    pub fn result_visibility(&self) -> Visibility {
        match self.ctx.settings.display.results {
            crate::settings::ResultVisibility::Channel => Visibility::Channel,
            crate::settings::ResultVisibility::Ephemeral => Visibility::Ephemeral,
        }
    }
}

/// A resolved target.
enum Resolved {
    None,
    All,
    Group(GroupInfo),
    /// The reference matches only groups outside the caller's scope.
    OutOfScope,
}

/// A group reference looked up within the caller's scope.
enum Scoped {
    Group(GroupInfo),
    /// It matches groups, none of them in scope.
    OutOfScope,
    /// Only the provider's list could tell.
    NeedsLookup,
}

/// How `prepare` may resolve group names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Ask the provider when the cached group list does not answer.
    Provider,
    /// Use only a fresh cached list; otherwise report `NeedsLookup`.
    CacheOnly,
}

/// A command that was parsed, resolved and allowed, ready to run.
pub struct Ready {
    command: Command,
    group: Option<GroupInfo>,
    /// The account `--account` or the channel's default named.
    account: Option<std::sync::Arc<str>>,
    grant: Grant,
    audit: AuditRecord,
    /// An add's numbers, read once in `prepare`: `calls_provider` and the
    /// run (maybe in a follow-up) both use them.
    numbers: Option<crate::phone::NumberList>,
}

impl Ready {
    fn add_numbers(&self) -> &crate::phone::NumberList {
        self.numbers.as_ref().expect("prepare reads an add's numbers")
    }

    /// Whether running it calls the provider (so a chat frontend must answer
    /// "Working on it…" first and post the result later).
    pub fn calls_provider(&self, ctx: &Context) -> bool {
        match &self.command {
            // A member change reads the member list first, even for a dry run.
            Command::Join(_)
            | Command::Invite(_)
            | Command::History(_)
            | Command::Groups(_)
            | Command::Change(_)
            | Command::Members(_) => true,
            Command::Add(a) => add::calls_provider(a, self.add_numbers(), &ctx.settings),
            Command::Subscribe(_)
            | Command::Audit(_)
            | Command::Unsubscribe(_)
            | Command::Subscriptions
            | Command::Help(_)
            | Command::Whoami => false,
        }
    }
}

/// The part of a command's life that decides: parse, permit, resolve, permit on the group.
pub enum Prepared {
    /// Answered already (bad text, refused, no such group): the reply and its audit row.
    Answered(Reply, AuditRecord),
    /// Allowed; run it with `execute`.
    Ready(Ready),
    /// Deciding needs the provider's group list, which `Lookup::CacheOnly` forbids.
    NeedsLookup,
}

/// Runs one invocation end to end and writes its audit row. Never fails: every
/// error becomes a reply.
pub async fn dispatch(ctx: &Context, inv: &Invocation) -> Reply {
    dispatch_with_progress(ctx, inv, None).await
}

/// `dispatch`, reporting progress of long commands to `progress`.
pub async fn dispatch_with_progress(ctx: &Context, inv: &Invocation, progress: Option<&dyn Progress>) -> Reply {
    run_later(ctx, inv, Later::default(), progress).await
}

/// What an Apply or Cancel click on a preview comes to.
pub enum Confirmed {
    /// Nothing to run: the preview was used, cancelled, expired, is another
    /// person's, or the store could not tell. Tell the clicker this.
    Gone(Reply),
    /// Cancel: the preview is replaced with this.
    Cancelled(Reply),
    /// Apply: run the previewed command text in its channel (the caller's
    /// other principals, user groups or roles, are the adapter's to add).
    Apply {
        /// The channel the preview was made in.
        channel: crate::core::ChannelRef,
        /// The command, as previewed.
        text: String,
    },
}

/// Consumes the preview `confirmation` for `caller`, once: one conditional
/// update in the store, so a second click, another person's, or one on
/// another replica changes nothing. Both chat adapters call this.
pub async fn confirm(
    ctx: &Context,
    confirmation: &str,
    caller: &crate::core::Principal,
    apply: bool,
    request_id: &str,
) -> Confirmed {
    let now = ctx.clock.now();
    match ctx.store.consume_confirmation(confirmation, caller.as_str(), now).await {
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "confirmation lookup failed");
            Confirmed::Gone(messages::internal(request_id))
        }
        Ok(None) => Confirmed::Gone(messages::confirmation_gone()),
        Ok(Some(_)) if !apply => Confirmed::Cancelled(messages::cancelled()),
        Ok(Some(taken)) => Confirmed::Apply {
            channel: crate::core::ChannelRef::from_text(&taken.channel),
            text: taken.command_text,
        },
    }
}

/// What the ack path decided about a command.
pub enum Ack {
    /// Answered without the provider: help, whoami, bad text, refusals,
    /// previews, store-only commands. Send it in the HTTP response.
    Answered(Reply),
    /// Needs the provider: run `run_later` off the request path.
    Later(Later),
}

/// A command for the follow-up. When the ack path could decide it (the group
/// was in the cache), it carries that decision, so the follow-up neither parses
/// the text and numbers again nor checks the permissions again.
#[derive(Default)]
pub struct Later(Option<Box<Ready>>);

impl Later {
    /// True when the ack path parsed, resolved and allowed the command.
    pub fn is_decided(&self) -> bool {
        self.0.is_some()
    }
}

/// Answers without calling the provider when that is possible; otherwise
/// returns what the follow-up needs.
pub async fn answer_without_provider(ctx: &Context, inv: &Invocation) -> Ack {
    let started = std::time::Instant::now();
    async {
        let (reply, audit) = match prepare(ctx, inv, Lookup::CacheOnly).await {
            Prepared::Answered(reply, audit) => (reply, audit),
            Prepared::Ready(ready) => {
                if ready.calls_provider(ctx) {
                    return Ack::Later(Later(Some(Box::new(ready))));
                }
                execute(ctx, inv, ready, None).await
            }
            Prepared::NeedsLookup => return Ack::Later(Later::default()),
        };
        Ack::Answered(finish(ctx, inv, reply, audit, started, OnAckPath::Yes).await)
    }
    .instrument(command_span(inv))
    .await
}

/// Runs a command the ack path handed on: from its decision when it made one,
/// else from the start. Writes the audit row; never fails.
pub async fn run_later(ctx: &Context, inv: &Invocation, later: Later, progress: Option<&dyn Progress>) -> Reply {
    let started = std::time::Instant::now();
    async {
        let ready = match later.0 {
            Some(ready) => *ready,
            None => match prepare(ctx, inv, Lookup::Provider).await {
                Prepared::Answered(reply, audit) => {
                    return finish(ctx, inv, reply, audit, started, OnAckPath::No).await
                }
                Prepared::Ready(ready) => ready,
                Prepared::NeedsLookup => unreachable!("Lookup::Provider always decides"),
            },
        };
        let (reply, audit) = execute(ctx, inv, ready, progress).await;
        finish(ctx, inv, reply, audit, started, OnAckPath::No).await
    }
    .instrument(command_span(inv))
    .await
}

/// The audit row of an invocation, before the command fills in group, rule and
/// counts, and before `identified` copies in who and where.
fn audit_row(
    ctx: &Context,
    inv: &Invocation,
    command: &'static str,
    decision: &'static str,
    outcome: &'static str,
) -> AuditRecord {
    AuditRecord {
        at: ctx.clock.now(),
        request_id: String::new(),
        platform: inv.platform.as_str().into(),
        principal: String::new(),
        channel: String::new(),
        command: command.into(),
        group_id: None,
        numbers_count: 0,
        decision: decision.into(),
        rule: String::new(),
        outcome: outcome.into(),
        provider_trace_id: None,
        approver: None,
        account: None,
    }
}

/// The row with the invocation's request id, caller and channel, copied in as
/// it goes to the writer (one place for every row, however it ends).
fn identified(mut audit: AuditRecord, inv: &Invocation) -> AuditRecord {
    audit.request_id = inv.request_id.clone();
    audit.principal = inv.caller().to_string();
    audit.channel = inv.channel.to_string();
    audit.approver = inv.approved_by.as_ref().map(|p| p.to_string());
    audit
}

/// Audits a command that was not run at all. On the ack path, so it never
/// waits for the audit writer.
pub fn record_not_run(ctx: &Context, inv: &Invocation, outcome: &'static str) {
    ctx.audit.record_now(unfinished_row(ctx, inv, "not_run", outcome));
}

/// Audits a command refused because every follow-up slot is busy (summed up
/// under a flood: `AuditLog::record_busy`).
pub fn record_busy(ctx: &Context, inv: &Invocation) {
    ctx.audit.record_busy(unfinished_row(ctx, inv, "not_run", "busy"));
}

/// Audits a command cut short by shutdown (it may have partly happened).
pub async fn record_interrupted(ctx: &Context, inv: &Invocation) {
    ctx.audit
        .record(unfinished_row(ctx, inv, "allowed", "interrupted"))
        .await;
}

fn unfinished_row(ctx: &Context, inv: &Invocation, decision: &'static str, outcome: &'static str) -> AuditRecord {
    // Only the name: these commands parsed when they were accepted, and the
    // busy refusal is on the ack path, so the numbers are not parsed again.
    let command = parser::command_id(&inv.text).map_or("invalid", CommandId::as_str);
    identified(audit_row(ctx, inv, command, decision, outcome), inv)
}

/// Whether a command is answered in the chat platform's HTTP response.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnAckPath {
    Yes,
    No,
}

fn command_span(inv: &Invocation) -> tracing::Span {
    tracing::info_span!(
        "command",
        request_id = %inv.request_id,
        platform = inv.platform.as_str(),
        principal = %inv.caller(),
        channel = %inv.channel,
        command = tracing::field::Empty,
    )
}

async fn finish(
    ctx: &Context,
    inv: &Invocation,
    reply: Reply,
    audit: AuditRecord,
    started: std::time::Instant,
    path: OnAckPath,
) -> Reply {
    crate::telemetry::command_finished(&audit.command, &audit.outcome, started.elapsed().as_secs_f64());
    tracing::info!(decision = %audit.decision, outcome = %audit.outcome, "command finished");
    // The batch writer stores it; a row it cannot store goes to the error log.
    // An answer in the HTTP response never waits for a writer that is behind.
    let audit = identified(audit, inv);
    match path {
        OnAckPath::Yes => ctx.audit.record_now(audit),
        OnAckPath::No => ctx.audit.record(audit).await,
    }
    // An approved request's result names both people, as its audit row does.
    match &inv.approved_by {
        Some(by) => messages::approved(reply, inv.caller().as_str(), by.as_str()),
        None => reply,
    }
}

/// The account `--account` names, else the channel's default; `Err` with
/// the name when no account has it.
fn chosen_account<'c, 'n>(
    ctx: &'c Context,
    named: Option<&'n str>,
    channel: &'n str,
) -> Result<Option<&'c Account>, &'n str>
where
    'c: 'n,
{
    match named.or_else(|| ctx.settings.channel_account(channel)) {
        None => Ok(None),
        Some(name) => ctx.accounts.get(name).map(Some).ok_or(name),
    }
}

/// Whether the caller may run `command` on `group` here: the scope groups
/// are looked up, listed and acted on within.
fn in_scope(ctx: &Context, inv: &Invocation, command: CommandId, group: &GroupInfo) -> bool {
    matches!(
        ctx.permissions
            .decide(&inv.principals, command, &inv.channel, Target::Group(group)),
        Decision::Allowed(_)
    )
}

/// Parses, permits and resolves; writes nothing.
pub async fn prepare(ctx: &Context, inv: &Invocation, lookup: Lookup) -> Prepared {
    let mut audit = audit_row(ctx, inv, "invalid", "invalid", "user_error");
    let (mut command, named_account) = match Parsed::parse(&inv.text) {
        Ok(p) => (p.command, p.account),
        Err(e) => {
            if let Some(id) = e.command {
                audit.command = id.as_str().into();
            }
            audit.rule = e.message.clone();
            return Prepared::Answered(messages::usage_error(&e), audit);
        }
    };
    // `--yes` skips an add's preview. Only the console may type it: from chat
    // the preview's Apply button is the one way to confirm a large add (and
    // the command it applies carries waops' own `--yes`).
    let typed_in_chat = inv.platform != crate::core::Platform::Console && !inv.applied;
    if typed_in_chat {
        match &mut command {
            Command::Add(args) => args.yes = false,
            Command::Change(args) => args.yes = false,
            _ => {}
        }
    }
    let id = command.id();
    audit.command = id.as_str().into();
    tracing::Span::current().record("command", id.as_str());

    // Refuse early, before any provider call, when no role grants the command here.
    if let Err(refusal) = ctx.permissions.may_run(&inv.principals, id, &inv.channel) {
        audit.decision = "refused".into();
        audit.rule = refusal.reason().into();
        return Prepared::Answered(messages::refused(id, None, refusal), audit);
    }
    // The one account whose groups the command looks at, if any.
    let chosen = match chosen_account(ctx, named_account.as_deref(), inv.channel.as_str()) {
        Ok(chosen) => chosen,
        Err(name) => {
            audit.rule = format!("unknown account {name}");
            return Prepared::Answered(messages::unknown_account(name, &ctx.accounts.names()), audit);
        }
    };
    // Groups are looked up among those the caller may run this command on, so
    // candidates and matches never name one outside their scope.
    let in_scope = |g: &GroupInfo| in_scope(ctx, inv, id, g);
    let resolved = match command.target() {
        TargetRef::None => Resolved::None,
        TargetRef::All => Resolved::All,
        TargetRef::Group(reference) => {
            let result = match lookup {
                Lookup::Provider => resolve_group(ctx, reference, &in_scope, chosen).await,
                Lookup::CacheOnly => resolve_cached(ctx, reference, &in_scope, chosen).await,
            };
            match result {
                Ok(Scoped::Group(group)) => Resolved::Group(group),
                Ok(Scoped::OutOfScope) => Resolved::OutOfScope,
                Ok(Scoped::NeedsLookup) => return Prepared::NeedsLookup,
                Err(e) => {
                    audit.rule = "group not resolved".into();
                    let kind = chosen.unwrap_or_else(|| ctx.accounts.first()).provider.kind();
                    let reply = finish_error(inv, &mut audit, e, kind);
                    return Prepared::Answered(reply, audit);
                }
            }
        }
    };
    // A command on one account's number, not on a group (`join`), needs to
    // know which when there are several.
    let account_wide = id == CommandId::Join;
    if account_wide && chosen.is_none() && ctx.accounts.several() {
        audit.rule = "no account chosen".into();
        return Prepared::Answered(messages::which_account(id, &ctx.accounts.names()), audit);
    }
    if let (Resolved::All, Command::Subscribe(_) | Command::Unsubscribe(_), Some(_)) = (&resolved, &command, chosen) {
        audit.rule = "--account with *".into();
        return Prepared::Answered(messages::subscriptions_span_accounts(id), audit);
    }
    let decision = match &resolved {
        Resolved::None if account_wide => {
            let account = chosen.unwrap_or_else(|| ctx.accounts.first());
            ctx.permissions
                .decide(&inv.principals, id, &inv.channel, Target::Account(&account.name))
        }
        Resolved::None => ctx.permissions.decide(&inv.principals, id, &inv.channel, Target::None),
        // Offboarding acts on the groups in the caller's scope, whichever they
        // are: the command in this channel is what is decided here.
        Resolved::All if id == CommandId::Remove => {
            ctx.permissions.decide(&inv.principals, id, &inv.channel, Target::None)
        }
        Resolved::All => ctx
            .permissions
            .decide(&inv.principals, id, &inv.channel, Target::AllGroups),
        Resolved::Group(g) => {
            audit.group_id = Some(g.id.to_string());
            audit.account = Some(ctx.accounts.of(g).name.to_string());
            ctx.permissions
                .decide(&inv.principals, id, &inv.channel, Target::Group(g))
        }
        Resolved::OutOfScope => Decision::Refused(Refusal::Group),
    };
    let mut grant = match decision {
        Decision::Allowed(grant) => grant,
        Decision::Refused(refusal) => {
            audit.decision = "refused".into();
            audit.rule = refusal.reason().into();
            // Named as typed: the group's own name would tell what the reference matched.
            let named = match (&resolved, command.target()) {
                (Resolved::All, _) => Some("all groups"),
                (_, TargetRef::Group(reference)) => Some(reference),
                _ => None,
            };
            return Prepared::Answered(messages::refused(id, named, refusal), audit);
        }
    };
    if audit.account.is_none() {
        audit.account = chosen.map(|a| a.name.to_string());
    }
    audit.decision = "allowed".into();
    // Moved, not copied: the audit row is where the rule is read from now on.
    audit.rule = std::mem::take(&mut grant.rule);
    let group = match resolved {
        Resolved::Group(g) => Some(g),
        _ => None,
    };
    // After the permission checks: a refused add's numbers are never read.
    let tokens = match &command {
        Command::Add(a) => Some(&a.numbers),
        Command::Change(a) => Some(&a.numbers),
        _ => None,
    };
    let numbers = tokens.map(|t| crate::phone::parse_list(t, ctx.settings.region()));
    Prepared::Ready(Ready {
        command,
        group,
        account: chosen.map(|a| a.name.clone()),
        grant,
        audit,
        numbers,
    })
}

/// Runs a prepared command; returns its reply and completed audit row (not yet written).
pub async fn execute(
    ctx: &Context,
    inv: &Invocation,
    ready: Ready,
    progress: Option<&dyn Progress>,
) -> (Reply, AuditRecord) {
    let Ready {
        command,
        group,
        account,
        grant,
        mut audit,
        numbers,
    } = ready;
    let account = account.and_then(|name| ctx.accounts.get(&name));
    // The account whose provider an error came from, for its wording.
    let kind = match &group {
        Some(g) => ctx.accounts.of(g),
        None => account.unwrap_or_else(|| ctx.accounts.first()),
    }
    .provider
    .kind();
    let call = Call {
        ctx,
        inv,
        grant,
        progress,
        account,
    };
    // Counted for the audit row whatever the run does: the numbers it was asked to add.
    if let Some(list) = numbers.as_ref().filter(|l| l.invalid.is_empty()) {
        audit.numbers_count = list.valid.len() as i64;
    }
    // Each command's future is boxed: inline, every caller's future (an ack's,
    // and each follow-up task) would be as large as the largest command's.
    let (result, trace_id) = crate::providers::traced(async {
        match command {
            Command::Join(a) => Box::pin(join::run(&call, a)).await.map(add::Added::from),
            Command::Add(a) => {
                let numbers = numbers.expect("prepare reads an add's numbers");
                Box::pin(add::run(&call, a, group.expect("add has a group"), numbers)).await
            }
            Command::Change(a) => {
                let numbers = numbers.expect("prepare reads a change's numbers");
                match group {
                    Some(group) => Box::pin(change::run(&call, a, group, numbers)).await,
                    None => Box::pin(change::offboard(&call, a, numbers)).await,
                }
            }
            Command::Members(a) => Box::pin(members::run(&call, a, group.expect("members has a group")))
                .await
                .map(add::Added::from),
            Command::Audit(a) => Box::pin(audit::run(&call, a, group)).await.map(add::Added::from),
            Command::Invite(a) => Box::pin(invite::run(&call, a, group.expect("invite has a group")))
                .await
                .map(add::Added::from),
            Command::History(a) => Box::pin(history::run(&call, a, group.expect("history has a group")))
                .await
                .map(add::Added::from),
            Command::Groups(a) => Box::pin(groups::run(&call, a)).await.map(add::Added::from),
            Command::Subscribe(a) => Box::pin(subscribe::run(&call, a, group)).await.map(add::Added::from),
            Command::Unsubscribe(a) => Box::pin(subscribe::run_unsubscribe(&call, a, group))
                .await
                .map(add::Added::from),
            Command::Subscriptions => Box::pin(subscribe::run_list(&call)).await.map(add::Added::from),
            Command::Help(a) => help::run(&call, a).await.map(add::Added::from),
            Command::Whoami => whoami::run(&call).await.map(add::Added::from),
        }
    })
    .await;
    audit.provider_trace_id = trace_id;
    let reply = match result {
        Ok(add::Added {
            reply,
            partial,
            deduplicated,
            per_group,
        }) => {
            audit.outcome = match (&partial, reply.status) {
                (Some(e), _) => format!("partial:{}", e.kind.code()).into(),
                (None, Status::Ok) if deduplicated => "deduplicated".into(),
                (None, Status::Ok) => "ok".into(),
                (None, Status::Preview) => "preview".into(),
                (None, Status::UserError) => "user_error".into(),
                (None, Status::Internal) => "internal".into(),
            };
            if let Some(e) = &partial {
                audit.provider_trace_id = e.trace_id.clone();
                tracing::warn!(error = %e, trace_id = e.trace_id.as_deref().unwrap_or("-"), "command stopped part-way");
            }
            // One row per group (offboarding): this row becomes the first
            // group's, the others are written beside it.
            let mut rows = per_group.into_iter().map(|row| {
                let mut audit = audit.clone();
                audit.group_id = Some(row.group_id);
                audit.account = row.account;
                audit.numbers_count = row.numbers as i64;
                audit.outcome = row.outcome.into();
                audit
            });
            if let Some(first) = rows.next() {
                for row in rows {
                    ctx.audit.record(identified(row, inv)).await;
                }
                audit = first;
            }
            reply
        }
        Err(e) => finish_error(inv, &mut audit, e, kind),
    };
    (reply, audit)
}

fn finish_error(
    inv: &Invocation,
    audit: &mut AuditRecord,
    error: CommandError,
    kind: crate::providers::ProviderKind,
) -> Reply {
    match error {
        CommandError::User(reply) => {
            audit.outcome = "user_error".into();
            reply
        }
        CommandError::Provider(e) => {
            audit.outcome = format!("provider_error:{}", e.kind.code()).into();
            audit.provider_trace_id = e.trace_id.clone();
            tracing::warn!(error = %e, trace_id = e.trace_id.as_deref().unwrap_or("-"), "provider error");
            messages::provider_error(&e, kind)
        }
        CommandError::Internal(e) => {
            audit.outcome = "internal".into();
            tracing::error!(error = format!("{e:#}"), "internal error");
            messages::internal(&inv.request_id)
        }
    }
}

/// The group lists of `chosen` (or of every account), as one list: cached
/// unless `fresh`. With several accounts, those that answered, and the first
/// error of those that did not (so "no group matches" is never said while an
/// account could not be read). The flag says whether every list was fetched
/// by this call.
async fn group_lists(
    ctx: &Context,
    chosen: Option<&Account>,
    fresh: bool,
) -> Result<(std::sync::Arc<Vec<GroupInfo>>, bool, Option<ProviderError>), ProviderError> {
    let accounts = ctx.accounts.chosen_or_all(chosen);
    if let [one] = accounts {
        let (groups, fetched) = one.groups(fresh).await?;
        return Ok((groups, fetched, None));
    }
    let (mut all, mut every_fetched, mut failed) = (Vec::new(), true, None);
    for account in accounts {
        match account.groups(fresh).await {
            Ok((groups, fetched)) => {
                all.extend(groups.iter().cloned());
                every_fetched &= fetched;
            }
            Err(e) if failed.is_none() => failed = Some(e),
            Err(_) => {}
        }
    }
    match failed {
        Some(e) if all.is_empty() => Err(e),
        failed => Ok((std::sync::Arc::new(all), every_fetched, failed)),
    }
}

/// The fresh cached group lists of `chosen` (or of every account), without
/// asking any provider; `None` when one of them is not cached.
async fn cached_lists(ctx: &Context, chosen: Option<&Account>) -> Option<std::sync::Arc<Vec<GroupInfo>>> {
    match chosen {
        // One account's list as it is cached, not a copy: this is the ack path.
        Some(one) => one.groups.peek().await,
        None if !ctx.accounts.several() => ctx.accounts.first().groups.peek().await,
        None => {
            let mut all = Vec::new();
            for account in ctx.accounts.all() {
                all.extend(account.groups.peek().await?.iter().cloned());
            }
            Some(std::sync::Arc::new(all))
        }
    }
}

/// Resolves against the cached group lists only: `NeedsLookup` when only the
/// provider could tell (no fresh cache, no match, or an id the cache lacks).
async fn resolve_cached(
    ctx: &Context,
    reference: &str,
    in_scope: &(dyn Fn(&GroupInfo) -> bool + Sync),
    chosen: Option<&Account>,
) -> Result<Scoped, CommandError> {
    let Some(groups) = cached_lists(ctx, chosen).await else {
        return Ok(Scoped::NeedsLookup);
    };
    match resolve_in_scope(ctx, reference, &groups, in_scope) {
        Match::Group(g) => Ok(Scoped::Group(g)),
        Match::Outside => Ok(Scoped::OutOfScope),
        Match::Ambiguous(candidates, total) => Err(ambiguous(reference, &candidates, total)),
        Match::Unlisted(_) | Match::Nothing => Ok(Scoped::NeedsLookup),
    }
}

/// Resolves a typed group reference against the providers' group lists.
///
/// Uses the cached lists; a reference that does not match them (or an id
/// missing from them) refreshes them once, since the group may be new.
async fn resolve_group(
    ctx: &Context,
    reference: &str,
    in_scope: &(dyn Fn(&GroupInfo) -> bool + Sync),
    chosen: Option<&Account>,
) -> Result<Scoped, CommandError> {
    let (mut groups, mut fetched, mut failed) = group_lists(ctx, chosen, false).await?;
    loop {
        match resolve_in_scope(ctx, reference, &groups, in_scope) {
            Match::Group(g) => return Ok(Scoped::Group(g)),
            Match::Outside => return Ok(Scoped::OutOfScope),
            Match::Ambiguous(candidates, total) => return Err(ambiguous(reference, &candidates, total)),
            Match::Unlisted(mut g) if fetched => {
                // Not in any list that answered: maybe in the one that did not.
                if let Some(e) = failed {
                    return Err(e.into());
                }
                // A group id no list holds goes to the provider as typed, on the
                // chosen account (or the only one); with several and none chosen, ask which.
                if ctx.accounts.several() {
                    let Some(account) = chosen else {
                        let accounts = ctx.accounts.names();
                        return Err(CommandError::User(messages::group_needs_account(reference, &accounts)));
                    };
                    g.account = Some(account.name.clone());
                }
                return Ok(Scoped::Group(g));
            }
            Match::Nothing if fetched => {
                if let Some(e) = failed {
                    return Err(e.into());
                }
                return match group_ref::resolve(reference, &ctx.aliases, &groups) {
                    Resolve::NoMatch => Err(CommandError::User(messages::no_group_match(reference))),
                    _ => Ok(Scoped::OutOfScope),
                };
            }
            _ => (groups, fetched, failed) = group_lists(ctx, chosen, true).await?,
        }
    }
}

/// Resolves a reference against every account's group list, without a
/// scope: for naming what a preview was about, never for deciding who may act on it.
async fn resolve_any(ctx: &Context, reference: &str, account: Option<&Account>) -> Option<GroupInfo> {
    let (groups, _, _) = group_lists(ctx, account, false).await.ok()?;
    match group_ref::resolve(reference, &ctx.aliases, &groups) {
        Resolve::Found(g) => Some(g),
        _ => None,
    }
}

/// What a reference comes to among the groups in scope.
enum Match {
    /// One group in scope.
    Group(GroupInfo),
    /// A group id (typed, or an alias's) that only groups outside the scope have.
    Outside,
    /// A group id no list holds: the provider may know it.
    Unlisted(GroupInfo),
    /// Several groups in scope.
    Ambiguous(Vec<GroupInfo>, usize),
    /// Nothing in scope.
    Nothing,
}

/// Resolves `reference` among the groups in scope, so several matches list
/// none outside it.
fn resolve_in_scope(
    ctx: &Context,
    reference: &str,
    groups: &[GroupInfo],
    in_scope: &(dyn Fn(&GroupInfo) -> bool + Sync),
) -> Match {
    let scoped: Vec<GroupInfo> = groups.iter().filter(|g| in_scope(g)).cloned().collect();
    match group_ref::resolve(reference, &ctx.aliases, &scoped) {
        Resolve::Found(g) if scoped.iter().any(|k| k.id == g.id) => Match::Group(g),
        Resolve::Found(g) if groups.iter().any(|k| k.id == g.id) => Match::Outside,
        Resolve::Found(g) => Match::Unlisted(g),
        Resolve::Ambiguous(candidates, total) => Match::Ambiguous(candidates, total),
        Resolve::NoMatch => Match::Nothing,
    }
}

fn ambiguous(reference: &str, candidates: &[GroupInfo], total: usize) -> CommandError {
    CommandError::User(messages::ambiguous_group(reference, candidates, total))
}
