//! What an agent's Reply really sends (issue 11), on the real Dovecot and Postfix: what
//! survives of the quoted relay, command-only replies, answers that still hold the relay,
//! and the people a customer copies.
//!
//! Agents act only as a mail client would: Reply to a relay they received, to its
//! `Reply-To` (their reply token), through Postfix. Each client's reply is built the way
//! its sample in `tests/fixtures/replies/` is (headers, MIME structure, charset and
//! transfer encoding, attribution, quote and HTML), but around the relay the agent really
//! received in this test: To its `Reply-To`, In-Reply-To its Message-ID, References its
//! References and Message-ID, and its real text quoted the way that client quotes. Every
//! check is on real mailboxes (requester, people copied, agent) and the ticket's events.
//!
//! One daemon per test; each client gets a fresh customer and ticket, all in flight at
//! once, and one pause at the end lets any duplicate or stray mail arrive before counting.

mod common;

use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use common::*;
use postdesk::agent::commands::split_commands;
use postdesk::agent::quote::cut_answer;
use postdesk::mail::parse::Parsed;

/// The relay marker, first body line of every mail we send an agent.
const MARKER_EN: &str = "-- reply above this line --";
const MARKER_ZH: &str = "-- 请在此线以上回复 --";

/// An agent of the lab, as configured.
struct Agent {
    name: &'static str,
    display: &'static str,
    address: String,
}

/// A helpdesk with two agents in its English queue: alice (English) and li (Chinese,
/// so li's relays are in Chinese, as Foxmail's and QQ Mail's samples answer them).
struct Lab {
    inst: Instance,
    alice: Agent,
    li: Agent,
}

impl Lab {
    fn new() -> Lab {
        let alice = Agent {
            name: "alice",
            display: "Alice Agent",
            address: unique("agent-alice", "example.test"),
        };
        let li = Agent {
            name: "li",
            display: "李娜",
            address: unique("li.na.agent", "example.test"),
        };
        let inst = Instance::new(Setup {
            tail: format!(
                "\n[[agent]]\nname = \"alice\"\ndisplay_name = \"{}\"\naddresses = [\"{}\"]\nqueues = [\"support\"]\n\
                 \n[[agent]]\nname = \"li\"\ndisplay_name = \"{}\"\nlanguage = \"zh-CN\"\naddresses = [\"{}\"]\nqueues = [\"support\"]\n",
                alice.display, alice.address, li.display, li.address
            ),
            ..Setup::default()
        });
        Lab { inst, alice, li }
    }

    fn support(&self) -> &str {
        &self.inst.support[0]
    }

    /// Mail in `who`'s mailbox from our support address that `keep` accepts: waits for
    /// `n` of them, returns them all (in UID order).
    fn wait_ours(
        &self,
        who: &str,
        n: usize,
        what: &str,
        keep: impl Fn(&Parsed) -> bool,
    ) -> Vec<Parsed> {
        let support = self.support().to_owned();
        wait_mail_where(who, n, what, move |m| {
            m.from.as_ref().map(|f| f.address.as_str()) == Some(support.as_str()) && keep(m)
        })
    }

    /// Mail in `who`'s mailbox from our support address that `keep` accepts, now.
    fn ours_now(&self, who: &str, keep: impl Fn(&Parsed) -> bool) -> Vec<Parsed> {
        inbox(who)
            .into_iter()
            .map(|(_, raw)| {
                postdesk::mail::parse::message(&raw, &postdesk::limits::Limits::default()).unwrap()
            })
            .filter(|m| m.from.as_ref().map(|f| f.address.as_str()) == Some(self.support()))
            .filter(|m| keep(m))
            .collect()
    }

    /// The `n`th relay of ticket `tag` in `agent`'s mailbox that `keep` accepts.
    fn relay_to(&self, agent: &str, tag: &str, n: usize, keep: impl Fn(&Parsed) -> bool) -> Parsed {
        self.wait_ours(agent, n, "relay", |m| {
            m.subject.starts_with(tag)
                && (m.text.contains("Requester:") || m.text.contains("客户："))
                && keep(m)
        })
        .remove(n - 1)
    }

    /// The `n`th relay of ticket `tag` to alice that `keep` accepts.
    fn relay(&self, tag: &str, n: usize, keep: impl Fn(&Parsed) -> bool) -> Parsed {
        self.relay_to(&self.alice.address, tag, n, keep)
    }

    fn events(&self, ticket: i64, kind: &str) -> Vec<(Option<String>, Option<String>)> {
        self.inst
            .ticket(ticket)
            .events
            .into_iter()
            .filter(|e| e.kind.as_str() == kind)
            .map(|e| (e.old, e.new))
            .collect()
    }

    /// Every customer of `cases` writes a new request at once; then waits, for each, for
    /// the ticket, the acknowledgement and the relay to the case's agent.
    fn open_tickets(&self, cases: &[Case]) -> Vec<Opened> {
        for c in cases {
            let (name, subject, body) = if c.chinese {
                (
                    "张伟",
                    format!("打印机无法连接（{}）", c.client),
                    "您好，\n\n三楼的打印机从今天早上开始就连不上了，重启也没有用。\n\n张伟\n",
                )
            } else {
                (
                    "Jane Doe",
                    format!("Printer offline ({})", c.client),
                    "Hello,\n\nthe printer on the third floor has been offline since this morning.\nRestarting it did not help.\n\nJane Doe\n",
                )
            };
            let raw = format!(
                "From: {} <{}>\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: <{}>\r\nDate: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}",
                word(name),
                c.customer,
                self.support(),
                word(&subject),
                new_message_id(),
                Utc::now().to_rfc2822(),
                b64(crlf(body).as_bytes()),
            );
            smtp_send(&c.customer, &[self.support()], raw.as_bytes());
        }
        cases
            .iter()
            .map(|c| {
                let t = wait_until(Duration::from_secs(30), "the ticket", || {
                    self.inst
                        .tickets()
                        .into_iter()
                        .find(|t| t.requester.as_deref() == Some(c.customer.as_str()))
                });
                self.wait_ours(&c.customer, 1, "acknowledgement", |_| true);
                let agent = self.agent(c.agent);
                let relay = Relay::of(self.relay_to(&agent.address, &t.tag, 1, |_| true));
                Opened {
                    ticket: t.id.get(),
                    tag: t.tag,
                    relay,
                }
            })
            .collect()
    }

    fn agent(&self, name: &str) -> &Agent {
        if name == self.li.name {
            &self.li
        } else {
            &self.alice
        }
    }
}

/// One client style tried in a test: who writes, who answers, with what.
struct Case {
    client: &'static str,
    /// The customer writes in Chinese (the case's agent is li).
    chinese: bool,
    agent: &'static str,
    customer: String,
    build: Build,
    /// The rule that cuts this client's sample (`CutRule::as_str`, its `.json`'s `rule`):
    /// the reply built here must be cut by the same rule, or it is not that client's.
    rule: Option<&'static str>,
}

/// Builds the agent's reply to `relay`: (the raw mail, what the customer must receive
/// of it: the answer with the agent's signature, and the signature's distinctive line).
type Build = fn(&Relay, &Agent) -> Reply;

struct Reply {
    raw: Vec<u8>,
    /// What the agent wrote, signature included, as the customer must receive it
    /// (compared line by line, trailing white space ignored). Empty: no answer.
    answer: String,
    /// A line of the agent's own signature.
    signature: &'static str,
}

fn case(
    client: &'static str,
    build: Build,
    agent: &'static str,
    rule: Option<&'static str>,
) -> Case {
    let chinese = agent == "li";
    Case {
        client,
        chinese,
        agent,
        customer: unique(if chinese { "zhang.wei" } else { "jane" }, "customer.test"),
        build,
        rule,
    }
}

/// A ticket a case opened and the relay its agent received.
struct Opened {
    ticket: i64,
    tag: String,
    relay: Relay,
}

/// The relay as the agent's mail client shows it: what a reply is built from.
struct Relay {
    token: String,
    /// The relay's From display name: `Jane Doe via ACME Support`.
    writer: String,
    support: String,
    subject: String,
    /// `<…>`.
    id: String,
    /// The relay's References and its Message-ID: a reply's References.
    refs: String,
    /// The relay's text, line by line, as delivered.
    lines: Vec<String>,
    date: DateTime<Utc>,
}

impl Relay {
    fn of(parsed: Parsed) -> Relay {
        let from = parsed.from.clone().expect("a relay has a From");
        let id = parsed.message_id.bracketed();
        let mut refs: Vec<String> = parsed.references.iter().map(|r| r.bracketed()).collect();
        refs.push(id.clone());
        let text = parsed.text.trim_end_matches('\n');
        assert!(
            text.starts_with(MARKER_EN) || text.starts_with(MARKER_ZH),
            "the relay starts with the marker: {text}"
        );
        Relay {
            token: reply_address(&parsed),
            writer: from.name.unwrap_or_default(),
            support: from.address,
            subject: parsed.subject.clone(),
            id,
            refs: refs.join(" "),
            lines: text.split('\n').map(str::to_owned).collect(),
            date: parsed.date.expect("a relay has a Date"),
        }
    }

    fn body(&self) -> String {
        self.lines.join("\n")
    }

    /// The relay's Date in the agent's time zone (Beijing for li's clients).
    fn local(&self, offset_hours: i32) -> DateTime<FixedOffset> {
        self.date
            .with_timezone(&FixedOffset::east_opt(offset_hours * 3600).unwrap())
    }
}

// ---------------------------------------------------------------- encodings

const CRLF: &str = "\r\n";

fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', CRLF)
}

/// Base64 in lines of 76, CRLF.
fn b64(bytes: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    data.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(CRLF)
}

/// Quoted-printable (RFC 2045): hard line breaks CRLF, soft breaks at 76 columns.
fn qp(bytes: &[u8]) -> String {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut out = String::new();
    for line in text.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut cur = String::new();
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let enc =
                if ((b == b' ' || b == b'\t') && !last) || ((33..=126).contains(&b) && b != b'=') {
                    (b as char).to_string()
                } else {
                    format!("={b:02X}")
                };
            if cur.len() + enc.len() > 75 {
                out.push_str(&cur);
                out.push_str("=\r\n");
                cur.clear();
            }
            cur.push_str(&enc);
        }
        out.push_str(&cur);
        out.push_str(CRLF);
    }
    out
}

/// An RFC 2047 encoded word in UTF-8.
fn word(text: &str) -> String {
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// An RFC 2047 encoded word in `charset`, with the label the client writes.
fn word_in(text: &str, encoding: &'static encoding_rs::Encoding, label: &str) -> String {
    format!(
        "=?{label}?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(encode(text, encoding))
    )
}

/// `text` in `encoding`; every character must be representable.
fn encode(text: &str, encoding: &'static encoding_rs::Encoding) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding.encode(text);
    assert!(!unmappable, "{text:?} is not all {}", encoding.name());
    bytes.into_owned()
}

/// `text` as a client sends it: 7bit when it is ASCII, else quoted-printable; returns
/// (the Content-Transfer-Encoding header, the body).
fn seven_bit_or_qp(text: &str) -> (String, String) {
    if text.is_ascii() {
        ("Content-Transfer-Encoding: 7bit".to_owned(), crlf(text))
    } else {
        (
            "Content-Transfer-Encoding: quoted-printable".to_owned(),
            qp(text.as_bytes()),
        )
    }
}

/// The charset a client labels a text with: us-ascii when it is, else UTF-8.
fn ascii_or_utf8(text: &str) -> &'static str {
    if text.is_ascii() {
        "us-ascii"
    } else {
        "UTF-8"
    }
}

fn esc(line: &str) -> String {
    line.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The relay's lines in HTML, as clients turn plain text into HTML: escaped, runs of
/// two spaces as `&nbsp; `, joined by `sep`.
fn html_lines(lines: &[String], sep: &str) -> String {
    lines
        .iter()
        .map(|l| esc(l).replace("  ", "&nbsp; "))
        .collect::<Vec<_>>()
        .join(sep)
}

/// `> ` before every line; `empty` for an empty one.
fn quoted(lines: &[String], empty: &str) -> String {
    lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                empty.to_owned()
            } else {
                format!("> {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A multipart/alternative body: the plain part, then the HTML part.
fn alternative(
    boundary: &str,
    plain_headers: &[&str],
    plain: &str,
    html_headers: &[&str],
    html: &str,
) -> String {
    let mut parts = vec![format!("--{boundary}")];
    parts.extend(plain_headers.iter().map(|h| h.to_string()));
    parts.push(String::new());
    parts.push(plain.trim_end_matches(CRLF).to_owned());
    parts.push(format!("--{boundary}"));
    parts.extend(html_headers.iter().map(|h| h.to_string()));
    parts.push(String::new());
    parts.push(html.trim_end_matches(CRLF).to_owned());
    parts.push(format!("--{boundary}--"));
    parts.push(String::new());
    parts.join(CRLF)
}

/// Header lines and a body (already in its transfer encoding) as one message.
fn message(headers: &[String], body: &str) -> Vec<u8> {
    let raw = format!("{}{CRLF}{CRLF}{}", headers.join(CRLF), crlf(body));
    assert!(
        raw.is_ascii(),
        "a client sends 7-bit headers and encoded bodies"
    );
    raw.into_bytes()
}

/// A fresh Message-ID's unique part.
fn mid(prefix: &str) -> String {
    unique(prefix, "x")
        .split('@')
        .next()
        .unwrap()
        .replace('-', "")
}

/// The weekday in Chinese, as QQ Mail writes it (`星期三`).
fn weekday_zh(d: &DateTime<FixedOffset>) -> &'static str {
    [
        "星期一",
        "星期二",
        "星期三",
        "星期四",
        "星期五",
        "星期六",
        "星期日",
    ][d.weekday().num_days_from_monday() as usize]
}

// ---------------------------------------------------------------- the clients
//
// One function per sample of tests/fixtures/replies/, each following that sample's
// bytes, with the relay of this test in place of the sample's.

/// `neomutt-answer.eml` (a real capture): text above mutt's attribution, every relay line
/// `> `-quoted (an empty one as `> `), the `~/.signature` below the quote (mutt's default).
fn neomutt_answer(r: &Relay, a: &Agent) -> Reply {
    let above = "Hello Jane,\n\nthe printer's network card had lost its address; I have reset it and it\nis back online. Please print a test page and tell me if anything is\nstill wrong.";
    let signature = format!("-- \n{}\nACME Support, first-level team", a.display);
    Reply {
        raw: neomutt(r, a, &format!("{above}\n\n"), &signature),
        answer: format!("{above}\n\n{signature}"),
        signature: "ACME Support, first-level team",
    }
}

/// `neomutt-commands.eml`: only `#status resolved` above; the signature below the quote.
fn neomutt_commands(r: &Relay, a: &Agent) -> Reply {
    let signature = format!("-- \n{}\nACME Support, first-level team", a.display);
    Reply {
        raw: neomutt(r, a, "#status resolved\n", &signature),
        answer: String::new(),
        signature: "ACME Support, first-level team",
    }
}

fn neomutt(r: &Relay, a: &Agent, above: &str, signature: &str) -> Vec<u8> {
    let attribution = format!(
        "On {}, {} wrote:",
        r.date.format("%a, %b %d, %Y at %I:%M:%S%p %z"),
        r.writer
    );
    let body = format!(
        "{above}\n{attribution}\n{}\n> \n\n{signature}\n",
        quoted(&r.lines, "> ")
    );
    let refs = r.refs.split(' ').collect::<Vec<_>>().join("\r\n ");
    let headers = [
        format!(
            "Date: {}",
            Utc::now().format("%a, %-d %b %Y %H:%M:%S +0000")
        ),
        format!("From: {} <{}>", a.display, a.address),
        format!("To: {}", r.token),
        format!("Subject: Re: {}", r.subject),
        format!("Message-ID: <{}@vm>", mid("neomutt")),
        format!("References: {refs}"),
        "MIME-Version: 1.0".to_owned(),
        format!("Content-Type: text/plain; charset={}", ascii_or_utf8(&body)),
        "Content-Disposition: inline".to_owned(),
        format!("In-Reply-To: {}", r.id),
    ];
    if body.is_ascii() {
        message(&headers, &body)
    } else {
        let mut headers = headers.to_vec();
        headers.push("Content-Transfer-Encoding: 8bit".to_owned());
        let mut raw = format!("{}{CRLF}{CRLF}", headers.join(CRLF)).into_bytes();
        raw.extend_from_slice(crlf(&body).as_bytes());
        raw
    }
}

/// The headers Thunderbird writes, with `content` (its Content-Type and encoding lines)
/// after the Date.
fn thunderbird_headers(r: &Relay, a: &Agent, content: &[&str]) -> Vec<String> {
    let mut h = vec![
        format!("Message-ID: <{}@example.test>", mid("tb")),
        format!("Date: {}", Utc::now().to_rfc2822()),
    ];
    h.extend(content.iter().map(|c| c.to_string()));
    h.extend([
        "MIME-Version: 1.0".to_owned(),
        "User-Agent: Mozilla Thunderbird".to_owned(),
        format!("Subject: Re: {}", r.subject),
        "Content-Language: en-US".to_owned(),
        format!("To: {}", r.token),
        format!("References: {}", r.refs),
        format!("From: {} <{}>", a.display, a.address),
        format!("In-Reply-To: {}", r.id),
    ]);
    h
}

fn thunderbird_attribution(r: &Relay) -> String {
    format!(
        "On {}, {} wrote:",
        r.local(1).format("%-m/%-d/%Y %-I:%M %p"),
        r.writer
    )
}

/// `thunderbird-answer.eml`: HTML compose, multipart/alternative; the plain part
/// format=flowed (a trailing space where a paragraph goes on), the attribution over a
/// `> ` quote, the signature below it; the HTML a `moz-cite-prefix` and a
/// `blockquote type="cite"` holding the relay in a `pre`.
fn thunderbird_answer(r: &Relay, a: &Agent) -> Reply {
    let answer = "Hello Jane,\n\nthe toner cartridge was empty and has been replaced; the printer is \nonline again. The steps are in our guide: \nhttps://kb.example.test/printers/toner\n\nKind regards,\nAlice";
    let signature = format!("-- \n{}\nACME Support, first-level team", a.display);
    let attribution = thunderbird_attribution(r);
    let plain = format!(
        "{answer}\n\n{attribution}\n{}\n\n{signature}\n",
        quoted(&r.lines, ">")
    );
    let html = format!(
        "<!DOCTYPE html>\n<html>\n  <head>\n    <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\">\n  </head>\n  <body>\n    <p>Hello Jane,</p>\n    <p>the toner cartridge was empty and has been replaced; the printer is\n      online again. The steps are in our <a class=\"moz-txt-link-freetext\" href=\"https://kb.example.test/printers/toner\">guide</a>.</p>\n    <p>Kind regards,<br>\n      Alice</p>\n    <div class=\"moz-cite-prefix\">{}<br>\n    </div>\n    <blockquote type=\"cite\" cite=\"mid:{}\">\n      <pre class=\"moz-quote-pre\" wrap=\"\">{}\n</pre>\n    </blockquote>\n    <br>\n    <pre class=\"moz-signature\" cols=\"72\">{}</pre>\n  </body>\n</html>\n",
        esc(&attribution),
        r.id.trim_matches(|c| c == '<' || c == '>'),
        r.lines.iter().map(|l| esc(l)).collect::<Vec<_>>().join("\n"),
        esc(&signature),
    );
    let boundary = format!("------------{}", mid("Mr6Fz0c2"));
    let (plain_cte, plain_body) = seven_bit_or_qp(&plain);
    let (html_cte, html_body) = seven_bit_or_qp(&html);
    let body = format!(
        "This is a multi-part message in MIME format.{CRLF}{}",
        alternative(
            &boundary,
            &[
                "Content-Type: text/plain; charset=UTF-8; format=flowed",
                &plain_cte
            ],
            &plain_body,
            &["Content-Type: text/html; charset=UTF-8", &html_cte],
            &html_body,
        )
    );
    let content = format!("Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"");
    Reply {
        raw: message(&thunderbird_headers(r, a, &[&content]), &body),
        answer: format!("{answer}\n\n{signature}"),
        signature: "ACME Support, first-level team",
    }
}

/// `thunderbird-commands.eml`: nothing formatted, so plain text only, format=flowed.
fn thunderbird_commands(r: &Relay, a: &Agent) -> Reply {
    let plain = format!(
        "#status resolved\n\n{}\n{}\n",
        thunderbird_attribution(r),
        quoted(&r.lines, ">")
    );
    let (cte, body) = seven_bit_or_qp(&plain);
    let headers = thunderbird_headers(
        r,
        a,
        &[
            "Content-Type: text/plain; charset=UTF-8; format=flowed",
            &cte,
        ],
    );
    Reply {
        raw: message(&headers, &body),
        answer: String::new(),
        signature: "",
    }
}

fn apple_attribution(r: &Relay) -> String {
    format!(
        "On {}, {} <{}> wrote:",
        r.local(1).format("%-d %b %Y, at %H:%M"),
        r.writer,
        r.support
    )
}

/// `apple-mail-answer.eml`: macOS Mail, multipart/alternative, quoted-printable; the
/// plain part quotes the attribution too (`> On …, at …, X <a> wrote:`), empty lines as
/// `> `; the HTML a `blockquote type="cite"`; the signature (no dashes) above the quote.
fn apple_mail_answer(r: &Relay, a: &Agent) -> Reply {
    let signature = format!("{}\nACME Support, printers and networks", a.display);
    let answer = format!(
        "Hi Jane,\n\nwe replaced the network cable of the printer; it is online again.\n\n{signature}"
    );
    let attribution = apple_attribution(r);
    let plain = format!(
        "{answer}\n\n> {attribution}\n> \n{}\n\n",
        quoted(&r.lines, "> ")
    );
    let charset = ascii_or_utf8(&plain);
    let html = format!(
        "<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset={charset}\"></head><body style=\"overflow-wrap: break-word; -webkit-nbsp-mode: space; line-break: after-white-space;\">Hi Jane,<div><br></div><div>we replaced the network cable of the printer; it is online again.</div><div><br></div><div>{}</div><div>ACME Support, printers and networks<br id=\"lineBreakAtBeginningOfMessage\"><div><br><blockquote type=\"cite\"><div>{}</div><br class=\"Apple-interchange-newline\"><div><div>{}</div></div></blockquote></div><br></div></body></html>",
        esc(a.display),
        esc(&attribution),
        html_lines(&r.lines, "<br>"),
    );
    let boundary = format!("Apple-Mail={}", mid("_7C3F9D2E"));
    let headers = [
        format!("From: {} <{}>", a.display, a.address),
        format!("Content-Type: multipart/alternative;\r\n\tboundary=\"{boundary}\""),
        "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.300.87.4.3\\))".to_owned(),
        format!("Subject: Re: {}", r.subject),
        format!("Date: {}", Utc::now().to_rfc2822()),
        format!("References: {}", r.refs),
        format!("To: {}", r.token),
        format!("In-Reply-To: {}", r.id),
        format!(
            "Message-Id: <{}@example.test>",
            mid("8E2B4C6A").to_uppercase()
        ),
        "X-Mailer: Apple Mail (2.3826.300.87.4.3)".to_owned(),
    ];
    let plain_ct = format!("\tcharset={charset}");
    let body = alternative(
        &boundary,
        &[
            "Content-Transfer-Encoding: quoted-printable",
            "Content-Type: text/plain;",
            &plain_ct,
        ],
        &qp(plain.as_bytes()),
        &[
            "Content-Transfer-Encoding: quoted-printable",
            "Content-Type: text/html;",
            &plain_ct,
        ],
        &qp(html.as_bytes()),
    );
    Reply {
        raw: message(&headers, &body),
        answer,
        signature: "ACME Support, printers and networks",
    }
}

/// `apple-mail-commands.eml`: iPhone Mail; `#status resolved`, the device line `Sent from
/// my iPhone`, the attribution outside the quote, empty lines `>`.
fn apple_mail_commands(r: &Relay, a: &Agent) -> Reply {
    let attribution = apple_attribution(r);
    let plain = format!(
        "#status resolved\n\nSent from my iPhone\n\n{attribution}\n\n{}\n",
        quoted(&r.lines, ">")
    );
    let html = format!(
        "<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\"></head><body dir=\"auto\"><div dir=\"ltr\">#status resolved</div><div dir=\"ltr\"><br></div><div dir=\"ltr\">Sent from my iPhone</div><div dir=\"ltr\"><br><blockquote type=\"cite\">{}<br><br></blockquote></div><blockquote type=\"cite\"><div dir=\"ltr\">{}</div></blockquote></body></html>",
        esc(&attribution),
        html_lines(&r.lines, "<br>"),
    );
    let boundary = format!("Apple-Mail-{}", mid("3B9E1C7D").to_uppercase());
    let headers = [
        format!("Content-Type: multipart/alternative; boundary=\"{boundary}\""),
        "Content-Transfer-Encoding: 7bit".to_owned(),
        format!("From: {} <{}>", a.display, a.address),
        "Mime-Version: 1.0 (1.0)".to_owned(),
        format!("Subject: Re: {}", r.subject),
        format!("Date: {}", Utc::now().to_rfc2822()),
        format!(
            "Message-Id: <{}@example.test>",
            mid("F1A3C5E7").to_uppercase()
        ),
        format!("References: {}", r.refs),
        format!("In-Reply-To: {}", r.id),
        format!("To: {}", r.token),
        "X-Mailer: iPhone Mail (22B91)".to_owned(),
    ];
    let body = alternative(
        &boundary,
        &[
            "Content-Type: text/plain;",
            "\tcharset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ],
        &qp(plain.as_bytes()),
        &[
            "Content-Type: text/html;",
            "\tcharset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ],
        &qp(html.as_bytes()),
    );
    Reply {
        raw: message(&headers, &body),
        answer: String::new(),
        signature: "",
    }
}

/// Gmail's attribution: `On <date> X <` wrapped before the address in the plain part.
fn gmail_date(r: &Relay) -> String {
    r.local(1).format("%a, %b %-d, %Y at %-I:%M %p").to_string()
}

fn gmail_quote_html(r: &Relay) -> String {
    format!(
        "<div class=\"gmail_quote gmail_quote_container\"><div dir=\"ltr\" class=\"gmail_attr\">On {} {} &lt;<a href=\"mailto:{s}\">{s}</a>&gt; wrote:<br></div><blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">{}<br>\n</blockquote></div>\n",
        gmail_date(r),
        esc(&r.writer),
        html_lines(&r.lines, "<br>\n"),
        s = r.support,
    )
}

fn gmail(r: &Relay, a: &Agent, plain: &str, html: &str) -> Vec<u8> {
    let boundary = format!("0000000000{}", mid("4a1f2e0625"));
    let headers = [
        "MIME-Version: 1.0".to_owned(),
        format!("References: {}", r.refs),
        format!("In-Reply-To: {}", r.id),
        format!("From: {} <{}>", a.display, a.address),
        format!("Date: {}", Utc::now().to_rfc2822()),
        "X-Gm-Features: AWmQ_bl3Xq0c9KkzJvT2d8R1sYf4hN6pLwE7aUoC5iMg".to_owned(),
        format!("Message-ID: <CAJx9K2{}@mail.gmail.com>", mid("b7Qm4Zt")),
        format!("Subject: Re: {}", r.subject),
        format!("To: {}", r.token),
        format!("Content-Type: multipart/alternative; boundary=\"{boundary}\""),
    ];
    let part = [
        "Content-Type: text/plain; charset=\"UTF-8\"",
        "Content-Transfer-Encoding: quoted-printable",
    ];
    let html_part = [
        "Content-Type: text/html; charset=\"UTF-8\"",
        "Content-Transfer-Encoding: quoted-printable",
    ];
    message(
        &headers,
        &alternative(
            &boundary,
            &part,
            &qp(plain.as_bytes()),
            &html_part,
            &qp(html.as_bytes()),
        ),
    )
}

fn gmail_attribution_plain(r: &Relay) -> String {
    format!("On {} {} <\n{}> wrote:", gmail_date(r), r.writer, r.support)
}

/// `gmail-answer.eml`: multipart/alternative, quoted-printable; `-- ` signature above the
/// quote; the plain attribution wrapped before the address; HTML `div.gmail_quote`.
fn gmail_answer(r: &Relay, a: &Agent) -> Reply {
    let answer = format!(
        "Hi Jane,\n\nthe printer had lost its IP address. I have reserved one for it, so this\nshould not happen again.\n\nBest,\nAlice\n\n-- \n{}\nACME Support | +1 555 0100",
        a.display
    );
    let plain = format!(
        "{answer}\n\n\n{}\n\n{}\n",
        gmail_attribution_plain(r),
        quoted(&r.lines, ">")
    );
    let html = format!(
        "<div dir=\"ltr\"><div>Hi Jane,</div><div><br></div><div>the printer had lost its IP address. I have reserved one for it, so this should not happen again.</div><div><br></div><div>Best,</div><div>Alice</div><div><br clear=\"all\"></div><div><br></div><span class=\"gmail_signature_prefix\">-- </span><br><div dir=\"ltr\" class=\"gmail_signature\" data-smartmail=\"gmail_signature\"><div dir=\"ltr\">{}<div>ACME Support | +1 555 0100</div></div></div></div><br>{}",
        esc(a.display),
        gmail_quote_html(r)
    );
    Reply {
        raw: gmail(r, a, &plain, &html),
        answer,
        signature: "ACME Support | +1 555 0100",
    }
}

/// `gmail-commands.eml`: only `#status resolved` above the wrapped attribution.
fn gmail_commands(r: &Relay, a: &Agent) -> Reply {
    let plain = format!(
        "#status resolved\n\n{}\n\n{}\n",
        gmail_attribution_plain(r),
        quoted(&r.lines, ">")
    );
    let html = format!(
        "<div dir=\"ltr\">#status resolved</div><br>{}",
        gmail_quote_html(r)
    );
    Reply {
        raw: gmail(r, a, &plain, &html),
        answer: String::new(),
        signature: "",
    }
}

const OUTLOOK_HEAD: &str = concat!(
    "<html xmlns:v=\"urn:schemas-microsoft-com:vml\" xmlns:o=\"urn:schemas-microsoft-com:office:office\" ",
    "xmlns:w=\"urn:schemas-microsoft-com:office:word\" xmlns:m=\"http://schemas.microsoft.com/office/2004/12/omml\" ",
    "xmlns=\"http://www.w3.org/TR/REC-html40\"><head><meta http-equiv=Content-Type content=\"text/html; charset=us-ascii\">",
    "<meta name=Generator content=\"Microsoft Word 15 (filtered medium)\"><style><!--\n",
    "/* Font Definitions */\n@font-face\n\t{font-family:\"Cambria Math\";\n\tpanose-1:2 4 5 3 5 4 6 3 2 4;}\n",
    "@font-face\n\t{font-family:Aptos;}\n/* Style Definitions */\np.MsoNormal, li.MsoNormal, div.MsoNormal\n",
    "\t{margin:0in;\n\tfont-size:12.0pt;\n\tfont-family:\"Aptos\",sans-serif;}\n",
    "p.MsoPlainText, li.MsoPlainText, div.MsoPlainText\n\t{mso-style-priority:99;\n\tmargin:0in;\n",
    "\tfont-size:11.0pt;\n\tfont-family:\"Calibri\",sans-serif;}\nspan.EmailStyle19\n\t{mso-style-type:personal-reply;}\n",
    "@page WordSection1\n\t{size:8.5in 11.0in;\n\tmargin:1.0in 1.0in 1.0in 1.0in;}\ndiv.WordSection1\n\t{page:WordSection1;}\n",
    "--></style><!--[if gte mso 9]><xml>\n<o:shapedefaults v:ext=\"edit\" spidmax=\"1026\" />\n</xml><![endif]-->",
    "<!--[if gte mso 9]><xml>\n<o:shapelayout v:ext=\"edit\">\n<o:idmap v:ext=\"edit\" data=\"1\" />\n</o:shapelayout></xml><![endif]-->",
    "</head><body lang=EN-US link=\"#467886\" vlink=\"#96607D\" style='word-wrap:break-word'><div class=WordSection1>",
);

/// Outlook for Windows' header block over the unindented relay (plain part).
fn outlook_desktop_block(r: &Relay, a: &Agent) -> String {
    format!(
        "From: {} <{}> \nSent: {}\nTo: {} <{}>\nSubject: {}",
        r.writer,
        r.support,
        r.local(1).format("%A, %B %-d, %Y %-I:%M %p"),
        a.display,
        a.address,
        r.subject
    )
}

fn outlook_desktop_headers(r: &Relay, a: &Agent, content: &[String]) -> Vec<String> {
    let mut h = vec![
        format!("From: \"{}\" <{}>", a.display, a.address),
        format!("To: <{}>", r.token),
        format!("References: {}", r.refs),
        format!("In-Reply-To: {}", r.id),
        format!("Subject: RE: {}", r.subject),
        format!("Date: {}", Utc::now().to_rfc2822()),
        format!(
            "Message-ID: <00{}$6a2f1b30$3e8d5190$@example.test>",
            mid("1701db4463")
        ),
        "MIME-Version: 1.0".to_owned(),
    ];
    h.extend(content.iter().cloned());
    h.extend([
        "X-Mailer: Microsoft Outlook 16.0".to_owned(),
        "Thread-Index: AQHbRGNqXWYl4n1uq0CrJ1KqmhJjUQ==".to_owned(),
        "Content-Language: en-us".to_owned(),
    ]);
    h
}

/// `outlook-desktop-answer.eml`: Outlook for Windows 16.0, HTML reply sent as
/// multipart/alternative; the plain part has the answer, then `From:`/`Sent:`/`To:`/
/// `Subject:` over the relay, unindented; the HTML a `border-top` div and `MsoPlainText`
/// paragraphs.
fn outlook_desktop_answer(r: &Relay, a: &Agent) -> Reply {
    let lines = [
        "Hello Jane,",
        "",
        "the printer is back online: its driver had been updated overnight and lost the tray settings. I have restored them.",
        "",
        "Best regards,",
        a.display,
        "ACME Support, ext. 4711",
    ];
    let answer = lines.join("\n");
    let plain = format!(
        "{answer}\n\n{}\n\n{}\n\n\n",
        outlook_desktop_block(r, a),
        r.body()
    );
    let paragraphs: String = lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                "<p class=MsoNormal><o:p>&nbsp;</o:p></p>".to_owned()
            } else {
                format!("<p class=MsoNormal>{}<o:p></o:p></p>", esc(l))
            }
        })
        .collect();
    let quoted_html: String = r
        .lines
        .iter()
        .map(|l| {
            if l.is_empty() {
                "<p class=MsoPlainText><o:p>&nbsp;</o:p></p>".to_owned()
            } else {
                format!(
                    "<p class=MsoPlainText>{}<o:p></o:p></p>",
                    esc(l).replace("  ", "&nbsp; ")
                )
            }
        })
        .collect();
    let html = format!(
        "{OUTLOOK_HEAD}{paragraphs}<p class=MsoNormal><o:p>&nbsp;</o:p></p><div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in'><p class=MsoNormal><b>From:</b> {} &lt;{}&gt; <br><b>Sent:</b> {}<br><b>To:</b> {} &lt;{}&gt;<br><b>Subject:</b> {}<o:p></o:p></p></div></div><p class=MsoNormal><o:p>&nbsp;</o:p></p>{quoted_html}</div></body></html>",
        esc(&r.writer),
        r.support,
        r.local(1).format("%A, %B %-d, %Y %-I:%M %p"),
        esc(a.display),
        a.address,
        esc(&r.subject),
    );
    let boundary = format!("----=_NextPart_000_0017_{}", mid("01DB4463").to_uppercase());
    let charset = ascii_or_utf8(&plain);
    let plain_charset = format!("\tcharset=\"{charset}\"");
    let (plain_cte, plain_body) = seven_bit_or_qp(&plain);
    let body = format!(
        "This is a multipart message in MIME format.{CRLF}{CRLF}{}",
        alternative(
            &boundary,
            &["Content-Type: text/plain;", &plain_charset, &plain_cte],
            &plain_body,
            &[
                "Content-Type: text/html;",
                &plain_charset,
                "Content-Transfer-Encoding: quoted-printable",
            ],
            &qp(html.as_bytes()),
        )
    );
    let headers = outlook_desktop_headers(
        r,
        a,
        &[format!(
            "Content-Type: multipart/alternative;\r\n\tboundary=\"{boundary}\""
        )],
    );
    Reply {
        raw: message(&headers, &body),
        answer,
        signature: "ACME Support, ext. 4711",
    }
}

/// `outlook-desktop-commands.eml`: plain-text mode; `-----Original Message-----` over the
/// same header block.
fn outlook_desktop_commands(r: &Relay, a: &Agent) -> Reply {
    let plain = format!(
        "#status resolved\n\n-----Original Message-----\n{}\n\n{}\n\n\n",
        outlook_desktop_block(r, a),
        r.body()
    );
    let (cte, body) = seven_bit_or_qp(&plain);
    let headers = outlook_desktop_headers(
        r,
        a,
        &[
            "Content-Type: text/plain;".to_owned(),
            format!("\tcharset=\"{}\"", ascii_or_utf8(&plain)),
            cte,
        ],
    );
    Reply {
        raw: message(&headers, &body),
        answer: String::new(),
        signature: "",
    }
}

/// Outlook on the web: the page with `lines` (and a `#Signature`), `#appendonsend`, an
/// `hr`, `#divRplyFwdMsg` and the relay in a `PlainText` div.
fn outlook_web_html(r: &Relay, a: &Agent, lines: &[&str], signature: &[&str]) -> String {
    let divs: String = lines
        .iter()
        .map(|l| {
            format!(
                "<div class=\"elementToProof\" style=\"font-family: Aptos, Aptos_EmbeddedFont, Aptos_MSFontService, Calibri, Helvetica, sans-serif; font-size: 12pt; color: rgb(0, 0, 0);\">{}</div>",
                if l.is_empty() { "<br>".to_owned() } else { esc(l) }
            )
        })
        .collect();
    let sig = if signature.is_empty() {
        String::new()
    } else {
        format!(
            "<div id=\"Signature\"><div style=\"font-family: Aptos, sans-serif; font-size: 12pt;\">{}</div></div>",
            signature.iter().map(|s| esc(s)).collect::<Vec<_>>().join("<br>")
        )
    };
    format!(
        "<html><head>\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\">\n<style type=\"text/css\" style=\"display:none;\"> P {{margin-top:0;margin-bottom:0;}} </style>\n</head>\n<body dir=\"ltr\">\n{divs}{sig}\n<div id=\"appendonsend\"></div>\n<hr style=\"display:inline-block;width:98%\" tabindex=\"-1\">\n<div id=\"divRplyFwdMsg\" dir=\"ltr\"><font face=\"Calibri, sans-serif\" style=\"font-size:11pt\" color=\"#000000\"><b>From:</b> {} &lt;{}&gt;<br>\n<b>Sent:</b> {}<br>\n<b>To:</b> {} &lt;{}&gt;<br>\n<b>Subject:</b> {}</font>\n<div>&nbsp;</div>\n</div>\n<div class=\"BodyFragment\"><font size=\"2\"><span style=\"font-size:11pt;\">\n<div class=\"PlainText\">{}</div>\n</span></font></div>\n</body>\n</html>\n",
        esc(&r.writer),
        r.support,
        outlook_web_date(r),
        esc(a.display),
        a.address,
        esc(&r.subject),
        html_lines(&r.lines, "<br>\n"),
    )
}

fn outlook_web_date(r: &Relay) -> String {
    r.local(1).format("%A, %B %-d, %Y %H:%M").to_string()
}

fn outlook_web(r: &Relay, a: &Agent, plain: &str, html: &str) -> Vec<u8> {
    let id = mid("AM9PR07MB7123").to_uppercase();
    let boundary = format!("_000_{id}AM9PR07MB7123eurp_");
    let headers = [
        format!("From: {} <{}>", a.display, a.address),
        format!("To: \"{t}\" <{t}>", t = r.token),
        format!("Subject: Re: {}", r.subject),
        format!("Thread-Topic: {}", r.subject),
        "Thread-Index: AQHbRGNu9mGf0kVxLU2zH4c1q8JZ3Q==".to_owned(),
        format!("Date: {}", Utc::now().to_rfc2822()),
        format!("Message-ID: <{id}@AM9PR07MB7123.eurprd07.prod.outlook.example.test>"),
        format!("References: {}", r.refs),
        format!("In-Reply-To: {}", r.id),
        "Accept-Language: en-US".to_owned(),
        "Content-Language: en-US".to_owned(),
        "X-MS-Has-Attach:".to_owned(),
        "X-MS-TNEF-Correlator:".to_owned(),
        "msip_labels:".to_owned(),
        format!("Content-Type: multipart/alternative;\r\n\tboundary=\"{boundary}\""),
        "MIME-Version: 1.0".to_owned(),
    ];
    let bytes = |s: &str| encode(s, encoding_rs::WINDOWS_1252);
    message(
        &headers,
        &alternative(
            &boundary,
            &[
                "Content-Type: text/plain; charset=\"iso-8859-1\"",
                "Content-Transfer-Encoding: quoted-printable",
            ],
            &qp(&bytes(plain)),
            &[
                "Content-Type: text/html; charset=\"iso-8859-1\"",
                "Content-Transfer-Encoding: quoted-printable",
            ],
            &qp(&bytes(html)),
        ),
    )
}

/// The plain part's `____` line and header block.
fn outlook_web_block(r: &Relay, a: &Agent) -> String {
    format!(
        "________________________________\nFrom: {} <{}>\nSent: {}\nTo: {} <{}>\nSubject: {}",
        r.writer,
        r.support,
        outlook_web_date(r),
        a.display,
        a.address,
        r.subject
    )
}

/// `outlook-web-answer.eml`: multipart/alternative, quoted-printable iso-8859-1; the plain
/// part a line of 32 underscores and the header block right under the signature.
fn outlook_web_answer(r: &Relay, a: &Agent) -> Reply {
    let lines = [
        "Hello Jane,",
        "",
        "I have asked facilities to replace the printer's power supply today.",
        "",
    ];
    let signature = [a.display, "ACME Support, ext. 4712"];
    let answer = format!("{}\n{}", lines.join("\n"), signature.join("\n"));
    let plain = format!("{answer}\n{}\n\n{}\n", outlook_web_block(r, a), r.body());
    let html = outlook_web_html(r, a, &lines, &signature);
    Reply {
        raw: outlook_web(r, a, &plain, &html),
        answer,
        signature: "ACME Support, ext. 4712",
    }
}

/// `outlook-web-commands.eml`: only `#status resolved` above the `____` line.
fn outlook_web_commands(r: &Relay, a: &Agent) -> Reply {
    let plain = format!(
        "#status resolved\n\n{}\n\n{}\n",
        outlook_web_block(r, a),
        r.body()
    );
    let html = outlook_web_html(r, a, &["#status resolved", ""], &[]);
    Reply {
        raw: outlook_web(r, a, &plain, &html),
        answer: String::new(),
        signature: "",
    }
}

/// Foxmail's `发件人：`/`发送时间：`/`收件人：`/`主题：` block (the plain part).
fn foxmail_block(r: &Relay, a: &Agent) -> String {
    format!(
        "发件人： {}\n发送时间： {}\n收件人： {}\n主题： {}",
        r.writer,
        r.local(8).format("%Y-%m-%d %H:%M"),
        a.address.split('@').next().unwrap(),
        r.subject
    )
}

fn foxmail_html(r: &Relay, a: &Agent, lines: &[&str], signature: &[&str]) -> String {
    let quoted_html: String = r
        .lines
        .iter()
        .map(|l| {
            format!(
                "<div>{}</div>",
                if l.is_empty() {
                    "&nbsp;".to_owned()
                } else {
                    esc(l).replace("  ", "&nbsp; ")
                }
            )
        })
        .collect();
    let local = r.local(8);
    format!(
        "<html><head><meta http-equiv=\"content-type\" content=\"text/html; charset=GB2312\"><style>body {{ line-height: 1.5; }}blockquote {{ margin-top: 0px; margin-bottom: 0px; margin-left: 0.5em; }}body {{ font-size: 14px; font-family: \"Microsoft YaHei UI\"; color: rgb(0, 0, 0); line-height: 1.5; }}</style></head><body>\n{}\n<div><br></div><hr style=\"width: 210px; height: 1px;\" color=\"#b5c4df\" size=\"1\" align=\"left\">\n<div><span><div style=\"MARGIN: 10px; FONT-FAMILY: verdana; FONT-SIZE: 10pt\">{}</div></span></div>\n<blockquote style=\"margin-Top: 0px; margin-Bottom: 0px; margin-Left: 0.5em; margin-Right: inherit\"><div>&nbsp;</div><div style=\"border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0cm 0cm 0cm\"><div style=\"PADDING-RIGHT: 8px; PADDING-LEFT: 8px; FONT-SIZE: 12px;FONT-FAMILY:tahoma;COLOR:#000000; BACKGROUND: #efefef; PADDING-BOTTOM: 8px; PADDING-TOP: 8px\"><div><b>发件人：</b>&nbsp;<a href=\"mailto:{}\">{}</a></div><div><b>发送时间：</b>&nbsp;{}&nbsp;{}</div><div><b>收件人：</b>&nbsp;<a href=\"mailto:{}\">{}</a></div><div><b>主题：</b>&nbsp;{}</div></div></div><div><div>{quoted_html}</div></div></blockquote>\n</body></html>\n",
        lines
            .iter()
            .map(|l| format!("<div><span></span>{}</div>", if l.is_empty() { "<br>".to_owned() } else { esc(l) }))
            .collect::<String>(),
        signature.iter().map(|s| format!("<div>{}</div>", esc(s))).collect::<String>(),
        r.support,
        esc(&r.writer),
        local.format("%Y-%m-%d"),
        local.format("%H:%M"),
        a.address,
        a.address.split('@').next().unwrap(),
        esc(&r.subject),
    )
}

fn foxmail(r: &Relay, a: &Agent, plain: &str, html: &str) -> Vec<u8> {
    let gb = encoding_rs::GBK;
    let boundary = format!("----=_001_NextPart{}_=----", mid("2457"));
    let headers = [
        format!(
            "Date: {}",
            Utc::now()
                .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
                .to_rfc2822()
        ),
        format!("From: {} <{}>", word_in(a.display, gb, "GB2312"), a.address),
        format!("To: {}", r.token),
        format!(
            "Subject: {}",
            word_in(&format!("Re: {}", r.subject), gb, "GB2312")
        ),
        format!("References: {}", r.refs),
        "X-Priority: 3".to_owned(),
        "X-Has-Attach: no".to_owned(),
        "X-Mailer: Foxmail 7.2.25.375[cn]".to_owned(),
        "Mime-Version: 1.0".to_owned(),
        format!("Message-ID: <2026{}@example.test>", mid("1202")),
        format!("Content-Type: multipart/alternative;\r\n\tboundary=\"{boundary}\""),
    ];
    let body = format!(
        "This is a multi-part message in MIME format.{CRLF}{CRLF}{}",
        alternative(
            &boundary,
            &[
                "Content-Type: text/plain;",
                "\tcharset=\"GB2312\"",
                "Content-Transfer-Encoding: base64",
            ],
            &b64(&encode(&crlf(plain), gb)),
            &[
                "Content-Type: text/html;",
                "\tcharset=\"GB2312\"",
                "Content-Transfer-Encoding: quoted-printable",
            ],
            &qp(&encode(html, gb)),
        )
    );
    message(&headers, &body)
}

/// `foxmail-answer.eml`: Foxmail 7.2, Chinese UI, on li's Chinese relay; GB2312 (plain
/// base64, HTML quoted-printable); the address signature under a short `hr`, then the
/// `发件人：` block over the unindented relay; References but no In-Reply-To, as
/// Foxmail writes them.
fn foxmail_answer(r: &Relay, a: &Agent) -> Reply {
    let lines = [
        "张先生您好，",
        "",
        "打印机的网线松了，已经重新接好，现在可以正常打印。",
        "",
        "李娜",
        "ACME 技术支持",
    ];
    let signature = [a.address.as_str()];
    let plain = format!(
        "{}\n\n\n\n{}\n \n{}\n{}\n",
        lines.join("\n"),
        signature.join("\n"),
        foxmail_block(r, a),
        r.body()
    );
    let html = foxmail_html(r, a, &lines, &signature);
    Reply {
        raw: foxmail(r, a, &plain, &html),
        answer: format!("{}\n\n\n\n{}", lines.join("\n"), signature.join("\n")),
        signature: "ACME 技术支持",
    }
}

/// `foxmail-commands.eml`: no signature, only `#status resolved` above the block.
fn foxmail_commands(r: &Relay, a: &Agent) -> Reply {
    let plain = format!(
        "#status resolved\n\n\n\n \n{}\n{}\n",
        foxmail_block(r, a),
        r.body()
    );
    let html = foxmail_html(r, a, &["#status resolved"], &[]);
    Reply {
        raw: foxmail(r, a, &plain, &html),
        answer: String::new(),
        signature: "",
    }
}

/// QQ Mail's separator and header block, with its literal `&nbsp;`, in the UI's
/// language (Chinese for li, English for alice).
fn qqmail_block(r: &Relay, a: &Agent, chinese: bool) -> Vec<String> {
    if chinese {
        let d = r.local(8);
        let noon = if d.hour() < 12 { "上午" } else { "下午" };
        vec![
            "------------------&nbsp;原始邮件&nbsp;------------------".to_owned(),
            format!("发件人:&nbsp;\"{}\"<{}>;", r.writer, r.support),
            format!(
                "发送时间:&nbsp;{}({}) {noon}{}",
                d.format("%Y年%-m月%-d日"),
                weekday_zh(&d),
                d.format("%-I:%M")
            ),
            format!("收件人:&nbsp;\"{}\"<{}>;", a.display, a.address),
            String::new(),
            format!("主题:&nbsp;{}", r.subject),
        ]
    } else {
        vec![
            "------------------&nbsp;Original&nbsp;------------------".to_owned(),
            format!("From:&nbsp;\"{}\"<{}>;", r.writer, r.support),
            format!(
                "Date:&nbsp;{}",
                r.local(8).format("%a, %b %-d, %Y %I:%M %p")
            ),
            format!("To:&nbsp;\"{}\"<{}>;", a.display, a.address),
            String::new(),
            format!("Subject:&nbsp;{}", r.subject),
        ]
    }
}

fn qqmail(r: &Relay, a: &Agent, subject: &str, lines: &[&str], chinese: bool) -> Vec<u8> {
    let gb = encoding_rs::GB18030;
    let block = qqmail_block(r, a, chinese);
    let plain = format!(
        "{}\n\n\n\n{}\n\n\n\n{}\n",
        lines.join("\n"),
        block.join("\n"),
        r.body()
    );
    let block_html: String = block[1..]
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| {
            let (key, value) = b.split_once(':').unwrap();
            format!(
                "<div><b>{key}:</b>{}</div>",
                esc(value).replace("&amp;nbsp;", "&nbsp;")
            )
        })
        .collect();
    let html = format!(
        "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=GB18030\">{}<div><br></div><div><br></div><div style=\"font-size: 12px;font-family: Arial Narrow;padding:2px 0 2px 0;\">{}</div><div style=\"font-size: 12px;background:#efefef;padding:8px;\">{block_html}</div><div><br></div>{}</div>",
        lines
            .iter()
            .map(|l| format!("<div>{}</div>", if l.is_empty() { "<br>".to_owned() } else { esc(l) }))
            .collect::<String>(),
        block[0],
        html_lines(&r.lines, "<br>\n"),
    );
    let boundary = format!("----=_NextPart_{}", mid("674D1A40").to_uppercase());
    let headers = [
        "X-QQ-FEAT: 3C6Xb4m1rFTzhQ5VsE0R2j7qYkd9LgWu".to_owned(),
        "X-QQ-SSF: 00010000000000F000000000000000Z".to_owned(),
        "X-QQ-XMAILINFO: NkV0Z3Vj2r8sW4pQa1bC9dE6fH0iJ7kL3mN5oP2qR8sT1uV4wX6yZ9".to_owned(),
        "X-QQ-STYLE: ".to_owned(),
        "X-QQ-mid: xmsezb7-1t1764638400t2b9d41c7".to_owned(),
        format!(
            "From: {} <{}>",
            word_in(a.display, gb, "gb18030"),
            a.address
        ),
        format!("To: {}", r.token),
        format!("Subject: {subject}"),
        "Mime-Version: 1.0".to_owned(),
        format!("Content-Type: multipart/alternative;\r\n\tboundary=\"{boundary}\""),
        "Content-Transfer-Encoding: 8Bit".to_owned(),
        format!(
            "Date: {}",
            Utc::now()
                .with_timezone(&FixedOffset::east_opt(8 * 3600).unwrap())
                .to_rfc2822()
        ),
        "X-Priority: 3".to_owned(),
        format!(
            "Message-ID: <tencent_{}@qq.com>",
            mid("8C2E4A6B").to_uppercase()
        ),
        "X-QQ-MIME: TCMime 1.0 by Tencent".to_owned(),
        "X-Mailer: QQMail 2.x".to_owned(),
        "X-QQ-Mailer: QQMail 2.x".to_owned(),
        format!("References: {}", r.refs),
        format!("In-Reply-To: {}", r.id),
    ];
    let body = format!(
        "This is a multi-part message in MIME format.{CRLF}{CRLF}{}",
        alternative(
            &boundary,
            &[
                "Content-Type: text/plain;",
                "\tcharset=\"gb18030\"",
                "Content-Transfer-Encoding: base64",
            ],
            &b64(&encode(&crlf(&plain), gb)),
            &[
                "Content-Type: text/html;",
                "\tcharset=\"gb18030\"",
                "Content-Transfer-Encoding: base64",
            ],
            &b64(&encode(&crlf(&html), gb)),
        )
    );
    message(&headers, &body)
}

/// `qqmail-answer.eml`: QQ Mail web, Chinese UI, on li's Chinese relay; GB18030 base64;
/// `------------------&nbsp;原始邮件&nbsp;------------------` and `发件人:` over the relay.
fn qqmail_answer(r: &Relay, a: &Agent) -> Reply {
    let lines = [
        "您好，",
        "",
        "打印机驱动已经更新，问题已解决。如果还有问题请随时联系我们。",
        "",
        "李娜",
        "ACME 客服",
    ];
    let subject = word_in(
        &format!("回复：{}", r.subject),
        encoding_rs::GB18030,
        "gb18030",
    );
    Reply {
        raw: qqmail(r, a, &subject, &lines, true),
        answer: lines.join("\n"),
        signature: "ACME 客服",
    }
}

/// `qqmail-commands.eml`: QQ Mail web, English UI, on alice's English relay: only
/// `#status resolved` above `------------------&nbsp;Original&nbsp;------------------`.
fn qqmail_commands(r: &Relay, a: &Agent) -> Reply {
    let subject = format!("Re: {}", r.subject);
    Reply {
        raw: qqmail(r, a, &subject, &["#status resolved"], false),
        answer: String::new(),
        signature: "",
    }
}

/// `unknown-pipe-quote.eml`: a client that quotes with `| ` under an attribution no rule
/// knows; `commands` above the answer.
fn unknown_pipe_quote(r: &Relay, a: &Agent, commands: &str) -> Vec<u8> {
    let plain = format!(
        "{commands}Hello Jane, the printer is fixed.\n\nAlice\n\n=== {} ({}) ===\n{}\n",
        r.writer,
        r.date.format("%Y-%m-%d %H:%M"),
        r.lines
            .iter()
            .map(|l| if l.is_empty() {
                "|".to_owned()
            } else {
                format!("| {l}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    );
    let headers = [
        format!("From: {} <{}>", a.display, a.address),
        format!("To: {}", r.token),
        format!("Subject: Re: {}", r.subject),
        format!("Date: {}", Utc::now().to_rfc2822()),
        format!("Message-ID: <{}@example.test>", mid("unknown-pipe")),
        format!("In-Reply-To: {}", r.id),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: quoted-printable".to_owned(),
        "X-Mailer: (an unknown client)".to_owned(),
    ];
    message(&headers, &qp(plain.as_bytes()))
}

/// `unknown-flowed-quote.eml`: an HTML-only webmail that quotes the relay in a bordered
/// `div`, its line breaks lost.
fn unknown_flowed_quote(r: &Relay, a: &Agent) -> Vec<u8> {
    let flowed = r
        .lines
        .iter()
        .filter(|l| !l.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    let html = format!(
        "<html><body><p>好的，马上处理。</p><p>{}</p><div style=\"padding-left:8px;border-left:2px solid #ccc;color:#666\"><p>{} {} &lt;{}&gt;:</p><p>{}</p></div></body></html>",
        esc(a.display),
        r.local(8).format("%Y-%m-%d %H:%M"),
        esc(&r.writer),
        r.support,
        esc(&flowed),
    );
    let headers = [
        format!("From: {}", a.address),
        format!("To: {}", r.token),
        format!("Subject: {}", word(&format!("Re: {}", r.subject))),
        format!("Date: {}", Utc::now().to_rfc2822()),
        format!("Message-ID: <{}@example.test>", mid("unknown-flowed")),
        format!("In-Reply-To: {}", r.id),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/html; charset=utf-8".to_owned(),
        "Content-Transfer-Encoding: base64".to_owned(),
        "X-Mailer: (an unknown webmail)".to_owned(),
    ];
    message(&headers, &b64(crlf(&html).as_bytes()))
}

// ---------------------------------------------------------------- the checks

/// What of the relay (and of a client's quote of it) must never reach a customer: the
/// marker, the header block, the help footer, the attributions and header blocks that
/// clients write over the quote, and the customer's own request quoted in it.
const RELAY_TRACES: &[&str] = &[
    MARKER_EN,
    MARKER_ZH,
    "reply above this line",
    "请在此线以上回复",
    "Ticket:",
    "Status:",
    "Written by:",
    "Requester:",
    "Copied:",
    "Assignee:",
    "SLA due:",
    "工单：",
    "状态：",
    "本封来自：",
    "客户：",
    "抄送：",
    "处理人：",
    "SLA 期限：",
    "Reply to answer",
    "reply address is your own",
    "Lines at the top act",
    "#status pending|resolved|closed",
    "#note (internal",
    "直接回复即可答复",
    "回复地址是您个人专用的",
    "邮件开头的命令行",
    "#note（内部备注",
    "via ACME Support",
    "通过 ACME Support",
    "wrote:",
    "写道",
    "Original",
    "原始邮件",
    "&nbsp;",
    "From:",
    "Sent:",
    "发件人",
    "发送时间",
    "has been offline since this morning",
    "三楼的打印机",
    "------------------------------------",
];

/// What was queued but not yet sent has had its chance to arrive.
fn settle() {
    std::thread::sleep(Duration::from_secs(2));
}

/// Lines without trailing white space, LF line ends.
fn norm(text: &str) -> String {
    text.replace("\r\n", "\n")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `text` holds nothing of the relay and no `>` quote.
fn assert_nothing_of_the_relay(client: &str, text: &str) {
    for trace in RELAY_TRACES {
        assert!(
            !text.contains(trace),
            "{client}: {trace:?} reached the customer:\n{text}"
        );
    }
    assert!(
        text.lines().all(|l| !l.trim_start().starts_with('>')),
        "{client}: a quoted line reached the customer:\n{text}"
    );
}

/// Mails to `agent` that say a mail of theirs was not done (command result, refusal).
fn not_done(lab: &Lab, agent: &str) -> Vec<Parsed> {
    lab.ours_now(agent, |m| {
        m.subject.starts_with("Not done:")
            || m.subject.starts_with("未执行：")
            || m.subject.starts_with("Refused:")
    })
}

/// Opens one ticket per case, then each case's agent replies to the relay with the
/// client's reply. Returns the tickets, in the order of `cases`, with the reply sent.
fn reply_with_each_client(lab: &Lab, cases: &[Case]) -> Vec<(Opened, Reply)> {
    let opened = lab.open_tickets(cases);
    opened
        .into_iter()
        .zip(cases)
        .map(|(o, c)| {
            let agent = lab.agent(c.agent);
            let reply = (c.build)(&o.relay, agent);
            // Read as the workflow reads it: the same rule as the client's sample cuts it.
            let parsed =
                postdesk::mail::parse::message(&reply.raw, &postdesk::limits::Limits::default())
                    .unwrap();
            let text = parsed.reply_text.as_deref().unwrap_or(&parsed.text);
            let cut = cut_answer(split_commands(text, &postdesk::limits::Limits::default()).body);
            assert_eq!(
                (cut.rule.map(|r| r.as_str()), cut.text_below),
                (c.rule, false),
                "{}: the reply built here is cut as its sample is:\n{text}",
                c.client
            );
            smtp_send(&agent.address, &[&o.relay.token], &reply.raw);
            (o, reply)
        })
        .collect()
}

/// Issue 11 test 1: for each client, the agent replies to the relay with an answer above
/// the quote. The customer receives exactly one answer: what the agent wrote, with the
/// agent's own signature and ours once, and nothing of the relay.
#[test]
fn each_clients_answer_reaches_the_customer_without_the_relay() {
    let lab = Lab::new();
    let _daemon = lab.inst.start();
    let cases = vec![
        case("NeoMutt", neomutt_answer, "alice", Some("attribution")),
        case(
            "Thunderbird",
            thunderbird_answer,
            "alice",
            Some("attribution"),
        ),
        case("Apple Mail", apple_mail_answer, "alice", Some("quote")),
        case("Gmail", gmail_answer, "alice", Some("attribution")),
        case(
            "Outlook desktop",
            outlook_desktop_answer,
            "alice",
            Some("header-block"),
        ),
        case(
            "Outlook web",
            outlook_web_answer,
            "alice",
            Some("outlook-rule"),
        ),
        case("Foxmail", foxmail_answer, "li", Some("header-block")),
        case("QQ Mail", qqmail_answer, "li", Some("separator")),
    ];
    let sent = reply_with_each_client(&lab, &cases);
    for ((o, _), c) in sent.iter().zip(&cases) {
        lab.wait_ours(&c.customer, 2, c.client, |_| true);
        wait_until(Duration::from_secs(20), "the answer recorded", || {
            lab.events(o.ticket, "answer.queued").first().map(|_| ())
        });
    }
    settle();

    for ((o, reply), c) in sent.iter().zip(&cases) {
        let client = c.client;
        let agent = lab.agent(c.agent);
        let mails = lab.ours_now(&c.customer, |_| true);
        let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(
            mails.len(),
            2,
            "{client}: the acknowledgement and exactly one answer: {subjects:?}"
        );
        let answer = &mails[1];
        assert!(
            // A Chinese customer's ticket speaks Chinese to her (`回复：`).
            (answer.subject.starts_with("Re: ") || answer.subject.starts_with("回复："))
                && answer.subject.contains(&o.tag),
            "{client}: {}",
            answer.subject
        );
        let text = norm(&answer.text);
        assert!(
            text.contains(&norm(&reply.answer)),
            "{client}: the answer as the agent wrote it, signature included:\n--- want\n{}\n--- got\n{text}",
            reply.answer
        );
        assert!(
            text.contains(reply.signature),
            "{client}: the agent's signature: {text}"
        );
        let ours = format!("\n--\n{}\nACME Support\n", agent.display);
        assert_eq!(
            format!("{text}\n").matches(&ours).count(),
            1,
            "{client}: our signature once: {text}"
        );
        assert_nothing_of_the_relay(client, &answer.text);

        let t = lab.inst.ticket(o.ticket);
        let kinds: Vec<&str> = t.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "answer.queued").count(),
            1,
            "{client}: {kinds:?}"
        );
        assert!(!kinds.contains(&"answer.refused"), "{client}: {kinds:?}");
        assert!(
            !kinds.contains(&"message.unverified"),
            "{client}: {kinds:?}"
        );
        assert!(
            !kinds.contains(&"note"),
            "{client}: nothing below the quote was dropped: {kinds:?}"
        );
        assert_eq!(t.ticket.status, "pending", "{client}");
        assert_eq!(t.ticket.assignee.as_deref(), Some(agent.name), "{client}");
    }
    for agent in [&lab.alice, &lab.li] {
        let told = not_done(&lab, &agent.address);
        assert!(
            told.is_empty(),
            "no reply was refused: {:?}",
            told.iter().map(|m| &m.text).collect::<Vec<_>>()
        );
    }
}

/// Issue 11 test 2: for each client, the agent replies with only `#status resolved`
/// above the quote: the ticket is resolved, the customer gets the survey (the status
/// mail of a queue with surveys) and no answer.
#[test]
fn each_clients_command_only_reply_sends_no_answer() {
    let lab = Lab::new();
    let _daemon = lab.inst.start();
    let cases = vec![
        case("NeoMutt", neomutt_commands, "alice", Some("attribution")),
        case(
            "Thunderbird",
            thunderbird_commands,
            "alice",
            Some("attribution"),
        ),
        case(
            "Apple Mail (iPhone)",
            apple_mail_commands,
            "alice",
            Some("attribution"),
        ),
        case("Gmail", gmail_commands, "alice", Some("attribution")),
        case(
            "Outlook desktop (plain text)",
            outlook_desktop_commands,
            "alice",
            Some("separator"),
        ),
        case(
            "Outlook web",
            outlook_web_commands,
            "alice",
            Some("outlook-rule"),
        ),
        case("Foxmail", foxmail_commands, "li", Some("header-block")),
        case(
            "QQ Mail (English UI)",
            qqmail_commands,
            "alice",
            Some("separator"),
        ),
    ];
    let sent = reply_with_each_client(&lab, &cases);
    for ((o, _), c) in sent.iter().zip(&cases) {
        wait_until(
            Duration::from_secs(20),
            &format!("{}: resolved", c.client),
            || (lab.inst.ticket(o.ticket).ticket.status == "resolved").then_some(()),
        );
        lab.wait_ours(&c.customer, 2, c.client, |_| true);
    }
    settle();

    for ((o, reply), c) in sent.iter().zip(&cases) {
        let client = c.client;
        assert!(reply.answer.is_empty());
        let mails = lab.ours_now(&c.customer, |_| true);
        let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(
            mails.len(),
            2,
            "{client}: the acknowledgement and the survey, no answer: {subjects:?}"
        );
        let survey = &mails[1];
        assert!(
            survey.subject.contains(&o.tag)
                && (survey.subject.contains("(resolved)") || survey.subject.contains("（已解决）"))
                && !survey.subject.starts_with("Re:")
                && !survey.subject.starts_with("回复："),
            "{client}: the survey, not an answer: {}",
            survey.subject
        );
        assert!(
            !survey.text.contains("#status"),
            "{client}: {}",
            survey.text
        );
        assert_nothing_of_the_relay(client, &survey.text);

        let t = lab.inst.ticket(o.ticket);
        let kinds: Vec<&str> = t.events.iter().map(|e| e.kind.as_str()).collect();
        for absent in ["answer.queued", "answer.refused", "message.unverified"] {
            assert!(!kinds.contains(&absent), "{client}: {absent} in {kinds:?}");
        }
        assert_eq!(
            kinds.iter().filter(|k| **k == "survey.queued").count(),
            1,
            "{client}: {kinds:?}"
        );
        let status: Vec<_> = t
            .events
            .iter()
            .filter(|e| e.kind.as_str() == "status")
            .map(|e| (e.new.as_deref(), e.actor.as_str()))
            .collect();
        assert_eq!(
            status,
            vec![(Some("resolved"), c.agent)],
            "{client}: the agent's #status acted"
        );
    }
    for agent in [&lab.alice, &lab.li] {
        assert!(not_done(&lab, &agent.address).is_empty(), "nothing refused");
    }
}

/// Issue 11 test 6: an answer quoted in a way no rule knows still holds the relay marker:
/// it is not sent, the agent is told, `answer.refused` is recorded. Commands of the same
/// mail still act.
#[test]
fn an_answer_still_holding_the_relay_marker_is_refused_and_the_agent_told() {
    let lab = Lab::new();
    let _daemon = lab.inst.start();
    let cases = vec![
        case(
            "unknown, | quote",
            |r, a| Reply {
                raw: unknown_pipe_quote(r, a, ""),
                answer: String::new(),
                signature: "",
            },
            "alice",
            None,
        ),
        case(
            "unknown, HTML only, line breaks lost",
            |r, a| Reply {
                raw: unknown_flowed_quote(r, a),
                answer: String::new(),
                signature: "",
            },
            "li",
            None,
        ),
        case(
            "unknown, | quote, with #priority high",
            |r, a| Reply {
                raw: unknown_pipe_quote(r, a, "#priority high\n\n"),
                answer: String::new(),
                signature: "",
            },
            "alice",
            None,
        ),
    ];
    let sent = reply_with_each_client(&lab, &cases);
    for ((o, _), c) in sent.iter().zip(&cases) {
        let client = c.client;
        let agent = lab.agent(c.agent);
        let (_, detail) = wait_until(
            Duration::from_secs(20),
            &format!("{client}: answer.refused"),
            || {
                lab.inst
                    .ticket(o.ticket)
                    .events
                    .into_iter()
                    .find(|e| e.kind.as_str() == "answer.refused")
                    .map(|e| (e.actor, e.detail))
            },
        );
        let detail = detail.unwrap_or_default();
        let marker = if c.chinese { MARKER_ZH } else { MARKER_EN };
        assert!(
            detail.contains(&format!("the relay marker {marker:?}")),
            "{client}: what the event says: {detail}"
        );
        // The agent is told, in the agent's language, at the agent's own address.
        let (subject, not_sent) = if c.chinese {
            ("未执行：", "没有发送给客户")
        } else {
            ("Not done:", "was NOT sent to the customer")
        };
        let told = lab
            .wait_ours(&agent.address, 1, client, |m| {
                m.subject.starts_with(subject) && m.subject.contains(&o.tag)
            })
            .remove(0);
        assert!(told.text.contains(not_sent), "{client}: {}", told.text);
        assert!(
            told.text.contains("relay marker"),
            "{client}: the reason: {}",
            told.text
        );
        assert_eq!(
            told.to.first().map(|p| p.address.as_str()),
            Some(agent.address.as_str())
        );
    }
    settle();

    for ((o, _), c) in sent.iter().zip(&cases) {
        let client = c.client;
        let mails = lab.ours_now(&c.customer, |_| true);
        let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(
            mails.len(),
            1,
            "{client}: only the acknowledgement reached the customer: {subjects:?}"
        );
        let t = lab.inst.ticket(o.ticket);
        let kinds: Vec<&str> = t.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "answer.refused").count(),
            1,
            "{client}: {kinds:?}"
        );
        for absent in ["answer.queued", "first_response", "message.unverified"] {
            assert!(!kinds.contains(&absent), "{client}: {absent} in {kinds:?}");
        }
        assert_eq!(t.ticket.status, "new", "{client}: no answer, no pending");
        let want = if client.contains("#priority") {
            "high"
        } else {
            "normal"
        };
        assert_eq!(t.ticket.priority, want, "{client}: the commands still act");
    }
}

// ---------------------------------------------------------------- people copied

/// Mail from us in `who`'s mailbox containing `needle`.
fn answers<'a>(lab: &'a Lab, who: &str, needle: &'a str) -> Vec<Parsed> {
    lab.ours_now(who, |m| m.text.contains(needle))
}

/// Waits for exactly one answer containing `needle` in `who`'s mailbox; returns it.
fn one_answer(lab: &Lab, who: &str, needle: &str) -> Parsed {
    let mut got = lab.wait_ours(who, 1, needle, |m| m.text.contains(needle));
    assert_eq!(got.len(), 1, "exactly one mail with {needle:?} for {who}");
    got.remove(0)
}

fn addresses(people: &[postdesk::mail::parse::Person]) -> Vec<&str> {
    people.iter().map(|p| p.address.as_str()).collect()
}

/// The relay's line that starts with `label`, or "".
fn line<'a>(relay: &'a Parsed, label: &str) -> &'a str {
    relay
        .text
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or("")
}

impl Lab {
    /// `Jane Doe <customer>` writes a new request; waits for the ticket, her
    /// acknowledgement and the relay to alice. Returns (ticket id, tag, ack, relay).
    fn open_ticket(&self, customer: &str, subject: &str) -> (i64, String, Parsed, Parsed) {
        smtp_send(
            customer,
            &[self.support()],
            &simple_mail(
                &format!("Jane Doe <{customer}>"),
                self.support(),
                subject,
                "Hello,\nthe printer on floor 3 prints only blank pages.\n",
                &new_message_id(),
                "",
            ),
        );
        let t = wait_until(Duration::from_secs(20), "the ticket", || {
            self.inst
                .tickets()
                .into_iter()
                .find(|t| t.requester.as_deref() == Some(customer))
        });
        let ack = self
            .wait_ours(customer, 1, "acknowledgement", |_| true)
            .remove(0);
        let relay = self.relay(&t.tag, 1, |_| true);
        (t.id.get(), t.tag, ack, relay)
    }
}

/// Issue 11 test 3: a customer's reply-all that copies `Tom Boss`: Tom is a participant,
/// the relay lists him, the agent's plain reply reaches Jane and Tom; when Tom writes,
/// the relay names him as the writer and the answer reaches both. Then `#to` narrows one
/// answer to Jane, and `#cc -tom@…` takes Tom off the ticket.
#[test]
fn reply_all_with_a_new_cc_makes_a_participant_who_gets_the_answers() {
    let lab = Lab::new();
    let _daemon = lab.inst.start();
    let jane = unique("jane", "customer.test");
    let tom = unique("tom", "customer.test");
    let (ticket, tag, ack, _) = lab.open_ticket(&jane, "Printer prints blank pages");

    // Jane's reply-all to the acknowledgement, copying her boss: To support, Cc Tom, and
    // delivered to both, as her mail client sends it.
    let support = lab.support().to_owned();
    let raw = reply_mail_to(
        &format!("Jane Doe <{jane}>"),
        &format!("ACME Support <{support}>"),
        &ack,
        "Adding my boss, he needs the printer for the board meeting.\n\n> thank you for writing",
        &format!("Cc: Tom Boss <{tom}>\r\n"),
    );
    smtp_send(&jane, &[&support, &tom], &raw);

    wait_until(Duration::from_secs(20), "Tom becomes a participant", || {
        lab.inst
            .ticket(ticket)
            .participants
            .iter()
            .any(|p| p.address == tom && p.role == "cc")
            .then_some(())
    });
    assert_eq!(
        lab.events(ticket, "cc"),
        vec![(None, Some(tom.clone()))],
        "one cc event, for Tom only (not for the support address)"
    );
    let relay = lab.relay(&tag, 2, |_| true);
    assert!(
        relay.text.contains("board meeting"),
        "the second relay is Jane's mail: {}",
        relay.text
    );
    assert!(
        line(&relay, "Copied:").contains(&tom),
        "the relay lists Tom: {}",
        relay.text
    );
    assert!(line(&relay, "Requester:").contains(&jane), "{}", relay.text);
    assert!(
        !relay.text.contains("Written by:"),
        "Jane wrote it: {}",
        relay.text
    );
    assert_eq!(
        relay.from.as_ref().unwrap().name.as_deref(),
        Some("Jane Doe via ACME Support")
    );

    // Alice's plain Reply to that relay: the answer reaches Jane (To) and Tom (Cc).
    reply_by_mail(
        &lab.alice.address,
        &relay,
        "Hello Jane,\nthe toner cartridge was empty; a technician is on the way.\n\nAlice",
        "",
    );
    let to_jane = one_answer(&lab, &jane, "technician is on the way");
    let to_tom = one_answer(&lab, &tom, "technician is on the way");
    for m in [&to_jane, &to_tom] {
        assert_eq!(addresses(&m.to), vec![jane.as_str()], "{:?}", m.to);
        assert_eq!(addresses(&m.cc), vec![tom.as_str()], "{:?}", m.cc);
        assert!(m.subject.contains(&tag), "{}", m.subject);
        assert!(!m.text.contains("Requester:"), "{}", m.text);
    }
    assert_eq!(
        to_jane.message_id, to_tom.message_id,
        "one answer, both copies"
    );

    // Tom replies to the answer he got (a signed reference), only to support.
    let tom_raw = reply_mail_to(
        &format!("Tom Boss <{tom}>"),
        &format!("ACME Support <{support}>"),
        &to_tom,
        "Any news? The board meets at 3 pm.\n\n> the toner cartridge was empty",
        "",
    );
    smtp_send(&tom, &[&support], &tom_raw);
    let relay = lab.relay(&tag, 1, |m| m.text.contains("board meets at 3 pm"));
    let written = line(&relay, "Written by:");
    assert!(
        written.contains("Tom Boss") && written.contains(&tom),
        "the relay names Tom as the writer: {}",
        relay.text
    );
    assert!(
        line(&relay, "Requester:").contains(&jane),
        "Jane is still the requester: {}",
        relay.text
    );
    assert_eq!(
        relay.from.as_ref().unwrap().name.as_deref(),
        Some("Tom Boss via ACME Support")
    );
    assert_eq!(lab.inst.tickets().len(), 1, "Tom's mail joined the ticket");
    reply_by_mail(
        &lab.alice.address,
        &relay,
        "Tom, the printer works again.\n\nAlice",
        "",
    );
    for who in [&jane, &tom] {
        let m = one_answer(&lab, who, "the printer works again");
        assert_eq!(addresses(&m.to), vec![jane.as_str()], "{:?}", m.to);
        assert_eq!(addresses(&m.cc), vec![tom.as_str()], "{:?}", m.cc);
    }

    // `#to jane`: this answer to Jane only.
    reply_by_mail(
        &lab.alice.address,
        &relay,
        &format!("#to {jane}\n\nJane, the invoice for the cartridge follows.\n\nAlice"),
        "",
    );
    let m = one_answer(&lab, &jane, "invoice for the cartridge");
    assert_eq!(addresses(&m.to), vec![jane.as_str()]);
    assert!(m.cc.is_empty(), "{:?}", m.cc);

    // `#cc -tom`: Tom is copied no more, on this answer and after it.
    reply_by_mail(
        &lab.alice.address,
        &relay,
        &format!("#cc -{tom}\n\nJane, we will keep Tom out of the billing.\n\nAlice"),
        "",
    );
    let m = one_answer(&lab, &jane, "keep Tom out of the billing");
    assert!(m.cc.is_empty(), "{:?}", m.cc);
    wait_until(Duration::from_secs(20), "Tom removed", || {
        lab.inst
            .ticket(ticket)
            .participants
            .iter()
            .all(|p| p.address != tom)
            .then_some(())
    });
    assert_eq!(
        lab.events(ticket, "cc"),
        vec![(None, Some(tom.clone())), (Some(tom.clone()), None)],
        "added, then removed"
    );
    reply_by_mail(&lab.alice.address, &relay, "Jane, all done.\n\nAlice", "");
    let m = one_answer(&lab, &jane, "all done");
    assert!(m.cc.is_empty(), "{:?}", m.cc);

    // Jane's next mail: the relay no longer lists Tom.
    smtp_send(
        &jane,
        &[&support],
        &reply_mail_to(&jane, &support, &m, "Thank you!", ""),
    );
    let relay = lab.relay(&tag, 1, |m| m.text.contains("Thank you!"));
    assert!(!relay.text.contains("Copied:"), "{}", relay.text);

    settle();
    for needle in ["invoice for the cartridge", "keep Tom out", "all done"] {
        assert!(
            answers(&lab, &tom, needle).is_empty(),
            "Tom got no {needle:?}"
        );
    }
    assert_eq!(
        lab.ours_now(&tom, |_| true).len(),
        2,
        "Tom got exactly the two answers sent while he was copied"
    );
    assert_eq!(
        lab.ours_now(&jane, |_| true).len(),
        6,
        "Jane got the acknowledgement and the five answers, each once"
    );
}
