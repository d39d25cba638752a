"""The trigger email's content passes through and is never stored or logged; only a setup
test's subject is kept. Proved with a unique marker, a full database dump and every log line."""

import logging
import secrets
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from emailsync.review_requests.models import EmailSyncSettings

from .mail import FakeDns, SigningKey, build


def database_dump() -> str:
    """Every row of every table, as text."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_body_subject_and_attachments_leave_no_trace(
    listener, sync_agency, acme_key, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    marker = "PRIVACY-" + secrets.token_hex(8)
    raw = acme_key.sign(
        build(
            to=("Cara <cara@candidate.test>",),
            subject=f"Offer letter {marker}",
            body=f"Salary details {marker}\nPlease keep this private.\n",
            html=f"<p>Private {marker}</p>",
            extra_headers=[("X-Secret-Header", marker), ("Reply-To", "sam@acme.test")],
        )
    )
    code, _ = listener.send(raw, [sync_agency.bcc])
    assert code == 250
    out, err = capfd.readouterr()
    assert marker not in database_dump()
    assert marker not in caplog.text and marker not in out and marker not in err
    token = sync_agency.bcc.split("@")[0].rsplit("-", 1)[1]
    assert token not in caplog.text and token not in out and token not in err


def test_setup_test_keeps_only_the_subject(listener, sync_agency, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    admin = sync_agency.admins().get()
    key = SigningKey(admin.email.split("@")[1])
    listener.state.dnsfunc = FakeDns(key)
    EmailSyncSettings.objects.filter(agency=sync_agency).update(
        setup_test_until=timezone.now() + timedelta(minutes=30)
    )
    subject_marker = "SUBJECT-" + secrets.token_hex(8)
    body_marker = "BODY-" + secrets.token_hex(8)
    raw = key.sign(
        build(
            sender=f"Admin <{admin.email}>",
            to=(admin.email,),
            subject=f"Setup test {subject_marker}",
            body=f"Hello {body_marker}\n",
        )
    )
    assert listener.send(raw, [sync_agency.bcc])[0] == 250
    out, err = capfd.readouterr()
    dump = database_dump()
    assert dump.count(subject_marker) == 1  # the trigger's subject field, nowhere else
    assert body_marker not in dump
    for text in (caplog.text, out, err):
        assert subject_marker not in text and body_marker not in text
