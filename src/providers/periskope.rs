//! Periskope (`https://api.periskope.app/v1`): `Authorization: Bearer <key>` and
//! `x-phone: <digits>` on every request. The only provider with its own
//! membership history (chat notifications).

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};

use super::http::{ApiClient, ApiRequest, Safety};
use super::*;
use crate::core::values::EventKind;
use crate::group_ref::{GroupId, GroupInfo};
use crate::invite_link;
use crate::invite_link::InviteCode;
use crate::phone::E164;

/// The documented base URL.
pub const DEFAULT_BASE: &str = "https://api.periskope.app/v1";
/// Groups per list page (the API's default is 1000, its maximum 2000).
const PAGE: usize = 1000;
/// Notifications per history page.
const HISTORY_PAGE: usize = 200;

/// The Periskope client.
pub struct Periskope {
    api: ApiClient,
    pacing: Pacing,
    force_add: bool,
}

#[derive(Deserialize)]
struct Chat {
    chat_id: String,
    chat_name: Option<String>,
    invite_link: Option<String>,
    /// Participants keyed by id (`<digits>@c.us`).
    members: Option<BTreeMap<String, ChatMember>>,
    /// The connected phone's id: its entry in `members` says whether it is an admin.
    org_phone: Option<String>,
}

#[derive(Deserialize)]
struct ChatMember {
    is_admin: Option<bool>,
    is_super_admin: Option<bool>,
    contact_name: Option<String>,
}

impl ChatMember {
    fn role(&self) -> Role {
        match (self.is_super_admin, self.is_admin) {
            (Some(true), _) => Role::SuperAdmin,
            (_, Some(true)) => Role::Admin,
            _ => Role::Member,
        }
    }
}

#[derive(Deserialize)]
struct ChatList {
    chats: Vec<Chat>,
    count: Option<usize>,
}

/// One participant's answer to add/remove/promote/demote (the SDK's
/// `ChatOperationReturn`, keyed by participant id).
#[derive(Clone, Deserialize)]
struct OperationStatus {
    is_success: bool,
    message: Option<String>,
    /// whatsapp-web.js's code: 200 ok, 403 privacy, 404 not on WhatsApp, 409 already a member.
    code: Option<u16>,
    /// With 403: an invite (v4) went to the number instead.
    #[serde(rename = "isInviteV4Sent")]
    invite_v4_sent: Option<bool>,
}

#[derive(Deserialize)]
struct NotificationPage {
    // The API reference names the array `notifications`, its own example
    // `messages`, the SDK's type `notifictions`.
    #[serde(alias = "messages", alias = "notifictions", default)]
    notifications: Vec<Notification>,
    count: Option<usize>,
}

/// A chat notification. Every field but the id may be null; one that is must
/// not fail the page.
#[derive(Deserialize)]
struct Notification {
    notification_id: String,
    author: Option<String>,
    recipientids: Option<Vec<String>>,
    #[serde(rename = "type")]
    kind: Option<String>,
    timestamp: Option<Timestamp>,
}

impl Chat {
    /// The chat as a group; `None` for chats that are not groups.
    fn info(&self) -> Option<GroupInfo> {
        let id = GroupId::parse(&self.chat_id)?;
        let name = self
            .chat_name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.chat_id.clone());
        Some(GroupInfo {
            admin: self.connected_admin(),
            ..GroupInfo::new(id, name)
        })
    }

    /// Whether the connected phone (`org_phone`) is an admin, when the chat lists its members.
    fn connected_admin(&self) -> Option<bool> {
        let members = self.members.as_ref()?;
        members
            .get(self.org_phone.as_deref()?)
            .map(|m| m.role() != Role::Member)
    }
}

impl Periskope {
    /// Builds the client from validated settings.
    pub fn new(settings: &ProviderSettings, token: &crate::settings::Secret, phone: &str) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert("x-phone", HeaderValue::from_str(phone)?);
        let api = ApiClient::new(settings, DEFAULT_BASE, headers, Some("x-periskope-trace-id"), map_error)?;
        Ok(Periskope {
            api,
            pacing: super::pacing(settings),
            force_add: settings.force_add,
        })
    }

    /// `POST /chats/{id}/{action}` (add, remove, promote, demote) with the
    /// numbers' digits: each number's status (the SDK's `ChatOperationReturn`,
    /// keyed by JID `<digits>@c.us`; bare digits accepted too), in order.
    async fn operation(
        &self,
        group: &GroupId,
        action: &str,
        numbers: &[E164],
        force_add: Option<bool>,
        what: &'static str,
    ) -> Result<Vec<Option<OperationStatus>>, ProviderError> {
        let url = self.api.url(&["chats", group.as_str(), action], &[]);
        let participants: Vec<&str> = numbers.iter().map(E164::digits).collect();
        let mut body = serde_json::json!({ "participants": participants });
        if let Some(force) = force_add {
            body["force_add_participants"] = force.into();
        }
        let statuses: BTreeMap<String, OperationStatus> = self
            .api
            .send(ApiRequest {
                method: Method::POST,
                url,
                body: Some(body),
                safety: Safety::Write,
                what,
            })
            .await?
            .json()?;
        let by_digits: BTreeMap<&str, &OperationStatus> = statuses
            .iter()
            .map(|(jid, status)| (jid.split('@').next().unwrap_or(jid), status))
            .collect();
        Ok(numbers
            .iter()
            .map(|n| by_digits.get(n.digits()).map(|s| (*s).clone()))
            .collect())
    }

    async fn chat(&self, group: &GroupId) -> Result<Chat, ProviderError> {
        let url = self.api.url(&["chats", group.as_str()], &[]);
        self.api
            .send(ApiRequest {
                method: Method::GET,
                url,
                body: None,
                safety: Safety::Read,
                what: "get chat",
            })
            .await?
            .json()
    }
}

/// Periskope's documented error body (`{code, fields, message, name, status}`,
/// e.g. 422 `VALIDATION_ERROR`): its message and the fields it names, rather
/// than the raw JSON. Other statuses and bodies fall back to the status.
pub fn map_error(status: reqwest::StatusCode, body: &[u8]) -> Option<ProviderErrorKind> {
    #[derive(Deserialize)]
    struct ErrorBody {
        message: Option<String>,
        #[serde(default)]
        fields: serde_json::Map<String, serde_json::Value>,
    }
    if status.as_u16() != 422 && status.as_u16() != 400 {
        return None;
    }
    let error: ErrorBody = serde_json::from_slice(body).ok()?;
    let mut text = error.message.filter(|m| !m.is_empty())?;
    if !error.fields.is_empty() {
        let fields: Vec<&str> = error.fields.keys().map(String::as_str).collect();
        text.push_str(&format!(" ({})", fields.join(", ")));
    }
    Some(ProviderErrorKind::Validation(super::http::excerpt(text.as_bytes())))
}

/// What a notification type means for membership.
pub(crate) fn kind_of(kind: &str, actor: Option<&str>, subjects: &[String]) -> (EventKind, Option<String>) {
    let by_self = actor.is_some() && subjects.len() == 1 && Some(subjects[0].as_str()) == actor;
    match kind {
        "add" if by_self => (EventKind::Joined, None),
        "add" => (EventKind::Added, None),
        "invite" => (EventKind::Joined, Some("by invite link".into())),
        "remove" if by_self => (EventKind::Left, None),
        "remove" => (EventKind::Removed, None),
        "leave" => (EventKind::Left, None),
        "promote" => (EventKind::Promoted, None),
        "demote" => (EventKind::Demoted, None),
        // The rest of `WhatsappGroupActionEnum`, as the SDK names them.
        "subject" => (EventKind::Settings, Some("changed the name".into())),
        "desc" => (EventKind::Settings, Some("changed the description".into())),
        "announce_true" => (EventKind::Settings, Some("only admins may send messages".into())),
        "announce_false" => (EventKind::Settings, Some("all members may send messages".into())),
        "restrict_true" => (EventKind::Settings, Some("only admins may edit group info".into())),
        "restrict_false" => (EventKind::Settings, Some("all members may edit group info".into())),
        "memberaddmode_true" => (EventKind::Settings, Some("only admins may add members".into())),
        "memberaddmode_false" => (EventKind::Settings, Some("all members may add members".into())),
        "call" => (EventKind::Other, Some("a group call".into())),
        other => (EventKind::Other, Some(other.to_string())),
    }
}

/// Reads Periskope's per-number add status: its whatsapp-web.js `code` and
/// `isInviteV4Sent` first, the message's wording only when there is no code.
fn add_outcome(status: Option<&OperationStatus>) -> AddOutcome {
    let Some(status) = status else {
        return AddOutcome::Failed("the provider did not report this number".into());
    };
    let message = status.message.clone().unwrap_or_default();
    match status.code {
        Some(200) => return AddOutcome::Added,
        Some(403) if status.invite_v4_sent == Some(true) => return AddOutcome::InviteSent,
        Some(403) => return AddOutcome::Failed(or(message, "their privacy settings do not allow it")),
        Some(404) => return AddOutcome::NotOnWhatsApp,
        Some(409) => return AddOutcome::AlreadyMember,
        Some(code) if !status.is_success => return AddOutcome::Failed(or(message, &format!("code {code}"))),
        _ => {}
    }
    let lower = message.to_lowercase();
    if lower.contains("invite") {
        AddOutcome::InviteSent
    } else if lower.contains("already") {
        AddOutcome::AlreadyMember
    } else if lower.contains("not on whatsapp") || lower.contains("not registered") || lower.contains("not a whatsapp")
    {
        AddOutcome::NotOnWhatsApp
    } else if status.is_success {
        AddOutcome::Added
    } else if message.is_empty() {
        AddOutcome::Failed("no reason given".into())
    } else {
        AddOutcome::Failed(message)
    }
}

/// `message`, or `fallback` when it is empty.
fn or(message: String, fallback: &str) -> String {
    if message.is_empty() {
        fallback.to_string()
    } else {
        message
    }
}

#[async_trait]
impl Provider for Periskope {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Periskope
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            history: HistorySource::Provider,
            invite_reset: true,
            pending_approval: false,
            forced_add: true,
            connected_admin: true,
        }
    }

    fn pacing(&self) -> Pacing {
        self.pacing
    }

    async fn list_groups(&self) -> Result<Vec<GroupInfo>, ProviderError> {
        let mut groups = Vec::new();
        let mut offset = 0;
        loop {
            let (o, l) = (offset.to_string(), PAGE.to_string());
            let url = self
                .api
                .url(&["chats"], &[("chat_type", "group"), ("offset", &o), ("limit", &l)]);
            let page: ChatList = self
                .api
                .send(ApiRequest {
                    method: Method::GET,
                    url,
                    body: None,
                    safety: Safety::Read,
                    what: "list chats",
                })
                .await?
                .json()?;
            let got = page.chats.len();
            groups.extend(page.chats.iter().filter_map(Chat::info));
            offset += got;
            if got == 0 || page.count.is_none_or(|count| offset >= count) {
                return Ok(groups);
            }
        }
    }

    async fn join(&self, invite: &InviteCode) -> Result<JoinOutcome, ProviderError> {
        let url = self.api.url(&["chats", "accept-invite"], &[]);
        let body = serde_json::json!({ "invite_code": invite.as_str() });
        let chat: Chat = self
            .api
            .send(ApiRequest {
                method: Method::POST,
                url,
                body: Some(body),
                safety: Safety::Write,
                what: "accept invite",
            })
            .await?
            .json()?;
        chat.info()
            .map(JoinOutcome::Joined)
            .ok_or_else(|| ProviderErrorKind::Malformed.into())
    }

    async fn add(&self, group: &GroupId, numbers: &[E164]) -> Result<Vec<AddResult>, ProviderError> {
        let statuses = self
            .operation(group, "add", numbers, Some(self.force_add), "add participants")
            .await?;
        Ok(numbers
            .iter()
            .zip(statuses)
            .map(|(n, status)| AddResult {
                number: n.clone(),
                outcome: add_outcome(status.as_ref()),
            })
            .collect())
    }

    async fn invite_code(&self, group: &GroupId) -> Result<InviteCode, ProviderError> {
        let chat = self.chat(group).await?;
        match chat.invite_link.as_deref().map(invite_link::parse) {
            Some(Ok(code)) => Ok(code),
            // Periskope leaves the link empty when the connected phone is not an admin.
            None => Err(ProviderErrorKind::NotAdmin.into()),
            Some(Err(_)) => Err(ProviderErrorKind::Malformed.into()),
        }
    }

    async fn members(&self, group: &GroupId) -> Result<Members, ProviderError> {
        let chat = self.chat(group).await?;
        let connected_admin = chat.connected_admin();
        let listed = chat.members.unwrap_or_default();
        let members = listed
            .iter()
            .map(|(id, m)| Member {
                party: party(id),
                role: m.role(),
                name: m.contact_name.clone().filter(|n| !n.is_empty()),
            })
            .collect();
        Ok(Members {
            members,
            connected_admin,
        })
    }

    async fn change_members(
        &self,
        group: &GroupId,
        change: MemberChange,
        numbers: &[E164],
    ) -> Result<Vec<ChangeResult>, ProviderError> {
        let statuses = self
            .operation(group, change.action(), numbers, None, change.request_name())
            .await?;
        Ok(numbers
            .iter()
            .zip(statuses)
            .map(|(n, status)| ChangeResult {
                number: n.clone(),
                outcome: match status {
                    Some(s) if s.is_success || s.code == Some(200) => ChangeOutcome::Done,
                    Some(s) => ChangeOutcome::Failed(or(
                        s.message.clone().unwrap_or_default(),
                        &s.code.map_or("no reason given".into(), |c| format!("code {c}")),
                    )),
                    None => ChangeOutcome::Failed("the provider did not report this number".into()),
                },
            })
            .collect())
    }

    async fn reset_invite(&self, group: &GroupId) -> Result<InviteCode, ProviderError> {
        #[derive(Deserialize)]
        struct NewLink {
            invite_link: Option<String>,
        }
        let url = self.api.url(&["chats", group.as_str(), "invite"], &[]);
        let link: NewLink = self
            .api
            .send(ApiRequest {
                method: Method::POST,
                url,
                body: None,
                safety: Safety::Write,
                what: "generate invite link",
            })
            .await?
            .json()?;
        match link.invite_link.as_deref().map(invite_link::parse) {
            Some(Ok(code)) => Ok(code),
            _ => Err(ProviderErrorKind::Malformed.into()),
        }
    }

    async fn history(&self, group: &GroupId, query: &HistoryQuery) -> Result<Vec<MemberEvent>, ProviderError> {
        let mut events = Vec::new();
        let mut seen = HashSet::new();
        let mut offset = 0;
        loop {
            let (o, l) = (offset.to_string(), HISTORY_PAGE.to_string());
            let url = self.api.url(
                &["chats", group.as_str(), "notifications"],
                &[("offset", &o), ("limit", &l)],
            );
            let page: NotificationPage = self
                .api
                .send(ApiRequest {
                    method: Method::GET,
                    url,
                    body: None,
                    safety: Safety::Read,
                    what: "list notifications",
                })
                .await?
                .json()?;
            let got = page.notifications.len();
            let mut older = false;
            for n in page.notifications {
                // Without a time or a type it cannot be placed or read: skipped.
                let (Some(at), Some(kind)) = (n.timestamp, n.kind.as_deref()) else {
                    continue;
                };
                if at < query.since {
                    older = true;
                    continue;
                }
                // New notifications shift offsets between pages: drop repeats.
                if !seen.insert(n.notification_id.clone()) {
                    continue;
                }
                let subjects = n.recipientids.unwrap_or_default();
                let (kind, detail) = kind_of(kind, n.author.as_deref(), &subjects);
                let event = MemberEvent {
                    at,
                    kind,
                    actor: n.author.as_deref().map(party),
                    subjects: subjects.iter().map(|s| party(s)).collect(),
                    detail,
                };
                if query.wants(&event) {
                    events.push(event);
                }
            }
            offset += got;
            // Pages come newest first: once there are enough, older pages
            // cannot change what the caller shows.
            let enough = events.len() >= query.enough;
            if enough || older || got == 0 || page.count.is_none_or(|count| offset >= count) {
                break;
            }
        }
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        // The rest of the last page is not all there is either: not counted.
        events.truncate(query.enough);
        Ok(events)
    }

    async fn health(&self) -> Result<(), ProviderError> {
        let url = self.api.url(&["chats"], &[("chat_type", "group"), ("limit", "1")]);
        self.api
            .health(ApiRequest {
                method: Method::GET,
                url,
                body: None,
                safety: Safety::Read,
                what: "health",
            })
            .await
    }
}

/// Periskope `chat.notification.created` (the envelope's key is `event`, some senders use `event_type`).
pub fn webhook_events(event: &serde_json::Value, now: Timestamp) -> Vec<crate::store::JournalEntry> {
    use super::webhook::{entry, ids, text, time};
    if text(event, &["event", "event_type"]).as_deref() != Some("chat.notification.created") {
        return Vec::new();
    }
    let data = &event["data"];
    let (Some(id), Some(group), Some(kind)) = (
        text(data, &["notification_id"]),
        text(data, &["chat_id"]),
        text(data, &["type"]),
    ) else {
        return Vec::new();
    };
    if !group.ends_with("@g.us") {
        return Vec::new();
    }
    let actor = text(data, &["author"]);
    let subjects = ids(data.get("recipientids"));
    let (kind, detail) = crate::providers::periskope::kind_of(&kind, actor.as_deref(), &subjects);
    vec![entry(
        ProviderKind::Periskope,
        id,
        group,
        kind,
        actor,
        subjects,
        detail,
        time(data.get("timestamp"), now),
        now,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_kinds() {
        let me = "918527184400@c.us";
        let other = vec!["919537851844@c.us".to_string()];
        assert_eq!(kind_of("add", Some(me), &other).0, EventKind::Added);
        assert_eq!(kind_of("add", Some(me), &[me.to_string()]).0, EventKind::Joined);
        assert_eq!(kind_of("remove", Some(me), &other).0, EventKind::Removed);
        assert_eq!(kind_of("remove", Some(me), &[me.to_string()]).0, EventKind::Left);
        assert_eq!(kind_of("leave", None, &other).0, EventKind::Left);
        assert_eq!(kind_of("invite", None, &other).0, EventKind::Joined);
        assert_eq!(kind_of("promote", Some(me), &other).0, EventKind::Promoted);
        assert_eq!(kind_of("demote", Some(me), &other).0, EventKind::Demoted);
        assert_eq!(
            kind_of("memberaddmode_true", Some(me), &[]),
            (EventKind::Settings, Some("only admins may add members".into()))
        );
        assert_eq!(kind_of("subject", Some(me), &[]).0, EventKind::Settings);
        assert_eq!(
            kind_of("create", Some(me), &[]),
            (EventKind::Other, Some("create".into()))
        );
    }

    #[test]
    fn add_outcomes_from_messages() {
        let s = |ok, m: &str| OperationStatus {
            is_success: ok,
            message: Some(m.into()),
            code: None,
            invite_v4_sent: None,
        };
        assert_eq!(
            add_outcome(Some(&s(true, "Invite sent to participant"))),
            AddOutcome::InviteSent
        );
        assert_eq!(add_outcome(Some(&s(true, "Participant added"))), AddOutcome::Added);
        assert_eq!(
            add_outcome(Some(&s(false, "Participant already in group"))),
            AddOutcome::AlreadyMember
        );
        assert_eq!(
            add_outcome(Some(&s(false, "Number is not on WhatsApp"))),
            AddOutcome::NotOnWhatsApp
        );
        assert_eq!(
            add_outcome(Some(&s(false, "Blocked"))),
            AddOutcome::Failed("Blocked".into())
        );
        assert!(matches!(add_outcome(None), AddOutcome::Failed(_)));
    }
}
