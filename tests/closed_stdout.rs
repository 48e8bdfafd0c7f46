//! Commands that print end quietly when their reader goes away (issue 11, test 5):
//! `postdesk ticket show 1 | head -1` ends as `ls | head` does, by SIGPIPE, never with a
//! panic ("failed printing to stdout: Broken pipe", exit 101).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::*;

/// An instance with one ticket whose message is long (far more than a pipe holds);
/// returns the ticket number.
fn instance_with_a_ticket() -> (Instance, i64) {
    let inst = Instance::new(Setup::default());
    let customer = unique("pipe", "customer.test");
    let body: String = (0..6000)
        .map(|i| format!("line {i} of a long problem report, to fill more than a pipe\n"))
        .collect();
    Imap::login(&inst.support[0]).append(&simple_mail(
        &customer,
        &inst.support[0],
        "A long report",
        &body,
        &new_message_id(),
        "",
    ));
    let daemon = inst.start();
    let id = wait_until(Duration::from_secs(20), "the ticket", || {
        inst.tickets().first().map(|t| t.id.get())
    });
    daemon.stop();
    (inst, id)
}

/// Runs `postdesk <args>` with stdout a pipe; reads `lines` lines (0: none) and closes
/// the pipe. Returns the exit status and stderr.
fn through_closed_pipe(inst: &Instance, args: &[&str], lines: usize) -> (ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
        .arg("--config")
        .arg(&inst.config_path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run postdesk");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..lines {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "postdesk {args:?} printed a line");
    }
    drop(out);
    let output = child.wait_with_output().unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_quiet(args: &[&str], status: ExitStatus, stderr: &str) {
    assert_ne!(
        status.code(),
        Some(101),
        "postdesk {args:?} panicked: {stderr}"
    );
    for bad in ["panicked", "Broken pipe", "failed printing"] {
        assert!(
            !stderr.contains(bad),
            "postdesk {args:?} wrote {bad:?}: {stderr}"
        );
    }
}

#[test]
fn ticket_show_into_head_ends_quietly() {
    let (inst, id) = instance_with_a_ticket();
    let id = id.to_string();
    let args = ["ticket", "show", id.as_str()];
    // `| head -1`: one line read, then the pipe closes while postdesk is still writing.
    let (status, stderr) = through_closed_pipe(&inst, &args, 1);
    assert_quiet(&args, status, &stderr);
    assert_eq!(
        status.signal(),
        Some(libc::SIGPIPE),
        "ended by SIGPIPE, as `ls | head` is: {status:?}"
    );
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_stdout() {
    let (inst, id) = instance_with_a_ticket();
    let id = id.to_string();
    for args in [
        vec!["ticket", "list"],
        vec!["ticket", "list", "--json"],
        vec!["ticket", "show", &id],
        vec!["ticket", "show", &id, "--json"],
        vec!["ticket", "search", "report"],
        vec!["report"],
        vec!["report", "--csv"],
        vec!["report", "--json"],
        vec!["status"],
        vec!["outbox", "list"],
        vec!["quarantine", "list", "--json"],
        vec!["check"],
    ] {
        // The pipe is closed before postdesk writes anything (it has yet to read its
        // configuration): its first write meets the closed pipe.
        let (status, stderr) = through_closed_pipe(&inst, &args, 0);
        assert_quiet(&args, status, &stderr);
        assert_eq!(
            status.signal(),
            Some(libc::SIGPIPE),
            "postdesk {args:?} ended by SIGPIPE: {status:?} {stderr}"
        );
    }
    // With a reader, the same commands print as always.
    let (ok, out, err) = inst.cli(&["ticket", "list"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("TICKET"), "{out}");
}
