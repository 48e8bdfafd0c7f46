//! Decides whether a message was written by a person or by a machine (invariant 3).
//!
//! In: a [`Parsed`] message and our own identity (hostname, support addresses). Out: a
//! [`Verdict`]: the [`Class`] and the [`Evidence`] it rests on. Pure, and bounded: the
//! text recognisers read the top [`TEXT_WINDOW`] bytes of the text.
//! - Nothing automatic is ever answered automatically: only `Class::Human` may get an
//!   acknowledgement, a status mail or a survey.
//! - **A score, not a single rule** (issue 13). Each recogniser that fires adds
//!   [`Evidence`]: a weight for one kind of automatic mail (bounce, auto-reply,
//!   complaint, receipt, challenge, bulk, our own mail), or for [`Kind::Automatic`]
//!   (`Auto-Submitted`, the null sender, `Precedence: bulk`: automatic of a kind the
//!   other evidence names, which adds to every kind and alone makes its `fallback`). The
//!   kind with the highest total wins when that total reaches [`THRESHOLD`]; below it
//!   the mail is human. Machine parts (an RFC 3464 delivery status, an ARF feedback
//!   report, an MDN), RFC 3834 headers and our own loop marks weigh the threshold or more
//!   alone; a subject, a body phrase, the sender's local part (`postmaster`, `noreply`)
//!   weigh less, so that it takes two of them. Ties go to the earlier kind of
//!   [`Kind::ALL`]. The weights are in [`recognise`]'s table.
//! - **Humans are never silenced by one weak sign.** Subject phrases count only at the
//!   start of the subject and followed by a delimiter (`Automatic reply: …`, not
//!   `Automatic reply settings do not work`), never behind a forward prefix (`Fwd:`);
//!   the text is read above any forward separator and outside `>` quotes, and at most
//!   three phrases of a table count; when only words speak for an out-of-office reply, a
//!   question, a new message and an attachment count against it. A forwarded bounce, a
//!   question about an out-of-office setting, a person writing from `noreply@` or
//!   `postmaster@` stay human. `Auto-Submitted: no` and a forward prefix count against
//!   every automatic kind.
//! - For a bounce, [`bounce::details`] reads the failed recipients, the status and the
//!   diagnostic from the report or, for the vendors' text bounces, from the text and
//!   `X-Failed-Recipients`, and whether it is permanent, transient (delayed) or a success
//!   notice.
//! - The recognisers and their tables: [`recognise`] (one function per recogniser, each
//!   with its unit tests), [`phrases`] (the phrase tables, per language and vendor).

pub mod bounce;
pub mod phrases;
pub mod recognise;

use serde::Serialize;

use crate::mail::parse::{Parsed, Report};

pub use bounce::BounceKind;

/// A kind's total at which the mail is that kind of automatic mail.
pub const THRESHOLD: i32 = 10;

/// Bytes of the text the phrase recognisers read (from the top).
pub const TEXT_WINDOW: usize = 8 * 1024;

/// What kind of author a message has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    Human,
    AutoReply(&'static str),
    Bounce(Box<Bounce>),
    Bulk(&'static str),
    OwnLoop(&'static str),
    /// A spam complaint (ARF, RFC 5965).
    Complaint(&'static str),
    /// A read receipt (MDN, RFC 8098).
    Receipt(&'static str),
    /// A challenge-response robot asking the sender to prove they are a person.
    Challenge(&'static str),
}

/// What a recogniser points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Own,
    Complaint,
    Receipt,
    Bounce,
    Challenge,
    AutoReply,
    Bulk,
    /// Automatic, of whatever kind the other evidence says (`Auto-Submitted`, the null
    /// sender, `Precedence: bulk`): it adds to every kind; alone it makes its
    /// `fallback`.
    Automatic,
    /// Against every automatic kind (a negative weight).
    Human,
}

impl Kind {
    /// The automatic kinds, in the order that breaks ties.
    pub const ALL: [Kind; 7] = [
        Kind::Own,
        Kind::Complaint,
        Kind::Receipt,
        Kind::Bounce,
        Kind::Challenge,
        Kind::AutoReply,
        Kind::Bulk,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Own => "own",
            Kind::Complaint => "complaint",
            Kind::Receipt => "receipt",
            Kind::Bounce => "bounce",
            Kind::Challenge => "challenge",
            Kind::AutoReply => "auto-reply",
            Kind::Bulk => "bulk",
            Kind::Automatic => "automatic",
            Kind::Human => "human",
        }
    }
}

/// One recogniser that fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// The recogniser's name (`dsn-part`, `ooo-subject`, `sender-mailer-daemon`, …).
    pub recogniser: &'static str,
    pub kind: Kind,
    pub weight: i32,
    /// What it saw (a phrase, a header value), at most [`MAX_SEEN_CHARS`] characters.
    pub seen: String,
    /// For [`Kind::Automatic`]: the kind it makes when nothing more specific is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Kind>,
}

/// Characters of what a recogniser saw kept in its [`Evidence`].
pub const MAX_SEEN_CHARS: usize = 80;

impl Evidence {
    pub fn new(recogniser: &'static str, kind: Kind, weight: i32, seen: &str) -> Self {
        let seen = crate::mail::parse::one_line(seen);
        Evidence {
            recogniser,
            kind,
            weight,
            seen: seen.chars().take(MAX_SEEN_CHARS).collect(),
            fallback: None,
        }
    }

    /// Evidence of automatic mail of any kind; `fallback` when no other kind is known.
    pub fn automatic(recogniser: &'static str, fallback: Kind, weight: i32, seen: &str) -> Self {
        Evidence {
            fallback: Some(fallback),
            ..Evidence::new(recogniser, Kind::Automatic, weight, seen)
        }
    }
}

/// The class of a message and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub class: Class,
    /// Every recogniser that fired, strongest first.
    pub evidence: Vec<Evidence>,
}

impl Verdict {
    /// `recogniser(kind weight), …` for the event log and `rules test`.
    pub fn explain(&self) -> String {
        if self.evidence.is_empty() {
            return "no recogniser fired".to_owned();
        }
        self.evidence
            .iter()
            .map(|e| format!("{} ({} {:+})", e.recogniser, e.kind.as_str(), e.weight))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A bounce with what could be read from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bounce {
    pub reason: &'static str,
    /// The machine-readable report, or what was read from a text bounce (recipients,
    /// status, diagnostic, the returned message's Message-ID).
    pub report: Option<Report>,
    pub kind: BounceKind,
}

impl Bounce {
    /// A permanent failure (5.x.x, or a failed action without a status): the address is
    /// undeliverable.
    pub fn is_hard(&self) -> bool {
        self.kind == BounceKind::Permanent
    }
}

impl Class {
    pub fn is_automatic(&self) -> bool {
        !matches!(self, Class::Human)
    }
    /// Short name stored with the message (`human`, `auto-reply`, `bounce`, `bulk`, `own`,
    /// `complaint`, `receipt`, `challenge`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Class::Human => "human",
            Class::AutoReply(_) => "auto-reply",
            Class::Bounce(_) => "bounce",
            Class::Bulk(_) => "bulk",
            Class::OwnLoop(_) => "own",
            Class::Complaint(_) => "complaint",
            Class::Receipt(_) => "receipt",
            Class::Challenge(_) => "challenge",
        }
    }
    /// Which recogniser decided, for the event log.
    pub fn reason(&self) -> &'static str {
        match self {
            Class::Human => "no automatic marker",
            Class::AutoReply(r)
            | Class::Bulk(r)
            | Class::OwnLoop(r)
            | Class::Complaint(r)
            | Class::Receipt(r)
            | Class::Challenge(r) => r,
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

/// The class of `msg` (see the module doc); [`verdict`] says why.
pub fn classify(msg: &Parsed, us: &Identity) -> Class {
    verdict(msg, us).class
}

/// Every recogniser over `msg`, and the class their evidence adds up to.
pub fn verdict(msg: &Parsed, us: &Identity) -> Verdict {
    let read = recognise::top_text(&msg.text);
    let mut evidence = recognise::all(msg, us, &read);
    evidence.sort_by_key(|e| std::cmp::Reverse(e.weight));
    let against: i32 = evidence
        .iter()
        .filter(|e| e.kind == Kind::Human)
        .map(|e| e.weight)
        .sum();
    let sum = |kind: Kind| -> i32 {
        evidence
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.weight)
            .sum()
    };
    let automatic = sum(Kind::Automatic);
    // The strongest kind-less evidence names the kind when nothing else does.
    let fallback = evidence.iter().find_map(|e| e.fallback);
    let mut best: Option<(Kind, i32)> = None;
    for kind in Kind::ALL {
        let total = sum(kind) + automatic + against;
        let candidate = fallback == Some(kind) || evidence.iter().any(|e| e.kind == kind);
        if candidate && total >= THRESHOLD && best.is_none_or(|(_, b)| total > b) {
            best = Some((kind, total));
        }
    }
    let class = match best {
        None => Class::Human,
        Some((kind, _)) => {
            let top = evidence
                .iter()
                .find(|e| e.kind == kind || e.kind == Kind::Automatic)
                .map_or("", |e| e.recogniser);
            match kind {
                Kind::Own => Class::OwnLoop(top),
                Kind::Complaint => Class::Complaint(top),
                Kind::Receipt => Class::Receipt(top),
                Kind::Challenge => Class::Challenge(top),
                Kind::AutoReply => Class::AutoReply(top),
                Kind::Bulk => Class::Bulk(top),
                Kind::Bounce => {
                    let (report, kind) = bounce::details(msg, us, &read);
                    Class::Bounce(Box::new(Bounce {
                        reason: top,
                        report: Some(report),
                        kind,
                    }))
                }
                Kind::Automatic | Kind::Human => Class::Human,
            }
        }
    };
    Verdict { class, evidence }
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
                "human",
                "an out-of-office subject alone decides nothing",
            ),
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
        for (subject, body) in [
            (
                "Automatic reply: help",
                "I am out of the office until Monday.",
            ),
            (
                "自动回复: 打印机",
                "您好，我正在休假，如有急事请联系王经理。",
            ),
            (
                "Abwesenheitsnotiz: Rechnung",
                "Ich bin bis 4. Januar nicht im Büro.",
            ),
            ("Автоответ: счёт", "Я в отпуске до 10 января."),
        ] {
            let c = class_of(&format!("{base}\r\nSubject: {subject}"), body);
            assert_eq!(c.as_str(), "auto-reply", "{subject}: {c:?}");
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
    fn a_dsn_says_whether_the_failure_is_permanent() {
        let dsn = |action: &str, status: &str| {
            format!(
                "From: MAILER-DAEMON@mx.customer.test\r\nTo: support@example.test\r\nSubject: Delivery Status Notification\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nReport.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.test\r\n\r\nFinal-Recipient: rfc822; jane@customer.test\r\nAction: {action}\r\nStatus: {status}\r\n--B--\r\n"
            )
        };
        for (action, status, want) in [
            ("failed", "5.1.1", BounceKind::Permanent),
            ("failed", "4.4.7", BounceKind::Transient),
            ("delayed", "4.4.1", BounceKind::Transient),
            ("delivered", "2.0.0", BounceKind::Success),
        ] {
            let raw = dsn(action, status);
            let parsed = parse::message(raw.as_bytes(), &crate::limits::Limits::default()).unwrap();
            let Class::Bounce(b) = classify(&parsed, &us()) else {
                panic!("{action} {status}: not a bounce");
            };
            assert_eq!(b.kind, want, "{action} {status}");
            assert_eq!(b.is_hard(), want == BounceKind::Permanent);
            let report = b.report.expect("report");
            assert_eq!(report.recipients, ["jane@customer.test"]);
        }
    }
}
