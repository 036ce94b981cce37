//! API tokens through the engine: minting and verifying access tokens (expiry, issuer,
//! audience, tampering, algorithm confusion, typing), key rotation with overlap, refresh
//! rotation, the grace window for concurrent refreshes, reuse detection revoking the session,
//! and sign-out. Every scenario runs on the memory and SQLite backends, and on PostgreSQL and
//! memory+Redis when `CIAM_TEST_POSTGRES_URL` / `CIAM_TEST_REDIS_URL` are set (scripts/test.sh
//! sets both; without them those two variants say so and pass without running).
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciam::audit::AuditAction;
use ciam::store::Backend;
use ciam::tokens::{KeyError, SigningKey, TokenAlgorithm};
use ciam::{Error, Policy, SessionPolicy, TokenConfig, TokenError};
use serde_json::{Value, json};
use support::{Harness, ctx, harness_with};
use time::Duration;

/// The RFC 8037 Appendix A.1 Ed25519 key as PKCS#8 v1 DER (RFC 8410 §7 prefix + the seed
/// `d`), in base64url: a fixed key two engines can share.
fn fixed_key_text() -> String {
    let d = URL_SAFE_NO_PAD
        .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
        .unwrap();
    let mut der = hex("302e020100300506032b657004220420");
    der.extend_from_slice(&d);
    URL_SAFE_NO_PAD.encode(der)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fixed_key() -> SigningKey {
    SigningKey::from_pkcs8_text(&fixed_key_text()).unwrap()
}

fn tokens_harness<B: Backend>(store: Arc<B>, config: TokenConfig) -> Harness<B> {
    harness_with(store, Policy::default(), |b| b.tokens(config))
}

/// The three segments of a compact JWS, the first two decoded as JSON.
fn parts(jwt: &str) -> (Value, Value, String) {
    let mut it = jwt.split('.');
    let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let p = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
    let s = it.next().unwrap().to_owned();
    assert!(it.next().is_none());
    (
        serde_json::from_slice(&h).unwrap(),
        serde_json::from_slice(&p).unwrap(),
        s,
    )
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// Signs `header.payload` with the fixed Ed25519 key directly (ring), outside the engine.
fn sign_fixed(header: &Value, payload: &Value) -> String {
    let der = URL_SAFE_NO_PAD.decode(fixed_key_text()).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).unwrap();
    let input = format!("{}.{}", b64json(header), b64json(payload));
    let sig = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref());
    format!("{input}.{sig}")
}

async fn mint_and_verify<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(store, TokenConfig::new(fixed_key()));
    let s = h.register_verified("ada@example.com").await;
    let auth = h.auth(&s).await.unwrap();
    let pair = h.ciam.issue_tokens(&auth, &ctx()).await.unwrap();
    assert_eq!(pair.expires_in, 300);
    assert_eq!(pair.session_id, s.session.id);
    let jwt = pair.access_token.expose();
    let (header, claims, _) = parts(jwt);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    // RFC 8037 A.3: the thumbprint of the A.1 key.
    assert_eq!(header["kid"], "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    assert_eq!(claims["iss"], "https://acme.example");
    assert_eq!(claims["aud"], "https://acme.example");
    assert_eq!(claims["sub"], s.user.id.to_string());
    assert_eq!(claims["sid"], s.session.id.to_string());
    assert_eq!(claims["acr"], "http://idmanagement.gov/ns/assurance/aal/1");
    assert_eq!(claims["amr"], json!(["pwd"]));
    let now = h.clock_now().unix_timestamp();
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["nbf"], now);
    assert_eq!(claims["exp"], now + 300);
    assert_eq!(claims["auth_time"], auth.auth_time.unix_timestamp());
    assert_eq!(claims["jti"].as_str().unwrap().len(), 22);

    let verified = h.ciam.verify_access_token(jwt).unwrap();
    assert_eq!(verified.user_id, s.user.id);
    assert_eq!(verified.session_id, s.session.id);
    assert_eq!(verified.auth_context().aal, auth.aal);
    assert_eq!(verified.auth_context().amr, auth.amr);
    let live = h.ciam.verify_access_token_live(jwt).await.unwrap();
    assert_eq!(live, verified);
    // A second pair has another jti and another refresh token.
    let again = h.ciam.issue_tokens(&auth, &ctx()).await.unwrap();
    assert_ne!(parts(again.access_token.expose()).1["jti"], claims["jti"]);
    assert_ne!(again.refresh_token.expose(), pair.refresh_token.expose());
    // Secrets stay out of Debug.
    let shown = format!("{pair:?}");
    assert!(!shown.contains(jwt) && !shown.contains(pair.refresh_token.expose()));
    // Issuance is audited.
    h.ok_entry(Some(s.user.id), AuditAction::TokensIssued, "from_session")
        .await;
    // The JWKS publishes the one key.
    let jwks = serde_json::to_value(h.ciam.jwks().unwrap()).unwrap();
    assert_eq!(
        jwks,
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
            "kid": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", "alg": "EdDSA", "use": "sig"}]})
    );
}

async fn expiry_issuer_audience_and_tampering<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(store.clone(), TokenConfig::new(fixed_key()));
    let s = h.register_verified("bo@example.com").await;
    let pair = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    let jwt = pair.access_token.expose().to_owned();

    // Same key, other audience or issuer: refused.
    let other_aud = tokens_harness(
        store.clone(),
        TokenConfig::new(fixed_key()).audience("https://api.other.example"),
    );
    other_aud.clock.set(h.clock_now());
    assert!(matches!(
        other_aud.ciam.verify_access_token(&jwt),
        Err(TokenError::WrongAudience)
    ));
    let other_iss = harness_with(store, Policy::default(), |b| {
        b.tokens(TokenConfig::new(fixed_key()).audience("https://acme.example"))
            .public_url("https://evil.example")
    });
    other_iss.clock.set(h.clock_now());
    assert!(matches!(
        other_iss.ciam.verify_access_token(&jwt),
        Err(TokenError::WrongIssuer)
    ));

    // Tampered signature or payload.
    let (header, mut claims, sig) = parts(&jwt);
    let mut bad_sig: Vec<char> = sig.chars().collect();
    bad_sig[5] = if bad_sig[5] == 'A' { 'B' } else { 'A' };
    let bad_sig: String = bad_sig.into_iter().collect();
    let (h64, p64) = jwt.rsplit_once('.').unwrap().0.split_once('.').unwrap();
    assert!(matches!(
        h.ciam
            .verify_access_token(&format!("{h64}.{p64}.{bad_sig}")),
        Err(TokenError::BadSignature)
    ));
    claims["sub"] = json!("usr_00000000000000000000000000000000");
    assert!(matches!(
        h.ciam
            .verify_access_token(&format!("{h64}.{}.{sig}", b64json(&claims))),
        Err(TokenError::BadSignature)
    ));
    for junk in ["", "a.b", "a.b.c", "....", &"x".repeat(9000)] {
        assert!(
            matches!(h.ciam.verify_access_token(junk), Err(TokenError::Malformed)),
            "{junk:.20}"
        );
    }

    // Explicit typing: the same key signing a token typed JWT (an ID token, say) is refused.
    let (_, good_claims, _) = parts(&jwt);
    let mut id_header = header.clone();
    id_header["typ"] = json!("JWT");
    assert!(matches!(
        h.ciam
            .verify_access_token(&sign_fixed(&id_header, &good_claims)),
        Err(TokenError::WrongType)
    ));
    // ...while a correctly typed one made with the key outside the engine verifies: the check
    // above failed on the type alone.
    h.ciam
        .verify_access_token(&sign_fixed(&header, &good_claims))
        .unwrap();
    // A kid we never published.
    let mut foreign = header.clone();
    foreign["kid"] = json!("not-a-key");
    assert!(matches!(
        h.ciam
            .verify_access_token(&sign_fixed(&foreign, &good_claims)),
        Err(TokenError::UnknownKey)
    ));

    // Expiry, with the 30 s leeway.
    h.clock.advance(Duration::seconds(300 + 29));
    h.ciam.verify_access_token(&jwt).unwrap();
    h.clock.advance(Duration::seconds(2));
    assert!(matches!(
        h.ciam.verify_access_token(&jwt),
        Err(TokenError::Expired)
    ));
    // A token from the future (nbf/iat past the leeway).
    h.clock.advance(Duration::seconds(-(300 + 31) - 31));
    assert!(matches!(
        h.ciam.verify_access_token(&jwt),
        Err(TokenError::NotYetValid)
    ));
}

async fn algorithm_confusion_is_refused<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(store, TokenConfig::new(fixed_key()));
    let s = h.register_verified("cy@example.com").await;
    let pair = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    let (header, claims, _) = parts(pair.access_token.expose());
    let kid = header["kid"].as_str().unwrap();
    let input = |alg: &str| {
        format!(
            "{}.{}",
            b64json(&json!({"alg": alg, "typ": "at+jwt", "kid": kid})),
            b64json(&claims)
        )
    };
    // HS256 "signed" with the public key, in each form a confused verifier might use as the
    // HMAC secret: the raw key, its base64url text, the JWK JSON.
    let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    let jwk = serde_json::to_string(&h.ciam.jwks().unwrap().keys[0]).unwrap();
    for secret in [
        URL_SAFE_NO_PAD.decode(x).unwrap(),
        x.as_bytes().to_vec(),
        jwk.into_bytes(),
    ] {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
        let signing_input = input("HS256");
        let tag = ring::hmac::sign(&key, signing_input.as_bytes());
        let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
        assert!(matches!(
            h.ciam.verify_access_token(&forged),
            Err(TokenError::BadSignature)
        ));
    }
    // alg none, with and without a signature segment.
    let none = input("none");
    for forged in [format!("{none}."), format!("{none}.AAAA")] {
        assert!(matches!(
            h.ciam.verify_access_token(&forged),
            Err(TokenError::Malformed)
        ));
    }
    // ES256 named in the header of an EdDSA key's token.
    let (_, rest) = pair.access_token.expose().split_once('.').unwrap();
    let es = format!(
        "{}.{rest}",
        b64json(&json!({"alg": "ES256", "typ": "at+jwt", "kid": kid}))
    );
    assert!(matches!(
        h.ciam.verify_access_token(&es),
        Err(TokenError::BadSignature)
    ));
}

async fn es256_keys_work<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(
        store,
        TokenConfig::generated(TokenAlgorithm::Es256).unwrap(),
    );
    let s = h.register_verified("di@example.com").await;
    let pair = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    let (header, _, sig) = parts(pair.access_token.expose());
    assert_eq!(header["alg"], "ES256");
    // RFC 7518 §3.4: R || S, 64 bytes.
    assert_eq!(URL_SAFE_NO_PAD.decode(sig).unwrap().len(), 64);
    let jwks = serde_json::to_value(h.ciam.jwks().unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    assert!(jwks["keys"][0]["y"].is_string());
    h.ciam
        .verify_access_token(pair.access_token.expose())
        .unwrap();
}

async fn rotation_with_overlap<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(store, TokenConfig::new(fixed_key()));
    let s = h.register_verified("ed@example.com").await;
    let auth = h.auth(&s).await.unwrap();
    let old = h.ciam.issue_tokens(&auth, &ctx()).await.unwrap();
    let old_kid = parts(old.access_token.expose()).0["kid"].clone();

    let new_kid = h.ciam.rotate_signing_key().unwrap();
    assert_ne!(json!(new_kid), old_kid);
    let new = h.ciam.issue_tokens(&auth, &ctx()).await.unwrap();
    assert_eq!(parts(new.access_token.expose()).0["kid"], json!(new_kid));
    // Both published (current first) and both accepted.
    let kids: Vec<Value> = h
        .ciam
        .jwks()
        .unwrap()
        .keys
        .iter()
        .map(|k| json!(k.kid))
        .collect();
    assert_eq!(kids, vec![json!(new_kid), old_kid.clone()]);
    h.ciam
        .verify_access_token(old.access_token.expose())
        .unwrap();
    h.ciam
        .verify_access_token(new.access_token.expose())
        .unwrap();

    // Past access_ttl + leeway every token of the old key has expired: the key is gone.
    h.clock.advance(Duration::seconds(300 + 30));
    assert_eq!(h.ciam.jwks().unwrap().keys.len(), 1);
    assert!(matches!(
        h.ciam.verify_access_token(old.access_token.expose()),
        Err(TokenError::UnknownKey)
    ));

    // Immediate retirement (a compromised key), and the current key cannot be retired.
    let fresh = h.ciam.issue_tokens(&auth, &ctx()).await.unwrap();
    let third = h.ciam.rotate_signing_key().unwrap();
    h.ciam
        .verify_access_token(fresh.access_token.expose())
        .unwrap();
    h.ciam.retire_signing_key(&new_kid).unwrap();
    assert!(matches!(
        h.ciam.verify_access_token(fresh.access_token.expose()),
        Err(TokenError::UnknownKey)
    ));
    assert_eq!(
        h.ciam.retire_signing_key(&third).unwrap_err(),
        KeyError::CurrentKey
    );
    assert_eq!(
        h.ciam.retire_signing_key("nope").unwrap_err(),
        KeyError::UnknownKey
    );
}

async fn refresh_rotates<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(store, TokenConfig::new(fixed_key()));
    let s = h.register_verified("fay@example.com").await;
    let first = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    h.clock.advance(Duration::minutes(4));
    let second = h
        .ciam
        .refresh_tokens(first.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    assert_ne!(second.refresh_token.expose(), first.refresh_token.expose());
    assert_eq!(second.session_id, s.session.id);
    let v = h
        .ciam
        .verify_access_token_live(second.access_token.expose())
        .await
        .unwrap();
    assert_eq!(v.user_id, s.user.id);
    // The refresh counted as activity on the session.
    let listed = h
        .ciam
        .list_sessions(&h.auth(&s).await.unwrap())
        .await
        .unwrap();
    assert_eq!(listed[0].last_seen_at, h.clock_now());
    h.clock.advance(Duration::minutes(4));
    let third = h
        .ciam
        .refresh_tokens(second.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    h.ciam
        .verify_access_token(third.access_token.expose())
        .unwrap();
    // Garbage never reaches the store as a valid lookup, and is refused alike.
    for junk in ["", "short", &"A".repeat(43)] {
        assert!(matches!(
            h.ciam.refresh_tokens(junk, &ctx()).await,
            Err(Error::InvalidRefreshToken)
        ));
    }
}

async fn reuse_after_grace_revokes_the_session<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(store, TokenConfig::new(fixed_key()));
    let s = h.register_verified("gus@example.com").await;
    let first = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    let second = h
        .ciam
        .refresh_tokens(first.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    h.clock.advance(Duration::seconds(11));
    let replay = h
        .ciam
        .refresh_tokens(first.refresh_token.expose(), &ctx())
        .await;
    assert!(matches!(replay, Err(Error::InvalidRefreshToken)));
    assert_eq!(replay.unwrap_err().code(), "invalid_grant");
    // The whole family is gone: the session, its newer refresh token, live verification.
    assert!(matches!(h.auth(&s).await, Err(Error::Unauthenticated)));
    assert!(matches!(
        h.ciam
            .refresh_tokens(second.refresh_token.expose(), &ctx())
            .await,
        Err(Error::InvalidRefreshToken)
    ));
    assert!(matches!(
        h.ciam
            .verify_access_token_live(second.access_token.expose())
            .await,
        Err(TokenError::SessionEnded)
    ));
    // Store-free verification still accepts it until it expires: that is the trade-off.
    h.ciam
        .verify_access_token(second.access_token.expose())
        .unwrap();
    let entry = h
        .ok_entry(
            Some(s.user.id),
            AuditAction::SessionRevoked,
            "refresh_token_reused",
        )
        .await;
    assert_eq!(entry.session_id, Some(s.session.id));
    assert_eq!(entry.detail["session_was_live"], true);
}

async fn grace_window_serves_concurrent_refreshes<B: Backend>(store: Arc<B>) {
    let h = tokens_harness(store, TokenConfig::new(fixed_key()));
    let s = h.register_verified("hal@example.com").await;
    let first = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    // Two tabs refresh with the same token at the same moment: both get a pair.
    let token = first.refresh_token.expose().to_owned();
    let (ciam_a, ciam_b) = (h.ciam.clone(), h.ciam.clone());
    let (t_a, t_b) = (token.clone(), token.clone());
    let (a, b) = tokio::join!(
        tokio::spawn(async move { ciam_a.refresh_tokens(&t_a, &ctx()).await }),
        tokio::spawn(async move { ciam_b.refresh_tokens(&t_b, &ctx()).await }),
    );
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_ne!(a.refresh_token.expose(), b.refresh_token.expose());
    // The grace exchange is once: a third presentation inside the window is refused, without
    // revoking anything.
    h.clock.advance(Duration::seconds(5));
    assert!(matches!(
        h.ciam.refresh_tokens(&token, &ctx()).await,
        Err(Error::InvalidRefreshToken)
    ));
    h.auth(&s).await.unwrap();
    // Both tabs carry on with their own tokens.
    let a2 = h
        .ciam
        .refresh_tokens(a.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    let b2 = h
        .ciam
        .refresh_tokens(b.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    h.ciam
        .verify_access_token_live(a2.access_token.expose())
        .await
        .unwrap();
    h.ciam
        .verify_access_token_live(b2.access_token.expose())
        .await
        .unwrap();
    // Sequentially too: the just-rotated token is exchanged once more inside the window.
    h.clock.advance(Duration::seconds(9));
    h.ciam
        .refresh_tokens(a.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    // Past the window the first token is reuse: the session ends.
    h.clock.advance(Duration::seconds(2));
    assert!(matches!(
        h.ciam.refresh_tokens(&token, &ctx()).await,
        Err(Error::InvalidRefreshToken)
    ));
    assert!(matches!(h.auth(&s).await, Err(Error::Unauthenticated)));
}

async fn sign_out_and_session_end_stop_refresh<B: Backend>(store: Arc<B>) {
    let mut policy = Policy::default();
    policy.session = SessionPolicy::new(Duration::minutes(8), Duration::minutes(10));
    let h = harness_with(store, policy, |b| b.tokens(TokenConfig::new(fixed_key())));
    // The absolute end of the session bounds everything.
    let s = h.register_verified("ivy@example.com").await;
    let t0 = h.clock_now();
    let p = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    h.clock.advance(Duration::minutes(4));
    let p = h
        .ciam
        .refresh_tokens(p.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    assert_eq!(p.expires_in, 300);
    h.clock.advance(Duration::minutes(4));
    let p = h
        .ciam
        .refresh_tokens(p.refresh_token.expose(), &ctx())
        .await
        .unwrap();
    assert_eq!(p.access_expires_at, t0 + Duration::minutes(10));
    assert_eq!(p.expires_in, 120);
    h.clock.advance(Duration::minutes(2));
    assert!(matches!(
        h.ciam
            .refresh_tokens(p.refresh_token.expose(), &ctx())
            .await,
        Err(Error::InvalidRefreshToken)
    ));

    // Sign-out: refresh refused, live verification refused, store-free until expiry.
    let s = h.sign_in("ivy@example.com", support::PW).await;
    let p = h
        .ciam
        .issue_tokens(&h.auth(&s).await.unwrap(), &ctx())
        .await
        .unwrap();
    h.ciam.sign_out(&s.token, &ctx()).await.unwrap();
    assert!(matches!(
        h.ciam
            .refresh_tokens(p.refresh_token.expose(), &ctx())
            .await,
        Err(Error::InvalidRefreshToken)
    ));
    assert!(matches!(
        h.ciam
            .verify_access_token_live(p.access_token.expose())
            .await,
        Err(TokenError::SessionEnded)
    ));
    h.ciam.verify_access_token(p.access_token.expose()).unwrap();

    // Revoking every session (a per-user revocation) stops live verification of all tokens.
    let s1 = h.sign_in("ivy@example.com", support::PW).await;
    let s2 = h.sign_in("ivy@example.com", support::PW).await;
    let a1 = h.auth(&s1).await.unwrap();
    let p1 = h.ciam.issue_tokens(&a1, &ctx()).await.unwrap();
    let p2 = h
        .ciam
        .issue_tokens(&h.auth(&s2).await.unwrap(), &ctx())
        .await
        .unwrap();
    h.ciam.revoke_all_sessions(&a1, &ctx()).await.unwrap();
    for p in [&p1, &p2] {
        assert!(matches!(
            h.ciam
                .verify_access_token_live(p.access_token.expose())
                .await,
            Err(TokenError::SessionEnded)
        ));
    }
    // Issuing from an ended session is refused.
    assert!(matches!(
        h.ciam.issue_tokens(&a1, &ctx()).await,
        Err(Error::Unauthenticated)
    ));
}

/// Runs each scenario on memory and SQLite, and on PostgreSQL and memory+Redis when their
/// URLs are set.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        support::on_both_backends!($($name),*);
        #[cfg(feature = "postgres")]
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::servers::Postgres::start().await else { return };
                    super::$name(db.backend.clone()).await;
                    db.stop().await;
                }
            )*
        }
        #[cfg(feature = "redis")]
        mod on_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(r) = super::servers::Redis::start().await else { return };
                    super::$name(r.backend.clone()).await;
                    r.stop().await;
                }
            )*
        }
    };
}

on_every_backend!(
    mint_and_verify,
    expiry_issuer_audience_and_tampering,
    algorithm_confusion_is_refused,
    es256_keys_work,
    rotation_with_overlap,
    refresh_rotates,
    reuse_after_grace_revokes_the_session,
    grace_window_serves_concurrent_refreshes,
    sign_out_and_session_end_stop_refresh,
);

#[tokio::test]
async fn not_configured_and_bad_settings() {
    let h = support::harness(support::memory().await, Policy::default());
    assert!(matches!(
        h.ciam.verify_access_token("a.b.c"),
        Err(TokenError::NotConfigured)
    ));
    assert!(h.ciam.jwks().is_none());
    assert_eq!(
        h.ciam.rotate_signing_key().unwrap_err(),
        KeyError::NotConfigured
    );
    assert!(matches!(
        h.ciam.refresh_tokens(&"A".repeat(43), &ctx()).await,
        Err(Error::Internal(_))
    ));
    for config in [
        TokenConfig::new(fixed_key()).access_ttl(Duration::hours(2)),
        TokenConfig::new(fixed_key()).leeway(Duration::seconds(61)),
        TokenConfig::new(fixed_key()).refresh_grace(Duration::seconds(-1)),
        TokenConfig::new(fixed_key()).audience(" "),
    ] {
        let built = ciam::Ciam::builder()
            .backend(support::memory().await)
            .tokens(config)
            .build();
        assert!(matches!(built, Err(ciam::BuildError::InvalidPolicy(_))));
    }
}

/// The PostgreSQL and Redis servers of the suite, when configured.
mod servers {
    use std::sync::Arc;

    use ciam::storage::compose::ComposedBackend;
    use ciam::storage::memory::MemoryBackend;

    fn url(var: &str) -> Option<String> {
        match std::env::var(var) {
            Ok(url) if !url.is_empty() => Some(url),
            _ => {
                eprintln!("{var} is not set: this backend's variant of the test did not run");
                None
            }
        }
    }

    fn unique(prefix: &str) -> String {
        let mut bytes = [0u8; 6];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        format!("{prefix}{}_{hex}", std::process::id())
    }

    #[cfg(feature = "postgres")]
    pub(crate) struct Postgres {
        pub(crate) backend: Arc<ciam::storage::postgres::PostgresBackend>,
        schema: String,
    }

    #[cfg(feature = "postgres")]
    impl Postgres {
        /// A backend in a fresh schema of its own.
        pub(crate) async fn start() -> Option<Self> {
            use ciam::storage::postgres::{PostgresBackend, PostgresOptions};
            let url = url("CIAM_TEST_POSTGRES_URL")?;
            let schema = unique("ciam_tokens_");
            let options = PostgresOptions::new(url)
                .schema(schema.clone())
                .max_connections(4);
            let backend = PostgresBackend::connect_with(options).await.unwrap();
            Some(Self {
                backend: Arc::new(backend),
                schema,
            })
        }

        pub(crate) async fn stop(self) {
            let drop = format!("DROP SCHEMA \"{}\" CASCADE", self.schema);
            sqlx::query(&drop)
                .execute(self.backend.pool())
                .await
                .unwrap();
            self.backend.close().await;
        }
    }

    #[cfg(feature = "redis")]
    pub(crate) struct Redis {
        pub(crate) backend: Arc<ComposedBackend>,
        url: String,
        prefix: String,
    }

    #[cfg(feature = "redis")]
    impl Redis {
        /// Memory for accounts and audit; Redis (under a fresh key prefix) for sessions,
        /// challenges and counters.
        pub(crate) async fn start() -> Option<Self> {
            use ciam::storage::redis::{RedisOptions, RedisStore};
            let url = url("CIAM_TEST_REDIS_URL")?;
            let prefix = format!("{}:", unique("ciam-test-tokens:"));
            let mut options = RedisOptions::new(url.clone());
            options.key_prefix = prefix.clone();
            let redis = Arc::new(RedisStore::connect_with(options).await.unwrap());
            let backend = ComposedBackend::from_backend(Arc::new(MemoryBackend::new()))
                .with_sessions(redis.clone())
                .with_challenges(redis.clone())
                .with_counters(redis);
            Some(Self {
                backend: Arc::new(backend),
                url,
                prefix,
            })
        }

        /// Deletes every key under the prefix.
        pub(crate) async fn stop(self) {
            let client = redis::Client::open(self.url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}*", self.prefix))
                .query_async(&mut conn)
                .await
                .unwrap();
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}
