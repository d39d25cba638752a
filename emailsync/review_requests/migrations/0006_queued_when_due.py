"""Review requests' emails are queued when they fall due, not when the request is made.

Requests made before this already have their email in the outbox: they are marked queued (at
their creation) so the worker does not queue them a second time.
"""

from django.db import migrations, models


def mark_already_queued(apps, schema_editor):
    ReviewRequest = apps.get_model("review_requests", "ReviewRequest")
    OutboundEmail = apps.get_model("outbox", "OutboundEmail")
    queued = OutboundEmail.objects.filter(kind="review_request", review_request__isnull=False)
    ReviewRequest.objects.filter(
        id__in=queued.values("review_request_id"), queued_at__isnull=True
    ).update(queued_at=models.F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("review_requests", "0005_signing_domains_and_rate_limit_validated"),
        ("outbox", "0004_no_pattern_indexes_on_exact_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="reviewrequest",
            name="queued_at",
            field=models.DateTimeField(
                blank=True,
                editable=False,
                help_text="When it fell due and its email was queued for sending.",
                null=True,
            ),
        ),
        migrations.RunPython(mark_already_queued, migrations.RunPython.noop, elidable=True),
    ]
