from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "emailsync.operations"
    verbose_name = "Operations"
