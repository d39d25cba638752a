from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "emailsync.workspace"
    verbose_name = "Agency app"
