//! The outbox sender: delivers queued rows, retries temporary failures with backoff,
//! marks permanent ones with the server's answer (invariant 2: nothing is lost across
//! restarts, because every row is in the store before anyone tries to send it).
//! An acknowledgement still waiting `ack_max_age` after its message arrived (delayed by
//! the global breaker, the SMTP server down) is not sent late: the claim marks it
//! `failed` ("expired: …") with an `acknowledgement.expired` event on its ticket.
//!
//! Woken at once when a batch commits with new rows, so an acknowledgement leaves within
//! milliseconds of its ticket; otherwise it looks for due retries every second.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;

use super::smtp::SmtpPool;
use crate::clock::Clock;
use crate::config::Outbox as OutboxConfig;
use crate::shutdown::Shutdown;
use crate::store::{Delivery, DeliveryResult, OutboxItem, Store};

const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Rows claimed per SMTP connection in one round.
const CLAIM_PER_CONNECTION: usize = 2;
/// Results recorded in one transaction at most.
const MARKS_PER_WRITE: usize = 256;

/// Runs until shutdown; a send in flight is finished first, and every result is
/// recorded before it returns.
///
/// Results are recorded by a marker task of their own: it writes whatever has come in
/// since its last write in one transaction (issue 15: a transaction, and with it an
/// fsync, per sent mail held the sender to 50-80 mails a second during a burst and
/// filled the writer's quick lane). Sending does not wait for the marks, so the window
/// in which a crash can send a mail twice is the time from the server's `250` to the
/// next marker commit (normally one commit; a row still `sending` is sent again after a
/// restart).
pub async fn run(
    store: Store,
    pool: Arc<SmtpPool>,
    cfg: OutboxConfig,
    connections: usize,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    mut shutdown: Shutdown,
) {
    let (results, marks) = tokio::sync::mpsc::unbounded_channel::<Delivery>();
    let marker = tokio::spawn(record(store.clone(), marks));
    loop {
        if shutdown.is_requested() {
            break;
        }
        // Two rows a connection: a round ends soon, so that a row that comes meanwhile
        // (another mailbox's acknowledgement, during a burst) is claimed soon.
        let claimed = store
            .claim_outbox(
                connections * CLAIM_PER_CONNECTION,
                clock.now(),
                cfg.ack_max_age,
            )
            .await;
        let items = match claimed {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim outbox rows");
                Vec::new()
            }
        };
        if items.is_empty() {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(IDLE_CHECK) => {}
                () = shutdown.requested() => break,
            }
            continue;
        }
        futures::stream::iter(items)
            .for_each_concurrent(connections, |item| {
                let results = results.clone();
                let (pool, cfg, clock) = (&pool, &cfg, clock.as_ref());
                async move {
                    // The marker ends only after this loop: it is still listening.
                    let _ = results.send(deliver(pool, cfg, clock, item).await);
                }
            })
            .await;
    }
    drop(results);
    if marker.await.is_err() {
        tracing::error!("the outbox marker ended abnormally");
    }
}

/// Writes the results of sends as they come, each write holding every result that
/// arrived meanwhile; ends when the sender drops its end and all is written.
async fn record(store: Store, mut marks: tokio::sync::mpsc::UnboundedReceiver<Delivery>) {
    let mut batch = Vec::new();
    while marks.recv_many(&mut batch, MARKS_PER_WRITE).await > 0 {
        let n = batch.len();
        if let Err(e) = store.record_deliveries(std::mem::take(&mut batch)).await {
            tracing::error!(error = %e, results = n, "cannot record delivery results");
        }
    }
}

/// Sends one claimed row; what became of it, to record.
#[tracing::instrument(name = "outbox", skip_all, fields(id = item.id.get(), ticket = item.ticket.map(|t| t.get())))]
async fn deliver(
    pool: &SmtpPool,
    cfg: &OutboxConfig,
    clock: &dyn Clock,
    item: OutboxItem,
) -> Delivery {
    let result = pool.send(&item.mail_from, &item.rcpt, &item.raw).await;
    let now = clock.now();
    let result = match result {
        Ok(response) => {
            tracing::debug!(%response, "sent");
            DeliveryResult::Sent { response }
        }
        Err(e) if e.is_permanent() => {
            tracing::warn!(error = %e, "refused for good");
            DeliveryResult::Failed {
                error: e.to_string(),
            }
        }
        Err(e) => {
            let age = now
                .signed_duration_since(item.created_at)
                .to_std()
                .unwrap_or_default();
            if age >= cfg.give_up_after {
                tracing::warn!(error = %e, "giving up after {:?}", cfg.give_up_after);
                DeliveryResult::Failed {
                    error: format!("gave up after {} attempts: {e}", item.attempts + 1),
                }
            } else {
                let delay = backoff(cfg, item.attempts);
                tracing::info!(error = %e, retry_in = ?delay, "temporary failure");
                DeliveryResult::Retry {
                    next_at: now + chrono::Duration::from_std(delay).unwrap_or_default(),
                    error: e.to_string(),
                }
            }
        }
    };
    Delivery {
        id: item.id,
        at: now,
        result,
    }
}

/// Claims what is due now and sends it once, without waiting for retries: for
/// short-lived processes (`postdesk deliver`) that should not leave their
/// acknowledgement to the daemon's next look at the outbox.
pub async fn send_due_now(
    store: &Store,
    pool: &SmtpPool,
    cfg: &OutboxConfig,
    clock: &dyn Clock,
    limit: usize,
) -> usize {
    let items = match store
        .claim_outbox(limit, clock.now(), cfg.ack_max_age)
        .await
    {
        Ok(items) => items,
        Err(e) => {
            tracing::warn!(error = %e, "cannot claim outbox rows");
            return 0;
        }
    };
    let n = items.len();
    let mut results = Vec::with_capacity(n);
    for item in items {
        results.push(deliver(pool, cfg, clock, item).await);
    }
    if let Err(e) = store.record_deliveries(results).await {
        tracing::error!(error = %e, "cannot record delivery results");
    }
    n
}

/// `retry_initial` doubled per attempt, capped at `retry_max`.
pub fn backoff(cfg: &OutboxConfig, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
    cfg.retry_initial.saturating_mul(factor).min(cfg.retry_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let cfg = OutboxConfig {
            retry_initial: Duration::from_secs(30),
            retry_max: Duration::from_secs(600),
            give_up_after: Duration::from_secs(86_400),
            warn_after: Duration::from_secs(600),
            ack_max_age: Duration::from_secs(86_400),
        };
        let got: Vec<u64> = (1..=7).map(|a| backoff(&cfg, a).as_secs()).collect();
        assert_eq!(got, [30, 60, 120, 240, 480, 600, 600]);
    }
}
