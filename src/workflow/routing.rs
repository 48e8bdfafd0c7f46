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
    /// A matching rule set the queue (triage never overrides it).
    pub rule_queue: bool,
    /// A matching rule set the priority.
    pub rule_priority: bool,
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
    let (rule_queue, rule_priority) = (d.queue.is_some(), d.priority.is_some());
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
        rule_queue,
        rule_priority,
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

#[cfg(test)]
mod tests {
    use crate::model::{Status, TicketId};
    use crate::store::TicketSummary;
    use crate::workflow::testing::{Bench, ALICE, BOB};

    const CAROL: &str = "carol@customer.test";

    const BILLING: &str = r#"
[[queue]]
name = "billing"
display_name = "Billing"

[[rule]]
name = "billing"
keywords = ["invoice", "refund"]
queue = "billing"
priority = "high"
tags = ["billing", "money"]
"#;

    fn summary(bench: &Bench, id: TicketId) -> TicketSummary {
        bench.ticket(id)
    }

    #[test]
    fn keyword_rule_sets_queue_priority_and_tags() {
        let mut bench = Bench::new("", BILLING);
        let id = bench.new_ticket(CAROL, "Wrong invoice", "I was charged twice");
        let t = summary(&bench, id);
        assert_eq!(
            (t.queue.as_str(), t.priority.as_str(), t.tags.clone()),
            (
                "billing",
                "high",
                vec!["billing".to_owned(), "money".to_owned()]
            )
        );
        let rules: Vec<_> = bench.events_of(id, "rules");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].new.as_deref(), Some("billing"));
        assert_eq!(bench.count(id, "tag"), 2);
        assert_eq!(
            bench.outbox_of("agent-notification").len(),
            0,
            "no agent works in billing"
        );

        let other = bench.new_ticket(CAROL, "Printer", "It is broken");
        let t = summary(&bench, other);
        assert_eq!(
            (t.queue.as_str(), t.priority.as_str()),
            ("support", "normal")
        );
        assert!(t.tags.is_empty());
        assert_eq!(bench.count(other, "rules"), 0);
    }

    #[test]
    fn vip_starts_one_step_higher() {
        let mut bench = Bench::configured("vip = [\"vip.test\"]", "", "");
        let id = bench.new_ticket("boss@vip.test", "Printer", "It is broken");
        assert_eq!(summary(&bench, id).priority, "high");
        assert_eq!(bench.count(id, "vip"), 1);
    }

    #[test]
    fn round_robin_alternates_alice_and_bob() {
        let mut bench = Bench::new("assignment = \"round-robin\"", "");
        let mut assignees = Vec::new();
        for n in 1..=4 {
            let id = bench.new_ticket(CAROL, &format!("Problem {n}"), "Help");
            assert_eq!(bench.status(id), Status::Open, "assigned means open");
            let t = summary(&bench, id);
            assignees.push(t.assignee.expect("assigned"));
            let relays = bench.outbox_of("agent-notification");
            let to = relays.last().expect("a relay");
            let want = if assignees[n - 1] == "alice" {
                ALICE
            } else {
                BOB
            };
            assert_eq!(to, &vec![want.to_owned()], "only the assignee is told");
        }
        assert_ne!(assignees[0], assignees[1]);
        assert_eq!(assignees[0], assignees[2]);
        assert_eq!(assignees[1], assignees[3]);
        let mut both = assignees[..2].to_vec();
        both.sort();
        assert_eq!(both, ["alice", "bob"]);
    }

    #[test]
    fn rule_can_assign_an_agent_and_skip_the_acknowledgement() {
        let rules = r#"
[[rule]]
name = "printers"
subject_keywords = ["printer"]
assign = "bob"
acknowledge = false
"#;
        let mut bench = Bench::new("assignment = \"round-robin\"", rules);
        let id = bench.new_ticket(CAROL, "Printer jam", "Paper stuck");
        let t = summary(&bench, id);
        assert_eq!(
            t.assignee.as_deref(),
            Some("bob"),
            "the rule wins over round robin"
        );
        assert_eq!(bench.status(id), Status::Open);
        assert!(bench.outbox_of("acknowledgement").is_empty());
        assert_eq!(bench.count(id, "acknowledgement.skipped"), 1);
        assert_eq!(
            bench.outbox_of("agent-notification"),
            vec![vec![BOB.to_owned()]]
        );
    }
}
