//! SmtpMailer against a real SMTP server (aiosmtpd, started by scripts/test.sh): plain SMTP
//! on loopback, and STARTTLS required with a certificate the mailer must verify.
#![cfg(feature = "smtp")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use ciam_core::identifier::Email;
use ciam_core::mail::{
    DefaultTemplates, MailKind, MailTemplates, Mailer, OutgoingMail, SmtpMailer,
};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the suite with scripts/test.sh, which starts the SMTP sinks")
    })
}

fn unique_recipient(tag: &str) -> Email {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    Email::parse(&format!("{tag}-{n}@example.test")).unwrap()
}

/// Waits (bounded) for the message to `to` in the Maildir and returns it.
async fn delivered(maildir: &str, to: &Email) -> String {
    let dir = PathBuf::from(maildir).join("new");
    for _ in 0..100 {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                if text.contains(&format!("X-RcptTo: {}", to.as_str())) {
                    return text;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail to {to} in {maildir}");
}

fn mail(to: &Email) -> OutgoingMail {
    let link = "https://acme.example/verify-email?token=abc123".to_owned();
    OutgoingMail::new(
        to.clone(),
        DefaultTemplates::new("Acme").render(&MailKind::VerifyEmail { link }),
    )
}

#[tokio::test]
async fn plain_smtp_delivers_text_and_html() {
    let port = env("CIAM_TEST_SMTP_PORT");
    let mailer = SmtpMailer::from_url(
        &format!("smtp://127.0.0.1:{port}?tls=none"),
        "Acme <noreply@acme.example>",
    )
    .unwrap();
    let to = unique_recipient("plain");
    mailer.send(&mail(&to)).await.unwrap();
    let raw = delivered(&env("CIAM_TEST_SMTP_MAILDIR"), &to).await;
    assert!(
        raw.contains("Subject: Confirm your e-mail address for Acme"),
        "{raw}"
    );
    assert!(raw.contains("From: Acme <noreply@acme.example>"), "{raw}");
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(
        raw.contains("text/plain") && raw.contains("text/html"),
        "{raw}"
    );
}

#[tokio::test]
async fn starttls_required_verifies_the_server_certificate() {
    let port = env("CIAM_TEST_SMTP_TLS_PORT");
    let cert = std::fs::read(env("CIAM_TEST_SMTP_TLS_CA")).unwrap();
    let url = format!("smtp://localhost:{port}?tls=required");
    let to = unique_recipient("tls");

    // Without trusting the self-signed certificate, delivery fails with a typed error.
    let untrusting = SmtpMailer::from_url(&url, "noreply@acme.example").unwrap();
    assert!(untrusting.send(&mail(&to)).await.is_err());
    // Plain text is refused by the server (it requires STARTTLS).
    let plain = SmtpMailer::from_url(
        &format!("smtp://127.0.0.1:{port}?tls=none"),
        "noreply@acme.example",
    )
    .unwrap();
    assert!(plain.send(&mail(&to)).await.is_err());

    let trusting = SmtpMailer::from_url_with_roots(&url, "noreply@acme.example", &[&cert]).unwrap();
    trusting.send(&mail(&to)).await.unwrap();
    let raw = delivered(&env("CIAM_TEST_SMTP_TLS_MAILDIR"), &to).await;
    assert!(
        raw.contains("verify-email?token=abc123") || raw.contains("verify-email?token=3Dabc123"),
        "{raw}"
    );
    assert!(
        SmtpMailer::from_url_with_roots(&url, "noreply@acme.example", &[b"not a pem"]).is_err()
    );
}
