#!/usr/bin/env python3
"""Baseline for bench/deliver: what a pipe(8) command must do at the least to answer a
message: read it from stdin, find the sender, send a fixed reply over SMTP. Stdlib only."""
import email.parser, email.utils, os, smtplib, socket, sys

raw = sys.stdin.buffer.read()
msg = email.parser.BytesHeaderParser().parsebytes(raw)
sender = email.utils.parseaddr(msg.get("From", ""))[1]
if not sender:
    sys.exit(0)
reply = (
    f"From: echo@example.test\r\nTo: {sender}\r\nSubject: Re: {msg.get('Subject', '')}\r\n"
    f"Message-ID: {email.utils.make_msgid()}\r\nAuto-Submitted: auto-replied\r\n\r\nReceived.\r\n"
)
s = smtplib.SMTP("127.0.0.1", int(os.environ.get("MAILSTACK_SMTP_PORT", "10025")))
s.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendmail("echo@example.test", [sender], reply.encode())
s.quit()
