"""Random and hostile header blocks: ingest never raises, every message gets a valid SMTP reply,
and nothing unparseable becomes a review request."""

import re
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emailsync.inbound.evidence import AuthEvidence
from emailsync.inbound.ingest import ingest
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest

HEADER_NAMES = [
    "From",
    "To",
    "Cc",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "Content-Type",
    "X-EmailSync-Role",
    "X-EmailSync-Placement",
    "Authentication-Results",
    "DKIM-Signature",
]
NASTY = st.sampled_from(
    [
        "",
        "<>",
        "@",
        "a@",
        "@b",
        "\x00",
        "=?utf-8?b?invalid?=",
        "=?x-unknown?q?a?=",
        "\r\n\t",
        "undisclosed-recipients:;",
        '"a@b" <c@d',
        "a@b, , ,",
        "Ünïcödé <ü@exämple.test>",
        "a" * 2000,
        "x@[127.0.0.1]",
        "(comment) a@b (more)",
        "<<a@b>>",
        "a@b\x00.test",
        "Bob\r\nBcc: victim@evil.test",
        "=?utf-8?q?=0D=0ABcc:_x@evil.test?= <a@b.test>",
    ]
)
VALUE = st.one_of(
    NASTY,
    st.text(alphabet=string.printable, max_size=200),
    st.text(max_size=100),
    st.lists(NASTY, max_size=5).map(", ".join),
)


@st.composite
def header_blocks(draw):
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        name = draw(
            st.sampled_from(HEADER_NAMES)
            | st.text(string.ascii_letters + "-", min_size=1, max_size=20)
        )
        lines.append(f"{name}: {draw(VALUE)}".encode("utf-8", "surrogateescape"))
    if draw(st.booleans()):
        lines.append(draw(st.binary(max_size=300)))
    return b"\r\n".join(lines) + b"\r\n"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(header=header_blocks(), body=st.binary(max_size=500))
def test_ingest_never_raises_and_bad_headers_ask_nobody(sync_agency, header, body):
    EmailSyncSettings.objects.filter(agency=sync_agency).update(trust_from_domain=True)
    before = ReviewRequest.objects.count()
    results = ingest([sync_agency.bcc], header, body, AuthEvidence(), "smtp")
    assert len(results) == 1
    created = ReviewRequest.objects.count() - before
    if created:
        # Only a readable From on the agency's domain and readable recipients can ask anyone.
        assert re.search(rb"(?im)^from:.*@acme\.test", header)
        for request in ReviewRequest.objects.order_by("-id")[:created]:
            assert (
                "@" in request.email and "\n" not in request.email and "\x00" not in request.email
            )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(header=header_blocks(), body=st.binary(max_size=200))
def test_every_message_gets_a_valid_smtp_reply(listener, sync_agency, header, body):
    raw = header + b"\r\n" + body.replace(b"\r", b"").replace(b"\n", b"\r\n")
    with listener.client() as smtp:
        smtp.ehlo()
        smtp.mail("sam@acme.test")
        smtp.rcpt(sync_agency.bcc)
        code, text = smtp.data(raw)
    assert code in (250, 500, 552), (code, text)  # never 451: ingest must not fail on input
    assert re.match(rb"^[0-9]\.[0-9]{1,3}\.[0-9]{1,3} |^Error", text) or code == 500
