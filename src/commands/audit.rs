//! `audit [--user PRINCIPAL] [--command ID] [--group G] [--since DURATION]
//! [--limit N]`: the audit log, newest first, for callers granted `audit`.
//! Rows carry no phone numbers (only how many), and groups by name where the
//! cached list knows them.

pub use waops_core::command::audit::*;

use super::{Call, CommandError};
use crate::core::messages::{self, AuditLine};
use crate::core::reply::Reply;
use crate::group_ref::GroupInfo;
use crate::store::AuditFilter;

/// Reads and shows the rows.
pub async fn run(call: &Call<'_>, args: Args, group: Option<GroupInfo>) -> Result<Reply, CommandError> {
    let ctx = call.ctx;
    let now = ctx.clock.now();
    let since = match args.since {
        Some(d) => Some(now - jiff::SignedDuration::try_from(d).map_err(anyhow::Error::from)?),
        None => None,
    };
    let filter = AuditFilter {
        principal: args.user,
        command: args.command.map(|c| c.as_str().to_string()),
        group_id: group.map(|g| g.id.to_string()),
        since,
        limit: args.limit as i64,
    };
    let rows = ctx.store.search_audit(&filter).await?;
    let names = ctx.accounts.cached_groups().await;
    let name_of = |id: &str| {
        names
            .iter()
            .find(|g| g.id.as_str() == id)
            .map_or_else(|| id.to_string(), |g| g.name.clone())
    };
    let lines: Vec<AuditLine<'_>> = rows
        .iter()
        .map(|r| AuditLine {
            at: r.at,
            principal: &r.principal,
            channel: &r.channel,
            command: &r.command,
            // Named with its account where several are configured.
            group: r
                .group_id
                .as_deref()
                .map(|id| match (&r.account, ctx.accounts.several()) {
                    (Some(account), true) => format!("{} ({account})", name_of(id)),
                    _ => name_of(id),
                }),
            numbers: r.numbers_count,
            decision: &r.decision,
            outcome: &r.outcome,
            request_id: &r.request_id,
            approver: r.approver.as_deref(),
        })
        .collect();
    Ok(messages::audit(&lines, args.limit, now, call.result_visibility()))
}
