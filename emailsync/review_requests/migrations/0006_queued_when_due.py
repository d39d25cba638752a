"""Review requests' emails are queued when they fall due, not when the request is made.

Requests made before this already have their email in the outbox; the worker's release skips
any request that has one (outbox/due_requests.py), so nothing needs rewriting here.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review_requests", "0005_signing_domains_and_rate_limit_validated"),
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
    ]
