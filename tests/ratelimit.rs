//! Rate limits on automatic mail, on the real Dovecot and Postfix (issue 12, test 5).
//!
//! The lab's Dovecot files `a+tag@d` in `a@d`'s INBOX, as most real servers do: a forged
//! sender that varies only its plus-tag must not get a fresh set of acknowledgements per
//! tag. The mails go through Postfix (`smtp_send`) to the support mailbox of a running
//! daemon, and the victim's real mailbox is counted.

mod common;

use std::time::Duration;

use common::*;
use postdesk::model::{OutboxKind, OutboxState};

/// `per_recipient`'s default.
const PER_RECIPIENT: usize = 10;

#[test]
fn plus_tags_do_not_multiply_acknowledgements() {
    let inst = Instance::new(Setup::default());
    let _daemon = inst.start();
    let support = inst.support[0].clone();
    let victim = unique("victim", "customer.test");
    let (local, domain) = victim.split_once('@').unwrap();
    let senders: Vec<String> = (1..=15).map(|n| format!("{local}+{n}@{domain}")).collect();
    for (n, from) in senders.iter().enumerate() {
        let raw = simple_mail(
            from,
            &support,
            &format!("Order {n}"),
            "Where is my order?",
            &new_message_id(),
            "",
        );
        smtp_send(from, &[&support], &raw);
    }

    // Every mail opened a ticket and went through the gate: an acknowledgement queued or
    // held, with its event.
    let tickets = wait_until(Duration::from_secs(60), "15 tickets", || {
        let t = inst.tickets();
        (t.len() == 15).then_some(t)
    });
    let outcomes = wait_until(Duration::from_secs(30), "15 gate outcomes", || {
        let outcomes: Vec<(String, Option<String>)> = tickets
            .iter()
            .flat_map(|t| inst.events(t.id.get()))
            .filter(|(k, _, _)| k == "acknowledgement.queued" || k == "notification.held")
            .map(|(k, _, d)| (k, d))
            .collect();
        (outcomes.len() == 15).then_some(outcomes)
    });
    let queued = outcomes
        .iter()
        .filter(|(k, _)| k == "acknowledgement.queued")
        .count();
    assert_eq!(queued, PER_RECIPIENT, "{outcomes:?}");
    for (kind, detail) in outcomes.iter().filter(|(k, _)| k == "notification.held") {
        assert!(
            detail
                .as_deref()
                .is_some_and(|d| d.contains("rate limit: 10 automatic mails to this address")),
            "{kind}: {detail:?}"
        );
    }

    // What was queued is sent, and that is all the victim ever gets.
    wait_until(Duration::from_secs(60), "the acknowledgements sent", || {
        let rows = inst.reader().outbox_list(None).unwrap();
        rows.iter()
            .all(|o| o.state == OutboxState::Sent)
            .then_some(())
    });
    let rows = inst.reader().outbox_list(None).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|o| o.kind == OutboxKind::Acknowledgement)
            .count(),
        PER_RECIPIENT
    );
    let received = wait_mail(&victim, PER_RECIPIENT);
    assert_eq!(
        received.len(),
        PER_RECIPIENT,
        "the victim's mailbox: {:?}",
        received.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
}
