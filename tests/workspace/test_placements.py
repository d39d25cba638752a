"""Placements: create and edit; CSV import with a per-row report, in chunks with progress, by
the worker's job or the command; updates by reference; CSV export that round-trips safely."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from emailsync.placements import csvio
from emailsync.placements.models import Placement, PlacementImport

pytestmark = pytest.mark.django_db

HEADER = "reference,candidate_name,candidate_email,client_company,start_date,recruiter_email\n"


def upload(admin, text, name="placements.csv"):
    return admin.post(
        reverse("placement-import"), {"file": SimpleUploadedFile(name, text.encode())}
    )


def test_create_and_edit_a_placement(acme, admin):
    data = {
        "candidate_name": "Pat",
        "candidate_email": "pat@people.test",
        "start_date": "2025-02-03",
    }
    assert admin.post(reverse("placement-create"), data).status_code == 302
    p = Placement.objects.get()
    assert p.agency == acme and p.created_by == acme.admin
    admin.post(reverse("placement-edit", args=[p.pk]), {**data, "external_ref": "R1"})
    assert Placement.objects.get().external_ref == "R1"
    clash = admin.post(reverse("placement-create"), {**data, "external_ref": "R1"})
    assert clash.status_code == 400 and Placement.objects.count() == 1


def test_small_import_runs_at_once_with_a_row_report(acme, admin):
    text = HEADER + (
        "R1,Ann Lee,ann@people.test,Client Co,2025-03-31,sam@acme.test\n"
        ",,nobody@people.test,,2025-01-01,\n"  # no name
        "R3,Bo,not-an-email,,31/12/2024,stranger@else.test\n"
    )
    response = upload(admin, text)
    job = PlacementImport.objects.get()
    assert response.url == reverse("placement-import-status", args=[job.pk])
    assert (job.status, job.created_count, job.error_count) == ("done", 1, 2)
    assert {(e["row"], e["column"]) for e in job.errors} == {
        (3, "candidate_name"),
        (4, "candidate_email"),
        (4, "recruiter_email"),
    }
    ann = Placement.objects.get()
    assert (ann.external_ref, ann.recruiter, str(ann.start_date)) == (
        "R1",
        acme.sam.profile,
        "2025-03-31",
    )
    page = admin.get(reverse("placement-import-status", args=[job.pk]))
    assert b"Nobody in your team uses this address." in page.content


def test_an_import_credits_no_one_through_a_removed_members_sending_address(acme, admin):
    """A leaver's sending-address rows stay for their history; a placement imported later
    must not be credited to them through one (the API refuses the same address as a recruiter)."""
    from emailsync.agencies.models import SenderAddress

    sam = acme.sam
    SenderAddress.objects.create(agency=acme, profile=sam.profile, email="sam@home.test")
    sam.remove_from_agency(by=acme.admin)
    upload(admin, HEADER + "R9,Ann Lee,ann@people.test,Client Co,2025-03-31,sam@home.test\n")
    job = PlacementImport.objects.get()
    assert (job.created_count, job.error_count) == (0, 1)
    assert job.errors[0]["column"] == "recruiter_email"


def test_a_bad_file_is_refused_whole(admin):
    assert upload(admin, "name,email\nA,a@b.test\n").status_code == 400
    assert upload(admin, "").status_code == 400
    assert not PlacementImport.objects.exists()


def upload_bytes(admin, raw, name="export.csv"):
    return admin.post(reverse("placement-import"), {"file": SimpleUploadedFile(name, raw)})


@pytest.mark.parametrize(
    "raw",
    [
        # Excel in much of Europe separates with semicolons (a comma is the decimal mark).
        "\ufeffreference;Candidate Name;start_date\r\nR1;Zoë Kowalski;03.11.2026\r\n".encode(),
        # Excel's "Unicode Text": UTF-16 with a byte-order mark, separated by tabs.
        "reference\tcandidate_name\tstart_date\r\nR1\tZoë Kowalski\t03/11/2026\r\n".encode(
            "utf-16"
        ),
        # Column names as people (and ATS exports) write them: spaces, capitals.
        b"Reference,Candidate Name,Start Date\r\nR1,Zo\xeb Kowalski,2026-11-03\r\n",
        # A quoted heading holding the other separator does not mislead the guess.
        b'reference,candidate_name,start_date,"Notes (a; b; c; d; e)"\r\n'
        b"R1,Zo\xeb Kowalski,2026-11-03,x\r\n",
        'reference;candidate_name;start_date;"Client, site, region, team"\r\n'
        "R1;Zoë Kowalski;2026-11-03;Acme\r\n".encode(),
    ],
    ids=[
        "semicolons",
        "utf16-tabs",
        "spaced-names",
        "commas-quoted-semicolons",
        "semicolons-quoted-comma",
    ],
)
def test_spreadsheet_exports_import_as_they_are(acme, admin, raw):
    upload_bytes(admin, raw)
    job = PlacementImport.objects.get()
    assert (job.status, job.created_count, job.error_count) == ("done", 1, 0)
    zoe = Placement.objects.get()
    assert (zoe.external_ref, zoe.candidate_name, str(zoe.start_date)) == (
        "R1",
        "Zoë Kowalski",
        "2026-11-03",
    )


def test_a_file_without_a_name_column_says_which_columns_it_has(admin):
    # Say what we found, not just what is missing.
    response = upload(admin, "Placement ID,Client Corporation,Consultant\n1,Acme,Sam\n")
    assert response.status_code == 400 and not PlacementImport.objects.exists()
    assert "Placement ID, Client Corporation, Consultant" in response.content.decode()


def test_an_ats_export_imports_as_it_is(acme, admin):
    """Bullhorn and JobAdder name their columns their own way, and Bullhorn exports the
    candidate's name in two: the file imports without being edited first."""
    text = (
        "Placement ID,Candidate First Name,Candidate Last Name,Client Corporation,Position,"
        "Date Begin,Consultant Email\n"
        "BH-1,Ava,Singh,Acme Ltd,Chef,2026-11-03,sam@acme.test\n"
    )
    upload(admin, text)
    job = PlacementImport.objects.get()
    assert (job.status, job.created_count, job.error_count) == ("done", 1, 0)
    ava = Placement.objects.get()
    assert (ava.external_ref, ava.candidate_name, ava.client_company, ava.job_title) == (
        "BH-1",
        "Ava Singh",
        "Acme Ltd",
        "Chef",
    )
    assert str(ava.start_date) == "2026-11-03" and ava.recruiter == acme.sam.profile


def test_large_import_runs_in_chunks_in_the_worker_and_updates_by_reference(acme, admin):
    rows = "".join(f"R{i},Person {i},p{i}@people.test,Co,2025-01-02,\n" for i in range(1000))
    upload(admin, HEADER + rows)
    job = PlacementImport.objects.get()
    assert (job.status, job.total_rows, job.processed_rows) == ("pending", 1000, 0)
    progress = admin.get(reverse("placement-import-status", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in progress.content  # the page polls while it waits
    claimed = csvio.claim_next(job.created_at)
    csvio.commit_chunk(claimed, [(2, {"candidate_name": "X", "reference": "R0"})], {})
    assert PlacementImport.objects.get().processed_rows == 1  # progress is committed per chunk
    PlacementImport.objects.filter(pk=job.pk).update(lease_until=job.created_at)  # "crashed"
    call_command("placements", "process-imports", stdout=io.StringIO())
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.content) == ("done", 1000, "")
    assert Placement.objects.filter(agency=acme).count() == 1000
    done = admin.get(reverse("placement-import-status", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert b"hx-trigger" not in done.content  # finished: polling stops
    # Importing the same references again updates instead of duplicating.
    upload(admin, HEADER + "R5,Renamed,p5@people.test,New Co,2025-01-03,\n")
    assert Placement.objects.count() == 1000
    assert Placement.objects.get(external_ref="R5").client_company == "New Co"
    assert csvio.process_pending_imports() == {"imports": 0, "rows": 0}


def test_reimport_by_reference_changes_only_the_columns_the_file_gives(acme, admin):
    """A file with only some columns (or empty cells) must not blank the others."""
    import datetime

    p = Placement.objects.create(
        agency=acme,
        external_ref="R1",
        candidate_name="Cara",
        candidate_email="cara@c.test",
        client_company="Big Co",
        client_contact_email="boss@big.test",
        start_date=datetime.date(2025, 1, 6),
        recruiter=acme.sam.profile,
    )
    upload(admin, "reference,candidate_name\nR1,Cara Smith\n")
    p.refresh_from_db()
    assert p.candidate_name == "Cara Smith"
    kept = (p.candidate_email, p.client_company, p.client_contact_email, p.start_date, p.recruiter)
    assert kept == (
        "cara@c.test",
        "Big Co",
        "boss@big.test",
        datetime.date(2025, 1, 6),
        acme.sam.profile,
    )
    upload(admin, HEADER + "R1,Cara Smith,,Other Co,,\n")  # empty cells change nothing either
    p.refresh_from_db()
    assert (p.client_company, p.candidate_email, p.start_date, p.recruiter) == (
        "Other Co",
        "cara@c.test",
        datetime.date(2025, 1, 6),
        acme.sam.profile,
    )


def test_a_small_import_run_in_the_request_is_not_claimed_by_the_worker(acme, admin, monkeypatch):
    """The request runs a small file itself; the worker's job, arriving meanwhile, must not
    claim the same job and import its rows a second time."""
    from django.utils import timezone

    real = csvio.run_import
    claimed = []

    def run_import(job, *args, **kwargs):
        claimed.append(csvio.claim_next(timezone.now()))  # the worker's pass, concurrently
        return real(job, *args, **kwargs)

    monkeypatch.setattr(csvio, "run_import", run_import)
    upload(admin, "candidate_name\nAnn\nBob\n")
    assert claimed == [None]
    assert PlacementImport.objects.get().status == "done"
    assert Placement.objects.filter(agency=acme).count() == 2


def test_a_reference_taken_meanwhile_is_a_row_error_not_a_stuck_job(acme, monkeypatch):
    """Another import creates the same reference between the lookup and the insert: the row is
    reported, the rest is imported and the job finishes."""
    real = Placement.objects.bulk_create

    def racing(objs, *args, **kwargs):
        objs = list(objs)
        if any(o.external_ref == "R2" for o in objs):  # committed by the other import just now
            Placement(agency=acme, external_ref="R2", candidate_name="Other").save()
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(Placement.objects, "bulk_create", racing)
    job = csvio.create_import(acme, acme.admin, b"reference,candidate_name\nR1,Ann\nR2,Bob\n")
    csvio.run_import(job)
    job.refresh_from_db()
    assert (job.status, job.created_count, job.error_count) == ("done", 1, 1)
    assert job.errors[0]["row"] == 3 and job.errors[0]["column"] == "reference"
    assert Placement.objects.get(external_ref="R1").candidate_name == "Ann"


def test_export_round_trips_and_defuses_formulas(acme, admin):
    Placement.objects.create(agency=acme, candidate_name="=HYPERLINK(1)", external_ref="E1")
    response = admin.get(reverse("placement-export"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["candidate_name"] == "'=HYPERLINK(1)" and rows[0]["reference"] == "E1"
    assert list(rows[0]) == csvio.COLUMNS
