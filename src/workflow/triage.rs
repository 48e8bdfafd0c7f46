//! Triage on a new ticket (issue 16): the model's guesses, what `apply` sets, and the
//! record of both.
//!
//! In: the message (and the guesses the prepare stage made for it), the rules' route.
//! Out: the route changed where triage may change it, a [`TriageView`] kept with the
//! ticket, and events.
//! - `[triage] mode = "off"`: nothing happens, nothing is read. `suggest`: the guesses
//!   above their thresholds are kept (`ticket show --json` `triage`), an event
//!   `triage.suggested` says them, and the relay shows a `Suggested:` line. `apply`: also
//!   sets the queue when no rule set it (and the queue is configured), the priority when
//!   no rule set it (the VIP bump still applies on top), and adds the tags when no rule
//!   added any; each applied guess is a `triage.applied` event with its confidence.
//!   Rules always win.
//! - The guesses are made in the prepare stage, off the writer thread, for messages that
//!   look like a new request (human, no In-Reply-To or References); any other message
//!   that opens a ticket (a reply past the reopen window) is guessed here.

use chrono::{DateTime, Utc};

use super::routing::Route;
use super::Engine;
use crate::config::TriageMode;
use crate::mail::classify::Class;
use crate::mail::parse::Parsed;
use crate::model::{EventKind, Language, Priority, TicketId};
use crate::store::{NewEvent, StoreError, TriageGuess, TriageView, Tx};
use crate::triage::Suggestion;

const SYSTEM: &str = "postdesk";

impl Engine {
    /// The prepare stage's guesses: for human mail that starts a thread, when triage is
    /// on and a model is there.
    pub(super) fn triage_early(&self, parsed: &Parsed, class: &Class) -> Option<Suggestion> {
        if class.is_automatic() || !parsed.in_reply_to.is_empty() || !parsed.references.is_empty() {
            return None;
        }
        self.triage_suggest(parsed)
    }

    fn triage_suggest(&self, parsed: &Parsed) -> Option<Suggestion> {
        self.triage
            .as_ref()?
            .suggest(&self.cfg.triage, &parsed.subject, &parsed.text)
    }

    /// Applies the guesses to `route` in `apply` mode (see the module doc); returns what
    /// to keep with the ticket, `None` when triage is off, has no model, or abstained.
    pub(super) fn triage_route(
        &self,
        route: &mut Route,
        parsed: &Parsed,
        early: Option<&Suggestion>,
        at: DateTime<Utc>,
    ) -> Option<TriageView> {
        let mode = self.cfg.triage.mode;
        if mode == TriageMode::Off {
            return None;
        }
        let s = match early {
            Some(s) => s.clone(),
            None => self.triage_suggest(parsed)?,
        };
        if s.is_empty() {
            return None;
        }
        let apply = mode == TriageMode::Apply;
        let queue = s.queue.as_ref().map(|g| {
            let applied = apply && !route.rule_queue && self.cfg.queue(&g.value).is_some();
            if applied {
                route.queue.clone_from(&g.value);
            }
            guess(&g.value, g.confidence, applied)
        });
        let priority = s.priority.as_ref().and_then(|g| {
            let p: Priority = g.value.parse().ok()?;
            let applied = apply && !route.rule_priority;
            if applied {
                route.priority = if route.vip { crate::rules::bump(p) } else { p };
            }
            Some(guess(&g.value, g.confidence, applied))
        });
        let tags_applied = apply && route.tags.is_empty();
        let tags = s
            .tags
            .iter()
            .map(|g| guess(&g.value, g.confidence, tags_applied))
            .collect();
        Some(TriageView {
            mode: mode.as_str().to_owned(),
            at,
            queue,
            priority,
            tags,
        })
    }

    /// Keeps `view` with the new ticket, adds the applied tags, and writes the events.
    pub(super) fn record_triage(
        &self,
        tx: &mut Tx<'_>,
        ticket: TicketId,
        view: &TriageView,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        tx.record_triage(ticket, view)?;
        let event = |tx: &mut Tx<'_>, kind, old: Option<&str>, new: Option<&str>, detail: &str| {
            tx.append_event(&NewEvent {
                ticket: Some(ticket),
                at,
                actor: SYSTEM,
                kind,
                old,
                new,
                detail: Some(detail),
            })
        };
        event(
            tx,
            EventKind::TriageSuggested,
            None,
            Some(view.mode.as_str()),
            &describe(view),
        )?;
        let fields = [("queue", &view.queue), ("priority", &view.priority)];
        for (field, g) in fields {
            if let Some(g) = g.as_ref().filter(|g| g.applied) {
                let detail = format!("confidence {:.2}", g.confidence);
                event(
                    tx,
                    EventKind::TriageApplied,
                    Some(field),
                    Some(&g.value),
                    &detail,
                )?;
            }
        }
        let tags: Vec<String> = view
            .tags
            .iter()
            .filter(|g| g.applied)
            .map(|g| g.value.clone())
            .collect();
        for tag in tx.add_tags(ticket, &tags)? {
            let c = view
                .tags
                .iter()
                .find(|g| g.value == tag)
                .map_or(0.0, |g| g.confidence);
            event(tx, EventKind::Tag, None, Some(&tag), "triage")?;
            let detail = format!("confidence {c:.2}");
            event(
                tx,
                EventKind::TriageApplied,
                Some("tag"),
                Some(&tag),
                &detail,
            )?;
        }
        Ok(())
    }
}

fn guess(value: &str, confidence: f64, applied: bool) -> TriageGuess {
    TriageGuess {
        value: value.to_owned(),
        confidence,
        applied,
    }
}

/// `queue billing (0.91), priority high (0.78), tag refund (0.95)`.
pub(super) fn describe(view: &TriageView) -> String {
    describe_in(view, Language::En)
}

/// The relay's `Suggested:` line in the agent's language (`队列 billing (0.91)`).
pub(super) fn describe_in(view: &TriageView, language: Language) -> String {
    let (queue, priority, tag, sep) = match language {
        Language::En => ("queue", "priority", "tag", ", "),
        Language::ZhCn => ("队列", "优先级", "标签", "，"),
    };
    let mut parts = Vec::new();
    let mut one = |label: &str, g: &TriageGuess| {
        parts.push(format!("{label} {} ({:.2})", g.value, g.confidence));
    };
    if let Some(g) = &view.queue {
        one(queue, g);
    }
    if let Some(g) = &view.priority {
        one(priority, g);
    }
    for g in &view.tags {
        one(tag, g);
    }
    parts.join(sep)
}
