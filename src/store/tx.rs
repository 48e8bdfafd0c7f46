//! Operations inside one write transaction, used by the writer thread and by `workflow`.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::read::{health_row, HEALTH_COLUMNS};
use super::{parse_ts, ts, Incident, MailboxHealth, StoreError, TokenRecord};
use crate::mail::classify::Evidence;
use crate::mail::parse::{Parsed, Person};
use crate::model::{
    AlarmSlot, Audience, EventKind, Language, MailboxName, MessageId, MessageRowId, OutboxId,
    OutboxKind, Priority, QuarantineId, Status, TicketId, Uid, UidValidity,
};

/// A write transaction; see the module doc of `store`.
pub struct Tx<'c> {
    pub(super) t: &'c Transaction<'c>,
}

/// An incoming message to keep.
pub struct NewIncoming<'a> {
    pub mailbox: Option<&'a MailboxName>,
    pub parsed: &'a Parsed,
    pub class: &'a str,
    /// The recognisers that decided the class (`classify::Verdict::evidence`).
    pub classified_by: &'a [Evidence],
    pub raw: &'a [u8],
    pub at: DateTime<Utc>,
}

pub struct NewTicket<'a> {
    pub tag: &'a str,
    pub subject: &'a str,
    pub status: Status,
    pub priority: Priority,
    pub queue: &'a str,
    pub mailbox: &'a str,
    pub requester: Option<&'a Person>,
    pub language: Language,
    /// Why a human should look at this ticket (a stranger quoted another ticket's tag).
    pub flagged: Option<&'a str>,
    pub linked_to: Option<TicketId>,
    pub at: DateTime<Utc>,
}

pub struct NewEvent<'a> {
    pub ticket: Option<TicketId>,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub kind: EventKind,
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// An outgoing message; `id` was reserved with [`Tx::next_message_row_id`] so that the
/// Message-ID (which names the row) could be built first.
pub struct NewOutgoing<'a> {
    pub id: MessageRowId,
    /// `None` for mail about no ticket (a digest).
    pub ticket: Option<TicketId>,
    pub audience: Audience,
    pub message_id: &'a MessageId,
    pub from: &'a str,
    pub to: &'a [String],
    pub cc: &'a [String],
    pub subject: &'a str,
    pub text: &'a str,
    pub in_reply_to: Option<&'a MessageId>,
    pub references: &'a [MessageId],
    pub raw: &'a [u8],
    pub at: DateTime<Utc>,
}

pub struct NewOutbox<'a> {
    pub message: MessageRowId,
    pub ticket: Option<TicketId>,
    pub kind: OutboxKind,
    pub mail_from: &'a str,
    pub rcpt: &'a [String],
    pub at: DateTime<Utc>,
    /// When it may be sent: `at`, or later when the global breaker delays it.
    pub due: DateTime<Utc>,
}

pub struct NewQuarantine<'a> {
    pub mailbox: Option<&'a MailboxName>,
    pub location: Option<(UidValidity, Uid)>,
    pub reason: &'a str,
    /// The message, or only its start when `truncated` says so.
    pub raw: &'a [u8],
    /// `Some` when `raw` is only the headers and a prefix of a larger message.
    pub truncated: Option<&'a Truncated>,
    pub at: DateTime<Utc>,
}

/// What quarantine records of a message it keeps only the start of (headers and a
/// prefix, `limits.quarantine_keep_bytes`): the whole message stays where it came from
/// (the IMAP server, the imported file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncated {
    /// Size of the whole message, in bytes.
    pub size: u64,
    /// SHA-256 of the whole message when it was read through, else of the bytes kept.
    pub sha256: [u8; 32],
    pub hash_of: HashOf,
}

/// What a quarantined message's SHA-256 covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashOf {
    /// The bytes kept in quarantine (IMAP: the rest was never fetched).
    Kept,
    /// The whole message (it was read through, or nothing was cut).
    Whole,
}

impl HashOf {
    pub fn as_str(self) -> &'static str {
        match self {
            HashOf::Kept => "kept",
            HashOf::Whole => "whole",
        }
    }
}

/// What one incoming message cost on the way in (`postdesk status`: largest, slowest).
pub struct NewCost<'a> {
    pub mailbox: Option<&'a MailboxName>,
    pub uid: Option<Uid>,
    pub message_id: Option<&'a MessageId>,
    /// The whole message's size, in bytes.
    pub size: u64,
    /// Time spent parsing and classifying it.
    pub took: std::time::Duration,
    /// What became of it ("new ticket 12", "quarantined 3"…).
    pub outcome: &'a str,
    pub at: DateTime<Utc>,
}

/// What `workflow` needs to know about a ticket it is changing.
#[derive(Debug, Clone)]
pub struct TicketRow {
    pub id: TicketId,
    pub tag: String,
    pub subject: String,
    pub status: Status,
    pub queue: String,
    pub mailbox: String,
    pub requester: Option<String>,
    pub requester_name: Option<String>,
    pub language: Language,
    pub closed_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    pub assignee: Option<String>,
    pub created_at: DateTime<Utc>,
    pub merged_into: Option<TicketId>,
}

/// A ticket in a status: id, queue, and when it entered the status.
pub type InStatus = (TicketId, String, Option<DateTime<Utc>>);

/// One SLA deadline of a ticket, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineRow {
    pub ticket: TicketId,
    /// `first_response`, `next_response` or `resolution`.
    pub deadline: String,
    pub started_at: DateTime<Utc>,
    /// `None` while paused (resolution of a pending ticket).
    pub due_at: Option<DateTime<Utc>>,
    /// The policy's business time for this deadline.
    pub total_secs: u64,
    /// Business time spent before the last pause.
    pub used_secs: u64,
    /// When the clock last (re)started.
    pub resumed_at: Option<DateTime<Utc>>,
    pub warned: bool,
    pub breached: bool,
    pub met: bool,
}

/// What a manager's digest shows of one queue.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DigestFigures {
    pub new: i64,
    pub open: i64,
    pub breached: i64,
    pub at_risk: i64,
    pub first_response_median_secs: Option<i64>,
    pub resolution_median_secs: Option<i64>,
    pub ratings: i64,
    pub rating_average: Option<f64>,
}

fn median(mut v: Vec<i64>) -> Option<i64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    Some(v[v.len() / 2])
}

/// A claimed outbox row, ready to hand to SMTP.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: OutboxId,
    pub ticket: Option<TicketId>,
    pub mail_from: String,
    pub rcpt: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

pub struct QuarantinedRaw {
    pub id: QuarantineId,
    pub mailbox: Option<MailboxName>,
    pub raw: Vec<u8>,
    pub released: bool,
    /// Only the headers and a prefix were kept: processing it again cannot work.
    pub truncated: bool,
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

/// The SLA sweep's deadlines (every minute). `CROSS JOIN` keeps the join in this order:
/// the few running deadlines by the `sla_pending` index, then each one's ticket. Without
/// statistics the planner began at the tickets in `new` or `open` instead, every one of
/// them per sweep (issue 15: 42% of a bulk build's time at 430,000 tickets, 130,000 of
/// them never picked up).
pub(super) const DEADLINES_TO_CHECK: &str =
    "SELECT d.ticket_id, d.deadline, d.started_at, d.due_at, d.total_secs, d.used_secs, d.resumed_at,
        d.warned_at, d.breached_at, d.met_at
     FROM sla_deadlines d CROSS JOIN tickets t ON t.id = d.ticket_id
     WHERE d.met_at IS NULL AND d.due_at IS NOT NULL AND d.breached_at IS NULL
       AND t.status IN ('new', 'open') AND t.merged_into IS NULL
     ORDER BY d.due_at";

impl<'c> Tx<'c> {
    pub(super) fn new(t: &'c Transaction<'c>) -> Tx<'c> {
        Tx { t }
    }

    /// Runs `f` inside a savepoint: on `Err`, everything `f` wrote is undone and the
    /// outer transaction goes on (one bad message never spoils its batch).
    pub fn savepoint<T, E>(
        &mut self,
        f: impl FnOnce(&mut Tx<'c>) -> Result<T, E>,
    ) -> Result<Result<T, E>, StoreError> {
        self.t.execute_batch("SAVEPOINT message")?;
        match f(self) {
            Ok(v) => {
                self.t.execute_batch("RELEASE message")?;
                Ok(Ok(v))
            }
            Err(e) => {
                self.t
                    .execute_batch("ROLLBACK TO message; RELEASE message")?;
                Ok(Err(e))
            }
        }
    }

    /// True when this UID of this epoch was already recorded (stored or quarantined).
    pub fn location_known(
        &mut self,
        mailbox: &MailboxName,
        uv: UidValidity,
        uid: Uid,
    ) -> Result<bool, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT 1 FROM message_locations WHERE mailbox = ?1 AND uidvalidity = ?2 AND uid = ?3",
        )?;
        Ok(st.exists(params![mailbox.as_str(), uv.0, uid.0])?)
    }

    pub fn add_location(
        &mut self,
        mailbox: &MailboxName,
        uv: UidValidity,
        uid: Uid,
        message: Option<MessageRowId>,
    ) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT OR IGNORE INTO message_locations (mailbox, uidvalidity, uid, message) VALUES (?1, ?2, ?3, ?4)",
        )?;
        st.execute(params![
            mailbox.as_str(),
            uv.0,
            uid.0,
            message.map(|m| m.get())
        ])?;
        Ok(())
    }

    /// The stored message with this Message-ID, in either direction, and its ticket.
    pub fn message_by_id(
        &mut self,
        id: &MessageId,
    ) -> Result<Option<(MessageRowId, Option<TicketId>)>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT id, ticket_id FROM messages WHERE message_id = ?1")?;
        Ok(st
            .query_row([id.as_str()], |r| {
                Ok((
                    MessageRowId::new(r.get(0)?),
                    r.get::<_, Option<i64>>(1)?.map(TicketId::new),
                ))
            })
            .optional()?)
    }

    /// Keeps an incoming message and its raw bytes; not yet on a ticket.
    pub fn insert_incoming(&mut self, m: &NewIncoming<'_>) -> Result<MessageRowId, StoreError> {
        let p = m.parsed;
        let mut st = self.t.prepare_cached(
            "INSERT INTO messages (direction, message_id, class, from_addr, from_name, to_addrs, cc_addrs,
                subject, date, text, in_reply_to, refs, attachments, warnings, mailbox, recorded_at,
                classified_by)
             VALUES ('in', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        st.execute(params![
            p.message_id.as_str(),
            m.class,
            p.from.as_ref().map(|f| f.address.as_str()),
            p.from.as_ref().and_then(|f| f.name.as_deref()),
            json(&p.to.iter().map(Person::display).collect::<Vec<_>>()),
            json(&p.cc.iter().map(Person::display).collect::<Vec<_>>()),
            p.subject,
            p.date.map(ts),
            p.text,
            p.in_reply_to.first().map(MessageId::as_str),
            json(
                &p.references
                    .iter()
                    .map(MessageId::as_str)
                    .collect::<Vec<_>>()
            ),
            json(&p.attachments),
            json(&p.warnings),
            m.mailbox.map(MailboxName::as_str),
            ts(m.at),
            json(&m.classified_by),
        ])?;
        let id = MessageRowId::new(self.t.last_insert_rowid());
        self.insert_raw(id, m.raw)?;
        Ok(id)
    }

    fn insert_raw(&mut self, id: MessageRowId, raw: &[u8]) -> Result<(), StoreError> {
        let mut st = self
            .t
            .prepare_cached("INSERT INTO message_raw (message, raw) VALUES (?1, ?2)")?;
        st.execute(params![id.get(), raw])?;
        Ok(())
    }

    /// Marks an incoming message as an agent's (kept internal: it may hold commands).
    pub fn set_message_agent(
        &mut self,
        message: MessageRowId,
        agent: &str,
        audience: Audience,
        unverified: bool,
    ) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "UPDATE messages SET agent = ?2, audience = ?3, unverified = ?4 WHERE id = ?1",
        )?;
        st.execute(params![message.get(), agent, audience.as_str(), unverified])?;
        Ok(())
    }

    /// The last message the customer (or a Cc'd participant) wrote on a ticket.
    pub fn last_customer_message(
        &mut self,
        ticket: TicketId,
    ) -> Result<Option<MessageId>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT message_id FROM messages WHERE ticket_id = ?1 AND direction = 'in'
                AND audience = 'customer' AND class = 'human' ORDER BY id DESC LIMIT 1",
        )?;
        Ok(st
            .query_row([ticket.get()], |r| r.get::<_, String>(0))
            .optional()?
            .map(|m| MessageId::new(&m)))
    }

    pub fn participants(&mut self, ticket: TicketId) -> Result<Vec<(String, String)>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT address, role FROM participants WHERE ticket_id = ?1 ORDER BY role DESC, address",
        )?;
        let rows = st.query_map([ticket.get()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_assignee(
        &mut self,
        ticket: TicketId,
        agent: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE tickets SET assignee = ?2, updated_at = ?3 WHERE id = ?1",
            params![ticket.get(), agent, ts(at)],
        )?;
        Ok(())
    }

    pub fn set_priority(
        &mut self,
        ticket: TicketId,
        priority: Priority,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE tickets SET priority = ?2, updated_at = ?3 WHERE id = ?1",
            params![ticket.get(), priority.as_str(), ts(at)],
        )?;
        Ok(())
    }

    /// Records the first agent answer's time, once. True when this was the first.
    pub fn record_first_response(
        &mut self,
        ticket: TicketId,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let n = self.t.execute(
            "UPDATE tickets SET first_response_at = ?2 WHERE id = ?1 AND first_response_at IS NULL",
            params![ticket.get(), ts(at)],
        )?;
        Ok(n > 0)
    }

    /// Adds tags; returns the ones that were new.
    pub fn add_tags(
        &mut self,
        ticket: TicketId,
        tags: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) VALUES (?1, ?2)")?;
        let mut added = Vec::new();
        for tag in tags {
            if st.execute(params![ticket.get(), tag])? > 0 {
                added.push(tag.clone());
            }
        }
        Ok(added)
    }

    /// Removes tags; returns the ones that were there.
    pub fn remove_tags(
        &mut self,
        ticket: TicketId,
        tags: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("DELETE FROM ticket_tags WHERE ticket_id = ?1 AND tag = ?2")?;
        let mut removed = Vec::new();
        for tag in tags {
            if st.execute(params![ticket.get(), tag])? > 0 {
                removed.push(tag.clone());
            }
        }
        Ok(removed)
    }

    pub fn set_linked(&mut self, ticket: TicketId, to: TicketId) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE tickets SET linked_to = COALESCE(linked_to, ?2) WHERE id = ?1",
            params![ticket.get(), to.get()],
        )?;
        Ok(())
    }

    /// Moves every message and participant of `from` onto `into`, and points `from` at it.
    pub fn merge_ticket(
        &mut self,
        from: TicketId,
        into: TicketId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE messages SET ticket_id = ?2 WHERE ticket_id = ?1",
            params![from.get(), into.get()],
        )?;
        self.t.execute(
            "INSERT OR IGNORE INTO participants (ticket_id, address, role)
             SELECT ?2, address, role FROM participants WHERE ticket_id = ?1",
            params![from.get(), into.get()],
        )?;
        self.t.execute(
            "INSERT OR IGNORE INTO ticket_tags (ticket_id, tag) SELECT ?2, tag FROM ticket_tags WHERE ticket_id = ?1",
            params![from.get(), into.get()],
        )?;
        self.t.execute(
            "UPDATE tickets SET merged_into = ?2, updated_at = ?3 WHERE id = ?1",
            params![from.get(), into.get(), ts(at)],
        )?;
        Ok(())
    }

    pub fn set_message_ticket(
        &mut self,
        message: MessageRowId,
        ticket: TicketId,
    ) -> Result<(), StoreError> {
        let mut st = self
            .t
            .prepare_cached("UPDATE messages SET ticket_id = ?2 WHERE id = ?1")?;
        st.execute(params![message.get(), ticket.get()])?;
        Ok(())
    }

    pub fn create_ticket(&mut self, t: &NewTicket<'_>) -> Result<TicketId, StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO tickets (tag, subject, status, priority, queue, mailbox, requester, requester_name,
                language, flagged, linked_to, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        )?;
        st.execute(params![
            t.tag,
            t.subject,
            t.status.as_str(),
            t.priority.as_str(),
            t.queue,
            t.mailbox,
            t.requester.map(|p| p.address.as_str()),
            t.requester.and_then(|p| p.name.as_deref()),
            t.language.as_str(),
            t.flagged,
            t.linked_to.map(TicketId::get),
            ts(t.at),
        ])?;
        Ok(TicketId::new(self.t.last_insert_rowid()))
    }

    pub fn ticket_row(&mut self, id: TicketId) -> Result<Option<TicketRow>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT tag, subject, status, queue, mailbox, requester, requester_name, language, closed_at,
                priority, assignee, created_at, merged_into
             FROM tickets WHERE id = ?1",
        )?;
        Ok(st
            .query_row([id.get()], |r| {
                Ok(TicketRow {
                    id,
                    tag: r.get(0)?,
                    subject: r.get(1)?,
                    status: r.get::<_, String>(2)?.parse().unwrap_or(Status::Open),
                    queue: r.get(3)?,
                    mailbox: r.get(4)?,
                    requester: r.get(5)?,
                    requester_name: r.get(6)?,
                    language: r.get::<_, String>(7)?.parse().unwrap_or(Language::En),
                    closed_at: r.get::<_, Option<String>>(8)?.as_deref().and_then(parse_ts),
                    priority: r.get::<_, String>(9)?.parse().unwrap_or(Priority::Normal),
                    assignee: r.get(10)?,
                    created_at: parse_ts(&r.get::<_, String>(11)?).unwrap_or_default(),
                    merged_into: r.get::<_, Option<i64>>(12)?.map(TicketId::new),
                })
            })
            .optional()?)
    }

    /// Sets the status and keeps `closed_at` in step with it.
    pub fn set_status(
        &mut self,
        ticket: TicketId,
        status: Status,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "UPDATE tickets SET status = ?2, updated_at = ?3,
                closed_at = CASE WHEN ?2 = 'closed' THEN ?3 WHEN ?2 = 'archived' THEN closed_at ELSE NULL END,
                resolved_at = CASE WHEN ?2 = 'resolved' THEN ?3 WHEN ?2 IN ('closed', 'archived') THEN resolved_at ELSE NULL END
             WHERE id = ?1",
        )?;
        st.execute(params![ticket.get(), status.as_str(), ts(at)])?;
        Ok(())
    }

    pub fn touch_ticket(&mut self, ticket: TicketId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut st = self
            .t
            .prepare_cached("UPDATE tickets SET updated_at = ?2 WHERE id = ?1")?;
        st.execute(params![ticket.get(), ts(at)])?;
        Ok(())
    }

    /// Flags a ticket for a human to look at; an earlier flag's reason is kept.
    pub fn flag_ticket(&mut self, ticket: TicketId, reason: &str) -> Result<(), StoreError> {
        let mut st = self
            .t
            .prepare_cached("UPDATE tickets SET flagged = COALESCE(flagged, ?2) WHERE id = ?1")?;
        st.execute(params![ticket.get(), reason])?;
        Ok(())
    }

    /// The envelope recipients of one of our outgoing messages (lower-cased), empty when
    /// the row is not ours.
    pub fn recipients_of(&mut self, message: MessageRowId) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT rcpt FROM outbox WHERE message = ?1")?;
        let rows = st.query_map(params![message.get()], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for rcpt in rows {
            let list: Vec<String> = serde_json::from_str(&rcpt?).unwrap_or_default();
            out.extend(list.into_iter().map(|a| a.to_ascii_lowercase()));
        }
        Ok(out)
    }

    pub fn add_participant(
        &mut self,
        ticket: TicketId,
        address: &str,
        role: &str,
    ) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT OR IGNORE INTO participants (ticket_id, address, role) VALUES (?1, ?2, ?3)",
        )?;
        st.execute(params![ticket.get(), address, role])?;
        Ok(())
    }

    /// Removes a Cc'd participant (never the requester); true when there was one.
    pub fn remove_cc(&mut self, ticket: TicketId, address: &str) -> Result<bool, StoreError> {
        let mut st = self.t.prepare_cached(
            "DELETE FROM participants WHERE ticket_id = ?1 AND address = ?2 AND role = 'cc'",
        )?;
        Ok(st.execute(params![ticket.get(), address])? > 0)
    }

    pub fn participant(&mut self, ticket: TicketId, address: &str) -> Result<bool, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT 1 FROM participants WHERE ticket_id = ?1 AND address = ?2")?;
        Ok(st.exists(params![ticket.get(), address])?)
    }

    pub fn append_event(&mut self, e: &NewEvent<'_>) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO events (ticket_id, at, actor, kind, old, new, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        st.execute(params![
            e.ticket.map(TicketId::get),
            ts(e.at),
            e.actor,
            e.kind.as_str(),
            e.old,
            e.new,
            e.detail
        ])?;
        Ok(())
    }

    /// Message-IDs of the messages of a ticket the customer has seen (theirs and ours to
    /// them), oldest first, for a full `References` chain.
    pub fn thread_chain(&mut self, ticket: TicketId) -> Result<Vec<MessageId>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT message_id FROM messages WHERE ticket_id = ?1 AND audience = 'customer' ORDER BY id",
        )?;
        let rows = st.query_map([ticket.get()], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(MessageId::new(&r?));
        }
        Ok(out)
    }

    /// The id the next message row will get. Safe because the write transaction holds
    /// the database's write lock (`BEGIN IMMEDIATE`) until it commits.
    pub fn next_message_row_id(&mut self) -> Result<MessageRowId, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM messages")?;
        Ok(MessageRowId::new(st.query_row([], |r| r.get(0))?))
    }

    pub fn insert_outgoing(&mut self, m: &NewOutgoing<'_>) -> Result<MessageRowId, StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO messages (id, ticket_id, direction, message_id, class, from_addr, to_addrs, subject,
                date, text, in_reply_to, refs, recorded_at, audience, cc_addrs)
             VALUES (?1, ?2, 'out', ?3, 'own', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?7, ?11, ?12)",
        )?;
        st.execute(params![
            m.id.get(),
            m.ticket.map(TicketId::get),
            m.message_id.as_str(),
            m.from,
            json(&m.to),
            m.subject,
            ts(m.at),
            m.text,
            m.in_reply_to.map(MessageId::as_str),
            json(
                &m.references
                    .iter()
                    .map(MessageId::as_str)
                    .collect::<Vec<_>>()
            ),
            m.audience.as_str(),
            json(&m.cc),
        ])?;
        self.insert_raw(m.id, m.raw)?;
        Ok(m.id)
    }

    pub fn queue_outbox(&mut self, o: &NewOutbox<'_>) -> Result<OutboxId, StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO outbox (message, ticket_id, kind, mail_from, rcpt, state, next_attempt_at, created_at, mailbox)
             VALUES (?1, ?2, ?3, ?4, ?5, 'queued', ?6, ?7, (SELECT mailbox FROM tickets WHERE id = ?2))",
        )?;
        st.execute(params![
            o.message.get(),
            o.ticket.map(TicketId::get),
            o.kind.as_str(),
            o.mail_from,
            json(&o.rcpt),
            ts(o.due),
            ts(o.at)
        ])?;
        Ok(OutboxId::new(self.t.last_insert_rowid()))
    }

    /// Holds a message (or its start, see [`Truncated`]) with the reason, its size and a
    /// SHA-256 (of the whole message when all of it is kept).
    pub fn quarantine(&mut self, q: &NewQuarantine<'_>) -> Result<QuarantineId, StoreError> {
        use sha2::Digest as _;
        let (size, sha256, hash_of) = match q.truncated {
            Some(t) => (t.size, t.sha256, t.hash_of),
            None => (
                q.raw.len() as u64,
                sha2::Sha256::digest(q.raw).into(),
                HashOf::Whole,
            ),
        };
        let mut st = self.t.prepare_cached(
            "INSERT INTO quarantine (mailbox, uidvalidity, uid, reason, raw, state, created_at,
                 size, truncated, sha256, sha256_of)
             VALUES (?1, ?2, ?3, ?4, ?5, 'held', ?6, ?7, ?8, ?9, ?10)",
        )?;
        st.execute(params![
            q.mailbox.map(MailboxName::as_str),
            q.location.map(|l| l.0 .0),
            q.location.map(|l| l.1 .0),
            q.reason,
            q.raw,
            ts(q.at),
            i64::try_from(size).unwrap_or(i64::MAX),
            q.truncated.is_some(),
            hex::encode(sha256),
            hash_of.as_str(),
        ])?;
        Ok(QuarantineId::new(self.t.last_insert_rowid()))
    }

    /// Records what one incoming message cost (see [`NewCost`]).
    pub fn record_cost(&mut self, c: &NewCost<'_>) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO ingest_costs (at, mailbox, uid, message_id, size, prepare_us, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        st.execute(params![
            ts(c.at),
            c.mailbox.map(MailboxName::as_str),
            c.uid.map(|u| u.0),
            c.message_id.map(MessageId::as_str),
            i64::try_from(c.size).unwrap_or(i64::MAX),
            i64::try_from(c.took.as_micros()).unwrap_or(i64::MAX),
            c.outcome,
        ])?;
        Ok(())
    }

    /// Forgets the costs recorded before `before` (kept: the last hour).
    pub fn prune_costs(&mut self, before: DateTime<Utc>) -> Result<(), StoreError> {
        let mut st = self
            .t
            .prepare_cached("DELETE FROM ingest_costs WHERE at < ?1")?;
        st.execute([ts(before)])?;
        Ok(())
    }

    pub fn quarantined(&mut self, id: QuarantineId) -> Result<Option<QuarantinedRaw>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT mailbox, raw, state, truncated FROM quarantine WHERE id = ?1",
        )?;
        Ok(st
            .query_row([id.get()], |r| {
                Ok(QuarantinedRaw {
                    id,
                    mailbox: r.get::<_, Option<String>>(0)?.map(MailboxName::new),
                    raw: r.get(1)?,
                    released: r.get::<_, String>(2)? == "released",
                    truncated: r.get(3)?,
                })
            })
            .optional()?)
    }

    pub fn release_quarantined(
        &mut self,
        id: QuarantineId,
        message: Option<MessageRowId>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE quarantine SET state = 'released', released_at = ?2, released_as = ?3 WHERE id = ?1",
            params![id.get(), ts(at), message.map(|m| m.get())],
        )?;
        Ok(())
    }

    /// The stored cursor of a mailbox, if any.
    pub fn cursor(
        &mut self,
        mailbox: &MailboxName,
    ) -> Result<Option<(UidValidity, Uid)>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT uidvalidity, last_uid FROM mailboxes WHERE name = ?1")?;
        Ok(st
            .query_row([mailbox.as_str()], |r| {
                Ok(r.get::<_, Option<u32>>(0)?
                    .map(|uv| (UidValidity(uv), Uid(r.get::<_, u32>(1).unwrap_or(0)))))
            })
            .optional()?
            .flatten())
    }

    /// Notes that a batch brought mail, and how much is still waiting on the server.
    pub fn record_batch(
        &mut self,
        mailbox: &MailboxName,
        messages: usize,
        backlog: u32,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "UPDATE mailboxes SET backlog = ?2,
                last_message_at = CASE WHEN ?3 > 0 THEN ?4 ELSE last_message_at END
             WHERE name = ?1",
        )?;
        st.execute(params![mailbox.as_str(), backlog, messages as i64, ts(at)])?;
        Ok(())
    }

    /// Moves the cursor to (`uv`, `uid`); commits with the batch that it covers.
    pub fn advance_cursor(
        &mut self,
        mailbox: &MailboxName,
        uv: UidValidity,
        uid: Uid,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO mailboxes (name, uidvalidity, last_uid, last_sync_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET uidvalidity = ?2,
                last_uid = CASE WHEN uidvalidity IS ?2 THEN MAX(last_uid, ?3) ELSE ?3 END,
                last_sync_at = ?4",
        )?;
        st.execute(params![mailbox.as_str(), uv.0, uid.0, ts(at)])?;
        Ok(())
    }

    /// Automatic mails counted for `scope` (an address, or `*` for all) since `minute`.
    pub fn automatic_count(&mut self, scope: &str, since_minute: i64) -> Result<u64, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT COALESCE(SUM(n), 0) FROM automatic_counts WHERE scope = ?1 AND minute >= ?2",
        )?;
        Ok(st.query_row(params![scope, since_minute], |r| r.get::<_, i64>(0))? as u64)
    }

    /// Automatic mails counted for `scope` per window of `window_minutes` (windows aligned
    /// on minute 0), from `from_minute` up to `until_minute` (not included): (window
    /// number, mails), ascending; windows with none are left out.
    pub fn automatic_windows(
        &mut self,
        scope: &str,
        window_minutes: i64,
        from_minute: i64,
        until_minute: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT minute / ?2, SUM(n) FROM automatic_counts
             WHERE scope = ?1 AND minute >= ?3 AND minute < ?4
             GROUP BY minute / ?2 ORDER BY 1",
        )?;
        let rows = st.query_map(
            params![scope, window_minutes.max(1), from_minute, until_minute],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Counts one automatic mail for `scope` in `minute`.
    pub fn count_automatic(&mut self, scope: &str, minute: i64) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO automatic_counts (scope, minute, n) VALUES (?1, ?2, 1)
             ON CONFLICT(scope, minute) DO UPDATE SET n = n + 1",
        )?;
        st.execute(params![scope, minute])?;
        Ok(())
    }

    /// Forgets counts older than `before_minute`.
    pub fn prune_automatic_counts(&mut self, before_minute: i64) -> Result<(), StoreError> {
        let mut st = self
            .t
            .prepare_cached("DELETE FROM automatic_counts WHERE minute < ?1")?;
        st.execute([before_minute])?;
        Ok(())
    }

    /// When and why `address` was marked undeliverable, if it is.
    pub fn undeliverable(
        &mut self,
        address: &str,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT since, status FROM undeliverable WHERE address = ?1")?;
        Ok(st
            .query_row([address], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    pub fn mark_undeliverable(
        &mut self,
        address: &str,
        at: DateTime<Utc>,
        status: Option<&str>,
        detail: Option<&str>,
        ticket: Option<TicketId>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "INSERT INTO undeliverable (address, since, status, detail, ticket_id) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(address) DO UPDATE SET status = ?3, detail = ?4, ticket_id = ?5",
            params![address, ts(at), status, detail, ticket.map(TicketId::get)],
        )?;
        Ok(())
    }

    /// The address wrote again: mail may go to it. True when it was marked.
    pub fn clear_undeliverable(&mut self, address: &str) -> Result<bool, StoreError> {
        let mut st = self
            .t
            .prepare_cached("DELETE FROM undeliverable WHERE address = ?1")?;
        Ok(st.execute([address])? > 0)
    }

    /// Replaces a deadline of a ticket (a new instance: warning, breach and met reset).
    pub fn start_deadline(&mut self, d: &DeadlineRow) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            // An upsert, not INSERT OR REPLACE: REPLACE deletes without firing the delete
            // triggers that keep the status counts (schema V11).
            "INSERT INTO sla_deadlines (ticket_id, deadline, started_at, due_at, total_secs, used_secs, resumed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (ticket_id, deadline) DO UPDATE SET started_at = excluded.started_at,
                due_at = excluded.due_at, total_secs = excluded.total_secs,
                used_secs = excluded.used_secs, resumed_at = excluded.resumed_at,
                warned_at = NULL, breached_at = NULL, met_at = NULL",
        )?;
        st.execute(params![
            d.ticket.get(),
            d.deadline,
            ts(d.started_at),
            d.due_at.map(ts),
            d.total_secs as i64,
            d.used_secs as i64,
            d.resumed_at.map(ts),
        ])?;
        Ok(())
    }

    /// Moves a running deadline (pause, resume, a new policy); keeps its warning and breach.
    pub fn move_deadline(&mut self, d: &DeadlineRow) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "UPDATE sla_deadlines SET due_at = ?3, total_secs = ?4, used_secs = ?5, resumed_at = ?6
             WHERE ticket_id = ?1 AND deadline = ?2",
        )?;
        st.execute(params![
            d.ticket.get(),
            d.deadline,
            d.due_at.map(ts),
            d.total_secs as i64,
            d.used_secs as i64,
            d.resumed_at.map(ts),
        ])?;
        Ok(())
    }

    fn deadline_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeadlineRow> {
        Ok(DeadlineRow {
            ticket: TicketId::new(r.get(0)?),
            deadline: r.get(1)?,
            started_at: parse_ts(&r.get::<_, String>(2)?).unwrap_or_default(),
            due_at: r.get::<_, Option<String>>(3)?.as_deref().and_then(parse_ts),
            total_secs: r.get::<_, i64>(4)?.max(0) as u64,
            used_secs: r.get::<_, i64>(5)?.max(0) as u64,
            resumed_at: r.get::<_, Option<String>>(6)?.as_deref().and_then(parse_ts),
            warned: r.get::<_, Option<String>>(7)?.is_some(),
            breached: r.get::<_, Option<String>>(8)?.is_some(),
            met: r.get::<_, Option<String>>(9)?.is_some(),
        })
    }

    /// The deadlines of a ticket.
    pub fn deadlines(&mut self, ticket: TicketId) -> Result<Vec<DeadlineRow>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT ticket_id, deadline, started_at, due_at, total_secs, used_secs, resumed_at, warned_at, breached_at, met_at
             FROM sla_deadlines WHERE ticket_id = ?1 ORDER BY deadline",
        )?;
        let rows = st.query_map([ticket.get()], Tx::deadline_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Running deadlines not yet both warned and breached, of tickets still being worked.
    pub fn deadlines_to_check(&mut self) -> Result<Vec<DeadlineRow>, StoreError> {
        let mut st = self.t.prepare_cached(DEADLINES_TO_CHECK)?;
        let rows = st.query_map([], Tx::deadline_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn meet_deadline(
        &mut self,
        ticket: TicketId,
        deadline: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut st = self.t.prepare_cached(
            "UPDATE sla_deadlines SET met_at = ?3 WHERE ticket_id = ?1 AND deadline = ?2 AND met_at IS NULL",
        )?;
        Ok(st.execute(params![ticket.get(), deadline, ts(at)])? > 0)
    }

    /// Records a warning or a breach, once: false when it was already recorded.
    pub fn mark_deadline(
        &mut self,
        ticket: TicketId,
        deadline: &str,
        breach: bool,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = if breach {
            "UPDATE sla_deadlines SET breached_at = ?3 WHERE ticket_id = ?1 AND deadline = ?2 AND breached_at IS NULL"
        } else {
            "UPDATE sla_deadlines SET warned_at = ?3 WHERE ticket_id = ?1 AND deadline = ?2 AND warned_at IS NULL"
        };
        let mut st = self.t.prepare_cached(sql)?;
        Ok(st.execute(params![ticket.get(), deadline, ts(at)])? > 0)
    }

    /// Tickets in `status`, with the time they entered it (resolved_at or closed_at).
    pub fn tickets_in_status(&mut self, status: Status) -> Result<Vec<InStatus>, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT id, queue, CASE status WHEN 'resolved' THEN resolved_at WHEN 'closed' THEN closed_at ELSE updated_at END
             FROM tickets WHERE status = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([status.as_str()], |r| {
            Ok((
                TicketId::new(r.get(0)?),
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?.as_deref().and_then(parse_ts),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn last_run(&mut self, job: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT last_run FROM schedule_runs WHERE job = ?1")?;
        Ok(st
            .query_row([job], |r| r.get::<_, String>(0))
            .optional()?
            .as_deref()
            .and_then(parse_ts))
    }

    pub fn set_last_run(&mut self, job: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO schedule_runs (job, last_run) VALUES (?1, ?2)
             ON CONFLICT(job) DO UPDATE SET last_run = ?2",
        )?;
        st.execute(params![job, ts(at)])?;
        Ok(())
    }

    /// Indexes up to `limit` messages past the watermark for full-text search, whole
    /// subject and text, in one statement (one FTS5 segment, see schema V5); returns true
    /// if more are waiting. The writer calls it in its idle time, never inside ingest.
    pub(super) fn index_new_messages(&mut self, limit: usize) -> Result<bool, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT last_id, (SELECT COALESCE(MAX(id), 0) FROM messages) FROM fts_state WHERE id = 1",
        )?;
        let (last, max): (i64, i64) = st.query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if max <= last {
            return Ok(false);
        }
        let upto = max.min(last.saturating_add(limit as i64));
        let mut index = self.t.prepare_cached(
            "INSERT INTO message_fts (rowid, subject, text)
             SELECT id, subject, text FROM messages WHERE id > ?1 AND id <= ?2",
        )?;
        index.execute(params![last, upto])?;
        let mut read = self
            .t
            .prepare_cached("SELECT id, subject, text FROM messages WHERE id > ?1 AND id <= ?2")?;
        let mut add = self
            .t
            .prepare_cached("INSERT INTO message_bigrams (rowid, grams) VALUES (?1, ?2)")?;
        let mut rows = read.query(params![last, upto])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let subject: String = r.get(1)?;
            let text: String = r.get(2)?;
            let grams = bigrams(&format!("{subject}\n{text}"));
            if !grams.is_empty() {
                add.execute(params![id, grams])?;
            }
        }
        let mut mark = self
            .t
            .prepare_cached("UPDATE fts_state SET last_id = ?1 WHERE id = 1")?;
        mark.execute([upto])?;
        Ok(upto < max)
    }

    /// `postdesk check --store`: SQLite's own check of the file, then the search index
    /// checked against the messages (FTS5 `integrity-check`; the index is caught up
    /// first, so that the unindexed tail does not count as a difference). Returns the
    /// problems found, none when all is well.
    pub fn check_store(&mut self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        let mut st = self.t.prepare("PRAGMA quick_check")?;
        for row in st.query_map([], |r| r.get::<_, String>(0))? {
            let line = row?;
            if line != "ok" {
                problems.push(format!("database: {line}"));
            }
        }
        for d in self.count_differences()? {
            problems.push(format!("counts: {d}"));
        }
        while self.index_new_messages(super::INDEX_BATCH)? {}
        if let Err(e) = self.t.execute(
            "INSERT INTO message_fts (message_fts, rank) VALUES ('integrity-check', 1)",
            [],
        ) {
            problems.push(format!(
                "search index: {e} (rebuild it with `postdesk search reindex`)"
            ));
        }
        Ok(problems)
    }

    /// The trigger-kept figures of `status` (schema V11) against a recount: a line per
    /// figure that differs (none when all agree).
    pub fn count_differences(&mut self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for (name, recount) in [
            ("tickets", "SELECT COUNT(*) FROM tickets"),
            (
                "messages_in",
                "SELECT COUNT(*) FROM messages WHERE direction = 'in'",
            ),
            (
                "messages_out",
                "SELECT COUNT(*) FROM messages WHERE direction = 'out'",
            ),
            (
                "outbox_queued",
                "SELECT COUNT(*) FROM outbox WHERE state = 'queued'",
            ),
            (
                "outbox_sending",
                "SELECT COUNT(*) FROM outbox WHERE state = 'sending'",
            ),
            (
                "outbox_sent",
                "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
            ),
            (
                "outbox_failed",
                "SELECT COUNT(*) FROM outbox WHERE state = 'failed'",
            ),
            (
                "quarantine_held",
                "SELECT COUNT(*) FROM quarantine WHERE state = 'held'",
            ),
            (
                "sla_breaches",
                "SELECT COUNT(*) FROM sla_deadlines WHERE breached_at IS NOT NULL",
            ),
        ] {
            let kept: i64 =
                self.t
                    .query_row("SELECT n FROM counts WHERE name = ?1", [name], |r| r.get(0))?;
            let real: i64 = self.t.query_row(recount, [], |r| r.get(0))?;
            if kept != real {
                out.push(format!("{name} is {kept}, a recount says {real}"));
            }
        }
        Ok(out)
    }

    /// Empties the search index and moves its watermark back to the start: the writer
    /// then indexes everything again in its idle time (`postdesk search reindex`, the
    /// migration to whole-text indexing).
    /// Empties the search index for the writer to make again; gives back how many
    /// messages wait for it (counted in the same transaction, before the writer starts).
    pub fn reset_search_index(&mut self) -> Result<u64, StoreError> {
        self.t.execute(
            "INSERT INTO message_fts (message_fts) VALUES ('delete-all')",
            [],
        )?;
        self.t.execute(
            "INSERT INTO message_bigrams (message_bigrams) VALUES ('delete-all')",
            [],
        )?;
        self.t
            .execute("UPDATE fts_state SET last_id = 0 WHERE id = 1", [])?;
        let waiting: i64 = self
            .t
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
        Ok(u64::try_from(waiting).unwrap_or(0))
    }

    /// Tickets an agent holds now (new, open or pending).
    pub fn open_load(&mut self, agent: &str) -> Result<u32, StoreError> {
        let mut st = self.t.prepare_cached(
            "SELECT COUNT(*) FROM tickets WHERE assignee = ?1 AND status IN ('new', 'open', 'pending')",
        )?;
        Ok(st.query_row([agent], |r| r.get::<_, i64>(0))? as u32)
    }

    pub fn last_assigned(&mut self, queue: &str) -> Result<Option<String>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT last_agent FROM assignment_state WHERE queue = ?1")?;
        Ok(st.query_row([queue], |r| r.get(0)).optional()?)
    }

    pub fn set_last_assigned(&mut self, queue: &str, agent: &str) -> Result<(), StoreError> {
        let mut st = self.t.prepare_cached(
            "INSERT INTO assignment_state (queue, last_agent) VALUES (?1, ?2)
             ON CONFLICT(queue) DO UPDATE SET last_agent = ?2",
        )?;
        st.execute(params![queue, agent])?;
        Ok(())
    }

    pub fn set_queue(
        &mut self,
        ticket: TicketId,
        queue: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE tickets SET queue = ?2, updated_at = ?3 WHERE id = ?1",
            params![ticket.get(), queue, ts(at)],
        )?;
        Ok(())
    }

    /// Stores a satisfaction rating (the latest one counts); gives back the rating it
    /// replaced, if the ticket had one.
    pub fn set_csat(&mut self, ticket: TicketId, rating: u8) -> Result<Option<u8>, StoreError> {
        let old: Option<i64> = self
            .t
            .prepare_cached("SELECT csat FROM tickets WHERE id = ?1")?
            .query_row([ticket.get()], |r| r.get(0))
            .optional()?
            .flatten();
        self.t.execute(
            "UPDATE tickets SET csat = ?2 WHERE id = ?1",
            params![ticket.get(), rating],
        )?;
        Ok(old.and_then(|n| u8::try_from(n).ok()))
    }

    /// When the latest survey mail of `ticket` was queued (its `survey.queued` event, the
    /// one the report counts); `None` when it never got one (none sent, or held by the
    /// loop rules). Survey links are valid for a while after it (`survey_valid_for`).
    pub fn latest_survey_at(
        &mut self,
        ticket: TicketId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT MAX(at) FROM events WHERE ticket_id = ?1 AND kind = ?2")?;
        let kind = EventKind::MailQueued(OutboxKind::Survey);
        Ok(st.query_row(params![ticket.get(), kind.as_str()], |r| {
            super::opt_time(r, 0)
        })?)
    }

    /// The outbox kind of an outgoing message (to recognise replies to a survey).
    pub fn outbox_kind(&mut self, message: MessageRowId) -> Result<Option<String>, StoreError> {
        let mut st = self
            .t
            .prepare_cached("SELECT kind FROM outbox WHERE message = ?1")?;
        Ok(st.query_row([message.get()], |r| r.get(0)).optional()?)
    }

    /// Figures for a manager's digest of one queue since `since`.
    pub fn digest_figures(
        &mut self,
        queue: &str,
        since: DateTime<Utc>,
    ) -> Result<DigestFigures, StoreError> {
        let since = ts(since);
        // Counts of tickets still being worked are "now" figures: they take no `since`.
        let now_count = |tx: &mut Tx<'_>, sql: &str| -> Result<i64, StoreError> {
            Ok(tx.t.query_row(sql, params![queue], |r| r.get(0))?)
        };
        let new: i64 = self.t.query_row(
            "SELECT COUNT(*) FROM tickets WHERE queue = ?1 AND created_at >= ?2",
            params![queue, since],
            |r| r.get(0),
        )?;
        let open = now_count(
            self,
            "SELECT COUNT(*) FROM tickets WHERE queue = ?1 AND status IN ('new','open','pending')",
        )?;
        let breached = now_count(
            self,
            "SELECT COUNT(DISTINCT t.id) FROM tickets t JOIN sla_deadlines d ON d.ticket_id = t.id
             WHERE t.queue = ?1 AND d.breached_at IS NOT NULL AND t.status IN ('new','open','pending')",
        )?;
        let at_risk = now_count(
            self,
            "SELECT COUNT(DISTINCT t.id) FROM tickets t JOIN sla_deadlines d ON d.ticket_id = t.id
             WHERE t.queue = ?1 AND d.warned_at IS NOT NULL AND d.breached_at IS NULL AND d.met_at IS NULL
               AND t.status IN ('new','open')",
        )?;
        let secs = |tx: &mut Tx<'_>, sql: &str| -> Result<Vec<i64>, StoreError> {
            let mut st = tx.t.prepare(sql)?;
            let rows = st.query_map(params![queue, since], |r| r.get::<_, i64>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        let first = secs(
            self,
            "SELECT CAST((julianday(first_response_at) - julianday(created_at)) * 86400 AS INTEGER)
             FROM tickets WHERE queue = ?1 AND first_response_at >= ?2",
        )?;
        let resolution = secs(
            self,
            "SELECT CAST((julianday(resolved_at) - julianday(created_at)) * 86400 AS INTEGER)
             FROM tickets WHERE queue = ?1 AND resolved_at >= ?2",
        )?;
        let (ratings, sum): (i64, i64) = self.t.query_row(
            "SELECT COUNT(csat), COALESCE(SUM(csat), 0) FROM tickets WHERE queue = ?1 AND csat IS NOT NULL AND updated_at >= ?2",
            params![queue, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(DigestFigures {
            new,
            open,
            breached,
            at_risk,
            first_response_median_secs: median(first),
            resolution_median_secs: median(resolution),
            ratings,
            rating_average: (ratings > 0).then(|| sum as f64 / ratings as f64),
        })
    }

    /// See [`super::Store::record_sync`].
    pub fn record_sync(
        &mut self,
        mailbox: &MailboxName,
        mode: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // A completed round proves the login too: a refused login recorded earlier is over.
        self.t.execute(
            "INSERT INTO mailboxes (name, last_sync_at, connected, mode, backlog, auth_state)
                VALUES (?1, ?2, 1, ?3, 0, 'ok')
             ON CONFLICT(name) DO UPDATE SET last_sync_at = ?2, last_error = NULL, connected = 1,
                mode = ?3, backlog = 0, auth_state = 'ok', auth_error = NULL",
            params![mailbox.as_str(), ts(at), mode],
        )?;
        Ok(())
    }

    /// See [`super::Store::record_login`].
    pub fn record_login(
        &mut self,
        mailbox: &MailboxName,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "INSERT INTO mailboxes (name, last_login_at, auth_state) VALUES (?1, ?2, 'ok')
             ON CONFLICT(name) DO UPDATE SET last_login_at = ?2, auth_state = 'ok', auth_error = NULL",
            params![mailbox.as_str(), ts(at)],
        )?;
        Ok(())
    }

    /// See [`super::Store::record_auth_failure`].
    pub fn record_auth_failure(
        &mut self,
        mailbox: &MailboxName,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "INSERT INTO mailboxes (name, last_error, last_error_at, connected, auth_state, auth_error,
                auth_failed_at) VALUES (?1, ?2, ?3, 0, 'failed', ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET last_error = ?2, last_error_at = ?3, connected = 0,
                auth_state = 'failed', auth_error = ?2, auth_failed_at = ?3",
            params![mailbox.as_str(), error, ts(at)],
        )?;
        Ok(())
    }

    /// What the health check needs of each of `mailboxes`, in that order; a mailbox with
    /// no row yet is [`MailboxHealth::unknown`].
    pub fn mailbox_health(
        &mut self,
        mailboxes: &[MailboxName],
    ) -> Result<Vec<MailboxHealth>, StoreError> {
        let mut st = self.t.prepare_cached(&format!(
            "SELECT {HEALTH_COLUMNS} FROM mailboxes WHERE name = ?1"
        ))?;
        mailboxes
            .iter()
            .map(|name| {
                Ok(st
                    .query_row([name.as_str()], |r| health_row(r, 0))
                    .optional()?
                    .unwrap_or_else(|| MailboxHealth::unknown(name.clone())))
            })
            .collect()
    }

    /// Keeps an OAuth mailbox's token state for `postdesk status` (another process).
    pub fn record_token_state(
        &mut self,
        mailbox: &MailboxName,
        token: &TokenRecord,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "INSERT INTO mailboxes (name, token_expires_at, refresh_expires_at, token_needs_login)
                VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET token_expires_at = ?2, refresh_expires_at = ?3,
                token_needs_login = ?4",
            params![
                mailbox.as_str(),
                token.expires_at.map(ts),
                token.refresh_expires_at.map(ts),
                token.needs_login
            ],
        )?;
        Ok(())
    }

    /// Opens (or changes the reason of) the incident of `incident.kind`'s slot.
    pub fn record_incident(
        &mut self,
        mailbox: &MailboxName,
        incident: &Incident,
    ) -> Result<(), StoreError> {
        // ?2, the kind, is implied by the token warning's slot.
        let sql = match incident.kind.slot() {
            AlarmSlot::Alarm => {
                "INSERT INTO mailboxes (name, alarm_kind, alarm_since, alarm_reason) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET alarm_kind = ?2, alarm_since = ?3, alarm_reason = ?4"
            }
            AlarmSlot::TokenWarning => {
                "INSERT INTO mailboxes (name, token_warning_since, token_warning_reason)
                    VALUES (?1, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET token_warning_since = ?3, token_warning_reason = ?4"
            }
        };
        self.t.execute(
            sql,
            params![
                mailbox.as_str(),
                incident.kind.as_str(),
                ts(incident.since),
                incident.reason
            ],
        )?;
        Ok(())
    }

    /// Closes the open incident of `slot`, if any.
    pub fn close_incident(
        &mut self,
        mailbox: &MailboxName,
        slot: AlarmSlot,
    ) -> Result<(), StoreError> {
        let sql = match slot {
            AlarmSlot::Alarm => {
                "UPDATE mailboxes SET alarm_kind = NULL, alarm_since = NULL, alarm_reason = NULL
                 WHERE name = ?1"
            }
            AlarmSlot::TokenWarning => {
                "UPDATE mailboxes SET token_warning_since = NULL, token_warning_reason = NULL
                 WHERE name = ?1"
            }
        };
        self.t.execute(sql, [mailbox.as_str()])?;
        Ok(())
    }

    /// See [`super::Store::record_mailbox_error`].
    pub fn record_mailbox_error(
        &mut self,
        mailbox: &MailboxName,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.t.execute(
                        "INSERT INTO mailboxes (name, last_error, last_error_at, connected) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT(name) DO UPDATE SET last_error = ?2, last_error_at = ?3, connected = 0",
            params![mailbox.as_str(), error, ts(at)],
        )?;
        Ok(())
    }

    /// Acknowledgements still waiting `max_age` after their message arrived are not sent
    /// late: each becomes `failed` with `last_error` "expired: …" and an
    /// `acknowledgement.expired` event on its ticket. Returns how many.
    pub(super) fn expire_acknowledgements(
        &mut self,
        now: DateTime<Utc>,
        max_age: std::time::Duration,
    ) -> Result<usize, StoreError> {
        let age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::days(36_500));
        let Some(cutoff) = now.checked_sub_signed(age) else {
            return Ok(0);
        };
        let expired: Vec<(i64, Option<i64>, String, String)> = {
            let mut st = self.t.prepare_cached(
                "SELECT id, ticket_id, rcpt, created_at FROM outbox
                 WHERE state = 'queued' AND kind = ?1 AND created_at < ?2 ORDER BY id",
            )?;
            let rows = st.query_map(
                params![OutboxKind::Acknowledgement.as_str(), ts(cutoff)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let secs = max_age.as_secs();
        let window = match secs {
            s if s % 3600 == 0 => format!("{}h", s / 3600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => format!("{s}s"),
        };
        for (id, ticket, rcpt, created_at) in &expired {
            let reason = format!(
                "expired: not sent within {window} of the customer's message (queued {created_at}); an acknowledgement is not sent late"
            );
            self.t.execute(
                "UPDATE outbox SET state = 'failed', last_error = ?2 WHERE id = ?1",
                params![id, reason],
            )?;
            let rcpt: Vec<String> = serde_json::from_str(rcpt).unwrap_or_default();
            self.append_event(&NewEvent {
                ticket: ticket.map(TicketId::new),
                at: now,
                actor: "postdesk",
                kind: EventKind::AcknowledgementExpired,
                old: None,
                new: Some(&rcpt.join(", ")),
                detail: Some(&format!("outbox #{id}: {reason}")),
            })?;
        }
        Ok(expired.len())
    }

    pub(super) fn claim_outbox(
        &mut self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        // Fair between mailboxes: each mailbox's oldest due row first, then each one's
        // second, and so on, so that a burst in one mailbox (thousands of acknowledgements
        // queued) does not hold back another's. The mailboxes with queued rows are found
        // by skipping through the partial index `outbox_fair` (one probe each), and only
        // each one's first `limit` due rows are ranked (ticketless mail is one more
        // group): the cost is the number of mailboxes, not of queued rows. The index and
        // the join order are fixed (INDEXED BY, CROSS JOIN): without statistics the
        // planner chose to scan the outbox.
        let mut st = self.t.prepare_cached(
            "WITH RECURSIVE mb(name) AS (
                 SELECT (SELECT mailbox FROM outbox INDEXED BY outbox_fair WHERE state = 'queued' AND mailbox IS NOT NULL
                         ORDER BY mailbox LIMIT 1)
                 UNION ALL
                 SELECT (SELECT mailbox FROM outbox INDEXED BY outbox_fair WHERE state = 'queued' AND mailbox > mb.name
                         ORDER BY mailbox LIMIT 1)
                 FROM mb WHERE mb.name IS NOT NULL),
             due AS (
                 SELECT d.id, d.mailbox, d.next_attempt_at FROM mb CROSS JOIN outbox d
                 WHERE mb.name IS NOT NULL AND d.id IN (
                     SELECT id FROM outbox INDEXED BY outbox_fair WHERE state = 'queued' AND mailbox = mb.name
                         AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2)
                 UNION ALL
                 SELECT * FROM (
                     SELECT id, mailbox, next_attempt_at FROM outbox INDEXED BY outbox_fair
                     WHERE state = 'queued' AND mailbox IS NULL AND next_attempt_at <= ?1
                     ORDER BY next_attempt_at, id LIMIT ?2)),
             ranked AS (
                 SELECT id, next_attempt_at, row_number() OVER (
                     PARTITION BY mailbox ORDER BY next_attempt_at, id) AS turn
                 FROM due)
             SELECT o.id, o.ticket_id, o.mail_from, o.rcpt, r.raw, o.attempts, o.created_at
             FROM ranked CROSS JOIN outbox o ON o.id = ranked.id
             CROSS JOIN message_raw r ON r.message = o.message
             ORDER BY ranked.turn, ranked.next_attempt_at, ranked.id LIMIT ?2",
        )?;
        let rows = st.query_map(params![ts(now), limit as i64], |r| {
            Ok(OutboxItem {
                id: OutboxId::new(r.get(0)?),
                ticket: r.get::<_, Option<i64>>(1)?.map(TicketId::new),
                mail_from: r.get(2)?,
                rcpt: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                raw: r.get(4)?,
                attempts: r.get(5)?,
                created_at: parse_ts(&r.get::<_, String>(6)?).unwrap_or(now),
            })
        })?;
        let mut items = Vec::new();
        for r in rows {
            items.push(r?);
        }
        let mut claim = self.t.prepare_cached(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?1",
        )?;
        for it in &items {
            claim.execute([it.id.get()])?;
        }
        Ok(items)
    }

    pub(super) fn mark_sent(
        &mut self,
        id: OutboxId,
        at: DateTime<Utc>,
        response: &str,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?2, response = ?3 WHERE id = ?1",
            params![id.get(), ts(at), response],
        )?;
        Ok(())
    }

    pub(super) fn mark_retry(
        &mut self,
        id: OutboxId,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE outbox SET state = 'queued', next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            params![id.get(), ts(next_at), error],
        )?;
        Ok(())
    }

    pub(super) fn mark_failed(
        &mut self,
        id: OutboxId,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        self.t.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?2 WHERE id = ?1",
            params![id.get(), error],
        )?;
        let ticket: Option<i64> = self
            .t
            .query_row(
                "SELECT ticket_id FROM outbox WHERE id = ?1",
                [id.get()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        self.append_event(&NewEvent {
            ticket: ticket.map(TicketId::new),
            at,
            actor: "postdesk",
            kind: EventKind::OutboxFailed,
            old: None,
            new: None,
            detail: Some(&format!("outbox #{}: {error}", id.get())),
        })
    }

    pub(super) fn requeue_outbox(
        &mut self,
        id: Option<OutboxId>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let n = match id {
            Some(id) => {
                let n = self.t.execute(
                    "UPDATE outbox SET state = 'queued', next_attempt_at = ?2 WHERE id = ?1 AND state IN ('failed', 'queued')",
                    params![id.get(), ts(now)],
                )?;
                if n == 0 {
                    return Err(StoreError::NotFound(format!(
                        "outbox #{} waiting or failed",
                        id.get()
                    )));
                }
                n
            }
            None => self.t.execute(
                "UPDATE outbox SET state = 'queued', next_attempt_at = ?1 WHERE state = 'failed'",
                params![ts(now)],
            )?,
        };
        Ok(n)
    }
}

/// Chinese, Japanese and Korean characters: the scripts written without spaces.
pub(super) fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF       // Hiragana, Katakana
        | 0x3400..=0x4DBF     // CJK Extension A
        | 0x4E00..=0x9FFF     // CJK Unified Ideographs
        | 0xAC00..=0xD7AF     // Hangul syllables
        | 0xF900..=0xFAFF     // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // Extensions B–F, Compatibility Supplement
}

/// The overlapping character pairs of every run of CJK characters, space-separated
/// ("打印机坏了" → "打印 印机 机坏 坏了"): the tokens of `message_bigrams`.
pub(super) fn bigrams(text: &str) -> String {
    let mut out = String::new();
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if is_cjk(c) {
            if let Some(p) = prev {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push(p);
                out.push(c);
            }
            prev = Some(c);
        } else {
            prev = None;
        }
    }
    out
}
