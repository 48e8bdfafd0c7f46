//! The command line: parses flags, sets up logging, loads the configuration and calls the
//! library. `anyhow` lives here and in `main.rs` only.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config};
use crate::daemon;
use crate::model::{stamp, OutboxId, QuarantineId, SlaState, Status};
use crate::store::{self, Reader, Store, TicketFilter};
use crate::workflow::{Desk, Engine, RetryOutcome};

#[derive(Debug, Parser)]
#[command(name = "postdesk", version, about = "Email-driven helpdesk daemon")]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, env = "POSTDESK_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch the mailboxes, open tickets, send mail.
    Run {
        /// Queue outgoing mail but do not send it.
        #[arg(long)]
        hold_outbox: bool,
    },
    /// Validate the configuration and templates; with --connect, log in to IMAP and SMTP;
    /// with --store, check the database file and the search index.
    Check {
        #[arg(long)]
        connect: bool,
        #[arg(long)]
        store: bool,
    },
    /// The full-text search index.
    #[command(subcommand)]
    Search(SearchCommand),
    /// Log a mailbox in with OAuth 2.0 (auth = "oauth2"): prints a URL and a code to
    /// approve on any device (or, with --browser, a URL whose answer you paste back), then
    /// stores the tokens in data_dir/tokens/MAILBOX.json (mode 0600). The running daemon
    /// picks them up on its next login; no restart.
    Login {
        mailbox: String,
        /// Browser login with a pasted redirect (Google; any provider with auth_url).
        #[arg(long)]
        browser: bool,
    },
    /// Forget a mailbox's OAuth tokens: revoke the refresh token where the provider has
    /// a revocation endpoint, and remove the token file.
    Logout { mailbox: String },
    /// Mailbox cursors and errors, message, ticket, outbox and quarantine counts.
    Status(JsonFlag),
    /// Inspect tickets.
    #[command(subcommand)]
    Ticket(TicketCommand),
    /// Messages that could not be processed.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Outgoing mail.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Routing rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// The knowledge base: articles in kb_dir and [[macro]]s (#kb NAME, #macro NAME).
    #[command(subcommand)]
    Kb(KbCommand),
    /// Triage learnt from the ticket history (`[triage]`).
    #[command(subcommand)]
    Triage(TriageCommand),
    /// Store one message read on stdin (for an MTA `pipe`, procmail, fetchmail). Exits 0
    /// once the message is safely stored (or quarantined), 75 (EX_TEMPFAIL) when it could
    /// not be stored, so that the MTA keeps it and retries.
    Deliver {
        /// The configured mailbox the message came to (queue, tag, support address).
        #[arg(long)]
        mailbox: String,
    },
    /// Volume, response and resolution times, SLA compliance, satisfaction, agents,
    /// the longest-open tickets and the problems that come back most often.
    Report {
        /// First day (YYYY-MM-DD, in [schedule] timezone); default 30 days ago.
        #[arg(long)]
        from: Option<String>,
        /// Last day, included; default today.
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        /// day, week or month; default by the length of the period.
        #[arg(long)]
        by: Option<String>,
        #[arg(long, conflicts_with_all = ["csv", "html"])]
        json: bool,
        #[arg(long, conflicts_with = "html")]
        csv: bool,
        /// Write one self-contained HTML page with charts to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Bring the database's schema up to this version (what the daemon does when it
    /// starts); prints the versions before and after. Safe while an older daemon is
    /// stopped; a big store can take a minute.
    Migrate,
    /// A consistent copy of the database (SQLite online backup), safe while the daemon
    /// runs. Restore: stop the daemon, copy the file to data_dir/postdesk.db, start it.
    Backup { file: PathBuf },
    /// Import an mbox file or a Maildir folder. Resumable and idempotent: messages already
    /// stored (by Message-ID) are skipped.
    Import {
        #[arg(long)]
        mailbox: String,
        /// Queue no mail (acknowledgements, relays) for the imported history.
        #[arg(long)]
        no_notify: bool,
        path: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Show which rules match a message and what they would do; changes nothing.
    Test {
        /// An RFC 5322 message (.eml).
        file: PathBuf,
        #[command(flatten)]
        json: JsonFlag,
    },
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Every article (name, language, queues, title) and macro.
    List(JsonFlag),
    /// One article: its front matter and text.
    Show {
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Read every article and macro; name each bad file and line. Exit 1 if any is bad.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum TriageCommand {
    /// Learn from the handled tickets (the newest `max_tickets`) and write the model to
    /// data_dir/triage.model; the running daemon picks it up without a restart.
    Train,
    /// Train on the older 80% of the history and test on the newest 20%: accuracy,
    /// macro-F1, coverage at the thresholds, against the majority and the rules.
    Evaluate(JsonFlag),
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// List tickets, newest first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        /// Tickets per page (newest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// The next page: tickets older than this id (the last id shown).
        #[arg(long)]
        before: Option<i64>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// One ticket with its messages and events.
    Show {
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Full-text search over subjects and texts (Chinese too), best first, with snippets.
    Search {
        query: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Change a ticket; every change is an event with you as the actor.
    Set {
        id: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        priority: Option<String>,
        /// An agent name, or `none`.
        #[arg(long)]
        assign: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        /// Tags to add (repeat the flag for several).
        #[arg(long)]
        tag: Vec<String>,
    },
    /// The three resolved tickets most like this one (BM25 over the words of its request),
    /// with the start of the answer that resolved each.
    Similar {
        id: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Merge ticket A into ticket B (A's messages move to B; A is closed).
    Merge { a: String, b: String },
    /// The stored RFC 5322 bytes of message MSG of ticket ID (not to a terminal without
    /// --force: a customer's bytes may hold escape sequences).
    Raw {
        id: String,
        msg: i64,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// The newest quarantined messages (--limit, default 100).
    List {
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Show one quarantined message; --raw prints its bytes as stored (not to a terminal
    /// without --force).
    Show {
        id: i64,
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Process a quarantined message again (after a fix or a config change).
    Retry { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Empty the search index and build it again from every message, with progress. The
    /// daemon may keep running; searches meanwhile still find everything (slower).
    Reindex,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    List {
        /// queued, sending, sent or failed
        #[arg(long)]
        state: Option<String>,
        /// The newest this many (default 100).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Queue a failed message again (or every failed one with --all), due now.
    Retry {
        id: Option<i64>,
        #[arg(long)]
        all: bool,
    },
}

/// A command that prints ends the way `ls | head` does when its reader goes away: the
/// default SIGPIPE disposition is restored (Rust starts every program with SIGPIPE
/// ignored, so that `println!` panics with "failed printing to stdout" instead), and the
/// first write to a closed pipe ends the process by SIGPIPE, silently. Nothing is left
/// half-written: a command's changes commit in transactions before it prints them (an
/// import ended this way goes on where it stopped when run again).
///
/// Two commands keep SIGPIPE ignored: `run`, whose sockets, pipes and journal stream must
/// fail as errors it handles, never end the daemon (systemd's `IgnoreSIGPIPE=yes` does
/// the same), and `deliver`, which reports to its MTA through its exit code only.
fn end_quietly_on_closed_stdout(command: &Command) {
    if matches!(command, Command::Run { .. } | Command::Deliver { .. }) {
        return;
    }
    // SAFETY: signal(2) with SIG_DFL installs no handler, so no code runs in signal
    // context; it only changes the process's disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    end_quietly_on_closed_stdout(&cli.command);
    crate::service::init_logging();
    match cli.command {
        Command::Run { hold_outbox } => {
            let cfg = load(&cli.config)?;
            runtime()?.block_on(run_daemon(&cli.config, cfg, hold_outbox))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { connect, store } => check(&cli.config, connect, store),
        Command::Search(SearchCommand::Reindex) => reindex(&cli.config),
        Command::Login { mailbox, browser } => login(&cli.config, &mailbox, browser),
        Command::Logout { mailbox } => logout(&cli.config, &mailbox),
        Command::Status(f) => status(&cli.config, f.json),
        Command::Ticket(cmd) => ticket(&cli.config, cmd),
        Command::Quarantine(cmd) => quarantine(&cli.config, cmd),
        Command::Outbox(cmd) => outbox(&cli.config, cmd),
        Command::Triage(cmd) => triage(&cli.config, cmd),
        Command::Rules(RulesCommand::Test { file, json }) => {
            rules_test(&cli.config, &file, json.json)
        }
        Command::Kb(cmd) => kb(&cli.config, cmd),
        Command::Deliver { mailbox } => Ok(deliver(&cli.config, &mailbox)),
        Command::Report {
            from,
            to,
            queue,
            by,
            json,
            csv,
            html,
        } => {
            let cfg = load(&cli.config)?;
            let now = SystemClock.now();
            let opts = crate::report::Options::from_flags(
                &cfg,
                &crate::report::Flags {
                    from,
                    to,
                    queue,
                    by,
                },
                now,
            )?;
            let r = crate::report::generate(&cfg, &cfg.db_path(), &opts, now)?;
            if json {
                return print_json(&r);
            }
            if csv {
                print!("{}", crate::report::to_csv(&r));
            } else if let Some(file) = html {
                std::fs::write(&file, crate::report::to_html(&r))
                    .with_context(|| format!("cannot write {}", file.display()))?;
                println!("{} written", file.display());
            } else {
                print!("{}", crate::report::to_text(&r));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => migrate(&cli.config),
        Command::Backup { file } => {
            let cfg = load(&cli.config)?;
            reader(&cfg)?.backup(&file)?;
            println!(
                "{}: consistent copy of {} written and checked",
                file.display(),
                cfg.db_path().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            mailbox,
            no_notify,
            path,
        } => import(&cli.config, &mailbox, !no_notify, &path),
    }
}

fn rules_test(path: &Path, file: &Path, json: bool) -> Result<ExitCode> {
    let cfg = load(path)?;
    let raw = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let parsed = crate::mail::parse::message(&raw, &cfg.limits)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let verdict = crate::mail::classify::verdict(&parsed, &crate::workflow::identity(&cfg));
    let bounce = match &verdict.class {
        crate::mail::classify::Class::Bounce(b) => Some(b),
        _ => None,
    };
    let input = crate::workflow::routing::rule_input(&parsed);
    let reports = crate::rules::explain(&cfg.rules, &input);
    let d = crate::workflow::routing::route(&cfg, &parsed, None);
    let (queue, priority, vip) = (&d.queue, d.priority, d.vip);
    let assign = match &d.assign {
        Some(crate::rules::Assign::Agent(a)) => Some(format!("agent {a}")),
        Some(crate::rules::Assign::Team(s)) => Some(format!("team ({})", s.as_str())),
        None => None,
    };
    if json {
        let rules: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let conditions: Vec<serde_json::Value> = r
                    .conditions
                    .iter()
                    .map(|(c, ok)| serde_json::json!({ "condition": c, "holds": ok }))
                    .collect();
                serde_json::json!({
                    "name": r.name, "matched": r.matched, "evaluated": r.evaluated, "conditions": conditions,
                })
            })
            .collect();
        return print_json(&serde_json::json!({
            "class": verdict.class.as_str(),
            "recognisers": verdict.evidence,
            "bounce": bounce.map(|b| serde_json::json!({
                "kind": b.kind,
                "recipients": b.report.as_ref().map(|r| &r.recipients),
                "status": b.report.as_ref().and_then(|r| r.status.as_ref()),
                "diagnostic": b.report.as_ref().and_then(|r| r.diagnostic.as_ref()),
            })),
            "rules": rules,
            "matched": d.matched,
            "queue": queue,
            "priority": priority.as_str(),
            "vip": vip,
            "tags": d.tags,
            "assign": assign,
            "acknowledge": d.acknowledge && !verdict.class.is_automatic(),
        }));
    }
    println!(
        "{}: from {}, subject {:?}",
        file.display(),
        parsed.from.as_ref().map_or("-", |f| f.address.as_str()),
        parsed.subject
    );
    let bounce_kind = bounce.map_or(String::new(), |b| format!(" ({})", b.kind.as_str()));
    println!(
        "class: {}{bounce_kind}; recognisers: {}",
        verdict.class.as_str(),
        visible(&verdict.explain())
    );
    if let Some(r) = bounce.and_then(|b| b.report.as_ref()) {
        println!(
            "  failed recipients: {}; status {}; {}",
            if r.recipients.is_empty() {
                "-".to_owned()
            } else {
                r.recipients.join(", ")
            },
            r.status.as_deref().unwrap_or("-"),
            visible(r.diagnostic.as_deref().unwrap_or("no diagnostic"))
        );
    }
    if verdict.class.is_automatic() {
        println!("  automatic: no ticket is opened and nothing is sent back");
    }
    for r in &reports {
        let mark = if r.matched {
            "MATCH"
        } else if !r.evaluated {
            "not evaluated (an earlier rule matched)"
        } else {
            "no match"
        };
        println!("  rule {:<20} {mark}", r.name);
        for (c, ok) in &r.conditions {
            println!("      {} {c}", if *ok { "yes" } else { "no " });
        }
    }
    println!(
        "would do: queue {queue}, priority {priority}{}, tags [{}], assign {}, acknowledge {}",
        if vip { " (VIP: one step up)" } else { "" },
        d.tags.join(", "),
        assign.as_deref().unwrap_or("-"),
        if verdict.class.is_automatic() {
            "no (automatic mail)"
        } else if d.acknowledge {
            "yes"
        } else {
            "no"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn kb(path: &Path, cmd: KbCommand) -> Result<ExitCode> {
    if let KbCommand::Check = cmd {
        let (dir, macros) = config::kb_sources(path)?;
        let (kb, errors) = crate::kb::check(dir.as_deref(), macros);
        for err in &errors {
            println!("{}", visible(&err.to_string()));
        }
        println!(
            "{} articles, {} macros, {} problems",
            kb.articles().len(),
            kb.macros().len(),
            errors.len()
        );
        return Ok(if errors.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let cfg = load(path)?;
    let kb = &cfg.knowledge.kb;
    let json_of = |a: &crate::kb::Article| {
        serde_json::json!({
            "name": a.name, "title": a.title, "tags": a.tags,
            "language": a.language.map(|l| l.as_str()), "queues": a.queues,
            "commands": a.commands, "file": a.file, "text": a.text,
        })
    };
    match cmd {
        KbCommand::List(f) if f.json => {
            let macros: Vec<serde_json::Value> = kb
                .macros()
                .iter()
                .map(
                    |m| serde_json::json!({"name": m.name, "commands": m.commands, "text": m.text}),
                )
                .collect();
            print_json(&serde_json::json!({
                "articles": kb.articles().iter().map(json_of).collect::<Vec<_>>(),
                "macros": macros,
            }))
        }
        KbCommand::List(_) => {
            for a in kb.articles() {
                println!(
                    "{:<24} {:<6} {:<16} {}",
                    visible(&a.name),
                    a.language.map_or("any", |l| l.as_str()),
                    if a.queues.is_empty() {
                        "all queues".to_owned()
                    } else {
                        visible(&a.queues.join(",")).into_owned()
                    },
                    visible(&a.title)
                );
            }
            for m in kb.macros() {
                println!(
                    "macro {:<18} {}",
                    visible(&m.name),
                    visible(&m.commands.join("; "))
                );
            }
            if kb.articles().is_empty() && kb.macros().is_empty() {
                println!("no articles (kb_dir) and no [[macro]]");
            }
            Ok(ExitCode::SUCCESS)
        }
        KbCommand::Show { name, json } => {
            let Some(a) = kb.article(&name) else {
                anyhow::bail!("no article {name:?} (postdesk kb list)");
            };
            if json.json {
                return print_json(&json_of(a));
            }
            println!("{}  ({})", visible(&a.title), a.file.display());
            println!("tags: {}", visible(&a.tags.join(", ")));
            println!("language: {}", a.language.map_or("any", |l| l.as_str()));
            println!(
                "queues: {}",
                if a.queues.is_empty() {
                    "all".to_owned()
                } else {
                    visible(&a.queues.join(", ")).into_owned()
                }
            );
            if !a.commands.is_empty() {
                println!(
                    "commands (#macro {}): {}",
                    a.name,
                    visible(&a.commands.join("; "))
                );
            }
            println!("\n{}", visible(&a.text));
            Ok(ExitCode::SUCCESS)
        }
        KbCommand::Check => unreachable!("handled above"),
    }
}

/// The resolved tickets most like `id` (issue 16), from the words its request was
/// indexed with.
fn similar_of(r: &Reader, id: crate::model::TicketId) -> Result<Vec<store::SimilarTicket>> {
    let words = r.ticket_words(id)?;
    Ok(r.similar(&words, Some(id), 3)?)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn load(path: &Path) -> Result<Config> {
    Ok(config::load(path)?)
}

fn reader(cfg: &Config) -> Result<Reader> {
    Ok(Reader::open(&cfg.db_path())?)
}

fn print_json<T: Serialize>(value: &T) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(ExitCode::SUCCESS)
}

/// Why the daemon stopped: for good, or to start again on a new configuration.
enum Stop {
    Exit,
    Reload(Box<Config>),
}

/// Runs the daemon until SIGTERM or SIGINT. SIGHUP reloads the configuration and the
/// templates: a new configuration that fails to load is refused (logged with its file,
/// line and key) and the daemon goes on with the old one; a good one restarts the
/// daemon's tasks on it (batches in flight finish first).
async fn run_daemon(path: &Path, mut cfg: Config, hold_outbox: bool) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int, mut hup) = (
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?,
        signal(SignalKind::hangup()).context("cannot install the SIGHUP handler")?,
    );
    loop {
        let mut stop = None;
        let signals = async {
            loop {
                tokio::select! {
                                        _ = term.recv() => {
                        tracing::info!("SIGTERM");
                        crate::service::notify_stopping();
                        stop = Some(Stop::Exit);
                        return;
                    }
                    _ = int.recv() => {
                        tracing::info!("SIGINT");
                        crate::service::notify_stopping();
                        stop = Some(Stop::Exit);
                        return;
                    }
                                        _ = hup.recv() => {
                        crate::service::notify_reloading();
                        match reload(path) {
                            Ok(new) => {
                                tracing::info!(config = %path.display(), "SIGHUP: configuration reloaded");
                                stop = Some(Stop::Reload(Box::new(new)));
                                return;
                            }
                            Err(err) => {
                                tracing::error!(
                                    error = format!("{err:#}"),
                                    "SIGHUP: new configuration refused; going on with the old one"
                                );
                                crate::service::notify_ready();
                            }
                        }
                    }
                }
            }
        };
        let opts = daemon::Options {
            hold_outbox,
            ready: None,
        };
        daemon::run(cfg.clone(), opts, Arc::new(SystemClock), signals).await?;
        match stop {
            // The new daemon tells systemd READY=1 again once its mailboxes caught up.
            Some(Stop::Reload(new)) => cfg = *new,
            _ => return Ok(()),
        }
    }
}

/// Loads and checks a configuration and its templates, as `postdesk check` does.
fn reload(path: &Path) -> Result<Config> {
    let cfg = load(path)?;
    crate::notify::Templates::load(cfg.templates_dir.as_deref())?.check()?;
    Ok(cfg)
}

fn migrate(path: &Path) -> Result<ExitCode> {
    let cfg = load(path)?;
    let db = cfg.db_path();
    let before = crate::store::schema_version(&db)?;
    let started = std::time::Instant::now();
    drop(Store::open_existing(&db)?);
    let after = crate::store::schema_version(&db)?;
    if before == after {
        println!(
            "database {}: schema version {after}, nothing to do",
            db.display()
        );
    } else {
        println!(
            "database {}: schema version {before} -> {after} in {:.1} s",
            db.display(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn reindex(path: &Path) -> Result<ExitCode> {
    let cfg = load(path)?;
    let store = Store::open_existing(&cfg.db_path())?;
    let rt = runtime()?;
    // Counted in the reset's transaction: the writer may start indexing at once.
    let total = rt.block_on(store.write(|tx| tx.reset_search_index()))?;
    let started = std::time::Instant::now();
    let mut done = 0usize;
    while rt.block_on(store.index_some(crate::store::INDEX_BATCH))? {
        done += crate::store::INDEX_BATCH;
        eprint!("\rindexed {} of {total} messages", done.min(total as usize));
    }
    eprintln!();
    println!(
        "search index rebuilt: {total} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn check_store(cfg: &crate::config::Config) -> Result<bool> {
    let store = Store::open_existing(&cfg.db_path())?;
    let rt = runtime()?;
    let problems = rt.block_on(store.write(|tx| tx.check_store()))?;
    let waiting = store.reader()?.unindexed()?;
    if problems.is_empty() {
        println!(
            "store {}: OK (database and search index agree; {waiting} messages waiting for the index)",
            cfg.db_path().display()
        );
    }
    for p in &problems {
        println!("store: FAILED: {p}");
    }
    Ok(problems.is_empty())
}

fn check(path: &Path, connect: bool, store: bool) -> Result<ExitCode> {
    let cfg = load(path)?;
    if store && !check_store(&cfg)? {
        return Ok(ExitCode::FAILURE);
    }
    let templates = crate::notify::Templates::load(cfg.templates_dir.as_deref())?;
    let rendered = templates.check()?;
    println!(
        "{}: OK ({} mailboxes, {} queues, {} templates rendered)",
        path.display(),
        cfg.mailboxes.len(),
        cfg.queues.len(),
        rendered
    );
    for p in cfg.agent_proofs() {
        let by_token = if p.reply_addresses.is_empty() {
            "no reply token (the agent works in no queue with a mailbox)".to_owned()
        } else {
            format!("reply token at {}", p.reply_addresses.join(", "))
        };
        let by_auth = match &p.authserv {
            Some((id, domains)) => format!(
                "Authentication-Results from {id} with DKIM or DMARC pass for {}",
                domains.join(", ")
            ),
            None => "no Authentication-Results (trusted_authserv_id is not set)".to_owned(),
        };
        println!(
            "agent {} ({}): proven by {by_token}; {by_auth}",
            p.agent,
            p.addresses.join(", ")
        );
    }
    if !connect {
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    let mut failed = false;
    let tokens = crate::oauth::Tokens::for_config(&cfg);
    for mb in &cfg.mailboxes {
        let source = tokens.get(&mb.name);
        if let Some(t) = &source {
            println!("token {}: {}", mb.name, token_line(t.config()));
        }
        match rt.block_on(crate::ingest::imap::probe(mb, source.as_deref())) {
            Ok((uv, exists, hs)) => println!(
                "imap {} ({}:{} {}): OK: {}; server offers SASL {}; logged in as {} by {}; \
                 uidvalidity {uv}, {exists} messages",
                mb.name,
                mb.imap.host,
                mb.imap.port,
                mb.imap.folder,
                hs.transport,
                if hs.mechanisms.is_empty() {
                    "(none listed)".to_owned()
                } else {
                    hs.mechanisms.join(" ")
                },
                mb.imap.username,
                hs.login,
            ),
            Err(e) => {
                failed = true;
                println!("imap {}: FAILED: {e}", mb.name);
            }
        }
    }
    let shared = match &cfg.smtp.auth {
        crate::config::SmtpAuth::OAuth2 { mailbox, .. } => tokens.get(mailbox),
        _ => None,
    };
    let pool = crate::notify::smtp::SmtpPool::with_tokens(cfg.smtp.clone(), shared);
    match rt.block_on(pool.describe()) {
        Ok(how) => println!("smtp {}:{}: OK: {how}", cfg.smtp.host, cfg.smtp.port),
        Err(e) => {
            failed = true;
            println!("smtp: FAILED: {e}");
        }
    }
    if !failed {
        for mb in &cfg.mailboxes {
            let probe = mb
                .reply_address
                .replace("{token}", "r-1-probe-0000000000000000");
            match rt.block_on(pool.probe_recipient(&mb.address, &probe)) {
                Ok(answer) => println!("reply tokens {}: {probe} accepted ({answer})", mb.name),
                Err(e) => println!(
                    "WARNING: reply tokens {}: the SMTP server refused {probe}: {e}. \
                     Agents' replies to relays may not arrive: turn on plus-addressing \
                     (Postfix: recipient_delimiter = +) or set reply_address for the \
                     mailbox (README, \"Agents\")",
                    mb.name
                ),
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn oauth_of<'c>(cfg: &'c crate::config::Config, mailbox: &str) -> Result<&'c crate::config::OAuth> {
    let mb = cfg
        .mailbox(mailbox)
        .with_context(|| format!("no [[mailbox]] named {mailbox:?} in {}", cfg.path.display()))?;
    match &mb.imap.auth {
        crate::config::Login::OAuth2(o) => Ok(o),
        crate::config::Login::Password(_) => {
            bail!("mailbox {mailbox:?} logs in with a password; set auth = \"oauth2\" and a [mailbox.oauth] table first")
        }
    }
}

fn login(path: &Path, mailbox: &str, browser: bool) -> Result<ExitCode> {
    let cfg = load(path)?;
    let o = oauth_of(&cfg, mailbox)?;
    let mb = cfg.mailbox(mailbox).expect("checked by oauth_of");
    let rt = runtime()?;
    let who = if mb.imap.username.eq_ignore_ascii_case(&mb.address) {
        format!("the user of {}", mb.address)
    } else {
        format!(
            "a user with access to {} (IMAP login {})",
            mb.address, mb.imap.username
        )
    };
    let tokens = if browser || o.device_authorization_url.is_none() {
        let started = crate::oauth::login::browser_start(o)?;
        println!(
            "To give postdesk access to mailbox {mailbox} ({}):",
            mb.address
        );
        println!("  1. Open this address in a browser, on any computer, and sign in as {who}:");
        println!();
        println!("     {}", started.url);
        println!();
        println!("  2. After you approve, the browser goes to an address on 127.0.0.1 that does not load.");
        println!("     Copy that whole address from the address bar and paste it here:");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        rt.block_on(crate::oauth::login::browser_finish(
            o, mailbox, started, &line,
        ))?
    } else {
        rt.block_on(crate::oauth::login::device(o, mailbox, |p| {
            println!(
                "To give postdesk access to mailbox {mailbox} ({}):",
                mb.address
            );
            println!("  1. Open {}", p.verification_uri);
            println!("  2. Enter the code {}", p.user_code);
            println!("  3. Sign in as {who} and approve.");
            if let Some(full) = &p.verification_uri_complete {
                println!("  (or open {full}, which has the code in it)");
            }
            println!(
                "Waiting for the approval (the code expires in {} minutes)...",
                p.expires_in.as_secs().div_ceil(60)
            );
        }))?
    };
    println!(
        "Logged in. Tokens stored in {} (mode 0600); access token valid until {}; {}.",
        o.token_file.display(),
        tokens
            .expires_at
            .map_or("an unstated time".to_owned(), |t| t.to_rfc3339()),
        if tokens.refresh_token.is_some() {
            "the daemon refreshes it from now on"
        } else {
            "WARNING: no refresh token was issued (ask for the offline_access scope), so another login is needed when it expires"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn logout(path: &Path, mailbox: &str) -> Result<ExitCode> {
    let cfg = load(path)?;
    let o = oauth_of(&cfg, mailbox)?;
    let rt = runtime()?;
    if !o.token_file.exists() {
        println!(
            "mailbox {mailbox} has no tokens ({} does not exist)",
            o.token_file.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let revoked = rt.block_on(crate::oauth::login::logout(o, mailbox))?;
    println!(
        "mailbox {mailbox}: tokens removed{}",
        if revoked {
            "; the refresh token was revoked at the provider"
        } else {
            " (the provider has no revocation endpoint: revoke the grant there too)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// What the token file says, without printing a token.
fn token_line(o: &crate::config::OAuth) -> String {
    match crate::oauth::tokens::read(&o.token_file) {
        Ok(None) => format!(
            "none yet at {} (run `postdesk login`)",
            o.token_file.display()
        ),
        Ok(Some(t)) => format!(
            "{} ({} provider); access token {}; {}",
            o.token_file.display(),
            t.provider,
            match t.expires_at {
                Some(at) if at > chrono::Utc::now() => format!("valid until {}", at.to_rfc3339()),
                Some(at) => format!("expired {} (will be refreshed)", at.to_rfc3339()),
                None => "without a stated expiry".to_owned(),
            },
            match (&t.refresh_token, t.refresh_token_expires_at) {
                (None, _) =>
                    "no refresh token (another login is needed when it expires)".to_owned(),
                (Some(_), Some(at)) => format!("refresh token until {}", at.to_rfc3339()),
                (Some(_), None) => "refresh token present".to_owned(),
            }
        ),
        Err(e) => format!("unreadable: {e}"),
    }
}

fn triage(path: &Path, cmd: TriageCommand) -> Result<ExitCode> {
    let cfg = load(path)?;
    let r = reader(&cfg)?;
    let now = SystemClock.now();
    match cmd {
        TriageCommand::Train => {
            let t = crate::triage::train(&r, &cfg, now).context("cannot train the triage model")?;
            let labels = |c: &Option<crate::triage::model::Classifier>| {
                c.as_ref()
                    .map_or("-".to_owned(), |c| c.classes.len().to_string())
            };
            println!(
                "trained on {} tickets in {:.1} s: {} queues, {} priorities, {} tags; {} ({} KiB)",
                t.tickets,
                t.took.as_secs_f64(),
                labels(&t.model.queue),
                labels(&t.model.priority),
                t.model.tags.len(),
                t.path.display(),
                t.bytes / 1024
            );
        }
        TriageCommand::Evaluate(json) => {
            let rows = r.triage_history(cfg.triage.max_tickets)?;
            let history = crate::triage::labelled(&cfg, &rows);
            let e = crate::triage::evaluate::evaluate(&history, &cfg.triage, now)
                .context("cannot evaluate triage")?;
            if json.json {
                return print_json(&e);
            }
            println!(
                "{} tickets: trained on the older {}, tested on the newest {}",
                e.tickets, e.train, e.test
            );
            let pct = |x: f64| format!("{:.1}%", 100.0 * x);
            for (name, f, threshold) in [
                ("queue", &e.labels.queue, cfg.triage.queue_threshold),
                (
                    "priority",
                    &e.labels.priority,
                    cfg.triage.priority_threshold,
                ),
                ("tags", &e.labels.tags, cfg.triage.tags_threshold),
            ] {
                println!(
                    "{name:<9} accuracy {}  macro-F1 {:.3}  coverage {} at {threshold}, accuracy there {}  majority {}  rules {}",
                    pct(f.accuracy),
                    f.macro_f1,
                    pct(f.coverage),
                    f.accuracy_at_coverage.map_or("-".to_owned(), pct),
                    pct(f.baseline_accuracy),
                    pct(f.rules_accuracy),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status(path: &Path, json: bool) -> Result<ExitCode> {
    let cfg = load(path)?;
    let names: Vec<String> = cfg.mailboxes.iter().map(|m| m.name.to_string()).collect();
    let r = reader(&cfg)?;
    let mut report = r.status(&names)?;
    let now = SystemClock.now();
    report.warnings = crate::metrics::warnings(&cfg, &report, now);
    (report.largest, report.slowest) = r.costliest(now - chrono::Duration::hours(1), 3)?;
    if json {
        return print_json(&report);
    }
    for m in &report.mailboxes {
        println!(
            "mailbox {}: {}{}, uidvalidity {}, last uid {}, backlog {}, last message {}, synced {}{}",
            m.name,
            if m.connected { "connected" } else { "not connected" },
            m.mode.as_deref().map(|x| format!(" ({x})")).unwrap_or_default(),
            m.uidvalidity.map_or("-".to_owned(), |v| v.to_string()),
            m.last_uid,
            m.backlog,
            m.last_message_at.as_deref().unwrap_or("never"),
            m.last_sync_at.as_deref().unwrap_or("never"),
            m.last_error
                .as_deref()
                .map(|e| format!("; last error: {e}"))
                .unwrap_or_default()
        );
        let time =
            |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("never".to_owned(), stamp::text);
        println!(
            "  login: last {}, auth {}{}",
            time(m.last_login_at),
            m.auth_state.map_or("not tried yet", |a| a.as_str()),
            m.auth_error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        let oauth = cfg
            .mailbox(&m.name)
            .is_some_and(|c| matches!(c.imap.auth, crate::config::Login::OAuth2(_)));
        if oauth || m.token != crate::store::TokenRecord::default() {
            let not_seen = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
                t.map_or(none.to_owned(), stamp::text)
            };
            println!(
                "  token: access token expires {}, refresh token expires {}{}",
                not_seen(m.token.expires_at, "(not seen yet)"),
                not_seen(m.token.refresh_expires_at, "(not said by the provider)"),
                m.token
                    .needs_login
                    .as_deref()
                    .map(|r| format!("; needs `postdesk login {}`: {r}", m.name))
                    .unwrap_or_default()
            );
        }
    }
    println!(
        "messages: {} in, {} out; tickets: {}; SLA breaches: {}",
        report.messages.incoming, report.messages.outgoing, report.tickets, report.sla_breaches
    );
    println!(
        "outbox: {} queued, {} sending, {} sent, {} failed{}; quarantine: {}; waiting for the search index: {}",
        report.outbox.queued,
        report.outbox.sending,
        report.outbox.sent,
        report.outbox.failed,
        report
            .outbox_oldest
            .as_deref()
            .map(|o| format!(" (oldest waiting since {o})"))
            .unwrap_or_default(),
        report.quarantine,
        report.unindexed
    );
    for (title, list) in [
        ("largest messages", &report.largest),
        ("messages slowest to parse", &report.slowest),
    ] {
        if list.is_empty() {
            continue;
        }
        println!("{title} of the last hour:");
        for c in list {
            println!(
                "  {} bytes, {:.1} ms, {} mailbox {} {}: {}",
                c.size,
                c.prepare_us as f64 / 1000.0,
                stamp::text(c.at),
                c.mailbox.as_deref().unwrap_or("-"),
                [
                    c.uid.map(|u| format!("uid {u}")),
                    c.message_id.as_deref().map(|id| format!("<{id}>")),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
                c.outcome
            );
        }
    }
    for w in &report.warnings {
        println!("WARNING: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

fn ticket(path: &Path, cmd: TicketCommand) -> Result<ExitCode> {
    let cfg = load(path)?;
    let r = reader(&cfg)?;
    match cmd {
        TicketCommand::List {
            status,
            queue,
            limit,
            before,
            json,
        } => {
            let status = status.map(|s| s.parse::<Status>()).transpose()?;
            let tickets = r.tickets(&TicketFilter {
                status,
                queue,
                limit: Some(limit),
                before: before.map(crate::model::TicketId::new),
            })?;
            if json.json {
                return print_json(&tickets);
            }
            print!("{}", ticket_table(&tickets));
            if let (true, Some(last)) = (tickets.len() == limit, tickets.last()) {
                eprintln!("({limit} shown; next page: --before {})", last.id.get());
            }
            Ok(ExitCode::SUCCESS)
        }
        TicketCommand::Search {
            query,
            status,
            queue,
            limit,
            json,
        } => {
            let status = status.map(|s| s.parse::<Status>()).transpose()?;
            let hits = r.search(
                &query,
                &TicketFilter {
                    status,
                    queue,
                    limit,
                    before: None,
                },
            )?;
            if json.json {
                return print_json(&hits);
            }
            for h in &hits {
                println!(
                    "{:<14} {:<9} {:<10} {}",
                    h.tag,
                    h.status,
                    visible(&h.queue),
                    visible(&h.subject)
                );
                println!("    {}", visible(&h.snippet.replace('\n', " ")));
            }
            Ok(ExitCode::SUCCESS)
        }
        TicketCommand::Set {
            id,
            status,
            priority,
            assign,
            queue,
            tag,
        } => {
            use crate::workflow::admin::Change;
            let id = ticket_id(&id)?;
            let mut changes = Vec::new();
            if let Some(s) = status {
                changes.push(Change::Status(s.parse()?));
            }
            if let Some(p) = priority {
                changes.push(Change::Priority(p.parse()?));
            }
            if let Some(a) = assign {
                let a = a.trim().to_lowercase();
                changes.push(Change::Assign((a != "none").then_some(a)));
            }
            if let Some(q) = queue {
                changes.push(Change::Queue(q));
            }
            if !tag.is_empty() {
                changes.push(Change::AddTags(
                    tag.iter().map(|t| t.trim().to_lowercase()).collect(),
                ));
            }
            if changes.is_empty() {
                bail!("nothing to change: give --status, --priority, --assign, --queue or --tag");
            }
            admin(&cfg, id, changes)
        }
        TicketCommand::Merge { a, b } => {
            let (a, b) = (ticket_id(&a)?, ticket_id(&b)?);
            admin(&cfg, a, vec![crate::workflow::admin::Change::MergeInto(b)])
        }
        TicketCommand::Raw { id, msg, force } => {
            let id = ticket_id(&id)?;
            let Some(raw) = r.raw_message(id, msg)? else {
                bail!("ticket #{id} has no message {msg}");
            };
            write_raw(&raw, force)?;
            Ok(ExitCode::SUCCESS)
        }
        TicketCommand::Similar { id, json } => {
            let Some(id) = store::parse_ticket_id(&id) else {
                bail!("not a ticket number: {id:?}");
            };
            if r.ticket(id)?.is_none() {
                bail!("no ticket #{id}");
            }
            let similar = similar_of(&r, id)?;
            if json.json {
                return print_json(&similar);
            }
            if similar.is_empty() {
                println!("no resolved ticket like #{id} (or its words are not indexed yet)");
            }
            for s in &similar {
                println!(
                    "{} {} ({}, score {:.2})\n    {}",
                    s.tag,
                    visible(&s.subject),
                    s.status,
                    s.score,
                    visible(if s.answer.is_empty() { "-" } else { &s.answer })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TicketCommand::Show { id, json } => {
            let Some(id) = store::parse_ticket_id(&id) else {
                bail!("not a ticket number: {id:?}");
            };
            let Some(t) = r.ticket(id)? else {
                bail!("no ticket #{id}");
            };
            let triage = r.ticket_triage(id)?;
            if json.json {
                let mut v = serde_json::to_value(&t)?;
                // Issue 16: the resolved tickets most like this one, looked up now.
                v["similar"] = serde_json::to_value(similar_of(&r, id)?)?;
                v["triage"] = serde_json::to_value(&triage)?;
                return print_json(&v);
            }
            let s = &t.ticket;
            println!("{} {}", s.tag, visible(&s.subject));
            println!(
                "status {}  priority {}  queue {}  requester {}  assignee {}",
                s.status,
                s.priority,
                s.queue,
                visible(s.requester.as_deref().unwrap_or("-")),
                s.assignee.as_deref().unwrap_or("-")
            );
            if let Some(f) = &s.flagged {
                println!("FLAGGED: {}", visible(f));
            }
            if let Some(r) = s.csat {
                println!("rating {r}/5 (the latest the customer gave)");
            }
            if let Some(v) = &triage {
                let mut parts = Vec::new();
                let mut one = |label: &str, g: &store::TriageGuess| {
                    let how = if g.applied { ", applied" } else { "" };
                    parts.push(format!(
                        "{label} {} ({:.2}{how})",
                        visible(&g.value),
                        g.confidence
                    ));
                };
                if let Some(g) = &v.queue {
                    one("queue", g);
                }
                if let Some(g) = &v.priority {
                    one("priority", g);
                }
                for g in &v.tags {
                    one("tag", g);
                }
                println!("triage ({}): {}", v.mode, parts.join(", "));
            }
            let now = SystemClock.now();
            for d in &t.sla {
                let state = match SlaState::of(d.due_at, d.warned_at, d.breached_at, d.met_at, now)
                {
                    SlaState::Met => "met",
                    SlaState::Breached => "BREACHED",
                    SlaState::AtRisk => "at risk",
                    SlaState::Paused => "paused",
                    SlaState::Running => "running",
                };
                println!(
                    "SLA {:<15} due {} ({state})",
                    d.deadline.as_str(),
                    d.due_at.map_or("-".to_owned(), stamp::text)
                );
            }
            for m in &t.messages {
                println!(
                    "\n--- message {} ({}, {}) {} from {}\n    Subject: {}\n",
                    m.id,
                    m.direction,
                    m.class,
                    visible(&m.date.clone().unwrap_or_else(|| stamp::text(m.recorded_at))),
                    visible(m.from.as_deref().unwrap_or("-")),
                    visible(&m.subject)
                );
                if m.class != "human" {
                    let by: Vec<String> = m
                        .classified_by
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.get("recogniser").and_then(|r| r.as_str()))
                        .map(str::to_owned)
                        .collect();
                    if !by.is_empty() {
                        println!("    Recognised by: {}\n", visible(&by.join(", ")));
                    }
                }
                for line in m.text.lines() {
                    println!("    {}", visible(line));
                }
            }
            println!("\nevents:");
            for e in &t.events {
                println!(
                    "  {} {} {} {} -> {} {}",
                    stamp::text(e.at),
                    e.actor,
                    e.kind,
                    visible(e.old.as_deref().unwrap_or("-")),
                    visible(e.new.as_deref().unwrap_or("-")),
                    visible(e.detail.as_deref().unwrap_or(""))
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Text from outside (subjects, names, bodies, reasons) as a terminal may show it: control
/// characters in `cat -v` notation (`^[` for ESC, `^M` for CR, `^?` for DEL), C1 controls
/// and bidirectional overrides as `<U+202E>`, so no customer can move the cursor, recolour
/// the screen or reorder what a sysadmin reads. Tabs stay.
fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        (c.is_control() && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !hidden(c) => out.push(c),
            '\u{7f}' => out.push_str("^?"),
            c if (c as u32) < 0x20 => {
                out.push('^');
                out.push(char::from(b'@' + c as u8));
            }
            c => out.push_str(&format!("<U+{:04X}>", c as u32)),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `ticket raw`, `quarantine show --raw`: the stored bytes, but not to a terminal unless
/// asked (`--force`), as `cat -v` users expect: a hostile message's escape sequences would
/// run in the sysadmin's terminal.
fn write_raw(bytes: &[u8], force: bool) -> Result<()> {
    use std::io::IsTerminal;
    let mut out = std::io::stdout();
    if out.is_terminal() && !force {
        bail!(
            "not writing a message's raw bytes to a terminal (they may hold escape \
             sequences): pipe or redirect the output (| less, > file.eml), or add --force"
        );
    }
    out.write_all(bytes)?;
    Ok(())
}

/// The plain `ticket list`: a header row, then one row per ticket; each column as wide as
/// its widest cell, the subject last and unpadded.
fn ticket_table(tickets: &[store::TicketSummary]) -> String {
    const HEADER: [&str; 7] = [
        "TICKET",
        "STATUS",
        "PRIORITY",
        "QUEUE",
        "ASSIGNEE",
        "REQUESTER",
        "SUBJECT",
    ];
    let rows: Vec<[String; 7]> = tickets
        .iter()
        .map(|t| {
            [
                t.tag.clone(),
                t.status.to_string(),
                t.priority.to_string(),
                visible(&t.queue).into_owned(),
                t.assignee.clone().unwrap_or_else(|| "-".to_owned()),
                visible(t.requester.as_deref().unwrap_or("-")).into_owned(),
                visible(&t.subject).into_owned(),
            ]
        })
        .collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let last = row.len() - 1;
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

fn ticket_id(s: &str) -> Result<crate::model::TicketId> {
    store::parse_ticket_id(s).ok_or_else(|| anyhow::anyhow!("not a ticket number: {s:?}"))
}

/// Who a sysadmin is in the event log: `admin:<login>`.
fn admin_actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".to_owned());
    format!("admin:{user}")
}

fn admin(
    cfg: &Config,
    id: crate::model::TicketId,
    changes: Vec<crate::workflow::admin::Change>,
) -> Result<ExitCode> {
    let done = runtime()?.block_on(desk(cfg)?.admin_change(
        id,
        changes,
        &admin_actor(),
        SystemClock.now(),
    ))?;
    println!("#{id}: {}", done.join(", "));
    Ok(ExitCode::SUCCESS)
}

/// The store with its writer and the engine, for commands that change something.
fn desk(cfg: &Config) -> Result<Desk> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Arc::new(Engine::new(cfg, clock)?);
    Ok(Desk::new(Store::open(&cfg.db_path())?, engine))
}

fn quarantine(path: &Path, cmd: QuarantineCommand) -> Result<ExitCode> {
    let cfg = load(path)?;
    match cmd {
        QuarantineCommand::List { limit, json: f } => {
            let list = reader(&cfg)?.quarantine_page(Some(limit))?;
            if f.json {
                return print_json(&list);
            }
            for q in &list {
                println!(
                    "#{:<5} {:<8} {} mailbox {} uid {} {} bytes{}: {}",
                    q.id.get(),
                    q.state,
                    stamp::text(q.created_at),
                    q.mailbox.as_deref().unwrap_or("-"),
                    q.uid.map_or("-".to_owned(), |u| u.to_string()),
                    q.size,
                    if q.truncated { " (truncated)" } else { "" },
                    visible(&q.reason)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Show {
            id,
            raw,
            force,
            json,
        } => {
            let Some((view, bytes)) = reader(&cfg)?.quarantine_raw(QuarantineId::new(id))? else {
                bail!("no quarantined message #{id}");
            };
            if raw {
                write_raw(&bytes, force)?;
                return Ok(ExitCode::SUCCESS);
            }
            if json.json {
                #[derive(Serialize)]
                struct Shown<'a> {
                    #[serde(flatten)]
                    view: &'a store::QuarantineView,
                    raw: String,
                }
                return print_json(&Shown {
                    view: &view,
                    raw: String::from_utf8_lossy(&bytes).into_owned(),
                });
            }
            println!(
                "#{} {} reason: {}",
                view.id.get(),
                view.state,
                visible(&view.reason)
            );
            println!(
                "size {} bytes, {}; sha256 {} ({})",
                view.size,
                if view.truncated {
                    format!("truncated: the first {} bytes are kept", view.kept)
                } else {
                    "kept whole".to_owned()
                },
                view.sha256.as_deref().unwrap_or("-"),
                match view.sha256_of.as_deref() {
                    Some("kept") => "of the bytes kept",
                    Some(_) => "of the whole message",
                    None => "not recorded",
                }
            );
            let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(4000)]);
            for line in shown.lines() {
                println!("{}", visible(line));
            }
            Ok(ExitCode::SUCCESS)
        }
        QuarantineCommand::Retry { id } => {
            let outcome =
                runtime()?.block_on(desk(&cfg)?.retry_quarantined(QuarantineId::new(id)))?;
            match outcome {
                RetryOutcome::Released(applied) => {
                    println!("#{id} released: {applied:?}");
                    Ok(ExitCode::SUCCESS)
                }
                RetryOutcome::AlreadyReleased => {
                    println!("#{id} was already released");
                    Ok(ExitCode::SUCCESS)
                }
                RetryOutcome::StillUnusable(reason) => {
                    println!("#{id} still cannot be processed: {reason}");
                    Ok(ExitCode::FAILURE)
                }
                RetryOutcome::Truncated {
                    size,
                    kept,
                    mailbox,
                    location,
                } => {
                    let whole = match (mailbox, location) {
                        (Some(mb), Some((uv, uid))) => format!(
                            "the whole message is on the IMAP server: mailbox {mb} (folder {}), UIDVALIDITY {}, UID {} (not deleted, not marked seen)",
                            cfg.mailbox(mb.as_str()).map_or("?", |m| m.imap.folder.as_str()),
                            uv.0,
                            uid.0
                        ),
                        _ => "the whole message was handed over by `postdesk deliver` or `postdesk import` (see the reason for where it is)".to_owned(),
                    };
                    bail!(
                        "#{id} holds only the first {kept} of {size} bytes, so it cannot be processed again; {whole}. \
                         Raise [limits] max_message_bytes above {size} and hand the whole message over again (`postdesk import` or `postdesk deliver`)"
                    );
                }
            }
        }
    }
}

fn outbox(path: &Path, cmd: OutboxCommand) -> Result<ExitCode> {
    let cfg = load(path)?;
    match cmd {
        OutboxCommand::List { state, limit, json } => {
            if let Some(s) = &state {
                s.parse::<crate::model::OutboxState>()?;
            }
            let list = reader(&cfg)?.outbox_page(state.as_deref(), Some(limit))?;
            if json.json {
                return print_json(&list);
            }
            for o in &list {
                println!(
                    "#{:<5} {:<7} {:<16} ticket {} to {} attempts {} {}{}",
                    o.id.get(),
                    o.state,
                    o.kind,
                    o.ticket.map_or("-".to_owned(), |t| t.to_string()),
                    o.to.join(","),
                    o.attempts,
                    visible(&o.subject),
                    o.last_error
                        .as_deref()
                        .map(|e| format!(" (last error: {})", visible(e)))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry { id, all } => {
            if id.is_none() && !all {
                bail!("give an outbox id, or --all for every failed message");
            }
            let store = Store::open(&cfg.db_path())?;
            let n = runtime()?
                .block_on(store.requeue_outbox(id.map(OutboxId::new), SystemClock.now()))?;
            println!("{n} message(s) queued again; a running daemon sends them within a second");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// sysexits(3): the MTA keeps the message and tries again later.
const EX_TEMPFAIL: u8 = 75;

/// `postdesk deliver`: every failure to store is a temporary failure (exit 75), so the
/// MTA keeps the message; a broken configuration too, so that fixing it loses nothing.
fn deliver(path: &Path, mailbox: &str) -> ExitCode {
    match deliver_inner(path, mailbox) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("postdesk deliver: {err:#} (temporary failure: the MTA will retry)");
            tracing::error!(error = format!("{err:#}"), "deliver failed");
            ExitCode::from(EX_TEMPFAIL)
        }
    }
}

fn deliver_inner(path: &Path, mailbox: &str) -> Result<()> {
    // Read the message first, whatever happens next: an MTA that gets a broken pipe on
    // its side may log a confusing error instead of our exit code. At most
    // `max_message_bytes + 1` bytes are held; the rest is read through (hashed) and
    // dropped. A configuration that does not load still reads stdin through.
    let cfg = load(path);
    let limits = cfg.as_ref().map(|c| c.limits.clone()).unwrap_or_default();
    let message = crate::ingest::bounded::read_message(std::io::stdin().lock(), &limits)
        .context("cannot read the message on stdin")?;
    let cfg = cfg?;
    runtime()?.block_on(crate::ingest::deliver::deliver(
        &cfg,
        mailbox,
        message,
        Arc::new(SystemClock),
    ))?;
    Ok(())
}

fn import(path: &Path, mailbox: &str, notify: bool, source: &Path) -> Result<ExitCode> {
    use std::io::IsTerminal as _;
    let cfg = load(path)?;
    let Some(mb) = cfg.mailbox(mailbox) else {
        bail!("no [[mailbox]] named {mailbox:?}");
    };
    let messages = crate::ingest::import::read(source, &cfg.limits)?;
    let total = messages.len();
    let desk = desk(&cfg)?;
    let tty = std::io::stderr().is_terminal();
    let sum = runtime()?.block_on(crate::ingest::import::import(
        &desk,
        &mb.name,
        messages,
        source,
        notify,
        SystemClock.now(),
        |done, total| {
            if tty {
                eprint!("\rimporting {}: {done}/{total}", source.display());
            }
        },
    ))?;
    if tty {
        eprintln!();
    }
    println!(
        "{}: {total} messages: {} stored ({} new tickets, {} automatic), {} already there, {} quarantined",
        source.display(),
        sum.recorded,
        sum.new_tickets,
        sum.automatic,
        sum.duplicates,
        sum.quarantined
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Language, Priority, TicketId};

    #[test]
    fn visible_shows_control_characters_instead_of_sending_them() {
        assert_eq!(visible("Printer\tdown"), "Printer\tdown");
        assert_eq!(
            visible("\u{1b}[2J\u{1b}]0;owned\u{7}x\r\n\u{7f}"),
            "^[[2J^[]0;owned^Gx^M^J^?"
        );
        assert_eq!(
            visible("abc\u{202e}fdp.exe\u{9b}"),
            "abc<U+202E>fdp.exe<U+009B>"
        );
        assert_eq!(visible("普通的主题"), "普通的主题");
    }

    #[test]
    fn ticket_table_escapes_a_hostile_subject() {
        let table = ticket_table(&[summary(1, None, "\u{1b}[31mURGENT\u{1b}[0m\rfake")]);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
        assert!(table.contains("^[[31mURGENT^[[0m^Mfake"), "{table}");
    }

    fn summary(id: i64, assignee: Option<&str>, subject: &str) -> store::TicketSummary {
        let at = chrono::DateTime::UNIX_EPOCH;
        store::TicketSummary {
            id: TicketId::new(id),
            tag: format!("[ACME #{id}]"),
            subject: subject.to_owned(),
            status: Status::Open,
            priority: Priority::Normal,
            queue: "support".to_owned(),
            requester: Some("jane@customer.test".to_owned()),
            requester_name: Some("Jane Doe".to_owned()),
            assignee: assignee.map(str::to_owned),
            message_count: 1,
            created_at: at,
            updated_at: at,
            flagged: None,
            linked_to: None,
            language: Language::En,
            tags: Vec::new(),
            first_response_at: None,
            merged_into: None,
            csat: None,
        }
    }

    #[test]
    fn ticket_list_has_a_header_row_and_the_assignee() {
        let table = ticket_table(&[
            summary(1042, Some("alice"), "Printer offline"),
            summary(7, None, "打印机无法连接"),
        ]);
        assert_eq!(
            table,
            "TICKET        STATUS  PRIORITY  QUEUE    ASSIGNEE  REQUESTER           SUBJECT\n\
             [ACME #1042]  open    normal    support  alice     jane@customer.test  Printer offline\n\
             [ACME #7]     open    normal    support  -         jane@customer.test  打印机无法连接\n"
        );
        assert_eq!(
            ticket_table(&[]),
            "TICKET  STATUS  PRIORITY  QUEUE  ASSIGNEE  REQUESTER  SUBJECT\n",
            "no ticket: the header row alone"
        );
    }
}
