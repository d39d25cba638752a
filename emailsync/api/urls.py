"""URLs: the REST API under /api/v1/ and its admin pages under /app/api/."""

from functools import wraps

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from django.urls import URLPattern, path, re_path
from django.views.decorators.csrf import csrf_exempt

from . import pages
from .api import api
from .errors import default_error, shape
from .idempotency import idempotent

JSON = "application/json"


def body_refused(request):
    """413 for a body over DATA_UPLOAD_MAX_MEMORY_SIZE, 415 for a body that is not JSON; None
    when the body may go on. Checked before anything reads the body (Idempotency-Key, ninja)."""
    try:
        body = request.body
    except RequestDataTooBig:
        return default_error(413)
    if body and request.content_type.strip().lower() != JSON:
        return default_error(415)
    return None


def api_view(view):
    """Around every API view: the body's size and type, Idempotency-Key, the error shape for
    errors ninja does not make (405), and no caching of answers that carry an agency's data."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            response = body_refused(request) or shape(idempotent(view)(request, *args, **kwargs))
        except Http404:  # raised outside ninja's handlers, e.g. by its root view at /api/v1/
            response = default_error(404)
        response.setdefault("Cache-Control", "no-store")
        return response

    return csrf_exempt(wrapper)


@csrf_exempt
def unknown(request, rest=""):
    response = default_error(404)
    response["Cache-Control"] = "no-store"
    return response


def _wrapped(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = api_view(pattern.callback)
    return patterns


ninja_patterns, _app_name, _namespace = api.urls
api_urls = (
    [*_wrapped(list(ninja_patterns)), re_path(r"^(?P<rest>.*)$", unknown, name="api-unknown")],
    _app_name,
    _namespace,
)

api_admin_urls = [  # mounted at /app/api/
    path("", pages.overview, name="api-overview"),
    path("method/", pages.save_method, name="api-method"),
    path("keys/new/", pages.key_create, name="api-key-create"),
    path("keys/<int:key_id>/revoke/", pages.key_revoke, name="api-key-revoke"),
    path("webhooks/new/", pages.webhook_edit, name="webhook-create"),
    path("webhooks/<int:endpoint_id>/", pages.webhook_detail, name="webhook-detail"),
    path("webhooks/<int:endpoint_id>/edit/", pages.webhook_edit, name="webhook-edit"),
    path("webhooks/<int:endpoint_id>/test/", pages.webhook_test, name="webhook-test"),
    path("webhooks/<int:endpoint_id>/secret/", pages.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<int:endpoint_id>/delete/", pages.webhook_delete, name="webhook-delete"),
    path(
        "webhooks/deliveries/<int:delivery_id>/retry/",
        pages.delivery_retry,
        name="webhook-delivery-retry",
    ),
]
