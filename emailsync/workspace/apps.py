from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "emailsync.workspace"
    verbose_name = "Agency app"

    def ready(self):
        from emailsync.outbox.jobs import JOBS, Job

        from .leaks import EVERY, JOB, alert_leaked_addresses

        # A stranger using the BCC address is found by the worker, not by the listener: the
        # ingest path stays as fast as it is, and the admins hear within a minute.
        JOBS[JOB] = Job(alert_leaked_addresses, EVERY)
