//! The consent gate: what a sign-in must ask the user to agree to (again).
//!
//! ciam-core knows nothing of consent records; a consent ledger (ciam-consent's, or the
//! application's own) plugs in through [`ConsentGate`], registered with
//! [`CiamBuilder::consent_gate`](crate::CiamBuilder::consent_gate). Every successful sign-in
//! (password, passkey, passwordless, second factor, federation, step-up) asks it once the
//! credential is proven and puts its answer in [`SignedIn::consent_required`]. The session is
//! issued anyway: consent is not an authentication factor, and the ledger, not the session,
//! enforces it (a purpose awaiting re-consent is denied by the ledger's check until granted,
//! so `RequireConsent` routes refuse it while the rest of the account keeps working).
//!
//! [`SignedIn::consent_required`]: crate::SignedIn::consent_required

use std::fmt::Debug;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::user::User;

/// One purpose the user must be asked about, because the policy changed materially since
/// they agreed (or because the application requires an answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PendingConsent {
    /// The purpose's identifier (for example `newsletter`).
    pub purpose: String,
    /// What the purpose is, in words fit to show.
    pub description: String,
    /// The policy version the user must agree to now.
    pub policy_version: u32,
    /// The policy version of the user's current agreement, if they gave one.
    pub consented_under: Option<u32>,
    /// Where the policy document can be read, if known.
    pub policy_url: Option<String>,
}

impl PendingConsent {
    /// A pending consent for `purpose` under `policy_version`.
    pub fn new(purpose: &str, description: &str, policy_version: u32) -> Self {
        Self {
            purpose: purpose.to_owned(),
            description: description.to_owned(),
            policy_version,
            consented_under: None,
            policy_url: None,
        }
    }

    /// Sets the version the user's current agreement was given under.
    #[must_use]
    pub fn consented_under(mut self, version: u32) -> Self {
        self.consented_under = Some(version);
        self
    }

    /// Sets where the policy can be read.
    #[must_use]
    pub fn policy_url(mut self, url: &str) -> Self {
        self.policy_url = Some(url.to_owned());
        self
    }
}

/// Asked at every successful sign-in which consents the user must give (again).
///
/// Object-safe (`async_trait`) because the engine holds it as `Arc<dyn ConsentGate>`; it runs
/// once per sign-in, not per request, so the boxed future costs nothing that matters.
///
/// An error fails the sign-in with [`Error::Unavailable`](crate::Error::Unavailable) or
/// whatever the gate returns: a sign-in that cannot learn about a material policy change must
/// not let the user carry on as if there were none. Implementations should also make the
/// change enforceable (ciam-consent's records a "re-consent required" event, so its `check`
/// denies the purpose until the user answers).
///
/// ```
/// use ciam_core::{ConsentGate, PendingConsent};
/// use ciam_core::user::User;
///
/// /// Everyone must accept the terms, version 3, until the application stores that they did.
/// #[derive(Debug)]
/// struct Terms;
///
/// #[async_trait::async_trait]
/// impl ConsentGate for Terms {
///     async fn pending(&self, user: &User) -> ciam_core::Result<Vec<PendingConsent>> {
///         let accepted = user.profile.get("terms_version").and_then(|v| v.as_u64());
///         Ok(if accepted == Some(3) {
///             Vec::new()
///         } else {
///             vec![PendingConsent::new("terms", "The terms of service", 3)]
///         })
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait ConsentGate: Send + Sync + Debug + 'static {
    /// The consents `user` must be asked for now; empty when none.
    async fn pending(&self, user: &User) -> Result<Vec<PendingConsent>>;
}
