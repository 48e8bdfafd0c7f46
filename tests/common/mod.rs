//! Shared helpers for the integration tests: the real Dovecot and Postfix started by
//! `scripts/mailstack` (ports from the `MAILSTACK_*` environment, as `scripts/test` sets
//! them), a tiny SMTP and IMAP client, and a daemon run in-process or as a process.
//!
//! Every test uses fresh addresses, so tests never see each other's mail and run in
//! parallel without a reset (MAILSTACK.md).
#![allow(dead_code)]

pub mod history;
pub mod score;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postdesk::store::{Reader, StatusReport, TicketDetail, TicketFilter, TicketSummary};

pub fn host() -> String {
    std::env::var("MAILSTACK_HOST").unwrap_or_else(|_| "127.0.0.1".to_owned())
}
fn port(var: &str, default: u16) -> u16 {
    std::env::var(var)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
}
pub fn smtp_port() -> u16 {
    port("MAILSTACK_SMTP_PORT", 10025)
}
pub fn imap_port() -> u16 {
    port("MAILSTACK_IMAP_PORT", 10143)
}
pub const PASSWORD: &str = "test";

/// The repository's `scripts/mailstack`.
pub fn mailstack_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack")
}

/// A fresh address: `<prefix>-<pid>-<n>-<nanos>@<domain>`.
pub fn unique(prefix: &str, domain: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos:x}@{domain}", std::process::id())
}

pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

// ---------------------------------------------------------------- SMTP

/// Sends `raw` over SMTP to Postfix (one session, plain, as a mail client would).
pub fn smtp_send(from: &str, to: &[&str], raw: &[u8]) {
    let stream = TcpStream::connect((host().as_str(), smtp_port())).expect("connect to Postfix");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let expect = |r: &mut BufReader<TcpStream>, code: &str| loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(
            line.starts_with(code),
            "SMTP: expected {code}, got {line:?}"
        );
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect(&mut r, "220");
    w.write_all(b"EHLO test.client\r\n").unwrap();
    expect(&mut r, "250");
    w.write_all(format!("MAIL FROM:<{from}>\r\n").as_bytes())
        .unwrap();
    expect(&mut r, "250");
    for rcpt in to {
        w.write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .unwrap();
        expect(&mut r, "250");
    }
    w.write_all(b"DATA\r\n").unwrap();
    expect(&mut r, "354");
    let mut data = Vec::with_capacity(raw.len() + 16);
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    w.write_all(&data).unwrap();
    expect(&mut r, "250");
    w.write_all(b"QUIT\r\n").unwrap();
}

/// A plain message from `from` to `to`.
pub fn simple_mail(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    message_id: &str,
    extra_headers: &str,
) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

pub fn new_message_id() -> String {
    unique("msg", "customer.test")
}

/// Where a mail client's Reply goes: the mail's `Reply-To`, else its `From`. For our
/// mail to an agent (relay, notification, refusal) that is the agent's reply token.
pub fn reply_address(received: &postdesk::mail::parse::Parsed) -> String {
    received
        .reply_to
        .as_ref()
        .or(received.from.as_ref())
        .expect("a Reply-To or a From to reply to")
        .address
        .clone()
}

/// A reply to `received` from `from` to `to`, as a mail client writes it: `Re:` subject,
/// In-Reply-To and References on the received mail; `extra_headers` go first.
pub fn reply_mail_to(
    from: &str,
    to: &str,
    received: &postdesk::mail::parse::Parsed,
    body: &str,
    extra_headers: &str,
) -> Vec<u8> {
    let id = received.message_id.bracketed();
    format!(
        "{extra_headers}From: {from}\r\nTo: {to}\r\nSubject: Re: {}\r\nMessage-ID: <{}>\r\nIn-Reply-To: {id}\r\nReferences: {id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        received.subject,
        new_message_id(),
    )
    .into_bytes()
}

/// `from` answers `received` with a mail client's Reply, through Postfix: To (and the
/// envelope to) [`reply_address`], which for an agent is the reply token of the mail
/// received. Returns that address.
pub fn reply_by_mail(
    from: &str,
    received: &postdesk::mail::parse::Parsed,
    body: &str,
    extra_headers: &str,
) -> String {
    let to = reply_address(received);
    smtp_send(
        from,
        &[&to],
        &reply_mail_to(from, &to, received, body, extra_headers),
    );
    to
}

// ---------------------------------------------------------------- IMAP

/// A minimal synchronous IMAP client, enough to read and append test mail.
pub struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    tag: u32,
    selected: bool,
}

impl Imap {
    pub fn login(user: &str) -> Imap {
        let stream =
            TcpStream::connect((host().as_str(), imap_port())).expect("connect to Dovecot");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut imap = Imap {
            r: BufReader::new(stream.try_clone().unwrap()),
            w: stream,
            tag: 0,
            selected: false,
        };
        let mut greeting = String::new();
        imap.r.read_line(&mut greeting).unwrap();
        imap.command(&format!("LOGIN \"{user}\" \"{PASSWORD}\""));
        imap
    }

    /// Runs a command; returns the untagged lines and literals as raw bytes.
    fn command(&mut self, cmd: &str) -> Vec<u8> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.w
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .unwrap();
        self.read_until_tagged(&tag)
    }

    fn read_until_tagged(&mut self, tag: &str) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            self.r.read_until(b'\n', &mut line).unwrap();
            assert!(!line.is_empty(), "IMAP connection closed");
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let text = String::from_utf8_lossy(&line);
                assert!(
                    text[tag.len()..].trim_start().starts_with("OK"),
                    "IMAP: {text}"
                );
                return out;
            }
            out.extend_from_slice(&line);
            // A literal {n}: read n bytes as they are.
            if let Some(n) = literal_len(&line) {
                let mut buf = vec![0; n];
                self.r.read_exact(&mut buf).unwrap();
                out.extend_from_slice(&buf);
            }
        }
    }

    /// Every message in INBOX, in UID order.
    pub fn fetch_all(&mut self) -> Vec<Vec<u8>> {
        // A fresh SELECT each time: STATUS and FETCH then see the mailbox as it is now.
        self.command("SELECT INBOX");
        self.selected = true;
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.w
            .write_all(format!("{tag} UID FETCH 1:* (BODY.PEEK[])\r\n").as_bytes())
            .unwrap();
        let mut msgs = Vec::new();
        loop {
            let mut line = Vec::new();
            self.r.read_until(b'\n', &mut line).unwrap();
            assert!(!line.is_empty(), "IMAP connection closed");
            if line.starts_with(tag.as_bytes()) {
                let text = String::from_utf8_lossy(&line);
                // An empty mailbox answers `UID FETCH 1:*` with BAD/NO on some servers.
                if !text.contains("OK") {
                    return Vec::new();
                }
                return msgs;
            }
            if let Some(n) = literal_len(&line) {
                let mut buf = vec![0; n];
                self.r.read_exact(&mut buf).unwrap();
                msgs.push(buf);
            }
        }
    }

    /// Messages in INBOX (STATUS on an unselected mailbox is always current).
    pub fn count(&mut self) -> usize {
        self.count_in("INBOX")
    }

    /// Messages in `folder`.
    pub fn count_in(&mut self, folder: &str) -> usize {
        if self.selected {
            self.command("UNSELECT");
            self.selected = false;
        }
        let out = self.command(&format!("STATUS \"{folder}\" (MESSAGES)"));
        let text = String::from_utf8_lossy(&out);
        text.split("MESSAGES ")
            .nth(1)
            .and_then(|s| {
                s.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .split(')')
                    .next()
            })
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Appends `raw` to INBOX as it is (no header added: the way to put junk there).
    pub fn append(&mut self, raw: &[u8]) {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.w
            .write_all(format!("{tag} APPEND INBOX {{{}}}\r\n", raw.len()).as_bytes())
            .unwrap();
        let mut cont = String::new();
        self.r.read_line(&mut cont).unwrap();
        assert!(cont.starts_with('+'), "APPEND: {cont}");
        self.w.write_all(raw).unwrap();
        self.w.write_all(b"\r\n").unwrap();
        self.read_until_tagged(&tag);
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let t = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let t = t.strip_suffix(b"}")?;
    let open = t.iter().rposition(|b| *b == b'{')?;
    std::str::from_utf8(&t[open + 1..]).ok()?.parse().ok()
}

/// Messages in `user`'s INBOX, parsed: (subject, raw).
pub fn inbox(user: &str) -> Vec<(String, Vec<u8>)> {
    Imap::login(user)
        .fetch_all()
        .into_iter()
        .map(|raw| {
            let p = postdesk::mail::parse::message(
                &raw,
                &postdesk::limits::Limits {
                    max_message_bytes: 64 << 20,
                    ..Default::default()
                },
            )
            .expect("parseable mail");
            (p.subject, raw)
        })
        .collect()
}

/// Waits until `who`'s INBOX holds at least `n` messages; returns them all, parsed.
pub fn wait_mail(who: &str, n: usize) -> Vec<postdesk::mail::parse::Parsed> {
    let mut imap = Imap::login(who);
    wait_until(
        Duration::from_secs(20),
        &format!("{n} message(s) for {who}"),
        || (imap.count() >= n).then_some(()),
    );
    inbox(who)
        .into_iter()
        .map(|(_, raw)| {
            postdesk::mail::parse::message(&raw, &postdesk::limits::Limits::default())
                .expect("parseable mail")
        })
        .collect()
}

/// Waits until `who`'s INBOX holds at least `n` messages that `keep` accepts; returns
/// those, parsed, in UID order.
pub fn wait_mail_where(
    who: &str,
    n: usize,
    what: &str,
    keep: impl Fn(&postdesk::mail::parse::Parsed) -> bool,
) -> Vec<postdesk::mail::parse::Parsed> {
    let mut imap = Imap::login(who);
    let mut seen = usize::MAX;
    wait_until(
        Duration::from_secs(20),
        &format!("{n} {what} for {who}"),
        || {
            // Fetch again only when the mailbox has changed.
            let count = imap.count();
            if count == seen {
                return None;
            }
            seen = count;
            let kept: Vec<_> = imap
                .fetch_all()
                .into_iter()
                .map(|raw| {
                    postdesk::mail::parse::message(&raw, &postdesk::limits::Limits::default())
                        .expect("parseable mail")
                })
                .filter(|m| keep(m))
                .collect();
            (kept.len() >= n).then_some(kept)
        },
    )
}

// ---------------------------------------------------------------- config and daemon

/// A test instance: its own data dir, support addresses, and config file.
pub struct Instance {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub support: Vec<String>,
}

pub struct Setup {
    pub mailboxes: usize,
    pub batch_size: usize,
    pub extra_top: String,
    pub outbox: String,
    pub idle: bool,
    /// Extra lines for every `[[mailbox]]`.
    pub mailbox_extra: String,
    /// Extra lines for the `[[queue]]` (e.g. `language = "zh-CN"`).
    pub queue_extra: String,
    /// Appended at the end of the file (`[[agent]]` tables).
    pub tail: String,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            mailboxes: 1,
            batch_size: 500,
            extra_top: String::new(),
            outbox: "retry_initial = \"1s\"\nretry_max = \"2s\"\n".to_owned(),
            idle: true,
            mailbox_extra: String::new(),
            queue_extra: String::new(),
            tail: String::new(),
        }
    }
}

impl Instance {
    pub fn new(setup: Setup) -> Instance {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), PASSWORD).unwrap();
        let support: Vec<String> = (0..setup.mailboxes)
            .map(|i| unique(&format!("support{i}"), "example.test"))
            .collect();
        let mut cfg = format!(
            "data_dir = \"{}\"\nhostname = \"helpdesk.example.test\"\n{}\n\n[smtp]\nhost = \"{}\"\nport = {}\n\n[outbox]\n{}\n[[queue]]\nname = \"support\"\ndisplay_name = \"ACME Support\"\n{}\n",
            dir.path().join("data").display(),
            setup.extra_top,
            host(),
            smtp_port(),
            setup.outbox,
            setup.queue_extra,
        );
        for (i, addr) in support.iter().enumerate() {
            cfg.push_str(&format!(
                "\n[[mailbox]]\nname = \"mb{i}\"\naddress = \"{addr}\"\nqueue = \"support\"\ntag = \"ACME\"\nhost = \"{}\"\nport = {}\npassword_file = \"password\"\nidle = {}\npoll_interval = \"1s\"\nbatch_size = {}\n{}\n",
                host(),
                imap_port(),
                setup.idle,
                setup.batch_size,
                setup.mailbox_extra
            ));
        }
        cfg.push_str(&setup.tail);
        let config_path = dir.path().join("postdesk.toml");
        std::fs::write(&config_path, cfg).unwrap();
        Instance {
            dir,
            config_path,
            support,
        }
    }

    pub fn config(&self) -> postdesk::config::Config {
        postdesk::config::load(&self.config_path).expect("test config loads")
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("data/postdesk.db")
    }

    pub fn reader(&self) -> Reader {
        Reader::open(&self.db()).expect("database exists")
    }

    pub fn tickets(&self) -> Vec<TicketSummary> {
        self.reader().tickets(&TicketFilter::default()).unwrap()
    }

    pub fn ticket(&self, id: i64) -> TicketDetail {
        self.reader()
            .ticket(postdesk::model::TicketId::new(id))
            .unwrap()
            .expect("ticket exists")
    }

    pub fn status(&self) -> StatusReport {
        self.reader().status(&[]).unwrap()
    }

    /// A second handle on the store (its own writer connection) and an engine, as the CLI
    /// would open them (`postdesk ticket set` goes through `Desk::admin_change`), with
    /// `clock` as the engine's clock.
    pub fn desk(&self, clock: Arc<dyn postdesk::clock::Clock>) -> postdesk::workflow::Desk {
        let cfg = self.config();
        let engine = Arc::new(postdesk::workflow::Engine::new(&cfg, clock).unwrap());
        let store = postdesk::store::Store::open(&cfg.db_path()).unwrap();
        postdesk::workflow::Desk::new(store, engine)
    }

    /// `postdesk ticket set <id> --status <to>`, as `actor`, at `at`.
    pub fn set_status(
        desk: &postdesk::workflow::Desk,
        id: postdesk::model::TicketId,
        to: postdesk::model::Status,
        actor: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Vec<String> {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(desk.admin_change(
                id,
                vec![postdesk::workflow::admin::Change::Status(to)],
                actor,
                at,
            ))
            .unwrap_or_else(|e| panic!("#{id} to {to}: {e}"))
    }

    /// Events of a ticket, as (kind, new, detail).
    pub fn events(&self, id: i64) -> Vec<(String, Option<String>, Option<String>)> {
        self.ticket(id)
            .events
            .into_iter()
            .map(|e| (e.kind.as_str().to_owned(), e.new, e.detail))
            .collect()
    }

    /// Starts the daemon in this process (own runtime, own thread); returns when every
    /// mailbox has caught up.
    pub fn start(&self) -> Daemon {
        self.start_with_clock(Arc::new(postdesk::clock::SystemClock))
    }

    pub fn start_with_clock(&self, clock: Arc<dyn postdesk::clock::Clock>) -> Daemon {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_env("TEST_LOG"))
                .with_test_writer()
                .try_init();
        }
        let cfg = self.config();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (ready_os, ready_os_rx) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    if ready_os_rx.await.is_ok() {
                        let _ = ready_tx.send(());
                    }
                });
                let opts = postdesk::daemon::Options {
                    hold_outbox: false,
                    ready: Some(ready_os),
                };
                postdesk::daemon::run(cfg, opts, clock, async {
                    let _ = stop_rx.await;
                })
                .await
                .expect("daemon runs");
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("daemon ready within 30 s");
        Daemon {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Starts `postdesk run` as a separate process with `RUST_LOG=log` and its stderr in
    /// `log_file`.
    pub fn spawn_logged(&self, log: &str, log_file: &Path) -> Process {
        let file = std::fs::File::create(log_file).unwrap();
        Process(
            Command::new(env!("CARGO_BIN_EXE_postdesk"))
                .args(["--config", self.config_path.to_str().unwrap(), "run"])
                .env("RUST_LOG", log)
                .stderr(file)
                .spawn()
                .expect("start postdesk"),
        )
    }

    /// Starts `postdesk run` as a separate process (for SIGKILL tests).
    pub fn spawn_process(&self) -> Process {
        Process(
            Command::new(env!("CARGO_BIN_EXE_postdesk"))
                .args(["--config", self.config_path.to_str().unwrap(), "run"])
                .env("RUST_LOG", "warn")
                .spawn()
                .expect("start postdesk"),
        )
    }

    /// Runs a `postdesk` command on this instance's config; returns (exit ok, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .output()
            .expect("run postdesk");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// A `postdesk run` process, killed with SIGKILL (and reaped) on drop.
pub struct Process(Child);

impl Process {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Sends `signal` (`HUP`, `TERM`, …) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Waits up to `timeout` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGKILL, as a power cut or the OOM killer would.
    pub fn kill(mut self) {
        self.reap();
    }
    fn reap(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.reap();
    }
}

/// An in-process daemon; stopped (gracefully) on drop.
pub struct Daemon {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    pub fn stop(mut self) {
        self.shutdown();
    }
    fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}
