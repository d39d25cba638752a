"""The review cards put together in Python are byte for byte what `_review.html` renders."""

import pytest
from django.template import engines

from emailsync.profiles import presenting, rows, views
from emailsync.profiles.models import ReviewReply

pytestmark = pytest.mark.django_db

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'

LOOP = (
    "{% for review in reviews %}\n"
    '      {% include "profiles/_review.html" with show_recruiter=flag %}\n'
    "    {% endfor %}"
)


@pytest.fixture
def reviews(acme, make_review):
    acme.name = "Acme & <Partners>"
    acme.save()
    acme.riya.display_name = EVIL
    acme.riya.save()
    made = [
        make_review(acme, acme.sam, rating=5, role="client"),
        make_review(acme, acme.riya, rating=2, text=EVIL, reviewer_name=EVIL),
        make_review(acme, None, rating=3, display_name_choice="full"),
        make_review(acme, acme.sam, rating=4, reviewer_name="someone@example.com"),
    ]
    ReviewReply.objects.create(review=made[0], text=EVIL)
    ReviewReply.objects.create(review=made[2], text="Thank you for the kind words.")
    user = acme.riya.user
    user.is_active = False  # left: named, but no longer linked
    user.save()
    return made


@pytest.mark.parametrize("page", ["agency", "recruiter"])
def test_cards_match_the_template(acme, reviews, page):
    acme.refresh_from_db()
    if page == "agency":
        found = rows.agency_reviews(acme.pk, 10, 0)
        views._link_reviews(acme, found)
    else:
        found = rows.recruiter_reviews(acme.sam, 10, 0)
        views._link_reviews(acme, found, acme.sam)
    assert found
    template = engines["django"].from_string(LOOP)
    expected = template.render({"reviews": found, "agency": acme, "flag": page == "agency"})
    got = presenting.review_cards(found, acme, show_recruiter=page == "agency")
    assert got == expected
    assert "<script>" not in got
    assert got.count('class="pf-reply"') == (2 if page == "agency" else 1)
    if page == "agency":  # linked, named but unlinked (left), and no recruiter at all
        assert got.count('class="muted pf-about"') == 3
        assert got.count(f'<a href="{presenting.recruiter_url(acme, acme.sam)}">') == 2


# The agency page's recruiter list as its template loop was written before it moved to Python.
RECRUITER_LOOP = (
    "{% load i18n profiles %}        {% for person in recruiters %}\n"
    '        <li><a href="{{ person.public_url }}">{{ person.display_name }}</a>\n'
    "          {% with r=person|rating %}{% if r.count %}"
    '<span class="pf-mini">{{ r.average|floatformat:1 }} ★ · '
    "{% blocktranslate count counter=r.count %}{{ counter }} review{% plural %}"
    "{{ counter }} reviews{% endblocktranslate %}</span>"
    '{% else %}<span class="muted pf-mini">{% translate "No reviews yet" %}</span>'
    "{% endif %}{% endwith %}\n"
    "        </li>\n"
    "        {% endfor %}\n"
)


def test_recruiter_list_matches_the_template(acme, make_review, add_member):
    acme.riya.display_name = EVIL
    acme.riya.save()
    make_review(acme, acme.riya, rating=4)  # one review: the singular
    for rating in (5, 4, 4):
        make_review(acme, acme.sam, rating=rating)
    add_member(acme)  # a recruiter without reviews yet
    found = rows.agency_recruiters(acme.pk)
    for person in found:
        person.public_url = presenting.recruiter_url(acme, person)
    assert len(found) == 3
    template = engines["django"].from_string(RECRUITER_LOOP)
    expected = template.render({"recruiters": found})
    got = "        " + presenting.recruiter_items(found) + "\n"
    assert got == expected
    assert "1 review<" in got and "3 reviews<" in got and "No reviews yet" in got
    assert "<script>" not in got
