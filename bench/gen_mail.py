#!/usr/bin/env python3
"""Deterministic support-mail corpus generator for postdesk benchmarks (stdlib only).

Mix (per message, by seed): ~62% new requests (English and Chinese; Chinese in UTF-8 or GBK),
~33% customer replies (Re:/RE:/回复: subject, In-Reply-To and References to an earlier message
of the corpus), ~3% auto-replies (Auto-Submitted: auto-replied, "Automatic reply:" subject),
~2% bounces (multipart/report delivery-status from MAILER-DAEMON). About 30% of requests and
replies carry an HTML alternative, ~15% an attachment (2-40 KB). Customers are
cust<N>@customer.test, so acknowledgements land in real local mailboxes.

Outputs: --maildir DIR (files straight into DIR/new, named so that Dovecot assigns UIDs in
write order; chowned to mail:mail (8:8) when run as root), --mbox FILE, --eml-dir DIR.
As a module: generate(count, seed, to_addr, ...) yields (index, bytes).
"""
import argparse
import base64
import email.utils
import os
import quopri
import random
import socket
import sys
import time
import urllib.parse

EN_TOPICS = [
    ("Invoice {n} charged twice",
     "Hello,\n\nmy card was charged twice for invoice {n}. Please refund one of the two payments.\n"
     "The second charge appeared on {day}.\n"),
    ("Cannot log in to my account",
     "Hi support,\n\nsince this morning I get 'invalid password' although I reset it twice.\n"
     "My user id is {n}. I tried Firefox and Chrome, same result.\n"),
    ("Printer on floor {f} offline",
     "Hello,\n\nthe printer on floor {f} shows offline for everybody. This is urgent, we have a\n"
     "deadline on {day}. Restarting it did not help.\n"),
    ("Refund request order #{n}",
     "Hi,\n\nI would like to return order #{n}; the item arrived damaged. Photos attached.\n"
     "Please tell me how to send it back.\n"),
    ("VPN disconnects every hour",
     "Hello team,\n\nthe VPN drops every 60 minutes, client version 5.{f}. Logs attached.\n"
     "It started after the update on {day}.\n"),
    ("Question about my subscription",
     "Hello,\n\ncan I switch my subscription {n} from monthly to yearly billing without losing\n"
     "the current discount? Thank you.\n"),
    ("Password reset email never arrives",
     "Hi,\n\nI requested a password reset three times today but the email never arrives.\n"
     "Account number {n}. I checked the spam folder.\n"),
]
ZH_TOPICS = [
    ("打印机无法连接（{f}楼）", "您好，\n\n{f}楼的打印机从今天早上开始无法连接，麻烦尽快处理。\n我们{day}之前要交材料。\n"),
    ("发票{n}重复扣款", "客服你好：\n\n订单{n}的发票被重复扣款两次，请帮忙退款。\n银行流水截图见附件。\n"),
    ("账号无法登录", "您好，\n\n我的账号{n}无法登录，提示密码错误，已经重置过两次。\n请尽快帮我看一下，谢谢。\n"),
    ("退货申请：订单{n}", "你好，\n\n订单{n}收到的商品有破损，想申请退货退款。\n请告诉我怎么寄回。\n"),
]
EN_NAMES = ["Alice Martin", "Bob Chen", "Carla Diaz", "Dmitri Ivanov", "Eve Müller", "Frank O'Neil",
            "Grace Kim", "Hugo Lefèvre", "Irene Rossi", "Jamal Wright"]
ZH_NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊"]
FILLER_EN = [
    "I have been a customer for several years and never had this problem before.",
    "Could you please let me know when I can expect an answer?",
    "My colleague has the same issue on her laptop.",
    "I already tried clearing the cache and restarting the computer.",
    "This is blocking our whole team at the moment.",
    "Please call me back if that is easier, my number is in the signature.",
]
FILLER_ZH = ["我已经是老客户了，以前从来没有遇到过这个问题。", "请问大概什么时候能回复？",
             "同事的电脑也有同样的问题。", "我已经清除了缓存并重启了电脑。", "这个问题影响了我们整个团队。"]
MAILERS = ["Microsoft Outlook 16.0", "Mozilla Thunderbird 115.3.1", "Apple Mail (2.3731)",
           "Foxmail 7.2.25", "Roundcube Webmail/1.6.5"]
ATTACHMENTS = [("log.txt", "text", "plain"), ("截图.png", "image", "png"), ("invoice.pdf", "application", "pdf"),
               ("screenshot.png", "image", "png"), ("export.zip", "application", "zip")]
BASE_TIME = 1_760_000_000


def _ew(s: str, charset: str) -> str:
    """RFC 2047 encoded word(s) (base64), split on character boundaries, folded."""
    if all(ord(c) < 128 for c in s):
        return s
    words, cur = [], ""
    for c in s:
        if len((cur + c).encode(charset)) > 42:
            words.append(cur)
            cur = c
        else:
            cur += c
    if cur:
        words.append(cur)
    return "\n ".join(f"=?{charset}?B?{base64.b64encode(w.encode(charset)).decode()}?=" for w in words)


def _addr(name: str, addr: str, charset: str) -> str:
    if all(ord(c) < 128 for c in name):
        if any(c in name for c in "'.,()<>@"):
            return f'"{name}" <{addr}>'
        return f"{name} <{addr}>"
    return f"{_ew(name, charset)} <{addr}>"


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode()  # 76-char lines, trailing newline


def _text_part(rng, text: str, charset: str, subtype="plain") -> str:
    raw = text.encode(charset)
    if all(b < 128 for b in raw):
        cte, body = "7bit", text
    else:
        r = rng.random()
        if charset == "utf-8":
            if r < 0.4:
                cte, body = "quoted-printable", quopri.encodestring(raw).decode("ascii")
            elif r < 0.7:
                cte, body = "base64", _b64(raw)
            else:
                cte, body = "8bit", text  # written back in charset by the caller (utf-8)
        else:
            if r < 0.7:
                cte, body = "base64", _b64(raw)
            else:
                cte, body = "8bit", None  # raw GBK bytes
        if body is None:
            return (f'Content-Type: text/{subtype}; charset="{charset}"\nContent-Transfer-Encoding: 8bit\n\n',
                    raw)
    if not body.endswith("\n"):
        body += "\n"
    return (f'Content-Type: text/{subtype}; charset="{charset}"\nContent-Transfer-Encoding: {cte}\n\n', body)


def _html(text: str) -> str:
    esc = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    paras = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>\n" for p in esc.split("\n\n"))
    return ("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>\n"
            f"<body style=\"font-family: Calibri, sans-serif\">\n{paras}</body></html>\n")


class _Msg:
    """Tiny MIME builder producing bytes; header values must already be RFC 2047-safe."""

    def __init__(self):
        self.headers = []

    def h(self, name, value):
        self.headers.append(f"{name}: {value}")


def _join(chunks) -> bytes:
    out = []
    for c in chunks:
        out.append(c if isinstance(c, bytes) else c.encode("utf-8"))
    return b"".join(out)


def _body_chunks(rng, i, text, charset, html, attachment):
    """Return (top-level content headers str, [body chunks])."""
    head, body = _text_part(rng, text, charset)
    if html:
        hhead, hbody = _text_part(rng, _html(text), "utf-8", "html")
        b = f"----=_Alt_{i}_{rng.getrandbits(40):010x}"
        alt_head = f'Content-Type: multipart/alternative;\n boundary="{b}"\n\n'
        alt_body = ["This is a multi-part message in MIME format.\n\n", f"--{b}\n", head, body,
                    f"\n--{b}\n", hhead, hbody, f"\n--{b}--\n"]
        head, chunks = alt_head, alt_body
    else:
        chunks = [body]
    if attachment:
        fname, maintype, subtype = rng.choice(ATTACHMENTS)
        size = rng.randint(2_000, 40_000)
        if maintype == "text":
            line = "2025-10-09T08:{:02d}:{:02d} ERROR connection reset by peer (code {})\n"
            data = "".join(line.format(k % 60, (k * 7) % 60, 100 + k % 900) for k in range(size // 55)).encode()
        else:
            data = rng.randbytes(size)
        b = f"----=_Mix_{i}_{rng.getrandbits(40):010x}"
        if all(ord(c) < 128 for c in fname):
            disp = f'attachment; filename="{fname}"'
            name = f'"{fname}"'
        else:
            disp = f"attachment;\n filename*=utf-8''{urllib.parse.quote(fname)}"
            name = f'"{_ew(fname, "utf-8")}"'
        mixed_head = f'Content-Type: multipart/mixed;\n boundary="{b}"\n\n'
        chunks = (["This is a multi-part message in MIME format.\n\n", f"--{b}\n", head] + chunks +
                  [f"\n--{b}\n", f"Content-Type: {maintype}/{subtype}; name={name}\n",
                   "Content-Transfer-Encoding: base64\n", f"Content-Disposition: {disp}\n\n",
                   _b64(data), f"\n--{b}--\n"])
        head = mixed_head
    return head, chunks


def _date(rng, i):
    t = BASE_TIME + i * 37
    return email.utils.formatdate(t, localtime=False).replace("-0000", "+0000")


def _msgid(rng, host="mail.customer.test"):
    return f"<{rng.getrandbits(64):016x}.{rng.getrandbits(32):08x}@{host}>"


def _trace(rng, i, to_addr, from_addr):
    qid = f"{rng.getrandbits(40):010X}"
    return [f"Return-Path: <{from_addr}>", f"Delivered-To: {to_addr}",
            f"Received: from mail.customer.test (mail.customer.test [192.0.2.{1 + i % 250}])\n"
            f"\tby mx.example.test (Postfix) with ESMTPS id {qid}\n\tfor <{to_addr}>; {_date(rng, i)}"]


def _finish(headers, content_head, chunks) -> bytes:
    return _join(["\n".join(headers) + "\n", "MIME-Version: 1.0\n", content_head] + chunks)


def new_request(rng, i, from_addr, to_addr, name=None, lang=None, delivered=True, html=None,
                attachment=None, thread_store=None):
    """Build one new support request; returns bytes (LF line ends)."""
    if lang is None:
        lang = "zh" if rng.random() < 0.3 else "en"
    topics, names, filler = (ZH_TOPICS, ZH_NAMES, FILLER_ZH) if lang == "zh" else (EN_TOPICS, EN_NAMES, FILLER_EN)
    subj_t, body_t = rng.choice(topics)
    n, f = rng.randint(1000, 99999), rng.randint(1, 12)
    day = email.utils.formatdate(BASE_TIME + i * 37 + 86400 * rng.randint(1, 9))[:16]
    name = name or rng.choice(names)
    charset = ("gbk" if rng.random() < 0.5 else "utf-8") if lang == "zh" else "utf-8"
    subject = subj_t.format(n=n, f=f)
    text = body_t.format(n=n, f=f, day=day)
    text += "\n" + " ".join(rng.sample(filler, rng.randint(1, 3))) + "\n"
    text += ("\n谢谢！\n" if lang == "zh" else "\nThanks,\n") + name + "\n"
    if lang == "en" and rng.random() < 0.4:
        text += "--\n" + name + "\nPhone +1 555 01" + f"{rng.randint(0, 99):02d}" + "\n"
    if html is None:
        html = rng.random() < 0.3
    if attachment is None:
        attachment = rng.random() < 0.15
    mid = _msgid(rng)
    headers = (_trace(rng, i, to_addr, from_addr) if delivered else []) + [
        f"From: {_addr(name, from_addr, charset)}",
        f"To: {to_addr}",
        f"Subject: {_ew(subject, charset)}",
        f"Date: {_date(rng, i)}",
        f"Message-ID: {mid}",
        f"X-Mailer: {rng.choice(MAILERS)}",
    ]
    head, chunks = _body_chunks(rng, i, text, charset, html, attachment)
    if thread_store is not None:
        thread_store.append({"from": from_addr, "name": name, "subject": subject, "charset": charset,
                             "lang": lang, "text": text, "mid": mid, "refs": []})
    return _finish(headers, head, chunks)


def _reply(rng, i, th, to_addr, delivered):
    prefix = rng.choices(["Re: ", "RE: ", "回复：" if th["lang"] == "zh" else "Re: "], [8, 1, 1])[0]
    subject = th["subject"] if th["subject"].startswith(("Re: ", "RE: ", "回复：")) else prefix + th["subject"]
    if th["lang"] == "zh":
        lead = rng.choice(["请问这个问题有进展吗？还是不行。", "补充一下：问题今天又出现了。", "谢谢，问题已经解决了。"])
    else:
        lead = rng.choice(["Any update on this? It is still broken.", "Adding some details: it happened again today.",
                           "Thanks, that solved it.", "I sent the requested screenshots, see attachment."])
    quoted = "\n".join("> " + l for l in th["text"].splitlines())
    text = f"{lead}\n\n{th['name']}\n\nOn {_date(rng, i - 1)}, {th['name']} wrote:\n{quoted}\n"
    mid = _msgid(rng)
    refs = th["refs"] + [th["mid"]]
    headers = (_trace(rng, i, to_addr, th["from"]) if delivered else []) + [
        f"From: {_addr(th['name'], th['from'], th['charset'])}",
        f"To: {to_addr}",
        f"Subject: {_ew(subject, th['charset'])}",
        f"Date: {_date(rng, i)}",
        f"Message-ID: {mid}",
        f"In-Reply-To: {th['mid']}",
        "References: " + "\n ".join(refs[-10:]),
        f"X-Mailer: {rng.choice(MAILERS)}",
    ]
    head, chunks = _body_chunks(rng, i, text, th["charset"], rng.random() < 0.3, rng.random() < 0.15)
    th["mid"], th["refs"] = mid, refs
    return _finish(headers, head, chunks)


def _auto(rng, i, th, to_addr, delivered):
    subject = "Automatic reply: " + th["subject"]
    back = email.utils.formatdate(BASE_TIME + i * 37 + 86400 * 3)[:16]
    text = (f"Thank you for your message. I am out of the office until {back} "
            "with limited access to email.\n")
    headers = (_trace(rng, i, to_addr, th["from"]) if delivered else []) + [
        f"From: {_addr(th['name'], th['from'], th['charset'])}",
        f"To: {to_addr}",
        f"Subject: {_ew(subject, th['charset'])}",
        f"Date: {_date(rng, i)}",
        f"Message-ID: {_msgid(rng)}",
        "Auto-Submitted: auto-replied",
        "X-Auto-Response-Suppress: All",
    ]
    head, chunks = _body_chunks(rng, i, text, "utf-8", rng.random() < 0.5, False)
    return _finish(headers, head, chunks)


def _bounce(rng, i, th, to_addr, delivered):
    b = f"{rng.getrandbits(40):010X}.{BASE_TIME + i * 37}/mx.customer.test"
    date = _date(rng, i)
    qid = f"{rng.getrandbits(40):010X}"
    rcpt = th["from"]
    trace = ([f"Return-Path: <>", f"Delivered-To: {to_addr}",
              f"Received: by mx.customer.test (Postfix) id {qid}; {date}"] if delivered else [])
    headers = trace + [
        f"From: MAILER-DAEMON@mx.customer.test (Mail Delivery System)",
        f"To: {to_addr}",
        "Subject: Undelivered Mail Returned to Sender",
        f"Date: {date}",
        f"Message-ID: <{qid}.{i}@mx.customer.test>",
        "Auto-Submitted: auto-replied",
    ]
    head = f'Content-Type: multipart/report; report-type=delivery-status;\n boundary="{b}"\n\n'
    chunks = [
        "This is a MIME-encapsulated message.\n\n",
        f"--{b}\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n",
        "This is the mail system at host mx.customer.test.\n\n"
        "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n"
        f"<{rcpt}>: host mail.customer.test[192.0.2.25] said: 550 5.1.1\n    <{rcpt}>: Recipient address rejected: "
        "User unknown in virtual mailbox table (in reply to RCPT TO command)\n",
        f"\n--{b}\nContent-Description: Delivery report\nContent-Type: message/delivery-status\n\n",
        f"Reporting-MTA: dns; mx.customer.test\nX-Postfix-Queue-ID: {qid}\nX-Postfix-Sender: rfc822; {to_addr}\n"
        f"Arrival-Date: {date}\n\nFinal-Recipient: rfc822; {rcpt}\nOriginal-Recipient: rfc822;{rcpt}\n"
        "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mail.customer.test\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown\n",
        f"\n--{b}\nContent-Description: Undelivered Message Headers\nContent-Type: text/rfc822-headers\n\n",
        f"Return-Path: <{to_addr}>\nFrom: ACME Support <{to_addr}>\nTo: {rcpt}\n"
        f"Subject: {_ew('[ACME #' + str(1000 + i) + '] Re: ' + th['subject'], 'utf-8')}\n"
        f"Date: {_date(rng, i - 1)}\nMessage-ID: <ack-{rng.getrandbits(48):012x}@helpdesk.example.test>\n"
        "Auto-Submitted: auto-replied\n",
        f"\n--{b}--\n",
    ]
    return _finish(headers, head, chunks)


def generate(count=10000, seed=1, to_addr="support@example.test", customers=4000, delivered=True, stats=None):
    """Yield (index, message bytes with LF line ends), deterministic for (count-prefix, seed, to_addr).

    If stats is a dict, it receives counts per kind: new, reply, auto_reply, bounce."""
    stats = {} if stats is None else stats
    rng = random.Random(seed)
    threads = []
    for i in range(count):
        r = rng.random()
        if threads and r < 0.33:
            # mostly recent threads, sometimes old ones
            th = threads[-1 - min(int(rng.expovariate(1 / 40)), len(threads) - 1)] if rng.random() < 0.8 \
                else rng.choice(threads)
            data, kind = _reply(rng, i, th, to_addr, delivered), "reply"
        elif threads and r < 0.36:
            data, kind = _auto(rng, i, rng.choice(threads), to_addr, delivered), "auto_reply"
        elif threads and r < 0.38:
            data, kind = _bounce(rng, i, rng.choice(threads), to_addr, delivered), "bounce"
        else:
            cust = f"cust{rng.randint(1, customers)}@customer.test"
            data, kind = new_request(rng, i, cust, to_addr, delivered=delivered, thread_store=threads), "new"
        stats[kind] = stats.get(kind, 0) + 1
        yield i, data


# ---- writers ----------------------------------------------------------------

def _makedirs_owned(path, uid, gid):
    """mkdir -p; chown every directory this call created (when uid is not None)."""
    missing = []
    p = os.path.abspath(path)
    while not os.path.isdir(p):
        missing.append(p)
        p = os.path.dirname(p)
    for d in reversed(missing):
        os.mkdir(d, 0o700)
        if uid is not None:
            os.chown(d, uid, gid)


def write_maildir(root, messages, owner=None):
    """Write into root/new with names that make Dovecot assign UIDs in write order. Returns (n, bytes)."""
    if owner is None and os.geteuid() == 0:
        owner = (8, 8)
    uid, gid = owner if owner else (None, None)
    for sub in ("cur", "new", "tmp"):
        _makedirs_owned(os.path.join(root, sub), uid, gid)
    newdir = os.path.join(root, "new")
    t, pid, host = int(time.time()), os.getpid(), socket.gethostname().replace("/", "_").replace(":", "_")
    n = total = 0
    for i, data in messages:
        name = f"{t}.M{i:08d}P{pid}.{host},S={len(data)}"
        path = os.path.join(newdir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            if uid is not None:
                os.fchown(fd, uid, gid)
        finally:
            os.close(fd)
        n += 1
        total += len(data)
    return n, total


def write_mbox(path, messages):
    n = total = 0
    with open(path, "wb") as f:
        for i, data in messages:
            f.write(f"From MAILER-DAEMON {time.asctime(time.gmtime(BASE_TIME + i * 37))}\n".encode())
            for line in data.split(b"\n"):
                if line.lstrip(b">").startswith(b"From "):
                    line = b">" + line
                f.write(line + b"\n")
            n += 1
            total += len(data)
    return n, total


def write_eml_dir(path, messages):
    os.makedirs(path, exist_ok=True)
    n = total = 0
    for i, data in messages:
        with open(os.path.join(path, f"{i:06d}.eml"), "wb") as f:
            f.write(data)
        n += 1
        total += len(data)
    return n, total


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--count", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--to", default="support@example.test", help="support address (To:, Delivered-To:)")
    ap.add_argument("--customers", type=int, default=4000, help="distinct cust<N>@customer.test senders")
    ap.add_argument("--maildir")
    ap.add_argument("--mbox")
    ap.add_argument("--eml-dir")
    ap.add_argument("--no-chown", action="store_true", help="--maildir: don't chown to mail (8:8) as root")
    a = ap.parse_args(argv)
    outs = [x for x in (a.maildir, a.mbox, a.eml_dir) if x]
    if len(outs) != 1:
        ap.error("give exactly one of --maildir, --mbox, --eml-dir")
    t0 = time.monotonic()
    msgs = generate(a.count, a.seed, a.to, a.customers)
    if a.maildir:
        n, total = write_maildir(a.maildir, msgs, owner=(None, None) if a.no_chown else None)
    elif a.mbox:
        n, total = write_mbox(a.mbox, msgs)
    else:
        n, total = write_eml_dir(a.eml_dir, msgs)
    dt = time.monotonic() - t0
    print(f"wrote {n} messages, {total / 1e6:.1f} MB, in {dt:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
