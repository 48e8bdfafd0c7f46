//! The recognisers: each reads one kind of sign from a [`Parsed`] message and returns the
//! [`Evidence`] it found; `mail::classify::verdict` adds them up. Pure; the text
//! recognisers read the top of the text only (`top_text`), in one Aho-Corasick pass.
//! "automatic" evidence adds to every kind and, alone, makes the kind named after it.
//!
//! | recogniser | kind | weight |
//! |---|---|---|
//! | `loop-header`, `our-message-id`, `our-address` | own | 100 |
//! | `dsn-part` (a `message/delivery-status` anywhere in the top-level parts) | bounce | 20 |
//! | `report-delivery-status` (`multipart/report` of that type, no part read) | bounce | 12 |
//! | `arf-part` (`message/feedback-report`), `x-arf` | complaint | 20 |
//! | `mdn-part` (`message/disposition-notification`) | receipt | 20 |
//! | `auto-submitted` (not `no`) | automatic (else auto-reply; `auto-generated`: else bulk) | 20 |
//! | `x-autoreply`, `precedence-auto-reply` / `vendor-auto-header` | auto-reply | 20 / 15 |
//! | `auto-response-suppress` (All, OOF, AutoReply) | auto-reply | 12 |
//! | `auto-submitted-no` | against all | −5 |
//! | `precedence-bulk` (`bulk`, `junk`) | automatic (else bulk) | 12 |
//! | `list-headers` (`List-Id`, `List-Unsubscribe`, `Precedence: list`; once) | bulk | 12 |
//! | `x-failed-recipients`, `exchange-ndr-header` | bounce | 15 |
//! | `null-sender` (`Return-Path: <>`) | automatic (else bounce) | 10 |
//! | `no-sender` (no From, no Return-Path) | auto-reply | 10 |
//! | `sender-mailer-daemon` (the MTA's own name) / `sender-postmaster` (people use it too) / `sender-bounce-address` | bounce | 10 / 6 / 6 |
//! | `sender-system-name` (`Mail Delivery System`, …; not beside a sender-… above) | bounce | 4 |
//! | `sender-noreply` | auto-reply 4 and bulk 6 | |
//! | `sender-list-manager` | auto-reply | 4 |
//! | `sender-challenge-service` / `sender-complaint-service` | challenge / complaint | 6 |
//! | `forwarded` (a `Fwd:`-style subject prefix; the subject recognisers then do not run) | against all | −6 |
//! | `ooo-subject` / `bounce-subject` / `receipt-subject` / `challenge-subject` (one more when a colon follows) | auto-reply / bounce / receipt / challenge | 7 / 6 / 6 / 5 |
//! | `ooo-text` / `autoresponder-text` / `list-manager-text` (+3, +3, +2 per further phrase, two at most) | auto-reply | 5 / 5 / 8 |
//! | `ooo-text-heading` (the text opens like a responder's subject) | auto-reply | 7 |
//! | `bounce-text` / `bounce-error-text` | bounce | 7 / 2 |
//! | `receipt-text` / `challenge-text` / `complaint-text` (+3 per further phrase) | receipt / challenge / complaint | 4 / 7 / 8 |
//! | `notification-text` ("do not reply to this email", …) | automatic (else bulk) | 5 |
//! | `returned-message` (a `message/rfc822` or its headers attached) | bounce | 3 |
//! | `answers-a-message` (automatic evidence and an `In-Reply-To`) | auto-reply | 2 |
//! | `unquoted-reply` (a challenge answering without quoting) | challenge | 3 |
//!
//! When only words (an out-of-office or autoresponder phrase, no header) speak for an
//! auto-reply, what a person does counts too, for or against it: `question` (a `?` ending
//! a sentence, −4), `new-message` (no `In-Reply-To` nor `References`, −3), `attachment`
//! (−5), `unquoted-reply` (a reply without a quote, an attribution or a separator, +5).

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

use super::phrases::*;
use super::{Evidence, Identity, Kind};
use crate::mail::parse::Parsed;

/// Every recogniser's evidence for `msg`, whose text read as [`top_text`] is `top`.
pub fn all(msg: &Parsed, us: &Identity, top: &str) -> Vec<Evidence> {
    let mut out = Vec::new();
    own(msg, us, &mut out);
    reports(msg, &mut out);
    headers(msg, &mut out);
    sender(msg, &mut out);
    subject(&msg.subject, &mut out);
    text(top, &mut out);
    // A robot's challenge answers our mail without quoting it.
    if out.iter().any(|e| e.recogniser == "challenge-text")
        && !msg.in_reply_to.is_empty()
        && !quotes(&msg.text)
    {
        out.push(Evidence::new("unquoted-reply", Kind::Challenge, 3, ""));
    }
    // Automatic and in reply to a message: a responder's, not a notification.
    if !msg.in_reply_to.is_empty() && out.iter().any(|e| e.kind == Kind::Automatic) {
        out.push(Evidence::new("answers-a-message", Kind::AutoReply, 2, ""));
    }
    // Only words say "out of office" here, no header does: weigh what says a person.
    let by_words =
        |e: &Evidence| e.recogniser.starts_with("ooo-") || e.recogniser == "autoresponder-text";
    let by_header = |e: &Evidence| {
        e.weight >= 10 && e.kind != Kind::Human && !by_words(e) && !e.recogniser.ends_with("-text")
    };
    if out.iter().any(by_words) && !out.iter().any(by_header) {
        person(msg, top, &mut out);
    }
    out
}

fn own(msg: &Parsed, us: &Identity, out: &mut Vec<Evidence>) {
    if let Some(v) = &msg.auto.loop_header {
        out.push(Evidence::new("loop-header", Kind::Own, 100, v));
    }
    if msg
        .message_id
        .as_str()
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&us.hostname))
    {
        out.push(Evidence::new(
            "our-message-id",
            Kind::Own,
            100,
            msg.message_id.as_str(),
        ));
    }
    if let Some(from) = &msg.from {
        if us.addresses.contains(&from.address) {
            out.push(Evidence::new("our-address", Kind::Own, 100, &from.address));
        }
    }
}

fn reports(msg: &Parsed, out: &mut Vec<Evidence>) {
    let Some(r) = &msg.report else {
        return;
    };
    match r.report_type.as_str() {
        "delivery-status" | "global-delivery-status" => {
            let read = !r.recipients.is_empty() || r.status.is_some() || r.action.is_some();
            if read {
                out.push(Evidence::new(
                    "dsn-part",
                    Kind::Bounce,
                    20,
                    "message/delivery-status",
                ));
            } else {
                out.push(Evidence::new(
                    "report-delivery-status",
                    Kind::Bounce,
                    12,
                    "multipart/report; report-type=delivery-status",
                ));
            }
        }
        "feedback-report" => out.push(Evidence::new(
            "arf-part",
            Kind::Complaint,
            20,
            r.feedback_type
                .as_deref()
                .unwrap_or("message/feedback-report"),
        )),
        "disposition-notification" => out.push(Evidence::new(
            "mdn-part",
            Kind::Receipt,
            20,
            r.disposition
                .as_deref()
                .unwrap_or("message/disposition-notification"),
        )),
        _ => {}
    }
    if r.returned {
        out.push(Evidence::new(
            "returned-message",
            Kind::Bounce,
            3,
            r.original_message_id.as_ref().map_or("", |id| id.as_str()),
        ));
    }
}

/// Header names of vendors' auto-reply marks (besides RFC 3834's and `X-Autoreply`).
const VENDOR_AUTO_HEADERS: &[&str] = &[
    "x-autogenerated",
    "x-auto-reply",
    "x-mail-autoreply",
    "x-autoresponder",
    "x-vacation",
    "x-autoreply-from",
    "x-fc-machinegenerated",
];

fn headers(msg: &Parsed, out: &mut Vec<Evidence>) {
    let h = &msg.auto;
    if let Some(v) = &h.auto_submitted {
        let value = v.trim().to_ascii_lowercase();
        if value.starts_with("no") {
            out.push(Evidence::new("auto-submitted-no", Kind::Human, -5, v));
        } else if value.starts_with("auto-generated") {
            // RFC 3834: made by a machine, not in reply to anything (a notification).
            out.push(Evidence::automatic("auto-submitted", Kind::Bulk, 20, v));
        } else {
            // `auto-replied`: vacation responders, but MTAs mark bounces so too.
            out.push(Evidence::automatic(
                "auto-submitted",
                Kind::AutoReply,
                20,
                v,
            ));
        }
    }
    if let Some(v) = h.x_autoreply.as_ref().or(h.x_autorespond.as_ref()) {
        out.push(Evidence::new("x-autoreply", Kind::AutoReply, 20, v));
    }
    if let Some(name) = VENDOR_AUTO_HEADERS
        .iter()
        .find(|name| msg.header(name).is_some())
    {
        out.push(Evidence::new(
            "vendor-auto-header",
            Kind::AutoReply,
            15,
            name,
        ));
    }
    if let Some(v) = &h.x_auto_response_suppress {
        let lower = v.to_ascii_lowercase();
        if lower.contains("all") || lower.contains("oof") || lower.contains("autoreply") {
            out.push(Evidence::new(
                "auto-response-suppress",
                Kind::AutoReply,
                12,
                v,
            ));
        }
    }
    if let Some(p) = &h.precedence {
        match p.trim().to_ascii_lowercase().as_str() {
            "auto_reply" | "auto-reply" => out.push(Evidence::new(
                "precedence-auto-reply",
                Kind::AutoReply,
                20,
                p,
            )),
            // Vacation responders and list managers send `bulk`/`junk` too.
            "bulk" | "junk" => out.push(Evidence::automatic("precedence-bulk", Kind::Bulk, 12, p)),
            "list" => out.push(Evidence::new("list-headers", Kind::Bulk, 12, p)),
            _ => {}
        }
    }
    // `List-Id`, `List-Unsubscribe`, `Precedence: list`: one sign, counted once.
    if let Some(v) = h.list_id.as_ref().or(h.list_unsubscribe.as_ref()) {
        if !out.iter().any(|e| e.recogniser == "list-headers") {
            out.push(Evidence::new("list-headers", Kind::Bulk, 12, v));
        }
    }
    if let Some(v) = msg.header("X-Failed-Recipients") {
        out.push(Evidence::new("x-failed-recipients", Kind::Bounce, 15, v));
    }
    if let Some(v) = msg.header("X-ARF") {
        out.push(Evidence::new("x-arf", Kind::Complaint, 20, v));
    }
    if let Some(v) = msg.header("X-MS-Exchange-Message-Is-Ndr") {
        out.push(Evidence::new("exchange-ndr-header", Kind::Bounce, 15, v));
    }
}

/// Display names mail systems send bounces under.
const SYSTEM_NAMES: &[&str] = &[
    "mail delivery system",
    "mail delivery subsystem",
    "mail delivery service",
    "mail delivery",
    "mailer-daemon",
    "mailer daemon",
    "postmaster",
    "delivery status notification",
    "mail administrator",
    "mail system",
    "microsoft outlook",
    "系统退信",
    "系统管理员",
    "邮件系统",
    "メール配信システム",
];

fn sender(msg: &Parsed, out: &mut Vec<Evidence>) {
    let h = &msg.auto;
    if h.return_path.as_deref() == Some("") {
        out.push(Evidence::automatic(
            "null-sender",
            Kind::Bounce,
            10,
            "Return-Path: <>",
        ));
    }
    let Some(from) = &msg.from else {
        if h.return_path.is_none() {
            out.push(Evidence::new("no-sender", Kind::AutoReply, 10, ""));
        }
        return;
    };
    let address = from.address.as_str();
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    let local = local.to_ascii_lowercase();
    let is_mailer = |l: &str| {
        matches!(
            l,
            "mailer-daemon" | "mailer_daemon" | "mailerdaemon" | "mail-daemon" | "maildaemon"
        )
    };
    if is_mailer(&local) {
        out.push(Evidence::new(
            "sender-mailer-daemon",
            Kind::Bounce,
            10,
            address,
        ));
    } else if BOUNCE_SENDERS.contains(&local.as_str()) || local.starts_with("microsoftexchange") {
        out.push(Evidence::new("sender-postmaster", Kind::Bounce, 6, address));
    } else if BOUNCE_SENDER_PREFIXES.iter().any(|p| {
        local
            .strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', '-', '_', '.', '=']))
    }) {
        out.push(Evidence::new(
            "sender-bounce-address",
            Kind::Bounce,
            6,
            address,
        ));
    }
    let by_address = out.iter().any(|e| e.recogniser.starts_with("sender-"));
    if let Some(name) = from.name.as_ref().filter(|_| !by_address) {
        let name = name.trim().to_lowercase();
        if SYSTEM_NAMES.iter().any(|n| name == *n) {
            out.push(Evidence::new("sender-system-name", Kind::Bounce, 4, &name));
        }
    }
    if NOREPLY_SENDERS.contains(&local.as_str())
        || local.starts_with("noreply")
        || local.starts_with("no-reply")
        || local.starts_with("donotreply")
    {
        out.push(Evidence::new("sender-noreply", Kind::AutoReply, 4, address));
        out.push(Evidence::new("sender-noreply", Kind::Bulk, 6, address));
    }
    if LIST_MANAGER_SENDERS.iter().any(|m| {
        if let Some(end) = m.strip_prefix('-') {
            local.ends_with(&format!("-{end}"))
        } else if m.ends_with('-') {
            local.starts_with(m)
        } else {
            local == *m
        }
    }) {
        out.push(Evidence::new(
            "sender-list-manager",
            Kind::AutoReply,
            4,
            address,
        ));
    }
    let domain = domain.to_ascii_lowercase();
    if let Some(word) = CHALLENGE_SENDER_WORDS.iter().find(|w| domain.contains(*w)) {
        out.push(Evidence::new(
            "sender-challenge-service",
            Kind::Challenge,
            6,
            word,
        ));
    }
    if let Some(word) = COMPLAINT_SENDER_WORDS.iter().find(|w| domain.contains(*w)) {
        out.push(Evidence::new(
            "sender-complaint-service",
            Kind::Complaint,
            6,
            word,
        ));
    }
}

/// The subject without leading white space, lower case; `None` behind a forward prefix
/// (then a [`Kind::Human`] evidence is added).
fn subject(subject: &str, out: &mut Vec<Evidence>) {
    let s = subject.trim_start().to_lowercase();
    // `[부재중] …`, `【休假通知】…`: a phrase in brackets at the start counts as there.
    let s = match s.strip_prefix(['[', '【', '(', '（']) {
        Some(inner) => inner.trim_start().to_owned(),
        None => s,
    };
    if let Some(prefix) = forward_prefix(&s) {
        out.push(Evidence::new("forwarded", Kind::Human, -6, prefix));
        return;
    }
    let tables: [(&[&str], &'static str, Kind, i32); 4] = [
        (OOO_SUBJECTS, "ooo-subject", Kind::AutoReply, 7),
        (BOUNCE_SUBJECTS, "bounce-subject", Kind::Bounce, 6),
        (RECEIPT_SUBJECTS, "receipt-subject", Kind::Receipt, 6),
        (CHALLENGE_SUBJECTS, "challenge-subject", Kind::Challenge, 5),
    ];
    for (table, name, kind, weight) in tables {
        if let Some(p) = table.iter().find(|p| starts_delimited(&s, p)) {
            // The responders' own form is the phrase and a colon (`Automatic reply: …`):
            // one point more than other delimiters, still short of the threshold alone.
            let colon = s[p.len()..].trim_start().starts_with([':', '：']) || p.ends_with(':');
            out.push(Evidence::new(name, kind, weight + i32::from(colon), p));
        }
    }
}

/// `Fwd:`, `WG:`, `转发：` … at the start of a lower-cased subject.
fn forward_prefix(s: &str) -> Option<&'static str> {
    FORWARD_PREFIXES.iter().copied().find(|p| {
        s.strip_prefix(p)
            .is_some_and(|rest| rest.trim_start().starts_with([':', '：']))
    })
}

/// `s` starts with `phrase`, and then ends or goes on with a delimiter (`:`, `(`, `[`, a
/// dash), white space between allowed; a phrase that ends in `:` needs nothing after.
pub fn starts_delimited(s: &str, phrase: &str) -> bool {
    let Some(rest) = s.strip_prefix(phrase) else {
        return false;
    };
    if phrase.ends_with([':', '：']) {
        return true;
    }
    let rest = rest.trim_start();
    rest.is_empty()
        || rest.starts_with([
            ':', '：', '(', '（', '[', '【', ']', '】', ')', '）', '-', '–', '—', '|', '/', ',',
            '，',
        ])
}

/// The top of the text, lower case, white space runs made one space, as the text
/// recognisers read it: quoted lines (`>`) left out, and nothing from the first
/// forward or original-message separator on (a person's forward of a bounce or an
/// auto-reply is their own words above it).
pub fn top_text(text: &str) -> String {
    let mut out = String::new();
    for line in crate::mail::parse::head(text, super::TEXT_WINDOW).lines() {
        let line = line.trim();
        if line.starts_with('>') {
            continue;
        }
        let lower = line.to_lowercase();
        if is_forward_separator(&lower) {
            break;
        }
        if !lower.is_empty() {
            out.push_str(&lower.split_whitespace().collect::<Vec<_>>().join(" "));
            out.push('\n');
        }
    }
    out
}

/// A line a mail client puts above a forwarded or quoted message.
fn is_forward_separator(lower: &str) -> bool {
    let dashed = lower.starts_with("---") || lower.starts_with("___") || lower.starts_with("===");
    (dashed
        && [
            "forwarded",
            "original message",
            "weitergeleitet",
            "ursprüngliche nachricht",
            "message transféré",
            "message d'origine",
            "mensaje original",
            "messaggio originale",
            "mensagem original",
            "doorgestuurd",
            "oorspronkelijk bericht",
            "原始邮件",
            "原始郵件",
            "转发",
            "轉寄",
            "元のメッセージ",
            "転送",
            "пересылаемое",
            "исходное сообщение",
        ]
        .iter()
        .any(|w| lower.contains(w)))
        || lower.starts_with("begin forwarded message")
}

/// The text tables: (table, recogniser, kind, weight for the first phrase, weight for
/// each further distinct phrase of the table, at most [`MAX_FURTHER_PHRASES`] more).
const TEXT_TABLES: [(&[&str], &str, Kind, i32, i32); 9] = [
    (OOO_TEXT, "ooo-text", Kind::AutoReply, 5, 3),
    (
        AUTORESPONDER_TEXT,
        "autoresponder-text",
        Kind::AutoReply,
        5,
        3,
    ),
    (
        LIST_MANAGER_TEXT,
        "list-manager-text",
        Kind::AutoReply,
        8,
        2,
    ),
    (BOUNCE_TEXT, "bounce-text", Kind::Bounce, 7, 0),
    (BOUNCE_ERROR_TEXT, "bounce-error-text", Kind::Bounce, 2, 0),
    (RECEIPT_TEXT, "receipt-text", Kind::Receipt, 4, 3),
    (CHALLENGE_TEXT, "challenge-text", Kind::Challenge, 7, 3),
    (
        NOTIFICATION_TEXT,
        "notification-text",
        Kind::Automatic,
        5,
        0,
    ),
    (COMPLAINT_TEXT, "complaint-text", Kind::Complaint, 8, 3),
];

/// Further phrases of one table that count.
const MAX_FURTHER_PHRASES: usize = 2;

/// Every phrase of [`TEXT_TABLES`] in one automaton (one pass over the text, whatever
/// the number of phrases), with the table each pattern belongs to.
static TEXT_MATCHER: LazyLock<(AhoCorasick, Vec<(usize, &'static str)>)> = LazyLock::new(|| {
    let owners: Vec<(usize, &'static str)> = TEXT_TABLES
        .iter()
        .enumerate()
        .flat_map(|(t, (table, ..))| table.iter().map(move |p| (t, *p)))
        .collect();
    let ac = AhoCorasick::new(owners.iter().map(|(_, p)| p)).expect("the phrase tables build");
    (ac, owners)
});

fn text(top: &str, out: &mut Vec<Evidence>) {
    let (ac, owners) = &*TEXT_MATCHER;
    let mut hits: [Vec<&str>; TEXT_TABLES.len()] = Default::default();
    for m in ac.find_overlapping_iter(top) {
        let (table, phrase) = owners[m.pattern().as_usize()];
        let seen = &mut hits[table];
        // A phrase inside one already seen ("abwesend" in "ich bin abwesend") adds nothing.
        if seen.len() <= MAX_FURTHER_PHRASES
            && !seen
                .iter()
                .any(|s| s.contains(phrase) || phrase.contains(s))
        {
            seen.push(phrase);
        }
    }
    for ((_, name, kind, first, further), seen) in TEXT_TABLES.iter().zip(hits) {
        if !seen.is_empty() {
            let weight = first + further * (seen.len() as i32 - 1);
            let e = Evidence::new(name, *kind, weight, &seen.join(" | "));
            out.push(match kind {
                Kind::Automatic => Evidence {
                    fallback: Some(Kind::Bulk),
                    ..e
                },
                _ => e,
            });
        }
    }
    // A reply whose text opens as a responder's subject does: `Respuesta automática: …`.
    if let Some(line) = top.lines().next() {
        if let Some(p) = OOO_SUBJECTS
            .iter()
            .find(|p| p.chars().count() > 4 && starts_delimited(line, p))
        {
            out.push(Evidence::new("ooo-text-heading", Kind::AutoReply, 7, p));
        }
    }
}

/// Signs that a person wrote to us, against an out-of-office reading of their words: a
/// question in their text, and a new message (no `In-Reply-To`, no `References`) where
/// a responder always answers a message.
fn person(msg: &Parsed, top: &str, out: &mut Vec<Evidence>) {
    if asks(top) {
        out.push(Evidence::new("question", Kind::AutoReply, -4, "?"));
    }
    if msg.in_reply_to.is_empty() && msg.references.is_empty() {
        out.push(Evidence::new("new-message", Kind::AutoReply, -3, ""));
    } else if !quotes(&msg.text) {
        // Responders answer without quoting; a person's reply mostly quotes.
        out.push(Evidence::new("unquoted-reply", Kind::AutoReply, 5, ""));
    }
    if !msg.attachments.is_empty() {
        out.push(Evidence::new("attachment", Kind::AutoReply, -5, ""));
    }
}

/// A question mark that ends a sentence in the top of `top` (not one inside a link).
fn asks(top: &str) -> bool {
    let head: Vec<char> = top.chars().take(2000).collect();
    head.iter().enumerate().any(|(i, c)| {
        *c == '？'
            || (*c == '?'
                && head
                    .get(i + 1)
                    .is_none_or(|n| n.is_whitespace() || matches!(n, '"' | ')' | '»' | '」')))
    })
}

/// `text` holds a quote: `>` lines, or a forward or original-message separator, or a
/// client's attribution line.
fn quotes(text: &str) -> bool {
    crate::mail::parse::head(text, super::TEXT_WINDOW * 4)
        .lines()
        .map(|l| l.trim().to_lowercase())
        .any(|l| l.starts_with('>') || is_forward_separator(&l) || is_attribution(&l))
}

/// `on … wrote:`, `am … schrieb …:`, `le … a écrit :`, `在 … 写道：` (lower case): a
/// client's line above a quote.
fn is_attribution(l: &str) -> bool {
    const ENDS: &[&str] = &[
        "wrote:",
        "schrieb:",
        "a écrit :",
        "a écrit:",
        "escribió:",
        "ha scritto:",
        "escreveu:",
        "schreef:",
        "napisał:",
        "yazdı:",
        "пишет:",
        "написал:",
        "写道：",
        "写道:",
        "寫道：",
        "寫道:",
        "のメッセージ:",
        "님이 작성:",
    ];
    l.len() < 300 && ENDS.iter().any(|e| l.ends_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(subject_line: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        subject(subject_line, &mut out);
        out.into_iter().map(|e| e.recogniser).collect()
    }

    fn fired_on(raw: &str) -> Vec<&'static str> {
        let parsed = crate::mail::parse::message(raw.as_bytes(), &crate::limits::Limits::default())
            .expect("parses");
        let us = Identity {
            hostname: "postdesk.example.test".to_owned(),
            addresses: vec!["support@example.test".to_owned()],
        };
        all(&parsed, &us, &top_text(&parsed.text))
            .into_iter()
            .map(|e| e.recogniser)
            .collect()
    }

    /// Each header, report and sender recogniser fires on its sign, and only there.
    #[test]
    fn each_recogniser_fires_on_its_sign() {
        let plain = "From: Ann <ann@customer.test>\r\nTo: support@example.test\r\nSubject: Printer\r\nMessage-ID: <1@customer.test>\r\n";
        assert!(fired_on(&format!("{plain}\r\nIt is broken.\r\n")).is_empty());
        let report = |kind: &str, part: &str, body: &str| {
            format!("From: x@mx.customer.test\r\nSubject: r\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type={kind}; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nReport.\r\n--B\r\nContent-Type: {part}\r\n\r\n{body}\r\n--B--\r\n")
        };
        for (raw, want) in [
            (format!("{plain}X-Postdesk-Loop: postdesk.example.test\r\n\r\nx"), "loop-header"),
            (plain.replace("1@customer.test", "7.1.ab@postdesk.example.test") + "\r\nx", "our-message-id"),
            (plain.replace("ann@customer.test", "support@example.test") + "\r\nx", "our-address"),
            (report("delivery-status", "message/delivery-status", "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@b.test\r\nAction: failed\r\nStatus: 5.1.1"), "dsn-part"),
            (report("feedback-report", "message/feedback-report", "Feedback-Type: abuse\r\nVersion: 1"), "arf-part"),
            (report("disposition-notification", "message/disposition-notification", "Final-Recipient: rfc822; a@b.test\r\nDisposition: manual-action/MDN-sent-manually; displayed"), "mdn-part"),
            (format!("{plain}Auto-Submitted: auto-replied\r\n\r\nx"), "auto-submitted"),
            (format!("{plain}Auto-Submitted: no\r\n\r\nx"), "auto-submitted-no"),
            (format!("{plain}X-Autoreply: yes\r\n\r\nx"), "x-autoreply"),
            (format!("{plain}X-Autogenerated: Reply\r\n\r\nx"), "vendor-auto-header"),
            (format!("{plain}X-Auto-Response-Suppress: OOF\r\n\r\nx"), "auto-response-suppress"),
            (format!("{plain}Precedence: auto_reply\r\n\r\nx"), "precedence-auto-reply"),
            (format!("{plain}Precedence: junk\r\n\r\nx"), "precedence-bulk"),
            (format!("{plain}List-Id: <users.lists.test>\r\n\r\nx"), "list-headers"),
            (format!("{plain}X-Failed-Recipients: a@b.test\r\n\r\nx"), "x-failed-recipients"),
            (format!("{plain}X-MS-Exchange-Message-Is-Ndr: \r\n\r\nx"), "exchange-ndr-header"),
            (format!("{plain}X-ARF: yes\r\n\r\nx"), "x-arf"),
            (format!("Return-Path: <>\r\n{plain}\r\nx"), "null-sender"),
            ("Subject: x\r\nMessage-ID: <2@x.test>\r\n\r\nx".to_owned(), "no-sender"),
            (plain.replace("Ann <ann@customer.test>", "MAILER-DAEMON@mx.test") + "\r\nx", "sender-mailer-daemon"),
            (plain.replace("Ann <ann@customer.test>", "postmaster@mx.test") + "\r\nx", "sender-postmaster"),
            (plain.replace("ann@customer.test", "bounces+123@mail.test") + "\r\nx", "sender-bounce-address"),
            (plain.replace("Ann <ann@customer.test>", "Mail Delivery System <mx@mx.test>") + "\r\nx", "sender-system-name"),
            (plain.replace("ann@customer.test", "no-reply@shop.test") + "\r\nx", "sender-noreply"),
            (plain.replace("ann@customer.test", "users-request@lists.test") + "\r\nx", "sender-list-manager"),
            (plain.replace("ann@customer.test", "guard@boxbe.test") + "\r\nx", "sender-challenge-service"),
            (plain.replace("ann@customer.test", "report@reports.spamcop.test") + "\r\nx", "sender-complaint-service"),
            (format!("{plain}MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n--B\r\nContent-Type: message/rfc822\r\n\r\nFrom: a@b.test\r\nMessage-ID: <9@b.test>\r\nSubject: s\r\n\r\nx\r\n--B--\r\n"), "returned-message"),
        ] {
            let got = fired_on(&raw);
            assert!(got.contains(&want), "{want}: fired {got:?}");
        }
    }

    /// What a person does counts only when words alone speak for an auto-reply.
    #[test]
    fn a_persons_signs_weigh_against_words_alone() {
        let ooo = "From: Ann <ann@customer.test>\r\nTo: support@example.test\r\nSubject: Invoice\r\nMessage-ID: <1@customer.test>\r\n";
        let new_question = fired_on(&format!(
            "{ooo}\r\nI am out of the office until Monday. Can you resend the invoice?\r\n"
        ));
        assert!(
            new_question.contains(&"question") && new_question.contains(&"new-message"),
            "{new_question:?}"
        );
        let link = fired_on(&format!("{ooo}In-Reply-To: <7.1.ab@postdesk.example.test>\r\n\r\nI am out of the office until Monday: https://x.test/?a=1\r\n"));
        assert!(
            !link.contains(&"question") && link.contains(&"unquoted-reply"),
            "{link:?}"
        );
        let quoted = fired_on(&format!("{ooo}In-Reply-To: <7.1.ab@postdesk.example.test>\r\n\r\nI am out of the office until Monday.\r\n\r\nOn Mon, ACME wrote:\r\n> hello\r\n"));
        assert!(!quoted.contains(&"unquoted-reply"), "{quoted:?}");
        let headed = fired_on(&format!(
            "{ooo}Auto-Submitted: auto-replied\r\n\r\nI am out of the office until Monday?\r\n"
        ));
        assert!(
            !headed.contains(&"question"),
            "a header decides, the text's signs do not count: {headed:?}"
        );
    }

    #[test]
    fn subjects_count_at_the_start_and_before_a_delimiter() {
        for (s, want) in [
            ("Automatic reply: [ACME #4] printer", vec!["ooo-subject"]),
            ("Abwesenheitsnotiz: Ihre Anfrage", vec!["ooo-subject"]),
            ("自動回覆：您的問題", vec!["ooo-subject"]),
            ("Автоответ: Re: счёт", vec!["ooo-subject"]),
            ("Out of Office", vec!["ooo-subject"]),
            ("Automatic reply settings do not work in Outlook", vec![]),
            ("Out of office next week?", vec![]),
            ("Re: Out of office", vec![]),
            ("Undeliverable: [ACME #7] hi", vec!["bounce-subject"]),
            ("Undeliverable goods in my order", vec![]),
            ("Delivery failure of my parcel", vec![]),
            ("Read: [ACME #7] hi", vec!["receipt-subject"]),
            (
                "Fwd: Undelivered Mail Returned to Sender",
                vec!["forwarded"],
            ),
            ("WG: Abwesenheitsnotiz: Ihre Anfrage", vec!["forwarded"]),
            ("转发：系统退信", vec!["forwarded"]),
        ] {
            assert_eq!(fired(s), want, "{s}");
        }
    }

    #[test]
    fn the_text_is_read_above_a_forward_and_without_quotes() {
        let text = "Why did this fail?\n\n---------- Forwarded message ---------\nFrom: Mail Delivery System\nThis is the mail system at host mx.test.\n";
        let top = top_text(text);
        assert_eq!(top, "why did this fail?\n");
        let quoted = "Thanks!\n> I am out of the office until Monday.\n";
        assert_eq!(top_text(quoted), "thanks!\n");
    }

    #[test]
    fn each_text_table_fires_once() {
        let mut out = Vec::new();
        text(
            "i am out of the office until monday.\ni am on vacation.\nthis is an automatic reply.\n",
            &mut out,
        );
        let names: Vec<_> = out.iter().map(|e| e.recogniser).collect();
        assert_eq!(names, ["ooo-text"]);
        assert_eq!(out[0].weight, 5 + 3 + 3, "three distinct phrases");
    }
}
