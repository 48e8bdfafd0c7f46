//! Routing, lifecycle, SLA, escalation and surveys (issue 5), on the real Dovecot and
//! Postfix, with a clock the tests set (no sleeping for days).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use postdesk::clock::{Clock, ManualClock};
use postdesk::model::{Status, TicketId};

fn ticket_of(inst: &Instance, customer: &str) -> postdesk::store::TicketSummary {
    wait_until(Duration::from_secs(20), "ticket", || {
        inst.tickets()
            .into_iter()
            .find(|t| t.requester.as_deref() == Some(customer))
    })
}

fn agents_tail(names: &[(&str, &str, u32)]) -> String {
    names
        .iter()
        .map(|(name, addr, cap)| {
            format!("\n[[agent]]\nname = \"{name}\"\naddresses = [\"{addr}\"]\nqueues = [\"support\"]\ncapacity = {cap}\n")
        })
        .collect()
}

#[test]
fn rules_route_by_keyword_sender_header_and_plus_address() {
    let inst = Instance::new(Setup {
        extra_top: "vip = [\"bigcorp.test\"]".to_owned(),
        tail: r#"
[[queue]]
name = "billing"
display_name = "Billing"

[[rule]]
name = "urgent-header"
header = { name = "X-Priority", regex = "^1" }
priority = "high"
continue = true

[[rule]]
name = "partner"
from = ["partner.test"]
tags = ["partner"]
continue = true

[[rule]]
name = "billing-en"
keywords = ["invoice", "refund"]
queue = "billing"
tags = ["billing"]

[[rule]]
name = "billing-zh"
keywords = ["发票", "退款"]
queue = "billing"
tags = ["billing", "zh"]

[[rule]]
name = "sales-plus"
to = ["+sales"]
queue = "billing"
acknowledge = false
"#
        .to_owned(),
        ..Setup::default()
    });
    let _d = inst.start();
    let support = inst.support[0].clone();
    let (local, domain) = support.split_once('@').unwrap();
    let plus = format!("{local}+sales@{domain}");
    let en = unique("en", "customer.test");
    let zh = unique("zh", "customer.test");
    let partner = unique("p", "partner.test");
    let vip = unique("boss", "bigcorp.test");
    let sales = unique("buyer", "customer.test");
    let send = |from: &str, to: &str, subject: &str, headers: &str| {
        smtp_send(
            from,
            &[to],
            &simple_mail(from, to, subject, "Hello.", &new_message_id(), headers),
        );
    };
    send(&en, &support, "Invoice 4711 charged twice", "");
    send(&zh, &support, "发票重复扣款", "");
    send(
        &partner,
        &support,
        "Refund for order 12",
        "X-Priority: 1 (Highest)\r\n",
    );
    send(&vip, &support, "Printer offline", "");
    send(&sales, &plus, "Quote for 20 licences", "");

    let t = ticket_of(&inst, &en);
    assert_eq!(
        (t.queue.as_str(), t.tags.clone()),
        ("billing", vec!["billing".to_owned()])
    );
    let t = ticket_of(&inst, &zh);
    assert_eq!(t.queue, "billing");
    assert_eq!(t.tags, ["billing", "zh"]);
    // continue = true: the header and sender rules add their part, then billing matches.
    let t = ticket_of(&inst, &partner);
    assert_eq!((t.queue.as_str(), t.priority.as_str()), ("billing", "high"));
    assert_eq!(t.tags, ["billing", "partner"]);
    let events = inst.events(t.id.get());
    assert!(
        events.iter().any(|(k, new, _)| k == "rules"
            && new.as_deref() == Some("urgent-header, partner, billing-en")),
        "{events:?}"
    );
    // VIP: no rule, one step above normal.
    let t = ticket_of(&inst, &vip);
    assert_eq!((t.queue.as_str(), t.priority.as_str()), ("support", "high"));
    // The plus-address rule: billing, and no acknowledgement.
    let t = ticket_of(&inst, &sales);
    assert_eq!(t.queue, "billing");
    assert!(inst
        .events(t.id.get())
        .iter()
        .any(|(k, _, _)| k == "acknowledgement.skipped"));
    wait_mail(&en, 1);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(Imap::login(&sales).count(), 0, "acknowledge = false");

    // `postdesk rules test` shows the same, without changing anything.
    let eml = inst.dir.path().join("m.eml");
    std::fs::write(
        &eml,
        simple_mail(
            &partner,
            &support,
            "Refund please",
            "x",
            "t@x",
            "X-Priority: 1\r\n",
        ),
    )
    .unwrap();
    let before = inst.tickets().len();
    let (ok, out, err) = inst.cli(&["rules", "test", eml.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["matched"],
        serde_json::json!(["urgent-header", "partner", "billing-en"])
    );
    assert_eq!(v["queue"], "billing");
    assert_eq!(v["priority"], "high");
    assert_eq!(
        v["rules"][3]["evaluated"], false,
        "billing-zh comes after the stopping match"
    );
    let (ok, text, _) = inst.cli(&["rules", "test", eml.to_str().unwrap()]);
    assert!(
        ok && text.contains("rule billing-en") && text.contains("MATCH"),
        "{text}"
    );
    assert_eq!(inst.tickets().len(), before, "rules test changes nothing");
}

/// Three agents with `capacities` in a queue with `assignment`; `n` requests waiting in
/// the mailbox when the daemon starts. Returns the instance and the assignees in ticket
/// order.
fn assign_in_order(strategy: &str, capacities: [u32; 3], n: usize) -> (Instance, Vec<String>) {
    let addrs: Vec<String> = ["ann", "ben", "cat"]
        .iter()
        .map(|a| unique(a, "example.test"))
        .collect();
    let inst = Instance::new(Setup {
        queue_extra: format!("assignment = \"{strategy}\""),
        tail: agents_tail(&[
            ("ann", &addrs[0], capacities[0]),
            ("ben", &addrs[1], capacities[1]),
            ("cat", &addrs[2], capacities[2]),
        ]),
        ..Setup::default()
    });
    let customer = unique("assign", "customer.test");
    {
        let mut imap = Imap::login(&inst.support[0]);
        for i in 0..n {
            imap.append(&simple_mail(
                &customer,
                &inst.support[0],
                &format!("Request {i}"),
                "x",
                &new_message_id(),
                "",
            ));
        }
    }
    let d = inst.start();
    wait_until(Duration::from_secs(20), "every ticket", || {
        (inst.tickets().len() == n).then_some(())
    });
    d.stop();
    let mut tickets = inst.tickets();
    tickets.sort_by_key(|t| t.id);
    assert!(
        tickets.iter().all(|t| t.status == "open"),
        "assigned tickets are open"
    );
    let order = tickets
        .iter()
        .map(|t| t.assignee.clone().unwrap_or_default())
        .collect();
    (inst, order)
}

#[test]
fn round_robin_skips_an_agent_at_capacity() {
    let (inst, order) = assign_in_order("round-robin", [1, 5, 5], 5);
    // ann holds one ticket (her capacity) after the first: skipped from then on.
    assert_eq!(order, ["ann", "ben", "cat", "ben", "cat"]);
    let mut tickets = inst.tickets();
    tickets.sort_by_key(|t| t.id);
    let ev = inst.events(tickets[1].id.get());
    assert!(
        ev.iter().any(|(k, n, d)| k == "assignee"
            && n.as_deref() == Some("ben")
            && d.as_deref().unwrap().starts_with("round robin")),
        "{ev:?}"
    );
}

#[test]
fn least_loaded_prefers_the_lowest_share_of_capacity() {
    let (_, order) = assign_in_order("least-loaded", [2, 4, 8], 6);
    // Loads as shares: ann 0/2 ben 0/4 cat 0/8 -> ann; then ben, cat; cat (1/8 < 1/4 < 1/2);
    // ben 1/4 = cat 2/8, ben has fewer -> ben; then cat (2/8 < 2/4 = 1/2).
    assert_eq!(order, ["ann", "ben", "cat", "cat", "ben", "cat"]);
}

/// 2026-11-27 is a Friday; 2026-11-30 (Monday) is a holiday in the test calendar.
fn berlin(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    let (y, mo, d) = if d > 30 {
        (2026, 12, d - 30)
    } else {
        (2026, 11, d)
    };
    chrono_tz::Europe::Berlin
        .with_ymd_and_hms(y, mo, d, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

fn sla_setup(manager: &str, alice: &str) -> Setup {
    Setup {
        queue_extra: format!(
            "calendar = \"berlin\"\nsla_warn_at = 0.8\nescalate_priority = true\nmanagers = [\"{manager}\"]\n[queue.sla.normal]\nfirst_response = \"2h\"\nresolution = \"16h\"\n"
        ),
        tail: format!(
            "\n[[calendar]]\nname = \"berlin\"\ntimezone = \"Europe/Berlin\"\nmon = \"09:00-17:00\"\ntue = \"09:00-17:00\"\nwed = \"09:00-17:00\"\nthu = \"09:00-17:00\"\nfri = \"09:00-17:00\"\nholidays = [\"2026-11-30\"]\n\n[schedule]\ndigest = \"never\"\n{}",
            agents_tail(&[("alice", alice, 20)])
        ),
        ..Setup::default()
    }
}

fn deadline(inst: &Instance, ticket: i64, name: &str) -> postdesk::store::DeadlineView {
    inst.ticket(ticket)
        .sla
        .into_iter()
        .find(|d| d.deadline == name)
        .expect("deadline")
}

#[test]
fn sla_on_a_business_calendar_warns_and_escalates_once() {
    let manager = unique("manager", "example.test");
    let alice = unique("sla-alice", "example.test");
    let inst = Instance::new(sla_setup(&manager, &alice));
    let clock = Arc::new(ManualClock::new(berlin(27, 16, 0)));
    let _d = inst.start_with_clock(clock.clone());
    let customer = unique("sla", "customer.test");
    smtp_send(
        &customer,
        &[&inst.support[0]],
        &simple_mail(
            &customer,
            &inst.support[0],
            "Server down",
            "Help.",
            &new_message_id(),
            "",
        ),
    );
    let t = ticket_of(&inst, &customer);
    let id = t.id.get();
    // Fri 16:00 + 2 business hours: 1 h on Friday, Monday is a holiday, 1 h on Tuesday.
    assert_eq!(
        deadline(&inst, id, "first_response")
            .due_at
            .map(postdesk::model::stamp::text)
            .as_deref(),
        Some("2026-12-01T09:00:00.000Z")
    );
    // 16 h of resolution: Fri 1 h, Tue 8 h, Wed 7 h -> Wed 16:00 Berlin.
    assert_eq!(
        deadline(&inst, id, "resolution")
            .due_at
            .map(postdesk::model::stamp::text)
            .as_deref(),
        Some("2026-12-02T15:00:00.000Z")
    );
    wait_mail(&alice, 1); // the relay

    // 80 % of 2 h = 96 min: Fri 60 min + Tue 36 min -> Tue 09:36.
    clock.set(berlin(31, 9, 35)); // Tue 1 Dec 09:35
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        deadline(&inst, id, "first_response").warned_at.is_none(),
        "no warning before 80 %"
    );
    clock.set(berlin(31, 9, 37));
    wait_until(Duration::from_secs(10), "warning", || {
        deadline(&inst, id, "first_response").warned_at
    });
    let mails = wait_mail(&alice, 2);
    assert!(
        mails[1].subject.starts_with("SLA warning:"),
        "{}",
        mails[1].subject
    );
    assert_eq!(
        Imap::login(&manager).count(),
        0,
        "warnings go to the agents, not the managers"
    );

    clock.set(berlin(31, 10, 1));
    wait_until(Duration::from_secs(10), "breach", || {
        deadline(&inst, id, "first_response").breached_at
    });
    let to_manager = wait_mail(&manager, 1);
    assert!(
        to_manager[0].subject.starts_with("SLA breached:"),
        "{}",
        to_manager[0].subject
    );
    assert!(
        to_manager[0].text.contains("priority raised to high"),
        "{}",
        to_manager[0].text
    );
    assert_eq!(inst.ticket(id).ticket.priority, "high");
    // Later sweeps send nothing more for the same deadline.
    clock.set(berlin(31, 11, 0));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(Imap::login(&manager).count(), 1);
    assert_eq!(Imap::login(&alice).count(), 3, "relay, warning, breach");
    let ev = inst.events(id);
    assert_eq!(ev.iter().filter(|(k, _, _)| k == "sla.warning").count(), 1);
    assert_eq!(ev.iter().filter(|(k, _, _)| k == "sla.breach").count(), 1);
}

#[test]
fn pending_pauses_the_resolution_clock() {
    let manager = unique("manager", "example.test");
    let alice = unique("pause-alice", "example.test");
    let inst = Instance::new(sla_setup(&manager, &alice));
    let clock = Arc::new(ManualClock::new(berlin(31, 9, 0))); // Tue 1 Dec 09:00
    let _d = inst.start_with_clock(clock.clone());
    let desk = inst.desk(clock.clone());
    let customer = unique("pause", "customer.test");
    smtp_send(
        &customer,
        &[&inst.support[0]],
        &simple_mail(
            &customer,
            &inst.support[0],
            "Slow",
            "x",
            &new_message_id(),
            "",
        ),
    );
    let id = ticket_of(&inst, &customer).id.get();
    assert_eq!(
        deadline(&inst, id, "resolution")
            .due_at
            .map(postdesk::model::stamp::text)
            .as_deref(),
        Some("2026-12-02T16:00:00.000Z"),
        "Wed 17:00"
    );
    clock.set(berlin(31, 13, 0)); // 4 h used
    Instance::set_status(
        &desk,
        TicketId::new(id),
        Status::Pending,
        "alice",
        clock.now(),
    );
    assert_eq!(deadline(&inst, id, "resolution").due_at, None, "paused");
    clock.set(berlin(34, 9, 0)); // Fri 4 Dec 09:00: 12 h left -> Fri 8 h + Mon 4 h
    Instance::set_status(&desk, TicketId::new(id), Status::Open, "alice", clock.now());
    assert_eq!(
        deadline(&inst, id, "resolution")
            .due_at
            .map(postdesk::model::stamp::text)
            .as_deref(),
        Some("2026-12-07T12:00:00.000Z"),
        "Mon 13:00"
    );
}

#[test]
fn scheduler_auto_closes_archives_and_catches_up_once() {
    let manager = unique("digest", "example.test");
    let inst = Instance::new(Setup {
        queue_extra: format!("auto_close_after = \"2d\"\narchive_after = \"3d\"\nmanagers = [\"{manager}\"]"),
        tail: "\n[schedule]\nauto_close = \"0 */10 * * * *\"\narchive = \"0 0 * * * *\"\ndigest = \"0 0 8 * * *\"\n".to_owned(),
        ..Setup::default()
    });
    let start = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let d = inst.start_with_clock(clock.clone());
    let desk = inst.desk(clock.clone());
    let customer = unique("sched", "customer.test");
    smtp_send(
        &customer,
        &[&inst.support[0]],
        &simple_mail(
            &customer,
            &inst.support[0],
            "Done soon",
            "x",
            &new_message_id(),
            "",
        ),
    );
    let id = ticket_of(&inst, &customer).id.get();
    Instance::set_status(
        &desk,
        TicketId::new(id),
        Status::Resolved,
        "alice",
        clock.now(),
    );
    let status = || inst.ticket(id).ticket.status;

    clock.advance(chrono::Duration::days(1));
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(status(), "resolved", "not yet: auto_close_after is 2 days");
    clock.advance(chrono::Duration::hours(25));
    wait_until(Duration::from_secs(10), "auto-close", || {
        (status() == "closed").then_some(())
    });
    let ev = inst.events(id);
    assert!(
        ev.iter().any(|(k, n, det)| k == "status"
            && n.as_deref() == Some("closed")
            && det.as_deref() == Some("auto-close after 2d")),
        "{ev:?}"
    );

    // Stopped for four days: the archive is due, and four digests were missed.
    let digests = || {
        inst.reader()
            .outbox_list(None)
            .unwrap()
            .into_iter()
            .filter(|o| o.kind == "digest")
            .count()
    };
    d.stop();
    let digests_before = digests();
    clock.advance(chrono::Duration::days(4));
    let _d = inst.start_with_clock(clock.clone());
    wait_until(Duration::from_secs(10), "archive after the restart", || {
        (status() == "archived").then_some(())
    });
    let mails = wait_mail(&manager, digests_before + 1);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        digests(),
        digests_before + 1,
        "missed digests catch up once, not four times"
    );
    assert_eq!(Imap::login(&manager).count(), digests_before + 1);
    assert!(
        mails.last().unwrap().subject.contains("digest"),
        "{}",
        mails.last().unwrap().subject
    );
    let archived = inst
        .events(id)
        .iter()
        .filter(|(k, n, _)| k == "status" && n.as_deref() == Some("archived"))
        .count();
    assert_eq!(archived, 1);
}

#[test]
fn survey_links_and_replies_record_ratings() {
    let alice = unique("sv-alice", "example.test");
    let inst = Instance::new(Setup {
        tail: agents_tail(&[("alice", &alice, 20)]),
        ..Setup::default()
    });
    let _d = inst.start();
    let customer = unique("rate", "customer.test");
    smtp_send(
        &customer,
        &[&inst.support[0]],
        &simple_mail(
            &customer,
            &inst.support[0],
            "Cannot print",
            "x",
            &new_message_id(),
            "",
        ),
    );
    let relay = wait_mail(&alice, 1).remove(0);
    reply_by_mail(
        &alice,
        &relay,
        "#status resolved\r\n\r\nFixed: the driver was old.",
        "",
    );
    let mails = wait_mail(&customer, 3);
    let survey = mails
        .iter()
        .find(|m| m.subject.contains("how did we do"))
        .expect("survey mail");
    let t = ticket_of(&inst, &customer);
    assert_eq!(t.status, "resolved");
    // The 4-star link: mailto:support+csat-N-4-mac@...?subject=...
    let link = survey
        .text
        .split_whitespace()
        .find(|w| w.starts_with("mailto:") && w.contains(&format!("+csat-{}-4-", t.id.get())))
        .expect("a 4-star link");
    let address = link
        .trim_start_matches("mailto:")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        address.contains(&format!("+csat-{}-4-", t.id.get())),
        "{address}"
    );
    let click = |to: &str, body: &str| {
        smtp_send(
            &customer,
            &[to],
            &simple_mail(
                &customer,
                to,
                &format!("Rating {}", t.tag),
                body,
                &new_message_id(),
                "",
            ),
        );
    };
    click(&address, "");
    wait_until(Duration::from_secs(15), "rating 4", || {
        (inst.ticket(t.id.get()).ticket.status == "resolved"
            && inst
                .events(t.id.get())
                .iter()
                .any(|(k, n, _)| k == "csat" && n.as_deref() == Some("4")))
        .then_some(())
    });
    // A plain reply whose first line is a rating replaces it.
    let reply = format!(
        "From: {customer}\r\nTo: {s}\r\nSubject: Re: {subj}\r\nMessage-ID: <{}>\r\nIn-Reply-To: {id}\r\n\r\n5\r\nVery quick, thanks!\r\n",
        new_message_id(),
        s = inst.support[0],
        subj = survey.subject,
        id = survey.message_id.bracketed()
    );
    smtp_send(&customer, &[&inst.support[0]], reply.as_bytes());
    wait_until(Duration::from_secs(15), "rating 5", || {
        inst.events(t.id.get())
            .into_iter()
            .find(|(k, n, _)| k == "csat" && n.as_deref() == Some("5"))
    });
    // A link with a wrong mac proves nothing (issue 10): a stranger's mail to it is
    // placed as a stranger's (a new ticket, linked by the tag); the rating stays 5.
    let stranger = unique("rate-mallory", "evil.test");
    let forged = address.replacen(
        &format!("+csat-{}-4-", t.id.get()),
        &format!("+csat-{}-1-", t.id.get()),
        1,
    );
    assert_ne!(forged, address);
    smtp_send(
        &stranger,
        &[&forged],
        &simple_mail(
            &stranger,
            &forged,
            &format!("Rating {}", t.tag),
            "",
            &new_message_id(),
            "",
        ),
    );
    let other = ticket_of(&inst, &stranger);
    assert_eq!(other.linked_to, Some(t.id.get()));
    assert!(
        inst.events(t.id.get())
            .iter()
            .all(|(k, _, _)| k != "csat.refused"),
        "nothing of it on #{}",
        t.id
    );
    let ticket = inst.ticket(t.id.get()).ticket;
    assert_eq!(
        ticket.status, "resolved",
        "survey answers do not reopen the ticket"
    );
    let csat: i64 = latest_rating(&inst, t.id.get());
    assert_eq!(csat, 5);
}

/// The stored rating, through the CLI's JSON.
fn latest_rating(inst: &Instance, id: i64) -> i64 {
    let (ok, out, err) = inst.cli(&["ticket", "show", &id.to_string(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|e| e["kind"] == "csat")
        .and_then(|e| e["new"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

#[test]
fn no_survey_to_an_address_that_bounced() {
    let alice = unique("bn-alice", "example.test");
    let inst = Instance::new(Setup {
        tail: agents_tail(&[("alice", &alice, 20)]),
        ..Setup::default()
    });
    let _d = inst.start();
    let gone = unique("gone", "bounce.test");
    smtp_send(
        &gone,
        &[&inst.support[0]],
        &simple_mail(&gone, &inst.support[0], "Order", "x", &new_message_id(), ""),
    );
    let t = ticket_of(&inst, &gone);
    wait_until(Duration::from_secs(30), "bounce marks the address", || {
        inst.reader()
            .undeliverable()
            .unwrap()
            .into_iter()
            .find(|(a, _, _)| a == &gone)
    });
    let relay = wait_mail(&alice, 1).remove(0);
    reply_by_mail(&alice, &relay, "#status resolved", "");
    let held = wait_until(Duration::from_secs(15), "survey held", || {
        inst.events(t.id.get())
            .into_iter()
            .find(|(k, n, _)| k == "notification.held" && n.as_deref() == Some("survey"))
    });
    assert!(held.2.unwrap().contains("undeliverable"));
}
