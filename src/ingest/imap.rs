//! Watches one IMAP mailbox: IDLE where the server offers it, polling otherwise.
//!
//! Contract:
//! - One task per mailbox ([`watch`]); a failed session is logged, recorded for
//!   `postdesk status`, and retried with backoff; it never stops the daemon or another
//!   mailbox (invariant 6).
//! - The cursor `(mailbox, UIDVALIDITY, UID)` lives in the store and advances in the same
//!   transaction as the batch it covers. A crash before the commit means the batch is
//!   fetched again; the store's (UID, Message-ID) checks make that a no-op (invariant 1).
//! - A new UIDVALIDITY means every UID is new: the folder is read again from the start and
//!   messages already stored are recognised by Message-ID, so nothing is lost or repeated.
//! - Messages are read with `BODY.PEEK[]`; `\Seen` or a move to another folder happen only
//!   after the commit, and are cosmetic (the cursor is the truth).
//! - Bounded (issue 12): sizes come first (`RFC822.SIZE`); a batch holds at most
//!   `batch_size` messages and `limits.fetch_batch_bytes` bytes. A message over
//!   `limits.max_message_bytes` is never fetched whole: its header and first
//!   `quarantine_keep_bytes` (`ingest::bounded::keep_len`) are quarantined with its real
//!   size and the SHA-256 of the bytes kept, and it stays on the server untouched (not
//!   moved, not flagged `\Seen`); the cursor moves past it all the same.
//! - Parsing runs on the desk's pool, each message under `limits.message_time_limit`.
//! - Batches are pipelined: while the writer commits batch N, batch N+1 is fetched and
//!   parsed.
//!
//! **Architecture invariant:** only `ingest::imap` imports `async_imap`.

use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::bounded;
use crate::config::{AfterIngest, Mailbox, Security};
use crate::limits::Limits;
use crate::model::{MailboxName, Uid, UidValidity};
use crate::shutdown::Shutdown;
use crate::store::{HashOf, StoreError, Truncated};
use crate::workflow::{BatchOutcome, Cost, Desk, Incoming, IngestBatch};

/// IDLE is renewed well inside the 29 minutes of RFC 2177, and at least twice per
/// `[alerts] alert_after`, so that a healthy quiet mailbox records a completed round often
/// enough ([`Context::round_every`]).
pub const IDLE_RENEW: Duration = Duration::from_secs(20 * 60);

trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

type Session = async_imap::Session<Box<dyn Io>>;

/// A batch handed to the writer, the UIDs to flag or move once it commits (not the
/// over-limit ones: they stay as they are), and the cursor it moves to.
type InFlight = (JoinHandle<Result<BatchOutcome, StoreError>>, Vec<u32>, Uid);

/// UIDs per `RFC822.SIZE` fetch (about 40 bytes of answer each).
const SIZES_PER_FETCH: usize = 5000;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {host}:{port}: {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("login as {user} refused: {reason}")]
    Login { user: String, reason: String },
    #[error("{op} failed: {source}")]
    Protocol {
        op: &'static str,
        #[source]
        source: async_imap::error::Error,
    },
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("server sent no UIDVALIDITY for {0}")]
    NoUidValidity(String),
    #[error(
        "{host}:{port} does not offer STARTTLS although security = \"starttls\" asks for it; \
         refusing to go on without TLS (a server without TLS needs security = \"none\")"
    )]
    StartTlsNotOffered { host: String, port: u16 },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Token(crate::oauth::OAuthError),
    #[error("cannot store batch")]
    Store(#[from] StoreError),
    #[error("batch task failed: {0}")]
    Task(String),
}

/// Everything a mailbox task shares with the daemon.
#[derive(Clone)]
pub struct Context {
    /// The store and the engine: batches go to `desk.ingest`.
    pub desk: Desk,
    /// Woken after a commit that queued outgoing mail.
    pub outbox_wake: Arc<Notify>,
    /// Ingest timings for the metrics file.
    pub stats: Arc<crate::metrics::Stats>,
    /// Access tokens of the mailboxes that log in with OAuth.
    pub tokens: crate::oauth::Tokens,
    /// The longest wait between two completed rounds (IDLE renewal, or a poll when the
    /// poll interval is longer). A mailbox with an OAuth login also logs in afresh this
    /// often: a revoked grant or an expired token shows within this time, not when the
    /// server finally drops an old session.
    pub round_every: Duration,
}

impl Context {
    /// `round_every` for an alarm after `alert_after` without a completed round.
    pub fn round_for(alert_after: Duration) -> Duration {
        (alert_after / 2).clamp(Duration::from_millis(500), IDLE_RENEW)
    }
}

/// Exponential backoff between failed sessions.
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
}

/// Runs until shutdown. `first_sync` is told once the first catch-up has committed (for
/// systemd's READY).
#[tracing::instrument(name = "mailbox", skip_all, fields(mailbox = %cfg.name))]
pub async fn watch(
    cfg: Mailbox,
    ctx: Context,
    mut shutdown: Shutdown,
    first_sync: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(300));
    let mut first_sync = first_sync;
    while !shutdown.is_requested() {
        match session(&cfg, &ctx, &mut shutdown, &mut first_sync).await {
            Ok(()) => backoff.reset(),
            Err(err) => {
                let delay = backoff.next();
                tracing::warn!(error = %err, retry_in = ?delay, "session ended");
                let at = ctx.desk.engine().clock().now();
                let store = ctx.desk.store();
                // A refused login is an alarm at once; other trouble after `alert_after`.
                let recorded = if err.is_auth() {
                    store
                        .record_auth_failure(cfg.name.clone(), err.to_string(), at)
                        .await
                } else {
                    store
                        .record_mailbox_error(cfg.name.clone(), err.to_string(), at)
                        .await
                };
                if let Err(e) = recorded {
                    tracing::error!(error = %e, "cannot record mailbox error");
                }
                let login_done = new_login(&cfg, err.is_auth());
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = login_done => backoff.reset(),
                    () = shutdown.requested() => {}
                }
            }
        }
    }
    tracing::info!("stopped");
}

/// Completes when `postdesk login` has written new tokens for an OAuth mailbox whose
/// login failed (the token file changed), so that it recovers at once rather than after
/// its backoff; never, otherwise.
async fn new_login(cfg: &Mailbox, auth_failed: bool) {
    let crate::config::Login::OAuth2(oauth) = &cfg.imap.auth else {
        return std::future::pending().await;
    };
    if !auth_failed {
        return std::future::pending().await;
    }
    let before = crate::oauth::tokens::modified(&oauth.token_file);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if crate::oauth::tokens::modified(&oauth.token_file) != before {
            tracing::info!("new tokens from `postdesk login`: logging in again");
            return;
        }
    }
}

async fn with_timeout<T>(
    limit: Duration,
    op: &'static str,
    fut: impl std::future::Future<Output = async_imap::error::Result<T>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ImapError::Protocol { op, source }),
        Err(_) => Err(ImapError::Timeout(op)),
    }
}

/// What a connection did before the session began, for `postdesk check --connect`.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    /// "plain", "TLS", "STARTTLS" (with the TLS version and cipher once encrypted).
    pub transport: String,
    /// SASL mechanisms the server offered (`AUTH=` capabilities), before login.
    pub mechanisms: Vec<String>,
    /// How we logged in: "password (LOGIN)" or "XOAUTH2 with an access token".
    pub login: String,
}

/// The greeting and capability lines before STARTTLS are read by hand: async-imap has no
/// STARTTLS, and nothing read here may run ahead into the TLS bytes.
const MAX_PRE_TLS_LINE: usize = 8192;

async fn read_line(tcp: &mut TcpStream, limit: Duration) -> Result<String, String> {
    use tokio::io::AsyncReadExt;
    let mut line = Vec::new();
    let read = async {
        loop {
            let mut b = [0u8; 1];
            if tcp.read(&mut b).await.map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".to_owned());
            }
            line.push(b[0]);
            if b[0] == b'\n' {
                return Ok(());
            }
            if line.len() > MAX_PRE_TLS_LINE {
                return Err("line too long before STARTTLS".to_owned());
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .map_err(|_| "timed out".to_owned())??;
    Ok(String::from_utf8_lossy(&line).trim_end().to_owned())
}

/// Sends `tag command` and reads to its tagged answer; returns the untagged lines and
/// whether the answer was OK.
async fn command(
    tcp: &mut TcpStream,
    tag: &str,
    cmd: &str,
    limit: Duration,
) -> Result<(Vec<String>, bool), String> {
    use tokio::io::AsyncWriteExt;
    tcp.write_all(format!("{tag} {cmd}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for _ in 0..64 {
        let line = read_line(tcp, limit).await?;
        if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
            return Ok((lines, rest.to_ascii_uppercase().starts_with("OK")));
        }
        lines.push(line);
    }
    Err(format!("no answer to {cmd}"))
}

fn capabilities_in(line: &str) -> Vec<String> {
    let upper = line.to_ascii_uppercase();
    let after = upper
        .find("CAPABILITY ")
        .map(|i| &upper[i + "CAPABILITY ".len()..])
        .unwrap_or("");
    after
        .split(|c: char| c.is_whitespace() || c == ']')
        .take_while(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The plain-text part of STARTTLS (RFC 3501 6.2.1, RFC 2595): greeting, CAPABILITY,
/// STARTTLS. Refuses a server that does not offer it: never a silent downgrade.
async fn starttls(tcp: &mut TcpStream, imap: &crate::config::Imap) -> Result<(), ImapError> {
    let fail = |reason: String| ImapError::Connect {
        host: imap.host.clone(),
        port: imap.port,
        reason,
    };
    let greeting = read_line(tcp, imap.timeout).await.map_err(&fail)?;
    if !greeting.to_ascii_uppercase().starts_with("* OK") {
        return Err(fail(format!("unexpected greeting {greeting:?}")));
    }
    let (lines, ok) = command(tcp, "s1", "CAPABILITY", imap.timeout)
        .await
        .map_err(&fail)?;
    let caps: Vec<String> = lines.iter().flat_map(|l| capabilities_in(l)).collect();
    if !ok || !caps.iter().any(|c| c == "STARTTLS") {
        return Err(ImapError::StartTlsNotOffered {
            host: imap.host.clone(),
            port: imap.port,
        });
    }
    let (_, ok) = command(tcp, "s2", "STARTTLS", imap.timeout)
        .await
        .map_err(&fail)?;
    if !ok {
        return Err(ImapError::StartTlsNotOffered {
            host: imap.host.clone(),
            port: imap.port,
        });
    }
    Ok(())
}

/// XOAUTH2 / OAUTHBEARER for async-imap: the token first, then an empty answer to an
/// error challenge (the server then says NO).
struct Bearer {
    first: Option<String>,
}

impl async_imap::Authenticator for Bearer {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.first.take().unwrap_or_default()
    }
}

fn transport_of(conn: &tokio_rustls::client::TlsStream<TcpStream>, how: &str) -> String {
    let (_, c) = conn.get_ref();
    format!(
        "{how} ({}, {})",
        c.protocol_version()
            .map_or("?".to_owned(), |v| format!("{v:?}").replace('_', ".")),
        c.negotiated_cipher_suite()
            .map_or("?".to_owned(), |s| format!("{:?}", s.suite()))
    )
}

async fn connect(
    cfg: &Mailbox,
    tokens: Option<&crate::oauth::TokenSource>,
) -> Result<(Session, Handshake), ImapError> {
    let imap = &cfg.imap;
    let fail = |reason: String| ImapError::Connect {
        host: imap.host.clone(),
        port: imap.port,
        reason,
    };
    let mut tcp = tokio::time::timeout(
        imap.timeout,
        TcpStream::connect((imap.host.as_str(), imap.port)),
    )
    .await
    .map_err(|_| fail("timed out".to_owned()))?
    .map_err(|e| fail(e.to_string()))?;
    tcp.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
    let tls = || {
        crate::tls::Connector::new(
            &imap.tls,
            &imap.host,
            imap.port,
            crate::tls::Setting::mailbox(cfg.name.as_str()),
        )
    };
    let mut hs = Handshake::default();
    let (stream, greeted): (Box<dyn Io>, bool) = match imap.security {
        Security::None => {
            hs.transport = "plain (no TLS)".to_owned();
            (Box::new(tcp), false)
        }
        Security::Tls => {
            let conn = tokio::time::timeout(imap.timeout, tls()?.connect(tcp))
                .await
                .map_err(|_| ImapError::Timeout("TLS handshake"))??;
            hs.transport = transport_of(&conn, "TLS");
            (Box::new(conn), false)
        }
        Security::Starttls => {
            let connector = tls()?;
            starttls(&mut tcp, imap).await?;
            let conn = tokio::time::timeout(imap.timeout, connector.connect(tcp))
                .await
                .map_err(|_| ImapError::Timeout("TLS handshake"))??;
            hs.transport = transport_of(&conn, "STARTTLS");
            (Box::new(conn), true)
        }
    };
    let mut client = async_imap::Client::new(stream);
    if !greeted {
        let greeting = tokio::time::timeout(imap.timeout, client.read_response())
            .await
            .map_err(|_| fail("no greeting".to_owned()))?
            .map_err(|e| fail(e.to_string()))?;
        if greeting.is_none() {
            return Err(fail("connection closed before greeting".to_owned()));
        }
    }
    // What the server offers now (after TLS: capabilities seen before it are not trusted).
    hs.mechanisms = pre_login_mechanisms(&mut client, imap.timeout).await;
    let login_refused = |reason: String| ImapError::Login {
        user: imap.username.clone(),
        reason,
    };
    match &imap.auth {
        crate::config::Login::Password(password) => {
            hs.login = "password (LOGIN)".to_owned();
            let login = client.login(&imap.username, password.expose());
            match tokio::time::timeout(imap.timeout, login).await {
                Ok(Ok(s)) => Ok((s, hs)),
                // The server's answer never contains the password; ours never either.
                Ok(Err((e, _))) => Err(login_refused(e.to_string())),
                Err(_) => Err(ImapError::Timeout("login")),
            }
        }
        crate::config::Login::OAuth2(oauth) => {
            let tokens = tokens.ok_or_else(|| {
                ImapError::Token(crate::oauth::OAuthError::Setup(
                    "no token source for this mailbox".to_owned(),
                ))
            })?;
            let mech = oauth.mechanism;
            hs.login = format!("{} with an access token", mech.as_str());
            if !hs.mechanisms.is_empty() && !hs.mechanisms.iter().any(|m| m == mech.as_str()) {
                return Err(login_refused(format!(
                    "the server does not offer SASL {} (it offers {})",
                    mech.as_str(),
                    hs.mechanisms.join(", ")
                )));
            }
            let bearer = |token: &crate::config::Secret| Bearer {
                first: Some(crate::oauth::sasl::initial_response(
                    mech,
                    &imap.username,
                    token.expose(),
                    imap.tls.server_name.as_deref().unwrap_or(&imap.host),
                    imap.port,
                )),
            };
            let token = tokens.access_token().await.map_err(ImapError::Token)?;
            let first = tokio::time::timeout(
                imap.timeout,
                client.authenticate(mech.as_str(), bearer(&token)),
            )
            .await
            .map_err(|_| ImapError::Timeout("authenticate"))?;
            let (e, client) = match first {
                Ok(s) => return Ok((s, hs)),
                Err(refused) => refused,
            };
            // Refused: expired early, or revoked. Refresh once and try again on the same
            // connection; a second refusal (or a refused refresh) is a login failure.
            tracing::info!(error = %e, "access token refused; refreshing");
            tokens.rejected().await;
            let token = tokens.access_token().await.map_err(ImapError::Token)?;
            match tokio::time::timeout(
                imap.timeout,
                client.authenticate(mech.as_str(), bearer(&token)),
            )
            .await
            {
                Ok(Ok(s)) => Ok((s, hs)),
                Ok(Err((e, _))) => {
                    tokens.rejected().await;
                    Err(login_refused(format!("{} refused: {e}", mech.as_str())))
                }
                Err(_) => Err(ImapError::Timeout("authenticate")),
            }
        }
    }
}

impl ImapError {
    /// The server refused our login, or there is no usable token: only a new password or
    /// `postdesk login` mends it (an alarm at once, not after `alert_after`).
    pub fn is_auth(&self) -> bool {
        match self {
            ImapError::Login { .. } => true,
            ImapError::Token(e) => e.needs_login(),
            _ => false,
        }
    }
}

/// The `AUTH=` capabilities before login (empty if the server would not say).
async fn pre_login_mechanisms(
    client: &mut async_imap::Client<Box<dyn Io>>,
    limit: Duration,
) -> Vec<String> {
    let asked = async {
        // Our own tag: async-imap numbers its commands a1, a2, …
        {
            use tokio::io::AsyncWriteExt;
            let raw = client.get_mut();
            raw.write_all(b"pd0 CAPABILITY\r\n").await.ok()?;
            raw.flush().await.ok()?;
        }
        let mut mechs = Vec::new();
        loop {
            let resp = client.read_response().await.ok()??;
            match resp.parsed() {
                async_imap::imap_proto::Response::Capabilities(caps) => {
                    for c in caps {
                        if let async_imap::imap_proto::Capability::Auth(m) = c {
                            mechs.push(m.to_ascii_uppercase());
                        }
                    }
                }
                async_imap::imap_proto::Response::Done { tag, .. } if tag.0 == "pd0" => {
                    return Some(mechs)
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(limit, asked)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Logs in and checks the folder (`postdesk check --connect`); returns (UIDVALIDITY, EXISTS).
pub async fn probe(
    cfg: &Mailbox,
    tokens: Option<&crate::oauth::TokenSource>,
) -> Result<(u32, u32, Handshake), ImapError> {
    let (mut s, hs) = connect(cfg, tokens).await?;
    let mbx = with_timeout(cfg.imap.timeout, "select", s.select(&cfg.imap.folder)).await?;
    let _ = with_timeout(cfg.imap.timeout, "logout", s.logout()).await;
    Ok((
        mbx.uid_validity
            .ok_or_else(|| ImapError::NoUidValidity(cfg.imap.folder.clone()))?,
        mbx.exists,
        hs,
    ))
}

async fn session(
    cfg: &Mailbox,
    ctx: &Context,
    shutdown: &mut Shutdown,
    first_sync: &mut Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<(), ImapError> {
    let imap = &cfg.imap;
    let tokens = ctx.tokens.get(&cfg.name);
    let (mut s, _) = connect(cfg, tokens.as_deref()).await?;
    let logged_in = std::time::Instant::now();
    ctx.desk
        .store()
        .record_login(cfg.name.clone(), ctx.desk.engine().clock().now())
        .await?;
    let caps = with_timeout(imap.timeout, "capability", s.capabilities()).await?;
    let use_idle = imap.idle && caps.has_str("IDLE");
    if let AfterIngest::MoveTo(folder) = &imap.after {
        // Create the target folder if it is missing; an error here shows up on the move.
        let _ = with_timeout(imap.timeout, "create", s.create(folder)).await;
    }
    let mbx = with_timeout(imap.timeout, "select", s.select(&imap.folder)).await?;
    let uv = UidValidity(
        mbx.uid_validity
            .ok_or_else(|| ImapError::NoUidValidity(imap.folder.clone()))?,
    );
    let mut last = start_uid(ctx, &cfg.name, uv).await?;
    tracing::info!(
        uidvalidity = uv.0,
        last_uid = last.0,
        idle = use_idle,
        "session started"
    );
    loop {
        last = sync(&mut s, cfg, ctx, uv, last, shutdown).await?;
        ctx.desk
            .store()
            .record_sync(
                cfg.name.clone(),
                if use_idle { "idle" } else { "poll" },
                ctx.desk.engine().clock().now(),
            )
            .await?;
        if let Some(tx) = first_sync.take() {
            let _ = tx.send(());
        }
        if shutdown.is_requested() {
            let _ = with_timeout(imap.timeout, "logout", s.logout()).await;
            return Ok(());
        }
        if tokens.is_some() && logged_in.elapsed() >= ctx.round_every {
            // Log in afresh: the token is checked again (and refreshed when due).
            let _ = with_timeout(imap.timeout, "logout", s.logout()).await;
            tracing::debug!("renewing the OAuth login");
            return Ok(());
        }
        if use_idle {
            s = idle(s, imap.timeout, ctx.round_every, shutdown).await?;
        } else {
            tokio::select! {
                () = tokio::time::sleep(imap.poll_interval.min(ctx.round_every)) => {}
                () = shutdown.requested() => {}
            }
            with_timeout(imap.timeout, "noop", s.noop()).await?;
        }
        while s.unsolicited_responses.try_recv().is_ok() {}
    }
}

/// Where to continue: the stored cursor if its UIDVALIDITY matches, else the start.
async fn start_uid(
    ctx: &Context,
    mailbox: &MailboxName,
    uv: UidValidity,
) -> Result<Uid, ImapError> {
    let store = ctx.desk.store().clone();
    let name = mailbox.clone();
    let cursor = tokio::task::spawn_blocking(move || store.reader().and_then(|r| r.cursor(&name)))
        .await
        .map_err(|e| ImapError::Task(e.to_string()))?;
    match cursor {
        Ok(Some((stored_uv, uid))) if stored_uv == uv => Ok(uid),
        Ok(Some((stored_uv, _))) => {
            tracing::warn!(
                old = stored_uv.0,
                new = uv.0,
                "UIDVALIDITY changed: reading the folder again, known messages are matched by Message-ID"
            );
            Ok(Uid(0))
        }
        Ok(None) => Ok(Uid(0)),
        // A missing database file just means a first run.
        Err(StoreError::NotFound(_)) => Ok(Uid(0)),
        Err(e) => Err(e.into()),
    }
}

/// Waits in IDLE until the server reports a change, the renewal time passes, or shutdown.
async fn idle(
    s: Session,
    limit: Duration,
    renew: Duration,
    shutdown: &mut Shutdown,
) -> Result<Session, ImapError> {
    let mut handle = s.idle();
    with_timeout(limit, "idle", handle.init()).await?;
    let (wait, stop) = handle.wait_with_timeout(renew.min(IDLE_RENEW));
    let response = tokio::select! {
        r = wait => r.map_err(|source| ImapError::Protocol { op: "idle", source })?,
        () = shutdown.requested() => IdleResponse::ManualInterrupt,
    };
    drop(stop);
    tracing::trace!(?response, "idle ended");
    with_timeout(limit, "idle done", handle.done()).await
}

/// Fetches, records and acknowledges every message above `last`; returns the new cursor.
async fn sync(
    s: &mut Session,
    cfg: &Mailbox,
    ctx: &Context,
    uv: UidValidity,
    last: Uid,
    shutdown: &Shutdown,
) -> Result<Uid, ImapError> {
    let imap = &cfg.imap;
    let limits = ctx.desk.engine().limits().clone();
    let found = with_timeout(
        imap.timeout,
        "uid search",
        s.uid_search(format!("UID {}:*", last.0 + 1)),
    )
    .await?;
    let started = std::time::Instant::now();
    let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last.0).collect();
    uids.sort_unstable();
    if uids.is_empty() {
        return Ok(last);
    }
    tracing::debug!(count = uids.len(), "new messages");
    let sized = sizes(s, imap.timeout, &uids).await?;
    let batches = plan(&sized, &limits, imap.batch_size);
    let mut cursor = last;
    let mut pending: Option<InFlight> = None;
    let total = uids.len();
    let mut planned = 0;
    for batch in &batches {
        planned += batch.len();
        let backlog = total.saturating_sub(planned) as u32;
        let (big, whole): (Vec<Sized>, Vec<Sized>) = batch
            .iter()
            .partition(|m| m.size > limits.max_message_bytes as u64);
        let whole_uids: Vec<u32> = whole.iter().map(|m| m.uid).collect();
        let fetched = fetch(s, imap.timeout, &whole_uids).await?;
        let (fetched_uids, raws): (Vec<u32>, Vec<Vec<u8>>) = fetched.into_iter().unzip();
        let cut = fetch_start(s, imap.timeout, &big, &limits).await?;
        let mut items: Vec<Incoming> = fetched_uids
            .iter()
            .zip(ctx.desk.prepare(raws).await)
            .map(|(uid, ready)| Incoming {
                uid: Uid(*uid),
                raw: ready.raw,
                prepared: ready.prepared,
                cost: ready.cost,
            })
            .collect();
        items.extend(cut.into_iter().map(|(uid, raw, truncated)| Incoming {
            uid: Uid(uid),
            prepared: Err(super::too_large(
                truncated.size,
                raw.len(),
                &limits,
                &format!(
                    "the whole message stays on the IMAP server, folder {}, UID {uid} (not moved, not marked seen)",
                    imap.folder
                ),
            )),
            raw,
            cost: Cost {
                took: Duration::ZERO,
                truncated: Some(truncated),
            },
        }));
        items.sort_by_key(|i| i.uid);
        // The batch before is flagged once this one is on its way to the writer, so the
        // writer does not wait for the IMAP round trip (issue 15).
        let committed = match pending.take() {
            Some((job, done, to)) => Some((committed(ctx, job).await?, done, to)),
            None => None,
        };
        let last_uid = Uid(batch.last().expect("batches are never empty").uid);
        let batch = IngestBatch {
            mailbox: cfg.name.clone(),
            uidvalidity: uv,
            items,
            last_uid,
            backlog,
            at: ctx.desk.engine().clock().now(),
        };
        let desk = ctx.desk.clone();
        pending = Some((
            tokio::spawn(async move { desk.ingest(batch).await }),
            fetched_uids,
            last_uid,
        ));
        if let Some(((), done, to)) = committed {
            cursor = after_commit(s, cfg, &done, to).await?;
        }
        // Between batches is a safe point: the batch in flight is committed below.
        if shutdown.is_requested() {
            break;
        }
    }
    if let Some((job, done, to)) = pending.take() {
        cursor = finish(s, cfg, ctx, job, &done, to).await?;
    }
    ctx.stats.record_sync(total, started.elapsed());
    Ok(cursor)
}

/// A new message and its size on the server (`RFC822.SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sized {
    uid: u32,
    size: u64,
}

/// The sizes of `uids` (sorted); a UID the server no longer has is left out.
async fn sizes(s: &mut Session, limit: Duration, uids: &[u32]) -> Result<Vec<Sized>, ImapError> {
    let mut out = Vec::with_capacity(uids.len());
    for chunk in uids.chunks(SIZES_PER_FETCH) {
        let set = uid_set(chunk);
        let mut stream =
            with_timeout(limit, "uid fetch", s.uid_fetch(&set, "(UID RFC822.SIZE)")).await?;
        while let Some(f) = with_timeout(limit, "uid fetch", stream.try_next()).await? {
            if let (Some(uid), Some(size)) = (f.uid, f.size) {
                if chunk.binary_search(&uid).is_ok() {
                    out.push(Sized {
                        uid,
                        size: u64::from(size),
                    });
                }
            }
        }
    }
    out.sort_by_key(|m| m.uid);
    out.dedup_by_key(|m| m.uid);
    Ok(out)
}

/// Cuts `sized` (in UID order) into batches of at most `batch_size` messages and
/// `limits.fetch_batch_bytes` bytes to fetch (an over-limit message counts for what is
/// fetched of it); a message larger than that is a batch alone.
fn plan(sized: &[Sized], limits: &Limits, batch_size: usize) -> Vec<Vec<Sized>> {
    let mut out: Vec<Vec<Sized>> = Vec::new();
    let mut current: Vec<Sized> = Vec::new();
    let mut bytes = 0u64;
    for m in sized {
        let cost = if m.size > limits.max_message_bytes as u64 {
            (bounded::prefix_bytes(limits) + bounded::header_bytes(limits)) as u64
        } else {
            m.size
        };
        if !current.is_empty()
            && (current.len() >= batch_size.max(1)
                || bytes + cost > limits.fetch_batch_bytes as u64)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(*m);
        bytes += cost;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Waits for a batch's commit, wakes the outbox, then flags or moves `uids` (the
/// messages fetched whole); returns the cursor `to`.
async fn finish(
    s: &mut Session,
    cfg: &Mailbox,
    ctx: &Context,
    job: JoinHandle<Result<BatchOutcome, StoreError>>,
    uids: &[u32],
    to: Uid,
) -> Result<Uid, ImapError> {
    committed(ctx, job).await?;
    after_commit(s, cfg, uids, to).await
}

/// Waits for a batch's commit and wakes the outbox.
async fn committed(
    ctx: &Context,
    job: JoinHandle<Result<BatchOutcome, StoreError>>,
) -> Result<(), ImapError> {
    let outcome = job.await.map_err(|e| ImapError::Task(e.to_string()))??;
    if outcome.outbox > 0 {
        ctx.outbox_wake.notify_one();
    }
    tracing::debug!(?outcome, "batch committed");
    Ok(())
}

/// Flags or moves `uids` (the messages fetched whole) of a committed batch; returns the
/// cursor `to`.
async fn after_commit(
    s: &mut Session,
    cfg: &Mailbox,
    uids: &[u32],
    to: Uid,
) -> Result<Uid, ImapError> {
    if uids.is_empty() {
        return Ok(to);
    }
    let set = uid_set(uids);
    let limit = cfg.imap.timeout;
    match &cfg.imap.after {
        AfterIngest::Leave => {}
        AfterIngest::MarkSeen => {
            let updates = with_timeout(
                limit,
                "uid store",
                s.uid_store(&set, "+FLAGS.SILENT (\\Seen)"),
            )
            .await?;
            with_timeout(limit, "uid store", updates.try_collect::<Vec<_>>()).await?;
        }
        AfterIngest::MoveTo(folder) => {
            with_timeout(limit, "uid move", s.uid_mv(&set, folder)).await?
        }
    }
    Ok(to)
}

/// The whole of each message in `uids` (sorted), in UID order; each is copied out of
/// the response as it arrives, so the batch is held about once.
async fn fetch(
    s: &mut Session,
    limit: Duration,
    uids: &[u32],
) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let set = uid_set(uids);
    let mut stream =
        with_timeout(limit, "uid fetch", s.uid_fetch(&set, "(UID BODY.PEEK[])")).await?;
    let mut out: Vec<(u32, Vec<u8>)> = Vec::with_capacity(uids.len());
    while let Some(f) = with_timeout(limit, "uid fetch", stream.try_next()).await? {
        if let Some(uid) = f.uid.filter(|u| uids.binary_search(u).is_ok()) {
            out.push((uid, f.body().unwrap_or_default().to_vec()));
        }
    }
    out.sort_by_key(|(uid, _)| *uid);
    out.dedup_by_key(|(uid, _)| *uid);
    Ok(out)
}

/// The start of each over-limit message (`BODY.PEEK[HEADER]` and `BODY.PEEK[]`, both
/// partial): what quarantine keeps, with the server's size and the SHA-256 of the kept
/// bytes (the rest is never fetched, so it cannot be hashed).
async fn fetch_start(
    s: &mut Session,
    limit: Duration,
    big: &[Sized],
    limits: &Limits,
) -> Result<Vec<(u32, Vec<u8>, Truncated)>, ImapError> {
    use sha2::Digest as _;
    if big.is_empty() {
        return Ok(Vec::new());
    }
    let uids: Vec<u32> = big.iter().map(|m| m.uid).collect();
    let query = format!(
        "(UID BODY.PEEK[HEADER]<0.{}> BODY.PEEK[]<0.{}>)",
        bounded::header_bytes(limits),
        bounded::prefix_bytes(limits)
    );
    let mut stream = with_timeout(limit, "uid fetch", s.uid_fetch(&uid_set(&uids), &query)).await?;
    let mut out = Vec::with_capacity(big.len());
    while let Some(f) = with_timeout(limit, "uid fetch", stream.try_next()).await? {
        let Some(m) = f.uid.and_then(|u| big.iter().find(|m| m.uid == u)) else {
            continue;
        };
        // Both are prefixes of the message: keep the longer (the header when it is longer
        // than the prefix), cut as `bounded` cuts.
        let header = f.header().unwrap_or_default();
        let prefix = f.body().unwrap_or_default();
        let start = if header.len() > prefix.len() {
            header
        } else {
            prefix
        };
        let kept = start[..bounded::keep_len(start, limits)].to_vec();
        let sha256 = sha2::Sha256::digest(&kept).into();
        out.push((
            m.uid,
            kept,
            Truncated {
                size: m.size,
                sha256,
                hash_of: HashOf::Kept,
            },
        ));
    }
    out.sort_by_key(|(uid, ..)| *uid);
    out.dedup_by_key(|(uid, ..)| *uid);
    Ok(out)
}

/// `1:5,7,9:10` from sorted UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_read_from_greetings_and_untagged_lines() {
        let greeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN] Dovecot ready.";
        assert_eq!(
            capabilities_in(greeting),
            ["IMAP4REV1", "SASL-IR", "STARTTLS", "AUTH=PLAIN"]
        );
        let stripped = "* CAPABILITY IMAP4rev1 LOGINDISABLED AUTH=XOAUTH2";
        assert!(!capabilities_in(stripped).iter().any(|c| c == "STARTTLS"));
        assert!(capabilities_in("* OK ready").is_empty());
    }

    #[test]
    fn the_round_is_half_of_alert_after_within_bounds() {
        assert_eq!(
            Context::round_for(Duration::from_secs(600)),
            Duration::from_secs(300)
        );
        assert_eq!(Context::round_for(Duration::from_secs(86_400)), IDLE_RENEW);
        assert_eq!(
            Context::round_for(Duration::from_millis(10)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn uid_sets_are_compressed() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn batches_are_bounded_by_count_and_bytes_and_big_ones_count_for_their_start() {
        let limits = Limits {
            max_message_bytes: 1000,
            fetch_batch_bytes: 2500,
            quarantine_keep_bytes: 100,
            max_header_bytes: 50,
            ..Limits::default()
        };
        let m = |uid, size| Sized { uid, size };
        let sized = [
            m(1, 900),
            m(2, 900),
            m(3, 900),
            m(4, 1_000_000),
            m(5, 10),
            m(6, 10),
        ];
        let uids = |b: &Vec<Sized>| b.iter().map(|m| m.uid).collect::<Vec<_>>();
        let got: Vec<_> = plan(&sized, &limits, 3).iter().map(uids).collect();
        // 900 + 900 fit in 2500, a third does not; the 1 MB one costs 200 (its start).
        assert_eq!(got, [vec![1, 2], vec![3, 4, 5], vec![6]]);
        let got: Vec<_> = plan(&sized, &limits, 1).iter().map(uids).collect();
        assert_eq!(got.len(), 6);
        assert!(plan(&[], &limits, 10).is_empty());
    }

    #[test]
    fn backoff_grows_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let got: Vec<u64> = (0..5).map(|_| b.next().as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next(), Duration::from_secs(1));
    }
}
