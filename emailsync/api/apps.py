from datetime import timedelta

from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "emailsync.api"
    label = "api"
    verbose_name = "API and webhooks"

    def ready(self):
        from emailsync.outbox.jobs import JOBS, Job

        from . import esp, events  # noqa: F401 - connect the signal receivers
        from .webhooks import deliver_due, purge_old

        # Webhook deliveries are claimed and sent by the same worker process as email, as a
        # periodic job every two seconds (docs/API.md explains the choice).
        JOBS["webhooks"] = Job(deliver_due, timedelta(seconds=2))
        JOBS["api_retention"] = Job(purge_old, timedelta(hours=1))
