"""`emailsync seed_demo`: the demo agency `make run` shows a new user. Safe to run repeatedly.

Passwords are generated on first run and kept in var/demo-credentials.json (never committed), so
the banner can print working logins every time without a password living in the repository.
"""

import json
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from emailsync.agencies.models import Agency, AgencyDomain, RecruiterProfile, User
from emailsync.operations import demo

DEMO_SLUG = "demo-recruitment"
DEMO_DOMAIN = "demo-recruitment.example"
PEOPLE = [
    ("admin", "Avery Admin", "Head of Operations", User.Role.ADMIN),
    ("sam", "Sam Carter", "Senior Recruiter, Technology", User.Role.RECRUITER),
    ("priya", "Priya Nair", "Recruiter, Finance", User.Role.RECRUITER),
]
# Other apps add demo data of their own (an inbound address, reviews…) through this list.
DEMO_EXTENSIONS: list = []


def credentials_path():
    return settings.VAR_DIR / "demo-credentials.json"


def load_credentials() -> dict:
    path = credentials_path()
    return json.loads(path.read_text()) if path.exists() else {}


class Command(BaseCommand):
    help = "Create (or refresh) the demo agency and print its logins."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    @transaction.atomic
    def handle(self, *args, **options):
        saved = load_credentials()
        agency = Agency.objects.filter(slug=DEMO_SLUG).first()
        if agency is None:
            agency = Agency.objects.create(
                name="Demo Recruitment",
                slug=DEMO_SLUG,
                time_zone="Europe/London",
                location="London, UK",
                website="https://demo-recruitment.example",
            )
            AgencyDomain.add(agency, DEMO_DOMAIN)
        logins, people = {}, {}
        for local, name, title, role in PEOPLE:
            email = f"{local}@{DEMO_DOMAIN}"
            user = User.objects.filter(email=email).first()
            password = saved.get(email)
            if user is None:
                password = password or secrets.token_urlsafe(9)
                user = User.objects.create_user(
                    email=email, password=password, full_name=name, agency=agency, role=role
                )
                profile = RecruiterProfile.for_user(user)
                profile.job_title = title
                profile.save(update_fields=["job_title"])
            elif not password or not user.check_password(password):
                password = secrets.token_urlsafe(9)
                user.set_password(password)
                user.save(update_fields=["password"])
            logins[email] = password
            people[local] = user
        credentials_path().parent.mkdir(parents=True, exist_ok=True)
        credentials_path().write_text(json.dumps(logins, indent=2))
        credentials_path().chmod(0o600)
        extra = {}
        for extend in DEMO_EXTENSIONS:
            extra.update(extend(agency) or {})
        created = demo.seed_history(agency, people)
        if options["json"]:
            self.stdout.write(
                json.dumps({"agency": agency.slug, "logins": logins, "created": created, **extra})
            )
            return
        admin_email = f"admin@{DEMO_DOMAIN}"
        lines = [
            "",
            f"Demo agency: {agency.name}",
            f"  admin login      {admin_email} / {logins[admin_email]}",
        ]
        for email, password in logins.items():
            if email != admin_email:
                lines.append(f"  recruiter login  {email} / {password}")
        for label, value in extra.items():
            lines.append(f"  {label:<16} {value}")
        if any(created.values()):
            lines.append(
                "  demo history     {placements} placements, {requests} review requests, "
                "{reviews} reviews, {triggers} trigger emails added".format(**created)
            )
        else:
            lines.append("  demo history     already in place (nothing changed)")
        self.stdout.write("\n".join(lines))
