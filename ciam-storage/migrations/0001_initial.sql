-- ciam schema, version 1.
-- Ids are 16-byte BLOBs, token and secret hashes 32-byte BLOBs, times INTEGER Unix
-- nanoseconds (UTC), enums their stable text forms, JSON values TEXT.

CREATE TABLE users (
    id                 BLOB    NOT NULL PRIMARY KEY,
    tenant_id          BLOB,
    status             TEXT    NOT NULL,
    email              TEXT,
    email_canonical    TEXT,
    email_verified_at  INTEGER,
    phone              TEXT,
    phone_verified_at  INTEGER,
    username           TEXT,
    username_canonical TEXT,
    profile            TEXT    NOT NULL,
    region             TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    version            INTEGER NOT NULL
) STRICT;

-- Uniqueness of identifiers is enforced here, so two racing registrations cannot both win.
CREATE UNIQUE INDEX users_email_canonical ON users (email_canonical);
CREATE UNIQUE INDEX users_username_canonical ON users (username_canonical);
CREATE UNIQUE INDEX users_phone ON users (phone);

CREATE TABLE credentials (
    id           BLOB    NOT NULL PRIMARY KEY,
    user_id      BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    secret       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    version      INTEGER NOT NULL
) STRICT;

CREATE INDEX credentials_user ON credentials (user_id, kind, created_at);

CREATE TABLE sessions (
    id                  BLOB    NOT NULL PRIMARY KEY,
    user_id             BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash          BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    auth_time           INTEGER NOT NULL,
    amr                 TEXT    NOT NULL,
    aal                 INTEGER NOT NULL,
    user_agent          TEXT,
    ip                  TEXT
) STRICT;

CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_absolute_expiry ON sessions (absolute_expires_at);

CREATE TABLE challenges (
    secret_hash BLOB    NOT NULL PRIMARY KEY,
    purpose     TEXT    NOT NULL,
    user_id     BLOB    REFERENCES users (id) ON DELETE CASCADE,
    payload     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX challenges_purpose_secret ON challenges (purpose, secret_hash);
CREATE INDEX challenges_user ON challenges (user_id, purpose, created_at);

-- Audit entries outlive the accounts they mention, so user_id is not a foreign key.
CREATE TABLE audit (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    id         BLOB    NOT NULL UNIQUE,
    at         INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    user_id    BLOB,
    session_id BLOB,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT    NOT NULL
) STRICT;

CREATE INDEX audit_user_at ON audit (user_id, at);
CREATE INDEX audit_at ON audit (at);
