from django.apps import AppConfig


class PlacementsConfig(AppConfig):
    name = "emailsync.placements"
    verbose_name = "Placements"

    def ready(self):
        from . import signals  # noqa: F401
