//! Running under systemd: where logs go, readiness, reload and stop notifications, and
//! the watchdog. `systemd/postdesk.service` is the unit this module answers to
//! (`Type=notify`, `NotifyAccess=main`, `WatchdogSec=60`).
//!
//! In: the environment systemd gives a service (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
//! `WATCHDOG_PID`, `JOURNAL_STREAM`). Out: datagrams on the notify socket (sd_notify(3))
//! and the process's tracing subscriber.
//! - Outside systemd every `notify_*` is a no-op and `watchdog` returns at once: the same
//!   binary runs from a shell, a test or a unit.
//! - Nothing here panics or returns an error: a notification that cannot be sent is a
//!   `warn!`, and the daemon goes on (systemd then times the start out, or the watchdog
//!   fires, and says why in `systemctl status`).
//! - The protocol: `READY=1` once every mailbox has caught up, and again after each
//!   reload; `RELOADING=1` when SIGHUP starts a reload; `STOPPING=1` at shutdown;
//!   `WATCHDOG=1` every half `WatchdogSec` while the main loop is healthy.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;

use crate::shutdown::Shutdown;

/// True when systemd started this process as (part of) a service.
///
/// `NOTIFY_SOCKET` is set for `Type=notify` units (ours), `JOURNAL_STREAM` whenever
/// stdout or stderr is connected to the journal (any unit type, `systemd-run`). Both are
/// what the rest of this module acts on; `INVOCATION_ID` is not used because a shell
/// started from a unit (an admin's `systemd-run --shell`) inherits it while its output
/// goes to a terminal.
pub fn under_systemd() -> bool {
    under_systemd_in(&|key| std::env::var_os(key))
}

fn under_systemd_in(env: &dyn Fn(&str) -> Option<OsString>) -> bool {
    ["NOTIFY_SOCKET", "JOURNAL_STREAM"]
        .into_iter()
        .any(|key| env(key).is_some_and(|v| !v.is_empty()))
}

// ---------------------------------------------------------------- logs

/// Installs the tracing subscriber: native journald fields (priority, target, span
/// fields) when stderr is the journal and journald's socket answers, else formatted lines
/// on stderr. Call once, first thing; a second call changes nothing.
///
/// `RUST_LOG` decides the level (default `info`), but lettre, async-imap and imap-proto
/// stay at `warn` whatever it says: at debug they log whole protocol lines, AUTH and
/// LOGIN included (invariant 7, no secrets in logs).
pub fn init_logging() {
    let journal_stream = stderr_is_journal();
    let (journald, journald_error) = if journal_stream {
        match tracing_journald::layer() {
            Ok(layer) => (Some(layer), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    // Escape codes in the journal are noise, and journald stamps every line itself; on a
    // terminal (or a plain file) the lines look exactly as they always did.
    let stderr = journald.is_none().then(|| {
        let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        if journal_stream {
            layer.with_ansi(false).without_time().boxed()
        } else {
            layer.boxed()
        }
    });
    let _ = tracing_subscriber::registry()
        .with(log_filter())
        .with(journald)
        .with(stderr)
        .try_init();
    if let Some(e) = journald_error {
        tracing::warn!(error = %e, "journald socket not answering; logging to stderr");
    }
}

/// The filter `init_logging` uses: `RUST_LOG` (default `info`) with the protocol crates
/// capped at `warn`.
fn log_filter() -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    ["lettre=warn", "async_imap=warn", "imap_proto=warn"]
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, |f, d| f.add_directive(d))
}

/// True when stderr is the stream systemd connected to the journal. systemd.exec(5):
/// compare `JOURNAL_STREAM`'s device and inode with stderr's, because the variable is
/// inherited by children whose stderr was redirected (`postdesk status 2>file` run from
/// a unit's shell).
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    // fstat(2) on a duplicate of fd 2: std has no fstat on a borrowed descriptor.
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match meta {
        Ok(m) => journal_stream_matches(&value, m.dev(), m.ino()),
        Err(_) => false,
    }
}

/// `JOURNAL_STREAM` is `DEVICE:INODE`, both decimal.
fn journal_stream_matches(value: &OsStr, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = value.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

// ---------------------------------------------------------------- notifications

/// `READY=1`: every mailbox has caught up (first start), or a reload is complete.
pub fn notify_ready() {
    notify(&[NotifyState::Ready]);
}

/// `RELOADING=1` with `MONOTONIC_USEC`: SIGHUP arrived and the reload begins. Send
/// `notify_ready` when the new configuration is in use (or the old one is kept). systemd
/// 253 and later reject `RELOADING=1` without the timestamp; 252 ignores it.
pub fn notify_reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// `STOPPING=1`: shutdown has begun; batches in flight are finishing.
pub fn notify_stopping() {
    notify(&[NotifyState::Stopping]);
}

/// `STATUS=…`: one line for `systemctl status` ("3 mailboxes, caught up"). Line breaks
/// would end the field early, so they become spaces.
pub fn notify_status(text: &str) {
    let line = one_line(text);
    notify(&[NotifyState::Status(&line)]);
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn notify(states: &[NotifyState]) {
    let socket = std::env::var_os("NOTIFY_SOCKET");
    if let Err(e) = send(socket.as_deref(), states) {
        tracing::warn!(error = %e, message = %message(states).trim_end(), "cannot notify systemd");
    }
}

/// The datagram sd_notify(3) sends: one `KEY=VALUE` line per state.
fn message(states: &[NotifyState]) -> String {
    states.iter().map(|s| format!("{s}\n")).collect()
}

/// Sends `states` to `socket` (a path, or `@name` in the abstract namespace, which
/// sd-notify 0.5 does not handle); no socket, nothing to do.
fn send(socket: Option<&OsStr>, states: &[NotifyState]) -> io::Result<()> {
    let Some(socket) = socket.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let msg = message(states);
    let sock = UnixDatagram::unbound()?;
    match socket.as_encoded_bytes().strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.connect_addr(&addr)?;
        }
        None => sock.connect(socket)?,
    }
    let sent = sock.send(msg.as_bytes())?;
    if sent != msg.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "notification truncated",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- watchdog

/// How often to send `WATCHDOG=1`: half the unit's `WatchdogSec` (sd_watchdog_enabled(3)
/// recommends it), or `None` when systemd watches nothing (no `WATCHDOG_USEC`, or it is
/// meant for another process per `WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().and_then(ping_interval)
}

fn ping_interval(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then(|| timeout / 2)
}

/// Feeds systemd's watchdog until shutdown: `WATCHDOG=1` every `watchdog_interval()`,
/// but only while `alive()` says the main loop is healthy. A main loop that stops
/// beating therefore gets the daemon killed (SIGABRT) and restarted after `WatchdogSec`,
/// which is the point: this task alone still running proves nothing. Returns at once
/// when no watchdog is configured.
pub async fn watchdog(shutdown: Shutdown, alive: impl Fn() -> bool) {
    let Some(every) = watchdog_interval() else {
        return;
    };
    tracing::info!(every = ?every, "feeding systemd's watchdog");
    feed(every, shutdown, alive, || notify(&[NotifyState::Watchdog])).await;
}

async fn feed(
    every: Duration,
    mut shutdown: Shutdown,
    alive: impl Fn() -> bool,
    mut ping: impl FnMut(),
) {
    let mut stalled = false;
    loop {
        if alive() {
            if stalled {
                tracing::info!("main loop beating again; feeding the watchdog");
            }
            stalled = false;
            ping();
        } else if !stalled {
            tracing::error!("main loop stalled; no longer feeding the watchdog");
            stalled = true;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.requested() => return,
        }
    }
}

/// What `alive` can check: the main loop calls `beat()` each time round, the watchdog
/// asks `age()`. Cheap to clone; every clone is the same heartbeat.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    start: Instant,
    /// Milliseconds from `start` to the last beat.
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    /// A heartbeat that has just beaten.
    pub fn new() -> Heartbeat {
        Heartbeat {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn beat(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time since the last beat.
    pub fn age(&self) -> Duration {
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

impl Default for Heartbeat {
    fn default() -> Heartbeat {
        Heartbeat::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    #[test]
    fn under_systemd_needs_notify_socket_or_journal_stream() {
        for (vars, want) in [
            (vec![], false),
            (vec![("NOTIFY_SOCKET", "/run/systemd/notify")], true),
            (vec![("JOURNAL_STREAM", "8:12345")], true),
            (vec![("NOTIFY_SOCKET", "")], false),
            (vec![("INVOCATION_ID", "0123abcd")], false),
            (vec![("WATCHDOG_USEC", "60000000")], false),
        ] {
            let env = |key: &str| {
                vars.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| OsString::from(v))
            };
            assert_eq!(under_systemd_in(&env), want, "env: {vars:?}");
        }
    }

    #[test]
    fn journal_stream_must_name_stderr() {
        for (value, want) in [
            ("8:12345", true),
            ("8:12346", false),
            ("9:12345", false),
            ("8:", false),
            ("12345", false),
            ("", false),
            ("8:12345:1", false),
            (" 8:12345", false),
        ] {
            assert_eq!(
                journal_stream_matches(OsStr::new(value), 8, 12345),
                want,
                "JOURNAL_STREAM={value:?}"
            );
        }
    }

    #[test]
    fn watchdog_pings_at_half_the_timeout() {
        assert_eq!(
            ping_interval(Duration::from_secs(60)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            ping_interval(Duration::from_micros(3)),
            Some(Duration::from_nanos(1500))
        );
        assert_eq!(ping_interval(Duration::ZERO), None);
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(
            one_line("3 mailboxes\ncaught up\r\n"),
            "3 mailboxes caught up  "
        );
        assert_eq!(one_line("同步完成"), "同步完成");
    }

    #[test]
    fn messages_are_sd_notify_lines() {
        for (states, want) in [
            (vec![NotifyState::Ready], "READY=1\n"),
            (vec![NotifyState::Stopping], "STOPPING=1\n"),
            (vec![NotifyState::Watchdog], "WATCHDOG=1\n"),
            (
                vec![NotifyState::Reloading, NotifyState::MonotonicUsec(42)],
                "RELOADING=1\nMONOTONIC_USEC=42\n",
            ),
            (vec![NotifyState::Status("caught up")], "STATUS=caught up\n"),
        ] {
            assert_eq!(message(&states), want);
        }
    }

    fn receive(sock: &UnixDatagram) -> String {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a datagram");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn sends_to_a_socket_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        send(Some(path.as_os_str()), &[NotifyState::Ready]).unwrap();
        assert_eq!(receive(&sock), "READY=1\n");
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("postdesk-test-{}-{:?}", std::process::id(), Instant::now());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        let env = OsString::from(format!("@{name}"));
        send(Some(&env), &[NotifyState::Stopping]).unwrap();
        assert_eq!(receive(&sock), "STOPPING=1\n");
    }

    #[test]
    fn no_socket_is_not_an_error() {
        send(None, &[NotifyState::Ready]).unwrap();
        send(Some(OsStr::new("")), &[NotifyState::Ready]).unwrap();
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        assert!(send(Some(gone.as_os_str()), &[NotifyState::Ready]).is_err());
    }

    #[tokio::test]
    async fn watchdog_is_fed_only_while_alive_and_stops_at_shutdown() {
        let (trigger, shutdown) = crate::shutdown::channel();
        let alive = Arc::new(AtomicBool::new(true));
        let pings = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (alive, pings) = (alive.clone(), pings.clone());
            async move {
                feed(
                    Duration::from_millis(10),
                    shutdown,
                    move || alive.load(Ordering::SeqCst),
                    move || {
                        pings.fetch_add(1, Ordering::SeqCst);
                    },
                )
                .await;
            }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let while_alive = pings.load(Ordering::SeqCst);
        assert!(while_alive >= 3, "{while_alive} pings in 200 ms at 10 ms");

        alive.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let at_stall = pings.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(pings.load(Ordering::SeqCst), at_stall, "fed while stalled");

        alive.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            pings.load(Ordering::SeqCst) > at_stall,
            "not fed after recovery"
        );

        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("watchdog task ends at shutdown")
            .unwrap();
    }

    #[test]
    fn heartbeat_ages_until_it_beats() {
        let hb = Heartbeat::new();
        std::thread::sleep(Duration::from_millis(30));
        assert!(hb.age() >= Duration::from_millis(30));
        hb.clone().beat();
        assert!(
            hb.age() < Duration::from_millis(30),
            "a clone beats for all"
        );
    }
}
