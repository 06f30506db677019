//! Discord request signing: `X-Signature-Ed25519` over `X-Signature-Timestamp`
//! followed by the raw body, with the application's public key (ed25519-dalek).

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use reqwest::header::HeaderMap;

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Headers missing or not hex.
    #[error("missing or malformed signature headers")]
    Missing,
    /// The signature does not match.
    #[error("signature mismatch")]
    Mismatch,
    /// Signed more than `WINDOW_S` away from now: a replay, or a wrong clock.
    #[error("timestamp too far from now")]
    Stale,
}

/// How far a request's signed timestamp may be from now, in seconds.
pub const WINDOW_S: u64 = 300;

/// Parses the configured public key (64 hex characters).
pub fn public_key(hex_key: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "expected 64 hex characters (the application's public key)".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_string())
}

/// Checks a request against the key; `now` is the Unix time in seconds. The
/// timestamp is signed with the body, so a replay must keep it: one older than
/// `WINDOW_S` is refused (within the window, the interaction id's claim in the
/// store stops a repeat).
pub fn verify(key: &VerifyingKey, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), VerifyError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header("x-signature-timestamp").ok_or(VerifyError::Missing)?;
    let signed_at: i64 = timestamp.trim().parse().map_err(|_| VerifyError::Missing)?;
    let mut signature = [0u8; 64];
    // Decoded in place: no buffer allocated per request.
    header("x-signature-ed25519")
        .and_then(|s| hex::decode_to_slice(s, &mut signature).ok())
        .ok_or(VerifyError::Missing)?;
    let mut message = Vec::with_capacity(timestamp.len() + body.len());
    message.extend_from_slice(timestamp.as_bytes());
    message.extend_from_slice(body);
    key.verify(&message, &Signature::from_bytes(&signature))
        .map_err(|_| VerifyError::Mismatch)?;
    // After the signature: a forged timestamp is a mismatch, not "stale".
    if now.abs_diff(signed_at) > WINDOW_S {
        return Err(VerifyError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use reqwest::header::HeaderValue;

    #[test]
    fn verifies_and_refuses() {
        let signing = SigningKey::from_bytes(&[7u8; 32]);
        let key = public_key(&hex::encode(signing.verifying_key().to_bytes())).unwrap();
        let body = br#"{"type":1}"#;
        let sig = signing.sign(&[b"1700000000".as_slice(), body].concat());
        let mut h = HeaderMap::new();
        h.insert("x-signature-timestamp", HeaderValue::from_static("1700000000"));
        h.insert(
            "x-signature-ed25519",
            HeaderValue::from_str(&hex::encode(sig.to_bytes())).unwrap(),
        );
        let now = 1_700_000_000;
        assert_eq!(verify(&key, &h, body, now), Ok(()));
        assert_eq!(verify(&key, &h, body, now + 300), Ok(()));
        assert_eq!(verify(&key, &h, body, now + 301), Err(VerifyError::Stale), "a replay");
        assert_eq!(verify(&key, &h, body, now - 301), Err(VerifyError::Stale));
        assert_eq!(verify(&key, &h, br#"{"type":2}"#, now), Err(VerifyError::Mismatch));
        h.insert("x-signature-timestamp", HeaderValue::from_static("1700000001"));
        assert_eq!(verify(&key, &h, body, now), Err(VerifyError::Mismatch));
        h.insert("x-signature-ed25519", HeaderValue::from_static("zz"));
        assert_eq!(verify(&key, &h, body, now), Err(VerifyError::Missing));
        assert!(public_key("abc").is_err());
    }
}
