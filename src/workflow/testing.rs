//! Unit-test bench for the workflow: a real [`Engine`] over an in-memory store, a settable
//! clock, no mail servers.
//!
//! [`Bench::new`] takes the TOML after the fixed top (one queue `support`, one mailbox
//! `mb0` at `support@example.test`, tag `ACME`, agents `alice` and `bob`); messages go in
//! through the same [`Engine::ingest_unfetched`] path as `postdesk deliver`.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use super::{Applied, Delivered, Engine};
use crate::clock::{Clock, ManualClock};
use crate::key::InstanceKey;
use crate::model::{MailboxName, Status, TicketId};
use crate::notify::Templates;
use crate::store::memory::Memory;
use crate::store::{EventView, Reader, StoreError, Tx};

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
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("password"), "unused").expect("password file");
        let text = format!(
            r#"data_dir = "{data}"
hostname = "helpdesk.example.test"

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
        let prepared = self.engine.prepare(&raw);
        let at = self.now();
        self.write(|e, tx| e.ingest_unfetched(tx, &MailboxName::new("mb0"), &raw, &prepared, at))
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
}
