-- ciam SQLite schema, version 3: credential labels and lookup keys.
--
-- `lookup` is a key unique among credentials of one kind (a passkey's WebAuthn credential id),
-- so a sign-in can find a credential before it knows the user. `name` is the user's label.

ALTER TABLE credentials ADD COLUMN name TEXT;
ALTER TABLE credentials ADD COLUMN lookup BLOB;

CREATE UNIQUE INDEX credentials_lookup ON credentials (kind, lookup) WHERE lookup IS NOT NULL;
