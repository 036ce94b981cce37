//! The otpauth:// Key-Uri-Format of authenticator apps.

use super::{OtpAlgorithm, OtpError, OtpSecret, TotpConfig};
use crate::secret::SecretString;
use zeroize::Zeroizing;

/// Why an otpauth:// URI was refused.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not an `otpauth://` URI, or its structure (label, query, percent-encoding) is broken.
    #[error("not a well-formed otpauth:// URI")]
    Malformed,
    /// The type is neither `totp` nor `hotp`.
    #[error("unknown OTP type")]
    UnknownType,
    /// The type is `hotp`, which this library does not enrol through URIs.
    #[error("HOTP URIs are not supported")]
    UnsupportedType,
    /// There is no `secret` parameter.
    #[error("the secret is missing")]
    MissingSecret,
    /// The secret is not base32 or is shorter than 160 bits.
    #[error("the secret is not valid base32 of at least 160 bits")]
    InvalidSecret,
    /// The issuer in the label differs from the `issuer` parameter.
    #[error("the label issuer and the issuer parameter differ")]
    IssuerConflict,
    /// The `algorithm` parameter is not SHA1, SHA256 or SHA512.
    #[error("unknown algorithm")]
    UnknownAlgorithm,
    /// The `digits` parameter is not 6 or 8.
    #[error("digits must be 6 or 8")]
    InvalidDigits,
    /// The `period` parameter is not a number of seconds in the accepted range.
    #[error("invalid period")]
    InvalidPeriod,
    /// The account name is empty, or the issuer or account contains a colon.
    #[error("invalid issuer or account name")]
    InvalidLabel,
}

/// A TOTP enrolment URI: `otpauth://totp/Issuer:account?secret=...&issuer=...&...`.
///
/// [`OtpAuthUri::to_uri`] always writes every parameter (secret as unpadded base32, issuer,
/// algorithm, digits, period), percent-encoding the label and values. [`OtpAuthUri::parse`]
/// reads them back and applies the defaults (SHA1, 6 digits, 30 seconds) for missing ones; the
/// skew is not part of the format and is set to [`TotpConfig::MAX_SKEW`].
///
/// ```
/// use ciam_core::otp::{OtpAuthUri, OtpSecret, TotpConfig};
///
/// let secret = OtpSecret::from_bytes(b"12345678901234567890").unwrap();
/// let uri = OtpAuthUri::new(Some("Acme Co"), "ada@example.com", secret, TotpConfig::default()).unwrap();
/// assert_eq!(
///     uri.to_uri().expose(),
///     "otpauth://totp/Acme%20Co:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
///      &issuer=Acme%20Co&algorithm=SHA1&digits=6&period=30"
/// );
/// let back = OtpAuthUri::parse(uri.to_uri().expose()).unwrap();
/// assert_eq!(back.account(), "ada@example.com");
/// ```
#[derive(Debug, Clone)]
pub struct OtpAuthUri {
    issuer: Option<String>,
    account: String,
    secret: OtpSecret,
    config: TotpConfig,
}

impl OtpAuthUri {
    /// Describes an enrolment. The account must be non-empty; neither it nor the issuer may
    /// contain a colon (the label separator) ([`UriError::InvalidLabel`]).
    pub fn new(
        issuer: Option<&str>,
        account: &str,
        secret: OtpSecret,
        config: TotpConfig,
    ) -> Result<Self, OtpError> {
        let issuer = issuer.map(str::to_owned);
        if account.is_empty()
            || account.contains(':')
            || issuer
                .as_deref()
                .is_some_and(|i| i.is_empty() || i.contains(':'))
        {
            return Err(UriError::InvalidLabel.into());
        }
        Ok(Self {
            issuer,
            account: account.to_owned(),
            secret,
            config,
        })
    }

    /// The issuer (service name), if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The account name (usually the e-mail address).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The shared secret.
    pub fn secret(&self) -> &OtpSecret {
        &self.secret
    }

    /// The TOTP parameters.
    pub fn config(&self) -> &TotpConfig {
        &self.config
    }

    /// Writes the URI. It contains the secret, hence the [`SecretString`]: show it (or its QR
    /// code) to the enrolling user only, and never log it.
    pub fn to_uri(&self) -> SecretString {
        let mut out = String::from("otpauth://totp/");
        if let Some(issuer) = &self.issuer {
            percent_encode(issuer, &mut out);
            out.push(':');
        }
        percent_encode(&self.account, &mut out);
        out.push_str("?secret=");
        out.push_str(self.secret.to_base32().expose());
        if let Some(issuer) = &self.issuer {
            out.push_str("&issuer=");
            percent_encode(issuer, &mut out);
        }
        out.push_str("&algorithm=");
        out.push_str(self.config.algorithm().name());
        out.push_str(&format!(
            "&digits={}&period={}",
            self.config.digits(),
            self.config.period()
        ));
        SecretString::new(out)
    }

    /// Parses a `totp` URI. Unknown parameters (such as `image`) are ignored; a repeated
    /// parameter is [`UriError::Malformed`]. The issuer comes from the label prefix or the
    /// `issuer` parameter; when both are present they must be equal.
    pub fn parse(uri: &str) -> Result<Self, OtpError> {
        Ok(parse(uri)?)
    }
}

fn parse(uri: &str) -> Result<OtpAuthUri, UriError> {
    const SCHEME: &str = "otpauth://";
    let rest = match uri.get(..SCHEME.len()) {
        Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => &uri[SCHEME.len()..],
        _ => return Err(UriError::Malformed),
    };
    let (kind, rest) = rest.split_once('/').ok_or(UriError::Malformed)?;
    if kind.eq_ignore_ascii_case("hotp") {
        return Err(UriError::UnsupportedType);
    }
    if !kind.eq_ignore_ascii_case("totp") {
        return Err(UriError::UnknownType);
    }
    let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
    let label = percent_decode(label, false)?;
    let (label_issuer, account) = match label.split_once(':') {
        Some((issuer, account)) => (Some(issuer.to_owned()), account.trim_start().to_owned()),
        None => (None, label.clone()),
    };
    if account.is_empty() || account.contains(':') {
        return Err(UriError::InvalidLabel);
    }

    let mut secret = None;
    let mut issuer = None;
    let mut algorithm = None;
    let mut digits = None;
    let mut period = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or(UriError::Malformed)?;
        let slot = match key {
            "secret" => &mut secret,
            "issuer" => &mut issuer,
            "algorithm" => &mut algorithm,
            "digits" => &mut digits,
            "period" => &mut period,
            _ => continue,
        };
        if slot.is_some() {
            return Err(UriError::Malformed);
        }
        *slot = Some(percent_decode(value, true)?);
    }

    let secret = Zeroizing::new(secret.ok_or(UriError::MissingSecret)?);
    let secret = OtpSecret::from_base32(&secret).map_err(|_| UriError::InvalidSecret)?;
    let issuer = match (label_issuer, issuer) {
        (Some(a), Some(b)) if a != b => return Err(UriError::IssuerConflict),
        (a, b) => a.or(b),
    };
    if issuer.as_deref().is_some_and(str::is_empty) {
        return Err(UriError::InvalidLabel);
    }
    let algorithm = match algorithm {
        None => OtpAlgorithm::Sha1,
        Some(name) => OtpAlgorithm::from_name(&name).ok_or(UriError::UnknownAlgorithm)?,
    };
    let digits = match digits {
        None => 6,
        Some(d) if d == "6" || d == "8" => d.parse().map_err(|_| UriError::InvalidDigits)?,
        Some(_) => return Err(UriError::InvalidDigits),
    };
    let period = match period {
        None => TotpConfig::DEFAULT_PERIOD,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse().map_err(|_| UriError::InvalidPeriod)?
        }
        Some(_) => return Err(UriError::InvalidPeriod),
    };
    let config = TotpConfig::new(algorithm, digits, period, TotpConfig::MAX_SKEW)
        .map_err(|_| UriError::InvalidPeriod)?;
    Ok(OtpAuthUri {
        issuer,
        account,
        secret,
        config,
    })
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
fn percent_encode(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Decodes `%XX` escapes (and `+` as a space in query values) into UTF-8.
fn percent_decode(text: &str, plus_is_space: bool) -> Result<String, UriError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(UriError::Malformed)?;
                let hex = std::str::from_utf8(hex).map_err(|_| UriError::Malformed)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(UriError::Malformed);
                }
                out.push(u8::from_str_radix(hex, 16).map_err(|_| UriError::Malformed)?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| UriError::Malformed)
}
