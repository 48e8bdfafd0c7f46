//! `postdesk report` (issue 6) on a data set built through the real library (ingest,
//! agents' mail, status changes, surveys, the SLA sweep) with a clock the test sets; no
//! mail server is involved (nothing is sent: the outbox only fills).
//!
//! 1. Every figure of the JSON report against a hand count.
//! 2. The HTML page renders in headless Chromium (Debian's `chromium`, which
//!    `scripts/test` installs): a screenshot is taken and the five charts are in the DOM.
//!    `POSTDESK_REPORT_SHOT=/path/shot.png` keeps the screenshot (and the page, as
//!    `/path/shot.html`) for a look.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use postdesk::clock::{Clock, ManualClock};
use postdesk::model::{MailboxName, Status, TicketId, Uid, UidValidity};
use postdesk::report::{self, Flags, Options};
use postdesk::workflow::{Engine, Incoming, IngestBatch};
use serde_json::{json, Value};

/// 2026-11-02 is a Monday. `office` hours: Monday to Friday 09:00-17:00 UTC.
fn at(month: u32, day: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, h, m, 0).unwrap()
}

const H: i64 = 3600;

/// The helpdesk: `support` (printers) has the office calendar and an SLA, `billing`
/// (everything else) runs 24×7 without SLA. Two agents.
struct Desk {
    inst: Instance,
    store: postdesk::workflow::Desk,
    engine: Engine,
    clock: Arc<ManualClock>,
    rt: tokio::runtime::Runtime,
    uid: std::cell::Cell<u32>,
    alice: String,
    bob: String,
}

impl Desk {
    fn new() -> Desk {
        let alice = unique("alice", "agents.test");
        let bob = unique("bob", "agents.test");
        let inst = Instance::new(Setup {
            queue_extra:
                "calendar = \"office\"\nauto_close_after = \"never\"\narchive_after = \"never\"\n\
                          [queue.sla.normal]\nfirst_response = \"2h\"\nresolution = \"24h\"\n"
                    .to_owned(),
            tail: format!(
                r#"
[[queue]]
name = "billing"
display_name = "Billing"
auto_close_after = "never"
archive_after = "never"

[[calendar]]
name = "office"
timezone = "UTC"
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"

[[rule]]
name = "printers"
keywords = ["printer"]
queue = "support"

[[rule]]
name = "everything-else"
queue = "billing"

[schedule]
digest = "never"

[[agent]]
name = "alice"
addresses = ["{alice}"]
queues = ["support", "billing"]
capacity = 10

[[agent]]
name = "bob"
addresses = ["{bob}"]
queues = ["support", "billing"]
capacity = 5
"#
            ),
            ..Setup::default()
        });
        let clock = Arc::new(ManualClock::new(at(10, 28, 8, 0)));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let store = inst.desk(dyn_clock.clone());
        let engine = Engine::new(&inst.config(), dyn_clock).unwrap();
        Desk {
            inst,
            store,
            engine,
            clock,
            rt: tokio::runtime::Runtime::new().unwrap(),
            uid: std::cell::Cell::new(0),
            alice,
            bob,
        }
    }

    fn set(&self, t: DateTime<Utc>) {
        self.clock.set(t);
    }

    fn ingest(&self, raw: Vec<u8>) {
        let n = self.uid.get() + 1;
        self.uid.set(n);
        let batch = IngestBatch {
            mailbox: MailboxName::new("mb0"),
            uidvalidity: UidValidity(1),
            items: vec![Incoming {
                uid: Uid(n),
                prepared: self.engine.prepare(&raw),
                raw,
                cost: Default::default(),
            }],
            last_uid: Uid(n),
            backlog: 0,
            at: self.clock.now(),
        };
        let out = self.rt.block_on(self.store.ingest(batch)).unwrap();
        assert_eq!(out.quarantined, 0, "message {n} quarantined");
    }

    /// A customer writes a new request at `t`; returns the ticket and the customer.
    fn request(&self, t: DateTime<Utc>, subject: &str, body: &str) -> (TicketId, String) {
        self.set(t);
        let customer = unique("cust", "customer.test");
        self.ingest(simple_mail(
            &customer,
            &self.inst.support[0],
            subject,
            body,
            &new_message_id(),
            "",
        ));
        let ticket = self
            .inst
            .tickets()
            .into_iter()
            .find(|x| x.requester.as_deref() == Some(customer.as_str()))
            .expect("a new ticket");
        (ticket.id, customer)
    }

    /// The Message-ID of one of our mails on `ticket` whose text contains `needle`.
    fn our_mail(&self, ticket: TicketId, needle: &str) -> String {
        self.inst
            .ticket(ticket.get())
            .messages
            .into_iter()
            .find(|m| m.direction == "out" && m.text.contains(needle))
            .unwrap_or_else(|| panic!("no mail of ours on #{ticket} with {needle:?}"))
            .message_id
    }

    /// `from` replies at `t` on `ticket`: an agent to the relay we sent them (To its
    /// Reply-To, the agent's reply token), a customer to our first mail on the ticket (its
    /// acknowledgement), as a mail client's Reply does.
    fn reply(&self, t: DateTime<Utc>, from: &str, ticket: TicketId, body: &str) {
        if from == self.alice || from == self.bob {
            let relay = self.relay(ticket, from);
            let to = reply_address(&relay);
            self.reply_to(t, from, &to, &relay.message_id.bracketed(), body);
        } else {
            let id = self.our_mail(ticket, "");
            self.reply_to(t, from, &self.inst.support[0], &id, body);
        }
    }

    /// Our latest relay of `ticket` to `agent`, parsed from the stored mail.
    fn relay(&self, ticket: TicketId, agent: &str) -> postdesk::mail::parse::Parsed {
        let m = self
            .inst
            .ticket(ticket.get())
            .messages
            .into_iter()
            .rfind(|m| {
                m.direction == "out" && m.audience == "agents" && m.to.iter().any(|a| a == agent)
            })
            .unwrap_or_else(|| panic!("no relay of #{ticket} to {agent}"));
        let raw = self
            .inst
            .reader()
            .raw_message(ticket, m.id)
            .unwrap()
            .expect("the relay is stored");
        postdesk::mail::parse::message(&raw, &postdesk::limits::Limits::default()).unwrap()
    }

    fn reply_to(&self, t: DateTime<Utc>, from: &str, to: &str, message_id: &str, body: &str) {
        self.set(t);
        let raw = format!(
            "From: {from}\r\nTo: {to}\r\nSubject: Re: your request\r\nMessage-ID: <{mid}>\r\nIn-Reply-To: {message_id}\r\nReferences: {message_id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
            mid = new_message_id(),
        );
        self.ingest(raw.into_bytes());
    }

    /// The customer of `ticket` answers its survey mail with `rating` as the first line.
    fn rate(&self, t: DateTime<Utc>, customer: &str, ticket: TicketId, rating: &str) {
        let survey = self.our_mail(ticket, "+csat-");
        self.reply_to(
            t,
            customer,
            &self.inst.support[0],
            &survey,
            &format!("{rating}\r\nThanks."),
        );
    }

    fn status(&self, t: DateTime<Utc>, ticket: TicketId, to: Status, actor: &str) {
        self.set(t);
        Instance::set_status(&self.store, ticket, to, actor, t);
    }

    fn run_jobs(&self, t: DateTime<Utc>) {
        self.set(t);
        self.rt.block_on(self.store.run_due_jobs(t)).unwrap();
    }

    fn report(&self, flags: &Flags, now: DateTime<Utc>) -> report::Report {
        let cfg = self.inst.config();
        let opts = Options::from_flags(&cfg, flags, now).unwrap();
        report::generate(&cfg, &cfg.db_path(), &opts, now).unwrap()
    }
}

/// The tickets of the data set, by name (see `build`).
struct Tickets {
    p1: TicketId,
    t_a: TicketId,
    t_b: TicketId,
    t_c: TicketId,
    t_d: TicketId,
    t_e: TicketId,
    f: [TicketId; 4],
    v: [TicketId; 3],
    previous_printers: [TicketId; 2],
    previous_vpn: [TicketId; 4],
    n1: TicketId,
    p3: TicketId,
}

/// Report time: Friday 2026-11-06 15:00 UTC.
fn now() -> DateTime<Utc> {
    at(11, 6, 15, 0)
}

/// The data set. Previous period (28 Oct - 1 Nov): 2 printer and 4 VPN tickets, never
/// answered. This period (Mon 2 - Fri 6 Nov): 5 printer tickets (`support`), 4 invoice
/// tickets in Chinese, 3 VPN tickets and 3 unrelated ones (`billing`), answered, resolved,
/// closed, reopened and rated as the comments say.
fn build(d: &Desk) -> Tickets {
    d.run_jobs(at(10, 28, 8, 0)); // the scheduler's first sight: counts from here
    let (p1, _) = d.request(
        at(10, 28, 10, 0),
        "Printer jams on every page",
        "Hello, the printer on the second floor jams on every page. Regards, Tom",
    );
    let (p3, _) = d.request(
        at(10, 28, 11, 0),
        "VPN disconnects",
        "My VPN connection disconnects every few minutes.",
    );
    let (p2, _) = d.request(
        at(10, 29, 10, 0),
        "Printer offline again",
        "The office printer is offline again since this morning.",
    );
    let (p4, _) = d.request(
        at(10, 29, 11, 0),
        "VPN login fails",
        "I cannot log in to the VPN, it says authentication failed.",
    );
    let (p5, _) = d.request(
        at(10, 30, 11, 0),
        "VPN very slow",
        "The VPN is very slow when working from home.",
    );
    let (p6, _) = d.request(
        at(10, 30, 12, 0),
        "VPN certificate expired",
        "The VPN client says the certificate expired.",
    );

    // Monday 2 November.
    let (t_a, cust_a) = d.request(
        at(11, 2, 9, 0),
        "Printer on floor 3 is offline",
        "Hi, the printer on floor 3 shows offline and nobody can print.",
    );
    let (f1, _) = d.request(
        at(11, 2, 10, 0),
        "发票抬头开错了",
        "你好，上个月的发票抬头开错了，请帮忙重新开具发票。谢谢",
    );
    d.reply(at(11, 2, 10, 0), &d.alice, t_a, "Please restart it."); // first response 1 h
    let (v1, _) = d.request(
        at(11, 2, 11, 0),
        "VPN connection drops",
        "The VPN connection drops whenever I join a video call.",
    );
    d.reply(at(11, 2, 11, 0), &cust_a, t_a, "Restarted, still offline."); // reopened
    d.reply(at(11, 2, 12, 0), &d.bob, f1, "我们会重新开具。"); // first response 2 h
    d.reply(
        at(11, 2, 12, 0),
        &d.bob,
        v1,
        "#note\r\n\r\nChecking with the network team.",
    );
    d.reply(at(11, 2, 13, 0), &d.bob, f1, "#status resolved"); // resolved, survey
    d.reply(
        at(11, 2, 14, 0),
        &d.alice,
        t_a,
        "A technician is on the way.",
    ); // 2nd answer
    let (t_b, cust_b) = d.request(
        at(11, 2, 16, 0),
        "Printer shows paper jam error",
        "Our printer shows a paper jam error but there is no paper stuck.",
    );

    // Tuesday 3 November.
    let (t_c, _) = d.request(
        at(11, 3, 9, 0),
        "The printer prints blank pages",
        "Since yesterday the printer prints only blank pages.",
    );
    d.reply(at(11, 3, 9, 0), &d.bob, f1, "#status closed");
    d.reply(at(11, 3, 9, 45), &d.bob, t_b, "Open the back cover."); // 1h45m business
    let (f2, _) = d.request(
        at(11, 3, 10, 0),
        "申请开具增值税发票",
        "您好，我们需要开具增值税专用发票，请问需要提供哪些资料？",
    );
    d.reply(at(11, 3, 10, 30), &d.alice, f2, "请提供税号。"); // first response 30 min
    d.reply(at(11, 3, 12, 0), &d.alice, t_c, "Which tray?"); // 3 h: first response late
    d.reply(at(11, 3, 12, 0), &d.alice, t_a, "#status resolved"); // resolved, survey
    d.rate(at(11, 3, 13, 0), &cust_a, t_a, "3");
    let (n1, _) = d.request(
        at(11, 3, 14, 0),
        "Parking permit for visitors",
        "Where can I request a parking permit for visitors next week?",
    );
    d.rate(at(11, 3, 14, 0), &cust_a, t_a, "5"); // replaces the 3

    // Wednesday 4 November.
    d.status(at(11, 4, 9, 0), v1, Status::Closed, "bob");
    d.reply(at(11, 4, 10, 0), &d.bob, t_b, "#status resolved"); // resolved, survey
    let (f3, _) = d.request(
        at(11, 4, 10, 0),
        "发票还没有收到",
        "我们上周申请的电子发票到现在还没有收到，麻烦查一下。",
    );
    let (v2, _) = d.request(
        at(11, 4, 11, 0),
        "Cannot connect to VPN from home",
        "From home I cannot connect to the VPN at all.",
    );
    d.rate(at(11, 4, 11, 0), &cust_b, t_b, "2");
    let (t_d, _) = d.request(
        at(11, 4, 12, 0),
        "Printer not printing",
        "The toner was replaced but the printer is still not printing.",
    );

    // Thursday 5 November.
    let (f4, _) = d.request(
        at(11, 5, 10, 0),
        "发票金额不对",
        "收到的发票金额和订单金额不一致，请核对后重新开票。",
    );
    let (v3, _) = d.request(
        at(11, 5, 11, 0),
        "VPN client asks for password every hour",
        "The VPN client asks for my password every hour.",
    );
    d.request(
        at(11, 5, 14, 0),
        "Coffee machine leaking water",
        "The coffee machine in the kitchen is leaking water onto the floor.",
    );

    // Friday 6 November.
    d.request(
        at(11, 6, 9, 0),
        "会议室投影仪坏了",
        "三楼会议室的投影仪无法开机，下午有客户会议。",
    );
    let (t_e, _) = d.request(
        at(11, 6, 13, 20),
        "Printer driver missing",
        "My new laptop cannot find the printer driver, so I cannot print.",
    );
    d.run_jobs(now()); // the SLA sweep: breaches and warnings as of now
    Tickets {
        p1,
        t_a,
        t_b,
        t_c,
        t_d,
        t_e,
        f: [f1, f2, f3, f4],
        v: [v1, v2, v3],
        previous_printers: [p1, p2],
        previous_vpn: [p3, p4, p5, p6],
        n1,
        p3,
    }
}

fn flags(queue: Option<&str>) -> Flags {
    Flags {
        from: Some("2026-11-02".to_owned()),
        to: Some("2026-11-06".to_owned()),
        queue: queue.map(str::to_owned),
        by: Some("day".to_owned()),
    }
}

fn ids(list: &[TicketId]) -> Value {
    json!(list.iter().map(|t| t.get()).collect::<Vec<_>>())
}

fn counts(new: u64, reopened: u64, resolved: u64, closed: u64) -> Value {
    json!({"new": new, "reopened": reopened, "resolved": resolved, "closed": closed})
}

fn with_counts(mut base: Value, c: Value) -> Value {
    for (k, v) in c.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[test]
fn report_json_matches_a_hand_count() {
    let d = Desk::new();
    let t = build(&d);
    let r = serde_json::to_value(d.report(&flags(None), now())).unwrap();

    assert_eq!(r["from"], "2026-11-02T00:00:00.000Z");
    assert_eq!(r["to"], "2026-11-07T00:00:00.000Z", "--to is inclusive");
    assert_eq!(r["previous_from"], "2026-10-28T00:00:00.000Z");
    assert_eq!((&r["timezone"], &r["by"]), (&json!("UTC"), &json!("day")));

    // Volume. New: Mon a, f1, v1, b; Tue c, f2, n1; Wed f3, v2, d; Thu f4, v3, n2; Fri n3, e.
    // Reopened: a (pending -> open, Mon). Resolved: f1 Mon, a Tue, b Wed. Closed: f1 Tue,
    // v1 Wed.
    let v = &r["volume"];
    assert_eq!(v["total"], counts(15, 1, 3, 2));
    assert_eq!(
        v["queues"],
        json!([
            with_counts(json!({"queue": "billing"}), counts(10, 0, 1, 2)),
            with_counts(json!({"queue": "support"}), counts(5, 1, 2, 0)),
        ])
    );
    let days: Vec<(&str, Value)> = v["periods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["label"].as_str().unwrap(),
                json!([p["new"], p["reopened"], p["resolved"], p["closed"]]),
            )
        })
        .collect();
    assert_eq!(
        days,
        vec![
            ("2026-11-02", json!([4, 1, 1, 0])),
            ("2026-11-03", json!([3, 0, 1, 1])),
            ("2026-11-04", json!([3, 0, 1, 1])),
            ("2026-11-05", json!([3, 0, 0, 0])),
            ("2026-11-06", json!([2, 0, 0, 0])),
        ]
    );
    assert_eq!(
        v["periods"][0]["queues"],
        json!([
            with_counts(json!({"queue": "billing"}), counts(2, 0, 1, 0)),
            with_counts(json!({"queue": "support"}), counts(2, 1, 0, 0)),
        ])
    );

    // First responses (business / wall): a 1h/1h, f1 2h/2h (24×7), b Mon 16:00 -> Tue
    // 09:45 = 1h45m/17h45m, f2 30m/30m, c 3h/3h. Sorted business 0.5 1 1.75 2 3, wall
    // 0.5 1 2 3 17.75: nearest-rank median is the 3rd, p90 the 5th.
    let fr = &r["first_response"];
    assert_eq!(fr["count"], 5);
    assert_eq!(
        fr["business"],
        json!({"median_secs": 6300, "p90_secs": 3 * H})
    );
    assert_eq!(fr["wall"], json!({"median_secs": 2 * H, "p90_secs": 63900}));
    let bins: Vec<&Value> = fr["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["count"])
        .collect();
    assert_eq!(
        bins,
        [
            &json!(1),
            &json!(4),
            &json!(0),
            &json!(0),
            &json!(0),
            &json!(0)
        ]
    );
    assert_eq!(
        fr["queues"],
        json!([
            {"queue": "billing", "count": 2,
             "business": {"median_secs": 1800, "p90_secs": 2 * H},
             "wall": {"median_secs": 1800, "p90_secs": 2 * H}},
            {"queue": "support", "count": 3,
             "business": {"median_secs": 6300, "p90_secs": 3 * H},
             "wall": {"median_secs": 3 * H, "p90_secs": 63900}},
        ])
    );

    // Resolution: f1 3h (24×7), a Mon 09:00 -> Tue 12:00 = 11h business / 27h wall, b Mon
    // 16:00 -> Wed 10:00 = 10h / 42h, v1 closed Mon 11:00 -> Wed 09:00 = 46h (24×7).
    let res = &r["resolution"];
    assert_eq!(res["count"], 4);
    assert_eq!(
        res["business"],
        json!({"median_secs": 10 * H, "p90_secs": 46 * H})
    );
    assert_eq!(
        res["wall"],
        json!({"median_secs": 27 * H, "p90_secs": 46 * H})
    );
    let bins: Vec<i64> = res["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_i64().unwrap())
        .collect();
    assert_eq!(bins, [0, 1, 0, 2, 1, 0]);

    // SLA (support only; 2 business hours to answer, 24 to resolve). First response: a and
    // b met; c answered an hour late; d never answered (breached at the sweep); e at 1h40m
    // of 2h when the sweep ran (over the 80 % warning). Resolution: a and b resolved in
    // time; c paused (pending), d at 19h of 24h, e just started: running.
    assert_eq!(
        r["sla"],
        json!([
            {"queue": "support", "deadline": "first_response", "met": 2, "breached": 2,
             "at_risk": 1, "running": 0, "compliance": 0.5},
            {"queue": "support", "deadline": "resolution", "met": 2, "breached": 0,
             "at_risk": 0, "running": 3, "compliance": 1.0},
        ])
    );
    for (ticket, warned, breached) in [(t.t_e, true, false), (t.t_d, false, true)] {
        let fr = d
            .inst
            .ticket(ticket.get())
            .sla
            .into_iter()
            .find(|x| x.deadline == "first_response")
            .unwrap();
        assert_eq!(
            (fr.warned_at.is_some(), fr.breached_at.is_some()),
            (warned, breached),
            "#{ticket}"
        );
    }

    // Satisfaction: surveys for f1, a, b; a rated 3 then 5 (the 5 counts), b rated 2.
    assert_eq!(
        r["satisfaction"],
        json!({"surveys_sent": 3, "responded": 2, "response_rate": 0.6667,
               "responses": 2, "average": 3.5, "distribution": [0, 1, 0, 0, 1]})
    );

    // Agents. alice: answers a (twice), f2, c; first responses a 1h, f2 30m, c 3h; holds c
    // and f2 (pending); a rated 5. bob: answers f1, b; a note on v1 and its closing; first
    // responses f1 2h, b 1h45m (17h45m wall); holds nothing open; b rated 2.
    assert_eq!(
        r["agents"],
        json!([
            {"agent": "alice", "tickets_handled": 3, "answers": 4, "first_responses": 3,
             "first_response_median_secs": H, "first_response_median_wall_secs": H,
             "open_now": 2, "capacity": 10, "satisfaction_responses": 1,
             "satisfaction_average": 5.0},
            {"agent": "bob", "tickets_handled": 3, "answers": 2, "first_responses": 2,
             "first_response_median_secs": 6300, "first_response_median_wall_secs": 2 * H,
             "open_now": 0, "capacity": 5, "satisfaction_responses": 1,
             "satisfaction_average": 2.0},
        ])
    );

    // Longest open: the 6 unanswered tickets of the previous period, then c, f2, n1, f3.
    let open: Vec<i64> = r["longest_open"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    let p = &t.previous_printers;
    let pv = &t.previous_vpn;
    let want: Vec<i64> = [
        p[0], pv[0], p[1], pv[1], pv[2], pv[3], t.t_c, t.f[1], t.n1, t.f[2],
    ]
    .iter()
    .map(|x| x.get())
    .collect();
    assert_eq!(open, want);
    let oldest = &r["longest_open"][0];
    assert_eq!(oldest["id"], t.p1.get());
    assert_eq!(oldest["subject"], "Printer jams on every page");
    assert_eq!(
        oldest["age_secs"],
        9 * 24 * H + 5 * H,
        "Wed 10:00 to Fri 15:00 a week later"
    );
    // Wed 7h, Thu 8h, Fri 8h, Mon-Thu 4 × 8h, Fri 6h.
    assert_eq!(oldest["business_age_secs"], 61 * H);
    assert_eq!(r["longest_open"][1]["id"], t.p3.get());

    // Top problems: printers (5, 2 before), invoices in Chinese (4, none before), VPN (3, 4
    // before); the parking, coffee and projector tickets stay out.
    let problems = r["top_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let check = |i: usize, word: &str, examples: &[TicketId], count, previous, change, trend| {
        let g = &problems[i];
        assert!(
            g["terms"].as_array().unwrap().iter().any(|w| w == word),
            "group {i}: {g}"
        );
        assert_eq!(g["examples"], ids(examples), "group {i}: {g}");
        assert_eq!(
            (&g["count"], &g["previous"], &g["change"], &g["trend"]),
            (
                &json!(count),
                &json!(previous),
                &json!(change),
                &json!(trend)
            ),
            "group {i}: {g}"
        );
    };
    check(
        0,
        "printer",
        &[t.t_a, t.t_b, t.t_c, t.t_d, t.t_e],
        5,
        2,
        3,
        "up",
    );
    check(1, "发票", &t.f, 4, 0, 4, "new");
    check(2, "vpn", &t.v, 3, 4, -1, "down");
    assert_eq!(problems[0]["terms"][0], "printer");
    assert_eq!(problems[1]["terms"][0], "发票");
    assert_eq!(problems[2]["terms"][0], "vpn");

    // One queue: only its tickets, deadlines and groups.
    let r = serde_json::to_value(d.report(&flags(Some("support")), now())).unwrap();
    assert_eq!(r["volume"]["total"], counts(5, 1, 2, 0));
    assert_eq!(r["first_response"]["count"], 3);
    assert_eq!(r["resolution"]["count"], 2);
    assert_eq!(r["sla"].as_array().unwrap().len(), 2);
    assert_eq!(r["satisfaction"]["responses"], 2);
    let problems = r["top_problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0]["examples"],
        ids(&[t.t_a, t.t_b, t.t_c, t.t_d, t.t_e])
    );
    assert_eq!(problems[0]["previous"], 2);
    assert_eq!(r["agents"][0]["answers"], 3, "alice: a twice, c");
    assert_eq!(r["longest_open"][0]["id"], t.p1.get());

    // CSV and text carry the same figures.
    let full = d.report(&flags(None), now());
    let csv = report::to_csv(&full);
    assert!(csv.contains("volume,total,*,15,1,3,2\r\n"), "{csv}");
    assert!(
        csv.contains("times,first_response,*,5,6300,10800,7200,63900\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("sla,support,first_response,2,2,1,0,0.5\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("satisfaction,3,2,0.6667,2,3.5,0,1,0,0,1\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("agents,alice,3,4,3,3600,3600,2,10,1,5\r\n"),
        "{csv}"
    );
    let text = report::to_text(&full);
    assert!(
        text.contains("Volume: 15 new, 1 reopened, 3 resolved, 2 closed"),
        "{text}"
    );
    assert!(text.contains("median 1h 45m business (2h wall)"), "{text}");
}

#[test]
fn report_flags_are_checked() {
    let d = Desk::new();
    let cfg = d.inst.config();
    let now = now();
    let bad = |f: Flags| Options::from_flags(&cfg, &f, now).unwrap_err().to_string();
    let mut f = flags(None);
    f.from = Some("2026-11-31".to_owned());
    assert!(bad(f).starts_with("invalid date \"2026-11-31\""));
    let mut f = flags(None);
    f.from = Some("2026-11-07".to_owned());
    assert!(bad(f).starts_with("empty period"));
    assert_eq!(
        bad(flags(Some("sales"))),
        "unknown queue \"sales\" (queues: support, billing)"
    );
    let mut f = flags(None);
    f.by = Some("fortnight".to_owned());
    assert_eq!(
        bad(f),
        "unknown period \"fortnight\" (use day, week or month)"
    );
    // Defaults: the 30 days up to the end of today, by day.
    let o = Options::from_flags(&cfg, &Flags::default(), now).unwrap();
    assert_eq!((o.from, o.to), (at(10, 8, 0, 0), at(11, 7, 0, 0)));
    assert_eq!(o.by, report::Period::Day);
    // An empty database reports zeros and empty lists, charts included.
    d.run_jobs(at(10, 28, 8, 0));
    let r = d.report(&flags(None), now);
    assert_eq!(r.volume.total.new, 0);
    assert_eq!(r.volume.periods.len(), 5);
    assert!(r.top_problems.is_empty() && r.longest_open.is_empty());
    assert_eq!(r.first_response.business.median_secs, None);
    let html = report::to_html(&r);
    assert_eq!(html.matches("no data in this period").count(), 5);
}

// ---------------------------------------------------------------- HTML in Chromium

const CHARTS: [&str; 5] = ["volume", "response", "sla", "satisfaction", "problems"];

/// The `<svg …>…</svg>` of chart `name` in `html`.
fn chart<'a>(html: &'a str, name: &str) -> &'a str {
    let start = html
        .find(&format!("data-chart=\"{name}\""))
        .unwrap_or_else(|| panic!("chart {name} missing"));
    let start = html[..start].rfind("<svg").unwrap();
    let end = start + html[start..].find("</svg>").unwrap() + "</svg>".len();
    &html[start..end]
}

fn chromium(args: &[&str], out: &Path) -> std::process::Output {
    let binary = "chromium";
    let found = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "Debian's `chromium` is needed for this test: scripts/test installs it, or run \
         `apt-get install -y --no-install-recommends chromium`"
    );
    let profile = out.join("profile");
    let mut cmd = Command::new(binary);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn html_report_renders_in_headless_chromium() {
    let d = Desk::new();
    build(&d);
    let html = report::to_html(&d.report(&flags(None), now()));
    for name in CHARTS {
        let svg = chart(&html, name);
        assert!(svg.contains("class=\"chart\""), "{name}");
        assert!(!svg.contains("no data in this period"), "{name} is empty");
        // The white background plus at least one bar.
        assert!(svg.matches("<rect").count() > 2, "{name}: {svg}");
    }
    assert!(!html.contains("<script"), "no JavaScript");
    for external in [" src=", "href=", "url(", "@import"] {
        assert!(!html.contains(external), "no external asset: {external}");
    }
    assert!(html.contains("发票"), "Chinese words survive");

    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let url = format!("file://{}", page.display());
    let shot = dir.path().join("shot.png");

    let out = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,2000",
            &url,
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("the screenshot exists");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(png.len() > 10_000, "a real picture: {} bytes", png.len());
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1200, 2000));
    if let Some(keep) = std::env::var_os("POSTDESK_REPORT_SHOT") {
        let keep = Path::new(&keep);
        std::fs::copy(&shot, keep).unwrap();
        std::fs::write(keep.with_extension("html"), &html).unwrap();
    }

    let out = chromium(&["--dump-dom", &url], dir.path());
    assert!(out.status.success(), "chromium --dump-dom failed");
    let dom = String::from_utf8_lossy(&out.stdout);
    for name in CHARTS {
        let svg = chart(&dom, name);
        assert!(svg.matches("<rect").count() > 2, "{name} rendered: {svg}");
    }
}
