//! WhatsApp providers behind one trait. The core holds an `Arc<dyn Provider>`
//! and never sees a provider's wire format.

pub mod http;
pub mod periskope;
pub mod sandbox;
pub mod wawp;
pub mod wuts;

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::core::values::EventKind;
use crate::group_ref::{GroupId, GroupInfo};
use crate::invite_link::InviteCode;
use crate::phone::E164;
use crate::settings::{ProviderKind, ProviderSettings};

/// Where `/wa history` reads from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistorySource {
    /// The provider's own notification history.
    Provider,
    /// waops' journal of provider webhooks.
    Journal,
}

/// What a provider can do; commands degrade honestly where it cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Where history comes from.
    pub history: HistorySource,
    /// `invite --reset` is possible.
    pub invite_reset: bool,
    /// A join can report "waiting for admin approval".
    pub pending_approval: bool,
    /// Adds can be forced past the invite-instead-of-add privacy rule.
    pub forced_add: bool,
}

/// The result of a join.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinOutcome {
    /// Joined; the group.
    Joined(GroupInfo),
    /// A join request was sent; an admin must approve it.
    PendingApproval(Option<GroupId>),
}

/// What happened to one number in an add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// Now a member.
    Added,
    /// Their privacy settings forbid direct adds; WhatsApp sent them an invite.
    InviteSent,
    /// Was a member already.
    AlreadyMember,
    /// The number has no WhatsApp account.
    NotOnWhatsApp,
    /// Sent to the provider, which does not report per-number results.
    Requested,
    /// Failed, with the provider's reason.
    Failed(String),
}

/// One number's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddResult {
    /// The number.
    pub number: E164,
    /// What happened.
    pub outcome: AddOutcome,
}

/// A participant in an event: a phone number when the provider gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Party {
    /// A phone number.
    Number(E164),
    /// Anything else the provider sent (a LID, a name).
    Other(String),
}

/// One membership change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEvent {
    /// When it happened.
    pub at: Timestamp,
    /// What kind of change.
    pub kind: EventKind,
    /// Who did it, if known.
    pub actor: Option<Party>,
    /// Whom it affected.
    pub subjects: Vec<Party>,
    /// Extra text (which setting changed, the provider's raw type for `other`).
    pub detail: Option<String>,
}

/// What went wrong at the provider, in terms the user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderErrorKind {
    /// Credentials rejected.
    #[error("authentication failed")]
    Auth,
    /// The connected number is not an admin of the group.
    #[error("not a group admin")]
    NotAdmin,
    /// Not allowed for another reason (the provider's words, if any).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The group (or resource) does not exist for this number.
    #[error("not found")]
    NotFound,
    /// The invite is invalid, expired or revoked.
    #[error("invalid or revoked invite")]
    InvalidInvite,
    /// The provider rejected the input.
    #[error("validation failed: {0}")]
    Validation(String),
    /// Too many requests; wait this long if known.
    #[error("rate limited")]
    RateLimited(Option<Duration>),
    /// The WhatsApp session behind the account is not connected.
    #[error("device not connected")]
    DeviceNotConnected,
    /// The provider failed (5xx, garbage).
    #[error("upstream error {0}")]
    Upstream(u16),
    /// The request did not get through.
    #[error("transport: {0}")]
    Transport(String),
    /// No answer in time; `true` when it was a write that may have taken effect.
    #[error("timed out")]
    Timeout(bool),
    /// The provider answered with something waops cannot read.
    #[error("malformed response")]
    Malformed,
    /// The provider cannot do this at all.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

tokio::task_local! {
    /// The trace id of the last provider answer of the command running on
    /// this task: a task-local rather than a field of every provider method's
    /// result, since only the audit row reads it.
    static LAST_TRACE: std::cell::RefCell<Option<String>>;
}

/// Runs `command` and returns its output with the trace id of the last
/// provider answer it got (SPEC section 8: audit rows carry it on success too).
pub async fn traced<F: std::future::Future>(command: F) -> (F::Output, Option<String>) {
    LAST_TRACE
        .scope(std::cell::RefCell::new(None), async {
            let output = command.await;
            (output, LAST_TRACE.with(|t| t.borrow_mut().take()))
        })
        .await
}

/// Notes a provider answer's trace id for `traced` (no effect outside it).
pub(crate) fn note_trace(trace_id: Option<&str>) {
    if let Some(id) = trace_id {
        let _ = LAST_TRACE.try_with(|t| *t.borrow_mut() = Some(id.to_owned()));
    }
}

/// A provider error with the provider's trace id (kept for logs and audit).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ProviderError {
    /// What went wrong.
    pub kind: ProviderErrorKind,
    /// The provider's trace id, if it sent one.
    pub trace_id: Option<String>,
}

impl From<ProviderErrorKind> for ProviderError {
    fn from(kind: ProviderErrorKind) -> Self {
        ProviderError { kind, trace_id: None }
    }
}

/// How bulk adds are split and spaced for this provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pacing {
    /// Numbers per add request.
    pub chunk_size: usize,
    /// Pause between add requests.
    pub pause: Duration,
}

impl Pacing {
    /// From `provider.add_chunk_size` and `provider.add_pause_ms`.
    pub fn from_settings(settings: &ProviderSettings) -> Self {
        Pacing {
            chunk_size: settings.add_chunk_size.max(1),
            pause: Duration::from_millis(settings.add_pause_ms),
        }
    }
}

/// A WhatsApp API provider.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The configured kind.
    fn kind(&self) -> ProviderKind;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
    /// How the core splits and spaces bulk adds.
    fn pacing(&self) -> Pacing;
    /// Groups the connected number is in.
    async fn list_groups(&self) -> Result<Vec<GroupInfo>, ProviderError>;
    /// Joins the group behind an invite.
    async fn join(&self, invite: &InviteCode) -> Result<JoinOutcome, ProviderError>;
    /// Adds numbers to a group; one result per number, in order.
    async fn add(&self, group: &GroupId, numbers: &[E164]) -> Result<Vec<AddResult>, ProviderError>;
    /// The group's current invite code.
    async fn invite_code(&self, group: &GroupId) -> Result<InviteCode, ProviderError>;
    /// Revokes the invite code and returns the new one.
    async fn reset_invite(&self, group: &GroupId) -> Result<InviteCode, ProviderError>;
    /// Membership changes since `since`, newest first.
    async fn history(&self, group: &GroupId, since: Timestamp) -> Result<Vec<MemberEvent>, ProviderError>;
    /// Cheap reachability check for `/readyz`.
    async fn health(&self) -> Result<(), ProviderError>;
}

/// Builds the configured provider.
pub fn build(settings: &ProviderSettings, clock: crate::core::Clock) -> anyhow::Result<std::sync::Arc<dyn Provider>> {
    Ok(match settings.kind {
        ProviderKind::Sandbox => std::sync::Arc::new(sandbox::Sandbox::new(clock)),
        ProviderKind::Periskope => std::sync::Arc::new(periskope::Periskope::new(settings)?),
        ProviderKind::Wuts => std::sync::Arc::new(wuts::Wuts::new(settings)?),
        ProviderKind::Wawp => std::sync::Arc::new(wawp::Wawp::new(settings)?),
    })
}

/// A person id from a provider (`491511234567@c.us`, `…@s.whatsapp.net`, bare
/// digits, or a LID): a number when it is one, else kept as it came.
pub fn party(jid: &str) -> Party {
    let user = jid.split('@').next().unwrap_or(jid);
    let user = user.split(':').next().unwrap_or(user);
    let is_phone = !jid.ends_with("@lid") && !jid.ends_with("@g.us");
    match E164::from_trusted(user) {
        Some(n) if is_phone => Party::Number(n),
        _ => Party::Other(jid.to_string()),
    }
}

/// The answer of providers without a history endpoint: their history is waops'
/// webhook journal, which the core reads instead of calling them.
pub fn journal_history_missing() -> ProviderError {
    ProviderErrorKind::Unsupported("list membership history itself: it comes from waops' journal of its webhooks")
        .into()
}
