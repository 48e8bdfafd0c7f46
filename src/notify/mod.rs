//! Everything postdesk writes and sends: templates, composed mail, the outbox sender.
//!
//! - [`compose_acknowledgement`] is pure: ids, time and the template set are arguments; the
//!   result holds the exact RFC 5322 bytes that are stored and later sent.
//! - Every automatic mail carries `Auto-Submitted: auto-replied`, our loop header, our
//!   signed Message-ID, `In-Reply-To`, a full `References` chain (with angle brackets:
//!   lettre writes the values raw, STACK.md), `Thread-Topic` and `Thread-Index`.
//! - Every mail carries `MIME-Version: 1.0` exactly once (RFC 2045): lettre writes it for
//!   a multipart body but not for a plain `body()`, so `build` sets it for both.
//! - [`outbox`] delivers queued rows through [`smtp`], retrying with backoff.
//!
//! **Architecture invariant:** only `notify` imports `lettre`.

pub mod outbox;
pub mod smtp;
pub mod survey;
mod templates;

use std::time::SystemTime;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue, MIME_VERSION_1_0};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

pub use templates::{TemplateError, Templates};

use crate::mail::parse::Person;
use crate::model::{Language, MessageId, OutboxKind, TicketId};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot use address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build message: {0}")]
    Build(String),
}

/// A mail ready for the outbox.
#[derive(Debug, Clone)]
pub struct Composed {
    pub subject: String,
    pub text: String,
    pub raw: Vec<u8>,
}

/// One address on a mail.
#[derive(Debug, Clone)]
pub struct Addressee {
    pub name: Option<String>,
    pub address: String,
}

/// An attachment carried over to a mail (relays to agents keep the customer's files).
#[derive(Debug, Clone)]
pub struct AttachmentData {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Where a mail sits in its ticket's thread, for `Thread-Index` and `Thread-Topic`.
#[derive(Debug, Clone, Copy)]
pub struct ThreadInfo<'a> {
    pub hostname: &'a str,
    pub ticket: TicketId,
    /// When the ticket was opened (the root of `Thread-Index`).
    pub created_at: DateTime<Utc>,
    /// The ticket's subject without prefixes or tag.
    pub topic: &'a str,
}

/// Everything one outgoing mail needs; the template named by `kind` writes subject and body.
pub struct Mail<'a> {
    pub kind: OutboxKind,
    pub language: Language,
    pub context: minijinja::Value,
    pub from: Addressee,
    pub reply_to: Option<&'a str>,
    pub to: Vec<Addressee>,
    pub cc: Vec<Addressee>,
    pub message_id: &'a MessageId,
    pub in_reply_to: Option<&'a MessageId>,
    /// The thread's Message-IDs, oldest first.
    pub references: &'a [MessageId],
    pub thread: ThreadInfo<'a>,
    pub attachments: Vec<AttachmentData>,
    pub at: DateTime<Utc>,
}

/// Renders `mail.kind`'s template and builds the RFC 5322 bytes.
pub fn compose(templates: &Templates, mail: &Mail<'_>) -> Result<Composed, ComposeError> {
    let (subject, text) =
        templates.render(mail.language, mail.kind.template(), mail.context.clone())?;
    let raw = build(mail, &subject, &text)?;
    Ok(Composed { subject, text, raw })
}

/// What an acknowledgement needs; built by `workflow` inside the ingest transaction.
pub struct AckInput<'a> {
    pub ticket: TicketId,
    pub tag: &'a str,
    pub subject: &'a str,
    pub queue_name: &'a str,
    pub language: Language,
    pub customer: &'a Person,
    pub support_address: &'a str,
    pub message_id: &'a MessageId,
    pub in_reply_to: &'a MessageId,
    /// The customer's References plus the customer's Message-ID, oldest first.
    pub references: &'a [MessageId],
    pub hostname: &'a str,
    /// When the ticket was opened (the root of `Thread-Index`).
    pub created_at: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

/// Renders and builds the acknowledgement for a new ticket.
pub fn compose_acknowledgement(
    templates: &Templates,
    a: &AckInput<'_>,
) -> Result<Composed, ComposeError> {
    let customer_name = display_name(a.customer);
    compose(
        templates,
        &Mail {
            kind: OutboxKind::Acknowledgement,
            language: a.language,
            context: minijinja::context! {
                ticket => a.ticket.get(),
                tag => crate::mail::subject::tag_token(a.tag, a.ticket),
                subject => echoed_subject(a.subject),
                queue_name => a.queue_name,
                customer_name => customer_name,
                customer_address => a.customer.address.as_str(),
            },
            from: Addressee {
                name: Some(a.queue_name.to_owned()),
                address: a.support_address.to_owned(),
            },
            reply_to: None,
            to: vec![Addressee {
                name: a.customer.name.clone(),
                address: a.customer.address.clone(),
            }],
            cc: Vec::new(),
            message_id: a.message_id,
            in_reply_to: Some(a.in_reply_to),
            references: a.references,
            thread: ThreadInfo {
                hostname: a.hostname,
                ticket: a.ticket,
                created_at: a.created_at,
                topic: a.subject,
            },
            attachments: Vec::new(),
            at: a.at,
        },
    )
}

/// How many characters of a customer's subject an acknowledgement repeats: enough to
/// recognise the request, too few to carry someone else's message to a forged sender.
pub const ECHOED_SUBJECT_CHARS: usize = 80;

/// `subject` as an acknowledgement repeats it: the first [`ECHOED_SUBJECT_CHARS`]
/// characters, then "…" when there were more.
pub fn echoed_subject(subject: &str) -> String {
    match subject.char_indices().nth(ECHOED_SUBJECT_CHARS) {
        Some((cut, _)) => format!("{}…", &subject[..cut]),
        None => subject.to_owned(),
    }
}

/// The name to greet someone by: their display name, else the local part of the address.
pub fn display_name(p: &Person) -> String {
    p.name
        .clone()
        .unwrap_or_else(|| p.address.split('@').next().unwrap_or("").to_owned())
}

fn mailbox(a: &Addressee) -> Result<Mailbox, ComposeError> {
    let addr = a
        .address
        .parse()
        .map_err(|e: lettre::address::AddressError| ComposeError::Address {
            address: a.address.clone(),
            reason: e.to_string(),
        })?;
    Ok(Mailbox::new(a.name.as_deref().map(header_text), addr))
}

/// Text for a header (display names, subjects, file names): control characters and
/// Unicode line separators become spaces. The parser already cleans what it reads; this
/// is the last check before lettre, which fails (or panics, in `Display`) on a CR or LF
/// in a display name, and which must never let a customer's text start a header line.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn build(m: &Mail<'_>, subject: &str, text: &str) -> Result<Vec<u8>, ComposeError> {
    // Set here for both bodies below: lettre's `body()` writes none, and its
    // `multipart()` sets the same header again (a set, so still one line).
    let mut b = lettre::Message::builder()
        .header(MIME_VERSION_1_0)
        .from(mailbox(&m.from)?)
        .subject(header_text(subject))
        .message_id(Some(m.message_id.bracketed()))
        .date(SystemTime::from(m.at))
        .header(PostdeskLoop(m.thread.hostname.to_owned()))
        .header(ThreadTopic(header_text(m.thread.topic)))
        .header(ThreadIndex(thread_index(
            m.thread.hostname,
            m.thread.ticket,
            m.thread.created_at,
            m.references.len(),
        )));
    if let Some(auto) = m.kind.auto_submitted() {
        b = b.header(AutoSubmitted(auto.to_owned()));
    }
    if let Some(r) = m.reply_to {
        b = b.reply_to(mailbox(&Addressee {
            name: None,
            address: r.to_owned(),
        })?);
    }
    for to in &m.to {
        b = b.to(mailbox(to)?);
    }
    for cc in &m.cc {
        b = b.cc(mailbox(cc)?);
    }
    if let Some(irt) = m.in_reply_to {
        b = b.in_reply_to(irt.bracketed());
    }
    if !m.references.is_empty() {
        let refs: Vec<String> = m.references.iter().map(MessageId::bracketed).collect();
        b = b.references(refs.join(" "));
    }
    let body = text.replace('\n', "\r\n");
    let msg = if m.attachments.is_empty() {
        b.header(ContentType::TEXT_PLAIN).body(body)
    } else {
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(body));
        for a in &m.attachments {
            let ct = ContentType::parse(&a.content_type).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").expect("a valid content type")
            });
            parts = parts
                .singlepart(Attachment::new(header_text(&a.filename)).body(a.bytes.clone(), ct));
        }
        b.multipart(parts)
    }
    .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(msg.formatted())
}

/// Outlook's `Thread-Index`: 22 bytes (6 of time, 16 of a GUID) for the conversation's
/// root, then 5 bytes per reply. The GUID comes from the ticket, so every mail of a ticket
/// shares the root and Outlook threads them together.
fn thread_index(
    hostname: &str,
    ticket: TicketId,
    created_at: DateTime<Utc>,
    depth: usize,
) -> String {
    // FILETIME: 100 ns intervals since 1601-01-01.
    let filetime = (created_at.timestamp() + 11_644_473_600) as u64 * 10_000_000;
    let mut bytes = filetime.to_be_bytes()[..6].to_vec();
    let guid = Sha256::digest(format!("{hostname}/ticket/{}", ticket.get()).as_bytes());
    bytes.extend_from_slice(&guid[..16]);
    for i in 0..depth.min(20) {
        bytes.extend_from_slice(&[0, 0, 0, (i >> 8) as u8, i as u8]);
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

macro_rules! text_header {
    ($name:ident, $text:literal) => {
        #[derive(Debug, Clone)]
        struct $name(String);
        impl Header for $name {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($text)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($name(s.to_owned()))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(AutoSubmitted, "Auto-Submitted");
text_header!(PostdeskLoop, "X-Postdesk-Loop"); // crate::mail::headers::LOOP_HEADER
text_header!(ThreadTopic, "Thread-Topic");
text_header!(ThreadIndex, "Thread-Index");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageRowId;
    use chrono::TimeZone;

    #[test]
    fn acknowledgement_has_threading_and_loop_headers() {
        let templates = Templates::load(None).unwrap();
        let key = crate::key::InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let mid = key.message_id(
            "helpdesk.example.test",
            TicketId::new(42),
            MessageRowId::new(9),
        );
        let customer = Person {
            address: "alice@customer.test".into(),
            name: Some("Alice Martin".into()),
        };
        let refs = vec![
            MessageId::new("a0@customer.test"),
            MessageId::new("a1@customer.test"),
        ];
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let c = compose_acknowledgement(
            &templates,
            &AckInput {
                ticket: TicketId::new(42),
                tag: "ACME",
                subject: "Printer offline",
                queue_name: "ACME Support",
                language: Language::En,
                customer: &customer,
                support_address: "support@example.test",
                message_id: &mid,
                in_reply_to: &refs[1],
                references: &refs,
                hostname: "helpdesk.example.test",
                created_at: at,
                at,
            },
        )
        .unwrap();
        assert_eq!(c.subject, "[ACME #42] Printer offline");
        let parsed =
            crate::mail::parse::message(&c.raw, &crate::limits::Limits::default()).unwrap();
        assert_eq!(parsed.subject, "[ACME #42] Printer offline");
        assert_eq!(parsed.message_id, mid);
        assert_eq!(parsed.in_reply_to, vec![refs[1].clone()]);
        assert_eq!(parsed.references, refs);
        assert_eq!(parsed.auto.auto_submitted.as_deref(), Some("auto-replied"));
        assert!(parsed.auto.loop_header.is_some());
        assert!(parsed.text.contains("[ACME #42]"));
        let raw = String::from_utf8_lossy(&c.raw);
        assert!(raw.contains("Thread-Index: "), "{raw}");
        assert!(raw.contains("Thread-Topic: Printer offline"), "{raw}");
        assert!(
            raw.contains("References: <a0@customer.test> <a1@customer.test>"),
            "{raw}"
        );
    }

    /// The header block of `raw`: everything before the first empty line, unfolded.
    fn header_lines(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
        let head = text.split("\n\n").next().unwrap_or("");
        let mut lines: Vec<String> = Vec::new();
        for line in head.lines() {
            match lines.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
                _ => lines.push(line.to_owned()),
            }
        }
        lines
    }

    #[test]
    fn control_characters_in_names_and_subjects_never_reach_a_header() {
        let templates = Templates::load(None).unwrap();
        let id = MessageId::new("1.1.x@helpdesk.example.test");
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let evil = "Eve\r\nBcc: mallory@evil.test\u{1b}[31m\u{2028}";
        let c = compose(
            &templates,
            &Mail {
                kind: OutboxKind::Answer,
                language: Language::En,
                context: templates::sample_context(),
                from: Addressee {
                    name: Some("ACME Support".into()),
                    address: "support@example.test".into(),
                },
                reply_to: None,
                to: vec![Addressee {
                    name: Some(evil.into()),
                    address: "eve@customer.test".into(),
                }],
                cc: Vec::new(),
                message_id: &id,
                in_reply_to: None,
                references: &[],
                thread: ThreadInfo {
                    hostname: "helpdesk.example.test",
                    ticket: TicketId::new(42),
                    created_at: at,
                    topic: evil,
                },
                attachments: vec![AttachmentData {
                    filename: format!("a{evil}.txt"),
                    content_type: "text/plain".into(),
                    bytes: b"x".to_vec(),
                }],
                at,
            },
        )
        .expect("a name with CR/LF still makes a mail");
        let lines = header_lines(&c.raw);
        assert!(
            !lines
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{lines:?}"
        );
        let raw = String::from_utf8_lossy(&c.raw);
        assert!(!raw.contains('\u{1b}'), "{raw}");
        assert!(
            raw.contains("Thread-Topic: Eve  Bcc: mallory@evil.test [31m"),
            "{raw}"
        );
    }

    #[test]
    fn every_kind_of_mail_has_exactly_one_mime_version() {
        let templates = Templates::load(None).unwrap();
        let id = MessageId::new("1.1.x@helpdesk.example.test");
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let mut checked = 0;
        for kind in OutboxKind::ALL {
            for language in Language::ALL {
                // Plain (lettre's `body()`) and with an attachment (its `multipart()`).
                for attachments in [
                    Vec::new(),
                    vec![AttachmentData {
                        filename: "screenshot.png".into(),
                        content_type: "image/png".into(),
                        bytes: vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3],
                    }],
                ] {
                    let c = compose(
                        &templates,
                        &Mail {
                            kind: *kind,
                            language: *language,
                            context: templates::sample_context(),
                            from: Addressee {
                                name: Some("ACME Support".into()),
                                address: "support@example.test".into(),
                            },
                            reply_to: Some("support+r-42-bob-0123456789abcdef@example.test"),
                            to: vec![Addressee {
                                name: Some("Alice Martin".into()),
                                address: "alice@customer.test".into(),
                            }],
                            cc: Vec::new(),
                            message_id: &id,
                            in_reply_to: Some(&id),
                            references: std::slice::from_ref(&id),
                            thread: ThreadInfo {
                                hostname: "helpdesk.example.test",
                                ticket: TicketId::new(42),
                                created_at: at,
                                topic: "Printer offline",
                            },
                            attachments: attachments.clone(),
                            at,
                        },
                    )
                    .unwrap_or_else(|e| panic!("{kind:?} {language:?}: {e}"));
                    let mime: Vec<String> = header_lines(&c.raw)
                        .into_iter()
                        .filter(|l| l.to_ascii_lowercase().starts_with("mime-version:"))
                        .collect();
                    assert_eq!(
                        mime,
                        ["MIME-Version: 1.0"],
                        "{kind:?} {language:?} with {} attachment(s):\n{}",
                        attachments.len(),
                        String::from_utf8_lossy(&c.raw)
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, OutboxKind::ALL.len() * Language::ALL.len() * 2);
    }

    #[test]
    fn chinese_acknowledgement() {
        let templates = Templates::load(None).unwrap();
        let customer = Person {
            address: "zhang@customer.test".into(),
            name: Some("张伟".into()),
        };
        let id = MessageId::new("1.1.x@h");
        let at = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let c = compose_acknowledgement(
            &templates,
            &AckInput {
                ticket: TicketId::new(7),
                tag: "ACME",
                subject: "打印机无法连接",
                queue_name: "客服",
                language: Language::ZhCn,
                customer: &customer,
                support_address: "support@example.test",
                message_id: &id,
                in_reply_to: &id,
                references: &[],
                hostname: "h",
                created_at: at,
                at,
            },
        )
        .unwrap();
        let parsed =
            crate::mail::parse::message(&c.raw, &crate::limits::Limits::default()).unwrap();
        assert_eq!(parsed.subject, "[ACME #7] 打印机无法连接");
        assert!(parsed.text.contains("感谢您联系客服"), "{}", parsed.text);
    }
}
