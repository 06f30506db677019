//! WUTS (`https://api.wuts.com.br`): `Authorization: Bearer <token>`; failures
//! come in an envelope `{success:false, error, error_code, timestamp, validation?}`
//! and are mapped by `error_code`. No history endpoint: history comes from the
//! webhook journal.

use async_trait::async_trait;
use jiff::Timestamp;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::http::{excerpt, ApiClient, ApiRequest, Safety};
use super::*;
use crate::core::values::EventKind;
use crate::group_ref::{GroupId, GroupInfo};
use crate::invite_link;
use crate::invite_link::InviteCode;
use crate::phone::E164;

/// The documented base URL.
pub const DEFAULT_BASE: &str = "https://api.wuts.com.br";

/// A number WUTS's answer did not list.
const NOT_CONFIRMED: &str = "not confirmed by the provider";

/// The WUTS client.
pub struct Wuts {
    api: ApiClient,
    pacing: Pacing,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: Option<String>,
    error_code: Option<String>,
    #[serde(default)]
    validation: Vec<FieldError>,
}

#[derive(Deserialize)]
struct FieldError {
    field: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct JoinResponse {
    #[serde(default)]
    pending_approval: bool,
    group_jid: Option<String>,
}

#[derive(Deserialize)]
struct Group {
    jid: String,
    name: Option<String>,
}

#[derive(Deserialize)]
struct GroupList {
    groups: Vec<Group>,
}

#[derive(Deserialize)]
struct GroupResponse {
    group: Group,
}

#[derive(Deserialize)]
struct InviteResponse {
    invite_link: String,
}

#[derive(Deserialize)]
struct Participant {
    jid: Option<String>,
    phone_number: Option<String>,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    is_super_admin: bool,
}

impl Participant {
    /// The participant's number (digits), from `phone_number` (a JID) or `jid`.
    fn digits(&self) -> Option<String> {
        self.phone_number.as_deref().or(self.jid.as_deref()).map(user_digits)
    }
}

/// `GET /groups/{jid}` with its participants.
#[derive(Deserialize)]
struct GroupDetail {
    group: GroupWithParticipants,
}

#[derive(Deserialize)]
struct GroupWithParticipants {
    #[serde(default)]
    participants: Vec<Participant>,
}

#[derive(Deserialize)]
struct ParticipantsResponse {
    #[serde(default)]
    participants: Vec<Participant>,
}

impl Group {
    fn info(&self) -> Option<GroupInfo> {
        let id = GroupId::parse(&self.jid)?;
        let name = self.name.clone().filter(|n| !n.is_empty());
        Some(GroupInfo::new(id, name.unwrap_or_else(|| self.jid.clone())))
    }
}

/// Maps the error envelope by its stable `error_code` (never by the human text).
pub fn map_error(status: StatusCode, body: &[u8]) -> Option<ProviderErrorKind> {
    let envelope: ErrorEnvelope = serde_json::from_slice(body).ok()?;
    let code = envelope.error_code.unwrap_or_default().to_ascii_uppercase();
    let text = envelope.error.unwrap_or_default();
    let kind = match code.as_str() {
        "VALIDATION_ERROR" | "INVALID_REQUEST" | "BAD_REQUEST" => {
            let fields: Vec<String> = envelope
                .validation
                .iter()
                .map(|f| match (&f.field, &f.message) {
                    (Some(field), Some(message)) => format!("{field}: {message}"),
                    (None, Some(message)) => message.clone(),
                    (Some(field), None) => field.clone(),
                    (None, None) => String::new(),
                })
                .filter(|s| !s.is_empty())
                .collect();
            ProviderErrorKind::Validation(if fields.is_empty() { text } else { fields.join("; ") })
        }
        "DEVICE_NOT_READY" | "DEVICE_NOT_CONNECTED" | "DEVICE_DISCONNECTED" | "SESSION_NOT_CONNECTED" => {
            ProviderErrorKind::DeviceNotConnected
        }
        "UNAUTHORIZED" | "INVALID_TOKEN" | "TOKEN_EXPIRED" | "AUTHENTICATION_FAILED" => ProviderErrorKind::Auth,
        "NOT_ADMIN" | "NOT_GROUP_ADMIN" | "ADMIN_REQUIRED" => ProviderErrorKind::NotAdmin,
        "FORBIDDEN" => ProviderErrorKind::Forbidden(text),
        "NOT_FOUND" | "GROUP_NOT_FOUND" => ProviderErrorKind::NotFound,
        "RATE_LIMITED" | "TOO_MANY_REQUESTS" => ProviderErrorKind::RateLimited(None),
        "INVALID_INVITE" | "INVALID_INVITE_LINK" | "INVITE_REVOKED" | "INVITE_EXPIRED" | "INVITE_LINK_REVOKED" => {
            ProviderErrorKind::InvalidInvite
        }
        // An unknown code keeps its name so support can look it up.
        "" => return None,
        other if status.is_server_error() => {
            tracing::warn!(error_code = other, "unknown WUTS error code");
            ProviderErrorKind::Upstream(status.as_u16())
        }
        other => ProviderErrorKind::Validation(format!(
            "{} ({other})",
            if text.is_empty() { excerpt(body) } else { text }
        )),
    };
    Some(kind)
}

impl Wuts {
    /// Builds the client from validated settings.
    pub fn new(settings: &ProviderSettings, token: &crate::settings::Secret) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        let api = ApiClient::new(settings, DEFAULT_BASE, headers, None, map_error)?;
        Ok(Wuts {
            api,
            pacing: super::pacing(settings),
        })
    }

    /// `POST /groups/{jid}/participants` with `action` (add, remove, promote,
    /// demote): per number, whether WUTS listed it in its answer. Its
    /// per-number failure shape is undocumented, so a number it does not list
    /// is not confirmed.
    async fn participants(
        &self,
        group: &GroupId,
        action: &str,
        numbers: &[E164],
        what: &'static str,
    ) -> Result<Vec<bool>, ProviderError> {
        let participants: Vec<&str> = numbers.iter().map(E164::digits).collect();
        let body = serde_json::json!({ "participants": participants, "action": action });
        let response: ParticipantsResponse = self
            .api
            .send(self.request(
                Method::POST,
                &["groups", group.as_str(), "participants"],
                Some(body),
                Safety::Write,
                what,
            ))
            .await?
            .json()?;
        let listed: Vec<String> = response.participants.iter().filter_map(Participant::digits).collect();
        Ok(numbers.iter().map(|n| listed.iter().any(|c| c == n.digits())).collect())
    }

    fn request(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<serde_json::Value>,
        safety: Safety,
        what: &'static str,
    ) -> ApiRequest {
        ApiRequest {
            method,
            url: self.api.url(segments, &[]),
            body,
            safety,
            what,
        }
    }
}

/// The number in a participant id: `phone_number` comes as a JID
/// (`5511888888888@s.whatsapp.net`, possibly with a `:device` part), or as
/// digits with or without `+`.
fn user_digits(id: &str) -> String {
    let user = id.split(['@', ':']).next().unwrap_or(id);
    user.trim_start_matches('+').to_string()
}

#[async_trait]
impl Provider for Wuts {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Wuts
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            history: HistorySource::Journal,
            invite_reset: true,
            pending_approval: true,
            forced_add: false,
            connected_admin: false,
        }
    }

    fn pacing(&self) -> Pacing {
        self.pacing
    }

    async fn list_groups(&self) -> Result<Vec<GroupInfo>, ProviderError> {
        let list: GroupList = self
            .api
            .send(self.request(Method::GET, &["groups"], None, Safety::Read, "list groups"))
            .await?
            .json()?;
        Ok(list.groups.iter().filter_map(Group::info).collect())
    }

    async fn join(&self, invite: &InviteCode) -> Result<JoinOutcome, ProviderError> {
        let body = serde_json::json!({ "link": invite.link() });
        let joined: JoinResponse = self
            .api
            .send(self.request(
                Method::POST,
                &["groups", "join"],
                Some(body),
                Safety::Write,
                "join group",
            ))
            .await?
            .json()?;
        let id = joined.group_jid.as_deref().and_then(GroupId::parse);
        if joined.pending_approval {
            return Ok(JoinOutcome::PendingApproval(id));
        }
        let id = id.ok_or(ProviderError::from(ProviderErrorKind::Malformed))?;
        // The join answer has no name; ask for it, but a failed lookup does not undo the join.
        let name = match self
            .api
            .send(self.request(Method::GET, &["groups", id.as_str()], None, Safety::Read, "get group"))
            .await
        {
            Ok(response) => response
                .json::<GroupResponse>()
                .ok()
                .and_then(|g| g.group.name)
                .filter(|n| !n.is_empty()),
            Err(_) => None,
        };
        Ok(JoinOutcome::Joined(GroupInfo::new(
            id.clone(),
            name.unwrap_or_else(|| id.to_string()),
        )))
    }

    async fn add(&self, group: &GroupId, numbers: &[E164]) -> Result<Vec<AddResult>, ProviderError> {
        let confirmed = self.participants(group, "add", numbers, "add participants").await?;
        Ok(numbers
            .iter()
            .zip(confirmed)
            .map(|(n, confirmed)| AddResult {
                number: n.clone(),
                outcome: if confirmed {
                    AddOutcome::Added
                } else {
                    AddOutcome::Failed(NOT_CONFIRMED.into())
                },
            })
            .collect())
    }

    async fn members(&self, group: &GroupId) -> Result<Members, ProviderError> {
        let detail: GroupDetail = self
            .api
            .send(self.request(
                Method::GET,
                &["groups", group.as_str()],
                None,
                Safety::Read,
                "get group",
            ))
            .await?
            .json()?;
        let members = detail
            .group
            .participants
            .iter()
            .filter_map(|p| {
                Some(Member {
                    party: party(&p.digits()?),
                    role: match (p.is_super_admin, p.is_admin) {
                        (true, _) => Role::SuperAdmin,
                        (_, true) => Role::Admin,
                        _ => Role::Member,
                    },
                    name: None,
                })
            })
            .collect();
        // WUTS does not say which participant is the connected number.
        Ok(Members {
            members,
            connected_admin: None,
        })
    }

    async fn change_members(
        &self,
        group: &GroupId,
        change: MemberChange,
        numbers: &[E164],
    ) -> Result<Vec<ChangeResult>, ProviderError> {
        let confirmed = self
            .participants(group, change.action(), numbers, change.request_name())
            .await?;
        Ok(numbers
            .iter()
            .zip(confirmed)
            .map(|(n, confirmed)| ChangeResult {
                number: n.clone(),
                outcome: if confirmed {
                    ChangeOutcome::Done
                } else {
                    ChangeOutcome::Failed(NOT_CONFIRMED.into())
                },
            })
            .collect())
    }

    async fn invite_code(&self, group: &GroupId) -> Result<InviteCode, ProviderError> {
        let r: InviteResponse = self
            .api
            .send(self.request(
                Method::GET,
                &["groups", group.as_str(), "invite"],
                None,
                Safety::Read,
                "get invite link",
            ))
            .await?
            .json()?;
        invite_link::parse_from_provider(&r.invite_link).map_err(|_| ProviderErrorKind::Malformed.into())
    }

    async fn reset_invite(&self, group: &GroupId) -> Result<InviteCode, ProviderError> {
        let r: InviteResponse = self
            .api
            .send(self.request(
                Method::POST,
                &["groups", group.as_str(), "invite", "reset"],
                None,
                Safety::Write,
                "reset invite link",
            ))
            .await?
            .json()?;
        invite_link::parse_from_provider(&r.invite_link).map_err(|_| ProviderErrorKind::Malformed.into())
    }

    async fn history(&self, _group: &GroupId, _query: &HistoryQuery) -> Result<Vec<MemberEvent>, ProviderError> {
        Err(journal_history_missing())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.api
            .health(self.request(Method::GET, &["groups"], None, Safety::Read, "health"))
            .await
    }
}

/// WUTS `group.info` (whatsmeow's GroupInfo: lists of who joined, left, was promoted
/// or demoted, and setting changes) and `group.joined` (waops' number joined).
pub fn webhook_events(event: &serde_json::Value, fallback_id: &str, now: Timestamp) -> Vec<crate::store::JournalEntry> {
    use super::webhook::{entry, ids, text, time};
    let name = text(event, &["event", "type"]).unwrap_or_default();
    let data = event.get("data").or_else(|| event.get("payload")).unwrap_or(event);
    let base = text(event, &["id", "event_id"]).unwrap_or_else(|| fallback_id.to_string());
    let Some(group) = text(data, &["jid", "JID", "group_jid", "chat_jid"]).filter(|g| g.ends_with("@g.us")) else {
        return Vec::new();
    };
    let at = time(
        data.get("timestamp")
            .or_else(|| data.get("Timestamp"))
            .or_else(|| event.get("timestamp")),
        now,
    );
    let actor = text(data, &["sender", "Sender"]);
    match name.as_str() {
        "group.joined" => vec![entry(
            ProviderKind::Wuts,
            base,
            group,
            EventKind::Joined,
            None,
            Vec::new(),
            Some("waops' number joined".into()),
            at,
            now,
        )],
        "group.info" => {
            let mut out = Vec::new();
            for (keys, kind) in [
                (["join", "Join"], EventKind::Joined),
                (["leave", "Leave"], EventKind::Left),
                (["promote", "Promote"], EventKind::Promoted),
                (["demote", "Demote"], EventKind::Demoted),
            ] {
                let who: Vec<String> = keys.iter().flat_map(|k| ids(data.get(*k))).collect();
                if !who.is_empty() {
                    out.push(entry(
                        ProviderKind::Wuts,
                        format!("{base}:{kind}"),
                        group.clone(),
                        kind,
                        actor.clone(),
                        who,
                        None,
                        at,
                        now,
                    ));
                }
            }
            for (keys, what) in [
                (["name", "Name"], "changed the name"),
                (["topic", "Topic"], "changed the description"),
                (["locked", "Locked"], "changed who may edit group info"),
                (["announce", "Announce"], "changed who may send messages"),
            ] {
                if keys.iter().any(|k| data.get(*k).is_some_and(|v| !v.is_null())) {
                    out.push(entry(
                        ProviderKind::Wuts,
                        format!("{base}:{what}"),
                        group.clone(),
                        EventKind::Settings,
                        actor.clone(),
                        Vec::new(),
                        Some(what.into()),
                        at,
                        now,
                    ));
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(status: u16, body: &str) -> Option<ProviderErrorKind> {
        map_error(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn maps_by_error_code() {
        let e = |code: &str| {
            format!(r#"{{"success":false,"error":"text","error_code":"{code}","timestamp":"2026-06-15T12:00:00Z"}}"#)
        };
        assert_eq!(
            map(400, &e("VALIDATION_ERROR")),
            Some(ProviderErrorKind::Validation("text".into()))
        );
        assert_eq!(
            map(409, &e("DEVICE_NOT_READY")),
            Some(ProviderErrorKind::DeviceNotConnected)
        );
        assert_eq!(map(401, &e("UNAUTHORIZED")), Some(ProviderErrorKind::Auth));
        assert_eq!(map(403, &e("NOT_ADMIN")), Some(ProviderErrorKind::NotAdmin));
        assert_eq!(map(404, &e("GROUP_NOT_FOUND")), Some(ProviderErrorKind::NotFound));
        assert_eq!(map(400, &e("INVITE_REVOKED")), Some(ProviderErrorKind::InvalidInvite));
        assert_eq!(
            map(400, &e("SOMETHING_NEW")),
            Some(ProviderErrorKind::Validation("text (SOMETHING_NEW)".into()))
        );
        assert_eq!(map(500, &e("SOMETHING_NEW")), Some(ProviderErrorKind::Upstream(500)));
        assert_eq!(map(500, "<html>"), None);
        let with_fields = r#"{"success":false,"error":"validation failed","error_code":"VALIDATION_ERROR","validation":[{"field":"link","message":"must be a WhatsApp invite link","value":"x"}]}"#;
        assert_eq!(
            map(400, with_fields),
            Some(ProviderErrorKind::Validation(
                "link: must be a WhatsApp invite link".into()
            ))
        );
    }
}
