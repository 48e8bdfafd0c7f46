//! The report for a terminal.

use std::fmt::Write;

use super::{Percentiles, Report, Times};

/// `1h 45m`, `2d 3h`, `45m`, `30s`: the two largest units.
pub(crate) fn human(secs: i64) -> String {
    let secs = secs.max(0);
    let units = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];
    let mut parts = Vec::new();
    let mut rest = secs;
    for (name, n) in units {
        if rest >= n {
            parts.push(format!("{}{name}", rest / n));
            rest %= n;
        } else if !parts.is_empty() {
            // Keep the two units adjacent: 1d 0h, not 1d 5m.
            parts.push(format!("0{name}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    match parts.as_slice() {
        [] => "0s".to_owned(),
        [one] => one.clone(),
        [a, b] if b.starts_with('0') => a.clone(),
        [a, b, ..] => format!("{a} {b}"),
    }
}

fn opt(secs: Option<i64>) -> String {
    secs.map_or_else(|| "-".to_owned(), human)
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

fn times_line(name: &str, t: &Times) -> String {
    let p = |b: &Percentiles, w: &Percentiles| {
        format!(
            "median {} business ({} wall), p90 {} business ({} wall)",
            opt(b.median_secs),
            opt(w.median_secs),
            opt(b.p90_secs),
            opt(w.p90_secs)
        )
    };
    let mut s = format!("{name}: {} tickets, {}\n", t.count, p(&t.business, &t.wall));
    if t.queues.len() > 1 {
        for q in &t.queues {
            let _ = writeln!(
                s,
                "  {}: {} tickets, {}",
                q.queue,
                q.count,
                p(&q.business, &q.wall)
            );
        }
    }
    s
}

/// A plain-text summary of every section.
pub fn to_text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "postdesk report {} .. {} ({}, by {}), {}",
        r.from,
        r.to,
        r.timezone,
        r.by,
        r.queue
            .as_deref()
            .map_or_else(|| "all queues".to_owned(), |q| format!("queue {q}"))
    );
    let t = &r.volume.total;
    let _ = writeln!(
        s,
        "\nVolume: {} new, {} reopened, {} resolved, {} closed",
        t.new, t.reopened, t.resolved, t.closed
    );
    let _ = writeln!(
        s,
        "  {:<12} {:>6} {:>9} {:>9} {:>7}",
        "period", "new", "reopened", "resolved", "closed"
    );
    for p in &r.volume.periods {
        let c = &p.counts;
        let _ = writeln!(
            s,
            "  {:<12} {:>6} {:>9} {:>9} {:>7}",
            p.label, c.new, c.reopened, c.resolved, c.closed
        );
    }
    for q in &r.volume.queues {
        let c = &q.counts;
        let _ = writeln!(
            s,
            "  queue {}: {} new, {} reopened, {} resolved, {} closed",
            q.queue, c.new, c.reopened, c.resolved, c.closed
        );
    }
    s.push('\n');
    s.push_str(&times_line("First response", &r.first_response));
    s.push_str(&times_line("Resolution", &r.resolution));
    s.push_str("\nSLA (deadlines started in the period, as they stand now):\n");
    if r.sla.is_empty() {
        s.push_str("  no deadlines\n");
    }
    for row in &r.sla {
        let _ = writeln!(
            s,
            "  {} {}: met {}, breached {}, at risk {}, running {}, compliance {}",
            row.queue,
            row.deadline,
            row.met,
            row.breached,
            row.at_risk,
            row.running,
            percent(row.compliance)
        );
    }
    let tr = &r.triage;
    if tr.suggested > 0 {
        let _ = writeln!(
            s,
            "\nTriage: {} of {} new tickets triaged automatically ({}); {} guesses applied, {} corrected by agents; accuracy in production {}",
            tr.triaged,
            tr.tickets,
            percent(tr.share_triaged),
            tr.applied,
            tr.corrected,
            percent(tr.accuracy),
        );
    }
    let sat = &r.satisfaction;
    let _ = writeln!(
        s,
        "\nSatisfaction: {} surveys sent, {} answered ({}); {} ratings, average {}; 1-5: {}",
        sat.surveys_sent,
        sat.responded,
        percent(sat.response_rate),
        sat.responses,
        sat.average
            .map_or_else(|| "-".to_owned(), |a| format!("{a:.2}")),
        sat.distribution
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        s,
        "\nAgents:\n  {:<16} {:>8} {:>8} {:>14} {:>9} {:>7}",
        "agent", "tickets", "answers", "first resp.", "open now", "rating"
    );
    for a in &r.agents {
        let _ = writeln!(
            s,
            "  {:<16} {:>8} {:>8} {:>14} {:>9} {:>7}",
            a.agent,
            a.tickets_handled,
            a.answers,
            opt(a.first_response_median_secs),
            match a.capacity {
                Some(c) => format!("{}/{c}", a.open_now),
                None => a.open_now.to_string(),
            },
            a.satisfaction_average
                .map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"))
        );
    }
    s.push_str("\nLongest-running open tickets:\n");
    if r.longest_open.is_empty() {
        s.push_str("  none\n");
    }
    for t in &r.longest_open {
        let _ = writeln!(
            s,
            "  #{:<7} {:>9} {:<8} {:<12} {:<12} {}",
            t.id.get(),
            human(t.age_secs),
            t.status,
            t.queue,
            t.assignee.as_deref().unwrap_or("-"),
            t.subject
        );
    }
    s.push_str("\nTop problems (tickets in the period, change against the previous one):\n");
    if r.top_problems.is_empty() {
        s.push_str("  none\n");
    }
    for p in &r.top_problems {
        let examples: Vec<String> = p.examples.iter().map(|id| format!("#{id}")).collect();
        let _ = writeln!(
            s,
            "  {:>5} ({:+}, {}) {} - {}",
            p.count,
            p.change,
            p.trend.as_str(),
            p.terms.join(", "),
            examples.join(" ")
        );
    }
    let k = &r.self_service;
    let _ = writeln!(
        s,
        "\nSelf-service: {} status requests by mail; articles listed in {} acknowledgements, {} \
         resolved by the customer (deflected{})",
        k.status_requests,
        k.articles_suggested,
        k.deflected,
        k.deflection_rate
            .map_or(String::new(), |x| format!(", {:.0}%", x * 100.0))
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        for (secs, want) in [
            (0, "0s"),
            (-5, "0s"),
            (30, "30s"),
            (60, "1m"),
            (90, "1m 30s"),
            (3_600, "1h"),
            (6_300, "1h 45m"),
            (63_900, "17h 45m"),
            (86_400, "1d"),
            (90_000, "1d 1h"),
            (86_700, "1d"),
            (795_600, "9d 5h"),
        ] {
            assert_eq!(human(secs), want, "{secs}");
        }
    }
}
