//! Passkey sign-in cost: `RelyingParty::verify_authentication` on a prepared
//! assertion (clientDataJSON parse and checks, authenticator-data parse, COSE
//! key read from the stored record, signature, counter) beside the bare
//! `ring::signature::UnparsedPublicKey::verify` of the same message and
//! signature, for ES256 (P-256, DER signature), Ed25519 and RS256
//! (RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit modulus, e = 65537).
//!
//! The ES256 and Ed25519 keys are made here with ring (fresh keys each run).
//! ring cannot generate RSA keys, so RS256 uses [`RSA_2048_KEY`], a key made
//! once for this bench. Both sides verify exactly the same bytes. The raw side
//! is given the message `authenticatorData || SHA-256(clientDataJSON)`
//! ready-made and the public key in ring's form (SEC1 point, Ed25519 bytes,
//! DER `RSAPublicKey`), so the ratio is the whole RP-side overhead.
//!
//! Run: `cargo bench -p ciam-benches --bench webauthn` (a criterion filter
//! such as `rs256` selects the groups; the paired measurement and the
//! allocation count of every algorithm run first whatever the filter).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::System;
use std::hint::black_box;

use ciam_benches::allocations_per_op;
use stats_alloc::StatsAlloc;

use ciam_webauthn::{
    AuthenticationResponse, AuthenticationState, Challenge, CoseAlgorithm, CredentialRecord,
    RelyingParty, base64url_encode,
};
use criterion::{Criterion, criterion_group, criterion_main};
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &stats_alloc::INSTRUMENTED_SYSTEM;

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
    /// The public key in ring's encoding (SEC1 uncompressed, the 32 Ed25519
    /// bytes, or the DER `RSAPublicKey`).
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

/// COSE_Key for a 2048-bit RSA key: kty RSA, alg RS256, n (256 bytes), e.
fn cose_rs256(n: &[u8], e: &[u8]) -> Vec<u8> {
    assert_eq!(n.len(), 256);
    let mut cose = vec![
        0xa4, 0x01, 0x03, 0x03, 0x39, 0x01, 0x00, 0x20, 0x59, 0x01, 0x00,
    ];
    cose.extend_from_slice(n);
    cose.extend_from_slice(&[0x21, 0x40 | u8::try_from(e.len()).unwrap()]);
    cose.extend_from_slice(e);
    cose
}

/// A 2048-bit RSA private key (PKCS#1 `RSAPrivateKey`, DER, hex), made for this
/// bench only with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`.
/// It signs nothing but the bench's own assertion; it is not a secret.
const RSA_2048_KEY: &str = concat!(
    "308204a30201000282010100a3193dc9a6fe090b7bfd7ac771efac838a3367454e608a1a70933ea52b21f4a95e9fe50d",
    "99581e4ac6bec2fe2cfc8b48a2eddc9892100f737d68cb4b9902e8f4d55641a0414efb29b93bc874e4a754dbc1258d8c",
    "873ce8e4d85382bcd7c172608e6a21fd2a0291069ff43008a69f4ad4d9623c5ed382953ddd0d765c0e21bec4865354be",
    "257f6079c66d82c53774fb75011787a7745699613d780bb5c0f21425278cb4c792841e699f6c7bd068961d95e3c56b0b",
    "42a47fb6a060142677ed9eb620194d2f01b078b94eae29caa41b094a2ff2d17310ffd537583fb33411dde6601570817a",
    "3691d959db3cc3f3b6e702202e857e0662af8058bec4f02e87bc6cdf0203010001028201000e76790bae32bdb39681a2",
    "47185be404e016f1d3ec00d48e46a84ff84e8c5ac9401a56b1ef84a85f0223bd5fd3b66b557c1932a416e3b4b30d8e62",
    "e4a7c361cc0034ff69ca10ca65e7469d5e7c3e3860aa4e7db055f7b9413dcb9dfec7f52002deee1b687b36b20c8fd794",
    "00d861acbd962f47623348539aa24504d761eb6d2294ca7fe5e78ac25e31c757b32102ea90193d4bede2f9553cd9763f",
    "cad4fb43d664e299991cfed20b9cc3807b4eb34ac349b31a8f1c6ccfafe94b87897ff7e401941fd618d79a881ba89daf",
    "b8befe433e21cd66c8e8d7a208055d87183a16afda920bac1d50fb984e587bfb0475dd4fa57c42384a39ed53d69df6d0",
    "ec54c42bdd02818100e175b07040d97822130a02c26a56c34d661f46e2e455a66a7ba568e6158dc2f2b8a4dae732e024",
    "ce56309ac689f785f3a0e719f6eb15246af9cc7dedc3b91abb6838d6e5bfaf8dc4c1ffd37b2dccba71de8bf4d323b116",
    "0f32f42245c4649355f336bd6c7deea2e11ea6ce7213a41d297894b41ecfc3261a9a3358d4da56d97302818100b9310b",
    "1419f6cf7a62557e2f20fd062275cbb03ad211e63405cf7f47e4bdd05d325078d2d88ff3c5d8ec0128ead12fa07a933e",
    "3d0600f5495c603b308de870f90f84ea4918456ddd804f42d7cfaf248fa1ecbfef1fd4ee2c8e27cc7f81e03aa5704025",
    "67e918dbf345c9fb90e26afadda66cfcb824d6a559f830d12903de33e5028181008eb67c74d1d7d65f5b45def149769a",
    "31880f0c43dadd0c7622c6555c2f1088f23346c6f9ca0e6fbddc78efbff4dd25814dbc7b86fccf6939fddd1f693d9712",
    "00c6bc13eb6226b1ca7632859f57225c726fb88fc486b7358b71696fb851d4881ec3d1469e4228a8196fd98e9c4f2a76",
    "fb25449baf553be606b8ccffd1dc5355590281802623a48d723f734158291540ad818e96e03d9fc0ad6cc4452881304c",
    "651e76600b31a9807adb42b017599b6f8ad4a4035fdb1d3142204663e2636b2d37bc8c2faef387b0a010046d5eb47426",
    "affdf9009faf7b63cae1765fb4b31b9992ecd4072853fda025d059d4032672e9c6c7937cbc7eab995cf4dbbee8af5d14",
    "1e58cfc502818022b15859d50a2819b1d19489445e5c5ee9a4eb9208ae07501451a755e9db15e6582c551507c6e6e7d0",
    "328b9c0602ee87d6ef6e7d6cbe9b3ef8037bc34229f3de676a12070a404b7719a609a8e7f331dcbde8315f3807456d62",
    "4fe5025c44999b404d442331bf38146f49f21a55d19ba341b2315a7505447276cb03d80f740570",
);

fn from_hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
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
        CoseAlgorithm::Rs256 => {
            let pair = signature::RsaKeyPair::from_der(&from_hex(RSA_2048_KEY)).unwrap();
            assert_eq!(pair.public().modulus_len(), 256);
            let components = signature::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(&signature::RSA_PKCS1_SHA256, &rng, &message, &mut sig)
                .unwrap();
            (
                pair.public().as_ref().to_vec(),
                cose_rs256(&components.n, &components.e),
                sig,
            )
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
        CoseAlgorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
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
        ("rs256", CoseAlgorithm::Rs256),
    ] {
        let p = prepare(alg);
        paired(name, alg, &p);
        // Heap allocations per verification, on both sides (printed whatever the filter).
        let raw = allocations_per_op(GLOBAL, 1_000, || raw_verify(alg, &p));
        let ours = allocations_per_op(GLOBAL, 1_000, || {
            black_box(
                p.rp.verify_authentication(&p.response, &p.state, &p.record)
                    .unwrap(),
            );
        });
        println!("allocations {name}: ring {raw:.1}/op, verify_authentication {ours:.1}/op");
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
