//! Sign-in with an OpenID Provider over HTTP against the quickstart binary, configured by
//! `CIAM_OIDC_ISSUER` / `CIAM_OIDC_CLIENT_ID` / `CIAM_OIDC_CLIENT_SECRET` to use the real
//! OpenID Provider on loopback (npm oidc-provider, started by scripts/peers/oidc-start.sh;
//! scripts/test.sh exports `CIAM_TEST_OIDC_*`). A browserless client follows the redirects
//! through the provider's headless login: the sign-in button, sign-up and sign-in, the
//! linked-accounts API, the form_post callback re-issued as a same-site GET, another browser's
//! callback, and a provider that does not vouch for the address.

// A test harness: its helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use reqwest::header::{LOCATION, ORIGIN};
use reqwest::{Client, StatusCode};
use support::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the OpenID Provider with scripts/peers/oidc-start.sh (scripts/test.sh does)")
    })
}

async fn start_quickstart() -> Server {
    let issuer = env("CIAM_TEST_OIDC_ISSUER");
    let id = env("CIAM_TEST_OIDC_CLIENT_ID");
    let secret = env("CIAM_TEST_OIDC_CLIENT_SECRET");
    let (server, _mail) = start_with_env(
        Instance::default(),
        &[
            ("CIAM_OIDC_ISSUER", &issuer),
            ("CIAM_OIDC_CLIENT_ID", &id),
            ("CIAM_OIDC_CLIENT_SECRET", &secret),
            ("CIAM_OIDC_NAME", "Test OP"),
        ],
    )
    .await;
    server
}

/// A browser that keeps cookies and does not follow redirects by itself.
fn navigator() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follows redirects from `url` until the browser would load a page of `server` other than the
/// callback; returns that location (with its fragment) and every redirect seen.
async fn navigate(c: &Client, server: &Server, url: &str, stop_at_callback: bool) -> String {
    let mut next = url.to_owned();
    for _ in 0..15 {
        if stop_at_callback && next.contains("/auth/oidc/oidc/callback?") {
            return next;
        }
        if next.starts_with(&server.base) && !next.contains("/auth/oidc/") {
            return next;
        }
        let r = c.get(&next).send().await.unwrap();
        let Some(loc) = r.headers().get(LOCATION) else {
            let status = r.status();
            panic!(
                "no redirect from {next}: {status} {}",
                r.text().await.unwrap()
            );
        };
        next = url::Url::parse(&next)
            .unwrap()
            .join(loc.to_str().unwrap())
            .unwrap()
            .to_string();
    }
    panic!("too many redirects");
}

fn start_url(server: &Server, user: &str) -> String {
    format!(
        "{}/auth/oidc/oidc/start?login_hint={}",
        server.base,
        user.replace('@', "%40")
    )
}

async fn api(c: &Client, server: &Server, method: reqwest::Method, path: &str) -> Answer {
    answer(
        c.request(method, format!("{}{path}", server.base))
            .header(ORIGIN, &server.base)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_the_provider_over_http() {
    let server = start_quickstart().await;
    // The sign-in page offers the provider.
    let (status, html) = page(&Client::new(), &server, "/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"href="/auth/oidc/oidc/start""#), "{html}");
    assert!(html.contains("Sign in with Test OP"));
    let providers = get(&Client::new(), &server, "/auth/oidc/providers").await;
    assert_eq!(providers.body["providers"][0]["name"], "oidc");

    // Sign-up: the first sign-in makes the account; the browser lands on `/` signed in.
    let user = address("fed");
    let c = navigator();
    let landed = navigate(&c, &server, &start_url(&server, &user), false).await;
    assert_eq!(landed, format!("{}/", server.base));
    let me = api(&c, &server, reqwest::Method::GET, "/auth/me").await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["user"]["email"], user.as_str());
    assert_eq!(me.body["user"]["email_verified"], true);
    assert_eq!(me.body["session"]["amr"][0], "fed");

    // The account page lists the identity; the last way to sign in cannot be unlinked.
    let (_, account) = page(&c, &server, "/account").await;
    assert!(account.contains("Linked accounts") && account.contains("Test OP"));
    let ids = api(&c, &server, reqwest::Method::GET, "/auth/identities").await;
    let id = ids.body["identities"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(ids.body["identities"][0]["subject"], user.as_str());
    let refused = api(
        &c,
        &server,
        reqwest::Method::DELETE,
        &format!("/auth/identities/{id}"),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["error"], "last_sign_in_method");

    // Sign-in again in a fresh browser, through the form_post path: the provider's response
    // is POSTed cross-site (foreign Origin, no cookies) and re-issued as a same-site GET.
    let again = navigator();
    let callback = navigate(&again, &server, &start_url(&server, &user), true).await;
    let query: Vec<(String, String)> = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let posted = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/auth/oidc/oidc/callback", server.base))
        .header(ORIGIN, env("CIAM_TEST_OIDC_ISSUER"))
        .form(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(
        posted.status(),
        StatusCode::SEE_OTHER,
        "not refused by the CSRF check"
    );
    let loc = posted.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(loc.starts_with("callback?"), "{loc}");
    let get_url = url::Url::parse(&format!("{}/auth/oidc/oidc/", server.base))
        .unwrap()
        .join(&loc)
        .unwrap()
        .to_string();
    let landed = navigate(&again, &server, &get_url, false).await;
    assert_eq!(landed, format!("{}/", server.base));
    let me2 = api(&again, &server, reqwest::Method::GET, "/auth/me").await;
    assert_eq!(me2.body["user"]["id"], me.body["user"]["id"]);

    // The account page's "Link" button without a session: sent to sign in again and back to
    // the account page, not shown a JSON error.
    let anonymous = navigator();
    let r = anonymous
        .get(format!("{}/auth/oidc/oidc/start?link=1", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION].to_str().unwrap(),
        "/login?next=%2Faccount&step_up=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_browser_and_an_unvouched_address_are_not_signed_in() {
    let server = start_quickstart().await;
    // The response reaches a browser that did not start the flow: refused, no session.
    let starter = navigator();
    let callback = navigate(
        &starter,
        &server,
        &start_url(&server, &address("victim")),
        true,
    )
    .await;
    let other = navigator();
    let landed = navigate(&other, &server, &callback, false).await;
    assert_eq!(
        landed,
        format!("{}/login#error=federation_rejected", server.base)
    );
    let me = api(&other, &server, reqwest::Method::GET, "/auth/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    // The provider's error answer.
    let denied = navigate(
        &navigator(),
        &server,
        &start_url(&server, "__deny__"),
        false,
    )
    .await;
    assert_eq!(
        denied,
        format!("{}/login#error=federation_rejected", server.base)
    );
    // The provider does not vouch for the address: sign in to an account first.
    let c = navigator();
    let landed = navigate(
        &c,
        &server,
        &start_url(&server, "unverified-zed@example.com"),
        false,
    )
    .await;
    assert_eq!(landed, format!("{}/login#link=Test%20OP", server.base));
    let me = api(&c, &server, reqwest::Method::GET, "/auth/me").await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}
