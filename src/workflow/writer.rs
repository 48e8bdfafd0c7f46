//! The workflow's write side: each call is one store transaction running the engine.
//!
//! In: batches and commands from ingest, the CLI and the scheduler. Out: what the engine
//! did, after the transaction committed (or nothing, after it rolled back).
//! - [`Desk`] pairs the [`Store`] (which owns the one write connection and its thread) with
//!   the [`Engine`] (which decides): `desk.ingest(batch)` is
//!   `store.write(move |tx| engine.ingest(tx, batch))`. The store never calls back up.
//! - Every write the daemon and the CLI make through the workflow is a method here; the
//!   store's own small writes (cursor status, outbox states) stay on [`Store`].

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::admin::Change;
use super::prepare::{self, Pool, Ran};
use super::{
    BatchOutcome, Cost, Delivered, Engine, IngestBatch, Ready, Refusal, RetryOutcome, WriteError,
};
use crate::model::{MailboxName, QuarantineId, TicketId};
use crate::schedule::Job;
use crate::store::{Lane, Store, StoreError};

/// Ingest batches up to this many messages are quick writes ([`Lane::Quick`]): a quiet
/// mailbox's new message, or a few.
pub const QUICK_BATCH: usize = 20;
/// Messages per bulk write when a bigger batch is cut ([`Desk::ingest`]).
pub const BULK_PART: usize = 100;

/// The store and the engine that decides what each write does; cheap to clone.
#[derive(Clone)]
pub struct Desk {
    store: Store,
    engine: Arc<Engine>,
    /// Where messages are parsed and classified, each under `limits.message_time_limit`
    /// (shared by every mailbox of the daemon; threads start on first use).
    pool: Arc<Pool>,
}

impl Desk {
    pub fn new(store: Store, engine: Arc<Engine>) -> Desk {
        Desk {
            store,
            engine,
            pool: Arc::new(Pool::new(prepare::default_size(), prepare::MAX_ABANDONED)),
        }
    }

    /// Parses and classifies each message off the writer, on the pool, under the
    /// wall-clock limit: a message past it (or whose parser panicked) comes back with a
    /// quarantine reason, and the others go on. Same order as `raws`.
    pub async fn prepare(&self, raws: Vec<Vec<u8>>) -> Vec<Ready> {
        let mut out = self.prepare_history(raws).await;
        self.find_similar(&mut out).await;
        out
    }

    /// [`Desk::prepare`] without the similar-ticket lookups, for history (`postdesk
    /// import`): a million imported requests would each cost a lookup, for relays nobody
    /// reads as new.
    pub async fn prepare_history(&self, raws: Vec<Vec<u8>>) -> Vec<Ready> {
        let limit = self.engine.limits().message_time_limit;
        let pending: Vec<_> = raws
            .into_iter()
            .map(|raw| {
                let raw = Arc::new(raw);
                let engine = self.engine.clone();
                let shared = raw.clone();
                let job = self.pool.submit(move || {
                    let prepared = engine.prepare(&shared);
                    // Drop the worker's handle before answering, so the caller gets
                    // the bytes back without a copy.
                    drop(shared);
                    prepared
                });
                (raw, job)
            })
            .collect();
        let mut out = Vec::with_capacity(pending.len());
        for (raw, job) in pending {
            let (prepared, took) = match job.wait(limit).await {
                Ran::Done(prepared, took) => (prepared, took),
                Ran::Late => (
                    Err(format!("parsing took longer than {}", seconds(limit))),
                    limit,
                ),
                Ran::Panicked => (
                    Err("internal error: the parser panicked on this message".to_owned()),
                    Duration::ZERO,
                ),
                Ran::Stalled(stuck) => (
                    Err(format!(
                        "not parsed: {stuck} parsing workers are still stuck on earlier messages \
                         (each past {}); `postdesk quarantine retry` processes it later",
                        seconds(limit)
                    )),
                    Duration::ZERO,
                ),
            };
            // The worker has dropped its handle unless the job was abandoned.
            let raw = Arc::try_unwrap(raw).unwrap_or_else(|shared| (*shared).clone());
            out.push(Ready {
                raw,
                prepared,
                cost: Cost {
                    took,
                    truncated: None,
                },
            });
        }
        out
    }

    /// Fills in the similar resolved tickets of each message that may open a ticket, on a
    /// read connection and a blocking thread: never inside the writer's transaction (a
    /// lookup costs a few milliseconds in a big store, and ingest would wait for it).
    /// A failed lookup only means no similar tickets are shown.
    async fn find_similar(&self, items: &mut [Ready]) {
        let asks: Vec<(usize, Vec<String>)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let hints = r.prepared.as_ref().ok()?.hints.as_ref()?;
                (!hints.words.is_empty()).then(|| (i, hints.words.clone()))
            })
            .collect();
        if asks.is_empty() {
            return;
        }
        let path = self.store.path().to_owned();
        let found = tokio::task::spawn_blocking(move || {
            let reader = crate::store::Reader::open(&path)?;
            asks.into_iter()
                .map(|(i, words)| Ok((i, reader.similar(&words, None, super::knowledge::SHOWN)?)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await;
        match found {
            Ok(Ok(found)) => {
                for (i, similar) in found {
                    if let Ok(p) = &mut items[i].prepared {
                        if let Some(h) = p.hints.as_mut() {
                            h.similar = similar;
                        }
                    }
                }
            }
            Ok(Err(err)) => tracing::debug!(error = %err, "similar tickets not looked up"),
            Err(err) => tracing::warn!(error = %err, "similar-ticket lookup panicked"),
        }
    }

    /// [`Desk::prepare`] of one message.
    pub async fn prepare_one(&self, raw: Vec<u8>) -> Ready {
        self.prepare(vec![raw])
            .await
            .pop()
            .expect("one message in, one out")
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Records a batch from one mailbox and advances its cursor. A batch of up to
    /// [`QUICK_BATCH`] messages is one quick write. A bigger one is cut into bulk writes
    /// of [`BULK_PART`] messages, each advancing the cursor past its own last message, so
    /// that another mailbox's new message waits for one part at most, not for 500
    /// messages (issue 15: a burst in one mailbox delayed another's acknowledgement by
    /// 180 ms at the median with whole batches, 50 ms with parts of 100). If a later part
    /// fails, the earlier ones stay committed: their messages are stored once, and the
    /// caller (which flags or moves the batch only after `Ok`) leaves them unflagged on the
    /// server.
    pub async fn ingest(&self, mut batch: IngestBatch) -> Result<BatchOutcome, StoreError> {
        if batch.items.len() <= QUICK_BATCH {
            let engine = self.engine.clone();
            return self.store.write(move |tx| engine.ingest(tx, batch)).await;
        }
        let mut total = BatchOutcome::default();
        while !batch.items.is_empty() {
            let rest = batch.items.split_off(batch.items.len().min(BULK_PART));
            let part = IngestBatch {
                mailbox: batch.mailbox.clone(),
                uidvalidity: batch.uidvalidity,
                last_uid: match (rest.is_empty(), batch.items.last()) {
                    (false, Some(last)) => last.uid,
                    _ => batch.last_uid,
                },
                backlog: batch
                    .backlog
                    .saturating_add(u32::try_from(rest.len()).unwrap_or(u32::MAX)),
                at: batch.at,
                items: std::mem::replace(&mut batch.items, rest),
            };
            let engine = self.engine.clone();
            let done = self
                .store
                .write_in(Lane::Bulk, move |tx| engine.ingest(tx, part))
                .await?;
            total.add(&done);
        }
        Ok(total)
    }

    /// Stores one message handed over by the MTA (`postdesk deliver`).
    pub async fn deliver(
        &self,
        mailbox: MailboxName,
        message: Ready,
        at: DateTime<Utc>,
    ) -> Result<Delivered, StoreError> {
        let engine = self.engine.clone();
        self.store
            .write(move |tx| {
                let out = engine.ingest_unfetched(tx, &mailbox, &message, at)?;
                engine.prune_costs(tx, at)?;
                Ok(out)
            })
            .await
    }

    /// Stores a batch of imported messages in one transaction; `notify = false` queues no
    /// mail.
    pub async fn import(
        &self,
        mailbox: MailboxName,
        items: Vec<Ready>,
        notify: bool,
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        let engine = self.engine.clone();
        self.store
            .write_in(Lane::Bulk, move |tx| {
                engine.import_batch(tx, &mailbox, &items, notify, at)
            })
            .await
    }

    /// Processes a quarantined message again with the current code and configuration.
    /// The raw bytes are read and prepared (bounded, on the pool) outside the writer; only
    /// applying them runs in the write transaction. A truncated message is refused: its
    /// whole is elsewhere ([`RetryOutcome::Truncated`] says where).
    pub async fn retry_quarantined(&self, id: QuarantineId) -> Result<RetryOutcome, StoreError> {
        let store = self.store.clone();
        let held = tokio::task::spawn_blocking(move || store.reader()?.quarantine_raw(id))
            .await
            .map_err(|_| StoreError::WriterGone)??;
        let Some((view, raw)) = held else {
            return Err(StoreError::NotFound(format!(
                "quarantined message #{}",
                id.get()
            )));
        };
        if view.state == crate::model::QuarantineState::Released {
            return Ok(RetryOutcome::AlreadyReleased);
        }
        if view.truncated {
            return Ok(RetryOutcome::Truncated {
                size: u64::try_from(view.size).unwrap_or(0),
                kept: u64::try_from(view.kept).unwrap_or(0),
                mailbox: view.mailbox.map(MailboxName::new),
                location: view
                    .uidvalidity
                    .zip(view.uid)
                    .map(|(v, u)| (crate::model::UidValidity(v), crate::model::Uid(u))),
            });
        }
        let ready = self.prepare_one(raw).await;
        let engine = self.engine.clone();
        self.store
            .write(move |tx| engine.retry_quarantined(tx, id, &ready.prepared))
            .await
    }

    /// A sysadmin's changes to a ticket (`postdesk ticket set|merge`), all or nothing;
    /// returns what was done, or the first refusal (and nothing is changed).
    pub async fn admin_change(
        &self,
        ticket: TicketId,
        changes: Vec<Change>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, WriteError> {
        let engine = self.engine.clone();
        let actor = actor.to_owned();
        self.store
            .write(move |tx| engine.admin_change(tx, ticket, &changes, &actor, at))
            .await
    }

    /// Runs the scheduled jobs due at `now` (each with its run record, in one transaction).
    pub async fn run_due_jobs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Job, DateTime<Utc>)>, StoreError> {
        let engine = self.engine.clone();
        self.store
            .write_in(Lane::Bulk, move |tx| engine.run_due_jobs(tx, now))
            .await
    }
}

/// `5 s`, `1.5 s`, `200 ms`: a limit as the operator wrote it.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl From<Refusal> for WriteError {
    fn from(r: Refusal) -> WriteError {
        WriteError::Refused(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Uid, UidValidity};
    use crate::workflow::Incoming;

    #[test]
    fn a_big_batch_is_written_in_parts_that_end_at_the_batchs_cursor() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password"), "unused").unwrap();
        let text = format!(
            "data_dir = \"{}\"\nhostname = \"helpdesk.example.test\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 25\n\n[[queue]]\nname = \"support\"\n\n[[mailbox]]\nname = \"mb0\"\naddress = \"support@example.test\"\nqueue = \"support\"\ntag = \"ACME\"\nhost = \"127.0.0.1\"\npassword_file = \"password\"\n",
            dir.path().join("data").display()
        );
        let cfg = crate::config::from_str(&dir.path().join("postdesk.toml"), &text).unwrap();
        let engine = Arc::new(Engine::new(&cfg, Arc::new(crate::clock::SystemClock)).unwrap());
        let desk = Desk::new(Store::open(&cfg.db_path()).unwrap(), engine.clone());
        // 250 requests (UIDs 1..=250) in one batch that covers UIDs up to 300: the
        // server skipped 251..=300, and 7 more wait after it.
        let n = 2 * BULK_PART + BULK_PART / 2;
        let items: Vec<Incoming> = (1..=n)
            .map(|i| {
                let raw = format!(
                    "From: c{i}@customer.test\r\nTo: support@example.test\r\nSubject: Request {i}\r\n\
                     Message-ID: <r{i}@customer.test>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\nHello {i}\r\n"
                )
                .into_bytes();
                Incoming {
                    uid: Uid(u32::try_from(i).unwrap()),
                    prepared: engine.prepare(&raw),
                    raw,
                    cost: Cost::default(),
                }
            })
            .collect();
        let batch = IngestBatch {
            mailbox: MailboxName::new("mb0"),
            uidvalidity: UidValidity(9),
            items,
            last_uid: Uid(300),
            backlog: 7,
            at: Utc::now(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = rt.block_on(desk.ingest(batch)).unwrap();
        assert_eq!((out.recorded, out.new_tickets), (n, n));
        let reader = desk.store().reader().unwrap();
        assert_eq!(
            reader.cursor(&MailboxName::new("mb0")).unwrap(),
            Some((UidValidity(9), Uid(300)))
        );
        let status = reader.status(&["mb0".to_owned()]).unwrap();
        assert_eq!(status.tickets, n as i64);
        let mb = status.mailboxes.iter().find(|m| m.name == "mb0").unwrap();
        assert_eq!(mb.backlog, 7, "the last part reports the batch's backlog");
    }
}
