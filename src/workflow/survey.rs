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

#[cfg(test)]
mod tests {
    use crate::model::{Status, TicketId};
    use crate::notify::survey;
    use crate::workflow::testing::{kind, Bench, ALICE, SUPPORT};
    use crate::workflow::{Applied, Delivered};

    const CAROL: &str = "carol@customer.test";

    /// A ticket that Alice resolved, so that Carol got the survey.
    fn resolved(bench: &mut Bench) -> TicketId {
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        bench.reply(ALICE, id, "agents", "", "#status resolved\nFixed.");
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(bench.outbox_of("survey").len(), 1);
        id
    }

    /// Carol's one-click answer: a mail to `to` with the prefilled subject.
    fn click(bench: &mut Bench, to: &str, body: &str) -> Delivered {
        let raw = format!(
            "From: {CAROL}\nTo: {to}\nSubject: Rating\nMessage-ID: <click.{}@customer.test>\n\n{body}\n",
            to.len() + body.len()
        );
        bench.deliver(&raw)
    }

    #[test]
    fn survey_address_with_the_right_mac_records_the_rating() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let before = bench.outbox().len();
        let to = survey::address(SUPPORT, &bench.engine.key, id, 4);
        let d = click(&mut bench, &to, "");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let csat: Vec<_> = bench
            .events(id)
            .into_iter()
            .filter(|e| kind(e) == "csat")
            .collect();
        assert_eq!(csat.len(), 1, "{csat:?}");
        assert_eq!(csat[0].new.as_deref(), Some("4"));
        assert_eq!(csat[0].detail, None, "an empty body is no comment");
        assert_eq!(
            bench.status(id),
            Status::Resolved,
            "a rating does not reopen"
        );
        assert_eq!(bench.outbox().len(), before, "nor is it relayed");
    }

    #[test]
    fn forged_mac_is_refused_and_recorded() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let good = survey::address(SUPPORT, &bench.engine.key, id, 1);
        // Same ticket, a better rating, the mac of rating 1.
        let forged = good.replacen(&format!("-{}-1-", id), &format!("-{}-5-", id), 1);
        assert_ne!(forged, good);
        let d = click(&mut bench, &forged, "");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.count(id, "csat"), 0);
        let refused: Vec<_> = bench
            .events(id)
            .into_iter()
            .filter(|e| kind(e) == "csat.refused")
            .collect();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].new.as_deref(), Some("5"));
        assert_eq!(bench.status(id), Status::Resolved);
    }

    #[test]
    fn reply_whose_first_line_is_a_rating_counts() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let before = bench.outbox().len();
        let d = bench.reply(CAROL, id, "customer", "", "5\nQuick and friendly.");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let csat: Vec<_> = bench
            .events(id)
            .into_iter()
            .filter(|e| kind(e) == "csat")
            .collect();
        assert_eq!(csat.len(), 1, "{csat:?}");
        assert_eq!(csat[0].new.as_deref(), Some("5"));
        assert_eq!(csat[0].detail.as_deref(), Some("Quick and friendly."));
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(bench.outbox().len(), before);
    }

    #[test]
    fn a_later_rating_replaces_the_earlier() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let low = survey::address(SUPPORT, &bench.engine.key, id, 2);
        click(&mut bench, &low, "");
        let high = survey::address(SUPPORT, &bench.engine.key, id, 5);
        click(&mut bench, &high, "Thanks, it works now");
        let ratings: Vec<_> = bench
            .events(id)
            .into_iter()
            .filter(|e| kind(e) == "csat")
            .map(|e| (e.new, e.detail))
            .collect();
        assert_eq!(
            ratings,
            [
                (Some("2".to_owned()), None),
                (
                    Some("5".to_owned()),
                    Some("Thanks, it works now".to_owned())
                )
            ]
        );
    }
}
