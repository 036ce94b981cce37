//! The NIST SP 800-63B password policy: length in code points, blocklist, context words.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciam_core::password::{PasswordPolicy, PolicyViolation};
use ciam_core::secret::SecretString;

fn check(
    policy: &PasswordPolicy,
    pw: &str,
    context: &[&str],
    single_factor: bool,
) -> Result<(), PolicyViolation> {
    policy.check(&SecretString::new(pw), context, single_factor)
}

#[test]
fn length_is_counted_in_code_points() {
    let p = PasswordPolicy::default().min_chars(5);
    assert_eq!(
        check(&p, "パスワード", &[], false),
        Ok(()),
        "5 characters, 15 bytes"
    );
    assert_eq!(
        check(&p, "パスワー", &[], false),
        Err(PolicyViolation::TooShort { min: 5 })
    );
    let d = PasswordPolicy::default();
    assert_eq!(check(&d, "ключ-к-двери", &[], false), Ok(()));
    assert_eq!(
        check(&d, "7 chars", &[], false),
        Err(PolicyViolation::TooShort { min: 8 })
    );
    assert_eq!(check(&d, "8 chars!", &[], false), Ok(()));
}

#[test]
fn single_factor_needs_15() {
    let d = PasswordPolicy::default();
    assert_eq!(
        check(&d, "fourteen chars", &[], true),
        Err(PolicyViolation::TooShort { min: 15 })
    );
    assert_eq!(check(&d, "fifteen chars!!", &[], true), Ok(()));
    assert_eq!(check(&d, "fourteen chars", &[], false), Ok(()));
    let custom = PasswordPolicy::default().min_chars_single_factor(20);
    assert_eq!(
        check(&custom, "fifteen chars!!", &[], true),
        Err(PolicyViolation::TooShort { min: 20 })
    );
}

#[test]
fn long_passwords_and_no_composition_rules() {
    let d = PasswordPolicy::default();
    let sixty_four = "a quiet river bends around the old mill where nobody goes anymore";
    assert!(sixty_four.chars().count() >= 64);
    assert_eq!(check(&d, sixty_four, &[], true), Ok(()));
    assert_eq!(check(&d, &"z".repeat(1024), &[], true), Ok(()));
    assert_eq!(
        check(&d, &"z".repeat(1025), &[], true),
        Err(PolicyViolation::TooLong { max_bytes: 1024 })
    );
    // Lower case only, spaces, emoji: all fine.
    assert_eq!(check(&d, "🔑 under the doormat", &[], false), Ok(()));
    // A minimum above 64 is capped so 64 characters are always accepted.
    let capped = PasswordPolicy::default().min_chars(100);
    assert_eq!(check(&capped, sixty_four, &[], false), Ok(()));
}

#[test]
fn common_passwords_are_refused_case_insensitively() {
    let d = PasswordPolicy::default();
    for pw in [
        "password",
        "PASSWORD",
        "Password",
        "12345678",
        "iloveyou",
        "qwertyuiop",
        "ｐａｓｓｗｏｒｄ",
    ] {
        assert_eq!(
            check(&d, pw, &[], false),
            Err(PolicyViolation::Common),
            "{pw}"
        );
    }
    let extra = PasswordPolicy::default().extra_blocklist(vec!["Hunter2Hunter2".into()]);
    assert_eq!(
        check(&extra, "hunter2hunter2", &[], false),
        Err(PolicyViolation::Common)
    );
    assert_eq!(check(&d, "hunter2hunter2", &[], false), Ok(()));
}

#[test]
fn context_words_are_refused() {
    let p = PasswordPolicy::default().context_words(vec!["AcmeShop".into()]);
    assert_eq!(
        check(&p, "i love acmeshop!!", &[], false),
        Err(PolicyViolation::ContainsContext)
    );
    assert_eq!(
        check(&p, "ACMESHOP-2024", &[], false),
        Err(PolicyViolation::ContainsContext)
    );
    assert_eq!(
        check(&p, "alice.smith.1990", &["alice.smith"], false),
        Err(PolicyViolation::ContainsContext)
    );
    assert_eq!(
        check(&p, "my name is BOBBY!", &["bobby"], false),
        Err(PolicyViolation::ContainsContext)
    );
    // Short context words only count when they are the whole password.
    assert_eq!(check(&p, "bob likes long walks", &["bob"], false), Ok(()));
    assert_eq!(
        check(&p, "a totally unrelated phrase", &["alice", "acme"], false),
        Ok(())
    );
}

#[test]
fn messages_are_safe_to_show() {
    let msg = PolicyViolation::TooShort { min: 15 }.to_string();
    assert!(msg.contains("15"), "{msg}");
    assert!(!PolicyViolation::Common.to_string().is_empty());
    assert!(!PolicyViolation::ContainsContext.to_string().is_empty());
    assert!(
        PolicyViolation::TooLong { max_bytes: 1024 }
            .to_string()
            .contains("1024")
    );
}
