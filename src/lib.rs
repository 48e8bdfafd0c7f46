//! postdesk: an email-driven helpdesk daemon.
//!
//! One message's path (DESIGN.md "Flow of one message"), one module per stage, declared
//! here in that order:
//! - [`config`]: the TOML file, checked with file, line and key in every error.
//! - [`ingest`]: IMAP (IDLE, else polling) hands raw bytes in batches to the store.
//! - [`parse`]: raw bytes → [`parse::Parsed`], every charset decoded.
//! - [`classify`]: human, auto-reply, bounce, bulk or our own mail (loop protection).
//! - [`thread`]: which ticket a message joins; signed Message-IDs; the subject tag.
//! - [`agent`]: agents' command lines, quoted-history trimming, proof of the sender.
//! - [`workflow`]: applies the decisions inside the ingest transaction; the lifecycle.
//! - [`rules`]: routing rules, VIP bump, assignment choice.
//! - [`notify`]: templates, composed mail, surveys, the outbox sender over SMTP.
//! - [`schedule`]: cron occurrences of the daemon's jobs (SLA sweep, auto-close, digests).
//! - [`store`]: all SQL; one writer thread; read-only views for the CLI.
//! - [`daemon`], [`cli`]: `postdesk run` and the other commands.

pub mod agent;
pub mod classify;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod parse;
pub mod report;
pub mod rules;
pub mod schedule;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod thread;
pub mod workflow;
