//! Outgoing mail: the [`Mailer`] transport trait, the [`MailTemplates`] the application can
//! replace, a [`ConsoleMailer`] for development and, with feature `smtp`, an SMTP transport.

use std::fmt::Debug;

use crate::identifier::Email;

#[cfg(feature = "smtp")]
mod smtp;
#[cfg(feature = "smtp")]
pub use smtp::{SmtpMailer, SmtpUrlError};

/// A rendered message ready to send.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutgoingMail {
    /// Recipient.
    pub to: Email,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

impl OutgoingMail {
    /// Builds a message.
    pub fn new(to: Email, rendered: RenderedMail) -> Self {
        Self {
            to,
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        }
    }
}

impl Debug for OutgoingMail {
    // Bodies carry one-time links: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Mail delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed")]
pub struct MailError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Delivers mail.
///
/// ```
/// use ciam_core::mail::{MailError, Mailer, OutgoingMail};
///
/// #[derive(Debug, Default)]
/// struct Outbox(std::sync::Mutex<Vec<OutgoingMail>>);
///
/// #[async_trait::async_trait]
/// impl Mailer for Outbox {
///     async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
///         self.0.lock().unwrap().push(mail.clone());
///         Ok(())
///     }
/// }
/// ```
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + Debug + 'static {
    /// Sends one message.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}

/// Writes each message to standard error. For development only: the bodies contain live links.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConsoleMailer;

#[async_trait::async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        eprintln!(
            "---- mail to {} ----\nSubject: {}\n\n{}\n---- end of mail ----",
            mail.to, mail.subject, mail.text
        );
        Ok(())
    }
}

/// Subject and bodies of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Which message to render, with its data. Links are absolute URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailKind {
    /// Confirm the address of a new account.
    VerifyEmail {
        /// The verification link.
        link: String,
    },
    /// Someone tried to register with an address that already has an account.
    AccountExists {
        /// Where to sign in.
        sign_in_link: String,
        /// Where to reset the password.
        reset_link: String,
    },
    /// Reset a forgotten password.
    ResetPassword {
        /// The reset link.
        link: String,
    },
    /// The password was changed or reset.
    PasswordChanged,
    /// Confirm a new address (sent to the new address).
    ConfirmNewEmail {
        /// The confirmation link.
        link: String,
    },
    /// An address change was requested (sent to the old address).
    EmailChangeRequested,
    /// The address was changed (sent to the old address).
    EmailChanged,
    /// A one-time sign-in link (opening it shows a confirm step; only that signs in).
    MagicLink {
        /// The sign-in link.
        link: String,
    },
    /// A one-time sign-in code.
    SignInCode {
        /// The code (digits).
        code: String,
    },
    /// The account has been dormant; it will be erased unless the user signs in.
    DormantAccount {
        /// The day (`YYYY-MM-DD`, UTC) from which the account may be erased.
        erase_on: String,
        /// Where to sign in to keep it.
        sign_in_link: String,
    },
}

/// Renders messages. Implement it to use your own wording and layout.
///
/// ```
/// use ciam_core::mail::{DefaultTemplates, MailKind, MailTemplates, RenderedMail};
///
/// #[derive(Debug)]
/// struct Branded(DefaultTemplates);
///
/// impl MailTemplates for Branded {
///     fn render(&self, kind: &MailKind) -> RenderedMail {
///         let mut mail = self.0.render(kind);
///         mail.subject = format!("[Acme] {}", mail.subject);
///         mail
///     }
/// }
/// ```
pub trait MailTemplates: Send + Sync + Debug + 'static {
    /// Renders one message.
    fn render(&self, kind: &MailKind) -> RenderedMail;
}

/// Plain, accessible default templates in English.
#[derive(Debug, Clone)]
pub struct DefaultTemplates {
    app_name: String,
}

impl DefaultTemplates {
    /// Templates that name the application `app_name`.
    pub fn new(app_name: impl Into<String>) -> Self {
        Self {
            app_name: app_name.into(),
        }
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

impl MailTemplates for DefaultTemplates {
    fn render(&self, kind: &MailKind) -> RenderedMail {
        let app = &self.app_name;
        let (subject, paragraphs, link): (String, Vec<String>, Option<(&str, &str)>) = match kind {
            MailKind::VerifyEmail { link } => (
                format!("Confirm your e-mail address for {app}"),
                vec!["Welcome! Follow this link to confirm your e-mail address:".into()],
                Some(("Confirm my address", link.as_str())),
            ),
            MailKind::AccountExists { sign_in_link, reset_link } => (
                format!("Sign-up attempt at {app}"),
                vec![
                    "Someone tried to create an account with this address, but you already have one.".into(),
                    format!("If it was you, sign in at {sign_in_link}. If you forgot your password, reset it at {reset_link}."),
                    "If it was not you, you can ignore this message.".into(),
                ],
                None,
            ),
            MailKind::ResetPassword { link } => (
                format!("Reset your {app} password"),
                vec!["Follow this link to choose a new password. It works once and expires soon:".into()],
                Some(("Reset my password", link.as_str())),
            ),
            MailKind::PasswordChanged => (
                format!("Your {app} password was changed"),
                vec!["Your password was just changed and your other sessions were signed out. If this was not you, reset your password now.".into()],
                None,
            ),
            MailKind::ConfirmNewEmail { link } => (
                format!("Confirm your new e-mail address for {app}"),
                vec!["Follow this link to make this your account's address:".into()],
                Some(("Confirm the new address", link.as_str())),
            ),
            MailKind::EmailChangeRequested => (
                format!("E-mail change requested at {app}"),
                vec!["Someone signed in to your account asked to change its e-mail address. Nothing changes until the new address is confirmed. If this was not you, change your password.".into()],
                None,
            ),
            MailKind::EmailChanged => (
                format!("Your {app} e-mail address was changed"),
                vec!["Your account no longer uses this address. If this was not you, contact support.".into()],
                None,
            ),
            MailKind::MagicLink { link } => (
                format!("Your {app} sign-in link"),
                vec!["Follow this link in the browser where you asked for it to sign in. It works once and expires soon. If you did not ask for it, ignore this message.".into()],
                Some(("Sign in", link.as_str())),
            ),
            MailKind::SignInCode { code } => (
                format!("{code} is your {app} sign-in code"),
                vec![
                    format!("Your sign-in code is {code}"),
                    "Type it in the browser where you asked for it. It works once and expires soon. If you did not ask for it, ignore this message.".into(),
                ],
                None,
            ),
            MailKind::DormantAccount {
                erase_on,
                sign_in_link,
            } => (
                format!("Your {app} account will be deleted"),
                vec![format!(
                    "You have not signed in to {app} for a long time. To protect your data, your account and everything held about you will be deleted from {erase_on}. Sign in before then to keep it."
                )],
                Some(("Sign in", sign_in_link.as_str())),
            ),
        };
        let mut text = paragraphs.join("\n\n");
        let mut html = paragraphs
            .iter()
            .map(|p| format!("<p>{}</p>", escape_html(p)))
            .collect::<String>();
        if let Some((label, url)) = link {
            text.push_str(&format!("\n\n{url}\n"));
            html.push_str(&format!(
                "<p><a href=\"{}\">{}</a></p>",
                escape_html(url),
                escape_html(label)
            ));
        }
        text.push_str(&format!("\n\n-- {app}\n"));
        RenderedMail {
            subject,
            text,
            html: format!("<!doctype html><html><body>{html}</body></html>"),
        }
    }
}
