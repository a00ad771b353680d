//! Tokens: verifying the JWTs clients present, and minting them for
//! operators (`rookery token`).
//!
//! A *connection token* names the user (`sub`, optional `name`), may expire
//! (`exp`), and lists channel patterns the user may use in private
//! namespaces (`channels`: `ns:name`, `ns:*` or `*`). A *subscription token*
//! grants one private channel (`channel`) to one user (`sub`). Only the
//! configured algorithm is accepted, so `alg: none` and algorithm-confusion
//! tokens fail like any forgery.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rookery_common::{ChannelName, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionClaims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<String>,
    /// Present only in subscription tokens; a connection token with it is
    /// refused, so the two kinds cannot stand in for each other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionClaims {
    pub sub: String,
    pub channel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this server is not configured for tokens (set --jwt-secret or --jwt-public-key)")]
    NotConfigured,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
}

/// How tokens are checked.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Fails only for an empty secret.
    pub fn hs256(secret: &[u8]) -> Result<Self, String> {
        let key =
            DecodingKey::from_secret(secret).map_err(|error| format!("bad secret: {error}"))?;
        Ok(Self {
            key,
            algorithms: vec![Algorithm::HS256],
        })
    }

    /// RS256 for an RSA public key, ES256 for a P-256 one (PEM).
    pub fn from_public_key_pem(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(Self {
                key,
                algorithms: vec![Algorithm::RS256],
            });
        }
        DecodingKey::from_ec_pem(pem)
            .map(|key| Self {
                key,
                algorithms: vec![Algorithm::ES256],
            })
            .map_err(|error| format!("not an RSA or EC public key in PEM: {error}"))
    }

    pub fn load_public_key(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        Self::from_public_key_pem(&pem)
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, AuthError> {
        let mut validation = Validation::new(self.algorithms[0]);
        validation.algorithms.clone_from(&self.algorithms);
        // `exp` is optional (long-lived service tokens), but checked when
        // present, to the second.
        validation.required_spec_claims.clear();
        validation.required_spec_claims.insert("sub".into());
        validation.leeway = 0;
        validation.validate_exp = true;
        jsonwebtoken::decode::<T>(token, &self.key, &validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                kind => AuthError::Invalid(describe(kind)),
            })
    }

    pub fn verify_connection(&self, token: &str) -> Result<ConnectionClaims, AuthError> {
        let claims: ConnectionClaims = self.decode(token)?;
        if claims.channel.is_some() {
            return Err(AuthError::Invalid(
                "a subscription token cannot open a connection".into(),
            ));
        }
        if claims.sub.is_empty()
            || claims.sub.len() > 128
            || claims.sub.chars().any(char::is_control)
        {
            return Err(AuthError::Invalid(
                "sub must be 1 to 128 printable characters".into(),
            ));
        }
        // Anonymous users' ids start with `anon-`; a token must not be able
        // to pass for one of them.
        if claims.sub.starts_with("anon-") {
            return Err(AuthError::Invalid("sub must not start with anon-".into()));
        }
        Ok(claims)
    }

    /// Checks a subscription token for `user` on `channel`.
    pub fn verify_subscription(
        &self,
        token: &str,
        user: &UserId,
        channel: &ChannelName,
    ) -> Result<(), AuthError> {
        let claims: SubscriptionClaims = self.decode(token)?;
        if claims.sub != user.0 {
            return Err(AuthError::Invalid("the token is for another user".into()));
        }
        if claims.channel != channel.as_str() {
            return Err(AuthError::Invalid(
                "the token is for another channel".into(),
            ));
        }
        Ok(())
    }
}

/// A human reason that never echoes the token.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "algorithm not accepted".into()
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "malformed token".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        ErrorKind::ImmatureSignature => "token not valid yet".into(),
        _ => "token rejected".into(),
    }
}

/// Channel patterns from a connection token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    pub fn new(patterns: Vec<String>) -> Self {
        Self(patterns)
    }

    /// `*` allows everything, `ns:*` a namespace, anything else one channel.
    pub fn allows(&self, channel: &ChannelName) -> bool {
        self.0.iter().any(|pattern| {
            pattern == "*"
                || pattern == channel.as_str()
                || pattern
                    .strip_suffix(":*")
                    .is_some_and(|namespace| namespace == channel.namespace())
        })
    }
}

/// Mints tokens (for `rookery token` and tests).
pub struct Minter {
    key: EncodingKey,
    algorithm: Algorithm,
}

impl Minter {
    /// Fails only for an empty secret.
    pub fn hs256(secret: &[u8]) -> Result<Self, String> {
        let key =
            EncodingKey::from_secret(secret).map_err(|error| format!("bad secret: {error}"))?;
        Ok(Self {
            key,
            algorithm: Algorithm::HS256,
        })
    }

    /// RS256 for an RSA private key, ES256 for a P-256 one (PEM).
    pub fn from_private_key_pem(pem: &[u8]) -> Result<Self, String> {
        if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            return Ok(Self {
                key,
                algorithm: Algorithm::RS256,
            });
        }
        EncodingKey::from_ec_pem(pem)
            .map(|key| Self {
                key,
                algorithm: Algorithm::ES256,
            })
            .map_err(|error| format!("not an RSA or EC private key in PEM: {error}"))
    }

    pub fn mint<T: Serialize>(&self, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(self.algorithm), claims, &self.key)
            .expect("claims serialize")
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: Option<u64>) -> ConnectionClaims {
        ConnectionClaims {
            sub: "alice".into(),
            name: Some("Alice".into()),
            exp,
            channels: vec!["team:*".into()],
            channel: None,
        }
    }

    #[test]
    fn a_minted_token_verifies_and_a_forged_one_does_not() {
        let minter = Minter::hs256(b"secret").unwrap();
        let verifier = Verifier::hs256(b"secret").unwrap();
        let token = minter.mint(&claims(Some(unix_now() + 60)));
        assert_eq!(verifier.verify_connection(&token).unwrap().sub, "alice");

        let wrong_key = Minter::hs256(b"other").unwrap().mint(&claims(None));
        assert!(matches!(
            verifier.verify_connection(&wrong_key),
            Err(AuthError::Invalid(_))
        ));
        let expired = minter.mint(&claims(Some(unix_now() - 1)));
        assert_eq!(
            verifier.verify_connection(&expired),
            Err(AuthError::Expired)
        );
        assert!(verifier.verify_connection("not.a.token").is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        use base64_engine::encode;
        let header = encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = encode(br#"{"sub":"mallory"}"#);
        let token = format!("{header}.{payload}.");
        assert!(matches!(
            Verifier::hs256(b"secret")
                .unwrap()
                .verify_connection(&token),
            Err(AuthError::Invalid(_))
        ));
    }

    /// Just enough base64url for building hostile tokens by hand.
    mod base64_engine {
        pub fn encode(bytes: &[u8]) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let b = [
                    chunk[0],
                    *chunk.get(1).unwrap_or(&0),
                    *chunk.get(2).unwrap_or(&0),
                ];
                let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }

    #[test]
    fn subscription_tokens_are_bound_to_user_and_channel() {
        let minter = Minter::hs256(b"secret").unwrap();
        let verifier = Verifier::hs256(b"secret").unwrap();
        let channel = ChannelName::parse("team:red").unwrap();
        let token = minter.mint(&SubscriptionClaims {
            sub: "alice".into(),
            channel: "team:red".into(),
            exp: None,
        });
        assert!(
            verifier
                .verify_subscription(&token, &UserId("alice".into()), &channel)
                .is_ok()
        );
        assert!(
            verifier
                .verify_subscription(&token, &UserId("bob".into()), &channel)
                .is_err()
        );
        let other = ChannelName::parse("team:blue").unwrap();
        assert!(
            verifier
                .verify_subscription(&token, &UserId("alice".into()), &other)
                .is_err()
        );
        assert!(
            verifier.verify_connection(&token).is_err(),
            "not a connection token"
        );
    }

    #[test]
    fn capabilities_match_exact_namespace_and_all() {
        let caps = Capabilities::new(vec!["team:*".into(), "ops:pager".into()]);
        let check = |name: &str| caps.allows(&ChannelName::parse(name).unwrap());
        assert!(check("team:red"));
        assert!(check("ops:pager"));
        assert!(!check("ops:other"));
        assert!(!check("teams:red"));
        assert!(Capabilities::new(vec!["*".into()]).allows(&ChannelName::parse("x:y").unwrap()));
    }
}
