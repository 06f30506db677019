//! `history <group> [--limit N] [--since DURATION] [--type KINDS]`: membership
//! changes, newest first.

pub use waops_core::command::history::*;

use jiff::Timestamp;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::messages::More;
use crate::core::reply::Reply;
use crate::core::values::EventKind;
use crate::group_ref::GroupInfo;
use crate::providers::{party, HistoryQuery, HistorySource, MemberEvent};
use crate::store::JournalEntry;

/// Reads history from the provider and cuts it to the limit.
pub async fn run(call: &Call<'_>, args: Args, group: GroupInfo) -> Result<Reply, CommandError> {
    let ctx = call.ctx;
    let now = ctx.clock.now();
    let since = match args.since {
        Some(d) => now - jiff::SignedDuration::try_from(d).map_err(anyhow::Error::from)?,
        None => Timestamp::MIN,
    };
    let account = ctx.accounts.of(&group);
    let capabilities = account.provider.capabilities();
    let kind = account.provider.kind();
    // One more than the limit: enough to tell that there are more.
    let query = HistoryQuery {
        since,
        kinds: args.kinds.clone(),
        enough: args.limit.saturating_add(1),
    };
    let (mut events, journal_since) = match capabilities.history {
        HistorySource::Provider => (account.provider.history(&group.id, &query).await?, None),
        HistorySource::Journal => {
            let entries = ctx
                .store
                .group_events(&account.source, group.id.as_str(), since)
                .await?;
            (
                entries.into_iter().map(journal_event).collect(),
                ctx.store.journal_started(&account.source).await?,
            )
        }
    };
    events.retain(|e| query.wants(e));
    let more = match events.len().saturating_sub(args.limit) {
        0 => More::None,
        // Exactly the one extra asked for: a paging provider may have stopped there.
        _ if events.len() == query.enough => More::Some,
        n => More::Count(n),
    };
    events.truncate(args.limit);
    let source = messages::history_source(capabilities.history, kind, journal_since);
    Ok(messages::history(
        &group,
        &events,
        more,
        now,
        ctx.settings.display.mask_numbers,
        source,
        call.result_visibility(),
    ))
}

/// A journal row as a membership event.
pub fn journal_event(e: JournalEntry) -> MemberEvent {
    MemberEvent {
        at: e.at,
        kind: e.kind.parse().unwrap_or(EventKind::Other),
        actor: e.actor.as_deref().map(party),
        subjects: e.subjects.iter().map(|s| party(s)).collect(),
        detail: e.detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;

    fn args(text: &str) -> Result<Args, String> {
        match Command::parse(text) {
            Ok(Command::History(a)) => Ok(a),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.message),
        }
    }

    #[test]
    fn parses_every_option() {
        let a = args("history sales --limit 5 --since 7d --type joined,left").unwrap();
        assert_eq!(a.limit, 5);
        assert_eq!(a.since, Some(std::time::Duration::from_secs(7 * 86_400)));
        assert_eq!(a.kinds, Some(vec![EventKind::Joined, EventKind::Left]));
        let a = args("history \"Sales Team\"").unwrap();
        assert_eq!(
            (a.group.as_str(), a.limit, a.since, a.kinds),
            ("Sales Team", DEFAULT_LIMIT, None, None)
        );
    }

    #[test]
    fn option_values_are_checked() {
        assert_eq!(
            args("history sales --limit 0").unwrap_err(),
            "--limit: `0` is not a number from 1 to 200"
        );
        assert_eq!(
            args("history sales --limit 201").unwrap_err(),
            "--limit: `201` is not a number from 1 to 200"
        );
        assert_eq!(
            args("history sales --limit many").unwrap_err(),
            "--limit: `many` is not a number from 1 to 200"
        );
        assert!(args("history sales --since yesterday")
            .unwrap_err()
            .starts_with("--since: `yesterday` is not a duration"));
        assert!(args("history sales --type kicked")
            .unwrap_err()
            .starts_with("--type: `kicked` is not a kind"));
        assert_eq!(
            args("history sales --sinse 1d").unwrap_err(),
            "unknown option `--sinse`; did you mean `--since`?"
        );
    }
}
