//! Registration verification (L3 §7.1) on arbitrary `attestationObject` bytes
//! with a fixed, valid `clientDataJSON`: any input gives a registered credential
//! or a typed `Error`, never a panic. `rawId` is set to the credential id found
//! in the input when there is one, so verification reaches the attestation
//! statement instead of stopping at the id comparison.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use ciam_webauthn::{
    Challenge, Error, RegistrationResponse, RegistrationState, RelyingParty, UnixTime,
    base64url_encode, fuzzing,
};
use libfuzzer_sys::fuzz_target;

/// The RP of the W3C L3 test vectors (the seed corpus), accepting every
/// algorithm this crate supports.
struct Setup {
    rp: RelyingParty,
    state: RegistrationState,
    client_data_json: Vec<u8>,
}

fn setup() -> Result<Setup, Error> {
    let challenge = Challenge::from_bytes([0x5a; 32])?;
    let client_data_json = format!(
        r#"{{"type":"webauthn.create","challenge":"{}","origin":"https://example.org","crossOrigin":false}}"#,
        base64url_encode(challenge.as_bytes())
    )
    .into_bytes();
    let rp = RelyingParty::builder("example.org")
        .origin("https://example.org")
        .algorithms(fuzzing::ALL_ALGORITHMS)
        .build()?;
    Ok(Setup {
        rp,
        state: RegistrationState {
            challenge,
            user_handle: b"fuzz-user".to_vec(),
        },
        client_data_json,
    })
}

static SETUP: LazyLock<Result<Setup, Error>> = LazyLock::new(setup);

fuzz_target!(|data: &[u8]| {
    let Ok(setup) = SETUP.as_ref() else {
        // A broken harness must not pass silently.
        std::process::abort();
    };
    let response = RegistrationResponse {
        raw_id: fuzzing::attested_credential_id(data).unwrap_or_else(|| vec![0; 16]),
        client_data_json: setup.client_data_json.clone(),
        attestation_object: data.to_vec(),
        transports: Vec::new(),
    };
    // 2023-11-14: a fixed verification time, so runs are reproducible.
    let time = UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000));
    let _ = setup
        .rp
        .verify_registration_at(&response, &setup.state, time);
});
