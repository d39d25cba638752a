"""The batch statements' parameters as the listener sends them to PostgreSQL: arrays as text
literals the statement casts, rows as one JSON document (rows.array_literal, json_document)."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emailsync.inbound import rows

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's array casts; SQLite has no arrays"
)

# Any text PostgreSQL can hold: no NUL, no lone surrogates (they are not UTF-8).
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def round_trip(values, cast: str):
    with rows.hot_cursor() as cursor:
        cursor.execute(f"SELECT (%b)::{cast}", [rows.array_literal(values)])
        return cursor.fetchone()[0]


@on_postgresql
@pytest.mark.django_db
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(texts, max_size=12))
def test_any_text_comes_back_as_it_went(values):
    assert round_trip(values, "varchar[]") == values


@on_postgresql
@pytest.mark.django_db
@pytest.mark.parametrize(
    "values",
    [
        ["NULL", "null", "", " ", "{}", "a,b", '"', "\\", '\\"', "jo@x.example"],
        ['"quoted name" <jo@x.example>', "back\\slash\\\\", "ümlaut@例え.jp"],
    ],
)
def test_text_that_means_something_in_an_array_literal_is_only_text(values):
    assert round_trip(values, "varchar[]") == values


@on_postgresql
@pytest.mark.django_db
def test_integers_moments_and_empty_arrays():
    now = datetime(2026, 11, 29, 5, 54, 20, 123456, tzinfo=UTC)
    assert round_trip([3, 1, 2**40], "bigint[]") == [3, 1, 2**40]
    assert round_trip([now, now - timedelta(days=90)], "timestamptz[]") == [
        now,
        now - timedelta(days=90),
    ]
    assert round_trip([], "varchar[]") == []
    assert round_trip([], "bigint[]") == []


@pytest.mark.parametrize("values", [[True], [1, "2"], ["a", 2], [1.5], [None]])
def test_mixed_or_unknown_values_are_refused_rather_than_guessed(values):
    with pytest.raises(TypeError):
        rows.array_literal(values)


def test_a_json_document_reads_as_the_standard_librarys_would():
    batch = [
        {
            "email": "zoë@例え.jp",
            "name": 'Jo "JJ" O\'Brien\\',
            "created_at": "2026-11-29T05:54:20.123456+00:00",
            "recruiter_id": None,
            "count": 3,
            "problems": {"placement": ["too long"], "role": []},
            "setup": False,
        }
    ]
    document = rows.json_document(batch)
    assert isinstance(document, str)
    assert "zoë" in document  # non-ASCII as itself, not escaped
    assert json.loads(document) == json.loads(json.dumps(batch, ensure_ascii=False)) == batch


def test_the_batch_statements_stay_short_enough_for_psycopg_to_remember_their_conversion():
    """psycopg converts a statement's placeholders once and caches the result only for texts
    up to 4,096 bytes (batch_statement.one_statement says what it costs past that)."""
    from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH

    from emailsync.inbound import batch_statement, known

    for text in (batch_statement.one_statement(), known.one_statement(True)):
        assert len(text.encode()) <= MAX_CACHED_STATEMENT_LENGTH
