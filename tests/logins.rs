//! Logging in where organisations keep their mail (issue 14), against the real servers of
//! `scripts/mailstack`: Dovecot with STARTTLS and implicit TLS, Postfix submission with
//! STARTTLS and SASL (through Dovecot), and a real OAuth 2.0 authorization server
//! (`oidc-provider`) whose tokens Dovecot checks by introspection.
//!
//! The user's side of a device login is `scripts/mailstack oauth-approve CODE ADDRESS`,
//! which fills in the authorization server's own pages as a browser would.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test (it starts scripts/mailstack and exports its env)")
    })
}

fn ca_file() -> String {
    env("MAILSTACK_CA_FILE")
}

fn port_of(name: &str) -> u16 {
    env(name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a port"))
}

/// Runs a `scripts/mailstack` verb; panics with its output on failure.
fn mailstack(args: &[&str]) -> String {
    let out = Command::new(mailstack_script())
        .args(args)
        .output()
        .expect("run scripts/mailstack");
    assert!(
        out.status.success(),
        "scripts/mailstack {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One `[[mailbox]]` of a test config.
struct Box_ {
    address: String,
    /// Lines inside `[[mailbox]]` (security, port, auth, …).
    lines: String,
    /// A `[mailbox.oauth]` table, if any.
    oauth: Option<String>,
}

fn oauth_table(mechanism: &str) -> String {
    format!(
        "[mailbox.oauth]\nprovider = \"custom\"\nclient_id = \"{}\"\ndevice_authorization_url = \"{}\"\ntoken_url = \"{}\"\nrevocation_url = \"{}\"\nscopes = [{}]\nmechanism = \"{mechanism}\"\n",
        env("MAILSTACK_OAUTH_CLIENT_ID"),
        env("MAILSTACK_OAUTH_DEVICE_URL"),
        env("MAILSTACK_OAUTH_TOKEN_URL"),
        env("MAILSTACK_OAUTH_REVOCATION_URL"),
        env("MAILSTACK_OAUTH_SCOPES")
            .split_whitespace()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// An OAuth mailbox on the IMAP port with STARTTLS and the stack's CA.
fn oauth_box(prefix: &str, mechanism: &str) -> Box_ {
    Box_ {
        address: unique(prefix, "example.test"),
        lines: format!(
            "security = \"starttls\"\nport = {}\nca_file = \"{}\"\nauth = \"oauth2\"\n",
            imap_port(),
            ca_file()
        ),
        oauth: Some(oauth_table(mechanism)),
    }
}

fn password_box(prefix: &str, lines: String) -> Box_ {
    Box_ {
        address: unique(prefix, "example.test"),
        lines: format!("{lines}password_file = \"password\"\n"),
        oauth: None,
    }
}

/// A test instance with its own config (the common `Instance`, plus OAuth helpers).
struct Desk {
    inst: Instance,
    config: PathBuf,
    boxes: Vec<String>,
}

/// Writes a config: `smtp` is the body of `[smtp]` after host; `top` goes before it.
fn desk(top: &str, smtp: &str, boxes: &[Box_]) -> Desk {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), PASSWORD).unwrap();
    std::fs::write(dir.path().join("wrong-password"), "not-the-password").unwrap();
    let mut cfg = format!(
        "data_dir = \"{}\"\nhostname = \"helpdesk.example.test\"\n{top}\n[smtp]\nhost = \"{}\"\n{smtp}\n[outbox]\nretry_initial = \"1s\"\nretry_max = \"2s\"\n\n[[queue]]\nname = \"support\"\ndisplay_name = \"ACME Support\"\n",
        dir.path().join("data").display(),
        host(),
    );
    for (i, b) in boxes.iter().enumerate() {
        cfg.push_str(&format!(
            "\n[[mailbox]]\nname = \"mb{i}\"\naddress = \"{}\"\nqueue = \"support\"\ntag = \"ACME\"\nhost = \"{}\"\npoll_interval = \"1s\"\n{}",
            b.address,
            host(),
            b.lines
        ));
        if let Some(o) = &b.oauth {
            cfg.push_str(o);
        }
    }
    let config = dir.path().join("postdesk.toml");
    std::fs::write(&config, cfg).unwrap();
    let boxes: Vec<String> = boxes.iter().map(|b| b.address.clone()).collect();
    Desk {
        inst: Instance {
            dir,
            config_path: config.clone(),
            support: boxes.clone(),
        },
        config,
        boxes,
    }
}

impl Desk {
    fn instance(&self) -> &Instance {
        &self.inst
    }

    fn dir(&self) -> &Path {
        self.inst.dir.path()
    }

    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        self.inst.cli(args)
    }

    fn token_file(&self, mailbox: &str) -> PathBuf {
        self.dir().join(format!("data/tokens/{mailbox}.json"))
    }

    /// `postdesk login MAILBOX`, approved on the authorization server's pages as `user`.
    fn login(&self, mailbox: &str, user: &str) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_postdesk"))
            .arg("--config")
            .arg(&self.config)
            .args(["login", mailbox])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start postdesk login");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut shown = String::new();
        let code = loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("postdesk login ended without a code:\n{shown}\n{err}");
            }
            shown.push_str(&line);
            if let Some(rest) = line.trim().strip_prefix("2. Enter the code ") {
                break rest.trim().to_owned();
            }
        };
        assert!(shown.contains("1. Open https://"), "{shown}");
        mailstack(&["oauth-approve", &code, user]);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "postdesk login failed:\n{shown}{rest}");
        assert!(rest.contains("Logged in. Tokens stored in"), "{rest}");
        let file = self.token_file(mailbox);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "token file mode");
        assert!(
            !rest.contains(&read_tokens(&file).access_token),
            "login printed the token"
        );
    }
}

fn read_tokens(path: &Path) -> postdesk::oauth::tokens::Tokens {
    postdesk::oauth::tokens::read(path)
        .unwrap()
        .expect("a token file")
}

/// A customer writes to `support`; returns the acknowledgement and how long it took.
fn write_and_wait_ack(support: &str, subject: &str) -> (postdesk::mail::parse::Parsed, Duration) {
    let customer = unique("cust", "customer.test");
    let sent = Instant::now();
    smtp_send(
        &customer,
        &[support],
        &simple_mail(
            &customer,
            support,
            subject,
            "Please help.\n",
            &new_message_id(),
            "",
        ),
    );
    let acks = wait_mail(&customer, 1);
    let took = sent.elapsed();
    assert_eq!(acks.len(), 1, "one acknowledgement and nothing else");
    assert!(acks[0].subject.contains("[ACME #"), "{}", acks[0].subject);
    (acks.remove_first(), took)
}

trait RemoveFirst<T> {
    fn remove_first(self) -> T;
}
impl<T> RemoveFirst<T> for Vec<T> {
    fn remove_first(mut self) -> T {
        self.remove(0)
    }
}

fn tickets_with(inst: &Instance, subject: &str) -> usize {
    inst.tickets()
        .iter()
        .filter(|t| t.subject.contains(subject))
        .count()
}

fn submission_starttls(extra: &str) -> String {
    format!(
        "port = {}\nsecurity = \"starttls\"\nca_file = \"{}\"\n{extra}",
        port_of("MAILSTACK_SUBMISSION_PORT"),
        ca_file()
    )
}

// ---------------------------------------------------------------- 1. TLS

#[test]
fn starttls_and_implicit_tls_with_ca_file_carry_mail_both_ways() {
    // IMAP STARTTLS + submission STARTTLS with a password login.
    let starttls = password_box(
        "tls-start",
        format!(
            "security = \"starttls\"\nport = {}\nca_file = \"{}\"\n",
            imap_port(),
            ca_file()
        ),
    );
    let user = starttls.address.clone();
    let d = desk(
        "",
        &submission_starttls(&format!(
            "username = \"{user}\"\npassword_file = \"password\"\n"
        )),
        &[starttls],
    );
    let (ok, out, err) = d.cli(&["check", "--connect"]);
    assert!(ok, "check --connect: {out}{err}");
    assert!(
        out.contains("imap mb0") && out.contains("OK: STARTTLS (TLS"),
        "{out}"
    );
    assert!(
        out.contains("smtp") && out.contains("OK: STARTTLS; password login"),
        "{out}"
    );
    let inst = d.instance();
    let daemon = inst.start();
    write_and_wait_ack(&d.boxes[0], "starttls both ways");
    assert_eq!(tickets_with(inst, "starttls both ways"), 1);
    daemon.stop();

    // Implicit TLS for IMAP (imaps) and SMTP (submissions).
    let implicit = password_box(
        "tls-implicit",
        format!(
            "security = \"tls\"\nport = {}\nca_file = \"{}\"\n",
            port_of("MAILSTACK_IMAPS_PORT"),
            ca_file()
        ),
    );
    let user = implicit.address.clone();
    let d = desk(
        "",
        &format!(
            "port = {}\nsecurity = \"tls\"\nca_file = \"{}\"\nusername = \"{user}\"\npassword_file = \"password\"\n",
            port_of("MAILSTACK_SUBMISSIONS_PORT"),
            ca_file()
        ),
        &[implicit],
    );
    let (ok, out, err) = d.cli(&["check", "--connect"]);
    assert!(ok, "check --connect: {out}{err}");
    assert!(out.contains("OK: TLS (TLS"), "{out}");
    let inst = d.instance();
    let daemon = inst.start();
    write_and_wait_ack(&d.boxes[0], "implicit tls both ways");
    assert_eq!(tickets_with(inst, "implicit tls both ways"), 1);
    daemon.stop();
}

#[test]
fn without_ca_file_check_names_the_certificate_problem() {
    let b = password_box(
        "tls-noca",
        format!(
            "security = \"tls\"\nport = {}\n",
            port_of("MAILSTACK_IMAPS_PORT")
        ),
    );
    let d = desk(
        "",
        &format!(
            "port = {}\nsecurity = \"starttls\"\n",
            port_of("MAILSTACK_SUBMISSION_PORT")
        ),
        &[b],
    );
    let (ok, out, _) = d.cli(&["check", "--connect"]);
    assert!(!ok, "check --connect must fail: {out}");
    let imap = out.lines().find(|l| l.starts_with("imap mb0")).expect(&out);
    assert!(imap.contains("FAILED"), "{imap}");
    assert!(
        imap.contains("not signed by a CA postdesk trusts"),
        "{imap}"
    );
    assert!(
        imap.contains("set ca_file in [[mailbox]] \"mb0\""),
        "{imap}"
    );
    let smtp = out.lines().find(|l| l.starts_with("smtp")).expect(&out);
    assert!(
        smtp.contains("FAILED") && smtp.contains("set ca_file in [smtp]"),
        "{smtp}"
    );

    // A name the certificate does not carry: the error points at tls_server_name.
    let b = password_box(
        "tls-name",
        format!(
            "security = \"tls\"\nport = {}\nca_file = \"{}\"\ntls_server_name = \"imap.elsewhere.test\"\n",
            port_of("MAILSTACK_IMAPS_PORT"),
            ca_file()
        ),
    );
    let d = desk("", &format!("port = {}\n", smtp_port()), &[b]);
    let (ok, out, _) = d.cli(&["check", "--connect"]);
    assert!(!ok);
    assert!(
        out.contains("is not valid for \"imap.elsewhere.test\"") && out.contains("tls_server_name"),
        "{out}"
    );
}

/// A man in the middle that deletes STARTTLS from the server's capabilities.
fn stripping_proxy(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            let (mut c_w, mut s_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut BufReader::new(client), &mut s_w);
            });
            std::thread::spawn(move || {
                let mut r = BufReader::new(server);
                loop {
                    let mut line = Vec::new();
                    if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&line).replace(" STARTTLS", "");
                    if c_w.write_all(text.as_bytes()).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_server_that_does_not_offer_starttls_is_refused() {
    let proxy = stripping_proxy(imap_port());
    let b = password_box(
        "tls-strip",
        format!(
            "security = \"starttls\"\nport = {proxy}\nca_file = \"{}\"\n",
            ca_file()
        ),
    );
    // Port SMTP is plain Postfix: no STARTTLS offered there.
    let d = desk(
        "",
        &format!("port = {}\nsecurity = \"starttls\"\n", smtp_port()),
        &[b],
    );
    let (ok, out, _) = d.cli(&["check", "--connect"]);
    assert!(!ok, "{out}");
    let imap = out.lines().find(|l| l.starts_with("imap mb0")).expect(&out);
    assert!(
        imap.contains("does not offer STARTTLS") && imap.contains("refusing"),
        "{imap}"
    );
    let smtp = out.lines().find(|l| l.starts_with("smtp")).expect(&out);
    assert!(
        smtp.contains("does not offer STARTTLS") && smtp.contains("refusing"),
        "{smtp}"
    );
}

// ---------------------------------------------------------------- 2. OAuth login

#[test]
fn device_login_then_fetch_with_xoauth2_and_oauthbearer_and_send_with_xoauth2() {
    let a = oauth_box("oauth-x", "xoauth2");
    let b = oauth_box("oauth-b", "oauthbearer");
    let (addr_a, addr_b) = (a.address.clone(), b.address.clone());
    let d = desk(
        "",
        &submission_starttls("auth = \"oauth2\"\noauth_from_mailbox = \"mb0\"\n"),
        &[a, b],
    );
    // Before the login, check says what is missing.
    let (ok, out, _) = d.cli(&["check", "--connect"]);
    assert!(!ok);
    assert!(out.contains("run `postdesk login mb0`"), "{out}");
    d.login("mb0", &addr_a);
    d.login("mb1", &addr_b);
    let (ok, out, err) = d.cli(&["check", "--connect"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("XOAUTH2 with an access token"), "{out}");
    assert!(out.contains("OAUTHBEARER with an access token"), "{out}");
    assert!(
        out.contains("server offers SASL") && out.contains("XOAUTH2"),
        "{out}"
    );
    assert!(out.contains("OK: STARTTLS; XOAUTH2 as"), "{out}");
    for line in out.lines() {
        assert!(
            !line.contains(&read_tokens(&d.token_file("mb0")).access_token),
            "a token printed: {line}"
        );
    }
    let inst = d.instance();
    let daemon = inst.start();
    write_and_wait_ack(&addr_a, "oauth xoauth2 mailbox");
    write_and_wait_ack(&addr_b, "oauth oauthbearer mailbox");
    assert_eq!(tickets_with(inst, "oauth xoauth2 mailbox"), 1);
    assert_eq!(tickets_with(inst, "oauth oauthbearer mailbox"), 1);
    daemon.stop();
}

// ---------------------------------------------------------------- 3. refresh and rotation

#[test]
fn an_expired_token_is_refreshed_the_rotated_refresh_token_is_stored_and_never_reused() {
    let a = oauth_box("oauth-exp", "xoauth2");
    let addr = a.address.clone();
    let d = desk(
        "[alerts]\nalert_after = \"4s\"\n",
        &submission_starttls("auth = \"oauth2\"\noauth_from_mailbox = \"mb0\"\n"),
        &[a],
    );
    d.login("mb0", &addr);
    let before = read_tokens(&d.token_file("mb0"));
    let inst = d.instance();
    let daemon = inst.start();
    write_and_wait_ack(&addr, "before the expiry");
    mailstack(&["oauth-expire", &addr]);
    // The daemon logs in afresh every alert_after/2; its token is refused, it refreshes.
    let after = wait_until(Duration::from_secs(20), "a refreshed token file", || {
        let t = read_tokens(&d.token_file("mb0"));
        (t.access_token != before.access_token).then_some(t)
    });
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the refresh token was rotated and stored"
    );
    assert!(after.refreshed_at.is_some());
    write_and_wait_ack(&addr, "after the expiry");
    assert_eq!(tickets_with(inst, "before the expiry"), 1);
    assert_eq!(tickets_with(inst, "after the expiry"), 1);
    let stats: serde_json::Value =
        serde_json::from_str(&mailstack(&["oauth-stats", &addr])).unwrap();
    assert!(stats["refreshes"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(
        stats["refresh_reuse_detected"].as_u64(),
        Some(0),
        "an old refresh token was used again: {stats}"
    );
    // No alarm for a refresh that worked.
    assert!(!d.cli(&["status"]).1.contains("ALARM"));
    daemon.stop();
}

// ---------------------------------------------------------------- 4. and 5. alarms

fn alarm_mails(ops: &str) -> Vec<String> {
    inbox(ops)
        .into_iter()
        .map(|(subject, _)| subject)
        .filter(|s| s.contains("[postdesk]"))
        .collect()
}

#[test]
fn a_revoked_mailbox_raises_one_alarm_the_other_goes_on_and_a_new_login_recovers_once() {
    let a = oauth_box("oauth-rev", "xoauth2");
    let b = oauth_box("oauth-ok", "xoauth2");
    let (addr_a, addr_b) = (a.address.clone(), b.address.clone());
    let ops = unique("ops", "example.test");
    let d = desk(
        &format!("[alerts]\nto = [\"{ops}\"]\nalert_after = \"4s\"\n"),
        &submission_starttls("auth = \"oauth2\"\noauth_from_mailbox = \"mb1\"\n"),
        &[a, b],
    );
    d.login("mb0", &addr_a);
    d.login("mb1", &addr_b);
    let inst = d.instance();
    let daemon = inst.start();
    let (_, calm) = write_and_wait_ack(&addr_b, "latency before");

    let revoked = Instant::now();
    mailstack(&["oauth-revoke", &addr_a]);
    let alarm = wait_until(Duration::from_secs(30), "the alarm mail", || {
        let m = alarm_mails(&ops);
        (!m.is_empty()).then_some(m)
    });
    let took = revoked.elapsed();
    eprintln!("alarm mail {took:?} after the revocation (alert_after 4 s)");
    assert_eq!(alarm.len(), 1, "{alarm:?}");
    assert!(
        alarm[0].contains("ALARM") && alarm[0].contains("mb0"),
        "{alarm:?}"
    );
    assert!(took < Duration::from_secs(4 + 10), "alarm after {took:?}");
    let (_, out, _) = d.cli(&["status"]);
    assert!(
        out.lines()
            .any(|l| l.contains("mb0") && l.contains("ALARM")),
        "{out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.contains("mb1") && l.contains("ALARM")),
        "{out}"
    );

    // The other mailbox answers as fast as before.
    let (_, during) = write_and_wait_ack(&addr_b, "latency during");
    eprintln!("acknowledgement latency of the healthy mailbox: {calm:?} before, {during:?} during");
    assert!(
        during < Duration::from_secs(5).max(calm * 5),
        "{during:?} vs {calm:?}"
    );

    d.login("mb0", &addr_a);
    let recovered = wait_until(Duration::from_secs(30), "the recovery mail", || {
        let m = alarm_mails(&ops);
        (m.len() >= 2).then_some(m)
    });
    assert!(
        recovered[1].contains("RECOVERED") && recovered[1].contains("mb0"),
        "{recovered:?}"
    );
    write_and_wait_ack(&addr_a, "after the new login");
    // Once: a few more rounds bring no more alarm mail.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(alarm_mails(&ops).len(), 2, "{:?}", alarm_mails(&ops));
    assert!(!d.cli(&["status"]).1.contains("ALARM"));
    daemon.stop();
}

#[test]
fn a_wrong_password_raises_the_same_alarm_and_a_fixed_one_recovers_after_a_restart() {
    let bad = password_box("pw-bad", format!("port = {}\n", imap_port()));
    let good = password_box("pw-good", format!("port = {}\n", imap_port()));
    let ops = unique("ops", "example.test");
    let mut bad = bad;
    bad.lines = bad.lines.replace(
        "password_file = \"password\"",
        "password_file = \"wrong-password\"",
    );
    let addr_good = good.address.clone();
    let d = desk(
        &format!("[alerts]\nto = [\"{ops}\"]\nalert_after = \"4s\"\n"),
        &format!("port = {}\n", smtp_port()),
        &[bad, good],
    );
    let log = d.dir().join("daemon.log");
    let inst = d.instance();
    let mut proc = inst.spawn_logged("error", &log);
    let alarm = wait_until(Duration::from_secs(30), "the alarm mail", || {
        let m = alarm_mails(&ops);
        (!m.is_empty()).then_some(m)
    });
    assert!(
        alarm[0].contains("ALARM") && alarm[0].contains("mb0"),
        "{alarm:?}"
    );
    let (_, out, _) = d.cli(&["status"]);
    assert!(
        out.lines()
            .any(|l| l.contains("mb0") && l.contains("ALARM")),
        "{out}"
    );
    write_and_wait_ack(&addr_good, "the good mailbox goes on");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("ERROR") && logged.contains("mb0"),
        "{logged}"
    );
    assert!(
        !logged.contains("not-the-password"),
        "the password reached the log"
    );
    proc.signal("TERM");
    assert_eq!(proc.wait_exit(Duration::from_secs(30)), Some(0));

    // Mend the password file and start again: one recovery mail, no second alarm.
    std::fs::write(d.dir().join("wrong-password"), PASSWORD).unwrap();
    let _proc = inst.spawn_logged("error", &log);
    let mails = wait_until(Duration::from_secs(30), "the recovery mail", || {
        let m = alarm_mails(&ops);
        (m.len() >= 2).then_some(m)
    });
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(mails[1].contains("RECOVERED"), "{mails:?}");
}
