"""Realistic base messages and a small byte-level editor the mutation families work with.

A base message looks like what a recruiter's mail client sends: From a recruiter on the
agency's domain, To/Cc candidates and clients, a subject, a text or text+HTML body, sometimes
an attachment, Outlook or Gmail headers, sometimes structured data. Each carries a privacy
marker in its subject, body and in headers we never keep (Thread-Topic, Keywords, ...).

Header order is fixed on purpose: address headers come first and every header holding a marker
comes after them, so a mutation that folds or breaks a line cannot move a marker into an address
header (where display names are legitimately kept).
"""

from __future__ import annotations

import base64
import email.utils
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

MARKER_PREFIX = "PRIVMK"  # searched case-insensitively in dumps and logs
MARKER_RE = re.compile(rf"(?i){MARKER_PREFIX}[0-9a-z]*")

FIRST = ["cara", "dev", "lee", "maria", "tom", "aisha", "jan", "zoe", "omar", "li", "nina", "raj"]
LAST = ["candidate", "smith", "okafor", "nguyen", "muller", "garcia", "kowalski", "tanaka"]
CLIENT_DOMAINS = ["client.test", "bigcorp.test", "startup.test", "hospital.test"]
CANDIDATE_DOMAINS = ["candidate.test", "mail.test", "example.org", "posteo.test"]


@dataclass(frozen=True)
class Agency:
    key: str  # "acme" (DKIM required) or "beta" (trusts its From domain)
    domain: str
    senders: tuple[str, ...]  # addresses of its recruiters


AGENCIES = {
    "acme": Agency("acme", "acme.test", ("sam@acme.test", "jo.smith@acme.test")),
    "beta": Agency("beta", "beta.test", ("kim@beta.test", "recruiting@beta.test")),
}


class Editor:
    """A message as a list of raw header fields (each with its folds) and a body."""

    def __init__(self, raw: bytes):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        self.fields: list[bytes] = []
        for line in head.split(b"\r\n"):
            if line[:1] in (b" ", b"\t") and self.fields:
                self.fields[-1] += b"\r\n" + line
            else:
                self.fields.append(line)

    @staticmethod
    def _name(field_bytes: bytes) -> bytes:
        return field_bytes.split(b":", 1)[0].strip().lower()

    def index(self, name: str) -> int | None:
        for i, f in enumerate(self.fields):
            if self._name(f) == name.lower().encode():
                return i
        return None

    def get(self, name: str) -> bytes | None:
        i = self.index(name)
        return None if i is None else self.fields[i].split(b":", 1)[1].lstrip()

    def set(self, name: str, value: bytes | str) -> Editor:
        value = value.encode() if isinstance(value, str) else value
        line = name.encode() + b": " + value
        i = self.index(name)
        if i is None:
            self.fields.insert(self._insert_point(), line)
        else:
            self.fields[i] = line
        return self

    def set_raw(self, name: str, line: bytes) -> Editor:
        """Replace the whole field (name included) with `line`."""
        i = self.index(name)
        if i is None:
            self.fields.insert(self._insert_point(), line)
        else:
            self.fields[i] = line
        return self

    def add(self, name: str, value: bytes | str, at: int | None = None) -> Editor:
        value = value.encode() if isinstance(value, str) else value
        line = name.encode() + b": " + value
        self.fields.insert(self._insert_point() if at is None else at, line)
        return self

    def drop(self, name: str) -> Editor:
        self.fields = [f for f in self.fields if self._name(f) != name.lower().encode()]
        return self

    def duplicate(self, name: str, value: bytes | str | None = None) -> Editor:
        i = self.index(name)
        if i is not None:
            copy = self.fields[i]
            if value is not None:
                value = value.encode() if isinstance(value, str) else value
                copy = name.encode() + b": " + value
            self.fields.insert(i + 1, copy)
        return self

    def _insert_point(self) -> int:
        # After Subject and before the MIME headers: away from the address headers.
        i = self.index("mime-version")
        return len(self.fields) if i is None else i

    def header_bytes(self, eol: bytes = b"\r\n") -> bytes:
        return eol.join(self.fields)

    def bytes(self, eol: bytes = b"\r\n") -> bytes:
        return self.header_bytes(eol) + eol + eol + self.body


@dataclass
class Base:
    """A base message and what the mutations need to know about it."""

    raw: bytes
    agency: Agency
    sender: str
    recipients: list[str]  # addresses in To/Cc (lower case)
    markers: list[str]
    shape: str
    extra: dict = field(default_factory=dict)

    def edit(self) -> Editor:
        return Editor(self.raw)


def person(rng: random.Random, n: int, domains=CANDIDATE_DOMAINS) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    name = f"{first.title()} {last.title()}"
    return name, f"{first}.{last}{n}@{rng.choice(domains)}"


def fmt(name: str, addr: str) -> str:
    return f"{name} <{addr}>" if name else addr


def qp(text: str) -> bytes:
    import quopri

    return quopri.encodestring(text.encode("utf-8")).replace(b"\n", b"\r\n")


def b64_lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def build_base(
    rng: random.Random, serial: int, marker: str, now: datetime, agency: Agency | None = None
) -> Base:
    """One realistic trigger email. `serial` makes its recipients and Message-ID unique."""
    agency = agency or AGENCIES[rng.choice(["acme", "beta"])]
    sender = rng.choice(agency.senders)
    sender_name = "Sam Carter" if sender.startswith("sam") else sender.split("@")[0].title()
    count = rng.choice([1, 1, 1, 2, 3])
    people = [person(rng, serial * 10 + i) for i in range(count)]
    cc = [person(rng, serial * 10 + 5, CLIENT_DOMAINS)] if rng.random() < 0.3 else []
    shape = rng.choice(["plain", "alternative", "attachment", "outlook", "reply", "structured"])
    date = now - timedelta(minutes=rng.randint(0, 600))
    boundary = f"==b{serial:07d}{rng.randrange(16**6):06x}=="
    first = people[0][0].split()[0]
    text = (
        f"Hi {first},\r\n\r\nCongratulations on the offer! Your start date is Monday.\r\n"
        f"Reference for your records: {marker}-body\r\n\r\nBest,\r\n{sender_name}\r\n"
    )
    html = f"<html><body><p>Hi {first},</p><p>Private: {marker}-html</p></body></html>\r\n"
    headers = [
        ("From", fmt(sender_name, sender)),
        ("To", ", ".join(fmt(n, a) for n, a in people)),
    ]
    if cc:
        headers.append(("Cc", ", ".join(fmt(n, a) for n, a in cc)))
    headers += [
        ("Date", email.utils.format_datetime(date)),
        ("Message-ID", f"<{marker}.{serial}@mail.{agency.domain}>"),
        ("Subject", f"Your offer {marker}-subject"),
    ]
    markers_in = {"subject", "body", "message-id"}
    if shape == "outlook":
        headers += [
            ("Thread-Topic", f"Your offer {marker}-topic"),
            ("Thread-Index", base64.b64encode(rng.randbytes(22)).decode()),
            ("X-MS-Has-Attach", ""),
            ("Content-Language", "en-GB"),
        ]
    if shape == "reply":
        headers += [
            ("In-Reply-To", f"<{marker}-irt@mail.test>"),
            ("References", f"<{marker}-ref1@mail.test> <{marker}-ref2@mail.test>"),
        ]
    if rng.random() < 0.5:
        headers.append(("Keywords", f"offer, {marker}-keywords"))
    if rng.random() < 0.3:
        headers.append(("X-Private-Note", f"salary 85k {marker}-note"))
    if rng.random() < 0.2:
        headers.append(("User-Agent", "Mozilla Thunderbird 115.0"))
    if shape == "structured":
        headers += [
            ("X-EmailSync-Placement", f"PL-{serial}"),
            ("X-EmailSync-Role", rng.choice(["candidate", "client"])),
        ]
    headers.append(("MIME-Version", "1.0"))
    if shape in ("plain", "reply", "structured"):
        body_text = text
        if shape == "structured" and rng.random() < 0.5:
            body_text += (
                "-----BEGIN EMAILSYNC-----\r\n"
                f'{{"placement_ref": "PL-{serial}", "recipient_name": "{first}"}}\r\n'
                "-----END EMAILSYNC-----\r\n"
            )
        if rng.random() < 0.5:
            headers += [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Transfer-Encoding", "quoted-printable"),
            ]
            body = qp(body_text.replace("\r\n", "\n"))
        else:
            headers += [
                ("Content-Type", 'text/plain; charset="utf-8"; format=flowed'),
                ("Content-Transfer-Encoding", "7bit"),
            ]
            body = body_text.encode()
    else:
        headers.append(
            (
                "Content-Type",
                f"multipart/{'mixed' if shape == 'attachment' else 'alternative'};"
                f' boundary="{boundary}"',
            )
        )
        parts = [
            b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
            + text.encode(),
            b"Content-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + qp(html),
        ]
        if shape == "attachment":
            pdf = b"%PDF-1.4\n% " + marker.encode() + b"-attachment\n" + rng.randbytes(300)
            parts.append(
                b'Content-Type: application/pdf; name="offer.pdf"\r\n'
                b'Content-Disposition: attachment; filename="offer.pdf"\r\n'
                b"Content-Transfer-Encoding: base64\r\n\r\n" + b64_lines(pdf)
            )
        sep = b"--" + boundary.encode()
        body = b"".join(sep + b"\r\n" + p + b"\r\n" for p in parts) + sep + b"--\r\n"
    raw = b"\r\n".join(f"{k}: {v}".encode() for k, v in headers) + b"\r\n\r\n" + body
    return Base(
        raw=raw,
        agency=agency,
        sender=sender,
        recipients=[a.lower() for _, a in people + cc],
        markers=[marker],
        shape=shape,
        extra={"boundary": boundary, "markers_in": markers_in, "text": text, "html": html},
    )
