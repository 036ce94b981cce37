//! The session cookie: its name, its attributes, and reading it back from a request.

use http::{HeaderMap, HeaderValue, header::COOKIE};
use time::Duration;

use ciam_core::secret::OpaqueToken;

/// Cookie name used when the public URL is `https://`: the `__Host-` prefix makes browsers
/// refuse the cookie unless it is `Secure`, has `Path=/` and no `Domain`, so a sibling
/// subdomain cannot plant or overwrite it.
pub const SECURE_COOKIE_NAME: &str = "__Host-ciam_session";

/// Cookie name used when the public URL is plain `http://` (local development): browsers
/// refuse `__Host-` cookies without `Secure`, and `Secure` cookies over plain HTTP.
pub const PLAIN_COOKIE_NAME: &str = "ciam_session";

/// Trusted-device cookie name with `https://` public URLs (see [`SECURE_COOKIE_NAME`]).
pub const SECURE_DEVICE_COOKIE_NAME: &str = "__Host-ciam_device";

/// Trusted-device cookie name with plain `http://` public URLs.
pub const PLAIN_DEVICE_COOKIE_NAME: &str = "ciam_device";

/// Passwordless binding cookie name with `https://` public URLs.
pub const SECURE_BINDING_COOKIE_NAME: &str = "__Host-ciam_binding";

/// Passwordless binding cookie name with plain `http://` public URLs.
pub const PLAIN_BINDING_COOKIE_NAME: &str = "ciam_binding";

/// How the session cookie is named and which attributes it carries.
///
/// The attributes are fixed to the safe choice: `HttpOnly` (scripts cannot read the token),
/// `SameSite=Lax` (not sent on cross-site subrequests and form posts), `Path=/` and no
/// `Domain` (host-only). `Secure` and the `__Host-` prefix are added when the public URL is
/// HTTPS. The session token appears only in `Set-Cookie` and `Cookie` headers, never in a
/// response body or a URL.
///
/// The trusted-device cookie (the engine's `SignedIn::device_token`) has the same attributes
/// under its own name; it outlives sessions (sign-out keeps it) so the browser stays trusted.
/// So does the passwordless binding cookie, which ties a magic link or code to the browser
/// that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    name: &'static str,
    device_name: &'static str,
    binding_name: &'static str,
    secure: bool,
}

impl CookieConfig {
    /// The configuration for an application served at `public_url`: `__Host-ciam_session`
    /// with `Secure` for `https://` URLs, `ciam_session` without `Secure` otherwise.
    pub fn for_public_url(public_url: &str) -> Self {
        let https = public_url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        if https {
            Self {
                name: SECURE_COOKIE_NAME,
                device_name: SECURE_DEVICE_COOKIE_NAME,
                binding_name: SECURE_BINDING_COOKIE_NAME,
                secure: true,
            }
        } else {
            Self {
                name: PLAIN_COOKIE_NAME,
                device_name: PLAIN_DEVICE_COOKIE_NAME,
                binding_name: PLAIN_BINDING_COOKIE_NAME,
                secure: false,
            }
        }
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Whether the cookie carries the `Secure` attribute.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// A `Set-Cookie` value that hands `token` to the browser for `max_age` (clamped at zero).
    ///
    /// Returns `None` when `token` is not a well-formed ciam token (so it cannot be placed in
    /// a header safely); tokens issued by the engine always are.
    pub fn session_cookie(&self, token: &OpaqueToken, max_age: Duration) -> Option<HeaderValue> {
        self.set_cookie(self.name, token, max_age)
    }

    /// A `Set-Cookie` value for the trusted-device token (same rules as
    /// [`Self::session_cookie`]).
    pub fn device_cookie(&self, token: &OpaqueToken, max_age: Duration) -> Option<HeaderValue> {
        self.set_cookie(self.device_name, token, max_age)
    }

    /// A `Set-Cookie` value for a passwordless binding token.
    pub fn binding_cookie(&self, token: &OpaqueToken, max_age: Duration) -> Option<HeaderValue> {
        self.set_cookie(self.binding_name, token, max_age)
    }

    /// The passwordless binding token presented in the request, if any.
    pub fn read_binding(&self, headers: &HeaderMap) -> Option<OpaqueToken> {
        read_named(headers, self.binding_name)
    }

    /// The trusted-device cookie name.
    pub fn device_name(&self) -> &str {
        self.device_name
    }

    fn set_cookie(
        &self,
        name: &str,
        token: &OpaqueToken,
        max_age: Duration,
    ) -> Option<HeaderValue> {
        if !token.is_well_formed() {
            return None;
        }
        let seconds = max_age.whole_seconds().max(0);
        HeaderValue::from_str(&format!(
            "{name}={}; {}; Max-Age={seconds}",
            token.expose(),
            self.attributes()
        ))
        .ok()
    }

    /// A `Set-Cookie` value that removes the cookie from the browser.
    pub fn clear_cookie(&self) -> HeaderValue {
        let value = format!(
            "{}=; {}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            self.name,
            self.attributes()
        );
        // The name and attributes are fixed ASCII, so this cannot fail; fall back to a bare
        // deletion rather than panicking should that ever change.
        HeaderValue::from_str(&value)
            .unwrap_or(HeaderValue::from_static("ciam_session=; Path=/; Max-Age=0"))
    }

    /// The session token presented in the request's `Cookie` headers, if any.
    ///
    /// When the cookie appears more than once, the first occurrence is used (browsers send
    /// the most specific path first; with `Path=/` only one is expected).
    pub fn read(&self, headers: &HeaderMap) -> Option<OpaqueToken> {
        read_named(headers, self.name)
    }

    /// The trusted-device token presented in the request, if any.
    pub fn read_device(&self, headers: &HeaderMap) -> Option<OpaqueToken> {
        read_named(headers, self.device_name)
    }

    /// [`Self::read`] and [`Self::read_device`] in one pass over the `Cookie` headers.
    pub fn read_both(&self, headers: &HeaderMap) -> (Option<OpaqueToken>, Option<OpaqueToken>) {
        let (mut session, mut device) = (None, None);
        scan(headers, |n, value| {
            if n == self.name {
                session.get_or_insert(value);
            } else if n == self.device_name {
                device.get_or_insert(value);
            }
            session.is_some() && device.is_some()
        });
        (session.and_then(token_of), device.and_then(token_of))
    }

    /// Whether `value` (a `Set-Cookie` header) sets or clears this cookie.
    pub(crate) fn is_this_cookie(&self, value: &[u8]) -> bool {
        std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.split_once('='))
            .is_some_and(|(name, _)| name.trim() == self.name)
    }

    fn attributes(&self) -> &'static str {
        if self.secure {
            "Path=/; HttpOnly; SameSite=Lax; Secure"
        } else {
            "Path=/; HttpOnly; SameSite=Lax"
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers (first occurrence), if any.
fn read_named(headers: &HeaderMap, name: &str) -> Option<OpaqueToken> {
    let mut found = None;
    scan(headers, |n, value| {
        if n == name {
            found = Some(value);
            true
        } else {
            false
        }
    });
    found.and_then(token_of)
}

/// Calls `visit(name, value)` on each `name=value` pair of the request's `Cookie` headers, in
/// order, until it returns true. Headers that are not visible ASCII are skipped.
fn scan<'h>(headers: &'h HeaderMap, mut visit: impl FnMut(&'h str, &'h str) -> bool) {
    for header in headers.get_all(COOKIE) {
        let Ok(header) = header.to_str() else {
            continue;
        };
        for pair in header.split(';') {
            if let Some((n, value)) = pair.trim().split_once('=')
                && visit(n, value)
            {
                return;
            }
        }
    }
}

/// A presented cookie value as a token: quotes and spaces around it dropped; none if empty.
fn token_of(value: &str) -> Option<OpaqueToken> {
    let value = value.trim().trim_matches('"');
    (!value.is_empty()).then(|| OpaqueToken::from_client(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn exposed(t: Option<OpaqueToken>) -> Option<String> {
        t.map(|t| t.expose().to_owned())
    }

    /// `read_both` answers what `read` and `read_device` answer, pair by pair, on the shapes
    /// browsers and attackers send.
    #[test]
    fn read_both_agrees_with_the_single_reads() {
        let c = CookieConfig::for_public_url("http://localhost");
        // The `Cookie` headers, then the session and device tokens expected.
        type Case<'a> = (&'a [&'a [u8]], Option<&'a str>, Option<&'a str>);
        let cases: &[Case] = &[
            (&[], None, None),
            (
                &[b"ciam_session=s1; ciam_device=d1"],
                Some("s1"),
                Some("d1"),
            ),
            (
                &[b"ciam_device=d1; other=x; ciam_session=s1"],
                Some("s1"),
                Some("d1"),
            ),
            // First occurrence wins, across headers too.
            (&[b"ciam_session=s1; ciam_session=s2"], Some("s1"), None),
            (
                &[b"ciam_device=d1", b"ciam_device=d2; ciam_session=s2"],
                Some("s2"),
                Some("d1"),
            ),
            // Quotes and spaces dropped; an empty first value is no token (not the second).
            (
                &[b"  ciam_session=\"s1\" ;ciam_device= d1 "],
                Some("s1"),
                Some("d1"),
            ),
            (&[b"ciam_session=; ciam_session=s2"], None, None),
            // A name that only starts like ours, a pair without '=', an unreadable header.
            (
                &[b"ciam_session_x=s0; junk; ciam_session=s1"],
                Some("s1"),
                None,
            ),
            (
                &[b"ciam_session=s\xff1", b"ciam_session=s2"],
                Some("s2"),
                None,
            ),
        ];
        for (values, session, device) in cases {
            let h = headers(values);
            let (s, d) = c.read_both(&h);
            let (s, d) = (exposed(s), exposed(d));
            assert_eq!(s.as_deref(), *session, "{values:?}");
            assert_eq!(d.as_deref(), *device, "{values:?}");
            assert_eq!(exposed(c.read(&h)), s, "{values:?}");
            assert_eq!(exposed(c.read_device(&h)), d, "{values:?}");
        }
    }
}
