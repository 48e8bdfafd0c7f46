//! Builds a large postdesk store for `bench/scale` (issue 15) through the real write path.
//!
//! `scale_store --config CFG --tickets N [--days 730] [--seed 1] [--replies 0.8]`
//!
//! Generated mail (in Rust, deterministic for the seed) goes through what `postdesk
//! import` does: batches of 500 messages, each parsed and classified on the desk's pool
//! (`Desk::prepare`) and stored in one transaction by the engine (`Desk::import`, notify
//! on, so every new ticket gets its acknowledgement composed and queued, its SLA clocks
//! started, its events written). Batch `k` is recorded at `now - days + k * step`, so
//! `created_at` spreads evenly over `days` up to an hour ago. While batch `k` is stored,
//! batch `k + 1` is prepared.
//! - Mail: ~30% Chinese (UTF-8 or GBK), the rest English; ~15% with an HTML alternative,
//!   ~5% with a small attachment; `--replies R` customer follow-ups per new request
//!   (In-Reply-To the request, quoted text), mostly to recent tickets.
//! - Lifecycle, in the same batches' time: tickets a few batches old are changed with
//!   `Engine::admin_change` (what `postdesk ticket set` runs), many per transaction:
//!   ~70% assigned to an agent (→ open), of those ~75% resolved, of those ~60% closed.
//! - After each batch, the daemon's scheduled jobs due by then (`Desk::run_due_jobs`: SLA
//!   sweep, auto-close, archive, digest) run at the batch's time, as the daemon's scheduler
//!   would have run them; the daemon started on the store later has only new work.
//! - At the end the writer is given time to index every message for search
//!   (`Store::index_some`), and, since the builder has no SMTP server, the outbox rows it
//!   queued are marked sent with one `UPDATE outbox SET state = 'sent'` (what the
//!   sender's `mark_sent` does per mail, one transaction each).
//!
//! Progress on stderr; one JSON line on stdout at the end.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use postdesk::clock::{Clock, SystemClock};
use postdesk::model::{MailboxName, Status, TicketId};
use postdesk::workflow::admin::Change;
use postdesk::workflow::{Desk, Engine};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BATCH: usize = 500;
/// Bump when the generated data changes: `bench/scale` keys its cache of built stores on
/// it (and on the schema), not on this file's text.
pub const GENERATOR: u32 = 2;

struct Args {
    config: std::path::PathBuf,
    tickets: usize,
    days: i64,
    seed: u64,
    replies: f64,
    mailbox: String,
}

fn args() -> Args {
    let mut a = Args {
        config: "postdesk.toml".into(),
        tickets: 20_000,
        days: 730,
        seed: 1,
        replies: 0.8,
        mailbox: "support".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--config" => a.config = v().into(),
            "--tickets" => a.tickets = v().parse().expect("--tickets"),
            "--days" => a.days = v().parse().expect("--days"),
            "--seed" => a.seed = v().parse().expect("--seed"),
            "--replies" => a.replies = v().parse().expect("--replies"),
            "--mailbox" => a.mailbox = v(),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

// ------------------------------------------------------------------ the mail

const EN: &[(&str, &str)] = &[
    ("Invoice {n} charged twice", "Hello,\n\nmy card was charged twice for invoice {n}. Please refund one of the two payments.\nThe second charge appeared on {day}.\n"),
    ("Cannot log in to my account", "Hi support,\n\nsince this morning I get 'invalid password' although I reset it twice.\nMy user id is {n}. I tried Firefox and Chrome, same result.\n"),
    ("Printer on floor {f} offline", "Hello,\n\nthe printer on floor {f} shows offline for everybody. This is urgent, we have a\ndeadline on {day}. Restarting it did not help.\n"),
    ("Refund request order #{n}", "Hi,\n\nI would like to return order #{n}; the item arrived damaged. Photos attached.\nPlease tell me how to send it back.\n"),
    ("VPN disconnects every hour", "Hello team,\n\nthe VPN drops every 60 minutes, client version 5.{f}. Logs attached.\nIt started after the update on {day}.\n"),
    ("Question about my subscription", "Hello,\n\ncan I switch my subscription {n} from monthly to yearly billing without losing\nthe current discount? Thank you.\n"),
    ("Password reset email never arrives", "Hi,\n\nI requested a password reset three times today but the email never arrives.\nAccount number {n}. I checked the spam folder.\n"),
    ("Laptop very slow since update", "Hello,\n\nmy laptop (asset {n}) became very slow after the update on {day}.\nStarting Outlook takes five minutes.\n"),
    ("Shared drive access for floor {f}", "Hi,\n\nplease give me access to the shared drive of floor {f}; my manager approved it.\nEmployee number {n}.\n"),
    ("Delivery {n} not arrived", "Hello,\n\nmy parcel {n} was supposed to arrive on {day} but the tracking page shows no update.\nCould you check with the carrier?\n"),
];
const ZH: &[(&str, &str)] = &[
    (
        "打印机无法连接（{f}楼）",
        "您好，\n\n{f}楼的打印机从今天早上开始无法连接，麻烦尽快处理。\n我们{day}之前要交材料。\n",
    ),
    (
        "发票{n}重复扣款",
        "客服你好：\n\n订单{n}的发票被重复扣款两次，请帮忙退款。\n银行流水截图见附件。\n",
    ),
    (
        "账号无法登录",
        "您好，\n\n我的账号{n}无法登录，提示密码错误，已经重置过两次。\n请尽快帮我看一下，谢谢。\n",
    ),
    (
        "退货申请：订单{n}",
        "你好，\n\n订单{n}收到的商品有破损，想申请退货退款。\n请告诉我怎么寄回。\n",
    ),
    (
        "快递{n}一直没有送到",
        "您好，\n\n我的快递{n}一直没有送到，物流信息{day}以后就没有更新了。\n麻烦帮忙查一下。\n",
    ),
    (
        "申请开具增值税发票",
        "你好，\n\n订单{n}需要开具增值税专用发票，公司信息见下方。\n请尽快处理，谢谢。\n",
    ),
];
const EN_NAMES: &[&str] = &[
    "Alice Martin",
    "Bob Chen",
    "Carla Diaz",
    "Dmitri Ivanov",
    "Eve Müller",
    "Frank O'Neil",
    "Grace Kim",
    "Hugo Lefèvre",
    "Irene Rossi",
    "Jamal Wright",
];
const ZH_NAMES: &[&str] = &["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊"];
const FILLER_EN: &[&str] = &[
    "I have been a customer for several years and never had this problem before.",
    "Could you please let me know when I can expect an answer?",
    "My colleague has the same issue on her laptop.",
    "I already tried clearing the cache and restarting the computer.",
    "This is blocking our whole team at the moment.",
    "Please call me back if that is easier, my number is in the signature.",
];
const FILLER_ZH: &[&str] = &[
    "我已经是老客户了，以前从来没有遇到过这个问题。",
    "请问大概什么时候能回复？",
    "同事的电脑也有同样的问题。",
    "我已经清除了缓存并重启了电脑。",
    "这个问题影响了我们整个团队。",
];
const REPLY_EN: &[&str] = &[
    "Thanks for the quick answer. Unfortunately the problem is still there.",
    "Any news on this? We are still waiting.",
    "It works again, thank you very much!",
    "I tried what you suggested but I get the same error message.",
    "Here is the additional information you asked for.",
];
const REPLY_ZH: &[&str] = &[
    "谢谢你们的回复，但是问题还是没有解决。",
    "请问现在处理得怎么样了？我们还在等。",
    "已经好了，非常感谢！",
    "按照你们说的方法试了，还是同样的错误。",
];

/// A request the generator remembers, for follow-ups.
struct Sent {
    from: String,
    name: &'static str,
    subject: String,
    zh: bool,
    gbk: bool,
    mid: String,
    text: String,
}

struct Gen {
    rng: StdRng,
    to: String,
    seq: u64,
    seed: u64,
    customers: u32,
    recent: Vec<Sent>,
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

/// An RFC 2047 encoded word (base64) when `s` is not ASCII.
fn ew(s: &str, gbk: bool) -> String {
    if s.is_ascii() {
        return s.to_owned();
    }
    let (cs, bytes) = encode(s, gbk);
    format!(
        "=?{cs}?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn encode(s: &str, gbk: bool) -> (&'static str, Vec<u8>) {
    if gbk {
        let (b, _, _) = encoding_rs::GBK.encode(s);
        ("gbk", b.into_owned())
    } else {
        ("utf-8", s.as_bytes().to_vec())
    }
}

fn fill(t: &str, n: u32, f: u32, day: &str) -> String {
    t.replace("{n}", &n.to_string())
        .replace("{f}", &f.to_string())
        .replace("{day}", day)
}

impl Gen {
    fn new(seed: u64, to: String, customers: u32) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            to,
            seq: 0,
            seed,
            customers,
            recent: Vec::new(),
        }
    }

    /// One message of the batch recorded at `at`: a new request, or a follow-up with
    /// probability `p_reply`. True for a new request.
    fn message(&mut self, at: DateTime<Utc>, p_reply: f64) -> (Vec<u8>, bool) {
        self.seq += 1;
        if !self.recent.is_empty() && self.rng.random::<f64>() < p_reply {
            (self.reply(at), false)
        } else {
            (self.request(at), true)
        }
    }

    fn headers(
        &self,
        from: &str,
        name: &str,
        gbk: bool,
        subject: &str,
        at: DateTime<Utc>,
        mid: &str,
    ) -> String {
        format!(
            "Received: from mail.customer.test (mail.customer.test [192.0.2.{}])\n\tby mx.example.test with ESMTPS; {}\n\
             From: {} <{from}>\nTo: {}\nSubject: {}\nDate: {}\nMessage-ID: {mid}\nMIME-Version: 1.0\n",
            self.seq % 250 + 1,
            at.to_rfc2822(),
            ew(name, gbk),
            self.to,
            ew(subject, gbk),
            at.to_rfc2822(),
        )
    }

    /// The body part(s) after the headers, in `text`'s charset.
    fn body(&mut self, text: &str, gbk: bool) -> Vec<u8> {
        let (cs, bytes) = encode(text, gbk);
        let html = self.rng.random::<f64>() < 0.15;
        let attach = self.rng.random::<f64>() < 0.05;
        let plain = |out: &mut Vec<u8>| {
            out.extend_from_slice(
                format!(
                    "Content-Type: text/plain; charset={cs}\nContent-Transfer-Encoding: 8bit\n\n"
                )
                .as_bytes(),
            );
            out.extend_from_slice(&bytes);
            out.push(b'\n');
        };
        if !html && !attach {
            let mut out = Vec::new();
            plain(&mut out);
            return out;
        }
        let b = format!("=_b{}_{}", self.seed, self.seq);
        let mut out = Vec::new();
        if attach {
            out.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"{b}m\"\n\n--{b}m\n").as_bytes(),
            );
        }
        if html {
            out.extend_from_slice(
                format!("Content-Type: multipart/alternative; boundary=\"{b}a\"\n\n--{b}a\n")
                    .as_bytes(),
            );
            plain(&mut out);
            out.extend_from_slice(format!("--{b}a\nContent-Type: text/html; charset={cs}\nContent-Transfer-Encoding: 8bit\n\n<html><body>").as_bytes());
            for para in text.split("\n\n") {
                out.extend_from_slice(b"<p>");
                out.extend_from_slice(&encode(&para.replace('\n', "<br>"), gbk).1);
                out.extend_from_slice(b"</p>\n");
            }
            out.extend_from_slice(format!("</body></html>\n--{b}a--\n").as_bytes());
        } else {
            plain(&mut out);
        }
        if attach {
            let n = self.rng.random_range(1500..4500);
            let data: Vec<u8> = (0..n).map(|_| self.rng.random::<u8>()).collect();
            let enc = base64::engine::general_purpose::STANDARD.encode(data);
            out.extend_from_slice(format!("--{b}m\nContent-Type: application/octet-stream; name=\"log.bin\"\nContent-Disposition: attachment; filename=\"log.bin\"\nContent-Transfer-Encoding: base64\n\n").as_bytes());
            for line in enc.as_bytes().chunks(76) {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            out.extend_from_slice(format!("--{b}m--\n").as_bytes());
        }
        out
    }

    fn request(&mut self, at: DateTime<Utc>) -> Vec<u8> {
        let zh = self.rng.random::<f64>() < 0.3;
        let gbk = zh && self.rng.random::<f64>() < 0.5;
        let (subj_t, body_t) = *pick(&mut self.rng, if zh { ZH } else { EN });
        let n = self.rng.random_range(1000..99_999);
        let f = self.rng.random_range(1..13);
        let day = (at + Duration::days(self.rng.random_range(1..9)))
            .format("%a, %d %b %Y")
            .to_string();
        let name = *pick(&mut self.rng, if zh { ZH_NAMES } else { EN_NAMES });
        let subject = fill(subj_t, n, f, &day);
        let mut text = fill(body_t, n, f, &day);
        let filler = if zh { FILLER_ZH } else { FILLER_EN };
        for _ in 0..self.rng.random_range(1..4) {
            let part = *pick::<&str>(&mut self.rng, filler);
            text.push_str(part);
            text.push(if zh { '\n' } else { ' ' });
        }
        text.push_str(if zh { "\n谢谢！\n" } else { "\nThanks,\n" });
        text.push_str(name);
        text.push('\n');
        let from = format!(
            "cust{}@customer.test",
            self.rng.random_range(1..=self.customers)
        );
        let mid = format!("<s{}.{}.r@mail.customer.test>", self.seed, self.seq);
        let mut raw = self
            .headers(&from, name, gbk, &subject, at, &mid)
            .into_bytes();
        raw.extend(self.body(&text, gbk));
        self.recent.push(Sent {
            from,
            name,
            subject,
            zh,
            gbk,
            mid,
            text,
        });
        if self.recent.len() > 4000 {
            self.recent.drain(..2000);
        }
        raw
    }

    fn reply(&mut self, at: DateTime<Utc>) -> Vec<u8> {
        // Mostly recent tickets, sometimes older ones.
        let back = (self.rng.random::<f64>().ln() * -300.0) as usize;
        let i = self.recent.len() - 1 - back.min(self.recent.len() - 1);
        let (from, name, subject, zh, gbk, orig, quoted) = {
            let s = &self.recent[i];
            (
                s.from.clone(),
                s.name,
                s.subject.clone(),
                s.zh,
                s.gbk,
                s.mid.clone(),
                s.text.clone(),
            )
        };
        let mut text = pick(&mut self.rng, if zh { REPLY_ZH } else { REPLY_EN }).to_string();
        text.push_str(if zh {
            "\n\n谢谢\n"
        } else {
            "\n\nBest regards,\n"
        });
        text.push_str(name);
        text.push_str(&format!("\n\nOn {} {name} wrote:\n", at.format("%Y-%m-%d")));
        for l in quoted.lines() {
            text.push_str("> ");
            text.push_str(l);
            text.push('\n');
        }
        let subject = format!("{}{subject}", if zh { "回复：" } else { "Re: " });
        let mid = format!("<s{}.{}.f@mail.customer.test>", self.seed, self.seq);
        let mut head = self.headers(&from, name, gbk, &subject, at, &mid);
        let pos = head
            .rfind("MIME-Version:")
            .expect("headers end with MIME-Version");
        head.insert_str(pos, &format!("In-Reply-To: {orig}\nReferences: {orig}\n"));
        let mut raw = head.into_bytes();
        raw.extend(self.body(&text, gbk));
        raw
    }
}

// ------------------------------------------------------------------ the run

fn rss_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let cfg = postdesk::config::load(&a.config).unwrap_or_else(|e| panic!("config: {e:?}"));
    let mb = cfg
        .mailbox(&a.mailbox)
        .unwrap_or_else(|| panic!("no [[mailbox]] {}", a.mailbox));
    let to = mb.address.to_string();
    let mailbox = MailboxName::new(a.mailbox.clone());
    let agents: Vec<String> = cfg.agents.iter().map(|g| g.name.to_string()).collect();
    assert!(!agents.is_empty(), "the config needs [[agent]] tables");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = Arc::new(Engine::new(&cfg, clock).expect("engine"));
    let store = postdesk::store::Store::open(&cfg.db_path()).expect("store");
    let desk = Desk::new(store, engine.clone());

    // Batches: enough for `tickets` new requests at the expected share.
    let p_reply = a.replies / (1.0 + a.replies);
    let per_batch_new = BATCH as f64 * (1.0 - p_reply);
    let batches = ((a.tickets as f64 / per_batch_new).ceil() as i64).max(1);
    let end = Utc::now() - Duration::hours(1);
    let start = end - Duration::days(a.days);
    let step = (end - start) / (batches as i32).max(1);
    let at_of = |k: i64| start + step * (k as i32);
    // Lifecycle changes happen ~2 days after a ticket's batch.
    let lag = ((Duration::days(2).num_seconds() / step.num_seconds().max(1)) as usize).clamp(1, 50);
    eprintln!(
        "scale_store: {} tickets wanted, {batches} batches of {BATCH} ({:.0}% follow-ups), {} days ending {}, a batch every {} min, lifecycle {lag} batches later",
        a.tickets,
        p_reply * 100.0,
        a.days,
        end.format("%Y-%m-%d %H:%M"),
        step.num_minutes()
    );

    let mut g = Gen::new(a.seed, to, (a.tickets as u32 / 3).max(100));
    let mut new_total = 0usize;
    let gen_batch = |g: &mut Gen, k: i64, new_total: &mut usize| -> Vec<Vec<u8>> {
        let at = at_of(k);
        (0..BATCH)
            .map_while(|_| {
                if *new_total >= a.tickets {
                    return None;
                }
                let (raw, new) = g.message(at, p_reply);
                *new_total += new as usize;
                Some(raw)
            })
            .collect()
    };

    let t0 = Instant::now();
    let mut sum = postdesk::workflow::BatchOutcome::default();
    let mut ticket_ranges: std::collections::VecDeque<(i64, i64)> = Default::default();
    let mut tickets_so_far: i64 = 0;
    let mut changed = [0usize; 3];
    let mut jobs_run = 0usize;
    let mut lrng = StdRng::seed_from_u64(a.seed ^ 0x5eed);
    let mut prepared = desk
        .prepare_history(gen_batch(&mut g, 0, &mut new_total))
        .await;
    let mut k: i64 = 0;
    let mut rss_peak: f64 = 0.0;
    let mut last_log = Instant::now();
    while !prepared.is_empty() {
        let at = at_of(k);
        let next_raws = gen_batch(&mut g, k + 1, &mut new_total);
        let n = prepared.len();
        let (out, next) = tokio::join!(
            desk.import(mailbox.clone(), std::mem::take(&mut prepared), true, at),
            desk.prepare_history(next_raws)
        );
        let out = out.expect("import batch");
        assert_eq!(
            out.recorded + out.duplicates + out.quarantined,
            n,
            "every message accounted for"
        );
        // Tickets are numbered from 1 in creation order.
        ticket_ranges.push_back((tickets_so_far + 1, tickets_so_far + out.new_tickets as i64));
        tickets_so_far += out.new_tickets as i64;
        sum.add(&out);
        prepared = next;

        // Lifecycle of the tickets `lag` batches old (or all the rest at the end).
        let mut due: Vec<(i64, i64)> = Vec::new();
        while ticket_ranges.len() > lag || (prepared.is_empty() && !ticket_ranges.is_empty()) {
            due.push(ticket_ranges.pop_front().unwrap());
            if !prepared.is_empty() {
                break;
            }
        }
        let mut plan: Vec<(TicketId, Vec<Change>)> = Vec::new();
        for (lo, hi) in due {
            for id in lo..=hi {
                if lrng.random::<f64>() >= 0.7 {
                    continue;
                }
                let mut ch = vec![Change::Assign(Some(pick(&mut lrng, &agents).clone()))];
                if lrng.random::<f64>() < 0.75 {
                    ch.push(Change::Status(Status::Resolved));
                    if lrng.random::<f64>() < 0.6 {
                        ch.push(Change::Status(Status::Closed));
                    }
                }
                plan.push((TicketId::new(id), ch));
            }
        }
        if !plan.is_empty() {
            let engine = engine.clone();
            let when = at + Duration::minutes(30);
            let done: [usize; 3] = desk
                .store()
                .write(move |tx| {
                    let mut done = [0usize; 3];
                    for (id, ch) in &plan {
                        // A refusal (a customer reply changed the status meanwhile) undoes
                        // only that ticket's changes.
                        if let Ok(Ok(_)) =
                            tx.savepoint(|tx| engine.admin_change(tx, *id, ch, "admin:bench", when))
                        {
                            done[ch.len() - 1] += 1;
                        }
                    }
                    Ok::<_, postdesk::store::StoreError>(done)
                })
                .await
                .expect("lifecycle batch");
            for (c, d) in changed.iter_mut().zip(done) {
                *c += d;
            }
        }
        // The daemon's scheduled jobs (SLA sweep, auto-close, archive, digest), as its
        // scheduler would have run them by the end of this batch's slot.
        jobs_run += desk
            .run_due_jobs(at + Duration::minutes(50))
            .await
            .expect("scheduled jobs")
            .len();
        k += 1;
        rss_peak = rss_peak.max(rss_mb("VmRSS:"));
        if last_log.elapsed().as_secs_f64() > 10.0 || prepared.is_empty() {
            last_log = Instant::now();
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "  batch {k}/{batches} at {}: {} messages in ({:.0}/s), {} tickets, {:.0} s, RSS {:.0} MB",
                at.format("%Y-%m-%d"),
                sum.recorded,
                sum.recorded as f64 / s,
                tickets_so_far,
                s,
                rss_mb("VmRSS:")
            );
        }
    }
    let ingest_s = t0.elapsed().as_secs_f64();
    // Let the writer finish the search index (it indexes in its idle time anyway).
    let ti = Instant::now();
    while desk
        .store()
        .index_some(postdesk::store::INDEX_BATCH)
        .await
        .expect("index")
    {}
    let index_s = ti.elapsed().as_secs_f64();
    let reader = desk.store().reader().expect("reader");
    let st = reader
        .status(std::slice::from_ref(&a.mailbox))
        .expect("status");
    drop(reader);
    let db = cfg.db_path();
    drop(desk);
    drop(engine);
    // The outbox rows of the history: sent (see the module doc).
    let tm = Instant::now();
    let conn = rusqlite::Connection::open(&db).expect("open db");
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let sent = conn
        .execute(
            "UPDATE outbox SET state = 'sent', sent_at = next_attempt_at, response = '250 2.0.0 Ok (bench/scale: not sent)'
             WHERE state = 'queued'",
            [],
        )
        .expect("mark sent");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint");
    let mark_s = tm.elapsed().as_secs_f64();
    let count_by = |sql: &str| -> serde_json::Map<String, serde_json::Value> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    serde_json::Value::from(r.get::<_, i64>(1)?),
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let statuses = count_by("SELECT status, COUNT(*) FROM tickets GROUP BY status");
    let kinds = count_by("SELECT kind, COUNT(*) FROM outbox GROUP BY kind");
    drop(conn);
    // The database and whatever the checkpoint left in its WAL.
    let size: u64 = ["", "-wal"]
        .iter()
        .map(|side| {
            let mut p = db.clone().into_os_string();
            p.push(side);
            std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
        })
        .sum();
    println!(
        "{}",
        serde_json::json!({
            "tickets": st.tickets,
            "messages_in": st.messages.incoming,
            "messages_out": st.messages.outgoing,
            "recorded": sum.recorded,
            "new_tickets": sum.new_tickets,
            "automatic": sum.automatic,
            "quarantined": sum.quarantined,
            "duplicates": sum.duplicates,
            "batches": k,
            "assigned_only": changed[0],
            "resolved_only": changed[1],
            "closed": changed[2],
            "statuses": statuses,
            "jobs_run": jobs_run,
            "outbox_kinds": kinds,
            "outbox_marked_sent": sent,
            "ingest_seconds": ingest_s,
            "index_seconds": index_s,
            "mark_sent_seconds": mark_s,
            "rss_peak_mb": rss_peak.max(rss_mb("VmHWM:")),
            "db_bytes": size,
            "first_at": postdesk::model::stamp::text(start),
            "last_at": postdesk::model::stamp::text(at_of(k - 1)),
            "rate": sum.recorded as f64 / ingest_s,
        })
    );
}
