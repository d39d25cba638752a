from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "emailsync.profiles"
    verbose_name = "Public profiles"

    def ready(self):
        from . import signals  # noqa: F401  (connects the aggregate receivers)
