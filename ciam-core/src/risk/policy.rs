//! Turning [`RiskSignals`] into a [`RiskAssessment`]: the [`RiskPolicy`] trait and the
//! [`DefaultRiskPolicy`].

use std::fmt::Debug;

use serde_json::{Value, json};

use super::signals::RiskSignals;

/// The stable names of the rules of [`DefaultRiskPolicy`], as found in [`FiredRule::rule`] and
/// the audit detail.
pub mod rules {
    /// The device was never seen for the account.
    pub const NEW_DEVICE: &str = "new_device";
    /// The network (IPv4 /24, IPv6 /56) was never seen for the account.
    pub const NEW_NETWORK: &str = "new_network";
    /// The travel speed from the last sign-in's location is not humanly possible.
    pub const IMPOSSIBLE_TRAVEL: &str = "impossible_travel";
    /// Many recent failures on the account.
    pub const ACCOUNT_VELOCITY: &str = "account_velocity";
    /// Many recent failures from the IP address.
    pub const IP_VELOCITY: &str = "ip_velocity";
    /// Many recent failures from the subnet.
    pub const SUBNET_VELOCITY: &str = "subnet_velocity";
    /// The password is in a breach corpus.
    pub const BREACHED_PASSWORD: &str = "breached_password";
    /// The password is weak.
    pub const WEAK_PASSWORD: &str = "weak_password";
    /// The bot score is high.
    pub const BOT_SCORE: &str = "bot_score";
}

/// A way for the user to prove it is them (or, for [`Factor::Captcha`], that they are human).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Factor {
    /// A TOTP code from an authenticator app.
    Totp,
    /// A passkey (WebAuthn).
    Passkey,
    /// A one-time code mailed to the verified address.
    EmailCode,
    /// One of the account's recovery codes.
    RecoveryCode,
    /// A CAPTCHA or other bot challenge: proves a human, not an identity.
    Captcha,
}

/// What to do with the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RiskDecision {
    /// Let it through.
    Allow,
    /// Ask for one of `factors` (any one of them, in the order of preference given) first.
    /// The engine offers only those the account has enrolled; with none of them enrolled it
    /// should fall back to [`Factor::EmailCode`] if listed, and refuse otherwise.
    Challenge {
        /// The acceptable factors, preferred first.
        factors: Vec<Factor>,
    },
    /// Refuse the attempt.
    Deny,
}

impl RiskDecision {
    /// `"allow"`, `"challenge"` or `"deny"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RiskDecision::Allow => "allow",
            RiskDecision::Challenge { .. } => "challenge",
            RiskDecision::Deny => "deny",
        }
    }
}

/// One rule that fired, with the inputs that made it fire.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FiredRule {
    /// The rule's stable name (see [`rules`]).
    pub rule: &'static str,
    /// The inputs and limits that made it fire (for example `distance_km`, `hours`,
    /// `speed_kmh`). For the audit log and support staff, never for the end user.
    pub inputs: Value,
    /// The points it added to the score.
    pub points: u32,
}

impl FiredRule {
    /// A fired rule.
    pub fn new(rule: &'static str, inputs: Value, points: u32) -> Self {
        Self {
            rule,
            inputs,
            points,
        }
    }
}

/// The outcome of [`RiskPolicy::assess`], with its explanation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RiskAssessment {
    /// What to do.
    pub decision: RiskDecision,
    /// The sum of the points of the fired rules.
    pub score: u32,
    /// The rules that fired, in evaluation order.
    pub fired: Vec<FiredRule>,
    /// A short sentence safe to show the end user: it names the cause in plain words but
    /// carries no numbers, limits or scores that would help an attacker tune an attempt.
    pub reason: String,
}

impl RiskAssessment {
    /// An assessment (for [`RiskPolicy`] implementations other than the default).
    pub fn new(
        decision: RiskDecision,
        score: u32,
        fired: Vec<FiredRule>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            decision,
            score,
            fired,
            reason: reason.into(),
        }
    }

    /// Whether the named rule fired.
    pub fn has_fired(&self, rule: &str) -> bool {
        self.fired.iter().any(|f| f.rule == rule)
    }

    /// The detail to store in the audit log:
    /// `{"decision", "score", "rules": [{"rule", "inputs", "points"}]}`, plus `"factors"` for a
    /// challenge. It holds the internal numbers: keep it away from the end user.
    pub fn audit_detail(&self) -> Value {
        let rules: Vec<Value> = self
            .fired
            .iter()
            .map(|f| json!({"rule": f.rule, "inputs": f.inputs, "points": f.points}))
            .collect();
        let mut detail = json!({
            "decision": self.decision.as_str(),
            "score": self.score,
            "rules": rules,
        });
        if let (RiskDecision::Challenge { factors }, Some(map)) =
            (&self.decision, detail.as_object_mut())
        {
            map.insert("factors".to_owned(), json!(factors));
        }
        detail
    }
}

/// Decides what to do with a sign-in attempt from its signals. Pure: no I/O, no clock (the
/// time is in the signals), so it is cheap to call on every attempt and easy to test.
///
/// ```
/// use ciam_core::risk::{RiskAssessment, RiskDecision, RiskPolicy, RiskSignals};
///
/// /// Lets everything through (for tests).
/// #[derive(Debug)]
/// struct AllowAll;
///
/// impl RiskPolicy for AllowAll {
///     fn assess(&self, _: &RiskSignals) -> RiskAssessment {
///         RiskAssessment::new(RiskDecision::Allow, 0, Vec::new(), "No extra check is needed.")
///     }
/// }
/// ```
pub trait RiskPolicy: Send + Sync + Debug + 'static {
    /// Assesses one attempt.
    fn assess(&self, signals: &RiskSignals) -> RiskAssessment;
}

/// The reason given when no check is needed.
pub const REASON_ALLOW: &str = "No extra check is needed.";
/// The reason given on [`RiskDecision::Deny`]: deliberately unspecific.
pub const REASON_DENY: &str =
    "We can't complete this sign-in right now. Please try again later or contact support.";

/// The end-user sentence for a challenge caused mainly by `rule`.
fn challenge_reason(rule: &str) -> &'static str {
    match rule {
        rules::NEW_DEVICE => "We don't recognise this device, so we need to confirm it's you.",
        rules::NEW_NETWORK => {
            "You're signing in from a network we haven't seen before, so we need to confirm it's you."
        }
        rules::IMPOSSIBLE_TRAVEL => {
            "This sign-in comes from far away from your last one, so we need to confirm it's you."
        }
        rules::ACCOUNT_VELOCITY => {
            "There have been several unsuccessful attempts to sign in to this account, so we need to confirm it's you."
        }
        rules::IP_VELOCITY | rules::SUBNET_VELOCITY => {
            "We've seen many unsuccessful sign-in attempts from your network, so we need to confirm it's you."
        }
        rules::BREACHED_PASSWORD => {
            "This password has appeared in a data breach on another site, so we need to confirm it's you. Please change it afterwards."
        }
        rules::WEAK_PASSWORD => {
            "Your password is easy to guess, so we need to confirm it's you. Please choose a stronger one afterwards."
        }
        rules::BOT_SCORE => "We need to check that you're a person and not an automated program.",
        _ => "We need to confirm it's you.",
    }
}

/// The built-in policy: each rule adds points; the total decides, except for the deny
/// combinations. See the table in the [module documentation](super) for the defaults.
///
/// Change a threshold or weight by assigning to the field:
///
/// ```
/// use ciam_core::risk::DefaultRiskPolicy;
///
/// let mut policy = DefaultRiskPolicy::default();
/// policy.new_device_points = 30; // a new device alone now asks for a second factor
/// policy.max_travel_speed_kmh = 900.0;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DefaultRiskPolicy {
    /// Points of `new_device`.
    pub new_device_points: u32,
    /// Points of `new_network`.
    pub new_network_points: u32,
    /// Points of `impossible_travel`.
    pub impossible_travel_points: u32,
    /// `impossible_travel` fires when the speed is above this (km/h).
    pub max_travel_speed_kmh: f64,
    /// `impossible_travel` ignores distances below this (km): geolocation of nearby places is
    /// too coarse to tell.
    pub min_travel_distance_km: f64,
    /// `account_velocity` fires at this many recent failures on the account, or more.
    pub account_failure_limit: u64,
    /// Points of `account_velocity`.
    pub account_velocity_points: u32,
    /// `ip_velocity` fires at this many recent failures from the IP address, or more.
    pub ip_failure_limit: u64,
    /// Points of `ip_velocity`.
    pub ip_velocity_points: u32,
    /// `subnet_velocity` fires at this many recent failures from the subnet, or more.
    pub subnet_failure_limit: u64,
    /// Points of `subnet_velocity`.
    pub subnet_velocity_points: u32,
    /// Points of `breached_password`.
    pub breached_password_points: u32,
    /// Points of `weak_password`.
    pub weak_password_points: u32,
    /// `bot_score` fires when the score is above this.
    pub bot_challenge_above: f32,
    /// The attempt is denied when the bot score is above this.
    pub bot_deny_above: f32,
    /// Points of `bot_score`.
    pub bot_score_points: u32,
    /// A challenge is due at this score or more.
    pub challenge_at: u32,
    /// The attempt is denied at this score or more; `None` (the default) denies only for the
    /// named combinations.
    pub deny_at: Option<u32>,
    /// Deny when `breached_password` fires together with any velocity rule (credential
    /// stuffing with a known password).
    pub deny_breached_with_velocity: bool,
    /// The factors a challenge accepts, preferred first ([`Factor::Captcha`] is added when
    /// `bot_score` fired).
    pub challenge_factors: Vec<Factor>,
}

impl Default for DefaultRiskPolicy {
    fn default() -> Self {
        Self {
            new_device_points: 20,
            new_network_points: 15,
            impossible_travel_points: 60,
            max_travel_speed_kmh: 1000.0,
            min_travel_distance_km: 100.0,
            account_failure_limit: 5,
            account_velocity_points: 30,
            ip_failure_limit: 20,
            ip_velocity_points: 30,
            subnet_failure_limit: 100,
            subnet_velocity_points: 20,
            breached_password_points: 40,
            weak_password_points: 10,
            bot_challenge_above: 0.5,
            bot_deny_above: 0.9,
            bot_score_points: 30,
            challenge_at: 30,
            deny_at: None,
            deny_breached_with_velocity: true,
            challenge_factors: vec![
                Factor::Passkey,
                Factor::Totp,
                Factor::EmailCode,
                Factor::RecoveryCode,
            ],
        }
    }
}

/// Rounds to `digits` decimals, for readable audit inputs.
fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

impl DefaultRiskPolicy {
    fn flag(rule: &'static str, value: Option<bool>, points: u32) -> Option<FiredRule> {
        let mut inputs = serde_json::Map::new();
        inputs.insert(rule.to_owned(), Value::Bool(true));
        (value == Some(true)).then(|| FiredRule::new(rule, Value::Object(inputs), points))
    }

    fn velocity(rule: &'static str, failures: u64, limit: u64, points: u32) -> Option<FiredRule> {
        (failures >= limit)
            .then(|| FiredRule::new(rule, json!({"failures": failures, "limit": limit}), points))
    }

    fn impossible_travel(&self, signals: &RiskSignals) -> Option<FiredRule> {
        let here = signals.location()?;
        let (there, then) = signals.last_location()?;
        let distance = here.distance_km(&there);
        if distance < self.min_travel_distance_km {
            return None;
        }
        let hours = (signals.now() - then).as_seconds_f64() / 3600.0;
        // No time passed (or the last sign-in is later, by clock skew): any distance is too fast.
        let speed = (hours > 0.0).then(|| distance / hours);
        if speed.is_some_and(|s| s <= self.max_travel_speed_kmh) {
            return None;
        }
        Some(FiredRule::new(
            rules::IMPOSSIBLE_TRAVEL,
            json!({
                "from": {"lat": there.lat(), "lon": there.lon()},
                "to": {"lat": here.lat(), "lon": here.lon()},
                "distance_km": round(distance, 1),
                "hours": round(hours.max(0.0), 2),
                "speed_kmh": speed.map(|s| round(s, 1)),
                "max_speed_kmh": self.max_travel_speed_kmh,
            }),
            self.impossible_travel_points,
        ))
    }

    fn bot(&self, signals: &RiskSignals) -> Option<FiredRule> {
        let score = signals.bot_score()?;
        (score > self.bot_challenge_above).then(|| {
            FiredRule::new(
                rules::BOT_SCORE,
                json!({
                    "score": round(f64::from(score), 3),
                    "challenge_above": round(f64::from(self.bot_challenge_above), 3),
                    "deny_above": round(f64::from(self.bot_deny_above), 3),
                }),
                self.bot_score_points,
            )
        })
    }
}

impl RiskPolicy for DefaultRiskPolicy {
    fn assess(&self, signals: &RiskSignals) -> RiskAssessment {
        let fired: Vec<FiredRule> = [
            Self::flag(
                rules::NEW_DEVICE,
                signals.new_device(),
                self.new_device_points,
            ),
            Self::flag(
                rules::NEW_NETWORK,
                signals.new_network(),
                self.new_network_points,
            ),
            self.impossible_travel(signals),
            Self::velocity(
                rules::ACCOUNT_VELOCITY,
                signals.account_failures(),
                self.account_failure_limit,
                self.account_velocity_points,
            ),
            Self::velocity(
                rules::IP_VELOCITY,
                signals.ip_failures(),
                self.ip_failure_limit,
                self.ip_velocity_points,
            ),
            Self::velocity(
                rules::SUBNET_VELOCITY,
                signals.subnet_failures(),
                self.subnet_failure_limit,
                self.subnet_velocity_points,
            ),
            Self::flag(
                rules::BREACHED_PASSWORD,
                signals.password_breached(),
                self.breached_password_points,
            ),
            Self::flag(
                rules::WEAK_PASSWORD,
                signals.password_weak(),
                self.weak_password_points,
            ),
            self.bot(signals),
        ]
        .into_iter()
        .flatten()
        .collect();

        let score = fired
            .iter()
            .fold(0u32, |sum, f| sum.saturating_add(f.points));
        let fired_any = |names: &[&str]| fired.iter().any(|f| names.contains(&f.rule));
        let bot_fired = fired_any(&[rules::BOT_SCORE]);
        let bot_deny = signals.bot_score().is_some_and(|s| s > self.bot_deny_above);
        let stuffing = self.deny_breached_with_velocity
            && fired_any(&[rules::BREACHED_PASSWORD])
            && fired_any(&[
                rules::ACCOUNT_VELOCITY,
                rules::IP_VELOCITY,
                rules::SUBNET_VELOCITY,
            ]);
        if bot_deny || stuffing || self.deny_at.is_some_and(|d| score >= d) {
            return RiskAssessment::new(RiskDecision::Deny, score, fired, REASON_DENY);
        }
        if score < self.challenge_at {
            return RiskAssessment::new(RiskDecision::Allow, score, fired, REASON_ALLOW);
        }

        // The strongest rule other than the bot score explains the challenge; if those alone
        // would not have asked for one, only a CAPTCHA is due.
        let identity_points = fired
            .iter()
            .filter(|f| f.rule != rules::BOT_SCORE)
            .fold(0u32, |sum, f| sum.saturating_add(f.points));
        let (factors, reason) = if identity_points < self.challenge_at {
            (vec![Factor::Captcha], challenge_reason(rules::BOT_SCORE))
        } else {
            let mut factors = self.challenge_factors.clone();
            if bot_fired && !factors.contains(&Factor::Captcha) {
                factors.push(Factor::Captcha);
            }
            // max_by_key keeps the last of equals: reverse so the earliest rule wins ties.
            let top = fired
                .iter()
                .rev()
                .filter(|f| f.rule != rules::BOT_SCORE)
                .max_by_key(|f| f.points)
                .map_or("", |f| f.rule);
            (factors, challenge_reason(top))
        };
        RiskAssessment::new(RiskDecision::Challenge { factors }, score, fired, reason)
    }
}
