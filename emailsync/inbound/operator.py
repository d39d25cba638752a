"""What operators see of an agency's inbound side: in `agency show` and the demo seed."""

from datetime import time

from emailsync.review_requests.models import EmailSyncSettings

from .models import InboundAddress


def describe_inbound(agency) -> dict:
    address = InboundAddress.current_for(agency)
    sync = EmailSyncSettings.for_agency(agency)
    data = {"bcc_address": address.address, "email_sync_enabled": sync.enabled}
    grace = (
        InboundAddress.objects.filter(
            agency=agency, retired_at__isnull=False, accept_until__isnull=False
        )
        .order_by("-accept_until")
        .first()
    )
    if grace and grace.accepts_mail():
        data["previous_bcc_address_accepted_until"] = grace.accept_until.isoformat()
    return data


def seed_demo_inbound(agency) -> dict:
    """The demo agency collects at once, every day, and trusts its (unsigned, local) domain:
    a new user's test email through the local listener then goes all the way."""
    sync = EmailSyncSettings.for_agency(agency)
    if not sync.enabled:
        sync.enabled = True
        sync.delay_hours = 0
        sync.business_days = "0,1,2,3,4,5,6"
        sync.business_start, sync.business_end = time(0, 0), time(23, 59)
        sync.trust_from_domain = True
        sync.save()
    return {"bcc address": InboundAddress.current_for(agency).address}
