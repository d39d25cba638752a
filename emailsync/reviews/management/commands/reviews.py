"""`emailsync reviews …`: operator commands for reviews.

`emailsync reviews send-digests [--force] [--json]` queues the admins' daily digest for every
agency that takes one and is due (at most one per 23 hours), plus any review whose admins were
never told. Run it from the worker's periodic jobs or from cron, e.g. hourly; running it more
often, or from several machines at once, sends nothing twice.
"""

import json

from django.core.management.base import BaseCommand

from emailsync.reviews.services import send_due_digests


class Command(BaseCommand):
    help = "Operator commands for reviews (send-digests)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        digests = sub.add_parser(
            "send-digests", help="Queue the daily 'new reviews' digest for agencies that are due."
        )
        digests.add_argument(
            "--force", action="store_true", help="Ignore the once-a-day limit (for testing)."
        )
        digests.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        if options["action"] == "send-digests":
            result = send_due_digests(force=options["force"])
            if options["json"]:
                self.stdout.write(json.dumps(result))
            else:
                self.stdout.write(
                    f"Queued {result['emails']} digest email(s) about {result['reviews']} "
                    f"review(s) for {result['agencies']} agency(ies)."
                )
