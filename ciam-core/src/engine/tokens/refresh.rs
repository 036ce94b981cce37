//! Issuing token pairs and rotating refresh tokens; the semantics (rotation, grace window,
//! reuse detection) are in the [module docs](super).

use serde_json::json;
use time::OffsetDateTime;

use super::{TokenError, TokenPair, TokenState};
use crate::audit::AuditAction;
use crate::challenge::{Challenge, ChallengePurpose};
use crate::engine::context::{AuthContext, RequestContext};
use crate::engine::{Ciam, Decision};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::id::{SessionId, UserId};
use crate::secret::{OpaqueToken, TokenHash};
use crate::session::Session;
use crate::store::StoreError;

/// The store key of a record derived from a refresh token's hash: SHA-256 over a
/// domain-separating label and the hash. The challenge store keys records by hash alone, so
/// the spent marker and the grace claim need keys of their own.
fn derived(label: &str, hash: &TokenHash) -> TokenHash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"ciam refresh token ");
    ctx.update(label.as_bytes());
    ctx.update(&[0]);
    ctx.update(hash.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    TokenHash::from_bytes(out)
}

/// The user and session a refresh record is bound to.
fn binding(record: &Challenge) -> Result<(UserId, SessionId)> {
    let sid = record
        .payload
        .get("sid")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<SessionId>().ok());
    match (record.user_id, sid) {
        (Some(user), Some(sid)) => Ok((user, sid)),
        _ => Err(Error::Internal(
            "refresh-token record without its session".into(),
        )),
    }
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn not_configured(e: TokenError) -> Error {
    Error::Internal(Box::new(e))
}

impl Ciam {
    /// Issues an access token and a refresh token for the caller's session (for example
    /// `POST /auth/token` with the session cookie). [`Error::Unauthenticated`] when the session
    /// ended meanwhile. Audited as `tokens_issued`.
    pub async fn issue_tokens(
        &self,
        auth: &AuthContext,
        ctx: &RequestContext,
    ) -> Result<TokenPair> {
        crate::engine::observe::flow("issue_tokens", async move {
            let state = self.token_state().map_err(not_configured)?;
            let now = self.now();
            let Some(session) = self.live_session(auth.user_id, auth.session_id).await? else {
                return Err(Error::Unauthenticated);
            };
            let pair = self.issue_pair(state, &session, now).await?;
            self.record(
                Decision::success(AuditAction::TokensIssued, "from_session")
                    .user(auth.user_id)
                    .session(auth.session_id)
                    .detail(json!({ "expires_in": pair.expires_in })),
                ctx,
            )
            .await;
            Ok(pair)
        })
        .await
    }

    /// Exchanges a refresh token for a new pair: rotation, a grace window for concurrent
    /// refreshes, and reuse detection that revokes the session; see the
    /// [module docs](crate::tokens#refresh-tokens). Every refusal is
    /// [`Error::InvalidRefreshToken`].
    pub async fn refresh_tokens(
        &self,
        refresh_token: &str,
        ctx: &RequestContext,
    ) -> Result<TokenPair> {
        crate::engine::observe::flow("refresh_tokens", async move {
            let state = self.token_state().map_err(not_configured)?;
            let token = OpaqueToken::from_client(refresh_token);
            if !token.is_well_formed() {
                return Err(Error::InvalidRefreshToken);
            }
            let now = self.now();
            let hash = token.hash();
            let spent_key = derived("spent", &hash);
            let challenges = &self.inner.challenges;
            if let Some(live) = challenges
                .challenge_by_hash(ChallengePurpose::RefreshToken, &hash, now)
                .await?
            {
                let (user, sid) = binding(&live)?;
                let grace_until = now + state.refresh_grace;
                let marker = Challenge::new(
                    spent_key,
                    ChallengePurpose::RefreshTokenSpent,
                    Some(user),
                    json!({ "sid": sid, "grace_until_ms": millis(grace_until) }),
                    now,
                    live.expires_at.max(grace_until),
                );
                // The insert is the claim: of concurrent presenters exactly one gets here first.
                match challenges.insert_challenge(&marker).await {
                    Ok(()) => {
                        challenges
                            .consume_challenge(ChallengePurpose::RefreshToken, &hash, now)
                            .await?;
                        return self.exchange(state, user, sid, now, ctx).await;
                    }
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let Some(spent) = challenges
                .challenge_by_hash(ChallengePurpose::RefreshTokenSpent, &spent_key, now)
                .await?
            else {
                tracing::debug!("refresh token unknown or expired");
                return Err(Error::InvalidRefreshToken);
            };
            let (user, sid) = binding(&spent)?;
            let grace_until_ms = spent
                .payload
                .get("grace_until_ms")
                .and_then(|v| v.as_i64())
                .unwrap_or(i64::MIN);
            if millis(now) < grace_until_ms {
                // Outlives the window (it started before `now`), so the claim stays unique.
                let claim = Challenge::new(
                    derived("grace", &hash),
                    ChallengePurpose::RefreshTokenSpent,
                    Some(user),
                    json!({ "sid": sid }),
                    now,
                    now + state.refresh_grace,
                );
                return match challenges.insert_challenge(&claim).await {
                    Ok(()) => self.exchange(state, user, sid, now, ctx).await,
                    Err(StoreError::Conflict(_)) => {
                        tracing::debug!(session = %sid, "refresh grace exchange already used");
                        Err(Error::InvalidRefreshToken)
                    }
                    Err(e) => Err(e.into()),
                };
            }
            self.refresh_reused(user, sid, ctx).await?;
            Err(Error::InvalidRefreshToken)
        })
        .await
    }

    /// Issues the next pair for the session `sid` of `user` if it is still live, recording
    /// the refresh as session activity.
    async fn exchange(
        &self,
        state: &TokenState,
        user: UserId,
        sid: SessionId,
        now: OffsetDateTime,
        ctx: &RequestContext,
    ) -> Result<TokenPair> {
        let Some(mut session) = self.live_session(user, sid).await? else {
            tracing::debug!(session = %sid, "refresh for an ended session");
            return Err(Error::InvalidRefreshToken);
        };
        if !self.touch_if_due(&mut session, now, ctx).await? {
            return Err(Error::InvalidRefreshToken);
        }
        self.issue_pair(state, &session, now).await
    }

    /// A spent refresh token came back after its grace window: revoke its session.
    async fn refresh_reused(
        &self,
        user: UserId,
        sid: SessionId,
        ctx: &RequestContext,
    ) -> Result<()> {
        let revoked = self.inner.sessions.delete_session(user, sid).await?;
        tracing::warn!(user = %user, session = %sid, "spent refresh token presented again: session revoked");
        self.record(
            Decision::success(AuditAction::SessionRevoked, "refresh_token_reused")
                .user(user)
                .session(sid)
                .detail(json!({ "session_was_live": revoked })),
            ctx,
        )
        .await;
        if revoked {
            self.emit(Event::SessionRevoked {
                user_id: user,
                session_id: sid,
            })
            .await;
        }
        Ok(())
    }

    /// Mints an access token and stores a new refresh token for `session`. The refresh token
    /// lives as long as the session can (its absolute end); each use checks the session.
    async fn issue_pair(
        &self,
        state: &TokenState,
        session: &Session,
        now: OffsetDateTime,
    ) -> Result<TokenPair> {
        let (access_token, access_expires_at) = self.mint_access_token(state, session, now)?;
        let refresh_token = OpaqueToken::generate(self.inner.rng.as_ref())?;
        let record = Challenge::new(
            refresh_token.hash(),
            ChallengePurpose::RefreshToken,
            Some(session.user_id),
            json!({ "sid": session.id }),
            now,
            session.absolute_expires_at,
        );
        self.inner.challenges.insert_challenge(&record).await?;
        let expires_in = u64::try_from((access_expires_at - now).whole_seconds()).unwrap_or(0);
        Ok(TokenPair {
            access_token,
            refresh_token,
            expires_in,
            access_expires_at,
            session_id: session.id,
        })
    }
}
