"""A generated helpdesk history in postdesk's schema, for bench/report (Python stdlib only).

`build(db, migrations, tickets, days, seed, agents)` applies the migrations' SQL, sets
PRAGMA user_version as rusqlite_migration does, and writes `tickets` tickets spread over the
last `days` days (ids in creation order), each with the rows postdesk would have written:
- messages: the customer's request, the acknowledgement, and for answered tickets the agent's
  mail (agent set, audience internal) and the answer;
- events: ticket.created, acknowledgement.queued; when answered assignee, status new->open,
  first_response, answer.queued, status open->pending; sometimes a reopening (pending->open);
  status resolved, survey.queued, csat, status closed;
- sla_deadlines for the `support` queue: first_response (2 h) and resolution (24 h), met,
  warned or breached as the times say.
About a third of the tickets are in Chinese; most come from a few dozen recurring problems,
the rest are one-off requests. Deterministic for a given seed and `now` (rounded to the hour).
"""
import datetime as dt
import random
import sqlite3

EN = [
    ("support", ["Printer offline", "Printer on floor {n} not printing", "Printer jams again"],
     "The printer on floor {n} {v}. We already restarted it twice and checked the paper tray."),
    ("support", ["VPN keeps disconnecting", "Cannot connect to VPN", "VPN very slow from home"],
     "My VPN connection {v} when I work from home. The client shows a timeout after a minute."),
    ("support", ["Password reset", "Account locked after password change", "Password expired"],
     "I changed my password this morning and now my account {v}. Please reset it."),
    ("support", ["Outlook not syncing", "Email stuck in outbox", "Mailbox full"],
     "Outlook {v} since the last update; new mail does not arrive on my laptop."),
    ("support", ["Laptop very slow", "Laptop does not boot", "Laptop battery drains fast"],
     "My laptop {v}. It is the Lenovo model we got last year, serial on the sticker."),
    ("support", ["Wifi drops in meeting room", "No wifi on floor {n}", "Guest wifi password"],
     "The wifi in the meeting room {v}; video calls freeze every few minutes."),
    ("support", ["Monitor flickering", "Second monitor not detected", "Docking station issue"],
     "The monitor on my desk {v} when connected through the docking station."),
    ("support", ["Shared drive access", "Cannot open shared folder", "Permission denied on shared drive"],
     "I need access to the finance shared drive; it {v} for my account."),
    ("support", ["Teams calls drop", "Microphone not working in Teams", "Teams camera black"],
     "In Teams calls my headset {v}. Other apps work fine."),
    ("support", ["Software licence request", "Need Adobe licence", "Licence expired"],
     "Please assign a licence for the design software; the trial {v}."),
    ("support", ["Phone voicemail not working", "Desk phone no dial tone", "Forward calls to mobile"],
     "My desk phone {v}; callers cannot leave a voicemail."),
    ("support", ["Calendar invites missing", "Meeting room booking fails", "Calendar shows wrong time zone"],
     "Calendar invitations {v} and the room booking shows the wrong time."),
    ("billing", ["Invoice amount wrong", "Invoice sent twice", "Need a corrected invoice"],
     "The invoice for order {n} {v}; the amount does not match the contract."),
    ("billing", ["Refund request", "Refund not received", "Charged twice, refund please"],
     "I returned the parcel two weeks ago and the refund {v}."),
    ("billing", ["Delivery delayed", "Parcel not delivered", "Tracking number not working"],
     "My order {n} {v}; the tracking page shows no update since Monday."),
    ("billing", ["Change billing address", "Update payment method", "Credit card declined"],
     "Please update the billing details for our account; the payment {v}."),
    ("billing", ["Cancel subscription", "Subscription renewed by mistake", "Downgrade plan"],
     "We want to cancel the subscription; it {v} although we asked last month."),
    ("billing", ["Quote for licences", "Price for {n} seats", "Volume discount"],
     "Could you send a quote for {n} more seats? Our renewal {v} next quarter."),
]
EN_VERBS = ["stopped working", "fails every time", "shows an error", "is very slow", "does not respond",
            "worked yesterday but not today", "keeps failing", "gives a strange message"]

ZH = [
    ("billing", ["发票抬头开错了", "申请开具增值税发票", "发票还没有收到", "发票金额不对"],
     "你好，订单{n}的发票{v}，请帮忙重新开具电子发票，谢谢。"),
    ("billing", ["申请退款", "退款还没有到账", "重复扣款请退款"],
     "您好，我上周申请的退款{v}，订单号是{n}，麻烦尽快处理。"),
    ("billing", ["快递一直没有送到", "物流信息不更新", "包裹破损"],
     "我的订单{n}的快递{v}，物流页面一直没有更新。"),
    ("billing", ["合同续签", "合同盖章", "合同金额有误"],
     "我们公司的合同{v}，请联系销售确认续签的价格。"),
    ("support", ["无法登录系统", "账号被锁定", "密码重置"],
     "今天早上开始我的账号{v}，提示密码错误，请帮忙重置密码。"),
    ("support", ["打印机无法打印", "打印机卡纸", "打印机显示离线"],
     "三楼的打印机{v}，已经重启过两次，还是不行。"),
    ("support", ["网络连接不稳定", "无线网络断开", "VPN连接失败"],
     "在家办公时VPN网络{v}，视频会议经常断开。"),
    ("support", ["邮箱收不到邮件", "邮件发送失败", "邮箱空间已满"],
     "我的邮箱{v}，客户说发给我的邮件被退回了。"),
    ("support", ["电脑运行很慢", "电脑无法开机", "电脑蓝屏"],
     "我的笔记本电脑{v}，昨天更新系统以后就这样了。"),
    ("support", ["会议室投影仪坏了", "会议室预订失败", "视频会议没有声音"],
     "二楼会议室的投影仪{v}，下午有客户会议，请尽快处理。"),
]
ZH_VERBS = ["出现错误", "一直失败", "没有反应", "显示异常", "还是不行", "有问题"]

GREETINGS_EN = ["Hello,", "Hi team,", "Dear support,", "Good morning,", ""]
CLOSINGS_EN = ["Thanks, {name}", "Best regards,\n{name}", "Kind regards, {name}", "Cheers, {name}"]
FILLER_EN = ["This is quite urgent for our team.", "I attached a screenshot of the error.",
             "Could you please have a look today?", "Several colleagues have the same problem.",
             "I am working from the Berlin office this week.", "Let me know if you need more details."]
ONE_OFF_EN = ["Parking permit for visitors", "Coffee machine leaking", "Question about the holiday schedule",
              "Broken chair in room {n}", "Request for a new badge", "Air conditioning too cold",
              "Lost and found: umbrella", "Training session registration", "Desk move request"]
NAMES = ["Anna", "Tom", "Li Wei", "Maria", "John", "Chen Jing", "Paul", "Sofia", "Zhang Min", "Lukas"]


def sqlite_version():
    return sqlite3.sqlite_version


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def text_for(rng, n):
    """(subject, body, language, queue) of ticket number n."""
    if rng.random() < 0.08:
        subject = rng.choice(ONE_OFF_EN).format(n=rng.randint(1, 99))
        body = f"Hello,\n{subject} - {rng.choice(FILLER_EN)} {rng.choice(FILLER_EN)}\nThanks"
        return subject, body, "en", "billing"
    if rng.random() < 0.33:
        queue, subjects, sentence = rng.choice(ZH)
        body = "你好，\n" + sentence.format(n=rng.randint(10000, 99999), v=rng.choice(ZH_VERBS)) + \
            "\n谢谢！\n" + rng.choice(NAMES)
        return rng.choice(subjects), body, "zh-CN", queue
    queue, subjects, sentence = rng.choice(EN)
    name = rng.choice(NAMES)
    parts = [rng.choice(GREETINGS_EN),
             sentence.format(n=rng.randint(1, 9), v=rng.choice(EN_VERBS)),
             " ".join(rng.sample(FILLER_EN, 2)),
             rng.choice(CLOSINGS_EN).format(name=name)]
    subject = rng.choice(subjects).format(n=rng.randint(1, 9))
    return subject, "\n".join(p for p in parts if p), "en", queue


def build(db, migrations, tickets, days, seed, agents):
    rng = random.Random(seed)
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    first = (now - dt.timedelta(days=days)).replace(hour=0)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    for i, sql in enumerate(migrations, start=1):
        conn.executescript(f"BEGIN;\n{sql}\nCOMMIT;")
        conn.execute(f"PRAGMA user_version = {i}")
    span = (now - first).total_seconds()
    created = sorted(first + dt.timedelta(seconds=rng.random() * span) for _ in range(tickets))
    counts = {"tickets": 0, "events": 0, "messages": 0, "deadlines": 0}
    conn.execute("BEGIN")
    conn.execute("INSERT INTO mailboxes (name, uidvalidity, last_uid) VALUES ('support', 1, ?)", (tickets,))
    batch = {"t": [], "e": [], "m": [], "d": []}
    mid = 0

    def flush():
        conn.executemany(
            "INSERT INTO tickets (id, tag, subject, status, priority, queue, mailbox, requester, requester_name,"
            " assignee, language, created_at, updated_at, closed_at, first_response_at, resolved_at, csat)"
            " VALUES (?, 'BENCH', ?, ?, 'normal', ?, 'support', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch["t"])
        conn.executemany(
            "INSERT INTO messages (id, ticket_id, direction, message_id, class, from_addr, to_addrs, subject,"
            " text, mailbox, recorded_at, audience, agent) VALUES (?, ?, ?, ?, 'human', ?, ?, ?, ?, 'support', ?, ?, ?)",
            batch["m"])
        conn.executemany(
            "INSERT INTO events (ticket_id, at, actor, kind, old, new) VALUES (?, ?, ?, ?, ?, ?)", batch["e"])
        conn.executemany(
            "INSERT INTO sla_deadlines (ticket_id, deadline, started_at, due_at, total_secs, used_secs, resumed_at,"
            " warned_at, breached_at, met_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, ?)", batch["d"])
        for k, name in (("t", "tickets"), ("e", "events"), ("m", "messages"), ("d", "deadlines")):
            counts[name] += len(batch[k])
            batch[k].clear()

    minute = dt.timedelta(minutes=1)
    for tid, c in enumerate(created, start=1):
        subject, body, lang, queue = text_for(rng, tid)
        customer = f"customer{tid}@example.com"
        age = now - c
        answered = rng.random() < (0.88 if age > dt.timedelta(hours=2) else 0.3)
        fr = resolved = closed = None
        status, agent, csat = "new", None, None
        ev = [(tid, ts(c), customer, "ticket.created", None, "new"),
              (tid, ts(c), "postdesk", "acknowledgement.queued", None, customer)]
        mid += 1
        msgs = [(mid, tid, "in", f"req{tid}@example.com", customer, '["support@helpdesk.bench"]', subject, body,
                 ts(c), "customer", None)]
        mid += 1
        msgs.append((mid, tid, "out", f"ack{tid}@helpdesk.bench", "support@helpdesk.bench", f'["{customer}"]',
                     f"[BENCH #{tid}] {subject}", f"We received your request [BENCH #{tid}] and will answer soon.\n"
                     f"Your message:\n> {body[:120]}", ts(c), "customer", None))
        if answered:
            r = rng.random()
            delay = (rng.uniform(300, 7200) if r < 0.6 else rng.uniform(7200, 43200) if r < 0.9
                     else rng.uniform(43200, 259200))
            fr = min(c + dt.timedelta(seconds=delay), now - minute)
            agent = rng.choice(agents)
            status = "pending"
            ev += [(tid, ts(fr), agent, "assignee", None, agent), (tid, ts(fr), agent, "status", "new", "open"),
                   (tid, ts(fr), agent, "first_response", None, None),
                   (tid, ts(fr), "postdesk", "answer.queued", None, customer),
                   (tid, ts(fr), agent, "status", "open", "pending")]
            answer = "Hello,\nthank you for your message. We are looking into it and will come back to you."
            mid += 1
            msgs.append((mid, tid, "in", f"ag{tid}@agents.bench", f"{agent}@agents.bench",
                         '["support@helpdesk.bench"]', f"Re: [BENCH #{tid}] {subject}", answer, ts(fr),
                         "internal", agent))
            mid += 1
            msgs.append((mid, tid, "out", f"ans{tid}@helpdesk.bench", "support@helpdesk.bench", f'["{customer}"]',
                         f"Re: [BENCH #{tid}] {subject}", answer, ts(fr), "customer", None))
            u = rng.random()
            if rng.random() < 0.06:
                reopen = fr + (now - fr) * rng.random() * 0.3
                ev.append((tid, ts(reopen), customer, "status", "pending", "open"))
                ev.append((tid, ts(reopen), agent, "status", "open", "pending"))
            resolved = fr + dt.timedelta(seconds=rng.uniform(1800, 5 * 86400))
            if u < 0.75 and resolved < now:
                status = "resolved"
                ev += [(tid, ts(resolved), agent, "status", "pending", "resolved"),
                       (tid, ts(resolved), "postdesk", "survey.queued", None, customer)]
                if rng.random() < 0.35:
                    at = resolved + dt.timedelta(hours=1)
                    if at < now:
                        csat = rng.choices([1, 2, 3, 4, 5], weights=[5, 5, 10, 30, 50])[0]
                        ev.append((tid, ts(at), customer, "csat", None, str(csat)))
                closing = resolved + dt.timedelta(days=2)
                if closing < now:
                    closed, status = closing, "closed"
                    ev.append((tid, ts(closing), "postdesk", "status", "resolved", "closed"))
            else:
                resolved = None
                if u < 0.82:
                    status = "open"
        updated = max(t for t in (c, fr, resolved, closed) if t is not None)
        batch["t"].append((tid, subject, status, queue, customer, customer.split("@")[0], agent, lang, ts(c),
                           ts(updated), ts(closed) if closed else None, ts(fr) if fr else None,
                           ts(resolved) if resolved else None, csat))
        batch["e"].extend(ev)
        batch["m"].extend(msgs)
        if queue == "support":
            for name, total, met in (("first_response", 7200, fr), ("resolution", 86400, resolved)):
                due = c + dt.timedelta(seconds=total * (2 if name == "first_response" else 3))
                end = met or now
                warned = c + dt.timedelta(seconds=total * 1.6) if end > c + dt.timedelta(seconds=total * 1.6) else None
                breached = due + minute if end > due + minute else None
                batch["d"].append((tid, name, ts(c), ts(due), total, ts(c), ts(warned) if warned else None,
                                   ts(breached) if breached else None, ts(met) if met else None))
        if tid % 5000 == 0:
            flush()
    flush()
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"counts": counts, "first_day": first.strftime("%Y-%m-%d"), "zh_share": 0.33 * 0.92,
            "topics": len(EN) + len(ZH)}
