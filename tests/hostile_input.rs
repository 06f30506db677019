//! Property tests: whatever people (or attackers) type, the parsers answer with
//! a value or an error, never a panic, and valid results keep their invariants.

use proptest::prelude::*;
use waops::commands::Command;
use waops::phone::{self, NumberToken};

fn region() -> phonenumber::country::Id {
    phone::region("DE").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn command_parser_never_panics(text in "\\PC{0,200}") {
        let _ = Command::parse(&text);
    }

    #[test]
    fn command_parser_on_command_like_text(
        cmd in prop::sample::select(vec!["join", "add", "invite", "history", "groups", "subscribe", "unsubscribe", "subscriptions", "help", "whoami", "ad"]),
        rest in "[ a-zA-Z0-9+\\-.,;\"“”—:/@*\\n]{0,80}",
    ) {
        if let Err(e) = Command::parse(&format!("{cmd} {rest}")) {
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn number_lists_never_panic_and_normalise_to_e164(text in "[0-9+()\\-. ,;@a-z\\n]{0,120}") {
        let list = phone::parse_list(&[NumberToken::plain(&text)], region());
        for accepted in &list.valid {
            let n = accepted.number.as_str();
            prop_assert!(n.starts_with('+') && n[1..].bytes().all(|b| b.is_ascii_digit()), "{}", n);
            prop_assert!(n.len() <= 16);
        }
        for invalid in &list.invalid {
            prop_assert!(!invalid.reason.is_empty());
        }
    }

    #[test]
    fn invite_parser_never_panics_and_codes_are_clean(text in "\\PC{0,120}") {
        if let Ok(code) = waops::invite_link::parse(&text) {
            prop_assert!((16..=32).contains(&code.as_str().len()));
            prop_assert!(code.as_str().bytes().all(|b| b.is_ascii_alphanumeric()));
        }
    }

    #[test]
    fn invite_links_round_trip(code in "[A-Za-z0-9]{16,32}", suffix in prop::sample::select(vec!["", "/", "?x=1", "/?a=b"])) {
        let parsed = waops::invite_link::parse(&format!("https://chat.whatsapp.com/{code}{suffix}")).unwrap();
        prop_assert_eq!(parsed.as_str(), code.as_str());
    }
}
