//! The MTA pipe (`postdesk deliver`): one message on stdin, stored before we answer.
//!
//! In: the raw bytes the MTA hands over and the mailbox they came to. Out: where the
//! message went ([`Delivered`]), after its transaction committed.
//! - Any failure before the commit is temporary for the MTA (the CLI exits 75,
//!   EX_TEMPFAIL, as RT's gateway does), so the MTA keeps the message and retries.
//! - Never creates a store or an instance key: a missing database is a mount or set-up
//!   problem, and a message signed with a fresh key would never thread.
//! - After the commit, the mail this message queued (its acknowledgement) is sent at once,
//!   within the SMTP timeout; what is not sent waits in the outbox for the daemon.
//! - Bounded (issue 12): the CLI reads stdin with `ingest::bounded::read_message`, so a
//!   message over `limits.max_message_bytes` arrives here cut; it is quarantined with its
//!   headers, a prefix, its size and the SHA-256 of the whole, and the answer is success
//!   (the MTA drops its copy: set the MTA's own size limit, e.g. Postfix's
//!   `message_size_limit`, at or below `max_message_bytes` to have it refused instead).
//!   The others are parsed on the desk's pool under `limits.message_time_limit`.

use std::path::PathBuf;
use std::sync::Arc;

use super::bounded::Handed;
use crate::clock::Clock;
use crate::config::Config;
use crate::notify::{outbox, smtp::SmtpPool};
use crate::store::{Store, StoreError};
use crate::workflow::{Delivered, Desk, Engine, EngineError};

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("no [[mailbox]] named {0:?} in the configuration")]
    NoMailbox(String),
    #[error(
        "database {} not found (is the data directory there, and has `postdesk run` started once?)",
        .0.display()
    )]
    NoStore(PathBuf),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot store the message")]
    Store(#[from] StoreError),
}

/// Stores `message` as a message to `mailbox`, then sends what it queued.
pub async fn deliver(
    cfg: &Config,
    mailbox: &str,
    message: Handed,
    clock: Arc<dyn Clock>,
) -> Result<Delivered, DeliverError> {
    let mb = cfg
        .mailbox(mailbox)
        .ok_or_else(|| DeliverError::NoMailbox(mailbox.to_owned()))?;
    // Check the store first: building the engine would create a missing instance key.
    if !cfg.db_path().exists() {
        return Err(DeliverError::NoStore(cfg.db_path()));
    }
    let engine = Arc::new(Engine::new(cfg, clock.clone())?);
    let desk = Desk::new(Store::open_existing(&cfg.db_path())?, engine);
    let ready = super::import::prepare(
        &desk,
        vec![message],
        "the rest was not kept (it came on stdin from the MTA)",
        super::import::Purpose::Live,
    )
    .await
    .pop()
    .expect("one message in, one out");
    let outcome = desk.deliver(mb.name.clone(), ready, clock.now()).await?;
    tracing::info!(mailbox, ?outcome, "delivered");
    // Stored: from here on the answer is success whatever happens. Send what this
    // message queued now rather than leaving it to the daemon's next look at the outbox.
    let pool = SmtpPool::new(cfg.smtp.clone());
    let send = outbox::send_due_now(desk.store(), &pool, &cfg.outbox, clock.as_ref(), 16);
    if tokio::time::timeout(cfg.smtp.timeout, send).await.is_err() {
        tracing::warn!("sending timed out; the daemon retries from the outbox");
    }
    Ok(outcome)
}
