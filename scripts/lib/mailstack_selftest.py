#!/usr/bin/env python3
"""End-to-end checks of the private mail stack (run via `scripts/mailstack selftest`).

Each check uses fresh addresses, so it can run against a stack that tests are using.
Checks: plain delivery + IMAP read, plus-addressing, explicit/wrong passwords,
Sieve vacation autoreply, Postfix DSN for @bounce.test.
"""
import email
import imaplib
import os
import smtplib
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage

HOST = os.environ.get("MAILSTACK_HOST", "127.0.0.1")
SMTP_PORT = int(os.environ.get("MAILSTACK_SMTP_PORT", "10025"))
IMAP_PORT = int(os.environ.get("MAILSTACK_IMAP_PORT", "10143"))
PASSWORD = os.environ.get("MAILSTACK_ANY_PASSWORD", "test")
SCRIPT = os.environ.get("MAILSTACK_SCRIPT", os.path.join(os.path.dirname(__file__), "..", "mailstack"))


def tag():
    return uuid.uuid4().hex[:10]


def send(frm, to, subject, body="hello\n", headers=None, envelope_from=None):
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{tag()}@selftest.example.test>"
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.send_message(msg, from_addr=envelope_from or frm, to_addrs=[to])
    return msg["Message-ID"]


def fetch_all(user, password=PASSWORD):
    """Return list of email.message.Message in user's INBOX (empty if none)."""
    m = imaplib.IMAP4(HOST, IMAP_PORT)
    try:
        m.login(user, password)
        m.select("INBOX", readonly=True)
        typ, data = m.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        out = []
        for u in uids:
            typ, d = m.uid("FETCH", u, "(BODY.PEEK[])")
            out.append(email.message_from_bytes(d[0][1]))
        return out
    finally:
        try:
            m.logout()
        except Exception:
            pass


def wait_for(user, pred, timeout=15.0):
    t0 = time.monotonic()
    while True:
        msgs = fetch_all(user)
        hits = [m for m in msgs if pred(m)]
        if hits:
            return hits, time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return [], time.monotonic() - t0
        time.sleep(0.1)


RESULTS = []


def check(name, ok, detail=""):
    RESULTS.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)


def t_delivery():
    cust = f"cust-{tag()}@customer.test"
    t0 = time.monotonic()
    mid = send(f"x-{tag()}@example.test", cust, "delivery check")
    hits, dt = wait_for(cust, lambda m: m["Message-ID"] == mid)
    check("SMTP -> IMAP delivery to fresh " + cust, bool(hits), f"{time.monotonic() - t0:.2f} s")


def t_plus():
    base = f"t-{tag()}"
    addr = f"{base}+ticket-42@example.test"
    mid = send(f"x-{tag()}@customer.test", addr, "plus check")
    hits, dt = wait_for(f"{base}@example.test", lambda m: m["Message-ID"] == mid)
    ok = bool(hits) and hits[0]["Delivered-To"] == addr
    check("plus-addressing lands in base INBOX, Delivered-To keeps tag", ok, f"{dt:.2f} s")


def t_passwords():
    for user, pw, want in [("alice@customer.test", "alice-pw", True), ("alice@customer.test", "test", True),
                           ("support@example.test", "support-pw", True), ("alice@customer.test", "wrong", False)]:
        m = imaplib.IMAP4(HOST, IMAP_PORT)
        try:
            m.login(user, pw)
            got = True
        except imaplib.IMAP4.error:
            got = False
        finally:
            try:
                m.logout()
            except Exception:
                pass
        check(f"IMAP login {user}/{pw} -> {'ok' if want else 'refused'}", got == want)


def t_vacation():
    cust = f"cust-{tag()}@customer.test"
    x = f"x-{tag()}@example.test"
    script = ('require ["vacation", "vacation-seconds"];\n'
              'vacation :seconds 0 :subject "Out of office" "I am away until Monday.";\n')
    path = subprocess.run([SCRIPT, "sieve", cust, "-"], input=script.encode(), check=True,
                          capture_output=True).stdout.decode().strip()
    t0 = time.monotonic()
    send(x, cust, "question 1")
    hits, _ = wait_for(x, lambda m: m["Subject"] == "Out of office")
    dt = time.monotonic() - t0
    detail = f"{dt:.2f} s; script {path}"
    if hits:
        r = hits[0]
        detail += f"; Auto-Submitted={r['Auto-Submitted']}; Return-Path={r['Return-Path']}; From={r['From']}"
    check("Sieve vacation reply arrives in sender's INBOX", bool(hits), detail)
    # the original must still be delivered to the customer
    got, _ = wait_for(cust, lambda m: m["Subject"] == "question 1", timeout=5)
    check("original delivered to vacationing mailbox", bool(got))
    # :seconds 0 -> a second message gets a second reply
    send(x, cust, "question 2")
    hits2, _ = wait_for(x, lambda m: m["Subject"] == "Out of office" and len(fetch_all(x)) >= 2, timeout=10)
    n = len([m for m in fetch_all(x) if m["Subject"] == "Out of office"])
    check("vacation :seconds 0 replies again to the same sender", n >= 2, f"{n} replies")
    # Precedence: bulk gets no reply
    y = f"y-{tag()}@example.test"
    send(y, cust, "bulk", headers={"Precedence": "bulk"})
    got, _ = wait_for(cust, lambda m: m["Subject"] == "bulk", timeout=5)
    time.sleep(1.0)
    check("no vacation reply to Precedence: bulk", bool(got) and not fetch_all(y))


def t_bounce():
    y = f"y-{tag()}@example.test"
    z = f"z-{tag()}@bounce.test"
    t0 = time.monotonic()
    mid = send(y, z, "to nowhere")
    hits, _ = wait_for(y, lambda m: m.get_content_type() == "multipart/report")
    dt = time.monotonic() - t0
    ok = False
    detail = f"{dt:.2f} s"
    if hits:
        r = hits[0]
        parts = [p.get_content_type() for p in r.walk()]
        status = ""
        for p in r.walk():
            if p.get_content_type() == "message/delivery-status":
                status = str(p.get_payload()[1].get("Status", "")) if isinstance(p.get_payload(), list) else ""
        ok = (r.get_param("report-type") == "delivery-status" and "message/delivery-status" in parts
              and status.startswith("5.1.1"))
        detail += f"; From={r['From']}; Status={status}; parts={parts}"
    check(f"DSN (multipart/report) for {z} back to {y}", ok, detail)


def t_reject():
    y = f"y-{tag()}@example.test"
    try:
        send(y, f"z-{tag()}@reject.test", "refused")
        check("RCPT to @reject.test refused with 550 5.1.1", False, "accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = list(e.recipients.values())[0]
        check("RCPT to @reject.test refused with 550 5.1.1", code == 550 and text.startswith(b"5.1.1"),
              f"{code} {text.decode()}")


def smtp_answers():
    try:
        with smtplib.SMTP(HOST, SMTP_PORT, timeout=2) as s:
            s.noop()
        return True
    except OSError:
        return False


def t_smtpdown():
    t0 = time.monotonic()
    subprocess.run([SCRIPT, "smtp-stop"], check=True, capture_output=True)
    t1 = time.monotonic()
    down = not smtp_answers()
    subprocess.run([SCRIPT, "smtp-start"], check=True, capture_output=True)
    t2 = time.monotonic()
    up = smtp_answers()
    cust = f"cust-{tag()}@customer.test"
    mid = send(f"x-{tag()}@example.test", cust, "after restart")
    hits, _ = wait_for(cust, lambda m: m["Message-ID"] == mid)
    check("smtp-stop -> refused, smtp-start -> answers and delivers", down and up and bool(hits),
          f"smtp-stop {t1 - t0:.2f} s, smtp-start {t2 - t1:.2f} s")


def main():
    tests = {"delivery": t_delivery, "plus": t_plus, "passwords": t_passwords,
             "vacation": t_vacation, "bounce": t_bounce, "reject": t_reject, "smtpdown": t_smtpdown}
    names = sys.argv[1:] or [n for n in tests if n != "smtpdown"]
    t0 = time.monotonic()
    for n in names:
        tests[n]()
    passed = sum(RESULTS)
    print(f"selftest: {passed} passed, {len(RESULTS) - passed} failed ({time.monotonic() - t0:.2f} s)")
    sys.exit(0 if all(RESULTS) else 1)


if __name__ == "__main__":
    main()
