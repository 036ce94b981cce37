//! Passkeys for the quickstart: the WebAuthn relying party follows `CIAM_PUBLIC_URL`.

use ciam::PasskeyConfig;
use ciam::webauthn::RelyingParty;

/// The origin (`scheme://host[:port]`) and host of an absolute `http(s)` URL, both lower-case.
///
/// The origin is serialised as browsers put it in `clientDataJSON` (and WebAuthn compares it
/// exactly): a default port (`:443` for https, `:80` for http) or an empty one is left out, so
/// `https://auth.example.com:443/` gives `https://auth.example.com`.
pub(crate) fn origin_and_host(url: &str) -> Result<(String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("CIAM_PUBLIC_URL {url:?} is not an absolute URL"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err(format!("CIAM_PUBLIC_URL {url:?} is not http(s)")),
    };
    let authority = rest
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let no_host = || format!("CIAM_PUBLIC_URL {url:?} has no usable host");
    if authority.is_empty() || authority.contains('@') {
        return Err(no_host());
    }
    // `[v6]:port` or `name:port`; `host` keeps the brackets of an IPv6 literal for the origin.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (inner, after) = v6.split_once(']').ok_or_else(no_host)?;
            (format!("[{inner}]"), after)
        }
        None => {
            let at = authority.find(':').unwrap_or(authority.len());
            (authority[..at].to_owned(), &authority[at..])
        }
    };
    if host.is_empty() || host == "[]" {
        return Err(no_host());
    }
    let port = match port {
        "" | ":" => None,
        p => {
            let digits = p.strip_prefix(':').ok_or_else(no_host)?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("CIAM_PUBLIC_URL {url:?} has a bad port"));
            }
            let n: u16 = digits
                .parse()
                .map_err(|_| format!("CIAM_PUBLIC_URL {url:?} has a bad port"))?;
            (n != default_port).then_some(n)
        }
    };
    let origin = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(&host)
        .to_owned();
    Ok((origin, bare))
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
    use super::{config, origin_and_host};

    fn pair(origin: &str, host: &str) -> (String, String) {
        (origin.to_owned(), host.to_owned())
    }

    #[test]
    fn origin_and_host_from_public_urls() {
        let cases = [
            (
                "http://localhost:3000",
                ("http://localhost:3000", "localhost"),
            ),
            (
                "https://Auth.Example.com/app/",
                ("https://auth.example.com", "auth.example.com"),
            ),
            (
                "HTTPS://auth.example.com",
                ("https://auth.example.com", "auth.example.com"),
            ),
            (
                "https://auth.example.com?x=1#y",
                ("https://auth.example.com", "auth.example.com"),
            ),
            (
                "http://127.0.0.1:8080",
                ("http://127.0.0.1:8080", "127.0.0.1"),
            ),
            ("http://[::1]:3000/", ("http://[::1]:3000", "::1")),
        ];
        for (url, (origin, host)) in cases {
            assert_eq!(origin_and_host(url), Ok(pair(origin, host)), "{url}");
        }
    }

    /// Browsers leave a scheme's default port out of the origin they sign over, so the
    /// configured origin must too, or every ceremony fails the origin check.
    #[test]
    fn default_ports_are_left_out_of_the_origin() {
        let cases = [
            ("https://x.example:443", "https://x.example"),
            ("https://x.example:443/app", "https://x.example"),
            ("http://x.example:80", "http://x.example"),
            ("http://x.example:80/", "http://x.example"),
            ("https://x.example:", "https://x.example"),
            ("https://x.example:0443", "https://x.example"),
            ("http://[::1]:80", "http://[::1]"),
            // Another scheme's default port is not a default.
            ("https://x.example:80", "https://x.example:80"),
            ("http://x.example:443", "http://x.example:443"),
            ("https://x.example:8443", "https://x.example:8443"),
        ];
        for (url, origin) in cases {
            let (got, host) = origin_and_host(url).unwrap();
            assert_eq!(got, origin, "{url}");
            assert!(host == "x.example" || host == "::1", "{url}: {host}");
        }
    }

    #[test]
    fn unusable_public_urls_are_refused() {
        for url in [
            "ftp://example.com",
            "example.com",
            "https://user@example.com",
            "https://",
            "https:///path",
            "https://:443",
            "https://[]:443",
            "https://[::1",
            "https://x.example:port",
            "https://x.example:-1",
            "https://x.example:65536",
            "https://x.example:443:1",
            "http://[::1]x",
        ] {
            assert!(origin_and_host(url).is_err(), "{url}");
        }
    }

    #[test]
    fn config_follows_the_public_url() {
        for (url, rp_id, origin) in [
            (
                "https://auth.example.com:443/",
                "auth.example.com",
                "https://auth.example.com",
            ),
            (
                "http://localhost:3000",
                "localhost",
                "http://localhost:3000",
            ),
        ] {
            let config = config(url, None).unwrap();
            let rp = config.relying_party();
            assert_eq!(rp.rp_id(), rp_id);
            assert_eq!(rp.origins(), [origin.to_owned()]);
        }
        assert!(config("https://auth.example.com", Some(&[7; 32])).is_ok());
    }

    #[test]
    fn config_errors_name_the_setting() {
        // Not a URL the origin can come from.
        let e = config("auth.example.com", None).unwrap_err();
        assert!(e.contains("CIAM_PUBLIC_URL"), "{e}");
        // Hosts that are no RP id: an IPv6 literal, a name with an underscore.
        for url in ["http://[::1]:3000", "https://my_host.example"] {
            let e = config(url, None).unwrap_err();
            assert!(
                e.contains("CIAM_PUBLIC_URL") && e.contains("RP id"),
                "{url}: {e}"
            );
        }
        // A short enumeration key.
        let e = config("https://auth.example.com", Some(&[7; 31])).unwrap_err();
        assert!(e.contains("CIAM_PASSKEY_KEY"), "{e}");
    }
}
