//! The problems that come back: similar tickets grouped (issue 6).
//!
//! In: the tickets created in the period and in the previous period of equal length, each
//! as its subject plus the first [`super::FIRST_TEXT_CHARS`] characters of its first
//! message. Out: up to [`TOP`] groups with at least two tickets in the period.
//! - Words ([`crate::words::words`]): the subject loses `Re:`/`回复：` prefixes and our
//!   `[TAG #n]`; then the words that can define a problem (stop words and one-letter
//!   words go, plurals are cut, Han runs are segmented by jieba).
//! - Weights: TF-IDF over both periods' tickets; subject words count twice; a word must
//!   occur in two tickets at least, and with 20 tickets or more, in at most half of them.
//!   Each ticket keeps its [`TERMS`] strongest words, as a unit vector.
//! - Grouping, deterministic and O(n·k): each ticket gets one key word and tickets with
//!   the same key form a group. The key is the word of its subject (the customer's own
//!   summary) that the most subjects share (ties: the stronger word); a ticket whose
//!   subject shares no word with another subject takes, of its [`KEY_FROM`] strongest
//!   words, the one the most tickets share. So "Printer offline", "Printer jams" and
//!   "Printer on floor 3 is offline" are one printer problem rather than pairs, and a
//!   ticket linked to a group only by a minor word of its text (a leaking coffee machine
//!   on the same "floor") keeps a key of its own. Words that say where or how badly rather
//!   than what (`error`, `failed`, `floor`, `失败`…) are stop words.
//! - A group's words: its key first, then the strongest of its summed vectors; its trend
//!   compares the tickets it holds from each period.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{Options, Problem, Trend};
use crate::config::Config;
use crate::model::TicketId;
use crate::store::ReportTicket;
use crate::words::{han, jieba, latin, lower, runs};
pub use crate::words::{preload, words};

/// Groups reported.
pub const TOP: usize = 10;
/// Words kept per ticket.
pub const TERMS: usize = 10;
/// How many of a ticket's strongest words may be its key.
pub const KEY_FROM: usize = 3;
/// `mail::subject::clean_subject` of an empty subject.
const NO_SUBJECT: &str = "(no subject)";
/// Words shown per group.
const SHOWN: usize = 5;
/// Example tickets per group.
const EXAMPLES: usize = 5;

/// One ticket to group.
struct Doc {
    id: TicketId,
    current: bool,
    /// (word, weight), unit length, strongest first.
    terms: Vec<(u32, f32)>,
    /// The words of its subject that can define a problem.
    subject: Vec<u32>,
}

/// Words of many tickets, each word numbered in order of first appearance.
#[derive(Default)]
struct Vocabulary {
    ids: HashMap<String, u32>,
    words: Vec<String>,
}

impl Vocabulary {
    fn id(&mut self, word: &str) -> u32 {
        if let Some(id) = self.ids.get(word) {
            return *id;
        }
        let id = u32::try_from(self.words.len()).unwrap_or(u32::MAX);
        self.ids.insert(word.to_owned(), id);
        self.words.push(word.to_owned());
        id
    }
}

/// A ticket's words: (word, count, whether in its subject); subject words count twice.
type Bag = Vec<(u32, f32, bool)>;

/// Tokenizes `texts` (subject, text) on a few threads; each returns its own vocabulary.
fn tokenize(texts: &[(String, &str)]) -> (Vec<Bag>, Vocabulary) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let chunk = texts.len().div_ceil(threads).max(1);
    let parts: Vec<(Vec<Bag>, Vocabulary)> = std::thread::scope(|s| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| s.spawn(move || tokenize_part(part)))
            .collect();
        // A part missing would shift every later ticket's words: pass a panic on.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    // One numbering, in order of first appearance over all tickets: the same whatever the
    // number of threads.
    let mut global = Vocabulary::default();
    let mut bags = Vec::with_capacity(texts.len());
    for (part_bags, vocab) in parts {
        let mut map: Vec<Option<u32>> = vec![None; vocab.words.len()];
        for bag in part_bags {
            let mut out: Bag = bag
                .into_iter()
                .map(|(local, n, subject)| {
                    let slot = &mut map[local as usize];
                    let id = *slot.get_or_insert_with(|| global.id(&vocab.words[local as usize]));
                    (id, n, subject)
                })
                .collect();
            out.sort_unstable_by_key(|(id, _, _)| *id);
            bags.push(out);
        }
    }
    (bags, global)
}

/// [`words`] for many tickets, with each surface form decided once: `seen` maps what the
/// text says (lower-cased) to the word it stands for, or to nothing.
fn tokenize_part(part: &[(String, &str)]) -> (Vec<Bag>, Vocabulary) {
    let mut vocab = Vocabulary::default();
    let mut seen: HashMap<String, Option<u32>> = HashMap::new();
    let mut id = |surface: &str, decide: &dyn Fn(&str) -> Option<Cow<'_, str>>| {
        if let Some(id) = seen.get(surface) {
            return *id;
        }
        let id = decide(surface).map(|w| vocab.id(&w));
        seen.insert(surface.to_owned(), id);
        id
    };
    let mut buf = String::new();
    let mut bags = Vec::with_capacity(part.len());
    for (subject, text) in part {
        let mut bag: Bag = Vec::new();
        for (text, in_subject) in [(subject.as_str(), true), (*text, false)] {
            runs(text, |run, is_han| {
                if is_han {
                    for token in jieba().cut(run, false) {
                        let word = id(token.word, &|w| han(w).then_some(Cow::Borrowed(w)));
                        count(&mut bag, word, in_subject);
                    }
                } else if let Some(l) = lower(run, &mut buf) {
                    count(&mut bag, id(l, &latin), in_subject);
                }
            });
        }
        bags.push(bag);
    }
    (bags, vocab)
}

/// Counts a word: twice in the subject, once in the text.
fn count(bag: &mut Bag, id: Option<u32>, in_subject: bool) {
    let Some(id) = id else { return };
    let n = if in_subject { 2.0 } else { 1.0 };
    match bag.iter_mut().find(|(w, _, _)| *w == id) {
        Some(entry) => {
            entry.1 += n;
            entry.2 |= in_subject;
        }
        None => bag.push((id, n, in_subject)),
    }
}

/// A group: the tickets sharing one key word, and the sum of their vectors.
struct Group {
    key: u32,
    sum: HashMap<u32, f32>,
    members: Vec<usize>,
}

/// The top problem groups of `tickets` (see the module doc).
pub(crate) fn top(cfg: &Config, tickets: &[ReportTicket], opts: &Options) -> Vec<Problem> {
    let previous_from = opts.previous_from();
    let tags = cfg.tags();
    let chosen: Vec<_> = tickets
        .iter()
        .filter(|t| t.grouped && t.created_at >= previous_from && t.created_at < opts.to)
        .collect();
    let texts: Vec<(String, &str)> = chosen
        .iter()
        .map(|t| {
            let mut subject =
                crate::mail::subject::clean_subject(t.subject.as_deref().unwrap_or(""), &tags);
            // What a ticket without a subject is called; its words are no problem.
            if subject == NO_SUBJECT {
                subject.clear();
            }
            (subject, t.first_text.as_deref().unwrap_or(""))
        })
        .collect();
    let (bags, vocab) = tokenize(&texts);
    let (docs, freq) = weigh(
        chosen
            .iter()
            .map(|t| (t.id, t.created_at >= opts.from))
            .zip(bags),
        vocab.words.len(),
    );
    describe(group(&docs, &freq), &docs, &vocab)
}

/// How many tickets hold each word: anywhere, and in the subject.
struct Frequency {
    all: Vec<u32>,
    subject: Vec<u32>,
}

/// TF-IDF vectors, cut to the strongest [`TERMS`] words and scaled to unit length; and
/// the words' frequencies.
fn weigh(
    tickets: impl Iterator<Item = ((TicketId, bool), Bag)>,
    words: usize,
) -> (Vec<Doc>, Frequency) {
    let tickets: Vec<_> = tickets.collect();
    let n = tickets.len();
    let mut freq = Frequency {
        all: vec![0; words],
        subject: vec![0; words],
    };
    for (_, bag) in &tickets {
        for (t, _, in_subject) in bag {
            freq.all[*t as usize] += 1;
            freq.subject[*t as usize] += u32::from(*in_subject);
        }
    }
    let max_df = if n >= 20 { n / 2 } else { n };
    let idf: Vec<f32> = freq
        .all
        .iter()
        .map(|&d| {
            let d = d as usize;
            if d < 2 || d > max_df {
                0.0
            } else {
                ((1.0 + n as f32) / (1.0 + d as f32)).ln() + 1.0
            }
        })
        .collect();
    let docs = tickets
        .into_iter()
        .map(|((id, current), bag)| {
            let subject = bag
                .iter()
                .filter(|(t, _, s)| *s && idf[*t as usize] > 0.0)
                .map(|(t, _, _)| *t)
                .collect();
            let mut terms: Vec<(u32, f32)> = bag
                .into_iter()
                .map(|(t, tf, _)| (t, (1.0 + tf.ln()) * idf[t as usize]))
                .filter(|(_, w)| *w > 0.0)
                .collect();
            terms.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            terms.truncate(TERMS);
            let norm = terms.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            for (_, w) in &mut terms {
                *w /= norm;
            }
            Doc {
                id,
                current,
                terms,
                subject,
            }
        })
        .collect();
    (docs, freq)
}

/// A ticket's key (see the module doc); `None` for a ticket without a word shared with
/// another ticket.
fn key(doc: &Doc, freq: &Frequency) -> Option<u32> {
    let weight = |t: u32| {
        doc.terms
            .iter()
            .find(|(x, _)| *x == t)
            .map_or(0.0, |(_, w)| *w)
    };
    let better = |a: u32, b: u32, df: &[u32]| {
        let (da, db) = (df[a as usize], df[b as usize]);
        da > db || (da == db && weight(a) > weight(b))
    };
    let mut best: Option<u32> = None;
    for &t in doc
        .subject
        .iter()
        .filter(|t| freq.subject[**t as usize] >= 2)
    {
        if best.is_none_or(|b| better(t, b, &freq.subject)) {
            best = Some(t);
        }
    }
    if best.is_some() {
        return best;
    }
    for &(t, _) in doc.terms.iter().take(KEY_FROM) {
        if best.is_none_or(|b| better(t, b, &freq.all)) {
            best = Some(t);
        }
    }
    best
}

/// Tickets grouped by key word, groups in order of their first ticket.
fn group(docs: &[Doc], freq: &Frequency) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: HashMap<u32, usize> = HashMap::new();
    for (i, doc) in docs.iter().enumerate() {
        let Some(k) = key(doc, freq) else { continue };
        let g = *by_key.entry(k).or_insert_with(|| {
            groups.push(Group {
                key: k,
                sum: HashMap::new(),
                members: Vec::new(),
            });
            groups.len() - 1
        });
        let group = &mut groups[g];
        for (t, w) in &doc.terms {
            *group.sum.entry(*t).or_insert(0.0) += w;
        }
        group.members.push(i);
    }
    groups
}

fn describe(groups: Vec<Group>, docs: &[Doc], vocab: &Vocabulary) -> Vec<Problem> {
    let mut out: Vec<(usize, Problem)> = groups
        .into_iter()
        .filter_map(|g| {
            let current: Vec<TicketId> = g
                .members
                .iter()
                .filter(|m| docs[**m].current)
                .map(|m| docs[*m].id)
                .collect();
            if current.len() < 2 {
                return None;
            }
            let count = current.len() as u64;
            let previous = (g.members.len() - current.len()) as u64;
            let word = |t: u32| vocab.words[t as usize].as_str();
            // The key word first, then the others by summed weight.
            let mut terms: Vec<(u32, f32)> = g
                .sum
                .iter()
                .filter(|(t, _)| **t != g.key)
                .map(|(t, w)| (*t, *w))
                .collect();
            terms.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| word(a.0).cmp(word(b.0))));
            let terms = std::iter::once(g.key)
                .chain(terms.into_iter().map(|(t, _)| t))
                .take(SHOWN)
                .map(|t| word(t).to_owned())
                .collect();
            let change = i64::try_from(count).unwrap_or(i64::MAX)
                - i64::try_from(previous).unwrap_or(i64::MAX);
            let trend = match (previous, change) {
                (0, _) => Trend::New,
                (_, c) if c > 0 => Trend::Up,
                (_, c) if c < 0 => Trend::Down,
                _ => Trend::Flat,
            };
            Some((
                g.members[0],
                Problem {
                    terms,
                    count,
                    previous,
                    change,
                    trend,
                    examples: current.into_iter().take(EXAMPLES).collect(),
                },
            ))
        })
        .collect();
    out.sort_by(|a, b| {
        b.1.count
            .cmp(&a.1.count)
            .then(b.1.change.cmp(&a.1.change))
            .then(a.0.cmp(&b.0))
    });
    out.into_iter().take(TOP).map(|(_, p)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(texts: &[(&str, &str)]) -> (Vec<Doc>, Frequency) {
        let owned: Vec<(String, &str)> = texts.iter().map(|(s, t)| (s.to_string(), *t)).collect();
        let (bags, vocab) = tokenize(&owned);
        weigh(
            bags.into_iter()
                .enumerate()
                .map(|(i, b)| ((TicketId::new(i as i64 + 1), true), b)),
            vocab.words.len(),
        )
    }

    #[test]
    fn similar_tickets_group_and_noise_stays_alone() {
        let texts = [
            ("Printer offline", "The printer on floor 3 is offline."),
            ("VPN drops", "My VPN connection drops every hour."),
            ("发票开错了", "上个月的发票抬头开错了，请重新开具发票。"),
            ("Printer paper jam", "The printer shows a paper jam."),
            ("Coffee machine leaking", "Water on the kitchen floor."),
            ("Cannot connect to VPN", "The VPN client fails to connect."),
            ("申请增值税发票", "我们需要开具增值税专用发票。"),
            ("Printer prints blank pages", "Only blank pages come out."),
        ];
        let (d, freq) = docs(&texts);
        let groups = group(&d, &freq);
        let mut sets: Vec<Vec<i64>> = groups
            .iter()
            .map(|g| g.members.iter().map(|m| d[*m].id.get()).collect())
            .filter(|m: &Vec<i64>| m.len() > 1)
            .collect();
        sets.sort();
        assert_eq!(sets, vec![vec![1, 4, 8], vec![2, 6], vec![3, 7]]);
    }

    #[test]
    fn words_do_not_depend_on_threads() {
        let texts: Vec<(String, &str)> = (0..200)
            .map(|i| {
                (
                    format!(
                        "{} case {}",
                        ["printer", "vpn", "发票", "password"][i % 4],
                        i
                    ),
                    "the toner cartridge is empty, 打印机没有墨了",
                )
            })
            .collect();
        let named = |bags: &[Bag], vocab: &Vocabulary| -> Vec<Vec<(String, f32, bool)>> {
            bags.iter()
                .map(|bag| {
                    let mut words: Vec<_> = bag
                        .iter()
                        .map(|(t, n, s)| (vocab.words[*t as usize].clone(), *n, *s))
                        .collect();
                    words.sort_by(|a, b| a.0.cmp(&b.0));
                    words
                })
                .collect()
        };
        let (bags, vocab) = tokenize_part(&texts);
        let one = named(&bags, &vocab);
        let (bags, vocab) = tokenize(&texts);
        assert_eq!(one, named(&bags, &vocab));
        assert_eq!(
            one[0],
            vec![
                ("cartridge".to_owned(), 1.0, false),
                ("case".to_owned(), 2.0, true),
                ("empty".to_owned(), 1.0, false),
                ("printer".to_owned(), 2.0, true),
                ("toner".to_owned(), 1.0, false),
                ("打印机".to_owned(), 1.0, false),
            ]
        );
    }
}
