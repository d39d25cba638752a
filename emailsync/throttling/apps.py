from django.apps import AppConfig


class ThrottlingConfig(AppConfig):
    name = "emailsync.throttling"
    verbose_name = "Throttling"
