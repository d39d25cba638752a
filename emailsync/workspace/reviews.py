"""The Reviews page: five columns with counts, filters and search; verifying, rejecting and
undoing; editing, cancelling or sending scheduled invites; Get Reviews and the manual request.

Admins act; recruiters see their own requests and reviews, read-only. Counts come from two
aggregate queries and each column's cards from one query, so a page costs the same number of
queries with ten rows or a hundred thousand.
"""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from emailsync.agencies.access import admin_required, agency_object, member_required
from emailsync.inbound.models import InboundAddress
from emailsync.placements import matching
from emailsync.placements.models import Placement
from emailsync.profiles.agency_views import public_state
from emailsync.review_requests.manual import Person, request_manually
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source
from emailsync.reviews.models import Review
from emailsync.reviews.services import absolute

from . import invites
from .forms import BoardFilterForm, InviteForm, ManualRequestForm, PlacementForm, RejectForm

RS = ReviewRequest.Status
SENT_STATUSES = [RS.SENT, RS.OPENED, RS.REMINDED]
CARDS_PER_COLUMN = 8
PAGE = 50

COLUMNS = [
    ("scheduled", gettext_lazy("Invite Scheduled")),
    ("sent", gettext_lazy("Invite Sent")),
    ("missing", gettext_lazy("Missing Verification")),
    ("verified", gettext_lazy("Verified")),
    ("rejected", gettext_lazy("Rejected")),
]
REVIEW_STATUS = {
    "missing": Review.Status.MISSING_VERIFICATION,
    "verified": Review.Status.VERIFIED,
    "rejected": Review.Status.REJECTED,
}


def scoped(request):
    """The requests and reviews this member may see (recruiters: their own), filtered."""
    agency = request.agency
    form = BoardFilterForm(
        request.GET or None, agency=agency, by_recruiter=request.user.is_agency_admin
    )
    requests = ReviewRequest.objects.filter(agency=agency).exclude(source=Source.SETUP_TEST)
    reviews = Review.objects.filter(agency=agency)
    if not request.user.is_agency_admin:
        profile = getattr(request.user, "profile", None)
        requests = requests.filter(recruiter=profile)
        reviews = reviews.filter(recruiter=profile)
    data = form.cleaned_data if form.is_valid() else {}
    if data.get("recruiter"):
        requests = requests.filter(recruiter=data["recruiter"])
        reviews = reviews.filter(recruiter=data["recruiter"])
    if data.get("role"):
        requests = requests.filter(role=data["role"])
        reviews = reviews.filter(role=data["role"])
    if data.get("rating"):
        reviews = reviews.filter(rating=data["rating"])
        requests = requests.none()  # invites have no rating yet
    if data.get("since"):
        requests = requests.filter(created_at__date__gte=data["since"])
        reviews = reviews.filter(submitted_at__date__gte=data["since"])
    if data.get("until"):
        requests = requests.filter(created_at__date__lte=data["until"])
        reviews = reviews.filter(submitted_at__date__lte=data["until"])
    if data.get("q"):
        q = data["q"].strip()
        requests = requests.filter(Q(name__icontains=q) | Q(email__icontains=q.lower()))
        reviews = reviews.filter(
            Q(reviewer_name__icontains=q) | Q(reviewer_email__icontains=q.lower())
        )
    return form, requests, reviews


def column_queryset(key, requests, reviews):
    if key == "scheduled":
        return (
            requests.filter(status=RS.SCHEDULED)
            .select_related("recruiter")
            .order_by("send_after", "id")
        )
    if key == "sent":
        return (
            requests.filter(status__in=SENT_STATUSES)
            .select_related("recruiter")
            .order_by("-sent_at", "-id")
        )
    return reviews.filter(status=REVIEW_STATUS[key]).select_related(
        "recruiter", "placement", "review_request"
    )


def counts(requests, reviews) -> dict:
    found = requests.aggregate(
        scheduled=Count("id", filter=Q(status=RS.SCHEDULED)),
        sent=Count("id", filter=Q(status__in=SENT_STATUSES)),
    )
    found.update(
        reviews.aggregate(
            missing=Count("id", filter=Q(status=Review.Status.MISSING_VERIFICATION)),
            verified=Count("id", filter=Q(status=Review.Status.VERIFIED)),
            rejected=Count("id", filter=Q(status=Review.Status.REJECTED)),
        )
    )
    return found


@member_required
def board(request):
    form, requests, reviews = scoped(request)
    totals = counts(requests, reviews)
    active = request.GET.get("col") if request.GET.get("col") in dict(COLUMNS) else ""
    query = request.GET.copy()
    query.pop("col", None)
    query.pop("page", None)
    context = {
        "form": form,
        "active": active or "missing",
        "query": query.urlencode(),
        "can_act": request.user.is_agency_admin,
        "filtered": bool(form.is_bound and any(form.data.get(k) for k in form.fields)),
    }
    if active:
        page = Paginator(column_queryset(active, requests, reviews), PAGE).get_page(
            request.GET.get("page")
        )
        if active == "verified" and context["can_act"]:
            with_public_state(page.object_list)
        context.update(
            columns=[(k, label, totals[k], None) for k, label in COLUMNS],
            column=(active, dict(COLUMNS)[active], totals[active], page),
        )
        return render(request, "workspace/reviews/column.html", context)
    context["columns"] = [
        (k, label, totals[k], list(column_queryset(k, requests, reviews)[:CARDS_PER_COLUMN]))
        for k, label in COLUMNS
    ]
    if context["can_act"]:
        with_public_state(next(cards for k, _, _, cards in context["columns"] if k == "verified"))
    return render(request, "workspace/reviews/board.html", context)


def with_public_state(reviews) -> None:
    """Give each verified card what the admin needs to answer it in public: whether it shows
    on the profiles, or was hidden by moderators, and the link to reply (or edit the reply)."""
    reviews = list(reviews)
    states = public_state(reviews)
    for review in reviews:
        review.public_state = states[review.pk]


# --- verification ------------------------------------------------------------------------------


def as_id(value) -> int:
    """A posted id, or 0 (which matches nothing, so the lookup is a 404)."""
    value = (value or "").strip()
    return int(value) if value.isdigit() and len(value) < 19 else 0


def review_for_admin(request, review_id):
    return agency_object(
        request,
        Review.objects.select_related("review_request", "recruiter", "placement"),
        pk=review_id,
    )


def verify_context(request, review, **extra):
    suggestions = (
        matching.suggest(review) if review.status == Review.Status.MISSING_VERIFICATION else []
    )
    initial = {"recruiter": review.recruiter_id}
    if review.role == "client":
        initial.update(
            client_contact_name=review.reviewer_name, client_contact_email=review.reviewer_email
        )
    else:
        initial.update(candidate_name=review.reviewer_name, candidate_email=review.reviewer_email)
    if (
        review.placement_ref
        and not Placement.objects.filter(
            agency=request.agency, external_ref=review.placement_ref
        ).exists()
    ):
        initial["external_ref"] = review.placement_ref
    context = {
        "review": review,
        "suggestions": suggestions,
        "placement_form": PlacementForm(initial=initial, agency=request.agency),
        "reject_form": RejectForm(),
        "open_add": False,
        # A form shown again after a mistake still goes back where the admin came from (the
        # dialog's own page overrides it; back_to_board checks it).
        "next": request.POST.get("next", ""),
    }
    context.update(extra)
    return context


def verify_page(request, review, status=200, **extra):
    template = (
        "workspace/reviews/_verify_dialog.html"
        if request.htmx and not request.htmx.boosted
        else "workspace/reviews/verify.html"
    )
    return render(request, template, verify_context(request, review, **extra), status=status)


def back_to_board(request):
    target = request.POST.get("next", "")
    if target.startswith("/app/reviews/") and "//" not in target:
        return redirect(target)
    return redirect("agency-reviews")


@admin_required
@require_http_methods(["GET", "POST"])
def verify(request, review_id):
    review = review_for_admin(request, review_id)
    if request.method == "GET":  # the board's Reject button opens the reject form at once
        return verify_page(request, review, open_reject=request.GET.get("reject") == "1")
    placement = agency_object(request, Placement, pk=as_id(request.POST.get("placement_id")))
    try:
        review.verify(placement, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return back_to_board(request)
    messages.success(
        request,
        _("Verified: %(review)s, against %(placement)s.")
        % {"review": review.audit_subject(), "placement": placement},
    )
    return back_to_board(request)


@admin_required
@require_POST
def verify_new(request, review_id):
    review = review_for_admin(request, review_id)
    form = PlacementForm(request.POST, agency=request.agency)
    if not form.is_valid():
        return verify_page(request, review, status=400, placement_form=form, open_add=True)
    try:
        with transaction.atomic():
            placement = form.save(commit=False)
            placement.agency, placement.created_by = request.agency, request.user
            placement.save()
            request.agency.record(request.user, "placement.created", str(placement))
            review.verify(placement, by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return back_to_board(request)
    messages.success(
        request,
        _("Added %(placement)s and verified the review.") % {"placement": placement},
    )
    return back_to_board(request)


@admin_required
@require_POST
def reject(request, review_id):
    review = review_for_admin(request, review_id)
    form = RejectForm(request.POST)
    if not form.is_valid():
        return verify_page(request, review, status=400, reject_form=form)
    try:
        review.reject(form.cleaned_data["reason"], by=request.user, note=form.cleaned_data["note"])
        messages.success(request, _("Rejected: %(review)s.") % {"review": review.audit_subject()})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return back_to_board(request)


@admin_required
@require_POST
def undo(request, review_id):
    review = review_for_admin(request, review_id)
    try:
        review.undo(by=request.user)
        messages.success(request, _("Back in Missing Verification."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return back_to_board(request)


@admin_required
def placement_search(request):
    review = None
    if request.GET.get("review_id"):
        review = review_for_admin(request, as_id(request.GET["review_id"]))
    results = list(matching.search(request.agency, request.GET.get("q", "")))
    if review is not None and review.role == "candidate":
        # The same warning the suggestions give: searching found a way around it.
        reviewed_by = matching.candidate_reviews(review, results)
        for placement in results:
            placement.candidate_reviewed = placement.pk in reviewed_by
            placement.candidate_reviewed_by = reviewed_by.get(placement.pk, "")
    q = request.GET.get("q", "")
    if review is not None and not request.htmx:
        # The full verify page's search (no JavaScript): the page again, with what was found.
        return verify_page(request, review, results=results, q=q)
    return render(
        request,
        "workspace/reviews/_placement_results.html",
        {"results": results, "review": review, "q": q},
    )


# --- scheduled invites --------------------------------------------------------------------------


def scheduled_request(request, request_id):
    return agency_object(
        request, ReviewRequest.objects.exclude(source=Source.SETUP_TEST), pk=request_id
    )


@admin_required
@require_http_methods(["GET", "POST"])
def invite_edit(request, request_id):
    invite = scheduled_request(request, request_id)
    initial = {
        "name": invite.name,
        "email": invite.email,
        "recruiter": invite.recruiter_id,
        "role": invite.role,
        "personal_message": invite.personal_message,
    }
    form = InviteForm(request.POST or None, initial=initial, agency=request.agency)
    if request.method == "POST" and form.is_valid():
        try:
            invites.edit(invite, form.cleaned_data, by=request.user)
            messages.success(request, _("Invite to %(email)s saved.") % {"email": invite.email})
            return redirect(reverse("agency-reviews") + "?col=scheduled")
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errors in exc.message_dict.items():
                    form.add_error(field, errors)
            else:
                form.add_error(None, exc)
    template = (
        "workspace/reviews/_invite_dialog.html" if request.htmx else "workspace/reviews/invite.html"
    )
    return render(
        request,
        template,
        {"invite": invite, "form": form, "editable": invite.status == RS.SCHEDULED},
        status=400 if form.errors else 200,
    )


@admin_required
@require_POST
def invite_cancel(request, request_id):
    invite = scheduled_request(request, request_id)
    refused = []
    if invites.cancel([invite], by=request.user, refused=refused):
        messages.success(request, _("Invite to %(email)s cancelled.") % {"email": invite.email})
    else:
        messages.error(
            request, refused[0] if refused else _("This invite has already been sent or cancelled.")
        )
    return back_to_board(request)


@admin_required
@require_POST
def invite_send_now(request, request_id):
    invite = scheduled_request(request, request_id)
    refused = []
    if invites.send_now([invite], by=request.user, refused=refused):
        messages.success(request, _("Invite to %(email)s is on its way.") % {"email": invite.email})
    else:
        messages.error(
            request, refused[0] if refused else _("This invite has already been sent or cancelled.")
        )
    return back_to_board(request)


@admin_required
@require_POST
def invite_bulk(request):
    ids = [i for i in request.POST.getlist("request_ids") if i.isdigit()][:500]
    chosen = list(
        ReviewRequest.objects.filter(
            agency=request.agency, pk__in=ids, status=RS.SCHEDULED
        ).exclude(source=Source.SETUP_TEST)
    )
    action = request.POST.get("action")
    if not chosen:
        messages.error(request, _("Tick at least one scheduled invite."))
    elif action == "cancel":
        n = invites.cancel(chosen, by=request.user)
        messages.success(request, _("%(n)s invite(s) cancelled.") % {"n": n})
    elif action == "send":
        refused: list[str] = []
        n = invites.send_now(chosen, by=request.user, refused=refused)
        if n:
            messages.success(request, _("%(n)s invite(s) will be sent now.") % {"n": n})
        for reason in dict.fromkeys(refused):  # each reason once, however many it held back
            messages.error(request, reason)
    else:
        messages.error(request, _("Choose send now or cancel."))
    return back_to_board(request)


# --- Get Reviews --------------------------------------------------------------------------------


@member_required
def get_reviews(request):
    agency = request.agency
    sync = EmailSyncSettings.for_agency(agency)
    profiles = agency.profiles.of_members()
    if not request.user.is_agency_admin:
        profiles = profiles.filter(user=request.user)
    links = [(p, absolute(reverse("recruiter-link", args=[agency.slug, p.slug]))) for p in profiles]
    # Everyone who sends the agency's emails needs the address to BCC, recruiters included.
    bcc = InboundAddress.current_for(agency).address if sync.enabled else ""
    return render(
        request,
        "workspace/reviews/get_reviews.html",
        {"sync": sync, "links": links, "bcc_address": bcc},
    )


@member_required
@require_http_methods(["GET", "POST"])
def manual_request(request):
    form = ManualRequestForm(request.POST or None, agency=request.agency, user=request.user)
    outcomes = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        people = [Person(email, name, data["role"]) for name, email in data["people"]]
        _trigger, outcomes = request_manually(
            request.agency,
            people,
            by=request.user,
            recruiter=data["recruiter"],
            personal_message=data["personal_message"],
            send_now=data["send_now"],
        )
        invited = sum(o.invited for o in outcomes)
        messages.success(
            request,
            _("%(invited)s of %(total)s people will be asked for a review.")
            % {"invited": invited, "total": len(outcomes)},
        )
        form = ManualRequestForm(agency=request.agency, user=request.user)
    sync = EmailSyncSettings.for_agency(request.agency)
    return render(
        request,
        "workspace/reviews/manual.html",
        {"form": form, "outcomes": outcomes, "sync": sync},
        status=400 if form.errors else 200,
    )
