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


def installation_prefix() -> list[str]:
    """`NAME=value` words another terminal needs to reach this installation's database.

    A terminal opened beside `make run` has none of its environment. Without DATABASE_URL the
    database is the SQLite file under the var dir, so a var dir other than the default is named
    (absolute: the line works from any directory). With DATABASE_URL the printed command names
    the sender and BCC address itself and reads no database, so the URL (which may hold a
    password) is never printed and no var dir is needed."""
    if os.environ.get("DATABASE_URL"):
        return []
    var_dir = os.path.abspath(settings.VAR_DIR)
    if var_dir == os.path.abspath(settings.BASE_DIR / "var"):
        return []
    return [f"EMAILSYNC_VAR_DIR={shlex.quote(var_dir)}"]


def sendtest_command(facts: dict, smtp_host: str, smtp_port: int) -> str:
    """The shortest command that works, pasted as it is, from another terminal in the project
    directory (a shell without this process's environment)."""
    words = [".venv/bin/emailsync", "sendtest", "--to", "you@example.com"]
    host = {"::": "::1"}.get(smtp_host, smtp_host)  # where a client reaches a wildcard bind
    if host not in ("127.0.0.1", "0.0.0.0", "localhost", ""):  # noqa: S104
        words += ["--smtp-host", host]
    if smtp_port != DEFAULT_SMTP[1]:
        words += ["--smtp-port", str(smtp_port)]
    if os.environ.get("DATABASE_URL"):
        # Another terminal will not have DATABASE_URL: name what the database would have said.
        words += ["--from", facts["sender"], "--bcc", facts["bcc"]]
    return " ".join([*installation_prefix(), shlex.join(words)])


def demo_lines(web_url: str, smtp_port: int | None, smtp_host: str = "127.0.0.1") -> list[str]:
    from emailsync.operations.management.commands.seed_demo import credentials_path

    facts = demo_facts()
    if facts is None:
        return []
    agency = facts["agency"]
    lines = ["", f"Demo agency: {agency.name}"]
    for email, password in facts["logins"]:
        label = "admin login" if email == facts["admin"] else "recruiter login"
        missing = f"(password not in {credentials_path()})"
        lines.append(f"  {label:<16} {email} / {password or missing}")
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
