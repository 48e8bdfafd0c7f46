//! A shutdown signal that every long-lived task holds (mini-redis style).
//!
//! Tasks check it only at safe points: between fetch batches, never around a store write,
//! so SIGTERM lets the batch in flight commit or roll back whole.

use tokio::sync::watch;

/// Sender side, held by `daemon::run`.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Receiver side; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown is requested (or the trigger is gone).
    pub async fn requested(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}
