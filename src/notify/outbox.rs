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
use crate::store::{OutboxItem, Store};

const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Rows claimed per SMTP connection in one round.
const CLAIM_PER_CONNECTION: usize = 2;

/// Runs until shutdown; a send in flight is finished first.
pub async fn run(
    store: Store,
    pool: Arc<SmtpPool>,
    cfg: OutboxConfig,
    connections: usize,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    mut shutdown: Shutdown,
) {
    loop {
        if shutdown.is_requested() {
            return;
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
                () = shutdown.requested() => return,
            }
            continue;
        }
        futures::stream::iter(items)
            .for_each_concurrent(connections, |item| {
                deliver(&store, &pool, &cfg, clock.as_ref(), item)
            })
            .await;
    }
}

#[tracing::instrument(name = "outbox", skip_all, fields(id = item.id.get(), ticket = item.ticket.map(|t| t.get())))]
async fn deliver(
    store: &Store,
    pool: &SmtpPool,
    cfg: &OutboxConfig,
    clock: &dyn Clock,
    item: OutboxItem,
) {
    let result = pool.send(&item.mail_from, &item.rcpt, &item.raw).await;
    let now = clock.now();
    let recorded = match result {
        Ok(response) => {
            tracing::debug!(%response, "sent");
            store.mark_sent(item.id, now, response).await
        }
        Err(e) if e.is_permanent() => {
            tracing::warn!(error = %e, "refused for good");
            store.mark_failed(item.id, now, e.to_string()).await
        }
        Err(e) => {
            let age = now
                .signed_duration_since(item.created_at)
                .to_std()
                .unwrap_or_default();
            if age >= cfg.give_up_after {
                tracing::warn!(error = %e, "giving up after {:?}", cfg.give_up_after);
                store
                    .mark_failed(
                        item.id,
                        now,
                        format!("gave up after {} attempts: {e}", item.attempts + 1),
                    )
                    .await
            } else {
                let delay = backoff(cfg, item.attempts);
                tracing::info!(error = %e, retry_in = ?delay, "temporary failure");
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                store.mark_retry(item.id, next, e.to_string()).await
            }
        }
    };
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record delivery result");
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
    for item in items {
        deliver(store, pool, cfg, clock, item).await;
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
