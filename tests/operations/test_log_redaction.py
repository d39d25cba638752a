"""Tokens in request paths never reach the logs whole (docs/PRIVACY.md)."""

import logging

import pytest

from emailsync.operations.log_filters import TokensOutOfPaths, redact_paths

REVIEW_TOKEN = "2SlR5WKUJ1MvB7ImMqtNgvAO1H2EksBT"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"GET /review/{REVIEW_TOKEN}/ HTTP/1.1", "GET /review/2Sl…/ HTTP/1.1"),
        (f"/review/{REVIEW_TOKEN}/thanks/", "/review/2Sl…/thanks/"),
        ("/accounts/reset/Mw/discle-27641c7d5b8f1e0a2c3d4e5f6a7b8c9d/", "/accounts/reset/Mw/dis…/"),
        ("/unsubscribe/abcdefghij_klmnopqrstu/", "/unsubscribe/abc…/"),
        (
            "/privacy/confirm/x?next=/review/AAAAAAAAAAAAAAAAAAAAAAAA",
            "/privacy/confirm/x?next=/review/AAA…",
        ),
        ("/app/reviews/?token=k9s8d7f6g5h4j3k2l1z0x", "/app/reviews/?token=k9s…"),
        # Readable things stay readable: slugs, numbers, fingerprinted static files.
        ("/agencies/acme-recruitment-limited/", "/agencies/acme-recruitment-limited/"),
        ("/app/reviews/1234/verify/", "/app/reviews/1234/verify/"),
        ("/static/css/app.3f2a1b9c8d7e.css", "/static/css/app.3f2a1b9c8d7e.css"),
    ],
)
def test_tokens_are_shortened_and_the_rest_is_kept(line, expected):
    assert redact_paths(line) == expected


def test_djangos_not_found_warning_is_redacted():
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Not Found: %s",
        (f"/review/{REVIEW_TOKEN}/",),
        None,
    )
    assert TokensOutOfPaths().filter(record)
    assert record.getMessage() == "Not Found: /review/2Sl…/"
