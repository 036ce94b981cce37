//! Accounts and credentials.

use async_trait::async_trait;
use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{CredentialId, UserId};
use ciam_core::identifier::{Email, Phone};
use ciam_core::store::{CredentialStore, IdentityStore, StoreError, StoreResult};
use ciam_core::user::User;
use sqlx::postgres::PgArguments;
use sqlx::{Executor, Postgres};
use time::OffsetDateTime;

use super::PostgresBackend;
use super::codec;
use super::error::{self, retry};
use crate::sql::rows::{CREDENTIAL_COLUMNS, USER_COLUMNS, UserRow, decode_credential, decode_user};

impl PostgresBackend {
    async fn insert_credential_with<'c, E>(&self, executor: E, c: &Credential) -> StoreResult<()>
    where
        E: Executor<'c, Database = Postgres>,
    {
        let sql = format!(
            "INSERT INTO {} (id, user_id, kind, secret, name, lookup, created_at, updated_at,
                             last_used_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            self.table("credentials")
        );
        sqlx::query(&sql)
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

    /// After an `UPDATE … WHERE id = $1 AND version = $2` matched nothing: tells a missing
    /// record from a stale version.
    async fn missing_or_stale(&self, table: &str, id: Vec<u8>) -> StoreError {
        let sql = format!("SELECT 1 FROM {} WHERE id = $1", self.table(table));
        match sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await {
            Ok(Some(_)) => StoreError::VersionConflict,
            Ok(None) => StoreError::NotFound,
            Err(e) => error::map(e),
        }
    }

    async fn create_user_once(&self, user: &User, credentials: &[Credential]) -> StoreResult<()> {
        let row = UserRow::encode(user)?;
        let sql = format!(
            "INSERT INTO {} (id, tenant_id, status, email, email_canonical, email_verified_at, phone,
                             phone_verified_at, username, username_canonical, profile, region,
                             created_at, updated_at, version, last_active_at, dormancy_notice_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            self.table("users")
        );
        let mut tx = self.pool.begin().await.map_err(error::map)?;
        let (active, notice) = (row.last_active_at, row.dormancy_notice_at);
        bind_user(sqlx::query(&sql), row)
            .bind(codec::version_to_db(user.version)?)
            .bind(active)
            .bind(notice)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        for c in credentials {
            self.insert_credential_with(&mut *tx, c).await?;
        }
        // Dropping `tx` on an early return rolls everything back.
        tx.commit().await.map_err(error::map)
    }

    async fn update_user_once(&self, user: &User) -> StoreResult<User> {
        let row = UserRow::encode(user)?;
        let id = row.id.clone();
        let sql = format!(
            "UPDATE {} SET tenant_id = $2, status = $3, email = $4, email_canonical = $5,
                           email_verified_at = $6, phone = $7, phone_verified_at = $8, username = $9,
                           username_canonical = $10, profile = $11, region = $12, created_at = $13,
                           updated_at = $14, dormancy_notice_at = $16, version = version + 1
             WHERE id = $1 AND version = $15",
            self.table("users")
        );
        let notice = row.dormancy_notice_at;
        let done = bind_user(sqlx::query(&sql), row)
            .bind(codec::version_to_db(user.version)?)
            .bind(notice)
            .execute(&self.pool)
            .await
            .map_err(error::map)?;
        if done.rows_affected() == 0 {
            return Err(self.missing_or_stale("users", id).await);
        }
        let mut stored = user.clone();
        stored.version = user.version.saturating_add(1);
        Ok(stored)
    }

    async fn user_where(&self, column: &str, value: Vec<u8>) -> StoreResult<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM {} WHERE {column} = $1",
            self.table("users")
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(error::map)?;
        row.as_ref().map(decode_user).transpose()
    }

    async fn update_credential_once(&self, credential: &Credential) -> StoreResult<Credential> {
        let id = credential.id.to_bytes().to_vec();
        let sql = format!(
            "UPDATE {} SET secret = $1, name = $2, updated_at = $3, version = version + 1
             WHERE id = $4 AND version = $5 RETURNING {CREDENTIAL_COLUMNS}",
            self.table("credentials")
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
            None => Err(self.missing_or_stale("credentials", id).await),
        }
    }
}

/// Binds the fourteen user columns in table order (everything but `version`) as `$1`–`$14`.
fn bind_user<'q>(
    q: sqlx::query::Query<'q, Postgres, PgArguments>,
    r: UserRow,
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
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
impl IdentityStore for PostgresBackend {
    async fn create_user(&self, user: &User, credentials: &[Credential]) -> StoreResult<()> {
        retry(move || self.create_user_once(user, credentials)).await
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        retry(move || self.user_where("id", id.to_bytes().to_vec())).await
    }

    async fn user_by_phone(&self, phone: &Phone) -> StoreResult<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM {} WHERE phone = $1",
            self.table("users")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let row = sqlx::query(sql)
                .bind(phone.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
            row.as_ref().map(decode_user).transpose()
        })
        .await
    }

    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM {} WHERE email_canonical = $1",
            self.table("users")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let row = sqlx::query(sql)
                .bind(email.canonical())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
            row.as_ref().map(decode_user).transpose()
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<User> {
        retry(move || self.update_user_once(user)).await
    }

    async fn touch_user_activity(&self, id: UserId, at: OffsetDateTime) -> StoreResult<bool> {
        let sql = format!(
            "UPDATE {} SET last_active_at = GREATEST(COALESCE(last_active_at, $1), $1) WHERE id = $2",
            self.table("users")
        );
        let sql = sql.as_str();
        let at = codec::time_to_db(at)?;
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(at)
                .bind(id.to_bytes().to_vec())
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn dormant_users(
        &self,
        inactive_since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM {} WHERE COALESCE(last_active_at, created_at) < $1 \
             ORDER BY COALESCE(last_active_at, created_at), id LIMIT $2",
            self.table("users")
        );
        let sql = sql.as_str();
        let since = codec::time_to_db(inactive_since)?;
        retry(move || async move {
            let rows = sqlx::query(sql)
                .bind(since)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(error::map)?;
            rows.iter().map(decode_user).collect()
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
        // Credentials, sessions and challenges go with it (ON DELETE CASCADE).
        let sql = format!("DELETE FROM {} WHERE id = $1", self.table("users"));
        let sql = sql.as_str();
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(id.to_bytes().to_vec())
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }
}

#[async_trait]
impl CredentialStore for PostgresBackend {
    async fn insert_credential(&self, credential: &Credential) -> StoreResult<()> {
        retry(move || self.insert_credential_with(&self.pool, credential)).await
    }

    async fn credential_by_id(&self, id: CredentialId) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM {} WHERE id = $1",
            self.table("credentials")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let row = sqlx::query(sql)
                .bind(id.to_bytes().to_vec())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
            row.as_ref().map(decode_credential).transpose()
        })
        .await
    }

    async fn credential_by_lookup(
        &self,
        kind: CredentialKind,
        lookup: &[u8],
    ) -> StoreResult<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM {} WHERE kind = $1 AND lookup = $2",
            self.table("credentials")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let row = sqlx::query(sql)
                .bind(kind.as_str())
                .bind(lookup)
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)?;
            row.as_ref().map(decode_credential).transpose()
        })
        .await
    }

    async fn credentials_for_user(
        &self,
        user: UserId,
        kind: CredentialKind,
    ) -> StoreResult<Vec<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM {} WHERE user_id = $1 AND kind = $2 ORDER BY created_at, id",
            self.table("credentials")
        );
        let sql = sql.as_str();
        retry(move || async move {
            let rows = sqlx::query(sql)
                .bind(user.to_bytes().to_vec())
                .bind(kind.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(error::map)?;
            rows.iter().map(decode_credential).collect()
        })
        .await
    }

    async fn update_credential(&self, credential: &Credential) -> StoreResult<Credential> {
        retry(move || self.update_credential_once(credential)).await
    }

    async fn touch_credential(&self, id: CredentialId, at: OffsetDateTime) -> StoreResult<()> {
        let sql = format!(
            "UPDATE {} SET last_used_at = $1 WHERE id = $2",
            self.table("credentials")
        );
        let sql = sql.as_str();
        let at = codec::time_to_db(at)?;
        retry(move || async move {
            sqlx::query(sql)
                .bind(at)
                .bind(id.to_bytes().to_vec())
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(())
        })
        .await
    }

    async fn delete_credential(&self, id: CredentialId) -> StoreResult<bool> {
        let sql = format!("DELETE FROM {} WHERE id = $1", self.table("credentials"));
        let sql = sql.as_str();
        retry(move || async move {
            let done = sqlx::query(sql)
                .bind(id.to_bytes().to_vec())
                .execute(&self.pool)
                .await
                .map_err(error::map)?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }
}
