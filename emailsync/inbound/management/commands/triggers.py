"""`emailsync triggers SLUG --json`: recent triggers of an agency and what became of each
recipient — the answer to "why wasn't my candidate asked?"."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Prefetch

from emailsync.agencies.management.commands.agency import agency_named
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.inbound.structured import problem_codes


def trigger_json(trigger: Trigger) -> dict:
    return {
        "id": trigger.pk,
        "received_at": trigger.received_at.isoformat(),
        "source": trigger.source,
        "sender": trigger.sender,
        "recruiter": trigger.recruiter.display_name if trigger.recruiter else None,
        "status": trigger.status,
        "reason": trigger.reason,
        "auth": {"method": trigger.auth_method, "detail": trigger.auth_detail},
        "setup_test": trigger.is_setup_test,
        "subject": trigger.subject if trigger.is_setup_test else None,
        "placement_ref": trigger.placement_ref,
        # Codes of docs/STRUCTURED_DATA.md ("When something is wrong"); [] when none.
        "structured_problems": problem_codes(trigger.structured_problems),
        # Codes of emailsync/inbound/headers.py when the reason is header_defects; [] otherwise.
        "header_defects": problem_codes(trigger.header_defects),
        "recipients": [
            {
                "email": r.email,
                "name": r.name,
                "outcome": r.outcome,
                "reason": r.reason,
                "review_request": r.review_request_id,
            }
            for r in trigger.recipients.all()
        ],
    }


class Command(BaseCommand):
    help = "Show an agency's recent triggers with each recipient's outcome and reason."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The agency's slug (`emailsync agency list`).")
        parser.add_argument(
            "--limit", type=int, default=50, help="How many of the newest triggers (default 50)."
        )
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, **options):
        if options["limit"] < 0:  # a queryset cannot be sliced from the end
            raise CommandError("--limit must be 0 or more.")
        agency = agency_named(options["slug"])
        triggers = (
            Trigger.objects.filter(agency=agency)
            .select_related("recruiter")
            .prefetch_related(Prefetch("recipients", TriggerRecipient.objects.order_by("id")))[
                : options["limit"]
            ]
        )
        rows = [trigger_json(t) for t in triggers]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            self.stdout.write(
                f"{row['received_at']}  #{row['id']}  {row['sender']}  "
                f"{row['status']} {row['reason']}"
            )
            if row["header_defects"]:
                self.stdout.write(f"    unreadable headers: {', '.join(row['header_defects'])}")
            if row["structured_problems"]:
                self.stdout.write(f"    structured data: {', '.join(row['structured_problems'])}")
            for r in row["recipients"]:
                self.stdout.write(f"    {r['email']:<40} {r['outcome']} {r['reason']}")
