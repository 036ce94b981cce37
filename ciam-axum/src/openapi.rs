//! The OpenAPI 3.1 document of [`router`](crate::router): every endpoint with its request
//! body, parameters, answers and error codes, and the cookie and bearer security schemes.
//!
//! The document follows the enabled features (an endpoint of a feature that is off is not in
//! it). [`router`](crate::router) serves it at `GET /openapi.json`, with its own mount point
//! as the server URL; [`openapi`] builds it for any prefix.
//!
//! It is written by hand beside the handlers, and kept true by tests: it is checked by an
//! independent OpenAPI validator, every route of the router is in it and every path in it is
//! routed, and the JSON answers of a scripted walk through the endpoints validate against the
//! schemas it declares.

use axum::extract::OriginalUri;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use serde_json::{Map, Value, json};

/// Where [`router`](crate::router) serves the document, relative to its mount point.
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The OpenAPI 3.1 document of [`router`](crate::router) mounted at `prefix` (for example
/// `"/auth"`; `""` for the root), as JSON.
///
/// ```
/// let doc = ciam_axum::openapi("/auth");
/// assert_eq!(doc["openapi"], "3.1.0");
/// assert!(doc["paths"]["/login"]["post"].is_object());
/// assert_eq!(doc["servers"][0]["url"], "/auth");
/// ```
pub fn openapi(prefix: &str) -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let entry = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(op.method.to_owned(), op.to_json());
        }
    }
    let server = if prefix.is_empty() { "/" } else { prefix };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ciam authentication API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON endpoints of ciam-axum's router. Every error body is \
                {\"error\": \"<code>\", \"message\": \"<text>\"}. State-changing requests \
                from browsers must come from the site's origin (Origin or Sec-Fetch-Site); \
                other clients send `Origin: <public url origin>`. Sign-up, password reset and \
                sign-in answers do not reveal whether an account exists.",
        },
        "servers": [{"url": server}],
        "tags": tags(),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "ciam_session",
                    "description": "The session cookie set by the sign-in endpoints \
                        (`__Host-ciam_session` when the public URL is HTTPS).",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from `POST /token` (RFC 9068 `at+jwt`).",
                },
            },
            "schemas": schemas(),
        },
    })
}

/// `GET /openapi.json`: the document with the router's mount point as its server: the path
/// it was asked at without `/openapi.json`, whether the router is nested (`nest`) or
/// registered at its prefix (`router_at`).
pub(crate) async fn serve(OriginalUri(original): OriginalUri) -> Response {
    let prefix = original
        .path()
        .strip_suffix(OPENAPI_PATH)
        .unwrap_or_default()
        .to_owned();
    let mut response = axum::Json(openapi(&prefix)).into_response();
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

fn tags() -> Value {
    let mut tags = vec![
        json!({"name": "account", "description": "Sign-up, e-mail verification, profile, closing the account"}),
        json!({"name": "sign-in", "description": "Password sign-in and out, sign-in links and codes, second factors"}),
        json!({"name": "sessions", "description": "The caller's sessions and audit log"}),
        json!({"name": "password", "description": "Forgotten, reset and changed passwords"}),
        json!({"name": "mfa", "description": "Second factors: TOTP, recovery codes, trusted devices"}),
        json!({"name": "meta", "description": "This document"}),
    ];
    if cfg!(feature = "passkeys") {
        tags.push(json!({"name": "passkeys", "description": "WebAuthn Level 3 ceremonies and passkey management"}));
    }
    if cfg!(feature = "tokens") {
        tags.push(json!({"name": "tokens", "description": "API access and refresh tokens"}));
    }
    if cfg!(feature = "consent") {
        tags.push(json!({"name": "privacy", "description": "The privacy centre (`privacy_router`): consents, receipts, export and erasure"}));
    }
    if cfg!(feature = "federation") {
        tags.push(json!({"name": "federation", "description": "Sign-in with external OpenID providers and linked identities"}));
    }
    Value::Array(tags)
}

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq)]
enum Caller {
    /// Anyone.
    Anyone,
    /// A signed-in caller (session cookie).
    Session,
    /// A signed-in caller who authenticated recently (else 401 `step_up_required`).
    Recent,
}

/// One documented answer: status, description, and the body's media type and schema.
type Answer = (u16, &'static str, Option<(&'static str, Value)>);

/// One operation of the document.
struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    caller: Caller,
    params: Vec<Value>,
    body: Option<Value>,
    answers: Vec<Answer>,
    errors: Vec<(u16, &'static str)>,
}

fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Op {
    Op {
        method,
        path,
        id,
        tag,
        summary,
        caller: Caller::Anyone,
        params: Vec::new(),
        body: None,
        answers: Vec::new(),
        errors: Vec::new(),
    }
}

impl Op {
    fn session(mut self) -> Self {
        self.caller = Caller::Session;
        self
    }

    fn recent(mut self) -> Self {
        self.caller = Caller::Recent;
        self
    }

    fn body(mut self, schema: Value) -> Self {
        self.body = Some(schema);
        self
    }

    fn path_param(mut self, name: &'static str, description: &'static str) -> Self {
        self.params.push(json!({
            "name": name, "in": "path", "required": true,
            "description": description, "schema": {"type": "string"},
        }));
        self
    }

    fn query(mut self, name: &'static str, description: &'static str) -> Self {
        self.params.push(json!({
            "name": name, "in": "query", "required": false,
            "description": description, "schema": {"type": "string"},
        }));
        self
    }

    fn answer(mut self, status: u16, description: &'static str, schema: Value) -> Self {
        self.answers
            .push((status, description, Some(("application/json", schema))));
        self
    }

    /// An answer whose body is not JSON.
    #[cfg(feature = "consent")]
    fn answer_as(
        mut self,
        status: u16,
        description: &'static str,
        media: &'static str,
        schema: Value,
    ) -> Self {
        self.answers
            .push((status, description, Some((media, schema))));
        self
    }

    fn empty(mut self, status: u16, description: &'static str) -> Self {
        self.answers.push((status, description, None));
        self
    }

    fn error(mut self, status: u16, description: &'static str) -> Self {
        self.errors.push((status, description));
        self
    }

    /// The answers of every sign-in endpoint (`POST /login` and the others "as `POST /login`").
    fn signs_in(self) -> Self {
        self.answer(
            200,
            "Signed in (with `Set-Cookie`), or a second factor is needed",
            json!({"oneOf": [schema_ref("SignedIn"), schema_ref("MfaRequired")]}),
        )
        .error(
            403,
            "`verification_required` (the address is not verified yet) or `risk_denied`",
        )
        .error(429, "`rate_limited`, with `Retry-After`")
    }

    fn to_json(&self) -> Value {
        let mut responses = Map::new();
        for (status, description, schema) in &self.answers {
            let mut answer = json!({ "description": description });
            if let Some((media, schema)) = schema {
                answer["content"] = json!({ *media: {"schema": schema} });
            }
            responses.insert(status.to_string(), answer);
        }
        let mut errors = self.errors.clone();
        if self.caller != Caller::Anyone {
            errors.push((401, "`unauthenticated`: no valid session"));
        }
        if self.caller == Caller::Recent {
            errors.push((
                401,
                "`step_up_required`: sign in again (or with a second factor) first",
            ));
        }
        if self.body.is_some() {
            errors.push((400, "`invalid_json` or `invalid_input`"));
            errors.push((413, "`payload_too_large`"));
            errors.push((415, "`unsupported_media_type`: not `application/json`"));
        }
        if self.method != "get" {
            errors.push((
                403,
                "`csrf`: the request did not come from the site's origin",
            ));
        }
        errors.push((
            500,
            "`internal`: a server fault (detail in the server's log); `client_ip_unresolved`: the \
             client IP cannot be decided (the layer's proxy settings; see the server's log)",
        ));
        errors.push((503, "`unavailable`, with `Retry-After`"));
        for (status, description) in errors {
            let key = status.to_string();
            let entry = responses.entry(key).or_insert_with(|| {
                json!({
                    "description": "",
                    "content": {"application/json": {"schema": schema_ref("Error")}},
                })
            });
            if entry.get("content").is_none() {
                entry["content"] = json!({"application/json": {"schema": schema_ref("Error")}});
            }
            let old = entry["description"].as_str().unwrap_or_default().to_owned();
            entry["description"] = if old.is_empty() {
                json!(description)
            } else {
                json!(format!("{old}; {description}"))
            };
        }
        let mut out = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "responses": responses,
        });
        if !self.params.is_empty() {
            out["parameters"] = Value::Array(self.params.clone());
        }
        if let Some(body) = &self.body {
            out["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": body}},
            });
        }
        out["security"] = match self.caller {
            Caller::Anyone => json!([]),
            Caller::Session | Caller::Recent => json!([{"session": []}]),
        };
        out
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// An object schema with `required` fields (name, schema) and optional ones.
fn object(required: &[(&str, Value)], optional: &[(&str, Value)]) -> Value {
    let mut properties = Map::new();
    for (name, schema) in required.iter().chain(optional) {
        properties.insert((*name).to_owned(), schema.clone());
    }
    let names: Vec<&str> = required.iter().map(|(n, _)| *n).collect();
    json!({ "type": "object", "required": names, "properties": properties })
}

fn string() -> Value {
    json!({"type": "string"})
}

fn secret(description: &str) -> Value {
    json!({"type": "string", "format": "password", "description": description})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

fn status_answer(values: &[&str]) -> Value {
    object(
        &[("status", json!({"type": "string", "enum": values}))],
        &[],
    )
}

fn schemas() -> Value {
    let mut s = Map::new();
    let mut add = |name: &str, schema: Value| {
        s.insert(name.to_owned(), schema);
    };
    add(
        "Error",
        object(
            &[
                (
                    "error",
                    json!({"type": "string", "description": "Stable, machine-readable code"}),
                ),
                (
                    "message",
                    json!({"type": "string", "description": "Safe to show to the user"}),
                ),
            ],
            &[
                (
                    "aal",
                    json!({"type": "integer", "description": "With `step_up_required`: the level asked for"}),
                ),
                (
                    "max_age",
                    json!({"type": ["integer", "null"], "description": "With `step_up_required`: how recent (seconds) the sign-in must be, or null"}),
                ),
            ],
        ),
    );
    add(
        "FieldSpec",
        object(
            &[
                ("name", string()),
                ("label", string()),
                (
                    "kind",
                    json!({"description": "The field's type (text, choice, ...)"}),
                ),
                ("stage", string()),
            ],
            &[],
        ),
    );
    add(
        "User",
        object(
            &[
                ("id", string()),
                (
                    "email",
                    nullable(json!({"type": "string", "format": "email"})),
                ),
                ("email_verified", json!({"type": "boolean"})),
                (
                    "profile",
                    json!({"type": "object", "description": "Profile attributes by name"}),
                ),
                (
                    "prompts",
                    json!({"type": "array", "items": schema_ref("FieldSpec"), "description": "Profile fields worth asking for now (progressive profiling)"}),
                ),
                ("created_at", time()),
            ],
            &[],
        ),
    );
    add(
        "AuthContext",
        object(
            &[
                ("user_id", string()),
                ("session_id", string()),
                (
                    "aal",
                    json!({"type": "integer", "minimum": 1, "maximum": 3, "description": "NIST SP 800-63B assurance level"}),
                ),
                (
                    "amr",
                    json!({"type": "array", "items": {"type": "string", "enum": ["pwd", "email", "otp", "sms", "hwk", "mfa", "fed"]}}),
                ),
                ("auth_time", time()),
                ("expires_at", time()),
            ],
            &[],
        ),
    );
    add(
        "SignedIn",
        object(
            &[
                ("user", schema_ref("User")),
                ("session", schema_ref("SessionInfo")),
                (
                    "consent_required",
                    json!({
                        "type": "array",
                        "items": schema_ref("PendingConsent"),
                        "description": "Purposes to ask the user about again (a material policy change); usually empty",
                    }),
                ),
            ],
            &[],
        ),
    );
    add(
        "PendingConsent",
        object(
            &[
                ("purpose", string()),
                ("description", string()),
                ("policy_version", json!({"type": "integer", "minimum": 0})),
                (
                    "consented_under",
                    nullable(json!({"type": "integer", "minimum": 0})),
                ),
                ("policy_url", nullable(string())),
            ],
            &[],
        ),
    );
    add(
        "MfaRequired",
        object(
            &[
                ("status", json!({"const": "mfa_required"})),
                (
                    "mfa_token",
                    json!({"type": "string", "description": "Send back to `POST /mfa/challenge`"}),
                ),
                (
                    "factors",
                    json!({"type": "array", "items": {"type": "string", "enum": ["totp", "recovery_code", "email_code", "captcha", "passkey"]}, "description": "`captcha` (alone) when the risk policy suspects automation: solve the CAPTCHA and send its token as `captcha_token`"}),
                ),
                (
                    "reason",
                    nullable(
                        json!({"type": "string", "description": "Why the risk policy asked, safe to show"}),
                    ),
                ),
            ],
            &[],
        ),
    );
    add(
        "SessionInfo",
        object(
            &[
                ("id", string()),
                ("created_at", time()),
                ("last_seen_at", time()),
                ("expires_at", time()),
                ("amr", json!({"type": "array", "items": {"type": "string"}})),
                (
                    "aal",
                    json!({"type": "integer", "minimum": 1, "maximum": 3}),
                ),
                ("acr", string()),
                ("auth_time", time()),
                (
                    "device",
                    object(
                        &[],
                        &[
                            ("user_agent", nullable(string())),
                            ("ip", nullable(string())),
                        ],
                    ),
                ),
                ("current", json!({"type": "boolean"})),
            ],
            &[],
        ),
    );
    add(
        "AuditEntry",
        object(
            &[
                ("id", string()),
                ("at", time()),
                ("action", string()),
                ("outcome", string()),
                ("reason", string()),
            ],
            &[
                ("user_id", nullable(string())),
                ("session_id", nullable(string())),
                ("ip", nullable(string())),
                ("user_agent", nullable(string())),
                (
                    "detail",
                    json!({"description": "The rule's inputs and what it decided"}),
                ),
            ],
        ),
    );
    add(
        "MfaStatus",
        object(
            &[
                ("totp", json!({"type": "boolean"})),
                (
                    "recovery_codes_left",
                    json!({"type": "integer", "minimum": 0}),
                ),
            ],
            &[],
        ),
    );
    add(
        "TrustedDevice",
        object(
            &[
                (
                    "id",
                    json!({"type": "string", "description": "Names the device in `DELETE /mfa/devices/{id}`; not the cookie's token"}),
                ),
                (
                    "created_at",
                    json!({"type": "string", "format": "date-time", "description": "The sign-in that trusted the browser"}),
                ),
                ("expires_at", time()),
                (
                    "remember_until",
                    nullable(
                        json!({"type": "string", "format": "date-time", "description": "Until when it skips the second factor (\"remember this device\")"}),
                    ),
                ),
                ("user_agent", nullable(string())),
                ("ip", nullable(string())),
                (
                    "current",
                    json!({"type": "boolean", "description": "The browser making the request"}),
                ),
            ],
            &[],
        ),
    );
    add(
        "RecoveryCodes",
        object(
            &[(
                "recovery_codes",
                nullable(
                    json!({"type": "array", "items": {"type": "string"}, "description": "Shown once"}),
                ),
            )],
            &[],
        ),
    );
    if cfg!(feature = "passkeys") {
        add(
            "Passkey",
            object(
                &[
                    ("id", string()),
                    ("name", string()),
                    ("created_at", time()),
                    ("last_used_at", nullable(time())),
                    (
                        "synced",
                        json!({"type": "boolean", "description": "Backup eligible (BE): a synced passkey"}),
                    ),
                    (
                        "backed_up",
                        json!({"type": "boolean", "description": "Backup state (BS)"}),
                    ),
                    ("aaguid", string()),
                    ("attestation", string()),
                    (
                        "transports",
                        json!({"type": "array", "items": {"type": "string"}}),
                    ),
                ],
                &[],
            ),
        );
        add(
            "PublicKeyCredential",
            json!({"type": "object", "required": ["id", "type", "response"], "description": "`PublicKeyCredential.toJSON()` (WebAuthn Level 3)"}),
        );
        add(
            "CreationOptions",
            json!({"type": "object", "required": ["rp", "user", "challenge", "pubKeyCredParams"], "description": "`PublicKeyCredentialCreationOptionsJSON` (WebAuthn Level 3), for `PublicKeyCredential.parseCreationOptionsFromJSON`"}),
        );
        add(
            "RequestOptions",
            json!({"type": "object", "required": ["challenge"], "description": "`PublicKeyCredentialRequestOptionsJSON` (WebAuthn Level 3), for `PublicKeyCredential.parseRequestOptionsFromJSON`"}),
        );
    }
    if cfg!(feature = "tokens") {
        add(
            "TokenPair",
            object(
                &[
                    (
                        "access_token",
                        json!({"type": "string", "description": "A JWT (`typ` `at+jwt`), EdDSA or ES256, verifiable with the JWKS"}),
                    ),
                    ("token_type", json!({"const": "Bearer"})),
                    (
                        "refresh_token",
                        json!({"type": "string", "description": "Single use; rotated by `POST /token/refresh`"}),
                    ),
                    (
                        "expires_in",
                        json!({"type": "integer", "description": "Seconds until the access token expires"}),
                    ),
                ],
                &[],
            ),
        );
    }
    if cfg!(feature = "federation") {
        add(
            "Provider",
            object(&[("name", string()), ("display_name", string())], &[]),
        );
        add(
            "Identity",
            object(
                &[
                    ("id", string()),
                    ("provider", string()),
                    ("provider_name", string()),
                    ("issuer", string()),
                    ("subject", string()),
                    ("email", nullable(string())),
                    ("created_at", time()),
                    ("last_used_at", nullable(time())),
                ],
                &[],
            ),
        );
    }
    Value::Object(s)
}

fn email_body() -> Value {
    object(
        &[("email", json!({"type": "string", "format": "email"}))],
        &[],
    )
}

fn token_body() -> Value {
    object(
        &[(
            "token",
            json!({"type": "string", "description": "From the mailed link"}),
        )],
        &[],
    )
}

/// The optional CAPTCHA token of a sign-in body.
fn captcha_token() -> (&'static str, Value) {
    (
        "captcha_token",
        secret(
            "What the application's CAPTCHA widget produced, for its bot check; send it again \
             after an `mfa_required` answer with `factors` `[\"captcha\"]`",
        ),
    )
}

fn user_answer() -> Value {
    object(&[("user", schema_ref("User"))], &[])
}

fn operations() -> Vec<Op> {
    // Extended below by each optional feature's operations.
    #[cfg_attr(
        not(any(
            feature = "passkeys",
            feature = "tokens",
            feature = "federation",
            feature = "consent"
        )),
        allow(unused_mut)
    )]
    let mut ops = vec![
        op("get", OPENAPI_PATH, "openapi", "meta", "This OpenAPI document")
            .answer(200, "The document", json!({"type": "object"})),
        op("post", "/register", "register", "account", "Sign up with an e-mail address and a password")
            .body(object(
                &[("email", json!({"type": "string", "format": "email"})), ("password", secret("At least 8 characters; checked against breached and context-specific words"))],
                &[("profile", json!({"type": "object", "description": "Profile attributes, checked against the schema"}))],
            ))
            .answer(202, "A verification mail was sent (the same answer for an address that has an account)", status_answer(&["verification_sent"]))
            .error(400, "`weak_password` or an invalid profile"),
        op("post", "/verify-email", "verifyEmail", "account", "Verify an address with the mailed token")
            .body(token_body())
            .answer(200, "Verified", status_answer(&["email_verified", "email_changed"]))
            .error(401, "`invalid_token`: unknown, used or expired"),
        op("post", "/verify-email/resend", "resendVerification", "account", "Mail a new verification link")
            .body(email_body())
            .answer(202, "Sent if the address has an unverified account (the same answer otherwise)", status_answer(&["verification_sent"])),
        op("post", "/login", "login", "sign-in", "Sign in with an e-mail address and a password")
            .body(object(&[("email", string()), ("password", secret("The password"))], &[captcha_token()]))
            .signs_in()
            .error(401, "`invalid_credentials` (the same for an unknown address)"),
        op("post", "/logout", "logout", "sign-in", "Sign out: the session ends and the cookie is cleared")
            .empty(204, "Signed out"),
        op("get", "/me", "me", "account", "The signed-in caller and the session")
            .session()
            .query("stage", "The progressive-profiling stage to ask prompts for (default `signup`)")
            .answer(200, "The caller", object(&[("user", schema_ref("User")), ("session", schema_ref("AuthContext"))], &[])),
        op("get", "/sessions", "listSessions", "sessions", "The caller's sessions, the current one marked")
            .session()
            .answer(200, "The sessions", object(&[("sessions", json!({"type": "array", "items": schema_ref("SessionInfo")}))], &[])),
        op("delete", "/sessions/{id}", "revokeSession", "sessions", "End one of the caller's sessions")
            .session()
            .path_param("id", "The session id")
            .empty(204, "Ended (the cookie is cleared when it is the current one)")
            .error(404, "`not_found`: not one of the caller's sessions"),
        op("post", "/sessions/revoke-others", "revokeOtherSessions", "sessions", "End every session but the current one")
            .session()
            .answer(200, "How many ended", object(&[("revoked", json!({"type": "integer", "minimum": 0}))], &[])),
        op("post", "/password/forgot", "forgotPassword", "password", "Mail a password-reset link")
            .body(email_body())
            .answer(202, "Sent if the address has an account (the same answer otherwise)", status_answer(&["reset_sent_if_account_exists"])),
        op("post", "/password/reset", "resetPassword", "password", "Set a new password with the mailed token; every session ends")
            .body(object(&[("token", string()), ("password", secret("The new password"))], &[]))
            .answer(200, "Reset", status_answer(&["password_reset"]))
            .error(400, "`weak_password`")
            .error(401, "`invalid_token`"),
        op("post", "/password/change", "changePassword", "password", "Change the password; the cookie rotates and the other sessions end")
            .session()
            .body(object(&[("new_password", secret("The new password"))], &[("current_password", secret("Needed without a recent sign-in"))]))
            .answer(200, "Changed, signed in again with `Set-Cookie`", schema_ref("SignedIn"))
            .error(400, "`weak_password`")
            .error(401, "`invalid_credentials` or `step_up_required`"),
        op("post", "/email/change", "changeEmail", "account", "Ask to change the address: a confirmation link goes to the new one")
            .session()
            .body(object(&[("email", json!({"type": "string", "format": "email"}))], &[("current_password", secret("Needed without a recent sign-in"))]))
            .answer(202, "Confirmation sent", status_answer(&["confirmation_sent"]))
            .error(401, "`step_up_required` without a recent sign-in (AAL2 with a second factor)"),
        op("patch", "/profile", "updateProfile", "account", "Set profile attributes; `null` removes one")
            .session()
            .body(json!({"type": "object", "additionalProperties": true, "description": "Attribute name to value (or null)"}))
            .answer(200, "The updated user", user_answer())
            .error(400, "`invalid_input`: an unknown field or an invalid value"),
        op("get", "/audit", "auditLog", "sessions", "The caller's recent audit log")
            .session()
            .answer(200, "Newest first", object(&[("entries", json!({"type": "array", "items": schema_ref("AuditEntry")}))], &[])),
        op("delete", "/account", "deleteAccount", "account", "Close the account: sessions end, credentials are removed")
            .recent()
            .body(object(&[], &[("current_password", secret("Instead of a recent sign-in"))]))
            .empty(204, "Closed; the cookie is cleared")
            .error(401, "`invalid_credentials`"),
        op("post", "/mfa/challenge", "mfaChallenge", "sign-in", "Answer the second factor of a sign-in")
            .body(object(
                &[("mfa_token", string())],
                &[
                    ("code", secret("A TOTP code")),
                    ("recovery_code", secret("A recovery code")),
                    ("email_code", secret("The mailed code")),
                    ("captcha_token", secret("The solved CAPTCHA's token, when `factors` is `[\"captcha\"]` (a person, not a second factor: the account's own factor may be asked next)")),
                    ("remember_device", json!({"type": "boolean", "description": "Skip the second factor on this browser for a while"})),
                ],
            ))
            .signs_in()
            .error(401, "`invalid_code` (wrong code, or an unsolved CAPTCHA) or `invalid_token` (expired or used up)"),
        op("get", "/mfa", "mfaStatus", "mfa", "The caller's second factors")
            .session()
            .answer(200, "The status", schema_ref("MfaStatus")),
        op("post", "/mfa/totp/enroll", "totpEnroll", "mfa", "Start enrolling an authenticator app")
            .recent()
            .answer(200, "The secret to show once", object(
                &[
                    ("enrolment", json!({"type": "string", "description": "Send back to `POST /mfa/totp/confirm`"})),
                    ("otpauth_uri", string()),
                    ("secret", json!({"type": "string", "description": "Base32"})),
                    ("qr_svg", string()),
                    ("qr_png", json!({"type": "string", "contentEncoding": "base64"})),
                ],
                &[],
            )),
        op("post", "/mfa/totp/confirm", "totpConfirm", "mfa", "Finish the enrolment with a first code")
            .session()
            .body(object(&[("enrolment", string()), ("code", secret("A code from the app"))], &[]))
            .answer(200, "Enrolled; recovery codes on the first factor (shown once)", schema_ref("RecoveryCodes"))
            .error(401, "`invalid_code`"),
        op("delete", "/mfa/totp", "totpDisable", "mfa", "Remove the authenticator app and the recovery codes")
            .recent()
            .empty(204, "Removed"),
        op("post", "/mfa/recovery-codes", "recoveryCodes", "mfa", "A new set of recovery codes; the old set stops working")
            .recent()
            .answer(200, "The codes (shown once)", schema_ref("RecoveryCodes")),
        op("post", "/devices/forget", "forgetDevices", "mfa", "Revoke every trusted-device cookie of the account")
            .session()
            .answer(200, "How many", object(&[("forgotten", json!({"type": "integer", "minimum": 0}))], &[])),
        op("get", "/mfa/devices", "listTrustedDevices", "mfa", "The browsers the account trusts (\"remember this device\" and throttling exemption), newest first")
            .session()
            .answer(200, "The devices (never a token)", object(&[("devices", json!({"type": "array", "items": schema_ref("TrustedDevice")}))], &[])),
        op("delete", "/mfa/devices/{id}", "forgetTrustedDevice", "mfa", "Forget one trusted browser: it needs the second factor again at its next sign-in")
            .session()
            .path_param("id", "The device id (from `GET /mfa/devices`)")
            .empty(204, "Forgotten")
            .error(404, "`not_found`: not one of the caller's devices"),
        op("post", "/magic-link/start", "magicLinkStart", "sign-in", "Mail a sign-in link bound to this browser")
            .body(email_body())
            .answer(202, "Sent if the address has an account (the same answer otherwise), with the binding cookie", status_answer(&["link_sent"]))
            .error(429, "`rate_limited`, with `Retry-After`"),
        op("post", "/magic-link/confirm", "magicLinkConfirm", "sign-in", "Sign in with the mailed link (needs the binding cookie)")
            .body(object(
                &[("token", json!({"type": "string", "description": "From the mailed link"}))],
                &[captcha_token()],
            ))
            .signs_in()
            .error(401, "`invalid_token` (also from another browser)"),
        op("post", "/otp/start", "otpStart", "sign-in", "Mail a sign-in code bound to this browser")
            .body(email_body())
            .answer(202, "Sent if the address has an account (the same answer otherwise), with the binding cookie", status_answer(&["code_sent"]))
            .error(429, "`rate_limited`, with `Retry-After`"),
        op("post", "/otp/verify", "otpVerify", "sign-in", "Sign in with the mailed or texted code (needs the binding cookie)")
            .body(object(&[("code", secret("The code"))], &[captcha_token()]))
            .signs_in()
            .error(401, "`invalid_code` or `invalid_token`"),
        op("post", "/sms/start", "smsStart", "sign-in", "Text a sign-in code bound to this browser; finish with `POST /otp/verify`")
            .body(object(&[("phone", json!({"type": "string", "description": "E.164"}))], &[]))
            .answer(202, "Sent if the number belongs to an account (the same answer otherwise), with the binding cookie", status_answer(&["code_sent"]))
            .error(429, "`rate_limited`, with `Retry-After`"),
    ];
    #[cfg(feature = "passkeys")]
    ops.extend(passkey_operations());
    #[cfg(feature = "tokens")]
    ops.extend(token_operations());
    #[cfg(feature = "federation")]
    ops.extend(federation_operations());
    #[cfg(feature = "consent")]
    ops.extend(privacy_operations());
    ops
}

/// The privacy centre's endpoints, served by [`privacy_router`](crate::privacy_router) mounted
/// beside [`router`](crate::router) under the same prefix.
#[cfg(feature = "consent")]
fn privacy_operations() -> Vec<Op> {
    let purpose = || {
        object(
            &[
                ("id", string()),
                ("description", string()),
                (
                    "legal_basis",
                    json!({"type": "string", "enum": ["consent", "contract", "legitimate_interest", "legal_obligation", "vital_interest", "public_task"]}),
                ),
                ("required", json!({"type": "boolean"})),
                ("sale_or_share", json!({"type": "boolean"})),
                (
                    "data_categories",
                    json!({"type": "array", "items": {"type": "string"}}),
                ),
                (
                    "permitted",
                    json!({"type": "boolean", "description": "What the ledger answers now"}),
                ),
                (
                    "state",
                    json!({"type": "string", "enum": ["granted", "withdrawn", "expired", "reconsent_required", "not_asked", "not_needed"]}),
                ),
                ("record_id", nullable(string())),
                (
                    "policy_version",
                    nullable(json!({"type": "integer", "minimum": 0})),
                ),
                ("at", nullable(time())),
                ("expires_at", nullable(time())),
            ],
            &[],
        )
    };
    vec![
        op("get", "/consents", "listConsents", "privacy", "The caller's consents: every purpose with its state, the policy in force, what awaits an answer")
            .session()
            .answer(200, "The consents", object(
                &[
                    ("policy", nullable(object(
                        &[
                            ("version", json!({"type": "integer"})),
                            ("material", json!({"type": "boolean"})),
                            ("effective_from", json!({"type": "integer", "description": "Unix time"})),
                        ],
                        &[("url", nullable(string()))],
                    ))),
                    ("purposes", json!({"type": "array", "items": purpose()})),
                    ("pending", json!({"type": "array", "items": schema_ref("PendingConsent")})),
                ],
                &[],
            )),
        op("put", "/consents/{purpose}", "setConsent", "privacy", "Give or withdraw consent to a purpose (recorded with the application, the channel and the SHA-256 of the text shown)")
            .session()
            .path_param("purpose", "The purpose id")
            .body(object(
                &[("granted", json!({"type": "boolean"}))],
                &[("text_shown", json!({"type": "string", "description": "The text the user agreed to (default: the purpose's description); at most 8 KiB"}))],
            ))
            .answer(200, "Recorded", object(&[("purpose", purpose()), ("receipt_id", string())], &[]))
            .error(400, "`invalid_input`: a purpose whose legal basis is not consent")
            .error(404, "`not_found`: no such purpose"),
        op("get", "/consents/receipts/key", "receiptKey", "privacy", "The public key consent receipts verify with, offline")
            .answer(200, "A JWK set", object(&[("keys", json!({"type": "array", "items": {"type": "object"}}))], &[])),
        op("get", "/consents/receipts/{id}", "consentReceipt", "privacy", "A signed receipt of one of the caller's consent records (Kantara Consent Receipt fields, ISO/IEC 27560 structure)")
            .session()
            .path_param("id", "The record id (`receipt_id`)")
            .answer_as(200, "The receipt, a JWS (compact, EdDSA)", "application/jose", json!({"type": "string"}))
            .error(404, "`not_found`: not one of the caller's records"),
        op("get", "/me/export", "exportMe", "privacy", "Everything held about the caller, as a JSON attachment")
            .recent()
            .answer(200, "The archive (`format` `ciam.user-export`)", object(
                &[
                    ("format", json!({"const": "ciam.user-export"})),
                    ("version", json!({"type": "integer"})),
                    ("generated_at", time()),
                    ("account", json!({"type": "object"})),
                    ("credentials", json!({"type": "array", "description": "Metadata only, never a secret"})),
                    ("linked_identities", json!({"type": "array"})),
                    ("sessions", json!({"type": "array"})),
                    ("audit", json!({"type": "array", "items": {"type": "object"}})),
                    ("sections", json!({"type": "object", "description": "One per registered contributor (for example `consents`)"})),
                ],
                &[],
            )),
        op("delete", "/me", "eraseMe", "privacy", "Erase the caller's account and data in every store and registered hook; the cookie is cleared")
            .recent()
            .body(object(&[], &[("current_password", secret("Instead of a recent sign-in"))]))
            .answer(200, "The erasure report (`pending` when a hook failed: the erasure resumes later)", object(
                &[
                    ("user", string()),
                    ("status", json!({"type": "string", "enum": ["complete", "pending"]})),
                    ("steps", json!({"type": "array", "items": object(
                        &[("name", string()), ("attempts", json!({"type": "integer"})), ("outcome", json!({"type": "object"}))],
                        &[],
                    )})),
                ],
                &[],
            ))
            .error(401, "`invalid_credentials`"),
    ]
}

#[cfg(feature = "passkeys")]
fn passkey_operations() -> Vec<Op> {
    let credential = || {
        object(
            &[("credential", schema_ref("PublicKeyCredential"))],
            &[(
                "name",
                json!({"type": "string", "description": "A name for the passkey"}),
            )],
        )
    };
    let passkey = || object(&[("passkey", schema_ref("Passkey"))], &[]);
    vec![
        op("post", "/passkeys/register/start", "passkeyRegisterStart", "passkeys", "Options to add a passkey to the account")
            .recent()
            .body(json!({"type": "object"}))
            .answer(200, "Creation options", schema_ref("CreationOptions")),
        op("post", "/passkeys/register/finish", "passkeyRegisterFinish", "passkeys", "Add the created passkey")
            .session()
            .body(credential())
            .answer(200, "Added", passkey())
            .error(401, "`passkey_rejected`"),
        op("post", "/passkeys/signup/start", "passkeySignupStart", "passkeys", "Options to sign up with a passkey alone")
            .body(object(&[("email", json!({"type": "string", "format": "email"}))], &[("profile", json!({"type": "object"}))]))
            .answer(200, "Creation options (also for a taken address)", schema_ref("CreationOptions")),
        op("post", "/passkeys/signup/finish", "passkeySignupFinish", "passkeys", "Create the account with the passkey")
            .body(credential())
            .answer(202, "A verification mail was sent (also for a taken address)", status_answer(&["verification_sent"]))
            .error(401, "`passkey_rejected`"),
        op("post", "/passkeys/login/start", "passkeyLoginStart", "passkeys", "Options to sign in with a passkey")
            .body(object(&[], &[("email", json!({"type": "string", "description": "Omit for a discoverable (usernameless) sign-in"}))]))
            .answer(200, "Request options (a stable, plausible list for an unknown address)", schema_ref("RequestOptions")),
        op("post", "/passkeys/login/finish", "passkeyLoginFinish", "passkeys", "Sign in with the passkey's assertion")
            .body(object(&[("credential", schema_ref("PublicKeyCredential"))], &[captcha_token()]))
            .signs_in()
            .error(401, "`passkey_rejected`"),
        op("post", "/passkeys/step-up/start", "passkeyStepUpStart", "passkeys", "Options to re-authenticate with one of the caller's passkeys")
            .session()
            .body(json!({"type": "object"}))
            .answer(200, "Request options", schema_ref("RequestOptions")),
        op("post", "/passkeys/step-up/finish", "passkeyStepUpFinish", "passkeys", "Re-authenticate: a new session replaces the old one")
            .session()
            .body(object(&[("credential", schema_ref("PublicKeyCredential"))], &[]))
            .answer(200, "Signed in again with `Set-Cookie`", schema_ref("SignedIn"))
            .error(401, "`passkey_rejected`"),
        op("get", "/passkeys", "listPasskeys", "passkeys", "The caller's passkeys")
            .session()
            .answer(200, "The passkeys", object(&[("passkeys", json!({"type": "array", "items": schema_ref("Passkey")}))], &[])),
        op("patch", "/passkeys/{id}", "renamePasskey", "passkeys", "Rename a passkey")
            .session()
            .path_param("id", "The passkey id")
            .body(object(&[("name", string())], &[]))
            .answer(200, "Renamed", passkey())
            .error(404, "`not_found`: not one of the caller's passkeys"),
        op("delete", "/passkeys/{id}", "deletePasskey", "passkeys", "Remove a passkey (never the last way to sign in)")
            .recent()
            .path_param("id", "The passkey id")
            .empty(204, "Removed")
            .error(404, "`not_found`: not one of the caller's passkeys")
            .error(409, "`last_sign_in_method`"),
    ]
}

#[cfg(feature = "tokens")]
fn token_operations() -> Vec<Op> {
    vec![
        op("post", "/token", "issueToken", "tokens", "An access and a refresh token for the current session")
            .session()
            .answer(200, "The pair (`Cache-Control: no-store`)", schema_ref("TokenPair")),
        op("post", "/token/refresh", "refreshToken", "tokens", "Trade a refresh token for a new pair (no cookie needed)")
            .body(object(&[("refresh_token", secret("The refresh token"))], &[]))
            .answer(200, "A new pair; the old refresh token is spent", schema_ref("TokenPair"))
            .error(400, "`invalid_grant`: unknown, spent, reused or ended (a spent one presented after the grace window revokes the session)"),
    ]
}

#[cfg(feature = "federation")]
fn federation_operations() -> Vec<Op> {
    vec![
        op("get", "/oidc/providers", "listProviders", "federation", "The configured identity providers")
            .answer(200, "The providers", object(&[("providers", json!({"type": "array", "items": schema_ref("Provider")}))], &[])),
        op("get", "/oidc/{provider}/start", "federationStart", "federation", "Start signing in (or linking, `link=1`) with a provider: a browser navigation")
            .path_param("provider", "The provider's name")
            .query("login_hint", "Passed to the provider")
            .query("link", "`1` to link the provider to the signed-in account (needs a recent sign-in; else 303 to the step-up sign-in)")
            .empty(303, "To the provider, with the binding cookie")
            .error(404, "`not_found`: no such provider"),
        op("get", "/oidc/{provider}/callback", "federationCallback", "federation", "The provider's answer: a browser navigation")
            .path_param("provider", "The provider's name")
            .empty(303, "To `/` signed in, `/login#mfa_token=…`, `/login#link=…` (with the pending-link cookie), `/account#linked=…`, or `/login#error=<code>`"),
        op("post", "/oidc/{provider}/callback", "federationFormPost", "federation", "The provider's `form_post` answer, re-issued as a same-site GET")
            .path_param("provider", "The provider's name")
            .empty(303, "To the GET callback with the same parameters"),
        op("get", "/identities", "listIdentities", "federation", "The caller's linked identities and the providers")
            .session()
            .answer(200, "The identities", object(
                &[
                    ("identities", json!({"type": "array", "items": schema_ref("Identity")})),
                    ("providers", json!({"type": "array", "items": schema_ref("Provider")})),
                ],
                &[],
            )),
        op("post", "/identities/link", "completeLink", "federation", "Link the pending identity (pending-link cookie) to the account")
            .recent()
            .answer(200, "Linked", object(&[("identity", schema_ref("Identity"))], &[]))
            .error(401, "`federation_rejected`"),
        op("delete", "/identities/{id}", "unlinkIdentity", "federation", "Unlink an identity (never the last way to sign in)")
            .recent()
            .path_param("id", "The identity id")
            .empty(204, "Unlinked")
            .error(404, "`not_found`: not one of the caller's identities")
            .error(409, "`last_sign_in_method`"),
    ]
}

/// Every `(method, path)` of the document.
#[cfg(test)]
pub(crate) fn documented() -> Vec<(&'static str, &'static str)> {
    operations().iter().map(|o| (o.method, o.path)).collect()
}
