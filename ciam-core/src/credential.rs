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
}

impl CredentialKind {
    /// The stable text form used by storage backends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
        }
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "password" => Some(Self::Password),
            _ => None,
        }
    }
}

/// A stored credential.
///
/// `secret` holds the verifier data (for a password: the PHC string or legacy hash). It is a
/// hash, not a secret a client could present, but it is still kept out of `Debug` output.
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
            created_at: now,
            updated_at: now,
            last_used_at: None,
            version: 1,
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("secret", &"***")
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("last_used_at", &self.last_used_at)
            .field("version", &self.version)
            .finish()
    }
}
