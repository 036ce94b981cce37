//! Forgotten-password reset, password change, and the step-up check they share.

use serde_json::json;

use super::Ciam;
use super::Decision;
use super::context::{AuthContext, RequestContext};
use super::outcome::SignedIn;
use crate::audit::AuditAction;
use crate::challenge::{Challenge, ChallengePurpose};
use crate::credential::{Credential, CredentialKind};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::{CredentialId, UserId};
use crate::identifier::Email;
use crate::mail::MailKind;
use crate::secret::{OpaqueToken, SecretString};
use crate::session::AuthMethod;
use crate::user::{User, UserStatus};

impl Ciam {
    /// Proves the caller is still the account owner before a sensitive change: by the current
    /// password when given, else by a sign-in within the recent-auth window.
    pub(super) async fn step_up(
        &self,
        user: &User,
        auth: &AuthContext,
        current_password: Option<&SecretString>,
        action: AuditAction,
        ctx: &RequestContext,
    ) -> Result<()> {
        match current_password {
            Some(pw) => {
                let credential = self.password_credential(user.id).await?;
                let matched = match &credential {
                    Some(c) => self
                        .inner
                        .hasher
                        .verify(pw, &c.secret)
                        .await
                        .map(|v| v.matched)
                        .unwrap_or(false),
                    None => {
                        self.inner.hasher.verify_dummy(pw).await.ok();
                        false
                    }
                };
                if !matched {
                    self.record(
                        Decision::failure(action, "wrong_current_password")
                            .user(user.id)
                            .session(auth.session_id),
                        ctx,
                    )
                    .await;
                    return Err(Error::InvalidCredentials);
                }
                Ok(())
            }
            None if self.now() - auth.auth_time <= self.inner.policy.recent_auth_max_age => Ok(()),
            None => {
                self.record(
                    Decision::failure(action, "step_up_required")
                        .user(user.id)
                        .session(auth.session_id),
                    ctx,
                )
                .await;
                Err(Error::StepUpRequired)
            }
        }
    }

    async fn password_credential(&self, user: UserId) -> Result<Option<Credential>> {
        Ok(self
            .inner
            .credentials
            .credentials_for_user(user, CredentialKind::Password)
            .await?
            .into_iter()
            .next())
    }

    /// Stores `phc` as the user's password, replacing the current one or adding the first.
    async fn set_password(&self, user: UserId, phc: String) -> Result<()> {
        let now = self.now();
        match self.password_credential(user).await? {
            Some(mut c) => {
                c.secret = phc;
                c.updated_at = now;
                self.inner.credentials.update_credential(&c).await?;
            }
            None => {
                let c = Credential::new(
                    CredentialId::generate(self.inner.rng.as_ref())?,
                    user,
                    CredentialKind::Password,
                    phc,
                    now,
                );
                self.inner.credentials.insert_credential(&c).await?;
            }
        }
        Ok(())
    }

    /// Mails a password-reset link if the address belongs to an account that may reset,
    /// within the hourly mail limit. Answers `Ok` in every case so it reveals nothing.
    pub async fn forgot_password(&self, email: &str, ctx: &RequestContext) -> Result<()> {
        crate::engine::observe::flow("forgot_password", async move {
            let email = Email::parse(email)?;
            let Some(user) = self.inner.identities.user_by_email(&email).await? else {
                self.record(
                    Decision::failure(AuditAction::PasswordResetRequested, "unknown_user"),
                    ctx,
                )
                .await;
                return Ok(());
            };
            if !matches!(user.status, UserStatus::Active | UserStatus::Locked) {
                self.record(
                    Decision::failure(AuditAction::PasswordResetRequested, user.status.as_str())
                        .user(user.id),
                    ctx,
                )
                .await;
                return Ok(());
            }
            let email = user.email.clone().unwrap_or(email);
            if self
                .send_link(user.id, &email, ChallengePurpose::ResetPassword, ctx)
                .await?
            {
                self.record(
                    Decision::success(AuditAction::PasswordResetRequested, "sent").user(user.id),
                    ctx,
                )
                .await;
            }
            Ok(())
        })
        .await
    }

    /// Sets a new password with a mailed reset token, ends every session of the account and
    /// voids other outstanding reset links. Following the link also proves the inbox, so an
    /// unverified address becomes verified, and a locked account is unlocked.
    ///
    /// A password refused by the policy leaves the token usable.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &SecretString,
        ctx: &RequestContext,
    ) -> Result<()> {
        crate::engine::observe::flow("reset_password", async move {
            let token = OpaqueToken::from_client(token);
            if !token.is_well_formed() {
                return self.invalid_token(AuditAction::PasswordReset, ctx).await;
            }
            let now = self.now();
            let Some(challenge) = self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::ResetPassword, &token.hash(), now)
                .await?
            else {
                return self.invalid_token(AuditAction::PasswordReset, ctx).await;
            };
            let user_id = challenge.user_id.ok_or(Error::InvalidToken)?;
            let user = self.user(user_id).await.map_err(|_| Error::InvalidToken)?;
            if let Err(refused) = self
                .check_new_password(new_password, user.email.as_ref())
                .await
            {
                self.restore_challenge(challenge).await;
                return Err(refused);
            }
            let phc = match self.inner.hasher.hash(new_password).await {
                Ok(phc) => phc,
                Err(e) => {
                    self.restore_challenge(challenge).await;
                    return Err(e.into());
                }
            };
            self.set_password(user.id, phc).await?;
            let issued_for = challenge
                .payload
                .get("email")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let user = self
                .modify_user(user.id, |u| {
                    if u.status == UserStatus::Locked {
                        u.status = UserStatus::Active;
                    }
                    if let (Some(e), Some(issued)) = (&u.email, &issued_for)
                        && Email::parse(issued).is_ok_and(|i| i == *e)
                    {
                        u.email_verified_at.get_or_insert(now);
                    }
                    Ok(())
                })
                .await?;
            let ended = self
                .inner
                .sessions
                .delete_user_sessions(user.id, None)
                .await?;
            self.inner
                .challenges
                .delete_challenges(user.id, ChallengePurpose::ResetPassword)
                .await?;
            // Whoever reset the password may not be whoever trusted those browsers.
            self.inner
                .challenges
                .delete_challenges(user.id, ChallengePurpose::TrustedDevice)
                .await?;
            if let Some(email) = &user.email {
                self.send_mail(email, MailKind::PasswordChanged);
            }
            self.record(
                Decision::success(AuditAction::PasswordReset, "reset")
                    .user(user.id)
                    .detail(json!({"sessions_ended": ended})),
                ctx,
            )
            .await;
            self.emit(Event::PasswordChanged { user_id: user.id }).await;
            Ok(())
        })
        .await
    }

    async fn restore_challenge(&self, challenge: Challenge) {
        if let Err(e) = self.inner.challenges.insert_challenge(&challenge).await {
            tracing::warn!(error = %e, "could not restore a reset token after a refused password");
        }
    }

    /// Changes the password of the signed-in user.
    ///
    /// Needs the current password, or a sign-in within the recent-auth window. Ends every
    /// other session and rotates the current one (a new token is returned in [`SignedIn`]),
    /// then tells the user by mail.
    pub async fn change_password(
        &self,
        auth: &AuthContext,
        current_password: Option<&SecretString>,
        new_password: &SecretString,
        ctx: &RequestContext,
    ) -> Result<SignedIn> {
        crate::engine::observe::flow("change_password", async move {
            let user = self.user(auth.user_id).await?;
            if !user.status.may_sign_in() {
                return Err(Error::AccountUnavailable);
            }
            self.step_up(
                &user,
                auth,
                current_password,
                AuditAction::PasswordChanged,
                ctx,
            )
            .await?;
            self.check_new_password(new_password, user.email.as_ref())
                .await?;
            let phc = self.inner.hasher.hash(new_password).await?;
            self.set_password(user.id, phc).await?;
            self.inner
                .sessions
                .delete_user_sessions(user.id, None)
                .await?;
            let (amr, auth_time) = if current_password.is_some() {
                (vec![AuthMethod::Pwd], self.now())
            } else {
                (auth.amr.clone(), auth.auth_time)
            };
            let rotated = RequestContext {
                session_token: None,
                ..ctx.clone()
            };
            let signed_in = self
                .start_session(user, amr, auth.aal, auth_time, &rotated)
                .await?;
            if let Some(email) = &signed_in.user.email {
                self.send_mail(email, MailKind::PasswordChanged);
            }
            self.record(
                Decision::success(AuditAction::PasswordChanged, "changed")
                    .user(signed_in.user.id)
                    .session(signed_in.session.id),
                ctx,
            )
            .await;
            self.emit(Event::PasswordChanged {
                user_id: signed_in.user.id,
            })
            .await;
            Ok(signed_in)
        })
        .await
    }
}
