"""`emailsync profiles …`: operator commands for public profiles.

`emailsync profiles check-aggregates [--repair] [--json]` compares every stored agency and
recruiter rating with a from-scratch recomputation from the public reviews; it exits 1 when they
differ (and, with --repair, recomputes the rows that differ). Run it daily from cron: it also
moves agencies down the directory as their newest review ages (the recency part of the rank),
and catches changes made behind the signals' back (bulk updates, raw SQL).
"""

import json

from django.core.management.base import BaseCommand

from emailsync.profiles import aggregates


class Command(BaseCommand):
    help = "Operator commands for public profiles (check-aggregates)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser(
            "check-aggregates",
            help="Compare stored ratings with a recomputation; exit 1 if they differ.",
        )
        check.add_argument("--repair", action="store_true", help="Recompute the rows that differ.")
        check.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, **options):
        mismatches = aggregates.check()
        if options["repair"] and mismatches:
            aggregates.repair(mismatches)
            remaining = aggregates.check()
        else:
            remaining = mismatches
        result = {
            "mismatches": len(mismatches),
            "repaired": len(mismatches) - len(remaining) if options["repair"] else 0,
            "remaining": len(remaining),
            "rows": [{"kind": m.kind, "id": m.pk, "fields": m.fields()} for m in mismatches[:100]],
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for row in result["rows"]:
                self.stdout.write(f"{row['kind']} {row['id']}: {', '.join(row['fields'])}")
            verb = "repaired" if options["repair"] else "found"
            self.stdout.write(
                f"{len(mismatches)} mismatch(es) {verb}"
                + (f", {len(remaining)} remaining." if options["repair"] else ".")
            )
        if remaining:
            raise SystemExit(1)
