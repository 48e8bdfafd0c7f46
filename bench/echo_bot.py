#!/usr/bin/env python3
"""Baseline echo bot: the least a helpdesk can do to answer mail.

Logs in to a support address over IMAP, IDLEs (IDLE/DONE by hand), and on EXISTS fetches the
headers of new messages (UID > last) and sends a fixed reply over one kept-open SMTP connection
(TCP_NODELAY) to the From address, subject "Re: ...". Skips auto-submitted mail and bounces.
Prints READY on stdout once the first IDLE is accepted. Runs until SIGTERM/SIGINT or --seconds.
"""
import argparse
import email.message
import email.policy
import email.utils
import os
import random
import re
import signal
import smtplib
import socket
import sys
import time
from email.parser import BytesHeaderParser

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imaplite import IMAP  # noqa: E402

_UID = re.compile(rb"UID (\d+)")
_stop = False


def _on_signal(signum, frame):
    global _stop
    _stop = True


class Smtp:
    """One kept-open SMTP connection, reconnected on failure."""

    def __init__(self, host, port):
        self.host, self.port, self.s = host, port, None

    def _connect(self):
        self.s = smtplib.SMTP(self.host, self.port, local_hostname="echo-bot.example.test", timeout=30)
        self.s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.ehlo()

    def send(self, sender, rcpt, data: bytes):
        for attempt in (1, 2):
            try:
                if self.s is None:
                    self._connect()
                self.s.sendmail(sender, [rcpt], data)
                return
            except (smtplib.SMTPServerDisconnected, OSError):
                self.close()
                if attempt == 2:
                    raise

    def close(self):
        if self.s is not None:
            try:
                self.s.quit()
            except Exception:
                pass
            self.s = None


def build_reply(support, hdrs, seq):
    to = email.utils.parseaddr(hdrs.get("From", ""))[1]
    subj = str(hdrs.get("Subject", ""))
    if not subj.lower().startswith("re:"):
        subj = "Re: " + subj
    mid = hdrs.get("Message-ID", "").strip()
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = f"Echo Support <{support}>"
    msg["To"] = to
    msg["Subject"] = subj
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = f"<echo-{os.getpid()}-{seq}-{random.getrandbits(32):08x}@example.test>"
    if mid:
        msg["In-Reply-To"] = mid
        msg["References"] = mid
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content("Thank you for contacting us. We received your request and will answer shortly.\n")
    return to, msg.as_bytes()


def run(host, imap_port, smtp_port, user, password, seconds, answer_existing, out=sys.stdout):
    deadline = time.monotonic() + seconds if seconds else None
    c = IMAP(host, imap_port, timeout=30)
    c.login(user, password)
    info = c.select("INBOX")
    last = 0 if answer_existing else info.get("uidnext", 1) - 1
    smtp = Smtp(host, smtp_port)
    parser = BytesHeaderParser(policy=email.policy.default)
    sent = skipped = 0
    ready = False
    pending = answer_existing and info.get("exists", 0) > 0
    try:
        while not _stop and (deadline is None or time.monotonic() < deadline):
            if pending:
                pending = False
                _, untagged = c.command(
                    f"UID FETCH {last + 1}:* (UID BODY.PEEK[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID "
                    "AUTO-SUBMITTED RETURN-PATH)])")
                for text, lits in untagged:
                    m = _UID.search(text)
                    if not m or not lits:
                        continue
                    uid = int(m.group(1))
                    if uid <= last:
                        continue  # n:* always returns the last message
                    last = max(last, uid)
                    hdrs = parser.parsebytes(lits[0])
                    auto = str(hdrs.get("Auto-Submitted", "no")).strip().lower()
                    frm = email.utils.parseaddr(str(hdrs.get("From", "")))[1].lower()
                    if auto != "no" or not frm or frm.startswith("mailer-daemon@"):
                        skipped += 1
                        continue
                    sent += 1
                    to, data = build_reply(user, hdrs, sent)
                    smtp.send(user, to, data)
                # new mail that arrived while this FETCH ran
                pending = any(re.match(rb"\* \d+ EXISTS", t) for t, _ in untagged)
                if pending:
                    continue
            # IDLE until EXISTS (re-issue at least every 25 minutes)
            early = c.idle_start()
            if not ready:
                print("READY", file=out, flush=True)
                ready = True
            got = any(re.match(rb"\* \d+ EXISTS", t) for t, _ in early)
            idle_until = time.monotonic() + 25 * 60
            while not got and not _stop:
                now = time.monotonic()
                if now >= idle_until or (deadline is not None and now >= deadline):
                    break
                r = c.idle_wait(min(0.5, idle_until - now))
                if r is not None and re.match(rb"\* \d+ EXISTS", r[0]):
                    got = True
            after = c.idle_done()
            pending = got or any(re.match(rb"\* \d+ EXISTS", t) for t, _ in after)
    finally:
        smtp.close()
        c.logout()
    print(f"echo_bot: replied {sent}, skipped {skipped}", file=sys.stderr, flush=True)
    return sent


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--imap-port", type=int, default=int(os.environ.get("MAILSTACK_IMAP_PORT", 10143)))
    ap.add_argument("--smtp-port", type=int, default=int(os.environ.get("MAILSTACK_SMTP_PORT", 10025)))
    ap.add_argument("--user", required=True, help="support address to log in as and answer for")
    ap.add_argument("--password", default="test")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this many seconds (0: until killed)")
    ap.add_argument("--answer-existing", action="store_true", help="also answer mail already in INBOX")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    run(a.host, a.imap_port, a.smtp_port, a.user, a.password, a.seconds, a.answer_existing)


if __name__ == "__main__":
    main()
