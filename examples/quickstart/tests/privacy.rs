//! The privacy centre over HTTP against the quickstart binary, on its SQLite database and the
//! real SMTP sink: consents given and withdrawn, a signed receipt checked offline (EdDSA with
//! `ring`, RFC 8037, independent of the server's JWS code), the Global Privacy Control
//! signal, progressive-profiling prompts, the export, a material policy change (a restart
//! with `CIAM_POLICY_VERSION=2` on the same database) answered at the next sign-in, and
//! erasure.

// A test harness: its helpers fail the test by panicking, like the tests themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::*;

/// A fixed consent master key, so a restarted server opens the records of the first run.
const CONSENT_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

async fn send(c: &Client, s: &Server, method: &str, path: &str, body: Option<Value>) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = c.request(method, format!("{}{path}", s.base));
    if let Some(b) = body {
        req = req.json(&b);
    }
    answer(req.send().await.unwrap()).await
}

fn purpose<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {list}"))
}

/// The names of the profile fields the account page asks for now.
async fn prompts(c: &Client, s: &Server) -> Vec<String> {
    let me = get(c, s, "/auth/me?stage=engaged").await;
    me.body["user"]["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks a compact EdDSA JWS against an OKP JWK and returns its payload.
fn verify_jws(jws: &str, jwk: &Value) -> Value {
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let mut parts = jws.split('.');
    let (h, p, sig) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert!(parts.next().is_none());
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x);
    key.verify(
        format!("{h}.{p}").as_bytes(),
        &URL_SAFE_NO_PAD.decode(sig).unwrap(),
    )
    .expect("the receipt's signature verifies with the published key");
    // A flipped byte of the payload does not.
    let mut forged = URL_SAFE_NO_PAD.decode(p).unwrap();
    forged[10] ^= 1;
    let forged = URL_SAFE_NO_PAD.encode(forged);
    assert!(
        key.verify(
            format!("{h}.{forged}").as_bytes(),
            &URL_SAFE_NO_PAD.decode(sig).unwrap()
        )
        .is_err()
    );
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_centre_consents_receipts_gpc_profile_export_policy_change_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("shared.db").display()
    );
    let instance = Instance {
        database_url: Some(db),
        ..Instance::default()
    };
    let env = [("CIAM_CONSENT_KEY", CONSENT_KEY)];
    let (s, mut mail) = start_with_env(instance.clone(), &env).await;
    let c = browser(&s, "privacy-test/1.0");
    let email = address("privacy");
    register_and_verify(&c, &s, &mut mail, &email, PASSWORD).await;
    let r = login(&c, &s, &email, PASSWORD).await;
    assert_eq!(r.body["consent_required"], json!([]), "{:?}", r.body);
    let user = r.body["user"]["id"].as_str().unwrap().to_owned();

    // The page, and the catalog behind it.
    let (status, html) = page(&c, &s, "/privacy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="consent-list""#), "{html}");
    let list = get(&c, &s, "/auth/consents").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["policy"]["version"], 1);
    for id in ["newsletter", "analytics", "sale_of_data"] {
        assert_eq!(purpose(&list.body, id)["state"], "not_asked");
    }
    assert_eq!(purpose(&list.body, "terms")["state"], "not_needed");
    assert_eq!(purpose(&list.body, "sale_of_data")["sale_or_share"], true);

    // Give two consents; the receipt of one is a JWS that verifies offline.
    for id in ["newsletter", "sale_of_data"] {
        let r = send(
            &c,
            &s,
            "PUT",
            &format!("/auth/consents/{id}"),
            Some(json!({"granted": true})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        assert_eq!(r.body["purpose"]["state"], "granted");
    }
    let list = get(&c, &s, "/auth/consents").await;
    let record = purpose(&list.body, "newsletter")["record_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = get(&c, &s, "/auth/consents/receipts/key").await;
    let r = c
        .get(format!("{}/auth/consents/receipts/{record}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let receipt = verify_jws(&r.text().await.unwrap(), &key.body["keys"][0]);
    assert_eq!(receipt["consentReceiptID"], record, "{receipt}");
    assert_eq!(receipt["piiPrincipalId"], user);
    // Another user cannot fetch it.
    let other = browser(&s, "privacy-test/1.0");
    let other_email = address("privacy-other");
    register_and_verify(&other, &s, &mut mail, &other_email, PASSWORD).await;
    login(&other, &s, &other_email, PASSWORD).await;
    let r = get(&other, &s, &format!("/auth/consents/receipts/{record}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Global Privacy Control on any page withdraws the sale or share, and only that.
    let r = c
        .get(format!("{}/account", s.base))
        .header("Sec-GPC", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let list = get(&c, &s, "/auth/consents").await;
    assert_eq!(purpose(&list.body, "sale_of_data")["state"], "withdrawn");
    assert_eq!(purpose(&list.body, "newsletter")["state"], "granted");

    // Progressive profiling: at most two prompts, the next ones once answered.
    assert_eq!(prompts(&c, &s).await, ["display_name", "country"]);
    let r = send(
        &c,
        &s,
        "PATCH",
        "/auth/profile",
        Some(json!({"display_name": "Ada", "country": "DE"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(prompts(&c, &s).await, ["birthday", "newsletter_frequency"]);

    // The page's "Download my data" goes through /privacy/export: with a recent sign-in, on
    // to the archive (an older one is sent to sign in again first).
    let via_page = get(&c, &s, "/privacy/export").await;
    assert_eq!(via_page.status, StatusCode::OK);
    assert_eq!(via_page.body["account"]["email"], email.as_str());
    // The export holds the profile and the consent records (two grants, one GPC withdrawal).
    let export = get(&c, &s, "/auth/me/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body["account"]["email"], email.as_str());
    assert_eq!(export.body["account"]["profile"]["display_name"], "Ada");
    let consents = export.body["sections"]["consent"].as_array().unwrap();
    assert_eq!(consents.len(), 3, "{consents:?}");
    assert_eq!(consents[2]["channel"], "gpc-header");
    drop(c);
    drop(s);

    // Policy 2 (a material change) on the same database: the next sign-in says what to ask.
    let env = [
        ("CIAM_CONSENT_KEY", CONSENT_KEY),
        ("CIAM_POLICY_VERSION", "2"),
    ];
    let (s, _mail) = start_with_env(instance, &env).await;
    let c = browser(&s, "privacy-test/1.0");
    let r = login(&c, &s, &email, PASSWORD).await;
    assert_eq!(
        r.body["consent_required"],
        json!([{
            "purpose": "newsletter",
            "description": "Send me the monthly newsletter by e-mail.",
            "policy_version": 2,
            "consented_under": 1,
            "policy_url": "/privacy/policy/2",
        }]),
        "{:?}",
        r.body
    );
    let list = get(&c, &s, "/auth/consents").await;
    assert_eq!(list.body["pending"][0]["purpose"], "newsletter");
    assert_eq!(
        purpose(&list.body, "newsletter")["state"],
        "reconsent_required"
    );
    let (status, html) = page(&c, &s, "/privacy/policy/2").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("version 2"));
    let r = send(
        &c,
        &s,
        "PUT",
        "/auth/consents/newsletter",
        Some(json!({"granted": true})),
    )
    .await;
    assert_eq!(r.body["purpose"]["policy_version"], 2);
    let r = login(&c, &s, &email, PASSWORD).await;
    assert_eq!(r.body["consent_required"], json!([]));

    // Erasure (a recent sign-in suffices): the account is gone and cannot sign in.
    let r = send(&c, &s, "DELETE", "/auth/me", Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "complete");
    let r = post(
        &c,
        &s,
        "/auth/login",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
