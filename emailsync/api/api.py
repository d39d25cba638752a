"""The REST API, /api/v1/ (django-ninja). docs/API.md is the guide; /api/v1/docs the reference.

Every operation is scoped to the agency of the API key (`request.agency`, set by `ApiKeyAuth`):
objects are only ever looked up through `agency_qs`, so another agency's id is a plain 404.
"""

import base64
import binascii
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import Q
from ninja import NinjaAPI, Path, Query, Router, Status

from emailsync.agencies.models import RecruiterProfile, SenderAddress, User
from emailsync.inbound import recipients as rules
from emailsync.inbound.models import Trigger
from emailsync.placements.models import Placement
from emailsync.review_requests import manual
from emailsync.review_requests.manual import Person, request_manually
from emailsync.review_requests.models import ReviewRequest, Source
from emailsync.reviews.models import Review
from emailsync.workspace import invites

from . import serializers
from .auth import ApiKeyAuth
from .docs import LocalSwagger
from .errors import ApiError, ErrorOut, install, not_found
from .models import ApiSettings
from .schemas import (
    MAX_ID,
    AgencyOut,
    Line,
    Moment,
    OptionalEmail,
    PlacementIn,
    PlacementOut,
    PlacementPage,
    PlacementPatch,
    ReviewOut,
    ReviewPage,
    ReviewRequestBatch,
    ReviewRequestCreate,
    ReviewRequestOut,
    ReviewRequestPage,
    TriggerOut,
    TriggerPage,
)

DESCRIPTION = """Placements, review requests, reviews and the fairness log of one agency, for ATS
integrations. Authenticate with an API key (`Authorization: Bearer esk_…`) that an agency admin
creates in the agency app. Lists are cursor-paginated (`next_cursor`); POSTs accept an
`Idempotency-Key` header; every error is `{"error": {"code", "message", "fields"}}`.
See docs/API.md for a worked example and the webhook signature recipe."""

api = NinjaAPI(
    title="Email Sync API",
    version="1.0.0",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=ApiKeyAuth(),
    docs=LocalSwagger(),
    openapi_url="/openapi.json",
    docs_url="/docs",
)
install(api)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut}
POST_ERRORS = {**ERRORS, 409: ErrorOut, 413: ErrorOut, 415: ErrorOut}
Id = Path(..., ge=1, le=MAX_ID)
Limit = Query(50, ge=1, le=100, description="Items per page (1–100).")
CursorParam = Query(None, max_length=100, description="`next_cursor` of the previous page.")


# --- helpers ------------------------------------------------------------------------------------


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, _, number = raw.partition(":")
        value = int(number)
        if version != "v1" or not 1 <= value <= MAX_ID:
            raise ValueError
        return value
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError(
            422, "validation_error", "The cursor is not valid.", {"cursor": ["Not a cursor."]}
        )


def page(queryset, cursor: str | None, limit: int, serialize) -> dict:
    """Newest first, by id; the cursor is the last id of the previous page."""
    if cursor:
        queryset = queryset.filter(pk__lt=decode_cursor(cursor))
    rows = list(queryset.order_by("-pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [serialize(r) for r in rows],
        "next_cursor": encode_cursor(rows[-1].pk) if more and rows else None,
    }


def recruiter_for(
    agency, email: str, field: str = "recruiter_email", *, to_credit: bool = True
) -> RecruiterProfile | None:
    """The recruiter an address names. To credit a placement or a request (whose email then
    goes out in their name) only a current member; a list's filter also finds a removed
    member's past records by their address."""
    if not email:
        return None
    user = User.objects.filter(agency=agency, email__iexact=email, is_active=True).first()
    if user is not None:
        return RecruiterProfile.for_user(user)
    senders = SenderAddress.objects.of_members() if to_credit else SenderAddress.objects
    sender = (
        senders.filter(agency=agency, email__iexact=email).select_related("profile__user").first()
    )
    if sender is not None:
        return sender.profile
    raise ApiError(
        422,
        "unknown_recruiter",
        "No member of the agency has that email address.",
        {field: ["Not a member of the agency."]},
    )


def audit(request, action: str, subject: str, **detail) -> None:
    request.agency.record(None, action, subject, api_key=request.api_key.prefix, **detail)


# --- the agency --------------------------------------------------------------------------


@api.get("/agency", response={200: AgencyOut, **ERRORS}, tags=["agency"])
def agency_info(request):
    """The agency this key belongs to, and its integration method: check a key with this."""
    agency = request.agency
    return {
        "id": agency.pk,
        "name": agency.name,
        "slug": agency.slug,
        "integration_method": ApiSettings.for_agency(agency).method,
        "key_name": request.api_key.name,
        "key_prefix": request.api_key.display,
    }


# --- placements ---------------------------------------------------------------------------------

placements = Router(tags=["placements"])

PLACEMENT_FIELDS = [
    "candidate_name",
    "candidate_email",
    "client_company",
    "client_contact_name",
    "client_contact_email",
    "job_title",
    "start_date",
]


def one(queryset, pk: int, what: str):
    """The agency's object with this id, or the API's 404 (another agency's id looks unknown)."""
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise not_found(what)
    return found


def placement_qs(request):
    return Placement.objects.filter(agency=request.agency).select_related("recruiter__user")


def apply_placement(request, placement: Placement, data: dict) -> list[str]:
    changed = []
    if "recruiter_email" in data:
        profile = recruiter_for(request.agency, data.pop("recruiter_email"))
        if placement.recruiter_id != (profile.pk if profile else None):
            placement.recruiter, changed = profile, [*changed, "recruiter"]
    for name, value in data.items():
        if getattr(placement, name) != value:
            setattr(placement, name, value)
            changed.append(name)
    return changed


@placements.post(
    "", response={200: PlacementOut, 201: PlacementOut, **POST_ERRORS}, summary="Upsert a placement"
)
def upsert_placement(request, payload: PlacementIn):
    """Create the placement with this `external_ref`, or update the one that has it.

    201 when created, 200 when it existed: then only the fields given replace the stored ones
    (a field left out keeps its value; on create it takes its default). Sending the same body
    twice changes nothing the second time."""
    given = payload.dict(exclude_unset=True)
    data = payload.dict()
    ref = data.pop("external_ref")
    given.pop("external_ref", None)
    for attempt in range(2):
        try:
            with transaction.atomic():
                existing = (
                    Placement.objects.select_for_update()
                    .filter(agency=request.agency, external_ref=ref)
                    .first()
                )
                placement = existing or Placement(agency=request.agency, external_ref=ref)
                changed = apply_placement(
                    request, placement, dict(data if existing is None else given)
                )
                if existing is None or changed:
                    placement.save()
                if existing is None:
                    audit(request, "placement.created", str(placement), placement=placement.pk)
                elif changed:
                    audit(
                        request,
                        "placement.edited",
                        str(placement),
                        placement=placement.pk,
                        fields=sorted(changed),
                    )
            break
        except IntegrityError:  # a concurrent upsert created it first: update that one
            if attempt:
                raise
    placement = placement_qs(request).get(pk=placement.pk)
    return Status(201 if existing is None else 200, serializers.placement(placement))


@placements.get("", response={200: PlacementPage, **ERRORS}, summary="List placements")
def list_placements(
    request,
    external_ref: Line | None = Query(None, max_length=100),
    candidate_email: OptionalEmail | None = Query(None),
    client_contact_email: OptionalEmail | None = Query(None),
    recruiter_email: OptionalEmail | None = Query(None),
    start_date_from: date | None = Query(None),
    start_date_to: date | None = Query(None),
    cursor: str | None = CursorParam,
    limit: int = Limit,
):
    qs = placement_qs(request)
    if external_ref:
        qs = qs.filter(external_ref=external_ref)
    if candidate_email:
        qs = qs.filter(candidate_email=candidate_email)
    if client_contact_email:
        qs = qs.filter(client_contact_email=client_contact_email)
    if recruiter_email:
        qs = qs.filter(recruiter=recruiter_for(request.agency, recruiter_email, to_credit=False))
    if start_date_from:
        qs = qs.filter(start_date__gte=start_date_from)
    if start_date_to:
        qs = qs.filter(start_date__lte=start_date_to)
    return page(qs, cursor, limit, serializers.placement)


@placements.get("/{placement_id}", response={200: PlacementOut, **ERRORS}, summary="Get one")
def get_placement(request, placement_id: int = Id):
    placement = one(placement_qs(request), placement_id, "placement")
    return serializers.placement(placement)


@placements.patch(
    "/{placement_id}", response={200: PlacementOut, **POST_ERRORS}, summary="Update a placement"
)
def update_placement(request, payload: PlacementPatch, placement_id: int = Id):
    """Change the fields given; the others keep their values."""
    data = payload.dict(exclude_unset=True)
    if data.get("candidate_name", "") is None or data.get("external_ref", "") is None:
        raise ApiError(
            422,
            "validation_error",
            "Some fields are not valid.",
            {k: ["May not be null."] for k in ("candidate_name", "external_ref") if k in data},
        )
    data = {k: ("" if v is None and k != "start_date" else v) for k, v in data.items()}
    try:
        with transaction.atomic():
            placement = (
                Placement.objects.select_for_update()
                .filter(agency=request.agency, pk=placement_id)
                .first()
            )
            if placement is None:
                raise not_found("placement")
            changed = apply_placement(request, placement, data)
            if changed:
                placement.save()
                audit(
                    request,
                    "placement.edited",
                    str(placement),
                    placement=placement.pk,
                    fields=sorted(changed),
                )
    except IntegrityError:
        raise ApiError(
            409,
            "external_ref_taken",
            "Another placement of the agency has that external_ref.",
            {"external_ref": ["Already used by another placement."]},
        )
    return serializers.placement(placement_qs(request).get(pk=placement_id))


# --- review requests ------------------------------------------------------------------------

requests_router = Router(tags=["review requests"])


def request_qs(request):
    return ReviewRequest.objects.filter(agency=request.agency).select_related(
        "recruiter__user", "review"
    )


@requests_router.post(
    "", response={201: ReviewRequestBatch, **POST_ERRORS}, summary="Ask people for a review"
)
def create_review_requests(request, payload: ReviewRequestCreate):
    """Ask each recipient for a review, with exactly Email Sync's rules.

    Each recipient is either `scheduled` (sent inside the agency's business hours after its delay,
    never later than 72 hours) or `skipped` with a reason code: `suppressed`, `recently_asked`,
    `colleague`, `role_address`, `undeliverable`, `unsendable_address`, `sender`,
    `inbound_address`, or `duplicate` (an
    address given again in the same call, or another form of the same mailbox, such as a plus
    tag; the first entry's name and role are used). At most 50 recipients per
    call (the agency's recipient cap is for emails, not for a call that names whom to ask).
    Recorded as a trigger with source `api` in the fairness log."""
    recruiter = recruiter_for(request.agency, payload.recruiter_email)
    people = [Person(r.email, r.name, r.role or "") for r in payload.recipients]
    trigger, outcomes = request_manually(
        request.agency,
        people,
        by=None,
        recruiter=recruiter,
        personal_message=payload.personal_message,
        placement_ref=payload.placement_ref,
        send_now=payload.send_now,
        source=Source.API,
        sender=recruiter.user.email if recruiter else "",
        audit={"api_key": request.api_key.prefix},
    )
    created = {
        rr.pk: rr
        for rr in request_qs(request).filter(pk__in=[o.request.pk for o in outcomes if o.request])
    }
    return Status(
        201,
        {
            "trigger_id": trigger.pk,
            "status": trigger.status,
            "reason": trigger.reason,
            "recipients": [
                {
                    "email": o.email,
                    "name": o.name,
                    "outcome": "scheduled" if o.invited else "skipped",
                    "reason": o.reason or None,
                    "reason_message": reason_message(o.reason),
                    "review_request": serializers.review_request(created[o.request.pk])
                    if o.request
                    else None,
                }
                for o in outcomes
            ],
        },
    )


def reason_message(code: str) -> str | None:
    if not code:
        return None
    return rules.RECIPIENT_REASONS.get(code) or manual.REASONS.get(code)


@requests_router.get("", response={200: ReviewRequestPage, **ERRORS}, summary="List requests")
def list_review_requests(
    request,
    status: ReviewRequest.Status | None = Query(None),
    source: Source | None = Query(None),
    email: OptionalEmail | None = Query(None),
    placement_ref: Line | None = Query(None, max_length=100),
    created_after: Moment | None = Query(None),
    created_before: Moment | None = Query(None),
    cursor: str | None = CursorParam,
    limit: int = Limit,
):
    qs = request_qs(request)
    if status:
        qs = qs.filter(status=status)
    if source:
        qs = qs.filter(source=source)
    if email:
        qs = qs.filter(email=email)
    if placement_ref:
        qs = qs.filter(placement_ref=placement_ref)
    if created_after:
        qs = qs.filter(created_at__gte=created_after)
    if created_before:
        qs = qs.filter(created_at__lt=created_before)
    return page(qs, cursor, limit, serializers.review_request)


@requests_router.get(
    "/{request_id}", response={200: ReviewRequestOut, **ERRORS}, summary="Get one request"
)
def get_review_request(request, request_id: int = Id):
    rr = one(request_qs(request), request_id, "review request")
    return serializers.review_request(rr)


@requests_router.post(
    "/{request_id}/cancel",
    response={200: ReviewRequestOut, **POST_ERRORS},
    summary="Cancel a scheduled request",
)
def cancel_review_request(request, request_id: int = Id):
    """Only a request that has not been sent yet can be cancelled (409 otherwise). The person may
    be asked again later. Cancelling a cancelled request answers 200 again."""
    rr = one(request_qs(request), request_id, "review request")
    if rr.status != ReviewRequest.Status.CANCELLED and not invites.cancel([rr], None):
        raise ApiError(
            409,
            "not_cancellable",
            f"The request is {rr.status}: only a scheduled request can be cancelled.",
        )
    return serializers.review_request(request_qs(request).get(pk=request_id))


# --- reviews ----------------------------------------------------------------------------------

reviews_router = Router(tags=["reviews"])
VISIBLE = [Review.Status.MISSING_VERIFICATION, Review.Status.VERIFIED, Review.Status.REJECTED]


def review_qs(request):
    return Review.objects.filter(agency=request.agency, status__in=VISIBLE).select_related(
        "recruiter__user"
    )


@reviews_router.get("", response={200: ReviewPage, **ERRORS}, summary="List reviews")
def list_reviews(
    request,
    status: str | None = Query(
        None,
        pattern="^(missing_verification|verified|rejected)$",
        description="missing_verification, verified or rejected",
    ),
    recruiter_email: OptionalEmail | None = Query(None),
    placement_ref: Line | None = Query(None, max_length=100),
    submitted_after: Moment | None = Query(None),
    submitted_before: Moment | None = Query(None),
    cursor: str | None = CursorParam,
    limit: int = Limit,
):
    qs = review_qs(request)
    if status:
        qs = qs.filter(status=status)
    if recruiter_email:
        qs = qs.filter(recruiter=recruiter_for(request.agency, recruiter_email, to_credit=False))
    if placement_ref:  # the reference it was sent with, or the placement it was verified against
        qs = qs.filter(Q(placement_ref=placement_ref) | Q(placement__external_ref=placement_ref))
    if submitted_after:
        qs = qs.filter(submitted_at__gte=submitted_after)
    if submitted_before:
        qs = qs.filter(submitted_at__lt=submitted_before)
    return page(qs, cursor, limit, serializers.review)


@reviews_router.get("/{review_id}", response={200: ReviewOut, **ERRORS}, summary="Get one review")
def get_review(request, review_id: int = Id):
    review = one(review_qs(request), review_id, "review")
    return serializers.review(review)


# --- triggers ---------------------------------------------------------------------------------

triggers_router = Router(tags=["triggers"])


def trigger_qs(request):
    return (
        Trigger.objects.filter(agency=request.agency)
        .select_related("recruiter__user")
        .prefetch_related("recipients")
    )


@triggers_router.get("", response={200: TriggerPage, **ERRORS}, summary="List triggers")
def list_triggers(
    request,
    source: str | None = Query(
        None,
        max_length=30,
        pattern=r"^(smtp|manual|api|esp:[a-z0-9_.-]+)$",
        description="smtp, esp:<name>, manual or api",
    ),
    status: Trigger.Status | None = Query(None),
    received_after: Moment | None = Query(None),
    received_before: Moment | None = Query(None),
    cursor: str | None = CursorParam,
    limit: int = Limit,
):
    """Every email received, manual request and API request, with each person's outcome: the
    fairness log, as the Activity page shows it."""
    qs = trigger_qs(request)
    if source:
        qs = qs.filter(source=source)
    if status:
        qs = qs.filter(status=status)
    if received_after:
        qs = qs.filter(received_at__gte=received_after)
    if received_before:
        qs = qs.filter(received_at__lt=received_before)
    return page(qs, cursor, limit, serializers.trigger)


@triggers_router.get("/{trigger_id}", response={200: TriggerOut, **ERRORS}, summary="Get one")
def get_trigger(request, trigger_id: int = Id):
    trigger = one(trigger_qs(request), trigger_id, "trigger")
    return serializers.trigger(trigger)


api.add_router("/placements", placements)
api.add_router("/review-requests", requests_router)
api.add_router("/reviews", reviews_router)
api.add_router("/triggers", triggers_router)
