"""API keys in `Authorization: Bearer esk_…`, the agency's integration method, rate limits."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from ninja.security import HttpBearer

from emailsync.throttling.models import Counter

from .errors import ApiError
from .models import ApiKey, ApiSettings

LAST_USED_GRANULARITY = timedelta(minutes=1)
WINDOW_SECONDS = 60


class ApiKeyAuth(HttpBearer):
    openapi_description = "An API key from Settings → API in the agency app: `Bearer esk_…`."

    def authenticate(self, request, token: str):
        key = ApiKey.lookup(token.strip())
        if key is None:
            return None  # 401 in the error shape
        now = timezone.now()
        admit(key, now)
        if key.last_used_at is None or key.last_used_at < now - LAST_USED_GRANULARITY:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        request.api_key = key
        request.agency = key.agency
        return key


def admit(key: ApiKey, now=None) -> None:
    """Count a call against the key's rate limit and check that the agency's API is on;
    raises the ApiError to answer otherwise. Every call passes here, a replayed
    Idempotency-Key included (`idempotency.py` answers those before ninja authenticates)."""
    limit = getattr(settings, "EMAILSYNC_API_RATE_LIMIT", 600)
    decision = Counter.hit(f"api:key:{key.pk}", limit, WINDOW_SECONDS, now or timezone.now())
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            f"This key made more than {limit} requests in a minute; retry later.",
            headers={"Retry-After": str(decision.retry_after)},
        )
    if not ApiSettings.for_agency(key.agency_id).api_enabled:
        raise ApiError(
            403,
            "api_disabled",
            "The agency's integration method is Email Sync only: an admin can turn the "
            "API on in the agency app under Settings → API.",
        )
