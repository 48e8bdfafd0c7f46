#!/usr/bin/env python3
"""Bare IMAP client baseline: LOGIN, SELECT, one `UID FETCH 1:* (UID BODY.PEEK[])`.

Raw socket; literal sizes are parsed and skipped, bytes are counted up to the tagged OK.
Prints messages, bytes and seconds (FETCH only, and connect -> FETCH done); --json for drivers.
"""
import argparse
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in bench/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imaplite import IMAP, IMAPError  # noqa: E402

_FETCH = re.compile(rb"^\* \d+ FETCH ")


def fetch_all(host, port, user, password, folder="INBOX", timeout=120.0):
    t_connect = time.monotonic()
    c = IMAP(host, port, timeout=timeout)
    c.login(user, password)
    info = c.select(folder)
    t0 = time.monotonic()
    b0 = c.nbytes - (len(c.buf) - c.pos)  # bytes consumed so far
    tag = c.next_tag()
    c.send(f"{tag} UID FETCH 1:* (UID BODY.PEEK[])\r\n".encode())
    tb = tag.encode() + b" "
    messages = literal_bytes = 0
    while True:
        text, lits = c.read_response(keep_literals=False)
        if text.startswith(tb):
            if not text[len(tb):].startswith(b"OK"):
                raise IMAPError(f"FETCH failed: {text!r}")
            break
        if _FETCH.match(text) and lits:
            messages += 1
            literal_bytes += sum(lits)
    t1 = time.monotonic()
    wire = c.nbytes - (len(c.buf) - c.pos) - b0
    c.logout()
    return {
        "messages": messages,
        "exists": info.get("exists"),
        "literal_bytes": literal_bytes,
        "wire_bytes": wire,
        "fetch_seconds": t1 - t0,
        "total_seconds": t1 - t_connect,  # connect + LOGIN + SELECT + FETCH
        "msgs_per_s": messages / (t1 - t_connect) if t1 > t_connect else 0.0,
        "fetch_msgs_per_s": messages / (t1 - t0) if t1 > t0 else 0.0,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(os.environ.get("MAILSTACK_IMAP_PORT", 10143)))
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default="test")
    ap.add_argument("--folder", default="INBOX")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="one JSON object per run on stdout")
    a = ap.parse_args(argv)
    for _ in range(a.runs):
        r = fetch_all(a.host, a.port, a.user, a.password, a.folder)
        if a.json:
            print(json.dumps(r), flush=True)
        else:
            print(f"{r['messages']} messages, {r['wire_bytes'] / 1e6:.1f} MB: FETCH {r['fetch_seconds']:.3f} s "
                  f"({r['fetch_msgs_per_s']:.0f} msg/s, {r['wire_bytes'] / 1e6 / r['fetch_seconds']:.0f} MB/s); "
                  f"connect..done {r['total_seconds']:.3f} s ({r['msgs_per_s']:.0f} msg/s)", flush=True)


if __name__ == "__main__":
    main()
