from datetime import timedelta

from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "emailsync.reviews"
    verbose_name = "Reviews"

    def ready(self):
        from emailsync.outbox.jobs import JOBS, Job

        from .services import send_due_digests

        # Daily digests go out from the worker's periodic jobs; checking every quarter hour
        # lets each agency's digest leave close to its own morning.
        JOBS["review_digests"] = Job(send_due_digests, timedelta(minutes=15))
