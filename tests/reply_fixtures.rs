//! Agents' replies to our relay, as real mail clients build them (issue 11): what reaches
//! the customer is only what the agent wrote.
//!
//! Contract:
//! - Reads `tests/fixtures/replies/<name>.eml` with the `<name>.json` beside it
//!   (`tests/fixtures/replies/README.md` lists the samples and the fields); nothing outside
//!   the repository, no mail server, no store. Fails when an `.eml` has no `.json` or the
//!   other way round, when a client of [`CLIENTS`] lacks its `-answer` or `-commands`
//!   sample, or when fewer than two `unknown-*` samples are there.
//! - Each message runs as written and with its line endings converted (CRLF→LF when it has
//!   any CRLF, else LF→CRLF), the way the workflow will read an agent's mail:
//!   `parse::message`, then `split_commands` over `reply_text` when there is one, else over
//!   `text`, then `cut_answer` over the body after the command lines.
//! - Asserted for every sample: the commands, the answer exactly, `is_empty`, the rule
//!   that cut, no text below the quote, and `leaks_relay(answer) == None`; a `-commands`
//!   sample has exactly `#status resolved` and an empty answer. An `unknown-*` sample
//!   (a quoting style no rule knows) must instead be caught by `leaks_relay`, with the
//!   reason the JSON gives.
//! - The real relays in `relays/` are themselves all quote: nothing of them is an answer,
//!   and `leaks_relay` refuses each.

use std::path::{Path, PathBuf};

use serde_json::Value;

// Every postdesk path this test uses.
use postdesk::agent::commands::{split_commands, Command};
use postdesk::agent::quote::{cut_answer, leaks_relay};
use postdesk::mail::parse;

/// The file-name prefix of each client style that must have an `-answer` and a
/// `-commands` sample.
const CLIENTS: [&str; 8] = [
    "neomutt",
    "thunderbird",
    "apple-mail",
    "gmail",
    "outlook-desktop",
    "outlook-web",
    "foxmail",
    "qqmail",
];

/// Fields every JSON must have (`leak` only for `unknown-*` samples).
const FIELDS: [&str; 8] = [
    "about",
    "client",
    "capture",
    "commands",
    "answer",
    "empty",
    "rule",
    "reply_text",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies")
}

/// The `.eml` files of `dir` (not its subfolders), sorted.
fn emls(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    found.sort();
    found
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// The bytes as written, and with their line endings converted.
fn variants(raw: &[u8]) -> [(&'static str, Vec<u8>); 2] {
    let text = raw.to_vec();
    let converted = if raw.windows(2).any(|w| w == b"\r\n") {
        String::from_utf8_lossy(raw)
            .replace("\r\n", "\n")
            .into_bytes()
    } else {
        let mut out = Vec::with_capacity(raw.len() + raw.len() / 20);
        for &b in raw {
            if b == b'\n' {
                out.push(b'\r');
            }
            out.push(b);
        }
        out
    };
    [("as written", text), ("line endings converted", converted)]
}

/// What the workflow will make of one agent's reply.
struct Outcome {
    reply_text: bool,
    commands: Vec<String>,
    refused: Vec<String>,
    answer: String,
    empty: bool,
    rule: Option<&'static str>,
    text_below: bool,
    leak: Option<String>,
}

fn run(raw: &[u8]) -> Outcome {
    let parsed =
        parse::message(raw, &postdesk::limits::Limits::default()).expect("a usable message");
    let input = parsed.reply_text.as_deref().unwrap_or(&parsed.text);
    let split = split_commands(input, &postdesk::limits::Limits::default());
    let cut = cut_answer(split.body);
    Outcome {
        reply_text: parsed.reply_text.is_some(),
        commands: split.commands.iter().map(Command::describe).collect(),
        refused: split.errors.iter().map(|e| e.to_string()).collect(),
        empty: cut.is_empty(),
        rule: cut.rule.map(|r| r.as_str()),
        text_below: cut.text_below,
        leak: leaks_relay(&cut.answer),
        answer: cut.answer,
    }
}

fn check(name: &str, want: &Value, got: &Outcome) -> Vec<String> {
    let mut failures = Vec::new();
    let mut expect = |what: &str, ok: bool, detail: String| {
        if !ok {
            failures.push(format!("{what}: {detail}"));
        }
    };
    let commands: Vec<String> = want["commands"]
        .as_array()
        .map(|a| a.iter().map(|c| c.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    expect(
        "commands",
        got.commands == commands && got.refused.is_empty(),
        format!("got {:?}, refused {:?}", got.commands, got.refused),
    );
    expect(
        "reply_text",
        Some(got.reply_text) == want["reply_text"].as_bool(),
        format!("Parsed::reply_text is_some() = {}", got.reply_text),
    );
    expect(
        "rule",
        got.rule == want["rule"].as_str(),
        format!("got {:?}", got.rule),
    );
    if let Some(leak) = want.get("leak") {
        expect(
            "leak",
            got.leak.as_deref() == leak.as_str(),
            format!(
                "leaks_relay gave {:?} for the answer {:?}",
                got.leak, got.answer
            ),
        );
        return failures;
    }
    expect(
        "answer",
        Some(got.answer.as_str()) == want["answer"].as_str(),
        format!("got {:?}", got.answer),
    );
    expect(
        "empty",
        Some(got.empty) == want["empty"].as_bool(),
        format!("is_empty() = {}", got.empty),
    );
    expect("text_below", !got.text_below, "text below the quote".into());
    expect(
        "leaks_relay",
        got.leak.is_none(),
        format!("{:?} in {:?}", got.leak, got.answer),
    );
    if name.ends_with("-commands") {
        expect(
            "a -commands sample",
            got.commands == ["#status resolved"] && got.empty,
            format!("commands {:?}, empty {}", got.commands, got.empty),
        );
    }
    if name.ends_with("-answer") {
        expect(
            "an -answer sample",
            got.commands.is_empty() && !got.empty,
            format!("commands {:?}, empty {}", got.commands, got.empty),
        );
    }
    failures
}

#[test]
fn every_client_reply_gives_only_what_the_agent_wrote() {
    let dir = dir();
    let files = emls(&dir);
    let names: Vec<String> = files.iter().map(|p| stem(p)).collect();
    let mut failures = Vec::new();
    for client in CLIENTS {
        for kind in ["answer", "commands"] {
            let name = format!("{client}-{kind}");
            if !names.contains(&name) {
                failures.push(format!("{name}.eml: missing"));
            }
        }
    }
    let unknown = names.iter().filter(|n| n.starts_with("unknown-")).count();
    if unknown < 2 {
        failures.push(format!("{unknown} unknown-* samples, want at least 2"));
    }
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") && !path.with_extension("eml").exists() {
            failures.push(format!("{}: no .eml beside it", path.display()));
        }
    }
    for path in &files {
        let name = stem(path);
        let json = path.with_extension("json");
        let Ok(text) = std::fs::read_to_string(&json) else {
            failures.push(format!("{name}.eml: no {name}.json"));
            continue;
        };
        let want: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json: {e}"));
        let fields: Vec<&String> = want.as_object().unwrap().keys().collect();
        for field in FIELDS {
            if want.get(field).is_none() {
                failures.push(format!("{name}.json: no field {field}"));
            }
        }
        for field in fields {
            if !FIELDS.contains(&field.as_str()) && field != "leak" {
                failures.push(format!("{name}.json: unknown field {field}"));
            }
        }
        if name.starts_with("unknown-") != want.get("leak").is_some() {
            failures.push(format!(
                "{name}.json: `leak` is for unknown-* samples, and they need it"
            ));
        }
        let raw = std::fs::read(path).unwrap();
        for (variant, bytes) in variants(&raw) {
            let got = run(&bytes);
            for failure in check(&name, &want, &got) {
                failures.push(format!("{name}.eml ({variant}): {failure}"));
            }
        }
        println!("{name}: {}", want["about"].as_str().unwrap_or(""));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn our_relays_are_all_quote() {
    let files = emls(&dir().join("relays"));
    assert_eq!(files.len(), 3, "relays/: the English and Chinese relays");
    for path in files {
        let raw = std::fs::read(&path).unwrap();
        let parsed = parse::message(&raw, &postdesk::limits::Limits::default()).unwrap();
        let cut = cut_answer(&parsed.text);
        assert_eq!(
            (cut.answer.as_str(), cut.rule.map(|r| r.as_str())),
            ("", Some("marker")),
            "{}",
            path.display()
        );
        assert!(
            leaks_relay(&parsed.text).is_some_and(|what| what.starts_with("the relay marker")),
            "{}",
            path.display()
        );
        let without_marker = parsed.text.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert!(
            leaks_relay(&without_marker).is_some(),
            "{}: its header block and footer alone are caught",
            path.display()
        );
    }
}
