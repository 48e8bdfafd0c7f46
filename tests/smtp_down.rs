//! Invariant 2 (nothing lost) for outgoing mail: with Postfix stopped, the
//! acknowledgement waits in the outbox, and is delivered once after Postfix is back.
//!
//! This file is its own test binary: cargo runs test binaries one after another, so
//! stopping Postfix here cannot disturb the other tests.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn mailstack(verb: &str) {
    let status = Command::new(mailstack_script())
        .arg(verb)
        .status()
        .expect("run scripts/mailstack");
    assert!(status.success(), "scripts/mailstack {verb} failed");
}

/// Starts Postfix again even when the test fails half-way.
struct RestartPostfix;
impl Drop for RestartPostfix {
    fn drop(&mut self) {
        mailstack("smtp-start");
    }
}

#[test]
fn acknowledgement_waits_in_outbox_while_smtp_is_down_and_is_sent_once() {
    let inst = Instance::new(Setup::default());
    let customer = unique("frank", "customer.test");
    let guard = RestartPostfix;
    mailstack("smtp-stop");
    let _d = inst.start();
    // With SMTP down, the customer's mail reaches the support mailbox some other way.
    Imap::login(&inst.support[0]).append(&simple_mail(
        &customer,
        &inst.support[0],
        "Cannot print",
        "The printer is offline.",
        &new_message_id(),
        "",
    ));
    let ticket = wait_until(Duration::from_secs(15), "ticket opened", || {
        inst.tickets().into_iter().next()
    });
    let waiting = wait_until(Duration::from_secs(15), "a failed attempt", || {
        let list = inst.reader().outbox_list(None).unwrap();
        list.into_iter()
            .find(|o| o.attempts >= 1 && o.state == "queued")
    });
    assert_eq!(waiting.ticket, Some(ticket.id.get()));
    assert!(
        waiting
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot connect")),
        "{waiting:?}"
    );

    drop(guard); // smtp-start
    let mut imap = Imap::login(&customer);
    wait_until(
        Duration::from_secs(30),
        "acknowledgement delivered after Postfix is back",
        || (imap.count() >= 1).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(3));
    let acks = inbox(&customer);
    assert_eq!(acks.len(), 1, "delivered once");
    assert!(acks[0].0.starts_with(&ticket.tag));
    let sent = inst.reader().outbox_list(Some("sent")).unwrap();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].attempts >= 2, "{:?}", sent[0]);
}
