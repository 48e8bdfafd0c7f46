//! Satisfaction surveys in the flow (issue 5).
//!
//! - When an agent resolves a ticket and its queue has `surveys = true`, the customer gets
//!   the survey mail (which says the ticket is resolved) instead of the plain status mail.
//!   It is automatic mail: the loop rules apply (no survey to an address that bounced).
//! - A mail to a survey address (`support+csat-42-5-<mac>@…`) with the right mac records
//!   the rating; one with a wrong mac is refused and recorded. A reply to the survey mail
//!   whose first line is a rating counts too. A later rating replaces the earlier one.
//!   Either way the answer is stored on the ticket and neither reopens it nor is relayed.

use chrono::{DateTime, Utc};

use super::{Applied, Engine};
use crate::mail::parse::Parsed;
use crate::model::{EventKind, MessageRowId, OutboxKind, TicketId};
use crate::notify::survey;
use crate::store::{NewEvent, StoreError, TicketRow, Tx};

impl Engine {
    /// The survey mail: five signed one-click links, one per rating.
    pub(super) fn queue_survey(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let support = self.support_address(t);
        let tag = crate::mail::subject::tag_token(&t.tag, t.id);
        let links: Vec<String> = (1..=5)
            .map(|r| survey::link(&support, &self.key, t.id, r, &format!("Rating {r} {tag}")))
            .collect();
        let extra = minijinja::context! { links => links };
        self.queue_customer_notice(tx, t, OutboxKind::Survey, extra, at)
    }

    /// Records a survey answer carried by `parsed`, if it is one.
    pub(super) fn survey_answer(
        &self,
        tx: &mut Tx<'_>,
        row: MessageRowId,
        parsed: &Parsed,
        at: DateTime<Utc>,
    ) -> Result<Option<Applied>, StoreError> {
        let recipients = parsed
            .to
            .iter()
            .chain(&parsed.cc)
            .map(|p| p.address.as_str())
            .chain(parsed.delivered_to.iter().map(String::as_str));
        let comment = crate::agent::quote::trim_quoted(&parsed.text);
        for address in recipients {
            let Some(answer) = survey::parse_address(address) else {
                continue;
            };
            if tx.ticket_row(answer.ticket)?.is_none() {
                continue;
            }
            if !survey::verify(&self.key, &answer) {
                self.on_ticket(tx, row, answer.ticket, at)?;
                tx.append_event(&NewEvent {
                    ticket: Some(answer.ticket),
                    at,
                    actor: who(parsed),
                    kind: EventKind::CsatRefused,
                    old: None,
                    new: Some(&answer.rating.to_string()),
                    detail: Some("the survey link was altered or forged (wrong mac)"),
                })?;
                return Ok(Some(Applied::FollowUp {
                    ticket: answer.ticket,
                }));
            }
            // The prefilled subject is no comment; anything the customer wrote is.
            self.record_rating(tx, row, answer.ticket, answer.rating, comment, parsed, at)?;
            return Ok(Some(Applied::FollowUp {
                ticket: answer.ticket,
            }));
        }
        for id in parsed.referenced_ids() {
            let Some((ticket, message)) = self.key.verify(id) else {
                continue;
            };
            if tx.outbox_kind(message)?.as_deref() != Some(OutboxKind::Survey.as_str()) {
                continue;
            }
            if let Some(rating) = survey::rating_from_text(comment) {
                let rest = comment.trim_start().split_once('\n').map_or("", |(_, r)| r);
                self.record_rating(tx, row, ticket, rating, rest, parsed, at)?;
                return Ok(Some(Applied::FollowUp { ticket }));
            }
        }
        Ok(None)
    }

    fn on_ticket(
        &self,
        tx: &mut Tx<'_>,
        row: MessageRowId,
        ticket: TicketId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        tx.set_message_ticket(row, ticket)?;
        tx.touch_ticket(ticket, at)
    }

    #[allow(clippy::too_many_arguments)]
    fn record_rating(
        &self,
        tx: &mut Tx<'_>,
        row: MessageRowId,
        ticket: TicketId,
        rating: u8,
        comment: &str,
        parsed: &Parsed,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.on_ticket(tx, row, ticket, at)?;
        tx.set_csat(ticket, rating)?;
        let comment: String = comment.trim().chars().take(1000).collect();
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor: who(parsed),
            kind: EventKind::Csat,
            old: None,
            new: Some(&rating.to_string()),
            detail: (!comment.is_empty()).then_some(comment.as_str()),
        })
    }
}

fn who(parsed: &Parsed) -> &str {
    parsed
        .from
        .as_ref()
        .map_or("(unknown sender)", |f| f.address.as_str())
}
