//! Accounts and credentials.

use async_trait::async_trait;
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{CredentialId, UserId};
use ciam_core::identifier::{Email, Phone};
use ciam_core::store::{CredentialStore, IdentityStore, StoreError, StoreResult};
use ciam_core::user::User;
use sqlx::sqlite::SqliteArguments;
use sqlx::{Executor, Sqlite};
use time::OffsetDateTime;

use super::SqliteBackend;
use super::codec;
use super::error;
use crate::sql::rows::{CREDENTIAL_COLUMNS, USER_COLUMNS, UserRow, decode_credential, decode_user};

async fn insert_credential_with<'c, E>(executor: E, c: &Credential) -> StoreResult<()>
where
    E: Executor<'c, Database = Sqlite>,
{
    sqlx::query(
        "INSERT INTO credentials (id, user_id, kind, secret, name, lookup, created_at, updated_at,
                                  last_used_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.id.to_bytes().to_vec())
    .bind(c.user_id.to_bytes().to_vec())
    .bind(c.kind.as_str())
    .bind(c.secret.as_str())
    .bind(c.name.as_deref())
    .bind(c.lookup.as_deref())
    .bind(codec::time_to_db(c.created_at)?)
    .bind(codec::time_to_db(c.updated_at)?)
    .bind(codec::opt_time_to_db(c.last_used_at)?)
    .bind(codec::version_to_db(c.version)?)
    .execute(executor)
    .await
    .map_err(error::map)?;
    Ok(())
}

/// After an `UPDATE … WHERE id = ? AND version = ?` matched nothing: tells a missing record
/// from a stale version.
async fn missing_or_stale(backend: &SqliteBackend, table: &str, id: Vec<u8>) -> StoreError {
    let sql = format!("SELECT 1 FROM {table} WHERE id = ?");
    match sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&backend.pool)
        .await
    {
        Ok(Some(_)) => StoreError::VersionConflict,
        Ok(None) => StoreError::NotFound,
        Err(e) => error::map(e),
    }
}

#[async_trait]
impl IdentityStore for SqliteBackend {
    async fn create_user(&self, user: &User, credentials: &[Credential]) -> StoreResult<()> {
        let row = UserRow::encode(user)?;
        let mut tx = self.pool.begin().await.map_err(error::map)?;
        let insert = sqlx::query(
            "INSERT INTO users (id, tenant_id, status, email, email_canonical, email_verified_at, phone,
                                phone_verified_at, username, username_canonical, profile, region,
                                created_at, updated_at, version, last_active_at, dormancy_notice_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let (active, notice) = (row.last_active_at, row.dormancy_notice_at);
        bind_user(insert, row)
            .bind(codec::version_to_db(user.version)?)
            .bind(active)
            .bind(notice)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        for c in credentials {
            insert_credential_with(&mut *tx, c).await?;
        }
        // Dropping `tx` on an early return rolls everything back.
        tx.commit().await.map_err(error::map)
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.as_ref().map(decode_user).transpose()
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_canonical = ?");
        let row = sqlx::query(&sql)
            .bind(email.canonical())
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.as_ref().map(decode_user).transpose()
    }

    async fn user_by_phone(&self, phone: &Phone) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE phone = ?");
        let row = sqlx::query(&sql)
            .bind(phone.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.as_ref().map(decode_user).transpose()
    }

    async fn update_user(&self, user: &User) -> StoreResult<User> {
        let row = UserRow::encode(user)?;
        let id = row.id.clone();
        let update = sqlx::query(
            "UPDATE users SET id = ?, tenant_id = ?, status = ?, email = ?, email_canonical = ?,
                              email_verified_at = ?, phone = ?, phone_verified_at = ?, username = ?,
                              username_canonical = ?, profile = ?, region = ?, created_at = ?,
                              updated_at = ?, dormancy_notice_at = ?, version = version + 1
             WHERE id = ? AND version = ?",
        );
        let notice = row.dormancy_notice_at;
        let done = bind_user(update, row)
            .bind(notice)
            .bind(id.clone())
            .bind(codec::version_to_db(user.version)?)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        if done.rows_affected() == 0 {
            return Err(missing_or_stale(self, "users", id).await);
        }
        let mut stored = user.clone();
        stored.version = user.version.saturating_add(1);
        Ok(stored)
    }

    async fn touch_user_activity(&self, id: UserId, at: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE users SET last_active_at = MAX(COALESCE(last_active_at, ?1), ?1) WHERE id = ?2",
        )
        .bind(codec::time_to_db(at)?)
        .bind(id.to_bytes().to_vec())
        .execute(&self.pool)
        .await
        .map_err(error::map)?;
        Ok(done.rows_affected() > 0)
    }

    async fn dormant_users(
        &self,
        inactive_since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE COALESCE(last_active_at, created_at) < ? \
             ORDER BY COALESCE(last_active_at, created_at), id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(codec::time_to_db(inactive_since)?)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)?;
        rows.iter().map(decode_user).collect()
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        // Credentials, sessions and challenges go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id.to_bytes().to_vec())
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(done.rows_affected() > 0)
    }
}

/// Binds the fourteen user columns in table order (everything but `version`).
fn bind_user<'q>(
    q: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    r: UserRow,
) -> sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>> {
    q.bind(r.id)
        .bind(r.tenant_id)
        .bind(r.status)
        .bind(r.email)
        .bind(r.email_canonical)
        .bind(r.email_verified_at)
        .bind(r.phone)
        .bind(r.phone_verified_at)
        .bind(r.username)
        .bind(r.username_canonical)
        .bind(r.profile)
        .bind(r.region)
        .bind(r.created_at)
        .bind(r.updated_at)
}

#[async_trait]
impl CredentialStore for SqliteBackend {
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()> {
        insert_credential_with(&self.pool, credential).await
    }

    async fn credential_by_id(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = ?");
        let row = sqlx::query(&sql)
            .bind(id.to_bytes().to_vec())
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.as_ref().map(decode_credential).transpose()
    }

    async fn credential_by_lookup(
        &self,
        kind: CredentialKind,
        lookup: &[u8],
    ) -> StoreResult<Option<Credential>> {
        let sql =
            format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE kind = ? AND lookup = ?");
        let row = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(lookup)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.as_ref().map(decode_credential).transpose()
    }

    async fn credentials_for_user(
        &self,
        user: UserId,
        kind: CredentialKind,
    ) -> StoreResult<Vec<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE user_id = ? AND kind = ? ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql)
            .bind(user.to_bytes().to_vec())
            .bind(kind.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(error::map)?;
        rows.iter().map(decode_credential).collect()
    }

    async fn update_credential(&self, credential: &Credential) -> StoreResult<Credential> {
        let id = credential.id.to_bytes().to_vec();
        let sql = format!(
            "UPDATE credentials SET secret = ?, name = ?, updated_at = ?, version = version + 1
             WHERE id = ? AND version = ? RETURNING {CREDENTIAL_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(credential.secret.as_str())
            .bind(credential.name.as_deref())
            .bind(codec::time_to_db(credential.updated_at)?)
            .bind(id.clone())
            .bind(codec::version_to_db(credential.version)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        match row {
            Some(row) => decode_credential(&row),
            None => Err(missing_or_stale(self, "credentials", id).await),
        }
    }

    async fn touch_credential(&self, id: CredentialId, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE credentials SET last_used_at = ? WHERE id = ?")
            .bind(codec::time_to_db(at)?)
            .bind(id.to_bytes().to_vec())
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(())
    }

    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM credentials WHERE id = ?")
            .bind(id.to_bytes().to_vec())
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        Ok(done.rows_affected() > 0)
    }
}
