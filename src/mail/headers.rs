//! Names of the header fields postdesk writes for itself and reads back.
//!
//! Only names live here; `mail::parse` reads them, `notify` writes them (invariant 3: a
//! mail carrying our loop header is our own and is never answered).

/// Our loop header: mail carrying it is our own and is never answered (invariant 3).
pub const LOOP_HEADER: &str = "X-Postdesk-Loop";
