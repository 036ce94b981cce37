//! Adaptive risk: decisions and their explanations (fired rules, inputs, reason text), the
//! breached-password range files, and the bot and SMS hooks.

// Tests state their expectations with unwrap/expect/panic: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ciam_core::SecretString;
use ciam_core::identifier::Phone;
use ciam_core::risk::{
    BotCheck, BotVerdict, BreachCheckError, BreachedPasswords, ConsoleSms, DefaultRiskPolicy,
    EARTH_RADIUS_KM, Factor, GeoPoint, NoBotCheck, REASON_ALLOW, REASON_DENY, RangeFiles,
    RiskAssessment, RiskDecision, RiskPolicy, RiskSignals, SignalError, SmsSender, rules,
};
use serde_json::json;
use time::{Duration, OffsetDateTime, macros::datetime};

const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

const REASON_NEW_DEVICE: &str = "We don't recognise this device, so we need to confirm it's you.";
const REASON_TRAVEL: &str =
    "This sign-in comes from far away from your last one, so we need to confirm it's you.";
const REASON_ACCOUNT_VELOCITY: &str = "There have been several unsuccessful attempts to sign in to this account, so we need to confirm it's you.";
const REASON_NETWORK_VELOCITY: &str = "We've seen many unsuccessful sign-in attempts from your network, so we need to confirm it's you.";
const REASON_BREACHED: &str = "This password has appeared in a data breach on another site, so we need to confirm it's you. Please change it afterwards.";
const REASON_BOT: &str = "We need to check that you're a person and not an automated program.";

fn identity_factors() -> Vec<Factor> {
    vec![
        Factor::Passkey,
        Factor::Totp,
        Factor::EmailCode,
        Factor::RecoveryCode,
    ]
}

// Real city coordinates (decimal degrees, WGS 84).
/// London, Charing Cross.
fn london() -> GeoPoint {
    GeoPoint::new(51.5074, -0.1278).unwrap()
}
/// Sydney, Sydney Town Hall.
fn sydney() -> GeoPoint {
    GeoPoint::new(-33.8688, 151.2093).unwrap()
}
/// Paris, Notre-Dame (point zéro).
fn paris() -> GeoPoint {
    GeoPoint::new(48.8566, 2.3522).unwrap()
}
/// Reading, Berkshire (about 58 km west of London).
fn reading() -> GeoPoint {
    GeoPoint::new(51.4543, -0.9781).unwrap()
}

fn assess(signals: &RiskSignals) -> RiskAssessment {
    DefaultRiskPolicy::default().assess(signals)
}

fn names(a: &RiskAssessment) -> Vec<&'static str> {
    a.fired.iter().map(|f| f.rule).collect()
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn clean_sign_in_is_allowed_with_no_rules() {
    let signals = RiskSignals::new(NOW)
        .with_new_device(false)
        .with_new_network(false)
        .with_location(london())
        .with_last_location(london(), NOW - Duration::days(1))
        .with_password_breached(false)
        .with_password_weak(false)
        .with_bot_score(0.0)
        .unwrap();
    let a = assess(&signals);
    assert_eq!(a.decision, RiskDecision::Allow);
    assert_eq!(a.score, 0);
    assert!(a.fired.is_empty());
    assert_eq!(a.reason, REASON_ALLOW);
    assert_eq!(
        a.audit_detail(),
        json!({"decision": "allow", "score": 0, "rules": []})
    );
}

#[test]
fn new_device_alone_is_allowed_by_default_but_recorded() {
    // 20 points, under the challenge threshold of 30.
    let a = assess(&RiskSignals::new(NOW).with_new_device(true));
    assert_eq!(a.decision, RiskDecision::Allow);
    assert_eq!(names(&a), [rules::NEW_DEVICE]);
    assert_eq!(a.fired[0].inputs, json!({"new_device": true}));
    assert_eq!(a.fired[0].points, 20);
    assert_eq!(a.score, 20);
    assert_eq!(a.reason, REASON_ALLOW);
}

#[test]
fn new_device_on_new_network_is_challenged() {
    let a = assess(
        &RiskSignals::new(NOW)
            .with_new_device(true)
            .with_new_network(true),
    );
    assert_eq!(
        a.decision,
        RiskDecision::Challenge {
            factors: identity_factors()
        }
    );
    assert_eq!(names(&a), [rules::NEW_DEVICE, rules::NEW_NETWORK]);
    assert_eq!(a.score, 35);
    assert_eq!(a.reason, REASON_NEW_DEVICE);
    assert_eq!(
        a.audit_detail(),
        json!({
            "decision": "challenge",
            "score": 35,
            "rules": [
                {"rule": "new_device", "inputs": {"new_device": true}, "points": 20},
                {"rule": "new_network", "inputs": {"new_network": true}, "points": 15},
            ],
            "factors": ["passkey", "totp", "email_code", "recovery_code"],
        })
    );
}

#[test]
fn london_to_sydney_in_two_hours_is_impossible_travel() {
    let a = assess(
        &RiskSignals::new(NOW)
            .with_location(sydney())
            .with_last_location(london(), NOW - Duration::hours(2)),
    );
    assert_eq!(
        a.decision,
        RiskDecision::Challenge {
            factors: identity_factors()
        }
    );
    assert_eq!(names(&a), [rules::IMPOSSIBLE_TRAVEL]);
    let inputs = &a.fired[0].inputs;
    let distance = num(inputs, "distance_km");
    // The great-circle distance London-Sydney is about 16,990 km.
    assert!((16_900.0..17_100.0).contains(&distance), "{inputs}");
    assert!((num(inputs, "hours") - 2.0).abs() < 1e-9, "{inputs}");
    let speed = num(inputs, "speed_kmh");
    assert!((speed - distance / 2.0).abs() < 0.1, "{inputs}");
    assert!((8_450.0..8_550.0).contains(&speed), "{inputs}");
    assert!((num(inputs, "max_speed_kmh") - 1000.0).abs() < 1e-9);
    assert!((num(&inputs["from"], "lat") - 51.5074).abs() < 1e-9);
    assert!((num(&inputs["to"], "lon") - 151.2093).abs() < 1e-9);
    assert_eq!(a.fired[0].points, 60);
    assert_eq!(a.reason, REASON_TRAVEL);
    // The end-user text carries none of the numbers.
    assert!(!a.reason.chars().any(|c| c.is_ascii_digit()));
}

#[test]
fn plausible_trips_do_not_fire() {
    // London to Paris (about 344 km) in 3 hours: about 115 km/h.
    let a = assess(
        &RiskSignals::new(NOW)
            .with_location(paris())
            .with_last_location(london(), NOW - Duration::hours(3)),
    );
    assert_eq!(a.decision, RiskDecision::Allow);
    assert!(a.fired.is_empty());
    assert!((340.0..350.0).contains(&london().distance_km(&paris())));

    // London to Reading (about 58 km) one minute apart is fast, but under the 100 km minimum:
    // geolocation that close is too coarse to judge.
    let a = assess(
        &RiskSignals::new(NOW)
            .with_location(reading())
            .with_last_location(london(), NOW - Duration::minutes(1)),
    );
    assert!(a.fired.is_empty(), "{:?}", a.fired);
}

/// A point on the equator `km` east of (0, 0).
fn east_of_origin(km: f64) -> GeoPoint {
    GeoPoint::new(0.0, (km / EARTH_RADIUS_KM).to_degrees()).unwrap()
}

fn travel(distance_km: f64, elapsed: Duration) -> RiskAssessment {
    assess(
        &RiskSignals::new(NOW)
            .with_location(east_of_origin(distance_km))
            .with_last_location(GeoPoint::new(0.0, 0.0).unwrap(), NOW - elapsed),
    )
}

#[test]
fn impossible_travel_boundaries() {
    // Minimum distance 100 km (distances below it are ignored, at or above count).
    assert!(travel(99.0, Duration::minutes(1)).fired.is_empty());
    let a = travel(101.0, Duration::minutes(1));
    assert_eq!(names(&a), [rules::IMPOSSIBLE_TRAVEL]);
    assert!((num(&a.fired[0].inputs, "distance_km") - 101.0).abs() < 0.05);

    // Speed limit 1000 km/h (fires only above it): 500 km in 30 min 18 s (990 km/h) and in
    // 29 min 42 s (1010 km/h).
    let at = |kmh: f64| Duration::seconds_f64(500.0 / kmh * 3600.0);
    assert!(travel(500.0, at(990.0)).fired.is_empty());
    assert!(travel(500.0, at(999.0)).fired.is_empty());
    let a = travel(500.0, at(1010.0));
    assert_eq!(names(&a), [rules::IMPOSSIBLE_TRAVEL]);
    assert!((num(&a.fired[0].inputs, "speed_kmh") - 1010.0).abs() < 0.2);

    // No time elapsed (or clock skew): too fast, with no finite speed to report.
    let a = travel(500.0, Duration::ZERO);
    assert_eq!(names(&a), [rules::IMPOSSIBLE_TRAVEL]);
    assert!(a.fired[0].inputs["speed_kmh"].is_null());
    let a = travel(500.0, Duration::minutes(-5));
    assert_eq!(names(&a), [rules::IMPOSSIBLE_TRAVEL]);
    assert!((num(&a.fired[0].inputs, "hours")).abs() < 1e-9);

    // Without one of the two locations the rule cannot fire.
    let a = assess(&RiskSignals::new(NOW).with_location(sydney()));
    assert!(a.fired.is_empty());
}

#[test]
fn account_velocity_fires_at_five_failures() {
    let a = assess(&RiskSignals::new(NOW).with_account_failures(4));
    assert_eq!(a.decision, RiskDecision::Allow);
    assert!(a.fired.is_empty());

    let a = assess(&RiskSignals::new(NOW).with_account_failures(5));
    assert_eq!(
        a.decision,
        RiskDecision::Challenge {
            factors: identity_factors()
        }
    );
    assert_eq!(names(&a), [rules::ACCOUNT_VELOCITY]);
    assert_eq!(a.fired[0].inputs, json!({"failures": 5, "limit": 5}));
    assert_eq!(a.score, 30);
    assert_eq!(a.reason, REASON_ACCOUNT_VELOCITY);
}

#[test]
fn ip_velocity_fires_at_twenty_failures() {
    assert!(
        assess(&RiskSignals::new(NOW).with_ip_failures(19))
            .fired
            .is_empty()
    );
    let a = assess(&RiskSignals::new(NOW).with_ip_failures(20));
    assert!(matches!(a.decision, RiskDecision::Challenge { .. }));
    assert_eq!(names(&a), [rules::IP_VELOCITY]);
    assert_eq!(a.fired[0].inputs, json!({"failures": 20, "limit": 20}));
    assert_eq!(a.reason, REASON_NETWORK_VELOCITY);
}

#[test]
fn subnet_velocity_fires_at_a_hundred_failures_and_challenges_with_a_new_network() {
    assert!(
        assess(&RiskSignals::new(NOW).with_subnet_failures(99))
            .fired
            .is_empty()
    );
    // Alone (20 points; a /24 may be a shared NAT) it is recorded but allowed.
    let a = assess(&RiskSignals::new(NOW).with_subnet_failures(100));
    assert_eq!(a.decision, RiskDecision::Allow);
    assert_eq!(names(&a), [rules::SUBNET_VELOCITY]);
    assert_eq!(a.fired[0].inputs, json!({"failures": 100, "limit": 100}));
    // On a network new to the account: 35, challenged, the subnet being the stronger reason.
    let a = assess(
        &RiskSignals::new(NOW)
            .with_subnet_failures(100)
            .with_new_network(true),
    );
    assert!(matches!(a.decision, RiskDecision::Challenge { .. }));
    assert_eq!(names(&a), [rules::NEW_NETWORK, rules::SUBNET_VELOCITY]);
    assert_eq!(a.reason, REASON_NETWORK_VELOCITY);
}

#[test]
fn challenge_threshold_boundary_and_configuration() {
    // 25 points (new network 15 + weak password 10): allowed.
    let signals = RiskSignals::new(NOW)
        .with_new_network(true)
        .with_password_weak(true);
    let a = assess(&signals);
    assert_eq!(a.score, 25);
    assert_eq!(a.decision, RiskDecision::Allow);
    assert_eq!(names(&a), [rules::NEW_NETWORK, rules::WEAK_PASSWORD]);

    // Lower the threshold to exactly 25: challenged.
    let mut policy = DefaultRiskPolicy::default();
    policy.challenge_at = 25;
    policy.challenge_factors = vec![Factor::Totp];
    let a = policy.assess(&signals);
    assert_eq!(
        a.decision,
        RiskDecision::Challenge {
            factors: vec![Factor::Totp]
        }
    );

    // A heavier new device challenges on its own.
    let mut policy = DefaultRiskPolicy::default();
    policy.new_device_points = 30;
    let a = policy.assess(&RiskSignals::new(NOW).with_new_device(true));
    assert!(matches!(a.decision, RiskDecision::Challenge { .. }));
    assert_eq!(a.reason, REASON_NEW_DEVICE);

    // A score threshold for denial, off by default.
    policy.deny_at = Some(30);
    assert_eq!(
        policy
            .assess(&RiskSignals::new(NOW).with_new_device(true))
            .decision,
        RiskDecision::Deny
    );
}

/// A fresh directory for one test's range files.
fn range_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ciam-risk-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sha1_hex(password: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, password.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02X}")).collect()
}

/// Writes range files in the HIBP range format (`SUFFIX:COUNT` per line, file named by the
/// 5-hex prefix plus `.txt`) holding `entries` and, before and after each, a decoy entry.
fn write_ranges(dir: &Path, entries: &[(&str, u64)], eol: &str) {
    for (password, count) in entries {
        let hex = sha1_hex(password);
        let (prefix, suffix) = hex.split_at(5);
        let path = dir.join(format!("{prefix}.txt"));
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&format!("0000000000000000000000000000000000A:7{eol}"));
        text.push_str(&format!("{suffix}:{count}{eol}"));
        text.push_str(&format!("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF0:0{eol}"));
        std::fs::write(path, text).unwrap();
    }
}

/// Whether `files` counts `password` as breached.
async fn breached(files: &RangeFiles, password: &str) -> bool {
    files
        .is_breached(&SecretString::new(password))
        .await
        .unwrap()
}

#[test]
fn sha1_of_password_matches_the_published_value() {
    // SHA-1 (RFC 3174) of "password", as in the HIBP API documentation's range example
    // (range 5BAA6, suffix 1E4C9B93F3F0682250B6CF8331B7EE68FD8).
    assert_eq!(
        sha1_hex("password"),
        "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8"
    );
}

#[tokio::test]
async fn range_files_find_breached_passwords() {
    let dir = range_dir("lf");
    write_ranges(&dir, &[("password", 10_434_004), ("hunter2", 3)], "\n");
    // The HIBP sample: prefix 5BAA6 in its own file.
    assert!(dir.join("5BAA6.txt").exists());
    let files = RangeFiles::new(&dir);
    assert!(breached(&files, "password").await);
    assert!(breached(&files, "hunter2").await);
    // Its prefix file is absent: not breached.
    assert!(!breached(&files, "correct horse battery staple").await);
    // Minimum count boundary: hunter2 was seen 3 times.
    let strict = RangeFiles::new(&dir).with_min_count(3);
    assert!(breached(&strict, "hunter2").await);
    let stricter = RangeFiles::new(&dir).with_min_count(4);
    assert!(!breached(&stricter, "hunter2").await);
    assert!(breached(&stricter, "password").await);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn range_files_read_crlf_lowercase_and_ignore_padding() {
    let dir = range_dir("crlf");
    // "letmein" present only as a padding entry (count 0); "password" with CRLF line ends.
    write_ranges(&dir, &[("password", 5), ("letmein", 0)], "\r\n");
    let files = RangeFiles::new(&dir);
    assert!(breached(&files, "password").await);
    assert!(!breached(&files, "letmein").await);
    // Even a minimum of 0 does not make padding count.
    let lax = RangeFiles::new(&dir).with_min_count(0);
    assert!(!breached(&lax, "letmein").await);

    // Lower-case suffixes and a blank last line are accepted.
    let hex = sha1_hex("dragon");
    let (prefix, suffix) = hex.split_at(5);
    std::fs::write(
        dir.join(format!("{prefix}.txt")),
        format!("{}:2\r\n\r\n", suffix.to_ascii_lowercase()),
    )
    .unwrap();
    assert!(breached(&files, "dragon").await);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn range_files_errors_are_typed() {
    let dir = range_dir("errors");
    let hex = sha1_hex("password");
    std::fs::write(dir.join(format!("{}.txt", &hex[..5])), "not a range line\n").unwrap();
    let err = RangeFiles::new(&dir)
        .is_breached(&SecretString::new("password"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BreachCheckError::Malformed { line: 1, .. }),
        "{err:?}"
    );
    // The error names only the prefix file, never the full hash.
    assert!(!format!("{err} {err:?}").contains(&hex[5..]));
    std::fs::remove_dir_all(&dir).unwrap();

    let err = RangeFiles::new(&dir)
        .is_breached(&SecretString::new("password"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BreachCheckError::Unreadable { ref path, .. } if *path == dir),
        "{err:?}"
    );
}

#[tokio::test]
async fn breached_password_is_challenged_and_denied_with_velocity() {
    let dir = range_dir("policy");
    write_ranges(&dir, &[("password", 10)], "\n");
    let breached = RangeFiles::new(&dir)
        .is_breached(&SecretString::new("password"))
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let signals = RiskSignals::new(NOW).with_password_breached(breached);
    let a = assess(&signals);
    assert_eq!(
        a.decision,
        RiskDecision::Challenge {
            factors: identity_factors()
        }
    );
    assert_eq!(names(&a), [rules::BREACHED_PASSWORD]);
    assert_eq!(a.fired[0].inputs, json!({"breached_password": true}));
    assert_eq!(a.reason, REASON_BREACHED);

    // With credential-stuffing velocity: denied, with an unspecific reason.
    let a = assess(&signals.clone().with_ip_failures(20));
    assert_eq!(a.decision, RiskDecision::Deny);
    assert_eq!(names(&a), [rules::IP_VELOCITY, rules::BREACHED_PASSWORD]);
    assert_eq!(a.reason, REASON_DENY);
    assert_eq!(a.audit_detail()["decision"], "deny");
    // One failure short of the IP limit: only challenged.
    let a = assess(&signals.clone().with_ip_failures(19));
    assert!(matches!(a.decision, RiskDecision::Challenge { .. }));
    // The combination can be switched off.
    let mut policy = DefaultRiskPolicy::default();
    policy.deny_breached_with_velocity = false;
    let a = policy.assess(&signals.with_account_failures(5));
    assert!(matches!(a.decision, RiskDecision::Challenge { .. }));
}

#[test]
fn bot_score_thresholds() {
    let bot = |score: f32| assess(&RiskSignals::new(NOW).with_bot_score(score).unwrap());

    // Above 0.9: denied.
    let a = bot(0.95);
    assert_eq!(a.decision, RiskDecision::Deny);
    assert_eq!(names(&a), [rules::BOT_SCORE]);
    assert!((num(&a.fired[0].inputs, "score") - 0.95).abs() < 1e-9);
    assert!((num(&a.fired[0].inputs, "deny_above") - 0.9).abs() < 1e-9);
    assert_eq!(a.reason, REASON_DENY);
    assert_eq!(bot(1.0).decision, RiskDecision::Deny);

    // Exactly 0.9: not above, a CAPTCHA only.
    let a = bot(0.9);
    assert_eq!(
        a.decision,
        RiskDecision::Challenge {
            factors: vec![Factor::Captcha]
        }
    );
    assert_eq!(a.reason, REASON_BOT);
    assert!(matches!(bot(0.51).decision, RiskDecision::Challenge { .. }));

    // Exactly 0.5 and below: does not fire.
    let a = bot(0.5);
    assert_eq!(a.decision, RiskDecision::Allow);
    assert!(a.fired.is_empty());

    // With identity rules too: their factors plus a CAPTCHA, their reason.
    let a = assess(
        &RiskSignals::new(NOW)
            .with_new_device(true)
            .with_new_network(true)
            .with_bot_score(0.7)
            .unwrap(),
    );
    let mut factors = identity_factors();
    factors.push(Factor::Captcha);
    assert_eq!(a.decision, RiskDecision::Challenge { factors });
    assert_eq!(a.reason, REASON_NEW_DEVICE);
}

#[test]
fn out_of_range_signals_are_refused() {
    for bad in [f32::NAN, -0.01, 1.01, f32::INFINITY] {
        assert_eq!(
            RiskSignals::new(NOW).with_bot_score(bad).unwrap_err(),
            SignalError::BotScore
        );
    }
    assert_eq!(GeoPoint::new(90.5, 0.0).unwrap_err(), SignalError::Latitude);
    assert_eq!(
        GeoPoint::new(f64::NAN, 0.0).unwrap_err(),
        SignalError::Latitude
    );
    assert_eq!(
        GeoPoint::new(0.0, -180.5).unwrap_err(),
        SignalError::Longitude
    );
    assert!(GeoPoint::new(-90.0, 180.0).is_ok());
    assert!(BotVerdict::new(f32::NAN, false).is_err());
    assert!(BotVerdict::new(0.3, true).is_ok());
}

#[tokio::test]
async fn hooks_without_a_vendor() {
    let verdict = NoBotCheck
        .check(None, Some("192.0.2.1".parse().unwrap()))
        .await
        .unwrap();
    assert!(verdict.score.abs() < f32::EPSILON);
    assert!(!verdict.passed_challenge);

    let to = Phone::parse("+44 20 7946 0018").unwrap();
    ConsoleSms
        .send(&to, "Your Acme code is 123456.")
        .await
        .unwrap();
}
