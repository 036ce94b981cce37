//! Registration, e-mail verification, e-mail change and profile updates.

use serde_json::json;
use serde_json::value::RawValue;

use super::Ciam;
use super::Decision;
use super::context::{AuthContext, RequestContext};
use super::outcome::{RegisterOutcome, VerifyOutcome};
use crate::audit::AuditAction;
use crate::challenge::ChallengePurpose;
use crate::credential::{Credential, CredentialKind};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::{CredentialId, UserId};
use crate::identifier::Email;
use crate::mail::MailKind;
use crate::profile::FieldSpec;
use crate::secret::{OpaqueToken, SecretString};
use crate::session::Aal;
use crate::store::StoreError;
use crate::user::{ProfileAttributes, User};

/// A sign-up request.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Registration {
    /// The e-mail address as typed.
    pub email: String,
    /// The password, if the account gets one (an account may also be passwordless).
    pub password: Option<SecretString>,
    /// Profile attributes collected at sign-up (checked against the schema).
    pub profile: ProfileAttributes,
}

impl Registration {
    /// A registration with an e-mail address and a password.
    pub fn new(email: impl Into<String>, password: Option<SecretString>) -> Self {
        Self {
            email: email.into(),
            password,
            profile: ProfileAttributes::new(),
        }
    }

    /// Adds profile attributes.
    pub fn with_profile(mut self, profile: ProfileAttributes) -> Self {
        self.profile = profile;
        self
    }
}

impl Ciam {
    /// Registers an account and mails a verification link.
    ///
    /// The answer is the same whether or not the address already has an account; the owner of
    /// an existing account gets a notice instead of a link. The password is hashed in both
    /// cases so the two take the same time.
    pub async fn register(
        &self,
        req: Registration,
        ctx: &RequestContext,
    ) -> Result<RegisterOutcome> {
        crate::engine::observe::flow("register", async move {
            let email = Email::parse(&req.email)?;
            self.inner.profile.validate_all(&req.profile)?;
            let phc = match &req.password {
                Some(pw) => {
                    self.check_new_password(pw, Some(&email)).await?;
                    Some(self.inner.hasher.hash(pw).await?)
                }
                None => None,
            };
            if let Some(existing) = self.inner.identities.user_by_email(&email).await? {
                return Ok(self.register_existing(&existing, &email, ctx).await);
            }
            let now = self.now();
            let rng = self.inner.rng.as_ref();
            let mut user = User::new(UserId::generate(rng)?, now);
            user.email = Some(email.clone());
            user.profile = req.profile;
            let credentials = match phc {
                Some(phc) => vec![Credential::new(
                    CredentialId::generate(rng)?,
                    user.id,
                    CredentialKind::Password,
                    phc,
                    now,
                )],
                None => Vec::new(),
            };
            match self.inner.identities.create_user(&user, &credentials).await {
                Ok(()) => {}
                Err(StoreError::Conflict(_)) => {
                    return self.lost_registration_race(&email, ctx).await;
                }
                Err(e) => return Err(e.into()),
            }
            let detail = json!({"password": !credentials.is_empty()});
            self.registered(&user, &email, detail, ctx).await
        })
        .await
    }

    /// `create_user` conflicted on the address: a concurrent registration won the race.
    pub(super) async fn lost_registration_race(
        &self,
        email: &Email,
        ctx: &RequestContext,
    ) -> Result<RegisterOutcome> {
        match self.inner.identities.user_by_email(email).await? {
            Some(existing) => Ok(self.register_existing(&existing, email, ctx).await),
            None => Err(Error::Conflict),
        }
    }

    /// After the account is stored: the audit entry, the event and the verification mail.
    pub(super) async fn registered(
        &self,
        user: &User,
        email: &Email,
        detail: serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<RegisterOutcome> {
        self.record(
            Decision::success(AuditAction::Register, "created")
                .user(user.id)
                .detail(detail),
            ctx,
        )
        .await;
        self.emit(Event::Registered { user_id: user.id }).await;
        self.send_verification(user, email, ctx).await?;
        Ok(RegisterOutcome::VerificationSent)
    }

    pub(super) async fn register_existing(
        &self,
        existing: &User,
        email: &Email,
        ctx: &RequestContext,
    ) -> RegisterOutcome {
        self.record(
            Decision::failure(AuditAction::RegisterExisting, "email_exists").user(existing.id),
            ctx,
        )
        .await;
        // To the address on file, not as typed.
        self.account_exists_notice(existing.email.as_ref().unwrap_or(email));
        RegisterOutcome::VerificationSent
    }

    pub(super) async fn send_verification(
        &self,
        user: &User,
        email: &Email,
        ctx: &RequestContext,
    ) -> Result<()> {
        if self
            .send_link(user.id, email, ChallengePurpose::VerifyEmail, ctx)
            .await?
        {
            self.record(
                Decision::success(AuditAction::VerificationSent, "sent").user(user.id),
                ctx,
            )
            .await;
        }
        Ok(())
    }

    /// Sends a new verification link if the address belongs to an unverified account, within
    /// the hourly mail limit. Answers `Ok` in every case so it reveals nothing.
    pub async fn resend_verification(&self, email: &str, ctx: &RequestContext) -> Result<()> {
        crate::engine::observe::flow("resend_verification", async move {
            let email = Email::parse(email)?;
            match self.inner.identities.user_by_email(&email).await? {
                Some(user) if !user.email_verified() && user.status.may_sign_in() => {
                    let on_file = user.email.clone().unwrap_or(email);
                    self.send_verification(&user, &on_file, ctx).await
                }
                _ => Ok(()),
            }
        })
        .await
    }

    /// Follows a mailed link: verifies the account's address, or completes an e-mail change.
    ///
    /// A token is single-use; an unknown, used or expired token is [`Error::InvalidToken`].
    pub async fn verify_email(&self, token: &str, ctx: &RequestContext) -> Result<VerifyOutcome> {
        crate::engine::observe::flow("verify_email", async move {
            let token = OpaqueToken::from_client(token);
            if !token.is_well_formed() {
                return self.invalid_token(AuditAction::EmailVerified, ctx).await;
            }
            let now = self.now();
            let challenges = &self.inner.challenges;
            if let Some(ch) = challenges
                .consume_challenge(ChallengePurpose::VerifyEmail, &token.hash(), now)
                .await?
            {
                let user_id = ch.user_id.ok_or(Error::InvalidToken)?;
                let issued_for = ch
                    .payload
                    .get("email")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                let user = self
                    .modify_user(user_id, |u| {
                        // A link verifies only the address it was sent to.
                        match (&u.email, &issued_for) {
                            (Some(e), Some(issued))
                                if Email::parse(issued).is_ok_and(|i| i == *e) =>
                            {
                                u.email_verified_at.get_or_insert(now);
                                Ok(())
                            }
                            _ => Err(Error::InvalidToken),
                        }
                    })
                    .await;
                let user = match user {
                    Ok(u) => u,
                    Err(Error::InvalidToken) => {
                        return self.invalid_token(AuditAction::EmailVerified, ctx).await;
                    }
                    Err(e) => return Err(e),
                };
                challenges
                    .delete_challenges(user.id, ChallengePurpose::VerifyEmail)
                    .await?;
                self.record(
                    Decision::success(AuditAction::EmailVerified, "verified").user(user.id),
                    ctx,
                )
                .await;
                self.emit(Event::EmailVerified { user_id: user.id }).await;
                return Ok(VerifyOutcome::EmailVerified(Box::new(user)));
            }
            if let Some(ch) = challenges
                .consume_challenge(ChallengePurpose::ChangeEmail, &token.hash(), now)
                .await?
            {
                let user_id = ch.user_id.ok_or(Error::InvalidToken)?;
                let new_email = ch
                    .payload
                    .get("email")
                    .and_then(|v| v.as_str())
                    .map(Email::parse);
                let Some(Ok(new_email)) = new_email else {
                    return Err(Error::Internal(
                        "change-email challenge without a valid address".into(),
                    ));
                };
                let mut old_email = None;
                let result = self
                    .modify_user(user_id, |u| {
                        old_email = u.email.clone();
                        u.email = Some(new_email.clone());
                        u.email_verified_at = Some(now);
                        Ok(())
                    })
                    .await;
                let user = match result {
                    Ok(u) => u,
                    Err(Error::EmailTaken) => {
                        self.record(
                            Decision::failure(AuditAction::EmailChanged, "email_taken")
                                .user(user_id),
                            ctx,
                        )
                        .await;
                        return Err(Error::EmailTaken);
                    }
                    Err(e) => return Err(e),
                };
                if let Some(old) = old_email.filter(|o| *o != new_email) {
                    self.send_mail(&old, MailKind::EmailChanged);
                }
                self.record(
                    Decision::success(AuditAction::EmailChanged, "changed").user(user.id),
                    ctx,
                )
                .await;
                self.emit(Event::EmailChanged { user_id: user.id }).await;
                return Ok(VerifyOutcome::EmailChanged(Box::new(user)));
            }
            self.invalid_token(AuditAction::EmailVerified, ctx).await
        })
        .await
    }

    pub(super) async fn invalid_token<T>(
        &self,
        action: AuditAction,
        ctx: &RequestContext,
    ) -> Result<T> {
        self.record(Decision::failure(action, "invalid_token"), ctx)
            .await;
        Err(Error::InvalidToken)
    }

    /// Starts changing the account's e-mail address: mails a confirmation link to the new
    /// address and a notice to the old one. Nothing changes until the link is followed.
    ///
    /// Needs the current password, or a sign-in within [`crate::Policy::recent_auth_max_age`]
    /// ([`Error::StepUpRequired`] otherwise). If the new address belongs to another account,
    /// the answer is the same and that address gets a notice instead of a link.
    pub async fn request_email_change(
        &self,
        auth: &AuthContext,
        new_email: &str,
        current_password: Option<&SecretString>,
        ctx: &RequestContext,
    ) -> Result<()> {
        crate::engine::observe::flow("request_email_change", async move {
            let new_email = Email::parse(new_email)?;
            let user = self.user(auth.user_id).await?;
            self.step_up(
                &user,
                auth,
                current_password,
                AuditAction::EmailChangeRequested,
                ctx,
            )
            .await?;
            self.second_factor_gate(&user, auth, AuditAction::EmailChangeRequested, ctx)
                .await?;
            if user.email.as_ref() == Some(&new_email) {
                return Ok(());
            }
            if self
                .inner
                .identities
                .user_by_email(&new_email)
                .await?
                .is_some()
            {
                self.record(
                    Decision::failure(AuditAction::EmailChangeRequested, "email_taken")
                        .user(user.id),
                    ctx,
                )
                .await;
                self.account_exists_notice(&new_email);
                return Ok(());
            }
            // Only the newest request stays valid.
            self.inner
                .challenges
                .delete_challenges(user.id, ChallengePurpose::ChangeEmail)
                .await?;
            if !self
                .send_link(user.id, &new_email, ChallengePurpose::ChangeEmail, ctx)
                .await?
            {
                return Ok(());
            }
            if let Some(old) = &user.email {
                self.send_mail(old, MailKind::EmailChangeRequested);
            }
            self.record(
                Decision::success(AuditAction::EmailChangeRequested, "confirmation_sent")
                    .user(user.id)
                    .session(auth.session_id),
                ctx,
            )
            .await;
            Ok(())
        })
        .await
    }

    /// For an account with a second factor, a sensitive change also needs a session that
    /// used it (AAL2): [`Error::AssuranceRequired`] otherwise, so the client steps up.
    pub(super) async fn second_factor_gate(
        &self,
        user: &User,
        auth: &AuthContext,
        action: AuditAction,
        ctx: &RequestContext,
    ) -> Result<()> {
        if auth.aal >= Aal::Aal2 || self.second_factors(user.id).await?.is_empty() {
            return Ok(());
        }
        self.record(
            Decision::failure(action, "second_factor_required")
                .user(user.id)
                .session(auth.session_id)
                .detail(json!({"aal": auth.aal.level(), "required": 2})),
            ctx,
        )
        .await;
        Err(Error::AssuranceRequired {
            aal: Aal::Aal2,
            max_age: Some(self.inner.policy.recent_auth_max_age),
        })
    }

    /// Closes the signed-in account: it can no longer sign in (status
    /// [`UserStatus::PendingDeletion`](crate::user::UserStatus)), every session ends, its
    /// credentials and outstanding links are removed. Needs a sign-in within
    /// [`Policy::recent_auth_max_age`](crate::Policy) (or the current password), and for an
    /// account with a second factor a session that used it (AAL2). Erasing the personal data
    /// that remains is the privacy module's job (consent and erasure).
    pub async fn delete_account(
        &self,
        auth: &AuthContext,
        current_password: Option<&SecretString>,
        ctx: &RequestContext,
    ) -> Result<()> {
        crate::engine::observe::flow("delete_account", async move {
            let user = self.user(auth.user_id).await?;
            self.step_up(
                &user,
                auth,
                current_password,
                AuditAction::AccountDeleted,
                ctx,
            )
            .await?;
            self.second_factor_gate(&user, auth, AuditAction::AccountDeleted, ctx)
                .await?;
            self.modify_user(user.id, |u| {
                u.status = crate::user::UserStatus::PendingDeletion;
                Ok(())
            })
            .await?;
            let (credentials, sessions) = self.strip_account(user.id).await?;
            self.record(
                Decision::success(AuditAction::AccountDeleted, "closed")
                    .user(user.id)
                    .session(auth.session_id)
                    .detail(
                        json!({"sessions_ended": sessions, "credentials_removed": credentials}),
                    ),
                ctx,
            )
            .await;
            Ok(())
        })
        .await
    }

    /// Sets profile attributes (checked against the schema); a `null` value removes one.
    pub async fn update_profile(
        &self,
        auth: &AuthContext,
        changes: ProfileAttributes,
    ) -> Result<User> {
        crate::engine::observe::flow("update_profile", async move {
            for (name, value) in &changes {
                if !value.is_null() {
                    self.inner.profile.validate(name, value)?;
                } else if !self.inner.profile.fields().iter().any(|f| &f.name == name) {
                    return Err(crate::profile::ProfileError::UnknownField(name.clone()).into());
                }
            }
            self.modify_user(auth.user_id, |u| {
                for (name, value) in &changes {
                    if value.is_null() {
                        u.profile.remove(name);
                    } else {
                        u.profile.insert(name.clone(), value.clone());
                    }
                }
                Ok(())
            })
            .await
        })
        .await
    }

    /// Profile fields worth asking `user` for at `stage` (progressive profiling), borrowed
    /// from the engine's schema (no copy: `GET /me` asks on every call).
    pub fn profile_prompts(&self, user: &User, stage: &str) -> Vec<&FieldSpec> {
        self.inner.profile.prompts(&user.profile, stage)
    }

    /// [`Ciam::profile_prompts`], each as the JSON serializing its [`FieldSpec`] writes,
    /// rendered once when the engine was built ([`ProfileSchema::prompts_json`]): for answers
    /// that list prompts on every request, such as `GET /me`.
    ///
    /// [`ProfileSchema::prompts_json`]: crate::profile::ProfileSchema::prompts_json
    pub fn profile_prompts_json(&self, user: &User, stage: &str) -> Vec<&RawValue> {
        self.inner.profile.prompts_json(&user.profile, stage)
    }
}
