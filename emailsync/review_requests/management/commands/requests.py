"""`emailsync requests SLUG --json`: an agency's review requests and their state."""

import json

from django.core.management.base import BaseCommand, CommandError

from emailsync.agencies.management.commands.agency import agency_named
from emailsync.review_requests.models import ReviewRequest


def request_json(r: ReviewRequest) -> dict:
    return {
        "id": r.pk,
        "email": r.email,
        "name": r.name,
        "recruiter": r.recruiter.display_name if r.recruiter else None,
        "role": r.role or None,
        "source": r.source,
        "status": r.status,
        "status_reason": r.status_reason,
        "created_at": r.created_at.isoformat(),
        "send_after": r.send_after.isoformat(),
        "deadline": r.deadline.isoformat(),
        "sent_at": r.sent_at.isoformat() if r.sent_at else None,
        "placement_ref": r.placement_ref or None,
    }


class Command(BaseCommand):
    help = "List an agency's review requests: recipient, recruiter, role, source and status."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="The agency's slug (`emailsync agency list`).")
        parser.add_argument(
            "--status", choices=ReviewRequest.Status.values, help="Only requests in this state."
        )
        parser.add_argument(
            "--limit", type=int, default=100, help="How many of the newest requests (default 100)."
        )
        parser.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args, **options):
        if options["limit"] < 0:  # a queryset cannot be sliced from the end
            raise CommandError("--limit must be 0 or more.")
        agency = agency_named(options["slug"])
        requests = ReviewRequest.objects.filter(agency=agency).select_related("recruiter")
        if options["status"]:
            requests = requests.filter(status=options["status"])
        rows = [request_json(r) for r in requests[: options["limit"]]]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        for row in rows:
            self.stdout.write(
                f"{row['send_after']}  {row['email']:<40} {row['status']:<10} {row['source']}"
            )
