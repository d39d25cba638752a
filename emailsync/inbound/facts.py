"""What the trigger rules need to know about an agency, read from the database and kept for a
few seconds per process.

A busy listener sees the same agencies over and over; re-reading their domains, members and
settings for every email would be most of its database work. An admin's change (a new domain,
Email Sync switched off) therefore reaches the listener within `EMAILSYNC_LISTENER_CACHE_SECONDS`.
"""

import functools
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from emailsync.agencies.models import (
    SHARED_MAIL_DOMAINS,
    Agency,
    AgencyDomain,
    SenderAddress,
    User,
)
from emailsync.review_requests.models import EmailSyncSettings

from .authenticity import normalise_domain, registrable


class OwnDomains(frozenset):
    """An agency's domains, and what lies under them: mail from `uk.acme.com` is `acme.com`'s
    own (its people are colleagues, it may send triggers), as a DMARC policy for `acme.com`
    covers its subdomains. Only a domain at or under a registrable one covers subdomains: an
    agency domain that is itself a public suffix (`co.uk`) would otherwise take in strangers."""

    def __new__(cls, domains=()):
        own = super().__new__(cls, domains)
        own.parents = frozenset(d for d in own if registrable(d))
        return own

    def __contains__(self, domain) -> bool:
        if frozenset.__contains__(self, domain):
            return True
        parents = self.parents
        if not parents or not isinstance(domain, str):
            return False
        _, dot, rest = domain.partition(".")
        while dot:  # uk.acme.com: acme.com, then com
            if rest in parents:
                return True
            _, dot, rest = rest.partition(".")
        return False


@dataclass
class AgencyFacts:
    agency: Agency
    settings: EmailSyncSettings
    domains: OwnDomains  # Unicode form, as headers give them
    member_emails: set[str]  # login and sending addresses of active members
    setup_testers: set[str]  # addresses whose email is the running setup test
    senders: dict[str, int] = field(default_factory=dict)  # sending address -> profile id

    @functools.cached_property
    def signing_domains(self) -> list[str]:
        """``settings.signing_domains()``, parsed from its text once for as long as these
        facts are kept rather than for every email."""
        return self.settings.signing_domains()

    @classmethod
    def load(cls, agency_id: int) -> "AgencyFacts":
        return cls.load_many([agency_id])[agency_id]

    @classmethod
    def load_many(cls, agency_ids) -> dict[int, "AgencyFacts"]:
        """Facts for several agencies in four queries, however many there are (a listener
        serving a thousand agencies sees a different one in nearly every email)."""
        ids = set(agency_ids)
        syncs = {
            s.agency_id: s
            for s in EmailSyncSettings.objects.select_related("agency").filter(agency_id__in=ids)
        }
        for agency in Agency.objects.filter(pk__in=ids - set(syncs)):
            # The defaults, unsaved: reading never writes (the listener reads outside a
            # transaction, and an agency deleted meanwhile must not fail an insert here).
            syncs[agency.pk] = EmailSyncSettings(agency=agency)
        if set(syncs) != ids:
            raise Agency.DoesNotExist(f"no agency {sorted(ids - set(syncs))}")
        # Stored as A-labels (xn--…); headers give U-labels: compare in the Unicode form.
        domains: dict[int, set[str]] = {i: set() for i in ids}
        for agency_id, domain in AgencyDomain.objects.filter(agency_id__in=ids).values_list(
            "agency_id", "domain"
        ):
            # A public mailbox provider (kept from before they were refused) would make every
            # stranger on it a colleague, and their mail the agency's: it counts for nothing.
            if domain not in SHARED_MAIL_DOMAINS:
                domains[agency_id].add(normalise_domain(domain))
        senders: dict[int, dict[str, int]] = {i: {} for i in ids}
        for agency_id, email, profile_id in (
            SenderAddress.objects.of_members()
            .filter(agency_id__in=ids)
            .values_list("agency_id", "email", "profile_id")
        ):
            senders[agency_id][email] = profile_id
        members: dict[int, list] = {i: [] for i in ids}
        for agency_id, *member in User.objects.filter(
            agency_id__in=ids, is_active=True
        ).values_list("agency_id", "email", "role", "profile__id", "id"):
            members[agency_id].append(member)
        facts = {}
        for agency_id in ids:
            sync = syncs[agency_id]
            # The admin who started the setup test (any admin, for a test started before that
            # was recorded): another admin's real email meanwhile is not the test.
            testers = [
                (email, pid)
                for email, role, pid, uid in members[agency_id]
                if role == User.Role.ADMIN and sync.setup_test_by_id in (None, uid)
            ]
            tester_profiles = {pid for _, pid in testers}
            setup_testers = {email for email, _ in testers}
            setup_testers |= {e for e, pid in senders[agency_id].items() if pid in tester_profiles}
            member_emails = set(senders[agency_id]) | {e for e, *_ in members[agency_id]}
            facts[agency_id] = cls(
                sync.agency,
                sync,
                OwnDomains(domains[agency_id]),
                member_emails,
                setup_testers,
                senders[agency_id],
            )
        return facts


class FactsCache:
    def __init__(self):
        self._entries: dict[int, tuple[float, AgencyFacts]] = {}
        self._lock = threading.Lock()

    def get(self, agency_id: int) -> AgencyFacts:
        return self.get_many([agency_id])[agency_id]

    def forget(self, agency_ids) -> None:
        """Drop what this process knows of these agencies; the next email reads it afresh."""
        with self._lock:
            for agency_id in agency_ids:
                self._entries.pop(agency_id, None)

    def get_many(self, agency_ids) -> dict[int, AgencyFacts]:
        ttl = settings.EMAILSYNC_LISTENER_CACHE_SECONDS
        now = time.monotonic()
        found, missing = {}, set()
        with self._lock:
            for agency_id in agency_ids:
                hit = self._entries.get(agency_id)
                if hit and hit[0] > now:
                    found[agency_id] = hit[1]
                else:
                    missing.add(agency_id)
        if missing:
            loaded = AgencyFacts.load_many(missing)
            found.update(loaded)
            if ttl > 0:
                with self._lock:
                    if len(self._entries) > 10_000:
                        self._entries.clear()
                    for agency_id, facts in loaded.items():
                        self._entries[agency_id] = (now + ttl, facts)
        return found


FACTS = FactsCache()
