"""Placements as CSV: the documented columns, a per-row validation report, import in chunks.

Columns (header row required, any order, case-insensitive, spaces for underscores; unknown
columns are ignored; separated by commas, semicolons or tabs, as the header row is):

    reference, candidate_name, candidate_email, client_company, client_contact_name,
    client_contact_email, job_title, start_date, recruiter_email

Only `candidate_name` is required. `start_date` is YYYY-MM-DD (also DD/MM/YYYY).
`recruiter_email` is a member's login or sending address. A row whose `reference` already
exists updates that placement, but only the columns the file has and only with non-empty cells
(a file with just `reference,candidate_name` fixes names and leaves everything else alone); other
rows create new ones. A bad row is reported (row number,
column, message) and skipped; the others are imported.

An upload becomes a `PlacementImport` row; `process_pending_imports()` (the worker's job, or
`emailsync placements process-imports`) works through it in chunks, committing progress after
each, so the page's progress bar moves and a crash resumes where it stopped.
"""

import codecs
import csv
import io
import logging
import re
from datetime import date, datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy

from emailsync.agencies.models import SenderAddress, User

from .models import Placement, PlacementImport

log = logging.getLogger("emailsync.placements")

COLUMNS = [
    "reference",
    "candidate_name",
    "candidate_email",
    "client_company",
    "client_contact_name",
    "client_contact_email",
    "job_title",
    "start_date",
    "recruiter_email",
]
REQUIRED = {"candidate_name"}
DELIMITERS = (",", ";", "\t")
# Headings as ATS exports and people write them (after `column_name`: lower case, "_" for
# spaces and hyphens), for the columns above.
ALIASES = {
    "external_ref": "reference",
    "placement_ref": "reference",
    "ref": "reference",
    "placement_id": "reference",
    "candidate": "candidate_name",
    "candidate_full_name": "candidate_name",
    "candidate_email_address": "candidate_email",
    "client": "client_company",
    "client_corporation": "client_company",
    "company": "client_company",
    "client_contact": "client_contact_name",
    "hiring_manager": "client_contact_name",
    "client_contact_email_address": "client_contact_email",
    "hiring_manager_email": "client_contact_email",
    "position": "job_title",
    "job": "job_title",
    "date_begin": "start_date",
    "start": "start_date",
    "placement_start_date": "start_date",
    "consultant_email": "recruiter_email",
    "owner_email": "recruiter_email",
}
# A name exported in two columns (Bullhorn's "Candidate First Name", "Candidate Last Name").
NAME_PARTS = [
    ("candidate_first_name", "candidate_last_name"),
    ("first_name", "last_name"),
]
MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 50_000
CHUNK = 250
SYNC_ROWS = 100  # uploads this small are imported at once, in the request
MAX_REPORTED = 500
LEASE = timedelta(minutes=5)
LIMITS = {
    "reference": 100,
    "candidate_name": 120,
    "client_company": 160,
    "client_contact_name": 120,
    "job_title": 160,
}


class CsvProblem(ValueError):
    """The file as a whole cannot be imported (no header, wrong encoding, too big)."""


def decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise CsvProblem(_("The file is larger than 5 MB. Split it and upload the parts."))
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode Text" export: read as anything else, its NULs look like an empty file.
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            raise CsvProblem(_("The file is not text (UTF-8, UTF-16 or Windows-1252)."))
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvProblem(_("The file is not text (UTF-8, UTF-16 or Windows-1252)."))


def reader_of(text: str):
    """Rows of the file, separated as its header row is: spreadsheets save with commas, with
    semicolons where the comma is the decimal mark (much of Europe), or with tabs. The header is
    read with each, quotes and all, and the one that finds the required columns wins (counting
    characters would be misled by a quoted heading such as "Notes (a; b)"); failing that, the
    one that finds the most columns."""
    first_line = text.split("\n", 1)[0]

    def columns(delimiter: str) -> list[str]:
        try:
            return next(csv.reader([first_line], delimiter=delimiter), [])
        except csv.Error:
            return []

    def fit(delimiter: str) -> tuple[bool, int]:
        found = columns(delimiter)
        return not missing_from([column_name(h) for h in found]), len(found)

    delimiter = max(DELIMITERS, key=fit) if first_line else ","
    return csv.reader(io.StringIO(text), delimiter=delimiter)


def column_name(heading: str) -> str:
    # "Candidate Name" and "candidate-name" are how people (and ATS exports) write candidate_name.
    name = re.sub(r"[\s\-]+", "_", heading.strip().lower())
    return ALIASES.get(name, name)


def header_of(text: str) -> list[str]:
    reader = reader_of(text)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        raise CsvProblem(_("The file is empty."))
    names = [column_name(h) for h in header]
    missing = missing_from(names)
    if missing:
        raise CsvProblem(
            _("The header row has no %(columns)s column (its columns: %(found)s).")
            % {
                "columns": ", ".join(sorted(missing)),
                "found": ", ".join(h.strip() for h in header if h.strip())[:300],
            }
        )
    return names


def missing_from(names: list[str]) -> set[str]:
    """The required columns a header lacks; a name in two parts counts as the name."""
    found = set(names)
    if any(first in found and last in found for first, last in NAME_PARTS):
        found.add("candidate_name")
    return REQUIRED - found


def row_of(names: list[str], cells: list[str]) -> dict:
    """One row's cells by column; a name exported in two parts is joined."""
    row = dict(zip(names, cells, strict=False))
    if "candidate_name" not in row:
        for first, last in NAME_PARTS:
            if first in row and last in row:
                parts = (row[first].strip(), row[last].strip())
                row["candidate_name"] = " ".join(p for p in parts if p)
                break
    return row


def count_rows(text: str) -> int:
    try:
        return sum(1 for row in reader_of(text) if any(c.strip() for c in row)) - 1
    except csv.Error as exc:
        raise CsvProblem(_("The file is not valid CSV: %(error)s") % {"error": exc})


def create_import(agency, by, raw: bytes, filename: str = "", claim_up_to: int = 0):
    """Store an upload as a job. A file of at most `claim_up_to` rows is created already running
    under a lease, for the caller to run at once: the worker's claim_next() cannot run it too."""
    text = decode(raw)
    header_of(text)
    total = count_rows(text)
    if total > MAX_ROWS:
        raise CsvProblem(_("At most %(n)s rows per file.") % {"n": f"{MAX_ROWS:,}"})
    claimed = {}
    if 0 <= total <= claim_up_to:
        now = timezone.now()
        claimed = dict(
            status=PlacementImport.Status.RUNNING, lease_until=now + LEASE, started_at=now
        )
    job = PlacementImport.objects.create(
        agency=agency,
        created_by=by,
        filename=filename[:200],
        content=text,
        total_rows=max(total, 0),
        **claimed,
    )
    agency.record(by, "placements.import_started", filename[:200], rows=job.total_rows)
    return job


def parse_date(value: str) -> date:
    value = value.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise ValidationError(_("Use a date like 2025-03-31 or 31/03/2025 (day first)."))


def recruiters_by_email(agency_id: int) -> dict[str, int]:
    found = dict(
        SenderAddress.objects.of_members()
        .filter(agency_id=agency_id)
        .values_list("email", "profile_id")
    )
    for email, pid in User.objects.filter(agency_id=agency_id, is_active=True).values_list(
        "email", "profile__id"
    ):
        if pid:
            found.setdefault(email.lower(), pid)
    return found


def clean_row(row: dict, recruiters: dict[str, int]) -> tuple[dict, list[tuple[str, str]]]:
    """The placement's fields from one CSV row, and the row's problems (column, message)."""
    problems: list[tuple[str, str]] = []
    value = {k: (row.get(k) or "").strip() for k in COLUMNS}
    fields = {
        "external_ref": value["reference"] or None,
        "candidate_name": value["candidate_name"],
        "candidate_email": value["candidate_email"].lower(),
        "client_company": value["client_company"],
        "client_contact_name": value["client_contact_name"],
        "client_contact_email": value["client_contact_email"].lower(),
        "job_title": value["job_title"],
        "start_date": None,
        "recruiter_id": None,
    }
    if not value["candidate_name"]:
        problems.append(("candidate_name", _("A candidate name is required.")))
    for column, limit in LIMITS.items():
        if len(value[column]) > limit:
            problems.append((column, _("At most %(n)s characters.") % {"n": limit}))
    for column in ("candidate_email", "client_contact_email"):
        if value[column]:
            try:
                validate_email(value[column])
            except ValidationError:
                problems.append((column, _("Not an email address.")))
    if value["start_date"]:
        try:
            fields["start_date"] = parse_date(value["start_date"])
        except ValidationError as exc:
            problems.append(("start_date", exc.messages[0]))
    if value["recruiter_email"]:
        pid = recruiters.get(value["recruiter_email"].lower())
        if pid is None:
            problems.append(("recruiter_email", _("Nobody in your team uses this address.")))
        fields["recruiter_id"] = pid
    return fields, problems


REFERENCE_TAKEN = _lazy("Another import added this reference meanwhile; upload the row again.")
# The CSV column each placement field comes from.
COLUMN_OF = {"external_ref": "reference", "recruiter_id": "recruiter_email"}


def report(job: PlacementImport, number: int, problems) -> None:
    job.error_count += 1
    for column, message in problems:
        if len(job.errors) < MAX_REPORTED:
            job.errors.append({"row": number, "column": column, "message": str(message)})


def given(row: dict) -> set[str]:
    """The fields a row gives a value for: its column is in the file and the cell is not empty."""
    return {field for field in UPDATABLE if (row.get(COLUMN_OF.get(field, field)) or "").strip()}


def import_rows(job: PlacementImport, rows: list[tuple[int, dict]], recruiters) -> None:
    """Validate and write one chunk; counts and the report are added to `job` (not saved).

    The chunk is written in bulk inside a savepoint. If the database refuses it (another import
    created the same reference meanwhile), it is written again row by row, and a refused row is
    reported like an invalid one: a chunk never fails the whole job.
    """
    valid: list[tuple[int, dict, set[str]]] = []
    for number, row in rows:
        fields, problems = clean_row(row, recruiters)
        if problems:
            report(job, number, problems)
        else:
            valid.append((number, fields, given(row)))
    try:
        with transaction.atomic():
            created, updated = write_rows(job, valid)
    except IntegrityError:
        created = updated = 0
        for one in valid:
            try:
                with transaction.atomic():
                    c, u = write_rows(job, [one])
            except IntegrityError:
                report(job, one[0], [("reference", REFERENCE_TAKEN)])
                continue
            created, updated = created + c, updated + u
    job.created_count += created
    job.updated_count += updated


def write_rows(job: PlacementImport, valid) -> tuple[int, int]:
    """Create or update placements from valid rows; how many were created and updated."""
    good: dict[str | None, tuple[int, dict, set[str]]] = {}
    unreferenced: list[dict] = []
    for number, fields, present in valid:
        if fields["external_ref"]:
            good[fields["external_ref"]] = (number, fields, present)  # a later row wins
        else:
            unreferenced.append(fields)
    existing = {
        p.external_ref: p
        for p in Placement.objects.filter(agency_id=job.agency_id, external_ref__in=list(good))
    }
    now = timezone.now()
    to_create = [
        Placement(agency_id=job.agency_id, created_by_id=job.created_by_id, created_at=now, **f)
        for f in unreferenced
    ]
    to_update = []
    for ref, (_number, fields, present) in good.items():
        placement = existing.get(ref)
        if placement is None:
            to_create.append(
                Placement(
                    agency_id=job.agency_id,
                    created_by_id=job.created_by_id,
                    created_at=now,
                    **fields,
                )
            )
        else:
            for key in present:  # columns absent from the file, or empty cells, stay as they are
                setattr(placement, key, fields[key])
            to_update.append(placement)
    Placement.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        Placement.objects.bulk_update(to_update, UPDATABLE, batch_size=500)
    return len(to_create), len(to_update)


UPDATABLE = [
    "candidate_name",
    "candidate_email",
    "client_company",
    "client_contact_name",
    "client_contact_email",
    "job_title",
    "start_date",
    "recruiter_id",
]


def claim_next(now) -> PlacementImport | None:
    with transaction.atomic():
        due = PlacementImport.objects.filter(
            Q(status=PlacementImport.Status.PENDING)
            | Q(status=PlacementImport.Status.RUNNING, lease_until__lt=now)
        )
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        job = due.order_by("created_at", "id").first()
        if job is None:
            return None
        job.status, job.lease_until = PlacementImport.Status.RUNNING, now + LEASE
        job.started_at = job.started_at or now
        job.save(update_fields=["status", "lease_until", "started_at"])
    return job


def run_import(job: PlacementImport, chunk: int = CHUNK) -> None:
    """Work through the file from where it stopped, committing after each chunk."""
    try:
        text = job.content
        names = header_of(text)
        reader = reader_of(text)
        next(reader)
        recruiters = recruiters_by_email(job.agency_id)
        done, batch = 0, []
        for number, cells in enumerate(reader, start=2):
            if not any(c.strip() for c in cells):
                continue
            done += 1
            if done <= job.processed_rows:
                continue  # imported before a crash
            batch.append((number, row_of(names, cells)))
            if len(batch) >= chunk:
                commit_chunk(job, batch, recruiters)
                batch = []
        if batch:
            commit_chunk(job, batch, recruiters)
        job.status, job.finished_at, job.lease_until = (
            PlacementImport.Status.DONE,
            timezone.now(),
            None,
        )
        job.total_rows = job.processed_rows
        job.content = ""
        job.save(update_fields=["status", "finished_at", "lease_until", "total_rows", "content"])
        job.agency.record(
            job.created_by,
            "placements.imported",
            job.filename,
            created=job.created_count,
            updated=job.updated_count,
            errors=job.error_count,
        )
    except (CsvProblem, csv.Error) as exc:
        log.warning("placement import %s failed: %s", job.pk, exc)
        job.status, job.finished_at, job.lease_until = (
            PlacementImport.Status.FAILED,
            timezone.now(),
            None,
        )
        job.errors = [*job.errors, {"row": 0, "column": "", "message": str(exc)}][:MAX_REPORTED]
        job.save(update_fields=["status", "finished_at", "lease_until", "errors"])


def commit_chunk(job: PlacementImport, batch, recruiters) -> None:
    with transaction.atomic():
        import_rows(job, batch, recruiters)
        job.processed_rows += len(batch)
        job.lease_until = timezone.now() + LEASE
        job.save(
            update_fields=[
                "processed_rows",
                "created_count",
                "updated_count",
                "error_count",
                "errors",
                "lease_until",
            ]
        )


def process_pending_imports(now=None, limit: int = 5) -> dict:
    """The worker's job: run waiting (or abandoned) imports. Returns what it did."""
    now = now or timezone.now()
    ran = rows = 0
    for _attempt in range(limit):
        job = claim_next(now)
        if job is None:
            break
        before = job.processed_rows
        run_import(job)
        ran += 1
        rows += job.processed_rows - before
    return {"imports": ran, "rows": rows}


# --- export ----------------------------------------------------------------------------------


def safe_cell(value) -> str:
    """Text a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


class Echo:
    def write(self, value):
        return value


def export_rows(agency):
    writer = csv.writer(Echo())
    yield "\ufeff" + writer.writerow(COLUMNS)
    queryset = (
        Placement.objects.filter(agency=agency)
        .order_by("id")
        .values_list(
            "external_ref",
            "candidate_name",
            "candidate_email",
            "client_company",
            "client_contact_name",
            "client_contact_email",
            "job_title",
            "start_date",
            "recruiter__user__email",
        )
    )
    for row in queryset.iterator(chunk_size=1000):
        yield writer.writerow([safe_cell(v) for v in row])
