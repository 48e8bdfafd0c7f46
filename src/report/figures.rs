//! Every figure of the report from the rows: pure, no clock, no store.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::{
    average, bucket_start, local_midnight, next_bucket, problems, ratio, AgentRow, Bin, Counts,
    OpenTicket, Options, Percentiles, PeriodCounts, QueueCounts, QueueTimes, Report, Satisfaction,
    SlaRow, Times, Volume,
};
use crate::calendar::Calendar;
use crate::config::Config;
use crate::model::{Deadline, SlaState};
use crate::model::{Status, TicketId};
use crate::store::{ts, EventKind, ReportEvent, ReportRows, ReportTicket};

/// Statuses in which a ticket is still being worked.
const OPEN: [Status; 3] = [Status::New, Status::Open, Status::Pending];
/// How many tickets `longest_open` lists.
pub(crate) const LONGEST: usize = 10;

/// Computes the report from `rows` (read for `opts`), as of `now`.
pub fn build(cfg: &Config, rows: &ReportRows, opts: &Options, now: DateTime<Utc>) -> Report {
    build_with(
        cfg,
        rows,
        opts,
        now,
        problems::top(cfg, &rows.tickets, opts),
    )
}

/// [`build`] with the top problems already computed.
pub(crate) fn build_with(
    cfg: &Config,
    rows: &ReportRows,
    opts: &Options,
    now: DateTime<Utc>,
    top_problems: Vec<super::Problem>,
) -> Report {
    let ctx = Ctx::new(cfg, rows, opts);
    let ratings = latest_ratings(&ctx, &rows.events);
    Report {
        generated_at: ts(now),
        from: ts(opts.from),
        to: ts(opts.to),
        previous_from: ts(opts.previous_from()),
        timezone: opts.tz.name().to_owned(),
        by: opts.by,
        queue: opts.queue.clone(),
        volume: volume(&ctx, rows),
        first_response: times(first_responses(&ctx, rows)),
        resolution: times(resolutions(&ctx, rows)),
        sla: sla(rows, now),
        satisfaction: satisfaction(&ctx, rows, &ratings),
        agents: agents(&ctx, cfg, rows, &ratings),
        longest_open: longest_open(&ctx, rows, now),
        top_problems,
        self_service: self_service(rows),
        triage: triage(&rows.triage),
    }
}

/// Self-service figures (issue 16) from the period's counts.
fn self_service(rows: &ReportRows) -> super::SelfService {
    let k = rows.knowledge;
    super::SelfService {
        status_requests: k.status_requests,
        articles_suggested: k.suggested,
        deflected: k.deflected,
        deflection_rate: ratio(k.deflected, k.suggested),
    }
}

fn triage(t: &crate::store::TriageFigures) -> super::Triage {
    super::Triage {
        tickets: t.tickets,
        suggested: t.suggested,
        triaged: t.triaged,
        share_triaged: super::ratio(t.triaged, t.tickets),
        applied: t.applied,
        corrected: t.corrected,
        accuracy: super::ratio(t.applied - t.corrected.min(t.applied), t.applied),
    }
}

/// What every figure needs: the period, the calendars, tickets by id.
struct Ctx<'a> {
    opts: &'a Options,
    cfg: &'a Config,
    always: Calendar,
    tickets: HashMap<TicketId, &'a ReportTicket>,
}

impl<'a> Ctx<'a> {
    fn new(cfg: &'a Config, rows: &'a ReportRows, opts: &'a Options) -> Ctx<'a> {
        Ctx {
            opts,
            cfg,
            always: Calendar::always(),
            tickets: rows.tickets.iter().map(|t| (t.id, t)).collect(),
        }
    }

    /// The queue of an event's ticket; `None` for a ticket of another queue.
    fn queue_of(&self, e: &ReportEvent) -> Option<&'a str> {
        self.tickets.get(&e.ticket).map(|t| &*t.queue)
    }

    fn in_period(&self, t: DateTime<Utc>) -> bool {
        t >= self.opts.from && t < self.opts.to
    }

    /// The queue's business calendar; 24×7 for a queue no longer configured.
    fn calendar(&self, queue: &str) -> &Calendar {
        self.cfg.queue(queue).map_or(&self.always, |q| &q.calendar)
    }

    /// (business, wall) seconds from `a` to `b` on `queue`'s calendar.
    fn elapsed(&self, queue: &str, a: DateTime<Utc>, b: DateTime<Utc>) -> (i64, i64) {
        let business = self.calendar(queue).between(a, b).as_secs();
        let wall = (b - a).num_seconds().max(0);
        (i64::try_from(business).unwrap_or(i64::MAX), wall)
    }
}

// ---------------------------------------------------------------- volume

/// The buckets of the period: local start dates and their instants.
struct Buckets {
    dates: Vec<NaiveDate>,
    starts: Vec<DateTime<Utc>>,
}

impl Buckets {
    fn new(opts: &Options) -> Buckets {
        let mut date = bucket_start(opts.by, opts.from.with_timezone(&opts.tz).date_naive());
        let (mut dates, mut starts) = (Vec::new(), Vec::new());
        loop {
            let start = local_midnight(opts.tz, date);
            if start >= opts.to && !dates.is_empty() {
                break;
            }
            dates.push(date);
            starts.push(start);
            match next_bucket(opts.by, date) {
                Some(next) => date = next,
                None => break,
            }
        }
        Buckets { dates, starts }
    }

    /// The bucket holding `t`, which lies in the period.
    fn index(&self, t: DateTime<Utc>) -> usize {
        self.starts.partition_point(|s| *s <= t).saturating_sub(1)
    }

    fn label(&self, by: super::Period, i: usize) -> String {
        let d = self.dates[i];
        match by {
            super::Period::Day => d.format("%Y-%m-%d").to_string(),
            super::Period::Week => {
                let w = d.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            super::Period::Month => d.format("%Y-%m").to_string(),
        }
    }
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.new += other.new;
        self.reopened += other.reopened;
        self.resolved += other.resolved;
        self.closed += other.closed;
    }
}

fn volume(ctx: &Ctx<'_>, rows: &ReportRows) -> Volume {
    let buckets = Buckets::new(ctx.opts);
    let mut per: Vec<BTreeMap<&str, Counts>> = vec![BTreeMap::new(); buckets.dates.len()];
    // A row is an instant or a quarter hour starting then; local days start on a quarter
    // hour in every zone of today, so a quarter hour lies in one bucket.
    for v in rows.volume.iter().filter(|v| ctx.in_period(v.at)) {
        per[buckets.index(v.at)]
            .entry(&v.queue)
            .or_default()
            .add(Counts {
                new: v.created,
                reopened: v.reopened,
                resolved: v.resolved,
                closed: v.closed,
            });
    }
    let mut total = Counts::default();
    let mut queues: BTreeMap<&str, Counts> = BTreeMap::new();
    let mut periods = Vec::with_capacity(per.len());
    for (i, bucket) in per.iter().enumerate() {
        let mut sum = Counts::default();
        for (queue, c) in bucket {
            sum.add(*c);
            queues.entry(queue).or_default().add(*c);
        }
        total.add(sum);
        periods.push(PeriodCounts {
            start: buckets.dates[i].format("%Y-%m-%d").to_string(),
            label: buckets.label(ctx.opts.by, i),
            counts: sum,
            queues: queue_counts(bucket),
        });
    }
    Volume {
        total,
        queues: queue_counts(&queues),
        periods,
    }
}

fn queue_counts(map: &BTreeMap<&str, Counts>) -> Vec<QueueCounts> {
    map.iter()
        .map(|(q, c)| QueueCounts {
            queue: (*q).to_owned(),
            counts: *c,
        })
        .collect()
}

// ---------------------------------------------------------------- times

/// One ticket's duration.
struct Sample<'a> {
    queue: &'a str,
    business: i64,
    wall: i64,
}

fn first_responses<'a>(ctx: &Ctx<'_>, rows: &'a ReportRows) -> Vec<Sample<'a>> {
    rows.tickets
        .iter()
        .filter_map(|t| {
            let at = t.first_response_at.filter(|at| ctx.in_period(*at))?;
            let (business, wall) = ctx.elapsed(&t.queue, t.created_at, at);
            Some(Sample {
                queue: &t.queue,
                business,
                wall,
            })
        })
        .collect()
}

fn resolutions<'a>(ctx: &Ctx<'_>, rows: &'a ReportRows) -> Vec<Sample<'a>> {
    rows.tickets
        .iter()
        .filter(|t| !t.merged)
        .filter_map(|t| {
            let at = t
                .resolved_at
                .or(t.closed_at)
                .filter(|at| ctx.in_period(*at))?;
            let (business, wall) = ctx.elapsed(&t.queue, t.created_at, at);
            Some(Sample {
                queue: &t.queue,
                business,
                wall,
            })
        })
        .collect()
}

/// Nearest-rank percentiles (see the module doc of `report`).
pub(crate) fn percentiles(mut values: Vec<i64>) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_unstable();
    let rank = |p: u64| {
        let n = values.len() as u64;
        let r = (p * n).div_ceil(100).max(1);
        values[usize::try_from(r - 1).unwrap_or(0).min(values.len() - 1)]
    };
    Percentiles {
        median_secs: Some(rank(50)),
        p90_secs: Some(rank(90)),
    }
}

/// The histogram's bins: label and upper end (exclusive), in seconds.
const BINS: [(&str, Option<i64>); 6] = [
    ("< 1h", Some(3_600)),
    ("1-4h", Some(4 * 3_600)),
    ("4-8h", Some(8 * 3_600)),
    ("8-24h", Some(24 * 3_600)),
    ("1-3d", Some(72 * 3_600)),
    (">= 3d", None),
];

fn times(samples: Vec<Sample<'_>>) -> Times {
    let mut histogram: Vec<Bin> = BINS
        .iter()
        .map(|(label, upto)| Bin {
            label: (*label).to_owned(),
            upto_secs: *upto,
            count: 0,
        })
        .collect();
    for s in &samples {
        let i = BINS
            .iter()
            .position(|(_, upto)| upto.is_none_or(|u| s.business < u))
            .unwrap_or(BINS.len() - 1);
        histogram[i].count += 1;
    }
    let mut by_queue: BTreeMap<&str, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    for s in &samples {
        let q = by_queue.entry(s.queue).or_default();
        q.0.push(s.business);
        q.1.push(s.wall);
    }
    let queues = by_queue
        .into_iter()
        .map(|(queue, (business, wall))| QueueTimes {
            queue: queue.to_owned(),
            count: business.len() as u64,
            business: percentiles(business),
            wall: percentiles(wall),
        })
        .collect();
    Times {
        count: samples.len() as u64,
        business: percentiles(samples.iter().map(|s| s.business).collect()),
        wall: percentiles(samples.iter().map(|s| s.wall).collect()),
        histogram,
        queues,
    }
}

// ---------------------------------------------------------------- SLA

fn sla(rows: &ReportRows, now: DateTime<Utc>) -> Vec<SlaRow> {
    let order = |d: &str| {
        Deadline::ALL
            .iter()
            .position(|x| x.as_str() == d)
            .unwrap_or(Deadline::ALL.len())
    };
    let mut map: BTreeMap<(&str, usize, &str), [u64; 4]> = BTreeMap::new();
    for d in &rows.deadlines {
        let slot = match SlaState::of(d.due_at, d.warned_at, d.breached_at, d.met_at, now) {
            SlaState::Met => 0,
            SlaState::Breached => 1,
            SlaState::AtRisk => 2,
            SlaState::Running | SlaState::Paused => 3,
        };
        map.entry((&*d.queue, order(&d.deadline), &d.deadline))
            .or_default()[slot] += 1;
    }
    map.into_iter()
        .map(
            |((queue, _, deadline), [met, breached, at_risk, running])| SlaRow {
                queue: queue.to_owned(),
                deadline: deadline.to_owned(),
                met,
                breached,
                at_risk,
                running,
                compliance: ratio(met, met + breached),
            },
        )
        .collect()
}

// ---------------------------------------------------------------- satisfaction

/// Each ticket's latest rating (at, rating), for tickets of the report's queues; events
/// come in the order they happened.
fn latest_ratings(ctx: &Ctx<'_>, events: &[ReportEvent]) -> HashMap<TicketId, (DateTime<Utc>, u8)> {
    let mut out = HashMap::new();
    for e in events {
        if let (EventKind::Csat(r), Some(_)) = (e.kind, ctx.queue_of(e)) {
            out.insert(e.ticket, (e.at, r));
        }
    }
    out
}

fn satisfaction(
    ctx: &Ctx<'_>,
    rows: &ReportRows,
    ratings: &HashMap<TicketId, (DateTime<Utc>, u8)>,
) -> Satisfaction {
    let mut surveyed: HashMap<TicketId, DateTime<Utc>> = HashMap::new();
    for e in &rows.events {
        if e.kind == EventKind::SurveyQueued && ctx.queue_of(e).is_some() && ctx.in_period(e.at) {
            surveyed.entry(e.ticket).or_insert(e.at);
        }
    }
    let responded = surveyed
        .iter()
        .filter(|(t, sent)| ratings.get(*t).is_some_and(|(at, _)| at >= *sent))
        .count() as u64;
    let mut distribution = [0u64; 5];
    for (at, r) in ratings.values() {
        if ctx.in_period(*at) {
            distribution[usize::from(*r - 1)] += 1;
        }
    }
    let responses: u64 = distribution.iter().sum();
    let sum: u64 = distribution.iter().zip(1u64..).map(|(n, r)| n * r).sum();
    Satisfaction {
        surveys_sent: surveyed.len() as u64,
        responded,
        response_rate: ratio(responded, surveyed.len() as u64),
        responses,
        average: average(sum, responses),
        distribution,
    }
}

// ---------------------------------------------------------------- agents

#[derive(Default)]
struct AgentAcc {
    handled: HashSet<TicketId>,
    answers: u64,
    first_business: Vec<i64>,
    first_wall: Vec<i64>,
    open_now: u64,
    rating_sum: u64,
    ratings: u64,
}

fn agents(
    ctx: &Ctx<'_>,
    cfg: &Config,
    rows: &ReportRows,
    ratings: &HashMap<TicketId, (DateTime<Utc>, u8)>,
) -> Vec<AgentRow> {
    let agents: HashSet<&str> = cfg.agents.iter().map(|a| a.name.as_str()).collect();
    let mut acc: HashMap<String, AgentAcc> = HashMap::new();
    // Answers: the n-th `answer.queued` event of a ticket at one instant goes with the n-th
    // agent mail recorded on it at that instant (see `store::report`).
    let mut nth: HashMap<(TicketId, DateTime<Utc>), usize> = HashMap::new();
    for e in &rows.events {
        if !ctx.in_period(e.at) {
            continue;
        }
        let Some(t) = ctx.tickets.get(&e.ticket) else {
            continue;
        };
        match e.kind {
            EventKind::AnswerQueued => {
                let n = nth.entry((e.ticket, e.at)).or_default();
                if let Some(agent) = e.agents.get(*n).or(e.agents.last()) {
                    let a = acc.entry(agent.clone()).or_default();
                    a.answers += 1;
                    a.handled.insert(e.ticket);
                }
                *n += 1;
            }
            EventKind::FirstResponse => {
                let (business, wall) = ctx.elapsed(&t.queue, t.created_at, e.at);
                let a = acc.entry(e.actor.clone()).or_default();
                a.first_business.push(business);
                a.first_wall.push(wall);
                a.handled.insert(e.ticket);
            }
            // Only agents count: a customer reopens by writing, `postdesk` closes by rule.
            EventKind::Status { .. } | EventKind::Note if agents.contains(e.actor.as_str()) => {
                acc.entry(e.actor.clone())
                    .or_default()
                    .handled
                    .insert(e.ticket);
            }
            _ => {}
        }
    }
    for (agent, n) in &rows.open.by_assignee {
        acc.entry(agent.to_string()).or_default().open_now += n;
    }
    for t in &rows.tickets {
        let Some(agent) = &t.assignee else { continue };
        if let Some((at, r)) = ratings.get(&t.id) {
            if ctx.in_period(*at) {
                let a = acc.entry(agent.to_string()).or_default();
                a.rating_sum += u64::from(*r);
                a.ratings += 1;
            }
        }
    }
    let mut names: Vec<String> = cfg
        .agents
        .iter()
        .filter(|a| ctx.opts.queue.as_deref().is_none_or(|q| a.works_in(q)))
        .map(|a| a.name.clone())
        .collect();
    let mut others: Vec<&String> = acc.keys().filter(|n| !names.contains(n)).collect();
    others.sort();
    names.extend(others.into_iter().cloned());
    names
        .into_iter()
        .map(|name| {
            let a = acc.remove(&name).unwrap_or_default();
            AgentRow {
                capacity: cfg.agent(&name).map(|x| x.capacity),
                first_responses: a.first_business.len() as u64,
                first_response_median_secs: percentiles(a.first_business).median_secs,
                first_response_median_wall_secs: percentiles(a.first_wall).median_secs,
                tickets_handled: a.handled.len() as u64,
                answers: a.answers,
                open_now: a.open_now,
                satisfaction_responses: a.ratings,
                satisfaction_average: average(a.rating_sum, a.ratings),
                agent: name,
            }
        })
        .collect()
}

// ---------------------------------------------------------------- longest open

fn longest_open(ctx: &Ctx<'_>, rows: &ReportRows, now: DateTime<Utc>) -> Vec<OpenTicket> {
    let mut open: Vec<&ReportTicket> = rows
        .open
        .longest
        .iter()
        .filter(|t| OPEN.contains(&t.status))
        .collect();
    open.sort_by_key(|t| (t.created_at, t.id));
    open.into_iter()
        .take(LONGEST)
        .map(|t| {
            let (business, wall) = ctx.elapsed(&t.queue, t.created_at, now);
            OpenTicket {
                id: t.id,
                subject: t.subject.clone().unwrap_or_default(),
                status: t.status.as_str().to_owned(),
                queue: t.queue.to_string(),
                assignee: t.assignee.as_ref().map(|a| a.to_string()),
                created_at: ts(t.created_at),
                age_secs: wall,
                business_age_secs: business,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        for (values, median, p90) in [
            (vec![], None, None),
            (vec![7], Some(7), Some(7)),
            (vec![20, 10], Some(10), Some(20)),
            (vec![3, 1, 2], Some(2), Some(3)),
            (vec![4, 1, 3, 2], Some(2), Some(4)),
            ((1..=10).collect(), Some(5), Some(9)),
            ((1..=11).collect(), Some(6), Some(10)),
        ] {
            let p = percentiles(values.clone());
            assert_eq!((p.median_secs, p.p90_secs), (median, p90), "{values:?}");
        }
    }
}
