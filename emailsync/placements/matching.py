"""Which placement is this review about? Suggestions, best first.

Signals, strongest first: the placement reference the ATS sent equals the placement's reference;
the reviewer's email is the placement's candidate or client-contact email; the same recruiter;
the start date near the trigger email; a similar name. Candidates are read in one query (the
agency's placements that share any of the strong signals, plus those starting near the trigger),
scored in Python.
"""

from dataclasses import dataclass
from datetime import timedelta
from difflib import SequenceMatcher

from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from emailsync.review_requests.models import mailbox

from .models import Placement

NEAR_DAYS = 60
CANDIDATES = 300
SAME_NAME = 0.9  # "Jon Smith" and "John Smith"; not "Jane Smith"


@dataclass
class Suggestion:
    placement: Placement
    score: int
    why: list[str]
    # Something names this placement's person: the reference, the reviewer's email or a
    # nearly identical name. Recruiter and date alone fit many placements.
    identifies: bool = False
    by_reference: bool = False
    # Offered as the one-click answer: the best suggestion, when it is the only one that
    # identifies the reviewer (a client contact is on every placement for that client, and
    # a candidate may have been placed twice) or it has the ATS's placement reference.
    one_click: bool = False
    # Someone else's candidate review is already verified with this placement: a placement
    # has one candidate, so this reviewer is probably another person with a similar name
    # (clients may be several: a hiring manager and HR). `_by` is that reviewer's address,
    # "" when their data was erased.
    candidate_reviewed: bool = False
    candidate_reviewed_by: str = ""


def similarity(a: str, b: str) -> float:
    a, b = " ".join(a.lower().split()), " ".join(b.lower().split())
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b).ratio()


def suggest(review, limit: int = 5) -> list[Suggestion]:
    request = review.review_request
    anchor = request.created_at.date()
    email = mailbox(review.reviewer_email)  # placements store addresses lower-cased
    near = Q(
        start_date__range=(anchor - timedelta(days=NEAR_DAYS), anchor + timedelta(days=NEAR_DAYS))
    )
    strong = Q(candidate_email=email) | Q(client_contact_email=email)
    if review.placement_ref:
        strong |= Q(external_ref=review.placement_ref)
    if review.recruiter_id:
        near &= Q(recruiter_id=review.recruiter_id) | Q(recruiter__isnull=True)
    pool = list(
        Placement.objects.filter(agency_id=review.agency_id)
        .filter(strong | near)
        .select_related("recruiter")
        .order_by("-start_date", "-id")[:CANDIDATES]
    )
    scored = [score(review, p, anchor) for p in pool]
    scored = [s for s in scored if s.score > 0]
    if review.role == "candidate":
        note_candidates_reviewed(review, scored)
    # A placement another person's candidate review is verified with goes below the others,
    # warning and all (it was ranked first, and one click attached a second candidate to it),
    # unless something names this reviewer on it: then it keeps its place, with its warning.
    scored.sort(
        key=lambda s: (s.candidate_reviewed and not s.identifies, -s.score, -(s.placement.pk))
    )
    if scored:
        top = scored[0]
        top.one_click = not top.candidate_reviewed and (
            top.by_reference or (top.identifies and sum(s.identifies for s in scored) == 1)
        )
    return scored[:limit]


def note_candidates_reviewed(review, suggestions: list[Suggestion]) -> None:
    """Mark the placements a different person's candidate review is already verified with."""
    reviewed_by = candidate_reviews(review, [s.placement for s in suggestions])
    for suggestion in suggestions:
        placement_id = suggestion.placement.pk
        suggestion.candidate_reviewed = placement_id in reviewed_by
        suggestion.candidate_reviewed_by = reviewed_by.get(placement_id, "")


def candidate_reviews(review, placements) -> dict[int, str]:
    """{placement id: reviewer's address} for those of `placements` a different person's
    candidate review is verified with ("" when that reviewer's data was erased)."""
    from emailsync.reviews.models import Review  # reviews depend on placements, not back

    if not placements:
        return {}
    verified = (
        Review.objects.filter(
            agency_id=review.agency_id,
            placement__in=placements,
            status=Review.Status.VERIFIED,
            role="candidate",
        )
        .exclude(reviewer_email__iexact=review.reviewer_email)
        .order_by("verified_at", "pk")
        .values_list("placement_id", "reviewer_email")
    )
    reviewed_by: dict[int, str] = {}
    for placement_id, email in verified:  # an erased reviewer's address is blank
        reviewed_by[placement_id] = reviewed_by.get(placement_id) or email
    return reviewed_by


def score(review, placement: Placement, anchor) -> Suggestion:
    points, why, identifies, by_reference = 0, [], False, False
    if review.placement_ref and placement.external_ref == review.placement_ref:
        points += 100
        why.append(_("same placement reference"))
        identifies = by_reference = True
    if placement.records_address(review.reviewer_email):
        points += 60
        why.append(_("reviewer's email"))
        identifies = True
    if review.recruiter_id and placement.recruiter_id == review.recruiter_id:
        points += 20
        why.append(_("same recruiter"))
    if placement.start_date:
        days = abs((placement.start_date - anchor).days)
        if days <= NEAR_DAYS:
            points += round(15 * (1 - days / NEAR_DAYS)) + 1
            why.append(
                ngettext(
                    "started %(days)s day from the email",
                    "started %(days)s days from the email",
                    days,
                )
                % {"days": days}
            )
    name = review.reviewer_name or review.review_request.name
    best = max(
        similarity(name, placement.candidate_name), similarity(name, placement.client_contact_name)
    )
    if best >= 0.6:
        points += round(15 * best)
        why.append(_("similar name"))
        # "Jane Smith" and "John Smith" are 0.8 alike: only a near-identical name says who.
        identifies = identifies or best >= SAME_NAME
    return Suggestion(placement, points, why, identifies, by_reference)


def search(agency, query: str, limit: int | None = 20):
    qs = Placement.objects.filter(agency=agency).select_related("recruiter")
    query = query.strip()
    if query:
        qs = qs.filter(
            Q(candidate_name__icontains=query)
            | Q(candidate_email__icontains=query)
            | Q(client_company__icontains=query)
            | Q(client_contact_name__icontains=query)
            | Q(client_contact_email__icontains=query)
            | Q(job_title__icontains=query)
            | Q(external_ref__icontains=query)
        )
    return qs if limit is None else qs[:limit]
