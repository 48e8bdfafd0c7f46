//! How well triage would have done on this helpdesk's own history (pure).
//!
//! In: the history, oldest first, each ticket with what the configured rules would have
//! said ([`Labelled`]), and the thresholds. Out: an [`Evaluation`], the JSON of
//! `postdesk triage evaluate --json`.
//! - Time-ordered split: the model is trained on the older 80% and tested on the newest
//!   20%, as it would be used (it never sees the future).
//! - Queue and priority, per test ticket: `accuracy` of the best guess; `macro_f1`, the
//!   mean F1 over the values seen or guessed; `coverage`, the share whose confidence
//!   reaches the threshold; `accuracy_at_coverage`, the accuracy on those (`null` when
//!   none); `baseline_accuracy`, always guessing the training part's most frequent value;
//!   `rules_accuracy`, what the configured rules (else the mailbox's queue, `normal`)
//!   give.
//! - Tags are multi-label: each (test ticket, learnt tag) pair is one yes/no decision.
//!   `accuracy` at probability 0.5; `macro_f1`, the mean F1 of "has the tag" over the
//!   learnt tags; `coverage`, the share of pairs decided confidently (probability ≥ the
//!   threshold, or ≤ 1 − it); the baseline says each tag's majority in training (usually
//!   "no"); the rules say "yes" for the tags they add.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::model::{Example, Model, Prediction};
use super::TriageError;

/// One history ticket with the rules' answer for it.
#[derive(Debug, Clone)]
pub struct Labelled {
    pub example: Example,
    pub rules: RulesSay,
}

/// What the configured rules decide for a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesSay {
    pub queue: String,
    pub priority: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub tickets: usize,
    pub train: usize,
    pub test: usize,
    pub labels: Labels,
}

#[derive(Debug, Clone, Serialize)]
pub struct Labels {
    pub queue: Figures,
    pub priority: Figures,
    pub tags: Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub coverage: f64,
    pub accuracy_at_coverage: Option<f64>,
    pub baseline_accuracy: f64,
    pub rules_accuracy: f64,
}

/// Share of the training part used as the test: the newest 20%.
pub const TEST_SHARE: f64 = 0.2;

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    ratio(2 * tp, 2 * tp + fp + fn_)
}

/// Trains on the older 80% of `history` and measures on the rest (see the module doc).
pub fn evaluate(
    history: &[Labelled],
    cfg: &crate::config::Triage,
    at: DateTime<Utc>,
) -> Result<Evaluation, TriageError> {
    let test_n = (history.len() as f64 * TEST_SHARE).round() as usize;
    let (train, test) = history.split_at(history.len() - test_n);
    let examples: Vec<Example> = train.iter().map(|l| l.example.clone()).collect();
    let model = Model::train(&examples, at)?;
    let predictions: Vec<Prediction> = test
        .iter()
        .map(|l| model.predict(&l.example.features))
        .collect();
    let queue = single(
        train,
        test,
        &predictions,
        |l| &l.example.queue,
        |l| &l.rules.queue,
        |p| p.queue.as_ref().map(|g| (g.value.as_str(), g.confidence)),
        cfg.queue_threshold,
    );
    let priority = single(
        train,
        test,
        &predictions,
        |l| &l.example.priority,
        |l| &l.rules.priority,
        |p| {
            p.priority
                .as_ref()
                .map(|g| (g.value.as_str(), g.confidence))
        },
        cfg.priority_threshold,
    );
    let tags: Vec<&str> = model.tags.iter().map(|t| t.tag.as_str()).collect();
    let tags = multi(train, test, &predictions, &tags, cfg.tags_threshold);
    Ok(Evaluation {
        tickets: history.len(),
        train: train.len(),
        test: test.len(),
        labels: Labels {
            queue,
            priority,
            tags,
        },
    })
}

fn single<'a>(
    train: &'a [Labelled],
    test: &'a [Labelled],
    predictions: &'a [Prediction],
    truth: impl Fn(&'a Labelled) -> &'a String,
    rules: impl Fn(&'a Labelled) -> &'a String,
    guess: impl Fn(&'a Prediction) -> Option<(&'a str, f64)>,
    threshold: f64,
) -> Figures {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in train {
        *counts.entry(truth(l)).or_default() += 1;
    }
    let majority = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(v, _)| *v)
        .unwrap_or("");
    // Per value: true positives, false positives, false negatives.
    let mut per: HashMap<&str, (usize, usize, usize)> = HashMap::new();
    let (mut right, mut covered, mut covered_right, mut base, mut by_rules) = (0, 0, 0, 0, 0);
    for (l, p) in test.iter().zip(predictions) {
        let want = truth(l).as_str();
        let (got, conf) = guess(p).unwrap_or((majority, 0.0));
        if got == want {
            right += 1;
            per.entry(want).or_default().0 += 1;
        } else {
            per.entry(got).or_default().1 += 1;
            per.entry(want).or_default().2 += 1;
        }
        if conf >= threshold {
            covered += 1;
            covered_right += usize::from(got == want);
        }
        base += usize::from(majority == want);
        by_rules += usize::from(rules(l) == want);
    }
    let macro_f1 = if per.is_empty() {
        0.0
    } else {
        per.values()
            .map(|&(tp, fp, fn_)| f1(tp, fp, fn_))
            .sum::<f64>()
            / per.len() as f64
    };
    Figures {
        accuracy: ratio(right, test.len()),
        macro_f1,
        coverage: ratio(covered, test.len()),
        accuracy_at_coverage: (covered > 0).then(|| ratio(covered_right, covered)),
        baseline_accuracy: ratio(base, test.len()),
        rules_accuracy: ratio(by_rules, test.len()),
    }
}

fn multi(
    train: &[Labelled],
    test: &[Labelled],
    predictions: &[Prediction],
    tags: &[&str],
    threshold: f64,
) -> Figures {
    let has = |l: &Labelled, t: &str| l.example.tags.iter().any(|x| x == t);
    let (mut pairs, mut right, mut covered, mut covered_right, mut base, mut by_rules) =
        (0, 0, 0, 0, 0, 0);
    let mut f1s = Vec::new();
    for &tag in tags {
        let majority = 2 * train.iter().filter(|l| has(l, tag)).count() > train.len();
        let (mut tp, mut fp, mut fn_) = (0, 0, 0);
        for (l, p) in test.iter().zip(predictions) {
            let want = has(l, tag);
            let prob = p
                .tags
                .iter()
                .find(|g| g.value == tag)
                .map_or(0.0, |g| g.confidence);
            let got = prob >= 0.5;
            pairs += 1;
            right += usize::from(got == want);
            match (got, want) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => {}
            }
            if prob >= threshold || prob <= 1.0 - threshold {
                covered += 1;
                covered_right += usize::from(got == want);
            }
            base += usize::from(majority == want);
            by_rules += usize::from(l.rules.tags.iter().any(|t| t == tag) == want);
        }
        f1s.push(f1(tp, fp, fn_));
    }
    Figures {
        accuracy: ratio(right, pairs),
        macro_f1: if f1s.is_empty() {
            0.0
        } else {
            f1s.iter().sum::<f64>() / f1s.len() as f64
        },
        coverage: ratio(covered, pairs),
        accuracy_at_coverage: (covered > 0).then(|| ratio(covered_right, covered)),
        baseline_accuracy: ratio(base, pairs),
        rules_accuracy: ratio(by_rules, pairs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::features::of_ticket;

    #[test]
    fn splits_by_time_and_beats_the_majority() {
        let history: Vec<Labelled> = (0..200)
            .map(|i| {
                let (q, text) = match i % 4 {
                    0 | 1 => ("it", "vpn drops every hour"),
                    2 => ("billing", "invoice charged twice"),
                    _ => ("shipping", "parcel never arrived"),
                };
                Labelled {
                    example: Example {
                        features: of_ticket("help", text),
                        queue: q.to_owned(),
                        priority: "normal".to_owned(),
                        tags: if q == "billing" {
                            vec!["money".into()]
                        } else {
                            vec![]
                        },
                    },
                    rules: RulesSay {
                        queue: "it".to_owned(),
                        priority: "normal".to_owned(),
                        tags: vec![],
                    },
                }
            })
            .collect();
        let cfg = crate::config::Triage {
            mode: crate::config::TriageMode::Off,
            queue_threshold: 0.8,
            priority_threshold: 0.8,
            tags_threshold: 0.9,
            schedule: None,
            max_tickets: 1000,
            model_file: "/nonexistent".into(),
        };
        let at = "2026-12-01T00:00:00Z".parse().unwrap();
        let e = evaluate(&history, &cfg, at).unwrap();
        assert_eq!((e.tickets, e.train, e.test), (200, 160, 40));
        let q = &e.labels.queue;
        assert_eq!(q.accuracy, 1.0, "{q:?}");
        assert_eq!(q.baseline_accuracy, 0.5);
        assert_eq!(q.rules_accuracy, 0.5);
        assert!(q.coverage > 0.9, "{q:?}");
        assert_eq!(e.labels.tags.accuracy, 1.0, "{:?}", e.labels.tags);
        assert_eq!(e.labels.tags.baseline_accuracy, 0.75);
        let json = serde_json::to_value(&e).unwrap();
        let keys: Vec<&str> = json["labels"]["priority"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 6, "{keys:?}");
    }
}
