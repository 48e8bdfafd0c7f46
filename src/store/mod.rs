//! All SQL, behind operations named for what they do (DESIGN.md "Storage").
//!
//! - SQLite in WAL mode at `data_dir/postdesk.db`; migrations in code ([`schema`]).
//! - One writer thread owns the only write connection; async callers send it a [`Write`]
//!   (a closed enum: every write the daemon makes is listed there) and await the reply.
//!   No rusqlite call runs on a tokio worker in the hot path.
//! - A batch of incoming messages, its tickets, events, outbox rows and the mailbox cursor
//!   commit in one transaction (one fsync per batch), applied by `workflow` through [`Tx`].
//! - Reads for the CLI and `--json` go through [`Reader`], a read-only connection.
//!
//! **Architecture invariant:** only `store` imports `rusqlite`.

mod read;
mod report;
mod schema;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use tokio::sync::oneshot;

pub use read::*;
pub use report::*;
pub use tx::*;

use crate::model::Status;
use crate::model::{MailboxName, OutboxId, QuarantineId, TicketId};
use crate::schedule::Job;
use crate::workflow::admin::Change;
use crate::workflow::{
    BatchOutcome, Delivered, Engine, IngestBatch, Prepared, RetryOutcome, StatusChange,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create data directory {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot migrate database schema")]
    Migrate(#[source] rusqlite_migration::Error),
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the store writer has stopped")]
    WriterGone,
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
}

impl StoreError {
    /// True when the database is locked by another process: try again later (the MTA
    /// pipe answers EX_TEMPFAIL).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Every write the daemon and the CLI make.
enum Write {
    Ingest(IngestBatch, Reply<BatchOutcome>),
    RetryQuarantine(QuarantineId, Reply<RetryOutcome>),
    ChangeStatus {
        ticket: TicketId,
        to: Status,
        actor: String,
        at: DateTime<Utc>,
        reply: Reply<StatusChange>,
    },
    Deliver {
        mailbox: MailboxName,
        raw: Vec<u8>,
        // Boxed: a parsed message is large, and every other write is small.
        prepared: Box<Result<Prepared, String>>,
        at: DateTime<Utc>,
        reply: Reply<Delivered>,
    },
    Import {
        mailbox: MailboxName,
        items: Vec<(Vec<u8>, Result<Prepared, String>)>,
        notify: bool,
        at: DateTime<Utc>,
        reply: Reply<BatchOutcome>,
    },
    AdminChange {
        ticket: TicketId,
        changes: Vec<Change>,
        actor: String,
        at: DateTime<Utc>,
        reply: Reply<Vec<String>>,
    },
    RunDueJobs {
        now: DateTime<Utc>,
        reply: Reply<Vec<(Job, DateTime<Utc>)>>,
    },
    RecordSync {
        mailbox: MailboxName,
        mode: &'static str,
        at: DateTime<Utc>,
        reply: Reply<()>,
    },
    RecordMailboxError {
        mailbox: MailboxName,
        error: String,
        at: DateTime<Utc>,
        reply: Reply<()>,
    },
    ClaimOutbox {
        limit: usize,
        now: DateTime<Utc>,
        reply: Reply<Vec<OutboxItem>>,
    },
    MarkSent {
        id: OutboxId,
        at: DateTime<Utc>,
        response: String,
        reply: Reply<()>,
    },
    MarkRetry {
        id: OutboxId,
        next_at: DateTime<Utc>,
        error: String,
        reply: Reply<()>,
    },
    MarkFailed {
        id: OutboxId,
        at: DateTime<Utc>,
        error: String,
        reply: Reply<()>,
    },
    RequeueOutbox {
        id: Option<OutboxId>,
        now: DateTime<Utc>,
        reply: Reply<usize>,
    },
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Write>,
    path: Arc<PathBuf>,
}

/// Text form of a time in the database: RFC 3339, UTC, milliseconds; sorts as text.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn open_write_connection(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL: readers never block the writer. synchronous=FULL: a committed batch survives
    // power loss too; with one commit per batch that is one fsync per batch.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -16_000)?;
    // Each message runs in a SAVEPOINT; its statement journal stays in memory instead of
    // a temporary file (measured: a fifth of the writer's time went to that file).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // The ingest path uses a few dozen statements; the default cache of 16 thrashed and
    // re-parsed SQL for every message.
    conn.set_prepared_statement_cache_capacity(128);
    schema::migrations()
        .to_latest(&mut conn)
        .map_err(StoreError::Migrate)?;
    Ok(conn)
}

impl Store {
    /// Like [`Store::open`], but refuses to create a database: for `postdesk deliver`,
    /// which must not start a second, empty store when the real one is missing (the MTA
    /// is told to retry instead).
    pub fn open_existing(path: &Path, engine: Arc<Engine>) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "database {} (is the data directory mounted, and has `postdesk run` started once?)",
                path.display()
            )));
        }
        Store::open(path, engine)
    }

    /// Opens (creating and migrating) the database and starts the writer thread. The
    /// thread ends when the last `Store` handle is dropped.
    pub fn open(path: &Path, engine: Arc<Engine>) -> Result<Store, StoreError> {
        let mut conn = open_write_connection(path)?;
        // Rows claimed by a sender that died with the process go back to the queue. This
        // is the one window in which a mail can be sent twice: the SMTP server accepted
        // it, and the process died before `mark_sent` committed.
        conn.execute(
            "UPDATE outbox SET state = 'queued' WHERE state = 'sending'",
            [],
        )?;
        let (tx, rx) = mpsc::channel::<Write>();
        std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || writer_loop(&mut conn, &engine, rx))
            .map_err(|e| StoreError::Refused(format!("cannot start writer thread: {e}")))?;
        Ok(Store {
            tx,
            path: Arc::new(path.to_owned()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read-only connection to the same database.
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Reader::open(&self.path)
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Write) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Records a batch from one mailbox and advances its cursor, in one transaction.
    pub async fn ingest(&self, batch: IngestBatch) -> Result<BatchOutcome, StoreError> {
        self.call(|r| Write::Ingest(batch, r)).await
    }

    /// Processes a quarantined message again with the current code and configuration.
    pub async fn retry_quarantined(&self, id: QuarantineId) -> Result<RetryOutcome, StoreError> {
        self.call(|r| Write::RetryQuarantine(id, r)).await
    }

    /// Changes a ticket's status through the lifecycle's transition table.
    pub async fn change_status(
        &self,
        ticket: TicketId,
        to: Status,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<StatusChange, StoreError> {
        let actor = actor.to_owned();
        self.call(|reply| Write::ChangeStatus {
            ticket,
            to,
            actor,
            at,
            reply,
        })
        .await
    }

    /// Stores one message handed over by the MTA (`postdesk deliver`).
    pub async fn deliver(
        &self,
        mailbox: MailboxName,
        raw: Vec<u8>,
        prepared: Result<Prepared, String>,
        at: DateTime<Utc>,
    ) -> Result<Delivered, StoreError> {
        self.call(|reply| Write::Deliver {
            mailbox,
            raw,
            prepared: Box::new(prepared),
            at,
            reply,
        })
        .await
    }

    /// Stores a batch of imported messages in one transaction.
    pub async fn import(
        &self,
        mailbox: MailboxName,
        items: Vec<(Vec<u8>, Result<Prepared, String>)>,
        notify: bool,
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        self.call(|reply| Write::Import {
            mailbox,
            items,
            notify,
            at,
            reply,
        })
        .await
    }

    /// A sysadmin's changes to a ticket, all or nothing; returns what was done.
    pub async fn admin_change(
        &self,
        ticket: TicketId,
        changes: Vec<Change>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let actor = actor.to_owned();
        self.call(|reply| Write::AdminChange {
            ticket,
            changes,
            actor,
            at,
            reply,
        })
        .await
    }

    /// Runs the scheduled jobs due at `now` (each with its run record, in one transaction).
    pub async fn run_due_jobs(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Job, DateTime<Utc>)>, StoreError> {
        self.call(|reply| Write::RunDueJobs { now, reply }).await
    }

    /// A sync finished: the session is up, in `mode` (`idle` or `poll`), nothing left.
    pub async fn record_sync(
        &self,
        mailbox: MailboxName,
        mode: &'static str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(|reply| Write::RecordSync {
            mailbox,
            mode,
            at,
            reply,
        })
        .await
    }

    /// Keeps the last error of a mailbox for `postdesk status`. The text must hold no secret.
    pub async fn record_mailbox_error(
        &self,
        mailbox: MailboxName,
        error: String,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.call(|reply| Write::RecordMailboxError {
            mailbox,
            error,
            at,
            reply,
        })
        .await
    }

    /// Takes up to `limit` due outbox rows and marks them `sending`.
    pub async fn claim_outbox(
        &self,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.call(|reply| Write::ClaimOutbox { limit, now, reply })
            .await
    }

    pub async fn mark_sent(
        &self,
        id: OutboxId,
        at: DateTime<Utc>,
        response: String,
    ) -> Result<(), StoreError> {
        self.call(|reply| Write::MarkSent {
            id,
            at,
            response,
            reply,
        })
        .await
    }

    /// A temporary failure: back to `queued`, next attempt at `next_at`.
    pub async fn mark_retry(
        &self,
        id: OutboxId,
        next_at: DateTime<Utc>,
        error: String,
    ) -> Result<(), StoreError> {
        self.call(|reply| Write::MarkRetry {
            id,
            next_at,
            error,
            reply,
        })
        .await
    }

    /// A permanent failure: the server's answer is kept and an event goes on the ticket.
    pub async fn mark_failed(
        &self,
        id: OutboxId,
        at: DateTime<Utc>,
        error: String,
    ) -> Result<(), StoreError> {
        self.call(|reply| Write::MarkFailed {
            id,
            at,
            error,
            reply,
        })
        .await
    }

    /// Puts one failed (or waiting) row, or all failed rows, back in the queue, due now.
    pub async fn requeue_outbox(
        &self,
        id: Option<OutboxId>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.call(|reply| Write::RequeueOutbox { id, now, reply })
            .await
    }
}

fn writer_loop(conn: &mut Connection, engine: &Engine, rx: mpsc::Receiver<Write>) {
    while let Ok(write) = rx.recv() {
        match write {
            Write::Ingest(batch, reply) => {
                let _ = reply.send(in_tx(conn, |tx| engine.ingest(tx, batch)));
            }
            Write::RetryQuarantine(id, reply) => {
                let _ = reply.send(in_tx(conn, |tx| engine.retry_quarantined(tx, id)));
            }
            Write::ChangeStatus {
                ticket,
                to,
                actor,
                at,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| {
                    engine.change_status(tx, ticket, to, &actor, at)
                }));
            }
            Write::Deliver {
                mailbox,
                raw,
                prepared,
                at,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| {
                    engine.ingest_unfetched(tx, &mailbox, &raw, &prepared, at)
                }));
            }
            Write::Import {
                mailbox,
                items,
                notify,
                at,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| {
                    engine.import_batch(tx, &mailbox, &items, notify, at)
                }));
            }
            Write::AdminChange {
                ticket,
                changes,
                actor,
                at,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| {
                    engine.admin_change(tx, ticket, &changes, &actor, at)
                }));
            }
            Write::RunDueJobs { now, reply } => {
                let _ = reply.send(in_tx(conn, |tx| engine.run_due_jobs(tx, now)));
            }
            Write::RecordSync {
                mailbox,
                mode,
                at,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| tx.record_sync(&mailbox, mode, at)));
            }
            Write::RecordMailboxError {
                mailbox,
                error,
                at,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| {
                    tx.record_mailbox_error(&mailbox, &error, at)
                }));
            }
            Write::ClaimOutbox { limit, now, reply } => {
                let _ = reply.send(in_tx(conn, |tx| tx.claim_outbox(limit, now)));
            }
            Write::MarkSent {
                id,
                at,
                response,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| tx.mark_sent(id, at, &response)));
            }
            Write::MarkRetry {
                id,
                next_at,
                error,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| tx.mark_retry(id, next_at, &error)));
            }
            Write::MarkFailed {
                id,
                at,
                error,
                reply,
            } => {
                let _ = reply.send(in_tx(conn, |tx| tx.mark_failed(id, at, &error)));
            }
            Write::RequeueOutbox { id, now, reply } => {
                let _ = reply.send(in_tx(conn, |tx| tx.requeue_outbox(id, now)));
            }
        }
    }
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed when it returns `Ok`, rolled
/// back otherwise.
fn in_tx<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let t = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let out = {
        let mut tx = Tx::new(&t);
        let out = f(&mut tx)?;
        tx.index_new_messages()?;
        out
    };
    t.commit()?;
    Ok(out)
}

/// Look up a ticket's id from user input like `42` or `#42`.
pub fn parse_ticket_id(s: &str) -> Option<TicketId> {
    s.trim()
        .trim_start_matches('#')
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(TicketId::new)
}
