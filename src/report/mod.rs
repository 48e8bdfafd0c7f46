//! `postdesk report` (issue 6): volume, response and resolution times, SLA compliance,
//! satisfaction, agents, the longest-running open tickets and the problems that come back.
//!
//! In: the configuration, a period ([`Options`]) and `now`. Out: a [`Report`], printed as
//! JSON (its `Serialize` form, documented field by field below), CSV ([`to_csv`]), one
//! self-contained HTML page with inline SVG charts ([`to_html`]) or text ([`to_text`]).
//! - Two steps, like the store's other reads: [`crate::store::report_rows`] reads plain rows
//!   in three statements; [`build`] is pure (no clock, no store, no I/O) and computes every
//!   figure from those rows, so the same figures serve the CLI and the managers' digest.
//! - Periods are `[from, to)`. Buckets (`--by day|week|month`, ISO weeks from Monday) are
//!   local to the report's time zone, `[schedule] timezone` (default UTC); `--from`/`--to`
//!   dates are local days of that zone, `--to` inclusive.
//! - "Now" figures (open load, longest-running open tickets, SLA deadlines still running)
//!   are as of `now`, whatever the period.
//! - Business time is counted on the ticket's queue calendar ([`crate::workflow::sla`]); a
//!   queue without one (or no longer configured) runs 24×7, so its business time equals
//!   its wall time.
//! - Percentiles are nearest-rank: the p-th percentile is the smallest value with at least
//!   p % of the values at or below it (for two values the median is the smaller one), so
//!   every figure is a time some ticket really took.
//! - Top problems: see [`problems`] (subject plus the start of the first message, English
//!   and Chinese words, TF-IDF weights, tickets grouped by one key word each), among the
//!   latest [`PROBLEM_TICKETS`] tickets created in each period.
//! - Agents' answers: an `answer.queued` event is matched with the agent's own mail stored
//!   on the ticket at the same instant (see [`crate::store::ReportReader`]).

mod csv;
mod figures;
mod html;
pub mod problems;
mod text;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

use crate::config::Config;
use crate::model::TicketId;
use crate::store::{ReportReader, ReportRows, RowsQuery, StoreError};

pub use csv::to_csv;
pub use figures::build;
pub use html::to_html;
pub use text::to_text;

/// How much of a ticket's first message goes into the top-problem grouping (characters).
pub const FIRST_TEXT_CHARS: usize = 200;
/// How many tickets of a period the top problems group at most: the latest created. A
/// year of a busy desk holds hundreds of thousands; the latest 20,000 show what comes back
/// now, in bounded time and memory.
pub const PROBLEM_TICKETS: usize = 50_000;

/// The length of a bucket of the volume figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }
}

/// A text that is not `day`, `week` or `month`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown period {0:?} (use day, week or month)")]
pub struct UnknownPeriod(pub String);

impl FromStr for Period {
    type Err = UnknownPeriod;
    fn from_str(s: &str) -> Result<Period, UnknownPeriod> {
        Period::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPeriod(s.to_owned()))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("invalid date {0:?}: use 2026-11-01 or 2026-11-01T09:00:00Z")]
    Date(String),
    #[error("empty period: --from {from} is not before --to {to}")]
    EmptyPeriod { from: String, to: String },
    #[error("unknown queue {name:?} (queues: {known})")]
    UnknownQueue { name: String, known: String },
    #[error(transparent)]
    Period(#[from] UnknownPeriod),
    #[error("cannot read the report's data")]
    Store(#[from] StoreError),
}

/// The flags as given (`--from`, `--to`, `--queue`, `--by`); [`Options::from_flags`] checks
/// them.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `2026-11-01` (local midnight) or an RFC 3339 instant. Default: 30 days before `to`.
    pub from: Option<String>,
    /// `2026-11-30` (the whole day: up to the next local midnight) or an RFC 3339 instant.
    /// Default: the end of today.
    pub to: Option<String>,
    pub queue: Option<String>,
    /// `day`, `week` or `month`. Default: `day` up to 62 days, `week` up to 366, else `month`.
    pub by: Option<String>,
}

/// What to report on: `[from, to)`, one queue or all, buckets of `by`, local to `tz`.
#[derive(Debug, Clone)]
pub struct Options {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub queue: Option<String>,
    pub by: Period,
    /// The zone of the buckets and of the dates in the flags.
    pub tz: Tz,
}

impl Options {
    /// Checks the flags against the configuration: dates in `[schedule] timezone`, a
    /// configured queue, a known period.
    pub fn from_flags(
        cfg: &Config,
        flags: &Flags,
        now: DateTime<Utc>,
    ) -> Result<Options, ReportError> {
        let tz = cfg.schedule.timezone;
        let to = match flags.to.as_deref() {
            Some(text) => parse_bound(tz, text, Bound::End)?,
            None => {
                let today = now.with_timezone(&tz).date_naive();
                local_midnight(tz, today.checked_add_days(Days::new(1)).unwrap_or(today))
            }
        };
        let from = match flags.from.as_deref() {
            Some(text) => parse_bound(tz, text, Bound::Start)?,
            None => {
                let last = to.with_timezone(&tz).date_naive();
                local_midnight(
                    tz,
                    last.checked_sub_days(Days::new(30))
                        .unwrap_or(NaiveDate::MIN),
                )
            }
        };
        if from >= to {
            return Err(ReportError::EmptyPeriod {
                from: from.to_rfc3339(),
                to: to.to_rfc3339(),
            });
        }
        if let Some(name) = &flags.queue {
            if cfg.queue(name).is_none() {
                let known: Vec<&str> = cfg.queues.iter().map(|q| q.name.as_str()).collect();
                return Err(ReportError::UnknownQueue {
                    name: name.clone(),
                    known: known.join(", "),
                });
            }
        }
        let by = match flags.by.as_deref() {
            Some(text) => text.parse()?,
            None => {
                let days = (to - from).num_days();
                if days <= 62 {
                    Period::Day
                } else if days <= 366 {
                    Period::Week
                } else {
                    Period::Month
                }
            }
        };
        Ok(Options {
            from,
            to,
            queue: flags.queue.clone(),
            by,
            tz,
        })
    }

    /// The previous period of the same length, which ends where this one starts.
    pub fn previous_from(&self) -> DateTime<Utc> {
        self.from
            .checked_sub_signed(self.to - self.from)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

#[derive(Clone, Copy)]
enum Bound {
    Start,
    End,
}

fn parse_bound(tz: Tz, text: &str, bound: Bound) -> Result<DateTime<Utc>, ReportError> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let date = match bound {
            Bound::Start => date,
            Bound::End => date
                .succ_opt()
                .ok_or_else(|| ReportError::Date(text.to_owned()))?,
        };
        return Ok(local_midnight(tz, date));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ReportError::Date(text.to_owned()))
}

/// The first instant of `date` in `tz` (after the gap, where a clock change skips midnight).
pub(crate) fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    for hour in 0..4 {
        let t = date.and_time(NaiveTime::from_hms_opt(hour, 0, 0).unwrap_or(NaiveTime::MIN));
        if let Some(local) = tz.from_local_datetime(&t).earliest() {
            return local.with_timezone(&Utc);
        }
    }
    date.and_time(NaiveTime::MIN).and_utc()
}

/// The start of the bucket holding local date `date`.
pub(crate) fn bucket_start(by: Period, date: NaiveDate) -> NaiveDate {
    match by {
        Period::Day => date,
        Period::Week => date
            .checked_sub_days(Days::new(u64::from(date.weekday().num_days_from_monday())))
            .unwrap_or(date),
        Period::Month => date.with_day(1).unwrap_or(date),
    }
}

/// The start of the bucket after the one starting at `start` (`None` past chrono's last
/// date).
pub(crate) fn next_bucket(by: Period, start: NaiveDate) -> Option<NaiveDate> {
    match by {
        Period::Day => start.checked_add_days(Days::new(1)),
        Period::Week => start.checked_add_days(Days::new(7)),
        Period::Month => start.checked_add_months(Months::new(1)),
    }
}

/// Reads the rows for `opts` from the database at `db` and builds the report: the same as
/// [`build`] on [`crate::store::report_rows`], with the top problems (CPU) computed while the
/// events and deadlines are read (I/O and SQLite).
pub fn generate(
    cfg: &Config,
    db: &Path,
    opts: &Options,
    now: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let q = RowsQuery {
        from: opts.from,
        to: opts.to,
        previous_from: opts.previous_from(),
        queue: opts.queue.as_deref(),
        text_chars: FIRST_TEXT_CHARS,
        problem_tickets: PROBLEM_TICKETS,
    };
    let reader = ReportReader::open(db)?;
    let tickets = std::thread::scope(|s| {
        // The Chinese dictionary takes a while to load: meanwhile, read the tickets.
        s.spawn(problems::preload);
        reader.tickets(&q)
    })?;
    let (top, events, deadlines) = std::thread::scope(|s| {
        let grouping = s.spawn(|| problems::top(cfg, &tickets, opts));
        let events = reader.events(&q);
        let deadlines = reader.deadlines(&q);
        let volume = reader.volume(&q);
        let open = reader.open_now(&q, figures::LONGEST);
        let knowledge = reader.knowledge(&q);
        let triage = reader.triage(&q);
        let top = grouping.join().unwrap_or_else(|_| {
            tracing::warn!("grouping the top problems panicked; the report lists none");
            Vec::new()
        });
        (top, events, (deadlines, volume, open, knowledge, triage))
    });
    let (deadlines, volume, open, knowledge, triage) = deadlines;
    let rows = ReportRows {
        tickets,
        events: events?,
        deadlines: deadlines?,
        volume: volume?,
        open: open?,
        knowledge: knowledge?,
        triage: triage?,
    };
    Ok(figures::build_with(cfg, &rows, opts, now, top))
}

/// Everything `postdesk report --json` prints. Times are RFC 3339 in UTC; durations are
/// whole seconds (`*_secs`); ratios are 0..=1 rounded to 4 decimals; averages to 2.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `now`, when the figures were computed.
    pub generated_at: String,
    /// The period, `[from, to)`.
    pub from: String,
    pub to: String,
    /// Start of the previous period of equal length (it ends at `from`): top problems'
    /// trend.
    pub previous_from: String,
    /// The zone of the buckets, e.g. `UTC`, `Europe/Berlin`.
    pub timezone: String,
    /// Bucket length: `day`, `week` or `month`.
    pub by: Period,
    /// The one queue reported on; `null` for all.
    pub queue: Option<String>,
    pub volume: Volume,
    /// From ticket creation to the first agent answer, for first answers sent in the
    /// period.
    pub first_response: Times,
    /// From creation to resolution (the ticket's `resolved_at`, else `closed_at`), for
    /// tickets whose resolution falls in the period and that are not resolved-and-reopened
    /// since; merged tickets do not count.
    pub resolution: Times,
    /// SLA compliance per queue and deadline (`first_response`, `next_response`,
    /// `resolution`), for deadlines started in the period, as they stand now.
    pub sla: Vec<SlaRow>,
    pub satisfaction: Satisfaction,
    /// Configured agents (of the queue, with `--queue`) first, in config order, then any
    /// other name that answered or holds tickets.
    pub agents: Vec<AgentRow>,
    /// Up to 10 tickets in `new`, `open` or `pending` now, oldest first.
    pub longest_open: Vec<OpenTicket>,
    /// Up to 10 groups of similar tickets created in the period, most tickets first
    /// (groups of at least 2).
    pub top_problems: Vec<Problem>,
    /// Self-service by mail and the knowledge base (issue 16).
    pub self_service: SelfService,
    pub triage: Triage,
}

/// Self-service figures of the period (issue 16).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SelfService {
    /// Mails asking for the sender's open tickets (no ticket opened); about no ticket,
    /// so counted for every queue.
    pub status_requests: u64,
    /// New tickets whose acknowledgement listed knowledge-base articles.
    pub articles_suggested: u64,
    /// Of those, tickets the customer resolved by answering `solved` (deflected).
    pub deflected: u64,
    /// `deflected / articles_suggested`; `null` when no article was listed.
    pub deflection_rate: Option<f64>,
}

/// Triage (issue 16) of the tickets created in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Triage {
    /// Tickets created.
    pub tickets: u64,
    /// Tickets with guesses kept (`suggest` or `apply`).
    pub suggested: u64,
    /// Tickets on which at least one guess was applied.
    pub triaged: u64,
    /// `triaged / tickets`.
    pub share_triaged: Option<f64>,
    /// Applied guesses (queue, priority, each tag).
    pub applied: u64,
    /// Applied guesses an agent changed afterwards (queue or priority set again, tag
    /// removed).
    pub corrected: u64,
    /// `1 - corrected / applied`: accuracy in production as agents judged it.
    pub accuracy: Option<f64>,
}

/// Ticket counts of a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Tickets created.
    pub new: u64,
    /// Status changes to `open` from `pending`, `resolved` or `closed` (a customer's reply
    /// or an agent reopening it).
    pub reopened: u64,
    /// Status changes to `resolved`.
    pub resolved: u64,
    /// Status changes to `closed` (by an agent or auto-close).
    pub closed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    /// The whole period, every queue.
    pub total: Counts,
    /// The whole period per queue, by name.
    pub queues: Vec<QueueCounts>,
    /// One entry per bucket, in order; every bucket of the period is listed, empty or not.
    pub periods: Vec<PeriodCounts>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueCounts {
    pub queue: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeriodCounts {
    /// The bucket's first local day, `2026-11-02` (the first bucket may start before
    /// `from`; only `[from, to)` is counted).
    pub start: String,
    /// `2026-11-02`, `2026-W45` or `2026-11`.
    pub label: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Per queue, by name; queues with nothing in the bucket are left out.
    pub queues: Vec<QueueCounts>,
}

/// A distribution of durations.
#[derive(Debug, Clone, Serialize)]
pub struct Times {
    /// How many tickets it covers.
    pub count: u64,
    /// On each ticket's queue calendar.
    pub business: Percentiles,
    /// Plain elapsed time.
    pub wall: Percentiles,
    /// Business time in bins: `< 1h`, `1-4h`, `4-8h`, `8-24h`, `1-3d`, `>= 3d`.
    pub histogram: Vec<Bin>,
    /// The same per queue, by name.
    pub queues: Vec<QueueTimes>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// `null` without data.
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    pub label: String,
    /// Values below this (and at or above the previous bin's) fall in the bin; `null`: no
    /// upper end.
    pub upto_secs: Option<i64>,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueTimes {
    pub queue: String,
    pub count: u64,
    pub business: Percentiles,
    pub wall: Percentiles,
}

/// Where the deadlines of one kind in one queue stand now.
#[derive(Debug, Clone, Serialize)]
pub struct SlaRow {
    pub queue: String,
    /// `first_response`, `next_response` or `resolution` (a deadline started again, such
    /// as each next response, counts in its latest instance).
    pub deadline: String,
    /// Met on time: met before its due time and never marked breached.
    pub met: u64,
    /// Marked breached, met after its due time, or past due and not met.
    pub breached: u64,
    /// Warned (the queue's `sla_warn_at` share used), neither met nor breached.
    pub at_risk: u64,
    /// Still running (or paused) without a warning.
    pub running: u64,
    /// `met / (met + breached)`; `null` when both are 0.
    pub compliance: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Satisfaction {
    /// Tickets whose survey mail was queued in the period.
    pub surveys_sent: u64,
    /// Of those, tickets rated since.
    pub responded: u64,
    /// `responded / surveys_sent`; `null` without surveys.
    pub response_rate: Option<f64>,
    /// Tickets whose latest rating was given in the period (a later rating replaces an
    /// earlier one).
    pub responses: u64,
    /// Their average rating, 1..=5; `null` without responses.
    pub average: Option<f64>,
    /// How many of them rated 1, 2, 3, 4 and 5 (five counts).
    pub distribution: [u64; 5],
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentRow {
    /// The agent's name (`#assign NAME`).
    pub agent: String,
    /// Distinct tickets the agent answered, wrote a note on, or resolved, closed or
    /// reopened in the period.
    pub tickets_handled: u64,
    /// Answers mailed to customers in the period.
    pub answers: u64,
    /// First answers of tickets in the period.
    pub first_responses: u64,
    /// Median first response time of those, business time; `null` without any.
    pub first_response_median_secs: Option<i64>,
    /// The same in wall time.
    pub first_response_median_wall_secs: Option<i64>,
    /// Tickets assigned to the agent in `new`, `open` or `pending` now.
    pub open_now: u64,
    /// The configured capacity (`null` for a name not in the configuration).
    pub capacity: Option<u32>,
    /// Latest ratings given in the period on tickets assigned to the agent.
    pub satisfaction_responses: u64,
    pub satisfaction_average: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenTicket {
    pub id: TicketId,
    pub subject: String,
    pub status: String,
    pub queue: String,
    pub assignee: Option<String>,
    pub created_at: String,
    /// Since creation, until now.
    pub age_secs: i64,
    /// The same on the queue's calendar.
    pub business_age_secs: i64,
}

/// How a group's count compares with the previous period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trend {
    /// None in the previous period.
    New,
    Up,
    Down,
    Flat,
}

impl Trend {
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::New => "new",
            Trend::Up => "up",
            Trend::Down => "down",
            Trend::Flat => "flat",
        }
    }
}

impl Serialize for Trend {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A group of similar tickets.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The words that define the group, strongest first (up to 5; English lower-cased,
    /// Chinese as segmented).
    pub terms: Vec<String>,
    /// Tickets of the group created in the period.
    pub count: u64,
    /// Tickets of the group created in the previous period.
    pub previous: u64,
    /// `count - previous`.
    pub change: i64,
    /// `new`, `up`, `down` or `flat`.
    pub trend: Trend,
    /// Up to 5 tickets of the group from the period, lowest number first.
    pub examples: Vec<TicketId>,
}

/// Rounds a ratio to 4 decimals.
pub(crate) fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

/// Rounds an average to 2 decimals.
pub(crate) fn average(sum: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| (sum as f64 / n as f64 * 100.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_bucket() {
        for p in Period::ALL {
            assert_eq!(p.as_str().parse::<Period>(), Ok(p));
        }
        assert_eq!(" Week ".parse::<Period>(), Ok(Period::Week));
        assert!("fortnight".parse::<Period>().is_err());
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        for (by, date, start, next) in [
            (Period::Day, "2026-11-04", "2026-11-04", "2026-11-05"),
            (Period::Week, "2026-11-04", "2026-11-02", "2026-11-09"), // Wednesday
            (Period::Week, "2026-11-02", "2026-11-02", "2026-11-09"), // Monday
            (Period::Week, "2026-11-08", "2026-11-02", "2026-11-09"), // Sunday
            (Period::Month, "2026-12-31", "2026-12-01", "2027-01-01"),
        ] {
            assert_eq!(bucket_start(by, d(date)), d(start), "{by} {date}");
            assert_eq!(next_bucket(by, d(start)), Some(d(next)), "{by} {start}");
        }
    }

    #[test]
    fn bounds_are_local_days() {
        let tz = chrono_tz::Europe::Berlin;
        let start = parse_bound(tz, "2026-11-02", Bound::Start).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-11-01T23:00:00+00:00");
        let end = parse_bound(tz, "2026-11-02", Bound::End).unwrap();
        assert_eq!(end.to_rfc3339(), "2026-11-02T23:00:00+00:00");
        let exact = parse_bound(tz, "2026-11-02T10:00:00Z", Bound::End).unwrap();
        assert_eq!(exact.to_rfc3339(), "2026-11-02T10:00:00+00:00");
        assert!(matches!(
            parse_bound(tz, "02/11/2026", Bound::Start),
            Err(ReportError::Date(_))
        ));
        // Clocks skip midnight in São Paulo on some dates: the day starts at 01:00.
        let sp = chrono_tz::America::Sao_Paulo;
        let d = NaiveDate::from_ymd_opt(2018, 11, 4).unwrap();
        assert_eq!(
            local_midnight(sp, d).to_rfc3339(),
            "2018-11-04T03:00:00+00:00"
        );
    }

    #[test]
    fn ratios_and_averages_round() {
        assert_eq!(ratio(2, 3), Some(0.6667));
        assert_eq!(ratio(0, 0), None);
        assert_eq!(average(7, 2), Some(3.5));
        assert_eq!(average(10, 3), Some(3.33));
        assert_eq!(average(1, 0), None);
    }
}
