//! A generated ticket history with known labels, for `triage evaluate` (issue 16) and
//! `bench/triage`: the benchmark generator's mix of topics (examples/scale_store.rs,
//! bench/gen_mail.py: billing, log-in, printers, VPN, deliveries, returns; ~30% Chinese,
//! half of that GBK) spread over five queues, with varied wording, shared filler, and
//! label noise (agents are not consistent either).
//!
//! - [`Gen::ticket`] makes one request: subject, text, raw RFC 5322 bytes, and the labels
//!   an agent would leave (queue, priority, tags). `noise` of the tickets get a random
//!   queue, a random priority, or lose their tag.
//! - [`build`] writes `n` of them through the store's real operations: `Desk::import`
//!   (parse, classify, open the ticket), then `Engine::admin_change` (what `postdesk
//!   ticket set` runs) sets queue, priority and tags and opens the ticket, many per
//!   transaction. Batch `k` is recorded at `start + k` hours.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use postdesk::model::{MailboxName, Priority, Status, TicketId};
use postdesk::workflow::admin::Change;
use postdesk::workflow::Desk;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The queues the generated tickets end in (each needs a `[[queue]]`).
pub const QUEUES: &[&str] = &["billing", "accounts", "it", "shipping", "sales"];

/// `[[queue]]` tables for [`QUEUES`], to append to a config.
pub fn queue_tables() -> String {
    QUEUES
        .iter()
        .map(|q| format!("\n[[queue]]\nname = \"{q}\"\n"))
        .collect()
}

struct Topic {
    queue: &'static str,
    tag: Option<&'static str>,
    subjects: &'static [&'static str],
    lines: &'static [&'static str],
}

const EN: &[Topic] = &[
    Topic {
        queue: "billing",
        tag: Some("refund"),
        subjects: &[
            "Invoice {n} charged twice",
            "Refund for payment {n}",
            "Double charge on my card",
            "Money back for invoice {n}",
        ],
        lines: &[
            "My card was charged twice for invoice {n}.",
            "Please refund one of the two payments.",
            "The second charge appeared on my bank statement on {day}.",
            "I want my money back for the duplicate payment.",
            "The amount was debited twice from my account.",
        ],
    },
    Topic {
        queue: "billing",
        tag: Some("invoice"),
        subjects: &[
            "Wrong address on invoice {n}",
            "Need a VAT invoice",
            "Invoice copy for order {n}",
            "Billing question about subscription {n}",
        ],
        lines: &[
            "The invoice shows the wrong company address.",
            "Could you send a corrected invoice with our VAT number?",
            "Can I switch my subscription {n} to yearly billing?",
            "Please send me a copy of the invoice for my records.",
            "Our accounting department needs the invoice as PDF.",
        ],
    },
    Topic {
        queue: "accounts",
        tag: Some("password"),
        subjects: &[
            "Cannot log in to my account",
            "Password reset email never arrives",
            "Account {n} locked",
            "Login fails with invalid password",
        ],
        lines: &[
            "Since this morning I get 'invalid password' although I reset it twice.",
            "My user id is {n}.",
            "The password reset email never arrives, I checked spam.",
            "My account got locked after three attempts.",
            "The two-factor code is rejected every time.",
        ],
    },
    Topic {
        queue: "it",
        tag: Some("printer"),
        subjects: &[
            "Printer on floor {f} offline",
            "Printer jams every page",
            "Cannot print to the shared printer",
        ],
        lines: &[
            "The printer on floor {f} shows offline for everybody.",
            "Restarting the printer did not help.",
            "Every page jams in the tray.",
            "The print queue is stuck with fifty documents.",
            "Toner was replaced yesterday.",
        ],
    },
    Topic {
        queue: "it",
        tag: Some("vpn"),
        subjects: &[
            "VPN disconnects every hour",
            "VPN client will not connect",
            "Remote access broken since update",
        ],
        lines: &[
            "The VPN drops every 60 minutes, client version 5.{f}.",
            "Logs are attached.",
            "It started after the update on {day}.",
            "The VPN client says the certificate expired.",
            "I cannot reach the intranet from home.",
        ],
    },
    Topic {
        queue: "it",
        tag: None,
        subjects: &[
            "Laptop very slow since update",
            "Outlook crashes on start",
            "Need a new monitor",
        ],
        lines: &[
            "My laptop (asset {n}) became very slow after the update.",
            "Starting Outlook takes five minutes.",
            "The screen flickers and then goes black.",
            "Could IT replace the broken monitor?",
        ],
    },
    Topic {
        queue: "shipping",
        tag: Some("delivery"),
        subjects: &[
            "Delivery {n} not arrived",
            "Where is my parcel {n}?",
            "Tracking shows no update",
        ],
        lines: &[
            "My parcel {n} was supposed to arrive on {day}.",
            "The tracking page shows no update for a week.",
            "Could you check with the carrier?",
            "The courier says the address was wrong.",
        ],
    },
    Topic {
        queue: "shipping",
        tag: Some("return"),
        subjects: &[
            "Return request order #{n}",
            "Item arrived damaged",
            "How do I send back order {n}?",
        ],
        lines: &[
            "I would like to return order #{n}; the item arrived damaged.",
            "Photos of the broken box are attached.",
            "Please tell me how to send it back.",
            "I need a return label.",
        ],
    },
    Topic {
        queue: "sales",
        tag: None,
        subjects: &[
            "Quote for 50 licences",
            "Pricing for the enterprise plan",
            "Request a product demo",
        ],
        lines: &[
            "We are interested in 50 licences for our team.",
            "Could you send us a quote including support?",
            "What does the enterprise plan cost per seat?",
            "We would like to schedule a demo next week.",
        ],
    },
];

const ZH: &[Topic] = &[
    Topic {
        queue: "billing",
        tag: Some("refund"),
        subjects: &["发票{n}重复扣款", "申请退款", "银行卡被扣了两次"],
        lines: &[
            "订单{n}的发票被重复扣款两次，请帮忙退款。",
            "银行流水截图见附件。",
            "第二笔扣款是{day}出现的。",
            "请尽快把多扣的钱退回来。",
        ],
    },
    Topic {
        queue: "billing",
        tag: Some("invoice"),
        subjects: &["申请开具增值税发票", "发票抬头开错了", "需要发票复印件"],
        lines: &[
            "订单{n}需要开具增值税专用发票，公司信息见下方。",
            "上个月的发票抬头开错了，请重新开具。",
            "财务部门需要电子发票。",
        ],
    },
    Topic {
        queue: "accounts",
        tag: Some("password"),
        subjects: &["账号无法登录", "密码重置邮件收不到", "账号被锁定"],
        lines: &[
            "我的账号{n}无法登录，提示密码错误，已经重置过两次。",
            "密码重置邮件一直收不到，垃圾邮件里也没有。",
            "输错三次密码以后账号被锁定了。",
        ],
    },
    Topic {
        queue: "it",
        tag: Some("printer"),
        subjects: &["打印机无法连接（{f}楼）", "打印机卡纸", "打印任务一直排队"],
        lines: &[
            "{f}楼的打印机从今天早上开始无法连接。",
            "重启打印机也没有用。",
            "每打印一页就卡纸。",
        ],
    },
    Topic {
        queue: "it",
        tag: Some("vpn"),
        subjects: &["VPN连接不上", "VPN每小时断开一次", "远程访问失败"],
        lines: &[
            "VPN每隔一小时就断开，客户端版本5.{f}。",
            "在家里访问不了内网。",
            "更新以后VPN就连不上了。",
        ],
    },
    Topic {
        queue: "shipping",
        tag: Some("delivery"),
        subjects: &["快递{n}一直没有送到", "物流信息不更新", "包裹去哪了"],
        lines: &[
            "我的快递{n}一直没有送到，物流信息{day}以后就没有更新了。",
            "麻烦帮忙联系一下快递公司。",
            "快递员说地址不对。",
        ],
    },
    Topic {
        queue: "shipping",
        tag: Some("return"),
        subjects: &["退货申请：订单{n}", "商品破损要退货", "怎么寄回商品"],
        lines: &[
            "订单{n}收到的商品有破损，想申请退货退款。",
            "请告诉我怎么寄回。",
            "需要一张退货标签。",
        ],
    },
];

const FILLER_EN: &[&str] = &[
    "I have been a customer for several years and never had this problem before.",
    "Could you please let me know when I can expect an answer?",
    "My colleague has the same issue.",
    "I already tried restarting the computer.",
    "Please call me back if that is easier.",
    "Thank you in advance.",
];
const FILLER_ZH: &[&str] = &[
    "我已经是老客户了，以前从来没有遇到过这个问题。",
    "请问大概什么时候能回复？",
    "同事也有同样的问题。",
    "先谢谢了。",
];
const URGENT_EN: &[&str] = &[
    "This is urgent, we have a deadline on {day}.",
    "URGENT: the whole team is blocked.",
    "Please treat this as urgent.",
];
const URGENT_ZH: &[&str] = &["非常紧急，{day}之前必须解决。", "急！整个团队都用不了。"];
const LOW_EN: &[&str] = &[
    "No rush, whenever you have time.",
    "Just a quick question, not important.",
];
const LOW_ZH: &[&str] = &["不着急，有空的时候回复就行。"];
const SIGNATURE: &str = "\n-- \nAlice Martin\nACME Customer Ltd.\nPhone +1 555 0100\n";

/// One generated request and the labels an agent left on its ticket.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub subject: String,
    pub text: String,
    pub raw: Vec<u8>,
    pub queue: String,
    pub priority: Priority,
    pub tags: Vec<String>,
}

pub struct Gen {
    rng: StdRng,
    seq: u64,
    to: String,
    noise: f64,
}

fn pick<'a, T>(rng: &mut StdRng, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

impl Gen {
    /// Mail to `to`; a share `noise` of the labels is wrong on purpose.
    pub fn new(seed: u64, to: &str, noise: f64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            to: to.to_owned(),
            noise,
        }
    }

    pub fn ticket(&mut self, at: DateTime<Utc>) -> Ticket {
        self.seq += 1;
        let zh = self.rng.random::<f64>() < 0.3;
        let gbk = zh && self.rng.random::<f64>() < 0.5;
        let topic = pick(&mut self.rng, if zh { ZH } else { EN });
        let n = self.rng.random_range(1000..99_999).to_string();
        let f = self.rng.random_range(1..13).to_string();
        let day = (at + Duration::days(self.rng.random_range(1..9)))
            .format("%d %b")
            .to_string();
        let fill = |t: &str| {
            t.replace("{n}", &n)
                .replace("{f}", &f)
                .replace("{day}", &day)
        };
        let subject = fill(pick::<&str>(&mut self.rng, topic.subjects));
        let mut lines: Vec<String> = Vec::new();
        lines.push(if zh {
            "您好，".into()
        } else {
            "Hello,".into()
        });
        for _ in 0..self.rng.random_range(1..4) {
            lines.push(fill(pick::<&str>(&mut self.rng, topic.lines)));
        }
        let roll = self.rng.random::<f64>();
        let mut priority = Priority::Normal;
        if roll < 0.2 {
            lines.push(fill(pick::<&str>(
                &mut self.rng,
                if zh { URGENT_ZH } else { URGENT_EN },
            )));
            priority = Priority::High;
        } else if roll < 0.3 {
            lines.push(fill(pick::<&str>(
                &mut self.rng,
                if zh { LOW_ZH } else { LOW_EN },
            )));
            priority = Priority::Low;
        }
        for _ in 0..self.rng.random_range(0..3) {
            lines.push(pick(&mut self.rng, if zh { FILLER_ZH } else { FILLER_EN }).to_string());
        }
        let mut text = lines.join(if zh { "\n" } else { " " });
        text.insert(
            if zh {
                "您好，".len()
            } else {
                "Hello,".len()
            },
            '\n',
        );
        if self.rng.random::<f64>() < 0.5 {
            text.push_str(SIGNATURE);
        }
        let mut queue = topic.queue.to_owned();
        let mut tags: Vec<String> = topic.tag.iter().map(|t| (*t).to_owned()).collect();
        if self.rng.random::<f64>() < self.noise {
            queue = pick(&mut self.rng, QUEUES).to_string();
        }
        if self.rng.random::<f64>() < self.noise {
            priority = *pick(
                &mut self.rng,
                &[Priority::Low, Priority::Normal, Priority::High],
            );
        }
        if self.rng.random::<f64>() < self.noise {
            tags.clear();
        }
        let raw = self.raw(&subject, &text, gbk, at);
        Ticket {
            subject,
            text,
            raw,
            queue,
            priority,
            tags,
        }
    }

    fn raw(&self, subject: &str, text: &str, gbk: bool, at: DateTime<Utc>) -> Vec<u8> {
        let (cs, body, subj) = if gbk {
            let (b, _, _) = encoding_rs::GBK.encode(text);
            let (s, _, _) = encoding_rs::GBK.encode(subject);
            (
                "gbk",
                b.into_owned(),
                format!(
                    "=?gbk?B?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(s)
                ),
            )
        } else if subject.is_ascii() {
            ("utf-8", text.as_bytes().to_vec(), subject.to_owned())
        } else {
            (
                "utf-8",
                text.as_bytes().to_vec(),
                format!(
                    "=?utf-8?B?{}?=",
                    base64::engine::general_purpose::STANDARD.encode(subject)
                ),
            )
        };
        let mut raw = format!(
            "From: Customer {seq} <customer{seq}@customer{d}.test>\r\nTo: {to}\r\nSubject: {subj}\r\nDate: {date}\r\nMessage-ID: <hist{seq}.{d}@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset={cs}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
            seq = self.seq,
            d = self.seq % 97,
            to = self.to,
            date = at.to_rfc2822(),
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        raw.extend_from_slice(b"\r\n");
        raw
    }
}

/// Writes `n` generated tickets into the (empty) store behind `desk`, through `mailbox`,
/// and returns them in creation order (ticket `i + 1` is `tickets[i]`).
pub async fn build(
    desk: &Desk,
    mailbox: &MailboxName,
    to: &str,
    n: usize,
    seed: u64,
    noise: f64,
    start: DateTime<Utc>,
) -> Vec<Ticket> {
    let mut gen = Gen::new(seed, to, noise);
    let mut all = Vec::with_capacity(n);
    let mut k = 0;
    while all.len() < n {
        let at = start + Duration::hours(k);
        let batch: Vec<Ticket> = (0..500.min(n - all.len()))
            .map(|_| gen.ticket(at))
            .collect();
        let ready = desk
            .prepare(batch.iter().map(|t| t.raw.clone()).collect())
            .await;
        let out = desk
            .import(mailbox.clone(), ready, false, at)
            .await
            .expect("import batch");
        assert_eq!(out.new_tickets, batch.len(), "every request opens a ticket");
        let first = all.len() as i64 + 1;
        let plan: Vec<(TicketId, Vec<Change>)> = batch
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut ch = vec![
                    Change::Queue(t.queue.clone()),
                    Change::Priority(t.priority),
                    Change::Status(Status::Open),
                ];
                if !t.tags.is_empty() {
                    ch.push(Change::AddTags(t.tags.clone()));
                }
                (TicketId::new(first + i as i64), ch)
            })
            .collect();
        let engine: Arc<postdesk::workflow::Engine> = desk.engine().clone();
        let when = at + Duration::minutes(30);
        desk.store()
            .write(move |tx| {
                for (id, ch) in &plan {
                    engine
                        .admin_change(tx, *id, ch, "admin:history", when)
                        .unwrap_or_else(|e| panic!("#{id}: {e}"));
                }
                Ok::<_, postdesk::store::StoreError>(())
            })
            .await
            .expect("labels batch");
        all.extend(batch);
        k += 1;
    }
    all
}
