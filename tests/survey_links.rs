//! Survey addresses (issue 10, test 8) on the real Dovecot and Postfix: a survey address
//! is a way onto its ticket only with the right mac, a right link rates once per survey
//! (a second click replaces the first), and links expire (`survey_valid_for`).
//!
//! Statuses change through the admin path (`postdesk ticket set`), not by agents' mail.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::*;
use postdesk::clock::{Clock, ManualClock, SystemClock};
use postdesk::mail::parse::Parsed;
use postdesk::model::{Status, TicketId};

/// The customer writes; returns (ticket id, tag) once the acknowledgement is in her
/// mailbox.
fn open_ticket(inst: &Instance, customer: &str, subject: &str) -> (i64, String) {
    smtp_send(
        customer,
        &[&inst.support[0]],
        &simple_mail(
            customer,
            &inst.support[0],
            subject,
            "The printer on floor 2 is broken.",
            &new_message_id(),
            "",
        ),
    );
    wait_mail(customer, 1);
    let t = inst
        .tickets()
        .into_iter()
        .find(|t| t.requester.as_deref() == Some(customer))
        .expect("a ticket for the customer");
    (t.id.get(), t.tag)
}

/// The survey mail in `customer`'s mailbox (the second mail, after the acknowledgement).
fn survey_mail(customer: &str) -> Parsed {
    wait_mail(customer, 2)
        .into_iter()
        .find(|m| m.subject.contains("how did we do"))
        .expect("the survey mail")
}

/// The address of the survey's link for `rating` on ticket `id`
/// (`mailto:ADDRESS?subject=…`).
fn link_address(survey: &Parsed, id: i64, rating: u8) -> String {
    let word = survey
        .text
        .split_whitespace()
        .find(|w| w.starts_with("mailto:") && w.contains(&format!("+csat-{id}-{rating}-")))
        .unwrap_or_else(|| panic!("no link for rating {rating} in {:?}", survey.text));
    word.trim_start_matches("mailto:")
        .split('?')
        .next()
        .unwrap()
        .to_owned()
}

/// `address` with the last digit of its mac changed.
fn wrong_mac(address: &str) -> String {
    let (local, domain) = address.rsplit_once('@').unwrap();
    let flipped = if local.ends_with('0') { '1' } else { '0' };
    format!("{}{flipped}@{domain}", &local[..local.len() - 1])
}

/// What a mail client sends for a one-click link: a mail to `to`, the prefilled subject.
fn click(from: &str, to: &str, subject: &str, body: &str) {
    smtp_send(
        from,
        &[to],
        &simple_mail(from, to, subject, body, &new_message_id(), ""),
    );
}

/// `postdesk ticket show <id> --json`.
fn show(inst: &Instance, id: i64) -> serde_json::Value {
    let (ok, out, err) = inst.cli(&["ticket", "show", &id.to_string(), "--json"]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// The ticket's events of `kind`, as (old, new, detail), from `ticket show --json`.
fn events_of(
    inst: &Instance,
    id: i64,
    kind: &str,
) -> Vec<(Option<String>, Option<String>, String)> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    show(inst, id)["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| {
            (
                text(&e["old"]),
                text(&e["new"]),
                text(&e["detail"]).unwrap_or_default(),
            )
        })
        .collect()
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

#[test]
fn forged_survey_address_does_not_reach_the_ticket_and_a_second_click_replaces_the_first() {
    let inst = Instance::new(Setup::default());
    let _d = inst.start();
    let desk = inst.desk(Arc::new(SystemClock));
    let customer = unique("csat-carol", "customer.test");
    let mallory = unique("csat-mallory", "evil.test");
    let (id, tag) = open_ticket(&inst, &customer, "Printer broken");
    Instance::set_status(
        &desk,
        TicketId::new(id),
        Status::Resolved,
        "admin:test",
        Utc::now(),
    );
    let survey = survey_mail(&customer);
    assert!(survey.subject.contains(&tag), "{}", survey.subject);
    let one = link_address(&survey, id, 1);

    // A stranger mails the 1-star address of the customer's ticket with a wrong mac and
    // the prefilled subject: a stranger's mail naming a ticket, so a new ticket, linked
    // and flagged; the customer's ticket learns nothing.
    let forged = wrong_mac(&one);
    assert_ne!(forged, one);
    click(
        &mallory,
        &forged,
        &format!("Rating 1 {tag}"),
        "Send me the customer's details",
    );
    let other = wait_until(Duration::from_secs(20), "the stranger's ticket", || {
        inst.tickets()
            .into_iter()
            .find(|t| t.requester.as_deref() == Some(mallory.as_str()))
    });
    assert_ne!(other.id.get(), id);
    assert_eq!(other.linked_to, Some(id));
    assert!(other.flagged.is_some(), "flagged for a human");
    assert!(
        events_of(&inst, other.id.get(), "csat.refused")
            .iter()
            .any(|(_, new, d)| new.as_deref() == Some("1") && d.contains("wrong mac")),
        "{:?}",
        inst.events(other.id.get())
    );
    // The stranger hears about his own ticket only (its acknowledgement, which echoes
    // his subject), nothing of the customer's.
    let to_mallory = wait_mail(&mallory, 1);
    assert!(
        to_mallory.iter().all(|m| m.subject.starts_with(&other.tag)
            && !m.subject.contains("Printer broken")
            && !m.text.contains("Printer broken")),
        "{:?}",
        to_mallory.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );

    // The customer clicks 2 stars, then changes her mind and clicks 5.
    click(
        &customer,
        &link_address(&survey, id, 2),
        &format!("Rating 2 {tag}"),
        "",
    );
    wait_until(Duration::from_secs(20), "rating 2", || {
        (!events_of(&inst, id, "csat").is_empty()).then_some(())
    });
    click(
        &customer,
        &link_address(&survey, id, 5),
        &format!("Rating 5 {tag}"),
        "It works again, thanks!",
    );
    wait_until(Duration::from_secs(20), "rating 5", || {
        (events_of(&inst, id, "csat").len() >= 2).then_some(())
    });

    let shown = show(&inst, id);
    assert_eq!(shown["csat"], 5, "the latest rating: {shown:#}");
    assert_eq!(shown["status"], "resolved", "ratings do not reopen");
    assert_eq!(
        events_of(&inst, id, "csat"),
        [
            (None, some("2"), String::new()),
            (some("2"), some("5"), "It works again, thanks!".to_owned())
        ]
    );
    assert!(events_of(&inst, id, "csat.refused").is_empty());
    let senders: Vec<String> = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["from"].as_str().map(str::to_owned))
        .collect();
    assert!(
        senders.iter().all(|f| !f.contains(&mallory)),
        "the stranger's mail is not on #{id}: {senders:?}"
    );
    assert_eq!(
        senders.iter().filter(|f| f.contains(&customer)).count(),
        3,
        "the request and two ratings: {senders:?}"
    );
    // Nothing more reached the customer: no reopening notice, no answer to a rating.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inbox(&customer).len(), 2, "acknowledgement and survey only");
}

#[test]
fn survey_link_after_survey_valid_for_is_refused() {
    let inst = Instance::new(Setup {
        queue_extra: "survey_valid_for = \"7d\"".to_owned(),
        ..Setup::default()
    });
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let _d = inst.start_with_clock(clock.clone());
    let desk = inst.desk(clock.clone());
    let customer = unique("csat-late", "customer.test");
    let (id, tag) = open_ticket(&inst, &customer, "Scanner broken");
    Instance::set_status(
        &desk,
        TicketId::new(id),
        Status::Resolved,
        "admin:test",
        clock.now(),
    );
    let survey = survey_mail(&customer);
    clock.advance(chrono::Duration::days(8));
    click(
        &customer,
        &link_address(&survey, id, 4),
        &format!("Rating 4 {tag}"),
        "",
    );
    let refused = wait_until(Duration::from_secs(20), "the refusal", || {
        events_of(&inst, id, "csat.refused").pop()
    });
    assert_eq!(refused.1.as_deref(), Some("4"));
    assert!(refused.2.contains("expired"), "{refused:?}");
    assert!(events_of(&inst, id, "csat").is_empty(), "no rating");
    let shown = show(&inst, id);
    assert_eq!(shown["csat"], serde_json::Value::Null);
    assert_ne!(shown["status"], "open", "not reopened");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inbox(&customer).len(), 2, "nothing sent for it");
}
