//! Ways mail comes in. Each hands raw bytes to `workflow` through the store's writer:
//! - [`imap`]: one task per configured mailbox (IDLE, else polling).
//!
//! (Issue 6 adds the MTA pipe `deliver` and `import` of mbox and Maildir here.)

pub mod imap;
