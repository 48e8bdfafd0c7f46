//! Reading one message with bounded memory (issue 12), for `postdesk deliver` (stdin) and
//! `postdesk import` (Maildir files, mbox archives).
//!
//! In: a byte source and the `[limits]`. Out: a [`Handed`] message: whole when it is at
//! most `max_message_bytes`, else only its start ([`keep_len`]: the headers, up to
//! `max_header_bytes`, and at least `quarantine_keep_bytes`), with the real size and the
//! SHA-256 of the whole (the rest is read through, hashed and dropped, so that an MTA
//! never sees a broken pipe).
//! - At most `max_message_bytes + 1` bytes of a message are held while reading it.
//! - IMAP cuts the same way ([`keep_len`]) but from the server's `RFC822.SIZE`, without
//!   reading the rest (see `ingest::imap`).

use std::io::{self, BufRead, Read};

use sha2::{Digest, Sha256};

use crate::limits::Limits;
use crate::store::{HashOf, Truncated};

/// One message as read from a pipe or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handed {
    /// The whole message, or its start when `truncated` is `Some`.
    pub raw: Vec<u8>,
    pub truncated: Option<Truncated>,
}

/// How much of an over-limit message quarantine keeps, given its first bytes `start`:
/// at least [`prefix_bytes`], and the whole header section when it ends within
/// [`header_bytes`] (else that much of it).
pub fn keep_len(start: &[u8], limits: &Limits) -> usize {
    let keep = prefix_bytes(limits);
    let bound = header_bytes(limits).min(start.len());
    match header_end(&start[..bound]) {
        Some(end) => end.max(keep).min(start.len()),
        None => bound,
    }
}

/// The prefix quarantine keeps: `quarantine_keep_bytes`, never more than
/// `max_message_bytes` (a message that small would have been processed).
pub fn prefix_bytes(limits: &Limits) -> usize {
    limits.quarantine_keep_bytes.min(limits.max_message_bytes)
}

/// How much of the header section quarantine may keep: `max_header_bytes` if that is
/// more than the prefix, within `max_message_bytes`.
pub fn header_bytes(limits: &Limits) -> usize {
    prefix_bytes(limits)
        .max(limits.max_header_bytes)
        .min(limits.max_message_bytes)
}

/// Just past the blank line that ends the header section, if `bytes` holds it.
fn header_end(bytes: &[u8]) -> Option<usize> {
    let mut at_line_start = true;
    for (i, b) in bytes.iter().enumerate() {
        if at_line_start {
            if *b == b'\n' {
                return Some(i + 1);
            }
            if *b == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
        }
        at_line_start = *b == b'\n';
    }
    None
}

/// One message, growing piece by piece: held whole up to the limit, then only counted
/// and hashed.
struct Growing<'l> {
    limits: &'l Limits,
    held: Vec<u8>,
    size: u64,
    /// Set once the message is over the limit: hashes everything, held bytes first.
    hasher: Option<Sha256>,
}

impl<'l> Growing<'l> {
    fn new(limits: &'l Limits) -> Growing<'l> {
        Growing {
            limits,
            held: Vec::new(),
            size: 0,
            hasher: None,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if let Some(h) = self.hasher.as_mut() {
            h.update(bytes);
        } else if self.held.len() + bytes.len() > self.limits.max_message_bytes {
            let mut h = Sha256::new();
            h.update(&self.held);
            h.update(bytes);
            // Keep the cut's bytes (for `keep_len`) and no more.
            let room = (self.limits.max_message_bytes + 1).saturating_sub(self.held.len());
            self.held.extend_from_slice(&bytes[..room.min(bytes.len())]);
            self.hasher = Some(h);
        } else {
            self.held.extend_from_slice(bytes);
        }
    }

    fn finish(self) -> Handed {
        match self.hasher {
            None => Handed {
                raw: self.held,
                truncated: None,
            },
            Some(h) => {
                let mut raw = self.held;
                raw.truncate(keep_len(&raw, self.limits));
                raw.shrink_to_fit();
                Handed {
                    raw,
                    truncated: Some(Truncated {
                        size: self.size,
                        sha256: h.finalize().into(),
                        hash_of: HashOf::Whole,
                    }),
                }
            }
        }
    }
}

/// Reads one whole message from `r` (stdin, a Maildir file).
pub fn read_message(mut r: impl Read, limits: &Limits) -> io::Result<Handed> {
    let mut m = Growing::new(limits);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        m.push(&buf[..n]);
    }
    Ok(m.finish())
}

/// Lines longer than this are read in pieces (enough of a line's start to tell a `From `
/// separator or a `>From ` quote).
const PIECE: u64 = 64 * 1024;

/// Splits an mbox (mboxrd or mboxo) read from `r`, each message bounded as in
/// [`read_message`]: a message starts at a `From ` line at the start of the input or
/// after a blank line; `>From ` quoting inside bodies is undone one level.
pub fn split_mbox(mut r: impl BufRead, limits: &Limits) -> io::Result<Vec<Handed>> {
    let mut out = Vec::new();
    let mut current: Option<Growing<'_>> = None;
    // A blank line is held back: before a `From ` line it belongs to the mbox.
    let mut blank: Option<Vec<u8>> = None;
    let mut prev_blank = true;
    let mut at_line_start = true;
    let mut in_separator = false;
    let mut piece = Vec::new();
    loop {
        piece.clear();
        (&mut r).take(PIECE).read_until(b'\n', &mut piece)?;
        if piece.is_empty() {
            break;
        }
        let starts_line = at_line_start;
        at_line_start = piece.ends_with(b"\n");
        if !starts_line {
            // The rest of a long line.
            if !in_separator {
                if let Some(m) = current.as_mut() {
                    m.push(&piece);
                }
            }
            continue;
        }
        if prev_blank && piece.starts_with(b"From ") {
            if let Some(m) = current.take() {
                out.push(m.finish());
            }
            blank = None;
            current = Some(Growing::new(limits));
            prev_blank = false;
            in_separator = true;
            continue;
        }
        in_separator = false;
        let is_blank = piece == b"\n" || piece == b"\r\n";
        if let Some(m) = current.as_mut() {
            if let Some(b) = blank.take() {
                m.push(&b);
            }
            if is_blank {
                blank = Some(piece.clone());
            } else {
                let unquoted = piece.strip_prefix(b">").filter(|rest| {
                    let start = rest.iter().take_while(|b| **b == b'>').count();
                    rest[start..].starts_with(b"From ")
                });
                m.push(unquoted.unwrap_or(&piece));
            }
        }
        prev_blank = is_blank;
    }
    if let Some(mut m) = current {
        if let Some(b) = blank.take() {
            m.push(&b);
        }
        out.push(m.finish());
    }
    out.retain(|m| m.truncated.is_some() || !m.raw.iter().all(u8::is_ascii_whitespace));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, keep: usize) -> Limits {
        Limits {
            max_message_bytes: max,
            quarantine_keep_bytes: keep,
            max_header_bytes: 64,
            ..Limits::default()
        }
    }

    #[test]
    fn a_message_within_the_limit_is_read_whole() {
        let raw = b"Subject: hi\r\n\r\nbody\r\n".to_vec();
        let got = read_message(&raw[..], &limits(raw.len(), 4)).unwrap();
        assert_eq!(got.raw, raw);
        assert_eq!(got.truncated, None);
    }

    #[test]
    fn an_over_limit_message_keeps_its_headers_and_a_prefix_with_size_and_hash() {
        let raw = format!("Subject: big\r\nFrom: a@b\r\n\r\n{}", "x".repeat(1000)).into_bytes();
        // The header (27 bytes) is longer than the 10 bytes to keep: all of it is kept.
        let got = read_message(&raw[..], &limits(100, 10)).unwrap();
        assert_eq!(got.raw, b"Subject: big\r\nFrom: a@b\r\n\r\n");
        let t = got.truncated.expect("truncated");
        assert_eq!(t.size, raw.len() as u64);
        assert_eq!(t.hash_of, HashOf::Whole);
        assert_eq!(t.sha256, <[u8; 32]>::from(Sha256::digest(&raw)));
        // A larger keep keeps that many bytes.
        let got = read_message(&raw[..], &limits(100, 50)).unwrap();
        assert_eq!(got.raw, raw[..50]);
    }

    #[test]
    fn a_header_longer_than_every_bound_is_kept_up_to_the_larger_bound() {
        let raw = format!("Subject: {}\r\n\r\nbody", "y".repeat(500)).into_bytes();
        let got = read_message(&raw[..], &limits(100, 10)).unwrap();
        assert_eq!(got.raw, raw[..64], "max_header_bytes is 64");
    }

    #[test]
    fn mbox_splits_and_unquotes() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2026\nSubject: one\n\nbody\n>From here\n\nFrom c@d Mon Jan 1 00:00:01 2026\nSubject: two\n\nbody\nFrom in a paragraph is no separator\n";
        let msgs = split_mbox(&mbox[..], &Limits::default()).unwrap();
        let raws: Vec<_> = msgs.iter().map(|m| m.raw.as_slice()).collect();
        assert_eq!(
            raws,
            [
                &b"Subject: one\n\nbody\nFrom here\n"[..],
                &b"Subject: two\n\nbody\nFrom in a paragraph is no separator\n"[..],
            ]
        );
    }

    #[test]
    fn mbox_bounds_each_message_and_reads_long_lines_in_pieces() {
        let long = "z".repeat(200_000);
        let big = format!("Subject: big\n\n{long}\n");
        let mbox = format!(
            "From a@b Mon Jan 1 00:00:00 2026\n{big}\nFrom c@d Mon Jan 1 00:00:01 2026\nSubject: small\n\nok\n"
        );
        let msgs = split_mbox(mbox.as_bytes(), &limits(1000, 100)).unwrap();
        assert_eq!(msgs.len(), 2);
        let t = msgs[0].truncated.as_ref().expect("the big one is cut");
        assert_eq!(t.size, big.len() as u64);
        assert_eq!(t.sha256, <[u8; 32]>::from(Sha256::digest(big.as_bytes())));
        assert_eq!(msgs[0].raw, big.as_bytes()[..100]);
        assert_eq!(msgs[1].raw, b"Subject: small\n\nok\n");
        assert_eq!(msgs[1].truncated, None);
    }
}
