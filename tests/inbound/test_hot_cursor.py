"""The listener's hot-path cursor (rows.hot_cursor) runs statements as Django's would."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emailsync.agencies.models import Agency
from emailsync.inbound import rows

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's placeholder conversion")
def test_on_sqlite_each_statement_text_is_converted_once(monkeypatch):
    conversions = []
    convert = rows.SQLiteCursorWrapper.convert_query

    def counted(self, query, *, param_names=None):
        conversions.append(query)
        return convert(self, query, param_names=param_names)

    Agency.objects.create(name="Acme", slug="acme")
    monkeypatch.setattr(rows.SQLiteCursorWrapper, "convert_query", counted)
    rows._with_qmarks.cache_clear()
    statement = "SELECT slug, '100%%' FROM agencies_agency WHERE slug = %s OR slug = %s"

    answers = []
    for _ in range(3):
        with rows.hot_cursor() as cursor:
            cursor.execute(statement, ["acme", "nobody"])
            answers.append(cursor.fetchall())

    assert answers == [[("acme", "100%")]] * 3
    assert conversions == [statement]  # once, however often it ran


def test_the_hot_cursor_is_counted_and_its_errors_are_djangos():
    from django.db import DatabaseError

    where = f"slug = {rows.placeholder()}"
    statement = f"SELECT count(*) FROM agencies_agency WHERE {where}"  # noqa: S608
    with CaptureQueriesContext(connection) as queries, rows.hot_cursor() as cursor:
        cursor.execute(statement, ["x"])
        assert cursor.fetchone()[0] == 0
    assert len(queries.captured_queries) == 1
    with pytest.raises(DatabaseError), rows.hot_cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
