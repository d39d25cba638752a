from django.urls import path

from . import views

operations_urls = [
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    path("dev/outbox/", views.outbox, name="dev-outbox"),
    path("dev/outbox/<int:message_id>/", views.outbox_message, name="dev-outbox-message"),
    path("dev/outbox/<int:message_id>/html/", views.outbox_html, name="dev-outbox-html"),
    path("dev/outbox/<int:message_id>/text/", views.outbox_text, name="dev-outbox-text"),
]
