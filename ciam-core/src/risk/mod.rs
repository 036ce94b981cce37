//! Adaptive risk, explained: the pure parts of the defence against account takeover.
//!
//! The engine gathers [`RiskSignals`] for a sign-in attempt (device and network novelty,
//! geolocation, recent failures from sliding windows, the password's breach status, a bot
//! score) and asks a [`RiskPolicy`] for a [`RiskAssessment`]: a [`RiskDecision`] (allow,
//! challenge with acceptable [`Factor`]s, or deny), the rules that fired with the inputs that
//! fired them, a sentence safe to show the user, and [`RiskAssessment::audit_detail`] for the
//! audit log. Assessment is pure (no I/O, the time comes in the signals).
//!
//! The hooks that feed the signals are object-safe traits: [`BreachedPasswords`] (with
//! [`RangeFiles`], offline Have I Been Pwned range files), [`BotCheck`] (with [`NoBotCheck`]),
//! and [`SmsSender`] for one-time codes by text message (with [`ConsoleSms`]).
//!
//! # The default policy
//!
//! [`DefaultRiskPolicy`] adds the points of each rule that fires. A score of
//! `challenge_at` (**30**) or more asks for a second factor; less allows. Deny is kept for
//! strong combinations only: a bot score above `bot_deny_above`, or a breached password
//! together with any velocity rule (credential stuffing). `deny_at` can add a score
//! threshold for denial; it is off by default.
//!
//! | rule | fires when | default | points |
//! |---|---|---|---|
//! | `new_device` | the device was never seen for the account | — | 20 |
//! | `new_network` | the IPv4 /24 or IPv6 /56 was never seen for the account | — | 15 |
//! | `impossible_travel` | haversine distance from the last sign-in ≥ `min_travel_distance_km` and speed > `max_travel_speed_kmh` (no time elapsed counts as too fast) | 100 km, 1000 km/h | 60 |
//! | `account_velocity` | failures on the account ≥ `account_failure_limit` | 5 | 30 |
//! | `ip_velocity` | failures from the IP ≥ `ip_failure_limit` | 20 | 30 |
//! | `subnet_velocity` | failures from the subnet ≥ `subnet_failure_limit` | 100 | 20 |
//! | `breached_password` | the password is in a breach corpus | — | 40 |
//! | `weak_password` | the password is weak | — | 10 |
//! | `bot_score` | bot score > `bot_challenge_above` | 0.5 | 30 |
//!
//! | decision | when (defaults) |
//! |---|---|
//! | Deny | bot score > `bot_deny_above` (**0.9**); or `breached_password` with any `*_velocity` rule (`deny_breached_with_velocity`, on); or score ≥ `deny_at` (off) |
//! | Challenge | score ≥ `challenge_at` (**30**). Factors: `challenge_factors` (passkey, TOTP, e-mail code, recovery code), plus CAPTCHA when `bot_score` fired; only CAPTCHA when the other rules alone score under 30 |
//! | Allow | otherwise |
//!
//! So a new device alone (20) is **allowed** (the rule still shows in the audit detail), a new
//! device on a new network (35) is challenged, and so is impossible travel, a breached
//! password, or one velocity rule on its own.
//!
//! The `reason` names the strongest rule other than the bot score in plain words ("We don't
//! recognise this device, so we need to confirm it's you."), without numbers. A denial's reason
//! is deliberately unspecific, so that an attacker learns nothing about which signal to change.
//!
//! <!-- Full paths: the doc line on `pub mod risk` in lib.rs makes rustdoc resolve these from the crate root. -->
//! [`RiskSignals`]: crate::risk::RiskSignals
//! [`RiskPolicy`]: crate::risk::RiskPolicy
//! [`RiskAssessment`]: crate::risk::RiskAssessment
//! [`RiskDecision`]: crate::risk::RiskDecision
//! [`Factor`]: crate::risk::Factor
//! [`RiskAssessment::audit_detail`]: crate::risk::RiskAssessment::audit_detail
//! [`BreachedPasswords`]: crate::risk::BreachedPasswords
//! [`RangeFiles`]: crate::risk::RangeFiles
//! [`BotCheck`]: crate::risk::BotCheck
//! [`NoBotCheck`]: crate::risk::NoBotCheck
//! [`SmsSender`]: crate::risk::SmsSender
//! [`ConsoleSms`]: crate::risk::ConsoleSms
//! [`DefaultRiskPolicy`]: crate::risk::DefaultRiskPolicy

mod bot;
mod breach;
mod policy;
mod signals;
mod sms;

pub use bot::{BotCheck, BotCheckError, BotVerdict, NoBotCheck};
pub use breach::{BreachCheckError, BreachedPasswords, RangeFiles};
pub use policy::{
    DefaultRiskPolicy, Factor, FiredRule, REASON_ALLOW, REASON_DENY, RiskAssessment, RiskDecision,
    RiskPolicy, rules,
};
pub use signals::{EARTH_RADIUS_KM, GeoPoint, RiskSignals, SignalError};
pub use sms::{ConsoleSms, SmsError, SmsSender};
