//! The federated profile: who the provider says the user is, mapped by the claim mapping.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::config::ClaimMapping;
use crate::error::{FederationError, Result};

/// The identity and profile a provider asserted. `(issuer, subject)` is the identity; the rest
/// is profile data, never a key.
#[derive(Debug, Clone, PartialEq)]
pub struct FederatedProfile {
    /// The issuer (for a multi-tenant provider, the tenant's issuer).
    pub issuer: String,
    /// The subject at that issuer.
    pub subject: String,
    /// The e-mail address, if the provider gave one.
    pub email: Option<String>,
    /// The provider asserts it verified that address.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// When the user last authenticated at the provider (`auth_time`), Unix seconds.
    pub auth_time: Option<i64>,
    /// Extra claims, renamed by [`ClaimMapping::attributes`].
    pub attributes: BTreeMap<String, Value>,
}

fn string(claims: &Map<String, Value>, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .map(|s| s.trim().chars().take(320).collect::<String>())
        .filter(|s| !s.is_empty())
}

/// `email_verified` as a boolean, or the string `"true"` (Apple sends strings).
fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

impl FederatedProfile {
    /// Maps ID token claims (already validated) into a profile.
    pub fn from_claims(
        issuer: &str,
        subject: &str,
        claims: &Map<String, Value>,
        mapping: &ClaimMapping,
    ) -> Self {
        let email = string(claims, &mapping.email).filter(|e| e.contains('@'));
        let email_verified = email.is_some()
            && mapping
                .email_verified
                .as_deref()
                .is_some_and(|c| truthy(claims.get(c)));
        let attributes = mapping
            .attributes
            .iter()
            .filter_map(|(claim, attr)| claims.get(claim).map(|v| (attr.clone(), v.clone())))
            .collect();
        Self {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            email,
            email_verified,
            name: string(claims, &mapping.name),
            given_name: string(claims, "given_name"),
            family_name: string(claims, "family_name"),
            auth_time: claims.get("auth_time").and_then(Value::as_i64),
            attributes,
        }
    }

    /// GitHub: the user (`GET /user`) and the addresses (`GET /user/emails`); the e-mail is the
    /// primary address only if GitHub marks it verified, else none.
    pub fn from_github(user: &Value, emails: &Value) -> Result<Self> {
        let id = user
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| FederationError::UserInfo("GitHub user has no numeric id".to_owned()))?;
        let primary = emails.as_array().and_then(|list| {
            list.iter().find(|e| {
                e.get("primary").and_then(Value::as_bool) == Some(true)
                    && e.get("verified").and_then(Value::as_bool) == Some(true)
            })
        });
        let email = primary
            .and_then(|e| e.get("email"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let name = user
            .get("name")
            .and_then(Value::as_str)
            .or_else(|| user.get("login").and_then(Value::as_str))
            .map(str::to_owned);
        let mut attributes = BTreeMap::new();
        if let Some(login) = user.get("login") {
            attributes.insert("github_login".to_owned(), login.clone());
        }
        Ok(Self {
            issuer: crate::config::GITHUB_ISSUER.to_owned(),
            subject: id.to_string(),
            email_verified: email.is_some(),
            email,
            name,
            given_name: None,
            family_name: None,
            auth_time: None,
            attributes,
        })
    }
}

/// The provider's tokens, kept only when the provider is configured to (`keep_tokens`).
/// Zeroized on drop and redacted in `Debug`.
#[derive(Clone)]
pub struct ProviderTokens {
    /// The access token.
    pub access_token: Zeroizing<String>,
    /// The refresh token, if one was issued.
    pub refresh_token: Option<Zeroizing<String>>,
    /// When the access token expires, Unix seconds.
    pub expires_at: Option<i64>,
    /// Granted scopes, if the provider said.
    pub scopes: Vec<String>,
}

impl fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderTokens")
            .field("access_token", &"***")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "***"))
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn github_uses_only_the_primary_verified_address() {
        let user = json!({"id": 583231, "login": "octocat", "name": "The Octocat"});
        let emails = json!([
            {"email": "octo@old.example", "primary": false, "verified": true},
            {"email": "octocat@github.example", "primary": true, "verified": true}
        ]);
        let p = FederatedProfile::from_github(&user, &emails).unwrap();
        assert_eq!(p.subject, "583231");
        assert_eq!(p.issuer, "https://github.com");
        assert_eq!(p.email.as_deref(), Some("octocat@github.example"));
        assert!(p.email_verified);
        // Primary but unverified: no e-mail at all (a verified secondary is not promoted).
        let emails = json!([
            {"email": "octo@old.example", "primary": false, "verified": true},
            {"email": "octocat@github.example", "primary": true, "verified": false}
        ]);
        let p = FederatedProfile::from_github(&user, &emails).unwrap();
        assert_eq!(p.email, None);
        assert!(!p.email_verified);
        assert!(FederatedProfile::from_github(&json!({"login": "x"}), &emails).is_err());
    }

    #[test]
    fn claim_mapping_and_string_email_verified() {
        let claims =
            json!({"email": "a@b.example", "email_verified": "true", "name": "A", "groups": ["x"]});
        let mut m = ClaimMapping::default();
        m.attributes.insert("groups".into(), "idp_groups".into());
        let p = FederatedProfile::from_claims("https://i", "s", claims.as_object().unwrap(), &m);
        assert!(p.email_verified);
        assert_eq!(p.attributes.get("idp_groups"), Some(&json!(["x"])));
        // A provider that never asserts verification (Entra): unverified.
        m.email_verified = None;
        let p = FederatedProfile::from_claims("https://i", "s", claims.as_object().unwrap(), &m);
        assert!(!p.email_verified);
        let tokens = ProviderTokens {
            access_token: Zeroizing::new("secret-at".into()),
            refresh_token: None,
            expires_at: None,
            scopes: vec![],
        };
        assert!(!format!("{tokens:?}").contains("secret-at"));
    }
}
