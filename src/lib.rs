//! postdesk: an email-driven helpdesk daemon.
//!
//! One message's path (DESIGN.md "Flow of one message"), one module per stage, declared
//! here in that order; the shared vocabulary first, the edges last.
//! - [`model`]: typed ids, states and event kinds that every stage shares.
//! - [`limits`]: every bound on what one incoming message may cost (the `[limits]` table).
//! - [`config`]: the TOML file, checked with file, line and key in every error.
//! - [`calendar`]: business calendars and SLA due times (pure time arithmetic).
//! - [`key`]: the instance key and every HMAC made with it (Message-IDs, survey links).
//! - [`tls`]: verified TLS for every connection, and errors that name the setting to change.
//! - [`oauth`]: `postdesk login`, the token files, fresh access tokens for IMAP and SMTP.
//! - [`ingest`]: IMAP (IDLE, else polling), the MTA pipe and imports hand over raw bytes.
//! - [`mail`]: raw bytes → parsed, classified (loop protection), subject tags.
//! - [`thread`]: which ticket a message joins (signed Message-IDs, tags, participants).
//! - [`words`]: the words of a text (Latin words, jieba for Chinese) for problems and triage.
//! - [`rules`]: routing rules, VIP bump, assignment choice.
//! - [`agent`]: agents' command lines, quoted-history trimming, proof of the sender.
//! - [`store`]: all SQL, a leaf; one write transaction at a time; read-only views.
//! - [`workflow`]: applies the decisions inside one write; the lifecycle, SLA, jobs.
//! - [`notify`]: templates, composed mail, surveys, the outbox sender over SMTP.
//! - [`schedule`]: cron occurrences of the daemon's jobs (SLA sweep, auto-close, digests).
//! - [`report`]: figures for managers from the store's rows.
//! - [`daemon`], [`service`], [`metrics`], [`clock`], [`shutdown`]: `postdesk run`.
//! - [`cli`]: the commands: parse flags, call the library, print.

pub mod model;
pub mod limits;
pub mod config;
pub mod calendar;
pub mod key;
pub mod tls;
pub mod oauth;
pub mod ingest;
pub mod mail;
pub mod thread;
pub mod words;
pub mod kb;
pub mod rules;
pub mod triage;
pub mod agent;
pub mod store;
pub mod workflow;
pub mod notify;
pub mod schedule;
pub mod report;
pub mod daemon;
pub mod service;
pub mod metrics;
pub mod clock;
pub mod shutdown;
pub mod cli;
