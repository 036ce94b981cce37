//! Mapping `sqlx` errors onto [`StoreError`].

use ciam_core::store::StoreError;
use sqlx::error::ErrorKind;

// Primary SQLite result codes (the low byte of an extended code).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_IOERR: i32 = 10;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_PROTOCOL: i32 = 15;
const SQLITE_NOTADB: i32 = 26;

/// Classifies an `sqlx` error: unique violations become [`StoreError::Conflict`] named after
/// the identifier, foreign-key violations [`StoreError::NotFound`] (the owner is gone),
/// transient conditions [`StoreError::Unavailable`] and undecodable data
/// [`StoreError::Corrupt`].
pub(super) fn map(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StoreError::Conflict(conflict_label(db.message())),
            ErrorKind::ForeignKeyViolation => StoreError::NotFound,
            _ => {
                let code = db.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0) & 0xff;
                match code {
                    SQLITE_BUSY | SQLITE_LOCKED | SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN
                    | SQLITE_PROTOCOL => {
                        tracing::warn!(code, message = db.message(), "sqlite unavailable");
                        StoreError::Unavailable(db.into_error())
                    }
                    SQLITE_CORRUPT | SQLITE_NOTADB => {
                        tracing::error!(code, message = db.message(), "sqlite database corrupt");
                        StoreError::Corrupt(db.message().to_owned())
                    }
                    _ => StoreError::Other(db.into_error()),
                }
            }
        },
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_) => {
            tracing::warn!(error = %err, "sqlite unavailable");
            StoreError::Unavailable(Box::new(err))
        }
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(err.to_string()),
        other => StoreError::Other(Box::new(other)),
    }
}

/// Names the identifier behind a `UNIQUE constraint failed: table.column` message.
fn conflict_label(message: &str) -> &'static str {
    const LABELS: [(&str, &str); 9] = [
        ("users.email_canonical", "email"),
        ("users.username_canonical", "username"),
        ("users.phone", "phone"),
        ("users.id", "user"),
        ("credentials.", "credential"),
        ("sessions.", "session"),
        ("challenges.", "challenge"),
        ("audit.", "audit"),
        ("audit_log.", "audit"),
    ];
    LABELS
        .iter()
        .find(|(needle, _)| message.contains(needle))
        .map_or("record", |(_, label)| label)
}

#[cfg(test)]
mod tests {
    use super::conflict_label;

    #[test]
    fn unique_messages_name_the_identifier() {
        assert_eq!(
            conflict_label("UNIQUE constraint failed: users.email_canonical"),
            "email"
        );
        assert_eq!(
            conflict_label("UNIQUE constraint failed: users.phone"),
            "phone"
        );
        assert_eq!(
            conflict_label("UNIQUE constraint failed: challenges.secret_hash"),
            "challenge"
        );
        assert_eq!(conflict_label("something else"), "record");
    }
}
