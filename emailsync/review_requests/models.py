"""Review requests: who is asked, for which agency and recruiter, and when.

Every way of collecting (Email Sync, the setup test, the API, a manual request, a recruiter's own
link) ends in a `ReviewRequest`, so the agency-wide rules — suppression, the dedupe window, the
72-hour promise — are enforced once, here.
"""

import hashlib
import secrets
from datetime import time, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import connection, models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emailsync.agencies.models import DOMAIN, Agency, RecruiterProfile
from emailsync.inbound import rows
from emailsync.inbound.recipients import strip_plus_tag

#: Trigger emails one agency may send per hour. Higher would switch the per-agency flood limit
#: off in all but name; benchmarks that need more set it directly, past this check.
MAX_RATE_LIMIT_PER_HOUR = 10_000


def address_hash(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def mailbox(email: str) -> str:
    """The mailbox an address reaches, for telling people apart: lower-case, without a plus
    tag. jo+jobs@x.example and Jo@x.example are one person, whom an agency asks once within
    its dedupe window and whose unsubscribe holds for both."""
    return strip_plus_tag(email.strip().lower())


def parse_domain_list(value: str) -> list[str]:
    items = value.replace(",", "\n").split()
    return sorted({item.strip().lower().rstrip(".") for item in items if item.strip()})


def normalise_domain_entry(entry: str) -> str | None:
    """One domain as agency domains are stored (lower-case, no trailing dot, IDN as A-labels,
    see ``AgencyDomain.add``), or None if it is not a valid domain by the same rule."""
    domain = entry.strip().lower().rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    try:
        DOMAIN(domain)
    except ValidationError:
        return None
    return domain


def clean_domain_list(value: str) -> list[str]:
    """Domains separated by newlines, commas or spaces → sorted, normalised, without repeats.

    Raises a ValidationError naming the entries that are not domains."""
    domains, bad = set(), []
    for entry in value.replace(",", " ").split():
        domain = normalise_domain_entry(entry)
        if domain is None:
            if entry not in bad:
                bad.append(entry)
        else:
            domains.add(domain)
    if bad:
        shown = ", ".join(f"“{entry[:60]}”" for entry in bad[:5])
        if len(bad) > 5:
            shown += _(" and %(n)s more") % {"n": len(bad) - 5}
        raise ValidationError(
            _("Not a domain: %(entries)s. Enter domains such as mail.ats-vendor.com."),
            code="invalid_domain",
            params={"entries": shown},
        )
    return sorted(domains)


def validate_domain_list(value: str) -> None:
    clean_domain_list(value)


class Role(models.TextChoices):
    CANDIDATE = "candidate", _("Candidate")
    CLIENT = "client", _("Client")


class Source(models.TextChoices):
    EMAIL_SYNC = "email_sync", _("Email Sync")
    SETUP_TEST = "setup_test", _("Setup test")
    API = "api", _("API")
    MANUAL = "manual", _("Manual request")
    RECRUITER_LINK = "recruiter_link", _("Recruiter's link")


class EmailSyncSettings(models.Model):
    """One agency's Email Sync configuration. Agency-wide: nothing here differs per user."""

    agency = models.OneToOneField(Agency, on_delete=models.CASCADE, related_name="email_sync")
    enabled = models.BooleanField(default=False)
    delay_hours = models.PositiveSmallIntegerField(
        default=24,
        validators=[MaxValueValidator(72)],
        help_text=_("Hours between the trigger email and the review request (0–72)."),
    )
    business_days = models.CharField(
        max_length=20,
        default="0,1,2,3,4",
        blank=True,  # no day named: any day (the settings page's "no day ticked")
        help_text=_("Days requests may go out, 0 = Monday … 6 = Sunday; none: any day."),
    )
    business_start = models.TimeField(default=time(9, 0))
    business_end = models.TimeField(default=time(17, 0))
    reminder_days = models.PositiveSmallIntegerField(
        default=5,
        validators=[MaxValueValidator(25)],
        help_text=_("Days after the request before one reminder (0 = no reminder)."),
    )
    dedupe_days = models.PositiveSmallIntegerField(
        default=90,
        validators=[MinValueValidator(1), MaxValueValidator(730)],
        help_text=_("Nobody is asked twice by the agency within this many days."),
    )
    recipient_cap = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("An email to more people than this is a bulk send and asks nobody."),
    )
    trust_from_domain = models.BooleanField(
        default=False,
        help_text=_(
            "Accept triggers from your domains without a DKIM signature. Only for "
            "systems that cannot sign: anyone can forge a From address."
        ),
    )
    trusted_signing_domains = models.TextField(
        blank=True,
        validators=[validate_domain_list],
        help_text=_("Domains that sign mail for you, such as your ATS vendor's, one per line."),
    )
    rate_limit_per_hour = models.PositiveIntegerField(
        default=600,
        validators=[
            MinValueValidator(1, _("Accept at least 1 email an hour.")),
            MaxValueValidator(
                MAX_RATE_LIMIT_PER_HOUR,
                _("At most %(limit_value)s emails an hour: a higher limit is no flood limit."),
            ),
        ],
        help_text=_("Trigger emails accepted per hour before the listener asks senders to retry."),
    )
    setup_test_until = models.DateTimeField(null=True, blank=True)
    # Whose email the running setup test waits for: another admin's real email meanwhile is
    # not the test (its candidates are asked, its subject is not kept).
    setup_test_by = models.ForeignKey(
        "agencies.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class ReviewNotifications(models.TextChoices):
        EACH = "each", _("An email for each new review")
        DIGEST = "digest", _("One daily digest")

    review_notifications = models.CharField(
        max_length=10,
        choices=ReviewNotifications.choices,
        default=ReviewNotifications.EACH,
        help_text=_("How the agency's admins hear about new reviews."),
    )

    class Meta:
        verbose_name = "Email Sync settings"
        verbose_name_plural = "Email Sync settings"

    def __str__(self) -> str:
        return f"Email Sync for {self.agency}"

    @classmethod
    def for_agency(cls, agency: Agency) -> "EmailSyncSettings":
        settings, _ = cls.objects.get_or_create(agency=agency)
        return settings

    def clean(self):
        try:
            days = self.business_day_numbers()
        except ValueError:
            raise ValidationError({"business_days": _("Use day numbers 0–6, comma-separated.")})
        if any(d < 0 or d > 6 for d in days):
            raise ValidationError({"business_days": _("Use day numbers 0–6, comma-separated.")})
        if self.business_start >= self.business_end:
            raise ValidationError({"business_end": _("The day must end after it starts.")})

    def business_day_numbers(self) -> list[int]:
        return sorted({int(d) for d in self.business_days.replace(" ", "").split(",") if d})

    def signing_domains(self) -> list[str]:
        return parse_domain_list(self.trusted_signing_domains)

    def in_setup_test(self, now=None) -> bool:
        return bool(self.setup_test_until and self.setup_test_until > (now or timezone.now()))

    def start_setup_test(self, by, minutes: int = 30, now=None) -> None:
        """For `minutes`, the next email `by` (an admin) sends with the BCC address is the
        setup test, whoever else sends meanwhile."""
        self.setup_test_until = (now or timezone.now()) + timedelta(minutes=minutes)
        self.setup_test_by = by
        self.save(update_fields=["setup_test_until", "setup_test_by"])


class ReviewRequest(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENT = "sent", _("Sent")
        OPENED = "opened", _("Opened")
        COMPLETED = "completed", _("Completed")
        REMINDED = "reminded", _("Reminded")
        CANCELLED = "cancelled", _("Cancelled")
        SKIPPED = "skipped", _("Skipped")
        BOUNCED = "bounced", _("Bounced")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    # No index of its own: the composite keys below begin with the agency and serve every
    # lookup by it (a busy listener writes these rows, and each index is written too).
    # No database constraint either: see inbound/recording.py, "Why the hot rows carry no
    # foreign keys".
    agency = models.ForeignKey(
        Agency,
        on_delete=models.CASCADE,
        related_name="review_requests",
        db_index=False,
        db_constraint=False,
    )
    source = models.CharField(max_length=20, choices=Source.choices)
    email = models.EmailField()
    name = models.CharField(max_length=120, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, blank=True)
    recruiter = models.ForeignKey(
        RecruiterProfile,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_requests",
    )
    placement_ref = models.CharField(max_length=100, blank=True)
    personal_message = models.TextField(blank=True, max_length=1000)
    # Who wrote the personal message, when it was not the recruiter it is sent for (an admin
    # asking on their behalf): the email must not put one person's words in another's mouth.
    message_by = models.CharField(max_length=120, blank=True, default="", db_default="")
    token = models.CharField(max_length=48, unique=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    status_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    send_after = models.DateTimeField()
    # Its email goes into the outbox when it falls due (`release_due`), not when it is made: a
    # busy listener writes one row fewer per person, and an edit made while it waits is simply
    # what the email is built from.
    queued_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text=_("When it fell due and its email was queued for sending."),
    )
    deadline = models.DateTimeField(help_text=_("72 hours after the trigger: sent by then."))
    sent_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "send_after"], name="request_due"),
            models.Index(fields=["agency", "status", "-created_at"], name="request_agency_status"),
            models.Index(fields=["agency", "email"], name="request_agency_email"),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.get_status_display()})"

    def save(self, *args, **kwargs):
        if not self.token:
            self.token = secrets.token_urlsafe(24)
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)

    @property
    def name_to_offer(self) -> str:
        """The name the review form suggests as the reviewer's public name: the request's,
        unless it holds an address (an ATS that had no name, a manual request typed so), which
        must never be offered for publication."""
        return "" if "@" in self.name else self.name

    @staticmethod
    def new_row(
        *,
        agency_id: int,
        email: str,
        name: str,
        role: str,
        recruiter_id,
        source: str,
        placement_ref: str,
        now,
        send_after,
        personal_message: str = "",
        message_by: str = "",
    ) -> dict:
        """The fields of a new scheduled request, the same for every way of asking: due by
        the 72-hour promise, with a fresh unguessable token."""
        from .scheduling import PROMISE

        return {
            "agency_id": agency_id,
            "source": source,
            "email": email.strip().lower(),
            "name": name[:120],
            "role": role or "",
            "recruiter_id": recruiter_id,
            "placement_ref": placement_ref or "",
            "personal_message": personal_message,
            "message_by": message_by[:120] if personal_message else "",
            "created_at": now,
            "send_after": send_after,
            "deadline": now + PROMISE,
            "token": secrets.token_urlsafe(24),
            "status": ReviewRequest.Status.SCHEDULED,
        }


class Suppression(models.Model):
    """An address that must never be asked again, by any agency. Kept as a hash only."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        BOUNCED = "bounced", _("Hard bounce")
        COMPLAINED = "complained", _("Marked as spam")
        ERASED = "erased", _("Data erased on request")

    address_hash = models.CharField(max_length=64, unique=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.reason} {self.address_hash[:10]}…"

    # What the person chose covers their mailbox, whatever tag the address carried; a bounce
    # covers the address that bounced only (a mail system may refuse tags it does not know).
    COVERS_MAILBOX = frozenset({Reason.UNSUBSCRIBED, Reason.COMPLAINED, Reason.ERASED})

    @classmethod
    def add(cls, email: str, reason: str) -> "Suppression":
        row, _ = cls.objects.get_or_create(
            address_hash=address_hash(email), defaults={"reason": reason}
        )
        if reason in cls.COVERS_MAILBOX and mailbox(email) != email.strip().lower():
            cls.objects.get_or_create(
                address_hash=address_hash(mailbox(email)), defaults={"reason": reason}
            )
        return row

    @classmethod
    def hashes_for(cls, email: str) -> list[str]:
        """The hashes under which `email` may be suppressed: its own, and its mailbox's."""
        own, box = address_hash(email), address_hash(mailbox(email))
        return [own] if own == box else [own, box]

    @classmethod
    def for_address(cls, email: str):
        """The suppressions that hold for `email` (its own, or its mailbox's)."""
        return cls.objects.filter(address_hash__in=cls.hashes_for(email))

    @classmethod
    def suppressed(cls, emails) -> set[str]:
        """The subset of `emails` that are suppressed."""
        by_hash: dict[str, list[str]] = {}
        for e in emails:
            for h in cls.hashes_for(e):
                by_hash.setdefault(h, []).append(e)
        hits = cls.objects.filter(address_hash__in=by_hash).values_list("address_hash", flat=True)
        return {e for h in hits for e in by_hash[h]}


class AskedRecipient(models.Model):
    """When an agency last asked an address: the dedupe window, race-free across processes."""

    # No index of its own: the composite keys below begin with the agency and serve every
    # lookup by it (a busy listener writes these rows, and each index is written too).
    # No database constraint either: see inbound/recording.py, "Why the hot rows carry no
    # foreign keys".
    agency = models.ForeignKey(
        Agency, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    email = models.EmailField()
    last_asked_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "email"], name="asked_once_per_agency")
        ]

    def __str__(self) -> str:
        return f"{self.email} asked {self.last_asked_at:%Y-%m-%d}"

    @classmethod
    def claim(cls, agency_id: int, email: str, now, window: timedelta) -> bool:
        """Record that the agency asks `email` now, unless it already did within `window`."""
        return (agency_id, email) in cls.claim_many([(agency_id, email, window)], now)

    @classmethod
    def claim_many(cls, wanted, now) -> set[tuple[int, str]]:
        """Claim (agency id, email, window) triples; returns the pairs this call won, as given.

        The ledger is kept by mailbox (`mailbox`): of two addresses of one mailbox in one call
        only the first can win. One upsert per distinct window, so two listeners or workers
        racing for the same person cannot both win: the row's unique key serialises them in
        the database.
        """
        given: dict[tuple[int, str], tuple[int, str]] = {}
        by_window: dict[timedelta, list[tuple[int, str]]] = {}
        for agency_id, email, window in wanted:
            key = (agency_id, mailbox(email))
            if key not in given:
                given[key] = (agency_id, email)
                by_window.setdefault(window, []).append(key)
        return {given[key] for key in cls._claim_keys(by_window, now)}

    @classmethod
    def _claim_keys(cls, by_window, now) -> set[tuple[int, str]]:
        """Upsert {window: [(agency id, mailbox)]}; the pairs whose ask this call recorded."""
        table = connection.ops.quote_name(cls._meta.db_table)
        won: set[tuple[int, str]] = set()
        p = rows.placeholder()
        upsert = (
            "ON CONFLICT (agency_id, email) DO UPDATE SET last_asked_at = excluded.last_asked_at "
            f"WHERE {table}.last_asked_at < {p} RETURNING agency_id, email"
        )
        with rows.hot_cursor() as cursor:
            for window, pairs in by_window.items():
                # The same order in every transaction, so two listeners' batches claiming some
                # of the same people wait for each other instead of deadlocking.
                pairs = sorted(pairs)
                if connection.vendor == "postgresql":
                    # Arrays, so the statement's text is the same for any number of people.
                    cursor.execute(
                        f"INSERT INTO {table} (agency_id, email, last_asked_at) "  # noqa: S608
                        f"SELECT a, e, {p} FROM UNNEST(({p})::bigint[], ({p})::varchar[]) "
                        "AS t(a, e) " + upsert,
                        [now, [a for a, _ in pairs], [e for _, e in pairs], now - window],
                    )
                    won.update((row[0], row[1]) for row in cursor.fetchall())
                    continue
                for start in range(0, len(pairs), 500):
                    chunk = pairs[start : start + 500]
                    values = ", ".join(["(%s, %s, %s)"] * len(chunk))
                    params = [p for agency_id, email in chunk for p in (agency_id, email, now)]
                    cursor.execute(
                        f"INSERT INTO {table} (agency_id, email, last_asked_at) "  # noqa: S608
                        f"VALUES {values} " + upsert,
                        [*params, now - window],
                    )
                    won.update((row[0], row[1]) for row in cursor.fetchall())
        return won

    @classmethod
    def recently_asked(cls, agency_id: int, emails, now, window: timedelta) -> set[str]:
        """The `emails` whose mailbox the agency asked within `window` (an entry written
        under the address itself, before the ledger went by mailbox, counts too)."""
        keys: dict[str, list[str]] = {}
        for email in emails:
            for key in {email, mailbox(email)}:
                keys.setdefault(key, []).append(email)
        hits = cls.objects.filter(
            agency_id=agency_id, email__in=list(keys), last_asked_at__gte=now - window
        ).values_list("email", flat=True)
        return {email for key in hits for email in keys[key]}

    @classmethod
    def release(cls, agency_id: int, email: str) -> None:
        """Forget an ask that never went out (cancelled), so the person can be asked later."""
        cls.objects.filter(agency_id=agency_id, email__in={email, mailbox(email)}).delete()
