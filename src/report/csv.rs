//! The report as CSV (RFC 4180): one block per section, blocks separated by an empty line.
//!
//! Every row of a block, its header included, starts with the section's name, so one
//! section is `grep '^volume,'` away and a spreadsheet sorts them apart:
//! - `summary,key,value`: period, time zone, bucket, queue, generated_at.
//! - `volume,period,queue,new,reopened,resolved,closed`: per bucket and queue (`*`: all
//!   queues of the bucket), then the whole period (`period` = `total`).
//! - `times,measure,queue,count,business_median_secs,business_p90_secs,wall_median_secs,
//!   wall_p90_secs`: `measure` is `first_response` or `resolution`; `queue` `*` for all.
//! - `histogram,measure,bin,upto_secs,count`: business time bins.
//! - `sla,queue,deadline,met,breached,at_risk,running,compliance`.
//! - `triage,tickets,suggested,triaged,share_triaged,applied,corrected,accuracy`.
//! - `satisfaction,surveys_sent,responded,response_rate,responses,average,rated_1,…,rated_5`.
//! - `agents,agent,tickets_handled,answers,first_responses,first_response_median_secs,
//!   first_response_median_wall_secs,open_now,capacity,satisfaction_responses,
//!   satisfaction_average`.
//! - `longest_open,id,subject,status,queue,assignee,created_at,age_secs,business_age_secs`.
//! - `top_problems,rank,terms,count,previous,change,trend,examples` (terms and examples
//!   space-separated).
//! - `self_service,status_requests,articles_suggested,deflected,deflection_rate`.
//!
//! Empty cells are missing values. Text from customers (subjects) that a spreadsheet would
//! run as a formula (`=`, `+`, `-`, `@`, tab, CR first) gets a leading `'`.

use super::{Counts, Percentiles, Report, Times};

/// One cell.
enum Cell {
    /// Our own words and numbers: written as they are (quoted if needed).
    Plain(String),
    /// Text that came from outside: defused against formula injection.
    Foreign(String),
}

fn plain(v: impl ToString) -> Cell {
    Cell::Plain(v.to_string())
}

fn opt<T: ToString>(v: Option<T>) -> Cell {
    Cell::Plain(v.map(|v| v.to_string()).unwrap_or_default())
}

fn field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn row(out: &mut String, section: &str, cells: Vec<Cell>) {
    out.push_str(section);
    for cell in cells {
        out.push(',');
        match cell {
            Cell::Plain(t) => field(out, &t),
            Cell::Foreign(t) => {
                if t.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                    field(out, &format!("'{t}"));
                } else {
                    field(out, &t);
                }
            }
        }
    }
    out.push_str("\r\n");
}

fn header(out: &mut String, section: &str, names: &[&str]) {
    if !out.is_empty() {
        out.push_str("\r\n");
    }
    row(out, section, names.iter().map(plain).collect());
}

fn counts(period: &str, queue: &str, c: &Counts) -> Vec<Cell> {
    vec![
        plain(period),
        Cell::Foreign(queue.to_owned()),
        plain(c.new),
        plain(c.reopened),
        plain(c.resolved),
        plain(c.closed),
    ]
}

fn times(out: &mut String, measure: &str, t: &Times) {
    let cells = |queue: &str, count: u64, b: &Percentiles, w: &Percentiles| {
        vec![
            plain(measure),
            Cell::Foreign(queue.to_owned()),
            plain(count),
            opt(b.median_secs),
            opt(b.p90_secs),
            opt(w.median_secs),
            opt(w.p90_secs),
        ]
    };
    row(out, "times", cells("*", t.count, &t.business, &t.wall));
    for q in &t.queues {
        row(out, "times", cells(&q.queue, q.count, &q.business, &q.wall));
    }
}

/// The report as CSV sections (see the module doc).
pub fn to_csv(r: &Report) -> String {
    let mut out = String::new();
    header(&mut out, "summary", &["key", "value"]);
    for (k, v) in [
        ("from", r.from.clone()),
        ("to", r.to.clone()),
        ("previous_from", r.previous_from.clone()),
        ("timezone", r.timezone.clone()),
        ("by", r.by.to_string()),
        ("queue", r.queue.clone().unwrap_or_else(|| "*".to_owned())),
        ("generated_at", r.generated_at.clone()),
    ] {
        row(&mut out, "summary", vec![plain(k), Cell::Foreign(v)]);
    }

    header(
        &mut out,
        "volume",
        &["period", "queue", "new", "reopened", "resolved", "closed"],
    );
    for p in &r.volume.periods {
        row(&mut out, "volume", counts(&p.label, "*", &p.counts));
        for q in &p.queues {
            row(&mut out, "volume", counts(&p.label, &q.queue, &q.counts));
        }
    }
    row(&mut out, "volume", counts("total", "*", &r.volume.total));
    for q in &r.volume.queues {
        row(&mut out, "volume", counts("total", &q.queue, &q.counts));
    }

    header(
        &mut out,
        "times",
        &[
            "measure",
            "queue",
            "count",
            "business_median_secs",
            "business_p90_secs",
            "wall_median_secs",
            "wall_p90_secs",
        ],
    );
    times(&mut out, "first_response", &r.first_response);
    times(&mut out, "resolution", &r.resolution);

    header(
        &mut out,
        "histogram",
        &["measure", "bin", "upto_secs", "count"],
    );
    for (measure, t) in [
        ("first_response", &r.first_response),
        ("resolution", &r.resolution),
    ] {
        for b in &t.histogram {
            row(
                &mut out,
                "histogram",
                vec![
                    plain(measure),
                    plain(&b.label),
                    opt(b.upto_secs),
                    plain(b.count),
                ],
            );
        }
    }

    header(
        &mut out,
        "sla",
        &[
            "queue",
            "deadline",
            "met",
            "breached",
            "at_risk",
            "running",
            "compliance",
        ],
    );
    for s in &r.sla {
        row(
            &mut out,
            "sla",
            vec![
                Cell::Foreign(s.queue.clone()),
                plain(&s.deadline),
                plain(s.met),
                plain(s.breached),
                plain(s.at_risk),
                plain(s.running),
                opt(s.compliance),
            ],
        );
    }

    header(
        &mut out,
        "triage",
        &[
            "tickets",
            "suggested",
            "triaged",
            "share_triaged",
            "applied",
            "corrected",
            "accuracy",
        ],
    );
    let t = &r.triage;
    row(
        &mut out,
        "triage",
        vec![
            plain(t.tickets),
            plain(t.suggested),
            plain(t.triaged),
            opt(t.share_triaged),
            plain(t.applied),
            plain(t.corrected),
            opt(t.accuracy),
        ],
    );

    header(
        &mut out,
        "satisfaction",
        &[
            "surveys_sent",
            "responded",
            "response_rate",
            "responses",
            "average",
            "rated_1",
            "rated_2",
            "rated_3",
            "rated_4",
            "rated_5",
        ],
    );
    let s = &r.satisfaction;
    let mut cells = vec![
        plain(s.surveys_sent),
        plain(s.responded),
        opt(s.response_rate),
        plain(s.responses),
        opt(s.average),
    ];
    cells.extend(s.distribution.iter().map(plain));
    row(&mut out, "satisfaction", cells);

    header(
        &mut out,
        "agents",
        &[
            "agent",
            "tickets_handled",
            "answers",
            "first_responses",
            "first_response_median_secs",
            "first_response_median_wall_secs",
            "open_now",
            "capacity",
            "satisfaction_responses",
            "satisfaction_average",
        ],
    );
    for a in &r.agents {
        row(
            &mut out,
            "agents",
            vec![
                Cell::Foreign(a.agent.clone()),
                plain(a.tickets_handled),
                plain(a.answers),
                plain(a.first_responses),
                opt(a.first_response_median_secs),
                opt(a.first_response_median_wall_secs),
                plain(a.open_now),
                opt(a.capacity),
                plain(a.satisfaction_responses),
                opt(a.satisfaction_average),
            ],
        );
    }

    header(
        &mut out,
        "longest_open",
        &[
            "id",
            "subject",
            "status",
            "queue",
            "assignee",
            "created_at",
            "age_secs",
            "business_age_secs",
        ],
    );
    for t in &r.longest_open {
        row(
            &mut out,
            "longest_open",
            vec![
                plain(t.id),
                Cell::Foreign(t.subject.clone()),
                plain(&t.status),
                Cell::Foreign(t.queue.clone()),
                Cell::Foreign(t.assignee.clone().unwrap_or_default()),
                plain(&t.created_at),
                plain(t.age_secs),
                plain(t.business_age_secs),
            ],
        );
    }

    header(
        &mut out,
        "top_problems",
        &[
            "rank", "terms", "count", "previous", "change", "trend", "examples",
        ],
    );
    for (i, p) in r.top_problems.iter().enumerate() {
        let examples: Vec<String> = p.examples.iter().map(|id| id.to_string()).collect();
        row(
            &mut out,
            "top_problems",
            vec![
                plain(i + 1),
                Cell::Foreign(p.terms.join(" ")),
                plain(p.count),
                plain(p.previous),
                plain(p.change),
                plain(p.trend.as_str()),
                plain(examples.join(" ")),
            ],
        );
    }

    let k = &r.self_service;
    header(
        &mut out,
        "self_service",
        &[
            "status_requests",
            "articles_suggested",
            "deflected",
            "deflection_rate",
        ],
    );
    row(
        &mut out,
        "self_service",
        vec![
            plain(k.status_requests),
            plain(k.articles_suggested),
            plain(k.deflected),
            opt(k.deflection_rate),
        ],
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_defused() {
        let mut out = String::new();
        row(
            &mut out,
            "s",
            vec![
                plain("a,b"),
                plain("say \"hi\""),
                Cell::Foreign("=HYPERLINK(\"x\")".to_owned()),
                Cell::Foreign("-1".to_owned()),
                plain(-1),
                Cell::Foreign("line\nbreak".to_owned()),
                plain(""),
            ],
        );
        assert_eq!(
            out,
            "s,\"a,b\",\"say \"\"hi\"\"\",\"'=HYPERLINK(\"\"x\"\")\",'-1,-1,\"line\nbreak\",\r\n"
        );
    }
}
