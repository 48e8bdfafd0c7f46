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
        in_tx(&mut self.conn, f)
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
