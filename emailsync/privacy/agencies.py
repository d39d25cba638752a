"""Deleting an agency with all its data (`emailsync agency delete SLUG --yes`).

Every table that holds an agency's data points at `Agency` with `on_delete=CASCADE`, directly
or through its parent row, so one `delete()` removes it all in one transaction;
`tests/privacy/test_agency_delete.py` checks every model for leftovers. What a cascade cannot
reach is removed here too: uploaded logos and recruiter photos (files, after the commit), the
members' sessions and their sign-in throttling counters, and queued emails to the members that
carry no agency key.
"""

import logging

from django.contrib.sessions.models import Session
from django.db import transaction

from emailsync.agencies.models import Agency
from emailsync.outbox.models import OutboundEmail
from emailsync.reviews.models import Review
from emailsync.throttling.models import Counter

log = logging.getLogger("emailsync.privacy")


def _member_sessions(user_ids: set[str]) -> list[str]:
    keys = []
    for session in Session.objects.iterator():
        if str(session.get_decoded().get("_auth_user_id", "")) in user_ids:
            keys.append(session.session_key)
    return keys


def delete_agency(agency: Agency) -> dict:
    """Delete `agency` and everything it owns; returns the number of rows per model."""
    with transaction.atomic():
        # First, and before anything is collected: the SMTP listener's rows carry no database
        # constraint to the agency, and this lock is what a batch in flight waits for or
        # finishes before (inbound/known.py), so no trigger or request outlives the agency.
        agency = Agency.objects.select_for_update().get(pk=agency.pk)
        members = list(agency.users.values_list("pk", "email"))
        emails = [email for _pk, email in members]
        files = [agency.logo.name] if agency.logo else []
        files += [p.photo.name for p in agency.profiles.exclude(photo="") if p.photo]
        storage = agency.logo.storage
        sessions = _member_sessions({str(pk) for pk, _email in members})
        Session.objects.filter(session_key__in=sessions).delete()
        for email in emails:
            Counter.objects.filter(key__icontains=email.lower()).delete()
        OutboundEmail.objects.filter(agency__isnull=True, to_email__in=emails).delete()
        slug = agency.slug
        # Review.placement is PROTECT (a verified review must not lose its placement); the
        # whole agency is going, so unhook them first or the cascade refuses.
        Review.objects.filter(agency=agency, placement__isnull=False).update(placement=None)
        _total, per_model = agency.delete()

        def remove_files():
            for name in files:
                try:
                    storage.delete(name)
                except OSError:  # already gone, or not ours to remove: the rows are what count
                    log.warning("agency %s: could not remove an uploaded file", slug)

        transaction.on_commit(remove_files)
    log.info("agency %s deleted: %d rows", slug, _total)
    return {"slug": slug, "deleted": {k: v for k, v in sorted(per_model.items()) if v}}
