"""`emailsync worker`: send what the outbox holds and run the periodic jobs.

Runs until SIGTERM or SIGINT (the batch in hand is finished first, then it exits 0). `--once`
processes what is due and returns, for tests and cron. `--status --json` prints the queue's
health, including the age of the oldest due-but-unsent request (the 72-hour promise's figure).
"""

import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from emailsync.outbox.worker import Worker, queue_status


class Command(BaseCommand):
    help = "Send queued email (review requests, reminders, notifications) and run periodic jobs."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Process what is due, then exit.")
        parser.add_argument("--batch", type=int, default=100, help="Rows claimed per batch.")
        parser.add_argument(
            "--mark-every",
            type=int,
            default=25,
            help="Mark sent rows in groups of this size (bounds duplicates after a crash).",
        )
        parser.add_argument("--lease", type=int, default=300, help="Lease in seconds.")
        parser.add_argument("--poll", type=float, default=1.0, help="Idle poll interval (s).")
        parser.add_argument("--no-jobs", action="store_true", help="Do not run periodic jobs.")
        parser.add_argument("--status", action="store_true", help="Print queue health and exit.")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["status"]:
            status = queue_status()
            if options["json"]:
                self.stdout.write(json.dumps(status, indent=2, default=str))
            else:
                age = status["oldest_due_seconds"]
                self.stdout.write(
                    f"due={status['due']} oldest_due_seconds={age if age is not None else '-'} "
                    f"retrying={status['retrying']} past_deadline="
                    f"{status['scheduled_past_72h_deadline']}"
                )
            return
        if options["batch"] < 1 or options["lease"] < 10 or options["mark_every"] < 1:
            raise CommandError("--batch and --mark-every must be >= 1, --lease >= 10 seconds.")
        worker = Worker(
            batch_size=options["batch"],
            lease=timedelta(seconds=options["lease"]),
            mark_every=options["mark_every"],
            run_jobs=not options["no_jobs"],
        )
        worker.install_signal_handlers()
        stats = worker.run_once() if options["once"] else worker.run_forever(options["poll"])
        if options["json"]:
            self.stdout.write(json.dumps(stats.as_dict(), default=str))
        elif options["once"]:
            self.stdout.write(
                f"sent={stats.sent} retried={stats.retried} failed={stats.failed} "
                f"skipped={stats.skipped}"
            )
