//! The rows behind `postdesk report` (issue 6): read-only, three statements, no query per
//! ticket.
//!
//! [`ReportReader`] is a [`Reader`](super::Reader) that holds one read transaction open, so
//! that its three statements see the same snapshot while the daemon keeps writing.
//!
//! In: a [`RowsQuery`] (the period, the previous period of equal length, an optional
//! queue). Out: [`ReportRows`], plain rows that
//! `crate::report::build` turns into figures without touching the database.
//! - One pass over `tickets`, one over `events`, one over `sla_deadlines` (joined to their
//!   ticket by primary key). The first customer message of a ticket is read through the
//!   `messages_ticket` index, only for tickets created in the two periods, and cut to
//!   [`RowsQuery::text_chars`] characters in SQL. Events carry no queue: `report` finds it
//!   on the ticket (an event since `from` touched its ticket, so the ticket is read too).
//! - Only the events a figure needs are read, as an [`EventKind`] with parsed values.
//! - Which agent wrote an answer: the `answer.queued` event carries no agent (its actor is
//!   `postdesk`), but the agent's own mail is stored on the same ticket with the same
//!   recorded time (one ingest batch, one `at`). [`ReportEvent::agents`] lists those mails'
//!   agents, oldest first; `report` pairs them with the events in order.
//! - Times are parsed from the stored RFC 3339 text; a row whose required time cannot be
//!   read is left out rather than failing the whole report.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};

use super::{parse_ts, ts, StoreError};
use crate::model::{Priority, Status, TicketId};

/// What to read.
#[derive(Debug, Clone)]
pub struct RowsQuery<'a> {
    /// Start of the period (inclusive).
    pub from: DateTime<Utc>,
    /// End of the period (exclusive).
    pub to: DateTime<Utc>,
    /// Start of the previous period, which ends at `from` (for trends).
    pub previous_from: DateTime<Utc>,
    /// Only tickets (and SLA deadlines) of this queue; events are read for every queue.
    pub queue: Option<&'a str>,
    /// How much of each first message to read (characters).
    pub text_chars: usize,
}

/// A ticket the report needs: created in either period, still open, or touched since
/// `from`.
#[derive(Debug, Clone)]
pub struct ReportTicket {
    pub id: TicketId,
    /// Only for tickets created in `[previous_from, to)` and tickets still open.
    pub subject: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub queue: Arc<str>,
    pub assignee: Option<Arc<str>>,
    pub created_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The latest rating, 1..=5.
    pub csat: Option<i64>,
    /// Merged into another ticket (its messages moved there).
    pub merged: bool,
    /// The first incoming message's text, cut; only for tickets created in
    /// `[previous_from, to)`.
    pub first_text: Option<String>,
}

/// What an event the report reads says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A status change that counts: to `resolved` or `closed`, or back to `open` from
    /// `pending`, `resolved` or `closed` (a reopening).
    Status { old: Option<Status>, new: Status },
    /// A rating, 1..=5.
    Csat(u8),
    /// A survey mail was queued.
    SurveyQueued,
    /// An agent's first answer on the ticket (the actor is the agent).
    FirstResponse,
    /// An answer to the customer was queued (the actor is `postdesk`; see `agents`).
    AnswerQueued,
    /// An internal note (the actor is the agent).
    Note,
}

/// An event at or after `from` (later events too: a rating given after `to` replaces one
/// given in the period).
#[derive(Debug, Clone)]
pub struct ReportEvent {
    /// The event's row id: the order events happened in.
    pub id: i64,
    pub ticket: TicketId,
    pub at: DateTime<Utc>,
    /// Who did it; empty for kinds where the report does not need it.
    pub actor: String,
    pub kind: EventKind,
    /// For [`EventKind::AnswerQueued`]: the agents whose mail on this ticket was recorded at
    /// `at`, oldest first. Empty otherwise.
    pub agents: Vec<String>,
}

/// An SLA deadline started in `[from, to)`.
#[derive(Debug, Clone)]
pub struct ReportDeadline {
    pub ticket: TicketId,
    pub queue: Arc<str>,
    /// `first_response`, `next_response` or `resolution`.
    pub deadline: String,
    pub started_at: DateTime<Utc>,
    /// `None` while paused (a pending ticket's resolution clock).
    pub due_at: Option<DateTime<Utc>>,
    pub warned_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    pub met_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct ReportRows {
    /// In id order.
    pub tickets: Vec<ReportTicket>,
    /// In the order they happened (row id).
    pub events: Vec<ReportEvent>,
    pub deadlines: Vec<ReportDeadline>,
}

/// A read-only connection of its own to the database, inside one read transaction: its
/// statements see one snapshot while the daemon keeps writing (WAL).
pub struct ReportReader {
    conn: Connection,
}

impl From<super::Reader> for ReportReader {
    fn from(r: super::Reader) -> ReportReader {
        ReportReader { conn: r.conn }
    }
}

impl ReportReader {
    pub fn open(path: &Path) -> Result<ReportReader, StoreError> {
        let reader = ReportReader::from(super::Reader::open(path)?);
        // One snapshot for all three statements; it ends when the connection closes.
        reader.conn.execute_batch("BEGIN")?;
        Ok(reader)
    }

    /// Tickets created in either period, still open, or touched since `from`; in id order.
    pub fn tickets(&self, q: &RowsQuery<'_>) -> Result<Vec<ReportTicket>, StoreError> {
        tickets(&self.conn, q)
    }

    /// Events since `from` (every queue), in the order they happened.
    pub fn events(&self, q: &RowsQuery<'_>) -> Result<Vec<ReportEvent>, StoreError> {
        events(&self.conn, q)
    }

    /// SLA deadlines started in `[from, to)`.
    pub fn deadlines(&self, q: &RowsQuery<'_>) -> Result<Vec<ReportDeadline>, StoreError> {
        deadlines(&self.conn, q)
    }
}

/// All three at once (see [`ReportReader`]).
pub fn report_rows(path: &Path, q: &RowsQuery<'_>) -> Result<ReportRows, StoreError> {
    let r = ReportReader::open(path)?;
    Ok(ReportRows {
        tickets: r.tickets(q)?,
        events: r.events(q)?,
        deadlines: r.deadlines(q)?,
    })
}

fn time(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Text(text) => std::str::from_utf8(text).ok().and_then(fast_ts),
        _ => None,
    })
}

/// Our own format, `2026-11-25T14:04:43.345Z`, read without the general parser (a report
/// reads a million of them); anything else goes to [`parse_ts`].
fn fast_ts(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let shape = b.len() == 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && b[23] == b'Z';
    if !shape {
        return parse_ts(s);
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(num(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, num(5, 7)?, num(8, 10)?)?;
    let time =
        NaiveTime::from_hms_milli_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?)?;
    Some(date.and_time(time).and_utc())
}

fn text<'r>(r: &'r Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    })
}

fn tickets(conn: &Connection, q: &RowsQuery<'_>) -> Result<Vec<ReportTicket>, StoreError> {
    // The subject is needed for grouping (tickets of the two periods) and for the longest
    // open tickets; the first message only for grouping.
    let mut st = conn.prepare(
        "SELECT t.id, t.status, t.priority, t.queue, t.assignee, t.created_at,
                t.first_response_at, t.resolved_at, t.closed_at, t.csat, t.merged_into IS NOT NULL,
                CASE WHEN (t.created_at >= ?1 AND t.created_at < ?3)
                          OR t.status IN ('new', 'open', 'pending') THEN t.subject END,
                CASE WHEN t.created_at >= ?1 AND t.created_at < ?3 THEN
                    (SELECT substr(m.text, 1, ?5) FROM messages m
                     WHERE m.ticket_id = t.id AND m.direction = 'in' AND m.agent IS NULL
                     ORDER BY m.id LIMIT 1)
                END
         FROM tickets t
         WHERE (?4 IS NULL OR t.queue = ?4)
           AND ((t.created_at >= ?1 AND t.created_at < ?3)
                OR t.status IN ('new', 'open', 'pending')
                OR t.updated_at >= ?2)
         ORDER BY t.id",
    )?;
    let mut rows = st.query(params![
        ts(q.previous_from),
        ts(q.from),
        ts(q.to),
        q.queue,
        i64::try_from(q.text_chars).unwrap_or(i64::MAX)
    ])?;
    let mut out = Vec::new();
    // Queue names and assignees repeat: one allocation each.
    let mut names = Names::default();
    while let Some(r) = rows.next()? {
        let Some(created_at) = time(r, 5)? else {
            continue;
        };
        let Some(status) = text(r, 1)?.and_then(|s| s.parse::<Status>().ok()) else {
            continue;
        };
        out.push(ReportTicket {
            id: TicketId::new(r.get(0)?),
            status,
            priority: text(r, 2)?
                .and_then(|p| p.parse().ok())
                .unwrap_or(Priority::Normal),
            queue: names.get(text(r, 3)?.unwrap_or("")),
            assignee: text(r, 4)?.map(|a| names.get(a)),
            created_at,
            first_response_at: time(r, 6)?,
            resolved_at: time(r, 7)?,
            closed_at: time(r, 8)?,
            csat: r.get(9)?,
            merged: r.get(10)?,
            subject: r.get(11)?,
            first_text: r.get(12)?,
        });
    }
    Ok(out)
}

/// Shared copies of strings that repeat across rows.
#[derive(Default)]
struct Names(HashMap<String, Arc<str>>);

impl Names {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.0.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.0.insert(name.to_owned(), n.clone());
        n
    }
}

fn events(conn: &Connection, q: &RowsQuery<'_>) -> Result<Vec<ReportEvent>, StoreError> {
    let mut st = conn.prepare(
        "SELECT e.id, e.ticket_id, e.at, e.kind,
                CASE WHEN e.kind IN ('status', 'first_response', 'note') THEN e.actor END,
                e.old, e.new,
                CASE WHEN e.kind = 'answer.queued' THEN
                    (SELECT json_group_array(agent) FROM
                        (SELECT m.agent FROM messages m
                         WHERE m.ticket_id = e.ticket_id AND m.recorded_at = e.at
                           AND m.direction = 'in' AND m.agent IS NOT NULL
                         ORDER BY m.id))
                END
         FROM events e
         WHERE e.at >= ?1
           AND (e.kind IN ('csat', 'survey.queued', 'first_response', 'answer.queued', 'note')
                OR (e.kind = 'status'
                    AND (e.new IN ('resolved', 'closed')
                         OR (e.new = 'open' AND e.old IN ('pending', 'resolved', 'closed')))))
         ORDER BY e.id",
    )?;
    let mut rows = st.query(params![ts(q.from)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let Some(at) = time(r, 2)? else { continue };
        let status = |i: usize| -> rusqlite::Result<Option<Status>> {
            Ok(text(r, i)?.and_then(|s| s.parse().ok()))
        };
        let kind = match text(r, 3)?.unwrap_or("") {
            "status" => match status(6)? {
                Some(new) => EventKind::Status {
                    old: status(5)?,
                    new,
                },
                None => continue,
            },
            "csat" => match text(r, 6)?.and_then(|n| n.trim().parse::<u8>().ok()) {
                Some(rating) if (1..=5).contains(&rating) => EventKind::Csat(rating),
                _ => continue,
            },
            "survey.queued" => EventKind::SurveyQueued,
            "first_response" => EventKind::FirstResponse,
            "answer.queued" => EventKind::AnswerQueued,
            "note" => EventKind::Note,
            _ => continue,
        };
        let agents: Vec<String> = match text(r, 7)? {
            Some(json) => serde_json::from_str(json).unwrap_or_default(),
            None => Vec::new(),
        };
        out.push(ReportEvent {
            id: r.get(0)?,
            ticket: TicketId::new(r.get(1)?),
            at,
            actor: text(r, 4)?.unwrap_or("").to_owned(),
            kind,
            agents,
        });
    }
    Ok(out)
}

fn deadlines(conn: &Connection, q: &RowsQuery<'_>) -> Result<Vec<ReportDeadline>, StoreError> {
    let mut st = conn.prepare(
        "SELECT d.ticket_id, t.queue, d.deadline, d.started_at, d.due_at, d.warned_at,
                d.breached_at, d.met_at
         FROM sla_deadlines d JOIN tickets t ON t.id = d.ticket_id
         WHERE d.started_at >= ?1 AND d.started_at < ?2 AND (?3 IS NULL OR t.queue = ?3)
         ORDER BY d.ticket_id, d.deadline",
    )?;
    let mut names = Names::default();
    let rows = st.query_map(params![ts(q.from), ts(q.to), q.queue], |r| {
        let Some(started_at) = time(r, 3)? else {
            return Ok(None);
        };
        Ok(Some(ReportDeadline {
            ticket: TicketId::new(r.get(0)?),
            queue: names.get(text(r, 1)?.unwrap_or("")),
            deadline: r.get(2)?,
            started_at,
            due_at: time(r, 4)?,
            warned_at: time(r, 5)?,
            breached_at: time(r, 6)?,
            met_at: time(r, 7)?,
        }))
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.extend(row?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_times_agree_with_the_general_parser() {
        for text in [
            "2026-11-25T14:04:43.345Z",
            "1999-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00.000Z",
            "2026-11-25T14:04:43Z",
            "2026-11-25T14:04:43.345+01:00",
        ] {
            assert_eq!(fast_ts(text), parse_ts(text), "{text}");
            assert!(fast_ts(text).is_some(), "{text}");
        }
        for text in [
            "2026-13-25T14:04:43.345Z",
            "2025-02-29T00:00:00.000Z",
            "2026-11-25T24:04:43.345Z",
            "2026-11-2xT14:04:43.345Z",
            "",
            "yesterday",
        ] {
            assert_eq!(fast_ts(text), None, "{text}");
        }
    }
}
