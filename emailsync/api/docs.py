"""The interactive API reference (Swagger UI) from our own static files, under our CSP.

django-ninja's page keeps its settings in a JSON data block and its code in static files, so it
runs under the site's policy (no inline scripts). Swagger UI sets a few inline `style`
attributes while rendering, so this page alone also allows inline styles; scripts stay 'self'.
"""

from django.conf import settings
from ninja.openapi.docs import Swagger

DOCS_POLICY = settings.CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


class LocalSwagger(Swagger):
    def __init__(self):
        super().__init__(settings={"persistAuthorization": False, "tryItOutEnabled": False})

    def render_page(self, request, api, **kwargs):
        response = super().render_page(request, api, **kwargs)
        response["Content-Security-Policy"] = DOCS_POLICY
        response["Cache-Control"] = "no-store"
        return response
