//! Conversions between model values and PostgreSQL column values.
//!
//! Decoding never panics: a value that does not convert gives [`StoreError::Corrupt`] naming
//! the column.

use ciam_core::store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{Decode, Postgres, Row, Type};
use time::OffsetDateTime;

/// A [`StoreError::Corrupt`] for `column`.
pub(super) fn corrupt(column: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {why}"))
}

/// Reads a column, mapping type mismatches to [`StoreError::Corrupt`].
pub(super) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column).map_err(|e| corrupt(column, e))
}

/// A time as Unix nanoseconds (exact for years 1678 to 2261).
pub(super) fn time_to_db(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| StoreError::Other(format!("time {t} is outside the storable range").into()))
}

/// An optional time as Unix nanoseconds.
pub(super) fn opt_time_to_db(t: Option<OffsetDateTime>) -> Result<Option<i64>, StoreError> {
    t.map(time_to_db).transpose()
}

/// Reads a time column.
pub(super) fn time(row: &PgRow, column: &str) -> Result<OffsetDateTime, StoreError> {
    let nanos: i64 = get(row, column)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|e| corrupt(column, e))
}

/// Reads a nullable time column.
pub(super) fn opt_time(row: &PgRow, column: &str) -> Result<Option<OffsetDateTime>, StoreError> {
    let nanos: Option<i64> = get(row, column)?;
    nanos
        .map(|n| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).map_err(|e| corrupt(column, e))
        })
        .transpose()
}

/// Reads a fixed-size blob column (an id or a hash).
pub(super) fn bytes<const N: usize>(row: &PgRow, column: &str) -> Result<[u8; N], StoreError> {
    let raw: Vec<u8> = get(row, column)?;
    <[u8; N]>::try_from(raw.as_slice())
        .map_err(|_| corrupt(column, format!("expected {N} bytes, found {}", raw.len())))
}

/// Reads a nullable fixed-size blob column.
pub(super) fn opt_bytes<const N: usize>(
    row: &PgRow,
    column: &str,
) -> Result<Option<[u8; N]>, StoreError> {
    let raw: Option<Vec<u8>> = get(row, column)?;
    raw.map(|r| {
        <[u8; N]>::try_from(r.as_slice())
            .map_err(|_| corrupt(column, format!("expected {N} bytes")))
    })
    .transpose()
}

/// Reads a text column holding an enum's text form.
pub(super) fn parsed<T>(
    row: &PgRow,
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text: String = get(row, column)?;
    parse(&text).ok_or_else(|| corrupt(column, format!("unknown value {text:?}")))
}

/// Reads a JSON text column.
pub(super) fn json(row: &PgRow, column: &str) -> Result<serde_json::Value, StoreError> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e))
}

/// A version number for storage.
pub(super) fn version_to_db(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Other("version number out of range".into()))
}

/// Reads a version column.
pub(super) fn version(row: &PgRow, column: &str) -> Result<u64, StoreError> {
    let v: i64 = get(row, column)?;
    u64::try_from(v).map_err(|e| corrupt(column, e))
}

/// A JSON value as text (stored verbatim in a TEXT column).
pub(super) fn json_to_db(value: &serde_json::Value) -> String {
    value.to_string()
}
