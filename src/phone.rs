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
        validity::has_code(code).then_some((code, len))
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
    if let Some(number) = plain_international(text) {
        return Ok(number);
    }
    let parsed = phonenumber::parse(None, text).map_err(parse_reason)?;
    valid(parsed, None)
}

/// A valid number written as `+` and digits only (the form lists and APIs
/// mostly use), read without the crate's parser: on the ack path the parser
/// was half of a number's cost, most of it in its shared pattern cache. Only
/// where nothing the parser does could change the digits: the country code is
/// the shortest known prefix, as the parser takes it, and no national prefix
/// (trunk 0, carrier code) of any region of that code starts the rest, which
/// the parser would strip. Anything else, and every invalid number, takes the
/// parser's path, so refusals keep its reasons. A test compares both on every
/// country's numbers.
fn plain_international(text: &str) -> Option<E164> {
    let digits = text.strip_prefix('+')?;
    if digits.len() <= 2 || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (code, len) = country_code(digits)?;
    let national = &digits[len..];
    // The parser's bounds on a national number; a leading 0 is kept apart in its form.
    if !(2..=17).contains(&national.len()) || national.starts_with('0') {
        return None;
    }
    if validity::may_strip_prefix(code, national) {
        return None;
    }
    validity::is_valid_national(code, national).then(|| E164(format!("+{digits}")))
}

fn valid(number: phonenumber::PhoneNumber, region: Option<country::Id>) -> Result<E164, String> {
    if !validity::is_valid(&number) {
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
    // What `number.format().mode(Mode::E164)` writes, without its search of the
    // country's format patterns, which E.164 never uses.
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

/// `phonenumber::is_valid`, with each country's patterns compiled once.
///
/// The crate keeps its patterns in one shared 100-entry LRU cache behind a
/// mutex, keyed by pattern text: every test of a number locks it and hashes
/// each pattern with SipHash, and a team adding numbers from many countries
/// makes it recompile patterns it evicted. On the Slack ack path that was most
/// of the time spent on a number. The rules here are the crate's own
/// (`validator::is_valid_with`, `source_for`, `number_type`), applied to the
/// same pattern texts; a test checks both agree on numbers of every country.
mod validity {
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock, RwLock};

    use phonenumber::metadata::{Descriptor, Metadata, DATABASE};
    use regex::{Regex, RegexBuilder};

    /// The patterns of one region's metadata, compiled.
    struct Compiled {
        /// `leading_digits`: which region of a shared country code a number belongs to.
        leading: Option<Regex>,
        /// `national_prefix_for_parsing`: what the parser strips from a national number.
        prefix_for_parsing: Option<Regex>,
        general: Pattern,
        /// Fixed line, mobile, toll free, ...: a valid number matches one of them.
        kinds: Vec<Pattern>,
    }

    /// `Descriptor::is_match`: a possible length, and the pattern matching from the first digit.
    struct Pattern {
        lengths: Vec<u16>,
        re: Regex,
    }

    impl Pattern {
        fn new(desc: &Descriptor) -> Pattern {
            Pattern {
                lengths: desc.possible_length().to_vec(),
                re: anchored(desc.national_number().as_str()),
            }
        }

        fn is_match(&self, national: &str) -> bool {
            (self.lengths.is_empty() || self.lengths.contains(&(national.len() as u16))) && self.re.is_match(national)
        }
    }

    /// The crate tests `find(..).start() == 0`: the leftmost match starts at the
    /// first digit exactly when some match does, so an anchored search answers
    /// the same without scanning the rest. The patterns are written for
    /// whitespace-insensitive mode, as the crate compiles them; the newline
    /// closes any comment before the group does.
    fn anchored(source: &str) -> Regex {
        RegexBuilder::new(&format!("^(?:{source}\n)"))
            .ignore_whitespace(true)
            .build()
            .expect("libphonenumber's patterns compile, as they do in the crate")
    }

    impl Compiled {
        fn new(meta: &Metadata) -> Compiled {
            let d = meta.descriptors();
            // Any one matching makes a number valid, so the order is free: the
            // kinds people add to groups first.
            let kinds = [
                d.mobile(),
                d.fixed_line(),
                d.voip(),
                d.personal_number(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ];
            Compiled {
                leading: meta.leading_digits().map(|l| anchored(l.as_str())),
                prefix_for_parsing: meta.national_prefix_for_parsing().map(|p| anchored(p.as_str())),
                general: Pattern::new(d.general()),
                kinds: kinds.into_iter().flatten().map(Pattern::new).collect(),
            }
        }

        /// `number_type(..) != Type::Unknown`.
        fn known_type(&self, national: &str) -> bool {
            self.general.is_match(national) && self.kinds.iter().any(|k| k.is_match(national))
        }
    }

    /// Compiled on first use, per region: a server sees a few countries, not all 250.
    fn compiled(meta: &'static Metadata) -> Arc<Compiled> {
        type Cache = RwLock<HashMap<(u16, &'static str), Arc<Compiled>>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let cache = CACHE.get_or_init(Cache::default);
        let key = (meta.country_code(), meta.id());
        if let Some(found) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return found.clone();
        }
        let made = Arc::new(Compiled::new(meta));
        cache
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert(made)
            .clone()
    }

    /// `phonenumber::is_valid`.
    pub(super) fn is_valid(number: &phonenumber::PhoneNumber) -> bool {
        is_valid_national(number.code().value(), &number.national().to_string())
    }

    /// `phonenumber::is_valid` of the number with this country code and national number.
    pub(super) fn is_valid_national(code: u16, national: &str) -> bool {
        source(code, national).is_some_and(|meta| compiled(meta).known_type(national))
    }

    /// The regions of each country code (`Database::by_code`, which builds a
    /// vector on every call), read once.
    fn regions_of(code: u16) -> &'static [&'static Metadata] {
        static BY_CODE: OnceLock<Vec<Vec<&'static Metadata>>> = OnceLock::new();
        let table = BY_CODE.get_or_init(|| (0..1000u16).map(|c| DATABASE.by_code(&c).unwrap_or_default()).collect());
        table.get(usize::from(code)).map_or(&[], Vec::as_slice)
    }

    /// Whether `code` is a country code the parser knows.
    pub(super) fn has_code(code: u16) -> bool {
        !regions_of(code).is_empty()
    }

    /// Whether the parser could strip a national prefix from `national`: it
    /// starts with the national prefix, or the prefix-for-parsing pattern
    /// matches at its first digit, in some region of `code`.
    pub(super) fn may_strip_prefix(code: u16, national: &str) -> bool {
        regions_of(code).iter().any(|meta| {
            // An empty match strips nothing; a transform rule may still rewrite.
            let rewrites = |m: regex::Match| m.end() > 0 || meta.national_prefix_transform_rule().is_some();
            meta.national_prefix().is_some_and(|p| national.starts_with(p))
                || compiled(meta)
                    .prefix_for_parsing
                    .as_ref()
                    .and_then(|re| re.find(national))
                    .is_some_and(rewrites)
        })
    }

    /// `validator::source_for`, then the metadata `is_valid_with` takes from it.
    fn source(code: u16, national: &str) -> Option<&'static Metadata> {
        let regions = DATABASE.region(&code)?;
        if let [only] = regions[..] {
            if only == "001" {
                return DATABASE.by_code(&code)?.into_iter().next();
            }
            only.parse::<phonenumber::country::Id>().ok()?;
            return DATABASE.by_id(only);
        }
        regions.into_iter().find_map(|region| {
            let meta = DATABASE.by_id(region)?;
            let compiled = compiled(meta);
            let belongs = match &compiled.leading {
                Some(leading) => leading.is_match(national),
                None => compiled.known_type(national),
            };
            // The crate unwraps this parse; a region it cannot name is no source here.
            (belongs && region.parse::<phonenumber::country::Id>().is_ok()).then_some(meta)
        })
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

    /// Pseudo-random numbers that repeat from run to run (xorshift64).
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// `validity::is_valid` must say what `phonenumber::is_valid` says, and the
    /// E.164 text must be the crate's. Inputs: every example number in the
    /// metadata (every region, every number type), each also with a digit
    /// changed, one dropped and one added, and pseudo-random digit strings after
    /// every country code, so both valid and invalid numbers of every country,
    /// shared country codes (+1, +7, +44, ...) included, are compared.
    #[test]
    fn validity_agrees_with_the_crate_on_every_country() {
        use phonenumber::metadata::DATABASE;
        let mut inputs = Vec::new();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for meta in DATABASE.iter() {
            let code = meta.country_code();
            let d = meta.descriptors();
            let descs = [
                Some(d.general()),
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ];
            for example in descs.into_iter().flatten().filter_map(|d| d.example()) {
                inputs.push(format!("+{code}{example}"));
                let mut changed: Vec<u8> = example.bytes().collect();
                let at = next() as usize % changed.len();
                changed[at] = b'0' + ((changed[at] - b'0' + 1 + (next() % 9) as u8) % 10);
                inputs.push(format!("+{code}{}", String::from_utf8(changed).unwrap()));
                inputs.push(format!("+{code}{}", &example[..example.len() - 1]));
                inputs.push(format!("+{code}{example}{}", next() % 10));
            }
            for _ in 0..20 {
                let len = 4 + next() as usize % 10;
                let digits: String = (0..len).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
                inputs.push(format!("+{code}{digits}"));
            }
        }
        let (mut valid_count, mut invalid_count) = (0, 0);
        for input in &inputs {
            let Ok(number) = phonenumber::parse(None, input) else {
                continue;
            };
            let crate_says = phonenumber::is_valid(&number);
            assert_eq!(validity::is_valid(&number), crate_says, "{input}");
            if crate_says {
                valid_count += 1;
                let ours = valid(number.clone(), None).unwrap();
                assert_eq!(
                    ours.as_str(),
                    number.format().mode(phonenumber::Mode::E164).to_string(),
                    "{input}"
                );
            } else {
                invalid_count += 1;
            }
        }
        // Both sides of the comparison were exercised, in numbers.
        assert!(
            valid_count > 1_000 && invalid_count > 1_000,
            "{valid_count} valid, {invalid_count} invalid"
        );
    }

    /// `plain_international` must give what the parser's path gives wherever it
    /// answers, and answer for most valid numbers. Inputs as above (every
    /// country's example numbers, changed, shortened, lengthened, and random
    /// digits after every country code), plus national prefixes written after
    /// the country code (`+44 0...`), which the parser strips.
    #[test]
    fn plain_international_numbers_read_as_the_parser_reads_them() {
        use phonenumber::metadata::DATABASE;
        let mut next = xorshift(0x2545_f491_4f6c_dd1d);
        // (input, whether it is an example number as written in E.164)
        let mut inputs: Vec<(String, bool)> = Vec::new();
        for meta in DATABASE.iter() {
            let code = meta.country_code();
            let d = meta.descriptors();
            let descs = [Some(d.general()), d.fixed_line(), d.mobile(), d.toll_free(), d.voip()];
            for example in descs.into_iter().flatten().filter_map(|d| d.example()) {
                inputs.push((format!("+{code}{example}"), true));
                inputs.push((format!("+{code}{}", &example[..example.len() - 1]), false));
                inputs.push((format!("+{code}{example}{}", next() % 10), false));
                if let Some(prefix) = meta.national_prefix() {
                    inputs.push((format!("+{code}{prefix}{example}"), false));
                }
            }
            for _ in 0..30 {
                let len = 2 + next() as usize % 16;
                let digits: String = (0..len).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
                inputs.push((format!("+{code}{digits}"), false));
            }
        }
        for _ in 0..2_000 {
            let len = 1 + next() as usize % 19;
            let digits: String = (0..len).map(|_| char::from(b'0' + (next() % 10) as u8)).collect();
            inputs.push((format!("+{digits}"), false));
        }
        let (mut answered, mut examples, mut examples_answered) = (0, 0, 0);
        for (input, example) in &inputs {
            let parser = phonenumber::parse(None, input)
                .map_err(parse_reason)
                .and_then(|n| valid(n, None));
            let plain = plain_international(input);
            if let Some(number) = &plain {
                answered += 1;
                assert_eq!(Ok(number), parser.as_ref(), "{input}");
            }
            assert_eq!(international(input, input), parser, "{input}");
            if *example && parser.is_ok() {
                examples += 1;
                examples_answered += usize::from(plain.is_some());
            }
        }
        // Most valid numbers written in E.164 are read without the parser.
        assert!(
            answered > 1_000 && examples_answered * 10 > examples * 9,
            "{examples_answered} of {examples} valid examples answered, {answered} of {} inputs",
            inputs.len()
        );
    }
}
