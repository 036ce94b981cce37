//! `GET /me`'s answers, rendered once and reused while what they were rendered from is
//! unchanged.
//!
//! An answer is built from three inputs: the engine's in-process copy of the user
//! ([`Ciam::user_for_display`](ciam_core::Ciam::user_for_display)), the profiling stage asked
//! for, and the caller's [`AuthContext`]. The copy is an `Arc` that the engine replaces, never
//! changes: each re-read or write of the user makes a new one. So an answer kept with a
//! pointer to the copy it came from, its stage and an equal `AuthContext` is byte for byte the
//! answer a fresh rendering would give, and is never older than the copy itself. Any other
//! input (a new copy after a profile change, another stage, a step-up that changed the
//! session's level or methods, a slid expiry) renders again.
//!
//! The answers are kept per session, at most [`CAPACITY`] of them (about 1 KiB each). Every
//! [`SWEEP_EVERY`] renderings, and whenever the map is full, the answers whose user copy is
//! gone (the user changed, or was erased) or whose session has expired are dropped, so
//! personal data in them does not outlive its copy for long while the application serves
//! anyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use axum::body::Bytes;
use ciam_core::AuthContext;
use ciam_core::id::SessionId;
use ciam_core::user::User;
use time::OffsetDateTime;

/// Most answers kept; past it, the answers of ended sessions and replaced user copies go
/// first, and if none has, all of them.
pub(crate) const CAPACITY: usize = 4096;

/// Renderings between two sweeps of answers that can no longer be served.
pub(crate) const SWEEP_EVERY: u32 = 256;

/// The rendered answers, one per session.
#[derive(Debug, Default)]
pub(crate) struct MeAnswers {
    map: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    by_session: HashMap<SessionId, Rendered>,
    /// Answers put since the last sweep.
    puts: u32,
}

impl Kept {
    /// Drops the answers that can no longer be served: their user copy is gone (a later copy
    /// has a new address) or their session has expired.
    fn sweep(&mut self) {
        let now = OffsetDateTime::now_utc();
        self.by_session
            .retain(|_, r| r.user.strong_count() > 0 && r.auth.expires_at > now);
        self.puts = 0;
    }
}

/// One answer and what it was rendered from.
#[derive(Debug)]
struct Rendered {
    /// The user copy: compared by address. The `Weak` keeps the allocation (not the user),
    /// so no later copy can take the same address while this entry exists.
    user: Weak<User>,
    stage: Box<str>,
    auth: AuthContext,
    body: Bytes,
}

impl Rendered {
    fn answers(&self, user: &Arc<User>, stage: &str, auth: &AuthContext) -> bool {
        std::ptr::eq(self.user.as_ptr(), Arc::as_ptr(user))
            && *self.stage == *stage
            && self.auth == *auth
    }
}

impl MeAnswers {
    /// The answer rendered from exactly these inputs, if it is kept.
    pub(crate) fn get(&self, user: &Arc<User>, stage: &str, auth: &AuthContext) -> Option<Bytes> {
        let kept = self.map.lock().ok()?;
        let rendered = kept.by_session.get(&auth.session_id)?;
        rendered
            .answers(user, stage, auth)
            .then(|| rendered.body.clone())
    }

    /// Keeps `body`, rendered from these inputs, in place of the session's earlier answer.
    pub(crate) fn put(&self, user: &Arc<User>, stage: &str, auth: &AuthContext, body: Bytes) {
        let Ok(mut kept) = self.map.lock() else {
            return;
        };
        kept.puts += 1;
        let full =
            kept.by_session.len() >= CAPACITY && !kept.by_session.contains_key(&auth.session_id);
        if full || kept.puts >= SWEEP_EVERY {
            kept.sweep();
            if kept.by_session.len() >= CAPACITY {
                kept.by_session.clear();
            }
        }
        kept.by_session.insert(
            auth.session_id,
            Rendered {
                user: Arc::downgrade(user),
                stage: stage.into(),
                auth: auth.clone(),
                body,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().map_or(0, |k| k.by_session.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use ciam_core::id::UserId;
    use ciam_core::rng::{SecureRandom, SystemRandom};
    use ciam_core::secret::SecretString;
    use ciam_core::session::{Aal, AuthMethod};
    use ciam_core::{Registration, RequestContext, SignInOutcome};

    fn user(rng: &dyn SecureRandom) -> Arc<User> {
        let id = UserId::generate(rng).unwrap();
        Arc::new(User::new(id, OffsetDateTime::now_utc()))
    }

    /// A real caller's context (`AuthContext` is built by the engine only), signed in once
    /// per test; [`auth`] derives the others from it.
    async fn signed_in() -> AuthContext {
        let ciam = crate::tests::engine(crate::tests::HTTP_URL);
        let ctx = RequestContext::new(Some([203, 0, 113, 10].into()), None);
        let password = SecretString::from("correct horse battery staple 42".to_owned());
        ciam.register(
            Registration::new("me@example.com", Some(password.clone())),
            &ctx,
        )
        .await
        .unwrap();
        let SignInOutcome::SignedIn(s) = ciam
            .sign_in_password("me@example.com", &password, &ctx)
            .await
            .unwrap()
        else {
            panic!("signed in")
        };
        ciam.authenticate(&s.token, &ctx).await.unwrap()
    }

    /// A context of a new session of `user`, expiring in an hour.
    fn auth(rng: &dyn SecureRandom, base: &AuthContext, user: &User) -> AuthContext {
        let mut a = base.clone();
        a.user_id = user.id;
        a.session_id = SessionId::generate(rng).unwrap();
        a.aal = Aal::Aal1;
        a.amr = vec![AuthMethod::Pwd];
        a.expires_at = OffsetDateTime::now_utc() + time::Duration::hours(1);
        a
    }

    #[tokio::test]
    async fn an_answer_is_reused_only_for_the_same_inputs() {
        let rng = SystemRandom::new();
        let base = signed_in().await;
        let answers = MeAnswers::default();
        let u = user(&rng);
        let a = auth(&rng, &base, &u);
        assert_eq!(answers.get(&u, "signup", &a), None);
        answers.put(&u, "signup", &a, Bytes::from_static(b"{\"v\":1}"));
        assert_eq!(
            answers.get(&u, "signup", &a).as_deref(),
            Some(&b"{\"v\":1}"[..])
        );

        // An equal user in another copy: the engine re-read it.
        let copy = Arc::new(User::clone(&u));
        assert_eq!(answers.get(&copy, "signup", &a), None);
        // Another stage.
        assert_eq!(answers.get(&u, "engaged", &a), None);
        // The session stepped up, or its expiry slid.
        let mut stepped = a.clone();
        stepped.aal = Aal::Aal2;
        stepped.amr = vec![AuthMethod::Pwd, AuthMethod::Otp];
        assert_eq!(answers.get(&u, "signup", &stepped), None);
        let mut slid = a.clone();
        slid.expires_at = a.expires_at + time::Duration::seconds(1);
        assert_eq!(answers.get(&u, "signup", &slid), None);
        // Another session of the same user.
        let other = auth(&rng, &base, &u);
        assert_eq!(answers.get(&u, "signup", &other), None);

        // A new rendering replaces the session's answer.
        answers.put(&copy, "signup", &a, Bytes::from_static(b"{\"v\":2}"));
        assert_eq!(answers.get(&u, "signup", &a), None);
        assert_eq!(
            answers.get(&copy, "signup", &a).as_deref(),
            Some(&b"{\"v\":2}"[..])
        );
        assert_eq!(answers.len(), 1);
    }

    #[tokio::test]
    async fn a_dropped_copy_is_never_mistaken_for_a_new_one() {
        let rng = SystemRandom::new();
        let base = signed_in().await;
        let answers = MeAnswers::default();
        let u = user(&rng);
        let a = auth(&rng, &base, &u);
        answers.put(&u, "signup", &a, Bytes::from_static(b"old"));
        drop(u);
        // The entry's `Weak` keeps the old allocation, so the new copies cannot reuse its
        // address.
        for _ in 0..100 {
            let fresh = user(&rng);
            assert_eq!(answers.get(&fresh, "signup", &a), None);
        }
    }

    #[tokio::test]
    async fn answers_that_cannot_be_served_are_swept_every_so_many_renderings() {
        let rng = SystemRandom::new();
        let base = signed_in().await;
        let answers = MeAnswers::default();
        // An answer whose user copy is then replaced (dropped), and one whose session has
        // ended: neither can be served again.
        let gone = user(&rng);
        answers.put(
            &gone,
            "signup",
            &auth(&rng, &base, &gone),
            Bytes::from_static(b"gone"),
        );
        drop(gone);
        let kept = user(&rng);
        let mut ended = auth(&rng, &base, &kept);
        ended.expires_at = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        answers.put(&kept, "signup", &ended, Bytes::from_static(b"ended"));
        let live = auth(&rng, &base, &kept);
        answers.put(&kept, "signup", &live, Bytes::from_static(b"live"));
        // Renderings up to the sweep keep them all.
        let filler = usize::try_from(SWEEP_EVERY).unwrap() - 4;
        for _ in 0..filler {
            answers.put(
                &kept,
                "signup",
                &auth(&rng, &base, &kept),
                Bytes::from_static(b"x"),
            );
        }
        assert_eq!(answers.len(), 3 + filler);
        // The next one sweeps first: the two dead answers go, the live ones stay.
        answers.put(
            &kept,
            "signup",
            &auth(&rng, &base, &kept),
            Bytes::from_static(b"x"),
        );
        assert_eq!(answers.len(), 3 + filler + 1 - 2);
        assert_eq!(answers.get(&kept, "signup", &ended), None);
        assert_eq!(
            answers.get(&kept, "signup", &live).as_deref(),
            Some(&b"live"[..])
        );
    }

    #[tokio::test]
    async fn a_full_map_sweeps_and_then_starts_over() {
        let rng = SystemRandom::new();
        let base = signed_in().await;
        let answers = MeAnswers::default();
        // Full of live answers, one user copy each.
        let mut copies: Vec<(Arc<User>, AuthContext)> = (0..CAPACITY)
            .map(|_| {
                let u = user(&rng);
                let a = auth(&rng, &base, &u);
                answers.put(&u, "signup", &a, Bytes::from_static(b"live"));
                (u, a)
            })
            .collect();
        assert_eq!(answers.len(), CAPACITY);
        // Half the copies are replaced; the next new session sweeps their answers out.
        let replaced = copies.split_off(CAPACITY / 2);
        drop(replaced);
        let (u, a) = &copies[0];
        let newcomer = auth(&rng, &base, u);
        answers.put(u, "signup", &newcomer, Bytes::from_static(b"new"));
        assert_eq!(answers.len(), CAPACITY / 2 + 1);
        assert_eq!(answers.get(u, "signup", a).as_deref(), Some(&b"live"[..]));

        // When every answer is live, a full map starts over.
        while answers.len() < CAPACITY {
            answers.put(
                u,
                "signup",
                &auth(&rng, &base, u),
                Bytes::from_static(b"live"),
            );
        }
        let last = auth(&rng, &base, u);
        answers.put(u, "signup", &last, Bytes::from_static(b"last"));
        assert_eq!(answers.len(), 1);
        assert_eq!(answers.get(u, "signup", a), None);
        assert_eq!(
            answers.get(u, "signup", &last).as_deref(),
            Some(&b"last"[..])
        );
    }
}
