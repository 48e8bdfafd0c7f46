//! SMTP delivery with a small pool of warm connections.
//!
//! lettre 0.11.23 never sets `TCP_NODELAY`, and writes the final `.` of DATA apart, so
//! Nagle's algorithm holds it until the server's delayed ACK: about 44 ms a message
//! (STACK.md). We open the socket ourselves with `set_nodelay(true)` and hand it to
//! `AsyncSmtpConnection::connect_with_transport`; connections are kept for reuse and
//! tested with `NOOP` after a quiet spell. Implicit TLS is our own handshake
//! ([`crate::tls::Connector`]) over that socket, so it keeps `TCP_NODELAY` too; STARTTLS
//! is lettre's, with the same trust (`ca_file`, `web_roots`, `tls_server_name`). A server
//! that does not offer STARTTLS when `security = "starttls"` is refused, never used in
//! plain text.
//!
//! Logins: none, a password (PLAIN or LOGIN), or XOAUTH2 with the access token of the
//! mailbox named in `oauth_from_mailbox` (a refused token is refreshed on the next try).
//!
//! Errors keep the server's answer, so the outbox can tell 4xx (retry) from 5xx (final).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::Address;

use crate::config::{Security, Smtp, SmtpAuth};
use crate::tls::{Connector, Setting};

/// Our own TLS stream handed to lettre as if it were a plain socket (lettre then speaks
/// SMTP over it; `is_encrypted` is ours to know, not lettre's).
#[derive(Debug)]
struct Implicit(tokio_rustls::client::TlsStream<tokio::net::TcpStream>);

impl tokio::io::AsyncRead for Implicit {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Implicit {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for Implicit {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// A pooled connection idle longer than this is checked with `NOOP` before use.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect to {host}:{port}: {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("server rejected message: {code} {text}")]
    Rejected { code: u16, text: String },
    #[error("no answer from server within {0:?}")]
    Timeout(Duration),
    #[error("smtp error: {0}")]
    Protocol(String),
    #[error("invalid address {0:?}")]
    Address(String),
}

impl SendError {
    /// 5xx is final. Anything else waits in the outbox for the next try.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Rejected { code, .. } => *code >= 500,
            SendError::Address(_) => true,
            _ => false,
        }
    }
}

pub struct SmtpPool {
    cfg: Smtp,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    /// The token source of `oauth_from_mailbox`, when SMTP logs in with OAuth.
    tokens: Option<std::sync::Arc<crate::oauth::TokenSource>>,
}

impl SmtpPool {
    pub fn new(cfg: Smtp) -> SmtpPool {
        let tokens = match &cfg.auth {
            SmtpAuth::OAuth2 { mailbox, oauth, .. } => Some(crate::oauth::TokenSource::new(
                mailbox.clone(),
                oauth.clone(),
            )),
            _ => None,
        };
        SmtpPool::with_tokens(cfg, tokens)
    }

    /// Shares the mailbox's token source with its IMAP task (one refresh for both).
    pub fn with_tokens(
        cfg: Smtp,
        tokens: Option<std::sync::Arc<crate::oauth::TokenSource>>,
    ) -> SmtpPool {
        SmtpPool {
            cfg,
            idle: Mutex::new(Vec::new()),
            tokens,
        }
    }

    /// What the transport and login were, for `postdesk check --connect`.
    pub async fn describe(&self) -> Result<String, SendError> {
        let mut conn = self.connect().await?;
        let how = format!(
            "{}; {}",
            match self.cfg.security {
                Security::None => "plain (no TLS)",
                Security::Tls => "TLS",
                Security::Starttls => "STARTTLS",
            },
            match &self.cfg.auth {
                SmtpAuth::None => "no login".to_owned(),
                SmtpAuth::Password { username, .. } => format!("password login as {username}"),
                SmtpAuth::OAuth2 {
                    username, mailbox, ..
                } => {
                    format!("XOAUTH2 as {username} with mailbox {mailbox}'s token")
                }
            }
        );
        conn.quit().await.ok();
        Ok(how)
    }

    /// Opens one connection now (start-up and `postdesk check --connect`).
    pub async fn warm_up(&self) -> Result<(), SendError> {
        let conn = self.connect().await?;
        self.put_back(conn);
        Ok(())
    }

    /// Sends `raw` from `from` to `rcpt`; returns the server's final answer.
    pub async fn send(&self, from: &str, rcpt: &[String], raw: &[u8]) -> Result<String, SendError> {
        let from: Address = from
            .parse()
            .map_err(|_| SendError::Address(from.to_owned()))?;
        let to = rcpt
            .iter()
            .map(|r| {
                r.parse::<Address>()
                    .map_err(|_| SendError::Address(r.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let envelope =
            Envelope::new(Some(from), to).map_err(|e| SendError::Protocol(e.to_string()))?;
        // A pooled connection may have been closed by the server meanwhile: on such a
        // failure, try once more on a fresh connection.
        let (mut conn, pooled) = match self.take().await {
            Some(c) => (c, true),
            None => (self.connect().await?, false),
        };
        let timeout = self.cfg.timeout;
        let result = tokio::time::timeout(timeout, conn.send(&envelope, raw)).await;
        match result {
            Ok(Ok(resp)) => {
                self.put_back(conn);
                Ok(response_text(&resp))
            }
            Ok(Err(e)) if pooled && !e.is_permanent() && !e.is_transient() => {
                drop(conn);
                let mut fresh = self.connect().await?;
                match tokio::time::timeout(timeout, fresh.send(&envelope, raw)).await {
                    Ok(Ok(resp)) => {
                        self.put_back(fresh);
                        Ok(response_text(&resp))
                    }
                    Ok(Err(e)) => Err(classify(e)),
                    Err(_) => Err(SendError::Timeout(timeout)),
                }
            }
            Ok(Err(e)) => {
                let err = classify(e);
                // After a refusal the session is still usable; after anything else, not.
                if matches!(err, SendError::Rejected { .. }) && !conn.has_broken() {
                    self.put_back(conn);
                }
                Err(err)
            }
            Err(_) => Err(SendError::Timeout(timeout)),
        }
    }

    /// Asks the server whether it takes mail for `rcpt` (MAIL FROM, RCPT TO, then RSET:
    /// nothing is sent). `postdesk check --connect` uses it to see whether reply token
    /// addresses are accepted (plus-addressing on).
    pub async fn probe_recipient(&self, from: &str, rcpt: &str) -> Result<String, SendError> {
        use lettre::transport::smtp::commands::{Mail, Rcpt, Rset};
        let from: Address = from
            .parse()
            .map_err(|_| SendError::Address(from.to_owned()))?;
        let to: Address = rcpt
            .parse()
            .map_err(|_| SendError::Address(rcpt.to_owned()))?;
        let mut conn = self.connect().await?;
        let timeout = self.cfg.timeout;
        let asked = async {
            conn.command(Mail::new(Some(from), vec![])).await?;
            let answer = conn.command(Rcpt::new(to, vec![])).await;
            conn.command(Rset).await.ok();
            answer
        };
        let answer = tokio::time::timeout(timeout, asked)
            .await
            .map_err(|_| SendError::Timeout(timeout))?;
        conn.quit().await.ok();
        answer.map(|r| response_text(&r)).map_err(classify)
    }

    async fn take(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let (mut conn, since) = next?;
            if since.elapsed() < CHECK_AFTER_IDLE {
                return Some(conn);
            }
            let alive = tokio::time::timeout(Duration::from_secs(5), conn.test_connected())
                .await
                .unwrap_or(false);
            if alive {
                return Some(conn);
            }
        }
    }

    fn put_back(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.cfg.connections {
            idle.push((conn, Instant::now()));
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let refused = std::sync::atomic::AtomicBool::new(false);
        match self.connect_once(&refused).await {
            Err(e) if refused.load(std::sync::atomic::Ordering::Relaxed) => {
                // Expired early or revoked: one more connection with a refreshed token.
                tracing::info!(error = %e, "SMTP refused the access token; refreshing");
                self.connect_once(&refused).await
            }
            other => other,
        }
    }

    async fn connect_once(
        &self,
        token_refused: &std::sync::atomic::AtomicBool,
    ) -> Result<AsyncSmtpConnection, SendError> {
        let c = &self.cfg;
        let fail = |reason: String| SendError::Connect {
            host: c.host.clone(),
            port: c.port,
            reason,
        };
        let hello = ClientId::Domain(c.hello_name.clone());
        let name = c.tls.server_name.clone().unwrap_or_else(|| c.host.clone());
        let starttls_params = || -> Result<TlsParameters, SendError> {
            let mut b = TlsParameters::builder(name.clone());
            if !c.tls.web_roots {
                b = b.certificate_store(lettre::transport::smtp::client::CertificateStore::None);
            }
            if let Some(pem) =
                crate::tls::ca_pem(&c.tls, &Setting::smtp()).map_err(|e| fail(e.to_string()))?
            {
                let cert = lettre::transport::smtp::client::Certificate::from_pem(&pem)
                    .map_err(|e| fail(format!("ca_file: {e}")))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls().map_err(|e| fail(e.to_string()))
        };
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((c.host.as_str(), c.port))
                .await
                .map_err(|e| fail(e.to_string()))?;
            tcp.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
            let mut conn = match c.security {
                Security::Tls => {
                    let connector = Connector::new(&c.tls, &c.host, c.port, Setting::smtp())
                        .map_err(|e| fail(e.to_string()))?;
                    let tls = connector
                        .connect(tcp)
                        .await
                        .map_err(|e| fail(e.to_string()))?;
                    AsyncSmtpConnection::connect_with_transport(Box::new(Implicit(tls)), &hello)
                        .await
                        .map_err(|e| fail(e.to_string()))?
                }
                Security::None | Security::Starttls => {
                    let mut conn =
                        AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                            .await
                            .map_err(|e| fail(e.to_string()))?;
                    if c.security == Security::Starttls {
                        if !conn.can_starttls() {
                            return Err(fail(
                                "the server does not offer STARTTLS although security = \"starttls\" \
                                 asks for it; refusing to send without TLS"
                                    .to_owned(),
                            ));
                        }
                        conn.starttls(starttls_params()?, &hello)
                            .await
                            .map_err(|e| {
                                fail(format!(
                                    "STARTTLS failed: {}",
                                    crate::tls::explain(
                                        &crate::oauth::error_chain(&e),
                                        &name,
                                        &Setting::smtp()
                                    )
                                ))
                            })?;
                    }
                    conn
                }
            };
            match &c.auth {
                SmtpAuth::None => {}
                SmtpAuth::Password { username, password } => {
                    let creds = Credentials::new(username.clone(), password.expose().to_owned());
                    conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
                        .await
                        // lettre's auth error text holds the server's answer, never the password.
                        .map_err(|e| fail(format!("authentication failed: {e}")))?;
                }
                SmtpAuth::OAuth2 {
                    username, mailbox, ..
                } => {
                    let tokens = self
                        .tokens
                        .as_ref()
                        .ok_or_else(|| fail("no token source for oauth_from_mailbox".to_owned()))?;
                    let token = tokens.access_token().await.map_err(|e| {
                        fail(format!("no access token from mailbox {mailbox}: {e}"))
                    })?;
                    let creds = Credentials::new(username.clone(), token.expose().to_owned());
                    if let Err(e) = conn.auth(&[Mechanism::Xoauth2], &creds).await {
                        // The session may be mid-exchange (a 334 error challenge): the
                        // caller drops it and tries once more with a refreshed token.
                        tokens.rejected().await;
                        token_refused.store(true, std::sync::atomic::Ordering::Relaxed);
                        return Err(fail(format!("XOAUTH2 authentication failed: {e}")));
                    }
                }
            }
            Ok::<_, SendError>(conn)
        };
        tokio::time::timeout(c.timeout, connect)
            .await
            .map_err(|_| SendError::Timeout(c.timeout))?
    }
}

fn response_text(resp: &lettre::transport::smtp::response::Response) -> String {
    format!(
        "{} {}",
        resp.code(),
        resp.message().collect::<Vec<_>>().join(" ")
    )
}

fn classify(e: lettre::transport::smtp::Error) -> SendError {
    match e.status() {
        Some(code) => {
            let code_num: u16 = code.to_string().parse().unwrap_or(0);
            SendError::Rejected {
                code: code_num,
                text: e.to_string(),
            }
        }
        None if e.is_timeout() => SendError::Timeout(Duration::ZERO),
        None => SendError::Protocol(e.to_string()),
    }
}
