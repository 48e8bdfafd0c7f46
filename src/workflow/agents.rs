//! Agents' mail on a ticket: answers, command lines and internal notes (issue 4,
//! DESIGN.md invariant 5).
//!
//! - A command or an answer takes effect only when the mail is proven to be the agent's
//!   ([`Proof`]): it is addressed to that agent's reply token for this ticket
//!   (`agent::token`, the `Reply-To` of every mail we send an agent), or, with
//!   `trusted_authserv_id` set, our receiving server reports an aligned DKIM/DMARC pass
//!   (`agent::auth`). The `From` address alone proves nothing. Otherwise nothing changes
//!   and nothing reaches the customer: the mail is kept as an internal note marked
//!   unverified, each refused command is an event, and the agent (at the configured
//!   address) is told why and how to act, rate limited like automatic mail.
//! - The commands of one mail apply together or not at all: any unknown command, bad value
//!   or unknown agent refuses them all, nothing is sent to the customer, and the agent
//!   gets a mail listing what was refused.
//! - Bounded (issue 12, `[limits]`): a mail's first `max_command_lines` command lines are
//!   read, `max_command_words` words of each. What is read applies as above; what is not
//!   is one `command.capped` event and is said in the agent's result mail (the answer
//!   still goes). Refused lines are events up to `max_events_per_message`, the rest one
//!   `command.capped` event; the agent's mails list as many and count the rest. One
//!   mail's `#cc` lines add at most `max_people_per_message` people, else all are refused.
//! - `#note`, or mail to a comment address, is internal. Otherwise the text under the
//!   command lines is the answer: mailed to the requester and the Cc'd participants from
//!   the support address, never with the agent's address. The first answer records the
//!   first response time; an answer sets `new`/`open` to `pending` unless a command set
//!   a status, and an unassigned ticket goes to the agent who answered.

use chrono::{DateTime, Utc};

use super::lifecycle::{transition_allowed, Cause, StatusChange};
use super::outgoing::Outgoing;
use super::{Applied, Engine};
use crate::agent::commands::{split_commands, Assignee, Command, CommandError};
use crate::config::Agent;
use crate::mail::parse::Parsed;
use crate::model::{Audience, EventKind, MessageRowId, OutboxKind, Status, TicketId};
use crate::notify::Addressee;
use crate::store::{NewEvent, StoreError, TicketRow, Tx};

/// How much of an agent's mail is searched for the quoted relay (`agent::quote::cut_answer`
/// costs about a microsecond a byte on some texts, inside the writer).
const MAX_ANSWER_SCAN: usize = 512 * 1024;

/// How an agent's mail was proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Proof {
    /// A reply to the agent's own reply token for this ticket.
    Token,
    /// Our receiving server's DKIM/DMARC pass (what it said).
    AuthResults(String),
}

impl Engine {
    pub(super) fn apply_agent_mail(
        &self,
        tx: &mut Tx<'_>,
        row: MessageRowId,
        parsed: &Parsed,
        agent: &Agent,
        ticket: TicketId,
        at: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        tx.set_message_ticket(row, ticket)?;
        tx.touch_ticket(ticket, at)?;
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        // An HTML-only reply is read without its quote containers (`Parsed::reply_text`).
        let split = split_commands(
            parsed.reply_text.as_deref().unwrap_or(&parsed.text),
            &self.limits,
        );
        let actor = agent.name.as_str();
        let max = self.limits.max_events_per_message;

        if let Err(reason) = self.prove(tx, parsed, agent, ticket)? {
            tx.set_message_agent(row, actor, Audience::Internal, true)?;
            self.event(
                tx,
                ticket,
                at,
                actor,
                EventKind::MessageUnverified,
                None,
                Some(&reason),
            )?;
            let lines: Vec<String> = split
                .commands
                .iter()
                .map(Command::describe)
                .chain(split.errors.iter().map(|e| e.line.clone()))
                .collect();
            self.record_refused(
                tx,
                ticket,
                actor,
                lines.iter().map(|line| (line.as_str(), reason.as_str())),
                &split.unread,
                at,
            )?;
            // The explanation goes to the agent's own address, rate limited like any
            // automatic mail: forged mail must not become a way to flood an agent.
            let to = agent.addresses[0].as_str();
            if self.gate_automatic(tx, ticket, to, OutboxKind::CommandRefused.as_str(), at)? {
                let shown: Vec<String> = lines.iter().take(max).map(|l| for_mail(l)).collect();
                let context = minijinja::context! {
                    tag => crate::mail::subject::tag_token(&t.tag, t.id), subject => &t.subject,
                    agent_name => &agent.display_name, reason => &reason, commands => &shown,
                    more => lines.len() - shown.len(), unread => split.unread.describe(),
                };
                self.mail_agent(
                    tx,
                    &t,
                    agent,
                    OutboxKind::CommandRefused,
                    context,
                    parsed,
                    at,
                )?;
            }
            return Ok(Applied::FollowUp { ticket });
        }

        // `#macro` lines become their commands, `#kb` and `#macro` texts go into the answer;
        // an unknown name is refused like any bad command.
        let expanded = self.expand_knowledge(&split.commands);
        let mut refused: Vec<CommandError> = split.errors.clone();
        refused.extend(expanded.errors.iter().cloned());
        refused.extend(self.check_commands(tx, &t, &expanded.commands)?);
        if !refused.is_empty() {
            tx.set_message_agent(row, actor, Audience::Internal, false)?;
            self.record_refused(
                tx,
                ticket,
                actor,
                refused.iter().map(|e| (e.line.as_str(), e.reason.as_str())),
                &split.unread,
                at,
            )?;
            self.event(
                tx,
                ticket,
                at,
                actor,
                EventKind::Note,
                None,
                Some("commands refused: kept as an internal note"),
            )?;
            let accepted: Vec<String> = expanded
                .commands
                .iter()
                .take(max)
                .map(|c| for_mail(&c.describe()))
                .collect();
            let refused_ctx: Vec<minijinja::Value> = refused
                .iter()
                .take(max)
                .map(|e| minijinja::context! { line => &e.line, reason => &e.reason })
                .collect();
            let context = minijinja::context! {
                tag => crate::mail::subject::tag_token(&t.tag, t.id), subject => &t.subject,
                agent_name => &agent.display_name, refused => refused_ctx, accepted => accepted,
                more => refused.len().saturating_sub(max)
                    + expanded.commands.len().saturating_sub(max),
                unread => split.unread.describe(),
            };
            self.mail_agent(
                tx,
                &t,
                agent,
                OutboxKind::CommandResult,
                context,
                parsed,
                at,
            )?;
            return Ok(Applied::FollowUp { ticket });
        }
        if let Some(unread) = split.unread.describe() {
            // What was read applies; the agent learns what was not (no refusal to record).
            self.record_refused(tx, ticket, actor, [], &split.unread, at)?;
            let context = minijinja::context! {
                tag => crate::mail::subject::tag_token(&t.tag, t.id), subject => &t.subject,
                agent_name => &agent.display_name, unread => unread,
            };
            self.mail_agent(
                tx,
                &t,
                agent,
                OutboxKind::CommandResult,
                context,
                parsed,
                at,
            )?;
        }

        tx.set_message_agent(row, actor, Audience::Internal, false)?;
        let to_comment = self
            .comment_addresses
            .iter()
            .any(|c| parsed.addressed_to(c));
        let note = to_comment || expanded.commands.contains(&Command::Note);
        // The last `#status` wins; its customer mail goes after the answer.
        let mut status_set = None;
        for cmd in &expanded.commands {
            if let Some(set) = self.apply_command(tx, ticket, agent, cmd, at)? {
                status_set = Some(set);
            }
        }
        if note {
            let why = if to_comment {
                "mail to the comment address"
            } else {
                "#note"
            };
            self.event(tx, ticket, at, actor, EventKind::Note, None, Some(why))?;
            return Ok(Applied::FollowUp { ticket });
        }
        let body = split.body;
        let only: Vec<String> = expanded
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::To(a) => Some(a.iter().map(|x| x.to_ascii_lowercase())),
                _ => None,
            })
            .flatten()
            .collect();
        // The answer is what the agent wrote above the quoted relay; nothing left (only
        // commands, a signature) is no answer. The final check refuses an answer that still
        // holds part of the relay: it never reaches the customer.
        // The cut is looked for in the top of the text only (the quoted relay starts right
        // below what the agent wrote); an answer longer than that with no quote in it is
        // refused rather than read whole inside the writer, or sent cut.
        let top = crate::agent::quote::head(body, MAX_ANSWER_SCAN);
        let cut = crate::agent::quote::cut_answer(top);
        if top.len() < body.len() && !cut.was_cut() {
            let why = format!(
                "it is longer than {} KiB: postdesk sends answers up to that size (attach \
                 a long text as a file)",
                MAX_ANSWER_SCAN / 1024
            );
            self.refuse_answer(tx, ticket, agent, parsed, &why, at)?;
        } else if cut.is_empty() && cut.text_below {
            // Bottom-posted: the text is below the quote, where it cannot be told from it.
            let why =
                "your text is below the quoted relay, where postdesk cannot tell it from the quote"
                    .to_owned();
            self.refuse_answer(tx, ticket, agent, parsed, &why, at)?;
        } else if !cut.is_empty() || !expanded.texts.is_empty() {
            let written = if cut.is_empty() { "" } else { &cut.answer };
            let answer = with_inserted(written, &expanded.texts);
            match crate::agent::quote::leaks_relay(&answer) {
                None => {
                    self.send_answer(tx, ticket, agent, &answer, status_set.is_some(), &only, at)?;
                    if cut.text_below {
                        self.event(
                            tx,
                            ticket,
                            at,
                            actor,
                            EventKind::Note,
                            None,
                            Some("text below the quoted relay was not sent"),
                        )?;
                    }
                }
                Some(leak) => {
                    let why = format!(
                        "it still contains {leak}: postdesk could not tell your text from the quoted relay"
                    );
                    self.refuse_answer(tx, ticket, agent, parsed, &why, at)?;
                }
            }
        }
        if let Some((status, Some(kind))) = status_set {
            self.send_status_mail(tx, ticket, status, kind, at)?;
        }
        Ok(Applied::FollowUp { ticket })
    }

    /// `commands` with each `#macro` replaced by its command lines, the texts of `#kb` and
    /// `#macro` in the order written, and a refusal for each unknown name.
    fn expand_knowledge(&self, commands: &[Command]) -> Expanded {
        let kb = &self.cfg.knowledge.kb;
        let mut out = Expanded::default();
        for cmd in commands {
            match cmd {
                Command::Kb(name) => match kb.article(name) {
                    Some(article) => out.texts.push(article.text.clone()),
                    None => out.errors.push(CommandError {
                        line: cmd.describe(),
                        reason: unknown_name(
                            "article",
                            name,
                            kb.articles().iter().map(|a| a.name.as_str()).collect(),
                        ),
                    }),
                },
                Command::Macro(name) => match kb.macro_named(name) {
                    Some(m) => {
                        // Checked at load: every line is one command, none a #macro or #kb.
                        let lines = m.commands.join("\n");
                        let split = split_commands(&lines, &self.limits);
                        out.commands.extend(split.commands);
                        out.errors.extend(split.errors);
                        if !m.text.trim().is_empty() {
                            out.texts.push(m.text.trim().to_owned());
                        }
                    }
                    None => out.errors.push(CommandError {
                        line: cmd.describe(),
                        reason: unknown_name("macro", name, kb.macro_names()),
                    }),
                },
                other => out.commands.push(other.clone()),
            }
        }
        out
    }

    /// What the commands would do wrong on `t`, checked before any applies.
    fn check_commands(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        commands: &[Command],
    ) -> Result<Vec<CommandError>, StoreError> {
        let mut errors = Vec::new();
        let mut status = t.status;
        // Read once, for every `#to` and `#cc -` address (constant work per address).
        let mut people: Option<std::collections::HashMap<String, String>> = None;
        let mut adding = 0;
        let max_people = self.limits.max_people_per_message;
        for cmd in commands {
            let err = |reason: String| CommandError {
                line: cmd.describe(),
                reason,
            };
            match cmd {
                Command::Assign(Assignee::Agent(name))
                    if !self
                        .agents
                        .iter()
                        .any(|a| a.name.eq_ignore_ascii_case(name)) =>
                {
                    let known: Vec<&str> = self.agents.iter().map(|a| a.name.as_str()).collect();
                    errors.push(err(format!(
                        "unknown agent {name:?} (agents: {})",
                        known.join(", ")
                    )));
                }
                Command::Assign(Assignee::Me | Assignee::Agent(_)) if status == Status::New => {
                    status = Status::Open
                }
                Command::Merge(other) | Command::Link(other) if *other == t.id => {
                    errors.push(err(format!("ticket #{} is this ticket", other.get())));
                }
                Command::Merge(other) | Command::Link(other)
                    if tx.ticket_row(*other)?.is_none() =>
                {
                    errors.push(err(format!("no ticket #{}", other.get())));
                }
                Command::SetStatus(to) if *to != status && !transition_allowed(status, *to) => {
                    errors.push(err(format!("cannot change status from {status} to {to}")));
                }
                Command::SetStatus(to) => status = *to,
                Command::AddCc(addresses) => {
                    adding += addresses.len();
                    if adding > max_people && adding - addresses.len() <= max_people {
                        errors.push(err(format!(
                            "one mail adds at most {max_people} people (limits.max_people_per_message)"
                        )));
                    }
                }
                Command::To(addresses) | Command::RemoveCc(addresses) => {
                    let people = match &mut people {
                        Some(people) => people,
                        None => people.insert(tx.participants(t.id)?.into_iter().collect()),
                    };
                    for a in addresses {
                        let a = a.to_ascii_lowercase();
                        match people.get(&a) {
                            None => errors.push(err(format!(
                                "{a} is not a participant of #{} (add it with #cc {a} first)",
                                t.id
                            ))),
                            Some(role)
                                if role == "requester" && matches!(cmd, Command::RemoveCc(_)) =>
                            {
                                errors.push(err(format!(
                                    "{a} is the requester; use #to to answer others only"
                                )))
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(errors)
    }

    /// Applies one checked command; returns the status it set, if any, with the customer
    /// mail that change calls for.
    fn apply_command(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        agent: &Agent,
        cmd: &Command,
        at: DateTime<Utc>,
    ) -> Result<Option<(Status, Option<OutboxKind>)>, StoreError> {
        let actor = agent.name.as_str();
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        match cmd {
            Command::SetStatus(to) if *to == t.status => {}
            Command::SetStatus(to) => {
                let change = self.change_status(tx, ticket, *to, actor, Cause::AgentCommand, at)?;
                let mail = match change {
                    StatusChange::Changed { mail, .. } => mail,
                    StatusChange::Refused(_) => None,
                };
                return Ok(Some((*to, mail)));
            }
            Command::Assign(who) => {
                let name = match who {
                    Assignee::Me => Some(agent.name.clone()),
                    Assignee::Nobody => None,
                    Assignee::Agent(n) => self
                        .agents
                        .iter()
                        .find(|a| a.name.eq_ignore_ascii_case(n))
                        .map(|a| a.name.clone()),
                };
                self.assign(tx, &t, name.as_deref(), actor, at)?;
            }
            Command::SetPriority(p) if *p != t.priority => {
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
            }
            Command::SetPriority(_) => {}
            Command::AddTags(tags) => {
                for tag in tx.add_tags(ticket, tags)? {
                    self.event(tx, ticket, at, actor, EventKind::Tag, Some(&tag), None)?;
                }
            }
            Command::RemoveTags(tags) => {
                for tag in tx.remove_tags(ticket, tags)? {
                    self.event_change(tx, ticket, at, actor, EventKind::Untag, Some(&tag), None)?;
                }
            }
            Command::AddCc(addresses) => {
                for a in addresses {
                    let a = a.to_ascii_lowercase();
                    if !tx.participant(ticket, &a)? {
                        tx.add_participant(ticket, &a, "cc")?;
                        self.event(tx, ticket, at, actor, EventKind::Cc, Some(&a), None)?;
                    }
                }
            }
            Command::RemoveCc(addresses) => {
                for a in addresses {
                    let a = a.to_ascii_lowercase();
                    if tx.remove_cc(ticket, &a)? {
                        self.event_change(tx, ticket, at, actor, EventKind::Cc, Some(&a), None)?;
                    }
                }
            }
            // Expanded before the commands are checked (`expand_knowledge`).
            Command::Note | Command::To(_) | Command::Kb(_) | Command::Macro(_) => {}
            Command::Merge(into) => self.merge(tx, &t, *into, actor, at)?,
            Command::Link(other) => {
                tx.set_linked(ticket, *other)?;
                self.event(
                    tx,
                    ticket,
                    at,
                    actor,
                    EventKind::Linked,
                    Some(&format!("#{}", other.get())),
                    None,
                )?;
                self.event(
                    tx,
                    *other,
                    at,
                    actor,
                    EventKind::Linked,
                    Some(&format!("#{}", ticket.get())),
                    None,
                )?;
            }
        }
        Ok(None)
    }

    /// Moves every message of `t` into `into`, and closes `t` (later replies follow).
    pub(super) fn merge(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        into: TicketId,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        tx.merge_ticket(t.id, into, at)?;
        self.event(
            tx,
            t.id,
            at,
            actor,
            EventKind::Merged,
            Some(&format!("#{}", into.get())),
            Some("messages moved"),
        )?;
        self.event(
            tx,
            into,
            at,
            actor,
            EventKind::Merged,
            Some(&format!("#{}", t.id.get())),
            Some("merged into this ticket"),
        )?;
        if transition_allowed(t.status, Status::Closed) {
            self.change_status(tx, t.id, Status::Closed, actor, Cause::Merged, at)?;
        }
        Ok(())
    }

    /// Sets the assignee; assigning a `new` ticket makes it `open` (DESIGN.md lifecycle).
    pub(super) fn assign(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        name: Option<&str>,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if t.assignee.as_deref() == name {
            return Ok(());
        }
        tx.set_assignee(t.id, name, at)?;
        self.event_change(
            tx,
            t.id,
            at,
            actor,
            EventKind::Assignee,
            t.assignee.as_deref(),
            name,
        )?;
        if name.is_some() && t.status == Status::New {
            self.change_status(tx, t.id, Status::Open, actor, Cause::Assigned, at)?;
        }
        Ok(())
    }

    /// The agent's answer: to the requester, Cc every other participant (as reply-all
    /// would), never to our own or agents' addresses; `only` (from `#to`) narrows it to
    /// those participants.
    #[allow(clippy::too_many_arguments)]
    fn send_answer(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        agent: &Agent,
        body: &str,
        status_given: bool,
        only: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        let Some(requester) = t.requester.clone() else {
            self.event(
                tx,
                ticket,
                at,
                &agent.name,
                EventKind::MailFailed(OutboxKind::Answer),
                None,
                Some("the ticket has no requester to answer"),
            )?;
            return Ok(());
        };
        let others: Vec<String> = tx
            .participants(ticket)?
            .into_iter()
            .filter(|(a, role)| role != "requester" && *a != requester && !self.is_staff(a))
            .map(|(address, _)| address)
            .collect();
        let person = |address: &str| Addressee {
            name: (address == requester)
                .then(|| t.requester_name.clone())
                .flatten(),
            address: address.to_owned(),
        };
        let (to, cc): (Vec<Addressee>, Vec<Addressee>) = if only.is_empty() {
            (
                vec![person(&requester)],
                others.iter().map(|a| person(a)).collect(),
            )
        } else {
            (only.iter().map(|a| person(a)).collect(), Vec::new())
        };
        let queue_name = self.queue_name(&t);
        let references = tx.thread_chain(ticket)?;
        let in_reply_to = tx
            .last_customer_message(ticket)?
            .or_else(|| references.last().cloned());
        let queued = self.queue_mail(
            tx,
            &t,
            Outgoing {
                kind: OutboxKind::Answer,
                language: t.language,
                context: minijinja::context! {
                    ticket => t.id.get(), tag => crate::mail::subject::tag_token(&t.tag, t.id), subject => &t.subject,
                    queue_name => &queue_name, answer => body, agent_name => &agent.display_name,
                },
                from_name: queue_name.clone(),
                reply_to: None,
                to,
                cc,
                in_reply_to,
                references,
                attachments: Vec::new(),
                audience: Audience::Customer,
            },
            at,
        )?;
        if queued.is_none() {
            return Ok(());
        }
        if tx.record_first_response(ticket, at)? {
            self.event(
                tx,
                ticket,
                at,
                &agent.name,
                EventKind::FirstResponse,
                None,
                None,
            )?;
        }
        self.sla_on_answer(tx, ticket, at)?;
        if t.assignee.is_none() {
            self.assign(tx, &t, Some(&agent.name), &agent.name, at)?;
        }
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        if !status_given && matches!(t.status, Status::New | Status::Open) {
            self.change_status(
                tx,
                ticket,
                Status::Pending,
                &agent.name,
                Cause::Answered,
                at,
            )?;
        }
        Ok(())
    }

    /// A result or refusal mail to the agent, in the agent's language, threaded on their mail.
    /// An answer that cannot be sent (it still holds our relay, or it sits below the
    /// quote) is not: the refusal is an event, and the agent gets a mail saying `reason`.
    fn refuse_answer(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        agent: &Agent,
        parsed: &Parsed,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.event(
            tx,
            ticket,
            at,
            &agent.name,
            EventKind::AnswerRefused,
            None,
            Some(reason),
        )?;
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        let context = minijinja::context! {
            tag => crate::mail::subject::tag_token(&t.tag, t.id), subject => &t.subject,
            agent_name => &agent.display_name, answer_refused => reason,
        };
        self.mail_agent(
            tx,
            &t,
            agent,
            OutboxKind::CommandResult,
            context,
            parsed,
            at,
        )
    }

    /// Whether `parsed`, from `agent`'s address and placed on `ticket`, is proven to be
    /// the agent's (DESIGN.md invariant 5): a reply token of this agent for this ticket
    /// among its recipients, else a trusted `Authentication-Results` pass. `Err` says why
    /// not, for the event and for the agent.
    fn prove(
        &self,
        tx: &mut Tx<'_>,
        parsed: &Parsed,
        agent: &Agent,
        ticket: TicketId,
    ) -> Result<Result<Proof, String>, StoreError> {
        let mut why = Vec::new();
        let tokens = self.reply_tokens(parsed);
        for token in &tokens {
            if !token.verify(&self.key) {
                why.push("the reply token is forged or damaged (wrong mac)".to_owned());
            } else if super::merged_target(tx, token.ticket)? != ticket {
                why.push(format!(
                    "the reply token is for ticket #{}, not #{ticket}",
                    token.ticket
                ));
            } else if token.agent != agent.name {
                why.push(format!(
                    "the reply token names agent {}, not {} (a forwarded relay does not pass on the right to act)",
                    token.agent, agent.name
                ));
            } else {
                return Ok(Ok(Proof::Token));
            }
        }
        if tokens.is_empty() {
            why.push(
                "no reply token: the mail is not a reply to a relay postdesk sent you".to_owned(),
            );
        }
        if let Some(trust) = self.trust() {
            let sender = parsed.from.as_ref().map_or("", |f| f.address.as_str());
            match crate::agent::auth::agent_proof(&parsed.auth_results, &trust, sender) {
                Ok(how) => return Ok(Ok(Proof::AuthResults(how))),
                Err(e) => why.push(e),
            }
        }
        // Each reason once, however many tokens the mail carries.
        let mut seen = std::collections::HashSet::new();
        why.retain(|w| seen.insert(w.clone()));
        Ok(Err(why.join("; ")))
    }

    #[allow(clippy::too_many_arguments)]
    fn mail_agent(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        agent: &Agent,
        kind: OutboxKind,
        context: minijinja::Value,
        parsed: &Parsed,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // Always the agent's configured address: `From` may be forged.
        let to = agent.addresses[0].clone();
        self.queue_mail(
            tx,
            t,
            Outgoing {
                kind,
                language: agent.language,
                context,
                from_name: self.queue_name(t),
                reply_to: Some(self.reply_address(t, agent)),
                to: vec![Addressee {
                    name: Some(agent.display_name.clone()),
                    address: to,
                }],
                cc: Vec::new(),
                in_reply_to: Some(parsed.message_id.clone()),
                references: vec![parsed.message_id.clone()],
                attachments: Vec::new(),
                audience: Audience::Agents,
            },
            at,
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        at: DateTime<Utc>,
        actor: &str,
        kind: EventKind,
        new: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor,
            kind,
            old: None,
            new,
            detail,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn event_change(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        at: DateTime<Utc>,
        actor: &str,
        kind: EventKind,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), StoreError> {
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor,
            kind,
            old,
            new,
            detail: None,
        })
    }
}

/// An agent's commands after `#macro` expansion, and what `#kb`/`#macro` add to the answer.
#[derive(Debug, Default)]
struct Expanded {
    commands: Vec<Command>,
    texts: Vec<String>,
    errors: Vec<CommandError>,
}

/// `unknown article "x" (articles: a, b)`, at most 20 names shown.
fn unknown_name(what: &str, name: &str, known: Vec<&str>) -> String {
    if known.is_empty() {
        return format!("unknown {what} {name:?} (there are none: see `postdesk kb list`)");
    }
    let shown: Vec<&str> = known.iter().take(20).copied().collect();
    let more = if known.len() > shown.len() {
        ", …"
    } else {
        ""
    };
    format!(
        "unknown {what} {name:?} ({what}s: {}{more})",
        shown.join(", ")
    )
}

/// What the agent wrote with the inserted texts (`#kb`, `#macro`) after it, above the
/// agent's `-- ` signature when there is one.
fn with_inserted(written: &str, texts: &[String]) -> String {
    if texts.is_empty() {
        return written.to_owned();
    }
    let inserted = texts.join("\n\n");
    let written = written.trim_end();
    if written.trim().is_empty() {
        return inserted;
    }
    let signature = written
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain(std::iter::once(0))
        .filter(|&at| matches!(written[at..].lines().next(), Some("-- " | "--")))
        .min();
    match signature {
        Some(at) => {
            let above = written[..at].trim_end();
            let below = &written[at..];
            if above.is_empty() {
                format!("{inserted}\n\n{below}")
            } else {
                format!("{above}\n\n{inserted}\n\n{below}")
            }
        }
        None => format!("{written}\n\n{inserted}"),
    }
}

/// A command line as a mail to the agent shows it: at most 200 characters.
fn for_mail(line: &str) -> String {
    match line.char_indices().nth(200) {
        None => line.to_owned(),
        Some((end, _)) => format!("{}…", &line[..end]),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Priority, Status, TicketId};
    use crate::workflow::testing::{Bench, ALICE, SUPPORT};
    use crate::workflow::{Applied, Delivered};

    const CAROL: &str = "carol@customer.test";

    /// A bench with one ticket from Carol and what the outbox held after it.
    fn ticket(bench: &mut Bench) -> (TicketId, usize) {
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        (id, bench.outbox().len())
    }

    /// Alice answers the relay of `id` with `body`.
    fn alice(bench: &mut Bench, id: TicketId, headers: &str, body: &str) {
        let d = bench.reply(ALICE, id, "agents", headers, body);
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
    }

    /// The kinds of the outbox rows after the first `skip`.
    fn new_mail(bench: &Bench, skip: usize) -> Vec<(String, Vec<String>)> {
        bench.outbox().into_iter().skip(skip).collect()
    }

    fn carol() -> Vec<String> {
        vec![CAROL.to_owned()]
    }

    #[test]
    fn answer_goes_to_the_customer_from_the_support_address() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        alice(&mut bench, id, "", "Please turn it off and on again.");
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), carol())]
        );
        let answer = bench.last_sent(id, "customer");
        assert!(
            answer.text.contains("turn it off and on"),
            "{}",
            answer.text
        );
        let raw = bench
            .reader()
            .raw_message(id, answer.id)
            .expect("read")
            .expect("raw kept");
        let raw = String::from_utf8_lossy(&raw);
        assert!(raw.contains(SUPPORT), "from the support address");
        assert!(!raw.contains(ALICE), "never the agent's address:\n{raw}");
        let t = bench.ticket(id);
        assert!(t.first_response_at.is_some());
        assert_eq!(bench.count(id, "first_response"), 1);
        assert_eq!(
            t.assignee.as_deref(),
            Some("alice"),
            "unassigned goes to who answered"
        );
        assert_eq!(bench.status(id), Status::Pending);
    }

    #[test]
    fn resolving_sends_the_survey_after_the_answer() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        alice(&mut bench, id, "", "#status resolved\nFixed: new toner.");
        assert_eq!(
            new_mail(&bench, before),
            vec![
                ("answer".to_owned(), carol()),
                ("survey".to_owned(), carol())
            ],
            "the answer first, then the survey (no plain status mail)"
        );
        assert_eq!(bench.status(id), Status::Resolved);
    }

    #[test]
    fn one_bad_command_refuses_them_all_and_tells_the_agent() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        let events = bench.events(id).len();
        alice(
            &mut bench,
            id,
            "",
            "#priority high\n#assign zed\n#status resolved\nFixed it.",
        );
        let t = bench.ticket(id);
        assert_eq!(
            t.priority,
            Priority::Normal.as_str(),
            "the good command waits too"
        );
        assert_eq!(t.assignee, None);
        assert_eq!(bench.status(id), Status::New);
        assert_eq!(
            new_mail(&bench, before),
            vec![("command-result".to_owned(), vec![ALICE.to_owned()])],
            "no customer mail, one result to the agent"
        );
        let refused: Vec<_> = bench
            .events(id)
            .into_iter()
            .skip(events)
            .filter(|e| crate::workflow::testing::kind(e) == "command.refused")
            .collect();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("zed")),
            "{refused:?}"
        );
        assert_eq!(bench.count(id, "priority"), 0);
    }

    #[test]
    fn note_stays_internal() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        alice(&mut bench, id, "", "#note\nThe customer has an old model.");
        assert_eq!(new_mail(&bench, before), vec![], "no mail at all");
        assert_eq!(bench.count(id, "note"), 1);
        assert_eq!(bench.status(id), Status::New);
        let last_in = bench
            .messages(id)
            .into_iter()
            .rfind(|m| m.direction == "in")
            .expect("the note is stored");
        assert_eq!(last_in.audience, "internal");
        assert_eq!(last_in.agent.as_deref(), Some("alice"));
    }

    /// A fresh mail from Alice (no reply token) with the ticket's tag and `headers`.
    fn alice_fresh(bench: &mut Bench, id: TicketId, headers: &str, body: &str) {
        let d = bench.send(ALICE, &format!("[ACME #{id}] Printer"), headers, body);
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
    }

    /// Asserts that Alice's last mail on `id` changed nothing, reached no customer, is an
    /// unverified internal note whose reason contains `why`, and that Alice was told.
    fn assert_unproven(bench: &Bench, id: TicketId, before: usize, why: &str) {
        assert_eq!(bench.status(id), Status::New, "{why}: nothing applies");
        assert_eq!(
            new_mail(bench, before),
            vec![("command-refused".to_owned(), vec![ALICE.to_owned()])],
            "{why}: the agent is told, the customer gets nothing"
        );
        let unverified: Vec<_> = bench.events_of(id, "message.unverified");
        assert_eq!(unverified.len(), 1, "{why}");
        let reason = unverified[0].detail.clone().unwrap_or_default();
        assert!(reason.contains(why), "{why} in {reason:?}");
        assert_eq!(bench.count(id, "command.refused"), 1, "{why}");
        let m = bench
            .messages(id)
            .into_iter()
            .rfind(|m| m.direction == "in")
            .expect("stored");
        assert!(m.unverified && m.audience == "internal", "{why}: {m:?}");
    }

    #[test]
    fn trusted_authserv_id_needs_a_valid_authentication_results() {
        let top = "trusted_authserv_id = \"mx.example.test\"";
        let body = "#status resolved\nFixed it.";
        for (headers, why) in [
            ("", "no Authentication-Results"),
            (
                "Authentication-Results: mx.example.test; dkim=fail header.d=agents.example.test\n",
                "dkim=fail",
            ),
            (
                "Authentication-Results: evil.test; dkim=pass header.d=agents.example.test\n",
                "no Authentication-Results",
            ),
        ] {
            let mut bench = Bench::configured(top, "", "");
            let (id, before) = ticket(&mut bench);
            alice_fresh(&mut bench, id, headers, body);
            assert_unproven(&bench, id, before, why);
        }

        let mut bench = Bench::configured(top, "", "");
        let (id, before) = ticket(&mut bench);
        let pass = "Authentication-Results: mx.example.test; dkim=pass header.d=agents.example.test header.s=s1\n";
        alice_fresh(&mut bench, id, pass, body);
        assert_eq!(bench.status(id), Status::Resolved, "a proven agent acts");
        assert_eq!(
            new_mail(&bench, before),
            vec![
                ("answer".to_owned(), carol()),
                ("survey".to_owned(), carol())
            ]
        );
    }

    /// Invariant 5 by default: the reply token of the relay is the proof.
    #[test]
    fn a_reply_to_the_agents_own_token_acts() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        let to = bench.token_address(id, "alice");
        let d = bench.send_to(
            ALICE,
            &to.to_uppercase(),
            "Re: Printer",
            "",
            "#priority high\nOn it.",
        );
        assert_eq!(
            d,
            Delivered::Applied(Applied::FollowUp { ticket: id }),
            "the token places the mail even without tag or references, in any case"
        );
        let t = bench.reader().ticket(id).expect("read").expect("exists");
        assert_eq!(t.ticket.priority, Priority::High);
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), carol())]
        );
        assert_eq!(bench.count(id, "message.unverified"), 0);
    }

    #[test]
    fn a_wrong_token_proves_nothing() {
        let body = "#status resolved\nFixed it.";
        let flip = |a: String| {
            let (local, domain) = a.rsplit_once('@').unwrap();
            let last = local.chars().last().unwrap();
            let c = if last == '0' { '1' } else { '0' };
            format!("{}{c}@{domain}", &local[..local.len() - 1])
        };
        for case in ["other ticket", "other agent", "flipped", "none"] {
            let mut bench = Bench::new("", "");
            let (other, _) = ticket(&mut bench);
            let (id, before) = ticket(&mut bench);
            let (to, why) = match case {
                "other ticket" => (
                    bench.token_address(other, "alice"),
                    format!("reply token is for ticket #{other}"),
                ),
                "other agent" => (
                    bench.token_address(id, "bob"),
                    "reply token names agent bob".to_owned(),
                ),
                "flipped" => (
                    flip(bench.token_address(id, "alice")),
                    "forged or damaged".to_owned(),
                ),
                _ => (SUPPORT.to_owned(), "no reply token".to_owned()),
            };
            let relay = bench.our_message_id(id, "agents");
            let d = bench.send_to(
                ALICE,
                &to,
                &format!("Re: [ACME #{id}] Printer"),
                &format!("In-Reply-To: {relay}\n"),
                body,
            );
            assert_eq!(
                d,
                Delivered::Applied(Applied::FollowUp { ticket: id }),
                "{case}"
            );
            assert_unproven(&bench, id, before, &why);
            assert_eq!(bench.status(other), Status::New, "{case}");
        }
    }

    /// The explanation mail goes to the agent's own address with a working reply token, and
    /// a flood of forged mail cannot flood the agent.
    #[test]
    fn forged_agent_mail_tells_the_agent_within_limits() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        for n in 0..12 {
            alice_fresh(&mut bench, id, "", &format!("#cc attacker{n}@evil.test"));
        }
        let told = bench.outbox_of("command-refused");
        assert_eq!(told.len(), 10, "rate limited like automatic mail");
        assert!(told.iter().all(|to| to == &vec![ALICE.to_owned()]));
        assert_eq!(new_mail(&bench, before).len(), 10, "nothing else");
        assert_eq!(bench.count(id, "cc"), 0, "no attacker joined");
        assert_eq!(bench.count(id, "message.unverified"), 12);
        assert_eq!(bench.count(id, "notification.held"), 2);
        let refused = bench.last_sent(id, "agents");
        assert!(refused.text.contains("reply"), "{}", refused.text);
        let raw = bench
            .reader()
            .raw_message(id, refused.id)
            .expect("read")
            .expect("kept");
        let raw = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        assert!(
            raw.contains(&format!("reply-to: {}", bench.token_address(id, "alice"))),
            "{raw}"
        );
    }

    /// Issue 12: a proven agent's `#tag` of 100,000 words applies the first
    /// `max_command_words` tags, the answer still goes, and the agent is told what was not
    /// read (one event, one result mail).
    #[test]
    fn a_huge_tag_line_applies_within_the_limit() {
        let mut bench = Bench::new("", "");
        let max = bench.engine.limits().max_command_words;
        let (id, before) = ticket(&mut bench);
        let words: Vec<String> = (0..100_000).map(|n| format!("t{n}")).collect();
        alice(
            &mut bench,
            id,
            "",
            &format!("#tag {}\n\nFixed it.", words.join(" ")),
        );
        assert_eq!(bench.count(id, "tag"), max);
        assert_eq!(bench.ticket(id).tags.len(), max);
        let capped = bench.events_of(id, "command.capped");
        assert_eq!(capped.len(), 1, "{capped:?}");
        let unread = format!(
            "{} words after the first {max} of a command line were not read",
            100_000 - max
        );
        assert_eq!(capped[0].detail.as_deref(), Some(unread.as_str()));
        assert_eq!(
            new_mail(&bench, before),
            vec![
                ("command-result".to_owned(), vec![ALICE.to_owned()]),
                ("answer".to_owned(), carol())
            ]
        );
        let result = bench.last_sent(id, "agents");
        assert!(result.text.contains(&unread), "{}", result.text);
        assert!(result.text.contains("was applied"), "{}", result.text);
    }

    /// Issue 12: an unproven mail of 200 command lines: one `message.unverified`,
    /// `max_events_per_message` refusals and one summary; the agent's mail lists as many.
    #[test]
    fn unproven_command_floods_are_capped() {
        let mut bench = Bench::new("", "");
        let limits = bench.engine.limits().clone();
        let max = limits.max_events_per_message;
        let (id, before) = ticket(&mut bench);
        let lines: String = (0..200).map(|n| format!("#cc a{n}@evil.test\n")).collect();
        alice_fresh(&mut bench, id, "", &lines);
        assert_eq!(bench.count(id, "message.unverified"), 1);
        assert_eq!(bench.count(id, "command.refused"), max);
        assert_eq!(bench.count(id, "command.capped"), 1);
        assert_eq!(bench.count(id, "cc"), 0);
        assert_eq!(
            new_mail(&bench, before),
            vec![("command-refused".to_owned(), vec![ALICE.to_owned()])]
        );
        let told = bench.last_sent(id, "agents");
        let listed = told
            .text
            .lines()
            .filter(|l| l.contains("@evil.test"))
            .count();
        assert_eq!(listed, max, "{}", told.text);
        let more = limits.max_command_lines - max;
        assert!(
            told.text.contains(&format!("and {more} more")),
            "{}",
            told.text
        );
        assert!(
            told.text.contains(&format!(
                "{} command lines after the first {} were not read",
                200 - limits.max_command_lines,
                limits.max_command_lines
            )),
            "{}",
            told.text
        );
    }

    /// Issue 12: `#to` with many strangers refuses each (one participant query), within
    /// the event cap; `#cc` adding more than `max_people_per_message` people is refused.
    #[test]
    fn address_lists_of_commands_are_bounded() {
        let mut bench = Bench::new("", "");
        let limits = bench.engine.limits().clone();
        let (id, _) = ticket(&mut bench);
        let strangers: Vec<String> = (0..100).map(|n| format!("s{n}@x.test")).collect();
        let to = format!("#to {}\n", strangers.join(" "));
        alice(&mut bench, id, "", &format!("{}Hi", to.repeat(3)));
        assert_eq!(
            bench.count(id, "command.refused"),
            limits.max_events_per_message
        );
        let capped = bench.events_of(id, "command.capped");
        assert_eq!(capped.len(), 1);
        assert!(
            capped[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.starts_with(&format!(
                    "{} more refused",
                    300 - limits.max_events_per_message
                ))),
            "{capped:?}"
        );

        let many: Vec<String> = (0..limits.max_people_per_message + 1)
            .map(|n| format!("c{n}@x.test"))
            .collect();
        alice(&mut bench, id, "", &format!("#cc {}\nHi", many.join(" ")));
        assert_eq!(bench.count(id, "cc"), 0, "all or nothing");
        let why = bench.events_of(id, "command.refused");
        assert!(
            why.last()
                .and_then(|e| e.detail.as_deref())
                .is_some_and(|d| d.contains("at most")),
            "{why:?}"
        );
    }

    #[test]
    fn answer_copies_the_ccd_participants() {
        let mut bench = Bench::new("", "");
        // Carol's first mail copies Dave, who becomes a participant.
        let d = bench.send(CAROL, "Printer", "Cc: dave@customer.test\n", "It is broken");
        let id = crate::workflow::testing::ticket_of(&d);
        let before = bench.outbox().len();
        alice(&mut bench, id, "", "Fixed for both of you.");
        assert_eq!(
            new_mail(&bench, before),
            vec![(
                "answer".to_owned(),
                vec![CAROL.to_owned(), "dave@customer.test".to_owned()]
            )]
        );
    }

    const TOM: &str = "tom@customer.test";

    /// The text of the last relay to `agent` on `id`.
    fn last_relay(bench: &Bench, id: TicketId, agent: &str) -> String {
        bench
            .messages(id)
            .into_iter()
            .rfind(|m| m.direction == "out" && m.audience == "agents" && m.to == [agent])
            .map(|m| m.text)
            .unwrap_or_else(|| panic!("no relay to {agent} on #{id}"))
    }

    /// Issue 11: a reply-all that copies Tom makes him a participant; the relay lists him;
    /// the agent's plain reply reaches Carol and Tom; when Tom writes, the relay names him
    /// as the writer and the answer still reaches both.
    #[test]
    fn people_copied_by_the_customer_become_participants() {
        let mut bench = Bench::new("", "");
        let (id, _) = ticket(&mut bench);
        let d = bench.reply(
            CAROL,
            id,
            "customer",
            &format!("Cc: Tom Boss <{TOM}>, {SUPPORT}\n"),
            "Adding my boss.",
        );
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let cc: Vec<_> = bench.events_of(id, "cc");
        assert_eq!(cc.len(), 1, "only Tom, not the support address: {cc:?}");
        assert_eq!(cc[0].new.as_deref(), Some(TOM));
        let relay = last_relay(&bench, id, ALICE);
        assert!(relay.contains(&format!("Copied:    {TOM}")), "{relay}");
        assert!(!relay.contains("Written by:"), "Carol wrote it: {relay}");

        let before = bench.outbox().len();
        alice(&mut bench, id, "", "We are on it.");
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), vec![CAROL.to_owned(), TOM.to_owned()])]
        );

        let d = bench.reply(TOM, id, "customer", "", "Any news? This is urgent.");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let relay = last_relay(&bench, id, ALICE);
        assert!(
            relay.contains(&format!("Written by: tom <{TOM}>")),
            "{relay}"
        );
        assert!(
            relay.contains(&format!("Requester: carol <{CAROL}>")),
            "{relay}"
        );
        let before = bench.outbox().len();
        alice(&mut bench, id, "", "Tomorrow morning.");
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), vec![CAROL.to_owned(), TOM.to_owned()])],
            "the person who asked gets the answer too"
        );
    }

    #[test]
    fn to_narrows_an_answer_and_cc_minus_removes_a_participant() {
        let mut bench = Bench::new("", "");
        let d = bench.send(CAROL, "Printer", &format!("Cc: {TOM}\n"), "It is broken");
        let id = crate::workflow::testing::ticket_of(&d);
        let before = bench.outbox().len();
        alice(
            &mut bench,
            id,
            "",
            &format!("#to {TOM}\nTom, can you approve?"),
        );
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), vec![TOM.to_owned()])]
        );
        let before = bench.outbox().len();
        alice(&mut bench, id, "", &format!("#cc -{TOM}\nCarol, approved."));
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), carol())]
        );
        let removed = bench
            .events(id)
            .into_iter()
            .rfind(|e| crate::workflow::testing::kind(e) == "cc")
            .expect("an event");
        assert_eq!(
            (removed.old.as_deref(), removed.new.as_deref()),
            (Some(TOM), None)
        );

        // #to someone who is not on the ticket is refused, with everything else.
        let before = bench.outbox().len();
        alice(
            &mut bench,
            id,
            "",
            "#to eve@evil.test\n#priority high\nSecret.",
        );
        assert_eq!(
            new_mail(&bench, before),
            vec![("command-result".to_owned(), vec![ALICE.to_owned()])]
        );
        assert_eq!(bench.ticket(id).priority, Priority::Normal);
    }

    /// One relay per agent, each in the agent's language: an English agent of a Chinese
    /// queue reads English.
    #[test]
    fn each_agent_reads_the_relay_in_their_language() {
        let mut bench = Bench::new(
            "language = \"zh-CN\"",
            "[[agent]]\nname = \"li\"\naddresses = [\"li@agents.example.test\"]\nqueues = [\"support\"]\n\n[[agent]]\nname = \"eve\"\ndisplay_name = \"Eve\"\nlanguage = \"en\"\naddresses = [\"eve@agents.example.test\"]\nqueues = [\"support\"]\n",
        );
        let (id, _) = ticket(&mut bench);
        let zh = last_relay(&bench, id, "li@agents.example.test");
        assert!(zh.contains("优先级：普通"), "{zh}");
        let en = last_relay(&bench, id, "eve@agents.example.test");
        assert!(en.contains("Priority: normal"), "{en}");
        assert!(!en.contains("优先级"), "{en}");
        bench.reply(ALICE, id, "agents", "", "#assign eve");
        bench.reply(CAROL, id, "customer", "", "Any news?");
        let en = last_relay(&bench, id, "eve@agents.example.test");
        assert!(en.contains("Assignee:  Eve"), "the display name: {en}");
    }

    /// Alice's reply as mutt writes it: her text, her signature, then the whole relay
    /// quoted with `> `.
    fn quoting_the_relay(bench: &Bench, id: TicketId, above: &str) -> String {
        let relay = last_relay(bench, id, ALICE);
        let quoted: Vec<String> = relay.lines().map(|l| format!("> {l}")).collect();
        format!(
            "{above}\n\nAlice\n\nOn Wed, Nov 25, 2026 at 12:00, carol via ACME Support wrote:\n{}",
            quoted.join("\n")
        )
    }

    /// Issue 11: the customer gets what the agent wrote, not the quoted relay.
    #[test]
    fn an_answer_is_cut_at_the_quoted_relay() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        let body = quoting_the_relay(&bench, id, "Please restart it.");
        alice(&mut bench, id, "", &body);
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), carol())]
        );
        let answer = bench.last_sent(id, "customer");
        assert!(
            answer.text.contains("Please restart it.\n\nAlice"),
            "{}",
            answer.text
        );
        for leak in [
            "reply above this line",
            "Requester:",
            "Reply to answer",
            "wrote:",
            "> ",
        ] {
            assert!(!answer.text.contains(leak), "{leak} in {}", answer.text);
        }
    }

    /// Only commands above the quote: they act, and no (empty) answer goes out.
    #[test]
    fn commands_above_the_quote_send_no_answer() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        let body = quoting_the_relay(&bench, id, "#status resolved");
        let body = body.replacen("\n\nAlice\n", "\n\n-- \nAlice Agent\nACME\n", 1);
        alice(&mut bench, id, "", &body);
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(
            new_mail(&bench, before),
            vec![("survey".to_owned(), carol())],
            "the survey, no answer"
        );
    }

    /// A bottom-posted answer (below the `>` quote) is not sent as an empty answer or as
    /// the quote: the agent is told to write above it.
    #[test]
    fn a_bottom_posted_answer_is_refused_with_a_reason() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        let relay = last_relay(&bench, id, ALICE);
        let quoted: Vec<String> = relay.lines().map(|l| format!("> {l}")).collect();
        let body = format!("{}\n\nPlease restart it.\n", quoted.join("\n"));
        alice(&mut bench, id, "", &body);
        assert_eq!(
            new_mail(&bench, before),
            vec![("command-result".to_owned(), vec![ALICE.to_owned()])]
        );
        let refused: Vec<_> = bench.events_of(id, "answer.refused");
        assert_eq!(refused.len(), 1);
        assert!(refused[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("below the quoted relay")));
    }

    /// An answer over `MAX_ANSWER_SCAN` with no quote in its top is refused, not read whole
    /// in the writer nor sent cut; a long answer above a quoted relay still goes.
    #[test]
    fn an_answer_too_long_to_search_is_refused() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        let line = "Restart the spooler, then the printer, then try again.\n";
        let long = line.repeat(super::MAX_ANSWER_SCAN / line.len() + 10);
        alice(&mut bench, id, "", &long);
        assert_eq!(
            new_mail(&bench, before),
            vec![("command-result".to_owned(), vec![ALICE.to_owned()])]
        );
        let refused = bench.events_of(id, "answer.refused");
        assert_eq!(refused.len(), 1);
        assert!(
            refused[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("longer than 512 KiB")),
            "{refused:?}"
        );
    }

    /// An answer quoted in a way we do not know, still holding the relay: not sent, the
    /// agent is told, the refusal recorded.
    #[test]
    fn an_answer_still_holding_the_relay_is_refused() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        let relay = last_relay(&bench, id, ALICE);
        let body = format!("Please restart it.\n\n|| {}", relay.replace('\n', "\n|| "));
        alice(&mut bench, id, "", &format!("#priority high\n{body}"));
        assert_eq!(
            new_mail(&bench, before),
            vec![("command-result".to_owned(), vec![ALICE.to_owned()])]
        );
        assert_eq!(bench.count(id, "answer.refused"), 1);
        assert_eq!(
            bench.ticket(id).priority,
            Priority::High,
            "the commands still act"
        );
        let told = bench.last_sent(id, "agents");
        assert!(
            told.text.contains("was NOT sent to the customer"),
            "{}",
            told.text
        );
    }

    #[test]
    fn mail_to_the_comment_address_stays_internal() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        alice(
            &mut bench,
            id,
            "Cc: support+comment@example.test\n",
            "The customer has an old model.",
        );
        assert_eq!(new_mail(&bench, before), vec![], "no mail at all");
        let note: Vec<_> = bench.events_of(id, "note");
        assert_eq!(note.len(), 1);
        assert_eq!(
            note[0].detail.as_deref(),
            Some("mail to the comment address")
        );
    }

    #[test]
    fn closing_sends_the_status_mail_and_the_last_status_wins() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        alice(
            &mut bench,
            id,
            "",
            "#status pending\n#status closed\nClosing: duplicate.",
        );
        assert_eq!(bench.status(id), Status::Closed);
        assert_eq!(
            new_mail(&bench, before),
            vec![
                ("answer".to_owned(), carol()),
                ("status-change".to_owned(), carol())
            ],
            "one status mail, for the last status"
        );
    }

    #[test]
    fn assign_command_opens_the_ticket_for_that_agent() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        alice(
            &mut bench,
            id,
            "",
            "#assign bob\n#priority high\n#tag printer",
        );
        let t = bench.ticket(id);
        assert_eq!(
            (t.assignee.as_deref(), t.priority.as_str(), t.tags.clone()),
            (Some("bob"), "high", vec!["printer".to_owned()])
        );
        assert_eq!(bench.status(id), Status::Open);
        assert_eq!(new_mail(&bench, before), vec![], "no answer text, no mail");
    }

    #[test]
    fn a_status_the_lifecycle_forbids_is_refused() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        alice(&mut bench, id, "", "#status archived\nDone.");
        assert_eq!(bench.status(id), Status::New);
        assert_eq!(bench.count(id, "command.refused"), 1);
        assert_eq!(
            new_mail(&bench, before),
            vec![("command-result".to_owned(), vec![ALICE.to_owned()])]
        );
    }

    /// Invariant 5: "a configured From address alone proves nothing".
    #[test]
    fn agent_from_address_alone_proves_nothing() {
        let mut bench = Bench::new("", "");
        let (id, before) = ticket(&mut bench);
        // No In-Reply-To or References: only the From address and the subject tag.
        alice_fresh(&mut bench, id, "", "#status closed\nBye.");
        assert_unproven(&bench, id, before, "no reply token");
    }

    /// A bench with the article `reset` and the macro `done` (`#status resolved`, text).
    fn with_kb() -> (Bench, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("reset.md"),
            "---\ntitle: Reset the printer\ncommands: #tag printer\n---\nHold the power button for ten seconds.\n",
        )
        .unwrap();
        let top = format!("kb_dir = {:?}", dir.path().display().to_string());
        let extra = "[[macro]]\nname = \"done\"\ncommands = [\"#status resolved\", \"#priority low\"]\ntext = \"Glad it works again.\"\n";
        (Bench::configured(&top, "", extra), dir)
    }

    #[test]
    fn kb_puts_the_article_into_the_answer_above_the_signature() {
        let (mut bench, _dir) = with_kb();
        let (id, before) = ticket(&mut bench);
        alice(
            &mut bench,
            id,
            "",
            "#kb reset\nHi Carol,\n\nplease try this:\n\n-- \nAlice",
        );
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), carol())]
        );
        let answer = bench.last_sent(id, "customer").text;
        let article = answer.find("Hold the power button").expect(&answer);
        assert!(
            answer.find("please try this").unwrap() < article,
            "{answer}"
        );
        assert!(
            article < answer.find("-- \nAlice").expect(&answer),
            "{answer}"
        );
        assert!(!answer.contains("#kb"), "{answer}");
    }

    #[test]
    fn kb_alone_is_an_answer_and_macro_applies_commands_and_text() {
        let (mut bench, _dir) = with_kb();
        let (id, before) = ticket(&mut bench);
        alice(&mut bench, id, "", "#kb reset");
        assert_eq!(
            new_mail(&bench, before),
            vec![("answer".to_owned(), carol())]
        );
        assert!(bench
            .last_sent(id, "customer")
            .text
            .contains("Hold the power button"));
        let before = bench.outbox().len();
        alice(&mut bench, id, "", "#macro done\nThanks for waiting.");
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(bench.ticket(id).priority, Priority::Low);
        let mail = new_mail(&bench, before);
        assert_eq!(mail[0], ("answer".to_owned(), carol()), "{mail:?}");
        let answer = bench
            .messages(id)
            .into_iter()
            .rfind(|m| {
                m.direction == "out" && m.audience == "customer" && m.text.contains("Thanks")
            })
            .expect("the answer")
            .text;
        assert!(
            answer.contains("Thanks for waiting.") && answer.contains("Glad it works again."),
            "{answer}"
        );
        // An article is a macro too: its commands apply, its text is the answer.
        alice(&mut bench, id, "", "#macro reset");
        assert!(bench.ticket(id).tags.contains(&"printer".to_owned()));
    }

    #[test]
    fn unknown_article_or_macro_refuses_all_and_tells_the_agent() {
        let (mut bench, _dir) = with_kb();
        let (id, before) = ticket(&mut bench);
        alice(&mut bench, id, "", "#status resolved\n#kb nothing\nHello");
        alice(&mut bench, id, "", "#macro nope\nHello");
        assert_eq!(bench.status(id), Status::New);
        let mail = new_mail(&bench, before);
        assert_eq!(mail.len(), 2, "{mail:?}");
        assert!(mail
            .iter()
            .all(|(kind, to)| kind == "command-result" && to == &vec![ALICE.to_owned()]));
        let refused = bench.events_of(id, "command.refused");
        assert_eq!(refused.len(), 2, "{refused:?}");
        assert!(
            refused[0]
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("unknown article \"nothing\" (articles: reset)"),
            "{refused:?}"
        );
        assert!(
            refused[1]
                .detail
                .as_deref()
                .unwrap_or("")
                .contains("unknown macro \"nope\" (macros: done, reset)"),
            "{refused:?}"
        );
        let told = bench.last_sent(id, "agents").text;
        assert!(told.contains("unknown macro"), "{told}");
    }

    #[test]
    fn inserted_text_goes_above_the_signature() {
        use super::with_inserted;
        let t = |s: &str| vec![s.to_owned()];
        assert_eq!(with_inserted("", &t("A")), "A");
        assert_eq!(with_inserted("Hi", &t("A")), "Hi\n\nA");
        assert_eq!(
            with_inserted("Hi\n-- \nBob", &t("A")),
            "Hi\n\nA\n\n-- \nBob"
        );
        assert_eq!(with_inserted("-- \nBob", &t("A")), "A\n\n-- \nBob");
        assert_eq!(with_inserted("Hi", &[]), "Hi");
    }
}
