//! Deny-by-default permissions: roles grant command ids on group scopes, in
//! channels; bindings give roles to principals. One evaluator serves dispatch,
//! `help`, `whoami` and the audit log.

use std::collections::BTreeMap;

use serde::Deserialize;
use wildmatch::WildMatchPattern;

use super::{ChannelRef, CommandId, Principal};
use crate::group_ref::{GroupId, GroupInfo};

type CaseInsensitiveGlob = WildMatchPattern<'*', '?'>;

/// Which groups a role covers.
#[derive(Clone, Debug)]
pub enum GroupScope {
    /// `*`
    Any,
    /// An alias from `[groups.aliases]`, resolved to its id.
    Alias(String, GroupId),
    /// `name:<glob>`, matched case-insensitively against the group's name.
    Name(String, CaseInsensitiveGlob),
    /// A group id.
    Id(GroupId),
}

impl GroupScope {
    /// Parses one `groups` entry of a role.
    pub fn parse(text: &str, aliases: &BTreeMap<String, GroupId>) -> Result<GroupScope, String> {
        if text == "*" {
            return Ok(GroupScope::Any);
        }
        if let Some(glob) = text.strip_prefix("name:") {
            if glob.trim().is_empty() {
                return Err("`name:` needs a pattern, e.g. name:Sales *".into());
            }
            return Ok(GroupScope::Name(
                text.to_string(),
                WildMatchPattern::new_case_insensitive(glob),
            ));
        }
        if text.contains('@') {
            return GroupId::parse(text)
                .map(GroupScope::Id)
                .ok_or_else(|| format!("`{text}` is not a group id (expected <digits>@g.us)"));
        }
        aliases
            .get(&text.to_lowercase())
            .map(|id| GroupScope::Alias(text.to_string(), id.clone()))
            .ok_or_else(|| {
                format!(
                    "unknown alias `{text}` (define it under [groups.aliases], or use name:<glob>, a group id or *)"
                )
            })
    }

    fn matches(&self, group: &GroupInfo) -> bool {
        match self {
            GroupScope::Any => true,
            GroupScope::Alias(_, id) | GroupScope::Id(id) => &group.id == id,
            GroupScope::Name(_, glob) => glob.matches(&group.name),
        }
    }
}

/// The entry as configured. Written into the grant's rule on every allowed
/// command: a `Display`, so that costs no text of its own.
impl std::fmt::Display for GroupScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupScope::Any => f.write_str("*"),
            GroupScope::Alias(alias, id) => write!(f, "{alias} ({id})"),
            GroupScope::Name(text, _) => f.write_str(text),
            GroupScope::Id(id) => write!(f, "{id}"),
        }
    }
}

/// Checks a role's `channels` entry: `platform:ID`.
pub fn check_channel_pattern(text: &str) -> Result<(), String> {
    match text.split_once(':') {
        Some(("slack" | "discord" | "console", id)) if !id.is_empty() && !id.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!(
            "`{text}` is not a channel (expected PLATFORM:ID, e.g. slack:C0SALES, discord:123, console:local)"
        )),
    }
}

/// A role, ready to evaluate.
#[derive(Clone, Debug)]
pub struct Role {
    /// The role's name.
    pub name: String,
    /// `None` = every command.
    pub commands: Option<Vec<CommandId>>,
    /// Group scopes.
    pub groups: Vec<GroupScope>,
    /// `None` = every channel.
    pub channels: Option<Vec<String>>,
    /// Most numbers per add; `None` = only the global limit.
    pub max_numbers: Option<usize>,
    /// Two-person rule: changes of more numbers than this need a second
    /// person's approval (`0` = every change); `None` = no approval.
    pub approval_over: Option<usize>,
    /// The accounts (connected numbers) it covers; `None` = all.
    pub accounts: Option<Vec<String>>,
}

impl Role {
    fn grants_command(&self, id: CommandId) -> bool {
        self.commands.as_ref().is_none_or(|c| c.contains(&id))
    }
    fn allows_channel(&self, channel: &ChannelRef) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == channel.as_str()))
    }
    /// `None` when the role does not cover the target; else the scope that
    /// covers it, `None` inside for targets without a group part.
    fn covers(&self, target: &Target<'_>) -> Option<Option<&GroupScope>> {
        match target {
            Target::None => Some(None),
            Target::Account(account) => self.covers_account(Some(account)).then_some(None),
            // Every group of every account: only a role limited to neither.
            Target::AllGroups => self
                .groups
                .iter()
                .find(|g| matches!(g, GroupScope::Any) && self.accounts.is_none())
                .map(Some),
            Target::Group(group) if self.covers_account(group.account.as_deref()) => {
                self.groups.iter().find(|s| s.matches(group)).map(Some)
            }
            Target::Group(_) => None,
        }
    }
    /// Whether it covers groups of `account`. A group without an account is
    /// the one configured account's, and a role may only name configured
    /// accounts: covered.
    pub fn covers_account(&self, account: Option<&str>) -> bool {
        match (&self.accounts, account) {
            (Some(list), Some(account)) => list.iter().any(|a| a == account),
            _ => true,
        }
    }
}

/// What a command acts on, for the group part of a decision.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// Nothing group-specific (groups, subscriptions, help, whoami).
    None,
    /// One group.
    Group(&'a GroupInfo),
    /// An account, not a group in it (`join`).
    Account(&'a str),
    /// Every group (`subscribe *`).
    AllGroups,
}

/// Why a request was allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The first matching rule, e.g. `role sales, group name:Sales *`.
    pub rule: String,
    /// The most permissive per-add limit of all matching grants; `None` = no role limit.
    pub max_numbers: Option<usize>,
    /// Changes of more numbers than this need a second person's approval;
    /// `None` when some matching role needs none.
    pub approval_over: Option<usize>,
}

/// Why a request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No role is bound to the caller at all.
    NoRole,
    /// No role of the caller grants the command.
    Command,
    /// Roles grant it, but not in this channel.
    Channel,
    /// Roles grant it, but not on this group.
    Group,
}

impl Refusal {
    /// The reason, as shown in parentheses to the user and in the audit log.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NoRole => "no role is bound to you; ask an admin",
            Refusal::Command => "no role grants it; ask an admin",
            Refusal::Channel => "not in this channel; your roles allow it elsewhere",
            Refusal::Group => "no role grants it on this group; ask an admin",
        }
    }
}

/// The evaluator's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, by this grant.
    Allowed(Grant),
    /// Refused, for this reason.
    Refused(Refusal),
}

/// The configured roles and bindings.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    roles: Vec<Role>,
    bindings: Vec<(Principal, String)>,
}

impl Permissions {
    /// Builds the evaluator from validated settings.
    pub fn from_settings(settings: &PermissionSettings, aliases: &BTreeMap<String, GroupId>) -> Result<Self, String> {
        let mut roles = Vec::new();
        for (name, r) in &settings.roles {
            let commands = if r.commands.iter().any(|c| c == "*") {
                None
            } else {
                Some(
                    r.commands
                        .iter()
                        .map(|c| c.parse().map_err(|()| format!("unknown command `{c}`")))
                        .collect::<Result<_, _>>()?,
                )
            };
            let groups = r
                .groups
                .iter()
                .map(|g| GroupScope::parse(g, aliases))
                .collect::<Result<_, _>>()?;
            roles.push(Role {
                name: name.clone(),
                commands,
                groups,
                channels: r.channels.clone(),
                accounts: r.accounts.clone(),
                max_numbers: r.max_numbers,
                approval_over: match r.approval.as_deref() {
                    None => None,
                    Some("two-person") => Some(r.approval_over.unwrap_or(0)),
                    Some(other) => {
                        return Err(format!(
                            "role `{name}`: approval `{other}` is not known (expected \"two-person\")"
                        ))
                    }
                },
            });
        }
        let mut bindings = Vec::new();
        for (role, principals) in &settings.bindings {
            for p in principals {
                bindings.push((Principal::parse(p)?, role.clone()));
            }
        }
        Ok(Permissions { roles, bindings })
    }

    /// Every principal some role is bound to (frontends look up only these groups).
    pub fn bound_principals(&self) -> impl Iterator<Item = &Principal> {
        self.bindings.iter().map(|(p, _)| p)
    }

    /// The roles bound to any of the caller's principals.
    pub fn roles_of<'a>(&'a self, principals: &'a [Principal]) -> Vec<&'a Role> {
        self.bound_roles(principals).collect()
    }

    fn bound_roles<'a>(&'a self, principals: &'a [Principal]) -> impl Iterator<Item = &'a Role> + Clone + 'a {
        self.roles.iter().filter(move |role| {
            self.bindings
                .iter()
                .any(|(bound, name)| name == &role.name && principals.iter().any(|p| bound.covers(p)))
        })
    }

    /// Decides whether the caller may run `command` on `target` in `channel`.
    pub fn decide(
        &self,
        principals: &[Principal],
        command: CommandId,
        channel: &ChannelRef,
        target: Target<'_>,
    ) -> Decision {
        if command.always_allowed() {
            return Decision::Allowed(Grant {
                rule: "help and whoami are open to everyone".into(),
                max_numbers: None,
                approval_over: None,
            });
        }
        // Iterators over the bound roles, not vectors per step: this runs on
        // every ack, and the refusal names the first step no role passes.
        let roles = self.bound_roles(principals);
        let granting = || roles.clone().filter(|r| r.grants_command(command));
        let here = || granting().filter(|r| r.allows_channel(channel));
        let mut matching = here().filter_map(|r| r.covers(&target).map(|scope| (r, scope)));
        let Some((first, scope)) = matching.next() else {
            return Decision::Refused(if roles.clone().next().is_none() {
                Refusal::NoRole
            } else if granting().next().is_none() {
                Refusal::Command
            } else if here().next().is_none() {
                Refusal::Channel
            } else {
                Refusal::Group
            });
        };
        // The most permissive limit of all matching roles; any role without one lifts it.
        // Likewise approval: any matching role that needs none lifts it.
        let (mut max_numbers, mut approval_over) = (first.max_numbers, first.approval_over);
        for (r, _) in matching {
            max_numbers = max_numbers.zip(r.max_numbers).map(|(a, b)| a.max(b));
            approval_over = approval_over.zip(r.approval_over).map(|(a, b)| a.max(b));
        }
        let rule = match scope {
            None => format!("role {}", first.name),
            Some(scope) => format!("role {}, group {scope}", first.name),
        };
        Decision::Allowed(Grant {
            rule,
            max_numbers,
            approval_over,
        })
    }

    /// True when some role lets the caller run `command` here on at least some group.
    pub fn may_run(&self, principals: &[Principal], command: CommandId, channel: &ChannelRef) -> Result<(), Refusal> {
        if command.always_allowed() {
            return Ok(());
        }
        let roles = self.bound_roles(principals);
        let mut granting = roles.clone().filter(|r| r.grants_command(command)).peekable();
        if granting.peek().is_none() {
            return Err(if roles.clone().next().is_none() {
                Refusal::NoRole
            } else {
                Refusal::Command
            });
        }
        if !granting.any(|r| r.allows_channel(channel)) {
            return Err(Refusal::Channel);
        }
        Ok(())
    }
}

/// `[permissions]`
#[derive(Clone, Debug, Deserialize)]
pub struct PermissionSettings {
    /// Role name → role.
    pub roles: BTreeMap<String, RoleSettings>,
    /// Role name → principals.
    pub bindings: BTreeMap<String, Vec<String>>,
}

/// `[permissions.roles.<name>]`
#[derive(Clone, Debug, Deserialize)]
pub struct RoleSettings {
    /// Command ids, or `*`.
    #[serde(default)]
    pub commands: Vec<String>,
    /// Group scopes: alias, `name:<glob>`, group id, or `*`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// If set, only usable in these channels (`slack:C…`, `discord:…`, `console:…`).
    pub channels: Option<Vec<String>>,
    /// If set, the most numbers per add this role allows.
    pub max_numbers: Option<usize>,
    /// `"two-person"`: its adds and member changes need a second person's approval.
    pub approval: Option<String>,
    /// With `approval`: only changes of more numbers than this need it.
    pub approval_over: Option<usize>,
    /// If set, only groups of these accounts (`[accounts.<name>]`).
    pub accounts: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, name: &str) -> GroupInfo {
        GroupInfo::new(GroupId::parse(id).unwrap(), name)
    }

    fn perms() -> Permissions {
        let role = |commands: &[&str], groups: &[&str], channels: Option<&[&str]>, max: Option<usize>| RoleSettings {
            commands: commands.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            channels: channels.map(|c| c.iter().map(|s| s.to_string()).collect()),
            max_numbers: max,
            approval: None,
            approval_over: None,
            accounts: None,
        };
        let settings = PermissionSettings {
            roles: BTreeMap::from([
                ("admin".to_string(), role(&["*"], &["*"], None, None)),
                (
                    "sales".to_string(),
                    role(
                        &["add", "invite", "history", "groups"],
                        &["sales", "name:Sales *", "120363041234567899@g.us"],
                        Some(&["slack:C0SALES"]),
                        Some(50),
                    ),
                ),
                ("bulk".to_string(), role(&["add"], &["name:Sales *"], None, Some(200))),
                ("viewer".to_string(), role(&["history"], &["*"], None, None)),
                // Sorts after `sales`: a role without a limit that comes later still lifts it.
                ("wholesale".to_string(), role(&["add"], &["name:Sales *"], None, None)),
            ]),
            bindings: BTreeMap::from([
                (
                    "admin".to_string(),
                    vec!["slack:user:UADMIN".to_string(), "console".to_string()],
                ),
                (
                    "sales".to_string(),
                    vec!["slack:usergroup:S0SALES".to_string(), "discord:role:99".to_string()],
                ),
                ("bulk".to_string(), vec!["slack:user:UBULK".to_string()]),
                ("viewer".to_string(), vec!["*".to_string()]),
                ("wholesale".to_string(), vec!["slack:user:UWHOLESALE".to_string()]),
            ]),
        };
        let aliases = BTreeMap::from([("sales".to_string(), GroupId::parse("120363041234567890@g.us").unwrap())]);
        Permissions::from_settings(&settings, &aliases).unwrap()
    }

    fn p(list: &[&str]) -> Vec<Principal> {
        list.iter().map(|s| Principal::parse(s).unwrap()).collect()
    }

    const SALES_CH: &str = "slack:C0SALES";

    fn decide(who: &[&str], cmd: CommandId, channel: &str, target: Target<'_>) -> Decision {
        perms().decide(&p(who), cmd, &ChannelRef::from_text(channel), target)
    }

    #[test]
    fn admin_may_do_anything_anywhere() {
        let g = group("120363000000000001@g.us", "Random");
        let d = decide(&["slack:user:UADMIN"], CommandId::Join, "slack:CANY", Target::Group(&g));
        assert_eq!(
            d,
            Decision::Allowed(Grant {
                rule: "role admin, group *".into(),
                max_numbers: None,
                approval_over: None,
            })
        );
        assert!(matches!(
            decide(&["console"], CommandId::Subscribe, "console:local", Target::AllGroups),
            Decision::Allowed(_)
        ));
    }

    #[test]
    fn group_scopes_alias_glob_id() {
        let who = ["slack:user:U1", "slack:usergroup:S0SALES"];
        let by_alias = group("120363041234567890@g.us", "Renamed Group");
        let by_glob = group("120363000000000002@g.us", "sales team emea");
        let by_id = group("120363041234567899@g.us", "Other");
        let outside = group("120363000000000003@g.us", "Marketing");
        let rule = |g| match decide(&who, CommandId::Add, SALES_CH, Target::Group(g)) {
            Decision::Allowed(grant) => grant.rule,
            Decision::Refused(r) => format!("refused: {r:?}"),
        };
        assert_eq!(rule(&by_alias), "role sales, group sales (120363041234567890@g.us)");
        assert_eq!(rule(&by_glob), "role sales, group name:Sales *");
        assert_eq!(rule(&by_id), "role sales, group 120363041234567899@g.us");
        assert_eq!(rule(&outside), "refused: Group");
    }

    #[test]
    fn roles_limited_to_accounts() {
        let settings = PermissionSettings {
            roles: BTreeMap::from([(
                "de".to_string(),
                RoleSettings {
                    commands: vec!["*".into()],
                    groups: vec!["*".into()],
                    channels: None,
                    max_numbers: None,
                    approval: None,
                    approval_over: None,
                    accounts: Some(vec!["de".into()]),
                },
            )]),
            bindings: BTreeMap::from([("de".to_string(), vec!["console".to_string()])]),
        };
        let perms = Permissions::from_settings(&settings, &BTreeMap::new()).unwrap();
        let decide = |target| {
            perms.decide(
                &p(&["console"]),
                CommandId::Add,
                &ChannelRef::from_text("console:x"),
                target,
            )
        };
        let in_account = |account: Option<&str>| GroupInfo {
            account: account.map(Into::into),
            ..group("120363000000000001@g.us", "Sales")
        };
        let (de, us, only) = (in_account(Some("de")), in_account(Some("us")), in_account(None));
        assert!(matches!(decide(Target::Group(&de)), Decision::Allowed(_)));
        assert_eq!(decide(Target::Group(&us)), Decision::Refused(Refusal::Group));
        // One account configured: groups carry none, and it is the one the role names.
        assert!(matches!(decide(Target::Group(&only)), Decision::Allowed(_)));
        assert!(matches!(decide(Target::Account("de")), Decision::Allowed(_)));
        assert_eq!(decide(Target::Account("us")), Decision::Refused(Refusal::Group));
        // Every group of every account is more than a role limited to one.
        assert_eq!(decide(Target::AllGroups), Decision::Refused(Refusal::Group));
    }

    #[test]
    fn deny_by_default() {
        let g = group("120363041234567890@g.us", "Sales");
        // Unbound principals still match the `*` viewer binding, but only for history.
        assert_eq!(
            decide(&["slack:user:UNKNOWN"], CommandId::Add, SALES_CH, Target::Group(&g)),
            Decision::Refused(Refusal::Command)
        );
        assert!(matches!(
            decide(&["slack:user:UNKNOWN"], CommandId::History, SALES_CH, Target::Group(&g)),
            Decision::Allowed(_)
        ));
        let empty = Permissions::default();
        assert_eq!(
            empty.decide(
                &p(&["console"]),
                CommandId::Groups,
                &ChannelRef::from_text("x"),
                Target::None
            ),
            Decision::Refused(Refusal::NoRole)
        );
        // help and whoami stay open so an unbound user can find their own id.
        assert!(matches!(
            empty.decide(
                &p(&["console"]),
                CommandId::Whoami,
                &ChannelRef::from_text("x"),
                Target::None
            ),
            Decision::Allowed(_)
        ));
    }

    #[test]
    fn channel_restrictions() {
        let g = group("120363041234567890@g.us", "Sales Team");
        let who = ["discord:user:1", "discord:role:99"];
        assert_eq!(
            decide(&who, CommandId::Invite, "discord:555", Target::Group(&g)),
            Decision::Refused(Refusal::Channel)
        );
        assert!(matches!(
            decide(&who, CommandId::Invite, SALES_CH, Target::Group(&g)),
            Decision::Allowed(_)
        ));
        assert_eq!(
            perms().may_run(&p(&who), CommandId::Invite, &ChannelRef::from_text("discord:555")),
            Err(Refusal::Channel)
        );
    }

    #[test]
    fn all_groups_needs_star() {
        let who = ["slack:usergroup:S0SALES"];
        assert_eq!(
            decide(&who, CommandId::History, SALES_CH, Target::AllGroups),
            Decision::Allowed(Grant {
                rule: "role viewer, group *".into(),
                max_numbers: None,
                approval_over: None,
            })
        );
        assert_eq!(
            decide(&who, CommandId::Add, SALES_CH, Target::AllGroups),
            Decision::Refused(Refusal::Group)
        );
    }

    #[test]
    fn limits_are_the_most_permissive_matching_grant() {
        let g = group("120363000000000002@g.us", "Sales North");
        let limit = |who: &[&str]| match decide(who, CommandId::Add, SALES_CH, Target::Group(&g)) {
            Decision::Allowed(grant) => grant.max_numbers,
            other => panic!("{other:?}"),
        };
        assert_eq!(limit(&["slack:usergroup:S0SALES"]), Some(50));
        assert_eq!(limit(&["slack:usergroup:S0SALES", "slack:user:UBULK"]), Some(200));
        assert_eq!(limit(&["slack:usergroup:S0SALES", "slack:user:UADMIN"]), None);
        assert_eq!(limit(&["slack:usergroup:S0SALES", "slack:user:UWHOLESALE"]), None);
        assert_eq!(limit(&["slack:user:UBULK", "slack:user:UWHOLESALE"]), None);
    }

    #[test]
    fn help_and_whoami_use_the_same_evaluator() {
        let perms = perms();
        let who = p(&["slack:usergroup:S0SALES"]);
        let here = ChannelRef::from_text(SALES_CH);
        let runnable: Vec<_> = CommandId::ALL
            .into_iter()
            .filter(|c| perms.may_run(&who, *c, &here).is_ok())
            .collect();
        assert_eq!(
            runnable,
            [
                CommandId::Add,
                CommandId::Invite,
                CommandId::History,
                CommandId::Groups,
                CommandId::Help,
                CommandId::Whoami
            ]
        );
        let names: Vec<_> = perms.roles_of(&who).iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["sales", "viewer"]);
    }

    #[test]
    fn scope_parsing_errors() {
        let aliases = BTreeMap::new();
        assert!(GroupScope::parse("name:", &aliases).is_err());
        assert!(GroupScope::parse("123@c.us", &aliases)
            .unwrap_err()
            .contains("not a group id"));
        assert!(GroupScope::parse("ops", &aliases)
            .unwrap_err()
            .contains("unknown alias `ops`"));
        assert!(check_channel_pattern("slack:C1").is_ok());
        assert!(check_channel_pattern("teams:C1").is_err());
        assert!(check_channel_pattern("slack:").is_err());
    }
}
