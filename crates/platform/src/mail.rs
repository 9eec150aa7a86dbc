//! Sending email: SMTP when `HERALD_SMTP_URL` is set, otherwise a mailbox folder under the
//! data directory with one `.eml` file per message (inspectable, and nothing to install).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;

use crate::config::Settings;

/// One email to one recipient, with a plain-text and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to_name: String,
    pub to_address: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Extra headers, e.g. `List-Unsubscribe`.
    pub headers: Vec<(String, String)>,
}

#[async_trait]
pub trait MailTransport: Send + Sync + 'static {
    async fn send(&self, message: Message) -> anyhow::Result<()>;
    fn name(&self) -> &'static str;
}

#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Arc<dyn MailTransport>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("transport", &self.transport.name())
            .finish()
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Mailer> {
        let from: Mailbox = settings
            .mail_from
            .parse()
            .map_err(|e| crate::config::ConfigError::new("mail_from", format!("{e}")))?;
        let transport: Arc<dyn MailTransport> = match &settings.smtp_url {
            Some(url) => Arc::new(SmtpTransport::new(url)?),
            None => Arc::new(MailboxFolder::new(settings.data_dir.join("mailbox"))),
        };
        Ok(Mailer { from, transport })
    }

    pub fn transport_name(&self) -> &'static str {
        self.transport.name()
    }

    /// Sends `email`; an error means it was not accepted (retry later).
    pub async fn send(&self, email: &OutgoingEmail) -> anyhow::Result<()> {
        let message = self.build(email)?;
        let started = Instant::now();
        let result = self.transport.send(message).await;
        let outcome = if result.is_ok() { "sent" } else { "failed" };
        metrics::histogram!("email_send_duration_seconds", "transport" => self.transport.name(), "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        result
    }

    fn build(&self, email: &OutgoingEmail) -> anyhow::Result<Message> {
        let to = Mailbox::new(
            Some(email.to_name.clone()),
            email
                .to_address
                .parse()
                .with_context(|| format!("bad recipient address {}", email.to_address))?,
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone());
        for (name, value) in &email.headers {
            let name = HeaderName::new_from_ascii(name.clone())
                .map_err(|_| anyhow::anyhow!("bad header name {name}"))?;
            builder = builder.raw_header(HeaderValue::new(name, value.clone()));
        }
        let body = MultiPart::alternative()
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(email.text.clone()),
            )
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(email.html.clone()),
            );
        builder.multipart(body).context("building the email")
    }
}

/// SMTP over connections Herald opens itself, with `TCP_NODELAY`, kept in a small pool.
///
/// lettre writes a message and its terminating `.` in two writes; on a socket with Nagle's
/// algorithm on, the `.` waits for the server's ACK of the message, which Linux delays by up
/// to 40 ms: every email took 40 ms however fast the server. lettre's own transport cannot
/// set the option, so the stream is opened here and handed to lettre's SMTP client.
struct SmtpTransport {
    host: String,
    port: u16,
    credentials: Option<Credentials>,
    hello: ClientId,
    idle: std::sync::Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// Connections kept open between emails, and for how long one may idle before it is
/// dropped rather than reused (servers close idle sessions after a minute or more).
const SMTP_IDLE_CONNECTIONS: usize = 64;
const SMTP_IDLE_FOR: Duration = Duration::from_secs(30);
/// Bound on connecting and on each email's conversation.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

impl SmtpTransport {
    /// `smtp://[user:password@]host[:port]` (port 25 by default). TLS is not compiled in:
    /// relay through a local MTA or a sidecar for TLS to the outside world.
    fn new(url: &str) -> anyhow::Result<SmtpTransport> {
        let invalid = |m: String| crate::config::ConfigError::new("smtp_url", m);
        let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
        let host = parsed
            .host_str()
            .ok_or_else(|| invalid("no host".to_owned()))?;
        let credentials = (!parsed.username().is_empty()).then(|| {
            Credentials::new(
                parsed.username().to_owned(),
                parsed.password().unwrap_or_default().to_owned(),
            )
        });
        Ok(SmtpTransport {
            host: host.to_owned(),
            port: parsed.port().unwrap_or(25),
            credentials,
            hello: ClientId::default(),
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection from the pool that is still usable, or a new one.
    async fn connection(&self) -> anyhow::Result<AsyncSmtpConnection> {
        loop {
            let Some((connection, since)) = self.idle().pop() else {
                break;
            };
            if !connection.has_broken() && since.elapsed() < SMTP_IDLE_FOR {
                return Ok(connection);
            }
        }
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .with_context(|| format!("connecting to {}:{}", self.host, self.port))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let mut connection =
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .context("greeting the SMTP server")?;
        if let Some(credentials) = &self.credentials {
            connection
                .auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .context("authenticating to the SMTP server")?;
        }
        Ok(connection)
    }
}

#[async_trait]
impl MailTransport for SmtpTransport {
    async fn send(&self, message: Message) -> anyhow::Result<()> {
        let conversation = async {
            let mut connection = self.connection().await?;
            match connection
                .send(message.envelope(), &message.formatted())
                .await
            {
                Ok(_) => anyhow::Ok(connection),
                Err(e) => {
                    connection.abort().await;
                    Err(e.into())
                }
            }
        };
        let connection = tokio::time::timeout(SMTP_TIMEOUT, conversation)
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {SMTP_TIMEOUT:?}"))
            .and_then(|sent| sent)
            .context("SMTP delivery failed")?;
        let mut idle = self.idle();
        if idle.len() < SMTP_IDLE_CONNECTIONS {
            idle.push((connection, Instant::now()));
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        "smtp"
    }
}

/// Writes each message as `{data_dir}/mailbox/{unix-micros}-{uuid}.eml`.
struct MailboxFolder {
    dir: PathBuf,
}

impl MailboxFolder {
    fn new(dir: PathBuf) -> MailboxFolder {
        MailboxFolder { dir }
    }
}

#[async_trait]
impl MailTransport for MailboxFolder {
    async fn send(&self, message: Message) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .context("creating the mailbox folder")?;
        let name = format!(
            "{}-{}.eml",
            crate::db::now_micros(),
            uuid::Uuid::now_v7().simple()
        );
        // Written under a temporary name first, so a reader never sees half a message.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, message.formatted())
            .await
            .context("writing the email")?;
        tokio::fs::rename(&tmp, self.dir.join(name))
            .await
            .context("writing the email")?;
        Ok(())
    }

    fn name(&self) -> &'static str {
        "mailbox"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            to_name: "Ada Lovelace".into(),
            to_address: "ada@example.com".into(),
            subject: "Your order #1A2B3C4D has shipped".into(),
            text: "Hello Ada".into(),
            html: "<p>Hello Ada</p>".into(),
            headers: vec![("List-Unsubscribe".into(), "<https://x/u?t=abc>".into())],
        }
    }

    #[tokio::test]
    async fn the_mailbox_folder_keeps_whole_messages() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().to_owned(),
            ..Settings::default()
        };
        let mailer = Mailer::from_settings(&settings).unwrap();
        assert_eq!(mailer.transport_name(), "mailbox");
        mailer.send(&email()).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mailbox"))
            .unwrap()
            .collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
        assert!(
            text.contains("To: \"Ada Lovelace\" <ada@example.com>"),
            "{text}"
        );
        assert!(
            text.contains("List-Unsubscribe: <https://x/u?t=abc>"),
            "{text}"
        );
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(text.contains("text/html"), "{text}");
    }

    #[test]
    fn bad_settings_are_named() {
        let settings = Settings {
            mail_from: "not an address".into(),
            ..Settings::default()
        };
        let e = Mailer::from_settings(&settings).unwrap_err();
        assert!(format!("{e:#}").contains("HERALD_MAIL_FROM"), "{e:#}");
    }
}
