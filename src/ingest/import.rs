//! Reading mail archives for `postdesk import`: an mbox file, or a Maildir folder (its
//! `cur/` and `new/`, in file-name order, which is delivery order for Maildir names).
//! The messages then take the same path as fetched ones ([`import`]: batches of 500, each
//! one transaction through `workflow::Desk::import`).

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::model::MailboxName;
use crate::store::StoreError;
use crate::workflow::{BatchOutcome, Desk};

/// Messages per transaction: one fsync per batch, as for IMAP.
const BATCH: usize = 500;

/// Stores `messages` as mail to `mailbox`, in batches; `notify = false` queues no mail.
/// `progress(done, total)` is called after each batch commits.
pub async fn import(
    desk: &Desk,
    mailbox: &MailboxName,
    messages: &[Vec<u8>],
    notify: bool,
    at: DateTime<Utc>,
    mut progress: impl FnMut(usize, usize),
) -> Result<BatchOutcome, StoreError> {
    let mut sum = BatchOutcome::default();
    let mut done = 0;
    for chunk in messages.chunks(BATCH) {
        let items: Vec<_> = chunk
            .iter()
            .map(|raw| (raw.clone(), desk.engine().prepare(raw)))
            .collect();
        let out = desk.import(mailbox.clone(), items, notify, at).await?;
        sum.add(&out);
        done += chunk.len();
        progress(done, messages.len());
    }
    Ok(sum)
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is neither an mbox file nor a Maildir folder (with cur/ and new/)")]
    Unknown(String),
}

/// Every message of the mbox file or Maildir folder at `path`, raw.
pub fn read(path: &Path) -> Result<Vec<Vec<u8>>, ImportError> {
    let err = |source| ImportError::Read {
        path: path.display().to_string(),
        source,
    };
    if path.is_dir() {
        if !path.join("cur").is_dir() && !path.join("new").is_dir() {
            return Err(ImportError::Unknown(path.display().to_string()));
        }
        let mut files = Vec::new();
        for sub in ["cur", "new"] {
            let dir = path.join(sub);
            if !dir.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&dir).map_err(err)? {
                let entry = entry.map_err(err)?;
                if entry.file_type().map_err(err)?.is_file() {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        return files
            .iter()
            .map(|f| std::fs::read(f).map_err(err))
            .collect();
    }
    let data = std::fs::read(path).map_err(err)?;
    Ok(split_mbox(&data))
}

/// Splits an mbox (mboxrd or mboxo): a message starts at a `From ` line at the start of
/// the file or after a blank line; `>From ` quoting inside bodies is undone one level.
pub fn split_mbox(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut prev_blank = true;
    for line in data.split_inclusive(|b| *b == b'\n') {
        if prev_blank && line.starts_with(b"From ") {
            if let Some(mut msg) = current.take() {
                // The blank line before `From ` belongs to the mbox, not the message.
                if msg.ends_with(b"\n\n") {
                    msg.pop();
                } else if msg.ends_with(b"\r\n\r\n") {
                    msg.truncate(msg.len() - 2);
                }
                out.push(msg);
            }
            current = Some(Vec::new());
            prev_blank = false;
            continue;
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        if let Some(msg) = current.as_mut() {
            let unquoted = line.strip_prefix(b">").filter(|rest| {
                let start = rest.iter().take_while(|b| **b == b'>').count();
                rest[start..].starts_with(b"From ")
            });
            msg.extend_from_slice(unquoted.unwrap_or(line));
        }
    }
    if let Some(msg) = current {
        out.push(msg);
    }
    out.retain(|m| !m.iter().all(u8::is_ascii_whitespace));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_splits_and_unquotes() {
        let mbox = b"From a@b Mon Jan 1 00:00:00 2026\nSubject: one\n\nbody\n>From here\n\nFrom c@d Mon Jan 1 00:00:01 2026\nSubject: two\n\nbody\nFrom in a paragraph is no separator\n";
        let msgs = split_mbox(mbox);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0], b"Subject: one\n\nbody\nFrom here\n");
        assert_eq!(
            msgs[1],
            b"Subject: two\n\nbody\nFrom in a paragraph is no separator\n"
        );
    }
}
