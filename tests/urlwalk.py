"""Enumerate the URL patterns from the resolver, so a new URL cannot escape the access tests."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass(frozen=True)
class Route:
    route: str
    name: str
    kwargs: tuple[str, ...]

    def path(self, **values) -> str:
        path = "/" + self.route
        for key in self.kwargs:
            path = re.sub(r"<(?:\w+:)?" + key + r">", str(values[key]), path)
        return path


def all_routes(resolver=None, prefix="") -> list[Route]:
    resolver = resolver or get_resolver()
    found = []
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(all_routes(entry, route))
        elif isinstance(entry, URLPattern):
            kwargs = tuple(re.findall(r"<(?:\w+:)?(\w+)>", route))
            found.append(Route(route, entry.name or "", kwargs))
    return found


def agency_routes() -> list[Route]:
    """Every page of the signed-in agency app lives under /app/."""
    return [r for r in all_routes() if r.route.startswith("app/")]


def api_routes() -> list[Route]:
    return [r for r in all_routes() if r.route.startswith("api/v1/")]


# Every route outside /app/ and /api/v1/, and why it needs no agency-isolation walk. Each group
# has its own walk in tests/agencies/test_route_coverage.py; a route in none of them fails
# `test_every_route_is_walked_or_classified` until someone decides where it belongs.
OPERATOR_PREFIXES = ("admin/",)  # the Django admin: staff only, walked for non-staff
ESP_PREFIXES = ("anymail/",)  # ESP webhooks: HTTP basic auth with ANYMAIL_WEBHOOK_SECRET
API_NOT_OPERATIONS = {  # routes under /api/v1/ that are not operations of the document
    "openapi-json": "the API's own description: no agency data",
    "openapi-view": "Swagger UI for the description: no agency data",
    "api-root": "an index of the API: no agency data",
    "api-unknown": "the catch-all 404 in the API's error shape",
}
# Links that are themselves the credential: an unguessable token names one object, whatever
# the agency. Walked with an unknown token: nothing is shown.
CAPABILITY = {
    "accept-invitation": "token of one invitation",
    "password_reset_confirm": "signed, single-use reset token of one user",
    "unsubscribe": "token of one review request",
    "privacy-confirm": "signed, emailed link of one data request",
    "review-form": "token of one review request",
    "review-edit": "token of one review request",
    "review-thanks": "token of one review request",
    "review-confirm": "token of one recruiter-link review request",
}
PUBLIC = {  # anyone may open these; the ones that take an id are walked for scoping
    "": "redirects to the agency home (which asks for a sign-in)",
    "login": "the sign-in form",
    "logout": "ends the caller's own session",
    "signup": "creates a new agency (when open); no existing data",
    "password_reset": "asks for a reset email; says the same for any address",
    "password_reset_done": "static page",
    "password_reset_complete": "static page",
    "password-change": "the signed-in person's own password; no ids",
    "privacy-request": "the data-request form; the answer goes to the address only",
    "review-terms": "static page",
    "recruiter-link": "a recruiter's public review link (agency and recruiter slugs)",
    "recruiter-link-sent": "static 'check your email' page",
    "profiles-directory": "public directory of agencies",
    "profiles-agency": "public agency profile: verified reviews only",
    "profiles-recruiter": "public recruiter profile: verified reviews only",
    "profiles-widget": "public embeddable widget: verified reviews only",
    "profiles-brand-css": "the agency's public brand colour",
    "profiles-widget-script": "static script",
    "robots-txt": "static rules for search engines, pointing at the sitemap",
    "profiles-sitemap": "public sitemap index",
    "profiles-sitemap-section": "public sitemap pages",
    "profiles-report": "report a published review; the id is scoped to the slug and published",
    "health": "database and worker liveness, no agency data",
    "favicon": "redirects to the static site icon",
    "metrics": "platform totals behind EMAILSYNC_METRICS_TOKEN",
    "dev-outbox": "development outbox: DEBUG with no mail server only",
    "dev-outbox-message": "development outbox: DEBUG with no mail server only",
    "dev-outbox-html": "development outbox: DEBUG with no mail server only",
    "dev-outbox-text": "development outbox: DEBUG with no mail server only",
    "media/<path:path>": "uploaded logos and photos (public on profiles); DEBUG only",
}
DEBUG_ONLY = {"media/<path:path>"}  # routed only when DEBUG is on


def classify(route: Route) -> str | None:
    """Which walk covers `route`: agency, api, operator, esp, capability, public (or None)."""
    if route.route.startswith("app/"):
        return "agency"
    if route.route.startswith("api/v1/"):
        return "api-meta" if route.name in API_NOT_OPERATIONS else "api"
    if route.route.startswith(OPERATOR_PREFIXES):
        return "operator"
    if route.route.startswith(ESP_PREFIXES):
        return "esp"
    if route.name in CAPABILITY:
        return "capability"
    if route.name in PUBLIC or route.route in PUBLIC:
        return "public"
    return None
