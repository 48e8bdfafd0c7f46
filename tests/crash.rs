//! Invariant 1 (exactly once) across a crash: `postdesk run` killed with SIGKILL while a
//! batch of 500 is being ingested, then restarted.
//!
//! The one window that can still send an acknowledgement twice: Postfix has accepted it,
//! and the process dies before `mark_sent` commits. On restart the row, still `sending`,
//! goes back to the queue and is sent again. SMTP offers no way to ask "did you take this
//! one?", so postdesk prefers a rare duplicate to a lost acknowledgement. The window is
//! the time between Postfix's `250` and the commit (about a millisecond per message); the
//! test allows a second copy only for rows that were attempted twice, and prints how many.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn sigkill_during_batch_of_500_stores_once_and_acknowledges_once() {
    let inst = Instance::new(Setup {
        batch_size: 10,
        ..Setup::default()
    });
    let customers: Vec<String> = (0..50)
        .map(|i| unique(&format!("crash{i}"), "customer.test"))
        .collect();
    {
        let mut imap = Imap::login(&inst.support[0]);
        for round in 0..10 {
            for c in &customers {
                let raw = simple_mail(
                    c,
                    &inst.support[0],
                    &format!("Request {round} from {c}"),
                    "Please help.",
                    &new_message_id(),
                    "",
                );
                imap.append(&raw);
            }
        }
    }

    let first = inst.spawn_process();
    let started = Instant::now();
    // Kill as soon as part of the batch is committed.
    let seen_at_kill = loop {
        let n = std::fs::metadata(inst.db())
            .ok()
            .and_then(|_| postdesk::store::Reader::open(&inst.db()).ok())
            .and_then(|r| r.status(&[]).ok())
            .map_or(0, |s| s.messages.incoming);
        if n > 0 {
            break n;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "daemon never committed a batch"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    first.kill(); // SIGKILL
    eprintln!("killed with {seen_at_kill} of 500 messages committed");
    assert!(
        seen_at_kill < 500,
        "the kill came after the whole batch ({seen_at_kill}); nothing was tested"
    );

    let second = inst.spawn_process();
    let done = wait_until(Duration::from_secs(60), "all 500 recorded and sent", || {
        let s = inst.status();
        (s.messages.incoming == 500 && s.outbox.sent == 500).then_some(s)
    });
    second.kill();

    assert_eq!(done.tickets, 500, "no ticket twice");
    assert_eq!(done.quarantine, 0);
    let outbox = inst.reader().outbox_list(None).unwrap();
    assert_eq!(outbox.len(), 500, "one acknowledgement queued per ticket");
    let mut per_ticket: HashMap<i64, usize> = HashMap::new();
    for o in &outbox {
        *per_ticket.entry(o.ticket.unwrap()).or_default() += 1;
    }
    assert!(per_ticket.values().all(|n| *n == 1));
    let attempted_twice: HashMap<String, i64> = outbox
        .iter()
        .map(|o| (o.subject.clone(), o.attempts))
        .collect();

    // Every customer holds each of their ten acknowledgements, once.
    let mut duplicates = 0;
    for c in &customers {
        let mut imap = Imap::login(c);
        wait_until(
            Duration::from_secs(30),
            "acknowledgements delivered",
            || (imap.count() >= 10).then_some(()),
        );
        let mut copies: HashMap<String, usize> = HashMap::new();
        for (subject, _) in inbox(c) {
            *copies.entry(subject).or_default() += 1;
        }
        assert_eq!(copies.len(), 10, "{c}: {copies:?}");
        for (subject, n) in copies {
            if n > 1 {
                duplicates += 1;
                let attempts = attempted_twice.get(&subject).copied().unwrap_or(0);
                assert!(
                    n == 2 && attempts >= 2,
                    "{subject}: {n} copies after {attempts} attempts"
                );
            }
        }
    }
    eprintln!(
        "acknowledgements sent twice (accepted by Postfix just before the kill): {duplicates}"
    );
}
