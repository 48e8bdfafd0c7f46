//! The daemon's timed jobs: SLA sweep, auto-close, archive, digests.
//!
//! - Cron expressions with seconds and day names (`0 0 9 * * Mon-Fri`) from `[schedule]`,
//!   read in `[schedule] timezone`.
//! - Each job remembers the last occurrence it ran (`schedule_runs`), committed with the
//!   job's effects: a restart never fires an occurrence twice, and an occurrence that fell
//!   due while the daemon was down runs once after start (catch-up once, however many
//!   were missed). A job seen for the first time starts counting from now.
//! - [`due`] is pure: the clock is an argument, so tests cover days in milliseconds.

use chrono::{DateTime, Utc};

use crate::config::Schedule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    SlaSweep,
    AutoClose,
    Archive,
    Digest,
    /// `[triage] schedule` (issue 16): marked due by the writer like the others, but the
    /// training itself runs outside it (the daemon starts it on a blocking thread).
    TriageTrain,
}

impl Job {
    pub const ALL: [Job; 4] = [Job::SlaSweep, Job::AutoClose, Job::Archive, Job::Digest];
    pub fn as_str(self) -> &'static str {
        match self {
            Job::SlaSweep => "sla_sweep",
            Job::AutoClose => "auto_close",
            Job::Archive => "archive",
            Job::Digest => "digest",
            Job::TriageTrain => "triage_train",
        }
    }
    pub fn schedule(self, s: &Schedule) -> Option<&cron::Schedule> {
        match self {
            Job::SlaSweep => s.sla_sweep.as_ref(),
            Job::AutoClose => s.auto_close.as_ref(),
            Job::Archive => s.archive.as_ref(),
            Job::Digest => s.digest.as_ref(),
            Job::TriageTrain => None,
        }
    }
}

/// At most this many occurrences are stepped over when catching up (a year of a
/// once-a-minute job); past it, the job simply runs now.
const MAX_STEPS: usize = 600_000;

/// The occurrence of `schedule` due at `now` after `last_run`, if any: the latest one
/// not after `now`, so that a long downtime still runs the job once.
pub fn due(
    schedule: &cron::Schedule,
    tz: chrono_tz::Tz,
    last_run: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut latest = None;
    for (i, t) in schedule.after(&last_run.with_timezone(&tz)).enumerate() {
        let t = t.with_timezone(&Utc);
        if t > now {
            break;
        }
        latest = Some(t);
        if i >= MAX_STEPS {
            return Some(now);
        }
    }
    latest
}

/// The next occurrence after `t` (for sleeping until then).
pub fn next_after(
    schedule: &cron::Schedule,
    tz: chrono_tz::Tz,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    schedule
        .after(&t.with_timezone(&tz))
        .next()
        .map(|n| n.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
    }

    #[test]
    fn due_occurrences_and_catch_up_once() {
        let every_5 = cron::Schedule::from_str("0 */5 * * * *").unwrap();
        let utc = chrono_tz::UTC;
        assert_eq!(due(&every_5, utc, at(25, 10, 0), at(25, 10, 4)), None);
        assert_eq!(
            due(&every_5, utc, at(25, 10, 0), at(25, 10, 5)),
            Some(at(25, 10, 5))
        );
        // Down for a day: one run, for the latest occurrence.
        assert_eq!(
            due(&every_5, utc, at(24, 10, 0), at(25, 10, 7)),
            Some(at(25, 10, 5))
        );
        // Weekdays at 09:00 Shanghai time = 01:00 UTC; Saturday 28 Nov and Sunday are skipped.
        let digest = cron::Schedule::from_str("0 0 9 * * Mon-Fri").unwrap();
        let sh = chrono_tz::Asia::Shanghai;
        assert_eq!(next_after(&digest, sh, at(27, 2, 0)), Some(at(30, 1, 0)));
        assert_eq!(due(&digest, sh, at(27, 2, 0), at(29, 23, 0)), None);
        assert_eq!(
            due(&digest, sh, at(27, 2, 0), at(30, 1, 0)),
            Some(at(30, 1, 0))
        );
    }
}
