//! The two-person rule: a role with `approval = "two-person"` gets "Request
//! approval" instead of Apply on its previews; the request goes to the channel
//! with Approve/Reject, and a different person whose roles grant `approve` for
//! that command's group decides it, once, within `limits.approval_ttl`. Both
//! chat adapters call these; the approved command then runs with the
//! requester's principals and names the approver in its audit row.

use super::{Call, Parsed, TargetRef};
use crate::core::messages;
use crate::core::permissions::{Decision, Target};
use crate::core::reply::Reply;
use crate::core::{Account, ChannelRef, CommandId, Context, Invocation, Platform, Principal};
use crate::group_ref::{GroupId, GroupInfo};
use crate::store::approvals::Approval;

/// Whether the caller's role needs a second person's approval for a change
/// of `count` numbers (not when this is the approved run itself).
pub fn needed(call: &Call<'_>, count: usize) -> bool {
    call.inv.approved_by.is_none() && call.grant.approval_over.is_some_and(|over| count > over)
}

/// What a Request approval click did.
pub enum Requested {
    /// Nothing: the preview was used, expired or is another person's.
    Gone(Reply),
    /// The request to post in the channel, and what the requester sees.
    Posted {
        /// In the channel, with Approve/Reject.
        request: Reply,
        /// In place of the preview.
        to_requester: Reply,
    },
}

/// Turns the caller's preview into a request for approval (once: the preview
/// is consumed like an Apply).
pub async fn request(ctx: &Context, confirmation: &str, principals: &[Principal], request_id: &str) -> Requested {
    let now = ctx.clock.now();
    let caller = &principals[0];
    let taken = match ctx.store.consume_confirmation(confirmation, caller.as_str(), now).await {
        Ok(Some(taken)) => taken,
        Ok(None) => return Requested::Gone(messages::confirmation_gone()),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "confirmation lookup failed");
            return Requested::Gone(messages::internal(request_id));
        }
    };
    let (command, group_id) = match Parsed::parse(&taken.command_text) {
        Ok(parsed) => {
            // The group as previewed, in its account; the approver's rights are checked on it.
            let account = account_of(ctx, &parsed, &taken.channel);
            let group = match parsed.command.target() {
                TargetRef::Group(reference) => super::resolve_any(ctx, reference, account)
                    .await
                    .map(|g| g.id.to_string()),
                _ => None,
            };
            (parsed.command.id(), group)
        }
        Err(_) => return Requested::Gone(messages::confirmation_gone()),
    };
    let ttl = ctx.settings.limits.approval_ttl;
    let approval = Approval {
        id: uuid::Uuid::new_v4().simple().to_string(),
        platform: taken.platform.clone(),
        channel: taken.channel.clone(),
        requester: caller.to_string(),
        requester_principals: principals.iter().map(|p| p.to_string()).collect(),
        command_text: taken.command_text.clone(),
        command: command.as_str().into(),
        group_id,
        expires_at: now + jiff::SignedDuration::try_from(ttl).unwrap_or_default(),
    };
    if let Err(e) = ctx.store.create_approval(&approval, now).await {
        tracing::error!(error = format!("{e:#}"), "approval request not saved");
        return Requested::Gone(messages::internal(request_id));
    }
    Requested::Posted {
        request: messages::approval_request(caller.as_str(), &approval.command_text, &approval.id, ttl),
        to_requester: messages::approval_requested(),
    }
}

/// What an Approve or Reject click did.
pub enum Decided {
    /// Nothing changed; tell the clicker why.
    Refused(Reply),
    /// Rejected: the request is replaced with this.
    Rejected(Reply),
    /// Approved: run the requester's command (its result names both people).
    Approved(Invocation),
}

/// Decides request `id` for the clicker (`principals`), once.
pub async fn decide(
    ctx: &Context,
    id: &str,
    principals: &[Principal],
    approve: bool,
    platform: Platform,
    request_id: &str,
) -> Decided {
    let decider = &principals[0];
    let approval = match ctx.store.approval(id).await {
        Ok(Some(a)) => a,
        Ok(None) => return Decided::Refused(messages::approval_gone()),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "approval lookup failed");
            return Decided::Refused(messages::internal(request_id));
        }
    };
    if approval.requester == decider.as_str() {
        return Decided::Refused(messages::approval_own());
    }
    let channel = ChannelRef::from_text(&approval.channel);
    let account = match Parsed::parse(&approval.command_text) {
        Ok(parsed) => account_of(ctx, &parsed, &approval.channel),
        Err(_) => None,
    };
    let group = match &approval.group_id {
        Some(id) => match named(ctx, id, account).await {
            Some(g) => Some(g),
            None => return Decided::Refused(messages::approval_not_allowed(&approval.command)),
        },
        None => None,
    };
    // Offboarding (`remove *`) acts on any group of the requester's scope: its
    // approver must be allowed to approve on all of them.
    let target = match (&group, approval.command.as_str()) {
        (Some(g), _) => Target::Group(g),
        (None, "remove") => Target::AllGroups,
        (None, _) => Target::None,
    };
    if !matches!(
        ctx.permissions.decide(principals, CommandId::Approve, &channel, target),
        Decision::Allowed(_)
    ) {
        return Decided::Refused(messages::approval_not_allowed(&approval.command));
    }
    let decision = if approve { "approved" } else { "rejected" };
    match ctx
        .store
        .decide_approval(id, decider.as_str(), decision, ctx.clock.now())
        .await
    {
        Ok(true) => {}
        Ok(false) => return Decided::Refused(messages::approval_gone()),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "approval not decided");
            return Decided::Refused(messages::internal(request_id));
        }
    }
    if !approve {
        return Decided::Rejected(messages::approval_rejected(&approval.requester, decider.as_str()));
    }
    let principals = approval
        .requester_principals
        .iter()
        .filter_map(|p| Principal::parse(p).ok())
        .collect();
    Decided::Approved(Invocation {
        platform,
        principals,
        channel,
        text: approval.command_text,
        request_id: request_id.to_string(),
        applied: true,
        approved_by: Some(decider.clone()),
    })
}

/// The account a command's text names (`--account`), else its channel's
/// default (the text was checked when it was previewed).
fn account_of<'c>(ctx: &'c Context, parsed: &Parsed, channel: &str) -> Option<&'c Account> {
    super::chosen_account(ctx, parsed.account.as_deref(), channel)
        .ok()
        .flatten()
}

/// The group with this id in `account` (or in any), by name where its list
/// knows it (scopes may match names), with its account (grants may name
/// accounts). `None` when several accounts are configured and none can be
/// told: nobody is approved on a guess.
async fn named(ctx: &Context, id: &str, account: Option<&Account>) -> Option<GroupInfo> {
    let listed = super::group_lists(ctx, account, false).await.ok();
    let known = listed.and_then(|(list, _, _)| list.iter().find(|g| g.id.as_str() == id).cloned());
    known.or_else(|| {
        let mut group = GroupInfo::new(GroupId::parse(id)?, id);
        if ctx.accounts.several() {
            group.account = Some(account?.name.clone());
        }
        Some(group)
    })
}
