//! `subscribe`, `unsubscribe` and `subscriptions`: a channel's digests of
//! membership changes. The scheduler that posts them reads the same rows.

pub use waops_core::command::subscribe::*;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::reply::Reply;
use crate::core::values::{format_duration, zone_name};
use crate::group_ref::GroupInfo;
use crate::store::Subscription;

fn group_key(group: Option<&GroupInfo>) -> (String, String) {
    match group {
        Some(g) => (g.id.to_string(), g.label()),
        None => ("*".into(), "all groups".into()),
    }
}

/// Saves a subscription.
pub async fn run(call: &Call<'_>, args: Args, group: Option<GroupInfo>) -> Result<Reply, CommandError> {
    let ctx = call.ctx;
    let min = ctx.settings.digests.min_every;
    if !args.live && args.every < min {
        return Err(CommandError::User(Reply::user_error(format!(
            "--every must be at least {} here",
            format_duration(min)
        ))));
    }
    let (group_ref, group_name) = group_key(group.as_ref());
    let subscription = Subscription {
        id: uuid::Uuid::new_v4().simple().to_string(),
        platform: call.inv.platform.as_str().into(),
        channel: call.inv.channel.to_string(),
        group_ref,
        group_name,
        // Live alerts are 10-second windows by arrival, in UTC.
        every_s: if args.live {
            crate::core::subscription::LIVE_BATCH_S
        } else {
            args.every.as_secs() as i64
        },
        at_time: args.at.filter(|_| !args.live).map(|t| t.to_string()),
        tz: zone_name(&args.tz).to_string(),
        created_by: call.inv.caller().to_string(),
        created_at: ctx.clock.now(),
        live: args.live,
    };
    let created = ctx.store.upsert_subscription(&subscription).await?;
    Ok(messages::subscribed(&subscription, created))
}

/// Removes subscriptions: one group's, or with `*` all of the channel's.
pub async fn run_unsubscribe(
    call: &Call<'_>,
    args: UnsubscribeArgs,
    group: Option<GroupInfo>,
) -> Result<Reply, CommandError> {
    let (platform, channel) = (call.inv.platform.as_str(), call.inv.channel.as_str());
    let (filter, name) = match (&args.target, &group) {
        (SubTarget::All, _) | (_, None) => (None, "all groups".to_string()),
        (SubTarget::Group(_), Some(g)) => (Some(g.id.to_string()), g.label()),
    };
    let removed = call
        .ctx
        .store
        .delete_subscriptions(platform, channel, filter.as_deref())
        .await?;
    Ok(messages::unsubscribed(removed, &name))
}

/// Lists the channel's subscriptions.
pub async fn run_list(call: &Call<'_>) -> Result<Reply, CommandError> {
    let list = call
        .ctx
        .store
        .channel_subscriptions(call.inv.platform.as_str(), call.inv.channel.as_str())
        .await?;
    Ok(messages::subscriptions(&list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::Command;

    fn sub(text: &str) -> Result<Args, String> {
        match Command::parse(text) {
            Ok(Command::Subscribe(a)) => Ok(a),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.message),
        }
    }

    #[test]
    fn parses_schedules() {
        let a = sub("subscribe * --every 1d --at 09:00 --tz Europe/Berlin").unwrap();
        assert_eq!(a.target, SubTarget::All);
        assert_eq!(a.at, Some(crate::core::values::TimeOfDay { hour: 9, minute: 0 }));
        assert_eq!(zone_name(&a.tz), "Europe/Berlin");
        let a = sub("subscribe \"Sales Team\"").unwrap();
        assert_eq!(
            (a.target, a.every, a.at, a.tz),
            (
                SubTarget::Group("Sales Team".into()),
                DEFAULT_EVERY,
                None,
                jiff::tz::TimeZone::UTC
            )
        );
        assert_eq!(sub("subscribe \"*\"").unwrap().target, SubTarget::Group("*".into()));
    }

    #[test]
    fn schedule_errors() {
        assert_eq!(
            sub("subscribe * --every 6h --at 09:00").unwrap_err(),
            "--at needs --every in whole days (1d, 7d, 2w); got 6h"
        );
        assert!(sub("subscribe * --at 25:00")
            .unwrap_err()
            .starts_with("--at: `25:00` is not a time of day"));
        assert!(sub("subscribe * --tz Mars/Base")
            .unwrap_err()
            .starts_with("--tz: `Mars/Base` is not a time zone"));
        assert_eq!(sub("subscribe").unwrap_err(), "missing <group|*>");
    }

    #[test]
    fn unsubscribe_and_list() {
        assert_eq!(
            Command::parse("unsubscribe *").unwrap(),
            Command::Unsubscribe(UnsubscribeArgs { target: SubTarget::All })
        );
        assert_eq!(Command::parse("subscriptions").unwrap(), Command::Subscriptions);
        assert_eq!(
            Command::parse("subscriptions extra").unwrap_err().message,
            "unexpected `extra`"
        );
    }
}
