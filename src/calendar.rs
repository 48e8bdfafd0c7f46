//! Business calendars and SLA due times: pure time arithmetic (issue 5).
//!
//! In: a [`Calendar`] (time zone, working hours per weekday, holidays), instants and
//! business durations. Out: due instants, business time between two instants, and where a
//! deadline stands ([`Standing`]).
//! - Pure: no clock, no store, no I/O; "now" is an argument. Never panics, whatever the input
//!   (instants near the ends of chrono's range, huge durations, odd time zones).
//! - Working hours are wall-clock times in the calendar's zone, to the second; an end of
//!   `00:00` (written `24:00` in config) is midnight at the end of the day. Holidays are
//!   local dates and take the whole day off. [`Calendar::always`] is 24×7 in UTC.
//! - Daylight saving: a local time stands for the first instant at which the wall clock shows
//!   that time or a later one. A time that exists twice (clock set back) is its earlier
//!   instant; a time that does not exist (clock set forward) is the instant the gap ends. So
//!   on the day the clock goes back a period 02:00–03:00 lasts two hours, on the day it goes
//!   forward it is empty, and 00:00–24:00 lasts 25 or 23 hours.
//! - [`Calendar::add`] returns the earliest instant `t >= start` with
//!   `between(start, t) == business`: `Duration::ZERO` gives `start` unchanged, even outside
//!   working hours, and a deadline reached exactly at the end of a period is that end
//!   (Friday 18:00, not Monday 09:00). Hence `between(s, add(s, d)) == d`.
//! - Every search ends [`HORIZON`] (20 years) after its start: `add` returns
//!   `start + HORIZON` when the business time cannot be reached before it (a calendar whose
//!   working time is all holidays), and `between` counts no further than that.
//! - The engine computes due times when a ticket opens, changes priority, queue or state and
//!   stores them on the ticket; `pending` pauses the resolution clock (see [`resume`]).

use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;
use std::time::Duration;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::{GapInfo, Tz};

use crate::model::Deadline;

/// How far any search looks: 20 years (7305 days) after its start.
pub const HORIZON: Duration = Duration::from_secs(7305 * SECONDS_PER_DAY as u64);

const SECONDS_PER_DAY: u32 = 86_400;

/// A calendar that cannot be built, or working hours that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error(
        "invalid working hours {0:?}: expected e.g. \"09:00-18:00\", \
         \"09:00-12:00,13:00-18:00\", \"00:00-24:00\" or \"closed\""
    )]
    Syntax(String),
    #[error("working period {period}{} does not end after it starts", on_day(.day))]
    Backwards {
        day: Option<Weekday>,
        period: String,
    },
    #[error("working periods {first} and {second}{} overlap", on_day(.day))]
    Overlap {
        day: Option<Weekday>,
        first: String,
        second: String,
    },
    #[error("calendar has no working hours on any weekday")]
    NoWorkingHours,
}

fn on_day(day: &Option<Weekday>) -> String {
    day.map(|d| format!(" on {d}")).unwrap_or_default()
}

/// One working period of a weekday, in seconds after local midnight; `end` may be 86 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Period {
    start: u32,
    end: u32,
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_clock(f, self.start)?;
        f.write_str("-")?;
        write_clock(f, self.end)
    }
}

fn write_clock(f: &mut fmt::Formatter<'_>, secs: u32) -> fmt::Result {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if s == 0 {
        write!(f, "{h:02}:{m:02}")
    } else {
        write!(f, "{h:02}:{m:02}:{s:02}")
    }
}

/// A business calendar: time zone, working hours per weekday (Monday first), holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    tz: Tz,
    /// Sorted, disjoint, adjacent periods merged; index 0 is Monday.
    week: [Vec<Period>; 7],
    holidays: BTreeSet<NaiveDate>,
    /// Every day 00:00–24:00 and no holidays: every instant is working time.
    all_time: bool,
}

impl Calendar {
    /// 24×7 in UTC, no holidays.
    pub fn always() -> Calendar {
        let day = || {
            vec![Period {
                start: 0,
                end: SECONDS_PER_DAY,
            }]
        };
        Calendar {
            tz: Tz::UTC,
            week: std::array::from_fn(|_| day()),
            holidays: BTreeSet::new(),
            all_time: true,
        }
    }

    /// Working hours per weekday (`week[0]` is Monday) as `[start, end)` local times, an end
    /// of `00:00` meaning midnight at the end of the day; an empty list is a day off.
    /// Holidays are local dates. Refuses periods that do not end after they start, periods
    /// that overlap, and a week without working hours.
    pub fn new(
        tz: Tz,
        week: [Vec<(NaiveTime, NaiveTime)>; 7],
        holidays: Vec<NaiveDate>,
    ) -> Result<Calendar, CalendarError> {
        let mut days: [Vec<Period>; 7] = Default::default();
        for (index, (slot, list)) in days.iter_mut().zip(&week).enumerate() {
            let day = u8::try_from(index)
                .ok()
                .and_then(|i| Weekday::try_from(i).ok());
            *slot = merge(validate(day, list)?);
        }
        if days.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoWorkingHours);
        }
        let holidays: BTreeSet<NaiveDate> = holidays.into_iter().collect();
        let whole_day = [Period {
            start: 0,
            end: SECONDS_PER_DAY,
        }];
        let all_time = holidays.is_empty() && days.iter().all(|d| d.as_slice() == whole_day);
        Ok(Calendar {
            tz,
            week: days,
            holidays,
            all_time,
        })
    }

    /// Reads one weekday's hours: `"09:00-18:00"`, `"09:00-12:00,13:00-18:00"`, `""` or
    /// `"closed"` (a day off), `"00:00-24:00"` (the whole day). `24:00` is allowed only as an
    /// end and comes back as `00:00`, which [`Calendar::new`] reads as the end of the day.
    /// Seconds (`"08:30:15"`), one-digit hours (`"9:00"`), spaces and an en dash are accepted.
    pub fn parse_hours(text: &str) -> Result<Vec<(NaiveTime, NaiveTime)>, CalendarError> {
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("closed") {
            return Ok(Vec::new());
        }
        let syntax = || CalendarError::Syntax(text.to_owned());
        let mut periods = Vec::new();
        for piece in trimmed.split(',') {
            let (start, end) = piece.split_once(['-', '–']).ok_or_else(syntax)?;
            let start = parse_clock(start).filter(|s| *s < SECONDS_PER_DAY);
            let end = parse_clock(end);
            let (Some(start), Some(end)) = (start, end) else {
                return Err(syntax());
            };
            periods.push((to_time(start), to_time(end)));
        }
        validate(None, &periods)?;
        Ok(periods)
    }

    /// The calendar's time zone.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// Whether `date` (local) is one of the configured holidays.
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.contains(&date)
    }

    /// The earliest instant `t >= start` at which `business` working time has elapsed since
    /// `start`; counting begins at the next working moment if `start` is outside hours.
    /// `Duration::ZERO` returns `start` unchanged. Capped at `start + HORIZON`.
    pub fn add(&self, start: DateTime<Utc>, business: Duration) -> DateTime<Utc> {
        if business.is_zero() {
            return start;
        }
        let limit = horizon_end(start);
        // Business time never outruns real time, so more than the horizon cannot be reached.
        if business > HORIZON {
            return limit;
        }
        let Ok(mut left) = TimeDelta::from_std(business) else {
            return limit;
        };
        if self.all_time {
            return start
                .checked_add_signed(left)
                .map_or(limit, |t| t.min(limit));
        }
        let mut due = limit;
        self.walk(start, limit, |s, e| {
            let length = e.signed_duration_since(s);
            if length >= left {
                due = s.checked_add_signed(left).unwrap_or(e);
                ControlFlow::Break(())
            } else {
                left -= length;
                ControlFlow::Continue(())
            }
        });
        due
    }

    /// Working time in `[a, b)`; zero if `b <= a`. Counts at most up to `a + HORIZON`.
    pub fn between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::ZERO;
        }
        let until = b.min(horizon_end(a));
        let total = if self.all_time {
            until.signed_duration_since(a)
        } else {
            let mut sum = TimeDelta::zero();
            self.walk(a, until, |s, e| {
                sum += e.signed_duration_since(s);
                ControlFlow::Continue(())
            });
            sum
        };
        total.to_std().unwrap_or_default()
    }

    /// Whether `t` lies inside working hours (periods are `[start, end)`).
    pub fn is_working(&self, t: DateTime<Utc>) -> bool {
        if self.all_time {
            return true;
        }
        t.checked_add_signed(TimeDelta::nanoseconds(1))
            .is_some_and(|next| !self.between(t, next).is_zero())
    }

    /// Calls `visit` with the working intervals in `[from, until)`, in order, disjoint and
    /// non-empty, until it breaks or the intervals run out.
    fn walk(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        mut visit: impl FnMut(DateTime<Utc>, DateTime<Utc>) -> ControlFlow<()>,
    ) {
        if until <= from {
            return;
        }
        // A local day's periods lie between its midnight and the next one, so starting a day
        // early and stopping a day late sees every period that can touch [from, until).
        let first = self.local_date(from);
        let mut date = first.pred_opt().unwrap_or(first);
        let last = self.local_date(until).succ_opt().unwrap_or(NaiveDate::MAX);
        // Clipping at the end of the previous interval keeps intervals disjoint even in a time
        // zone whose clock goes back across a period boundary.
        let mut cursor = from;
        loop {
            if !self.holidays.contains(&date) {
                let day = &self.week[date.weekday().num_days_from_monday() as usize];
                for period in day {
                    let (Some(s), Some(e)) = (
                        self.instant(date, period.start),
                        self.instant(date, period.end),
                    ) else {
                        continue;
                    };
                    let (s, e) = (s.max(cursor), e.min(until));
                    if e > s {
                        cursor = e;
                        if visit(s, e).is_break() {
                            return;
                        }
                    }
                }
            }
            match date.succ_opt() {
                Some(next) if date < last => date = next,
                _ => return,
            }
        }
    }

    /// The local date at instant `t`; its UTC date where the local one is out of range.
    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        let utc = t.naive_utc();
        let offset = self.tz.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_offset(offset)
            .map_or_else(|| utc.date(), |local| local.date())
    }

    /// The instant of `secs` after local midnight of `date` (86 400: the next midnight).
    fn instant(&self, date: NaiveDate, secs: u32) -> Option<DateTime<Utc>> {
        let local = if secs >= SECONDS_PER_DAY {
            date.succ_opt()?.and_time(NaiveTime::MIN)
        } else {
            date.and_time(NaiveTime::from_num_seconds_from_midnight_opt(secs, 0)?)
        };
        self.to_utc(local)
    }

    /// The first instant at which the wall clock shows `local` or a later time.
    fn to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let utc = match self.tz.offset_from_local_datetime(&local) {
            LocalResult::Single(offset) => local.checked_sub_offset(offset.fix()),
            LocalResult::Ambiguous(a, b) => {
                let a = local.checked_sub_offset(a.fix());
                let b = local.checked_sub_offset(b.fix());
                match (a, b) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            LocalResult::None => match GapInfo::new(&local, &self.tz).and_then(|gap| gap.end) {
                Some(end) => Some(end.naive_utc()),
                // Outside the zone's known transitions: take the offset in force then.
                None => {
                    let offset = self.tz.offset_from_utc_datetime(&local).fix();
                    local.checked_sub_offset(offset)
                }
            },
        }?;
        Some(utc.and_utc())
    }
}

/// `start + HORIZON`, or the last representable instant.
fn horizon_end(start: DateTime<Utc>) -> DateTime<Utc> {
    TimeDelta::from_std(HORIZON)
        .ok()
        .and_then(|h| start.checked_add_signed(h))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Seconds after midnight: `H:MM`, `HH:MM` or `HH:MM:SS`, at most 24:00.
fn parse_clock(text: &str) -> Option<u32> {
    let mut parts = text.trim().split(':');
    let hours = number(parts.next()?, 1, 24)?;
    let minutes = number(parts.next()?, 2, 59)?;
    let seconds = match parts.next() {
        None => 0,
        Some(part) => number(part, 2, 59)?,
    };
    if parts.next().is_some() {
        return None;
    }
    let secs = hours * 3600 + minutes * 60 + seconds;
    (secs <= SECONDS_PER_DAY).then_some(secs)
}

/// One or two ASCII digits (exactly two if `min_len` is 2), at most `max`.
fn number(part: &str, min_len: usize, max: u32) -> Option<u32> {
    let digits = (min_len..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    let value: u32 = part.parse().ok().filter(|_| digits)?;
    (value <= max).then_some(value)
}

/// `secs` as a time of day; 86 400 (24:00) becomes 00:00, the end-of-day convention.
fn to_time(secs: u32) -> NaiveTime {
    NaiveTime::from_num_seconds_from_midnight_opt(secs % SECONDS_PER_DAY, 0)
        .unwrap_or(NaiveTime::MIN)
}

/// Checks one day's periods; returns them sorted, in seconds, ends of 00:00 as 86 400.
fn validate(
    day: Option<Weekday>,
    list: &[(NaiveTime, NaiveTime)],
) -> Result<Vec<Period>, CalendarError> {
    let mut periods = Vec::with_capacity(list.len());
    for (start, end) in list {
        let start = start.num_seconds_from_midnight();
        let end = match end.num_seconds_from_midnight() {
            0 => SECONDS_PER_DAY,
            secs => secs,
        };
        let period = Period { start, end };
        if end <= start {
            return Err(CalendarError::Backwards {
                day,
                period: period.to_string(),
            });
        }
        periods.push(period);
    }
    periods.sort();
    for pair in periods.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(CalendarError::Overlap {
                day,
                first: pair[0].to_string(),
                second: pair[1].to_string(),
            });
        }
    }
    Ok(periods)
}

/// Joins periods that touch (12:00-13:00 and 13:00-14:00); input sorted and disjoint.
fn merge(periods: Vec<Period>) -> Vec<Period> {
    let mut merged: Vec<Period> = Vec::with_capacity(periods.len());
    for period in periods {
        match merged.last_mut() {
            Some(last) if last.end == period.start => last.end = period.end,
            _ => merged.push(period),
        }
    }
    merged
}

/// Business-time targets of one queue and priority; `None` means no such deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub first_response: Option<Duration>,
    pub next_response: Option<Duration>,
    pub resolution: Option<Duration>,
}

impl Policy {
    /// The target for `deadline`.
    pub fn target(&self, deadline: Deadline) -> Option<Duration> {
        match deadline {
            Deadline::FirstResponse => self.first_response,
            Deadline::NextResponse => self.next_response,
            Deadline::Resolution => self.resolution,
        }
    }

    /// When `deadline` falls due if its clock starts at `from`; `None` without a target.
    pub fn due(
        &self,
        cal: &Calendar,
        deadline: Deadline,
        from: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.target(deadline).map(|target| cal.add(from, target))
    }
}

/// Where a deadline stands at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Standing {
    Fine,
    /// The warning share of the business time is used up: warn the assignee.
    AtRisk,
    /// `now` is at or past the due instant: escalate.
    Breached,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Fine => "fine",
            Standing::AtRisk => "at_risk",
            Standing::Breached => "breached",
        }
    }
}

/// `Breached` when `now >= due`; else `AtRisk` when the business time elapsed since
/// `started` is at least `warn_share` of the business time from `started` to `due`; else
/// `Fine`. `warn_share` is clamped to 0..=1 (to the millionth); NaN counts as 1.
pub fn standing(
    cal: &Calendar,
    started: DateTime<Utc>,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
    warn_share: f64,
) -> Standing {
    if now >= due {
        return Standing::Breached;
    }
    let share = if warn_share.is_nan() {
        1.0
    } else {
        warn_share.clamp(0.0, 1.0)
    };
    // Whole millionths keep the comparison exact: 80% of 10h is exactly 8h.
    let millionths = (share * 1_000_000.0).round() as u128;
    let total = cal.between(started, due).as_nanos();
    let elapsed = cal.between(started, now).as_nanos();
    if elapsed * 1_000_000 >= total * millionths {
        Standing::AtRisk
    } else {
        Standing::Fine
    }
}

/// The resolution due instant when a paused ticket resumes at `now`: `used` is the business
/// time the clock already ran (summed `between` over the spans outside `pending`), `total`
/// the policy's target. If `used >= total` the clock had run out: the due instant is `now`.
pub fn resume(
    cal: &Calendar,
    now: DateTime<Utc>,
    total: Duration,
    used: Duration,
) -> DateTime<Utc> {
    cal.add(now, total.saturating_sub(used))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UnknownDeadline;
    use proptest::prelude::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn hours(text: &str) -> Vec<(NaiveTime, NaiveTime)> {
        Calendar::parse_hours(text).unwrap()
    }

    /// The same hours Monday to Friday, weekend off.
    fn weekdays(tz: Tz, text: &str, holidays: &[&str]) -> Calendar {
        let day = hours(text);
        let week = [
            day.clone(),
            day.clone(),
            day.clone(),
            day.clone(),
            day,
            Vec::new(),
            Vec::new(),
        ];
        Calendar::new(tz, week, holidays.iter().map(|d| date(d)).collect()).unwrap()
    }

    fn every_day(tz: Tz, text: &str, holidays: &[&str]) -> Calendar {
        let day = hours(text);
        let week = std::array::from_fn(|_| day.clone());
        Calendar::new(tz, week, holidays.iter().map(|d| date(d)).collect()).unwrap()
    }

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// A local wall-clock time `"2025-06-06 17:00"` (Friday) in `tz`, which must be unambiguous.
    fn local(tz: Tz, text: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive).single().unwrap().to_utc()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        local(Tz::UTC, text)
    }

    /// Berlin office hours with a holiday on Wednesday 2025-06-11 (June: CEST, UTC+2).
    fn berlin() -> Calendar {
        weekdays(Tz::Europe__Berlin, "09:00-18:00", &["2025-06-11"])
    }

    #[test]
    fn add_in_berlin_office_hours() {
        let cal = berlin();
        let tz = Tz::Europe__Berlin;
        for (start, business, want) in [
            ("2025-06-06 17:00", 4 * HOUR, "2025-06-09 12:00"), // Fri → over the weekend
            ("2025-06-10 16:00", 4 * HOUR, "2025-06-12 11:00"), // Tue → over Wednesday's holiday
            ("2025-06-11 10:00", HOUR, "2025-06-12 10:00"),     // start on the holiday
            ("2025-06-07 10:00", Duration::ZERO, "2025-06-07 10:00"), // ZERO: start unchanged
            ("2025-06-07 10:00", MIN, "2025-06-09 09:01"),      // start on Saturday
            ("2025-06-09 07:00", 9 * HOUR, "2025-06-09 18:00"), // early; ends exactly at 18:00
            ("2025-06-09 18:00", MIN, "2025-06-10 09:01"),      // start at closing time
            ("2025-06-09 23:30", 30 * MIN, "2025-06-10 09:30"), // start at night
            ("2025-06-09 12:34", 26 * MIN, "2025-06-09 13:00"),
            ("2025-06-09 09:00", 45 * HOUR, "2025-06-16 18:00"), // 4 days, the holiday, Mon
            ("2025-06-09 09:00", 90 * HOUR, "2025-06-23 18:00"), // two weeks and a day
            ("2025-06-09 09:00", 270 * HOUR, "2025-07-21 18:00"), // 30 working days
        ] {
            let got = cal.add(local(tz, start), business);
            assert_eq!(got, local(tz, want), "{start} + {business:?}");
        }
    }

    #[test]
    fn add_with_lunch_break_in_shanghai() {
        let tz = Tz::Asia__Shanghai;
        let cal = weekdays(tz, "09:00-12:00,13:00-18:00", &[]);
        for (start, business, want) in [
            ("2025-06-09 11:00", 2 * HOUR, "2025-06-09 14:00"), // across lunch
            ("2025-06-09 11:00", HOUR, "2025-06-09 12:00"),     // ends at the break
            ("2025-06-09 12:30", 30 * MIN, "2025-06-09 13:30"), // start in the break
            ("2025-06-13 17:00", 2 * HOUR, "2025-06-16 10:00"), // Fri → Mon
            ("2025-06-15 08:00", 8 * HOUR, "2025-06-16 18:00"), // Sunday → a full Monday
            ("2025-06-16 08:00", 16 * HOUR, "2025-06-17 18:00"), // two full days
            ("2025-06-16 09:00", 41 * HOUR, "2025-06-23 10:00"), // a week and an hour
        ] {
            let got = cal.add(local(tz, start), business);
            assert_eq!(got, local(tz, want), "{start} + {business:?}");
            assert_eq!(cal.between(local(tz, start), got), business, "{start}");
        }
    }

    #[test]
    fn always_is_plain_time() {
        let cal = Calendar::always();
        let start = utc("2025-06-07 10:00");
        for business in [Duration::ZERO, MIN, 30 * HOUR, 1000 * HOUR] {
            let want = start + TimeDelta::from_std(business).unwrap();
            assert_eq!(cal.add(start, business), want);
            assert_eq!(cal.between(start, want), business);
        }
        assert!(cal.is_working(start));
    }

    #[test]
    fn between_counts_working_time_only() {
        let cal = berlin();
        let tz = Tz::Europe__Berlin;
        for (a, b, want) in [
            ("2025-06-06 17:00", "2025-06-09 12:00", 4 * HOUR),
            ("2025-06-10 00:00", "2025-06-13 00:00", 18 * HOUR), // Tue, holiday, Thu
            ("2025-06-07 00:00", "2025-06-08 23:59", Duration::ZERO),
            ("2025-06-09 12:00", "2025-06-09 10:00", Duration::ZERO), // b before a
            ("2025-06-09 10:00", "2025-06-09 10:00", Duration::ZERO),
            ("2025-06-09 17:59", "2025-06-10 09:01", 2 * MIN),
        ] {
            assert_eq!(cal.between(local(tz, a), local(tz, b)), want, "{a} .. {b}");
        }
    }

    #[test]
    fn is_working_uses_half_open_periods() {
        let cal = berlin();
        let tz = Tz::Europe__Berlin;
        for (at, want) in [
            ("2025-06-09 08:59", false),
            ("2025-06-09 09:00", true),
            ("2025-06-09 17:59", true),
            ("2025-06-09 18:00", false),
            ("2025-06-11 10:00", false), // holiday
            ("2025-06-07 10:00", false), // Saturday
        ] {
            assert_eq!(cal.is_working(local(tz, at)), want, "{at}");
        }
    }

    /// Berlin 2025: clocks go forward on Sunday 30 March at 02:00 CET (01:00 UTC) and back on
    /// Sunday 26 October at 03:00 CEST (01:00 UTC).
    #[test]
    fn dst_days_in_berlin() {
        let tz = Tz::Europe__Berlin;
        // A far-away holiday keeps the 00:00-24:00 calendar off the 24×7 shortcut.
        for holidays in [&[][..], &["1999-01-01"][..]] {
            let cal = every_day(tz, "00:00-24:00", holidays);
            let spring = (local(tz, "2025-03-30 00:00"), local(tz, "2025-03-31 00:00"));
            let autumn = (local(tz, "2025-10-26 00:00"), local(tz, "2025-10-27 00:00"));
            assert_eq!(cal.between(spring.0, spring.1), 23 * HOUR, "{holidays:?}");
            assert_eq!(cal.between(autumn.0, autumn.1), 25 * HOUR, "{holidays:?}");
            assert_eq!(cal.add(spring.0, 3 * HOUR), utc("2025-03-30 02:00"));
            assert_eq!(cal.add(autumn.0, 3 * HOUR), utc("2025-10-26 01:00"));
            assert_eq!(cal.add(spring.0, 23 * HOUR), spring.1);
            assert_eq!(cal.add(autumn.0, 25 * HOUR), autumn.1);
            assert!(cal.is_working(utc("2025-10-26 00:30")));
            assert!(cal.is_working(utc("2025-10-26 01:30")));
        }
    }

    #[test]
    fn dst_periods_with_boundaries_in_the_gap_or_overlap() {
        let tz = Tz::Europe__Berlin;
        for (text, day, want) in [
            ("01:00-05:00", "2025-03-30", 3 * HOUR),
            ("01:00-05:00", "2025-10-26", 5 * HOUR),
            ("01:00-05:00", "2025-10-19", 4 * HOUR),
            ("02:00-03:00", "2025-03-30", Duration::ZERO), // the hour does not exist
            ("02:00-03:00", "2025-10-26", 2 * HOUR),       // the clock shows it twice
            ("02:30-04:00", "2025-03-30", HOUR),           // starts when the gap ends
            ("02:30-04:00", "2025-10-26", 150 * MIN),      // starts at the first 02:30
            ("01:00-02:30", "2025-03-30", HOUR),           // ends when the gap ends
            ("01:00-02:30", "2025-10-26", 90 * MIN),       // ends at the first 02:30
        ] {
            let cal = every_day(tz, text, &[]);
            let from = local(tz, &format!("{day} 00:00"));
            let next = date(day).succ_opt().unwrap();
            let to = local(tz, &format!("{next} 00:00"));
            assert_eq!(cal.between(from, to), want, "{text} on {day}");
        }
        let cal = every_day(tz, "02:30-04:00", &[]);
        let spring = local(tz, "2025-03-30 00:00");
        assert_eq!(cal.add(spring, 30 * MIN), utc("2025-03-30 01:30"));
        let autumn = local(tz, "2025-10-26 00:00");
        assert_eq!(cal.add(autumn, HOUR), utc("2025-10-26 01:30"));
        let cal = every_day(tz, "02:00-03:00", &[]);
        for (at, want) in [
            ("2025-10-26 00:30", true),  // 02:30 CEST
            ("2025-10-26 01:30", true),  // 02:30 CET
            ("2025-10-26 02:00", false), // 03:00 CET
            ("2025-03-30 01:00", false), // 03:00 CEST, right after the gap
        ] {
            assert_eq!(cal.is_working(utc(at)), want, "{at} UTC");
        }
    }

    #[test]
    fn standing_at_79_80_percent_and_due() {
        let cal = berlin();
        let tz = Tz::Europe__Berlin;
        let started = local(tz, "2025-06-09 09:00");
        let due = cal.add(started, 10 * HOUR);
        assert_eq!(due, local(tz, "2025-06-10 10:00"));
        for (now, share, want) in [
            ("2025-06-09 08:00", 0.8, Standing::Fine), // before it started
            ("2025-06-09 16:54", 0.8, Standing::Fine), // 79%
            ("2025-06-09 17:00", 0.8, Standing::AtRisk), // 80%
            ("2025-06-09 21:00", 0.8, Standing::AtRisk), // evening: still 90%
            ("2025-06-10 09:59", 0.8, Standing::AtRisk),
            ("2025-06-10 10:00", 0.8, Standing::Breached), // at due
            ("2025-06-12 10:00", 0.8, Standing::Breached),
            ("2025-06-09 09:00", 0.0, Standing::AtRisk),
            ("2025-06-10 09:59", 1.0, Standing::Fine),
            ("2025-06-10 09:59", f64::NAN, Standing::Fine),
            ("2025-06-10 09:59", 7.0, Standing::Fine), // clamped to 1
            ("2025-06-09 09:00", -1.0, Standing::AtRisk), // clamped to 0
        ] {
            let got = standing(&cal, started, due, local(tz, now), share);
            assert_eq!(got, want, "{now} at share {share}");
        }
    }

    #[test]
    fn resume_after_pause_over_weekend() {
        let cal = berlin();
        let tz = Tz::Europe__Berlin;
        let total = 8 * HOUR;
        // Opened Thursday 09:00, pending at 15:00: six business hours used.
        let used = cal.between(local(tz, "2025-06-12 09:00"), local(tz, "2025-06-12 15:00"));
        assert_eq!(used, 6 * HOUR);
        for (now, used, want) in [
            ("2025-06-14 11:00", used, "2025-06-16 11:00"), // customer replies on Saturday
            ("2025-06-13 17:00", used, "2025-06-16 10:00"), // on Friday afternoon
            ("2025-06-13 10:00", Duration::ZERO, "2025-06-13 18:00"),
            ("2025-06-14 11:00", total, "2025-06-14 11:00"), // ran out: due now
            ("2025-06-14 11:00", 2 * total, "2025-06-14 11:00"),
        ] {
            assert_eq!(
                resume(&cal, local(tz, now), total, used),
                local(tz, want),
                "{now}"
            );
        }
    }

    #[test]
    fn policy_targets_and_due() {
        let policy = Policy {
            first_response: Some(4 * HOUR),
            next_response: None,
            resolution: Some(40 * HOUR),
        };
        let cal = berlin();
        let start = local(Tz::Europe__Berlin, "2025-06-06 17:00");
        assert_eq!(
            policy.due(&cal, Deadline::FirstResponse, start),
            Some(local(Tz::Europe__Berlin, "2025-06-09 12:00"))
        );
        assert_eq!(policy.due(&cal, Deadline::NextResponse, start), None);
        assert_eq!(policy.target(Deadline::Resolution), Some(40 * HOUR));
        for deadline in Deadline::ALL {
            assert_eq!(deadline.as_str().parse::<Deadline>(), Ok(deadline));
        }
        assert_eq!(
            "later".parse::<Deadline>(),
            Err(UnknownDeadline("later".to_owned()))
        );
    }

    #[test]
    fn parse_hours_accepts_config_forms() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap();
        for (text, want) in [
            ("09:00-18:00", vec![(t(9, 0), t(18, 0))]),
            (
                "09:00-12:00, 13:00-18:00",
                vec![(t(9, 0), t(12, 0)), (t(13, 0), t(18, 0))],
            ),
            ("9:00 - 17:30", vec![(t(9, 0), t(17, 30))]),
            ("00:00-24:00", vec![(t(0, 0), t(0, 0))]),
            ("22:00-24:00:00", vec![(t(22, 0), t(0, 0))]),
            ("", vec![]),
            ("  Closed ", vec![]),
        ] {
            assert_eq!(Calendar::parse_hours(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn parse_hours_refuses_nonsense() {
        for (text, want) in [
            ("9-18", "invalid working hours \"9-18\""),
            ("09:00", "invalid working hours \"09:00\""),
            ("24:00-24:00", "invalid working hours"),
            ("09:00-24:01", "invalid working hours"),
            ("09:60-10:00", "invalid working hours"),
            ("09:00-18:00,", "invalid working hours"),
            ("+9:00-18:00", "invalid working hours"),
            ("09:00-18:00-19:00", "invalid working hours"),
            (
                "18:00-09:00",
                "working period 18:00-09:00 does not end after it starts",
            ),
            (
                "10:00-10:00",
                "working period 10:00-10:00 does not end after it starts",
            ),
            (
                "09:00-12:00,11:00-13:00",
                "working periods 09:00-12:00 and 11:00-13:00 overlap",
            ),
        ] {
            let err = Calendar::parse_hours(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn new_validates_the_week() {
        let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
        let week = |monday: Vec<(NaiveTime, NaiveTime)>| {
            let mut week: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
            week[0] = monday;
            week
        };
        for (monday, want) in [
            (vec![], "calendar has no working hours on any weekday"),
            (
                vec![(t(12), t(9))],
                "working period 12:00-09:00 on Mon does not end after it starts",
            ),
            (
                vec![(t(13), t(18)), (t(9), t(14))],
                "working periods 09:00-14:00 and 13:00-18:00 on Mon overlap",
            ),
        ] {
            let err = Calendar::new(Tz::UTC, week(monday), vec![]).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
        // Touching periods are fine and merge; a whole week of whole days is 24×7.
        let cal =
            Calendar::new(Tz::UTC, week(vec![(t(9), t(12)), (t(12), t(14))]), vec![]).unwrap();
        assert_eq!(
            cal.week[0],
            vec![Period {
                start: 9 * 3600,
                end: 14 * 3600
            }]
        );
        let full = every_day(Tz::UTC, "00:00-12:00,12:00-24:00", &[]);
        assert!(full.all_time);
        assert_eq!(full, Calendar::always());
    }

    #[test]
    fn searches_stop_at_the_horizon() {
        // Working only on Wednesdays, and every Wednesday for 30 years is a holiday.
        let mut week: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        week[2] = hours("09:00-18:00");
        let holidays = (0..30 * 53)
            .filter_map(|n| date("2025-06-11").checked_add_days(chrono::Days::new(7 * n)))
            .collect();
        let cal = Calendar::new(Tz::UTC, week, holidays).unwrap();
        let start = utc("2025-06-09 00:00");
        let cap = start + TimeDelta::from_std(HORIZON).unwrap();
        assert_eq!(cal.add(start, HOUR), cap);
        assert_eq!(cal.between(start, DateTime::<Utc>::MAX_UTC), Duration::ZERO);
        // `between` counts no further than the horizon; 24×7 likewise.
        let far = utc("2100-01-01 00:00");
        assert_eq!(Calendar::always().between(start, far), HORIZON);
        assert_eq!(Calendar::always().add(start, HORIZON + HOUR), cap);
        let berlin = berlin();
        assert_eq!(berlin.between(start, far), berlin.between(start, cap));
        assert_eq!(berlin.add(start, 20_000 * 9 * HOUR), cap);
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let instants = [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::MAX_UTC - TimeDelta::days(3),
            DateTime::<Utc>::MIN_UTC + TimeDelta::days(3),
            DateTime::from_timestamp(59, 1_500_000_000).unwrap(), // a leap second
        ];
        let durations = [Duration::ZERO, HOUR, HORIZON, Duration::MAX];
        for cal in [
            Calendar::always(),
            berlin(),
            every_day(Tz::Pacific__Apia, "00:00-24:00", &["2011-12-30"]),
        ] {
            for &a in &instants {
                cal.is_working(a);
                for &d in &durations {
                    assert!(cal.add(a, d) >= a);
                    resume(&cal, a, d, HOUR);
                }
                for &b in &instants {
                    cal.between(a, b);
                    standing(&cal, a, b, a, 0.8);
                }
            }
        }
    }

    fn any_tz() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            Tz::UTC,
            Tz::Europe__Berlin,
            Tz::Asia__Shanghai,
            Tz::America__New_York,
            Tz::America__Sao_Paulo,
            Tz::Australia__Lord_Howe,
            Tz::Pacific__Apia,
            Tz::Asia__Kathmandu,
        ])
    }

    /// Random calendars: per day up to three periods on a quarter-hour grid, some holidays.
    fn any_calendar() -> impl Strategy<Value = Calendar> {
        let quarter = |q: u32| to_time(q * 900);
        let day = prop::collection::btree_set(0u32..=96, 0..7).prop_map(move |marks| {
            let marks: Vec<u32> = marks.into_iter().collect();
            marks
                .chunks_exact(2)
                .map(|p| (quarter(p[0]), quarter(p[1])))
                .collect::<Vec<_>>()
        });
        let holidays = prop::collection::vec(0u64..15_000, 0..30);
        (any_tz(), prop::array::uniform7(day), holidays).prop_filter_map(
            "a week without working hours",
            |(tz, week, holidays)| {
                let base = date("2000-01-01");
                let holidays = holidays
                    .into_iter()
                    .filter_map(|n| base.checked_add_days(chrono::Days::new(n)))
                    .collect();
                Calendar::new(tz, week, holidays).ok()
            },
        )
    }

    fn fixed_calendar() -> impl Strategy<Value = Calendar> {
        prop::sample::select(vec![
            berlin(),
            weekdays(
                Tz::Asia__Shanghai,
                "09:00-12:00,13:00-18:00",
                &["2025-10-01"],
            ),
            every_day(Tz::Europe__Berlin, "00:00-24:00", &["1999-01-01"]),
            every_day(Tz::Europe__Berlin, "02:00-03:00", &[]),
            Calendar::always(),
        ])
    }

    proptest! {
        #[test]
        fn between_undoes_add(
            cal in prop_oneof![fixed_calendar(), any_calendar()],
            start_minute in 15_778_080i64..37_869_120, // 2000-01-01 .. 2042-01-01
            minutes in 0u64..=60_000,
        ) {
            let start = DateTime::from_timestamp(start_minute * 60, 0).unwrap();
            let business = MIN * u32::try_from(minutes).unwrap();
            let due = cal.add(start, business);
            prop_assert!(due >= start);
            if due < horizon_end(start) {
                prop_assert_eq!(cal.between(start, due), business);
                // Nothing earlier would do: one second less falls short.
                if !business.is_zero() {
                    let earlier = due - TimeDelta::seconds(1);
                    prop_assert!(cal.between(start, earlier) < business);
                }
            } else {
                prop_assert!(cal.between(start, due) <= business);
            }
        }

        #[test]
        fn no_panic_on_arbitrary_input(
            cal in prop_oneof![fixed_calendar(), any_calendar()],
            a in 0i64..7_258_118_400, // 1970 .. 2200
            b in 0i64..7_258_118_400,
            nanos in 0u32..2_000_000_000,
            business in 0u64..3_600_000_000_000_000, // up to 1000 hours, in nanoseconds
            share in any::<f64>(),
        ) {
            let a = DateTime::from_timestamp(a, nanos)
                .or_else(|| DateTime::from_timestamp(a, nanos % 1_000_000_000))
                .unwrap();
            let b = DateTime::from_timestamp(b, 0).unwrap();
            let business = Duration::from_nanos(business);
            let due = cal.add(a, business);
            prop_assert!(due >= a);
            cal.between(a, b);
            cal.is_working(a);
            standing(&cal, a, due, b, share);
            resume(&cal, b, business, Duration::from_nanos(nanos.into()));
        }
    }
}
