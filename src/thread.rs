//! Decides which ticket an incoming message belongs to (DESIGN.md invariant 4).
//!
//! In: a parsed message and read-only lookups ([`Lookup`]). Out: a [`Placement`].
//! - Never writes; `workflow` applies the placement inside the ingest transaction.
//! - Order: one of our signed Message-IDs in In-Reply-To/References → that ticket, whoever
//!   sent it (only someone who received our mail can know it). Then a reference to any
//!   other message stored on a ticket, or the subject tag `[ACME #42]`, joins only when the
//!   sender is a participant of that ticket (requester, Cc'd address, agent).
//! - A stranger quoting `[ACME #42]` gets `New { linked_to: Some(42) }`, never `Existing`.
//! - Signed Message-IDs are `<{ticket}.{message}.{mac}@{hostname}>`, the mac a truncated
//!   HMAC-SHA256 over ticket and message ids with the instance key.

use std::io::Write as _;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::model::{MessageId, MessageRowId, TicketId};
use crate::parse::Parsed;

/// Hex digits of the HMAC kept in a Message-ID: 64 bits, far beyond guessing by mail.
const MAC_HEX_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read instance key {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create instance key {path}")]
    Create {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("instance key {path} is too short (at least 32 bytes of hex or text)")]
    TooShort { path: String },
}

/// The instance secret that signs our Message-IDs. `Debug` never shows it.
#[derive(Clone)]
pub struct InstanceKey(Vec<u8>);

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceKey(..)")
    }
}

impl InstanceKey {
    pub fn from_bytes(bytes: &[u8]) -> InstanceKey {
        InstanceKey(bytes.to_vec())
    }

    /// Reads the key at `path`, or creates it (32 random bytes as hex, mode 0600) when it
    /// does not exist yet.
    pub fn load_or_create(path: &Path) -> Result<InstanceKey, KeyError> {
        let shown = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let text = text.trim();
                if text.len() < 32 {
                    return Err(KeyError::TooShort { path: shown });
                }
                Ok(InstanceKey(text.as_bytes().to_vec()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
                let text = hex::encode(bytes);
                let create = || -> std::io::Result<()> {
                    use std::os::unix::fs::OpenOptionsExt;
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(path)?;
                    f.write_all(text.as_bytes())?;
                    f.write_all(b"\n")?;
                    f.sync_all()
                };
                match create() {
                    Ok(()) => Ok(InstanceKey(text.into_bytes())),
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        InstanceKey::load_or_create(path)
                    }
                    Err(source) => Err(KeyError::Create {
                        path: shown,
                        source,
                    }),
                }
            }
            Err(source) => Err(KeyError::Read {
                path: shown,
                source,
            }),
        }
    }

    /// The key's bytes, for the other macs made with it (survey links).
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(&self, ticket: TicketId, message: MessageRowId) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(format!("{}.{}", ticket.get(), message.get()).as_bytes());
        let out = mac.finalize().into_bytes();
        hex::encode(out)[..MAC_HEX_LEN].to_owned()
    }

    /// Our Message-ID for outgoing message `message` on `ticket`.
    pub fn message_id(&self, hostname: &str, ticket: TicketId, message: MessageRowId) -> MessageId {
        MessageId::new(&format!(
            "{}.{}.{}@{hostname}",
            ticket.get(),
            message.get(),
            self.mac(ticket, message)
        ))
    }

    /// The ticket and message a Message-ID of ours names, when its mac is right. The
    /// domain is not checked, so that renaming the host keeps old threads working.
    pub fn verify(&self, id: &MessageId) -> Option<(TicketId, MessageRowId)> {
        let (local, _domain) = id.as_str().rsplit_once('@')?;
        let mut parts = local.split('.');
        let ticket: i64 = parts.next()?.parse().ok()?;
        let message: i64 = parts.next()?.parse().ok()?;
        let mac = parts.next()?;
        if parts.next().is_some() || ticket <= 0 || message <= 0 {
            return None;
        }
        let (ticket, message) = (TicketId::new(ticket), MessageRowId::new(message));
        let want = self.mac(ticket, message);
        // Constant-time comparison: the mac is a secret-derived value.
        let same = want.len() == mac.len()
            && want
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()))
                == 0;
        same.then_some((ticket, message))
    }
}

/// Finds `[TAG #N]` in a subject, tolerant of reply prefixes, case, extra spaces,
/// full-width brackets and number signs, and clients that put a link inside the brackets.
pub fn find_tag(subject: &str, tag: &str) -> Option<TicketId> {
    let chars: Vec<char> = subject.chars().collect();
    let tag_chars: Vec<char> = tag.chars().flat_map(char::to_lowercase).collect();
    for start in 0..chars.len() {
        if !matches!(chars[start], '[' | '［' | '【' | '(' | '（') {
            continue;
        }
        if let Some(id) = tag_at(&chars, start + 1, &tag_chars) {
            return Some(id);
        }
    }
    None
}

fn tag_at(chars: &[char], mut i: usize, tag: &[char]) -> Option<TicketId> {
    while i < chars.len() && chars[i].is_whitespace() {
        i += 1;
    }
    for want in tag {
        let got = chars.get(i)?.to_lowercase().next()?;
        if got != *want {
            return None;
        }
        i += 1;
    }
    // The tag must end here: `[ACMEX #1]` is not `[ACME #1]`.
    if chars.get(i).is_some_and(|c| c.is_alphanumeric()) {
        return None;
    }
    // Up to the number sign: spaces, or a link a client inserted (bounded).
    let limit = i + 200;
    while i < chars.len() && i < limit && !matches!(chars[i], '#' | '＃') {
        if matches!(chars[i], ']' | '］' | '】' | '[' | '［' | '【') {
            return None;
        }
        i += 1;
    }
    if !matches!(chars.get(i), Some('#' | '＃')) {
        return None;
    }
    i += 1;
    let digits_start = i;
    while i < chars.len() && chars[i].is_ascii_digit() {
        i += 1;
    }
    if i == digits_start || i - digits_start > 15 {
        return None;
    }
    let n: i64 = chars[digits_start..i]
        .iter()
        .collect::<String>()
        .parse()
        .ok()?;
    // Then the closing bracket, after spaces or a trailing link.
    let limit = i + 200;
    while i < chars.len() && i < limit {
        match chars[i] {
            ']' | '］' | '】' | ')' | '）' => return (n > 0).then(|| TicketId::new(n)),
            '[' | '［' | '【' => return None,
            _ => i += 1,
        }
    }
    None
}

/// What the thread stage needs to know about a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub id: TicketId,
    pub requester: Option<String>,
}

/// Read-only questions the thread decision asks of the store.
pub trait Lookup {
    fn ticket(&mut self, id: TicketId) -> Option<TicketFacts>;
    /// The ticket of a stored message, incoming or outgoing.
    fn ticket_of_message(&mut self, id: &MessageId) -> Option<TicketId>;
    /// Requester, Cc'd address or agent of the ticket.
    fn is_participant(&mut self, ticket: TicketId, address: &str) -> bool;
}

/// Why a message joined an existing ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    SignedReference,
    KnownReference,
    SubjectTag,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::SignedReference => "signed reference",
            Via::KnownReference => "reference by a participant",
            Via::SubjectTag => "subject tag from a participant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    Existing {
        ticket: TicketId,
        via: Via,
    },
    /// A new ticket; `linked_to` is set when the message named a ticket that the sender
    /// may not join (it is then flagged for a human to look at).
    New {
        linked_to: Option<(TicketId, String)>,
    },
}

/// The thread decision. `tags` are every subject tag we answer to.
pub fn place(msg: &Parsed, key: &InstanceKey, tags: &[String], db: &mut dyn Lookup) -> Placement {
    let refs = msg.referenced_ids();
    for id in &refs {
        if let Some((ticket, _)) = key.verify(id) {
            if db.ticket(ticket).is_some() {
                return Placement::Existing {
                    ticket,
                    via: Via::SignedReference,
                };
            }
        }
    }
    let sender = msg.sender().map(|p| p.address.as_str());
    let mut named: Option<TicketId> = None;
    for id in &refs {
        if let Some(ticket) = db.ticket_of_message(id) {
            if sender.is_some_and(|s| db.is_participant(ticket, s)) {
                return Placement::Existing {
                    ticket,
                    via: Via::KnownReference,
                };
            }
            named.get_or_insert(ticket);
        }
    }
    for tag in tags {
        if let Some(ticket) = find_tag(&msg.subject, tag) {
            if db.ticket(ticket).is_none() {
                continue;
            }
            if sender.is_some_and(|s| db.is_participant(ticket, s)) {
                return Placement::Existing {
                    ticket,
                    via: Via::SubjectTag,
                };
            }
            named.get_or_insert(ticket);
        }
    }
    Placement::New {
        linked_to: named.map(|t| {
            (
                t,
                format!(
                    "sender {} is not a participant of #{t}",
                    sender.unwrap_or("(none)")
                ),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn finds_tag_behind_reply_prefixes() {
        let cases: &[(&str, Option<i64>)] = &[
            ("[ACME #42] Printer", Some(42)),
            ("Re: AW: [ACME #42] x", Some(42)),
            ("RE:  [ acme  #42 ] x", Some(42)),
            ("回复：[acme #42] 打印机", Some(42)),
            ("答复: 【ACME ＃7】 打印机", Some(7)),
            ("Printer broken [ACME #42]", Some(42)),
            ("Fwd: [ACME <https://acme.example/> #42] x", Some(42)),
            ("[OTHER #42] x", None),
            ("[ACMEX #42] x", None),
            ("[ACME #] x", None),
            ("[ACME #0] x", None),
            ("[ACME #42 x", None),
            ("no tag", None),
        ];
        for (subject, want) in cases {
            assert_eq!(
                find_tag(subject, "ACME").map(TicketId::get),
                *want,
                "subject: {subject}"
            );
        }
    }

    #[test]
    fn signed_ids_round_trip_and_resist_forgery() {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let id = key.message_id("h.example.test", TicketId::new(42), MessageRowId::new(7));
        assert!(id.as_str().starts_with("42.7."));
        assert_eq!(
            key.verify(&id),
            Some((TicketId::new(42), MessageRowId::new(7)))
        );
        let forged = MessageId::new(&id.as_str().replacen("42.", "43.", 1));
        assert_eq!(key.verify(&forged), None);
        let other = InstanceKey::from_bytes(b"another key, another key, another");
        assert_eq!(other.verify(&id), None);
        assert_eq!(key.verify(&MessageId::new("garbage")), None);
        assert_eq!(key.verify(&MessageId::new("1.2@x")), None);
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("instance.key");
        let a = InstanceKey::load_or_create(&path).unwrap();
        let b = InstanceKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(format!("{a:?}"), "InstanceKey(..)");
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn prefix() -> impl Strategy<Value = String> {
            prop::sample::select(vec![
                "",
                "Re: ",
                "RE: ",
                "AW: ",
                "SV: ",
                "Antw: ",
                "回复: ",
                "答复：",
                "转发: ",
                "Fwd: ",
                "FW: ",
                "Re: Re: ",
                "  re:  ",
            ])
            .prop_map(str::to_owned)
        }

        proptest! {
            /// Any prefix chain, case and bracket style around a well-formed tag finds it.
            #[test]
            fn tolerant_tag_is_found(
                pre in prefix(), pre2 in prefix(), n in 1i64..10_000_000,
                lower in any::<bool>(), fullwidth in any::<bool>(), spaces in 0usize..3,
                subject in "[a-zA-Z0-9 打印机]{0,30}", at_end in any::<bool>(),
            ) {
                let tag = if lower { "acme" } else { "ACME" };
                let (open, close, hash) = if fullwidth { ("［", "］", "＃") } else { ("[", "]", "#") };
                let pad = " ".repeat(spaces);
                let token = format!("{open}{pad}{tag}{pad} {hash}{n}{pad}{close}");
                let s = if at_end { format!("{pre}{pre2}{subject} {token}") } else { format!("{pre}{pre2}{token} {subject}") };
                prop_assert_eq!(find_tag(&s, "ACME"), Some(TicketId::new(n)), "{}", s);
            }

            /// Strangers' bytes never panic the parser, and nothing matches without the tag.
            #[test]
            fn arbitrary_subjects_never_panic(s in "\\PC{0,200}") {
                if let Some(id) = find_tag(&s, "ACME") {
                    prop_assert!(s.to_lowercase().contains("acme"), "{} gave {}", s, id);
                }
            }

            /// Our Message-IDs verify; any change to ticket, message or mac does not.
            #[test]
            fn signed_ids_round_trip(t in 1i64..i64::MAX / 2, m in 1i64..i64::MAX / 2, flip in 0usize..16) {
                let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
                let id = key.message_id("h.example", TicketId::new(t), MessageRowId::new(m));
                prop_assert_eq!(key.verify(&id), Some((TicketId::new(t), MessageRowId::new(m))));
                let (local, _) = id.as_str().rsplit_once('@').unwrap();
                let mac = local.rsplit('.').next().unwrap();
                let mut bad = mac.as_bytes().to_vec();
                bad[flip] = if bad[flip] == b'0' { b'1' } else { b'0' };
                let forged = MessageId::new(&id.as_str().replace(mac, std::str::from_utf8(&bad).unwrap()));
                prop_assert_eq!(key.verify(&forged), None);
                let other = MessageId::new(&format!("{}.{}.{}@h.example", t + 1, m, mac));
                prop_assert_eq!(key.verify(&other), None);
            }
        }
    }

    #[derive(Default)]
    struct Fake {
        tickets: HashMap<i64, Vec<&'static str>>,
        messages: HashMap<&'static str, i64>,
    }

    impl Lookup for Fake {
        fn ticket(&mut self, id: TicketId) -> Option<TicketFacts> {
            self.tickets.get(&id.get()).map(|p| TicketFacts {
                id,
                requester: p.first().map(|s| s.to_string()),
            })
        }
        fn ticket_of_message(&mut self, id: &MessageId) -> Option<TicketId> {
            self.messages.get(id.as_str()).map(|t| TicketId::new(*t))
        }
        fn is_participant(&mut self, ticket: TicketId, address: &str) -> bool {
            self.tickets
                .get(&ticket.get())
                .is_some_and(|p| p.contains(&address))
        }
    }

    fn parsed(from: &str, subject: &str, in_reply_to: &str) -> Parsed {
        let mut raw = format!("From: {from}\r\nSubject: {subject}\r\nMessage-ID: <new@c.test>\r\n");
        if !in_reply_to.is_empty() {
            raw.push_str(&format!("In-Reply-To: <{in_reply_to}>\r\n"));
        }
        raw.push_str("\r\nbody");
        crate::parse::message(raw.as_bytes(), 1 << 20).unwrap()
    }

    #[test]
    fn placement_rules() {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let ours = key.message_id("h", TicketId::new(1), MessageRowId::new(5));
        let mut db = Fake::default();
        db.tickets.insert(1, vec!["alice@c.test"]);
        db.messages.insert("first@c.test", 1);
        let tags = vec!["ACME".to_owned()];
        let check = |db: &mut Fake, msg: Parsed| place(&msg, &key, &tags, db);

        // Signed reference: joins whoever sent it.
        assert_eq!(
            check(&mut db, parsed("mallory@x.test", "hi", ours.as_str())),
            Placement::Existing {
                ticket: TicketId::new(1),
                via: Via::SignedReference
            }
        );
        // Tag from the requester joins; from a stranger opens a linked ticket.
        assert_eq!(
            check(&mut db, parsed("alice@c.test", "Re: [ACME #1] hi", "")),
            Placement::Existing {
                ticket: TicketId::new(1),
                via: Via::SubjectTag
            }
        );
        assert!(matches!(
            check(&mut db, parsed("mallory@x.test", "Re: [ACME #1] hi", "")),
            Placement::New { linked_to: Some((t, _)) } if t == TicketId::new(1)
        ));
        // A reference to the customer's own first message joins only for participants.
        assert!(matches!(
            check(&mut db, parsed("alice@c.test", "more", "first@c.test")),
            Placement::Existing {
                via: Via::KnownReference,
                ..
            }
        ));
        assert!(matches!(
            check(&mut db, parsed("mallory@x.test", "more", "first@c.test")),
            Placement::New { linked_to: Some(_) }
        ));
        // A tag for a ticket that does not exist is just a new ticket.
        assert_eq!(
            check(&mut db, parsed("alice@c.test", "[ACME #99] x", "")),
            Placement::New { linked_to: None }
        );
    }
}
