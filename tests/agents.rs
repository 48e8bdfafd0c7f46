//! Agents work from their own mail client (issue 4), on the real Dovecot and Postfix:
//! relays, answers, commands, notes, and proof of the sender (invariant 5).

mod common;

use std::time::Duration;

use common::*;
use postdesk::mail::parse::{self, Parsed};

/// An instance with two agents (alice, bob) in its queue.
struct Desk {
    inst: Instance,
    alice: String,
    bob: String,
}

fn desk(extra_top: &str, queue_extra: &str) -> Desk {
    let alice = unique("agent-alice", "example.test");
    let bob = unique("agent-bob", "example.test");
    let inst = Instance::new(Setup {
        extra_top: extra_top.to_owned(),
        queue_extra: queue_extra.to_owned(),
        tail: format!(
            "\n[[agent]]\nname = \"alice\"\ndisplay_name = \"Alice Agent\"\naddresses = [\"{alice}\"]\nqueues = [\"support\"]\n\
             \n[[agent]]\nname = \"bob\"\ndisplay_name = \"Bob Agent\"\naddresses = [\"{bob}\"]\nqueues = [\"support\"]\n"
        ),
        ..Setup::default()
    });
    Desk { inst, alice, bob }
}

fn parsed(raw: &[u8]) -> Parsed {
    parse::message(raw, &postdesk::limits::Limits::default()).unwrap()
}

/// The customer writes; returns (ticket id, tag).
fn customer_writes(d: &Desk, customer: &str, subject: &str, body: &str) -> (i64, String) {
    smtp_send(
        customer,
        &[&d.inst.support[0]],
        &simple_mail(
            &format!("Jane Doe <{customer}>"),
            &d.inst.support[0],
            subject,
            body,
            &new_message_id(),
            "",
        ),
    );
    let t = wait_until(Duration::from_secs(15), "ticket", || {
        d.inst
            .tickets()
            .into_iter()
            .find(|t| t.requester.as_deref() == Some(customer))
    });
    (t.id.get(), t.tag)
}

#[test]
fn agent_answers_from_mail_client_with_assign_me() {
    let d = desk("", "");
    let _daemon = d.inst.start();
    let customer = unique("jane", "customer.test");
    let (ticket, tag) = customer_writes(
        &d,
        &customer,
        "Printer on floor 3 offline",
        "Hello,\nthe printer is offline.\n",
    );

    // Both agents of the queue get the relayed mail, from the support address.
    let relay = wait_mail(&d.alice, 1).remove(0);
    assert_eq!(wait_mail(&d.bob, 1).len(), 1);
    let from = relay.from.clone().unwrap();
    assert_eq!(from.address, d.inst.support[0]);
    assert_eq!(from.name.as_deref(), Some("Jane Doe via ACME Support"));
    assert!(relay.subject.starts_with(&tag), "{}", relay.subject);
    // Reply-To is Alice's reply token for this ticket: her mail client's Reply proves her.
    let (local, domain) = d.inst.support[0].split_once('@').unwrap();
    let token = reply_address(&relay);
    assert!(
        token.starts_with(&format!("{local}+r-{ticket}-alice-")) && token.ends_with(domain),
        "{token}"
    );
    assert!(relay.text.contains("Requester: Jane Doe"), "{}", relay.text);
    assert!(
        relay.text.contains("the printer is offline"),
        "{}",
        relay.text
    );

    // Alice replies: a command line, her answer, her signature and the quoted history.
    let body = format!(
        "#assign me\n\nHello Jane,\nplease switch it off and on again.\n\nAlice\n\nOn Wed, 25 Nov 2026 at 10:00, ACME Support <{}> wrote:\n> the printer is offline.\n",
        d.inst.support[0]
    );
    reply_by_mail(&d.alice, &relay, &body, "");

    // The customer gets the answer from the support address: no agent address, no command.
    let mails = wait_mail(&customer, 2);
    let (answer_raw, answer) = {
        let raw = inbox(&customer).remove(1).1;
        (String::from_utf8_lossy(&raw).into_owned(), parsed(&raw))
    };
    let _ = mails;
    assert_eq!(answer.from.as_ref().unwrap().address, d.inst.support[0]);
    assert_eq!(
        answer.from.as_ref().unwrap().name.as_deref(),
        Some("ACME Support")
    );
    assert!(answer.subject.contains(&tag), "{}", answer.subject);
    assert!(
        answer.text.contains("please switch it off and on again"),
        "{}",
        answer.text
    );
    assert!(
        !answer_raw.contains(&d.alice),
        "the agent's address never reaches the customer"
    );
    assert!(
        !answer_raw.contains("#assign"),
        "command lines never reach the customer"
    );
    assert!(
        answer.auto.auto_submitted.is_none(),
        "a person's answer is not automatic"
    );
    assert!(!answer.in_reply_to.is_empty() && !answer.references.is_empty());

    let t = d.inst.ticket(ticket);
    assert_eq!(t.ticket.assignee.as_deref(), Some("alice"));
    assert_eq!(t.ticket.status, "pending");
    assert!(
        t.ticket.first_response_at.is_some(),
        "first response time recorded"
    );
    let kinds: Vec<&str> = t.events.iter().map(|e| e.kind.as_str()).collect();
    for k in ["assignee", "answer.queued", "first_response"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    // The agent's own mail is on the ticket, internal, with the commands.
    let theirs = t
        .messages
        .iter()
        .find(|m| m.agent.as_deref() == Some("alice"))
        .unwrap();
    assert_eq!(theirs.audience, "internal");
    assert!(theirs.text.contains("#assign me"));
}

#[test]
fn notes_and_comment_address_stay_internal() {
    let d = desk("", "");
    let _daemon = d.inst.start();
    let customer = unique("kim", "customer.test");
    let (ticket, _) = customer_writes(&d, &customer, "Refund", "Please refund order 4711.");
    let relay = wait_mail(&d.alice, 1).remove(0);
    reply_by_mail(
        &d.alice,
        &relay,
        "#note\n\nCustomer called, refund approved by finance.",
        "",
    );
    // Bob replies to his relay and copies the comment address.
    let (local, domain) = d.inst.support[0].split_once('@').unwrap();
    let comment = format!("{local}+comment@{domain}");
    let bobs = wait_mail(&d.bob, 1).remove(0);
    let token = reply_address(&bobs);
    smtp_send(
        &d.bob,
        &[&token, &comment],
        &reply_mail_to(
            &d.bob,
            &token,
            &bobs,
            "Bob here: I will do the refund tomorrow.",
            &format!("Cc: {comment}\r\n"),
        ),
    );
    wait_until(Duration::from_secs(15), "two notes", || {
        let n = d
            .inst
            .events(ticket)
            .iter()
            .filter(|(k, _, _)| k == "note")
            .count();
        (n == 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    let mails = inbox(&customer);
    assert_eq!(
        mails.len(),
        1,
        "only the acknowledgement reached the customer"
    );
    let t = d.inst.ticket(ticket);
    let notes: Vec<_> = t.messages.iter().filter(|m| m.agent.is_some()).collect();
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|m| m.audience == "internal"));
    assert!(notes
        .iter()
        .any(|m| m.text.contains("refund approved by finance")));
    assert_eq!(t.ticket.status, "new", "a note changes no status");
}

#[test]
fn non_agent_command_is_refused_and_recorded() {
    let d = desk("", "");
    let _daemon = d.inst.start();
    let customer = unique("lee", "customer.test");
    let (ticket, tag) = customer_writes(&d, &customer, "Account locked", "My account is locked.");
    wait_mail(&customer, 1);
    smtp_send(
        &customer,
        &[&d.inst.support[0]],
        &simple_mail(
            &customer,
            &d.inst.support[0],
            &format!("Re: {tag} Account locked"),
            "#status closed\n\nNever mind.",
            &new_message_id(),
            "",
        ),
    );
    wait_until(Duration::from_secs(15), "refusal recorded", || {
        d.inst
            .events(ticket)
            .into_iter()
            .find(|(k, new, _)| k == "command.refused" && new.as_deref() == Some("#status closed"))
    });
    let t = d.inst.ticket(ticket);
    assert_eq!(t.ticket.status, "new", "no status change");
    std::thread::sleep(Duration::from_secs(1));
    for (_, raw) in inbox(&customer) {
        assert!(
            !String::from_utf8_lossy(&raw).contains("#status"),
            "no mail to the customer carries the command"
        );
    }
}

/// Mail to the plain support address (no reply token): with `trusted_authserv_id` the
/// receiving MX's `Authentication-Results` decides. Headers the MX would add are put on
/// top by APPENDing the mail; a pass the sender writes himself and sends through Postfix
/// sits below Postfix's `Received` line and counts for nothing.
#[test]
fn trusted_authserv_id_decides_whether_an_agent_acts() {
    let d = desk("trusted_authserv_id = \"mx.example.test\"", "");
    let _daemon = d.inst.start();
    let customer = unique("max", "customer.test");
    let (ticket, _) = customer_writes(&d, &customer, "Disk full", "The disk is full.");
    let relay = wait_mail(&d.alice, 1).remove(0);
    let support = d.inst.support[0].clone();
    let good =
        "Authentication-Results: mx.example.test; dkim=pass header.d=example.test header.s=s1\r\n";
    // (headers, APPENDed on top rather than sent through Postfix, text of the refusal)
    let cases: [(&str, bool, &str); 3] = [
        (
            "Authentication-Results: mx.example.test; dkim=fail header.d=example.test\r\n",
            true,
            "dkim=fail",
        ),
        ("", true, "#priority urgent"),
        (good, false, "#priority urgent"),
    ];
    for (i, (headers, on_top, why)) in cases.iter().enumerate() {
        let raw = reply_mail_to(
            &d.alice,
            &support,
            &relay,
            &format!("#priority urgent\n\nRefused answer {i}."),
            headers,
        );
        if *on_top {
            Imap::login(&support).append(&raw);
        } else {
            smtp_send(&d.alice, &[&support], &raw);
        }
        // Each refused mail is explained to the agent.
        let mails = wait_mail(&d.alice, 2 + i);
        let refusal = mails.last().unwrap();
        assert!(
            refusal.subject.starts_with("Refused:"),
            "{}",
            refusal.subject
        );
        assert!(refusal.text.contains(why), "{why} in {}", refusal.text);
        assert!(
            refusal.text.contains("#priority urgent"),
            "{}",
            refusal.text
        );
    }
    let t = d.inst.ticket(ticket);
    assert_eq!(
        t.ticket.priority, "normal",
        "no refused command took effect"
    );
    assert_eq!(
        t.events
            .iter()
            .filter(|e| e.kind == "command.refused")
            .count(),
        3
    );
    assert_eq!(t.messages.iter().filter(|m| m.unverified).count(), 3);
    assert_eq!(inbox(&customer).len(), 1, "nothing reached the customer");

    Imap::login(&support).append(&reply_mail_to(
        &d.alice,
        &support,
        &relay,
        "#priority urgent\n\nWe are on it.",
        good,
    ));
    let mails = wait_mail(&customer, 2);
    assert!(mails[1].text.contains("We are on it."));
    assert_eq!(d.inst.ticket(ticket).ticket.priority, "urgent");
}

#[test]
fn one_bad_command_refuses_the_whole_mail() {
    let d = desk("", "");
    let _daemon = d.inst.start();
    let customer = unique("ann", "customer.test");
    let (ticket, _) = customer_writes(&d, &customer, "Slow VPN", "VPN is slow.");
    let relay = wait_mail(&d.bob, 1).remove(0);
    reply_by_mail(
        &d.bob,
        &relay,
        "#priority high\n#assign carol\n\nLooking into it.",
        "",
    );
    let mails = wait_mail(&d.bob, 2);
    let result = &mails[1];
    assert!(
        result.subject.starts_with("Not done:"),
        "{}",
        result.subject
    );
    assert!(
        result.text.contains("unknown agent \"carol\""),
        "{}",
        result.text
    );
    assert!(
        result.text.contains("#priority high"),
        "the valid command is listed as not done: {}",
        result.text
    );
    let t = d.inst.ticket(ticket);
    assert_eq!(t.ticket.priority, "normal");
    assert_eq!(t.ticket.assignee, None);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(inbox(&customer).len(), 1, "the answer was not sent");
}

#[test]
fn chinese_queue_speaks_chinese_to_agents_and_customers() {
    // Surveys off: on `resolved` the customer gets the plain status mail (with surveys on,
    // the survey takes its place; tests/workflow.rs covers that).
    let d = desk("", "language = \"zh-CN\"\nsurveys = false");
    let _daemon = d.inst.start();
    let customer = unique("wang", "customer.test");
    // GBK: subject "发票重复扣款", body "订单的发票被重复扣款".
    let mut raw = format!(
        "From: {customer}\r\nTo: {}\r\nSubject: =?GBK?B?t6LGsdbYuLS/27/u?=\r\nMessage-ID: <{}>\r\nContent-Type: text/plain; charset=GBK\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        d.inst.support[0],
        new_message_id()
    )
    .into_bytes();
    raw.extend_from_slice(&[
        0xB6, 0xA9, 0xB5, 0xA5, 0xB5, 0xC4, 0xB7, 0xA2, 0xC6, 0xB1, 0xB1, 0xBB, 0xD6, 0xD8, 0xB8,
        0xB4, 0xBF, 0xDB, 0xBF, 0xEE, b'\r', b'\n',
    ]);
    smtp_send(&customer, &[&d.inst.support[0]], &raw);
    let relay = wait_mail(&d.alice, 1).remove(0);
    assert!(
        relay.text.contains("工单："),
        "relay in Chinese: {}",
        relay.text
    );
    assert!(
        relay.text.contains("订单的发票被重复扣款"),
        "the customer's GBK text is readable: {}",
        relay.text
    );
    assert_eq!(
        relay.from.as_ref().unwrap().name.as_deref(),
        Some(format!("{} 通过 ACME Support", customer.split('@').next().unwrap()).as_str())
    );

    reply_by_mail(
        &d.alice,
        &relay,
        "#status resolved\n\n您好，已为您退款。",
        "",
    );
    let mails = wait_mail(&customer, 3);
    let answer = mails
        .iter()
        .find(|m| m.text.contains("已为您退款"))
        .expect("the answer");
    assert!(
        answer.subject.starts_with("回复："),
        "answer wrapper in Chinese: {}",
        answer.subject
    );
    let status = mails
        .iter()
        .find(|m| m.subject.contains("已解决"))
        .expect("the status mail");
    assert!(
        status.text.contains("状态已更新为：已解决"),
        "{}",
        status.text
    );
    let t = d
        .inst
        .tickets()
        .into_iter()
        .find(|t| t.requester.as_deref() == Some(customer.as_str()))
        .unwrap();
    assert_eq!(t.status, "resolved");
}
