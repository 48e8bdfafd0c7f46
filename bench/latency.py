#!/usr/bin/env python3
"""Request -> reply latency against a support address (a helpdesk or the echo bot).

Sends K requests one by one over one kept-open SMTP connection (TCP_NODELAY), each from a fresh
customer address. Before each send it logs in over IMAP as that customer (untimed); the clock
starts when the final 250 to DATA has been read and stops when `STATUS INBOX (MESSAGES)`, polled
every 10 ms on that connection, shows a message. Reports p50/p90/p99/max in ms (--json too).
"""
import argparse
import json
import os
import random
import smtplib
import socket
import statistics
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imaplite import IMAP  # noqa: E402
import gen_mail  # noqa: E402


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


def summarize(lat_ms, timeouts):
    s = sorted(lat_ms)
    return {
        "n": len(s),
        "timeouts": timeouts,
        "p50_ms": percentile(s, 50),
        "p90_ms": percentile(s, 90),
        "p99_ms": percentile(s, 99),
        "max_ms": s[-1] if s else float("nan"),
        "min_ms": s[0] if s else float("nan"),
        "mean_ms": statistics.fmean(s) if s else float("nan"),
    }


def smtp_connect(host, port):
    s = smtplib.SMTP(host, port, local_hostname="mail.customer.test", timeout=30)
    s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.ehlo()
    return s


def run(host, imap_port, smtp_port, support, requests, prefix, password="test", warmup=1,
        poll=0.010, timeout=30.0, seed=7, max_timeouts=3, log=sys.stderr):
    rng = random.Random(seed)
    smtp = smtp_connect(host, smtp_port)
    lat = []
    timeouts = consecutive = 0
    try:
        for i in range(-warmup, requests):
            cust = f"{prefix}-{'w' if i < 0 else ''}{abs(i)}@customer.test"
            imap = IMAP(host, imap_port, timeout=30)
            try:
                imap.login(cust, password)
                before = imap.status_messages("INBOX")
                data = gen_mail.new_request(rng, max(i, 0), cust, support, delivered=False,
                                            lang="en" if i % 3 else "zh", html=False, attachment=False)
                try:
                    smtp.sendmail(cust, [support], data)
                except (smtplib.SMTPServerDisconnected, OSError):
                    smtp = smtp_connect(host, smtp_port)
                    smtp.sendmail(cust, [support], data)
                t0 = time.monotonic()
                end = t0 + timeout
                got = None
                while True:
                    if imap.status_messages("INBOX") > before:
                        got = time.monotonic()
                        break
                    if time.monotonic() >= end:
                        break
                    time.sleep(poll)
                if got is None:
                    timeouts += 1
                    consecutive += 1
                    print(f"latency: request {i} ({cust}): no reply within {timeout:.0f} s", file=log, flush=True)
                else:
                    consecutive = 0
                    if i >= 0:
                        lat.append((got - t0) * 1000.0)
            finally:
                imap.logout()
            if consecutive >= max_timeouts:
                print(f"latency: {consecutive} timeouts in a row, giving up", file=log, flush=True)
                break
            if i >= 0 and (i + 1) % 50 == 0:
                print(f"latency: {i + 1}/{requests} p50 so far {percentile(sorted(lat), 50):.1f} ms",
                      file=log, flush=True)
    finally:
        try:
            smtp.quit()
        except Exception:
            pass
    return summarize(lat, timeouts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--imap-port", type=int, default=int(os.environ.get("MAILSTACK_IMAP_PORT", 10143)))
    ap.add_argument("--smtp-port", type=int, default=int(os.environ.get("MAILSTACK_SMTP_PORT", 10025)))
    ap.add_argument("--support", required=True, help="address the requests go to")
    ap.add_argument("-k", "--requests", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=1, help="untimed requests first")
    ap.add_argument("--prefix", default=None, help="customer local-part prefix (default: latc-<time>)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each reply")
    ap.add_argument("--max-timeouts", type=int, default=3, help="give up after this many timeouts in a row")
    ap.add_argument("--poll-ms", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    prefix = a.prefix or f"latc-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}"
    r = run(a.host, a.imap_port, a.smtp_port, a.support, a.requests, prefix, warmup=a.warmup,
            poll=a.poll_ms / 1000.0, timeout=a.timeout, max_timeouts=a.max_timeouts)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"{r['n']} requests ({r['timeouts']} timeouts): p50 {r['p50_ms']:.1f} ms, p90 {r['p90_ms']:.1f} ms, "
              f"p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms")


if __name__ == "__main__":
    main()
