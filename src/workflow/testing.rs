//! Unit-test bench for the workflow: a real [`Engine`] over an in-memory store, a settable
//! clock, no mail servers.
//!
//! [`Bench::new`] takes the TOML after the fixed top (one queue `support`, one mailbox
//! `mb0` at `support@example.test`, tag `ACME`, agents `alice` and `bob`); messages go in
//! through the same [`Engine::ingest_unfetched`] path as `postdesk deliver`.
//! [`Bench::configured`] also takes top-level keys (`reopen_window`, `trusted_authserv_id`).
//!
//! Helpers for mail: [`Bench::send`] (any sender, subject, extra headers, body),
//! [`Bench::our_message_id`] (a signed Message-ID we sent, to reply to), and
//! [`Bench::reply`] (a reply carrying it and the subject tag). Event kinds are compared
//! through [`kind`] only, so that a typed `EventKind` changes one line.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::{Applied, Delivered, Engine};
use crate::clock::{Clock, ManualClock};
use crate::key::InstanceKey;
use crate::model::{MailboxName, Status, TicketId};
use crate::notify::Templates;
use crate::store::memory::Memory;
use crate::store::{EventView, MessageView, Reader, StoreError, Tx};

pub(crate) const SUPPORT: &str = "support@example.test";
pub(crate) const ALICE: &str = "alice@agents.example.test";
pub(crate) const BOB: &str = "bob@agents.example.test";

pub(crate) struct Bench {
    pub engine: Engine,
    pub store: Memory,
    pub clock: Arc<ManualClock>,
    /// Makes each generated Message-ID unique.
    sent: u32,
    /// Holds the password file the configuration names.
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A bench whose configuration is the fixed top plus `extra` (more tables, or keys
    /// for the `[[queue]]` when `queue_keys` is given).
    pub(crate) fn new(queue_keys: &str, extra: &str) -> Bench {
        Bench::configured("", queue_keys, extra)
    }

    /// [`Bench::new`] with `top` keys before the first table.
    pub(crate) fn configured(top: &str, queue_keys: &str, extra: &str) -> Bench {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("password"), "unused").expect("password file");
        let text = format!(
            r#"data_dir = "{data}"
hostname = "helpdesk.example.test"
{top}

[smtp]
host = "127.0.0.1"
port = 25

[[queue]]
name = "support"
display_name = "ACME Support"
{queue_keys}

[[mailbox]]
name = "mb0"
address = "{SUPPORT}"
queue = "support"
tag = "ACME"
host = "127.0.0.1"
password_file = "password"

[[agent]]
name = "alice"
addresses = ["{ALICE}"]
queues = ["support"]

[[agent]]
name = "bob"
addresses = ["{BOB}"]
queues = ["support"]
{extra}
"#,
            data = dir.path().join("data").display()
        );
        let cfg = crate::config::from_str(&dir.path().join("postdesk.toml"), &text)
            .unwrap_or_else(|e| panic!("test config: {e}"));
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
        ));
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let templates = Templates::load(None).expect("built-in templates");
        let engine = Engine::with_parts(&cfg, key, templates, clock.clone() as Arc<dyn Clock>);
        Bench {
            engine,
            store: Memory::new(),
            clock,
            sent: 0,
            _dir: dir,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs `f` with the engine in one transaction.
    pub(crate) fn write<R>(
        &mut self,
        f: impl FnOnce(&Engine, &mut Tx<'_>) -> Result<R, StoreError>,
    ) -> R {
        let engine = &self.engine;
        self.store
            .write(|tx| f(engine, tx))
            .unwrap_or_else(|e| panic!("write failed: {e}"))
    }

    /// Delivers `raw` to mailbox `mb0` now, as `postdesk deliver` would.
    pub(crate) fn deliver(&mut self, raw: &str) -> Delivered {
        let raw = raw.replace('\n', "\r\n").into_bytes();
        let message = super::Ready {
            prepared: self.engine.prepare(&raw),
            raw,
            cost: super::Cost::default(),
        };
        let at = self.now();
        self.write(|e, tx| e.ingest_unfetched(tx, &MailboxName::new("mb0"), &message, at))
    }

    /// A new ticket from `from`; panics unless the message opened one.
    pub(crate) fn new_ticket(&mut self, from: &str, subject: &str, body: &str) -> TicketId {
        self.sent += 1;
        let n = self.sent;
        let raw = format!(
            "From: {from}\nTo: {SUPPORT}\nSubject: {subject}\nMessage-ID: <bench.{n}@customer.test>\nDate: Wed, 25 Nov 2026 12:00:00 +0000\n\n{body}\n"
        );
        match self.deliver(&raw) {
            Delivered::Applied(Applied::NewTicket { ticket, .. }) => ticket,
            other => panic!("expected a new ticket, got {other:?}"),
        }
    }

    pub(crate) fn reader(&self) -> Reader {
        self.store.reader()
    }

    pub(crate) fn status(&self, ticket: TicketId) -> Status {
        self.reader()
            .ticket(ticket)
            .expect("read")
            .expect("ticket exists")
            .ticket
            .status
    }

    /// The ticket's row as `ticket show` reads it.
    pub(crate) fn ticket(&self, ticket: TicketId) -> crate::store::TicketSummary {
        self.reader()
            .ticket(ticket)
            .expect("read")
            .expect("ticket exists")
            .ticket
    }

    pub(crate) fn events(&self, ticket: TicketId) -> Vec<EventView> {
        self.reader()
            .ticket(ticket)
            .expect("read")
            .expect("ticket exists")
            .events
    }

    /// Outbox rows as (kind, recipients).
    pub(crate) fn outbox(&self) -> Vec<(String, Vec<String>)> {
        self.reader()
            .outbox_list(None)
            .expect("read")
            .into_iter()
            .map(|o| (o.kind.as_str().to_owned(), o.to))
            .collect()
    }

    /// Outbox rows of one kind, as their recipients.
    pub(crate) fn outbox_of(&self, kind: &str) -> Vec<Vec<String>> {
        self.outbox()
            .into_iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, to)| to)
            .collect()
    }

    /// The ticket's events of `wanted` kind, oldest first.
    pub(crate) fn events_of(&self, ticket: TicketId, wanted: &str) -> Vec<EventView> {
        self.events(ticket)
            .into_iter()
            .filter(|e| kind(e) == wanted)
            .collect()
    }

    /// How many events of `wanted` kind the ticket has.
    pub(crate) fn count(&self, ticket: TicketId, wanted: &str) -> usize {
        self.events(ticket)
            .iter()
            .filter(|e| kind(e) == wanted)
            .count()
    }

    /// The ticket's stored messages, both directions.
    pub(crate) fn messages(&self, ticket: TicketId) -> Vec<MessageView> {
        self.reader()
            .ticket(ticket)
            .expect("read")
            .expect("ticket exists")
            .messages
    }

    /// The signed Message-ID (with brackets) of the last mail we sent on `ticket` to
    /// `audience` (`customer`: acknowledgement, answers; `agents`: relays).
    pub(crate) fn our_message_id(&self, ticket: TicketId, audience: &str) -> String {
        self.last_sent(ticket, audience).message_id
    }

    /// The last mail we sent on `ticket` to `audience`, as stored.
    pub(crate) fn last_sent(&self, ticket: TicketId, audience: &str) -> MessageView {
        self.messages(ticket)
            .into_iter()
            .rfind(|m| m.direction == "out" && m.audience == audience)
            .unwrap_or_else(|| panic!("no outgoing mail to {audience} on #{ticket}"))
    }

    /// Delivers a mail from `from` with a fresh Message-ID; `headers` are extra header
    /// lines (`"In-Reply-To: <…>\nAuthentication-Results: …\n"`), each ending in `\n`.
    pub(crate) fn send(
        &mut self,
        from: &str,
        subject: &str,
        headers: &str,
        body: &str,
    ) -> Delivered {
        self.send_to(from, SUPPORT, subject, headers, body)
    }

    /// [`Bench::send`] to address `to`.
    pub(crate) fn send_to(
        &mut self,
        from: &str,
        to: &str,
        subject: &str,
        headers: &str,
        body: &str,
    ) -> Delivered {
        self.sent += 1;
        let n = self.sent;
        let raw = format!(
            "From: {from}\nTo: {to}\nSubject: {subject}\nMessage-ID: <bench.{n}@sender.test>\nDate: Wed, 25 Nov 2026 12:00:00 +0000\n{headers}\n{body}\n"
        );
        self.deliver(&raw)
    }

    /// The reply token address of agent `name` for `ticket` (the `Reply-To` of the mails
    /// we send that agent).
    pub(crate) fn token_address(&self, ticket: TicketId, name: &str) -> String {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        crate::agent::token::address(
            &crate::agent::token::default_reply_address(SUPPORT),
            &key,
            ticket,
            name,
        )
    }

    /// A reply from `from` to our last mail on `ticket` to `audience` (In-Reply-To its
    /// signed Message-ID, the subject tag), with `headers` as in [`Bench::send`]. An
    /// agent's reply to `agents` goes to the agent's reply token, as a mail client's Reply
    /// to the relay does.
    pub(crate) fn reply(
        &mut self,
        from: &str,
        ticket: TicketId,
        audience: &str,
        headers: &str,
        body: &str,
    ) -> Delivered {
        let id = self.our_message_id(ticket, audience);
        let subject = format!("Re: [ACME #{ticket}] reply");
        let to = match (audience, from) {
            ("agents", ALICE) => self.token_address(ticket, "alice"),
            ("agents", BOB) => self.token_address(ticket, "bob"),
            _ => SUPPORT.to_owned(),
        };
        self.send_to(
            from,
            &to,
            &subject,
            &format!("In-Reply-To: {id}\nReferences: {id}\n{headers}"),
            body,
        )
    }

    /// Runs the scheduler's due jobs at the clock's time.
    pub(crate) fn run_jobs(&mut self) -> Vec<(crate::schedule::Job, DateTime<Utc>)> {
        let now = self.now();
        self.write(|e, tx| e.run_due_jobs(tx, now))
    }
}

/// An event's kind as text: the one place tests read it.
pub(crate) fn kind(e: &EventView) -> &str {
    e.kind.as_str()
}

/// The ticket a delivered message applied to; panics on a duplicate or quarantine.
pub(crate) fn ticket_of(d: &Delivered) -> TicketId {
    match d {
        Delivered::Applied(a) => a.ticket().unwrap_or_else(|| panic!("no ticket for {d:?}")),
        other => panic!("expected an applied message, got {other:?}"),
    }
}
