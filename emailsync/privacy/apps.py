from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "emailsync.privacy"
    label = "privacy"
    verbose_name = "Privacy requests"
