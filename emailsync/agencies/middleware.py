class CurrentAgencyMiddleware:
    """Puts the signed-in member's agency on the request: every agency page scopes by it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        request.agency = user.agency if user is not None and user.is_authenticated else None
        return self.get_response(request)
