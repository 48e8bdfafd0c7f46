//! Ways mail comes in. Each hands raw bytes to `workflow` through its [`Desk`]:
//! - [`imap`]: one task per configured mailbox (IDLE, else polling).
//! - [`deliver`]: the MTA pipe (`postdesk deliver`), one message on stdin.
//! - [`import`]: mbox files and Maildir folders (`postdesk import`).
//!
//! All three end in the same engine path; the Message-ID (or a content hash) makes a
//! second hand-over of the same message a no-op (invariant 1).
//!
//! [`Desk`]: crate::workflow::Desk

pub mod imap;
pub mod deliver;
pub mod import;
