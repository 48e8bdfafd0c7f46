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

#[cfg(test)]
mod tests {
    use super::super::testing::{kind, Bench};
    use crate::triage::features::of_ticket;
    use crate::triage::model::{Example, Model};

    /// A bench in `mode` with a model that tells invoices (billing, high, tag money) from
    /// VPN trouble (it, normal).
    fn bench(mode: &str, rules: &str) -> Bench {
        let b = Bench::configured(
            "",
            "",
            &format!(
                "\n[[queue]]\nname = \"billing\"\n\n[[queue]]\nname = \"it\"\n{rules}\n[triage]\nmode = \"{mode}\"\nqueue_threshold = 0.6\npriority_threshold = 0.6\ntags_threshold = 0.6\n"
            ),
        );
        let examples: Vec<Example> = (0..200)
            .map(|i| {
                let billing = i % 2 == 0;
                Example {
                    features: if billing {
                        of_ticket(
                            "Invoice charged twice",
                            "my card was charged twice for the invoice",
                        )
                    } else {
                        of_ticket("VPN disconnects", "the vpn client drops every hour")
                    },
                    queue: if billing { "billing" } else { "it" }.to_owned(),
                    priority: if billing { "high" } else { "normal" }.to_owned(),
                    tags: if billing {
                        vec!["money".to_owned()]
                    } else {
                        vec![]
                    },
                }
            })
            .collect();
        let path = &b.engine.config().triage.model_file;
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        Model::train(&examples, b.now())
            .unwrap()
            .save(path)
            .unwrap();
        b
    }

    #[test]
    fn suggest_keeps_and_shows_the_guesses_but_changes_nothing() {
        let mut b = bench("suggest", "");
        let t = b.new_ticket(
            "ann@customer.test",
            "Invoice 12 charged twice",
            "My card was charged twice.",
        );
        let s = b.ticket(t);
        assert_eq!(
            (s.queue.as_str(), s.priority.as_str()),
            ("support", "normal")
        );
        assert!(s.tags.is_empty());
        let events = b.events(t);
        assert_eq!(
            events
                .iter()
                .filter(|e| kind(e) == "triage.suggested")
                .count(),
            1
        );
        assert!(!events.iter().any(|e| kind(e) == "triage.applied"));
        let v = b.reader().ticket_triage(t).unwrap().unwrap();
        assert_eq!(v.mode, "suggest");
        let q = v.queue.unwrap();
        assert_eq!((q.value.as_str(), q.applied), ("billing", false));
        let relays: Vec<String> = b
            .messages(t)
            .into_iter()
            .filter(|m| m.audience.as_str() == "agents")
            .map(|m| m.text)
            .collect();
        assert_eq!(relays.len(), 2, "one relay for each agent");
        for r in &relays {
            assert!(r.contains("\nSuggested: queue billing ("), "{r}");
        }
    }

    #[test]
    fn apply_sets_what_no_rule_decided() {
        let rule =
            "\n[[rule]]\nname = \"vpn-urgent\"\nkeywords = [\"invoice\"]\npriority = \"low\"\n";
        let mut b = bench("apply", rule);
        let t = b.new_ticket(
            "ann@customer.test",
            "Invoice 12 charged twice",
            "My card was charged twice.",
        );
        let s = b.ticket(t);
        assert_eq!(s.queue, "billing", "no rule set the queue: the model does");
        assert_eq!(
            s.priority.as_str(),
            "low",
            "the rule set the priority: it wins"
        );
        assert_eq!(s.tags, ["money"]);
        let applied: Vec<(Option<String>, Option<String>)> = b
            .events(t)
            .into_iter()
            .filter(|e| kind(e) == "triage.applied")
            .map(|e| (e.old, e.new))
            .collect();
        assert_eq!(
            applied,
            [
                (Some("queue".to_owned()), Some("billing".to_owned())),
                (Some("tag".to_owned()), Some("money".to_owned()))
            ]
        );
        let v = b.reader().ticket_triage(t).unwrap().unwrap();
        assert!(!v.priority.unwrap().applied);
    }

    #[test]
    fn the_nightly_training_is_marked_due_once_a_night_and_never_when_off() {
        use crate::schedule::Job;
        let trains = |b: &mut Bench| {
            b.run_jobs()
                .into_iter()
                .filter(|(j, _)| *j == Job::TriageTrain)
                .count()
        };
        let mut b = bench("suggest", "");
        assert_eq!(trains(&mut b), 0, "first sight counts from now");
        b.clock.advance(chrono::Duration::hours(6));
        assert_eq!(trains(&mut b), 0, "12:00 to 18:00: no 02:00 yet");
        b.clock.advance(chrono::Duration::days(3));
        assert_eq!(trains(&mut b), 1, "three nights missed: once");
        assert_eq!(trains(&mut b), 0);
        let mut off = bench("off", "");
        off.run_jobs();
        off.clock.advance(chrono::Duration::days(2));
        assert_eq!(trains(&mut off), 0);
    }
}
