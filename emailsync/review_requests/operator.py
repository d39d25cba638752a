"""`emailsync agency settings SLUG --json [--set NAME=VALUE …]`: an agency's Email Sync settings.

Values are parsed by the model fields and checked with `full_clean()`, the same validation as the
admin page, so a bad value exits non-zero with a one-line reason and changes nothing.
"""

from datetime import time

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from emailsync.agencies.management.commands.agency import agency_named

from .models import EmailSyncSettings, clean_domain_list

EDITABLE = [
    "enabled",
    "delay_hours",
    "business_days",
    "business_start",
    "business_end",
    "reminder_days",
    "dedupe_days",
    "recipient_cap",
    "trust_from_domain",
    "trusted_signing_domains",
    "rate_limit_per_hour",
]
ALIASES = {"business_hours": ("business_start", "business_end"), "delay": ("delay_hours",)}
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}
DAY_NAMES = {d: i for i, d in enumerate(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])}


def settings_json(sync: EmailSyncSettings) -> dict:
    return {
        "agency": sync.agency.slug,
        "enabled": sync.enabled,
        "delay_hours": sync.delay_hours,
        "business_days": sync.business_day_numbers(),
        "business_hours": f"{sync.business_start:%H:%M}-{sync.business_end:%H:%M}",
        "business_start": f"{sync.business_start:%H:%M}",
        "business_end": f"{sync.business_end:%H:%M}",
        "time_zone": sync.agency.time_zone,
        "reminder_days": sync.reminder_days,
        "dedupe_days": sync.dedupe_days,
        "recipient_cap": sync.recipient_cap,
        "trust_from_domain": sync.trust_from_domain,
        "trusted_signing_domains": sync.signing_domains(),
        "rate_limit_per_hour": sync.rate_limit_per_hour,
    }


def parse_days(value: str) -> str:
    """'0,1,2,3,4', 'mon-fri' or 'mon,wed,fri' → '0,1,2,3,4'; '' or 'any' → '' (any day, as
    the settings page's "no day ticked")."""
    if value.strip().lower() in ("", "any"):
        return ""
    days: set[int] = set()
    for item in value.lower().replace(" ", "").split(","):
        if not item:
            continue
        start, _, end = item.partition("-")
        a = DAY_NAMES.get(start[:3], start)
        b = DAY_NAMES.get(end[:3], end) if end else a
        try:
            a, b = int(a), int(b)
        except ValueError:
            raise CommandError(f"business_days: {item!r} is not a day (0–6 or mon…sun).")
        if not (0 <= a <= 6 and 0 <= b <= 6) or a > b:
            raise CommandError(f"business_days: {item!r} is not a day range (0–6 or mon…sun).")
        days.update(range(a, b + 1))
    if not days:
        raise CommandError("business_days: name a day, or 'any'.")
    return ",".join(str(d) for d in sorted(days))


def parse_time(name: str, value: str) -> time:
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise CommandError(f"{name}: {value!r} is not a time such as 09:00.")


def apply(sync: EmailSyncSettings, assignment: str) -> None:
    name, sep, value = assignment.partition("=")
    name = name.strip().lower().replace("-", "_")
    if not sep:
        raise CommandError(f"--set {assignment!r}: use NAME=VALUE.")
    if name == "business_hours":
        start, dash, end = value.partition("-")
        if not dash:
            raise CommandError("business_hours: use START-END, such as 09:00-17:00.")
        sync.business_start = parse_time(name, start)
        sync.business_end = parse_time(name, end)
        return
    name = ALIASES.get(name, (name,))[0]
    if name not in EDITABLE:
        raise CommandError(
            f"{name}: not a setting; choose from {', '.join(EDITABLE)}, business_hours."
        )
    field = EmailSyncSettings._meta.get_field(name)
    if name == "business_days":
        parsed = parse_days(value)
    elif name in ("business_start", "business_end"):
        parsed = parse_time(name, value)
    elif field.get_internal_type() == "BooleanField":
        lowered = value.strip().lower()
        if lowered not in TRUE | FALSE:
            raise CommandError(f"{name}: {value!r} is not on/off.")
        parsed = lowered in TRUE
    elif name == "trusted_signing_domains":
        try:
            parsed = "\n".join(clean_domain_list(value))
        except ValidationError as exc:
            raise CommandError(f"{name}: {' '.join(exc.messages)}")
    else:
        try:
            parsed = field.to_python(value.strip())
        except ValidationError as exc:
            raise CommandError(f"{name}: {' '.join(exc.messages)}")
    setattr(sync, name, parsed)


def one_line(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def add_settings_subcommand(sub, parser) -> None:
    command = sub.add_parser(
        "settings",
        help="Show or change an agency's Email Sync settings.",
        called_from_command_line=parser.called_from_command_line,
    )
    command.add_argument("slug", help="The agency's slug (`emailsync agency list`).")
    command.add_argument(
        "--set",
        action="append",
        default=[],
        dest="assignments",
        metavar="NAME=VALUE",
        help="Change one setting; repeat for more. Names: "
        + ", ".join([*EDITABLE, "business_hours"])
        + ". E.g. delay_hours=4, business_hours=08:30-18:00, business_days=mon-fri, enabled=on",
    )
    command.add_argument("--json", action="store_true", help="Print JSON.")


def run_settings(options) -> dict:
    agency = agency_named(options["slug"])
    with transaction.atomic():
        sync = EmailSyncSettings.for_agency(agency)
        if options["assignments"]:
            before = settings_json(sync)
            for assignment in options["assignments"]:
                apply(sync, assignment)
            try:
                sync.full_clean(validate_unique=False)
            except ValidationError as exc:
                raise CommandError(one_line(exc))
            sync.save()
            after = settings_json(sync)
            changed = {k: after[k] for k in after if after[k] != before[k]}
            if changed:
                agency.record(None, "email_sync.settings_changed", "operator CLI", **changed)
    return settings_json(sync)
