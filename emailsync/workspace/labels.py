"""Plain-language (translated) words for the reason codes and verdicts the agency sees.

The codes themselves are defined by the inbound app (`TRIGGER_REASONS`, `RECIPIENT_REASONS`,
structured data's `PROBLEMS`); this is their wording in the agency app. An unknown code falls
back to the inbound text.
"""

from django.utils.translation import gettext_lazy as _

from emailsync.inbound.ingest import TRIGGER_REASONS
from emailsync.inbound.recipients import RECIPIENT_REASONS
from emailsync.inbound.structured import PROBLEMS, problem_codes

RECIPIENT = {
    "inbound_address": _("It is an Email Sync BCC address."),
    "sender": _("It is the sender of the email."),
    "colleague": _("It belongs to your agency (your domain or a team member)."),
    "role_address": _("It is a role or no-reply address, or a CRM's logging address."),
    "undeliverable": _("The address cannot receive email from the internet."),
    "unsendable_address": _(
        "Email Sync cannot yet send to an address with non-ASCII characters before the @: "
        "ask the person for another address."
    ),
    "suppressed": _("The person unsubscribed, or mail to them bounced."),
    "recently_asked": _("You asked them within your dedupe window."),
    "bulk_send": _("The email went to more people than your recipient cap."),
    "setup_test_preview": _("Would be invited; a setup test only asks the admin who sent it."),
    "quarantined": _("Would be invited if you release the email from quarantine."),
    "setup_test": _("You: a setup test request, sent at once."),
    "sender_blocked": _("You blocked the sender."),
    "duplicate": _("Listed twice: asked once, as the first entry says."),
}

TRIGGER = {
    "auto_submitted": _("An automatic message, such as an out-of-office reply."),
    "precedence_bulk": _("Marked as bulk or list mail."),
    "mailing_list": _("Mailing-list traffic."),
    "delivery_report": _("A bounce or delivery report."),
    "too_old": _("The email is dated more than seven days ago."),
    "header_defects": _("The From, To or Cc header could not be read reliably."),
    "email_sync_off": _("Email Sync is switched off."),
    "sender_blocked": _("You blocked this sender."),
    "sender_not_agency": _("The sender is not on your domains or team."),
    "sender_unauthenticated": _("Your domain did not authenticate the email (no valid DKIM)."),
    "bulk_send": _("More recipients than your cap."),
    "no_recipients": _("Every recipient was excluded by the rules."),
}

# What could not be read in a trigger skipped as `header_defects` (codes of inbound/headers.py:
# the header, then the problem). Which header and what kind of problem, never its content.
HEADER_NAMES = {"from": "From", "to": "To", "cc": "Cc"}
HEADER_PROBLEMS = {
    "missing": _("the header is missing."),
    "duplicated": _("the header appears more than once."),
    "multiple": _("it names more than one sender."),
    "no_mailbox": _("it names no single mailbox (only a group, for example)."),
    "parse_defect": _("an address is not well-formed (a missing > or quote, for example)."),
    "no_domain": _("an address has no domain after the @."),
    "no_local_part": _("an address has nothing before the @."),
    "control_char": _("it contains control characters (a line break or NUL, for example)."),
    "invalid_utf8": _("it contains text that is not valid UTF-8."),
    "idna_invalid": _("an address has an international domain name that is not valid."),
    "too_long": _("the header is too long to read safely."),
    "unparseable": _("the header could not be parsed."),
}
HEADER_BLOCK = {
    "headers_malformed": _(
        "The header block is malformed: a line that is not a header, or a carriage return "
        "without a line feed, which mail systems read differently."
    ),
    "headers_truncated": _("The header block is too large to read."),
    "headers_unparseable": _("The header block could not be parsed."),
}

# Problems with the structured data an ATS template put in the email (docs/STRUCTURED_DATA.md).
# They describe the problem only: the email's content is never shown.
STRUCTURED = {
    "structured_invalid_json": _("The structured data block is not valid JSON, so it was ignored."),
    "structured_not_object": _(
        "The structured data is not a JSON object ({…}), so it was ignored."
    ),
    "structured_too_large": _("The structured data is over 16 KiB, so it was ignored."),
    "structured_unterminated": _(
        "A structured data block has a BEGIN EMAILSYNC line but no END line, so it was ignored."
    ),
    "structured_part_too_large": _(
        "A text or HTML part over 1 MiB was not searched for structured data."
    ),
    "structured_bad_placement_ref": _(
        "The placement reference in the structured data is not valid (for example empty or over "
        "100 characters), so it was ignored."
    ),
    "structured_bad_role": _(
        "A role in the structured data is not “candidate” or “client”, so it was ignored."
    ),
    "structured_bad_recruiter_email": _(
        "The recruiter email in the structured data is not exactly one email address, so it was "
        "ignored."
    ),
    "structured_bad_recipient_name": _(
        "A recipient name in the structured data is not text or is over 200 characters, so it "
        "was ignored."
    ),
    "structured_bad_recipients": _(
        "“recipients” in the structured data is not a list, so it was ignored."
    ),
    "structured_bad_recipient": _(
        "A “recipients” entry in the structured data has no valid email address, so it was ignored."
    ),
    "structured_too_many_recipients": _(
        "The structured data lists more than 50 “recipients”; the rest were ignored."
    ),
    "structured_conflict": _(
        "An X-EmailSync header and the structured data in the body disagree; the header was used."
    ),
    "structured_unreadable": _(
        "The email's structure could not be read, so no structured data was used."
    ),
}

# What to do about a failed verdict, in the admin's words.
FIX = {
    "sender_not_agency": _(
        "Send the test from an address on one of your verified domains, or add this address to "
        "a team member (Team → Manage → Sends from). Add your domain under Settings if missing."
    ),
    "sender_unauthenticated": _(
        "Turn on DKIM signing for your domain (Google Workspace: Admin console → Apps → Gmail → "
        "Authenticate email; Microsoft 365: Defender → Email authentication → DKIM). If an ATS "
        "sends for you, add its signing domain under Trusted signing domains. As a last resort, "
        "tick “Trust the From domain alone”."
    ),
    "email_sync_off": _("Switch Email Sync on above, then send the test again."),
    "sender_blocked": _("You blocked this address. Unblock it under Blocked senders on this page."),
}

# When the domain did sign, but the content changed on the way, turning DKIM on is not the fix.
CHANGED_AFTER_SIGNING = _(
    "Your domain signed the email, but its content changed after it was signed: usually a mail "
    "gateway that adds a footer or disclaimer after signing, or a relay that re-wrapped lines "
    "longer than 998 characters. Have the footer added before signing (or skip it for these "
    "emails), and have your ATS send HTML as quoted-printable or base64."
)


def fix_for(reason: str, detail: str = "") -> str:
    """What to do about a failed verdict; the verdict's detail can say more than its reason."""
    if reason == "sender_unauthenticated" and "(body_hash_mismatch)" in (detail or ""):
        return str(CHANGED_AFTER_SIGNING)
    return str(FIX.get(reason, ""))


AUTH_METHOD = {
    "dkim_aligned": _("Signed with DKIM by your own domain. Nothing to fix."),
    "authres_dmarc": _("Your mail gateway reported DMARC pass. Nothing to fix."),
    "authres_dkim_aligned": _("Your mail gateway reported an aligned DKIM pass. Nothing to fix."),
    "dkim_trusted_signer": _("Signed with DKIM by one of your trusted signing domains."),
    "trusted_from_domain": _(
        "Accepted on the From domain alone (“Trust the From domain alone” is on). Turning on "
        "DKIM signing is safer: anyone can forge a From address."
    ),
}

ACTIONS = {
    "review.verified": _("Verified a review"),
    "review.auto_verified": _("Verified a review automatically (placement reference)"),
    "review.rejected": _("Rejected a review"),
    "review.verification_undone": _("Undid a verification"),
    "review.rejection_undone": _("Undid a rejection"),
    "reviews.manual_request": _("Sent a manual request"),
    "invite.edited": _("Edited a scheduled invite"),
    "invite.cancelled": _("Cancelled a scheduled invite"),
    "invite.sent_now": _("Sent a scheduled invite now"),
    "placement.created": _("Added a placement"),
    "placement.edited": _("Edited a placement"),
    "placements.import_started": _("Started a placement import"),
    "placements.imported": _("Imported placements"),
    "placements.settings_changed": _("Changed verification settings"),
    "email_sync.enabled": _("Switched Email Sync on"),
    "email_sync.disabled": _("Switched Email Sync off"),
    "email_sync.settings_changed": _("Changed Email Sync settings"),
    "email_sync.address_rotated": _("Rotated the BCC address"),
    "email_sync.setup_test_started": _("Started a setup test"),
    "email_sync.setup_test_stopped": _("Stopped a setup test"),
    "email_sync.trigger_released": _("Released an email from quarantine"),
    "email_sync.sender_blocked": _("Blocked a sender"),
    "email_sync.sender_unblocked": _("Unblocked a sender"),
    "email_sync.sender_mapped": _("Mapped a sender to a recruiter"),
    "email_sync.help_requested": _("Asked the operators for help"),
    "member.role_changed": _("Changed a member's role"),
    "member.invited": _("Invited someone"),
    "member.joined": _("Joined"),
    "member.removed": _("Removed a member"),
    "member.invitation_revoked": _("Withdrew an invitation"),
    "member.sender_added": _("Added a sending address"),
    "member.sender_removed": _("Removed a sending address"),
    "agency.created": _("Created the agency"),
    "privacy.erased": _("Erased a person's data at their request"),
    "agency.settings_changed": _("Changed agency settings"),
    "agency.domain_added": _("Added a domain"),
    "agency.domain_removed": _("Removed a domain"),
    "reviews.notifications_changed": _("Changed review notifications"),
    "review.reply_published": _("Published a public reply to a review"),
    "review.reply_edited": _("Edited a public reply"),
    "review.reply_removed": _("Removed a public reply"),
    "review.hidden": _("Hid a review from the public pages (operators)"),
    "review.unhidden": _("Showed a hidden review again (operators)"),
    "email_sync.address_leaked": _("A stranger used the BCC address (nothing was sent)"),
    "email_sync.leak_alert_dismissed": _("Dismissed a leaked-address alert"),
    "api.key_created": _("Created an API key"),
    "api.key_revoked": _("Revoked an API key"),
    "api.method_changed": _("Changed how the ATS connects"),
    "api.webhook_deleted": _("Deleted a webhook"),
    "api.webhook_redelivered": _("Redelivered a webhook event"),
    "api.webhook_secret_rotated": _("Rotated a webhook secret"),
}


def recipient_reason(code: str) -> str:
    if not code:
        return ""
    return str(RECIPIENT.get(code) or TRIGGER.get(code) or RECIPIENT_REASONS.get(code, code))


def trigger_reason(code: str) -> str:
    if not code:
        return ""
    return str(TRIGGER.get(code) or TRIGGER_REASONS.get(code, code))


def structured_problem(code: str) -> str:
    if not code:
        return ""
    return str(STRUCTURED.get(code) or PROBLEMS.get(code, code))


def structured_problems(stored: str) -> list[tuple[str, str]]:
    """(code, words) for each problem a trigger stored with its structured data."""
    return [(code, structured_problem(code)) for code in problem_codes(stored)]


def header_defect(code: str) -> str:
    """`to_no_domain` -> "To: an address has no domain after the @." """
    if code in HEADER_BLOCK:
        return str(HEADER_BLOCK[code])
    header, _sep, problem = code.partition("_")
    if header in HEADER_NAMES and problem in HEADER_PROBLEMS:
        return f"{HEADER_NAMES[header]}: {HEADER_PROBLEMS[problem]}"
    return code


def header_defects(stored: str) -> list[tuple[str, str]]:
    """(code, words) for each header defect a skipped trigger stored."""
    return [(code, header_defect(code)) for code in problem_codes(stored)]


# What an audit entry's stored detail says, for the keys worth a line (others, such as ids and
# hashes, are for support and stay out of the page).
AUDIT_DETAILS = {
    "address": _("address"),
    "recruiter": _("recruiter"),
    "role": _("role"),
    "fields": _("changed"),
    "reason": _("reason"),
    "placement": _("placement"),
    "placement_ref": _("placement reference"),
}
# Counts that say what an action credited, for the actions that credit.
CREDITED = {"requests": _("requests credited"), "reviews": _("reviews credited")}
CREDITING_ACTIONS = {"member.sender_added", "email_sync.sender_mapped"}
ASKING_ACTIONS = {"reviews.manual_request", "reviews.api_request"}


def audit_subject(action: str, subject: str) -> str:
    """The entry's subject as a person reads it: a manual request's "1/3" is who was asked."""
    if action in ASKING_ACTIONS:
        invited, slash, total = subject.partition("/")
        if slash and invited.isdigit() and total.isdigit():
            return _("%(invited)s of %(total)s people asked") % {
                "invited": invited,
                "total": total,
            }
    return subject


def audit_details(action: str, detail: dict) -> str:
    """The detail worth showing, as "label: value" pairs."""
    shown = dict(AUDIT_DETAILS)
    if action in CREDITING_ACTIONS:
        shown.update(CREDITED)
    parts = []
    for key, label in shown.items():
        value = (detail or {}).get(key)
        if value in (None, "", [], 0):
            continue
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{label}: {value}")
    return " · ".join(parts)


def action_label(code: str) -> str:
    return str(ACTIONS.get(code, code))
