//! Similar tickets and self-service (issue 16): the rows behind them.
//!
//! - [`Tx::record_ticket_words`] keeps a new ticket's request words (segmented by the
//!   caller, off the writer); [`Tx::index_ticket_words`] puts them into `similar_fts` in
//!   the writer's idle time, behind the `similar_state` watermark (schema V15).
//! - [`Reader::similar`] ranks resolved, closed and archived tickets by BM25 over those
//!   words, on a read connection, never in the writer's transaction. Its cost is bounded:
//!   of the words asked, only the [`MAX_TERMS`] rarest are searched (document counts
//!   from `similar_terms`), together holding at
//!   most [`MAX_POSTINGS`] tickets (the rarest one alone when it holds more), and FTS5
//!   ranks at most [`CANDIDATES`] of them by `rank`.
//! - [`Tx::open_tickets_of`]: a requester's own open tickets (`tickets_requester`).

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{parse_ts, Reader, StoreError, Tx};
use crate::model::{stamp, EventKind, Status, TicketId};

/// At most this many distinct words of a request are looked up.
pub const MAX_LOOKED_UP: usize = 64;
/// At most this many words (the rarest) are searched.
pub const MAX_TERMS: usize = 5;
/// The searched words hold at most this many tickets together.
pub const MAX_POSTINGS: i64 = 2_000;
/// FTS5 ranks at most this many matches; the best resolved ones among them are shown.
pub const CANDIDATES: usize = 60;
/// An answer's excerpt has at most this many characters.
pub const EXCERPT_CHARS: usize = 160;

/// A resolved ticket like the one asked about, with what resolved it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SimilarTicket {
    pub id: TicketId,
    /// `[ACME #12]`.
    pub tag: String,
    pub subject: String,
    pub status: Status,
    /// BM25 as FTS5 gives it (lower is better); shown as a positive score.
    pub score: f64,
    /// The start of the last answer sent on it (greeting and signature left out).
    pub answer: String,
}

/// One of a customer's own open tickets, for the self-service status mail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnTicket {
    pub id: TicketId,
    pub tag: String,
    pub subject: String,
    pub status: Status,
    #[serde(serialize_with = "stamp::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl Tx<'_> {
    /// Keeps the words of a new ticket's request (space-separated), for similar tickets.
    pub fn record_ticket_words(&mut self, ticket: TicketId, words: &str) -> Result<(), StoreError> {
        if words.is_empty() {
            return Ok(());
        }
        let mut st = self.t.prepare_cached(
            "INSERT OR IGNORE INTO ticket_words (ticket_id, words) VALUES (?1, ?2)",
        )?;
        st.execute(params![ticket.get(), words])?;
        Ok(())
    }

    /// Indexes up to `limit` tickets' words past the watermark (one statement, one FTS5
    /// segment); true if more are waiting. The writer calls it in its idle time.
    pub(super) fn index_ticket_words(&mut self, limit: usize) -> Result<bool, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT last_id, (SELECT COALESCE(MAX(ticket_id), 0) FROM ticket_words)
             FROM similar_state WHERE id = 1",
        )?;
        let (last, max): (i64, i64) = st.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if max <= last {
            return Ok(false);
        }
        let upto = max.min(last.saturating_add(limit as i64));
        let mut index = self.t.prepare_cached(
            "INSERT INTO similar_fts (rowid, words)
             SELECT ticket_id, words FROM ticket_words WHERE ticket_id > ?1 AND ticket_id <= ?2",
        )?;
        index.execute(params![last, upto])?;
        // Each ticket's distinct words counted once (the words are space-separated).
        let mut count = self.t.prepare_cached(
            "WITH RECURSIVE split(ticket, word, rest) AS (
                 SELECT ticket_id, '', words || ' ' FROM ticket_words
                 WHERE ticket_id > ?1 AND ticket_id <= ?2
                 UNION ALL
                 SELECT ticket, substr(rest, 1, instr(rest, ' ') - 1),
                        substr(rest, instr(rest, ' ') + 1)
                 FROM split WHERE rest <> ''
             )
             INSERT INTO similar_terms (term, docs)
             SELECT word, COUNT(DISTINCT ticket) FROM split WHERE word <> '' GROUP BY word
             ON CONFLICT (term) DO UPDATE SET docs = docs + excluded.docs",
        )?;
        count.execute(params![last, upto])?;
        let mut mark = self
            .t
            .prepare_cached("UPDATE similar_state SET last_id = ?1 WHERE id = 1")?;
        mark.execute([upto])?;
        Ok(upto < max)
    }

    /// The requester's tickets that are not resolved, closed or archived, most recently
    /// updated first, at most `limit` (merged ones left out).
    pub fn open_tickets_of(
        &mut self,
        requester: &str,
        limit: usize,
    ) -> Result<Vec<OwnTicket>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT id, tag, subject, status, updated_at FROM tickets
             WHERE requester = ?1 AND status IN ('new', 'open', 'pending') AND merged_into IS NULL
             ORDER BY updated_at DESC, id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![requester, limit as i64], |r| {
            let id: i64 = r.get(0)?;
            let tag: String = r.get(1)?;
            Ok(OwnTicket {
                id: TicketId::new(id),
                tag: format!("[{tag} #{id}]"),
                subject: r.get(2)?,
                status: r.get::<_, String>(3)?.parse().unwrap_or(Status::Open),
                updated_at: parse_ts(&r.get::<_, String>(4)?).unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether the ticket has an event of `kind`.
    pub fn has_event(&mut self, ticket: TicketId, kind: EventKind) -> Result<bool, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT 1 FROM events WHERE ticket_id = ?1 AND kind = ?2 LIMIT 1")?;
        Ok(st.exists(params![ticket.get(), kind.as_str()])?)
    }
}

impl Reader {
    /// The words a ticket's request was indexed with (empty when it has none).
    pub fn ticket_words(&self, ticket: TicketId) -> Result<Vec<String>, StoreError> {
        let words: Option<String> = self
            .conn
            .prepare_cached("SELECT words FROM ticket_words WHERE ticket_id = ?1")?
            .query_row([ticket.get()], |r| r.get(0))
            .optional()?;
        Ok(words
            .unwrap_or_default()
            .split(' ')
            .filter(|w| !w.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// At most `limit` resolved (closed, archived) tickets most like a request of `words`,
    /// best first, `except` left out (see the module doc for the bounds).
    pub fn similar(
        &self,
        words: &[String],
        except: Option<TicketId>,
        limit: usize,
    ) -> Result<Vec<SimilarTicket>, StoreError> {
        let mut unique: Vec<&str> = Vec::new();
        for w in words {
            if !w.contains('"') && !unique.contains(&w.as_str()) {
                unique.push(w);
            }
            if unique.len() == MAX_LOOKED_UP {
                break;
            }
        }
        let mut df = self
            .conn
            .prepare_cached("SELECT docs FROM similar_terms WHERE term = ?1")?;
        let mut counted: Vec<(i64, &str)> = Vec::new();
        for w in unique {
            if let Some(n) = df.query_row([w], |r| r.get::<_, i64>(0)).optional()? {
                counted.push((n, w));
            }
        }
        counted.sort();
        let mut chosen = Vec::new();
        let mut postings = 0;
        for (n, w) in counted {
            if chosen.len() == MAX_TERMS || (!chosen.is_empty() && postings + n > MAX_POSTINGS) {
                break;
            }
            postings += n;
            chosen.push(format!("\"{w}\""));
        }
        if chosen.is_empty() || postings > MAX_POSTINGS * 5 {
            // Only words that half the store holds: nothing would be like it in particular.
            return Ok(Vec::new());
        }
        let query = chosen.join(" OR ");
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT t.id, t.tag, t.subject, t.status, hit.rank
             FROM (SELECT rowid AS id, rank FROM similar_fts WHERE similar_fts MATCH ?1
                   ORDER BY rank LIMIT {CANDIDATES}) hit
             JOIN tickets t ON t.id = hit.id
             WHERE t.status IN ('resolved', 'closed', 'archived') AND t.merged_into IS NULL
               AND t.id IS NOT ?2
             ORDER BY hit.rank, t.id DESC LIMIT ?3"
        ))?;
        let rows = st.query_map(
            params![query, except.map(TicketId::get), limit as i64],
            |r| {
                let id: i64 = r.get(0)?;
                let tag: String = r.get(1)?;
                Ok(SimilarTicket {
                    id: TicketId::new(id),
                    tag: format!("[{tag} #{id}]"),
                    subject: r.get(2)?,
                    status: r.get::<_, String>(3)?.parse().unwrap_or(Status::Resolved),
                    score: -r.get::<_, f64>(4)?,
                    answer: String::new(),
                })
            },
        )?;
        let mut out: Vec<SimilarTicket> = rows.collect::<Result<_, _>>()?;
        let mut answer = self.conn.prepare_cached(
            "SELECT m.text FROM messages m JOIN outbox o ON o.message = m.id
             WHERE m.ticket_id = ?1 AND o.kind = 'answer' ORDER BY m.id DESC LIMIT 1",
        )?;
        for s in &mut out {
            let text: Option<String> = answer.query_row([s.id.get()], |r| r.get(0)).optional()?;
            s.answer = excerpt(text.as_deref().unwrap_or(""), EXCERPT_CHARS);
        }
        Ok(out)
    }
}

/// The start of an answer on one line: without a short greeting line (`Hi Carol,`), our
/// template's `--` signature and what follows it; at most `max` characters, `…` marking
/// a cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let body = text
        .split("\n--\n")
        .next()
        .unwrap_or(text)
        .split("\r\n--\r\n")
        .next()
        .unwrap_or(text);
    let mut lines = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    if let Some(first) = lines.peek() {
        let greeting = first.chars().count() <= 40
            && (first.ends_with(',') || first.ends_with('，') || first.ends_with(':'));
        if greeting {
            lines.next();
        }
    }
    let joined: String = lines.collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(max) {
        None => joined,
        Some((at, _)) => format!("{}…", &joined[..at]),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn excerpts_skip_the_greeting_and_signature() {
        for (text, want) in [
            (
                "Hi Carol,\n\nReplace the toner.\nThen print.\n\n--\nAlice\nACME",
                "Replace the toner. Then print.",
            ),
            ("您好，\n请重启打印机。\n--\n客服", "请重启打印机。"),
            ("Replace the toner.", "Replace the toner."),
            ("", ""),
        ] {
            assert_eq!(super::excerpt(text, 160), want, "{text:?}");
        }
        assert_eq!(super::excerpt("abcdef", 3), "abc…");
    }
}
