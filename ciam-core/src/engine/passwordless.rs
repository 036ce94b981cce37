//! Passwordless sign-in by e-mail: magic links and one-time codes.
//!
//! Both are single-use, expire after [`Policy::passwordless_ttl`](crate::Policy), count
//! against the hourly mail limit per account and kind (used and expired ones too), and are
//! **bound to the browser that asked**: the start call returns a *binding token* the
//! application keeps in a short-lived HttpOnly cookie, and only a request carrying it can
//! finish. A forwarded link, or a link opened by someone who intercepted the mail, signs no
//! one in (and stays usable by the right browser).
//!
//! Mail scanners that open links do no harm: the link leads to a page (GET) that only shows a
//! "sign in" button; the link is consumed by the POST that button sends
//! ([`Ciam::confirm_magic_link`]).
//!
//! The answer to a start call is the same whether or not the address has an account (a mail
//! goes out only when it does). For codes, an unknown address gets a stored code nobody
//! knows, so a wrong guess is refused the same way for both. Codes allow
//! [`Policy::code_attempts`](crate::Policy) wrong tries.
//!
//! Failures are throttled like passwords (see [`ThrottlePolicy`](crate::ThrottlePolicy)),
//! each flow with its own keys so that a delay on one never closes another: wrong codes per
//! client IP, subnet and account (the address or number the code went to, known or not, so
//! the delay tells nothing about accounts; a trusted device of the account is exempt from the
//! account key); unknown, used or malformed magic links, and links presented by another
//! browser, per IP and subnet. Magic links have no account key: a link and its binding are
//! 256-bit secrets, so there is nothing to guess per account, and an account key would only
//! let someone who intercepted a link delay its owner. An attempt inside a delay is
//! [`Error::RateLimited`] (a code request found first survives the wait).
//!
//! Following a link, or typing a code, proves the inbox: an unverified address becomes
//! verified. The sign-in is then assessed by the risk policy, if one is configured, like a
//! password sign-in (an e-mail code challenge is already met by an e-mail proof); a successful
//! one ends the account's run of consecutive password failures. An account with a second
//! factor still needs it ([`SignInOutcome::MfaRequired`]). A texted code reports `amr` `sms`
//! (RFC 8176), a link or mailed code `email`.

use ring::digest;
use serde_json::json;

use super::assess::{FirstFactor, RiskAction};
use super::context::RequestContext;
use super::outcome::SignInOutcome;
use super::throttle::{self, Key};
use super::{Ciam, Decision};
use crate::audit::AuditAction;
use crate::challenge::{Challenge, ChallengePurpose};
use crate::error::{Error, Result};
use crate::id::UserId;
use crate::identifier::{Email, Phone};
use crate::mail::MailKind;
use crate::secret::{OpaqueToken, constant_time_eq};
use crate::session::AuthMethod;
use crate::user::User;

/// What a passwordless sign-in proved.
enum Proven {
    /// The inbox the message was sent to.
    Email(Option<String>),
    /// The phone number the code was texted to (E.164).
    Phone(String),
}

/// Digits in a sign-in code.
pub const SIGN_IN_CODE_DIGITS: usize = 6;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn binding_hash(binding: &OpaqueToken) -> String {
    hex(binding.hash().as_bytes())
}

pub(super) fn code_hash(code: &str) -> String {
    hex(digest::digest(&digest::SHA256, code.as_bytes()).as_ref())
}

impl Ciam {
    /// A uniformly random code of [`SIGN_IN_CODE_DIGITS`] digits.
    pub(super) fn random_code(&self) -> Result<String> {
        let mut out = String::with_capacity(SIGN_IN_CODE_DIGITS);
        while out.len() < SIGN_IN_CODE_DIGITS {
            let mut b = [0_u8; 1];
            self.inner.rng.fill(&mut b)?;
            // 250 = 25 * 10: rejecting 250..=255 keeps every digit equally likely.
            if b[0] < 250 {
                out.push(char::from(b'0' + b[0] % 10));
            }
        }
        Ok(out)
    }

    /// The account a passwordless request may mail, within the hourly limit, or `None`
    /// (unknown, unavailable or over the limit; recorded).
    async fn passwordless_target(
        &self,
        email: &Email,
        purpose: ChallengePurpose,
        ctx: &RequestContext,
    ) -> Result<Option<User>> {
        let Some(user) = self.inner.identities.user_by_email(email).await? else {
            self.record(
                Decision::failure(AuditAction::PasswordlessRequested, "unknown_address")
                    .detail(json!({"kind": purpose.as_str()})),
                ctx,
            )
            .await;
            return Ok(None);
        };
        if !user.status.may_sign_in() {
            self.record(
                Decision::failure(AuditAction::PasswordlessRequested, user.status.as_str())
                    .user(user.id),
                ctx,
            )
            .await;
            return Ok(None);
        }
        if !self
            .message_quota(user.id, purpose.as_str(), "passwordless_mail_limit", ctx)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// Mails a one-time sign-in link to `email` if it has an account. Returns the binding
    /// token to keep in the requesting browser (always, whether or not a mail went out).
    pub async fn start_magic_link(&self, email: &str, ctx: &RequestContext) -> Result<OpaqueToken> {
        crate::engine::observe::flow("start_magic_link", async move {
            let email = Email::parse(email)?;
            let binding = OpaqueToken::generate(self.inner.rng.as_ref())?;
            let Some(user) = self
                .passwordless_target(&email, ChallengePurpose::MagicLink, ctx)
                .await?
            else {
                return Ok(binding);
            };
            let token = OpaqueToken::generate(self.inner.rng.as_ref())?;
            let now = self.now();
            let challenge = Challenge::new(
                token.hash(),
                ChallengePurpose::MagicLink,
                Some(user.id),
                json!({"binding": binding_hash(&binding), "email": email.as_str()}),
                now,
                now + self.inner.policy.passwordless_ttl,
            );
            self.inner.challenges.insert_challenge(&challenge).await?;
            let link = self.link(&self.inner.paths.magic_link, &token);
            self.send_mail(
                user.email.as_ref().unwrap_or(&email),
                MailKind::MagicLink { link },
            );
            self.record(
                Decision::success(AuditAction::PasswordlessRequested, "magic_link_sent")
                    .user(user.id),
                ctx,
            )
            .await;
            Ok(binding)
        })
        .await
    }

    /// Signs in with a magic link's token, from the browser holding `binding` (the token
    /// [`Ciam::start_magic_link`] returned). Call it from the POST of the confirm step, never
    /// from the GET that opens the link.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] for an unknown, used or expired link, and for a link opened in
    /// another browser (which stays usable by the one that asked);
    /// [`Error::RateLimited`] when this IP or its subnet failed too often (nothing is consumed);
    /// [`Error::RiskDenied`] when the risk policy refuses the sign-in.
    pub async fn confirm_magic_link(
        &self,
        token: &str,
        binding: Option<&OpaqueToken>,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        crate::engine::observe::flow("confirm_magic_link", async move {
            // Per IP and subnet only: a link and its binding are 256-bit secrets, so there is
            // nothing to guess per account, and an account key would only let someone who
            // intercepted a link delay its owner.
            let keys = throttle::network_keys(&self.inner.policy.throttle, "link", ctx);
            self.check_throttle(&keys, AuditAction::SignInPasswordless, ctx)
                .await?;
            let token = OpaqueToken::from_client(token);
            if !token.is_well_formed() {
                self.count_failure(&keys).await?;
                return self
                    .invalid_token(AuditAction::SignInPasswordless, ctx)
                    .await;
            }
            let Some(challenge) = self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::MagicLink, &token.hash(), self.now())
                .await?
            else {
                self.count_failure(&keys).await?;
                return self
                    .invalid_token(AuditAction::SignInPasswordless, ctx)
                    .await;
            };
            let issued_to = challenge.payload["email"].as_str().map(str::to_owned);
            let expected = challenge.payload["binding"].as_str().unwrap_or_default();
            let presented = binding.map(binding_hash).unwrap_or_default();
            if !constant_time_eq(expected.as_bytes(), presented.as_bytes()) {
                // Not the browser that asked: leave the link for the one that did.
                self.inner.challenges.insert_challenge(&challenge).await?;
                self.count_failure(&keys).await?;
                self.record(
                    Decision::failure(AuditAction::SignInPasswordless, "other_browser")
                        .user(challenge.user_id)
                        .detail(json!({"kind": "magic_link"})),
                    ctx,
                )
                .await;
                return Err(Error::InvalidToken);
            }
            let user_id = challenge.user_id.ok_or(Error::InvalidToken)?;
            self.passwordless_sign_in(user_id, Proven::Email(issued_to), "magic_link", &keys, ctx)
                .await
        })
        .await
    }

    /// Mails a one-time sign-in code to `email` if it has an account. Returns the binding
    /// token to keep in the requesting browser; [`Ciam::verify_sign_in_code`] needs it.
    pub async fn start_sign_in_code(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<OpaqueToken> {
        crate::engine::observe::flow("start_sign_in_code", async move {
            let email = Email::parse(email)?;
            let binding = OpaqueToken::generate(self.inner.rng.as_ref())?;
            let target = self
                .passwordless_target(&email, ChallengePurpose::SignInCode, ctx)
                .await?;
            let code = self
                .store_sign_in_code(&binding, target.as_ref(), ("email", email.as_str()))
                .await?;
            if let Some(user) = target {
                self.send_mail(
                    user.email.as_ref().unwrap_or(&email),
                    MailKind::SignInCode { code },
                );
                self.record(
                    Decision::success(AuditAction::PasswordlessRequested, "code_sent")
                        .user(user.id),
                    ctx,
                )
                .await;
            }
            Ok(binding)
        })
        .await
    }

    /// Draws a code and stores it under the browser's `binding`, for `target` (or for nobody:
    /// an unknown address or number gets a code nobody is told, so guesses fail alike).
    /// `sent_to` names where it goes (`("email", ..)` or `("phone", ..)`); returns the code.
    async fn store_sign_in_code(
        &self,
        binding: &OpaqueToken,
        target: Option<&User>,
        sent_to: (&str, &str),
    ) -> Result<String> {
        let code = self.random_code()?;
        let now = self.now();
        let mut payload = json!({"code": code_hash(&code), "attempts": 0});
        payload[sent_to.0] = json!(sent_to.1);
        let challenge = Challenge::new(
            binding.hash(),
            ChallengePurpose::SignInCode,
            target.map(|u| u.id),
            payload,
            now,
            now + self.inner.policy.passwordless_ttl,
        );
        self.inner.challenges.insert_challenge(&challenge).await?;
        Ok(code)
    }

    /// Texts a one-time sign-in code to `phone` through the configured
    /// [`SmsSender`](crate::risk::SmsSender) if an account has that number (verified or not:
    /// receiving the code proves it). Returns the binding token, as
    /// [`Ciam::start_sign_in_code`] does; [`Ciam::verify_sign_in_code`] finishes both.
    pub async fn start_sms_code(&self, phone: &str, ctx: &RequestContext) -> Result<OpaqueToken> {
        crate::engine::observe::flow("start_sms_code", async move {
            let sender = self.inner.sms.clone().ok_or_else(|| {
                Error::Internal("no SMS sender configured (CiamBuilder::sms)".into())
            })?;
            let phone = Phone::parse(phone)?;
            let binding = OpaqueToken::generate(self.inner.rng.as_ref())?;
            let mut target = self
                .inner
                .identities
                .user_by_phone(&phone)
                .await?
                .filter(|u| u.status.may_sign_in());
            if let Some(user) = &target
                && !self
                    .message_quota(user.id, "sms_code", "sms_limit", ctx)
                    .await?
            {
                target = None;
            }
            let code = self
                .store_sign_in_code(&binding, target.as_ref(), ("phone", phone.as_str()))
                .await?;
            if let Some(user) = target {
                let text = format!(
                    "{code} is your {} sign-in code. Don't share it.",
                    self.inner.app_name
                );
                // In the background, like mail, so the answer time does not depend on whether
                // the number has an account.
                tokio::spawn(async move {
                    if let Err(e) = sender.send(&phone, &text).await {
                        tracing::error!(error = %e, "SMS delivery failed");
                    }
                });
                self.record(
                    Decision::success(AuditAction::PasswordlessRequested, "sms_code_sent")
                        .user(user.id),
                    ctx,
                )
                .await;
            }
            Ok(binding)
        })
        .await
    }

    /// Signs in with a mailed (or texted) code, from the browser holding `binding`.
    ///
    /// # Errors
    /// [`Error::InvalidToken`] when the browser holds no live code request (also after the
    /// attempts ran out); [`Error::InvalidCode`] for a wrong code;
    /// [`Error::RateLimited`] when this IP, its subnet or the address (or number) the code
    /// went to failed too often (the code request survives the wait);
    /// [`Error::RiskDenied`] when the risk policy refuses the sign-in.
    pub async fn verify_sign_in_code(
        &self,
        binding: Option<&OpaqueToken>,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        crate::engine::observe::flow("verify_sign_in_code", async move {
            let Some(binding) = binding.filter(|b| b.is_well_formed()) else {
                return self
                    .invalid_token(AuditAction::SignInPasswordless, ctx)
                    .await;
            };
            let mut keys = throttle::network_keys(&self.inner.policy.throttle, "code", ctx);
            self.check_throttle(&keys, AuditAction::SignInPasswordless, ctx)
                .await?;
            let Some(mut challenge) = self
                .inner
                .challenges
                .consume_challenge(ChallengePurpose::SignInCode, &binding.hash(), self.now())
                .await?
            else {
                return self
                    .invalid_token(AuditAction::SignInPasswordless, ctx)
                    .await;
            };
            // The account is known only from the request found; check its key now (the
            // network keys passed above).
            if let Some(account) = self
                .code_account_key("code", challenge.user_id, &challenge.payload, ctx)
                .await?
            {
                if let Err(e) = self
                    .check_throttle(
                        std::slice::from_ref(&account),
                        AuditAction::SignInPasswordless,
                        ctx,
                    )
                    .await
                {
                    // The code request survives the wait.
                    self.inner.challenges.insert_challenge(&challenge).await?;
                    return Err(e);
                }
                keys.push(account);
            }
            let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
            let expected = challenge.payload["code"].as_str().unwrap_or_default();
            let matched = typed.len() == SIGN_IN_CODE_DIGITS
                && typed.bytes().all(|b| b.is_ascii_digit())
                && constant_time_eq(code_hash(&typed).as_bytes(), expected.as_bytes());
            let user_id: Option<UserId> = challenge.user_id;
            let (true, Some(user_id)) = (matched, user_id) else {
                self.count_failure(&keys).await?;
                let attempts = challenge.payload["attempts"].as_u64().unwrap_or(0) + 1;
                if attempts < u64::from(self.inner.policy.code_attempts) {
                    challenge.payload["attempts"] = json!(attempts);
                    self.inner.challenges.insert_challenge(&challenge).await?;
                }
                self.record(
                    Decision::failure(AuditAction::SignInPasswordless, "wrong_code")
                        .user(user_id)
                        .detail(json!({"kind": "code", "attempts": attempts})),
                    ctx,
                )
                .await;
                return Err(Error::InvalidCode);
            };
            let (proven, kind) = match challenge.payload["phone"].as_str() {
                Some(phone) => (Proven::Phone(phone.to_owned()), "sms_code"),
                None => (
                    Proven::Email(challenge.payload["email"].as_str().map(str::to_owned)),
                    "code",
                ),
            };
            self.passwordless_sign_in(user_id, proven, kind, &keys, ctx)
                .await
        })
        .await
    }

    /// The account key of the code `flow` for the address (or number) a challenge was
    /// issued to, known account or not, so that the delay tells nothing about accounts.
    /// `None` when the browser is a trusted device of that account (exempt, as for passwords)
    /// or the challenge names no address.
    async fn code_account_key(
        &self,
        flow: &str,
        user: Option<UserId>,
        payload: &serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<Option<Key>> {
        let canonical = if let Some(phone) = payload["phone"].as_str() {
            format!("phone:{phone}")
        } else if let Some(email) = payload["email"].as_str().and_then(|e| Email::parse(e).ok()) {
            email.canonical().to_owned()
        } else {
            return Ok(None);
        };
        if let Some(user) = user
            && self.trusted_device(user, ctx).await?.is_some()
        {
            return Ok(None);
        }
        Ok(Some(throttle::account_key(
            &self.inner.policy.throttle,
            flow,
            &canonical,
        )))
    }

    /// The end of the passwordless flows: the inbox (or phone) is proven; assess the risk,
    /// then sign in (or ask for the second factor). `keys` are the flow's throttling keys,
    /// whose counts feed the velocity signals.
    async fn passwordless_sign_in(
        &self,
        user_id: UserId,
        proven: Proven,
        kind: &str,
        keys: &[Key],
        ctx: &RequestContext,
    ) -> Result<SignInOutcome> {
        let user = self.user(user_id).await.map_err(|_| Error::InvalidToken)?;
        if !user.status.may_sign_in() {
            self.record(
                Decision::failure(AuditAction::SignInPasswordless, user.status.as_str())
                    .user(user.id),
                ctx,
            )
            .await;
            return Err(Error::AccountUnavailable);
        }
        let now = self.now();
        // The message reached the address (or number) it was sent to: that is proven, if it
        // is still the account's.
        let already = match &proven {
            Proven::Email(_) => user.email_verified(),
            Proven::Phone(_) => user.phone_verified_at.is_some(),
        };
        let user = if already {
            user
        } else {
            self.modify_user(user.id, |u| {
                match &proven {
                    Proven::Email(issued) => {
                        if let (Some(e), Some(issued)) = (&u.email, issued)
                            && Email::parse(issued).is_ok_and(|i| i == *e)
                        {
                            u.email_verified_at.get_or_insert(now);
                        }
                    }
                    Proven::Phone(issued) => {
                        if u.phone.as_ref().is_some_and(|p| p.as_str() == issued) {
                            u.phone_verified_at.get_or_insert(now);
                        }
                    }
                }
                Ok(())
            })
            .await?
        };
        let (method, first) = match proven {
            Proven::Email(_) => (AuthMethod::Email, FirstFactor::Email),
            Proven::Phone(_) => (AuthMethod::Sms, FirstFactor::Phone),
        };
        let trusted = self.trusted_device(user.id, ctx).await?;
        let risk = self
            .risk_gate_for(&user, None, first, trusted.is_some(), keys, ctx)
            .await;
        // The first factor is proven: the account's failures end here, as after a password.
        self.clear_account_failures(keys).await?;
        self.end_failure_run(&user).await?;
        if let RiskAction::Challenge(factors, reason) = risk? {
            return self
                .mfa_required(&user, &[method], factors, Some(reason), ctx)
                .await;
        }
        self.finish_first_factor(
            user,
            &[method],
            trusted,
            AuditAction::SignInPasswordless,
            kind,
            ctx,
        )
        .await
    }
}
