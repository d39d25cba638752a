"""How a public review, an agency and a recruiter are presented: names, URLs, JSON-LD, OpenGraph.

Everything here is built from public reviews only and never includes an email address. JSON-LD
is serialised with `<`, `>` and `&` escaped, so review text can never close the data block.
"""

import json
from functools import lru_cache

from django.conf import settings
from django.template.defaultfilters import floatformat
from django.urls import reverse
from django.utils.formats import date_format, localize
from django.utils.html import _json_script_escapes, conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from emailsync.reviews.models import Review, shown_name


def absolute(path: str) -> str:
    return settings.EMAILSYNC_PUBLIC_URL + path


def public_name(review: Review) -> str:
    """The reviewer's chosen display name, never anything that looks like an email address."""
    name = review.display_name
    if "@" in name:
        return shown_name("", "anonymous", review.role)
    return name


def agency_url(agency) -> str:
    return reverse("profiles-agency", args=[agency.slug])


def recruiter_url(agency, recruiter) -> str:
    return reverse("profiles-recruiter", args=[agency.slug, recruiter.slug])


def media_url(field) -> str:
    if not field:
        return ""
    url = field.url
    return url if url.startswith(("http://", "https://")) else absolute(url)


def ld_json(data) -> str:
    """JSON for a `<script type="application/ld+json">` block: inert whatever the text holds."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return mark_safe(text.translate(_json_script_escapes))  # noqa: S308 - escaped just above


def _rating_ld(value, best=5, worst=1) -> dict:
    return {"@type": "Rating", "ratingValue": value, "bestRating": best, "worstRating": worst}


def _aggregate_ld(rating, item=None) -> dict | None:
    if not rating.count:
        return None
    data = {
        "@type": "AggregateRating",
        "ratingValue": rating.average,
        "ratingCount": rating.count,
        "reviewCount": rating.count,
        "bestRating": 5,
        "worstRating": 1,
    }
    if item:
        data["itemReviewed"] = item
    return data


def _review_ld(review, item=None) -> dict:
    data = {
        "@type": "Review",
        "author": {"@type": "Person", "name": public_name(review)},
        "datePublished": review.submitted_at.date().isoformat(),
        "reviewBody": review.text,
        "reviewRating": _rating_ld(review.rating),
    }
    if item:
        data["itemReviewed"] = item
    return data


def organization_ld(agency, rating, reviews) -> dict:
    url = absolute(agency_url(agency))
    org = {"@type": "Organization", "@id": url + "#organization", "name": agency.name, "url": url}
    if agency.website:
        org["sameAs"] = [agency.website]
    if agency.logo:
        org["logo"] = media_url(agency.logo)
    if agency.location:
        org["address"] = agency.location
    aggregate = _aggregate_ld(rating)
    if aggregate:
        org["aggregateRating"] = aggregate
        org["review"] = [_review_ld(r) for r in reviews]
    return {"@context": "https://schema.org", **org}


def person_ld(agency, recruiter, rating, reviews) -> dict:
    """A recruiter: schema.org has no rating properties on Person, so the AggregateRating and the
    Reviews are separate nodes of the graph that name the Person as `itemReviewed`."""
    agency_page = absolute(agency_url(agency))
    url = absolute(recruiter_url(agency, recruiter))
    person = {
        "@type": "Person",
        "@id": url + "#person",
        "name": recruiter.display_name,
        "url": url,
        "worksFor": {"@type": "Organization", "name": agency.name, "url": agency_page},
    }
    if recruiter.job_title:
        person["jobTitle"] = recruiter.job_title
    if recruiter.bio:
        person["description"] = recruiter.bio
    if recruiter.specialisms:
        person["knowsAbout"] = [s.strip() for s in recruiter.specialisms.split(",") if s.strip()]
    if recruiter.photo:
        person["image"] = media_url(recruiter.photo)
    graph = [person]
    ref = {"@type": "Person", "@id": person["@id"], "name": recruiter.display_name}
    aggregate = _aggregate_ld(rating, ref)
    if aggregate:
        graph.append(aggregate)
        graph.extend(_review_ld(r, ref) for r in reviews)
    return {"@context": "https://schema.org", "@graph": graph}


# Formatting that depends only on a value and the language, asked for with few distinct values
# (dates of reviews, averages to one decimal): each formatted once per process.


@lru_cache(maxsize=8192)
def _date(day, fmt: str, language: str) -> str:
    return date_format(day, fmt)


def review_dates(local_datetime) -> tuple[str, str]:
    """("2025-03-07", "7 March 2025") for a review card, as the `date` filter wrote them."""
    day, language = local_datetime.date(), get_language()
    return _date(day, "Y-m-d", language), _date(day, "j F Y", language)


@lru_cache(maxsize=1024)
def _one_decimal(value, language: str) -> str:
    return floatformat(value, 1)


def one_decimal(value) -> str:
    """`value|floatformat:1`."""
    return _one_decimal(value, get_language())


def spread(rating) -> list[tuple[str, int, int]]:
    """The summary's rows, 5 stars down to 1: ("5 stars", count, percent)."""
    return [
        (ngettext("%(counter)s star", "%(counter)s stars", n) % {"counter": n}, count, percent)
        for n, count, percent in rating.stars()
    ]


def summary(rating) -> str:
    if not rating.count:
        return _("No verified reviews yet.")
    return ngettext(
        "%(average)s out of 5 from %(count)s verified review.",
        "%(average)s out of 5 from %(count)s verified reviews.",
        rating.count,
    ) % {
        "average": rating.average,
        "count": rating.count,
    }


# --- review cards ----------------------------------------------------------------------------
#
# A page's ten review cards are most of its template work (each card is some twenty template
# nodes, four of them translations), so they are put together here with the labels translated
# once per page. The markup is the one the `_review.html` include rendered, byte for byte;
# every value is escaped (`conditional_escape`) as the template's autoescaping would.

_CARD = (
    '\n<article class="card pf-review" id="review-{pk}">\n'
    '  <header class="pf-review-head">\n'
    "    {stars}\n"
    '    <span class="pf-reviewer">{name}</span>\n'
    '    <span class="badge">{badge}</span>\n'
    '    <time datetime="{date_iso}" class="muted">{date_text}</time>\n'
    "  </header>\n"
    '  <p class="pf-text" dir="auto">{text}</p>\n'
    "  {about}\n"
    "  {reply}\n"
    '  <p class="pf-report"><a href="{report_url}" rel="nofollow">{report}</a></p>\n'
    "</article>\n"
)
_ABOUT = '\n  <p class="muted pf-about">{about}\n    {recruiter}</p>\n  '
_REPLY = (
    '\n  <div class="pf-reply">\n'
    '    <p class="pf-reply-head">{head}</p>\n'
    '    <p class="pf-text" dir="auto">{text}</p>\n'
    "  </div>\n  "
)


def review_cards(reviews, agency, show_recruiter: bool) -> str:
    """The cards of a page's reviews, as the template's `{% for %}` loop output them (each
    review needs `shown_name`, `date_iso`, `date_text`, `report_url` and, on the agency page,
    `recruiter_url`, set by the view)."""
    from .templatetags.profiles import stars

    e = conditional_escape
    client, candidate = e(_("Client")), e(_("Candidate"))
    about_label, report = e(_("About")), e(_("Report this review"))
    reply_head = _("Reply from %(name)s") % {"name": e(agency.name)}
    parts = []
    for review in reviews:
        about = ""
        if show_recruiter and review.recruiter:
            name = e(review.recruiter.display_name)
            if review.recruiter_url:
                name = f'<a href="{e(review.recruiter_url)}">{name}</a>'
            about = _ABOUT.format(about=about_label, recruiter=name)
        reply = ""
        if review.reply:
            reply = _REPLY.format(head=reply_head, text=e(review.reply.text))
        card = _CARD.format(
            pk=e(review.pk),
            stars=stars(review.rating),
            name=e(review.shown_name),
            badge=client if review.role == "client" else candidate,
            date_iso=e(review.date_iso),
            date_text=e(review.date_text),
            text=e(review.text),
            about=about,
            reply=reply,
            report_url=e(review.report_url),
            report=report,
        )
        parts.append("\n      " + card + "\n    ")
    return mark_safe("".join(parts))  # noqa: S308 - every value escaped above


_RECRUITER_ITEM = (
    '\n        <li><a href="{url}">{name}</a>\n          {mini}\n        </li>\n        '
)


def recruiter_items(recruiters) -> str:
    """The agency page's list of recruiters (`<li>`s as the template's loop output them): each
    with their average and count, or "No reviews yet". Each needs `public_url` and `rating`."""
    e = conditional_escape
    none_yet = '<span class="muted pf-mini">{}</span>'.format(e(_("No reviews yet")))
    parts = []
    for person in recruiters:
        rating = person.rating
        if rating.count:
            count = ngettext("%(counter)s review", "%(counter)s reviews", rating.count) % {
                "counter": e(localize(rating.count))
            }
            average = e(one_decimal(rating.average))
            mini = f'<span class="pf-mini">{average} ★ · {count}</span>'
        else:
            mini = none_yet
        parts.append(
            _RECRUITER_ITEM.format(url=e(person.public_url), name=e(person.display_name), mini=mini)
        )
    return mark_safe("".join(parts))  # noqa: S308 - every value escaped above
