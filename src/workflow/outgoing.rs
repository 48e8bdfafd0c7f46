//! Every mail postdesk writes is queued here, inside the ingest transaction: the
//! acknowledgement, relays to agents, answers, status mail, command results.
//!
//! - One path ([`Engine::queue_mail`]): reserve the row, sign the Message-ID, render the
//!   template, store the bytes, queue the outbox row, record an event.
//! - Automatic mail to customers passes the loop gate first (rate limits, addresses that
//!   hard-bounced); what is held is an event. Past the global breaker it is queued for a
//!   later window instead (`next_attempt_at`), with an event saying until when.
//! - The acknowledgement repeats at most the first 80 characters of the customer's
//!   subject ([`notify::echoed_subject`]).
//! - Mail about no ticket (the digest, mailbox alarms) takes the same path without the
//!   ticket; alarms go to `[alerts] to` only, never to a customer.
//! - A mail that cannot be composed (an address lettre refuses, a broken template) is an
//!   event on the ticket, never a lost ticket.

use chrono::{DateTime, Utc};

use super::lifecycle::{priority_text, status_text};
use super::{Engine, SYSTEM};
use crate::config::Agent;
use crate::mail::parse::{self, Parsed};
use crate::model::{Audience, EventKind, Language, MessageId, MessageRowId, OutboxKind};
use crate::notify::{self, Addressee, AttachmentData, Mail, ThreadInfo};
use crate::store::{NewEvent, NewOutbox, NewOutgoing, StoreError, TicketRow, Tx};

/// Relays carry the customer's attachments up to this many bytes in all (each one is
/// also bounded by `relay_attachment_limit`).
const RELAY_ATTACHMENT_TOTAL: usize = 25 * 1024 * 1024;

/// One mail to queue; [`Engine::queue_mail`] fills in the rest from the ticket.
pub(super) struct Outgoing {
    pub kind: OutboxKind,
    pub language: Language,
    pub context: minijinja::Value,
    /// Display name on the support address (`"Jane via ACME Support"`, `"ACME Support"`).
    pub from_name: String,
    /// `Reply-To`: an agent's reply token address on every mail to one agent (a plain
    /// Reply then proves the agent), the support address on other staff mail.
    pub reply_to: Option<String>,
    pub to: Vec<Addressee>,
    pub cc: Vec<Addressee>,
    pub in_reply_to: Option<MessageId>,
    pub references: Vec<MessageId>,
    pub attachments: Vec<AttachmentData>,
    pub audience: Audience,
}

/// An SLA deadline's name for people.
fn deadline_text(deadline: &str, language: Language) -> &str {
    match (deadline, language) {
        ("first_response", Language::En) => "first response",
        ("next_response", Language::En) => "next response",
        ("first_response", Language::ZhCn) => "首次响应",
        ("next_response", Language::ZhCn) => "再次响应",
        ("resolution", Language::ZhCn) => "解决",
        (other, _) => other,
    }
}

impl Engine {
    /// The support address a ticket's mail comes from: its mailbox's, else the first
    /// mailbox of its queue, else any.
    pub(super) fn support_address(&self, t: &TicketRow) -> String {
        self.mailbox_of(t)
            .map(|m| m.address.clone())
            .unwrap_or_default()
    }

    fn mailbox_of(&self, t: &TicketRow) -> Option<&super::MailboxInfo> {
        self.mailboxes
            .get(&t.mailbox)
            .or_else(|| self.mailboxes.values().find(|m| m.queue == t.queue))
            .or_else(|| self.mailboxes.values().next())
    }

    /// Agent `agent`'s reply token address for ticket `t` (`agent::token`).
    pub(super) fn reply_address(&self, t: &TicketRow, agent: &Agent) -> String {
        let template = self.mailbox_of(t).map_or_else(
            || crate::agent::token::default_reply_address(&self.support_address(t)),
            |m| m.reply_address.clone(),
        );
        crate::agent::token::address(&template, &self.key, t.id, &agent.name)
    }

    pub(super) fn queue_name(&self, t: &TicketRow) -> String {
        self.queue(&t.queue).display_name.clone()
    }

    /// Queues `o` for ticket `t`; `None` when it was held or could not be composed (both
    /// recorded as events).
    pub(super) fn queue_mail(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        o: Outgoing,
        at: DateTime<Utc>,
    ) -> Result<Option<MessageRowId>, StoreError> {
        if o.to.is_empty() || self.quiet.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        let mut due = at;
        if o.kind.is_automatic_to_customer() {
            for to in &o.to {
                match self.schedule_automatic(tx, t.id, &to.address, o.kind.as_str(), at)? {
                    Some(when) => due = due.max(when),
                    None => return Ok(None),
                }
            }
        }
        let support = self.support_address(t);
        let thread = ThreadInfo {
            hostname: &self.identity.hostname,
            ticket: t.id,
            created_at: t.created_at,
            topic: &t.subject,
        };
        self.enqueue(tx, Some(t.id), &support, thread, o, at, due)
    }

    /// A mail about no ticket (the managers' digest), from `support`.
    pub(super) fn queue_digest(
        &self,
        tx: &mut Tx<'_>,
        q: &crate::config::Queue,
        context: minijinja::Value,
        to: Vec<Addressee>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let support = self
            .mailboxes
            .values()
            .find(|m| m.queue == q.name)
            .or_else(|| self.mailboxes.values().next())
            .map(|m| m.address.clone())
            .unwrap_or_default();
        let thread = ThreadInfo {
            hostname: &self.identity.hostname,
            ticket: crate::model::TicketId::new(0),
            created_at: at,
            topic: &q.display_name,
        };
        let o = Outgoing {
            kind: OutboxKind::Digest,
            language: q.language,
            context,
            from_name: q.display_name.clone(),
            reply_to: None,
            to,
            cc: Vec::new(),
            in_reply_to: None,
            references: Vec::new(),
            attachments: Vec::new(),
            audience: Audience::Agents,
        };
        self.enqueue(tx, None, &support, thread, o, at, at)?;
        Ok(())
    }

    /// A mail about a mailbox's incident (`workflow::health`) to `[alerts] to`, from
    /// `[alerts] from`; `None` when nobody is to be told. It is automatic
    /// (`Auto-Submitted: auto-generated`) and goes to staff only, past the customers' loop
    /// limits: its own limit is one mail when an incident opens and one when it closes.
    pub(super) fn queue_alert(
        &self,
        tx: &mut Tx<'_>,
        mailbox: &crate::model::MailboxName,
        language: Language,
        context: minijinja::Value,
        at: DateTime<Utc>,
    ) -> Result<Option<MessageRowId>, StoreError> {
        let alerts = &self.cfg.alerts;
        if alerts.to.is_empty() {
            return Ok(None);
        }
        let topic = format!("mailbox {mailbox}");
        let thread = ThreadInfo {
            hostname: &self.identity.hostname,
            ticket: crate::model::TicketId::new(0),
            created_at: at,
            topic: &topic,
        };
        let o = Outgoing {
            kind: OutboxKind::Alert,
            language,
            context,
            from_name: "postdesk".to_owned(),
            reply_to: None,
            to: alerts
                .to
                .iter()
                .map(|a| Addressee {
                    name: None,
                    address: a.clone(),
                })
                .collect(),
            cc: Vec::new(),
            in_reply_to: None,
            references: Vec::new(),
            attachments: Vec::new(),
            audience: Audience::Agents,
        };
        self.enqueue(tx, None, &alerts.from, thread, o, at, at)
    }

    /// Signs, composes, stores and queues one mail (see the module doc), to be sent from
    /// `due` on.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn enqueue(
        &self,
        tx: &mut Tx<'_>,
        ticket: Option<crate::model::TicketId>,
        support: &str,
        thread: ThreadInfo<'_>,
        o: Outgoing,
        at: DateTime<Utc>,
        due: DateTime<Utc>,
    ) -> Result<Option<MessageRowId>, StoreError> {
        let id = tx.next_message_row_id()?;
        let message_id = self
            .key
            .message_id(&self.identity.hostname, thread.ticket, id);
        let mail = Mail {
            kind: o.kind,
            language: o.language,
            context: o.context,
            from: Addressee {
                name: Some(o.from_name),
                address: support.to_owned(),
            },
            reply_to: o.reply_to.as_deref(),
            to: o.to,
            cc: o.cc,
            message_id: &message_id,
            in_reply_to: o.in_reply_to.as_ref(),
            references: &o.references,
            thread,
            attachments: o.attachments,
            at,
        };
        let composed = match notify::compose(&self.templates, &mail) {
            Ok(c) => c,
            Err(err) => {
                tx.append_event(&NewEvent {
                    ticket,
                    at,
                    actor: SYSTEM,
                    kind: EventKind::MailFailed(o.kind),
                    old: None,
                    new: None,
                    detail: Some(&err.to_string()),
                })?;
                return Ok(None);
            }
        };
        let to: Vec<String> = mail.to.iter().map(|a| a.address.clone()).collect();
        let cc: Vec<String> = mail.cc.iter().map(|a| a.address.clone()).collect();
        tx.insert_outgoing(&NewOutgoing {
            id,
            ticket,
            audience: o.audience,
            message_id: &message_id,
            from: support,
            to: &to,
            cc: &cc,
            subject: &composed.subject,
            text: &composed.text,
            in_reply_to: mail.in_reply_to,
            references: mail.references,
            raw: &composed.raw,
            at,
        })?;
        let rcpt: Vec<String> = to.iter().chain(&cc).cloned().collect();
        tx.queue_outbox(&NewOutbox {
            message: id,
            ticket,
            kind: o.kind,
            mail_from: support,
            rcpt: &rcpt,
            at,
            due,
        })?;
        tx.append_event(&NewEvent {
            ticket,
            at,
            actor: SYSTEM,
            kind: EventKind::MailQueued(o.kind),
            old: None,
            new: Some(&rcpt.join(", ")),
            detail: None,
        })?;
        Ok(Some(id))
    }

    /// The acknowledgement of a new ticket, in the customer's language.
    pub(super) fn queue_acknowledgement(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        parsed: &Parsed,
        articles: &[crate::kb::Suggestion],
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(customer) = parsed.from.as_ref() else {
            return Ok(false);
        };
        let mut references = parsed.references.clone();
        if !references.contains(&parsed.message_id) {
            references.push(parsed.message_id.clone());
        }
        let queue_name = self.queue_name(t);
        let sent = self.queue_mail(
            tx,
            t,
            Outgoing {
                kind: OutboxKind::Acknowledgement,
                language: t.language,
                context: minijinja::context! {
                    ticket => t.id.get(),
                    tag => crate::mail::subject::tag_token(&t.tag, t.id),
                    subject => notify::echoed_subject(&t.subject),
                    queue_name => &queue_name,
                    customer_name => notify::display_name(customer),
                    customer_address => &customer.address,
                    articles => super::knowledge::articles_context(articles),
                },
                from_name: queue_name.clone(),
                reply_to: None,
                to: vec![Addressee {
                    name: customer.name.clone(),
                    address: customer.address.clone(),
                }],
                cc: Vec::new(),
                in_reply_to: Some(parsed.message_id.clone()),
                references,
                attachments: Vec::new(),
                audience: Audience::Customer,
            },
            at,
        )?;
        Ok(sent.is_some())
    }

    /// The agents who should see a customer's message: the assignee, else the queue's team.
    pub(super) fn recipients_for(&self, t: &TicketRow) -> Vec<&Agent> {
        if let Some(a) = t
            .assignee
            .as_deref()
            .and_then(|n| self.agents.iter().find(|a| a.name == n))
        {
            return vec![a];
        }
        self.agents
            .iter()
            .filter(|a| a.works_in(&t.queue))
            .collect()
    }

    /// Mails a customer's message to the agents, one mail per agent: from the support
    /// address as "Customer via Queue", Reply-To that agent's reply token, the ticket's
    /// header block, the text without quoted history, the attachments up to
    /// `relay_attachment_limit` each (larger ones are listed). Relays per ticket and per
    /// queue are throttled (`[loop_protection] relays_per_ticket`, `relays_per_queue`); a
    /// held relay is an event.
    pub(super) fn relay_to_agents(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        parsed: &Parsed,
        raw: &[u8],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.relay_with(tx, t, parsed, raw, &super::knowledge::Found::default(), at)
    }

    /// [`Engine::relay_to_agents`] with what the knowledge base found for a new ticket:
    /// the similar resolved tickets and the matching articles, each a header line.
    pub(super) fn relay_with(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        parsed: &Parsed,
        raw: &[u8],
        found: &super::knowledge::Found<'_>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let agents = self.recipients_for(t);
        if agents.is_empty() || self.quiet.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        if !self.gate_relay(tx, t, at)? {
            return Ok(());
        }
        let queue_name = self.queue_name(t);
        let (writer_name, writer_address) = match &parsed.from {
            Some(p) => (notify::display_name(p), p.address.clone()),
            None => ("(unknown sender)".to_owned(), String::new()),
        };
        let requester = t.requester.clone().unwrap_or_default();
        let requester_name = t
            .requester_name
            .clone()
            .unwrap_or_else(|| requester.split('@').next().unwrap_or("").to_owned());
        let copied: Vec<String> = tx
            .participants(t.id)?
            .into_iter()
            .filter(|(a, role)| role == "cc" && *a != requester && !self.is_staff(a))
            .map(|(a, _)| a)
            .collect();
        let assignee = t.assignee.as_deref().map(|n| {
            self.agents
                .iter()
                .find(|a| a.name == n)
                .map_or_else(|| n.to_owned(), |a| a.display_name.clone())
        });
        let sla_due = self.next_due(tx, t)?;
        let limit = self.cfg.relay_attachment_limit;
        let (attachments, withheld) = if parsed.attachments.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let kept: Vec<AttachmentData> =
                parse::attachment_contents(raw, RELAY_ATTACHMENT_TOTAL, limit)
                    .into_iter()
                    .map(|(a, bytes)| AttachmentData {
                        filename: a.filename.unwrap_or_else(|| "attachment".to_owned()),
                        content_type: a.content_type,
                        bytes,
                    })
                    .collect();
            let withheld: Vec<String> = parsed
                .attachments
                .iter()
                .filter(|a| a.size > limit)
                .map(|a| {
                    format!(
                        "{} ({} KiB)",
                        a.filename.as_deref().unwrap_or("attachment"),
                        a.size.div_ceil(1024)
                    )
                })
                .collect();
            (kept, withheld)
        };
        let names: Vec<String> = attachments.iter().map(|a| a.filename.clone()).collect();
        let references = tx.thread_chain(t.id)?;
        // Triage's guesses for the ticket (issue 16): the relay's `Suggested:` line.
        let triage = tx.ticket_triage(t.id)?;
        // Only the top of a huge text is relayed: the quote trimming reads no more of it.
        let max = self.limits.max_relay_text_bytes;
        let top = crate::agent::quote::head(&parsed.text, max.saturating_mul(2));
        let text = crate::agent::quote::trim_quoted(top);
        let (text, mut cut) = cut_text(text, max);
        if cut > 0 {
            cut += parsed.text.len() - top.len();
        }
        for agent in agents {
            // Each agent reads the relay in the agent's own language.
            let language = agent.language;
            let from_name = match language {
                Language::ZhCn => format!("{writer_name} 通过 {queue_name}"),
                Language::En => format!("{writer_name} via {queue_name}"),
            };
            let due = sla_due
                .as_ref()
                .map(|(deadline, at)| format!("{at} ({})", deadline_text(deadline, language)));
            let context = minijinja::context! {
                ticket => t.id.get(),
                tag => crate::mail::subject::tag_token(&t.tag, t.id),
                subject => &t.subject,
                queue_name => &queue_name,
                writer_name => &writer_name,
                writer_address => &writer_address,
                writer_is_requester => writer_address == requester,
                customer_name => &requester_name,
                customer_address => &requester,
                copied => &copied,
                status => status_text(t.status, language),
                priority => priority_text(t.priority, language),
                assignee => assignee.as_deref(),
                sla_due => due.as_deref().unwrap_or(""),
                attachments => &names,
                withheld => &withheld,
                text => relayed_text(text, cut, t.id, language),
                similar => super::knowledge::similar_context(found.similar, language),
                articles => super::knowledge::articles_context(&found.articles),
                suggested => triage
                    .as_ref()
                    .map(|v| super::triage::describe_in(v, language))
                    .unwrap_or_default(),
            };
            self.queue_mail(
                tx,
                t,
                Outgoing {
                    kind: OutboxKind::AgentNotification,
                    language,
                    context,
                    from_name,
                    reply_to: Some(self.reply_address(t, agent)),
                    to: vec![Addressee {
                        name: Some(agent.display_name.clone()),
                        address: agent.addresses[0].clone(),
                    }],
                    cc: Vec::new(),
                    in_reply_to: Some(parsed.message_id.clone()),
                    references: references.clone(),
                    attachments: attachments.clone(),
                    audience: Audience::Agents,
                },
                at,
            )?;
        }
        Ok(())
    }

    /// The ticket's next running SLA deadline: (which, when, in the schedule's zone).
    fn next_due(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
    ) -> Result<Option<(String, String)>, StoreError> {
        let next = tx
            .deadlines(t.id)?
            .into_iter()
            .filter(|d| !d.met && !d.breached)
            .filter_map(|d| d.due_at.map(|due| (due, d.deadline)))
            .min();
        let zone = self.cfg.schedule.timezone;
        Ok(next.map(|(due, which)| {
            (
                which,
                due.with_timezone(&zone)
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string(),
            )
        }))
    }

    /// The relay throttle: counts one relay for the ticket and its queue when both are
    /// under their limits; otherwise records a held event and says no.
    fn gate_relay(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let lp = &self.loop_protection;
        let now = super::minute(at);
        let since = now - super::window_minutes(lp.relay_window) + 1;
        let ticket_key = format!("relay:ticket:{}", t.id.get());
        let queue_key = format!("relay:queue:{}", t.queue);
        let window = crate::config::format_duration(lp.relay_window);
        let held = if tx.automatic_count(&ticket_key, since)? >= u64::from(lp.relays_per_ticket) {
            Some(format!(
                "relay throttle: {} relays of ticket #{} in {window}",
                lp.relays_per_ticket, t.id
            ))
        } else if tx.automatic_count(&queue_key, since)? >= u64::from(lp.relays_per_queue) {
            Some(format!(
                "relay throttle: {} relays in queue {} in {window}",
                lp.relays_per_queue, t.queue
            ))
        } else {
            None
        };
        match held {
            None => {
                tx.count_automatic(&ticket_key, now)?;
                tx.count_automatic(&queue_key, now)?;
                Ok(true)
            }
            Some(reason) => {
                tx.append_event(&NewEvent {
                    ticket: Some(t.id),
                    at,
                    actor: SYSTEM,
                    kind: EventKind::NotificationHeld,
                    old: None,
                    new: Some(OutboxKind::AgentNotification.as_str()),
                    detail: Some(&reason),
                })?;
                Ok(false)
            }
        }
    }

    /// An automatic mail to a ticket's requester about the ticket (status mail, survey),
    /// threaded on what the customer has seen. The template gets `ticket`, `tag`,
    /// `subject`, `queue_name`, `customer_name`, `customer_address`, plus `extra`.
    pub(super) fn queue_customer_notice(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        kind: OutboxKind,
        extra: minijinja::Value,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(requester) = t.requester.clone() else {
            return Ok(());
        };
        let queue_name = self.queue_name(t);
        let references = tx.thread_chain(t.id)?;
        let customer_name = t
            .requester_name
            .clone()
            .unwrap_or_else(|| requester.split('@').next().unwrap_or("").to_owned());
        self.queue_mail(
            tx,
            t,
            Outgoing {
                kind,
                language: t.language,
                context: minijinja::context! {
                    ticket => t.id.get(),
                    tag => crate::mail::subject::tag_token(&t.tag, t.id),
                    subject => &t.subject,
                    queue_name => &queue_name,
                    customer_name => customer_name,
                    customer_address => &requester,
                    ..extra
                },
                from_name: queue_name.clone(),
                reply_to: None,
                to: vec![Addressee {
                    name: t.requester_name.clone(),
                    address: requester,
                }],
                cc: Vec::new(),
                in_reply_to: references.last().cloned(),
                references,
                attachments: Vec::new(),
                audience: Audience::Customer,
            },
            at,
        )?;
        Ok(())
    }
}

/// `text` cut to at most `max` bytes at a line (or character) boundary, and how many bytes
/// were left out.
fn cut_text(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let end = text[..end]
        .rfind('\n')
        .filter(|n| *n > max / 2)
        .unwrap_or(end);
    (&text[..end], text.len() - end)
}

/// The relayed text, with a line saying where the rest is when it was cut.
fn relayed_text(
    text: &str,
    cut: usize,
    ticket: crate::model::TicketId,
    language: Language,
) -> String {
    if cut == 0 {
        return text.to_owned();
    }
    let kib = cut.div_ceil(1024);
    match language {
        Language::ZhCn => format!(
            "{text}\n\n[还有 {kib} KiB 未转发：postdesk ticket show {}]",
            ticket.get()
        ),
        Language::En => format!(
            "{text}\n\n[{kib} KiB more not relayed: postdesk ticket show {}]",
            ticket.get()
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Status, TicketId};
    use crate::workflow::lifecycle::Cause;
    use crate::workflow::testing::{Bench, ALICE, BOB, SUPPORT};
    use crate::workflow::{Applied, Delivered};

    const CAROL: &str = "carol@customer.test";

    /// The unfolded value of header `name` in the stored bytes of an outgoing message.
    fn header(bench: &Bench, ticket: TicketId, message: i64, name: &str) -> Option<String> {
        let raw = bench
            .reader()
            .raw_message(ticket, message)
            .expect("read")
            .expect("raw kept");
        let text = String::from_utf8_lossy(&raw)
            .replace("\r\n ", " ")
            .replace("\r\n\t", " ");
        let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
        let prefix = format!("{}:", name.to_ascii_lowercase());
        head.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }

    /// Invariant 3: ten automatic mails to one address an hour; the eleventh is held.
    #[test]
    fn eleventh_automatic_mail_in_an_hour_is_held() {
        let mut bench = Bench::new("", "");
        let mut ids = Vec::new();
        for n in 1..=11 {
            ids.push(bench.new_ticket(CAROL, &format!("Problem {n}"), "Help"));
            bench.clock.advance(chrono::Duration::minutes(1));
        }
        assert_eq!(bench.outbox_of("acknowledgement").len(), 10);
        let last = *ids.last().unwrap();
        let held: Vec<_> = bench.events_of(last, "notification.held");
        assert_eq!(held.len(), 1, "{held:?}");
        assert!(
            held[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("rate limit") && d.contains(CAROL)),
            "{held:?}"
        );
        assert_eq!(bench.count(ids[9], "notification.held"), 0);
        assert_eq!(
            bench.outbox_of("agent-notification").len(),
            22,
            "relays to agents (one per agent) are not held by the customer's rate limit"
        );

        bench.clock.advance(chrono::Duration::hours(1));
        let d = bench.send(CAROL, "Problem 12", "", "Help");
        assert!(
            matches!(
                d,
                Delivered::Applied(Applied::NewTicket {
                    acknowledged: true,
                    ..
                })
            ),
            "an hour later the limit is free again: {d:?}"
        );
    }

    #[test]
    fn undeliverable_address_gets_no_automatic_mail() {
        let mut bench = Bench::new("status_mail = true\nsurveys = false", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let before = bench.outbox();
        let at = bench.now();
        bench.write(|e, tx| {
            tx.mark_undeliverable(CAROL, at, Some("5.1.1"), Some("user unknown"), Some(id))?;
            e.set_status(tx, id, Status::Closed, "admin:root", Cause::Admin, at)
                .map(|_| ())
        });
        assert_eq!(bench.status(id), Status::Closed);
        assert_eq!(
            bench.outbox(),
            before,
            "no status mail to a hard-bounced address"
        );
        let held: Vec<_> = bench.events_of(id, "notification.held");
        assert_eq!(held.len(), 1, "{held:?}");
        assert!(
            held[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("undeliverable") && d.contains("5.1.1")),
            "{held:?}"
        );
    }

    #[test]
    fn relays_go_to_each_agent_with_the_agents_reply_token() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(
            "Carol Smith <carol@customer.test>",
            "Printer",
            "It is broken",
        );
        assert_eq!(
            bench.outbox_of("agent-notification"),
            vec![vec![ALICE.to_owned()], vec![BOB.to_owned()]]
        );
        let relays: Vec<_> = bench
            .messages(id)
            .into_iter()
            .filter(|m| m.direction == "out" && m.audience == "agents")
            .collect();
        assert_eq!(relays.len(), 2);
        for (relay, name) in relays.iter().zip(["alice", "bob"]) {
            let from = header(&bench, id, relay.id, "From").expect("From");
            assert!(
                from.contains("Carol Smith via ACME Support") && from.contains(SUPPORT),
                "{from}"
            );
            let reply_to = header(&bench, id, relay.id, "Reply-To").expect("Reply-To");
            assert!(
                reply_to.contains(&bench.token_address(id, name)),
                "{name}: {reply_to}"
            );
            assert!(header(&bench, id, relay.id, "Auto-Submitted").is_some());
        }

        // Once assigned, only the assignee gets the customer's next message.
        let d = bench.reply(ALICE, id, "agents", "", "#assign me");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        bench.reply(CAROL, id, "customer", "", "Any news?");
        assert_eq!(
            bench.outbox_of("agent-notification").last(),
            Some(&vec![ALICE.to_owned()])
        );
    }

    /// A customer's 300 KB text reaches each agent cut to `max_relay_text_bytes`, with a line
    /// saying where the rest is; the ticket keeps the whole text.
    #[test]
    fn a_huge_customer_text_is_relayed_cut_with_a_pointer_to_the_rest() {
        let mut bench = Bench::configured("[limits]\nmax_relay_text_bytes = 4096", "", "");
        let line = "The printer on floor 3 prints only blank pages again.\n";
        let body = line.repeat(300_000 / line.len());
        let id = bench.new_ticket(CAROL, "Printer", &body);
        let relay = bench.last_sent(id, "agents");
        assert!(
            relay.text.len() < 4096 + 2048,
            "{} bytes relayed",
            relay.text.len()
        );
        assert!(
            relay
                .text
                .contains("KiB more not relayed: postdesk ticket show"),
            "{}",
            &relay.text[relay.text.len() - 300..]
        );
        let first = bench
            .messages(id)
            .into_iter()
            .find(|m| m.direction == "in")
            .expect("the customer's message");
        assert!(
            first.text.len() >= body.len() - 2,
            "the ticket keeps the whole text"
        );
    }

    /// Agent amplification: a customer flooding one ticket reaches the agents at most
    /// `relays_per_ticket` times a window; attachments over the limit are listed.
    #[test]
    fn relays_are_throttled_per_ticket_and_big_attachments_listed() {
        let mut bench = Bench::configured(
            "relay_attachment_limit = 1000\n[loop_protection]\nrelays_per_ticket = 3",
            "",
            "",
        );
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        for n in 0..4 {
            bench.reply(CAROL, id, "customer", "", &format!("More detail {n}"));
        }
        assert_eq!(
            bench.outbox_of("agent-notification").len(),
            6,
            "three relays, two agents each"
        );
        assert_eq!(bench.count(id, "notification.held"), 2);
        bench.clock.advance(chrono::Duration::hours(1));

        let big = "A".repeat(3000);
        let d = bench.send(
            CAROL,
            &format!("Re: [ACME #{id}] Printer"),
            &format!(
                "In-Reply-To: {}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n",
                bench.our_message_id(id, "customer")
            ),
            &format!(
                "--B\nContent-Type: text/plain\n\nSee the files.\n--B\nContent-Type: text/plain; name=small.txt\nContent-Disposition: attachment; filename=small.txt\n\nsmall\n--B\nContent-Type: text/plain; name=big.txt\nContent-Disposition: attachment; filename=big.txt\n\n{big}\n--B--"
            ),
        );
        assert_eq!(ticket_of_reply(&d), id);
        let relay = bench.last_sent(id, "agents");
        assert!(
            relay.text.contains("Attached:  small.txt"),
            "{}",
            relay.text
        );
        assert!(
            relay.text.contains("Not attached") && relay.text.contains("big.txt (3 KiB)"),
            "{}",
            relay.text
        );
        let raw = bench
            .reader()
            .raw_message(id, relay.id)
            .expect("read")
            .expect("kept");
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.contains("filename=\"small.txt\"") || raw.contains("filename=small.txt"));
        assert!(!raw.contains(&big[..200]), "the big file is not attached");
    }

    fn ticket_of_reply(d: &Delivered) -> TicketId {
        crate::workflow::testing::ticket_of(d)
    }
}
