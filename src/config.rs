//! Loads and validates the one TOML configuration file.
//!
//! Two steps (STYLE.md 2.8): `Raw*` structs mirror the file and only let serde check it
//! (`deny_unknown_fields`, typed values); `Config` is what the daemon uses, with defaults
//! applied, durations parsed, references between sections checked and secrets read.
//! - Every error names the file, the line and the key (DESIGN.md "Configuration").
//! - Secrets come only from `password_file` (relative to the config file) or
//!   `password_env`; they live in [`Secret`], which never prints its value.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::calendar::{Calendar, Policy};
use crate::model::{Language, MailboxName, Priority};

/// Where `postdesk` looks when neither `--config` nor `POSTDESK_CONFIG` is given.
pub const DEFAULT_PATH: &str = "/etc/postdesk/postdesk.toml";

/// A customer's reply to a ticket closed less than this long ago reopens it; a later one
/// opens a new ticket linked to the old one.
pub const DEFAULT_REOPEN_WINDOW: Duration = Duration::from_secs(14 * 86_400);
/// How long survey links record a rating after the survey mail, unless a queue says.
pub const DEFAULT_SURVEY_VALID_FOR: Duration = Duration::from_secs(30 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {key}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    /// A knowledge-base article or macro (`kb_dir`, `[[macro]]`); names file and line.
    #[error(transparent)]
    Kb(#[from] crate::kb::KbError),
}

/// A password or key. No `Display`, no `Serialize`; `Debug` prints `Secret(..)`.
/// Review every `expose` call.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How to talk to a server: plain TCP, TLS from the first byte, or STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    None,
    Tls,
    Starttls,
}

/// How postdesk checks a server's certificate, for IMAP, SMTP and a mailbox's OAuth
/// endpoints alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// A PEM file of CA certificates to trust (a private CA, a self-signed server).
    pub ca_file: Option<PathBuf>,
    /// Trust the built-in web roots too (default). `web_roots = false` trusts only `ca_file`.
    pub web_roots: bool,
    /// The name the certificate must carry, when it is not `host` (connecting by IP
    /// address to a server whose certificate names it).
    pub server_name: Option<String>,
}

impl Default for Tls {
    fn default() -> Tls {
        Tls {
            ca_file: None,
            web_roots: true,
            server_name: None,
        }
    }
}

/// How a mailbox logs in to its IMAP server.
#[derive(Debug, Clone)]
pub enum Login {
    Password(Secret),
    /// SASL XOAUTH2 or OAUTHBEARER with an access token from `postdesk login`.
    OAuth2(Arc<OAuth>),
}

/// Whose OAuth 2.0 endpoints a mailbox uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Microsoft 365 (Entra ID): device login, the Office 365 IMAP and SMTP scopes.
    Microsoft,
    /// Google Workspace and Gmail: Google allows no device login for mail scopes, so
    /// `postdesk login` asks for the address the browser was sent back to.
    Google,
    /// Any other authorization server: every endpoint and the scopes are given.
    Custom,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Microsoft => "microsoft",
            Provider::Google => "google",
            Provider::Custom => "custom",
        }
    }
}

/// The SASL mechanism that carries the access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaslMechanism {
    /// Google's and Microsoft's `XOAUTH2`.
    Xoauth2,
    /// RFC 7628 `OAUTHBEARER`.
    Oauthbearer,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Xoauth2 => "XOAUTH2",
            SaslMechanism::Oauthbearer => "OAUTHBEARER",
        }
    }
}

/// A mailbox's OAuth 2.0 client (`[mailbox.oauth]`), with the provider's endpoints filled in.
#[derive(Debug, Clone)]
pub struct OAuth {
    pub provider: Provider,
    pub client_id: String,
    /// Google's desktop clients have one (it is not secret there, but kept like one).
    pub client_secret: Option<Secret>,
    /// RFC 8628 device authorization endpoint; `None` where the provider has no device
    /// login for mail (Google): then `auth_url` and a pasted redirect are used.
    pub device_authorization_url: Option<String>,
    /// Authorization endpoint for the browser login (Google, or `custom` without a
    /// device endpoint).
    pub auth_url: Option<String>,
    pub token_url: String,
    pub revocation_url: Option<String>,
    pub scopes: Vec<String>,
    pub mechanism: SaslMechanism,
    /// `data_dir/tokens/<mailbox>.json`, mode 0600: what `postdesk login` stored.
    pub token_file: PathBuf,
    /// TLS for the provider's endpoints: the mailbox's `ca_file` is trusted there too.
    pub tls: Tls,
}

/// How postdesk logs in to the SMTP server.
#[derive(Debug, Clone)]
pub enum SmtpAuth {
    None,
    Password {
        username: String,
        password: Secret,
    },
    /// XOAUTH2 with the access token of the named mailbox (`oauth_from_mailbox`).
    OAuth2 {
        mailbox: MailboxName,
        username: String,
        oauth: Arc<OAuth>,
    },
}

/// Where mailbox alarms go (`[alerts]`).
#[derive(Debug, Clone)]
pub struct Alerts {
    /// Who gets one mail per incident and one when it is over. Empty: status, metrics
    /// and the log only.
    pub to: Vec<String>,
    /// The sender of alarm mail; defaults to the first mailbox's address.
    pub from: String,
    /// A mailbox that has not completed a sync for this long raises an alarm.
    pub alert_after: Duration,
    /// A refresh token the provider says expires within this long raises a warning.
    pub token_expiry_warning: Duration,
}

/// The knowledge base and self-service (issue 16): `kb_dir`, `[[macro]]`, `[self_service]`.
#[derive(Debug, Clone)]
pub struct Knowledge {
    /// The Markdown articles of `kb_dir` and the `[[macro]]` tables, loaded and checked.
    pub kb: Arc<crate::kb::Kb>,
    /// Where the articles were read from (`postdesk kb check` reads it again).
    pub kb_dir: Option<PathBuf>,
    /// The macros as configured, for `kb check`.
    pub macros: Vec<crate::kb::Macro>,
    /// A new mail whose subject is only one of these words (case-insensitive) opens no
    /// ticket: the sender gets the list of their own open tickets.
    pub status_words: Vec<String>,
    /// A customer's reply whose first line is one of these, to an acknowledgement that
    /// listed articles, resolves the ticket.
    pub solved_words: Vec<String>,
}

/// What happens to a message on the IMAP server once its batch has committed. The
/// cursor in the store is the source of truth either way; this is for the humans who
/// also look at the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterIngest {
    Leave,
    MarkSeen,
    MoveTo(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages and for `SIGHUP` reloads.
    pub path: PathBuf,
    pub data_dir: PathBuf,
    /// Right-hand side of the Message-IDs we send.
    pub hostname: String,
    /// Instance key for signed Message-IDs; `None` means `data_dir/instance.key`.
    pub instance_key_file: Option<PathBuf>,
    /// Overrides the templates built into the binary.
    pub templates_dir: Option<PathBuf>,
    /// The knowledge base and self-service by mail (issue 16).
    pub knowledge: Knowledge,
    /// What one incoming message may cost (`[limits]`; `max_message_bytes` at the top
    /// level is read as `limits.max_message_bytes`).
    pub limits: crate::limits::Limits,
    pub reopen_window: Duration,
    pub smtp: Smtp,
    pub outbox: Outbox,
    pub loop_protection: LoopProtection,
    /// The receiving server whose `Authentication-Results` we trust (DESIGN.md
    /// invariant 5): a DKIM/DMARC pass there proves an agent's fresh mail, a DMARC fail
    /// keeps a customer's mail off the customer's ticket. `None`: only reply tokens prove
    /// an agent.
    pub trusted_authserv_id: Option<String>,
    /// Our own hosts that add `Received` lines above the trusted server's
    /// `Authentication-Results` (an LMTP or IMAP host behind the MX), lower-cased.
    pub internal_hosts: Vec<String>,
    /// Relays to agents carry customers' attachments up to this size each; larger ones
    /// are listed, not attached.
    pub relay_attachment_limit: usize,
    pub queues: Vec<Queue>,
    pub agents: Vec<Agent>,
    pub mailboxes: Vec<Mailbox>,
    /// Routing rules, in order.
    pub rules: Vec<crate::rules::Rule>,
    /// VIP addresses or domains: their tickets start one priority step higher.
    pub vip: Vec<String>,
    pub schedule: Schedule,
    /// A Prometheus text-format file the daemon rewrites every minute (for
    /// node_exporter's textfile collector).
    pub metrics_file: Option<PathBuf>,
    pub alerts: Alerts,
    pub triage: Triage,
}

#[derive(Debug, Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub tls: Tls,
    pub auth: SmtpAuth,
    /// Connections kept warm; the sender runs this many deliveries at once.
    pub connections: usize,
    pub timeout: Duration,
    /// EHLO name; defaults to `hostname`.
    pub hello_name: String,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// A message still not accepted after this long is marked failed.
    pub give_up_after: Duration,
    /// `postdesk status` warns when the oldest waiting mail is older than this.
    pub warn_after: Duration,
    /// `[loop_protection] ack_max_age`, for the sender: an acknowledgement still waiting
    /// this long after its message arrived is dropped with an event, not sent late.
    pub ack_max_age: Duration,
}

/// Limits on automatic mail (acknowledgements, notifications, surveys): a storm of
/// automatic mail is held back, and what was held is recorded as an event (invariant 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopProtection {
    /// Automatic mails to one address per `per_recipient_window`; the address is
    /// normalised first (case, `+detail`), or reduced to its domain with
    /// `per_recipient_key = "domain"`.
    pub per_recipient: u32,
    pub per_recipient_window: Duration,
    pub per_recipient_key: RateKey,
    /// Automatic mails to one recipient domain per `per_recipient_window`.
    pub per_domain: u32,
    /// Automatic mails to everyone per `global_window`: the breaker for floods of
    /// different senders. It delays (to the first later window with room, windows
    /// aligned on the clock), it does not drop, unless the wait would pass `ack_max_age`.
    pub global: u32,
    pub global_window: Duration,
    /// Relays to agents per ticket per `relay_window` (a customer flooding one ticket).
    pub relays_per_ticket: u32,
    /// Relays to agents per queue per `relay_window` (a flood across tickets).
    pub relays_per_queue: u32,
    pub relay_window: Duration,
    /// An acknowledgement not sent within this long after its message arrived (held by
    /// the breaker, the outbox down) is dropped with an event instead of sent late.
    pub ack_max_age: Duration,
}

/// What `per_recipient` counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateKey {
    /// The normalised address: `Victim+1@Example.COM` counts as `victim@example.com`.
    Address,
    /// The address's domain.
    Domain,
}

impl Default for LoopProtection {
    fn default() -> LoopProtection {
        LoopProtection {
            per_recipient: 10,
            per_recipient_window: Duration::from_secs(3600),
            per_recipient_key: RateKey::Address,
            per_domain: 1000,
            global: 1000,
            global_window: Duration::from_secs(600),
            relays_per_ticket: 20,
            relays_per_queue: 200,
            relay_window: Duration::from_secs(3600),
            ack_max_age: Duration::from_secs(86_400),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    /// Shown to customers ("ACME Support").
    pub display_name: String,
    pub language: Language,
    /// Mail to this address is an internal note whatever its first line. Besides it,
    /// `<local>+comment@<domain>` of each of the queue's mailboxes is one too.
    pub comment_address: Option<String>,
    /// Mail the customer when an agent resolves or closes the ticket.
    pub status_mail: bool,
    /// The business calendar SLA times count in (default: 24×7).
    pub calendar: Arc<Calendar>,
    /// SLA policy per priority.
    pub sla: HashMap<Priority, Policy>,
    /// Share of an SLA's time after which the assignee (or the team) is warned.
    pub sla_warn_at: f64,
    /// At a breach: raise the priority one step.
    pub escalate_priority: bool,
    /// At a breach: reassign to this agent.
    pub escalate_to: Option<String>,
    /// Who gets escalations and digests.
    pub managers: Vec<String>,
    /// `resolved` tickets close themselves after this long.
    pub auto_close_after: Option<Duration>,
    /// `closed` tickets are archived after this long.
    pub archive_after: Option<Duration>,
    /// Send a satisfaction survey when a ticket is resolved.
    pub surveys: bool,
    /// How long the links of a ticket's latest survey mail record a rating; `None`:
    /// forever (`"never"`).
    pub survey_valid_for: Option<Duration>,
    /// Automatic assignment of new tickets; `None`: agents claim them (`#assign me`).
    pub assignment: Option<crate::rules::Strategy>,
    /// List the knowledge-base articles that match a new request in its acknowledgement.
    pub kb_in_acknowledgement: bool,
}

impl Queue {
    /// A queue with every default, for a mailbox that names none.
    pub fn named(name: &str) -> Queue {
        Queue {
            name: name.to_owned(),
            display_name: name.to_owned(),
            language: Language::En,
            comment_address: None,
            status_mail: true,
            calendar: Arc::new(Calendar::always()),
            sla: HashMap::new(),
            sla_warn_at: 0.8,
            escalate_priority: false,
            escalate_to: None,
            managers: Vec::new(),
            auto_close_after: Some(Duration::from_secs(7 * 86_400)),
            archive_after: Some(Duration::from_secs(90 * 86_400)),
            surveys: true,
            survey_valid_for: Some(DEFAULT_SURVEY_VALID_FOR),
            assignment: None,
            kb_in_acknowledgement: false,
        }
    }
}

/// When the daemon's jobs run (six-field cron expressions with seconds; `None`: never).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The zone cron expressions are read in.
    pub timezone: chrono_tz::Tz,
    pub sla_sweep: Option<cron::Schedule>,
    pub auto_close: Option<cron::Schedule>,
    pub archive: Option<cron::Schedule>,
    pub digest: Option<cron::Schedule>,
}

/// `[triage]` (issue 16): what the learnt model may do with a new ticket.
#[derive(Debug, Clone)]
pub struct Triage {
    pub mode: TriageMode,
    /// Below its threshold a label's guess is not shown, kept or applied.
    pub queue_threshold: f64,
    pub priority_threshold: f64,
    pub tags_threshold: f64,
    /// When the daemon retrains (`None`: never; default nightly at 02:00).
    pub schedule: Option<cron::Schedule>,
    /// Training reads at most this many of the newest handled tickets.
    pub max_tickets: usize,
    /// `data_dir/triage.model`.
    pub model_file: PathBuf,
}

/// `off` (the default): no prediction; `suggest`: shown to agents and kept; `apply`:
/// also set on the new ticket when confident and no rule decided that field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriageMode {
    Off,
    Suggest,
    Apply,
}

impl TriageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TriageMode::Off => "off",
            TriageMode::Suggest => "suggest",
            TriageMode::Apply => "apply",
        }
    }
}

/// A person who answers tickets from their own mail client.
#[derive(Debug, Clone)]
pub struct Agent {
    /// The name used in `#assign NAME`; lower case.
    pub name: String,
    pub display_name: String,
    /// Lower-cased; mail from any of them is this agent's.
    pub addresses: Vec<String>,
    pub language: Language,
    /// The queues this agent works in (its team); empty means every queue.
    pub queues: Vec<String>,
    /// Open tickets this agent can hold (issue 5's assignment uses it).
    pub capacity: u32,
}

impl Agent {
    pub fn works_in(&self, queue: &str) -> bool {
        self.queues.is_empty() || self.queues.iter().any(|q| q == queue)
    }
    /// The domain of the agent's address `address` (for DKIM/DMARC alignment).
    pub fn domain_of(address: &str) -> &str {
        address.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

#[derive(Debug, Clone)]
pub struct Mailbox {
    pub name: MailboxName,
    /// The support address customers write to; acknowledgements come from it.
    pub address: String,
    pub queue: String,
    /// `ACME` in `[ACME #42]`.
    pub tag: String,
    /// Where agents reply: an address with `{token}` in it (default
    /// `<local>+{token}@<domain>` of `address`, which needs plus-addressing).
    pub reply_address: String,
    pub imap: Imap,
}

#[derive(Debug, Clone)]
pub struct Imap {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub tls: Tls,
    /// The user name given to the server (`login`, default `address`). For a Microsoft
    /// 365 shared mailbox: the shared mailbox's address, while a delegate does the login.
    pub username: String,
    pub auth: Login,
    pub folder: String,
    /// Use IDLE when the server offers it; poll otherwise.
    pub idle: bool,
    pub poll_interval: Duration,
    pub after: AfterIngest,
    /// Messages fetched, parsed and committed together (one fsync per batch).
    pub batch_size: usize,
    /// `postdesk status` warns when no mail came for this long.
    pub quiet_warning: Option<Duration>,
    pub timeout: Duration,
}

/// What can prove one agent's mail (DESIGN.md invariant 5), for `postdesk check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentProofs {
    pub agent: String,
    pub addresses: Vec<String>,
    /// The reply token addresses (with `{token}`) of the mailboxes of the agent's queues.
    pub reply_addresses: Vec<String>,
    /// The trusted receiving server and the domains it must pass, when one is set.
    pub authserv: Option<(String, Vec<String>)>,
}

impl Config {
    /// For each agent, the proofs its mail can carry.
    pub fn agent_proofs(&self) -> Vec<AgentProofs> {
        self.agents
            .iter()
            .map(|a| {
                let mut reply_addresses: Vec<String> = self
                    .mailboxes
                    .iter()
                    .filter(|m| a.works_in(&m.queue))
                    .map(|m| m.reply_address.clone())
                    .collect();
                reply_addresses.dedup();
                let mut domains: Vec<String> = a
                    .addresses
                    .iter()
                    .map(|x| Agent::domain_of(x).to_owned())
                    .collect();
                domains.sort();
                domains.dedup();
                AgentProofs {
                    agent: a.name.clone(),
                    addresses: a.addresses.clone(),
                    reply_addresses,
                    authserv: self.trusted_authserv_id.clone().map(|id| (id, domains)),
                }
            })
            .collect()
    }

    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.name == name)
    }
    pub fn mailbox(&self, name: &str) -> Option<&Mailbox> {
        self.mailboxes.iter().find(|m| m.name.as_str() == name)
    }
    pub fn instance_key_path(&self) -> PathBuf {
        self.instance_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("instance.key"))
    }
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("postdesk.db")
    }
    /// Every subject tag we answer to, for threading.
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self.mailboxes.iter().map(|m| m.tag.clone()).collect();
        tags.sort();
        tags.dedup();
        tags
    }
    /// Our own support addresses, lower-cased: never a requester, never a recipient.
    pub fn support_addresses(&self) -> Vec<String> {
        self.mailboxes
            .iter()
            .map(|m| m.address.to_ascii_lowercase())
            .collect()
    }
    /// The addresses that make a mail an internal note, lower-cased.
    pub fn comment_addresses(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .queues
            .iter()
            .filter_map(|q| q.comment_address.clone())
            .collect();
        for m in &self.mailboxes {
            if let Some((local, domain)) = m.address.rsplit_once('@') {
                out.push(format!("{local}+comment@{domain}").to_ascii_lowercase());
            }
        }
        out.sort();
        out.dedup();
        out
    }
    pub fn agent_by_address(&self, address: &str) -> Option<&Agent> {
        self.agents
            .iter()
            .find(|a| a.addresses.iter().any(|x| x.eq_ignore_ascii_case(address)))
    }
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
    /// The agents of a queue (its team).
    pub fn team(&self, queue: &str) -> Vec<&Agent> {
        self.agents.iter().filter(|a| a.works_in(queue)).collect()
    }
}

/// Reads, parses and validates `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    from_str(path, &text)
}

/// Where the knowledge base comes from (`kb_dir`, `[[macro]]`), read from `path` without
/// checking the rest of the file: `postdesk kb check` lists every bad article even when
/// the first one keeps the configuration from loading.
pub fn kb_sources(path: &Path) -> Result<(Option<PathBuf>, Vec<crate::kb::Macro>), ConfigError> {
    #[derive(Deserialize)]
    struct Sources {
        kb_dir: Option<PathBuf>,
        #[serde(default, rename = "macro")]
        macros: Vec<RawMacro>,
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let raw: Sources = toml::from_str(&text).map_err(|err| {
        let offset = err.span().map(|s| s.start).unwrap_or(0);
        invalid(
            path,
            &text,
            offset,
            key_at(&text, offset),
            err.message().to_owned(),
        )
    })?;
    let v = Validator { path, text: &text };
    Ok((
        raw.kb_dir.map(|p| v.relative(&p)),
        raw.macros.into_iter().map(RawMacro::into_macro).collect(),
    ))
}

/// Parses and validates `text` as if it were read from `path` (used by tests and `check`).
pub fn from_str(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|err| {
        let offset = err.span().map(|s| s.start).unwrap_or(0);
        let key = key_at(text, offset);
        invalid(path, text, offset, key, err.message().to_owned())
    })?;
    Validator { path, text }.config(raw)
}

fn invalid(path: &Path, text: &str, offset: usize, key: String, message: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_owned(),
        line: line_of(text, offset),
        key,
        message,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The key written on the line that holds `offset` (`poll_interval = "9x"` gives
/// `poll_interval`), or the table header there (`[smtp]`).
fn key_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let line = text[start..end].trim();
    if let Some((key, _)) = line.split_once('=') {
        return key.trim().trim_matches('"').to_owned();
    }
    let header = line.trim_matches(|c| c == '[' || c == ']').trim();
    if header.is_empty() {
        "(file)".to_owned()
    } else {
        header.to_owned()
    }
}

/// Parses `"90s"`, `"15m"`, `"8h"`, `"7d"`, `"500ms"`, and sums like `"1h30m"`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number followed by ms, s, m, h or d (\"90s\", \"7d\")"
            ));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        let secs = match unit {
            "ms" => {
                total += Duration::from_millis(n);
                rest = &rest[unit_len..];
                continue;
            }
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?} (use ms, s, m, h, d or w)"
                ))
            }
        };
        total += Duration::from_secs(n.saturating_mul(secs));
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// The shortest text `parse_duration` reads back as `d` ("1h", "90s", "7d").
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

/// A duration as written in the file; the text is checked while deserializing so that
/// toml reports the offending line.
#[derive(Debug, Clone, Copy)]
struct DurationText(Duration);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DurationText, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(DurationText)
            .map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Language {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Language, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|_| {
            serde::de::Error::custom(format!("unknown language {s:?} (use \"en\" or \"zh-CN\")"))
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Spanned<PathBuf>,
    hostname: Option<Spanned<String>>,
    instance_key_file: Option<PathBuf>,
    templates_dir: Option<PathBuf>,
    kb_dir: Option<PathBuf>,
    #[serde(default, rename = "macro")]
    macros: Vec<RawMacro>,
    #[serde(default)]
    self_service: RawSelfService,
    max_message_bytes: Option<Spanned<usize>>,
    reopen_window: Option<DurationText>,
    trusted_authserv_id: Option<String>,
    internal_hosts: Option<Vec<String>>,
    relay_attachment_limit: Option<usize>,
    metrics_file: Option<PathBuf>,
    smtp: RawSmtp,
    #[serde(default)]
    outbox: RawOutbox,
    #[serde(default)]
    loop_protection: RawLoopProtection,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default, rename = "queue")]
    queues: Vec<RawQueue>,
    #[serde(default, rename = "agent")]
    agents: Vec<RawAgent>,
    #[serde(default, rename = "calendar")]
    calendars: Vec<RawCalendar>,
    #[serde(default, rename = "rule")]
    rules: Vec<Spanned<crate::rules::RawRule>>,
    #[serde(default)]
    vip: Vec<String>,
    #[serde(default)]
    schedule: RawSchedule,
    #[serde(rename = "mailbox")]
    mailboxes: Vec<RawMailbox>,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    triage: RawTriage,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTriage {
    mode: Option<TriageMode>,
    queue_threshold: Option<Spanned<f64>>,
    priority_threshold: Option<Spanned<f64>>,
    tags_threshold: Option<Spanned<f64>>,
    schedule: Option<Spanned<String>>,
    max_tickets: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMacro {
    name: String,
    #[serde(default)]
    commands: Vec<String>,
    #[serde(default)]
    text: String,
}

impl RawMacro {
    fn into_macro(self) -> crate::kb::Macro {
        crate::kb::Macro {
            name: self.name.trim().to_lowercase(),
            commands: self.commands,
            text: self.text,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSelfService {
    status_words: Option<Vec<String>>,
    solved_words: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    to: Option<Spanned<Vec<String>>>,
    from: Option<Spanned<String>>,
    alert_after: Option<Spanned<DurationText>>,
    token_expiry_warning: Option<DurationText>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RawAuth {
    Password,
    Oauth2,
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth {
    provider: Spanned<Provider>,
    tenant: Option<String>,
    client_id: Spanned<String>,
    client_secret_file: Option<Spanned<PathBuf>>,
    client_secret_env: Option<Spanned<String>>,
    device_authorization_url: Option<Spanned<String>>,
    auth_url: Option<Spanned<String>>,
    token_url: Option<Spanned<String>>,
    revocation_url: Option<Spanned<String>>,
    scopes: Option<Spanned<Vec<String>>>,
    mechanism: Option<SaslMechanism>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    security: Option<Security>,
    ca_file: Option<PathBuf>,
    web_roots: Option<bool>,
    tls_server_name: Option<String>,
    auth: Option<Spanned<RawAuth>>,
    oauth_from_mailbox: Option<Spanned<String>>,
    username: Option<String>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    connections: Option<Spanned<usize>>,
    timeout: Option<DurationText>,
    hello_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    retry_initial: Option<DurationText>,
    retry_max: Option<DurationText>,
    give_up_after: Option<DurationText>,
    warn_after: Option<DurationText>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_message_bytes: Option<Spanned<usize>>,
    fetch_batch_bytes: Option<Spanned<usize>>,
    quarantine_keep_bytes: Option<Spanned<usize>>,
    message_time_limit: Option<Spanned<DurationText>>,
    max_header_bytes: Option<Spanned<usize>>,
    max_mime_depth: Option<Spanned<usize>>,
    max_parts: Option<Spanned<usize>>,
    max_charsets: Option<Spanned<usize>>,
    max_encoded_words: Option<Spanned<usize>>,
    max_html_depth: Option<Spanned<usize>>,
    max_command_lines: Option<Spanned<usize>>,
    max_command_words: Option<Spanned<usize>>,
    max_people_per_message: Option<Spanned<usize>>,
    max_events_per_message: Option<Spanned<usize>>,
    max_relay_text_bytes: Option<Spanned<usize>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLoopProtection {
    per_recipient: Option<u32>,
    per_recipient_window: Option<Spanned<DurationText>>,
    per_recipient_key: Option<RateKey>,
    per_domain: Option<u32>,
    ack_max_age: Option<DurationText>,
    global: Option<u32>,
    global_window: Option<Spanned<DurationText>>,
    relays_per_ticket: Option<u32>,
    relays_per_queue: Option<u32>,
    relay_window: Option<Spanned<DurationText>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Spanned<String>,
    display_name: Option<String>,
    language: Option<Language>,
    comment_address: Option<Spanned<String>>,
    status_mail: Option<bool>,
    calendar: Option<Spanned<String>>,
    sla: Option<Spanned<HashMap<String, RawPolicy>>>,
    sla_warn_at: Option<Spanned<f64>>,
    escalate_priority: Option<bool>,
    escalate_to: Option<Spanned<String>>,
    managers: Option<Vec<String>>,
    auto_close_after: Option<Spanned<String>>,
    archive_after: Option<Spanned<String>>,
    surveys: Option<bool>,
    survey_valid_for: Option<Spanned<String>>,
    assignment: Option<Spanned<String>>,
    kb_in_acknowledgement: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    first_response: Option<DurationText>,
    next_response: Option<DurationText>,
    resolution: Option<DurationText>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    name: Spanned<String>,
    timezone: Spanned<String>,
    mon: Option<Spanned<String>>,
    tue: Option<Spanned<String>>,
    wed: Option<Spanned<String>>,
    thu: Option<Spanned<String>>,
    fri: Option<Spanned<String>>,
    sat: Option<Spanned<String>>,
    sun: Option<Spanned<String>>,
    holidays: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    timezone: Option<Spanned<String>>,
    sla_sweep: Option<Spanned<String>>,
    auto_close: Option<Spanned<String>>,
    archive: Option<Spanned<String>>,
    digest: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAgent {
    name: Spanned<String>,
    display_name: Option<String>,
    addresses: Spanned<Vec<String>>,
    language: Option<Language>,
    queues: Option<Spanned<Vec<String>>>,
    capacity: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    name: Spanned<String>,
    address: Spanned<String>,
    queue: Option<Spanned<String>>,
    tag: Spanned<String>,
    reply_address: Option<Spanned<String>>,
    host: String,
    port: Option<u16>,
    security: Option<Security>,
    ca_file: Option<PathBuf>,
    web_roots: Option<bool>,
    tls_server_name: Option<String>,
    auth: Option<Spanned<RawAuth>>,
    oauth: Option<RawOAuth>,
    /// `login` is the documented name; `username` the older one.
    #[serde(alias = "login")]
    username: Option<String>,
    password_file: Option<Spanned<PathBuf>>,
    password_env: Option<Spanned<String>>,
    folder: Option<String>,
    idle: Option<bool>,
    poll_interval: Option<DurationText>,
    after: Option<Spanned<String>>,
    move_to: Option<String>,
    batch_size: Option<Spanned<usize>>,
    timeout: Option<DurationText>,
    quiet_warning: Option<DurationText>,
}

struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn err(&self, span: std::ops::Range<usize>, key: &str, message: String) -> ConfigError {
        invalid(self.path, self.text, span.start, key.to_owned(), message)
    }

    /// `kb_dir`, `[[macro]]` and `[self_service]`: the articles are read and checked now,
    /// so that `postdesk check` names a bad one (file and line).
    fn knowledge(
        &self,
        kb_dir: Option<PathBuf>,
        macros: Vec<RawMacro>,
        raw: RawSelfService,
    ) -> Result<Knowledge, ConfigError> {
        let kb_dir = kb_dir.map(|p| self.relative(&p));
        let macros: Vec<crate::kb::Macro> = macros.into_iter().map(RawMacro::into_macro).collect();
        let kb = crate::kb::load(kb_dir.as_deref(), macros.clone())?;
        let words = |given: Option<Vec<String>>, default: &[&str], key: &str| {
            let list: Vec<String> = match given {
                Some(list) => list.iter().map(|w| w.trim().to_lowercase()).collect(),
                None => default.iter().map(|w| (*w).to_owned()).collect(),
            };
            if list.iter().any(String::is_empty) {
                let at = self.text.find(key).unwrap_or(0);
                return Err(invalid(
                    self.path,
                    self.text,
                    at,
                    key.to_owned(),
                    "an empty word would match every mail".to_owned(),
                ));
            }
            Ok(list)
        };
        Ok(Knowledge {
            kb: Arc::new(kb),
            kb_dir,
            macros,
            status_words: words(
                raw.status_words,
                &["status", "查询", "状态"],
                "status_words",
            )?,
            solved_words: words(raw.solved_words, &["solved", "已解决"], "solved_words")?,
        })
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let data_dir = self.relative(raw.data_dir.get_ref());
        let hostname = match raw.hostname {
            Some(h) if h.get_ref().trim().is_empty() || h.get_ref().contains(['<', '>', '@']) => {
                return Err(self.err(
                    h.span(),
                    "hostname",
                    format!("not a host name: {:?}", h.get_ref()),
                ))
            }
            Some(h) => h.into_inner(),
            None => "postdesk.invalid".to_owned(),
        };
        let smtp_raw = raw.smtp;
        let loop_protection = self.loop_protection(raw.loop_protection)?;
        let outbox = Outbox {
            retry_initial: raw
                .outbox
                .retry_initial
                .map_or(Duration::from_secs(30), |d| d.0),
            retry_max: raw
                .outbox
                .retry_max
                .map_or(Duration::from_secs(3600), |d| d.0),
            give_up_after: raw
                .outbox
                .give_up_after
                .map_or(Duration::from_secs(3 * 86_400), |d| d.0),
            warn_after: raw
                .outbox
                .warn_after
                .map_or(Duration::from_secs(10 * 60), |d| d.0),
            ack_max_age: loop_protection.ack_max_age,
        };
        let limits = self.limits(raw.limits, raw.max_message_bytes)?;
        let calendars = self.calendars(raw.calendars)?;
        let schedule = self.schedule(raw.schedule)?;
        let mut queues = Vec::new();
        let mut seen = HashSet::new();
        for q in raw.queues {
            if !seen.insert(q.name.get_ref().clone()) {
                return Err(self.err(
                    q.name.span(),
                    "name",
                    format!("queue {:?} is defined twice", q.name.get_ref()),
                ));
            }
            if let Some(c) = &q.comment_address {
                if !c.get_ref().contains('@') {
                    return Err(self.err(
                        c.span(),
                        "comment_address",
                        format!("not a mail address: {:?}", c.get_ref()),
                    ));
                }
            }
            queues.push(self.queue(q, &calendars)?);
        }
        let mut mailboxes = Vec::new();
        let mut names = HashSet::new();
        for m in raw.mailboxes {
            let mailbox = self.mailbox(m, &mut queues, &mut names, &data_dir)?;
            mailboxes.push(mailbox);
        }
        let agents = self.agents(raw.agents, &queues, &mailboxes)?;
        for q in &queues {
            if let Some(a) = &q.escalate_to {
                if !agents.iter().any(|x| &x.name == a) {
                    return Err(invalid(
                        self.path,
                        self.text,
                        self.text.find(&format!("\"{a}\"")).unwrap_or(0),
                        "escalate_to".to_owned(),
                        format!("no [[agent]] named {a:?}"),
                    ));
                }
            }
        }
        let rules = self.rules(raw.rules, &queues, &agents)?;
        if mailboxes.is_empty() {
            return Err(invalid(
                self.path,
                self.text,
                self.text.len(),
                "mailbox".to_owned(),
                "at least one [[mailbox]] is needed".to_owned(),
            ));
        }
        let smtp = self.smtp(smtp_raw, &hostname, &mailboxes)?;
        let alerts = self.alerts(raw.alerts, &mailboxes)?;
        let knowledge = self.knowledge(raw.kb_dir, raw.macros, raw.self_service)?;
        let triage = self.triage(raw.triage, &data_dir)?;
        Ok(Config {
            path: self.path.to_owned(),
            data_dir,
            hostname,
            instance_key_file: raw.instance_key_file.map(|p| self.relative(&p)),
            templates_dir: raw.templates_dir.map(|p| self.relative(&p)),
            knowledge,
            limits,
            reopen_window: raw.reopen_window.map_or(DEFAULT_REOPEN_WINDOW, |d| d.0),
            smtp,
            outbox,
            loop_protection,
            trusted_authserv_id: raw
                .trusted_authserv_id
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty()),
            internal_hosts: raw
                .internal_hosts
                .unwrap_or_default()
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            relay_attachment_limit: raw.relay_attachment_limit.unwrap_or(10 * 1024 * 1024),
            queues,
            agents,
            mailboxes,
            rules,
            vip: self.vip(raw.vip)?,
            schedule,
            metrics_file: raw.metrics_file.map(|p| self.relative(&p)),
            alerts,
            triage,
        })
    }

    fn triage(&self, raw: RawTriage, data_dir: &Path) -> Result<Triage, ConfigError> {
        let threshold = |v: Option<Spanned<f64>>, key: &str, default: f64| match v {
            None => Ok(default),
            Some(v) if (0.0..=1.0).contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(self.err(
                v.span(),
                key,
                format!("{} is no confidence: use a number from 0 to 1", v.get_ref()),
            )),
        };
        let schedule = match &raw.schedule {
            None => cron::Schedule::from_str("0 0 2 * * *").ok(),
            Some(v) => {
                let text = v.get_ref().trim();
                if text.is_empty() || text == "never" {
                    None
                } else if text.split_whitespace().count() < 6 {
                    return Err(self.err(
                        v.span(),
                        "schedule",
                        format!(
                            "{text:?}: use six fields with seconds first, like \"0 0 2 * * *\""
                        ),
                    ));
                } else {
                    Some(cron::Schedule::from_str(text).map_err(|e| {
                        self.err(
                            v.span(),
                            "schedule",
                            format!("invalid cron expression {text:?}: {e}"),
                        )
                    })?)
                }
            }
        };
        let max_tickets = match raw.max_tickets {
            Some(v) if *v.get_ref() == 0 => {
                return Err(self.err(v.span(), "max_tickets", "must be at least 1".to_owned()))
            }
            Some(v) => *v.get_ref(),
            None => 100_000,
        };
        Ok(Triage {
            mode: raw.mode.unwrap_or(TriageMode::Off),
            queue_threshold: threshold(raw.queue_threshold, "queue_threshold", 0.8)?,
            priority_threshold: threshold(raw.priority_threshold, "priority_threshold", 0.8)?,
            tags_threshold: threshold(raw.tags_threshold, "tags_threshold", 0.9)?,
            schedule,
            max_tickets,
            model_file: data_dir.join("triage.model"),
        })
    }

    fn alerts(&self, raw: RawAlerts, mailboxes: &[Mailbox]) -> Result<Alerts, ConfigError> {
        let mut to = Vec::new();
        if let Some(list) = raw.to {
            let span = list.span();
            for a in list.into_inner() {
                let a = a.trim().to_ascii_lowercase();
                if !a.contains('@') {
                    return Err(self.err(span, "to", format!("not a mail address: {a:?}")));
                }
                to.push(a);
            }
        }
        let from = match raw.from {
            Some(f) if !f.get_ref().contains('@') => {
                return Err(self.err(
                    f.span(),
                    "from",
                    format!("not a mail address: {:?}", f.get_ref()),
                ))
            }
            Some(f) => f.into_inner(),
            None => mailboxes[0].address.clone(),
        };
        let alert_after = match raw.alert_after {
            Some(a) if a.get_ref().0 < Duration::from_secs(1) => {
                return Err(self.err(
                    a.span(),
                    "alert_after",
                    "must be at least \"1s\" (the default is \"10m\")".to_owned(),
                ))
            }
            Some(a) => a.into_inner().0,
            None => Duration::from_secs(600),
        };
        Ok(Alerts {
            to,
            from,
            alert_after,
            token_expiry_warning: raw
                .token_expiry_warning
                .map_or(Duration::from_secs(14 * 86_400), |d| d.0),
        })
    }

    fn tls(
        &self,
        ca_file: Option<PathBuf>,
        web_roots: Option<bool>,
        server_name: Option<String>,
    ) -> Tls {
        Tls {
            ca_file: ca_file.map(|p| self.relative(&p)),
            web_roots: web_roots.unwrap_or(true),
            server_name: server_name
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty()),
        }
    }

    /// `[mailbox.oauth]` with the provider's endpoints and scopes filled in.
    fn oauth(
        &self,
        raw: RawOAuth,
        mailbox: &str,
        data_dir: &Path,
        tls: &Tls,
    ) -> Result<OAuth, ConfigError> {
        let provider = *raw.provider.get_ref();
        let url = |v: Option<Spanned<String>>, key: &str| -> Result<Option<String>, ConfigError> {
            match v {
                Some(u)
                    if !u.get_ref().starts_with("https://")
                        && !u.get_ref().starts_with("http://") =>
                {
                    Err(self.err(
                        u.span(),
                        key,
                        format!("not an http(s) URL: {:?}", u.get_ref()),
                    ))
                }
                Some(u) => Ok(Some(u.into_inner())),
                None => Ok(None),
            }
        };
        let device = url(raw.device_authorization_url, "device_authorization_url")?;
        let auth_url = url(raw.auth_url, "auth_url")?;
        let token = url(raw.token_url, "token_url")?;
        let revocation = url(raw.revocation_url, "revocation_url")?;
        let scopes = raw.scopes.map(|s| s.into_inner());
        let client_secret = self.optional_secret_named(
            raw.client_secret_file,
            raw.client_secret_env,
            ("client_secret_file", "client_secret_env"),
        )?;
        let (device, auth_url, token, revocation, scopes, mechanism) = match provider {
            Provider::Microsoft => {
                let tenant = raw.tenant.unwrap_or_else(|| "organizations".to_owned());
                let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
                (
                    device.or_else(|| Some(format!("{base}/devicecode"))),
                    auth_url,
                    token.unwrap_or_else(|| format!("{base}/token")),
                    revocation,
                    scopes.unwrap_or_else(|| {
                        [
                            "https://outlook.office.com/IMAP.AccessAsUser.All",
                            "https://outlook.office.com/SMTP.Send",
                            "offline_access",
                        ]
                        .map(str::to_owned)
                        .to_vec()
                    }),
                    raw.mechanism.unwrap_or(SaslMechanism::Xoauth2),
                )
            }
            Provider::Google => (
                device,
                auth_url
                    .or_else(|| Some("https://accounts.google.com/o/oauth2/v2/auth".to_owned())),
                token.unwrap_or_else(|| "https://oauth2.googleapis.com/token".to_owned()),
                revocation.or_else(|| Some("https://oauth2.googleapis.com/revoke".to_owned())),
                scopes.unwrap_or_else(|| vec!["https://mail.google.com/".to_owned()]),
                raw.mechanism.unwrap_or(SaslMechanism::Xoauth2),
            ),
            Provider::Custom => {
                let token = token.ok_or_else(|| {
                    self.err(
                        raw.provider.span(),
                        "token_url",
                        "provider = \"custom\" needs token_url".to_owned(),
                    )
                })?;
                if device.is_none() && auth_url.is_none() {
                    return Err(self.err(
                        raw.provider.span(),
                        "device_authorization_url",
                        "provider = \"custom\" needs device_authorization_url (or auth_url for a browser login)".to_owned(),
                    ));
                }
                let scopes = scopes.ok_or_else(|| {
                    self.err(
                        raw.provider.span(),
                        "scopes",
                        "provider = \"custom\" needs scopes = [...]".to_owned(),
                    )
                })?;
                (
                    device,
                    auth_url,
                    token,
                    revocation,
                    scopes,
                    raw.mechanism.unwrap_or(SaslMechanism::Xoauth2),
                )
            }
        };
        if raw.client_id.get_ref().trim().is_empty() {
            return Err(self.err(
                raw.client_id.span(),
                "client_id",
                "the application (client) id of the app registration".to_owned(),
            ));
        }
        Ok(OAuth {
            provider,
            client_id: raw.client_id.into_inner(),
            client_secret,
            device_authorization_url: device,
            auth_url,
            token_url: token,
            revocation_url: revocation,
            scopes,
            mechanism,
            token_file: data_dir.join("tokens").join(format!("{mailbox}.json")),
            tls: tls.clone(),
        })
    }

    fn queue(
        &self,
        q: RawQueue,
        calendars: &HashMap<String, Arc<Calendar>>,
    ) -> Result<Queue, ConfigError> {
        if let Some(c) = &q.comment_address {
            if !c.get_ref().contains('@') {
                return Err(self.err(
                    c.span(),
                    "comment_address",
                    format!("not a mail address: {:?}", c.get_ref()),
                ));
            }
        }
        let name = q.name.into_inner();
        let d = Queue::named(&name);
        let calendar = match &q.calendar {
            Some(c) => calendars.get(c.get_ref()).cloned().ok_or_else(|| {
                self.err(
                    c.span(),
                    "calendar",
                    format!("no [[calendar]] named {:?}", c.get_ref()),
                )
            })?,
            None => d.calendar.clone(),
        };
        let mut sla = HashMap::new();
        if let Some(table) = q.sla {
            let span = table.span();
            for (prio, p) in table.into_inner() {
                let priority: Priority = prio.parse().map_err(|_| {
                    self.err(
                        span.clone(),
                        "sla",
                        format!("unknown priority {prio:?} (use low, normal, high or urgent)"),
                    )
                })?;
                sla.insert(
                    priority,
                    Policy {
                        first_response: p.first_response.map(|d| d.0),
                        next_response: p.next_response.map(|d| d.0),
                        resolution: p.resolution.map(|d| d.0),
                    },
                );
            }
        }
        let sla_warn_at = match q.sla_warn_at {
            Some(w) if !(0.0..1.0).contains(w.get_ref()) || *w.get_ref() <= 0.0 => {
                return Err(self.err(
                    w.span(),
                    "sla_warn_at",
                    "must be a share between 0 and 1, like 0.8".to_owned(),
                ))
            }
            Some(w) => w.into_inner(),
            None => d.sla_warn_at,
        };
        let survey_valid_for = match &q.survey_valid_for {
            Some(v) if parse_duration(v.get_ref()).is_ok_and(|d| d.is_zero()) => {
                return Err(self.err(
                    v.span(),
                    "survey_valid_for",
                    format!(
                        "{:?} would expire every link at once: give a duration like \"30d\" (or \"never\")",
                        v.get_ref()
                    ),
                ))
            }
            _ => self.optional_duration(
                q.survey_valid_for,
                "survey_valid_for",
                d.survey_valid_for,
            )?,
        };
        Ok(Queue {
            display_name: q.display_name.unwrap_or_else(|| name.clone()),
            language: q.language.unwrap_or(Language::En),
            comment_address: q.comment_address.map(|c| c.into_inner().to_ascii_lowercase()),
            status_mail: q.status_mail.unwrap_or(true),
            calendar,
            sla,
            sla_warn_at,
            escalate_priority: q.escalate_priority.unwrap_or(false),
            escalate_to: q.escalate_to.map(|a| a.into_inner().to_lowercase()),
            managers: q.managers.unwrap_or_default().iter().map(|m| m.trim().to_ascii_lowercase()).collect(),
            auto_close_after: self.optional_duration(q.auto_close_after, "auto_close_after", d.auto_close_after)?,
            archive_after: self.optional_duration(q.archive_after, "archive_after", d.archive_after)?,
            surveys: q.surveys.unwrap_or(true),
            survey_valid_for,
            assignment: match &q.assignment {
                None => None,
                Some(a) if matches!(a.get_ref().as_str(), "none" | "manual") => None,
                Some(a) => Some(a.get_ref().parse::<crate::rules::Strategy>().map_err(|_| {
                    self.err(
                        a.span(),
                        "assignment",
                        format!(
                            "unknown assignment {:?} (use \"none\", \"round-robin\" or \"least-loaded\")",
                            a.get_ref()
                        ),
                    )
                })?),
            },
            kb_in_acknowledgement: q.kb_in_acknowledgement.unwrap_or(false),
            name,
        })
    }

    /// A duration that `"never"` turns off.
    fn optional_duration(
        &self,
        v: Option<Spanned<String>>,
        key: &str,
        default: Option<Duration>,
    ) -> Result<Option<Duration>, ConfigError> {
        match v {
            None => Ok(default),
            Some(v) if v.get_ref().trim() == "never" => Ok(None),
            Some(v) => parse_duration(v.get_ref())
                .map(Some)
                .map_err(|e| self.err(v.span(), key, format!("{e} (or \"never\")"))),
        }
    }

    fn calendars(
        &self,
        raw: Vec<RawCalendar>,
    ) -> Result<HashMap<String, Arc<Calendar>>, ConfigError> {
        let mut out = HashMap::new();
        for c in raw {
            let tz: chrono_tz::Tz = c.timezone.get_ref().parse().map_err(|_| {
                self.err(
                    c.timezone.span(),
                    "timezone",
                    format!(
                        "unknown time zone {:?} (like \"Europe/Berlin\" or \"Asia/Shanghai\")",
                        c.timezone.get_ref()
                    ),
                )
            })?;
            let days = [
                ("mon", c.mon),
                ("tue", c.tue),
                ("wed", c.wed),
                ("thu", c.thu),
                ("fri", c.fri),
                ("sat", c.sat),
                ("sun", c.sun),
            ];
            let mut week: [Vec<(chrono::NaiveTime, chrono::NaiveTime)>; 7] = Default::default();
            for (i, (key, text)) in days.into_iter().enumerate() {
                if let Some(text) = text {
                    week[i] = Calendar::parse_hours(text.get_ref())
                        .map_err(|e| self.err(text.span(), key, e.to_string()))?;
                }
            }
            let mut holidays = Vec::new();
            if let Some(h) = &c.holidays {
                for d in h.get_ref() {
                    holidays.push(
                        chrono::NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d").map_err(|_| {
                            self.err(
                                h.span(),
                                "holidays",
                                format!("not a date: {d:?} (use \"2026-12-25\")"),
                            )
                        })?,
                    );
                }
            }
            let cal = Calendar::new(tz, week, holidays)
                .map_err(|e| self.err(c.name.span(), "calendar", e.to_string()))?;
            if out
                .insert(c.name.get_ref().clone(), Arc::new(cal))
                .is_some()
            {
                return Err(self.err(
                    c.name.span(),
                    "name",
                    format!("calendar {:?} is defined twice", c.name.get_ref()),
                ));
            }
        }
        Ok(out)
    }

    fn schedule(&self, raw: RawSchedule) -> Result<Schedule, ConfigError> {
        let parse = |v: Option<Spanned<String>>,
                     key: &str,
                     default: &str|
         -> Result<Option<cron::Schedule>, ConfigError> {
            let (text, span) = match &v {
                Some(v) => (v.get_ref().trim().to_owned(), v.span()),
                None => (default.to_owned(), 0..0),
            };
            if text.is_empty() || text == "never" {
                return Ok(None);
            }
            if text.split_whitespace().count() < 6 {
                return Err(self.err(
                    span,
                    key,
                    format!("{text:?}: use six fields with seconds first, like \"0 */5 * * * *\""),
                ));
            }
            cron::Schedule::from_str(&text)
                .map(Some)
                .map_err(|e| self.err(span, key, format!("invalid cron expression {text:?}: {e}")))
        };
        let timezone = match &raw.timezone {
            Some(t) => t.get_ref().parse().map_err(|_| {
                self.err(
                    t.span(),
                    "timezone",
                    format!("unknown time zone {:?}", t.get_ref()),
                )
            })?,
            None => chrono_tz::UTC,
        };
        Ok(Schedule {
            timezone,
            sla_sweep: parse(raw.sla_sweep, "sla_sweep", "0 * * * * *")?,
            auto_close: parse(raw.auto_close, "auto_close", "0 */10 * * * *")?,
            archive: parse(raw.archive, "archive", "0 30 3 * * *")?,
            digest: parse(raw.digest, "digest", "0 0 8 * * Mon-Fri")?,
        })
    }

    fn vip(&self, raw: Vec<String>) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for v in raw {
            if let Err(e) = v.parse::<crate::rules::AddressPattern>() {
                let offset = self.text.find(&format!("\"{v}\"")).unwrap_or(0);
                return Err(invalid(
                    self.path,
                    self.text,
                    offset,
                    "vip".to_owned(),
                    e.to_string(),
                ));
            }
            out.push(v.trim().to_ascii_lowercase());
        }
        Ok(out)
    }

    fn rules(
        &self,
        raw: Vec<Spanned<crate::rules::RawRule>>,
        queues: &[Queue],
        agents: &[Agent],
    ) -> Result<Vec<crate::rules::Rule>, ConfigError> {
        let mut rules: Vec<crate::rules::Rule> = Vec::new();
        for r in raw {
            let span = r.span();
            let rule = crate::rules::Rule::from_raw(r.into_inner())
                .map_err(|e| self.err(span.clone(), e.key, e.message))?;
            if rules.iter().any(|x| x.name == rule.name) {
                return Err(self.err(
                    span,
                    "name",
                    format!("rule {:?} is defined twice", rule.name),
                ));
            }
            if let Some(q) = &rule.queue {
                if !queues.iter().any(|x| &x.name == q) {
                    return Err(self.err(
                        span,
                        "queue",
                        format!("rule {:?}: no [[queue]] named {q:?}", rule.name),
                    ));
                }
            }
            if let Some(crate::rules::Assign::Agent(a)) = &rule.assign {
                if !agents.iter().any(|x| x.name.eq_ignore_ascii_case(a)) {
                    return Err(self.err(
                        span,
                        "assign",
                        format!("rule {:?}: no [[agent]] named {a:?}", rule.name),
                    ));
                }
            }
            rules.push(rule);
        }
        Ok(rules)
    }

    fn agents(
        &self,
        raw: Vec<RawAgent>,
        queues: &[Queue],
        mailboxes: &[Mailbox],
    ) -> Result<Vec<Agent>, ConfigError> {
        let ours: Vec<String> = mailboxes
            .iter()
            .map(|m| m.address.to_ascii_lowercase())
            .chain(queues.iter().filter_map(|q| q.comment_address.clone()))
            .collect();
        let mut agents: Vec<Agent> = Vec::new();
        for a in raw {
            let name = a.name.get_ref().trim().to_lowercase();
            let name_ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
                && !matches!(name.as_str(), "me" | "none" | "team");
            if !name_ok {
                return Err(self.err(
                    a.name.span(),
                    "name",
                    "an agent name is one word (letters, digits, '-', '_', '.'), not \"me\", \"none\" or \"team\"".to_owned(),
                ));
            }
            if agents.iter().any(|x| x.name == name) {
                return Err(self.err(
                    a.name.span(),
                    "name",
                    format!("agent {name:?} is defined twice"),
                ));
            }
            let addresses: Vec<String> = a
                .addresses
                .get_ref()
                .iter()
                .map(|x| x.trim().to_ascii_lowercase())
                .collect();
            if addresses.is_empty() {
                return Err(self.err(
                    a.addresses.span(),
                    "addresses",
                    format!("agent {name:?} needs at least one address"),
                ));
            }
            for addr in &addresses {
                if !addr.contains('@') {
                    return Err(self.err(
                        a.addresses.span(),
                        "addresses",
                        format!("not a mail address: {addr:?}"),
                    ));
                }
                if ours.contains(addr) {
                    return Err(self.err(
                        a.addresses.span(),
                        "addresses",
                        format!(
                            "{addr} is a support address; an agent needs an address of their own"
                        ),
                    ));
                }
                if let Some(other) = agents.iter().find(|x| x.addresses.contains(addr)) {
                    return Err(self.err(
                        a.addresses.span(),
                        "addresses",
                        format!("{addr} already belongs to agent {:?}", other.name),
                    ));
                }
            }
            if let Some(qs) = &a.queues {
                for q in qs.get_ref() {
                    if !queues.iter().any(|x| &x.name == q) {
                        return Err(self.err(
                            qs.span(),
                            "queues",
                            format!("no [[queue]] named {q:?}"),
                        ));
                    }
                }
            }
            let queue_names: Vec<String> = a.queues.map(Spanned::into_inner).unwrap_or_default();
            agents.push(Agent {
                display_name: a.display_name.unwrap_or_else(|| a.name.get_ref().clone()),
                name,
                addresses,
                // Unset: the language of the agent's first queue.
                language: a.language.unwrap_or_else(|| {
                    queue_names
                        .first()
                        .and_then(|n| queues.iter().find(|q| &q.name == n))
                        .map_or(Language::En, |q| q.language)
                }),
                queues: queue_names,
                capacity: a.capacity.unwrap_or(20),
            });
        }
        Ok(agents)
    }

    /// `[limits]`: every count and size at least 1; `max_message_bytes` either at the top
    /// level (the older place) or in `[limits]`, not both.
    fn limits(
        &self,
        raw: RawLimits,
        top_level_max: Option<Spanned<usize>>,
    ) -> Result<crate::limits::Limits, ConfigError> {
        let d = crate::limits::Limits::default();
        if let (Some(top), Some(_)) = (&top_level_max, &raw.max_message_bytes) {
            return Err(self.err(
                top.span(),
                "max_message_bytes",
                "is also set in [limits]; keep one (the [limits] one)".to_owned(),
            ));
        }
        let count = |v: Option<Spanned<usize>>, key: &str, default: usize| match v {
            Some(v) if *v.get_ref() == 0 => {
                Err(self.err(v.span(), key, "must be at least 1".to_owned()))
            }
            Some(v) => Ok(v.into_inner()),
            None => Ok(default),
        };
        let max_message_bytes = count(
            raw.max_message_bytes.or(top_level_max),
            "max_message_bytes",
            d.max_message_bytes,
        )?;
        let message_time_limit = match raw.message_time_limit {
            Some(t)
                if t.get_ref().0 < Duration::from_millis(100)
                    || t.get_ref().0 > Duration::from_secs(600) =>
            {
                return Err(self.err(
                    t.span(),
                    "message_time_limit",
                    "must be between \"100ms\" and \"10m\"".to_owned(),
                ))
            }
            Some(t) => t.into_inner().0,
            None => d.message_time_limit,
        };
        Ok(crate::limits::Limits {
            max_message_bytes,
            fetch_batch_bytes: count(
                raw.fetch_batch_bytes,
                "fetch_batch_bytes",
                d.fetch_batch_bytes,
            )?,
            quarantine_keep_bytes: count(
                raw.quarantine_keep_bytes,
                "quarantine_keep_bytes",
                d.quarantine_keep_bytes,
            )?,
            message_time_limit,
            max_header_bytes: count(raw.max_header_bytes, "max_header_bytes", d.max_header_bytes)?,
            max_mime_depth: count(raw.max_mime_depth, "max_mime_depth", d.max_mime_depth)?,
            max_parts: count(raw.max_parts, "max_parts", d.max_parts)?,
            max_charsets: count(raw.max_charsets, "max_charsets", d.max_charsets)?,
            max_encoded_words: count(
                raw.max_encoded_words,
                "max_encoded_words",
                d.max_encoded_words,
            )?,
            max_html_depth: count(raw.max_html_depth, "max_html_depth", d.max_html_depth)?,
            max_command_lines: count(
                raw.max_command_lines,
                "max_command_lines",
                d.max_command_lines,
            )?,
            max_command_words: count(
                raw.max_command_words,
                "max_command_words",
                d.max_command_words,
            )?,
            max_people_per_message: count(
                raw.max_people_per_message,
                "max_people_per_message",
                d.max_people_per_message,
            )?,
            max_events_per_message: count(
                raw.max_events_per_message,
                "max_events_per_message",
                d.max_events_per_message,
            )?,
            max_relay_text_bytes: count(
                raw.max_relay_text_bytes,
                "max_relay_text_bytes",
                d.max_relay_text_bytes,
            )?,
        })
    }

    fn loop_protection(&self, raw: RawLoopProtection) -> Result<LoopProtection, ConfigError> {
        let d = LoopProtection::default();
        // Counts are kept per minute for at most a week.
        let window = |w: Option<Spanned<DurationText>>, key: &str, default: Duration| match w {
            Some(w)
                if w.get_ref().0 < Duration::from_secs(60)
                    || w.get_ref().0 > Duration::from_secs(7 * 86_400) =>
            {
                Err(self.err(
                    w.span(),
                    key,
                    "must be between \"1m\" and \"7d\"".to_owned(),
                ))
            }
            Some(w) => Ok(w.into_inner().0),
            None => Ok(default),
        };
        Ok(LoopProtection {
            per_recipient: raw.per_recipient.unwrap_or(d.per_recipient),
            per_recipient_window: window(
                raw.per_recipient_window,
                "per_recipient_window",
                d.per_recipient_window,
            )?,
            per_recipient_key: raw.per_recipient_key.unwrap_or(d.per_recipient_key),
            per_domain: raw.per_domain.unwrap_or(d.per_domain),
            ack_max_age: raw.ack_max_age.map_or(d.ack_max_age, |a| a.0),
            global: raw.global.unwrap_or(d.global),
            global_window: window(raw.global_window, "global_window", d.global_window)?,
            relays_per_ticket: raw.relays_per_ticket.unwrap_or(d.relays_per_ticket),
            relays_per_queue: raw.relays_per_queue.unwrap_or(d.relays_per_queue),
            relay_window: window(raw.relay_window, "relay_window", d.relay_window)?,
        })
    }

    fn smtp(
        &self,
        raw: RawSmtp,
        hostname: &str,
        mailboxes: &[Mailbox],
    ) -> Result<Smtp, ConfigError> {
        let security = raw.security.unwrap_or(Security::None);
        let password = self.optional_secret(raw.password_file, raw.password_env)?;
        let kind = match &raw.auth {
            Some(a) => *a.get_ref(),
            // Before `auth` existed, a username meant a password login.
            None if raw.username.is_some() || password.is_some() => RawAuth::Password,
            None => RawAuth::None,
        };
        let auth = match kind {
            RawAuth::None => SmtpAuth::None,
            RawAuth::Password => match (raw.username.clone(), password) {
                (Some(username), Some(password)) => SmtpAuth::Password { username, password },
                _ => {
                    let span = raw.auth.as_ref().map_or(0..0, |a| a.span());
                    return Err(self.err(
                        span,
                        "auth",
                        "a password login needs username and password_file (or password_env)"
                            .to_owned(),
                    ));
                }
            },
            RawAuth::Oauth2 => {
                let at = raw.auth.as_ref().map_or(0..0, |a| a.span());
                let Some(name) = raw.oauth_from_mailbox else {
                    return Err(self.err(
                        at,
                        "oauth_from_mailbox",
                        "auth = \"oauth2\" needs oauth_from_mailbox = \"MAILBOX\" (whose token to use)"
                            .to_owned(),
                    ));
                };
                let Some(m) = mailboxes.iter().find(|m| m.name.as_str() == name.get_ref()) else {
                    return Err(self.err(
                        name.span(),
                        "oauth_from_mailbox",
                        format!("no [[mailbox]] named {:?}", name.get_ref()),
                    ));
                };
                let Login::OAuth2(oauth) = &m.imap.auth else {
                    return Err(self.err(
                        name.span(),
                        "oauth_from_mailbox",
                        format!(
                            "mailbox {:?} does not log in with auth = \"oauth2\"",
                            name.get_ref()
                        ),
                    ));
                };
                SmtpAuth::OAuth2 {
                    mailbox: m.name.clone(),
                    username: raw
                        .username
                        .clone()
                        .unwrap_or_else(|| m.imap.username.clone()),
                    oauth: oauth.clone(),
                }
            }
        };
        let connections = match raw.connections {
            Some(c) if *c.get_ref() == 0 || *c.get_ref() > 64 => {
                return Err(self.err(
                    c.span(),
                    "connections",
                    "must be between 1 and 64".to_owned(),
                ))
            }
            Some(c) => c.into_inner(),
            None => 4,
        };
        Ok(Smtp {
            port: raw.port.unwrap_or(match security {
                Security::Tls => 465,
                Security::Starttls => 587,
                Security::None => 25,
            }),
            host: raw.host,
            security,
            tls: self.tls(raw.ca_file, raw.web_roots, raw.tls_server_name),
            auth,
            connections,
            timeout: raw.timeout.map_or(Duration::from_secs(30), |d| d.0),
            hello_name: raw.hello_name.unwrap_or_else(|| hostname.to_owned()),
        })
    }

    fn mailbox(
        &self,
        m: RawMailbox,
        queues: &mut Vec<Queue>,
        names: &mut HashSet<String>,
        data_dir: &Path,
    ) -> Result<Mailbox, ConfigError> {
        if !names.insert(m.name.get_ref().clone()) {
            return Err(self.err(
                m.name.span(),
                "name",
                format!("mailbox {:?} is defined twice", m.name.get_ref()),
            ));
        }
        if !m.address.get_ref().contains('@') {
            return Err(self.err(
                m.address.span(),
                "address",
                format!("not a mail address: {:?}", m.address.get_ref()),
            ));
        }
        let tag_ok = !m.tag.get_ref().is_empty()
            && m.tag
                .get_ref()
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if !tag_ok {
            return Err(self.err(
                m.tag.span(),
                "tag",
                "a subject tag is one word of letters, digits, '-' or '_' (\"ACME\")".to_owned(),
            ));
        }
        let name = m.name.get_ref().clone();
        let queue = match m.queue {
            Some(q) if queues.iter().any(|it| it.name == *q.get_ref()) => q.into_inner(),
            Some(q) => {
                return Err(self.err(
                    q.span(),
                    "queue",
                    format!("no [[queue]] named {:?}", q.get_ref()),
                ))
            }
            None => {
                // A mailbox without a queue gets one of its own name, so that a one-mailbox
                // configuration needs no [[queue]] section.
                if !queues.iter().any(|q| q.name == name) {
                    queues.push(Queue::named(&name));
                }
                name.clone()
            }
        };
        let security = m.security.unwrap_or(Security::None);
        let tls = self.tls(m.ca_file, m.web_roots, m.tls_server_name);
        let auth = match (m.auth.as_ref().map(|a| *a.get_ref()), m.oauth) {
            (Some(RawAuth::Oauth2), Some(oauth)) => {
                if let Some(f) = m.password_file.as_ref() {
                    return Err(self.err(
                        f.span(),
                        "password_file",
                        "auth = \"oauth2\" uses the token from `postdesk login`, not a password".to_owned(),
                    ));
                }
                Login::OAuth2(Arc::new(self.oauth(oauth, &name, data_dir, &tls)?))
            }
            (Some(RawAuth::Oauth2), None) => {
                return Err(self.err(
                    m.auth.as_ref().map_or(0..0, |a| a.span()),
                    "auth",
                    format!("mailbox {name:?}: auth = \"oauth2\" needs a [mailbox.oauth] table (provider, client_id)"),
                ))
            }
            (Some(RawAuth::None), _) => {
                return Err(self.err(
                    m.auth.as_ref().map_or(0..0, |a| a.span()),
                    "auth",
                    "a mailbox logs in with \"password\" or \"oauth2\"".to_owned(),
                ))
            }
            (_, Some(_)) => {
                return Err(self.err(
                    m.name.span(),
                    "oauth",
                    format!("mailbox {name:?} has a [mailbox.oauth] table: set auth = \"oauth2\" to use it"),
                ))
            }
            (None | Some(RawAuth::Password), None) => Login::Password(
                self.optional_secret(m.password_file, m.password_env)?
                    .ok_or_else(|| {
                        self.err(
                            m.name.span(),
                            "password_file",
                            format!(
                                "mailbox {name:?} needs password_file or password_env (passwords are never written in this file)"
                            ),
                        )
                    })?,
            ),
        };
        let after = match m.after {
            None => AfterIngest::MarkSeen,
            Some(a) => match a.get_ref().as_str() {
                "leave" => AfterIngest::Leave,
                "seen" => AfterIngest::MarkSeen,
                "move" => match m.move_to {
                    Some(folder) => AfterIngest::MoveTo(folder),
                    None => {
                        return Err(self.err(
                            a.span(),
                            "after",
                            "after = \"move\" needs move_to = \"FOLDER\"".to_owned(),
                        ))
                    }
                },
                other => {
                    return Err(self.err(
                        a.span(),
                        "after",
                        format!("unknown value {other:?} (use \"leave\", \"seen\" or \"move\")"),
                    ))
                }
            },
        };
        let batch_size = match m.batch_size {
            Some(b) if *b.get_ref() == 0 || *b.get_ref() > 5000 => {
                return Err(self.err(
                    b.span(),
                    "batch_size",
                    "must be between 1 and 5000".to_owned(),
                ))
            }
            Some(b) => b.into_inner(),
            None => 500,
        };
        let address = m.address.into_inner();
        let reply_address = match m.reply_address {
            Some(r) => {
                let text = r.get_ref().trim().to_ascii_lowercase();
                let ok = text.matches("{token}").count() == 1
                    && text.rsplit_once('@').is_some_and(|(l, d)| {
                        l.contains("{token}") && !d.is_empty() && !d.contains("{token}")
                    });
                if !ok {
                    return Err(self.err(
                        r.span(),
                        "reply_address",
                        "an address with {token} once in its local part (\"support+{token}@example.com\")".to_owned(),
                    ));
                }
                text
            }
            None => crate::agent::token::default_reply_address(&address),
        };
        Ok(Mailbox {
            reply_address,
            imap: Imap {
                port: m.port.unwrap_or(match security {
                    Security::Tls => 993,
                    _ => 143,
                }),
                host: m.host,
                security,
                tls,
                username: m.username.unwrap_or_else(|| address.clone()),
                auth,
                folder: m.folder.unwrap_or_else(|| "INBOX".to_owned()),
                idle: m.idle.unwrap_or(true),
                poll_interval: m.poll_interval.map_or(Duration::from_secs(60), |d| d.0),
                after,
                batch_size,
                timeout: m.timeout.map_or(Duration::from_secs(60), |d| d.0),
                quiet_warning: m.quiet_warning.map(|d| d.0),
            },
            name: MailboxName::new(name),
            address,
            queue,
            tag: m.tag.into_inner(),
        })
    }

    fn optional_secret(
        &self,
        file: Option<Spanned<PathBuf>>,
        env: Option<Spanned<String>>,
    ) -> Result<Option<Secret>, ConfigError> {
        self.optional_secret_named(file, env, ("password_file", "password_env"))
    }

    fn optional_secret_named(
        &self,
        file: Option<Spanned<PathBuf>>,
        env: Option<Spanned<String>>,
        (file_key, env_key): (&str, &str),
    ) -> Result<Option<Secret>, ConfigError> {
        match (file, env) {
            (Some(f), Some(_)) => Err(self.err(
                f.span(),
                file_key,
                format!("give {file_key} or {env_key}, not both"),
            )),
            (Some(f), None) => {
                let path = self.relative(f.get_ref());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.err(
                        f.span(),
                        file_key,
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let secret = text.trim_end_matches(['\r', '\n']).to_owned();
                if secret.is_empty() {
                    return Err(self.err(
                        f.span(),
                        file_key,
                        format!("{} is empty", path.display()),
                    ));
                }
                Ok(Some(Secret(secret)))
            }
            (None, Some(e)) => match std::env::var(e.get_ref()) {
                Ok(v) if !v.is_empty() => Ok(Some(Secret(v))),
                _ => Err(self.err(
                    e.span(),
                    env_key,
                    format!("environment variable {} is not set", e.get_ref()),
                )),
            },
            (None, None) => Ok(None),
        }
    }

    /// Relative paths in the file are relative to the file's directory, so that a config
    /// and its secrets can move together.
    fn relative(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.path.parent().unwrap_or_else(|| Path::new(".")).join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
data_dir = "/tmp/pd"
hostname = "helpdesk.example.test"

[smtp]
host = "127.0.0.1"
port = 10025

[[queue]]
name = "support"
display_name = "ACME Support"

[[mailbox]]
name = "support"
address = "support@example.test"
queue = "support"
tag = "ACME"
host = "127.0.0.1"
port = 10143
password_env = "PD_TEST_PW"
poll_interval = "90s"
"#;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        std::env::set_var("PD_TEST_PW", "secret-pw");
        from_str(Path::new("/etc/postdesk/test.toml"), text)
    }

    /// GOOD with its one mailbox logging in with OAuth (`oauth` is the table's body).
    fn with_oauth(oauth: &str) -> String {
        GOOD.replace("password_env = \"PD_TEST_PW\"", "auth = \"oauth2\"")
            + "[mailbox.oauth]\n"
            + oauth
    }

    #[test]
    fn microsoft_fills_in_its_endpoints_and_scopes() {
        let cfg = load_text(&with_oauth(
            "provider = \"microsoft\"\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"abc\"\n",
        ))
        .unwrap();
        let Login::OAuth2(o) = &cfg.mailboxes[0].imap.auth else {
            panic!("an OAuth login");
        };
        assert_eq!(
            o.device_authorization_url.as_deref(),
            Some(
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode"
            )
        );
        assert!(o
            .token_url
            .ends_with("/contoso.onmicrosoft.com/oauth2/v2.0/token"));
        assert!(o
            .scopes
            .iter()
            .any(|s| s == "https://outlook.office.com/IMAP.AccessAsUser.All"));
        assert!(o.scopes.iter().any(|s| s == "offline_access"));
        assert_eq!(o.mechanism, SaslMechanism::Xoauth2);
        assert_eq!(o.token_file, Path::new("/tmp/pd/tokens/support.json"));
    }

    #[test]
    fn google_has_no_device_login_but_a_browser_one() {
        let cfg = load_text(&with_oauth("provider = \"google\"\nclient_id = \"abc\"\n")).unwrap();
        let Login::OAuth2(o) = &cfg.mailboxes[0].imap.auth else {
            panic!("an OAuth login");
        };
        assert_eq!(o.device_authorization_url, None);
        assert!(o
            .auth_url
            .as_deref()
            .unwrap()
            .starts_with("https://accounts.google.com/"));
        assert_eq!(o.scopes, vec!["https://mail.google.com/".to_owned()]);
    }

    #[test]
    fn oauth_mistakes_name_the_key() {
        let err = load_text(&with_oauth("provider = \"custom\"\nclient_id = \"abc\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(": token_url: provider = \"custom\" needs token_url"),
            "{err}"
        );
        let err = load_text(&GOOD.replace("password_env = \"PD_TEST_PW\"", "auth = \"oauth2\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a [mailbox.oauth] table"), "{err}");
        let err = load_text(&GOOD.replace(
            "port = 10025",
            "port = 10025\nauth = \"oauth2\"\noauth_from_mailbox = \"support\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("oauth_from_mailbox")
                && err.contains("does not log in with auth = \"oauth2\""),
            "{err}"
        );
        let err = load_text(&GOOD.replace(
            "port = 10025",
            "port = 10025\nauth = \"oauth2\"\noauth_from_mailbox = \"nope\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("no [[mailbox]] named \"nope\""), "{err}");
    }

    #[test]
    fn alerts_default_to_ten_minutes_and_the_first_mailbox() {
        let cfg = load_text(GOOD).unwrap();
        assert_eq!(cfg.alerts.alert_after, Duration::from_secs(600));
        assert_eq!(cfg.alerts.from, "support@example.test");
        assert!(cfg.alerts.to.is_empty());
        let cfg = load_text(
            &(GOOD.to_owned() + "\n[alerts]\nto = [\"Ops@Example.COM\"]\nalert_after = \"30s\"\n"),
        )
        .unwrap();
        assert_eq!(cfg.alerts.to, vec!["ops@example.com".to_owned()]);
        assert_eq!(cfg.alerts.alert_after, Duration::from_secs(30));
        let err = load_text(&(GOOD.to_owned() + "\n[alerts]\nto = [\"ops\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(": to: not a mail address"), "{err}");
    }

    #[test]
    fn good_config_loads_with_defaults() {
        let cfg = load_text(GOOD).unwrap();
        let mb = &cfg.mailboxes[0];
        assert_eq!(mb.imap.poll_interval, Duration::from_secs(90));
        assert_eq!(mb.imap.after, AfterIngest::MarkSeen);
        assert_eq!(mb.imap.username, "support@example.test");
        let Login::Password(password) = &mb.imap.auth else {
            panic!("a password login");
        };
        assert_eq!(password.expose(), "secret-pw");
        assert_eq!(format!("{password:?}"), "Secret(..)");
        assert_eq!(cfg.smtp.connections, 4);
        assert_eq!(cfg.queue("support").unwrap().display_name, "ACME Support");
    }

    #[test]
    fn limits_default_and_are_checked() {
        let cfg = load_text(GOOD).unwrap();
        assert_eq!(cfg.limits, crate::limits::Limits::default());
        let older = format!("max_message_bytes = 4096\n{GOOD}");
        assert_eq!(load_text(&older).unwrap().limits.max_message_bytes, 4096);
        let set = format!("{GOOD}\n[limits]\nmax_parts = 7\nmessage_time_limit = \"2s\"\n");
        let limits = load_text(&set).unwrap().limits;
        assert_eq!(
            (limits.max_parts, limits.message_time_limit),
            (7, Duration::from_secs(2))
        );
        let zero = format!("{GOOD}\n[limits]\nmax_command_lines = 0\n");
        let err = load_text(&zero).unwrap_err().to_string();
        assert!(
            err.contains(": max_command_lines: must be at least 1"),
            "{err}"
        );
        let both = format!("max_message_bytes = 4096\n{GOOD}\n[limits]\nmax_message_bytes = 1\n");
        let err = load_text(&both).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "/etc/postdesk/test.toml:1: max_message_bytes: is also set in [limits]"
            ),
            "{err}"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("tag = \"ACME\"", "tag = \"ACME\"\ncolour = \"blue\"");
        let err = load_text(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("/etc/postdesk/test.toml:18: colour:"),
            "{err}"
        );
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn bad_duration_names_file_line_and_key() {
        let text = GOOD.replace("\"90s\"", "\"90 parsecs\"");
        let err = load_text(&text).unwrap_err().to_string();
        assert!(
            err.starts_with("/etc/postdesk/test.toml:21: poll_interval:"),
            "{err}"
        );
        assert!(err.contains("invalid duration"), "{err}");
    }

    #[test]
    fn survey_links_are_valid_for_30_days_unless_the_queue_says() {
        let valid_for = |line: &str| {
            let text = GOOD.replace(
                "display_name = \"ACME Support\"",
                &format!("display_name = \"ACME Support\"\n{line}"),
            );
            load_text(&text).map(|c| c.queue("support").unwrap().survey_valid_for)
        };
        assert_eq!(
            valid_for("").unwrap(),
            Some(Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            valid_for("survey_valid_for = \"7d\"").unwrap(),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(valid_for("survey_valid_for = \"never\"").unwrap(), None);
        for bad in ["\"a month\"", "\"0d\""] {
            let err = valid_for(&format!("survey_valid_for = {bad}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("/etc/postdesk/test.toml:12: survey_valid_for:"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_queue_reference_is_named() {
        let text = GOOD.replace("queue = \"support\"", "queue = \"sales\"");
        let err = load_text(&text).unwrap_err().to_string();
        assert!(
            err.contains(":16: queue: no [[queue]] named \"sales\""),
            "{err}"
        );
    }

    #[test]
    fn agents_are_checked() {
        let with_agent = |extra: &str| {
            load_text(&format!(
                "{GOOD}\n[[agent]]\nname = \"Alice\"\naddresses = [\"Alice@Example.test\"]\nqueues = [\"support\"]\n{extra}"
            ))
        };
        let cfg = with_agent("").unwrap();
        assert_eq!(cfg.agents[0].name, "alice");
        assert_eq!(
            cfg.agent_by_address("alice@example.TEST").unwrap().name,
            "alice"
        );
        assert_eq!(cfg.team("support").len(), 1);
        assert_eq!(cfg.comment_addresses(), ["support+comment@example.test"]);
        let err = load_text(&format!(
            "{GOOD}\n[[agent]]\nname = \"bob\"\naddresses = [\"support@example.test\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(":25: addresses: support@example.test is a support address"),
            "{err}"
        );
        let err = with_agent("\n[[agent]]\nname = \"alice\"\naddresses = [\"a2@example.test\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("agent \"alice\" is defined twice"), "{err}");
    }

    #[test]
    fn durations() {
        for (text, secs) in [
            ("90s", 90),
            ("15m", 900),
            ("8h", 28_800),
            ("7d", 604_800),
            ("1h30m", 5400),
        ] {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_secs(secs)),
                "{text}"
            );
        }
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "s", "9x", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_never_in_errors() {
        let text = GOOD.replace("tag = \"ACME\"", "tag = \"AC ME\"");
        let err = load_text(&text).unwrap_err().to_string();
        assert!(!err.contains("secret-pw"));
        assert!(err.contains("tag:"), "{err}");
    }

    #[test]
    fn triage_section_defaults_and_bad_values_named() {
        let c = load_text(GOOD).unwrap();
        assert_eq!(c.triage.mode, TriageMode::Off);
        assert_eq!(c.triage.queue_threshold, 0.8);
        assert!(c.triage.schedule.is_some(), "nightly by default");
        let with = |t: &str| load_text(&format!("{GOOD}\n[triage]\n{t}\n"));
        let c = with("mode = \"apply\"\nqueue_threshold = 0.6\nschedule = \"never\"").unwrap();
        assert_eq!(c.triage.mode, TriageMode::Apply);
        assert_eq!(c.triage.queue_threshold, 0.6);
        assert!(c.triage.schedule.is_none());
        for (bad, key) in [
            ("queue_threshold = 1.5", "queue_threshold"),
            ("mode = \"auto\"", "mode"),
            ("schedule = \"0 2 * * *\"", "schedule"),
        ] {
            let err = with(bad).unwrap_err().to_string();
            assert!(err.contains(&format!(": {key}:")), "{bad}: {err}");
            assert!(err.starts_with("/etc/postdesk/test.toml:"), "{err}");
        }
    }
}
