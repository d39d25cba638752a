from django.urls import path

from . import agency_views, views

# The reviewer's pages: no account, the token in the link is the key.
reviewer_urls = [
    path("review/terms/", views.review_terms, name="review-terms"),
    path("review/<str:token>/", views.review_form, name="review-form"),
    path("review/<str:token>/edit/", views.review_edit, name="review-edit"),
    path("review/<str:token>/thanks/", views.review_thanks, name="review-thanks"),
    path("review/<str:token>/confirm/", views.review_confirm, name="review-confirm"),
    path(
        "r/<slug:agency_slug>/<slug:recruiter_slug>/",
        views.recruiter_link,
        name="recruiter-link",
    ),
    path(
        "r/<slug:agency_slug>/<slug:recruiter_slug>/sent/",
        views.recruiter_link_sent,
        name="recruiter-link-sent",
    ),
]

# The signed-in agency's pages (under /app/reviews/): the agency comes from the member.
agency_review_urls = [
    path(
        "notifications/",
        agency_views.review_notifications,
        name="review-notifications",
    ),
]
