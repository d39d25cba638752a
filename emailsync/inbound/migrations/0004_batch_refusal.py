"""A function the listener's one-statement batch write calls to fail itself (PostgreSQL only).

On PostgreSQL a batch's write is one statement in autocommit, its own transaction
(batch_statement.py). When that statement finds it lost a dedupe-ledger entry it bet on, it must
undo everything it wrote, which only an error inside the statement can do; SQL has no way to
raise one, so this function does, with SQLSTATE ES409 for the listener to recognise.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION emailsync_refuse_batch(reason text) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'ES409', MESSAGE = 'Email Sync batch refused: ' || reason;
END
$$
"""

DROP = "DROP FUNCTION IF EXISTS emailsync_refuse_batch(text)"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("inbound", "0003_hot_rows_without_foreign_key_checks")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
