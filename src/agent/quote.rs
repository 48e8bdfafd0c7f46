//! Where the quoted history of a message starts: trimmed off a customer's message for
//! what agents see (issue 4, [`trim_quoted`]), cut off an agent's reply so that only what
//! the agent wrote reaches the customer (issue 11, [`cut_answer`], [`leaks_relay`]).
//!
//! [`trim_quoted`] — in: the text of a customer's message. Out: a prefix of it, trailing
//! whitespace trimmed. The full text stays on the ticket; this only shortens the display.
//! - The cut is at the first line, outside `>` quotes, that starts the history: an
//!   attribution (`On … wrote:`, `Am … schrieb …:`, `… 写道：`, also wrapped onto a second
//!   line as Gmail does), an Outlook or Foxmail separator (`-----Original Message-----`,
//!   `------------------ 原始邮件 ------------------`, a long `____` line before `From:`),
//!   or an Outlook header block (`From:`/`发件人:` with `Sent:`/`Date:` and `To:`/`Subject:`
//!   within the next four lines).
//! - Then trailing `>`-quoted and blank lines go. `>` lines followed by new text
//!   (interleaved or bottom-posted answers) are kept.
//! - A forward separator (`---------- Forwarded message ---------`, `Begin forwarded
//!   message:`, `转发的邮件`) before any of those keeps the whole text: forwarded mail is
//!   what the customer wants us to read. Outlook forwards look like replies and are
//!   trimmed; a caller that knows the subject is `FW:` may skip trimming.
//! - Signatures are kept. When trimming would leave nothing (a message that is only a
//!   quote), the whole text is returned with trailing whitespace trimmed.
//!
//! [`cut_answer`] — in: the body of an agent's reply to one of our mails (the text after
//! the command lines, `agent::commands::split_commands`). Out: a [`Cut`], the answer the
//! customer may receive. Stricter than `trim_quoted`, because what follows is our relay:
//! - Every mail we send agents starts its body with the relay marker ([`MARKER_EN`],
//!   [`MARKER_ZH_CN`]; [`marker`]). The cut is at the first line that is the marker (also
//!   `>`-quoted, indented, or wrapped onto two lines), that is `>`-quoted, or that starts
//!   the history by the rules of `trim_quoted` above (attributions, separators, header
//!   blocks). Interleaved or bottom-posted text is not kept: [`Cut::text_below`] says it
//!   was there. Forward separators do not stop the search.
//! - The agent's signature above the quote stays; a `-- ` signature right below a
//!   `>`-quoted relay (mutt's and Thunderbird's default place) is kept too.
//! - [`Cut::is_empty`]: nothing but whitespace, a `-- ` signature or a device line
//!   (`Sent from my iPhone`) is left: no answer.
//!
//! [`leaks_relay`] is the final check before an answer goes out: the marker or a line of
//! the relay's header block or help footer (the labels of
//! `templates/*/agent_notification.txt`) anywhere in the text.
//!
//! All pure: no I/O, no clock, and no input makes them panic.

use std::borrow::Cow;

use crate::model::Language;

/// The first body line of every mail we send an agent in English: what [`cut_answer`]
/// cuts at, and what [`leaks_relay`] refuses.
pub const MARKER_EN: &str = "-- reply above this line --";

/// The same in Chinese (`templates/zh-CN`).
pub const MARKER_ZH_CN: &str = "-- 请在此线以上回复 --";

/// The relay marker of the templates in `language`.
pub fn marker(language: Language) -> &'static str {
    match language {
        Language::En => MARKER_EN,
        Language::ZhCn => MARKER_ZH_CN,
    }
}

/// A line longer than this is prose, not an attribution.
const MAX_ATTRIBUTION_CHARS: usize = 300;

/// How many non-blank lines after `From:` may hold the rest of an Outlook header block.
const HEADER_BLOCK_LINES: usize = 4;

/// `On … wrote:` and its siblings: (start, must contain, end), compared in lower case.
const ATTRIBUTIONS: &[(&str, &str, &str)] = &[
    ("on ", "", " wrote:"),
    ("am ", " schrieb ", ":"),
    ("le ", "", " a écrit :"),
    ("le ", "", " a écrit:"),
    ("el ", "", " escribió:"),
    ("op ", " schreef ", ":"),
    ("", "", "写道："),
    ("", "", "写道:"),
    ("", "", "寫道："),
    ("", "", "寫道:"),
];

/// What is left between the dashes of a separator that starts the history.
const ORIGINAL_SEPARATORS: &[&str] = &[
    "original message",
    "original",
    "原始邮件",
    "原始郵件",
    "原邮件",
    "ursprüngliche nachricht",
    "message d'origine",
];

/// What is left of a forward separator once dashes and spaces are gone.
const FORWARD_SEPARATORS: &[&str] = &[
    "forwarded message",
    "begin forwarded message:",
    "转发的邮件",
    "转发邮件",
    "轉寄的郵件",
    "weitergeleitete nachricht",
    "message transféré",
];

/// Header names of the first line of an Outlook/Foxmail header block.
const FROM_KEYS: &[&str] = &["from", "发件人", "寄件者", "寄件人", "von", "de"];

/// Header names of the date line of the block.
const DATE_KEYS: &[&str] = &[
    "sent",
    "date",
    "发送时间",
    "时间",
    "日期",
    "寄件日期",
    "gesendet",
    "datum",
    "envoyé",
    "fecha",
    "enviado",
];

/// Header names of the recipient and subject lines of the block.
const TO_KEYS: &[&str] = &[
    "to",
    "cc",
    "subject",
    "收件人",
    "抄送",
    "主题",
    "收件者",
    "副本",
    "主旨",
    "an",
    "betreff",
    "à",
    "objet",
    "para",
    "asunto",
];

/// The new text of `text`, without the quoted history (see the module doc).
pub use crate::mail::parse::head;

pub fn trim_quoted(text: &str) -> &str {
    let lines: Vec<Line<'_>> = lines(text).collect();
    let end = match history_start(&lines) {
        History::Forwarded => return text.trim_end(),
        History::At(i) => lines[i].start,
        History::None => text.len(),
    };
    let kept = drop_trailing_quotes(&text[..end]);
    if kept.is_empty() {
        text.trim_end()
    } else {
        kept
    }
}

/// How many non-blank lines a `-- ` signature below a `>`-quoted relay may have (mutt
/// and Thunderbird put it there); a longer tail is text below the quote.
const MAX_SIGNATURE_LINES: usize = 10;

/// What [`leaks_relay`] reports of a line: at most this many characters of it.
const MAX_REPORTED_CHARS: usize = 80;

/// A device line a client adds on its own; alone, it is no answer.
const DEVICE_LINE_MAX_CHARS: usize = 60;

/// The relay marker reduced by [`marker_key`]: no white space, lower case, dashes plain;
/// and the words alone, for a client that dropped or changed the dashes.
const MARKER_KEYS: [(&str, &str, &str); 2] = [
    (MARKER_EN, "--replyabovethisline--", "replyabovethisline"),
    (MARKER_ZH_CN, "--请在此线以上回复--", "请在此线以上回复"),
];

/// A line of our relay's header block or help footer, as `templates/*/agent_notification.txt`
/// (and the SLA mails) write it; compared by [`relay_line`] in lower case, runs of white
/// space made one space, `：` read as `:`, `>` quote marks dropped.
enum RelayLine {
    /// The line starts with this label.
    Label(&'static str),
    /// The line starts with this label and also contains the second text: labels too
    /// common to refuse alone (`Status:`), with what our line always has beside them.
    LabelWith(&'static str, &'static str),
    /// The line starts with the first label, one word (letters, digits, `-`), then the
    /// second label (`Status:    open    Priority: high`).
    LabelWordLabel(&'static str, &'static str),
    /// The line contains this text anywhere (the help footer's sentences).
    Phrase(&'static str),
}

/// The relay's lines that [`leaks_relay`] refuses. Keep in step with the templates: the
/// unit test `relay_lines_are_all_caught` in `notify::templates` renders them.
const RELAY_LINES: &[RelayLine] = &[
    RelayLine::LabelWith("ticket:", "#"),
    RelayLine::LabelWordLabel("status:", "priority:"),
    RelayLine::Label("written by:"),
    RelayLine::Label("requester:"),
    RelayLine::Label("copied:"),
    RelayLine::Label("assignee:"),
    RelayLine::Label("sla due:"),
    RelayLine::Label("not attached (over the relay limit"),
    RelayLine::Label("reply to answer "),
    RelayLine::Phrase("reply address is your own"),
    RelayLine::Phrase("lets your answer and commands act"),
    RelayLine::Phrase("lines at the top act on the ticket"),
    RelayLine::Phrase("#status pending|resolved|closed"),
    RelayLine::Phrase("#tag word #cc address"),
    RelayLine::Phrase("#note (internal, not sent)"),
    // Similar tickets and knowledge-base articles (issue 16).
    RelayLine::LabelWith("similar:", "#"),
    RelayLine::LabelWith("kb article:", "#kb"),
    RelayLine::LabelWith("相似工单:", "#"),
    RelayLine::LabelWith("知识库文章:", "#kb"),
    RelayLine::LabelWith("工单:", "#"),
    RelayLine::LabelWordLabel("状态:", "优先级:"),
    RelayLine::LabelWith("本封来自:", "@"),
    RelayLine::LabelWith("客户:", "@"),
    RelayLine::LabelWith("抄送:", "@"),
    RelayLine::Label("处理人:"),
    RelayLine::Label("sla 期限:"),
    RelayLine::Label("未附上（超过转发大小限制"),
    RelayLine::Label("直接回复即可答复"),
    RelayLine::Phrase("回复地址是您个人专用的"),
    RelayLine::Phrase("凭它您的答复和命令才会生效"),
    RelayLine::Phrase("邮件开头的命令行用于操作工单"),
    RelayLine::Phrase("#tag 标签 #cc 地址"),
    RelayLine::Phrase("#note（内部备注，不发给客户）"),
    // Triage's guesses (issue 16).
    RelayLine::LabelWith("suggested:", "("),
    RelayLine::LabelWith("建议分类:", "("),
];

/// Which rule found the start of the quoted relay in an agent's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutRule {
    /// Our relay marker, as written, `>`-quoted, indented or wrapped onto two lines.
    Marker,
    /// A `>`-quoted line (mutt, Apple Mail's `> On … wrote:`, HTML-to-text blockquotes).
    Quote,
    /// `On … wrote:`, `在 … 写道：`, Apple Mail's `On <date>, at <time>, X wrote:`.
    Attribution,
    /// `-----Original Message-----`, `------------------ 原始邮件 ------------------`,
    /// `------------------&nbsp;Original&nbsp;------------------`.
    Separator,
    /// Outlook on the web: a line of `____` before `From:`.
    OutlookRule,
    /// A `From:`/`Sent:`/`To:`/`Subject:` block (Outlook; `发件人:`/`发送时间:` Foxmail, QQ Mail).
    HeaderBlock,
}

impl CutRule {
    /// A short name for events and logs: `marker`, `quote`, `attribution`, `separator`,
    /// `outlook-rule`, `header-block`.
    pub fn as_str(self) -> &'static str {
        match self {
            CutRule::Marker => "marker",
            CutRule::Quote => "quote",
            CutRule::Attribution => "attribution",
            CutRule::Separator => "separator",
            CutRule::OutlookRule => "outlook-rule",
            CutRule::HeaderBlock => "header-block",
        }
    }
}

/// An agent's reply cut at the start of the quoted relay (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// What the agent wrote above the quote, with its signature, trimmed at both ends;
    /// rule lines left hanging above the quote (`____`, a bare `--`) are dropped. A `-- `
    /// signature that came right below a `>`-quoted relay is appended after a blank line.
    pub answer: String,
    /// The rule of the line where the cut was made; `None`: nothing was cut, `answer` is
    /// the whole text, trimmed.
    pub rule: Option<CutRule>,
    /// Below or between the `>`-quoted relay there was text other than a signature
    /// (bottom-posting, interleaved answers): it was not kept, the agent should be told.
    /// Only known for `>`-quoted relays; Outlook-style quotes are not indented, so what
    /// follows them cannot be told apart from the relay.
    pub text_below: bool,
}

impl Cut {
    /// No answer: nothing is left but white space, a `-- ` signature (everything from a
    /// `-- ` line on) and device lines such as `Sent from my iPhone` / `发自我的iPhone`.
    pub fn is_empty(&self) -> bool {
        is_empty_answer(&self.answer)
    }

    /// Whether anything was cut.
    pub fn was_cut(&self) -> bool {
        self.rule.is_some()
    }
}

/// What an agent wrote above the quoted relay: `text` is the body of the agent's mail
/// after the command lines (`split_commands(…).body`). See the module doc for the rules;
/// [`leaks_relay`] is still the final check of the result.
pub fn cut_answer(text: &str) -> Cut {
    let lines: Vec<Line<'_>> = lines(text).collect();
    let Some((at, rule)) = relay_start(&lines) else {
        return Cut {
            answer: text.trim().to_owned(),
            rule: None,
            text_below: false,
        };
    };
    let mut answer = trim_hanging_rules(&text[..lines[at].start])
        .trim()
        .to_owned();
    let below = below_quote(text, &lines[at..], rule);
    if let Some(signature) = below.signature {
        if !answer.is_empty() {
            answer.push_str(if text.contains("\r\n") {
                "\r\n\r\n"
            } else {
                "\n\n"
            });
        }
        answer.push_str(signature);
    }
    Cut {
        answer,
        rule: Some(rule),
        text_below: below.text_below,
    }
}

/// The final check of an answer before it goes to a customer: `Some(what)` when `text`
/// still holds the relay marker (either language, any case, `>`-quoted, indented or
/// wrapped, with or without its dashes) or a line of the relay's header block or help
/// footer ([`RELAY_LINES`]); `what` names it and quotes at most 80 characters of the line.
pub fn leaks_relay(text: &str) -> Option<String> {
    let keys: String = lines(text).map(|line| marker_key(line.text)).collect();
    for (marker, with_dashes, words) in MARKER_KEYS {
        if keys.contains(with_dashes) || keys.contains(words) {
            return Some(format!("the relay marker {marker:?}"));
        }
    }
    lines(text).find(|line| relay_line(line.text)).map(|line| {
        let shown: String = plain(unquote(line.text))
            .chars()
            .take(MAX_REPORTED_CHARS)
            .collect();
        format!("a line of the relay {shown:?}")
    })
}

/// The first line of the quoted relay and the rule that found it. The header lines of a
/// forwarded message (right below a forward separator) start nothing: they are part of
/// what the agent passes on.
fn relay_start(lines: &[Line<'_>]) -> Option<(usize, CutRule)> {
    let mut forward_header_until = 0;
    for i in 0..lines.len() {
        let line = lines[i].text;
        if is_blank(line) {
            continue;
        }
        let rule = if is_marker_at(lines, i) {
            CutRule::Marker
        } else if is_quoted(line) {
            CutRule::Quote
        } else if is_attribution_at(lines, i) {
            CutRule::Attribution
        } else if is_original_separator(line) {
            CutRule::Separator
        } else if is_forward_separator(line) {
            forward_header_until = i + 2 + HEADER_BLOCK_LINES;
            continue;
        } else if i < forward_header_until {
            continue;
        } else if is_rule_before_header(lines, i) {
            CutRule::OutlookRule
        } else if is_header_block(lines, i) {
            CutRule::HeaderBlock
        } else {
            continue;
        };
        return Some((i, rule));
    }
    None
}

/// `line` without its `>` quote marks and the white space around them.
fn unquote(line: &str) -> &str {
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start_matches(is_space);
        match trimmed.strip_prefix('>') {
            Some(after) => rest = after,
            None => return trimmed,
        }
    }
}

/// White space, no-break spaces and the invisible marks HTML-to-text leaves.
fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}' | '\u{200c}' | '\u{200d}')
}

/// A line reduced for comparing with the marker: quote marks, white space, `&nbsp;` and
/// `*` (bold in HTML-to-text) gone, dashes plain (`—`, `–`, `－`), lower case.
fn marker_key(line: &str) -> String {
    marker_key_within(line, usize::MAX).unwrap_or_default()
}

/// [`marker_key`], or `None` as soon as the key grows longer than `max` bytes (then the
/// line holds no marker nor a part of one, and the rest of it is not read).
fn marker_key_within(line: &str, max: usize) -> Option<String> {
    let line = unquote(line);
    let line = if line.contains('&') {
        Cow::Owned(line.replace("&nbsp;", ""))
    } else {
        Cow::Borrowed(line)
    };
    let mut key = String::new();
    for c in line.chars() {
        match c {
            '—' | '–' => key.push_str("--"),
            '－' | '‐' | '‑' => key.push('-'),
            '*' => {}
            c if is_space(c) => {}
            c => key.extend(c.to_lowercase()),
        }
        if key.len() > max {
            return None;
        }
    }
    Some(key)
}

/// The longest marker key, in bytes.
const MAX_MARKER_KEY: usize = {
    let (a, b) = (MARKER_KEYS[0].1.len(), MARKER_KEYS[1].1.len());
    if a > b {
        a
    } else {
        b
    }
};

/// The marker on line `i`, or its first part there and the rest on the next line.
fn is_marker_at(lines: &[Line<'_>], i: usize) -> bool {
    let Some(here) = marker_key_within(lines[i].text, MAX_MARKER_KEY) else {
        return false;
    };
    if here.is_empty() {
        return false;
    }
    if MARKER_KEYS.iter().any(|(_, key, _)| here == *key) {
        return true;
    }
    let Some(next) = lines
        .get(i + 1)
        .and_then(|line| marker_key_within(line.text, MAX_MARKER_KEY))
    else {
        return false;
    };
    here.chars().count() > 2
        && !next.is_empty()
        && MARKER_KEYS.iter().any(|(_, key, _)| {
            key.len() == here.len() + next.len() && key.starts_with(&here) && key.ends_with(&next)
        })
}

/// A line of nothing but rule characters: `____`, `-----`, `──`, a bare `--`.
fn is_rule_line(line: &str) -> bool {
    let line = plain(line);
    !line.is_empty()
        && line.chars().all(|c| {
            matches!(c, '-' | '_' | '=' | '─' | '━' | '—' | '–' | '*' | '~') || c.is_whitespace()
        })
}

/// `head` without trailing white space and the rule lines left hanging at its end.
fn trim_hanging_rules(head: &str) -> &str {
    let mut kept = head.trim_end();
    loop {
        let start = kept.rfind('\n').map_or(0, |i| i + 1);
        if !is_rule_line(&kept[start..]) {
            return kept;
        }
        kept = kept[..start].trim_end();
    }
}

/// The signature separator `-- ` (also without its space, as HTML-to-text gives it).
fn is_signature_separator(line: &str) -> bool {
    line.trim() == "--"
}

/// `Sent from my iPhone` and its siblings: lines a client adds on its own.
fn is_device_line(line: &str) -> bool {
    let line = plain(line).to_lowercase();
    line.chars().count() <= DEVICE_LINE_MAX_CHARS
        && (line.starts_with("sent from my ")
            || line.starts_with("sent from outlook")
            || line.starts_with("sent from mail for windows")
            || line.starts_with("get outlook for ")
            || line.starts_with("发自我的")
            || (line.starts_with("从我的") && line.ends_with("发送")))
}

fn is_empty_answer(answer: &str) -> bool {
    lines(answer)
        .take_while(|line| !is_signature_separator(line.text))
        .all(|line| is_blank(line.text) || is_device_line(line.text) || is_rule_line(line.text))
}

/// What came after a `>`-quoted relay.
struct Below<'a> {
    /// A `-- ` signature right below the quote, trailing white space trimmed.
    signature: Option<&'a str>,
    text_below: bool,
}

/// The signature and the text below the quoted relay that starts `rest` (of `text`).
fn below_quote<'a>(text: &'a str, rest: &[Line<'a>], rule: CutRule) -> Below<'a> {
    let nothing = Below {
        signature: None,
        text_below: false,
    };
    // The attribution's own lines (one, or two when wrapped) are not the quote.
    let skip = match rule {
        CutRule::Attribution if is_attribution(&plain(rest[0].text)) => 1,
        CutRule::Attribution => 2,
        CutRule::Quote | CutRule::Marker => 0,
        _ => return nothing,
    };
    let quote = rest.get(skip..).unwrap_or_default();
    let first = quote.iter().find(|line| !is_blank(line.text));
    if !first.is_some_and(|line| is_quoted(line.text)) {
        // An attribution over an unindented quote, or an unquoted marker: what follows
        // is the relay itself.
        return nothing;
    }
    let Some(last) = quote.iter().rposition(|line| is_quoted(line.text)) else {
        return nothing;
    };
    let between = quote[..last]
        .iter()
        .any(|line| !is_blank(line.text) && !is_quoted(line.text));
    let tail = &quote[last + 1..];
    let Some(start) = tail.iter().position(|line| !is_blank(line.text)) else {
        return Below {
            signature: None,
            text_below: between,
        };
    };
    let tail = &tail[start..];
    let signature_lines = tail.iter().filter(|line| !is_blank(line.text)).count();
    let signature = &text[tail[0].start..];
    if is_signature_separator(tail[0].text)
        && signature_lines <= MAX_SIGNATURE_LINES + 1
        && !tail.iter().any(|line| is_quoted(line.text))
        && leaks_relay(signature).is_none()
    {
        Below {
            signature: Some(signature.trim_end()),
            text_below: between,
        }
    } else {
        Below {
            signature: None,
            text_below: true,
        }
    }
}

/// A line of our relay's header block or help footer (see [`RELAY_LINES`]).
fn relay_line(line: &str) -> bool {
    let line = plain(unquote(line))
        .to_lowercase()
        .replace('：', ":")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.is_empty() {
        return false;
    }
    RELAY_LINES.iter().any(|rule| match rule {
        RelayLine::Label(label) => line.starts_with(label),
        RelayLine::LabelWith(label, also) => {
            line.starts_with(label) && line[label.len()..].contains(also)
        }
        RelayLine::LabelWordLabel(label, second) => line.strip_prefix(label).is_some_and(|rest| {
            let mut words = rest.split_whitespace();
            let status = words.next().unwrap_or_default();
            !status.is_empty()
                && status.chars().all(|c| c.is_alphanumeric() || c == '-')
                && words.next().is_some_and(|w| w.starts_with(second))
        }),
        RelayLine::Phrase(phrase) => line.contains(phrase),
    })
}

/// One line: where it starts in the text, and its content without `\r\n`.
#[derive(Debug, Clone, Copy)]
struct Line<'a> {
    start: usize,
    text: &'a str,
}

enum History {
    /// The line at this index starts the quoted history.
    At(usize),
    /// A forward separator came first: keep everything.
    Forwarded,
    None,
}

fn lines(text: &str) -> impl Iterator<Item = Line<'_>> {
    text.split_inclusive('\n').scan(0, |start, raw| {
        let at = *start;
        *start += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        Some(Line {
            start: at,
            text: line.strip_suffix('\r').unwrap_or(line),
        })
    })
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// The text of a line with HTML-to-text leftovers (`&nbsp;`, no-break spaces) made plain
/// spaces and the ends trimmed.
fn plain(line: &str) -> Cow<'_, str> {
    if !line.contains(['&', '\u{a0}']) {
        return Cow::Borrowed(line.trim());
    }
    Cow::Owned(
        line.replace("&nbsp;", " ")
            .replace('\u{a0}', " ")
            .trim()
            .to_owned(),
    )
}

fn history_start(lines: &[Line<'_>]) -> History {
    for i in 0..lines.len() {
        let line = lines[i].text;
        if is_blank(line) || is_quoted(line) {
            continue;
        }
        if is_forward_separator(line) {
            return History::Forwarded;
        }
        if is_attribution_at(lines, i)
            || is_original_separator(line)
            || is_rule_before_header(lines, i)
            || is_header_block(lines, i)
        {
            return History::At(i);
        }
    }
    History::None
}

/// Everything up to the last line that is neither blank nor `>`-quoted, trailing
/// whitespace trimmed.
fn drop_trailing_quotes(text: &str) -> &str {
    let last = lines(text)
        .filter(|line| !is_blank(line.text) && !is_quoted(line.text))
        .last();
    match last {
        Some(line) => text[..line.start + line.text.len()].trim_end(),
        None => "",
    }
}

/// An attribution on line `i`, or starting on line `i` and wrapped onto the next one (Gmail
/// wraps long ones, usually inside the `<address>`).
fn is_attribution_at(lines: &[Line<'_>], i: usize) -> bool {
    let line = plain(lines[i].text);
    if is_attribution(&line) {
        return true;
    }
    let Some(next) = lines.get(i + 1).map(|l| plain(l.text)) else {
        return false;
    };
    // A wrapped attribution: the first half does not end a sentence, the second half is
    // not an attribution on its own (then the cut belongs there), and there is an address.
    let ends_sentence = line.ends_with(['.', '!', '?', '。', '！', '？']);
    if next.is_empty() || ends_sentence || is_attribution(&next) {
        return false;
    }
    let joined = if line.ends_with('<') {
        format!("{line}{next}")
    } else {
        format!("{line} {next}")
    };
    joined.contains('@') && is_attribution(&joined)
}

fn is_attribution(line: &str) -> bool {
    if line.chars().count() > MAX_ATTRIBUTION_CHARS || !line.contains(|c: char| c.is_numeric()) {
        return false;
    }
    let lower = line.to_lowercase();
    ATTRIBUTIONS.iter().any(|(start, middle, end)| {
        lower.starts_with(start)
            && lower.ends_with(end)
            && lower.len() > start.len() + end.len()
            && lower[start.len()..lower.len() - end.len()].contains(middle)
    })
}

/// The words between the dashes of `-----Original Message-----`, if the line is one.
fn between_dashes(line: &str) -> Option<String> {
    let line = plain(line);
    if !(line.starts_with("--") && line.ends_with("--")) {
        return None;
    }
    let inner = line.trim_matches(|c: char| c == '-' || c.is_whitespace());
    Some(inner.to_lowercase())
}

/// Longer lines (in bytes) are no forward or original-message separator: the longest,
/// `---------- Forwarded message ---------` and its translations, is under 60, and clients
/// pad them with dashes to 80 at most.
const MAX_SEPARATOR_LINE: usize = 200;

fn is_original_separator(line: &str) -> bool {
    if line.len() > MAX_SEPARATOR_LINE {
        return false;
    }
    between_dashes(line).is_some_and(|inner| ORIGINAL_SEPARATORS.contains(&inner.as_str()))
}

fn is_forward_separator(line: &str) -> bool {
    // The separators are short; a long line is none (and is not lower-cased here).
    if line.len() > MAX_SEPARATOR_LINE {
        return false;
    }
    let inner = between_dashes(line).unwrap_or_else(|| plain(line).to_lowercase());
    FORWARD_SEPARATORS.contains(&inner.as_str())
}

/// Outlook on the web: a line of underscores, then (blank lines aside) `From:`.
fn is_rule_before_header(lines: &[Line<'_>], i: usize) -> bool {
    let rule = lines[i].text.trim();
    if rule.len() < 10 || !rule.bytes().all(|b| b == b'_') {
        return false;
    }
    lines[i + 1..]
        .iter()
        .find(|line| !is_blank(line.text))
        .and_then(|line| header_key(line.text))
        .is_some_and(|key| FROM_KEYS.contains(&key.as_str()))
}

/// `From:` followed, within the next few non-blank lines, by a date line and a recipient or
/// subject line: the block Outlook, Foxmail and QQ Mail put above the quoted message.
fn is_header_block(lines: &[Line<'_>], i: usize) -> bool {
    if !header_key(lines[i].text).is_some_and(|key| FROM_KEYS.contains(&key.as_str())) {
        return false;
    }
    let keys: Vec<String> = lines[i + 1..]
        .iter()
        .filter(|line| !is_blank(line.text))
        .take(HEADER_BLOCK_LINES)
        .filter_map(|line| header_key(line.text))
        .collect();
    let has = |names: &[&str]| keys.iter().any(|key| names.contains(&key.as_str()));
    has(DATE_KEYS) && has(TO_KEYS)
}

/// The lower-cased name of a `Name: value` line, tolerant of the bold markers
/// (`*From:*`) HTML-to-text leaves and of the full-width colon.
fn header_key(line: &str) -> Option<String> {
    let line = line.trim_start().trim_start_matches('*');
    let colon = line.find([':', '：'])?;
    let key = line[..colon].trim().trim_end_matches('*').trim();
    if key.is_empty() || key.chars().count() > 20 {
        return None;
    }
    Some(key.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_history_of_common_clients() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "gmail",
                "Hi Bob,\n\nThe printer works again, thanks!\n\nAlice\n\n\
                 On Wed, Nov 25, 2026 at 10:00 AM ACME Support <support@acme.test> wrote:\n\n\
                 > Hi Alice,\n>\n> please restart the printer.\n>\n> Bob\n",
                "Hi Bob,\n\nThe printer works again, thanks!\n\nAlice",
            ),
            (
                "gmail, attribution wrapped inside the address",
                "It still prints blank pages.\r\n\r\n\
                 On Mon, Nov 24, 2026 at 10:00 AM Alice Martin <\r\n\
                 alice@customer.test> wrote:\r\n\r\n\
                 > Please try the new driver.\r\n",
                "It still prints blank pages.",
            ),
            (
                "gmail, wrapped before the address",
                "Sure, Tuesday works.\n\n\
                 On Mon, Nov 24, 2026 at 10:00 AM ACME Customer Support Team of Example\n\
                 <support@acme.test> wrote:\n> Can we call you on Tuesday?\n",
                "Sure, Tuesday works.",
            ),
            (
                "gmail, Chinese UI",
                "好的，谢谢！\n\n2026年11月25日周三 10:00，Alice <a@b.test> 写道：\n\n> 请重启打印机。\n",
                "好的，谢谢！",
            ),
            (
                "gmail, Chinese UI with 于",
                "已经试过了，还是不行。\n\n\
                 ACME Support <support@acme.test> 于2026年11月25日周三 10:00写道：\n\n\
                 > 请更新驱动程序。\n",
                "已经试过了，还是不行。",
            ),
            (
                "apple mail",
                "Yes, that was it.\n\nSent from my iPhone\n\n\
                 On 25 Nov 2026, at 10:00, ACME Support <support@acme.test> wrote:\n\n\
                 > Is the cable plugged in?\n",
                "Yes, that was it.\n\nSent from my iPhone",
            ),
            (
                "apple mail, Chinese",
                "收到，谢谢。\n\n\
                 在 2026年11月25日 10:00，ACME 支持 <support@acme.test> 写道：\n\n\
                 > 请检查网线。\n",
                "收到，谢谢。",
            ),
            (
                "thunderbird",
                "Attached is the log.\n\n-- \nAlice Martin\nCustomer Ltd.\n\n\
                 On 11/25/26 10:00, ACME Support wrote:\n> Could you send us the log?\n",
                "Attached is the log.\n\n-- \nAlice Martin\nCustomer Ltd.",
            ),
            (
                "chinese client without 在",
                "明白了。\n2026年11月25日 10:00，张伟 写道:\n> 打印机在三楼。",
                "明白了。",
            ),
            (
                "outlook desktop",
                "Hi Bob,\r\n\r\nThat fixed it.\r\n\r\nRegards,\r\nAlice\r\n\r\n\
                 From: ACME Support <support@acme.test>\r\n\
                 Sent: Wednesday, November 25, 2026 10:00 AM\r\n\
                 To: Alice Martin <alice@customer.test>\r\n\
                 Subject: RE: [ACME #42] Printer offline\r\n\r\n\
                 Hi Alice,\r\n\r\nplease restart the printer.\r\n",
                "Hi Bob,\r\n\r\nThat fixed it.\r\n\r\nRegards,\r\nAlice",
            ),
            (
                "outlook on the web",
                "Thanks, all good now.\n\n________________________________\n\
                 From: ACME Support <support@acme.test>\nSent: Wednesday, 25 November 2026 10:00\n\
                 To: Alice Martin <alice@customer.test>\nSubject: RE: [ACME #42] Printer offline\n\n\
                 Hi Alice,\n",
                "Thanks, all good now.",
            ),
            (
                "outlook, html to text with bold header names",
                "Works now.\n\n*From:* ACME Support <support@acme.test>\n\
                 *Sent:* Wednesday, November 25, 2026 10:00 AM\n*To:* Alice <alice@customer.test>\n\
                 *Subject:* RE: Printer\n\nHi Alice,\n",
                "Works now.",
            ),
            (
                "outlook, old style separator",
                "See attached.\n\n-----Original Message-----\nFrom: ACME Support\n\
                 Sent: Wednesday, November 25, 2026 10:00 AM\nTo: Alice\nSubject: RE: Printer\n",
                "See attached.",
            ),
            (
                "outlook, Chinese",
                "您好，\n\n问题已经解决了，谢谢！\n\n张伟\n\n\
                 发件人: ACME 支持 <support@acme.test>\n发送时间: 2026年11月25日 10:00\n\
                 收件人: 张伟 <zhang@customer.test>\n抄送: 李娜 <li@customer.test>\n\
                 主题: 回复: [ACME #42] 打印机无法连接\n\n张先生您好，\n",
                "您好，\n\n问题已经解决了，谢谢！\n\n张伟",
            ),
            (
                "outlook, Chinese with full-width colons",
                "好的。\n\n发件人： ACME 支持 <support@acme.test>\n发送时间： 2026年11月25日 星期三 10:00\n\
                 收件人： 张伟\n主题： 回复: 打印机\n\n您好，\n",
                "好的。",
            ),
            (
                "foxmail",
                "Thanks, it works now.\n\n------------------ Original ------------------\n\
                 From: \"ACME Support\"<support@acme.test>;\nDate: Wed, Nov 25, 2026 10:00 AM\n\
                 To: \"Zhang Wei\"<zhang@customer.test>;\nSubject: Re: [ACME #42] Printer\n\n\
                 Hi Zhang,\n",
                "Thanks, it works now.",
            ),
            (
                "foxmail / qq mail, Chinese",
                "好的，收到。\n\n------------------&nbsp;原始邮件&nbsp;------------------\n\
                 发件人:&nbsp;\"ACME 支持\"<support@acme.test>;\n\
                 发送时间:&nbsp;2026年11月25日(星期三) 上午10:00\n\
                 收件人:&nbsp;\"张伟\"<zhang@customer.test>;\n主题:&nbsp;回复: [ACME #42] 打印机\n",
                "好的，收到。",
            ),
            (
                "foxmail, Chinese without &nbsp;",
                "好的。\n------------------ 原始邮件 ------------------\n发件人: \"ACME\"<s@acme.test>;\n",
                "好的。",
            ),
            (
                "german",
                "Danke, funktioniert.\n\nAm 25.11.2026 um 10:00 schrieb ACME Support <support@acme.test>:\n> Bitte neu starten.\n",
                "Danke, funktioniert.",
            ),
            (
                "plain > quoting",
                "Yes, it is the printer on the 3rd floor.\n\n> Which printer is it?\n>\n> Bob\n\n",
                "Yes, it is the printer on the 3rd floor.",
            ),
            (
                "interleaved answers are kept",
                "> Which floor?\n3rd floor.\n> Which model?\nHP 4250.\n> Thanks\n",
                "> Which floor?\n3rd floor.\n> Which model?\nHP 4250.",
            ),
            (
                "only a quote keeps its text",
                "On Wed, Nov 25, 2026 at 10:00 AM Bob <bob@acme.test> wrote:\n> hello\n\n",
                "On Wed, Nov 25, 2026 at 10:00 AM Bob <bob@acme.test> wrote:\n> hello",
            ),
            (
                "bottom posting after the attribution keeps everything",
                "On 11/25/26 10:00, Bob wrote:\n> Is it fixed?\n\nYes, thanks.\n",
                "On 11/25/26 10:00, Bob wrote:\n> Is it fixed?\n\nYes, thanks.",
            ),
            (
                "forwards are kept whole",
                "Please see the vendor's answer below.\n\n---------- Forwarded message ---------\n\
                 From: Vendor <v@vendor.test>\nDate: Wed, Nov 25, 2026 at 10:00 AM\n\
                 Subject: Printer recall\nTo: <alice@customer.test>\n\nAll units are recalled.\n",
                "Please see the vendor's answer below.\n\n---------- Forwarded message ---------\n\
                 From: Vendor <v@vendor.test>\nDate: Wed, Nov 25, 2026 at 10:00 AM\n\
                 Subject: Printer recall\nTo: <alice@customer.test>\n\nAll units are recalled.",
            ),
            (
                "prose that looks a little like history is kept",
                "On Monday the printer failed again.\nMy colleague wrote: it is the driver.\n\
                 From: the 3rd floor\nPlease help.",
                "On Monday the printer failed again.\nMy colleague wrote: it is the driver.\n\
                 From: the 3rd floor\nPlease help.",
            ),
            (
                "a sentence before an attribution stays",
                "I tried again on 24 Nov.\nOn 11/25/26 10:00, Bob wrote:\n> x",
                "I tried again on 24 Nov.",
            ),
            ("empty", "", ""),
            ("blank", " \n\n", ""),
            ("leading blank lines are kept", "\n\nHello\n> q", "\n\nHello"),
        ];
        for (name, input, want) in cases {
            assert_eq!(trim_quoted(input), *want, "case: {name}");
        }
    }

    /// A relay as the templates write it (shortened), for the cases below.
    const RELAY: &str = "-- reply above this line --\n\n\
        Ticket:    [ACME #7] (ACME Support)\n\
        Status:    new    Priority: normal\n\
        Requester: Jane Doe <jane@customer.test>\n\
        Assignee:  nobody (reply with #assign me)\n\
        ------------------------------------------------------------------------\n\n\
        The printer on floor 3 is offline.\n\n\
        ------------------------------------------------------------------------\n\
        Reply to answer Jane Doe: the reply address is your own, it is what\n\
        lets your answer and commands act. Lines at the top act on the ticket:\n\
        #status pending|resolved|closed  #assign me|NAME|none  #priority high\n";

    fn quoted(text: &str) -> String {
        text.lines()
            .map(|l| {
                if l.is_empty() {
                    ">".to_owned()
                } else {
                    format!("> {l}")
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn cuts_agents_replies_at_the_relay() {
        let q = quoted(RELAY);
        let outlook = RELAY.replace('\n', "\r\n");
        let cases: Vec<(&str, String, &str, Option<CutRule>)> = vec![
            (
                "mutt: attribution, > quote, signature below",
                format!("Thanks, restarted.\n\nOn Wed, Nov 25, 2026 at 10:00:00AM +0100, Jane Doe via ACME Support wrote:\n{q}\n\n-- \nAlice Agent\nACME Support\n"),
                "Thanks, restarted.\n\n-- \nAlice Agent\nACME Support",
                Some(CutRule::Attribution),
            ),
            (
                "signature above the quote stays",
                format!("Answer.\n\n-- \nAlice\n\nOn 25/11/2026 10:00, Jane Doe via ACME Support wrote:\n{q}\n"),
                "Answer.\n\n-- \nAlice",
                Some(CutRule::Attribution),
            ),
            (
                "quoted marker without attribution",
                format!("Done.\n{q}"),
                "Done.",
                Some(CutRule::Marker),
            ),
            (
                "unquoted marker (a client that does not indent)",
                format!("Done.\n\n{RELAY}"),
                "Done.",
                Some(CutRule::Marker),
            ),
            (
                "marker indented and wrapped",
                "Done.\n\n    -- reply above\n    this line --\n    Ticket: x\n".to_owned(),
                "Done.",
                Some(CutRule::Marker),
            ),
            (
                "marker quoted twice, upper case",
                "Done.\n>> -- REPLY ABOVE THIS LINE --\n".to_owned(),
                "Done.",
                Some(CutRule::Marker),
            ),
            (
                "Chinese marker",
                "好的，已处理。\n\n-- 请在此线以上回复 --\n\n工单：    [ACME #7]\n".to_owned(),
                "好的，已处理。",
                Some(CutRule::Marker),
            ),
            (
                "apple mail: attribution inside the quote",
                format!("Fixed.\n\nAlice\n\n> On 25 Nov 2026, at 10:00, Jane Doe via ACME Support <support@example.test> wrote:\n> \n{q}\n"),
                "Fixed.\n\nAlice",
                Some(CutRule::Quote),
            ),
            (
                "gmail: attribution wrapped, bare -- from HTML to text",
                format!("Hi Jane,\n\nDone.\n\n--\nAlice Agent\n\nOn Wed, Nov 25, 2026 at 10:00 AM Jane Doe via ACME Support <\nsupport@example.test> wrote:\n\n{q}\n"),
                "Hi Jane,\n\nDone.\n\n--\nAlice Agent",
                Some(CutRule::Attribution),
            ),
            (
                "outlook desktop: header block, CRLF",
                format!("Hi Jane,\r\n\r\nDone.\r\n\r\nAlice\r\n\r\nFrom: Jane Doe via ACME Support <support@example.test> \r\nSent: Wednesday, November 25, 2026 10:00 AM\r\nTo: Alice Agent <alice@example.test>\r\nSubject: [ACME #7] Printer offline\r\n\r\n{outlook}"),
                "Hi Jane,\r\n\r\nDone.\r\n\r\nAlice",
                Some(CutRule::HeaderBlock),
            ),
            (
                "outlook desktop, plain text: -----Original Message-----",
                format!("Done.\n\n-----Original Message-----\nFrom: Jane Doe via ACME Support <support@example.test> \nSent: Wednesday, November 25, 2026 10:00 AM\n\n{RELAY}"),
                "Done.",
                Some(CutRule::Separator),
            ),
            (
                "outlook on the web: ____ before From:",
                format!("Done.\n\nAlice Agent\n\n________________________________\nFrom: Jane Doe via ACME Support <support@example.test>\nSent: Wednesday, November 25, 2026 10:00\nTo: Alice Agent <alice@example.test>\nSubject: [ACME #7] Printer offline\n\n{RELAY}"),
                "Done.\n\nAlice Agent",
                Some(CutRule::OutlookRule),
            ),
            (
                "outlook on the web, HTML to text: a hanging rule line goes",
                format!("Done.\n\n──────────\n**From:** Jane Doe via ACME Support <support@example.test>\n**Sent:** Wednesday, November 25, 2026 10:00\n**To:** Alice Agent <alice@example.test>\n**Subject:** [ACME #7] Printer offline\n\n{RELAY}"),
                "Done.",
                Some(CutRule::HeaderBlock),
            ),
            (
                "foxmail: Chinese header block with full-width colons",
                format!("好的。\n\nli.na@example.test\n\n发件人： Jane Doe via ACME Support\n发送时间： 2026-11-25 10:00\n收件人： li.na\n主题： [ACME #7] Printer offline\n{RELAY}"),
                "好的。\n\nli.na@example.test",
                Some(CutRule::HeaderBlock),
            ),
            (
                "qq mail: &nbsp; separator",
                format!("好的。\n\n------------------&nbsp;原始邮件&nbsp;------------------\n发件人:&nbsp;\"Jane Doe via ACME Support\"<support@example.test>;\n{RELAY}"),
                "好的。",
                Some(CutRule::Separator),
            ),
            (
                "foxmail English: Original separator",
                format!("OK.\n\n------------------ Original ------------------\nFrom:  \"Jane Doe via ACME Support\"<support@example.test>;\n{RELAY}"),
                "OK.",
                Some(CutRule::Separator),
            ),
            (
                "Chinese attribution",
                format!("收到。\n\n在 2026年11月25日 10:00，Jane Doe via ACME Support <support@example.test> 写道：\n\n{q}\n"),
                "收到。",
                Some(CutRule::Attribution),
            ),
            (
                "a forwarded message in the answer is kept up to the relay",
                format!("See the vendor's note.\n\n---------- Forwarded message ---------\nFrom: Vendor <v@vendor.test>\nDate: Wed, Nov 25, 2026 at 9:00 AM\nSubject: Recall\nTo: <alice@example.test>\n\nAll units are recalled.\n\nOn Wed, Nov 25, 2026 at 10:00 AM Jane Doe <support@example.test> wrote:\n{q}\n"),
                "See the vendor's note.\n\n---------- Forwarded message ---------\nFrom: Vendor <v@vendor.test>\nDate: Wed, Nov 25, 2026 at 9:00 AM\nSubject: Recall\nTo: <alice@example.test>\n\nAll units are recalled.",
                Some(CutRule::Attribution),
            ),
            (
                "no quote at all",
                "  Just an answer.\n\n".to_owned(),
                "Just an answer.",
                None,
            ),
            ("empty", String::new(), "", None),
        ];
        for (name, input, want, rule) in &cases {
            let cut = cut_answer(input);
            assert_eq!(cut.answer, *want, "case: {name}");
            assert_eq!(cut.rule, *rule, "case: {name}");
            assert!(!cut.text_below, "case: {name}");
            assert_eq!(leaks_relay(&cut.answer), None, "case: {name}");
            assert_eq!(cut.is_empty(), want.is_empty(), "case: {name}");
        }
    }

    #[test]
    fn command_only_replies_are_empty() {
        let q = quoted(RELAY);
        let cases = [
            format!("On Wed, Nov 25, 2026 at 10:00:00AM +0100, Jane Doe via ACME Support wrote:\n{q}\n\n-- \nAlice Agent\n"),
            format!("\n\nSent from my iPhone\n\nOn 25 Nov 2026, at 10:00, Jane Doe via ACME Support <support@example.test> wrote:\n\n{q}"),
            format!("发自我的iPhone\n\n------------------ 原始邮件 ------------------\n发件人: x\n{RELAY}"),
            format!("--\nAlice\n\n________________________________\nFrom: Jane\nSent: today 10:00\nTo: Alice\n{RELAY}"),
            format!("   \n{RELAY}"),
            "\n \n".to_owned(),
        ];
        for input in &cases {
            let cut = cut_answer(input);
            assert!(cut.is_empty(), "{input:?} gave {cut:?}");
            assert_eq!(leaks_relay(&cut.answer), None, "{input:?}");
        }
        assert_eq!(cut_answer(&cases[0]).answer, "-- \nAlice Agent");
    }

    #[test]
    fn text_below_the_quote_is_reported_not_kept() {
        let q = quoted(RELAY);
        let bottom = cut_answer(&format!(
            "On Wed, Nov 25, 2026 at 10:00 AM Jane <support@example.test> wrote:\n{q}\n\nMy answer is below.\n"
        ));
        assert_eq!((bottom.answer.as_str(), bottom.text_below), ("", true));
        assert!(bottom.is_empty());
        let interleaved = cut_answer("Hi,\n> Which floor?\n3rd.\n> Which model?\n");
        assert_eq!(
            (interleaved.answer.as_str(), interleaved.text_below),
            ("Hi,", true)
        );
        let long_tail = format!("Hi.\n{q}\n-- \n{}", "line\n".repeat(20));
        assert!(cut_answer(&long_tail).text_below);
        assert_eq!(cut_answer(&long_tail).answer, "Hi.");
    }

    #[test]
    fn leaks_of_the_relay_are_found() {
        let leaks = [
            "Done.\n-- reply above this line --",
            "Done.\n> -- Reply Above This Line --\n",
            "Done.\n> -- reply above\n> this line --\n",
            "Done. — reply above this line —",
            "好的\n> > -- 请在此线以上回复 --",
            "Done.\n\n> Requester: Jane Doe <jane@customer.test>\n",
            "Assignee:  nobody (reply with #assign me)",
            "Ticket:    [ACME #7] (ACME Support)",
            "  Status:    new    Priority: normal",
            "    requester: jane@customer.test",
            "Reply to answer Jane Doe: the reply address is your own, it is what",
            "lets your answer and commands act. Lines at the top act on the ticket:",
            "#status pending|resolved|closed  #assign me|NAME|none  #priority high",
            "客户：    张伟 <zhang@customer.test>",
            "处理人：  未分配（回复 #assign me 认领）",
            "状态：    new    优先级：normal",
            "> 邮件开头的命令行用于操作工单：",
            "直接回复即可答复 张伟：回复地址是您个人专用的，凭它您的答复和命令才会生效。",
        ];
        for text in leaks {
            assert!(leaks_relay(text).is_some(), "not caught: {text:?}");
        }
        assert_eq!(
            leaks_relay("x\n> Requester: Jane Doe <jane@customer.test>").as_deref(),
            Some("a line of the relay \"Requester: Jane Doe <jane@customer.test>\"")
        );
        assert_eq!(
            leaks_relay("> -- reply above this line --").as_deref(),
            Some("the relay marker \"-- reply above this line --\"")
        );
        let fine = [
            "",
            "Hi Jane,\n\nStatus: fixed. Priority: none needed.\nTicket #7 is closed.\n\n-- \nAlice",
            "The assignee of your order is Bob.\nPlease reply above the line in the form.",
            "客户：张先生\n状态：已解决",
            "Attached: the invoice.",
        ];
        for text in fine {
            assert_eq!(leaks_relay(text), None, "{text:?}");
        }
    }

    #[test]
    fn markers_reduce_to_their_keys() {
        for (marker, key, words) in MARKER_KEYS {
            assert_eq!(marker_key(marker), key);
            assert_eq!(key.trim_matches('-'), words);
        }
        assert_eq!(marker(Language::En), MARKER_EN);
        assert_eq!(marker(Language::ZhCn), MARKER_ZH_CN);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// History openers of every kind the module knows.
        fn opener() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "On Wed, Nov 25, 2026 at 10:00 AM Bob <bob@acme.test> wrote:",
                "On Mon, Nov 24, 2026 at 10:00 AM Alice Martin <\nalice@customer.test> wrote:",
                "On 11/25/26 10:00, Bob wrote:",
                "在 2026年11月25日 10:00，张伟 <zhang@x.test> 写道：",
                "2026年11月25日周三 10:00，Alice <a@b.test> 写道：",
                "-----Original Message-----\nFrom: Bob\nSent: today 10:00\nTo: Alice",
                "________________________________\nFrom: Bob\nSent: 10:00\nTo: Alice",
                "From: Bob <bob@acme.test>\nSent: Wednesday 10:00\nTo: Alice\nSubject: RE: x",
                "发件人： Bob\n发送时间： 2026年11月25日\n收件人： 张伟\n主题： 回复",
                "------------------&nbsp;原始邮件&nbsp;------------------\n发件人: Bob",
                "------------------ Original ------------------\nFrom: Bob",
                "Am 25.11.2026 um 10:00 schrieb Bob <bob@acme.test>:",
            ])
        }

        proptest! {
            /// Strangers' text never panics; the result is a prefix without trailing
            /// whitespace, empty only for blank input, and trimming twice changes nothing.
            #[test]
            fn never_panics_and_returns_a_prefix(text in "\\PC{0,300}|[>\\-_ \r\nOnwrote:写道发件人Fm0-9@<]{0,300}") {
                let kept = trim_quoted(&text);
                prop_assert!(text.starts_with(kept));
                prop_assert_eq!(kept, kept.trim_end());
                prop_assert_eq!(kept.is_empty(), text.trim().is_empty());
                prop_assert_eq!(trim_quoted(kept), kept);
            }

            /// No input makes `cut_answer` or `leaks_relay` panic; the answer is trimmed.
            #[test]
            fn cutting_never_panics(text in "\\PC{0,300}|[>\\-_ \r\nOnwrote:写道发件人Fm0-9@<请在此线以上回复replyabovethsn]{0,300}") {
                let cut = cut_answer(&text);
                prop_assert_eq!(cut.answer.trim(), cut.answer.as_str());
                let _ = leaks_relay(&text);
                let _ = cut.is_empty();
            }

            /// An answer, any opener, the marker-led relay quoted or not: exactly the answer
            /// is kept, and nothing of the relay.
            #[test]
            fn the_answer_survives_any_relay_quote(
                new in prop::collection::vec("[a-zA-Z你好谢谢][a-zA-Z0-9 ,你好谢谢]{0,30}", 1..4),
                blank in "[ \r\n]{0,4}",
                opener in prop::option::of(opener()),
                quote in any::<bool>(),
                chinese in any::<bool>(),
                crlf in any::<bool>(),
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let new = new.join(eol);
                let marker = if chinese { MARKER_ZH_CN } else { MARKER_EN };
                let relay = format!("{marker}\n\nRequester: Jane <jane@customer.test>\nThe printer.\n");
                let relay = if quote { super::quoted(&relay) } else { relay };
                let opener = opener.map(|o| format!("{o}\n")).unwrap_or_default();
                let text = format!("{new}{eol}{blank}{opener}{relay}").replace("\r\n", "\n").replace('\n', eol);
                let cut = cut_answer(&text);
                prop_assert_eq!(cut.answer.as_str(), new.trim());
                prop_assert_eq!(leaks_relay(&cut.answer), None);
                prop_assert!(cut.was_cut());
            }

            /// New text, any opener, any quoted history: exactly the new text is kept.
            #[test]
            fn new_text_survives_any_history(
                new in prop::collection::vec("[a-zA-Z你好谢谢][a-zA-Z0-9 ,你好谢谢]{0,30}", 1..4),
                blank in "[ \r\n]{0,4}",
                opener in opener(),
                quoted in prop::collection::vec("> ?\\PC{0,20}|[ \t]*", 0..5),
                crlf in any::<bool>(),
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let new = new.join(eol);
                let opener = opener.replace('\n', eol);
                let text = format!("{new}{eol}{blank}{opener}{eol}{}", quoted.join(eol));
                prop_assert_eq!(trim_quoted(&text), new.trim_end());
            }
        }
    }
}
