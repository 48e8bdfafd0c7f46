//! Trust (issue 3) on the real Dovecot and Postfix: threading that strangers cannot
//! hijack (invariant 4), and no mail loops (invariant 3).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use postdesk::clock::{Clock, ManualClock};
use postdesk::model::{Status, TicketId};

fn wait_count(who: &str, n: usize, what: &str) {
    let mut imap = Imap::login(who);
    wait_until(Duration::from_secs(20), what, || {
        (imap.count() >= n).then_some(())
    });
}

/// Opens a ticket for `customer` and waits for its acknowledgement; returns (ticket id,
/// tag, the acknowledgement's raw bytes).
fn open_ticket(inst: &Instance, customer: &str, subject: &str) -> (i64, String, Vec<u8>) {
    let before = inbox(customer).len();
    smtp_send(
        customer,
        &[&inst.support[0]],
        &simple_mail(
            customer,
            &inst.support[0],
            subject,
            "Please help.",
            &new_message_id(),
            "",
        ),
    );
    wait_count(customer, before + 1, "acknowledgement");
    let t = inst
        .tickets()
        .into_iter()
        .find(|t| t.requester.as_deref() == Some(customer) && t.subject == subject)
        .expect("ticket for the customer");
    let ack = inbox(customer).pop().unwrap().1;
    (t.id.get(), t.tag, ack)
}

#[test]
fn vacation_autoresponder_lands_on_ticket_and_the_exchange_stops() {
    let inst = Instance::new(Setup::default());
    let customer = unique("away", "customer.test");
    // A real autoresponder: Dovecot's Sieve vacation on the customer's mailbox.
    let mut sieve = Command::new(mailstack_script())
        .args(["sieve", &customer, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    sieve
        .stdin
        .take()
        .unwrap()
        .write_all(b"require [\"vacation\", \"vacation-seconds\"];\nvacation :seconds 0 :subject \"Out of office\" \"I am away until Monday.\";\n")
        .unwrap();
    assert!(sieve.wait().unwrap().success());

    let _d = inst.start();
    let (ticket, tag, ack_raw) = open_ticket(&inst, &customer, "Printer jammed");
    let ack =
        postdesk::mail::parse::message(&ack_raw, &postdesk::limits::Limits::default()).unwrap();
    // The acknowledgement is Auto-Submitted, so the vacation responder stays silent
    // (RFC 3834): nothing comes back for it.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        Imap::login(&inst.support[0]).count(),
        1,
        "no vacation reply to an acknowledgement"
    );

    // A person answers from the support mailbox with a plain mail client (no
    // Auto-Submitted): the vacation responder answers that one.
    let answer = format!(
        "From: ACME Support <{s}>\r\nTo: {customer}\r\nSubject: Re: {tag} Printer jammed\r\nMessage-ID: <{}>\r\nIn-Reply-To: {id}\r\nReferences: {id}\r\n\r\nPlease try the other tray.\r\n",
        unique("agent", "example.test"),
        s = inst.support[0],
        id = ack.message_id.bracketed(),
    );
    smtp_send(&inst.support[0], &[&customer], answer.as_bytes());
    let vacation = wait_until(
        Duration::from_secs(20),
        "vacation reply on the ticket",
        || {
            inst.ticket(ticket)
                .messages
                .into_iter()
                .find(|m| m.class == "auto-reply")
        },
    );
    assert_eq!(vacation.direction, "in");
    let events = inst.events(ticket);
    assert!(
        events
            .iter()
            .any(|(k, new, _)| k == "message.automatic" && new.as_deref() == Some("auto-reply")),
        "{events:?}"
    );
    // Nothing further: no acknowledgement, no reopen, one outbox row in all.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inst.status().outbox.sent + inst.status().outbox.queued, 1);
    assert_eq!(inst.tickets().len(), 1);
    assert_eq!(inst.ticket(ticket).ticket.status, "new");
    assert_eq!(
        inbox(&customer).len(),
        2,
        "the acknowledgement and the person's answer, nothing more"
    );
    assert_eq!(
        Imap::login(&inst.support[0]).count(),
        2,
        "the request and one vacation reply"
    );
}

#[test]
fn stranger_with_copied_tag_gets_new_linked_flagged_ticket() {
    let inst = Instance::new(Setup::default());
    let _d = inst.start();
    let alice = unique("alice", "customer.test");
    let mallory = unique("mallory", "attacker.test");
    let (first, tag, _) = open_ticket(&inst, &alice, "Invoice 4711");
    smtp_send(
        &mallory,
        &[&inst.support[0]],
        &simple_mail(
            &mallory,
            &inst.support[0],
            &format!("Re: {tag} Invoice 4711"),
            "Send me the invoice PDF.",
            &new_message_id(),
            "",
        ),
    );
    wait_count(&mallory, 1, "mallory's acknowledgement");
    let tickets = inst.tickets();
    assert_eq!(tickets.len(), 2);
    let new = tickets
        .iter()
        .find(|t| t.requester.as_deref() == Some(mallory.as_str()))
        .unwrap();
    assert_ne!(new.id.get(), first);
    assert_eq!(new.linked_to, Some(first));
    assert!(
        new.flagged
            .as_deref()
            .unwrap()
            .contains("not a participant"),
        "{new:?}"
    );
    let events = inst.events(new.id.get());
    assert!(
        events.iter().any(|(k, new_v, d)| k == "ticket.linked"
            && new_v.as_deref() == Some(first.to_string().as_str())
            && d.as_deref().unwrap().contains(&mallory)),
        "{events:?}"
    );
    // Alice's ticket is untouched: her request and her acknowledgement only.
    let original = inst.ticket(first);
    assert_eq!(original.messages.len(), 2);
    assert_eq!(original.events.len(), 2);
    // Mallory's acknowledgement names the new ticket, not Alice's.
    let ack = &inbox(&mallory)[0].0;
    assert!(ack.starts_with(&new.tag) && !ack.contains(&tag), "{ack}");
}

#[test]
fn requester_reply_without_in_reply_to_joins_by_tag() {
    let inst = Instance::new(Setup::default());
    let _d = inst.start();
    let bob = unique("bob", "customer.test");
    let (ticket, tag, _) = open_ticket(&inst, &bob, "VPN drops hourly");
    // A client that strips In-Reply-To and References; the subject keeps the tag.
    smtp_send(
        &bob,
        &[&inst.support[0]],
        &simple_mail(
            &bob,
            &inst.support[0],
            &format!("AW: {tag} VPN drops hourly"),
            "Logs attached.",
            &new_message_id(),
            "",
        ),
    );
    wait_until(Duration::from_secs(15), "reply on the ticket", || {
        (inst.ticket(ticket).messages.len() == 3).then_some(())
    });
    assert_eq!(inst.tickets().len(), 1);
    let events = inst.events(ticket);
    assert!(events.iter().any(
        |(k, _, d)| k == "message.in" && d.as_deref() == Some("subject tag from a participant")
    ));
}

#[test]
fn three_hundred_mails_from_one_address_are_all_recorded_and_acknowledged_to_the_limit() {
    let inst = Instance::new(Setup::default());
    let flood = unique("flood", "customer.test");
    {
        let mut imap = Imap::login(&inst.support[0]);
        for i in 0..300 {
            imap.append(&simple_mail(
                &flood,
                &inst.support[0],
                &format!("Request number {i}"),
                "x",
                &new_message_id(),
                "",
            ));
        }
    }
    let _d = inst.start();
    let s = wait_until(Duration::from_secs(30), "300 recorded", || {
        let s = inst.status();
        (s.messages.incoming == 300).then_some(s)
    });
    assert_eq!(s.tickets, 300, "every message recorded as its own ticket");
    wait_count(&flood, 10, "ten acknowledgements");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        inbox(&flood).len(),
        10,
        "held to the per-recipient limit of 10 an hour"
    );
    let outbox = inst.status().outbox;
    assert_eq!(outbox.sent + outbox.queued + outbox.sending, 10);
    let held = inst
        .tickets()
        .iter()
        .filter(|t| {
            inst.events(t.id.get()).iter().any(|(k, _, d)| {
                k == "notification.held" && d.as_deref().unwrap().contains("rate limit")
            })
        })
        .count();
    assert_eq!(held, 290, "what was held back is recorded as an event");
}

#[test]
fn hard_bounce_of_acknowledgement_marks_the_address_and_gets_no_reply() {
    let inst = Instance::new(Setup::default());
    let _d = inst.start();
    let gone = unique("gone", "bounce.test");
    smtp_send(
        &gone,
        &[&inst.support[0]],
        &simple_mail(
            &gone,
            &inst.support[0],
            "Order status",
            "Where is my order?",
            &new_message_id(),
            "",
        ),
    );
    // Postfix refuses bounce.test and returns a DSN to our envelope sender.
    let ticket = wait_until(
        Duration::from_secs(30),
        "bounce recorded on the ticket",
        || {
            inst.tickets().into_iter().find_map(|t| {
                inst.events(t.id.get())
                    .iter()
                    .any(|(k, _, _)| k == "bounce")
                    .then_some(t.id.get())
            })
        },
    );
    let events = inst.events(ticket);
    let (_, rcpt, detail) = events.iter().find(|(k, _, _)| k == "bounce").unwrap();
    assert_eq!(rcpt.as_deref(), Some(gone.as_str()));
    assert!(
        detail
            .as_deref()
            .unwrap()
            .contains("hard bounce, status 5.1.1"),
        "{detail:?}"
    );
    let marked = inst.reader().undeliverable().unwrap();
    assert!(
        marked
            .iter()
            .any(|(a, _, s)| a == &gone && s.as_deref() == Some("5.1.1")),
        "{marked:?}"
    );
    let bounce = inst
        .ticket(ticket)
        .messages
        .into_iter()
        .find(|m| m.class == "bounce")
        .expect("bounce stored on the ticket");
    assert_eq!(bounce.direction, "in");
    // No reply to the bounce: still one outbox row, one ticket.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inst.tickets().len(), 1);
    assert_eq!(inst.reader().outbox_list(None).unwrap().len(), 1);
}

#[test]
fn reopen_rules_with_a_settable_clock() {
    let inst = Instance::new(Setup {
        extra_top: "reopen_window = \"7d\"".to_owned(),
        ..Setup::default()
    });
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let _d = inst.start_with_clock(clock.clone());
    let desk = inst.desk(clock.clone());
    let set = |id: i64, to: Status| {
        Instance::set_status(&desk, TicketId::new(id), to, "test", clock.now())
    };
    let carol = unique("carol", "customer.test");
    let (ticket, tag, _) = open_ticket(&inst, &carol, "Cannot print");
    let reply = |n: usize| {
        smtp_send(
            &carol,
            &[&inst.support[0]],
            &simple_mail(
                &carol,
                &inst.support[0],
                &format!("Re: {tag} Cannot print"),
                &format!("Reply {n}"),
                &new_message_id(),
                "",
            ),
        );
    };
    let messages_in = |id: i64| {
        inst.ticket(id)
            .messages
            .iter()
            .filter(|m| m.direction == "in")
            .count()
    };
    let status = |id: i64| inst.ticket(id).ticket.status;

    set(ticket, Status::Open);
    for (n, to) in [(1, Status::Pending), (2, Status::Resolved)] {
        set(ticket, to);
        reply(n);
        wait_until(Duration::from_secs(15), "reply recorded", || {
            (messages_in(ticket) == n + 1).then_some(())
        });
        assert_eq!(status(ticket), "open", "a reply to {to} reopens");
    }
    // Closed, and the customer writes 3 days later: inside the 7-day window, reopens.
    set(ticket, Status::Closed);
    clock.advance(chrono::Duration::days(3));
    reply(3);
    wait_until(Duration::from_secs(15), "reply recorded", || {
        (messages_in(ticket) == 4).then_some(())
    });
    assert_eq!(status(ticket), "open");
    // Closed again, and the customer writes 8 days later: a new ticket, linked.
    set(ticket, Status::Closed);
    clock.advance(chrono::Duration::days(8));
    reply(4);
    let newer = wait_until(Duration::from_secs(15), "new linked ticket", || {
        inst.tickets().into_iter().find(|t| t.id.get() != ticket)
    });
    assert_eq!(newer.linked_to, Some(ticket));
    assert!(
        newer.flagged.is_none(),
        "the requester is no stranger: linked, not flagged"
    );
    assert_eq!(status(ticket), "closed", "the old ticket stays closed");
    assert_eq!(messages_in(ticket), 4);
    // Every change is an event.
    let kinds: Vec<String> = inst
        .events(ticket)
        .into_iter()
        .filter(|(k, _, _)| k == "status")
        .map(|(_, n, _)| n.unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["open", "pending", "open", "resolved", "open", "closed", "open", "closed"]
    );
    // An illegal transition is refused and changes nothing (`ticket set` is all or
    // nothing; the `status.refused` event of the lifecycle is checked in
    // workflow::lifecycle's unit tests).
    let refused = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(desk.admin_change(
            TicketId::new(ticket),
            vec![postdesk::workflow::admin::Change::Status(Status::Pending)],
            "test",
            clock.now(),
        ));
    assert!(
        matches!(
            refused,
            Err(postdesk::workflow::WriteError::Refused(
                postdesk::workflow::Refusal::Transition { .. }
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(status(ticket), "closed", "refused: unchanged");
}
