"""The public pages: directory, agency, recruiter, widget, sitemap, report-a-review.

Public pages read only public reviews and the stored aggregates; each renders with a fixed number
of queries whatever the history's size (the page's rows come from an indexed, limited query and
the counts from the aggregate row). They touch neither the session nor the CSRF token, so they
set no cookie and can be cached; `Last-Modified`/`ETag` come from the aggregate row's
`changed_at`, bumped by every change that shows on the page.
"""

import hashlib
from functools import wraps
from math import ceil
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.cache import caches
from django.db.models import Max
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers, patch_cache_control
from django.utils.timezone import template_localtime
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import condition, require_http_methods, require_safe

from emailsync.agencies import branding
from emailsync.agencies.models import Agency, RecruiterProfile
from emailsync.reviews.models import Review
from emailsync.throttling.models import Counter

from . import presenting, rows
from .models import AgencyRating, ReviewReport, public_reviews, rating_of

PAGE_SIZE = 10
DIRECTORY_PAGE_SIZE = 20
WIDGET_REVIEWS_DEFAULT, WIDGET_REVIEWS_MAX = 3, 10
SITEMAP_CHUNK = 10_000
SITEMAP_MAX_PAGES = 50_000  # the most sitemaps one sitemap index may list (sitemaps.org)
# Bump when the pages' markup changes, so cached copies revalidate into the new markup.
MARKUP_VERSION = "1"
# Browsers ask again every time (a 304 on the ETag costs one query), so an admin who has just
# verified a review sees it at once; shared caches in front may keep a page five minutes.
PUBLIC_CACHE = {"public": True, "max_age": 0, "must_revalidate": True, "s_maxage": 300}
# The widget shows on the agency's own site to every visitor, not to the admin who just
# verified: a browser may keep it five minutes rather than ask again on every page view.
WIDGET_CACHE = {"public": True, "max_age": 300}
WIDGET_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors *"
)
HONEYPOT = "website"


# --- lookups shared by the caching headers and the views (one query each, memoised) ---------


def _agency(request, agency_slug: str) -> Agency:
    key = ("profiles_agency", agency_slug)
    if key not in request.__dict__:
        request.__dict__[key] = rows.agency_by_slug(agency_slug)
    agency = request.__dict__[key]
    if agency is None:
        raise Http404
    return agency


def _recruiter(request, agency_slug: str, recruiter_slug: str) -> RecruiterProfile:
    key = ("profiles_recruiter", agency_slug, recruiter_slug)
    if key not in request.__dict__:
        request.__dict__[key] = rows.recruiter_by_slugs(agency_slug, recruiter_slug)
    recruiter = request.__dict__[key]
    if recruiter is None:
        raise Http404
    return recruiter


def _changed(*objects):
    stamps = [rating_of(obj).changed_at for obj in objects]
    stamps = [s for s in stamps if s is not None]
    return max(stamps) if stamps else None


def _etag(request, *parts) -> str:
    raw = "|".join(
        str(p) for p in (MARKUP_VERSION, get_language(), request.GET.urlencode(), *parts)
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _safe(func):
    """Caching-header callbacks must not fail the request: a missing object is the view's 404."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Http404:
            return None

    return wrapper


@_safe
def agency_changed(request, agency_slug, **kwargs):
    agency = _agency(request, agency_slug)
    return _changed(agency) or agency.created_at


@_safe
def agency_etag(request, agency_slug, **kwargs):
    agency = _agency(request, agency_slug)
    # Each kind of page names itself: an agency and a recruiter can share an id (and, with the
    # agency's rating the newest change, a stamp), and must never share a cached body or an ETag.
    return _etag(request, "agency", agency.pk, agency_changed(request, agency_slug).timestamp())


@_safe
def recruiter_changed(request, agency_slug, recruiter_slug):
    recruiter = _recruiter(request, agency_slug, recruiter_slug)
    return _changed(recruiter, recruiter.agency) or recruiter.agency.created_at


@_safe
def recruiter_etag(request, agency_slug, recruiter_slug):
    recruiter = _recruiter(request, agency_slug, recruiter_slug)
    stamp = recruiter_changed(request, agency_slug, recruiter_slug).timestamp()
    return _etag(request, "recruiter", recruiter.pk, stamp)


def _directory_changed(request):
    key = "profiles_directory_changed"
    if key not in request.__dict__:
        request.__dict__[key] = AgencyRating.objects.aggregate(last=Max("changed_at"))["last"]
    return request.__dict__[key]


def directory_etag(request):
    stamp = _directory_changed(request)
    return _etag(request, "directory", stamp.timestamp() if stamp else 0)


# --- the rendered-page cache ------------------------------------------------------------------
#
# A page's body is cached under its ETag (markup version, language, query string, the agency's or
# recruiter's id and their rating rows' `changed_at`) plus the public address and the static
# files' names. Every change that shows on a page bumps `changed_at` in the same transaction
# (signals.py), so the next request computes a new key and renders afresh: nothing is ever
# deleted, and a body cached under an old key is never looked up again. Entries also expire after
# EMAILSYNC_PAGE_CACHE_SECONDS, the bound for changes made behind the signals' back (bulk updates,
# raw SQL), which `profiles check-aggregates --repair` would otherwise only catch daily.


def _static_names() -> str:
    if "names" not in _static_fingerprint:
        from django.templatetags.static import static

        _static_fingerprint["names"] = static("css/app.css") + static("css/profiles.css")
    return _static_fingerprint["names"]


_static_fingerprint: dict[str, str] = {}


def _page_cache(etag_func):
    def decorator(view):
        @wraps(view)
        def cached(request, *args, **kwargs):
            seconds = getattr(settings, "EMAILSYNC_PAGE_CACHE_SECONDS", 600)
            tag = etag_func(request, *args, **kwargs) if seconds > 0 else None
            if tag is None:
                return view(request, *args, **kwargs)
            raw = "|".join((tag, settings.EMAILSYNC_PUBLIC_URL, _static_names()))
            key = "profiles:page:" + hashlib.sha256(raw.encode()).hexdigest()
            cache = caches[getattr(settings, "EMAILSYNC_PAGE_CACHE", "default")]
            hit = cache.get(key)
            if hit is not None:
                content, content_type = hit
                return _public(HttpResponse(content, content_type=content_type))
            response = view(request, *args, **kwargs)
            if response.status_code == 200 and not response.streaming and not response.cookies:
                cache.set(key, (response.content, response["Content-Type"]), seconds)
            return response

        return cached

    return decorator


# --- helpers ---------------------------------------------------------------------------------


class Pager:
    """Page numbers from a known total (the aggregate count), so no COUNT query is needed."""

    def __init__(self, request, total: int, size: int):
        self.total, self.size = total, size
        self.pages = max(1, ceil(total / size))
        raw = request.GET.get("page", "1")
        if not raw.isdigit() or not 1 <= int(raw) <= self.pages:
            raise Http404
        self.number = int(raw)
        self.offset = (self.number - 1) * size
        self.has_previous = self.number > 1
        self.has_next = self.number < self.pages
        self.previous = self.number - 1
        self.next = self.number + 1

    def slice(self, queryset):
        return list(queryset[self.offset : self.offset + self.size])


# What a review's card, its JSON-LD and the recruiter link need: nothing else is read.
_REVIEW_COLUMNS = (
    "id",
    "agency_id",
    "recruiter_id",
    "rating",
    "text",
    "role",
    "reviewer_name",
    "display_name_choice",
    "submitted_at",
    "recruiter__display_name",
    "recruiter__slug",
    "recruiter__user__is_active",
    "recruiter__user__agency_id",
    "reply__id",
    "reply__text",
)


def _review_rows(queryset):
    """The widget's public reviews, newest first (the pages read theirs through `rows`)."""
    return (
        public_reviews(queryset)
        .select_related("recruiter__user", "reply")
        .only(*_REVIEW_COLUMNS)
        .order_by("-submitted_at", "-id")
    )


def _url_maker(name: str, *args):
    """`reverse` once per page with a placeholder last argument, then plain string formatting for
    each row (a page links every review and recruiter; `reverse` per link is most of a page's
    URL cost). The placeholders are valid for the converters (slug, int) and never escaped."""
    placeholder = 987654321 if isinstance(args[-1], int) else "slug-placeholder-7q2"
    head, tail = reverse(name, args=[*args[:-1], placeholder]).rsplit(str(placeholder), 1)
    return lambda value: f"{head}{value}{tail}"


def _link_reviews(agency, reviews, recruiter=None):
    """Each review's report URL and, on the agency page, its recruiter's page (when the recruiter
    still has a public page: an active member of this agency)."""
    report_url = _url_maker("profiles-report", agency.slug, 0)
    recruiter_url = _url_maker("profiles-recruiter", agency.slug, "x")
    for review in reviews:
        review.report_url = report_url(review.pk)
        # What the card shows, computed here rather than by a tag or filter per review.
        review.shown_name = presenting.public_name(review)
        review.date_iso, review.date_text = presenting.review_dates(
            template_localtime(review.submitted_at)
        )
        linkable = recruiter is None and review.recruiter_linkable
        review.recruiter_url = recruiter_url(review.recruiter.slug) if linkable else None
    return reviews


def _public(response, cache=PUBLIC_CACHE):
    patch_cache_control(response, **cache)
    return response


# --- pages -----------------------------------------------------------------------------------


def directory_changed(request):
    return _directory_changed(request)


@require_safe
@condition(etag_func=directory_etag, last_modified_func=directory_changed)
@_page_cache(directory_etag)
def directory(request):
    q = request.GET.get("q", "").strip()[:100]
    location = request.GET.get("location", "").strip()[:100]
    rows = AgencyRating.objects.filter(count__gt=0).select_related("agency")
    if q:
        rows = rows.filter(agency__name__icontains=q)
    if location:
        rows = rows.filter(agency__location__icontains=location)
    rows = rows.order_by("-rank", "-count", "agency_id")
    total = rows.count()
    pager = Pager(request, total, DIRECTORY_PAGE_SIZE)
    context = {
        "q": q,
        "location": location,
        "entries": pager.slice(rows),
        "pager": pager,
        "total": total,
        "extra": urlencode({k: v for k, v in (("q", q), ("location", location)) if v}),
        "canonical": presenting.absolute(reverse("profiles-directory")),
    }
    return _public(render(request, "profiles/directory.html", context))


@require_safe
@condition(etag_func=agency_etag, last_modified_func=agency_changed)
@_page_cache(agency_etag)
def agency_page(request, agency_slug):
    agency = _agency(request, agency_slug)
    rating = rating_of(agency)
    pager = Pager(request, rating.count, PAGE_SIZE)
    reviews = _link_reviews(agency, rows.agency_reviews(agency.pk, pager.size, pager.offset))
    recruiters = rows.agency_recruiters(agency.pk)
    recruiter_url = _url_maker("profiles-recruiter", agency.slug, "x")
    for person in recruiters:
        person.public_url = recruiter_url(person.slug)
    context = {
        "agency": agency,
        "rating": rating,
        "reviews": reviews,
        "pager": pager,
        "recruiters": recruiters,
        "recruiter_items": presenting.recruiter_items(recruiters),
        "cards": presenting.review_cards(reviews, agency, show_recruiter=True),
        "ld": presenting.ld_json(presenting.organization_ld(agency, rating, reviews)),
        "canonical": presenting.absolute(presenting.agency_url(agency)),
        "summary": presenting.summary(rating),
        "spread": presenting.spread(rating),
        "image": presenting.media_url(agency.logo),
    }
    return _public(render(request, "profiles/agency.html", context))


@require_safe
@condition(etag_func=recruiter_etag, last_modified_func=recruiter_changed)
@_page_cache(recruiter_etag)
def recruiter_page(request, agency_slug, recruiter_slug):
    recruiter = _recruiter(request, agency_slug, recruiter_slug)
    agency = recruiter.agency
    rating = rating_of(recruiter)
    pager = Pager(request, rating.count, PAGE_SIZE)
    page = rows.recruiter_reviews(recruiter, pager.size, pager.offset)
    reviews = _link_reviews(agency, page, recruiter)
    context = {
        "agency": agency,
        "recruiter": recruiter,
        "specialisms": [s.strip() for s in recruiter.specialisms.split(",") if s.strip()],
        "rating": rating,
        "reviews": reviews,
        "pager": pager,
        "cards": presenting.review_cards(reviews, agency, show_recruiter=False),
        "ld": presenting.ld_json(presenting.person_ld(agency, recruiter, rating, reviews)),
        "canonical": presenting.absolute(presenting.recruiter_url(agency, recruiter)),
        "summary": presenting.summary(rating),
        "spread": presenting.spread(rating),
        "image": presenting.media_url(recruiter.photo) or presenting.media_url(agency.logo),
    }
    return _public(render(request, "profiles/recruiter.html", context))


def _widget_count(request) -> int:
    raw = request.GET.get("reviews", "")
    if raw.isdigit():
        return max(0, min(WIDGET_REVIEWS_MAX, int(raw)))
    return WIDGET_REVIEWS_DEFAULT


@_safe
def widget_changed(request, agency_slug):
    slug = request.GET.get("recruiter", "")
    if slug:
        return recruiter_changed(request, agency_slug, slug)
    return agency_changed(request, agency_slug)


@_safe
def widget_etag(request, agency_slug):
    stamp = widget_changed(request, agency_slug)
    return _etag(request, "widget", agency_slug, stamp.timestamp() if stamp else 0)


@require_safe
@xframe_options_exempt
@condition(etag_func=widget_etag, last_modified_func=widget_changed)
def widget(request, agency_slug):
    """The iframe an agency embeds: rating, count, latest reviews. No cookies, framable anywhere,
    only our own assets; every link opens the full profile in a new tab."""
    slug = request.GET.get("recruiter", "")
    if slug:
        recruiter = _recruiter(request, agency_slug, slug)
        agency, subject = recruiter.agency, recruiter
        reviews = Review.objects.filter(recruiter=recruiter)
        target = presenting.recruiter_url(agency, recruiter)
    else:
        agency = subject = _agency(request, agency_slug)
        recruiter = None
        reviews = Review.objects.filter(agency=agency)
        target = presenting.agency_url(agency)
    count = _widget_count(request)
    rating = rating_of(subject)
    context = {
        "agency": agency,
        "recruiter": recruiter,
        "rating": rating,
        "reviews": list(_review_rows(reviews)[:count]) if count else [],
        "target": presenting.absolute(target),
    }
    response = render(request, "profiles/widget.html", context)
    response.headers["Content-Security-Policy"] = WIDGET_CSP
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return _public(response, WIDGET_CACHE)


_script_cache: dict[str, bytes] = {}


@require_safe
@cache_control(public=True, max_age=3600)
def robots_txt(request):
    """Search engines index the public profiles, find them through the sitemap, and stay out
    of what is behind a sign-in. One person's pages (a review link, an unsubscribe) are not
    listed: they say noindex themselves, which a crawler kept out by robots.txt never reads."""
    private = ["/app/", "/accounts/", "/admin/", "/api/"]
    lines = ["User-agent: *", *(f"Disallow: {path}" for path in private), "Allow: /agencies/"]
    lines.append(f"Sitemap: {presenting.absolute(reverse('profiles-sitemap'))}")
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")


@require_safe
@cache_control(public=True, max_age=3600)
def widget_script(request):
    """The loader an agency pastes (`<script src=".../widget.js" data-agency="slug" async>`).
    Served from a stable address (static file names change with their content)."""
    if "body" not in _script_cache or settings.DEBUG:
        path = finders.find("js/profile-widget.js")
        if path is None:
            from django.contrib.staticfiles.storage import staticfiles_storage

            with staticfiles_storage.open("js/profile-widget.js") as handle:
                _script_cache["body"] = handle.read()
        else:
            with open(path, "rb") as handle:
                _script_cache["body"] = handle.read()
    body = _script_cache["body"]
    response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response.headers["ETag"] = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


@_safe
def brand_changed(request, agency_slug):
    return agency_changed(request, agency_slug)


@require_safe
@cache_control(public=True, max_age=86400)
@condition(etag_func=agency_etag, last_modified_func=brand_changed)
def brand_css(request, agency_slug):
    """The agency's colour as a stylesheet (our CSP allows no style attributes)."""
    agency = _agency(request, agency_slug)
    colour = agency.brand_colour
    colour = colour if branding.HEX_COLOUR.fullmatch(colour or "") else "#1f6feb"
    # Links in the agency's colour, darkened where it would not read on the page; text on it
    # (buttons) black or white, whichever reads.
    body = (
        f":root{{--brand:{colour};--brand-link:{branding.link_colour(colour)};"
        f"--brand-ink:{branding.ink_on(colour)};}}\n"
    )
    response = HttpResponse(body, content_type="text/css; charset=utf-8")
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# --- sitemap ---------------------------------------------------------------------------------


def _sitemap_agencies():
    return (
        AgencyRating.objects.filter(count__gt=0)
        .order_by("agency_id")
        .values_list("agency__slug", "changed_at")
    )


def _sitemap_recruiters():
    return (
        RecruiterProfile.objects.of_members()
        .filter(rating__count__gt=0)
        .order_by("pk")
        .values_list("agency__slug", "slug", "rating__changed_at")
    )


@require_safe
@cache_control(public=True, max_age=3600)
def sitemap_index(request):
    sections = []
    for name, queryset in (
        ("agencies", _sitemap_agencies()),
        ("recruiters", _sitemap_recruiters()),
    ):
        pages = ceil(queryset.count() / SITEMAP_CHUNK)
        sections += [
            presenting.absolute(reverse("profiles-sitemap-section", args=[name, n]))
            for n in range(1, pages + 1)
        ]
    return render(
        request,
        "profiles/sitemap_index.xml",
        {"sections": sections, "directory": presenting.absolute(reverse("profiles-directory"))},
        content_type="application/xml; charset=utf-8",
    )


@require_safe
@cache_control(public=True, max_age=3600)
def sitemap_section(request, section, page):
    # Before any query: page 0 would slice from a negative offset and a page past what the
    # database takes as an OFFSET would fail it (both answered 500 to anyone).
    if not 1 <= page <= SITEMAP_MAX_PAGES:
        raise Http404
    start = (page - 1) * SITEMAP_CHUNK
    if section == "agencies":
        rows = _sitemap_agencies()[start : start + SITEMAP_CHUNK]
        urls = [
            (presenting.absolute(reverse("profiles-agency", args=[slug])), changed)
            for slug, changed in rows
        ]
        if page == 1:
            urls.insert(0, (presenting.absolute(reverse("profiles-directory")), None))
    elif section == "recruiters":
        rows = _sitemap_recruiters()[start : start + SITEMAP_CHUNK]
        urls = [
            (presenting.absolute(reverse("profiles-recruiter", args=[a, r])), changed)
            for a, r, changed in rows
        ]
    else:
        raise Http404
    if not urls and page != 1:
        raise Http404
    return render(
        request,
        "profiles/sitemap.xml",
        {"urls": urls},
        content_type="application/xml; charset=utf-8",
    )


# --- report a review -------------------------------------------------------------------------


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        label=gettext_lazy("What is wrong with this review?"),
        choices=ReviewReport.Reason.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": gettext_lazy("Choose what is wrong with this review."),
            "invalid_choice": gettext_lazy("Choose what is wrong with this review."),
        },
    )
    detail = forms.CharField(
        label=gettext_lazy("Tell us more (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    contact_email = forms.EmailField(
        label=gettext_lazy("Your email, if we may ask you about it (optional, never shown)"),
        required=False,
        error_messages={"invalid": gettext_lazy("Enter an email address like name@example.com.")},
    )
    website = forms.CharField(required=False, label=gettext_lazy("Leave this empty"))


def _client_hash(request) -> str:
    address = request.META.get("REMOTE_ADDR") or "unknown"
    return hashlib.sha256(f"{settings.SECRET_KEY}:{address}".encode()).hexdigest()


@require_http_methods(["GET", "POST"])
def report(request, agency_slug, review_id):
    review = get_object_or_404(
        public_reviews().select_related("agency", "recruiter"),
        pk=review_id,
        agency__slug=agency_slug,
    )
    form = ReportForm(request.POST or None)
    status = 200
    if request.method == "POST":
        limit = getattr(settings, "EMAILSYNC_REPORTS_PER_IP", 10)
        window = getattr(settings, "EMAILSYNC_REPORT_WINDOW", 3600)
        address = request.META.get("REMOTE_ADDR") or "unknown"
        decision = Counter.hit(f"profiles:report:{address}", limit, window)
        if not decision.allowed:
            response = render(
                request, "profiles/report_limited.html", {"review": review}, status=429
            )
            response.headers["Retry-After"] = str(decision.retry_after)
            add_never_cache_headers(response)
            return response
        if form.is_valid():
            if not form.cleaned_data[HONEYPOT]:  # bots fill it; they are thanked all the same
                ReviewReport.objects.create(
                    review=review,
                    reason=form.cleaned_data["reason"],
                    detail=form.cleaned_data["detail"],
                    contact_email=form.cleaned_data["contact_email"],
                    client_hash=_client_hash(request),
                )
            response = render(request, "profiles/report_thanks.html", {"review": review})
            add_never_cache_headers(response)
            return response
        status = 400
    response = render(
        request,
        "profiles/report.html",
        {"review": review, "form": form, "agency": review.agency, "title": _("Report a review")},
        status=status,
    )
    add_never_cache_headers(response)
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response
