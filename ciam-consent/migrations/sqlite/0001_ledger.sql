-- The consent ledger: append-only, hash-chained globally (seq, prev_hash) and per subject
-- (subject_seq, prev_subject_hash). Times are Unix nanoseconds; ids and hashes are blobs.
CREATE TABLE consent_ledger (
    seq               INTEGER NOT NULL PRIMARY KEY,
    user_id           BLOB    NOT NULL,
    subject_seq       INTEGER NOT NULL,
    id                BLOB    NOT NULL,
    kind              TEXT    NOT NULL,
    purpose           TEXT    NOT NULL,
    policy_version    INTEGER NOT NULL,
    legal_basis       TEXT    NOT NULL,
    application       TEXT    NOT NULL,
    channel           TEXT    NOT NULL,
    text_hash         BLOB,
    at                INTEGER NOT NULL,
    expires_at        INTEGER,
    sealed            BLOB    NOT NULL,
    prev_hash         BLOB    NOT NULL,
    prev_subject_hash BLOB    NOT NULL,
    hash              BLOB    NOT NULL
) STRICT;
CREATE UNIQUE INDEX consent_ledger_id ON consent_ledger (id);
CREATE UNIQUE INDEX consent_ledger_subject ON consent_ledger (user_id, subject_seq);

-- Per-subject data keys, wrapped under the application's master key. Erasure sets wrapped
-- to NULL and erased_at (a tombstone).
CREATE TABLE consent_keys (
    user_id    BLOB    NOT NULL PRIMARY KEY,
    wrapped    BLOB,
    created_at INTEGER NOT NULL,
    erased_at  INTEGER
) STRICT;

-- Events to deliver downstream, written in the same transaction as their record.
CREATE TABLE consent_outbox (
    id              INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    record_seq      INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
) STRICT;
CREATE INDEX consent_outbox_due ON consent_outbox (next_attempt_at, id) WHERE delivered_at IS NULL;
