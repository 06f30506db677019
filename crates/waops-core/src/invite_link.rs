//! WhatsApp group invite links and codes, in every form people paste them.

use std::fmt;

/// A syntactically valid invite code (16 to 32 ASCII letters and digits).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InviteCode(String);

impl InviteCode {
    /// The bare code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical link, `https://chat.whatsapp.com/<code>`.
    pub fn link(&self) -> String {
        format!("https://chat.whatsapp.com/{}", self.0)
    }
}

impl fmt::Display for InviteCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What was wrong with an invite; the message names what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// A URL whose host is not chat.whatsapp.com.
    #[error("`{0}` is not a WhatsApp invite host (expected chat.whatsapp.com)")]
    WrongHost(String),
    /// A URL on the right host but with an unexpected path.
    #[error("the link's path is not an invite (expected https://chat.whatsapp.com/<code>)")]
    WrongPath,
    /// A code of the wrong length.
    #[error("an invite code has 16 to 32 letters and digits; this one has {0}")]
    BadLength(usize),
    /// A code with characters other than letters and digits.
    #[error("an invite code has only letters and digits; found `{0}`")]
    BadCharacter(char),
    /// Something that is neither a link nor a code.
    #[error("expected an invite link (https://chat.whatsapp.com/<code>) or a code")]
    NotAnInvite,
}

/// Parses an invite link (`https://chat.whatsapp.com/<code>`, with `/invite/`,
/// trailing `/` or `?query`, `http://` or no scheme) or a bare code.
pub fn parse(input: &str) -> Result<InviteCode, InviteError> {
    parse_with(input, 16..=32)
}

/// Like `parse`, for codes a provider sent back: any length from 1 to 64, since
/// providers' examples show short codes and waops only passes them on.
pub fn parse_from_provider(input: &str) -> Result<InviteCode, InviteError> {
    parse_with(input, 1..=64)
}

fn parse_with(input: &str, lengths: std::ops::RangeInclusive<usize>) -> Result<InviteCode, InviteError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(InviteError::NotAnInvite);
    }
    let looks_like_url = text.contains('/') || text.contains('.') || text.contains(':');
    if !looks_like_url {
        return code(text, &lengths);
    }
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("https://{text}")
    };
    let url = url::Url::parse(&with_scheme).map_err(|_| InviteError::NotAnInvite)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InviteError::NotAnInvite);
    }
    let host = url.host_str().unwrap_or_default();
    if host != "chat.whatsapp.com" {
        return Err(InviteError::WrongHost(host.to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err(InviteError::WrongHost(host.to_string()));
    }
    if url.fragment().is_some() {
        return Err(InviteError::WrongPath);
    }
    let mut segments: Vec<&str> = url.path_segments().map(|s| s.collect()).unwrap_or_default();
    if segments.last() == Some(&"") {
        segments.pop();
    }
    match segments.as_slice() {
        [c] | ["invite", c] => code(c, &lengths),
        _ => Err(InviteError::WrongPath),
    }
}

fn code(text: &str, lengths: &std::ops::RangeInclusive<usize>) -> Result<InviteCode, InviteError> {
    if let Some(c) = text.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(InviteError::BadCharacter(c));
    }
    if !lengths.contains(&text.len()) {
        return Err(InviteError::BadLength(text.len()));
    }
    Ok(InviteCode(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: &str = "EUKdz8Sdy9T2UWPnOKGkx";

    #[test]
    fn accepts_every_listed_form() {
        let forms = [
            format!("https://chat.whatsapp.com/{CODE}"),
            format!("https://chat.whatsapp.com/invite/{CODE}"),
            format!("https://chat.whatsapp.com/{CODE}/"),
            format!("https://chat.whatsapp.com/invite/{CODE}/"),
            format!("https://chat.whatsapp.com/{CODE}?utm_source=x&s=1"),
            format!("https://chat.whatsapp.com/{CODE}/?x=1"),
            format!("http://chat.whatsapp.com/{CODE}"),
            format!("chat.whatsapp.com/{CODE}"),
            format!("chat.whatsapp.com/invite/{CODE}"),
            format!("HTTPS://CHAT.WHATSAPP.COM/{CODE}"),
            format!("  {CODE}  "),
            CODE.to_string(),
            "A".repeat(16),
            "9".repeat(32),
        ];
        for form in forms {
            let code = parse(&form).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert!(form.contains(code.as_str()), "{form}");
        }
        assert_eq!(parse(CODE).unwrap().link(), format!("https://chat.whatsapp.com/{CODE}"));
        // Provider answers may carry shorter codes; user input may not.
        assert_eq!(parse_from_provider("ABC123XYZ").unwrap().as_str(), "ABC123XYZ");
        assert!(parse("ABC123XYZ").is_err());
        assert!(parse_from_provider("https://evil.example/ABC").is_err());
    }

    #[test]
    fn rejects_look_alikes() {
        use InviteError::*;
        let cases = [
            (
                format!("https://chat.whatsapp.com.evil.example/{CODE}"),
                WrongHost("chat.whatsapp.com.evil.example".into()),
            ),
            (
                format!("https://evilchat.whatsapp.com/{CODE}"),
                WrongHost("evilchat.whatsapp.com".into()),
            ),
            (format!("https://whatsapp.com/{CODE}"), WrongHost("whatsapp.com".into())),
            (format!("https://wa.me/{CODE}"), WrongHost("wa.me".into())),
            (
                format!("https://user@chat.whatsapp.com/{CODE}"),
                WrongHost("chat.whatsapp.com".into()),
            ),
            (
                format!("https://chat.whatsapp.com:8443/{CODE}"),
                WrongHost("chat.whatsapp.com".into()),
            ),
            (format!("https://chat.whatsapp.com/join/{CODE}"), WrongPath),
            (format!("https://chat.whatsapp.com/{CODE}/extra"), WrongPath),
            (format!("https://chat.whatsapp.com/{CODE}#frag"), WrongPath),
            ("https://chat.whatsapp.com/".to_string(), WrongPath),
            (format!("ftp://chat.whatsapp.com/{CODE}"), NotAnInvite),
            ("short123".to_string(), BadLength(8)),
            ("A".repeat(33), BadLength(33)),
            ("abcdefgh-ijklmnopq".to_string(), BadCharacter('-')),
            ("https://chat.whatsapp.com/abc".to_string(), BadLength(3)),
            (
                "https://chat.whatsapp.com/abcdefghijklmnop_q".to_string(),
                BadCharacter('_'),
            ),
            ("".to_string(), NotAnInvite),
            ("ünïcödeünïcödeünïcöde".to_string(), BadCharacter('ü')),
        ];
        for (input, want) in cases {
            assert_eq!(parse(&input), Err(want), "{input}");
        }
    }
}
