//! Shared by the tests that talk to the real OpenID Provider (npm oidc-provider on loopback,

//! started by scripts/peers/oidc-start.sh; scripts/test.sh exports its env).

#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use ciam_federation::{AuthorizationResponse, ProviderConfig, RelyingParty};

/// A required env var; a missing one fails the test (run the suite with scripts/test.sh).
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the OpenID Provider with scripts/peers/oidc-start.sh (scripts/test.sh does)")
    })
}

pub fn issuer() -> String {
    env("CIAM_TEST_OIDC_ISSUER")
}

pub const REDIRECT: &str = "http://127.0.0.1:9/callback";

pub fn config(issuer: &str) -> ProviderConfig {
    let mut c = ProviderConfig::oidc(
        "op",
        issuer,
        &env("CIAM_TEST_OIDC_CLIENT_ID"),
        Some(&env("CIAM_TEST_OIDC_CLIENT_SECRET")),
    );
    c.redirect_uri = REDIRECT.to_owned();
    c
}

pub async fn discover_rp(config: ProviderConfig) -> RelyingParty {
    RelyingParty::discover(config, ciam_federation::default_http_client().unwrap())
        .await
        .unwrap()
}

/// Follows the OP's redirects (its headless interaction logs in `login_hint`) with a fresh
/// cookie jar until the browser would land on `redirect_uri`; returns the response parameters
/// (from the query, or from the auto-submitting form of response_mode=form_post).
pub async fn drive(url: &url::Url, redirect_uri: &str) -> Vec<(String, String)> {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut next = url.to_string();
    for _ in 0..12 {
        if next.starts_with(redirect_uri) {
            let u = url::Url::parse(&next).unwrap();
            return u
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
        }
        let resp = browser.get(&next).send().await.unwrap();
        if let Some(loc) = resp.headers().get("location") {
            let base = url::Url::parse(&next).unwrap();
            next = base.join(loc.to_str().unwrap()).unwrap().to_string();
            continue;
        }
        let status = resp.status();
        let body = resp.text().await.unwrap();
        assert!(
            body.contains(&format!("action=\"{redirect_uri}\"")),
            "unexpected page {status}: {body}"
        );
        return form_fields(&body);
    }
    panic!("too many redirects");
}

/// The hidden inputs of oidc-provider's form_post page.
pub fn form_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for chunk in html.split("<input").skip(1) {
        let attr = |name: &str| {
            let key = format!("{name}=\"");
            chunk.find(&key).map(|i| {
                let rest = &chunk[i + key.len()..];
                rest[..rest.find('"').unwrap()]
                    .replace("&amp;", "&")
                    .replace("&#34;", "\"")
            })
        };
        if let (Some(n), Some(v)) = (attr("name"), attr("value")) {
            out.push((n, v));
        }
    }
    out
}

pub fn response(pairs: &[(String, String)]) -> AuthorizationResponse {
    AuthorizationResponse::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.clone()))).unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
