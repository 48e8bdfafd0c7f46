//! Decides whether a message was written by a person or by a machine (invariant 3).
//!
//! In: a [`Parsed`] message and our own identity (hostname, support addresses). Out: a
//! [`Class`]. Pure.
//! - Nothing automatic is ever answered automatically: only `Class::Human` may get an
//!   acknowledgement, a status mail or a survey.
//! - Order (first match wins; strongest evidence first): our own loop header or one of our
//!   Message-IDs as the message's own id → `OwnLoop`; a delivery status report →
//!   `Bounce`; RFC 3834 `Auto-Submitted` and the vendor auto-reply headers → `AutoReply`
//!   (before the null-sender rule, because vacation responders send from `<>` too); a
//!   null or mailer-daemon sender → `Bounce`; `Precedence: bulk/junk/list`, `List-Id`,
//!   `List-Unsubscribe` → `Bulk`; an out-of-office subject (weaker, only checked late)
//!   → `AutoReply`; bounce-like subject and text → `Bounce`.

use crate::mail::parse::{Parsed, Report};

/// What kind of author a message has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Human,
    AutoReply(&'static str),
    Bounce(Bounce),
    Bulk(&'static str),
    OwnLoop(&'static str),
}

/// A bounce with what could be read from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bounce {
    pub reason: &'static str,
    pub report: Option<Report>,
}

impl Bounce {
    /// A 5.x.x status, or a failed action without a status: the address is undeliverable.
    pub fn is_hard(&self) -> bool {
        match &self.report {
            Some(r) => match &r.status {
                Some(s) => s.trim_start().starts_with('5'),
                None => r.action.as_deref() == Some("failed"),
            },
            None => false,
        }
    }
}

impl Class {
    pub fn is_automatic(&self) -> bool {
        !matches!(self, Class::Human)
    }
    /// Short name stored with the message (`human`, `auto-reply`, `bounce`, `bulk`, `own`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Class::Human => "human",
            Class::AutoReply(_) => "auto-reply",
            Class::Bounce(_) => "bounce",
            Class::Bulk(_) => "bulk",
            Class::OwnLoop(_) => "own",
        }
    }
    /// Which rule decided, for the event log.
    pub fn reason(&self) -> &'static str {
        match self {
            Class::Human => "no automatic marker",
            Class::AutoReply(r) | Class::Bulk(r) | Class::OwnLoop(r) => r,
            Class::Bounce(b) => b.reason,
        }
    }
}

/// Who we are, for recognising our own mail.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Right-hand side of our Message-IDs.
    pub hostname: String,
    /// Our support addresses, lower-cased.
    pub addresses: Vec<String>,
}

pub fn classify(msg: &Parsed, us: &Identity) -> Class {
    let h = &msg.auto;
    if h.loop_header.is_some() {
        return Class::OwnLoop("our loop header");
    }
    if msg
        .message_id
        .as_str()
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(&us.hostname))
    {
        return Class::OwnLoop("our Message-ID domain");
    }
    if let Some(from) = msg.from.as_ref() {
        if us.addresses.contains(&from.address) {
            return Class::OwnLoop("sent from our support address");
        }
    }
    if let Some(r) = &msg.report {
        if r.report_type == "delivery-status" || r.report_type == "global-delivery-status" {
            return Class::Bounce(Bounce {
                reason: "delivery status notification",
                report: Some(r.clone()),
            });
        }
        if r.report_type == "disposition-notification" {
            return Class::AutoReply("read receipt");
        }
    }
    if let Some(v) = &h.auto_submitted {
        if !v.trim().to_ascii_lowercase().starts_with("no") {
            return Class::AutoReply("Auto-Submitted header");
        }
    }
    if h.x_autoreply.is_some() || h.x_autorespond.is_some() {
        return Class::AutoReply("X-Autoreply/X-Autorespond header");
    }
    if let Some(v) = &h.x_auto_response_suppress {
        let v = v.to_ascii_lowercase();
        if v.contains("all") || v.contains("oof") || v.contains("autoreply") {
            return Class::AutoReply("X-Auto-Response-Suppress header");
        }
    }
    // RFC 3834 responders send from the null sender too: their headers decide first.
    if h.return_path.as_deref() == Some("") {
        return Class::Bounce(Bounce {
            reason: "null sender",
            report: msg.report.clone(),
        });
    }
    if let Some(from) = msg.from.as_ref() {
        let local = from.address.split('@').next().unwrap_or("");
        if local == "mailer-daemon" || local == "postmaster" {
            return Class::Bounce(Bounce {
                reason: "sender is mailer-daemon or postmaster",
                report: msg.report.clone(),
            });
        }
    } else if h.return_path.is_none() {
        // No From and no envelope sender: nobody to answer.
        return Class::AutoReply("no sender");
    }
    if let Some(p) = &h.precedence {
        let p = p.trim().to_ascii_lowercase();
        if p == "auto_reply" {
            return Class::AutoReply("Precedence: auto_reply");
        }
        if matches!(p.as_str(), "bulk" | "junk" | "list") {
            return Class::Bulk("Precedence: bulk/junk/list");
        }
    }
    if h.list_id.is_some() || h.list_unsubscribe.is_some() {
        return Class::Bulk("mailing list headers");
    }
    if is_out_of_office_subject(&msg.subject) {
        return Class::AutoReply("out-of-office subject");
    }
    if looks_like_bounce_body(msg) {
        return Class::Bounce(Bounce {
            reason: "non-standard bounce text",
            report: None,
        });
    }
    Class::Human
}

/// `Automatic reply: …`, `Out of Office: …`, `自动回复: …` and friends. Weak: checked only
/// after every header rule.
pub fn is_out_of_office_subject(subject: &str) -> bool {
    let s = subject.trim().to_lowercase();
    const PREFIXES: [&str; 10] = [
        "automatic reply",
        "auto reply",
        "autoreply",
        "auto-reply",
        "out of office",
        "out of the office",
        "abwesenheitsnotiz",
        "自动回复",
        "自動回覆",
        "不在办公室",
    ];
    PREFIXES.iter().any(|p| s.starts_with(p))
}

/// The common non-standard bounce bodies (qmail, Exchange, old Sendmail) that come
/// without a `multipart/report`.
fn looks_like_bounce_body(msg: &Parsed) -> bool {
    let subject = msg.subject.to_ascii_lowercase();
    let subject_hit = [
        "undeliverable",
        "undelivered mail",
        "delivery status notification",
        "delivery failure",
        "failure notice",
        "returned mail",
        "mail delivery failed",
    ]
    .iter()
    .any(|s| subject.contains(s));
    if !subject_hit {
        return false;
    }
    let head: String = msg
        .text
        .chars()
        .take(4000)
        .collect::<String>()
        .to_lowercase();
    [
        "this is the mail system at host",
        "could not be delivered",
        "delivery has failed",
        "i'm afraid i wasn't able to deliver",
        "message could not be delivered",
        "the following address(es) failed",
        "permanent error",
        "user unknown",
    ]
    .iter()
    .any(|s| head.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse;

    fn us() -> Identity {
        Identity {
            hostname: "helpdesk.example.test".to_owned(),
            addresses: vec!["support@example.test".to_owned()],
        }
    }

    fn class_of(headers: &str, body: &str) -> Class {
        let raw = format!("{headers}\r\n\r\n{body}");
        classify(
            &parse::message(raw.as_bytes(), &crate::limits::Limits::default()).unwrap(),
            &us(),
        )
    }

    #[test]
    fn table() {
        let base =
            "From: a@customer.test\r\nTo: support@example.test\r\nMessage-ID: <1@customer.test>";
        let cases: &[(&str, &str, &str)] = &[
            ("Subject: help", "human", "plain"),
            (
                "Subject: help\r\nAuto-Submitted: no",
                "human",
                "auto-submitted no",
            ),
            (
                "Subject: x\r\nAuto-Submitted: auto-replied",
                "auto-reply",
                "rfc 3834",
            ),
            (
                "Subject: x\r\nX-Autoreply: yes",
                "auto-reply",
                "x-autoreply",
            ),
            (
                "Subject: x\r\nX-Autorespond: yes",
                "auto-reply",
                "x-autorespond",
            ),
            (
                "Subject: x\r\nX-Auto-Response-Suppress: All",
                "auto-reply",
                "exchange",
            ),
            ("Subject: x\r\nPrecedence: bulk", "bulk", "precedence"),
            ("Subject: x\r\nList-Id: <l.example>", "bulk", "list"),
            (
                "Subject: Automatic reply: help",
                "auto-reply",
                "outlook ooo",
            ),
            ("Subject: 自动回复: 打印机", "auto-reply", "chinese ooo"),
            ("Subject: x\r\nReturn-Path: <>", "bounce", "null sender"),
            (
                "Subject: Out of office\r\nReturn-Path: <>\r\nAuto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk",
                "auto-reply",
                "sieve vacation from the null sender",
            ),
            (
                "Subject: x\r\nX-Postdesk-Loop: helpdesk.example.test",
                "own",
                "loop header",
            ),
        ];
        for (extra, want, what) in cases {
            let c = class_of(&format!("{base}\r\n{extra}"), "hi");
            assert_eq!(c.as_str(), *want, "{what}: {c:?}");
        }
        let c = class_of(
            "From: MAILER-DAEMON@mx.test\r\nSubject: Undelivered Mail",
            "x",
        );
        assert_eq!(c.as_str(), "bounce");
        let c = class_of(
            "From: a@customer.test\r\nMessage-ID: <3.4.abcd@helpdesk.example.test>\r\nSubject: x",
            "x",
        );
        assert_eq!(c.as_str(), "own");
        let c = class_of(
            "From: postoffice@customer.test\r\nSubject: Mail delivery failed: returning message to sender",
            "This message was created automatically by mail delivery software.\nA message that you sent could not be delivered to one or more of its recipients.",
        );
        assert_eq!(c.as_str(), "bounce");
    }

    #[test]
    fn hard_and_soft_bounces() {
        let hard = Bounce {
            reason: "",
            report: Some(Report {
                status: Some("5.1.1".into()),
                ..Report::default()
            }),
        };
        let soft = Bounce {
            reason: "",
            report: Some(Report {
                status: Some("4.2.2".into()),
                ..Report::default()
            }),
        };
        assert!(hard.is_hard());
        assert!(!soft.is_hard());
        assert!(!Bounce::default().is_hard());
    }
}
