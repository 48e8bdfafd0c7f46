//! Reading mail archives for `postdesk import`: an mbox file, one message (a file that does
//! not start with an mbox "From " line, such as an `.eml`), or a Maildir folder (its
//! `cur/` and `new/`, in file-name order, which is delivery order for Maildir names).
//! Each message is read with bounded memory (`ingest::bounded`: over
//! `limits.max_message_bytes` only its start is kept, and it goes to quarantine; the
//! whole stays in the archive). The messages then take the same path as fetched ones
//! ([`import`]: batches of 500, prepared on the desk's pool, each batch one transaction
//! through `workflow::Desk::import`).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::bounded::{self, Handed};
use crate::limits::Limits;
use crate::model::MailboxName;
use crate::store::StoreError;
use crate::workflow::{BatchOutcome, Cost, Desk, Ready};

/// Messages per transaction: one fsync per batch, as for IMAP.
const BATCH: usize = 500;

/// Stores `messages` (read from `source`) as mail to `mailbox`, in batches; `notify =
/// false` queues no mail. `progress(done, total)` is called after each batch commits.
pub async fn import(
    desk: &Desk,
    mailbox: &MailboxName,
    messages: Vec<Handed>,
    source: &Path,
    notify: bool,
    at: DateTime<Utc>,
    mut progress: impl FnMut(usize, usize),
) -> Result<BatchOutcome, StoreError> {
    let mut sum = BatchOutcome::default();
    let total = messages.len();
    let mut done = 0;
    let mut rest = messages.into_iter().peekable();
    while rest.peek().is_some() {
        let chunk: Vec<Handed> = rest.by_ref().take(BATCH).collect();
        let n = chunk.len();
        let items = prepare(
            desk,
            chunk,
            &format!("the whole message is in {}", source.display()),
            Purpose::History,
        )
        .await;
        let out = desk.import(mailbox.clone(), items, notify, at).await?;
        sum.add(&out);
        done += n;
        progress(done, total);
    }
    Ok(sum)
}

/// What handed-over messages are: new mail (`deliver`: similar tickets are looked up for
/// its relays) or history (`import`: not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    Live,
    History,
}

/// Prepares whole messages on the desk's pool; a cut one goes to quarantine as it is,
/// with the reason (`where_whole` tells the operator where the rest is). Same order.
pub(super) async fn prepare(
    desk: &Desk,
    messages: Vec<Handed>,
    where_whole: &str,
    purpose: Purpose,
) -> Vec<Ready> {
    let limits = desk.engine().limits().clone();
    let (whole, cut): (Vec<_>, Vec<_>) = messages
        .into_iter()
        .enumerate()
        .partition(|(_, m)| m.truncated.is_none());
    let order: Vec<usize> = whole.iter().map(|(i, _)| *i).collect();
    let raws = whole.into_iter().map(|(_, m)| m.raw).collect();
    let prepared = match purpose {
        Purpose::Live => desk.prepare(raws).await,
        Purpose::History => desk.prepare_history(raws).await,
    };
    let mut out: Vec<(usize, Ready)> = order.into_iter().zip(prepared).collect();
    out.extend(cut.into_iter().map(|(i, m)| {
        let truncated = m.truncated.expect("partitioned on truncated");
        (
            i,
            Ready {
                prepared: Err(super::too_large(
                    truncated.size,
                    m.raw.len(),
                    &limits,
                    where_whole,
                )),
                raw: m.raw,
                cost: Cost {
                    took: std::time::Duration::ZERO,
                    truncated: Some(truncated),
                },
            },
        )
    }));
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
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

/// Every message of the mbox file or Maildir folder at `path`, each bounded by `limits`.
pub fn read(path: &Path, limits: &Limits) -> Result<Vec<Handed>, ImportError> {
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
            .map(|f| {
                let file = std::fs::File::open(f).map_err(err)?;
                bounded::read_message(file, limits).map_err(err)
            })
            .collect();
    }
    let file = std::fs::File::open(path).map_err(err)?;
    let mut reader = std::io::BufReader::new(file);
    // An mbox starts with a "From " line; any other file is one message (an .eml).
    let head = std::io::BufRead::fill_buf(&mut reader).map_err(err)?;
    if head.starts_with(b"From ") {
        bounded::split_mbox(reader, limits).map_err(err)
    } else if head.is_empty() {
        Ok(Vec::new())
    } else {
        Ok(vec![bounded::read_message(reader, limits).map_err(err)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_an_mbox_when_it_starts_with_from_and_one_message_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let mail = "From: ann@customer.test\nSubject: Hi\n\nFrom the start.\n";
        let eml = dir.path().join("one.eml");
        std::fs::write(&eml, mail).unwrap();
        let one = read(&eml, &Limits::default()).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].raw, mail.as_bytes());
        let mbox = dir.path().join("two.mbox");
        std::fs::write(
            &mbox,
            format!("From a@x Wed Nov 25 10:00:00 2026\n{mail}\nFrom b@x Wed Nov 25 10:00:00 2026\n{mail}"),
        )
        .unwrap();
        assert_eq!(read(&mbox, &Limits::default()).unwrap().len(), 2);
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "").unwrap();
        assert!(read(&empty, &Limits::default()).unwrap().is_empty());
    }
}
