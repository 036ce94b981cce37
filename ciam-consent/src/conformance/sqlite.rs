//! [`Tamper`] for the SQLite store: direct SQL.

use async_trait::async_trait;

use super::{Field, Tamper};
use crate::chain::StoredRecord;
use crate::sql::{bind_record, insert_record_sql};
use crate::sqlite::SqliteConsentStore;

async fn exec(store: &SqliteConsentStore, sql: &str, seq: i64) {
    sqlx::query(sql)
        .bind(seq)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("tamper `{sql}`: {e}"));
}

fn seq(v: u64) -> i64 {
    i64::try_from(v).unwrap()
}

#[async_trait]
impl Tamper for SqliteConsentStore {
    async fn edit(&self, at: u64, field: Field) {
        match field {
            Field::Kind => {
                exec(
                    self,
                    "UPDATE consent_ledger SET kind = CASE kind WHEN 'granted' THEN 'withdrawn' \
                     ELSE 'granted' END WHERE seq = ?",
                    seq(at),
                )
                .await;
            }
            Field::At => {
                exec(
                    self,
                    "UPDATE consent_ledger SET at = at + 1 WHERE seq = ?",
                    seq(at),
                )
                .await
            }
            Field::Sealed => {
                // SQLite has no byte operators on blobs: read, flip a bit, write back.
                let mut sealed: Vec<u8> =
                    sqlx::query_scalar("SELECT sealed FROM consent_ledger WHERE seq = ?")
                        .bind(seq(at))
                        .fetch_one(self.pool())
                        .await
                        .unwrap();
                *sealed.last_mut().unwrap() ^= 1;
                sqlx::query("UPDATE consent_ledger SET sealed = ? WHERE seq = ?")
                    .bind(sealed)
                    .bind(seq(at))
                    .execute(self.pool())
                    .await
                    .unwrap();
            }
        }
    }

    async fn delete(&self, at: u64) {
        exec(self, "DELETE FROM consent_ledger WHERE seq = ?", seq(at)).await;
    }

    async fn shift_up(&self, from: u64) {
        exec(
            self,
            "UPDATE consent_ledger SET seq = -(seq + 1) WHERE seq >= ?",
            seq(from),
        )
        .await;
        exec(
            self,
            "UPDATE consent_ledger SET seq = -seq WHERE seq < ?",
            0,
        )
        .await;
    }

    async fn insert(&self, r: &StoredRecord) {
        let sql = insert_record_sql("consent_ledger", |_| "?".to_owned());
        bind_record(sqlx::query(&sql), r)
            .unwrap()
            .execute(self.pool())
            .await
            .unwrap();
    }

    async fn swap(&self, a: u64, b: u64) {
        exec(
            self,
            "UPDATE consent_ledger SET seq = -1 WHERE seq = ?",
            seq(a),
        )
        .await;
        sqlx::query("UPDATE consent_ledger SET seq = ? WHERE seq = ?")
            .bind(seq(a))
            .bind(seq(b))
            .execute(self.pool())
            .await
            .unwrap();
        exec(
            self,
            "UPDATE consent_ledger SET seq = ? WHERE seq = -1",
            seq(b),
        )
        .await;
    }

    async fn dump(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let rows: Vec<(Vec<u8>, Vec<u8>, String, String, Vec<u8>)> = sqlx::query_as(
            "SELECT user_id, id, application || channel || purpose || kind, legal_basis, sealed \
             FROM consent_ledger",
        )
        .fetch_all(self.pool())
        .await
        .unwrap();
        for (a, b, c, d, e) in rows {
            out.extend(a);
            out.extend(b);
            out.extend(c.into_bytes());
            out.extend(d.into_bytes());
            out.extend(e);
        }
        let keys: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT user_id, wrapped FROM consent_keys")
                .fetch_all(self.pool())
                .await
                .unwrap();
        for (u, w) in keys {
            out.extend(u);
            out.extend(w.unwrap_or_default());
        }
        let outbox: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT payload, last_error FROM consent_outbox")
                .fetch_all(self.pool())
                .await
                .unwrap();
        for (p, e) in outbox {
            out.extend(p.into_bytes());
            out.extend(e.unwrap_or_default().into_bytes());
        }
        out
    }
}
