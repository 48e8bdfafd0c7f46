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

use chrono::{DateTime, Utc};

use super::admin::Change;
use super::{
    BatchOutcome, Delivered, Engine, IngestBatch, Prepared, Refusal, RetryOutcome, WriteError,
};
use crate::model::{MailboxName, QuarantineId, TicketId};
use crate::schedule::Job;
use crate::store::{Store, StoreError};

/// The store and the engine that decides what each write does; cheap to clone.
#[derive(Clone)]
pub struct Desk {
    store: Store,
    engine: Arc<Engine>,
}

impl Desk {
    pub fn new(store: Store, engine: Arc<Engine>) -> Desk {
        Desk { store, engine }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Records a batch from one mailbox and advances its cursor, in one transaction.
    pub async fn ingest(&self, batch: IngestBatch) -> Result<BatchOutcome, StoreError> {
        let engine = self.engine.clone();
        self.store.write(move |tx| engine.ingest(tx, batch)).await
    }

    /// Stores one message handed over by the MTA (`postdesk deliver`).
    pub async fn deliver(
        &self,
        mailbox: MailboxName,
        raw: Vec<u8>,
        prepared: Result<Prepared, String>,
        at: DateTime<Utc>,
    ) -> Result<Delivered, StoreError> {
        let engine = self.engine.clone();
        self.store
            .write(move |tx| engine.ingest_unfetched(tx, &mailbox, &raw, &prepared, at))
            .await
    }

    /// Stores a batch of imported messages in one transaction; `notify = false` queues no
    /// mail.
    pub async fn import(
        &self,
        mailbox: MailboxName,
        items: Vec<(Vec<u8>, Result<Prepared, String>)>,
        notify: bool,
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        let engine = self.engine.clone();
        self.store
            .write(move |tx| engine.import_batch(tx, &mailbox, &items, notify, at))
            .await
    }

    /// Processes a quarantined message again with the current code and configuration.
    pub async fn retry_quarantined(&self, id: QuarantineId) -> Result<RetryOutcome, StoreError> {
        let engine = self.engine.clone();
        self.store
            .write(move |tx| engine.retry_quarantined(tx, id))
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
            .write(move |tx| engine.run_due_jobs(tx, now))
            .await
    }
}

impl From<Refusal> for WriteError {
    fn from(r: Refusal) -> WriteError {
        WriteError::Refused(r)
    }
}
