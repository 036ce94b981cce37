//! SMTP delivery through lettre.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{MailError, Mailer, OutgoingMail};

/// An SMTP URL could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmtpUrlError {
    /// The URL is malformed or uses an unknown scheme or `tls` value.
    #[error("invalid SMTP URL: {0}")]
    Invalid(String),
    /// The sender address is malformed.
    #[error("invalid sender address")]
    InvalidSender,
    /// A trusted-root PEM holds no certificate.
    #[error("no certificate in the PEM data")]
    NoCertificate,
    /// TLS could not be configured.
    #[error("TLS setup failed")]
    Tls(#[source] lettre::transport::smtp::Error),
}

/// Sends mail over SMTP.
///
/// Configured from a URL:
///
/// | URL | meaning |
/// |---|---|
/// | `smtp://host:port` | STARTTLS when the server offers it, plain otherwise (use only on loopback) |
/// | `smtp://host:port?tls=required` | STARTTLS required |
/// | `smtp://host:port?tls=none` | no TLS (loopback test sinks) |
/// | `smtps://host:port` | implicit TLS (port 465) |
/// | `smtp://user:pass@host:port` | with AUTH (never over plain text unless `tls=none` is explicit) |
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("from", &self.from.email.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// Creates a mailer from an SMTP URL and a sender address (`Name <addr>` or `addr`).
    /// Server certificates are checked against the Mozilla root store (webpki-roots).
    pub fn from_url(url: &str, from: &str) -> Result<Self, SmtpUrlError> {
        Self::from_url_with_roots(url, from, &[])
    }

    /// Like [`SmtpMailer::from_url`], also trusting the given PEM certificates as roots (a
    /// private CA, or a test server's self-signed certificate).
    pub fn from_url_with_roots(
        url: &str,
        from: &str,
        extra_roots_pem: &[&[u8]],
    ) -> Result<Self, SmtpUrlError> {
        let from: Mailbox = from.parse().map_err(|_| SmtpUrlError::InvalidSender)?;
        let invalid = |m: &str| SmtpUrlError::Invalid(m.to_owned());
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("missing scheme"))?;
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a.trim_end_matches('/'), Some(q)),
            None => (rest.trim_end_matches('/'), None),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| invalid("bad port"))?)),
            None => (hostport, None),
        };
        if host.is_empty() {
            return Err(invalid("missing host"));
        }
        let mut tls_mode = "opportunistic";
        if let Some(q) = query {
            for pair in q.split('&') {
                match pair.split_once('=') {
                    Some(("tls", v)) => tls_mode = v,
                    _ => return Err(invalid("unknown query parameter")),
                }
            }
        }
        let tls_params = || {
            let mut builder = TlsParameters::builder(host.to_owned());
            for pem in extra_roots_pem {
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(SmtpUrlError::NoCertificate);
                }
                builder = builder
                    .add_root_certificate(Certificate::from_pem(pem).map_err(SmtpUrlError::Tls)?);
            }
            builder.build_rustls().map_err(SmtpUrlError::Tls)
        };
        let tls = match (scheme, tls_mode) {
            ("smtps", _) => Tls::Wrapper(tls_params()?),
            ("smtp", "opportunistic") => Tls::Opportunistic(tls_params()?),
            ("smtp", "required") => Tls::Required(tls_params()?),
            ("smtp", "none") => Tls::None,
            _ => return Err(invalid("unknown scheme or tls mode")),
        };
        if userinfo.is_some() && matches!(tls, Tls::Opportunistic(_)) {
            return Err(invalid(
                "credentials need tls=required, smtps, or an explicit tls=none",
            ));
        }
        let default_port = if scheme == "smtps" { 465 } else { 587 };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port.unwrap_or(default_port))
            .tls(tls)
            .timeout(Some(Duration::from_secs(15)));
        if let Some(u) = userinfo {
            let (user, pass) = u
                .split_once(':')
                .ok_or_else(|| invalid("credentials need user:password"))?;
            builder =
                builder.credentials(Credentials::new(percent_decode(user), percent_decode(pass)));
        }
        Ok(Self {
            transport: builder.build(),
            from,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(((h << 4) | l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let to: Mailbox = mail
            .to
            .as_str()
            .parse()
            .map_err(|e| MailError(Box::new(e)))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| MailError(Box::new(e)))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_validated() {
        let from = "ciam <noreply@example.com>";
        assert!(SmtpMailer::from_url("smtp://127.0.0.1:2525?tls=none", from).is_ok());
        assert!(SmtpMailer::from_url("smtp://mail.example.com", from).is_ok());
        assert!(SmtpMailer::from_url("smtps://u:p@mail.example.com", from).is_ok());
        assert!(SmtpMailer::from_url("smtp://u:p@mail.example.com", from).is_err());
        assert!(SmtpMailer::from_url("http://x", from).is_err());
        assert!(SmtpMailer::from_url("smtp://:25", from).is_err());
        assert!(SmtpMailer::from_url("smtp://h:notaport", from).is_err());
        assert!(SmtpMailer::from_url("smtp://h?tls=maybe", from).is_err());
        assert!(SmtpMailer::from_url("smtp://h", "not an address").is_err());
        assert_eq!(percent_decode("a%40b%3A"), "a@b:");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
