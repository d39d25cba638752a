"""`emailsync seed-scale --agencies N --reviews M`: fill an empty database with realistic data at
scale — agencies with admins, recruiters and sender addresses, placements, review requests,
reviews in every state, recent triggers with their recipients' outcomes, and rating aggregates
that `emailsync profiles check-aggregates` accepts. For load tests and benchmarks
(bench/web.py, bench/scale.py); see emailsync/operations/scale.py for what is written.

It refuses a database that already holds an agency rather than mixing its rows with real ones.
COPY on PostgreSQL, batched inserts on SQLite; a progress bar on a terminal, plain lines otherwise.
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from emailsync.operations import scale


class Command(BaseCommand):
    help = "Fill an empty database with realistic agencies, reviews and history, fast."

    def add_arguments(self, parser):
        parser.add_argument("--agencies", type=int, default=100, help="Agencies (default 100).")
        parser.add_argument("--reviews", type=int, default=10_000, help="Reviews (default 10,000).")
        parser.add_argument("--random-seed", type=int, default=7, help="Same seed, same data.")
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def handle(self, *args, **options):
        if options["agencies"] < 1 or options["reviews"] < 0:
            raise CommandError("--agencies must be at least 1 and --reviews at least 0.")
        existing = scale.existing_agencies()
        if existing:
            raise CommandError(
                f"The database already holds {existing:,} agencies. seed-scale only fills an "
                "empty database (run `emailsync migrate` on a fresh DATABASE_URL first); "
                "nothing was changed."
            )
        try:
            summary = scale.seed(
                options["agencies"],
                options["reviews"],
                random_seed=options["random_seed"],
                progress_stream=sys.stderr,
            )
        except scale.AlreadySeeded as exc:  # another seed-scale got there first
            raise CommandError(f"The database already holds {exc.args[0]:,} agencies.")
        if options["json"]:
            self.stdout.write(json.dumps(summary.as_dict()))
        else:
            self.stdout.write(scale.describe(summary))
