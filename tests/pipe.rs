//! Other ways in (issue 6): `postdesk deliver` behind a real Postfix `pipe` transport, and
//! `postdesk import` of mbox files and Maildir folders.
//!
//! The test mail stack routes anything@pipe.test to a pipe(8) transport that runs, as user
//! `mail`, the command a test writes to `$MAILSTACK_ROOT/deliver-hooks/RECIPIENT`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

fn mailstack_root() -> PathBuf {
    PathBuf::from(
        std::env::var("MAILSTACK_ROOT").unwrap_or_else(|_| "/tmp/postdesk-mailstack".to_owned()),
    )
}

/// Hands `path` and everything below it to the `mail` user (uid/gid 8), as a site would
/// give the data directory to the user its MTA runs `postdesk deliver` as.
fn give_to_mail(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "8:8"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn flush_postfix() {
    let conf = mailstack_root().join("etc/postfix");
    let status = Command::new("postqueue")
        .arg("-c")
        .arg(&conf)
        .arg("-f")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn deliver_through_postfix_pipe_tempfails_while_the_store_is_away_then_delivers_once() {
    let inst = Instance::new(Setup::default());
    let d = inst.start(); // creates the database; its outbox sender retries what deliver could not send
                          // The pipe runs as `mail`: let it read the config and write the store.
    std::fs::set_permissions(inst.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    give_to_mail(inst.dir.path());
    let rcpt = unique("pipe", "pipe.test");
    let hook = mailstack_root().join("deliver-hooks").join(&rcpt);
    std::fs::write(
        &hook,
        format!(
            "exec {} --config {} deliver --mailbox mb0\n",
            env!("CARGO_BIN_EXE_postdesk"),
            inst.config_path.display()
        ),
    )
    .unwrap();

    let customer = unique("piped", "customer.test");
    let first = new_message_id();
    smtp_send(
        &customer,
        &[&rcpt],
        &simple_mail(&customer, &rcpt, "Through the pipe", "Hello.", &first, ""),
    );
    let t = wait_until(Duration::from_secs(20), "ticket from deliver", || {
        inst.tickets()
            .into_iter()
            .find(|t| t.requester.as_deref() == Some(customer.as_str()))
    });
    assert_eq!(t.subject, "Through the pipe");
    let mut imap = Imap::login(&customer);
    wait_until(Duration::from_secs(20), "acknowledgement", || {
        (imap.count() == 1).then_some(())
    });

    // The store goes away: deliver exits 75 and Postfix keeps the mail.
    let data = inst.dir.path().join("data");
    let away = inst.dir.path().join("data.away");
    std::fs::rename(&data, &away).unwrap();
    let second = new_message_id();
    smtp_send(
        &customer,
        &[&rcpt],
        &simple_mail(
            &customer,
            &rcpt,
            "While the store is away",
            "x",
            &second,
            "",
        ),
    );
    let log = mailstack_root().join("log/postfix.log");
    wait_until(
        Duration::from_secs(20),
        "a deferred delivery in Postfix's log",
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines()
                .any(|l| l.contains(&rcpt) && l.contains("status=deferred"))
                .then_some(())
        },
    );
    // Back: flush the queue; the message is delivered, once.
    std::fs::rename(&away, &data).unwrap();
    flush_postfix();
    wait_until(
        Duration::from_secs(40),
        "the deferred message stored",
        || (inst.reader().count_messages_with_id(&second).unwrap() == 1).then_some(()),
    );
    wait_until(Duration::from_secs(20), "second acknowledgement", || {
        (imap.count() == 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inst.reader().count_messages_with_id(&second).unwrap(), 1);
    assert_eq!(inst.tickets().len(), 2);
    assert_eq!(imap.count(), 2, "one acknowledgement each");
    let _ = std::fs::remove_file(hook);
    d.stop();
}

#[test]
fn deliver_exit_codes() {
    let inst = Instance::new(Setup::default());
    let run = |args: &[&str], stdin: &[u8]| {
        use std::io::Write as _;
        let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&inst.config_path)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The command may exit before reading everything; its exit code is what counts.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mail = simple_mail(
        "a@customer.test",
        &inst.support[0],
        "Hi",
        "x",
        &new_message_id(),
        "",
    );
    // No database yet (the daemon never ran): temporary failure, never a new empty store.
    let (code, err) = run(&["deliver", "--mailbox", "mb0"], &mail);
    assert_eq!(code, Some(75), "{err}");
    assert!(err.contains("temporary failure"), "{err}");
    assert!(!inst.db().exists());
    // A mailbox name the config does not know: the MTA keeps the mail too.
    inst.start().stop();
    let (code, _) = run(&["deliver", "--mailbox", "nope"], &mail);
    assert_eq!(code, Some(75));
    // Stored, and junk is stored too (in quarantine): 0.
    let (code, err) = run(&["deliver", "--mailbox", "mb0"], &mail);
    assert_eq!(code, Some(0), "{err}");
    let (code, _) = run(
        &["deliver", "--mailbox", "mb0"],
        b"\x00junk without headers",
    );
    assert_eq!(code, Some(0));
    assert_eq!(inst.status().quarantine, 1);
    // The same message again: nothing new (Message-ID).
    let (code, _) = run(&["deliver", "--mailbox", "mb0"], &mail);
    assert_eq!(code, Some(0));
    assert_eq!(inst.tickets().len(), 1);
}

fn generate(args: &[&str]) {
    let status = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/gen_mail.py"))
        .args(args)
        .arg("--no-chown")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn import_mbox_and_maildir_counts_right_and_twice_adds_nothing() {
    let inst = Instance::new(Setup::default());
    let dir = inst.dir.path();
    let mbox = dir.join("archive.mbox");
    let maildir = dir.join("Maildir");
    generate(&[
        "--count",
        "150",
        "--seed",
        "7",
        "--to",
        &inst.support[0],
        "--mbox",
        mbox.to_str().unwrap(),
    ]);
    generate(&[
        "--count",
        "120",
        "--seed",
        "8",
        "--to",
        &inst.support[0],
        "--maildir",
        maildir.to_str().unwrap(),
    ]);

    let (ok, out, err) = inst.cli(&[
        "import",
        "--mailbox",
        "mb0",
        "--no-notify",
        mbox.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("150 messages: 150 stored"), "{out}");
    let after_mbox = inst.status();
    assert_eq!(after_mbox.messages.incoming, 150);
    assert_eq!(after_mbox.outbox.queued, 0, "--no-notify queues no mail");
    assert!(
        after_mbox.tickets > 0 && after_mbox.tickets < 150,
        "replies and automatic mail open no ticket"
    );

    let (ok, out, _) = inst.cli(&[
        "import",
        "--mailbox",
        "mb0",
        "--no-notify",
        mbox.to_str().unwrap(),
    ]);
    assert!(ok);
    assert!(
        out.contains("0 stored") && out.contains("150 already there"),
        "{out}"
    );
    let again = inst.status();
    assert_eq!(
        (again.messages.incoming, again.tickets),
        (150, after_mbox.tickets),
        "importing twice adds nothing"
    );

    let (ok, out, err) = inst.cli(&["import", "--mailbox", "mb0", maildir.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("120 messages: 120 stored"), "{out}");
    let s = inst.status();
    assert_eq!(s.messages.incoming, 270);
    assert!(
        s.outbox.queued > 0,
        "without --no-notify, new tickets are acknowledged"
    );
}
