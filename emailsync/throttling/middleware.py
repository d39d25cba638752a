"""The client's own address behind the documented reverse proxy (docs/DEPLOY.md).

Per-address limits (review form posts, reports, sign-in failures) key on REMOTE_ADDR. Behind nginx
that is the proxy's own address for every visitor, which would make each limit one platform-wide
bucket. nginx appends the address it accepted the connection from to X-Forwarded-For
(`$proxy_add_x_forwarded_for`), so the right-most entry is the one the trusted proxy vouches for;
anything to its left was sent by the client and can be forged.

Only with EMAILSYNC_BEHIND_PROXY on: without a proxy in front, the header comes straight from the
client and is ignored.
"""

import ipaddress

from django.conf import settings


def forwarded_client(header: str) -> str | None:
    """The right-most X-Forwarded-For entry when it is an IP address, else None."""
    entries = [entry.strip() for entry in header.split(",") if entry.strip()]
    if not entries:
        return None
    candidate = entries[-1]
    if candidate.startswith("[") and "]" in candidate:  # "[v6]:port"
        candidate = candidate[1 : candidate.index("]")]
    elif candidate.count(":") == 1:  # "v4:port"
        candidate = candidate.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class ProxiedClientAddressMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if getattr(settings, "EMAILSYNC_BEHIND_PROXY", False):
            client = forwarded_client(request.META.get("HTTP_X_FORWARDED_FOR", ""))
            if client is not None:
                request.META["REMOTE_ADDR"] = client
        return self.get_response(request)
