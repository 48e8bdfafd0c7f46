//! Words of a text, for grouping problems, triage and similar tickets (pure).
//!
//! - [`runs`]: maximal runs of letters and digits, each Han or not.
//! - Latin-script runs are lower-cased ([`lower`]); words with a digit and one-letter
//!   words go; [`latin`] drops English stop words and cuts a plural `s`/`ies`
//!   (`printers` → `printer`).
//! - Han runs are segmented by jieba ([`jieba`]: dictionary only, no HMM, loaded once on
//!   first use); [`han`] drops single characters and Chinese stop words.
//! - [`words`]: every word of a text that can name a problem, in order.

use std::borrow::Cow;
use std::sync::OnceLock;

use jieba_rs::Jieba;

/// English words that name no problem (sorted: looked up by binary search).
#[rustfmt::skip]
const STOP_EN: &[&str] = &[
    "a", "able", "about", "above", "after", "again", "against", "all", "also", "am", "an",
    "and", "any", "anymore", "anyone", "anything", "are", "as", "asap", "at", "be", "because",
    "been", "before", "being", "below", "best", "between", "both", "broken", "but", "by", "can",
    "cannot", "cant", "could", "day", "days", "dear", "did", "didn", "do", "does", "doesn",
    "doing", "don", "done", "down", "during", "each", "error", "errors", "every", "everything",
    "fail", "failed", "failing", "fails", "failure", "few", "floor", "for", "from", "further",
    "get", "gets", "getting", "good", "got", "had", "has", "have", "having", "he", "hello",
    "help", "her", "here", "hers", "herself", "hi", "him", "himself", "his", "how", "however",
    "if", "in", "into", "is", "isn", "issue", "issues", "it", "its", "itself", "just", "kind",
    "know", "last", "let", "like", "ll", "many", "may", "me", "mine", "more", "morning", "most",
    "much", "must", "my", "myself", "need", "needs", "new", "no", "nor", "not", "nothing",
    "now", "of", "off", "office", "ok", "okay", "on", "once", "one", "only", "or", "other",
    "our", "ours", "ourselves", "out", "over", "own", "please", "pls", "problem", "problems",
    "re", "regards", "room", "same", "say", "says", "see", "sent", "she", "should", "since",
    "so", "some", "something", "still", "strange", "such", "support", "sure", "than", "thank",
    "thanks", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these",
    "they", "this", "those", "through", "to", "today", "too", "unable", "under", "until", "up",
    "urgent", "us", "ve", "very", "want", "was", "wasn", "way", "we", "week", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "won", "work",
    "worked", "working", "works", "would", "wrong", "yesterday", "yet", "you", "your", "yours",
    "yourself",
];

/// Chinese words that name no problem.
#[rustfmt::skip]
const STOP_ZH: &[&str] = &[
    "一个", "一下", "一些", "一直", "不是", "不能", "为什么", "什么", "今天",
    "他们", "以后", "但是", "你们", "你好", "可以", "可能", "因为", "处理",
    "如果", "已经", "希望", "帮助", "帮忙", "您好", "感谢", "我们", "所以",
    "无法", "时候", "是否", "昨天", "是不是", "没有", "现在", "问题", "麻烦",
    "谢谢", "请问", "还是", "这个", "这样", "那个", "需要", "非常", "尽快",
    "怎么", "怎么办", "出现", "目前", "一样", "还有", "而且", "或者", "然后",
    "就是", "这些", "那些", "自己", "大家", "多谢", "您们", "请求", "告诉",
    "知道", "应该", "能否", "谢谢您", "非常感谢", "急急", "失败", "错误", "异常",
    "不行", "显示", "提示", "反应", "有问题", "一楼", "二楼", "三楼", "四楼",
    "五楼", "办公室", "会议",
];

/// Loads the Chinese dictionary now rather than on first use (about 0.1 s).
pub fn preload() {
    jieba();
}

pub fn jieba() -> &'static Jieba {
    static JIEBA: OnceLock<Jieba> = OnceLock::new();
    JIEBA.get_or_init(Jieba::new)
}

pub fn is_han(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF)
}

/// Calls `f` with each maximal run of letters and digits of `text`, and whether it is Han.
pub fn runs(text: &str, mut f: impl FnMut(&str, bool)) {
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_alphanumeric()) {
        rest = &rest[start..];
        let han = rest.starts_with(is_han);
        let end = rest
            .find(|c: char| !c.is_alphanumeric() || is_han(c) != han)
            .unwrap_or(rest.len());
        f(&rest[..end], han);
        rest = &rest[end..];
    }
}

/// A Latin-script run lower-cased into `buf`; `None` for one letter or a run with a digit.
pub fn lower<'b>(run: &str, buf: &'b mut String) -> Option<&'b str> {
    buf.clear();
    if run.is_ascii() {
        if run.len() < 2 || run.bytes().any(|b| b.is_ascii_digit()) {
            return None;
        }
        buf.push_str(run);
        buf.make_ascii_lowercase();
    } else {
        if run.chars().nth(1).is_none() || run.chars().any(char::is_numeric) {
            return None;
        }
        buf.extend(run.chars().flat_map(char::to_lowercase));
    }
    Some(buf)
}

/// The word a lower-cased Latin word stands for (plural cut), `None` for a stop word.
pub fn latin(lower: &str) -> Option<Cow<'_, str>> {
    if STOP_EN.binary_search(&lower).is_ok() {
        return None;
    }
    let n = lower.len();
    Some(if n > 4 && lower.ends_with("ies") {
        Cow::Owned(format!("{}y", &lower[..n - 3]))
    } else if n > 3
        && lower.ends_with('s')
        && !lower.ends_with("ss")
        && !lower.ends_with("us")
        && !lower.ends_with("is")
    {
        Cow::Borrowed(&lower[..n - 1])
    } else {
        Cow::Borrowed(lower)
    })
}

/// Whether a segmented Chinese word can define a problem.
pub fn han(word: &str) -> bool {
    word.chars().nth(1).is_some() && !STOP_ZH.contains(&word)
}

/// Calls `emit` with each word of `text` that can define a problem (see the module doc).
pub fn words(text: &str, mut emit: impl FnMut(&str)) {
    let mut buf = String::new();
    runs(text, |run, is_han| {
        if is_han {
            for token in jieba().cut(run, false) {
                if han(token.word) {
                    emit(token.word);
                }
            }
        } else if let Some(w) = lower(run, &mut buf).and_then(latin) {
            emit(&w);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        words(text, |w| out.push(w.to_owned()));
        out
    }

    #[test]
    fn stop_words_are_sorted_for_binary_search() {
        assert!(STOP_EN.windows(2).all(|w| w[0] < w[1]), "STOP_EN unsorted");
    }

    #[test]
    fn english_and_chinese_words() {
        for (text, want) in [
            (
                "Hello, the Printers on floor 3 are offline again!",
                &["printer", "offline"][..],
            ),
            ("VPN: 2FA codes rejected", &["vpn", "code", "rejected"][..]),
            ("Access status of x", &["access", "status"][..]),
            ("Café queries", &["café", "query"][..]),
            (
                "你好，上个月的发票抬头开错了，请重新开具发票。",
                &["上个月", "发票", "抬头", "重新", "开具", "发票"][..],
            ),
            ("VPN连接不上，打印机也坏了", &["vpn", "连接", "打印机"][..]),
        ] {
            assert_eq!(all(text), want, "{text}");
        }
    }
}

/// Hiragana, katakana (also half-width) and the katakana phonetic extensions.
pub fn is_kana(c: char) -> bool {
    matches!(c as u32, 0x3040..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F)
}

/// One term of a text for a classifier ([`terms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Term<'a> {
    /// A word of [`words`].
    Word(&'a str),
    /// Two neighbouring Latin-script words of [`words`].
    Pair(&'a str, &'a str),
    /// Two neighbouring characters of a Han or kana run.
    Chars(&'a str),
}

/// The terms of `text` for triage (pure): every word [`words`] gives, each pair of
/// neighbouring Latin-script words (stop words skipped, so `refund for order` pairs
/// `refund order`), and each pair of neighbouring characters of a Han run (jieba's
/// words miss unknown compounds; pairs catch them) or of a kana run (Japanese, which
/// jieba does not segment).
pub fn terms(text: &str, mut emit: impl FnMut(Term<'_>)) {
    let mut buf = String::new();
    let mut prev = String::new();
    runs(text, |run, han_run| {
        if han_run || run.chars().any(is_kana) {
            prev.clear();
            if han_run {
                for token in jieba().cut(run, false) {
                    if han(token.word) {
                        emit(Term::Word(token.word));
                    }
                }
            }
            let cjk = |c: char| is_han(c) || is_kana(c);
            let mut before: Option<(usize, char)> = None;
            for (i, c) in run.char_indices() {
                if let Some((j, b)) = before {
                    if cjk(b) && cjk(c) {
                        emit(Term::Chars(&run[j..i + c.len_utf8()]));
                    }
                }
                before = Some((i, c));
            }
        } else if let Some(w) = lower(run, &mut buf).and_then(latin) {
            emit(Term::Word(&w));
            if !prev.is_empty() {
                emit(Term::Pair(&prev, &w));
            }
            prev.clear();
            prev.push_str(&w);
        }
    });
}

#[cfg(test)]
mod term_tests {
    use super::*;

    fn all(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        terms(text, |t| {
            out.push(match t {
                Term::Word(w) => w.to_owned(),
                Term::Pair(a, b) => format!("{a}+{b}"),
                Term::Chars(c) => format!("[{c}]"),
            })
        });
        out
    }

    #[test]
    fn latin_words_and_pairs_han_words_and_character_pairs_kana_pairs() {
        for (text, want) in [
            (
                "Refund for order 123, please",
                &["refund", "order", "refund+order"][..],
            ),
            (
                "发票重复",
                &["发票", "重复", "[发票]", "[票重]", "[重复]"][..],
            ),
            ("VPN断开", &["vpn", "断开", "[断开]"][..]),
            ("プリンタ", &["[プリ]", "[リン]", "[ンタ]"][..]),
            ("a", &[][..]),
        ] {
            assert_eq!(all(text), want, "{text}");
        }
    }
}
