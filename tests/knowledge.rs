//! The knowledge base and self-service by mail (issue 16), on the real Dovecot and
//! Postfix: `#kb` and `#macro` in agents' replies, status requests, `solved`, and the
//! similar resolved tickets in the relay.

mod common;

use std::time::Duration;

use common::*;
use postdesk::mail::parse::Parsed;

/// An instance with agent alice, the articles `reset-printer` and `paper-jam`, and the
/// macro `done`; `queue_extra` goes into the `[[queue]]`.
struct Desk {
    inst: Instance,
    alice: String,
    _kb: tempfile::TempDir,
}

fn desk(queue_extra: &str) -> Desk {
    let kb = tempfile::tempdir().unwrap();
    std::fs::write(
        kb.path().join("reset-printer.md"),
        "---\ntitle: Reset the office printer\ntags: printer, reset\nlanguage: en\n---\n\
         Hold the power button for ten seconds, then wait for the green light.\n",
    )
    .unwrap();
    std::fs::write(
        kb.path().join("paper-jam.md"),
        "---\ntitle: Paper jam in the printer\ntags: jam\n---\n\
         Open tray 2, pull the jammed paper out slowly and close the tray.\n",
    )
    .unwrap();
    let alice = unique("agent-alice", "example.test");
    let inst = Instance::new(Setup {
        extra_top: format!("kb_dir = {:?}\n", kb.path().display().to_string()),
        queue_extra: queue_extra.to_owned(),
        tail: format!(
            "\n[[agent]]\nname = \"alice\"\ndisplay_name = \"Alice Agent\"\naddresses = [\"{alice}\"]\nqueues = [\"support\"]\n\
             \n[[macro]]\nname = \"done\"\ncommands = [\"#status resolved\"]\ntext = \"Glad it works again: write back any time.\"\n"
        ),
        ..Setup::default()
    });
    Desk {
        inst,
        alice,
        _kb: kb,
    }
}

/// `from` writes a new mail with `subject` to the support address.
fn write_in(d: &Desk, from: &str, subject: &str, body: &str) {
    smtp_send(
        from,
        &[&d.inst.support[0]],
        &simple_mail(
            &format!("Jane Doe <{from}>"),
            &d.inst.support[0],
            subject,
            body,
            &new_message_id(),
            "",
        ),
    );
}

/// The customer writes; returns the new ticket's id (the customer's `n`-th ticket).
fn new_ticket(d: &Desk, customer: &str, subject: &str, body: &str, n: usize) -> i64 {
    write_in(d, customer, subject, body);
    let mine = wait_until(Duration::from_secs(15), "ticket", || {
        let mine: Vec<i64> = d
            .inst
            .tickets()
            .into_iter()
            .filter(|t| t.requester.as_deref() == Some(customer))
            .map(|t| t.id.get())
            .collect();
        (mine.len() >= n).then_some(mine)
    });
    *mine.iter().max().unwrap()
}

/// Alice's relay of ticket `id` (its subject carries the tag).
fn relay_of(d: &Desk, id: i64) -> Parsed {
    let tag = format!("#{id}]");
    wait_mail_where(&d.alice, 1, "relay", |m| {
        m.subject.contains(&tag) && m.text.contains("-- reply above this line --")
    })
    .remove(0)
}

#[test]
fn kb_and_macro_put_text_into_the_answer_and_unknown_names_are_refused() {
    let d = desk("");
    let _daemon = d.inst.start();
    let customer = unique("jane", "customer.test");
    let id = new_ticket(
        &d,
        &customer,
        "Printer frozen",
        "The printer shows an error.\n",
        1,
    );
    let relay = relay_of(&d, id);

    reply_by_mail(
        &d.alice,
        &relay,
        "#kb reset-printer\n\nHello Jane,\nplease try this:\n\n-- \nAlice\n",
        "",
    );
    let answer = wait_mail_where(&customer, 1, "answer", |m| {
        m.text.contains("please try this")
    })
    .remove(0);
    assert!(
        answer
            .text
            .contains("Hold the power button for ten seconds"),
        "the customer's mailbox holds the article text:\n{}",
        answer.text
    );
    assert!(!answer.text.contains("#kb"), "{}", answer.text);

    // An unknown article refuses the mail: nothing reaches the customer, Alice is told.
    reply_by_mail(&d.alice, &relay, "#kb no-such-article\n\nHello Jane\n", "");
    let told = wait_mail_where(&d.alice, 1, "refusal", |m| {
        m.text.contains("unknown article \"no-such-article\"")
    })
    .remove(0);
    assert!(
        told.text.contains("paper-jam, reset-printer"),
        "{}",
        told.text
    );
    let refused = d.inst.events(id);
    assert!(
        refused.iter().any(|(kind, _, _)| kind == "command.refused"),
        "{refused:?}"
    );

    // The macro applies its command and its text.
    reply_by_mail(
        &d.alice,
        &relay,
        "#macro done\n\nThanks for waiting, Jane.\n",
        "",
    );
    let done = wait_mail_where(&customer, 1, "macro answer", |m| {
        m.text.contains("Thanks for waiting")
    })
    .remove(0);
    assert!(
        done.text
            .contains("Glad it works again: write back any time."),
        "{}",
        done.text
    );
    wait_until(Duration::from_secs(10), "resolved", || {
        (d.inst.ticket(id).ticket.status == "resolved").then_some(())
    });
    // Every mail the customer got: the acknowledgement and the two answers, the survey;
    // never the refused one.
    let all = inbox(&customer);
    assert!(
        all.iter()
            .all(|(_, raw)| !String::from_utf8_lossy(raw).contains("no-such-article")),
        "the refused mail reached the customer"
    );
}

#[test]
fn status_by_mail_lists_own_open_tickets_and_opens_none() {
    let d = desk("");
    let _daemon = d.inst.start();
    let customer = unique("jane", "customer.test");
    let a = new_ticket(&d, &customer, "Printer on floor 3", "It is offline.\n", 1);
    let b = new_ticket(&d, &customer, "VPN drops every hour", "Since Monday.\n", 2);
    let stranger = unique("max", "customer.test");
    let theirs = new_ticket(&d, &stranger, "Secret project budget", "Confidential.\n", 1);
    let before = d.inst.tickets().len();

    write_in(&d, &customer, "status", "");
    let list = wait_mail_where(&customer, 1, "status list", |m| {
        m.subject.contains("Your open requests")
    })
    .remove(0);
    for (id, subject) in [(a, "Printer on floor 3"), (b, "VPN drops every hour")] {
        assert!(
            list.text.contains(&format!("[ACME #{id}]")),
            "{}",
            list.text
        );
        assert!(list.text.contains(subject), "{}", list.text);
    }
    assert!(list.text.contains("new, last update"), "{}", list.text);
    assert!(
        !list.text.contains(&format!("#{theirs}]")) && !list.text.contains("Secret"),
        "another customer's ticket is never listed:\n{}",
        list.text
    );
    assert_eq!(list.auto.auto_submitted.as_deref(), Some("auto-replied"));

    // An address with no open ticket is told so, in Chinese for 查询.
    let nobody = unique("nobody", "customer.test");
    write_in(&d, &nobody, "查询", "");
    let none = wait_mail_where(&nobody, 1, "status list", |_| true).remove(0);
    assert!(none.text.contains("目前没有未解决的请求"), "{}", none.text);
    assert!(none.text.contains(&nobody), "{}", none.text);

    assert_eq!(d.inst.tickets().len(), before, "no ticket was opened");
    let (ok, out, err) = d.inst.cli(&["report", "--json"]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["self_service"]["status_requests"], 2, "{out}");
}

#[test]
fn solved_resolves_a_ticket_whose_acknowledgement_listed_articles() {
    let d = desk("kb_in_acknowledgement = true");
    let _daemon = d.inst.start();
    let customer = unique("jane", "customer.test");
    let id = new_ticket(
        &d,
        &customer,
        "Paper jam",
        "There is a paper jam in the printer again.\n",
        1,
    );
    let ack = wait_mail(&customer, 1).remove(0);
    assert!(
        ack.text.contains("These articles may answer your question"),
        "{}",
        ack.text
    );
    assert!(
        ack.text.contains("Paper jam in the printer"),
        "{}",
        ack.text
    );
    let relay = relay_of(&d, id);
    assert!(
        relay.text.contains("KB article: #kb paper-jam"),
        "{}",
        relay.text
    );

    reply_by_mail(&customer, &ack, "solved\n\nThanks, tray 2 it was.\n", "");
    wait_until(Duration::from_secs(15), "resolved by the customer", || {
        (d.inst.ticket(id).ticket.status == "resolved").then_some(())
    });
    let events = d.inst.events(id);
    assert!(
        events.iter().any(|(kind, _, _)| kind == "kb.deflected"),
        "{events:?}"
    );
    // The status mail as usual (the queue's survey replaces "resolved").
    let survey = wait_mail_where(&customer, 1, "survey", |m| m.text.contains("mailto:")).remove(0);
    assert!(
        survey.subject.contains(&format!("#{id}]")),
        "{}",
        survey.subject
    );
    let (ok, out, err) = d.inst.cli(&["report", "--json"]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["self_service"]["deflected"], 1, "{out}");
    assert_eq!(report["self_service"]["articles_suggested"], 1, "{out}");
}

#[test]
fn relay_shows_the_similar_resolved_tickets() {
    let d = desk("");
    let _daemon = d.inst.start();
    let first = unique("jane", "customer.test");
    let old = new_ticket(
        &d,
        &first,
        "Scanner on floor 2 shows E45",
        "The scanner shows error E45 and stops scanning.\n",
        1,
    );
    let relay = relay_of(&d, old);
    reply_by_mail(
        &d.alice,
        &relay,
        "#status resolved\n\nHello Jane,\n\nClean the scanner glass and restart the scanner.\n",
        "",
    );
    wait_until(Duration::from_secs(15), "resolved", || {
        (d.inst.ticket(old).ticket.status == "resolved").then_some(())
    });
    // The writer indexes the request's words in its idle time.
    let words = postdesk::kb::terms("scanner error stops");
    wait_until(Duration::from_secs(15), "indexed", || {
        (!d.inst.reader().similar(&words, None, 3).unwrap().is_empty()).then_some(())
    });

    let second = unique("max", "customer.test");
    let new = new_ticket(
        &d,
        &second,
        "Scanner error again",
        "Our scanner stops with an error after two pages.\n",
        1,
    );
    let relay = relay_of(&d, new);
    let line = relay
        .text
        .lines()
        .find(|l| l.starts_with("Similar:"))
        .unwrap_or_else(|| panic!("no similar line:\n{}", relay.text));
    assert!(line.contains(&format!("[ACME #{old}]")), "{line}");
    assert!(
        line.contains("Scanner on floor 2 shows E45 (resolved)"),
        "{line}"
    );
    assert!(
        line.contains("Clean the scanner glass and restart the scanner."),
        "{line}"
    );

    let (ok, out, err) = d.inst.cli(&["ticket", "show", &new.to_string(), "--json"]);
    assert!(ok, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["similar"][0]["id"], old, "{out}");
    let (ok, out, err) = d.inst.cli(&["ticket", "similar", &new.to_string()]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("[ACME #{old}] Scanner on floor 2")),
        "{out}"
    );
}
