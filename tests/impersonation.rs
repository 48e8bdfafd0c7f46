//! Nobody can pose as an agent or a customer (issue 10, DESIGN.md invariants 4 and 5), on
//! the real Dovecot and Postfix.
//!
//! Mail an outsider could write goes through Postfix (`smtp_send`), so it carries
//! Postfix's and Dovecot's `Received` lines on top as on any real server. Where a test
//! needs a header that the receiving MX would add (a trusted `Authentication-Results` on
//! top), the message is APPENDed to the support mailbox over IMAP instead. Every test
//! checks what a user would: the ticket's events, who got mail (the customer's, the
//! attacker's and the agent's real mailboxes), and the marks on addresses.
//!
//! The attacker (`mallory@attacker.test`) has a real mailbox too: the lab's Postfix
//! delivers every domain locally, so "the attacker received nothing" is a mailbox count.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use postdesk::mail::parse::Parsed;
use postdesk::model::{Status, TicketId};

/// The authserv-id of the lab's verifying MX, when a test configures one.
const MX: &str = "mx.example.test";

/// Events that change a ticket or send the customer something: none may follow a mail
/// that is not proven.
const CHANGES: &[&str] = &[
    "status",
    "priority",
    "assignee",
    "cc",
    "tag",
    "untag",
    "queue",
    "merged",
    "linked",
    "first_response",
    "answer.queued",
    "status-change.queued",
    "survey.queued",
];

/// A helpdesk with two agents (alice, bob) on `example.test`, a customer and an attacker.
struct Lab {
    inst: Instance,
    alice: String,
    bob: String,
    customer: String,
    attacker: String,
}

impl Lab {
    fn new(extra_top: &str) -> Lab {
        let alice = unique("agent-alice", "example.test");
        let bob = unique("agent-bob", "example.test");
        let inst = Instance::new(Setup {
            extra_top: extra_top.to_owned(),
            tail: format!(
                "\n[[agent]]\nname = \"alice\"\ndisplay_name = \"Alice Agent\"\naddresses = [\"{alice}\"]\nqueues = [\"support\"]\n\
                 \n[[agent]]\nname = \"bob\"\ndisplay_name = \"Bob Agent\"\naddresses = [\"{bob}\"]\nqueues = [\"support\"]\n"
            ),
            ..Setup::default()
        });
        Lab {
            inst,
            alice,
            bob,
            customer: unique("jane", "customer.test"),
            attacker: unique("mallory", "attacker.test"),
        }
    }

    fn support(&self) -> &str {
        &self.inst.support[0]
    }

    /// `customer` writes a new request through Postfix; waits for its acknowledgement
    /// and for the relay to both agents. Returns (ticket id, tag).
    fn open_ticket(&self, customer: &str, subject: &str) -> (i64, String) {
        let before = Imap::login(customer).count();
        smtp_send(
            customer,
            &[self.support()],
            &simple_mail(
                &format!("Jane Doe <{customer}>"),
                self.support(),
                subject,
                "Hello,\nplease correct the invoice.\n",
                &new_message_id(),
                "",
            ),
        );
        wait_mail(customer, before + 1);
        let t = wait_until(Duration::from_secs(15), "the ticket", || {
            self.inst
                .tickets()
                .into_iter()
                .find(|t| t.requester.as_deref() == Some(customer) && t.subject == subject)
        });
        for agent in [&self.alice, &self.bob] {
            self.relay(agent, &t.tag);
        }
        (t.id.get(), t.tag)
    }

    /// The relay of the ticket tagged `tag` in `agent`'s mailbox.
    fn relay(&self, agent: &str, tag: &str) -> Parsed {
        wait_mail_where(agent, 1, "relay", |m| {
            m.subject.starts_with(tag) && m.text.contains("Requester:")
        })
        .remove(0)
    }

    /// A mail as the attacker writes it: `From: Alice Agent <alice>`, the ticket's tag
    /// copied into the subject, no reference to any mail of ours.
    fn forged_from_alice(&self, tag: &str, extra_headers: &str, body: &str) -> Vec<u8> {
        format!(
            "{extra_headers}From: Alice Agent <{}>\r\nTo: {}\r\nSubject: Re: {tag} Invoice 4711 is wrong\r\nMessage-ID: <{}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}",
            self.alice,
            self.support(),
            unique("forged", "attacker.test"),
        )
        .into_bytes()
    }

    fn takeover_body(&self) -> String {
        format!(
            "#cc {}\r\n#priority urgent\r\n\r\nHello Jane,\r\nplease send the payment to our new account; my colleague will confirm.\r\n",
            self.attacker
        )
    }

    fn count(&self, ticket: i64, kind: &str) -> usize {
        self.inst
            .events(ticket)
            .iter()
            .filter(|(k, _, _)| k == kind)
            .count()
    }

    /// Waits for the `n`th event of `kind` on `ticket`; returns it as (new, detail).
    fn wait_event(&self, ticket: i64, kind: &str, n: usize) -> (Option<String>, Option<String>) {
        wait_until(
            Duration::from_secs(20),
            &format!("event {kind} #{n} on ticket {ticket}"),
            || {
                self.inst
                    .events(ticket)
                    .into_iter()
                    .filter(|(k, _, _)| k == kind)
                    .nth(n - 1)
                    .map(|(_, new, detail)| (new, detail))
            },
        )
    }

    /// Asserts that no event after the first `from` changed the ticket or mailed the
    /// customer.
    fn assert_no_change_since(&self, ticket: i64, from: usize) {
        let events = self.inst.events(ticket);
        let changes: Vec<_> = events
            .iter()
            .skip(from)
            .filter(|(k, _, _)| CHANGES.contains(&k.as_str()))
            .collect();
        assert!(
            changes.is_empty(),
            "nothing may change: {changes:?} in {events:?}"
        );
    }
}

/// The `n` refusals (`command-refused` mails) in `agent`'s mailbox for the ticket `tag`.
fn refusals(agent: &str, n: usize, tag: &str) -> Vec<Parsed> {
    wait_mail_where(agent, n, "refusal", |m| {
        m.subject.starts_with("Refused:") && m.subject.contains(tag)
    })
}

/// What was queued but not yet sent has had its chance to arrive.
fn settle() {
    std::thread::sleep(Duration::from_secs(2));
}

fn mailbox_count(who: &str) -> usize {
    Imap::login(who).count()
}

/// Issue 10 test 1: `From: <agent>`, the tag, `#cc attacker`, `#priority urgent` and an
/// answer, sent through Postfix by the attacker.
fn forged_agent_from_changes_nothing(extra_top: &str) {
    let lab = Lab::new(extra_top);
    let _daemon = lab.inst.start();
    let (ticket, tag) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let before = lab.inst.events(ticket).len();
    let alice_before = mailbox_count(&lab.alice);

    smtp_send(
        &lab.attacker,
        &[lab.support()],
        &lab.forged_from_alice(&tag, "", &lab.takeover_body()),
    );

    let (_, reason) = lab.wait_event(ticket, "message.unverified", 1);
    let reason = reason.expect("the reason is recorded");
    assert!(reason.contains("no reply token"), "{reason}");
    // The real Alice is told, at her own address, what was refused.
    let refusal = refusals(&lab.alice, 1, &tag).remove(0);
    assert!(
        refusal.text.contains("#priority urgent") && refusal.text.contains("#cc"),
        "{}",
        refusal.text
    );
    assert_eq!(
        refusal.to.first().map(|p| p.address.as_str()),
        Some(lab.alice.as_str())
    );
    settle();

    lab.assert_no_change_since(ticket, before);
    assert_eq!(
        lab.count(ticket, "command.refused"),
        2,
        "one per command line"
    );
    let t = lab.inst.ticket(ticket);
    assert_eq!(
        (t.ticket.status.as_str(), t.ticket.priority.as_str()),
        ("new", "normal")
    );
    assert!(
        t.participants.iter().all(|p| p.address != lab.attacker),
        "the attacker is no participant: {:?}",
        t.participants
    );
    let kept = t
        .messages
        .iter()
        .find(|m| m.text.contains("new account"))
        .expect("the forged mail is kept on the ticket");
    assert!(
        kept.unverified && kept.audience == "internal",
        "kept as an unverified internal note: {kept:?}"
    );
    assert_eq!(
        mailbox_count(&lab.customer),
        1,
        "the customer got the acknowledgement and nothing of the forged mail"
    );
    assert_eq!(mailbox_count(&lab.attacker), 0, "the attacker got nothing");
    assert_eq!(
        mailbox_count(&lab.alice),
        alice_before + 1,
        "Alice got the refusal"
    );
}

#[test]
fn forged_agent_from_with_the_tag_changes_nothing_without_trusted_authserv_id() {
    forged_agent_from_changes_nothing("");
}

#[test]
fn forged_agent_from_with_the_tag_changes_nothing_with_trusted_authserv_id() {
    forged_agent_from_changes_nothing(&format!("trusted_authserv_id = \"{MX}\""));
}

/// Issue 10 test 2: the attacker writes the MX's `Authentication-Results` into his own
/// mail. Postfix's and Dovecot's `Received` lines end up above it: it is the sender's,
/// ignored and recorded as a forgery.
#[test]
fn forged_authentication_results_below_postfix_received_is_ignored_and_recorded() {
    let lab = Lab::new(&format!("trusted_authserv_id = \"{MX}\""));
    let _daemon = lab.inst.start();
    let (ticket, tag) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let before = lab.inst.events(ticket).len();

    let forged_header = format!(
        "Authentication-Results: {MX};\r\n\tdkim=pass header.d=example.test header.s=mail;\r\n\tdmarc=pass (p=reject) header.from=example.test\r\n"
    );
    let raw = lab.forged_from_alice(&tag, &forged_header, &lab.takeover_body());
    smtp_send(&lab.attacker, &[lab.support()], &raw);

    lab.wait_event(ticket, "message.unverified", 1);
    let (_, forged) = lab.wait_event(ticket, "auth.forged", 1);
    assert!(forged.is_some(), "the forgery is described");
    let stored = lab
        .inst
        .ticket(ticket)
        .messages
        .into_iter()
        .find(|m| m.text.contains("new account"))
        .expect("the forged mail is kept");
    let raw = lab
        .inst
        .reader()
        .raw_message(TicketId::new(ticket), stored.id)
        .unwrap()
        .expect("raw kept");
    let raw = String::from_utf8_lossy(&raw);
    let received = raw.find("Received:").expect("Postfix's Received line");
    let header = raw.find("Authentication-Results:").unwrap();
    assert!(
        received < header,
        "the test is what it claims: the forged header is below a Received line\n{raw}"
    );
    assert!(stored.unverified && stored.audience == "internal");
    refusals(&lab.alice, 1, &tag);
    settle();

    lab.assert_no_change_since(ticket, before);
    assert_eq!(lab.inst.ticket(ticket).ticket.priority, "normal");
    assert_eq!(
        mailbox_count(&lab.customer),
        1,
        "nothing reached the customer"
    );
    assert_eq!(
        mailbox_count(&lab.attacker),
        0,
        "nothing reached the attacker"
    );
}

/// `token` with the last character of its mac changed.
fn flip_last_mac_char(token: &str) -> String {
    let (local, domain) = token.rsplit_once('@').unwrap();
    let mut chars: Vec<char> = local.chars().collect();
    let last = chars.last_mut().unwrap();
    *last = if *last == '0' { '1' } else { '0' };
    format!("{}@{domain}", chars.into_iter().collect::<String>())
}

/// Issue 10 test 3: the agent's mail client replies to the relay's `Reply-To` (the reply
/// token): it acts with no `trusted_authserv_id`. Another ticket's token, another
/// agent's token and a damaged token are each refused, and the agent is told.
#[test]
fn reply_to_the_relay_token_acts_and_wrong_tokens_are_refused() {
    let lab = Lab::new("");
    let _daemon = lab.inst.start();
    let (a, tag_a) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let other = unique("otto", "customer.test");
    let (b, tag_b) = lab.open_ticket(&other, "Invoice 4712 is missing");

    let relay_a = lab.relay(&lab.alice, &tag_a);
    let token_a = reply_address(&relay_a);
    let (local, domain) = lab.support().split_once('@').unwrap();
    let prefix = format!("{local}+r-{a}-alice-");
    let mac = token_a
        .strip_prefix(&prefix)
        .and_then(|t| t.strip_suffix(&format!("@{domain}")))
        .unwrap_or_else(|| panic!("{token_a} is {prefix}<mac>@{domain}"));
    assert!(
        mac.len() == 16
            && mac
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_uppercase()),
        "{token_a}"
    );
    let token_b = reply_address(&lab.relay(&lab.alice, &tag_b));
    let bobs_a = reply_address(&lab.relay(&lab.bob, &tag_a));
    assert!(bobs_a.contains(&format!("+r-{a}-bob-")), "{bobs_a}");

    // Alice's mail client: Reply to the relay.
    let to = reply_by_mail(
        &lab.alice,
        &relay_a,
        "#priority high\n\nHello Jane, the corrected invoice is on its way.\n",
        "",
    );
    assert_eq!(to, token_a);
    wait_until(Duration::from_secs(20), "priority high", || {
        (lab.inst.ticket(a).ticket.priority == "high").then_some(())
    });
    let answer = wait_mail(&lab.customer, 2).remove(1);
    assert!(
        answer.text.contains("corrected invoice is on its way"),
        "{}",
        answer.text
    );
    assert_eq!(lab.count(a, "message.unverified"), 0);
    let before = lab.inst.events(a).len();

    let wrong = [
        (token_b, format!("reply token is for ticket #{b}")),
        (bobs_a, "reply token names agent bob".to_owned()),
        (
            flip_last_mac_char(&token_a),
            "reply token is forged or damaged".to_owned(),
        ),
    ];
    for (i, (to, why)) in wrong.iter().enumerate() {
        let n = i + 1;
        smtp_send(
            &lab.alice,
            &[to],
            &reply_mail_to(
                &lab.alice,
                to,
                &relay_a,
                &format!("#priority low\n\nWrong token {n}: please ignore.\n"),
                "",
            ),
        );
        let (_, reason) = lab.wait_event(a, "message.unverified", n);
        let reason = reason.unwrap_or_default();
        assert!(reason.contains(why.as_str()), "{to}: {why} in {reason}");
        let told = refusals(&lab.alice, n, &tag_a).remove(i);
        assert!(told.text.contains("#priority low"), "{}", told.text);
    }
    settle();

    lab.assert_no_change_since(a, before);
    let t = lab.inst.ticket(a);
    assert_eq!(
        t.ticket.priority, "high",
        "no refused #priority low took effect"
    );
    assert_eq!(lab.count(a, "priority"), 1);
    assert_eq!(lab.count(a, "command.refused"), 3);
    assert_eq!(t.messages.iter().filter(|m| m.unverified).count(), 3);
    assert_eq!(
        mailbox_count(&lab.customer),
        2,
        "the acknowledgement and the one proven answer"
    );
    assert_eq!(mailbox_count(&other), 1, "ticket B's customer got nothing");
    assert_eq!(lab.count(b, "priority"), 0, "ticket B untouched");
}

/// An agent's fresh mail (no token: a new mail, the tag typed into the subject), as it
/// lands in the support mailbox; `auth` is what the receiving MX put on top.
fn fresh_agent_mail(lab: &Lab, tag: &str, auth: &str) -> Vec<u8> {
    format!(
        "{auth}Received: from laptop.example.test (laptop.example.test [192.0.2.10])\r\n\tby smtp.example.test with ESMTPSA id 4711\r\n\tfor <{s}>; Wed, 25 Nov 2026 10:00:00 +0000\r\nFrom: Alice Agent <{alice}>\r\nTo: {s}\r\nSubject: {tag} Invoice 4711 is wrong\r\nMessage-ID: <{id}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#priority high\r\n\r\nHello Jane, I checked the invoice: it is corrected.\r\n",
        s = lab.support(),
        alice = lab.alice,
        id = unique("fresh", "example.test"),
    )
    .into_bytes()
}

/// Issue 10 test 4, first half: with a trusted `dkim=pass` on top, a fresh mail acts.
#[test]
fn fresh_agent_mail_with_trusted_dkim_pass_on_top_acts() {
    let lab = Lab::new(&format!("trusted_authserv_id = \"{MX}\""));
    let _daemon = lab.inst.start();
    let (ticket, tag) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let auth = format!(
        "Authentication-Results: {MX};\r\n\tdkim=pass header.d=example.test header.s=mail header.b=K2x0aXVm;\r\n\tspf=pass smtp.mailfrom=example.test\r\n"
    );
    Imap::login(lab.support()).append(&fresh_agent_mail(&lab, &tag, &auth));

    let answer = wait_mail(&lab.customer, 2).remove(1);
    assert!(answer.text.contains("it is corrected"), "{}", answer.text);
    let t = lab.inst.ticket(ticket);
    assert_eq!(t.ticket.priority, "high");
    assert_eq!(lab.count(ticket, "message.unverified"), 0);
    assert_eq!(lab.count(ticket, "auth.forged"), 0);
    settle();
    assert!(
        refusals_now(&lab.alice).is_empty(),
        "no refusal for a proven mail"
    );
}

/// Issue 10 test 4, second half: the same fresh mail without the MX's header.
#[test]
fn fresh_agent_mail_without_authentication_results_is_an_unverified_note() {
    let lab = Lab::new(&format!("trusted_authserv_id = \"{MX}\""));
    let _daemon = lab.inst.start();
    let (ticket, tag) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let before = lab.inst.events(ticket).len();
    Imap::login(lab.support()).append(&fresh_agent_mail(&lab, &tag, ""));

    let (_, reason) = lab.wait_event(ticket, "message.unverified", 1);
    assert!(reason.is_some());
    let told = refusals(&lab.alice, 1, &tag).remove(0);
    assert!(told.text.contains("#priority high"), "{}", told.text);
    settle();
    lab.assert_no_change_since(ticket, before);
    let t = lab.inst.ticket(ticket);
    assert_eq!(t.ticket.priority, "normal");
    let kept = t
        .messages
        .iter()
        .find(|m| m.text.contains("it is corrected"))
        .expect("kept on the ticket");
    assert!(kept.unverified && kept.audience == "internal", "{kept:?}");
    assert_eq!(
        mailbox_count(&lab.customer),
        1,
        "nothing reached the customer"
    );
}

/// The refusals in `who`'s mailbox now.
fn refusals_now(who: &str) -> Vec<String> {
    inbox(who)
        .into_iter()
        .map(|(s, _)| s)
        .filter(|s| s.starts_with("Refused:"))
        .collect()
}

/// A mail in the requester's name as it lands in the support mailbox with the MX's
/// verdict `dmarc=fail` on top.
fn dmarc_fail_mail(lab: &Lab, subject: &str, references: &str, body: &str) -> Vec<u8> {
    let domain = lab.customer.rsplit_once('@').unwrap().1;
    format!(
        "Authentication-Results: {MX};\r\n\tspf=fail smtp.mailfrom={domain};\r\n\tdkim=none;\r\n\tdmarc=fail (p=reject dis=none) header.from={domain}\r\nReceived: from mail.evil.test (mail.evil.test [198.51.100.7])\r\n\tby {MX} with ESMTP id 9F1\r\n\tfor <{s}>; Wed, 25 Nov 2026 10:00:00 +0000\r\n{references}From: Jane Doe <{c}>\r\nTo: {s}\r\nSubject: {subject}\r\nMessage-ID: <{id}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        s = lab.support(),
        c = lab.customer,
        id = unique("spoof", "evil.test"),
    )
    .into_bytes()
}

/// Issue 10 test 6: a trusted `dmarc=fail` for the requester's domain, with the tag: not
/// the requester. A new ticket, linked and flagged; the requester's ticket untouched.
#[test]
fn dmarc_fail_for_the_requester_domain_opens_a_new_linked_flagged_ticket() {
    let lab = Lab::new(&format!("trusted_authserv_id = \"{MX}\""));
    let _daemon = lab.inst.start();
    let (ticket, tag) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let original = lab.inst.ticket(ticket);

    Imap::login(lab.support()).append(&dmarc_fail_mail(
        &lab,
        &format!("Re: {tag} Invoice 4711 is wrong"),
        "",
        "Please use my new bank account from now on.",
    ));

    let new = wait_until(Duration::from_secs(20), "a second ticket", || {
        lab.inst
            .tickets()
            .into_iter()
            .find(|t| t.id.get() != ticket)
    });
    assert_eq!(new.linked_to, Some(ticket), "{new:?}");
    assert!(new.flagged.is_some(), "flagged: {new:?}");
    let events = lab.inst.events(new.id.get());
    assert!(
        events
            .iter()
            .any(|(k, n, _)| k == "ticket.linked"
                && n.as_deref() == Some(ticket.to_string().as_str())),
        "{events:?}"
    );
    settle();
    let now = lab.inst.ticket(ticket);
    assert_eq!(
        now.messages.len(),
        original.messages.len(),
        "no message joined the requester's ticket"
    );
    assert_eq!(
        now.events.len(),
        original.events.len(),
        "no event on the requester's ticket: {:?}",
        now.events
    );
    assert_eq!(now.ticket.status, original.ticket.status);
    assert!(now.ticket.flagged.is_none());
    let kept = lab.inst.ticket(new.id.get());
    assert!(kept
        .messages
        .iter()
        .any(|m| m.text.contains("new bank account")));
    // The forged sender gets no acknowledgement: it would reach the real customer.
    assert!(
        kept.events
            .iter()
            .any(|e| e.kind.as_str() == "acknowledgement.skipped"),
        "{:?}",
        kept.events
    );
    assert_eq!(
        inbox(&lab.customer).len(),
        1,
        "the real customer has only her own acknowledgement"
    );
}

/// Issue 10 test 6, the other rule: with one of our signed Message-IDs in In-Reply-To the
/// reference is the proof; the mail joins the ticket, and the ticket is flagged.
#[test]
fn dmarc_fail_with_our_signed_reference_joins_flagged() {
    let lab = Lab::new(&format!("trusted_authserv_id = \"{MX}\""));
    let _daemon = lab.inst.start();
    let (ticket, tag) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let ack = wait_mail(&lab.customer, 1).remove(0);
    let id = ack.message_id.bracketed();
    let messages = lab.inst.ticket(ticket).messages.len();

    Imap::login(lab.support()).append(&dmarc_fail_mail(
        &lab,
        &format!("Re: {tag} Invoice 4711 is wrong"),
        &format!("In-Reply-To: {id}\r\nReferences: {id}\r\n"),
        "Here is the order number you asked for: 4711.",
    ));

    wait_until(Duration::from_secs(20), "the reply on the ticket", || {
        (lab.inst.ticket(ticket).messages.len() > messages).then_some(())
    });
    let t = lab.inst.ticket(ticket);
    assert!(t.ticket.flagged.is_some(), "flagged: {:?}", t.ticket);
    assert!(t.messages.iter().any(|m| m.text.contains("order number")));
    assert_eq!(lab.inst.tickets().len(), 1, "no new ticket");
}

/// A delivery status notification (RFC 3464) as Postfix writes one, saying `rcpt`
/// bounced; `returned` are the headers of the mail it claims came back.
fn dsn(to: &str, rcpt: &str, returned: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.attacker.test>\r\nTo: {to}\r\nSubject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B0UND\"\r\n\r\n--B0UND\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is the mail system at host mx.attacker.test.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n<{rcpt}>: host mx.customer.test said: 550 5.1.1 User unknown\r\n\r\n--B0UND\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.attacker.test\r\nArrival-Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\nFinal-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\r\n\r\n--B0UND\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n{returned}\r\n--B0UND--\r\n",
        id = unique("dsn", "mx.attacker.test"),
    )
    .into_bytes()
}

/// Issue 10 test 7, first half: forged bounces naming the requester do not silence her.
/// Three forgeries, sent through Postfix with the null sender: one returning a mail of
/// unknown origin, one returning our acknowledgement's Message-ID with one mac character
/// changed, and one returning the attacker's own acknowledgement (a signed Message-ID of
/// ours, but the requester was never a recipient of it).
#[test]
fn forged_dsns_do_not_silence_the_requester() {
    let lab = Lab::new("");
    let _daemon = lab.inst.start();
    let (ticket, tag) = lab.open_ticket(&lab.customer, "Invoice 4711 is wrong");
    let ack = wait_mail(&lab.customer, 1).remove(0);
    let (own, _) = lab.open_ticket(&lab.attacker, "Where is my parcel");
    let own_ack = wait_mail(&lab.attacker, 1).remove(0);

    let returned = |id: &str| {
        format!(
            "From: ACME Support <{s}>\r\nTo: {c}\r\nSubject: {tag} Invoice 4711 is wrong\r\nMessage-ID: {id}\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\n",
            s = lab.support(),
            c = lab.customer,
        )
    };
    let ours = ack.message_id.bracketed();
    let damaged = {
        let at = ours.rfind('@').unwrap();
        let (head, tail) = ours.split_at(at);
        let last = head.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        format!("{}{flipped}{tail}", &head[..head.len() - 1])
    };
    assert_ne!(damaged, ours);
    let incoming = lab.inst.status().messages.incoming;
    for id in [
        format!("<{}>", unique("unknown", "customer.test")),
        damaged,
        own_ack.message_id.bracketed(),
    ] {
        smtp_send(
            "",
            &[lab.support()],
            &dsn(lab.support(), &lab.customer, &returned(&id)),
        );
    }
    wait_until(Duration::from_secs(20), "three DSNs recorded", || {
        (lab.inst.status().messages.incoming >= incoming + 3).then_some(())
    });
    assert_eq!(lab.count(ticket, "bounce"), 0);
    let marked = lab.inst.reader().undeliverable().unwrap();
    assert!(
        marked.iter().all(|(a, _, _)| a != &lab.customer),
        "the requester is not marked: {marked:?}"
    );

    // An agent closes the ticket (the admin path): the requester gets the status mail.
    let desk = lab.inst.desk(Arc::new(postdesk::clock::SystemClock));
    Instance::set_status(
        &desk,
        TicketId::new(ticket),
        Status::Closed,
        "alice",
        Utc::now(),
    );
    let status = wait_mail(&lab.customer, 2).remove(1);
    assert!(status.subject.contains(&tag), "{}", status.subject);
    assert!(status.subject.contains("closed"), "{}", status.subject);
    assert_eq!(lab.count(ticket, "notification.held"), 0);
    // The one that came back on the attacker's own ticket is recorded there, nothing more.
    let (_, detail) = lab.wait_event(own, "bounce.unverified", 1);
    assert!(detail.is_some());
    assert_eq!(lab.count(own, "bounce"), 0);
}

/// Issue 10 test 7, second half: a real bounce, written by Postfix itself for our
/// acknowledgement, still marks the address, and the next status mail is held.
#[test]
fn postfix_bounce_still_marks_the_address() {
    let lab = Lab::new("");
    let _daemon = lab.inst.start();
    let domain = std::env::var("MAILSTACK_BOUNCE_DOMAIN").unwrap_or_else(|_| "bounce.test".into());
    let gone = unique("gone", &domain);
    smtp_send(
        &gone,
        &[lab.support()],
        &simple_mail(
            &gone,
            lab.support(),
            "Order status",
            "Where is my order?",
            &new_message_id(),
            "",
        ),
    );
    let ticket = wait_until(Duration::from_secs(30), "the ticket", || {
        lab.inst
            .tickets()
            .into_iter()
            .find(|t| t.requester.as_deref() == Some(gone.as_str()))
    })
    .id
    .get();
    let (rcpt, detail) = lab.wait_event(ticket, "bounce", 1);
    assert_eq!(rcpt.as_deref(), Some(gone.as_str()));
    assert!(
        detail.as_deref().unwrap_or("").contains("5.1.1"),
        "{detail:?}"
    );
    assert_eq!(lab.count(ticket, "bounce.unverified"), 0);
    let marked = lab.inst.reader().undeliverable().unwrap();
    assert!(marked.iter().any(|(a, _, _)| a == &gone), "{marked:?}");

    let desk = lab.inst.desk(Arc::new(postdesk::clock::SystemClock));
    Instance::set_status(
        &desk,
        TicketId::new(ticket),
        Status::Closed,
        "alice",
        Utc::now(),
    );
    let (kind, why) = lab.wait_event(ticket, "notification.held", 1);
    assert_eq!(kind.as_deref(), Some("status-change"));
    assert!(why.unwrap_or_default().contains("undeliverable"));
}
