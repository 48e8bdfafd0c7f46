//! An in-memory store for unit tests: the real schema, migrations and operations, on a
//! named in-memory SQLite database (shared cache), with no file and no writer thread.
//!
//! Each [`Memory`] is its own database; [`Memory::write`] runs a closure in one
//! transaction exactly as [`super::Store::write`] does on the writer thread, and
//! [`Memory::reader`] opens a read-only connection to the same database.

use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags};

use super::{in_tx, schema, Reader, StoreError, Tx};

/// A fresh, migrated in-memory database.
pub(crate) struct Memory {
    conn: Connection,
    uri: String,
}

impl Memory {
    pub(crate) fn new() -> Memory {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let uri = format!(
            "file:postdesk-test-{}-{}?mode=memory&cache=shared",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = Connection::open_with_flags(
            &uri,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("an in-memory database opens");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("pragma");
        schema::migrations()
            .to_latest(&mut conn)
            .expect("migrations apply to an empty database");
        Memory { conn, uri }
    }

    /// Runs `f` in one transaction: committed on `Ok`, rolled back otherwise.
    pub(crate) fn write<R, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        let out = in_tx(&mut self.conn, f)?;
        // As the writer does when it is idle: what was written is searchable at once.
        while super::index_batch(&mut self.conn, super::INDEX_BATCH)? {}
        Ok(out)
    }

    /// Like [`Memory::write`], but leaves the search index behind, as a busy writer
    /// does for up to `INDEX_LAG`.
    pub(crate) fn write_unindexed<R, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, E>,
    ) -> Result<R, E> {
        in_tx(&mut self.conn, f)
    }

    /// What the writer does when it is idle: indexes every message waiting.
    pub(crate) fn catch_up_index(&mut self) {
        while super::index_batch(&mut self.conn, super::INDEX_BATCH).expect("indexing") {}
    }

    /// The write connection (the query-plan test traces it).
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// A read-only connection to this database, as the CLI's views use.
    pub(crate) fn reader(&self) -> Reader {
        let conn = Connection::open_with_flags(
            &self.uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("a second connection to the in-memory database opens");
        Reader::from_connection(conn)
    }
}
