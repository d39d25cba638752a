from datetime import timedelta

from django.apps import AppConfig


class PlacementsConfig(AppConfig):
    name = "emailsync.placements"
    verbose_name = "Placements"

    def ready(self):
        from emailsync.outbox.jobs import JOBS, Job

        from . import signals  # noqa: F401
        from .csvio import process_pending_imports

        # Large CSV imports run in the worker, a chunk per tick, while the page shows progress.
        JOBS["placement_imports"] = Job(process_pending_imports, timedelta(seconds=5))
