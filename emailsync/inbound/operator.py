"""What operators see and do of an agency's inbound side: `agency show`, `agency
rotate-address` and the demo seed."""

from datetime import time, timedelta

from django.core.management.base import CommandError

from emailsync.agencies.management.commands.agency import agency_named
from emailsync.review_requests.models import EmailSyncSettings

from .models import ROTATION_GRACE, InboundAddress


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


def add_rotate_subcommand(sub, parser) -> None:
    command = sub.add_parser(
        "rotate-address",
        help="Give an agency a new BCC address (as its admin can on the Email Sync page).",
        called_from_command_line=parser.called_from_command_line,
    )
    command.add_argument("slug", help="The agency's slug (`emailsync agency list`).")
    command.add_argument(
        "--grace-days",
        type=int,
        default=ROTATION_GRACE.days,
        metavar="N",
        help=f"Days the old address keeps working (default {ROTATION_GRACE.days}); 0 refuses it "
        "at once, for an address that leaked.",
    )
    command.add_argument("--json", action="store_true", help="Print JSON.")


def run_rotate(options) -> dict:
    """An operator's rotation, for when the agency's admin cannot do it (an address that leaked
    overnight): audited as the platform's, the agency's admins see it in their audit log."""
    agency = agency_named(options["slug"])
    days = options["grace_days"]
    if not 0 <= days <= 365:
        raise CommandError("--grace-days must be between 0 and 365.")
    old = InboundAddress.current_for(agency).address
    new = InboundAddress.rotate(agency, by=None, grace=timedelta(days=days))
    retired = InboundAddress.objects.filter(agency=agency, retired_at__isnull=False)
    until = retired.order_by("-retired_at").values_list("accept_until", flat=True).first()
    return {
        "slug": agency.slug,
        "bcc_address": new.address,
        "previous_bcc_address": old,
        "previous_accepted_until": until.isoformat() if days and until else None,
    }
