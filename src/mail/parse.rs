//! Turns raw RFC 5322 bytes into a [`Parsed`] message.
//!
//! In: bytes as the server held them. Out: `Ok(Parsed)` for anything with a header block,
//! however broken (mail-parser is best-effort, every charset decoded with `full_encoding`);
//! `Err(Unusable)` only for bytes with nothing usable, which go to quarantine.
//! - Pure: no I/O, no clock, never panics on input (a unit test feeds it garbage).
//! - Message-IDs lose their angle brackets here ([`MessageId`]); a message without one
//!   gets a stable synthetic id from a hash of its content, so that a re-fetch or a second
//!   mailbox still finds it (invariant 1).
//! - Addresses are lower-cased; display names are kept as written, except that control
//!   characters (C0 with TAB, CR and LF, DEL, C1, U+2028/U+2029) become a space and runs
//!   of white space one space, in every name, subject and header value kept: a CR/LF in
//!   an RFC 2047 encoded display name never reaches an outgoing header or a terminal
//!   ([`without_controls`]). Addresses and Message-IDs lose them.
//!
//! Cost: linear in the size of the message, memory bounded, whatever the input
//! (DESIGN.md invariant 6, issue 12); the caps are the message's [`Limits`]:
//! - `max_message_bytes`: larger → `Unusable::TooLarge`.
//! - `max_header_bytes`: a top-level header section (up to the first empty line) larger
//!   than this → `Unusable::HeadersTooLarge`, so the message goes to quarantine with that
//!   reason. Not truncated: a header section that size is never mail a person wrote, and
//!   half of it would be read as a different message.
//! - `max_mime_depth`, `max_parts`: MIME parts nested deeper (multipart in multipart; the
//!   root is depth 0), or past the first `max_parts` parts, are not read (no text, no
//!   attachment, no charset from them); [`ParseWarning::MimeTooDeep`] and
//!   [`ParseWarning::TooManyParts`] say so. mail-parser still builds every part it finds
//!   (about 100 bytes each: a 2 MB message of 200,000 empty parts costs 0.2 s and 30 MB).
//! - `max_charsets`: charset repair ([`repair_text`]) tries at most this many distinct
//!   declared charsets (in the order they are declared) plus five usual suspects; the
//!   list is made once per message.
//! - `max_encoded_words`: charset repair decodes at most this many RFC 2047 encoded
//!   words per message; the rest stay as written ([`ParseWarning::TooManyEncodedWords`]).
//! - `max_html_depth`: HTML is flattened to this element depth before html2text sees it
//!   (html2text is quadratic in the depth; `html_quote::flatten`), tags beyond it
//!   dropped, their text kept ([`ParseWarning::HtmlFlattened`]).
//! - At most [`MAX_REFERENCES`] `References` and [`MAX_IN_REPLY_TO`] `In-Reply-To` ids
//!   are kept (each is looked up in the store), [`MAX_REPORT_RECIPIENTS`] bounce
//!   recipients.
//!
//! mail-parser itself (0.11) parses nested multiparts and attached messages with a stack
//! of its own, not by recursion (only base64-encoded attached messages recurse, three
//! levels), and has no depth or part limit. It is linear on everything measured but one
//! shape: a part that declares a boundary that never comes is searched to the end of
//! the message, once per such part (10,000 of them in 1 MB: 11 s). Before it parses,
//! [`without_lost_boundaries`] renames those declarations (one linear pre-scan), so such
//! a part is read as one opaque part. Not covered: the same inside a base64-encoded
//! attached message (mail-parser decodes and parses it itself); the wall-clock limit
//! per message (`message_time_limit`, in ingest) is the bound there.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::limits::Limits;
use crate::model::MessageId;

/// Domain of synthetic Message-IDs, for messages that came without one.
pub const SYNTHETIC_DOMAIN: &str = "synthetic.postdesk.invalid";

/// HTML larger than this is not given to html2text, which takes about 1.2 µs a byte on
/// flat HTML of many paragraphs (0.64 s for 500 KiB, measured; twice that when a quote
/// container makes it run for `reply_text` too): its tags are stripped instead, in one
/// pass (`html_quote::strip_tags`), and no `reply_text` is made. The raw message keeps
/// it all.
const MAX_HTML_TO_TEXT: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("empty message")]
    Empty,
    #[error("no header fields: not an RFC 5322 message")]
    NoHeaders,
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("header section of {size} bytes exceeds the limit of {limit} bytes")]
    HeadersTooLarge { size: usize, limit: usize },
}

/// A mail address with its display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Person {
    /// Lower-cased `local@domain`.
    pub address: String,
    pub name: Option<String>,
}

impl Person {
    /// `"Name" <addr>` or `addr`, for display and JSON.
    pub fn display(&self) -> String {
        match &self.name {
            Some(n) if !n.is_empty() => format!("{n} <{}>", self.address),
            _ => self.address.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: usize,
}

/// Header values that classification reads; kept raw and trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutoHeaders {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub x_autoreply: Option<String>,
    pub x_autorespond: Option<String>,
    pub x_auto_response_suppress: Option<String>,
    pub list_id: Option<String>,
    pub list_unsubscribe: Option<String>,
    pub loop_header: Option<String>,
    /// The envelope sender as Dovecot recorded it; `Some("")` is the null sender `<>`.
    pub return_path: Option<String>,
}

/// Something mail-parser had to guess about; kept for `ticket show`, never fatal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ParseWarning {
    MissingMessageId,
    MissingFrom,
    MissingDate,
    HtmlOnly,
    /// MIME parts nested deeper than `max_mime_depth` were not read.
    MimeTooDeep,
    /// Parts past the first `max_parts` were not read.
    TooManyParts,
    /// Charset repair stopped after `max_encoded_words` encoded words.
    TooManyEncodedWords,
    /// The HTML was nested deeper than `max_html_depth`; deeper tags were dropped before
    /// it became text.
    HtmlFlattened,
}

/// What the rest of the flow needs of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub message_id: MessageId,
    /// The first [`MAX_IN_REPLY_TO`] ids.
    pub in_reply_to: Vec<MessageId>,
    /// The last [`MAX_REFERENCES`] ids (the nearest), in message order.
    pub references: Vec<MessageId>,
    pub from: Option<Person>,
    pub reply_to: Option<Person>,
    pub to: Vec<Person>,
    pub cc: Vec<Person>,
    /// `Delivered-To` values (the plus-address a message came to survives here).
    pub delivered_to: Vec<String>,
    pub subject: String,
    pub date: Option<DateTime<Utc>>,
    /// The readable text: the text/plain body, or text made from HTML.
    pub text: String,
    /// Only for a message whose readable text came from HTML (no text/plain body): text
    /// made from that HTML without its quote containers (`blockquote`, `div.gmail_quote`,
    /// Thunderbird's attribution, Outlook's `#appendonsend`/`#divRplyFwdMsg` and what
    /// follows, QQ Mail's `原始邮件` separator and what follows; `mail::html_quote`).
    /// `None` when the text came from text/plain, when the HTML holds no quote container
    /// (then it would equal `text`), or when the HTML is over the size converted to text.
    /// An agent's answer is cut from `reply_text.as_deref().unwrap_or(&text)`
    /// (`agent::quote::cut_answer`); `text` stays the whole message.
    pub reply_text: Option<String>,
    pub attachments: Vec<Attachment>,
    pub auto: AutoHeaders,
    /// `multipart/report; report-type=delivery-status` and friends.
    pub report: Option<Report>,
    /// `Authentication-Results` headers, topmost (added last, by our own server) first,
    /// each with the `Received` lines above it ([`MAX_AUTH_HEADERS`] at most).
    pub auth_results: Vec<AuthHeader>,
    /// Every top-level header as (name, value), in message order (for routing rules).
    pub headers: Vec<(String, String)>,
    pub warnings: Vec<ParseWarning>,
}

/// One `Authentication-Results` header and where it sits: what `agent::auth` needs to
/// tell the header our server added from one the sender wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// The value, unfolded (runs of white space made one space); `mail::authres` reads it.
    pub value: String,
    /// The `by` host of each `Received` line above this header, topmost first, lower
    /// case; "" for a line that names none. At most [`MAX_RECEIVED`] lines are read:
    /// when more sit above, one last "" stands for the rest (it matches no host).
    pub received_above: Vec<String>,
}

/// `Received` lines read for [`AuthHeader::received_above`]; Postfix refuses mail past
/// 50 hops (`hopcount_limit`), so more is a loop.
pub const MAX_RECEIVED: usize = 50;

/// The longest `by` host read from a `Received` line.
const MAX_HOST_LEN: usize = 255;

/// `Authentication-Results` headers kept, topmost first. Our servers' headers sit at
/// the top; a message with more is junk, and the rest could only be the sender's own.
pub const MAX_AUTH_HEADERS: usize = 100;

/// `References` ids kept: the last ones, the nearest ancestors. Each is looked up when
/// the message is threaded; a longer chain is junk or an attack.
pub const MAX_REFERENCES: usize = 100;

/// `In-Reply-To` ids kept (there should be one).
pub const MAX_IN_REPLY_TO: usize = 10;

/// `Final-Recipient` addresses read from one delivery status report.
pub const MAX_REPORT_RECIPIENTS: usize = 1000;

/// The machine-readable part of a delivery status notification (RFC 3464), or what
/// could be recovered from a non-standard bounce body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub report_type: String,
    /// `Final-Recipient` (or `Original-Recipient`) addresses, lower-cased.
    pub recipients: Vec<String>,
    /// `Status: 5.1.1` and so on, one per recipient where given.
    pub status: Option<String>,
    pub action: Option<String>,
    pub diagnostic: Option<String>,
    /// Message-ID of the returned message, from its headers.
    pub original_message_id: Option<MessageId>,
    /// A returned message (`message/rfc822`) or its headers (`text/rfc822-headers`) is
    /// among the top-level parts.
    pub returned: bool,
    /// ARF `Feedback-Type` (`abuse`, `fraud`, …), lower case.
    pub feedback_type: Option<String>,
    /// MDN `Disposition` (`manual-action/MDN-sent-manually; displayed`).
    pub disposition: Option<String>,
}

impl Parsed {
    /// The address to answer: `Reply-To` is not used for that (it would let anyone
    /// direct our mail elsewhere); `From` is the requester.
    pub fn sender(&self) -> Option<&Person> {
        self.from.as_ref()
    }
    /// The first top-level header named `name` (any case), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// True when `address` (lower case) is among To, Cc or Delivered-To.
    pub fn addressed_to(&self, address: &str) -> bool {
        self.to.iter().chain(&self.cc).any(|p| p.address == address)
            || self.delivered_to.iter().any(|d| d == address)
    }
    /// Every Message-ID this message points at, nearest first: In-Reply-To, then
    /// References from the end.
    pub fn referenced_ids(&self) -> Vec<&MessageId> {
        let mut seen = HashSet::new();
        self.in_reply_to
            .iter()
            .chain(self.references.iter().rev())
            .filter(|id| seen.insert(id.as_str()))
            .collect()
    }
}

/// Parses `raw`; see the module doc for what counts as unusable and for the caps.
pub fn message(raw: &[u8], limits: &Limits) -> Result<Parsed, Unusable> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Unusable::Empty);
    }
    if raw.len() > limits.max_message_bytes {
        return Err(Unusable::TooLarge {
            size: raw.len(),
            limit: limits.max_message_bytes,
        });
    }
    // Bare CR line ends (old Mac mail, some gateways' copies) made CRLF once, here: every
    // later stage (mail-parser, the report parts, classification) sees lines. The stored
    // raw bytes stay as they came.
    let lines = with_line_ends(raw);
    let raw: &[u8] = &lines;
    let Some(start) = header_start(raw) else {
        return Err(Unusable::NoHeaders);
    };
    // The bytes mail-parser sees: after a stray first line some forwarders put on top
    // ("---- Original email message ----"). The raw bytes are stored whole regardless.
    let raw = &raw[start..];
    let header_bytes = header_section_len(raw);
    if header_bytes > limits.max_header_bytes {
        return Err(Unusable::HeadersTooLarge {
            size: header_bytes,
            limit: limits.max_header_bytes,
        });
    }
    let seen = without_lost_boundaries(raw, limits.max_parts);
    let msg = MessageParser::default()
        .parse(seen.as_ref())
        .ok_or(Unusable::NoHeaders)?;
    if msg.headers().is_empty() {
        return Err(Unusable::NoHeaders);
    }
    let mut warnings = Vec::new();

    let message_id = match msg.message_id().map(clean_id) {
        Some(id) if !id.as_str().is_empty() => id,
        _ => {
            warnings.push(ParseWarning::MissingMessageId);
            synthetic_id(&msg, raw)
        }
    };
    let readable = Readable::of(&msg, limits);
    if readable.too_deep {
        warnings.push(ParseWarning::MimeTooDeep);
    }
    if readable.too_many {
        warnings.push(ParseWarning::TooManyParts);
    }
    let repair = Repair::new(&declared_charsets(&msg, limits), limits);
    let raw_from = raw_header(&msg, "From");
    let from = first_person(msg.from())
        .and_then(|p| repair_person(p, raw_from, &repair))
        .or_else(|| raw_from.and_then(person_from_raw))
        .map(Person::cleaned);
    if from.is_none() {
        warnings.push(ParseWarning::MissingFrom);
    }
    let date = msg
        .date()
        .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single());
    if date.is_none() {
        warnings.push(ParseWarning::MissingDate);
    }
    let body = body_text(&msg, &readable, limits.max_html_depth);
    if body.html_only {
        warnings.push(ParseWarning::HtmlOnly);
    }
    if body.flattened {
        warnings.push(ParseWarning::HtmlFlattened);
    }
    let report = report(&msg, limits.max_parts);
    let attachments = msg
        .attachments
        .iter()
        .filter(|id| readable.has(**id))
        .filter_map(|id| msg.parts.get(*id as usize))
        .map(|part| Attachment {
            filename: part
                .attachment_name()
                .map(|n| without_controls(n).into_owned()),
            content_type: content_type_of(part),
            size: part.len(),
        })
        .collect();
    let subject = msg
        .subject()
        .map(|s| repair_text(s, raw_header(&msg, "Subject"), &repair))
        .map(|s| one_line(&s))
        .unwrap_or_default();
    if repair.capped.get() {
        warnings.push(ParseWarning::TooManyEncodedWords);
    }
    let mut references = id_list(msg.references());
    references.drain(..references.len().saturating_sub(MAX_REFERENCES));
    let mut in_reply_to = id_list(msg.in_reply_to());
    in_reply_to.truncate(MAX_IN_REPLY_TO);

    Ok(Parsed {
        message_id,
        in_reply_to,
        references,
        from,
        reply_to: first_person(msg.reply_to()).map(Person::cleaned),
        to: people(msg.to()),
        cc: people(msg.cc()),
        delivered_to: msg
            .header_values("Delivered-To")
            .filter_map(|v| v.as_text())
            .map(|s| without_controls(s.trim()).to_ascii_lowercase())
            .collect(),
        subject,
        date,
        text: body.text,
        reply_text: body.reply_text,
        attachments,
        auto: AutoHeaders {
            auto_submitted: text_header(&msg, "Auto-Submitted"),
            precedence: text_header(&msg, "Precedence"),
            x_autoreply: text_header(&msg, "X-Autoreply"),
            x_autorespond: text_header(&msg, "X-Autorespond"),
            x_auto_response_suppress: text_header(&msg, "X-Auto-Response-Suppress"),
            list_id: text_header(&msg, "List-Id"),
            list_unsubscribe: text_header(&msg, "List-Unsubscribe"),
            loop_header: text_header(&msg, crate::mail::headers::LOOP_HEADER),
            return_path: msg.header_raw("Return-Path").map(|v| {
                without_controls(v)
                    .trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_ascii_lowercase()
            }),
        },
        report,
        headers: msg
            .headers_raw()
            .map(|(n, v)| (without_controls(n).into_owned(), one_line(v)))
            .collect(),
        auth_results: auth_headers(&msg),
        warnings,
    })
}

/// At most the first `max` bytes of `text` (cut at a character boundary): what the costlier
/// passes here are given when only the top of a customer's text matters (a relay shows at
/// most `max_relay_text_bytes`, a survey comment 1,000 characters).
pub fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Control characters that must not reach an outgoing header or a terminal: C0 (TAB,
/// CR and LF included), DEL, C1, and the Unicode line and paragraph separators.
pub fn is_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// `s` with every [`is_control`] character made a space (borrowed when there is none).
pub fn without_controls(s: &str) -> Cow<'_, str> {
    if s.contains(is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| if is_control(c) { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
}

/// Text for one line: control characters gone, runs of white space one space, trimmed.
pub fn one_line(s: &str) -> String {
    without_controls(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A Message-ID without control characters (they would end up in our `References`).
fn clean_id(s: &str) -> MessageId {
    MessageId::new(&s.replace(is_control, ""))
}

impl Person {
    /// The name on one line without control characters ([`one_line`], empty → `None`);
    /// the address without control characters (a quoted local part keeps its spaces).
    fn cleaned(self) -> Person {
        Person {
            address: self.address.replace(is_control, ""),
            name: self.name.map(|n| one_line(&n)).filter(|n| !n.is_empty()),
        }
    }
}

/// Where the top-level header section ends: the offset of its empty line, or the whole
/// input when there is none. One pass.
/// `raw` with each bare CR (one not followed by LF) made CRLF; borrowed when there is
/// none. LF alone and CRLF are left as they are (mail-parser reads both). One pass.
fn with_line_ends(raw: &[u8]) -> Cow<'_, [u8]> {
    let bare = |i: usize| raw[i] == b'\r' && raw.get(i + 1) != Some(&b'\n');
    let Some(first) = (0..raw.len()).find(|&i| bare(i)) else {
        return Cow::Borrowed(raw);
    };
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    out.extend_from_slice(&raw[..first]);
    for (i, &b) in raw.iter().enumerate().skip(first) {
        out.push(b);
        if bare(i) {
            out.push(b'\n');
        }
    }
    Cow::Owned(out)
}

fn header_section_len(raw: &[u8]) -> usize {
    let mut at = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if line == b"\n" || line == b"\r\n" {
            return at;
        }
        at += line.len();
    }
    raw.len()
}

/// `raw` with the `boundary` parameter renamed (`boundar_`) in every `Content-Type`
/// declaration whose boundary no later line starts with (`--boundary`), in RFC 2231 form
/// (`boundary*0=`), or past the first `max` declarations: mail-parser looks for a
/// declared boundary to the end of the message and then goes back, once per part, which
/// made 10,000 such parts in 1 MB cost 11 s. Such a part is read as one opaque part,
/// which is what mail-parser makes of it anyway once the search fails. Borrowed when
/// nothing is renamed. Three linear passes; the map holds at most `max` boundaries.
fn without_lost_boundaries(raw: &[u8], max: usize) -> Cow<'_, [u8]> {
    let declarations = boundary_declarations(raw);
    let mut last_use: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    for (_, value) in declarations.iter().take(max) {
        if let Some(value) = *value {
            last_use.entry(value).or_insert(0);
        }
    }
    let mut at = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"--") {
            let rest = rest.trim_ascii_end();
            let rest = rest.strip_suffix(b"--").unwrap_or(rest);
            if let Some(last) = last_use.get_mut(rest) {
                *last = at;
            }
        }
        at += line.len();
    }
    let mut out: Option<Vec<u8>> = None;
    for (i, (pos, value)) in declarations.iter().enumerate() {
        let used = i < max
            && value
                .and_then(|v| last_use.get(v))
                .is_some_and(|last| last > pos);
        if !used {
            // `boundary` → `boundar_`: no longer the parameter mail-parser reads.
            out.get_or_insert_with(|| raw.to_vec())[pos + 7] = b'_';
        }
    }
    match out {
        Some(out) => Cow::Owned(out),
        None => Cow::Borrowed(raw),
    }
}

/// Every `boundary` parameter in a `Content-Type` field (a line starting with
/// `Content-Type:` and its folded continuation lines), anywhere in `raw`: its offset and
/// its value (`None` for the RFC 2231 forms). One pass.
fn boundary_declarations(raw: &[u8]) -> Vec<(usize, Option<&[u8]>)> {
    const NAME: &[u8] = b"boundary";
    let mut out = Vec::new();
    let mut in_content_type = false;
    let mut at = 0;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        let start = at;
        at += line.len();
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        in_content_type = (in_content_type && folded)
            || line
                .get(..13)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"content-type:"));
        if !in_content_type {
            continue;
        }
        let mut i = 0;
        while i + NAME.len() <= line.len() {
            if !line[i..i + NAME.len()].eq_ignore_ascii_case(NAME) {
                i += 1;
                continue;
            }
            let after = &line[i + NAME.len()..];
            let rest = after.trim_ascii_start();
            match rest.first() {
                Some(b'*') => out.push((start + i, None)),
                Some(b'=') => {
                    let v = rest[1..].trim_ascii_start();
                    let value = match v.strip_prefix(b"\"") {
                        Some(q) => &q[..q.iter().position(|b| *b == b'"').unwrap_or(q.len())],
                        None => {
                            let end = v
                                .iter()
                                .position(|b| b.is_ascii_whitespace() || *b == b';')
                                .unwrap_or(v.len());
                            &v[..end]
                        }
                    };
                    let value = value.trim_ascii();
                    out.push((start + i, (!value.is_empty()).then_some(value)));
                }
                _ => {}
            }
            i += NAME.len();
        }
    }
    out
}

/// Which of mail-parser's parts (`Message::parts`, by index) the rest of [`message`]
/// reads: those at most `max_mime_depth` multiparts deep, among the first `max_parts`.
struct Readable {
    parts: Vec<bool>,
    too_deep: bool,
    too_many: bool,
}

impl Readable {
    /// One walk over the part tree, with a stack of its own (no recursion).
    fn of(msg: &mail_parser::Message<'_>, limits: &Limits) -> Readable {
        let n = msg.parts.len().min(limits.max_parts);
        let mut parts = vec![false; n];
        let mut seen = vec![false; n];
        let mut too_deep = false;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((id, depth)) = stack.pop() {
            if id >= n || seen[id] {
                continue;
            }
            seen[id] = true;
            if depth > limits.max_mime_depth {
                too_deep = true;
                continue;
            }
            parts[id] = true;
            if let PartType::Multipart(children) = &msg.parts[id].body {
                stack.extend(children.iter().rev().map(|c| (*c as usize, depth + 1)));
            }
        }
        Readable {
            parts,
            too_deep,
            too_many: msg.parts.len() > limits.max_parts,
        }
    }

    fn has(&self, id: u32) -> bool {
        self.parts.get(id as usize).copied().unwrap_or(false)
    }
}

fn content_type_of(part: &mail_parser::MessagePart<'_>) -> String {
    let ct = part
        .content_type()
        .map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_owned(),
        })
        .unwrap_or_else(|| "application/octet-stream".to_owned())
        .to_ascii_lowercase();
    ct.replace(|c: char| is_control(c) || c.is_whitespace(), "")
}

/// The `Authentication-Results` headers with the `Received` lines above each; see
/// [`AuthHeader`].
fn auth_headers(msg: &mail_parser::Message<'_>) -> Vec<AuthHeader> {
    let raw = msg.raw_message();
    let mut received: Vec<String> = Vec::new();
    let mut more_received = false;
    let mut out = Vec::new();
    for h in msg.root_part().headers() {
        let name = h.name();
        if name.eq_ignore_ascii_case("Received") {
            if received.len() < MAX_RECEIVED {
                let value = raw
                    .get(h.offset_start() as usize..h.offset_end() as usize)
                    .unwrap_or_default();
                received.push(received_by(&String::from_utf8_lossy(value)));
            } else {
                more_received = true;
            }
        } else if name.eq_ignore_ascii_case("Authentication-Results") {
            if out.len() == MAX_AUTH_HEADERS {
                break;
            }
            let Some(value) = h.value().as_text() else {
                continue;
            };
            let mut received_above = received.clone();
            if more_received {
                received_above.push(String::new());
            }
            out.push(AuthHeader {
                value: value.split_whitespace().collect::<Vec<_>>().join(" "),
                received_above,
            });
        }
    }
    out
}

/// The host after `by` in a `Received` value (RFC 5321 section 4.4), lower case; "" when
/// there is none. Comments are skipped; the clauses are `keyword value` pairs before the
/// `;` and the date, so a `from by.example` does not count.
fn received_by(value: &str) -> String {
    let mut text = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if depth > 0 => escaped = true,
            '(' => depth += 1,
            ')' if depth > 0 => {
                depth -= 1;
                text.push(' ');
            }
            ';' if depth == 0 => break,
            _ if depth == 0 => text.push(c),
            _ => {}
        }
    }
    let mut words = text.split_whitespace();
    while let Some(word) = words.next() {
        let keyword = word.to_ascii_lowercase();
        match keyword.as_str() {
            "by" => {
                let host = words.next().unwrap_or_default();
                // A host name has at most 253 characters; a longer one names nothing
                // (and would be copied for every `Authentication-Results` below it).
                return if host.len() > MAX_HOST_LEN {
                    String::new()
                } else {
                    host.to_ascii_lowercase()
                };
            }
            "from" | "via" | "with" | "id" | "for" => {
                words.next();
            }
            _ => {}
        }
    }
    String::new()
}

/// Where the header block starts: the first line when it looks like `Name: value`; else
/// after at most two stray lines (an mbox `From ` line, a forwarder's banner) when two
/// header lines follow. `None` for binary junk and plain text without headers.
fn header_start(raw: &[u8]) -> Option<usize> {
    let is_field = |line: &[u8]| match line.iter().position(|b| *b == b':') {
        Some(colon) if colon > 0 => line[..colon].iter().all(|b| (33..=126).contains(b)),
        _ => false,
    };
    let mut offset = 0;
    let mut lines = raw.split(|b| *b == b'\n');
    for skipped in 0..=2 {
        let line = lines.next()?;
        if is_field(line) {
            let next = lines.next().unwrap_or_default();
            let folded = next.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            return (skipped == 0 || is_field(next) || folded).then_some(offset);
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        offset += line.len() + 1;
    }
    None
}

/// A stable id for a message that has none: the same content always gives the same id,
/// whichever mailbox it came through (trace headers added on delivery are left out).
fn synthetic_id(msg: &mail_parser::Message<'_>, raw: &[u8]) -> MessageId {
    let mut h = Sha256::new();
    for name in ["From", "To", "Cc", "Date", "Subject"] {
        h.update(name.as_bytes());
        h.update(msg.header_raw(name).unwrap_or_default().trim().as_bytes());
        h.update(b"\n");
    }
    let body_start = (msg.root_part().raw_body_offset() as usize).min(raw.len());
    h.update(&raw[body_start..]);
    let digest = h.finalize();
    MessageId::new(&format!(
        "{}@{SYNTHETIC_DOMAIN}",
        hex::encode(&digest[..16])
    ))
}

/// The raw bytes of a top-level header's value.
fn raw_header<'a>(msg: &'a mail_parser::Message<'_>, name: &str) -> Option<&'a [u8]> {
    let h = msg
        .root_part()
        .headers()
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))?;
    msg.raw_message()
        .get(h.offset_start() as usize..h.offset_end() as usize)
}

/// The distinct charsets the message declares, in the order declared, lower-cased: at
/// most `max_charsets` of them, from parts within `max_parts` (nested messages
/// included, four levels).
fn declared_charsets(msg: &mail_parser::Message<'_>, limits: &Limits) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut parts_left = limits.max_parts;
    let mut stack = vec![(msg, 0usize)];
    while let Some((msg, depth)) = stack.pop() {
        for part in &msg.parts {
            if out.len() == limits.max_charsets || parts_left == 0 {
                return out;
            }
            parts_left -= 1;
            if let Some(cs) = part.content_type().and_then(|ct| ct.attribute("charset")) {
                let cs = cs.trim().to_ascii_lowercase();
                if seen.insert(cs.clone()) {
                    out.push(cs);
                }
            }
            if let (PartType::Message(inner), true) = (&part.body, depth < 4) {
                stack.push((inner, depth + 1));
            }
        }
    }
    out
}

fn is_single_byte(charset: &str) -> bool {
    [
        "8859",
        "windows-125",
        "cp125",
        "ascii",
        "koi8",
        "latin",
        "ibm",
        "mac",
    ]
    .iter()
    .any(|s| charset.contains(s))
}

/// An ISO-2022-JP label on 8-bit bytes is really Shift_JIS.
fn eight_bit_name(charset: &str) -> &str {
    if charset.starts_with("iso-2022-jp") {
        "shift_jis"
    } else {
        charset
    }
}

fn is_multi_byte(charset: &str) -> bool {
    !is_single_byte(charset) && !charset.starts_with("utf")
}

/// What charset repair may do in one message: the charsets it tries, made once, and the
/// encoded words it may still decode.
struct Repair {
    /// The message's own multi-byte charsets first, then its single-byte ones, then the
    /// usual CJK suspects, then Windows-1252; no charset twice.
    candidates: Vec<String>,
    words_left: Cell<usize>,
    /// Set when an encoded word was left undecoded for want of `words_left`.
    capped: Cell<bool>,
}

impl Repair {
    /// `declared` is already capped ([`declared_charsets`]).
    fn new(declared: &[String], limits: &Limits) -> Repair {
        let mut seen = HashSet::new();
        let multi = declared.iter().filter(|cs| is_multi_byte(cs));
        let single = declared.iter().filter(|cs| is_single_byte(cs));
        let candidates = multi
            .chain(single)
            .map(|cs| eight_bit_name(cs))
            .chain(["gb18030", "shift_jis", "big5", "euc-kr", "windows-1252"])
            .filter(|cs| seen.insert(*cs))
            .map(str::to_owned)
            .collect();
        Repair {
            candidates,
            words_left: Cell::new(limits.max_encoded_words),
            capped: Cell::new(false),
        }
    }

    /// Takes one encoded word from the budget; `false` when none is left.
    fn take_word(&self) -> bool {
        match self.words_left.get() {
            0 => {
                self.capped.set(true);
                false
            }
            n => {
                self.words_left.set(n - 1);
                true
            }
        }
    }

    /// Decodes 8-bit bytes with the first candidate that needs no replacement
    /// character: a multi-byte `label` (an encoded word's own) before the others.
    fn decode_8bit(&self, bytes: &[u8], label: Option<&str>) -> Option<String> {
        let label = label.map(eight_bit_name).filter(|cs| is_multi_byte(cs));
        let others = self.candidates.iter().map(String::as_str);
        for cs in label
            .into_iter()
            .chain(others.filter(|cs| Some(*cs) != label))
        {
            if let Some(decode) =
                mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes())
            {
                let text = decode(bytes);
                if !text.contains('\u{FFFD}') {
                    return Some(text);
                }
            }
        }
        None
    }
}

/// A header value that mail-parser could only decode with replacement characters: raw
/// 8-bit bytes in an undeclared charset, or an encoded word whose label is wrong. Tries
/// the candidates of [`Repair`]; keeps mail-parser's text when nothing does better.
fn repair_text(decoded: &str, raw: Option<&[u8]>, repair: &Repair) -> String {
    if !decoded.contains('\u{FFFD}') {
        return decoded.to_owned();
    }
    let Some(raw) = raw else {
        return decoded.to_owned();
    };
    let text = if std::str::from_utf8(raw).is_err() {
        match repair.decode_8bit(raw, None) {
            Some(t) => t,
            None => return decoded.to_owned(),
        }
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    let repaired = decode_encoded_words(&text, repair);
    if repaired.contains('\u{FFFD}') {
        decoded.to_owned()
    } else {
        repaired.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Decodes `=?charset?B|Q?text?=` words, trying other charsets when the label is wrong;
/// past the budget of [`Repair`] the rest is left as written. One pass: each attempt
/// reads only up to the third `?` after its `=?`.
fn decode_encoded_words(text: &str, repair: &Repair) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let Some((word, len)) = encoded_word(&rest[start..], repair) else {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            last_was_word = false;
            continue;
        };
        let between = &rest[..start];
        // Whitespace between two encoded words is not part of the text (RFC 2047 6.2).
        if !(last_was_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        out.push_str(&word);
        rest = &rest[start + len..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

/// The encoded word at the start of `s` and its length. Neither charset, encoding nor
/// encoded text may hold a `?` (RFC 2047 section 2), so each is read up to the next one.
fn encoded_word(s: &str, repair: &Repair) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (enc, inner) = inner.split_once('?')?;
    if !matches!(enc, "B" | "b" | "Q" | "q") {
        return None;
    }
    let end = inner.find('?')?;
    if inner.as_bytes().get(end + 1) != Some(&b'=') {
        return None;
    }
    let data = &inner[..end];
    let len = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    if !repair.take_word() {
        return None;
    }
    let bytes = match enc {
        "B" | "b" => mail_parser::decoders::base64::base64_decode(data.as_bytes())?,
        _ => {
            let mut out = Vec::new();
            let b = data.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'_' => out.push(b' '),
                    b'=' if i + 2 < b.len() => {
                        let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    c => out.push(c),
                }
                i += 1;
            }
            out
        }
    };
    let charset = charset
        .split('*')
        .next()
        .unwrap_or(charset)
        .to_ascii_lowercase();
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) if charset.starts_with("utf") || t.is_ascii() => t.to_owned(),
        _ => {
            // A 7-bit charset label on 8-bit bytes is a lie: try the others.
            let label_lies = charset.starts_with("iso-2022") && bytes.iter().any(|b| *b >= 0x80);
            let first = mail_parser::decoders::charsets::map::charset_decoder(charset.as_bytes())
                .filter(|_| !label_lies)
                .map(|d| d(&bytes))
                .filter(|t| !t.contains('\u{FFFD}'));
            first.or_else(|| repair.decode_8bit(&bytes, Some(&charset)))?
        }
    };
    Some((text, len))
}

/// Fixes what mail-parser made of a broken From header: a display name with replacement
/// characters (wrong or missing charset), an RFC 5322 comment in the name, and addresses
/// that are not addresses (empty local part, spaces, trailing `>`).
fn repair_person(p: Person, raw: Option<&[u8]>, repair: &Repair) -> Option<Person> {
    let mut name = p.name;
    if let Some(n) = &name {
        if n.contains('\u{FFFD}') {
            let repaired = repair_text(n, raw, repair);
            // The repaired text is the whole From value: keep the part before the address.
            let display = repaired
                .split('<')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .trim()
                .to_owned();
            if !display.is_empty() && !display.contains('\u{FFFD}') {
                name = Some(display);
            }
        }
    }
    // `MAILER-DAEMON (Mail Delivery System)`: the comment is not part of the name.
    if let Some(n) = &name {
        if let Some(open) = n.find(" (") {
            if n.ends_with(')') && open > 0 {
                name = Some(n[..open].trim().to_owned());
            }
        }
    }
    let address = p.address;
    let (local, domain) = address.rsplit_once('@')?;
    let domain = domain.trim_end_matches(['>', ',', ';', '.']).to_owned();
    let quoted = local.starts_with('"') && local.ends_with('"') && local.len() >= 2;
    if local.is_empty() || (local.contains('"') && !quoted) {
        // `=?utf-8?Q?attacker?Q?agent?=@victim.example` or `"A B"@example.com>`:
        // mail-parser took part of the local part for a display name. Read the address
        // from the raw header instead.
        return raw.and_then(person_from_raw);
    }
    if !quoted && local.contains(char::is_whitespace) {
        // `From: Test test@example.com`: the last word is the address, the words before
        // it (as written, not lower-cased) the name.
        let (_, last) = local.rsplit_once(char::is_whitespace)?;
        let written = raw.map(String::from_utf8_lossy).unwrap_or_default();
        let before: Vec<&str> = written
            .split_whitespace()
            .take_while(|w| !w.contains('@'))
            .collect();
        let words = before.join(" ");
        return Some(Person {
            address: format!("{last}@{domain}"),
            name: name
                .filter(|n| !n.eq_ignore_ascii_case(&words))
                .or_else(|| Some(words).filter(|w| !w.is_empty())),
        });
    }
    (!domain.is_empty()).then(|| Person {
        address: format!("{local}@{domain}"),
        name,
    })
}

/// The sender read straight from the raw From value, for headers mail-parser could not
/// make sense of: the `<…>` part if there is one, else the word holding `@` (an encoded
/// word in the local part is decoded as text: never a different domain).
fn person_from_raw(raw: &[u8]) -> Option<Person> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    if let (Some(open), Some(close)) = (text.rfind('<'), text.rfind('>')) {
        if open < close {
            let addr = text[open + 1..close].trim().to_ascii_lowercase();
            let (local, domain) = addr.rsplit_once('@')?;
            return (!local.is_empty() && domain.contains('.')).then(|| Person {
                address: addr.clone(),
                name: None,
            });
        }
    }
    if let Some(at) = text.find("\"@") {
        // A quoted local part: `"Millions Lottery"@example.com`.
        let open = text[..at].rfind('"')?;
        let domain: String = text[at + 2..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !matches!(c, '>' | ',' | ';'))
            .collect();
        return (open < at && domain.contains('.')).then(|| Person {
            address: format!("{}@{}", &text[open..=at], domain).to_ascii_lowercase(),
            name: None,
        });
    }
    let word = text
        .split_whitespace()
        .find(|w| w.contains('@'))?
        .trim_matches(['<', '>', ',', ';']);
    let (local, domain) = word.rsplit_once('@')?;
    let local = match local.strip_prefix("=?").and_then(|l| l.strip_suffix("?=")) {
        // `=?charset?Q?text?=` as a local part: keep its text, drop the wrapper.
        Some(inner) => inner.splitn(3, '?').nth(2).unwrap_or(inner).to_owned(),
        None => local.to_owned(),
    };
    (!local.is_empty() && domain.contains('.')).then(|| Person {
        address: format!("{local}@{domain}").to_ascii_lowercase(),
        name: None,
    })
}

fn person(addr: &mail_parser::Addr<'_>) -> Option<Person> {
    let address = addr.address()?.trim().to_ascii_lowercase();
    if !address.contains('@') {
        return None;
    }
    let name = addr
        .name()
        .map(|n| n.trim().trim_matches('"').trim().to_owned())
        .filter(|n| !n.is_empty());
    Some(Person { address, name })
}

fn first_person(addr: Option<&Address<'_>>) -> Option<Person> {
    addr?.iter().find_map(person)
}

fn people(addr: Option<&Address<'_>>) -> Vec<Person> {
    addr.map(|a| a.iter().filter_map(person).map(Person::cleaned).collect())
        .unwrap_or_default()
}

fn id_list(value: &HeaderValue<'_>) -> Vec<MessageId> {
    let ids: Vec<MessageId> = match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(list) => list.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    };
    ids.into_iter()
        .filter(|id| !id.as_str().is_empty())
        .collect()
}

fn text_header(msg: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    msg.header_raw(name).map(one_line)
}

/// The readable text of a message ([`Parsed::text`], [`Parsed::reply_text`]).
struct Body {
    text: String,
    /// The text came from HTML.
    html_only: bool,
    reply_text: Option<String>,
    /// The HTML was flattened to `max_html_depth` first.
    flattened: bool,
}

/// The first readable text/plain body, else the first readable HTML body made into text.
fn body_text(msg: &mail_parser::Message<'_>, readable: &Readable, max_html_depth: usize) -> Body {
    let bodies = |ids: &[u32]| -> Vec<usize> {
        ids.iter()
            .filter(|id| readable.has(**id))
            .map(|id| *id as usize)
            .collect()
    };
    let plain = bodies(&msg.text_body)
        .into_iter()
        .find_map(|id| match &msg.parts.get(id)?.body {
            PartType::Text(t) => Some(t.to_string()),
            _ => None,
        });
    if let Some(text) = plain {
        return Body {
            text: normalize_newlines(&text),
            html_only: false,
            reply_text: None,
            flattened: false,
        };
    }
    let html = bodies(&msg.html_body)
        .into_iter()
        .find_map(|id| match &msg.parts.get(id)?.body {
            PartType::Html(h) => Some(h.as_ref()),
            _ => None,
        });
    let Some(html) = html else {
        return Body {
            text: String::new(),
            html_only: false,
            reply_text: None,
            flattened: false,
        };
    };
    let flat = crate::mail::html_quote::flatten(html, max_html_depth);
    let flattened = matches!(flat, Cow::Owned(_));
    let reply = crate::mail::html_quote::without_quotes(&flat, MAX_HTML_TO_TEXT);
    Body {
        text: html_to_text(&flat, max_html_depth),
        html_only: true,
        reply_text: reply.map(|h| html_to_text(&h, max_html_depth)),
        flattened,
    }
}

/// The attachments of `raw` with their bytes (for relaying to agents), each at most
/// `max_each` bytes and up to `max_total` bytes in all; attachments past the limits are
/// left out (the raw message keeps them).
pub fn attachment_contents(
    raw: &[u8],
    max_total: usize,
    max_each: usize,
) -> Vec<(Attachment, Vec<u8>)> {
    let start = header_start(raw).unwrap_or(0);
    let Some(msg) = MessageParser::default().parse(&raw[start..]) else {
        return Vec::new();
    };
    let mut total = 0;
    let mut out = Vec::new();
    for part in msg.attachments() {
        let bytes = part.contents();
        if bytes.len() > max_each || total + bytes.len() > max_total {
            continue;
        }
        total += bytes.len();
        let content_type = part
            .content_type()
            .map(|ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub),
                None => ct.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_owned())
            .to_ascii_lowercase();
        out.push((
            Attachment {
                filename: part.attachment_name().map(str::to_owned),
                content_type,
                size: bytes.len(),
            },
            bytes.to_vec(),
        ));
    }
    out
}

/// Text from HTML for people to read; falls back to dropping tags when html2text fails.
/// HTML nested deeper than `max_depth` elements is flattened first
/// (`html_quote::flatten`: html2text takes time quadratic in the depth). The flattening
/// is a scanner's estimate of the parser's tree, so the tree html5ever builds is measured
/// too, before html2text lays it out: deeper than twice `max_depth`, or tables nested
/// deeper than twice `html_quote::MAX_LAYOUT_DEPTH`, and the tags are dropped instead.
pub fn html_to_text(html: &str, max_depth: usize) -> String {
    use crate::mail::html_quote::{flatten, strip_tags};
    if html.len() > MAX_HTML_TO_TEXT {
        return normalize_newlines(&strip_tags(html));
    }
    let html = flatten(html, max_depth);
    match laid_out(&html, max_depth) {
        Ok(text) => normalize_newlines(&text),
        Err(_) => normalize_newlines(&strip_tags(&html)),
    }
}

/// html2text's text of `html`, when the tree html5ever builds of it is within the depths
/// of [`html_to_text`].
fn laid_out(html: &str, max_depth: usize) -> Result<String, html2text::Error> {
    let config = html2text::config::plain();
    let dom = config.parse_html(html.as_bytes())?;
    let (depth, tables) = tree_depth(&dom);
    if depth > 2 * max_depth + 8 || tables > 2 * crate::mail::html_quote::MAX_LAYOUT_DEPTH {
        return Err(html2text::Error::Fail);
    }
    let tree = config.dom_to_render_tree(&dom)?;
    config.render_to_string(tree, 100)
}

/// The depth of the deepest node of `dom`, and the most `table` elements on one path
/// from the root. Iterative: the tree may be as deep as the input is long.
fn tree_depth(dom: &html2text::RcDom) -> (usize, usize) {
    let mut deepest = (0, 0);
    let mut stack = vec![(dom.document.clone(), 0usize, 0usize)];
    while let Some((node, depth, tables)) = stack.pop() {
        let tables = match &node.data {
            html2text::Element { name, .. } if &*name.local == "table" => tables + 1,
            _ => tables,
        };
        deepest = (deepest.0.max(depth), deepest.1.max(tables));
        if let html2text::Element {
            template_contents, ..
        } = &node.data
        {
            if let Some(inner) = template_contents.borrow().as_ref() {
                stack.push((inner.clone(), depth + 1, tables));
            }
        }
        for child in node.children.borrow().iter() {
            stack.push((child.clone(), depth + 1, tables));
        }
    }
    deepest
}

fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").trim_end().to_owned()
}

/// Reads the machine-readable part of a report: RFC 3464 delivery status (also inside a
/// `multipart/mixed`, as some gateways wrap it), RFC 5965 feedback (ARF), RFC 8098
/// disposition (MDN), and the Message-ID of the message it returns (`message/rfc822` or
/// `text/rfc822-headers`). `Some` for a `multipart/report`, for any message with one of
/// those machine parts, and for a message whose top level returns another message's
/// headers (`text/rfc822-headers`); a message merely carrying an attached `message/rfc822`
/// gets a report without a type (`returned` set) so that a bounce wrapped that way can
/// name what it returns. Parts of attached messages are not looked into: a human who
/// forwards a bounce as an attachment sends no report.
fn report(msg: &mail_parser::Message<'_>, max_parts: usize) -> Option<Report> {
    let ct = msg.root_part().content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    let mut report = Report {
        report_type: if is_report {
            ct.attribute("report-type")
                .unwrap_or("")
                .to_ascii_lowercase()
        } else {
            String::new()
        },
        ..Report::default()
    };
    let mut machine = None;
    for part in msg.parts.iter().take(max_parts) {
        let Some(pct) = part.content_type() else {
            continue;
        };
        let sub = pct.subtype().unwrap_or("").to_ascii_lowercase();
        let ctype = pct.ctype().to_ascii_lowercase();
        // mail-parser reads some `message/*` bodies as nested messages: their bytes then.
        let text = || match part.message() {
            Some(inner) if part.contents().is_empty() => {
                String::from_utf8_lossy(inner.raw_message()).into_owned()
            }
            _ => String::from_utf8_lossy(part.contents()).into_owned(),
        };
        match (ctype.as_str(), sub.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                machine.get_or_insert("delivery-status");
                read_delivery_status(&text(), &mut report);
                if report.recipients.is_empty() {
                    if let Some(inner) = part.message() {
                        let raw = String::from_utf8_lossy(inner.raw_message()).into_owned();
                        read_delivery_status(&raw, &mut report);
                    }
                }
            }
            ("message", "feedback-report") => {
                machine.get_or_insert("feedback-report");
                read_delivery_status(&text(), &mut report);
            }
            ("message", "disposition-notification" | "global-disposition-notification") => {
                machine.get_or_insert("disposition-notification");
                read_delivery_status(&text(), &mut report);
            }
            ("message", "rfc822" | "global") => {
                report.returned = true;
                if report.original_message_id.is_none() {
                    if let Some(inner) = part.message() {
                        report.original_message_id = inner.message_id().map(MessageId::new);
                    }
                }
            }
            ("text", "rfc822-headers" | "global-headers") => {
                report.returned = true;
                if report.original_message_id.is_none() {
                    report.original_message_id =
                        header_in_text(&text(), "message-id").map(|v| MessageId::new(&v));
                }
            }
            _ => {}
        }
    }
    if report.report_type.is_empty() {
        if let Some(kind) = machine {
            report.report_type = kind.to_owned();
        }
    }
    (is_report || machine.is_some() || report.returned).then_some(report)
}

fn read_delivery_status(text: &str, report: &mut Report) {
    let mut seen: HashSet<String> = report.recipients.iter().cloned().collect();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "final-recipient" | "original-recipient" | "original-rcpt-to" => {
                let addr = value
                    .split_once(';')
                    .map_or(value, |(_, a)| a)
                    .trim()
                    .trim_matches(['<', '>'])
                    .to_ascii_lowercase();
                if addr.contains('@')
                    && report.recipients.len() < MAX_REPORT_RECIPIENTS
                    && seen.insert(addr.clone())
                {
                    report.recipients.push(without_controls(&addr).into_owned());
                }
            }
            // `Status: 5.1.1 (bad destination mailbox address)`: the code.
            "status" if report.status.is_none() => {
                report.status = value.split_whitespace().next().map(str::to_owned)
            }
            "action" if report.action.is_none() => report.action = Some(value.to_ascii_lowercase()),
            "diagnostic-code" if report.diagnostic.is_none() => {
                report.diagnostic = Some(without_controls(value).into_owned())
            }
            "feedback-type" if report.feedback_type.is_none() => {
                report.feedback_type = Some(value.to_ascii_lowercase())
            }
            "disposition" if report.disposition.is_none() => {
                report.disposition = Some(without_controls(value).into_owned())
            }
            _ => {}
        }
    }
}

/// The value of header `name` in a plain header block, unfolded.
pub fn header_in_text(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        if n.trim().eq_ignore_ascii_case(name) {
            let mut value = v.trim().to_owned();
            while let Some(next) = lines.peek() {
                if next.starts_with([' ', '\t']) {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                } else {
                    break;
                }
            }
            return Some(value);
        }
    }
    None
}

/// True when `text` holds Chinese (Han) characters: such a customer gets zh-CN templates.
pub fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(c as u32,
            0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn plain_message() {
        let raw = b"From: \"Alice Martin\" <Alice@Customer.TEST>\r\nTo: support@example.test\r\nSubject: Printer  offline\r\nMessage-ID: <a1@customer.test>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nHello,\r\nthe printer is offline.\r\n";
        let p = message(raw, &limits()).unwrap();
        assert_eq!(p.message_id.as_str(), "a1@customer.test");
        let from = p.from.unwrap();
        assert_eq!(from.address, "alice@customer.test");
        assert_eq!(from.name.as_deref(), Some("Alice Martin"));
        assert_eq!(p.subject, "Printer offline");
        assert_eq!(p.text, "Hello,\nthe printer is offline.");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn gbk_subject_and_body_are_decoded() {
        let mut raw = b"From: =?GBK?B?1cXOsA==?= <zhang@customer.test>\r\nSubject: =?GBK?B?tPLTobv6zt63qMGsvdM=?=\r\nMessage-ID: <g1@customer.test>\r\nContent-Type: text/plain; charset=GBK\r\nContent-Transfer-Encoding: 8bit\r\n\r\n".to_vec();
        // "你好，打印机坏了" in GBK
        raw.extend_from_slice(&[
            0xC4, 0xE3, 0xBA, 0xC3, 0xA3, 0xAC, 0xB4, 0xF2, 0xD3, 0xA1, 0xBB, 0xFA, 0xBB, 0xB5,
            0xC1, 0xCB,
        ]);
        let p = message(&raw, &limits()).unwrap();
        assert_eq!(p.subject, "打印机无法连接");
        assert_eq!(p.text, "你好，打印机坏了");
        assert_eq!(p.from.unwrap().name.as_deref(), Some("张伟"));
        assert!(has_cjk(&p.subject));
    }

    #[test]
    fn html_only_gives_text() {
        let raw = b"From: a@customer.test\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Hello <b>there</b></p><p>Line two</p></body></html>";
        let p = message(raw, &limits()).unwrap();
        assert!(p.text.contains("Hello"), "{}", p.text);
        assert!(p.text.contains("Line two"), "{}", p.text);
        assert!(!p.text.contains("<p>"));
        assert!(p.warnings.contains(&ParseWarning::HtmlOnly));
        assert_eq!(p.reply_text, None, "no quote in it");
    }

    #[test]
    fn html_only_reply_has_reply_text_without_the_quote() {
        let html = "<div dir=\"ltr\">See <a href=\"https://kb.example.test/1\">the guide</a>.</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Wed, Nov 25, 2026 at 10:00 AM Jane &lt;<a href=\"mailto:support@example.test\">support@example.test</a>&gt; wrote:<br></div><blockquote class=\"gmail_quote\">-- reply above this line --<br>Requester: Jane</blockquote></div>";
        let raw = format!("From: a@example.test\r\nSubject: Re: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}");
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert!(
            p.text.contains("> -- reply above this line --"),
            "{}",
            p.text
        );
        let reply = p.reply_text.expect("a quote was removed");
        assert!(reply.starts_with("See [the guide][1]."), "{reply}");
        assert!(reply.contains("https://kb.example.test/1"), "{reply}");
        assert!(
            !reply.contains("reply above") && !reply.contains("wrote:"),
            "{reply}"
        );

        let both = format!("From: a@example.test\r\nSubject: Re: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the guide.\r\n--b\r\nContent-Type: text/html\r\n\r\n{html}\r\n--b--\r\n");
        let p = message(both.as_bytes(), &limits()).unwrap();
        assert_eq!((p.text.as_str(), p.reply_text), ("See the guide.", None));
    }

    #[test]
    fn missing_message_id_gets_stable_synthetic_one() {
        let a = b"Return-Path: <x@y>\r\nFrom: a@customer.test\r\nSubject: x\r\n\r\nbody";
        let b =
            b"Delivered-To: other@example.test\r\nFrom: a@customer.test\r\nSubject: x\r\n\r\nbody";
        let pa = message(a, &limits()).unwrap();
        let pb = message(b, &limits()).unwrap();
        assert!(pa.message_id.as_str().ends_with(SYNTHETIC_DOMAIN));
        assert_eq!(pa.message_id, pb.message_id);
        assert!(pa.warnings.contains(&ParseWarning::MissingMessageId));
    }

    #[test]
    fn unusable_input() {
        assert_eq!(message(b"", &limits()), Err(Unusable::Empty));
        assert_eq!(message(b"  \r\n", &limits()), Err(Unusable::Empty));
        assert_eq!(
            message(b"this is not a mail at all\r\njust text\r\n", &limits()),
            Err(Unusable::NoHeaders)
        );
        assert_eq!(
            message(&[0u8, 159, 146, 150, 10, 13], &limits()),
            Err(Unusable::NoHeaders)
        );
        assert!(matches!(
            message(
                b"From: a@b\r\n\r\nxxxx",
                &Limits {
                    max_message_bytes: 5,
                    ..limits()
                }
            ),
            Err(Unusable::TooLarge { .. })
        ));
    }

    #[test]
    fn broken_from_headers_are_repaired() {
        let cases: &[(&[u8], &str, Option<&str>)] = &[
            (b"From: Test test@example.com\r\n\r\nx", "test@example.com", Some("Test")),
            (
                b"From: =?utf-8?Q?attacker?Q?agent?=@victim.example\r\n\r\nx",
                "attacker?q?agent@victim.example",
                None,
            ),
            (
                b"From: \"Millions Lottery Spain transfer\"@example.com>\r\n\r\nx",
                "\"millions lottery spain transfer\"@example.com",
                None,
            ),
            (
                b"From: MAILER-DAEMON (Mail Delivery System) <postmaster@example.com>\r\n\r\nx",
                "postmaster@example.com",
                Some("MAILER-DAEMON"),
            ),
            (
                b"From: =?ISO-2022-JP?B?g2OBW4OLIEVYQU1QTEU=?= <bar@example.org>\r\nContent-Type: text/html; charset=iso-2022-jp\r\n\r\nx",
                "bar@example.org",
                Some("ツール EXAMPLE"),
            ),
        ];
        for (raw, address, name) in cases {
            let p = message(raw, &limits()).unwrap();
            let from = p.from.expect("a sender");
            assert_eq!(from.address, *address, "{}", String::from_utf8_lossy(raw));
            assert_eq!(
                from.name.as_deref(),
                *name,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn raw_8bit_subject_in_a_declared_charset() {
        // "ツール" in Shift_JIS, raw in the header; the body says ISO-2022-JP.
        let mut raw = b"From: a@example.org\r\nSubject: ".to_vec();
        raw.extend_from_slice(&[0x83, 0x63, 0x81, 0x5B, 0x83, 0x8B]);
        raw.extend_from_slice(b"\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\nx");
        assert_eq!(message(&raw, &limits()).unwrap().subject, "ツール");
        // "打印机" in GB2312, raw, in a message whose nested part declares gb2312.
        let mut raw = b"From: a@example.org\r\nSubject: ".to_vec();
        raw.extend_from_slice(&[0xB4, 0xF2, 0xD3, 0xA1, 0xBB, 0xFA]);
        raw.extend_from_slice(b"\r\nContent-Type: text/plain; charset=gb2312\r\n\r\nx");
        assert_eq!(message(&raw, &limits()).unwrap().subject, "打印机");
    }

    #[test]
    fn a_stray_first_line_before_the_headers_is_skipped() {
        let raw =
            b"---- Original email message ----\r\nFrom: a@example.org\r\nSubject: hi\r\n\r\nbody";
        let p = message(raw, &limits()).unwrap();
        assert_eq!(p.subject, "hi");
        assert_eq!(
            message(b"hello there\r\njust text\r\n", &limits()),
            Err(Unusable::NoHeaders)
        );
    }

    #[test]
    fn authentication_results_keep_their_order() {
        let raw = b"Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\nAuthentication-Results: other.test;\r\n\tdkim=fail\r\nFrom: a@example.test\r\n\r\nx";
        let p = message(raw, &limits()).unwrap();
        let values: Vec<&str> = p.auth_results.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(
            values,
            [
                "mx.example.test; dkim=pass header.d=example.test",
                "other.test; dkim=fail"
            ]
        );
        assert!(p.auth_results.iter().all(|h| h.received_above.is_empty()));
    }

    #[test]
    fn authentication_results_know_the_received_lines_above_them() {
        let raw = b"Received: from mx.example.test (mx.example.test [192.0.2.1])\r\n\tby IMAP.example.test (Dovecot) with LMTP id abc; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n\
Received: from by.evil.test (helo (nested) by fake.test) by mx.example.test. (Postfix) with ESMTPS\r\n\
Received: (qmail 123 invoked by uid 89); 1 Jan 2024\r\n\
Authentication-Results: mx.example.test; dkim=pass header.d=example.test\r\n\
From: a@example.test\r\n\r\nx";
        let p = message(raw, &limits()).unwrap();
        let above: Vec<&[String]> = p
            .auth_results
            .iter()
            .map(|h| h.received_above.as_slice())
            .collect();
        assert_eq!(
            above,
            [
                &["imap.example.test".to_owned()][..],
                &[
                    "imap.example.test".to_owned(),
                    "mx.example.test.".to_owned(),
                    String::new()
                ][..],
            ]
        );
    }

    #[test]
    fn received_lines_past_the_limit_are_one_unknown_host() {
        let mut raw = String::new();
        for i in 0..MAX_RECEIVED + 5 {
            raw.push_str(&format!(
                "Received: from a by hop{i}.example.test; date\r\n"
            ));
        }
        raw.push_str("Authentication-Results: mx.example.test; none\r\nFrom: a@b.test\r\n\r\nx");
        let p = message(raw.as_bytes(), &limits()).unwrap();
        let above = &p.auth_results[0].received_above;
        assert_eq!(above.len(), MAX_RECEIVED + 1);
        assert_eq!(above[0], "hop0.example.test");
        assert_eq!(
            above[MAX_RECEIVED - 1],
            format!("hop{}.example.test", MAX_RECEIVED - 1)
        );
        assert_eq!(above[MAX_RECEIVED], "");
    }

    #[test]
    fn received_by_reads_the_by_clause() {
        for (value, want) in [
            ("from a.test (a.test [192.0.2.1]) by MX.Example.Test (Postfix) with ESMTP id X; date", "mx.example.test"),
            ("by mx.example.test with LMTP", "mx.example.test"),
            ("from by (helo=by) by real.test", "real.test"),
            ("from a.test (comment \\) by fake.test) by real.test", "real.test"),
            ("(qmail 1 invoked by uid 89); date", ""),
            ("from a.test; by late.test", ""),
            ("", ""),
            ("by", ""),
        ] {
            assert_eq!(received_by(value), want, "{value}");
        }
        let host = "a".repeat(MAX_HOST_LEN);
        assert_eq!(received_by(&format!("by {host}")), host);
        assert_eq!(received_by(&format!("by {host}a")), "");
    }

    #[test]
    fn references_keep_order_without_brackets() {
        let raw = b"From: a@customer.test\r\nIn-Reply-To: <2@x>\r\nReferences: <0@x> <1@x>\r\n <2@x>\r\n\r\nhi";
        let p = message(raw, &limits()).unwrap();
        assert_eq!(p.in_reply_to, vec![MessageId::new("2@x")]);
        let refs: Vec<&str> = p.referenced_ids().iter().map(|m| m.as_str()).collect();
        assert_eq!(refs, ["2@x", "1@x", "0@x"]);
    }

    proptest::proptest! {
        /// Strangers' bytes never panic the parser (raw junk, and junk behind headers).
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2000)) {
            let _ = message(&bytes, &limits());
            let mut with_headers = b"From: a@b.test\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n".to_vec();
            with_headers.extend_from_slice(&bytes);
            let _ = message(&with_headers, &limits());
        }
    }

    #[test]
    fn control_characters_never_reach_names_subjects_or_headers() {
        // "Evil\r\nBcc: victim@x.test" and "hi\x1b[31m red\r\n" as encoded words.
        let raw = b"From: =?utf-8?B?RXZpbA0KQmNjOiB2aWN0aW1AeC50ZXN0?= <a@customer.test>\r\n\
To: =?utf-8?Q?Sup=0Aport=07?= <support@example.test>, =?utf-8?Q?B=C2=85ob?= <b@x.test>\r\n\
Cc: =?utf-8?Q?Carol=E2=80=A8?= <c@x.test>\r\n\
Reply-To: =?utf-8?Q?R=7F=09x?= <r@x.test>\r\n\
Subject: =?utf-8?Q?hi=1B[31m_red=0D=0A?= there\r\n\
X-Note: =?utf-8?Q?a=00b?=\r\n\
Message-ID: <id=?utf-8?Q?=0D?=@x.test>\r\n\r\nbody";
        let p = message(raw, &limits()).unwrap();
        let from = p.from.as_ref().unwrap();
        assert_eq!(from.name.as_deref(), Some("Evil Bcc: victim@x.test"));
        let names: Vec<Option<&str>> =
            p.to.iter()
                .chain(&p.cc)
                .chain(&p.reply_to)
                .map(|p| p.name.as_deref())
                .collect();
        assert_eq!(
            names,
            [Some("Sup port"), Some("B ob"), Some("Carol"), Some("R x")]
        );
        assert_eq!(p.subject, "hi [31m red there");
        let texts = p
            .headers
            .iter()
            .flat_map(|(n, v)| [n.as_str(), v.as_str()])
            .chain([p.subject.as_str(), p.message_id.as_str()]);
        for text in texts {
            assert!(!text.contains(is_control), "{text:?}");
        }
    }

    #[test]
    fn without_controls_and_one_line() {
        for (input, want) in [
            ("plain", "plain"),
            ("a\tb", "a b"),
            ("a\r\nb", "a  b"),
            ("\u{1b}[2J", " [2J"),
            ("x\u{7f}\u{85}\u{9b}y", "x   y"),
            ("line\u{2028}sep\u{2029}", "line sep "),
            ("中文 ok", "中文 ok"),
        ] {
            assert_eq!(without_controls(input), want, "{input:?}");
        }
        assert!(matches!(without_controls("fine"), Cow::Borrowed(_)));
        assert_eq!(one_line("  a\r\n\t b\u{0}c  "), "a b c");
    }

    #[test]
    fn a_header_section_over_the_limit_is_unusable() {
        let raw = format!(
            "From: a@b.test\r\nSubject: {}\r\n\r\nbody",
            "a".repeat(1 << 20)
        );
        assert_eq!(
            message(raw.as_bytes(), &limits()),
            Err(Unusable::HeadersTooLarge {
                size: raw.len() - "\r\nbody".len(),
                limit: limits().max_header_bytes
            })
        );
        let small = Limits {
            max_header_bytes: 40,
            ..limits()
        };
        let raw = b"From: a@b.test\r\nSubject: twenty-six bytes\r\n\r\nbody";
        assert_eq!(header_section_len(raw), 43);
        assert!(matches!(
            message(raw, &small),
            Err(Unusable::HeadersTooLarge {
                size: 43,
                limit: 40
            })
        ));
        let raw = b"From: a@b.test\nSubject: x\n\nbody with\n\na blank line";
        assert_eq!(header_section_len(raw), 26);
        assert!(raw.len() > 40);
        assert!(message(raw, &small).is_ok());
        assert_eq!(header_section_len(b"From: a@b.test"), 14);
    }

    /// `depth` multiparts nested in each other, text at the bottom.
    fn nested_multipart(depth: usize) -> String {
        let mut s =
            "From: a@b.test\r\nSubject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
                .to_owned();
        for i in 0..depth {
            s.push_str(&format!(
                "--b{i}\r\nContent-Type: multipart/mixed; boundary=b{}\r\n\r\n",
                i + 1
            ));
        }
        s.push_str(&format!(
            "--b{depth}\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n"
        ));
        for i in (0..=depth).rev() {
            s.push_str(&format!("--b{i}--\r\n"));
        }
        s
    }

    #[test]
    fn mime_parts_deeper_than_the_limit_are_not_read() {
        let shallow = Limits {
            max_mime_depth: 5,
            ..limits()
        };
        // The text part sits at depth `depth + 1`.
        let p = message(nested_multipart(4).as_bytes(), &shallow).unwrap();
        assert_eq!(p.text, "deep text");
        assert!(!p.warnings.contains(&ParseWarning::MimeTooDeep));
        let p = message(nested_multipart(5).as_bytes(), &shallow).unwrap();
        assert_eq!(p.text, "");
        assert!(p.warnings.contains(&ParseWarning::MimeTooDeep));
        // 2,000 levels: no stack overflow, nothing below the default depth read.
        let p = message(nested_multipart(2000).as_bytes(), &limits()).unwrap();
        assert_eq!((p.text.as_str(), p.attachments.len()), ("", 0));
        assert!(p.warnings.contains(&ParseWarning::MimeTooDeep));
    }

    #[test]
    fn deeply_attached_messages_do_not_overflow_the_stack() {
        let mut raw =
            "From: a@b.test\r\nSubject: outer\r\nContent-Type: message/rfc822\r\n\r\n".to_owned();
        for _ in 0..2000 {
            raw.push_str("From: x@y.test\r\nContent-Type: message/rfc822\r\n\r\n");
        }
        raw.push_str("From: x@y.test\r\n\r\ninnermost\r\n");
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert_eq!(p.subject, "outer");
        assert!(p.attachments.len() <= 1, "{:?}", p.attachments);
    }

    #[test]
    fn parts_past_the_limit_are_not_read() {
        let mut raw =
            "From: a@b.test\r\nSubject: many\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
                .to_owned();
        for i in 0..50 {
            raw.push_str(&format!(
                "--b\r\nContent-Type: application/pdf; name=f{i}.pdf\r\n\r\nx\r\n"
            ));
        }
        raw.push_str("--b--\r\n");
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert_eq!(p.attachments.len(), 50);
        assert!(!p.warnings.contains(&ParseWarning::TooManyParts));
        let few = Limits {
            max_parts: 10,
            ..limits()
        };
        let p = message(raw.as_bytes(), &few).unwrap();
        // Part 0 is the multipart itself.
        assert_eq!(p.attachments.len(), 9);
        assert_eq!(p.attachments[8].filename.as_deref(), Some("f8.pdf"));
        assert!(p.warnings.contains(&ParseWarning::TooManyParts));
    }

    #[test]
    fn charset_repair_tries_a_bounded_list_made_once() {
        let mut raw = "From: a@b.test\r\nSubject: =?x-bad?B?gYGBgQ==?= =?x-bad?B?gYGBgQ==?=\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n".to_owned();
        for i in 0..10_000 {
            raw.push_str(&format!(
                "--b\r\nContent-Type: text/plain; charset=x-cs-{}\r\n\r\nx\r\n",
                i % 5000
            ));
        }
        raw.push_str("--b--\r\n");
        let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
        let declared = declared_charsets(&msg, &limits());
        assert_eq!(declared.len(), limits().max_charsets);
        assert_eq!(declared[..2], ["x-cs-0", "x-cs-1"]);
        let repair = Repair::new(&declared, &limits());
        assert_eq!(repair.candidates.len(), limits().max_charsets + 5);
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert!(!p.subject.is_empty());
        assert!(!p.warnings.contains(&ParseWarning::TooManyEncodedWords));
        // Declared twice, and the ISO-2022-JP label read as Shift_JIS: one candidate each.
        let repair = Repair::new(
            &[
                "gbk".into(),
                "iso-2022-jp".into(),
                "shift_jis".into(),
                "iso-8859-1".into(),
            ],
            &limits(),
        );
        assert_eq!(
            repair.candidates,
            [
                "gbk",
                "shift_jis",
                "iso-8859-1",
                "gb18030",
                "big5",
                "euc-kr",
                "windows-1252"
            ]
        );
    }

    #[test]
    fn encoded_words_past_the_limit_stay_as_written() {
        let two = Limits {
            max_encoded_words: 2,
            ..limits()
        };
        let repair = Repair::new(&[], &two);
        assert_eq!(
            decode_encoded_words("=?utf-8?Q?a?= =?utf-8?Q?b?= =?utf-8?Q?c?= d", &repair),
            "ab =?utf-8?Q?c?= d"
        );
        assert!(repair.capped.get());
        // A `?` ends the encoded text: no scan to a far `?=`.
        let repair = Repair::new(&[], &limits());
        assert_eq!(
            decode_encoded_words("=?a?B?x?y =?utf-8?B?aGk=?=", &repair),
            "=?a?B?x?y hi"
        );
        let mut raw = "From: a@b.test\r\nSubject:".to_owned();
        for _ in 0..10 {
            raw.push_str(" =?iso-2022-jp?B?g2OBW4OL?=");
        }
        raw.push_str("\r\n\r\nx");
        let p = message(raw.as_bytes(), &two).unwrap();
        assert!(p.warnings.contains(&ParseWarning::TooManyEncodedWords));
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert_eq!(p.subject, "ツール".repeat(10));
        assert!(!p.warnings.contains(&ParseWarning::TooManyEncodedWords));
    }

    #[test]
    fn the_parsers_tree_is_measured_before_html2text_lays_it_out() {
        let dom = |html: &str| {
            html2text::config::plain()
                .parse_html(html.as_bytes())
                .expect("parse")
        };
        // document > html > body > div > div > div
        assert_eq!(tree_depth(&dom("<div><div><div>x")), (6, 0));
        // html5ever adds the tbody: table > tbody > tr > td, three times.
        let tables = "<table><tr><td>".repeat(3);
        assert_eq!(tree_depth(&dom(&tables)).1, 3);
        // Where the scanner's estimate fell short, the tree is not laid out.
        let deep = |n: usize| format!("{}cell", "<table><tr><td>".repeat(n));
        assert!(laid_out(&deep(10), 256).is_ok());
        assert!(laid_out(&deep(40), 256).is_err(), "40 nested tables");
        assert!(laid_out(&"<div>".repeat(400), 256).is_ok());
        assert!(
            laid_out(&"<div>".repeat(400), 100).is_err(),
            "400 nested divs"
        );
    }

    #[test]
    fn deeply_nested_html_is_flattened_before_it_becomes_text() {
        let html = format!("{}deep text", "<div>".repeat(100_000));
        let raw = format!("From: a@b.test\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n{html}");
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert_eq!(p.text, "deep text");
        assert!(p.warnings.contains(&ParseWarning::HtmlFlattened));
    }

    #[test]
    fn references_and_bounce_recipients_are_capped() {
        let ids: String = (0..1000).map(|i| format!(" <{i}@x.test>")).collect();
        let raw = format!("From: a@b.test\r\nIn-Reply-To:{ids}\r\nReferences:{ids}\r\n\r\nx");
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert_eq!(p.references.len(), MAX_REFERENCES);
        assert_eq!(p.references[0].as_str(), "900@x.test");
        assert_eq!(p.references[MAX_REFERENCES - 1].as_str(), "999@x.test");
        assert_eq!(p.in_reply_to.len(), MAX_IN_REPLY_TO);
        assert_eq!(p.referenced_ids().len(), MAX_REFERENCES + MAX_IN_REPLY_TO);
        let mut report = Report::default();
        let lines: String = (0..MAX_REPORT_RECIPIENTS + 10)
            .map(|i| {
                format!(
                    "Final-Recipient: rfc822; r{}@x.test\n",
                    i % (MAX_REPORT_RECIPIENTS + 5)
                )
            })
            .collect();
        read_delivery_status(&lines, &mut report);
        assert_eq!(report.recipients.len(), MAX_REPORT_RECIPIENTS);
    }

    #[test]
    fn boundaries_that_never_come_are_not_searched_for() {
        let good = nested_multipart(3);
        assert!(matches!(
            without_lost_boundaries(good.as_bytes(), 1000),
            Cow::Borrowed(_)
        ));
        let mut raw = "From: a@b.test\r\nSubject: m\r\nContent-Type: multipart/mixed;\r\n boundary=\"b\"\r\n\r\n".to_owned();
        for i in 0..20 {
            raw.push_str(&format!(
                "--b\r\nContent-Type: multipart/mixed; boundary=missing{i}\r\n\r\nx\r\n"
            ));
        }
        raw.push_str("--b\r\nContent-Type: multipart/mixed; BOUNDARY*0=c\r\n\r\nx\r\n--b--\r\n");
        let seen = without_lost_boundaries(raw.as_bytes(), 1000);
        let seen = String::from_utf8_lossy(&seen);
        assert_eq!(seen.matches("boundar_=missing").count(), 20);
        assert_eq!(seen.matches("BOUNDAR_*0").count(), 1);
        assert_eq!(seen.matches("boundary=").count(), 1, "the one in use stays");
        assert_eq!(seen.len(), raw.len());
        let p = message(raw.as_bytes(), &limits()).unwrap();
        assert_eq!(p.attachments.len(), 21);
        // Past the first `max` declarations, none is read.
        let seen = without_lost_boundaries(good.as_bytes(), 2);
        assert_eq!(
            String::from_utf8_lossy(&seen).matches("boundar_=").count(),
            2
        );
    }

    #[test]
    fn reads_delivery_status_report() {
        let raw = b"From: MAILER-DAEMON@mx.example.test\r\nTo: support@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; nobody@bounce.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: X-Postfix; user unknown\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: support@example.test\r\nMessage-ID: <7.9.abc@helpdesk.example.test>\r\nSubject: [ACME #7] hi\r\n--B--\r\n";
        let p = message(raw, &limits()).unwrap();
        let r = p.report.expect("report");
        assert_eq!(r.report_type, "delivery-status");
        assert_eq!(r.recipients, vec!["nobody@bounce.test".to_owned()]);
        assert_eq!(r.status.as_deref(), Some("5.1.1"));
        assert_eq!(r.action.as_deref(), Some("failed"));
        assert_eq!(
            r.original_message_id,
            Some(MessageId::new("7.9.abc@helpdesk.example.test"))
        );
    }
}
