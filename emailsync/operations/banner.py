"""What `emailsync serve` prints once everything answers: where to click, who to sign in as, and
one command to copy that sends a test email through the local listener."""

import os
import shlex

from django.conf import settings
from django.db.utils import DatabaseError

DEFAULT_SMTP = ("127.0.0.1", 2525)


def demo_facts() -> dict | None:
    """The demo agency's logins, BCC address and a recruiter to send as; None without one.

    Read-only: it never creates an address or a row (the banner may run against production)."""
    from emailsync.agencies.models import Agency, User
    from emailsync.inbound.models import InboundAddress
    from emailsync.operations.management.commands.seed_demo import DEMO_SLUG, load_credentials

    try:
        agency = Agency.objects.filter(slug=DEMO_SLUG).first()
        if agency is None:
            return None
        address = InboundAddress.objects.filter(agency=agency, retired_at=None).first()
        members = list(agency.members().order_by("id"))
    except DatabaseError:
        return None  # not migrated yet: nothing to show
    saved = load_credentials()
    admins = [u for u in members if u.role == User.Role.ADMIN]
    recruiters = [u for u in members if u.role == User.Role.RECRUITER]
    return {
        "agency": agency,
        "bcc": address.address if address else "",
        "logins": [(u.email, saved.get(u.email, "")) for u in admins + recruiters],
        "admin": admins[0].email if admins else "",
        "sender": recruiters[0].email if recruiters else (admins[0].email if admins else ""),
    }


def sendtest_command(facts: dict, smtp_host: str, smtp_port: int) -> str:
    """The shortest command that works from another terminal in the project directory."""
    words = [".venv/bin/emailsync", "sendtest", "--to", "you@example.com"]
    if smtp_host not in ("127.0.0.1", "0.0.0.0", "localhost"):  # noqa: S104
        words += ["--smtp-host", smtp_host]
    if smtp_port != DEFAULT_SMTP[1]:
        words += ["--smtp-port", str(smtp_port)]
    if os.environ.get("DATABASE_URL"):
        # Another terminal will not have DATABASE_URL: name what the database would have said.
        words += ["--from", facts["sender"], "--bcc", facts["bcc"]]
    return shlex.join(words)


def demo_lines(web_url: str, smtp_port: int | None, smtp_host: str = "127.0.0.1") -> list[str]:
    facts = demo_facts()
    if facts is None:
        return []
    agency = facts["agency"]
    lines = ["", f"Demo agency: {agency.name}"]
    for email, password in facts["logins"]:
        label = "admin login" if email == facts["admin"] else "recruiter login"
        lines.append(f"  {label:<16} {email} / {password or '(password not in var/)'}")
    lines.append(f"  {'sign in at':<16} {web_url}accounts/login/")
    if facts["bcc"]:
        lines.append(f"  {'BCC address':<16} {facts['bcc']}")
    if settings.DEBUG and getattr(settings, "DEVELOPMENT_OUTBOX", False):
        lines.append(f"  {'outbox':<16} {web_url}dev/outbox/  (every email we send lands here)")
    lines.append(f"  {'public profile':<16} {web_url}agencies/{agency.slug}/")
    if smtp_port and facts["bcc"] and facts["sender"]:
        lines += [
            "",
            "Send a test email through the local listener (from another terminal, here):",
            f"  {sendtest_command(facts, smtp_host, smtp_port)}",
            "then watch the review request arrive in the outbox within seconds.",
        ]
    lines.append("")
    return lines
