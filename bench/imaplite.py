"""Minimal raw-socket IMAP client for the benchmarks (stdlib only).

Reads responses with proper literal handling ({n}\\r\\n followed by n bytes),
supports IDLE/DONE by hand (imaplib on 3.11 has no idle). Loopback only.
"""
import re
import socket
import time

_LITERAL = re.compile(rb"\{(\d+)\+?\}$")


class IMAPError(Exception):
    pass


def quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class IMAP:
    def __init__(self, host="127.0.0.1", port=10143, timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.pos = 0
        self.nbytes = 0  # bytes received in total
        self.tagn = 0
        self.greeting = self.readline()
        if not self.greeting.startswith(b"* OK"):
            raise IMAPError(f"bad greeting: {self.greeting!r}")

    # ---- low level -------------------------------------------------------
    def _fill(self):
        if self.pos > (1 << 20):
            del self.buf[: self.pos]
            self.pos = 0
        data = self.sock.recv(1 << 20)
        if not data:
            raise IMAPError("connection closed by server")
        self.nbytes += len(data)
        self.buf += data

    def readline(self) -> bytes:
        """One line without CRLF."""
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos : i])
                self.pos = i + 2
                return line
            self._fill()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def skip(self, n: int):
        while len(self.buf) - self.pos < n:
            n -= len(self.buf) - self.pos
            self.pos = len(self.buf)
            self._fill()
        self.pos += n

    def read_response(self, keep_literals=True):
        """One complete response: (text_with_literals_replaced, [literal bytes...])."""
        parts = []
        lits = []
        while True:
            line = self.readline()
            m = _LITERAL.search(line)
            if not m:
                parts.append(line)
                return b"".join(parts), lits
            n = int(m.group(1))
            parts.append(line[: m.start()] + b"{}")
            if keep_literals:
                lits.append(self.read_exact(n))
            else:
                self.skip(n)
                lits.append(n)

    def send(self, data: bytes):
        self.sock.sendall(data)

    def next_tag(self) -> str:
        self.tagn += 1
        return f"a{self.tagn}"

    # ---- commands --------------------------------------------------------
    def command(self, cmd: str, keep_literals=True, check=True):
        """Send a command, return (tagged_line, [(text, literals), ...] untagged)."""
        tag = self.next_tag()
        self.send(f"{tag} {cmd}\r\n".encode())
        untagged = []
        tb = tag.encode() + b" "
        while True:
            text, lits = self.read_response(keep_literals)
            if text.startswith(tb):
                if check and not text[len(tb) :].startswith(b"OK"):
                    raise IMAPError(f"{cmd.split()[0]} failed: {text!r}")
                return text, untagged
            untagged.append((text, lits))

    def login(self, user: str, password: str):
        return self.command(f"LOGIN {quote(user)} {quote(password)}")

    def select(self, folder="INBOX", readonly=False):
        """Returns dict with exists, uidvalidity, uidnext."""
        _, untagged = self.command(f"{'EXAMINE' if readonly else 'SELECT'} {quote(folder)}")
        info = {}
        for text, _ in untagged:
            m = re.match(rb"\* (\d+) EXISTS", text)
            if m:
                info["exists"] = int(m.group(1))
            m = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
            if m:
                info["uidvalidity"] = int(m.group(1))
            m = re.search(rb"\[UIDNEXT (\d+)\]", text)
            if m:
                info["uidnext"] = int(m.group(1))
        return info

    def status_messages(self, folder="INBOX") -> int:
        _, untagged = self.command(f"STATUS {quote(folder)} (MESSAGES)")
        for text, _ in untagged:
            m = re.search(rb"MESSAGES (\d+)", text)
            if m and text.startswith(b"* STATUS"):
                return int(m.group(1))
        raise IMAPError("no STATUS response")

    # ---- IDLE ------------------------------------------------------------
    def idle_start(self):
        self._idle_tag = self.next_tag()
        self.send(f"{self._idle_tag} IDLE\r\n".encode())
        early = []
        while True:
            text, lits = self.read_response()
            if text.startswith(b"+"):
                return early
            if text.startswith(self._idle_tag.encode() + b" "):
                raise IMAPError(f"IDLE refused: {text!r}")
            early.append((text, lits))

    def idle_wait(self, timeout: float):
        """Wait up to timeout seconds for one untagged response; None on timeout."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            # only block if nothing is buffered already
            return self.read_response()
        except (socket.timeout, TimeoutError):
            return None
        finally:
            self.sock.settimeout(self.timeout)

    def idle_done(self):
        self.send(b"DONE\r\n")
        tb = self._idle_tag.encode() + b" "
        untagged = []
        while True:
            text, lits = self.read_response()
            if text.startswith(tb):
                if not text[len(tb) :].startswith(b"OK"):
                    raise IMAPError(f"IDLE ended badly: {text!r}")
                return untagged
            untagged.append((text, lits))

    def logout(self):
        try:
            self.command("LOGOUT", check=False)
        except Exception:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def wait_port(host: str, port: int, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False
