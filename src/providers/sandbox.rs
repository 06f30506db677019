//! The built-in sandbox provider: in memory, deterministic, seeded so every
//! reply path can be tried without an account.
//!
//! | try this | to see |
//! |---|---|
//! | `join OpenDayVisitors2026` | joined |
//! | `join PartnersLoungeApproval1` | pending approval |
//! | `join OldSalesLinkRevoked01` | revoked link |
//! | `join RateLimitedSandbox001` | rate limited |
//! | add a number ending in `0000` | not on WhatsApp |
//! | add a number ending in `9999` | invite sent (privacy) |
//! | add `+4915111111111` to Sales Team | already a member |
//! | `add`/`invite --reset` on Announcements | not a group admin |
//! | `members sales` | members and admins (waops' own number among them) |
//! | `remove`/`promote`/`demote` a number ending in `8888` | a refused change |
//! | `remove * +4915178787878` | offboarding: a member of Sales Team, Support Crew and Announcements (not an admin there) |

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::*;
use crate::core::values::EventKind;
use crate::core::Clock;
use crate::group_ref::{GroupId, GroupInfo};
use crate::invite_link;
use crate::invite_link::InviteCode;
use crate::phone::E164;

/// The sandbox's own WhatsApp number: the actor of adds made through waops.
pub const OWN_NUMBER: &str = "+4930901820";

/// A number seeded into three groups, to try offboarding with `remove *`.
pub const LEAVER: &str = "+4915178787878";

struct Group {
    info: GroupInfo,
    admin: bool,
    member: bool,
    approval: bool,
    invite: String,
    members: Vec<E164>,
    admins: Vec<E164>,
}

struct State {
    groups: Vec<Group>,
    revoked: Vec<String>,
    events: Vec<(GroupId, MemberEvent)>,
    next_code: u32,
}

/// The sandbox provider.
pub struct Sandbox {
    state: Mutex<State>,
    clock: Clock,
}

fn num(text: &str) -> E164 {
    E164::from_trusted(text).expect("seed numbers are valid")
}

fn id(text: &str) -> GroupId {
    GroupId::parse(text).expect("seed ids are valid")
}

impl Sandbox {
    /// A sandbox seeded relative to the clock's current time.
    /// Aliases for two seeded groups, so the README's examples (`add sales …`)
    /// work out of the box. They exist only with this provider: on a real
    /// account these ids are nobody's groups (`Settings::alias_map`).
    pub const ALIASES: [(&'static str, &'static str); 2] = [
        ("sales", "120363041234567890@g.us"),
        ("support", "120363041234567891@g.us"),
    ];

    pub fn new(clock: Clock) -> Self {
        let group =
            |gid: &str, name: &str, admin: bool, member: bool, approval: bool, invite: &str, members: &[&str]| Group {
                info: GroupInfo::new(id(gid), name),
                admin,
                member,
                approval,
                invite: invite.into(),
                members: members.iter().map(|m| num(m)).collect(),
                admins: Vec::new(),
            };
        let groups = vec![
            group(
                "120363041234567890@g.us",
                "Sales Team",
                true,
                true,
                false,
                "Kx7Pq2Lm9Zt4Rw8Yb3Nc",
                &["+4915111111111", "+4915122222222", "+4915133333333", LEAVER],
            ),
            group(
                "120363041234567891@g.us",
                "Support Crew",
                true,
                true,
                false,
                "Sp9Rt4Cw2Ex8Yq1Zm5Lk",
                &["+4915144444444", "+14155552671", "+4915188888888", LEAVER],
            ),
            group(
                "120363041234567892@g.us",
                "Community Berlin",
                true,
                true,
                false,
                "Cb3Er7Li9Nz2Ux6Wa4Qd",
                &["+4930123456"],
            ),
            group(
                "120363041234567893@g.us",
                "Community Hamburg",
                true,
                true,
                false,
                "Ch8Am5Bu1Rg7Tx3Vk9Pe",
                &["+4940123456"],
            ),
            group(
                "120363041234567894@g.us",
                "Announcements",
                false,
                true,
                false,
                "An2No4Un6Ce8Me0Nt5Sx",
                &["+4915111111111", LEAVER],
            ),
            group(
                "120363041234567895@g.us",
                "Open Day Visitors",
                false,
                false,
                false,
                "OpenDayVisitors2026",
                &[],
            ),
            group(
                "120363041234567896@g.us",
                "Partners Lounge",
                false,
                false,
                true,
                "PartnersLoungeApproval1",
                &[],
            ),
        ];
        let mut groups = groups;
        // Admins, as the seeded history made them.
        groups[0].admins = vec![num("+4915111111111"), num("+4915122222222")];
        groups[1].admins = vec![num("+4915144444444")];
        groups[4].admins = vec![num("+4915111111111")];
        let now = clock.now();
        let ago = |h: i64| now - jiff::SignedDuration::from_hours(h);
        let n = |s: &str| Party::Number(num(s));
        let ev = |at, kind, actor: Option<Party>, subjects: Vec<Party>, detail: Option<&str>| MemberEvent {
            at,
            kind,
            actor,
            subjects,
            detail: detail.map(str::to_string),
        };
        let sales = id("120363041234567890@g.us");
        let support = id("120363041234567891@g.us");
        let events = vec![
            (
                sales.clone(),
                ev(
                    ago(2),
                    EventKind::Added,
                    Some(n("+4915111111111")),
                    vec![n("+4915133333333")],
                    None,
                ),
            ),
            (
                sales.clone(),
                ev(ago(5), EventKind::Joined, None, vec![n("+4915122222222")], None),
            ),
            (
                sales.clone(),
                ev(ago(26), EventKind::Left, None, vec![n("+4915155555555")], None),
            ),
            (
                sales.clone(),
                ev(
                    ago(50),
                    EventKind::Promoted,
                    Some(n("+4915111111111")),
                    vec![n("+4915122222222")],
                    None,
                ),
            ),
            (
                sales.clone(),
                ev(
                    ago(74),
                    EventKind::Settings,
                    Some(n("+4915111111111")),
                    vec![],
                    Some("only admins can edit group info"),
                ),
            ),
            (
                sales.clone(),
                ev(
                    ago(98),
                    EventKind::Removed,
                    Some(n("+4915111111111")),
                    vec![n("+4915166666666")],
                    None,
                ),
            ),
            (
                sales.clone(),
                ev(
                    ago(146),
                    EventKind::Demoted,
                    Some(n("+4915111111111")),
                    vec![n("+4915177777777")],
                    None,
                ),
            ),
            (
                sales,
                ev(
                    ago(220),
                    EventKind::Other,
                    Some(n("+4915111111111")),
                    vec![],
                    Some("created the group"),
                ),
            ),
            (
                support.clone(),
                ev(ago(3), EventKind::Joined, None, vec![n("+14155552671")], None),
            ),
            (
                support,
                ev(
                    ago(30),
                    EventKind::Added,
                    Some(n(OWN_NUMBER)),
                    vec![n("+4915144444444")],
                    None,
                ),
            ),
        ];
        Sandbox {
            state: Mutex::new(State {
                groups,
                revoked: vec!["OldSalesLinkRevoked01".into()],
                events,
                next_code: 1,
            }),
            clock,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the seed data half-written
        // in a way that matters for a sandbox; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn code(text: &str) -> InviteCode {
    invite_link::parse(text).expect("sandbox codes are valid")
}

impl State {
    fn member_group(&mut self, gid: &GroupId) -> Result<&mut Group, ProviderError> {
        self.groups
            .iter_mut()
            .find(|g| &g.info.id == gid && g.member)
            .ok_or_else(|| ProviderErrorKind::NotFound.into())
    }
}

#[async_trait]
impl Provider for Sandbox {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Sandbox
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            history: HistorySource::Provider,
            invite_reset: true,
            pending_approval: true,
            forced_add: false,
            connected_admin: true,
        }
    }

    fn pacing(&self) -> Pacing {
        // In memory: no request limits to respect.
        Pacing {
            chunk_size: usize::MAX,
            pause: Duration::ZERO,
        }
    }

    async fn list_groups(&self) -> Result<Vec<GroupInfo>, ProviderError> {
        Ok(self
            .state()
            .groups
            .iter()
            .filter(|g| g.member)
            .map(|g| GroupInfo {
                admin: Some(g.admin),
                ..g.info.clone()
            })
            .collect())
    }

    async fn join(&self, invite: &InviteCode) -> Result<JoinOutcome, ProviderError> {
        if invite.as_str() == "RateLimitedSandbox001" {
            return Err(ProviderErrorKind::RateLimited(Some(Duration::from_secs(30))).into());
        }
        let mut state = self.state();
        if state.revoked.iter().any(|c| c == invite.as_str()) {
            return Err(ProviderErrorKind::InvalidInvite.into());
        }
        let now = self.clock.now();
        let group = state
            .groups
            .iter_mut()
            .find(|g| g.invite == invite.as_str())
            .ok_or(ProviderError::from(ProviderErrorKind::InvalidInvite))?;
        if group.approval {
            return Ok(JoinOutcome::PendingApproval(Some(group.info.id.clone())));
        }
        let info = group.info.clone();
        if !group.member {
            group.member = true;
            let event = MemberEvent {
                at: now,
                kind: EventKind::Joined,
                actor: None,
                subjects: vec![Party::Number(num(OWN_NUMBER))],
                detail: None,
            };
            state.events.push((info.id.clone(), event));
        }
        Ok(JoinOutcome::Joined(info))
    }

    async fn add(&self, gid: &GroupId, numbers: &[E164]) -> Result<Vec<AddResult>, ProviderError> {
        let now = self.clock.now();
        let mut state = self.state();
        let group = state.member_group(gid)?;
        if !group.admin {
            return Err(ProviderErrorKind::NotAdmin.into());
        }
        let mut results = Vec::with_capacity(numbers.len());
        let mut added = Vec::new();
        for number in numbers {
            let outcome = if group.members.contains(number) {
                AddOutcome::AlreadyMember
            } else if number.digits().ends_with("0000") {
                AddOutcome::NotOnWhatsApp
            } else if number.digits().ends_with("9999") {
                AddOutcome::InviteSent
            } else {
                group.members.push(number.clone());
                added.push(Party::Number(number.clone()));
                AddOutcome::Added
            };
            results.push(AddResult {
                number: number.clone(),
                outcome,
            });
        }
        if !added.is_empty() {
            let event = MemberEvent {
                at: now,
                kind: EventKind::Added,
                actor: Some(Party::Number(num(OWN_NUMBER))),
                subjects: added,
                detail: None,
            };
            state.events.push((gid.clone(), event));
        }
        Ok(results)
    }

    async fn members(&self, gid: &GroupId) -> Result<Members, ProviderError> {
        let mut state = self.state();
        let group = state.member_group(gid)?;
        let own = Member {
            party: Party::Number(num(OWN_NUMBER)),
            role: if group.admin { Role::Admin } else { Role::Member },
            name: Some("waops (sandbox)".into()),
        };
        let members = std::iter::once(own)
            .chain(group.members.iter().map(|n| Member {
                party: Party::Number(n.clone()),
                role: if group.admins.contains(n) {
                    Role::Admin
                } else {
                    Role::Member
                },
                name: None,
            }))
            .collect();
        Ok(Members {
            members,
            connected_admin: Some(group.admin),
        })
    }

    async fn change_members(
        &self,
        gid: &GroupId,
        change: MemberChange,
        numbers: &[E164],
    ) -> Result<Vec<ChangeResult>, ProviderError> {
        let now = self.clock.now();
        let mut state = self.state();
        let group = state.member_group(gid)?;
        if !group.admin {
            return Err(ProviderErrorKind::NotAdmin.into());
        }
        let mut changed = Vec::new();
        let results = numbers
            .iter()
            .map(|number| {
                let admin = group.admins.contains(number);
                let outcome = if !group.members.contains(number) {
                    ChangeOutcome::NotAMember
                } else if number.digits().ends_with("8888") {
                    ChangeOutcome::Failed("WhatsApp refused the change (the sandbox's 8888 numbers)".into())
                } else if (change == MemberChange::Promote && admin) || (change == MemberChange::Demote && !admin) {
                    ChangeOutcome::AlreadySo
                } else {
                    match change {
                        MemberChange::Remove => {
                            group.members.retain(|m| m != number);
                            group.admins.retain(|m| m != number);
                        }
                        MemberChange::Promote => group.admins.push(number.clone()),
                        MemberChange::Demote => group.admins.retain(|m| m != number),
                    }
                    changed.push(Party::Number(number.clone()));
                    ChangeOutcome::Done
                };
                ChangeResult {
                    number: number.clone(),
                    outcome,
                }
            })
            .collect();
        if !changed.is_empty() {
            let kind = match change {
                MemberChange::Remove => EventKind::Removed,
                MemberChange::Promote => EventKind::Promoted,
                MemberChange::Demote => EventKind::Demoted,
            };
            let event = MemberEvent {
                at: now,
                kind,
                actor: Some(Party::Number(num(OWN_NUMBER))),
                subjects: changed,
                detail: None,
            };
            state.events.push((gid.clone(), event));
        }
        Ok(results)
    }

    async fn invite_code(&self, gid: &GroupId) -> Result<InviteCode, ProviderError> {
        let mut state = self.state();
        let group = state.member_group(gid)?;
        if !group.admin {
            return Err(ProviderErrorKind::NotAdmin.into());
        }
        Ok(code(&group.invite))
    }

    async fn reset_invite(&self, gid: &GroupId) -> Result<InviteCode, ProviderError> {
        let mut state = self.state();
        let serial = state.next_code;
        let group = state.member_group(gid)?;
        if !group.admin {
            return Err(ProviderErrorKind::NotAdmin.into());
        }
        let old = std::mem::replace(
            &mut group.invite,
            format!("SandboxReset{serial:04}{}", &group.info.id.as_str()[..6]),
        );
        let new = code(&group.invite);
        state.revoked.push(old);
        state.next_code += 1;
        Ok(new)
    }

    async fn history(&self, gid: &GroupId, query: &HistoryQuery) -> Result<Vec<MemberEvent>, ProviderError> {
        let mut state = self.state();
        state.member_group(gid)?;
        let mut events: Vec<MemberEvent> = state
            .events
            .iter()
            .filter(|(g, e)| g == gid && e.at >= query.since)
            .map(|(_, e)| e.clone())
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        Ok(events)
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;

    fn sandbox() -> Sandbox {
        Sandbox::new(Clock::Fixed("2026-11-24T12:00:00Z".parse().unwrap()))
    }

    fn sales() -> GroupId {
        id("120363041234567890@g.us")
    }

    #[tokio::test]
    async fn join_outcomes() {
        let s = sandbox();
        let joined = s.join(&code("OpenDayVisitors2026")).await.unwrap();
        assert!(matches!(joined, JoinOutcome::Joined(ref g) if g.name == "Open Day Visitors"));
        assert!(s
            .list_groups()
            .await
            .unwrap()
            .iter()
            .any(|g| g.name == "Open Day Visitors"));
        assert_eq!(
            s.join(&code("PartnersLoungeApproval1")).await.unwrap(),
            JoinOutcome::PendingApproval(Some(id("120363041234567896@g.us")))
        );
        assert_eq!(
            s.join(&code("OldSalesLinkRevoked01")).await.unwrap_err().kind,
            ProviderErrorKind::InvalidInvite
        );
        assert_eq!(
            s.join(&code("UnknownCode000000000")).await.unwrap_err().kind,
            ProviderErrorKind::InvalidInvite
        );
        assert_eq!(
            s.join(&code("RateLimitedSandbox001")).await.unwrap_err().kind,
            ProviderErrorKind::RateLimited(Some(Duration::from_secs(30)))
        );
    }

    #[tokio::test]
    async fn add_outcomes() {
        let s = sandbox();
        let numbers = [
            num("+4915111111111"),
            num("+4915112340000"),
            num("+4915112349999"),
            num("+4915112345678"),
        ];
        let outcomes: Vec<_> = s
            .add(&sales(), &numbers)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(
            outcomes,
            [
                AddOutcome::AlreadyMember,
                AddOutcome::NotOnWhatsApp,
                AddOutcome::InviteSent,
                AddOutcome::Added
            ]
        );
        // The add is now a member and shows in history.
        let again = s.add(&sales(), &[num("+4915112345678")]).await.unwrap();
        assert_eq!(again[0].outcome, AddOutcome::AlreadyMember);
        let history = s
            .history(&sales(), &HistoryQuery::all_since(Timestamp::MIN))
            .await
            .unwrap();
        assert_eq!(history[0].kind, EventKind::Added);
        assert_eq!(history[0].subjects, [Party::Number(num("+4915112345678"))]);
    }

    #[tokio::test]
    async fn the_aliases_name_seeded_groups() {
        let groups = sandbox().list_groups().await.unwrap();
        for (alias, gid) in Sandbox::ALIASES {
            let group = groups.iter().find(|g| g.id == id(gid));
            assert!(
                group.is_some_and(|g| g.name.to_lowercase().starts_with(alias)),
                "{alias}"
            );
        }
    }

    #[tokio::test]
    async fn not_admin_and_not_member() {
        let s = sandbox();
        let ann = id("120363041234567894@g.us");
        assert_eq!(
            s.add(&ann, &[num("+4915112345678")]).await.unwrap_err().kind,
            ProviderErrorKind::NotAdmin
        );
        assert_eq!(
            s.reset_invite(&ann).await.unwrap_err().kind,
            ProviderErrorKind::NotAdmin
        );
        let outside = id("120363041234567895@g.us");
        assert_eq!(
            s.invite_code(&outside).await.unwrap_err().kind,
            ProviderErrorKind::NotFound
        );
    }

    #[tokio::test]
    async fn reset_revokes_the_old_link() {
        let s = sandbox();
        let old = s.invite_code(&sales()).await.unwrap();
        let new = s.reset_invite(&sales()).await.unwrap();
        assert_ne!(old, new);
        assert_eq!(s.invite_code(&sales()).await.unwrap(), new);
        assert_eq!(s.join(&old).await.unwrap_err().kind, ProviderErrorKind::InvalidInvite);
        assert!(matches!(s.join(&new).await.unwrap(), JoinOutcome::Joined(_)));
    }

    #[tokio::test]
    async fn history_is_newest_first_and_since_bounded() {
        let s = sandbox();
        let all = s
            .history(&sales(), &HistoryQuery::all_since(Timestamp::MIN))
            .await
            .unwrap();
        assert_eq!(all.len(), 8);
        assert!(all.windows(2).all(|w| w[0].at >= w[1].at));
        let kinds: std::collections::BTreeSet<_> = all.iter().map(|e| e.kind).collect();
        assert_eq!(kinds.len(), 8, "the seed covers every kind");
        let day = s
            .history(
                &sales(),
                &HistoryQuery::all_since("2026-11-23T12:00:00Z".parse().unwrap()),
            )
            .await
            .unwrap();
        assert_eq!(day.len(), 2);
    }
}
