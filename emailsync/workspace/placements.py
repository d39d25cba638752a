"""The Placements page: list, search, create, edit; CSV import with progress; CSV export."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from emailsync.agencies.access import admin_required, agency_object
from emailsync.placements import csvio, matching
from emailsync.placements.models import Placement, PlacementImport, VerificationSettings

from .forms import ImportForm, PlacementForm, VerificationSettingsForm


@admin_required
def placement_list(request):
    q = request.GET.get("q", "")
    placements = matching.search(request.agency, q, limit=None)  # as the dialog searches
    page = Paginator(placements.order_by("-start_date", "-id"), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "workspace/placements/list.html",
        {
            "page": page,
            "q": q,
            "imports": request.agency.placement_imports.all()[:5],
            "verification_form": VerificationSettingsForm(
                instance=VerificationSettings.for_agency(request.agency)
            ),
            "columns": csvio.COLUMNS,
        },
    )


@admin_required
@require_http_methods(["GET", "POST"])
def placement_edit(request, placement_id=None):
    placement = agency_object(request, Placement, pk=placement_id) if placement_id else None
    form = PlacementForm(request.POST or None, instance=placement, agency=request.agency)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.agency = request.agency
        if placement is None:
            saved.created_by = request.user
        saved.save()
        request.agency.record(
            request.user,
            "placement.created" if placement is None else "placement.edited",
            str(saved),
            placement=saved.pk,
            fields=sorted(form.changed_data),
        )
        messages.success(request, _("Saved %(placement)s.") % {"placement": saved})
        return redirect("placements")
    return render(
        request,
        "workspace/placements/edit.html",
        {"form": form, "placement": placement},
        status=400 if form.errors else 200,
    )


@admin_required
@require_POST
def verification_settings(request):
    settings = VerificationSettings.for_agency(request.agency)
    form = VerificationSettingsForm(request.POST, instance=settings)
    if form.is_valid() and form.has_changed():
        form.save()
        request.agency.record(
            request.user,
            "placements.settings_changed",
            request.agency.name,
            auto_verify_exact_ref=settings.auto_verify_exact_ref,
        )
    messages.success(request, _("Saved."))
    return redirect("placements")


@admin_required
@require_http_methods(["GET", "POST"])
def placement_import(request):
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > csvio.MAX_BYTES:
                raise csvio.CsvProblem(
                    _("The file is larger than 5 MB. Split it and upload the parts.")
                )
            # Small files run at once, in the request: the job is created already claimed
            # (running, under a lease), so the worker cannot pick it up and import it twice.
            job = csvio.create_import(
                request.agency,
                request.user,
                upload.read(),
                upload.name,
                claim_up_to=csvio.SYNC_ROWS,
            )
        except csvio.CsvProblem as exc:
            form.add_error("file", str(exc))
        else:
            if job.status == PlacementImport.Status.RUNNING:
                csvio.run_import(job)
            return redirect("placement-import-status", import_id=job.pk)
    return render(
        request,
        "workspace/placements/import.html",
        {"form": form, "columns": csvio.COLUMNS},
        status=400 if form.errors else 200,
    )


@admin_required
def placement_import_status(request, import_id):
    job = agency_object(request, PlacementImport, pk=import_id)
    template = (
        "workspace/placements/_progress.html"
        if request.htmx
        else "workspace/placements/import_status.html"
    )
    return render(request, template, {"job": job})


@admin_required
def placement_export(request):
    response = StreamingHttpResponse(
        csvio.export_rows(request.agency), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="placements-{stamp}.csv"'
    return response
