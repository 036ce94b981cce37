//! Passkey sign-in cost: `RelyingParty::verify_authentication` on a prepared
//! assertion (clientDataJSON parse and checks, authenticator-data parse, COSE
//! key read from the stored record, signature, counter) beside the bare
//! `ring::signature::UnparsedPublicKey::verify` of the same message and
//! signature, for ES256 (P-256, DER signature) and Ed25519.
//!
//! The keys and assertions are made here with ring (fresh keys each run); both
//! sides verify exactly the same bytes. The raw side is given the message
//! `authenticatorData || SHA-256(clientDataJSON)` ready-made and the public key
//! in ring's form, so the ratio is the whole RP-side overhead.
//!
//! Run: `cargo bench -p ciam-benches --bench webauthn`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use ciam_webauthn::{
    AuthenticationResponse, AuthenticationState, Challenge, CoseAlgorithm, CredentialRecord,
    RelyingParty, base64url_encode,
};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};

const RP_ID: &str = "example.org";
const ORIGIN: &str = "https://example.org";

/// One prepared ceremony: what the RP verifies, and what raw ring verifies.
struct Prepared {
    rp: RelyingParty,
    response: AuthenticationResponse,
    state: AuthenticationState,
    record: CredentialRecord,
    /// `authenticatorData || SHA-256(clientDataJSON)`.
    message: Vec<u8>,
    /// The public key in ring's encoding (SEC1 uncompressed, or the 32 Ed25519 bytes).
    public_key: Vec<u8>,
}

/// COSE_Key (RFC 9053) for an uncompressed SEC1 P-256 point: kty EC2, alg ES256, crv P-256, x, y.
fn cose_es256(point: &[u8]) -> Vec<u8> {
    let mut cose = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21, 0x58, 0x20];
    cose.extend_from_slice(&point[1..33]);
    cose.extend_from_slice(&[0x22, 0x58, 0x20]);
    cose.extend_from_slice(&point[33..65]);
    cose
}

/// COSE_Key for an Ed25519 public key: kty OKP, alg EdDSA, crv Ed25519, x.
fn cose_ed25519(key: &[u8]) -> Vec<u8> {
    let mut cose = vec![0xa4, 0x01, 0x01, 0x03, 0x27, 0x20, 0x06, 0x21, 0x58, 0x20];
    cose.extend_from_slice(key);
    cose
}

fn prepare(alg: CoseAlgorithm) -> Prepared {
    let rng = SystemRandom::new();
    let rp = RelyingParty::builder(RP_ID).origin(ORIGIN).build().unwrap();
    let challenge = Challenge::generate().unwrap();
    let client_data_json = format!(
        r#"{{"type":"webauthn.get","challenge":"{}","origin":"{ORIGIN}","crossOrigin":false}}"#,
        challenge.to_base64url()
    )
    .into_bytes();
    // rpIdHash || flags (UP, UV) || signCount 1
    let mut authenticator_data = ring::digest::digest(&ring::digest::SHA256, RP_ID.as_bytes())
        .as_ref()
        .to_vec();
    authenticator_data.extend_from_slice(&[0x05, 0, 0, 0, 1]);
    let mut message = authenticator_data.clone();
    message
        .extend_from_slice(ring::digest::digest(&ring::digest::SHA256, &client_data_json).as_ref());

    let (public_key, public_key_cose, signature) = match alg {
        CoseAlgorithm::Es256 => {
            let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                &rng,
            )
            .unwrap();
            let pair = signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                pkcs8.as_ref(),
                &rng,
            )
            .unwrap();
            let public = pair.public_key().as_ref().to_vec();
            let sig = pair.sign(&rng, &message).unwrap().as_ref().to_vec();
            (public.clone(), cose_es256(&public), sig)
        }
        CoseAlgorithm::EdDsa => {
            let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            let public = pair.public_key().as_ref().to_vec();
            let sig = pair.sign(&message).as_ref().to_vec();
            (public.clone(), cose_ed25519(&public), sig)
        }
        other => panic!("not benchmarked: {other:?}"),
    };

    let credential_id = vec![0x42; 16];
    let user_handle = b"user-42".to_vec();
    let response = AuthenticationResponse::from_json(&format!(
        r#"{{"id":"{id}","rawId":"{id}","type":"public-key","response":{{"clientDataJSON":"{cdj}","authenticatorData":"{ad}","signature":"{sig}","userHandle":"{uh}"}}}}"#,
        id = base64url_encode(&credential_id),
        cdj = base64url_encode(&client_data_json),
        ad = base64url_encode(&authenticator_data),
        sig = base64url_encode(&signature),
        uh = base64url_encode(&user_handle),
    ))
    .unwrap();
    let record = CredentialRecord {
        id: credential_id,
        user_handle,
        public_key_cose,
        alg: alg.cose_id(),
        sign_count: 0,
        transports: vec!["internal".to_owned()],
        backup_eligible: false,
        backup_state: false,
        uv_initialized: true,
        attestation_format: "none".to_owned(),
        aaguid: [0; 16],
    };
    let state = AuthenticationState {
        challenge,
        allow_credentials: None,
        user_handle: None,
    };
    let prepared = Prepared {
        rp,
        response,
        state,
        record,
        message,
        public_key,
    };
    // Both sides must accept what they are timed on.
    let result = prepared
        .rp
        .verify_authentication(&prepared.response, &prepared.state, &prepared.record)
        .unwrap();
    assert_eq!(result.new_sign_count, 1);
    raw_verify(alg, &prepared);
    prepared
}

fn raw_verify(alg: CoseAlgorithm, p: &Prepared) {
    let algorithm: &dyn signature::VerificationAlgorithm = match alg {
        CoseAlgorithm::Es256 => &signature::ECDSA_P256_SHA256_ASN1,
        _ => &signature::ED25519,
    };
    signature::UnparsedPublicKey::new(algorithm, black_box(&p.public_key))
        .verify(black_box(&p.message), black_box(&p.response.signature))
        .unwrap();
}

/// Paired measurement, robust to a shared machine's drift: `ROUNDS` rounds,
/// each timing `BATCH` raw verifications then `BATCH` of ours back to back;
/// prints the median and quartiles of the per-round ratio, and the fastest
/// round of each side (ns/op).
fn paired(name: &str, alg: CoseAlgorithm, p: &Prepared) {
    const ROUNDS: usize = 101;
    const BATCH: u32 = 100;
    let time = |f: &dyn Fn()| {
        let start = std::time::Instant::now();
        for _ in 0..BATCH {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(BATCH)
    };
    let ours = || {
        black_box(
            p.rp.verify_authentication(
                black_box(&p.response),
                black_box(&p.state),
                black_box(&p.record),
            )
            .unwrap(),
        );
    };
    let (mut ratios, mut raw_min, mut ours_min) = (Vec::new(), f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        let r = time(&|| raw_verify(alg, p));
        let o = time(&ours);
        raw_min = raw_min.min(r);
        ours_min = ours_min.min(o);
        ratios.push(o / r);
    }
    ratios.sort_by(f64::total_cmp);
    let q = |f: f64| ratios[((ratios.len() - 1) as f64 * f) as usize];
    println!(
        "paired {name}: ours/ring median {:.3} (quartiles {:.3}..{:.3}, {ROUNDS} rounds of {BATCH}); \
         fastest round ring {raw_min:.0} ns/op, ours {ours_min:.0} ns/op ({:.3})",
        q(0.5),
        q(0.25),
        q(0.75),
        ours_min / raw_min
    );
}

fn assertion(c: &mut Criterion) {
    for (name, alg) in [
        ("es256", CoseAlgorithm::Es256),
        ("ed25519", CoseAlgorithm::EdDsa),
    ] {
        let p = prepare(alg);
        paired(name, alg, &p);
        let mut group = c.benchmark_group(format!("webauthn_assertion_{name}"));
        // Interleave the two so machine drift hits both alike.
        for round in 1..=2 {
            group.bench_function(format!("ring_verify/{round}"), |b| {
                b.iter(|| raw_verify(alg, &p))
            });
            group.bench_function(format!("verify_authentication/{round}"), |b| {
                b.iter(|| {
                    p.rp.verify_authentication(
                        black_box(&p.response),
                        black_box(&p.state),
                        black_box(&p.record),
                    )
                    .unwrap()
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, assertion);
criterion_main!(benches);
