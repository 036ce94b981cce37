//! What the SQLite and PostgreSQL stores share: row decoding and error mapping.

use ciam_core::id::UserId;
use ciam_core::store::{StoreError, StoreResult};
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Row, Type};
use time::OffsetDateTime;

use crate::chain::{ChainHash, RecordBody, RecordId, StoredRecord};
use crate::model::{EventKind, LegalBasis, PurposeId};
use crate::store::KeyState;
use crate::store::{OutboxEvent, OutboxItem};

/// The record columns, in the order [`decode_record`] reads them.
pub(crate) const RECORD_COLUMNS: &str = "seq, user_id, subject_seq, id, kind, purpose, \
     policy_version, legal_basis, application, channel, text_hash, at, expires_at, sealed, \
     prev_hash, prev_subject_hash, hash";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("consent ledger: bad {what}"))
}

pub(crate) fn time_from_db(ns: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).map_err(|_| corrupt("time"))
}

pub(crate) fn time_to_db(t: OffsetDateTime) -> i64 {
    crate::chain::nanos(t)
}

pub(crate) fn u64_to_db(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Other("sequence number out of range".into()))
}

fn u64_from_db(v: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what))
}

fn bytes<const N: usize>(v: Vec<u8>, what: &str) -> Result<[u8; N], StoreError> {
    v.try_into().map_err(|_| corrupt(what))
}

fn get<'r, R, T>(row: &'r R, i: usize, what: &str) -> Result<T, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(i).map_err(|_| corrupt(what))
}

/// Decodes a row selected with [`RECORD_COLUMNS`].
pub(crate) fn decode_record<'r, R>(row: &'r R) -> Result<StoredRecord, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    Option<Vec<u8>>: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let kind: String = get(row, 4, "kind")?;
    let purpose: String = get(row, 5, "purpose")?;
    let basis: String = get(row, 7, "legal basis")?;
    let text_hash: Option<Vec<u8>> = get(row, 10, "text hash")?;
    let expires_at: Option<i64> = get(row, 12, "expiry")?;
    let body = RecordBody {
        id: RecordId::from_bytes(bytes(get(row, 3, "id")?, "id")?),
        user: UserId::from_bytes(bytes(get(row, 1, "user id")?, "user id")?),
        kind: EventKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        purpose: PurposeId::new(&purpose).map_err(|_| corrupt("purpose"))?,
        policy_version: u32::try_from(get::<_, i64>(row, 6, "policy version")?)
            .map_err(|_| corrupt("policy version"))?,
        basis: LegalBasis::parse(&basis).ok_or_else(|| corrupt("legal basis"))?,
        application: get(row, 8, "application")?,
        channel: get(row, 9, "channel")?,
        text_hash: text_hash.map(|h| bytes(h, "text hash")).transpose()?,
        at: time_from_db(get(row, 11, "time")?)?,
        expires_at: expires_at.map(time_from_db).transpose()?,
        sealed: get(row, 13, "sealed data")?,
    };
    Ok(StoredRecord {
        seq: u64_from_db(get(row, 0, "seq")?, "seq")?,
        subject_seq: u64_from_db(get(row, 2, "subject seq")?, "subject seq")?,
        prev_hash: ChainHash(bytes(get(row, 14, "prev hash")?, "prev hash")?),
        prev_subject_hash: ChainHash(bytes(
            get(row, 15, "prev subject hash")?,
            "prev subject hash",
        )?),
        hash: ChainHash(bytes(get(row, 16, "hash")?, "hash")?),
        body,
    })
}

/// Decodes an outbox row `(id, attempts, payload)`.
pub(crate) fn decode_outbox<'r, R>(row: &'r R) -> Result<OutboxItem, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let payload: String = get(row, 2, "outbox payload")?;
    let event: OutboxEvent =
        serde_json::from_str(&payload).map_err(|_| corrupt("outbox payload"))?;
    Ok(OutboxItem {
        id: u64_from_db(get(row, 0, "outbox id")?, "outbox id")?,
        attempts: u32::try_from(get::<_, i64>(row, 1, "outbox attempts")?)
            .map_err(|_| corrupt("outbox attempts"))?,
        event,
    })
}

/// The outbox payload of a record.
pub(crate) fn outbox_payload(record: &StoredRecord) -> Result<String, StoreError> {
    serde_json::to_string(&OutboxEvent::from(record)).map_err(|e| StoreError::Other(Box::new(e)))
}

/// Maps an `sqlx` error: unique violations to `Conflict("record")`, foreign-key violations
/// to `NotFound`, connection trouble, timeouts, busy databases, serialization failures and
/// deadlocks to `Unavailable`, undecodable values to `Corrupt`, the rest to `Other`.
pub(crate) fn map(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            use sqlx::error::ErrorKind;
            match db.kind() {
                ErrorKind::UniqueViolation => StoreError::Conflict("record"),
                ErrorKind::ForeignKeyViolation => StoreError::NotFound,
                _ => {
                    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                    // PostgreSQL: serialization failure, deadlock, cancel/timeout, shutdown,
                    // connection and resource classes. SQLite: BUSY (5) and LOCKED (6).
                    let transient = matches!(code.as_str(), "40001" | "40P01" | "57014" | "55P03")
                        || code.starts_with("57P")
                        || code.starts_with("08")
                        || code.starts_with("53")
                        || code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
                    if transient {
                        StoreError::Unavailable(db.into_error())
                    } else {
                        StoreError::Other(db.into_error())
                    }
                }
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(Box::new(err)),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(err.to_string()),
        other => StoreError::Other(Box::new(other)),
    }
}

/// A `(seq, hash)` head row.
pub(crate) fn head(row: Option<(i64, Vec<u8>)>) -> StoreResult<Option<(u64, ChainHash)>> {
    row.map(|(seq, hash)| {
        let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt("bad seq".into()))?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("bad hash".into()))?;
        Ok((seq, ChainHash(hash)))
    })
    .transpose()
}

/// A `(wrapped, erased_at)` key row.
pub(crate) fn key_state(row: Option<(Option<Vec<u8>>, Option<i64>)>) -> StoreResult<KeyState> {
    Ok(match row {
        None => KeyState::Absent,
        Some((_, Some(erased))) => KeyState::Erased(time_from_db(erased)?),
        Some((Some(w), None)) => KeyState::Present(w),
        Some((None, None)) => {
            return Err(StoreError::Corrupt(
                "consent key row with neither key nor tombstone".into(),
            ));
        }
    })
}

/// `INSERT INTO {table} (…) VALUES (…)` for a whole record; `placeholder(i)` names the
/// `i`-th parameter (1-based): `?` for SQLite, `$i` for PostgreSQL.
pub(crate) fn insert_record_sql(table: &str, placeholder: impl Fn(usize) -> String) -> String {
    let params: Vec<String> = (1..=17).map(placeholder).collect();
    format!(
        "INSERT INTO {table} ({RECORD_COLUMNS}) VALUES ({})",
        params.join(", ")
    )
}

/// Binds a record's columns, in [`RECORD_COLUMNS`] order, to `query`.
pub(crate) fn bind_record<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    r: &'q StoredRecord,
) -> StoreResult<Query<'q, DB, <DB as Database>::Arguments<'q>>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    Vec<u8>: Encode<'q, DB> + Type<DB>,
    Option<Vec<u8>>: Encode<'q, DB> + Type<DB>,
    &'q str: Encode<'q, DB> + Type<DB>,
{
    let b = &r.body;
    Ok(query
        .bind(u64_to_db(r.seq)?)
        .bind(b.user.to_bytes().to_vec())
        .bind(u64_to_db(r.subject_seq)?)
        .bind(b.id.to_bytes().to_vec())
        .bind(b.kind.as_str())
        .bind(b.purpose.as_str())
        .bind(i64::from(b.policy_version))
        .bind(b.basis.as_str())
        .bind(b.application.as_str())
        .bind(b.channel.as_str())
        .bind(b.text_hash.map(|h| h.to_vec()))
        .bind(time_to_db(b.at))
        .bind(b.expires_at.map(time_to_db))
        .bind(b.sealed.clone())
        .bind(r.prev_hash.0.to_vec())
        .bind(r.prev_subject_hash.0.to_vec())
        .bind(r.hash.0.to_vec()))
}
