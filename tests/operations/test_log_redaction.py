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
        ("/privacy/confirm/abcdefghijklmnopqrstuvwxyz012", "/privacy/confirm/abc…"),
        ("/accounts/invitations/Zz9abcdefghijklmnopqrstu/", "/accounts/invitations/Zz9…/"),
        # Whatever follows the token, and a slash written %2F in a next= value.
        (f"see /review/{REVIEW_TOKEN}. then", "see /review/2Sl…. then"),
        (f"(/review/{REVIEW_TOKEN}), next", "(/review/2Sl…), next"),
        (f"/review/{REVIEW_TOKEN}%20x", "/review/2Sl…%20x"),
        (f"/login/?next=%2Freview%2F{REVIEW_TOKEN}%2F", "/login/?next=%2Freview%2F2Sl…%2F"),
        # Readable things stay readable: slugs (with digits too), words, ids, static files.
        ("/agencies/acme-recruitment-limited/", "/agencies/acme-recruitment-limited/"),
        ("/agencies/top-100-recruiters-ltd-2/", "/agencies/top-100-recruiters-ltd-2/"),
        ("/review/terms/", "/review/terms/"),
        ("/accounts/reset/Mw/set-password/", "/accounts/reset/Mw/set-password/"),
        ("/accounts/reset/done/", "/accounts/reset/done/"),
        ("/app/reviews/1234/verify/", "/app/reviews/1234/verify/"),
        ("/static/css/app.3f2a1b9c8d7e.css", "/static/css/app.3f2a1b9c8d7e.css"),
    ],
)
def test_tokens_are_shortened_and_the_rest_is_kept(line, expected):
    assert redact_paths(line) == expected


def record(name, msg, *args):
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_djangos_not_found_warning_is_redacted():
    entry = record("django.request", "Not Found: %s", f"/review/{REVIEW_TOKEN}/")
    assert TokensOutOfPaths().filter(entry)
    assert entry.getMessage() == "Not Found: /review/2Sl…/"


def test_every_record_goes_through_the_redaction_on_the_console_handler():
    # django.security.csrf logs "Forbidden (CSRF cookie not set.): /review/<token>/" itself,
    # as any other logger might: the one handler every record goes through shortens it.
    [handler] = [
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, TokensOutOfPaths) for f in h.filters)
    ]
    entry = record(
        "django.security.csrf",
        "Forbidden (%s): %s",
        "CSRF cookie not set.",
        f"/review/{REVIEW_TOKEN}/",
    )
    assert handler.filter(entry)
    assert entry.getMessage() == "Forbidden (CSRF cookie not set.): /review/2Sl…/"
