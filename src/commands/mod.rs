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
use crate::core::{CommandId, Context, Invocation, Progress};
use crate::group_ref::{self, GroupInfo, Resolve};
use crate::providers::ProviderError;
use crate::store::AuditRecord;

pub use waops_core::command::{spec, Command, TargetRef};

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
}

impl Call<'_> {
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

/// Parses, permits and resolves; writes nothing.
pub async fn prepare(ctx: &Context, inv: &Invocation, lookup: Lookup) -> Prepared {
    let mut audit = audit_row(ctx, inv, "invalid", "invalid", "user_error");
    let mut command = match Command::parse(&inv.text) {
        Ok(c) => c,
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
    // Groups are looked up among those the caller may run this command on, so
    // candidates and matches never name one outside their scope.
    let in_scope = |g: &GroupInfo| {
        matches!(
            ctx.permissions
                .decide(&inv.principals, id, &inv.channel, Target::Group(g)),
            Decision::Allowed(_)
        )
    };
    let resolved = match command.target() {
        TargetRef::None => Resolved::None,
        TargetRef::All => Resolved::All,
        TargetRef::Group(reference) => {
            let result = match lookup {
                Lookup::Provider => resolve_group(ctx, reference, &in_scope).await,
                Lookup::CacheOnly => resolve_cached(ctx, reference, &in_scope).await,
            };
            match result {
                Ok(Scoped::Group(group)) => Resolved::Group(group),
                Ok(Scoped::OutOfScope) => Resolved::OutOfScope,
                Ok(Scoped::NeedsLookup) => return Prepared::NeedsLookup,
                Err(e) => {
                    audit.rule = "group not resolved".into();
                    let reply = finish_error(ctx, inv, &mut audit, e);
                    return Prepared::Answered(reply, audit);
                }
            }
        }
    };
    let decision = match &resolved {
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
        grant,
        mut audit,
        numbers,
    } = ready;
    let call = Call {
        ctx,
        inv,
        grant,
        progress,
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
        Err(e) => finish_error(ctx, inv, &mut audit, e),
    };
    (reply, audit)
}

fn finish_error(ctx: &Context, inv: &Invocation, audit: &mut AuditRecord, error: CommandError) -> Reply {
    match error {
        CommandError::User(reply) => {
            audit.outcome = "user_error".into();
            reply
        }
        CommandError::Provider(e) => {
            audit.outcome = format!("provider_error:{}", e.kind.code()).into();
            audit.provider_trace_id = e.trace_id.clone();
            tracing::warn!(error = %e, trace_id = e.trace_id.as_deref().unwrap_or("-"), "provider error");
            messages::provider_error(&e, ctx.provider.kind())
        }
        CommandError::Internal(e) => {
            audit.outcome = "internal".into();
            tracing::error!(error = format!("{e:#}"), "internal error");
            messages::internal(&inv.request_id)
        }
    }
}

/// Resolves against the cached group list only: `NeedsLookup` when only the
/// provider could tell (no fresh cache, no match, or an id the cache lacks).
async fn resolve_cached(
    ctx: &Context,
    reference: &str,
    in_scope: &(dyn Fn(&GroupInfo) -> bool + Sync),
) -> Result<Scoped, CommandError> {
    let Some(groups) = ctx.groups.peek().await else {
        return Ok(Scoped::NeedsLookup);
    };
    match resolve_in_scope(ctx, reference, &groups, in_scope) {
        Resolve::Found(g) if groups.iter().any(|k| k.id == g.id) => Ok(Scoped::Group(g)),
        Resolve::Ambiguous(candidates, total) => Err(ambiguous(reference, &candidates, total)),
        _ => Ok(Scoped::NeedsLookup),
    }
}

/// Resolves a typed group reference against the provider's group list.
///
/// Uses the cached list; a reference that does not match it (or an id missing
/// from it) refreshes the list once, since the group may be new.
async fn resolve_group(
    ctx: &Context,
    reference: &str,
    in_scope: &(dyn Fn(&GroupInfo) -> bool + Sync),
) -> Result<Scoped, CommandError> {
    let (mut groups, mut fetched) = ctx.groups.get(ctx.provider.as_ref(), false).await?;
    loop {
        let known = |g: &GroupInfo| groups.iter().any(|k| k.id == g.id);
        match resolve_in_scope(ctx, reference, &groups, in_scope) {
            Resolve::Found(g) if fetched || known(&g) => return Ok(Scoped::Group(g)),
            Resolve::Ambiguous(candidates, total) => return Err(ambiguous(reference, &candidates, total)),
            Resolve::NoMatch if fetched => {
                return match group_ref::resolve(reference, &ctx.aliases, &groups) {
                    Resolve::NoMatch => Err(CommandError::User(messages::no_group_match(reference))),
                    _ => Ok(Scoped::OutOfScope),
                }
            }
            _ => (groups, fetched) = ctx.groups.get(ctx.provider.as_ref(), true).await?,
        }
    }
}

/// Resolves a reference against the whole group list, without a scope: for
/// naming what a preview was about, never for deciding who may act on it.
async fn resolve_any(ctx: &Context, reference: &str) -> Option<GroupInfo> {
    let (groups, _) = ctx.groups.get(ctx.provider.as_ref(), false).await.ok()?;
    match group_ref::resolve(reference, &ctx.aliases, &groups) {
        Resolve::Found(g) => Some(g),
        _ => None,
    }
}

/// Resolves `reference` among the groups in scope, so several matches list
/// none outside it.
fn resolve_in_scope(
    ctx: &Context,
    reference: &str,
    groups: &[GroupInfo],
    in_scope: &(dyn Fn(&GroupInfo) -> bool + Sync),
) -> Resolve {
    let scoped: Vec<GroupInfo> = groups.iter().filter(|g| in_scope(g)).cloned().collect();
    group_ref::resolve(reference, &ctx.aliases, &scoped)
}

fn ambiguous(reference: &str, candidates: &[GroupInfo], total: usize) -> CommandError {
    CommandError::User(messages::ambiguous_group(reference, candidates, total))
}
