//! What a similar-tickets lookup costs in a big store (issue 16).
//!
//! `similar_lookup --db FILE [--tickets 1000000] [--lookups 1000] [--seed 1]`
//!
//! Fills a fresh store with `--tickets` resolved tickets whose request words follow a
//! Zipf law over a vocabulary of 30,000 words (25 words a ticket: a few very common
//! words in every other ticket, most rare), through the store's own operations
//! (`create_ticket`, `set_status`, `record_ticket_words`, 10,000 a transaction) and the
//! writer's idle-time indexing (`Store::index_some`); then times `Reader::similar` for
//! `--lookups` requests drawn from the same law, on a read connection as `Desk::prepare`
//! runs it. Prints one JSON line: fill and index seconds, lookup p50/p90/p99/max in ms.

use std::time::Instant;

use chrono::Utc;
use postdesk::model::{Language, Priority, Status};
use postdesk::store::{NewTicket, Reader, Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const VOCABULARY: usize = 30_000;
const WORDS_PER_TICKET: usize = 25;
const PER_WRITE: usize = 10_000;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Word `i` of the vocabulary: letters only (`crate::words` keeps no digits).
fn word(mut i: usize) -> String {
    let mut w = String::new();
    loop {
        w.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            break;
        }
    }
    w.push('x');
    w
}

/// Zipf's law (s = 1) over the vocabulary, by inverting the cumulative weights.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        let mut cum = Vec::with_capacity(n);
        for k in 1..=n {
            acc += 1.0 / k as f64;
            cum.push(acc);
        }
        Zipf(cum)
    }
    fn draw(&self, rng: &mut StdRng) -> usize {
        let x = rng.random::<f64>() * self.0[self.0.len() - 1];
        self.0.partition_point(|c| *c < x)
    }
    fn words(&self, rng: &mut StdRng) -> Vec<String> {
        (0..WORDS_PER_TICKET)
            .map(|_| word(self.draw(rng)))
            .collect()
    }
}

fn main() -> Result<(), StoreError> {
    let args: Vec<String> = std::env::args().collect();
    let db = arg(&args, "--db").expect("--db FILE");
    let tickets: usize = arg(&args, "--tickets").map_or(1_000_000, |v| v.parse().unwrap());
    let lookups: usize = arg(&args, "--lookups").map_or(1000, |v| v.parse().unwrap());
    let seed: u64 = arg(&args, "--seed").map_or(1, |v| v.parse().unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let path = std::path::PathBuf::from(&db);
    let zipf = Zipf::new(VOCABULARY);
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let store = Store::open(&path)?;
    let mut made = 0;
    while made < tickets {
        let n = PER_WRITE.min(tickets - made);
        let batch: Vec<Vec<String>> = (0..n).map(|_| zipf.words(&mut rng)).collect();
        rt.block_on(store.write(move |tx| {
            let at = Utc::now();
            for words in &batch {
                let id = tx.create_ticket(&NewTicket {
                    tag: "ACME",
                    subject: &words[..4].join(" "),
                    status: Status::New,
                    priority: Priority::Normal,
                    queue: "support",
                    mailbox: "mb0",
                    requester: None,
                    language: Language::En,
                    flagged: None,
                    linked_to: None,
                    at,
                })?;
                tx.set_status(id, Status::Resolved, at)?;
                tx.record_ticket_words(id, &words.join(" "))?;
            }
            Ok::<_, StoreError>(())
        }))?;
        made += n;
        eprintln!("{made} tickets, {:.0} s", started.elapsed().as_secs_f64());
    }
    let filled = started.elapsed().as_secs_f64();
    let indexing = Instant::now();
    while rt.block_on(store.index_some(50_000))? {}
    let indexed = indexing.elapsed().as_secs_f64();
    let reader = Reader::open(&path)?;
    let mut times = Vec::with_capacity(lookups);
    let mut found = 0;
    for _ in 0..lookups {
        let words = zipf.words(&mut rng);
        let t = Instant::now();
        let similar = reader.similar(&words, None, 3)?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        found += usize::from(!similar.is_empty());
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1];
    println!(
        "{{\"tickets\": {tickets}, \"fill_s\": {filled:.1}, \"index_s\": {indexed:.1}, \"lookups\": {lookups}, \"found\": {found}, \"p50_ms\": {:.2}, \"p90_ms\": {:.2}, \"p99_ms\": {:.2}, \"max_ms\": {:.2}}}",
        p(0.5),
        p(0.9),
        p(0.99),
        times[times.len() - 1]
    );
    Ok(())
}
