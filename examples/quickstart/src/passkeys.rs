//! Passkeys for the quickstart: the WebAuthn relying party follows `CIAM_PUBLIC_URL`.

use ciam::PasskeyConfig;
use ciam::webauthn::RelyingParty;

/// The origin (`scheme://host[:port]`) and host of an absolute `http(s)` URL.
pub(crate) fn origin_and_host(url: &str) -> Result<(String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("CIAM_PUBLIC_URL {url:?} is not an absolute URL"))?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("CIAM_PUBLIC_URL {url:?} is not http(s)"));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("CIAM_PUBLIC_URL {url:?} has no usable host"));
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default().to_owned()
    } else {
        authority.split(':').next().unwrap_or_default().to_owned()
    };
    Ok((
        format!("{scheme}://{}", authority.to_ascii_lowercase()),
        host.to_ascii_lowercase(),
    ))
}

/// Passkeys with the RP id set to the public URL's host and its origin as the only origin.
/// `key` (from `CIAM_PASSKEY_KEY`, at least 32 bytes) makes the answers for unknown
/// addresses the same on every instance.
pub(crate) fn config(public_url: &str, key: Option<&[u8]>) -> Result<PasskeyConfig, String> {
    let (origin, host) = origin_and_host(public_url)?;
    let rp = RelyingParty::builder(host.clone())
        .name(crate::APP_NAME)
        .origin(origin)
        .build()
        .map_err(|e| {
            format!("passkeys cannot use CIAM_PUBLIC_URL {public_url:?} (RP id {host:?}): {e}")
        })?;
    let config = PasskeyConfig::new(rp).map_err(|e| e.to_string())?;
    match key {
        Some(k) => config
            .with_enumeration_key(k)
            .map_err(|_| "CIAM_PASSKEY_KEY must hold at least 32 bytes".to_owned()),
        None => Ok(config),
    }
}

#[cfg(test)]
mod tests {
    use super::origin_and_host;

    #[test]
    fn origin_and_host_from_public_urls() {
        assert_eq!(
            origin_and_host("http://localhost:3000").unwrap(),
            ("http://localhost:3000".to_owned(), "localhost".to_owned())
        );
        assert_eq!(
            origin_and_host("https://Auth.Example.com/app/").unwrap(),
            (
                "https://auth.example.com".to_owned(),
                "auth.example.com".to_owned()
            )
        );
        assert!(origin_and_host("ftp://example.com").is_err());
        assert!(origin_and_host("example.com").is_err());
        assert!(origin_and_host("https://user@example.com").is_err());
    }
}
