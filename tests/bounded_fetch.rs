//! Issue 12, on the real Dovecot: a message over `limits.max_message_bytes` is not fetched
//! whole. Its header and a prefix go to quarantine with its real size, marked truncated;
//! the message stays on the server (not deleted, not `\Seen`); the ordinary mail next to
//! it gets its ticket; after a restart nothing is quarantined twice; `quarantine retry`
//! refuses and says where the whole message is.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// `(UID, FLAGS, RFC822.SIZE)` of every message in `user`'s INBOX, read with a plain IMAP
/// exchange (the flags are what the test is about).
fn flags_and_sizes(user: &str) -> Vec<(u32, String, u64)> {
    let stream = TcpStream::connect((host().as_str(), imap_port())).expect("connect to Dovecot");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut run = |tag: &str, cmd: &str| -> Vec<String> {
        w.write_all(format!("{tag} {cmd}\r\n").as_bytes()).unwrap();
        let mut out = Vec::new();
        loop {
            let mut bytes = Vec::new();
            r.read_until(b'\n', &mut bytes).unwrap();
            assert!(!bytes.is_empty(), "IMAP connection closed");
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(rest) = text.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "IMAP {cmd}: {text}");
                return out;
            }
            out.push(text);
        }
    };
    run("a", &format!("LOGIN \"{user}\" \"{PASSWORD}\""));
    run("b", "SELECT INBOX");
    let lines = run("c", "UID FETCH 1:* (UID FLAGS RFC822.SIZE)");
    let field = |l: &str, name: &str| -> String {
        let at = l.find(name).unwrap_or_else(|| panic!("{name} in {l}")) + name.len() + 1;
        l[at..]
            .split([' ', ')'])
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    lines
        .iter()
        .filter(|l| l.starts_with("* ") && l.contains("FETCH"))
        .map(|l| {
            let flags = l
                .split("FLAGS (")
                .nth(1)
                .and_then(|f| f.split(')').next())
                .unwrap_or_default()
                .to_owned();
            (
                field(l, "UID").parse().unwrap(),
                flags,
                field(l, "RFC822.SIZE").parse().unwrap(),
            )
        })
        .collect()
}

/// A 1 MB message: a plain-text body of 1,000,000 bytes.
fn big_mail(from: &str, to: &str) -> Vec<u8> {
    let line = format!("{}\r\n", "0123456789".repeat(7));
    let body: String = line.repeat(1_000_000 / line.len() + 1);
    simple_mail(from, to, "Logs attached", &body, &new_message_id(), "")
}

#[test]
fn an_over_limit_message_is_quarantined_truncated_and_left_on_the_server() {
    let inst = Instance::new(Setup {
        extra_top: "\n[limits]\nmax_message_bytes = 200000\nquarantine_keep_bytes = 4096\n"
            .to_owned(),
        ..Setup::default()
    });
    let support = inst.support[0].clone();
    let customer = unique("bounded", "customer.test");
    {
        let mut imap = Imap::login(&support);
        imap.append(&big_mail(&customer, &support));
        imap.append(&simple_mail(
            &customer,
            &support,
            "Printer offline",
            "It does not print.",
            &new_message_id(),
            "",
        ));
    }
    let on_server = flags_and_sizes(&support);
    assert_eq!(on_server.len(), 2);
    let (big_uid, _, big_size) = on_server[0].clone();
    assert!(big_size > 1_000_000, "{big_size}");

    let daemon = inst.start();
    let status = wait_until(Duration::from_secs(30), "a ticket and a quarantine", || {
        let s = inst.status();
        (s.tickets == 1 && s.quarantine == 1).then_some(s)
    });
    assert_eq!(status.messages.incoming, 1);
    assert_eq!(inst.tickets()[0].subject, "Printer offline");
    let held = inst.reader().quarantine_list().unwrap();
    assert_eq!(held.len(), 1);
    let q = &held[0];
    assert!(q.truncated);
    assert_eq!(
        q.size as u64, big_size,
        "the server's size, not the kept bytes"
    );
    assert!(
        q.kept >= 4096 && q.kept < 8192,
        "headers and 4 KiB: {}",
        q.kept
    );
    assert_eq!(q.uid, Some(big_uid));
    assert_eq!(q.sha256_of.as_deref(), Some("kept"));
    assert!(q.reason.contains("max_message_bytes"), "{}", q.reason);
    let (_, kept) = inst.reader().quarantine_raw(q.id).unwrap().unwrap();
    assert!(kept.starts_with(format!("From: {customer}\r\n").as_bytes()));

    // The big one is still there and unread; the ordinary one is marked seen.
    let on_server = flags_and_sizes(&support);
    assert_eq!(on_server.len(), 2, "nothing deleted or moved");
    assert!(!on_server[0].1.contains("\\Seen"), "{:?}", on_server[0]);
    assert!(on_server[1].1.contains("\\Seen"), "{:?}", on_server[1]);

    // A restart fetches neither again.
    daemon.stop();
    let daemon = inst.start();
    let mut imap = Imap::login(&support);
    imap.append(&simple_mail(
        &customer,
        &support,
        "Scanner offline",
        "It does not scan either.",
        &new_message_id(),
        "",
    ));
    wait_until(
        Duration::from_secs(30),
        "the third message's ticket",
        || (inst.status().tickets == 2).then_some(()),
    );
    daemon.stop();
    let status = inst.status();
    assert_eq!(status.quarantine, 1, "not quarantined twice");
    assert_eq!(inst.reader().quarantine_list().unwrap().len(), 1);
    assert_eq!(status.messages.incoming, 2);

    // What the operator sees.
    let (ok, out, _) = inst.cli(&["quarantine", "list"]);
    assert!(ok);
    assert!(
        out.contains(&format!("{big_size} bytes (truncated)")),
        "{out}"
    );
    let (ok, _, err) = inst.cli(&["quarantine", "retry", &q.id.get().to_string()]);
    assert!(!ok, "a truncated message cannot be processed again");
    for needle in [
        format!("UID {big_uid}"),
        "UIDVALIDITY".to_owned(),
        "max_message_bytes".to_owned(),
        "mailbox mb0".to_owned(),
    ] {
        assert!(err.contains(&needle), "{needle} in {err}");
    }
    let (ok, out, _) = inst.cli(&["status"]);
    assert!(ok);
    assert!(out.contains("largest messages of the last hour"), "{out}");
    assert!(
        out.contains(&format!("{big_size} bytes")) && out.contains(&format!("uid {big_uid}")),
        "{out}"
    );
}

/// `postdesk deliver` reads at most `max_message_bytes + 1` of stdin and quarantines the
/// start of a larger message with the size and hash of the whole; a small one is stored.
#[test]
fn deliver_cuts_an_over_limit_message_on_stdin() {
    let inst = Instance::new(Setup {
        extra_top: "\n[limits]\nmax_message_bytes = 200000\nquarantine_keep_bytes = 4096\n"
            .to_owned(),
        ..Setup::default()
    });
    // The database exists once the daemon has started.
    inst.start().stop();
    let customer = unique("piped", "customer.test");
    let big = big_mail(&customer, &inst.support[0]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&inst.config_path)
        .args(["deliver", "--mailbox", "mb0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&big).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let held = inst.reader().quarantine_list().unwrap();
    assert_eq!(held.len(), 1);
    assert!(held[0].truncated);
    assert_eq!(held[0].size as usize, big.len());
    assert_eq!(held[0].sha256_of.as_deref(), Some("whole"));
    let mut sha = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sha.stdin.take().unwrap().write_all(&big).unwrap();
    let mut digest = String::new();
    sha.stdout
        .take()
        .unwrap()
        .read_to_string(&mut digest)
        .unwrap();
    sha.wait().unwrap();
    assert_eq!(
        held[0].sha256.as_deref(),
        digest.split_whitespace().next(),
        "the hash of everything read on stdin"
    );
    let (ok, _, err) = inst.cli(&["quarantine", "retry", &held[0].id.get().to_string()]);
    assert!(!ok);
    assert!(err.contains("max_message_bytes"), "{err}");
}
