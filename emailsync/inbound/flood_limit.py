"""An agency's hourly flood limit ("Emails accepted per hour"), held across every listener.

Each listener process counts the messages it accepts in memory, the moment their DATA arrives,
so a burst is refused at once (`450 4.7.1`) without asking the database. On its own that count
is per process, and with listeners on several hosts an agency could get the limit accepted on
each. So a process also reads how many triggers the agency has recorded in the last hour, by
every listener: before the agency's first message here, and then again in the background at
most every `REFRESH_SECONDS` while it keeps sending. An agency has room while what was recorded
at that reading, plus what this process accepted since, is under its limit; what other
listeners accepted since the reading is seen at the next one, so listeners on N hosts can
together overshoot by what they accept in those few seconds, not by N times the limit.

RCPT asks whether there is room; a message is counted once, per agency, when its DATA arrives.
So RCPTs that never become a message (a transaction reset, a repeated address) cannot use up
an agency's hour, as they could when every RCPT counted.

Mail an ESP posts to our inbound webhook (api/esp.py) has no listener process to count in: it
is checked against the recorded triggers alone, and refused with a 503 the ESP retries.
"""

import time
from collections import deque
from datetime import timedelta

from django.utils import timezone

from emailsync.review_requests.models import EmailSyncSettings

from .models import InboundAddress, Trigger

WINDOW = 3600.0  # seconds: the limit is per hour, a sliding window
REFRESH_SECONDS = 10.0


class FloodLimit:
    def __init__(self, refresh_seconds: float = REFRESH_SECONDS):
        self.refresh_seconds = refresh_seconds
        self._events: dict[int, deque] = {}  # agency -> monotonic times of messages accepted here
        self._recorded: dict[int, tuple[float, int]] = {}  # agency -> (read at, triggers then)
        self._reading: set[int] = set()
        self._failed: dict[int, float] = {}  # agency -> when a reading last failed

    def _window(self, agency_id: int, now: float) -> deque:
        events = self._events.setdefault(agency_id, deque())
        while events and events[0] <= now - WINDOW:
            events.popleft()
        return events

    def has_room(
        self, agency_id: int, share: int, limit: int | None = None, now: float | None = None
    ) -> bool:
        """Room for one more message: under this process's `share` of the limit, and, once the
        database has been read, under `limit` counting every listener's triggers."""
        now = now or time.monotonic()
        events = self._window(agency_id, now)
        if len(events) >= share:
            return False
        reading = self._recorded.get(agency_id)
        if limit is None or reading is None or now - reading[0] >= WINDOW:
            return True
        read_at, recorded = reading
        since = 0
        for moment in reversed(events):  # oldest first: count back from the newest
            if moment <= read_at:
                break
            since += 1
        return recorded + since < limit

    def count(self, agency_id: int, now: float | None = None) -> None:
        now = now or time.monotonic()
        self._window(agency_id, now).append(now)

    def refund(self, agency_id: int) -> None:
        """Take back one count: a message answered "try again later" before anything was
        recorded, so its retries do not use up the agency's hour."""
        events = self._events.get(agency_id)
        if events:
            events.pop()

    # --- the shared count ---------------------------------------------------------------

    def unread(self, agency_id: int, now: float | None = None) -> bool:
        """No usable reading of the database for this agency yet (or only one over an hour
        old): its next message waits for one."""
        now = now or time.monotonic()
        if self._failed_lately(agency_id, now):  # no waiting on a database that is not there
            return False
        reading = self._recorded.get(agency_id)
        return reading is None or now - reading[0] >= WINDOW

    def _failed_lately(self, agency_id: int, now: float) -> bool:
        failed = self._failed.get(agency_id)
        return failed is not None and now - failed < self.refresh_seconds

    def due(self, agency_id: int, now: float | None = None) -> bool:
        """Time to read the database again (in the background), and no reading under way."""
        now = now or time.monotonic()
        if agency_id in self._reading or self._failed_lately(agency_id, now):
            return False
        reading = self._recorded.get(agency_id)
        return reading is None or now - reading[0] >= self.refresh_seconds

    def reading_started(self, agency_id: int) -> float:
        self._reading.add(agency_id)
        return time.monotonic()

    def reading_done(self, agency_id: int, read_at: float, recorded: int | None) -> None:
        """The database's count as of `read_at`; None when it could not be read (the old
        reading, if any, stands: a flood limit is no reason to refuse mail)."""
        self._reading.discard(agency_id)
        if recorded is None:
            self._failed[agency_id] = time.monotonic()  # tried again after a few seconds
        else:
            self._failed.pop(agency_id, None)
            self._recorded[agency_id] = (read_at, recorded)


def recorded_in_last_hour(agency_id: int, limit: int) -> int:
    """Emails the agency's BCC address received in the last hour, as triggers, by every
    listener: counted up to `limit` (past it the answer is the same). Manual and API
    requests are triggers too but came through no listener."""
    since = timezone.now() - timedelta(seconds=WINDOW)
    return (
        Trigger.objects.filter(agency_id=agency_id, received_at__gte=since)
        .exclude(source__in=Trigger.ASKED_DIRECTLY)
        .order_by()  # counted, not listed: no sort before the limit
        .values("pk")[:limit]
        .count()
    )


def agencies_over_limit(tokens) -> list[int]:
    """The agencies of these BCC address tokens that have used up their hour: for a path that
    has no listener process to count in (an ESP's inbound webhook), the recorded triggers alone."""
    agencies = set(
        InboundAddress.objects.filter(token__in=list(tokens)).values_list("agency_id", flat=True)
    )
    limits = dict(
        EmailSyncSettings.objects.filter(agency_id__in=agencies).values_list(
            "agency_id", "rate_limit_per_hour"
        )
    )
    over = []
    for agency_id in sorted(agencies):
        limit = limits.get(agency_id) or DEFAULT_LIMIT
        if recorded_in_last_hour(agency_id, limit) >= limit:
            over.append(agency_id)
    return over


DEFAULT_LIMIT = 600  # EmailSyncSettings.rate_limit_per_hour's default, for an agency without a row
