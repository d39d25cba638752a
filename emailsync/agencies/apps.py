from django.apps import AppConfig


class AgenciesConfig(AppConfig):
    name = "emailsync.agencies"
    verbose_name = "Agencies and people"
