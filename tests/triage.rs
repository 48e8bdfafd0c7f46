//! Triage (issue 16) as a sysadmin meets it: `postdesk triage evaluate` on a generated
//! history, `triage train`, and on the real mail stack a new request routed by the model
//! (`mode = "apply"`), a matching rule winning over it, and the relay's `Suggested:` line.

mod common;

use std::sync::Arc;

use common::{history, Instance, Setup};
use postdesk::model::MailboxName;

/// A store holding `n` generated, labelled tickets (10% label noise), written through
/// the import path and `ticket set`.
fn instance_with_history(n: usize, setup: Setup) -> (Instance, Vec<history::Ticket>) {
    let inst = Instance::new(Setup {
        tail: format!("{}{}", history::queue_tables(), setup.tail),
        ..setup
    });
    let desk = inst.desk(Arc::new(postdesk::clock::SystemClock));
    let start = chrono::Utc::now() - chrono::Duration::days(400);
    let tickets = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(history::build(
            &desk,
            &MailboxName::new("mb0"),
            &inst.support[0],
            n,
            7,
            0.1,
            start,
        ));
    (inst, tickets)
}

#[test]
fn evaluate_beats_the_majority_baseline_on_a_generated_history() {
    let (inst, _) = instance_with_history(5_000, Setup::default());
    let (ok, out, err) = inst.cli(&["triage", "evaluate", "--json"]);
    assert!(ok, "{err}");
    let e: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(e["tickets"], 5_000, "{out}");
    assert_eq!(e["train"], 4_000);
    assert_eq!(e["test"], 1_000);
    let top: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(top, ["labels", "test", "tickets", "train"], "{out}");
    let labels: Vec<&str> = e["labels"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(labels, ["priority", "queue", "tags"]);
    for label in ["queue", "priority", "tags"] {
        let f = &e["labels"][label];
        let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "accuracy",
                "accuracy_at_coverage",
                "baseline_accuracy",
                "coverage",
                "macro_f1",
                "rules_accuracy"
            ],
            "{label}"
        );
        for k in keys {
            let x = f[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{label}.{k} is a number: {f}"));
            assert!((0.0..=1.0).contains(&x), "{label}.{k} = {x}");
        }
    }
    let q = &e["labels"]["queue"];
    let fig = |f: &serde_json::Value, k: &str| f[k].as_f64().unwrap();
    // Five queues, the largest about a third: the model must do far better.
    assert!(
        fig(q, "accuracy") > fig(q, "baseline_accuracy") + 0.4,
        "queue: {q}"
    );
    assert!(fig(q, "accuracy") > 0.85, "queue: {q}");
    assert!(fig(q, "macro_f1") > 0.8, "queue: {q}");
    // Sure answers are right more often than all answers.
    assert!(
        fig(q, "accuracy_at_coverage") >= fig(q, "accuracy"),
        "queue: {q}"
    );
    assert!(fig(q, "coverage") > 0.5, "queue: {q}");
    let p = &e["labels"]["priority"];
    assert!(
        fig(p, "accuracy") > fig(p, "baseline_accuracy") + 0.1,
        "priority: {p}"
    );
    let t = &e["labels"]["tags"];
    assert!(
        fig(t, "accuracy") > fig(t, "baseline_accuracy"),
        "tags: {t}"
    );
    assert!(fig(t, "macro_f1") > 0.6, "tags: {t}");
    // Without rules, the rules answer the mailbox's queue, which no ticket ends in.
    assert_eq!(fig(q, "rules_accuracy"), 0.0, "queue: {q}");

    let (ok, out, err) = inst.cli(&["triage", "evaluate"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("5000 tickets: trained on the older 4000, tested on the newest 1000"),
        "{out}"
    );

    let (ok, out, err) = inst.cli(&["triage", "train"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("trained on 5000 tickets"), "{out}");
    assert!(out.contains("5 queues, 3 priorities"), "{out}");
    let model = inst.dir.path().join("data/triage.model");
    let meta = std::fs::metadata(&model).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "only the owner reads it"
    );
    assert!(
        meta.len() < 8 << 20,
        "the model file is small: {} bytes",
        meta.len()
    );
}

/// `[triage] mode = "apply"` on the real mail stack: a model trained on 1,000 handled
/// tickets routes a new VPN request to `it` with a `triage.applied` event; a matching
/// rule wins over it; the agent's relay shows the suggestion.
#[test]
fn apply_routes_to_the_predicted_queue_unless_a_rule_matches_and_the_relay_shows_it() {
    let alice = common::unique("alice", "example.test");
    let queues: Vec<String> = history::QUEUES.iter().map(|q| format!("\"{q}\"")).collect();
    let tail = format!(
        r#"
[[agent]]
name = "alice"
addresses = ["{alice}"]
queues = ["support", {}]

[[rule]]
name = "contracts"
keywords = ["contract renewal"]
queue = "sales"

[triage]
mode = "apply"
queue_threshold = 0.6
priority_threshold = 0.6
tags_threshold = 0.6
"#,
        queues.join(", ")
    );
    let (inst, _) = instance_with_history(
        1_000,
        Setup {
            tail,
            ..Setup::default()
        },
    );
    let (ok, out, err) = inst.cli(&["triage", "train"]);
    assert!(
        ok && out.starts_with("trained on 1000 tickets"),
        "{out}{err}"
    );
    let _d = inst.start();
    let support = inst.support[0].clone();
    let vpn = common::unique("vpn", "customer.test");
    let contract = common::unique("contract", "customer.test");
    let body = "Hello,\r\nThe VPN client says the certificate expired. I cannot reach the intranet from home.\r\n";
    common::smtp_send(
        &vpn,
        &[&support],
        &common::simple_mail(
            &vpn,
            &support,
            "VPN client will not connect",
            body,
            &common::new_message_id(),
            "",
        ),
    );
    let with_rule = format!("{body}It is about our contract renewal too.\r\n");
    common::smtp_send(
        &contract,
        &[&support],
        &common::simple_mail(
            &contract,
            &support,
            "VPN client will not connect",
            &with_rule,
            &common::new_message_id(),
            "",
        ),
    );
    let ticket_of = |who: &str| {
        common::wait_until(std::time::Duration::from_secs(20), "ticket", || {
            inst.tickets()
                .into_iter()
                .find(|t| t.requester.as_deref() == Some(who))
        })
    };
    let show = |id: i64| -> serde_json::Value {
        let (ok, out, err) = inst.cli(&["ticket", "show", &id.to_string(), "--json"]);
        assert!(ok, "{err}");
        serde_json::from_str(&out).unwrap()
    };

    // The model decides: queue it, with the event and its confidence.
    let t = ticket_of(&vpn);
    assert_eq!(t.queue, "it", "{t:?}");
    let events = inst.events(t.id.get());
    let applied: Vec<_> = events
        .iter()
        .filter(|(k, _, _)| k == "triage.applied")
        .collect();
    assert!(
        applied
            .iter()
            .any(|(_, new, detail)| new.as_deref() == Some("it")
                && detail
                    .as_deref()
                    .is_some_and(|d| d.starts_with("confidence 0."))),
        "{events:?}"
    );
    let j = show(t.id.get());
    assert_eq!(j["triage"]["mode"], "apply", "{}", j["triage"]);
    assert_eq!(j["triage"]["queue"]["value"], "it");
    assert_eq!(j["triage"]["queue"]["applied"], true);
    let conf = j["triage"]["queue"]["confidence"].as_f64().unwrap();
    assert!((0.6..=1.0).contains(&conf), "{conf}");
    assert!(
        j["triage"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["value"] == "vpn" && g["applied"] == true),
        "{}",
        j["triage"]
    );
    assert!(t.tags.contains(&"vpn".to_owned()), "{t:?}");

    // A matching rule wins: sales, and the model's queue is kept only as a suggestion.
    let t2 = ticket_of(&contract);
    assert_eq!(t2.queue, "sales", "{t2:?}");
    let j2 = show(t2.id.get());
    assert_eq!(j2["triage"]["queue"]["value"], "it", "{}", j2["triage"]);
    assert_eq!(j2["triage"]["queue"]["applied"], false);
    assert!(
        !inst
            .events(t2.id.get())
            .iter()
            .any(|(k, new, _)| k == "triage.applied" && new.as_deref() == Some("it")),
        "no triage.applied for the queue a rule decided"
    );

    // The relay to the agent carries the suggestion in its header block.
    let relays = common::wait_mail_where(&alice, 2, "relays", |m| m.subject.contains("VPN"));
    for r in &relays {
        let line = r
            .text
            .lines()
            .find(|l| l.starts_with("Suggested: "))
            .unwrap_or_else(|| panic!("no Suggested: line in {}", r.text));
        assert!(line.starts_with("Suggested: queue it (0."), "{line}");
    }

    // An agent moves the first ticket: the report counts one correction.
    let (ok, _, err) = inst.cli(&[
        "ticket",
        "set",
        &t.id.get().to_string(),
        "--queue",
        "billing",
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = inst.cli(&["report", "--json"]);
    assert!(ok, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tr = &r["triage"];
    assert_eq!(tr["tickets"], 2, "{tr}");
    assert_eq!(
        tr["triaged"], 2,
        "both got a tag or a queue from triage: {tr}"
    );
    assert_eq!(tr["share_triaged"], 1.0, "{tr}");
    assert_eq!(tr["corrected"], 1, "{tr}");
    let applied = tr["applied"].as_u64().unwrap();
    assert!(applied >= 3, "{tr}");
    let acc = tr["accuracy"].as_f64().unwrap();
    assert!((acc - (1.0 - 1.0 / applied as f64)).abs() < 1e-3, "{tr}");
    let (ok, out, _) = inst.cli(&["report"]);
    assert!(ok);
    assert!(
        out.contains("Triage: 2 of 2 new tickets triaged automatically (100.0%)"),
        "{out}"
    );
    let (ok, out, _) = inst.cli(&["report", "--csv"]);
    assert!(ok);
    let line = out
        .lines()
        .find(|l| l.starts_with("triage,2,"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("triage,2,2,2,1"), "{line}");
    let html = inst.dir.path().join("report.html");
    let (ok, _, err) = inst.cli(&["report", "--html", html.to_str().unwrap()]);
    assert!(ok, "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<h2>Triage</h2>"),
        "the HTML report has a triage block"
    );
}

/// Run by `bench/triage` in release: training time and model size at 10,000 and 100,000
/// tickets, prediction latency, `evaluate` on a generated 10,000-ticket store, and ingest
/// throughput with `[triage] mode = "apply"` against `"off"` in the same process. Prints
/// one `triage-bench {json}` line.
#[test]
#[ignore = "benchmark driver for bench/triage"]
fn bench_triage() {
    use postdesk::triage::{self, model::Model};
    use std::time::Instant;
    let sizes: Vec<usize> = std::env::var("POSTDESK_BENCH_TRIAGE_SIZES")
        .unwrap_or_else(|_| "10000,100000".to_owned())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let ingest_n: usize = std::env::var("POSTDESK_BENCH_TRIAGE_INGEST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5_000);
    let start = chrono::Utc::now() - chrono::Duration::days(400);
    let now = chrono::Utc::now();
    let mut training = Vec::new();
    let mut last_model = None;
    for &n in &sizes {
        let mut gen = history::Gen::new(11, "support@example.test", 0.1);
        let rows: Vec<postdesk::store::TriageHistoryRow> = (0..n)
            .map(|i| {
                let t = gen.ticket(start + chrono::Duration::minutes(i as i64));
                postdesk::store::TriageHistoryRow {
                    ticket: postdesk::model::TicketId::new(i as i64 + 1),
                    created_at: start,
                    subject: t.subject,
                    text: t.text,
                    queue: t.queue,
                    priority: t.priority,
                    tags: t.tags,
                    mailbox: "mb0".to_owned(),
                    requester: None,
                }
            })
            .collect();
        let t0 = Instant::now();
        let examples = triage::examples(&rows);
        let features_s = t0.elapsed().as_secs_f64();
        let model = Model::train(&examples, now).unwrap();
        let total_s = t0.elapsed().as_secs_f64();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("triage.model");
        let bytes = model.save(&path).unwrap();
        eprintln!("trained {n}: {total_s:.2} s ({features_s:.2} s features), {bytes} bytes");
        training.push(serde_json::json!({
            "tickets": n, "seconds": total_s, "features_seconds": features_s, "bytes": bytes,
            "tags": model.tags.len(),
        }));
        last_model = Some(model);
    }
    // Prediction: features and all labels of one new message, as the prepare stage does.
    let model = last_model.unwrap();
    let mut gen = history::Gen::new(99, "support@example.test", 0.0);
    let probes: Vec<history::Ticket> = (0..2_000).map(|_| gen.ticket(now)).collect();
    let mut lat: Vec<f64> = probes
        .iter()
        .map(|t| {
            let t0 = Instant::now();
            let p = model.predict(&triage::features::of_ticket(&t.subject, &t.text));
            std::hint::black_box(p);
            t0.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];

    // evaluate on a store built through the import path, and `triage train` from it.
    let (inst, _) = instance_with_history(10_000, Setup::default());
    let cfg = inst.config();
    let t0 = Instant::now();
    let trained = triage::train(&inst.reader(), &cfg, now).unwrap();
    let train_store_s = t0.elapsed().as_secs_f64();
    let rows = inst
        .reader()
        .triage_history(cfg.triage.max_tickets)
        .unwrap();
    let evaluation =
        triage::evaluate::evaluate(&triage::labelled(&cfg, &rows), &cfg.triage, now).unwrap();

    // Ingest with triage on and off: the same messages into two fresh stores, in turns.
    let mut gen = history::Gen::new(5, "support@example.test", 0.0);
    let raws: Vec<Vec<u8>> = (0..ingest_n).map(|_| gen.ticket(now).raw).collect();
    let model_file = trained.path.clone();
    let ingest = |mode: &str| -> f64 {
        let inst = Instance::new(Setup {
            tail: format!("{}\n[triage]\nmode = \"{mode}\"\n", history::queue_tables()),
            ..Setup::default()
        });
        std::fs::create_dir_all(inst.dir.path().join("data")).unwrap();
        std::fs::copy(&model_file, inst.dir.path().join("data/triage.model")).unwrap();
        let desk = inst.desk(Arc::new(postdesk::clock::SystemClock));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mb = MailboxName::new("mb0");
        let t0 = Instant::now();
        rt.block_on(async {
            for chunk in raws.chunks(500) {
                let ready = desk.prepare(chunk.to_vec()).await;
                desk.import(mb.clone(), ready, true, now).await.unwrap();
            }
        });
        let per_s = raws.len() as f64 / t0.elapsed().as_secs_f64();
        if mode != "off" {
            let t = inst.tickets();
            assert!(
                t.iter().any(|t| t.queue != "support"),
                "triage applied queues while ingesting"
            );
        }
        per_s
    };
    let (mut off, mut on) = (0f64, 0f64);
    for _ in 0..2 {
        off = off.max(ingest("off"));
        on = on.max(ingest("apply"));
    }
    let out = serde_json::json!({
        "training": training,
        "predict_us": {"median": q(0.5), "p99": q(0.99), "max": lat[lat.len() - 1], "n": lat.len()},
        "store_train": {"tickets": trained.tickets, "seconds": train_store_s, "bytes": trained.bytes},
        "evaluate": evaluation,
        "ingest": {"messages": ingest_n, "off_per_s": off, "apply_per_s": on, "slowdown": 1.0 - on / off},
    });
    println!("triage-bench {out}");
}

/// The daemon retrains on `[triage] schedule` and uses the new model without a restart:
/// before the night there is no model and a new ticket gets no prediction; after it, the
/// model file is there and the next ticket is routed by it.
#[test]
fn the_daemon_trains_at_night_and_uses_the_model_without_restart() {
    use postdesk::clock::{Clock, ManualClock};
    let tail = "\n[triage]\nmode = \"apply\"\nqueue_threshold = 0.6\nschedule = \"0 0 2 * * *\"\n";
    let (inst, _) = instance_with_history(
        600,
        Setup {
            tail: tail.to_owned(),
            ..Setup::default()
        },
    );
    let model = inst.dir.path().join("data/triage.model");
    assert!(!model.exists());
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let _d = inst.start_with_clock(clock.clone());
    let support = inst.support[0].clone();
    let send = |who: &str| {
        let body =
            "Hello,\r\nThe VPN drops every 60 minutes, client version 5.2. Logs are attached.\r\n";
        common::smtp_send(
            who,
            &[&support],
            &common::simple_mail(
                who,
                &support,
                "VPN disconnects every hour",
                body,
                &common::new_message_id(),
                "",
            ),
        );
        common::wait_until(std::time::Duration::from_secs(20), "ticket", || {
            inst.tickets()
                .into_iter()
                .find(|t| t.requester.as_deref() == Some(who))
        })
    };
    let before = send(&common::unique("before", "customer.test"));
    assert_eq!(before.queue, "support", "no model yet: the mailbox's queue");
    let (_, out, _) = inst.cli(&["ticket", "show", &before.id.get().to_string(), "--json"]);
    let j: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(j["triage"].is_null(), "{}", j["triage"]);

    // The scheduler saw the job first at start (it counts from then); a day later the
    // 02:00 occurrence is due.
    std::thread::sleep(std::time::Duration::from_secs(2));
    clock.set(clock.now() + chrono::Duration::days(1));
    common::wait_until(
        std::time::Duration::from_secs(60),
        "the nightly model",
        || model.exists().then_some(()),
    );
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let after = send(&common::unique("after", "customer.test"));
    assert_eq!(after.queue, "it", "the new model, without a restart");
}
