"""Request and response shapes of the REST API (they are the OpenAPI document)."""

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictBool

MAX_ID = 2**63 - 1


def clean_text(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise ValueError("Control characters are not allowed.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Not valid Unicode text.")
    return value


def clean_line(value: str) -> str:
    value = clean_text(value)
    if "\n" in value or "\r" in value or "\t" in value:
        raise ValueError("Line breaks are not allowed.")
    return value.strip()


def clean_email(value: str) -> str:
    value = clean_line(value).lower()
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("Enter a valid email address.")
    return value


def clean_optional_email(value: str) -> str:
    return clean_email(value) if value.strip() else ""


def aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("Date out of range.")


def iso_date(value):
    """A date only as ISO 8601 text (`2025-03-03`): no numbers, no date-times."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("Enter a date as YYYY-MM-DD.")
    return value


ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

Text = Annotated[str, AfterValidator(clean_text)]
Line = Annotated[str, AfterValidator(clean_line)]
Email = Annotated[str, Field(max_length=254), AfterValidator(clean_email)]
OptionalEmail = Annotated[str, Field(max_length=254), AfterValidator(clean_optional_email)]
Moment = Annotated[datetime, AfterValidator(aware)]
RoleName = Literal["candidate", "client"]
IsoDate = Annotated[date, BeforeValidator(iso_date)]


class Input(Schema):
    """A request body: a field we do not know is an error (a typo must not pass unnoticed)."""

    model_config = ConfigDict(extra="forbid")


# --- shared -------------------------------------------------------------------------------


class RecruiterOut(Schema):
    id: int
    name: str
    email: str


class AgencyOut(Schema):
    id: int
    name: str
    slug: str
    integration_method: Literal["email_sync", "api", "both"]
    key_name: str
    key_prefix: str


# --- placements -----------------------------------------------------------------------------


class PlacementFields(Input):
    candidate_email: OptionalEmail = ""
    client_company: Annotated[Line, Field(max_length=160)] = ""
    client_contact_name: Annotated[Line, Field(max_length=120)] = ""
    client_contact_email: OptionalEmail = ""
    job_title: Annotated[Line, Field(max_length=160)] = ""
    start_date: IsoDate | None = None
    recruiter_email: OptionalEmail = Field(
        "", description="A member of the agency (or one of their sending addresses)."
    )


class PlacementIn(PlacementFields):
    external_ref: Annotated[Line, Field(min_length=1, max_length=100)] = Field(
        ..., description="Your ATS's id for the placement: the key of the upsert."
    )
    candidate_name: Annotated[Line, Field(min_length=1, max_length=120)]


class PlacementPatch(Input):
    external_ref: Annotated[Line, Field(min_length=1, max_length=100)] | None = None
    candidate_name: Annotated[Line, Field(min_length=1, max_length=120)] | None = None
    candidate_email: OptionalEmail | None = None
    client_company: Annotated[Line, Field(max_length=160)] | None = None
    client_contact_name: Annotated[Line, Field(max_length=120)] | None = None
    client_contact_email: OptionalEmail | None = None
    job_title: Annotated[Line, Field(max_length=160)] | None = None
    start_date: IsoDate | None = None
    recruiter_email: OptionalEmail | None = None


class PlacementOut(Schema):
    id: int
    external_ref: str | None
    candidate_name: str
    candidate_email: str
    client_company: str
    client_contact_name: str
    client_contact_email: str
    job_title: str
    start_date: date | None
    recruiter: RecruiterOut | None
    created_at: datetime


class PlacementPage(Schema):
    data: list[PlacementOut]
    next_cursor: str | None


# --- review requests -----------------------------------------------------------------------


class RecipientIn(Input):
    email: Email
    name: Annotated[Line, Field(max_length=120)] = ""
    role: RoleName | None = None


class ReviewRequestCreate(Input):
    recipients: list[RecipientIn] = Field(..., min_length=1, max_length=50)
    recruiter_email: OptionalEmail = Field(
        "", description="Who the reviews are credited to: a member of the agency."
    )
    placement_ref: Annotated[Line, Field(max_length=100)] = ""
    personal_message: Annotated[Text, Field(max_length=1000)] = ""
    send_now: StrictBool = Field(
        False, description="Send at the worker's next pass instead of after the agency's delay."
    )


class ReviewRequestOut(Schema):
    id: int
    email: str
    name: str
    role: RoleName | None
    source: str
    status: str
    status_reason: str
    recruiter: RecruiterOut | None
    placement_ref: str
    created_at: datetime
    send_after: datetime
    deadline: datetime
    sent_at: datetime | None
    opened_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    review_id: int | None


class RecipientOutcome(Schema):
    email: str
    name: str
    outcome: Literal["scheduled", "skipped"]
    reason: str | None = Field(None, description="Why the person was skipped (a reason code).")
    reason_message: str | None
    review_request: ReviewRequestOut | None


class ReviewRequestBatch(Schema):
    trigger_id: int
    status: str
    reason: str
    recipients: list[RecipientOutcome]


class ReviewRequestPage(Schema):
    data: list[ReviewRequestOut]
    next_cursor: str | None


# --- reviews and triggers ---------------------------------------------------------------------


class ReviewOut(Schema):
    id: int
    status: Literal["missing_verification", "verified", "rejected"]
    rating: int
    text: str
    role: str
    reviewer_name: str
    display_name: str
    reviewer_email: str
    recommend: bool
    recruiter: RecruiterOut | None
    placement_ref: str
    placement_id: int | None
    review_request_id: int
    submitted_at: datetime
    verified_at: datetime | None
    rejected_at: datetime | None
    rejected_reason: str


class ReviewPage(Schema):
    data: list[ReviewOut]
    next_cursor: str | None


class TriggerRecipientOut(Schema):
    email: str
    name: str
    role: str | None
    outcome: Literal["invited", "skipped", "held"]
    reason: str
    review_request_id: int | None


class TriggerOut(Schema):
    id: int
    source: str
    received_at: datetime
    status: str
    reason: str
    sender: str
    recruiter: RecruiterOut | None
    placement_ref: str
    recipients: list[TriggerRecipientOut]


class TriggerPage(Schema):
    data: list[TriggerOut]
    next_cursor: str | None
