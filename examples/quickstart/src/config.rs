//! Configuration from the environment.

use std::net::SocketAddr;

/// Default listen address.
const DEFAULT_BIND: &str = "127.0.0.1:3000";
/// Default public URL (what mailed links and the CSRF check use).
const DEFAULT_PUBLIC_URL: &str = "http://localhost:3000";
/// Default database: an SQLite file in the working directory, created if missing.
const DEFAULT_DATABASE_URL: &str = "sqlite://ciam-quickstart.db?mode=rwc";
/// Default sender address.
const DEFAULT_MAIL_FROM: &str = "ciam quickstart <noreply@localhost>";

/// The quickstart's settings.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) bind: SocketAddr,
    pub(crate) public_url: String,
    pub(crate) database_url: String,
    pub(crate) smtp_url: Option<String>,
    pub(crate) redis_url: Option<String>,
    pub(crate) mail_from: String,
    /// `CIAM_PASSKEY_KEY`: the key (its UTF-8 bytes, at least 32) behind the stable answers
    /// to passkey sign-in options for unknown addresses; set the same on every instance.
    pub(crate) passkey_key: Option<Vec<u8>>,
    /// `CIAM_SEALING_KEY`: 64 hex characters sealing TOTP secrets at rest.
    pub(crate) sealing_key: Option<String>,
    /// `CIAM_RISK`: `off` turns the adaptive risk policy off (default on).
    pub(crate) risk: bool,
    /// `CIAM_BREACHED_PASSWORDS_DIR`: a directory of k-anonymity range files.
    pub(crate) breached_dir: Option<String>,
    /// `CIAM_TRUSTED_PROXY_HOPS`: how many proxies in front append to `X-Forwarded-For`.
    pub(crate) trusted_proxy_hops: usize,
    /// `CIAM_TOKEN_KEY`: the access-token signing key (PKCS#8, PEM or base64 DER).
    pub(crate) token_key: Option<String>,
    /// `CIAM_TOKEN_REFRESH_GRACE`: the refresh grace window in seconds (0 to 60).
    pub(crate) token_refresh_grace: Option<i64>,
    /// `CIAM_OIDC_ISSUER`: an OpenID Provider to sign in with (provider `oidc`).
    pub(crate) oidc_issuer: Option<String>,
    /// `CIAM_OIDC_CLIENT_ID`: this site's client id at that provider.
    pub(crate) oidc_client_id: Option<String>,
    /// `CIAM_OIDC_CLIENT_SECRET`: its client secret (unset: a public client, PKCE only).
    pub(crate) oidc_client_secret: Option<String>,
    /// `CIAM_OIDC_NAME`: the provider's name on the sign-in button.
    pub(crate) oidc_name: Option<String>,
}

impl Config {
    /// Reads `CIAM_BIND`, `CIAM_PUBLIC_URL`, `CIAM_DATABASE_URL`, `CIAM_REDIS_URL`,
    /// `CIAM_SMTP_URL`, `CIAM_MAIL_FROM`, `CIAM_PASSKEY_KEY`, `CIAM_SEALING_KEY`, `CIAM_RISK`,
    /// `CIAM_BREACHED_PASSWORDS_DIR`, `CIAM_TRUSTED_PROXY_HOPS`, `CIAM_TOKEN_KEY`,
    /// `CIAM_TOKEN_REFRESH_GRACE`, `CIAM_OIDC_ISSUER`, `CIAM_OIDC_CLIENT_ID`,
    /// `CIAM_OIDC_CLIENT_SECRET` and `CIAM_OIDC_NAME`.
    pub(crate) fn from_env() -> Result<Self, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let bind_text = var("CIAM_BIND").unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind = bind_text.parse().map_err(|_| {
            format!("CIAM_BIND must be an address such as {DEFAULT_BIND}, got {bind_text:?}")
        })?;
        let hops_text = var("CIAM_TRUSTED_PROXY_HOPS").unwrap_or_else(|| "0".to_owned());
        let trusted_proxy_hops = hops_text.parse().map_err(|_| {
            format!("CIAM_TRUSTED_PROXY_HOPS must be a small number, got {hops_text:?}")
        })?;
        let token_refresh_grace = var("CIAM_TOKEN_REFRESH_GRACE")
            .map(|t| {
                t.parse::<i64>().map_err(|_| {
                    format!("CIAM_TOKEN_REFRESH_GRACE must be seconds (0 to 60), got {t:?}")
                })
            })
            .transpose()?;
        Ok(Self {
            bind,
            public_url: var("CIAM_PUBLIC_URL").unwrap_or_else(|| DEFAULT_PUBLIC_URL.to_owned()),
            database_url: var("CIAM_DATABASE_URL")
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            smtp_url: var("CIAM_SMTP_URL").map(|u| normalize_smtp_url(&u)),
            redis_url: var("CIAM_REDIS_URL"),
            mail_from: var("CIAM_MAIL_FROM").unwrap_or_else(|| DEFAULT_MAIL_FROM.to_owned()),
            passkey_key: var("CIAM_PASSKEY_KEY").map(String::into_bytes),
            sealing_key: var("CIAM_SEALING_KEY"),
            risk: !var("CIAM_RISK").is_some_and(|v| v.eq_ignore_ascii_case("off")),
            breached_dir: var("CIAM_BREACHED_PASSWORDS_DIR"),
            trusted_proxy_hops,
            token_key: var("CIAM_TOKEN_KEY"),
            token_refresh_grace,
            oidc_issuer: var("CIAM_OIDC_ISSUER"),
            oidc_client_id: var("CIAM_OIDC_CLIENT_ID"),
            oidc_client_secret: var("CIAM_OIDC_CLIENT_SECRET"),
            oidc_name: var("CIAM_OIDC_NAME"),
        })
    }
}

/// Appends `tls=none` to a plain `smtp://` URL that points at a loopback host and says
/// nothing about TLS, so `smtp://127.0.0.1:2525` reaches a local test sink. Any other URL is
/// left alone: a remote server keeps the library's default (STARTTLS when offered).
pub(crate) fn normalize_smtp_url(url: &str) -> String {
    let url = url.trim();
    let Some(rest) = url.strip_prefix("smtp://") else {
        return url.to_owned();
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    if query.is_some_and(|q| q.split('&').any(|p| p.starts_with("tls="))) {
        return url.to_owned();
    }
    let hostport = authority
        .trim_end_matches('/')
        .rsplit_once('@')
        .map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = hostport.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        hostport.split(':').next().unwrap_or("")
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return url.to_owned();
    }
    match query {
        Some(q) if !q.is_empty() => format!("{url}&tls=none"),
        Some(_) => format!("{url}tls=none"),
        None => format!("{url}?tls=none"),
    }
}

/// A connection URL fit for messages: no query string and no password.
pub(crate) fn redact_url(url: &str) -> String {
    let url = url.split_once('?').map_or(url, |(path, _)| path);
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_smtp_url as n;

    #[test]
    fn urls_in_messages_carry_no_password() {
        use super::redact_url as r;
        assert_eq!(
            r("postgres://app:s3cret@db:5432/ciam?sslmode=require"),
            "postgres://app:***@db:5432/ciam"
        );
        assert_eq!(r("sqlite://x.db?mode=rwc"), "sqlite://x.db");
        assert_eq!(
            r("redis://default:pw@127.0.0.1:6379/0"),
            "redis://default:***@127.0.0.1:6379/0"
        );
        assert_eq!(r("plain/path.db"), "plain/path.db");
    }

    #[test]
    fn loopback_smtp_urls_get_tls_none() {
        assert_eq!(n("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525?tls=none");
        assert_eq!(
            n("smtp://localhost:2525/"),
            "smtp://localhost:2525/?tls=none"
        );
        assert_eq!(n("smtp://[::1]:25"), "smtp://[::1]:25?tls=none");
        assert_eq!(
            n("smtp://127.0.0.1:2525?tls=required"),
            "smtp://127.0.0.1:2525?tls=required"
        );
        assert_eq!(n("smtp://mail.example:587"), "smtp://mail.example:587");
        assert_eq!(n("smtps://127.0.0.1:465"), "smtps://127.0.0.1:465");
    }
}
