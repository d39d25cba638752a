"""The Email Sync page (admins only): the switch, the BCC address, settings, guides, the live
setup test, the status panel (quarantine, blocked and unmapped senders) and "get help".

Email Sync is one setting of the agency: nothing here differs per user, and recruiters cannot
open it.
"""

from datetime import timedelta

from django.contrib import messages
from django.db.models import Count, Q
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from emailsync.agencies.access import admin_required, agency_object
from emailsync.agencies.models import AgencyDomain, SenderAddress
from emailsync.inbound.models import BlockedSender, InboundAddress, Trigger, UnmappedSender
from emailsync.review_requests import manual
from emailsync.review_requests.models import EmailSyncSettings, ReviewRequest, Source
from emailsync.reviews.models import Review

from . import dnscheck, leaks
from .forms import EmailSyncSettingsForm, HelpForm, MapSenderForm
from .models import HelpRequest

SETUP_TEST_MINUTES = 30
GUIDES = [
    "gmail",
    "workspace",
    "outlook",
    "m365",
    "salesforce",
    "bullhorn",
    "jobadder",
    "fasttrack360",
    "wizzard",
    "other",
]


def page_context(request, **extra) -> dict:
    agency = request.agency
    sync = EmailSyncSettings.for_agency(agency)
    now = timezone.now()
    since = now - timedelta(days=30)
    address = InboundAddress.current_for(agency)
    old = [
        a
        for a in InboundAddress.objects.filter(agency=agency, retired_at__isnull=False)
        if a.accepts_mail(now)
    ]
    triggers = Trigger.emails(agency)
    # Setup tests are not counted: the requests beside them leave them out too.
    stats = triggers.filter(received_at__gte=since, is_setup_test=False).aggregate(
        total=Count("id"),
        accepted=Count("id", filter=Q(status=Trigger.Status.ACCEPTED)),
        quarantined=Count("id", filter=Q(status=Trigger.Status.QUARANTINED)),
    )
    # Email Sync's own: not the manual, API or recruiter-link requests, nor setup tests.
    stats["requests"] = ReviewRequest.objects.filter(
        agency=agency, created_at__gte=since, source=Source.EMAIL_SYNC
    ).count()
    stats["reviews"] = Review.objects.filter(
        agency=agency, submitted_at__gte=since, review_request__source=Source.EMAIL_SYNC
    ).count()
    context = {
        "sync": sync,
        "address": address,
        "old_addresses": old,
        "form": EmailSyncSettingsForm(instance=sync),
        "domains": agency.domains.all(),
        "last_trigger": triggers.first(),
        "stats": stats,
        "quarantine": list(
            triggers.filter(status=Trigger.Status.QUARANTINED)
            .annotate(held=Count("recipients"))
            .order_by("-received_at")[:20]
        ),
        "unmapped": list(
            UnmappedSender.objects.filter(agency=agency, mapped_to__isnull=True)
            # An address a member was given on the Team page before that mapped it is known.
            .exclude(
                email__in=SenderAddress.objects.of_members().filter(agency=agency).values("email")
            )
            .order_by("-last_seen")[:20]
        ),
        "map_form": MapSenderForm(agency=agency),
        "blocked": list(BlockedSender.objects.filter(agency=agency).order_by("-blocked_at")[:50]),
        "blocked_count": BlockedSender.objects.filter(agency=agency).count(),
        "help_form": HelpForm(),
        "guides": GUIDES,
        "test_active": sync.in_setup_test(now),
        "test": setup_test_state(request, sync, now),
        "leak": leaks.current_alert(agency),
    }
    context.update(extra)
    return context


@admin_required
def email_sync(request):
    return render(request, "workspace/email_sync/page.html", page_context(request))


@admin_required
@require_POST
def switch(request):
    sync = EmailSyncSettings.for_agency(request.agency)
    on = request.POST.get("enabled") == "on"
    if sync.enabled != on:
        sync.enabled = on
        sync.save(update_fields=["enabled"])
        request.agency.record(
            request.user, "email_sync.enabled" if on else "email_sync.disabled", request.agency.name
        )
    messages.success(
        request,
        _("Email Sync is on for the whole agency.") if on else _("Email Sync is off."),
    )
    return redirect("email-sync")


@admin_required
@require_http_methods(["GET", "POST"])
def save_settings(request):
    if request.method == "GET":  # this address stays in the bar after a form with errors
        return render(request, "workspace/email_sync/page.html", page_context(request))
    sync = EmailSyncSettings.for_agency(request.agency)
    form = EmailSyncSettingsForm(request.POST, instance=sync)
    if not form.is_valid():
        return render(
            request,
            "workspace/email_sync/page.html",
            page_context(request, form=form),
            status=400,
        )
    changed = form.changed()
    form.save()
    if changed:
        request.agency.record(
            request.user, "email_sync.settings_changed", request.agency.name, fields=changed
        )
    messages.success(request, _("Email Sync settings saved."))
    return redirect("email-sync")


@admin_required
@require_POST
def rotate(request):
    InboundAddress.rotate(request.agency, by=request.user)
    messages.success(
        request,
        _("New address created. Update it everywhere; the old one keeps working for 14 days."),
    )
    return redirect("email-sync")


# --- the live setup test ---------------------------------------------------------------------


def setup_test_state(request, sync, now) -> dict:
    """The newest test email from the admin who started the test, while it ran, if any."""
    started = (
        sync.setup_test_until - timedelta(minutes=SETUP_TEST_MINUTES)
        if sync.setup_test_until
        else None
    )
    if started is None:
        return {"started": None, "trigger": None, "active": False}
    # The admin who started it (another admin may be looking at the page meanwhile).
    tester = sync.setup_test_by or request.user
    mine = {tester.email.lower()} | {
        s.lower() for s in tester.profile.senders.values_list("email", flat=True)
    }
    # Up to the test's end: the email that ended it moved `setup_test_until` to its arrival,
    # and the admin's real emails after it are not the test.
    since = Trigger.emails(request.agency).filter(
        received_at__gte=started, received_at__lte=sync.setup_test_until
    )
    trigger = (
        since.filter(Q(is_setup_test=True) | Q(sender__in=mine))
        .prefetch_related("recipients__review_request")
        .order_by("-received_at", "-id")
        .first()
    )
    # While waiting: an email from someone else (a colleague, or a demo script sending as a
    # recruiter) went through as a normal trigger; say so, or the admin waits for nothing.
    other = None
    if trigger is None:
        other = since.order_by("-received_at", "-id").only("sender", "received_at").first()
    return {
        "started": started,
        "until": sync.setup_test_until,
        "trigger": trigger,
        "other": other,
        "me": tester.email,
        "active": sync.in_setup_test(now),
    }


@admin_required
@require_POST
def setup_test_start(request):
    sync = EmailSyncSettings.for_agency(request.agency)
    if sync.enabled:  # while it is off the BCC address refuses mail: no test could arrive
        sync.start_setup_test(by=request.user, minutes=SETUP_TEST_MINUTES)
        request.agency.record(request.user, "email_sync.setup_test_started", request.user.email)
    if request.htmx:
        return setup_test_status(request)
    return redirect("email-sync")


@admin_required
@require_POST
def setup_test_stop(request):
    sync = EmailSyncSettings.for_agency(request.agency)
    if sync.setup_test_until is not None:
        sync.setup_test_until = None
        sync.save(update_fields=["setup_test_until"])
        request.agency.record(request.user, "email_sync.setup_test_stopped", request.user.email)
    if request.htmx:
        return setup_test_status(request)
    return redirect("email-sync")


@admin_required
def setup_test_status(request):
    sync = EmailSyncSettings.for_agency(request.agency)
    now = timezone.now()
    return render(
        request,
        "workspace/email_sync/_setup_test.html",
        {
            "test": setup_test_state(request, sync, now),
            "sync": sync,
            "address": InboundAddress.current_for(request.agency),
        },
    )


# --- status panel: quarantine, blocked and unmapped senders ---------------------------------


@admin_required
@require_POST
def trigger_release(request, trigger_id):
    trigger = agency_object(request, Trigger, pk=trigger_id)
    if trigger.status != Trigger.Status.QUARANTINED:
        messages.error(request, _("This email is no longer in quarantine."))
        return redirect("email-sync")
    try:
        outcomes = manual.release(trigger, by=request.user)
    except ValueError:  # released or blocked by someone else since this page was loaded
        messages.error(request, _("This email is no longer in quarantine."))
        return redirect("email-sync")
    invited = sum(o.invited for o in outcomes)
    messages.success(
        request,
        ngettext(
            "Released: %(n)s person will be asked for a review.",
            "Released: %(n)s people will be asked for a review.",
            invited,
        )
        % {"n": invited},
    )
    return redirect("email-sync")


@admin_required
@require_POST
def trigger_block(request, trigger_id):
    trigger = agency_object(request, Trigger, pk=trigger_id)
    if trigger.status != Trigger.Status.QUARANTINED or not trigger.sender:
        messages.error(request, _("This email is no longer in quarantine."))
        return redirect("email-sync")
    manual.block_sender(trigger, by=request.user)
    messages.success(request, _("%(sender)s is blocked.") % {"sender": trigger.sender})
    return redirect("email-sync")


@admin_required
@require_POST
def sender_unblock(request, blocked_id):
    blocked = agency_object(request, BlockedSender, pk=blocked_id)
    manual.unblock_sender(blocked, by=request.user)
    messages.success(
        request,
        _("%(sender)s is no longer blocked: their new emails are treated like any other.")
        % {"sender": blocked.email},
    )
    return redirect("email-sync")


@admin_required
@require_POST
def unmapped_map(request, unmapped_id):
    sender = agency_object(request, UnmappedSender, pk=unmapped_id)
    if sender.mapped_to_id is not None:  # a second click, or a page open since: not again
        messages.info(
            request,
            _("%(email)s already belongs to %(name)s.")
            % {"email": sender.email, "name": sender.mapped_to.display_name},
        )
        return redirect("email-sync")
    form = MapSenderForm(request.POST, agency=request.agency)
    if not form.is_valid():
        messages.error(request, _("Choose a recruiter."))
        return redirect("email-sync")
    credited = sender.map_to(form.cleaned_data["recruiter"], by=request.user)
    messages.success(
        request,
        ngettext(
            "%(email)s now belongs to %(name)s; %(n)s earlier request credited.",
            "%(email)s now belongs to %(name)s; %(n)s earlier requests credited.",
            credited,
        )
        % {
            "email": sender.email,
            "name": form.cleaned_data["recruiter"].display_name,
            "n": credited,
        },
    )
    return redirect("email-sync")


# --- DNS check and help --------------------------------------------------------------------------


@admin_required
def dns_check(request, domain_id):
    domain = agency_object(request, AgencyDomain, pk=domain_id)
    # htmx puts the report under the domain; the link followed without it (no JavaScript, a
    # new tab) gets a page of its own, as the import's progress does.
    template = "workspace/email_sync/_dns.html" if request.htmx else "workspace/email_sync/dns.html"
    return render(request, template, {"domain": domain, "report": dnscheck.check(domain.domain)})


def diagnostics(agency) -> dict:
    """What an operator needs to help, and nothing from any email's content."""
    sync = EmailSyncSettings.for_agency(agency)
    since = timezone.now() - timedelta(days=30)
    recent = Trigger.objects.filter(agency=agency, received_at__gte=since)
    outcomes = {
        f"{row['status']}:{row['reason'] or '-'}": row["n"]
        for row in recent.values("status", "reason").annotate(n=Count("id"))
    }
    last = recent.exclude(source__in=Trigger.ASKED_DIRECTLY).first()
    return {
        "enabled": sync.enabled,
        "delay_hours": sync.delay_hours,
        "business_days": sync.business_day_numbers(),
        "business_hours": f"{sync.business_start:%H:%M}-{sync.business_end:%H:%M}",
        "time_zone": agency.time_zone,
        "dedupe_days": sync.dedupe_days,
        "recipient_cap": sync.recipient_cap,
        "reminder_days": sync.reminder_days,
        "rate_limit_per_hour": sync.rate_limit_per_hour,
        "trust_from_domain": sync.trust_from_domain,
        "trusted_signing_domains": sync.signing_domains(),
        "domains": agency.domain_names(),
        "address": InboundAddress.current_for(agency).redacted,
        "triggers_30d": outcomes,
        "last_trigger": {
            "at": last.received_at.isoformat(),
            "status": last.status,
            "reason": last.reason,
            "auth_method": last.auth_method,
            "auth_detail": last.auth_detail,
        }
        if last
        else None,
        "setup_test_until": sync.setup_test_until.isoformat() if sync.setup_test_until else None,
    }


@admin_required
@require_http_methods(["GET", "POST"])
def get_help(request):
    form = HelpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        HelpRequest.objects.create(
            agency=request.agency,
            created_by=request.user,
            message=form.cleaned_data["message"],
            diagnostics=diagnostics(request.agency),
        )
        request.agency.record(request.user, "email_sync.help_requested", request.user.email)
        messages.success(
            request, _("Sent. Our team will reply by email, usually within one working day.")
        )
        return redirect("email-sync")
    if request.method == "POST":
        return render(
            request,
            "workspace/email_sync/page.html",
            page_context(request, help_form=form),
            status=400,
        )
    return render(
        request,
        "workspace/email_sync/help.html",
        {"form": form, "diagnostics": diagnostics(request.agency)},
    )
