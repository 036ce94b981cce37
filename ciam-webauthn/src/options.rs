//! Ceremony options sent to the browser: the WebAuthn L3 JSON forms
//! `PublicKeyCredentialCreationOptionsJSON` (§5.4, for
//! `PublicKeyCredential.parseCreationOptionsFromJSON()` /
//! `navigator.credentials.create()`) and `PublicKeyCredentialRequestOptionsJSON`
//! (§5.5, for `parseRequestOptionsFromJSON()` / `navigator.credentials.get()`).
//!
//! Binary members are unpadded base64url strings (padding is tolerated when
//! parsing); member names are camelCase as in the L3 IDL.

use serde::{Deserialize, Serialize};

use crate::config::{RelyingParty, TrustPolicy, UserVerificationPolicy};
use crate::types::Challenge;

/// The only `PublicKeyCredentialType` defined by L3.
const PUBLIC_KEY: &str = "public-key";

/// Serde helpers: `Vec<u8>` as an unpadded base64url string.
mod b64 {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::types::base64url_encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        crate::types::b64_decode(&text, "base64url").map_err(serde::de::Error::custom)
    }
}

/// The user account a credential is created for
/// (L3 `PublicKeyCredentialUserEntityJSON`, the `user` member of the creation options).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEntity {
    /// `id`: the user handle, 1 to 64 opaque bytes that identify the account and
    /// carry no personal information (base64url in JSON). It is returned as
    /// `userHandle` by discoverable sign-ins; keep it as
    /// [`crate::RegistrationState::user_handle`].
    #[serde(with = "b64")]
    pub id: Vec<u8>,
    /// `name`: a human-palatable account identifier, e.g. an e-mail address or
    /// username, shown by the authenticator to tell accounts apart.
    pub name: String,
    /// `displayName`: a human-palatable name for the account, e.g. the person's name.
    pub display_name: String,
}

/// A credential the RP already knows (L3 `PublicKeyCredentialDescriptorJSON`):
/// an entry of `excludeCredentials` or `allowCredentials`. Its `type` member is
/// always `"public-key"` in JSON; any other `type` is refused when parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "DescriptorWire", try_from = "DescriptorWire")]
pub struct CredentialDescriptor {
    /// `id`: the credential ID (base64url in JSON).
    pub id: Vec<u8>,
    /// `transports`: transport hints reported at registration
    /// ([`crate::CredentialRecord::transports`]), e.g. `"internal"`, `"hybrid"`,
    /// `"usb"`; omitted from the JSON when empty.
    pub transports: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorWire {
    #[serde(rename = "type")]
    type_: String,
    #[serde(with = "b64")]
    id: Vec<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    transports: Vec<String>,
}

impl From<CredentialDescriptor> for DescriptorWire {
    fn from(d: CredentialDescriptor) -> Self {
        Self {
            type_: PUBLIC_KEY.to_owned(),
            id: d.id,
            transports: d.transports,
        }
    }
}

impl TryFrom<DescriptorWire> for CredentialDescriptor {
    type Error = &'static str;

    fn try_from(w: DescriptorWire) -> Result<Self, Self::Error> {
        if w.type_ != PUBLIC_KEY {
            return Err("credential descriptor type is not \"public-key\"");
        }
        Ok(Self {
            id: w.id,
            transports: w.transports,
        })
    }
}

impl From<&crate::CredentialRecord> for CredentialDescriptor {
    /// The descriptor of a stored credential (its id and transports).
    fn from(record: &crate::CredentialRecord) -> Self {
        Self {
            id: record.id.clone(),
            transports: record.transports.clone(),
        }
    }
}

/// Whether a client-side discoverable credential (a passkey that can sign in
/// without a username) is wanted (L3 `ResidentKeyRequirement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResidentKey {
    /// `"discouraged"`: a server-side credential is preferred.
    Discouraged,
    /// `"preferred"`: discoverable if the authenticator can.
    Preferred,
    /// `"required"`: discoverable or the ceremony fails.
    Required,
}

/// How much attestation the RP asks for (L3 `AttestationConveyancePreference`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AttestationConveyance {
    /// `"none"`: no attestation (used under [`crate::AttestationTrust::Any`]).
    None,
    /// `"indirect"`: the client may anonymise the attestation.
    Indirect,
    /// `"direct"`: the authenticator's attestation as generated (used under
    /// [`crate::AttestationTrust::Required`]).
    Direct,
    /// `"enterprise"`: individually identifying attestation (managed devices only).
    Enterprise,
}

/// The user-verification requirement as sent to the client
/// (L3 `UserVerificationRequirement`), serialized as
/// `"required"`, `"preferred"` or `"discouraged"`.
impl Serialize for UserVerificationPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UserVerificationPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        match text.as_ref() {
            "required" => Ok(Self::Required),
            "preferred" => Ok(Self::Preferred),
            "discouraged" => Ok(Self::Discouraged),
            _ => Err(serde::de::Error::unknown_variant(
                &text,
                &["required", "preferred", "discouraged"],
            )),
        }
    }
}

impl UserVerificationPolicy {
    /// The L3 `UserVerificationRequirement` string: `"required"`, `"preferred"`
    /// or `"discouraged"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Preferred => "preferred",
            Self::Discouraged => "discouraged",
        }
    }
}

/// The relying party as named in the creation options
/// (L3 `PublicKeyCredentialRpEntity`, the `rp` member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RpEntity {
    /// `id`: the RP ID ([`RelyingParty::rp_id`]).
    pub id: String,
    /// `name`: a human-palatable RP name ([`RelyingParty::name`]).
    pub name: String,
}

/// One acceptable credential algorithm
/// (L3 `PublicKeyCredentialParameters`, an entry of `pubKeyCredParams`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialParameters {
    /// `type`: always `"public-key"`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `alg`: the COSE algorithm identifier, e.g. -7 (ES256), -8 (EdDSA), -257 (RS256).
    pub alg: i64,
}

/// Authenticator requirements of a registration
/// (L3 `AuthenticatorSelectionCriteria`, the `authenticatorSelection` member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorSelection {
    /// `authenticatorAttachment`: `"platform"` or `"cross-platform"`; omitted
    /// (any attachment) when `None`, which is what
    /// [`RelyingParty::creation_options`] produces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticator_attachment: Option<String>,
    /// `residentKey`: whether a discoverable credential is wanted.
    pub resident_key: ResidentKey,
    /// `requireResidentKey`: the Level 1 form of `residentKey`, true exactly
    /// when `residentKey` is `"required"`.
    #[serde(default)]
    pub require_resident_key: bool,
    /// `userVerification`: from [`RelyingParty::user_verification`].
    pub user_verification: UserVerificationPolicy,
}

/// WebAuthn L3 `PublicKeyCredentialCreationOptionsJSON` (§5.4): the options of
/// `navigator.credentials.create()`, to be passed through
/// `PublicKeyCredential.parseCreationOptionsFromJSON()` in the browser.
///
/// Serde `Serialize` + `Deserialize`; members are camelCase, binary members
/// unpadded base64url. Build it with [`RelyingParty::creation_options`]; the
/// fields are public so an integrator can adjust them (e.g. `hints`,
/// `authenticatorSelection.authenticatorAttachment` or further extensions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationOptionsJson {
    /// `rp`: the relying party's id and name.
    pub rp: RpEntity,
    /// `user`: the account the credential is for.
    pub user: UserEntity,
    /// `challenge`: the ceremony challenge (base64url in JSON).
    #[serde(with = "b64")]
    pub challenge: Vec<u8>,
    /// `pubKeyCredParams`: acceptable algorithms, most preferred first.
    pub pub_key_cred_params: Vec<CredentialParameters>,
    /// `timeout`: a hint in milliseconds; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// `excludeCredentials`: credentials already registered to the user, so the
    /// same authenticator is not registered twice.
    #[serde(default)]
    pub exclude_credentials: Vec<CredentialDescriptor>,
    /// `authenticatorSelection`: resident key and user-verification requirements.
    pub authenticator_selection: AuthenticatorSelection,
    /// `hints`: `"security-key"`, `"client-device"` or `"hybrid"`, most
    /// preferred first; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// `attestation`: `"none"` under [`crate::AttestationTrust::Any`], `"direct"` under
    /// [`crate::AttestationTrust::Required`].
    pub attestation: AttestationConveyance,
    /// `extensions`: client extension inputs
    /// (`AuthenticationExtensionsClientInputsJSON`); [`RelyingParty::creation_options`]
    /// asks for `credProps`. Omitted when empty.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// WebAuthn L3 `PublicKeyCredentialRequestOptionsJSON` (§5.5): the options of
/// `navigator.credentials.get()`, to be passed through
/// `PublicKeyCredential.parseRequestOptionsFromJSON()` in the browser.
///
/// Serde `Serialize` + `Deserialize`; members are camelCase, binary members
/// unpadded base64url. Build it with [`RelyingParty::request_options`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestOptionsJson {
    /// `challenge`: the ceremony challenge (base64url in JSON).
    #[serde(with = "b64")]
    pub challenge: Vec<u8>,
    /// `timeout`: a hint in milliseconds; omitted when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// `rpId`: the RP ID; omitted when `None` (the client then uses the caller's
    /// effective domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rp_id: Option<String>,
    /// `allowCredentials`: the credentials that may answer; omitted when empty,
    /// which asks for a discoverable credential (username-less sign-in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_credentials: Vec<CredentialDescriptor>,
    /// `userVerification`: from [`RelyingParty::user_verification`].
    pub user_verification: UserVerificationPolicy,
    /// `hints`: `"security-key"`, `"client-device"` or `"hybrid"`; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
    /// `extensions`: client extension inputs; omitted when empty.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl RequestOptionsJson {
    /// The `allowCredentials` ids in the form
    /// [`crate::AuthenticationState::allow_credentials`] takes: `None` when the
    /// list is empty (discoverable sign-in).
    pub fn allow_credential_ids(&self) -> Option<Vec<Vec<u8>>> {
        if self.allow_credentials.is_empty() {
            None
        } else {
            Some(
                self.allow_credentials
                    .iter()
                    .map(|d| d.id.clone())
                    .collect(),
            )
        }
    }
}

impl RelyingParty {
    /// The options for a registration ceremony (`navigator.credentials.create()`),
    /// as L3 JSON.
    ///
    /// `pubKeyCredParams` lists the configured algorithms in order;
    /// `authenticatorSelection.userVerification` follows the RP's
    /// [`UserVerificationPolicy`]; `attestation` is `"none"` under
    /// [`crate::AttestationTrust::Any`] and `"direct"` under
    /// [`crate::AttestationTrust::Required`]; the `credProps` extension is requested so
    /// the client reports whether the credential is discoverable. `exclude` should
    /// hold the user's existing credentials. Keep `challenge` and `user.id`
    /// server-side for [`crate::RegistrationState`].
    pub fn creation_options(
        &self,
        challenge: &Challenge,
        user: &UserEntity,
        exclude: &[CredentialDescriptor],
        resident_key: ResidentKey,
        timeout_ms: u32,
    ) -> CreationOptionsJson {
        let mut extensions = serde_json::Map::new();
        extensions.insert("credProps".to_owned(), serde_json::Value::Bool(true));
        CreationOptionsJson {
            rp: RpEntity {
                id: self.rp_id.clone(),
                name: self.name.clone(),
            },
            user: user.clone(),
            challenge: challenge.as_bytes().to_vec(),
            pub_key_cred_params: self
                .algorithms
                .iter()
                .map(|alg| CredentialParameters {
                    type_: PUBLIC_KEY.to_owned(),
                    alg: alg.cose_id(),
                })
                .collect(),
            timeout: Some(timeout_ms),
            exclude_credentials: exclude.to_vec(),
            authenticator_selection: AuthenticatorSelection {
                authenticator_attachment: None,
                resident_key,
                require_resident_key: resident_key == ResidentKey::Required,
                user_verification: self.user_verification,
            },
            hints: Vec::new(),
            attestation: match self.attestation_trust {
                TrustPolicy::Any => AttestationConveyance::None,
                TrustPolicy::Required(_) => AttestationConveyance::Direct,
            },
            extensions,
        }
    }

    /// The options for an authentication ceremony (`navigator.credentials.get()`),
    /// as L3 JSON.
    ///
    /// An empty `allow` omits `allowCredentials`: the client then offers the
    /// discoverable credentials it holds for the RP ID and the response carries
    /// `userHandle`. Keep `challenge` (and the allow list,
    /// [`RequestOptionsJson::allow_credential_ids`]) server-side for
    /// [`crate::AuthenticationState`].
    pub fn request_options(
        &self,
        challenge: &Challenge,
        allow: &[CredentialDescriptor],
        timeout_ms: u32,
    ) -> RequestOptionsJson {
        RequestOptionsJson {
            challenge: challenge.as_bytes().to_vec(),
            timeout: Some(timeout_ms),
            rp_id: Some(self.rp_id.clone()),
            allow_credentials: allow.to_vec(),
            user_verification: self.user_verification,
            hints: Vec::new(),
            extensions: serde_json::Map::new(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::CoseAlgorithm;

    fn challenge() -> Challenge {
        Challenge::from_bytes((0u8..32).collect::<Vec<u8>>()).unwrap()
    }

    fn user() -> UserEntity {
        UserEntity {
            id: b"user-42".to_vec(),
            name: "alice@example.test".to_owned(),
            display_name: "Alice".to_owned(),
        }
    }

    fn rp() -> RelyingParty {
        RelyingParty::builder("example.test")
            .origin("https://example.test")
            .build()
            .unwrap()
    }

    #[test]
    fn creation_options_shape_member_by_member() {
        let rp = RelyingParty::builder("example.test")
            .name("Example")
            .origin("https://example.test")
            .user_verification(UserVerificationPolicy::Required)
            .build()
            .unwrap();
        let exclude = [
            CredentialDescriptor {
                id: vec![0xfb, 0xff, 0x01],
                transports: vec!["internal".to_owned(), "hybrid".to_owned()],
            },
            CredentialDescriptor {
                id: vec![0x00],
                transports: vec![],
            },
        ];
        let options = rp.creation_options(
            &challenge(),
            &user(),
            &exclude,
            ResidentKey::Required,
            60_000,
        );
        let v = serde_json::to_value(&options).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "attestation",
                "authenticatorSelection",
                "challenge",
                "excludeCredentials",
                "extensions",
                "pubKeyCredParams",
                "rp",
                "timeout",
                "user"
            ]
        );
        assert_eq!(v["rp"], json!({"id": "example.test", "name": "Example"}));
        // "user-42" in unpadded base64url.
        assert_eq!(
            v["user"],
            json!({"id": "dXNlci00Mg", "name": "alice@example.test", "displayName": "Alice"})
        );
        assert_eq!(
            v["challenge"],
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
        );
        assert_eq!(
            v["pubKeyCredParams"],
            json!([
                {"type": "public-key", "alg": -7},
                {"type": "public-key", "alg": -8},
                {"type": "public-key", "alg": -257}
            ])
        );
        assert_eq!(v["timeout"], 60_000);
        // 0xfb 0xff 0x01 uses both URL-safe characters; no padding; no empty transports.
        assert_eq!(
            v["excludeCredentials"],
            json!([
                {"type": "public-key", "id": "-_8B", "transports": ["internal", "hybrid"]},
                {"type": "public-key", "id": "AA"}
            ])
        );
        assert_eq!(
            v["authenticatorSelection"],
            json!({"residentKey": "required", "requireResidentKey": true, "userVerification": "required"})
        );
        assert_eq!(v["attestation"], "none");
        assert_eq!(v["extensions"], json!({"credProps": true}));
        assert!(obj.get("hints").is_none());
    }

    #[test]
    fn creation_options_follow_the_configuration() {
        // Default name is the RP ID; algorithm order is the configured one.
        let rp = RelyingParty::builder("example.test")
            .origin("https://example.test")
            .algorithms([
                CoseAlgorithm::EdDsa,
                CoseAlgorithm::Es384,
                CoseAlgorithm::Es512,
            ])
            .user_verification(UserVerificationPolicy::Discouraged)
            .build()
            .unwrap();
        assert_eq!(rp.name(), "example.test");
        let v = serde_json::to_value(rp.creation_options(
            &challenge(),
            &user(),
            &[],
            ResidentKey::Preferred,
            1,
        ))
        .unwrap();
        assert_eq!(v["rp"]["name"], "example.test");
        assert_eq!(
            v["pubKeyCredParams"],
            json!([
                {"type": "public-key", "alg": -8},
                {"type": "public-key", "alg": -35},
                {"type": "public-key", "alg": -36}
            ])
        );
        assert_eq!(
            v["authenticatorSelection"],
            json!({"residentKey": "preferred", "requireResidentKey": false, "userVerification": "discouraged"})
        );
        assert_eq!(v["excludeCredentials"], json!([]));

        let preferred = serde_json::to_value(rp_default_uv().creation_options(
            &challenge(),
            &user(),
            &[],
            ResidentKey::Discouraged,
            1,
        ))
        .unwrap();
        assert_eq!(
            preferred["authenticatorSelection"],
            json!({"residentKey": "discouraged", "requireResidentKey": false, "userVerification": "preferred"})
        );
    }

    fn rp_default_uv() -> RelyingParty {
        rp()
    }

    #[test]
    fn attestation_direct_when_trust_is_required() {
        // The options only reflect the policy, so no real anchor is needed here
        // (building `AttestationTrust::Required` through the builder is covered by
        // tests/attestation_trust.rs with the W3C root).
        let mut rp = rp();
        rp.attestation_trust = TrustPolicy::Required(Vec::new());
        let v = serde_json::to_value(rp.creation_options(
            &challenge(),
            &user(),
            &[],
            ResidentKey::Required,
            1,
        ))
        .unwrap();
        assert_eq!(v["attestation"], "direct");
    }

    #[test]
    fn request_options_shape_member_by_member() {
        let allow = [CredentialDescriptor {
            id: vec![1, 2, 3],
            transports: vec!["usb".to_owned()],
        }];
        let options = rp().request_options(&challenge(), &allow, 30_000);
        let v = serde_json::to_value(&options).unwrap();
        assert_eq!(
            v,
            json!({
                "challenge": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                "timeout": 30_000,
                "rpId": "example.test",
                "allowCredentials": [{"type": "public-key", "id": "AQID", "transports": ["usb"]}],
                "userVerification": "preferred"
            })
        );
        assert_eq!(options.allow_credential_ids(), Some(vec![vec![1, 2, 3]]));

        // Discoverable: no allowCredentials member at all.
        let discoverable = rp().request_options(&challenge(), &[], 30_000);
        let v = serde_json::to_value(&discoverable).unwrap();
        assert!(v.get("allowCredentials").is_none());
        assert_eq!(discoverable.allow_credential_ids(), None);
    }

    #[test]
    fn options_round_trip_through_json() {
        let exclude = [CredentialDescriptor {
            id: vec![9; 40],
            transports: vec!["internal".to_owned()],
        }];
        let mut creation =
            rp().creation_options(&challenge(), &user(), &exclude, ResidentKey::Preferred, 5);
        creation.hints = vec!["client-device".to_owned()];
        creation.authenticator_selection.authenticator_attachment = Some("platform".to_owned());
        let text = serde_json::to_string(&creation).unwrap();
        let back: CreationOptionsJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back, creation);

        let request = rp().request_options(&challenge(), &exclude, 5);
        let text = serde_json::to_string(&request).unwrap();
        let back: RequestOptionsJson = serde_json::from_str(&text).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn parsing_tolerates_padding_and_refuses_other_types() {
        let padded: CredentialDescriptor =
            serde_json::from_value(json!({"type": "public-key", "id": "AQI="})).unwrap();
        assert_eq!(padded.id, vec![1, 2]);
        assert!(padded.transports.is_empty());
        assert!(
            serde_json::from_value::<CredentialDescriptor>(json!({"type": "other", "id": "AQI"}))
                .is_err()
        );
        assert!(
            serde_json::from_value::<CredentialDescriptor>(
                json!({"type": "public-key", "id": "not base64!"})
            )
            .is_err()
        );
        assert!(serde_json::from_value::<UserVerificationPolicy>(json!("sometimes")).is_err());
    }

    #[test]
    fn descriptor_from_record() {
        let record = crate::CredentialRecord {
            id: vec![7, 7],
            user_handle: b"u".to_vec(),
            public_key_cose: vec![],
            alg: -7,
            sign_count: 0,
            transports: vec!["hybrid".to_owned()],
            backup_eligible: false,
            backup_state: false,
            uv_initialized: false,
            attestation_format: "none".to_owned(),
            aaguid: [0; 16],
        };
        assert_eq!(
            CredentialDescriptor::from(&record),
            CredentialDescriptor {
                id: vec![7, 7],
                transports: vec!["hybrid".to_owned()]
            }
        );
    }
}
