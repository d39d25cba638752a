from django.urls import path

from . import views

urlpatterns = [
    path("privacy/", views.request_form, name="privacy-request"),
    path("privacy/confirm/<str:token>/", views.confirm, name="privacy-confirm"),
]
