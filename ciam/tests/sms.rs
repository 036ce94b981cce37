//! SMS sign-in codes through the `SmsSender` hook, on memory and SQLite. There is no SMS peer
//! to talk to (ciam ships no vendor), so the sender here is the application's side of the
//! trait: it keeps what it was asked to send.
// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::{Arc, Mutex};

use ciam::identifier::Phone;
use ciam::risk::{SmsError, SmsSender};
use ciam::store::Backend;
use ciam::{Error, Policy, SignInOutcome};
use support::{Harness, ctx, harness_with, on_both_backends};

#[derive(Debug, Default)]
struct Texts(Mutex<Vec<(String, String)>>);

#[async_trait::async_trait]
impl SmsSender for Texts {
    async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError> {
        self.0
            .lock()
            .unwrap()
            .push((to.as_str().to_owned(), text.to_owned()));
        Ok(())
    }
}

impl Texts {
    async fn last_code(&self) -> String {
        for _ in 0..100 {
            if let Some((_, text)) = self.0.lock().unwrap().last() {
                return text.chars().take(6).collect();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no SMS sent");
    }
}

fn with_sms<B: Backend>(store: Arc<B>) -> (Harness<B>, Arc<Texts>) {
    let texts = Arc::new(Texts::default());
    let sender = texts.clone();
    let h = harness_with(store, Policy::default(), move |b| b.sms(sender));
    (h, texts)
}

/// A texted code signs in from the browser that asked, proves the number, and works once;
/// an unknown number gets the same answer, no text, and refuses every code alike.
async fn sms_code_signs_in<B: Backend>(store: Arc<B>) {
    let (h, texts) = with_sms(store);
    let signed = h.register_verified("eve@example.com").await;
    let mut user = signed.user.clone();
    user.phone = Some(Phone::parse("+44 7700 900123").unwrap());
    h.store.update_user(&user).await.unwrap();

    let binding = h
        .ciam
        .start_sms_code("+447700900123", &ctx())
        .await
        .unwrap();
    let code = texts.last_code().await;
    let (to, text) = texts.0.lock().unwrap().last().cloned().unwrap();
    assert_eq!(to, "+447700900123");
    assert!(text.contains("Acme sign-in code"), "{text}");
    assert_eq!(code.len(), 6);
    assert!(code.chars().all(|c| c.is_ascii_digit()));

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let r = h
        .ciam
        .verify_sign_in_code(Some(&binding), wrong, &ctx())
        .await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
    let outcome = h
        .ciam
        .verify_sign_in_code(Some(&binding), &code, &ctx())
        .await
        .unwrap();
    let SignInOutcome::SignedIn(s) = outcome else {
        panic!("expected signed in, got {outcome:?}");
    };
    assert_eq!(
        s.session.amr.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        ["sms"]
    );
    assert!(s.user.phone_verified_at.is_some(), "the number is proven");
    let again = h
        .ciam
        .verify_sign_in_code(Some(&binding), &code, &ctx())
        .await;
    assert!(matches!(again, Err(Error::InvalidToken)), "{again:?}");
    let entries = h.ciam.audit_log(user.id, 20).await.unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action.as_str() == "sign_in_passwordless" && e.reason == "sms_code"),
        "{entries:?}"
    );

    let sent_before = texts.0.lock().unwrap().len();
    let stranger = h
        .ciam
        .start_sms_code("+44 7700 900999", &ctx())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        texts.0.lock().unwrap().len(),
        sent_before,
        "no text to an unknown number"
    );
    let r = h
        .ciam
        .verify_sign_in_code(Some(&stranger), "123456", &ctx())
        .await;
    assert!(matches!(r, Err(Error::InvalidCode)), "{r:?}");
    let r = h.ciam.start_sms_code("not a number", &ctx()).await;
    assert!(matches!(r, Err(Error::InvalidIdentifier(_))), "{r:?}");
}

on_both_backends!(sms_code_signs_in);
