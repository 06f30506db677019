//! Wawp (`https://api.wawp.net/v2`, a hosted WAHA): credentials go as the query
//! parameters `instance_id` and `access_token` on every request (so URLs are
//! never logged). Errors are told by HTTP status; bodies are opaque text.
//! Paths Wawp does not document (join, list groups) follow WAHA's.

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::http::{excerpt, ApiClient, ApiRequest, Safety};
use super::*;
use crate::core::values::EventKind;
use crate::group_ref::{GroupId, GroupInfo};
use crate::invite_link;
use crate::invite_link::InviteCode;
use crate::phone::E164;
use crate::settings::Secret;

/// The documented base URL with its version prefix.
pub const DEFAULT_BASE: &str = "https://api.wawp.net/v2";
/// Groups per list page.
const PAGE: usize = 100;

/// The Wawp client.
pub struct Wawp {
    api: ApiClient,
    pacing: Pacing,
    instance_id: String,
    access_token: Secret,
}

/// Status-based mapping with the body's words where they help.
pub fn map_error(status: StatusCode, body: &[u8]) -> Option<ProviderErrorKind> {
    let text = excerpt(body);
    let lower = text.to_lowercase();
    match status.as_u16() {
        // Wawp answers 400 "Missing Token" for absent credentials.
        400 if lower.contains("token") => Some(ProviderErrorKind::Auth),
        403 if lower.contains("admin") => Some(ProviderErrorKind::NotAdmin),
        403 => Some(ProviderErrorKind::Forbidden(text)),
        _ => None,
    }
}

/// An id that may come as a string or as WAHA's `{ "_serialized": … }` object.
fn id_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("_serialized").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn group_of(value: &Value) -> Option<GroupInfo> {
    let id = GroupId::parse(&id_of(value.get("id")?)?)?;
    let name = ["subject", "name"]
        .iter()
        .find_map(|k| value.get(*k).and_then(Value::as_str))
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string());
    Some(GroupInfo::new(id, name))
}

/// The invite code from `{"code": "…"}` or a bare JSON string (either may be a full link).
fn code_of(value: &Value) -> Result<InviteCode, ProviderError> {
    let text = value
        .get("code")
        .and_then(Value::as_str)
        .or_else(|| value.as_str())
        .ok_or(ProviderErrorKind::Malformed)?;
    invite_link::parse_from_provider(text).map_err(|_| ProviderErrorKind::Malformed.into())
}

/// Per-number statuses when the engine reports them (Baileys-style codes).
fn add_status(value: &Value, number: &E164) -> Option<AddOutcome> {
    let is_number = |id: &str| id.split(['@', ':']).next() == Some(number.digits());
    let item = match value {
        // WEBJS: a map keyed by participant id.
        Value::Object(map) if !map.contains_key("participants") => {
            map.iter().find(|(id, _)| is_number(id)).map(|(_, status)| status)?
        }
        // NOWEB: an array of `{status, jid}` (bare, or under `participants`).
        _ => {
            let items = value
                .as_array()
                .or_else(|| value.get("participants").and_then(Value::as_array))?;
            items.iter().find(|i| {
                ["id", "jid", "participant"]
                    .iter()
                    .filter_map(|k| i.get(*k).and_then(id_of))
                    .any(|id| is_number(&id))
            })?
        }
    };
    let code = ["code", "status"].iter().find_map(|k| match item.get(*k) {
        Some(Value::String(s)) => s.parse::<u16>().ok(),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as u16),
        _ => None,
    })?;
    let invite_sent = item.get("isInviteV4Sent").and_then(Value::as_bool);
    Some(match code {
        200 => AddOutcome::Added,
        // whatsapp-web.js: 403 is privacy; an invite went out only when it says so.
        403 if invite_sent == Some(false) => AddOutcome::Failed("their privacy settings do not allow it".into()),
        403 => AddOutcome::InviteSent,
        409 => AddOutcome::AlreadyMember,
        404 => AddOutcome::NotOnWhatsApp,
        other => AddOutcome::Failed(format!("WhatsApp status {other}")),
    })
}

impl Wawp {
    /// Builds the client from validated settings.
    pub fn new(settings: &ProviderSettings, instance_id: String, access_token: Secret) -> anyhow::Result<Self> {
        let api = ApiClient::new(settings, DEFAULT_BASE, HeaderMap::new(), None, map_error)?;
        Ok(Wawp {
            api,
            pacing: super::pacing(settings),
            instance_id,
            access_token,
        })
    }

    fn request(
        &self,
        method: Method,
        segments: &[&str],
        extra: &[(&str, &str)],
        body: Option<Value>,
        safety: Safety,
        what: &'static str,
    ) -> ApiRequest {
        let mut query = vec![
            ("instance_id", self.instance_id.as_str()),
            ("access_token", self.access_token.expose()),
        ];
        query.extend_from_slice(extra);
        ApiRequest {
            method,
            url: self.api.url(segments, &query),
            body,
            safety,
            what,
        }
    }

    /// `GET /groups/{id}/participants`: WEBJS's `{id, isAdmin, isSuperAdmin}`
    /// or WAHA's `{id, role}` (an `@lid` id with the phone in `pn`).
    async fn participants(&self, group: &GroupId) -> Result<Vec<Member>, ProviderError> {
        let list: Value = self
            .api
            .send(self.request(
                Method::GET,
                &["groups", group.as_str(), "participants"],
                &[],
                None,
                Safety::Read,
                "list participants",
            ))
            .await?
            .json()?;
        let items = list.as_array().ok_or(ProviderErrorKind::Malformed)?;
        Ok(items
            .iter()
            .filter_map(|p| {
                let id = super::webhook::ids(Some(&Value::Array(vec![p.clone()]))).pop()?;
                let flag = |k: &str| p.get(k).and_then(Value::as_bool) == Some(true);
                let role = match p.get("role").and_then(Value::as_str) {
                    Some("superadmin") => Role::SuperAdmin,
                    Some("admin") => Role::Admin,
                    _ if flag("isSuperAdmin") => Role::SuperAdmin,
                    _ if flag("isAdmin") => Role::Admin,
                    _ => Role::Member,
                };
                Some(Member {
                    party: party(&id),
                    role,
                    name: None,
                })
            })
            .collect())
    }
}

#[async_trait]
impl Provider for Wawp {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Wawp
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            history: HistorySource::Journal,
            invite_reset: true,
            pending_approval: false,
            forced_add: false,
            connected_admin: false,
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
            let page: Value = self
                .api
                .send(self.request(
                    Method::GET,
                    &["groups"],
                    &[("limit", &l), ("offset", &o)],
                    None,
                    Safety::Read,
                    "list groups",
                ))
                .await?
                .json()?;
            // WAHA answers an array; accept an object wrapping one too.
            let items = page
                .as_array()
                .or_else(|| page.get("groups").and_then(Value::as_array))
                .ok_or(ProviderErrorKind::Malformed)?;
            groups.extend(items.iter().filter_map(group_of));
            if items.len() < PAGE {
                return Ok(groups);
            }
            offset += items.len();
        }
    }

    async fn join(&self, invite: &InviteCode) -> Result<JoinOutcome, ProviderError> {
        let body = serde_json::json!({ "code": invite.as_str() });
        let joined: Value = self
            .api
            .send(self.request(
                Method::POST,
                &["groups", "join"],
                &[],
                Some(body),
                Safety::Write,
                "join group",
            ))
            .await?
            .json()?;
        let id = joined
            .get("id")
            .and_then(id_of)
            .and_then(|id| GroupId::parse(&id))
            .ok_or(ProviderErrorKind::Malformed)?;
        let name = match self
            .api
            .send(self.request(
                Method::GET,
                &["groups", id.as_str()],
                &[],
                None,
                Safety::Read,
                "get group",
            ))
            .await
        {
            Ok(r) => r.json::<Value>().ok().as_ref().and_then(group_of).map(|g| g.name),
            Err(_) => None,
        };
        Ok(JoinOutcome::Joined(GroupInfo::new(
            id.clone(),
            name.unwrap_or_else(|| id.to_string()),
        )))
    }

    async fn add(&self, group: &GroupId, numbers: &[E164]) -> Result<Vec<AddResult>, ProviderError> {
        // Wawp's add answer is engine-specific; asking for the members first
        // gives an honest "already a member" and keeps them out of the request.
        let members = self.participants(group).await?;
        let (present, to_add): (Vec<&E164>, Vec<&E164>) = numbers
            .iter()
            .partition(|n| members.iter().any(|m| matches!(&m.party, Party::Number(x) if x == *n)));
        let mut answer = Value::Null;
        if !to_add.is_empty() {
            let participants: Vec<Value> = to_add
                .iter()
                .map(|n| serde_json::json!({ "id": format!("{}@c.us", n.digits()) }))
                .collect();
            let body = serde_json::json!({ "participants": participants });
            let response = self
                .api
                .send(self.request(
                    Method::POST,
                    &["groups", group.as_str(), "participants", "add"],
                    &[],
                    Some(body),
                    Safety::Write,
                    "add participants",
                ))
                .await?;
            answer = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        }
        Ok(numbers
            .iter()
            .map(|n| {
                let outcome = if present.contains(&n) {
                    AddOutcome::AlreadyMember
                } else {
                    add_status(&answer, n).unwrap_or(AddOutcome::Requested)
                };
                AddResult {
                    number: n.clone(),
                    outcome,
                }
            })
            .collect())
    }

    async fn members(&self, group: &GroupId) -> Result<Members, ProviderError> {
        // WAHA does not mark which participant is the connected number.
        Ok(Members {
            members: self.participants(group).await?,
            connected_admin: None,
        })
    }

    async fn change_members(
        &self,
        group: &GroupId,
        change: MemberChange,
        numbers: &[E164],
    ) -> Result<Vec<ChangeResult>, ProviderError> {
        // WAHA's paths: participants/remove, admin/promote, admin/demote.
        let parent = match change {
            MemberChange::Remove => "participants",
            MemberChange::Promote | MemberChange::Demote => "admin",
        };
        let segments = ["groups", group.as_str(), parent, change.action()];
        let participants: Vec<Value> = numbers
            .iter()
            .map(|n| serde_json::json!({ "id": format!("{}@c.us", n.digits()) }))
            .collect();
        self.api
            .send(self.request(
                Method::POST,
                &segments,
                &[],
                Some(serde_json::json!({ "participants": participants })),
                Safety::Write,
                change.request_name(),
            ))
            .await?;
        // Its answer (`{"ok": true}`) is for the request as a whole.
        Ok(numbers
            .iter()
            .map(|n| ChangeResult {
                number: n.clone(),
                outcome: ChangeOutcome::Done,
            })
            .collect())
    }

    async fn invite_code(&self, group: &GroupId) -> Result<InviteCode, ProviderError> {
        let r: Value = self
            .api
            .send(self.request(
                Method::GET,
                &["groups", group.as_str(), "invite-code"],
                &[],
                None,
                Safety::Read,
                "get invite code",
            ))
            .await?
            .json()?;
        code_of(&r)
    }

    async fn reset_invite(&self, group: &GroupId) -> Result<InviteCode, ProviderError> {
        let r: Value = self
            .api
            .send(self.request(
                Method::POST,
                &["groups", group.as_str(), "invite-code", "revoke"],
                &[],
                None,
                Safety::Write,
                "revoke invite code",
            ))
            .await?
            .json()?;
        code_of(&r)
    }

    async fn history(&self, _group: &GroupId, _query: &HistoryQuery) -> Result<Vec<MemberEvent>, ProviderError> {
        Err(journal_history_missing())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.api
            .health(self.request(
                Method::GET,
                &["groups"],
                &[("limit", "1")],
                None,
                Safety::Read,
                "health",
            ))
            .await
    }
}

/// Wawp (WAHA) `group.v2.join`, `group.v2.leave`, `group.v2.participants`, `group.v2.update`.
pub fn webhook_events(event: &serde_json::Value, fallback_id: &str, now: Timestamp) -> Vec<crate::store::JournalEntry> {
    use super::webhook::{entry, ids, text, time};
    let name = text(event, &["event"]).unwrap_or_default();
    let payload = &event["payload"];
    let id = text(event, &["id"]).unwrap_or_else(|| fallback_id.to_string());
    let group = text(payload, &["chatId"]).or_else(|| payload.get("group").and_then(|g| text(g, &["id"])));
    let Some(group) = group.filter(|g| g.ends_with("@g.us")) else {
        return Vec::new();
    };
    let at = time(payload.get("timestamp").or_else(|| event.get("timestamp")), now);
    let subjects = ids(payload.get("participants"));
    let (kind, detail) = match name.as_str() {
        // A member joined or was added; left or was removed.
        "group.v2.join" => (EventKind::Joined, None),
        "group.v2.leave" => (EventKind::Left, None),
        "group.v2.update" => (EventKind::Settings, Some("changed group settings".to_string())),
        "group.v2.participants" => match text(payload, &["type", "action"]).as_deref() {
            Some("join" | "add") => (EventKind::Added, None),
            Some("leave" | "remove") => (EventKind::Left, None),
            Some("promote") => (EventKind::Promoted, None),
            Some("demote") => (EventKind::Demoted, None),
            other => (EventKind::Other, other.map(str::to_string)),
        },
        _ => return Vec::new(),
    };
    vec![entry(
        ProviderKind::Wawp,
        id,
        group,
        kind,
        None,
        subjects,
        detail,
        at,
        now,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_in_both_waha_shapes() {
        let webjs = serde_json::json!({"id": {"server": "g.us", "user": "120363", "_serialized": "120363041234567890@g.us"}, "name": "Sales"});
        let noweb = serde_json::json!({"id": "120363041234567891@g.us", "subject": "Support"});
        assert_eq!(group_of(&webjs).unwrap().name, "Sales");
        assert_eq!(group_of(&noweb).unwrap().id.as_str(), "120363041234567891@g.us");
        assert!(group_of(&serde_json::json!({"id": "123@c.us"})).is_none());
    }

    #[test]
    fn codes_from_object_string_or_link() {
        assert_eq!(
            code_of(&serde_json::json!({"code": "ABC123XYZ0000000"}))
                .unwrap()
                .as_str(),
            "ABC123XYZ0000000"
        );
        assert_eq!(
            code_of(&serde_json::json!("https://chat.whatsapp.com/ABC123XYZ0000000"))
                .unwrap()
                .as_str(),
            "ABC123XYZ0000000"
        );
        assert_eq!(
            code_of(&serde_json::json!({"nope": 1})).unwrap_err().kind,
            ProviderErrorKind::Malformed
        );
    }

    #[test]
    fn per_number_statuses_when_reported() {
        let n = E164::from_trusted("+4915112345678").unwrap();
        let answer = serde_json::json!([{"jid": "4915112345678@s.whatsapp.net", "status": "403"}]);
        assert_eq!(add_status(&answer, &n), Some(AddOutcome::InviteSent));
        let answer = serde_json::json!({"participants": [{"id": "4915112345678@c.us", "code": 200}]});
        assert_eq!(add_status(&answer, &n), Some(AddOutcome::Added));
        assert_eq!(add_status(&serde_json::json!({"ok": true}), &n), None);
    }

    #[test]
    fn error_mapping() {
        let m = |s: u16, b: &str| map_error(StatusCode::from_u16(s).unwrap(), b.as_bytes());
        assert_eq!(m(400, "Bad Request - Missing Token"), Some(ProviderErrorKind::Auth));
        assert_eq!(
            m(403, "Quota or Limit Reached"),
            Some(ProviderErrorKind::Forbidden("Quota or Limit Reached".into()))
        );
        assert_eq!(
            m(403, "instance is not a group admin"),
            Some(ProviderErrorKind::NotAdmin)
        );
        assert_eq!(m(500, "boom"), None);
    }
}
