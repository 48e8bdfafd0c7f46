//! Operating the daemon (issue 6): SIGHUP reloads or refuses a configuration, SIGTERM
//! stops cleanly, and no secret ever reaches the logs or the JSON outputs (invariant 7).

mod common;

use std::io::Write as _;
use std::time::Duration;

use common::*;

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one_and_a_good_one_applies() {
    let inst = Instance::new(Setup::default());
    let log = inst.dir.path().join("daemon.log");
    let mut daemon = inst.spawn_logged("info", &log);
    let customer = unique("hup", "customer.test");
    let mail = |subject: &str| {
        simple_mail(
            &customer,
            &inst.support[0],
            subject,
            "x",
            &new_message_id(),
            "",
        )
    };
    smtp_send(&customer, &[&inst.support[0]], &mail("Before the reload"));
    let mut imap = Imap::login(&customer);
    wait_until(Duration::from_secs(20), "first acknowledgement", || {
        (imap.count() == 1).then_some(())
    });

    let good = std::fs::read_to_string(&inst.config_path).unwrap();
    std::fs::write(
        &inst.config_path,
        good.replace("poll_interval = \"1s\"", "poll_interval = \"one second\""),
    )
    .unwrap();
    daemon.signal("HUP");
    wait_until(Duration::from_secs(10), "the refusal in the log", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("new configuration refused")
            .then_some(())
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("poll_interval: invalid duration"),
        "the bad key is named: {text}"
    );
    assert!(daemon.running(), "still running");
    smtp_send(
        &customer,
        &[&inst.support[0]],
        &mail("While the bad config is on disk"),
    );
    wait_until(Duration::from_secs(20), "served on the old config", || {
        (imap.count() == 2).then_some(())
    });

    // A good new configuration applies: the acknowledgement carries the new queue name.
    std::fs::write(
        &inst.config_path,
        good.replace(
            "display_name = \"ACME Support\"",
            "display_name = \"Reloaded Desk\"",
        ),
    )
    .unwrap();
    daemon.signal("HUP");
    wait_until(Duration::from_secs(10), "reload in the log", || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("configuration reloaded")
            .then_some(())
    });
    smtp_send(&customer, &[&inst.support[0]], &mail("After the reload"));
    wait_until(Duration::from_secs(20), "third acknowledgement", || {
        (imap.count() == 3).then_some(())
    });
    let last = inbox(&customer).pop().unwrap();
    let ack =
        postdesk::mail::parse::message(&last.1, &postdesk::limits::Limits::default()).unwrap();
    assert_eq!(ack.from.unwrap().name.as_deref(), Some("Reloaded Desk"));

    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(30)),
        Some(0),
        "SIGTERM stops cleanly"
    );
    assert_eq!(inst.tickets().len(), 3);
}

/// Adds a user with its own password to the test Dovecot (its passwd-file is re-read on
/// change), so the password is a string found nowhere else.
fn user_with_password(address: &str, password: &str) {
    let root =
        std::env::var("MAILSTACK_ROOT").unwrap_or_else(|_| "/tmp/postdesk-mailstack".to_owned());
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("{root}/etc/dovecot/users"))
        .unwrap();
    writeln!(f, "{address}:{{PLAIN}}{password}").unwrap();
}

#[test]
fn no_secret_in_logs_or_json_outputs() {
    let inst = Instance::new(Setup::default());
    let password = format!(
        "Pw-{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    user_with_password(&inst.support[0], &password);
    std::fs::write(inst.dir.path().join("password"), &password).unwrap();
    let log = inst.dir.path().join("trace.log");
    // The most verbose logging there is, and a login that fails first: error paths too.
    let mut daemon = inst.spawn_logged("trace", &log);
    let customer = unique("secret", "customer.test");
    smtp_send(
        &customer,
        &[&inst.support[0]],
        &simple_mail(
            &customer,
            &inst.support[0],
            "Secrets?",
            "x",
            &new_message_id(),
            "",
        ),
    );
    let mut imap = Imap::login(&customer);
    wait_until(Duration::from_secs(20), "acknowledgement", || {
        (imap.count() == 1).then_some(())
    });
    daemon.signal("TERM");
    daemon.wait_exit(Duration::from_secs(30));

    let key = std::fs::read_to_string(inst.dir.path().join("data/instance.key")).unwrap();
    let key = key.trim();
    assert!(key.len() >= 32);
    let mut outputs = vec![(
        "daemon log (RUST_LOG=trace)".to_owned(),
        std::fs::read_to_string(&log).unwrap(),
    )];
    assert!(outputs[0].1.len() > 1000, "the trace log has content");
    let id = inst.tickets()[0].id.to_string();
    for args in [
        vec!["status", "--json"],
        vec!["ticket", "list", "--json"],
        vec!["ticket", "show", &id, "--json"],
        vec!["outbox", "list", "--json"],
        vec!["quarantine", "list", "--json"],
        vec!["check", "--connect"],
    ] {
        let (_, out, err) = inst.cli(&args);
        outputs.push((args.join(" "), format!("{out}{err}")));
    }
    // A refused login prints the server's answer, never what was tried.
    std::fs::write(inst.dir.path().join("password"), "Wrong-And-Secret-77").unwrap();
    let (ok, out, err) = inst.cli(&["check", "--connect"]);
    assert!(!ok);
    outputs.push((
        "check --connect (wrong password)".to_owned(),
        format!("{out}{err}"),
    ));
    for (what, text) in &outputs {
        assert!(
            !text.contains(&password),
            "the IMAP password appears in {what}"
        );
        assert!(!text.contains(key), "the instance key appears in {what}");
        assert!(
            !text.contains("Wrong-And-Secret-77"),
            "a tried password appears in {what}"
        );
    }
}

#[test]
fn status_shows_mailbox_health_and_the_metrics_file_is_written() {
    let inst = Instance::new(Setup {
        extra_top: "metrics_file = \"metrics.prom\"".to_owned(),
        mailbox_extra: "quiet_warning = \"2s\"".to_owned(),
        ..Setup::default()
    });
    let d = inst.start();
    let customer = unique("health", "customer.test");
    smtp_send(
        &customer,
        &[&inst.support[0]],
        &simple_mail(
            &customer,
            &inst.support[0],
            "Health",
            "x",
            &new_message_id(),
            "",
        ),
    );
    let mut imap = Imap::login(&customer);
    wait_until(Duration::from_secs(20), "acknowledgement", || {
        (imap.count() == 1).then_some(())
    });
    let (ok, out, err) = inst.cli(&["status", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mb = &v["mailboxes"][0];
    assert_eq!(mb["connected"], true);
    assert_eq!(mb["mode"], "idle");
    assert_eq!(mb["backlog"], 0);
    assert!(mb["last_message_at"].is_string(), "{mb}");
    assert_eq!(v["quarantine"], 0);
    assert!(v.get("outbox_oldest").is_some());
    // Quiet for longer than quiet_warning: status says so.
    std::thread::sleep(Duration::from_millis(2500));
    let (_, text, _) = inst.cli(&["status"]);
    assert!(text.contains("WARNING: mailbox mb0: no mail for"), "{text}");
    assert!(text.contains("connected (idle)"), "{text}");
    // The metrics file: written at start (and every minute); a restart rewrites it.
    d.stop();
    let _d = inst.start();
    let path = inst.dir.path().join("metrics.prom");
    let metrics = wait_until(Duration::from_secs(10), "metrics file", || {
        std::fs::read_to_string(&path).ok()
    });
    for line in [
        "postdesk_tickets_total 1",
        "postdesk_messages_in_total 1",
        "postdesk_quarantine_size 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("# TYPE postdesk_mails_sent_total counter"));
}
