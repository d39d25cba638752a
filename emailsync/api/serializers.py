"""Plain dicts of our objects, as the API returns them and as webhooks carry them."""


def recruiter(profile) -> dict | None:
    if profile is None:
        return None
    return {"id": profile.pk, "name": profile.display_name, "email": profile.user.email}


def placement(p) -> dict:
    return {
        "id": p.pk,
        "external_ref": p.external_ref,
        "candidate_name": p.candidate_name,
        "candidate_email": p.candidate_email,
        "client_company": p.client_company,
        "client_contact_name": p.client_contact_name,
        "client_contact_email": p.client_contact_email,
        "job_title": p.job_title,
        "start_date": p.start_date,
        "recruiter": recruiter(p.recruiter),
        "created_at": p.created_at,
    }


# Review statuses the API shows (GET /reviews): one still waiting for the reviewer's confirmation
# is not listed, so a request does not point at it either.
LISTED_REVIEW_STATUSES = ("missing_verification", "verified", "rejected")


def review_request(rr) -> dict:
    review = getattr(rr, "review", None) if _has_review(rr) else None
    if review is not None and review.status not in LISTED_REVIEW_STATUSES:
        review = None
    return {
        "id": rr.pk,
        "email": rr.email,
        "name": rr.name,
        "role": rr.role or None,
        "source": rr.source,
        "status": rr.status,
        "status_reason": rr.status_reason,
        "recruiter": recruiter(rr.recruiter),
        "placement_ref": rr.placement_ref,
        "created_at": rr.created_at,
        "send_after": rr.send_after,
        "deadline": rr.deadline,
        "sent_at": rr.sent_at,
        "opened_at": rr.opened_at,
        "completed_at": rr.completed_at,
        "expires_at": rr.expires_at,
        "review_id": review.pk if review is not None else None,
    }


def _has_review(rr) -> bool:
    from django.core.exceptions import ObjectDoesNotExist

    try:
        rr.review  # noqa: B018 - a reverse one-to-one raises when absent
    except ObjectDoesNotExist:
        return False
    return True


def review(r) -> dict:
    return {
        "id": r.pk,
        "status": r.status,
        "rating": r.rating,
        "text": r.text,
        "role": r.role,
        "reviewer_name": r.reviewer_name,
        "display_name": r.display_name,
        "reviewer_email": r.reviewer_email,
        "recommend": r.recommend,
        "recruiter": recruiter(r.recruiter),
        "placement_ref": r.placement_ref,
        "placement_id": r.placement_id,
        "review_request_id": r.review_request_id,
        "submitted_at": r.submitted_at,
        "verified_at": r.verified_at,
        "rejected_at": r.rejected_at,
        "rejected_reason": r.rejected_reason,
    }


def trigger(t) -> dict:
    return {
        "id": t.pk,
        "source": t.source,
        "received_at": t.received_at,
        "status": t.status,
        "reason": t.reason,
        "sender": t.sender,
        "recruiter": recruiter(t.recruiter),
        "placement_ref": t.placement_ref,
        "recipients": [
            {
                "email": r.email,
                "name": r.name,
                "role": r.role or None,
                "outcome": r.outcome,
                "reason": r.reason,
                "review_request_id": r.review_request_id,
            }
            for r in t.recipients.all()
        ],
    }
