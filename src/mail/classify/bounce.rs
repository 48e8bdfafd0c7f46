//! What a bounce says: the failed recipients, the status, the diagnostic, and whether the
//! failure is permanent, transient or no failure at all (issue 13).
//!
//! In: a message classified as a bounce. Out: a [`Report`] (the RFC 3464 one when the
//! message has it, completed from the text otherwise) and a [`BounceKind`].
//! - Recipients: the report's `Final-Recipient`s; else `X-Failed-Recipients`; else the
//!   addresses the text names where bounce templates put them (a `<addr>:` line as qmail
//!   writes it, the lines under "the following address(es) failed" and its siblings, a
//!   line with an SMTP error), never our own addresses, the bounce's sender, nor mail
//!   system addresses. At most `parse::MAX_REPORT_RECIPIENTS`.
//! - Kind: the DSN `Action` (`failed` permanent unless its status is 4.x.x, `delayed`
//!   transient, `delivered`/`relayed`/`expanded` success) and `Status` class; else the
//!   enhanced status code or SMTP reply code in the text (5 permanent, 4 transient);
//!   else a delay phrase (transient) or a success phrase; else permanent (a text bounce
//!   that says nothing more failed for good, though only a bounce proven to return our
//!   own mail marks an address, `workflow::record_bounce`).

use serde::Serialize;

use super::phrases::{DELAY_TEXT, SUCCESS_TEXT};
use super::Identity;
use crate::mail::parse::{header_in_text, Parsed, Report, MAX_REPORT_RECIPIENTS};
use crate::model::MessageId;

/// Whether a bounce says the mail will never arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BounceKind {
    /// 5.x.x: the address does not take mail.
    #[default]
    Permanent,
    /// 4.x.x, "delayed": the server still tries; nothing is marked.
    Transient,
    /// A delivery or relay notice: nothing failed.
    Success,
}

impl BounceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Permanent => "permanent",
            BounceKind::Transient => "transient",
            BounceKind::Success => "success",
        }
    }
}

/// Lines of text read for recipients and codes.
const MAX_LINES: usize = 400;

/// The report of the bounce `msg` and its kind (see the module doc); `top` is its text as
/// the recognisers read it (`recognise::top_text`).
pub fn details(msg: &Parsed, us: &Identity, top: &str) -> (Report, BounceKind) {
    let mut report = msg.report.clone().unwrap_or_default();
    if report.report_type.is_empty() {
        report.report_type = "text".to_owned();
    }
    if report.recipients.is_empty() {
        report.recipients = failed_recipients(msg, us, top);
    }
    if report.status.is_none() {
        report.status = enhanced_status(top);
    }
    if report.diagnostic.is_none() {
        report.diagnostic = diagnostic_line(top);
    }
    if report.original_message_id.is_none() {
        // A text bounce quotes the returned message's headers in its text (qmail, Exim,
        // Domino): its first `Message-ID:` line is theirs (the bounce's own is a header).
        report.original_message_id = header_in_text(&msg.text, "message-id")
            .map(|v| MessageId::new(v.trim().trim_matches(['<', '>'])))
            .filter(|id| !id.as_str().is_empty())
            .or_else(|| msg.in_reply_to.first().cloned());
    }
    let kind = kind_of(&report, &msg.subject, top);
    (report, kind)
}

fn kind_of(report: &Report, subject: &str, top: &str) -> BounceKind {
    let class_of = |code: &str| match code.trim_start().as_bytes().first() {
        Some(b'5') => Some(BounceKind::Permanent),
        Some(b'4') => Some(BounceKind::Transient),
        Some(b'2') => Some(BounceKind::Success),
        _ => None,
    };
    match report.action.as_deref().map(str::trim) {
        Some("delayed") => return BounceKind::Transient,
        Some("delivered" | "relayed" | "expanded") => return BounceKind::Success,
        Some("failed") => {
            return match report.status.as_deref().and_then(class_of) {
                Some(BounceKind::Transient) => BounceKind::Transient,
                _ => BounceKind::Permanent,
            }
        }
        _ => {}
    }
    let subject = subject.to_lowercase();
    let delayed = DELAY_TEXT
        .iter()
        .any(|p| subject.contains(p) || top.contains(p));
    if let Some(kind) = report.status.as_deref().and_then(class_of) {
        // A text bounce's first code may be a 4.x.x line of a transcript above the
        // final 5.x.x one: a permanent code anywhere decides.
        if kind == BounceKind::Transient && smtp_codes(top).any(|c| c.starts_with('5')) {
            return BounceKind::Permanent;
        }
        return kind;
    }
    if let Some(code) = smtp_codes(top).next() {
        return class_of(code).unwrap_or_default();
    }
    if delayed {
        return BounceKind::Transient;
    }
    if SUCCESS_TEXT
        .iter()
        .any(|p| subject.contains(p) || top.contains(p))
    {
        return BounceKind::Success;
    }
    BounceKind::Permanent
}

/// The first enhanced status code (`5.1.1`) in `top`.
fn enhanced_status(top: &str) -> Option<String> {
    words(top)
        .find(|w| is_enhanced_status(w))
        .map(str::to_owned)
}

fn is_enhanced_status(w: &str) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && (1..=3).contains(&parts[1].len())
        && (1..=3).contains(&parts[2].len())
        && parts[1..]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// SMTP reply codes (`550`, `452`) and enhanced codes in `top`, in order.
fn smtp_codes(top: &str) -> impl Iterator<Item = &str> {
    words(top).filter(|w| {
        is_enhanced_status(w)
            || (w.len() == 3
                && matches!(w.as_bytes()[0], b'4' | b'5')
                && w.bytes().all(|b| b.is_ascii_digit())
                && w.as_bytes()[1] <= b'5')
    })
}

fn words(top: &str) -> impl Iterator<Item = &str> {
    top.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '(' | ')' | '[' | ']' | ',' | ';' | '#' | '"' | '<' | '>' | '='
            )
    })
    .map(|w| w.trim_end_matches(['.', ':', '-']))
    .filter(|w| !w.is_empty())
}

/// The first line of `top` with an SMTP code or a failure word, for the diagnostic.
fn diagnostic_line(top: &str) -> Option<String> {
    top.lines()
        .take(MAX_LINES)
        .find(|line| smtp_codes(line).next().is_some())
        .map(|line| line.chars().take(300).collect())
}

/// Headings under which bounce templates list the failed addresses.
const RECIPIENT_HEADINGS: &[&str] = &[
    "following address",
    "following recipient",
    "following addresses",
    "following recipients",
    "these recipients",
    "could not be delivered to",
    "couldn't be delivered to",
    "wasn't delivered to",
    "was not delivered to",
    "unable to deliver your message to",
    "delivery to the following",
    "failed recipient",
    "original recipient",
    "final recipient",
    "recipient address",
    "recipients:",
    "recipient:",
    "to:",
    "收件人",
    "宛先",
    "empfänger",
    "destinataire",
    "destinatario",
    "받는 사람",
    "recipient status",
];

/// Failure words that make an address on the same line a failed recipient.
const FAILURE_WORDS: &[&str] = &[
    "550",
    "551",
    "552",
    "553",
    "554",
    "5.1.",
    "5.2.",
    "5.4.",
    "5.7.",
    "4.2.",
    "4.4.",
    "user unknown",
    "unknown user",
    "no such",
    "does not exist",
    "not found",
    "rejected",
    "invalid",
    "unavailable",
    "failed",
    "undeliverable",
    "not listed",
    "quota",
    "full",
    "不存在",
    "失败",
    "存在しません",
    "could not be delivered",
    "couldn't be delivered",
    "not delivered",
    "could not be reached",
    "unable to deliver",
];

/// Lines where a bounce's copy of the returned message starts: addresses below it are
/// that message's (its `To:` may be a forwarding address, not the one that failed).
const COPY_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "original headers of the message",
    "enclosed are the original headers",
    "original message headers",
    "unsent message follows",
    "message headers follow",
    "returned message",
];

fn failed_recipients(msg: &Parsed, us: &Identity, top: &str) -> Vec<String> {
    let sender = msg.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
    let skip = |a: &str| {
        a == sender
            || us.addresses.iter().any(|u| u == a)
            || a.rsplit_once('@').is_some_and(|(local, domain)| {
                domain.eq_ignore_ascii_case(&us.hostname)
                    || super::phrases::BOUNCE_SENDERS.contains(&local)
                    || local.starts_with("mailer-daemon")
            })
    };
    let mut out: Vec<String> = Vec::new();
    let push = |a: String, out: &mut Vec<String>| {
        if !skip(&a) && !out.contains(&a) && out.len() < MAX_REPORT_RECIPIENTS {
            out.push(a);
        }
    };
    if let Some(v) = msg.header("X-Failed-Recipients") {
        for a in addresses(&v.to_lowercase()) {
            push(a, &mut out);
        }
        if !out.is_empty() {
            return out;
        }
    }
    let lines: Vec<&str> = top.lines().take(MAX_LINES).collect();
    let mut under_heading = 0usize;
    for line in &lines {
        if !out.is_empty() && COPY_MARKERS.iter().any(|m| line.contains(m)) {
            break;
        }
        // The returned message's ids (`Message-ID: <hex@host>`) look like addresses.
        if [
            "message-id:",
            "in-reply-to:",
            "references:",
            "x-message-id:",
        ]
        .iter()
        .any(|h| line.trim_start().starts_with(h))
        {
            continue;
        }
        let found = addresses(line);
        let heading = RECIPIENT_HEADINGS.iter().any(|h| line.contains(h));
        let qmail = line.starts_with('<') && line.trim_end().ends_with(">:");
        let failure = FAILURE_WORDS.iter().any(|w| line.contains(w));
        if !found.is_empty() && (qmail || failure || heading || under_heading > 0) {
            for a in found {
                push(a, &mut out);
            }
        }
        under_heading = if heading {
            4
        } else {
            under_heading.saturating_sub(1)
        };
    }
    out
}

/// The e-mail addresses in `line` (lower case), as plain tokens or in `<…>`.
fn addresses(line: &str) -> Vec<String> {
    line.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | '"' | '\'' | '：' | '、'
            )
    })
    .map(|t| t.trim_matches(|c: char| matches!(c, '.' | ':' | '=')))
    .filter_map(|t| {
        let t = ["mailto:", "rfc822;", "smtp:"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        let (local, domain) = t.split_once('@')?;
        let ok = !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-_+=~!#$%&*/?^{|}".contains(c));
        ok.then(|| t.to_ascii_lowercase())
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_a_line() {
        assert_eq!(
            addresses("<jane@customer.test>: host mx said: 550 5.1.1 user unknown"),
            ["jane@customer.test"]
        );
        assert_eq!(
            addresses("final-recipient: rfc822;bob@x.test"),
            ["bob@x.test"]
        );
        assert!(addresses("no address here @ all").is_empty());
    }

    #[test]
    fn codes_and_kinds() {
        assert_eq!(
            enhanced_status("550 5.1.1 <a@b.test>: user unknown"),
            Some("5.1.1".into())
        );
        assert_eq!(enhanced_status("version 1.2.3 of the tool"), None);
        let r = Report::default();
        assert_eq!(
            kind_of(&r, "Warning: message delayed", "will retry for 4 days"),
            BounceKind::Transient
        );
        assert_eq!(
            kind_of(&r, "Undeliverable", "550 user unknown"),
            BounceKind::Permanent
        );
        assert_eq!(
            kind_of(&r, "Delivery Status Notification (Success)", "delivered"),
            BounceKind::Success
        );
        let delayed = Report {
            action: Some("delayed".into()),
            ..Report::default()
        };
        assert_eq!(kind_of(&delayed, "", ""), BounceKind::Transient);
        let failed_4 = Report {
            action: Some("failed".into()),
            status: Some("4.4.7".into()),
            ..Report::default()
        };
        assert_eq!(kind_of(&failed_4, "", ""), BounceKind::Transient);
    }
}
