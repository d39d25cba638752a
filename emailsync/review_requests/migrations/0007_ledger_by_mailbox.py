"""The dedupe ledger goes by mailbox: an entry for jo+jobs@x becomes one for jo@x.

Two entries that land on one mailbox keep the later ask, so the window counts from the most
recent time anyone asked that person.
"""

from django.db import migrations


def untagged(email: str) -> str:
    local, _, domain = email.strip().lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def fold_tagged_entries(apps, schema_editor):
    AskedRecipient = apps.get_model("review_requests", "AskedRecipient")
    for entry in AskedRecipient.objects.filter(email__contains="+").order_by("id").iterator():
        key = untagged(entry.email)
        if key == entry.email:
            continue
        kept = AskedRecipient.objects.filter(agency_id=entry.agency_id, email=key).first()
        if kept is None:
            AskedRecipient.objects.filter(pk=entry.pk).update(email=key)
            continue
        if entry.last_asked_at > kept.last_asked_at:
            AskedRecipient.objects.filter(pk=kept.pk).update(last_asked_at=entry.last_asked_at)
        AskedRecipient.objects.filter(pk=entry.pk).delete()


class Migration(migrations.Migration):
    dependencies = [("review_requests", "0006_queued_when_due")]

    operations = [migrations.RunPython(fold_tagged_entries, migrations.RunPython.noop)]
