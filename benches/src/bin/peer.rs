//! The peer stack the performance harness measures ciam against: a small axum app built the
//! way the axum-login documentation and examples build one (axum-login 0.18 over
//! tower-sessions 0.14 with its memory store, argon2 verification in `spawn_blocking`).
//!
//! It does the same work as the quickstart on the measured routes:
//! - `POST /auth/login` with `{"email", "password"}`: looks the user up, verifies the argon2id
//!   hash (the same PHC strings as the quickstart's accounts, so the same parameters), and
//!   signs in (a new session, a `Set-Cookie`).
//! - `GET /auth/me`: the signed-in user and the session as JSON, or 401 (`login_required!`):
//!   the same document as the quickstart's `/auth/me` (the user with its profile, two profile
//!   prompts and creation time; the session's ids, assurance level, methods, sign-in time and
//!   expiry), so both serialize an answer of the same size. The sign-in time and methods are
//!   kept in the session at sign-in and read back from it, as an axum-login app does.
//! - `GET /auth/whoami`: `{"id", "email"}` only (38 bytes), the peer's `/auth/me` before
//!   2026-11-24; kept so figures can be compared with the earlier runs in `benches/README.md`.
//! - `GET /healthz`: `ok`.
//!
//! Settings from the environment: `PEER_BIND` (default `127.0.0.1:0`; the bound address is
//! printed as `listening on <addr>` on stdout) and `PEER_USERS`, a file of `email<TAB>phc`
//! lines. Not a test double: nothing in ciam's tests uses it; it exists to be measured.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordVerifier};
use axum::Router;
use axum::extract::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum_login::{AuthManagerLayerBuilder, AuthSession, AuthUser, AuthnBackend, login_required};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::{MemoryStore, SessionManagerLayer};

/// A user of the peer app.
#[derive(Clone)]
struct User {
    id: u64,
    /// The public id, as ciam writes one (`usr_` and 32 hex digits).
    uid: String,
    email: String,
    created_at: OffsetDateTime,
    phc: String,
}

/// A profile field worth asking for, as the quickstart's schema declares two.
#[derive(Serialize)]
struct Prompt {
    name: &'static str,
    label: &'static str,
    kind: Kind,
    stage: &'static str,
}

/// A prompt's type, written as ciam's `FieldKind` is.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Kind {
    Text { max_chars: u32 },
    Choice { options: &'static [&'static str] },
}

/// The two prompts the quickstart's `/auth/me` carries, built once.
fn prompts() -> &'static [Prompt] {
    static PROMPTS: OnceLock<Vec<Prompt>> = OnceLock::new();
    PROMPTS.get_or_init(|| {
        vec![
            Prompt {
                name: "display_name",
                label: "What should we call you?",
                kind: Kind::Text { max_chars: 64 },
                stage: "signup",
            },
            Prompt {
                name: "country",
                label: "Where do you live?",
                kind: Kind::Choice {
                    options: &["DE", "FR", "GB", "US", "other"],
                },
                stage: "signup",
            },
        ]
    })
}

/// What the peer keeps in the session at sign-in, beside axum-login's own keys.
#[derive(Serialize, Deserialize)]
struct SignInFacts {
    #[serde(with = "time::serde::rfc3339")]
    auth_time: OffsetDateTime,
    amr: Vec<String>,
}

/// The session key of [`SignInFacts`].
const FACTS: &str = "ciam_peer.facts";

/// The answer of `GET /auth/me`: the quickstart's document.
#[derive(Serialize)]
struct Me<'a> {
    user: UserView<'a>,
    session: SessionView<'a>,
}

#[derive(Serialize)]
struct UserView<'a> {
    id: &'a str,
    email: &'a str,
    email_verified: bool,
    profile: serde_json::Map<String, serde_json::Value>,
    prompts: &'static [Prompt],
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Serialize)]
struct SessionView<'a> {
    user_id: &'a str,
    session_id: String,
    aal: u8,
    amr: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    auth_time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// The answer of `GET /auth/whoami`.
#[derive(Serialize)]
struct WhoAmI<'a> {
    id: u64,
    email: &'a str,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuthUser for User {
    type Id = u64;

    fn id(&self) -> u64 {
        self.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        // What the axum-login examples do: a password change invalidates sessions.
        self.phc.as_bytes()
    }
}

/// Sign-in form.
#[derive(Clone, Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

/// Users by e-mail and by id.
#[derive(Clone, Debug, Default)]
struct Backend {
    by_email: Arc<HashMap<String, User>>,
    by_id: Arc<HashMap<u64, User>>,
}

/// The backend's error.
#[derive(Debug, thiserror::Error)]
#[error("password verification task failed")]
struct BackendError;

impl AuthnBackend for Backend {
    type User = User;
    type Credentials = Credentials;
    type Error = BackendError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<User>, BackendError> {
        let Some(user) = self
            .by_email
            .get(&creds.email.to_ascii_lowercase())
            .cloned()
        else {
            return Ok(None);
        };
        // As the axum-login examples do (through password-auth): verify on the blocking pool,
        // with a fresh Argon2 context (and so a fresh memory block) per call.
        let ok = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&user.phc)
                .map(|h| {
                    Argon2::default()
                        .verify_password(creds.password.as_bytes(), &h)
                        .is_ok()
                })
                .unwrap_or(false)
                .then_some(user)
        })
        .await
        .map_err(|_| BackendError)?;
        Ok(ok)
    }

    async fn get_user(&self, id: &u64) -> Result<Option<User>, BackendError> {
        Ok(self.by_id.get(id).cloned())
    }
}

async fn login(
    mut auth: AuthSession<Backend>,
    Json(creds): Json<Credentials>,
) -> impl IntoResponse {
    match auth.authenticate(creds).await {
        Ok(Some(user)) => match sign_in(&mut auth, &user).await {
            Ok(()) => (
                StatusCode::OK,
                Json(serde_json::json!({ "status": "signed_in" })),
            ),
            Err(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({})),
            ),
        },
        Ok(None) => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({ "error": "invalid_credentials" })),
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({})),
        ),
    }
}

/// Signs `user` in and keeps the sign-in time and methods in the new session.
async fn sign_in(auth: &mut AuthSession<Backend>, user: &User) -> Result<(), ()> {
    auth.login(user).await.map_err(|_| ())?;
    let facts = SignInFacts {
        auth_time: OffsetDateTime::now_utc(),
        amr: vec!["pwd".to_owned()],
    };
    auth.session.insert(FACTS, facts).await.map_err(|_| ())
}

async fn me(auth: AuthSession<Backend>) -> impl IntoResponse {
    let Some(user) = &auth.user else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let (Ok(Some(facts)), Some(id)) = (
        auth.session.get::<SignInFacts>(FACTS).await,
        auth.session.id(),
    ) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let expires_at = auth.session.expiry_date();
    Json(Me {
        user: UserView {
            id: &user.uid,
            email: &user.email,
            email_verified: true,
            profile: serde_json::Map::new(),
            prompts: prompts(),
            created_at: user.created_at,
        },
        session: SessionView {
            user_id: &user.uid,
            session_id: id.to_string(),
            aal: 1,
            amr: facts.amr,
            auth_time: facts.auth_time,
            expires_at,
        },
    })
    .into_response()
}

async fn whoami(auth: AuthSession<Backend>) -> impl IntoResponse {
    match &auth.user {
        Some(user) => Json(WhoAmI {
            id: user.id,
            email: &user.email,
        })
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

fn load_users(path: &str) -> Result<Backend, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("PEER_USERS {path}: {e}"))?;
    let mut by_email = HashMap::new();
    let mut by_id = HashMap::new();
    for (n, line) in text.lines().filter(|l| !l.is_empty()).enumerate() {
        let (email, phc) = line
            .split_once('\t')
            .ok_or_else(|| format!("PEER_USERS line {}: expected email<TAB>phc", n + 1))?;
        let id = n as u64 + 1;
        let user = User {
            id,
            uid: format!("usr_{id:032x}"),
            email: email.to_ascii_lowercase(),
            created_at: OffsetDateTime::now_utc(),
            phc: phc.to_owned(),
        };
        by_email.insert(user.email.clone(), user.clone());
        by_id.insert(user.id, user);
    }
    Ok(Backend {
        by_email: Arc::new(by_email),
        by_id: Arc::new(by_id),
    })
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let bind: SocketAddr = std::env::var("PEER_BIND")
        .unwrap_or_else(|_| "127.0.0.1:0".to_owned())
        .parse()
        .map_err(|e| format!("PEER_BIND: {e}"))?;
    let users = std::env::var("PEER_USERS").map_err(|_| "PEER_USERS is not set".to_owned())?;
    let backend = load_users(&users)?;

    let sessions = SessionManagerLayer::new(MemoryStore::default()).with_secure(false);
    let auth = AuthManagerLayerBuilder::new(backend, sessions).build();
    let app = Router::new()
        .route("/auth/me", get(me))
        .route("/auth/whoami", get(whoami))
        .route_layer(login_required!(Backend))
        .route("/auth/login", post(login))
        .route("/healthz", get(|| async { "ok" }))
        .layer(auth);

    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("bind {bind}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {local}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}
