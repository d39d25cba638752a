"""Multi-row INSERTs for the listener's hot path, from plain dicts.

A busy listener writes ten rows per trigger email. Building a model instance for each and letting
`bulk_create` prepare every value costs more CPU than everything else ingest does, so the hot
path writes dicts straight into one INSERT per table per batch. Column names, defaults and value
adaptation still come from the models, so a schema change cannot silently diverge from here.
"""

from django.db import connection, models

# SQLite accepts 32,766 bound values in one statement; PostgreSQL 65,535.
MAX_VALUES = 30_000


class Table:
    def __init__(self, model: type[models.Model]):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.pk_column = model._meta.pk.column

    def defaults(self) -> dict:
        # get_default() also gives '' for text fields without one, as bulk_create would.
        return {f.attname: f.get_default() for f in self.fields}

    @staticmethod
    def adapter(field):
        """How a Python value of this field becomes a database value (None: as it is)."""
        if isinstance(field, models.DateTimeField):
            return connection.ops.adapt_datetimefield_value
        if isinstance(field, models.JSONField):
            return lambda value: field.get_db_prep_save(value, connection)
        return None

    def insert(self, rows: list[dict], returning: bool = False) -> list[int]:
        """Insert `rows` (attname -> value; missing fields take their defaults).

        With `returning`, the new primary keys come back in the order of `rows`.
        """
        if not rows:
            return []
        defaults = self.defaults()
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        one = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        per_statement = max(1, MAX_VALUES // len(self.fields))
        suffix = f" RETURNING {quote(self.pk_column)}" if returning else ""
        adapters = [(f.attname, self.adapter(f)) for f in self.fields]
        ids: list[int] = []
        with connection.cursor() as cursor:
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                params = []
                for row in chunk:
                    for name, adapt in adapters:
                        value = row[name] if name in row else defaults[name]
                        params.append(adapt(value) if adapt and value is not None else value)
                sql = (
                    f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) "  # noqa: S608
                    f"VALUES {', '.join([one] * len(chunk))}{suffix}"
                )
                cursor.execute(sql, params)
                if returning:
                    ids.extend(row[0] for row in cursor.fetchall())
        return ids

    def as_row(self, instance: models.Model) -> dict:
        return {f.attname: getattr(instance, f.attname) for f in self.fields}
