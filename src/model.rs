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

        /// Compares with the text form, as the CLI and `--json` show it.
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
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
    /// refused for good (the server's answer is kept) or is an acknowledgement that
    /// expired unsent (`last_error` "expired: …", `ack_max_age`).
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
        Alert => "alert",
        SelfService => "self-service",
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
            OutboxKind::Acknowledgement
                | OutboxKind::StatusChange
                | OutboxKind::Survey
                | OutboxKind::SelfService
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
            OutboxKind::Alert => "alert",
            OutboxKind::SelfService => "self_service",
        }
    }
    /// `Auto-Submitted` value (RFC 3834): replies to a message are `auto-replied`,
    /// notifications `auto-generated`; a person's answer carries none.
    pub fn auto_submitted(self) -> Option<&'static str> {
        match self {
            OutboxKind::Acknowledgement
            | OutboxKind::CommandResult
            | OutboxKind::CommandRefused
            | OutboxKind::SelfService => Some("auto-replied"),
            OutboxKind::AgentNotification
            | OutboxKind::StatusChange
            | OutboxKind::Survey
            | OutboxKind::SlaWarning
            | OutboxKind::SlaBreach
            | OutboxKind::Digest
            | OutboxKind::Alert => Some("auto-generated"),
            OutboxKind::Answer => None,
        }
    }
}

text_enum!(
    /// Whether a mailbox's last login worked (`record_login`) or was refused
    /// (`record_auth_failure`: wrong password, token refused or not refreshable).
    AuthState, UnknownAuthState, "auth state", {
        Ok => "ok",
        Failed => "failed",
    }
);

text_enum!(
    /// Why a mailbox raised an incident (`workflow::health`). `login-failed` and
    /// `not-syncing` are alarms (one open at a time per mailbox: a change from one to the
    /// other stays the same incident); `token-expiring` is a warning with its own
    /// incident.
    AlarmKind, UnknownAlarmKind, "alarm kind", {
        LoginFailed => "login-failed",
        NotSyncing => "not-syncing",
        TokenExpiring => "token-expiring",
    }
);

/// The two incidents a mailbox can have open at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlarmSlot {
    /// The mailbox cannot log in or is not fetching.
    Alarm,
    /// Its refresh token expires soon.
    TokenWarning,
}

impl AlarmKind {
    pub fn slot(self) -> AlarmSlot {
        match self {
            AlarmKind::LoginFailed | AlarmKind::NotSyncing => AlarmSlot::Alarm,
            AlarmKind::TokenExpiring => AlarmSlot::TokenWarning,
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

/// Where one SLA deadline ended up or stands, ranked once for `ticket show` and the
/// report alike: a deadline met late counts as breached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlaState {
    Met,
    Breached,
    /// The warning went out; not yet due.
    AtRisk,
    Running,
    /// No due time: the resolution clock of a pending ticket.
    Paused,
}

impl SlaState {
    /// Same inputs, same answer: breached (flagged, met after the due time, or due and
    /// still open at `now`), else met, else at risk (warned), else paused (no due time),
    /// else running.
    pub fn of(
        due: Option<chrono::DateTime<chrono::Utc>>,
        warned: Option<chrono::DateTime<chrono::Utc>>,
        breached: Option<chrono::DateTime<chrono::Utc>>,
        met: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> SlaState {
        let late = match (met, due) {
            (Some(met), Some(due)) => met >= due,
            (None, Some(due)) => due <= now,
            _ => false,
        };
        if breached.is_some() || late {
            SlaState::Breached
        } else if met.is_some() {
            SlaState::Met
        } else if warned.is_some() {
            SlaState::AtRisk
        } else if due.is_none() {
            SlaState::Paused
        } else {
            SlaState::Running
        }
    }
}

impl Serialize for Deadline {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for Deadline {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event in the append-only log says happened. Writers (workflow, store) and
/// readers (`ticket show`, reports) share this one list; the text is what the `events`
/// table holds and `--json` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A ticket was opened (new: its status; detail: queue and priority).
    TicketCreated,
    /// A new ticket was linked to another (new: the other ticket).
    TicketLinked,
    /// A customer's message joined the ticket (detail: how it was placed).
    MessageIn,
    /// Automatic mail was recorded on the ticket (never answered).
    MessageAutomatic,
    /// An agent's mail could not be proven; kept as an unverified note.
    MessageUnverified,
    /// The status changed (old, new).
    Status,
    /// The transition table refused a status change.
    StatusRefused,
    /// The priority changed.
    Priority,
    /// The assignee changed.
    Assignee,
    /// The ticket moved to another queue.
    Queue,
    /// A tag was added.
    Tag,
    /// A tag was removed.
    Untag,
    /// An address was added as a Cc participant.
    Cc,
    /// A customer's mail copied more people than `max_people_per_message`: the rest were
    /// not added (new: how many).
    CcCapped,
    /// An agent linked two tickets.
    Linked,
    /// Two tickets were merged.
    Merged,
    /// An internal note.
    Note,
    /// An agent's first answer.
    FirstResponse,
    /// An agent's answer was not sent: it still held part of our relay (detail: what).
    AnswerRefused,
    /// Routing rules matched a new ticket.
    Rules,
    /// An agent's (or a stranger's) command line was refused.
    CommandRefused,
    /// One mail's command lines went past a limit (issue 12): lines or words not read
    /// (`max_command_lines`, `max_command_words`), or refused lines not recorded one by one
    /// past `max_events_per_message` (detail: how many of each).
    CommandCapped,
    /// A satisfaction rating (new: 1..=5).
    Csat,
    /// A survey answer with a wrong mac was refused.
    CsatRefused,
    /// A bounce for one of the ticket's mails.
    Bounce,
    /// A bounce that does not carry one of our signed Message-IDs, or names no recipient
    /// of that message: recorded, marks nothing (it may be forged).
    BounceUnverified,
    /// An address that had bounced wrote again.
    AddressDeliverable,
    /// An `Authentication-Results` header with our trusted authserv-id sat below a
    /// `Received` line: the sender wrote it; ignored.
    AuthForged,
    /// The ticket was flagged for a human (detail: why).
    Flagged,
    /// An automatic mail was held by the loop rules.
    NotificationHeld,
    /// An automatic mail was queued for later by the global breaker (detail: until when).
    NotificationDelayed,
    /// An acknowledgement was not sent within `ack_max_age` of its message and will not
    /// be sent late (detail: its outbox row and why).
    AcknowledgementExpired,
    /// An SLA deadline is at risk; the warning went out.
    SlaWarning,
    /// An SLA deadline was breached; escalated.
    SlaBreach,
    /// The SMTP server refused a mail for good.
    OutboxFailed,
    /// A VIP customer's ticket started one priority higher.
    Vip,
    /// A rule said not to acknowledge a new ticket.
    AcknowledgementSkipped,
    /// Automatic assignment found no available agent.
    AssignmentSkipped,
    // Knowledge base and self-service (issue 16).
    /// A customer asked by mail for their open tickets (no ticket; new: how many listed).
    SelfServiceStatus,
    /// Knowledge-base articles were listed in the acknowledgement (new: their names).
    KbSuggested,
    /// The customer answered `solved` to an acknowledgement that listed articles: the
    /// ticket was resolved without an agent (deflected).
    KbDeflected,
    /// Triage (issue 16) guessed labels for a new ticket above their thresholds (detail:
    /// `queue billing (0.91), priority high (0.78)`).
    TriageSuggested,
    /// Triage set one field of a new ticket (old: the field, new: the value, detail: the
    /// confidence); an agent's later change of that field is a correction.
    TriageApplied,
    /// A mail was queued (`acknowledgement.queued`, `answer.queued`, …).
    MailQueued(OutboxKind),
    /// A mail could not be composed (`answer.failed`, …); the ticket is kept.
    MailFailed(OutboxKind),
}

impl EventKind {
    const PLAIN: &'static [(EventKind, &'static str)] = &[
        (EventKind::TicketCreated, "ticket.created"),
        (EventKind::TicketLinked, "ticket.linked"),
        (EventKind::MessageIn, "message.in"),
        (EventKind::MessageAutomatic, "message.automatic"),
        (EventKind::MessageUnverified, "message.unverified"),
        (EventKind::Status, "status"),
        (EventKind::StatusRefused, "status.refused"),
        (EventKind::Priority, "priority"),
        (EventKind::Assignee, "assignee"),
        (EventKind::Queue, "queue"),
        (EventKind::Tag, "tag"),
        (EventKind::Untag, "untag"),
        (EventKind::Cc, "cc"),
        (EventKind::CcCapped, "cc.capped"),
        (EventKind::Linked, "linked"),
        (EventKind::Merged, "merged"),
        (EventKind::Note, "note"),
        (EventKind::FirstResponse, "first_response"),
        (EventKind::AnswerRefused, "answer.refused"),
        (EventKind::Rules, "rules"),
        (EventKind::CommandRefused, "command.refused"),
        (EventKind::CommandCapped, "command.capped"),
        (EventKind::Csat, "csat"),
        (EventKind::CsatRefused, "csat.refused"),
        (EventKind::Bounce, "bounce"),
        (EventKind::BounceUnverified, "bounce.unverified"),
        (EventKind::AddressDeliverable, "address.deliverable"),
        (EventKind::AuthForged, "auth.forged"),
        (EventKind::Flagged, "flagged"),
        (EventKind::NotificationHeld, "notification.held"),
        (EventKind::NotificationDelayed, "notification.delayed"),
        (EventKind::AcknowledgementExpired, "acknowledgement.expired"),
        (EventKind::SlaWarning, "sla.warning"),
        (EventKind::SlaBreach, "sla.breach"),
        (EventKind::OutboxFailed, "outbox.failed"),
        (EventKind::Vip, "vip"),
        (EventKind::AcknowledgementSkipped, "acknowledgement.skipped"),
        (EventKind::AssignmentSkipped, "assignment.skipped"),
        (EventKind::SelfServiceStatus, "self_service.status"),
        (EventKind::KbSuggested, "kb.suggested"),
        (EventKind::KbDeflected, "kb.deflected"),
        (EventKind::TriageSuggested, "triage.suggested"),
        (EventKind::TriageApplied, "triage.applied"),
    ];

    /// The text stored and shown: `status`, `answer.queued`, …
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MailQueued(OutboxKind::Acknowledgement) => "acknowledgement.queued",
            EventKind::MailFailed(OutboxKind::Acknowledgement) => "acknowledgement.failed",
            EventKind::MailQueued(OutboxKind::AgentNotification) => "agent-notification.queued",
            EventKind::MailFailed(OutboxKind::AgentNotification) => "agent-notification.failed",
            EventKind::MailQueued(OutboxKind::Answer) => "answer.queued",
            EventKind::MailFailed(OutboxKind::Answer) => "answer.failed",
            EventKind::MailQueued(OutboxKind::StatusChange) => "status-change.queued",
            EventKind::MailFailed(OutboxKind::StatusChange) => "status-change.failed",
            EventKind::MailQueued(OutboxKind::CommandResult) => "command-result.queued",
            EventKind::MailFailed(OutboxKind::CommandResult) => "command-result.failed",
            EventKind::MailQueued(OutboxKind::CommandRefused) => "command-refused.queued",
            EventKind::MailFailed(OutboxKind::CommandRefused) => "command-refused.failed",
            EventKind::MailQueued(OutboxKind::Survey) => "survey.queued",
            EventKind::MailFailed(OutboxKind::Survey) => "survey.failed",
            EventKind::MailQueued(OutboxKind::SlaWarning) => "sla-warning.queued",
            EventKind::MailFailed(OutboxKind::SlaWarning) => "sla-warning.failed",
            EventKind::MailQueued(OutboxKind::SlaBreach) => "sla-breach.queued",
            EventKind::MailFailed(OutboxKind::SlaBreach) => "sla-breach.failed",
            EventKind::MailQueued(OutboxKind::Digest) => "digest.queued",
            EventKind::MailFailed(OutboxKind::Digest) => "digest.failed",
            EventKind::MailQueued(OutboxKind::Alert) => "alert.queued",
            EventKind::MailFailed(OutboxKind::Alert) => "alert.failed",
            EventKind::MailQueued(OutboxKind::SelfService) => "self-service.queued",
            EventKind::MailFailed(OutboxKind::SelfService) => "self-service.failed",
            plain => EventKind::PLAIN
                .iter()
                .find(|(it, _)| *it == plain)
                .map_or("", |(_, text)| text),
        }
    }
}

/// A text that is not a known event kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {0:?}")]
pub struct UnknownEventKind(pub String);

impl FromStr for EventKind {
    type Err = UnknownEventKind;
    fn from_str(s: &str) -> Result<EventKind, UnknownEventKind> {
        let unknown = || UnknownEventKind(s.to_owned());
        if let Some((_, kind)) = EventKind::PLAIN
            .iter()
            .map(|(k, t)| (t, k))
            .find(|(t, _)| **t == s)
        {
            return Ok(*kind);
        }
        let (mail, what) = s.rsplit_once('.').ok_or_else(unknown)?;
        let mail: OutboxKind = mail.parse().map_err(|_| unknown())?;
        match what {
            "queued" => Ok(EventKind::MailQueued(mail)),
            "failed" => Ok(EventKind::MailFailed(mail)),
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Times in the database and in `--json`: RFC 3339, UTC, milliseconds (`…T12:00:00.000Z`),
/// which sorts as text. Views hold `DateTime<Utc>` and serialise through here, so the
/// JSON output keeps the stored form.
pub mod stamp {
    use chrono::{DateTime, SecondsFormat, Utc};

    pub fn text(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    pub fn parse(s: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&text(*t))
    }

    /// For `Option<DateTime<Utc>>` fields: `null` or the text.
    pub mod option {
        use chrono::{DateTime, Utc};

        pub fn serialize<S: serde::Serializer>(
            t: &Option<DateTime<Utc>>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&super::text(*t)),
                None => s.serialize_none(),
            }
        }
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
    fn event_kinds_round_trip_through_text() {
        for (kind, text) in EventKind::PLAIN {
            assert_eq!(kind.as_str(), *text);
            assert_eq!(text.parse::<EventKind>(), Ok(*kind));
        }
        for mail in OutboxKind::ALL {
            for kind in [EventKind::MailQueued(*mail), EventKind::MailFailed(*mail)] {
                assert_eq!(kind.as_str().parse::<EventKind>(), Ok(kind));
            }
        }
        assert_eq!(
            EventKind::MailQueued(OutboxKind::Answer).as_str(),
            "answer.queued"
        );
        assert!("answer.lost".parse::<EventKind>().is_err());
        assert!("statuses".parse::<EventKind>().is_err());
        assert_eq!(EventKind::SlaBreach, "sla.breach");
    }

    #[test]
    fn alert_mail_is_automatic_staff_mail() {
        assert_eq!(OutboxKind::Alert.auto_submitted(), Some("auto-generated"));
        assert!(!OutboxKind::Alert.is_automatic_to_customer());
        assert_eq!(OutboxKind::Alert.template(), "alert");
        assert_eq!("alert".parse::<OutboxKind>(), Ok(OutboxKind::Alert));
        for kind in AlarmKind::ALL {
            assert_eq!(kind.as_str().parse::<AlarmKind>(), Ok(*kind));
        }
        assert_eq!(AlarmKind::TokenExpiring.slot(), AlarmSlot::TokenWarning);
        assert_eq!(AlarmKind::NotSyncing.slot(), AlarmSlot::Alarm);
        assert_eq!("failed".parse::<AuthState>(), Ok(AuthState::Failed));
    }

    #[test]
    fn sla_states_rank_a_late_met_as_breached() {
        let t = |h: u32| {
            chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 1, h, 0, 0).unwrap()
        };
        let now = t(12);
        for (due, warned, breached, met, want) in [
            (Some(t(10)), None, None, Some(t(9)), SlaState::Met),
            (Some(t(10)), None, None, Some(t(11)), SlaState::Breached),
            (
                Some(t(10)),
                Some(t(9)),
                Some(t(10)),
                Some(t(11)),
                SlaState::Breached,
            ),
            (Some(t(11)), None, None, None, SlaState::Breached),
            (Some(t(14)), Some(t(11)), None, None, SlaState::AtRisk),
            (Some(t(14)), None, None, None, SlaState::Running),
            (None, None, None, None, SlaState::Paused),
            (None, None, None, Some(t(9)), SlaState::Met),
        ] {
            assert_eq!(
                SlaState::of(due, warned, breached, met, now),
                want,
                "{due:?} {met:?}"
            );
        }
    }

    #[test]
    fn stamps_keep_the_stored_form() {
        let t = stamp::parse("2026-12-02T16:00:00.000Z").unwrap();
        assert_eq!(stamp::text(t), "2026-12-02T16:00:00.000Z");
        assert_eq!(stamp::parse("yesterday"), None);
    }

    #[test]
    fn message_id_strips_and_restores_brackets() {
        let id = MessageId::new(" <abc@x.test> ");
        assert_eq!(id.as_str(), "abc@x.test");
        assert_eq!(id.bracketed(), "<abc@x.test>");
        assert_eq!(MessageId::new("abc@x.test"), id);
    }
}
