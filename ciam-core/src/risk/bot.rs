//! The bot / CAPTCHA hook: [`BotCheck`], its [`BotVerdict`], and [`NoBotCheck`].

use std::fmt::Debug;
use std::net::IpAddr;

/// A bot check could not answer, or answered out of range.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BotCheckError {
    /// The score was NaN or outside 0.0..=1.0.
    #[error("bot score must be a number from 0.0 to 1.0")]
    InvalidScore,
    /// The verification service failed or could not be reached.
    #[error("bot check failed")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a [`BotCheck`] concluded.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BotVerdict {
    /// From 0.0 (human) to 1.0 (bot); feed it to
    /// [`RiskSignals::with_bot_score`](super::RiskSignals::with_bot_score).
    pub score: f32,
    /// Whether the client solved a challenge (CAPTCHA) with this request. The engine should
    /// not ask for [`Factor::Captcha`](super::Factor::Captcha) again when it did.
    pub passed_challenge: bool,
}

impl BotVerdict {
    /// A verdict; NaN and scores out of range are refused.
    pub fn new(score: f32, passed_challenge: bool) -> Result<Self, BotCheckError> {
        if !(0.0..=1.0).contains(&score) {
            return Err(BotCheckError::InvalidScore);
        }
        Ok(Self {
            score,
            passed_challenge,
        })
    }
}

/// Scores a request for automation: wraps a CAPTCHA or bot-management service (the token is
/// what its client-side widget produced, if any).
///
/// ```
/// use std::net::IpAddr;
/// use ciam_core::risk::{BotCheck, BotCheckError, BotVerdict};
///
/// /// Treats requests without a token as suspicious (for tests).
/// #[derive(Debug)]
/// struct NeedsToken;
///
/// #[async_trait::async_trait]
/// impl BotCheck for NeedsToken {
///     async fn check(&self, token: Option<&str>, _ip: Option<IpAddr>) -> Result<BotVerdict, BotCheckError> {
///         BotVerdict::new(if token.is_some() { 0.0 } else { 0.7 }, token.is_some())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait BotCheck: Send + Sync + Debug + 'static {
    /// Checks one request.
    async fn check(
        &self,
        token: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<BotVerdict, BotCheckError>;
}

/// No bot defence: every request scores 0.0 (human) with no challenge passed, so the
/// `bot_score` rule never fires. The default when the application has no CAPTCHA or
/// bot-management service; the velocity rules still limit automated guessing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBotCheck;

#[async_trait::async_trait]
impl BotCheck for NoBotCheck {
    async fn check(
        &self,
        _token: Option<&str>,
        _ip: Option<IpAddr>,
    ) -> Result<BotVerdict, BotCheckError> {
        Ok(BotVerdict {
            score: 0.0,
            passed_challenge: false,
        })
    }
}
