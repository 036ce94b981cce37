//! Sign in with Apple specifics: the ES256 client-secret JWT and the `user` form field.

use std::fmt;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{FederationError, Result};

/// Apple's audience for client-secret JWTs.
pub const APPLE_AUDIENCE: &str = "https://appleid.apple.com";

/// The key Apple issued to the team ("Sign in with Apple" private key, a `.p8` file), from
/// which a short-lived ES256 client secret is made for each code exchange.
#[derive(Clone)]
pub struct AppleClientSecret {
    team_id: String,
    key_id: String,
    pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for AppleClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppleClientSecret")
            .field("team_id", &self.team_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SecretClaims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    aud: &'a str,
    sub: &'a str,
}

impl AppleClientSecret {
    /// From the `.p8` file's PEM text (PKCS #8, P-256).
    pub fn from_pem(team_id: &str, key_id: &str, pem: &str) -> Result<Self> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| FederationError::Config("Apple key: not PEM".to_owned()))?;
        Self::from_pkcs8_der(team_id, key_id, der)
    }

    /// From PKCS #8 DER bytes (P-256).
    pub fn from_pkcs8_der(team_id: &str, key_id: &str, der: Vec<u8>) -> Result<Self> {
        let der = Zeroizing::new(der);
        // Refuse a key that is not an ECDSA P-256 PKCS #8 key now, not at the first sign-in.
        ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &der,
            &ring::rand::SystemRandom::new(),
        )
        .map_err(|_| FederationError::Config("Apple key: not a P-256 PKCS #8 key".to_owned()))?;
        if team_id.is_empty() || key_id.is_empty() {
            return Err(FederationError::Config(
                "Apple team id and key id are required".to_owned(),
            ));
        }
        Ok(Self {
            team_id: team_id.to_owned(),
            key_id: key_id.to_owned(),
            pkcs8: der,
        })
    }

    /// The client secret for `client_id` (the Services ID): an ES256 JWT with `kid` = key id,
    /// `iss` = team id, `sub` = client id, `aud` = Apple, valid five minutes from `now`.
    pub fn client_secret(&self, client_id: &str, now: i64) -> Result<String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = SecretClaims {
            iss: &self.team_id,
            iat: now,
            exp: now + 300,
            aud: APPLE_AUDIENCE,
            sub: client_id,
        };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(&self.pkcs8))
            .map_err(|e| FederationError::Config(format!("Apple client secret: {e}")))
    }
}

/// The `user` field Apple posts with the first authorization response only.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AppleUser {
    #[serde(default)]
    pub(crate) name: Option<AppleName>,
}

/// The name in Apple's `user` field.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AppleName {
    #[serde(rename = "firstName", default)]
    pub(crate) first_name: Option<String>,
    #[serde(rename = "lastName", default)]
    pub(crate) last_name: Option<String>,
}

/// Reads the name from Apple's `user` field; anything malformed is ignored (the field is not
/// signed, so it only ever fills the display name of a new account, never an identifier).
pub(crate) fn parse_user_field(raw: &str) -> Option<(Option<String>, Option<String>)> {
    if raw.len() > 4096 {
        return None;
    }
    let user: AppleUser = serde_json::from_str(raw).ok()?;
    let name = user.name?;
    let clean = |s: Option<String>| {
        s.map(|v| v.trim().chars().take(200).collect::<String>())
            .filter(|v| !v.is_empty())
    };
    Some((clean(name.first_name), clean(name.last_name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};
    use ring::signature::KeyPair as _;

    #[test]
    fn client_secret_is_an_es256_jwt_apple_accepts() {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .unwrap();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let secret = AppleClientSecret::from_pem("TEAM123456", "KEY1234567", &pem).unwrap();
        assert!(!format!("{secret:?}").contains(&pem[30..50]));
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let jwt = secret.client_secret("com.example.web", now).unwrap();
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("KEY1234567"));
        // Verify with the public key (uncompressed SEC1 point 04||x||y).
        let public = pair.public_key().as_ref();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let key = DecodingKey::from_ec_components(
            &b64.encode(&public[1..33]),
            &b64.encode(&public[33..65]),
        )
        .unwrap();
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[APPLE_AUDIENCE]);
        v.set_issuer(&["TEAM123456"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(&jwt, &key, &v).unwrap();
        assert_eq!(data.claims["sub"], "com.example.web");
        assert_eq!(
            data.claims["exp"].as_i64().unwrap() - data.claims["iat"].as_i64().unwrap(),
            300
        );
    }

    #[test]
    fn refuses_keys_that_are_not_p256() {
        assert!(
            AppleClientSecret::from_pem(
                "T",
                "K",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            )
            .is_err()
        );
        assert!(AppleClientSecret::from_pem("T", "K", "not pem at all %%%").is_err());
    }

    #[test]
    fn user_field_gives_the_name_once_and_ignores_junk() {
        let raw = r#"{"name":{"firstName":" Ada ","lastName":"Lovelace"},"email":"ada@privaterelay.appleid.com"}"#;
        assert_eq!(
            parse_user_field(raw),
            Some((Some("Ada".into()), Some("Lovelace".into())))
        );
        assert_eq!(parse_user_field("{not json"), None);
        assert_eq!(parse_user_field(r#"{"email":"x@y"}"#), None);
    }
}
