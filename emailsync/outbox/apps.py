from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "emailsync.outbox"
    verbose_name = "Outbox"
