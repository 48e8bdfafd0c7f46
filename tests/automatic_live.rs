//! Automatic mail on the real Dovecot and Postfix (issue 13, test 3).
//!
//! A Lotus Domino text bounce (no RFC 3464 report) and a German out-of-office reply
//! without any RFC 3834 header are APPENDed to the support mailbox of a running daemon;
//! then a customer writes the same out-of-office words as a new request with a question.
//! The two automatic mails are stored once and open no ticket, and their senders' real
//! mailboxes get nothing; the person gets a ticket and its acknowledgement, and nothing
//! else. `postdesk rules test` names the recognisers that decided.

mod common;

use std::time::Duration;

use common::*;

/// The out-of-office words, as a German Exchange server writes them without headers.
const ABWESEND: &str = "Vielen Dank für Ihre Nachricht.\r\n\r\nIch bin bis zum 4. Januar 2027 nicht im Büro und habe keinen Zugriff auf meine E-Mails. In dringenden Fällen wenden Sie sich bitte an Frau Weber (weber@kunde.test).\r\n\r\nMit freundlichen Grüßen\r\nJonas Keller\r\n";

fn domino_bounce(support: &str, failed: &str, id: &str) -> String {
    format!(
        "Return-Path: <>\r\nFrom: Postmaster@domino.customer.test\r\nTo: {support}\r\nSubject: DELIVERY FAILURE: User Jane Roe (jane.roe@domino.customer.test) not listed in Domino Directory\r\nDate: Wed, 02 Dec 2026 09:00:00 +0100\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=US-ASCII\r\nX-Mailer: Lotus Domino Release 9.0.1FP10\r\n\r\nYour message\r\n\r\n  Subject: [ACME #3] Your invoice\r\n\r\nwas not delivered to:\r\n\r\n  {failed}\r\n\r\nbecause:\r\n\r\n  User Jane Roe ({failed}) not listed in Domino Directory\r\n\r\nWhat should you do?\r\n  * Verify the recipient's address and resend the message.\r\n"
    )
}

fn german_mail(from: &str, support: &str, subject: &str, body: &str, id: &str) -> String {
    format!(
        "From: Jonas Keller <{from}>\r\nTo: {support}\r\nSubject: {subject}\r\nDate: Wed, 02 Dec 2026 09:01:00 +0100\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}"
    )
}

#[test]
fn vendor_bounces_and_header_less_out_of_office_get_nothing_and_people_get_a_ticket() {
    let inst = Instance::new(Setup::default());
    let support = inst.support[0].clone();
    let ooo_from = unique("keller", "customer.test");
    let person = unique("keller.person", "customer.test");

    let bounce_id = new_message_id();
    let bounce = domino_bounce(&support, "jane.roe@domino.customer.test", &bounce_id);
    let ooo_id = new_message_id();
    let ooo = german_mail(
        &ooo_from,
        &support,
        "Abwesenheitsnotiz: Ihre Anfrage",
        ABWESEND,
        &ooo_id,
    );
    let question_id = new_message_id();
    let question = german_mail(
        &person,
        &support,
        "Frage zu meiner Rechnung",
        &format!("Guten Tag,\r\n\r\nkönnen Sie mir bitte die Rechnung vom Dezember noch einmal schicken?\r\n\r\n{ABWESEND}"),
        &question_id,
    );

    // What a sysadmin sees before the daemon runs.
    for (name, raw, class, recogniser) in [
        (
            "bounce.eml",
            &bounce,
            "class: bounce (permanent)",
            "bounce-text",
        ),
        ("ooo.eml", &ooo, "class: auto-reply", "ooo-subject"),
        ("question.eml", &question, "class: human", "ooo-text"),
    ] {
        let path = inst.dir.path().join(name);
        std::fs::write(&path, raw).unwrap();
        let (ok, out, err) = inst.cli(&["rules", "test", path.to_str().unwrap()]);
        assert!(ok, "rules test {name}: {err}");
        assert!(out.contains(class), "{name}: {out}");
        assert!(out.contains(recogniser), "{name}: {out}");
    }

    let _daemon = inst.start();
    let mut imap = Imap::login(&support);
    imap.append(bounce.as_bytes());
    imap.append(ooo.as_bytes());
    imap.append(question.as_bytes());

    // The person's request opens a ticket and gets its acknowledgement, and only that.
    let ack = wait_mail(&person, 1);
    assert_eq!(ack.len(), 1, "one acknowledgement");
    assert!(ack[0].subject.contains("[ACME #"), "{}", ack[0].subject);
    let tickets = inst.tickets();
    assert_eq!(tickets.len(), 1, "only the person's mail opened a ticket");
    assert_eq!(
        tickets[0].requester.as_deref(),
        Some(person.as_str()),
        "{tickets:?}"
    );

    // The automatic mails are stored once each (they were fetched before the request,
    // in UID order), and nobody answered them.
    let reader = inst.reader();
    for id in [&bounce_id, &ooo_id, &question_id] {
        let bare = id.trim_matches(['<', '>']);
        assert_eq!(
            reader.count_messages_with_id(bare).unwrap(),
            1,
            "{id} stored once"
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        Imap::login(&ooo_from).count(),
        0,
        "the out-of-office sender got nothing"
    );
    assert_eq!(inbox(&person).len(), 1, "the person got nothing more");
    let rows = reader.outbox_list(None).unwrap();
    assert!(
        rows.iter()
            .all(|o| o.to.iter().any(|t| t.contains(&person))),
        "nothing queued for anyone else: {:?}",
        rows.iter().map(|o| &o.to).collect::<Vec<_>>()
    );
}
