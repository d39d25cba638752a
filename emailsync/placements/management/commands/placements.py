"""`emailsync placements process-imports [--json]`: run waiting CSV imports now (the worker's
`placement_imports` job does the same every few seconds)."""

import json

from django.core.management.base import BaseCommand

from emailsync.placements.csvio import process_pending_imports


class Command(BaseCommand):
    help = "Placements: process-imports runs the CSV imports that are waiting."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("process-imports", help="Run waiting CSV imports now.")
        run.add_argument("--json", action="store_true")

    def handle(self, *args, action, **options):
        result = process_pending_imports()
        if options.get("json"):
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(f"{result['imports']} import(s), {result['rows']} row(s)")
