//! Triage learnt from this helpdesk's own tickets (issue 16, 智能分类).
//!
//! In: the store's handled tickets (subject, the customer's first message, and the queue,
//! priority and tags agents left). Out: a [`model::Model`] in `data_dir/triage.model`,
//! and for each new ticket a [`Suggestion`]: per label the most likely value with a
//! calibrated confidence, only where it reaches the label's threshold (`[triage]`
//! `queue_threshold`, `priority_threshold`, `tags_threshold`): below it triage abstains.
//! - [`features`]: the text and its hashed terms; [`model`]: naive Bayes per label,
//!   calibrated by logistic regression, saved atomically; [`evaluate`]: a time-ordered
//!   80/20 split with the majority and rules baselines.
//! - [`train`] reads the newest `max_tickets` handled tickets (status no longer `new`:
//!   an agent has seen them, so the labels are theirs, not an earlier prediction's) and
//!   writes the model; `postdesk triage train` and the daemon's nightly job call it.
//! - [`Loaded`] is the daemon's model: it looks at the file's modification time at most
//!   once a second and reads a new model without a restart; a broken file is logged and
//!   the old model (or none) stays.
//! - Predicting is pure and costs microseconds beyond the word segmentation; the
//!   workflow does it in the prepare stage, off the writer thread.

pub mod evaluate;
pub mod features;
pub mod model;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::model::{Language, Priority};
use crate::rules::{self, RuleInput};
use crate::store::{Reader, StoreError, TriageHistoryRow};
use evaluate::{Labelled, RulesSay};
use model::{Example, Guess, Model, Prediction};

#[derive(Debug, thiserror::Error)]
pub enum TriageError {
    #[error("not enough history to learn from: {have} handled tickets, at least {need} needed")]
    TooFew { have: usize, need: usize },
    #[error("cannot fit the calibration: {0}")]
    Fit(String),
    #[error("cannot write the model file {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the model file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model file {}: {why}", path.display())]
    Corrupt { path: PathBuf, why: String },
    #[error("cannot read the ticket history")]
    Store(#[from] StoreError),
}

/// The guesses that reach their thresholds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suggestion {
    pub queue: Option<Guess>,
    pub priority: Option<Guess>,
    pub tags: Vec<Guess>,
}

impl Suggestion {
    /// Keeps what reaches `cfg`'s thresholds.
    pub fn of(p: &Prediction, cfg: &crate::config::Triage) -> Suggestion {
        let keep = |g: &Option<Guess>, t: f64| g.clone().filter(|g| g.confidence >= t);
        Suggestion {
            queue: keep(&p.queue, cfg.queue_threshold),
            priority: keep(&p.priority, cfg.priority_threshold)
                .filter(|g| g.value.parse::<Priority>().is_ok()),
            tags: p
                .tags
                .iter()
                .filter(|g| g.confidence >= cfg.tags_threshold)
                .cloned()
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_none() && self.priority.is_none() && self.tags.is_empty()
    }

    /// `queue billing (0.91), priority high (0.78), tag refund (0.93)`; `None` when
    /// triage abstained on every label.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        let mut one = |label: &str, g: &Guess| {
            parts.push(format!("{label} {} ({:.2})", g.value, g.confidence));
        };
        if let Some(g) = &self.queue {
            one("queue", g);
        }
        if let Some(g) = &self.priority {
            one("priority", g);
        }
        for g in &self.tags {
            one("tag", g);
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Features of many tickets, on every core.
pub fn examples(rows: &[TriageHistoryRow]) -> Vec<Example> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = rows.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = rows
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|r| Example {
                            features: features::of_ticket(&r.subject, &r.text),
                            queue: r.queue.clone(),
                            priority: r.priority.as_str().to_owned(),
                            tags: r.tags.clone(),
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().expect("feature extraction does not panic"))
            .collect()
    })
}

/// What the configured rules would have decided for a history row (no headers, no
/// recipients are kept: rules on those see nothing), with the mailbox's queue and
/// `normal` when no rule says.
pub fn rules_say(cfg: &Config, row: &TriageHistoryRow) -> RulesSay {
    let cjk = crate::mail::parse::has_cjk(&row.subject) || crate::mail::parse::has_cjk(&row.text);
    let input = RuleInput {
        subject: &row.subject,
        text: &row.text,
        from: row.requester.as_deref(),
        recipients: Vec::new(),
        headers: Vec::new(),
        has_attachment: false,
        language: if cjk { Language::ZhCn } else { Language::En },
    };
    let d = rules::evaluate(&cfg.rules, &input);
    let base = d.priority.unwrap_or(Priority::Normal);
    let vip = row
        .requester
        .as_deref()
        .is_some_and(|a| rules::is_vip(&cfg.vip, a));
    RulesSay {
        queue: d
            .queue
            .or_else(|| cfg.mailbox(&row.mailbox).map(|m| m.queue.clone()))
            .or_else(|| cfg.mailboxes.first().map(|m| m.queue.clone()))
            .unwrap_or_default(),
        priority: if vip { rules::bump(base) } else { base }
            .as_str()
            .to_owned(),
        tags: d.tags,
    }
}

/// The history with what the rules say of each ticket, for [`evaluate::evaluate`].
pub fn labelled(cfg: &Config, rows: &[TriageHistoryRow]) -> Vec<Labelled> {
    examples(rows)
        .into_iter()
        .zip(rows)
        .map(|(example, row)| Labelled {
            example,
            rules: rules_say(cfg, row),
        })
        .collect()
}

/// What [`train`] did.
#[derive(Debug, Clone)]
pub struct Trained {
    pub tickets: usize,
    pub took: Duration,
    pub bytes: u64,
    pub path: PathBuf,
    pub model: Model,
}

/// Reads the history from `reader`, fits the model and writes it to the model file.
pub fn train(reader: &Reader, cfg: &Config, now: DateTime<Utc>) -> Result<Trained, TriageError> {
    let start = Instant::now();
    let rows = reader.triage_history(cfg.triage.max_tickets)?;
    let model = Model::train(&examples(&rows), now)?;
    let path = cfg.triage.model_file.clone();
    let bytes = model.save(&path)?;
    Ok(Trained {
        tickets: rows.len(),
        took: start.elapsed(),
        bytes,
        path,
        model,
    })
}

/// The daemon's model, read again when its file changes (see the module doc).
pub struct Loaded {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    model: Option<Arc<Model>>,
    mtime: Option<SystemTime>,
    checked: Option<Instant>,
}

/// How often the file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

impl Loaded {
    pub fn new(path: &Path) -> Loaded {
        Loaded {
            path: path.to_owned(),
            state: Mutex::new(State::default()),
        }
    }

    /// The newest model that could be read, if any.
    pub fn current(&self) -> Option<Arc<Model>> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.checked.is_some_and(|c| c.elapsed() < RECHECK) {
            return st.model.clone();
        }
        st.checked = Some(Instant::now());
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_some() && mtime != st.mtime {
            st.mtime = mtime;
            match Model::load(&self.path) {
                Ok(m) => {
                    tracing::info!(
                        path = %self.path.display(),
                        trained_at = %m.trained_at,
                        examples = m.examples,
                        "triage model loaded"
                    );
                    st.model = Some(Arc::new(m));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "triage model not loaded; keeping the previous one");
                }
            }
        }
        st.model.clone()
    }

    /// The suggestion for a message, if a model is there.
    pub fn suggest(
        &self,
        cfg: &crate::config::Triage,
        subject: &str,
        text: &str,
    ) -> Option<Suggestion> {
        let model = self.current()?;
        let p = model.predict(&features::of_ticket(subject, text));
        Some(Suggestion::of(&p, cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(q: f64, p: f64, t: f64) -> crate::config::Triage {
        crate::config::Triage {
            mode: crate::config::TriageMode::Suggest,
            queue_threshold: q,
            priority_threshold: p,
            tags_threshold: t,
            schedule: None,
            max_tickets: 100,
            model_file: PathBuf::from("/nonexistent"),
        }
    }

    fn g(v: &str, c: f64) -> Guess {
        Guess {
            value: v.to_owned(),
            confidence: c,
        }
    }

    #[test]
    fn abstains_below_each_threshold() {
        let p = Prediction {
            queue: Some(g("billing", 0.91)),
            priority: Some(g("high", 0.78)),
            tags: vec![g("refund", 0.95), g("vpn", 0.4)],
        };
        let s = Suggestion::of(&p, &cfg(0.8, 0.7, 0.9));
        assert_eq!(
            s.describe().unwrap(),
            "queue billing (0.91), priority high (0.78), tag refund (0.95)"
        );
        let s = Suggestion::of(&p, &cfg(0.95, 0.8, 0.99));
        assert!(s.is_empty(), "{s:?}");
        assert_eq!(s.describe(), None);
        let s = Suggestion::of(&p, &cfg(0.9, 0.99, 0.3));
        assert_eq!(
            s.describe().unwrap(),
            "queue billing (0.91), tag refund (0.95), tag vpn (0.40)"
        );
    }

    #[test]
    fn the_daemon_reads_a_new_model_without_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("triage.model");
        let loaded = Loaded::new(&path);
        assert!(loaded.current().is_none(), "no file yet");
        let ex = |queue: &str, text: &str| Example {
            features: features::of_ticket("s", text),
            queue: queue.to_owned(),
            priority: "normal".to_owned(),
            tags: vec![],
        };
        let at: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let one: Vec<Example> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    ex("a", "apple")
                } else {
                    ex("b", "banana")
                }
            })
            .collect();
        Model::train(&one, at).unwrap().save(&path).unwrap();
        std::thread::sleep(RECHECK);
        assert_eq!(loaded.current().unwrap().trained_at, at);
        let later = at + chrono::Duration::days(1);
        std::thread::sleep(Duration::from_millis(20));
        Model::train(&one, later).unwrap().save(&path).unwrap();
        std::fs::write(dir.path().join("x"), b"").unwrap();
        std::thread::sleep(RECHECK);
        assert_eq!(loaded.current().unwrap().trained_at, later);
        std::fs::write(&path, b"garbage").unwrap();
        std::thread::sleep(RECHECK);
        assert_eq!(
            loaded.current().unwrap().trained_at,
            later,
            "a broken file keeps the old model"
        );
    }
}
