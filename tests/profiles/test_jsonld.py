"""The JSON-LD on profile pages is valid for the schema.org types it uses.

A small checker with the schema.org vocabulary for exactly these types: every property must exist
on its type (including inherited Thing properties), values must have an allowed type, and the
properties Google's review-snippet guidelines require must be present. Only public reviews may
appear, and the block must survive hostile text.
"""

import json
import re
from datetime import date

import pytest
from django.urls import reverse

from emailsync.profiles.models import Moderation

pytestmark = pytest.mark.django_db

TEXT, NUMBER, URL, DATE = "Text", "Number", "URL", "Date"
THING = {
    "@id": {URL},
    "@type": {TEXT},
    "name": {TEXT},
    "url": {URL},
    "image": {URL, "ImageObject"},
    "description": {TEXT},
    "sameAs": {URL},
}
# schema.org properties (https://schema.org/<Type>) for the types the pages use.
VOCABULARY = {
    "Organization": {
        **THING,
        "logo": {URL, "ImageObject"},
        "address": {TEXT, "PostalAddress"},
        "aggregateRating": {"AggregateRating"},
        "review": {"Review"},
    },
    "Person": {
        **THING,
        "jobTitle": {TEXT},
        "worksFor": {"Organization"},
        "knowsAbout": {TEXT, URL},
    },
    "Rating": {
        **THING,
        "ratingValue": {NUMBER},
        "bestRating": {NUMBER},
        "worstRating": {NUMBER},
        "author": {"Person", "Organization"},
    },
    "AggregateRating": {
        **THING,
        "ratingValue": {NUMBER},
        "bestRating": {NUMBER},
        "worstRating": {NUMBER},
        "ratingCount": {NUMBER},
        "reviewCount": {NUMBER},
        "itemReviewed": {"Thing"},
    },
    "Review": {
        **THING,
        "author": {"Person", "Organization"},
        "datePublished": {DATE},
        "reviewBody": {TEXT},
        "reviewRating": {"Rating"},
        "itemReviewed": {"Thing"},
    },
}
REQUIRED = {
    "Organization": [("name",)],
    "Person": [("name",)],
    "Rating": [("ratingValue",)],
    "AggregateRating": [("ratingValue",), ("ratingCount", "reviewCount")],
    "Review": [("author",), ("reviewRating",), ("datePublished",)],
}
# Where schema.org (and Google) require the reviewed item, unless the node is nested in it.
NEEDS_ITEM = {"AggregateRating", "Review"}


def value_ok(value, allowed) -> bool:
    if isinstance(value, dict):
        kind = value.get("@type")
        return kind in allowed or ("Thing" in allowed and kind in VOCABULARY)
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return NUMBER in allowed
    if isinstance(value, str):
        if URL in allowed and re.match(r"https?://", value):
            return True
        if DATE in allowed and date.fromisoformat(value):
            return True
        return TEXT in allowed or (NUMBER in allowed and re.fullmatch(r"\d+(\.\d+)?", value))
    return False


def validate(node, path="$", nested_in=None) -> list[str]:
    problems = []
    kind = node.get("@type")
    if kind not in VOCABULARY:
        return [f"{path}: unknown @type {kind!r}"]
    for options in REQUIRED[kind]:
        if not any(option in node for option in options):
            problems.append(f"{path}: {kind} needs {' or '.join(options)}")
    if kind in NEEDS_ITEM and "itemReviewed" not in node and nested_in is None:
        problems.append(f"{path}: a top-level {kind} needs itemReviewed")
    for prop, value in node.items():
        if prop == "@context":
            continue
        if prop not in VOCABULARY[kind]:
            problems.append(f"{path}: {prop} is not a property of {kind}")
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            where = f"{path}.{prop}[{i}]"
            if not value_ok(item, VOCABULARY[kind][prop]):
                problems.append(f"{where}: {item!r} is not one of {VOCABULARY[kind][prop]}")
            elif isinstance(item, dict):
                problems.extend(validate(item, where, kind))
    if kind in ("Rating", "AggregateRating") and "ratingValue" in node:
        best, worst = node.get("bestRating", 5), node.get("worstRating", 1)
        if not float(worst) <= float(node["ratingValue"]) <= float(best):
            problems.append(f"{path}: ratingValue outside {worst}..{best}")
    return problems


def blocks(body: str) -> list:
    found = re.findall(r'<script type="application/ld\+json">(.*?)</script>', body, re.S)
    return [json.loads(b) for b in found]


def nodes(data) -> list[dict]:
    assert data["@context"] == "https://schema.org"
    return data.get("@graph", [data])


def test_the_checker_finds_problems():
    assert validate({"@type": "Review", "reviewBody": "x"})  # no author, rating, item
    assert validate({"@type": "Person", "name": "x", "aggregateRating": {}})  # not on Person
    assert validate(
        {
            "@type": "AggregateRating",
            "ratingValue": 7,
            "ratingCount": 1,
            "itemReviewed": {"@type": "Person", "name": "x"},
        }
    )  # out of range
    assert not validate({"@type": "Organization", "name": "x"})


@pytest.fixture
def reviewed(acme, make_review):
    make_review(acme, acme.sam, rating=5, reviewer_name="Ann Lee", display_name_choice="full")
    make_review(acme, acme.sam, rating=3, role="client")
    make_review(acme, acme.riya, rating=4)
    hidden = make_review(acme, acme.sam, rating=1, text="HIDDEN-LD text that is long enough.")
    Moderation.objects.create(review=hidden, hidden_reason="x")
    make_review(acme, acme.sam, "missing_verification", rating=1, text="UNVERIFIED-LD " * 3)
    return acme


def test_agency_page_json_ld_is_a_valid_organization(client, reviewed):
    body = client.get(reverse("profiles-agency", args=[reviewed.slug])).content.decode()
    (data,) = blocks(body)
    (org,) = nodes(data)
    assert validate(org) == []
    assert org["@type"] == "Organization" and org["name"] == "Acme Recruitment"
    assert org["aggregateRating"]["ratingValue"] == 4.0
    assert org["aggregateRating"]["reviewCount"] == 3
    assert len(org["review"]) == 3
    assert {r["author"]["name"] for r in org["review"]} >= {"Ann Lee"}
    assert "HIDDEN-LD" not in body and "UNVERIFIED-LD" not in body


def test_recruiter_page_json_ld_is_a_valid_person_graph(client, reviewed):
    url = reverse("profiles-recruiter", args=[reviewed.slug, reviewed.sam.slug])
    (data,) = blocks(client.get(url).content.decode())
    graph = nodes(data)
    for node in graph:
        assert validate(node) == [], node
    person = next(n for n in graph if n["@type"] == "Person")
    assert person["jobTitle"] == "Senior Recruiter"
    assert person["knowsAbout"] == ["Software", "Data", "DevOps"]
    assert person["worksFor"]["name"] == "Acme Recruitment"
    aggregate = next(n for n in graph if n["@type"] == "AggregateRating")
    assert aggregate["itemReviewed"]["@id"] == person["@id"]
    assert aggregate["ratingCount"] == 2 and aggregate["ratingValue"] == 4.0
    reviews = [n for n in graph if n["@type"] == "Review"]
    assert len(reviews) == 2
    assert all(r["itemReviewed"]["@id"] == person["@id"] for r in reviews)


def test_no_rating_nodes_without_reviews(client, acme):
    (data,) = blocks(client.get(reverse("profiles-agency", args=[acme.slug])).content.decode())
    (org,) = nodes(data)
    assert "aggregateRating" not in org and "review" not in org and validate(org) == []
    url = reverse("profiles-recruiter", args=[acme.slug, acme.riya.slug])
    (data,) = blocks(client.get(url).content.decode())
    assert [n["@type"] for n in nodes(data)] == ["Person"]


def test_hostile_text_cannot_leave_the_json_ld_block(client, acme, make_review):
    evil = '</script><script>alert(1)</script><!-- & "quotes" \u2028 and enough words here'
    make_review(acme, acme.sam, text=evil, reviewer_name=evil, display_name_choice="full")
    body = client.get(reverse("profiles-agency", args=[acme.slug])).content.decode()
    (data,) = blocks(body)
    (org,) = nodes(data)
    assert org["review"][0]["reviewBody"] == evil  # the data is intact once parsed
    assert body.count("</script>") == body.count("<script")  # no extra closing tag
