//! The project's own mail fixtures, each beside what a person reading it expects.
//!
//! Contract:
//! - Reads `tests/fixtures/eml/<group>/NNN.eml` and the `NNN.json` beside it; nothing
//!   outside the repository (no mail server, no `../shared`), the store lives in a
//!   temporary directory. Fails when the folder or any group of [`GROUPS`] is missing or
//!   empty, or when an `.eml` has no `.json` (or the other way round).
//! - Each message runs twice, as written and with its line endings converted (CRLF→LF
//!   when it has any CRLF, else LF→CRLF): through `parse::message` and
//!   `classify::classify` with our identity ([`SUPPORT_ADDRESS`], [`HOSTNAME`]), and alone
//!   into an empty store ([`ingest_alone`]).
//! - Every field the JSON gives is compared (`tests/fixtures/README.md` lists them); an
//!   unknown field fails. A mismatch writes `NNN.failed` beside the message (what was got,
//!   per variant) and fails naming the file, the variant and the field.
//! - The JSON holds the true answer. Where postdesk gets it wrong today, `known_gap`
//!   (`{"field", "today", "why"}`, or a list of them) makes the test assert `today` for
//!   that field instead and print the gap; once postdesk gives the true answer, the test
//!   fails until the gap is removed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Map, Value};

// Every postdesk path this test uses: they are the lines to adapt when modules move.
use postdesk::clock::SystemClock;
use postdesk::mail::classify::{self, Class, Identity};
use postdesk::mail::parse;
use postdesk::model::{MailboxName, Uid, UidValidity};
use postdesk::store::Store;
use postdesk::workflow::{BatchOutcome, Desk, Engine, Incoming, IngestBatch};

/// The groups of `tests/fixtures/eml/`; each must hold at least one message.
const GROUPS: [&str; 6] = [
    "charset",
    "html",
    "attachment",
    "reply",
    "automatic",
    "malformed",
];
const HOSTNAME: &str = "postdesk.example.test";
const SUPPORT_ADDRESS: &str = "support@example.test";
/// Fields compared exactly; the others have their own rule in [`field_matches`].
const EXACT_FIELDS: [&str; 11] = [
    "unusable",
    "subject",
    "to",
    "message_id",
    "in_reply_to",
    "references",
    "date",
    "text",
    "class",
    "warnings",
    "outcome",
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eml")
}

// ------------------------------------------------------------------ the library calls

/// What the workflow did with one message ingested alone into an empty store.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// One ticket opened.
    NewTicket,
    /// Recorded with no ticket and no acknowledgement.
    Automatic,
    Quarantined,
    /// Anything else, described.
    Other(String),
}

impl Outcome {
    fn as_str(&self) -> String {
        match self {
            Outcome::NewTicket => "new_ticket".to_owned(),
            Outcome::Automatic => "automatic".to_owned(),
            Outcome::Quarantined => "quarantined".to_owned(),
            Outcome::Other(what) => what.clone(),
        }
    }
}

fn identity() -> Identity {
    Identity {
        hostname: HOSTNAME.to_owned(),
        addresses: vec![SUPPORT_ADDRESS.to_owned()],
    }
}

/// Puts `raw` into a fresh store through the library, as the daemon does after a fetch.
fn ingest_alone(raw: &[u8]) -> Outcome {
    // A store costs migrations and fsyncs: on tmpfs where the system has one.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temporary directory");
    std::fs::write(dir.path().join("password"), "unused").expect("password file");
    let text = format!(
        r#"data_dir = "{data}"
hostname = "{HOSTNAME}"

[smtp]
host = "127.0.0.1"
port = 25

[[queue]]
name = "support"
display_name = "ACME Support"

[[mailbox]]
name = "fixtures"
address = "{SUPPORT_ADDRESS}"
queue = "support"
tag = "ACME"
host = "127.0.0.1"
password_file = "password"
"#,
        data = dir.path().join("data").display()
    );
    let cfg = postdesk::config::from_str(&dir.path().join("postdesk.toml"), &text)
        .expect("test config is valid");
    let engine = Arc::new(Engine::new(&cfg, Arc::new(SystemClock)).expect("engine"));
    let store = Desk::new(
        Store::open(&cfg.db_path()).expect("store opens"),
        engine.clone(),
    );
    let batch = IngestBatch {
        mailbox: MailboxName::new("fixtures"),
        uidvalidity: UidValidity(1),
        items: vec![Incoming {
            uid: Uid(1),
            raw: raw.to_vec(),
            prepared: engine.prepare(raw),
            cost: Default::default(),
        }],
        last_uid: Uid(1),
        backlog: 0,
        at: chrono::Utc::now(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(store.ingest(batch)).expect("ingest");
    let tickets = store
        .store()
        .reader()
        .expect("reader")
        .status(&[])
        .expect("status")
        .tickets;
    match (&out, tickets) {
        (
            BatchOutcome {
                recorded: 1,
                new_tickets: 1,
                automatic: 0,
                quarantined: 0,
                ..
            },
            1,
        ) => Outcome::NewTicket,
        (
            BatchOutcome {
                recorded: 1,
                new_tickets: 0,
                automatic: 1,
                quarantined: 0,
                outbox: 0,
                ..
            },
            0,
        ) => Outcome::Automatic,
        (
            BatchOutcome {
                recorded: 0,
                quarantined: 1,
                ..
            },
            0,
        ) => Outcome::Quarantined,
        _ => Outcome::Other(format!("{out:?} with {tickets} tickets")),
    }
}

/// Everything the JSON can ask about one message, under the JSON's field names.
fn observe(raw: &[u8]) -> Value {
    let outcome = ingest_alone(raw).as_str();
    match parse::message(raw, &postdesk::limits::Limits::default()) {
        Ok(parsed) => observe_parsed(&parsed, outcome),
        Err(unusable) => json!({ "unusable": unusable.to_string(), "outcome": outcome }),
    }
}

fn observe_parsed(parsed: &parse::Parsed, outcome: String) -> Value {
    let class = classify::classify(parsed, &identity());
    let bounce = match &class {
        Class::Bounce(b) => {
            let report = b.report.clone().unwrap_or_default();
            json!({
                "recipients": report.recipients,
                "status": report.status,
                "action": report.action,
                "original_message_id": report.original_message_id.as_ref().map(|m| m.as_str()),
                "hard": b.is_hard(),
            })
        }
        _ => Value::Null,
    };
    json!({
        "subject": parsed.subject,
        "from": parsed.from.as_ref().map(|f| json!({
            "address": f.address,
            "name": f.name,
            "domain": f.address.rsplit_once('@').map(|(_, d)| d),
        })),
        "to": parsed.to.iter().map(|p| p.address.as_str()).collect::<Vec<_>>(),
        "message_id": parsed.message_id.as_str(),
        "in_reply_to": parsed.in_reply_to.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "references": parsed.references.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "date": parsed.date.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "text": parsed.text,
        "attachments": parsed.attachments.iter().map(|a| json!({
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
        })).collect::<Vec<_>>(),
        "class": class.as_str(),
        "class_reason": class.reason(),
        "bounce": bounce,
        "warnings": serde_json::to_value(&parsed.warnings).expect("warnings serialize"),
        "outcome": outcome,
    })
}

// ------------------------------------------------------------------ comparing

/// True when `got` (the whole observation) satisfies `want` for `field`.
fn field_matches(field: &str, want: &Value, got: &Value) -> bool {
    let text = got["text"].as_str().unwrap_or_default();
    match field {
        "text_contains" => strings(want).iter().all(|s| text.contains(s.as_str())),
        "text_lacks" => strings(want).iter().all(|s| !text.contains(s.as_str())),
        "attachments" => match want {
            Value::Number(n) => got["attachments"].as_array().map(|a| a.len() as u64) == n.as_u64(),
            Value::Array(list) => got["attachments"].as_array().is_some_and(|a| {
                a.len() == list.len() && list.iter().zip(a).all(|(w, g)| subset(w, g))
            }),
            _ => false,
        },
        "from" | "bounce" => subset(want, &got[field]),
        _ => want == &got[field],
    }
}

/// `want`'s keys all present in `got` with equal values (`null` matches only `null`).
fn subset(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            w.iter().all(|(k, v)| g.get(k).is_some_and(|gv| gv == v))
        }
        _ => want == got,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn is_known_field(field: &str) -> bool {
    EXACT_FIELDS.contains(&field)
        || [
            "about",
            "known_gap",
            "text_contains",
            "text_lacks",
            "attachments",
            "from",
            "bounce",
        ]
        .contains(&field)
}

/// A documented difference between the true answer and what postdesk does today.
struct Gap {
    field: String,
    today: Value,
    why: String,
}

/// Reads `known_gap` (one object or a list); malformed entries are reported as problems.
fn gaps(expected: &Map<String, Value>, problems: &mut Vec<String>) -> Vec<Gap> {
    let entries = match expected.get("known_gap") {
        None => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(one) => vec![one.clone()],
    };
    let mut out = Vec::new();
    for entry in entries {
        match (
            entry["field"].as_str(),
            entry.get("today"),
            entry["why"].as_str(),
        ) {
            (Some(field), Some(today), Some(why))
                if expected.contains_key(field)
                    && is_known_field(field)
                    && !matches!(field, "about" | "known_gap") =>
            {
                out.push(Gap {
                    field: field.to_owned(),
                    today: today.clone(),
                    why: why.to_owned(),
                })
            }
            _ => problems.push(format!(
                "known_gap needs \"field\" (a field this JSON gives), \"today\" and \"why\": {entry}"
            )),
        }
    }
    out
}

/// The same message with the other line endings, and the variant's name.
fn other_line_endings(raw: &[u8]) -> (&'static str, Vec<u8>) {
    if raw.windows(2).any(|w| w == b"\r\n") {
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i..].starts_with(b"\r\n") {
                out.push(b'\n');
                i += 2;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        ("CRLF→LF", out)
    } else {
        let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
        for &b in raw {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        ("LF→CRLF", out)
    }
}

/// Checks one fixture and returns its problems; the gaps it documents go to `gaps_seen`.
fn check(eml: &Path, gaps_seen: &mut Vec<String>) -> Vec<String> {
    let name = eml
        .strip_prefix(fixtures_dir())
        .unwrap_or(eml)
        .display()
        .to_string();
    let mut problems = Vec::new();
    let raw = std::fs::read(eml).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
    let json_path = eml.with_extension("json");
    let expected: Map<String, Value> = match std::fs::read_to_string(&json_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(map) => map,
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", json_path.display()));
            Map::new()
        }
    };
    if !expected.get("about").is_some_and(Value::is_string) {
        problems.push("\"about\" is missing: say what the message is".to_owned());
    }
    for field in expected.keys().filter(|f| !is_known_field(f)) {
        problems.push(format!("unknown field \"{field}\""));
    }
    let gaps = gaps(&expected, &mut problems);
    let (other_name, other) = other_line_endings(&raw);
    let mut failed = Vec::new();
    for (variant, bytes) in [("as written", raw), (other_name, other)] {
        let got = observe(&bytes);
        let mut mismatches = Vec::new();
        let compared = expected
            .iter()
            .filter(|(f, _)| is_known_field(f) && !matches!(f.as_str(), "about" | "known_gap"));
        for (field, want) in compared {
            let shown = if field.starts_with("text_") {
                &got["text"]
            } else {
                &got[field.as_str()]
            };
            match gaps.iter().find(|g| g.field == *field) {
                Some(gap) if field_matches(field, &gap.today, &got) => {
                    if variant == "as written" {
                        gaps_seen.push(format!("{name}: {field}: {}", gap.why));
                    }
                }
                Some(_) if field_matches(field, want, &got) => mismatches.push(format!(
                    "{field}: known gap closed (postdesk now gives {want}): remove the known_gap"
                )),
                Some(gap) => mismatches.push(format!(
                    "{field}: expected {want} (known gap, today {}), got {shown}",
                    gap.today
                )),
                None if field_matches(field, want, &got) => {}
                None => mismatches.push(format!("{field}: expected {want}, got {shown}")),
            }
        }
        if !mismatches.is_empty() {
            problems.extend(mismatches.iter().map(|m| format!("{variant}: {m}")));
            failed.push(json!({ "variant": variant, "mismatches": mismatches, "got": got }));
        }
    }
    let failed_path = eml.with_extension("failed");
    if failed.is_empty() {
        let _ = std::fs::remove_file(&failed_path);
    } else {
        let text = serde_json::to_string_pretty(&failed).expect("serializes");
        std::fs::write(&failed_path, text + "\n")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", failed_path.display()));
    }
    problems
        .into_iter()
        .map(|p| format!("{name}: {p}"))
        .collect()
}

/// The sorted paths in `dir` (none when it cannot be read; the caller reports that).
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.expect("directory entry").path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// What is wrong with the layout of `tests/fixtures/eml/`: a missing or unknown group, a
/// file outside a group, an `.eml` without its `.json` or the other way round.
fn layout_problems() -> Vec<String> {
    let root = fixtures_dir();
    let mut problems = Vec::new();
    if !root.is_dir() {
        problems.push(format!("{} is missing", root.display()));
    }
    for group in GROUPS {
        if !root.join(group).is_dir() {
            problems.push(format!("group {group} is missing from {}", root.display()));
        }
    }
    for path in entries(&root) {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if !path.is_dir() || !GROUPS.contains(&name.as_ref()) {
            problems.push(format!(
                "{}: not one of the groups {GROUPS:?}",
                path.display()
            ));
        }
        for file in entries(&path) {
            let pair = match file.extension().and_then(|x| x.to_str()) {
                Some("eml") => file.with_extension("json"),
                Some("json") => file.with_extension("eml"),
                _ => continue,
            };
            if !pair.is_file() {
                problems.push(format!("{}: {} is missing", file.display(), pair.display()));
            }
        }
    }
    problems
}

/// Checks every message of `group`; fails when the group has none or any check fails.
fn check_group(group: &str) {
    let started = std::time::Instant::now();
    let emls: Vec<PathBuf> = entries(&fixtures_dir().join(group))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    let mut problems = Vec::new();
    let mut gaps = Vec::new();
    for eml in &emls {
        problems.extend(check(eml, &mut gaps));
    }
    eprintln!(
        "fixtures/{group}: {} messages, each as written and with converted line endings, in {:.2?}; {} known gaps",
        emls.len(),
        started.elapsed(),
        gaps.len()
    );
    for gap in &gaps {
        eprintln!("  known gap: {gap}");
    }
    assert!(
        !emls.is_empty(),
        "group {group} holds no .eml file in {}",
        fixtures_dir().display()
    );
    assert!(
        problems.is_empty(),
        "{} problems in {group}:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn layout() {
    let problems = layout_problems();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn charset() {
    check_group("charset");
}

#[test]
fn html() {
    check_group("html");
}

#[test]
fn attachment() {
    check_group("attachment");
}

#[test]
fn reply() {
    check_group("reply");
}

#[test]
fn automatic() {
    check_group("automatic");
}

#[test]
fn malformed() {
    check_group("malformed");
}
