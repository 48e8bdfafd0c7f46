//! The triage model: naive Bayes over hashed terms, calibrated by logistic regression.
//!
//! In: [`Example`]s (features and the labels agents left), oldest first. Out: a [`Model`]
//! that gives each label its most likely value with a calibrated confidence
//! ([`Model::predict`]), and its file form ([`Model::save`], [`Model::load`]).
//! - One multinomial naive Bayes per single-valued label (queue, priority) and one
//!   binary naive Bayes per frequent tag (one-vs-rest: tags are multi-label). Fitting it
//!   is counting, in closed form, over the sparse hashed vectors (`features::DIMS`
//!   buckets); no dense ticket × term matrix is ever built, so 100,000 tickets train in
//!   seconds. (`linfa-bayes` 0.8.1 needs dense `ndarray` records, and its
//!   `MultinomialNb::fit_with` prints every class's whole histogram with `dbg!`.)
//! - Naive Bayes is over-confident. The newest [`CALIBRATION_SHARE`] of the examples is
//!   held out: the model counted on the older part scores it, and a multinomial logistic
//!   regression (`linfa-logistic`, L-BFGS) maps those scores to probabilities (for tags,
//!   a binary one: Platt scaling). The held-out counts are then added, so the model that
//!   predicts has seen every example.
//! - Pure: no I/O but [`Model::save`]/[`Model::load`], no clock (the training time is an
//!   argument). Prediction costs a sparse dot product per class: microseconds.
//! - The file: a magic line, a JSON header (classes, biases, calibrations) and the
//!   weights as little-endian `f32`; written to a temporary file, fsynced, renamed over
//!   the old one (mode 0600), so a reader sees the old model or the new one, never half.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use linfa::prelude::*;
use linfa_logistic::{LogisticRegression, MultiLogisticRegression};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::features::{Features, DIMS};
use super::TriageError;

/// The newest share of the examples that calibrates the confidences.
pub const CALIBRATION_SHARE: f64 = 0.15;
/// Fewer examples than this: no model.
pub const MIN_EXAMPLES: usize = 30;
/// A tag is learnt when at least this many examples (and 0.5% of them) carry it.
pub const MIN_TAG_EXAMPLES: usize = 10;
/// At most this many tags are learnt (the most frequent).
pub const MAX_TAGS: usize = 30;
/// Additive smoothing of the term counts.
const ALPHA: f64 = 0.1;
/// Naive Bayes log-probabilities below this (relative to the best class) are cut: the
/// calibration sees `-30..=0`, scaled to `-3..=0`.
const CLAMP: f64 = 30.0;

const MAGIC: &[u8] = b"postdesk-triage 1\n";

/// One ticket as triage learns from it.
#[derive(Debug, Clone)]
pub struct Example {
    pub features: Features,
    pub queue: String,
    pub priority: String,
    pub tags: Vec<String>,
}

/// A label's most likely value and how sure the model is (0..=1, calibrated).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Guess {
    pub value: String,
    pub confidence: f64,
}

/// What the model says of one ticket, before thresholds: the best queue and priority,
/// and every learnt tag with the probability that the ticket carries it (highest first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prediction {
    pub queue: Option<Guess>,
    pub priority: Option<Guess>,
    pub tags: Vec<Guess>,
}

/// The fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub trained_at: DateTime<Utc>,
    /// Examples it learnt from.
    pub examples: usize,
    pub queue: Option<Classifier>,
    pub priority: Option<Classifier>,
    pub tags: Vec<TagModel>,
}

/// Multinomial naive Bayes for one single-valued label, with its calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    pub classes: Vec<String>,
    /// `classes.len()` rows of `DIMS` log-probabilities.
    weights: Vec<f32>,
    /// Log prior of each class.
    bias: Vec<f32>,
    calibration: Calibration,
}

/// Scores → probabilities: `softmax(z · w + b)` over the classes in `out`, where `z` is
/// the clamped, scaled naive Bayes log-posterior. `None` (too little held-out data): the
/// naive Bayes posterior itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Calibration {
    /// Row-major, `classes × out.len()`.
    w: Vec<f64>,
    b: Vec<f64>,
    /// Index into `classes` of each output.
    out: Vec<usize>,
}

/// Binary naive Bayes for one tag: the log-odds that a ticket carries it, then Platt
/// scaling `σ(a · s/10 + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagModel {
    pub tag: String,
    weights: Vec<f32>,
    bias: f32,
    platt: Option<(f64, f64)>,
}

/// Term counts per class, for fitting.
struct Counts {
    /// `classes × DIMS`.
    terms: Vec<f64>,
    per_class: Vec<f64>,
    docs: Vec<f64>,
}

impl Counts {
    fn new(k: usize) -> Counts {
        Counts {
            terms: vec![0.0; k * DIMS],
            per_class: vec![0.0; k],
            docs: vec![0.0; k],
        }
    }

    fn add(&mut self, class: usize, f: &Features) {
        let row = &mut self.terms[class * DIMS..(class + 1) * DIMS];
        for (&i, &v) in f.idx.iter().zip(&f.val) {
            row[i as usize] += f64::from(v);
            self.per_class[class] += f64::from(v);
        }
        self.docs[class] += 1.0;
    }

    /// Log-probabilities and log priors.
    fn weights(&self) -> (Vec<f32>, Vec<f32>) {
        let k = self.docs.len();
        let total_docs: f64 = self.docs.iter().sum::<f64>() + k as f64;
        let mut w = Vec::with_capacity(k * DIMS);
        let mut bias = Vec::with_capacity(k);
        for c in 0..k {
            let denom = (self.per_class[c] + ALPHA * DIMS as f64).ln();
            w.extend(
                self.terms[c * DIMS..(c + 1) * DIMS]
                    .iter()
                    .map(|&n| ((n + ALPHA).ln() - denom) as f32),
            );
            bias.push(((self.docs[c] + 1.0) / total_docs).ln() as f32);
        }
        (w, bias)
    }
}

fn log_softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    let lse = max + sum.ln();
    scores.iter().map(|s| s - lse).collect()
}

fn softmax(scores: &[f64]) -> Vec<f64> {
    log_softmax(scores).into_iter().map(f64::exp).collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// The calibration's input for naive Bayes scores.
fn calibration_input(scores: &[f64]) -> Vec<f64> {
    log_softmax(scores)
        .into_iter()
        .map(|l| l.max(-CLAMP) / 10.0)
        .collect()
}

impl Classifier {
    /// `None` when the examples hold fewer than two values of the label.
    fn train(
        fit: &[Example],
        held: &[Example],
        label: impl Fn(&Example) -> &str,
    ) -> Result<Option<Classifier>, TriageError> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for e in fit.iter().chain(held) {
            *seen.entry(label(e)).or_default() += 1;
        }
        if seen.len() < 2 {
            return Ok(None);
        }
        let classes: Vec<String> = seen.keys().map(|c| (*c).to_owned()).collect();
        let index: HashMap<&str, usize> = seen.keys().enumerate().map(|(i, c)| (*c, i)).collect();
        let mut counts = Counts::new(classes.len());
        for e in fit {
            counts.add(index[label(e)], &e.features);
        }
        let (weights, bias) = counts.weights();
        let mut c = Classifier {
            classes,
            weights,
            bias,
            calibration: Calibration::default(),
        };
        c.calibration = c.calibrate(held, |e| index[label(e)])?;
        for e in held {
            counts.add(index[label(e)], &e.features);
        }
        (c.weights, c.bias) = counts.weights();
        Ok(Some(c))
    }

    fn scores(&self, f: &Features) -> Vec<f64> {
        (0..self.classes.len())
            .map(|k| f64::from(f.dot(&self.weights[k * DIMS..(k + 1) * DIMS], self.bias[k])))
            .collect()
    }

    fn calibrate(
        &self,
        held: &[Example],
        class: impl Fn(&Example) -> usize,
    ) -> Result<Calibration, TriageError> {
        let k = self.classes.len();
        let y: Array1<usize> = held.iter().map(&class).collect();
        let mut distinct: Vec<usize> = y.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < 2 || held.len() < 4 * k {
            return Ok(Calibration::default());
        }
        let mut x = Array2::<f64>::zeros((held.len(), k));
        for (row, e) in held.iter().enumerate() {
            for (j, z) in calibration_input(&self.scores(&e.features))
                .into_iter()
                .enumerate()
            {
                x[[row, j]] = z;
            }
        }
        let fitted = MultiLogisticRegression::default()
            .alpha(0.01)
            .max_iterations(200)
            .fit(&Dataset::new(x, y))
            .map_err(|e| TriageError::Fit(e.to_string()))?;
        Ok(Calibration {
            w: fitted.params().iter().copied().collect(),
            b: fitted.intercept().to_vec(),
            out: fitted.classes().to_vec(),
        })
    }

    /// The most likely class and its calibrated probability.
    fn predict(&self, f: &Features) -> Guess {
        let scores = self.scores(f);
        let cal = &self.calibration;
        let (class, p) = if cal.out.is_empty() {
            let p = softmax(&scores);
            best(p.iter().copied().enumerate())
        } else {
            let z = calibration_input(&scores);
            let m = cal.out.len();
            let logits: Vec<f64> = (0..m)
                .map(|o| cal.b[o] + (0..z.len()).map(|j| z[j] * cal.w[j * m + o]).sum::<f64>())
                .collect();
            let p = softmax(&logits);
            let (o, p) = best(p.iter().copied().enumerate());
            (cal.out[o], p)
        };
        Guess {
            value: self.classes[class].clone(),
            confidence: p,
        }
    }
}

fn best(it: impl Iterator<Item = (usize, f64)>) -> (usize, f64) {
    it.fold(
        (0, f64::NEG_INFINITY),
        |b, (i, p)| if p > b.1 { (i, p) } else { b },
    )
}

impl TagModel {
    fn train(
        tag: &str,
        fit: &[Example],
        held: &[Example],
        all: &Counts,
    ) -> Result<TagModel, TriageError> {
        let has = |e: &Example| e.tags.iter().any(|t| t == tag);
        let mut with = Counts::new(1);
        for e in fit.iter().filter(|e| has(e)) {
            with.add(0, &e.features);
        }
        let mut m = TagModel {
            tag: tag.to_owned(),
            weights: Vec::new(),
            bias: 0.0,
            platt: None,
        };
        m.fit_weights(&with, all, fit.len() as f64);
        let y: Vec<bool> = held.iter().map(has).collect();
        if y.iter().any(|&b| b) && y.iter().any(|&b| !b) {
            let x = Array2::from_shape_vec(
                (held.len(), 1),
                held.iter()
                    .map(|e| f64::from(m.score(&e.features)).clamp(-CLAMP, CLAMP) / 10.0)
                    .collect(),
            )
            .map_err(|e| TriageError::Fit(e.to_string()))?;
            let fitted = LogisticRegression::default()
                .alpha(0.01)
                .max_iterations(200)
                .fit(&Dataset::new(x, Array1::from(y)))
                .map_err(|e| TriageError::Fit(e.to_string()))?;
            // linfa-logistic's positive class is whichever value it met first.
            let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
            m.platt = Some((sign * fitted.params()[0], sign * fitted.intercept()));
        }
        Ok(m)
    }

    /// `all` holds the counts of every fitted example in class 0; `with` those carrying
    /// the tag. The rest is their difference.
    fn fit_weights(&mut self, with: &Counts, all: &Counts, n: f64) {
        let (tw, ta) = (with.per_class[0], all.per_class[0]);
        let d_with = (tw + ALPHA * DIMS as f64).ln();
        let d_without = ((ta - tw).max(0.0) + ALPHA * DIMS as f64).ln();
        self.weights = (0..DIMS)
            .map(|j| {
                let a = with.terms[j];
                let b = (all.terms[j] - a).max(0.0);
                (((a + ALPHA).ln() - d_with) - ((b + ALPHA).ln() - d_without)) as f32
            })
            .collect();
        let pos = with.docs[0];
        self.bias = ((pos + 1.0) / (n - pos + 1.0)).ln() as f32;
    }

    fn score(&self, f: &Features) -> f32 {
        f.dot(&self.weights, self.bias)
    }

    fn probability(&self, f: &Features) -> f64 {
        let s = f64::from(self.score(f));
        match self.platt {
            Some((a, b)) => sigmoid(a * s.clamp(-CLAMP, CLAMP) / 10.0 + b),
            None => sigmoid(s),
        }
    }
}

/// The tags carried by at least [`MIN_TAG_EXAMPLES`] examples and 0.5% of them, most
/// frequent first, at most [`MAX_TAGS`].
pub fn frequent_tags(examples: &[Example]) -> Vec<String> {
    let mut n: HashMap<&str, usize> = HashMap::new();
    for e in examples {
        for t in &e.tags {
            *n.entry(t.as_str()).or_default() += 1;
        }
    }
    let min = MIN_TAG_EXAMPLES.max(examples.len() / 200);
    let mut tags: Vec<(&str, usize)> = n.into_iter().filter(|(_, c)| *c >= min).collect();
    tags.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    tags.into_iter()
        .take(MAX_TAGS)
        .map(|(t, _)| t.to_owned())
        .collect()
}

impl Model {
    /// Fits the model on `examples`, oldest first (see the module doc).
    pub fn train(examples: &[Example], at: DateTime<Utc>) -> Result<Model, TriageError> {
        if examples.len() < MIN_EXAMPLES {
            return Err(TriageError::TooFew {
                have: examples.len(),
                need: MIN_EXAMPLES,
            });
        }
        let split = examples.len() - (examples.len() as f64 * CALIBRATION_SHARE) as usize;
        let (fit, held) = examples.split_at(split);
        let queue = Classifier::train(fit, held, |e| e.queue.as_str())?;
        let priority = Classifier::train(fit, held, |e| e.priority.as_str())?;
        let mut all_fit = Counts::new(1);
        for e in fit {
            all_fit.add(0, &e.features);
        }
        let mut all = Counts::new(1);
        for e in examples {
            all.add(0, &e.features);
        }
        let mut tags = Vec::new();
        for tag in frequent_tags(examples) {
            let mut m = TagModel::train(&tag, fit, held, &all_fit)?;
            let mut with = Counts::new(1);
            for e in examples.iter().filter(|e| e.tags.contains(&tag)) {
                with.add(0, &e.features);
            }
            m.fit_weights(&with, &all, examples.len() as f64);
            tags.push(m);
        }
        Ok(Model {
            trained_at: at,
            examples: examples.len(),
            queue,
            priority,
            tags,
        })
    }

    /// The model's guesses for a ticket with these features.
    pub fn predict(&self, f: &Features) -> Prediction {
        let mut tags: Vec<Guess> = self
            .tags
            .iter()
            .map(|t| Guess {
                value: t.tag.clone(),
                confidence: t.probability(f),
            })
            .collect();
        tags.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        Prediction {
            queue: self.queue.as_ref().map(|c| c.predict(f)),
            priority: self.priority.as_ref().map(|c| c.predict(f)),
            tags,
        }
    }

    /// Writes the model to `path` atomically, readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<u64, TriageError> {
        let io = |source| TriageError::Write {
            path: path.to_owned(),
            source,
        };
        let bytes = self.to_bytes();
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let written = (|| {
            let mut file = opts.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = dir {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)?;
        Ok(bytes.len() as u64)
    }

    /// Reads a model written by [`Model::save`].
    pub fn load(path: &Path) -> Result<Model, TriageError> {
        let bytes = std::fs::read(path).map_err(|source| TriageError::Read {
            path: path.to_owned(),
            source,
        })?;
        Model::from_bytes(&bytes).map_err(|why| TriageError::Corrupt {
            path: path.to_owned(),
            why,
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let head = |c: &Classifier| Head {
            classes: c.classes.clone(),
            bias: c.bias.clone(),
            calibration: c.calibration.clone(),
        };
        let header = Header {
            trained_at: self.trained_at,
            examples: self.examples,
            dims: DIMS,
            queue: self.queue.as_ref().map(head),
            priority: self.priority.as_ref().map(head),
            tags: self
                .tags
                .iter()
                .map(|t| TagHead {
                    tag: t.tag.clone(),
                    bias: t.bias,
                    platt: t.platt,
                })
                .collect(),
        };
        let json = serde_json::to_vec(&header).expect("the header is plain data");
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + json.len() + self.weight_count() * 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u64).to_le_bytes());
        out.extend_from_slice(&json);
        let vectors = self
            .queue
            .iter()
            .chain(&self.priority)
            .map(|c| &c.weights)
            .chain(self.tags.iter().map(|t| &t.weights));
        for w in vectors {
            for x in w {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    fn weight_count(&self) -> usize {
        let c = |c: &Option<Classifier>| c.as_ref().map_or(0, |c| c.weights.len());
        c(&self.queue) + c(&self.priority) + self.tags.len() * DIMS
    }

    fn from_bytes(bytes: &[u8]) -> Result<Model, String> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("not a postdesk triage model (or another version)")?;
        let (len, rest) = rest.split_at_checked(8).ok_or("truncated header")?;
        let len = u64::from_le_bytes(len.try_into().expect("eight bytes")) as usize;
        let (json, mut rest) = rest.split_at_checked(len).ok_or("truncated header")?;
        let header: Header = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        if header.dims != DIMS {
            return Err(format!(
                "{} dimensions, this build uses {DIMS}",
                header.dims
            ));
        }
        let mut take = |n: usize| -> Result<Vec<f32>, String> {
            let (w, r) = rest.split_at_checked(n * 4).ok_or("truncated weights")?;
            rest = r;
            Ok(w.chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("four bytes")))
                .collect())
        };
        let mut classifier = |h: Option<Head>| -> Result<Option<Classifier>, String> {
            let Some(h) = h else { return Ok(None) };
            let k = h.classes.len();
            let m = h.calibration.out.len();
            if h.bias.len() != k
                || h.calibration.w.len() != k * m
                || h.calibration.b.len() != m
                || h.calibration.out.iter().any(|&o| o >= k)
            {
                return Err("inconsistent classifier".to_owned());
            }
            Ok(Some(Classifier {
                weights: take(k * DIMS)?,
                classes: h.classes,
                bias: h.bias,
                calibration: h.calibration,
            }))
        };
        let queue = classifier(header.queue)?;
        let priority = classifier(header.priority)?;
        let mut tags = Vec::new();
        for t in header.tags {
            tags.push(TagModel {
                weights: take(DIMS)?,
                tag: t.tag,
                bias: t.bias,
                platt: t.platt,
            });
        }
        if !rest.is_empty() {
            return Err("trailing bytes".to_owned());
        }
        Ok(Model {
            trained_at: header.trained_at,
            examples: header.examples,
            queue,
            priority,
            tags,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    trained_at: DateTime<Utc>,
    examples: usize,
    dims: usize,
    queue: Option<Head>,
    priority: Option<Head>,
    tags: Vec<TagHead>,
}

#[derive(Serialize, Deserialize)]
struct Head {
    classes: Vec<String>,
    bias: Vec<f32>,
    calibration: Calibration,
}

#[derive(Serialize, Deserialize)]
struct TagHead {
    tag: String,
    bias: f32,
    platt: Option<(f64, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::features::of_ticket;

    /// Three queues with their own words, priority from "urgent", tag "refund".
    fn examples(n: usize) -> Vec<Example> {
        let topics = [
            (
                "billing",
                "Invoice charged twice",
                "my card was charged twice for the invoice",
            ),
            (
                "it",
                "VPN disconnects",
                "the vpn client drops the connection every hour",
            ),
            (
                "shipping",
                "快递没有送到",
                "我的快递一直没有送到，物流信息没有更新",
            ),
        ];
        (0..n)
            .map(|i| {
                let (queue, subject, body) = topics[i % 3];
                let urgent = i % 4 == 0;
                let refund = queue == "billing" && i % 2 == 0;
                let text = format!(
                    "{body}{}{}",
                    if urgent {
                        " urgent deadline blocking"
                    } else {
                        ""
                    },
                    if refund {
                        " please refund the money"
                    } else {
                        ""
                    },
                );
                Example {
                    features: of_ticket(subject, &text),
                    queue: queue.to_owned(),
                    priority: if urgent { "high" } else { "normal" }.to_owned(),
                    tags: if refund {
                        vec!["refund".to_owned()]
                    } else {
                        vec![]
                    },
                }
            })
            .collect()
    }

    fn at() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn learns_queue_priority_and_tags() {
        let m = Model::train(&examples(300), at()).unwrap();
        let p = m.predict(&of_ticket(
            "VPN down",
            "vpn connection drops, urgent deadline",
        ));
        assert_eq!(p.queue.as_ref().unwrap().value, "it");
        assert!(p.queue.as_ref().unwrap().confidence > 0.8, "{p:?}");
        assert_eq!(p.priority.as_ref().unwrap().value, "high");
        let p = m.predict(&of_ticket(
            "发票",
            "my invoice was charged twice, please refund the money",
        ));
        assert_eq!(p.queue.unwrap().value, "billing");
        assert_eq!(p.tags[0].value, "refund");
        assert!(p.tags[0].confidence > 0.5, "{:?}", p.tags);
        let p = m.predict(&of_ticket("快递", "我的快递没有送到"));
        assert_eq!(p.queue.unwrap().value, "shipping");
        assert!(p.tags[0].confidence < 0.5, "{:?}", p.tags);
    }

    #[test]
    fn unsure_on_text_it_never_saw() {
        let m = Model::train(&examples(300), at()).unwrap();
        let p = m.predict(&of_ticket("hello", "lorem ipsum dolor"));
        let q = p.queue.unwrap();
        assert!(q.confidence < 0.6, "{q:?}");
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("triage.model");
        let m = Model::train(&examples(200), at()).unwrap();
        let size = m.save(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = Model::load(&path).unwrap();
        // Not assert_eq!: a failure would print 300,000 weights.
        assert!(back.queue == m.queue, "queue differs");
        assert!(back.priority == m.priority, "priority differs");
        assert!(back.tags == m.tags, "tags differ");
        assert!(back == m, "the model differs");
        let f = of_ticket("VPN", "vpn drops");
        assert_eq!(back.predict(&f), m.predict(&f));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        let err = Model::load(&path).unwrap_err().to_string();
        assert!(err.contains("truncated weights"), "{err}");
    }

    #[test]
    fn too_little_history_or_one_value_is_no_classifier() {
        let err = Model::train(&examples(10), at()).unwrap_err().to_string();
        assert!(err.contains("10"), "{err}");
        let mut one = examples(60);
        for e in &mut one {
            e.priority = "normal".to_owned();
        }
        let m = Model::train(&one, at()).unwrap();
        assert!(m.priority.is_none());
        assert!(m.queue.is_some());
    }
}
