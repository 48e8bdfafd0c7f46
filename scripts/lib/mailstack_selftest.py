#!/usr/bin/env python3
"""End-to-end checks of the private mail stack (run via `scripts/mailstack selftest`).

Each check uses fresh addresses, so it can run against a stack that tests are using.
Checks: plain delivery + IMAP read, plus-addressing, explicit/wrong passwords,
Sieve vacation autoreply, Postfix DSN for @bounce.test, @reject.test refused at RCPT;
tls (STARTTLS on the IMAP port, imaps, the OAuth server, verified with the stack's CA),
submission (STARTTLS required, AUTH PLAIN, unauthenticated RCPT refused),
oauth (device flow end to end, XOAUTH2/OAUTHBEARER on IMAP and submission, expiry, refresh
rotation and reuse detection, revocation); smtpdown only when named.
"""
import base64
import datetime
import email
import imaplib
import json
import os
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email.message import EmailMessage

HOST = os.environ.get("MAILSTACK_HOST", "127.0.0.1")
SMTP_PORT = int(os.environ.get("MAILSTACK_SMTP_PORT", "10025"))
IMAP_PORT = int(os.environ.get("MAILSTACK_IMAP_PORT", "10143"))
PASSWORD = os.environ.get("MAILSTACK_ANY_PASSWORD", "test")
SCRIPT = os.environ.get("MAILSTACK_SCRIPT", os.path.join(os.path.dirname(__file__), "..", "mailstack"))
IMAPS_PORT = int(os.environ.get("MAILSTACK_IMAPS_PORT", "10993"))
SUBMISSION_PORT = int(os.environ.get("MAILSTACK_SUBMISSION_PORT", "10587"))
CA_FILE = os.environ.get("MAILSTACK_CA_FILE", "")
OAUTH_ISSUER = os.environ.get("MAILSTACK_OAUTH_ISSUER", "https://127.0.0.1:10443")
DEVICE_URL = os.environ.get("MAILSTACK_OAUTH_DEVICE_URL", OAUTH_ISSUER + "/device/auth")
TOKEN_URL = os.environ.get("MAILSTACK_OAUTH_TOKEN_URL", OAUTH_ISSUER + "/token")
REVOCATION_URL = os.environ.get("MAILSTACK_OAUTH_REVOCATION_URL", OAUTH_ISSUER + "/token/revocation")
CLIENT_ID = os.environ.get("MAILSTACK_OAUTH_CLIENT_ID", "postdesk")
SCOPES = os.environ.get("MAILSTACK_OAUTH_SCOPES", "openid offline_access imap smtp")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


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


# ---------------------------------------------------------------- TLS, submission, OAuth
def tls_context():
    ctx = ssl.create_default_context(cafile=CA_FILE)  # verifies chain + hostname/IP
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def t_tls():
    ctx = tls_context()
    m = imaplib.IMAP4(HOST, IMAP_PORT)
    try:
        caps = m.capabilities
        m.starttls(ssl_context=ctx)
        cipher = m.sock.cipher()
        m.login(f"tls-{tag()}@customer.test", PASSWORD)
        check("IMAP STARTTLS on port %d verified with the CA, then LOGIN" % IMAP_PORT,
              "STARTTLS" in caps and "LOGINDISABLED" not in caps, f"{cipher[1]} {cipher[0]}")
    finally:
        m.logout()
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=ctx)
    try:
        cert = m.sock.getpeercert()
        m.login(f"tls-{tag()}@customer.test", PASSWORD)
        left = ssl.cert_time_to_seconds(cert["notAfter"]) - time.time()
        sans = sorted(v for _, v in cert.get("subjectAltName", ()))
        check(f"imaps {IMAPS_PORT} verified with the CA (IP 127.0.0.1), LOGIN", True,
              f"SAN {', '.join(sans)}; {left / 86400:.0f} days left")
        check("server certificate valid for >= 1 year more", left >= 365 * 86400, f"{left / 86400:.0f} days")
    finally:
        m.logout()
    # the other names in the certificate, against the same listener
    for name in ("localhost", "mx.example.test"):
        with socket.create_connection((HOST, IMAPS_PORT), timeout=5) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname=name):
                    ok = True
            except ssl.SSLError as e:
                ok = False
        check(f"certificate verifies as {name}", ok)
    with urllib.request.urlopen(OAUTH_ISSUER + "/.well-known/openid-configuration", context=ctx, timeout=5) as r:
        issuer = json.loads(r.read())["issuer"]
    check("OAuth server https verified with the CA", issuer == OAUTH_ISSUER, issuer)
    with smtplib.SMTP(HOST, SMTP_PORT, timeout=10) as s:
        s.ehlo()
        feats = sorted(s.esmtp_features)
    check(f"SMTP {SMTP_PORT} still offers neither STARTTLS nor AUTH",
          "starttls" not in feats and "auth" not in feats, " ".join(feats))


def t_submission():
    ctx = tls_context()
    with smtplib.SMTP(HOST, SUBMISSION_PORT, timeout=10) as s:
        s.ehlo()
        before = dict(s.esmtp_features)
        code, _ = s.docmd("MAIL FROM:<x@example.test>")
        check("submission: STARTTLS offered, no AUTH before it, MAIL before STARTTLS refused",
              "starttls" in before and "auth" not in before and code == 530, f"MAIL -> {code}")
        s.starttls(context=ctx)
        s.ehlo()
        mechs = s.esmtp_features.get("auth", "").split()
        check("submission: AUTH after STARTTLS offers PLAIN LOGIN XOAUTH2 OAUTHBEARER",
              {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"} <= set(mechs), " ".join(mechs))
        s.docmd("MAIL FROM:<x@example.test>")
        code, msg = s.docmd(f"RCPT TO:<cust-{tag()}@customer.test>")
        check("submission: unauthenticated RCPT refused", code >= 500, f"{code} {msg.decode()}")
        s.docmd("RSET")
        try:
            s.login(f"x-{tag()}@example.test", "wrong")
            bad = False
        except smtplib.SMTPAuthenticationError:
            bad = True
        check("submission: AUTH PLAIN with a wrong password refused", bad)
    # swaks, as a person would: --tls --auth PLAIN
    frm = f"sub-{tag()}@example.test"
    to = f"cust-{tag()}@customer.test"
    subject = f"submission {tag()}"
    r = subprocess.run(["swaks", "--server", f"{HOST}:{SUBMISSION_PORT}", "--tls", "--tls-verify",
                        "--tls-ca-path", CA_FILE, "--auth", "PLAIN", "--auth-user", frm,
                        "--auth-password", PASSWORD, "--from", frm, "--to", to, "--header", f"Subject: {subject}",
                        "--timeout", "10"], capture_output=True, text=True)
    hits, dt = wait_for(to, lambda m: m["Subject"] == subject) if r.returncode == 0 else ([], 0)
    check("submission: swaks --tls --auth PLAIN delivers like port %d" % SMTP_PORT, bool(hits),
          f"swaks rc {r.returncode}; {dt:.2f} s" + ("" if r.returncode == 0 else "; " + r.stdout[-300:]))


def http_post(url, data):
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(),
                                 headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, context=tls_context(), timeout=10) as r:
            body = r.read()
            return r.status, (json.loads(body) if body.strip() else {})
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"error": body.decode(errors="replace")}


def mailstack(*args):
    r = subprocess.run([SCRIPT, *args], capture_output=True, text=True)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


def device_flow(address):
    """Device authorization + approval (by the oauth-approve verb) while polling the token endpoint."""
    code, dev = http_post(DEVICE_URL, {"client_id": CLIENT_ID, "scope": SCOPES})
    if code != 200:
        raise RuntimeError(f"device authorization: HTTP {code} {dev}")
    polls = []
    result = {}

    def poll():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st, body = http_post(TOKEN_URL, {"client_id": CLIENT_ID, "grant_type": DEVICE_GRANT,
                                             "device_code": dev["device_code"]})
            polls.append(body.get("error", "ok"))
            if st == 200 or body.get("error") not in ("authorization_pending", "slow_down"):
                result.update(status=st, body=body)
                return
            # faster than the advertised interval (this provider never answers slow_down): keeps the check short
            time.sleep(0.25)
    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.2)  # the client is polling before the user approves
    rc, out, err = mailstack("oauth-approve", dev["user_code"], address)
    th.join(35)
    if rc != 0:
        raise RuntimeError(f"oauth-approve failed: {err or out}")
    if result.get("status") != 200:
        raise RuntimeError(f"token endpoint: {result}")
    return dev, result["body"], polls


def xoauth2(user, token):
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user, token, port):
    u = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={u},\x01host={HOST}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()


def imap_sasl(mech, payload, port=None):
    """AUTHENTICATE mech on imaps; returns (ok, detail). The first challenge gets the payload; an error
    challenge (Dovecot sends a JSON status as a '+' continuation) is answered as the mechanism wants."""
    m = imaplib.IMAP4_SSL(HOST, port or IMAPS_PORT, ssl_context=tls_context())
    challenges = []

    def answer(challenge):
        challenges.append(challenge)
        if len(challenges) == 1:
            return payload
        return b"\x01" if mech == "OAUTHBEARER" else b""
    try:
        typ, data = m.authenticate(mech, answer)
        return typ == "OK", ""
    except imaplib.IMAP4.error as e:
        return False, f"{e}; error challenge {challenges[1:] and challenges[1].decode(errors='replace')}"
    finally:
        try:
            m.logout()
        except Exception:
            pass


def imap_login(user, password):
    m = imaplib.IMAP4_SSL(HOST, IMAPS_PORT, ssl_context=tls_context())
    try:
        m.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        try:
            m.logout()
        except Exception:
            pass


def smtp_sasl_send(mech, payload, frm, to, subject):
    with smtplib.SMTP(HOST, SUBMISSION_PORT, timeout=10) as s:
        s.starttls(context=tls_context())
        s.ehlo()
        code, msg = s.docmd("AUTH", f"{mech} {base64.b64encode(payload).decode()}")
        if code == 334:  # error continuation: finish the exchange, then the server says 535
            code, msg = s.docmd("AQ==" if mech == "OAUTHBEARER" else "")
        if code != 235:
            return False, f"{code} {msg.decode()}"
        s.sendmail(frm, [to], f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nvia {mech}\r\n")
        return True, ""


def parallel(*fns):
    out = [None] * len(fns)

    def run(i, fn):
        try:
            out[i] = fn()
        except Exception as e:  # reported as a failed result
            out[i] = (None, f"{type(e).__name__}: {e}")
    ths = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    return out


def stats(address):
    rc, out, err = mailstack("oauth-stats", address)
    return json.loads(out) if rc == 0 else {"error": err}


def t_oauth():
    t0 = time.monotonic()
    addr = f"OAuth-{tag()}@Customer.test"  # accounts are lowercased addresses
    user = addr.lower()
    dev, tok, polls = device_flow(addr)
    check("device flow: authorization, approve while the client polls, tokens",
          {"access_token", "refresh_token"} <= set(tok) and "authorization_pending" in polls
          and set(tok.get("scope", "").split()) == set(SCOPES.split()),
          f"{len(polls)} polls; scope {tok.get('scope')}; expires_in {tok.get('expires_in')}; "
          f"interval {dev.get('interval')}")
    at, rt = tok["access_token"], tok["refresh_token"]
    ok, d = imap_sasl("XOAUTH2", xoauth2(addr, at))
    check("IMAP AUTHENTICATE XOAUTH2", ok, d)
    ok, d = imap_sasl("OAUTHBEARER", oauthbearer(addr, at, IMAPS_PORT))
    check("IMAP AUTHENTICATE OAUTHBEARER", ok, d)
    # refusals run side by side: each failed login costs Dovecot 2.3 ~0.5 s (auth_failure_delay ticks)
    refusals = parallel(
        lambda: imap_sasl("XOAUTH2", xoauth2(f"other-{tag()}@customer.test", at)),
        lambda: imap_sasl("XOAUTH2", xoauth2(user, PASSWORD)),
        lambda: (imap_login(user, at), ""),
        lambda: smtp_sasl_send("XOAUTH2", xoauth2(user, "not-a-token"), user, "x@customer.test", "x"))
    check("XOAUTH2 with another address's token refused", refusals[0][0] is False, refusals[0][1])
    check(f'"{PASSWORD}" is never accepted as a token', refusals[1][0] is False, refusals[1][1])
    check("a bearer token is never accepted as a password (LOGIN)", refusals[2][0] is False, refusals[2][1])
    check("SMTP AUTH XOAUTH2 with a bad token refused (535)",
          refusals[3][0] is False and refusals[3][1].startswith("535"), refusals[3][1])
    subject = f"xoauth2 {tag()}"
    to = f"cust-{tag()}@customer.test"
    ok, d = smtp_sasl_send("XOAUTH2", xoauth2(user, at), user, to, subject)
    hits, _ = wait_for(to, lambda m: m["Subject"] == subject) if ok else ([], 0)
    check("SMTP AUTH XOAUTH2 on submission, delivered", ok and bool(hits), d)
    subject = f"oauthbearer {tag()}"
    ok, d = smtp_sasl_send("OAUTHBEARER", oauthbearer(user, at, SUBMISSION_PORT), user, to, subject)
    hits, _ = wait_for(to, lambda m: m["Subject"] == subject) if ok else ([], 0)
    check("SMTP AUTH OAUTHBEARER on submission, delivered", ok and bool(hits), d)

    rc, out, err = mailstack("oauth-expire", addr)
    ok, d = imap_sasl("XOAUTH2", xoauth2(user, at))
    check("after oauth-expire the old access token is refused", rc == 0 and not ok, out or err)
    st, tok2 = http_post(TOKEN_URL, {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": rt})
    rotated = st == 200 and tok2.get("refresh_token") not in (None, rt)
    check("refresh works after expiry and rotates the refresh token", rotated,
          f"HTTP {st} {tok2.get('error', '')}")
    at2, rt2 = tok2.get("access_token", ""), tok2.get("refresh_token", "")
    ok, d = imap_sasl("XOAUTH2", xoauth2(user, at2))
    check("the refreshed access token logs in", ok, d)
    s = stats(addr)
    check("oauth-stats counts the grants",
          s.get("device_grants") == 1 and s.get("refreshes") == 1 and s.get("refresh_reuse_detected") == 0
          and s.get("active_access_tokens") == 1, json.dumps(s, sort_keys=True))
    rc, out, err = mailstack("oauth-revoke", addr)
    st, body = http_post(TOKEN_URL, {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": rt2})
    ok, d = imap_sasl("XOAUTH2", xoauth2(user, at2))
    check("after oauth-revoke the refresh is refused and the access token too",
          rc == 0 and st == 400 and body.get("error") == "invalid_grant" and not ok, out or err)

    # a rotated refresh token used again: detected, the whole grant is revoked
    addr2 = f"reuse-{tag()}@customer.test"
    _, tok, _ = device_flow(addr2)
    st1, t1 = http_post(TOKEN_URL, {"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                    "refresh_token": tok["refresh_token"]})
    st2, t2 = http_post(TOKEN_URL, {"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                    "refresh_token": tok["refresh_token"]})
    st3, t3 = http_post(TOKEN_URL, {"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                    "refresh_token": t1.get("refresh_token", "")})
    s = stats(addr2)
    check("reusing a rotated refresh token is detected and revokes the grant",
          st1 == 200 and st2 == 400 and t2.get("error") == "invalid_grant" and st3 == 400
          and s.get("refresh_reuse_detected") == 1, json.dumps(s, sort_keys=True))

    # RFC 7009 revocation by the client itself
    addr3 = f"revoke-{tag()}@customer.test"
    _, tok, _ = device_flow(addr3)
    st, _ = http_post(REVOCATION_URL, {"client_id": CLIENT_ID, "token": tok["refresh_token"],
                                       "token_type_hint": "refresh_token"})
    st2, body = http_post(TOKEN_URL, {"client_id": CLIENT_ID, "grant_type": "refresh_token",
                                      "refresh_token": tok["refresh_token"]})
    ok, d = imap_sasl("XOAUTH2", xoauth2(addr3, tok["access_token"]))
    check("revocation endpoint: revoking the refresh token ends the grant (refresh + access token refused)",
          st == 200 and st2 == 400 and not ok, f"revoke HTTP {st}")
    check("oauth checks took", True, f"{time.monotonic() - t0:.2f} s")


def main():
    tests = {"delivery": t_delivery, "plus": t_plus, "passwords": t_passwords,
             "vacation": t_vacation, "bounce": t_bounce, "reject": t_reject,
             "tls": t_tls, "submission": t_submission, "oauth": t_oauth, "smtpdown": t_smtpdown}
    names = sys.argv[1:] or [n for n in tests if n != "smtpdown"]
    t0 = time.monotonic()
    for n in names:
        tests[n]()
    passed = sum(RESULTS)
    print(f"selftest: {passed} passed, {len(RESULTS) - passed} failed ({time.monotonic() - t0:.2f} s)")
    sys.exit(0 if all(RESULTS) else 1)


if __name__ == "__main__":
    main()
