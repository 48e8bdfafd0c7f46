//! The automatic-mail corpus of `tests/fixtures/automatic/` (issue 13, tests 1 and 2).
//!
//! Contract:
//! - Reads `tests/fixtures/automatic/<class>/<name>.eml` and the `<name>.json` beside it
//!   (keys: `about`, `class`, `bounce` {`kind`, `recipients`, `status`}, `ours`; see the
//!   folder's README); nothing outside the repository. Fails when the folder holds fewer
//!   than [`MIN_AUTOMATIC`] automatic or [`MIN_HUMAN`] human messages, when a message's
//!   folder is not its JSON `class`, or when an `.eml` has no `.json`.
//! - Test 1: every message through `parse::message` and `classify::verdict` with our
//!   identity gets its expected class, and a bounce its kind, failed recipients and
//!   status. Precision and recall per class are printed (`-- --nocapture`), every miss
//!   with the recognisers that fired.
//! - Test 2: every bounce, with its line ends made bare CR and made LF, keeps its class,
//!   kind and failed recipients.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;

use serde::Deserialize;

use postdesk::limits::Limits;
use postdesk::mail::classify::{self, Class, Identity};
use postdesk::mail::parse;

const HOSTNAME: &str = "postdesk.example.test";
const SUPPORT_ADDRESS: &str = "support@example.test";
/// The classes, in the order the table prints them.
const CLASSES: [&str; 7] = [
    "bounce",
    "auto-reply",
    "complaint",
    "receipt",
    "challenge",
    "bulk",
    "human",
];
const MIN_AUTOMATIC: usize = 300;
const MIN_HUMAN: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    #[allow(dead_code)]
    about: String,
    class: String,
    bounce: Option<ExpectedBounce>,
    #[serde(default)]
    #[allow(dead_code)]
    ours: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedBounce {
    kind: String,
    #[serde(default)]
    recipients: Vec<String>,
    status: Option<String>,
}

struct Fixture {
    name: String,
    raw: Vec<u8>,
    expected: Expected,
}

/// What postdesk made of one message.
#[derive(Debug, PartialEq, Eq)]
struct Got {
    class: String,
    kind: Option<String>,
    recipients: Vec<String>,
    status: Option<String>,
    why: String,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/automatic")
}

fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for class in CLASSES {
        let folder = dir().join(class);
        let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("{}: {e}", folder.display()))
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        for eml in names {
            let json = eml.with_extension("json");
            let text = std::fs::read_to_string(&json)
                .unwrap_or_else(|e| panic!("{}: {e}", json.display()));
            let expected: Expected =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", json.display()));
            let name = format!("{class}/{}", eml.file_name().unwrap().to_string_lossy());
            assert_eq!(expected.class, class, "{name}: its folder is not its class");
            assert_eq!(
                expected.bounce.is_some(),
                class == "bounce",
                "{name}: a bounce, and only a bounce, says what it bounced"
            );
            out.push(Fixture {
                name,
                raw: std::fs::read(&eml).expect("read"),
                expected,
            });
        }
    }
    let human = out.iter().filter(|f| f.expected.class == "human").count();
    assert!(
        out.len() - human >= MIN_AUTOMATIC,
        "{} automatic fixtures, want at least {MIN_AUTOMATIC}",
        out.len() - human
    );
    assert!(
        human >= MIN_HUMAN,
        "{human} human fixtures, want at least {MIN_HUMAN}"
    );
    out
}

fn us() -> Identity {
    Identity {
        hostname: HOSTNAME.to_owned(),
        addresses: vec![SUPPORT_ADDRESS.to_owned()],
    }
}

fn classify(raw: &[u8]) -> Got {
    let parsed = match parse::message(raw, &Limits::default()) {
        Ok(p) => p,
        Err(e) => {
            return Got {
                class: format!("unusable: {e}"),
                kind: None,
                recipients: Vec::new(),
                status: None,
                why: String::new(),
            }
        }
    };
    let verdict = classify::verdict(&parsed, &us());
    let (kind, recipients, status) = match &verdict.class {
        Class::Bounce(b) => {
            let report = b.report.clone().unwrap_or_default();
            let mut recipients = report.recipients;
            recipients.sort();
            (Some(b.kind.as_str().to_owned()), recipients, report.status)
        }
        _ => (None, Vec::new(), None),
    };
    Got {
        class: verdict.class.as_str().to_owned(),
        kind,
        recipients,
        status,
        why: verdict.explain(),
    }
}

/// What differs between `got` and `want` (empty when nothing does).
fn misses(got: &Got, want: &Expected) -> Vec<String> {
    let mut out = Vec::new();
    if got.class != want.class {
        out.push(format!("class {} (want {})", got.class, want.class));
        return out;
    }
    if let Some(b) = &want.bounce {
        if got.kind.as_deref() != Some(b.kind.as_str()) {
            out.push(format!("kind {:?} (want {})", got.kind, b.kind));
        }
        let mut recipients: Vec<String> = b.recipients.iter().map(|r| r.to_lowercase()).collect();
        recipients.sort();
        if got.recipients != recipients {
            out.push(format!(
                "recipients {:?} (want {recipients:?})",
                got.recipients
            ));
        }
        if b.status.is_some() && got.status != b.status {
            out.push(format!("status {:?} (want {:?})", got.status, b.status));
        }
    }
    out
}

/// Test 1.
#[test]
fn every_fixture_gets_its_class() {
    let all = fixtures();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut failures = Vec::new();
    for f in &all {
        let got = classify(&f.raw);
        pairs.push((f.expected.class.clone(), got.class.clone()));
        let m = misses(&got, &f.expected);
        if !m.is_empty() {
            failures.push(format!(
                "{}: {}; recognisers: {}",
                f.name,
                m.join("; "),
                got.why
            ));
        }
    }
    println!(
        "{} fixtures; per class (precision = right / classed as it, recall = right / expected):",
        all.len()
    );
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(w, g)| (w.as_str(), g.as_str()))
        .collect();
    for line in common::score::precision_recall(&pairs, &CLASSES) {
        println!("{line}");
    }
    for f in &failures {
        println!("MISS {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures misclassified or misread:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
}

/// `raw` with every line end (CRLF, LF, bare CR) made `end`.
fn with_line_ends(raw: &[u8], end: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(end);
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(end);
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Test 2.
#[test]
fn bounces_read_the_same_with_any_line_ending() {
    let mut failures = Vec::new();
    let mut bounces = 0;
    for f in fixtures().iter().filter(|f| f.expected.class == "bounce") {
        bounces += 1;
        let as_written = classify(&f.raw);
        for (style, end) in [
            ("bare CR", &b"\r"[..]),
            ("LF", &b"\n"[..]),
            ("CRLF", &b"\r\n"[..]),
        ] {
            let got = classify(&with_line_ends(&f.raw, end));
            let same = (&got.class, &got.kind, &got.recipients)
                == (&as_written.class, &as_written.kind, &as_written.recipients);
            if !same {
                failures.push(format!(
                    "{} with {style} line ends: {} {:?} {:?}, as written {} {:?} {:?}",
                    f.name,
                    got.class,
                    got.kind,
                    got.recipients,
                    as_written.class,
                    as_written.kind,
                    as_written.recipients
                ));
            }
        }
    }
    assert!(bounces > 0, "no bounce fixtures");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn line_end_conversion_converts_every_style() {
    assert_eq!(with_line_ends(b"a\r\nb\nc\rd", b"\r"), b"a\rb\rc\rd");
    assert_eq!(with_line_ends(b"a\r\nb\nc\rd", b"\n"), b"a\nb\nc\nd");
}

/// The driver of `bench/classify` (ignored; run in release): every message of the
/// fixtures, of `../shared/corpus` when present and of each directory in
/// `POSTDESK_BENCH_EML_DIRS` (`:`-separated, `.eml` files) is parsed, classified and
/// ingested; prints one `classify-bench {json}` line with the per-message times of
/// `parse::message`, of `classify::verdict` alone (best of `POSTDESK_BENCH_ROUNDS`
/// rounds, default 5) and of the whole ingest (prepare, the store's transaction, the
/// acknowledgement queued) into a fresh store.
#[test]
#[ignore = "benchmark driver for bench/classify"]
fn bench_classify() {
    use std::time::Instant;
    let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
    let mut sets: BTreeMap<&str, usize> = BTreeMap::new();
    for f in fixtures() {
        messages.push((format!("fixtures/{}", f.name), f.raw));
        *sets.entry("fixtures").or_default() += 1;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    let mut dirs: Vec<(&str, PathBuf)> = ["zammad", "zammad-extra", "zammad-upstream"]
        .iter()
        .map(|s| ("shared-corpus", corpus.join(s)))
        .collect();
    let extra = std::env::var("POSTDESK_BENCH_EML_DIRS").unwrap_or_default();
    for d in extra.split(':').filter(|d| !d.is_empty()) {
        dirs.push(("generated", PathBuf::from(d)));
    }
    for (set, d) in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml" || x == "box"))
            .collect();
        paths.sort();
        for p in paths {
            messages.push((p.display().to_string(), std::fs::read(&p).expect("read")));
            *sets.entry(set).or_default() += 1;
        }
    }
    let limits = Limits::default();
    let rounds: usize = std::env::var("POSTDESK_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let t = Instant::now();
    let parsed: Vec<parse::Parsed> = messages
        .iter()
        .filter_map(|(_, raw)| parse::message(raw, &limits).ok())
        .collect();
    let parse_s = t.elapsed().as_secs_f64();
    let mut classify_s = f64::MAX;
    let mut automatic = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        automatic = parsed
            .iter()
            .filter(|p| classify::verdict(p, &us()).class.is_automatic())
            .count();
        classify_s = classify_s.min(t.elapsed().as_secs_f64());
    }
    let ingest_s = ingest_all(&messages);
    let n = parsed.len() as f64;
    let json = serde_json::json!({
        "messages": messages.len(),
        "parsed": parsed.len(),
        "automatic": automatic,
        "sets": sets,
        "rounds": rounds,
        "parse_us": parse_s / n * 1e6,
        "classify_us": classify_s / n * 1e6,
        "classify_per_s": n / classify_s,
        "ingest_us": ingest_s / messages.len() as f64 * 1e6,
        "classify_share_of_ingest": (classify_s / n) / (ingest_s / messages.len() as f64),
    });
    println!("classify-bench {json}");
}

/// Seconds to ingest `messages` into a fresh store as one IMAP batch per 500 messages.
fn ingest_all(messages: &[(String, Vec<u8>)]) -> f64 {
    use postdesk::model::{MailboxName, Uid, UidValidity};
    use postdesk::workflow::{Desk, Engine, Incoming, IngestBatch};
    use std::sync::Arc;
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("temporary directory");
    std::fs::write(dir.path().join("password"), "unused").expect("password file");
    let text = format!(
        "data_dir = \"{}\"\nhostname = \"{HOSTNAME}\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 25\n\n[[queue]]\nname = \"support\"\n\n[[mailbox]]\nname = \"bench\"\naddress = \"{SUPPORT_ADDRESS}\"\nqueue = \"support\"\ntag = \"ACME\"\nhost = \"127.0.0.1\"\npassword_file = \"password\"\n",
        dir.path().join("data").display()
    );
    let cfg = postdesk::config::from_str(&dir.path().join("postdesk.toml"), &text).expect("config");
    let engine =
        Arc::new(Engine::new(&cfg, Arc::new(postdesk::clock::SystemClock)).expect("engine"));
    let desk = Desk::new(
        postdesk::store::Store::open(&cfg.db_path()).expect("store"),
        engine.clone(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = std::time::Instant::now();
    let mut uid = 0u32;
    for chunk in messages.chunks(500) {
        let items: Vec<Incoming> = chunk
            .iter()
            .map(|(_, raw)| {
                uid += 1;
                Incoming {
                    uid: Uid(uid),
                    raw: raw.clone(),
                    prepared: engine.prepare(raw),
                    cost: Default::default(),
                }
            })
            .collect();
        let batch = IngestBatch {
            mailbox: MailboxName::new("bench"),
            uidvalidity: UidValidity(1),
            items,
            last_uid: Uid(uid),
            backlog: 0,
            at: chrono::Utc::now(),
        };
        rt.block_on(desk.ingest(batch)).expect("ingest");
    }
    t.elapsed().as_secs_f64()
}
