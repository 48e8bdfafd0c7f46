//! Every bound on what one incoming message may cost (DESIGN.md invariant 6, issue 12).
//!
//! Pure data: the `[limits]` table of the configuration, with its defaults. Each stage
//! enforces the limits that concern it where the work happens (ingest before fetching,
//! `mail::parse` while parsing, `agent::commands` while reading command lines, the
//! workflow before writing events); past a limit the message is quarantined, truncated,
//! or the excess summarised, as the table in ARCHITECTURE.md ("Limits") says. Nothing a
//! customer controls is unbounded.

use std::time::Duration;

/// The bounds; `Limits::default()` is what a configuration without `[limits]` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Larger messages are not fetched whole: quarantined with their headers and a
    /// prefix (`quarantine_keep_bytes`), left on the IMAP server.
    pub max_message_bytes: usize,
    /// One IMAP fetch holds at most this many bytes (besides `batch_size` messages).
    pub fetch_batch_bytes: usize,
    /// How much of an over-limit message quarantine keeps (headers first).
    pub quarantine_keep_bytes: usize,
    /// Wall-clock time for parsing and classifying one message; past it the worker is
    /// abandoned and the message quarantined.
    pub message_time_limit: Duration,
    /// The header section of one message (all header lines together).
    pub max_header_bytes: usize,
    /// MIME nesting depth (multipart in multipart, attached messages).
    pub max_mime_depth: usize,
    /// MIME parts of one message.
    pub max_parts: usize,
    /// Distinct declared charsets tried when repairing a broken encoded word.
    pub max_charsets: usize,
    /// RFC 2047 encoded words decoded in one message's headers.
    pub max_encoded_words: usize,
    /// HTML element nesting given to the HTML-to-text converter; deeper markup is
    /// flattened first.
    pub max_html_depth: usize,
    /// `#` command lines acted on (or refused) in one mail; the rest are ignored, and
    /// one event says so.
    pub max_command_lines: usize,
    /// Words read from one command line (`#tag a b c …`).
    pub max_command_words: usize,
    /// People one mail may add to a ticket as participants (its To/Cc).
    pub max_people_per_message: usize,
    /// Refused and held events written for one message; beyond this, one summary event.
    pub max_events_per_message: usize,
    /// A customer's text relayed to agents; the rest is on the ticket (`ticket show`).
    pub max_relay_text_bytes: usize,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_message_bytes: 32 * MIB,
            fetch_batch_bytes: 16 * MIB,
            quarantine_keep_bytes: MIB,
            message_time_limit: Duration::from_secs(5),
            max_header_bytes: 512 * KIB,
            max_mime_depth: 32,
            max_parts: 1000,
            max_charsets: 16,
            max_encoded_words: 1000,
            max_html_depth: 256,
            max_command_lines: 50,
            max_command_words: 100,
            max_people_per_message: 50,
            max_events_per_message: 20,
            max_relay_text_bytes: 128 * KIB,
        }
    }
}
