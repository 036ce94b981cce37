//! API tokens over HTTP against the quickstart binary: `POST /auth/token` for the signed-in
//! session, a bearer-protected API, `POST /auth/token/refresh` (rotation, the grace window
//! for concurrent refreshes, reuse detection revoking the session), sign-out, and the JWKS.
//!
//! The access tokens are verified here by an implementation independent of jsonwebtoken: the
//! JWKS JSON is parsed by hand and the EdDSA signature checked with `ring` over the JWS
//! signing input (RFC 7515 §5.2, RFC 8037 §3.1). That verifier and the RFC 7638 thumbprint
//! code are first checked against the RFC 8037 Appendix A vectors read from
//! `$CIAM_VECTORS_DIR/jwt/rfc-jws-examples.json` (default `../shared/vectors` beside the
//! workspace, as `scripts/test.sh` sets it).

// A test harness: its helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::header::{AUTHORIZATION, CACHE_CONTROL, COOKIE, ORIGIN, WWW_AUTHENTICATE};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::*;

/// The RFC 8037 Appendix A.1 Ed25519 private key `d` as PKCS#8 v1 DER (RFC 8410 §7: the fixed
/// Ed25519 prefix, then the 32-byte seed), base64url: the quickstart's `CIAM_TOKEN_KEY`.
fn rfc8037_pkcs8() -> String {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend(
        URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap(),
    );
    URL_SAFE_NO_PAD.encode(der)
}

/// The shared JWS vectors (`CIAM_VECTORS_DIR` names the root, as scripts/test.sh sets it).
fn jws_vectors() -> Value {
    let root = std::env::var_os("CIAM_VECTORS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors")
        });
    let path = root.join("jwt/rfc-jws-examples.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// RFC 7638 §3: SHA-256 of the required members of an OKP JWK in lexicographic order, no
/// whitespace, base64url. Written here without the library's code.
fn okp_thumbprint(jwk: &Value) -> String {
    assert_eq!(jwk["kty"], "OKP");
    let canonical = format!(
        r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
        jwk["crv"].as_str().unwrap(),
        jwk["x"].as_str().unwrap()
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// Verifies a compact JWS with an Ed25519 JWK, independently of jsonwebtoken: the protected
/// header must say `alg: EdDSA` (RFC 8037 §3.1) and the signature is checked with `ring` over
/// the ASCII signing input `BASE64URL(header) '.' BASE64URL(payload)` exactly as received
/// (RFC 7515 §5.2). Returns the header and the raw payload.
fn verify_eddsa(compact: &str, jwk: &Value) -> Result<(Value, Vec<u8>), &'static str> {
    let mut segments = compact.split('.');
    let (Some(h64), Some(p64), Some(s64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err("not three segments");
    };
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h64).map_err(|_| "header base64")?)
            .map_err(|_| "header JSON")?;
    if header["alg"] != "EdDSA" || jwk["kty"] != "OKP" || jwk["crv"] != "Ed25519" {
        return Err("not EdDSA with an Ed25519 key");
    }
    let x = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().ok_or("no x")?)
        .map_err(|_| "x base64")?;
    let sig = URL_SAFE_NO_PAD
        .decode(s64)
        .map_err(|_| "signature base64")?;
    let signing_input = format!("{h64}.{p64}");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &x)
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| "bad signature")?;
    let payload = URL_SAFE_NO_PAD.decode(p64).map_err(|_| "payload base64")?;
    Ok((header, payload))
}

#[test]
fn independent_verifier_known_answers() {
    // RFC 8037 A.4 (Ed25519 JWS over "Example of Ed25519 signing" with the A.1 key) and the
    // A.3 thumbprint of that key; the tampered copies flip one bit of the signature or payload.
    let vectors = jws_vectors();
    let example = vectors["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "rfc-8037-a4")
        .unwrap();
    let jwk = &example["verification_key_jwk"];
    let (header, payload) = verify_eddsa(example["compact"].as_str().unwrap(), jwk).unwrap();
    assert_eq!(header, json!({"alg": "EdDSA"}));
    assert_eq!(payload, b"Example of Ed25519 signing");
    let thumbprint = okp_thumbprint(jwk);
    assert_eq!(thumbprint, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert!(example["note"].as_str().unwrap().contains(&thumbprint));
    let tampered: Vec<&Value> = vectors["tampered"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["alg"] == "EdDSA")
        .collect();
    assert_eq!(tampered.len(), 2);
    for t in tampered {
        assert_eq!(
            verify_eddsa(t["compact"].as_str().unwrap(), &t["verification_key_jwk"]),
            Err("bad signature"),
            "{}",
            t["id"]
        );
    }
}

/// A client without a cookie jar and without `Origin`: a mobile app or another service.
fn api_client() -> Client {
    Client::new()
}

async fn refresh(s: &Server, token: &str) -> Answer {
    answer(
        api_client()
            .post(format!("{}/auth/token/refresh", s.base))
            .json(&json!({ "refresh_token": token }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn bearer(s: &Server, method: reqwest::Method, path: &str, token: &str) -> Answer {
    answer(
        api_client()
            .request(method, format!("{}{path}", s.base))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Checks a token answer and verifies its access token against the published JWKS with the
/// independent verifier; returns the claims.
fn check_pair(r: &Answer, jwks: &Value, base: &str) -> Value {
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.headers[CACHE_CONTROL], "no-store");
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 300);
    assert_eq!(r.body["refresh_token"].as_str().unwrap().len(), 43);
    let access = r.body["access_token"].as_str().unwrap();
    let kid = {
        let h = access.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(header["typ"], "at+jwt");
        header["kid"].as_str().unwrap().to_owned()
    };
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
    let (_, payload) = verify_eddsa(access, jwk).unwrap();
    let claims: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(claims["iss"], base);
    assert_eq!(claims["aud"], base);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    claims
}

#[tokio::test]
async fn tokens_over_http() {
    let key = rfc8037_pkcs8();
    let (s, mut mail) = start_with_env(
        Instance::default(),
        &[
            ("CIAM_TOKEN_KEY", &key),
            ("CIAM_TOKEN_REFRESH_GRACE", "2"),
            // Everything ciam logs, so the check at the end that no secret was logged means
            // something.
            (
                "RUST_LOG",
                "warn,ciam_core=debug,ciam_axum=debug,quickstart=debug",
            ),
        ],
    )
    .await;

    // The JWKS: public, cacheable, the configured key under its RFC 7638 thumbprint.
    let r = get(&api_client(), &s, "/.well-known/jwks.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[CACHE_CONTROL], "public, max-age=300");
    let jwks = r.body.clone();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["alg"], "EdDSA");
    assert_eq!(keys[0]["use"], "sig");
    assert_eq!(keys[0]["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    assert_eq!(keys[0]["kid"], okp_thumbprint(&keys[0]));
    assert!(keys[0].get("d").is_none());

    // Sign up, verify, sign in, then ask for tokens with the session cookie.
    let email = address("tok");
    let c = browser(&s, "tokens");
    register_and_verify(&c, &s, &mut mail, &email, PASSWORD).await;
    let signed_in = login(&c, &s, &email, PASSWORD).await;
    let cookie = signed_in.cookie_pair();
    let user_id = signed_in.body["user"]["id"].as_str().unwrap().to_owned();
    let session_id = signed_in.body["session"]["id"].as_str().unwrap().to_owned();
    let first = post(&c, &s, "/auth/token", json!({})).await;
    let claims = check_pair(&first, &jwks, &s.base);
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["sid"], session_id.as_str());
    assert_eq!(claims["amr"], json!(["pwd"]));
    // Without the cookie there is no session to mint from.
    let r = answer(
        Client::new()
            .post(format!("{}/auth/token", s.base))
            .header(ORIGIN, &s.base)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // The bearer-protected API.
    let access = first.body["access_token"].as_str().unwrap().to_owned();
    let r = bearer(&s, reqwest::Method::GET, "/api/me", &access).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["user_id"], user_id.as_str());
    assert_eq!(r.body["session_id"], session_id.as_str());
    // A state-changing API call with a bearer token and no cookie needs no Origin...
    let r = bearer(&s, reqwest::Method::POST, "/api/ping", &access).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["pong"], user_id.as_str());
    // ...but with a cookie the CSRF check applies as to any cookie request.
    let r = answer(
        api_client()
            .post(format!("{}/api/ping", s.base))
            .header(AUTHORIZATION, format!("Bearer {access}"))
            .header(COOKIE, &cookie)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "csrf");
    // No token, a tampered token, another scheme.
    let r = get(&api_client(), &s, "/api/me").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers[WWW_AUTHENTICATE], "Bearer");
    let mut tampered = access.clone().into_bytes();
    let i = tampered.len() - 5;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = bearer(&s, reqwest::Method::GET, "/api/me", &tampered).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers[WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
    assert_eq!(r.body["error"], "invalid_token");
    assert_eq!(r.headers[CACHE_CONTROL], "no-store");
    let r = answer(
        api_client()
            .get(format!("{}/api/me", s.base))
            .header(AUTHORIZATION, format!("Basic {access}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Refresh without a cookie or Origin: a new pair, the old refresh token spent.
    let first_refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    let second = refresh(&s, &first_refresh).await;
    let claims2 = check_pair(&second, &jwks, &s.base);
    assert_eq!(claims2["sid"], session_id.as_str());
    assert_ne!(claims2["jti"], claims["jti"]);
    assert_ne!(second.body["refresh_token"], first.body["refresh_token"]);
    let r = bearer(
        &s,
        reqwest::Method::POST,
        "/api/ping",
        second.body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);

    // Two tabs refresh with the same token at once: both get a pair (the grace window).
    let second_refresh = second.body["refresh_token"].as_str().unwrap().to_owned();
    let (a, b) = tokio::join!(refresh(&s, &second_refresh), refresh(&s, &second_refresh));
    check_pair(&a, &jwks, &s.base);
    check_pair(&b, &jwks, &s.base);
    assert_ne!(a.body["refresh_token"], b.body["refresh_token"]);
    // Garbage is refused as invalid_grant.
    let r = refresh(&s, "not-a-token").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");

    // Reuse: the first refresh token, spent long ago (past the 2 s grace window), comes back.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = refresh(&s, &first_refresh).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
    // The session is revoked: the cookie, the newer refresh tokens, live verification.
    assert_eq!(
        get(&c, &s, "/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    for pair in [&a, &b] {
        let r = refresh(&s, pair.body["refresh_token"].as_str().unwrap()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let live = bearer(
            &s,
            reqwest::Method::POST,
            "/api/ping",
            pair.body["access_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(live.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            live.headers[WWW_AUTHENTICATE],
            r#"Bearer error="invalid_token""#
        );
        // Store-free verification keeps accepting it until it expires (minutes).
        let r = bearer(
            &s,
            reqwest::Method::GET,
            "/api/me",
            pair.body["access_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    // Sign-out revokes: the refresh token and live verification stop working.
    login(&c, &s, &email, PASSWORD).await;
    let pair = post(&c, &s, "/auth/token", json!({})).await;
    check_pair(&pair, &jwks, &s.base);
    let r = post(&c, &s, "/auth/logout", json!({})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = refresh(&s, pair.body["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"], "invalid_grant");
    let r = bearer(
        &s,
        reqwest::Method::POST,
        "/api/ping",
        pair.body["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // No token or key ever reaches the log, though refusals were logged.
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(log.contains("bearer token refused"), "{log}");
    assert!(log.contains("session revoked"), "{log}");
    for secret in [
        access.as_str(),
        first_refresh.as_str(),
        second_refresh.as_str(),
        key.as_str(),
    ] {
        assert!(!log.contains(secret), "a secret is in the server log");
    }
}

#[tokio::test]
async fn a_key_is_generated_when_none_is_configured() {
    let (s, _mail) = start_with_env(Instance::default(), &[]).await;
    let r = get(&api_client(), &s, "/.well-known/jwks.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let keys = r.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], okp_thumbprint(&keys[0]));
    assert_ne!(keys[0]["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(log.contains("CIAM_TOKEN_KEY is not set"), "{log}");
}
