"""Make N due review requests quickly (bulk inserts), in-process or as `python -m` for a file DB."""

import secrets
import sys
from datetime import timedelta


def seed_due(n: int, agency_name: str = "Dispatch Agency") -> list[int]:
    from django.utils import timezone

    from emailsync.agencies.models import Agency, User
    from emailsync.outbox.models import OutboundEmail, new_message_id
    from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source

    agency = Agency.objects.filter(name=agency_name).first()
    if agency is None:
        agency, _ = Agency.create_with_admin(
            name=agency_name,
            admin_email=f"admin@{secrets.token_hex(4)}.test",
            admin_name="Admin",
            password="x" * 12,
            domains=(),
        )
        EmailSyncSettings.objects.create(agency=agency, enabled=True, business_days="")
        User.objects.create_user(
            email=f"rec@{secrets.token_hex(4)}.test",
            password="x" * 12,
            full_name="Rita Recruiter",
            agency=agency,
        )
    recruiter = agency.profiles.order_by("id").last()
    now = timezone.now()
    requests = ReviewRequest.objects.bulk_create(
        [
            ReviewRequest(
                agency=agency,
                source=Source.EMAIL_SYNC,
                email=f"person{i}-{secrets.token_hex(3)}@dispatch.test",
                name=f"Person {i}",
                role="candidate" if i % 2 else "client",
                recruiter=recruiter,
                token=secrets.token_urlsafe(24),
                created_at=now - timedelta(hours=1),
                send_after=now - timedelta(minutes=5),
                queued_at=now - timedelta(minutes=5),  # their emails are queued just below
                deadline=now + timedelta(hours=71),
            )
            for i in range(n)
        ],
        batch_size=1000,
    )
    OutboundEmail.objects.bulk_create(
        [
            OutboundEmail(
                kind=OutboundEmail.Kind.REVIEW_REQUEST,
                template="review_request",
                agency=agency,
                review_request=r,
                to_email=r.email,
                to_name=r.name,
                send_after=r.send_after,
                message_id=new_message_id(),
            )
            for r in requests
        ],
        batch_size=1000,
    )
    return [r.pk for r in requests]


if __name__ == "__main__":
    import django

    django.setup()
    seed_due(int(sys.argv[1]))
