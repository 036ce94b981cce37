-- The consent ledger: append-only, hash-chained globally (seq, prev_hash) and per subject
-- (subject_seq, prev_subject_hash). Times are Unix nanoseconds (BIGINT); ids and hashes BYTEA.
CREATE TABLE consent_ledger (
    seq               BIGINT NOT NULL PRIMARY KEY,
    user_id           BYTEA  NOT NULL,
    subject_seq       BIGINT NOT NULL,
    id                BYTEA  NOT NULL,
    kind              TEXT   NOT NULL,
    purpose           TEXT   NOT NULL,
    policy_version    BIGINT NOT NULL,
    legal_basis       TEXT   NOT NULL,
    application       TEXT   NOT NULL,
    channel           TEXT   NOT NULL,
    text_hash         BYTEA,
    at                BIGINT NOT NULL,
    expires_at        BIGINT,
    sealed            BYTEA  NOT NULL,
    prev_hash         BYTEA  NOT NULL,
    prev_subject_hash BYTEA  NOT NULL,
    hash              BYTEA  NOT NULL
);
CREATE UNIQUE INDEX consent_ledger_id ON consent_ledger (id);
CREATE UNIQUE INDEX consent_ledger_subject ON consent_ledger (user_id, subject_seq);

-- Per-subject data keys, wrapped under the application's master key. Erasure sets wrapped
-- to NULL and erased_at (a tombstone).
CREATE TABLE consent_keys (
    user_id    BYTEA  NOT NULL PRIMARY KEY,
    wrapped    BYTEA,
    created_at BIGINT NOT NULL,
    erased_at  BIGINT
);

-- Events to deliver downstream, written in the same transaction as their record.
CREATE TABLE consent_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_seq      BIGINT NOT NULL,
    payload         TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT
);
CREATE INDEX consent_outbox_due ON consent_outbox (next_attempt_at, id) WHERE delivered_at IS NULL;
