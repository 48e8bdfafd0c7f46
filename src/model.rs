//! Domain types shared by every stage: ids, states and names.
//!
//! Each value that has a meaning of its own gets a type, so that a ticket number is never
//! confused with a message row, and a status is never a free string. SQLite stores the
//! `as_str` text of the enums, so the database stays readable in `sqlite3`.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// The number customers see in `[ACME #42]`. New ones come only from `store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TicketId(i64);

impl TicketId {
    pub fn new(id: i64) -> TicketId {
        TicketId(id)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for TicketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A row of the `messages` table (incoming or outgoing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MessageRowId(i64);

impl MessageRowId {
    pub fn new(id: i64) -> MessageRowId {
        MessageRowId(id)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A row of the `outbox` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OutboxId(i64);

impl OutboxId {
    pub fn new(id: i64) -> OutboxId {
        OutboxId(id)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// A row of the `quarantine` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct QuarantineId(i64);

impl QuarantineId {
    pub fn new(id: i64) -> QuarantineId {
        QuarantineId(id)
    }
    pub fn get(self) -> i64 {
        self.0
    }
}

/// An IMAP UID inside one UIDVALIDITY epoch of one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Uid(pub u32);

/// An IMAP UIDVALIDITY value: when it changes, every UID of the folder is new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct UidValidity(pub u32);

/// The configured name of a watched mailbox (`[[mailbox]] name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MailboxName(String);

impl MailboxName {
    pub fn new(name: impl Into<String>) -> MailboxName {
        MailboxName(name.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A Message-ID without its angle brackets (mail-parser strips them; we add them back
/// whenever we write a header, STACK.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Trims whitespace and one pair of angle brackets.
    pub fn new(raw: &str) -> MessageId {
        let t = raw.trim();
        let t = t.strip_prefix('<').unwrap_or(t);
        let t = t.strip_suffix('>').unwrap_or(t);
        MessageId(t.trim().to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The header form, `<id>`.
    pub fn bracketed(&self) -> String {
        format!("<{}>", self.0)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $err:ident, $what:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        #[doc = concat!("A text that is not a known ", $what, ".")]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("unknown {} {:?}", $what, .0)]
        pub struct $err(pub String);

        impl FromStr for $name {
            type Err = $err;
            fn from_str(s: &str) -> Result<$name, $err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|it| it.as_str().eq_ignore_ascii_case(s.trim()))
                    .ok_or_else(|| $err(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Ticket lifecycle (DESIGN.md): new 待分配 → open 处理中 → pending → resolved 已解决 →
    /// closed 已关闭 → archived 已归档.
    Status, UnknownStatus, "status", {
        New => "new",
        Open => "open",
        Pending => "pending",
        Resolved => "resolved",
        Closed => "closed",
        Archived => "archived",
    }
);

text_enum!(
    /// Ticket priority; VIP customers start one step higher (issue 5).
    Priority, UnknownPriority, "priority", {
        Low => "low",
        Normal => "normal",
        High => "high",
        Urgent => "urgent",
    }
);

text_enum!(
    /// Which way a stored message went.
    Direction, UnknownDirection, "direction", {
        In => "in",
        Out => "out",
    }
);

text_enum!(
    /// Delivery state of an outbox row: `queued` waits for its next attempt, `sending` is
    /// claimed by the sender task, `sent` was accepted by the SMTP server, `failed` was
    /// refused for good (the server's answer is kept).
    OutboxState, UnknownOutboxState, "outbox state", {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Failed => "failed",
    }
);

text_enum!(
    /// What an outgoing mail is, for the outbox listing and loop accounting.
    OutboxKind, UnknownOutboxKind, "outbox kind", {
        Acknowledgement => "acknowledgement",
        AgentNotification => "agent-notification",
        Answer => "answer",
        StatusChange => "status-change",
        CommandResult => "command-result",
        CommandRefused => "command-refused",
        Survey => "survey",
        SlaWarning => "sla-warning",
        SlaBreach => "sla-breach",
        Digest => "digest",
    }
);

text_enum!(
    /// Who may see a stored message; only `customer` messages thread customer mail.
    Audience, UnknownAudience, "audience", {
        Customer => "customer",
        Agents => "agents",
        Internal => "internal",
    }
);

impl OutboxKind {
    /// Automatic mail obeys the loop rules (rate limit, undeliverable addresses); a
    /// person's answer and mail to our own agents do not.
    pub fn is_automatic_to_customer(self) -> bool {
        matches!(
            self,
            OutboxKind::Acknowledgement | OutboxKind::StatusChange | OutboxKind::Survey
        )
    }
    /// The template that writes it.
    pub fn template(self) -> &'static str {
        match self {
            OutboxKind::Acknowledgement => "acknowledgement",
            OutboxKind::AgentNotification => "agent_notification",
            OutboxKind::Answer => "answer",
            OutboxKind::StatusChange => "status_change",
            OutboxKind::CommandResult => "command_result",
            OutboxKind::CommandRefused => "command_refused",
            OutboxKind::Survey => "survey",
            OutboxKind::SlaWarning => "sla_warning",
            OutboxKind::SlaBreach => "sla_breach",
            OutboxKind::Digest => "digest",
        }
    }
    /// `Auto-Submitted` value (RFC 3834): replies to a message are `auto-replied`,
    /// notifications `auto-generated`; a person's answer carries none.
    pub fn auto_submitted(self) -> Option<&'static str> {
        match self {
            OutboxKind::Acknowledgement
            | OutboxKind::CommandResult
            | OutboxKind::CommandRefused => Some("auto-replied"),
            OutboxKind::AgentNotification
            | OutboxKind::StatusChange
            | OutboxKind::Survey
            | OutboxKind::SlaWarning
            | OutboxKind::SlaBreach
            | OutboxKind::Digest => Some("auto-generated"),
            OutboxKind::Answer => None,
        }
    }
}

text_enum!(
    /// Template language. Chinese when the customer wrote Chinese, else the queue's.
    Language, UnknownLanguage, "language", {
        En => "en",
        ZhCn => "zh-CN",
    }
);

text_enum!(
    /// Quarantine row state: `held` waits for a human, `released` was processed by
    /// `postdesk quarantine retry`.
    QuarantineState, UnknownQuarantineState, "quarantine state", {
        Held => "held",
        Released => "released",
    }
);

/// One deadline of a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Deadline {
    /// The first answer to the customer after the ticket opens.
    FirstResponse,
    /// The next answer after each customer message.
    NextResponse,
    /// Resolution; its clock pauses while the ticket is `pending`.
    Resolution,
}

impl Deadline {
    pub const ALL: [Deadline; 3] = [
        Deadline::FirstResponse,
        Deadline::NextResponse,
        Deadline::Resolution,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Deadline::FirstResponse => "first_response",
            Deadline::NextResponse => "next_response",
            Deadline::Resolution => "resolution",
        }
    }
}

/// A text that is not a known deadline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown deadline {0:?}")]
pub struct UnknownDeadline(pub String);

impl FromStr for Deadline {
    type Err = UnknownDeadline;
    fn from_str(s: &str) -> Result<Deadline, UnknownDeadline> {
        Deadline::ALL
            .into_iter()
            .find(|it| it.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownDeadline(s.to_owned()))
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_text() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(*s));
        }
        assert_eq!(" Resolved ".parse::<Status>(), Ok(Status::Resolved));
        assert_eq!(
            "done".parse::<Status>(),
            Err(UnknownStatus("done".to_owned()))
        );
        assert_eq!("zh-cn".parse::<Language>(), Ok(Language::ZhCn));
    }

    #[test]
    fn message_id_strips_and_restores_brackets() {
        let id = MessageId::new(" <abc@x.test> ");
        assert_eq!(id.as_str(), "abc@x.test");
        assert_eq!(id.bracketed(), "<abc@x.test>");
        assert_eq!(MessageId::new("abc@x.test"), id);
    }
}
