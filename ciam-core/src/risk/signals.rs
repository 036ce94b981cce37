//! The inputs of a risk assessment: [`RiskSignals`] and [`GeoPoint`].

use time::OffsetDateTime;

/// A signal value was out of its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// A latitude outside -90..=90 degrees, or not a number.
    #[error("latitude must be a number from -90 to 90 degrees")]
    Latitude,
    /// A longitude outside -180..=180 degrees, or not a number.
    #[error("longitude must be a number from -180 to 180 degrees")]
    Longitude,
    /// A bot score outside 0.0..=1.0, or not a number.
    #[error("bot score must be a number from 0.0 to 1.0")]
    BotScore,
}

/// Mean radius of the Earth in km (IUGG mean radius R1), used by [`GeoPoint::distance_km`].
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A point on the Earth in decimal degrees (WGS 84), as supplied by the application's
/// geolocation. The ranges are checked at construction.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GeoPoint {
    lat: f64,
    lon: f64,
}

impl GeoPoint {
    /// A point from a latitude (-90..=90) and a longitude (-180..=180); NaN and infinities are
    /// refused.
    pub fn new(lat: f64, lon: f64) -> Result<Self, SignalError> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(SignalError::Latitude);
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(SignalError::Longitude);
        }
        Ok(Self { lat, lon })
    }

    /// Latitude in degrees.
    pub fn lat(&self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance in km by the haversine formula on a sphere of radius
    /// [`EARTH_RADIUS_KM`] (within about 0.5% of the ellipsoidal distance).
    pub fn distance_km(&self, other: &GeoPoint) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (other.lon - self.lon).to_radians();
        let a =
            (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
    }
}

/// What is known about one sign-in attempt, gathered by the engine and the application.
///
/// Every signal is optional in effect: `None` (or a count of 0) means "not known" and fires no
/// rule. Build it with [`RiskSignals::new`] and the `with_*` setters; read it with the getters.
///
/// ```
/// use ciam_core::risk::{GeoPoint, RiskSignals};
/// use time::OffsetDateTime;
///
/// let now = OffsetDateTime::now_utc();
/// let signals = RiskSignals::new(now)
///     .with_new_device(true)
///     .with_location(GeoPoint::new(51.5074, -0.1278)?)
///     .with_account_failures(2)
///     .with_bot_score(0.1)?;
/// assert_eq!(signals.new_device(), Some(true));
/// # Ok::<(), ciam_core::risk::SignalError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RiskSignals {
    now: OffsetDateTime,
    new_device: Option<bool>,
    new_network: Option<bool>,
    location: Option<GeoPoint>,
    last_location: Option<(GeoPoint, OffsetDateTime)>,
    account_failures: u64,
    ip_failures: u64,
    subnet_failures: u64,
    password_breached: Option<bool>,
    password_weak: Option<bool>,
    bot_score: Option<f32>,
}

impl RiskSignals {
    /// Signals for an attempt at `now` (the engine's clock), with nothing else known.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            now,
            new_device: None,
            new_network: None,
            location: None,
            last_location: None,
            account_failures: 0,
            ip_failures: 0,
            subnet_failures: 0,
            password_breached: None,
            password_weak: None,
            bot_score: None,
        }
    }

    /// Whether this device (its long-lived device cookie or passkey) was never seen for the
    /// account.
    #[must_use]
    pub fn with_new_device(mut self, new_device: bool) -> Self {
        self.new_device = Some(new_device);
        self
    }

    /// Whether the client's network (its IPv4 /24, or IPv6 /56) was never seen for the account.
    #[must_use]
    pub fn with_new_network(mut self, new_network: bool) -> Self {
        self.new_network = Some(new_network);
        self
    }

    /// Where the attempt comes from (application-supplied geolocation).
    #[must_use]
    pub fn with_location(mut self, location: GeoPoint) -> Self {
        self.location = Some(location);
        self
    }

    /// Where and when the account last signed in successfully.
    #[must_use]
    pub fn with_last_location(mut self, location: GeoPoint, at: OffsetDateTime) -> Self {
        self.last_location = Some((location, at));
        self
    }

    /// Recent failed attempts on this account (sliding window).
    #[must_use]
    pub fn with_account_failures(mut self, failures: u64) -> Self {
        self.account_failures = failures;
        self
    }

    /// Recent failed attempts from this IP address (sliding window).
    #[must_use]
    pub fn with_ip_failures(mut self, failures: u64) -> Self {
        self.ip_failures = failures;
        self
    }

    /// Recent failed attempts from this IP's subnet (IPv4 /24, IPv6 /56; sliding window).
    #[must_use]
    pub fn with_subnet_failures(mut self, failures: u64) -> Self {
        self.subnet_failures = failures;
        self
    }

    /// Whether the password appears in a breach corpus (see
    /// [`BreachedPasswords`](super::BreachedPasswords)).
    #[must_use]
    pub fn with_password_breached(mut self, breached: bool) -> Self {
        self.password_breached = Some(breached);
        self
    }

    /// Whether the password is weak by the application's measure (for example one accepted
    /// before the current policy).
    #[must_use]
    pub fn with_password_weak(mut self, weak: bool) -> Self {
        self.password_weak = Some(weak);
        self
    }

    /// The bot score from 0.0 (human) to 1.0 (bot), as given by a
    /// [`BotCheck`](super::BotCheck). NaN and values out of range are refused.
    pub fn with_bot_score(mut self, score: f32) -> Result<Self, SignalError> {
        if !(0.0..=1.0).contains(&score) {
            return Err(SignalError::BotScore);
        }
        self.bot_score = Some(score);
        Ok(self)
    }

    /// When the attempt happens.
    pub fn now(&self) -> OffsetDateTime {
        self.now
    }

    /// Whether the device is new to the account, if known.
    pub fn new_device(&self) -> Option<bool> {
        self.new_device
    }

    /// Whether the network is new to the account, if known.
    pub fn new_network(&self) -> Option<bool> {
        self.new_network
    }

    /// Where the attempt comes from, if known.
    pub fn location(&self) -> Option<GeoPoint> {
        self.location
    }

    /// Where and when the account last signed in, if known.
    pub fn last_location(&self) -> Option<(GeoPoint, OffsetDateTime)> {
        self.last_location
    }

    /// Recent failed attempts on the account.
    pub fn account_failures(&self) -> u64 {
        self.account_failures
    }

    /// Recent failed attempts from the IP address.
    pub fn ip_failures(&self) -> u64 {
        self.ip_failures
    }

    /// Recent failed attempts from the subnet.
    pub fn subnet_failures(&self) -> u64 {
        self.subnet_failures
    }

    /// Whether the password is breached, if checked.
    pub fn password_breached(&self) -> Option<bool> {
        self.password_breached
    }

    /// Whether the password is weak, if checked.
    pub fn password_weak(&self) -> Option<bool> {
        self.password_weak
    }

    /// The bot score, if known (always within 0.0..=1.0).
    pub fn bot_score(&self) -> Option<f32> {
        self.bot_score
    }
}
