"""The API's pages in the agency app (/app/api/): integration method, API keys, webhooks and
their delivery log. Admins only; every change is in the agency's audit log."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from emailsync.agencies.access import admin_required, agency_object
from emailsync.review_requests.models import EmailSyncSettings

from . import webhooks
from .forms import KeyForm, MethodForm, WebhookForm
from .models import ApiKey, ApiSettings, WebhookDelivery, WebhookEndpoint, new_webhook_secret


def overview_context(request, **extra):
    agency = request.agency
    return {
        "method_form": MethodForm(instance=ApiSettings.for_agency(agency)),
        "key_form": KeyForm(),
        "keys": agency.api_keys.select_related("created_by", "revoked_by"),
        "endpoints": agency.webhook_endpoints.all(),
        "events": webhooks.EVENTS,
        **extra,
    }


@admin_required
def overview(request):
    return render(request, "api/overview.html", overview_context(request))


@admin_required
@require_POST
def save_method(request):
    settings = ApiSettings.for_agency(request.agency)
    form = MethodForm(request.POST, instance=settings)
    if not form.is_valid():
        return render(
            request, "api/overview.html", overview_context(request, method_form=form), status=400
        )
    with transaction.atomic():
        settings = form.save(commit=False)
        settings.changed_at = timezone.now()
        settings.save()
        sync = EmailSyncSettings.for_agency(request.agency)
        if not settings.email_sync_allowed and sync.enabled:
            # API only: Email Sync stops for the whole agency (the BCC address takes no triggers).
            sync.enabled = False
            sync.save(update_fields=["enabled"])
        request.agency.record(
            request.user,
            "api.method_changed",
            settings.get_method_display(),
            method=settings.method,
        )
    messages.success(request, _("Saved: %(method)s.") % {"method": settings.get_method_display()})
    return redirect("api-overview")


@admin_required
@require_POST
def key_create(request):
    form = KeyForm(request.POST)
    if not form.is_valid():
        return render(
            request, "api/overview.html", overview_context(request, key_form=form), status=400
        )
    key, raw = ApiKey.issue(request.agency, form.cleaned_data["name"], by=request.user)
    # Shown in this response only: it is stored as a hash and cannot be shown again.
    response = render(
        request, "api/overview.html", overview_context(request, new_key=raw, new_key_row=key)
    )
    response["Cache-Control"] = "no-store"
    return response


@admin_required
@require_POST
def key_revoke(request, key_id):
    key = agency_object(request, ApiKey, pk=key_id)
    if key.revoke(by=request.user):
        messages.success(
            request, _("Revoked %(name)s: it stops working at once.") % {"name": key.name}
        )
    return redirect("api-overview")


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_edit(request, endpoint_id=None):
    endpoint = agency_object(request, WebhookEndpoint, pk=endpoint_id) if endpoint_id else None
    form = WebhookForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.agency = request.agency
        if endpoint is None:
            saved.created_by = request.user
        saved.events = ",".join(form.cleaned_data["event_types"])
        saved.save()
        request.agency.record(
            request.user,
            "api.webhook_created" if endpoint is None else "api.webhook_changed",
            saved.url,
            endpoint=saved.pk,
            events=saved.event_list(),
            active=saved.active,
        )
        return redirect("webhook-detail", saved.pk)
    return render(
        request,
        "api/webhook_edit.html",
        {"form": form, "endpoint": endpoint},
        status=400 if form.errors else 200,
    )


@admin_required
def webhook_detail(request, endpoint_id):
    endpoint = agency_object(request, WebhookEndpoint, pk=endpoint_id)
    deliveries = list(endpoint.deliveries.prefetch_related("log")[:50])
    return render(
        request,
        "api/webhook_detail.html",
        {"endpoint": endpoint, "deliveries": deliveries, "events": webhooks.EVENTS},
    )


@admin_required
@require_POST
def webhook_test(request, endpoint_id):
    """Queue a `webhook.test` event and try it at once, so the log shows the answer now."""
    endpoint = agency_object(request, WebhookEndpoint, pk=endpoint_id)
    delivery = webhooks.queue_test(endpoint)
    webhooks.deliver_due(only=[delivery.pk])
    delivery.refresh_from_db()
    if delivery.status == WebhookDelivery.Status.DELIVERED:
        messages.success(
            request,
            _("Test event delivered (HTTP %(status)s).") % {"status": delivery.response_status},
        )
    else:
        messages.error(
            request,
            _("The test event was not accepted: %(error)s. It will be retried.")
            % {"error": delivery.last_error},
        )
    return redirect("webhook-detail", endpoint.pk)


@admin_required
@require_POST
def webhook_rotate(request, endpoint_id):
    endpoint = agency_object(request, WebhookEndpoint, pk=endpoint_id)
    endpoint.secret = new_webhook_secret()
    endpoint.save(update_fields=["secret"])
    request.agency.record(
        request.user, "api.webhook_secret_rotated", endpoint.url, endpoint=endpoint.pk
    )
    messages.success(request, _("New signing secret: deliveries are signed with it from now on."))
    return redirect("webhook-detail", endpoint.pk)


@admin_required
@require_POST
def webhook_delete(request, endpoint_id):
    endpoint = agency_object(request, WebhookEndpoint, pk=endpoint_id)
    request.agency.record(request.user, "api.webhook_deleted", endpoint.url, endpoint=endpoint.pk)
    endpoint.delete()
    messages.success(request, _("Webhook endpoint deleted."))
    return redirect("api-overview")


@admin_required
@require_POST
def delivery_retry(request, delivery_id):
    delivery = agency_object(
        request, WebhookDelivery.objects.select_related("endpoint"), pk=delivery_id
    )
    if delivery.status == WebhookDelivery.Status.FAILED:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=WebhookDelivery.Status.QUEUED, attempts=0, next_attempt_at=timezone.now()
        )
        request.agency.record(
            request.user, "api.webhook_redelivered", delivery.event, delivery=delivery.pk
        )
        messages.success(request, _("Queued again."))
    return redirect("webhook-detail", delivery.endpoint_id)
