#!/usr/bin/env python3
"""The user's side of the test OAuth server (scripts/lib/oauth/server.mjs), for `scripts/mailstack oauth-*`.

  oauth_user.py approve USER_CODE ADDRESS [PASSWORD]
      Does what a person does in a browser for the device authorization grant (RFC 8628): GET the
      verification page, submit the user code with the page's xsrf token, confirm the device, sign in as
      ADDRESS (password default "test"), allow the requested scopes. Only real HTTP pages and forms are used
      (urllib + a cookie jar, TLS verified with the stack's CA). Exit 0 when the provider shows its success
      page, 1 with the page's error text otherwise.
  oauth_user.py revoke|expire|stats ADDRESS
      The admin listener (plain http on 127.0.0.1): revoke all of ADDRESS's grants and tokens, make its
      access tokens expire now, or print its statistics as JSON.

Environment: MAILSTACK_OAUTH_ISSUER, MAILSTACK_CA_FILE, MAILSTACK_OAUTH_ADMIN_URL (set by `mailstack env`).
"""
import html.parser
import http.cookiejar
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

ISSUER = os.environ.get("MAILSTACK_OAUTH_ISSUER", "https://127.0.0.1:10443").rstrip("/")
CA_FILE = os.environ.get("MAILSTACK_CA_FILE", "")
ADMIN_URL = os.environ.get("MAILSTACK_OAUTH_ADMIN_URL", "http://127.0.0.1:10444").rstrip("/")
TIMEOUT = 10


class Forms(html.parser.HTMLParser):
    """Collects <form>s (id, action, method, inputs) and the text of elements with an id."""

    def __init__(self):
        super().__init__()
        self.forms = []
        self.texts = {}
        self._form = None
        self._text_id = None
        self._title = False
        self.title = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"id": a.get("id", ""), "action": a.get("action", ""),
                          "method": (a.get("method") or "get").lower(), "inputs": {}}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("name"):
            self._form["inputs"][a["name"]] = a.get("value") or ""
        elif tag == "title":
            self._title = True
        if a.get("id") and tag not in ("form", "input"):
            self._text_id = a["id"]
            self.texts.setdefault(self._text_id, "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "title":
            self._title = False
        self._text_id = None

    def handle_data(self, data):
        if self._title:
            self.title += data
        if self._text_id:
            self.texts[self._text_id] += data

    def form(self, form_id):
        for f in self.forms:
            if f["id"] == form_id:
                return f
        return None


class Browser:
    def __init__(self):
        ctx = ssl.create_default_context(cafile=CA_FILE or None)
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                                  urllib.request.HTTPCookieProcessor(self.jar))
        self.url = None

    def _do(self, req):
        try:
            with self.opener.open(req, timeout=TIMEOUT) as r:
                self.url = r.geturl()
                return r.status, r.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            self.url = e.geturl()
            return e.code, e.read().decode("utf-8", "replace")

    def get(self, url):
        return self._do(urllib.request.Request(url, headers={"Accept": "text/html"}))

    def submit(self, form, extra=None):
        data = dict(form["inputs"])
        data.update(extra or {})
        url = urllib.parse.urljoin(self.url, form["action"] or self.url)
        body = urllib.parse.urlencode(data).encode()
        return self._do(urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"}))


def parse(body):
    p = Forms()
    p.feed(body)
    return p


def fail(step, status, page):
    msg = page.texts.get("error", "").strip() or page.title.strip() or "unexpected page"
    sys.exit(f"oauth-approve: {step} failed (HTTP {status}): {msg}")


def approve(user_code, address, password="test"):
    b = Browser()
    status, body = b.get(ISSUER + "/device")
    page = parse(body)
    form = page.form("op.deviceInputForm")
    if status != 200 or not form or "xsrf" not in form["inputs"]:
        fail("GET verification page", status, page)
    status, body = b.submit(form, {"user_code": user_code})
    page = parse(body)
    form = page.form("op.deviceConfirmForm")
    if status != 200 or not form:
        fail(f"user code {user_code}", status, page)
    status, body = b.submit(form)  # confirm=yes (the form's hidden input)
    page = parse(body)
    form = page.form("login")
    if status != 200 or not form:
        fail("device confirmation", status, page)
    status, body = b.submit(form, {"login": address, "password": password})
    page = parse(body)
    if page.texts.get("success") is not None:  # consent was already given in this session (not here)
        return "approved"
    form = page.form("consent")
    if status != 200 or not form:
        fail(f"login as {address}", status, page)
    status, body = b.submit(form)
    page = parse(body)
    if status != 200 or page.texts.get("success") is None:
        fail("consent", status, page)
    return "approved"


def admin(action, address):
    method = "GET" if action == "stats" else "POST"
    url = f"{ADMIN_URL}/{action}?" + urllib.parse.urlencode({"account": address})
    req = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        sys.exit(f"oauth-{action}: HTTP {e.code}: {e.read().decode(errors='replace').strip()}")
    except OSError as e:
        sys.exit(f"oauth-{action}: OAuth admin listener {ADMIN_URL} not reachable ({e}); is the stack started?")


def main(argv):
    if len(argv) >= 3 and argv[0] == "approve":
        print(f"{approve(argv[1], argv[2], argv[3] if len(argv) > 3 else 'test')}: user code {argv[1]} "
              f"for {argv[2].lower()}")
        return 0
    if len(argv) == 2 and argv[0] in ("revoke", "expire", "stats"):
        out = admin(argv[0], argv[1])
        print(json.dumps(out, sort_keys=True))
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
