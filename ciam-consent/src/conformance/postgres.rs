//! [`Tamper`] for the PostgreSQL store: direct SQL.

use async_trait::async_trait;

use super::{Field, Tamper};
use crate::chain::StoredRecord;
use crate::postgres::PostgresConsentStore;
use crate::sql::{bind_record, insert_record_sql};

/// `sql` with the tables qualified by the store's schema and `?` numbered as `$1`, `$2`….
fn q(store: &PostgresConsentStore, sql: &str) -> String {
    let mut out = String::new();
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    for t in ["consent_ledger", "consent_keys", "consent_outbox"] {
        out = out.replace(&format!(" {t}"), &format!(" {}", store.table(t)));
    }
    out
}

async fn exec(store: &PostgresConsentStore, sql: &str, seq: i64) {
    sqlx::query(&q(store, sql))
        .bind(seq)
        .execute(store.pool())
        .await
        .unwrap_or_else(|e| panic!("tamper `{sql}`: {e}"));
}

fn seq(v: u64) -> i64 {
    i64::try_from(v).unwrap()
}

#[async_trait]
impl Tamper for PostgresConsentStore {
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
                exec(
                    self,
                    "UPDATE consent_ledger SET sealed = set_byte(sealed, length(sealed) - 1, \
                     get_byte(sealed, length(sealed) - 1) # 1) WHERE seq = ?",
                    seq(at),
                )
                .await;
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
        let sql = insert_record_sql(&self.table("consent_ledger"), |i| format!("${i}"));
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
        sqlx::query(&q(self, "UPDATE consent_ledger SET seq = ? WHERE seq = ?"))
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
        let rows: Vec<(Vec<u8>, Vec<u8>, String, String, Vec<u8>)> = sqlx::query_as(&q(
            self,
            "SELECT user_id, id, application || channel || purpose || kind, legal_basis, sealed \
             FROM consent_ledger",
        ))
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
            sqlx::query_as(&q(self, "SELECT user_id, wrapped FROM consent_keys"))
                .fetch_all(self.pool())
                .await
                .unwrap();
        for (u, w) in keys {
            out.extend(u);
            out.extend(w.unwrap_or_default());
        }
        let outbox: Vec<(String, Option<String>)> =
            sqlx::query_as(&q(self, "SELECT payload, last_error FROM consent_outbox"))
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
