"""Property-based messages: Hypothesis draws header blocks and bodies; the corpus takes them in
a fixed order (derandomized), so the generated family is as reproducible as the others."""

from __future__ import annotations

import functools
import string

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

NAMES = [
    "From",
    "To",
    "Cc",
    "Sender",
    "Reply-To",
    "Date",
    "Message-ID",
    "Content-Type",
    "Content-Transfer-Encoding",
    "MIME-Version",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "X-EmailSync-Placement",
    "X-EmailSync-Role",
    "X-EmailSync-Recruiter",
    "X-EmailSync-Name",
    "Authentication-Results",
    "DKIM-Signature",
    "Received",
]
PIECES = [
    "",
    "<>",
    "@",
    '"',
    "\\",
    "(",
    ")",
    ";",
    ":",
    ",",
    "<",
    ">",
    "\x00",
    "\r\n",
    "\r\n ",
    "\n",
    "\r",
    "\t",
    "=?utf-8?b?",
    "=?utf-8?q?=0D=0A?=",
    "?=",
    "=?x?x?x?=",
    "xn--",
    "xn--80ak6aa92e.com",
    "\u0430cme.test",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\udcff",
    "sam@acme.test",
    "sam@beta.test",
    "cara@candidate.test",
    "Cara <cara@candidate.test>",
    "undisclosed-recipients:;",
    "multipart/mixed; boundary=",
    "text/plain; charset=",
    "base64",
    "quoted-printable",
    "dmarc=pass",
    "mx.relay.test;",
    "v=1; a=rsa-sha256; d=acme.test; s=s1; b=",
    '{"placement_ref":',
    "-----BEGIN EMAILSYNC-----",
    "'; DROP TABLE inbound_trigger;--",
    "<script>",
    "%s%n",
    "{0}",
]
VALUES = st.lists(
    st.one_of(
        st.sampled_from(PIECES), st.text(max_size=12), st.text(string.printable, max_size=20)
    ),
    max_size=8,
).map("".join)
BODY_PIECES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"\r\n",
            b"\n",
            b"\r\n.\r\n",  # the SMTP end of data inside a body (the client stuffs it)
            b"--",
            b"-----BEGIN EMAILSYNC-----\r\n",
            b"-----END EMAILSYNC-----\r\n",
            b'{"recipients": [',
            b"Content-Type: message/rfc822\r\n\r\n",
            b"=\r\n",
            b"\x00",
        ]
    ),
)


@st.composite
def messages(draw):
    fields = []
    for _ in range(draw(st.integers(0, 10))):
        name = draw(
            st.sampled_from(NAMES) | st.text(string.ascii_letters + "-", min_size=1, max_size=12)
        )
        fields.append(name.encode() + b": " + draw(VALUES).encode("utf-8", "surrogateescape"))
    keep_from = draw(st.booleans())
    keep_to = draw(st.booleans())
    body = b"".join(draw(st.lists(BODY_PIECES, max_size=12)))
    return keep_from, keep_to, fields, body


@functools.cache
def examples(count: int) -> tuple:
    """`count` drawn messages, the same ones on every run."""
    found = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(messages())
    def collect(example):
        found.append(example)

    collect()
    return tuple(found)


def hypothesis_variant(ctx, base):
    pool = examples(ctx.pool_size)
    keep_from, keep_to, fields, body = pool[ctx.index % len(pool)]
    marker = base.markers[0].encode()
    # Subject first: no drawn header above it can fold it into an address header.
    head = [b"Subject: Offer " + marker + b"-subject"]
    if keep_from:
        head.append(b"From: Sam <" + base.sender.encode() + b">")
    if keep_to:
        head.append(b"To: " + ", ".join(base.recipients).encode())
    head += fields
    raw = b"\r\n".join(head) + b"\r\n\r\n" + body + b"\r\n" + marker + b"-body\r\n"
    return raw, {"allowed": None}
