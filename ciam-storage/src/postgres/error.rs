//! Mapping `sqlx` errors onto [`StoreError`], and retrying transient conflicts.

use std::future::Future;

use ciam_core::store::StoreError;

/// How many times an operation is attempted when PostgreSQL aborts it with a serialization
/// failure or a deadlock.
const ATTEMPTS: u32 = 3;

/// SQLSTATE classes and codes this module looks at.
mod sqlstate {
    pub(super) const UNIQUE_VIOLATION: &str = "23505";
    pub(super) const FOREIGN_KEY_VIOLATION: &str = "23503";
    pub(super) const SERIALIZATION_FAILURE: &str = "40001";
    pub(super) const DEADLOCK_DETECTED: &str = "40P01";
    pub(super) const QUERY_CANCELED: &str = "57014";
    pub(super) const ADMIN_SHUTDOWN: &str = "57P01";
    pub(super) const CRASH_SHUTDOWN: &str = "57P02";
    pub(super) const CANNOT_CONNECT_NOW: &str = "57P03";
    pub(super) const DATABASE_DROPPED: &str = "57P04";
    pub(super) const IDLE_SESSION_TIMEOUT: &str = "57P05";
    pub(super) const LOCK_NOT_AVAILABLE: &str = "55P03";
    pub(super) const READ_ONLY_TRANSACTION: &str = "25006";
    pub(super) const DATA_CORRUPTED: &str = "XX001";
    pub(super) const INDEX_CORRUPTED: &str = "XX002";
    /// Connection exceptions.
    pub(super) const CLASS_CONNECTION: &str = "08";
    /// Insufficient resources (too many connections, disk full, out of memory).
    pub(super) const CLASS_RESOURCES: &str = "53";
}

/// Classifies an `sqlx` error (see the table in the module documentation): unique violations
/// become [`StoreError::Conflict`] named after the constraint, foreign-key violations
/// [`StoreError::NotFound`] (the owner is gone), transient conditions
/// [`StoreError::Unavailable`] and undecodable data [`StoreError::Corrupt`].
pub(super) fn map(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                sqlstate::UNIQUE_VIOLATION => {
                    StoreError::Conflict(conflict_label(db.constraint().unwrap_or_default()))
                }
                sqlstate::FOREIGN_KEY_VIOLATION => StoreError::NotFound,
                sqlstate::SERIALIZATION_FAILURE
                | sqlstate::DEADLOCK_DETECTED
                | sqlstate::QUERY_CANCELED
                | sqlstate::ADMIN_SHUTDOWN
                | sqlstate::CRASH_SHUTDOWN
                | sqlstate::CANNOT_CONNECT_NOW
                | sqlstate::DATABASE_DROPPED
                | sqlstate::IDLE_SESSION_TIMEOUT
                | sqlstate::LOCK_NOT_AVAILABLE
                | sqlstate::READ_ONLY_TRANSACTION => unavailable(sqlx::Error::Database(db)),
                c if c.starts_with(sqlstate::CLASS_CONNECTION)
                    || c.starts_with(sqlstate::CLASS_RESOURCES) =>
                {
                    unavailable(sqlx::Error::Database(db))
                }
                sqlstate::DATA_CORRUPTED | sqlstate::INDEX_CORRUPTED => {
                    tracing::error!(code, message = db.message(), "postgres data corrupt");
                    StoreError::Corrupt(db.message().to_owned())
                }
                _ => StoreError::Other(db.into_error()),
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => unavailable(err),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. } => StoreError::Corrupt(err.to_string()),
        other => StoreError::Other(Box::new(other)),
    }
}

fn unavailable(err: sqlx::Error) -> StoreError {
    tracing::warn!(error = %err, "postgres unavailable");
    StoreError::Unavailable(Box::new(err))
}

/// True when `err` is PostgreSQL aborting a transaction to resolve a conflict with another one
/// (serialization failure or deadlock): the transaction was rolled back and may be retried.
fn is_retryable(err: &StoreError) -> bool {
    let StoreError::Unavailable(source) = err else {
        return false;
    };
    let Some(sqlx::Error::Database(db)) = source.downcast_ref::<sqlx::Error>() else {
        return false;
    };
    matches!(
        db.code().as_deref(),
        Some(sqlstate::SERIALIZATION_FAILURE | sqlstate::DEADLOCK_DETECTED)
    )
}

/// Runs `attempt` up to [`ATTEMPTS`] times while it fails with a serialization failure or a
/// deadlock. PostgreSQL rolls the whole transaction back in both cases, so a new attempt
/// cannot apply anything twice. The last failure is returned as
/// [`StoreError::Unavailable`].
pub(super) async fn retry<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if tries < ATTEMPTS && is_retryable(&e) => {
                tracing::debug!(error = %e, tries, "retrying after a postgres transaction conflict");
                tries += 1;
            }
            done => return done,
        }
    }
}

/// Names the identifier behind a unique violation from the constraint (index) name.
fn conflict_label(constraint: &str) -> &'static str {
    match constraint {
        "users_email_canonical" => "email",
        "users_username_canonical" => "username",
        "users_phone" => "phone",
        "users_pkey" => "user",
        c if c.starts_with("credentials_") => "credential",
        c if c.starts_with("sessions_") => "session",
        c if c.starts_with("challenges_") => "challenge",
        c if c.starts_with("audit_") => "audit",
        _ => "record",
    }
}

#[cfg(test)]
mod tests {
    use super::conflict_label;

    #[test]
    fn constraint_names_name_the_identifier() {
        assert_eq!(conflict_label("users_email_canonical"), "email");
        assert_eq!(conflict_label("users_username_canonical"), "username");
        assert_eq!(conflict_label("users_phone"), "phone");
        assert_eq!(conflict_label("sessions_token_hash"), "session");
        assert_eq!(conflict_label("challenges_pkey"), "challenge");
        assert_eq!(conflict_label("something_else"), "record");
        assert_eq!(conflict_label(""), "record");
    }
}
