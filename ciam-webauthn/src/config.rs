//! Relying-party configuration.

use crate::Error;

/// A COSE signature algorithm supported by this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum CoseAlgorithm {
    /// ECDSA with P-256 and SHA-256 (COSE -7).
    Es256,
    /// ECDSA with P-384 and SHA-384 (COSE -35). Not in the default list: enable
    /// it with [`RelyingPartyBuilder::algorithms`].
    Es384,
    /// ECDSA with P-521 and SHA-512 (COSE -36), verified with RustCrypto's `p521`
    /// (ring has no P-521). Not in the default list: enable it with
    /// [`RelyingPartyBuilder::algorithms`].
    Es512,
    /// EdDSA with Ed25519 (COSE -8).
    EdDsa,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (COSE -257), modulus of 2048 to 8192 bits.
    Rs256,
}

impl CoseAlgorithm {
    /// The COSE algorithm identifier.
    pub fn cose_id(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::Es384 => -35,
            Self::Es512 => -36,
            Self::EdDsa => -8,
            Self::Rs256 => -257,
        }
    }

    /// Maps a COSE algorithm identifier to a supported algorithm.
    pub fn from_cose_id(id: i64) -> Option<Self> {
        match id {
            -7 => Some(Self::Es256),
            -35 => Some(Self::Es384),
            -36 => Some(Self::Es512),
            -8 => Some(Self::EdDsa),
            -257 => Some(Self::Rs256),
            _ => None,
        }
    }
}

/// User-verification requirement of the relying party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserVerificationPolicy {
    /// The UV flag must be set.
    Required,
    /// UV is requested but not enforced.
    #[default]
    Preferred,
    /// UV is not requested (and not enforced).
    Discouraged,
}

/// Whether ceremonies run inside cross-origin iframes are accepted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CrossOriginPolicy {
    /// Refuse `crossOrigin: true` and any `topOrigin` (default).
    #[default]
    Deny,
    /// Accept cross-origin use when framed by one of `top_origins`.
    Allow {
        /// Exact top-level origins allowed to frame the RP.
        top_origins: Vec<String>,
        /// Accept `crossOrigin: true` without `topOrigin` (older browsers do not send it).
        allow_missing_top_origin: bool,
    },
}

/// What to do when the signature counter did not increase (possible clone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterPolicy {
    /// Refuse the assertion with [`Error::CounterRegression`] (default).
    #[default]
    Refuse,
    /// Accept, but set [`crate::AuthenticationResult::counter_regression`].
    Flag,
}

/// Attestation trust policy (SECURITY-CHECKLIST WA-7.1, ASVS 6.7.1).
///
/// Trust anchors come from the integrator's configuration only, never from the
/// client. Certificates are given as DER bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AttestationTrust {
    /// Accept any well-formed attestation (default). `packed` x5c, `fido-u2f`,
    /// `apple`, `android-key` and `tpm` statements are still verified with the
    /// leaf certificate, but the chain is
    /// not validated: the result is [`crate::AttestationType::BasicUnverified`].
    /// `none` and self attestation are accepted as such.
    #[default]
    Any,
    /// The `x5c` chain (leaf, then the intermediates from `attStmt`) must verify
    /// to one of `anchors` at the verification time (see
    /// [`RelyingParty::verify_registration_at`]); the result is
    /// [`crate::AttestationType::Basic`]. `none` and self attestation are
    /// refused with [`Error::UntrustedAttestation`].
    Required {
        /// Trust-anchor certificates (DER), e.g. vendor attestation roots.
        anchors: Vec<Vec<u8>>,
    },
}

/// Which Android keystore authorization lists must vouch for the key of an
/// `android-key` attestation (L3 §8.4, verification procedure): its `origin`
/// must be `KM_ORIGIN_GENERATED` (made inside the keystore, never imported)
/// and its `purpose` must include `KM_PURPOSE_SIGN`.
///
/// `allApplications` is refused in either list under every policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AndroidKeyAuthorization {
    /// Both values must be stated in `teeEnforced`: L3's choice "if the RP
    /// wants to accept only keys from a trusted execution environment".
    /// Software-only keystores are refused. Pick this when the attestation is
    /// meant to prove a hardware-bound key (for example before relying on an
    /// AAL3 passkey from Android).
    TeeEnforced,
    /// L3's other choice, the union of `teeEnforced` and `softwareEnforced`:
    /// both values must be stated in one of the lists, and every stated
    /// `origin` must be `KM_ORIGIN_GENERATED`.
    Union,
    /// The default: as [`Union`](Self::Union), except that a value neither
    /// list states is not held against the key. A stated `origin` other than
    /// `KM_ORIGIN_GENERATED`, or a stated `purpose` set without
    /// `KM_PURPOSE_SIGN`, is still refused.
    ///
    /// The W3C Level 3 test vector `android-key` (ES256) has empty
    /// authorization lists, and the specification publishes it as valid; this
    /// policy accepts it. Real Android keystores state both values, so with
    /// Google's attestation roots as [`AttestationTrust::Required`] anchors
    /// this policy and [`Union`](Self::Union) accept the same devices.
    #[default]
    UnionIfStated,
}

/// Parsed form of [`AttestationTrust`] kept in a [`RelyingParty`].
#[derive(Debug, Clone)]
pub(crate) enum TrustPolicy {
    Any,
    Required(Vec<(Vec<u8>, rustls_pki_types::TrustAnchor<'static>)>),
}

/// Validated relying-party configuration. Build it with [`RelyingParty::builder`].
#[derive(Debug, Clone)]
pub struct RelyingParty {
    pub(crate) rp_id: String,
    pub(crate) name: String,
    pub(crate) rp_id_hash: [u8; 32],
    pub(crate) origins: Vec<String>,
    pub(crate) algorithms: Vec<CoseAlgorithm>,
    pub(crate) user_verification: UserVerificationPolicy,
    pub(crate) cross_origin: CrossOriginPolicy,
    pub(crate) counter_policy: CounterPolicy,
    pub(crate) attestation_trust: TrustPolicy,
    pub(crate) android_key: AndroidKeyAuthorization,
}

impl RelyingParty {
    /// Which Android authorization lists vouch for an `android-key` attestation.
    pub fn android_key_authorization(&self) -> AndroidKeyAuthorization {
        self.android_key
    }

    /// Starts a builder for the given RP ID (a registrable domain, e.g. `example.org`).
    pub fn builder(rp_id: impl Into<String>) -> RelyingPartyBuilder {
        RelyingPartyBuilder {
            rp_id: rp_id.into(),
            name: None,
            origins: Vec::new(),
            algorithms: vec![
                CoseAlgorithm::Es256,
                CoseAlgorithm::EdDsa,
                CoseAlgorithm::Rs256,
            ],
            user_verification: UserVerificationPolicy::default(),
            cross_origin: CrossOriginPolicy::default(),
            counter_policy: CounterPolicy::default(),
            attestation_trust: AttestationTrust::default(),
            android_key: AndroidKeyAuthorization::default(),
        }
    }

    /// The RP ID.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The human-palatable RP name sent as `rp.name` in the creation options
    /// (default: the RP ID).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The allowed origins.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// The allowed algorithms, in preference order (use them for `pubKeyCredParams`).
    pub fn algorithms(&self) -> &[CoseAlgorithm] {
        &self.algorithms
    }

    /// The user-verification policy.
    pub fn user_verification(&self) -> UserVerificationPolicy {
        self.user_verification
    }
}

/// Builder for [`RelyingParty`]; [`RelyingPartyBuilder::build`] validates it.
#[derive(Debug, Clone)]
#[must_use]
pub struct RelyingPartyBuilder {
    rp_id: String,
    name: Option<String>,
    origins: Vec<String>,
    algorithms: Vec<CoseAlgorithm>,
    user_verification: UserVerificationPolicy,
    cross_origin: CrossOriginPolicy,
    counter_policy: CounterPolicy,
    attestation_trust: AttestationTrust,
    android_key: AndroidKeyAuthorization,
}

impl RelyingPartyBuilder {
    /// Sets the human-palatable RP name sent as `rp.name` in the creation
    /// options, e.g. `"Example Shop"` (default: the RP ID).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds an allowed origin, compared exactly with `clientDataJSON.origin`
    /// (e.g. `https://example.org`, `https://login.example.org:8443`,
    /// `android:apk-key-hash:...`, `ios:bundle-id:...`).
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origins.push(origin.into());
        self
    }

    /// Replaces the allowed algorithms (default: ES256, EdDSA, RS256; ES384 and
    /// ES512 are supported but must be listed here to be accepted and offered).
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = CoseAlgorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Sets the user-verification policy (default: preferred).
    pub fn user_verification(mut self, policy: UserVerificationPolicy) -> Self {
        self.user_verification = policy;
        self
    }

    /// Sets the cross-origin policy (default: deny).
    pub fn cross_origin(mut self, policy: CrossOriginPolicy) -> Self {
        self.cross_origin = policy;
        self
    }

    /// Sets the counter-regression policy (default: refuse).
    pub fn counter_policy(mut self, policy: CounterPolicy) -> Self {
        self.counter_policy = policy;
        self
    }

    /// Sets the attestation trust policy (default: [`AttestationTrust::Any`]).
    pub fn attestation_trust(mut self, policy: AttestationTrust) -> Self {
        self.attestation_trust = policy;
        self
    }

    /// Sets which Android authorization lists must vouch for an `android-key`
    /// attestation (default: [`AndroidKeyAuthorization::UnionIfStated`]).
    pub fn android_key_authorization(mut self, policy: AndroidKeyAuthorization) -> Self {
        self.android_key = policy;
        self
    }

    /// Validates and builds the configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] if the RP ID is empty or not lower-case ASCII, no
    /// origin is given, an origin is empty or ends with `/`, no algorithm is allowed,
    /// an allowed top origin is empty, or [`AttestationTrust::Required`] has no
    /// anchor or an anchor that is not a parseable X.509 certificate.
    pub fn build(self) -> Result<RelyingParty, Error> {
        let id = &self.rp_id;
        if id.is_empty()
            || id.len() > 253
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            || id.starts_with('.')
            || id.ends_with('.')
        {
            return Err(Error::InvalidConfig(
                "rp_id must be a lower-case ASCII domain (use punycode)",
            ));
        }
        if self.origins.is_empty() {
            return Err(Error::InvalidConfig("at least one origin is required"));
        }
        for origin in &self.origins {
            if origin.is_empty() || origin.ends_with('/') || !origin.contains(':') {
                return Err(Error::InvalidConfig(
                    "origins must be serialized origins like https://example.org (no trailing slash)",
                ));
            }
        }
        if self.algorithms.is_empty() {
            return Err(Error::InvalidConfig("at least one algorithm is required"));
        }
        if let CrossOriginPolicy::Allow { top_origins, .. } = &self.cross_origin
            && top_origins.iter().any(|o| o.is_empty())
        {
            return Err(Error::InvalidConfig("empty top origin"));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, self.rp_id.as_bytes());
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(digest.as_ref());
        let mut algorithms = Vec::with_capacity(self.algorithms.len());
        for alg in self.algorithms {
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        let attestation_trust = match self.attestation_trust {
            AttestationTrust::Any => TrustPolicy::Any,
            AttestationTrust::Required { anchors } => {
                if anchors.is_empty() {
                    return Err(Error::InvalidConfig(
                        "attestation trust required but no anchor given",
                    ));
                }
                let mut parsed = Vec::with_capacity(anchors.len());
                for der in anchors {
                    let cert = rustls_pki_types::CertificateDer::from(der.as_slice());
                    let anchor = webpki::anchor_from_trusted_cert(&cert)
                        .map_err(|_| {
                            Error::InvalidConfig("attestation trust anchor is not a certificate")
                        })?
                        .to_owned();
                    parsed.push((der, anchor));
                }
                TrustPolicy::Required(parsed)
            }
        };
        Ok(RelyingParty {
            name: self.name.unwrap_or_else(|| self.rp_id.clone()),
            rp_id: self.rp_id,
            rp_id_hash,
            origins: self.origins,
            algorithms,
            user_verification: self.user_verification,
            cross_origin: self.cross_origin,
            counter_policy: self.counter_policy,
            attestation_trust,
            android_key: self.android_key,
        })
    }
}
