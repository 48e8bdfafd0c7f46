//! What an agent's Reply really sends (issue 11), on the real Dovecot and Postfix: the
//! people a customer copies, and (with the client fixtures) what survives of the quote.
//!
//! Agents act only as a mail client would: Reply to a relay they received, to its
//! `Reply-To` (their reply token). Every check is on the real mailboxes of the requester,
//! the people copied and the agent, plus the ticket's events.

mod common;

use std::time::Duration;

use common::*;
use postdesk::mail::parse::Parsed;

/// A helpdesk with one agent (alice) in its queue.
struct Lab {
    inst: Instance,
    alice: String,
}

impl Lab {
    fn new() -> Lab {
        let alice = unique("agent-alice", "example.test");
        let inst = Instance::new(Setup {
            tail: format!(
                "\n[[agent]]\nname = \"alice\"\ndisplay_name = \"Alice Agent\"\naddresses = [\"{alice}\"]\nqueues = [\"support\"]\n"
            ),
            ..Setup::default()
        });
        Lab { inst, alice }
    }

    fn support(&self) -> &str {
        &self.inst.support[0]
    }

    /// `Jane Doe <customer>` writes a new request; waits for the ticket, her
    /// acknowledgement and the relay to alice. Returns (ticket id, tag, ack, relay).
    fn open_ticket(&self, customer: &str, subject: &str) -> (i64, String, Parsed, Parsed) {
        smtp_send(
            customer,
            &[self.support()],
            &simple_mail(
                &format!("Jane Doe <{customer}>"),
                self.support(),
                subject,
                "Hello,\nthe printer on floor 3 prints only blank pages.\n",
                &new_message_id(),
                "",
            ),
        );
        let t = wait_until(Duration::from_secs(20), "the ticket", || {
            self.inst
                .tickets()
                .into_iter()
                .find(|t| t.requester.as_deref() == Some(customer))
        });
        let ack = self
            .wait_ours(customer, 1, "acknowledgement", |_| true)
            .remove(0);
        let relay = self.relay(&t.tag, 1, |_| true);
        (t.id.get(), t.tag, ack, relay)
    }

    /// Mail in `who`'s mailbox from our support address that `keep` accepts: waits for
    /// `n` of them, returns them all (in UID order).
    fn wait_ours(
        &self,
        who: &str,
        n: usize,
        what: &str,
        keep: impl Fn(&Parsed) -> bool,
    ) -> Vec<Parsed> {
        let support = self.support().to_owned();
        wait_mail_where(who, n, what, move |m| {
            m.from.as_ref().map(|f| f.address.as_str()) == Some(support.as_str()) && keep(m)
        })
    }

    /// Mail in `who`'s mailbox from our support address that `keep` accepts, now.
    fn ours_now(&self, who: &str, keep: impl Fn(&Parsed) -> bool) -> Vec<Parsed> {
        inbox(who)
            .into_iter()
            .map(|(_, raw)| postdesk::mail::parse::message(&raw, 1 << 24).unwrap())
            .filter(|m| m.from.as_ref().map(|f| f.address.as_str()) == Some(self.support()))
            .filter(|m| keep(m))
            .collect()
    }

    /// The `n`th relay of ticket `tag` in alice's mailbox that `keep` accepts.
    fn relay(&self, tag: &str, n: usize, keep: impl Fn(&Parsed) -> bool) -> Parsed {
        self.wait_ours(&self.alice, n, "relay", |m| {
            m.subject.starts_with(tag) && m.text.contains("Requester:") && keep(m)
        })
        .remove(n - 1)
    }

    fn events(&self, ticket: i64, kind: &str) -> Vec<(Option<String>, Option<String>)> {
        self.inst
            .ticket(ticket)
            .events
            .into_iter()
            .filter(|e| e.kind.as_str() == kind)
            .map(|e| (e.old, e.new))
            .collect()
    }
}

/// The answers (our mail whose text contains `needle`) in `who`'s mailbox.
fn answers<'a>(lab: &'a Lab, who: &str, needle: &'a str) -> Vec<Parsed> {
    lab.ours_now(who, |m| m.text.contains(needle))
}

/// Waits for exactly one answer containing `needle` in `who`'s mailbox; returns it.
fn one_answer(lab: &Lab, who: &str, needle: &str) -> Parsed {
    let mut got = lab.wait_ours(who, 1, needle, |m| m.text.contains(needle));
    assert_eq!(got.len(), 1, "exactly one mail with {needle:?} for {who}");
    got.remove(0)
}

fn addresses(people: &[postdesk::mail::parse::Person]) -> Vec<&str> {
    people.iter().map(|p| p.address.as_str()).collect()
}

/// What was queued but not yet sent has had its chance to arrive.
fn settle() {
    std::thread::sleep(Duration::from_secs(2));
}

/// The relay's line that starts with `label`, or "".
fn line<'a>(relay: &'a Parsed, label: &str) -> &'a str {
    relay
        .text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or("")
}

/// Issue 11 test 3: a customer's reply-all that copies `Tom Boss`: Tom is a participant,
/// the relay lists him, the agent's plain reply reaches Jane and Tom; when Tom writes,
/// the relay names him as the writer and the answer reaches both. Then `#to` narrows one
/// answer to Jane, and `#cc -tom@…` takes Tom off the ticket.
#[test]
fn reply_all_with_a_new_cc_makes_a_participant_who_gets_the_answers() {
    let lab = Lab::new();
    let _daemon = lab.inst.start();
    let jane = unique("jane", "customer.test");
    let tom = unique("tom", "customer.test");
    let (ticket, tag, ack, _) = lab.open_ticket(&jane, "Printer prints blank pages");

    // Jane's reply-all to the acknowledgement, copying her boss: To support, Cc Tom, and
    // delivered to both, as her mail client sends it.
    let support = lab.support().to_owned();
    let raw = reply_mail_to(
        &format!("Jane Doe <{jane}>"),
        &format!("ACME Support <{support}>"),
        &ack,
        "Adding my boss, he needs the printer for the board meeting.\n\n> thank you for writing",
        &format!("Cc: Tom Boss <{tom}>\r\n"),
    );
    smtp_send(&jane, &[&support, &tom], &raw);

    wait_until(Duration::from_secs(20), "Tom becomes a participant", || {
        lab.inst
            .ticket(ticket)
            .participants
            .iter()
            .any(|p| p.address == tom && p.role == "cc")
            .then_some(())
    });
    assert_eq!(
        lab.events(ticket, "cc"),
        vec![(None, Some(tom.clone()))],
        "one cc event, for Tom only (not for the support address)"
    );
    let relay = lab.relay(&tag, 2, |_| true);
    assert!(
        relay.text.contains("board meeting"),
        "the second relay is Jane's mail: {}",
        relay.text
    );
    assert!(
        line(&relay, "Copied:").contains(&tom),
        "the relay lists Tom: {}",
        relay.text
    );
    assert!(line(&relay, "Requester:").contains(&jane), "{}", relay.text);
    assert!(
        !relay.text.contains("Written by:"),
        "Jane wrote it: {}",
        relay.text
    );
    assert_eq!(
        relay.from.as_ref().unwrap().name.as_deref(),
        Some("Jane Doe via ACME Support")
    );

    // Alice's plain Reply to that relay: the answer reaches Jane (To) and Tom (Cc).
    reply_by_mail(
        &lab.alice,
        &relay,
        "Hello Jane,\nthe toner cartridge was empty; a technician is on the way.\n\nAlice",
        "",
    );
    let to_jane = one_answer(&lab, &jane, "technician is on the way");
    let to_tom = one_answer(&lab, &tom, "technician is on the way");
    for m in [&to_jane, &to_tom] {
        assert_eq!(addresses(&m.to), vec![jane.as_str()], "{:?}", m.to);
        assert_eq!(addresses(&m.cc), vec![tom.as_str()], "{:?}", m.cc);
        assert!(m.subject.contains(&tag), "{}", m.subject);
        assert!(!m.text.contains("Requester:"), "{}", m.text);
    }
    assert_eq!(
        to_jane.message_id, to_tom.message_id,
        "one answer, both copies"
    );

    // Tom replies to the answer he got (a signed reference), only to support.
    let tom_raw = reply_mail_to(
        &format!("Tom Boss <{tom}>"),
        &format!("ACME Support <{support}>"),
        &to_tom,
        "Any news? The board meets at 3 pm.\n\n> the toner cartridge was empty",
        "",
    );
    smtp_send(&tom, &[&support], &tom_raw);
    let relay = lab.relay(&tag, 1, |m| m.text.contains("board meets at 3 pm"));
    let written = line(&relay, "Written by:");
    assert!(
        written.contains("Tom Boss") && written.contains(&tom),
        "the relay names Tom as the writer: {}",
        relay.text
    );
    assert!(
        line(&relay, "Requester:").contains(&jane),
        "Jane is still the requester: {}",
        relay.text
    );
    assert_eq!(
        relay.from.as_ref().unwrap().name.as_deref(),
        Some("Tom Boss via ACME Support")
    );
    assert_eq!(lab.inst.tickets().len(), 1, "Tom's mail joined the ticket");
    reply_by_mail(
        &lab.alice,
        &relay,
        "Tom, the printer works again.\n\nAlice",
        "",
    );
    for who in [&jane, &tom] {
        let m = one_answer(&lab, who, "the printer works again");
        assert_eq!(addresses(&m.to), vec![jane.as_str()], "{:?}", m.to);
        assert_eq!(addresses(&m.cc), vec![tom.as_str()], "{:?}", m.cc);
    }

    // `#to jane`: this answer to Jane only.
    reply_by_mail(
        &lab.alice,
        &relay,
        &format!("#to {jane}\n\nJane, the invoice for the cartridge follows.\n\nAlice"),
        "",
    );
    let m = one_answer(&lab, &jane, "invoice for the cartridge");
    assert_eq!(addresses(&m.to), vec![jane.as_str()]);
    assert!(m.cc.is_empty(), "{:?}", m.cc);

    // `#cc -tom`: Tom is copied no more, on this answer and after it.
    reply_by_mail(
        &lab.alice,
        &relay,
        &format!("#cc -{tom}\n\nJane, we will keep Tom out of the billing.\n\nAlice"),
        "",
    );
    let m = one_answer(&lab, &jane, "keep Tom out of the billing");
    assert!(m.cc.is_empty(), "{:?}", m.cc);
    wait_until(Duration::from_secs(20), "Tom removed", || {
        lab.inst
            .ticket(ticket)
            .participants
            .iter()
            .all(|p| p.address != tom)
            .then_some(())
    });
    assert_eq!(
        lab.events(ticket, "cc"),
        vec![(None, Some(tom.clone())), (Some(tom.clone()), None)],
        "added, then removed"
    );
    reply_by_mail(&lab.alice, &relay, "Jane, all done.\n\nAlice", "");
    let m = one_answer(&lab, &jane, "all done");
    assert!(m.cc.is_empty(), "{:?}", m.cc);

    // Jane's next mail: the relay no longer lists Tom.
    smtp_send(
        &jane,
        &[&support],
        &reply_mail_to(&jane, &support, &m, "Thank you!", ""),
    );
    let relay = lab.relay(&tag, 1, |m| m.text.contains("Thank you!"));
    assert!(!relay.text.contains("Copied:"), "{}", relay.text);

    settle();
    for needle in ["invoice for the cartridge", "keep Tom out", "all done"] {
        assert!(
            answers(&lab, &tom, needle).is_empty(),
            "Tom got no {needle:?}"
        );
    }
    assert_eq!(
        lab.ours_now(&tom, |_| true).len(),
        2,
        "Tom got exactly the two answers sent while he was copied"
    );
    assert_eq!(
        lab.ours_now(&jane, |_| true).len(),
        6,
        "Jane got the acknowledgement and the five answers, each once"
    );
}
