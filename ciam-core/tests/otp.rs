//! Tests of the OTP primitives: RFC 4226 / RFC 6238 known answers, verification rules
//! (window, replay, code format), RFC 4648 base32 vectors, otpauth:// URIs, sealing of secrets,
//! recovery codes and the QR renderers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU8, Ordering};

use ciam_core::otp::{
    DEFAULT_RECOVERY_CODES, EnrolmentQr, HotpConfig, OtpAlgorithm, OtpAuthUri, OtpError, OtpSecret,
    RECOVERY_CODE_BITS, RecoveryCodeHash, RecoveryCodes, SealingKey, SecretBox, TotpConfig,
    UriError, base32, verify_recovery_code,
};
use ciam_core::rng::{RandomError, SecureRandom, SystemRandom};

/// Repeats one byte; for tests only.
#[derive(Debug)]
struct Fixed(u8);

impl SecureRandom for Fixed {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        dest.fill(self.0);
        Ok(())
    }
}

/// Counts up from a start byte; for tests only.
#[derive(Debug)]
struct Counter(AtomicU8);

impl SecureRandom for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        for b in dest {
            *b = self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Always fails.
#[derive(Debug)]
struct Broken;

impl SecureRandom for Broken {
    fn fill(&self, _dest: &mut [u8]) -> Result<(), RandomError> {
        Err(RandomError)
    }
}

fn rfc_secret(algorithm: OtpAlgorithm) -> OtpSecret {
    // RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890"; the SHA-256 and
    // SHA-512 seeds repeat it to 32 and 64 bytes (the errata-corrected seeds of the reference
    // implementation).
    let seed: &[u8] = match algorithm {
        OtpAlgorithm::Sha1 => b"12345678901234567890",
        OtpAlgorithm::Sha256 => b"12345678901234567890123456789012",
        OtpAlgorithm::Sha512 => b"1234567890123456789012345678901234567890123456789012345678901234",
    };
    OtpSecret::from_bytes(seed).unwrap()
}

fn totp(algorithm: OtpAlgorithm, digits: u32) -> TotpConfig {
    TotpConfig::new(algorithm, digits, 30, 1).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Known answers

/// RFC 4226 Appendix D, "HOTP Algorithm: Test Values": secret "12345678901234567890",
/// HMAC-SHA-1, 6 digits, counters 0 to 9.
#[test]
fn rfc4226_appendix_d() {
    let expected = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    let config = HotpConfig::default();
    let secret = rfc_secret(OtpAlgorithm::Sha1);
    for (counter, code) in expected.iter().enumerate() {
        assert_eq!(
            config.generate(&secret, counter as u64),
            *code,
            "counter {counter}"
        );
        // The TOTP generator at the same counter is the same function.
        assert_eq!(
            TotpConfig::default().generate(&secret, counter as u64),
            *code
        );
    }
}

/// RFC 6238 Appendix B, "Test Vectors": T0 = 0, X = 30, 8 digits, for SHA1, SHA256 and SHA512.
const RFC6238: &[(u64, u64, OtpAlgorithm, &str)] = &[
    (59, 0x1, OtpAlgorithm::Sha1, "94287082"),
    (59, 0x1, OtpAlgorithm::Sha256, "46119246"),
    (59, 0x1, OtpAlgorithm::Sha512, "90693936"),
    (1111111109, 0x23523EC, OtpAlgorithm::Sha1, "07081804"),
    (1111111109, 0x23523EC, OtpAlgorithm::Sha256, "68084774"),
    (1111111109, 0x23523EC, OtpAlgorithm::Sha512, "25091201"),
    (1111111111, 0x23523ED, OtpAlgorithm::Sha1, "14050471"),
    (1111111111, 0x23523ED, OtpAlgorithm::Sha256, "67062674"),
    (1111111111, 0x23523ED, OtpAlgorithm::Sha512, "99943326"),
    (1234567890, 0x273EF07, OtpAlgorithm::Sha1, "89005924"),
    (1234567890, 0x273EF07, OtpAlgorithm::Sha256, "91819424"),
    (1234567890, 0x273EF07, OtpAlgorithm::Sha512, "93441116"),
    (2000000000, 0x3F940AA, OtpAlgorithm::Sha1, "69279037"),
    (2000000000, 0x3F940AA, OtpAlgorithm::Sha256, "90698825"),
    (2000000000, 0x3F940AA, OtpAlgorithm::Sha512, "38618901"),
    (20000000000, 0x27BC86AA, OtpAlgorithm::Sha1, "65353130"),
    (20000000000, 0x27BC86AA, OtpAlgorithm::Sha256, "77737706"),
    (20000000000, 0x27BC86AA, OtpAlgorithm::Sha512, "47863826"),
];

#[test]
fn rfc6238_appendix_b_8_digits() {
    for &(time, step, algorithm, code) in RFC6238 {
        let config = totp(algorithm, 8);
        let secret = rfc_secret(algorithm);
        assert_eq!(config.step_at(time), step, "{time}");
        assert_eq!(config.code_at(&secret, time), code, "{time} {algorithm:?}");
        assert_eq!(config.verify_totp(&secret, code, time, None), Ok(step));
    }
}

/// The same vectors truncated to 6 digits: `Code mod 10^6` is the last six digits of the
/// 8-digit value (RFC 4226 §5.3 step 3).
#[test]
fn rfc6238_appendix_b_6_digits() {
    for &(time, step, algorithm, code) in RFC6238 {
        let config = totp(algorithm, 6);
        let secret = rfc_secret(algorithm);
        assert_eq!(
            config.code_at(&secret, time),
            &code[2..],
            "{time} {algorithm:?}"
        );
        assert_eq!(
            config.verify_totp(&secret, &code[2..], time, None),
            Ok(step)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration and secrets

#[test]
fn config_is_validated() {
    let d = TotpConfig::default();
    assert_eq!(
        (d.algorithm(), d.digits(), d.period(), d.skew()),
        (OtpAlgorithm::Sha1, 6, 30, 1)
    );
    for digits in [0, 5, 7, 9, 10] {
        assert!(matches!(
            TotpConfig::new(OtpAlgorithm::Sha1, digits, 30, 1),
            Err(OtpError::InvalidConfig(_))
        ));
    }
    for period in [0, 1, 14, 121, 3600] {
        assert!(TotpConfig::new(OtpAlgorithm::Sha1, 6, period, 1).is_err());
    }
    assert!(TotpConfig::new(OtpAlgorithm::Sha1, 6, 30, 2).is_err());
    assert!(TotpConfig::new(OtpAlgorithm::Sha512, 8, 60, 0).is_ok());
    assert!(HotpConfig::new(OtpAlgorithm::Sha1, 6, 51).is_err());
    assert!(HotpConfig::new(OtpAlgorithm::Sha1, 7, 5).is_err());
    assert_eq!(HotpConfig::default().look_ahead(), 10);
}

#[test]
fn secrets() {
    // At least 160 bits, also for imported secrets (the floor; RFC 4226 §4 R6 only
    // requires 128 and recommends 160).
    assert_eq!(OtpSecret::MIN_BYTES, 20);
    for short in [15, 16, 19] {
        assert_eq!(
            OtpSecret::from_bytes(&vec![1; short]).unwrap_err(),
            OtpError::SecretTooShort,
            "{short} bytes"
        );
    }
    assert!(OtpSecret::from_bytes(&[1; 20]).is_ok());
    // A 128-bit secret in base32 (26 characters), as older enrolments and some exports have.
    assert_eq!(
        OtpSecret::from_base32("AEAQCAIBAEAQCAIBAEAQCAIBAE").unwrap_err(),
        OtpError::SecretTooShort
    );
    assert_eq!(
        OtpSecret::from_base32("AEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIB")
            .unwrap()
            .expose(),
        &[1; 20]
    );
    assert_eq!(
        OtpSecret::from_bytes(&[1; 129]).unwrap_err(),
        OtpError::SecretTooLong
    );

    let rng = SystemRandom::new();
    let a = OtpSecret::generate(&rng).unwrap();
    let b = OtpSecret::generate(&rng).unwrap();
    assert_eq!(a.expose().len(), 20); // 160 bits
    assert_ne!(a.expose(), b.expose());
    assert_eq!(
        OtpSecret::generate_for(OtpAlgorithm::Sha1, &rng)
            .unwrap()
            .expose()
            .len(),
        20
    );
    assert_eq!(
        OtpSecret::generate_for(OtpAlgorithm::Sha256, &rng)
            .unwrap()
            .expose()
            .len(),
        32
    );
    assert_eq!(
        OtpSecret::generate_for(OtpAlgorithm::Sha512, &rng)
            .unwrap()
            .expose()
            .len(),
        64
    );
    // The bytes come from the injected source.
    assert_eq!(OtpSecret::generate(&Fixed(9)).unwrap().expose(), &[9; 20]);
    assert_eq!(
        OtpSecret::generate(&Broken).unwrap_err(),
        OtpError::Random(RandomError)
    );

    let b32 = a.to_base32();
    assert_eq!(b32.expose().len(), 32);
    assert_eq!(
        OtpSecret::from_base32(b32.expose()).unwrap().expose(),
        a.expose()
    );
    assert!(!format!("{a:?}").contains(b32.expose()));
    assert_eq!(format!("{a:?}"), "OtpSecret(***)");
    // 80-bit secrets (common in older enrolments) are below even the RFC 4226 R6 minimum.
    assert_eq!(
        OtpSecret::from_base32("JBSWY3DPEHPK3PXP").unwrap_err(),
        OtpError::SecretTooShort
    );
}

// ---------------------------------------------------------------------------------------------
// TOTP verification rules

#[test]
fn window_accepts_one_step_either_side_only() {
    let config = TotpConfig::default();
    let secret = OtpSecret::generate(&SystemRandom::new()).unwrap();
    let now = 1_700_000_015; // mid-step
    let step = config.step_at(now);
    for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
        let s = step.checked_add_signed(offset).unwrap();
        let code = config.generate(&secret, s);
        let got = config.verify_totp(&secret, &code, now, None);
        if ok {
            assert_eq!(got, Ok(s), "offset {offset}");
        } else {
            // (A collision with an in-window code is possible but has odds near 3 in 10^6.)
            assert_eq!(got, Err(OtpError::InvalidCode), "offset {offset}");
        }
    }
    // Step boundaries: the last second of a step and the first of the next.
    let start = step * 30;
    let code = config.generate(&secret, step + 2);
    assert_eq!(
        config.verify_totp(&secret, &code, start + 29, None),
        Err(OtpError::InvalidCode)
    );
    assert_eq!(
        config.verify_totp(&secret, &code, start + 30, None),
        Ok(step + 2)
    );

    // With no skew only the current step works.
    let strict = TotpConfig::new(OtpAlgorithm::Sha1, 6, 30, 0).unwrap();
    let prev = strict.generate(&secret, step - 1);
    assert_eq!(
        strict.verify_totp(&secret, &prev, now, None),
        Err(OtpError::InvalidCode)
    );

    // Near the epoch the window is clipped, not wrapped.
    let code0 = config.generate(&secret, 0);
    assert_eq!(config.verify_totp(&secret, &code0, 5, None), Ok(0));
}

#[test]
fn replay_is_refused() {
    let config = TotpConfig::default();
    let secret = OtpSecret::generate(&SystemRandom::new()).unwrap();
    let now = 1_700_000_000;
    let step = config.step_at(now);
    let code = config.code_at(&secret, now);

    let used = config.verify_totp(&secret, &code, now, None).unwrap();
    assert_eq!(used, step);
    // The same code again, in the same step or the next one.
    assert_eq!(
        config.verify_totp(&secret, &code, now, Some(used)),
        Err(OtpError::Replayed)
    );
    assert_eq!(
        config.verify_totp(&secret, &code, now + 30, Some(used)),
        Err(OtpError::Replayed)
    );
    // An earlier step's code, still inside the window.
    let earlier = config.generate(&secret, step - 1);
    assert_eq!(
        config.verify_totp(&secret, &earlier, now, Some(used)),
        Err(OtpError::Replayed)
    );
    // The next step's code is fresh.
    let next = config.generate(&secret, step + 1);
    assert_eq!(
        config.verify_totp(&secret, &next, now, Some(used)),
        Ok(step + 1)
    );
    // Having used a future step (skew), the current step's code is refused.
    assert_eq!(
        config.verify_totp(&secret, &code, now, Some(step + 1)),
        Err(OtpError::Replayed)
    );
}

#[test]
fn leading_zeros_are_kept_and_significant() {
    // RFC 6238 vector beginning with 0.
    let config = totp(OtpAlgorithm::Sha1, 8);
    let secret = rfc_secret(OtpAlgorithm::Sha1);
    assert_eq!(config.code_at(&secret, 1111111109), "07081804");
    assert_eq!(
        config.verify_totp(&secret, "07081804", 1111111109, None),
        Ok(0x23523EC)
    );
    assert_eq!(
        config.verify_totp(&secret, "7081804", 1111111109, None),
        Err(OtpError::MalformedCode)
    );
    assert_eq!(
        config.verify_totp(&secret, "70818040", 1111111109, None),
        Err(OtpError::InvalidCode)
    );

    // A 6-digit code beginning with 0 (and one beginning with 00), found by search.
    let config = TotpConfig::default();
    let (step, code) = (0u64..100_000)
        .map(|s| (s, config.generate(&secret, s)))
        .find(|(_, c)| c.starts_with("00"))
        .unwrap();
    assert_eq!(code.len(), 6);
    let now = step * 30 + 10;
    assert_eq!(config.verify_totp(&secret, &code, now, None), Ok(step));
    assert_eq!(
        config.verify_totp(&secret, &code[1..], now, None),
        Err(OtpError::MalformedCode)
    );
    assert_eq!(
        config.verify_totp(&secret, &code[2..], now, None),
        Err(OtpError::MalformedCode)
    );
}

#[test]
fn malformed_codes_are_refused() {
    let config = TotpConfig::default();
    let secret = rfc_secret(OtpAlgorithm::Sha1);
    let now = 59;
    let good = config.code_at(&secret, now);
    assert!(config.verify_totp(&secret, &good, now, None).is_ok());
    let bad = [
        String::new(),
        good[..5].to_owned(),
        format!("{good}0"),
        format!(" {}", &good[1..]),
        format!("{good} "),
        format!("{}a", &good[..5]),
        format!("+{}", &good[1..]),
        format!("-{}", &good[1..]),
        "１２３４５６".to_owned(), // full-width digits
        "12 456".to_owned(),
        "٤٥٦٧٨٩".to_owned(), // Arabic-Indic digits
    ];
    for code in &bad {
        assert_eq!(
            config.verify_totp(&secret, code, now, None),
            Err(OtpError::MalformedCode),
            "{code:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// HOTP

#[test]
fn hotp_window_and_counter() {
    let config = HotpConfig::default(); // look-ahead 10
    let secret = rfc_secret(OtpAlgorithm::Sha1);
    // RFC 4226 Appendix D values.
    assert_eq!(config.verify_hotp(&secret, "755224", 0), Ok(1));
    assert_eq!(config.verify_hotp(&secret, "520489", 0), Ok(10)); // counter 9, inside the window
    // Used counters are behind the stored one and never accepted again.
    assert_eq!(
        config.verify_hotp(&secret, "755224", 1),
        Err(OtpError::InvalidCode)
    );
    assert_eq!(
        config.verify_hotp(&secret, "287082", 5),
        Err(OtpError::InvalidCode)
    );
    // Beyond the look-ahead.
    let far = config.generate(&secret, 11);
    assert_eq!(
        config.verify_hotp(&secret, &far, 0),
        Err(OtpError::InvalidCode)
    );
    assert_eq!(config.verify_hotp(&secret, &far, 1), Ok(12));
    let narrow = HotpConfig::new(OtpAlgorithm::Sha1, 6, 2).unwrap();
    assert_eq!(
        narrow.verify_hotp(&secret, "969429", 0),
        Err(OtpError::InvalidCode)
    ); // counter 3
    assert_eq!(narrow.verify_hotp(&secret, "359152", 0), Ok(3)); // counter 2
    assert_eq!(
        config.verify_hotp(&secret, "75522", 0),
        Err(OtpError::MalformedCode)
    );
    // No overflow at the top of the counter range.
    let top = config.generate(&secret, u64::MAX);
    assert_eq!(
        config.verify_hotp(&secret, &top, u64::MAX),
        Err(OtpError::InvalidCode)
    );
}

// ---------------------------------------------------------------------------------------------
// Base32

/// RFC 4648 §10, "Test Vectors", BASE32 section.
#[test]
fn base32_rfc4648_vectors() {
    let vectors = [
        ("", ""),
        ("f", "MY======"),
        ("fo", "MZXQ===="),
        ("foo", "MZXW6==="),
        ("foob", "MZXW6YQ="),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI======"),
    ];
    for (plain, padded) in vectors {
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(base32::encode(plain.as_bytes()), unpadded);
        for input in [
            padded.to_owned(),
            unpadded.to_owned(),
            padded.to_lowercase(),
        ] {
            assert_eq!(
                base32::decode(&input).unwrap().as_slice(),
                plain.as_bytes(),
                "{input}"
            );
        }
    }
    for bad in [
        "MZXW6YTB0I",
        "MZXW6YTB1I",
        "MZXW6YTB8I",
        "MZXW 6YTB",
        "MZ-XW6YTB",
        "MY=====",
        "M=Y",
        "MZXW6YTBOI=",
        "é",
    ] {
        assert_eq!(
            base32::decode(bad).unwrap_err(),
            OtpError::InvalidBase32,
            "{bad}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// otpauth:// URIs

const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"; // "12345678901234567890"

#[test]
fn otpauth_round_trip() {
    let secret = rfc_secret(OtpAlgorithm::Sha1);
    let uri = OtpAuthUri::new(
        Some("Acme & Co"),
        "ada+otp@example.com",
        secret,
        TotpConfig::default(),
    )
    .unwrap();
    let text = uri.to_uri();
    assert_eq!(
        text.expose(),
        format!(
            "otpauth://totp/Acme%20%26%20Co:ada%2Botp%40example.com?secret={SECRET_B32}\
             &issuer=Acme%20%26%20Co&algorithm=SHA1&digits=6&period=30"
        )
    );
    let back = OtpAuthUri::parse(text.expose()).unwrap();
    assert_eq!(back.issuer(), Some("Acme & Co"));
    assert_eq!(back.account(), "ada+otp@example.com");
    assert_eq!(back.secret().expose(), b"12345678901234567890");
    assert_eq!(*back.config(), TotpConfig::default());
    assert!(!format!("{back:?}").contains(SECRET_B32));

    for (algorithm, digits, period) in [
        (OtpAlgorithm::Sha256, 8, 60),
        (OtpAlgorithm::Sha512, 6, 30),
        (OtpAlgorithm::Sha1, 8, 15),
    ] {
        let config = TotpConfig::new(algorithm, digits, period, 1).unwrap();
        let secret = OtpSecret::generate_for(algorithm, &SystemRandom::new()).unwrap();
        let uri = OtpAuthUri::new(Some("Ünïcode Bank"), "bob", secret.clone(), config).unwrap();
        let back = OtpAuthUri::parse(uri.to_uri().expose()).unwrap();
        assert_eq!(back.issuer(), Some("Ünïcode Bank"));
        assert_eq!(back.secret().expose(), secret.expose());
        assert_eq!(*back.config(), config);
    }

    // No issuer.
    let uri = OtpAuthUri::new(
        None,
        "carol",
        rfc_secret(OtpAlgorithm::Sha1),
        TotpConfig::default(),
    )
    .unwrap();
    assert!(
        uri.to_uri()
            .expose()
            .starts_with("otpauth://totp/carol?secret=")
    );
    assert!(!uri.to_uri().expose().contains("issuer"));
    assert_eq!(
        OtpAuthUri::parse(uri.to_uri().expose()).unwrap().issuer(),
        None
    );

    // Colons are refused at build time; they would change the label.
    let s = || rfc_secret(OtpAlgorithm::Sha1);
    for (issuer, account) in [
        (Some("a:b"), "c"),
        (Some("a"), "b:c"),
        (Some(""), "c"),
        (None, ""),
    ] {
        assert_eq!(
            OtpAuthUri::new(issuer, account, s(), TotpConfig::default()).unwrap_err(),
            OtpError::InvalidUri(UriError::InvalidLabel)
        );
    }
}

#[test]
fn otpauth_parse_accepts_common_variants() {
    let parse = |u: &str| OtpAuthUri::parse(u).unwrap();
    // Defaults; issuer only in the parameter; `+` as space in values; unknown parameters.
    let u = parse(&format!(
        "otpauth://totp/alice?secret={SECRET_B32}&issuer=Big+Corp&image=x"
    ));
    assert_eq!((u.issuer(), u.account()), (Some("Big Corp"), "alice"));
    assert_eq!(*u.config(), TotpConfig::default());
    // Issuer only in the label, encoded colon, spaces after the colon, lower-case padded secret.
    let lower = format!(
        "{}======",
        base32::encode(b"0123456789abcdefghijk").to_lowercase()
    );
    // 21 bytes (at least the 160-bit floor) need padding: 34 characters and six `=`.
    assert_eq!(lower.len(), 40);
    let u = parse(&format!(
        "OTPAUTH://TOTP/Big%20Corp%3A%20%20alice?secret={lower}"
    ));
    assert_eq!((u.issuer(), u.account()), (Some("Big Corp"), "alice"));
    assert_eq!(u.secret().expose(), b"0123456789abcdefghijk");
    // Padding percent-encoded.
    let encoded = lower.replace('=', "%3D");
    let u = parse(&format!("otpauth://totp/Big%20Corp:alice?secret={encoded}"));
    assert_eq!(u.secret().expose(), b"0123456789abcdefghijk");
    // Both, equal; algorithm name in lower case.
    let u = parse(&format!(
        "otpauth://totp/ACME:bob?issuer=ACME&secret={SECRET_B32}&algorithm=sha256&digits=8&period=60"
    ));
    assert_eq!(u.issuer(), Some("ACME"));
    assert_eq!(
        *u.config(),
        TotpConfig::new(OtpAlgorithm::Sha256, 8, 60, 1).unwrap()
    );
}

#[test]
fn otpauth_parse_rejections() {
    let err = |u: String| match OtpAuthUri::parse(&u) {
        Err(OtpError::InvalidUri(e)) => e,
        other => panic!("{u}: {other:?}"),
    };
    let s = SECRET_B32;
    use UriError::*;
    let cases = [
        ("otpauth://totp/A:b?issuer=A".to_owned(), MissingSecret),
        ("otpauth://totp/A:b".to_owned(), MissingSecret),
        ("otpauth://totp/A:b?secret=".to_owned(), InvalidSecret),
        (
            "otpauth://totp/A:b?secret=GEZDGNBVGY3TQOJ0GEZDGNBVGY3TQOJQ".to_owned(),
            InvalidSecret,
        ),
        (
            "otpauth://totp/A:b?secret=GEZD%20GNBVGY3TQOJQGEZDGNBVGY3TQOJQ".to_owned(),
            InvalidSecret,
        ),
        (
            "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP".to_owned(),
            InvalidSecret,
        ), // 80 bits
        (format!("otpauth://motp/A:b?secret={s}"), UnknownType),
        (format!("otpauth:///A:b?secret={s}"), UnknownType),
        (
            format!("otpauth://hotp/A:b?secret={s}&counter=0"),
            UnsupportedType,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&issuer=B"),
            IssuerConflict,
        ),
        (
            format!("otpauth://totp/Acme:b?secret={s}&issuer=acme"),
            IssuerConflict,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&algorithm=MD5"),
            UnknownAlgorithm,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&algorithm=SHA-1"),
            UnknownAlgorithm,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&algorithm="),
            UnknownAlgorithm,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&digits=7"),
            InvalidDigits,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&digits=06"),
            InvalidDigits,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&digits=six"),
            InvalidDigits,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&digits="),
            InvalidDigits,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&period=0"),
            InvalidPeriod,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&period=-30"),
            InvalidPeriod,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&period=abc"),
            InvalidPeriod,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&period=3600"),
            InvalidPeriod,
        ),
        (
            format!("otpauth://totp/A:b?secret={s}&period=99999999999999999999999"),
            InvalidPeriod,
        ),
        (format!("https://totp/A:b?secret={s}"), Malformed),
        (format!("otpauth:totp/A:b?secret={s}"), Malformed),
        (
            format!("otpauth://totp/A:b?secret={s}&secret={s}"),
            Malformed,
        ),
        (format!("otpauth://totp/A:b?secret={s}&issuer"), Malformed),
        (format!("otpauth://totp/A%2:b?secret={s}"), Malformed),
        (format!("otpauth://totp/A%ZZb?secret={s}"), Malformed),
        (format!("otpauth://totp/A%FF:b?secret={s}"), Malformed),
        (format!("otpauth://totp/A:?secret={s}"), InvalidLabel),
        (format!("otpauth://totp/?secret={s}"), InvalidLabel),
        (format!("otpauth://totp/A:b:c?secret={s}"), InvalidLabel),
    ];
    for (uri, expected) in cases {
        assert_eq!(err(uri.clone()), expected, "{uri}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sealing

fn key(id: &str, byte: u8) -> SealingKey {
    SealingKey::new(id, [byte; 32]).unwrap()
}

#[test]
fn secret_box_seal_open() {
    let rng = SystemRandom::new();
    let sealer = SecretBox::new(key("k1", 1)).unwrap();
    assert_eq!(sealer.current_key_id(), "k1");
    let secret = OtpSecret::generate(&rng).unwrap();
    let sealed = sealer.seal(&secret, b"user-1", &rng).unwrap();

    let (id, body) = sealed.split_once('.').unwrap();
    assert_eq!(id, "k1");
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // 12-byte nonce + 20-byte secret + 16-byte tag, base64url without padding.
    assert_eq!(body.len(), (12 + 20 + 16usize).div_ceil(3) * 4);
    assert_eq!(
        sealer.open(&sealed, b"user-1").unwrap().expose(),
        secret.expose()
    );
    assert!(!sealed.contains(secret.to_base32().expose()));

    // A fresh nonce each time.
    let again = sealer.seal(&secret, b"user-1", &rng).unwrap();
    assert_ne!(sealed, again);
    // The nonce comes from the injected source.
    let fixed = sealer.seal(&secret, b"user-1", &Fixed(0xab)).unwrap();
    assert!(fixed.starts_with("k1.q6urq6urq6urq6ur")); // base64url of 0xab × 12
    assert_eq!(
        sealer.seal(&secret, b"user-1", &Broken).unwrap_err(),
        OtpError::Random(RandomError)
    );

    // Debug never shows key material.
    assert!(!format!("{:?}", key("k1", 0x41)).contains("65"));
    assert!(format!("{sealer:?}").contains("k1"));
}

#[test]
fn secret_box_refuses_other_users_and_tampering() {
    let rng = SystemRandom::new();
    let sealer = SecretBox::new(key("k1", 1)).unwrap();
    let secret = OtpSecret::generate(&rng).unwrap();
    let sealed = sealer.seal(&secret, b"user-1", &rng).unwrap();

    // Copied to another user's row.
    assert_eq!(
        sealer.open(&sealed, b"user-2").unwrap_err(),
        OtpError::SealedInvalid
    );
    assert_eq!(
        sealer.open(&sealed, b"").unwrap_err(),
        OtpError::SealedInvalid
    );

    // Every single-character change of the body.
    let (id, body) = sealed.split_once('.').unwrap();
    for i in 0..body.len() {
        let mut bytes = body.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = format!("{id}.{}", String::from_utf8(bytes).unwrap());
        assert!(sealer.open(&tampered, b"user-1").is_err(), "position {i}");
    }
    // Truncated, extended, garbage, no separator.
    for bad in [
        format!("{id}.{}", &body[..body.len() - 4]),
        format!("{sealed}AAAA"),
        format!("{id}.AAAA"),
        format!("{id}."),
        format!("{id}.!!!!"),
        "k1".to_owned(),
        String::new(),
    ] {
        assert!(sealer.open(&bad, b"user-1").is_err(), "{bad}");
    }
    // The key id is authenticated: relabelling for another configured key with the same
    // bytes still fails.
    let twin = SecretBox::new(key("k2", 1))
        .unwrap()
        .with_old_key(key("k1", 9))
        .unwrap();
    let relabelled = format!("k2.{body}");
    assert_eq!(
        twin.open(&relabelled, b"user-1").unwrap_err(),
        OtpError::SealedInvalid
    );
    // A wrong key under the right id.
    assert_eq!(
        twin.open(&sealed, b"user-1").unwrap_err(),
        OtpError::SealedInvalid
    );
}

#[test]
fn secret_box_rotation() {
    let rng = SystemRandom::new();
    let secret = OtpSecret::generate(&rng).unwrap();
    let old = SecretBox::new(key("k2024", 1)).unwrap();
    let sealed_old = old.seal(&secret, b"u", &rng).unwrap();

    let rotated = SecretBox::new(key("k2025", 2))
        .unwrap()
        .with_old_key(key("k2024", 1))
        .unwrap();
    assert_eq!(rotated.current_key_id(), "k2025");
    assert_eq!(
        rotated.open(&sealed_old, b"u").unwrap().expose(),
        secret.expose()
    );
    assert!(rotated.needs_reseal(&sealed_old));
    let resealed = rotated.seal(&secret, b"u", &rng).unwrap();
    assert!(resealed.starts_with("k2025."));
    assert!(!rotated.needs_reseal(&resealed));
    assert_eq!(
        rotated.open(&resealed, b"u").unwrap().expose(),
        secret.expose()
    );

    // Once the old key is dropped, its ciphertexts name an unknown key.
    let only_new = SecretBox::new(key("k2025", 2)).unwrap();
    assert_eq!(
        only_new.open(&sealed_old, b"u").unwrap_err(),
        OtpError::UnknownKey
    );
    assert_eq!(old.open(&resealed, b"u").unwrap_err(), OtpError::UnknownKey);

    // Configuration errors.
    assert!(matches!(
        SecretBox::new(key("k1", 1))
            .unwrap()
            .with_old_key(key("k1", 2)),
        Err(OtpError::InvalidConfig(_))
    ));
    for bad_id in ["", "has.dot", "has space", "seventeen-chars-x", "ü"] {
        assert!(SealingKey::new(bad_id, [0; 32]).is_err(), "{bad_id:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery codes

const RECOVERY_ALPHABET: &str = "0123456789abcdefghjkmnpqrstvwxyz";

#[test]
fn recovery_code_format_and_entropy() {
    // 24 symbols × 5 bits, each symbol from a 32-letter alphabet.
    assert_eq!(RECOVERY_ALPHABET.len(), 32);
    assert_eq!(RECOVERY_CODE_BITS, 24 * 5);
    const { assert!(RECOVERY_CODE_BITS >= 112) };

    let set = RecoveryCodes::generate(DEFAULT_RECOVERY_CODES, &SystemRandom::new()).unwrap();
    assert_eq!(set.codes().len(), 10);
    assert_eq!(set.hashes().len(), 10);
    let mut seen = std::collections::HashSet::new();
    for code in set.codes() {
        let c = code.expose();
        assert_eq!(c.len(), 27, "{c}");
        for (i, ch) in c.chars().enumerate() {
            if i % 7 == 6 {
                assert_eq!(ch, '-', "{c}");
            } else {
                assert!(RECOVERY_ALPHABET.contains(ch), "{c}");
            }
        }
        assert!(!c.contains(['i', 'l', 'o', 'u']));
        assert!(seen.insert(c.to_owned()));
    }
    assert!(!format!("{set:?}").contains(set.codes()[0].expose()));

    // The symbols are exactly the 120 random bits, 5 at a time from the most significant bit:
    // nothing is lost to rejection or modulo bias.
    let set = RecoveryCodes::generate(1, &Counter(AtomicU8::new(0x10))).unwrap();
    let bytes: Vec<u8> = (0x10..0x10 + 15).collect();
    let mut n = 0u128;
    for b in &bytes {
        n = (n << 8) | u128::from(*b);
    }
    let expected: String = (0..24)
        .map(|i| RECOVERY_ALPHABET.as_bytes()[((n >> (115 - 5 * i)) & 0x1f) as usize] as char)
        .collect();
    assert_eq!(set.codes()[0].expose().replace('-', ""), expected);
    assert_eq!(
        RecoveryCodes::generate(1, &Fixed(0)).unwrap().codes()[0].expose(),
        "000000-000000-000000-000000"
    );
    assert_eq!(
        RecoveryCodes::generate(1, &Fixed(0xff)).unwrap().codes()[0].expose(),
        "zzzzzz-zzzzzz-zzzzzz-zzzzzz"
    );

    assert!(RecoveryCodes::generate(0, &SystemRandom::new()).is_err());
    assert!(RecoveryCodes::generate(51, &SystemRandom::new()).is_err());
    assert_eq!(
        RecoveryCodes::generate(3, &Broken).unwrap_err(),
        OtpError::Random(RandomError)
    );
}

#[test]
fn recovery_code_verification() {
    let (codes, mut hashes) = RecoveryCodes::generate(10, &SystemRandom::new())
        .unwrap()
        .into_parts();
    for (i, code) in codes.iter().enumerate() {
        let c = code.expose();
        assert_eq!(verify_recovery_code(c, &hashes), Some(i));
        assert_eq!(verify_recovery_code(&c.to_uppercase(), &hashes), Some(i));
        assert_eq!(verify_recovery_code(&c.replace('-', ""), &hashes), Some(i));
        assert_eq!(
            verify_recovery_code(&format!("  {} ", c.replace('-', " ")), &hashes),
            Some(i)
        );
    }
    // Misread characters: O for 0, I or L for 1.
    let fixed = RecoveryCodes::generate(1, &Fixed(0)).unwrap();
    let stored = fixed.hashes();
    assert_eq!(
        verify_recovery_code("OOOOOO-oooooo-000000-000000", stored),
        Some(0)
    );
    let ones: Vec<u8> = vec![
        0b0000_1000,
        0b0100_0010,
        0b0001_0000,
        0b1000_0100,
        0b0010_0001,
    ];
    // 0x08 0x42 0x10 0x84 0x21 = symbols 1,1,1,1,1,1,1,1 (40 bits).
    #[derive(Debug)]
    struct Ones(Vec<u8>);
    impl SecureRandom for Ones {
        fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
            for (i, b) in dest.iter_mut().enumerate() {
                *b = self.0[i % self.0.len()];
            }
            Ok(())
        }
    }
    let ones_set = RecoveryCodes::generate(1, &Ones(ones)).unwrap();
    assert_eq!(ones_set.codes()[0].expose(), "111111-111111-111111-111111");
    assert_eq!(
        verify_recovery_code("IIIiii-LLLlll-111111-1l1I1i", ones_set.hashes()),
        Some(0)
    );

    // Wrong, malformed, too long or too short.
    let c = codes[0].expose().to_owned();
    for bad in [
        String::new(),
        c[..26].to_owned(),
        format!("{c}0"),
        c.replace('-', "_"),
        format!("{}u", &c[..26]),
        "000000-000000-000000-000000".to_owned(),
        "０".repeat(24),
    ] {
        assert_eq!(verify_recovery_code(&bad, &hashes), None, "{bad}");
    }
    // Single use: the caller removes the matched hash.
    let i = verify_recovery_code(&c, &hashes).unwrap();
    hashes.remove(i);
    assert_eq!(verify_recovery_code(&c, &hashes), None);
    assert_eq!(verify_recovery_code(codes[1].expose(), &hashes), Some(0));

    // Stored hashes round-trip through bytes and compare equal.
    let h = hashes[0];
    assert_eq!(RecoveryCodeHash::from_bytes(*h.as_bytes()), h);
    assert!(format!("{h:?}").starts_with("RecoveryCodeHash("));
}

// ---------------------------------------------------------------------------------------------
// QR codes

fn enrolment_uri() -> String {
    let uri = OtpAuthUri::new(
        Some("Acme"),
        "ada@example.com",
        rfc_secret(OtpAlgorithm::Sha1),
        TotpConfig::default(),
    )
    .unwrap();
    uri.to_uri().expose().to_owned()
}

/// A table-driven CRC-32 (independent of the library's bitwise one).
fn crc32(data: &[u8]) -> u32 {
    let table: Vec<u32> = (0..256u32)
        .map(|n| {
            (0..8).fold(n, |c, _| {
                if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                }
            })
        })
        .collect();
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8)
    })
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u64, 0u64);
    for &x in data {
        a = (a + u64::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    ((b << 16) | a) as u32
}

/// Splits a PNG into (type, data) chunks, checking every CRC.
fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut out = Vec::new();
    let mut at = 8;
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
        let data = png[at + 8..at + 8 + len].to_vec();
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc, crc32(&png[at + 4..at + 8 + len]), "CRC of {:?}", kind);
        out.push((kind, data));
        at += 12 + len;
    }
    assert_eq!(at, png.len());
    out
}

/// Decodes a zlib stream made only of stored deflate blocks.
fn inflate_stored(z: &[u8]) -> (Vec<u8>, usize) {
    assert_eq!(z[0] & 0x0f, 8, "deflate");
    assert_eq!((u16::from(z[0]) * 256 + u16::from(z[1])) % 31, 0, "FCHECK");
    assert_eq!(z[1] & 0x20, 0, "no preset dictionary");
    let mut out = Vec::new();
    let mut at = 2;
    let mut blocks = 0;
    loop {
        let header = z[at];
        assert_eq!(header & 0b110, 0, "stored block");
        let len = u16::from_le_bytes([z[at + 1], z[at + 2]]);
        let nlen = u16::from_le_bytes([z[at + 3], z[at + 4]]);
        assert_eq!(len, !nlen);
        out.extend_from_slice(&z[at + 5..at + 5 + len as usize]);
        at += 5 + len as usize;
        blocks += 1;
        if header & 1 == 1 {
            break;
        }
    }
    assert_eq!(
        u32::from_be_bytes(z[at..at + 4].try_into().unwrap()),
        adler32(&out)
    );
    assert_eq!(at + 4, z.len());
    (out, blocks)
}

#[test]
fn qr_png_is_valid_and_matches_the_modules() {
    let qr = EnrolmentQr::new(&enrolment_uri()).unwrap();
    let width = qr.width();
    assert_eq!((width - 17) % 4, 0, "a QR version size");
    // Finder pattern corners are dark; the quiet zone is light.
    assert!(qr.is_dark(0, 0) && qr.is_dark(width - 1, 0) && qr.is_dark(0, width - 1));
    assert!(!qr.is_dark(width, 0) && !qr.is_dark(usize::MAX, 0));

    for scale in [1u32, 3, 10] {
        let png = qr.to_png(scale).unwrap();
        let chunks = chunks(&png);
        let kinds: Vec<&[u8; 4]> = chunks.iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, [b"IHDR", b"IDAT", b"IEND"]);
        assert!(png.ends_with(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xae, 0x42, 0x60, 0x82]));

        let side = (width + 8) * scale as usize;
        let ihdr = &chunks[0].1;
        assert_eq!(ihdr.len(), 13);
        assert_eq!(
            u32::from_be_bytes(ihdr[0..4].try_into().unwrap()) as usize,
            side
        );
        assert_eq!(
            u32::from_be_bytes(ihdr[4..8].try_into().unwrap()) as usize,
            side
        );
        assert_eq!(&ihdr[8..], &[8, 0, 0, 0, 0]); // 8-bit greyscale, no interlace

        let (raw, blocks) = inflate_stored(&chunks[1].1);
        assert_eq!(raw.len(), side * (side + 1));
        assert_eq!(blocks, raw.len().div_ceil(65_535));
        if scale == 10 {
            assert!(blocks > 1);
        }
        let s = scale as usize;
        for (py, row) in raw.chunks(side + 1).enumerate() {
            assert_eq!(row[0], 0, "filter type None");
            for (px, &pixel) in row[1..].iter().enumerate() {
                let (mx, my) = ((px / s).wrapping_sub(4), (py / s).wrapping_sub(4));
                let expected = if qr.is_dark(mx, my) { 0 } else { 255 };
                assert_eq!(pixel, expected, "pixel {px},{py} at scale {scale}");
            }
        }
    }
    assert!(qr.to_png(0).is_err());
    assert!(qr.to_png(33).is_err());
    assert!(!format!("{qr:?}").contains("true"));
}

#[test]
fn qr_svg_is_well_formed() {
    let qr = EnrolmentQr::new(&enrolment_uri()).unwrap();
    let svg = qr.to_svg();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.ends_with("</svg>"));
    assert_eq!(svg.matches("<path").count(), 1);
    let size = qr.width() + 8;
    assert!(svg.contains(&format!("viewBox=\"0 0 {size} {size}\"")));

    // Tags balance, attributes are quoted in pairs, nothing outside the root element.
    let mut stack = Vec::new();
    let mut rest = svg.as_str();
    while let Some(open) = rest.find('<') {
        assert!(rest[..open].trim().is_empty() || !stack.is_empty());
        let close = rest[open..].find('>').unwrap() + open;
        let tag = &rest[open + 1..close];
        assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
        assert!(!tag.contains('<'));
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.to_owned()));
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap().to_owned());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty());
    assert!(rest.is_empty());

    // The path's rectangles cover exactly the dark modules.
    let d_start = svg.find(" d=\"").unwrap() + 4;
    let d = &svg[d_start..d_start + svg[d_start..].find('"').unwrap()];
    let mut covered = vec![false; size * size];
    for rect in d.split('z').filter(|r| !r.is_empty()) {
        let nums: Vec<usize> = rect
            .trim_start_matches('M')
            .split([' ', 'h', 'v'])
            .filter(|n| !n.is_empty() && !n.starts_with('-'))
            .map(|n| n.parse().unwrap())
            .collect();
        let [x, y, w, one] = nums[..] else {
            panic!("{rect}")
        };
        assert_eq!(one, 1);
        for i in x..x + w {
            assert!(!covered[y * size + i], "overlap");
            covered[y * size + i] = true;
        }
    }
    for y in 0..size {
        for x in 0..size {
            let dark = qr.is_dark(x.wrapping_sub(4), y.wrapping_sub(4));
            assert_eq!(covered[y * size + x], dark, "module {x},{y}");
        }
    }
}

#[test]
fn qr_refuses_oversized_data() {
    assert!(matches!(
        EnrolmentQr::new(&"x".repeat(5000)),
        Err(OtpError::Qr(_))
    ));
}
