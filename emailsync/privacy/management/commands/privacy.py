"""`emailsync privacy export EMAIL [--json]` and `emailsync privacy erase EMAIL [--yes]`.

The operator's side of a person's data request (docs/PRIVACY.md). Erasure asks for
confirmation unless `--yes` is given; it cannot be undone.
"""

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email

from emailsync.operations.prompts import confirmed
from emailsync.privacy.people import erase_person, export_person, normalise


class Command(BaseCommand):
    help = "Export or erase everything held about one email address."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
        export = sub.add_parser(
            "export",
            help="Print everything held about EMAIL.",
            called_from_command_line=parser.called_from_command_line,
        )
        export.add_argument("email")
        export.add_argument("--json", action="store_true", help="JSON (the default is a summary)")
        erase = sub.add_parser(
            "erase",
            help="Erase EMAIL everywhere; keeps only a hash so it is never asked again.",
            called_from_command_line=parser.called_from_command_line,
        )
        erase.add_argument("email")
        erase.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        erase.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        email = normalise(options["email"])
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{options['email']!r} is not a valid email address.")
        if options["action"] == "export":
            data = export_person(email)
            if options["json"]:
                self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
                return
            for key, value in data.items():
                if isinstance(value, list):
                    self.stdout.write(f"{key}: {len(value)}")
                else:
                    self.stdout.write(f"{key}: {value}")
            return
        question = f"Erase everything held about {email}? This cannot be undone."
        if not options["yes"] and not confirmed(question):
            raise CommandError("Nothing erased.")
        result = erase_person(email)
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        for key, value in result.items():
            if value:
                self.stdout.write(f"{key}: {value}")
        self.stdout.write("Erased; the address stays suppressed (as a hash).")
