//! Applies what the pure stages decided, inside the ingest transaction.
//!
//! In: a batch of prepared messages from one mailbox ([`IngestBatch`]) and a [`Tx`].
//! Out: tickets, participants, events, outbox rows and the advanced cursor, all in the
//! caller's one transaction (`store` commits it).
//! - Exactly once (invariant 1): a UID already seen in this UIDVALIDITY, or a Message-ID
//!   already stored, changes nothing.
//! - Nothing lost (invariant 2): each message runs in a savepoint; if it cannot be
//!   applied, its raw bytes go to quarantine with the reason and the batch goes on.
//! - No loops (invariant 3): automatic mail is recorded, never answered, and never opens
//!   a ticket.
//! - The lifecycle decision for a customer's reply is the pure [`on_customer_reply`].
//! - Agents' mail (answers, commands, notes) is handled in [`agents`]; every mail we
//!   write is queued through [`outgoing`].
//! - Mailbox alarms (a refused login, no sync for `alert_after`, a refresh token about to
//!   expire) are decided by the pure [`health::decide`] and mailed once per incident.

pub mod admin;
mod agents;
pub mod health;
mod knowledge;
pub mod lifecycle;
mod outgoing;
mod prepare;
pub mod routing;
mod survey;
mod timed;
mod triage;
#[cfg(test)]
pub(crate) mod testing;
mod writer;

pub use writer::Desk;

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{Agent, Config, LoopProtection, Queue, RateKey};
use crate::key::{self, InstanceKey};
use crate::mail::classify::{self, BounceKind, Class, Identity};
use crate::mail::parse::{self, Parsed, Unusable};
use crate::model::{
    EventKind, Language, MailboxName, MessageRowId, QuarantineId, Status, TicketId, Uid,
    UidValidity,
};
use crate::notify::{self, Templates};
use crate::store::{
    NewCost, NewEvent, NewIncoming, NewQuarantine, NewTicket, StoreError, Truncated, Tx,
};
use crate::thread::{self, Placement};
use lifecycle::{on_customer_reply, Cause, Reopen};

/// A message after the pure stages: parsed and classified, off the writer thread.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub parsed: Parsed,
    pub class: Class,
    /// The recognisers behind `class`, stored with the message.
    pub evidence: Vec<classify::Evidence>,
    /// For a human message that may open a ticket: what the knowledge base found for it
    /// (issue 16), off the writer.
    pub hints: Option<Hints>,
    /// Triage's guesses (issue 16) for a message that looks like a new request, made
    /// here rather than on the writer thread; `None` when triage is off or no model.
    pub triage: Option<crate::triage::Suggestion>,
}

/// A possible new request's words, and the resolved tickets like it (found by
/// `Desk::prepare` on a read connection, outside the writer's transaction).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hints {
    pub words: Vec<String>,
    pub similar: Vec<crate::store::SimilarTicket>,
}

/// One fetched message.
#[derive(Debug)]
pub struct Incoming {
    pub uid: Uid,
    pub raw: Vec<u8>,
    pub prepared: Result<Prepared, String>,
    pub cost: Cost,
}

/// One message handed over outside IMAP (`deliver`, `import`) after the pure stages, or
/// fetched before its UID is attached.
#[derive(Debug)]
pub struct Ready {
    /// The message, or only its start when `cost.truncated` says so.
    pub raw: Vec<u8>,
    pub prepared: Result<Prepared, String>,
    pub cost: Cost,
}

/// What a message cost before the writer: recorded with it for `postdesk status`.
#[derive(Debug, Clone, Default)]
pub struct Cost {
    /// Time spent parsing and classifying it.
    pub took: Duration,
    /// `Some` when it was over `limits.max_message_bytes`: `raw` is its headers and a
    /// prefix, and it goes to quarantine as it is.
    pub truncated: Option<Truncated>,
}

impl Cost {
    /// The whole message's size.
    fn size(&self, raw: &[u8]) -> u64 {
        self.truncated.as_ref().map_or(raw.len() as u64, |t| t.size)
    }
}

/// How long `ingest_costs` rows are kept: `postdesk status` shows the last hour.
const COSTS_KEPT: chrono::Duration = chrono::Duration::hours(1);

/// A batch from one mailbox and the cursor position it covers.
#[derive(Debug)]
pub struct IngestBatch {
    pub mailbox: MailboxName,
    pub uidvalidity: UidValidity,
    pub items: Vec<Incoming>,
    /// Highest UID the batch covers (UIDs the server skipped are covered too).
    pub last_uid: Uid,
    /// Messages still waiting on the server after this batch (for `postdesk status`).
    pub backlog: u32,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub recorded: usize,
    pub duplicates: usize,
    pub quarantined: usize,
    pub new_tickets: usize,
    pub automatic: usize,
    pub outbox: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    Released(Applied),
    StillUnusable(String),
    AlreadyReleased,
    /// Only the headers and a prefix (`kept` of `size` bytes) are held; the whole message
    /// is on the IMAP server at `location` of `mailbox` (none: handed over by `deliver` or
    /// `import`). Nothing was tried.
    Truncated {
        size: u64,
        kept: u64,
        mailbox: Option<MailboxName>,
        location: Option<(UidValidity, Uid)>,
    },
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    NewTicket {
        ticket: TicketId,
        acknowledged: bool,
    },
    FollowUp {
        ticket: TicketId,
    },
    /// Automatic mail, recorded on a ticket or on none.
    Automatic {
        ticket: Option<TicketId>,
    },
    Duplicate,
    /// A status request by mail (issue 16): answered, no ticket.
    SelfService,
}

/// Whether and when an automatic mail may go out (invariant 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Send,
    /// The recipient's domain or the global breaker has no room now: queued for this time,
    /// the start of the first later window with room, for this reason.
    Delay(DateTime<Utc>, String),
    /// Never: a loop (the same recipient again and again), an address that hard-bounced,
    /// or no room within `ack_max_age`. Recorded as an event.
    Hold(String),
}

/// What the loop rules count for one automatic mail, inside their windows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recent<'a> {
    /// Automatic mails to the same rate key ([`rate_key`]) in `per_recipient_window`.
    pub recipient: u64,
    /// Automatic mails to the same domain per `per_recipient_window` (windows aligned on
    /// the clock, counted in the window they are due in), from the current window on.
    pub domain: &'a [(i64, u64)],
    /// Automatic mails per breaker window (`global_window`, aligned on the clock), from
    /// the current window on: (window number, mails), ascending, empty windows left out.
    pub breaker: &'a [(i64, u64)],
}

/// Same inputs, same answer. `undeliverable` is the status of a hard bounce of the
/// address, if it has one. The per-recipient limit holds for good (a loop: the same few
/// recipients again and again); the per-domain limit and the global breaker only delay,
/// to the first later time at which both the domain's window and the breaker's window
/// have room (distinct customers of one big domain, or a burst of distinct customers, are
/// all answered, at those rates), unless there is none within `ack_max_age`.
pub fn automatic_gate(
    limits: &LoopProtection,
    recent: &Recent<'_>,
    undeliverable: Option<&str>,
    now: DateTime<Utc>,
) -> Gate {
    let window = crate::config::format_duration;
    if let Some(status) = undeliverable {
        return Gate::Hold(format!(
            "address is undeliverable (hard bounce {status}) until it writes again"
        ));
    }
    if recent.recipient >= u64::from(limits.per_recipient) {
        let per = match limits.per_recipient_key {
            RateKey::Address => "address",
            RateKey::Domain => "domain",
        };
        return Gate::Hold(format!(
            "rate limit: {} automatic mails to this {per} in {}",
            limits.per_recipient,
            window(limits.per_recipient_window)
        ));
    }
    let domain = || {
        format!(
            "rate limit: {} automatic mails to this domain per {}",
            limits.per_domain,
            window(limits.per_recipient_window)
        )
    };
    let breaker = || {
        format!(
            "global breaker: {} automatic mails per {}",
            limits.global,
            window(limits.global_window)
        )
    };
    if limits.per_domain == 0 {
        return Gate::Hold(domain());
    }
    if limits.global == 0 {
        return Gate::Hold(breaker());
    }
    let in_window = |windows: &[(i64, u64)], n: i64| {
        windows
            .binary_search_by_key(&n, |w| w.0)
            .map_or(0, |i| windows[i].1)
    };
    let (dw, bw) = (
        window_minutes(limits.per_recipient_window),
        window_minutes(limits.global_window),
    );
    let start = minute(now);
    let last = start + breaker_horizon(limits).num_minutes();
    // Each step jumps to the start of the next window of whichever limit is full, so
    // this ends after at most one step per window within the horizon.
    let mut t = start;
    let mut why = None;
    while t <= last {
        if in_window(recent.domain, t.div_euclid(dw)) >= u64::from(limits.per_domain) {
            t = (t.div_euclid(dw) + 1) * dw;
            why = Some(domain());
        } else if in_window(recent.breaker, t.div_euclid(bw)) >= u64::from(limits.global) {
            t = (t.div_euclid(bw) + 1) * bw;
            why = Some(breaker());
        } else {
            break;
        }
    }
    match why {
        None => Gate::Send,
        Some(why) if t > last => Gate::Hold(format!(
            "{why}, no room within {}",
            window(limits.ack_max_age)
        )),
        Some(why) => Gate::Delay(DateTime::from_timestamp(t * 60, 0).unwrap_or(now), why),
    }
}

/// How long the breaker may delay an automatic mail: `ack_max_age` (an acknowledgement
/// sent later would be dropped anyway).
fn breaker_horizon(limits: &LoopProtection) -> chrono::Duration {
    chrono::Duration::from_std(limits.ack_max_age).unwrap_or(chrono::Duration::days(36_500))
}

/// The address the per-recipient limit counts `address` as: lower case, without a
/// `+detail` in the local part (`Victim+1@Example.COM` is `victim@example.com`), or only
/// the domain with [`RateKey::Domain`].
pub fn rate_key(address: &str, key: RateKey) -> String {
    let address = address.trim().to_lowercase();
    match (key, address.rsplit_once('@')) {
        (RateKey::Domain, Some((_, domain))) => domain.to_owned(),
        (RateKey::Address, Some((local, domain))) => {
            let local = local.split_once('+').map_or(local, |(base, _)| base);
            format!("{local}@{domain}")
        }
        (_, None) => address,
    }
}

/// The domain of `address`, lower case (the whole text when it has no `@`).
fn rate_domain(address: &str) -> String {
    let address = address.trim().to_lowercase();
    match address.rsplit_once('@') {
        Some((_, domain)) => domain.to_owned(),
        None => address,
    }
}

/// A business rule said no; nothing was changed. Told to the person who asked, never a
/// database error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("cannot change status from {from} to {to}")]
    Transition { from: Status, to: Status },
    #[error("no agent named {0:?}")]
    UnknownAgent(String),
    #[error("no queue named {0:?}")]
    UnknownQueue(String),
    #[error("cannot merge #{ticket} into #{into}")]
    Merge { ticket: TicketId, into: TicketId },
}

/// A write through the workflow that a rule refused, or that the store could not make.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The scope of the global breaker in `automatic_counts`: every automatic mail, counted
/// in the minute it is due.
const GLOBAL_SCOPE: &str = "*";

/// What an automatic mail does when the global breaker's current window is full.
#[derive(Debug, Clone, Copy)]
enum Breaker {
    /// Waits for the first later window with room.
    Throttle,
    /// Is held (mail that is only worth sending now).
    HoldWhenFull,
}

fn minute(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

fn window_minutes(d: Duration) -> i64 {
    (d.as_secs() / 60).max(1) as i64
}

struct MailboxInfo {
    tag: String,
    queue: String,
    address: String,
    /// Where agents reply, with `{token}` (`agent::token`).
    reply_address: String,
}

/// Everything the writer thread needs to apply a batch: derived once from the config.
pub struct Engine {
    identity: Identity,
    key: InstanceKey,
    tags: Vec<String>,
    mailboxes: HashMap<String, MailboxInfo>,
    templates: Templates,
    limits: crate::limits::Limits,
    reopen_window: Duration,
    loop_protection: LoopProtection,
    agents: Vec<Agent>,
    comment_addresses: Vec<String>,
    trusted_authserv_id: Option<String>,
    /// The whole configuration, for what the fields above do not cover (queues' SLA and
    /// calendars, rules, schedule).
    cfg: Arc<Config>,
    /// Set while importing with `--no-notify`: no mail is queued. Only the writer thread
    /// touches it, between transactions.
    quiet: std::sync::atomic::AtomicBool,
    clock: Arc<dyn Clock>,
    /// The triage model, read again when its file changes; `None` with `[triage] mode =
    /// "off"`.
    triage: Option<Arc<crate::triage::Loaded>>,
}

/// What became of a message handed over outside IMAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Applied(Applied),
    Quarantined(QuarantineId, String),
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Key(#[from] key::KeyError),
    #[error(transparent)]
    Templates(#[from] notify::TemplateError),
}

/// Why one message could not be applied; it goes to quarantine with this text.
#[derive(Debug)]
enum ApplyError {
    Store(StoreError),
    Unusable(String),
}

impl From<StoreError> for ApplyError {
    fn from(e: StoreError) -> ApplyError {
        ApplyError::Store(e)
    }
}

const SYSTEM: &str = "postdesk";

/// Who we are to the classifier: our hostname (of our Message-IDs) and support addresses.
pub fn identity(cfg: &Config) -> Identity {
    Identity {
        hostname: cfg.hostname.clone(),
        addresses: cfg.support_addresses(),
    }
}

impl Engine {
    pub fn new(cfg: &Config, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        let key = InstanceKey::load_or_create(&cfg.instance_key_path())?;
        let templates = Templates::load(cfg.templates_dir.as_deref())?;
        Ok(Engine::with_parts(cfg, key, templates, clock))
    }

    pub fn with_parts(
        cfg: &Config,
        key: InstanceKey,
        templates: Templates,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        Engine {
            identity: identity(cfg),
            key,
            tags: cfg.tags(),
            mailboxes: cfg
                .mailboxes
                .iter()
                .map(|m| {
                    (
                        m.name.as_str().to_owned(),
                        MailboxInfo {
                            tag: m.tag.clone(),
                            queue: m.queue.clone(),
                            address: m.address.clone(),
                            reply_address: m.reply_address.clone(),
                        },
                    )
                })
                .collect(),
            templates,
            limits: cfg.limits.clone(),
            reopen_window: cfg.reopen_window,
            loop_protection: cfg.loop_protection.clone(),
            agents: cfg.agents.clone(),
            comment_addresses: cfg.comment_addresses(),
            trusted_authserv_id: cfg.trusted_authserv_id.clone(),
            cfg: Arc::new(cfg.clone()),
            quiet: std::sync::atomic::AtomicBool::new(false),
            clock,
            triage: (cfg.triage.mode != crate::config::TriageMode::Off)
                .then(|| Arc::new(crate::triage::Loaded::new(&cfg.triage.model_file))),
        }
    }

    /// The configuration the engine was built from.
    pub fn config(&self) -> &Arc<Config> {
        &self.cfg
    }

    /// What one incoming message may cost (`[limits]`).
    pub fn limits(&self) -> &crate::limits::Limits {
        &self.limits
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// True for our own addresses (support addresses and their `+detail` forms, reply
    /// tokens) and agents' addresses: never a customer participant or recipient.
    fn is_staff(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        let base = match a.rsplit_once('@') {
            Some((local, domain)) => {
                format!("{}@{domain}", local.split('+').next().unwrap_or(local))
            }
            None => a.clone(),
        };
        self.identity.addresses.contains(&a)
            || self.identity.addresses.contains(&base)
            || self.comment_addresses.contains(&a)
            || self.agents.iter().any(|x| x.addresses.contains(&a))
            || self
                .mailboxes
                .values()
                .any(|m| crate::agent::token::parse(&m.reply_address, &a).is_some())
    }

    /// Every To/Cc address of a customer's message that is not ours or an agent's becomes
    /// a `cc` participant of `ticket`, each recorded as an event; at most
    /// `limits.max_people_per_message` of them, the rest counted in one `cc.capped` event.
    /// One query for the ticket's participants, then constant work per address.
    fn add_people(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        parsed: &Parsed,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let from = parsed.from.as_ref().map(|f| f.address.as_str());
        let mut known: std::collections::HashSet<String> = tx
            .participants(ticket)?
            .into_iter()
            .map(|(address, _)| address)
            .collect();
        let max = self.limits.max_people_per_message;
        let (mut added, mut not_added) = (0, 0);
        for p in parsed.to.iter().chain(&parsed.cc) {
            let a = p.address.to_ascii_lowercase();
            if Some(a.as_str()) == from || known.contains(&a) || self.is_staff(&a) {
                continue;
            }
            known.insert(a.clone());
            if added == max {
                not_added += 1;
                continue;
            }
            added += 1;
            tx.add_participant(ticket, &a, "cc")?;
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: actor(parsed),
                kind: EventKind::Cc,
                old: None,
                new: Some(&a),
                detail: Some("copied on the customer's mail"),
            })?;
        }
        if not_added > 0 {
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: SYSTEM,
                kind: EventKind::CcCapped,
                old: None,
                new: Some(&not_added.to_string()),
                detail: Some(&format!(
                    "{not_added} more people copied on the customer's mail were not added (at most {max} a mail)"
                )),
            })?;
        }
        Ok(())
    }

    /// The receiving server we trust for `Authentication-Results`, when one is set.
    fn trust(&self) -> Option<crate::agent::auth::Trust<'_>> {
        self.trusted_authserv_id
            .as_deref()
            .map(|id| crate::agent::auth::Trust {
                authserv_id: id,
                internal_hosts: &self.cfg.internal_hosts,
            })
    }

    /// True when `parsed` references one of our signed Message-IDs of a mail we sent to
    /// `address` (only its reader knows it), or the trusted receiving server reports an
    /// aligned DKIM/DMARC pass for `address`.
    fn proven_sender(
        &self,
        tx: &mut Tx<'_>,
        parsed: &Parsed,
        address: &str,
    ) -> Result<bool, StoreError> {
        let address = address.to_ascii_lowercase();
        for id in parsed.referenced_ids() {
            if let Some((_, message)) = self.key.verify(id) {
                if tx.recipients_of(message)?.contains(&address) {
                    return Ok(true);
                }
            }
        }
        Ok(self.trust().is_some_and(|trust| {
            crate::agent::auth::agent_proof(&parsed.auth_results, &trust, &address).is_ok()
        }))
    }

    /// The reply tokens among a mail's recipients (To, Cc, Delivered-To), not yet verified.
    fn reply_tokens(&self, parsed: &Parsed) -> Vec<crate::agent::token::Token> {
        let templates: Vec<String> = self
            .mailboxes
            .values()
            .map(|m| m.reply_address.clone())
            .collect();
        crate::agent::token::find(
            &templates,
            parsed
                .to
                .iter()
                .chain(&parsed.cc)
                .map(|p| p.address.as_str())
                .chain(parsed.delivered_to.iter().map(String::as_str)),
        )
    }

    /// A queue's settings; a ticket whose queue left the configuration gets the defaults
    /// (one place reads queue flags, so surveys and status mail cannot disagree).
    pub(crate) fn queue(&self, name: &str) -> std::borrow::Cow<'_, Queue> {
        match self.cfg.queue(name) {
            Some(q) => std::borrow::Cow::Borrowed(q),
            None => std::borrow::Cow::Owned(Queue::named(name)),
        }
    }

    /// Parse and classify: pure, CPU only, run off the writer thread. A panic in a parser
    /// becomes a quarantine reason, never a dead task.
    pub fn prepare(&self, raw: &[u8]) -> Result<Prepared, String> {
        let limits = &self.limits;
        let identity = &self.identity;
        match catch_unwind(AssertUnwindSafe(|| {
            parse::message(raw, limits).map(|parsed| {
                let verdict = classify::verdict(&parsed, identity);
                let hints = match verdict.class {
                    Class::Human => self.hints(&parsed),
                    _ => None,
                };
                let triage = self.triage_early(&parsed, &verdict.class);
                Prepared {
                    parsed,
                    class: verdict.class,
                    evidence: verdict.evidence,
                    hints,
                    triage,
                }
            })
        })) {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(unusable)) => Err(unusable_reason(&unusable)),
            Err(_) => Err("internal error: the parser panicked on this message".to_owned()),
        }
    }

    /// Applies a batch (see the module doc) and advances the mailbox cursor.
    pub fn ingest(&self, tx: &mut Tx<'_>, batch: IngestBatch) -> Result<BatchOutcome, StoreError> {
        let mut out = BatchOutcome::default();
        let mb = &batch.mailbox;
        for item in &batch.items {
            if tx.location_known(mb, batch.uidvalidity, item.uid)? {
                out.duplicates += 1;
                continue;
            }
            let applied = tx.savepoint(|tx| {
                catch_unwind(AssertUnwindSafe(|| {
                    self.apply_one(tx, Some(mb), &item.prepared, &item.raw, batch.at)
                }))
                .unwrap_or_else(|_| {
                    Err(ApplyError::Unusable(
                        "internal error: processing panicked on this message".to_owned(),
                    ))
                })
            })?;
            let outcome = match applied {
                Ok((row, applied)) => {
                    tx.add_location(mb, batch.uidvalidity, item.uid, row)?;
                    out.count(&applied);
                    applied.describe()
                }
                Err(err) => {
                    let reason = match err {
                        ApplyError::Unusable(r) => r,
                        ApplyError::Store(e) => {
                            format!("cannot store message: {}", error_chain(&e))
                        }
                    };
                    tracing::warn!(uid = item.uid.0, %reason, "quarantined");
                    let id = tx.quarantine(&NewQuarantine {
                        mailbox: Some(mb),
                        location: Some((batch.uidvalidity, item.uid)),
                        reason: &reason,
                        raw: &item.raw,
                        truncated: item.cost.truncated.as_ref(),
                        at: batch.at,
                    })?;
                    tx.add_location(mb, batch.uidvalidity, item.uid, None)?;
                    out.quarantined += 1;
                    format!("quarantined {}", id.get())
                }
            };
            tx.record_cost(&NewCost {
                mailbox: Some(mb),
                uid: Some(item.uid),
                message_id: item.prepared.as_ref().ok().map(|p| &p.parsed.message_id),
                size: item.cost.size(&item.raw),
                took: item.cost.took,
                outcome: &outcome,
                at: batch.at,
            })?;
        }
        self.prune_costs(tx, batch.at)?;
        tx.advance_cursor(mb, batch.uidvalidity, batch.last_uid, batch.at)?;
        tx.record_batch(mb, batch.items.len(), batch.backlog, batch.at)?;
        let lp = &self.loop_protection;
        let keep = window_minutes(
            lp.per_recipient_window
                .max(lp.global_window)
                .max(lp.relay_window),
        );
        tx.prune_automatic_counts(minute(batch.at) - keep)?;
        Ok(out)
    }

    /// One message handed over outside IMAP (`postdesk deliver`, `postdesk import`): the
    /// same path as a fetched message, without a UID (the Message-ID makes it idempotent).
    /// A message that cannot be applied goes to quarantine; `Ok` means it is safely stored.
    pub fn ingest_unfetched(
        &self,
        tx: &mut Tx<'_>,
        mailbox: &MailboxName,
        message: &Ready,
        at: DateTime<Utc>,
    ) -> Result<Delivered, StoreError> {
        let delivered = self.apply_unfetched(tx, mailbox, message, at)?;
        let outcome = match &delivered {
            Delivered::Applied(a) => a.describe(),
            Delivered::Quarantined(id, _) => format!("quarantined {}", id.get()),
        };
        tx.record_cost(&NewCost {
            mailbox: Some(mailbox),
            uid: None,
            message_id: message.prepared.as_ref().ok().map(|p| &p.parsed.message_id),
            size: message.cost.size(&message.raw),
            took: message.cost.took,
            outcome: &outcome,
            at,
        })?;
        Ok(delivered)
    }

    /// Forgets the message costs older than `postdesk status` shows (once per batch).
    pub fn prune_costs(&self, tx: &mut Tx<'_>, at: DateTime<Utc>) -> Result<(), StoreError> {
        tx.prune_costs(at - COSTS_KEPT)
    }

    fn apply_unfetched(
        &self,
        tx: &mut Tx<'_>,
        mailbox: &MailboxName,
        message: &Ready,
        at: DateTime<Utc>,
    ) -> Result<Delivered, StoreError> {
        let (raw, prepared) = (&message.raw, &message.prepared);
        let applied = tx.savepoint(|tx| {
            catch_unwind(AssertUnwindSafe(|| {
                self.apply_one(tx, Some(mailbox), prepared, raw, at)
            }))
            .unwrap_or_else(|_| {
                Err(ApplyError::Unusable(
                    "internal error: processing panicked on this message".to_owned(),
                ))
            })
        })?;
        match applied {
            Ok((_, applied)) => Ok(Delivered::Applied(applied)),
            Err(err) => {
                let reason = match err {
                    ApplyError::Unusable(r) => r,
                    ApplyError::Store(e) => format!("cannot store message: {}", error_chain(&e)),
                };
                let id = tx.quarantine(&NewQuarantine {
                    mailbox: Some(mailbox),
                    location: None,
                    reason: &reason,
                    raw,
                    truncated: message.cost.truncated.as_ref(),
                    at,
                })?;
                Ok(Delivered::Quarantined(id, reason))
            }
        }
    }

    /// A batch of [`Engine::ingest_unfetched`] (import); `notify = false` queues no mail.
    pub fn import_batch(
        &self,
        tx: &mut Tx<'_>,
        mailbox: &MailboxName,
        items: &[Ready],
        notify: bool,
        at: DateTime<Utc>,
    ) -> Result<BatchOutcome, StoreError> {
        self.quiet
            .store(!notify, std::sync::atomic::Ordering::Relaxed);
        let mut out = BatchOutcome::default();
        let result = (|| {
            for message in items {
                match self.ingest_unfetched(tx, mailbox, message, at)? {
                    Delivered::Applied(a) => out.count(&a),
                    Delivered::Quarantined(..) => out.quarantined += 1,
                }
            }
            self.prune_costs(tx, at)
        })();
        self.quiet
            .store(false, std::sync::atomic::Ordering::Relaxed);
        result.map(|()| out)
    }

    /// `postdesk quarantine retry`: apply the raw bytes again, `prepared` (parsed and
    /// classified outside the writer, see `Desk::retry_quarantined`). A panic is caught as
    /// in ingest: the message stays held and the writer goes on.
    pub fn retry_quarantined(
        &self,
        tx: &mut Tx<'_>,
        id: QuarantineId,
        prepared: &Result<Prepared, String>,
    ) -> Result<RetryOutcome, StoreError> {
        let Some(q) = tx.quarantined(id)? else {
            return Err(StoreError::NotFound(format!(
                "quarantined message #{}",
                id.get()
            )));
        };
        if q.released {
            return Ok(RetryOutcome::AlreadyReleased);
        }
        if q.truncated {
            // `Desk::retry_quarantined` answers this before preparing; a row cannot
            // become truncated later.
            return Ok(RetryOutcome::StillUnusable(
                "only the start of this message is held".to_owned(),
            ));
        }
        let now = self.clock.now();
        let applied = tx.savepoint(|tx| {
            catch_unwind(AssertUnwindSafe(|| {
                self.apply_one(tx, q.mailbox.as_ref(), prepared, &q.raw, now)
            }))
            .unwrap_or_else(|_| {
                Err(ApplyError::Unusable(
                    "internal error: processing panicked on this message".to_owned(),
                ))
            })
        })?;
        match applied {
            Ok((row, applied)) => {
                tx.release_quarantined(id, row, now)?;
                Ok(RetryOutcome::Released(applied))
            }
            Err(ApplyError::Unusable(r)) => Ok(RetryOutcome::StillUnusable(r)),
            Err(ApplyError::Store(e)) => Err(e),
        }
    }

    fn apply_one(
        &self,
        tx: &mut Tx<'_>,
        mailbox: Option<&MailboxName>,
        prepared: &Result<Prepared, String>,
        raw: &[u8],
        at: DateTime<Utc>,
    ) -> Result<(Option<MessageRowId>, Applied), ApplyError> {
        let p = prepared
            .as_ref()
            .map_err(|r| ApplyError::Unusable(r.clone()))?;
        if let Some((row, _)) = tx.message_by_id(&p.parsed.message_id)? {
            return Ok((Some(row), Applied::Duplicate));
        }
        let row = tx.insert_incoming(&NewIncoming {
            mailbox,
            parsed: &p.parsed,
            class: p.class.as_str(),
            classified_by: &p.evidence,
            raw,
            at,
        })?;
        let applied = if p.class.is_automatic() {
            self.apply_automatic(tx, row, p, at)?
        } else {
            self.apply_human(tx, mailbox, row, p, raw, at)?
        };
        Ok((Some(row), applied))
    }

    /// Automatic mail joins a ticket only through one of our signed Message-IDs (or, for
    /// a bounce, the returned message's id); it never reopens, notifies or opens a ticket.
    fn apply_automatic(
        &self,
        tx: &mut Tx<'_>,
        row: MessageRowId,
        p: &Prepared,
        at: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let mut facts = Facts { tx, agents: &[] };
        let mut ticket = match thread::place(&p.parsed, &self.key, &self.tags, &mut facts)? {
            Placement::Existing { ticket, .. } => Some(ticket),
            Placement::New { .. } => None,
        };
        if let Class::Bounce(b) = &p.class {
            if let Some(orig) = b
                .report
                .as_ref()
                .and_then(|r| r.original_message_id.as_ref())
            {
                ticket = ticket.or_else(|| self.key.verify(orig).map(|(t, _)| t));
            }
        }
        let ticket = match ticket {
            Some(t) if tx.ticket_row(t)?.is_some() => Some(t),
            _ => None,
        };
        if let Class::Bounce(b) = &p.class {
            self.record_bounce(tx, b, ticket, at)?;
        }
        if let Some(t) = ticket {
            tx.set_message_ticket(row, t)?;
            tx.touch_ticket(t, at)?;
            let detail = format!("{}: {}", p.class.as_str(), p.class.reason());
            tx.append_event(&NewEvent {
                ticket: Some(t),
                at,
                actor: SYSTEM,
                kind: EventKind::MessageAutomatic,
                old: None,
                new: Some(p.class.as_str()),
                detail: Some(&detail),
            })?;
        }
        Ok(Applied::Automatic { ticket })
    }

    /// A hard bounce marks a failed recipient undeliverable only when the bounce returns
    /// one of our signed Message-IDs and names a recipient of that message: anyone can
    /// write a DSN, so an unproven one is recorded (`bounce.unverified`) and marks
    /// nothing. Every bounce is an event on the ticket whose mail bounced.
    fn record_bounce(
        &self,
        tx: &mut Tx<'_>,
        b: &crate::mail::classify::Bounce,
        ticket: Option<TicketId>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let Some(report) = &b.report else {
            return Ok(());
        };
        let ours = match report
            .original_message_id
            .as_ref()
            .and_then(|id| self.key.verify(id))
        {
            Some((_, message)) => Some(tx.recipients_of(message)?),
            None => None,
        };
        let hard = b.is_hard();
        for rcpt in &report.recipients {
            let proven = ours
                .as_ref()
                .is_some_and(|r| r.contains(&rcpt.to_ascii_lowercase()));
            if hard && proven {
                tx.mark_undeliverable(
                    rcpt,
                    at,
                    report.status.as_deref(),
                    report.diagnostic.as_deref(),
                    ticket,
                )?;
            }
            if ticket.is_none() {
                continue;
            }
            let status = report.status.as_deref().unwrap_or("unknown");
            let diagnostic = report
                .diagnostic
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let (kind, detail) = if proven {
                let marked = if hard {
                    "; address marked undeliverable"
                } else {
                    ""
                };
                let what = match b.kind {
                    BounceKind::Permanent => "hard bounce",
                    BounceKind::Transient => "soft bounce (delayed or transient; nothing marked)",
                    BounceKind::Success => "delivery notice (nothing failed)",
                };
                (
                    EventKind::Bounce,
                    format!("{what}, status {status}{diagnostic}{marked}"),
                )
            } else {
                let why = match &ours {
                    None => "it does not return one of our signed Message-IDs",
                    Some(_) => "the returned message was not sent to this address",
                };
                (
                    EventKind::BounceUnverified,
                    format!("bounce status {status}{diagnostic} not acted on: {why}"),
                )
            };
            tx.append_event(&NewEvent {
                ticket,
                at,
                actor: SYSTEM,
                kind,
                old: None,
                new: Some(rcpt),
                detail: Some(&detail),
            })?;
        }
        Ok(())
    }

    /// Checks the loop rules for one automatic mail to `to` that must go now or not at
    /// all (the refusal of a forged command): when the breaker's window is full it is held.
    /// Counts it when it may go, records an event on the ticket when it is held.
    fn gate_automatic(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        to: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .admit_automatic(tx, Some(ticket), to, kind, at, Breaker::HoldWhenFull)?
            .is_some())
    }

    /// Checks the loop rules for one automatic mail to `to` (acknowledgements, status
    /// mail, surveys): `Some(when)` it may be sent, now or, past the global breaker, at
    /// the start of the first later window with room (an event says until when); `None`
    /// it is held for good (an event says why).
    pub(super) fn schedule_automatic(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        to: &str,
        kind: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.admit_automatic(tx, Some(ticket), to, kind, at, Breaker::Throttle)
    }

    /// [`Engine::schedule_automatic`] of a mail about no ticket (a self-service status
    /// list): the same loop rules; a held mail is an event without a ticket.
    pub(super) fn schedule_ticketless(
        &self,
        tx: &mut Tx<'_>,
        to: &str,
        kind: crate::model::OutboxKind,
        at: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.admit_automatic(tx, None, to, kind.as_str(), at, Breaker::Throttle)
    }

    /// [`automatic_gate`] on the store's counts; counts the mail when it may go (against
    /// its address now, against the domain's and the breaker's window it is due in).
    fn admit_automatic(
        &self,
        tx: &mut Tx<'_>,
        ticket: Option<TicketId>,
        to: &str,
        kind: &str,
        at: DateTime<Utc>,
        breaker: Breaker,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let lp = &self.loop_protection;
        let now = minute(at);
        let undeliverable = tx
            .undeliverable(to)?
            .map(|(_, status)| status.unwrap_or_else(|| "5.0.0".to_owned()));
        let recipient_scope = format!("to:{}", rate_key(to, lp.per_recipient_key));
        let domain_scope = format!("domain:{}", rate_domain(to));
        let since = now - window_minutes(lp.per_recipient_window) + 1;
        let slot = window_minutes(lp.global_window);
        let from = now.div_euclid(slot) * slot;
        let horizon = at.checked_add_signed(breaker_horizon(lp));
        let until = minute(horizon.unwrap_or(DateTime::<Utc>::MAX_UTC)) + 1;
        let windows = tx.automatic_windows(GLOBAL_SCOPE, slot, from, until)?;
        let domain_slot = window_minutes(lp.per_recipient_window);
        let domain_from = now.div_euclid(domain_slot) * domain_slot;
        let domain = tx.automatic_windows(&domain_scope, domain_slot, domain_from, until)?;
        let recent = Recent {
            recipient: tx.automatic_count(&recipient_scope, since)?,
            domain: &domain,
            breaker: &windows,
        };
        let gate = match (
            automatic_gate(lp, &recent, undeliverable.as_deref(), at),
            breaker,
        ) {
            (Gate::Delay(_, why), Breaker::HoldWhenFull) => Gate::Hold(why),
            (gate, _) => gate,
        };
        let event = |tx: &mut Tx<'_>, event: EventKind, detail: &str| {
            tx.append_event(&NewEvent {
                ticket,
                at,
                actor: SYSTEM,
                kind: event,
                old: None,
                new: Some(kind),
                detail: Some(detail),
            })
        };
        let due = match gate {
            Gate::Send => at,
            Gate::Delay(due, why) => {
                let detail = format!(
                    "to {to}: {why}; queued for {}",
                    crate::model::stamp::text(due)
                );
                event(tx, EventKind::NotificationDelayed, &detail)?;
                due
            }
            Gate::Hold(reason) => {
                event(
                    tx,
                    EventKind::NotificationHeld,
                    &format!("to {to}: {reason}"),
                )?;
                return Ok(None);
            }
        };
        tx.count_automatic(&recipient_scope, now)?;
        tx.count_automatic(&domain_scope, minute(due))?;
        tx.count_automatic(GLOBAL_SCOPE, minute(due))?;
        Ok(Some(due))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_human(
        &self,
        tx: &mut Tx<'_>,
        mailbox: Option<&MailboxName>,
        row: MessageRowId,
        p: &Prepared,
        raw: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let parsed = &p.parsed;
        // Only a proven reply clears a hard bounce: one that carries one of our signed
        // Message-IDs, or that our trusted receiving server passed for the sender's
        // domain. A forged `From:` does not.
        let wrote_again = match &parsed.from {
            Some(from) if self.proven_sender(tx, parsed, &from.address)? => {
                tx.clear_undeliverable(&from.address)?
            }
            _ => false,
        };
        let forged = match self.survey_answer(tx, row, parsed, at)? {
            survey::SurveyAnswer::Handled(applied) => return Ok(applied),
            survey::SurveyAnswer::Forged(forged) => forged,
            survey::SurveyAnswer::None => Vec::new(),
        };
        if let Some(applied) = self.status_request(tx, mailbox, parsed, at)? {
            return Ok(applied);
        }
        // A survey address with a wrong mac is no way in: the mail is placed as any other.
        let applied = self.place_human(tx, mailbox, row, p, raw, at)?;
        if let (Some(trust), Some(ticket)) = (self.trust(), applied.ticket()) {
            let (_, forgeries) = crate::agent::auth::trusted(&parsed.auth_results, &trust);
            for f in forgeries {
                tx.append_event(&NewEvent {
                    ticket: Some(ticket),
                    at,
                    actor: actor(parsed),
                    kind: EventKind::AuthForged,
                    old: None,
                    new: Some(parsed.message_id.as_str()),
                    detail: Some(&f),
                })?;
            }
        }
        self.record_forged_survey(tx, applied.ticket(), &forged, parsed, at)?;
        if let (true, Some(ticket)) = (wrote_again, applied.ticket()) {
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: actor(parsed),
                kind: EventKind::AddressDeliverable,
                old: None,
                new: parsed.from.as_ref().map(|f| f.address.as_str()),
                detail: Some("the address wrote again after a hard bounce"),
            })?;
        }
        Ok(applied)
    }

    #[allow(clippy::too_many_arguments)]
    fn place_human(
        &self,
        tx: &mut Tx<'_>,
        mailbox: Option<&MailboxName>,
        row: MessageRowId,
        p: &Prepared,
        raw: &[u8],
        at: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let parsed = &p.parsed;
        let mut placement = thread::place(
            parsed,
            &self.key,
            &self.tags,
            &mut Facts {
                tx,
                agents: &self.agents,
            },
        )?;
        let agent = parsed.from.as_ref().and_then(|f| {
            self.agents
                .iter()
                .find(|a| a.addresses.contains(&f.address))
        });
        if let (Placement::New { .. }, Some(agent)) = (&placement, agent) {
            // A reply to a relay whose subject and references were lost: the agent's own
            // valid reply token names the ticket.
            for token in self.reply_tokens(parsed) {
                if token.agent == agent.name
                    && token.verify(&self.key)
                    && tx.ticket_row(token.ticket)?.is_some()
                {
                    placement = Placement::Existing {
                        ticket: token.ticket,
                        via: thread::Via::ReplyToken,
                    };
                    break;
                }
            }
        }
        if agent.is_none() {
            placement = self.distrust_failed_domain(tx, parsed, placement, at)?;
        }
        match placement {
            Placement::Existing { ticket, via } => {
                let ticket = merged_target(tx, ticket)?;
                if let Some(agent) = agent {
                    return self.apply_agent_mail(tx, row, parsed, agent, ticket, at);
                }
                let t = tx
                    .ticket_row(ticket)?
                    .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
                if self.solved_by_customer(tx, &t, parsed, at)? {
                    tx.set_message_ticket(row, ticket)?;
                    tx.append_event(&NewEvent {
                        ticket: Some(ticket),
                        at,
                        actor: actor(parsed),
                        kind: EventKind::MessageIn,
                        old: None,
                        new: Some(parsed.message_id.as_str()),
                        detail: Some(via.as_str()),
                    })?;
                    return Ok(Applied::FollowUp { ticket });
                }
                match on_customer_reply(t.status, t.closed_at, at, self.reopen_window) {
                    Reopen::NewLinkedTicket => {
                        let reason = format!(
                            "reply to #{ticket}, which is {} past the reopen window",
                            t.status
                        );
                        return self.open_ticket(
                            tx,
                            mailbox,
                            row,
                            p,
                            raw,
                            Some((ticket, reason, false)),
                            at,
                        );
                    }
                    Reopen::To(status) => {
                        self.change_status(
                            tx,
                            ticket,
                            status,
                            actor(parsed),
                            Cause::CustomerReply,
                            at,
                        )?;
                    }
                    Reopen::Unchanged => tx.touch_ticket(ticket, at)?,
                }
                tx.set_message_ticket(row, ticket)?;
                tx.append_event(&NewEvent {
                    ticket: Some(ticket),
                    at,
                    actor: actor(parsed),
                    kind: EventKind::MessageIn,
                    old: None,
                    new: Some(parsed.message_id.as_str()),
                    detail: Some(via.as_str()),
                })?;
                self.add_people(tx, ticket, parsed, at)?;
                let reason = format!("{} is not an agent", actor(parsed));
                self.refuse_commands(tx, ticket, parsed, &reason, at)?;
                let t = tx
                    .ticket_row(ticket)?
                    .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
                self.sla_on_customer_message(tx, &t, at)?;
                self.relay_to_agents(tx, &t, parsed, raw, at)?;
                Ok(Applied::FollowUp { ticket })
            }
            Placement::New { linked_to } => {
                let linked = linked_to.map(|(t, reason)| (t, reason, true));
                self.open_ticket(tx, mailbox, row, p, raw, linked, at)
            }
        }
    }

    /// With a trusted `Authentication-Results` showing a DMARC (or unrescued DKIM) fail
    /// for the sender's domain, the mail is not that sender's: it may not join a ticket
    /// by the tag or the participant rule, and gets a new ticket, linked and flagged. One
    /// of our signed Message-IDs is proof enough to join, but the ticket is flagged.
    fn distrust_failed_domain(
        &self,
        tx: &mut Tx<'_>,
        parsed: &Parsed,
        placement: Placement,
        at: DateTime<Utc>,
    ) -> Result<Placement, StoreError> {
        let (Some(trust), Some(from)) = (self.trust(), parsed.from.as_ref()) else {
            return Ok(placement);
        };
        let Some(why) =
            crate::agent::auth::domain_failed(&parsed.auth_results, &trust, &from.address)
        else {
            return Ok(placement);
        };
        Ok(match placement {
            Placement::Existing {
                ticket,
                via: thread::Via::SignedReference,
            } => {
                let reason = format!("a mail signed as {} failed: {why}", from.address);
                tx.flag_ticket(ticket, &reason)?;
                tx.append_event(&NewEvent {
                    ticket: Some(ticket),
                    at,
                    actor: SYSTEM,
                    kind: EventKind::Flagged,
                    old: None,
                    new: Some(parsed.message_id.as_str()),
                    detail: Some(&reason),
                })?;
                placement
            }
            Placement::Existing { ticket, .. } => Placement::New {
                linked_to: Some((
                    ticket,
                    format!("the sender {} is not proven: {why}", from.address),
                )),
            },
            new @ Placement::New { .. } => new,
        })
    }

    /// A new ticket for `row`, with its participants, events and acknowledgement.
    /// `linked`: (ticket, reason, flag it for a human).
    #[allow(clippy::too_many_arguments)]
    fn open_ticket(
        &self,
        tx: &mut Tx<'_>,
        mailbox: Option<&MailboxName>,
        row: MessageRowId,
        p: &Prepared,
        raw: &[u8],
        linked: Option<(TicketId, String, bool)>,
        at: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let parsed = &p.parsed;
        let mb = mailbox
            .and_then(|m| self.mailboxes.get(m.as_str()))
            .or_else(|| self.mailboxes.values().next())
            .expect("config has at least one mailbox");
        let writes_chinese = parse::has_cjk(&parsed.subject) || parse::has_cjk(&parsed.text);
        let mut route = self.route(parsed, mailbox);
        let triage = self.triage_route(&mut route, parsed, p.triage.as_ref(), at);
        let language = if writes_chinese {
            Language::ZhCn
        } else {
            self.queue(&route.queue).language
        };
        let subject = crate::mail::subject::clean_subject(&parsed.subject, &self.tags);
        let flagged = linked.as_ref().filter(|l| l.2).map(|l| l.1.as_str());
        let ticket = tx.create_ticket(&NewTicket {
            tag: &mb.tag,
            subject: &subject,
            status: Status::New,
            priority: route.priority,
            queue: &route.queue,
            mailbox: mailbox.map_or("", |m| m.as_str()),
            requester: parsed.from.as_ref(),
            language,
            flagged,
            linked_to: linked.as_ref().map(|l| l.0),
            at,
        })?;
        tx.set_message_ticket(row, ticket)?;
        if let Some(from) = &parsed.from {
            tx.add_participant(ticket, &from.address, "requester")?;
        }
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor: actor(parsed),
            kind: EventKind::TicketCreated,
            old: None,
            new: Some(Status::New.as_str()),
            detail: Some(&format!(
                "queue {}, priority {}",
                route.queue, route.priority
            )),
        })?;
        if let Some((other, reason, _)) = &linked {
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: SYSTEM,
                kind: EventKind::TicketLinked,
                old: None,
                new: Some(&other.to_string()),
                detail: Some(reason),
            })?;
        }
        self.add_people(tx, ticket, parsed, at)?;
        self.refuse_commands(
            tx,
            ticket,
            parsed,
            "commands act only in a reply to the ticket, never on the mail that opens it",
            at,
        )?;
        self.apply_route(tx, ticket, &route, at)?;
        if let Some(view) = &triage {
            self.record_triage(tx, ticket, view, at)?;
        }
        let t = tx
            .ticket_row(ticket)?
            .ok_or_else(|| StoreError::NotFound(format!("ticket #{ticket}")))?;
        self.sla_on_open(tx, &t, at)?;
        // A sender our trusted MX says is forged (DMARC fail) gets no acknowledgement: it
        // would go to the real owner of the address (backscatter).
        let forged_sender = match (self.trust(), parsed.from.as_ref()) {
            (Some(trust), Some(from)) => {
                crate::agent::auth::domain_failed(&parsed.auth_results, &trust, &from.address)
            }
            _ => None,
        };
        if let (true, Some(why)) = (route.acknowledge, &forged_sender) {
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: SYSTEM,
                kind: EventKind::AcknowledgementSkipped,
                old: None,
                new: None,
                detail: Some(&format!(
                    "the sender is not proven ({why}): no mail to the address"
                )),
            })?;
        }
        // Knowledge base (issue 16): the request's words are kept for the similar-tickets
        // index; articles that match it go into the relay and, where the queue says so,
        // the acknowledgement.
        let found = self.record_request(tx, &t, p.hints.as_ref())?;
        let listed: &[crate::kb::Suggestion] = if self.queue(&t.queue).kb_in_acknowledgement {
            &found.articles
        } else {
            &[]
        };
        let acknowledged = route.acknowledge
            && forged_sender.is_none()
            && self.queue_acknowledgement(tx, &t, parsed, listed, at)?;
        if acknowledged && !listed.is_empty() {
            self.record_suggested(tx, ticket, listed, at)?;
        }
        self.relay_with(tx, &t, parsed, raw, &found, at)?;
        Ok(Applied::NewTicket {
            ticket,
            acknowledged,
        })
    }
}

impl Applied {
    pub fn ticket(&self) -> Option<TicketId> {
        match self {
            Applied::NewTicket { ticket, .. } | Applied::FollowUp { ticket } => Some(*ticket),
            Applied::Automatic { ticket } => *ticket,
            Applied::Duplicate | Applied::SelfService => None,
        }
    }

    /// A few words for `postdesk status`: "new ticket 12", "follow-up 12", "automatic".
    pub fn describe(&self) -> String {
        match self {
            Applied::NewTicket { ticket, .. } => format!("new ticket {}", ticket.get()),
            Applied::FollowUp { ticket } => format!("follow-up {}", ticket.get()),
            Applied::Automatic { ticket: Some(t) } => format!("automatic, ticket {}", t.get()),
            Applied::Automatic { ticket: None } => "automatic".to_owned(),
            Applied::Duplicate => "duplicate".to_owned(),
            Applied::SelfService => "self-service status request".to_owned(),
        }
    }
}

impl BatchOutcome {
    /// Adds another batch's counts to these.
    pub fn add(&mut self, other: &BatchOutcome) {
        self.recorded += other.recorded;
        self.duplicates += other.duplicates;
        self.quarantined += other.quarantined;
        self.new_tickets += other.new_tickets;
        self.automatic += other.automatic;
        self.outbox += other.outbox;
    }

    fn count(&mut self, applied: &Applied) {
        match applied {
            Applied::Duplicate => self.duplicates += 1,
            Applied::NewTicket { acknowledged, .. } => {
                self.recorded += 1;
                self.new_tickets += 1;
                self.outbox += usize::from(*acknowledged);
            }
            Applied::FollowUp { .. } | Applied::SelfService => self.recorded += 1,
            Applied::Automatic { .. } => {
                self.recorded += 1;
                self.automatic += 1;
            }
        }
    }
}

impl Engine {
    /// Command lines that may not act (from someone who is not an agent, or on the mail
    /// that opens a ticket) change nothing; each is recorded as refused with `reason`
    /// (DESIGN.md invariant 5), within the limits ([`Engine::record_refused`]).
    fn refuse_commands(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        parsed: &Parsed,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let split = crate::agent::commands::split_commands(&parsed.text, &self.limits);
        let lines: Vec<String> = split
            .commands
            .iter()
            .map(crate::agent::commands::Command::describe)
            .chain(split.errors.iter().map(|e| e.line.clone()))
            .collect();
        self.record_refused(
            tx,
            ticket,
            actor(parsed),
            lines.iter().map(|line| (line.as_str(), reason)),
            &split.unread,
            at,
        )
    }

    /// The refused command lines of one message (line, why): one `command.refused` event
    /// each, up to `limits.max_events_per_message`; then one `command.capped` event for
    /// the lines left out and what the limits left unread (`unread`), if any.
    pub(super) fn record_refused<'r>(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        actor: &str,
        refused: impl IntoIterator<Item = (&'r str, &'r str)>,
        unread: &crate::agent::commands::Unread,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let max = self.limits.max_events_per_message;
        let mut left_out = 0;
        for (n, (line, reason)) in refused.into_iter().enumerate() {
            if n >= max {
                left_out += 1;
                continue;
            }
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor,
                kind: EventKind::CommandRefused,
                old: None,
                new: Some(line),
                detail: Some(reason),
            })?;
        }
        let mut parts = Vec::new();
        if left_out > 0 {
            parts.push(format!(
                "{left_out} more refused command line{} not recorded one by one (at most {max} a mail)",
                if left_out == 1 { " was" } else { "s were" }
            ));
        }
        parts.extend(unread.describe());
        if parts.is_empty() {
            return Ok(());
        }
        tx.append_event(&NewEvent {
            ticket: Some(ticket),
            at,
            actor,
            kind: EventKind::CommandCapped,
            old: None,
            new: None,
            detail: Some(&parts.join("; ")),
        })
    }
}

/// The store's answers for the thread stage, inside the ingest transaction (so that a
/// reply in the same batch as its first message finds the new ticket), with every
/// configured agent counted as a participant of every ticket (invariant 4: requester,
/// Cc, agent). Automatic mail is placed with no agents.
struct Facts<'t, 'c> {
    tx: &'t mut Tx<'c>,
    agents: &'t [Agent],
}

impl thread::Lookup for Facts<'_, '_> {
    type Error = StoreError;
    fn ticket(&mut self, id: TicketId) -> Result<Option<thread::TicketFacts>, StoreError> {
        Ok(self.tx.ticket_row(id)?.map(|t| thread::TicketFacts {
            id,
            requester: t.requester,
        }))
    }
    fn ticket_of_message(
        &mut self,
        id: &crate::model::MessageId,
    ) -> Result<Option<TicketId>, StoreError> {
        Ok(self.tx.message_by_id(id)?.and_then(|(_, t)| t))
    }
    fn is_participant(&mut self, ticket: TicketId, address: &str) -> Result<bool, StoreError> {
        if self
            .agents
            .iter()
            .any(|a| a.addresses.iter().any(|x| x == address))
        {
            return Ok(true);
        }
        self.tx.participant(ticket, address)
    }
}

/// The ticket a merged ticket now lives in (followed a few steps at most).
fn merged_target(tx: &mut Tx<'_>, mut ticket: TicketId) -> Result<TicketId, StoreError> {
    for _ in 0..5 {
        match tx.ticket_row(ticket)?.and_then(|t| t.merged_into) {
            Some(next) => ticket = next,
            None => break,
        }
    }
    Ok(ticket)
}

fn actor(parsed: &Parsed) -> &str {
    parsed
        .from
        .as_ref()
        .map_or("(unknown sender)", |f| f.address.as_str())
}

fn unusable_reason(u: &Unusable) -> String {
    format!("unusable message: {u}")
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_gate_rules() {
        let lp = LoopProtection {
            global: 1000,
            per_domain: 100,
            ..LoopProtection::default()
        };
        // 12:03 is in the breaker window 12:00-12:10.
        let at = |h: u32, m: u32| {
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 25, h, m, 0).unwrap()
        };
        let now = at(12, 3);
        let w = minute(now).div_euclid(10);
        let full = 1000;
        // The domain's windows are an hour long: 12:00-13:00 is window `d`.
        let d = minute(now).div_euclid(60);
        let gate = |lp: &LoopProtection,
                    recipient,
                    domain: &[(i64, u64)],
                    breaker: &[(i64, u64)],
                    bounce| {
            let recent = Recent {
                recipient,
                domain,
                breaker,
            };
            automatic_gate(lp, &recent, bounce, now)
        };
        let held = |g: Gate, text: &str| match g {
            Gate::Hold(reason) => assert!(reason.contains(text), "{reason}"),
            other => panic!("expected held ({text}), got {other:?}"),
        };
        let delayed = |g: Gate, when, text: &str| match g {
            Gate::Delay(due, why) => {
                assert_eq!(due, when, "{why}");
                assert!(why.contains(text), "{why}");
            }
            other => panic!("expected a delay ({text}), got {other:?}"),
        };
        let breaker = "global breaker: 1000 automatic mails per 10m";
        let domain = "rate limit: 100 automatic mails to this domain per 1h";
        assert_eq!(gate(&lp, 0, &[], &[], None), Gate::Send);
        assert_eq!(gate(&lp, 9, &[(d, 99)], &[(w, 999)], None), Gate::Send);
        assert_eq!(
            gate(&lp, 0, &[(d + 1, 100)], &[(w + 1, full)], None),
            Gate::Send
        );
        let address = "rate limit: 10 automatic mails to this address in 1h";
        held(gate(&lp, 10, &[], &[], None), address);
        held(gate(&lp, 0, &[], &[], Some("5.1.1")), "hard bounce 5.1.1");
        // The breaker delays to the first later window with room; it does not hold.
        delayed(gate(&lp, 0, &[], &[(w, full)], None), at(12, 10), breaker);
        let two_full = [(w, full), (w + 1, full), (w + 2, 3)];
        delayed(gate(&lp, 0, &[], &two_full, None), at(12, 20), breaker);
        let three_full = [(w, full), (w + 1, full), (w + 2, full)];
        delayed(gate(&lp, 0, &[], &three_full, None), at(12, 30), breaker);
        let gap = [(w, full), (w + 1, full), (w + 3, full)];
        delayed(gate(&lp, 0, &[], &gap, None), at(12, 20), breaker);
        // A full domain delays to its next window (13:00), and then the breaker's window
        // there must have room too.
        delayed(gate(&lp, 0, &[(d, 100)], &[], None), at(13, 0), domain);
        let at_one = [(w, full), (minute(at(13, 0)) / 10, full)];
        delayed(
            gate(&lp, 0, &[(d, 100)], &at_one, None),
            at(13, 10),
            breaker,
        );
        // A loop is held even when the breaker would only delay.
        held(gate(&lp, 10, &[], &[(w, full)], None), address);
        // No room within ack_max_age (24 h, 144 windows): held.
        let day: Vec<(i64, u64)> = (w..w + 145).map(|n| (n, full)).collect();
        let no_room = "global breaker: 1000 automatic mails per 10m, no room within 1d";
        held(gate(&lp, 0, &[], &day, None), no_room);
        assert!(matches!(
            gate(&lp, 0, &[], &day[..144], None),
            Gate::Delay(..)
        ));
        let domain_day: Vec<(i64, u64)> = (d..d + 25).map(|n| (n, 100)).collect();
        held(
            gate(&lp, 0, &domain_day, &[], None),
            "to this domain per 1h, no room within 1d",
        );
        let per_domain = LoopProtection {
            per_recipient_key: RateKey::Domain,
            ..lp.clone()
        };
        held(
            gate(&per_domain, 10, &[], &[], None),
            "rate limit: 10 automatic mails to this domain in 1h",
        );
        let off = LoopProtection { global: 0, ..lp };
        held(gate(&off, 0, &[], &[], None), "global breaker: 0");
    }

    #[test]
    fn rate_keys_ignore_case_and_plus_detail() {
        for (address, key, want) in [
            (
                "Victim+1@Example.COM",
                RateKey::Address,
                "victim@example.com",
            ),
            ("victim@example.com", RateKey::Address, "victim@example.com"),
            ("victim+a+b@x.test", RateKey::Address, "victim@x.test"),
            ("+tag@x.test", RateKey::Address, "@x.test"),
            ("Victim+1@Example.COM", RateKey::Domain, "example.com"),
            ("no-at-sign", RateKey::Address, "no-at-sign"),
        ] {
            assert_eq!(rate_key(address, key), want, "{address} {key:?}");
        }
        assert_eq!(rate_domain("A+b@Sub.Example.COM"), "sub.example.com");
    }

    use crate::store::TicketFilter;
    use testing::{ticket_of, Bench, ALICE, BOB};

    const CAROL: &str = "carol@customer.test";

    fn tickets(bench: &Bench) -> Vec<crate::store::TicketSummary> {
        bench
            .reader()
            .tickets(&TicketFilter::default())
            .expect("read")
    }

    fn close(bench: &mut Bench, id: TicketId) {
        let at = bench.now();
        bench.write(|e, tx| {
            e.set_status(tx, id, Status::Closed, "admin:root", Cause::Admin, at)
                .map(|_| ())
        });
        assert_eq!(bench.status(id), Status::Closed);
    }

    #[test]
    fn new_ticket_gets_one_acknowledgement_to_the_requester() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        assert_eq!(tickets(&bench).len(), 1);
        assert_eq!(bench.status(id), Status::New);
        assert_eq!(bench.count(id, "ticket.created"), 1);
        assert_eq!(
            bench.outbox_of("acknowledgement"),
            vec![vec![CAROL.to_owned()]]
        );
        assert_eq!(
            bench.outbox_of("agent-notification"),
            vec![vec![ALICE.to_owned()], vec![BOB.to_owned()]],
            "the queue's agents see the message, each in a mail of their own"
        );
        assert_eq!(
            bench.outbox().len(),
            3,
            "nothing else: {:?}",
            bench.outbox()
        );
        let ack = bench
            .messages(id)
            .into_iter()
            .find(|m| m.direction == "out" && m.audience == "customer")
            .expect("the acknowledgement is stored");
        assert!(
            ack.subject.contains(&format!("[ACME #{id}]")),
            "{}",
            ack.subject
        );
        assert!(
            ack.from
                .as_deref()
                .is_some_and(|f| f.contains(testing::SUPPORT)),
            "{:?}",
            ack.from
        );
    }

    /// Invariant 1: the same Message-ID twice is stored and acted on once.
    #[test]
    fn same_message_id_twice_is_a_duplicate() {
        let mut bench = Bench::new("", "");
        let raw = format!(
            "From: {CAROL}\nTo: {}\nSubject: Printer\nMessage-ID: <once@customer.test>\n\nIt is broken\n",
            testing::SUPPORT
        );
        let first = bench.deliver(&raw);
        assert!(
            matches!(first, Delivered::Applied(Applied::NewTicket { .. })),
            "{first:?}"
        );
        let outbox = bench.outbox();
        assert_eq!(bench.deliver(&raw), Delivered::Applied(Applied::Duplicate));
        assert_eq!(tickets(&bench).len(), 1);
        assert_eq!(bench.outbox(), outbox, "no second acknowledgement");
        assert_eq!(
            bench
                .reader()
                .count_messages_with_id("once@customer.test")
                .expect("read"),
            1
        );
    }

    /// Invariant 3: automatic mail opens no ticket and gets nothing back.
    #[test]
    fn automatic_mail_opens_no_ticket_and_gets_nothing() {
        let cases = [
            (
                "auto-reply",
                "From: carol@customer.test\nAuto-Submitted: auto-replied\n",
            ),
            (
                "x-autoreply",
                "From: carol@customer.test\nX-Autoreply: yes\n",
            ),
            ("bulk", "From: news@shop.test\nPrecedence: bulk\n"),
            (
                "list",
                "From: someone@lists.test\nList-Id: <users.lists.test>\n",
            ),
            ("mailer-daemon", "From: MAILER-DAEMON@mx.customer.test\n"),
            ("own loop", "From: support@example.test\n"),
            (
                "null sender",
                "Return-Path: <>\nFrom: robot@customer.test\n",
            ),
        ];
        for (name, head) in cases {
            let mut bench = Bench::new("", "");
            let raw = format!(
                "{head}To: {}\nSubject: Hello\nMessage-ID: <auto.{name}@customer.test>\n\nA message.\n",
                testing::SUPPORT
            );
            let d = bench.deliver(&raw);
            assert_eq!(
                d,
                Delivered::Applied(Applied::Automatic { ticket: None }),
                "{name}"
            );
            assert!(tickets(&bench).is_empty(), "{name}: no ticket");
            assert!(bench.outbox().is_empty(), "{name}: nothing sent");
        }
    }

    /// Invariant 4: a stranger who copies the tag gets a new, linked, flagged ticket;
    /// the requester's tagged reply joins.
    #[test]
    fn stranger_copying_the_tag_gets_a_linked_flagged_ticket() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let subject = format!("Re: [ACME #{id}] Printer");
        let stranger = bench.send(
            "mallory@evil.test",
            &subject,
            "",
            "Me too, tell me everything",
        );
        let other = ticket_of(&stranger);
        assert!(
            matches!(stranger, Delivered::Applied(Applied::NewTicket { .. })),
            "{stranger:?}"
        );
        assert_ne!(other, id);
        let t = bench.ticket(other);
        assert_eq!(t.linked_to, Some(id.get()));
        assert!(t.flagged.is_some(), "a human should look at it");
        assert_eq!(bench.count(other, "ticket.linked"), 1);
        assert_eq!(bench.count(id, "message.in"), 0, "nothing joined #{id}");

        let reply = bench.send(CAROL, &subject, "", "Still broken");
        assert_eq!(reply, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.count(id, "message.in"), 1);
        assert_eq!(tickets(&bench).len(), 2);
    }

    #[test]
    fn reply_to_closed_ticket_within_the_window_reopens_it() {
        let mut bench = Bench::configured("reopen_window = \"7d\"", "", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        close(&mut bench, id);
        bench.clock.advance(chrono::Duration::days(3));
        let d = bench.reply(CAROL, id, "customer", "", "It broke again");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.status(id), Status::Open);
        assert_eq!(tickets(&bench).len(), 1);
    }

    #[test]
    fn reply_to_closed_ticket_after_the_window_opens_a_linked_ticket() {
        let mut bench = Bench::configured("reopen_window = \"7d\"", "", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        close(&mut bench, id);
        bench.clock.advance(chrono::Duration::days(8));
        let d = bench.reply(CAROL, id, "customer", "", "It broke again");
        let new = ticket_of(&d);
        assert!(
            matches!(d, Delivered::Applied(Applied::NewTicket { .. })),
            "{d:?}"
        );
        assert_ne!(new, id);
        assert_eq!(
            bench.status(id),
            Status::Closed,
            "the old ticket stays closed"
        );
        let t = bench.ticket(new);
        assert_eq!(t.linked_to, Some(id.get()));
        assert_eq!(t.flagged, None, "the requester is no stranger");
        assert_eq!(bench.outbox_of("acknowledgement").len(), 2);
    }

    #[test]
    fn customer_command_lines_are_refused_and_recorded() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let d = bench.reply(CAROL, id, "customer", "", "#status closed\nPlease close it");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.status(id), Status::New, "nothing applied");
        let refused: Vec<_> = bench
            .events(id)
            .into_iter()
            .filter(|e| testing::kind(e) == "command.refused")
            .collect();
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!(refused[0].actor, CAROL);
        assert!(
            refused[0]
                .new
                .as_deref()
                .is_some_and(|n| n.contains("closed")),
            "{refused:?}"
        );
        assert_eq!(bench.outbox_of("status-change").len(), 0);
    }

    /// Invariant 2: a message with nothing usable is kept raw in quarantine.
    #[test]
    fn unusable_message_goes_to_quarantine_with_its_raw_bytes() {
        let mut bench = Bench::new("", "");
        let d = bench.deliver("this is not a mail at all\njust text\n");
        let Delivered::Quarantined(qid, reason) = d else {
            panic!("expected quarantine, got {d:?}");
        };
        assert!(reason.contains("no header fields"), "{reason}");
        let (view, raw) = bench
            .reader()
            .quarantine_raw(qid)
            .expect("read")
            .expect("kept");
        assert_eq!(raw, b"this is not a mail at all\r\njust text\r\n");
        assert_eq!(view.reason, reason);
        assert!(tickets(&bench).is_empty());
        assert!(bench.outbox().is_empty());
    }

    /// A delivery status notification for `message_id`, failing `rcpt` with `status`.
    fn dsn(message_id: &str, rcpt: &str, status: &str) -> String {
        format!(
            "From: MAILER-DAEMON@mx.customer.test\nTo: {}\nSubject: Undelivered Mail Returned to Sender\n\
             Message-ID: <dsn.{status}@mx.customer.test>\nMIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n\
             --B\nContent-Type: text/plain\n\nThe mail could not be delivered.\n\
             --B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.customer.test\n\n\
             Final-Recipient: rfc822; {rcpt}\nAction: failed\nStatus: {status}\n\
             Diagnostic-Code: smtp; 550 {status} user unknown\n\
             --B\nContent-Type: text/rfc822-headers\n\nMessage-ID: {message_id}\nTo: {rcpt}\n--B--\n",
            testing::SUPPORT
        )
    }

    /// Invariant 3: a hard bounce of our mail joins its ticket, marks the address, and
    /// holds automatic mail to it until the address writes again.
    #[test]
    fn hard_bounce_marks_the_address_until_it_writes_again() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let ack = bench.our_message_id(id, "customer");
        let d = bench.deliver(&dsn(&ack, CAROL, "5.1.1"));
        assert_eq!(
            d,
            Delivered::Applied(Applied::Automatic { ticket: Some(id) })
        );
        assert_eq!(bench.count(id, "bounce"), 1);
        assert_eq!(bench.count(id, "message.automatic"), 1);
        let marked = bench.reader().undeliverable().expect("read");
        assert_eq!(marked.len(), 1, "{marked:?}");
        assert_eq!(marked[0].0, CAROL);

        let before = bench.outbox();
        close(&mut bench, id);
        assert_eq!(
            bench.outbox(),
            before,
            "no status mail to a bounced address"
        );
        assert_eq!(bench.count(id, "notification.held"), 1);

        // A fresh mail with Carol's address proves nothing (anyone can write it) and
        // clears no mark; a reply to the mail we sent her does.
        bench.clock.advance(chrono::Duration::minutes(5));
        let again = bench.send(CAROL, "Printer, new address book", "", "I fixed my mailbox");
        let other = ticket_of(&again);
        assert!(
            matches!(
                again,
                Delivered::Applied(Applied::NewTicket {
                    acknowledged: false,
                    ..
                })
            ),
            "{again:?}"
        );
        assert_eq!(bench.count(other, "address.deliverable"), 0);
        assert_eq!(bench.reader().undeliverable().expect("read").len(), 1);
        let d = bench.reply(CAROL, id, "customer", "", "I fixed my mailbox");
        assert_eq!(ticket_of(&d), id);
        assert_eq!(bench.count(id, "address.deliverable"), 1);
        assert!(bench.reader().undeliverable().expect("read").is_empty());
    }

    /// Issue 13: a vendor's text bounce (qmail: no report part, the returned headers in
    /// the text) of our acknowledgement joins its ticket and marks the address; a delayed
    /// DSN is recorded on the ticket and marks nothing; neither reopens or answers.
    #[test]
    fn text_bounces_and_delays_of_our_mail_are_recorded_on_the_ticket() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let ack = bench.our_message_id(id, "customer");
        let before = bench.outbox();
        let delayed = dsn(&ack, CAROL, "4.4.1").replace("Action: failed", "Action: delayed");
        let d = bench.deliver(&delayed);
        assert_eq!(
            d,
            Delivered::Applied(Applied::Automatic { ticket: Some(id) })
        );
        assert!(
            bench.reader().undeliverable().expect("read").is_empty(),
            "a delay marks nothing"
        );
        let qmail = format!(
            "From: MAILER-DAEMON@mail.customer.test\nTo: {}\nSubject: failure notice\n\n\
             Hi. This is the qmail-send program at mail.customer.test.\n\
             I'm afraid I wasn't able to deliver your message to the following addresses.\n\
             This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
             <{CAROL}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n\
             --- Below this line is a copy of the message.\n\n\
             Message-ID: {ack}\nFrom: ACME Support <{}>\nTo: {CAROL}\nSubject: [ACME #{id}] Printer\n",
            testing::SUPPORT,
            testing::SUPPORT
        );
        let d = bench.deliver(&qmail);
        assert_eq!(
            d,
            Delivered::Applied(Applied::Automatic { ticket: Some(id) })
        );
        let marked = bench.reader().undeliverable().expect("read");
        assert_eq!(marked.len(), 1, "{marked:?}");
        assert_eq!(marked[0].0, CAROL);
        assert_eq!(bench.count(id, "message.automatic"), 2);
        assert_eq!(bench.count(id, "bounce"), 2, "one soft, one hard");
        assert_eq!(bench.outbox(), before, "nothing sent");
        assert_eq!(bench.status(id), Status::New, "not reopened or changed");
        // `ticket show` says why each was taken for a bounce.
        let detail = bench.reader().ticket(id).expect("read").expect("ticket");
        let why: Vec<String> = detail
            .messages
            .iter()
            .filter(|m| m.class == "bounce")
            .map(|m| m.classified_by.to_string())
            .collect();
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why[0].contains("dsn-part"), "{}", why[0]);
        assert!(
            why[1].contains("bounce-text") && why[1].contains("sender-mailer-daemon"),
            "{}",
            why[1]
        );
    }

    /// A DSN that does not return one of our signed Message-IDs, or names someone our
    /// mail did not go to, marks nothing (anyone can write a DSN).
    #[test]
    fn forged_bounces_mark_nothing() {
        let mut bench = Bench::new("status_mail = true\nsurveys = false", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let ack = bench.our_message_id(id, "customer");
        for (message_id, rcpt, status) in [
            ("<forged.1@evil.test>", CAROL, "5.1.1"),
            (ack.as_str(), "dave@customer.test", "5.1.2"),
        ] {
            bench.deliver(&dsn(message_id, rcpt, status));
        }
        assert!(bench.reader().undeliverable().expect("read").is_empty());
        assert_eq!(bench.count(id, "bounce"), 0);
        assert_eq!(
            bench.count(id, "bounce.unverified"),
            1,
            "the one with our Message-ID is on the ticket, marking nothing"
        );
        let before = bench.outbox().len();
        close(&mut bench, id);
        assert_eq!(
            bench
                .outbox()
                .into_iter()
                .skip(before)
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            ["status-change"],
            "Carol still gets the status mail"
        );
    }

    /// A customer's reply to a pending ticket reopens it and reaches the agents.
    #[test]
    fn customer_reply_to_pending_reopens() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        bench.reply(ALICE, id, "agents", "", "Which model is it?");
        assert_eq!(bench.status(id), Status::Pending);
        let relays = bench.outbox_of("agent-notification").len();
        let d = bench.reply(CAROL, id, "customer", "", "An LX-200.");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.status(id), Status::Open);
        assert_eq!(
            bench.outbox_of("agent-notification")[relays..],
            [vec![ALICE.to_owned()]],
            "the assignee sees the reply"
        );
    }

    const TRUSTED: &str = "trusted_authserv_id = \"mx.example.test\"";

    /// Invariant 4 with a verifying MX: a trusted DMARC fail for the customer's domain
    /// means the mail is not hers. By the tag it opens a new linked, flagged ticket; with
    /// our signed Message-ID it joins, and her ticket is flagged.
    #[test]
    fn a_trusted_dmarc_fail_keeps_a_mail_off_the_customers_ticket() {
        let mut bench = Bench::configured(TRUSTED, "", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let fail = "Authentication-Results: mx.example.test; spf=fail smtp.mailfrom=customer.test; dmarc=fail (p=reject dis=none) header.from=customer.test\n";
        let d = bench.send(
            CAROL,
            &format!("Re: [ACME #{id}] Printer"),
            fail,
            "#status closed\nClose it",
        );
        let other = ticket_of(&d);
        assert_ne!(other, id);
        let t = bench.ticket(other);
        assert_eq!(t.linked_to, Some(id.get()));
        assert!(
            t.flagged
                .as_deref()
                .is_some_and(|f| f.contains("dmarc=fail")),
            "{:?}",
            t.flagged
        );
        assert_eq!(bench.count(id, "message.in"), 0, "her ticket is untouched");
        assert!(
            matches!(
                d,
                Delivered::Applied(Applied::NewTicket {
                    acknowledged: false,
                    ..
                })
            ),
            "no acknowledgement to a forged address: {d:?}"
        );
        assert_eq!(bench.count(other, "acknowledgement.skipped"), 1);
        assert_eq!(bench.status(id), Status::New);

        let d = bench.reply(CAROL, id, "customer", fail, "Any news?");
        assert_eq!(
            ticket_of(&d),
            id,
            "a signed reference is proof enough to join"
        );
        let t = bench.ticket(id);
        assert!(t.flagged.is_some(), "but the ticket is flagged");
        assert_eq!(bench.count(id, "flagged"), 1);

        // A pass, or no verdict for her domain, changes nothing.
        let pass =
            "Authentication-Results: mx.example.test; dmarc=pass header.from=customer.test\n";
        let d = bench.send(CAROL, &format!("Re: [ACME #{id}] Printer"), pass, "Thanks");
        assert_eq!(ticket_of(&d), id);
    }

    /// A header with our trusted authserv-id below a `Received` line was written by the
    /// sender: ignored, and recorded on the ticket. Lines from `internal_hosts` do not
    /// count as outside.
    #[test]
    fn authentication_results_below_a_received_line_are_forgeries() {
        let pass = "Authentication-Results: mx.example.test; dkim=pass header.d=agents.example.test header.s=s1\n";
        let mut bench = Bench::configured(TRUSTED, "", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let below = format!(
            "Received: from evil.test by mx.example.test; Wed, 25 Nov 2026 12:00:00 +0000\n{pass}"
        );
        let d = bench.send(
            ALICE,
            &format!("[ACME #{id}] Printer"),
            &below,
            "#priority urgent\nHi",
        );
        assert_eq!(ticket_of(&d), id);
        assert_eq!(bench.count(id, "auth.forged"), 1);
        assert_eq!(bench.count(id, "message.unverified"), 1);
        assert_eq!(bench.count(id, "priority"), 0);

        let top = format!("{TRUSTED}\ninternal_hosts = [\"imap.example.test\"]");
        let mut bench = Bench::configured(&top, "", "");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let internal = format!("Received: from mx.example.test by imap.example.test with LMTP; Wed, 25 Nov 2026 12:00:00 +0000\n{pass}");
        bench.send(
            ALICE,
            &format!("[ACME #{id}] Printer"),
            &internal,
            "#priority urgent\nHi",
        );
        assert_eq!(bench.count(id, "auth.forged"), 0);
        assert_eq!(bench.count(id, "message.unverified"), 0);
        assert_eq!(
            bench.count(id, "priority"),
            1,
            "proven by the trusted header"
        );
    }

    /// Command lines in a customer's first message change nothing either.
    #[test]
    fn command_lines_opening_a_ticket_change_nothing() {
        let mut bench = Bench::new("", "");
        let id = bench.new_ticket(
            CAROL,
            "Printer",
            "#priority urgent\n#assign alice\nIt is broken",
        );
        let t = bench.ticket(id);
        assert_eq!(
            (t.priority.as_str(), t.assignee.as_deref()),
            ("normal", None)
        );
        assert_eq!(bench.status(id), Status::New);
        // Each line is recorded as refused, as on a follow-up.
        assert_eq!(
            bench.count(id, "command.refused"),
            2,
            "{:?}",
            bench.events(id)
        );
    }

    /// The kinds of `id`'s events, without the command ones, for "otherwise as usual".
    fn other_kinds(bench: &Bench, id: TicketId) -> Vec<String> {
        bench
            .events(id)
            .iter()
            .map(|e| testing::kind(e).to_owned())
            .filter(|k| !k.starts_with("command."))
            .collect()
    }

    /// Issue 12: a customer's reply of 10,000 command lines is refused within the limits
    /// (`max_events_per_message` events, then one summary) and is otherwise an ordinary
    /// reply.
    #[test]
    fn a_flood_of_command_lines_is_capped() {
        let mut bench = Bench::new("", "");
        let limits = bench.engine.limits().clone();
        let plain = bench.new_ticket(CAROL, "Printer", "It is broken");
        bench.reply(CAROL, plain, "customer", "", "Please help");
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let flood = format!("{}\nPlease help", "#s1\n".repeat(10_000));
        let d = bench.reply(CAROL, id, "customer", "", &flood);
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        let refused = bench.events_of(id, "command.refused");
        assert_eq!(refused.len(), limits.max_events_per_message);
        let capped = bench.events_of(id, "command.capped");
        assert_eq!(capped.len(), 1, "{capped:?}");
        let detail = capped[0].detail.as_deref().unwrap_or_default();
        let lines = limits.max_command_lines;
        assert_eq!(
            detail,
            format!(
                "{} more refused command lines were not recorded one by one (at most {} a mail); \
                 {} command lines after the first {lines} were not read",
                lines - limits.max_events_per_message,
                limits.max_events_per_message,
                10_000 - lines,
            )
        );
        assert_eq!(other_kinds(&bench, id), other_kinds(&bench, plain));
        assert_eq!(bench.status(id), bench.status(plain));
        let relay = bench.last_sent(id, "agents");
        assert!(relay.text.contains("Please help"), "{}", relay.text);
    }

    /// Issue 12: a customer's mail copying 500 people adds `max_people_per_message` of
    /// them, and one event says how many were not added.
    #[test]
    fn people_added_by_one_mail_are_capped() {
        let mut bench = Bench::new("", "");
        let max = bench.engine.limits().max_people_per_message;
        let id = bench.new_ticket(CAROL, "Printer", "It is broken");
        let cc: Vec<String> = (0..500).map(|n| format!("p{n}@customer.test")).collect();
        let headers = format!("Cc: {}, {CAROL}, P1@customer.test\n", cc.join(", "));
        let d = bench.reply(CAROL, id, "customer", &headers, "Adding everyone");
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: id }));
        assert_eq!(bench.count(id, "cc"), max);
        let capped = bench.events_of(id, "cc.capped");
        assert_eq!(capped.len(), 1, "{capped:?}");
        assert_eq!(
            capped[0].new.as_deref(),
            Some((500 - max).to_string().as_str())
        );
        let people = bench.write(|_, tx| tx.participants(id));
        assert_eq!(people.len(), 1 + max, "the requester and {max} more");
        assert!(people.iter().any(|(a, _)| a == "p0@customer.test"));

        // The next mail adds the next ones; those already there cost nothing.
        bench.reply(CAROL, id, "customer", &headers, "Again");
        assert_eq!(bench.count(id, "cc"), 2 * max);
        assert_eq!(bench.count(id, "cc.capped"), 2);
    }

    #[test]
    fn oversized_message_goes_to_quarantine() {
        let mut bench = Bench::configured("max_message_bytes = 400", "", "");
        let raw = format!(
            "From: {CAROL}\nTo: {}\nSubject: Logs\nMessage-ID: <big@customer.test>\n\n{}\n",
            testing::SUPPORT,
            "x".repeat(500)
        );
        let d = bench.deliver(&raw);
        let Delivered::Quarantined(qid, reason) = d else {
            panic!("expected quarantine, got {d:?}");
        };
        assert!(
            reason.contains("exceeds the limit of 400 bytes"),
            "{reason}"
        );
        let (_, kept) = bench
            .reader()
            .quarantine_raw(qid)
            .expect("read")
            .expect("kept");
        assert_eq!(kept, raw.replace('\n', "\r\n").into_bytes());
        assert!(tickets(&bench).is_empty());
    }

    /// Issue 12: a message fetched only in part goes to quarantine as it is (marked
    /// truncated, with the server's size), takes its UID, and every message's cost is
    /// recorded for `postdesk status`.
    #[test]
    fn a_truncated_fetch_is_quarantined_with_its_size_and_costs_are_recorded() {
        let mut bench = Bench::new("", "");
        let raw = format!(
            "From: {CAROL}\r\nTo: {}\r\nSubject: Printer\r\nMessage-ID: <c1@customer.test>\r\n\r\nHelp\r\n",
            testing::SUPPORT
        )
        .into_bytes();
        let cut = Truncated {
            size: 5_000_000,
            sha256: [1; 32],
            hash_of: crate::store::HashOf::Kept,
        };
        let mb = MailboxName::new("mb0");
        let batch = IngestBatch {
            mailbox: mb.clone(),
            uidvalidity: UidValidity(1),
            items: vec![
                Incoming {
                    uid: Uid(1),
                    prepared: bench.engine.prepare(&raw),
                    raw: raw.clone(),
                    cost: Cost {
                        took: Duration::from_millis(3),
                        truncated: None,
                    },
                },
                Incoming {
                    uid: Uid(2),
                    raw: b"Subject: big\r\n\r\nxxx".to_vec(),
                    prepared: Err("too large".to_owned()),
                    cost: Cost {
                        took: Duration::ZERO,
                        truncated: Some(cut),
                    },
                },
            ],
            last_uid: Uid(2),
            backlog: 0,
            at: bench.now(),
        };
        let out = bench.write(|e, tx| e.ingest(tx, batch));
        assert_eq!((out.new_tickets, out.quarantined), (1, 1));
        let held = bench.reader().quarantine_list().unwrap();
        assert_eq!(held.len(), 1);
        assert!(held[0].truncated);
        assert_eq!((held[0].size, held[0].uid), (5_000_000, Some(2)));
        let (largest, slowest) = bench
            .reader()
            .costliest(bench.now() - chrono::Duration::hours(1), 3)
            .unwrap();
        assert_eq!(largest[0].size, 5_000_000);
        assert_eq!(
            largest[0].outcome,
            format!("quarantined {}", held[0].id.get())
        );
        assert_eq!(slowest[0].prepare_us, 3000);
        assert_eq!(slowest[0].message_id.as_deref(), Some("c1@customer.test"));
        assert!(slowest[0].outcome.starts_with("new ticket "), "{slowest:?}");
    }

    /// Acknowledgement rows as (recipient, due time), in the order they were queued.
    fn acknowledgements(bench: &Bench) -> Vec<(String, DateTime<Utc>)> {
        bench
            .reader()
            .outbox_list(None)
            .expect("read")
            .into_iter()
            .filter(|o| o.kind == crate::model::OutboxKind::Acknowledgement)
            .map(|o| (o.to.join(","), o.next_attempt_at))
            .collect()
    }

    /// Issue 12, test 5: plus-tags and case do not make a new recipient.
    #[test]
    fn plus_tagged_addresses_share_one_rate_limit() {
        let mut bench = Bench::new("", "");
        let ids: Vec<TicketId> = (1..=15)
            .map(|n| {
                let from = if n % 2 == 0 {
                    format!("Victim+{n}@X.TEST")
                } else {
                    format!("victim+{n}@x.test")
                };
                bench.new_ticket(&from, &format!("Order {n}"), "Where is it?")
            })
            .collect();
        let lp = LoopProtection::default();
        assert_eq!(
            acknowledgements(&bench).len(),
            lp.per_recipient as usize,
            "at most per_recipient acknowledgements to victim@x.test in all"
        );
        for id in &ids[..10] {
            assert_eq!(bench.count(*id, "notification.held"), 0);
        }
        for id in &ids[10..] {
            let held = bench.events_of(*id, "notification.held");
            assert_eq!(held.len(), 1, "#{id}: {held:?}");
            assert!(
                held[0].detail.as_deref().is_some_and(
                    |d| d.contains("rate limit: 10 automatic mails to this address in 1h")
                ),
                "{held:?}"
            );
        }
        // Another address is not affected, nor is the same one an hour later.
        bench.new_ticket("other@x.test", "Order", "Where is it?");
        assert_eq!(acknowledgements(&bench).len(), 11);
        bench.clock.advance(chrono::Duration::hours(1));
        bench.new_ticket("victim+99@x.test", "Order", "Where is it?");
        assert_eq!(acknowledgements(&bench).len(), 12);
    }

    #[test]
    fn the_rate_limit_can_count_per_domain() {
        let mut bench = Bench::new(
            "",
            "\n[loop_protection]\nper_recipient = 2\nper_recipient_key = \"domain\"\n",
        );
        for n in 1..=3 {
            bench.new_ticket(&format!("c{n}@x.test"), "Order", "Where is it?");
        }
        bench.new_ticket("c1@y.test", "Order", "Where is it?");
        let to: Vec<String> = acknowledgements(&bench).into_iter().map(|a| a.0).collect();
        assert_eq!(to, ["c1@x.test", "c2@x.test", "c1@y.test"]);
    }

    /// Many customers of one domain (a big free-mail provider, or forged senders of one
    /// victim domain): `per_domain` an hour go now, the rest wait for the next hours.
    #[test]
    fn one_domain_gets_per_domain_automatic_mails_an_hour_and_the_rest_later() {
        let mut bench = Bench::new("", "\n[loop_protection]\nper_domain = 3\n");
        let ids: Vec<TicketId> = (1..=5)
            .map(|n| bench.new_ticket(&format!("c{n}@forged.test"), "Order", "Where is it?"))
            .collect();
        bench.new_ticket("c1@elsewhere.test", "Order", "Where is it?");
        let to: Vec<String> = acknowledgements(&bench).into_iter().map(|a| a.0).collect();
        assert_eq!(to.len(), 6, "every customer is acknowledged: {to:?}");
        let hour = bench.now().timestamp().div_euclid(3600);
        for id in &ids[..3] {
            assert!(bench.events_of(*id, "notification.delayed").is_empty());
        }
        for id in &ids[3..] {
            let delayed = bench.events_of(*id, "notification.delayed");
            assert_eq!(delayed.len(), 1, "{delayed:?}");
            let detail = delayed[0].detail.as_deref().unwrap_or("");
            assert!(
                detail.contains("rate limit: 3 automatic mails to this domain per 1h; queued for"),
                "{detail}"
            );
            let next_hour = chrono::DateTime::from_timestamp((hour + 1) * 3600, 0).unwrap();
            assert!(
                detail.ends_with(&crate::model::stamp::text(next_hour)),
                "{detail}"
            );
            assert!(bench.events_of(*id, "notification.held").is_empty());
        }
    }

    /// The breaker throttles: every distinct customer is acknowledged, `global` per
    /// window, in the order they wrote.
    #[test]
    fn global_breaker_delays_acknowledgements_to_later_windows_in_order() {
        let mut bench = Bench::new("", "\n[loop_protection]\nglobal = 5\n");
        let start = bench.now();
        let ids: Vec<TicketId> = (1..=20)
            .map(|n| bench.new_ticket(&format!("c{n}@customer{n}.test"), "Printer", "Broken"))
            .collect();
        let acks = acknowledgements(&bench);
        assert_eq!(acks.len(), 20, "every customer gets an acknowledgement");
        let minutes = |m: i64| start + chrono::Duration::minutes(m);
        for (n, (to, due)) in acks.iter().enumerate() {
            assert_eq!(to, &format!("c{}@customer{}.test", n + 1, n + 1));
            let window = n as i64 / 5;
            assert_eq!(*due, minutes(10 * window), "acknowledgement {}", n + 1);
        }
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(bench.count(*id, "notification.held"), 0);
            let delayed = bench.events_of(*id, "notification.delayed");
            if n < 5 {
                assert!(delayed.is_empty(), "{delayed:?}");
                continue;
            }
            let until = crate::model::stamp::text(minutes(10 * (n as i64 / 5)));
            assert!(
                delayed.len() == 1
                    && delayed[0].new.as_deref() == Some("acknowledgement")
                    && delayed[0]
                        .detail
                        .as_deref()
                        .is_some_and(|d| d.contains("global breaker: 5 automatic mails per 10m")
                            && d.contains(&until)),
                "#{id}: {delayed:?}"
            );
        }
        // Ten minutes on, a new customer queues behind the ones already waiting.
        bench.clock.advance(chrono::Duration::minutes(10));
        bench.new_ticket("late@customer.test", "Printer", "Broken");
        assert_eq!(
            acknowledgements(&bench).last().map(|a| a.1),
            Some(minutes(40))
        );
    }

    #[test]
    fn global_breaker_holds_what_it_could_not_send_within_ack_max_age() {
        let mut bench = Bench::new(
            "",
            "\n[loop_protection]\nglobal = 1\nack_max_age = \"15m\"\n",
        );
        for n in 1..=2 {
            bench.new_ticket(&format!("c{n}@customer.test"), "Printer", "Broken");
        }
        let third = bench.new_ticket("c3@customer.test", "Printer", "Broken");
        assert_eq!(acknowledgements(&bench).len(), 2);
        let held = bench.events_of(third, "notification.held");
        assert!(
            held.len() == 1
                && held[0]
                    .detail
                    .as_deref()
                    .is_some_and(|d| d
                        .contains("global breaker: 1 automatic mails per 10m, no room within 15m")),
            "{held:?}"
        );
    }

    #[test]
    fn acknowledgements_repeat_at_most_80_characters_of_the_subject() {
        let mut bench = Bench::new("", "");
        let subject: String = "é".repeat(150) + &"x".repeat(150);
        let id = bench.new_ticket(CAROL, &subject, "Help");
        let ack = bench.last_sent(id, "customer");
        let echoed = format!("{}…", "é".repeat(80));
        assert_eq!(ack.subject, format!("[ACME #{id}] {echoed}"));
        assert!(ack.text.contains(&echoed), "{}", ack.text);
        assert!(!ack.text.contains(&"é".repeat(81)), "{}", ack.text);
        assert!(!ack.text.contains('x'), "{}", ack.text);
        let short = bench.new_ticket("dan@customer.test", "Printer offline", "Help");
        assert_eq!(
            bench.last_sent(short, "customer").subject,
            format!("[ACME #{short}] Printer offline")
        );
    }

    #[test]
    fn agent_merge_command_moves_the_ticket() {
        let mut bench = Bench::new("", "");
        let keep = bench.new_ticket(CAROL, "Printer", "It is broken");
        let gone = bench.new_ticket(CAROL, "Printer again", "Still broken");
        let ack = bench.our_message_id(gone, "customer");
        bench.reply(ALICE, gone, "agents", "", &format!("#merge {keep}"));
        let t = bench.ticket(gone);
        assert_eq!(t.merged_into, Some(keep.get()));
        assert_eq!(bench.status(gone), Status::Closed);
        // A reply to the merged ticket's acknowledgement lands in the one it joined.
        let d = bench.send(
            CAROL,
            "Re: Printer again",
            &format!("In-Reply-To: {ack}\n"),
            "Any news?",
        );
        assert_eq!(d, Delivered::Applied(Applied::FollowUp { ticket: keep }));
    }
}
