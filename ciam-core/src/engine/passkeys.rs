//! Passkey flows (feature `passkeys`): add a passkey to an account, sign up with a passkey
//! alone, sign in with a discoverable credential or an allow-list, step up with a passkey, and
//! manage the account's passkeys. The WebAuthn checks themselves are [`ciam_webauthn`]'s.
//!
//! Every ceremony follows the same shape: an `*_options` call draws a challenge, keeps it in
//! the [`ChallengeStore`](crate::store::ChallengeStore) (single use, with a TTL) and returns
//! the WebAuthn L3 JSON options for `navigator.credentials.create()` / `.get()`; the matching
//! `finish_*` call takes `PublicKeyCredential.toJSON()` as text, reads the challenge out of
//! its `clientDataJSON`, consumes the stored challenge atomically and verifies the response
//! against it. A replayed, expired or foreign challenge is refused before any other work.
//!
//! # Assurance
//!
//! | passkey sign-in | `amr` | AAL |
//! |---|---|---|
//! | without user verification (UV) | `hwk` | 1 |
//! | with UV | `hwk mfa` | 2 |
//! | with UV, device-bound (BE clear) and with a trusted attestation ([`AttestationType::Basic`]) | `hwk mfa` | 3 |
//!
//! NIST SP 800-63B counts a multi-factor cryptographic authenticator as AAL2. AAL3 further
//! asks for a hardware-bound key that cannot be exported, and the verifier must be able to
//! tell: the authenticator's own flags are not enough, since any software authenticator can
//! clear the backup-eligible (BE) flag. So a passkey reaches AAL3 only when its attestation
//! chain was verified at registration to one of the trust anchors the integrator configured
//! ([`AttestationTrust::Required`](ciam_webauthn::AttestationTrust::Required)) *and* it is
//! device-bound. Synced passkeys, and `none`, self and unverified (`basic_unverified`)
//! attestations, are capped at AAL2. The anchors decide what counts as AAL3: configure only
//! the roots of authenticators known to keep their keys in hardware (for example
//! FIDO-certified security keys). For Android's hardware attestation roots, also set
//! [`AndroidKeyAuthorization::TeeEnforced`](ciam_webauthn::AndroidKeyAuthorization::TeeEnforced)
//! on the relying party, so that only keys whose trusted execution environment vouches for
//! them pass. Under
//! [`AttestationTrust::Any`](ciam_webauthn::AttestationTrust::Any), the default, no passkey
//! signs in above AAL2.
//!
//! # Enumeration
//!
//! Sign-in options for an e-mail address always list credentials: the account's own passkeys,
//! or for an unknown address (or one without passkeys) one or two fake credential ids derived
//! with HMAC-SHA-256 from the canonical address under a key of the [`PasskeyConfig`]. The
//! answer for one address is the same every time, so comparing two requests shows nothing. Set
//! a shared key with [`PasskeyConfig::with_enumeration_key`] when several instances serve the
//! same users, otherwise each process draws its own and the fakes differ between instances.
//! Both answers cost the same store work: an unknown address still reads a (decoy) account's
//! passkeys, and a known one still derives its fakes.

use std::time::Duration as StdDuration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciam_webauthn::{
    AttestationType, AuthenticationResponse, AuthenticationResult, AuthenticationState,
    Challenge as WaChallenge, CreationOptionsJson, CredentialDescriptor, CredentialRecord,
    RegistrationResponse, RegistrationState, RelyingParty, RequestOptionsJson, ResidentKey,
    UserEntity,
};
use ring::hmac;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::account::Registration;
use super::assess::{FirstFactor, RiskAction};
use super::context::{AuthContext, RequestContext};
use super::outcome::{RegisterOutcome, SignInOutcome, SignedIn};
use super::throttle;
use super::{Ciam, Decision};
use crate::audit::AuditAction;
use crate::challenge::{Challenge, ChallengePurpose};
use crate::credential::{Credential, CredentialKind};
use crate::error::{Error, Result};
use crate::id::{CredentialId, UserId};
use crate::identifier::Email;
use crate::secret::TokenHash;
use crate::session::{Aal, AuthMethod};
use crate::store::StoreError;
use crate::user::User;

/// Longest passkey label, in characters.
pub const MAX_PASSKEY_NAME: usize = 64;

/// Length of the random WebAuthn user handle given to each account (L3 recommends 64 random
/// bytes at most; 32 are plenty and never reveal the user id or address).
const USER_HANDLE_LEN: usize = 32;

/// Passkey settings: the relying party and the ceremony limits.
#[derive(Clone)]
pub struct PasskeyConfig {
    rp: RelyingParty,
    ceremony_ttl: StdDuration,
    resident_key: ResidentKey,
    enumeration_key: hmac::Key,
}

impl std::fmt::Debug for PasskeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyConfig")
            .field("rp_id", &self.rp.rp_id())
            .field("origins", &self.rp.origins())
            .field("ceremony_ttl", &self.ceremony_ttl)
            .field("enumeration_key", &"***")
            .finish_non_exhaustive()
    }
}

impl PasskeyConfig {
    /// Passkeys for `rp`, with a five-minute ceremony, resident keys required (so every
    /// passkey can sign in without a username) and a per-process enumeration key.
    ///
    /// # Errors
    /// [`Error::Internal`] when the system random source fails.
    pub fn new(rp: RelyingParty) -> Result<Self> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
            .map_err(|_| Error::Internal("random source failed".into()))?;
        Ok(Self {
            rp,
            ceremony_ttl: StdDuration::from_secs(300),
            resident_key: ResidentKey::Required,
            enumeration_key: key,
        })
    }

    /// How long a ceremony may take, from options to finish (10 s to 10 min; clamped). It is
    /// both the challenge's TTL and the `timeout` hint given to the browser.
    pub fn with_ceremony_ttl(mut self, ttl: StdDuration) -> Self {
        self.ceremony_ttl = ttl.clamp(StdDuration::from_secs(10), StdDuration::from_secs(600));
        self
    }

    /// The resident-key requirement sent at registration (default: required).
    pub fn with_resident_key(mut self, resident_key: ResidentKey) -> Self {
        self.resident_key = resident_key;
        self
    }

    /// A key (at least 32 bytes) for the fake credential ids given for unknown addresses;
    /// share it between instances so they all answer alike.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the key is shorter than 32 bytes.
    pub fn with_enumeration_key(mut self, key: &[u8]) -> Result<Self> {
        if key.len() < 32 {
            return Err(Error::InvalidInput("enumeration key shorter than 32 bytes"));
        }
        self.enumeration_key = hmac::Key::new(hmac::HMAC_SHA256, key);
        Ok(self)
    }

    /// The relying party.
    pub fn relying_party(&self) -> &RelyingParty {
        &self.rp
    }

    fn timeout_ms(&self) -> u32 {
        u32::try_from(self.ceremony_ttl.as_millis()).unwrap_or(u32::MAX)
    }
}

/// What is stored in a passkey credential's `secret` (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPasskey {
    record: CredentialRecord,
    attestation_type: AttestationType,
}

impl StoredPasskey {
    fn decode(c: &Credential) -> Result<Self> {
        serde_json::from_str(&c.secret).map_err(|e| {
            Error::Internal(format!("stored passkey {} is unreadable: {e}", c.id).into())
        })
    }

    fn encode(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Internal(Box::new(e)))
    }
}

/// A passkey as shown on an account page. Holds no key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PasskeyInfo {
    /// Credential id within ciam (not the WebAuthn credential id).
    pub id: CredentialId,
    /// The user's label.
    pub name: String,
    /// When it was registered.
    #[serde(with = "crate::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it last signed in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Backup eligible (BE): a synced, multi-device passkey rather than a device-bound one.
    pub synced: bool,
    /// Backed up (BS) at its last use.
    pub backed_up: bool,
    /// The authenticator's AAGUID (all zeros when it gave none), as a UUID.
    pub aaguid: String,
    /// `none`, `self`, `basic_unverified` or `basic` (see [`AttestationType`]).
    pub attestation: String,
    /// Transports the browser reported at registration.
    pub transports: Vec<String>,
}

impl PasskeyInfo {
    fn from_credential(c: &Credential) -> Result<Self> {
        let stored = StoredPasskey::decode(c)?;
        let r = &stored.record;
        Ok(Self {
            id: c.id,
            name: c.name.clone().unwrap_or_else(|| "Passkey".to_owned()),
            created_at: c.created_at,
            last_used_at: c.last_used_at,
            synced: r.backup_eligible,
            backed_up: r.backup_state,
            aaguid: uuid_text(&r.aaguid),
            attestation: attestation_text(stored.attestation_type).to_owned(),
            transports: r.transports.clone(),
        })
    }
}

fn uuid_text(b: &[u8; 16]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn attestation_text(t: AttestationType) -> &'static str {
    match t {
        AttestationType::None => "none",
        AttestationType::SelfAttestation => "self",
        AttestationType::BasicUnverified => "basic_unverified",
        AttestationType::Basic => "basic",
        _ => "other",
    }
}

/// A short, stable reason for the audit log, naming the failed WebAuthn step.
fn reason(e: &ciam_webauthn::Error) -> &'static str {
    use ciam_webauthn::Error as E;
    match e {
        E::Malformed(_) => "malformed_response",
        E::CredentialType => "credential_type",
        E::ClientDataType => "client_data_type",
        E::Challenge => "challenge_mismatch",
        E::Origin => "origin",
        E::CrossOrigin => "cross_origin",
        E::RpIdHash => "rp_id_hash",
        E::UserPresence => "user_presence",
        E::UserVerification => "user_verification",
        E::BackupFlags => "backup_flags",
        E::Algorithm(_) => "algorithm",
        E::InvalidKey(_) => "invalid_key",
        E::CredentialIdTooLong(_) => "credential_id_too_long",
        E::UnsupportedFormat(_) => "attestation_format",
        E::AttestationStatement(_) => "attestation_statement",
        E::UntrustedAttestation(_) => "untrusted_attestation",
        E::Signature => "signature",
        E::CounterRegression { .. } => "counter_regression",
        E::NotAllowed => "credential_not_allowed",
        E::UserHandle => "user_handle",
        _ => "webauthn",
    }
}

/// The base64url challenge inside a response's `clientDataJSON`, re-encoded canonically (the
/// verifier checks it again, byte for byte, against the stored one).
fn challenge_of(client_data_json: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ClientData {
        challenge: String,
    }
    let cd: ClientData = serde_json::from_slice(client_data_json).ok()?;
    let bytes = URL_SAFE_NO_PAD
        .decode(cd.challenge.trim_end_matches('='))
        .ok()?;
    if bytes.len() < 16 || bytes.len() > 64 {
        return None;
    }
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

fn challenge_hash(encoded: &str) -> TokenHash {
    TokenHash::of(encoded)
}

/// Validates a passkey label: trimmed, 1 to [`MAX_PASSKEY_NAME`] characters, no control
/// characters.
fn clean_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_PASSKEY_NAME
        || name.chars().any(char::is_control)
    {
        return Err(Error::InvalidInput("passkey name"));
    }
    Ok(name.to_owned())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// What a registration ceremony keeps between options and finish.
#[derive(Debug, Serialize, Deserialize)]
struct RegistrationPayload {
    user_handle: String,
    /// Sign-up only: the new account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_up: Option<SignUpPayload>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SignUpPayload {
    user_id: UserId,
    email: String,
    profile: crate::user::ProfileAttributes,
}

/// What an authentication ceremony keeps between options and finish.
#[derive(Debug, Serialize, Deserialize)]
struct AuthenticationPayload {
    /// The allow-list sent, when there was one.
    allow: Option<Vec<String>>,
    /// A step-up of this session rather than a sign-in.
    #[serde(default)]
    step_up: bool,
}

/// A verified assertion, before the session is made.
struct Assertion {
    user: User,
    credential: Credential,
    result: AuthenticationResult,
    backup_eligible: bool,
    /// How the credential's attestation was classified at registration.
    attestation_type: AttestationType,
}

impl Assertion {
    fn amr(&self) -> Vec<AuthMethod> {
        if self.result.user_verified {
            vec![AuthMethod::Hwk, AuthMethod::Mfa]
        } else {
            vec![AuthMethod::Hwk]
        }
    }

    /// The assurance level of this sign-in (the table in the module documentation). BE is
    /// only the authenticator's claim, so AAL3 also needs an attestation the relying party
    /// verified to one of its configured anchors.
    fn aal(&self) -> Aal {
        let hardware_bound =
            !self.backup_eligible && self.attestation_type == AttestationType::Basic;
        match (self.result.user_verified, hardware_bound) {
            (false, _) => Aal::Aal1,
            (true, false) => Aal::Aal2,
            (true, true) => Aal::Aal3,
        }
    }
}

impl Ciam {
    fn passkey_config(&self) -> Result<&PasskeyConfig> {
        self.inner.passkeys.as_ref().ok_or_else(|| {
            Error::Internal("passkeys are not configured (CiamBuilder::passkeys)".into())
        })
    }

    /// The relying party in force, when passkeys are configured.
    pub fn passkey_relying_party(&self) -> Option<&RelyingParty> {
        self.inner
            .passkeys
            .as_ref()
            .map(PasskeyConfig::relying_party)
    }

    async fn user_passkeys(&self, user: UserId) -> Result<Vec<Credential>> {
        Ok(self
            .inner
            .credentials
            .credentials_for_user(user, CredentialKind::Passkey)
            .await?)
    }

    fn descriptors(passkeys: &[Credential]) -> Vec<CredentialDescriptor> {
        passkeys
            .iter()
            .filter_map(|c| {
                let stored = StoredPasskey::decode(c).ok()?;
                Some(CredentialDescriptor {
                    id: stored.record.id,
                    transports: stored.record.transports,
                })
            })
            .collect()
    }

    /// Draws a WebAuthn challenge and stores it for `purpose`.
    async fn store_ceremony(
        &self,
        purpose: ChallengePurpose,
        user: Option<UserId>,
        payload: serde_json::Value,
    ) -> Result<WaChallenge> {
        let config = self.passkey_config()?;
        let challenge = WaChallenge::generate()
            .map_err(|e| Error::Internal(format!("challenge: {e}").into()))?;
        let now = self.now();
        let ttl = time::Duration::try_from(config.ceremony_ttl)
            .unwrap_or_else(|_| time::Duration::minutes(5));
        let stored = Challenge::new(
            challenge_hash(&challenge.to_base64url()),
            purpose,
            user,
            payload,
            now,
            now + ttl,
        );
        self.inner.challenges.insert_challenge(&stored).await?;
        Ok(challenge)
    }

    /// Consumes the ceremony whose challenge is in `client_data_json`.
    async fn take_ceremony(
        &self,
        purpose: ChallengePurpose,
        client_data_json: &[u8],
    ) -> Result<Option<(Challenge, WaChallenge)>> {
        let Some(encoded) = challenge_of(client_data_json) else {
            return Ok(None);
        };
        let Some(stored) = self
            .inner
            .challenges
            .consume_challenge(purpose, &challenge_hash(&encoded), self.now())
            .await?
        else {
            return Ok(None);
        };
        let bytes = unb64(&encoded).unwrap_or_default();
        let challenge = WaChallenge::from_bytes(bytes)
            .map_err(|e| Error::Internal(format!("stored challenge: {e}").into()))?;
        Ok(Some((stored, challenge)))
    }

    async fn passkey_refused<T>(
        &self,
        action: AuditAction,
        reason: &'static str,
        user: Option<UserId>,
        ctx: &RequestContext,
    ) -> Result<T> {
        self.record(Decision::failure(action, reason).user(user), ctx)
            .await;
        Err(Error::PasskeyRejected(reason))
    }

    fn user_entity(user: &User, handle: Vec<u8>) -> UserEntity {
        let name = user
            .email
            .as_ref()
            .map(|e| e.as_str().to_owned())
            .or_else(|| user.username.as_ref().map(|u| u.as_str().to_owned()))
            .unwrap_or_else(|| "user".to_owned());
        let display_name = user
            .profile
            .get("name")
            .and_then(|v| v.as_str())
            .map_or_else(|| name.clone(), str::to_owned);
        UserEntity {
            id: handle,
            name,
            display_name,
        }
    }

    fn new_user_handle(&self) -> Result<Vec<u8>> {
        let mut handle = vec![0_u8; USER_HANDLE_LEN];
        self.inner.rng.fill(&mut handle)?;
        Ok(handle)
    }

    /// Options to add a passkey to the signed-in account (`navigator.credentials.create()`).
    ///
    /// Adding a way to sign in is sensitive, so it needs a sign-in within
    /// [`Policy::recent_auth_max_age`](crate::Policy) ([`Error::StepUpRequired`] otherwise).
    /// The account's existing passkeys are excluded, so an authenticator cannot register twice.
    /// All of a user's passkeys share one random user handle.
    pub async fn passkey_registration_options(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<CreationOptionsJson> {
        crate::engine::observe::flow("passkey_registration_options", async move {
            let config = self.passkey_config()?;
            let user = self.user(auth.user_id).await?;
            self.step_up(&user, auth, None, AuditAction::PasskeyAdded, ctx)
                .await?;
            let existing = self.user_passkeys(user.id).await?;
            let handle = match existing.first().map(StoredPasskey::decode).transpose()? {
                Some(stored) => stored.record.user_handle,
                None => self.new_user_handle()?,
            };
            let payload = RegistrationPayload {
                user_handle: b64(&handle),
                sign_up: None,
            };
            let challenge = self
                .store_ceremony(
                    ChallengePurpose::PasskeyRegistration,
                    Some(user.id),
                    serde_json::to_value(&payload).map_err(|e| Error::Internal(Box::new(e)))?,
                )
                .await?;
            Ok(config.rp.creation_options(
                &challenge,
                &Self::user_entity(&user, handle),
                &Self::descriptors(&existing),
                config.resident_key,
                config.timeout_ms(),
            ))
        })
        .await
    }

    /// Verifies a registration response and returns the stored record and classification.
    async fn verify_new_passkey(
        &self,
        response_json: &str,
        action: AuditAction,
        ctx: &RequestContext,
    ) -> Result<(Challenge, RegistrationPayload, StoredPasskey, bool)> {
        let config = self.passkey_config()?;
        let Ok(response) = RegistrationResponse::from_json(response_json) else {
            return self
                .passkey_refused(action, "malformed_response", None, ctx)
                .await;
        };
        let Some((stored, challenge)) = self
            .take_ceremony(
                ChallengePurpose::PasskeyRegistration,
                &response.client_data_json,
            )
            .await?
        else {
            return self
                .passkey_refused(action, "unknown_or_expired_challenge", None, ctx)
                .await;
        };
        let payload: RegistrationPayload = serde_json::from_value(stored.payload.clone())
            .map_err(|e| Error::Internal(Box::new(e)))?;
        let handle = unb64(&payload.user_handle)
            .ok_or_else(|| Error::Internal("stored user handle".into()))?;
        let state = RegistrationState {
            challenge,
            user_handle: handle,
        };
        let at = rustls_unix_time(self.now());
        let verified = match config.rp.verify_registration_at(&response, &state, at) {
            Ok(v) => v,
            Err(e) => {
                return self
                    .passkey_refused(action, reason(&e), stored.user_id, ctx)
                    .await;
            }
        };
        if self
            .inner
            .credentials
            .credential_by_lookup(CredentialKind::Passkey, &verified.record.id)
            .await?
            .is_some()
        {
            return self
                .passkey_refused(action, "credential_already_registered", stored.user_id, ctx)
                .await;
        }
        let user_verified = verified.user_verified;
        Ok((
            stored,
            payload,
            StoredPasskey {
                record: verified.record,
                attestation_type: verified.attestation_type,
            },
            user_verified,
        ))
    }

    fn passkey_credential(
        &self,
        user: UserId,
        stored: &StoredPasskey,
        name: Option<&str>,
    ) -> Result<Credential> {
        let name = match name {
            Some(n) => clean_name(n)?,
            None => "Passkey".to_owned(),
        };
        Ok(Credential::new(
            CredentialId::generate(self.inner.rng.as_ref())?,
            user,
            CredentialKind::Passkey,
            stored.encode()?,
            self.now(),
        )
        .with_lookup(stored.record.id.clone())
        .with_name(name))
    }

    /// Finishes adding a passkey: `response_json` is `PublicKeyCredential.toJSON()` of the
    /// `create()` call made with [`Ciam::passkey_registration_options`]. `name` is the user's
    /// label (1 to 64 characters; "Passkey" when `None`).
    ///
    /// # Errors
    /// [`Error::PasskeyRejected`] when the response does not verify (the challenge is used up
    /// either way) or its credential id is already registered; [`Error::InvalidInput`] for a
    /// bad name.
    pub async fn finish_passkey_registration(
        &self,
        auth: &AuthContext,
        response_json: &str,
        name: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<PasskeyInfo> {
        crate::engine::observe::flow("finish_passkey_registration", async move {
            if let Some(n) = name {
                clean_name(n)?;
            }
            let (stored, _, passkey, uv) = self
                .verify_new_passkey(response_json, AuditAction::PasskeyAdded, ctx)
                .await?;
            if stored.user_id != Some(auth.user_id) {
                return self
                    .passkey_refused(
                        AuditAction::PasskeyAdded,
                        "ceremony_of_another_user",
                        Some(auth.user_id),
                        ctx,
                    )
                    .await;
            }
            let credential = self.passkey_credential(auth.user_id, &passkey, name)?;
            match self.inner.credentials.insert_credential(&credential).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    return self
                        .passkey_refused(
                            AuditAction::PasskeyAdded,
                            "credential_already_registered",
                            Some(auth.user_id),
                            ctx,
                        )
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
            self.record(
                Decision::success(AuditAction::PasskeyAdded, "registered")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(passkey_detail(&credential, &passkey, uv)),
                ctx,
            )
            .await;
            PasskeyInfo::from_credential(&credential)
        })
        .await
    }

    /// Options to sign up with a passkey alone (no password). `req.password` must be `None`.
    ///
    /// The e-mail address and profile are checked now, but nothing is created until the
    /// passkey verifies in [`Ciam::finish_passkey_sign_up`]. The answer is the same whether or
    /// not the address has an account.
    pub async fn passkey_sign_up_options(
        &self,
        req: Registration,
        ctx: &RequestContext,
    ) -> Result<CreationOptionsJson> {
        crate::engine::observe::flow("passkey_sign_up_options", async move {
            let config = self.passkey_config()?;
            if req.password.is_some() {
                return Err(Error::InvalidInput("a passkey sign-up takes no password"));
            }
            let email = Email::parse(&req.email)?;
            self.inner.profile.validate_all(&req.profile)?;
            let _ = ctx;
            let user_id = UserId::generate(self.inner.rng.as_ref())?;
            let handle = self.new_user_handle()?;
            let mut preview = User::new(user_id, self.now());
            preview.email = Some(email.clone());
            preview.profile.clone_from(&req.profile);
            let payload = RegistrationPayload {
                user_handle: b64(&handle),
                sign_up: Some(SignUpPayload {
                    user_id,
                    email: email.as_str().to_owned(),
                    profile: req.profile,
                }),
            };
            let challenge = self
                .store_ceremony(
                    ChallengePurpose::PasskeyRegistration,
                    None,
                    serde_json::to_value(&payload).map_err(|e| Error::Internal(Box::new(e)))?,
                )
                .await?;
            Ok(config.rp.creation_options(
                &challenge,
                &Self::user_entity(&preview, handle),
                &[],
                config.resident_key,
                config.timeout_ms(),
            ))
        })
        .await
    }

    /// Finishes a passkey sign-up: verifies the passkey, creates the account with it as the
    /// only credential, and mails a verification link, exactly like [`Ciam::register`]. If the
    /// address already has an account, nothing is created and its owner gets a notice; the
    /// answer is the same. The new account signs in once its address is verified (unless
    /// [`Policy::allow_unverified_sign_in`](crate::Policy)).
    pub async fn finish_passkey_sign_up(
        &self,
        response_json: &str,
        name: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<RegisterOutcome> {
        crate::engine::observe::flow("finish_passkey_sign_up", async move {
            if let Some(n) = name {
                clean_name(n)?;
            }
            let (stored, payload, passkey, uv) = self
                .verify_new_passkey(response_json, AuditAction::Register, ctx)
                .await?;
            let Some(sign_up) = payload.sign_up.filter(|_| stored.user_id.is_none()) else {
                return self
                    .passkey_refused(AuditAction::Register, "not_a_sign_up_ceremony", None, ctx)
                    .await;
            };
            let email = Email::parse(&sign_up.email)?;
            if let Some(existing) = self.inner.identities.user_by_email(&email).await? {
                return Ok(self.register_existing(&existing, &email, ctx).await);
            }
            let mut user = User::new(sign_up.user_id, self.now());
            user.email = Some(email.clone());
            user.profile = sign_up.profile;
            let credential = self.passkey_credential(user.id, &passkey, name)?;
            match self
                .inner
                .identities
                .create_user(&user, std::slice::from_ref(&credential))
                .await
            {
                Ok(()) => {}
                Err(StoreError::Conflict("credential")) => {
                    return self
                        .passkey_refused(
                            AuditAction::Register,
                            "credential_already_registered",
                            None,
                            ctx,
                        )
                        .await;
                }
                Err(StoreError::Conflict(_)) => {
                    return self.lost_registration_race(&email, ctx).await;
                }
                Err(e) => return Err(e.into()),
            }
            let detail =
                json!({"password": false, "passkey": passkey_detail(&credential, &passkey, uv)});
            self.registered(&user, &email, detail, ctx).await
        })
        .await
    }

    /// Fake, stable allow-list entries for an address without passkeys.
    fn fake_descriptors(config: &PasskeyConfig, email: &Email) -> Vec<CredentialDescriptor> {
        let tag = hmac::sign(&config.enumeration_key, email.canonical().as_bytes());
        let t = tag.as_ref();
        // Common credential id lengths: 16 (many security keys), 20 (iCloud Keychain),
        // 32 (Windows Hello), 64 and 65+ (Android, some keys).
        const LENGTHS: [usize; 4] = [16, 20, 32, 64];
        let count = 1 + usize::from(t[0] & 1);
        (0..count)
            .map(|i| {
                let len = LENGTHS[usize::from(t[1 + i] & 3)];
                let mut id = Vec::with_capacity(len);
                let mut block = 0_u8;
                while id.len() < len {
                    let part =
                        hmac::sign(&config.enumeration_key, &[t, &[i as u8, block]].concat());
                    id.extend_from_slice(part.as_ref());
                    block = block.wrapping_add(1);
                }
                id.truncate(len);
                CredentialDescriptor {
                    id,
                    transports: vec!["internal".to_owned(), "hybrid".to_owned()],
                }
            })
            .collect()
    }

    /// A stable user id for an unknown address, derived like its fake credentials: only
    /// read with, never stored (a 128-bit value no account is expected to hold).
    fn decoy_user(config: &PasskeyConfig, email: &Email) -> UserId {
        let tag = hmac::sign(
            &config.enumeration_key,
            &[b"decoy-user\0".as_slice(), email.canonical().as_bytes()].concat(),
        );
        let mut bytes = [0_u8; 16];
        bytes.copy_from_slice(&tag.as_ref()[..16]);
        UserId::from_bytes(bytes)
    }

    /// Options to sign in with a passkey (`navigator.credentials.get()`).
    ///
    /// With no address (`None`, or an empty string) the options have no allow-list: the
    /// browser offers the discoverable passkeys it holds for this site (also for conditional
    /// mediation, the autofill UI). With an address, the account's passkeys are listed; an
    /// unknown address, or one without passkeys, gets a stable fake list instead (see the
    /// module documentation).
    pub async fn passkey_sign_in_options(
        &self,
        email: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<RequestOptionsJson> {
        crate::engine::observe::flow("passkey_sign_in_options", async move {
            let config = self.passkey_config()?;
            let _ = ctx;
            let email = email.map(str::trim).filter(|e| !e.is_empty());
            let allow = match email {
                None => None,
                Some(text) => {
                    let email = Email::parse(text)?;
                    let user = self.inner.identities.user_by_email(&email).await?;
                    // The same work either way, so the answer's timing does not tell whether
                    // the account exists: the fakes are always derived, and an unknown address
                    // reads the passkeys of a decoy id that no account holds (the result is
                    // dropped even if one did).
                    let fakes = Self::fake_descriptors(config, &email);
                    let owner = user
                        .as_ref()
                        .map_or_else(|| Self::decoy_user(config, &email), |u| u.id);
                    let listed = Self::descriptors(&self.user_passkeys(owner).await?);
                    let own = if user.is_some() { listed } else { Vec::new() };
                    Some(if own.is_empty() { fakes } else { own })
                }
            };
            let payload = AuthenticationPayload {
                allow: allow
                    .as_ref()
                    .map(|a| a.iter().map(|d| b64(&d.id)).collect()),
                step_up: false,
            };
            let challenge = self
                .store_ceremony(
                    ChallengePurpose::PasskeyAuthentication,
                    None,
                    serde_json::to_value(&payload).map_err(|e| Error::Internal(Box::new(e)))?,
                )
                .await?;
            Ok(config.rp.request_options(
                &challenge,
                allow.as_deref().unwrap_or(&[]),
                config.timeout_ms(),
            ))
        })
        .await
    }

    /// Verifies an assertion against its ceremony and the stored credential, and stores the
    /// new counter and backup state.
    async fn verify_assertion(
        &self,
        response_json: &str,
        action: AuditAction,
        step_up_of: Option<UserId>,
        ctx: &RequestContext,
    ) -> Result<Assertion> {
        let config = self.passkey_config()?;
        let Ok(response) = AuthenticationResponse::from_json(response_json) else {
            return self
                .passkey_refused(action, "malformed_response", step_up_of, ctx)
                .await;
        };
        let Some((stored, challenge)) = self
            .take_ceremony(
                ChallengePurpose::PasskeyAuthentication,
                &response.client_data_json,
            )
            .await?
        else {
            return self
                .passkey_refused(action, "unknown_or_expired_challenge", step_up_of, ctx)
                .await;
        };
        let payload: AuthenticationPayload = serde_json::from_value(stored.payload.clone())
            .map_err(|e| Error::Internal(Box::new(e)))?;
        if payload.step_up != step_up_of.is_some() || stored.user_id != step_up_of {
            return self
                .passkey_refused(action, "ceremony_of_another_kind", step_up_of, ctx)
                .await;
        }
        let Some(mut credential) = self
            .inner
            .credentials
            .credential_by_lookup(CredentialKind::Passkey, &response.raw_id)
            .await?
        else {
            return self
                .passkey_refused(action, "unknown_credential", step_up_of, ctx)
                .await;
        };
        let owner = credential.user_id;
        if step_up_of.is_some_and(|u| u != owner) {
            return self
                .passkey_refused(action, "credential_of_another_user", step_up_of, ctx)
                .await;
        }
        let state = AuthenticationState {
            challenge,
            allow_credentials: payload
                .allow
                .map(|ids| ids.iter().filter_map(|i| unb64(i)).collect()),
            user_handle: None,
        };
        // A concurrent sign-in with the same passkey may move the counter between our read
        // and our write: verify again against the fresh record (bounded).
        for _ in 0..3 {
            let mut passkey = StoredPasskey::decode(&credential)?;
            let mut state = state.clone();
            if state.allow_credentials.is_some() {
                // The user was identified by the allow-list: the response may omit userHandle.
                state.user_handle = Some(passkey.record.user_handle.clone());
            }
            let result = match config
                .rp
                .verify_authentication(&response, &state, &passkey.record)
            {
                Ok(r) => r,
                Err(e) => {
                    return self
                        .passkey_refused(action, reason(&e), Some(owner), ctx)
                        .await;
                }
            };
            let backup_eligible = passkey.record.backup_eligible;
            let attestation_type = passkey.attestation_type;
            let before = passkey.record.backup_state;
            result.apply_to(&mut passkey.record);
            let mut updated = credential.clone();
            updated.secret = passkey.encode()?;
            updated.updated_at = self.now();
            match self.inner.credentials.update_credential(&updated).await {
                Ok(stored_credential) => {
                    let user = self
                        .inner
                        .identities
                        .user_by_id(owner)
                        .await?
                        .ok_or(Error::PasskeyRejected("unknown_credential"))?;
                    if result.backup_state_changed {
                        self.record(
                            Decision::success(
                                AuditAction::PasskeyBackupStateChanged,
                                "backup_state_changed",
                            )
                            .user(owner)
                            .detail(json!({
                                "credential": stored_credential.id,
                                "from": before,
                                "to": result.backup_state,
                            })),
                            ctx,
                        )
                        .await;
                    }
                    if result.counter_regression {
                        self.record(
                            Decision::failure(
                                AuditAction::PasskeyCounterRegression,
                                "counter_not_increasing",
                            )
                            .user(owner)
                            .detail(json!({
                                "credential": stored_credential.id,
                                "stored": result.new_sign_count,
                            })),
                            ctx,
                        )
                        .await;
                    }
                    return Ok(Assertion {
                        user,
                        credential: stored_credential,
                        result,
                        backup_eligible,
                        attestation_type,
                    });
                }
                Err(StoreError::VersionConflict) => {
                    credential = self
                        .inner
                        .credentials
                        .credential_by_id(credential.id)
                        .await?
                        .ok_or(Error::PasskeyRejected("unknown_credential"))?;
                }
                Err(StoreError::NotFound) => {
                    return self
                        .passkey_refused(action, "unknown_credential", Some(owner), ctx)
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    /// Finishes a passkey sign-in: `response_json` is `PublicKeyCredential.toJSON()` of the
    /// `get()` call made with [`Ciam::passkey_sign_in_options`].
    ///
    /// Every failure (unknown credential, bad signature, replayed challenge...) is
    /// [`Error::PasskeyRejected`] with the reason in the audit log. After the passkey is
    /// proven, an unavailable account gives [`Error::AccountUnavailable`] and an unverified
    /// address [`SignInOutcome::VerificationRequired`] (with a fresh link), as for passwords.
    pub async fn finish_passkey_sign_in(
        &self,
        response_json: &str,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        crate::engine::observe::flow("finish_passkey_sign_in", async move {
            let a = self
                .verify_assertion(response_json, AuditAction::SignInPasskey, None, ctx)
                .await?;
            let user = &a.user;
            if !user.status.may_sign_in() {
                self.record(
                    Decision::failure(AuditAction::SignInPasskey, user.status.as_str())
                        .user(user.id),
                    ctx,
                )
                .await;
                return Err(Error::AccountUnavailable);
            }
            if !user.email_verified() && !self.inner.policy.allow_unverified_sign_in {
                self.record(
                    Decision::failure(AuditAction::SignInPasskey, "email_unverified").user(user.id),
                    ctx,
                )
                .await;
                if let Some(on_file) = user.email.clone() {
                    self.send_verification(user, &on_file, ctx).await?;
                }
                return Ok(SignInOutcome::VerificationRequired);
            }
            let now = self.now();
            self.inner
                .credentials
                .touch_credential(a.credential.id, now)
                .await?;
            let (amr, aal) = (a.amr(), a.aal());
            // The passkey is proven: the risk policy still decides (a bot is denied, a
            // CAPTCHA may be asked), as for every other way in. A user-verified passkey is
            // already two factors and meets any factor a challenge asks for; one without
            // user verification is one factor, challenged like a password.
            let first = if a.result.user_verified {
                FirstFactor::Passkey
            } else {
                FirstFactor::Possession
            };
            let trusted = self.trusted_device(user.id, ctx).await?;
            let keys = throttle::keys(
                &self.inner.policy.throttle,
                "passkey",
                user.email.as_ref(),
                ctx,
                trusted.is_some(),
            );
            let risk = self
                .risk_gate_for(user, None, first, trusted.is_some(), &keys, ctx)
                .await;
            self.end_failure_run(user).await?;
            if let RiskAction::Challenge(factors, reason) = risk? {
                return self
                    .mfa_required(user, &amr, factors, Some(reason), ctx)
                    .await;
            }
            let amr_text: Vec<&str> = amr.iter().map(|m| m.as_str()).collect();
            let signed_in = self
                .start_session(a.user.clone(), amr, aal, now, ctx)
                .await?;
            self.record(
                Decision::success(AuditAction::SignInPasskey, "passkey")
                    .user(signed_in.user.id)
                    .session(signed_in.session.id)
                    .detail(json!({
                        "amr": amr_text,
                        "aal": aal.level(),
                        "credential": a.credential.id,
                        "user_verified": a.result.user_verified,
                        "synced": a.backup_eligible,
                        "attestation": attestation_text(a.attestation_type),
                    })),
                ctx,
            )
            .await;
            Ok(SignInOutcome::SignedIn(Box::new(signed_in)))
        })
        .await
    }

    /// Options to re-authenticate the signed-in user with one of their passkeys, before a
    /// sensitive action. Fails with [`Error::PasskeyRejected`] when the account has none.
    pub async fn passkey_step_up_options(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<RequestOptionsJson> {
        crate::engine::observe::flow("passkey_step_up_options", async move {
            let config = self.passkey_config()?;
            let own = Self::descriptors(&self.user_passkeys(auth.user_id).await?);
            if own.is_empty() {
                return self
                    .passkey_refused(
                        AuditAction::StepUpPasskey,
                        "no_passkey",
                        Some(auth.user_id),
                        ctx,
                    )
                    .await;
            }
            let payload = AuthenticationPayload {
                allow: Some(own.iter().map(|d| b64(&d.id)).collect()),
                step_up: true,
            };
            let challenge = self
                .store_ceremony(
                    ChallengePurpose::PasskeyAuthentication,
                    Some(auth.user_id),
                    serde_json::to_value(&payload).map_err(|e| Error::Internal(Box::new(e)))?,
                )
                .await?;
            Ok(config
                .rp
                .request_options(&challenge, &own, config.timeout_ms()))
        })
        .await
    }

    /// Finishes a passkey step-up. The session is replaced by a new one (new token) whose
    /// authentication time is now, whose methods add the passkey's, and whose assurance level
    /// is the higher of the old session's and the passkey's. The old token stops working.
    pub async fn finish_passkey_step_up(
        &self,
        auth: &AuthContext,
        response_json: &str,
        ctx: &RequestContext,
    ) -> Result<SignedIn> {
        crate::engine::observe::flow("finish_passkey_step_up", async move {
            let a = self
                .verify_assertion(
                    response_json,
                    AuditAction::StepUpPasskey,
                    Some(auth.user_id),
                    ctx,
                )
                .await?;
            if !a.user.status.may_sign_in() {
                return Err(Error::AccountUnavailable);
            }
            let now = self.now();
            self.inner
                .credentials
                .touch_credential(a.credential.id, now)
                .await?;
            let mut amr = auth.amr.clone();
            for m in a.amr() {
                if !amr.contains(&m) {
                    amr.push(m);
                }
            }
            let aal = auth.aal.max(a.aal());
            // Replace exactly the session that stepped up, whatever token the request carried.
            let signed_in = self
                .replace_session(auth, a.user.clone(), amr.clone(), aal, now, ctx)
                .await?;
            self.record(
                Decision::success(AuditAction::StepUpPasskey, "passkey")
                    .user(auth.user_id)
                    .session(signed_in.session.id)
                    .detail(json!({
                        "replaced_session": auth.session_id,
                        "amr": amr.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
                        "aal": aal.level(),
                        "credential": a.credential.id,
                    })),
                ctx,
            )
            .await;
            Ok(signed_in)
        })
        .await
    }

    /// The signed-in user's passkeys, oldest first.
    pub async fn passkeys(&self, auth: &AuthContext) -> Result<Vec<PasskeyInfo>> {
        crate::engine::observe::flow("passkeys", async move {
            self.user_passkeys(auth.user_id)
                .await?
                .iter()
                .map(PasskeyInfo::from_credential)
                .collect()
        })
        .await
    }

    /// Renames one of the signed-in user's passkeys. Another user's passkey, or an unknown id,
    /// is [`Error::NotFound`].
    pub async fn rename_passkey(
        &self,
        auth: &AuthContext,
        id: CredentialId,
        name: &str,
        ctx: &RequestContext,
    ) -> Result<PasskeyInfo> {
        crate::engine::observe::flow("rename_passkey", async move {
            let name = clean_name(name)?;
            for _ in 0..3 {
                let mut c = self
                    .own_credential(auth, id, CredentialKind::Passkey)
                    .await?;
                c.name = Some(name.clone());
                c.updated_at = self.now();
                match self.inner.credentials.update_credential(&c).await {
                    Ok(stored) => {
                        self.record(
                            Decision::success(AuditAction::PasskeyRenamed, "renamed")
                                .user(auth.user_id)
                                .session(auth.session_id)
                                .detail(json!({"credential": id})),
                            ctx,
                        )
                        .await;
                        return PasskeyInfo::from_credential(&stored);
                    }
                    Err(StoreError::VersionConflict) => continue,
                    Err(StoreError::NotFound) => return Err(Error::NotFound),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(Error::Conflict)
        })
        .await
    }

    /// Removes one of the signed-in user's passkeys. Needs a recent sign-in
    /// ([`Error::StepUpRequired`]), and is refused with [`Error::LastSignInMethod`] when it is
    /// the account's last way to sign in, even when two removals race.
    pub async fn delete_passkey(
        &self,
        auth: &AuthContext,
        id: CredentialId,
        ctx: &RequestContext,
    ) -> Result<()> {
        crate::engine::observe::flow("delete_passkey", async move {
            let user = self.user(auth.user_id).await?;
            let c = self
                .own_credential(auth, id, CredentialKind::Passkey)
                .await?;
            self.step_up(&user, auth, None, AuditAction::PasskeyRemoved, ctx)
                .await?;
            self.remove_sign_in_credential(auth, &c, AuditAction::PasskeyRemoved, ctx)
                .await?;
            self.record(
                Decision::success(AuditAction::PasskeyRemoved, "removed")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(json!({"credential": id})),
                ctx,
            )
            .await;
            Ok(())
        })
        .await
    }
}

fn passkey_detail(c: &Credential, p: &StoredPasskey, user_verified: bool) -> serde_json::Value {
    json!({
        "credential": c.id,
        "aaguid": uuid_text(&p.record.aaguid),
        "attestation_format": p.record.attestation_format,
        "attestation": attestation_text(p.attestation_type),
        "synced": p.record.backup_eligible,
        "user_verified": user_verified,
    })
}

fn rustls_unix_time(now: OffsetDateTime) -> ciam_webauthn::UnixTime {
    let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    ciam_webauthn::UnixTime::since_unix_epoch(StdDuration::from_secs(secs))
}
