//! Engine policy: the knobs a deployment turns, with safe defaults.

use time::Duration;

/// Session lifetimes (NIST SP 800-63B §4 and §7; OWASP ASVS 7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionPolicy {
    /// A session unused for this long ends. Default 7 days.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in whatever happens. Default 30 days (the AAL1
    /// limit of SP 800-63B rev. 3).
    pub absolute_lifetime: Duration,
    /// Activity is written back at most this often, so validating a session is a read, not a
    /// write, on almost every request. Default 60 seconds.
    pub touch_interval: Duration,
}

impl SessionPolicy {
    /// Default idle timeout.
    pub const DEFAULT_IDLE: Duration = Duration::days(7);
    /// Default absolute lifetime.
    pub const DEFAULT_ABSOLUTE: Duration = Duration::days(30);
    /// Default touch interval.
    pub const DEFAULT_TOUCH: Duration = Duration::seconds(60);

    /// A policy with the given idle timeout and absolute lifetime.
    pub fn new(idle_timeout: Duration, absolute_lifetime: Duration) -> Self {
        Self {
            idle_timeout,
            absolute_lifetime,
            touch_interval: Self::DEFAULT_TOUCH.min(idle_timeout / 10),
        }
    }

    /// Sets how often activity is written back.
    pub fn with_touch_interval(mut self, every: Duration) -> Self {
        self.touch_interval = every;
        self
    }
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self::new(Self::DEFAULT_IDLE, Self::DEFAULT_ABSOLUTE)
    }
}

/// Flow policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Policy {
    /// Whether an account whose e-mail is not verified may sign in. Default false: the sign-in
    /// answers [`crate::SignInOutcome::VerificationRequired`] instead.
    pub allow_unverified_sign_in: bool,
    /// Whether the password is the only factor (true until MFA exists): the policy then asks
    /// for 15 characters rather than 8 (SP 800-63B rev. 4). Default true.
    pub password_is_single_factor: bool,
    /// Session lifetimes.
    pub session: SessionPolicy,
    /// How recent a sign-in must be for a sensitive change made without the current password.
    /// Default 10 minutes.
    pub recent_auth_max_age: Duration,
    /// Lifetime of an e-mail verification link. Default 24 hours.
    pub verify_email_ttl: Duration,
    /// Lifetime of a password-reset link. Default 30 minutes.
    pub reset_password_ttl: Duration,
    /// Lifetime of a new-address confirmation link. Default 1 hour.
    pub change_email_ttl: Duration,
    /// At most this many mails of one kind (verification, reset) per account per hour.
    /// Default 3.
    pub mails_per_hour: u32,
    /// Throttling of failed sign-ins and second-factor attempts.
    pub throttle: super::throttle::ThrottlePolicy,
    /// How long a trusted-device token lasts. Default 30 days.
    pub trusted_device_ttl: Duration,
    /// How long "remember this device" skips the second factor (at most
    /// `trusted_device_ttl`). Default 30 days.
    pub remember_device_for: Duration,
    /// How long a pending second-factor sign-in waits. Default 5 minutes.
    pub mfa_pending_ttl: Duration,
    /// Wrong second-factor answers allowed per pending sign-in. Default 5.
    pub mfa_attempts: u32,
    /// Lifetime of a sign-in link or code. Default 15 minutes.
    pub passwordless_ttl: Duration,
    /// Wrong sign-in codes allowed per code. Default 5.
    pub code_attempts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            allow_unverified_sign_in: false,
            password_is_single_factor: true,
            session: SessionPolicy::default(),
            recent_auth_max_age: Duration::minutes(10),
            verify_email_ttl: Duration::hours(24),
            reset_password_ttl: Duration::minutes(30),
            change_email_ttl: Duration::hours(1),
            mails_per_hour: 3,
            throttle: super::throttle::ThrottlePolicy::default(),
            trusted_device_ttl: Duration::days(30),
            remember_device_for: Duration::days(30),
            mfa_pending_ttl: Duration::minutes(5),
            mfa_attempts: 5,
            passwordless_ttl: Duration::minutes(15),
            code_attempts: 5,
        }
    }
}

/// Paths, relative to the public URL, that mailed links point to. Each link carries
/// `?token=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkPaths {
    /// E-mail verification and new-address confirmation. Default `/verify-email`.
    pub verify_email: String,
    /// Password reset. Default `/reset-password`.
    pub reset_password: String,
    /// Sign-in page. Default `/login`.
    pub sign_in: String,
    /// "Forgot password" page. Default `/forgot-password`.
    pub forgot_password: String,
    /// Magic-link confirm page (a GET shows a button; its POST signs in). Default
    /// `/magic-link`.
    pub magic_link: String,
}

impl Default for LinkPaths {
    fn default() -> Self {
        Self {
            verify_email: "/verify-email".into(),
            reset_password: "/reset-password".into(),
            sign_in: "/login".into(),
            forgot_password: "/forgot-password".into(),
            magic_link: "/magic-link".into(),
        }
    }
}
