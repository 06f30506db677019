//! The digest scheduler: every `digests.tick_s` each replica claims the
//! subscriptions whose window has closed, builds each window's digest from the
//! history source (the provider's, or waops' journal) and posts it to Slack or
//! Discord, exactly once per (subscription, window) across restarts and replicas.
//!
//! The store does the coordination (see `store::digests`); this module decides
//! what to post and how to close the one gap a store cannot: a replica that
//! posted and died before recording it. Discord messages carry a nonce derived
//! from the window with `enforce_nonce`, so Discord answers a repeat with the
//! first message; Slack messages carry metadata naming the window, and a window
//! whose earlier attempt ended without an answer is first looked up in the
//! channel's recent history.

pub use waops_core::schedule;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use crate::core::messages;
use crate::core::{Account, ChatPoster, Context, PostError, PostKey};
use crate::group_ref::GroupId;
use crate::providers::{HistorySource, MemberEvent};
use crate::store::{Claimed, Platforms, PriorAttempt};

/// Windows one claim works through before the subscription is given back
/// (a long outage is caught up over several ticks, never skipped).
const WINDOWS_PER_CLAIM: usize = 100;

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Subscriptions claimed.
    pub claimed: usize,
    /// Digests posted (or found already posted).
    pub posted: usize,
    /// Windows closed with nothing to post.
    pub empty: usize,
    /// Windows that failed and wait for the next tick.
    pub failed: usize,
    /// Subscriptions whose lease another replica took over mid-way.
    pub lost: usize,
    /// How far behind the oldest window claimed was (`waops_digest_lag_seconds`):
    /// 0 when nothing was due, growing while posts keep failing.
    pub lag: jiff::SignedDuration,
}

impl TickReport {
    fn add(&mut self, other: TickReport) {
        self.claimed += other.claimed;
        self.posted += other.posted;
        self.empty += other.empty;
        self.failed += other.failed;
        self.lost += other.lost;
        self.lag = self.lag.max(other.lag);
    }
}

/// Why a window was not posted this time.
#[derive(Debug)]
enum Failure {
    /// The platform said no: nothing was posted.
    Refused(String),
    /// No answer, or the history or store was unavailable: it may or may not have been posted.
    Unknown(String),
}

impl Failure {
    fn text(&self) -> &str {
        match self {
            Failure::Refused(t) | Failure::Unknown(t) => t,
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Unknown(format!("{e:#}"))
    }
}

/// One replica's scheduler.
pub struct Scheduler {
    ctx: Context,
    owner: String,
    posters: Posters,
    lease: Duration,
}

impl Scheduler {
    /// A scheduler posting through `posters`, as replica `owner`.
    pub fn new(ctx: Context, owner: impl Into<String>, posters: Posters) -> Arc<Self> {
        let lease = ctx.settings.digests.lease;
        Arc::new(Scheduler {
            ctx,
            owner: owner.into(),
            posters,
            lease,
        })
    }

    /// A replica id unique to this process: host, pid and a random part.
    pub fn replica_id() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "waops".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}-{}", std::process::id(), &random[..8])
    }

    /// Which platforms can be posted to; subscriptions of the others wait.
    pub fn platforms(&self) -> Platforms {
        Platforms {
            slack: self.posters.slack.is_some(),
            discord: self.posters.discord.is_some(),
        }
    }

    /// Ticks every `digests.tick_s` until `stopping` turns true; a tick under
    /// way is finished first (its leases would otherwise hold the windows up).
    pub async fn run(self: Arc<Self>, mut stopping: tokio::sync::watch::Receiver<bool>) {
        let platforms = self.platforms();
        if !platforms.slack && !platforms.discord {
            tracing::info!("digests: no Slack or Discord bot token; the scheduler is off");
            return;
        }
        let mut interval = tokio::time::interval(self.ctx.settings.digests.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = stopping.wait_for(|s| *s) => break,
            }
            match self.tick(self.ctx.clock.now()).await {
                Ok(r) if r == TickReport::default() => {}
                Ok(r) => tracing::info!(
                    claimed = r.claimed,
                    posted = r.posted,
                    empty = r.empty,
                    failed = r.failed,
                    lost = r.lost,
                    "digest tick"
                ),
                Err(e) => tracing::warn!(error = format!("{e:#}"), "digest tick failed; next tick retries"),
            }
        }
    }

    /// One tick at `now`: claims due subscriptions in batches and works
    /// through their closed windows, `digests.concurrency` at a time.
    pub async fn tick(self: &Arc<Self>, now: Timestamp) -> anyhow::Result<TickReport> {
        let concurrency = self.ctx.settings.digests.concurrency as usize;
        let mut report = TickReport::default();
        loop {
            let batch = self
                .ctx
                .store
                .claim_due_digests(&self.owner, now, self.lease, concurrency as i64, self.platforms())
                .await?;
            if batch.is_empty() {
                metrics::gauge!("waops_digest_lag_seconds").set(report.lag.as_secs_f64());
                return Ok(report);
            }
            let mut tasks = tokio::task::JoinSet::new();
            for claimed in batch {
                report.lag = report.lag.max(now.duration_since(claimed.window_end));
                let this = self.clone();
                tasks.spawn(async move { this.work(claimed, now).await });
            }
            while let Some(done) = tasks.join_next().await {
                report.add(done?);
            }
        }
    }

    /// Posts a claimed subscription's closed windows in order; the last one
    /// closed gives the lease back in the same statement that moves the cursor.
    async fn work(&self, mut claimed: Claimed, now: Timestamp) -> TickReport {
        let id = claimed.subscription.id.clone();
        let schedule = claimed.subscription.schedule();
        let mut report = TickReport {
            claimed: 1,
            ..TickReport::default()
        };
        let renewed = now + jiff::SignedDuration::try_from(self.lease).unwrap_or_default();
        for done in 1..=WINDOWS_PER_CLAIM {
            let posted = match self.post_window(&claimed).await {
                Ok(posted) => posted,
                Err(failure) => {
                    report.failed += 1;
                    metrics::counter!("waops_digests_total", "outcome" => "failed").increment(1);
                    tracing::warn!(
                        subscription = %id,
                        window_start = %claimed.window_start,
                        reason = failure.text(),
                        "digest not posted; the next tick retries"
                    );
                    self.give_back(&id, now, failure.text()).await;
                    return report;
                }
            };
            let next_end = schedule.next_after(claimed.window_end);
            let grace = if claimed.subscription.live {
                jiff::SignedDuration::from_millis(crate::store::digests::LIVE_GRACE_MS)
            } else {
                jiff::SignedDuration::ZERO
            };
            let more = next_end + grace <= now && done < WINDOWS_PER_CLAIM;
            let closed = self
                .ctx
                .store
                .close_digest_window(
                    &claimed,
                    posted.as_deref(),
                    &self.owner,
                    now,
                    next_end,
                    more.then_some(renewed),
                )
                .await;
            match closed {
                Ok(true) => {
                    if posted.is_some() {
                        report.posted += 1;
                        metrics::counter!("waops_digests_total", "outcome" => "posted").increment(1);
                    } else {
                        report.empty += 1;
                        metrics::counter!("waops_digests_total", "outcome" => "empty").increment(1);
                    }
                }
                Ok(false) => {
                    // Our lease ran out and another replica took over; the post (if
                    // any) is recorded, so it will not be repeated.
                    tracing::warn!(subscription = %id, "digest lease lost");
                    report.lost += 1;
                    return report;
                }
                Err(e) => {
                    report.failed += 1;
                    self.give_back(&id, now, &format!("{e:#}")).await;
                    return report;
                }
            }
            if !more {
                return report;
            }
            claimed.window_start = claimed.window_end;
            claimed.window_end = next_end;
        }
        report
    }

    /// Releases the lease after a failure. The subscription stays out of this
    /// tick (its retry belongs to the next one) by holding it until just after `now`.
    async fn give_back(&self, id: &str, now: Timestamp, error: &str) {
        let retry_after = now + jiff::SignedDuration::from_millis(1);
        if let Err(e) = self.ctx.store.release_digest(id, &self.owner, error, retry_after).await {
            // The lease then simply expires.
            tracing::warn!(subscription = %id, error = format!("{e:#}"), "cannot release the digest lease");
        }
    }

    /// Builds and posts one window: the message reference, or `None` when it
    /// was empty and nothing was posted. Recording it is the caller's.
    async fn post_window(&self, claimed: &Claimed) -> Result<Option<String>, Failure> {
        let store = &self.ctx.store;
        let groups = self.collect(claimed).await?;
        let events: usize = groups.iter().map(|(_, e)| e.len()).sum();
        if events == 0 && !self.ctx.settings.digests.post_empty {
            return Ok(None);
        }
        let found = match store.begin_digest_post(claimed, events).await? {
            PriorAttempt::Posted(r) => Some(r),
            PriorAttempt::Unknown => self.find_earlier_post(claimed).await,
            PriorAttempt::None => None,
        };
        if let Some(reference) = found {
            return Ok(Some(reference));
        }
        let reply = messages::digest(
            &claimed.subscription,
            (claimed.window_start, claimed.window_end),
            &groups,
            self.ctx.settings.display.mask_numbers,
        );
        match self.post(claimed, &reply).await {
            Ok(reference) => Ok(Some(reference)),
            Err(Failure::Refused(reason)) => {
                store.digest_post_failed(claimed).await?;
                Err(Failure::Refused(reason))
            }
            Err(unknown) => Err(unknown),
        }
    }

    /// The window's events per group, oldest first: of the one group's
    /// account, or (`*`) of every account.
    async fn collect(&self, claimed: &Claimed) -> Result<Vec<(String, Vec<MemberEvent>)>, Failure> {
        let accounts = &self.ctx.accounts;
        let sub = &claimed.subscription;
        let mut groups = Vec::new();
        if sub.group_ref == "*" {
            for account in accounts.all() {
                groups.extend(self.collect_from(account, claimed, None).await?);
            }
        } else {
            let id = GroupId::parse(&sub.group_ref)
                .ok_or_else(|| Failure::Refused(format!("`{}` is not a group id", sub.group_ref)))?;
            let account = self.account_listing(&id).await;
            groups.extend(self.collect_from(account, claimed, Some(id)).await?);
        }
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(groups)
    }

    /// The account whose group list holds `id`; the first when none does
    /// (or only one is configured), as before there were accounts.
    async fn account_listing(&self, id: &GroupId) -> &Account {
        let accounts = &self.ctx.accounts;
        if accounts.several() {
            for account in accounts.all() {
                if let Ok((list, _)) = account.groups(false).await {
                    if list.iter().any(|g| &g.id == id) {
                        return account;
                    }
                }
            }
        }
        accounts.first()
    }

    /// One account's events of the window: of group `one`, or of all its groups.
    async fn collect_from(
        &self,
        account: &Account,
        claimed: &Claimed,
        one: Option<GroupId>,
    ) -> Result<Vec<(String, Vec<MemberEvent>)>, Failure> {
        let ctx = &self.ctx;
        let sub = &claimed.subscription;
        let (from, to) = (claimed.window_start, claimed.window_end);
        // Live alerts read the journal (webhooks, every provider) by arrival,
        // so an event is in exactly one window however late its own time is.
        let source = if sub.live {
            HistorySource::Journal
        } else {
            account.provider.capabilities().history
        };
        match source {
            HistorySource::Journal => {
                let group = one.as_ref().map(GroupId::as_str);
                let entries = if sub.live {
                    ctx.store
                        .events_received_between(&account.source, group, from, to)
                        .await?
                } else {
                    ctx.store.events_between(&account.source, group, from, to).await?
                };
                let mut by_group: BTreeMap<String, Vec<MemberEvent>> = BTreeMap::new();
                for e in entries {
                    let gid = e.group_id.clone();
                    by_group
                        .entry(gid)
                        .or_default()
                        .push(crate::commands::history::journal_event(e));
                }
                if one.is_some() {
                    return Ok(vec![(
                        sub.group_name.clone(),
                        by_group.into_values().flatten().collect(),
                    )]);
                }
                let names = group_names(account).await;
                Ok(by_group
                    .into_iter()
                    .map(|(gid, events)| (names.get(&gid).cloned().unwrap_or(gid), events))
                    .collect())
            }
            HistorySource::Provider => {
                let targets: Vec<(GroupId, String)> = match one {
                    Some(id) => vec![(id, sub.group_name.clone())],
                    None => {
                        let (list, _) = account
                            .groups(false)
                            .await
                            .map_err(|e| Failure::Unknown(format!("group list of {}: {}", account.name, e.kind)))?;
                        list.iter().map(|g| (g.id.clone(), g.label())).collect()
                    }
                };
                let mut groups = Vec::new();
                for (id, name) in targets {
                    let mut events = account
                        .provider
                        .history(&id, &crate::providers::HistoryQuery::all_since(from))
                        .await
                        .map_err(|e| Failure::Unknown(format!("history of {id}: {}", e.kind)))?;
                    events.retain(|e| e.at >= from && e.at < to);
                    events.reverse();
                    groups.push((name, events));
                }
                Ok(groups)
            }
        }
    }

    /// Posts the digest; returns the platform's message reference.
    async fn post(&self, claimed: &Claimed, reply: &crate::core::Reply) -> Result<String, Failure> {
        let sub = &claimed.subscription;
        let poster = self.poster(&sub.platform)?;
        Ok(poster.post(channel_id(&sub.channel), reply, &key(claimed)).await?)
    }

    /// After an attempt that ended without an answer: the message it may have
    /// posted, if the platform needs looking (Slack: by its metadata).
    async fn find_earlier_post(&self, claimed: &Claimed) -> Option<String> {
        let sub = &claimed.subscription;
        let poster = self.poster(&sub.platform).ok()?;
        match poster.find_earlier(channel_id(&sub.channel), &key(claimed)).await {
            Ok(found) => found,
            Err(e) => {
                // Posting again risks a duplicate; not posting risks a lost digest. Post.
                tracing::warn!(subscription = %sub.id, error = %e, "cannot look for an earlier digest post");
                None
            }
        }
    }

    fn poster(&self, platform: &str) -> Result<&Arc<dyn ChatPoster>, Failure> {
        let poster = match platform {
            "slack" => self.posters.slack.as_ref(),
            "discord" => self.posters.discord.as_ref(),
            other => return Err(Failure::Refused(format!("cannot post digests to {other}"))),
        };
        poster.ok_or_else(|| Failure::Unknown(format!("{platform} is not configured")))
    }
}

/// The digest posters of the configured platforms (`app::chat_posters`).
#[derive(Clone, Default)]
pub struct Posters {
    /// Slack's, when a bot token is set.
    pub slack: Option<Arc<dyn ChatPoster>>,
    /// Discord's, when a bot token is set.
    pub discord: Option<Arc<dyn ChatPoster>>,
}

impl From<PostError> for Failure {
    fn from(e: PostError) -> Self {
        match e {
            PostError::Refused(t) => Failure::Refused(t),
            PostError::Unknown(t) => Failure::Unknown(t),
        }
    }
}

/// Group id → name (with the account when several) from the account's
/// (cached) group list; empty when it cannot be read.
async fn group_names(account: &Account) -> BTreeMap<String, String> {
    match account.groups(false).await {
        Ok((list, _)) => list.iter().map(|g| (g.id.to_string(), g.label())).collect(),
        Err(_) => BTreeMap::new(),
    }
}

/// The post's key: its subscription and window.
pub fn key(claimed: &Claimed) -> PostKey {
    PostKey {
        subscription: claimed.subscription.id.clone(),
        window_start: claimed.window_start,
        window_end: claimed.window_end,
    }
}

/// `slack:C123` → `C123`.
fn channel_id(channel: &str) -> &str {
    channel.split_once(':').map_or(channel, |(_, id)| id)
}
