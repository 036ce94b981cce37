//! Password sign-in, session validation, sign-out and the device list.

use serde_json::json;

use super::Ciam;
use super::Decision;
use super::context::{AuthContext, RequestContext};
use super::outcome::{SignInOutcome, SignedIn};
use super::throttle;
use crate::audit::AuditAction;
use crate::credential::CredentialKind;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::SessionId;
use crate::identifier::Email;
use crate::secret::{OpaqueToken, SecretString};
use crate::session::{Aal, AuthMethod, Session, SessionInfo};
use crate::user::User;

impl Ciam {
    /// Signs in with an e-mail address and password.
    ///
    /// Unknown accounts, accounts without a password and wrong passwords all give
    /// [`Error::InvalidCredentials`] after the same hashing work. Only once the password is
    /// proven does the caller learn that the account is unavailable or unverified, or that it
    /// needs a second factor ([`SignInOutcome::MfaRequired`]). An outdated hash is upgraded on
    /// the way. Any session token in `ctx` is ended, so the signed-in session always has a
    /// fresh token.
    ///
    /// Failures are throttled per account, IP, subnet and overall (see
    /// [`ThrottlePolicy`](crate::ThrottlePolicy)): an attempt inside a delay is
    /// [`Error::RateLimited`] before any hashing, for known and unknown accounts alike. A
    /// browser holding the account's trusted-device token is exempt from the account delay.
    pub async fn sign_in_password(
        &self,
        email: &str,
        password: &SecretString,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        crate::engine::observe::flow(
            "sign_in_password",
            self.sign_in_password_inner(email, password, ctx),
        )
        .await
    }

    async fn sign_in_password_inner(
        &self,
        email: &str,
        password: &SecretString,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        // Past hashing capacity, answer "busy" (503 with Retry-After) at once, before any
        // store work: the attempt could not be hashed anyway, and under a sign-in storm this
        // keeps the refusals cheap and the store free for everything else. The same for every
        // address, so it tells nothing about accounts. A browser that sends a device token
        // asks about the priority lane (whether the token is valid is checked later).
        if let Some(retry_after) = self.inner.hasher.saturated(ctx.device_token.is_some()) {
            return Err(Error::Overloaded { retry_after });
        }
        let Ok(email) = Email::parse(email) else {
            let keys = throttle::keys(&self.inner.policy.throttle, "signin", None, ctx, false);
            self.check_throttle(&keys, AuditAction::SignInPassword, ctx)
                .await?;
            let slot = self.hashing_place(false)?;
            // Costs the same as a wrong password, so malformed input is no faster path.
            self.inner
                .hasher
                .verify_dummy_reserved(slot, password)
                .await
                .map_err(Error::from)
                .or_else(ignore_too_long)?;
            return self
                .sign_in_failed(None, "malformed_email", &keys, ctx)
                .await;
        };
        let user = self.inner.identities.user_by_email(&email).await?;
        let trusted = match &user {
            Some(u) => self.trusted_device(u.id, ctx).await?,
            None => None,
        };
        let keys = throttle::keys(
            &self.inner.policy.throttle,
            "signin",
            Some(&email),
            ctx,
            trusted.is_some(),
        );
        self.check_throttle(&keys, AuditAction::SignInPassword, ctx)
            .await?;
        // Past the throttle, the attempt takes its place in the hashing queue, in the lane
        // the (now verified) device token gives it. A throttled attempt never held a place,
        // so delayed attackers do not crowd owners out; an attempt let in keeps its place
        // through its last store read and is not refused afterwards.
        let slot = self.hashing_place(trusted.is_some())?;
        let credential = match &user {
            Some(u) => self
                .inner
                .credentials
                .credentials_for_user(u.id, CredentialKind::Password)
                .await?
                .into_iter()
                .next(),
            None => None,
        };
        let (Some(user), Some(credential)) = (user, credential) else {
            self.inner
                .hasher
                .verify_dummy_reserved(slot, password)
                .await
                .map_err(Error::from)
                .or_else(ignore_too_long)?;
            return self
                .sign_in_failed(None, "unknown_user_or_no_password", &keys, ctx)
                .await;
        };
        // The owner's browser (trusted device) hashes in the priority lane: an attack filling
        // the hashing queue does not keep the owner out.
        let verified = self
            .inner
            .hasher
            .verify_reserved(slot, password, &credential.secret, trusted.is_some())
            .await;
        let verification = match verified {
            Ok(v) => v,
            // Only when the channel is full despite the reservation; not audited, as above.
            Err(crate::password::PasswordError::Overloaded { retry_after }) => {
                return Err(Error::Overloaded { retry_after });
            }
            Err(crate::password::PasswordError::TooLong) => {
                return self
                    .sign_in_failed(Some(&user), "password_too_long", &keys, ctx)
                    .await;
            }
            Err(e) => {
                tracing::warn!(error = %e, user = %user.id, "stored password hash cannot be verified");
                return self
                    .sign_in_failed(Some(&user), "unverifiable_hash", &keys, ctx)
                    .await;
            }
        };
        if !verification.matched {
            return self
                .sign_in_failed(Some(&user), "wrong_password", &keys, ctx)
                .await;
        }
        if !user.status.may_sign_in() {
            self.record(
                Decision::failure(AuditAction::SignInPassword, user.status.as_str()).user(user.id),
                ctx,
            )
            .await;
            return Err(Error::AccountUnavailable);
        }
        if verification.needs_rehash {
            self.rehash(&credential, password, ctx).await;
        }
        if !user.email_verified() && !self.inner.policy.allow_unverified_sign_in {
            self.record(
                Decision::failure(AuditAction::SignInPassword, "email_unverified").user(user.id),
                ctx,
            )
            .await;
            let on_file = user.email.clone().unwrap_or(email);
            self.send_verification(&user, &on_file, ctx).await?;
            return Ok(SignInOutcome::VerificationRequired);
        }
        self.inner
            .credentials
            .touch_credential(credential.id, self.now())
            .await?;
        let risk = self
            .risk_gate(&user, Some(password), trusted.is_some(), &keys, ctx)
            .await;
        self.clear_account_failures(&keys).await?;
        if let super::assess::RiskAction::Challenge(factors, reason) = risk? {
            return self
                .mfa_required(&user, &[AuthMethod::Pwd], factors, Some(reason), ctx)
                .await;
        }
        let factors = self.second_factors(user.id).await?;
        if !factors.is_empty() && trusted != Some(true) {
            return self
                .mfa_required(&user, &[AuthMethod::Pwd], factors, None, ctx)
                .await;
        }
        let remembered = !factors.is_empty();
        let (amr, aal) = if remembered {
            // A remembered device stands in for the second factor (something you have).
            (vec![AuthMethod::Pwd, AuthMethod::Mfa], Aal::Aal2)
        } else {
            (vec![AuthMethod::Pwd], Aal::Aal1)
        };
        let amr_text: Vec<&str> = amr.iter().map(|m| m.as_str()).collect();
        let mut signed_in = self.start_session(user, amr, aal, self.now(), ctx).await?;
        signed_in.device_token = self
            .issue_device_token(signed_in.user.id, None, ctx)
            .await?;
        self.record(
            Decision::success(AuditAction::SignInPassword, "password")
                .user(signed_in.user.id)
                .session(signed_in.session.id)
                .detail(json!({
                    "amr": amr_text,
                    "remembered_device": remembered,
                    "location": ctx.location.map(|(lat, lon)| [lat, lon]),
                })),
            ctx,
        )
        .await;
        Ok(SignInOutcome::SignedIn(Box::new(signed_in)))
    }

    /// A place in the hashing queue for a sign-in past its throttle check, or 503 `overloaded`.
    /// Not audited, like the refusal before the store reads: a refusal for load is no
    /// decision about the account, and writing a record per refusal would load the store
    /// most when it is busiest.
    fn hashing_place(&self, trusted: bool) -> Result<crate::password::HashingSlot> {
        self.inner.hasher.reserve(trusted).map_err(|e| {
            tracing::debug!(error = %e, "sign-in refused: hashing queue full");
            Error::from(e)
        })
    }

    async fn sign_in_failed<T>(
        &self,
        user: Option<&User>,
        reason: &str,
        keys: &[throttle::Key],
        ctx: &RequestContext,
    ) -> Result<T> {
        let user_id = user.map(|u| u.id);
        self.count_failure(keys).await?;
        self.record(
            Decision::failure(AuditAction::SignInPassword, reason).user(user_id),
            ctx,
        )
        .await;
        self.emit(Event::SignInFailed {
            user_id,
            reason: reason.to_owned(),
        })
        .await;
        Err(Error::InvalidCredentials)
    }

    /// Upgrades a stored hash. A concurrent password change wins (the stale write is refused
    /// by the version check and dropped), so a rehash never reverts a new password.
    async fn rehash(
        &self,
        credential: &crate::credential::Credential,
        password: &SecretString,
        ctx: &RequestContext,
    ) {
        let phc = match self.inner.hasher.hash(password).await {
            Ok(phc) => phc,
            Err(e) => {
                tracing::warn!(error = %e, "rehash skipped");
                return;
            }
        };
        let mut updated = credential.clone();
        updated.secret = phc;
        updated.updated_at = self.now();
        match self.inner.credentials.update_credential(&updated).await {
            Ok(_) => {
                self.record(
                    Decision::success(AuditAction::PasswordRehashed, "parameters_upgraded")
                        .user(credential.user_id),
                    ctx,
                )
                .await;
            }
            Err(e) => {
                self.record(
                    Decision::failure(AuditAction::PasswordRehashed, "concurrent_change")
                        .user(credential.user_id),
                    ctx,
                )
                .await;
                tracing::info!(error = %e, "rehash not stored");
            }
        }
    }

    /// Ends the presented session (if any), creates a new one and describes it.
    pub(super) async fn start_session(
        &self,
        user: User,
        amr: Vec<AuthMethod>,
        aal: Aal,
        auth_time: time::OffsetDateTime,
        ctx: &RequestContext,
    ) -> Result<SignedIn> {
        // Asked before the session exists: a gate that cannot answer fails the sign-in
        // instead of leaving a session whose pending consents nobody knows about.
        let consent_required = match &self.inner.consent_gate {
            Some(gate) => gate.pending(&user).await?,
            None => Vec::new(),
        };
        if let Some(old) = &ctx.session_token {
            self.end_session(old).await?;
        }
        let (token, session) = self
            .create_session(user.id, amr, aal, auth_time, ctx)
            .await?;
        self.emit(Event::SignedIn {
            user_id: user.id,
            session_id: session.id,
        })
        .await;
        let profile_prompts = self
            .profile_prompts(&user, "signup")
            .into_iter()
            .cloned()
            .collect();
        Ok(SignedIn {
            token,
            session: SessionInfo::from_session(&session, Some(session.id)),
            user,
            profile_prompts,
            device_token: None,
            consent_required,
        })
    }

    /// Replaces the session `auth` describes with a new one (new token) for a step-up: the old
    /// session is deleted whatever token the request carried.
    #[cfg_attr(not(feature = "passkeys"), allow(dead_code))]
    pub(super) async fn replace_session(
        &self,
        auth: &AuthContext,
        user: User,
        amr: Vec<AuthMethod>,
        aal: Aal,
        auth_time: time::OffsetDateTime,
        ctx: &RequestContext,
    ) -> Result<SignedIn> {
        if !self
            .inner
            .sessions
            .delete_session(auth.user_id, auth.session_id)
            .await?
        {
            // Revoked since it was authenticated: nothing to step up.
            return Err(Error::Unauthenticated);
        }
        let ctx = RequestContext {
            session_token: None,
            ..ctx.clone()
        };
        self.start_session(user, amr, aal, auth_time, &ctx).await
    }

    /// Validates a session token and returns the caller's [`AuthContext`].
    ///
    /// Slides the idle expiry, writing at most once per
    /// [`SessionPolicy::touch_interval`](crate::SessionPolicy); never past the absolute
    /// lifetime. Malformed, unknown, revoked and expired tokens are all
    /// [`Error::Unauthenticated`].
    pub async fn authenticate(
        &self,
        token: &OpaqueToken,
        ctx: &RequestContext,
    ) -> Result<AuthContext> {
        crate::engine::observe::authenticate_flow(async move {
            if !token.is_well_formed() {
                return Err(Error::Unauthenticated);
            }
            let now = self.now();
            let Some(mut session) = self
                .inner
                .sessions
                .session_by_token(&token.hash(), now)
                .await?
            else {
                return Err(Error::Unauthenticated);
            };
            if !self.touch_if_due(&mut session, now, ctx).await? {
                return Err(Error::Unauthenticated);
            }
            Ok(AuthContext::from_session(&session))
        })
        .await
    }

    /// Records activity on `session` when the last write is older than the touch interval:
    /// slides the idle expiry (never past the absolute one) and refreshes the IP. Returns
    /// false when the session no longer exists (revoked concurrently).
    pub(super) async fn touch_if_due(
        &self,
        session: &mut Session,
        now: time::OffsetDateTime,
        ctx: &RequestContext,
    ) -> Result<bool> {
        let policy = self.inner.policy.session;
        if now - session.last_seen_at < policy.touch_interval {
            return Ok(true);
        }
        let idle = (now + policy.idle_timeout).min(session.absolute_expires_at);
        let mut device = session.device.clone();
        if ctx.ip.is_some() {
            device.ip = ctx.ip;
        }
        if !self
            .inner
            .sessions
            .touch_session(session.id, now, idle, &device)
            .await?
        {
            return Ok(false);
        }
        session.last_seen_at = now;
        session.idle_expires_at = idle;
        Ok(true)
    }

    /// Signs out: deletes the session behind `token`. Signing out of an unknown or expired
    /// session succeeds (there is nothing left to end).
    pub async fn sign_out(&self, token: &OpaqueToken, ctx: &RequestContext) -> Result<()> {
        crate::engine::observe::flow("sign_out", async move {
            if let Some(session) = self.end_session(token).await? {
                self.record(
                    Decision::success(AuditAction::SignOut, "signed_out")
                        .user(session.user_id)
                        .session(session.id),
                    ctx,
                )
                .await;
                self.emit(Event::SignedOut {
                    user_id: session.user_id,
                    session_id: session.id,
                })
                .await;
            }
            Ok(())
        })
        .await
    }

    /// Deletes the live session behind `token`, if any, and returns it.
    async fn end_session(&self, token: &OpaqueToken) -> Result<Option<Session>> {
        if !token.is_well_formed() {
            return Ok(None);
        }
        let sessions = &self.inner.sessions;
        let Some(session) = sessions.session_by_token(&token.hash(), self.now()).await? else {
            return Ok(None);
        };
        sessions.delete_session(session.user_id, session.id).await?;
        Ok(Some(session))
    }

    /// The caller's active sessions (devices), newest first, the current one marked.
    pub async fn list_sessions(&self, auth: &AuthContext) -> Result<Vec<SessionInfo>> {
        crate::engine::observe::flow("list_sessions", async move {
            let sessions = self
                .inner
                .sessions
                .sessions_for_user(auth.user_id, self.now())
                .await?;
            Ok(sessions
                .iter()
                .map(|s| SessionInfo::from_session(s, Some(auth.session_id)))
                .collect())
        })
        .await
    }

    /// Revokes one of the caller's sessions. Returns false when no such session of the
    /// caller's exists (another user's session id is never touched).
    pub async fn revoke_session(
        &self,
        auth: &AuthContext,
        id: SessionId,
        ctx: &RequestContext,
    ) -> Result<bool> {
        crate::engine::observe::flow("revoke_session", async move {
            let deleted = self.inner.sessions.delete_session(auth.user_id, id).await?;
            if deleted {
                self.record(
                    Decision::success(AuditAction::SessionRevoked, "by_owner")
                        .user(auth.user_id)
                        .session(id),
                    ctx,
                )
                .await;
                self.emit(Event::SessionRevoked {
                    user_id: auth.user_id,
                    session_id: id,
                })
                .await;
            }
            Ok(deleted)
        })
        .await
    }

    /// Revokes every session of the caller except the current one; returns how many.
    pub async fn revoke_other_sessions(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<u64> {
        crate::engine::observe::flow("revoke_other_sessions", async move {
            let n = self
                .inner
                .sessions
                .delete_user_sessions(auth.user_id, Some(auth.session_id))
                .await?;
            self.record(
                Decision::success(AuditAction::SessionRevoked, "all_others")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(json!({"count": n})),
                ctx,
            )
            .await;
            Ok(n)
        })
        .await
    }

    /// Revokes every session of the caller, the current one included; returns how many.
    pub async fn revoke_all_sessions(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<u64> {
        crate::engine::observe::flow("revoke_all_sessions", async move {
            let n = self
                .inner
                .sessions
                .delete_user_sessions(auth.user_id, None)
                .await?;
            self.record(
                Decision::success(AuditAction::SessionRevoked, "all")
                    .user(auth.user_id)
                    .detail(json!({"count": n})),
                ctx,
            )
            .await;
            Ok(n)
        })
        .await
    }
}

/// A password over the byte limit cannot match anything; treat it like a wrong password.
fn ignore_too_long(e: Error) -> Result<()> {
    match e {
        Error::WeakPassword(_) => Ok(()),
        other => Err(other),
    }
}
