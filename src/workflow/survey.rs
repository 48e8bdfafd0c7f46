//! Satisfaction surveys in the flow (issues 5 and 10).
//!
//! - When an agent resolves a ticket and its queue has `surveys = true`, the customer gets
//!   the survey mail (which says the ticket is resolved) instead of the plain status mail.
//!   It is automatic mail: the loop rules apply (no survey to an address that bounced).
//! - A mail to a survey address (`support+csat-42-5-<mac>@…`) with the right mac records
//!   the rating, when it comes within the queue's `survey_valid_for` of the ticket's latest
//!   survey mail; later it is refused (`csat.refused`, "expired") and records nothing. A
//!   reply to the survey mail whose first line is a rating counts too. A later rating
//!   replaces the earlier one: each is a `csat` event, `old` the rating it replaced.
//!   Either way the answer is stored on the ticket and neither reopens it nor is relayed.
//! - A survey address with a wrong mac proves nothing: the address is no way onto the
//!   ticket it names. The mail is placed like any other (thread rules, strangers' rules),
//!   and a `csat.refused` event on the ticket where it lands says what the address claimed.

use chrono::{DateTime, Utc};

use super::{Applied, Engine};
use crate::mail::parse::Parsed;
use crate::model::{EventKind, MessageRowId, OutboxKind, TicketId};
use crate::notify::survey::{self, Answer};
use crate::store::{NewEvent, StoreError, TicketRow, Tx};

/// What a mail's survey addresses and references made of it.
pub(super) enum SurveyAnswer {
    /// No survey answer: place it as any other mail.
    None,
    /// Recorded (or refused as expired) on a ticket; the mail is stored there.
    Handled(Applied),
    /// Only survey addresses with a wrong mac: place it as any other mail, then
    /// [`Engine::record_forged_survey`] on wherever it landed.
    Forged(Vec<Answer>),
}

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
    ) -> Result<SurveyAnswer, StoreError> {
        let recipients = parsed
            .to
            .iter()
            .chain(&parsed.cc)
            .map(|p| p.address.as_str())
            .chain(parsed.delivered_to.iter().map(String::as_str));
        // The comment is kept to 1,000 characters: the top of the text is enough. Cut only
        // for a survey answer: trimming the quote of every other mail cost 3% of the
        // writer's time in ingest (issue 15).
        let comment = || {
            let top = crate::agent::quote::head(&parsed.text, 64 * 1024);
            crate::agent::quote::trim_quoted(top)
        };
        let mut forged = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for address in recipients {
            let Some(answer) = survey::parse_address(address) else {
                continue;
            };
            if !survey::verify(&self.key, &answer) {
                if seen.insert((answer.ticket, answer.rating, answer.mac.clone())) {
                    forged.push(answer);
                }
                continue;
            }
            let Some(t) = tx.ticket_row(answer.ticket)? else {
                continue;
            };
            if let Some(why) = self.survey_expired(tx, &t, at)? {
                self.on_ticket(tx, row, t.id, at)?;
                tx.append_event(&NewEvent {
                    ticket: Some(t.id),
                    at,
                    actor: who(parsed),
                    kind: EventKind::CsatRefused,
                    old: None,
                    new: Some(&answer.rating.to_string()),
                    detail: Some(&why),
                })?;
                return Ok(SurveyAnswer::Handled(Applied::FollowUp { ticket: t.id }));
            }
            // The prefilled subject is no comment; anything the customer wrote is.
            self.record_rating(tx, row, t.id, answer.rating, comment(), parsed, at)?;
            return Ok(SurveyAnswer::Handled(Applied::FollowUp { ticket: t.id }));
        }
        for id in parsed.referenced_ids() {
            let Some((ticket, message)) = self.key.verify(id) else {
                continue;
            };
            if tx.outbox_kind(message)?.as_deref() != Some(OutboxKind::Survey.as_str()) {
                continue;
            }
            let comment = comment();
            if let Some(rating) = survey::rating_from_text(comment) {
                let rest = comment.trim_start().split_once('\n').map_or("", |(_, r)| r);
                self.record_rating(tx, row, ticket, rating, rest, parsed, at)?;
                return Ok(SurveyAnswer::Handled(Applied::FollowUp { ticket }));
            }
        }
        Ok(if forged.is_empty() {
            SurveyAnswer::None
        } else {
            SurveyAnswer::Forged(forged)
        })
    }

    /// Why a right-mac survey link of `t` no longer records a rating at `at`: no survey
    /// mail on record, or the latest one is older than the queue's `survey_valid_for`.
    fn survey_expired(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        at: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let Some(valid_for) = self.queue(&t.queue).survey_valid_for else {
            return Ok(None);
        };
        let valid = crate::config::format_duration(valid_for);
        Ok(match tx.latest_survey_at(t.id)? {
            None => Some(format!(
                "the survey link has expired: no survey mail of #{} is on record (links are valid for {valid} after it)",
                t.id
            )),
            Some(sent)
                if chrono::Duration::from_std(valid_for).is_ok_and(|v| at - sent > v) =>
            {
                Some(format!(
                    "the survey link has expired: the latest survey mail of #{} was sent {}, links are valid for {valid}",
                    t.id,
                    crate::model::stamp::text(sent)
                ))
            }
            Some(_) => None,
        })
    }

    /// A mail to survey addresses with a wrong mac, after it was placed as any other
    /// mail: one `csat.refused` event per address on the ticket it landed on (if any),
    /// saying which ticket the address named, up to `limits.max_events_per_message`; one
    /// more `csat.refused` (no rating) counts the rest. That ticket itself learns nothing.
    pub(super) fn record_forged_survey(
        &self,
        tx: &mut Tx<'_>,
        landed: Option<TicketId>,
        forged: &[Answer],
        parsed: &Parsed,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(ticket) = landed else {
            return Ok(());
        };
        let max = self.limits.max_events_per_message;
        for answer in forged.iter().take(max) {
            let detail = format!(
                "a survey address for #{} with a wrong mac (altered or forged): no rating, the mail was placed as any other",
                answer.ticket
            );
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: who(parsed),
                kind: EventKind::CsatRefused,
                old: None,
                new: Some(&answer.rating.to_string()),
                detail: Some(&detail),
            })?;
        }
        if forged.len() > max {
            let detail = format!(
                "{} more survey addresses with a wrong mac were not recorded one by one (at most {max} a mail)",
                forged.len() - max
            );
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: who(parsed),
                kind: EventKind::CsatRefused,
                old: None,
                new: None,
                detail: Some(&detail),
            })?;
        }
        Ok(())
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

    /// Stores `rating` as the ticket's rating (replacing an earlier one) and records a
    /// `csat` event whose `old` is the rating it replaced.
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
        let replaced = tx.set_csat(ticket, rating)?.map(|r| r.to_string());
        let comment: String = comment.trim().chars().take(1000).collect();
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor: who(parsed),
            kind: EventKind::Csat,
            old: replaced.as_deref(),
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
    use crate::workflow::admin::Change;
    use crate::workflow::testing::{kind, ticket_of, Bench, ALICE, SUPPORT};
    use crate::workflow::{Applied, Delivered, WriteError};

    const CAROL: &str = "carol@customer.test";
    const MALLORY: &str = "mallory@evil.test";

    /// A ticket that Alice resolved, so that Carol got the survey.
    fn resolved(bench: &mut Bench) -> TicketId {
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        bench.reply(ALICE, id, "agents", "", "#status resolved\nFixed.");
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(bench.outbox_of("survey").len(), 1);
        id
    }

    /// `postdesk ticket set <id> --status <to>`, now.
    fn set_status(bench: &mut Bench, id: TicketId, to: Status) {
        let at = bench.now();
        bench.write(|e, tx| {
            e.admin_change(tx, id, &[Change::Status(to)], "admin:test", at)
                .map_err(|e| match e {
                    WriteError::Store(e) => e,
                    WriteError::Refused(r) => panic!("#{id} to {to}: {r}"),
                })
        });
    }

    /// A mail from `from` to `to` with `subject`, as a one-click link sends it.
    fn mail_to(bench: &mut Bench, from: &str, to: &str, subject: &str, body: &str) -> Delivered {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let raw = format!(
            "From: {from}\nTo: {to}\nSubject: {subject}\nMessage-ID: <click.{n}@customer.test>\n\n{body}\n"
        );
        bench.deliver(&raw)
    }

    /// Carol's one-click answer: a mail to `to` with a plain subject.
    fn click(bench: &mut Bench, to: &str, body: &str) -> Delivered {
        mail_to(bench, CAROL, to, "Rating", body)
    }

    /// The survey address of `id` for `rating` with its mac's last digit changed.
    fn wrong_mac(bench: &Bench, id: TicketId, rating: u8) -> String {
        let good = survey::address(SUPPORT, &bench.engine.key, id, rating);
        let (local, domain) = good.rsplit_once('@').unwrap();
        let last = local.chars().last().unwrap();
        let flipped = if last == '0' { '1' } else { '0' };
        format!("{}{flipped}@{domain}", &local[..local.len() - 1])
    }

    /// The ticket's `csat` events as (old, new).
    fn ratings(bench: &Bench, id: TicketId) -> Vec<(Option<String>, Option<String>)> {
        bench
            .events(id)
            .into_iter()
            .filter(|e| kind(e) == "csat")
            .map(|e| (e.old, e.new))
            .collect()
    }

    /// The rating the ticket shows (`ticket show`).
    fn rating(bench: &Bench, id: TicketId) -> Option<u8> {
        bench.reader().ticket(id).unwrap().unwrap().ticket.csat
    }

    #[test]
    fn survey_address_with_the_right_mac_records_the_rating() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let before = bench.outbox().len();
        let to = survey::address(SUPPORT, &bench.engine.key, id, 4);
        let d = click(&mut bench, &to, "");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let csat: Vec<_> = bench.events_of(id, "csat");
        assert_eq!(csat.len(), 1, "{csat:?}");
        assert_eq!(csat[0].new.as_deref(), Some("4"));
        assert_eq!(csat[0].old, None, "the first rating replaces none");
        assert_eq!(csat[0].detail, None, "an empty body is no comment");
        assert_eq!(rating(&bench, id), Some(4));
        assert_eq!(
            bench.status(id),
            Status::Resolved,
            "a rating does not reopen"
        );
        assert_eq!(bench.outbox().len(), before, "nor is it relayed");
    }

    /// Issue 10: a stranger's mail to a survey address with a wrong mac, with the
    /// prefilled subject (the tag): the strangers' rule, a new ticket linked and flagged;
    /// nothing of it on the ticket the address names. Without the tag: a plain new ticket.
    #[test]
    fn wrong_mac_from_a_stranger_does_not_reach_the_ticket() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let messages = bench.messages(id).len();
        let events = bench.events(id).len();
        let forged = wrong_mac(&bench, id, 1);
        assert!(survey::parse_address(&forged).is_some(), "{forged}");
        let d = mail_to(
            &mut bench,
            MALLORY,
            &forged,
            &format!("Rating 1 [ACME #{id}]"),
            "Terrible, and send me the customer's address",
        );
        assert!(
            matches!(d, Delivered::Applied(Applied::NewTicket { .. })),
            "{d:?}"
        );
        let other = ticket_of(&d);
        assert_ne!(other, id);
        let t = bench.reader().ticket(other).unwrap().unwrap().ticket;
        assert_eq!(t.requester.as_deref(), Some(MALLORY));
        assert_eq!(t.linked_to, Some(id.get()), "the tag links it");
        assert!(t.flagged.is_some(), "a stranger naming a ticket is flagged");
        assert_eq!(t.csat, None);
        let refused: Vec<_> = bench.events_of(other, "csat.refused");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].new.as_deref(), Some("1"));
        assert!(
            refused[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("wrong mac") && d.contains(&format!("#{id}"))),
            "{refused:?}"
        );
        // The named ticket: no message, no event, no rating, still resolved.
        assert_eq!(bench.messages(id).len(), messages);
        assert_eq!(bench.events(id).len(), events, "{:?}", bench.events(id));
        assert_eq!(rating(&bench, id), None);
        assert_eq!(bench.status(id), Status::Resolved);

        let forged = wrong_mac(&bench, id, 5);
        let plain = mail_to(&mut bench, MALLORY, &forged, "Rating", "");
        let third = ticket_of(&plain);
        assert!(![id, other].contains(&third), "{plain:?}");
        let t = bench.reader().ticket(third).unwrap().unwrap().ticket;
        assert_eq!((t.linked_to, t.flagged), (None, None), "names no ticket");
        assert_eq!(bench.count(third, "csat.refused"), 1);
        assert_eq!(bench.events(id).len(), events);
        assert_eq!(rating(&bench, id), None);
    }

    /// A wrong mac from the customer herself: placed as any of her mail (the tag of her
    /// own ticket joins it, and a reply reopens a resolved ticket); no rating.
    #[test]
    fn wrong_mac_from_the_customer_is_placed_as_her_mail() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let forged = wrong_mac(&bench, id, 5);
        let d = mail_to(
            &mut bench,
            CAROL,
            &forged,
            &format!("Rating 5 [ACME #{id}]"),
            "",
        );
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.count(id, "csat"), 0);
        assert_eq!(rating(&bench, id), None);
        assert_eq!(bench.count(id, "csat.refused"), 1);
        assert_eq!(bench.count(id, "message.in"), 1, "an ordinary follow-up");
        assert_eq!(bench.status(id), Status::Open);

        // With a plain subject it names no ticket: a new one.
        let d = click(&mut bench, &forged, "");
        assert!(
            matches!(d, Delivered::Applied(Applied::NewTicket { .. })),
            "{d:?}"
        );
        assert_ne!(ticket_of(&d), id);
        assert_eq!(bench.count(id, "csat.refused"), 1);
    }

    /// Issue 12: a mail to 300 survey addresses with wrong macs: `max_events_per_message`
    /// refusals, then one that counts the rest.
    #[test]
    fn many_wrong_macs_are_capped() {
        let mut bench = Bench::new("", "");
        let max = bench.engine.limits().max_events_per_message;
        let id = resolved(&mut bench);
        let forged: Vec<String> = (0..300)
            .map(|n| {
                let good = wrong_mac(&bench, id, 5);
                let (local, domain) = good.rsplit_once('@').unwrap();
                format!("{local}{n}@{domain}")
            })
            .collect();
        let d = mail_to(
            &mut bench,
            CAROL,
            &forged.join(", "),
            &format!("Rating 5 [ACME #{id}]"),
            "",
        );
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let refused = bench.events_of(id, "csat.refused");
        assert_eq!(refused.len(), max + 1);
        let last = refused.last().unwrap();
        assert_eq!(last.new, None);
        assert!(
            last.detail
                .as_deref()
                .is_some_and(|d| d.starts_with(&format!("{} more", 300 - max))),
            "{last:?}"
        );
    }

    #[test]
    fn reply_whose_first_line_is_a_rating_counts() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let before = bench.outbox().len();
        let d = bench.reply(CAROL, id, "customer", "", "5\nQuick and friendly.");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let csat: Vec<_> = bench.events_of(id, "csat");
        assert_eq!(csat.len(), 1, "{csat:?}");
        assert_eq!(csat[0].new.as_deref(), Some("5"));
        assert_eq!(csat[0].detail.as_deref(), Some("Quick and friendly."));
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(bench.outbox().len(), before);
    }

    /// Issue 10: the right link twice is one rating, the second, and two events.
    #[test]
    fn right_link_twice_keeps_one_rating_the_second() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let before = bench.outbox().len();
        let low = survey::address(SUPPORT, &bench.engine.key, id, 2);
        click(&mut bench, &low, "");
        assert_eq!(rating(&bench, id), Some(2));
        let high = survey::address(SUPPORT, &bench.engine.key, id, 5);
        click(&mut bench, &high, "Thanks, it works now");
        assert_eq!(rating(&bench, id), Some(5), "the second replaces the first");
        assert_eq!(
            ratings(&bench, id),
            [
                (None, Some("2".to_owned())),
                (Some("2".to_owned()), Some("5".to_owned()))
            ]
        );
        let last = bench
            .events(id)
            .into_iter()
            .rfind(|e| kind(e) == "csat")
            .unwrap();
        assert_eq!(last.detail.as_deref(), Some("Thanks, it works now"));
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(bench.outbox().len(), before, "no mail for either");
        // A report counts the ticket once, with its latest rating.
        let digest = bench.write(|_, tx| tx.digest_figures("support", bench_start()));
        assert_eq!((digest.ratings, digest.rating_average), (1, Some(5.0)));
    }

    fn bench_start() -> chrono::DateTime<chrono::Utc> {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 1, 0, 0, 0).unwrap()
    }

    /// Issue 10: a right link after `survey_valid_for` (default 30 days) since the
    /// survey mail is kept on the ticket, refused as expired, and records no rating.
    #[test]
    fn expired_link_is_refused_and_records_no_rating() {
        let mut bench = Bench::new("", "");
        let id = resolved(&mut bench);
        let before = bench.outbox().len();
        let messages = bench.messages(id).len();
        bench.clock.advance(chrono::Duration::days(31));
        let to = survey::address(SUPPORT, &bench.engine.key, id, 4);
        let d = click(&mut bench, &to, "");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.count(id, "csat"), 0);
        assert_eq!(rating(&bench, id), None);
        let refused: Vec<_> = bench.events_of(id, "csat.refused");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].new.as_deref(), Some("4"));
        assert!(
            refused[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.contains("expired") && d.contains("30d")),
            "{refused:?}"
        );
        assert_eq!(bench.messages(id).len(), messages + 1, "kept on the ticket");
        assert_eq!(bench.status(id), Status::Resolved, "not reopened");
        assert_eq!(bench.outbox().len(), before, "nor relayed");
    }

    /// The queue's `survey_valid_for` counts from the ticket's latest survey mail: a new
    /// survey (resolved again) makes the links good again.
    #[test]
    fn survey_valid_for_counts_from_the_latest_survey_mail() {
        let mut bench = Bench::new("survey_valid_for = \"7d\"", "");
        let id = resolved(&mut bench);
        let key = bench.engine.key.clone();
        let to = |r| survey::address(SUPPORT, &key, id, r);
        bench.clock.advance(chrono::Duration::days(6));
        click(&mut bench, &to(3), "");
        assert_eq!(rating(&bench, id), Some(3), "inside 7 days");
        bench.clock.advance(chrono::Duration::days(2));
        click(&mut bench, &to(1), "");
        assert_eq!(rating(&bench, id), Some(3), "after 7 days: refused");
        assert_eq!(bench.count(id, "csat.refused"), 1);

        set_status(&mut bench, id, Status::Open);
        set_status(&mut bench, id, Status::Resolved);
        assert_eq!(bench.outbox_of("survey").len(), 2, "a second survey");
        click(&mut bench, &to(1), "");
        assert_eq!(rating(&bench, id), Some(1));
        assert_eq!(
            ratings(&bench, id),
            [
                (None, Some("3".to_owned())),
                (Some("3".to_owned()), Some("1".to_owned()))
            ]
        );
        assert_eq!(bench.count(id, "csat.refused"), 1);
    }

    /// `survey_valid_for = "never"`: links never expire.
    #[test]
    fn links_that_never_expire() {
        let mut bench = Bench::new("survey_valid_for = \"never\"", "");
        let id = resolved(&mut bench);
        bench.clock.advance(chrono::Duration::days(400));
        let to = survey::address(SUPPORT, &bench.engine.key, id, 5);
        click(&mut bench, &to, "");
        assert_eq!(rating(&bench, id), Some(5));
        assert_eq!(bench.count(id, "csat.refused"), 0);
    }
}
