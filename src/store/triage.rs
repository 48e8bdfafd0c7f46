//! What triage keeps and reads (issue 16): the history it learns from, the prediction
//! made for each new ticket, and the figures the report shows.
//!
//! - [`Reader::triage_history`]: the newest `limit` tickets an agent has handled (status
//!   no longer `new`, not merged away), oldest first, with the text of the customer's
//!   first message and the labels as they are now (queue, priority, tags).
//! - [`Tx::record_triage`]: one row per ticket, written where the ticket is opened.
//! - [`Reader::ticket_triage`]: that row, for `ticket show --json`.
//! - [`Reader::triage_figures`]: tickets opened in a period, how many had a prediction
//!   applied, and how many applied fields an agent changed afterwards (corrections).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{time, ts, value, Reader, StoreError, Tx};
use crate::model::{Priority, TicketId};

/// One handled ticket as triage learns from it.
#[derive(Debug, Clone)]
pub struct TriageHistoryRow {
    pub ticket: TicketId,
    pub created_at: DateTime<Utc>,
    pub subject: String,
    /// The customer's first message ('' when it has none).
    pub text: String,
    pub queue: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub mailbox: String,
    pub requester: Option<String>,
}

/// A guess kept with a ticket: the value, its confidence, and whether it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageGuess {
    pub value: String,
    pub confidence: f64,
    pub applied: bool,
}

/// The prediction made when a ticket was opened (only guesses above their threshold).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriageView {
    /// `suggest` or `apply`: the mode at the time.
    pub mode: String,
    #[serde(serialize_with = "crate::model::stamp::serialize")]
    pub at: DateTime<Utc>,
    pub queue: Option<TriageGuess>,
    pub priority: Option<TriageGuess>,
    pub tags: Vec<TriageGuess>,
}

/// Triage in a period: tickets opened, those with at least one applied guess, the
/// applied guesses (fields) and those an agent changed afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TriageFigures {
    pub tickets: u64,
    pub suggested: u64,
    pub triaged: u64,
    pub applied: u64,
    pub corrected: u64,
}

const SYSTEM: &str = "postdesk";

impl Reader {
    /// See the module doc. Newest first by creation, stopping at `limit`, then reversed.
    pub fn triage_history(&self, limit: usize) -> Result<Vec<TriageHistoryRow>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT t.id, t.created_at, t.subject, t.queue, t.priority, t.mailbox, t.requester,
                (SELECT m.text FROM messages m WHERE m.ticket_id = t.id AND m.direction = 'in'
                    AND m.audience = 'customer' ORDER BY m.id LIMIT 1),
                (SELECT group_concat(g.tag, char(31)) FROM ticket_tags g WHERE g.ticket_id = t.id)
             FROM tickets t WHERE t.status <> 'new' AND t.merged_into IS NULL
             ORDER BY t.created_at DESC LIMIT ?1",
        )?;
        let mut rows = st
            .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(TriageHistoryRow {
                    ticket: TicketId::new(r.get(0)?),
                    created_at: time(r, 1)?,
                    subject: r.get(2)?,
                    queue: r.get(3)?,
                    priority: value(r, 4)?,
                    mailbox: r.get(5)?,
                    requester: r.get(6)?,
                    text: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                    tags: r
                        .get::<_, Option<String>>(8)?
                        .map(|s| s.split('\u{1f}').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// The prediction kept for `ticket`, if triage was on when it was opened.
    pub fn ticket_triage(&self, ticket: TicketId) -> Result<Option<TriageView>, StoreError> {
        triage_row(&self.conn, ticket)
    }

    /// Triage figures of the tickets created in `[from, to)` (see [`TriageFigures`]).
    pub fn triage_figures(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        queue: Option<&str>,
    ) -> Result<TriageFigures, StoreError> {
        figures(&self.conn, from, to, queue)
    }
}

impl super::ReportReader {
    /// The report's triage figures, in the report's read transaction.
    pub fn triage(&self, q: &super::RowsQuery<'_>) -> Result<TriageFigures, StoreError> {
        figures(self.conn(), q.from, q.to, q.queue)
    }
}

/// See [`Reader::triage_figures`].
pub(super) fn figures(
    conn: &rusqlite::Connection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    queue: Option<&str>,
) -> Result<TriageFigures, StoreError> {
    {
        let mut out = TriageFigures::default();
        let mut st = conn.prepare(
            "SELECT tt.queue, tt.priority, tt.tags,
                EXISTS (SELECT 1 FROM events e WHERE e.ticket_id = t.id AND e.kind = 'queue'
                    AND e.actor <> ?4),
                EXISTS (SELECT 1 FROM events e WHERE e.ticket_id = t.id AND e.kind = 'priority'
                    AND e.actor <> ?4),
                (SELECT group_concat(e.old, char(31)) FROM events e WHERE e.ticket_id = t.id
                    AND e.kind = 'untag' AND e.actor <> ?4)
             FROM tickets t JOIN ticket_triage tt ON tt.ticket_id = t.id
             WHERE t.created_at >= ?1 AND t.created_at < ?2 AND (?3 IS NULL OR t.queue = ?3)",
        )?;
        let rows = st.query_map(params![ts(from), ts(to), queue, SYSTEM], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })?;
        for row in rows {
            let (queue, priority, tags, queue_changed, priority_changed, untagged) = row?;
            out.suggested += 1;
            let guess = |s: Option<String>| -> Option<TriageGuess> {
                s.and_then(|s| serde_json::from_str(&s).ok())
            };
            let tags: Vec<TriageGuess> = serde_json::from_str(&tags).unwrap_or_default();
            let untagged: Vec<String> = untagged
                .map(|s| s.split('\u{1f}').map(str::to_owned).collect())
                .unwrap_or_default();
            let mut applied = 0;
            let mut corrected = 0;
            for (g, changed) in [
                (guess(queue), queue_changed),
                (guess(priority), priority_changed),
            ] {
                if g.is_some_and(|g| g.applied) {
                    applied += 1;
                    corrected += u64::from(changed);
                }
            }
            for t in tags.iter().filter(|t| t.applied) {
                applied += 1;
                corrected += u64::from(untagged.contains(&t.value));
            }
            out.triaged += u64::from(applied > 0);
            out.applied += applied;
            out.corrected += corrected;
        }
        out.tickets = conn.query_row(
            "SELECT count(*) FROM tickets t WHERE t.created_at >= ?1 AND t.created_at < ?2
                AND (?3 IS NULL OR t.queue = ?3)",
            params![ts(from), ts(to), queue],
            |r| r.get::<_, i64>(0),
        )? as u64;
        Ok(out)
    }
}

fn triage_row(
    conn: &rusqlite::Connection,
    ticket: TicketId,
) -> Result<Option<TriageView>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT mode, at, queue, priority, tags FROM ticket_triage WHERE ticket_id = ?1",
        )?
        .query_row([ticket.get()], |r| {
            let json = |i: usize| -> rusqlite::Result<Option<TriageGuess>> {
                Ok(r.get::<_, Option<String>>(i)?
                    .and_then(|s| serde_json::from_str(&s).ok()))
            };
            Ok(TriageView {
                mode: r.get(0)?,
                at: time(r, 1)?,
                queue: json(2)?,
                priority: json(3)?,
                tags: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
            })
        })
        .optional()?)
}

impl Tx<'_> {
    /// The prediction kept for `ticket` (for the relay's `Suggested:` line).
    pub fn ticket_triage(&mut self, ticket: TicketId) -> Result<Option<TriageView>, StoreError> {
        triage_row(self.t, ticket)
    }

    /// Keeps the prediction made for a new ticket (see [`TriageView`]).
    pub fn record_triage(&mut self, ticket: TicketId, view: &TriageView) -> Result<(), StoreError> {
        let json = |g: &Option<TriageGuess>| {
            g.as_ref()
                .map(|g| serde_json::to_string(g).expect("plain data"))
        };
        self.t.execute(
            "INSERT OR REPLACE INTO ticket_triage (ticket_id, mode, at, queue, priority, tags)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                ticket.get(),
                view.mode,
                ts(view.at),
                json(&view.queue),
                json(&view.priority),
                serde_json::to_string(&view.tags).expect("plain data"),
            ],
        )?;
        Ok(())
    }
}
