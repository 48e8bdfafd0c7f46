//! The knowledge base (知识库, issue 16): Markdown articles in `kb_dir`, saved macros, and
//! the BM25 ranking that matches a request to articles.
//!
//! In: the files `kb_dir/*.md` and the `[[macro]]` tables of the configuration. Out: a
//! [`Kb`], or the [`KbError`]s that name each bad file and line.
//! - An article is `NAME.md`: a front matter between two `---` lines (`title` required;
//!   `tags`, `language`, `queues`, `commands` optional; lists written `a, b` or `[a, b]`),
//!   then the Markdown text an agent's `#kb NAME` puts into an answer. An unknown key, a
//!   missing `title` or a bad language is an error naming the file and the line.
//! - A macro is a saved set of command lines plus a text (`#macro NAME`): a `[[macro]]`
//!   of the configuration, or an article (its `commands` and its text). The configuration's
//!   macro wins over an article of the same name. A macro's lines are ordinary command
//!   lines (checked at load: each must parse, and none may be `#macro` or `#kb`).
//! - [`Kb::suggest`] ranks articles for a request by BM25 over their title, tags and text
//!   (words as `crate::words` segments them: Latin words, jieba for Chinese) and keeps
//!   only confident matches: at least [`MIN_CONFIDENCE`] of the article's keywords (title
//!   words and tags) in the request, and at least two of them (one for a one-word title).
//! - Pure apart from [`load`] and [`check`], which read the directory once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::agent::commands::valid_name;
use crate::limits::Limits;
use crate::model::Language;

/// Share of an article's keywords that a request must contain for the article to be
/// suggested ("high confidence").
pub const MIN_CONFIDENCE: f64 = 0.6;

/// Articles larger than this are refused: an article is an answer, not a manual.
pub const MAX_ARTICLE_BYTES: u64 = 256 * 1024;

/// BM25 parameters (the usual ones: Robertson and Zaragoza).
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// One Markdown article of `kb_dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// The file name without `.md`, lower-cased: what `#kb NAME` names.
    pub name: String,
    pub file: PathBuf,
    pub title: String,
    pub tags: Vec<String>,
    /// The language it is written in; `None`: any customer.
    pub language: Option<Language>,
    /// The queues it answers for; empty: every queue.
    pub queues: Vec<String>,
    /// Command lines `#macro NAME` applies with the text (`#status resolved`).
    pub commands: Vec<String>,
    /// The text after the front matter, trimmed.
    pub text: String,
}

/// A saved set of command lines plus a text (`[[macro]]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Macro {
    pub name: String,
    pub commands: Vec<String>,
    pub text: String,
}

/// What `#macro NAME` applies: the command lines and the text, wherever they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroUse<'a> {
    pub commands: &'a [String],
    pub text: &'a str,
}

/// An article that matches a request, with how sure the match is.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub name: String,
    pub title: String,
    /// Share of the article's keywords in the request (0..=1).
    pub confidence: f64,
    /// The BM25 score the articles are ranked by.
    pub score: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("cannot read knowledge base {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Article {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("macro {name:?}: {message}")]
    Macro { name: String, message: String },
}

/// The articles and macros, loaded once (at configuration load).
#[derive(Debug, Clone, Default)]
pub struct Kb {
    articles: Vec<Article>,
    macros: Vec<Macro>,
    index: Bm25,
    /// Per article: its keywords (title words and tags), for the confidence.
    keywords: Vec<HashSet<String>>,
}

impl PartialEq for Kb {
    fn eq(&self, other: &Kb) -> bool {
        self.articles == other.articles && self.macros == other.macros
    }
}

/// Loads `dir` (none: no articles) and `macros`; the first error found is returned.
pub fn load(dir: Option<&Path>, macros: Vec<Macro>) -> Result<Kb, KbError> {
    let (kb, mut errors) = check(dir, macros);
    match errors.is_empty() {
        true => Ok(kb),
        false => Err(errors.remove(0)),
    }
}

/// Loads what it can of `dir` and `macros`, and every error found (`postdesk kb check`).
pub fn check(dir: Option<&Path>, macros: Vec<Macro>) -> (Kb, Vec<KbError>) {
    let mut errors = Vec::new();
    let mut articles = Vec::new();
    if let Some(dir) = dir {
        match article_files(dir) {
            Ok(files) => {
                for file in files {
                    match read_article(&file) {
                        Ok(article) => articles.push(article),
                        Err(err) => errors.push(err),
                    }
                }
            }
            Err(source) => errors.push(KbError::Read {
                path: dir.to_owned(),
                source,
            }),
        }
    }
    let limits = Limits::default();
    for article in &articles {
        if let Err(message) = check_command_lines(&article.commands, &limits) {
            errors.push(KbError::Article {
                path: article.file.clone(),
                line: 1,
                message: format!("commands: {message}"),
            });
        }
    }
    let mut names = HashSet::new();
    for m in &macros {
        if !names.insert(m.name.to_lowercase()) {
            errors.push(KbError::Macro {
                name: m.name.clone(),
                message: "is defined twice".to_owned(),
            });
        }
        if !valid_name(&m.name.to_lowercase()) {
            errors.push(KbError::Macro {
                name: m.name.clone(),
                message: "a name is letters, digits, -, _ and . only".to_owned(),
            });
        }
        if let Err(message) = check_command_lines(&m.commands, &limits) {
            errors.push(KbError::Macro {
                name: m.name.clone(),
                message,
            });
        }
        if m.commands.is_empty() && m.text.trim().is_empty() {
            errors.push(KbError::Macro {
                name: m.name.clone(),
                message: "has neither commands nor text".to_owned(),
            });
        }
    }
    (Kb::new(articles, macros), errors)
}

/// Each line must be one command that parses, and none may name another macro or article.
fn check_command_lines(lines: &[String], limits: &Limits) -> Result<(), String> {
    for line in lines {
        let split = crate::agent::commands::split_commands(line, limits);
        if let Some(err) = split.errors.first() {
            return Err(err.to_string());
        }
        if split.commands.len() != 1 || !split.body.trim().is_empty() {
            return Err(format!("{line:?} is not one command line"));
        }
        if matches!(
            split.commands[0],
            crate::agent::commands::Command::Macro(_) | crate::agent::commands::Command::Kb(_)
        ) {
            return Err(format!("{line:?}: a macro cannot use #macro or #kb"));
        }
    }
    Ok(())
}

/// `*.md` directly in `dir`, by name.
fn article_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "md") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_article(path: &Path) -> Result<Article, KbError> {
    let read_err = |source| KbError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    if size > MAX_ARTICLE_BYTES {
        return Err(KbError::Article {
            path: path.to_owned(),
            line: 1,
            message: format!(
                "the article has {size} bytes, more than {MAX_ARTICLE_BYTES} (split it)"
            ),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read_err)?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    parse_article(&name, path, &text).map_err(|(line, message)| KbError::Article {
        path: path.to_owned(),
        line,
        message,
    })
}

/// One article from its text; the error is (line, message).
pub fn parse_article(name: &str, file: &Path, text: &str) -> Result<Article, (usize, String)> {
    if !valid_name(name) {
        return Err((
            1,
            format!("the file name {name:?} is no article name (letters, digits, -, _ and . only)"),
        ));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, first)) if first.trim_end() == "---" => {}
        _ => {
            return Err((
                1,
                "an article starts with a front matter: a line `---`, then `title: …`, then `---`"
                    .to_owned(),
            ))
        }
    }
    let mut article = Article {
        name: name.to_owned(),
        file: file.to_owned(),
        title: String::new(),
        tags: Vec::new(),
        language: None,
        queues: Vec::new(),
        commands: Vec::new(),
        text: String::new(),
    };
    let mut closed = None;
    let mut seen = HashSet::new();
    for (i, line) in lines.by_ref() {
        let number = i + 1;
        if line.trim_end() == "---" {
            closed = Some(number);
            break;
        }
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err((number, format!("expected `key: value`, got {line:?}")));
        };
        let key = key.trim();
        let value = value.trim();
        if !seen.insert(key.to_owned()) {
            return Err((number, format!("{key} is given twice")));
        }
        match key {
            "title" => article.title = unquote(value).to_owned(),
            "tags" => article.tags = list(value).into_iter().map(|t| t.to_lowercase()).collect(),
            "queues" => article.queues = list(value),
            "commands" => article.commands = list(value),
            "language" => {
                article.language = Some(unquote(value).parse().map_err(|_| {
                    (
                        number,
                        format!("unknown language {value:?} (use \"en\" or \"zh-CN\")"),
                    )
                })?)
            }
            other => {
                return Err((
                    number,
                    format!(
                        "unknown key {other:?} (use title, tags, language, queues or commands)"
                    ),
                ))
            }
        }
    }
    let Some(end) = closed else {
        return Err((1, "the front matter has no closing `---` line".to_owned()));
    };
    if article.title.trim().is_empty() {
        return Err((end, "the front matter has no title".to_owned()));
    }
    let body: Vec<&str> = lines.map(|(_, l)| l).collect();
    article.text = body.join("\n").trim().to_owned();
    Ok(article)
}

fn unquote(value: &str) -> &str {
    let v = value.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// `a, b`, `[a, b]` or `["a", "b"]`.
fn list(value: &str) -> Vec<String> {
    let v = value.trim();
    let v = v
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(v);
    v.split(',')
        .map(|item| unquote(item).trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// The words of `text` as the rankings count them (`crate::words`).
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    crate::words::words(text, |w| out.push(w.to_owned()));
    out
}

impl Kb {
    pub fn new(articles: Vec<Article>, macros: Vec<Macro>) -> Kb {
        let docs: Vec<Vec<String>> = articles
            .iter()
            .map(|a| {
                // The title and tags count twice: they say what the article is about.
                let head = format!("{} {}", a.title, a.tags.join(" "));
                let mut t = terms(&head);
                t.extend(terms(&head));
                t.extend(terms(&a.text));
                t
            })
            .collect();
        let keywords = articles
            .iter()
            .map(|a| {
                terms(&format!("{} {}", a.title, a.tags.join(" ")))
                    .into_iter()
                    .collect()
            })
            .collect();
        Kb {
            index: Bm25::new(&docs),
            articles,
            macros,
            keywords,
        }
    }

    pub fn articles(&self) -> &[Article] {
        &self.articles
    }

    pub fn macros(&self) -> &[Macro] {
        &self.macros
    }

    /// The article `#kb NAME` names (case-insensitive).
    pub fn article(&self, name: &str) -> Option<&Article> {
        self.articles
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// What `#macro NAME` applies: a configured macro, else an article.
    pub fn macro_named(&self, name: &str) -> Option<MacroUse<'_>> {
        if let Some(m) = self
            .macros
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
        {
            return Some(MacroUse {
                commands: &m.commands,
                text: &m.text,
            });
        }
        self.article(name).map(|a| MacroUse {
            commands: &a.commands,
            text: &a.text,
        })
    }

    /// Every name `#macro` knows, for the refusal of an unknown one.
    pub fn macro_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.macros.iter().map(|m| m.name.as_str()).collect();
        names.extend(self.articles.iter().map(|a| a.name.as_str()));
        names
    }

    /// At most `limit` articles that answer a request of `text` (subject and message) in
    /// `queue` and `language` with confidence, best first (see the module doc).
    pub fn suggest(
        &self,
        text: &str,
        queue: &str,
        language: Language,
        limit: usize,
    ) -> Vec<Suggestion> {
        if self.articles.is_empty() {
            return Vec::new();
        }
        self.suggest_terms(&terms(text), queue, language, limit)
    }

    /// [`Kb::suggest`] of a request already cut into words ([`terms`]).
    pub fn suggest_terms(
        &self,
        query: &[String],
        queue: &str,
        language: Language,
        limit: usize,
    ) -> Vec<Suggestion> {
        let asked: HashSet<&str> = query.iter().map(String::as_str).collect();
        let mut out: Vec<Suggestion> = self
            .index
            .rank(query)
            .into_iter()
            .filter_map(|(doc, score)| {
                let a = &self.articles[doc];
                if a.language.is_some_and(|l| l != language)
                    || (!a.queues.is_empty() && !a.queues.iter().any(|q| q == queue))
                {
                    return None;
                }
                let keywords = &self.keywords[doc];
                let found = keywords
                    .iter()
                    .filter(|k| asked.contains(k.as_str()))
                    .count();
                let need = keywords.len().min(2);
                let confidence = found as f64 / keywords.len().max(1) as f64;
                (found >= need && need > 0 && confidence >= MIN_CONFIDENCE).then(|| Suggestion {
                    name: a.name.clone(),
                    title: a.title.clone(),
                    confidence,
                    score,
                })
            })
            .collect();
        out.truncate(limit);
        out
    }
}

/// Okapi BM25 over a small set of documents held in memory (the articles).
#[derive(Debug, Clone, Default)]
pub struct Bm25 {
    /// Per document: term → count.
    docs: Vec<HashMap<String, u32>>,
    lengths: Vec<f64>,
    average: f64,
    /// Term → number of documents holding it.
    df: HashMap<String, u32>,
}

impl Bm25 {
    pub fn new(docs: &[Vec<String>]) -> Bm25 {
        let mut df: HashMap<String, u32> = HashMap::new();
        let mut counted = Vec::with_capacity(docs.len());
        for doc in docs {
            let mut tf: HashMap<String, u32> = HashMap::new();
            for t in doc {
                *tf.entry(t.clone()).or_default() += 1;
            }
            for t in tf.keys() {
                *df.entry(t.clone()).or_default() += 1;
            }
            counted.push(tf);
        }
        let lengths: Vec<f64> = docs.iter().map(|d| d.len() as f64).collect();
        let average = if lengths.is_empty() {
            0.0
        } else {
            lengths.iter().sum::<f64>() / lengths.len() as f64
        };
        Bm25 {
            docs: counted,
            lengths,
            average,
            df,
        }
    }

    /// The documents holding any query term, with their scores, best first (ties: the
    /// earlier document). A term repeated in the query counts once.
    pub fn rank(&self, query: &[String]) -> Vec<(usize, f64)> {
        let n = self.docs.len() as f64;
        let unique: HashSet<&String> = query.iter().collect();
        let mut scores: Vec<(usize, f64)> = Vec::new();
        for (i, doc) in self.docs.iter().enumerate() {
            let mut score = 0.0;
            for term in &unique {
                let Some(&tf) = doc.get(*term) else { continue };
                let df = f64::from(self.df[*term]);
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                let tf = f64::from(tf);
                let norm = 1.0 - B + B * self.lengths[i] / self.average.max(1.0);
                score += idf * tf * (K1 + 1.0) / (tf + K1 * norm);
            }
            if score > 0.0 {
                scores.push((i, score));
            }
        }
        scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(name: &str, text: &str) -> Result<Article, (usize, String)> {
        parse_article(name, Path::new("kb/x.md"), text)
    }

    #[test]
    fn front_matter_is_read() {
        let a = article(
            "reset-password",
            "---\ntitle: \"Reset your password\"\ntags: [password, Login]\nlanguage: en\n\
             queues: support, billing\ncommands: #status resolved, #tag password\n---\n\n\
             Open the login page.\n",
        )
        .unwrap();
        assert_eq!(a.title, "Reset your password");
        assert_eq!(a.tags, vec!["password", "login"]);
        assert_eq!(a.language, Some(Language::En));
        assert_eq!(a.queues, vec!["support", "billing"]);
        assert_eq!(a.commands, vec!["#status resolved", "#tag password"]);
        assert_eq!(a.text, "Open the login page.");
    }

    #[test]
    fn bad_front_matter_names_the_line() {
        for (text, line, want) in [
            ("no front matter", 1, "starts with a front matter"),
            ("---\ntitle: x\n", 1, "no closing"),
            ("---\ntags: a\n---\nbody", 3, "no title"),
            (
                "---\ntitle: x\ncolour: red\n---\n",
                3,
                "unknown key \"colour\"",
            ),
            ("---\ntitle: x\nlanguage: fr\n---\n", 3, "unknown language"),
            (
                "---\ntitle: x\njust words\n---\n",
                3,
                "expected `key: value`",
            ),
            ("---\ntitle: x\ntitle: y\n---\n", 3, "given twice"),
        ] {
            let (got_line, message) = article("a", text).unwrap_err();
            assert_eq!(got_line, line, "{text:?}: {message}");
            assert!(message.contains(want), "{text:?}: {message}");
        }
    }

    #[test]
    fn check_names_file_and_line_and_macros() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.md"), "---\ntitle: Good\n---\ntext").unwrap();
        std::fs::write(
            dir.path().join("bad.md"),
            "---\ntitle: x\nlanguage: xx\n---\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("cmd.md"),
            "---\ntitle: c\ncommands: #stauts resolved\n---\n",
        )
        .unwrap();
        let macros = vec![
            Macro {
                name: "close".into(),
                commands: vec!["#status closed".into()],
                text: "Bye".into(),
            },
            Macro {
                name: "loop".into(),
                commands: vec!["#macro close".into()],
                text: String::new(),
            },
        ];
        let (kb, errors) = check(Some(dir.path()), macros);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].ends_with("bad.md:3: unknown language \"xx\" (use \"en\" or \"zh-CN\")"));
        assert!(shown[1].contains("cmd.md:1: commands:") && shown[1].contains("#status"));
        assert!(shown[2].starts_with("macro \"loop\":"), "{}", shown[2]);
        assert_eq!(kb.articles().len(), 2);
        assert_eq!(kb.article("GOOD").unwrap().text, "text");
        assert_eq!(kb.macro_named("close").unwrap().text, "Bye");
        assert_eq!(kb.macro_named("good").unwrap().text, "text");
        assert!(kb.macro_named("nothing").is_none());
    }

    #[test]
    fn bm25_ranks_rare_and_repeated_terms_higher() {
        let docs: Vec<Vec<String>> = [
            "printer jam paper printer",
            "printer toner",
            "password reset login",
            "vpn login",
        ]
        .iter()
        .map(|d| d.split(' ').map(str::to_owned).collect())
        .collect();
        let index = Bm25::new(&docs);
        let q = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let ranked = index.rank(&q("printer jam"));
        assert_eq!(ranked.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 1]);
        let ranked = index.rank(&q("password login"));
        assert_eq!(ranked[0].0, 2);
        assert_eq!(ranked.len(), 2);
        assert!(index.rank(&q("nothing")).is_empty());
        // A term repeated in the query counts once.
        assert_eq!(index.rank(&q("toner toner"))[0], index.rank(&q("toner"))[0]);
    }

    fn kb() -> Kb {
        let parse = |name: &str, text: &str| article(name, text).unwrap();
        Kb::new(
            vec![
                parse(
                    "reset-password",
                    "---\ntitle: Reset your password\ntags: login\nlanguage: en\n---\nUse the link.",
                ),
                parse("printer", "---\ntitle: Printer paper jam\n---\nOpen tray 2."),
                parse("refund-zh", "---\ntitle: 申请退款\ntags: 退款\nlanguage: zh-CN\n---\n请在订单页面申请。"),
                parse("vpn", "---\ntitle: VPN setup\nqueues: it\n---\nInstall the client."),
            ],
            Vec::new(),
        )
    }

    #[test]
    fn suggestions_need_confidence_and_respect_language_and_queue() {
        let kb = kb();
        let names = |text: &str, queue: &str, lang: Language| -> Vec<String> {
            kb.suggest(text, queue, lang, 3)
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(
            names(
                "I forgot my password and cannot login, please reset it",
                "support",
                Language::En
            ),
            vec!["reset-password"]
        );
        // One keyword of three is no confident match.
        assert!(names("my password is weak", "support", Language::En).is_empty());
        assert_eq!(
            names("The printer has a paper jam again", "support", Language::En),
            vec!["printer"]
        );
        assert_eq!(
            names("我想申请退款，谢谢", "support", Language::ZhCn),
            vec!["refund-zh"]
        );
        assert!(names("我想申请退款，谢谢", "support", Language::En).is_empty());
        assert!(names("vpn setup fails", "support", Language::En).is_empty());
        assert_eq!(names("vpn setup fails", "it", Language::En), vec!["vpn"]);
        let s = &kb.suggest("printer paper jam", "x", Language::En, 3)[0];
        assert!((s.confidence - 1.0).abs() < 1e-9 && s.score > 0.0, "{s:?}");
    }
}
