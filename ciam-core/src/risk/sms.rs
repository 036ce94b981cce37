//! Outgoing text messages: the [`SmsSender`] trait and [`ConsoleSms`] for development.

use std::fmt::Debug;

use crate::identifier::Phone;

/// Text message delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("text message delivery failed")]
pub struct SmsError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Delivers text messages (one-time codes). No vendor is built in: implement it over your
/// provider's API.
///
/// ```
/// use ciam_core::identifier::Phone;
/// use ciam_core::risk::{SmsError, SmsSender};
///
/// #[derive(Debug, Default)]
/// struct Outbox(std::sync::Mutex<Vec<(Phone, String)>>);
///
/// #[async_trait::async_trait]
/// impl SmsSender for Outbox {
///     async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError> {
///         self.0.lock().unwrap().push((to.clone(), text.to_owned()));
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync + Debug + 'static {
    /// Sends `text` to `to`.
    async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError>;
}

/// Logs each message through `tracing` (INFO, target `ciam_core::risk::sms`) instead of
/// sending it. For development.
///
/// The code in the message is **redacted except for its length**: every word containing a
/// digit has its letters and digits replaced by `*`, so `Your code is 123456.` is logged as
/// `Your code is ******.`. Logs are kept longer and read by more people (log aggregation,
/// shared terminals, CI output) than the phone the code is meant for; a live code in them
/// would let anyone reading them finish a sign-in. The length remains so that a developer can
/// still see that a code of the right shape was sent; read the code itself from the
/// challenge in your test double or database.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleSms;

/// `text` with the letters and digits of every word that contains a digit replaced by `*`.
pub(crate) fn redact_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().any(|c| c.is_ascii_digit()) {
            out.extend(
                word.chars()
                    .map(|c| if c.is_alphanumeric() { '*' } else { c }),
            );
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

#[async_trait::async_trait]
impl SmsSender for ConsoleSms {
    async fn send(&self, to: &Phone, text: &str) -> Result<(), SmsError> {
        tracing::info!(target: "ciam_core::risk::sms", to = %to, text = %redact_codes(text), "text message (console, not sent)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::redact_codes;

    #[test]
    fn codes_are_redacted_to_their_length() {
        assert_eq!(redact_codes("Your code is 123456."), "Your code is ******.");
        assert_eq!(
            redact_codes("Code: AB12-CD34 (Acme)"),
            "Code: ****-**** (Acme)"
        );
        assert_eq!(redact_codes("no code here"), "no code here");
    }
}
