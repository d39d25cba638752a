from django.apps import AppConfig


class ReviewRequestsConfig(AppConfig):
    name = "emailsync.review_requests"
    verbose_name = "Review requests"
