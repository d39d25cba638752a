"""Send one corpus case over a real socket: smtplib for what it can send, a raw client for the
rest (8-bit without SMTPUTF8, bare LF/CR, NUL, odd SMTP conversations). Every reply is kept, so
the checks can see that each command got a three-digit code with a reason."""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
from dataclasses import dataclass, field

from .corpus import Case

TIMEOUT = 180  # a multi-MiB header block takes a while to parse on a loaded 2-core box
TRIGGER_IDS = re.compile(r"trigger ((?:\d+)(?:, \d+)*)")
REPLY_LINE = re.compile(rb"^([2-5][0-9][0-9])([ -])(.*)$", re.DOTALL)


@dataclass
class Outcome:
    replies: list[tuple[int, str]] = field(default_factory=list)  # (code, text) of every reply
    data_reply: tuple[int, str] | None = None  # the reply to the case's message content
    error: str = ""  # the connection failed or a reply was unreadable

    @property
    def trigger_ids(self) -> list[int]:
        """Triggers this message created ("already received as trigger N" is another
        message's: the same Message-ID, or the same header block, was delivered before)."""
        ids = []
        for code, text in self.replies:
            if code == 250 and "already received" not in text:
                for match in TRIGGER_IDS.finditer(text):
                    ids.extend(int(i) for i in match.group(1).split(", "))
        return ids

    @property
    def duplicate(self) -> bool:
        return any(code == 250 and "already received" in text for code, text in self.replies)


def stuff(content: bytes) -> bytes:
    """DATA payload: dot-stuffed on CRLF lines (as the server reads them), CRLF . CRLF."""
    lines = content.split(b"\r\n")
    lines = [b"." + line if line.startswith(b".") else line for line in lines]
    payload = b"\r\n".join(lines)
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    return payload + b".\r\n"


class RawSession:
    def __init__(self, host: str, port: int, outcome: Outcome):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.reader = self.sock.makefile("rb")
        self.outcome = outcome
        self.read_reply()  # greeting

    def read_reply(self) -> int:
        lines = []
        while True:
            line = self.reader.readline(1024 * 1024)
            if not line:
                raise ConnectionError("connection closed without a reply")
            match = REPLY_LINE.match(line.rstrip(b"\r\n"))
            if match is None:
                raise ValueError(f"not an SMTP reply: {line[:80]!r}")
            lines.append(match)
            if match.group(2) == b" ":
                break
        code = int(lines[-1].group(1))
        text = "\n".join(m.group(3).decode("utf-8", "replace") for m in lines)
        self.outcome.replies.append((code, text))
        return code

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def cmd(self, line: bytes | str) -> int:
        line = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        self.send(line + b"\r\n")
        return self.read_reply()

    def message(self, content: bytes) -> int:
        code = self.cmd(b"DATA")
        if code != 354:
            return code
        self.send(stuff(content))
        code = self.read_reply()
        self.outcome.data_reply = self.outcome.replies[-1]
        return code

    def transaction(self, mail_from: str, rcpts, content: bytes, options=()) -> int:
        mail = f"MAIL FROM:<{mail_from}>" + "".join(f" {o}" for o in options)
        if self.cmd(mail) != 250:
            return 0
        accepted = [r for r in rcpts if self.cmd(f"RCPT TO:<{r}>") == 250]
        if not accepted:
            return 0
        return self.message(content)

    def close(self):
        with contextlib.suppress(OSError, ValueError):
            self.cmd(b"QUIT")
        self.reader.close()
        self.sock.close()


def send(case: Case, host: str, port: int, bcc: dict[str, str], inbound_domain: str) -> Outcome:
    outcome = Outcome()
    rcpt = bcc[case.agency]
    try:
        if case.session:
            _session(case, host, port, rcpt, inbound_domain, outcome)
        elif case.transport == "raw":
            session = RawSession(host, port, outcome)
            session.cmd("EHLO fuzz.test")
            session.transaction(case.mail_from, [rcpt], case.raw, case.mail_options)
            session.close()
        else:
            _smtplib(case, host, port, rcpt, outcome)
    except (OSError, ValueError, smtplib.SMTPException) as error:
        outcome.error = f"{type(error).__name__}: {error}"[:300]
    return outcome


def _smtplib(case: Case, host: str, port: int, rcpt: str, outcome: Outcome) -> None:
    with smtplib.SMTP(host, port, local_hostname="fuzz.test", timeout=TIMEOUT) as smtp:
        outcome.replies.append(smtp.ehlo())
        reply = smtp.mail(case.mail_from, list(case.mail_options))
        outcome.replies.append(reply)
        if reply[0] != 250:
            return
        reply = smtp.rcpt(rcpt)
        outcome.replies.append(reply)
        if reply[0] != 250:
            return
        try:
            reply = smtp.data(case.raw)
        except smtplib.SMTPDataError as error:  # DATA itself refused
            reply = (error.smtp_code, error.smtp_error)
        outcome.replies.append(reply)
        outcome.data_reply = reply
    outcome.replies = [(code, _text(text)) for code, text in outcome.replies]


def _text(text) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)


def _session(case: Case, host, port, rcpt: str, inbound_domain: str, outcome: Outcome) -> None:
    """The smtp_session family: odd but complete conversations, ending with the case's message."""
    s = RawSession(host, port, outcome)
    name, sender, content = case.session, case.mail_from, case.raw
    if name == "pipelined":
        s.cmd("EHLO fuzz.test")
        s.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        codes = [s.read_reply() for _ in range(3)]
        if codes[2] == 354:
            s.send(stuff(content))
            s.read_reply()
            outcome.data_reply = outcome.replies[-1]
    elif name == "two_transactions":
        s.cmd("EHLO fuzz.test")
        s.transaction(sender, [rcpt], content.replace(b"Message-ID: <", b"Message-ID: <first.", 1))
        s.transaction(sender, [rcpt], content)
    elif name == "rset_then_send":
        s.cmd("EHLO fuzz.test")
        s.cmd(f"MAIL FROM:<{sender}>")
        s.cmd(f"RCPT TO:<{rcpt}>")
        s.cmd("RSET")
        s.transaction(sender, [rcpt], content)
    elif name == "lowercase_commands":
        s.cmd("ehlo fuzz.test")
        s.cmd(f"mail from: <{sender}>")
        s.cmd(f"rcpt to:<{rcpt.upper()}>")
        s.message(content)
    elif name == "size_too_big":
        s.cmd("EHLO fuzz.test")
        s.cmd(f"MAIL FROM:<{sender}> SIZE=999999999999")
        s.transaction(sender, [rcpt], content, [f"SIZE={len(content)}"])
    elif name == "unknown_mail_param":
        s.cmd("EHLO fuzz.test")
        s.cmd(f"MAIL FROM:<{sender}> X-FUZZ=yes")
        s.transaction(sender, [rcpt], content)
    elif name == "rcpt_nul":
        s.cmd("EHLO fuzz.test")
        s.cmd(f"MAIL FROM:<{sender}>")
        s.cmd(b"RCPT TO:<" + rcpt.encode() + b"\x00>")
        s.cmd(f"RCPT TO:<{rcpt}>")
        s.message(content)
    elif name == "too_many_rcpts":
        s.cmd("EHLO fuzz.test")
        s.cmd(f"MAIL FROM:<{sender}>")
        for _ in range(22):
            s.cmd(f"RCPT TO:<{rcpt}>")
        s.message(content)
    elif name == "postmaster_and_agency":
        s.cmd("EHLO fuzz.test")
        s.transaction(sender, [f"postmaster@{inbound_domain}", rcpt], content)
    elif name == "unknown_token":
        s.cmd("EHLO fuzz.test")
        s.cmd(f"MAIL FROM:<{sender}>")
        s.cmd(f"RCPT TO:<nobody-zzzzzzzzzzzz@{inbound_domain}>")
        s.cmd("DATA")
        s.cmd("RSET")
        s.transaction(sender, [rcpt], content)
    elif name == "helo_only":
        s.cmd("HELO fuzz.test")
        s.transaction(sender, [rcpt], content)
    elif name == "noise_commands":
        s.cmd("EHLO fuzz.test")
        for line in ("NOOP", "HELP", "VRFY postmaster", "EXPN staff", "XYZZY", "AUTH PLAIN AAAA"):
            s.cmd(line)
        s.transaction(sender, [rcpt], content)
    elif name == "long_command":
        s.cmd("EHLO fuzz.test")
        s.cmd("NOOP " + "x" * 600)
        s.cmd("MAIL FROM:<" + "a" * 2000 + "@acme.test>")
        s.cmd("RSET")
        s.transaction(sender, [rcpt], content)
    elif name == "data_without_rcpt":
        s.cmd("EHLO fuzz.test")
        s.cmd(f"MAIL FROM:<{sender}>")
        s.cmd("DATA")
        s.cmd(f"RCPT TO:<{rcpt}>")
        s.message(content)
    elif name == "null_sender":
        s.cmd("EHLO fuzz.test")
        s.transaction("", [rcpt], content)
    else:  # body_8bitmime and anything plain
        s.cmd("EHLO fuzz.test")
        s.transaction(sender, [rcpt], content, case.mail_options)
    s.close()


def valid_reply(code: int, text: str) -> bool:
    return 200 <= code <= 599 and bool(text.strip())
