//! Decides which ticket an incoming message belongs to (DESIGN.md invariant 4).
//!
//! In: a parsed message and read-only lookups ([`Lookup`]). Out: a [`Placement`].
//! - Never writes; `workflow` applies the placement inside the ingest transaction.
//! - Order: one of our signed Message-IDs in In-Reply-To/References → that ticket, whoever
//!   sent it (only someone who received our mail can know it). Then a reference to any
//!   other message stored on a ticket, or the subject tag `[ACME #42]`, joins only when the
//!   sender is a participant of that ticket (requester, Cc'd address, agent).
//! - A stranger quoting `[ACME #42]` gets `New { linked_to: Some(42) }`, never `Existing`.
//! - Signed Message-IDs are checked with [`InstanceKey::verify`]; the tag is read by
//!   [`subject::find_tag`].
//! - A lookup that fails is an error for the caller to roll back, never "not a participant".

use crate::key::InstanceKey;
use crate::mail::parse::Parsed;
use crate::mail::subject;
use crate::model::{MessageId, TicketId};

/// What the thread stage needs to know about a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub id: TicketId,
    pub requester: Option<String>,
}

/// Read-only questions the thread decision asks of the store. An `Err` ends the decision:
/// the caller rolls the message back instead of guessing (a failed lookup must never let
/// a stranger in, nor keep a participant out).
pub trait Lookup {
    type Error;
    fn ticket(&mut self, id: TicketId) -> Result<Option<TicketFacts>, Self::Error>;
    /// The ticket of a stored message, incoming or outgoing.
    fn ticket_of_message(&mut self, id: &MessageId) -> Result<Option<TicketId>, Self::Error>;
    /// Requester, Cc'd address or agent of the ticket.
    fn is_participant(&mut self, ticket: TicketId, address: &str) -> Result<bool, Self::Error>;
}

/// Why a message joined an existing ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    SignedReference,
    KnownReference,
    SubjectTag,
    /// Set by the workflow, not here: an agent's valid reply token (`agent::token`).
    ReplyToken,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::SignedReference => "signed reference",
            Via::KnownReference => "reference by a participant",
            Via::SubjectTag => "subject tag from a participant",
            Via::ReplyToken => "the agent's reply token",
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
pub fn place<L: Lookup>(
    msg: &Parsed,
    key: &InstanceKey,
    tags: &[String],
    db: &mut L,
) -> Result<Placement, L::Error> {
    let refs = msg.referenced_ids();
    for id in &refs {
        if let Some((ticket, _)) = key.verify(id) {
            if db.ticket(ticket)?.is_some() {
                return Ok(Placement::Existing {
                    ticket,
                    via: Via::SignedReference,
                });
            }
        }
    }
    let sender = msg.sender().map(|p| p.address.as_str());
    let mut named: Option<TicketId> = None;
    for id in &refs {
        if let Some(ticket) = db.ticket_of_message(id)? {
            if let Some(s) = sender {
                if db.is_participant(ticket, s)? {
                    return Ok(Placement::Existing {
                        ticket,
                        via: Via::KnownReference,
                    });
                }
            }
            named.get_or_insert(ticket);
        }
    }
    for tag in tags {
        if let Some(ticket) = subject::find_tag(&msg.subject, tag) {
            if db.ticket(ticket)?.is_none() {
                continue;
            }
            if let Some(s) = sender {
                if db.is_participant(ticket, s)? {
                    return Ok(Placement::Existing {
                        ticket,
                        via: Via::SubjectTag,
                    });
                }
            }
            named.get_or_insert(ticket);
        }
    }
    Ok(Placement::New {
        linked_to: named.map(|t| {
            (
                t,
                format!(
                    "sender {} is not a participant of #{t}",
                    sender.unwrap_or("(none)")
                ),
            )
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MessageRowId;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Fake {
        tickets: HashMap<i64, Vec<&'static str>>,
        messages: HashMap<&'static str, i64>,
        /// Every lookup fails, as a broken database would.
        broken: bool,
    }

    impl Lookup for Fake {
        type Error = &'static str;
        fn ticket(&mut self, id: TicketId) -> Result<Option<TicketFacts>, &'static str> {
            if self.broken {
                return Err("disk on fire");
            }
            Ok(self.tickets.get(&id.get()).map(|p| TicketFacts {
                id,
                requester: p.first().map(|s| s.to_string()),
            }))
        }
        fn ticket_of_message(&mut self, id: &MessageId) -> Result<Option<TicketId>, &'static str> {
            Ok(self.messages.get(id.as_str()).map(|t| TicketId::new(*t)))
        }
        fn is_participant(
            &mut self,
            ticket: TicketId,
            address: &str,
        ) -> Result<bool, &'static str> {
            if self.broken {
                return Err("disk on fire");
            }
            Ok(self
                .tickets
                .get(&ticket.get())
                .is_some_and(|p| p.contains(&address)))
        }
    }

    fn parsed(from: &str, subject: &str, in_reply_to: &str) -> Parsed {
        let mut raw = format!("From: {from}\r\nSubject: {subject}\r\nMessage-ID: <new@c.test>\r\n");
        if !in_reply_to.is_empty() {
            raw.push_str(&format!("In-Reply-To: <{in_reply_to}>\r\n"));
        }
        raw.push_str("\r\nbody");
        crate::mail::parse::message(raw.as_bytes(), &crate::limits::Limits::default()).unwrap()
    }

    #[test]
    fn placement_rules() {
        let key = InstanceKey::from_bytes(b"0123456789abcdef0123456789abcdef");
        let ours = key.message_id("h", TicketId::new(1), MessageRowId::new(5));
        let mut db = Fake::default();
        db.tickets.insert(1, vec!["alice@c.test"]);
        db.messages.insert("first@c.test", 1);
        let tags = vec!["ACME".to_owned()];
        let check = |db: &mut Fake, msg: Parsed| place(&msg, &key, &tags, db).unwrap();

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
        // A lookup that fails is the caller's error, never a new ticket for a participant.
        db.broken = true;
        assert_eq!(
            place(
                &parsed("alice@c.test", "Re: [ACME #1] hi", ""),
                &key,
                &tags,
                &mut db
            ),
            Err("disk on fire")
        );
    }
}
