-- ciam PostgreSQL schema, version 4: the hash-chained, crypto-shredded audit log; account
-- activity for retention.
--
-- The audit log of versions 1 to 3 (plain personal columns, no chain) is kept as
-- `audit_legacy`: it is no longer written or read, and erasing a user blanks its personal
-- columns. The new `audit_log` holds each entry's position (`seq`, assigned by the append
-- under a transaction-scoped advisory lock), the hash of the entry before it, its own hash,
-- and the personal part (IP, user agent, detail) sealed with the user's data key from
-- `audit_keys`.

ALTER TABLE users ADD COLUMN last_active_at BIGINT;
ALTER TABLE users ADD COLUMN dormancy_notice_at BIGINT;
CREATE INDEX users_activity ON users ((COALESCE(last_active_at, created_at)), id);

ALTER TABLE audit RENAME TO audit_legacy;

CREATE TABLE audit_log (
    seq           BIGINT   NOT NULL,
    id            BYTEA    NOT NULL,
    at            BIGINT   NOT NULL,
    action        TEXT     NOT NULL,
    outcome       TEXT     NOT NULL,
    reason        TEXT     NOT NULL,
    user_id       BYTEA,
    session_id    BYTEA,
    personal_kind SMALLINT NOT NULL,
    personal      BYTEA    NOT NULL,
    prev_hash     BYTEA    NOT NULL,
    hash          BYTEA    NOT NULL,
    CONSTRAINT audit_log_pkey PRIMARY KEY (seq),
    CONSTRAINT audit_log_id_key UNIQUE (id)
);

CREATE INDEX audit_log_user ON audit_log (user_id, seq DESC);

CREATE TABLE audit_keys (
    user_id    BYTEA  NOT NULL,
    wrapped    BYTEA,
    created_at BIGINT NOT NULL,
    erased_at  BIGINT,
    CONSTRAINT audit_keys_pkey PRIMARY KEY (user_id)
);
