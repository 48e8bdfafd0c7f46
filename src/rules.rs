//! Routing rules (issue 5): which queue, priority, tags and assignee a new ticket gets,
//! whether it is acknowledged, and which agent of a team takes it.
//!
//! In: [`Rule`]s compiled once from `[[rule]]` tables ([`RawRule`] → [`Rule::from_raw`]) and
//! a [`RuleInput`] the caller builds from `Parsed`. Out: a [`Decision`], or for
//! `postdesk rules test` one [`RuleReport`] per rule ([`explain`]).
//! - Pure: no I/O, no clock, no store. Message data never panics; regexes come from the
//!   config, are compiled once, and run in linear time (`regex` crate), so a hostile body
//!   cannot stall the writer.
//! - Rules run in config order. A matching rule stops evaluation unless it says
//!   `continue = true`. Later matches override queue, priority and assignee; tags add up;
//!   `acknowledge = false` sticks.
//! - Within a rule every given condition must hold; within a list any item may match.
//!   A rule without conditions matches every message (a catch-all).
//! - Keywords match case-insensitively as substrings (Chinese too: `发票`); addresses and
//!   domains case-insensitively; a domain also matches its subdomains.
//! - [`choose_agent`] picks among a team by round robin or least load; the caller counts
//!   open tickets in the store and records the choice as an event.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use regex::Regex;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::model::{Language, Priority};

/// The same limit as `#tag` in agent commands (`agent::commands`).
const MAX_TAG_CHARS: usize = 64;

const EMPTY_LIST: &str = "an empty list never matches; leave the key out instead";
const TO_HINT: &str = "like support@example.com or +billing";

/// One `[[rule]]` table as written. Strings that need parsing (priority, language,
/// strategy, patterns) stay strings here, so [`Rule::from_raw`] can name the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    pub subject_keywords: Option<Vec<String>>,
    pub body_keywords: Option<Vec<String>>,
    pub keywords: Option<Vec<String>>,
    pub subject_regex: Option<String>,
    pub body_regex: Option<String>,
    pub from: Option<Vec<String>>,
    pub to: Option<Vec<String>>,
    pub header: Option<RawHeaders>,
    pub has_attachment: Option<bool>,
    pub language: Option<String>,
    pub queue: Option<String>,
    pub priority: Option<String>,
    pub tags: Option<Vec<String>>,
    pub assign: Option<String>,
    pub assignment: Option<String>,
    pub acknowledge: Option<bool>,
    #[serde(rename = "continue")]
    pub keep_going: Option<bool>,
}

/// `header = { name = "X-Priority", regex = "^1" }` or a list of such tables (all must
/// match).
#[derive(Debug)]
pub enum RawHeaders {
    One(RawHeader),
    Many(Vec<RawHeader>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeader {
    pub name: String,
    pub regex: String,
}

impl RawHeaders {
    fn into_vec(self) -> Vec<RawHeader> {
        match self {
            RawHeaders::One(h) => vec![h],
            RawHeaders::Many(hs) => hs,
        }
    }
}

// Written by hand rather than `#[serde(untagged)]`: an untagged enum reports only "did not
// match any variant", while this keeps serde's own message (`unknown field `regx``).
impl<'de> Deserialize<'de> for RawHeaders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawHeaders, D::Error> {
        struct HeadersVisitor;
        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = RawHeaders;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table { name, regex } or a list of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHeaders, A::Error> {
                RawHeader::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawHeaders::One)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawHeaders, A::Error> {
                Vec::<RawHeader>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawHeaders::Many)
            }
        }
        d.deserialize_any(HeadersVisitor)
    }
}

/// A rule that cannot be compiled; `key` is the offending key of the `[[rule]]` table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct RuleError {
    pub key: &'static str,
    pub message: String,
}

fn rule_error(key: &'static str, message: impl Into<String>) -> RuleError {
    RuleError {
        key,
        message: message.into(),
    }
}

/// How an agent of the queue's team is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// The next available agent after the last one chosen, in config order.
    #[default]
    RoundRobin,
    /// The available agent with the lowest share of their capacity in use.
    LeastLoaded,
}

impl Strategy {
    pub const ALL: [Strategy; 2] = [Strategy::RoundRobin, Strategy::LeastLoaded];
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::RoundRobin => "round-robin",
            Strategy::LeastLoaded => "least-loaded",
        }
    }
}

/// A text that is not `round-robin` or `least-loaded`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown assignment strategy {0:?} (round-robin or least-loaded)")]
pub struct UnknownStrategy(pub String);

impl FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Strategy, UnknownStrategy> {
        Strategy::ALL
            .into_iter()
            .find(|it| it.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStrategy(s.to_owned()))
    }
}

/// Who a rule hands the ticket to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assign {
    /// An agent by name (trimmed, lower-cased like `[[agent]] name`); config checks it exists.
    Agent(String),
    /// Someone of the queue's team, chosen by [`choose_agent`].
    Team(Strategy),
}

/// `from` and VIP entries: an exact address, or a domain that also covers its
/// subdomains. Stored lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressPattern {
    /// `boss@bigcorp.example`
    Address(String),
    /// `bigcorp.example` or `@bigcorp.example`: `a@bigcorp.example`, `a@mail.bigcorp.example`.
    Domain(String),
}

/// A `from`, `to` or VIP entry that is neither an address nor a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address or a domain: {0:?}")]
pub struct InvalidAddressPattern(pub String);

impl FromStr for AddressPattern {
    type Err = InvalidAddressPattern;
    fn from_str(s: &str) -> Result<AddressPattern, InvalidAddressPattern> {
        let bad = || InvalidAddressPattern(s.to_owned());
        let text = s.trim().to_lowercase();
        if text.is_empty() || text.contains(char::is_whitespace) {
            return Err(bad());
        }
        match text.rsplit_once('@') {
            None if is_domain(&text) => Ok(AddressPattern::Domain(text)),
            Some(("", domain)) if is_domain(domain) => {
                Ok(AddressPattern::Domain(domain.to_owned()))
            }
            Some((local, domain)) if !local.is_empty() && is_domain(domain) => {
                Ok(AddressPattern::Address(text))
            }
            _ => Err(bad()),
        }
    }
}

impl AddressPattern {
    /// Whether `address` (any case) is this address or lies in this domain.
    pub fn matches(&self, address: &str) -> bool {
        self.matches_lower(&address.trim().to_lowercase())
    }

    fn matches_lower(&self, address: &str) -> bool {
        match self {
            AddressPattern::Address(a) => a == address,
            AddressPattern::Domain(d) => domain_of(address).is_some_and(|got| in_domain(got, d)),
        }
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddressPattern::Address(a) | AddressPattern::Domain(a) => f.write_str(a),
        }
    }
}

fn is_domain(s: &str) -> bool {
    !s.is_empty() && !s.contains('@') && s.split('.').all(|label| !label.is_empty())
}

fn domain_of(address: &str) -> Option<&str> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.'))
        .filter(|d| !d.is_empty())
}

/// `got` is `domain` or one of its subdomains (`mail.bigcorp.example`, never
/// `notbigcorp.example`).
fn in_domain(got: &str, domain: &str) -> bool {
    got == domain
        || got
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
}

/// A `to` entry: the address a message came to, or only its plus-tag.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RecipientPattern {
    /// `support+billing@example.com` matches only itself; `support@example.com` also
    /// matches any plus-address of it (the mail still came to the support address).
    Address(String),
    /// `+billing`: the tag of any recipient, `support+billing@…` or `sales+billing@…`.
    PlusTag(String),
}

impl RecipientPattern {
    fn parse(s: &str) -> Option<RecipientPattern> {
        let text = s.trim().to_lowercase();
        if let Some(tag) = text.strip_prefix('+') {
            let ok = !tag.is_empty() && !tag.contains(|c: char| c == '@' || c.is_whitespace());
            return ok.then(|| RecipientPattern::PlusTag(tag.to_owned()));
        }
        match text.parse() {
            Ok(AddressPattern::Address(a)) => Some(RecipientPattern::Address(a)),
            _ => None,
        }
    }

    /// `recipient` is lower-cased.
    fn matches(&self, recipient: &str) -> bool {
        match self {
            RecipientPattern::Address(a) => {
                a == recipient || (!has_plus_tag(a) && without_plus_tag(recipient) == *a)
            }
            RecipientPattern::PlusTag(tag) => plus_tag(recipient) == Some(tag.as_str()),
        }
    }
}

impl fmt::Display for RecipientPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientPattern::Address(a) => f.write_str(a),
            RecipientPattern::PlusTag(t) => write!(f, "+{t}"),
        }
    }
}

/// The tag of `local+tag@domain`: everything after the first `+` of the local part, as
/// Postfix's `recipient_delimiter` splits it.
fn plus_tag(address: &str) -> Option<&str> {
    let (local, _) = address.rsplit_once('@')?;
    local.split_once('+').map(|(_, tag)| tag)
}

fn has_plus_tag(address: &str) -> bool {
    plus_tag(address).is_some()
}

fn without_plus_tag(address: &str) -> Cow<'_, str> {
    match address.rsplit_once('@') {
        Some((local, domain)) => match local.split_once('+') {
            Some((base, _)) => Cow::Owned(format!("{base}@{domain}")),
            None => Cow::Borrowed(address),
        },
        None => Cow::Borrowed(address),
    }
}

/// One compiled condition of a rule.
#[derive(Debug, Clone)]
enum Condition {
    /// Keywords are lower-cased.
    SubjectKeywords(Vec<String>),
    BodyKeywords(Vec<String>),
    Keywords(Vec<String>),
    SubjectRegex(Regex),
    BodyRegex(Regex),
    From(Vec<AddressPattern>),
    To(Vec<RecipientPattern>),
    Header {
        name: String,
        regex: Regex,
    },
    HasAttachment(bool),
    Language(Language),
}

impl Condition {
    fn holds(&self, seen: &Seen<'_, '_>) -> bool {
        let any_in = |keywords: &[String], hay: &str| keywords.iter().any(|k| hay.contains(k));
        match self {
            Condition::SubjectKeywords(k) => any_in(k, seen.subject()),
            Condition::BodyKeywords(k) => any_in(k, seen.text()),
            Condition::Keywords(k) => any_in(k, seen.subject()) || any_in(k, seen.text()),
            Condition::SubjectRegex(re) => re.is_match(seen.input.subject),
            Condition::BodyRegex(re) => re.is_match(seen.input.text),
            Condition::From(patterns) => seen
                .from
                .as_deref()
                .is_some_and(|from| patterns.iter().any(|p| p.matches_lower(from))),
            Condition::To(patterns) => seen
                .recipients
                .iter()
                .any(|r| patterns.iter().any(|p| p.matches(r))),
            Condition::Header { name, regex } => seen
                .input
                .headers
                .iter()
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .any(|(_, value)| regex.is_match(&unfold(value))),
            Condition::HasAttachment(want) => seen.input.has_attachment == *want,
            Condition::Language(want) => seen.input.language == *want,
        }
    }

    /// How `postdesk rules test` names the condition: the config key and its value.
    fn label(&self) -> String {
        let list = |items: Vec<String>| format!("[{}]", items.join(", "));
        match self {
            Condition::SubjectKeywords(k) => format!("subject_keywords {}", list(k.clone())),
            Condition::BodyKeywords(k) => format!("body_keywords {}", list(k.clone())),
            Condition::Keywords(k) => format!("keywords {}", list(k.clone())),
            Condition::SubjectRegex(re) => format!("subject_regex {}", re.as_str()),
            Condition::BodyRegex(re) => format!("body_regex {}", re.as_str()),
            Condition::From(p) => {
                format!("from {}", list(p.iter().map(|p| p.to_string()).collect()))
            }
            Condition::To(p) => format!("to {}", list(p.iter().map(|p| p.to_string()).collect())),
            Condition::Header { name, regex } => format!("header {name} ~ {}", regex.as_str()),
            Condition::HasAttachment(b) => format!("has_attachment {b}"),
            Condition::Language(l) => format!("language {}", l.as_str()),
        }
    }
}

/// A header value as one line (RFC 5322 unfolding), without surrounding whitespace.
fn unfold(value: &str) -> Cow<'_, str> {
    if value.contains(['\r', '\n']) {
        Cow::Owned(value.replace(['\r', '\n'], "").trim().to_owned())
    } else {
        Cow::Borrowed(value.trim())
    }
}

/// A compiled `[[rule]]`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// In the order of the keys in [`RawRule`]; all must hold.
    conditions: Vec<Condition>,
    pub queue: Option<String>,
    pub priority: Option<Priority>,
    /// Lower-cased, without duplicates.
    pub tags: Vec<String>,
    pub assign: Option<Assign>,
    /// `false`: no acknowledgement for the ticket (`acknowledge = false`).
    pub acknowledge: bool,
    /// `continue = true`: later rules are evaluated after this one matched.
    pub keep_going: bool,
}

impl Rule {
    /// Checks and compiles one rule. The caller checks what needs the rest of the config:
    /// unique names, that the queue and the agent exist.
    pub fn from_raw(raw: RawRule) -> Result<Rule, RuleError> {
        let name = raw.name.trim().to_owned();
        if name.is_empty() {
            return Err(rule_error("name", "a rule needs a name"));
        }
        let mut conditions = Vec::new();
        if let Some(k) = raw.subject_keywords {
            conditions.push(Condition::SubjectKeywords(keywords("subject_keywords", k)?));
        }
        if let Some(k) = raw.body_keywords {
            conditions.push(Condition::BodyKeywords(keywords("body_keywords", k)?));
        }
        if let Some(k) = raw.keywords {
            conditions.push(Condition::Keywords(keywords("keywords", k)?));
        }
        if let Some(re) = raw.subject_regex {
            conditions.push(Condition::SubjectRegex(regex("subject_regex", &re)?));
        }
        if let Some(re) = raw.body_regex {
            conditions.push(Condition::BodyRegex(regex("body_regex", &re)?));
        }
        if let Some(from) = raw.from {
            conditions.push(Condition::From(senders(from)?));
        }
        if let Some(to) = raw.to {
            conditions.push(Condition::To(recipients(to)?));
        }
        for h in raw.header.map(RawHeaders::into_vec).unwrap_or_default() {
            conditions.push(header(h)?);
        }
        if let Some(b) = raw.has_attachment {
            conditions.push(Condition::HasAttachment(b));
        }
        if let Some(l) = raw.language {
            let language = l.parse().map_err(|_| {
                rule_error("language", format!("unknown language {l:?} (en or zh-CN)"))
            })?;
            conditions.push(Condition::Language(language));
        }
        let queue = match raw.queue.map(|q| q.trim().to_owned()) {
            Some(q) if q.is_empty() => return Err(rule_error("queue", "empty queue name")),
            q => q,
        };
        let priority = match raw.priority {
            Some(p) => Some(p.parse::<Priority>().map_err(|_| {
                rule_error(
                    "priority",
                    format!("unknown priority {p:?} (low, normal, high or urgent)"),
                )
            })?),
            None => None,
        };
        Ok(Rule {
            name,
            conditions,
            queue,
            priority,
            tags: tags(raw.tags.unwrap_or_default())?,
            assign: assign(raw.assign, raw.assignment)?,
            acknowledge: raw.acknowledge.unwrap_or(true),
            keep_going: raw.keep_going.unwrap_or(false),
        })
    }

    /// What the rule does, for `postdesk rules test`: `queue billing`, `priority high`,
    /// `tags [billing]`, `assign alice` or `assign team (round-robin)`, `acknowledge false`,
    /// `continue true`.
    pub fn describe_actions(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(q) = &self.queue {
            out.push(format!("queue {q}"));
        }
        if let Some(p) = self.priority {
            out.push(format!("priority {}", p.as_str()));
        }
        if !self.tags.is_empty() {
            out.push(format!("tags [{}]", self.tags.join(", ")));
        }
        match &self.assign {
            Some(Assign::Agent(a)) => out.push(format!("assign {a}")),
            Some(Assign::Team(s)) => out.push(format!("assign team ({})", s.as_str())),
            None => {}
        }
        if !self.acknowledge {
            out.push("acknowledge false".to_owned());
        }
        if self.keep_going {
            out.push("continue true".to_owned());
        }
        out
    }
}

fn keywords(key: &'static str, raw: Vec<String>) -> Result<Vec<String>, RuleError> {
    if raw.is_empty() {
        return Err(rule_error(key, EMPTY_LIST));
    }
    raw.into_iter()
        .map(|k| {
            if k.trim().is_empty() {
                Err(rule_error(
                    key,
                    "an empty keyword would match every message",
                ))
            } else {
                Ok(k.to_lowercase())
            }
        })
        .collect()
}

fn regex(key: &'static str, pattern: &str) -> Result<Regex, RuleError> {
    if pattern.is_empty() {
        return Err(rule_error(
            key,
            "an empty regular expression would match every message",
        ));
    }
    Regex::new(pattern).map_err(|err| rule_error(key, format!("invalid regular expression: {err}")))
}

fn senders(raw: Vec<String>) -> Result<Vec<AddressPattern>, RuleError> {
    if raw.is_empty() {
        return Err(rule_error("from", EMPTY_LIST));
    }
    raw.iter()
        .map(|s| {
            s.parse().map_err(|err: InvalidAddressPattern| {
                rule_error(
                    "from",
                    format!("{err} (like boss@bigcorp.example or bigcorp.example)"),
                )
            })
        })
        .collect()
}

fn recipients(raw: Vec<String>) -> Result<Vec<RecipientPattern>, RuleError> {
    if raw.is_empty() {
        return Err(rule_error("to", EMPTY_LIST));
    }
    raw.iter()
        .map(|s| {
            RecipientPattern::parse(s).ok_or_else(|| {
                rule_error(
                    "to",
                    format!("not an address or a plus-tag: {s:?} ({TO_HINT})"),
                )
            })
        })
        .collect()
}

fn header(raw: RawHeader) -> Result<Condition, RuleError> {
    let name = raw.name.trim().to_owned();
    // RFC 5322 2.2: printable ASCII except the colon.
    let name_ok = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    if !name_ok {
        return Err(rule_error(
            "header",
            format!("invalid header name {:?}", raw.name),
        ));
    }
    if raw.regex.is_empty() {
        return Err(rule_error(
            "header",
            format!("empty regular expression for {name} (use \".\" to require the header)"),
        ));
    }
    let regex = Regex::new(&raw.regex).map_err(|err| {
        rule_error(
            "header",
            format!("invalid regular expression for {name}: {err}"),
        )
    })?;
    Ok(Condition::Header { name, regex })
}

fn tags(raw: Vec<String>) -> Result<Vec<String>, RuleError> {
    let mut out: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for t in raw {
        let tag = t.trim().to_lowercase();
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
        if tag.is_empty() || !tag.chars().all(allowed) {
            return Err(rule_error(
                "tags",
                format!("invalid tag {t:?} (letters, digits, -, _ and . only)"),
            ));
        }
        if tag.chars().count() > MAX_TAG_CHARS {
            return Err(rule_error(
                "tags",
                format!("tag {t:?} is longer than {MAX_TAG_CHARS} characters"),
            ));
        }
        push_unique(&mut out, &mut seen, tag);
    }
    Ok(out)
}

fn assign(assign: Option<String>, assignment: Option<String>) -> Result<Option<Assign>, RuleError> {
    let strategy = match &assignment {
        Some(s) => Some(
            s.parse::<Strategy>()
                .map_err(|err| rule_error("assignment", err.to_string()))?,
        ),
        None => None,
    };
    let Some(who) = assign else {
        // `assignment` alone can only mean the team: there is nobody else to choose among.
        return Ok(strategy.map(Assign::Team));
    };
    let who = who.trim().to_lowercase();
    if who.is_empty() || who.contains(char::is_whitespace) {
        return Err(rule_error(
            "assign",
            format!("{who:?} is not an agent name or \"team\""),
        ));
    }
    if who == "team" {
        return Ok(Some(Assign::Team(strategy.unwrap_or_default())));
    }
    if strategy.is_some() {
        return Err(rule_error(
            "assignment",
            format!("a strategy needs assign = \"team\", not an agent ({who:?})"),
        ));
    }
    Ok(Some(Assign::Agent(who)))
}

/// Appends `item` unless it is there already; `seen` holds what `list` holds, so a long
/// list costs linear time.
fn push_unique(list: &mut Vec<String>, seen: &mut HashSet<String>, item: String) {
    if seen.insert(item.clone()) {
        list.push(item);
    }
}

/// What the rules see of a message.
#[derive(Debug, Clone)]
pub struct RuleInput<'a> {
    pub subject: &'a str,
    /// The readable text body (`Parsed::text`).
    pub text: &'a str,
    pub from: Option<&'a str>,
    /// To, Cc and Delivered-To addresses, lower case.
    pub recipients: Vec<&'a str>,
    /// Header name and raw value, in message order.
    pub headers: Vec<(&'a str, &'a str)>,
    pub has_attachment: bool,
    /// The detected language of the message.
    pub language: Language,
}

/// The input with what several conditions need computed once: lower-cased text only when
/// a keyword condition asks for it (bodies can be large).
struct Seen<'i, 'a> {
    input: &'i RuleInput<'a>,
    subject: OnceCell<String>,
    text: OnceCell<String>,
    from: Option<String>,
    recipients: Vec<String>,
}

impl<'i, 'a> Seen<'i, 'a> {
    fn new(input: &'i RuleInput<'a>) -> Seen<'i, 'a> {
        Seen {
            input,
            subject: OnceCell::new(),
            text: OnceCell::new(),
            from: input.from.map(|f| f.trim().to_lowercase()),
            recipients: input
                .recipients
                .iter()
                .map(|r| r.trim().to_lowercase())
                .collect(),
        }
    }
    fn subject(&self) -> &str {
        self.subject
            .get_or_init(|| self.input.subject.to_lowercase())
    }
    fn text(&self) -> &str {
        self.text.get_or_init(|| self.input.text.to_lowercase())
    }
}

/// What the matching rules decided for a new ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub queue: Option<String>,
    pub priority: Option<Priority>,
    /// In the order the rules add them, without duplicates.
    pub tags: Vec<String>,
    /// `None`: no rule named anyone; the caller applies the queue's default.
    pub assign: Option<Assign>,
    /// `true` unless a matching rule said `acknowledge = false`.
    pub acknowledge: bool,
    /// Names of the rules that matched, in order.
    pub matched: Vec<String>,
}

impl Default for Decision {
    fn default() -> Decision {
        Decision {
            queue: None,
            priority: None,
            tags: Vec::new(),
            assign: None,
            acknowledge: true,
            matched: Vec::new(),
        }
    }
}

impl Decision {
    /// `seen` holds the tags already in `self.tags`.
    fn apply(&mut self, rule: &Rule, seen: &mut HashSet<String>) {
        if rule.queue.is_some() {
            self.queue.clone_from(&rule.queue);
        }
        if rule.priority.is_some() {
            self.priority = rule.priority;
        }
        for tag in &rule.tags {
            push_unique(&mut self.tags, seen, tag.clone());
        }
        if rule.assign.is_some() {
            self.assign.clone_from(&rule.assign);
        }
        self.acknowledge &= rule.acknowledge;
        self.matched.push(rule.name.clone());
    }
}

/// Runs the rules in order: the first match decides, unless it says `continue = true`,
/// in which case later matches override queue, priority and assignee and add tags.
pub fn evaluate(rules: &[Rule], input: &RuleInput<'_>) -> Decision {
    let seen = Seen::new(input);
    let mut decision = Decision::default();
    let mut tags = HashSet::new();
    for rule in rules {
        if rule.conditions.iter().all(|c| c.holds(&seen)) {
            decision.apply(rule, &mut tags);
            if !rule.keep_going {
                break;
            }
        }
    }
    decision
}

/// One rule as `postdesk rules test` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleReport {
    pub name: String,
    /// The rule was evaluated and all its conditions held: [`evaluate`] applies it.
    pub matched: bool,
    /// Each condition (`subject_keywords [invoice, 发票]`) and whether it held. Computed
    /// for rules that were not evaluated too, to show a rule an earlier match shadows.
    pub conditions: Vec<(String, bool)>,
    /// `false` when an earlier match without `continue` stopped evaluation.
    pub evaluated: bool,
}

/// One report per rule, in config order; agrees with [`evaluate`] on what matched.
pub fn explain(rules: &[Rule], input: &RuleInput<'_>) -> Vec<RuleReport> {
    let seen = Seen::new(input);
    let mut stopped = false;
    rules
        .iter()
        .map(|rule| {
            let conditions: Vec<(String, bool)> = rule
                .conditions
                .iter()
                .map(|c| (c.label(), c.holds(&seen)))
                .collect();
            let evaluated = !stopped;
            let matched = evaluated && conditions.iter().all(|(_, held)| *held);
            if matched && !rule.keep_going {
                stopped = true;
            }
            RuleReport {
                name: rule.name.clone(),
                matched,
                conditions,
                evaluated,
            }
        })
        .collect()
}

/// VIP customers start one step higher; urgent stays urgent.
pub fn bump(p: Priority) -> Priority {
    match p {
        Priority::Low => Priority::Normal,
        Priority::Normal => Priority::High,
        Priority::High | Priority::Urgent => Priority::Urgent,
    }
}

/// `address` is one of the VIP entries or in one of their domains (as `from` matches).
/// Entries that are not an address or a domain match nothing; config rejects them with
/// [`AddressPattern`]'s `FromStr`.
pub fn is_vip(vips: &[String], address: &str) -> bool {
    let address = address.trim().to_lowercase();
    vips.iter().any(|v| {
        v.parse::<AddressPattern>()
            .is_ok_and(|p| p.matches_lower(&address))
    })
}

/// Picks an agent of a team. `candidates` are (name, capacity, open tickets now) in
/// config order; an agent is available while open < capacity. `last` is the agent the
/// previous round-robin choice in this queue fell on.
/// - Round robin: the next available agent after `last`, wrapping; from the first when
///   `last` is `None` or no longer a candidate; `last` again if only they are available.
/// - Least loaded: the lowest open/capacity ratio; ties go to fewer open tickets, then to
///   config order.
///
/// `None` when nobody is available.
pub fn choose_agent(
    strategy: Strategy,
    candidates: &[(&str, u32, u32)],
    last: Option<&str>,
) -> Option<String> {
    let available = |c: &&(&str, u32, u32)| c.2 < c.1;
    let chosen = match strategy {
        Strategy::RoundRobin => {
            let start = last
                .and_then(|l| candidates.iter().position(|c| c.0 == l))
                .map_or(0, |i| i + 1);
            candidates
                .iter()
                .cycle()
                .skip(start)
                .take(candidates.len())
                .find(available)
        }
        // Ratios compared exactly: open_a/cap_a < open_b/cap_b ⇔ open_a·cap_b < open_b·cap_a
        // (capacities of available agents are > 0).
        Strategy::LeastLoaded => candidates.iter().filter(available).min_by(|a, b| {
            (u64::from(a.2) * u64::from(b.1))
                .cmp(&(u64::from(b.2) * u64::from(a.1)))
                .then(a.2.cmp(&b.2))
        }),
    };
    chosen.map(|c| c.0.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name = "r"` and the given keys.
    fn rule(keys: &str) -> Rule {
        let text = if keys.trim_start().starts_with("name =") {
            keys.to_owned()
        } else {
            format!("name = \"r\"\n{keys}")
        };
        let raw: RawRule = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        Rule::from_raw(raw).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(keys: &str) -> RuleError {
        let text = if keys.trim_start().starts_with("name =") {
            keys.to_owned()
        } else {
            format!("name = \"r\"\n{keys}")
        };
        let raw: RawRule = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        match Rule::from_raw(raw) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e,
        }
    }

    fn msg() -> RuleInput<'static> {
        RuleInput {
            subject: "Hello",
            text: "Some text.",
            from: Some("alice@customer.example"),
            recipients: vec!["support@example.com"],
            headers: vec![("Subject", "Hello"), ("From", "alice@customer.example")],
            has_attachment: false,
            language: Language::En,
        }
    }

    // Setters keep the tables to one line per case.
    impl RuleInput<'static> {
        fn subject(self, subject: &'static str) -> Self {
            RuleInput { subject, ..self }
        }
        fn text(self, text: &'static str) -> Self {
            RuleInput { text, ..self }
        }
        fn from(self, from: Option<&'static str>) -> Self {
            RuleInput { from, ..self }
        }
        fn to(self, recipients: &[&'static str]) -> Self {
            RuleInput {
                recipients: recipients.to_vec(),
                ..self
            }
        }
        fn headers(self, headers: &[(&'static str, &'static str)]) -> Self {
            RuleInput {
                headers: headers.to_vec(),
                ..self
            }
        }
        fn attachment(self) -> Self {
            RuleInput {
                has_attachment: true,
                ..self
            }
        }
        fn chinese(self) -> Self {
            RuleInput {
                language: Language::ZhCn,
                ..self
            }
        }
    }

    #[test]
    fn conditions_match() {
        let subject_kw = r#"subject_keywords = ["Invoice", "发票"]"#;
        let body_kw = r#"body_keywords = ["refund", "退款"]"#;
        let order = r#"subject_regex = '(?i)order\s*#?\d+'"#;
        let inv = r#"body_regex = '\bINV-\d{4}\b'"#;
        let boss = r#"from = ["boss@bigcorp.example"]"#;
        let bigcorp = r#"from = ["bigcorp.example"]"#;
        let prio = r#"header = { name = "X-Priority", regex = "^1" }"#;
        let both = concat!(
            r#"header = [{ name = "X-Priority", regex = "^1" }, "#,
            r#"{ name = "Importance", regex = "(?i)high" }]"#
        );
        let folded = [("X-Mailer", "Microsoft\r\n Outlook 16.0")];
        let invoice_bigcorp = "subject_keywords = [\"invoice\"]\nfrom = [\"bigcorp.example\"]";
        let cases: Vec<(&str, RuleInput<'static>, bool)> = vec![
            // Keywords in the subject, English and Chinese, any case.
            (subject_kw, msg().subject("Your INVOICE 42"), true),
            (subject_kw, msg().subject("回复：请开发票"), true),
            (subject_kw, msg().text("invoice attached"), false),
            // Keywords in the body.
            (body_kw, msg().text("您好，我要退款。"), true),
            (body_kw, msg().text("Please REFUND me"), true),
            (body_kw, msg().subject("refund"), false),
            // Keywords in either.
            (r#"keywords = ["invoice"]"#, msg().subject("Invoice"), true),
            (r#"keywords = ["invoice"]"#, msg().text("the invoice"), true),
            (r#"keywords = ["invoice"]"#, msg(), false),
            // Regular expressions: case-sensitive unless the pattern says otherwise.
            (order, msg().subject("Re: ORDER #123"), true),
            (order, msg().subject("order status"), false),
            (inv, msg().text("see INV-2024."), true),
            (inv, msg().text("see inv-2024."), false),
            // Sender: exact address, any case.
            (boss, msg().from(Some("Boss@BigCorp.example")), true),
            (boss, msg().from(Some("clerk@bigcorp.example")), false),
            // Sender: domain, with or without @, subdomains included, look-alikes not.
            (bigcorp, msg().from(Some("a@bigcorp.example")), true),
            (bigcorp, msg().from(Some("a@mail.bigcorp.example")), true),
            (
                r#"from = ["@bigcorp.example"]"#,
                msg().from(Some("a@mail.bigcorp.example")),
                true,
            ),
            (bigcorp, msg().from(Some("a@notbigcorp.example")), false),
            (bigcorp, msg().from(Some("a@bigcorp.example.evil")), false),
            (bigcorp, msg().from(Some("bigcorp.example")), false),
            (bigcorp, msg().from(None), false),
            (
                r#"from = ["x.example", "bigcorp.example"]"#,
                msg().from(Some("a@bigcorp.example")),
                true,
            ),
            // Recipient: a plus-tag on any recipient.
            (
                r#"to = ["+billing"]"#,
                msg().to(&["bob@x.example", "support+billing@example.com"]),
                true,
            ),
            (
                r#"to = ["+billing"]"#,
                msg().to(&["Support+Billing@Example.com"]),
                true,
            ),
            (
                r#"to = ["+billing"]"#,
                msg().to(&["support+billing2@example.com"]),
                false,
            ),
            (r#"to = ["+billing"]"#, msg(), false),
            // Recipient: a plus-address matches itself; a plain address its plus-addresses too.
            (
                r#"to = ["support+billing@example.com"]"#,
                msg().to(&["support+billing@example.com"]),
                true,
            ),
            (r#"to = ["support+billing@example.com"]"#, msg(), false),
            (
                r#"to = ["support@example.com"]"#,
                msg().to(&["support+billing@example.com"]),
                true,
            ),
            (
                r#"to = ["support@example.com"]"#,
                msg().to(&["sales@example.com"]),
                false,
            ),
            // Headers: name in any case, value trimmed and unfolded, any of several may match.
            (prio, msg().headers(&[("X-Priority", "1 (Highest)")]), true),
            (prio, msg().headers(&[("x-priority", " 1")]), true),
            (prio, msg().headers(&[("X-Priority", "3 (Normal)")]), false),
            (
                prio,
                msg().headers(&[("X-Priority", "3"), ("X-Priority", "1")]),
                true,
            ),
            (prio, msg(), false),
            (
                r#"header = { name = "X-Mailer", regex = '[\r\n]' }"#,
                msg().headers(&folded),
                false,
            ),
            (
                r#"header = { name = "X-Mailer", regex = "t Outlook 16" }"#,
                msg().headers(&folded),
                true,
            ),
            // Several headers: all must match.
            (
                both,
                msg().headers(&[("X-Priority", "1"), ("Importance", "High")]),
                true,
            ),
            (both, msg().headers(&[("X-Priority", "1")]), false),
            // Attachment, either way.
            ("has_attachment = true", msg().attachment(), true),
            ("has_attachment = true", msg(), false),
            ("has_attachment = false", msg(), true),
            // Language.
            (r#"language = "zh-CN""#, msg().chinese(), true),
            (r#"language = "zh-CN""#, msg(), false),
            (r#"language = "en""#, msg(), true),
            // All conditions of a rule must hold.
            (
                invoice_bigcorp,
                msg().subject("invoice").from(Some("a@bigcorp.example")),
                true,
            ),
            (invoice_bigcorp, msg().subject("invoice"), false),
            // No condition: a catch-all.
            ("", msg(), true),
            (
                "",
                msg().subject("").text("").from(None).to(&[]).headers(&[]),
                true,
            ),
        ];
        for (keys, input, want) in cases {
            let rules = [rule(keys)];
            let got = evaluate(&rules, &input);
            assert_eq!(got.matched == ["r"], want, "rule: {keys}\ninput: {input:?}");
            assert_eq!(
                explain(&rules, &input)[0].matched,
                want,
                "explain, rule: {keys}"
            );
        }
    }

    #[test]
    fn example_rule_parses_with_all_keys() {
        let r = rule(
            r#"
            name = "billing"
            subject_keywords = ["invoice", "发票"]
            body_keywords = ["refund", "退款"]
            keywords = ["invoice"]
            subject_regex = "(?i)order\\s*#?\\d+"
            body_regex = "INV-\\d+"
            from = ["boss@bigcorp.example", "@bigcorp.example", "bigcorp.example"]
            to = ["support+billing@example.com", "+billing"]
            header = { name = "X-Priority", regex = "^1" }
            has_attachment = true
            language = "zh-CN"
            queue = "billing"
            priority = "high"
            tags = ["Billing", "vip", "billing"]
            assign = "team"
            assignment = "least-loaded"
            acknowledge = false
            continue = true
            "#,
        );
        assert_eq!(r.name, "billing");
        assert_eq!(r.conditions.len(), 10);
        assert_eq!(r.queue.as_deref(), Some("billing"));
        assert_eq!(r.priority, Some(Priority::High));
        assert_eq!(r.tags, ["billing", "vip"]);
        assert_eq!(r.assign, Some(Assign::Team(Strategy::LeastLoaded)));
        assert!(!r.acknowledge);
        assert!(r.keep_going);
        let actions = [
            "queue billing",
            "priority high",
            "tags [billing, vip]",
            "assign team (least-loaded)",
            "acknowledge false",
            "continue true",
        ];
        assert_eq!(r.describe_actions(), actions);

        let plain = rule("");
        assert!(plain.acknowledge && !plain.keep_going && plain.describe_actions().is_empty());
    }

    #[test]
    fn assign_forms() {
        let team = |s| Some(Assign::Team(s));
        for (keys, want) in [
            (
                "assign = \" Alice \"",
                Some(Assign::Agent("alice".to_owned())),
            ),
            ("assign = \"team\"", team(Strategy::RoundRobin)),
            (
                "assign = \"Team\"\nassignment = \"round-robin\"",
                team(Strategy::RoundRobin),
            ),
            (
                "assign = \"team\"\nassignment = \"Least-Loaded\"",
                team(Strategy::LeastLoaded),
            ),
            ("assignment = \"least-loaded\"", team(Strategy::LeastLoaded)),
            ("", None),
        ] {
            assert_eq!(rule(keys).assign, want, "{keys}");
        }
    }

    #[test]
    fn invalid_rules_name_their_key() {
        for (keys, key, message) in [
            ("name = \" \"", "name", "a rule needs a name"),
            (
                "subject_regex = \"(unclosed\"",
                "subject_regex",
                "invalid regular expression: ",
            ),
            (
                "body_regex = \"[z-a]\"",
                "body_regex",
                "invalid regular expression: ",
            ),
            (
                "body_regex = \"\"",
                "body_regex",
                "empty regular expression",
            ),
            (
                "header = { name = \"X-Priority\", regex = \"(\" }",
                "header",
                "for X-Priority: ",
            ),
            (
                "header = { name = \"X Priority\", regex = \"1\" }",
                "header",
                "invalid header name",
            ),
            (
                "header = { name = \"X-Priority:\", regex = \"1\" }",
                "header",
                "invalid header name",
            ),
            (
                "header = { name = \"X-Priority\", regex = \"\" }",
                "header",
                "empty regular expression",
            ),
            (
                "subject_keywords = []",
                "subject_keywords",
                "an empty list never matches",
            ),
            (
                "body_keywords = [\"ok\", \" \"]",
                "body_keywords",
                "an empty keyword",
            ),
            ("keywords = [\"\"]", "keywords", "an empty keyword"),
            (
                "from = [\"not an address\"]",
                "from",
                "not an address or a domain",
            ),
            ("from = [\"a@\"]", "from", "not an address or a domain"),
            (
                "from = [\"bigcorp..example\"]",
                "from",
                "not an address or a domain",
            ),
            ("from = []", "from", "an empty list never matches"),
            ("to = [\"billing\"]", "to", "not an address or a plus-tag"),
            ("to = [\"+\"]", "to", "not an address or a plus-tag"),
            (
                "to = [\"example.com\"]",
                "to",
                "not an address or a plus-tag",
            ),
            ("to = []", "to", "an empty list never matches"),
            ("language = \"fr\"", "language", "unknown language \"fr\""),
            ("queue = \"\"", "queue", "empty queue name"),
            (
                "priority = \"hihg\"",
                "priority",
                "unknown priority \"hihg\"",
            ),
            ("tags = [\"a b\"]", "tags", "invalid tag"),
            ("tags = [\"\"]", "tags", "invalid tag"),
            ("assign = \"\"", "assign", "not an agent name"),
            (
                "assignment = \"random\"",
                "assignment",
                "unknown assignment strategy",
            ),
            (
                "assign = \"al\"\nassignment = \"least-loaded\"",
                "assignment",
                "needs assign = \"team\"",
            ),
        ] {
            let err = refused(keys);
            assert_eq!(err.key, key, "{keys}: {err}");
            assert!(err.message.contains(message), "{keys}: {err}");
        }
        let long = format!("tags = [\"{}\"]", "a".repeat(65));
        assert_eq!(refused(&long).key, "tags");
        assert_eq!(
            refused("subject_regex = \"(\"")
                .to_string()
                .split(':')
                .next(),
            Some("subject_regex")
        );
    }

    #[test]
    fn serde_rejects_unknown_keys_and_shapes() {
        for (text, message) in [
            (
                "name = \"r\"\nsubjet_keywords = [\"x\"]",
                "unknown field `subjet_keywords`",
            ),
            (
                "name = \"r\"\nheader = { name = \"X\", regx = \"1\" }",
                "unknown field `regx`",
            ),
            (
                "name = \"r\"\nheader = [{ name = \"X\" }]",
                "missing field `regex`",
            ),
            (
                "name = \"r\"\nheader = \"X-Priority\"",
                "a table { name, regex } or a list of them",
            ),
            ("name = \"r\"\nfrom = \"bigcorp.example\"", "invalid type"),
            ("subject_keywords = [\"x\"]", "missing field `name`"),
        ] {
            let err = toml::from_str::<RawRule>(text).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("accepted: {text}"));
            assert!(err.contains(message), "{text}: {err}");
        }
    }

    fn billing_rules(first_continues: bool) -> Vec<Rule> {
        vec![
            rule(&format!(
                "name = \"invoices\"\nkeywords = [\"invoice\", \"发票\"]\nqueue = \"billing\"\n\
                 priority = \"normal\"\ntags = [\"billing\"]\ncontinue = {first_continues}"
            )),
            rule(
                "name = \"bigcorp\"\nfrom = [\"bigcorp.example\"]\nqueue = \"enterprise\"\n\
                 priority = \"high\"\ntags = [\"billing\", \"bigcorp\"]\nassign = \"alice\"\n\
                 acknowledge = false\ncontinue = true",
            ),
            rule("name = \"polite\"\nacknowledge = true\ntags = [\"seen\"]\nassign = \"team\""),
            rule("name = \"never\"\nqueue = \"other\""),
        ]
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn first_match_stops_unless_continue() {
        let input = msg()
            .subject("发票 please")
            .from(Some("cfo@mail.bigcorp.example"));

        let stop = Decision {
            queue: Some("billing".to_owned()),
            priority: Some(Priority::Normal),
            tags: strings(&["billing"]),
            assign: None,
            acknowledge: true,
            matched: strings(&["invoices"]),
        };
        assert_eq!(evaluate(&billing_rules(false), &input), stop);

        // `continue` lets later rules override queue, priority and assignee, adds tags
        // without duplicates, and `acknowledge = false` survives a later `acknowledge = true`.
        let go_on = Decision {
            queue: Some("enterprise".to_owned()),
            priority: Some(Priority::High),
            tags: strings(&["billing", "bigcorp", "seen"]),
            assign: Some(Assign::Team(Strategy::RoundRobin)),
            acknowledge: false,
            matched: strings(&["invoices", "bigcorp", "polite"]),
        };
        assert_eq!(evaluate(&billing_rules(true), &input), go_on);

        // A later rule without a queue keeps the earlier one.
        let d = evaluate(
            &billing_rules(true),
            &input.clone().from(Some("x@small.example")),
        );
        assert_eq!(d.queue.as_deref(), Some("billing"));
        assert_eq!(d.matched, ["invoices", "polite"]);
        assert!(d.acknowledge);

        assert_eq!(evaluate(&[], &input), Decision::default());
        assert!(Decision::default().acknowledge);
    }

    fn summary(reports: &[RuleReport]) -> Vec<(&str, bool, bool)> {
        reports
            .iter()
            .map(|r| (r.name.as_str(), r.evaluated, r.matched))
            .collect()
    }

    #[test]
    fn explain_marks_rules_after_a_stopping_match() {
        let input = msg().subject("Invoice").from(Some("cfo@bigcorp.example"));
        let reports = explain(&billing_rules(false), &input);
        assert_eq!(
            summary(&reports),
            [
                ("invoices", true, true),
                ("bigcorp", false, false),
                ("polite", false, false),
                ("never", false, false),
            ]
        );
        assert_eq!(
            reports[0].conditions,
            [("keywords [invoice, 发票]".to_owned(), true)]
        );
        // Conditions of a shadowed rule are still shown: this one would have matched.
        assert_eq!(
            reports[1].conditions,
            [("from [bigcorp.example]".to_owned(), true)]
        );
        assert!(reports[2].conditions.is_empty());

        let reports = explain(&billing_rules(true), &input);
        assert_eq!(
            summary(&reports),
            [
                ("invoices", true, true),
                ("bigcorp", true, true),
                ("polite", true, true),
                ("never", false, false),
            ]
        );

        let no_match = explain(&billing_rules(false)[..2], &msg());
        assert_eq!(
            summary(&no_match),
            [("invoices", true, false), ("bigcorp", true, false)]
        );
        assert_eq!(
            no_match[1].conditions,
            [("from [bigcorp.example]".to_owned(), false)]
        );
    }

    #[test]
    fn condition_labels() {
        let r = rule(
            r#"
            subject_regex = '(?i)order\s*#?\d+'
            to = ["Support@Example.com", "+Billing"]
            header = [{ name = "X-Priority", regex = "^1" }]
            has_attachment = true
            language = "zh-cn"
            "#,
        );
        let labels: Vec<String> = r.conditions.iter().map(Condition::label).collect();
        let want = [
            r"subject_regex (?i)order\s*#?\d+",
            "to [support@example.com, +billing]",
            "header X-Priority ~ ^1",
            "has_attachment true",
            "language zh-CN",
        ];
        assert_eq!(labels, want);
    }

    #[test]
    fn bump_goes_one_step_up() {
        for (p, want) in [
            (Priority::Low, Priority::Normal),
            (Priority::Normal, Priority::High),
            (Priority::High, Priority::Urgent),
            (Priority::Urgent, Priority::Urgent),
        ] {
            assert_eq!(bump(p), want, "{p}");
        }
    }

    #[test]
    fn vip_addresses_and_domains() {
        let vips = strings(&[
            "boss@bigcorp.example",
            "@vip.example",
            "gold.example",
            "not valid",
        ]);
        for (address, want) in [
            ("boss@bigcorp.example", true),
            ("BOSS@BigCorp.Example", true),
            ("clerk@bigcorp.example", false),
            ("a@vip.example", true),
            ("a@eu.vip.example", true),
            ("a@notvip.example", false),
            ("a@gold.example", true),
            ("a@gold.example.", true),
            ("gold.example", false),
            ("", false),
            ("not valid", false),
        ] {
            assert_eq!(is_vip(&vips, address), want, "{address}");
        }
        assert!(!is_vip(&[], "boss@bigcorp.example"));
    }

    #[test]
    fn round_robin_skips_agents_at_capacity() {
        // bob is at capacity; the choice alternates between alice and carol.
        let team = [("alice", 5, 1), ("bob", 3, 3), ("carol", 10, 9)];
        let mut last: Option<String> = None;
        let mut chosen = Vec::new();
        for _ in 0..5 {
            let next = choose_agent(Strategy::RoundRobin, &team, last.as_deref());
            chosen.push(next.clone().unwrap_or_default());
            last = next;
        }
        assert_eq!(chosen, ["alice", "carol", "alice", "carol", "alice"]);

        for (last, want) in [
            (Some("alice"), Some("carol")),
            (Some("bob"), Some("carol")),
            (Some("carol"), Some("alice")),
            (Some("gone"), Some("alice")),
            (None, Some("alice")),
        ] {
            let got = choose_agent(Strategy::RoundRobin, &team, last);
            assert_eq!(got.as_deref(), want, "{last:?}");
        }
        // The only one available gets it again.
        let one = [("alice", 5, 5), ("bob", 3, 0)];
        let got = choose_agent(Strategy::RoundRobin, &one, Some("bob"));
        assert_eq!(got.as_deref(), Some("bob"));
    }

    #[test]
    fn least_loaded_by_share_of_capacity() {
        for (team, want) in [
            // 2/5 = 0.4, 3/10 = 0.3, 8/20 = 0.4.
            (vec![("a", 5, 2), ("b", 10, 3), ("c", 20, 8)], Some("b")),
            // 1/5 = 0.2, 4/10 = 0.4, 3/20 = 0.15.
            (vec![("a", 5, 1), ("b", 10, 4), ("c", 20, 3)], Some("c")),
            // Equal shares: fewer open tickets first.
            (vec![("a", 10, 2), ("b", 5, 1), ("c", 20, 4)], Some("b")),
            // Equal shares and counts: config order.
            (vec![("a", 5, 0), ("b", 10, 0), ("c", 20, 0)], Some("a")),
            // Full agents and capacity 0 are never chosen.
            (vec![("a", 5, 5), ("b", 0, 0), ("c", 20, 19)], Some("c")),
            // No overflow in the comparison.
            (
                vec![("a", u32::MAX, u32::MAX - 1), ("b", u32::MAX, 1)],
                Some("b"),
            ),
        ] {
            let got = choose_agent(Strategy::LeastLoaded, &team, None);
            assert_eq!(got.as_deref(), want, "{team:?}");
        }
    }

    #[test]
    fn nobody_available() {
        let full = [("a", 5, 5), ("b", 0, 0), ("c", 2, 7)];
        for strategy in Strategy::ALL {
            assert_eq!(choose_agent(strategy, &full, None), None);
            assert_eq!(choose_agent(strategy, &full, Some("a")), None);
            assert_eq!(choose_agent(strategy, &[], Some("a")), None);
        }
    }

    #[test]
    fn strategy_text_round_trips() {
        for s in Strategy::ALL {
            assert_eq!(s.as_str().parse::<Strategy>(), Ok(s));
        }
        assert_eq!(Strategy::default(), Strategy::RoundRobin);
        assert!("random".parse::<Strategy>().is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn rules() -> Vec<Rule> {
            [
                "name = \"a\"\nkeywords = [\"invoice\", \"发票\", \"İ\"]\ncontinue = true",
                "name = \"b\"\nsubject_regex = '(?i)order\\s*\\d+'\nbody_regex = '^\\p{Han}+$'",
                "name = \"c\"\nheader = { name = \"X-Priority\", regex = \"^1\" }\ncontinue = true",
                "name = \"d\"\nfrom = [\"bigcorp.example\", \"a@b.example\"]\ncontinue = true",
                "name = \"e\"\nto = [\"+billing\", \"support@example.com\"]\ncontinue = true",
                "name = \"f\"\nbody_keywords = [\"refund\", \"退款\"]\nacknowledge = false",
                "name = \"g\"",
            ]
            .iter()
            .map(|t| rule(t))
            .collect()
        }

        const TEXT: &str = "\\PC{0,80}|[a-zA-Z0-9#@+. 发票退款İ]{0,40}";
        const ADDRESS: &str = "\\PC{0,30}|[a-zA-Z+@.]{0,20}";
        const HEADER_NAME: &str = "\\PC{0,20}|X-Priority|x-priority";

        proptest! {
            /// Strangers' subjects, bodies, addresses and headers never panic, and `explain`
            /// agrees with `evaluate`.
            #[test]
            fn evaluate_never_panics(
                subject in TEXT,
                text in "(?s).{0,300}",
                from in proptest::option::of(ADDRESS),
                recipients in proptest::collection::vec(ADDRESS, 0..4),
                headers in proptest::collection::vec((HEADER_NAME, "(?s).{0,60}"), 0..6),
                has_attachment in any::<bool>(),
                zh in any::<bool>(),
            ) {
                let input = RuleInput {
                    subject: &subject,
                    text: &text,
                    from: from.as_deref(),
                    recipients: recipients.iter().map(String::as_str).collect(),
                    headers: headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
                    has_attachment,
                    language: if zh { Language::ZhCn } else { Language::En },
                };
                let rules = rules();
                let decision = evaluate(&rules, &input);
                let matched: Vec<String> = explain(&rules, &input)
                    .into_iter()
                    .filter(|r| r.matched)
                    .map(|r| r.name)
                    .collect();
                prop_assert_eq!(&decision.matched, &matched);
                prop_assert!(!decision.matched.is_empty());
                let _ = is_vip(&[subject.clone(), text.clone()], from.as_deref().unwrap_or(""));
            }

            /// Any text as a `from`, `to` or VIP entry is refused or matches without panic.
            #[test]
            fn patterns_never_panic(pattern in ADDRESS, address in ADDRESS) {
                if let Ok(p) = pattern.parse::<AddressPattern>() {
                    let _ = p.matches(&address);
                }
                if let Some(p) = RecipientPattern::parse(&pattern) {
                    let _ = p.matches(&address.to_lowercase());
                }
            }
        }
    }
}
