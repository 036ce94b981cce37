-- ciam SQLite schema, version 4: the hash-chained, crypto-shredded audit log; account activity
-- for retention.
--
-- The audit log of versions 1 to 3 (plain personal columns, no chain) is kept as
-- `audit_legacy`: it is no longer written or read, and erasing a user blanks its personal
-- columns. The new `audit` holds each entry's position (`seq`, assigned by the append inside
-- its transaction), the hash of the entry before it, its own hash, and the personal part
-- (IP, user agent, detail) sealed with the user's data key from `audit_keys`.

ALTER TABLE users ADD COLUMN last_active_at INTEGER;
ALTER TABLE users ADD COLUMN dormancy_notice_at INTEGER;
CREATE INDEX users_activity ON users (COALESCE(last_active_at, created_at), id);

ALTER TABLE audit RENAME TO audit_legacy;

CREATE TABLE audit_log (
    seq           INTEGER NOT NULL PRIMARY KEY,
    id            BLOB    NOT NULL UNIQUE,
    at            INTEGER NOT NULL,
    action        TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    user_id       BLOB,
    session_id    BLOB,
    personal_kind INTEGER NOT NULL,
    personal      BLOB    NOT NULL,
    prev_hash     BLOB    NOT NULL,
    hash          BLOB    NOT NULL
) STRICT;

CREATE INDEX audit_log_user ON audit_log (user_id, seq);

CREATE TABLE audit_keys (
    user_id    BLOB    NOT NULL PRIMARY KEY,
    wrapped    BLOB,
    created_at INTEGER NOT NULL,
    erased_at  INTEGER
) STRICT;
