"""Drop the `varchar_pattern_ops` twins PostgreSQL's Django backend adds beside every indexed
text column. They serve LIKE 'prefix%' only, and these keys — an outbox row's Message-ID,
dedupe key and provider id, a review request's token — are only ever matched exactly (their
plain unique or btree indexes do that); every row the listener writes paid for them anyway.
"""

from django.db import migrations

TABLES = ["outbox_outboundemail", "review_requests_reviewrequest"]


def drop_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # other databases have no such twins
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(%s) AND indexdef LIKE %s",
            [TABLES, "%varchar_pattern_ops%"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("outbox", "0003_heartbeat"),
        ("review_requests", "0003_fewer_indexes_on_hot_rows"),
    ]

    # Going back leaves them out: nothing reads through them.
    operations = [migrations.RunPython(drop_pattern_indexes, migrations.RunPython.noop)]
