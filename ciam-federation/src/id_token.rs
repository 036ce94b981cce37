//! ID token validation, OpenID Connect Core 1.0 §3.1.3.7 (and §3.1.3.6 `at_hash`, §3.3.2.11
//! `c_hash`).

use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use crate::config::{MultiTenant, TenantPolicy};
use crate::error::IdTokenError;

/// The algorithms ever accepted: asymmetric signatures only. `none` and the HMAC family are
/// never accepted (an HMAC "signed" with the provider's public key is the classic confusion).
pub const SAFE_ALGORITHMS: &[&str] = &[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

/// What the relying party expects of one ID token.
#[derive(Debug, Clone)]
pub struct Expectations<'a> {
    /// The issuer (for a multi-tenant provider, the template).
    pub issuer: &'a str,
    /// Multi-tenant templating, if any.
    pub multi_tenant: Option<&'a MultiTenant>,
    /// The client id.
    pub client_id: &'a str,
    /// The algorithms allowed: the provider's metadata intersected with [`SAFE_ALGORITHMS`].
    pub algorithms: &'a [String],
    /// The nonce sent in the authorization request.
    pub nonce: &'a str,
    /// The access token returned with it (for `at_hash`).
    pub access_token: Option<&'a str>,
    /// The authorization code (for `c_hash`).
    pub code: Option<&'a str>,
    /// `max_age` sent, if any.
    pub max_age: Option<Duration>,
    /// Clock skew allowed.
    pub leeway: Duration,
    /// Oldest acceptable `iat`.
    pub max_token_age: Duration,
    /// The current time, Unix seconds.
    pub now: i64,
}

/// A validated ID token's claims.
#[derive(Debug, Clone)]
pub struct IdTokenClaims {
    /// `iss` (for a multi-tenant provider, the tenant's issuer).
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// Every claim.
    pub claims: Map<String, Value>,
}

fn b64(part: &str) -> Result<Vec<u8>, IdTokenError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.as_bytes())
        .map_err(|_| IdTokenError::Malformed)
}

fn parse_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The allow-list for a provider: what its metadata announces, intersected with
/// [`SAFE_ALGORITHMS`].
pub fn allowed_algorithms(announced: &[String]) -> Vec<String> {
    announced
        .iter()
        .filter(|a| SAFE_ALGORITHMS.contains(&a.as_str()))
        .cloned()
        .collect()
}

/// The left-most half of the hash of `value` with the hash of the JWS `alg`, base64url
/// (Core §3.1.3.6 `at_hash`, §3.3.2.11 `c_hash`; EdDSA with Ed25519 uses SHA-512).
pub fn left_half_hash(alg: &str, value: &str) -> Option<String> {
    let algo = match alg {
        "RS256" | "PS256" | "ES256" => &ring::digest::SHA256,
        "RS384" | "PS384" | "ES384" => &ring::digest::SHA384,
        "RS512" | "PS512" | "EdDSA" => &ring::digest::SHA512,
        _ => return None,
    };
    let d = ring::digest::digest(algo, value.as_bytes());
    let half = &d.as_ref()[..d.as_ref().len() / 2];
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half))
}

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The exact issuer a token must carry. For a multi-tenant provider: the template with its
/// placeholder replaced by the token's `tid`, which must be a GUID (so it cannot smuggle in a
/// path or another host) and an allowed tenant.
pub fn expected_issuer(
    template: &str,
    multi: Option<&MultiTenant>,
    claims: &Map<String, Value>,
) -> Result<String, IdTokenError> {
    let Some(mt) = multi else {
        return Ok(template.to_owned());
    };
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .ok_or(IdTokenError::TenantNotAllowed)?;
    if !is_guid(tid) {
        return Err(IdTokenError::TenantNotAllowed);
    }
    let tid = tid.to_ascii_lowercase();
    if let TenantPolicy::Only(list) = &mt.tenants
        && !list.iter().any(|t| t.eq_ignore_ascii_case(&tid))
    {
        return Err(IdTokenError::TenantNotAllowed);
    }
    if !template.contains(&mt.placeholder) {
        return Err(IdTokenError::WrongIssuer);
    }
    Ok(template.replace(&mt.placeholder, &tid))
}

fn num(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, IdTokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .map(Some)
            .ok_or(IdTokenError::MissingClaim(name)),
    }
}

/// Reads the header without trusting it: its `alg` and `kid`.
pub fn peek_header(token: &str) -> Result<(String, Option<String>), IdTokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenError::Malformed);
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&b64(h)?).map_err(|_| IdTokenError::Malformed)?;
    if header.contains_key("crit") {
        // No extension is understood, so a critical one must be refused (RFC 7515 §4.1.11).
        return Err(IdTokenError::Malformed);
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(IdTokenError::Malformed)?
        .to_owned();
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok((alg, kid))
}

/// Verifies the signature of `token` with one of `keys` and checks every claim.
pub fn validate(
    token: &str,
    keys: &[Jwk],
    exp: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    let (alg_name, _) = peek_header(token)?;
    if !exp.algorithms.iter().any(|a| a == &alg_name)
        || !SAFE_ALGORITHMS.contains(&alg_name.as_str())
    {
        return Err(IdTokenError::AlgorithmNotAllowed(alg_name));
    }
    let alg =
        parse_alg(&alg_name).ok_or_else(|| IdTokenError::AlgorithmNotAllowed(alg_name.clone()))?;
    if keys.is_empty() {
        return Err(IdTokenError::UnknownKey);
    }
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let mut result = Err(IdTokenError::KeyMismatch);
    for jwk in keys {
        if jwk
            .common
            .key_algorithm
            .is_some_and(|ka| ka.to_string() != alg_name)
        {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if !key.family().algorithms().contains(&alg)
            || key.family() == jsonwebtoken::AlgorithmFamily::Hmac
        {
            continue;
        }
        match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
            Ok(data) => {
                result = Ok(data.claims);
                break;
            }
            Err(e) => {
                result = Err(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => IdTokenError::KeyMismatch,
                    _ => IdTokenError::Malformed,
                });
            }
        }
    }
    let claims = result?;
    check_claims(&alg_name, claims, exp)
}

/// The claim checks of §3.1.3.7 steps 2-13, after the signature.
pub fn check_claims(
    alg: &str,
    claims: Map<String, Value>,
    exp: &Expectations<'_>,
) -> Result<IdTokenClaims, IdTokenError> {
    // 2. iss exactly the issuer (multi-tenant: template filled by tid).
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(IdTokenError::MissingClaim("iss"))?;
    let want = expected_issuer(exp.issuer, exp.multi_tenant, &claims)?;
    if iss != want {
        return Err(IdTokenError::WrongIssuer);
    }
    // 3-5. aud contains the client id; several audiences need azp = client id; azp, if
    // present, is the client id.
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenError::MissingClaim("aud")),
    };
    if !auds.contains(&exp.client_id) {
        return Err(IdTokenError::WrongAudience);
    }
    let azp = claims.get("azp").and_then(Value::as_str);
    if auds.len() > 1 && azp.is_none() {
        return Err(IdTokenError::WrongAudience);
    }
    if azp.is_some_and(|a| a != exp.client_id) {
        return Err(IdTokenError::WrongAuthorizedParty);
    }
    // 9-10. exp in the future, iat not in the future nor too old (bounded leeway).
    let leeway = exp.leeway.min(Duration::from_secs(300)).as_secs() as i64;
    let expires = num(&claims, "exp")?.ok_or(IdTokenError::MissingClaim("exp"))?;
    if exp.now > expires.saturating_add(leeway) {
        return Err(IdTokenError::Expired);
    }
    let iat = num(&claims, "iat")?.ok_or(IdTokenError::MissingClaim("iat"))?;
    if iat > exp.now.saturating_add(leeway)
        || iat
            < exp
                .now
                .saturating_sub(exp.max_token_age.as_secs() as i64 + leeway)
    {
        return Err(IdTokenError::NotYetValid);
    }
    if num(&claims, "nbf")?.is_some_and(|nbf| nbf > exp.now.saturating_add(leeway)) {
        return Err(IdTokenError::NotYetValid);
    }
    // 11. nonce equals the one sent.
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if ct_eq(n, exp.nonce) => {}
        _ => return Err(IdTokenError::NonceMismatch),
    }
    // 13. max_age: auth_time present and recent enough.
    if let Some(max_age) = exp.max_age {
        let at = num(&claims, "auth_time")?.ok_or(IdTokenError::AuthTimeTooOld)?;
        if at.saturating_add(max_age.as_secs() as i64 + leeway) < exp.now {
            return Err(IdTokenError::AuthTimeTooOld);
        }
    }
    // §3.1.3.6 / §3.3.2.11: at_hash and c_hash when present.
    if let (Some(h), Some(token)) = (
        claims.get("at_hash").and_then(Value::as_str),
        exp.access_token,
    ) && !left_half_hash(alg, token).is_some_and(|w| ct_eq(&w, h))
    {
        return Err(IdTokenError::AccessTokenHashMismatch);
    }
    if let (Some(h), Some(code)) = (claims.get("c_hash").and_then(Value::as_str), exp.code)
        && !left_half_hash(alg, code).is_some_and(|w| ct_eq(&w, h))
    {
        return Err(IdTokenError::CodeHashMismatch);
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or(IdTokenError::MissingClaim("sub"))?;
    if sub.is_empty() || sub.len() > 255 {
        return Err(IdTokenError::MissingClaim("sub"));
    }
    Ok(IdTokenClaims {
        issuer: iss.to_owned(),
        subject: sub.to_owned(),
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn at_hash_and_c_hash_known_answers() {
        // OpenID Connect Core 1.0 Appendix A.3 (response_type=id_token token): the access token
        // jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y has at_hash 77QmUPtjPfzWtF2AnpK9RQ (RS256).
        assert_eq!(
            left_half_hash("RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y").as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        // Appendix A.4 (response_type=code id_token): the code
        // Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk has c_hash LDktKdoQak3Pk0cnXxCltA.
        assert_eq!(
            left_half_hash(
                "RS256",
                "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
            )
            .as_deref(),
            Some("LDktKdoQak3Pk0cnXxCltA")
        );
        assert_eq!(left_half_hash("HS256", "x"), None);
    }

    fn mt(tenants: TenantPolicy) -> MultiTenant {
        MultiTenant {
            placeholder: "{tenantid}".to_owned(),
            tenants,
        }
    }

    #[test]
    fn entra_issuer_templating_is_exact() {
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let claims = |t: &str| json!({ "tid": t }).as_object().unwrap().clone();
        let any = mt(TenantPolicy::Any);
        assert_eq!(
            expected_issuer(template, Some(&any), &claims(tid)).unwrap(),
            format!("https://login.microsoftonline.com/{tid}/v2.0")
        );
        // A tid that is not a GUID cannot rewrite the issuer into another host or path.
        for bad in [
            "evil.example/x",
            "../",
            "",
            "9188040d-6c67-4c5b-b112-36a304b66dad/v2.0#",
        ] {
            assert_eq!(
                expected_issuer(template, Some(&any), &claims(bad)),
                Err(IdTokenError::TenantNotAllowed)
            );
        }
        let empty = Map::new();
        assert_eq!(
            expected_issuer(template, Some(&any), &empty),
            Err(IdTokenError::TenantNotAllowed)
        );
        let only = mt(TenantPolicy::Only(vec![
            "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
        ]));
        assert_eq!(
            expected_issuer(template, Some(&only), &claims(tid)),
            Err(IdTokenError::TenantNotAllowed)
        );
    }

    fn base_claims(now: i64) -> Map<String, Value> {
        json!({
            "iss": "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0",
            "tid": "9188040d-6c67-4c5b-b112-36a304b66dad",
            "aud": "client", "sub": "s", "iat": now, "exp": now + 300, "nonce": "n",
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn claim_checks_for_a_multi_tenant_token() {
        let now = 1_800_000_000;
        let any = mt(TenantPolicy::Any);
        let algs = vec!["RS256".to_owned()];
        let e = Expectations {
            issuer: "https://login.microsoftonline.com/{tenantid}/v2.0",
            multi_tenant: Some(&any),
            client_id: "client",
            algorithms: &algs,
            nonce: "n",
            access_token: None,
            code: None,
            max_age: None,
            leeway: Duration::from_secs(60),
            max_token_age: Duration::from_secs(600),
            now,
        };
        assert!(check_claims("RS256", base_claims(now), &e).is_ok());
        // A token from tenant A naming tenant B's issuer is refused.
        let mut c = base_claims(now);
        c.insert("tid".into(), json!("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert_eq!(
            check_claims("RS256", c, &e).unwrap_err(),
            IdTokenError::WrongIssuer
        );
        // Several audiences without azp, and a foreign azp.
        let mut c = base_claims(now);
        c.insert("aud".into(), json!(["client", "other"]));
        assert_eq!(
            check_claims("RS256", c.clone(), &e).unwrap_err(),
            IdTokenError::WrongAudience
        );
        c.insert("azp".into(), json!("other"));
        assert_eq!(
            check_claims("RS256", c, &e).unwrap_err(),
            IdTokenError::WrongAuthorizedParty
        );
        // max_age without auth_time, then with a stale one.
        let e2 = Expectations {
            max_age: Some(Duration::from_secs(60)),
            ..e.clone()
        };
        assert_eq!(
            check_claims("RS256", base_claims(now), &e2).unwrap_err(),
            IdTokenError::AuthTimeTooOld
        );
        let mut c = base_claims(now);
        c.insert("auth_time".into(), json!(now - 3600));
        assert_eq!(
            check_claims("RS256", c, &e2).unwrap_err(),
            IdTokenError::AuthTimeTooOld
        );
        let mut c = base_claims(now);
        c.insert("auth_time".into(), json!(now - 30));
        assert!(check_claims("RS256", c, &e2).is_ok());
        // at_hash that does not match the access token.
        let e3 = Expectations {
            access_token: Some("token"),
            ..e.clone()
        };
        let mut c = base_claims(now);
        c.insert("at_hash".into(), json!("AAAAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(
            check_claims("RS256", c, &e3).unwrap_err(),
            IdTokenError::AccessTokenHashMismatch
        );
        let mut c = base_claims(now);
        c.insert(
            "at_hash".into(),
            json!(left_half_hash("RS256", "token").unwrap()),
        );
        assert!(check_claims("RS256", c, &e3).is_ok());
    }

    #[test]
    fn header_peek_refuses_crit_and_garbage() {
        let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let t = format!(
            "{}.{}.sig",
            enc(json!({"alg":"RS256","crit":["exp"],"exp":1})),
            enc(json!({}))
        );
        assert_eq!(peek_header(&t), Err(IdTokenError::Malformed));
        assert_eq!(peek_header("a.b"), Err(IdTokenError::Malformed));
        assert_eq!(peek_header("a.b.c.d"), Err(IdTokenError::Malformed));
        assert_eq!(
            allowed_algorithms(&["none".into(), "HS256".into(), "ES256".into()]),
            vec!["ES256".to_owned()]
        );
    }
}
