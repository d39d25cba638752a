"""Outgoing webhooks: signing, address checks (no SSRF), queueing and delivery.

An event is written as one `WebhookDelivery` row per subscribed endpoint in the same transaction
as the change it describes, so a webhook exists if and only if the change committed. The worker
runs `deliver_due` as a periodic job every tick: it claims due rows under a lease (SKIP LOCKED on
PostgreSQL, the write lock on SQLite — the same discipline as the email outbox), POSTs each with a
fresh signature, logs the attempt, and retries failures with exponential backoff until
`MAX_ATTEMPTS`, after which the delivery is failed for good.

Signature: header `EmailSync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over the bytes
`"<t>." + body`, keyed with the endpoint's secret (docs/API.md has the verification recipe).
"""

import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import random
import secrets
import socket
import ssl
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import IdempotencyRecord, WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("emailsync.webhooks")

EVENTS = {
    "review.submitted": "A reviewer submitted a review (it waits in Missing Verification).",
    "review.verified": "An admin (or automatic verification) verified a review.",
    "review.rejected": "An admin rejected a review.",
    "request.sent": "A review request email went out.",
    "request.bounced": "A review request bounced; the address is suppressed.",
}
TEST_EVENT = "webhook.test"
SIGNATURE_HEADER = "EmailSync-Signature"
MAX_ATTEMPTS = 10
BACKOFF_BASE = 30.0  # seconds before the first retry
BACKOFF_CAP = 6 * 60 * 60.0
TIMEOUT = 10.0  # seconds for connect and for the response
BATCH = 10
TIME_BUDGET = 20.0  # seconds one job run may spend sending before it lets email go on
EXCERPT = 500
LEASE = timedelta(minutes=2)
RETENTION = timedelta(days=30)
Status = WebhookDelivery.Status


# --- signing -----------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float | None = None, tolerance=300) -> bool:
    """The receiving side's check, as docs/API.md describes it (used by our tests)."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))


# --- where we may send -------------------------------------------------------------------


def allow_private() -> bool:
    return bool(getattr(settings, "EMAILSYNC_WEBHOOK_ALLOW_PRIVATE", False))


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def address_allowed(ip: str) -> bool:
    """Only public unicast addresses, unless development allows loopback/private ones."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that carry an IPv4 address are judged by it: mapped, 6to4, Teredo's
        # client, and NAT64's well-known prefix (64:ff9b::/96), through which a translating
        # network would deliver to, say, 127.0.0.1.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            address = embedded
    if allow_private():
        return not address.is_multicast and not address.is_unspecified
    return address.is_global and not address.is_multicast


def validate_url(url: str) -> str:
    """An endpoint must be https (http only to loopback in development) and not an address
    inside our network. Names are checked again on every connection (DNS can change)."""
    url = url.strip()
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationError(_("Enter an https:// address."))
    if parts.username or parts.password:
        raise ValidationError(_("The address may not contain a user name or password."))
    if parts.scheme == "http" and not (allow_private() and host in ("127.0.0.1", "localhost")):
        raise ValidationError(_("Webhooks are sent over HTTPS only: use an https:// address."))
    try:
        port = parts.port
    except ValueError:
        raise ValidationError(_("The port is not valid."))
    del port
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None and not address_allowed(str(literal)):
        raise ValidationError(_("That address is inside a private network."))
    if literal is None and not allow_private():
        host = host.rstrip(".")  # "localhost." is localhost
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise ValidationError(_("That address is inside a private network."))
        if "." not in host:
            raise ValidationError(_("Use the full host name, e.g. ats.example.com."))
    return url


class BlockedAddress(Exception):
    pass


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """Resolve and connect to the first allowed address; refuse private ones before sending."""
    last: Exception = BlockedAddress(f"{host} has no address")
    for family, kind, proto, _name, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    ):
        if not address_allowed(sockaddr[0]):
            last = BlockedAddress(f"{host} resolves to a private address")
            continue
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last


class _Http(http.client.HTTPConnection):
    def connect(self):
        self.sock = _connect(self.host, self.port, self.timeout)


class _Https(http.client.HTTPSConnection):
    def connect(self):
        sock = _connect(self.host, self.port, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def post(url: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    """POST without following redirects; returns (status, first bytes of the response)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        conn = _Https(parts.hostname, parts.port or 443, timeout=TIMEOUT, context=_tls())
    else:
        conn = _Http(parts.hostname, parts.port or 80, timeout=TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read(EXCERPT * 4)
    finally:
        conn.close()


def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


# --- events --------------------------------------------------------------------------------


def encode(payload: dict) -> str:
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)


def envelope(event: str, agency, data: dict, now=None) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event,
        "created": (now or timezone.now()).isoformat().replace("+00:00", "Z"),
        "agency": {"id": agency.pk, "slug": agency.slug},
        "data": data,
    }


def emit(agency, event: str, data: dict, now=None) -> list[WebhookDelivery]:
    """Queue `event` for every active endpoint of the agency that subscribed to it."""
    endpoints = [
        e for e in WebhookEndpoint.objects.filter(agency=agency, active=True) if e.wants(event)
    ]
    if not endpoints:
        return []
    now = now or timezone.now()
    payload = envelope(event, agency, data, now)
    body = encode(payload)
    return WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                endpoint=e,
                agency_id=agency.pk,
                event=event,
                event_id=payload["id"],
                body=body,
                next_attempt_at=now,
                created_at=now,
            )
            for e in endpoints
        ]
    )


def queue_test(endpoint: WebhookEndpoint, now=None) -> WebhookDelivery:
    now = now or timezone.now()
    payload = envelope(
        TEST_EVENT, endpoint.agency, {"message": "A test event from Email Sync."}, now
    )
    return WebhookDelivery.objects.create(
        endpoint=endpoint,
        agency_id=endpoint.agency_id,
        event=TEST_EVENT,
        event_id=payload["id"],
        body=encode(payload),
        next_attempt_at=now,
        created_at=now,
    )


# --- delivery ------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return timedelta(seconds=ceiling / 2 + random.random() * ceiling / 2)


def worker_name() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def claim(name: str, now: datetime, limit: int = BATCH, only=None) -> list[int]:
    due = WebhookDelivery.objects.filter(
        Q(status=Status.QUEUED, next_attempt_at__lte=now)
        | Q(status=Status.SENDING, lease_until__lt=now)
    )
    if only is not None:
        due = due.filter(pk__in=only)
    if not due.exists():  # a read: no write lock (SQLite) when there is nothing to send
        return []
    with transaction.atomic():
        rows = due.order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True)
        ids = list(rows.values_list("id", flat=True)[:limit])
        if ids:
            WebhookDelivery.objects.filter(id__in=ids).update(
                status=Status.SENDING, lease_until=now + LEASE, claimed_by=name
            )
    return ids


def attempt(delivery: WebhookDelivery, name: str, now: datetime | None = None) -> bool:
    """POST one claimed delivery, log it, and mark it delivered, retrying or failed."""
    endpoint = delivery.endpoint
    body = delivery.body.encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "EmailSync-Webhooks/1.0",
        "EmailSync-Event": delivery.event,
        "EmailSync-Event-Id": delivery.event_id,
        "EmailSync-Delivery": str(delivery.pk),
        SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
    }
    started = time.monotonic()
    status, excerpt, error = None, "", ""
    if not endpoint.active:
        error = "endpoint disabled"
    else:
        try:
            validate_url(endpoint.url)
            status, raw = post(endpoint.url, body, headers)
            excerpt = raw.decode("utf-8", "replace")[:EXCERPT]
        except ValidationError as exc:
            error = f"address refused: {' '.join(exc.messages)}"
        except Exception as exc:  # network, TLS, timeouts: all retried
            error = f"{type(exc).__name__}: {exc}"
    error = error[:300]
    now = now or timezone.now()
    ok = status is not None and 200 <= status < 300
    attempts = delivery.attempts + 1
    with transaction.atomic():
        WebhookAttempt.objects.create(
            delivery=delivery,
            at=now,
            response_status=status,
            response_excerpt=excerpt,
            error=error if not ok else "",
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        fields = dict(
            attempts=attempts,
            response_status=status,
            response_excerpt=excerpt,
            last_error="" if ok else (error or f"HTTP {status}"),
            lease_until=None,
        )
        if ok:
            fields.update(status=Status.DELIVERED, delivered_at=now)
        elif attempts >= MAX_ATTEMPTS or not endpoint.active:
            fields.update(status=Status.FAILED)
        else:
            fields.update(status=Status.QUEUED, next_attempt_at=now + backoff(attempts))
        WebhookDelivery.objects.filter(pk=delivery.pk, claimed_by=name).update(**fields)
    if not ok:
        log.info("webhook %s to endpoint %s: attempt %s failed", delivery.pk, endpoint.pk, attempts)
    return ok


def deliver_due(now: datetime | None = None, only=None) -> dict:
    """Send what is due, in small claimed batches, within a time budget (the worker's job)."""
    name = worker_name()
    started = time.monotonic()
    result = {"delivered": 0, "failed_attempts": 0}
    while time.monotonic() - started < TIME_BUDGET:
        ids = claim(name, now or timezone.now(), only=only)
        if not ids:
            break
        rows = WebhookDelivery.objects.filter(id__in=ids).select_related("endpoint__agency")
        for delivery in rows.order_by("next_attempt_at", "id"):
            if attempt(delivery, name, now):
                result["delivered"] += 1
            else:
                result["failed_attempts"] += 1
        if only is not None:
            break
    return result


def purge_old(now: datetime) -> dict:
    """Finished deliveries and idempotency records are kept for 30 days."""
    cutoff = now - RETENTION
    deliveries, _ = WebhookDelivery.objects.filter(
        status__in=[Status.DELIVERED, Status.FAILED], created_at__lt=cutoff
    ).delete()
    records, _ = IdempotencyRecord.objects.filter(created_at__lt=now - timedelta(days=1)).delete()
    return {"deliveries_purged": deliveries, "idempotency_purged": records}
