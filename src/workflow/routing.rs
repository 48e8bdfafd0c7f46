//! Routing a new ticket (issue 5): the rules' decision, the VIP bump, and automatic
//! assignment (round robin or least loaded among the queue's available agents).
//!
//! - Rules come from `[[rule]]` in order ([`crate::rules::evaluate`]); without a match the
//!   ticket stays in its mailbox's queue at `normal` priority.
//! - Assignment happens when a rule says `assign = "team"`, or when the queue has
//!   `assignment = "round-robin"` or `"least-loaded"` and no rule named an agent. The
//!   default is manual (`assignment = "none"`): agents claim tickets with `#assign me`.
//! - Every decision is an event with its reason.

use chrono::{DateTime, Utc};

use super::lifecycle::Cause;
use super::Engine;
use crate::config::Config;
use crate::mail::parse::Parsed;
use crate::model::{EventKind, Language, MailboxName, Priority, Status, TicketId};
use crate::rules::{self, Assign, RuleInput, Strategy};
use crate::store::{NewEvent, StoreError, Tx};

const SYSTEM: &str = "postdesk";

/// Where a new ticket goes and what happens to it.
#[derive(Debug, Clone)]
pub struct Route {
    pub queue: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub assign: Option<Assign>,
    pub acknowledge: bool,
    pub matched: Vec<String>,
    pub vip: bool,
}

/// What the rules see of a message.
pub fn rule_input(parsed: &Parsed) -> RuleInput<'_> {
    let writes_chinese =
        crate::mail::parse::has_cjk(&parsed.subject) || crate::mail::parse::has_cjk(&parsed.text);
    RuleInput {
        subject: &parsed.subject,
        text: &parsed.text,
        from: parsed.from.as_ref().map(|f| f.address.as_str()),
        recipients: parsed
            .to
            .iter()
            .chain(&parsed.cc)
            .map(|p| p.address.as_str())
            .chain(parsed.delivered_to.iter().map(String::as_str))
            .collect(),
        headers: parsed
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect(),
        has_attachment: !parsed.attachments.is_empty(),
        language: if writes_chinese {
            Language::ZhCn
        } else {
            Language::En
        },
    }
}

/// The routing decision for a new ticket from `parsed`, as it arrives at `mailbox`: the
/// rules, then the VIP bump; without a matching rule the queue is the mailbox's (with no
/// mailbox given: the mailbox the message is addressed to, else the first one). Pure;
/// `postdesk rules test` calls this too, so it shows what the daemon would do.
pub fn route(cfg: &Config, parsed: &Parsed, mailbox: Option<&MailboxName>) -> Route {
    let d = rules::evaluate(&cfg.rules, &rule_input(parsed));
    let vip = parsed
        .from
        .as_ref()
        .is_some_and(|f| rules::is_vip(&cfg.vip, &f.address));
    let base = d.priority.unwrap_or(Priority::Normal);
    let arrived = mailbox
        .and_then(|m| cfg.mailbox(m.as_str()))
        .or_else(|| {
            cfg.mailboxes
                .iter()
                .find(|m| parsed.addressed_to(&m.address))
        })
        .or_else(|| cfg.mailboxes.first());
    Route {
        queue: d
            .queue
            .or_else(|| arrived.map(|m| m.queue.clone()))
            .unwrap_or_default(),
        priority: if vip { rules::bump(base) } else { base },
        tags: d.tags,
        assign: d.assign,
        acknowledge: d.acknowledge,
        matched: d.matched,
        vip,
    }
}

impl Engine {
    /// The rules' decision for a new message arriving in `default_queue`.
    pub(super) fn route(&self, parsed: &Parsed, mailbox: Option<&MailboxName>) -> Route {
        route(&self.cfg, parsed, mailbox)
    }

    /// Records the route on a new ticket: rule and VIP events, tags, assignment.
    pub(super) fn apply_route(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        route: &Route,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let event = |tx: &mut Tx<'_>, kind: EventKind, new: Option<&str>, detail: Option<&str>| {
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: SYSTEM,
                kind,
                old: None,
                new,
                detail,
            })
        };
        if !route.matched.is_empty() {
            let names = route.matched.join(", ");
            event(
                tx,
                EventKind::Rules,
                Some(&names),
                Some(&format!(
                    "queue {}, priority {}",
                    route.queue, route.priority
                )),
            )?;
        }
        if route.vip {
            event(
                tx,
                EventKind::Vip,
                Some(route.priority.as_str()),
                Some("VIP customer: one priority step higher"),
            )?;
        }
        if !route.acknowledge {
            event(
                tx,
                EventKind::AcknowledgementSkipped,
                None,
                Some("a rule says: do not acknowledge"),
            )?;
        }
        for tag in tx.add_tags(ticket, &route.tags)? {
            event(tx, EventKind::Tag, Some(&tag), Some("rule"))?;
        }
        let strategy = match &route.assign {
            Some(Assign::Agent(name)) => {
                return self.assign_new(tx, ticket, name, &format!("rule: assign = {name:?}"), at);
            }
            Some(Assign::Team(s)) => Some(*s),
            None => self.cfg.queue(&route.queue).and_then(|q| q.assignment),
        };
        let Some(strategy) = strategy else {
            return Ok(());
        };
        let team: Vec<&crate::config::Agent> = self
            .agents
            .iter()
            .filter(|a| a.works_in(&route.queue))
            .collect();
        let mut candidates: Vec<(&str, u32, u32)> = Vec::with_capacity(team.len());
        for a in &team {
            candidates.push((a.name.as_str(), a.capacity, tx.open_load(&a.name)?));
        }
        let last = tx.last_assigned(&route.queue)?;
        match rules::choose_agent(strategy, &candidates, last.as_deref()) {
            Some(name) => {
                tx.set_last_assigned(&route.queue, &name)?;
                let how = match strategy {
                    Strategy::RoundRobin => "round robin",
                    Strategy::LeastLoaded => "least loaded",
                };
                let loads: Vec<String> = candidates
                    .iter()
                    .map(|(n, c, o)| format!("{n} {o}/{c}"))
                    .collect();
                self.assign_new(
                    tx,
                    ticket,
                    &name,
                    &format!("{how} ({})", loads.join(", ")),
                    at,
                )
            }
            None => event(
                tx,
                EventKind::AssignmentSkipped,
                None,
                Some("every agent of the queue is at capacity"),
            ),
        }
    }

    fn assign_new(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        agent: &str,
        why: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        tx.set_assignee(ticket, Some(agent), at)?;
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor: SYSTEM,
            kind: EventKind::Assignee,
            old: None,
            new: Some(agent),
            detail: Some(why),
        })?;
        self.change_status(tx, ticket, Status::Open, SYSTEM, Cause::Assigned, at)?;
        Ok(())
    }
}
