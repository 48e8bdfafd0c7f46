//! The minimal Rust pipeline for `bench/ingest` (issue 15): "what the machine allows" for
//! postdesk's design, as a second baseline beside the bare IMAP fetch.
//!
//! - fetch: async-imap over plain TCP, LOGIN, SELECT, `UID FETCH 1:* (UID)` for the list,
//!   then `UID FETCH a:b (UID BODY.PEEK[])` in batches of 500 UIDs (as postdesk fetches);
//! - parse: one thread, mail-parser: Message-ID, From address, Subject, first text body;
//! - store: one writer thread, rusqlite on a fresh file (WAL, `synchronous=NORMAL`), one
//!   transaction per batch of 500: (message_id, from, subject, text, raw).
//!
//! The three stages run at once, joined by bounded channels. Nothing else: no
//! classification, threading, tickets, events, outbox or search index.
//!
//! `min_pipeline --host H --port P --user U --password W --db FILE` prints one JSON line:
//! messages, bytes, seconds (connect to last commit), fetch_seconds, parse_seconds (busy),
//! write_seconds (busy), rss_peak_mb.

use std::sync::mpsc::sync_channel;
use std::time::Instant;

use futures::TryStreamExt;
use mail_parser::MessageParser;

const BATCH: usize = 500;

struct Args {
    host: String,
    port: u16,
    user: String,
    password: String,
    folder: String,
    db: std::path::PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        host: "127.0.0.1".into(),
        port: 10143,
        user: String::new(),
        password: "test".into(),
        folder: "INBOX".into(),
        db: "min_pipeline.db".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--host" => a.host = v(),
            "--port" => a.port = v().parse().expect("--port"),
            "--user" => a.user = v(),
            "--password" => a.password = v(),
            "--folder" => a.folder = v(),
            "--db" => a.db = v().into(),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.user.is_empty(), "--user is required");
    a
}

/// What the parser hands the writer.
struct Row {
    message_id: Option<String>,
    from: Option<String>,
    subject: Option<String>,
    text: Option<String>,
    raw: Vec<u8>,
}

fn vm_hwm_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let a = args();
    let t0 = Instant::now();
    for side in ["", "-wal", "-shm"] {
        let mut p = a.db.clone().into_os_string();
        p.push(side);
        let _ = std::fs::remove_file(p);
    }

    // Stage 3: the writer thread.
    let (to_writer, from_parser) = sync_channel::<Vec<Row>>(4);
    let db = a.db.clone();
    let writer = std::thread::spawn(move || -> (usize, f64) {
        let mut conn = rusqlite::Connection::open(&db).expect("open db");
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, message_id TEXT, from_addr TEXT,
                                    subject TEXT, text TEXT, raw BLOB NOT NULL)",
        )
        .unwrap();
        let (mut n, mut busy) = (0usize, 0f64);
        for batch in from_parser {
            let t = Instant::now();
            let tx = conn.transaction().unwrap();
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO messages (message_id, from_addr, subject, text, raw)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .unwrap();
                for r in &batch {
                    st.execute(rusqlite::params![
                        r.message_id,
                        r.from,
                        r.subject,
                        r.text,
                        r.raw
                    ])
                    .unwrap();
                }
            }
            tx.commit().unwrap();
            n += batch.len();
            busy += t.elapsed().as_secs_f64();
        }
        (n, busy)
    });

    // Stage 2: the parser thread.
    let (to_parser, from_fetch) = sync_channel::<Vec<Vec<u8>>>(4);
    let parser = std::thread::spawn(move || -> f64 {
        let p = MessageParser::default();
        let mut busy = 0f64;
        for batch in from_fetch {
            let t = Instant::now();
            let rows: Vec<Row> = batch
                .into_iter()
                .map(|raw| {
                    let (message_id, from, subject, text) = match p.parse(&raw) {
                        Some(m) => (
                            m.message_id().map(str::to_owned),
                            m.from()
                                .and_then(|f| f.first())
                                .and_then(|f| f.address())
                                .map(str::to_owned),
                            m.subject().map(str::to_owned),
                            m.body_text(0).map(|t| t.into_owned()),
                        ),
                        None => (None, None, None, None),
                    };
                    Row {
                        message_id,
                        from,
                        subject,
                        text,
                        raw,
                    }
                })
                .collect();
            busy += t.elapsed().as_secs_f64();
            if to_writer.send(rows).is_err() {
                break;
            }
        }
        busy
    });

    // Stage 1: fetch, on a current-thread runtime on this thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (fetched, bytes, fetch_s) = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect((a.host.as_str(), a.port))
            .await
            .expect("connect");
        tcp.set_nodelay(true).unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting");
        let mut s = client
            .login(&a.user, &a.password)
            .await
            .map_err(|(e, _)| e)
            .expect("login");
        s.select(&a.folder).await.expect("select");
        let mut uids: Vec<u32> = {
            let list = s.uid_fetch("1:*", "(UID)").await.expect("uid list");
            list.try_filter_map(|f| async move { Ok(f.uid) })
                .try_collect()
                .await
                .expect("uid list")
        };
        uids.sort_unstable();
        let (mut n, mut bytes) = (0usize, 0usize);
        for chunk in uids.chunks(BATCH) {
            let set = format!("{}:{}", chunk[0], chunk[chunk.len() - 1]);
            let mut stream = s
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await
                .expect("uid fetch");
            let mut batch = Vec::with_capacity(chunk.len());
            while let Some(f) = stream.try_next().await.expect("fetch") {
                if let Some(b) = f.body() {
                    bytes += b.len();
                    batch.push(b.to_vec());
                }
            }
            drop(stream);
            n += batch.len();
            to_parser.send(batch).expect("parser gone");
        }
        let fetch_s = t0.elapsed().as_secs_f64();
        drop(to_parser);
        let _ = s.logout().await;
        (n, bytes, fetch_s)
    });
    let parse_busy = parser.join().expect("parser panicked");
    let (written, write_busy) = writer.join().expect("writer panicked");
    let seconds = t0.elapsed().as_secs_f64();
    assert_eq!(fetched, written, "every fetched message written");
    println!(
        "{{\"messages\": {written}, \"bytes\": {bytes}, \"seconds\": {seconds:.4}, \"fetch_seconds\": {fetch_s:.4}, \
         \"parse_seconds\": {parse_busy:.4}, \"write_seconds\": {write_busy:.4}, \"rss_peak_mb\": {:.1}}}",
        vm_hwm_mb()
    );
}
