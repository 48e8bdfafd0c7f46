//! Well-formed mail (issue 11, test 4): every kind of mail postdesk sends carries
//! `MIME-Version: 1.0`, exactly once, checked on the copies Postfix delivered to the
//! recipients' real Dovecot mailboxes.
//!
//! One instance, one agent (alice), one manager, a `ManualClock`: customers write
//! (acknowledgement, relay), alice answers and resolves (answer, survey), closes (status
//! change), sends a command that cannot apply (command result) and a command without her
//! reply token (command refused); the clock passes the first-response deadline (SLA
//! warning and breach) and the next morning (digest).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use postdesk::clock::ManualClock;
use postdesk::mail::parse::{self, Parsed};
use postdesk::model::{OutboxKind, OutboxState};
use postdesk::store::OutboxView;

/// The header lines of `raw` (up to the first empty line), folded lines joined.
fn header_lines(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let head = text.split("\n\n").next().unwrap_or("");
    let mut lines: Vec<String> = Vec::new();
    for line in head.lines() {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => lines.push(line.to_owned()),
        }
    }
    lines
}

/// The `MIME-Version` lines of a message's header block, as written.
fn mime_versions(raw: &[u8]) -> Vec<String> {
    header_lines(raw)
        .into_iter()
        .filter(|l| l.to_ascii_lowercase().starts_with("mime-version:"))
        .collect()
}

fn outbox(inst: &Instance) -> Vec<OutboxView> {
    inst.reader().outbox_list(None).unwrap()
}

/// Waits until a mail of `kind` has been sent (accepted by Postfix); returns those sent.
fn wait_sent(inst: &Instance, kind: OutboxKind) -> Vec<OutboxView> {
    wait_until(Duration::from_secs(20), &format!("{kind} sent"), || {
        let sent: Vec<_> = outbox(inst)
            .into_iter()
            .filter(|o| o.kind == kind && o.state == OutboxState::Sent)
            .collect();
        (!sent.is_empty()).then_some(sent)
    })
}

fn customer_writes(inst: &Instance, customer: &str, subject: &str, body: &str) -> (i64, String) {
    smtp_send(
        customer,
        &[&inst.support[0]],
        &simple_mail(
            &format!("Jane Doe <{customer}>"),
            &inst.support[0],
            subject,
            body,
            &new_message_id(),
            "",
        ),
    );
    let t = wait_until(Duration::from_secs(20), "ticket", || {
        inst.tickets()
            .into_iter()
            .find(|t| t.requester.as_deref() == Some(customer))
    });
    (t.id.get(), t.tag)
}

/// The relay of ticket `tag` in `agent`'s mailbox.
fn relay_of(agent: &str, tag: &str) -> Parsed {
    wait_mail_where(agent, 1, &format!("relay of {tag}"), |m| {
        m.subject.starts_with(tag)
    })
    .remove(0)
}

fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

#[test]
fn every_kind_of_mail_we_send_is_delivered_with_one_mime_version() {
    let alice = unique("wf-alice", "example.test");
    let manager = unique("wf-manager", "example.test");
    let ops = unique("wf-ops", "example.test");
    let inst = Instance::new(Setup {
        extra_top: format!("[alerts]\nto = [\"{ops}\"]\n"),
        queue_extra: format!(
            "managers = [\"{manager}\"]\nsla_warn_at = 0.8\n[queue.sla.normal]\nfirst_response = \"2h\"\nresolution = \"1d\"\n"
        ),
        tail: format!(
            "\n[schedule]\ndigest = \"0 0 8 * * *\"\n\
             \n[[agent]]\nname = \"alice\"\ndisplay_name = \"Alice Agent\"\naddresses = [\"{alice}\"]\nqueues = [\"support\"]\n"
        ),
        ..Setup::default()
    });
    // Wednesday 25 November 2026, 10:00 UTC; the queue's calendar is 24×7.
    let clock = Arc::new(ManualClock::new(at(25, 10, 0)));
    let _daemon = inst.start_with_clock(clock.clone());

    // Ticket A: acknowledgement and relay; alice answers and resolves it (answer,
    // survey), then closes it (status change).
    let jane = unique("wf-jane", "customer.test");
    let (_, tag_a) = customer_writes(&inst, &jane, "Printer offline", "The printer is offline.");
    let relay_a = relay_of(&alice, &tag_a);
    reply_by_mail(
        &alice,
        &relay_a,
        "#status resolved\n\nHello Jane,\nplease switch it off and on again.\n\nAlice",
        "",
    );
    wait_sent(&inst, OutboxKind::Survey);
    reply_by_mail(&alice, &relay_a, "#status closed", "");
    wait_sent(&inst, OutboxKind::StatusChange);

    // Ticket B: a command that cannot apply (command result), then a command sent to the
    // plain support address, without alice's reply token (command refused).
    let tom = unique("wf-tom", "customer.test");
    let (_, tag_b) = customer_writes(&inst, &tom, "VPN slow", "The VPN is slow.");
    let relay_b = relay_of(&alice, &tag_b);
    reply_by_mail(&alice, &relay_b, "#assign carol\n\nLooking into it.", "");
    wait_sent(&inst, OutboxKind::CommandResult);
    let support = inst.support[0].clone();
    smtp_send(
        &alice,
        &[&support],
        &reply_mail_to(&alice, &support, &relay_b, "#priority high\n\nOn it.", ""),
    );
    wait_sent(&inst, OutboxKind::CommandRefused);

    // Tom asks by mail for his tickets' status (self-service: no ticket, a list).
    smtp_send(
        &tom,
        &[&support],
        &simple_mail(
            &format!("Tom <{tom}>"),
            &support,
            "status",
            "",
            &new_message_id(),
            "",
        ),
    );
    wait_sent(&inst, OutboxKind::SelfService);

    // Nobody answered B: 80 % of its 2 h first response (11:36), then the deadline (12:00).
    clock.set(at(25, 11, 40));
    wait_sent(&inst, OutboxKind::SlaWarning);
    clock.set(at(25, 12, 1));
    wait_sent(&inst, OutboxKind::SlaBreach);
    // The next morning's digest for the manager.
    clock.set(at(26, 8, 0) + chrono::Duration::seconds(30));
    wait_sent(&inst, OutboxKind::Digest);
    // The clock's jumps leave the mailbox's last completed round hours behind: an alarm
    // (the health check reads the engine's clock, like every timed job).
    wait_sent(&inst, OutboxKind::Alert);

    // Everything queued so far has gone out.
    let rows = wait_until(Duration::from_secs(20), "the outbox sent", || {
        let rows = outbox(&inst);
        rows.iter()
            .all(|o| o.state == OutboxState::Sent)
            .then_some(rows)
    });
    let kinds: BTreeSet<&str> = rows.iter().map(|o| o.kind.as_str()).collect();
    let all: BTreeSet<&str> = OutboxKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(kinds, all, "every kind of mail was sent");

    // Each sent mail, in each recipient's mailbox.
    let recipients: BTreeSet<&str> = rows
        .iter()
        .flat_map(|o| o.to.iter().map(String::as_str))
        .collect();
    let mut checked = BTreeSet::new();
    for who in recipients {
        let mine: Vec<&OutboxView> = rows
            .iter()
            .filter(|o| o.to.iter().any(|t| t == who))
            .collect();
        let delivered: Vec<(Parsed, Vec<u8>)> = wait_until(
            Duration::from_secs(20),
            &format!("{} mail(s) delivered to {who}", mine.len()),
            || {
                let got = inbox(who);
                (got.len() >= mine.len()).then_some(got)
            },
        )
        .into_iter()
        .map(|(_, raw)| {
            (
                parse::message(&raw, &postdesk::limits::Limits::default()).unwrap(),
                raw,
            )
        })
        .collect();
        for row in mine {
            let copies: Vec<&Vec<u8>> = delivered
                .iter()
                .filter(|(p, _)| p.subject == row.subject)
                .map(|(_, raw)| raw)
                .collect();
            assert!(
                !copies.is_empty(),
                "{} {:?} delivered to {who}",
                row.kind,
                row.subject
            );
            for raw in copies {
                assert_eq!(
                    mime_versions(raw),
                    ["MIME-Version: 1.0"],
                    "{} {:?} as delivered to {who}:\n{}",
                    row.kind,
                    row.subject,
                    String::from_utf8_lossy(raw)
                );
            }
            checked.insert(row.kind.as_str());
        }
        // Nothing else reached these fresh mailboxes: every mail there is ours, and each
        // has the header too.
        for (p, raw) in &delivered {
            assert_eq!(
                mime_versions(raw),
                ["MIME-Version: 1.0"],
                "{:?} as delivered to {who}",
                p.subject
            );
        }
    }
    assert_eq!(checked, all, "a delivered copy of every kind was checked");
}
