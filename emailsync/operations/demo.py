"""The demo agency's history: what a new user sees on `make run` before sending a single email.

Four months of an agency using Email Sync: recruiters with photos, placements, trigger emails in
the activity log (invited and skipped recipients, one quarantined email), review requests and
reviews in every column of the Reviews page, and verified reviews with public replies on the
profiles. Everything is keyed by a stable name (a placement reference, a reviewer's address, a
trigger's Message-ID), so seeding again creates nothing and never undoes what a user did.

Only reserved example domains (RFC 2606) are used, so no demo email can reach a real person.
"""

import hashlib
import io
import random
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from emailsync.agencies.models import AuditEntry, RecruiterProfile
from emailsync.inbound.models import Trigger, TriggerRecipient
from emailsync.placements.models import Placement
from emailsync.profiles.models import ReviewReply
from emailsync.review_requests.models import AskedRecipient, ReviewRequest, Source
from emailsync.reviews.models import EDIT_WINDOW, Review

RS = ReviewRequest.Status

# The people: bio, specialisms and the colours of their generated photo.
PROFILES = {
    "admin": {
        "bio": "Avery runs operations at Demo Recruitment and reads every review that comes in.",
        "specialisms": "Operations, Candidate experience",
        "colours": ("#0f766e", "#14b8a6"),
    },
    "sam": {
        "bio": (
            "Sam has placed software engineers, data people and engineering managers across "
            "London for nine years, from first-time hires at start-ups to platform teams."
        ),
        "specialisms": "Software engineering, Data, Engineering leadership",
        "colours": ("#1d4ed8", "#60a5fa"),
    },
    "priya": {
        "bio": (
            "Priya places accountants and finance leaders, interim and permanent, and is known "
            "for honest advice on offers and counter-offers."
        ),
        "specialisms": "Accounting, FP&A, Finance leadership",
        "colours": ("#b45309", "#f59e0b"),
    },
}

# Placements the agency keeps: (reference, candidate, candidate email, client, client contact,
# client contact email, job title, start (days ago), recruiter).
PLACEMENTS = [
    ("DR-2401", "Hannah Lewis", "hannah.lewis@example.net", "Brightline Software",
     "Olivia Grant", "olivia.grant@brightline.example", "Backend Engineer", 124, "sam"),
    ("DR-2402", "James Okafor", "j.okafor@example.org", "Fenwick Capital", "Marcus Webb",
     "m.webb@fenwick-capital.example", "Financial Controller", 110, "priya"),
    ("DR-2403", "Tomás Ortega", "tomas.ortega@example.com", "Kestrel Health", "Ruth Adams",
     "ruth.adams@kestrel-health.example", "Data Engineer", 101, "sam"),
    ("DR-2404", "Grace Kim", "grace.kim@example.net", "Harbour Logistics", "Ben Foster",
     "ben.foster@harbour-logistics.example", "Management Accountant", 86, "priya"),
    ("DR-2405", "Noah Bennett", "noah.bennett@example.org", "Brightline Software",
     "Olivia Grant", "olivia.grant@brightline.example", "Engineering Manager", 72, "sam"),
    ("DR-2406", "Daniel Moore", "daniel.moore@example.com", "Northgate Insurance",
     "Sofia Rossi", "sofia.rossi@northgate.example", "FP&A Analyst", 57, "priya"),
    ("DR-2407", "Aisha Rahman", "aisha.rahman@example.net", "Kestrel Health", "Ruth Adams",
     "ruth.adams@kestrel-health.example", "Senior Python Developer", 43, "sam"),
    ("DR-2408", "Ella Wright", "ella.wright@example.org", "Harbour Logistics", "Ben Foster",
     "ben.foster@harbour-logistics.example", "Finance Business Partner", 29, "priya"),
    ("DR-2409", "Chloe Evans", "chloe.evans@example.com", "Lumen Analytics", "Raj Patel",
     "raj.patel@lumen-analytics.example", "Data Scientist", 20, "sam"),
    ("DR-2410", "Leo Martins", "leo.martins@example.net", "Brightline Software",
     "Olivia Grant", "olivia.grant@brightline.example", "Site Reliability Engineer", 9, "sam"),
    ("DR-2411", "Maya Thompson", "maya.thompson@example.org", "Fenwick Capital", "Marcus Webb",
     "m.webb@fenwick-capital.example", "Treasury Analyst", 5, "priya"),
    ("DR-2412", "Oscar Hughes", "oscar.hughes@example.com", "Lumen Analytics", "Raj Patel",
     "raj.patel@lumen-analytics.example", "Analytics Engineer", 3, "sam"),
]  # fmt: skip


@dataclass
class Story:
    """One person asked for a review, and how far they got."""

    email: str
    name: str
    role: str
    recruiter: str
    days_ago: float  # when the trigger email (or request) was sent
    state: str  # scheduled | sent | opened | reminded | missing | verified | rejected
    source: str = Source.EMAIL_SYNC
    rating: int = 5
    text: str = ""
    display: str = "initial"
    recommend: bool = True
    placement: str = ""  # the reference it is verified against
    reply: str = ""
    reject: str = ""  # reason code (and note after a colon)
    cc: list = field(default_factory=list)  # (email, reason) skipped beside the invited one
    message: str = ""  # personal message of a manual request


STORIES = [
    Story("hannah.lewis@example.net", "Hannah Lewis", "candidate", "sam", 118, "verified",
          rating=5, placement="DR-2401", display="full",
          text="Sam understood exactly what I was looking for and only put me forward for roles "
               "that fitted. Interview prep was thorough and I had an offer within three weeks.",
          reply="Thank you Hannah – it was a pleasure working with you. Enjoy Brightline!",
          cc=[("sam@demo-recruitment.example", "sender")]),
    Story("m.webb@fenwick-capital.example", "Marcus Webb", "client", "priya", 104, "verified",
          rating=5, placement="DR-2402",
          text="Priya took the time to understand our finance team before sending a single CV. "
               "The shortlist was small and strong, and our new controller has been excellent."),
    Story("tomas.ortega@example.com", "Tomás Ortega", "candidate", "sam", 96, "verified",
          rating=4, placement="DR-2403",
          text="Good communication throughout and honest feedback after every interview. The "
               "process took a little longer than I hoped, but the role was worth the wait.",
          cc=[("noreply@kestrel-health.example", "role_address")]),
    Story("grace.kim@example.net", "Grace Kim", "candidate", "priya", 81, "verified",
          rating=5, placement="DR-2404", display="full",
          text="Priya negotiated a better package than I would have asked for and prepared me "
               "for every stage. I would recommend her to any accountant looking for a move.",
          reply="Thanks Grace! Harbour are lucky to have you."),
    Story("olivia.grant@brightline.example", "Olivia Grant", "client", "sam", 67, "verified",
          rating=4, placement="DR-2405", source=Source.MANUAL,
          text="Sam filled a difficult engineering manager role for us. Candidates were well "
               "briefed and the feedback loop was quick. We will use Demo Recruitment again."),
    Story("daniel.moore@example.com", "Daniel Moore", "candidate", "priya", 52, "verified",
          rating=3, placement="DR-2406", recommend=True,
          text="The job itself is great. I would have liked more notice about the second "
               "interview and clearer information about the salary band early on.",
          reply="Thank you for the honest feedback, Daniel. We now share salary bands and "
                "interview dates in the first call, for every role."),
    Story("aisha.rahman@example.net", "Aisha Rahman", "candidate", "sam", 38, "verified",
          rating=5, placement="DR-2407",
          text="Friendly, fast and genuinely interested in what I wanted from my next role. Sam "
               "kept me updated at every step and even checked in after my first week.",
          cc=[("priya@demo-recruitment.example", "colleague")]),
    Story("ben.foster@harbour-logistics.example", "Ben Foster", "client", "priya", 24,
          "verified", rating=4, placement="DR-2408", display="full",
          text="Second placement with Priya this year. She knows the finance market well and "
               "does not waste our time with candidates who are not a fit."),
    Story("chloe.evans@example.com", "Chloe Evans", "candidate", "sam", 15, "verified",
          rating=5, placement="DR-2409",
          text="From the first call to signing the contract took twelve days. Sam was "
               "organised, upfront about the salary and really easy to talk to."),
    Story("leo.martins@example.net", "Leo Martins", "candidate", "sam", 6, "missing",
          rating=5,
          text="Sam was brilliant: clear about the role, quick with feedback and he helped me "
               "think through the offer. My first week as an SRE has been great."),
    Story("sofia.rossi@northgate.example", "Sofia Rossi", "client", "priya", 4, "missing",
          rating=4, display="full",
          text="Priya found us two excellent analysts for a hard-to-fill brief. A few CVs early "
               "on missed the mark, but she adjusted quickly once we gave feedback."),
    Story("ethan.clarke@example.org", "Ethan Clarke", "candidate", "sam", 2, "missing",
          rating=4, display="anonymous",
          text="Helpful and professional. The interview preparation notes were especially "
               "useful, and I always knew what was happening next."),
    Story("kevin.price@example.com", "Kevin Price", "candidate", "sam", 33, "rejected",
          rating=1, recommend=False, source=Source.RECRUITER_LINK,
          reject="not_a_placement: Interviewed once in 2023; never placed by us.",
          text="Never heard back after a single phone call two years ago. Not impressed at all "
               "with how this was handled."),
    Story("raj.patel@lumen-analytics.example", "Raj Patel", "client", "sam", 12, "reminded",
          cc=[("no-reply@lumen-analytics.example", "role_address")]),
    Story("ella.wright@example.org", "Ella Wright", "candidate", "priya", 3, "opened"),
    Story("maya.thompson@example.org", "Maya Thompson", "candidate", "priya", 1.5, "sent"),
    Story("oscar.hughes@example.com", "Oscar Hughes", "candidate", "sam", 0.2, "scheduled",
          source=Source.MANUAL, message="Hope the first week at Lumen has gone well, Oscar!"),
    Story("ruth.adams@kestrel-health.example", "Ruth Adams", "client", "sam", 0.1, "scheduled",
          source=Source.MANUAL, message="Thanks again for choosing us for the data team."),
]  # fmt: skip

# Trigger emails that asked nobody, so the activity log shows the rules at work.
SKIPPED_TRIGGERS = [
    # (key, sender, days ago, status, reason, recruiter, [(email, outcome, reason)])
    ("bulk", "sam@demo-recruitment.example", 47, Trigger.Status.SKIPPED, "bulk_send", "sam",
     [(f"attendee{i}@example.com", "skipped", "bulk_send") for i in range(1, 13)]),
    ("ooo", "priya@demo-recruitment.example", 19, Trigger.Status.SKIPPED, "auto_submitted",
     "priya", [("james.okafor@example.org", "skipped", "auto_submitted")]),
    ("quarantine", "careers@demo-recruitment-jobs.example", 1, Trigger.Status.QUARANTINED,
     "sender_not_agency", "", [("nina.patel@example.net", "held", "quarantined")]),
]  # fmt: skip


def _hash(key: str) -> str:
    return hashlib.sha256(f"demo:{key}".encode()).hexdigest()


def avatar_png(initials: str, colours: tuple[str, str], size: int = 256) -> bytes:
    """A square portrait placeholder: a diagonal gradient, a soft figure and the initials."""
    from PIL import Image, ImageDraw, ImageFont

    def rgb(hex_colour):
        return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))

    top, bottom = rgb(colours[0]), rgb(colours[1])
    image = Image.new("RGB", (size, size))
    pixels = image.load()
    for y in range(size):
        for x in range(size):
            t = (x + y) / (2 * size - 2)
            pixels[x, y] = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
    draw = ImageDraw.Draw(image, "RGBA")
    # Head and shoulders, faint, behind the initials.
    draw.ellipse((size * 0.32, size * 0.16, size * 0.68, size * 0.52), fill=(255, 255, 255, 48))
    draw.ellipse((size * 0.14, size * 0.58, size * 0.86, size * 1.25), fill=(255, 255, 255, 48))
    font = ImageFont.load_default(size=int(size * 0.36))
    box = draw.textbbox((0, 0), initials, font=font)
    width, height = box[2] - box[0], box[3] - box[1]
    draw.text(
        ((size - width) / 2 - box[0], (size - height) / 2 - box[1]),
        initials,
        font=font,
        fill=(255, 255, 255, 255),
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def ensure_photo(profile: RecruiterProfile, colours) -> None:
    """Generate the profile's photo once; again only if its file has gone (var/media wiped)."""
    if profile.photo and default_storage.exists(profile.photo.name):
        return
    initials = "".join(part[0] for part in profile.display_name.split()[:2]).upper()
    name = f"demo-{profile.slug}.png"
    if default_storage.exists(f"recruiter-photos/{name}"):
        default_storage.delete(f"recruiter-photos/{name}")
    profile.photo.save(name, ContentFile(avatar_png(initials, colours)), save=True)


def seed_history(agency, people: dict) -> dict:
    """Add the demo agency's history (once). `people` maps 'admin', 'sam', 'priya' to users."""
    now = timezone.now()
    admin = people["admin"]
    profiles = {key: RecruiterProfile.for_user(user) for key, user in people.items()}
    for key, profile in profiles.items():
        extra = PROFILES[key]
        changed = [f for f in ("bio", "specialisms") if not getattr(profile, f)]
        for name in changed:
            setattr(profile, name, extra[name])
        if changed:
            profile.save(update_fields=changed)
        ensure_photo(profile, extra["colours"])

    created = {"placements": 0, "requests": 0, "reviews": 0, "triggers": 0}
    with transaction.atomic():
        placements = {}
        for ref, cand, cand_email, client, contact, contact_email, job, days, rec in PLACEMENTS:
            start = (now - timedelta(days=days)).date()
            placement, new = Placement.objects.get_or_create(
                agency=agency,
                external_ref=ref,
                defaults=dict(
                    candidate_name=cand,
                    candidate_email=cand_email,
                    client_company=client,
                    client_contact_name=contact,
                    client_contact_email=contact_email,
                    job_title=job,
                    start_date=start,
                    recruiter=profiles[rec],
                    created_by=admin,
                    created_at=now - timedelta(days=days + 3),
                ),
            )
            placements[ref] = placement
            created["placements"] += new

        rng = random.Random(8)  # the same minutes of the day on every machine
        for story in STORIES:
            # Told apart by address (and trigger): what a user changed or deleted stays so.
            if (
                ReviewRequest.objects.filter(agency=agency, email=story.email).exists()
                or Trigger.objects.filter(
                    agency=agency, message_id_hash=_hash(story.email)
                ).exists()
            ):
                continue
            jitter = timedelta(minutes=rng.randint(0, 300))
            at = (
                now
                - timedelta(days=story.days_ago)
                + (jitter if story.days_ago > 1 else -jitter / 10)
            )
            created["triggers"] += add_story(agency, story, at, now, profiles, placements, admin)
            created["requests"] += 1
            created["reviews"] += story.state in ("missing", "verified", "rejected")

        for key, sender, days, status, reason, rec, recipients in SKIPPED_TRIGGERS:
            trigger, new = Trigger.objects.get_or_create(
                agency=agency,
                message_id_hash=_hash(key),
                defaults=dict(
                    received_at=now - timedelta(days=days, minutes=rng.randint(0, 600)),
                    sender=sender,
                    recruiter=profiles.get(rec),
                    status=status,
                    reason=reason,
                    auth_method="" if status == Trigger.Status.QUARANTINED else "dkim_aligned",
                    auth_detail=(
                        "From domain demo-recruitment-jobs.example is not one of yours"
                        if status == Trigger.Status.QUARANTINED
                        else "dkim=pass d=demo-recruitment.example"
                    ),
                ),
            )
            if new:
                created["triggers"] += 1
                TriggerRecipient.objects.bulk_create(
                    TriggerRecipient(
                        trigger=trigger, email=email, outcome=outcome, reason=why, name=""
                    )
                    for email, outcome, why in recipients
                )
    return created


def add_story(agency, story: Story, at, now, profiles, placements, admin) -> int:
    """Create one story's rows; returns how many triggers it recorded (0 or 1)."""
    recruiter = profiles[story.recruiter]
    state = story.state
    reviewed = state in ("missing", "verified", "rejected")
    sent_at = None if state == "scheduled" else at + timedelta(minutes=2)
    request = ReviewRequest.objects.create(
        agency=agency,
        source=story.source,
        email=story.email,
        name=story.name,
        role=story.role,
        recruiter=recruiter,
        personal_message=story.message,
        status={
            "scheduled": RS.SCHEDULED,
            "sent": RS.SENT,
            "opened": RS.OPENED,
            "reminded": RS.REMINDED,
        }.get(state, RS.COMPLETED),
        created_at=at,
        send_after=at if state != "scheduled" else tomorrow_morning(agency, now),
        # A scheduled one's email is queued when it falls due, as every request's is.
        queued_at=at if state != "scheduled" else None,
        deadline=at + timedelta(hours=72),
        sent_at=sent_at,
        opened_at=(at + timedelta(hours=5))
        if state in ("opened", "reminded") or reviewed
        else None,
        reminded_at=(at + timedelta(days=5)) if state == "reminded" else None,
        expires_at=(sent_at + timedelta(days=30)) if sent_at else None,
        completed_at=(at + timedelta(hours=6)) if reviewed else None,
    )
    AskedRecipient.objects.update_or_create(
        agency=agency, email=story.email, defaults={"last_asked_at": at}
    )
    # Trigger records older than the retention period would be purged at once by the worker.
    retained = at > now - timedelta(days=settings.EMAILSYNC_TRIGGER_RETENTION_DAYS - 1)
    if story.source in (Source.EMAIL_SYNC, Source.MANUAL) and retained:
        manual = story.source == Source.MANUAL
        # Manual requests are recorded as triggers too: the fairness audit shows every ask.
        trigger = Trigger.objects.create(
            agency=agency,
            received_at=at,
            message_id_hash=_hash(story.email),
            source="manual" if manual else "smtp",
            sender=admin.email if manual else recruiter.user.email,
            recruiter=recruiter,
            status=Trigger.Status.ACCEPTED,
            auth_method="" if manual else "dkim_aligned",
            auth_detail="" if manual else "dkim=pass d=demo-recruitment.example",
        )
        TriggerRecipient.objects.create(
            trigger=trigger,
            email=story.email,
            name=story.name,
            role=story.role,
            outcome=TriggerRecipient.Outcome.INVITED,
            review_request=request,
        )
        for email, reason in story.cc:
            TriggerRecipient.objects.create(
                trigger=trigger,
                email=email,
                outcome=TriggerRecipient.Outcome.SKIPPED,
                reason=reason,
            )
        if manual:
            AuditEntry.objects.create(
                agency=agency,
                actor=admin,
                action="reviews.manual_request",
                subject="1/1",
                detail={"trigger": trigger.pk, "recruiter": recruiter.display_name},
                created_at=at,
            )
    triggered = int(story.source in (Source.EMAIL_SYNC, Source.MANUAL) and retained)
    if not reviewed:
        return triggered

    submitted = request.completed_at
    review = Review(
        agency=agency,
        review_request=request,
        recruiter=recruiter,
        rating=story.rating,
        text=story.text,
        role=story.role,
        reviewer_name=story.name,
        display_name_choice=story.display,
        recommend=story.recommend,
        consent=True,
        reviewer_email=story.email,
        status=Review.Status.MISSING_VERIFICATION,
        submitted_at=submitted,
        updated_at=submitted,
        editable_until=submitted + EDIT_WINDOW,
        confirmed_at=submitted,
        admins_notified_at=submitted,
    )
    decided = submitted + timedelta(hours=20)
    if state == "verified":
        placement = placements[story.placement]
        review.status, review.placement = Review.Status.VERIFIED, placement
        review.verified_at, review.verified_by, review.updated_at = decided, admin, decided
        review.placement_ref = placement.external_ref
        review.save()
        audit(agency, admin, "review.verified", review, decided, placement=placement.pk,
              placement_ref=placement.external_ref)  # fmt: skip
        if story.reply:
            replied = decided + timedelta(hours=2)
            ReviewReply.objects.create(
                review=review,
                text=story.reply,
                author=admin,
                created_at=replied,
                updated_at=replied,
            )
            audit(agency, admin, "review.reply_published", review, replied, text=story.reply)
    elif state == "rejected":
        review.status, review.rejected_reason = Review.Status.REJECTED, story.reject
        review.rejected_at, review.rejected_by, review.updated_at = decided, admin, decided
        review.save()
        audit(agency, admin, "review.rejected", review, decided, reason=story.reject)
    else:
        review.save()
    return triggered


def audit(agency, actor, action, review, at, **detail) -> None:
    AuditEntry.objects.create(
        agency=agency,
        actor=actor,
        action=action,
        subject=review.audit_subject(),
        detail={"review": review.pk, **detail},
        created_at=at,
    )


def tomorrow_morning(agency, now) -> datetime:
    """09:30 tomorrow in the agency's time zone: when a manual request waits to go out."""
    from zoneinfo import ZoneInfo

    local = now.astimezone(ZoneInfo(agency.time_zone))
    return datetime.combine(local.date() + timedelta(days=1), time(9, 30), local.tzinfo)
