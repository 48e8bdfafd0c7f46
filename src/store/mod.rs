//! All SQL, behind operations named for what they do (DESIGN.md "Storage").
//!
//! - SQLite in WAL mode at `data_dir/postdesk.db`; migrations in code ([`schema`]).
//! - A leaf: it imports only `model`, `mail` (the parsed message it keeps) and `calendar`,
//!   never the workflow, ingest, notify, daemon or cli that call it (mini-redis's `db.rs`).
//! - One writer thread owns the only write connection; [`Store::write`] hands it a closure
//!   over a [`Tx`] and awaits the result, so the workflow's decisions run inside the store's
//!   transaction while the dependency points down. No rusqlite call runs on a tokio worker.
//! - A batch of incoming messages, its tickets, events, outbox rows and the mailbox cursor
//!   commit in one transaction (one fsync per batch): the workflow's closure makes them all.
//! - Reads for the CLI and `--json` go through [`Reader`], a read-only connection.
//!
//! **Architecture invariant:** only `store` imports `rusqlite`.

#[cfg(test)]
pub(crate) mod memory;
mod read;
mod report;
mod schema;
mod similar;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod plans;
mod triage;
mod tx;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::oneshot;

pub use read::*;
pub use report::*;
pub use similar::{excerpt, OwnTicket, SimilarTicket};
pub use triage::*;
pub use tx::*;

use crate::model::{MailboxName, OutboxId, TicketId};

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
    /// A write panicked (a bug): its transaction was rolled back, the writer goes on.
    #[error("internal error while writing (nothing was changed): {0}")]
    Panicked(String),
    #[error("cannot start the store writer thread")]
    Thread(#[source] std::io::Error),
    #[error("{0} not found")]
    NotFound(String),
    #[error(
        "database {} is at schema version {found}, and this postdesk reads version {want}: {}",
        path.display(),
        if found < want {
            "run `postdesk migrate` (or start the daemon once) to migrate it"
        } else {
            "it was written by a newer postdesk; run that version"
        }
    )]
    Schema {
        path: PathBuf,
        found: i64,
        want: i64,
    },
    #[error("{} exists: give a new file", .0.display())]
    BackupExists(PathBuf),
    #[error("the copy at {} fails its integrity check: {check}", path.display())]
    BackupCorrupt { path: PathBuf, check: String },
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

/// One write: runs on the writer thread with the write connection, and sends its own reply.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// What became of one send of an outbox row ([`Store::record_deliveries`]).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: OutboxId,
    pub at: DateTime<Utc>,
    pub result: DeliveryResult,
}

#[derive(Debug, Clone)]
pub enum DeliveryResult {
    /// Accepted, with the server's answer.
    Sent { response: String },
    /// A temporary failure: queued again, next attempt at `next_at`.
    Retry {
        next_at: DateTime<Utc>,
        error: String,
    },
    /// A permanent failure: the server's answer is kept, an event goes on the ticket.
    Failed { error: String },
}

/// Which of the writer's two queues a write waits in (issue 15: a burst in one mailbox
/// must not delay another's acknowledgement).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Short writes (one message, an outbox claim, a sent mark, a cursor's status): each
    /// waits at most for the write or search-index chunk in progress.
    Quick,
    /// Long writes (a mailbox's batch of many messages, an import, the scheduled jobs):
    /// taken in order when no quick write waits.
    Bulk,
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<(Lane, Job)>,
    path: Arc<PathBuf>,
}

/// Text form of a time in the database: RFC 3339, UTC, milliseconds; sorts as text.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    crate::model::stamp::text(t)
}

pub(crate) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    crate::model::stamp::parse(s)
}

/// A column holding a type's text form (`Status`, `OutboxKind`…); a text the type does
/// not know is a conversion error, never a default.
pub(crate) fn value<T>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.get(i)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A column holding a type's text form or NULL; an unknown text is an error.
pub(crate) fn opt_value<T>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        }),
    }
}

/// A column holding a time (see [`ts`]).
pub(crate) fn time(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    opt_time(r, i)?.ok_or(rusqlite::Error::InvalidColumnType(
        i,
        "time".to_owned(),
        rusqlite::types::Type::Null,
    ))
}

/// A column holding a time or NULL; a text that is no time is an error.
pub(crate) fn opt_time(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(text) => parse_ts(&text).map(Some).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                i,
                rusqlite::types::Type::Text,
                format!("not a time: {text:?}").into(),
            )
        }),
    }
}

/// Creates a missing data directory with mode 0700 (whatever the umask).
fn private_dir(dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::DataDir {
            path: dir.to_owned(),
            source,
        })
}

/// Makes the database file (created if missing) readable by its owner only, whatever the
/// umask; SQLite gives its `-wal` and `-shm` files the database file's mode. A file
/// created by an older version with a wider mode is narrowed.
/// Takes group and other permissions off a file that exists. A side file (`-wal`, `-shm`)
/// may vanish meanwhile (the last connection to the store closed, as when a process
/// reopens its store): nothing to tighten then.
fn tighten_existing(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |source| StoreError::DataDir {
        path: path.to_owned(),
        source,
    };
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode(),
        Err(e) if gone(&e) => return Ok(()),
        Err(e) => return Err(failed(e)),
    };
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700)) {
            Err(e) if !gone(&e) => return Err(failed(e)),
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |source| StoreError::DataDir {
        path: path.to_owned(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)
                .map_err(failed)?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
                    .map_err(failed)?;
            }
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

fn open_write_connection(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    private_file(path)?;
    for side in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(side);
        tighten_existing(&std::path::PathBuf::from(p))?;
    }
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_owned(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // Before the schema (and its statistics) is first read.
    set_stat4(&conn, false);
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
    // Planner statistics for the tables that need them (0x10002: also on a first open
    // of a big store, bounded by an analysis limit), then hourly in the writer.
    optimize(&conn, "PRAGMA optimize = 0x10002")?;
    Ok(conn)
}

/// Whether the write connection's query planner reads `sqlite_stat4` samples. It does not
/// (issue 15): with samples, SQLite prepares a statement again on the first step after a
/// value bound to an indexed column changes, as if the schema had changed, so on a big
/// store (where `PRAGMA optimize` has made samples) every cached statement of the ingest
/// path was parsed and planned again for each message: 17% of the writer's time in
/// ingest on the 1,000,000-ticket store, none on an empty one. The writer's statements
/// are lookups by key that `sqlite_stat1` plans alike. Readers keep using the samples.
fn set_stat4(conn: &Connection, on: bool) {
    const STAT4: u32 = 0x0000_0800; // SQLITE_Stat4 in sqlite3.c: a set bit turns it off
    let mut flags: std::os::raw::c_int = 0;
    // SAFETY: the handle is this open connection's, used on this thread only; both test
    // controls read or write one field of it (SQLITE_TESTCTRL_GETOPT, _OPTIMIZATIONS).
    unsafe {
        let db = conn.handle();
        rusqlite::ffi::sqlite3_test_control(
            rusqlite::ffi::SQLITE_TESTCTRL_GETOPT,
            db,
            &mut flags as *mut std::os::raw::c_int,
        );
        let flags = if on {
            flags as u32 & !STAT4
        } else {
            flags as u32 | STAT4
        };
        rusqlite::ffi::sqlite3_test_control(
            rusqlite::ffi::SQLITE_TESTCTRL_OPTIMIZATIONS,
            db,
            flags,
        );
    }
}

/// Runs a `PRAGMA optimize` with `sqlite_stat4` samples on, so that the statistics the
/// readers plan with are made as before (see [`set_stat4`]); then forgets the statistics
/// of the full-text indexes' own tables ([`forget_fts_stats`]).
fn optimize(conn: &Connection, pragma: &str) -> rusqlite::Result<()> {
    set_stat4(conn, true);
    let done = conn.execute_batch(pragma);
    set_stat4(conn, false);
    done?;
    forget_fts_stats(conn)
}

/// FTS5 reads and writes its shadow tables (`<index>_data`, `_idx`, ...) only by key, but
/// the planner believes their `sqlite_stat1` rows: analysed on a new store, where
/// `message_fts_data` holds its 2 bookkeeping rows, the row stayed "2" while the table
/// grew, and FTS5's `DELETE FROM message_fts_data WHERE id >= ? AND id <= ?` (every
/// segment merge) was planned as a scan of the whole table. Measured (issue 15): a bulk
/// build read 2.6 GB/s from the page cache at 325,000 tickets and fell from 700 to 17
/// messages a second. So the shadow tables' rows are replaced by a fixed estimate of a
/// big `_data` table (deleting them is not enough: an open connection keeps the last
/// estimate it read), and `ANALYZE sqlite_schema` makes this connection read them again.
fn forget_fts_stats(conn: &Connection) -> rusqlite::Result<()> {
    const SHADOWS: &str = "SELECT shadow.name FROM sqlite_schema fts
        JOIN sqlite_schema shadow ON shadow.type = 'table' AND shadow.name LIKE fts.name || '\\_%' ESCAPE '\\'
        WHERE fts.type = 'table' AND fts.sql LIKE 'CREATE VIRTUAL TABLE % USING fts5%'";
    let mut changed = 0;
    for stat in ["sqlite_stat1", "sqlite_stat4"] {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1)",
            [stat],
            |r| r.get(0),
        )?;
        if !exists {
            continue;
        }
        if stat == "sqlite_stat1" {
            let stale: i64 = conn.query_row(
                &format!(
                    "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl IN ({SHADOWS})
                     AND NOT (tbl LIKE '%\\_data' ESCAPE '\\' AND idx IS NULL AND stat = '{FTS_DATA_ROWS}')"
                ),
                [],
                |r| r.get(0),
            )?;
            if stale == 0 {
                continue;
            }
        }
        changed += conn.execute(&format!("DELETE FROM {stat} WHERE tbl IN ({SHADOWS})"), [])?;
        if stat == "sqlite_stat1" {
            changed += conn.execute(
                &format!(
                    "INSERT INTO sqlite_stat1 (tbl, idx, stat)
                     SELECT name, NULL, '{FTS_DATA_ROWS}' FROM ({SHADOWS}) WHERE name LIKE '%\\_data' ESCAPE '\\'"
                ),
                [],
            )?;
        }
    }
    if changed > 0 {
        conn.execute_batch("ANALYZE sqlite_schema")?;
    }
    Ok(())
}

/// The row count the planner is told for each full-text index's `_data` table.
const FTS_DATA_ROWS: u32 = 1_000_000;

/// The schema version of the database at `path` (`PRAGMA user_version`: how many
/// migrations have run), read without migrating anything.
pub fn schema_version(path: &Path) -> Result<i64, StoreError> {
    if !path.exists() {
        return Err(StoreError::NotFound(format!("database {}", path.display())));
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// The schema version this postdesk writes.
pub const SCHEMA_VERSION: i64 = schema::LATEST;

impl Store {
    /// Like [`Store::open`], but refuses to create a database: for `postdesk deliver`,
    /// which must not start a second, empty store when the real one is missing (the MTA
    /// is told to retry instead).
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::NotFound(format!(
                "database {} (is the data directory mounted, and has `postdesk run` started once?)",
                path.display()
            )));
        }
        Store::open(path)
    }

    /// Opens (creating and migrating) the database and starts the writer thread. The
    /// thread ends when the last `Store` handle is dropped.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = open_write_connection(path)?;
        // Rows claimed by a sender that died with the process go back to the queue. This
        // is the one window in which a mail can be sent twice: the SMTP server accepted
        // it, and the process died before `mark_sent` committed.
        conn.execute(
            "UPDATE outbox SET state = 'queued' WHERE state = 'sending'",
            [],
        )?;
        let checkpoints = Checkpointer::start(path)?;
        // The writer checkpoints itself only when the checkpointer falls far behind.
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        let (jobs, rx) = mpsc::channel::<(Lane, Job)>();
        std::thread::Builder::new()
            .name("store-writer".to_owned())
            .spawn(move || writer_loop(&mut conn, rx, &checkpoints))
            .map_err(StoreError::Thread)?;
        Ok(Store {
            jobs,
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

    /// Runs `f` in the one writer's transaction (`BEGIN IMMEDIATE`): committed when it
    /// returns `Ok`, rolled back otherwise. The caller's error type only needs to hold a
    /// [`StoreError`], so a layer above (workflow) brings its own refusals. A quick write
    /// ([`Lane::Quick`]); [`Store::write_in`] chooses.
    pub async fn write<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_in(Lane::Quick, f).await
    }

    /// [`Store::write`] in the given lane: quick writes go before bulk ones that wait.
    /// Writes in one lane keep their order; a caller that awaits each write keeps its own.
    pub async fn write_in<R, E, F>(&self, lane: Lane, f: F) -> Result<R, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<R, E> + Send + 'static,
        R: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // The transaction is dropped (rolled back) while unwinding; the caller hears
            // what happened and the writer takes the next job.
            let out = catch_unwind(AssertUnwindSafe(|| in_tx(conn, f))).unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_owned());
                tracing::error!(panic = %what, "a store write panicked; its transaction was rolled back");
                Err(E::from(StoreError::Panicked(what)))
            });
            let _ = reply.send(out);
        });
        self.jobs
            .send((lane, job))
            .map_err(|_| E::from(StoreError::WriterGone))?;
        rx.await.map_err(|_| E::from(StoreError::WriterGone))?
    }

    /// A sync finished: the session is up, in `mode` (`idle` or `poll`), nothing left.
    /// It is also what keeps the mailbox's alarm quiet, and it proves the login.
    pub async fn record_sync(
        &self,
        mailbox: MailboxName,
        mode: &'static str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.record_sync(&mailbox, mode, at))
            .await
    }

    /// Keeps the last error of a mailbox for `postdesk status`. The text must hold no secret.
    pub async fn record_mailbox_error(
        &self,
        mailbox: MailboxName,
        error: String,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.record_mailbox_error(&mailbox, &error, at))
            .await
    }

    /// A login worked: `last_login_at`, auth state `ok`, a refused login is over.
    pub async fn record_login(
        &self,
        mailbox: MailboxName,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.record_login(&mailbox, at)).await
    }

    /// A login was refused (wrong password, token refused or not refreshable): kept as
    /// the last error, like [`Store::record_mailbox_error`], and auth state `failed` with
    /// the reason, which raises the mailbox's alarm at once. The text must hold no secret.
    pub async fn record_auth_failure(
        &self,
        mailbox: MailboxName,
        error: String,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.record_auth_failure(&mailbox, &error, at))
            .await
    }

    /// Takes up to `limit` due outbox rows and marks them `sending`. Acknowledgements
    /// waiting longer than `ack_max_age` are marked failed first, with an event: they are
    /// not sent late.
    pub async fn claim_outbox(
        &self,
        limit: usize,
        now: DateTime<Utc>,
        ack_max_age: Duration,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.write(move |tx| {
            let expired = tx.expire_acknowledgements(now, ack_max_age)?;
            if expired > 0 {
                tracing::warn!(
                    expired,
                    "acknowledgements not sent within ack_max_age dropped"
                );
            }
            tx.claim_outbox(limit, now)
        })
        .await
    }

    pub async fn mark_sent(
        &self,
        id: OutboxId,
        at: DateTime<Utc>,
        response: String,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.mark_sent(id, at, &response)).await
    }

    /// A temporary failure: back to `queued`, next attempt at `next_at`.
    pub async fn mark_retry(
        &self,
        id: OutboxId,
        next_at: DateTime<Utc>,
        error: String,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.mark_retry(id, next_at, &error))
            .await
    }

    /// A permanent failure: the server's answer is kept and an event goes on the ticket.
    pub async fn mark_failed(
        &self,
        id: OutboxId,
        at: DateTime<Utc>,
        error: String,
    ) -> Result<(), StoreError> {
        self.write(move |tx| tx.mark_failed(id, at, &error)).await
    }

    /// The results of several sends in one transaction (one commit, one fsync): what the
    /// outbox sender has collected while its previous results were being written.
    pub async fn record_deliveries(&self, results: Vec<Delivery>) -> Result<(), StoreError> {
        self.write(move |tx| {
            for d in &results {
                match &d.result {
                    DeliveryResult::Sent { response } => tx.mark_sent(d.id, d.at, response)?,
                    DeliveryResult::Retry { next_at, error } => {
                        tx.mark_retry(d.id, *next_at, error)?;
                    }
                    DeliveryResult::Failed { error } => tx.mark_failed(d.id, d.at, error)?,
                }
            }
            Ok(())
        })
        .await
    }

    /// Puts one failed (or waiting) row, or all failed rows, back in the queue, due now.
    pub async fn requeue_outbox(
        &self,
        id: Option<OutboxId>,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.write(move |tx| tx.requeue_outbox(id, now)).await
    }
}

/// Messages indexed for search per transaction by `postdesk search reindex` and
/// `check --store` (issue 15).
pub const INDEX_BATCH: usize = 5000;
/// Messages the writer indexes per transaction: a write that arrives meanwhile waits for
/// one such chunk at most.
pub const INDEX_CHUNK_IDLE: usize = 500;
/// While bulk writes keep coming, the index catches up after waiting this long.
pub const INDEX_LAG: std::time::Duration = std::time::Duration::from_millis(500);
/// How often the writer refreshes the query planner's statistics (`PRAGMA optimize`),
/// in a quiet moment; also once when the store opens.
pub const OPTIMIZE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl Store {
    /// Indexes up to `limit` waiting messages for search now; true if more wait
    /// (`postdesk search reindex` drives it to the end with progress).
    pub async fn index_some(&self, limit: usize) -> Result<bool, StoreError> {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(index_batch(conn, limit));
        });
        self.jobs
            .send((Lane::Bulk, job))
            .map_err(|_| StoreError::WriterGone)?;
        rx.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// WAL pages past which the writer checkpoints on its own (SQLite's default is 1000):
/// only when the [`Checkpointer`] falls this far behind.
const WRITER_CHECKPOINT_PAGES: i64 = 20_000;
/// The checkpointer looks this often whether the writer has committed, and then copies
/// the log back, so that one checkpoint covers several commits (pages written again and again, such as
/// the `counts` rows and the tables' last leaves, are copied once).
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(100);

/// Copies the WAL back into the database file on a thread and connection of its own
/// (`PRAGMA wal_checkpoint(PASSIVE)`), so that the writer does not (issue 15: a
/// checkpoint in the writer's commit took 7% of its time during ingest, its fsyncs more).
/// A passive checkpoint never blocks the writer or a reader. The writer marks each
/// commit; it ends when the writer ends, and as the last connection to close it leaves no
/// WAL behind.
struct Checkpointer {
    /// Set by the writer after a commit; a flag, not a wake-up, so that a commit costs the
    /// writer no system call.
    dirty: Arc<std::sync::atomic::AtomicBool>,
    /// Dropped with the writer: the checkpointer ends.
    _alive: mpsc::Sender<()>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_owned(),
            source,
        })?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // The checkpoint syncs the database file as the writer's connection would have.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let dirty = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (alive, writer_gone) = mpsc::channel::<()>();
        let seen = dirty.clone();
        std::thread::Builder::new()
            .name("store-checkpoint".to_owned())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    writer_gone.recv_timeout(CHECKPOINT_PAUSE)
                {
                    if !seen.swap(false, std::sync::atomic::Ordering::AcqRel) {
                        continue;
                    }
                    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                        tracing::warn!(error = %e, "WAL checkpoint failed");
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Checkpointer {
            dirty,
            _alive: alive,
        })
    }

    /// Something was committed: checkpoint within [`CHECKPOINT_PAUSE`].
    fn wake(&self) {
        self.dirty.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Runs each job in turn until the last [`Store`] handle is dropped. A job that panics
/// has its transaction rolled back (dropped while unwinding) and its caller sees
/// `WriterGone`; the writer goes on with the next job.
///
/// Two queues ([`Lane`]): a waiting quick job always goes first, so a short write waits
/// at most for the one job or index chunk in progress, however many bulk jobs wait.
///
/// Search indexing happens here, off the jobs' transactions (issue 15): when no job is
/// waiting, in chunks of [`INDEX_CHUNK_IDLE`]; while bulk jobs keep coming, once the
/// index has waited [`INDEX_LAG`] it catches up completely, in chunks of the same size
/// with quick jobs served between them, before the next bulk job. So the index never
/// falls further behind than `INDEX_LAG` plus one catch-up, and a bulk stream pays for
/// its own indexing. A commit is searchable at once when the writer is idle, and found
/// before that: `Reader::search` reads the unindexed tail. When no job comes for a
/// while, the writer also runs `PRAGMA optimize` ([`OPTIMIZE_EVERY`]).
fn writer_loop(conn: &mut Connection, rx: mpsc::Receiver<(Lane, Job)>, checkpoints: &Checkpointer) {
    let mut queues = Queues::default();
    let mut indexed_at = std::time::Instant::now();
    let mut optimized_at = std::time::Instant::now();
    // Messages may wait for the index; the index is catching up (serve no bulk job).
    let mut behind = true;
    let mut catching_up = false;
    loop {
        if !queues.take(&rx) {
            break;
        }
        let job = match queues.quick.pop_front() {
            Some(job) => Some(job),
            None if catching_up => None,
            None => queues.bulk.pop_front(),
        };
        let Some(job) = job else {
            if !behind {
                // Nothing to do: wait for the next job.
                if optimized_at.elapsed() >= OPTIMIZE_EVERY {
                    // Statistics for the planner as the store grows (SQLite's advice:
                    // now and then on a long-lived connection); cheap when nothing changed.
                    if let Err(e) = optimize(conn, "PRAGMA optimize") {
                        tracing::warn!(error = %e, "PRAGMA optimize failed");
                    }
                    optimized_at = std::time::Instant::now();
                }
                if !queues.wait(&rx) {
                    break;
                }
                continue;
            }
            match index_batch(conn, INDEX_CHUNK_IDLE) {
                Ok(more) => behind = more,
                Err(e) => {
                    let cause = std::error::Error::source(&e).map(ToString::to_string);
                    tracing::error!(error = %e, cause, "search indexing failed; retrying after the next write");
                    behind = false;
                }
            }
            catching_up &= behind;
            checkpoints.wake();
            indexed_at = std::time::Instant::now();
            continue;
        };
        if catch_unwind(AssertUnwindSafe(|| job(conn))).is_err() {
            tracing::error!("a store write panicked; its transaction was rolled back");
        }
        checkpoints.wake();
        // Anything the job wrote may need indexing: in a quiet moment, or now if the
        // index has waited long enough.
        behind = true;
        catching_up = catching_up || indexed_at.elapsed() >= INDEX_LAG;
    }
}

/// The writer's two queues of jobs taken from the channel.
#[derive(Default)]
struct Queues {
    quick: std::collections::VecDeque<Job>,
    bulk: std::collections::VecDeque<Job>,
}

impl Queues {
    fn push(&mut self, (lane, job): (Lane, Job)) {
        match lane {
            Lane::Quick => self.quick.push_back(job),
            Lane::Bulk => self.bulk.push_back(job),
        }
    }

    /// Takes every job waiting in the channel; false when the channel is closed and no
    /// job is left.
    fn take(&mut self, rx: &mpsc::Receiver<(Lane, Job)>) -> bool {
        loop {
            match rx.try_recv() {
                Ok(job) => self.push(job),
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return !(self.quick.is_empty() && self.bulk.is_empty());
                }
            }
        }
    }

    /// Blocks until a job comes; false when the channel is closed.
    fn wait(&mut self, rx: &mpsc::Receiver<(Lane, Job)>) -> bool {
        match rx.recv() {
            Ok(job) => {
                self.push(job);
                true
            }
            Err(_) => false,
        }
    }
}

/// Indexes up to `limit` messages past the watermark in one transaction; true if more
/// are waiting.
fn index_batch(conn: &mut Connection, limit: usize) -> Result<bool, StoreError> {
    let t = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut tx = Tx::new(&t);
    let more = tx.index_new_messages(limit)?;
    let more_words = tx.index_ticket_words(limit)?;
    let more = more || more_words;
    t.commit()?;
    Ok(more)
}

/// Runs `f` in one `BEGIN IMMEDIATE` transaction: committed when it returns `Ok`, rolled
/// back otherwise. Search indexing is not part of it (see [`writer_loop`]).
fn in_tx<T, E: From<StoreError>>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let t = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    let out = {
        let mut tx = Tx::new(&t);
        f(&mut tx)?
    };
    t.commit().map_err(StoreError::from)?;
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
