"""Inbound mail through an ESP: django-anymail's inbound webhooks feed the same `ingest` as our
SMTP listener.

URLs (anymail's): /anymail/postmark/inbound/, /anymail/mailgun/inbound_mime/ (or inbound/),
/anymail/amazon_ses/inbound/, /anymail/sendgrid/inbound/. anymail checks the shared
ANYMAIL_WEBHOOK_SECRET (HTTP basic auth in the URL the ESP posts to) and, for Mailgun, the
webhook signing key, before this receiver runs; until the secret is set the URLs are closed
(esp_urls.py).

The raw MIME message is taken from the ESP's payload where it sends one (Postmark with "include
raw email", Mailgun's MIME route, SES's SNS action, SendGrid's "send raw"), so DKIM verifies
exactly as over SMTP. Without it we use anymail's reconstruction: the headers are the same, but
a DKIM signature cannot verify and the trigger is judged like unsigned mail.

Envelope recipients: SES and SendGrid report all of them; Postmark and Mailgun only the one that
matched. Either way we add every address on our inbound domain found in Delivered-To,
X-Original-To, To and Cc, so the agency is found even when the BCC copy arrives with the first
envelope recipient only. Any error propagates: anymail answers 5xx and the ESP retries, like
`451` over SMTP (a retry with the same Message-ID creates nothing new). An agency that has used
up its hourly flood limit is answered 503 with Retry-After, as `450 4.7.1` over SMTP.
"""

import contextlib
import json
import logging

from anymail.signals import inbound
from django.db import DatabaseError
from django.dispatch import receiver

from emailsync.inbound import flood_limit
from emailsync.inbound.addresses import parse_recipient
from emailsync.inbound.evidence import gather_evidence
from emailsync.inbound.headers import parse_address_values, split_message
from emailsync.inbound.ingest import ingest
from emailsync.operations.outages import NotRecorded

log = logging.getLogger("emailsync.esp")

RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "X-Forwarded-To", "To", "Cc")
MAX_RECIPIENTS = 20
DNSFUNC = None  # DKIM key lookups: None is the configured resolver (tests inject a fake)


class FloodLimited(Exception):
    """An agency the message is for has used up its hourly flood limit."""

    def __init__(self, agencies: list[int]):
        super().__init__(f"hourly limit used up for agencies {agencies}")
        self.agencies = agencies


def raw_message(event, esp_name: str) -> tuple[bytes, bool]:
    """The message as received, and whether it is the ESP's original bytes."""
    esp = event.esp_event
    try:
        if esp_name == "Postmark" and isinstance(esp, dict) and esp.get("RawEmail"):
            return esp["RawEmail"].encode("utf-8", "surrogateescape"), True
        if esp_name == "Mailgun" and "body-mime" in getattr(esp, "POST", {}):
            return esp.POST["body-mime"].encode("utf-8", "surrogateescape"), True
        if esp_name == "SendGrid" and "email" in getattr(esp, "POST", {}):
            return esp.POST["email"].encode("utf-8", "surrogateescape"), True
    except (AttributeError, KeyError, TypeError):
        pass
    message = event.message
    if esp_name == "Amazon SES" and isinstance(esp, dict) and esp.get("content"):
        content = esp["content"]
        encoding = (esp.get("receipt", {}).get("action", {}).get("encoding") or "").upper()
        if encoding == "BASE64":
            import base64

            return base64.b64decode(content.encode("ascii")), True
        return content.encode("utf-8", "surrogateescape"), True
    return message.as_bytes(), False


def envelope_recipients(event, esp_name: str, header_values) -> list[str]:
    found: list[str] = []
    esp = event.esp_event
    if esp_name == "Amazon SES" and isinstance(esp, dict):
        found += list(esp.get("receipt", {}).get("recipients", []) or [])
    if esp_name == "SendGrid" and "envelope" in getattr(esp, "POST", {}):
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            found += list(json.loads(esp.POST["envelope"]).get("to", []) or [])
    first = getattr(event.message, "envelope_recipient", None)
    if first:
        found.append(first)
    for value in header_values:
        for _name, address in value:
            if parse_recipient(address).kind == "agency":
                found.append(address)
    unique = list(dict.fromkeys(a.strip().lower() for a in found if a and "@" in a))
    return [a for a in unique if parse_recipient(a).kind == "agency"][:MAX_RECIPIENTS]


def handle(event, esp_name: str, dnsfunc=None) -> list:
    raw, original = raw_message(event, esp_name)
    header, body = split_message(raw)
    message = event.message
    # The inbound parser, not email.utils.getaddresses (CVE-2023-27043 on this Python).
    values = [
        [(a.display_name, a.addr_spec) for a in parse_address_values(message.get_all(name, []))]
        for name in RECIPIENT_HEADERS
    ]
    recipients = envelope_recipients(event, esp_name, values)
    if not recipients:
        log.info("inbound from %s for no agency address: ignored", esp_name)
        return []
    over = flood_limit.agencies_over_limit(parse_recipient(a).token for a in recipients)
    if over:  # as `450 4.7.1` over SMTP: the ESP retries later (esp_urls.py answers 503)
        raise FloodLimited(over)
    # No MTA of ours saw this message, so none removed a forged Authentication-Results naming
    # our front MTA (which the SMTP path may trust): here only our own DKIM check counts.
    evidence = gather_evidence(header, body, dnsfunc=dnsfunc, trusted_authserv_ids=())
    source = "esp:" + esp_name.lower().replace(" ", "_")
    # The ESP's envelope sender, where it gives one: "" or "<>" is the null reverse-path of
    # bounces and automatic replies.
    envelope_sender = getattr(event.message, "envelope_sender", None)
    null_sender = envelope_sender is not None and not envelope_sender.strip(" <>")
    results = ingest(recipients, header, body, evidence, source=source, null_sender=null_sender)
    log.info(
        "inbound from %s (%s): %s",
        esp_name,
        "raw" if original else "rebuilt",
        [r.status for r in results],
    )
    return results


@receiver(inbound, dispatch_uid="emailsync.api.esp_inbound")
def on_inbound(sender, event, esp_name, **kwargs):
    try:
        handle(event, esp_name, dnsfunc=DNSFUNC)
    except (FloodLimited, DatabaseError):
        raise  # answered 503 by esp_urls.py: the ESP retries later
    except Exception as exc:
        raise NotRecorded(f"inbound from {esp_name} not recorded") from exc
