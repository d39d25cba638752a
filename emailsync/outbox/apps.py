from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "emailsync.outbox"
    verbose_name = "Outbox"

    def ready(self):
        from . import tracking  # noqa: F401 - connects the anymail tracking receiver
