//! Export: a machine-readable archive of everything held about a user.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use time::OffsetDateTime;

use crate::audit::{AuditAction, AuditEntry};
use crate::credential::{Credential, CredentialKind};
use crate::engine::context::RequestContext;
use crate::engine::{Ciam, Decision};
use crate::error::{Error, Result};
use crate::id::{CredentialId, SessionId, TenantId, UserId};
use crate::session::{Aal, AuthMethod, DeviceInfo, Session};
use crate::user::{ProfileAttributes, User};

/// The archive's `format` field.
pub const EXPORT_FORMAT: &str = "ciam.user-export";
/// The archive's schema version; raised when a field changes meaning or goes away (adding a
/// field does not raise it).
pub const EXPORT_VERSION: u32 = 1;

/// Every credential kind, so that an export and an erasure cannot miss one.
pub(crate) const ALL_CREDENTIAL_KINDS: [CredentialKind; 5] = [
    CredentialKind::Password,
    CredentialKind::Passkey,
    CredentialKind::Totp,
    CredentialKind::RecoveryCodes,
    CredentialKind::Federated,
];

/// Adds a section to every export: data your application (or another ciam crate, such as
/// the consent ledger) holds about the user.
///
/// Object-safe, so the engine holds `Arc<dyn ExportContributor>`.
///
/// ```
/// use async_trait::async_trait;
/// use ciam_core::id::UserId;
/// use ciam_core::privacy::ExportContributor;
///
/// #[derive(Debug)]
/// struct Orders;
///
/// #[async_trait]
/// impl ExportContributor for Orders {
///     fn section(&self) -> &str {
///         "orders"
///     }
///     async fn export(
///         &self,
///         user: UserId,
///     ) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
///         Ok(serde_json::json!({ "user": user.to_string(), "orders": [] }))
///     }
/// }
/// ```
#[async_trait]
pub trait ExportContributor: Send + Sync + Debug + 'static {
    /// The section's name in [`UserExport::sections`] (unique per engine).
    fn section(&self) -> &str;

    /// Everything this part of the application holds about `user`, as JSON.
    async fn export(
        &self,
        user: UserId,
    ) -> std::result::Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>>;
}

/// Everything held about a user, as one JSON document ([`EXPORT_FORMAT`], version
/// [`EXPORT_VERSION`]). Secrets are never in it: no password hash, no TOTP secret, no
/// recovery code, no passkey public key, no token or token hash, no provider token.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct UserExport {
    /// [`EXPORT_FORMAT`].
    pub format: &'static str,
    /// [`EXPORT_VERSION`].
    pub version: u32,
    /// When the archive was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The account record: identifiers, profile, status, times.
    pub account: AccountExport,
    /// Credential metadata (passwords, passkeys, TOTP, recovery codes), without secrets.
    pub credentials: Vec<CredentialExport>,
    /// Identities at external providers linked to the account.
    pub linked_identities: Vec<CredentialExport>,
    /// Sessions that have not expired.
    pub sessions: Vec<SessionExport>,
    /// Every audit entry naming the user, newest first, opened.
    pub audit: Vec<AuditEntry>,
    /// The registered [`ExportContributor`]s' sections, by name.
    pub sections: BTreeMap<String, serde_json::Value>,
}

/// The account record as exported: every field of [`User`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct AccountExport {
    /// [`User::id`].
    pub id: UserId,
    /// [`User::tenant`].
    pub tenant: Option<TenantId>,
    /// [`User::status`].
    pub status: &'static str,
    /// [`User::email`], as given.
    pub email: Option<String>,
    /// [`User::email_verified_at`].
    #[serde(with = "time::serde::rfc3339::option")]
    pub email_verified_at: Option<OffsetDateTime>,
    /// [`User::phone`].
    pub phone: Option<String>,
    /// [`User::phone_verified_at`].
    #[serde(with = "time::serde::rfc3339::option")]
    pub phone_verified_at: Option<OffsetDateTime>,
    /// [`User::username`].
    pub username: Option<String>,
    /// [`User::profile`].
    pub profile: ProfileAttributes,
    /// [`User::region`].
    pub region: Option<String>,
    /// [`User::created_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// [`User::updated_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// [`User::last_active_at`].
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_active_at: Option<OffsetDateTime>,
    /// [`User::dormancy_notice_at`].
    #[serde(with = "time::serde::rfc3339::option")]
    pub dormancy_notice_at: Option<OffsetDateTime>,
    /// [`User::version`].
    pub version: u64,
}

impl From<&User> for AccountExport {
    fn from(u: &User) -> Self {
        // Destructured so that a new field of `User` does not compile until it is exported.
        let User {
            id,
            tenant,
            status,
            email,
            email_verified_at,
            phone,
            phone_verified_at,
            username,
            profile,
            region,
            created_at,
            updated_at,
            last_active_at,
            dormancy_notice_at,
            version,
        } = u;
        Self {
            id: *id,
            tenant: *tenant,
            status: status.as_str(),
            email: email.as_ref().map(|e| e.as_str().to_owned()),
            email_verified_at: *email_verified_at,
            phone: phone.as_ref().map(|p| p.as_str().to_owned()),
            phone_verified_at: *phone_verified_at,
            username: username.as_ref().map(|n| n.as_str().to_owned()),
            profile: profile.clone(),
            region: region.as_ref().map(|r| r.as_str().to_owned()),
            created_at: *created_at,
            updated_at: *updated_at,
            last_active_at: *last_active_at,
            dormancy_notice_at: *dormancy_notice_at,
            version: *version,
        }
    }
}

/// A credential's metadata; its secret (hash, key, shared secret, codes, tokens) is withheld.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct CredentialExport {
    /// [`Credential::id`].
    pub id: CredentialId,
    /// [`Credential::kind`].
    pub kind: CredentialKind,
    /// [`Credential::name`].
    pub name: Option<String>,
    /// For a passkey, its WebAuthn credential id (base64url); for other kinds `None` (their
    /// lookup key is a hash, not data about the user).
    pub credential_id: Option<String>,
    /// For a linked identity: issuer, subject, provider and what else was stored about it,
    /// without the provider's tokens.
    pub identity: Option<serde_json::Value>,
    /// [`Credential::created_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// [`Credential::updated_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// [`Credential::last_used_at`].
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// [`Credential::version`].
    pub version: u64,
}

/// The fields of a [`Credential`] an export leaves out, and why: tests hold every other field
/// to be exported.
pub const WITHHELD_CREDENTIAL_FIELDS: &[(&str, &str)] = &[
    (
        "secret",
        "a password hash, TOTP secret, recovery-code hashes or passkey key",
    ),
    ("user_id", "the archive's own subject"),
    (
        "lookup",
        "exported as credential_id for passkeys; for other kinds a hash",
    ),
];

impl From<&Credential> for CredentialExport {
    fn from(c: &Credential) -> Self {
        let credential_id = match c.kind {
            CredentialKind::Passkey => c.lookup.as_ref().map(|l| URL_SAFE_NO_PAD.encode(l)),
            _ => None,
        };
        let identity = match c.kind {
            CredentialKind::Federated => serde_json::from_str::<serde_json::Value>(&c.secret)
                .ok()
                .map(|mut v| {
                    if let Some(o) = v.as_object_mut() {
                        o.remove("tokens");
                    }
                    v
                }),
            _ => None,
        };
        Self {
            id: c.id,
            kind: c.kind,
            name: c.name.clone(),
            credential_id,
            identity,
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_used_at: c.last_used_at,
            version: c.version,
        }
    }
}

/// A session as exported: everything but the token's hash.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct SessionExport {
    /// [`Session::id`].
    pub id: SessionId,
    /// [`Session::created_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// [`Session::last_seen_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen_at: OffsetDateTime,
    /// [`Session::idle_expires_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub idle_expires_at: OffsetDateTime,
    /// [`Session::absolute_expires_at`].
    #[serde(with = "time::serde::rfc3339")]
    pub absolute_expires_at: OffsetDateTime,
    /// [`Session::auth_time`].
    #[serde(with = "time::serde::rfc3339")]
    pub auth_time: OffsetDateTime,
    /// [`Session::amr`].
    pub amr: Vec<AuthMethod>,
    /// [`Session::aal`].
    pub aal: Aal,
    /// [`Session::device`].
    pub device: DeviceInfo,
}

/// The fields of a [`Session`] an export leaves out.
pub const WITHHELD_SESSION_FIELDS: &[(&str, &str)] = &[
    ("token_hash", "a bearer token's hash"),
    ("user_id", "the archive's own subject"),
];

impl From<&Session> for SessionExport {
    fn from(s: &Session) -> Self {
        Self {
            id: s.id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            idle_expires_at: s.idle_expires_at,
            absolute_expires_at: s.absolute_expires_at,
            auth_time: s.auth_time,
            amr: s.amr.clone(),
            aal: s.aal,
            device: s.device.clone(),
        }
    }
}

/// The most audit entries an export reads.
const AUDIT_EXPORT_LIMIT: u32 = 100_000;

impl Ciam {
    /// Everything held about `user` ([`UserExport`]): the account, credential metadata,
    /// linked identities, live sessions, the audit entries naming the user (opened) and every
    /// [`ExportContributor`]'s section. [`Error::NotFound`] when there is no such account.
    /// Callers check that the requester is the user (for a signed-in user, pass
    /// `auth.user_id`). The export is itself recorded in the audit log.
    pub async fn export_user(&self, user: UserId, ctx: &RequestContext) -> Result<UserExport> {
        crate::engine::observe::flow("export_user", async move {
            let account = self
                .inner
                .identities
                .user_by_id(user)
                .await?
                .ok_or(Error::NotFound)?;
            let mut credentials = Vec::new();
            let mut linked_identities = Vec::new();
            for kind in ALL_CREDENTIAL_KINDS {
                for c in self
                    .inner
                    .credentials
                    .credentials_for_user(user, kind)
                    .await?
                {
                    match kind {
                        CredentialKind::Federated => linked_identities.push((&c).into()),
                        _ => credentials.push((&c).into()),
                    }
                }
            }
            let now = self.now();
            let sessions = self
                .inner
                .sessions
                .sessions_for_user(user, now)
                .await?
                .iter()
                .map(SessionExport::from)
                .collect();
            let audit = self.audit_log(user, AUDIT_EXPORT_LIMIT).await?;
            let mut sections = BTreeMap::new();
            for c in &self.inner.privacy.contributors {
                let value = c.export(user).await.map_err(Error::Internal)?;
                sections.insert(c.section().to_owned(), value);
            }
            self.record(
                Decision::success(AuditAction::DataExported, "exported")
                    .user(user)
                    .detail(serde_json::json!({"sections": sections.keys().collect::<Vec<_>>()})),
                ctx,
            )
            .await;
            Ok(UserExport {
                format: EXPORT_FORMAT,
                version: EXPORT_VERSION,
                generated_at: now,
                account: (&account).into(),
                credentials,
                linked_identities,
                sessions,
                audit,
                sections,
            })
        })
        .await
    }
}
