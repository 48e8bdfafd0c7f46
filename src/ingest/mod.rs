//! Ways mail comes in. Each hands raw bytes to `workflow` through its [`Desk`]:
//! - [`imap`]: one task per configured mailbox (IDLE, else polling).
//! - [`deliver`]: the MTA pipe (`postdesk deliver`), one message on stdin.
//! - [`import`]: mbox files and Maildir folders (`postdesk import`).
//!
//! All three end in the same engine path; the Message-ID (or a content hash) makes a
//! second hand-over of the same message a no-op (invariant 1).
//!
//! Each bounds what one message costs before the engine sees it (issue 12): over
//! `limits.max_message_bytes` only its start is read or fetched ([`bounded`], and
//! `imap`'s `RFC822.SIZE` check) and it goes to quarantine as it is; the others are
//! parsed and classified on the desk's pool under `limits.message_time_limit`.
//!
//! [`Desk`]: crate::workflow::Desk

pub mod imap;
pub mod bounded;
pub mod deliver;
pub mod import;

/// The quarantine reason of a message over `max_message_bytes` of which `kept` bytes are
/// held; `where_whole` says where the rest is.
fn too_large(size: u64, kept: usize, limits: &crate::limits::Limits, where_whole: &str) -> String {
    format!(
        "message of {size} bytes is larger than limits.max_message_bytes ({}): only its first \
         {kept} bytes are kept; {where_whole}",
        limits.max_message_bytes
    )
}
