//! Phone-number lists as people type them into chat: split, validate with
//! libphonenumber rules (the `phonenumber` crate) and normalise to E.164.
//!
//! Pure: no I/O, no configuration reads; the default region is passed in.

use std::collections::HashSet;
use std::fmt;

use phonenumber::country;

/// A validated number in E.164 form, e.g. `+4915112345678`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// The number with its leading `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Country code and national number without `+`, as WhatsApp ids use it.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// `+49 151 •••• 5678`: country code, the first national digits, and the
    /// last four; enough to recognise a number without exposing it.
    pub fn masked(&self) -> String {
        let digits = self.digits();
        let cc_len = country_code_len(digits);
        let (cc, national) = digits.split_at(cc_len);
        if national.len() < 8 {
            // Too short to show both ends without revealing most of it.
            let tail = &national[national.len() - national.len() / 2..];
            return format!("+{cc} •••• {tail}");
        }
        let tail = &national[national.len() - 4..];
        format!("+{cc} {} •••• {tail}", &national[..3])
    }

    /// Rebuilds a number that was validated earlier (e.g. read back from the
    /// provider or the store); `None` when it is not `+` and digits.
    pub fn from_trusted(s: &str) -> Option<E164> {
        let digits = s.strip_prefix('+').unwrap_or(s);
        (digits.len() >= 7 && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| E164(format!("+{digits}")))
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ITU country code at the start of `digits` and its length (1 to 3
/// digits): the shortest known prefix, as the crate's parser takes it.
fn country_code(digits: &str) -> Option<(u16, usize)> {
    (1..=3).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        phonenumber::metadata::DATABASE
            .by_code(&code)
            .is_some()
            .then_some((code, len))
    })
}

/// Length of the ITU country code at the start of `digits` (1 to 3 digits).
fn country_code_len(digits: &str) -> usize {
    country_code(digits).map_or(1.min(digits.len()), |(_, len)| len)
}

/// Why one typed number was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidNumber {
    /// Exactly what the user typed for this number.
    pub input: String,
    /// A short reason, e.g. "too short" or "contains letters".
    pub reason: String,
}

/// The result of reading a number list: the accepted numbers in input order,
/// the inputs that repeated an earlier number, and the refused ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberList {
    /// Valid, distinct numbers, in the order they were typed.
    pub valid: Vec<Accepted>,
    /// Inputs dropped because they normalise to a number seen earlier.
    pub duplicates: Vec<Accepted>,
    /// Inputs that are not valid numbers, with reasons.
    pub invalid: Vec<InvalidNumber>,
}

/// One accepted input and its normalised form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// What the user typed.
    pub input: String,
    /// The E.164 form.
    pub number: E164,
}

/// One piece of a number list as the command tokenizer produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumberToken {
    /// The token text.
    pub text: String,
    /// True when the user put it in double quotes: then it is one number, spaces and all.
    pub quoted: bool,
}

impl NumberToken {
    /// An unquoted token.
    pub fn plain(text: &str) -> Self {
        NumberToken {
            text: text.to_string(),
            quoted: false,
        }
    }
}

/// Splits tokens into number inputs and validates each.
///
/// Separators are commas, semicolons and newlines. Inside one separated segment,
/// spaces are ambiguous (`+49 151 1234 5678` is one number, `+4915112345678
/// +4915112345679` are two), so a segment is cut before every token that starts
/// a new international number (`+` or `00`), and each piece is read as one number
/// when its digits together form a valid number, else token by token.
pub fn parse_list(tokens: &[NumberToken], region: country::Id) -> NumberList {
    let mut list = NumberList::default();
    // Keyed by the digits read as one integer (a country code and at most 17
    // national digits, no leading zero), so noting a number copies nothing.
    let mut seen = HashSet::new();
    for input in split_inputs(tokens, region) {
        match parse_one(&input, region) {
            Ok(number) => {
                let key = number.digits().parse::<u128>().expect("at most 20 digits");
                let accepted = Accepted { input, number };
                if seen.insert(key) {
                    list.valid.push(accepted);
                } else {
                    list.duplicates.push(accepted);
                }
            }
            Err(reason) => list.invalid.push(InvalidNumber { input, reason }),
        }
    }
    list
}

fn split_inputs(tokens: &[NumberToken], region: country::Id) -> Vec<String> {
    let mut inputs = Vec::new();
    // The words of the current run: borrowed, so a number typed as one word
    // costs one copy, into its input.
    let mut run: Vec<&str> = Vec::new();
    for token in tokens {
        if token.quoted {
            end_run(&mut run, &mut inputs, region);
            inputs.push(token.text.trim().to_string());
            continue;
        }
        let mut pieces = token.text.split([',', ';', '\n', '\r']).peekable();
        while let Some(piece) = pieces.next() {
            for word in piece.split_whitespace() {
                if word.starts_with('+') || word.starts_with("00") {
                    end_run(&mut run, &mut inputs, region);
                }
                run.push(word);
            }
            if pieces.peek().is_some() {
                end_run(&mut run, &mut inputs, region);
            }
        }
    }
    end_run(&mut run, &mut inputs, region);
    inputs
}

/// Ends a run of words: one input when the words together are a valid
/// number (or there is only one), else one input per word.
fn end_run(run: &mut Vec<&str>, inputs: &mut Vec<String>, region: country::Id) {
    match run.as_slice() {
        [] => {}
        [word] => inputs.push(word.to_string()),
        words => {
            let joined = words.join(" ");
            if parse_one(&joined, region).is_ok() {
                inputs.push(joined);
            } else {
                inputs.extend(words.iter().map(|w| w.to_string()));
            }
        }
    }
    run.clear();
}

/// Validates one typed number and returns its E.164 form or a reason.
pub fn parse_one(input: &str, region: country::Id) -> Result<E164, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("empty".into());
    }
    let text = match jid_user(text) {
        Some(Ok(digits)) => return international(&format!("+{digits}"), text),
        Some(Err(reason)) => return Err(reason),
        None => text,
    };
    if text.chars().any(|c| c.is_alphabetic()) {
        return Err("contains letters".into());
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | '(' | ')' | ' ')))
    {
        return Err(format!("unexpected character `{c}`"));
    }
    if text.rfind('+').is_some_and(|i| i > 0) {
        return Err("`+` may only stand at the start".into());
    }
    let digit_count = text.chars().filter(|c| c.is_ascii_digit()).count();
    if digit_count == 0 {
        return Err("no digits".into());
    }
    // A leading 00 is the international prefix in most of the world; read it as `+`
    // whatever the default region's own prefix is.
    if let Some(rest) = text.strip_prefix("00") {
        return international(&format!("+{rest}"), text);
    }
    if text.starts_with('+') {
        return international(text, text);
    }
    let parsed = phonenumber::parse(Some(region), text).map_err(parse_reason)?;
    valid(parsed, Some(region))
}

/// The user part of a WhatsApp user JID, if `text` is one.
fn jid_user(text: &str) -> Option<Result<&str, String>> {
    let (user, server) = text.split_once('@')?;
    if !matches!(server, "c.us" | "s.whatsapp.net") {
        return Some(Err(format!(
            "`@{server}` is not a WhatsApp user id (expected @c.us or @s.whatsapp.net)"
        )));
    }
    if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Err("a WhatsApp id must be digits before the @".into()));
    }
    Some(Ok(user))
}

fn international(text: &str, _original: &str) -> Result<E164, String> {
    let parsed = phonenumber::parse(None, text).map_err(parse_reason)?;
    valid(parsed, None)
}

fn valid(number: phonenumber::PhoneNumber, region: Option<country::Id>) -> Result<E164, String> {
    if !phonenumber::is_valid(&number) {
        // Prefer a length reason when the region's possible lengths tell one.
        let length = number.national().to_string().len() as u16;
        let lengths = number
            .metadata(&phonenumber::metadata::DATABASE)
            .map(|m| m.descriptors().general().possible_length().to_vec())
            .unwrap_or_default();
        // No national number anywhere is shorter than four digits.
        if length < 4 {
            return Err("too short".into());
        }
        if let (Some(min), Some(max)) = (lengths.iter().min(), lengths.iter().max()) {
            if length < *min {
                return Err("too short".into());
            }
            if length > *max {
                return Err("too long".into());
            }
        }
        let reason = match (number.country().id(), region) {
            (Some(id), _) => format!("not a valid {id:?} number"),
            (None, Some(region)) => format!("not a valid {region:?} number"),
            (None, None) => format!("not a valid number for country code +{}", number.code().value()),
        };
        return Err(reason);
    }
    // E.164 is `+`, the country code and the national number; the crate's
    // formatter would search the country's display patterns to write the same.
    Ok(E164(format!("+{}{}", number.code().value(), number.national())))
}

fn parse_reason(error: phonenumber::ParseError) -> String {
    use phonenumber::ParseError::*;
    match error {
        NoNumber => "not a phone number".into(),
        InvalidCountryCode => "unknown country code".into(),
        TooShortAfterIdd | TooShortNsn => "too short".into(),
        TooLong => "too long".into(),
        MalformedInteger(_) => "not a phone number".into(),
    }
}

/// Loads libphonenumber's metadata now (about 60 ms of CPU) instead of on the
/// first `add`, so a server's first command is not the slow one.
pub fn warm_up() {
    let _ = phonenumber::metadata::DATABASE.by_code(&49);
}

/// Parses an ISO 3166 alpha-2 region such as `DE`.
pub fn region(code: &str) -> Option<country::Id> {
    let code = code.trim();
    // Read on every add: a code written in capitals, as usual, is parsed in place.
    code.parse().ok().or_else(|| code.to_ascii_uppercase().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn de() -> country::Id {
        region("DE").unwrap()
    }

    fn tokens(text: &str) -> Vec<NumberToken> {
        text.split(' ').map(NumberToken::plain).collect()
    }

    #[test]
    fn normalises_every_written_form() {
        let cases = [
            ("+4915112345678", "+4915112345678"),
            ("+49 151 1234 5678", "+4915112345678"),
            ("0151-1234-5679", "+4915112345679"),
            ("0151.1234.5678", "+4915112345678"),
            ("(0151) 12345678", "+4915112345678"),
            ("004915112345678", "+4915112345678"),
            ("00 49 151 12345678", "+4915112345678"),
            ("4915112345678@c.us", "+4915112345678"),
            ("4915112345678@s.whatsapp.net", "+4915112345678"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+44 20 7946 0958", "+442079460958"),
            ("+91 98765 43210", "+919876543210"),
        ];
        for (input, want) in cases {
            assert_eq!(parse_one(input, de()).as_ref().map(E164::as_str), Ok(want), "{input}");
        }
    }

    #[test]
    fn default_region_applies_only_without_country_code() {
        let us = region("us").unwrap();
        assert_eq!(parse_one("(415) 555-2671", us).unwrap().as_str(), "+14155552671");
        assert_eq!(parse_one("+4915112345678", us).unwrap().as_str(), "+4915112345678");
        // 00 is read as + even where the region dials 011 abroad.
        assert_eq!(parse_one("004915112345678", us).unwrap().as_str(), "+4915112345678");
    }

    #[test]
    fn refuses_with_a_reason_per_input() {
        let cases = [
            ("hello", "contains letters"),
            ("1-800-FLOWERS", "contains letters"),
            ("12", "too short"),
            ("+49 151", "too short"),
            ("+999 1234567", "unknown country code"),
            ("+49 151 1234 5678 9999 1234", "too long"),
            ("+49 1", "too short"),
            ("0151#12345678", "unexpected character `#`"),
            ("49+15112345678", "`+` may only stand at the start"),
            ("---", "no digits"),
            (
                "491511234@g.us",
                "`@g.us` is not a WhatsApp user id (expected @c.us or @s.whatsapp.net)",
            ),
            ("abc@c.us", "a WhatsApp id must be digits before the @"),
            ("+49 30 1", "too short"),
            ("+1 415 555 267", "not a valid number for country code +1"),
        ];
        for (input, want) in cases {
            assert_eq!(parse_one(input, de()), Err(want.to_string()), "{input}");
        }
    }

    #[test]
    fn splits_on_separators_and_reads_spaced_numbers_as_one() {
        let list = parse_list(&tokens("+49 151 1234 5678, 0151-1234-5679"), de());
        let got: Vec<_> = list.valid.iter().map(|a| a.number.as_str()).collect();
        assert_eq!(got, ["+4915112345678", "+4915112345679"]);
        assert_eq!(list.valid[0].input, "+49 151 1234 5678");
        assert!(list.invalid.is_empty() && list.duplicates.is_empty());
    }

    #[test]
    fn splits_spaced_international_numbers_at_each_plus() {
        let list = parse_list(&tokens("+49 151 1234 5678 +49 151 1234 5679"), de());
        assert_eq!(list.valid.len(), 2);
        let list = parse_list(&tokens("+4915112345678 +4915112345679;+4915112345670"), de());
        assert_eq!(list.valid.len(), 3);
    }

    #[test]
    fn separators_semicolon_newline_and_whitespace() {
        let toks = vec![NumberToken::plain("+4915112345678;+4915112345679\n015112345670")];
        let list = parse_list(&toks, de());
        assert_eq!(list.valid.len(), 3, "{list:?}");
        let list = parse_list(&tokens("015112345678 015112345679"), de());
        assert_eq!(list.valid.len(), 2, "{list:?}");
    }

    #[test]
    fn quoted_input_is_one_number() {
        let toks = vec![
            NumberToken {
                text: "0151 1234 5678".into(),
                quoted: true,
            },
            NumberToken {
                text: "0151 12".into(),
                quoted: true,
            },
        ];
        let list = parse_list(&toks, de());
        assert_eq!(list.valid.len(), 1);
        assert_eq!(
            list.invalid,
            [InvalidNumber {
                input: "0151 12".into(),
                reason: "not a valid DE number".into()
            }]
        );
    }

    #[test]
    fn duplicates_are_dropped_and_reported() {
        let list = parse_list(&tokens("+4915112345678, 015112345678, 4915112345678@c.us"), de());
        assert_eq!(list.valid.len(), 1);
        let dups: Vec<_> = list.duplicates.iter().map(|a| a.input.as_str()).collect();
        assert_eq!(dups, ["015112345678", "4915112345678@c.us"]);
    }

    #[test]
    fn every_invalid_input_is_listed() {
        let list = parse_list(&tokens("+4915112345678, abc, 12"), de());
        assert_eq!(list.valid.len(), 1);
        let bad: Vec<_> = list
            .invalid
            .iter()
            .map(|i| (i.input.as_str(), i.reason.as_str()))
            .collect();
        assert_eq!(bad, [("abc", "contains letters"), ("12", "too short")]);
    }

    #[test]
    fn masks_the_middle() {
        let n = parse_one("+4915112345678", de()).unwrap();
        assert_eq!(n.masked(), "+49 151 •••• 5678");
        let n = parse_one("+14155552671", de()).unwrap();
        assert_eq!(n.masked(), "+1 415 •••• 2671");
        assert_eq!(n.digits(), "14155552671");
    }

    #[test]
    fn regions() {
        assert_eq!(region("de"), Some(country::Id::DE));
        assert_eq!(region(" DE "), Some(country::Id::DE));
        assert!(region("XX").is_none());
        assert!(region("Germany").is_none());
    }
}
