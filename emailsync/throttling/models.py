"""Fixed-window counters in the database, shared by every web process and listener.

A counter lives in the database rather than in process memory so that throttling holds however
many web servers run (a per-process counter would multiply the limit by the process count).
"""

import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from django.db import models, transaction
from django.utils import timezone


def client_bucket(address: str | None) -> str:
    """A client address as the per-client limits count it. An IPv6 host is its /64: one
    subscriber gets a whole /64 and can use a fresh address for every request, which would
    otherwise give them a fresh allowance each time."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is that IPv4 client
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int  # seconds until the window resets; 0 when allowed


class Counter(models.Model):
    key = models.CharField(max_length=200, unique=True)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"

    @classmethod
    def hit(cls, key: str, limit: int, window_seconds: int, now=None) -> Decision:
        """Count one event; allowed while the window holds at most `limit` events."""
        now = now or timezone.now()
        with transaction.atomic():
            counter, _ = cls.objects.select_for_update().get_or_create(
                key=key, defaults={"window_start": now, "count": 0}
            )
            if counter.window_start + timedelta(seconds=window_seconds) <= now:
                counter.window_start, counter.count = now, 0
            counter.count += 1
            counter.save(update_fields=["window_start", "count"])
        return cls._decide(counter, limit, window_seconds, now)

    @classmethod
    def peek(cls, key: str, limit: int, window_seconds: int, now=None) -> Decision:
        """Whether one more event would be allowed, without counting it."""
        now = now or timezone.now()
        counter = cls.objects.filter(key=key).first()
        if counter is None or counter.window_start + timedelta(seconds=window_seconds) <= now:
            return Decision(True, 0, 0)
        return cls._decide(counter, limit - 1, window_seconds, now)

    @classmethod
    def clear(cls, key: str) -> None:
        cls.objects.filter(key=key).delete()

    @staticmethod
    def _decide(counter, limit: int, window_seconds: int, now) -> Decision:
        if counter.count <= limit:
            return Decision(True, counter.count, 0)
        reset = counter.window_start + timedelta(seconds=window_seconds)
        return Decision(False, counter.count, max(1, int((reset - now).total_seconds())))
