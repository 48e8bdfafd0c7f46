//! The Prometheus text file (`metrics_file`), rewritten every minute by the daemon for
//! node_exporter's textfile collector, and the warnings of `postdesk status` (a mailbox's
//! open alarm among them). Both read the stored [`StatusReport`]: what the daemon last
//! recorded, whichever process asks. The file is written to a temporary file and renamed,
//! mode 0644 (the service's umask is 0077), so a reader never sees half a file.

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::stamp;
use crate::store::{MailboxStatus, StatusReport};

/// What the daemon measures in memory (the rest comes from the store).
#[derive(Debug, Default)]
pub struct Stats {
    /// Duration of the last IMAP sync that brought mail, per message, in microseconds:
    /// fetch, parse, commit.
    pub ingest_micros_per_message: AtomicU64,
    /// Messages in that sync.
    pub last_sync_messages: AtomicU64,
}

impl Stats {
    pub fn record_sync(&self, messages: usize, elapsed: std::time::Duration) {
        if messages == 0 {
            return;
        }
        let per = elapsed.as_micros() / messages as u128;
        self.ingest_micros_per_message
            .store(per.min(u64::MAX as u128) as u64, Ordering::Relaxed);
        self.last_sync_messages
            .store(messages as u64, Ordering::Relaxed);
    }
}

/// The file's text. Pure.
pub fn render(s: &StatusReport, stats: &Stats) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, value) in samples {
            out.push_str(&format!("{name}{labels} {value}\n"));
        }
    };
    let one = |v: i64| vec![(String::new(), v.to_string())];
    metric(
        "postdesk_messages_in_total",
        "counter",
        "Incoming messages stored.",
        one(s.messages.incoming),
    );
    metric(
        "postdesk_messages_out_total",
        "counter",
        "Outgoing messages written.",
        one(s.messages.outgoing),
    );
    metric(
        "postdesk_tickets_total",
        "counter",
        "Tickets opened.",
        one(s.tickets),
    );
    metric(
        "postdesk_mails_sent_total",
        "counter",
        "Mails the SMTP server accepted.",
        one(s.outbox.sent),
    );
    metric(
        "postdesk_send_failures_total",
        "counter",
        "Mails refused for good.",
        one(s.outbox.failed),
    );
    metric(
        "postdesk_outbox_depth",
        "gauge",
        "Mails waiting to be sent.",
        one(s.outbox.queued + s.outbox.sending),
    );
    metric(
        "postdesk_quarantine_size",
        "gauge",
        "Messages held in quarantine.",
        one(s.quarantine),
    );
    metric(
        "postdesk_search_unindexed",
        "gauge",
        "Messages the search index has not taken in yet.",
        one(s.unindexed),
    );
    metric(
        "postdesk_sla_breaches_total",
        "counter",
        "SLA deadlines breached.",
        one(s.sla_breaches),
    );
    let label = |m: &str| format!("{{mailbox=\"{}\"}}", m.replace(['"', '\\', '\n'], "_"));
    metric(
        "postdesk_mailbox_connected",
        "gauge",
        "1 while the mailbox's IMAP session is up.",
        s.mailboxes
            .iter()
            .map(|m| (label(&m.name), u8::from(m.connected).to_string()))
            .collect(),
    );
    metric(
        "postdesk_mailbox_backlog",
        "gauge",
        "Messages left on the server after the last batch.",
        s.mailboxes
            .iter()
            .map(|m| (label(&m.name), m.backlog.to_string()))
            .collect(),
    );
    metric(
        "postdesk_mailbox_alarm",
        "gauge",
        "1 while the mailbox has an open alarm (cannot log in, or no sync for alert_after).",
        s.mailboxes
            .iter()
            .map(|m| (label(&m.name), u8::from(m.alarm.is_some()).to_string()))
            .collect(),
    );
    metric(
        "postdesk_mailbox_token_warning",
        "gauge",
        "1 while the mailbox's refresh token expires within token_expiry_warning.",
        s.mailboxes
            .iter()
            .map(|m| {
                (
                    label(&m.name),
                    u8::from(m.token_warning.is_some()).to_string(),
                )
            })
            .collect(),
    );
    let times = |of: &dyn Fn(&MailboxStatus) -> Option<DateTime<Utc>>| -> Vec<(String, String)> {
        s.mailboxes
            .iter()
            .filter_map(|m| Some((label(&m.name), of(m)?.timestamp().to_string())))
            .collect()
    };
    metric(
        "postdesk_mailbox_last_login_timestamp_seconds",
        "gauge",
        "When the mailbox last logged in (Unix time).",
        times(&|m| m.last_login_at),
    );
    metric(
        "postdesk_mailbox_last_sync_timestamp_seconds",
        "gauge",
        "When the mailbox last completed an IDLE or poll round (Unix time).",
        times(&|m| m.last_sync_at.as_deref().and_then(stamp::parse)),
    );
    metric(
        "postdesk_mailbox_token_expiry_timestamp_seconds",
        "gauge",
        "When the mailbox's OAuth refresh token expires, where the provider says (Unix time).",
        times(&|m| m.token.refresh_expires_at),
    );
    let micros = stats.ingest_micros_per_message.load(Ordering::Relaxed);
    metric(
        "postdesk_ingest_seconds_per_message",
        "gauge",
        "Fetch, parse and commit time per message in the last sync that brought mail.",
        vec![(String::new(), format!("{:.6}", micros as f64 / 1e6))],
    );
    out
}

/// Writes `text` to `path` atomically, mode 0644.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("metrics")
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// What `postdesk status` points out: quiet mailboxes (`quiet_warning`), sessions down,
/// mail stuck in the outbox, quarantined messages.
pub fn warnings(cfg: &Config, r: &StatusReport, now: chrono::DateTime<chrono::Utc>) -> Vec<String> {
    let age = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| now.signed_duration_since(t.with_timezone(&chrono::Utc)))
    };
    let mut out = Vec::new();
    let shown = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    for m in &r.mailboxes {
        if let Some(a) = &m.alarm {
            out.push(format!(
                "mailbox {}: ALARM since {}: {}",
                m.name,
                shown(a.since),
                a.reason
            ));
        } else if let Some(e) = &m.last_error {
            if !m.connected {
                out.push(format!("mailbox {}: not connected: {e}", m.name));
            }
        }
        if let Some(w) = &m.token_warning {
            out.push(format!(
                "mailbox {}: login expiring (since {}): {}; run `postdesk login {}`",
                m.name,
                shown(w.since),
                w.reason,
                m.name
            ));
        }
        let quiet = cfg.mailbox(&m.name).and_then(|c| c.imap.quiet_warning);
        if let Some(limit) = quiet {
            let since = m
                .last_message_at
                .as_deref()
                .or(m.last_sync_at.as_deref())
                .and_then(age);
            if let Some(since) = since {
                if since.to_std().unwrap_or_default() >= limit {
                    out.push(format!(
                        "mailbox {}: no mail for {} minutes",
                        m.name,
                        since.num_minutes()
                    ));
                }
            }
        }
    }
    if let Some(oldest) = r.outbox_oldest.as_deref().and_then(age) {
        if oldest.to_std().unwrap_or_default() >= cfg.outbox.warn_after {
            out.push(format!(
                "outbox: mail waiting for {} minutes (postdesk outbox list)",
                oldest.num_minutes()
            ));
        }
    }
    if r.quarantine > 0 {
        out.push(format!(
            "quarantine: {} message(s) held (postdesk quarantine list)",
            r.quarantine
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AlarmKind;
    use crate::store::{Incident, MessageCounts, OutboxCounts, TokenRecord};

    #[test]
    fn renders_prometheus_text() {
        let s = report();
        let stats = Stats::default();
        stats.record_sync(4, std::time::Duration::from_millis(2));
        let text = render(&s, &stats);
        for line in [
            "postdesk_messages_in_total 10",
            "postdesk_outbox_depth 3",
            "postdesk_mailbox_connected{mailbox=\"support\"} 1",
            "postdesk_mailbox_backlog{mailbox=\"support\"} 3",
            "postdesk_ingest_seconds_per_message 0.000500",
            "# TYPE postdesk_sla_breaches_total counter",
            "postdesk_mailbox_alarm{mailbox=\"support\"} 1",
            "postdesk_mailbox_token_warning{mailbox=\"support\"} 0",
            "postdesk_mailbox_last_login_timestamp_seconds{mailbox=\"support\"} 1795608000",
            "postdesk_mailbox_token_expiry_timestamp_seconds{mailbox=\"support\"} 1796731200",
            "# TYPE postdesk_mailbox_last_sync_timestamp_seconds gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        // Never synced: no sample rather than a zero time.
        assert!(
            !text.contains("postdesk_mailbox_last_sync_timestamp_seconds{"),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postdesk.prom");
        write(&path, &text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn status_warns_of_open_alarms_and_expiring_logins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), "x").unwrap();
        let cfg = crate::config::from_str(
            &dir.path().join("postdesk.toml"),
            &format!(
                "data_dir = \"{}\"\nhostname = \"h.example.test\"\n[smtp]\nhost = \"127.0.0.1\"\n\
                 [[queue]]\nname = \"support\"\n[[mailbox]]\nname = \"support\"\n\
                 address = \"support@example.test\"\nqueue = \"support\"\ntag = \"ACME\"\n\
                 host = \"127.0.0.1\"\npassword_file = \"password\"\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut s = report();
        s.mailboxes[0].last_error = Some("cannot connect".into());
        s.mailboxes[0].connected = false;
        s.mailboxes[0].token_warning = Some(Incident {
            kind: AlarmKind::TokenExpiring,
            since: stamp::parse("2026-11-25T12:00:00.000Z").unwrap(),
            reason: "the refresh token expires at 2026-12-08 12:00 UTC".into(),
        });
        s.outbox_oldest = None;
        s.quarantine = 0;
        let now = stamp::parse("2026-11-25T12:30:00.000Z").unwrap();
        assert_eq!(
            warnings(&cfg, &s, now),
            [
                "mailbox support: ALARM since 2026-11-25 12:00 UTC: no IDLE or poll round completed within 10m",
                "mailbox support: login expiring (since 2026-11-25 12:00 UTC): the refresh token \
                 expires at 2026-12-08 12:00 UTC; run `postdesk login support`",
            ]
        );
        s.mailboxes[0].alarm = None;
        s.mailboxes[0].token_warning = None;
        assert_eq!(
            warnings(&cfg, &s, now),
            ["mailbox support: not connected: cannot connect"]
        );
    }

    fn report() -> StatusReport {
        StatusReport {
            mailboxes: vec![MailboxStatus {
                name: "support".into(),
                uidvalidity: Some(1),
                last_uid: 9,
                last_sync_at: None,
                last_error: None,
                last_error_at: None,
                connected: true,
                mode: Some("idle".into()),
                last_message_at: None,
                backlog: 3,
                last_login_at: stamp::parse("2026-11-25T12:00:00.000Z"),
                auth_state: Some(crate::model::AuthState::Ok),
                auth_error: None,
                token: TokenRecord {
                    expires_at: None,
                    refresh_expires_at: stamp::parse("2026-12-08T12:00:00.000Z"),
                    needs_login: None,
                },
                alarm: Some(Incident {
                    kind: AlarmKind::NotSyncing,
                    since: stamp::parse("2026-11-25T12:00:00.000Z").unwrap(),
                    reason: "no IDLE or poll round completed within 10m".into(),
                }),
                token_warning: None,
            }],
            messages: MessageCounts {
                incoming: 10,
                outgoing: 7,
            },
            tickets: 5,
            outbox: OutboxCounts {
                queued: 2,
                sending: 1,
                sent: 4,
                failed: 1,
            },
            outbox_oldest: None,
            sla_breaches: 2,
            warnings: vec![],
            quarantine: 1,
            unindexed: 0,
            largest: Vec::new(),
            slowest: Vec::new(),
        }
    }
}
