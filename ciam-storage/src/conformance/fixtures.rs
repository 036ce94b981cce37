//! Records for the checks: random ids and hashes, fixed times with nanoseconds.

use ciam_core::audit::{AuditAction, AuditOutcome, AuditRecordBody, StoredPersonal};
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{AuditId, CredentialId, SessionId, UserId};
use ciam_core::identifier::Email;
use ciam_core::rng::{SecureRandom, SystemRandom};
use ciam_core::secret::TokenHash;
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::user::User;
use time::{Duration, OffsetDateTime};

/// The reference time of every check; the nanoseconds catch backends that round.
pub(crate) fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-03-04 05:06:07.123_456_789 UTC)
}

/// `t0` plus `secs` seconds.
pub(crate) fn at(secs: i64) -> OffsetDateTime {
    t0() + Duration::seconds(secs)
}

pub(crate) fn user_id() -> UserId {
    UserId::generate(&SystemRandom::new()).expect("random user id")
}

pub(crate) fn session_id() -> SessionId {
    SessionId::generate(&SystemRandom::new()).expect("random session id")
}

pub(crate) fn credential_id() -> CredentialId {
    CredentialId::generate(&SystemRandom::new()).expect("random credential id")
}

pub(crate) fn token_hash() -> TokenHash {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("random bytes");
    TokenHash::from_bytes(bytes)
}

pub(crate) fn email(text: &str) -> Email {
    Email::parse(text).expect("valid fixture e-mail")
}

/// A minimal active account with an e-mail address, created at `t0`.
pub(crate) fn user(address: &str) -> User {
    let mut u = User::new(user_id(), t0());
    u.email = Some(email(address));
    u
}

pub(crate) fn password(user: UserId, secret: &str, created_at: OffsetDateTime) -> Credential {
    Credential::new(
        credential_id(),
        user,
        CredentialKind::Password,
        secret.to_owned(),
        created_at,
    )
}

/// A passkey credential of `user` with WebAuthn credential id `lookup`.
pub(crate) fn passkey(user: UserId, lookup: &[u8], created_at: OffsetDateTime) -> Credential {
    Credential::new(
        credential_id(),
        user,
        CredentialKind::Passkey,
        r#"{"record":"opaque"}"#.to_owned(),
        created_at,
    )
    .with_lookup(lookup.to_vec())
    .with_name("Laptop")
}

/// A session of `user` created at `t0 + created` seconds, idle-expiring `idle` seconds and
/// absolutely expiring `absolute` seconds after `t0`.
pub(crate) fn session(user: UserId, created: i64, idle: i64, absolute: i64) -> Session {
    Session {
        id: session_id(),
        user_id: user,
        token_hash: token_hash(),
        created_at: at(created),
        last_seen_at: at(created),
        idle_expires_at: at(idle),
        absolute_expires_at: at(absolute),
        auth_time: at(created),
        amr: vec![AuthMethod::Pwd, AuthMethod::Email],
        aal: Aal::Aal2,
        device: DeviceInfo {
            user_agent: Some("Mozilla/5.0 (conformance)".to_owned()),
            ip: Some("2001:db8::7".parse().expect("fixture ip")),
        },
    }
}

pub(crate) fn challenge(
    user: Option<UserId>,
    purpose: ChallengePurpose,
    created: i64,
    expires: i64,
) -> Challenge {
    Challenge::new(
        token_hash(),
        purpose,
        user,
        serde_json::json!({ "new_email": "new@example.com", "n": 1 }),
        at(created),
        at(expires),
    )
}

pub(crate) fn audit_entry(user: Option<UserId>, secs: i64, reason: &str) -> AuditRecordBody {
    let personal = serde_json::json!({ "ip": "192.0.2.10", "attempt": secs, "tags": ["a", "b"] });
    AuditRecordBody {
        id: AuditId::generate(&SystemRandom::new()).expect("random audit id"),
        at: at(secs),
        action: AuditAction::SignInPassword,
        outcome: AuditOutcome::Failure,
        reason: reason.to_owned(),
        user_id: user,
        session_id: Some(session_id()),
        personal: match user {
            // Stores never look inside: any bytes stand for a sealed part.
            Some(_) => StoredPersonal::Sealed(personal.to_string().into_bytes()),
            None => StoredPersonal::Clear(personal.to_string().into_bytes()),
        },
    }
}
