import zoneinfo

from django.utils import timezone


class CurrentAgencyMiddleware:
    """Puts the signed-in member's agency on the request: every agency page scopes by it.

    The agency app (`/app/`) also shows times in the agency's time zone, the one its Email Sync
    rules are written in: otherwise a Sydney agency's request due at 09:00 reads "22:00". Only
    there: public pages are cached for every visitor and must not carry one member's zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        request.agency = user.agency if user is not None and user.is_authenticated else None
        if request.agency is None or not request.path_info.startswith("/app/"):
            return self.get_response(request)
        try:
            zone = zoneinfo.ZoneInfo(request.agency.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            return self.get_response(request)
        with timezone.override(zone):
            return self.get_response(request)
