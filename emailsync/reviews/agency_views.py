"""The agency's side of reviews that this app owns: how admins hear about new reviews, and the
recruiters' own review links. (Verification and the Reviews page belong to the agency app.)"""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from emailsync.agencies.access import admin_required
from emailsync.review_requests.models import EmailSyncSettings

from .services import absolute


class NotificationForm(forms.ModelForm):
    class Meta:
        model = EmailSyncSettings
        fields = ["review_notifications"]
        labels = {"review_notifications": gettext_lazy("Tell admins about new reviews with")}
        widgets = {"review_notifications": forms.RadioSelect}


@admin_required
def review_notifications(request):
    agency = request.agency
    settings = EmailSyncSettings.for_agency(agency)
    form = NotificationForm(request.POST or None, instance=settings)
    if request.method == "POST" and form.is_valid():
        if form.has_changed():
            form.save()
            agency.record(
                request.user,
                "reviews.notifications_changed",
                agency.name,
                review_notifications=settings.review_notifications,
            )
        messages.success(request, _("Saved."))
        return redirect("review-notifications")
    links = [
        (profile, absolute(reverse("recruiter-link", args=[agency.slug, profile.slug])))
        for profile in agency.profiles.of_members()
    ]
    return render(
        request,
        "reviews/agency_notifications.html",
        {"form": form, "links": links},
        status=400 if form.errors else 200,
    )
