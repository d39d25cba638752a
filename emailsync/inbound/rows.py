"""Multi-row INSERTs and batch lookups for the listener's hot path, as plain SQL.

A busy listener writes ten rows per trigger email. Building a model instance for each and letting
`bulk_create` prepare every value costs more CPU than everything else ingest does, so the hot
path writes dicts straight into one INSERT per table per batch. Its reads are a handful of
"these columns where this field is in that set" lookups per batch; compiling each through the
ORM cost more than running it, so `select` writes them directly. Column names, defaults and value
adaptation still come from the models, so a schema change cannot silently diverge from here.

On PostgreSQL a lookup's list travels as one array parameter (`= ANY`), so each statement's
text is the same whatever the batch size, and the parameters are sent in binary through the
driver's server-side binding on Django's own connection (inside its transaction): the client-side
quoting Django's cursor uses spent more CPU on a batch's arrays than the database did. A batch's
rows travel as JSON documents (`json_rows`), written in one statement by batch_statement.py.
"""

import functools
from datetime import datetime

import orjson
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.sqlite3.base import SQLiteCursorWrapper

from emailsync.prepared_statements import server_side_cursor

# SQLite accepts 32,766 bound values in one statement.
MAX_VALUES = 30_000


def hot_cursor():
    """On PostgreSQL a cursor binding on the server, whose `%b` placeholders send values in
    binary, with statements prepared unless EMAILSYNC_PREPARED_QUERIES is off; on SQLite
    Django's cursor, converting each statement's placeholders once per text."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        return server_side_cursor(prepare=settings.EMAILSYNC_PREPARED_QUERIES)
    if db.vendor != "sqlite":
        return db.cursor()
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        raw = db.connection.cursor(factory=ConvertedOnceCursor)
    return db.make_debug_cursor(raw) if db.queries_logged else db.make_cursor(raw)


class ConvertedOnceCursor(SQLiteCursorWrapper):
    """Django's SQLite cursor, which turns `%s` into SQLite's `?` with a regular expression
    on every call: over a batch's multi-row INSERTs, hundreds of placeholders each, that
    was 3% of a busy listener's CPU. The hot path repeats a few statement texts, so each
    one's conversion is remembered."""

    def convert_query(self, query, *, param_names=None):
        if param_names is not None or len(query) > REMEMBERED_TEXT:
            return super().convert_query(query, param_names=param_names)
        return _with_qmarks(query)


REMEMBERED_TEXT = 32_768  # characters: a batch of a few dozen emails; longer ones are rare


@functools.lru_cache(maxsize=256)
def _with_qmarks(query: str) -> str:
    return SQLiteCursorWrapper.convert_query(None, query)  # Django's own; it reads no cursor


def placeholder() -> str:
    return "%b" if connection.vendor == "postgresql" else "%s"


class Table:
    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.pk_column = model._meta.pk.column

    def defaults(self) -> dict:
        # get_default() also gives '' for text fields without one, as bulk_create would. The
        # fixed ones are worked out once; a callable (now, dict) is called for every batch.
        fixed, called = self._defaults
        return {**fixed, **{f.attname: f.get_default() for f in called}}

    @functools.cached_property
    def _defaults(self) -> tuple[dict, list]:
        called = [f for f in self.fields if f.has_default() and callable(f.default)]
        fixed = {f.attname: f.get_default() for f in self.fields if f not in called}
        return fixed, called

    @staticmethod
    def adapter(field):
        """How a Python value of this field becomes a database value (None: as it is)."""
        if isinstance(field, models.DateTimeField):
            return connection.ops.adapt_datetimefield_value
        if isinstance(field, models.JSONField):
            return lambda value: field.get_db_prep_save(value, connection)
        return None

    def insert(self, rows: list[dict], returning: bool = False) -> list[int]:
        """Insert `rows` (attname -> value; missing fields take their defaults) as multi-row
        VALUES. (PostgreSQL writes a batch in one statement instead:
        batch_statement.py.)

        With `returning`, the new primary keys come back in the order of `rows`.
        """
        if not rows:
            return []
        defaults = self.defaults()
        quote = connection.ops.quote_name
        table = quote(self.model._meta.db_table)
        columns = ", ".join(quote(f.column) for f in self.fields)
        one = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        suffix = f" RETURNING {quote(self.pk_column)}" if returning else ""
        adapters = [
            (f.attname, self.adapter(f), isinstance(f, models.DateTimeField)) for f in self.fields
        ]
        adapted: dict = {}  # a batch repeats the same few timestamps: adapt each once
        ids: list[int] = []
        per_statement = max(1, MAX_VALUES // len(self.fields))
        with hot_cursor() as cursor:
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                params = []
                for row in chunk:
                    for name, adapt, is_datetime in adapters:
                        value = row[name] if name in row else defaults[name]
                        if adapt is not None and value is not None:
                            if is_datetime:
                                if value not in adapted:
                                    adapted[value] = adapt(value)
                                value = adapted[value]
                            else:
                                value = adapt(value)
                        params.append(value)
                values = ", ".join([one] * len(chunk))
                sql = f"INSERT INTO {table} ({columns}) VALUES {values}"  # noqa: S608
                cursor.execute(sql + suffix, params)
                if returning:
                    ids.extend(row[0] for row in cursor.fetchall())
        return ids

    def as_row(self, instance: models.Model) -> dict:
        return {f.attname: getattr(instance, f.attname) for f in self.fields}

    # --- PostgreSQL: a batch's rows as one JSON document ---------------------------------

    def json_rows(self, rows: list[dict], moments=None) -> list[dict]:
        """`rows` with defaults filled in and date-times as ISO 8601 text (each distinct moment
        formatted once: a batch repeats the same few), ready for `json_populate_record`,
        which gives every value its column's type on the server and ignores keys that are
        not columns (a row's links to others, for the statement's own use)."""
        if any(f.attname != f.column for f in self.fields):
            raise ValueError(f"{self.model.__name__}: a column named apart from its field")
        moments = {} if moments is None else moments
        defaults = self.defaults()
        datetimes = [f.attname for f in self.fields if isinstance(f, models.DateTimeField)]
        out = []
        for row in rows:
            record = {**defaults, **row}
            for name in datetimes:
                value = record[name]
                if value is not None:
                    text = moments.get(value)
                    if text is None:
                        text = moments[value] = value.isoformat()
                    record[name] = text
            out.append(record)
        return out


def json_document(rows: list[dict]) -> str:
    """Compact, and non-ASCII as itself: text PostgreSQL takes as json without escapes.
    orjson writes a batch's documents in a sixth of the standard library's time (about
    0.15 ms of the listener's CPU per batch of eight emails; docs/PERFORMANCE.md, stop 29)."""
    return orjson.dumps(rows).decode()


def array_literal(values) -> str:
    """`values` (text, integers or date-times) as a PostgreSQL array literal, for a parameter
    the statement casts (`(%b)::varchar[]`). psycopg dumps a list element by element in
    Python, which for a batch's dozen arrays cost several times this (docs/PERFORMANCE.md,
    stop 29). Text is always quoted, so no value reads as NULL or splits at a comma."""
    if not values:
        return "{}"
    first = next(iter(values))
    if isinstance(first, bool) or not isinstance(first, str | int | datetime):
        raise TypeError(f"no array literal for {type(first).__name__}")
    if isinstance(first, int):
        if not all(type(v) is int for v in values):
            raise TypeError("an array literal holds one type")
        return "{" + ",".join(map(str, values)) + "}"
    texts = [v.isoformat() for v in values] if isinstance(first, datetime) else list(values)
    joined = '","'.join(texts)
    if "\\" in joined or '"' in joined:  # rare in an address or token: escape each one
        joined = '","'.join([t.replace("\\", "\\\\").replace('"', '\\"') for t in texts])
    return '{"' + joined + '"}'


def select(model: type[models.Model], columns, where, since=None) -> list[tuple]:
    """Rows of `columns` (attnames) where every `where` attname is in its values, and, with
    `since=(attname, moment)`, that date-time column is at or after `moment`.

    Date-time columns come back as aware datetimes on every backend."""
    meta, ops = model._meta, connection.ops
    fields = [meta.get_field(name) for name in columns]
    conditions, params = [], []
    for name, values in where.items():
        values = list(values)
        if not values:
            return []
        column = ops.quote_name(meta.get_field(name).column)
        if connection.vendor == "postgresql":  # one array: the same text for any count
            conditions.append(f"{column} = ANY(%b)")
            params.append(values)
        else:
            conditions.append(f"{column} IN ({', '.join(['%s'] * len(values))})")
            params.extend(values)
    if since is not None:
        column = ops.quote_name(meta.get_field(since[0]).column)
        conditions.append(f"{column} >= {placeholder()}")
        params.append(ops.adapt_datetimefield_value(since[1]))
    sql = (
        f"SELECT {', '.join(ops.quote_name(f.column) for f in fields)} "  # noqa: S608
        f"FROM {ops.quote_name(meta.db_table)} WHERE {' AND '.join(conditions)}"
    )
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    datetimes = [i for i, f in enumerate(fields) if isinstance(f, models.DateTimeField)]
    if not datetimes or connection.vendor != "sqlite":
        return rows
    convert = ops.convert_datetimefield_value  # SQLite stores date-times as text
    out = []
    for row in rows:
        row = list(row)
        for i in datetimes:
            row[i] = convert(row[i], None, connection)
        out.append(tuple(row))
    return out


def aware(value):
    """A date-time column's value as an aware datetime (SQLite stores them as text)."""
    if value is None or connection.vendor != "sqlite":
        return value
    return connection.ops.convert_datetimefield_value(value, None, connection)
