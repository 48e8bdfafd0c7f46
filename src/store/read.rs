//! Read-only views for the CLI and `--json`; a separate read-only connection, so that
//! reading never waits for the writer (WAL).

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use serde::Serialize;

use chrono::{DateTime, Utc};

use super::{opt_time, opt_value, time, ts, value, StoreError};
use crate::model::{
    stamp, AlarmKind, Audience, AuthState, Deadline, Direction, EventKind, Language, MailboxName,
    OutboxId, OutboxKind, OutboxState, Priority, QuarantineId, QuarantineState, Status, TicketId,
    Uid, UidValidity,
};

/// How many of the newest matching messages a search reads. Fewer matches: all of them,
/// best first (bm25); as many or more (a common word in a big store): those newest
/// first, unranked — bm25 would first count every message holding each word (its IDF),
/// which for a word in a fifth of a million-ticket store cost ~100 ms, against ~10 ms
/// for the newest 5,000.
pub const SEARCH_WINDOW: usize = 5_000;

pub struct Reader {
    /// Shared with `store::report`, which reads under one transaction.
    pub(super) conn: Connection,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketSummary {
    pub id: TicketId,
    /// The subject token, `[ACME #42]`.
    pub tag: String,
    pub subject: String,
    pub status: Status,
    pub priority: Priority,
    pub queue: String,
    pub requester: Option<String>,
    pub requester_name: Option<String>,
    pub assignee: Option<String>,
    pub message_count: i64,
    #[serde(serialize_with = "stamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "stamp::serialize")]
    pub updated_at: DateTime<Utc>,
    pub flagged: Option<String>,
    pub linked_to: Option<i64>,
    pub language: Language,
    pub tags: Vec<String>,
    #[serde(serialize_with = "stamp::option::serialize")]
    pub first_response_at: Option<DateTime<Utc>>,
    pub merged_into: Option<i64>,
    /// The customer's satisfaction rating (1-5), the latest one given.
    pub csat: Option<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub direction: Direction,
    /// `customer`, `agents` (relays) or `internal` (agents' mail as received, notes).
    pub audience: Audience,
    /// The agent who wrote it, for incoming agent mail.
    pub agent: Option<String>,
    pub unverified: bool,
    pub class: String,
    /// The recognisers that decided `class` (`[]` for outgoing mail and older rows).
    pub classified_by: serde_json::Value,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub date: Option<String>,
    #[serde(serialize_with = "stamp::serialize")]
    pub recorded_at: DateTime<Utc>,
    pub text: String,
    pub attachments: serde_json::Value,
    pub mailbox: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    #[serde(serialize_with = "stamp::serialize")]
    pub at: DateTime<Utc>,
    pub actor: String,
    pub kind: EventKind,
    pub old: Option<String>,
    pub new: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeadlineView {
    pub deadline: Deadline,
    #[serde(serialize_with = "stamp::serialize")]
    pub started_at: DateTime<Utc>,
    /// `null` while paused (a pending ticket's resolution clock).
    #[serde(serialize_with = "stamp::option::serialize")]
    pub due_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "stamp::option::serialize")]
    pub warned_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "stamp::option::serialize")]
    pub breached_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "stamp::option::serialize")]
    pub met_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    pub address: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketDetail {
    #[serde(flatten)]
    pub ticket: TicketSummary,
    pub participants: Vec<Participant>,
    /// SLA deadlines: due times (local to nobody: UTC), warnings, breaches, met.
    pub sla: Vec<DeadlineView>,
    pub messages: Vec<MessageView>,
    pub events: Vec<EventView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MailboxStatus {
    pub name: String,
    pub uidvalidity: Option<u32>,
    pub last_uid: u32,
    pub last_sync_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// A session is up (as the daemon last recorded; false after an error).
    pub connected: bool,
    /// `idle` or `poll`.
    pub mode: Option<String>,
    /// When the last message came in.
    pub last_message_at: Option<String>,
    /// Messages left on the server after the last batch.
    pub backlog: u32,
    /// When the mailbox last logged in.
    #[serde(serialize_with = "stamp::option::serialize")]
    pub last_login_at: Option<DateTime<Utc>>,
    /// `ok` after a login, `failed` after a refused one, `null` before any.
    pub auth_state: Option<AuthState>,
    /// Why the last login was refused (while `auth_state` is `failed`).
    pub auth_error: Option<String>,
    /// OAuth mailboxes: the token as the daemon last saw it.
    pub token: TokenRecord,
    /// The open alarm (cannot log in, not fetching), as the daemon raised it.
    pub alarm: Option<Incident>,
    /// The open warning that the refresh token expires soon.
    pub token_warning: Option<Incident>,
}

/// An open incident of a mailbox (`workflow::health`): mailed once when it opened, once
/// when it closes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    pub kind: AlarmKind,
    /// When the trouble began: the last sync (or the daemon's start) for `not-syncing`,
    /// the refused login for `login-failed`, when the warning was raised for
    /// `token-expiring`.
    #[serde(serialize_with = "stamp::serialize")]
    pub since: DateTime<Utc>,
    /// What is wrong, for people; holds no secret.
    pub reason: String,
}

/// An OAuth mailbox's token as the daemon last saw it (all `None` for a password login).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// When the access token expires (refreshed before then).
    #[serde(serialize_with = "stamp::option::serialize")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the refresh token expires, where the provider says: after it, only a new
    /// `postdesk login` helps.
    #[serde(serialize_with = "stamp::option::serialize")]
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// The authorization server refused a refresh: why.
    pub needs_login: Option<String>,
}

/// What the health check reads of one mailbox, inside its write transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxHealth {
    pub name: MailboxName,
    /// The last completed IDLE or poll round.
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    /// The last error of the session (cleared by a sync).
    pub last_error: Option<String>,
    pub auth_state: Option<AuthState>,
    pub auth_error: Option<String>,
    /// When the last refused login happened.
    pub auth_failed_at: Option<DateTime<Utc>>,
    pub token: TokenRecord,
    pub alarm: Option<Incident>,
    pub token_warning: Option<Incident>,
}

impl MailboxHealth {
    /// A mailbox with no row yet: nothing known.
    pub fn unknown(name: MailboxName) -> MailboxHealth {
        MailboxHealth {
            name,
            last_sync_at: None,
            last_login_at: None,
            last_error: None,
            auth_state: None,
            auth_error: None,
            auth_failed_at: None,
            token: TokenRecord::default(),
            alarm: None,
            token_warning: None,
        }
    }
}

/// The `mailboxes` columns [`health_row`] reads, in its order.
pub(super) const HEALTH_COLUMNS: &str = "name, last_sync_at, last_login_at, last_error, \
    auth_state, auth_error, auth_failed_at, token_expires_at, refresh_expires_at, \
    token_needs_login, alarm_kind, alarm_since, alarm_reason, token_warning_since, \
    token_warning_reason";

/// A row of [`HEALTH_COLUMNS`] starting at column `at`.
pub(super) fn health_row(r: &Row<'_>, at: usize) -> rusqlite::Result<MailboxHealth> {
    let alarm = match (opt_value::<AlarmKind>(r, at + 10)?, opt_time(r, at + 11)?) {
        (Some(kind), Some(since)) => Some(Incident {
            kind,
            since,
            reason: r.get::<_, Option<String>>(at + 12)?.unwrap_or_default(),
        }),
        _ => None,
    };
    let token_warning = opt_time(r, at + 13)?.map(|since| -> rusqlite::Result<Incident> {
        Ok(Incident {
            kind: AlarmKind::TokenExpiring,
            since,
            reason: r.get::<_, Option<String>>(at + 14)?.unwrap_or_default(),
        })
    });
    Ok(MailboxHealth {
        name: MailboxName::new(r.get::<_, String>(at)?),
        last_sync_at: opt_time(r, at + 1)?,
        last_login_at: opt_time(r, at + 2)?,
        last_error: r.get(at + 3)?,
        auth_state: opt_value(r, at + 4)?,
        auth_error: r.get(at + 5)?,
        auth_failed_at: opt_time(r, at + 6)?,
        token: TokenRecord {
            expires_at: opt_time(r, at + 7)?,
            refresh_expires_at: opt_time(r, at + 8)?,
            needs_login: r.get(at + 9)?,
        },
        alarm,
        token_warning: token_warning.transpose()?,
    })
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageCounts {
    pub incoming: i64,
    pub outgoing: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct OutboxCounts {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub mailboxes: Vec<MailboxStatus>,
    pub messages: MessageCounts,
    pub tickets: i64,
    pub outbox: OutboxCounts,
    /// When the oldest mail still waiting to be sent was queued.
    pub outbox_oldest: Option<String>,
    /// SLA deadlines breached so far.
    pub sla_breaches: i64,
    /// Things an operator should look at ("no mail for 130 minutes in support").
    pub warnings: Vec<String>,
    /// Messages held in quarantine (not yet released).
    pub quarantine: i64,
    /// Messages the search index has not taken in yet (normally 0: the writer indexes
    /// within a second of a commit).
    pub unindexed: i64,
    /// The largest messages of the last hour, largest first (filled by the caller with
    /// [`Reader::costliest`], which needs the time).
    pub largest: Vec<MessageCost>,
    /// The messages of the last hour that took longest to parse, slowest first.
    pub slowest: Vec<MessageCost>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantineView {
    pub id: QuarantineId,
    pub mailbox: Option<String>,
    pub uidvalidity: Option<u32>,
    pub uid: Option<u32>,
    pub reason: String,
    pub state: QuarantineState,
    /// Size of the whole message, in bytes.
    pub size: i64,
    /// Bytes kept in quarantine: `size` unless `truncated`.
    pub kept: i64,
    /// Only the headers and a prefix are kept; the whole message is where it came from.
    pub truncated: bool,
    /// SHA-256 (hex), of the whole message or of the bytes kept as `sha256_of` says
    /// (`None` for rows held before sizes and hashes were recorded).
    pub sha256: Option<String>,
    pub sha256_of: Option<String>,
    #[serde(serialize_with = "stamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "stamp::option::serialize")]
    pub released_at: Option<DateTime<Utc>>,
}

/// One incoming message and what it cost (`postdesk status`).
#[derive(Debug, Clone, Serialize)]
pub struct MessageCost {
    #[serde(serialize_with = "stamp::serialize")]
    pub at: DateTime<Utc>,
    pub mailbox: Option<String>,
    pub uid: Option<u32>,
    pub message_id: Option<String>,
    pub size: i64,
    /// Microseconds spent parsing and classifying it.
    pub prepare_us: i64,
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxView {
    pub id: OutboxId,
    pub ticket: Option<i64>,
    pub kind: OutboxKind,
    pub to: Vec<String>,
    pub subject: String,
    pub state: OutboxState,
    pub attempts: i64,
    #[serde(serialize_with = "stamp::serialize")]
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub response: Option<String>,
    #[serde(serialize_with = "stamp::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "stamp::option::serialize")]
    pub sent_at: Option<DateTime<Utc>>,
}

/// One ticket found by `ticket search`, best first.
#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub id: TicketId,
    pub tag: String,
    pub subject: String,
    pub status: Status,
    pub queue: String,
    pub requester: Option<String>,
    /// bm25 of the best matching message (lower is better); 0 for the LIKE fallback.
    pub rank: f64,
    /// The match in context, `[` and `]` around it.
    pub snippet: String,
}

/// Filters for `ticket list`.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub queue: Option<String>,
    pub limit: Option<usize>,
    /// Keyset paging: only tickets with a smaller id (the last id of the page before).
    pub before: Option<TicketId>,
}

const TICKET_COLUMNS: &str = "t.id, t.tag, t.subject, t.status, t.priority, t.queue, t.requester, t.requester_name,
    t.assignee, (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id), t.created_at, t.updated_at,
    t.flagged, t.linked_to, t.language,
    (SELECT COALESCE(json_group_array(tag), '[]') FROM (SELECT tag FROM ticket_tags WHERE ticket_id = t.id ORDER BY tag)),
    t.first_response_at, t.merged_into, t.csat";

/// `m` (a message) holds each of `n` words, bound from parameter `?first` on, in its
/// subject or text: the LIKE half of search.
fn like_every_word(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|p| format!("(m.subject LIKE '%' || ?{p} || '%' OR m.text LIKE '%' || ?{p} || '%')"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn ticket_summary(r: &Row<'_>) -> rusqlite::Result<TicketSummary> {
    let id: i64 = r.get(0)?;
    let tag: String = r.get(1)?;
    Ok(TicketSummary {
        id: TicketId::new(id),
        tag: format!("[{tag} #{id}]"),
        subject: r.get(2)?,
        status: value(r, 3)?,
        priority: value(r, 4)?,
        queue: r.get(5)?,
        requester: r.get(6)?,
        requester_name: r.get(7)?,
        assignee: r.get(8)?,
        message_count: r.get(9)?,
        created_at: time(r, 10)?,
        updated_at: time(r, 11)?,
        flagged: r.get(12)?,
        linked_to: r.get(13)?,
        language: value(r, 14)?,
        tags: json_list(r.get(15)?),
        first_response_at: opt_time(r, 16)?,
        merged_into: r.get(17)?,
        csat: r.get(18)?,
    })
}

fn json_list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

impl Reader {
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "database {} (has `postdesk run` ever started?)",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // A store the daemon has not migrated yet would fail on a missing table: say so.
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found != super::schema::LATEST {
            return Err(StoreError::Schema {
                path: path.to_owned(),
                found,
                want: super::schema::LATEST,
            });
        }
        Ok(Reader { conn })
    }

    /// The connection, for `EXPLAIN QUERY PLAN` in the query-plan test.
    #[cfg(test)]
    pub(crate) fn conn_for_plans(&self) -> &Connection {
        &self.conn
    }

    /// The connection itself, for the query-plan test's trace hook.
    #[cfg(test)]
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// A reader over a connection opened elsewhere (the in-memory store of unit tests).
    #[cfg(test)]
    pub(crate) fn from_connection(conn: Connection) -> Reader {
        Reader { conn }
    }

    /// Tickets newest first. Only the filters given are in the statement, so that each
    /// uses its index (`tickets_status`, `tickets_queue`, the rowid for `before`): a page
    /// costs its own rows, not the store's (issue 15, `store::plans`).
    pub fn tickets(&self, f: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        let mut conds = Vec::new();
        let mut values: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(status) = f.status {
            values.push(Box::new(status.as_str()));
            conds.push(format!("t.status = ?{}", values.len()));
        }
        if let Some(queue) = &f.queue {
            values.push(Box::new(queue.clone()));
            conds.push(format!("t.queue = ?{}", values.len()));
        }
        if let Some(before) = f.before {
            values.push(Box::new(before.get()));
            conds.push(format!("t.id < ?{}", values.len()));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        values.push(Box::new(f.limit.map_or(-1, |l| l as i64)));
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM tickets t {filter} ORDER BY t.id DESC LIMIT ?{}",
            values.len()
        );
        let mut st = self.conn.prepare(&sql)?;
        let params: Vec<&dyn rusqlite::ToSql> = values.iter().map(|v| v.as_ref()).collect();
        let rows = st.query_map(params.as_slice(), ticket_summary)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn ticket(&self, id: TicketId) -> Result<Option<TicketDetail>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets t WHERE t.id = ?1");
        let Some(ticket) = self
            .conn
            .query_row(&sql, [id.get()], ticket_summary)
            .optional()?
        else {
            return Ok(None);
        };
        let mut st = self.conn.prepare(
            "SELECT id, direction, class, from_addr, from_name, to_addrs, cc_addrs, subject, message_id,
                in_reply_to, date, recorded_at, text, attachments, mailbox, audience, agent, unverified,
                classified_by
             FROM messages WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let messages = st
            .query_map([id.get()], |r| {
                let addr: Option<String> = r.get(3)?;
                let name: Option<String> = r.get(4)?;
                Ok(MessageView {
                    id: r.get(0)?,
                    direction: value(r, 1)?,
                    class: r.get(2)?,
                    from: addr.map(|a| match name {
                        Some(n) => format!("{n} <{a}>"),
                        None => a,
                    }),
                    to: json_list(r.get(5)?),
                    cc: json_list(r.get(6)?),
                    subject: r.get(7)?,
                    message_id: format!("<{}>", r.get::<_, String>(8)?),
                    in_reply_to: r.get::<_, Option<String>>(9)?.map(|m| format!("<{m}>")),
                    date: r.get(10)?,
                    recorded_at: time(r, 11)?,
                    text: r.get(12)?,
                    attachments: serde_json::from_str(&r.get::<_, String>(13)?)
                        .unwrap_or(serde_json::Value::Null),
                    mailbox: r.get(14)?,
                    audience: value(r, 15)?,
                    agent: r.get(16)?,
                    unverified: r.get(17)?,
                    classified_by: serde_json::from_str(&r.get::<_, String>(18)?)
                        .unwrap_or(serde_json::Value::Null),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT at, actor, kind, old, new, detail FROM events WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let events = st
            .query_map([id.get()], |r| {
                Ok(EventView {
                    at: time(r, 0)?,
                    actor: r.get(1)?,
                    kind: value(r, 2)?,
                    old: r.get(3)?,
                    new: r.get(4)?,
                    detail: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT address, role FROM participants WHERE ticket_id = ?1 ORDER BY role DESC, address",
        )?;
        let participants = st
            .query_map([id.get()], |r| {
                Ok(Participant {
                    address: r.get(0)?,
                    role: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(
            "SELECT deadline, started_at, due_at, warned_at, breached_at, met_at
             FROM sla_deadlines WHERE ticket_id = ?1 ORDER BY deadline",
        )?;
        let sla = st
            .query_map([id.get()], |r| {
                Ok(DeadlineView {
                    deadline: value(r, 0)?,
                    started_at: time(r, 1)?,
                    due_at: opt_time(r, 2)?,
                    warned_at: opt_time(r, 3)?,
                    breached_at: opt_time(r, 4)?,
                    met_at: opt_time(r, 5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(TicketDetail {
            ticket,
            participants,
            sla,
            messages,
            events,
        }))
    }

    /// The stored RFC 5322 bytes of a message of a ticket.
    pub fn raw_message(
        &self,
        ticket: TicketId,
        message: i64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT r.raw FROM message_raw r JOIN messages m ON m.id = r.message
                 WHERE m.ticket_id = ?1 AND m.id = ?2",
                params![ticket.get(), message],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub fn status(&self, configured: &[String]) -> Result<StatusReport, StoreError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT uidvalidity, last_uid, last_sync_at, last_error, last_error_at, connected, mode,
                last_message_at, backlog, {HEALTH_COLUMNS} FROM mailboxes ORDER BY name"
        ))?;
        let mut mailboxes: Vec<MailboxStatus> = st
            .query_map([], |r| {
                let h = health_row(r, 9)?;
                Ok(MailboxStatus {
                    name: h.name.as_str().to_owned(),
                    uidvalidity: r.get(0)?,
                    last_uid: r.get(1)?,
                    last_sync_at: r.get(2)?,
                    last_error: r.get(3)?,
                    last_error_at: r.get(4)?,
                    connected: r.get(5)?,
                    mode: r.get(6)?,
                    last_message_at: r.get(7)?,
                    backlog: r.get(8)?,
                    last_login_at: h.last_login_at,
                    auth_state: h.auth_state,
                    auth_error: h.auth_error,
                    token: h.token,
                    alarm: h.alarm,
                    token_warning: h.token_warning,
                })
            })?
            .collect::<Result<_, _>>()?;
        for name in configured {
            if !mailboxes.iter().any(|m| &m.name == name) {
                mailboxes.push(MailboxStatus {
                    name: name.clone(),
                    uidvalidity: None,
                    last_uid: 0,
                    last_sync_at: None,
                    last_error: None,
                    last_error_at: None,
                    connected: false,
                    mode: None,
                    last_message_at: None,
                    backlog: 0,
                    last_login_at: None,
                    auth_state: None,
                    auth_error: None,
                    token: TokenRecord::default(),
                    alarm: None,
                    token_warning: None,
                });
            }
        }
        // Counted by triggers (schema V11): a dozen rows, whatever the store's size.
        let counts: std::collections::HashMap<String, i64> = self
            .conn
            .prepare("SELECT name, n FROM counts")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let count = |name: &str| counts.get(name).copied().unwrap_or(0);
        let messages = MessageCounts {
            incoming: count("messages_in"),
            outgoing: count("messages_out"),
        };
        let tickets = count("tickets");
        let outbox = OutboxCounts {
            queued: count("outbox_queued"),
            sending: count("outbox_sending"),
            sent: count("outbox_sent"),
            failed: count("outbox_failed"),
        };
        let quarantine = count("quarantine_held");
        let outbox_oldest = self.conn.query_row(
            "SELECT MIN(created_at) FROM outbox WHERE state IN ('queued', 'sending')",
            [],
            |r| r.get(0),
        )?;
        let sla_breaches = count("sla_breaches");
        Ok(StatusReport {
            mailboxes,
            messages,
            tickets,
            outbox,
            outbox_oldest,
            sla_breaches,
            warnings: Vec::new(),
            quarantine,
            unindexed: self.unindexed()?,
            largest: Vec::new(),
            slowest: Vec::new(),
        })
    }

    /// The `n` largest and the `n` slowest messages recorded since `since`.
    pub fn costliest(
        &self,
        since: DateTime<Utc>,
        n: usize,
    ) -> Result<(Vec<MessageCost>, Vec<MessageCost>), StoreError> {
        let top = |order: &str| -> Result<Vec<MessageCost>, StoreError> {
            let mut st = self.conn.prepare(&format!(
                "SELECT at, mailbox, uid, message_id, size, prepare_us, outcome FROM ingest_costs
                 WHERE at >= ?1 ORDER BY {order} DESC, at DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![ts(since), n as i64], |r| {
                Ok(MessageCost {
                    at: time(r, 0)?,
                    mailbox: r.get(1)?,
                    uid: r.get(2)?,
                    message_id: r.get(3)?,
                    size: r.get(4)?,
                    prepare_us: r.get(5)?,
                    outcome: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        Ok((top("size")?, top("prepare_us")?))
    }

    /// Every quarantined message, oldest first (tests, small stores; the CLI pages with
    /// [`Reader::quarantine_page`]).
    pub fn quarantine_list(&self) -> Result<Vec<QuarantineView>, StoreError> {
        self.quarantine_page(None)
    }

    /// The newest `limit` quarantined messages, shown oldest first.
    pub fn quarantine_page(&self, limit: Option<usize>) -> Result<Vec<QuarantineView>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT * FROM (
                SELECT id, mailbox, uidvalidity, uid, reason, state, COALESCE(size, length(raw)),
                    length(raw), truncated, sha256, sha256_of, created_at, released_at
                FROM quarantine ORDER BY id DESC LIMIT ?1
             ) ORDER BY 1",
        )?;
        let rows = st.query_map([limit.map_or(-1, |l| l as i64)], |r| {
            Ok(QuarantineView {
                id: QuarantineId::new(r.get(0)?),
                mailbox: r.get(1)?,
                uidvalidity: r.get(2)?,
                uid: r.get(3)?,
                reason: r.get(4)?,
                state: value(r, 5)?,
                size: r.get(6)?,
                kept: r.get(7)?,
                truncated: r.get(8)?,
                sha256: r.get(9)?,
                sha256_of: r.get(10)?,
                created_at: time(r, 11)?,
                released_at: opt_time(r, 12)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn quarantine_raw(
        &self,
        id: QuarantineId,
    ) -> Result<Option<(QuarantineView, Vec<u8>)>, StoreError> {
        let list = self.quarantine_list()?;
        let Some(view) = list.into_iter().find(|q| q.id == id) else {
            return Ok(None);
        };
        let raw: Vec<u8> = self.conn.query_row(
            "SELECT raw FROM quarantine WHERE id = ?1",
            [id.get()],
            |r| r.get(0),
        )?;
        Ok(Some((view, raw)))
    }

    /// Every outbox row (in `state`), oldest first. For tests and small stores; the CLI
    /// pages with [`Reader::outbox_page`].
    pub fn outbox_list(&self, state: Option<&str>) -> Result<Vec<OutboxView>, StoreError> {
        self.outbox_page(state, None)
    }

    /// The newest `limit` outbox rows (in `state`), shown oldest first. By state, the
    /// `outbox_due` index finds them; without, the rowid from the end.
    pub fn outbox_page(
        &self,
        state: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<OutboxView>, StoreError> {
        let filter = if state.is_some() {
            "WHERE o.state = ?1"
        } else {
            "WHERE ?1 IS NULL"
        };
        let mut st = self.conn.prepare(&format!(
            "SELECT * FROM (
                SELECT o.id, o.ticket_id, o.kind, o.rcpt, m.subject, o.state, o.attempts,
                    o.next_attempt_at, o.last_error, o.response, o.created_at, o.sent_at
                FROM outbox o JOIN messages m ON m.id = o.message
                {filter} ORDER BY o.id DESC LIMIT ?2
             ) ORDER BY 1"
        ))?;
        let rows = st.query_map(params![state, limit.map_or(-1, |l| l as i64)], |r| {
            Ok(OutboxView {
                id: OutboxId::new(r.get(0)?),
                ticket: r.get(1)?,
                kind: value(r, 2)?,
                to: json_list(r.get(3)?),
                subject: r.get(4)?,
                state: value(r, 5)?,
                attempts: r.get(6)?,
                next_attempt_at: time(r, 7)?,
                last_error: r.get(8)?,
                response: r.get(9)?,
                created_at: time(r, 10)?,
                sent_at: opt_time(r, 11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Addresses marked undeliverable by a hard bounce: (address, since, status).
    pub fn undeliverable(&self) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT address, since, status FROM undeliverable ORDER BY address")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Full-text search over subjects and texts: FTS5 trigrams for queries whose every
    /// word has three characters or more (Chinese included), `LIKE` otherwise. Tickets
    /// ranked by their best message. Messages the writer has not indexed yet (past the
    /// `fts_state` watermark, usually none or a few) are matched with `LIKE` and ranked
    /// after the indexed ones, so a search never misses a committed message.
    /// The snippet of one hit: the text (else the subject) around the first of the
    /// query's words, each match in brackets ([`snippet_of`]). Not FTS5's `snippet()`:
    /// that opens every word's doclists again for each hit, most of the time of a common
    /// word's search on a big store.
    fn snippet(&self, message: i64, words: &[&str]) -> Result<String, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn
            .prepare_cached("SELECT subject, text FROM messages WHERE id = ?1")?
            .query_row(params![message], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((subject, text)) = row else {
            return Ok(String::new());
        };
        let text = text.unwrap_or_default();
        Ok(snippet_of(&text, words)
            .or_else(|| snippet_of(&subject, words))
            .unwrap_or_default())
    }

    pub fn search(&self, query: &str, filter: &TicketFilter) -> Result<Vec<SearchHit>, StoreError> {
        let words: Vec<&str> = query.split_whitespace().collect();
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let limit = filter.limit.unwrap_or(50) as i64;
        // A two-character CJK word ("打印") is found through `message_bigrams`; anything
        // else under three characters falls back to LIKE.
        let is_pair = |w: &&str| w.chars().count() == 2 && w.chars().all(super::tx::is_cjk);
        let long: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| w.chars().count() >= 3)
            .collect();
        let pairs: Vec<&str> = words.iter().copied().filter(is_pair).collect();
        let trigram = long.len() + pairs.len() == words.len();
        let sql_filter = "(?2 IS NULL OR t.status = ?2) AND (?3 IS NULL OR t.queue = ?3) AND t.merged_into IS NULL";
        // Columns 0..=6; the snippet (column 7) where the statement made it.
        let map_hit = |r: &Row<'_>| -> rusqlite::Result<SearchHit> {
            let id: i64 = r.get(0)?;
            let tag: String = r.get(1)?;
            Ok(SearchHit {
                id: TicketId::new(id),
                tag: format!("[{tag} #{id}]"),
                subject: r.get(2)?,
                status: value(r, 3)?,
                queue: r.get(4)?,
                requester: r.get(5)?,
                rank: r.get(6)?,
                snippet: String::new(),
            })
        };
        let map = |r: &Row<'_>| -> rusqlite::Result<SearchHit> {
            Ok(SearchHit {
                snippet: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                ..map_hit(r)?
            })
        };
        let status = filter.status.map(Status::as_str);
        let hits: Vec<SearchHit> = if trigram {
            // Every word a quoted phrase (implicit AND); quotes inside are doubled.
            let phrase = |list: &[&str]| {
                list.iter()
                    .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let fts_query = phrase(&long);
            let pair_query = phrase(&pairs);
            // A common word matches hundreds of thousands of messages at a million tickets:
            // ranking every match (bm25 and a snippet each) took most of a second. The FTS
            // query walks its matches newest first and stops at SEARCH_WINDOW; bm25 ranks
            // those; snippets are made for the hits shown only (below).
            let (table, matches) = if long.is_empty() {
                (
                    "message_bigrams",
                    "message_bigrams MATCH ?4 AND ?1 IS NOT NULL",
                )
            } else if pairs.is_empty() {
                ("message_fts", "message_fts MATCH ?1")
            } else {
                (
                    "message_fts",
                    "message_fts MATCH ?1
                     AND rowid IN (SELECT rowid FROM message_bigrams WHERE message_bigrams MATCH ?4)",
                )
            };
            // Does the window fill? Then rank by recency, not bm25 (see SEARCH_WINDOW).
            let none: Option<&str> = None;
            let counted: Vec<&dyn rusqlite::ToSql> = if pairs.is_empty() {
                vec![&fts_query]
            } else {
                vec![&fts_query, &none, &none, &pair_query]
            };
            let in_window: i64 = self
                .conn
                .prepare_cached(&format!(
                    "SELECT count(*) FROM (SELECT rowid FROM {table}
                     WHERE {matches} ORDER BY rowid DESC LIMIT {SEARCH_WINDOW})"
                ))?
                .query_row(counted.as_slice(), |r| r.get(0))?;
            let (rank, order) = if in_window as usize >= SEARCH_WINDOW {
                ("0.0", "hit.mid DESC")
            } else {
                (&*format!("bm25({table})"), "hit.rank, t.id DESC")
            };
            let sql = format!(
                "SELECT t.id, t.tag, t.subject, t.status, t.queue, t.requester, hit.rank, hit.mid
                 FROM (SELECT rowid AS mid, {rank} AS rank FROM {table}
                       WHERE {matches} ORDER BY rowid DESC LIMIT {SEARCH_WINDOW}) hit
                 JOIN messages m ON m.id = hit.mid
                 JOIN tickets t ON t.id = m.ticket_id
                 WHERE {sql_filter}
                 ORDER BY {order}"
            );
            let mut st = self.conn.prepare(&sql)?;
            let queue = filter.queue.as_deref();
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&fts_query, &status, &queue];
            if !pairs.is_empty() {
                values.push(&pair_query);
            }
            let rows = st.query_map(values.as_slice(), |r| {
                Ok((map_hit(r)?, r.get::<_, i64>(7)?))
            })?;
            let mut seen = std::collections::HashSet::new();
            let mut hits = Vec::new();
            for hit in rows {
                let (mut hit, message) = hit?;
                if seen.insert(hit.id) {
                    hit.snippet = self.snippet(message, &words)?;
                    hits.push(hit);
                }
                if hits.len() as i64 >= limit {
                    break;
                }
            }
            if (hits.len() as i64) < limit {
                // The unindexed tail: every word somewhere in the subject or the text.
                let each = like_every_word(words.len(), 4);
                let sql = format!(
                    "SELECT t.id, t.tag, t.subject, t.status, t.queue, t.requester, 0.0,
                            substr(m.text, max(1, instr(m.text, ?4) - 30), 80)
                     FROM messages m JOIN tickets t ON t.id = m.ticket_id
                     WHERE m.id > (SELECT last_id FROM fts_state WHERE id = 1) AND {each}
                       AND ?1 IS NOT NULL AND {sql_filter}
                     ORDER BY m.id DESC"
                );
                let mut st = self.conn.prepare(&sql)?;
                let mut values: Vec<&dyn rusqlite::ToSql> =
                    vec![&fts_query, &status, &filter.queue];
                for w in &words {
                    values.push(w);
                }
                let rows = st.query_map(values.as_slice(), map)?;
                for hit in rows {
                    let hit = hit?;
                    if (hits.len() as i64) >= limit {
                        break;
                    }
                    if seen.insert(hit.id) {
                        hits.push(hit);
                    }
                }
            }
            hits
        } else {
            // Every word somewhere in one message, in any order (as FTS5 does).
            let each = like_every_word(words.len(), 5);
            let sql = format!(
                "SELECT t.id, t.tag, t.subject, t.status, t.queue, t.requester, 0.0,
                        (SELECT substr(m.text, max(1, instr(m.text, ?1) - 30), 80) FROM messages m
                         WHERE m.ticket_id = t.id AND {each} ORDER BY m.id LIMIT 1)
                 FROM tickets t
                 WHERE EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id AND {each})
                   AND {sql_filter}
                 ORDER BY (t.subject LIKE '%' || ?1 || '%') DESC, t.id DESC LIMIT ?4"
            );
            let mut st = self.conn.prepare(&sql)?;
            let queue = filter.queue.as_deref();
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&words[0], &status, &queue, &limit];
            for w in &words {
                values.push(w);
            }
            let rows = st.query_map(values.as_slice(), map)?;
            rows.collect::<Result<_, _>>()?
        };
        Ok(hits)
    }

    /// How many messages the search index has not taken in yet (the writer's lag).
    pub fn unindexed(&self) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM messages WHERE id > (SELECT last_id FROM fts_state WHERE id = 1)",
            [],
            |r| r.get(0),
        )?)
    }

    /// A consistent copy of the whole database at `dest`, with SQLite's online backup,
    /// while the daemon keeps writing: one step under one read transaction, so the copy
    /// is the database as it was when the backup began.
    pub fn backup(&self, dest: &Path) -> Result<(), StoreError> {
        if dest.exists() {
            return Err(StoreError::BackupExists(dest.to_owned()));
        }
        // The copy holds every customer's mail: 0600 whatever the umask.
        super::private_file(dest)?;
        let mut out = Connection::open(dest).map_err(|source| StoreError::Open {
            path: dest.to_owned(),
            source,
        })?;
        {
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut out)?;
            backup.step(-1)?;
        }
        let ok: String = out.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(StoreError::BackupCorrupt {
                path: dest.to_owned(),
                check: ok,
            });
        }
        Ok(())
    }

    /// The stored cursor of a mailbox.
    pub fn cursor(&self, mailbox: &MailboxName) -> Result<Option<(UidValidity, Uid)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT uidvalidity, last_uid FROM mailboxes WHERE name = ?1",
                [mailbox.as_str()],
                |r| Ok((r.get::<_, Option<u32>>(0)?, r.get::<_, u32>(1)?)),
            )
            .optional()?
            .and_then(|(uv, uid)| uv.map(|uv| (UidValidity(uv), Uid(uid)))))
    }

    /// Count of incoming messages carrying `message_id` (tests and `check`).
    pub fn count_messages_with_id(&self, message_id: &str) -> Result<i64, StoreError> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM messages WHERE message_id = ?1",
            [message_id.trim_matches(['<', '>'])],
            |r| r.get(0),
        )?)
    }
}

/// Characters of context a snippet shows before its first match, and in all.
const SNIPPET_BEFORE: usize = 30;
const SNIPPET_CHARS: usize = 100;

/// The text around the first of `words` (ASCII case ignored, as the search does), every
/// match inside in brackets, `…` where it was cut, lines joined; `None` when no word is
/// in it.
pub(crate) fn snippet_of(text: &str, words: &[&str]) -> Option<String> {
    let folded = text.to_ascii_lowercase(); // same byte offsets as `text`
    let needles: Vec<String> = words
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let first = needles
        .iter()
        .filter_map(|w| folded.find(w.as_str()))
        .min()?;
    let start = text[..first]
        .char_indices()
        .rev()
        .nth(SNIPPET_BEFORE - 1)
        .map_or(0, |(i, _)| i);
    let end = text[start..]
        .char_indices()
        .nth(SNIPPET_CHARS)
        .map_or(text.len(), |(i, _)| start + i);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    while at < end {
        let hit = needles
            .iter()
            .filter(|w| folded[at..].starts_with(w.as_str()))
            .map(|w| w.len())
            .max();
        match hit {
            Some(len) => {
                let stop = (at + len).min(text.len());
                out.push('[');
                out.push_str(&text[at..stop]);
                out.push(']');
                at = stop;
            }
            None => {
                let c = text[at..].chars().next().expect("at is inside the text");
                if !c.is_whitespace() {
                    out.push(c);
                } else if !out.ends_with(' ') {
                    out.push(' ');
                }
                at += c.len_utf8();
            }
        }
    }
    if end < text.len() {
        out.push('…');
    }
    Some(out)
}
