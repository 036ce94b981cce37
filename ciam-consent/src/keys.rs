//! Ed25519 signing keys for anchors and receipts, their published JWK, and compact JWS.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciam_core::rng::SecureRandom;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::chain::sha256;
use crate::error::Error;

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410 section 7), followed by the 32-byte
/// seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An Ed25519 signing key (JWS `EdDSA`, RFC 8037). Its `Debug` output shows only the key id.
pub struct SigningKey {
    pkcs8: Zeroizing<Vec<u8>>,
    public: PublicJwk,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// The key whose 32-byte private seed is `seed` (RFC 8032 section 5.1.5; the JWK `d`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] when the seed is refused.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, Error> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| Error::InvalidKey)?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let mut pkcs8 = Zeroizing::new(Vec::with_capacity(48));
        pkcs8.extend_from_slice(&PKCS8_ED25519_PREFIX);
        pkcs8.extend_from_slice(seed);
        let kid = thumbprint(&x);
        Ok(Self {
            pkcs8,
            public: PublicJwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x,
                kid,
                alg: "EdDSA".into(),
                use_: "sig".into(),
            },
        })
    }

    /// A new random key.
    ///
    /// # Errors
    ///
    /// [`Error::Random`] when the random source fails.
    pub fn generate(rng: &dyn SecureRandom) -> Result<Self, Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill(&mut seed[..]).map_err(|_| Error::Random)?;
        Self::from_seed(&seed)
    }

    /// The public key to publish (for example in a JWKS); its `kid` is the RFC 7638
    /// thumbprint.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// Signs `claims` as a compact JWS with header `{"typ":typ,"alg":"EdDSA","kid":…}`.
    pub(crate) fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.public.kid.clone());
        let key = EncodingKey::from_ed_der(&self.pkcs8);
        jsonwebtoken::encode(&header, claims, &key).map_err(|_| Error::InvalidKey)
    }

    /// Signs raw bytes (the JWS signing input), returning the base64url signature.
    #[doc(hidden)]
    pub fn sign_raw(&self, message: &[u8]) -> Result<String, Error> {
        let key = EncodingKey::from_ed_der(&self.pkcs8);
        jsonwebtoken::crypto::sign(message, &key, Algorithm::EdDSA).map_err(|_| Error::InvalidKey)
    }
}

/// A published Ed25519 public key as a JWK (RFC 8037 section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url.
    pub x: String,
    /// The key id: the RFC 7638 SHA-256 thumbprint.
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

impl PublicJwk {
    /// Verifies a compact JWS of type `typ` signed by this key and returns its claims. Only
    /// `EdDSA` is accepted; the header's `kid`, when present, must be this key's.
    pub(crate) fn verify<T: DeserializeOwned>(&self, token: &str, typ: &str) -> Result<T, Error> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(Error::InvalidKey);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Error::BadSignature)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(typ) {
            return Err(Error::BadSignature);
        }
        if header.kid.as_deref().is_some_and(|k| k != self.kid) {
            return Err(Error::BadSignature);
        }
        let key = DecodingKey::from_ed_components(&self.x).map_err(|_| Error::InvalidKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        jsonwebtoken::decode::<T>(token, &key, &validation)
            .map(|d| d.claims)
            .map_err(|_| Error::BadSignature)
    }

    /// The RFC 7638 thumbprint of an Ed25519 public key `x` (base64url).
    pub fn thumbprint_of(x: &str) -> String {
        thumbprint(x)
    }
}

/// RFC 7638 section 3: SHA-256 over the required members in lexicographic order, no spaces
/// (for OKP keys `crv`, `kty`, `x`, per RFC 8037 appendix A.3), base64url.
fn thumbprint(x: &str) -> String {
    let json = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(sha256(json.as_bytes()))
}
