"""Property-based: Hypothesis draws hostile header blocks and bodies (tests/fuzz/generated.py),
each message carries a fresh privacy marker, and goes over a socket to the in-process listener.
Properties: a valid reply and never 451; a trigger with header defects asks nobody; the marker
is in neither the database nor the logs."""

import logging
import secrets

from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from emailsync.inbound.headers import parse_headers, split_message
from tests.inbound.test_privacy import database_dump

from .checks import Result, check_database, check_replies, find_leaks, markers_index
from .client import send
from .corpus import Case
from .generated import messages
from .messages import MARKER_PREFIX


@hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(drawn=messages())
def test_drawn_messages_keep_every_promise(fuzz_listener, fuzz_bcc, caplog, capfd, drawn):
    caplog.set_level(logging.DEBUG)
    keep_from, keep_to, fields, body = drawn
    marker = f"{MARKER_PREFIX}hy{secrets.randbelow(10**5):05d}z{secrets.token_hex(3)}"
    head = [f"Subject: Offer {marker}".encode()]
    if keep_from:
        head.append(b"From: Kim <kim@beta.test>")
    if keep_to:
        head.append(f"To: cara.{secrets.token_hex(4)}@candidate.test".encode())
    raw = b"\r\n".join(head + fields) + b"\r\n\r\n" + body + b"\r\n" + marker.encode() + b"\r\n"
    agency = "beta"  # trusts its From domain, so readable mail goes all the way to requests
    result = Result(
        Case(
            "hypothesis",
            "drawn",
            0,
            raw,
            agency,
            [marker],
            transport="raw",
            mail_from="kim@beta.test",
        ),
        None,
    )
    result.outcome = send(
        result.case, "127.0.0.1", fuzz_listener.port, fuzz_bcc, settings.EMAILSYNC_INBOUND_DOMAIN
    )
    check_replies(result)
    if parse_headers(split_message(raw)[0]).defects:
        result.case.address_defect = True  # then it must ask nobody
    check_database([result])
    index = markers_index([result])
    out, err = capfd.readouterr()
    assert not find_leaks(database_dump(), index, "the database dump")
    assert not find_leaks(caplog.text + out + err, index, "the logs")
    assert not result.violations, result.violations
