//! Ways mail comes in. Each hands raw bytes to `workflow` through the store's writer:
//! - [`imap`]: one task per configured mailbox (IDLE, else polling).
//!
//! - [`import`]: mbox files and Maildir folders (`postdesk import`).
//! - The MTA pipe (`postdesk deliver`) reads one message on stdin in `cli` and stores it
//!   through `Store::deliver`.

pub mod imap;
pub mod import;
