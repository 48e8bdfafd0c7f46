//! The report as one self-contained HTML page: inline CSS, charts as inline SVG, no
//! script, no external asset (it opens from a mail attachment or a file share as it is).
//!
//! Each chart is `<svg class="chart" data-chart="NAME">` with NAME one of `volume`,
//! `response`, `sla`, `satisfaction`, `problems`; bars carry a `<title>` (the browser's
//! tooltip). A chart without data still renders its frame and says so. Every text from
//! the database is escaped.

use std::fmt::Write;

use super::text::human;
use super::{Counts, Report};

const BLUE: &str = "#3366cc";
const ORANGE: &str = "#f28e2b";
const GREEN: &str = "#2e9e5b";
const GREY: &str = "#9aa3ad";
const RED: &str = "#d64541";
const AMBER: &str = "#f2b632";
const PURPLE: &str = "#8e5bb5";
const LIGHT: &str = "#c9d3e6";

/// Escapes text for HTML and SVG content and attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An axis for counts up to `max`: (top, step), the step 1, 2 or 5 × 10^k so that four or
/// five whole-number ticks cover `max`.
fn scale(max: u64) -> (u64, u64) {
    let mut step = 1;
    'search: loop {
        for m in [1, 2, 5] {
            if m * step * 5 >= max {
                step *= m;
                break 'search;
            }
        }
        step *= 10;
    }
    let top = max.div_ceil(step).max(1) * step;
    (top, step)
}

/// An SVG chart being written.
struct Svg {
    out: String,
    width: f64,
    height: f64,
}

impl Svg {
    fn new(name: &str, title: &str, width: f64, height: f64) -> Svg {
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg class=\"chart\" data-chart=\"{name}\" xmlns=\"http://www.w3.org/2000/svg\" \
             viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" \
             aria-label=\"{t}\"><title>{t}</title>\
             <rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>",
            t = esc(title)
        );
        Svg { out, width, height }
    }

    fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, tip: &str) {
        let _ = write!(
            self.out,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{}</title></rect>",
            w.max(0.0),
            h.max(0.0),
            esc(tip)
        );
    }

    fn text(&mut self, x: f64, y: f64, anchor: &str, class: &str, text: &str) {
        let _ = write!(
            self.out,
            "<text x=\"{x:.1}\" y=\"{y:.1}\" text-anchor=\"{anchor}\" class=\"{class}\">{}</text>",
            esc(text)
        );
    }

    fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) {
        let _ = write!(
            self.out,
            "<line x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"{stroke}\" stroke-width=\"1\"/>"
        );
    }

    fn legend(&mut self, x: f64, y: f64, items: &[(&str, &str)]) {
        let mut x = x;
        for (label, color) in items {
            self.rect(x, y - 10.0, 12.0, 12.0, color, label);
            self.text(x + 16.0, y, "start", "legend", label);
            x += 24.0 + 7.5 * label.chars().count() as f64;
        }
    }

    fn no_data(&mut self) {
        let (x, y) = (self.width / 2.0, self.height / 2.0);
        self.text(x, y, "middle", "empty", "no data in this period");
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// Grouped vertical bars: one group per label, one bar per series.
fn grouped_bars(
    name: &str,
    title: &str,
    labels: &[String],
    series: &[(&str, &str, Vec<u64>)],
) -> String {
    let (width, height) = (960.0, 320.0);
    let (left, right, top, bottom) = (48.0, 16.0, 36.0, 48.0);
    let mut svg = Svg::new(name, title, width, height);
    svg.legend(
        left,
        20.0,
        &series.iter().map(|(l, c, _)| (*l, *c)).collect::<Vec<_>>(),
    );
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .max()
        .unwrap_or(0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let (y_max, step) = scale(max);
    let mut v = 0;
    while v <= y_max {
        let y = top + plot_h - plot_h * v as f64 / y_max as f64;
        svg.line(left, y, width - right, y, "#e3e6ea");
        svg.text(left - 6.0, y + 4.0, "end", "axis", &v.to_string());
        v += step;
    }
    svg.line(left, top + plot_h, width - right, top + plot_h, "#666666");
    if max == 0 || labels.is_empty() {
        svg.no_data();
        return svg.finish();
    }
    let group_w = plot_w / labels.len() as f64;
    let bar_w = (group_w * 0.8 / series.len() as f64).max(1.0);
    // At most ~16 labels fit under the axis.
    let every = labels.len().div_ceil(16).max(1);
    for (i, label) in labels.iter().enumerate() {
        let x0 = left + group_w * i as f64 + group_w * 0.1;
        for (s, (sname, color, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0);
            let h = plot_h * v as f64 / y_max as f64;
            svg.rect(
                x0 + bar_w * s as f64,
                top + plot_h - h,
                bar_w,
                h,
                color,
                &format!("{label}: {v} {sname}"),
            );
        }
        if i % every == 0 {
            svg.text(
                left + group_w * (i as f64 + 0.5),
                top + plot_h + 18.0,
                "middle",
                "axis",
                label,
            );
        }
    }
    svg.finish()
}

fn volume_chart(r: &Report) -> String {
    let labels: Vec<String> = r.volume.periods.iter().map(|p| p.label.clone()).collect();
    let pick = |f: fn(&Counts) -> u64| r.volume.periods.iter().map(|p| f(&p.counts)).collect();
    grouped_bars(
        "volume",
        &format!("Tickets per {}", r.by),
        &labels,
        &[
            ("new", BLUE, pick(|c| c.new)),
            ("reopened", ORANGE, pick(|c| c.reopened)),
            ("resolved", GREEN, pick(|c| c.resolved)),
            ("closed", GREY, pick(|c| c.closed)),
        ],
    )
}

fn response_chart(r: &Report) -> String {
    let labels: Vec<String> = r
        .first_response
        .histogram
        .iter()
        .map(|b| b.label.clone())
        .collect();
    let counts = |t: &super::Times| t.histogram.iter().map(|b| b.count).collect();
    grouped_bars(
        "response",
        "Response and resolution times (business time)",
        &labels,
        &[
            ("first response", BLUE, counts(&r.first_response)),
            ("resolution", PURPLE, counts(&r.resolution)),
        ],
    )
}

/// Horizontal stacked bars: one row per label, segments in order.
fn stacked_rows(
    name: &str,
    title: &str,
    rows: &[(String, Vec<u64>, String)],
    segments: &[(&str, &str)],
) -> String {
    let row_h = 30.0;
    let (left, right, top) = (230.0, 90.0, 40.0);
    let width = 960.0;
    let height = top + row_h * rows.len().max(2) as f64 + 16.0;
    let mut svg = Svg::new(name, title, width, height);
    svg.legend(left, 20.0, segments);
    if rows.is_empty() {
        svg.no_data();
        return svg.finish();
    }
    let max = rows
        .iter()
        .map(|(_, v, _)| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_w = width - left - right;
    for (i, (label, values, note)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        svg.text(left - 8.0, y + 19.0, "end", "label", label);
        let mut x = left;
        for ((sname, color), v) in segments.iter().zip(values) {
            let w = plot_w * *v as f64 / max as f64;
            if *v > 0 {
                svg.rect(
                    x,
                    y + 5.0,
                    w,
                    row_h - 10.0,
                    color,
                    &format!("{label}: {v} {sname}"),
                );
                if w > 18.0 {
                    svg.text(x + w / 2.0, y + 19.0, "middle", "inbar", &v.to_string());
                }
            }
            x += w;
        }
        svg.text(x + 8.0, y + 19.0, "start", "label", note);
    }
    svg.finish()
}

fn sla_chart(r: &Report) -> String {
    let rows: Vec<(String, Vec<u64>, String)> = r
        .sla
        .iter()
        .map(|s| {
            (
                format!("{} · {}", s.queue, s.deadline.replace('_', " ")),
                vec![s.met, s.at_risk, s.breached, s.running],
                s.compliance
                    .map_or_else(|| "-".to_owned(), |c| format!("{:.0}% met", c * 100.0)),
            )
        })
        .collect();
    stacked_rows(
        "sla",
        "SLA compliance (deadlines started in the period)",
        &rows,
        &[
            ("met", GREEN),
            ("at risk", AMBER),
            ("breached", RED),
            ("running", GREY),
        ],
    )
}

fn satisfaction_chart(r: &Report) -> String {
    let s = &r.satisfaction;
    let (width, height) = (960.0, 260.0);
    let (left, top, plot_h) = (48.0, 40.0, 170.0);
    let mut svg = Svg::new("satisfaction", "Satisfaction ratings", width, height);
    let summary = format!(
        "{} ratings, average {}; {} of {} surveys answered ({})",
        s.responses,
        s.average
            .map_or_else(|| "-".to_owned(), |a| format!("{a:.2}")),
        s.responded,
        s.surveys_sent,
        s.response_rate
            .map_or_else(|| "-".to_owned(), |x| format!("{:.0}%", x * 100.0))
    );
    svg.text(left, 22.0, "start", "label", &summary);
    let max = s.distribution.iter().copied().max().unwrap_or(0);
    let (y_max, _) = scale(max);
    svg.line(left, top + plot_h, left + 600.0, top + plot_h, "#666666");
    if max == 0 {
        svg.no_data();
        return svg.finish();
    }
    let colors = [RED, ORANGE, AMBER, "#8cc152", GREEN];
    for (i, n) in s.distribution.iter().enumerate() {
        let h = plot_h * *n as f64 / y_max as f64;
        let x = left + 20.0 + 116.0 * i as f64;
        let stars = "★".repeat(i + 1);
        svg.rect(
            x,
            top + plot_h - h,
            80.0,
            h,
            colors[i],
            &format!("{} rated {}: {n}", stars, i + 1),
        );
        svg.text(
            x + 40.0,
            top + plot_h - h - 6.0,
            "middle",
            "label",
            &n.to_string(),
        );
        svg.text(x + 40.0, top + plot_h + 18.0, "middle", "axis", &stars);
    }
    svg.finish()
}

fn problems_chart(r: &Report) -> String {
    let row_h = 30.0;
    let (left, right, top) = (300.0, 120.0, 40.0);
    let width = 960.0;
    let height = top + row_h * r.top_problems.len().max(2) as f64 + 16.0;
    let mut svg = Svg::new("problems", "Top problems", width, height);
    svg.legend(
        left,
        20.0,
        &[("this period", BLUE), ("previous period", LIGHT)],
    );
    if r.top_problems.is_empty() {
        svg.no_data();
        return svg.finish();
    }
    let max = r
        .top_problems
        .iter()
        .map(|p| p.count.max(p.previous))
        .max()
        .unwrap_or(1)
        .max(1);
    let plot_w = width - left - right;
    for (i, p) in r.top_problems.iter().enumerate() {
        let y = top + row_h * i as f64;
        let label: String = p
            .terms
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(" · ");
        svg.text(left - 8.0, y + 19.0, "end", "label", &label);
        let w = plot_w * p.count as f64 / max as f64;
        let wp = plot_w * p.previous as f64 / max as f64;
        svg.rect(
            left,
            y + 4.0,
            w,
            12.0,
            BLUE,
            &format!("{label}: {} tickets in the period", p.count),
        );
        svg.rect(
            left,
            y + 17.0,
            wp,
            8.0,
            LIGHT,
            &format!("{label}: {} tickets in the previous period", p.previous),
        );
        svg.text(
            left + w.max(wp) + 8.0,
            y + 19.0,
            "start",
            "label",
            &format!("{} ({:+})", p.count, p.change),
        );
    }
    svg.finish()
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans CJK SC','PingFang SC','Microsoft YaHei',sans-serif;margin:24px auto;max-width:1000px;color:#1f2933;background:#f7f8fa}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.period{color:#52606d;margin:0 0 16px}
section{background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:12px 16px;margin:16px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 0;background:#fff;border:1px solid #e3e6ea;border-radius:8px;padding:10px 14px;min-width:110px}
.card b{display:block;font-size:22px}.card span{color:#52606d;font-size:13px}
table{border-collapse:collapse;width:100%;font-size:14px;margin-top:8px}
th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:right}
th:first-child,td:first-child,th.text,td.text{text-align:left}
svg.chart{display:block;max-width:100%;height:auto}
svg text{font-size:12px;fill:#1f2933}
svg text.axis{fill:#52606d}svg text.legend{font-size:13px}
svg text.label{font-size:13px}svg text.inbar{fill:#fff;font-size:12px}
svg text.empty{fill:#9aa3ad;font-size:16px}
";

fn td(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "<td>{}</td>", esc(&v.to_string()));
}

fn td_text(out: &mut String, v: &str) {
    let _ = write!(out, "<td class=\"text\">{}</td>", esc(v));
}

fn opt_secs(v: Option<i64>) -> String {
    v.map_or_else(|| "–".to_owned(), human)
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |x| format!("{:.1}%", x * 100.0))
}

fn card(out: &mut String, value: &str, label: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    );
}

fn cards(out: &mut String, r: &Report) {
    out.push_str("<div class=\"cards\">");
    card(out, &r.volume.total.new.to_string(), "new tickets");
    card(out, &r.volume.total.resolved.to_string(), "resolved");
    card(
        out,
        &opt_secs(r.first_response.business.median_secs),
        "median first response (business)",
    );
    card(
        out,
        &opt_secs(r.resolution.business.median_secs),
        "median resolution (business)",
    );
    let (met, breached) = r
        .sla
        .iter()
        .fold((0, 0), |(m, b), s| (m + s.met, b + s.breached));
    card(
        out,
        &percent(super::ratio(met, met + breached)),
        "SLA deadlines met",
    );
    card(
        out,
        &r.satisfaction
            .average
            .map_or_else(|| "–".to_owned(), |a| format!("{a:.2} / 5")),
        "satisfaction",
    );
    out.push_str("</div>");
}

/// Issue 16: the learnt triage of the period's new tickets.
fn triage_table(out: &mut String, r: &Report) {
    let t = &r.triage;
    out.push_str("<table><tr><th>new tickets</th><th>triaged automatically</th><th>share</th><th>guesses applied</th><th>corrected by agents</th><th>accuracy in production</th></tr><tr>");
    td(out, t.tickets);
    td(out, t.triaged);
    td(out, percent(t.share_triaged));
    td(out, t.applied);
    td(out, t.corrected);
    td(out, percent(t.accuracy));
    out.push_str("</tr></table>");
}

fn times_table(out: &mut String, r: &Report) {
    out.push_str("<table><tr><th>measure</th><th class=\"text\">queue</th><th>tickets</th><th>median (business)</th><th>p90 (business)</th><th>median (wall)</th><th>p90 (wall)</th></tr>");
    for (name, t) in [
        ("first response", &r.first_response),
        ("resolution", &r.resolution),
    ] {
        let rows = std::iter::once(("all", t.count, &t.business, &t.wall)).chain(
            t.queues
                .iter()
                .map(|q| (q.queue.as_str(), q.count, &q.business, &q.wall)),
        );
        for (queue, count, b, w) in rows {
            out.push_str("<tr>");
            td_text(out, name);
            td_text(out, queue);
            td(out, count);
            td(out, opt_secs(b.median_secs));
            td(out, opt_secs(b.p90_secs));
            td(out, opt_secs(w.median_secs));
            td(out, opt_secs(w.p90_secs));
            out.push_str("</tr>");
        }
    }
    out.push_str("</table>");
}

fn volume_table(out: &mut String, r: &Report) {
    out.push_str("<table><tr><th>queue</th><th>new</th><th>reopened</th><th>resolved</th><th>closed</th></tr>");
    let rows = r
        .volume
        .queues
        .iter()
        .map(|q| (q.queue.as_str(), &q.counts))
        .chain(std::iter::once(("all queues", &r.volume.total)));
    for (queue, c) in rows {
        out.push_str("<tr>");
        td_text(out, queue);
        td(out, c.new);
        td(out, c.reopened);
        td(out, c.resolved);
        td(out, c.closed);
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn agents_table(out: &mut String, r: &Report) {
    out.push_str("<table><tr><th>agent</th><th>tickets handled</th><th>answers</th><th>first responses</th><th>median first response (business)</th><th>(wall)</th><th>open now</th><th>ratings</th><th>average rating</th></tr>");
    for a in &r.agents {
        out.push_str("<tr>");
        td_text(out, &a.agent);
        td(out, a.tickets_handled);
        td(out, a.answers);
        td(out, a.first_responses);
        td(out, opt_secs(a.first_response_median_secs));
        td(out, opt_secs(a.first_response_median_wall_secs));
        td(
            out,
            match a.capacity {
                Some(c) => format!("{} / {c}", a.open_now),
                None => a.open_now.to_string(),
            },
        );
        td(out, a.satisfaction_responses);
        td(
            out,
            a.satisfaction_average
                .map_or_else(|| "–".to_owned(), |x| format!("{x:.2}")),
        );
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn open_table(out: &mut String, r: &Report) {
    if r.longest_open.is_empty() {
        out.push_str("<p>No open tickets.</p>");
        return;
    }
    out.push_str("<table><tr><th>ticket</th><th class=\"text\">subject</th><th class=\"text\">status</th><th class=\"text\">queue</th><th class=\"text\">assignee</th><th>age</th><th>business age</th></tr>");
    for t in &r.longest_open {
        out.push_str("<tr>");
        td_text(out, &format!("#{}", t.id));
        td_text(out, &t.subject);
        td_text(out, &t.status);
        td_text(out, &t.queue);
        td_text(out, t.assignee.as_deref().unwrap_or("–"));
        td(out, human(t.age_secs));
        td(out, human(t.business_age_secs));
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

fn self_service_table(out: &mut String, r: &Report) {
    let k = &r.self_service;
    out.push_str("<table><tr><th>status requests by mail</th><th>acknowledgements with articles</th><th>resolved by the customer (deflected)</th><th>deflection rate</th></tr><tr>");
    td(out, k.status_requests);
    td(out, k.articles_suggested);
    td(out, k.deflected);
    td(
        out,
        k.deflection_rate
            .map_or("–".to_owned(), |x| format!("{:.0}%", x * 100.0)),
    );
    out.push_str("</tr></table>");
}

fn problems_table(out: &mut String, r: &Report) {
    if r.top_problems.is_empty() {
        out.push_str("<p>No group of similar tickets in the period.</p>");
        return;
    }
    out.push_str("<table><tr><th>words</th><th>tickets</th><th>previous period</th><th>trend</th><th class=\"text\">examples</th></tr>");
    for p in &r.top_problems {
        out.push_str("<tr>");
        td_text(out, &p.terms.join(", "));
        td(out, p.count);
        td(out, p.previous);
        td(out, format!("{:+} ({})", p.change, p.trend.as_str()));
        let examples: Vec<String> = p.examples.iter().map(|id| format!("#{id}")).collect();
        td_text(out, &examples.join(" "));
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// `2026-11-02 – 2026-11-06` when the period is whole local days, else the local instants.
fn period_text(r: &Report) -> String {
    let tz: chrono_tz::Tz = r.timezone.parse().unwrap_or(chrono_tz::UTC);
    let local = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&tz).naive_local())
    };
    let (Some(from), Some(to)) = (local(&r.from), local(&r.to)) else {
        return format!("{} – {}", r.from, r.to);
    };
    let midnight = chrono::NaiveTime::MIN;
    if from.time() == midnight && to.time() == midnight {
        let last = to.date().pred_opt().unwrap_or(to.date());
        if last == from.date() {
            return from.date().to_string();
        }
        return format!("{} – {last}", from.date());
    }
    format!(
        "{} – {}",
        from.format("%Y-%m-%d %H:%M"),
        to.format("%Y-%m-%d %H:%M")
    )
}

/// One self-contained HTML page (see the module doc).
pub fn to_html(r: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let scope = r
        .queue
        .as_deref()
        .map_or_else(|| "all queues".to_owned(), |q| format!("queue {q}"));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>postdesk report {from} – {to}</title><style>{STYLE}</style></head><body>\
         <h1>Helpdesk report</h1><p class=\"period\">{period} ({tz}, by {by}), {scope}; \
         generated {generated}</p>",
        from = esc(&r.from),
        to = esc(&r.to),
        period = esc(&period_text(r)),
        tz = esc(&r.timezone),
        by = r.by,
        scope = esc(&scope),
        generated = esc(&r.generated_at),
    );
    cards(&mut out, r);
    out.push_str("<section><h2>Volume</h2>");
    out.push_str(&volume_chart(r));
    volume_table(&mut out, r);
    out.push_str("</section><section><h2>Response and resolution times</h2>");
    out.push_str(&response_chart(r));
    times_table(&mut out, r);
    out.push_str("</section><section><h2>SLA compliance</h2>");
    out.push_str(&sla_chart(r));
    out.push_str("</section><section><h2>Satisfaction</h2>");
    out.push_str(&satisfaction_chart(r));
    out.push_str("</section><section><h2>Agents</h2>");
    agents_table(&mut out, r);
    if r.triage.suggested > 0 {
        out.push_str("</section><section><h2>Triage</h2>");
        triage_table(&mut out, r);
    }
    out.push_str("</section><section><h2>Top problems</h2>");
    out.push_str(&problems_chart(r));
    problems_table(&mut out, r);
    out.push_str("</section><section><h2>Longest-running open tickets</h2>");
    open_table(&mut out, r);
    out.push_str("</section><section><h2>Self-service</h2>");
    self_service_table(&mut out, r);
    out.push_str("</section></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_scales() {
        assert_eq!(
            esc("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;"
        );
        for (max, want) in [
            (0, (1, 1)),
            (1, (1, 1)),
            (4, (4, 1)),
            (5, (5, 1)),
            (7, (8, 2)),
            (11, (15, 5)),
            (23, (25, 5)),
            (4_500, (5_000, 1_000)),
        ] {
            assert_eq!(scale(max), want, "{max}");
        }
    }

    #[test]
    fn empty_charts_still_render() {
        let svg = grouped_bars("volume", "x", &[], &[("new", BLUE, vec![])]);
        assert!(svg.starts_with("<svg class=\"chart\" data-chart=\"volume\""));
        assert!(svg.contains("no data in this period"));
        assert!(svg.ends_with("</svg>"));
    }
}
