//! Members of the Slack user groups that permission bindings name
//! (`slack:usergroup:<id>`), from `usergroups.users.list`.
//!
//! - Fail closed: a list older than [`USERGROUP_TTL`] grants nothing; if Slack
//!   cannot give a fresh one, the caller is told to try again.
//! - Single flight: one fetch at a time, however many commands wait for it.
//! - Refresh ahead: a command that finds the lists past [`REFRESH_AFTER`]
//!   starts a refresh in the background and still answers from them, so an
//!   active team's `help` and `whoami` stay inline.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::outbound::{SlackClient, SlackError};
use crate::core::Principal;

/// How long the member lists are trusted.
pub const USERGROUP_TTL: Duration = Duration::from_secs(300);
/// Age after which a command triggers a background refresh.
pub const REFRESH_AFTER: Duration = Duration::from_secs(240);

/// Every bound group's members, fetched together.
struct Snapshot {
    at: Instant,
    members: HashMap<String, HashSet<String>>,
}

/// The cache. Cheap to share behind an `Arc`.
pub struct Usergroups {
    ids: Vec<String>,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
    /// Held while fetching: the single flight.
    fetching: tokio::sync::Mutex<()>,
    /// A background refresh is under way: commands that find the lists old
    /// meanwhile start no other.
    refreshing: AtomicBool,
}

impl Usergroups {
    /// A cache of the groups `ids`.
    pub fn new(ids: Vec<String>) -> Self {
        Usergroups {
            ids,
            snapshot: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
        }
    }

    fn current(&self, now: Instant) -> Option<Arc<Snapshot>> {
        let snapshot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()?;
        (now.saturating_duration_since(snapshot.at) < USERGROUP_TTL).then_some(snapshot)
    }

    fn principals_in(&self, snapshot: &Snapshot, user: &str) -> Vec<Principal> {
        self.ids
            .iter()
            .filter(|id| snapshot.members.get(*id).is_some_and(|users| users.contains(user)))
            .filter_map(|id| Principal::parse(&format!("slack:usergroup:{id}")).ok())
            .collect()
    }

    /// The caller's user-group principals from fresh lists, without asking
    /// Slack; `None` when the lists are missing or expired. Starts a
    /// background refresh when they are getting old.
    pub fn principals_cached(self: &Arc<Self>, client: &Arc<SlackClient>, user: &str) -> Option<Vec<Principal>> {
        if self.ids.is_empty() {
            return Some(Vec::new());
        }
        let now = Instant::now();
        let snapshot = self.current(now)?;
        let old = now.saturating_duration_since(snapshot.at) >= REFRESH_AFTER;
        if old && !self.refreshing.swap(true, Ordering::AcqRel) {
            let (cache, client) = (self.clone(), client.clone());
            tokio::spawn(async move {
                if let Err(e) = cache.refresh(&client, REFRESH_AFTER).await {
                    tracing::warn!(error = %e, "user group members not refreshed");
                }
                cache.refreshing.store(false, Ordering::Release);
            });
        }
        Some(self.principals_in(&snapshot, user))
    }

    /// The caller's user-group principals, fetching the lists first when they
    /// are missing or expired. An error when Slack cannot give them: the
    /// caller must not be granted anything a user group would give.
    ///
    /// The fetch runs as a task of its own: a caller that stops waiting (the
    /// ack path gives up after a second) does not cancel it, and the next
    /// caller finds its result instead of starting over.
    pub async fn principals(
        self: &Arc<Self>,
        client: &Arc<SlackClient>,
        user: &str,
    ) -> Result<Vec<Principal>, SlackError> {
        if self.ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(snapshot) = self.current(Instant::now()) {
            return Ok(self.principals_in(&snapshot, user));
        }
        let (cache, client) = (self.clone(), client.clone());
        let fetch = tokio::spawn(async move { cache.refresh(&client, USERGROUP_TTL).await });
        let snapshot = fetch
            .await
            .map_err(|_| SlackError::Transport("user group fetch stopped".into()))??;
        Ok(self.principals_in(&snapshot, user))
    }

    /// Fetches every list unless another caller got lists younger than
    /// `max_age` while this one waited for the single flight.
    async fn refresh(&self, client: &SlackClient, max_age: Duration) -> Result<Arc<Snapshot>, SlackError> {
        let _flight = self.fetching.lock().await;
        if let Some(snapshot) = self.current(Instant::now()) {
            if snapshot.at.elapsed() < max_age {
                return Ok(snapshot);
            }
        }
        let mut members = HashMap::new();
        for id in &self.ids {
            let users = client.usergroup_members(id).await.inspect_err(|e| {
                tracing::warn!(usergroup = %id, error = %e, "user group members unavailable");
            })?;
            members.insert(id.clone(), users.into_iter().collect());
        }
        let snapshot = Arc::new(Snapshot {
            at: Instant::now(),
            members,
        });
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_at(age: Duration) -> Usergroups {
        let cache = Usergroups::new(vec!["S1".into()]);
        *cache.snapshot.lock().unwrap() = Some(Arc::new(Snapshot {
            at: Instant::now() - age,
            members: HashMap::from([("S1".to_string(), HashSet::from(["U1".to_string()]))]),
        }));
        cache
    }

    #[test]
    fn lists_past_their_ttl_grant_nothing() {
        let fresh = cache_at(Duration::from_secs(10));
        let snapshot = fresh.current(Instant::now()).expect("fresh");
        assert_eq!(fresh.principals_in(&snapshot, "U1").len(), 1);
        assert!(fresh.principals_in(&snapshot, "U2").is_empty());
        let stale = cache_at(USERGROUP_TTL + Duration::from_secs(1));
        assert!(stale.current(Instant::now()).is_none(), "expired lists are not used");
    }

    /// Lists getting old are refreshed in the background by one fetch, however
    /// many commands find them old meanwhile; they still answer from them.
    #[tokio::test]
    async fn old_lists_start_one_background_refresh() {
        use wiremock::matchers::path;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let slack = MockServer::start().await;
        Mock::given(path("/usergroups.users.list"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true, "users": ["U2"]})))
            .expect(1)
            .mount(&slack)
            .await;
        let client = Arc::new(
            SlackClient::new(&crate::settings::SlackSettings {
                signing_secret: crate::settings::Secret::new("s"),
                bot_token: crate::settings::Secret::new("xoxb"),
                api_url: slack.uri(),
                response_url_prefixes: Vec::new(),
                team_ids: Vec::new(),
            })
            .unwrap(),
        );
        let cache = Arc::new(cache_at(REFRESH_AFTER + Duration::from_secs(1)));
        for _ in 0..5 {
            let principals = cache.principals_cached(&client, "U1").expect("still fresh enough");
            assert_eq!(principals.len(), 1, "answered from the old lists");
        }
        while cache.refreshing.load(Ordering::Acquire) {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            cache.principals_cached(&client, "U2").unwrap().len(),
            1,
            "the new lists"
        );
        slack.verify().await;
    }
}
