//! Changes a sysadmin makes from the command line (`postdesk ticket set|merge`): the same
//! rules and events as agents' commands, with the sysadmin as the actor.

use chrono::{DateTime, Utc};

use super::lifecycle::{transition_allowed, Cause};
use super::{Engine, Refusal, WriteError};
use crate::model::{EventKind, Priority, Status, TicketId};
use crate::store::{StoreError, Tx};

/// One change to a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Status(Status),
    Priority(Priority),
    /// An agent name, or `None` to unassign.
    Assign(Option<String>),
    Queue(String),
    AddTags(Vec<String>),
    /// Merge the ticket into this one.
    MergeInto(TicketId),
}

impl Engine {
    /// Applies `changes` to `ticket` in order, all or nothing: any refusal rolls the
    /// whole call back (the caller's transaction) and names the change.
    pub fn admin_change(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        changes: &[Change],
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, WriteError> {
        let mut done = Vec::new();
        for change in changes {
            let t = tx
                .ticket_row(ticket)?
                .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
            match change {
                Change::Status(to) => {
                    if !transition_allowed(t.status, *to) {
                        return Err(Refusal::Transition {
                            from: t.status,
                            to: *to,
                        }
                        .into());
                    }
                    self.set_status(tx, ticket, *to, actor, Cause::Admin, at)?;
                    done.push(format!("status {to}"));
                }
                Change::Priority(p) => {
                    tx.set_priority(ticket, *p, at)?;
                    self.event_change(
                        tx,
                        ticket,
                        at,
                        actor,
                        EventKind::Priority,
                        Some(t.priority.as_str()),
                        Some(p.as_str()),
                    )?;
                    self.sla_on_priority(tx, ticket, at)?;
                    done.push(format!("priority {p}"));
                }
                Change::Assign(name) => {
                    if let Some(n) = name {
                        if !self.agents.iter().any(|a| &a.name == n) {
                            return Err(Refusal::UnknownAgent(n.clone()).into());
                        }
                    }
                    self.assign(tx, &t, name.as_deref(), actor, at)?;
                    done.push(format!("assignee {}", name.as_deref().unwrap_or("none")));
                }
                Change::Queue(q) => {
                    if self.cfg.queue(q).is_none() {
                        return Err(Refusal::UnknownQueue(q.clone()).into());
                    }
                    tx.set_queue(ticket, q, at)?;
                    self.event_change(
                        tx,
                        ticket,
                        at,
                        actor,
                        EventKind::Queue,
                        Some(&t.queue),
                        Some(q),
                    )?;
                    // The new queue's calendar and policy apply from now on.
                    self.sla_on_priority(tx, ticket, at)?;
                    done.push(format!("queue {q}"));
                }
                Change::AddTags(tags) => {
                    for tag in tx.add_tags(ticket, tags)? {
                        self.event_change(tx, ticket, at, actor, EventKind::Tag, None, Some(&tag))?;
                    }
                    done.push(format!("tags {}", tags.join(" ")));
                }
                Change::MergeInto(into) => {
                    if *into == ticket || tx.ticket_row(*into)?.is_none() {
                        return Err(Refusal::Merge {
                            ticket,
                            into: *into,
                        }
                        .into());
                    }
                    self.merge(tx, &t, *into, actor, at)?;
                    done.push(format!("merged into #{into}"));
                }
            }
        }
        Ok(done)
    }
}
