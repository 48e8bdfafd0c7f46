//! Hostile mail has a bounded cost (issue 12, DESIGN.md invariant 6), on the real Dovecot
//! and Postfix: each input that once stalled, bloated or crashed the daemon is APPENDed
//! to the support mailbox of a running `postdesk run`, then one ordinary request; the
//! ordinary request is acknowledged, every hostile message is ticketed or quarantined with
//! its reason, the daemon is alive, and a restart processes none of them again.
//!
//! The bound on the ordinary acknowledgement here is 60 s: a debug build on a shared CI
//! machine with two cores, behind about 40 MB of hostile mail. The release figures (the
//! time each input costs, the ordinary request's latency with and without the hostile
//! batch) come from `bench/hostile`, in docs/BENCHMARKS.md.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;

/// One hostile input: a short name (also in its subject, `hostile-<name>`) and its bytes.
struct Hostile {
    name: &'static str,
    raw: Vec<u8>,
}

fn head(from: &str, to: &str, subject: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{}>\r\nDate: Wed, 25 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n{extra}",
        new_message_id()
    )
}

fn plain(from: &str, to: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        head(from, to, subject, extra)
    )
    .into_bytes()
}

/// The inputs of issue 12, each from its own sender at `domain`, to `to`.
fn hostile_inputs(to: &str, domain: &str) -> Vec<Hostile> {
    let from = |n: &str| unique(&format!("evil-{n}"), domain);
    let mut out = Vec::new();

    // `#tag` with 80,000 words (640 KB): quadratic command parsing in the writer.
    let words: Vec<String> = (0..80_000).map(|i| format!("w{i}")).collect();
    out.push(Hostile {
        name: "tag-words",
        raw: plain(
            &from("tag"),
            to,
            "hostile-tag-words",
            "",
            &format!("#tag {}\r\nPlease help.", words.join(" ")),
        ),
    });

    // 1.2 MB of `#sN` lines: one refused-command event per line.
    let mut lines = String::new();
    let mut i = 0;
    while lines.len() < 1_200_000 {
        lines.push_str(&format!("#s{i}\r\n"));
        i += 1;
    }
    out.push(Hostile {
        name: "command-lines",
        raw: plain(&from("lines"), to, "hostile-command-lines", "", &lines),
    });

    // 10,000 declared charsets and 100 broken encoded words: charset repair O(E·K²).
    let broken: Vec<&str> = (0..100).map(|_| "=?x-broken?B?@@@@?=").collect();
    let mut body = String::from("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n");
    for k in 0..10_000 {
        body.push_str(&format!(
            "--b\r\nContent-Type: text/plain; charset=\"x-cs-{k}\"\r\n\r\nx\r\n"
        ));
    }
    body.push_str("--b--\r\n");
    out.push(Hostile {
        name: "charsets",
        raw: format!(
            "{}{body}",
            head(
                &from("cs"),
                to,
                &format!("hostile-charsets {}", broken.join(" ")),
                ""
            )
        )
        .into_bytes(),
    });

    // 100,000 nested <div> (500 KB): quadratic in html2text.
    out.push(Hostile {
        name: "nested-html",
        raw: format!(
            "{}Content-Type: text/html; charset=utf-8\r\n\r\n<html><body>{}deep{}</body></html>\r\n",
            head(&from("html"), to, "hostile-nested-html", ""),
            "<div>".repeat(100_000),
            "</div>".repeat(100_000)
        )
        .into_bytes(),
    });

    // 2,000 levels of nested multipart.
    let mut mime = String::new();
    for d in 0..2_000 {
        mime.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"n{d}\"\r\n\r\n--n{d}\r\n"
        ));
    }
    mime.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
    for d in (0..2_000).rev() {
        mime.push_str(&format!("--n{d}--\r\n"));
    }
    out.push(Hostile {
        name: "mime-depth",
        raw: format!(
            "{}{mime}",
            head(&from("mime"), to, "hostile-mime-depth", "")
        )
        .into_bytes(),
    });

    // One header line of 1 MB.
    out.push(Hostile {
        name: "header-line",
        raw: plain(
            &from("hdr"),
            to,
            "hostile-header-line",
            &format!("X-Junk: {}\r\n", "a".repeat(1 << 20)),
            "A long header.",
        ),
    });

    // 40,000 `Re:` prefixes.
    out.push(Hostile {
        name: "re-prefixes",
        raw: plain(
            &from("re"),
            to,
            &format!("{}hostile-re-prefixes", "Re: ".repeat(40_000)),
            "",
            "So many replies.",
        ),
    });

    // A 25 MB attachment: 34 MB encoded, over the default max_message_bytes (32 MiB).
    let blob: Vec<u8> = (0..25_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let mut wrapped = String::with_capacity(b64.len() * 78 / 76 + 2);
    for chunk in b64.as_bytes().chunks(76) {
        wrapped.push_str(std::str::from_utf8(chunk).unwrap());
        wrapped.push_str("\r\n");
    }
    out.push(Hostile {
        name: "attachment",
        raw: format!(
            "{}Content-Type: multipart/mixed; boundary=\"a\"\r\n\r\n--a\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--a\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{wrapped}--a--\r\n",
            head(&from("att"), to, "hostile-attachment", "")
        )
        .into_bytes(),
    });

    // 5,000 Cc addresses.
    let cc: Vec<String> = (0..5_000).map(|i| format!("cc{i}@{domain}")).collect();
    out.push(Hostile {
        name: "cc-flood",
        raw: plain(
            &from("cc"),
            to,
            "hostile-cc-flood",
            &format!("Cc: {}\r\n", cc.join(",\r\n ")),
            "Everyone, look.",
        ),
    });

    // CR/LF in an encoded display name; ESC sequences in an encoded subject.
    out.push(Hostile {
        name: "crlf-name",
        raw: plain(
            &format!(
                "{} <{}>",
                encoded("Eve\r\nBcc: mallory@evil.test"),
                from("crlf")
            ),
            to,
            "hostile-crlf-name",
            "",
            "Hello.",
        ),
    });
    out.push(Hostile {
        name: "esc-subject",
        raw: plain(
            &from("esc"),
            to,
            &encoded("hostile-esc-subject \u{1b}[2J\u{1b}]0;pwned\u{7}"),
            "",
            "Hello.",
        ),
    });
    out
}

/// An RFC 2047 encoded word holding `text` as is (control characters included).
fn encoded(text: &str) -> String {
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// What became of each hostile input: `(name, "ticket #N" | "quarantine #N: reason")`.
fn outcomes(inst: &Instance, inputs: &[Hostile]) -> Vec<(&'static str, String)> {
    let reader = inst.reader();
    let tickets = inst.tickets();
    let quarantine = reader.quarantine_list().unwrap();
    inputs
        .iter()
        .map(|h| {
            let marker = format!("hostile-{}", h.name);
            let ticket = tickets.iter().find(|t| t.subject.contains(&marker));
            let held = quarantine.iter().find(|q| {
                reader
                    .quarantine_raw(q.id)
                    .unwrap()
                    .is_some_and(|(_, raw)| contains(&raw, marker.as_bytes()))
            });
            let outcome = match (ticket, held) {
                (Some(t), None) => format!("ticket #{}", t.id.get()),
                (None, Some(q)) => {
                    assert!(
                        !q.reason.trim().is_empty(),
                        "{marker}: quarantined without a reason"
                    );
                    format!("quarantine #{}: {}", q.id.get(), q.reason)
                }
                (Some(t), Some(q)) => panic!(
                    "{marker}: both ticket #{} and quarantine #{}",
                    t.id.get(),
                    q.id.get()
                ),
                (None, None) => panic!("{marker}: neither ticketed nor quarantined"),
            };
            (h.name, outcome)
        })
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Sends an ordinary request from a fresh customer; returns the customer and how long
/// the acknowledgement took to reach the customer's INBOX.
fn ordinary_request(inst: &Instance, limit: Duration) -> (String, Duration) {
    let customer = unique("ordinary", "customer.test");
    let raw = simple_mail(
        &customer,
        &inst.support[0],
        "Printer offline",
        "Hello,\nthe printer is offline.",
        &new_message_id(),
        "",
    );
    let sent = Instant::now();
    smtp_send(&customer, &[&inst.support[0]], &raw);
    let mut imap = Imap::login(&customer);
    wait_until(
        limit,
        &format!("the acknowledgement for {customer}"),
        || (imap.count() >= 1).then_some(()),
    );
    (customer, sent.elapsed())
}

#[test]
fn hostile_mail_is_ticketed_or_quarantined_and_the_mailbox_goes_on() {
    let inst = Instance::new(Setup::default());
    let inputs = hostile_inputs(&inst.support[0], "evil.test");
    let mut daemon = inst.spawn_logged("warn", &inst.dir.path().join("daemon.log"));
    wait_until(Duration::from_secs(30), "the daemon's first sync", || {
        inst.db()
            .exists()
            .then(|| postdesk::store::Reader::open(&inst.db()).ok())
            .flatten()
            .and_then(|r| r.status(&[]).ok())
            .filter(|s| s.mailboxes.iter().any(|m| m.connected))
    });
    let mut imap = Imap::login(&inst.support[0]);
    let total: usize = inputs.iter().map(|h| h.raw.len()).sum();
    for h in &inputs {
        imap.append(&h.raw);
    }
    eprintln!("appended {} hostile messages, {total} bytes", inputs.len());
    let (customer, latency) = ordinary_request(&inst, Duration::from_secs(60));
    eprintln!("ordinary acknowledgement after the hostile batch: {latency:?}");
    assert!(daemon.running(), "the daemon is alive");

    // Every hostile message is accounted for, once.
    let seen = wait_until(
        Duration::from_secs(30),
        "every hostile message recorded",
        || {
            let s = inst.status();
            let cursor = s.mailboxes.iter().map(|m| m.last_uid).max().unwrap_or(0);
            (cursor as usize > inputs.len()).then_some(s)
        },
    );
    let first = outcomes(&inst, &inputs);
    for (name, outcome) in &first {
        eprintln!("  {name:<14} {outcome}");
    }
    let ordinary: Vec<_> = inst
        .tickets()
        .into_iter()
        .filter(|t| t.requester.as_deref() == Some(customer.as_str()))
        .collect();
    assert_eq!(ordinary.len(), 1, "the ordinary request has its ticket");
    let by_name = |name: &str| first.iter().find(|(n, _)| *n == name).unwrap().1.clone();
    // Over max_message_bytes: quarantined unfetched, its headers kept.
    assert!(
        by_name("attachment").starts_with("quarantine"),
        "{}",
        by_name("attachment")
    );
    // Ordinary shapes of text that were only slow: they open a ticket.
    for name in [
        "tag-words",
        "command-lines",
        "re-prefixes",
        "cc-flood",
        "crlf-name",
        "esc-subject",
    ] {
        assert!(
            by_name(name).starts_with("ticket"),
            "{name}: {}",
            by_name(name)
        );
    }
    // The refused commands of one mail are summarised, not one event per line.
    let lines_ticket: i64 = by_name("command-lines")["ticket #".len()..]
        .parse()
        .unwrap();
    let events = inst.events(lines_ticket);
    assert!(
        events.len() < 100,
        "{} events for one mail of `#sN` lines",
        events.len()
    );
    // At most max_people_per_message (50) of 5,000 Cc addresses join the ticket.
    let cc_ticket: i64 = by_name("cc-flood")["ticket #".len()..].parse().unwrap();
    let cc = inst
        .events(cc_ticket)
        .iter()
        .filter(|(kind, _, _)| kind == "cc")
        .count();
    assert!(cc <= 50, "{cc} Cc participants added from one mail");
    // The oversized message is still on the server, not marked \Seen.
    assert_eq!(imap.count(), inputs.len() + 1, "nothing deleted or moved");

    // A restart processes none of them again: the counts only grow by a new request.
    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(60)),
        Some(0),
        "clean stop"
    );
    let before = inst.status();
    let mut daemon = inst.spawn_logged("warn", &inst.dir.path().join("daemon2.log"));
    let (_, again) = ordinary_request(&inst, Duration::from_secs(60));
    eprintln!("ordinary acknowledgement after the restart: {again:?}");
    let after = inst.status();
    assert!(daemon.running(), "the daemon is alive after the restart");
    assert_eq!(
        after.tickets,
        before.tickets + 1,
        "only the new request is a new ticket"
    );
    assert_eq!(
        after.quarantine, before.quarantine,
        "nothing quarantined twice"
    );
    assert_eq!(
        outcomes(&inst, &inputs),
        first,
        "each input's outcome unchanged"
    );
    assert_eq!(seen.quarantine, after.quarantine);
}

/// `raw` as a one-message mbox file, for `postdesk import`.
fn mbox(raw: &[u8]) -> Vec<u8> {
    let mut out = b"From import@example.test Wed Nov 25 10:00:00 2026\n".to_vec();
    out.extend_from_slice(
        &String::from_utf8_lossy(raw)
            .replace("\r\n", "\n")
            .into_bytes(),
    );
    out.push(b'\n');
    out
}

/// `postdesk import --no-notify` of `raw` (as a one-message mbox file `name`), which must
/// succeed.
fn import_quietly(inst: &Instance, name: &str, raw: &[u8]) {
    let file = inst.dir.path().join(name);
    std::fs::write(&file, mbox(raw)).unwrap();
    let (ok, out, err) = inst.cli(&[
        "import",
        "--mailbox",
        "mb0",
        "--no-notify",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
}

/// Sample decoded text for the checks below: CR, LF, ESC and BEL are control characters.
fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control())
}

#[test]
fn a_crlf_display_name_opens_a_normal_ticket_with_a_safe_acknowledgement() {
    let inst = Instance::new(Setup::default());
    let customer = unique("eve", "customer.test");
    let name = encoded("Eve\r\nBcc: mallory@evil.test");
    let raw = plain(
        &format!("{name} <{customer}>"),
        &inst.support[0],
        "Printer offline",
        "",
        "Hello.",
    );
    {
        let _d = inst.start();
        smtp_send(&customer, &[&inst.support[0]], &raw);
        let acks = wait_mail(&customer, 1);
        assert_eq!(acks.len(), 1, "one acknowledgement");
        let to = &acks[0].to[0];
        assert_eq!(to.address, customer);
        let shown = to.name.as_deref().unwrap_or("");
        assert!(!has_control(shown), "{shown:?}");
        assert!(shown.starts_with("Eve"), "{shown:?}");
        // No header line was started from the name: no Bcc, one To.
        let (_, raw_ack) = &inbox(&customer)[0];
        let text = String::from_utf8_lossy(raw_ack);
        let header = text.split("\r\n\r\n").next().unwrap_or("");
        let starts = |name: &str| {
            header
                .split("\r\n")
                .filter(|l| l.to_ascii_lowercase().starts_with(name))
                .count()
        };
        assert_eq!((starts("bcc:"), starts("to:")), (0, 1), "{header}");
    }
    let tickets = inst.tickets();
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert!(!has_control(
        tickets[0].requester_name.as_deref().unwrap_or("")
    ));

    // The same name through `import --no-notify`, then the admin path that once killed
    // the store writer on it.
    import_quietly(
        &inst,
        "eve.eml",
        &plain(
            &format!("{name} <{}>", unique("eve2", "customer.test")),
            &inst.support[0],
            "Scanner offline",
            "",
            "Hello again.",
        ),
    );
    let imported = inst
        .tickets()
        .into_iter()
        .find(|t| t.subject == "Scanner offline")
        .expect("the imported ticket");
    let id = imported.id.get().to_string();
    let (ok, out, err) = inst.cli(&["ticket", "set", &id, "--status", "resolved"]);
    assert!(ok, "ticket set: {out}{err}");
    assert_eq!(inst.ticket(imported.id.get()).ticket.status, "resolved");
    let (ok, out, err) = inst.cli(&["ticket", "set", &id, "--status", "closed"]);
    assert!(ok, "the writer still works: {out}{err}");
}

#[test]
fn ticket_list_show_and_search_print_no_raw_control_character() {
    let inst = Instance::new(Setup::default());
    import_quietly(
        &inst,
        "esc.eml",
        &plain(
            &format!(
                "{} <{}>",
                encoded("Mal\u{1b}[31mlory"),
                unique("mal", "customer.test")
            ),
            &inst.support[0],
            &encoded("Invoice \u{1b}[2J\u{1b}]0;pwned\u{7} overdue"),
            "",
            "Pay \u{1b}[5mnow\u{1b}[0m.\r\nInvoice text.",
        ),
    );
    for args in [
        &["ticket", "list"][..],
        &["ticket", "show", "1"],
        &["ticket", "search", "Invoice"],
    ] {
        let (ok, out, err) = inst.cli(args);
        assert!(ok, "{args:?}: {err}");
        assert!(out.contains("Invoice"), "{args:?} shows the ticket: {out}");
        let raw: Vec<char> = out
            .chars()
            .filter(|c| c.is_control() && !matches!(c, '\n' | '\t'))
            .collect();
        assert!(raw.is_empty(), "{args:?} printed {raw:?}: {out:?}");
    }
    // The raw bytes are still there for a pipe.
    let (ok, out, _) = inst.cli(&["ticket", "raw", "1", "1"]);
    assert!(ok);
    assert!(
        out.contains("=?utf-8?B?"),
        "ticket raw gives the stored bytes to a pipe"
    );
}

#[test]
fn data_dir_database_and_backup_are_private_under_umask_022() {
    let inst = Instance::new(Setup::default());
    let file = inst.dir.path().join("one.eml");
    std::fs::write(
        &file,
        mbox(&simple_mail(
            &unique("ann", "customer.test"),
            &inst.support[0],
            "Hello",
            "Hi.",
            &new_message_id(),
            "",
        )),
    )
    .unwrap();
    let backup = inst.dir.path().join("backup.db");
    let bin = env!("CARGO_BIN_EXE_postdesk");
    let script = format!(
        "umask 022 && {bin} --config {cfg} import --mailbox mb0 --no-notify {file} && {bin} --config {cfg} backup {backup}",
        cfg = inst.config_path.display(),
        file = file.display(),
        backup = backup.display(),
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = inst.dir.path().join("data");
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&inst.db()), 0o600, "database");
    for side in ["postdesk.db-wal", "postdesk.db-shm"] {
        let p = data.join(side);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{side}");
        }
    }
    assert_eq!(mode(&data.join("instance.key")), 0o600, "instance key");
    assert_eq!(mode(&backup), 0o600, "backup");
}

/// CPU time of every thread of process `pid` so far (`/proc/PID/task/*/schedstat`, ns).
fn cpu_of(pid: u32) -> Duration {
    let mut ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the daemon runs") {
        let stat =
            std::fs::read_to_string(task.unwrap().path().join("schedstat")).unwrap_or_default();
        ns += stat
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(ns)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `bench/hostile`: what each hostile input costs the daemon (CPU time of `postdesk run`
/// while it takes that input and one ordinary request, less an ordinary request's own
/// CPU time), and the ordinary request's acknowledgement latency behind each input and
/// behind the whole batch, against the same latency with no hostile mail, in one run.
/// Results as JSON in `$POSTDESK_BENCH_OUT` (bench/hostile writes docs/BENCHMARKS.md).
#[test]
#[ignore = "benchmark: bench/hostile runs it in a release build and writes docs/BENCHMARKS.md"]
fn bench_hostile() {
    const ROUNDS: usize = 5;
    let inst = Instance::new(Setup::default());
    let mut daemon = inst.spawn_logged("warn", &inst.dir.path().join("daemon.log"));
    wait_until(Duration::from_secs(30), "the daemon's first sync", || {
        inst.db()
            .exists()
            .then(|| postdesk::store::Reader::open(&inst.db()).ok())
            .flatten()
            .and_then(|r| r.status(&[]).ok())
            .filter(|s| s.mailboxes.iter().any(|m| m.connected))
    });
    let pid = daemon.pid();
    let limit = Duration::from_secs(120);
    let mut base_latency = Vec::new();
    let mut base_cpu = Vec::new();
    for _ in 0..ROUNDS {
        let c0 = cpu_of(pid);
        let (_, l) = ordinary_request(&inst, limit);
        base_latency.push(l);
        base_cpu.push(cpu_of(pid).saturating_sub(c0));
    }
    let (base_l, base_c) = (median(base_latency.clone()), median(base_cpu.clone()));
    eprintln!("baseline: latency {base_l:?}, CPU {base_c:?}");

    // One input at a time, each followed by an ordinary request.
    let inputs = hostile_inputs(&inst.support[0], "evil.test");
    let mut imap = Imap::login(&inst.support[0]);
    let mut each = Vec::new();
    for h in &inputs {
        let c0 = cpu_of(pid);
        imap.append(&h.raw);
        let (_, l) = ordinary_request(&inst, limit);
        let cpu = cpu_of(pid).saturating_sub(c0).saturating_sub(base_c);
        eprintln!(
            "{:<14} {:>10} bytes: +{cpu:?} CPU, ordinary latency {l:?}",
            h.name,
            h.raw.len()
        );
        each.push((h.name, h.raw.len(), cpu, l));
    }
    let outcome = outcomes(&inst, &inputs);

    // The whole batch (new copies: new Message-IDs and senders), then an ordinary request.
    let batch = hostile_inputs(&inst.support[0], "evil2.test");
    let c0 = cpu_of(pid);
    for h in &batch {
        imap.append(&h.raw);
    }
    let (_, batch_l) = ordinary_request(&inst, limit);
    let batch_cpu = cpu_of(pid).saturating_sub(c0);
    eprintln!(
        "batch of {}: ordinary latency {batch_l:?}, CPU {batch_cpu:?}",
        batch.len()
    );
    assert!(daemon.running(), "the daemon is alive");

    let json = serde_json::json!({
        "rounds": ROUNDS,
        "baseline_latency_ms": base_latency.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(),
        "baseline_cpu_ms": base_cpu.iter().map(|d| d.as_secs_f64() * 1e3).collect::<Vec<_>>(),
        "inputs": each.iter().zip(&outcome).map(|((name, size, cpu, l), (_, out))| serde_json::json!({
            "name": name,
            "bytes": size,
            "cpu_ms": cpu.as_secs_f64() * 1e3,
            "latency_ms": l.as_secs_f64() * 1e3,
            "outcome": out,
        })).collect::<Vec<_>>(),
        "batch": {
            "messages": batch.len(),
            "bytes": batch.iter().map(|h| h.raw.len()).sum::<usize>(),
            "latency_ms": batch_l.as_secs_f64() * 1e3,
            "cpu_ms": batch_cpu.as_secs_f64() * 1e3,
        },
    });
    let out = std::env::var("POSTDESK_BENCH_OUT").unwrap_or_else(|_| "/dev/stdout".to_owned());
    std::fs::write(&out, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    for (name, out) in &outcome {
        assert!(
            out.starts_with("ticket") || out.starts_with("quarantine"),
            "{name}: {out}"
        );
    }
}
