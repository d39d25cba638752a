"""The reviewer's pages. No account: the unguessable link in the email is the only key.

Pages that show a reviewer's own words are private (no caching, no indexing, no referrer). An
unknown token is a plain 404, identical to any other missing page, so nobody can learn whether a
token ever existed.
"""

from contextlib import suppress
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source
from emailsync.throttling.models import Counter

from . import services
from .forms import HONEYPOT, RATING_WORDS, RecruiterLinkForm, ReviewForm
from .models import TEXT_MAX, TEXT_MIN, Review


def private(view):
    """No caching, no search engines, no Referer carrying the token to another site."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        add_never_cache_headers(response)
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        # Same-origin only: the token never reaches another site in a Referer. ("no-referrer"
        # would make browsers send `Origin: null` on the form's POST, failing the CSRF check.)
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    return wrapper


def rate_limited(request) -> int:
    """Count a form post from this client address; seconds to wait when over the limit, else 0."""
    limit = getattr(settings, "EMAILSYNC_REVIEW_POSTS_PER_IP", 30)
    window = getattr(settings, "EMAILSYNC_REVIEW_POST_WINDOW", 3600)
    address = request.META.get("REMOTE_ADDR") or "unknown"
    decision = Counter.hit(f"reviews:post:{address}", limit, window)
    return 0 if decision.allowed else decision.retry_after


def find_request(token: str) -> ReviewRequest:
    return get_object_or_404(
        ReviewRequest.objects.select_related("agency", "recruiter"), token=token
    )


def existing_review(rr: ReviewRequest) -> Review | None:
    return Review.objects.filter(review_request=rr).select_related("recruiter").first()


def unsubscribe_url(rr: ReviewRequest) -> str | None:
    try:
        return reverse("unsubscribe", args=[rr.token])
    except NoReverseMatch:
        return None


def rating_from_query(request) -> int | None:
    try:
        rating = int(request.GET.get("rating", ""))
    except ValueError:
        return None
    return rating if 1 <= rating <= 5 else None


def page_context(agency: Agency, recruiter: RecruiterProfile | None, **extra) -> dict:
    return {
        "brand": agency,
        "recruiter": recruiter,
        "subject_name": recruiter.display_name if recruiter else agency.name,
        "text_min": TEXT_MIN,
        "text_max": TEXT_MAX,
        "rating_words": RATING_WORDS,
        "honeypot": HONEYPOT,
        **extra,
    }


def render_form(request, form, agency, recruiter, *, action, status=200, **extra):
    context = page_context(
        agency,
        recruiter,
        form=form,
        action=action,
        # The error summary links these to their box itself (focus lands ready to type); the
        # others, choices, to their group.
        typed_fields=("text", "reviewer_name", "email", "consent"),
        name_previews=form.name_previews(extra.pop("fallback_name", "")),
        **extra,
    )
    return render(request, "reviews/form.html", context, status=status)


def too_many(form, seconds: int) -> None:
    minutes = max(1, round(seconds / 60))
    form.add_error(
        None,
        _(
            "Too many reviews have been sent from your network in a short time. "
            "Please wait %(minutes)d minutes and send it again; what you wrote is kept below."
        )
        % {"minutes": minutes},
    )


# The link in the review request email ---------------------------------------------------------


@private
@require_http_methods(["GET", "HEAD", "POST"])
def review_form(request, token):
    rr = find_request(token)
    review = existing_review(rr)
    if review is not None:
        if review.status == Review.Status.UNCONFIRMED:
            return redirect("review-confirm", token=token)
        if review.rejected_reason in (services.DUPLICATE_REASON, services.COLLEAGUE_REASON):
            return render_duplicate(request, rr, review)
        if request.method == "POST" and review.editable():
            typed = ReviewForm(request.POST)
            if typed.is_valid() and services.same_review(review, typed.cleaned_data):
                return redirect("review-thanks", token=token)  # a double click: the same review
            # Typed in a second tab (or after the first was sent): what they typed is offered
            # as a change to the review they gave, not dropped for the first one's summary.
            messages.info(
                request,
                _(
                    "You already sent a review from this link. What you just typed is below: "
                    "send it to replace the one we have."
                ),
            )
            return render_form(
                request,
                typed,
                rr.agency,
                review.recruiter,
                action=reverse("review-edit", args=[token]),
                status=409,
            )
        return render_given(request, rr, review)
    state = services.request_state(rr)
    if state != "open":
        template = "reviews/expired.html" if state == "expired" else "reviews/closed.html"
        return render(request, template, page_context(rr.agency, rr.recruiter), status=410)

    if request.method == "POST":
        form = ReviewForm(request.POST)
        wait = rate_limited(request)
        if wait:
            too_many(form, wait)
            form.is_valid()
            return render_form(
                request, form, rr.agency, rr.recruiter, action=request.path, status=429
            )
        if form.is_valid() and form.caught_by_honeypot:
            form.add_error(None, _("Please leave the last field empty and send your review again."))
        if form.is_valid() and rr.source == Source.SETUP_TEST:
            # The setup test's request goes to the admin who ran it: a preview of what the
            # people they place will see. An agency's own admin reviewing it must not count.
            return render(request, "reviews/setup_test_done.html", page_context(rr.agency, None))
        if form.is_valid():
            # A double click: the first one won, and the thank-you page shows what was saved.
            with suppress(services.AlreadyReviewed):
                services.submit(rr, form.cleaned_data)
            return redirect("review-thanks", token=token)
        return render_form(
            request,
            form,
            rr.agency,
            rr.recruiter,
            action=request.path,
            status=400,
            fallback_name=rr.name_to_offer,
            setup_test=rr.source == Source.SETUP_TEST,
        )

    if request.method == "GET":
        services.mark_opened(rr)
    form = ReviewForm(
        initial={
            "rating": rating_from_query(request),
            "role": rr.role,
            "reviewer_name": rr.name_to_offer,
        }
    )
    return render_form(
        request,
        form,
        rr.agency,
        rr.recruiter,
        action=request.path,
        fallback_name=rr.name_to_offer,
        setup_test=rr.source == Source.SETUP_TEST,
    )


def render_given(request, rr: ReviewRequest, review: Review):
    """The review already given: a summary, and a way to change it while that is allowed."""
    context = page_context(
        rr.agency,
        review.recruiter,
        review=review,
        editable=review.editable(),
        review_request=rr,
        unsubscribe_url=unsubscribe_url(rr),
    )
    return render(request, "reviews/given.html", context)


@private
@require_http_methods(["GET", "HEAD", "POST"])
def review_edit(request, token):
    rr = find_request(token)
    review = existing_review(rr)
    if review is None or review.status == Review.Status.UNCONFIRMED:
        return redirect("review-form", token=token)
    if not review.editable():
        messages.info(request, _("This review can no longer be changed."))
        return redirect("review-form", token=token)
    if request.method == "POST":
        form = ReviewForm(request.POST)
        wait = rate_limited(request)
        if wait:
            too_many(form, wait)
            form.is_valid()
            return render_form(
                request, form, rr.agency, review.recruiter, action=request.path, status=429
            )
        if form.is_valid() and not form.caught_by_honeypot:
            try:
                services.update(review, form.cleaned_data)
            except services.NotEditable:
                messages.info(request, _("This review can no longer be changed."))
                return redirect("review-form", token=token)
            messages.success(request, _("Your changes are saved."))
            return redirect("review-thanks", token=token)
        return render_form(
            request, form, rr.agency, review.recruiter, action=request.path, status=400, edit=True
        )
    form = ReviewForm(
        initial={
            "rating": review.rating,
            "text": review.text,
            "role": review.role,
            "reviewer_name": review.reviewer_name,
            "display_name_choice": review.display_name_choice,
            "recommend": "yes" if review.recommend else "no",
            "consent": review.consent,
        }
    )
    return render_form(request, form, rr.agency, review.recruiter, action=request.path, edit=True)


@private
@require_http_methods(["GET", "HEAD"])
def review_thanks(request, token):
    rr = find_request(token)
    review = existing_review(rr)
    if review is None or review.status == Review.Status.UNCONFIRMED:
        return redirect("review-form", token=token)
    dedupe_days = EmailSyncSettings.for_agency(rr.agency).dedupe_days
    context = page_context(
        rr.agency,
        review.recruiter,
        review=review,
        editable=review.editable(),
        review_request=rr,
        unsubscribe_url=unsubscribe_url(rr),
        dedupe_days=dedupe_days,
    )
    return render(request, "reviews/thanks.html", context)


# The recruiter's own link ---------------------------------------------------------------------


def find_recruiter(agency_slug: str, recruiter_slug: str) -> RecruiterProfile:
    return get_object_or_404(
        # A member who left the agency no longer collects reviews for it.
        RecruiterProfile.objects.of_members().select_related("agency", "user"),
        agency__slug=agency_slug,
        slug=recruiter_slug,
    )


@private
@require_http_methods(["GET", "HEAD", "POST"])
def recruiter_link(request, agency_slug, recruiter_slug):
    recruiter = find_recruiter(agency_slug, recruiter_slug)
    agency = recruiter.agency
    action = request.path
    if request.method == "POST":
        form = RecruiterLinkForm(request.POST)
        wait = rate_limited(request)
        if wait:
            too_many(form, wait)
            form.is_valid()
            return render_form(
                request, form, agency, recruiter, action=action, status=429, ask_email=True
            )
        if form.is_valid():
            if not form.caught_by_honeypot:
                services.submit_via_link(agency, recruiter, form.cleaned_data)
            return redirect(
                "recruiter-link-sent", agency_slug=agency.slug, recruiter_slug=recruiter.slug
            )
        return render_form(
            request, form, agency, recruiter, action=action, status=400, ask_email=True
        )
    form = RecruiterLinkForm(initial={"rating": rating_from_query(request)})
    return render_form(request, form, agency, recruiter, action=action, ask_email=True)


@private
@require_http_methods(["GET", "HEAD"])
def recruiter_link_sent(request, agency_slug, recruiter_slug):
    recruiter = find_recruiter(agency_slug, recruiter_slug)
    context = page_context(recruiter.agency, recruiter, confirm_days=services.CONFIRM_DAYS)
    return render(request, "reviews/link_sent.html", context)


@private
@require_http_methods(["GET", "HEAD", "POST"])
def review_confirm(request, token):
    rr = find_request(token)
    if rr.source != Source.RECRUITER_LINK:
        raise Http404
    review = existing_review(rr)
    if review is None:
        raise Http404
    if review.status != Review.Status.UNCONFIRMED:
        if review.counts:
            return redirect("review-thanks", token=token)
        return render_duplicate(request, rr, review)
    if rr.expires_at and rr.expires_at <= timezone.now():
        return render(
            request, "reviews/expired.html", page_context(rr.agency, review.recruiter), status=410
        )
    if request.method == "POST":
        result = services.confirm(rr)
        if result.outcome in ("confirmed", "already"):
            return redirect("review-thanks", token=token)
        if result.outcome == "expired":
            return render(
                request,
                "reviews/expired.html",
                page_context(rr.agency, review.recruiter),
                status=410,
            )
        return render_duplicate(request, rr, result.review)
    return render(
        request, "reviews/confirm.html", page_context(rr.agency, review.recruiter, review=review)
    )


def render_duplicate(request, rr: ReviewRequest, review: Review):
    """Why a confirmed recruiter-link review does not count: asked recently, or a colleague."""
    if review.rejected_reason == services.COLLEAGUE_REASON:
        return render(request, "reviews/colleague.html", page_context(rr.agency, review.recruiter))
    dedupe_days = EmailSyncSettings.for_agency(rr.agency).dedupe_days
    context = page_context(rr.agency, review.recruiter, dedupe_days=dedupe_days)
    return render(request, "reviews/duplicate.html", context)


@require_http_methods(["GET", "HEAD"])
def review_terms(request):
    return render(request, "reviews/terms.html")
