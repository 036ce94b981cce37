//! Credentials a user can sign in with.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{CredentialId, UserId};

/// The kind of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CredentialKind {
    /// A password, stored as a PHC string (or an imported legacy hash).
    Password,
    /// A WebAuthn public-key credential (passkey). `secret` holds the JSON credential record,
    /// `lookup` the credential id, `name` the user's label.
    Passkey,
    /// A TOTP authenticator (RFC 6238). `secret` holds the sealed shared secret and its
    /// parameters.
    Totp,
    /// A set of recovery codes, stored hashed.
    RecoveryCodes,
    /// An identity at an external provider (OpenID Connect / OAuth 2.0). `lookup` is a hash of
    /// the (issuer, subject) pair, `secret` JSON with the issuer, subject, provider and the
    /// provider's tokens (sealed) when kept, `name` the provider's display name.
    Federated,
}

impl CredentialKind {
    /// The stable text form used by storage backends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Passkey => "passkey",
            Self::Totp => "totp",
            Self::RecoveryCodes => "recovery_codes",
            Self::Federated => "federated",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "password" => Some(Self::Password),
            "passkey" => Some(Self::Passkey),
            "totp" => Some(Self::Totp),
            "recovery_codes" => Some(Self::RecoveryCodes),
            "federated" => Some(Self::Federated),
            _ => None,
        }
    }
}

/// A stored credential.
///
/// `secret` holds the verifier data (for a password: the PHC string or legacy hash; for a
/// passkey: the JSON credential record with its public key). It is not a secret a client
/// could present, but it is still kept out of `Debug` output.
///
/// `lookup` is an optional key unique among credentials of the same kind (for a passkey: the
/// WebAuthn credential id), so a credential can be found without knowing its owner.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct Credential {
    /// Credential id.
    pub id: CredentialId,
    /// Owner.
    pub user_id: UserId,
    /// Kind.
    pub kind: CredentialKind,
    /// Verifier data (PHC string for passwords).
    pub secret: String,
    /// A label the user chose (for example "Work laptop"), at most 64 characters.
    pub name: Option<String>,
    /// A key unique among credentials of this kind, for lookups without the owner.
    pub lookup: Option<Vec<u8>>,
    /// When it was created.
    pub created_at: OffsetDateTime,
    /// When it was last changed.
    pub updated_at: OffsetDateTime,
    /// When it was last used to sign in.
    pub last_used_at: Option<OffsetDateTime>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Credential {
    /// A new credential, version 1.
    pub fn new(
        id: CredentialId,
        user_id: UserId,
        kind: CredentialKind,
        secret: String,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            user_id,
            kind,
            secret,
            name: None,
            lookup: None,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            version: 1,
        }
    }

    /// Sets the label.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the lookup key.
    pub fn with_lookup(mut self, lookup: impl Into<Vec<u8>>) -> Self {
        self.lookup = Some(lookup.into());
        self
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("secret", &"***")
            .field("name", &self.name)
            .field("lookup_len", &self.lookup.as_ref().map(Vec::len))
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_used_at", &self.last_used_at)
            .field("version", &self.version)
            .finish()
    }
}
