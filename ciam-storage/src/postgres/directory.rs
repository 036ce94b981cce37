//! [`PostgresDirectory`]: the data-residency directory in PostgreSQL, shared by every region.

use async_trait::async_trait;
use ciam_core::id::UserId;
use ciam_core::store::{StoreError, StoreResult};
use ciam_core::user::Region;
use sqlx::postgres::PgPool;
use sqlx::{Acquire, Row};

use super::error::{self, retry};
use crate::regional::{DirectoryKey, RegionDirectory};

/// Advisory lock class taken while the directory's tables are created ("crgd").
const CREATE_LOCK: i64 = 0x6372_6764;

/// A [`RegionDirectory`] in two PostgreSQL tables: `ciam_region_users` (account id, region)
/// and `ciam_region_keys` (identifier HMAC, account id). Put it in a database every region
/// reaches; it holds no identifier in clear. The tables are created on
/// [`PostgresDirectory::open`] if missing.
#[derive(Debug, Clone)]
pub struct PostgresDirectory {
    pool: PgPool,
    users: String,
    keys: String,
}

fn quoted(schema: &str, table: &str) -> String {
    format!(
        "\"{}\".\"{}\"",
        schema.replace('"', "\"\""),
        table.replace('"', "\"\"")
    )
}

impl PostgresDirectory {
    /// The directory in `schema` of the database behind `pool` (created if missing).
    pub async fn open(pool: PgPool, schema: &str) -> StoreResult<Self> {
        let users = quoted(schema, "ciam_region_users");
        let keys = quoted(schema, "ciam_region_keys");
        let index = quoted(schema, "ciam_region_keys_user");
        let mut conn = pool.acquire().await.map_err(error::map)?;
        let mut tx = conn.begin().await.map_err(error::map)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CREATE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(error::map)?;
        let statements = [
            format!(
                "CREATE SCHEMA IF NOT EXISTS \"{}\"",
                schema.replace('"', "\"\"")
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {users} (
                    user_id BYTEA PRIMARY KEY,
                    region TEXT NOT NULL
                )"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {keys} (
                    key BYTEA PRIMARY KEY,
                    user_id BYTEA NOT NULL REFERENCES {users} (user_id) ON DELETE CASCADE
                )"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {} ON {keys} (user_id)",
                index.rsplit('.').next().unwrap_or("ciam_region_keys_user")
            ),
        ];
        for sql in &statements {
            sqlx::query(sql)
                .execute(&mut *tx)
                .await
                .map_err(error::map)?;
        }
        tx.commit().await.map_err(error::map)?;
        Ok(Self { pool, users, keys })
    }

    async fn insert_keys(
        &self,
        tx: &mut sqlx::PgConnection,
        user: UserId,
        keys: &[DirectoryKey],
    ) -> StoreResult<()> {
        let sql = format!("INSERT INTO {} (key, user_id) VALUES ($1, $2)", self.keys);
        for k in keys {
            sqlx::query(&sql)
                .bind(k.as_bytes().as_slice())
                .bind(user.to_bytes().as_slice())
                .execute(&mut *tx)
                .await
                .map_err(|e| match error::map(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(k.kind()),
                    other => other,
                })?;
        }
        Ok(())
    }
}

fn region(text: &str) -> StoreResult<Region> {
    Region::new(text).ok_or_else(|| StoreError::Corrupt(format!("region {text:?}")))
}

fn user_id(bytes: &[u8]) -> StoreResult<UserId> {
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("directory user_id".into()))?;
    Ok(UserId::from_bytes(arr))
}

#[async_trait]
impl RegionDirectory for PostgresDirectory {
    async fn claim(&self, user: UserId, region: &Region, keys: &[DirectoryKey]) -> StoreResult<()> {
        retry(|| async {
            let mut conn = self.pool.acquire().await.map_err(error::map)?;
            let mut tx = conn.begin().await.map_err(error::map)?;
            sqlx::query(&format!(
                "INSERT INTO {} (user_id, region) VALUES ($1, $2)",
                self.users
            ))
            .bind(user.to_bytes().as_slice())
            .bind(region.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| match error::map(e) {
                StoreError::Conflict(_) => StoreError::Conflict("user"),
                other => other,
            })?;
            self.insert_keys(&mut tx, user, keys).await?;
            tx.commit().await.map_err(error::map)
        })
        .await
    }

    async fn set_keys(&self, user: UserId, keys: &[DirectoryKey]) -> StoreResult<()> {
        retry(|| async {
            let mut conn = self.pool.acquire().await.map_err(error::map)?;
            let mut tx = conn.begin().await.map_err(error::map)?;
            let found = sqlx::query(&format!(
                "SELECT 1 FROM {} WHERE user_id = $1 FOR UPDATE",
                self.users
            ))
            .bind(user.to_bytes().as_slice())
            .fetch_optional(&mut *tx)
            .await
            .map_err(error::map)?;
            if found.is_none() {
                return Err(StoreError::NotFound);
            }
            sqlx::query(&format!("DELETE FROM {} WHERE user_id = $1", self.keys))
                .bind(user.to_bytes().as_slice())
                .execute(&mut *tx)
                .await
                .map_err(error::map)?;
            self.insert_keys(&mut tx, user, keys).await?;
            tx.commit().await.map_err(error::map)
        })
        .await
    }

    async fn region_of(&self, user: UserId) -> StoreResult<Option<Region>> {
        let sql = format!("SELECT region FROM {} WHERE user_id = $1", self.users);
        let row = retry(|| async {
            sqlx::query(&sql)
                .bind(user.to_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)
        })
        .await?;
        row.map(|r| region(r.get::<&str, _>("region"))).transpose()
    }

    async fn lookup(&self, key: &DirectoryKey) -> StoreResult<Option<(UserId, Region)>> {
        let sql = format!(
            "SELECT u.user_id, u.region FROM {} k JOIN {} u ON u.user_id = k.user_id WHERE k.key = $1",
            self.keys, self.users
        );
        let row = retry(|| async {
            sqlx::query(&sql)
                .bind(key.as_bytes().as_slice())
                .fetch_optional(&self.pool)
                .await
                .map_err(error::map)
        })
        .await?;
        row.map(|r| {
            Ok((
                user_id(r.get::<&[u8], _>("user_id"))?,
                region(r.get::<&str, _>("region"))?,
            ))
        })
        .transpose()
    }

    async fn forget(&self, user: UserId) -> StoreResult<bool> {
        let sql = format!("DELETE FROM {} WHERE user_id = $1", self.users);
        let done = retry(|| async {
            sqlx::query(&sql)
                .bind(user.to_bytes().as_slice())
                .execute(&self.pool)
                .await
                .map_err(error::map)
        })
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
