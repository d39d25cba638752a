"""A leaked BCC address: a stranger's email is quarantined (nothing is sent) and the agency's
admins are told once per address, with a way to rotate it.

"Stranger" means a trigger quarantined with reason `sender_not_agency`: its From is neither on
the agency's verified domains nor a member's address. (A From on the agency's own domain that
failed DKIM, `sender_unauthenticated`, is the agency's own mail set up wrongly, not a leak.)

This runs as a worker job, outside the ingest path, so the listener does no extra work: every
minute it looks at the triggers received since its previous run (with a margin for batches that
committed late) for agencies whose current address has no alert yet. A trigger does not record
which of the agency's addresses it came to, so it is counted against the address that was current
when it arrived; while a rotated-out address still accepts mail, a stranger already reported for
it is taken to be using that old address and does not alert again for the new one.
"""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from emailsync.agencies.access import admin_required
from emailsync.inbound.models import InboundAddress, Trigger
from emailsync.outbox.models import PeriodicJob, email_admins

from .models import LeakAlert

JOB = "leak_alerts"
STRANGER = "sender_not_agency"
EVERY = timedelta(minutes=1)
# A batch's triggers carry the time the batch started; they commit a few seconds later. Looking
# back this far past the previous run catches a trigger that became visible after that run.
MARGIN = timedelta(minutes=15)
# With no previous successful run (first deployment, or the last run failed), look back this far.
FIRST_LOOKBACK = timedelta(days=7)
PER_ADDRESS = 50  # stranger triggers read per address and run (only the first one that counts)


def scan_start(now: datetime) -> datetime:
    """Where this run starts: the previous successful run's time less the margin."""
    last = (
        PeriodicJob.objects.filter(name=JOB, last_error="")
        .values_list("last_finished_at", flat=True)
        .first()
    )
    if last is None or last > now:
        return now - FIRST_LOOKBACK
    return max(last - MARGIN, now - FIRST_LOOKBACK)


def stranger_triggers(since: datetime):
    return Trigger.objects.filter(
        reason=STRANGER, status=Trigger.Status.QUARANTINED, received_at__gte=since
    )


def alert_leaked_addresses(now: datetime) -> dict:
    """Create the alert (and queue one email per admin) for each current address a stranger used
    since the previous run, unless that address already has one."""
    since = scan_start(now)
    used = stranger_triggers(since).filter(
        agency_id=OuterRef("agency_id"), received_at__gte=OuterRef("created_at")
    )
    addresses = list(
        InboundAddress.objects.filter(retired_at=None, leak_alert__isnull=True)
        .filter(Exists(used))
        .select_related("agency")
    )
    alerts = 0
    for address in addresses:
        trigger = first_stranger(address, since, now)
        if trigger is not None and raise_alert(address, trigger, now):
            alerts += 1
    blanked = forget_old_senders(now)
    return {"alerts": alerts, "senders_blanked": blanked}


def first_stranger(address: InboundAddress, since: datetime, now: datetime) -> Trigger | None:
    known = {
        s.lower()
        for s in LeakAlert.objects.filter(agency_id=address.agency_id)
        .filter(address__retired_at__isnull=False, address__accept_until__gt=now)
        .values_list("sender", flat=True)
        if s
    }
    candidates = (
        stranger_triggers(max(since, address.created_at))
        .filter(agency_id=address.agency_id)
        .order_by("received_at", "id")[:PER_ADDRESS]
    )
    return next((t for t in candidates if t.sender.lower() not in known), None)


def raise_alert(address: InboundAddress, trigger: Trigger, now: datetime) -> bool:
    """The alert and its emails in one transaction: an alert exists iff its emails are queued.
    The address is unique on the alert, so two workers racing create one."""
    agency = address.agency
    try:
        with transaction.atomic():
            alert = LeakAlert.objects.create(
                agency=agency,
                address=address,
                trigger=trigger,
                sender=trigger.sender,
                received_at=trigger.received_at,
                created_at=now,
            )
            context = email_context(alert, address)
            email_admins(
                agency,
                "address_leaked",
                context,
                dedupe_key=f"address-leaked:{alert.pk}",
                send_after=now,
            )
            agency.record(
                None,
                "email_sync.address_leaked",
                address.redacted,
                sender=trigger.sender,
                trigger=trigger.pk,
            )
    except IntegrityError:  # another worker alerted for this address first
        return False
    return True


def local_time(when: datetime, time_zone: str) -> str:
    try:
        zone = ZoneInfo(time_zone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    local = when.astimezone(zone)
    return f"{formats.date_format(local, 'j F Y, H:i')} ({time_zone})"


def email_context(alert: LeakAlert, address: InboundAddress) -> dict:
    return {
        "agency_name": alert.agency.name,
        "sender": alert.sender,
        "received": local_time(alert.received_at, alert.agency.time_zone),
        "address": address.redacted,
        "email_sync_url": settings.EMAILSYNC_PUBLIC_URL + reverse("email-sync"),
        "from_name": "Email Sync",
    }


def forget_old_senders(now: datetime) -> int:
    """The stranger's address is kept as long as the triggers that named it (retention)."""
    days = getattr(settings, "EMAILSYNC_TRIGGER_RETENTION_DAYS", 90)
    return (
        LeakAlert.objects.filter(received_at__lt=now - timedelta(days=days))
        .exclude(sender="")
        .update(sender="")
    )


# --- the notice on the Email Sync page and the dashboard ---------------------------------------


def current_alert(agency) -> LeakAlert | None:
    """The alert to show: for the agency's current address, not dismissed. Rotating the address
    makes it stale (the new address has no alert), so the notice goes away by itself."""
    return (
        LeakAlert.objects.filter(agency=agency, address__retired_at=None, dismissed_at__isnull=True)
        .select_related("address", "trigger")
        .first()
    )


@admin_required
@require_POST
def dismiss(request):
    now = timezone.now()
    changed = LeakAlert.objects.filter(
        agency=request.agency, address__retired_at=None, dismissed_at__isnull=True
    ).update(dismissed_at=now, dismissed_by=request.user)
    if changed:
        request.agency.record(request.user, "email_sync.leak_alert_dismissed", request.agency.name)
        messages.success(request, _("Alert dismissed. Your BCC address stays as it is."))
    return redirect("dashboard" if request.POST.get("next") == "dashboard" else "email-sync")
