//! What the engine knows about a request and about the signed-in caller.

use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

use crate::id::{SessionId, UserId};
use crate::secret::{OpaqueToken, SecretString};
use crate::session::{Aal, AuthMethod, DeviceInfo, Session};

/// Longest User-Agent kept, in bytes.
const MAX_USER_AGENT: usize = 512;

/// Facts about the incoming request that flows record and audit.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RequestContext {
    /// The client IP, as resolved by the application's trusted-proxy configuration.
    pub ip: Option<IpAddr>,
    /// The User-Agent header.
    pub user_agent: Option<String>,
    /// The session token the client presented, if any. Signing in replaces (deletes) that
    /// session, so a token planted before sign-in never becomes authenticated (fixation).
    pub session_token: Option<OpaqueToken>,
    /// The trusted-device token the browser presented, if any (see
    /// [`SignedIn::device_token`](crate::SignedIn)): it exempts the browser from account
    /// throttling, and skips the second factor while "remember this device" lasts.
    pub device_token: Option<OpaqueToken>,
    /// Where the client is, when the application knows (for example from a GeoIP database):
    /// latitude and longitude in degrees. Feeds the impossible-travel risk rule.
    pub location: Option<(f64, f64)>,
    /// How likely the client is a bot (0.0 human to 1.0 bot), from the application's bot or
    /// CAPTCHA service ([`crate::risk::BotCheck`]). Feeds the bot-score risk rule.
    pub bot_score: Option<f32>,
    /// The token the application's CAPTCHA or bot-management widget produced for this
    /// request, if any, handed to the configured [`BotCheck`](crate::risk::BotCheck)
    /// ([`CiamBuilder::bot_check`](crate::CiamBuilder::bot_check)). Redacted in `Debug`.
    pub bot_token: Option<SecretString>,
}

impl RequestContext {
    /// A context with the given client IP and User-Agent.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| {
            let mut end = ua.len().min(MAX_USER_AGENT);
            while !ua.is_char_boundary(end) {
                end -= 1;
            }
            ua[..end].chars().filter(|c| !c.is_control()).collect()
        });
        Self {
            ip,
            user_agent,
            session_token: None,
            device_token: None,
            location: None,
            bot_score: None,
            bot_token: None,
        }
    }

    /// Adds the CAPTCHA or bot-management token sent with the request.
    pub fn with_bot_token(mut self, token: Option<SecretString>) -> Self {
        self.bot_token = token;
        self
    }

    /// Adds the trusted-device token presented by the client.
    pub fn with_device_token(mut self, token: Option<OpaqueToken>) -> Self {
        self.device_token = token;
        self
    }

    /// Adds the bot score (0.0 to 1.0); other values are ignored.
    pub fn with_bot_score(mut self, score: f32) -> Self {
        if (0.0..=1.0).contains(&score) {
            self.bot_score = Some(score);
        }
        self
    }

    /// Adds the client's location (latitude, longitude in degrees); out-of-range values are
    /// ignored.
    pub fn with_location(mut self, lat: f64, lon: f64) -> Self {
        if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
            self.location = Some((lat, lon));
        }
        self
    }

    /// Adds the session token presented by the client.
    pub fn with_session_token(mut self, token: Option<OpaqueToken>) -> Self {
        self.session_token = token;
        self
    }

    pub(crate) fn device(&self) -> DeviceInfo {
        DeviceInfo {
            user_agent: self.user_agent.clone(),
            ip: self.ip,
        }
    }
}

/// The authenticated caller, as established by [`crate::Ciam::authenticate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct AuthContext {
    /// The signed-in user.
    pub user_id: UserId,
    /// The session in use.
    pub session_id: SessionId,
    /// Assurance level of the session; serialized as its number (1 to 3), as in
    /// [`SessionInfo`](crate::session::SessionInfo) and the step-up errors.
    #[serde(serialize_with = "aal_level")]
    pub aal: Aal,
    /// Methods used to authenticate.
    pub amr: Vec<AuthMethod>,
    /// When the user last authenticated actively.
    #[serde(with = "crate::rfc3339")]
    pub auth_time: OffsetDateTime,
    /// When the session ends if unused.
    #[serde(with = "crate::rfc3339")]
    pub expires_at: OffsetDateTime,
}

fn aal_level<S: serde::Serializer>(aal: &Aal, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u8(aal.level())
}

impl AuthContext {
    pub(crate) fn from_session(s: &Session) -> Self {
        Self {
            user_id: s.user_id,
            session_id: s.id,
            aal: s.aal,
            amr: s.amr.clone(),
            auth_time: s.auth_time,
            expires_at: s.expires_at(),
        }
    }
}
