//! The two ceremonies: registration (L3 §7.1) and authentication (L3 §7.2).

use ciborium::Value;
use rustls_pki_types::UnixTime;

use crate::Error;
use crate::attestation;
use crate::auth_data::{self, AuthData};
use crate::config::{CounterPolicy, RelyingParty, UserVerificationPolicy};
use crate::cose::PublicKey;
use crate::types::{
    AttestationType, AuthenticationResponse, Challenge, CredentialRecord, RegistrationResponse,
    ct_eq,
};

/// What the RP kept from `navigator.credentials.create()` options.
#[derive(Debug, Clone)]
pub struct RegistrationState {
    /// The challenge issued for this ceremony (already taken out of storage by the caller).
    pub challenge: Challenge,
    /// `user.id` sent in the options; stored in the record.
    pub user_handle: Vec<u8>,
}

/// A verified registration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RegisteredCredential {
    /// The record to store (after checking the credential id is not registered to any user).
    pub record: CredentialRecord,
    /// Attestation classification.
    pub attestation_type: AttestationType,
    /// The `x5c` chain (leaf first); empty for `none` and self attestation.
    /// Validated only when `attestation_type` is [`AttestationType::Basic`].
    pub attestation_chain: Vec<Vec<u8>>,
    /// DER of the configured trust anchor the chain verified to, under
    /// [`crate::AttestationTrust::Required`]; `None` otherwise.
    pub attestation_anchor: Option<Vec<u8>>,
    /// Whether UV was set.
    pub user_verified: bool,
}

/// What the RP kept from `navigator.credentials.get()` options.
#[derive(Debug, Clone)]
pub struct AuthenticationState {
    /// The challenge issued for this ceremony (already taken out of storage by the caller).
    pub challenge: Challenge,
    /// `allowCredentials` ids, when the options listed some.
    pub allow_credentials: Option<Vec<Vec<u8>>>,
    /// The user identified before the ceremony (user handle), if any. When `None`
    /// (discoverable-credential flow) the response must carry `userHandle`.
    pub user_handle: Option<Vec<u8>>,
}

/// A verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthenticationResult {
    /// The credential used.
    pub credential_id: Vec<u8>,
    /// The counter to store (unchanged from the stored one when a regression was flagged).
    pub new_sign_count: u32,
    /// True when the counter did not increase and [`CounterPolicy::Flag`] is configured.
    pub counter_regression: bool,
    /// Whether UV was set.
    pub user_verified: bool,
    /// Current BS flag.
    pub backup_state: bool,
    /// BS differs from the stored record (backup state drift): record it.
    pub backup_state_changed: bool,
}

impl AuthenticationResult {
    /// Updates a stored record with this result (sign count, BS, uvInitialized).
    pub fn apply_to(&self, record: &mut CredentialRecord) {
        record.sign_count = self.new_sign_count;
        record.backup_state = self.backup_state;
        if self.user_verified {
            record.uv_initialized = true;
        }
    }
}

/// (fmt, attStmt entries, authData bytes).
type AttestationObject = (String, Vec<(Value, Value)>, Vec<u8>);

fn parse_attestation_object(bytes: &[u8]) -> Result<AttestationObject, Error> {
    let (value, used) = auth_data::read_cbor_item(bytes)
        .map_err(|_| Error::Malformed("attestationObject is not CBOR"))?;
    if used != bytes.len() {
        return Err(Error::Malformed("trailing bytes after attestationObject"));
    }
    let Value::Map(entries) = value else {
        return Err(Error::Malformed("attestationObject is not a map"));
    };
    let mut fmt = None;
    let mut stmt = None;
    let mut auth = None;
    for (k, v) in entries {
        match (k.as_text(), v) {
            (Some("fmt"), Value::Text(t)) if fmt.is_none() => fmt = Some(t),
            (Some("attStmt"), Value::Map(m)) if stmt.is_none() => stmt = Some(m),
            (Some("authData"), Value::Bytes(b)) if auth.is_none() => auth = Some(b),
            (Some("fmt" | "attStmt" | "authData"), _) => {
                return Err(Error::Malformed(
                    "attestationObject member duplicated or mistyped",
                ));
            }
            _ => {}
        }
    }
    match (fmt, stmt, auth) {
        (Some(f), Some(s), Some(a)) => Ok((f, s, a)),
        _ => Err(Error::Malformed(
            "attestationObject lacks fmt, attStmt or authData",
        )),
    }
}

impl RelyingParty {
    fn check_flags(&self, data: &AuthData<'_>) -> Result<(), Error> {
        if data.rp_id_hash != self.rp_id_hash.as_slice() {
            return Err(Error::RpIdHash);
        }
        if !data.flags.up() {
            return Err(Error::UserPresence);
        }
        if self.user_verification == UserVerificationPolicy::Required && !data.flags.uv() {
            return Err(Error::UserVerification);
        }
        if data.flags.bs() && !data.flags.be() {
            return Err(Error::BackupFlags);
        }
        Ok(())
    }

    /// Verifies a registration response (L3 §7.1) and returns the record to store.
    ///
    /// The caller must still: take the challenge out of storage before calling
    /// (single use), and refuse the result if `record.id` is already registered
    /// to any user.
    ///
    /// Under [`crate::AttestationTrust::Required`] the attestation chain is
    /// validated at the current system time; use
    /// [`RelyingParty::verify_registration_at`] to pass the time explicitly.
    ///
    /// # Errors
    /// The [`Error`] variant naming the first failed step.
    pub fn verify_registration(
        &self,
        response: &RegistrationResponse,
        state: &RegistrationState,
    ) -> Result<RegisteredCredential, Error> {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.verify_registration_at(response, state, UnixTime::since_unix_epoch(since_epoch))
    }

    /// [`RelyingParty::verify_registration`] with an explicit verification time
    /// (the server's clock, never a client-supplied value): under
    /// [`crate::AttestationTrust::Required`], every certificate of the attestation
    /// chain must be valid at `time`. The time is unused under
    /// [`crate::AttestationTrust::Any`].
    ///
    /// # Errors
    /// The [`Error`] variant naming the first failed step.
    pub fn verify_registration_at(
        &self,
        response: &RegistrationResponse,
        state: &RegistrationState,
        time: UnixTime,
    ) -> Result<RegisteredCredential, Error> {
        let client_data_hash = crate::client_data::verify_client_data(
            self,
            &response.client_data_json,
            "webauthn.create",
            &state.challenge,
        )?;
        let (fmt, stmt, auth_bytes) = parse_attestation_object(&response.attestation_object)?;
        let data = auth_data::parse(&auth_bytes)?;
        self.check_flags(&data)?;
        let cred = data
            .attested
            .as_ref()
            .ok_or(Error::Malformed("no attested credential data"))?;
        if cred.credential_id != response.raw_id.as_slice() {
            return Err(Error::CredentialType);
        }
        let (key, alg) = PublicKey::from_cose(cred.public_key.clone(), &self.algorithms)?;
        let verified = attestation::verify(
            &fmt,
            &stmt,
            &attestation::Input {
                auth_data_bytes: &auth_bytes,
                auth_data: &data,
                cred,
                key: &key,
                cred_alg: alg,
                client_data_hash: &client_data_hash,
                trust: &self.attestation_trust,
                android_key: self.android_key,
                time,
            },
        )?;
        Ok(RegisteredCredential {
            record: CredentialRecord {
                id: cred.credential_id.to_vec(),
                user_handle: state.user_handle.clone(),
                public_key_cose: cred.public_key_cose.to_vec(),
                alg: alg.cose_id(),
                sign_count: data.sign_count,
                transports: response.transports.clone(),
                backup_eligible: data.flags.be(),
                backup_state: data.flags.bs(),
                uv_initialized: data.flags.uv(),
                attestation_format: fmt,
                aaguid: cred.aaguid,
            },
            attestation_type: verified.kind,
            attestation_chain: verified.chain,
            attestation_anchor: verified.anchor,
            user_verified: data.flags.uv(),
        })
    }

    /// Verifies an authentication response (L3 §7.2) against the stored record.
    ///
    /// The caller looks the record up by `response.raw_id`, takes the challenge
    /// out of storage (single use), and on success stores the updated record
    /// ([`AuthenticationResult::apply_to`]).
    ///
    /// # Errors
    /// The [`Error`] variant naming the first failed step.
    pub fn verify_authentication(
        &self,
        response: &AuthenticationResponse,
        state: &AuthenticationState,
        record: &CredentialRecord,
    ) -> Result<AuthenticationResult, Error> {
        if !ct_eq(&response.raw_id, &record.id) {
            return Err(Error::NotAllowed);
        }
        if let Some(allowed) = &state.allow_credentials
            && !allowed
                .iter()
                .any(|id| id.as_slice() == response.raw_id.as_slice())
        {
            return Err(Error::NotAllowed);
        }
        if let Some(user) = &state.user_handle
            && !ct_eq(user, &record.user_handle)
        {
            return Err(Error::NotAllowed);
        }
        match &response.user_handle {
            Some(h) => {
                if !ct_eq(h, &record.user_handle) {
                    return Err(Error::UserHandle);
                }
            }
            None => {
                if state.user_handle.is_none() {
                    return Err(Error::UserHandle);
                }
            }
        }
        let client_data_hash = crate::client_data::verify_client_data(
            self,
            &response.client_data_json,
            "webauthn.get",
            &state.challenge,
        )?;
        let data = auth_data::parse(&response.authenticator_data)?;
        self.check_flags(&data)?;
        if data.flags.be() != record.backup_eligible {
            return Err(Error::BackupFlags);
        }
        if crate::config::CoseAlgorithm::from_cose_id(record.alg)
            .is_none_or(|a| !self.algorithms.contains(&a))
        {
            return Err(Error::Algorithm(record.alg));
        }
        let (key, alg) = PublicKey::from_stored_cose(&record.public_key_cose, &self.algorithms)
            .map_err(|e| match e {
                Error::Algorithm(a) => Error::Algorithm(a),
                _ => Error::InvalidKey("stored public key unreadable"),
            })?;
        if alg.cose_id() != record.alg {
            return Err(Error::InvalidKey("stored alg differs from the key's alg"));
        }
        let mut msg = Vec::with_capacity(response.authenticator_data.len() + 32);
        msg.extend_from_slice(&response.authenticator_data);
        msg.extend_from_slice(&client_data_hash);
        key.verify(&msg, &response.signature)?;
        let stored = record.sign_count;
        let received = data.sign_count;
        let regression = (stored != 0 || received != 0) && received <= stored;
        if regression && self.counter_policy == CounterPolicy::Refuse {
            return Err(Error::CounterRegression { stored, received });
        }
        Ok(AuthenticationResult {
            credential_id: record.id.clone(),
            new_sign_count: if regression { stored } else { received },
            counter_regression: regression,
            user_verified: data.flags.uv(),
            backup_state: data.flags.bs(),
            backup_state_changed: data.flags.bs() != record.backup_state,
        })
    }
}
