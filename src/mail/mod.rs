//! Incoming mail as data: bytes to [`parse::Parsed`], then who wrote it, then its subject.
//!
//! - [`parse`]: raw RFC 5322 bytes → `Parsed`, every charset decoded; `Unusable` only when
//!   nothing is usable.
//! - [`html_quote`]: the quote containers of an HTML reply removed (for
//!   `Parsed::reply_text`); HTML nesting flattened and tags stripped in one pass.
//! - [`authres`]: one `Authentication-Results` value (RFC 8601) → `AuthResults`; syntax
//!   only, comments and quoted strings read whole.
//! - [`classify`]: human, auto-reply, bounce, bulk or our own mail (loop protection).
//! - [`subject`]: our `[ACME #42]` tag, reply prefixes and ticket titles.
//! - [`headers`]: the header names we write and read back.
//!
//! Pure: no I/O, no clock, no store; every function returns a value for any input.

pub mod authres;
pub mod classify;
pub mod headers;
pub mod html_quote;
pub mod parse;
pub mod subject;
