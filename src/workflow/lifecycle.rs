//! The ticket lifecycle: which status changes are allowed, and what each one mails.
//!
//! In: a ticket, the status asked for and why ([`Cause`]). Out: the change applied inside
//! the caller's transaction (status, event, SLA clocks) and the customer mail it calls for.
//! - [`transition_allowed`] is the one transition table (DESIGN.md "Ticket lifecycle");
//!   a refused change is an event (`status.refused`), never silently applied.
//! - [`customer_mail`] is the one rule for what a change tells the customer: a person's
//!   `resolved` sends the survey where the queue has surveys, else the status mail; a
//!   person's `closed` sends the status mail; changes the system makes (reopening on a
//!   customer reply, `open` on assignment, `pending` on an answer, auto-close, archive,
//!   merge) send nothing. Every caller (agent command, `ticket set`, jobs, merge) goes
//!   through [`Engine::change_status`], so they cannot drift.
//! - [`on_customer_reply`] is the pure rule for a customer writing again.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Engine;
use crate::config::Queue;
use crate::model::{EventKind, Language, OutboxKind, Priority, Status, TicketId};
use crate::store::{NewEvent, StoreError, TicketRow, Tx};

/// What happens to a ticket when its customer writes again (DESIGN.md lifecycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen {
    Unchanged,
    To(Status),
    NewLinkedTicket,
}

/// Same inputs, same answer: no clock, no store.
pub fn on_customer_reply(
    status: Status,
    closed_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    reopen_window: Duration,
) -> Reopen {
    match status {
        Status::New | Status::Open => Reopen::Unchanged,
        Status::Pending | Status::Resolved => Reopen::To(Status::Open),
        Status::Closed => {
            let window = chrono::Duration::from_std(reopen_window).unwrap_or(chrono::Duration::MAX);
            match closed_at {
                Some(at) if now.signed_duration_since(at) <= window => Reopen::To(Status::Open),
                _ => Reopen::NewLinkedTicket,
            }
        }
        Status::Archived => Reopen::NewLinkedTicket,
    }
}

/// The lifecycle's transition table (DESIGN.md), in one place. Reopening (`closed` →
/// `open`) is allowed; nothing leaves `archived`.
pub fn transition_allowed(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (New, Open | Pending | Resolved | Closed)
            | (Open, New | Pending | Resolved | Closed)
            | (Pending, Open | Resolved | Closed)
            | (Resolved, Open | Closed)
            | (Closed, Open | Archived)
    )
}

/// Why a status changes. Decides the event's detail and what the customer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause<'a> {
    /// An agent's `#status` line (the mail goes out after the agent's answer).
    AgentCommand,
    /// `postdesk ticket set --status` by a sysadmin.
    Admin,
    /// The customer wrote again.
    CustomerReply,
    /// The ticket got an assignee (`new` → `open`).
    Assigned,
    /// An agent answered the customer (→ `pending`).
    Answered,
    /// Merged into another ticket (→ `closed`).
    Merged,
    /// A scheduled job (auto-close, archive), with its reason.
    Job(&'a str),
    /// The customer answered `solved` to the articles of the acknowledgement (issue 16).
    CustomerSolved,
}

impl Cause<'_> {
    /// The event's detail.
    fn detail(self) -> Option<&'static str> {
        match self {
            Cause::CustomerReply => Some("customer replied"),
            Cause::Assigned => Some("assigned"),
            Cause::CustomerSolved => Some("the customer answered solved"),
            Cause::AgentCommand
            | Cause::Admin
            | Cause::Answered
            | Cause::Merged
            | Cause::Job(_) => None,
        }
    }

    /// A person decided this change (an agent or a sysadmin), as opposed to the system.
    fn by_a_person(self) -> bool {
        matches!(
            self,
            Cause::AgentCommand | Cause::Admin | Cause::CustomerSolved
        )
    }
}

/// What the customer is told of a change to `to` made for `cause` in `queue` (see the
/// module doc). Same inputs, same answer.
pub fn customer_mail(cause: Cause<'_>, to: Status, queue: &Queue) -> Option<OutboxKind> {
    if !cause.by_a_person() {
        return None;
    }
    match to {
        Status::Resolved if queue.surveys => Some(OutboxKind::Survey),
        Status::Resolved | Status::Closed if queue.status_mail => Some(OutboxKind::StatusChange),
        _ => None,
    }
}

/// What [`Engine::change_status`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    /// Applied; `mail` is what the customer is to be told ([`customer_mail`]), which the
    /// caller sends with [`Engine::send_status_mail`] (an agent's answer goes first).
    Changed {
        from: Status,
        to: Status,
        mail: Option<OutboxKind>,
    },
    /// The transition table said no (a status to itself too); recorded as an event.
    Refused(String),
}

impl Engine {
    /// Changes a ticket's status if the transition table allows it, records the event and
    /// moves the SLA clocks; a refused change is an event too. The customer mail the
    /// change calls for is returned, not sent: see [`Engine::set_status`].
    pub(super) fn change_status(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        to: Status,
        actor: &str,
        cause: Cause<'_>,
        at: DateTime<Utc>,
    ) -> Result<StatusChange, StoreError> {
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        if !transition_allowed(t.status, to) {
            let reason = format!("cannot change status from {} to {}", t.status, to);
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor,
                kind: EventKind::StatusRefused,
                old: Some(t.status.as_str()),
                new: Some(to.as_str()),
                detail: Some(&reason),
            })?;
            return Ok(StatusChange::Refused(reason));
        }
        tx.set_status(ticket, to, at)?;
        let job_detail;
        let detail = match cause {
            Cause::Job(why) => {
                job_detail = why.to_owned();
                Some(job_detail.as_str())
            }
            other => other.detail(),
        };
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor,
            kind: EventKind::Status,
            old: Some(t.status.as_str()),
            new: Some(to.as_str()),
            detail,
        })?;
        self.sla_on_status(tx, ticket, t.status, to, at)?;
        Ok(StatusChange::Changed {
            from: t.status,
            to,
            mail: customer_mail(cause, to, &self.queue(&t.queue)),
        })
    }

    /// [`Engine::change_status`], then the customer mail it calls for, at once.
    pub(super) fn set_status(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        to: Status,
        actor: &str,
        cause: Cause<'_>,
        at: DateTime<Utc>,
    ) -> Result<StatusChange, StoreError> {
        let change = self.change_status(tx, ticket, to, actor, cause, at)?;
        if let StatusChange::Changed {
            to,
            mail: Some(kind),
            ..
        } = change
        {
            self.send_status_mail(tx, ticket, to, kind, at)?;
        }
        Ok(change)
    }

    /// Queues the survey or the status mail that a change to `status` called for.
    pub(super) fn send_status_mail(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        status: Status,
        kind: OutboxKind,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        match kind {
            OutboxKind::Survey => self.queue_survey(tx, &t, at),
            _ => self.queue_status_mail(tx, &t, status, at),
        }
    }

    /// Tells the customer their ticket was resolved or closed.
    fn queue_status_mail(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        status: Status,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let context = minijinja::context! {
            status => status.as_str(),
            status_zh => status_text(status, Language::ZhCn),
        };
        self.queue_customer_notice(tx, t, OutboxKind::StatusChange, context, at)
    }
}

/// A status as people read it: `resolved`, or `已解决` in Chinese (DESIGN.md lifecycle).
pub(super) fn status_text(status: Status, language: Language) -> &'static str {
    match language {
        Language::En => status.as_str(),
        Language::ZhCn => match status {
            Status::New => "待分配",
            Status::Open => "处理中",
            Status::Pending => "等待客户回复",
            Status::Resolved => "已解决",
            Status::Closed => "已关闭",
            Status::Archived => "已归档",
        },
    }
}

/// A priority as the relay shows it in `language`.
pub(super) fn priority_text(priority: Priority, language: Language) -> &'static str {
    match language {
        Language::En => priority.as_str(),
        Language::ZhCn => match priority {
            Priority::Low => "低",
            Priority::Normal => "普通",
            Priority::High => "高",
            Priority::Urgent => "紧急",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn transitions() {
        use Status::*;
        assert!(transition_allowed(New, Open));
        assert!(transition_allowed(Resolved, Open));
        assert!(transition_allowed(Closed, Open));
        assert!(transition_allowed(Closed, Archived));
        assert!(!transition_allowed(Archived, Open));
        assert!(!transition_allowed(New, Archived));
        assert!(!transition_allowed(Open, Open));
        for s in Status::ALL {
            assert!(!transition_allowed(*s, *s), "{s} to itself");
        }
    }

    #[test]
    fn reopen_rules() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
        let week = Duration::from_secs(7 * 86_400);
        let cases = [
            (Status::New, None, Reopen::Unchanged),
            (Status::Open, None, Reopen::Unchanged),
            (Status::Pending, None, Reopen::To(Status::Open)),
            (Status::Resolved, None, Reopen::To(Status::Open)),
            (
                Status::Closed,
                Some(now - chrono::Duration::days(3)),
                Reopen::To(Status::Open),
            ),
            (
                Status::Closed,
                Some(now - chrono::Duration::days(8)),
                Reopen::NewLinkedTicket,
            ),
            (Status::Closed, None, Reopen::NewLinkedTicket),
            (Status::Archived, None, Reopen::NewLinkedTicket),
        ];
        for (status, closed_at, want) in cases {
            assert_eq!(
                on_customer_reply(status, closed_at, now, week),
                want,
                "{status} closed {closed_at:?}"
            );
        }
    }

    #[test]
    fn only_a_persons_resolve_or_close_mails_the_customer() {
        let mut q = Queue::named("support");
        let person = [Cause::AgentCommand, Cause::Admin];
        let system = [
            Cause::CustomerReply,
            Cause::Assigned,
            Cause::Answered,
            Cause::Merged,
            Cause::Job("auto-close after 7d"),
        ];
        for cause in person {
            assert_eq!(
                customer_mail(cause, Status::Resolved, &q),
                Some(OutboxKind::Survey)
            );
            assert_eq!(
                customer_mail(cause, Status::Closed, &q),
                Some(OutboxKind::StatusChange)
            );
            for to in [Status::New, Status::Open, Status::Pending, Status::Archived] {
                assert_eq!(customer_mail(cause, to, &q), None, "{cause:?} to {to}");
            }
        }
        for cause in system {
            for to in Status::ALL {
                assert_eq!(customer_mail(cause, *to, &q), None, "{cause:?} to {to}");
            }
        }
        q.surveys = false;
        assert_eq!(
            customer_mail(Cause::Admin, Status::Resolved, &q),
            Some(OutboxKind::StatusChange)
        );
        q.status_mail = false;
        assert_eq!(customer_mail(Cause::Admin, Status::Resolved, &q), None);
        assert_eq!(customer_mail(Cause::AgentCommand, Status::Closed, &q), None);
        q.surveys = true;
        assert_eq!(
            customer_mail(Cause::AgentCommand, Status::Resolved, &q),
            Some(OutboxKind::Survey),
            "the survey says resolved itself, status_mail or not"
        );
    }

    /// Moved from tests/workflow.rs (issue 9): every pair of the table, through the one
    /// function every caller uses; a refusal is an event and changes nothing.
    #[test]
    fn every_transition_of_the_table_is_allowed_or_refused_with_an_event() {
        let mut bench = crate::workflow::testing::Bench::new("", "");
        // A way to each status from `new`.
        let path = |to: Status| -> Vec<Status> {
            match to {
                Status::New => vec![],
                Status::Archived => vec![Status::Closed, Status::Archived],
                s => vec![s],
            }
        };
        let mut n = 0;
        for from in Status::ALL {
            for to in Status::ALL {
                n += 1;
                let customer = format!("tt{n}@customer.test");
                let id = bench.new_ticket(&customer, &format!("T{n}"), "x");
                let at = bench.now();
                for step in path(*from) {
                    let r = bench
                        .write(|e, tx| e.change_status(tx, id, step, "test", Cause::Admin, at));
                    assert!(
                        matches!(r, StatusChange::Changed { .. }),
                        "setting up {from}: {r:?}"
                    );
                }
                let r = bench.write(|e, tx| e.change_status(tx, id, *to, "test", Cause::Admin, at));
                let events = bench.events(id);
                if transition_allowed(*from, *to) {
                    assert!(
                        matches!(r, StatusChange::Changed { from: f, to: t, .. } if f == *from && t == *to),
                        "{from} -> {to}: {r:?}"
                    );
                    assert_eq!(bench.status(id).as_str(), to.as_str());
                } else {
                    assert!(matches!(r, StatusChange::Refused(_)), "{from} -> {to}");
                    assert_eq!(
                        bench.status(id).as_str(),
                        from.as_str(),
                        "refused: unchanged"
                    );
                    let last = events.last().unwrap();
                    assert_eq!(
                        (last.kind.as_str(), last.new.as_deref()),
                        ("status.refused", Some(to.as_str()))
                    );
                }
            }
        }
    }

    /// `ticket set` and an agent's command mail the customer the same way; a job does not.
    #[test]
    fn set_status_sends_what_customer_mail_decides() {
        let mut bench = crate::workflow::testing::Bench::new("surveys = false", "");
        let id = bench.new_ticket("carol@customer.test", "Printer", "It is broken");
        let before = bench.outbox().len();
        let at = bench.now();
        let r = bench
            .write(|e, tx| e.set_status(tx, id, Status::Resolved, "admin:root", Cause::Admin, at));
        assert!(
            matches!(
                r,
                StatusChange::Changed {
                    mail: Some(OutboxKind::StatusChange),
                    ..
                }
            ),
            "{r:?}"
        );
        let outbox = bench.outbox();
        assert_eq!(outbox.len(), before + 1);
        assert_eq!(
            outbox.last().unwrap(),
            &(
                "status-change".to_owned(),
                vec!["carol@customer.test".to_owned()]
            )
        );
        let r = bench.write(|e, tx| {
            e.set_status(
                tx,
                id,
                Status::Closed,
                "postdesk",
                Cause::Job("auto-close after 7d"),
                at,
            )
        });
        assert!(
            matches!(r, StatusChange::Changed { mail: None, .. }),
            "{r:?}"
        );
        assert_eq!(bench.outbox().len(), before + 1, "auto-close sends no mail");
        let last = bench.events(id).pop().unwrap();
        assert_eq!(
            (last.kind.as_str(), last.detail.as_deref()),
            ("status", Some("auto-close after 7d"))
        );
    }
}
