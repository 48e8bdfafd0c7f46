//! Agent command lines: `#status pending`, `#assign bob`… at the top of an agent's mail
//! (issue 4).
//!
//! In: the text of an agent's answer. Out: a [`Split`]: the commands, the refused command
//! lines, and the body that may go to the customer.
//! - Only the leading block counts: leading blank lines are skipped, then every line whose
//!   first visible character is `#` or `＃` is a command line (blank lines in between are
//!   allowed). The first other non-blank line ends the block; a `#word` after it is text.
//! - `#` followed by a digit (`#42 is broken`, also `# 42`) is text, not a command.
//! - Every command line becomes exactly one [`Command`] or one [`CommandError`], and is never
//!   part of `body`: a typo such as `#stauts` is refused, it does not reach the customer.
//! - `body` is a suffix of the input: the text after the block, leading blank lines dropped.
//! - Command names are case-insensitive; full-width forms (`＃ｓｔａｔｕｓ`, `：`, `，`) are read
//!   as their ASCII twins; `\r\n` and trailing spaces are fine.
//! - Bounded (DESIGN.md invariant 6, `[limits]`): at most `max_command_lines` command
//!   lines are read, at most `max_command_words` words of each; what is left is counted in
//!   [`Split::unread`] (it never reaches `body` either), for the caller to say so. The work
//!   is linear in the input, and every text kept (a refused line, a value quoted in a
//!   reason) is cut to a few dozen characters.
//! - Pure: no I/O, no clock, and no input makes it panic. Agent names are checked by the
//!   caller, which knows the agents.

use std::borrow::Cow;
use std::collections::HashSet;
use std::str::FromStr;

use crate::limits::Limits;
use crate::model::{Priority, Status, TicketId};

/// The statuses an agent may set by mail; `archived` belongs to the archiver.
const SETTABLE: [Status; 5] = [
    Status::New,
    Status::Open,
    Status::Pending,
    Status::Resolved,
    Status::Closed,
];

/// Every command name, for the "unknown command" hint.
const NAMES: [&str; 12] = [
    "status", "assign", "priority", "tag", "untag", "cc", "to", "note", "merge", "link", "kb",
    "macro",
];

/// Longer tags are refused: a tag is a label, not a sentence.
const MAX_TAG_CHARS: usize = 64;

/// Longer agent names are refused (no agent is called that).
const MAX_AGENT_CHARS: usize = 64;

/// Longer addresses are refused (RFC 5321 allows 254 octets in a path).
const MAX_ADDRESS_CHARS: usize = 254;

/// A refused line is kept with at most this many characters, a value quoted in a reason
/// with at most [`MAX_QUOTED_CHARS`]; `…` marks the cut.
const MAX_LINE_CHARS: usize = 200;
const MAX_QUOTED_CHARS: usize = 64;

/// One action an agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    SetStatus(Status),
    Assign(Assignee),
    SetPriority(Priority),
    /// Lower-cased, without duplicates, in the order written.
    AddTags(Vec<String>),
    RemoveTags(Vec<String>),
    /// Addresses as written, without duplicates.
    AddCc(Vec<String>),
    /// `#cc -tom@x`: these participants are copied no more (addresses without the `-`).
    RemoveCc(Vec<String>),
    /// `#to jane@x`: this answer goes to these participants only, not to everyone.
    To(Vec<String>),
    /// The whole mail is an internal note: nothing goes to the customer.
    Note,
    Merge(TicketId),
    Link(TicketId),
    /// `#kb NAME`: the knowledge-base article's text goes into the answer (issue 16). The
    /// name is lower-cased; the caller checks that the article exists.
    Kb(String),
    /// `#macro NAME`: a saved set of command lines plus text (issue 16); checked by the
    /// caller, like `Kb`.
    Macro(String),
}

/// Who `#assign` names. `Agent` is one word as written; the caller checks it is an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    Me,
    Nobody,
    Agent(String),
}

/// A command line that was refused; it still never reaches the customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}: {reason}")]
pub struct CommandError {
    /// The command line as written, surrounding whitespace trimmed (at most 200
    /// characters, `…` marking a cut).
    pub line: String,
    /// Why it was refused, e.g. `unknown command #stauts (did you mean #status?)`.
    pub reason: String,
}

/// An agent's mail split into its command block and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<'a> {
    pub commands: Vec<Command>,
    pub errors: Vec<CommandError>,
    /// The text after the command block, leading blank lines dropped: a suffix of the input.
    pub body: &'a str,
    /// What the limits left unread in the block.
    pub unread: Unread,
}

/// What [`split_commands`] did not read: neither acted on nor refused one by one, and
/// never part of the body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unread {
    /// Command lines of the block after the first `max_command_lines`.
    pub lines: usize,
    /// Words after the first `max_command_words` of a line, over the lines read.
    pub words: usize,
    /// The two limits, for [`Unread::describe`].
    max_lines: usize,
    max_words: usize,
}

impl Unread {
    /// What was not read, for an event and the agent's mail: `3 command lines after the
    /// first 50 were not read; 79900 words after the first 100 of a command line were not
    /// read`. `None` when everything was read.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.lines > 0 {
            parts.push(format!(
                "{} command {} after the first {} {} not read",
                self.lines,
                plural(self.lines, "line", "lines"),
                self.max_lines,
                plural(self.lines, "was", "were"),
            ));
        }
        if self.words > 0 {
            parts.push(format!(
                "{} {} after the first {} of a command line {} not read",
                self.words,
                plural(self.words, "word", "words"),
                self.max_words,
                plural(self.words, "was", "were"),
            ));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

fn plural<'s>(n: usize, one: &'s str, many: &'s str) -> &'s str {
    if n == 1 {
        one
    } else {
        many
    }
}

impl Command {
    /// One line for the agent's result mail, in the form that parses back to this command:
    /// `#status pending`, `#assign bob`, `#tag billing refund`, `#merge 42`.
    pub fn describe(&self) -> String {
        match self {
            Command::SetStatus(status) => format!("#status {}", status.as_str()),
            Command::Assign(Assignee::Me) => "#assign me".to_owned(),
            Command::Assign(Assignee::Nobody) => "#assign none".to_owned(),
            Command::Assign(Assignee::Agent(name)) => format!("#assign {name}"),
            Command::SetPriority(priority) => format!("#priority {}", priority.as_str()),
            Command::AddTags(tags) => format!("#tag {}", tags.join(" ")),
            Command::RemoveTags(tags) => format!("#untag {}", tags.join(" ")),
            Command::AddCc(addresses) => format!("#cc {}", addresses.join(" ")),
            Command::RemoveCc(addresses) => {
                let minus: Vec<String> = addresses.iter().map(|a| format!("-{a}")).collect();
                format!("#cc {}", minus.join(" "))
            }
            Command::To(addresses) => format!("#to {}", addresses.join(" ")),
            Command::Note => "#note".to_owned(),
            Command::Merge(ticket) => format!("#merge {}", ticket.get()),
            Command::Link(ticket) => format!("#link {}", ticket.get()),
            Command::Kb(name) => format!("#kb {name}"),
            Command::Macro(name) => format!("#macro {name}"),
        }
    }
}

/// Splits the leading command block off an agent's mail, reading at most
/// `limits.max_command_lines` command lines and `limits.max_command_words` words of each.
pub fn split_commands<'a>(text: &'a str, limits: &Limits) -> Split<'a> {
    let mut commands = Vec::new();
    let mut errors = Vec::new();
    let mut unread = Unread {
        max_lines: limits.max_command_lines,
        max_words: limits.max_command_words,
        ..Unread::default()
    };
    let mut read = 0;
    for (start, line) in lines(text) {
        if is_blank(line) {
            continue;
        }
        if !is_command_line(line) {
            return Split {
                commands,
                errors,
                body: &text[start..],
                unread,
            };
        }
        if read == limits.max_command_lines {
            unread.lines += 1;
            continue;
        }
        read += 1;
        let (parsed, dropped) = parse_line(line, limits.max_command_words);
        unread.words += dropped;
        match parsed {
            Ok(command) => commands.push(command),
            Err(reason) => errors.push(CommandError {
                line: cut(line.trim_matches(is_space), MAX_LINE_CHARS).into_owned(),
                reason,
            }),
        }
    }
    Split {
        commands,
        errors,
        body: &text[text.len()..],
        unread,
    }
}

/// `s` with at most `max` characters, `…` marking a cut.
fn cut(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((end, _)) => Cow::Owned(format!("{}…", &s[..end])),
    }
}

/// A value as a reason quotes it: `"done"`, cut to [`MAX_QUOTED_CHARS`].
fn quoted(value: &str) -> String {
    format!("{:?}", cut(value, MAX_QUOTED_CHARS))
}

/// Lines with the byte offset where each starts; the `\n` and a `\r` before it are left out.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n').scan(0, |start, raw| {
        let at = *start;
        *start += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        Some((at, line.strip_suffix('\r').unwrap_or(line)))
    })
}

/// Whitespace, and the invisible marks that HTML-to-text and some clients leave at the
/// start of a line (byte order mark, zero-width space).
fn is_space(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{feff}' | '\u{200b}')
}

fn is_blank(line: &str) -> bool {
    line.chars().all(is_space)
}

fn is_hash(c: char) -> bool {
    matches!(c, '#' | '＃')
}

/// `#word…` is a command line; `#42 …` and `# 42 …` are text (a ticket reference).
fn is_command_line(line: &str) -> bool {
    let mut rest = line.trim_start_matches(is_space).chars();
    if !rest.next().is_some_and(is_hash) {
        return false;
    }
    !rest
        .as_str()
        .trim_start_matches(is_space)
        .starts_with(char::is_numeric)
}

/// Reads full-width ASCII (U+FF01–U+FF5E) as ASCII: Chinese input methods in full-width
/// mode type `＃ｓｔａｔｕｓ` and `，`.
fn fold_fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Parses one command line (already known to start with `#`) into a command, or the reason
/// it is refused, reading at most `max_words` words of its value; also returns how many
/// words were left.
fn parse_line(line: &str, max_words: usize) -> (Result<Command, String>, usize) {
    let folded = fold_fullwidth(line);
    let after_hash = folded.trim_start_matches(is_space);
    let after_hash = after_hash.strip_prefix('#').unwrap_or(after_hash);
    let after_hash = after_hash.trim_start_matches(is_space);
    let name_end = after_hash
        .find(|c: char| is_space(c) || c == ':')
        .unwrap_or(after_hash.len());
    let (name, rest) = after_hash.split_at(name_end);
    let value = rest
        .strip_prefix(':')
        .unwrap_or(rest)
        .trim_matches(is_space);
    let (value, dropped) = first_words(value, max_words);
    (parse_command(name, value), dropped)
}

/// The command `name` (as written after the `#`) with `value`.
fn parse_command(name: &str, value: &str) -> Result<Command, String> {
    match name.to_lowercase().as_str() {
        "" => Err(format!(
            "missing command name after # (commands: {})",
            list_names()
        )),
        "status" => parse_status(value).map(Command::SetStatus),
        "assign" => parse_assignee(value).map(Command::Assign),
        "priority" => parse_priority(value).map(Command::SetPriority),
        "tag" => parse_tags(value).map(Command::AddTags),
        "untag" => parse_tags(value).map(Command::RemoveTags),
        "cc" => parse_cc(value),
        "to" => parse_addresses(value).map(Command::To),
        "note" if value.is_empty() => Ok(Command::Note),
        "note" => Err("#note takes no value (write the note below the command lines)".to_owned()),
        "merge" => parse_ticket(value).map(Command::Merge),
        "link" => parse_ticket(value).map(Command::Link),
        "kb" => parse_name("#kb", "article", value).map(Command::Kb),
        "macro" => parse_name("#macro", "macro", value).map(Command::Macro),
        _ => Err(unknown_command(name)),
    }
}

/// Letters, digits, `-`, `_` and `.`, at most 64 characters: a name `#kb` and `#macro`
/// accept (and that articles and macros must have).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// One name of an article or macro: letters, digits, `-`, `_` and `.`, lower-cased.
fn parse_name(command: &str, what: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("missing {what} name ({command} NAME)"));
    }
    let name = value.to_lowercase();
    if value.contains(is_space) || !valid_name(&name) {
        return Err(format!(
            "invalid {what} name {} ({command} takes one name: letters, digits, -, _ and .)",
            quoted(value)
        ));
    }
    Ok(name)
}

fn list_names() -> String {
    NAMES.map(|n| format!("#{n}")).join(", ")
}

fn unknown_command(name: &str) -> String {
    let shown = cut(name, MAX_QUOTED_CHARS);
    match closest_name(name) {
        Some(known) => format!("unknown command #{shown} (did you mean #{known}?)"),
        None => format!("unknown command #{shown} (commands: {})", list_names()),
    }
}

/// The known name within two edits of `name` (one for short names, else `#hi` would be
/// `#cc`), for typos like `#stauts` or `#asign`.
fn closest_name(name: &str) -> Option<&'static str> {
    if name.chars().nth(12).is_some() {
        return None;
    }
    let name: Vec<char> = name.to_lowercase().chars().collect();
    let allowed = if name.len() <= 4 { 1 } else { 2 };
    NAMES
        .into_iter()
        .map(|known| (edit_distance(&name, known), known))
        .filter(|(distance, _)| *distance <= allowed)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance, with a swap of two neighbours counted as one edit.
fn edit_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

fn settable_list() -> String {
    let names = SETTABLE.map(Status::as_str);
    format!("{} or {}", names[..4].join(", "), names[4])
}

fn parse_status(value: &str) -> Result<Status, String> {
    if value.is_empty() {
        return Err(format!("missing status (use {})", settable_list()));
    }
    match Status::from_str(value) {
        Ok(status) if SETTABLE.contains(&status) => Ok(status),
        Ok(status) => Err(format!(
            "status {:?} cannot be set by mail (use {})",
            status.as_str(),
            settable_list()
        )),
        Err(_) => Err(format!(
            "unknown status {} (use {})",
            quoted(value),
            settable_list()
        )),
    }
}

fn parse_priority(value: &str) -> Result<Priority, String> {
    const HINT: &str = "use low, normal, high or urgent";
    if value.is_empty() {
        return Err(format!("missing priority ({HINT})"));
    }
    Priority::from_str(value).map_err(|_| format!("unknown priority {} ({HINT})", quoted(value)))
}

fn parse_assignee(value: &str) -> Result<Assignee, String> {
    const HINT: &str = "use an agent name, me or none";
    if value.is_empty() {
        return Err(format!("missing agent ({HINT})"));
    }
    if value.contains(is_space) {
        return Err(format!(
            "#assign takes one agent, got {} ({HINT})",
            quoted(value)
        ));
    }
    // `@bob` is how chat tools name people; the caller knows agents as `bob`.
    let name = value.strip_prefix('@').unwrap_or(value);
    if name.is_empty()
        || name.chars().any(char::is_control)
        || name.chars().nth(MAX_AGENT_CHARS).is_some()
    {
        return Err(format!("invalid agent name {} ({HINT})", quoted(value)));
    }
    Ok(match name.to_lowercase().as_str() {
        "me" => Assignee::Me,
        "none" => Assignee::Nobody,
        _ => Assignee::Agent(name.to_owned()),
    })
}

/// Words of a list value: split on whitespace and on ASCII, Chinese and full-width commas
/// and semicolons (`#tag a, b`, `#tag 退款、发票`).
fn words(value: &str) -> impl Iterator<Item = &str> {
    value.split(is_separator).filter(|word| !word.is_empty())
}

fn is_separator(c: char) -> bool {
    is_space(c) || matches!(c, ',' | ';' | '、')
}

/// `value` up to the end of its `max`-th word (see [`words`]), and how many words follow.
fn first_words(value: &str, max: usize) -> (&str, usize) {
    let mut seen = 0;
    let mut in_word = false;
    for (at, c) in value.char_indices() {
        let separator = is_separator(c);
        if !separator && !in_word {
            if seen == max {
                let kept = value[..at].trim_end_matches(is_separator);
                return (kept, words(&value[at..]).count());
            }
            seen += 1;
        }
        in_word = !separator;
    }
    (value, 0)
}

/// Appends `item` unless it is there already; `seen` holds what `list` holds, so a long
/// list costs linear time.
fn push_unique(list: &mut Vec<String>, seen: &mut HashSet<String>, item: String) {
    if seen.insert(item.clone()) {
        list.push(item);
    }
}

fn parse_tags(value: &str) -> Result<Vec<String>, String> {
    let mut tags = Vec::new();
    let mut seen = HashSet::new();
    for word in words(value) {
        let tag = word.to_lowercase();
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
        if !tag.chars().all(allowed) {
            return Err(format!(
                "invalid tag {} (letters, digits, -, _ and . only)",
                quoted(word)
            ));
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(format!(
                "tag {} is longer than {MAX_TAG_CHARS} characters",
                quoted(word)
            ));
        }
        push_unique(&mut tags, &mut seen, tag);
    }
    if tags.is_empty() {
        return Err("missing tag (e.g. #tag billing refund)".to_owned());
    }
    Ok(tags)
}

/// `#cc a@x b@y` adds, `#cc -a@x -b@y` removes; one line does one or the other.
fn parse_cc(value: &str) -> Result<Command, String> {
    let removing: Vec<bool> = words(value).map(|w| w.starts_with('-')).collect();
    if removing.iter().all(|r| *r) && !removing.is_empty() {
        let rest: Vec<&str> = words(value).map(|w| &w[1..]).collect();
        parse_addresses(&rest.join(" ")).map(Command::RemoveCc)
    } else if removing.iter().any(|r| *r) {
        Err(
            "one #cc line adds (#cc tom@example.com) or removes (#cc -tom@example.com), not both"
                .to_owned(),
        )
    } else {
        parse_addresses(value).map(Command::AddCc)
    }
}

fn parse_addresses(value: &str) -> Result<Vec<String>, String> {
    let mut addresses = Vec::new();
    let mut seen = HashSet::new();
    for word in words(value) {
        let address = unwrap_address(word);
        if !looks_like_address(address) {
            return Err(format!(
                "invalid address {} (e.g. #cc alice@example.com)",
                quoted(word)
            ));
        }
        push_unique(&mut addresses, &mut seen, address.to_owned());
    }
    if addresses.is_empty() {
        return Err("missing address (e.g. #cc alice@example.com)".to_owned());
    }
    Ok(addresses)
}

/// Removes what mail clients wrap around an address: `<a@b>`, `mailto:a@b`, and Outlook's
/// plain-text rendering of a link, `a@b<mailto:a@b>`.
fn unwrap_address(word: &str) -> &str {
    let word = match word.split_once("<mailto:") {
        Some((shown, _)) if !shown.is_empty() => shown,
        _ => word,
    };
    let word = word
        .strip_prefix('<')
        .and_then(|w| w.strip_suffix('>'))
        .unwrap_or(word);
    word.strip_prefix("mailto:").unwrap_or(word)
}

/// One `@`, something on both sides, nothing that could break a header, not too long.
fn looks_like_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    address.len() <= MAX_ADDRESS_CHARS
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !address
            .chars()
            .any(|c| is_space(c) || c.is_control() || matches!(c, '<' | '>' | '"' | '(' | ')'))
}

fn parse_ticket(value: &str) -> Result<TicketId, String> {
    let digits = value.strip_prefix('#').unwrap_or(value);
    match digits.parse::<i64>() {
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(TicketId::new(n)),
        _ if value.is_empty() => Err("missing ticket number (e.g. 42 or #42)".to_owned()),
        _ => Err(format!(
            "invalid ticket {} (use a number like 42 or #42)",
            quoted(value)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_commands(text: &str) -> Split<'_> {
        super::split_commands(text, &Limits::default())
    }

    fn tags(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    fn err(line: &str, reason: &str) -> CommandError {
        CommandError {
            line: line.to_owned(),
            reason: reason.to_owned(),
        }
    }

    #[test]
    fn splits_leading_command_block() {
        use Command::*;
        let statuses = "use new, open, pending, resolved or closed";
        let cases: Vec<(&str, Vec<Command>, Vec<CommandError>, &str)> = vec![
            ("Hello Alice", vec![], vec![], "Hello Alice"),
            ("", vec![], vec![], ""),
            ("\n\n  \nHello", vec![], vec![], "Hello"),
            (
                "#status pending\n\nHi Alice,\nplease try again.",
                vec![SetStatus(Status::Pending)],
                vec![],
                "Hi Alice,\nplease try again.",
            ),
            (
                "#status resolved\r\n#assign me\r\n\r\n您好，\r\n问题已经解决，请重启打印机。\r\n",
                vec![SetStatus(Status::Resolved), Assign(Assignee::Me)],
                vec![],
                "您好，\r\n问题已经解决，请重启打印机。\r\n",
            ),
            (
                "#status closed\n#priority low\n",
                vec![SetStatus(Status::Closed), SetPriority(Priority::Low)],
                vec![],
                "",
            ),
            (
                "  #Status  Resolved   \n#ASSIGN none\n#assign @Bob\n",
                vec![
                    SetStatus(Status::Resolved),
                    Assign(Assignee::Nobody),
                    Assign(Assignee::Agent("Bob".to_owned())),
                ],
                vec![],
                "",
            ),
            (
                "#note\nCustomer called, printer is on the 3rd floor.",
                vec![Note],
                vec![],
                "Customer called, printer is on the 3rd floor.",
            ),
            (
                "#tag Billing refund  VIP\n#untag new\n#tag 退款、发票\nThanks",
                vec![
                    AddTags(tags(&["billing", "refund", "vip"])),
                    RemoveTags(tags(&["new"])),
                    AddTags(tags(&["退款", "发票"])),
                ],
                vec![],
                "Thanks",
            ),
            (
                "#tag a, b,a\n#cc bob@x.test, <carol@y.test>\n#cc dan@z.test<mailto:dan@z.test>\nok",
                vec![
                    AddTags(tags(&["a", "b"])),
                    AddCc(tags(&["bob@x.test", "carol@y.test"])),
                    AddCc(tags(&["dan@z.test"])),
                ],
                vec![],
                "ok",
            ),
            (
                "#merge 42\n#link #7\n#merge ＃9\nDone.",
                vec![
                    Merge(TicketId::new(42)),
                    Link(TicketId::new(7)),
                    Merge(TicketId::new(9)),
                ],
                vec![],
                "Done.",
            ),
            (
                "＃ｓｔａｔｕｓ　ｐｅｎｄｉｎｇ\n#status：open\n#priority: urgent\n请稍等。",
                vec![
                    SetStatus(Status::Pending),
                    SetStatus(Status::Open),
                    SetPriority(Priority::Urgent),
                ],
                vec![],
                "请稍等。",
            ),
            (
                "#stauts pending\n#status done\nHi",
                vec![],
                vec![
                    err("#stauts pending", "unknown command #stauts (did you mean #status?)"),
                    err(
                        "#status done",
                        &format!("unknown status \"done\" ({statuses})"),
                    ),
                ],
                "Hi",
            ),
            (
                "#status archived\n#status\n#priority asap\n#assign bob alice\n#note see below\nx",
                vec![],
                vec![
                    err(
                        "#status archived",
                        &format!("status \"archived\" cannot be set by mail ({statuses})"),
                    ),
                    err("#status", &format!("missing status ({statuses})")),
                    err(
                        "#priority asap",
                        "unknown priority \"asap\" (use low, normal, high or urgent)",
                    ),
                    err(
                        "#assign bob alice",
                        "#assign takes one agent, got \"bob alice\" (use an agent name, me or none)",
                    ),
                    err(
                        "#note see below",
                        "#note takes no value (write the note below the command lines)",
                    ),
                ],
                "x",
            ),
            (
                "#tag a/b\n#tag\n#cc bob\n#cc a@b@c\n#merge abc\n#link 0\n\nHello",
                vec![],
                vec![
                    err("#tag a/b", "invalid tag \"a/b\" (letters, digits, -, _ and . only)"),
                    err("#tag", "missing tag (e.g. #tag billing refund)"),
                    err("#cc bob", "invalid address \"bob\" (e.g. #cc alice@example.com)"),
                    err("#cc a@b@c", "invalid address \"a@b@c\" (e.g. #cc alice@example.com)"),
                    err("#merge abc", "invalid ticket \"abc\" (use a number like 42 or #42)"),
                    err("#link 0", "invalid ticket \"0\" (use a number like 42 or #42)"),
                ],
                "Hello",
            ),
            (
                "#urgent please help\n#\nHello",
                vec![],
                vec![
                    err(
                        "#urgent please help",
                        "unknown command #urgent (commands: #status, #assign, #priority, #tag, #untag, #cc, #to, #note, #merge, #link, #kb, #macro)",
                    ),
                    err(
                        "#",
                        "missing command name after # (commands: #status, #assign, #priority, #tag, #untag, #cc, #to, #note, #merge, #link, #kb, #macro)",
                    ),
                ],
                "Hello",
            ),
            ("#42 is broken again\n#status open", vec![], vec![], "#42 is broken again\n#status open"),
            ("# 42 is broken", vec![], vec![], "# 42 is broken"),
            (
                "#status open\n＃４２ 又坏了",
                vec![SetStatus(Status::Open)],
                vec![],
                "＃４２ 又坏了",
            ),
            (
                "Hi Alice,\n#status resolved\nsee ticket #42.",
                vec![],
                vec![],
                "Hi Alice,\n#status resolved\nsee ticket #42.",
            ),
            (
                "\u{feff}#status open\n\u{200b}\nHi",
                vec![SetStatus(Status::Open)],
                vec![],
                "Hi",
            ),
        ];
        for (input, commands, errors, body) in cases {
            let split = split_commands(input);
            assert_eq!(split.commands, commands, "input: {input:?}");
            assert_eq!(split.errors, errors, "input: {input:?}");
            assert_eq!(split.body, body, "input: {input:?}");
        }
    }

    #[test]
    fn describes_each_command_as_it_is_written() {
        let cases = [
            (Command::SetStatus(Status::Pending), "#status pending"),
            (
                Command::Assign(Assignee::Agent("bob".to_owned())),
                "#assign bob",
            ),
            (Command::Assign(Assignee::Me), "#assign me"),
            (Command::Assign(Assignee::Nobody), "#assign none"),
            (Command::SetPriority(Priority::Urgent), "#priority urgent"),
            (
                Command::AddTags(tags(&["billing", "vip"])),
                "#tag billing vip",
            ),
            (Command::RemoveTags(tags(&["new"])), "#untag new"),
            (
                Command::AddCc(tags(&["a@x.test", "b@y.test"])),
                "#cc a@x.test b@y.test",
            ),
            (Command::RemoveCc(tags(&["tom@x.test"])), "#cc -tom@x.test"),
            (Command::To(tags(&["jane@x.test"])), "#to jane@x.test"),
            (Command::Note, "#note"),
            (Command::Merge(TicketId::new(42)), "#merge 42"),
            (Command::Link(TicketId::new(7)), "#link 7"),
        ];
        for (command, want) in cases {
            assert_eq!(command.describe(), want);
            assert_eq!(split_commands(want).commands, vec![command], "{want}");
        }
    }

    #[test]
    fn error_text_names_line_and_reason() {
        let split = split_commands("#asign bob");
        assert_eq!(
            split.errors[0].to_string(),
            "#asign bob: unknown command #asign (did you mean #assign?)"
        );
        for (name, want) in [
            ("stauts", Some("status")),
            ("Prio", None),
            ("priorty", Some("priority")),
            ("tga", Some("tag")),
            ("nte", Some("note")),
            ("hi", None),
            ("x", None),
            ("statusstatusstatus", None),
        ] {
            assert_eq!(closest_name(name), want, "name: {name}");
        }
    }

    #[test]
    fn reads_at_most_the_limits() {
        let limits = Limits {
            max_command_lines: 3,
            max_command_words: 4,
            ..Limits::default()
        };
        let cases: Vec<(&str, usize, usize, usize, Unread)> = vec![
            // (input, commands, errors, body length, unread lines / words)
            ("#tag a b c d\nHi", 1, 0, 2, unread(0, 0)),
            ("#tag a b c d e f\nHi", 1, 0, 2, unread(0, 2)),
            ("#tag a, b;c d、e,,f\nHi", 1, 0, 2, unread(0, 2)),
            (
                "#s1\n#s2\n\n#s3\n#s4\n#status open\nHi",
                0,
                3,
                2,
                unread(2, 0),
            ),
            ("#status open x y z w v\n", 0, 1, 0, unread(0, 2)),
        ];
        for (input, commands, errors, body, want) in cases {
            let split = super::split_commands(input, &limits);
            assert_eq!(split.commands.len(), commands, "{input:?}");
            assert_eq!(split.errors.len(), errors, "{input:?}");
            assert_eq!(split.body.len(), body, "{input:?}");
            assert_eq!(
                (split.unread.lines, split.unread.words),
                (want.lines, want.words),
                "{input:?}"
            );
        }
        let split = super::split_commands("#tag a b c d e f\n#x\n#y\n#z", &limits);
        assert_eq!(
            split.unread.describe().as_deref(),
            Some(
                "1 command line after the first 3 was not read; \
                 2 words after the first 4 of a command line were not read"
            )
        );
        assert_eq!(split_commands("#status open").unread.describe(), None);
    }

    fn unread(lines: usize, words: usize) -> Unread {
        Unread {
            lines,
            words,
            ..Unread::default()
        }
    }

    /// Issue 12: a `#tag` line of 100,000 words (distinct or all the same) reads the first
    /// `max_command_words`; 10,000 command lines read the first `max_command_lines`.
    #[test]
    fn hostile_command_blocks_are_cut() {
        let limits = Limits::default();
        let many: Vec<String> = (0..100_000).map(|n| format!("t{n}")).collect();
        let text = format!("#tag {}\nHi", many.join(" "));
        let split = split_commands(&text);
        let Command::AddTags(tags) = &split.commands[0] else {
            panic!("{:?}", split.commands);
        };
        assert_eq!(tags.len(), limits.max_command_words);
        assert_eq!(split.unread.words, 100_000 - limits.max_command_words);
        assert_eq!(split.body, "Hi");

        let text = format!("#tag {}", "a ".repeat(100_000));
        let same = split_commands(&text);
        assert_eq!(same.commands, vec![Command::AddTags(tags_of(&["a"]))]);

        let lines: String = (0..10_000).map(|n| format!("#s{n}\n")).collect();
        let text = format!("{lines}\nThanks");
        let split = split_commands(&text);
        assert_eq!(split.errors.len(), limits.max_command_lines);
        assert_eq!(split.unread.lines, 10_000 - limits.max_command_lines);
        assert_eq!(split.body, "Thanks");

        let long = format!("#status {}", "x".repeat(1_000_000));
        let split = split_commands(&long);
        let e = &split.errors[0];
        assert!(
            e.line.chars().count() <= MAX_LINE_CHARS + 1,
            "{}",
            e.line.len()
        );
        assert!(e.line.ends_with('…'));
        assert!(e.reason.len() < 200, "{}", e.reason);
        let word = "y".repeat(1_000_000);
        for line in [
            format!("#{word}"),
            format!("#tag {word}"),
            format!("#tag a/{word}"),
            format!("#cc a@{word}"),
            format!("#assign {word}"),
            format!("#merge {word}"),
            format!("#priority {word}"),
        ] {
            let split = split_commands(&line);
            assert_eq!(split.errors.len(), 1, "{}", &line[..10]);
            assert!(
                split.errors[0].reason.len() < 250,
                "{}",
                split.errors[0].reason
            );
        }
    }

    fn tags_of(words: &[&str]) -> Vec<String> {
        tags(words)
    }

    mod properties {
        use super::super::*;
        use super::split_commands;
        use proptest::prelude::*;

        fn command() -> impl Strategy<Value = Command> {
            let word = "[a-z0-9][a-z0-9._-]{0,10}";
            prop_oneof![
                prop::sample::select(SETTABLE.to_vec()).prop_map(Command::SetStatus),
                prop::sample::select(Priority::ALL.to_vec()).prop_map(Command::SetPriority),
                Just(Command::Assign(Assignee::Me)),
                Just(Command::Assign(Assignee::Nobody)),
                "[a-z][a-z0-9.]{0,10}"
                    .prop_filter("reserved", |n| n != "me" && n != "none")
                    .prop_map(|n| Command::Assign(Assignee::Agent(n))),
                prop::collection::btree_set(word, 1..4)
                    .prop_map(|s| Command::AddTags(s.into_iter().collect())),
                prop::collection::btree_set(word, 1..4)
                    .prop_map(|s| Command::RemoveTags(s.into_iter().collect())),
                prop::collection::btree_set("[a-z0-9.]{1,8}@[a-z0-9.]{1,8}", 1..3)
                    .prop_map(|s| Command::AddCc(s.into_iter().collect())),
                prop::collection::btree_set("[a-z0-9.]{1,8}@[a-z0-9.]{1,8}", 1..3)
                    .prop_map(|s| Command::RemoveCc(s.into_iter().collect())),
                prop::collection::btree_set("[a-z0-9.]{1,8}@[a-z0-9.]{1,8}", 1..3)
                    .prop_map(|s| Command::To(s.into_iter().collect())),
                Just(Command::Note),
                (1i64..i64::MAX).prop_map(|n| Command::Merge(TicketId::new(n))),
                (1i64..i64::MAX).prop_map(|n| Command::Link(TicketId::new(n))),
            ]
        }

        /// Lines an agent's mail could start with: commands, typos, blanks, text, `#42`.
        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                command().prop_map(|c| c.describe()),
                "[ \t]{0,2}[#＃][a-zA-Z]{0,8}[ :：]{0,2}[a-z0-9@.,#/ ]{0,12}[ \t\r]{0,2}",
                "[ \t\r]{0,3}",
                "[#＃] ?[0-9]{1,3}[ a-z]{0,6}",
                "\\PC{0,20}",
            ]
        }

        proptest! {
            /// Any strangers' text: no panic, body is a suffix, and every command line of
            /// the block turned into exactly one command or one error.
            #[test]
            fn never_panics_and_never_leaks(text in "\\PC{0,200}|[#＃ \r\n\ta-z0-9:@]{0,200}") {
                let split = split_commands(&text);
                prop_assert!(text.ends_with(split.body));
                let block = &text[..text.len() - split.body.len()];
                let command_lines = lines(block).filter(|(_, l)| is_command_line(l)).count();
                prop_assert_eq!(split.commands.len() + split.errors.len() + split.unread.lines, command_lines);
                if let Some((_, first)) = lines(split.body).next() {
                    prop_assert!(!is_blank(first) && !is_command_line(first), "{:?}", split.body);
                }
                let again = split_commands(split.body);
                prop_assert!(again.commands.is_empty() && again.errors.is_empty());
                prop_assert_eq!(again.body, split.body);
            }

            /// Mixed realistic lines: the same guarantees, and no command line of the block
            /// (nor its `#word`) is ever at the start of the body.
            #[test]
            fn mixed_lines_keep_guarantees(parts in prop::collection::vec(line(), 0..8), crlf in any::<bool>()) {
                let text = parts.join(if crlf { "\r\n" } else { "\n" });
                let split = split_commands(&text);
                prop_assert!(text.ends_with(split.body));
                let block = &text[..text.len() - split.body.len()];
                let command_lines = lines(block).filter(|(_, l)| is_command_line(l)).count();
                prop_assert_eq!(split.commands.len() + split.errors.len() + split.unread.lines, command_lines);
                let first = split.body.lines().next().unwrap_or("");
                prop_assert!(!is_command_line(first), "{:?}", split.body);
            }

            /// Whatever the limits, the same guarantees: what is not read is counted, never
            /// in the body, and no list holds more than `max_command_words` items.
            #[test]
            fn limits_keep_guarantees(
                parts in prop::collection::vec(line(), 0..8),
                max_lines in 0usize..4,
                max_words in 0usize..4,
            ) {
                let text = parts.join("\n");
                let limits = Limits { max_command_lines: max_lines, max_command_words: max_words, ..Limits::default() };
                let split = super::super::split_commands(&text, &limits);
                prop_assert!(text.ends_with(split.body));
                let block = &text[..text.len() - split.body.len()];
                let command_lines = lines(block).filter(|(_, l)| is_command_line(l)).count();
                prop_assert!(split.commands.len() + split.errors.len() <= max_lines);
                prop_assert_eq!(split.commands.len() + split.errors.len() + split.unread.lines, command_lines);
                let first = split.body.lines().next().unwrap_or("");
                prop_assert!(!is_command_line(first), "{:?}", split.body);
                for c in &split.commands {
                    let n = match c {
                        Command::AddTags(l) | Command::RemoveTags(l) | Command::AddCc(l)
                        | Command::RemoveCc(l) | Command::To(l) => l.len(),
                        _ => 0,
                    };
                    prop_assert!(n <= max_words, "{:?}", c);
                }
            }

            /// What `describe` prints parses back to the same command, before any body.
            #[test]
            fn described_commands_parse_back(cmds in prop::collection::vec(command(), 1..6), body in "[a-zA-Z 你好]{0,20}") {
                let body = format!("x{body}");
                let text = format!("{}\n\n{body}", cmds.iter().map(Command::describe).collect::<Vec<_>>().join("\n"));
                let split = split_commands(&text);
                prop_assert_eq!(split.commands, cmds);
                prop_assert!(split.errors.is_empty());
                prop_assert_eq!(split.body, body.as_str());
            }
        }
    }

    #[test]
    fn kb_and_macro_take_one_name() {
        use Command::*;
        let split = split_commands(
            "#kb Reset-Password
＃ｍａｃｒｏ close.v2
Hi",
        );
        assert_eq!(
            split.commands,
            vec![
                Kb("reset-password".to_owned()),
                Macro("close.v2".to_owned())
            ]
        );
        assert_eq!(split.body, "Hi");
        for (line, want) in [
            ("#kb", "missing article name (#kb NAME)"),
            ("#macro", "missing macro name (#macro NAME)"),
            ("#kb two words", "invalid article name \"two words\""),
            ("#macro a/b", "invalid macro name \"a/b\""),
            ("#mcaro x", "unknown command #mcaro (did you mean #macro?)"),
        ] {
            let split = split_commands(line);
            assert!(split.commands.is_empty(), "{line}");
            assert!(
                split.errors[0].reason.starts_with(want),
                "{line}: {:?}",
                split.errors
            );
        }
        assert_eq!(Kb("a".into()).describe(), "#kb a");
        assert_eq!(Macro("b".into()).describe(), "#macro b");
    }
}
