//! Signing keys for access tokens: Ed25519 (`EdDSA`, the default) or P-256 (`ES256`), their
//! RFC 7638 thumbprints (the `kid`), the JWKS document, and the rotating key set.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, EncodingKey};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::Serialize;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The JWS algorithm of a signing key. The key decides the algorithm: a token is only ever
/// verified with the algorithm of the key its `kid` names, whatever its header says
/// (RFC 8725 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TokenAlgorithm {
    /// Ed25519 signatures (`EdDSA`, RFC 8037). The default: small keys, deterministic
    /// signatures, fast verification.
    #[default]
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (`ES256`, RFC 7518 §3.4), for verifiers without Ed25519.
    Es256,
}

impl TokenAlgorithm {
    /// The JOSE `alg` name (`EdDSA`, `ES256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

/// A signing key could not be read or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are not an unencrypted PKCS#8 Ed25519 or P-256 private key.
    #[error("not a PKCS#8 Ed25519 or P-256 private key")]
    Unsupported,
    /// The text is neither PEM (`-----BEGIN PRIVATE KEY-----`) nor base64 of DER.
    #[error("the key text is neither PEM nor base64 of PKCS#8 DER")]
    Encoding,
    /// The random source failed while generating a key.
    #[error("key generation failed")]
    Generation,
    /// The key is the current signing key, which cannot be retired (rotate first).
    #[error("the current signing key cannot be retired; rotate first")]
    CurrentKey,
    /// No published key has this id.
    #[error("no such key")]
    UnknownKey,
    /// Tokens are not configured ([`CiamBuilder::tokens`](crate::CiamBuilder::tokens)).
    #[error("tokens are not configured")]
    NotConfigured,
}

/// A private signing key with its public half and key id.
///
/// The `kid` is the key's RFC 7638 JWK thumbprint (SHA-256, base64url), so it is stable across
/// processes that load the same key and says nothing but which key signed. `Debug` shows only
/// the algorithm and the `kid`.
///
/// The private key lives in jsonwebtoken's [`EncodingKey`], which does not zeroize its copy on
/// drop; the PKCS#8 buffers this type handles itself are zeroized.
pub struct SigningKey {
    alg: TokenAlgorithm,
    public: Vec<u8>,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg.as_str())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key from the operating system's CSPRNG.
    pub fn generate(alg: TokenAlgorithm) -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = match alg {
            TokenAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng),
            TokenAlgorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
        }
        .map_err(|_| KeyError::Generation)?;
        let der = Zeroizing::new(pkcs8.as_ref().to_vec());
        Self::from_pkcs8_der(&der)
    }

    /// Reads an unencrypted PKCS#8 private key (DER): Ed25519 (v1 or v2, as made by
    /// `openssl genpkey -algorithm ed25519`) or P-256 (`openssl genpkey -algorithm EC
    /// -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let public = pair.public_key().as_ref().to_vec();
            return Ok(Self::assemble(
                TokenAlgorithm::EdDsa,
                public.clone(),
                EncodingKey::from_ed_der(der),
                DecodingKey::from_ed_der(&public),
            ));
        }
        let rng = ring::rand::SystemRandom::new();
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng) {
            // The uncompressed SEC1 point, 0x04 || x || y: what the ES256 verifier takes.
            let public = pair.public_key().as_ref().to_vec();
            return Ok(Self::assemble(
                TokenAlgorithm::Es256,
                public.clone(),
                EncodingKey::from_ec_der(der),
                DecodingKey::from_ec_der(&public),
            ));
        }
        Err(KeyError::Unsupported)
    }

    /// Reads a PKCS#8 private key from text: PEM (`-----BEGIN PRIVATE KEY-----`), or the DER
    /// in base64 (standard or URL-safe, padded or not), as kept in an environment variable.
    pub fn from_pkcs8_text(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let body: String = match text.strip_prefix("-----BEGIN PRIVATE KEY-----") {
            Some(rest) => rest
                .split("-----END PRIVATE KEY-----")
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect(),
            None => text.chars().filter(|c| !c.is_whitespace()).collect(),
        };
        let body = Zeroizing::new(body);
        let der = Zeroizing::new(
            STANDARD
                .decode(body.as_bytes())
                .or_else(|_| URL_SAFE_NO_PAD.decode(body.trim_end_matches('=').as_bytes()))
                .map_err(|_| KeyError::Encoding)?,
        );
        Self::from_pkcs8_der(&der)
    }

    fn assemble(
        alg: TokenAlgorithm,
        public: Vec<u8>,
        encoding: EncodingKey,
        decoding: DecodingKey,
    ) -> Self {
        let kid = thumbprint(&jwk_members(alg, &public));
        Self {
            alg,
            public,
            kid,
            encoding,
            decoding,
        }
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> TokenAlgorithm {
        self.alg
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK with `kid`, `alg` and `use: "sig"` (RFC 7517).
    pub fn public_jwk(&self) -> Jwk {
        let (crv, x, y) = match jwk_members(self.alg, &self.public) {
            JwkMembers::Okp { x } => ("Ed25519", x, None),
            JwkMembers::Ec { x, y } => ("P-256", x, Some(y)),
        };
        Jwk {
            kty: match self.alg {
                TokenAlgorithm::EdDsa => "OKP",
                TokenAlgorithm::Es256 => "EC",
            },
            crv,
            x,
            y,
            kid: self.kid.clone(),
            alg: self.alg.as_str(),
            key_use: "sig",
        }
    }

    /// Signs a JWS signing input (`BASE64URL(header) || '.' || BASE64URL(payload)`, RFC 7515
    /// §5.1) and returns the base64url signature, through jsonwebtoken.
    pub fn sign_jws_input(
        &self,
        signing_input: &[u8],
    ) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::crypto::sign(signing_input, &self.encoding, self.alg.jwt())
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// The required public members of a JWK, as RFC 7638 §3.2 lists them.
enum JwkMembers {
    Okp { x: String },
    Ec { x: String, y: String },
}

fn jwk_members(alg: TokenAlgorithm, public: &[u8]) -> JwkMembers {
    match alg {
        TokenAlgorithm::EdDsa => JwkMembers::Okp {
            x: URL_SAFE_NO_PAD.encode(public),
        },
        TokenAlgorithm::Es256 => {
            // Uncompressed point: 0x04, 32 bytes of x, 32 bytes of y.
            let coords = public.get(1..).unwrap_or_default();
            let (x, y) = coords.split_at(coords.len() / 2);
            JwkMembers::Ec {
                x: URL_SAFE_NO_PAD.encode(x),
                y: URL_SAFE_NO_PAD.encode(y),
            }
        }
    }
}

/// The RFC 7638 §3 thumbprint: SHA-256 over the required members in lexicographic order, no
/// whitespace, base64url without padding. The member values are base64url text and curve
/// names, which need no JSON escaping.
fn thumbprint(members: &JwkMembers) -> String {
    let canonical = match members {
        JwkMembers::Okp { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        JwkMembers::Ec { x, y } => {
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)
        }
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// One public key of the JWKS document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Jwk {
    /// `OKP` (Ed25519) or `EC` (P-256).
    pub kty: &'static str,
    /// `Ed25519` or `P-256`.
    pub crv: &'static str,
    /// The public key (Ed25519) or its x coordinate (P-256), base64url.
    pub x: String,
    /// The y coordinate (P-256 only), base64url.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The key id (RFC 7638 thumbprint).
    pub kid: String,
    /// The algorithm the key is for (`EdDSA`, `ES256`).
    pub alg: &'static str,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: &'static str,
}

/// The JWKS document (RFC 7517 §5): every key a verifier should accept now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Jwks {
    /// The current signing key first, then the previous keys still accepted.
    pub keys: Vec<Jwk>,
}

/// The current signing key and the previous ones still accepted.
#[derive(Debug)]
pub(crate) struct KeySet {
    current: Arc<SigningKey>,
    /// Previous keys and when they stop being accepted (`None`: until removed by
    /// configuration or [`KeySet::retire`]).
    previous: Vec<(Arc<SigningKey>, Option<OffsetDateTime>)>,
}

impl KeySet {
    pub(crate) fn new(current: SigningKey, previous: Vec<SigningKey>) -> Self {
        let current_kid = current.kid.clone();
        Self {
            current: Arc::new(current),
            previous: previous
                .into_iter()
                .filter(|k| k.kid != current_kid)
                .map(|k| (Arc::new(k), None))
                .collect(),
        }
    }

    pub(crate) fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.current)
    }

    /// The key named `kid` if it is accepted at `now`.
    pub(crate) fn find(&self, kid: &str, now: OffsetDateTime) -> Option<Arc<SigningKey>> {
        if self.current.kid == kid {
            return Some(Arc::clone(&self.current));
        }
        self.previous
            .iter()
            .find(|(k, until)| k.kid == kid && until.is_none_or(|t| now < t))
            .map(|(k, _)| Arc::clone(k))
    }

    /// Makes `next` the signing key; the old one stays accepted (and published) until
    /// `retire_at`. Keys past their time are dropped.
    pub(crate) fn rotate(
        &mut self,
        next: SigningKey,
        now: OffsetDateTime,
        retire_at: OffsetDateTime,
    ) {
        let old = std::mem::replace(&mut self.current, Arc::new(next));
        self.previous.retain(|(k, until)| {
            k.kid != self.current.kid && k.kid != old.kid && until.is_none_or(|t| now < t)
        });
        if old.kid != self.current.kid {
            self.previous.insert(0, (old, Some(retire_at)));
        }
    }

    /// Stops accepting a previous key now (for example a compromised one).
    pub(crate) fn retire(&mut self, kid: &str) -> Result<(), KeyError> {
        if self.current.kid == kid {
            return Err(KeyError::CurrentKey);
        }
        let before = self.previous.len();
        self.previous.retain(|(k, _)| k.kid != kid);
        if self.previous.len() == before {
            return Err(KeyError::UnknownKey);
        }
        Ok(())
    }

    /// The JWKS document at `now`.
    pub(crate) fn jwks(&self, now: OffsetDateTime) -> Jwks {
        let mut keys = vec![self.current.public_jwk()];
        keys.extend(
            self.previous
                .iter()
                .filter(|(_, until)| until.is_none_or(|t| now < t))
                .map(|(k, _)| k.public_jwk()),
        );
        Jwks { keys }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC 8037 Appendix A.1 private key `d` (the Ed25519 seed) as PKCS#8 v1 DER: the fixed
    /// RFC 8410 §7 prefix for Ed25519 followed by the 32-byte seed.
    fn rfc8037_key() -> SigningKey {
        let d = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&d);
        SigningKey::from_pkcs8_der(&der).unwrap()
    }

    #[test]
    fn rfc8037_key_jwk_and_thumbprint() {
        // RFC 8037 A.2 (public key x) and A.3 (its RFC 7638 thumbprint).
        let key = rfc8037_key();
        let jwk = key.public_jwk();
        assert_eq!(jwk.x, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        assert_eq!((jwk.kty, jwk.crv, jwk.alg), ("OKP", "Ed25519", "EdDSA"));
    }

    #[test]
    fn rfc8037_signature_is_reproduced() {
        // RFC 8037 A.4: Ed25519 is deterministic, so signing the example's JWS signing input
        // with the A.1 key reproduces the published signature exactly.
        let key = rfc8037_key();
        let input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        assert_eq!(
            key.sign_jws_input(input).unwrap(),
            "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
        );
    }

    #[test]
    fn rfc7638_ec_thumbprint() {
        // RFC 7517 A.1's EC public key (kid "1"); its RFC 7638 thumbprint as recomputed in
        // ../shared/vectors/jwt/rfc-jws-examples.json (keys.rfc7638_thumbprints_sha256).
        let members = JwkMembers::Ec {
            x: "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4".into(),
            y: "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM".into(),
        };
        assert_eq!(
            thumbprint(&members),
            "cn-I_WNMClehiVp51i_0VpOENW1upEerA8sEam5hn-s"
        );
    }

    #[test]
    fn keys_generate_parse_and_stay_out_of_debug() {
        for alg in [TokenAlgorithm::EdDsa, TokenAlgorithm::Es256] {
            let key = SigningKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.kid().len(), 43);
            let shown = format!("{key:?}");
            assert!(shown.contains(key.kid()) && !shown.contains("content"));
            let jwk = key.public_jwk();
            assert_eq!(jwk.y.is_some(), alg == TokenAlgorithm::Es256);
        }
        assert_eq!(
            SigningKey::from_pkcs8_der(b"not a key").unwrap_err(),
            KeyError::Unsupported
        );
        assert_eq!(
            SigningKey::from_pkcs8_text("%%%").unwrap_err(),
            KeyError::Encoding
        );
    }

    #[test]
    fn pem_and_base64_text_forms() {
        let rng = ring::rand::SystemRandom::new();
        let der = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let b64 = STANDARD.encode(der.as_ref());
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        let a = SigningKey::from_pkcs8_text(&pem).unwrap();
        let b = SigningKey::from_pkcs8_text(&URL_SAFE_NO_PAD.encode(der.as_ref())).unwrap();
        assert_eq!(a.kid(), b.kid());
    }
}
