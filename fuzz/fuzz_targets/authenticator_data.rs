//! The authenticator-data parser (L3 §6.1), with the COSE key of attested
//! credential data: any input gives `Ok` or a typed `Error`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ciam_webauthn::fuzzing::parse_authenticator_data(data);
});
