//! What triage reads of a ticket, as hashed term counts (pure).
//!
//! In: a subject and the customer's first message. Out: [`Features`], a sparse vector of
//! `DIMS` hashed dimensions.
//! - The text is the subject (its terms count twice: it is short and says the most) and
//!   the message with its quoted history cut ([`crate::agent::quote::trim_quoted`]) and its signature cut
//!   ([`without_signature`]: below a `-- ` line, or a few closing lines such as
//!   `Best regards,`/`此致`).
//! - Terms are [`crate::words::terms`]: Latin words and word pairs, jieba words and
//!   character pairs for Chinese, character pairs for kana. Each term is hashed (FNV-1a,
//!   kind-prefixed, so a word and a pair never share a hash by construction) into `DIMS`
//!   buckets; the value of a bucket is `1 + ln(count)` (a word said five times is not five
//!   times the evidence).
//! - At most [`MAX_CHARS`] characters of the message are read: a pasted log cannot make
//!   a prediction slow.

use crate::words::{self, Term};

/// Hashed dimensions: 2^15. Collisions cost little accuracy at this size (about
/// 100,000 distinct terms in 100,000 tickets), and each class's weights stay 128 KiB.
pub const DIMS: usize = 1 << 15;

/// How much of the message is read.
pub const MAX_CHARS: usize = 4_000;

/// A sparse vector: sorted bucket indices, each once, with its weight.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    pub idx: Vec<u32>,
    pub val: Vec<f32>,
}

impl Features {
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }

    /// `bias + Σ w[i]·x[i]`.
    pub fn dot(&self, weights: &[f32], bias: f32) -> f32 {
        self.idx
            .iter()
            .zip(&self.val)
            .fold(bias, |s, (&i, &v)| s + weights[i as usize] * v)
    }
}

/// The part of the customer's message triage reads: without quote and signature, at
/// most [`MAX_CHARS`] characters.
pub fn message_text(message: &str) -> &str {
    let body = without_signature(crate::agent::quote::trim_quoted(message));
    match body.char_indices().nth(MAX_CHARS) {
        Some((i, _)) => &body[..i],
        None => body,
    }
}

/// Closing lines that start a signature when a message has no `-- ` line.
const CLOSINGS: &[&str] = &[
    "best regards",
    "kind regards",
    "regards",
    "best",
    "cheers",
    "thanks",
    "thank you",
    "many thanks",
    "sincerely",
    "yours sincerely",
    "mit freundlichen grüßen",
    "此致",
    "此致敬礼",
    "谢谢",
    "祝好",
    "敬上",
    "よろしくお願いします",
    "sent from my iphone",
];

/// `text` up to its signature: the last `-- ` (or `--`) line, else a closing line in the
/// last eight lines (`Best regards,`), else all of it.
pub fn without_signature(text: &str) -> &str {
    let lines: Vec<(usize, &str)> = text
        .split_inclusive('\n')
        .scan(0, |at, l| {
            let start = *at;
            *at += l.len();
            Some((start, l))
        })
        .collect();
    if let Some((start, _)) = lines
        .iter()
        .rev()
        .find(|(_, l)| matches!(l.trim_end_matches(['\r', '\n']), "-- " | "--"))
    {
        return text[..*start].trim_end();
    }
    let tail = lines.len().saturating_sub(8);
    for (start, l) in &lines[tail..] {
        let key = l
            .trim()
            .trim_end_matches([',', '，', '!', '！', '.', '。', ':', '：'])
            .to_lowercase();
        if *start > 0 && CLOSINGS.contains(&key.as_str()) {
            return text[..*start].trim_end();
        }
    }
    text.trim_end()
}

/// FNV-1a over a kind byte and the term's bytes.
fn hash(kind: u8, parts: &[&str]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    eat(kind);
    for (k, p) in parts.iter().enumerate() {
        if k > 0 {
            eat(0);
        }
        p.bytes().for_each(&mut eat);
    }
    // Fold the high bits in: the low bits of FNV alone spread short keys less evenly.
    ((h ^ (h >> 32)) as u32) & (DIMS as u32 - 1)
}

/// Adds the hashed terms of `text`, each counting `weight`.
fn add_terms(text: &str, weight: f32, out: &mut Vec<(u32, f32)>) {
    words::terms(text, |t| {
        out.push((
            match t {
                Term::Word(w) => hash(b'w', &[w]),
                Term::Pair(a, b) => hash(b'p', &[a, b]),
                Term::Chars(c) => hash(b'c', &[c]),
            },
            weight,
        ))
    });
}

fn collect(mut buckets: Vec<(u32, f32)>) -> Features {
    buckets.sort_unstable_by_key(|b| b.0);
    let mut out = Features::default();
    for (b, w) in buckets {
        if out.idx.last() == Some(&b) {
            *out.val.last_mut().expect("idx and val have one length") += w;
        } else {
            out.idx.push(b);
            out.val.push(w);
        }
    }
    for v in &mut out.val {
        *v = 1.0 + v.ln();
    }
    out
}

/// The hashed terms of `text` (see the module doc).
pub fn features(text: &str) -> Features {
    let mut buckets = Vec::with_capacity(128);
    add_terms(text, 1.0, &mut buckets);
    collect(buckets)
}

/// The features of a ticket: the subject's terms count twice (it is short and says the
/// most), then the terms of [`message_text`].
pub fn of_ticket(subject: &str, message: &str) -> Features {
    let mut buckets = Vec::with_capacity(128);
    add_terms(subject, 2.0, &mut buckets);
    add_terms(message_text(message), 1.0, &mut buckets);
    collect(buckets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(f: &Features, kind: u8, parts: &[&str]) -> bool {
        f.idx.binary_search(&hash(kind, parts)).is_ok()
    }

    #[test]
    fn english_words_and_pairs() {
        let f = features("Invoice charged twice, please refund the invoice");
        assert!(has(&f, b'w', &["invoice"]));
        assert!(has(&f, b'w', &["refund"]));
        assert!(has(&f, b'p', &["invoice", "charged"]));
        assert!(!has(&f, b'w', &["please"]), "stop words are no features");
        let i = f.idx.binary_search(&hash(b'w', &["invoice"])).unwrap();
        assert!(
            (f.val[i] - (1.0 + 2f32.ln())).abs() < 1e-6,
            "twice: 1 + ln 2"
        );
        assert!(f.idx.windows(2).all(|w| w[0] < w[1]), "sorted, each once");
    }

    #[test]
    fn chinese_words_and_character_pairs_also_from_gbk() {
        let (gbk, _, _) = encoding_rs::GBK.encode("发票重复扣款，请退款");
        let (decoded, _, bad) = encoding_rs::GBK.decode(&gbk);
        assert!(!bad);
        for text in ["发票重复扣款，请退款", decoded.as_ref()] {
            let f = features(text);
            assert!(has(&f, b'w', &["发票"]), "{text}");
            assert!(has(&f, b'w', &["退款"]), "{text}");
            assert!(has(&f, b'c', &["扣款"]), "{text}");
            assert!(has(&f, b'c', &["票重"]), "{text}");
        }
    }

    #[test]
    fn mixed_and_japanese() {
        let f = features("VPN断开 every hour; プリンタが動かない");
        assert!(has(&f, b'w', &["vpn"]));
        assert!(has(&f, b'c', &["断开"]));
        assert!(has(&f, b'w', &["hour"]));
        assert!(has(&f, b'c', &["プリ"]));
        assert!(has(&f, b'c', &["かな"]));
        assert!(features("").is_empty());
    }

    #[test]
    fn quote_and_signature_are_not_read() {
        for (message, want) in [
            (
                "My VPN drops.\n\nOn Mon, 1 Jun 2026, Support wrote:\n> invoice refund\n",
                "My VPN drops.",
            ),
            ("My VPN drops.\n-- \nAlice\nBilling dept\n", "My VPN drops."),
            (
                "My VPN drops.\n\nBest regards,\nAlice Invoice\n",
                "My VPN drops.",
            ),
            ("打印机坏了。\n\n此致\n张伟\n", "打印机坏了。"),
            ("Regards\nis what I send", "Regards\nis what I send"),
        ] {
            assert_eq!(message_text(message), want, "{message:?}");
        }
    }
}
