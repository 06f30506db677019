//! Group references as typed by users: a JID, an alias, or (part of) a name.

use std::collections::BTreeMap;

/// A WhatsApp group id such as `120363041234567890@g.us`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct GroupId(String);

impl GroupId {
    /// Parses a group JID: `<digits>@g.us` or `<digits>-<digits>@g.us`.
    pub fn parse(text: &str) -> Option<GroupId> {
        let user = text.strip_suffix("@g.us")?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ok = match user.split_once('-') {
            Some((a, b)) => digits(a) && digits(b),
            None => digits(user),
        };
        ok.then(|| GroupId(text.to_string()))
    }

    /// The JID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A group the connected number is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group's JID.
    pub id: GroupId,
    /// The group's subject.
    pub name: String,
    /// Whether the connected number is an admin here, when the group list says
    /// (add, remove and invite need it).
    pub admin: Option<bool>,
    /// The account (connected number) whose list holds it, when several are
    /// configured; `None` with one account, so nothing names it.
    pub account: Option<std::sync::Arc<str>>,
}

impl GroupInfo {
    /// A group whose admin standing the list did not say.
    pub fn new(id: GroupId, name: impl Into<String>) -> Self {
        GroupInfo {
            id,
            name: name.into(),
            admin: None,
            account: None,
        }
    }

    /// The name as shown to people: with its account when several are configured.
    pub fn label(&self) -> String {
        match &self.account {
            Some(account) => format!("{} ({account})", self.name),
            None => self.name.clone(),
        }
    }
}

/// How a reference failed to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Exactly one group.
    Found(GroupInfo),
    /// Nothing matched.
    NoMatch,
    /// Several names contain the text; up to ten candidates, and how many there were.
    Ambiguous(Vec<GroupInfo>, usize),
}

/// Most candidates listed for an ambiguous reference.
pub const MAX_CANDIDATES: usize = 10;

/// Resolves `reference` against the groups the number is in.
///
/// Order: a JID (known or not: the provider decides about unknown ones), an alias,
/// a case-insensitive exact name, then a unique case-insensitive substring.
/// A JID in the lists of several accounts is ambiguous like a name.
pub fn resolve(reference: &str, aliases: &BTreeMap<String, GroupId>, groups: &[GroupInfo]) -> Resolve {
    let reference = reference.trim();
    let by_id = |id: &GroupId| {
        let found: Vec<&GroupInfo> = groups.iter().filter(|g| &g.id == id).collect();
        match found.as_slice() {
            [] => Resolve::Found(GroupInfo::new(id.clone(), id.to_string())),
            many => one_or_candidates(many),
        }
    };
    if let Some(id) = GroupId::parse(reference) {
        return by_id(&id);
    }
    // Lowered once, for the aliases and the names.
    let needle = crate::parser::lowercase(reference);
    if let Some(id) = aliases.get(&*needle) {
        return by_id(id);
    }
    if needle.is_empty() {
        return Resolve::NoMatch;
    }
    let exact: Vec<&GroupInfo> = groups.iter().filter(|g| g.name.to_lowercase() == *needle).collect();
    let matches = if exact.is_empty() {
        groups
            .iter()
            .filter(|g| g.name.to_lowercase().contains(&*needle))
            .collect()
    } else {
        exact
    };
    match matches.as_slice() {
        [] => Resolve::NoMatch,
        many => one_or_candidates(many),
    }
}

fn one_or_candidates(matches: &[&GroupInfo]) -> Resolve {
    match matches {
        [one] => Resolve::Found((*one).clone()),
        many => Resolve::Ambiguous(
            many.iter().take(MAX_CANDIDATES).map(|g| (*g).clone()).collect(),
            many.len(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: &str, name: &str) -> GroupInfo {
        GroupInfo::new(GroupId::parse(id).unwrap(), name)
    }

    fn groups() -> Vec<GroupInfo> {
        vec![
            g("120363041234567890@g.us", "Sales Team"),
            g("120363041234567891@g.us", "Sales Team EMEA"),
            g("120363041234567892@g.us", "Community Berlin"),
            g("120363041234567893@g.us", "Community Hamburg"),
            g("4915112345678-1600000000@g.us", "Old Style Group"),
        ]
    }

    fn aliases() -> BTreeMap<String, GroupId> {
        BTreeMap::from([(
            "support".to_string(),
            GroupId::parse("120363041234567892@g.us").unwrap(),
        )])
    }

    fn found(r: &str) -> String {
        match resolve(r, &aliases(), &groups()) {
            Resolve::Found(g) => g.name,
            other => panic!("{r}: {other:?}"),
        }
    }

    #[test]
    fn jids() {
        assert!(GroupId::parse("120363041234567890@g.us").is_some());
        assert!(GroupId::parse("4915112345678-1600000000@g.us").is_some());
        for bad in [
            "120363@c.us",
            "@g.us",
            "12a@g.us",
            "1-@g.us",
            "-1@g.us",
            "1-2-3@g.us",
            "120363041234567890",
        ] {
            assert!(GroupId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn resolves_in_order() {
        assert_eq!(found("120363041234567893@g.us"), "Community Hamburg");
        assert_eq!(found("4915112345678-1600000000@g.us"), "Old Style Group");
        assert_eq!(found("SUPPORT"), "Community Berlin");
        // Exact match wins over the substring that also matches "Sales Team EMEA".
        assert_eq!(found("sales team"), "Sales Team");
        assert_eq!(found("emea"), "Sales Team EMEA");
        assert_eq!(found("hamb"), "Community Hamburg");
    }

    #[test]
    fn unknown_jid_passes_through_to_the_provider() {
        match resolve("120363000000000000@g.us", &aliases(), &groups()) {
            Resolve::Found(g) => assert_eq!(g.name, "120363000000000000@g.us"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_match_and_ambiguous() {
        assert_eq!(resolve("marketing", &aliases(), &groups()), Resolve::NoMatch);
        assert_eq!(resolve("  ", &aliases(), &groups()), Resolve::NoMatch);
        match resolve("community", &aliases(), &groups()) {
            Resolve::Ambiguous(c, n) => {
                assert_eq!(n, 2);
                assert_eq!(c[0].name, "Community Berlin");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_group_in_two_accounts_is_ambiguous_by_id_and_alias() {
        let in_account = |name: &str| GroupInfo {
            account: Some(name.into()),
            ..g("120363041234567892@g.us", "Community Berlin")
        };
        let both = vec![in_account("eu"), in_account("us")];
        for reference in ["120363041234567892@g.us", "support", "berlin"] {
            match resolve(reference, &aliases(), &both) {
                Resolve::Ambiguous(c, 2) => assert_eq!(c[1].label(), "Community Berlin (us)"),
                other => panic!("{reference}: {other:?}"),
            }
        }
    }

    #[test]
    fn at_most_ten_candidates() {
        let many: Vec<_> = (0..15)
            .map(|i| g(&format!("1203630{i:02}@g.us"), &format!("Team {i}")))
            .collect();
        match resolve("team", &BTreeMap::new(), &many) {
            Resolve::Ambiguous(c, n) => assert_eq!((c.len(), n), (10, 15)),
            other => panic!("{other:?}"),
        }
    }
}
