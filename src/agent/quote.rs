//! Trims the quoted history off a customer's message, for what agents see (issue 4).
//!
//! In: the text of a message. Out: a prefix of it, trailing whitespace trimmed. The full
//! text stays on the ticket; this only shortens the display.
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
//! - Pure: no I/O, no clock, and no input makes it panic.

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
fn plain(line: &str) -> String {
    line.replace("&nbsp;", " ")
        .replace('\u{a0}', " ")
        .trim()
        .to_owned()
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

fn is_original_separator(line: &str) -> bool {
    between_dashes(line).is_some_and(|inner| ORIGINAL_SEPARATORS.contains(&inner.as_str()))
}

fn is_forward_separator(line: &str) -> bool {
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
