"""The agency's side of its public profile (under /app/profiles/, admins only): the public
addresses and the widget code, the reviews operators hid and why, and the public reply."""

from django import forms
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from emailsync.agencies.access import admin_required, agency_object
from emailsync.reviews.models import Review

from . import presenting
from .models import REPLY_MAX, Moderation, ReviewReply, rating_of


def hidden_reviews(agency):
    """The agency's reviews an operator hid, with the reason: for any agency page to show."""
    return (
        Moderation.objects.filter(review__agency=agency)
        .select_related("review", "review__recruiter")
        .order_by("-hidden_at")
    )


def public_state(reviews) -> dict[int, dict]:
    """For a list of the agency's reviews (e.g. its Reviews page): each one's public reply and
    whether it is hidden, in two queries. {review_id: {"reply": ReviewReply|None,
    "hidden": Moderation|None, "public": bool, "reply_url": str}}"""
    ids = [r.pk for r in reviews]
    replies = {r.review_id: r for r in ReviewReply.objects.filter(review_id__in=ids)}
    hidden = {m.review_id: m for m in Moderation.objects.filter(review_id__in=ids)}
    return {
        r.pk: {
            "reply": replies.get(r.pk),
            "hidden": hidden.get(r.pk),
            "public": r.status == Review.Status.VERIFIED and r.pk not in hidden,
            "reply_url": reverse("profiles-reply", args=[r.pk]),
        }
        for r in reviews
    }


@admin_required
def profile_overview(request):
    agency = request.agency
    base = presenting.absolute("")
    script = presenting.absolute(reverse("profiles-widget-script"))
    snippet = f'<script src="{script}" data-agency="{agency.slug}" async></script>'
    context = {
        "rating": rating_of(agency),
        "public_url": presenting.absolute(presenting.agency_url(agency)),
        "snippet": snippet,
        "widget_url": presenting.absolute(reverse("profiles-widget", args=[agency.slug])),
        "base": base,
        "hidden": hidden_reviews(agency),
    }
    return render(request, "profiles/agency_overview.html", context)


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=gettext_lazy("Your public reply"),
        max_length=REPLY_MAX,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=gettext_lazy(
            "Shown under the review on your public profile and widget. Be courteous; never "
            "mention the reviewer's contact details or the placement's terms."
        ),
    )


def _excerpt(text: str) -> str:
    return text if len(text) <= 500 else text[:499] + "…"


@admin_required
def reply(request, review_id):
    review = agency_object(request, Review.objects.select_related("recruiter"), pk=review_id)
    existing = ReviewReply.objects.filter(review=review).first()
    form = ReplyForm(request.POST or None, initial={"text": existing.text if existing else ""})
    if request.method == "POST":
        if request.POST.get("action") == "remove":
            if existing:
                with transaction.atomic():
                    existing.delete()
                    request.agency.record(
                        request.user,
                        "review.reply_removed",
                        f"review {review.pk}",
                        previous=_excerpt(existing.text),
                    )
                messages.success(request, _("Your reply was removed."))
            return redirect("profiles-reply", review_id=review.pk)
        if review.status == Review.Status.REJECTED:
            # Never public: a reply to it would not be either (one kept from before can go).
            form.add_error(None, _("A rejected review cannot be replied to."))
        elif form.is_valid():
            text = form.cleaned_data["text"].strip()
            with transaction.atomic():
                # Two first replies at once (two tabs, two admins): the second finds the first
                # (get_or_create absorbs the unique key's IntegrityError) and edits it.
                existing, created = ReviewReply.objects.get_or_create(
                    review=review, defaults={"text": text, "author": request.user}
                )
                if created:
                    request.agency.record(
                        request.user,
                        "review.reply_published",
                        f"review {review.pk}",
                        text=_excerpt(text),
                    )
                elif text != existing.text:
                    previous = existing.text
                    existing.text, existing.author = text, request.user
                    existing.updated_at = timezone.now()
                    existing.save()
                    request.agency.record(
                        request.user,
                        "review.reply_edited",
                        f"review {review.pk}",
                        previous=_excerpt(previous),
                        text=_excerpt(text),
                    )
            messages.success(request, _("Your reply is saved."))
            return redirect("profiles-reply", review_id=review.pk)
    moderation = Moderation.objects.filter(review=review).first()
    context = {
        "review": review,
        "reviewer": presenting.public_name(review),
        "existing": existing,
        "form": form,
        "moderation": moderation,
        "public": review.status == Review.Status.VERIFIED and moderation is None,
    }
    return render(request, "profiles/reply.html", context, status=400 if form.errors else 200)
