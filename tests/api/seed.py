"""One agency with a bit of everything the API returns, and a key for it."""

from dataclasses import dataclass
from datetime import date

from django.utils import timezone

from emailsync.api.models import ApiKey
from emailsync.placements.models import Placement
from emailsync.review_requests.manual import Person, request_manually
from emailsync.review_requests.models import Source
from emailsync.reviews.models import Review
from tests.api.conftest import enable_api
from tests.profiles.conftest import request_for, review_for


@dataclass
class Seeded:
    agency: object
    key: str
    placement: Placement
    review: Review
    request_id: int
    trigger_id: int


def seed_agency(make_agency, add_member, name="Seeded Recruitment", domain="seeded.test"):
    agency = make_agency(name=name, domains=[domain])
    enable_api(agency)
    member = add_member(agency)
    placement = Placement.objects.create(
        agency=agency,
        external_ref=f"{domain}-PL-1",
        candidate_name="Pat Placed",
        candidate_email=f"pat@{domain}.example",
        start_date=date(2025, 3, 3),
        recruiter=member.profile,
    )
    rr = request_for(agency, member.profile)
    rr.save()
    review = review_for(agency, rr, member.profile)
    review.save()
    trigger, outcomes = request_manually(
        agency,
        [Person(f"cara@{domain}.example", "Cara", "candidate"), Person("noreply@example.org")],
        by=None,
        recruiter=member.profile,
        source=Source.API,
        sender=member.email,
        now=timezone.now(),
    )
    _row, key = ApiKey.issue(agency, "seed")
    request = next(o.request for o in outcomes if o.request)
    return Seeded(agency, key, placement, review, request.pk, trigger.pk)
