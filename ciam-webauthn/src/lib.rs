//! Passkeys for ciam: the verification core of a WebAuthn Level 3 relying party.
//!
//! Given what the RP stored for a ceremony and what the client sent, this crate
//! performs the relying-party steps of L3 §7.1 (registration) and §7.2
//! (authentication) and returns a typed result or an [`Error`] naming the failed
//! step. It never panics on any input. There is no I/O, storage or HTTP here.
//!
//! # Options
//!
//! [`RelyingParty::creation_options`] and [`RelyingParty::request_options`]
//! build the options the browser needs, as the L3 JSON dictionaries
//! [`CreationOptionsJson`] (`PublicKeyCredentialCreationOptionsJSON`) and
//! [`RequestOptionsJson`] (`PublicKeyCredentialRequestOptionsJSON`): serialize
//! them with serde and pass them to `PublicKeyCredential.parseCreationOptionsFromJSON()`
//! / `parseRequestOptionsFromJSON()`. They follow the configuration:
//!
//! - `rp`: [`RelyingParty::rp_id`] and [`RelyingParty::name`]
//!   ([`RelyingPartyBuilder::name`], default the RP ID);
//! - `pubKeyCredParams`: the configured algorithms, in order;
//! - `userVerification` (and `authenticatorSelection.userVerification`): the
//!   [`UserVerificationPolicy`];
//! - `authenticatorSelection.residentKey` / `requireResidentKey`: the
//!   [`ResidentKey`] argument;
//! - `attestation`: `"none"` under [`AttestationTrust::Any`], `"direct"` under
//!   [`AttestationTrust::Required`];
//! - `extensions`: `{"credProps": true}` for registration;
//! - `excludeCredentials` / `allowCredentials`: [`CredentialDescriptor`]s
//!   (`From<&CredentialRecord>`); an empty allow list is omitted, which asks for
//!   a discoverable credential.
//!
//! Binary members (`challenge`, `user.id`, credential ids) are unpadded
//! base64url. The fields are public, so hints, an authenticator attachment or
//! more extensions can be added before serializing.
//!
//! # What is verified
//!
//! | step | registration | authentication |
//! |---|---|---|
//! | `clientDataJSON` parsed as JSON (extra members accepted) | yes | yes |
//! | `type` (`webauthn.create` / `webauthn.get`) | yes | yes |
//! | challenge (decoded bytes, constant-time compare) | yes | yes |
//! | origin in the configured list (exact match, native-app origins allowed) | yes | yes |
//! | `crossOrigin` / `topOrigin` per [`CrossOriginPolicy`] (deny by default) | yes | yes |
//! | authenticator data fully parsed; truncation, trailing bytes, ED without extensions refused | yes | yes |
//! | `rpIdHash == SHA-256(rp_id)` | yes | yes |
//! | UP set; UV set when [`UserVerificationPolicy::Required`] | yes | yes |
//! | BS implies BE | yes | yes |
//! | BE equals the stored BE | - | yes |
//! | credential id <= 1023 bytes and equal to `rawId` | yes | - |
//! | key parses (coset), alg allowed, ES256 point on P-256, ES384 point on P-384, ES512 point on P-521, Ed25519 32 bytes, RSA 2048..8192 bits (see [Algorithms](#algorithms)) | yes | yes |
//! | attestation `none` (empty attStmt), `packed` self, `packed` x5c, `fido-u2f` | yes | - |
//! | attestation `apple` (§8.8): nonce extension = SHA-256(authData \|\| clientDataHash), leaf key = credential key | yes | - |
//! | attestation `android-key` (§8.4): signature, leaf key = credential key, attestationChallenge, no allApplications, origin GENERATED and purpose SIGN from the lists [`AndroidKeyAuthorization`] names | yes | - |
//! | attestation `tpm` (§8.3): ver 2.0, pubArea key = credential key, certInfo magic/type/extraData/attested name, AIK signature (incl. RS1), AIK certificate requirements | yes | - |
//! | x5c chain to a configured anchor at a given time (under [`AttestationTrust::Required`]) | yes | - |
//! | credential in `allowCredentials`, owned by the identified user, `userHandle` matches | - | yes |
//! | signature over `authenticatorData || SHA-256(clientDataJSON)` | - | yes |
//! | sign counter regression refused (or flagged, [`CounterPolicy`]) | - | yes |
//!
//! `clientDataJSON.tokenBinding` is **ignored**, whatever its value. Token
//! Binding was verified in L1/L2 (§7.1 step 9: `status` must match the TLS
//! connection), but L3 drops that step and keeps the member only as reserved;
//! no current browser sends it and this crate never binds to TLS, so a check
//! would protect nothing and would refuse real responses from older clients.
//! The two py_webauthn fido-u2f payloads that carry it are accepted: one with
//! `"tokenBinding":"unused"` (py_webauthn accepts it too), and one with
//! `{"status":"not-supported"}`, a status L1/L2 never defined, which py_webauthn
//! refuses and the vectors file leaves to the implementation
//! (`reject_or_accept_documented`; `tests/real_authenticators.rs`).
//!
//! # Input encoding
//!
//! [`RegistrationResponse::from_json`] and [`AuthenticationResponse::from_json`]
//! read binary members as base64url (L3 JSON serialization), padded or not. A
//! member containing `+` or `/` is read in the standard base64 alphabet instead:
//! some front-ends serialize with `btoa()` rather than `toJSON()` (the Windows
//! Hello TPM payloads of py_webauthn's tests were captured that way). Only
//! decoded bytes are checked, so this opens nothing; one value must keep to one
//! alphabet. The challenge inside `clientDataJSON` is written by the browser
//! and must be base64url.
//!
//! Attestation: `packed` with `x5c`, `fido-u2f`, `android-key` and `tpm`
//! signatures are verified with the leaf certificate (which must not be a CA, and
//! for `packed` and `tpm` whose FIDO AAGUID extension, if any, must match);
//! `apple` is checked through its nonce extension and leaf key. All five
//! certificate formats (including `apple`, an anonymization CA) are then
//! classified the same way, according to the [`AttestationTrust`] policy
//! (SECURITY-CHECKLIST WA-7.1, ASVS 6.7.1; anchors come from the integrator's
//! configuration only):
//!
//! - [`AttestationTrust::Any`] (default): the chain is **not** validated; the
//!   result is [`AttestationType::BasicUnverified`] (treat the AAGUID as a claim).
//!   `none` and self attestation are accepted and recorded as such.
//! - [`AttestationTrust::Required`]: the `x5c` chain (leaf, then the `attStmt`
//!   intermediates) must verify with rustls-webpki to one of the configured
//!   anchor certificates at the verification time (the server clock in
//!   [`RelyingParty::verify_registration`], or an explicit [`UnixTime`] in
//!   [`RelyingParty::verify_registration_at`]); any extended key usage (or none)
//!   is accepted. The result is [`AttestationType::Basic`] with the anchor in
//!   [`RegisteredCredential::attestation_anchor`]. `none` and self attestation
//!   are refused with [`Error::UntrustedAttestation`], as is a chain that does
//!   not reach an anchor, or a certificate outside its validity period.
//!   Revocation is not checked.
//!
//! Format notes:
//!
//! - `android-key`: `allApplications` is refused in either authorization
//!   list. `origin` (`KM_ORIGIN_GENERATED`) and `purpose` (`KM_PURPOSE_SIGN`)
//!   are read from the lists [`AndroidKeyAuthorization`] names. The default,
//!   [`AndroidKeyAuthorization::UnionIfStated`], reads both lists (L3's
//!   "otherwise use the union") and does not hold an unstated value against
//!   the key, so the W3C Level 3 test vector, whose lists are empty, verifies
//!   as the specification says. A stated wrong value is always refused.
//!   [`AndroidKeyAuthorization::TeeEnforced`] accepts only keys whose
//!   trusted execution environment states both values; choose it when the
//!   attestation must prove a hardware key.
//! - `tpm`: the AIK certificate must be version 3 with an empty subject, a
//!   subject alternative name whose directoryName holds the TPM manufacturer,
//!   model and version attributes, the `tcg-kp-AIKCertificate` (2.23.133.8.3)
//!   extended key usage, and no CA basic constraint. The manufacturer value is
//!   not compared with a vendor list. Statement algorithms: ES256, ES384,
//!   EdDSA, RS256 and RS1 (-65535, RSASSA-PKCS1-v1_5 with SHA-1, still sent by
//!   Windows Hello TPMs; accepted for the statement signature only).
//!
//! `android-safetynet`, packed ECDAA and unknown formats are refused with
//! [`Error::UnsupportedFormat`].
//!
//! # Algorithms
//!
//! The default list is ES256, EdDSA (Ed25519) and RS256. ES384 and ES512 are
//! supported but offered (`pubKeyCredParams`) and accepted only when listed
//! with [`RelyingPartyBuilder::algorithms`]. Anything else, or a supported
//! algorithm not in the configured list, is refused with [`Error::Algorithm`]
//! carrying the COSE identifier, at registration and for a stored record alike.
//!
//! | algorithm | COSE | default list | backend | credential key checks | signature |
//! |---|---|---|---|---|---|
//! | ES256 (P-256, SHA-256) | -7 | yes | ring | EC2, crv P-256, x and y 32 bytes, coordinates below p, point on the curve | ASN.1 DER |
//! | EdDSA (Ed25519) | -8 | yes | ring | OKP, crv Ed25519, 32 bytes | 64 bytes |
//! | RS256 (PKCS#1 v1.5, SHA-256) | -257 | yes | ring | 2048..8192 bits, odd modulus, odd e >= 3 | PKCS#1 |
//! | ES384 (P-384, SHA-384) | -35 | no (opt-in) | ring | EC2, crv P-384, x and y 48 bytes, coordinates below p, point on the curve | ASN.1 DER |
//! | ES512 (P-521, SHA-512) | -36 | no (opt-in) | RustCrypto `p521` 0.14 | EC2, crv P-521, x and y 66 bytes, coordinates below p, point on the curve | ASN.1 DER, r and s in [1, n) |
//! | Ed448 | -53 | refused | - | - | - |
//! | ML-DSA-44/65/87 | -48/-49/-50 | refused (post-quantum; no implementation here) | - | - | - |
//!
//! A key that breaks a check gives [`Error::InvalidKey`]; an assertion
//! signature that does not verify (including malformed DER, or an ES512 `r` or
//! `s` equal to 0 or not below the group order n) gives [`Error::Signature`]
//! ([`Error::AttestationStatement`] for a self-attestation signature). Stored keys are not re-checked on the
//! curve when read: ring and `p521` refuse an off-curve point when verifying.
//!
//! ES512 credentials are verified as credential keys (assertions, `none`
//! attestation, `packed` self attestation, and `packed` x5c whose statement is
//! signed with a supported certificate algorithm, as in the W3C vector). An
//! attestation statement *signed* with ES512 by an x5c certificate is refused
//! with [`Error::AttestationStatement`] (rustls-webpki's ring backend has no
//! P-521). The `apple`, `android-key` and `tpm` formats, which compare the
//! credential key with a certificate or TPM key (and, for `android-key`, verify
//! the statement with it), do not handle P-521: an ES512 credential in those
//! formats is refused with [`Error::AttestationStatement`].
//!
//! # What the caller must do
//!
//! - Generate a [`Challenge`] per ceremony, store it server-side bound to the
//!   session, **single-use** (delete it before verifying, so a replay finds
//!   nothing) and with a short TTL. Replay protection is the caller's job.
//! - After registration, refuse the credential if its id is already registered
//!   to **any** user, then store the [`CredentialRecord`].
//! - For authentication, look up the record by `rawId`, pass the identified user
//!   (if any) and `allowCredentials`, and on success store the updated record
//!   ([`AuthenticationResult::apply_to`]); record `backup_state_changed` and,
//!   under [`CounterPolicy::Flag`], `counter_regression`.
//!
//! # Features
//!
//! | feature | default | what |
//! |---|---|---|
//! | (none yet) | | |
//!
//! Every algorithm of the table above is compiled in; ES384 and ES512 are
//! switched on per relying party at run time
//! ([`RelyingPartyBuilder::algorithms`]), not by a cargo feature.
//!
//! # Example
//!
//! ```no_run
//! use ciam_webauthn::{
//!     AuthenticationResponse, AuthenticationState, Challenge, CredentialDescriptor,
//!     RegistrationResponse, RegistrationState, RelyingParty, ResidentKey, UserEntity,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rp = RelyingParty::builder("example.org")
//!     .name("Example")
//!     .origin("https://example.org")
//!     .origin("android:apk-key-hash:xT5ZucZJ9N7oq3j3awG8J-7Ssbd28sxhsMlBAMMsQjA")
//!     .build()?;
//!
//! // Registration: send the options to the browser, keep the challenge server-side.
//! let challenge = Challenge::generate()?;
//! let user = UserEntity {
//!     id: b"user-42".to_vec(),
//!     name: "alice@example.org".into(),
//!     display_name: "Alice".into(),
//! };
//! let options = rp.creation_options(&challenge, &user, &[], ResidentKey::Required, 300_000);
//! let options_json = serde_json::to_string(&options)?; // to the browser
//! # let _ = options_json;
//! # let json_from_browser = "";
//! let response = RegistrationResponse::from_json(json_from_browser)?;
//! let registered = rp.verify_registration(
//!     &response,
//!     &RegistrationState { challenge, user_handle: b"user-42".to_vec() },
//! )?;
//! let mut record = registered.record; // check id uniqueness, then store
//!
//! // Authentication (discoverable: no allow list, so the response carries userHandle).
//! let challenge = Challenge::generate()?;
//! let options = rp.request_options(&challenge, &[], 300_000);
//! # let _ = (options, CredentialDescriptor::from(&record));
//! # let assertion_json = "";
//! let response = AuthenticationResponse::from_json(assertion_json)?;
//! let result = rp.verify_authentication(
//!     &response,
//!     &AuthenticationState { challenge, allow_credentials: None, user_handle: None },
//!     &record,
//! )?;
//! result.apply_to(&mut record); // store it
//! # Ok(())
//! # }
//! ```

mod attestation;
mod auth_data;
mod ceremony;
mod client_data;
mod config;
mod cose;
mod der;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod options;
mod tpm;
mod types;
mod weierstrass;

pub use auth_data::MAX_CREDENTIAL_ID_LEN;
pub use ceremony::{
    AuthenticationResult, AuthenticationState, RegisteredCredential, RegistrationState,
};
pub use config::{
    AndroidKeyAuthorization, AttestationTrust, CoseAlgorithm, CounterPolicy, CrossOriginPolicy,
    RelyingParty, RelyingPartyBuilder, UserVerificationPolicy,
};
pub use error::Error;
pub use options::{
    AttestationConveyance, AuthenticatorSelection, CreationOptionsJson, CredentialDescriptor,
    CredentialParameters, RequestOptionsJson, ResidentKey, RpEntity, UserEntity,
};
/// Verification time for [`RelyingParty::verify_registration_at`] (re-exported
/// from `rustls-pki-types`).
pub use rustls_pki_types::UnixTime;
pub use types::{
    AttestationType, AuthenticationResponse, Challenge, CredentialRecord, MIN_CHALLENGE_LEN,
    RegistrationResponse, base64url_encode,
};
