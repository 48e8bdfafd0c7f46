//! `postdesk run`: starts the store writer, the outbox sender, the scheduler, the mailbox
//! health check and one task per mailbox, and stops them all when `shutdown` completes.
//!
//! Tests and `main` stop it the same way: by completing the future they pass in. Each
//! task finishes its batch in flight first (SIGTERM loses nothing).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{oneshot, Notify};
use tokio::task::JoinSet;

use crate::clock::Clock;
use crate::config::Config;
use crate::ingest::imap;
use crate::notify::{outbox, smtp::SmtpPool};
use crate::shutdown;
use crate::store::{Store, StoreError};
use crate::workflow::{Desk, Engine, EngineError};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Default)]
pub struct Options {
    /// Queue outgoing mail but do not send it (maintenance, benchmarks of ingest alone).
    pub hold_outbox: bool,
    /// Told once every mailbox has finished its first catch-up.
    pub ready: Option<oneshot::Sender<()>>,
}

/// Runs the scheduled jobs as they fall due. It looks once a second, by the engine's
/// clock, so that a test clock moved forward by days is noticed within a second.
async fn scheduler(
    desk: Desk,
    clock: Arc<dyn Clock>,
    mut shutdown: crate::shutdown::Shutdown,
    heartbeat: crate::service::Heartbeat,
) {
    loop {
        let result = desk.run_due_jobs(clock.now()).await;
        // Through the store writer: a stuck writer stops the watchdog pings too.
        heartbeat.beat();
        match result {
            Ok(ran) => {
                for (job, at) in ran {
                    tracing::info!(job = job.as_str(), occurrence = %at, "job ran");
                    if job == crate::schedule::Job::TriageTrain {
                        train_triage(&desk, clock.now());
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "scheduled jobs failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = shutdown.requested() => return,
        }
    }
}

/// Retrains the triage model on a blocking thread (issue 16): it reads the history
/// through its own read connection and never holds the writer; the engine picks the new
/// file up on its next prediction. A failure (too little history) is logged.
fn train_triage(desk: &Desk, now: chrono::DateTime<chrono::Utc>) {
    let cfg = desk.engine().config().clone();
    let store = desk.store().clone();
    tokio::task::spawn_blocking(move || {
        let trained = store
            .reader()
            .map_err(crate::triage::TriageError::from)
            .and_then(|r| crate::triage::train(&r, &cfg, now));
        match trained {
            Ok(t) => tracing::info!(
                tickets = t.tickets,
                took_ms = t.took.as_millis() as u64,
                bytes = t.bytes,
                "triage model trained"
            ),
            Err(e) => tracing::warn!(error = %e, "triage training failed"),
        }
    });
}

/// Checks the mailboxes' health once a second, by the engine's clock (and once at
/// start): opens and closes their alarms and queues the one mail for each
/// (`workflow::health`). A round is one small write; it never waits on a mailbox.
async fn health(
    desk: Desk,
    tokens: crate::oauth::Tokens,
    clock: Arc<dyn Clock>,
    outbox_wake: Arc<Notify>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    let started_at = clock.now();
    loop {
        match desk.check_mailboxes(&tokens, started_at, clock.now()).await {
            Ok(changes) if !changes.is_empty() => outbox_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "mailbox health check failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            () = shutdown.requested() => return,
        }
    }
}

/// Rewrites the metrics file every minute (and once at start).
async fn metrics_writer(
    store: Store,
    path: std::path::PathBuf,
    stats: Arc<crate::metrics::Stats>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    loop {
        let (store, path2, stats2) = (store.clone(), path.clone(), stats.clone());
        let written = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let report = store
                .reader()
                .and_then(|r| r.status(&[]))
                .map_err(|e| e.to_string())?;
            crate::metrics::write(&path2, &crate::metrics::render(&report, &stats2))
                .map_err(|e| e.to_string())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, path = %path.display(), "cannot write the metrics file")
            }
            Err(e) => tracing::warn!(error = %e, "metrics task failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
            () = shutdown.requested() => return,
        }
    }
}

pub async fn run(
    cfg: Config,
    opts: Options,
    clock: Arc<dyn Clock>,
    shutdown_signal: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let engine = Arc::new(Engine::new(&cfg, clock.clone())?);
    let store = Store::open(&cfg.db_path())?;
    let desk = Desk::new(store.clone(), engine);
    let (trigger, shutdown) = shutdown::channel();
    let wake = Arc::new(Notify::new());
    let mut tasks = JoinSet::new();
    let tokens = crate::oauth::Tokens::for_config(&cfg);

    if opts.hold_outbox {
        tracing::warn!("outbox held: mail is queued but not sent");
    } else {
        let shared = match &cfg.smtp.auth {
            crate::config::SmtpAuth::OAuth2 { mailbox, .. } => tokens.get(mailbox),
            _ => None,
        };
        let pool = Arc::new(SmtpPool::with_tokens(cfg.smtp.clone(), shared));
        let warm = pool.clone();
        tasks.spawn(async move {
            // A warm connection saves the first acknowledgement a TCP and EHLO round trip.
            if let Err(e) = warm.warm_up().await {
                tracing::warn!(error = %e, "SMTP not reachable yet; mail waits in the outbox");
            }
        });
        tasks.spawn(outbox::run(
            store.clone(),
            pool,
            cfg.outbox.clone(),
            cfg.smtp.connections,
            clock.clone(),
            wake.clone(),
            shutdown.clone(),
        ));
    }

    let heartbeat = crate::service::Heartbeat::new();
    tasks.spawn(scheduler(
        desk.clone(),
        clock.clone(),
        shutdown.clone(),
        heartbeat.clone(),
    ));
    tasks.spawn(crate::service::watchdog(shutdown.clone(), move || {
        heartbeat.age() < std::time::Duration::from_secs(15)
    }));

    tasks.spawn(health(
        desk.clone(),
        tokens.clone(),
        clock.clone(),
        wake.clone(),
        shutdown.clone(),
    ));

    let stats = Arc::new(crate::metrics::Stats::default());
    if let Some(path) = cfg.metrics_file.clone() {
        tasks.spawn(metrics_writer(
            store.clone(),
            path,
            stats.clone(),
            shutdown.clone(),
        ));
    }
    let ctx = imap::Context {
        desk: desk.clone(),
        outbox_wake: wake,
        stats,
        tokens: tokens.clone(),
        round_every: imap::Context::round_for(cfg.alerts.alert_after),
    };
    let mut first_syncs = Vec::new();
    for mb in &cfg.mailboxes {
        let (tx, rx) = oneshot::channel();
        first_syncs.push(rx);
        tasks.spawn(imap::watch(
            mb.clone(),
            ctx.clone(),
            shutdown.clone(),
            Some(tx),
        ));
    }
    let ready = opts.ready;
    let ready_shutdown = shutdown.clone();
    let mailboxes = cfg.mailboxes.len();
    tasks.spawn(async move {
        for rx in first_syncs {
            let _ = rx.await;
        }
        // A mailbox task that ended (shutdown) also drops its sender: not a sync.
        if ready_shutdown.is_requested() {
            return;
        }
        tracing::info!("ready: every mailbox has caught up");
        crate::service::notify_ready();
        crate::service::notify_status(&format!("{mailboxes} mailboxes caught up"));
        if let Some(tx) = ready {
            let _ = tx.send(());
        }
    });
    tracing::info!(mailboxes = cfg.mailboxes.len(), "postdesk running");

    shutdown_signal.await;
    tracing::info!("shutting down: finishing batches in flight");
    trigger.trigger();
    // The readiness task ends with the mailbox tasks: their senders drop when they stop.
    let drain = async {
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                if e.is_panic() {
                    tracing::error!(error = %e, "task panicked");
                }
            }
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(60), drain)
        .await
        .is_err()
    {
        tracing::warn!("tasks still running after 60 s; stopping anyway");
    }
    tracing::info!("stopped");
    Ok(())
}
