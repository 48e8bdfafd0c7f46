//! Tidy: rules about the source tree that the compiler cannot check (STYLE.md 2.5, 2.11, 3).
//!
//! In the spirit of rust-analyzer's `xtask/src/tidy.rs`: the test reads `src/` and `tests/`
//! as text and fails with `path:line: what is wrong, and what to do`, every violation of a
//! rule at once. Each rule is one `#[test]` over today's tree, and each has unit tests on
//! snippets at the end of this file (a bad snippet caught, a good one passed).
//!
//! 1. Every `.rs` file under `src/` begins with a `//!` module doc: its contract.
//! 2. `src/store/` is a leaf: it names no top-level module but itself and
//!    [`STORE_MAY_IMPORT`].
//! 3. No SQL statement in a string literal outside `src/store/`.
//! 4. The top-level modules of `src/` (a file or folder directly under `src/`, read from the
//!    directory listing; `lib.rs`, `main.rs` and `bin/` are not modules) import each other
//!    without a cycle. `-- --nocapture` prints the graph (`a -> b, c`) and the lines per
//!    module.
//! 5. An external crate is named only in its home ([`CRATE_HOMES`]): `rusqlite` in the
//!    store, `async_imap` in `ingest::imap`, `lettre` in `notify`, `anyhow` in `cli` and
//!    `main.rs`.
//! 6. A `#[test]` (or `#[tokio::test]`, any `…::test`) in `tests/` or `src/` does not
//!    `return` at its own level before an `assert…!`/`panic!` (a `return` inside a nested
//!    closure, `fn` or `async` block is not the test's; one in `let … else` is).
//! 7. No `#[should_panic]`; no `#[ignore]` without a reason (`#[ignore = "why"]`), also
//!    inside `cfg_attr`.
//!
//! Decisions:
//! - Code is what the lexer below leaves: comments (doc comments too), string, char and
//!   byte literals are removed first, raw strings and nested block comments included, so
//!   `'{'` opens no block and `// crate::workflow` imports nothing. Rule 3 looks only at
//!   string literals; rule 5 only at identifiers, so `"lettre=warn"` (a log target) and a
//!   doc comment naming a crate are fine.
//! - An import is `crate::name`, `use crate::{a, b::c}` (each root name), or a `super::`
//!   path that climbs to the crate root (`super::x` in `src/store/mod.rs` is
//!   `crate::x`). `$crate` (macros) is not an import.
//! - Rules 2 and 4 skip `#[cfg(test)]` items (usually `mod tests { … }`) and files
//!   declared `#[cfg(test)] mod name;`: a unit test may build its input with a neighbour,
//!   and that is no dependency of the shipped code. Rules 3 and 5 check test code too: the
//!   schema and the drivers are the store's business, and a test elsewhere that reaches
//!   them breaks with every migration.
//! - Rule 1 asks for `//!` on the first non-blank line, `main.rs` and `lib.rs` included.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// ------------------------------------------------------------------ the rules' settings

/// The module that holds all SQL and sits at the bottom (STYLE.md 2.5).
const STORE: &str = "store";

/// Top-level modules that `src/store/` may import besides itself (rule 2).
const STORE_MAY_IMPORT: &[&str] = &["model", "mail", "calendar", "key"];

/// External crates that only one part of `src/` may name (rule 5), and that part: a path
/// ending in `/` is a folder, any other path one file.
const CRATE_HOMES: &[(&str, &[&str])] = &[
    ("rusqlite", &["src/store/"]),
    ("rusqlite_migration", &["src/store/"]),
    ("async_imap", &["src/ingest/imap.rs", "src/ingest/imap/"]),
    ("lettre", &["src/notify/"]),
    ("anyhow", &["src/cli.rs", "src/cli/", "src/main.rs"]),
];

/// Entries directly under `src/` that are not modules of the library (rule 4).
const NOT_MODULES: &[&str] = &["lib.rs", "main.rs", "bin"];

// ------------------------------------------------------------------ the rules on the tree

#[test]
fn every_source_file_states_its_contract() {
    let v = tree().src.iter().flat_map(rule_module_doc).collect();
    assert_none("rule 1 (module doc)", v);
}

#[test]
fn the_store_imports_only_what_sits_below_it() {
    let v = tree().src.iter().flat_map(rule_store_is_a_leaf).collect();
    assert_none("rule 2 (store is a leaf)", v);
}

#[test]
fn sql_lives_in_the_store() {
    let v = tree().src.iter().flat_map(rule_sql_only_in_store).collect();
    assert_none("rule 3 (SQL outside the store)", v);
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let tree = tree();
    let graph = module_graph(&tree.src, &tree.modules);
    print_graph(&graph, &tree.module_lines);
    assert_none("rule 4 (import cycles)", rule_no_import_cycles(&graph));
}

#[test]
fn external_crates_stay_in_their_module() {
    let v = tree().src.iter().flat_map(rule_crate_homes).collect();
    assert_none("rule 5 (external crates)", v);
}

#[test]
fn tests_do_not_return_before_asserting() {
    let tree = tree();
    let v = tree
        .tests
        .iter()
        .chain(&tree.src)
        .flat_map(rule_no_early_return)
        .collect();
    assert_none("rule 6 (early return in a test)", v);
}

#[test]
fn tests_neither_expect_panics_nor_ignore_without_a_reason() {
    let tree = tree();
    let v = tree
        .tests
        .iter()
        .chain(&tree.src)
        .flat_map(rule_test_attributes)
        .collect();
    assert_none("rule 7 (should_panic, ignore)", v);
}

fn assert_none(rule: &str, violations: Vec<Violation>) {
    let text: Vec<String> = violations.iter().map(Violation::to_string).collect();
    assert!(
        violations.is_empty(),
        "tidy {rule}: {} violation(s)\n{}",
        violations.len(),
        text.join("\n")
    );
}

// ------------------------------------------------------------------ reading the tree

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    /// Relative to the repository, with `/`.
    path: String,
    line: usize,
    message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

fn violation(path: &str, line: usize, message: impl Into<String>) -> Violation {
    Violation {
        path: path.to_owned(),
        line,
        message: message.into(),
    }
}

struct Tree {
    src: Vec<SourceFile>,
    tests: Vec<SourceFile>,
    /// The top-level modules, from the listing of `src/`.
    modules: BTreeSet<String>,
    /// Lines of each module's `.rs` files, test modules included.
    module_lines: BTreeMap<String, usize>,
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |dir: &str| -> Vec<SourceFile> {
            rust_files(&root.join(dir))
                .iter()
                .map(|path| {
                    let text = std::fs::read_to_string(path)
                        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                    let rel = path.strip_prefix(root).expect("under the repository");
                    let rel = rel.to_string_lossy().replace('\\', "/");
                    SourceFile::new(&rel, &text)
                })
                .collect()
        };
        let mut src = read("src");
        let tests = read("tests");
        // Files declared `#[cfg(test)] mod name;` are test code throughout.
        let test_dirs: Vec<String> = src.iter().flat_map(test_only_submodules).collect();
        for f in &mut src {
            if test_dirs.iter().any(|d| is_in(&f.rel, d)) {
                f.test.iter_mut().for_each(|t| *t = true);
            }
        }
        let modules = top_level_modules(&root.join("src"));
        let mut module_lines: BTreeMap<String, usize> =
            modules.iter().map(|m| (m.clone(), 0)).collect();
        for f in &src {
            if let Some(n) = top_module(&f.rel).and_then(|m| module_lines.get_mut(&m)) {
                *n += f.text.lines().count();
            }
        }
        Tree {
            src,
            tests,
            modules,
            module_lines,
        }
    })
}

/// Every `.rs` file under `dir`, sorted, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

/// The files and folders directly under `src/` that are modules (folders holding `.rs`).
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src/ lists") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if NOT_MODULES.contains(&name.as_str()) {
            continue;
        }
        if path.is_dir() && !rust_files(&path).is_empty() {
            out.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            out.insert(stem.to_owned());
        }
    }
    out
}

/// `rel` is the file `home`, or inside the folder `home` (ending in `/`).
fn is_in(rel: &str, home: &str) -> bool {
    if home.ends_with('/') {
        rel.starts_with(home)
    } else {
        rel == home
    }
}

/// The top-level module a file under `src/` belongs to: `src/store/tx.rs` → `store`.
fn top_module(rel: &str) -> Option<String> {
    let first = rel.strip_prefix("src/")?.split('/').next()?;
    if NOT_MODULES.contains(&first) {
        return None;
    }
    Some(first.strip_suffix(".rs").unwrap_or(first).to_owned())
}

/// The module path of a file: `src/store/tx.rs` → `[store, tx]`, `src/store/mod.rs` →
/// `[store]`, `src/lib.rs` → `[]`.
fn module_path(rel: &str) -> Vec<String> {
    let Some(inner) = rel.strip_prefix("src/") else {
        return Vec::new();
    };
    if inner == "lib.rs" || inner == "main.rs" {
        return Vec::new();
    }
    let mut parts: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if let Some(last) = parts.pop() {
        let stem = last.strip_suffix(".rs").unwrap_or(&last).to_owned();
        if stem != "mod" {
            parts.push(stem);
        }
    }
    parts
}

// ------------------------------------------------------------------ the lexer

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Identifiers and keywords (`r#type` as `type`).
    Ident(String),
    Punct(char),
    /// A string literal's text, escapes decoded: normal, raw, byte and C strings.
    Str(String),
    /// A char or byte literal.
    Char,
    Lifetime,
    Num,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    /// The line the token starts on, from 1.
    line: usize,
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits Rust source into tokens, dropping comments and whitespace.
fn lex(text: &str) -> Vec<Token> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let n = c.len();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < n {
        let ch = c[i];
        let start = line;
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < n && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            // Block comments nest.
            let mut depth = 0;
            while i < n {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' {
            let (s, next) = quoted(&c, i + 1, &mut line);
            out.push(Token {
                tok: Tok::Str(s),
                line: start,
            });
            i = next;
        } else if ch == '\'' {
            i = char_or_lifetime(&c, i, &mut out, line);
        } else if is_ident_start(ch) {
            let mut j = i;
            while j < n && is_ident_char(c[j]) {
                j += 1;
            }
            let word: String = c[i..j].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            let hashes = c[j..].iter().take_while(|&&h| h == '#').count();
            if raw_prefix && at(j + hashes) == '"' {
                // r"…", r#"…"#: ends at a quote followed by as many hashes.
                let mut k = j + hashes + 1;
                let body_start = k;
                while k < n
                    && !(c[k] == '"'
                        && c[k + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|&&h| h == '#')
                            .count()
                            == hashes)
                {
                    line += usize::from(c[k] == '\n');
                    k += 1;
                }
                out.push(Token {
                    tok: Tok::Str(c[body_start..k.min(n)].iter().collect()),
                    line: start,
                });
                i = (k + 1 + hashes).min(n);
            } else if word == "r" && hashes == 1 && is_ident_start(at(j + 1)) {
                // A raw identifier: r#type.
                let mut k = j + 1;
                while k < n && is_ident_char(c[k]) {
                    k += 1;
                }
                out.push(Token {
                    tok: Tok::Ident(c[j + 1..k].iter().collect()),
                    line: start,
                });
                i = k;
            } else if matches!(word.as_str(), "b" | "c") && at(j) == '"' {
                let (s, next) = quoted(&c, j + 1, &mut line);
                out.push(Token {
                    tok: Tok::Str(s),
                    line: start,
                });
                i = next;
            } else if word == "b" && at(j) == '\'' {
                i = char_or_lifetime(&c, j, &mut out, line);
            } else {
                out.push(Token {
                    tok: Tok::Ident(word),
                    line: start,
                });
                i = j;
            }
        } else if ch.is_ascii_digit() {
            let mut j = i;
            while j < n && (is_ident_char(c[j]) || (c[j] == '.' && at(j + 1).is_ascii_digit())) {
                j += 1;
            }
            out.push(Token {
                tok: Tok::Num,
                line: start,
            });
            i = j;
        } else {
            out.push(Token {
                tok: Tok::Punct(ch),
                line: start,
            });
            i += 1;
        }
    }
    out
}

/// A `"…"` body from `i` (just after the opening quote): the decoded text and the index
/// after the closing quote. Escapes that stand for white space become white space.
fn quoted(c: &[char], mut i: usize, line: &mut usize) -> (String, usize) {
    let mut s = String::new();
    while i < c.len() && c[i] != '"' {
        if c[i] == '\\' && i + 1 < c.len() {
            let e = c[i + 1];
            *line += usize::from(e == '\n');
            s.push(match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '\n' => ' ',
                other => other,
            });
            i += 2;
        } else {
            *line += usize::from(c[i] == '\n');
            s.push(c[i]);
            i += 1;
        }
    }
    (s, i + 1)
}

/// At a `'`: a char literal (`'x'`, `'\n'`, `'\u{1F600}'`) or a lifetime/label (`'a`).
/// Returns the index after it.
fn char_or_lifetime(c: &[char], i: usize, out: &mut Vec<Token>, line: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    if at(i + 1) == '\\' {
        let mut k = i + 3;
        while k < c.len() && c[k] != '\'' {
            k += 1;
        }
        out.push(Token {
            tok: Tok::Char,
            line,
        });
        k + 1
    } else if at(i + 2) == '\'' {
        out.push(Token {
            tok: Tok::Char,
            line,
        });
        i + 3
    } else {
        let mut k = i + 1;
        while k < c.len() && is_ident_char(c[k]) {
            k += 1;
        }
        out.push(Token {
            tok: Tok::Lifetime,
            line,
        });
        k
    }
}

fn is_punct(t: &[Token], i: usize, p: char) -> bool {
    t.get(i).is_some_and(|x| x.tok == Tok::Punct(p))
}

fn ident(t: &[Token], i: usize) -> Option<&str> {
    match t.get(i).map(|x| &x.tok) {
        Some(Tok::Ident(s)) => Some(s),
        _ => None,
    }
}

fn is_ident(t: &[Token], i: usize, word: &str) -> bool {
    ident(t, i) == Some(word)
}

fn is_path_sep(t: &[Token], i: usize) -> bool {
    is_punct(t, i, ':') && is_punct(t, i + 1, ':')
}

/// The index of the bracket closing the one at `open` (the last token if unbalanced).
fn close_of(t: &[Token], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, tok) in t.iter().enumerate().skip(open) {
        match tok.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    t.len().saturating_sub(1)
}

/// An attribute `#[…]` or `#![…]` starting at `i`.
struct Attr {
    inner: bool,
    /// The tokens between the brackets.
    body: std::ops::Range<usize>,
    /// The closing `]`.
    close: usize,
}

fn attr_at(t: &[Token], i: usize) -> Option<Attr> {
    if !is_punct(t, i, '#') {
        return None;
    }
    let inner = is_punct(t, i + 1, '!');
    let open = i + 1 + usize::from(inner);
    if !is_punct(t, open, '[') {
        return None;
    }
    let close = close_of(t, open);
    Some(Attr {
        inner,
        body: open + 1..close,
        close,
    })
}

/// `cfg(test)` or `cfg(all(…, test, …))`.
fn is_cfg_test(body: &[Token]) -> bool {
    let pred = match body {
        [cfg, open, pred @ .., _]
            if cfg.tok == Tok::Ident("cfg".into()) && open.tok == Tok::Punct('(') =>
        {
            pred
        }
        _ => return false,
    };
    match pred {
        [one] => one.tok == Tok::Ident("test".into()),
        [all, _, args @ .., _] if all.tok == Tok::Ident("all".into()) => {
            let mut depth = 0;
            args.iter().enumerate().any(|(k, a)| {
                match a.tok {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => depth -= 1,
                    _ => {}
                }
                depth == 0
                    && a.tok == Tok::Ident("test".into())
                    && (k == 0 || is_punct(args, k - 1, ','))
                    && (k + 1 == args.len() || is_punct(args, k + 1, ','))
            })
        }
        _ => false,
    }
}

/// The index of the last token of the item starting at `i` (after its attributes): its
/// `;`, or the `}` closing its first top-level block.
fn item_end(t: &[Token], mut i: usize) -> usize {
    while let Some(a) = attr_at(t, i) {
        i = a.close + 1;
    }
    let mut depth = 0usize;
    while i < t.len() {
        match t[i].tok {
            Tok::Punct('{') if depth == 0 => return close_of(t, i),
            Tok::Punct(';') if depth == 0 => return i,
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    t.len().saturating_sub(1)
}

/// Per token: inside a `#[cfg(test)]` item, or in a file that opens with `#![cfg(test)]`.
fn test_mask(t: &[Token]) -> Vec<bool> {
    let mut mask = vec![false; t.len()];
    let mut depth = 0usize;
    let mut i = 0;
    while i < t.len() {
        match t[i].tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        if let Some(a) = attr_at(t, i) {
            if is_cfg_test(&t[a.body.clone()]) {
                if a.inner && depth == 0 {
                    return vec![true; t.len()];
                }
                if !a.inner {
                    let end = item_end(t, a.close + 1);
                    mask[i..=end].iter_mut().for_each(|m| *m = true);
                    i = end + 1;
                    continue;
                }
            }
        }
        i += 1;
    }
    mask
}

struct SourceFile {
    /// Relative to the repository, with `/`.
    rel: String,
    text: String,
    toks: Vec<Token>,
    /// Per token: test-only code (see [`test_mask`]).
    test: Vec<bool>,
}

impl SourceFile {
    fn new(rel: &str, text: &str) -> SourceFile {
        let toks = lex(text);
        let test = test_mask(&toks);
        SourceFile {
            rel: rel.to_owned(),
            text: text.to_owned(),
            toks,
            test,
        }
    }
}

/// Paths (a file, or a folder ending in `/`) of the modules this file declares as
/// `#[cfg(test)] mod name;`.
fn test_only_submodules(f: &SourceFile) -> Vec<String> {
    let t = &f.toks;
    let dir = match f.rel.rsplit_once('/') {
        Some((dir, "lib.rs" | "main.rs" | "mod.rs")) => format!("{dir}/"),
        _ => format!("{}/", f.rel.trim_end_matches(".rs")),
    };
    let mut out = Vec::new();
    for i in 0..t.len() {
        let Some(a) = attr_at(t, i) else { continue };
        if a.inner || !is_cfg_test(&t[a.body.clone()]) {
            continue;
        }
        let mut j = a.close + 1;
        while let Some(b) = attr_at(t, j) {
            j = b.close + 1;
        }
        if is_ident(t, j, "pub") {
            j += 1;
            if is_punct(t, j, '(') {
                j = close_of(t, j) + 1;
            }
        }
        if let (true, Some(name), true) = (
            is_ident(t, j, "mod"),
            ident(t, j + 1),
            is_punct(t, j + 2, ';'),
        ) {
            out.push(format!("{dir}{name}.rs"));
            out.push(format!("{dir}{name}/"));
        }
    }
    out
}

// ------------------------------------------------------------------ rule 1: module doc

fn rule_module_doc(f: &SourceFile) -> Vec<Violation> {
    let first = f
        .text
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim().is_empty());
    match first {
        Some((_, l)) if l.trim_start().starts_with("//!") => Vec::new(),
        Some((n, l)) => vec![violation(
            &f.rel,
            n + 1,
            format!(
                "the file does not begin with a `//!` module doc (it begins `{}`); open it \
                 with `//!` lines stating the module's contract: what goes in, what comes \
                 out, what it never does (STYLE.md 2.2)",
                l.trim()
            ),
        )],
        None => vec![violation(
            &f.rel,
            1,
            "the file is empty; give it a `//!` module doc stating its contract (STYLE.md 2.2)",
        )],
    }
}

// ------------------------------------------------------------------ imports (rules 2, 4)

/// A name at the crate root that code refers to.
#[derive(Debug, PartialEq, Eq)]
struct RootRef {
    name: String,
    line: usize,
}

/// Every crate-root name that the file's non-test code refers to: `crate::name`, each root
/// name in `crate::{a, b::c}`, and `super::…::name` where the supers climb to the root.
fn root_refs(f: &SourceFile) -> Vec<RootRef> {
    let t = &f.toks;
    let base = module_path(&f.rel);
    let mut out = Vec::new();
    let mut depth = 0usize;
    // Inline `mod name { … }` blocks, with the depth inside their braces.
    let mut inline: Vec<usize> = Vec::new();
    for i in 0..t.len() {
        match t[i].tok {
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth = depth.saturating_sub(1);
                while inline.last().is_some_and(|d| *d > depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        if f.test[i] {
            continue;
        }
        if is_ident(t, i, "mod") && ident(t, i + 1).is_some() && is_punct(t, i + 2, '{') {
            inline.push(depth + 1);
        }
        let after_sep = i > 0 && is_punct(t, i - 1, ':');
        if is_ident(t, i, "crate")
            && !(i > 0 && is_punct(t, i - 1, '$'))
            && !after_sep
            && is_path_sep(t, i + 1)
        {
            out.extend(names_at(t, i + 3));
        } else if is_ident(t, i, "super") && !after_sep {
            let mut j = i;
            let mut ups = 0;
            while is_ident(t, j, "super") && is_path_sep(t, j + 1) {
                ups += 1;
                j += 3;
            }
            if ups == base.len() + inline.len() {
                out.extend(names_at(t, j));
            }
        }
    }
    out
}

/// The root names of the path that continues at `i`: `name`, or each item of `{a, b::c}`.
fn names_at(t: &[Token], i: usize) -> Vec<RootRef> {
    let named = |k: usize| match ident(t, k) {
        Some(n) if !matches!(n, "self" | "super" | "crate") => Some(RootRef {
            name: n.to_owned(),
            line: t[k].line,
        }),
        _ => None,
    };
    if !is_punct(t, i, '{') {
        return named(i).into_iter().collect();
    }
    let close = close_of(t, i);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut item_start = true;
    for (k, tok) in t.iter().enumerate().take(close).skip(i + 1) {
        match tok.tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
            Tok::Punct(',') if depth == 0 => {
                item_start = true;
                continue;
            }
            _ => {}
        }
        if item_start && depth == 0 {
            out.extend(named(k));
        }
        item_start = false;
    }
    out
}

/// Lines of each name, in order, so a violation names the first and counts the rest.
fn by_name(refs: impl IntoIterator<Item = RootRef>) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for r in refs {
        out.entry(r.name).or_default().push(r.line);
    }
    out
}

fn also_on(lines: &[usize]) -> String {
    match lines {
        [] | [_] => String::new(),
        [_, rest @ ..] => {
            let rest: Vec<String> = rest.iter().map(usize::to_string).collect();
            format!(" (also line {})", rest.join(", "))
        }
    }
}

fn rule_store_is_a_leaf(f: &SourceFile) -> Vec<Violation> {
    if top_module(&f.rel).as_deref() != Some(STORE) {
        return Vec::new();
    }
    let refs = root_refs(f)
        .into_iter()
        .filter(|r| r.name != STORE && !STORE_MAY_IMPORT.contains(&r.name.as_str()));
    by_name(refs)
        .into_iter()
        .map(|(name, lines)| {
            violation(
                &f.rel,
                lines[0],
                format!(
                    "the store imports `crate::{name}`{}; the store is a leaf (STYLE.md 2.5) and \
                     may import only {}: move what it needs down into one of those, or let \
                     the caller pass it in (the allowlist is STORE_MAY_IMPORT in tests/tidy.rs)",
                    also_on(&lines),
                    STORE_MAY_IMPORT.join(", ")
                ),
            )
        })
        .collect()
}

/// `from` → `to` → the first place (file, line) where `from` names `to`.
type Graph = BTreeMap<String, BTreeMap<String, (String, usize)>>;

fn module_graph(files: &[SourceFile], modules: &BTreeSet<String>) -> Graph {
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for f in files {
        let Some(from) = top_module(&f.rel).filter(|m| modules.contains(m)) else {
            continue;
        };
        for r in root_refs(f) {
            if r.name != from && modules.contains(&r.name) {
                let edges = graph.entry(from.clone()).or_default();
                edges
                    .entry(r.name)
                    .or_insert_with(|| (f.rel.clone(), r.line));
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan), sorted.
fn import_cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut Tarjan<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(BTreeMap::keys) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// A shortest path `from` → … → `to` inside `within` (both ends included).
fn shortest_path(graph: &Graph, from: &str, to: &str, within: &BTreeSet<&str>) -> Vec<String> {
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        if v == to {
            break;
        }
        for w in graph.get(v).into_iter().flat_map(BTreeMap::keys) {
            let w = w.as_str();
            if within.contains(w) && w != from && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    let mut path = vec![to.to_owned()];
    let mut v = to;
    while v != from {
        match came_from.get(v) {
            Some(p) => {
                path.push((*p).to_owned());
                v = p;
            }
            None => break,
        }
    }
    path.reverse();
    path
}

/// One violation per import that lies on a cycle, at the place it is made, with a
/// shortest cycle through it.
fn rule_no_import_cycles(graph: &Graph) -> Vec<Violation> {
    let mut out = Vec::new();
    for component in import_cycles(graph) {
        let members: BTreeSet<&str> = component.iter().map(String::as_str).collect();
        for from in &component {
            for (to, (path, line)) in &graph[from] {
                if !members.contains(to.as_str()) {
                    continue;
                }
                let back = shortest_path(graph, to, from, &members);
                out.push(violation(
                    path,
                    *line,
                    format!(
                        "`{from}` imports `{to}`, closing the import cycle {from} -> {} \
                         (strongly connected: {}); a module must not import one above it: \
                         move the shared type down a layer, or pass the value or a closure \
                         in from above (STYLE.md 2.5)",
                        back.join(" -> "),
                        component.join(", ")
                    ),
                ));
            }
        }
    }
    out.sort();
    out
}

fn print_graph(graph: &Graph, lines: &BTreeMap<String, usize>) {
    println!("module graph (a -> b: a names crate::b outside #[cfg(test)] items):");
    for (from, to) in graph {
        let to: Vec<&str> = to.keys().map(String::as_str).collect();
        println!("{from} -> {}", to.join(", "));
    }
    println!("lines per module (every .rs file of the module, tests included):");
    for (module, n) in lines {
        println!("{module:<12} {n:>6}");
    }
    println!("{:<12} {:>6}", "total", lines.values().sum::<usize>());
}

// ------------------------------------------------------------------ rule 3: SQL

/// The kind of SQL statement in `s`, if any: uppercase keywords only.
fn sql_statement(s: &str) -> Option<&'static str> {
    let words: Vec<&str> = s
        .split(|c: char| !is_ident_char(c))
        .filter(|w| !w.is_empty())
        .collect();
    let w = |k: usize| words.get(k).copied().unwrap_or("");
    let is_name = |k: usize| w(k).starts_with(is_ident_start);
    for i in 0..words.len() {
        // SQLite's conflict clause: INSERT OR IGNORE INTO, UPDATE OR REPLACE t SET.
        let after_or = if w(i + 1) == "OR" { i + 3 } else { i + 1 };
        let found = match w(i) {
            "SELECT" if words[i + 1..].contains(&"FROM") => Some("SELECT … FROM"),
            "INSERT" if w(after_or) == "INTO" => Some("INSERT INTO"),
            "REPLACE" if w(i + 1) == "INTO" => Some("REPLACE INTO"),
            "UPDATE" if is_name(after_or) && w(after_or + 1) == "SET" => Some("UPDATE … SET"),
            "DELETE" if w(i + 1) == "FROM" => Some("DELETE FROM"),
            "CREATE" => {
                let mut k = i + 1;
                while matches!(w(k), "UNIQUE" | "TEMP" | "TEMPORARY" | "VIRTUAL") {
                    k += 1;
                }
                matches!(w(k), "TABLE" | "INDEX" | "TRIGGER" | "VIEW").then_some("CREATE …")
            }
            "ALTER" if w(i + 1) == "TABLE" => Some("ALTER TABLE"),
            "DROP" if matches!(w(i + 1), "TABLE" | "INDEX" | "TRIGGER" | "VIEW") => Some("DROP …"),
            "PRAGMA" if is_name(i + 1) => Some("PRAGMA"),
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

fn rule_sql_only_in_store(f: &SourceFile) -> Vec<Violation> {
    if !f.rel.starts_with("src/") || top_module(&f.rel).as_deref() == Some(STORE) {
        return Vec::new();
    }
    f.toks
        .iter()
        .filter_map(|t| match &t.tok {
            Tok::Str(s) => sql_statement(s).map(|kind| {
                violation(
                    &f.rel,
                    t.line,
                    format!(
                        "SQL ({kind}) in a string literal outside src/{STORE}/; all SQL lives in \
                         the store (STYLE.md 2.5): add a store operation named for what it \
                         does, and call it"
                    ),
                )
            }),
            _ => None,
        })
        .collect()
}

// ------------------------------------------------------------------ rule 5: crate homes

fn rule_crate_homes(f: &SourceFile) -> Vec<Violation> {
    if !f.rel.starts_with("src/") {
        return Vec::new();
    }
    let mut found: BTreeMap<&str, (&[&str], Vec<usize>)> = BTreeMap::new();
    for t in &f.toks {
        let Tok::Ident(name) = &t.tok else { continue };
        let Some((krate, homes)) = CRATE_HOMES.iter().find(|(k, _)| k == name) else {
            continue;
        };
        if !homes.iter().any(|h| is_in(&f.rel, h)) {
            found
                .entry(krate)
                .or_insert((homes, Vec::new()))
                .1
                .push(t.line);
        }
    }
    found
        .into_iter()
        .map(|(krate, (homes, lines))| {
            violation(
                &f.rel,
                lines[0],
                format!(
                    "`{krate}` is used outside its home{}; only {} may name it (ARCHITECTURE.md \
                     invariant): go through that module's API, or move this code there",
                    also_on(&lines),
                    homes.join(" or ")
                ),
            )
        })
        .collect()
}

// ------------------------------------------------------------------ rule 6: early return

/// A test function: its name, and the tokens of its body's braces.
struct TestFn {
    name: String,
    open: usize,
    close: usize,
}

/// `#[test]`, `#[tokio::test]`, `#[tokio::test(flavor = …)]`: a path ending in `test`.
fn is_test_attr(body: &[Token]) -> bool {
    let mut last = None;
    let mut k = 0;
    while let Some(name) = ident(body, k) {
        last = Some(name);
        if is_path_sep(body, k + 1) {
            k += 3;
        } else {
            k += 1;
            break;
        }
    }
    last == Some("test") && (k == body.len() || is_punct(body, k, '('))
}

fn test_fns(t: &[Token]) -> Vec<TestFn> {
    let mut out: Vec<TestFn> = Vec::new();
    for i in 0..t.len() {
        let Some(a) = attr_at(t, i) else { continue };
        if a.inner || !is_test_attr(&t[a.body.clone()]) {
            continue;
        }
        let mut j = a.close + 1;
        while let Some(b) = attr_at(t, j) {
            j = b.close + 1;
        }
        while j < t.len() && !is_ident(t, j, "fn") && !is_punct(t, j, '{') && !is_punct(t, j, ';') {
            j += 1;
        }
        let Some(name) = ident(t, j + 1).filter(|_| is_ident(t, j, "fn")) else {
            continue;
        };
        let mut k = j + 2;
        let mut depth = 0usize;
        while k < t.len() && !(depth == 0 && is_punct(t, k, '{')) {
            match t[k].tok {
                Tok::Punct('(' | '[') => depth += 1,
                Tok::Punct(')' | ']') => depth = depth.saturating_sub(1),
                _ => {}
            }
            k += 1;
        }
        if k < t.len() && !out.iter().any(|f| f.open == k) {
            out.push(TestFn {
                name: name.to_owned(),
                open: k,
                close: close_of(t, k),
            });
        }
    }
    out
}

fn is_assertion(name: &str) -> bool {
    ["assert", "debug_assert", "prop_assert"]
        .iter()
        .any(|p| name.starts_with(p))
        || name == "panic"
}

/// Whether a `|` at `i` opens a closure's parameters (rather than being `a | b`): it does
/// where an expression starts.
fn opens_closure(t: &[Token], i: usize, start: usize) -> bool {
    if i == start {
        return true;
    }
    match &t[i - 1].tok {
        Tok::Punct('(' | '[' | '{' | ',' | '=' | ';' | ':') => true,
        Tok::Punct('>') => is_punct(t, i.wrapping_sub(2), '='),
        Tok::Ident(w) => matches!(w.as_str(), "move" | "return" | "async" | "in"),
        _ => false,
    }
}

/// The first `return` at the body's own level, and the first assertion after it.
fn early_return(t: &[Token], start: usize, end: usize) -> Option<(usize, usize)> {
    /// Code that belongs to something nested in the test: a closure, `fn` or `async` block.
    enum Nested {
        /// A block opened at this depth.
        Block(usize),
        /// A closure body without braces, ending at a `,` or `;` at this depth.
        Expr(usize),
    }
    let mut nested: Vec<Nested> = Vec::new();
    let mut depth = 0usize;
    // The next `{` at this depth opens a nested block (a `fn` item, a closure, `async`).
    let mut block_at: Option<usize> = None;
    let mut ret: Option<usize> = None;
    let mut i = start;
    while i < end {
        match &t[i].tok {
            Tok::Punct(c @ ('(' | '[' | '{')) => {
                if *c == '{' && block_at == Some(depth) {
                    nested.push(Nested::Block(depth));
                    block_at = None;
                }
                depth += 1;
            }
            Tok::Punct(c @ (')' | ']' | '}')) => {
                depth = depth.saturating_sub(1);
                while matches!(nested.last(), Some(Nested::Expr(d)) if *d > depth) {
                    nested.pop();
                }
                if *c == '}' && matches!(nested.last(), Some(Nested::Block(d)) if *d == depth) {
                    nested.pop();
                }
                if block_at.is_some_and(|d| d > depth) {
                    block_at = None;
                }
            }
            Tok::Punct(c @ (',' | ';')) => {
                while matches!(nested.last(), Some(Nested::Expr(d)) if *d == depth) {
                    nested.pop();
                }
                if *c == ';' && block_at == Some(depth) {
                    block_at = None;
                }
            }
            Tok::Punct('|') if opens_closure(t, i, start) => {
                let mut j = i + 1;
                let mut d = 0usize;
                while j < end && !(d == 0 && is_punct(t, j, '|')) {
                    match t[j].tok {
                        Tok::Punct('(' | '[' | '{') => d += 1,
                        Tok::Punct(')' | ']' | '}') => d = d.saturating_sub(1),
                        _ => {}
                    }
                    j += 1;
                }
                // `|x| -> T { … }` and `|x| { … }` have a block; `|x| expr` does not.
                if is_punct(t, j + 1, '{') || (is_punct(t, j + 1, '-') && is_punct(t, j + 2, '>')) {
                    block_at = Some(depth);
                } else {
                    nested.push(Nested::Expr(depth));
                }
                i = j + 1;
                continue;
            }
            Tok::Ident(w) if w == "fn" && ident(t, i + 1).is_some() => block_at = Some(depth),
            Tok::Ident(w)
                if w == "async"
                    && (is_punct(t, i + 1, '{')
                        || (is_ident(t, i + 1, "move") && is_punct(t, i + 2, '{'))) =>
            {
                block_at = Some(depth)
            }
            Tok::Ident(w) if w == "return" && nested.is_empty() && ret.is_none() => ret = Some(i),
            Tok::Ident(w) if is_assertion(w) && is_punct(t, i + 1, '!') => {
                if let Some(r) = ret {
                    return Some((r, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn rule_no_early_return(f: &SourceFile) -> Vec<Violation> {
    let t = &f.toks;
    test_fns(t)
        .into_iter()
        .filter_map(|test| {
            let (ret, assertion) = early_return(t, test.open + 1, test.close)?;
            Some(violation(
                &f.rel,
                t[ret].line,
                format!(
                    "test `{}` returns here, before the assertion on line {}, so it passes \
                     without checking; a test that cannot run here says so with \
                     #[ignore = \"why\"] (or a cfg_attr set by build.rs), or asserts today's \
                     behaviour (STYLE.md 3)",
                    test.name, t[assertion].line
                ),
            ))
        })
        .collect()
}

// ------------------------------------------------------------------ rule 7: attributes

fn rule_test_attributes(f: &SourceFile) -> Vec<Violation> {
    let t = &f.toks;
    let mut out = Vec::new();
    for i in 0..t.len() {
        let Some(a) = attr_at(t, i) else { continue };
        let body = &t[a.body.clone()];
        // `#[x]`, or each attribute that `#[cfg_attr(predicate, x, y)]` applies.
        let mut attrs: Vec<&[Token]> = Vec::new();
        if is_ident(body, 0, "cfg_attr") && is_punct(body, 1, '(') {
            let close = close_of(body, 1);
            let mut depth = 0usize;
            let mut from = 2;
            for k in 2..=close {
                match body[k].tok {
                    Tok::Punct('(' | '[' | '{') => depth += 1,
                    Tok::Punct(')' | ']' | '}') if k < close => depth = depth.saturating_sub(1),
                    _ => {}
                }
                if depth == 0 && (is_punct(body, k, ',') || k == close) {
                    attrs.push(&body[from..k]);
                    from = k + 1;
                }
            }
            attrs.remove(0); // the predicate
        } else {
            attrs.push(body);
        }
        for attr in attrs {
            let line = t[i].line;
            if is_ident(attr, 0, "should_panic") {
                out.push(violation(
                    &f.rel,
                    line,
                    "#[should_panic] passes on any panic, the wrong one too; call the code so \
                     that it returns the error (or catch_unwind) and assert on it (STYLE.md 3)",
                ));
            } else if is_ident(attr, 0, "ignore") && !is_punct(attr, 1, '=') {
                out.push(violation(
                    &f.rel,
                    line,
                    "#[ignore] without a reason; write #[ignore = \"why it cannot run here\"] so \
                     that `cargo test` prints why (STYLE.md 3)",
                ));
            }
        }
    }
    out
}

// ------------------------------------------------------------------ the rules on snippets

mod snippets {
    use super::*;

    fn file(rel: &str, text: &str) -> SourceFile {
        SourceFile::new(rel, text)
    }

    fn lines(v: &[Violation]) -> Vec<usize> {
        v.iter().map(|v| v.line).collect()
    }

    fn idents(f: &SourceFile) -> Vec<&str> {
        f.toks
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Ident(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn lexer_keeps_code_and_drops_comments_and_literals() {
        let f = file(
            "src/x.rs",
            r####"let a = r#"crate::workflow "{ still"#; // crate::notify {
/* nested /* crate::ingest */ crate::daemon { */ let b = '{'; let c = b'}';
let d: &'static str = "}\"crate::cli\
    next"; fn f<'a>(x: &'a u8) { let r#type = '\u{7b}'; 'outer: loop {} }
let e = br##"raw "# bytes"##; crate::model::X"####,
        );
        assert_eq!(
            idents(&f),
            [
                "let", "a", "let", "b", "let", "c", "let", "d", "str", "fn", "f", "x", "u8", "let",
                "type", "loop", "let", "e", "crate", "model", "X"
            ]
        );
        let strings: Vec<&str> = f
            .toks
            .iter()
            .filter_map(|t| match &t.tok {
                Tok::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            strings,
            [
                "crate::workflow \"{ still",
                "}\"crate::cli     next",
                "raw \"# bytes"
            ]
        );
        let braces = f.toks.iter().filter(|t| t.tok == Tok::Punct('{')).count();
        assert_eq!(braces, 2, "only fn f's body and the loop open a block");
        let model = f
            .toks
            .iter()
            .find(|t| t.tok == Tok::Ident("model".into()))
            .unwrap();
        assert_eq!(
            model.line, 5,
            "lines are counted through comments and strings"
        );
    }

    #[test]
    fn test_mask_covers_cfg_test_items_only() {
        let f = file(
            "src/x.rs",
            "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() {}\n}\n#[cfg(all(test, unix))]\nuse c;\n#[cfg(not(test))]\nfn d() {}\n",
        );
        let test: Vec<&str> = f
            .toks
            .iter()
            .zip(&f.test)
            .filter_map(|(t, m)| match &t.tok {
                Tok::Ident(s) if *m => Some(s.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            test,
            ["cfg", "test", "mod", "tests", "fn", "b", "cfg", "all", "test", "unix", "use", "c"]
        );
        let all = file(
            "src/x/tests.rs",
            "//! Tests.\n#![cfg(test)]\nuse crate::y;\n",
        );
        assert!(all.test.iter().all(|m| *m));
        let parent = file("src/x/mod.rs", "#[cfg(test)]\nmod tests;\nmod real;\n");
        assert_eq!(
            test_only_submodules(&parent),
            ["src/x/tests.rs", "src/x/tests/"]
        );
    }

    #[test]
    fn rule_1_wants_a_module_doc_first() {
        let good = file("src/a.rs", "\n//! Does a.\n//!\n//! Never b.\nfn f() {}\n");
        assert!(rule_module_doc(&good).is_empty());
        let item_doc = file("src/a.rs", "/// Item doc.\nfn f() {}\n");
        assert_eq!(lines(&rule_module_doc(&item_doc)), [1]);
        let late = file("src/a.rs", "\nuse x;\n//! Too late.\n");
        assert_eq!(lines(&rule_module_doc(&late)), [2]);
        assert_eq!(lines(&rule_module_doc(&file("src/a.rs", ""))), [1]);
    }

    #[test]
    fn rule_2_keeps_the_store_a_leaf() {
        let bad = file(
            "src/store/tx.rs",
            "//! Tx.\nuse crate::model::Status;\nuse crate::{mail::Raw, workflow::Batch};\n\
             fn f() { crate::thread::decide(); let _ = crate::workflow::X; }\n\
             pub(in crate::store) fn g() {}\n\
             macro_rules! m { () => { $crate::daemon::run() } }\n\
             // use crate::notify;\n\
             #[cfg(test)]\nmod tests { use crate::ingest::Batch; }\n",
        );
        let v = rule_store_is_a_leaf(&bad);
        assert_eq!(lines(&v), [4, 3], "{v:?}");
        assert!(v[0].message.contains("`crate::thread`"), "{}", v[0]);
        assert!(
            v[1].message.contains("`crate::workflow` (also line 4)"),
            "{}",
            v[1]
        );
        let up = file(
            "src/store/mod.rs",
            "//! Store.\nuse super::daemon::Run;\nuse self::tx::Tx;\n",
        );
        assert_eq!(lines(&rule_store_is_a_leaf(&up)), [2]);
        let sub = file(
            "src/store/tx.rs",
            "//! Tx.\nuse super::Store;\nuse super::super::model::X;\n",
        );
        assert!(rule_store_is_a_leaf(&sub).is_empty());
        let elsewhere = file("src/thread.rs", "//! Thread.\nuse crate::workflow::X;\n");
        assert!(rule_store_is_a_leaf(&elsewhere).is_empty());
    }

    #[test]
    fn rule_3_finds_sql_in_string_literals_outside_the_store() {
        let text = "//! W.\n\
            const Q: &str = \"SELECT id\\nFROM tickets\";\n\
            const R: &str = r#\"INSERT OR IGNORE INTO t (a) VALUES (?1)\"#;\n\
            fn f() { g(\"UPDATE tickets SET status = ?1\"); }\n\
            const V: &str = \"CREATE VIRTUAL TABLE fts USING fts5(body)\";\n\
            const P: &str = \"PRAGMA foreign_keys = ON\";\n\
            // SELECT id FROM tickets\n\
            /// DELETE FROM tickets\n\
            const L: &str = \"select id from tickets\";\n\
            const E: &str = \"Update the ticket, then SET the status: SELECT a queue\";\n";
        let v = rule_sql_only_in_store(&file("src/workflow/mod.rs", text));
        assert_eq!(lines(&v), [2, 3, 4, 5, 6], "{v:?}");
        assert!(rule_sql_only_in_store(&file("src/store/tx.rs", text)).is_empty());
    }

    #[test]
    fn rule_4_finds_each_import_on_a_cycle() {
        let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
        let mut files = vec![
            file("src/a.rs", "//! A.\nuse crate::b::X;\n"),
            file("src/b/mod.rs", "//! B.\nfn f() {\n    crate::c::g()\n}\n#[cfg(test)]\nmod tests { use crate::d::Y; }\n"),
            file("src/c.rs", "//! C.\nuse crate::d;\nfn g() {}\n"),
            file("src/d.rs", "//! D.\nuse crate::b;\n"),
        ];
        // b -> c -> d -> b; b's test module importing d does not count.
        let graph = module_graph(&files, &modules);
        assert_eq!(graph["b"].keys().collect::<Vec<_>>(), ["c"]);
        let v = rule_no_import_cycles(&graph);
        assert_eq!(
            v.iter()
                .map(|v| format!("{}:{}", v.path, v.line))
                .collect::<Vec<_>>(),
            ["src/b/mod.rs:3", "src/c.rs:2", "src/d.rs:2"],
            "{v:?}"
        );
        assert!(v[0].message.contains("b -> c -> d -> b"), "{}", v[0]);
        files[2] = file("src/c.rs", "//! C.\nuse super::a;\n");
        let v = rule_no_import_cycles(&module_graph(&files, &modules));
        assert!(
            v.iter()
                .all(|v| v.message.contains("strongly connected: a, b, c")),
            "{v:?}"
        );
        files[2] = file("src/c.rs", "//! C.\n// use crate::a;\n");
        assert!(rule_no_import_cycles(&module_graph(&files, &modules)).is_empty());
    }

    #[test]
    fn rule_5_keeps_external_crates_at_home() {
        let bad = file(
            "src/workflow/mod.rs",
            "//! W, not rusqlite.\nuse rusqlite::Connection;\nfn f() -> anyhow::Result<()> { Ok(()) }\n\
             const LOG: &str = \"lettre=warn\";\n",
        );
        assert_eq!(lines(&rule_crate_homes(&bad)), [3, 2]);
        for (rel, text) in [
            ("src/store/tx.rs", "use rusqlite::Connection;"),
            ("src/cli.rs", "use anyhow::Context;"),
            ("src/main.rs", "fn main() -> anyhow::Result<()> {}"),
            ("src/ingest/imap/session.rs", "use async_imap::Session;"),
            ("src/notify/smtp.rs", "use lettre::Message;"),
        ] {
            assert!(rule_crate_homes(&file(rel, text)).is_empty(), "{rel}");
        }
        assert_eq!(
            lines(&rule_crate_homes(&file(
                "src/client.rs",
                "use anyhow::Context;"
            ))),
            [1]
        );
        assert_eq!(
            lines(&rule_crate_homes(&file(
                "src/ingest/mod.rs",
                "use async_imap::Session;"
            ))),
            [1]
        );
    }

    #[test]
    fn rule_6_finds_returns_before_assertions() {
        let bad = file(
            "tests/x.rs",
            r#"#[test]
fn skips_when_not_root() {
    setup();
    if !is_root() {
        eprintln!("not root");
        return;
    }
    assert_eq!(1, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn let_else_returns() {
    let Some(x) = maybe() else { return };
    check(|| x);
    assert!(x);
}
"#,
        );
        let v = rule_no_early_return(&bad);
        assert_eq!(lines(&v), [6, 13], "{v:?}");
        assert!(v[0].message.contains("`skips_when_not_root`") && v[0].message.contains("line 8"));
        let good = file(
            "tests/x.rs",
            r#"#[test]
fn nested_code_may_return() {
    let f = |x: u8| { if x > 1 { return 1; } 0 };
    let g = |x: u8| return x;
    let h = move |x: u8| -> u8 { return x; };
    fn helper() -> u8 { return 3; }
    let later = async move { return 5; };
    let v: Vec<u8> = [1u8].iter().map(|x| { return *x; }).collect();
    let either = a || b | c;
    assert_eq!(f(2) + g(1) + h(0) + helper(), 5);
}

#[test]
fn returns_after_asserting() {
    assert!(ok());
    return;
}

fn not_a_test() {
    if x { return; }
    assert!(y);
}
"#,
        );
        let v = rule_no_early_return(&good);
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn rule_7_finds_should_panic_and_ignore_without_reason() {
        let f = file(
            "tests/x.rs",
            r#"#[test]
#[should_panic]
fn a() {}
#[test]
#[ignore]
fn b() {}
#[test]
#[ignore = "needs root"]
fn c() {}
#[test]
#[cfg_attr(not(postdesk_root), ignore)]
fn d() {}
#[test]
#[cfg_attr(not(postdesk_root), ignore = "needs root")]
fn e() {}
#[cfg_attr(unix, allow(dead_code), should_panic(expected = "x"))]
fn g() {}
#[serde(rename = "ignore")]
struct S;
"#,
        );
        let v = rule_test_attributes(&f);
        assert_eq!(lines(&v), [2, 5, 11, 16], "{v:?}");
    }

    #[test]
    fn cycles_are_found_by_tarjan() {
        let mut g = Graph::new();
        for (from, to) in [
            ("a", "b"),
            ("b", "a"),
            ("b", "c"),
            ("c", "d"),
            ("d", "c"),
            ("e", "a"),
        ] {
            g.entry(from.into())
                .or_default()
                .insert(to.into(), ("src/x.rs".into(), 1));
            g.entry(to.into()).or_default();
        }
        assert_eq!(import_cycles(&g), [vec!["a", "b"], vec!["c", "d"]]);
    }
}
