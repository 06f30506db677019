//! `remove <group|*> <numbers…>`, `promote <group> <numbers…>`,
//! `demote <group> <numbers…>` (`[--dry-run] [--yes]`): changes to existing
//! members. The member list is read first: providers do not answer "not a
//! member", and it says whether the connected number is an admin.
//!
//! `remove *` is offboarding: every group in the caller's scope where a number
//! is a member, previewed per group, then removed group by group, paced like
//! `add`, with one audit row per group.

pub use waops_core::command::change::*;

use super::add::{approval_preview, preview_confirmation, refuse_numbers, Added, GroupRow, Paced};
use super::{Call, CommandError};
use crate::core::messages::{self, OffboardDone, OffboardGroup};
use crate::core::CommandId;
use crate::group_ref::GroupInfo;
use crate::phone::{self, E164};
use crate::providers::{ChangeOutcome, ChangeResult, MemberChange, Members, ProviderErrorKind};

/// Who a change would act on in one group, and the numbers it leaves as they are.
fn plan(members: &Members, change: MemberChange, numbers: &[E164]) -> (Vec<E164>, Vec<ChangeResult>) {
    let mut to_change = Vec::new();
    let mut left = Vec::new();
    for number in numbers {
        let outcome = match (members.find(number), change) {
            (None, _) => Some(ChangeOutcome::NotAMember),
            (Some(m), MemberChange::Promote) if m.is_admin() => Some(ChangeOutcome::AlreadySo),
            (Some(m), MemberChange::Demote) if !m.is_admin() => Some(ChangeOutcome::AlreadySo),
            _ => None,
        };
        match outcome {
            Some(outcome) => left.push(ChangeResult {
                number: number.clone(),
                outcome,
            }),
            None => to_change.push(number.clone()),
        }
    }
    (to_change, left)
}

/// Changes members of one group.
pub async fn run(
    call: &Call<'_>,
    args: Args,
    group: GroupInfo,
    list: phone::NumberList,
) -> Result<Added, CommandError> {
    if let Some(refusal) = refuse_numbers(call, &list) {
        return Err(CommandError::User(refusal));
    }
    let ctx = call.ctx;
    let numbers: Vec<E164> = list.valid.iter().map(|a| a.number.clone()).collect();
    let provider = &ctx.accounts.of(&group).provider;
    let members = provider.members(&group.id).await?;
    if members.connected_admin == Some(false) {
        return Err(crate::providers::ProviderError::from(ProviderErrorKind::NotAdmin).into());
    }
    let (to_change, left) = plan(&members, args.change, &numbers);
    if args.dry_run {
        return Ok(messages::change_dry_run(&group, args.change, &to_change, &left).into());
    }
    let confirm_over = ctx.settings.limits.confirm_over;
    let approval = super::approval::needed(call, to_change.len()) && !to_change.is_empty();
    if (to_change.len() > confirm_over && !args.yes) || approval {
        let confirmation = preview_confirmation(call, approval).await?;
        let reply = messages::change_needs_confirmation(
            &group,
            args.change,
            &to_change,
            &left,
            confirm_over,
            confirmation.as_deref(),
        );
        return Ok(approval_preview(reply, approval).into());
    }
    let change = args.change;
    let gid = &group.id;
    let (mut results, stopped) = Paced::new(call, to_change.len())
        .send(
            provider.pacing(),
            &to_change,
            |chunk| async move { provider.change_members(gid, change, &chunk).await },
            not_sent,
        )
        .await;
    if let Some(e) = stopped.as_ref().filter(|_| results.iter().all(is_not_sent)) {
        return Err(e.clone().into());
    }
    let done = results.iter().filter(|r| !is_not_sent(r)).count();
    results.extend(left);
    results.sort_by_key(|r| numbers.iter().position(|n| *n == r.number));
    let mut reply = messages::change_result(&group, change, &results, call.result_visibility());
    if let Some(e) = &stopped {
        reply = messages::add_stopped(reply, done, to_change.len(), e, provider.kind());
    }
    Ok(Added {
        partial: stopped,
        ..reply.into()
    })
}

fn not_sent(number: &E164) -> ChangeResult {
    ChangeResult {
        number: number.clone(),
        outcome: ChangeOutcome::Failed(messages::NOT_SENT.into()),
    }
}

fn is_not_sent(r: &ChangeResult) -> bool {
    matches!(&r.outcome, ChangeOutcome::Failed(f) if f == messages::NOT_SENT)
}

/// `remove * <numbers…>`: offboarding across the caller's groups.
pub async fn offboard(call: &Call<'_>, args: Args, list: phone::NumberList) -> Result<Added, CommandError> {
    if let Some(refusal) = refuse_numbers(call, &list) {
        return Err(CommandError::User(refusal));
    }
    let ctx = call.ctx;
    let numbers: Vec<E164> = list.valid.iter().map(|a| a.number.clone()).collect();
    // Only groups the caller may remove from: the others are never read, let alone named.
    let mut scoped: Vec<GroupInfo> = call.every_group().await?;
    scoped.retain(|g| call.may(CommandId::Remove, g));
    scoped.sort_by_key(|g| (g.name.to_lowercase(), g.account.clone()));
    let mut plan: Vec<OffboardGroup<'_>> = Vec::new();
    let mut not_admin: Vec<OffboardGroup<'_>> = Vec::new();
    let mut unreadable: Vec<(&GroupInfo, String)> = Vec::new();
    for group in &scoped {
        let provider = &ctx.accounts.of(group).provider;
        let members = match provider.members(&group.id).await {
            Ok(m) => m,
            Err(e) => {
                unreadable.push((group, messages::provider_error(&e, provider.kind()).title.plain()));
                continue;
            }
        };
        let present: Vec<E164> = numbers.iter().filter(|n| members.find(n).is_some()).cloned().collect();
        if present.is_empty() {
            continue;
        }
        let entry = OffboardGroup {
            group,
            numbers: present,
        };
        if members.connected_admin == Some(false) {
            not_admin.push(entry);
        } else {
            plan.push(entry);
        }
    }
    if plan.is_empty() && not_admin.is_empty() && unreadable.is_empty() {
        return Ok(messages::offboard_nothing().into());
    }
    // Always a preview first: from chat the Apply button, in the console --yes.
    let total = plan.iter().map(|g| g.numbers.len()).sum();
    let approval = super::approval::needed(call, total) && !plan.is_empty();
    if args.dry_run || !args.yes || plan.is_empty() || approval {
        let confirmation = if args.dry_run || plan.is_empty() {
            None
        } else {
            preview_confirmation(call, approval).await?
        };
        let reply = messages::offboard_preview(&plan, &not_admin, &unreadable, args.dry_run, confirmation.as_deref());
        return Ok(approval_preview(reply, approval && !args.dry_run).into());
    }
    let mut paced = Paced::new(call, total);
    let mut done = Vec::new();
    let mut rows = Vec::new();
    for entry in &plan {
        let gid = &entry.group.id;
        let provider = &ctx.accounts.of(entry.group).provider;
        let (results, stopped) = paced
            .send(
                provider.pacing(),
                &entry.numbers,
                |chunk| async move { provider.change_members(gid, MemberChange::Remove, &chunk).await },
                not_sent,
            )
            .await;
        rows.push(GroupRow {
            group_id: gid.to_string(),
            account: Some(ctx.accounts.of(entry.group).name.to_string()),
            numbers: entry.numbers.len(),
            outcome: match &stopped {
                None => "ok".into(),
                Some(e) => format!("partial:{}", e.kind.code()),
            },
        });
        done.push(OffboardDone {
            group: entry.group,
            results,
            stopped: stopped.map(|e| messages::provider_error(&e, provider.kind()).title.plain()),
        });
    }
    let reply = messages::offboard_result(&done, &not_admin, &unreadable, call.result_visibility());
    Ok(Added {
        per_group: rows,
        ..reply.into()
    })
}
