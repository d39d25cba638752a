from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "emailsync.reviews"
    verbose_name = "Reviews"
