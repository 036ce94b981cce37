//! [`Tamper`](crate::conformance::Tamper) for the SQL stores: direct SQL, written once with `?`
//! placeholders and unqualified table names; each store's `sql` function adapts it (numbered
//! `$n` placeholders and schema-qualified tables for PostgreSQL).

/// `i64` of a sequence number.
pub(super) fn seq(v: u64) -> i64 {
    i64::try_from(v).unwrap()
}

/// Implements `Tamper` for `$store`, adapting each statement with `$sql(&store, text)`.
macro_rules! sql_tamper {
    ($store:ty, $sql:path) => {
        #[async_trait::async_trait]
        impl crate::conformance::Tamper for $store {
            async fn edit(&self, at: u64, field: crate::conformance::Field) {
                let statement = match field {
                    crate::conformance::Field::Kind => {
                        "UPDATE consent_ledger SET kind = CASE kind WHEN 'granted' \
                         THEN 'withdrawn' ELSE 'granted' END WHERE seq = ?"
                    }
                    crate::conformance::Field::At => {
                        "UPDATE consent_ledger SET at = at + 1 WHERE seq = ?"
                    }
                    crate::conformance::Field::Sealed => {
                        // No portable byte operators on blobs: read, flip a bit, write back.
                        let mut sealed: Vec<u8> = sqlx::query_scalar(&$sql(
                            self,
                            "SELECT sealed FROM consent_ledger WHERE seq = ?",
                        ))
                        .bind(seq(at))
                        .fetch_one(self.pool())
                        .await
                        .unwrap();
                        *sealed.last_mut().unwrap() ^= 1;
                        sqlx::query(&$sql(
                            self,
                            "UPDATE consent_ledger SET sealed = ? WHERE seq = ?",
                        ))
                        .bind(sealed)
                        .bind(seq(at))
                        .execute(self.pool())
                        .await
                        .unwrap();
                        return;
                    }
                };
                self.exec(statement, seq(at)).await;
            }

            async fn delete(&self, at: u64) {
                self.exec("DELETE FROM consent_ledger WHERE seq = ?", seq(at))
                    .await;
            }

            async fn shift_up(&self, from: u64) {
                // Two steps, so that no intermediate state repeats a seq.
                self.exec(
                    "UPDATE consent_ledger SET seq = -(seq + 1) WHERE seq >= ?",
                    seq(from),
                )
                .await;
                self.exec("UPDATE consent_ledger SET seq = -seq WHERE seq < ?", 0)
                    .await;
            }

            async fn insert(&self, r: &crate::chain::StoredRecord) {
                let sql = $sql(
                    self,
                    &crate::sql::insert_record_sql("consent_ledger", |_| "?".to_owned()),
                );
                crate::sql::bind_record(sqlx::query(&sql), r)
                    .unwrap()
                    .execute(self.pool())
                    .await
                    .unwrap();
            }

            async fn swap(&self, a: u64, b: u64) {
                self.exec("UPDATE consent_ledger SET seq = -1 WHERE seq = ?", seq(a))
                    .await;
                sqlx::query(&$sql(
                    self,
                    "UPDATE consent_ledger SET seq = ? WHERE seq = ?",
                ))
                .bind(seq(a))
                .bind(seq(b))
                .execute(self.pool())
                .await
                .unwrap();
                self.exec("UPDATE consent_ledger SET seq = ? WHERE seq = -1", seq(b))
                    .await;
            }

            async fn dump(&self) -> Vec<u8> {
                let mut out = Vec::new();
                let rows: Vec<(Vec<u8>, Vec<u8>, String, String, Vec<u8>)> = sqlx::query_as(&$sql(
                    self,
                    "SELECT user_id, id, application || channel || purpose || kind, \
                         legal_basis, sealed FROM consent_ledger",
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
                    sqlx::query_as(&$sql(self, "SELECT user_id, wrapped FROM consent_keys"))
                        .fetch_all(self.pool())
                        .await
                        .unwrap();
                for (u, w) in keys {
                    out.extend(u);
                    out.extend(w.unwrap_or_default());
                }
                let outbox: Vec<(String, Option<String>)> = sqlx::query_as(&$sql(
                    self,
                    "SELECT payload, last_error FROM consent_outbox",
                ))
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

        impl $store {
            async fn exec(&self, statement: &str, seq: i64) {
                let statement = $sql(self, statement);
                sqlx::query(&statement)
                    .bind(seq)
                    .execute(self.pool())
                    .await
                    .unwrap_or_else(|e| panic!("tamper `{statement}`: {e}"));
            }
        }
    };
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::seq;
    use crate::sqlite::SqliteConsentStore;

    fn sql(_: &SqliteConsentStore, statement: &str) -> String {
        statement.to_owned()
    }

    sql_tamper!(SqliteConsentStore, sql);
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::seq;
    use crate::postgres::PostgresConsentStore;

    /// `statement` with `?` numbered `$1`, `$2`… and the tables qualified by the schema.
    fn sql(store: &PostgresConsentStore, statement: &str) -> String {
        let mut out = String::new();
        let mut n = 0;
        for c in statement.chars() {
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

    sql_tamper!(PostgresConsentStore, sql);
}
