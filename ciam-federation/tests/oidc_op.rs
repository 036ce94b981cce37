//! The relying party against a real OpenID Provider (npm oidc-provider on loopback): the code
//! flow with PKCE, and every refusal the protocol asks for. Forged ID tokens are built here and
//! validated with the real provider's discovery document and JWKS.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use ciam_federation::id_token::{self, Expectations};
use ciam_federation::{
    AuthorizationRequest, AuthorizationResponse, ClientAuth, FederationError, IdTokenError,
    PendingAuthorization, ProviderConfig, RelyingParty, ResponseMode,
};
use support::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Starts an authorization for `user` and drives the provider to the callback.
async fn flow(rp: &RelyingParty, user: &str) -> (AuthorizationRequest, Vec<(String, String)>) {
    let req = rp.authorization_request(Some(user), None).unwrap();
    let pairs = drive(&req.url, REDIRECT).await;
    (req, pairs)
}

/// What a client of this provider expects, now, with the default leeway and token age.
fn expectations<'a>(
    issuer: &'a str,
    client_id: &'a str,
    algorithms: &'a [String],
    nonce: &'a str,
) -> Expectations<'a> {
    Expectations {
        issuer,
        multi_tenant: None,
        client_id,
        algorithms,
        nonce,
        access_token: None,
        code: None,
        max_age: None,
        leeway: Duration::from_secs(60),
        max_token_age: Duration::from_secs(600),
        now: now(),
    }
}

/// Validates `token` and returns why it was refused (an ID-token refusal, nothing else).
async fn refused(rp: &RelyingParty, token: &str, nonce: &str, now: i64) -> IdTokenError {
    match rp.validate_id_token(token, nonce, None, None, now).await {
        Err(FederationError::IdToken(e)) => e,
        other => panic!("expected an ID-token refusal, got {other:?}"),
    }
}

/// Runs the flow for `user` and exchanges the code; returns the pending authorization, the
/// code and the raw ID token.
async fn obtain(rp: &RelyingParty, user: &str) -> (PendingAuthorization, String, String) {
    let (req, pairs) = flow(rp, user).await;
    let code = rp.check_response(&req.pending, &response(&pairs)).unwrap();
    let tokens = rp.exchange_code(&req.pending, &code, now()).await.unwrap();
    let idt = tokens.id_token.as_deref().unwrap().to_owned();
    (req.pending, code.to_string(), idt)
}

fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

fn forge(header: serde_json::Value, claims: &serde_json::Value, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string()),
        B64.encode(sig)
    )
}

#[tokio::test]
async fn code_flow_signs_in_with_pkce_nonce_and_iss() {
    let mut c = config(&issuer());
    c.keep_tokens = true;
    c.scopes.push("offline_access".into());
    let rp = discover_rp(c).await;
    assert!(rp.metadata().authorization_response_iss_parameter_supported);
    let req = rp
        .authorization_request(Some("alice@example.test"), Some("consent"))
        .unwrap();
    let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["state"].len(), 43);
    assert_eq!(q["nonce"].len(), 43);
    let pairs = drive(&req.url, REDIRECT).await;
    assert!(
        pairs.iter().any(|(k, v)| k == "iss" && *v == issuer()),
        "RFC 9207 iss is sent: {pairs:?}"
    );
    let login = rp
        .complete(&req.pending, &response(&pairs), now())
        .await
        .unwrap();
    assert_eq!(login.provider, "op");
    assert_eq!(login.profile.issuer, issuer());
    assert_eq!(login.profile.subject, "alice@example.test");
    assert_eq!(login.profile.email.as_deref(), Some("alice@example.test"));
    assert!(login.profile.email_verified);
    assert_eq!(login.profile.name.as_deref(), Some("alice"));
    let tokens = login.tokens.unwrap();
    assert!(!tokens.access_token.is_empty());
    assert!(
        tokens.refresh_token.is_some(),
        "offline_access with prompt=consent gives a refresh token"
    );
    // The code is single-use at the provider: the same response again is refused.
    let again = rp
        .complete(&req.pending, &response(&pairs), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&again, FederationError::TokenExchange(e) if e == "invalid_grant"),
        "{again:?}"
    );
}

#[tokio::test]
async fn client_secret_post_public_client_and_form_post() {
    let mut c = config(&issuer());
    c.client_id = env("CIAM_TEST_OIDC_POST_CLIENT_ID");
    c.client_auth = ClientAuth::SecretPost(env("CIAM_TEST_OIDC_POST_CLIENT_SECRET").into());
    c.response_mode = ResponseMode::FormPost;
    let rp = discover_rp(c).await;
    let (req, pairs) = flow(&rp, "bob@example.test").await;
    assert!(
        req.url
            .query_pairs()
            .any(|(k, v)| k == "response_mode" && v == "form_post")
    );
    let login = rp
        .complete(&req.pending, &response(&pairs), now())
        .await
        .unwrap();
    assert_eq!(login.profile.subject, "bob@example.test");
    assert!(
        login.tokens.is_none(),
        "tokens are dropped unless keep_tokens"
    );

    let mut c = config(&issuer());
    c.client_id = env("CIAM_TEST_OIDC_PUBLIC_CLIENT_ID");
    c.client_auth = ClientAuth::None;
    let rp = discover_rp(c).await;
    let (req, pairs) = flow(&rp, "carol@example.test").await;

    let login = rp
        .complete(&req.pending, &response(&pairs), now())
        .await
        .unwrap();
    assert_eq!(login.profile.subject, "carol@example.test");
}

#[tokio::test]
async fn unverified_email_at_the_provider_is_reported_unverified() {
    let rp = discover_rp(config(&issuer())).await;
    let (req, pairs) = flow(&rp, "unverified-dan@example.test").await;

    let login = rp
        .complete(&req.pending, &response(&pairs), now())
        .await
        .unwrap();
    assert_eq!(
        login.profile.email.as_deref(),
        Some("unverified-dan@example.test")
    );
    assert!(!login.profile.email_verified);
}

#[tokio::test]
async fn provider_error_response_is_typed() {
    let rp = discover_rp(config(&issuer())).await;
    let (req, pairs) = flow(&rp, "__deny__").await;

    let err = rp
        .complete(&req.pending, &response(&pairs), now())
        .await
        .unwrap_err();
    match err {
        FederationError::Provider { error, .. } => assert_eq!(error, "access_denied"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_state_and_another_providers_state_are_refused() {
    let rp = discover_rp(config(&issuer())).await;
    let (req, pairs) = flow(&rp, "erin@example.test").await;

    // The response answered another authorization of the same browser.
    let other = rp.authorization_request(None, None).unwrap();
    let err = rp
        .complete(&other.pending, &response(&pairs), now())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::StateMismatch), "{err:?}");
    // No state at all.
    let no_state: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k != "state")
        .cloned()
        .collect();
    let err = rp
        .complete(&req.pending, &response(&no_state), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::MissingParameter("state")),
        "{err:?}"
    );
    // A pending authorization started for another provider (mix-up through the state store).
    let mut foreign = req.pending.clone();
    foreign.provider = "other".into();
    let err = rp
        .complete(&foreign, &response(&pairs), now())
        .await
        .unwrap_err();
    assert!(matches!(err, FederationError::StateMismatch), "{err:?}");
    // The untouched response still works (nothing above consumed the code).
    assert!(
        rp.complete(&req.pending, &response(&pairs), now())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn mix_up_issuer_in_the_response_is_refused() {
    let rp = discover_rp(config(&issuer())).await;
    let (req, pairs) = flow(&rp, "frank@example.test").await;

    // RFC 9207: a response carrying another issuer (an attacker's provider) is refused...
    let swapped: Vec<_> = pairs
        .iter()
        .map(|(k, v)| {
            if k == "iss" {
                (k.clone(), "https://attacker.example".to_owned())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    let err = rp
        .complete(&req.pending, &response(&swapped), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::ResponseIssuerMismatch),
        "{err:?}"
    );
    // ...and so is one without iss, since this provider advertises it.
    let stripped: Vec<_> = pairs.iter().filter(|(k, _)| k != "iss").cloned().collect();
    let err = rp
        .complete(&req.pending, &response(&stripped), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::ResponseIssuerMismatch),
        "{err:?}"
    );
    // Repeated parameters never reach the checks.
    let mut doubled = pairs.clone();
    doubled.push(("iss".into(), issuer()));
    assert!(
        AuthorizationResponse::from_pairs(doubled.iter().map(|(k, v)| (k.as_str(), v.clone())))
            .is_err()
    );
}

#[tokio::test]
async fn discovery_issuer_must_match_exactly() {
    let real = issuer();
    // The same server under another name: the document's issuer is not the configured one.
    let mut c = config(&real.replace("127.0.0.1", "localhost"));
    c.discovery_url = Some(format!("{real}/.well-known/openid-configuration"));
    let err = RelyingParty::discover(c, ciam_federation::default_http_client().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::DiscoveryIssuerMismatch { .. }),
        "{err:?}"
    );
    let err = RelyingParty::discover(
        config(&format!("{real}/")),
        ciam_federation::default_http_client().unwrap(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::DiscoveryIssuerMismatch { .. } | FederationError::Http(_)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn nonce_mismatch_is_refused() {
    let rp = discover_rp(config(&issuer())).await;
    let (req, pairs) = flow(&rp, "gina@example.test").await;

    let mut pending = req.pending.clone();
    pending.nonce = "a-different-nonce-than-the-one-sent".into();
    let err = rp
        .complete(&pending, &response(&pairs), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FederationError::IdToken(IdTokenError::NonceMismatch)),
        "{err:?}"
    );
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let default_rp = discover_rp(config(&issuer())).await;
    let (pending, _code, idt) = obtain(&default_rp, "hank@example.test").await;
    let c = claims_of(&idt);
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    // The provider's tokens live an hour; by default one issued more than 10 minutes (+ leeway)
    // ago is refused even before it expires.
    assert_eq!(
        refused(&default_rp, &idt, &pending.nonce, iat + 661).await,
        IdTokenError::NotYetValid
    );
    let mut patient = config(&issuer());
    patient.max_token_age = Duration::from_secs(7200);
    let rp = discover_rp(patient).await;
    assert!(
        rp.validate_id_token(&idt, &pending.nonce, None, None, now())
            .await
            .is_ok()
    );
    // Within the 60 s leeway either side: still fine.
    assert!(
        rp.validate_id_token(&idt, &pending.nonce, None, None, exp + 59)
            .await
            .is_ok()
    );
    assert_eq!(
        refused(&rp, &idt, &pending.nonce, exp + 61).await,
        IdTokenError::Expired
    );
    // A clock behind the token's iat by more than the leeway: issued in the future.
    assert_eq!(
        refused(&rp, &idt, &pending.nonce, iat - 120).await,
        IdTokenError::NotYetValid
    );
}

#[tokio::test]
async fn wrong_audience_and_wrong_issuer_are_refused() {
    let issued_to_test = discover_rp(config(&issuer())).await;
    let (pending, _code, idt) = obtain(&issued_to_test, "ivy@example.test").await;
    let mut c = config(&issuer());
    c.client_id = env("CIAM_TEST_OIDC_POST_CLIENT_ID");
    let other_client = discover_rp(c).await;
    assert_eq!(
        refused(&other_client, &idt, &pending.nonce, now()).await,
        IdTokenError::WrongAudience
    );

    // The real signature, but expected from another issuer.
    let jwks = issued_to_test.jwks().unwrap();
    let keys = jwks
        .keys_for(&ciam_federation::default_http_client().unwrap(), None)
        .await
        .unwrap();
    let algs = issued_to_test.algorithms().to_vec();
    let client_id = env("CIAM_TEST_OIDC_CLIENT_ID");
    let exp = expectations(
        "https://accounts.example",
        &client_id,
        &algs,
        &pending.nonce,
    );
    assert_eq!(
        id_token::validate(&idt, &keys, &exp).unwrap_err(),
        IdTokenError::WrongIssuer
    );
    let good = Expectations {
        issuer: &issuer(),
        ..exp.clone()
    };
    assert!(id_token::validate(&idt, &keys, &good).is_ok());
    // A payload changed after signing.
    let mut parts: Vec<String> = idt.split('.').map(str::to_owned).collect();
    let mut claims = claims_of(&idt);
    claims["email"] = "mallory@example.test".into();
    parts[1] = B64.encode(claims.to_string());
    assert_eq!(
        id_token::validate(&parts.join("."), &keys, &good).unwrap_err(),
        IdTokenError::BadSignature
    );
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let rp = discover_rp(config(&issuer())).await;
    let (pending, _code, idt) = obtain(&rp, "jack@example.test").await;
    let claims = claims_of(&idt);
    let kid = jsonwebtoken::decode_header(&idt).unwrap().kid.unwrap();

    let none = forge(serde_json::json!({"alg": "none", "kid": kid}), &claims, b"");
    let err = rp
        .validate_id_token(&none, &pending.nonce, None, None, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FederationError::IdToken(IdTokenError::AlgorithmNotAllowed(a)) if a == "none"),
        "{err:?}"
    );

    // HS256 keyed with the provider's public RSA key (as published in its JWKS): the classic
    // key-confusion forgery.
    let jwks: serde_json::Value = reqwest::get(rp.metadata().jwks_uri.clone().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rsa = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kty"] == "RSA")
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = rsa["kid"].as_str().map(str::to_owned);
    let public = rsa.to_string();
    let hs = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public.as_bytes()),
    )
    .unwrap();
    let err = rp
        .validate_id_token(&hs, &pending.nonce, None, None, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FederationError::IdToken(IdTokenError::AlgorithmNotAllowed(a)) if a == "HS256"),
        "{err:?}"
    );
    // Even a caller that puts HS256 on its own list gets no MAC verification.
    let keys = rp
        .jwks()
        .unwrap()
        .keys_for(
            &ciam_federation::default_http_client().unwrap(),
            header.kid.as_deref(),
        )
        .await
        .unwrap();
    let algs = vec!["HS256".to_owned()];
    let iss = issuer();
    let client_id = env("CIAM_TEST_OIDC_CLIENT_ID");
    let exp = expectations(&iss, &client_id, &algs, &pending.nonce);
    assert!(matches!(
        id_token::validate(&hs, &keys, &exp),
        Err(IdTokenError::AlgorithmNotAllowed(_))
    ));
}

/// An ES256 key the test owns, as a JWK and an encoding key.
fn own_es256_key() -> jsonwebtoken::EncodingKey {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref())
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let mut c = config(&issuer());
    c.jwks_min_refresh = Duration::from_secs(3600);
    let rp = discover_rp(c).await;
    let (pending, _code, idt) = obtain(&rp, "kate@example.test").await;
    let claims = claims_of(&idt);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("not-a-key-of-this-provider".into());
    let forged = jsonwebtoken::encode(&header, &claims, &own_es256_key()).unwrap();
    assert_eq!(
        rp.jwks().unwrap().fetches().await,
        0,
        "no JWKS before the first token"
    );
    for _ in 0..5 {
        assert_eq!(
            refused(&rp, &forged, &pending.nonce, now()).await,
            IdTokenError::UnknownKey
        );
    }
    assert_eq!(
        rp.jwks().unwrap().fetches().await,
        1,
        "the first fetch, and no refetch within the interval"
    );

    // With a short interval, an unknown kid refetches (once per interval), still refused.
    let mut c = config(&issuer());
    c.jwks_min_refresh = Duration::from_millis(50);
    let rp = discover_rp(c).await;
    assert!(
        rp.validate_id_token(&idt, &pending.nonce, None, None, now())
            .await
            .is_ok()
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        refused(&rp, &forged, &pending.nonce, now()).await,
        IdTokenError::UnknownKey
    );
    assert_eq!(rp.jwks().unwrap().fetches().await, 2);
    // A token signed by a key that claims the provider's own kid does not verify.
    header.kid = jsonwebtoken::decode_header(&idt).unwrap().kid;
    let same_kid = jsonwebtoken::encode(&header, &claims, &own_es256_key()).unwrap();
    let err = rp
        .validate_id_token(&same_kid, &pending.nonce, None, None, now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            FederationError::IdToken(IdTokenError::BadSignature | IdTokenError::KeyMismatch)
        ),
        "{err:?}"
    );
}

/// A private OP instance (the same op.mjs) that this test restarts on the same port: its
/// signing keys are new at each start, so a restart is a key rotation.
struct OwnOp {
    child: tokio::process::Child,
    issuer: String,
}

async fn start_own_op(port: u16, dir: &std::path::Path) -> OwnOp {
    let ready = dir.join(format!("ready-{port}-{}", now()));
    let child = tokio::process::Command::new("node")
        .arg(env("CIAM_TEST_OIDC_OP_SCRIPT"))
        .env("OP_PORT", port.to_string())
        .env("OP_READY_FILE", &ready)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..300 {
        if let Ok(s) = std::fs::read_to_string(&ready)
            && let Some(issuer) = s.trim().strip_prefix("ISSUER=")
        {
            return OwnOp {
                child,
                issuer: issuer.to_owned(),
            };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the private OP did not start");
}

#[tokio::test]
async fn key_rotation_is_followed_after_an_unknown_kid() {
    let dir = tempfile::tempdir().unwrap();
    let mut op = start_own_op(0, dir.path()).await;
    let port: u16 = op.issuer.rsplit(':').next().unwrap().parse().unwrap();
    let mut c = config(&op.issuer);
    c.jwks_min_refresh = Duration::from_millis(200);
    let rp = discover_rp(c).await;
    let (p1, _, t1) = obtain(&rp, "liam@example.test").await;
    let kid1 = jsonwebtoken::decode_header(&t1).unwrap().kid.unwrap();
    assert!(
        rp.validate_id_token(&t1, &p1.nonce, None, None, now())
            .await
            .is_ok()
    );
    assert_eq!(rp.jwks().unwrap().fetches().await, 1);

    op.child.kill().await.unwrap();
    let op2 = start_own_op(port, dir.path()).await;
    assert_eq!(op2.issuer, op.issuer);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (p2, _, t2) = obtain(&rp, "liam@example.test").await;
    let kid2 = jsonwebtoken::decode_header(&t2).unwrap().kid.unwrap();
    assert_ne!(kid1, kid2, "the restarted provider signs with a new key");
    rp.validate_id_token(&t2, &p2.nonce, None, None, now())
        .await
        .unwrap();
    assert_eq!(
        rp.jwks().unwrap().fetches().await,
        2,
        "one refetch on the unknown kid"
    );
    // The old key is gone from the provider's JWKS, so tokens it signed no longer verify.
    assert_eq!(
        refused(&rp, &t1, &p1.nonce, now()).await,
        IdTokenError::UnknownKey
    );
    drop(op2);
}

#[tokio::test]
async fn max_age_requires_a_recent_auth_time() {
    let mut c = config(&issuer());
    c.max_age = Some(Duration::from_secs(300));
    let rp = discover_rp(c).await;
    let (req, pairs) = flow(&rp, "mia@example.test").await;
    assert!(
        req.url
            .query_pairs()
            .any(|(k, v)| k == "max_age" && v == "300")
    );
    let login = rp
        .complete(&req.pending, &response(&pairs), now())
        .await
        .unwrap();
    let auth_time = login
        .profile
        .auth_time
        .expect("auth_time is sent when max_age is asked");
    assert!((now() - auth_time).abs() < 120);
}

#[test]
fn config_is_checked_before_any_request() {
    let mut c = ProviderConfig::oidc("op", "https://idp.example", "id", None);
    c.redirect_uri = "http://evil.example/cb".into();
    assert!(matches!(c.validate(), Err(FederationError::Config(_))));
}
