"""Migrations match the models, and each is safe while the version before it still runs.

docs/DEPLOY.md upgrades by migrating first and restarting after, so for a while the previous
version writes to the new schema: a column it does not know must be nullable or have a default
in the database itself (Django drops a `default=` from the table once the column is added).
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import models
from django.db.migrations import operations
from django.db.migrations.loader import MigrationLoader

# Added before this rule, with the default only in Python: each shipped in a release whose
# old version was never run against the new schema (they are history now, and changing an
# applied migration changes nothing on the databases that applied it).
BEFORE_THE_RULE = {
    ("agencies", "0002_session_version"),
    ("outbox", "0002_worker"),
    ("review_requests", "0002_review_notifications"),
}


@pytest.mark.django_db
def test_the_models_need_no_migration_that_is_not_written():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_a_column_added_to_a_table_in_use_has_a_default_the_database_keeps():
    loader = MigrationLoader(None, ignore_no_migrations=True)  # from disk, not the database
    unsafe = []
    for (app, name), migration in loader.disk_migrations.items():
        if not migration.__module__.startswith("emailsync.") or (app, name) in BEFORE_THE_RULE:
            continue
        created = {
            op.name.lower() for op in migration.operations if isinstance(op, operations.CreateModel)
        }
        for op in migration.operations:
            if not isinstance(op, operations.AddField) or op.model_name_lower in created:
                continue  # a table made in the same migration is in use by no one yet
            field = op.field
            if field.null or field.db_default is not models.NOT_PROVIDED:
                continue
            if field.many_to_many:
                continue
            unsafe.append(f"{app}.{name}: {op.model_name}.{op.name}")
    assert unsafe == []


def test_no_migration_renames_or_drops_what_the_running_version_still_reads():
    """The previous version reads every column and table it knows: renaming or dropping one
    breaks it until it is restarted. Such a change takes two releases (stop using, then drop)."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    breaking = (
        operations.RenameField,
        operations.RemoveField,
        operations.RenameModel,
        operations.DeleteModel,
    )
    found = [
        f"{app}.{name}: {type(op).__name__}"
        for (app, name), migration in loader.disk_migrations.items()
        if migration.__module__.startswith("emailsync.")
        for op in migration.operations
        if isinstance(op, breaking)
    ]
    assert found == []
