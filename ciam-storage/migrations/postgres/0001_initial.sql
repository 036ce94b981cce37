-- ciam PostgreSQL schema, version 1.
--
-- Runs inside the migration transaction with `search_path` set (SET LOCAL) to the backend's
-- schema, so the names below are created there.
--
-- Ids are 16-byte BYTEA, token and secret hashes 32-byte BYTEA, times BIGINT Unix nanoseconds
-- (UTC; TIMESTAMPTZ keeps only microseconds), enums their stable text forms, JSON values TEXT
-- (exactly as serialised: JSONB would rewrite numbers such as 1e15 and refuse \u0000).

CREATE TABLE users (
    id                 BYTEA  NOT NULL,
    tenant_id          BYTEA,
    status             TEXT   NOT NULL,
    email              TEXT,
    email_canonical    TEXT,
    email_verified_at  BIGINT,
    phone              TEXT,
    phone_verified_at  BIGINT,
    username           TEXT,
    username_canonical TEXT,
    profile            TEXT   NOT NULL,
    region             TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    version            BIGINT NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id)
);

-- Uniqueness of identifiers is enforced here, so two racing registrations cannot both win.
-- The index names are what a unique violation reports; the backend maps them to
-- Conflict("email"), Conflict("username") and Conflict("phone").
CREATE UNIQUE INDEX users_email_canonical ON users (email_canonical)
    WHERE email_canonical IS NOT NULL;
CREATE UNIQUE INDEX users_username_canonical ON users (username_canonical)
    WHERE username_canonical IS NOT NULL;
CREATE UNIQUE INDEX users_phone ON users (phone)
    WHERE phone IS NOT NULL;

CREATE TABLE credentials (
    id           BYTEA  NOT NULL,
    user_id      BYTEA  NOT NULL,
    kind         TEXT   NOT NULL,
    secret       TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    version      BIGINT NOT NULL,
    CONSTRAINT credentials_pkey PRIMARY KEY (id),
    CONSTRAINT credentials_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX credentials_user ON credentials (user_id, kind, created_at);

CREATE TABLE sessions (
    id                  BYTEA    NOT NULL,
    user_id             BYTEA    NOT NULL,
    token_hash          BYTEA    NOT NULL,
    created_at          BIGINT   NOT NULL,
    last_seen_at        BIGINT   NOT NULL,
    idle_expires_at     BIGINT   NOT NULL,
    absolute_expires_at BIGINT   NOT NULL,
    auth_time           BIGINT   NOT NULL,
    amr                 TEXT     NOT NULL,
    aal                 SMALLINT NOT NULL,
    user_agent          TEXT,
    ip                  TEXT,
    CONSTRAINT sessions_pkey PRIMARY KEY (id),
    CONSTRAINT sessions_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE UNIQUE INDEX sessions_token_hash ON sessions (token_hash);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_idle_expiry ON sessions (idle_expires_at);
CREATE INDEX sessions_absolute_expiry ON sessions (absolute_expires_at);

-- The primary key on secret_hash serves consumption (WHERE secret_hash = $1 AND purpose = $2)
-- and makes a second challenge with the same secret a conflict whatever its purpose.
CREATE TABLE challenges (
    secret_hash BYTEA  NOT NULL,
    purpose     TEXT   NOT NULL,
    user_id     BYTEA,
    payload     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    CONSTRAINT challenges_pkey PRIMARY KEY (secret_hash),
    CONSTRAINT challenges_user_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX challenges_user ON challenges (user_id, purpose, created_at);

-- Audit entries outlive the accounts they mention, so user_id is not a foreign key. `seq`
-- orders entries written at the same instant.
CREATE TABLE audit (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    id         BYTEA  NOT NULL,
    at         BIGINT NOT NULL,
    action     TEXT   NOT NULL,
    outcome    TEXT   NOT NULL,
    reason     TEXT   NOT NULL,
    user_id    BYTEA,
    session_id BYTEA,
    ip         TEXT,
    user_agent TEXT,
    detail     TEXT   NOT NULL,
    CONSTRAINT audit_pkey PRIMARY KEY (seq),
    CONSTRAINT audit_id_key UNIQUE (id)
);

CREATE INDEX audit_user_at ON audit (user_id, at DESC, seq DESC);
CREATE INDEX audit_at ON audit (at DESC, seq DESC);
