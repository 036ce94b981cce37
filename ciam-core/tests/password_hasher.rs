//! Behaviour of the password hasher: round trips, peppers, rehash decisions, the pool, bounds
//! and the imported formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ciam_core::password::{
    Argon2Params, PasswordConfig, PasswordError, PasswordHasher, Pepper, PoolConfig, Verification,
};
use ciam_core::rng::{RandomError, SecureRandom, SystemRandom};
use ciam_core::secret::SecretString;

const SMALL: Argon2Params = Argon2Params {
    m_cost_kib: 64,
    t_cost: 1,
    p_cost: 1,
};

fn hasher_with(config: PasswordConfig) -> PasswordHasher {
    PasswordHasher::new(
        config.pool(PoolConfig {
            workers: 2,
            queue: 64,
        }),
        Arc::new(SystemRandom::new()),
    )
    .unwrap()
}

fn small(config: PasswordConfig) -> PasswordHasher {
    hasher_with(config.argon2(SMALL))
}

fn pepper(id: &str, byte: u8) -> Pepper {
    Pepper::new(id, vec![byte; 32]).unwrap()
}

fn pw(s: &str) -> SecretString {
    SecretString::new(s)
}

const MATCH_CURRENT: Verification = Verification {
    matched: true,
    needs_rehash: false,
};
const MATCH_REHASH: Verification = Verification {
    matched: true,
    needs_rehash: true,
};

#[tokio::test]
async fn round_trip_and_phc_shape() {
    let h = small(PasswordConfig::default().pepper(pepper("k1", 1)));
    let stored = h.hash(&pw("correct horse battery staple")).await.unwrap();
    let rest = stored
        .strip_prefix("$argon2id$v=19$m=64,t=1,p=1,keyid=k1$")
        .unwrap();
    let (salt, tag) = rest.split_once('$').unwrap();
    assert_eq!(salt.len(), 22, "16-byte salt");
    assert_eq!(tag.len(), 43, "32-byte tag");
    assert_eq!(
        h.verify(&pw("correct horse battery staple"), &stored)
            .await
            .unwrap(),
        MATCH_CURRENT
    );
    assert!(
        !h.verify(&pw("correct horse battery stapl"), &stored)
            .await
            .unwrap()
            .matched
    );
    assert!(
        !h.verify(&pw("Correct horse battery staple"), &stored)
            .await
            .unwrap()
            .matched,
        "case kept"
    );
    assert!(!h.needs_rehash(&stored));
    // Fresh salt every time.
    assert_ne!(
        stored,
        h.hash(&pw("correct horse battery staple")).await.unwrap()
    );
}

/// One test at the OWASP defaults (19 MiB), as production runs it.
#[tokio::test]
async fn default_parameters_round_trip() {
    let h = hasher_with(PasswordConfig::default());
    let stored = h.hash(&pw("pässwörd at defaults")).await.unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert_eq!(
        h.verify(&pw("pässwörd at defaults"), &stored)
            .await
            .unwrap(),
        MATCH_CURRENT
    );
    assert_eq!(Argon2Params::default(), Argon2Params::OWASP);
}

#[tokio::test]
async fn nfkc_applies_to_hash_and_verify_but_nothing_is_truncated() {
    let h = small(PasswordConfig::default());
    // U+FB01 LATIN SMALL LIGATURE FI and U+212B ANGSTROM SIGN normalise to "fi" and "Å".
    let stored = h
        .hash(&pw("\u{FB01}ve \u{212B}ngstr\u{F6}m"))
        .await
        .unwrap();
    assert!(
        h.verify(&pw("five \u{C5}ngstro\u{308}m"), &stored)
            .await
            .unwrap()
            .matched
    );
    let long = "x".repeat(1000);
    let stored = h.hash(&pw(&long)).await.unwrap();
    assert!(
        !h.verify(&pw(&format!("{}y", &long[..999])), &stored)
            .await
            .unwrap()
            .matched
    );
    assert!(h.verify(&pw(&long), &stored).await.unwrap().matched);
}

/// Counts calls, to show that refused input never reaches the hashing path.
#[derive(Debug, Default)]
struct Counting(AtomicUsize, SystemRandom);

impl SecureRandom for Counting {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        self.1.fill(dest)
    }
}

#[tokio::test]
async fn over_1024_bytes_is_refused_before_hashing() {
    let rng = Arc::new(Counting::default());
    let h = PasswordHasher::new(PasswordConfig::default().argon2(SMALL), rng.clone()).unwrap();
    let before = rng.0.load(Ordering::SeqCst);
    let too_long = pw(&"é".repeat(513)); // 1026 bytes, 513 characters
    assert!(matches!(
        h.hash(&too_long).await,
        Err(PasswordError::TooLong)
    ));
    assert_eq!(rng.0.load(Ordering::SeqCst), before, "no salt drawn");
    let stored = h.hash(&pw("x".repeat(1024).as_str())).await.unwrap();
    assert!(matches!(
        h.verify(&too_long, &stored).await,
        Err(PasswordError::TooLong)
    ));
    assert!(matches!(
        h.verify(&too_long, "garbage").await,
        Err(PasswordError::TooLong)
    ));
    assert!(matches!(
        h.verify_dummy(&too_long).await,
        Err(PasswordError::TooLong)
    ));
}

#[tokio::test]
async fn pepper_rotation() {
    let old = small(PasswordConfig::default().pepper(pepper("k1", 1)));
    let by_old = old.hash(&pw("rotate me please")).await.unwrap();
    assert!(by_old.contains(",keyid=k1$"));

    let rotated = small(
        PasswordConfig::default()
            .pepper(pepper("k2", 2))
            .old_pepper(pepper("k1", 1)),
    );
    assert_eq!(
        rotated
            .verify(&pw("rotate me please"), &by_old)
            .await
            .unwrap(),
        MATCH_REHASH
    );
    assert!(
        !rotated
            .verify(&pw("rotate me pleas"), &by_old)
            .await
            .unwrap()
            .matched
    );
    assert!(rotated.needs_rehash(&by_old));
    let by_new = rotated.hash(&pw("rotate me please")).await.unwrap();
    assert!(by_new.contains(",keyid=k2$"));
    assert_eq!(
        rotated
            .verify(&pw("rotate me please"), &by_new)
            .await
            .unwrap(),
        MATCH_CURRENT
    );

    // Old key dropped from the configuration: the id is unknown.
    let dropped = small(PasswordConfig::default().pepper(pepper("k2", 2)));
    assert!(matches!(
        dropped.verify(&pw("rotate me please"), &by_old).await,
        Err(PasswordError::UnknownPepper)
    ));
    // Same id, different key: a plain mismatch (the key is what makes the tag).
    let wrong_key = small(PasswordConfig::default().pepper(pepper("k1", 9)));
    assert!(
        !wrong_key
            .verify(&pw("rotate me please"), &by_old)
            .await
            .unwrap()
            .matched
    );

    // Hashes made before any pepper verify without one and need a rehash; the reverse is unknown.
    let none = small(PasswordConfig::default());
    let unpeppered = none.hash(&pw("rotate me please")).await.unwrap();
    assert!(!unpeppered.contains("keyid"));
    assert_eq!(
        rotated
            .verify(&pw("rotate me please"), &unpeppered)
            .await
            .unwrap(),
        MATCH_REHASH
    );
    assert!(matches!(
        none.verify(&pw("rotate me please"), &by_new).await,
        Err(PasswordError::UnknownPepper)
    ));
    assert!(none.needs_rehash(&by_new), "pepper removed");
}

#[test]
fn pepper_validation_and_redaction() {
    assert!(matches!(
        Pepper::new("k1", vec![0; 13]),
        Err(PasswordError::InvalidConfig(_))
    ));
    assert!(matches!(
        Pepper::new("", vec![0; 32]),
        Err(PasswordError::InvalidConfig(_))
    ));
    assert!(matches!(
        Pepper::new("bad id", vec![0; 32]),
        Err(PasswordError::InvalidConfig(_))
    ));
    assert!(matches!(
        Pepper::new("seventeen-chars-x", vec![0; 32]),
        Err(PasswordError::InvalidConfig(_))
    ));
    let p = Pepper::new("k_2025-a", vec![0xAB; 14]).unwrap();
    assert!(!format!("{p:?}").contains("171"), "{p:?}");
    assert!(format!("{p:?}").contains("***"));
    let dup = PasswordConfig::default()
        .pepper(pepper("k1", 1))
        .old_pepper(pepper("k1", 2));
    assert!(matches!(
        PasswordHasher::new(dup, Arc::new(SystemRandom::new())),
        Err(PasswordError::InvalidConfig(_))
    ));
    let weak = PasswordConfig::default().argon2(Argon2Params {
        m_cost_kib: 64,
        t_cost: 0,
        p_cost: 1,
    });
    assert!(matches!(
        PasswordHasher::new(weak, Arc::new(SystemRandom::new())),
        Err(PasswordError::InvalidConfig(_))
    ));
    let empty_pool = PasswordConfig::default().pool(PoolConfig {
        workers: 0,
        queue: 1,
    });
    assert!(matches!(
        PasswordHasher::new(empty_pool, Arc::new(SystemRandom::new())),
        Err(PasswordError::InvalidConfig(_))
    ));
    let d = PoolConfig::default();
    assert!(d.workers >= 1 && d.queue == d.workers * 8);
}

#[tokio::test]
async fn needs_rehash_cases() {
    let h = small(PasswordConfig::default());
    let current = h.hash(&pw("some password")).await.unwrap();
    assert!(!h.needs_rehash(&current));
    for params in [
        Argon2Params {
            m_cost_kib: 128,
            ..SMALL
        },
        Argon2Params { t_cost: 2, ..SMALL },
        Argon2Params {
            m_cost_kib: 64,
            p_cost: 2,
            ..SMALL
        },
    ] {
        let other = hasher_with(PasswordConfig::default().argon2(params));
        assert!(other.needs_rehash(&current), "{params:?}");
        let v = other.verify(&pw("some password"), &current).await.unwrap();
        assert_eq!(v, MATCH_REHASH, "{params:?}");
    }
    for legacy in [
        "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
        "$2b$04$46IC0eengsDmn/D4X2YWD.JsXXSBxO643.JsvEiPmDnFF9BKKv7wm",
        "pbkdf2_sha256$1000$seasalt$CzFI+UslA/kG6Ee3mx9EuXdtUGTgSIJvT+8nrZvi+4s=",
        "not a hash",
        "",
    ] {
        assert!(h.needs_rehash(legacy), "{legacy}");
    }
}

#[tokio::test]
async fn verify_dummy_costs_a_current_parameter_verification() {
    // Equal work, shown without timing: the dummy is a hash at the current parameters and
    // pepper, and verifying it runs exactly one hashing job, as a real verification does.
    for config in [
        PasswordConfig::default().pepper(pepper("k1", 1)),
        PasswordConfig::default(),
    ] {
        let h = small(config);
        assert!(h.dummy_is_current());
        let stored = h.hash(&pw("real password")).await.unwrap();
        let before = h.jobs_completed();
        h.verify_dummy(&pw("wrong password")).await.unwrap();
        assert_eq!(h.jobs_completed(), before + 1);
        assert!(
            !h.verify(&pw("wrong password"), &stored)
                .await
                .unwrap()
                .matched
        );
        assert_eq!(h.jobs_completed(), before + 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_overloaded_with_a_retry_hint() {
    let config = PasswordConfig::default()
        .argon2(Argon2Params {
            m_cost_kib: 32 * 1024,
            t_cost: 3,
            p_cost: 1,
        })
        .pool(PoolConfig {
            workers: 1,
            queue: 1,
        });
    let h = PasswordHasher::new(config, Arc::new(SystemRandom::new())).unwrap();
    let p = pw("overload the pool");
    let (a, b, c, d, e, f) = tokio::join!(
        h.hash(&p),
        h.hash(&p),
        h.hash(&p),
        h.hash(&p),
        h.hash(&p),
        h.hash(&p)
    );
    let mut overloaded = 0;
    let mut done = Vec::new();
    for r in [a, b, c, d, e, f] {
        match r {
            Ok(stored) => done.push(stored),
            Err(PasswordError::Overloaded { retry_after }) => {
                assert!(retry_after > std::time::Duration::ZERO);
                overloaded += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(overloaded >= 1, "no Overloaded");
    assert!(
        !done.is_empty() && done.len() <= 2,
        "{} succeeded",
        done.len()
    );
    for stored in done {
        assert!(h.verify(&p, &stored).await.unwrap().matched);
    }
}

/// Reserved queue places (`reserve`): they count as queued, in the lane they were taken
/// in; a place is given back when its slot is dropped or used; a slot taken in the priority
/// lane for a verification that turns out not to be trusted keeps its place only if the
/// ordinary lane has room. One worker and a queue of 8: the ordinary lane has 6 places, the
/// priority lane the last 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_places_count_as_queued_and_come_back() {
    let h = PasswordHasher::new(
        PasswordConfig::default().argon2(SMALL).pool(PoolConfig {
            workers: 1,
            queue: 8,
        }),
        Arc::new(SystemRandom::new()),
    )
    .unwrap();
    let stored = h.hash(&pw("right")).await.unwrap();
    fn overloaded<T>(r: Result<T, PasswordError>) -> bool {
        matches!(r, Err(PasswordError::Overloaded { retry_after }) if !retry_after.is_zero())
    }

    let mut ordinary: Vec<_> = (0..6).map(|_| h.reserve(false).unwrap()).collect();
    assert!(overloaded(h.reserve(false)), "the ordinary lane is full");
    assert!(h.saturated(false).is_some());
    assert!(h.saturated(true).is_none(), "the priority places are left");
    // Unreserved jobs see the held places too.
    assert!(overloaded(h.verify(&pw("right"), &stored).await));
    let priority: Vec<_> = (0..2).map(|_| h.reserve(true).unwrap()).collect();
    assert!(overloaded(h.reserve(true)), "every place is taken");
    assert!(h.saturated(true).is_some());
    assert_eq!(h.queued(), 0, "held places are not jobs");

    // Dropping a slot gives its place back, to the lane with room: the priority slots use
    // places too, so the ordinary lane is still full.
    drop(ordinary.pop());
    assert!(overloaded(h.reserve(false)));
    drop(h.reserve(true).unwrap());

    // A priority slot used for an untrusted verification while the ordinary lane is full
    // loses its place; used as trusted, it runs.
    let mut priority = priority.into_iter();
    let before = h.jobs_completed();
    assert!(overloaded(
        h.verify_reserved(priority.next().unwrap(), &pw("right"), &stored, false)
            .await
    ));
    assert!(overloaded(
        h.verify_dummy_reserved(h.reserve(true).unwrap(), &pw("x"))
            .await
    ));
    assert_eq!(h.jobs_completed(), before, "a refused slot hashes nothing");
    let v = h
        .verify_reserved(priority.next().unwrap(), &pw("right"), &stored, true)
        .await
        .unwrap();
    assert_eq!(v, MATCH_CURRENT);
    // The two priority places are free again: one more ordinary place is left.
    let again = h.reserve(false).unwrap();
    assert!(overloaded(h.reserve(false)));

    // Ordinary slots run their verifications, and once they are used, the lanes are free.
    let v = h
        .verify_reserved(again, &pw("wrong"), &stored, false)
        .await
        .unwrap();
    assert!(!v.matched);
    for slot in ordinary {
        assert!(
            !h.verify_reserved(slot, &pw("wrong"), &stored, false)
                .await
                .unwrap()
                .matched
        );
    }
    assert_eq!(h.jobs_completed(), before + 7);
    assert!(h.saturated(false).is_none());
    // With room in the ordinary lane, a priority slot may be used untrusted.
    let slot = h.reserve(true).unwrap();
    h.verify_dummy_reserved(slot, &pw("x")).await.unwrap();
    assert_eq!(h.jobs_completed(), before + 8);
}

/// Generated with passlib 1.7.4, Django 5.2.19 and Python hashlib (see the report of the
/// password module); password first, then the stored string.
const IMPORTS: &[(&str, &str)] = &[
    (
        "pässwörd",
        "$pbkdf2-sha256$1000$5vw/5/w/Z.yd0xoj5Nz7fw$y/rY9XH97M62bHnlIHqbWwXlOt5LJwf5ps5bU8PTtLA",
    ),
    (
        "password",
        "$pbkdf2$1000$fa81prQW4ry3ttZ6rxWCcA$nk7KgaqzJ5igPbW5.8EsaqbiQR4",
    ),
    (
        "password",
        "$pbkdf2-sha512$1000$6j1HCMFYC0HIWcuZ09obow$rLd4vgW0ga3uERoaH4q7J9JrK9q1Qyc89/95sjKFvoSXN0nVRLj5Xzim9.sSGa.8FA71Jd0JdXOqp21ImugPbw",
    ),
    (
        "pässwörd",
        "$scrypt$ln=10,r=8,p=1$MkaoFSLE2Lv3/n+P8Z5Tig$qnKJjpje5rsVjLqThSo0tbvtS4n31CQHS7aY2LnVPR0",
    ),
    (
        "pässwörd",
        "scrypt$1024$saltsaltsaltsalt$8$5$bfFIEJk4JMnWJ5V9j9AjFTyYre7Jj4UzYw3Is0Xj8b9rFlBOBBpdmyWEQ2iUWMW4O70Ime4LuadEZDGZGfz2Iw==",
    ),
    (
        "pässwörd",
        "pbkdf2_sha256$1000$seasalt$CzFI+UslA/kG6Ee3mx9EuXdtUGTgSIJvT+8nrZvi+4s=",
    ),
    (
        "password",
        "pbkdf2_sha1$1000$seasalt$C8KvRfPW529R7JpDHEDOP35Xr0g=",
    ),
    (
        "password",
        "$pbkdf2-sha256$i=1000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$hRRjgXWkW8ResfIvBP99J/T4vkgEmMRV/0tJTOjR59I",
    ),
    (
        "password",
        "$pbkdf2-sha512$i=1000,l=64$MDEyMzQ1Njc4OWFiY2RlZg$38DzhdBT7fPaUGBlsh42VTuuKSFAIYGZJ7l6feCDLIl+K3hdPFgxxu7xuUi4gIuH6cEIoODn18xH9Ig2ryNgUw",
    ),
    (
        "password",
        "$pbkdf2-sha1$i=1000,l=20$MDEyMzQ1Njc4OWFiY2RlZg$DYW+LTZG5wxyiF/qvsh40/+/hXk",
    ),
    (
        "pässwörd",
        "bcrypt_sha256$$2b$05$bHbIbPoyhISD.El42./W7OCVgCQUPDxBOz/2QRSLIJwzv0S3hDUGa",
    ),
    (
        "password",
        "bcrypt$$2b$05$Fuq87eh9fyqD5lsjcsvyAun64gqmQgExKVPY9mYSujCLGcq0gpOhS",
    ),
    (
        "pässwörd",
        "argon2$argon2id$v=19$m=256,t=2,p=1$c2FsdHNhbHRzYWx0$CHmLiGl0ywM0dP4XXOFxpIq58wkCChbLJpdQ1AoFGXI",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_formats_verify_raw_bytes_and_need_rehash() {
    let h = small(PasswordConfig::default().pepper(pepper("k1", 1)));
    for (password, stored) in IMPORTS {
        assert_eq!(
            h.verify(&pw(password), stored).await.unwrap(),
            MATCH_REHASH,
            "{stored}"
        );
        assert!(
            !h.verify(&pw(&format!("{password}!")), stored)
                .await
                .unwrap()
                .matched,
            "{stored}"
        );
        assert!(h.needs_rehash(stored));
        if password.contains('ä') {
            // The original systems hashed the bytes as typed: the decomposed form is different.
            let decomposed = password.replace('ä', "a\u{308}").replace('ö', "o\u{308}");
            assert!(
                !h.verify(&pw(&decomposed), stored).await.unwrap().matched,
                "{stored}"
            );
        }
    }
}

#[tokio::test]
async fn stored_costs_are_bounded() {
    let h = small(PasswordConfig::default());
    for stored in [
        "$argon2id$v=19$m=4194304,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=17,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$argon2id$v=19$m=65536,t=1,p=17$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
        "$scrypt$ln=20,r=8,p=1$MkaoFSLE2Lv3/n+P8Z5Tig$qnKJjpje5rsVjLqThSo0tbvtS4n31CQHS7aY2LnVPR0",
        "$scrypt$ln=10,r=8,p=17$MkaoFSLE2Lv3/n+P8Z5Tig$qnKJjpje5rsVjLqThSo0tbvtS4n31CQHS7aY2LnVPR0",
        "scrypt$1073741824$salt$8$1$bfFIEJk4JMnWJ5V9j9AjFTyYre7Jj4UzYw3Is0Xj8b9rFlBOBBpdmyWEQ2iUWMW4O70Ime4LuadEZDGZGfz2Iw==",
        "pbkdf2_sha256$10000001$seasalt$CzFI+UslA/kG6Ee3mx9EuXdtUGTgSIJvT+8nrZvi+4s=",
        "$pbkdf2-sha256$4294967295$5vw/5/w/Z.yd0xoj5Nz7fw$y/rY9XH97M62bHnlIHqbWwXlOt5LJwf5ps5bU8PTtLA",
        "$2b$17$46IC0eengsDmn/D4X2YWD.JsXXSBxO643.JsvEiPmDnFF9BKKv7wm",
        "$2b$31$46IC0eengsDmn/D4X2YWD.JsXXSBxO643.JsvEiPmDnFF9BKKv7wm",
    ] {
        assert!(
            matches!(
                h.verify(&pw("password"), stored).await,
                Err(PasswordError::CostTooHigh)
            ),
            "{stored}"
        );
    }
}

#[tokio::test]
async fn garbage_is_unsupported_and_never_panics() {
    let h = small(PasswordConfig::default());
    let good =
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
    let mut cases: Vec<String> = [
        "",
        "$",
        "$$$$$$",
        "password",
        "$argon2id",
        "$argon2id$",
        "$argon2id$v=19",
        "$argon2id$v=18$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1,data=AAAA$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=99999999999999999999999,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=-1,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=+256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=0,t=0,p=0$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4$extra",
        "$argon2id$v=19$m=256,t=2,p=1$!!!!$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$\u{e9}\u{e9}\u{e9}\u{e9}",
        "$argon2id$v=19$m=256,t=2,p=1$c2FsdA$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2id$v=19$m=256,t=2,p=1,keyid=bad id$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$argon2x$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
        "$2x$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e",
        "$2a$03$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$32$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$99$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$0x$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeWé",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvy\u{e9}W",
        "$2a$05$",
        "$pbkdf2-sha256$0$5vw/5/w/Z.yd0xoj5Nz7fw$y/rY9XH97M62bHnlIHqbWwXlOt5LJwf5ps5bU8PTtLA",
        "$pbkdf2-sha256$1000$5vw/5/w/Z.yd0xoj5Nz7fw$",
        "$pbkdf2-sha256$i=1000,l=31$MDEyMzQ1Njc4OWFiY2RlZg$hRRjgXWkW8ResfIvBP99J/T4vkgEmMRV/0tJTOjR59I",
        "$pbkdf2-sha256$i=1000,i=1000$MDEyMzQ1Njc4OWFiY2RlZg$hRRjgXWkW8ResfIvBP99J/T4vkgEmMRV/0tJTOjR59I",
        "$pbkdf2-md5$1000$5vw/5/w/Z.yd0xoj5Nz7fw$y/rY9XH97M62bHnlIHqbWwXlOt5LJwf5ps5bU8PTtLA",
        "pbkdf2_sha256$abc$seasalt$CzFI+UslA/kG6Ee3mx9EuXdtUGTgSIJvT+8nrZvi+4s=",
        "pbkdf2_sha256$1000$seasalt",
        "$scrypt$ln=0,r=8,p=1$MkaoFSLE2Lv3/n+P8Z5Tig$qnKJjpje5rsVjLqThSo0tbvtS4n31CQHS7aY2LnVPR0",
        "$scrypt$ln=10,r=0,p=1$MkaoFSLE2Lv3/n+P8Z5Tig$qnKJjpje5rsVjLqThSo0tbvtS4n31CQHS7aY2LnVPR0",
        "$scrypt$ln=10,r=8$MkaoFSLE2Lv3/n+P8Z5Tig$qnKJjpje5rsVjLqThSo0tbvtS4n31CQHS7aY2LnVPR0",
        "$scrypt$ln=99999999999999999999,r=8,p=1$Mk$qn",
        "scrypt$1000$salt$8$1$bfFIEJk4JMnWJ5V9j9AjFTyYre7Jj4UzYw3Is0Xj8b9rFlBOBBpdmyWEQ2iUWMW4O70Ime4LuadEZDGZGfz2Iw==",
        "scrypt$1024$salt$8$1",
        "$firebase-scrypt$",
        "$firebase-scrypt$!!$!!",
        "md5$abc$def",
        "{SSHA}abcdef",
        "\u{0}\u{0}\u{0}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    cases.push(format!("{good}{}", "A".repeat(5000)));
    // Every truncation of a valid string: malformed, or (when the cut leaves a well-formed tag of
    // 16 or more bytes) a hash that no password matches.
    for i in 0..good.len() {
        match h.verify(&pw("password"), &good[..i]).await {
            Err(PasswordError::UnsupportedFormat) => {}
            Ok(v) => assert!(!v.matched && i > good.len() - 22, "{i}"),
            Err(e) => panic!("{i}: {e}"),
        }
    }
    for stored in &cases {
        match h.verify(&pw("password"), stored).await {
            Err(PasswordError::UnsupportedFormat) => {}
            other => panic!("{stored:?}: {other:?}"),
        }
        assert!(h.needs_rehash(stored));
    }
}

/// A quarter of the queue is kept for `verify_trusted`: once ordinary jobs have filled the
/// rest, they are refused, and a trusted device's sign-in is still taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_verifications_keep_a_reserved_lane() {
    let config = PasswordConfig::default()
        .argon2(Argon2Params {
            m_cost_kib: 32 * 1024,
            t_cost: 3,
            p_cost: 1,
        })
        .pool(PoolConfig {
            workers: 1,
            queue: 4,
        });
    let h = PasswordHasher::new(config, Arc::new(SystemRandom::new())).unwrap();
    let p = pw("the owner's own passphrase");
    let stored = h.hash(&p).await.unwrap();
    // Joined futures are first polled in order: the five ordinary jobs ask before the owner.
    let (a, b, c, d, e, owner) = tokio::join!(
        h.verify(&p, &stored),
        h.verify(&p, &stored),
        h.verify(&p, &stored),
        h.verify(&p, &stored),
        h.verify(&p, &stored),
        h.verify_trusted(&p, &stored)
    );
    let refused = [a, b, c, d, e]
        .into_iter()
        .filter(|r| matches!(r, Err(PasswordError::Overloaded { .. })))
        .count();
    assert!(refused >= 1, "the ordinary lane filled up");
    assert!(
        owner.unwrap().matched,
        "the trusted verification was served despite the full ordinary lane"
    );
}
