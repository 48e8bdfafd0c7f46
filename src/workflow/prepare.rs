//! Parsing and classifying under a wall-clock limit, on a bounded pool of worker threads
//! (issue 12: a message that takes too long is quarantined, its mailbox goes on).
//!
//! In: jobs (closures; [`super::Desk::prepare`] submits `Engine::prepare` of one raw
//! message each). Out: for each, its value and how long it ran, or why there is none.
//! - At most `size` jobs run at once; the rest wait in one FIFO queue. Threads start on
//!   the first job, not before.
//! - The limit counts from the moment a worker starts the job, not from the submission:
//!   a long queue never makes a quick message late.
//! - A job still running at its deadline is abandoned: the caller gets [`Ran::Late`] and
//!   stops waiting; the worker thread (which cannot be stopped from outside) is detached
//!   and a replacement starts, so the queue keeps moving. When an abandoned worker does
//!   finish, it rejoins the pool if the pool is short of workers, else it ends.
//! - At most `max_abandoned` threads are abandoned at once: past that no replacement
//!   starts, and once no live worker is left the waiting jobs are answered
//!   [`Ran::Stalled`] instead of waiting for ever (the caller quarantines them; nothing
//!   is lost, `quarantine retry` processes them later).
//! - A panicking job is [`Ran::Panicked`]; the worker goes on.
//!
//! Waiting is async (`tokio` timers and oneshot channels), so a caller never ties up a
//! runtime thread while a job runs.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// What became of one job.
#[derive(Debug, PartialEq, Eq)]
pub enum Ran<T> {
    /// It finished within the limit: its value and how long it ran.
    Done(T, Duration),
    /// Still running at the limit: abandoned.
    Late,
    /// It panicked.
    Panicked,
    /// Never started: every worker is abandoned (this many), none is left to run it.
    Stalled(usize),
}

/// The pool; share it with an `Arc`.
pub struct Pool {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    /// Workers that may run jobs at once.
    size: usize,
    /// Abandoned threads (still running a late job) tolerated at once.
    max_abandoned: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    /// Worker threads not abandoned.
    live: usize,
    /// Threads abandoned and still running their late job.
    abandoned: usize,
    /// The pool was dropped: idle workers end once the queue is empty.
    closed: bool,
}

struct Job {
    run: Box<dyn FnOnce() + Send>,
    /// Set when the caller gave up before a worker took the job.
    cancelled: Arc<AtomicBool>,
    started: oneshot::Sender<Started>,
}

/// Sent by the worker that takes a job.
struct Started {
    at: Instant,
    /// The worker's flag: set by the caller that abandons it.
    abandon: Arc<AtomicBool>,
}

/// A submitted job; [`Pending::wait`] for its outcome.
pub struct Pending<T> {
    shared: Arc<Shared>,
    started: oneshot::Receiver<Started>,
    done: oneshot::Receiver<(T, Duration)>,
    cancelled: Arc<AtomicBool>,
}

impl Pool {
    /// A pool of `size` workers (at least one) that tolerates `max_abandoned` late ones.
    pub fn new(size: usize, max_abandoned: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                work: Condvar::new(),
                size: size.max(1),
                max_abandoned,
            }),
        }
    }

    /// Queues `f`; the returned handle waits for it.
    pub fn submit<T, F>(&self, f: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (started_tx, started) = oneshot::channel();
        let (done_tx, done) = oneshot::channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let run = Box::new(move || {
            let t0 = Instant::now();
            // A panic drops `done_tx`: the caller sees `Panicked`.
            if let Ok(value) = catch_unwind(AssertUnwindSafe(f)) {
                let _ = done_tx.send((value, t0.elapsed()));
            }
        });
        let mut st = self.shared.lock();
        st.queue.push_back(Job {
            run,
            cancelled: cancelled.clone(),
            started: started_tx,
        });
        if st.live < self.shared.size {
            self.shared.spawn(&mut st);
        }
        drop(st);
        self.shared.work.notify_one();
        Pending {
            shared: self.shared.clone(),
            started,
            done,
            cancelled,
        }
    }

    /// (live workers, abandoned threads).
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let st = self.shared.lock();
        (st.live, st.abandoned)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A job never runs under the lock, so a poisoned lock only means a panic in this
        // file's few lines of bookkeeping; the counts are still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts one more worker (the caller holds the lock and has checked the bounds).
    fn spawn(self: &Arc<Self>, st: &mut State) {
        let shared = self.clone();
        let started = std::thread::Builder::new()
            .name("postdesk-prepare".to_owned())
            .spawn(move || shared.work_loop());
        match started {
            Ok(_) => st.live += 1,
            Err(e) => tracing::error!(error = %e, "cannot start a parsing worker"),
        }
    }

    fn work_loop(self: Arc<Self>) {
        let mut abandon = Arc::new(AtomicBool::new(false));
        loop {
            let job = {
                let mut st = self.lock();
                loop {
                    if let Some(job) = st.queue.pop_front() {
                        break job;
                    }
                    if st.closed {
                        st.live -= 1;
                        return;
                    }
                    st = self.work.wait(st).unwrap_or_else(|p| p.into_inner());
                }
            };
            if job.cancelled.load(Ordering::Acquire) {
                continue;
            }
            let _ = job.started.send(Started {
                at: Instant::now(),
                abandon: abandon.clone(),
            });
            (job.run)();
            let mut st = self.lock();
            if abandon.load(Ordering::Acquire) {
                // Given up on while it ran: rejoin if the pool is short, else end.
                st.abandoned -= 1;
                if st.live >= self.size {
                    return;
                }
                st.live += 1;
                abandon = Arc::new(AtomicBool::new(false));
            }
        }
    }

    /// The caller's deadline passed while the worker behind `flag` ran its job.
    fn abandon(self: &Arc<Self>, flag: &AtomicBool) {
        let mut st = self.lock();
        if flag.swap(true, Ordering::AcqRel) {
            return;
        }
        st.live -= 1;
        st.abandoned += 1;
        if st.live + st.abandoned < self.size + self.max_abandoned {
            self.spawn(&mut st);
        }
        let (live, abandoned) = (st.live, st.abandoned);
        drop(st);
        tracing::warn!(
            live,
            abandoned,
            "parsing worker abandoned past the time limit"
        );
    }
}

impl<T> Pending<T> {
    /// Waits for the job: first for a worker to take it, then at most `limit` from then.
    pub async fn wait(mut self, limit: Duration) -> Ran<T> {
        let started = loop {
            match tokio::time::timeout(limit, &mut self.started).await {
                Ok(Ok(s)) => break s,
                // The job was dropped unrun: only a worker panic outside the job does that.
                Ok(Err(_)) => return Ran::Panicked,
                Err(_) => {
                    let st = self.shared.lock();
                    if st.live == 0 {
                        self.cancelled.store(true, Ordering::Release);
                        return Ran::Stalled(st.abandoned);
                    }
                }
            }
        };
        let deadline = tokio::time::Instant::from_std(started.at + limit);
        match tokio::time::timeout_at(deadline, &mut self.done).await {
            Ok(Ok((value, took))) => Ran::Done(value, took),
            Ok(Err(_)) => Ran::Panicked,
            Err(_) => {
                // It may have finished in the last instant.
                if let Ok((value, took)) = self.done.try_recv() {
                    return Ran::Done(value, took);
                }
                self.shared.abandon(&started.abandon);
                Ran::Late
            }
        }
    }
}

/// Workers for parsing: the machine's cores, at most four (the writer and the runtime
/// need the rest).
pub fn default_size() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().min(4))
}

/// Threads abandoned at once before the pool stops replacing them.
pub const MAX_ABANDONED: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    /// The limit of jobs meant to be late (they sleep far longer).
    const LIMIT: Duration = Duration::from_millis(200);
    /// The limit of jobs meant to finish: generous, for a loaded machine.
    const AMPLE: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_job_past_the_limit_is_late_and_the_next_still_runs() {
        let pool = Pool::new(1, 2);
        let slow = pool.submit(|| {
            std::thread::sleep(Duration::from_secs(2));
            "slow"
        });
        let next = pool.submit(|| "next");
        assert_eq!(slow.wait(LIMIT).await, Ran::Late);
        // One worker, abandoned: the replacement runs the queued job.
        assert!(matches!(next.wait(AMPLE).await, Ran::Done("next", _)));
        assert_eq!(pool.counts(), (1, 1));
    }

    #[tokio::test]
    async fn time_in_the_queue_does_not_count() {
        let pool = Pool::new(1, 1);
        let jobs: Vec<_> = (0..4)
            .map(|i| {
                pool.submit(move || {
                    std::thread::sleep(Duration::from_millis(400));
                    i
                })
            })
            .collect();
        // The fourth waits 1.2 s in the queue, more than the limit, and is on time.
        for (i, job) in jobs.into_iter().enumerate() {
            let ran = job.wait(Duration::from_secs(1)).await;
            assert!(matches!(ran, Ran::Done(n, _) if n == i), "{ran:?}");
        }
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_worker_goes_on() {
        let pool = Pool::new(1, 1);
        let bad = pool.submit(|| -> u32 { panic!("boom") });
        let good = pool.submit(|| 7u32);
        assert_eq!(bad.wait(AMPLE).await, Ran::Panicked);
        assert!(matches!(good.wait(AMPLE).await, Ran::Done(7, _)));
        assert_eq!(pool.counts(), (1, 0));
    }

    #[tokio::test]
    async fn past_the_abandoned_cap_waiting_jobs_are_stalled_not_hung() {
        let pool = Pool::new(1, 1);
        let stuck = || {
            std::thread::sleep(Duration::from_secs(3));
        };
        let first = pool.submit(stuck);
        let second = pool.submit(stuck);
        let third = pool.submit(|| ());
        assert_eq!(first.wait(LIMIT).await, Ran::Late);
        assert_eq!(second.wait(LIMIT).await, Ran::Late);
        // Two threads abandoned, the cap is one: no worker left for the third.
        assert_eq!(third.wait(LIMIT).await, Ran::Stalled(2));
        assert_eq!(pool.counts(), (0, 2));
    }
}
