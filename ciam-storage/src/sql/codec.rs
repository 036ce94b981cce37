//! Conversions between model values and SQL column values, shared by the SQLite and
//! PostgreSQL backends: both store ids and hashes as byte strings, times as Unix nanoseconds,
//! enums as text and JSON as text, so only reading a typed column differs between them
//! ([`Columns`]).
//!
//! Decoding never panics: a value that does not convert gives [`StoreError::Corrupt`] naming
//! the column.

use ciam_core::store::StoreError;
use time::OffsetDateTime;

/// Typed column access on a result row of either database.
pub(crate) trait Columns {
    /// An integer column.
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    /// A nullable integer column.
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    /// A small-integer column (`SMALLINT` in PostgreSQL).
    fn small_int(&self, column: &str) -> Result<i16, sqlx::Error>;
    /// A byte-string column.
    fn blob(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
    /// A nullable byte-string column.
    fn opt_blob(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
    /// A text column.
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    /// A nullable text column.
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
}

macro_rules! impl_columns {
    ($row:ty) => {
        impl Columns for $row {
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn small_int(&self, column: &str) -> Result<i16, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn blob(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn opt_blob(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_columns!(sqlx::sqlite::SqliteRow);
#[cfg(feature = "postgres")]
impl_columns!(sqlx::postgres::PgRow);

/// A value type [`get`] can read.
pub(crate) trait FromColumn: Sized {
    /// Reads the column.
    fn read<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Self, StoreError>;
}

macro_rules! from_column {
    ($($t:ty => $method:ident),* $(,)?) => {$(
        impl FromColumn for $t {
            fn read<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Self, StoreError> {
                row.$method(column).map_err(|e| corrupt(column, e))
            }
        }
    )*};
}

from_column!(
    i64 => int,
    Option<i64> => opt_int,
    i16 => small_int,
    Vec<u8> => blob,
    Option<Vec<u8>> => opt_blob,
    String => text,
    Option<String> => opt_text,
);

/// A [`StoreError::Corrupt`] for `column`.
pub(crate) fn corrupt(column: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{column}: {why}"))
}

/// Reads a column, mapping type mismatches to [`StoreError::Corrupt`].
pub(crate) fn get<T: FromColumn, R: Columns + ?Sized>(
    row: &R,
    column: &str,
) -> Result<T, StoreError> {
    T::read(row, column)
}

/// A time as Unix nanoseconds (exact for years 1678 to 2261).
pub(crate) fn time_to_db(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| StoreError::Other(format!("time {t} is outside the storable range").into()))
}

/// An optional time as Unix nanoseconds.
pub(crate) fn opt_time_to_db(t: Option<OffsetDateTime>) -> Result<Option<i64>, StoreError> {
    t.map(time_to_db).transpose()
}

/// Reads a time column.
pub(crate) fn time(
    row: &(impl Columns + ?Sized),
    column: &str,
) -> Result<OffsetDateTime, StoreError> {
    let nanos: i64 = get(row, column)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).map_err(|e| corrupt(column, e))
}

/// Reads a nullable time column.
pub(crate) fn opt_time(
    row: &(impl Columns + ?Sized),
    column: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let nanos: Option<i64> = get(row, column)?;
    nanos
        .map(|n| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).map_err(|e| corrupt(column, e))
        })
        .transpose()
}

/// Reads a fixed-size blob column (an id or a hash).
pub(crate) fn bytes<const N: usize>(
    row: &(impl Columns + ?Sized),
    column: &str,
) -> Result<[u8; N], StoreError> {
    let raw: Vec<u8> = get(row, column)?;
    <[u8; N]>::try_from(raw.as_slice())
        .map_err(|_| corrupt(column, format!("expected {N} bytes, found {}", raw.len())))
}

/// Reads a nullable fixed-size blob column.
pub(crate) fn opt_bytes<const N: usize>(
    row: &(impl Columns + ?Sized),
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
pub(crate) fn parsed<T>(
    row: &(impl Columns + ?Sized),
    column: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let text: String = get(row, column)?;
    parse(&text).ok_or_else(|| corrupt(column, format!("unknown value {text:?}")))
}

/// Reads a JSON text column.
pub(crate) fn json(
    row: &(impl Columns + ?Sized),
    column: &str,
) -> Result<serde_json::Value, StoreError> {
    let text: String = get(row, column)?;
    serde_json::from_str(&text).map_err(|e| corrupt(column, e))
}

/// A version number for storage.
pub(crate) fn version_to_db(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Other("version number out of range".into()))
}

/// Reads a version column.
pub(crate) fn version(row: &(impl Columns + ?Sized), column: &str) -> Result<u64, StoreError> {
    let v: i64 = get(row, column)?;
    u64::try_from(v).map_err(|e| corrupt(column, e))
}

/// A JSON value as text.
pub(crate) fn json_to_db(value: &serde_json::Value) -> String {
    value.to_string()
}
