"""`emailsync sendtest --to you@example.com`: send a realistic trigger email through the listener.

It does what a recruiter's mail server does when a recruiter sends a welcome email with the
agency's BCC address: it connects to our SMTP listener and delivers the BCC copy (the envelope
recipient is the BCC address only; To and Cc are headers, as in any real BCC copy). It prints
every reply the listener gives, so a new user sees `250` and the trigger it names, or the reason
it was refused. Nothing is sent to the To address itself.
"""

import email.utils
import os
import re
import smtplib
import uuid
from email.headerregistry import Address
from email.message import EmailMessage

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db.utils import DatabaseError

from emailsync.operations.management.commands.seed_demo import DEMO_SLUG
from emailsync.workspace.labels import trigger_reason

TEXT = """Hi {first},

Congratulations again on your new role as {job} at {company}! Everyone there is looking
forward to meeting you on Monday.

A few things for your first day:

  - Arrive at 9:00 and ask for the hiring manager at reception.
  - Bring photo ID and your bank details for payroll.
  - Lunch is on the team on day one.

If anything comes up before then, reply to this email or call me on 020 7946 0321.

All the best,
{sender}
{agency}
"""

HTML = """<!doctype html>
<html><body style="font-family: Arial, sans-serif; line-height: 1.5">
<p>Hi {first},</p>
<p>Congratulations again on your new role as <strong>{job}</strong> at {company}! Everyone
there is looking forward to meeting you on Monday.</p>
<p>A few things for your first day:</p>
<ul>
<li>Arrive at 9:00 and ask for the hiring manager at reception.</li>
<li>Bring photo ID and your bank details for payroll.</li>
<li>Lunch is on the team on day one.</li>
</ul>
<p>If anything comes up before then, reply to this email or call me on 020 7946 0321.</p>
<p>All the best,<br>{sender}<br>{agency}</p>
</body></html>
"""


def checked_address(value: str, option: str) -> str:
    try:
        validate_email(value)
    except ValidationError:
        raise CommandError(f"{option}: {value!r} is not an email address.")
    return value.strip()


def trigger_ids(reply: str) -> list[int]:
    """The trigger ids in the listener's 250 ("OK: trigger 12, 13" or "already received as
    trigger 12")."""
    _, found, ids = reply.partition("trigger ")
    return [int(n) for n in re.findall(r"\d+", ids)] if found else []


def first_name(address: str) -> str:
    local = address.split("@", 1)[0]
    word = local.replace(".", " ").replace("_", " ").replace("-", " ").split()
    return word[0].capitalize() if word and word[0].isalpha() else "there"


class Command(BaseCommand):
    help = (
        "Send a realistic welcome email, with the agency's BCC address, through the SMTP "
        "listener (as a recruiter's mail server would) and print the listener's replies."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--to", action="append", required=True, help="The candidate (repeat for more)."
        )
        parser.add_argument("--cc", action="append", default=[], help="Also in Cc (repeatable).")
        parser.add_argument(
            "--from",
            dest="sender",
            help="The recruiter sending it (default: the agency's first recruiter).",
        )
        parser.add_argument(
            "--agency", default=DEMO_SLUG, help=f"The agency's slug (default {DEMO_SLUG})."
        )
        parser.add_argument(
            "--bcc", help="The BCC address (default: the agency's current one, from the database)."
        )
        parser.add_argument("--subject", default="Welcome to your new role")
        parser.add_argument(
            "--smtp-host", default=os.environ.get("EMAILSYNC_SMTP_HOST", "127.0.0.1")
        )
        parser.add_argument(
            "--smtp-port", type=int, default=int(os.environ.get("EMAILSYNC_SMTP_PORT", "2525"))
        )
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **options):
        to = [checked_address(a, "--to") for a in options["to"]]
        cc = [checked_address(a, "--cc") for a in options["cc"]]
        sender, bcc = options["sender"], options["bcc"]
        sender_name, agency_name = "", ""
        self.agency_id = None  # known when the agency came from this database
        if not (sender and bcc):
            sender_name, agency_name, sender, bcc = self.from_database(
                options["agency"], sender, bcc
            )
        sender = checked_address(sender, "--from")
        bcc = checked_address(bcc, "--bcc")
        message = self.build(
            sender, sender_name, agency_name, to, cc, options["subject"], bcc.rpartition("@")[2]
        )
        self.deliver(message, sender, bcc, options)

    def from_database(self, slug, sender, bcc):
        from emailsync.agencies.models import Agency, User
        from emailsync.inbound.models import InboundAddress

        try:
            agency = Agency.objects.filter(slug=slug).first()
            if agency is None:
                raise CommandError(
                    f"No agency {slug!r} in this database. Run `emailsync seed_demo` (or give "
                    "--agency SLUG), or pass --from and --bcc."
                )
            if not bcc:
                # As on the Email Sync page: an agency's address exists once someone looks.
                bcc = InboundAddress.current_for(agency).address
            members = agency.members().order_by("id")
            if sender:
                user = members.filter(email__iexact=sender).first()
            else:
                user = members.filter(role=User.Role.RECRUITER).first() or members.first()
                if user is None:
                    raise CommandError(f"{agency.name} has no members to send as; use --from.")
                sender = user.email
            self.agency_id = agency.pk
            return (user.full_name if user else ""), agency.name, sender, bcc
        except DatabaseError as exc:
            raise CommandError(
                f"Cannot read agency {slug!r} from the database ({exc}). Use the same "
                "DATABASE_URL as `emailsync serve`, or pass --from and --bcc."
            )

    def build(self, sender, sender_name, agency_name, to, cc, subject, domain) -> EmailMessage:
        message = EmailMessage()
        local, _, host = sender.partition("@")
        message["From"] = Address(sender_name, local, host) if sender_name else sender
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Subject"] = subject
        message["Date"] = email.utils.formatdate(localtime=True)
        message["Message-ID"] = f"<{uuid.uuid4().hex}@{host}>"
        values = {
            "first": first_name(to[0]),
            "job": "Senior Software Engineer",
            "company": "Brightline Software",
            "sender": sender_name or sender,
            "agency": agency_name,
        }
        message.set_content(TEXT.format(**values))
        message.add_alternative(HTML.format(**values), subtype="html")
        return message

    def deliver(self, message, sender, bcc, options) -> None:
        host, port = options["smtp_host"], options["smtp_port"]
        self.stdout.write(f"Connecting to the SMTP listener at {host}:{port} …")
        try:
            smtp = smtplib.SMTP(host, port, local_hostname="mail.sendtest.localhost",
                                timeout=options["timeout"])  # fmt: skip
        except (OSError, smtplib.SMTPException) as exc:
            raise CommandError(
                f"Cannot connect to {host}:{port}: {exc}. Is `emailsync serve` (or "
                "`make run`) running, and on this port (--smtp-port)?"
            )
        with smtp:
            code, reply = smtp.ehlo()
            self.say("EHLO", code, reply.splitlines()[0] if reply else b"")
            code, reply = smtp.mail(sender)
            self.say(f"MAIL FROM:<{sender}>", code, reply)
            if code != 250:
                raise CommandError("The listener refused the sender.")
            code, reply = smtp.rcpt(bcc)
            self.say(f"RCPT TO:<{bcc}>", code, reply)
            if code not in (250, 251):
                raise CommandError("The listener refused the BCC address.")
            try:
                code, reply = smtp.data(message.as_bytes())
            except smtplib.SMTPDataError as exc:
                code, reply = exc.smtp_code, exc.smtp_error
            except (OSError, smtplib.SMTPException) as exc:
                raise CommandError(f"The connection failed during DATA: {exc}")
            self.say("DATA", code, reply)
        if code != 250:
            raise CommandError("The listener did not accept the email (see its reply above).")
        to = message["To"]
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        verdicts = self.verdicts(trigger_ids(text))
        refused = [v for v in verdicts if v[1] != "accepted"]
        if refused:
            # Delivered, but not a trigger that asks anyone: 250 only says it was received.
            for trigger_id, status, reason in refused:
                self.stdout.write(f"  trigger {trigger_id}: {status}: {trigger_reason(reason)}")
            raise CommandError(
                f"The listener received the email but {refused[0][1]} it, so no review request "
                "will be sent (the Email Sync page shows it, and what to change)."
            )
        self.stdout.write(
            self.style.SUCCESS(f"Accepted: a welcome email from {sender} to {to}, BCC {bcc}.")
        )
        if settings.DEBUG and getattr(settings, "DEVELOPMENT_OUTBOX", False):
            delay = " (the demo agency's is 0)" if options["agency"] == DEMO_SLUG else ""
            self.stdout.write(
                f"If the listener accepted it as a trigger (not quarantined: see Activity), the "
                f"worker sends the review request once the agency's delay has passed{delay}: "
                "see the development outbox, /dev/outbox/ (the banner's `outbox` line)."
            )

    def verdicts(self, ids: list[int]) -> list[tuple[int, str, str]]:
        """(id, status, reason) of the triggers the listener named, when the agency came from
        this command's database and so the listener's (with --from and --bcc there may be no
        database here, or another one: then the 250 is all there is to go by)."""
        if not ids or self.agency_id is None:
            return []
        from emailsync.inbound.models import Trigger

        try:
            found = Trigger.objects.filter(pk__in=ids, agency_id=self.agency_id)
            return list(found.values_list("pk", "status", "reason"))
        except DatabaseError:
            return []

    def say(self, command: str, code: int, reply) -> None:
        text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        self.stdout.write(f"  {command} → {code} {text}")
