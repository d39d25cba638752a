"""Aggregates for reviews verified before this app existed (historical models, plain Python)."""

from django.db import migrations
from django.utils import timezone


def fill(apps, schema_editor):
    from emailsync.profiles.aggregates import bayesian, rank

    Review = apps.get_model("reviews", "Review")
    Moderation = apps.get_model("profiles", "Moderation")
    AgencyRating = apps.get_model("profiles", "AgencyRating")
    RecruiterRating = apps.get_model("profiles", "RecruiterRating")
    RecruiterProfile = apps.get_model("agencies", "RecruiterProfile")
    hidden = set(Moderation.objects.values_list("review_id", flat=True))
    now = timezone.now()
    agencies, recruiters = {}, {}

    def add(table, key, rating, role, when):
        row = table.setdefault(
            key,
            {
                "count": 0,
                "total": 0,
                **{f"star_{n}": 0 for n in range(1, 6)},
                "candidate_count": 0,
                "candidate_total": 0,
                "client_count": 0,
                "client_total": 0,
                "last_review_at": None,
            },
        )
        row["count"] += 1
        row["total"] += rating
        row[f"star_{rating}"] += 1
        if role in ("candidate", "client"):
            row[f"{role}_count"] += 1
            row[f"{role}_total"] += rating
        if row["last_review_at"] is None or when > row["last_review_at"]:
            row["last_review_at"] = when

    rows = Review.objects.filter(status="verified").values_list(
        "pk", "agency_id", "recruiter_id", "rating", "role", "submitted_at"
    )
    for pk, agency_id, recruiter_id, rating, role, when in rows.iterator():
        if pk in hidden:
            continue
        add(agencies, agency_id, rating, role, when)
        if recruiter_id:
            add(recruiters, recruiter_id, rating, role, when)
    for values in (*agencies.values(), *recruiters.values()):
        values["score"] = bayesian(values["count"], values["total"])
        values["rank"] = rank(values["count"], values["total"], values["last_review_at"], now)
    for agency_id, values in agencies.items():
        AgencyRating.objects.update_or_create(agency_id=agency_id, defaults=values)
    owner = dict(RecruiterProfile.objects.values_list("pk", "agency_id"))
    for recruiter_id, values in recruiters.items():
        RecruiterRating.objects.update_or_create(
            recruiter_id=recruiter_id, defaults={**values, "agency_id": owner[recruiter_id]}
        )


class Migration(migrations.Migration):
    dependencies = [("profiles", "0001_initial")]
    operations = [migrations.RunPython(fill, migrations.RunPython.noop)]
