//! ciam-core: the model, storage traits and engine of ciam.
//!
//! (The full guide is written in `ciam/src/lib.rs`; this crate root is completed with it.)

pub mod audit;
pub mod challenge;
pub mod clock;
pub mod credential;
pub mod error;
pub mod event;
pub mod id;
pub mod identifier;
pub mod mail;
pub mod password;
pub mod profile;
pub mod rng;
pub mod secret;
pub mod session;
pub mod store;
pub mod user;

mod engine;

pub use engine::account::Registration;
pub use engine::config::{LinkPaths, Policy, SessionPolicy};
pub use engine::context::{AuthContext, RequestContext};
pub use engine::outcome::{RegisterOutcome, SignInOutcome, SignedIn, VerifyOutcome};
pub use engine::{BuildError, Ciam, CiamBuilder};
pub use error::{Error, ErrorKind, Result};
pub use secret::{OpaqueToken, SecretString};
