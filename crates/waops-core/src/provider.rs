//! The port to WhatsApp API providers: the `Provider` trait the core calls,
//! and the domain types it speaks (outcomes, events, errors, capabilities).
//! The clients that implement it for each provider live outside the core.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use serde::Deserialize;

use crate::group_ref::{GroupId, GroupInfo};
use crate::invite_link::InviteCode;
use crate::phone::E164;
use crate::values::EventKind;

/// Which WhatsApp API provider waops talks to.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The built-in, in-memory sandbox.
    Sandbox,
    /// Periskope.
    Periskope,
    /// WUTS.
    Wuts,
    /// Wawp.
    Wawp,
}

impl ProviderKind {
    /// Every kind.
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::Sandbox,
        ProviderKind::Periskope,
        ProviderKind::Wuts,
        ProviderKind::Wawp,
    ];

    /// The kind's name as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Sandbox => "sandbox",
            ProviderKind::Periskope => "periskope",
            ProviderKind::Wuts => "wuts",
            ProviderKind::Wawp => "wawp",
        }
    }
}

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
    /// The member list says whether the connected number is an admin.
    pub connected_admin: bool,
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

/// A provider error with the provider's trace id (kept for logs and audit).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ProviderError {
    /// What went wrong.
    pub kind: ProviderErrorKind,
    /// The provider's trace id, if it sent one.
    pub trace_id: Option<String>,
}

impl ProviderErrorKind {
    /// A short name for the kind, without any text the provider sent (audit
    /// outcomes, metrics, `/readyz`).
    pub fn code(&self) -> &'static str {
        use ProviderErrorKind::*;
        match self {
            Auth => "auth",
            NotAdmin => "not_admin",
            Forbidden(_) => "forbidden",
            NotFound => "not_found",
            InvalidInvite => "invalid_invite",
            Validation(_) => "validation",
            RateLimited(_) => "rate_limited",
            DeviceNotConnected => "device_not_connected",
            Upstream(_) => "upstream",
            Transport(_) => "transport",
            Timeout(_) => "timeout",
            Malformed => "malformed",
            Unsupported(_) => "unsupported",
        }
    }
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
    /// The group's participants.
    async fn members(&self, group: &GroupId) -> Result<Members, ProviderError>;
    /// Removes, promotes or demotes members; one result per number, in order.
    /// Callers send only numbers the member list shows as members.
    async fn change_members(
        &self,
        group: &GroupId,
        change: MemberChange,
        numbers: &[E164],
    ) -> Result<Vec<ChangeResult>, ProviderError>;
    /// Membership changes since `query.since`, newest first. A provider that
    /// reads them in pages stops once it has `query.enough` of the kinds asked
    /// for; others may return them all (callers filter and cut).
    async fn history(&self, group: &GroupId, query: &HistoryQuery) -> Result<Vec<MemberEvent>, ProviderError>;
    /// Cheap reachability check for `/readyz`.
    async fn health(&self) -> Result<(), ProviderError>;
}

/// A change to existing members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Take them out of the group.
    Remove,
    /// Make them admins.
    Promote,
    /// Take admin rights away.
    Demote,
}

impl MemberChange {
    /// The command that asks for it.
    pub fn command(self) -> crate::CommandId {
        match self {
            MemberChange::Remove => crate::CommandId::Remove,
            MemberChange::Promote => crate::CommandId::Promote,
            MemberChange::Demote => crate::CommandId::Demote,
        }
    }

    /// The action's word in the providers' APIs (Periskope's path, WUTS's `action`).
    pub fn action(self) -> &'static str {
        match self {
            MemberChange::Remove => "remove",
            MemberChange::Promote => "promote",
            MemberChange::Demote => "demote",
        }
    }

    /// What the request does, for the provider client's logs.
    pub fn request_name(self) -> &'static str {
        match self {
            MemberChange::Remove => "remove participants",
            MemberChange::Promote => "promote participants",
            MemberChange::Demote => "demote participants",
        }
    }

    /// The past tense, for results ("removed").
    pub fn done(self) -> &'static str {
        match self {
            MemberChange::Remove => "removed",
            MemberChange::Promote => "promoted",
            MemberChange::Demote => "demoted",
        }
    }
}

/// What a member change did to one number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// Removed, promoted or demoted.
    Done,
    /// Not in the group: nothing to do (read from the member list first).
    NotAMember,
    /// Already what was asked (an admin to promote, not one to demote).
    AlreadySo,
    /// Not done, with the reason.
    Failed(String),
}

/// One number's member-change result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeResult {
    /// The number.
    pub number: E164,
    /// What happened.
    pub outcome: ChangeOutcome,
}

/// A participant's standing in a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The group's creator (WhatsApp's super admin).
    SuperAdmin,
    /// An admin.
    Admin,
    /// A member.
    Member,
}

/// A group's participant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Who (a number when it is one).
    pub party: Party,
    /// Their standing.
    pub role: Role,
    /// A name the provider knows for them.
    pub name: Option<String>,
}

impl Member {
    /// True for admins and super admins.
    pub fn is_admin(&self) -> bool {
        self.role != Role::Member
    }
}

/// A group's participants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    /// Everyone in the group.
    pub members: Vec<Member>,
    /// Whether the connected number is an admin here, when the provider says.
    pub connected_admin: Option<bool>,
}

impl Members {
    /// The member with this number, if any.
    pub fn find(&self, number: &E164) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| matches!(&m.party, Party::Number(n) if n == number))
    }
}

/// Which membership changes `history` is asked for.
#[derive(Clone, Debug)]
pub struct HistoryQuery {
    /// Nothing older.
    pub since: Timestamp,
    /// Only these kinds; `None` = all.
    pub kinds: Option<Vec<EventKind>>,
    /// How many the caller can use: paging stops once it has them.
    pub enough: usize,
}

impl HistoryQuery {
    /// Every change since `since` (digests need the whole window).
    pub fn all_since(since: Timestamp) -> Self {
        HistoryQuery {
            since,
            kinds: None,
            enough: usize::MAX,
        }
    }

    /// Whether `event` is one of the kinds asked for.
    pub fn wants(&self, event: &MemberEvent) -> bool {
        self.kinds.as_ref().is_none_or(|k| k.contains(&event.kind))
    }
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
