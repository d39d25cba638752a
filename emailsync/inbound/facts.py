"""What the trigger rules need to know about an agency, read from the database and kept for a
few seconds per process.

A busy listener sees the same agencies over and over; re-reading their domains, members and
settings for every email would be most of its database work. An admin's change (a new domain,
Email Sync switched off) therefore reaches the listener within `EMAILSYNC_LISTENER_CACHE_SECONDS`.
"""

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from emailsync.agencies.models import Agency, SenderAddress, User
from emailsync.review_requests.models import EmailSyncSettings

from . import rows
from .authenticity import normalise_domain
from .models import InboundAddress


@dataclass
class AgencyFacts:
    agency: Agency
    settings: EmailSyncSettings
    domains: set[str]  # Unicode form, as headers give them
    member_emails: set[str]  # login and sending addresses of active members
    admin_emails: set[str]
    senders: dict[str, int] = field(default_factory=dict)  # sending address -> profile id

    @classmethod
    def load(cls, agency_id: int) -> "AgencyFacts":
        sync = (
            EmailSyncSettings.objects.select_related("agency").filter(agency_id=agency_id).first()
        )
        if sync is None:
            sync = EmailSyncSettings.for_agency(Agency.objects.get(pk=agency_id))
        # Stored as A-labels (xn--…); headers give U-labels: compare in the Unicode form.
        domains = {
            normalise_domain(d) for d in sync.agency.domains.values_list("domain", flat=True)
        }
        senders = dict(
            SenderAddress.objects.filter(agency_id=agency_id).values_list("email", "profile_id")
        )
        members = list(
            User.objects.filter(agency_id=agency_id, is_active=True).values_list(
                "email", "role", "profile__id"
            )
        )
        admin_profiles = {pid for _, role, pid in members if role == User.Role.ADMIN}
        admin_emails = {email for email, role, _ in members if role == User.Role.ADMIN}
        admin_emails |= {email for email, pid in senders.items() if pid in admin_profiles}
        member_emails = set(senders) | {email for email, _, _ in members}
        return cls(sync.agency, sync, domains, member_emails, admin_emails, senders)


class FactsCache:
    def __init__(self):
        self._entries: dict[int, tuple[float, AgencyFacts]] = {}
        self._lock = threading.Lock()

    def get(self, agency_id: int) -> AgencyFacts:
        ttl = settings.EMAILSYNC_LISTENER_CACHE_SECONDS
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(agency_id)
        if hit and hit[0] > now:
            return hit[1]
        facts = AgencyFacts.load(agency_id)
        if ttl > 0:
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[agency_id] = (now + ttl, facts)
        return facts


FACTS = FactsCache()


def agencies_by_token(tokens) -> dict[str, int]:
    """Token -> agency id, for the tokens whose address still accepts mail."""
    if not tokens:
        return {}
    now = timezone.now()
    return {
        token: agency_id
        for token, agency_id, retired, until in rows.select(
            InboundAddress,
            ["token", "agency_id", "retired_at", "accept_until"],
            {"token": set(tokens)},
        )
        if retired is None or (until is not None and now < until)
    }
