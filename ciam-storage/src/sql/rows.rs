//! Decoding result rows into model values, the same for both SQL backends.

use ciam_core::audit::{
    AuditAction, AuditHash, AuditOutcome, AuditRecord, AuditRecordBody, StoredPersonal,
};
use ciam_core::challenge::{Challenge, ChallengePurpose};
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{AuditId, CredentialId, SessionId, TenantId, UserId};
use ciam_core::identifier::{Email, Phone, Username};
use ciam_core::secret::TokenHash;
use ciam_core::session::{Aal, AuthMethod, DeviceInfo, Session};
use ciam_core::shred::KeyState;
use ciam_core::store::{StoreError, StoreResult};
use ciam_core::user::{ProfileAttributes, Region, User, UserStatus};

use time::OffsetDateTime;

use super::codec::{self, Columns, corrupt};

pub(crate) const USER_COLUMNS: &str = "id, tenant_id, status, email, email_verified_at, phone, phone_verified_at, \
                            username, profile, region, created_at, updated_at, version, \
                            last_active_at, dormancy_notice_at";
pub(crate) const CREDENTIAL_COLUMNS: &str =
    "id, user_id, kind, secret, name, lookup, created_at, updated_at, last_used_at, version";

/// The column values of a user, encoded for binding.
pub(crate) struct UserRow {
    pub(crate) id: Vec<u8>,
    pub(crate) tenant_id: Option<Vec<u8>>,
    pub(crate) status: &'static str,
    pub(crate) email: Option<String>,
    pub(crate) email_canonical: Option<String>,
    pub(crate) email_verified_at: Option<i64>,
    pub(crate) phone: Option<String>,
    pub(crate) phone_verified_at: Option<i64>,
    pub(crate) username: Option<String>,
    pub(crate) username_canonical: Option<String>,
    pub(crate) profile: String,
    pub(crate) region: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) last_active_at: Option<i64>,
    pub(crate) dormancy_notice_at: Option<i64>,
}

impl UserRow {
    pub(crate) fn encode(u: &User) -> StoreResult<Self> {
        Ok(Self {
            id: u.id.to_bytes().to_vec(),
            tenant_id: u.tenant.map(|t| t.to_bytes().to_vec()),
            status: u.status.as_str(),
            email: u.email.as_ref().map(|e| e.as_str().to_owned()),
            email_canonical: u.email.as_ref().map(|e| e.canonical().to_owned()),
            email_verified_at: codec::opt_time_to_db(u.email_verified_at)?,
            phone: u.phone.as_ref().map(|p| p.as_str().to_owned()),
            phone_verified_at: codec::opt_time_to_db(u.phone_verified_at)?,
            username: u.username.as_ref().map(|n| n.as_str().to_owned()),
            username_canonical: u.username.as_ref().map(|n| n.canonical().to_owned()),
            profile: serde_json::to_string(&u.profile)
                .map_err(|e| StoreError::Other(Box::new(e)))?,
            region: u.region.as_ref().map(|r| r.as_str().to_owned()),
            created_at: codec::time_to_db(u.created_at)?,
            updated_at: codec::time_to_db(u.updated_at)?,
            last_active_at: codec::opt_time_to_db(u.last_active_at)?,
            dormancy_notice_at: codec::opt_time_to_db(u.dormancy_notice_at)?,
        })
    }
}

pub(crate) fn decode_user(row: &(impl Columns + ?Sized)) -> StoreResult<User> {
    let id = UserId::from_bytes(codec::bytes(row, "id")?);
    let mut user = User::new(id, codec::time(row, "created_at")?);
    user.tenant = codec::opt_bytes(row, "tenant_id")?.map(TenantId::from_bytes);
    user.status = codec::parsed(row, "status", UserStatus::parse)?;
    let email: Option<String> = codec::get(row, "email")?;
    user.email = email
        .map(|e| Email::parse(&e).map_err(|err| corrupt("email", err)))
        .transpose()?;
    user.email_verified_at = codec::opt_time(row, "email_verified_at")?;
    let phone: Option<String> = codec::get(row, "phone")?;
    user.phone = phone
        .map(|p| Phone::parse(&p).map_err(|err| corrupt("phone", err)))
        .transpose()?;
    user.phone_verified_at = codec::opt_time(row, "phone_verified_at")?;
    let username: Option<String> = codec::get(row, "username")?;
    user.username = username
        .map(|n| Username::parse(&n).map_err(|err| corrupt("username", err)))
        .transpose()?;
    user.profile = match codec::json(row, "profile")? {
        serde_json::Value::Object(map) => map.into_iter().collect::<ProfileAttributes>(),
        other => {
            return Err(corrupt(
                "profile",
                format!("expected a JSON object, found {other}"),
            ));
        }
    };
    let region: Option<String> = codec::get(row, "region")?;
    user.region = region
        .map(|r| Region::new(&r).ok_or_else(|| corrupt("region", "malformed tag")))
        .transpose()?;
    user.updated_at = codec::time(row, "updated_at")?;
    user.version = codec::version(row, "version")?;
    user.last_active_at = codec::opt_time(row, "last_active_at")?;
    user.dormancy_notice_at = codec::opt_time(row, "dormancy_notice_at")?;
    Ok(user)
}

pub(crate) fn decode_credential(row: &(impl Columns + ?Sized)) -> StoreResult<Credential> {
    let mut c = Credential::new(
        CredentialId::from_bytes(codec::bytes(row, "id")?),
        UserId::from_bytes(codec::bytes(row, "user_id")?),
        codec::parsed(row, "kind", CredentialKind::parse)?,
        codec::get(row, "secret")?,
        codec::time(row, "created_at")?,
    );
    c.name = codec::get(row, "name")?;
    c.lookup = codec::get(row, "lookup")?;
    c.updated_at = codec::time(row, "updated_at")?;
    c.last_used_at = codec::opt_time(row, "last_used_at")?;
    c.version = codec::version(row, "version")?;
    Ok(c)
}

/// `amr` is stored as its text forms joined by spaces (none contains a space).
pub(crate) fn encode_amr(amr: &[AuthMethod]) -> String {
    amr.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(" ")
}

pub(crate) fn decode_session(row: &(impl Columns + ?Sized)) -> StoreResult<Session> {
    let amr: String = codec::get(row, "amr")?;
    let amr = amr
        .split_whitespace()
        .map(|m| {
            AuthMethod::parse(m).ok_or_else(|| corrupt("amr", format!("unknown method {m:?}")))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let aal: i16 = codec::get(row, "aal")?;
    let aal = u8::try_from(aal)
        .ok()
        .and_then(Aal::from_level)
        .ok_or_else(|| corrupt("aal", aal))?;
    let ip: Option<String> = codec::get(row, "ip")?;
    let ip = ip
        .map(|ip| ip.parse().map_err(|e| corrupt("ip", e)))
        .transpose()?;
    Ok(Session {
        id: SessionId::from_bytes(codec::bytes(row, "id")?),
        user_id: UserId::from_bytes(codec::bytes(row, "user_id")?),
        token_hash: TokenHash::from_bytes(codec::bytes(row, "token_hash")?),
        created_at: codec::time(row, "created_at")?,
        last_seen_at: codec::time(row, "last_seen_at")?,
        idle_expires_at: codec::time(row, "idle_expires_at")?,
        absolute_expires_at: codec::time(row, "absolute_expires_at")?,
        auth_time: codec::time(row, "auth_time")?,
        amr,
        aal,
        device: DeviceInfo {
            user_agent: codec::get(row, "user_agent")?,
            ip,
        },
    })
}

/// The audit-log columns, in the order [`AuditRow`] binds them.
pub(crate) const AUDIT_COLUMNS: &str = "seq, id, at, action, outcome, reason, user_id, session_id, \
                                        personal_kind, personal, prev_hash, hash";

/// The column values of an audit record, encoded for binding.
pub(crate) struct AuditRow {
    pub(crate) seq: i64,
    pub(crate) id: Vec<u8>,
    pub(crate) at: i64,
    pub(crate) action: &'static str,
    pub(crate) outcome: &'static str,
    pub(crate) reason: String,
    pub(crate) user_id: Option<Vec<u8>>,
    pub(crate) session_id: Option<Vec<u8>>,
    pub(crate) personal_kind: i16,
    pub(crate) personal: Vec<u8>,
    pub(crate) prev_hash: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

impl AuditRow {
    pub(crate) fn encode(r: &AuditRecord) -> StoreResult<Self> {
        let b = &r.body;
        Ok(Self {
            seq: i64::try_from(r.seq).map_err(|e| corrupt("seq", e))?,
            id: b.id.to_bytes().to_vec(),
            at: codec::time_to_db(b.at)?,
            action: b.action.as_str(),
            outcome: b.outcome.as_str(),
            reason: b.reason.clone(),
            user_id: b.user_id.map(|u| u.to_bytes().to_vec()),
            session_id: b.session_id.map(|s| s.to_bytes().to_vec()),
            personal_kind: i16::from(b.personal.tag()),
            personal: b.personal.bytes().to_vec(),
            prev_hash: r.prev_hash.0.to_vec(),
            hash: r.hash.0.to_vec(),
        })
    }
}

/// The chain head `(seq, hash)` from a `SELECT seq, hash` row.
pub(crate) fn decode_head(row: Option<(i64, Vec<u8>)>) -> StoreResult<Option<(u64, AuditHash)>> {
    row.map(|(seq, hash)| {
        let seq = u64::try_from(seq).map_err(|e| corrupt("seq", e))?;
        let hash: [u8; 32] = hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("hash", "not 32 bytes"))?;
        Ok((seq, AuditHash(hash)))
    })
    .transpose()
}

/// Decodes a record exactly as stored: nothing is checked against the hash here (that is
/// verification's job), only that each column has its type.
pub(crate) fn decode_audit(row: &(impl Columns + ?Sized)) -> StoreResult<AuditRecord> {
    let seq: i64 = codec::get(row, "seq")?;
    // A record that does not decode is named, so a tampered value points at its record.
    decode_audit_fields(row, seq).map_err(|e| match e {
        StoreError::Corrupt(why) => StoreError::Corrupt(format!("audit record {seq}: {why}")),
        other => other,
    })
}

fn decode_audit_fields(row: &(impl Columns + ?Sized), seq: i64) -> StoreResult<AuditRecord> {
    let kind: i16 = codec::get(row, "personal_kind")?;
    let personal: Vec<u8> = codec::get(row, "personal")?;
    let personal = u8::try_from(kind)
        .ok()
        .and_then(|k| StoredPersonal::from_parts(k, personal))
        .ok_or_else(|| corrupt("personal_kind", "unknown kind"))?;
    Ok(AuditRecord {
        seq: u64::try_from(seq).map_err(|e| corrupt("seq", e))?,
        prev_hash: AuditHash(codec::bytes(row, "prev_hash")?),
        hash: AuditHash(codec::bytes(row, "hash")?),
        body: AuditRecordBody {
            id: AuditId::from_bytes(codec::bytes(row, "id")?),
            at: codec::time(row, "at")?,
            action: codec::parsed(row, "action", AuditAction::parse)?,
            outcome: codec::parsed(row, "outcome", AuditOutcome::parse)?,
            reason: codec::get(row, "reason")?,
            user_id: codec::opt_bytes(row, "user_id")?.map(UserId::from_bytes),
            session_id: codec::opt_bytes(row, "session_id")?.map(SessionId::from_bytes),
            personal,
        },
    })
}

pub(crate) fn decode_challenge(row: &(impl Columns + ?Sized)) -> StoreResult<Challenge> {
    Ok(Challenge::new(
        TokenHash::from_bytes(codec::bytes(row, "secret_hash")?),
        codec::parsed(row, "purpose", ChallengePurpose::parse)?,
        codec::opt_bytes(row, "user_id")?.map(UserId::from_bytes),
        codec::json(row, "payload")?,
        codec::time(row, "created_at")?,
        codec::time(row, "expires_at")?,
    ))
}

/// A data key's state from its `(wrapped, erased_at)` row.
pub(crate) fn key_state(row: Option<(Option<Vec<u8>>, Option<i64>)>) -> StoreResult<KeyState> {
    match row {
        None => Ok(KeyState::Absent),
        Some((_, Some(erased))) => OffsetDateTime::from_unix_timestamp_nanos(i128::from(erased))
            .map(KeyState::Erased)
            .map_err(|e| corrupt("erased_at", e)),
        Some((Some(wrapped), None)) => Ok(KeyState::Present(wrapped)),
        Some((None, None)) => Err(corrupt(
            "wrapped",
            "a key row with neither key nor tombstone",
        )),
    }
}
