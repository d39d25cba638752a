"""The interactive API reference (Swagger UI) from our own static files, under the site's CSP.

django-ninja's page keeps its settings in a JSON data block and its code in static files, and
Swagger UI sets styles through the DOM (not inline markup), so the page runs under the site's
policy unchanged: no inline scripts or styles, nothing from a CDN. tests/api/test_browser.py
opens it in Chromium, expands an operation and the schemas, and fails on any CSP violation.
"""

from django.conf import settings
from ninja.openapi.docs import Swagger


class LocalSwagger(Swagger):
    def __init__(self):
        super().__init__(settings={"persistAuthorization": False, "tryItOutEnabled": False})

    def render_page(self, request, api, **kwargs):
        response = super().render_page(request, api, **kwargs)
        response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response
