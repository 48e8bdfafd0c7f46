//! The rows behind `postdesk report` (issues 6 and 15): read-only, a handful of statements,
//! no query per ticket, and nothing that reads every ticket of a big store for a short
//! period.
//!
//! [`ReportReader`] is a [`Reader`](super::Reader) that holds one read transaction open, so
//! that its statements see the same snapshot while the daemon keeps writing.
//!
//! In: a [`RowsQuery`] (the period, the previous period of equal length, an optional
//! queue). Out: [`ReportRows`], plain rows that
//! `crate::report::build` turns into figures without touching the database.
//! - Volume ([`ReportReader::volume`]) comes from the `report_volume` aggregates, kept by
//!   triggers per quarter hour and queue (schema V12), for the whole quarter hours of the
//!   period, and from the tickets and status events themselves for the partial quarter
//!   hours at its edges. Either way a [`VolumeRow`] says what happened at an instant.
//! - Tickets: those created in the two periods (through `tickets_created`), touched since
//!   `from` (`tickets_updated`), or with an event the report reads since `from`
//!   (`events_report`). Events carry no queue: `report` finds it on that ticket. The first
//!   customer message is read through the `messages_ticket` index, cut to
//!   [`RowsQuery::text_chars`] characters in SQL, only for the tickets the top problems
//!   group: at most [`RowsQuery::problem_tickets`] of each period, the latest.
//! - The "now" figures ([`ReportReader::open_now`]): the oldest tickets still open, through
//!   `tickets_status_age`, and open tickets per assignee, through `tickets_assignee`.
//! - Events since `from` through the partial index `events_report`; SLA deadlines started
//!   in the period, joined to their ticket by primary key.
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
use rusqlite::{params, Connection, OptionalExtension, Row};

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
    /// How many tickets of each period (the latest created) the top problems group.
    pub problem_tickets: usize,
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
    /// The first incoming message's text, cut; only for tickets that are `grouped`.
    pub first_text: Option<String>,
    /// One of the tickets the top problems group: created in one of the two periods,
    /// among the latest [`RowsQuery::problem_tickets`] of it, and not merged.
    pub grouped: bool,
}

/// What happened at one instant, or in one quarter hour starting then, in one queue: the
/// volume figures' input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    pub at: DateTime<Utc>,
    pub queue: Arc<str>,
    /// Tickets created.
    pub created: u64,
    /// Status changes to `open` from `pending`, `resolved` or `closed`.
    pub reopened: u64,
    /// Status changes to `resolved`.
    pub resolved: u64,
    /// Status changes to `closed`.
    pub closed: u64,
}

/// The tickets still being worked, as of now.
#[derive(Debug, Clone, Default)]
pub struct OpenNow {
    /// The oldest (by creation, then number), at most the number asked for.
    pub longest: Vec<ReportTicket>,
    /// Open tickets per assignee, by name.
    pub by_assignee: Vec<(Arc<str>, u64)>,
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
    /// Every slot or row of `[from, to)` with something in it, in no particular order.
    pub volume: Vec<VolumeRow>,
    pub open: OpenNow,
    /// Self-service and knowledge-base counts of the period (issue 16).
    pub knowledge: KnowledgeCounts,
    /// Triage (issue 16) of the tickets created in the period.
    pub triage: super::TriageFigures,
}

/// Events of the knowledge base and self-service in `[from, to)` (issue 16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KnowledgeCounts {
    /// Status requests by mail (about no ticket: counted with `--queue` too).
    pub status_requests: u64,
    /// Acknowledgements that listed articles.
    pub suggested: u64,
    /// Tickets the customer resolved with `solved`.
    pub deflected: u64,
}

/// The condition of the partial index `events_knowledge`, word for word.
const KNOWLEDGE_KINDS: &str = "kind IN ('self_service.status', 'kb.suggested', 'kb.deflected')";

/// The event kinds the report reads: the condition of the partial index `events_report`,
/// repeated word for word so that the planner can use it.
const REPORT_KINDS: &str =
    "kind IN ('status', 'csat', 'survey.queued', 'first_response', 'answer.queued', 'note')";

/// A quarter hour, the aggregates' slot, in milliseconds.
const SLOT_MS: i64 = 900_000;

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
    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn open(path: &Path) -> Result<ReportReader, StoreError> {
        let reader = ReportReader::from(super::Reader::open(path)?);
        // One snapshot for all the statements; it ends when the connection closes.
        reader.conn.execute_batch("BEGIN")?;
        Ok(reader)
    }

    /// The volume figures' rows for `[from, to)` (see the module doc).
    pub fn volume(&self, q: &RowsQuery<'_>) -> Result<Vec<VolumeRow>, StoreError> {
        volume(&self.conn, q)
    }

    /// The oldest `longest` tickets still open, and open tickets per assignee.
    pub fn open_now(&self, q: &RowsQuery<'_>, longest: usize) -> Result<OpenNow, StoreError> {
        open_now(&self.conn, q, longest)
    }

    /// Tickets created in either period, touched since `from`, or with an event since
    /// `from`; in id order.
    pub fn tickets(&self, q: &RowsQuery<'_>) -> Result<Vec<ReportTicket>, StoreError> {
        tickets(&self.conn, q)
    }

    /// Events since `from` (every queue), in the order they happened.
    pub fn events(&self, q: &RowsQuery<'_>) -> Result<Vec<ReportEvent>, StoreError> {
        events(&self.conn, q)
    }

    /// Status requests, articles listed and deflections in `[from, to)`.
    pub fn knowledge(&self, q: &RowsQuery<'_>) -> Result<KnowledgeCounts, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT e.kind, COUNT(*) FROM events e LEFT JOIN tickets t ON t.id = e.ticket_id
             WHERE e.{KNOWLEDGE_KINDS} AND e.at >= ?1 AND e.at < ?2
               AND (?3 IS NULL OR e.ticket_id IS NULL OR t.queue = ?3)
             GROUP BY e.kind"
        ))?;
        let rows = st.query_map(params![ts(q.from), ts(q.to), q.queue], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = KnowledgeCounts::default();
        for row in rows {
            let (kind, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match kind.as_str() {
                "self_service.status" => out.status_requests = n,
                "kb.suggested" => out.suggested = n,
                "kb.deflected" => out.deflected = n,
                _ => {}
            }
        }
        Ok(out)
    }

    /// SLA deadlines started in `[from, to)`.
    pub fn deadlines(&self, q: &RowsQuery<'_>) -> Result<Vec<ReportDeadline>, StoreError> {
        deadlines(&self.conn, q)
    }
}

/// All of them at once (see [`ReportReader`]), with `longest` open tickets.
pub fn report_rows(
    path: &Path,
    q: &RowsQuery<'_>,
    longest: usize,
) -> Result<ReportRows, StoreError> {
    let r = ReportReader::open(path)?;
    Ok(ReportRows {
        tickets: r.tickets(q)?,
        events: r.events(q)?,
        deadlines: r.deadlines(q)?,
        volume: r.volume(q)?,
        open: r.open_now(q, longest)?,
        knowledge: r.knowledge(q)?,
        triage: r.triage(q)?,
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

/// The columns [`ticket_row`] reads, then the subject, the first text and `grouped`.
const TICKET_COLUMNS: &str = "t.id, t.status, t.priority, t.queue, t.assignee, t.created_at,
    t.first_response_at, t.resolved_at, t.closed_at, t.csat, t.merged_into IS NOT NULL";

fn ticket_row(r: &Row<'_>, names: &mut Names) -> rusqlite::Result<Option<ReportTicket>> {
    let Some(created_at) = time(r, 5)? else {
        return Ok(None);
    };
    let Some(status) = text(r, 1)?.and_then(|s| s.parse::<Status>().ok()) else {
        return Ok(None);
    };
    Ok(Some(ReportTicket {
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
        grouped: r.get(13)?,
    }))
}

/// The creation time of the `n`-th latest ticket created in `[from, to)` (of `queue`), or
/// `from` when there are fewer: the top problems group the tickets created since.
fn latest_created(
    conn: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    queue: Option<&str>,
    n: usize,
) -> Result<String, StoreError> {
    let offset = i64::try_from(n.max(1) - 1).unwrap_or(i64::MAX);
    let cutoff: Option<String> = conn
        .prepare_cached(
            "SELECT created_at FROM tickets
             WHERE created_at >= ?1 AND created_at < ?2 AND (?3 IS NULL OR queue = ?3)
             ORDER BY created_at DESC LIMIT 1 OFFSET ?4",
        )?
        .query_row(params![ts(from), ts(to), queue, offset], |r| r.get(0))
        .optional()?;
    Ok(cutoff.unwrap_or_else(|| ts(from)))
}

fn tickets(conn: &Connection, q: &RowsQuery<'_>) -> Result<Vec<ReportTicket>, StoreError> {
    let current = latest_created(conn, q.from, q.to, q.queue, q.problem_tickets)?;
    let previous = latest_created(conn, q.previous_from, q.from, q.queue, q.problem_tickets)?;
    // The subject is needed for grouping and for the longest open tickets; the first
    // message only for grouping. The three ways in are each an index (the planner's OR
    // optimisation), so a short period reads few rows of a big store.
    let grouped = "(t.merged_into IS NULL
        AND ((t.created_at >= ?6 AND t.created_at >= ?2 AND t.created_at < ?3)
             OR (t.created_at >= ?7 AND t.created_at >= ?1 AND t.created_at < ?2)))";
    // When the two periods hold every ticket (an all-time report), the three ways in
    // would each read every ticket and merge their row ids; one pass over the table is
    // the same rows at a third of the cost.
    let (oldest, newest): (Option<String>, Option<String>) = conn
        .prepare_cached(
            "SELECT (SELECT min(created_at) FROM tickets), (SELECT max(created_at) FROM tickets)",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let every_ticket =
        oldest.is_some_and(|o| o >= ts(q.previous_from)) && newest.is_some_and(|n| n < ts(q.to));
    let which = if every_ticket {
        // Also in src/store/plans.rs (BOUNDED).
        "/* every ticket */ ?4 IS NULL OR t.queue = ?4".to_owned()
    } else {
        format!(
            "(?4 IS NULL OR t.queue = ?4)
             AND ((t.created_at >= ?1 AND t.created_at < ?3)
                  OR t.updated_at >= ?2
                  OR t.id IN (SELECT e.ticket_id FROM events e
                              WHERE e.at >= ?2 AND e.{REPORT_KINDS}))"
        )
    };
    let sql = format!(
        "SELECT {TICKET_COLUMNS},
                CASE WHEN (t.created_at >= ?1 AND t.created_at < ?3)
                          OR t.status IN ('new', 'open', 'pending') THEN t.subject END,
                CASE WHEN {grouped} THEN
                    (SELECT substr(m.text, 1, ?5) FROM messages m
                     WHERE m.ticket_id = t.id AND m.direction = 'in' AND m.agent IS NULL
                     ORDER BY m.id LIMIT 1)
                END,
                {grouped}
         FROM tickets t
         WHERE {which}"
    );
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query(params![
        ts(q.previous_from),
        ts(q.from),
        ts(q.to),
        q.queue,
        i64::try_from(q.text_chars).unwrap_or(i64::MAX),
        current,
        previous,
    ])?;
    let mut out = Vec::new();
    // Queue names and assignees repeat: one allocation each.
    let mut names = Names::default();
    while let Some(r) = rows.next()? {
        out.extend(ticket_row(r, &mut names)?);
    }
    out.sort_unstable_by_key(|t| t.id);
    Ok(out)
}

fn open_now(conn: &Connection, q: &RowsQuery<'_>, longest: usize) -> Result<OpenNow, StoreError> {
    // One ordered walk of `tickets_status_age` per status, each stopping after `longest`.
    let oldest = |status: &str| {
        format!(
            "SELECT * FROM (SELECT {TICKET_COLUMNS}, t.subject, NULL, 0 FROM tickets t
             WHERE t.status = '{status}' AND (?1 IS NULL OR t.queue = ?1)
             ORDER BY t.created_at, t.id LIMIT ?2)"
        )
    };
    let sql = ["new", "open", "pending"].map(oldest).join(" UNION ALL ");
    let mut names = Names::default();
    let mut out = OpenNow::default();
    let limit = i64::try_from(longest).unwrap_or(i64::MAX);
    let mut st = conn.prepare(&sql)?;
    let mut rows = st.query(params![q.queue, limit])?;
    while let Some(r) = rows.next()? {
        out.longest.extend(ticket_row(r, &mut names)?);
    }
    out.longest.sort_by_key(|t| (t.created_at, t.id));
    out.longest.truncate(longest);
    let mut st = conn.prepare(
        "SELECT assignee, COUNT(*) FROM tickets
         WHERE assignee IS NOT NULL AND status IN ('new', 'open', 'pending')
           AND (?1 IS NULL OR queue = ?1)
         GROUP BY assignee ORDER BY assignee",
    )?;
    let mut rows = st.query(params![q.queue])?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(1)?;
        if let Some(name) = text(r, 0)? {
            out.by_assignee
                .push((names.get(name), u64::try_from(n).unwrap_or(0)));
        }
    }
    Ok(out)
}

/// What a status change from `old` to `new` counts as: (reopened, resolved, closed), or
/// nothing. The same rule as the triggers of `report_volume` (schema V12).
fn status_counts(old: Option<&str>, new: Option<&str>) -> Option<(u64, u64, u64)> {
    match (old, new?) {
        (Some("pending" | "resolved" | "closed"), "open") => Some((1, 0, 0)),
        (_, "resolved") => Some((0, 1, 0)),
        (_, "closed") => Some((0, 0, 1)),
        _ => None,
    }
}

fn volume(conn: &Connection, q: &RowsQuery<'_>) -> Result<Vec<VolumeRow>, StoreError> {
    let (from, to) = (q.from.timestamp_millis(), q.to.timestamp_millis());
    // The whole slots inside the period: [first, last).
    let first = from.div_euclid(SLOT_MS) + i64::from(from.rem_euclid(SLOT_MS) != 0);
    let last = to.div_euclid(SLOT_MS);
    let mut names = Names::default();
    let mut out = Vec::new();
    if first >= last {
        raw_volume(conn, q.from, q.to, q.queue, &mut names, &mut out)?;
        return Ok(out);
    }
    let slot_start = |slot: i64| DateTime::<Utc>::from_timestamp_millis(slot * SLOT_MS);
    let (Some(head), Some(tail)) = (slot_start(first), slot_start(last)) else {
        return Ok(out);
    };
    raw_volume(conn, q.from, head, q.queue, &mut names, &mut out)?;
    raw_volume(conn, tail, q.to, q.queue, &mut names, &mut out)?;
    let mut st = conn.prepare_cached(
        "SELECT slot, queue, created, reopened, resolved, closed FROM report_volume
         WHERE slot >= ?1 AND slot < ?2 AND (?3 IS NULL OR queue = ?3)",
    )?;
    let mut rows = st.query(params![first, last, q.queue])?;
    let n = |r: &Row<'_>, i: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
    };
    while let Some(r) = rows.next()? {
        let Some(at) = slot_start(r.get(0)?) else {
            continue;
        };
        let row = VolumeRow {
            at,
            queue: names.get(text(r, 1)?.unwrap_or("")),
            created: n(r, 2)?,
            reopened: n(r, 3)?,
            resolved: n(r, 4)?,
            closed: n(r, 5)?,
        };
        if row.created + row.reopened + row.resolved + row.closed > 0 {
            out.push(row);
        }
    }
    Ok(out)
}

/// The volume rows of `[from, to)` read from the tickets and events themselves (the edges
/// of a period, less than a quarter hour each).
fn raw_volume(
    conn: &Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    queue: Option<&str>,
    names: &mut Names,
    out: &mut Vec<VolumeRow>,
) -> Result<(), StoreError> {
    if from >= to {
        return Ok(());
    }
    let row = |at, queue, created, (reopened, resolved, closed)| VolumeRow {
        at,
        queue,
        created,
        reopened,
        resolved,
        closed,
    };
    let mut st = conn.prepare_cached(
        "SELECT created_at, queue FROM tickets
         WHERE created_at >= ?1 AND created_at < ?2 AND (?3 IS NULL OR queue = ?3)",
    )?;
    let mut rows = st.query(params![ts(from), ts(to), queue])?;
    while let Some(r) = rows.next()? {
        if let Some(at) = time(r, 0)? {
            out.push(row(at, names.get(text(r, 1)?.unwrap_or("")), 1, (0, 0, 0)));
        }
    }
    let sql = format!(
        "SELECT e.at, t.queue, e.old, e.new FROM events e JOIN tickets t ON t.id = e.ticket_id
         WHERE e.at >= ?1 AND e.at < ?2 AND e.{REPORT_KINDS} AND e.kind = 'status'
           AND (?3 IS NULL OR t.queue = ?3)"
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query(params![ts(from), ts(to), queue])?;
    while let Some(r) = rows.next()? {
        let Some(at) = time(r, 0)? else { continue };
        let Some(counts) = status_counts(text(r, 2)?, text(r, 3)?) else {
            continue;
        };
        out.push(row(at, names.get(text(r, 1)?.unwrap_or("")), 0, counts));
    }
    Ok(())
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
    // Read through `events_report` in time order; put in row-id order here.
    let mut st = conn.prepare(&format!(
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
         WHERE e.at >= ?1 AND e.{REPORT_KINDS}
           AND (e.kind <> 'status'
                OR e.new IN ('resolved', 'closed')
                OR (e.new = 'open' AND e.old IN ('pending', 'resolved', 'closed')))"
    ))?;
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
    out.sort_unstable_by_key(|e| e.id);
    Ok(out)
}

/// The deadlines started in the period, in the `sla_deadlines_started` index's order (no
/// sort: the report only counts them; sorting 2.3 million rows of a big store's all-time
/// report in a temporary B-tree took five times as long as reading them).
fn deadlines(conn: &Connection, q: &RowsQuery<'_>) -> Result<Vec<ReportDeadline>, StoreError> {
    let mut st = conn.prepare(
        "SELECT d.ticket_id, t.queue, d.deadline, d.started_at, d.due_at, d.warned_at,
                d.breached_at, d.met_at
         FROM sla_deadlines d JOIN tickets t ON t.id = d.ticket_id
         WHERE d.started_at >= ?1 AND d.started_at < ?2 AND (?3 IS NULL OR t.queue = ?3)",
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
    fn status_changes_that_count() {
        for (old, new, want) in [
            ("pending", "open", Some((1, 0, 0))),
            ("resolved", "open", Some((1, 0, 0))),
            ("closed", "open", Some((1, 0, 0))),
            ("new", "open", None),
            ("open", "pending", None),
            ("pending", "resolved", Some((0, 1, 0))),
            ("resolved", "closed", Some((0, 0, 1))),
            ("closed", "archived", None),
        ] {
            assert_eq!(status_counts(Some(old), Some(new)), want, "{old} -> {new}");
        }
        assert_eq!(status_counts(None, Some("closed")), Some((0, 0, 1)));
        assert_eq!(status_counts(Some("pending"), None), None);
    }

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
