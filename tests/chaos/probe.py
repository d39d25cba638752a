"""Run inside a product environment (`python -m tests.chaos.probe …` with its DATABASE_URL):
seed the agency the fault scenarios send to, and report what the database holds afterwards.

What the scenarios check about stored mail is read through the product's own ORM, in a
process of its own, the same code the listener and the worker use.
"""

import json
import sys


def seed() -> dict:
    """One agency on chaos.test: Email Sync on, accepted on the From domain (the test mail is
    not DKIM-signed), requests due at once, no hourly cap that a long run could reach."""
    from emailsync.agencies.models import Agency, User
    from emailsync.inbound.models import InboundAddress
    from emailsync.review_requests.models import EmailSyncSettings

    agency, _ = Agency.create_with_admin(
        name="Chaos Recruitment",
        admin_email="admin@chaos.test",
        admin_name="Ada Admin",
        password="chaos-password-1",
        domains=("chaos.test",),
    )
    sync = EmailSyncSettings.for_agency(agency)
    sync.enabled, sync.trust_from_domain = True, True
    sync.delay_hours, sync.business_days = 0, ""
    sync.rate_limit_per_hour = 1_000_000
    sync.save()
    User.objects.create_user(
        email="sam@chaos.test",
        password="chaos-password-1",
        full_name="Sam Carter",
        agency=agency,
        role=User.Role.RECRUITER,
    )
    return {"agency": agency.pk, "bcc": InboundAddress.current_for(agency).address}


def report(path: str) -> dict:
    """For each (Message-ID, recipient) in the JSON file: the triggers recorded for that
    Message-ID, the review requests for that recipient, and their outbox rows' states."""
    from collections import Counter

    from emailsync.inbound.headers import message_id_hash
    from emailsync.inbound.models import Trigger
    from emailsync.outbox.models import OutboundEmail
    from emailsync.review_requests.models import ReviewRequest

    with open(path) as handle:
        messages = json.load(handle)
    hashes = {message_id_hash(mid): mid for mid, _ in messages}
    triggers = Counter(
        hashes[h]
        for h in Trigger.objects.filter(message_id_hash__in=list(hashes)).values_list(
            "message_id_hash", flat=True
        )
    )
    emails = [rcpt for _, rcpt in messages]
    requests = Counter(
        ReviewRequest.objects.filter(email__in=emails).values_list("email", flat=True)
    )
    outbox = Counter(
        OutboundEmail.objects.filter(to_email__in=emails).values_list("status", flat=True)
    )
    return {
        "messages": {
            mid: {"triggers": triggers[mid], "requests": requests[rcpt]} for mid, rcpt in messages
        },
        "triggers_total": Trigger.objects.count(),
        "requests_total": ReviewRequest.objects.count(),
        "outbox": dict(Counter(OutboundEmail.objects.values_list("status", flat=True))),
        "outbox_for_messages": dict(outbox),
    }


COMMANDS = {"seed": seed, "report": report}

if __name__ == "__main__":
    import django

    django.setup()
    print(json.dumps(COMMANDS[sys.argv[1]](*sys.argv[2:])))
