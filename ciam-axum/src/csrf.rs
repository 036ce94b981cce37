//! Cross-site request forgery defence by origin checking.
//!
//! A state-changing request (any method other than GET, HEAD, OPTIONS and TRACE) is allowed
//! when its `Origin` header equals the application's origin exactly, or when it carries no
//! `Origin` and its `Sec-Fetch-Site` header is `same-origin` or `none` (a user-initiated
//! navigation). Everything else is refused, including a request with neither header:
//! browsers send at least one of them on every cross-site request, so their absence means a
//! non-browser client, which must then send `Origin` itself.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, Method};

/// The `scheme://host[:port]` origin of a public URL, lower-cased, with a default port
/// (`:443` for https, `:80` for http) removed, as browsers serialise it.
pub(crate) fn origin_of(public_url: &str) -> String {
    let (scheme, rest) = public_url.split_once("://").unwrap_or(("http", public_url));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    format!("{scheme}://{authority}")
}

/// Whether `method` can change state and so needs the check.
pub(crate) fn is_state_changing(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether a request is an API call the origin check need not cover: it carries no `Cookie`
/// header at all (so no ambient credential a cross-site page could make the browser send),
/// and either authenticates with `Authorization: Bearer` (a header no cross-site form can set
/// and browsers never add on their own, unlike cached `Basic` credentials) or targets one of
/// `cookieless_paths` (endpoints such as the token refresh, whose body is the credential and
/// whose answer sets no cookie). A request with any cookie is always checked.
pub(crate) fn is_cookieless_api_call(
    headers: &HeaderMap,
    path: &str,
    cookieless_paths: &[String],
) -> bool {
    if headers.contains_key(COOKIE) {
        return false;
    }
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7))
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("bearer "));
    bearer || cookieless_paths.iter().any(|p| p == path)
}

/// Checks a request; `Err` carries a short reason for the log.
pub(crate) fn check(
    method: &Method,
    headers: &HeaderMap,
    expected_origin: &str,
) -> Result<(), &'static str> {
    if !is_state_changing(method) {
        return Ok(());
    }
    let mut origins = headers.get_all(http::header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (Some(_), Some(_)) => Err("several Origin headers"),
        (Some(origin), None) => match origin.to_str() {
            Ok(o) if o.eq_ignore_ascii_case(expected_origin) => Ok(()),
            _ => Err("foreign Origin"),
        },
        (None, _) => match headers
            .get(const { HeaderName::from_static("sec-fetch-site") })
            .map(|v| v.as_bytes())
        {
            Some(b"same-origin" | b"none") => Ok(()),
            Some(_) => Err("cross-site Sec-Fetch-Site"),
            None => Err("neither Origin nor Sec-Fetch-Site"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_of_public_urls() {
        assert_eq!(
            origin_of("https://Acme.example/app"),
            "https://acme.example"
        );
        assert_eq!(
            origin_of("https://acme.example:443"),
            "https://acme.example"
        );
        assert_eq!(origin_of("http://localhost:3000"), "http://localhost:3000");
        assert_eq!(origin_of("http://localhost:80/"), "http://localhost");
    }
}
