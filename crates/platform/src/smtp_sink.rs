//! A small real SMTP server for tests: it accepts mail on a local port and keeps it in
//! memory, and it can be stopped and started again on the same port (an SMTP outage).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed.
    pub data: String,
}

impl ReceivedMail {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(current) = value.as_mut() {
                if line.starts_with(' ') || line.starts_with('\t') {
                    current.push_str(line.trim_start());
                    continue;
                }
                break;
            }
            if let Some((key, rest)) = line.split_once(':')
                && key.eq_ignore_ascii_case(name)
            {
                value = Some(rest.trim().to_owned());
            }
        }
        value
    }
}

pub struct SmtpSink {
    addr: SocketAddr,
    mail: Arc<Mutex<Vec<ReceivedMail>>>,
    server: Option<JoinHandle<()>>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the SMTP sink");
        let addr = listener.local_addr().expect("a local address");
        let mut sink = SmtpSink {
            addr,
            mail: Arc::default(),
            server: None,
        };
        sink.serve(listener);
        sink
    }

    /// `smtp://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.mail.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stops listening: connections are refused until [`SmtpSink::resume`].
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) {
        self.stop();
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                // The old socket may take a moment to go away.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let mail = self.mail.clone();
        self.server = Some(tokio::spawn(async move {
            let mut sessions = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                sessions.spawn(session(stream, mail.clone()));
            }
        }));
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn session(stream: TcpStream, mail: Arc<Mutex<Vec<ReceivedMail>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 herald-sink ESMTP\r\n").await;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-herald-sink\r\n250 8BITMIME\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            }
            "MAIL" => {
                from = address(&command);
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                if write
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = String::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let received = ReceivedMail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                };
                mail.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(received);
                b"250 OK queued\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 command not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

fn address(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use crate::mail::{Mailer, OutgoingEmail};

    #[tokio::test]
    async fn mail_sent_over_smtp_arrives_and_an_outage_fails_until_resumed() {
        let mut sink = SmtpSink::start().await;
        let settings = Settings {
            smtp_url: Some(sink.url()),
            ..Settings::default()
        };
        let mailer = Mailer::from_settings(&settings).unwrap();
        let email = OutgoingEmail {
            to_name: "Ada".into(),
            to_address: "ada@example.com".into(),
            subject: "Hello".into(),
            text: ".leading dot\r\nline".into(),
            html: "<p>Hello</p>".into(),
            headers: vec![(
                "List-Unsubscribe-Post".into(),
                "List-Unsubscribe=One-Click".into(),
            )],
        };
        mailer.send(&email).await.unwrap();
        let got = sink.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].to, ["ada@example.com"]);
        assert_eq!(got[0].header("subject").as_deref(), Some("Hello"));
        assert_eq!(
            got[0].header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );

        sink.stop();
        assert!(mailer.send(&email).await.is_err());
        sink.resume().await;
        mailer.send(&email).await.unwrap();
        assert_eq!(sink.received().len(), 2);
    }
}
