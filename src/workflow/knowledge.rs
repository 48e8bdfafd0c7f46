//! The knowledge base and self-service in the workflow (issue 16: 知识库辅助, 自助服务).
//!
//! - Off the writer ([`Engine::hints`], in the prepare stage): a human message that may
//!   open a ticket (no subject tag, no reference to our mail, not a status request) gets
//!   its request words (subject and text without quoted history, `crate::words`); the
//!   `Desk` then looks up the similar resolved tickets on a read connection
//!   (`store::Reader::similar`, bounded). Inside the writer only cheap work is left: the
//!   words are kept for the index ([`Engine::record_request`]) and the articles, a few
//!   in memory, are ranked ([`crate::kb::Kb::suggest_terms`]).
//! - A status request ([`Engine::status_request`]): a mail whose whole subject is one of
//!   `[self_service] status_words` opens no ticket; the sender (the `From` address, never
//!   anyone else) gets the list of their own open tickets, or a mail saying there are
//!   none, through the loop rules of automatic mail; one `self_service.status` event per
//!   request. Automatic mail never gets here (it is handled before), nor do agents.
//! - `solved` ([`Engine::solved_by_customer`]): a customer's reply whose first line is one
//!   of `solved_words`, on a ticket whose acknowledgement listed articles (`kb.suggested`)
//!   and that is not resolved yet, resolves it (the status mail or survey as for an
//!   agent's `#status resolved`) and records `kb.deflected`. Other `#` lines of customers
//!   stay refused as before.

use chrono::{DateTime, Utc};

use super::lifecycle::{Cause, StatusChange};
use super::outgoing::Outgoing;
use super::{Applied, Engine, Hints, SYSTEM};
use crate::kb::Suggestion;
use crate::mail::parse::Parsed;
use crate::model::{Audience, EventKind, Language, MailboxName, OutboxKind, Status, TicketId};
use crate::notify::{self, Addressee, ThreadInfo};
use crate::store::{NewEvent, StoreError, TicketRow, Tx};

/// How much of a message's text (after quote trimming) gives its request words.
const REQUEST_TEXT_BYTES: usize = 4096;
/// At most this many request words are kept per ticket.
const MAX_REQUEST_WORDS: usize = 200;
/// A status mail lists at most this many tickets (and says how many more).
const MAX_LISTED: usize = 20;
/// Subjects are cut to this many characters in the status list (72 columns).
const LISTED_SUBJECT_CHARS: usize = 48;
/// Similar tickets and articles shown per new ticket.
pub const SHOWN: usize = 3;

/// What the knowledge base adds to a new ticket's mails.
#[derive(Debug, Clone, Default)]
pub(super) struct Found<'a> {
    pub similar: &'a [crate::store::SimilarTicket],
    pub articles: Vec<Suggestion>,
}

impl Engine {
    /// Whether a subject is a status request (`[self_service] status_words`).
    fn is_status_request(&self, subject: &str) -> bool {
        let asked = subject.trim().to_lowercase();
        self.cfg.knowledge.status_words.contains(&asked)
    }

    /// The request words of a human message that may open a ticket; `None` for one that
    /// names one of our tickets or our mail, or asks for the status. Pure and off the
    /// writer (the prepare stage).
    pub(super) fn hints(&self, parsed: &Parsed) -> Option<Hints> {
        if self.is_status_request(&parsed.subject)
            || self
                .tags
                .iter()
                .any(|tag| crate::mail::subject::find_tag(&parsed.subject, tag).is_some())
        {
            return None;
        }
        let ours = format!("@{}", self.identity.hostname.to_ascii_lowercase());
        let refers_to_us = parsed
            .references
            .iter()
            .chain(parsed.in_reply_to.iter())
            .any(|id| id.as_str().to_ascii_lowercase().ends_with(&ours));
        if refers_to_us {
            return None;
        }
        let top = crate::agent::quote::head(&parsed.text, REQUEST_TEXT_BYTES * 2);
        let text = crate::agent::quote::trim_quoted(top);
        let text = crate::agent::quote::head(text, REQUEST_TEXT_BYTES);
        let mut words = crate::kb::terms(&format!("{}\n{text}", parsed.subject));
        words.truncate(MAX_REQUEST_WORDS);
        Some(Hints {
            words,
            similar: Vec::new(),
        })
    }

    /// Keeps a new ticket's request words for the similar-tickets index and ranks the
    /// articles for it (in memory: a few microseconds).
    pub(super) fn record_request<'h>(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        hints: Option<&'h Hints>,
    ) -> Result<Found<'h>, StoreError> {
        let Some(hints) = hints else {
            return Ok(Found::default());
        };
        tx.record_ticket_words(t.id, &hints.words.join(" "))?;
        let articles =
            self.cfg
                .knowledge
                .kb
                .suggest_terms(&hints.words, &t.queue, t.language, SHOWN);
        Ok(Found {
            similar: &hints.similar,
            articles,
        })
    }

    /// A status request (see the module doc): `Some` when the mail was one, handled.
    pub(super) fn status_request(
        &self,
        tx: &mut Tx<'_>,
        mailbox: Option<&MailboxName>,
        parsed: &Parsed,
        at: DateTime<Utc>,
    ) -> Result<Option<Applied>, StoreError> {
        let Some(from) = parsed.from.as_ref() else {
            return Ok(None);
        };
        if !self.is_status_request(&parsed.subject) || self.is_staff(&from.address) {
            return Ok(None);
        }
        let address = from.address.to_ascii_lowercase();
        let mut own = tx.open_tickets_of(&address, MAX_LISTED + 1)?;
        let more = own.len().saturating_sub(MAX_LISTED);
        own.truncate(MAX_LISTED);
        let mb = mailbox
            .and_then(|m| self.mailboxes.get(m.as_str()))
            .or_else(|| self.mailboxes.values().next())
            .expect("config has at least one mailbox");
        let queue = self.queue(&mb.queue);
        let language = if crate::mail::parse::has_cjk(&parsed.subject) {
            Language::ZhCn
        } else {
            queue.language
        };
        tx.append_event(&NewEvent {
            ticket: None,
            at,
            actor: &address,
            kind: EventKind::SelfServiceStatus,
            old: None,
            new: Some(&own.len().to_string()),
            detail: Some(parsed.message_id.as_str()),
        })?;
        let Some(due) = self.schedule_ticketless(tx, &address, OutboxKind::SelfService, at)? else {
            return Ok(Some(Applied::SelfService));
        };
        let schedule = &self.cfg.schedule;
        let tickets: Vec<minijinja::Value> = own
            .iter()
            .map(|o| {
                minijinja::context! {
                    tag => &o.tag,
                    subject => cut(&o.subject, LISTED_SUBJECT_CHARS),
                    status => super::lifecycle::status_text(o.status, language),
                    updated => o.updated_at.with_timezone(&schedule.timezone).format("%Y-%m-%d %H:%M").to_string(),
                }
            })
            .collect();
        let mut references = parsed.references.clone();
        references.push(parsed.message_id.clone());
        let o = Outgoing {
            kind: OutboxKind::SelfService,
            language,
            context: minijinja::context! {
                queue_name => &queue.display_name,
                customer_name => notify::display_name(from),
                customer_address => &address,
                tickets => tickets,
                more => more,
                asked => cut(parsed.subject.trim(), 40),
            },
            from_name: queue.display_name.clone(),
            reply_to: None,
            to: vec![Addressee {
                name: from.name.clone(),
                address: from.address.clone(),
            }],
            cc: Vec::new(),
            in_reply_to: Some(parsed.message_id.clone()),
            references,
            attachments: Vec::new(),
            audience: Audience::Customer,
        };
        let thread = ThreadInfo {
            hostname: &self.identity.hostname,
            ticket: TicketId::new(0),
            created_at: at,
            topic: &queue.display_name,
        };
        self.enqueue(tx, None, &mb.address, thread, o, at, due)?;
        Ok(Some(Applied::SelfService))
    }

    /// `solved` from the customer (see the module doc); true when it resolved `t`.
    pub(super) fn solved_by_customer(
        &self,
        tx: &mut Tx<'_>,
        t: &TicketRow,
        parsed: &Parsed,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let text = parsed.reply_text.as_deref().unwrap_or(&parsed.text);
        let first = crate::agent::quote::head(text, 1024)
            .lines()
            .map(|l| l.trim().trim_end_matches(['.', '!', '。', '！']))
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_lowercase();
        let solved = self.cfg.knowledge.solved_words.contains(&first);
        if !solved
            || !matches!(t.status, Status::New | Status::Open | Status::Pending)
            || !tx.has_event(t.id, EventKind::KbSuggested)?
        {
            return Ok(false);
        }
        let actor = parsed
            .from
            .as_ref()
            .map_or("customer", |f| f.address.as_str());
        let change =
            self.change_status(tx, t.id, Status::Resolved, actor, Cause::CustomerSolved, at)?;
        let StatusChange::Changed { mail, .. } = change else {
            return Ok(false);
        };
        tx.append_event(&NewEvent {
            ticket: Some(t.id),
            at,
            actor,
            kind: EventKind::KbDeflected,
            old: None,
            new: Some(parsed.message_id.as_str()),
            detail: Some("the customer answered solved to the suggested articles"),
        })?;
        if let Some(kind) = mail {
            self.send_status_mail(tx, t.id, Status::Resolved, kind, at)?;
        }
        Ok(true)
    }

    /// Records that the acknowledgement listed `articles`.
    pub(super) fn record_suggested(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        articles: &[Suggestion],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let names: Vec<&str> = articles.iter().map(|a| a.name.as_str()).collect();
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor: SYSTEM,
            kind: EventKind::KbSuggested,
            old: None,
            new: Some(&names.join(", ")),
            detail: Some("listed in the acknowledgement"),
        })
    }
}

/// Articles and similar tickets as the templates read them.
pub(super) fn articles_context(articles: &[Suggestion]) -> Vec<minijinja::Value> {
    articles
        .iter()
        .map(|a| {
            minijinja::context! {
                name => &a.name, title => &a.title, confidence => format!("{:.2}", a.confidence),
            }
        })
        .collect()
}

pub(super) fn similar_context(
    similar: &[crate::store::SimilarTicket],
    language: Language,
) -> Vec<minijinja::Value> {
    similar
        .iter()
        .map(|s| {
            minijinja::context! {
                tag => &s.tag, subject => cut(&s.subject, 60),
                status => super::lifecycle::status_text(s.status, language),
                answer => if s.answer.is_empty() { "-".to_owned() } else { s.answer.clone() },
            }
        })
        .collect()
}

/// `s` with at most `max` characters, `…` marking a cut.
fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((at, _)) => format!("{}…", &s[..at]),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Status;
    use crate::workflow::testing::{kind, Bench, ALICE};
    use crate::workflow::{Applied, Delivered};

    const CAROL: &str = "carol@customer.test";
    const DAVE: &str = "dave@customer.test";

    fn with_article() -> (Bench, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("printer-jam.md"),
            "---\ntitle: Printer paper jam\ntags: printer\n---\nOpen tray 2 and pull the paper out.\n",
        )
        .unwrap();
        let top = format!("kb_dir = {:?}", dir.path().display().to_string());
        (
            Bench::configured(&top, "kb_in_acknowledgement = true", ""),
            dir,
        )
    }

    #[test]
    fn status_request_lists_own_open_tickets_and_opens_none() {
        let mut bench = Bench::new("", "");
        let a = bench.new_ticket(CAROL, "Printer", "broken");
        let b = bench.new_ticket(CAROL, "VPN", "drops");
        let other = bench.new_ticket(DAVE, "Dave's secret", "x");
        let tickets = bench.reader().tickets(&Default::default()).unwrap().len();
        let before = bench.outbox().len();
        let d = bench.send(CAROL, "status", "", "");
        assert_eq!(d, Delivered::Applied(Applied::SelfService));
        let d = bench.send(DAVE, " 查询 ", "", "");
        assert_eq!(d, Delivered::Applied(Applied::SelfService));
        let d = bench.send("erin@customer.test", "Status", "", "");
        assert_eq!(d, Delivered::Applied(Applied::SelfService));
        assert_eq!(
            bench.reader().tickets(&Default::default()).unwrap().len(),
            tickets
        );
        let mail: Vec<_> = bench.outbox().into_iter().skip(before).collect();
        assert_eq!(
            mail,
            vec![
                ("self-service".to_owned(), vec![CAROL.to_owned()]),
                ("self-service".to_owned(), vec![DAVE.to_owned()]),
                (
                    "self-service".to_owned(),
                    vec!["erin@customer.test".to_owned()]
                ),
            ]
        );
        // "status" with more words is an ordinary request.
        let d = bench.send(CAROL, "status of my printer", "", "");
        assert!(matches!(d, Delivered::Applied(Applied::NewTicket { .. })));
        let _ = (a, b, other);
    }

    #[test]
    fn agents_and_automatic_mail_get_no_status_list() {
        let mut bench = Bench::new("", "");
        let before = bench.outbox().len();
        let d = bench.send(ALICE, "status", "", "");
        assert!(
            !matches!(d, Delivered::Applied(Applied::SelfService)),
            "{d:?}"
        );
        let d = bench.send(CAROL, "status", "Auto-Submitted: auto-replied\n", "");
        assert!(
            matches!(d, Delivered::Applied(Applied::Automatic { .. })),
            "{d:?}"
        );
        assert!(bench
            .outbox()
            .iter()
            .skip(before)
            .all(|(k, _)| k != "self-service"));
    }

    #[test]
    fn acknowledgement_lists_matching_articles_and_solved_resolves() {
        let (mut bench, _dir) = with_article();
        let id = bench.new_ticket(CAROL, "Printer paper jam", "The printer has a paper jam.");
        let ack = bench.last_sent(id, "customer").text;
        assert!(
            ack.contains("These articles may answer your question"),
            "{ack}"
        );
        assert!(ack.contains("Printer paper jam"), "{ack}");
        assert_eq!(bench.count(id, "kb.suggested"), 1);
        let relay = bench.last_sent(id, "agents").text;
        assert!(
            relay.contains("KB article: #kb printer-jam (Printer paper jam, 1.00)"),
            "{relay}"
        );
        bench.reply(
            CAROL,
            id,
            "customer",
            "",
            "Solved!\n\nThanks, the tray was it.",
        );
        assert_eq!(bench.status(id), Status::Resolved);
        assert_eq!(bench.count(id, "kb.deflected"), 1);
        let last = bench.outbox().pop().unwrap();
        assert_eq!(last, ("survey".to_owned(), vec![CAROL.to_owned()]));
    }

    #[test]
    fn solved_needs_listed_articles() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(CAROL, "Printer paper jam", "The printer has a paper jam.");
        bench.reply(CAROL, id, "customer", "", "solved");
        assert_ne!(bench.status(id), Status::Resolved);
        assert_eq!(bench.count(id, "kb.deflected"), 0);
        // An article that does not match is not listed, and solved does nothing either.
        let (mut bench, _dir) = with_article();
        let id = bench.new_ticket(CAROL, "VPN", "The VPN drops every hour.");
        assert_eq!(bench.count(id, "kb.suggested"), 0);
        bench.reply(CAROL, id, "customer", "", "已解决");
        assert_eq!(bench.status(id), Status::New);
    }

    #[test]
    fn similar_resolved_tickets_are_found_by_their_words() {
        let mut bench = Bench::new("", "");
        let jam = bench.new_ticket(CAROL, "Printer paper jam", "The printer on floor 3 jams.");
        bench.reply(
            ALICE,
            jam,
            "agents",
            "",
            "#status resolved\nHi Carol,\n\nOpen tray 2 and pull the paper.",
        );
        let vpn = bench.new_ticket(CAROL, "VPN drops", "The VPN drops every hour.");
        bench.reply(
            ALICE,
            vpn,
            "agents",
            "",
            "#status resolved\nUpdate the client.",
        );
        let open = bench.new_ticket(DAVE, "Printer jam again", "paper jam in the printer");
        let words = bench.reader().ticket_words(open).unwrap();
        assert!(words.contains(&"jam".to_owned()), "{words:?}");
        let similar = bench.reader().similar(&words, Some(open), 3).unwrap();
        assert_eq!(
            similar.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![jam],
            "{similar:?}"
        );
        assert_eq!(similar[0].answer, "Open tray 2 and pull the paper.");
        assert_eq!(similar[0].status, Status::Resolved);
        // Chinese is segmented the same way.
        let zh = bench.new_ticket(CAROL, "发票开错了", "我的发票抬头写错了，需要重开发票。");
        bench.reply(
            ALICE,
            zh,
            "agents",
            "",
            "#status resolved\n已为您重开发票。",
        );
        let words = crate::kb::terms("发票抬头错误");
        let similar = bench.reader().similar(&words, None, 3).unwrap();
        assert_eq!(similar.first().map(|s| s.id), Some(zh), "{similar:?}");
        assert!(bench
            .reader()
            .similar(&["nothing".to_owned()], None, 3)
            .unwrap()
            .is_empty());
        let _ = kind;
    }
}
