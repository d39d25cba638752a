"""`emailsync agency …`: the operator's way to provision and inspect agencies."""

import json
import sys

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from emailsync.agencies.models import Agency, User
from emailsync.operations.prompts import confirmed


def login_link(user: User) -> str:
    """A one-time link where the admin sets a password (it stops working once used)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return settings.EMAILSYNC_PUBLIC_URL + reverse("password_reset_confirm", args=[uid, token])


def describe(agency: Agency) -> dict:
    """The JSON shape operators script against; later parts of the product add their fields."""
    admins = list(agency.admins().values_list("email", flat=True))
    data = {
        "id": agency.pk,
        "slug": agency.slug,
        "name": agency.name,
        "time_zone": agency.time_zone,
        "domains": agency.domain_names(),
        "admins": admins,
        "members": agency.members().count(),
        "created_at": agency.created_at.isoformat(),
    }
    for extend in AGENCY_DESCRIBERS:
        data.update(extend(agency))
    return data


def agency_named(slug: str) -> Agency:
    """The agency an operator's command names by its slug, or the command's one-line error."""
    agency = Agency.objects.filter(slug=slug).first()
    if agency is None:
        raise CommandError(f"No agency with slug {slug!r}.")
    return agency


# Other apps register functions here to add their fields (the BCC address, Email Sync settings).
AGENCY_DESCRIBERS: list = []


class OneLineErrors:
    """argparse prints usage over several lines; operators' scripts want one line and exit 2."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


class Command(BaseCommand):
    help = "Create, list, show and delete agencies."

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        for p in [parser, *self._subparsers.choices.values()]:
            if p.called_from_command_line:
                p.error = OneLineErrors.error.__get__(p)
        return parser

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
        self._subparsers = sub
        create = sub.add_parser(
            "create",
            help="Create an agency and its first admin.",
            called_from_command_line=parser.called_from_command_line,
        )
        create.add_argument(
            "--name", required=True, help="The agency's name, as the public sees it."
        )
        create.add_argument(
            "--admin-email", required=True, help="The first admin's sign-in address."
        )
        create.add_argument(
            "--admin-name",
            default="",
            help="The admin's name, which candidates see on requests for the admin's own emails.",
        )
        create.add_argument(
            "--domain",
            action="append",
            default=[],
            dest="domains",
            metavar="DOMAIN",
            help="An email domain of the agency; repeat it for more: --domain a.com --domain b.com",
        )
        create.add_argument(
            "--time-zone", default="UTC", help="IANA name, e.g. Europe/London (default UTC)."
        )
        create.add_argument("--json", action="store_true", help="Print JSON.")
        listing = sub.add_parser(
            "list", help="List agencies.", called_from_command_line=parser.called_from_command_line
        )
        listing.add_argument("--json", action="store_true", help="Print JSON.")
        show = sub.add_parser(
            "show",
            help="Show one agency.",
            called_from_command_line=parser.called_from_command_line,
        )
        show.add_argument("slug", help="The agency's slug (`emailsync agency list`).")
        show.add_argument("--json", action="store_true", help="Print JSON.")
        delete = sub.add_parser(
            "delete",
            help="Delete an agency with all its data (cannot be undone).",
            called_from_command_line=parser.called_from_command_line,
        )
        delete.add_argument("slug", help="The agency's slug (`emailsync agency list`).")
        delete.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        delete.add_argument("--json", action="store_true", help="Print JSON.")
        self.extra_subcommands(sub, parser)

    def extra_subcommands(self, sub, parser) -> None:
        """Hook for other apps' subcommands."""
        from emailsync.inbound.operator import add_rotate_subcommand
        from emailsync.review_requests.operator import add_settings_subcommand

        add_settings_subcommand(sub, parser)
        add_rotate_subcommand(sub, parser)

    def do_rotate_address(self, options) -> dict:
        from emailsync.inbound.operator import run_rotate

        return run_rotate(options)

    def do_settings(self, options) -> dict:
        from emailsync.review_requests.operator import run_settings

        return run_settings(options)

    def handle(self, *args, **options):
        action = options["action"]
        result = getattr(self, f"do_{action.replace('-', '_')}")(options)
        if options.get("json"):
            self.stdout.write(json.dumps(result, indent=2, default=str))
        else:
            self.stdout.write(self.as_text(result))

    def do_create(self, options) -> dict:
        name = options["name"].strip()
        email = options["admin_email"].strip().lower()
        if not name:
            raise CommandError("--name must not be empty.")
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"--admin-email {email!r} is not a valid email address.")
        if User.objects.filter(email__iexact=email).exists():
            raise CommandError(f"An account with {email} already exists.")
        try:
            agency, admin = Agency.create_with_admin(
                name=name,
                admin_email=email,
                admin_name=options["admin_name"],
                domains=tuple(options["domains"]),
                time_zone=options["time_zone"],
            )
        except ValidationError as exc:
            raise CommandError(flatten(exc))
        data = describe(agency)
        data["admin_email"] = admin.email
        data["login_url"] = login_link(admin)
        return data

    def do_list(self, options) -> list[dict]:
        return [describe(a) for a in Agency.objects.order_by("slug")]

    def do_show(self, options) -> dict:
        agency = agency_named(options["slug"])
        return describe(agency)

    def do_delete(self, options) -> dict:
        from emailsync.privacy.agencies import delete_agency

        agency = agency_named(options["slug"])
        question = (
            f"Delete {agency.name} ({agency.slug}) with all its reviews, requests, members and "
            "settings? This cannot be undone."
        )
        if not options["yes"] and not confirmed(question):
            raise CommandError("Nothing deleted.")
        result = delete_agency(agency)
        return {"slug": result["slug"], "deleted": True, "rows": result["deleted"]}

    @staticmethod
    def as_text(result) -> str:
        rows = result if isinstance(result, list) else [result]
        return "\n".join(
            "  ".join(f"{k}={v}" for k, v in row.items() if not isinstance(v, (list, dict)))
            for row in rows
        )


def flatten(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)
