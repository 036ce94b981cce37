//! Events the engine emits so applications can react (notify the user, propagate downstream).

use std::fmt::Debug;

use serde::Serialize;

use crate::id::{SessionId, UserId};

/// Something that happened to an account.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A new account was created.
    Registered {
        /// The account.
        user_id: UserId,
    },
    /// The account's e-mail address was verified.
    EmailVerified {
        /// The account.
        user_id: UserId,
    },
    /// The user signed in.
    SignedIn {
        /// The account.
        user_id: UserId,
        /// The new session.
        session_id: SessionId,
    },
    /// A sign-in failed. `user_id` is set when the account exists.
    SignInFailed {
        /// The account, when it exists.
        user_id: Option<UserId>,
        /// Machine-readable reason.
        reason: String,
    },
    /// The user signed out.
    SignedOut {
        /// The account.
        user_id: UserId,
        /// The ended session.
        session_id: SessionId,
    },
    /// The password was changed or reset.
    PasswordChanged {
        /// The account.
        user_id: UserId,
    },
    /// The e-mail address was changed.
    EmailChanged {
        /// The account.
        user_id: UserId,
    },
    /// A session was revoked (not by signing out of it).
    SessionRevoked {
        /// The account.
        user_id: UserId,
        /// The revoked session.
        session_id: SessionId,
    },
}

/// Receives engine events.
///
/// Called after the change is stored; a slow sink slows the flow, so queue work elsewhere.
///
/// ```
/// use ciam_core::event::{Event, EventSink};
///
/// #[derive(Debug, Default)]
/// struct Collect(std::sync::Mutex<Vec<Event>>);
///
/// #[async_trait::async_trait]
/// impl EventSink for Collect {
///     async fn publish(&self, event: &Event) {
///         self.0.lock().unwrap().push(event.clone());
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait EventSink: Send + Sync + Debug + 'static {
    /// Handles one event.
    async fn publish(&self, event: &Event);
}

/// Discards every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

#[async_trait::async_trait]
impl EventSink for NoEvents {
    async fn publish(&self, _event: &Event) {}
}
