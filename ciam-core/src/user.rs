//! The user account.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::id::{TenantId, UserId};
use crate::identifier::{Email, Phone, Username};

/// Where an account is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UserStatus {
    /// The account may sign in.
    Active,
    /// Temporarily locked (for example after evidence of compromise); an operator or a reset
    /// unlocks it.
    Locked,
    /// Disabled by an operator; it cannot sign in and its sessions are ended.
    Disabled,
    /// The user asked for deletion; the account is kept for the grace period, unable to sign in.
    PendingDeletion,
    /// Personal data has been erased; only the id remains, for referential integrity.
    Erased,
}

impl UserStatus {
    /// The stable text form used by storage backends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Locked => "locked",
            Self::Disabled => "disabled",
            Self::PendingDeletion => "pending_deletion",
            Self::Erased => "erased",
        }
    }

    /// Parses the text form written by [`UserStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "locked" => Self::Locked,
            "disabled" => Self::Disabled,
            "pending_deletion" => Self::PendingDeletion,
            "erased" => Self::Erased,
            _ => return None,
        })
    }

    /// Whether an account in this state may sign in.
    pub fn may_sign_in(self) -> bool {
        matches!(self, Self::Active)
    }
}

/// A data-residency region tag (for example `eu` or `us-east`), chosen by the application.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region(String);

impl Region {
    /// Creates a region tag: 1 to 32 ASCII letters, digits or `-`.
    pub fn new(tag: &str) -> Option<Self> {
        let ok = (1..=32).contains(&tag.len())
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| Self(tag.to_ascii_lowercase()))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Typed profile attributes, keyed by field name (see [`crate::profile::ProfileSchema`]).
pub type ProfileAttributes = BTreeMap<String, serde_json::Value>;

/// A user account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// The account id.
    pub id: UserId,
    /// The tenant the account belongs to, in multi-tenant applications.
    pub tenant: Option<TenantId>,
    /// Lifecycle status.
    pub status: UserStatus,
    /// Primary e-mail address.
    pub email: Option<Email>,
    /// When the e-mail address was proven (a verification link was followed).
    pub email_verified_at: Option<OffsetDateTime>,
    /// Phone number.
    pub phone: Option<Phone>,
    /// When the phone number was proven.
    pub phone_verified_at: Option<OffsetDateTime>,
    /// Username.
    pub username: Option<Username>,
    /// Profile attributes.
    pub profile: ProfileAttributes,
    /// Data-residency region.
    pub region: Option<Region>,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When the account was last changed.
    pub updated_at: OffsetDateTime,
    /// When the user last signed in (`None`: never since this was recorded). Moved only by
    /// [`IdentityStore::touch_user_activity`](crate::store::IdentityStore::touch_user_activity);
    /// the retention job reads it.
    #[serde(default)]
    pub last_active_at: Option<OffsetDateTime>,
    /// When the retention job last told the user that the dormant account will be erased.
    #[serde(default)]
    pub dormancy_notice_at: Option<OffsetDateTime>,
    /// Optimistic-concurrency version: a store refuses an update whose version is stale.
    pub version: u64,
}

impl User {
    /// A new active account with nothing but an id, created now.
    pub fn new(id: UserId, now: OffsetDateTime) -> Self {
        Self {
            id,
            tenant: None,
            status: UserStatus::Active,
            email: None,
            email_verified_at: None,
            phone: None,
            phone_verified_at: None,
            username: None,
            profile: ProfileAttributes::new(),
            region: None,
            created_at: now,
            updated_at: now,
            last_active_at: None,
            dormancy_notice_at: None,
            version: 1,
        }
    }

    /// Whether the primary e-mail address has been verified.
    pub fn email_verified(&self) -> bool {
        self.email.is_some() && self.email_verified_at.is_some()
    }
}
